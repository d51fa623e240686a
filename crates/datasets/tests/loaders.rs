//! Loaders on the real data in ../shared/data (ignored tests: run them with
//! `cargo test --release --workspace -- --ignored`, where the data must be present), and on small
//! malformed files the tests write themselves (always run).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use datasets::cifar::{self, Labels};
use datasets::{idx, optdigits, timit};
use sha2::{Digest, Sha256};

/// The folder `name` of ../shared/data (beside the checkout). Panics, naming the path, when it is
/// absent: the tests that call this are ignored by default and only run on purpose.
fn shared(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data").join(name);
    assert!(
        dir.is_dir(),
        "{} is not present: the real-data tests need ../shared/data beside the checkout",
        dir.display()
    );
    dir
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
#[ignore = "needs ../shared/data beside the checkout; run: cargo test --release --workspace -- --ignored"]
fn real_mnist_shapes_counts_checksums_and_pixels() {
    let dir = shared("mnist");
    // SHA-256 of the decompressed contents (PROVENANCE.md).
    for (file, sha) in [
        ("train-images-idx3-ubyte.gz", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
        ("train-labels-idx1-ubyte.gz", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
        ("t10k-images-idx3-ubyte.gz", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
        ("t10k-labels-idx1-ubyte.gz", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
    ] {
        let raw = datasets::error::read_maybe_gz(&dir.join(file)).unwrap();
        assert_eq!(sha256_hex(&raw), sha, "{file}");
    }
    let d = idx::load(&dir, "mnist", &idx::MNIST_CLASSES).unwrap();
    assert_eq!(d.sample_shape, vec![1, 28, 28]);
    assert_eq!((d.train.len(), d.test.len()), (60_000, 10_000));
    assert_eq!(d.train.features.len(), 60_000 * 784);
    assert_eq!(d.train.class_counts(10), vec![5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
    assert_eq!(d.test.class_counts(10), vec![980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
    // The usual normalisation constant: mean train pixel 0.1307.
    let mean = d.train.features.iter().map(|&v| v as f64).sum::<f64>() / d.train.features.len() as f64;
    assert!((mean - 0.1307).abs() < 5e-5, "mean pixel {mean}");
    // The first training image is a 5.
    assert_eq!(d.train.labels[0], 5);
}

#[test]
#[ignore = "needs ../shared/data beside the checkout; run: cargo test --release --workspace -- --ignored"]
fn real_cifar10_subset_records_and_labels() {
    let dir = shared("cifar-10-subset");
    let train = cifar::read_records(&[dir.join("data_batch_1_first4000.bin")], Labels::Cifar10).unwrap();
    let test = cifar::read_records(&[dir.join("test_batch_first1000.bin")], Labels::Cifar10).unwrap();
    assert_eq!((train.len(), test.len()), (4000, 1000));
    assert_eq!(train.features.len(), 4000 * 3072);
    assert_eq!(test.labels[..10], [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]);
    assert!(train.features.iter().all(|v| (0.0..=1.0).contains(v)));
    let names = fs::read_to_string(dir.join("batches.meta.txt")).unwrap();
    assert_eq!(names.lines().collect::<Vec<_>>(), cifar::CIFAR10_CLASSES);
    // The SHA-256 PROVENANCE.md gives, and the loader a study uses: the same records, scaled to
    // [0, 1] (data_batch_1 image 0's red row 0 begins 59, 43, 50).
    let sums = [
        ("data_batch_1_first4000.bin", "0993cf8b8e43bc207603aef9787006995746513f5e3fa5a52e06d1b069926330"),
        ("test_batch_first1000.bin", "8314c96d7cd65618193bab23acdd5d4c4af15bf6dd00a1781d55beedf3be1ef5"),
    ];
    for (file, sum) in sums {
        assert_eq!(sha256_hex(&fs::read(dir.join(file)).unwrap()), sum, "{file}");
    }
    let d = cifar::load_cifar10_subset(&dir).unwrap();
    assert_eq!((d.name.as_str(), d.sample_shape.as_slice(), d.classes), ("cifar-10-subset", &[3, 32, 32][..], 10));
    assert_eq!((d.train.labels.clone(), d.test.labels.clone()), (train.labels, test.labels));
    assert_eq!(d.train.features[..3], [59.0 / 255.0, 43.0 / 255.0, 50.0 / 255.0]);
}

#[test]
#[ignore = "needs ../shared/data beside the checkout; run: cargo test --release --workspace -- --ignored"]
fn real_optdigits_counts() {
    let dir = shared("uci-optdigits");
    let d = optdigits::load(&dir).unwrap();
    assert_eq!((d.train.len(), d.test.len()), (3823, 1797));
    assert_eq!(d.train.class_counts(10), vec![376, 389, 380, 389, 387, 376, 377, 387, 380, 382]);
    assert_eq!(d.test.class_counts(10), vec![178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
}

#[test]
#[ignore = "needs ../shared/data beside the checkout; run: cargo test --release --workspace -- --ignored"]
fn generated_mnist1d_equals_upstreams_frozen_split() {
    use datasets::{mnist1d, npy};
    let dir = shared("mnist1d");
    // The frozen arrays are standardized (PROVENANCE.md calls them raw, but they equal the raw
    // signals after upstream's `(xs - xs.mean()) / xs.std()`): compare after standardizing.
    let mut rows = mnist1d::generate_raw(&mnist1d::Config::default());
    mnist1d::standardize(&mut rows);
    let (train, test) = rows.split_at(4000);
    let mut largest = 0.0f64;
    for (part, (xn, yn)) in [(train, ("x.npy", "y.npy")), (test, ("x_test.npy", "y_test.npy"))] {
        let x = npy::read(&dir.join(xn)).unwrap();
        let y = npy::read(&dir.join(yn)).unwrap().labels(&dir.join(yn), 10).unwrap();
        assert_eq!(x.shape, vec![part.len(), 40], "{xn}");
        let labels: Vec<u32> = part.iter().map(|(_, l)| *l).collect();
        assert_eq!(labels, y, "{yn}: labels in the same order");
        for (i, ((row, _), want)) in part.iter().zip(x.values.chunks(40)).enumerate() {
            for (a, b) in row.iter().zip(want) {
                assert!((a - b).abs() <= 1e-12, "{xn} row {i}: generated {a}, frozen {b}");
                largest = largest.max((a - b).abs());
            }
        }
    }
    eprintln!("largest |generated − frozen| = {largest:e}");
    // PROVENANCE.md's check values.
    let first = [-0.33200567, -0.47191037, -0.77869708, -1.00974083, -0.88235257];
    for (a, b) in rows[0].0.iter().zip(first) {
        assert!((a - b).abs() < 5e-9, "x[0] starts {:?}", &rows[0].0[..5]);
    }
    // Standardized, the frozen files and the generator give the same f32 data.
    let frozen = mnist1d::load_frozen(&dir).unwrap();
    let generated = mnist1d::generate(&mnist1d::Config::default());
    assert_eq!(frozen.train.labels, generated.train.labels);
    assert_eq!(frozen.test.labels, generated.test.labels);
    assert_eq!(frozen.sample_shape, generated.sample_shape);
    let differ = |a: &[f32], b: &[f32]| a.iter().zip(b).filter(|(a, b)| a != b).count();
    let count = differ(&frozen.train.features, &generated.train.features)
        + differ(&frozen.test.features, &generated.test.features);
    eprintln!("f32 values that differ between the frozen split and the generator: {count} of 200000");
    assert_eq!(count, 0, "the nets see bit-identical data");
}

fn idx_images(n: u32, rows: u32, cols: u32, payload: usize) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [0x0803, n, rows, cols] {
        b.extend(u32::to_be_bytes(v));
    }
    b.extend(std::iter::repeat_n(128u8, payload));
    b
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(u32::to_be_bytes(0x0801));
    b.extend(u32::to_be_bytes(labels.len() as u32));
    b.extend(labels);
    b
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::File::create(&p).unwrap().write_all(bytes).unwrap();
    p
}

fn err_text<T: std::fmt::Debug>(r: Result<T, datasets::DataError>) -> String {
    r.expect_err("malformed input must be refused").to_string()
}

#[test]
fn malformed_idx_files_are_refused_naming_file_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = write(d, "good-images", &idx_images(2, 2, 2, 8));
    assert_eq!(idx::read_images(&good).unwrap().1, 2);

    let mut wrong = idx_images(2, 2, 2, 8);
    wrong[3] = 0x01;
    let p = write(d, "wrong-magic", &wrong);
    let e = err_text(idx::read_images(&p));
    assert!(e.contains("wrong-magic") && e.contains("wrong magic number 0x00000801"), "{e}");

    let p = write(d, "short-images", &idx_images(3, 2, 2, 8));
    let e = err_text(idx::read_images(&p));
    assert!(e.contains("short-images") && e.contains("truncated") && e.contains("3 images"), "{e}");

    let p = write(d, "bad-labels", &idx_labels(&[1, 10]));
    let e = err_text(idx::read_labels(&p, 10));
    assert!(e.contains("bad-labels") && e.contains("label 10 at index 1 is out of range"), "{e}");

    let labels = write(d, "three-labels", &idx_labels(&[1, 2, 3]));
    let e = err_text(idx::read_split(&good, &labels));
    assert!(e.contains("three-labels") && e.contains("3 labels for 2 images"), "{e}");

    // A truncated gzip stream is an error, not a short dataset.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&idx_images(2, 2, 2, 8)).unwrap();
    let gz = gz.finish().unwrap();
    let p = write(d, "cut.gz", &gz[..gz.len() - 6]);
    assert!(idx::read_images(&p).is_err());

    let e = err_text(idx::load(d, "mnist", &idx::MNIST_CLASSES));
    assert!(e.contains("missing train-images-idx3-ubyte"), "{e}");
}

#[test]
fn malformed_cifar_and_optdigits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = write(d, "cut.bin", &vec![0u8; 3073 + 100]);
    let e = err_text(cifar::read_records(&[p], Labels::Cifar10));
    assert!(e.contains("cut.bin") && e.contains("3173 bytes"), "{e}");
    let mut rec = vec![0u8; 3073];
    rec[0] = 11;
    let p = write(d, "label.bin", &rec);
    assert!(err_text(cifar::read_records(std::slice::from_ref(&p), Labels::Cifar10)).contains("label 11 of record 0"));
    // The same bytes read as CIFAR-100 are not whole records.
    assert!(cifar::read_records(&[p], Labels::Fine).is_err());
    let mut rec100 = vec![0u8; 3074];
    rec100[0] = 19;
    rec100[1] = 99;
    let p = write(d, "c100.bin", &rec100);
    assert_eq!(cifar::read_records(std::slice::from_ref(&p), Labels::Fine).unwrap().labels, vec![99]);
    assert_eq!(cifar::read_records(&[p], Labels::Coarse).unwrap().labels, vec![19]);

    // The CIFAR-10 subset holds exactly 4000 and 1000 records: one record short is refused.
    let sub = d.join("subset");
    fs::create_dir(&sub).unwrap();
    write(&sub, "data_batch_1_first4000.bin", &vec![0u8; 3073 * 4000]);
    write(&sub, "test_batch_first1000.bin", &vec![0u8; 3073 * 999]);
    let e = err_text(cifar::load_cifar10_subset(&sub));
    assert!(e.contains("test_batch_first1000.bin") && e.contains("999 records; the subset has 1000"), "{e}");
    write(&sub, "test_batch_first1000.bin", &vec![0u8; 3073 * 1000]);
    let ok = cifar::load_cifar10_subset(&sub).unwrap();
    assert_eq!((ok.train.len(), ok.test.len()), (4000, 1000));

    let line = |label: &str| format!("{}{label}\n", "0,".repeat(64));
    let p = write(d, "ok.tra", line("7").as_bytes());
    assert_eq!(optdigits::read(&p).unwrap().labels, vec![7]);
    let p = write(d, "bad.tra", format!("{}{}", line("7"), line("12")).as_bytes());
    let e = err_text(optdigits::read(&p));
    assert!(e.contains("bad.tra") && e.contains("line 2: label 12"), "{e}");
    let p = write(d, "short.tra", b"1,2,3\n");
    assert!(err_text(optdigits::read(&p)).contains("3 values"));
}

#[test]
fn timit_features_round_trip_and_refuse_bad_labels() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "header.json", br#"{"dim": 3, "classes": 4, "train": 2, "test": 1}"#);
    let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let u16s = |v: &[u16]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    write(d, "train.f32", &f32s(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    write(d, "train.u16", &u16s(&[0, 3]));
    write(d, "test.f32", &f32s(&[7.0, 8.0, 9.0]));
    write(d, "test.u16", &u16s(&[2]));
    let t = timit::load(d).unwrap();
    assert_eq!(t.sample_shape, vec![3]);
    assert_eq!(t.train.features, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(t.train.labels, vec![0, 3]);
    assert_eq!(t.test.labels, vec![2]);

    write(d, "test.u16", &u16s(&[4]));
    let e = err_text(timit::load(d));
    assert!(e.contains("test.u16") && e.contains("label 4 at row 0"), "{e}");
    write(d, "test.u16", &u16s(&[1]));
    write(d, "train.f32", &f32s(&[1.0]));
    assert!(err_text(timit::load(d)).contains("train.f32"));
}
