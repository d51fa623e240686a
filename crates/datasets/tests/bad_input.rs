//! Bad input for every file reader of the crate: files cut at any length, headers claiming sizes
//! the file does not hold (or that overflow), and random bytes. Each must be refused with a
//! [`DataError`] naming the file and the problem (or, for random bytes that happen to be well
//! formed, read consistently), never a panic and never a large allocation: a tracking allocator
//! records the largest single allocation of this test binary, which every test checks.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Debug;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use datasets::DataError;
use datasets::catalog::{self, FileState, RemoteFile};
use datasets::cifar::{self, Labels};
use datasets::{idx, optdigits, timit};
use proptest::prelude::*;
use proptest::sample::Index;

/// The largest allocation any test here legitimately needs is well under this.
const SMALL: usize = 16 << 20;

/// Allocations above this are refused outright (the process aborts) rather than attempted.
const REFUSED: usize = 1 << 30;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, recording the largest request.
struct Tracking;

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        if layout.size() > REFUSED { std::ptr::null_mut() } else { unsafe { System.alloc(layout) } }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        if layout.size() > REFUSED { std::ptr::null_mut() } else { unsafe { System.alloc_zeroed(layout) } }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        if new_size > REFUSED { std::ptr::null_mut() } else { unsafe { System.realloc(ptr, layout, new_size) } }
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

fn assert_small_allocations() {
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(largest <= SMALL, "an allocation of {largest} bytes was made (limit {SMALL})");
}

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(64)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::File::create(&p).unwrap().write_all(bytes).unwrap();
    p
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// `bytes` cut to a length in `0..bytes.len()`.
fn cut(bytes: &[u8], at: Index) -> &[u8] {
    &bytes[..at.index(bytes.len())]
}

/// The error of `r`, checked to name `path`; returns the problem.
fn refused<T: Debug>(r: Result<T, DataError>, path: &Path) -> String {
    let e = r.expect_err("bad input must be refused");
    assert_eq!(e.path, path, "the error names the wrong file: {e}");
    assert!(!e.problem.is_empty());
    assert!(e.to_string().starts_with(&path.display().to_string()), "{e}");
    e.problem
}

fn contains_any(problem: &str, words: &[&str]) -> bool {
    words.iter().any(|w| problem.contains(w))
}

fn idx_file(magic: u32, dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut b: Vec<u8> = [magic].iter().chain(dims).flat_map(|v| v.to_be_bytes()).collect();
    b.extend_from_slice(payload);
    b
}

/// Deterministic filler bytes.
fn filler(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

/// A dimension of an IDX header: often absurd.
fn idx_dim() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), 1u32..8, Just(1 << 31), Just(u32::MAX), any::<u32>()]
}

fn cifar_labels() -> impl Strategy<Value = Labels> {
    prop_oneof![Just(Labels::Cifar10), Just(Labels::Fine), Just(Labels::Coarse)]
}

fn record_len(labels: Labels) -> usize {
    if labels == Labels::Cifar10 { 3073 } else { 3074 }
}

fn class_count(labels: Labels) -> u32 {
    match labels {
        Labels::Cifar10 => 10,
        Labels::Fine => 100,
        Labels::Coarse => 20,
    }
}

/// `records` valid CIFAR records; returns the bytes and the labels `read_records` should give.
fn cifar_file(labels: Labels, records: usize, seed: u8) -> (Vec<u8>, Vec<u32>) {
    let mut bytes = Vec::new();
    let mut ys = Vec::new();
    for r in 0..records {
        let (coarse, fine) = ((r as u8 + seed) % 20, (r as u8).wrapping_mul(7).wrapping_add(seed) % 100);
        match labels {
            Labels::Cifar10 => {
                bytes.push(coarse % 10);
                ys.push(u32::from(coarse % 10));
            }
            Labels::Fine | Labels::Coarse => {
                bytes.extend([coarse, fine]);
                ys.push(u32::from(if labels == Labels::Fine { fine } else { coarse }));
            }
        }
        bytes.extend(filler(3072, seed.wrapping_add(r as u8)));
    }
    (bytes, ys)
}

fn optdigits_text(rows: &[(Vec<u8>, u8)]) -> String {
    rows.iter()
        .map(|(pixels, y)| format!("{},{y}\n", pixels.iter().map(u8::to_string).collect::<Vec<_>>().join(",")))
        .collect()
}

fn check_split_consistent(split: &datasets::Split, sample_len: usize, classes: u32) {
    assert_eq!(split.features.len(), split.len() * sample_len);
    assert!(split.labels.iter().all(|&y| y < classes));
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn idx_images_cut_anywhere_are_refused(
        n in 1u32..4, rows in 1u32..6, cols in 1u32..6, seed: u8, at: Index, gz: bool,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let full = idx_file(0x0803, &[n, rows, cols], &filler((n * rows * cols) as usize, seed));
        let packed = if gz { gzip(&full) } else { full };
        let p = write(dir.path(), "images", cut(&packed, at));
        let problem = refused(idx::read_images(&p), &p);
        prop_assert!(contains_any(&problem, &["truncated", "corrupt gzip stream"]), "{problem}");
        assert_small_allocations();
    }

    #[test]
    fn idx_labels_cut_anywhere_are_refused(n in 1usize..50, seed: u8, at: Index, gz: bool) {
        let dir = tempfile::tempdir().unwrap();
        let labels: Vec<u8> = filler(n, seed).iter().map(|b| b % 10).collect();
        let full = idx_file(0x0801, &[n as u32], &labels);
        let packed = if gz { gzip(&full) } else { full };
        let p = write(dir.path(), "labels", cut(&packed, at));
        let problem = refused(idx::read_labels(&p, 10), &p);
        prop_assert!(contains_any(&problem, &["truncated", "corrupt gzip stream"]), "{problem}");
        assert_small_allocations();
    }

    #[test]
    fn idx_headers_claiming_other_sizes_are_refused_without_allocating(
        n in idx_dim(), rows in idx_dim(), cols in idx_dim(), payload in 0usize..64, gz: bool,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let claimed = u128::from(n) * u128::from(rows) * u128::from(cols);
        let bytes = idx_file(0x0803, &[n, rows, cols], &filler(payload, 3));
        let p = write(dir.path(), "images", &if gz { gzip(&bytes) } else { bytes });
        let result = idx::read_images(&p);
        if claimed == payload as u128 && claimed > 0 {
            let (features, count, shape) = result.unwrap();
            prop_assert_eq!((count, shape), (n as usize, [rows as usize, cols as usize]));
            prop_assert_eq!(features.len(), payload);
        } else {
            let problem = refused(result, &p);
            prop_assert!(problem.contains("header says"), "{problem}");
            if claimed == 0 {
                prop_assert!(problem.contains("must be positive"), "{problem}");
            } else if claimed > u128::from(u64::MAX) - 16 {
                prop_assert!(problem.contains("overflows"), "{problem}");
            } else {
                prop_assert!(problem.contains(&format!("{n} images of {rows}×{cols}")), "{problem}");
                prop_assert!(problem.contains(&format!("{} bytes", claimed + 16)), "{problem}");
            }
        }
        assert_small_allocations();
    }

    #[test]
    fn idx_label_headers_claiming_other_counts_are_refused(n in idx_dim(), payload in 0usize..64, gz: bool) {
        let dir = tempfile::tempdir().unwrap();
        let bytes = idx_file(0x0801, &[n], &vec![1u8; payload]);
        let p = write(dir.path(), "labels", &if gz { gzip(&bytes) } else { bytes });
        let result = idx::read_labels(&p, 10);
        if n as usize == payload && n > 0 {
            prop_assert_eq!(result.unwrap(), vec![1; payload]);
        } else {
            let problem = refused(result, &p);
            prop_assert!(problem.contains(&format!("header says {n} labels")), "{problem}");
        }
        assert_small_allocations();
    }

    #[test]
    fn idx_random_bytes_are_refused_or_read_consistently(
        mut bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        magic in prop_oneof![Just(None), Just(Some(0x0803u32)), Just(Some(0x0801u32))],
        gz: bool,
    ) {
        if let (Some(m), true) = (magic, bytes.len() >= 4) {
            bytes[..4].copy_from_slice(&m.to_be_bytes());
        }
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "random", &if gz { gzip(&bytes) } else { bytes });
        match idx::read_images(&p) {
            Ok((features, n, [rows, cols])) => {
                prop_assert_eq!(features.len(), n * rows * cols);
                prop_assert!(features.iter().all(|v| (0.0..=1.0).contains(v)));
            }
            Err(e) => prop_assert_eq!(&e.path, &p),
        }
        match idx::read_labels(&p, 10) {
            Ok(labels) => prop_assert!(labels.iter().all(|&y| y < 10)),
            Err(e) => prop_assert_eq!(&e.path, &p),
        }
        assert_small_allocations();
    }

    #[test]
    fn cifar_cut_anywhere_is_refused_unless_whole_records(
        labels in cifar_labels(), records in 1usize..4, seed: u8, at: Index, gz: bool,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (full, ys) = cifar_file(labels, records, seed);
        let record = record_len(labels);
        let kept = if gz { gzip(&full) } else { full };
        let kept = cut(&kept, at);
        let p = write(dir.path(), "batch.bin", kept);
        let result = cifar::read_records(std::slice::from_ref(&p), labels);
        if !gz && !kept.is_empty() && kept.len().is_multiple_of(record) {
            // A cut between records leaves a shorter, valid file.
            let split = result.unwrap();
            prop_assert_eq!(&split.labels[..], &ys[..kept.len() / record]);
            check_split_consistent(&split, 3072, class_count(labels));
        } else {
            let problem = refused(result, &p);
            prop_assert!(
                contains_any(&problem, &["not a whole number", "empty", "corrupt gzip stream"]),
                "{problem}"
            );
        }
        assert_small_allocations();
    }

    #[test]
    fn cifar_random_bytes_are_refused_or_read_consistently(
        labels in cifar_labels(),
        len in prop_oneof![0usize..7000, Just(3073), Just(3074), Just(6146), Just(6148)],
        seed: u8,
        gz: bool,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = filler(len, seed);
        // Random-looking but reproducible: scramble with a simple generator.
        let mut state = u32::from(seed) | 1;
        for b in &mut bytes {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            *b ^= state as u8;
        }
        let p = write(dir.path(), "random.bin", &if gz { gzip(&bytes) } else { bytes });
        match cifar::read_records(std::slice::from_ref(&p), labels) {
            Ok(split) => {
                prop_assert_eq!(split.len() * record_len(labels), len);
                check_split_consistent(&split, 3072, class_count(labels));
            }
            Err(e) => prop_assert_eq!(&e.path, &p),
        }
        assert_small_allocations();
    }

    #[test]
    fn optdigits_cut_anywhere_gives_a_prefix_or_an_error(
        rows in proptest::collection::vec((proptest::collection::vec(0u8..=16, 64), 0u8..=9), 1..5),
        at: Index,
        gz: bool,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let text = optdigits_text(&rows);
        let full = if gz { gzip(text.as_bytes()) } else { text.into_bytes() };
        let p = write(dir.path(), "cut.tra", cut(&full, at));
        match optdigits::read(&p) {
            Ok(split) => {
                // Only a cut that leaves whole lines (or a last line lacking only its newline).
                prop_assert!(!gz);
                let ys: Vec<u32> = rows.iter().map(|(_, y)| u32::from(*y)).collect();
                prop_assert_eq!(&split.labels[..], &ys[..split.len()]);
                let pixels: Vec<f32> =
                    rows.iter().flat_map(|(x, _)| x.iter().map(|&v| f32::from(v) / 16.0)).collect();
                prop_assert_eq!(&split.features[..], &pixels[..split.features.len()]);
                check_split_consistent(&split, 64, 10);
            }
            Err(e) => {
                prop_assert_eq!(&e.path, &p);
                prop_assert!(
                    contains_any(&e.problem, &["line ", "no samples", "corrupt gzip stream"]),
                    "{}", e.problem
                );
            }
        }
        assert_small_allocations();
    }

    #[test]
    fn optdigits_random_bytes_are_refused_or_read_consistently(
        bytes in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..2048),
            // Mostly digits, commas and newlines, to get past the first checks.
            proptest::collection::vec(prop_oneof![Just(b','), Just(b'\n'), b'0'..=b'9'], 0..2048),
        ],
        gz: bool,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "random.tra", &if gz { gzip(&bytes) } else { bytes });
        match optdigits::read(&p) {
            Ok(split) => {
                check_split_consistent(&split, 64, 10);
                prop_assert!(split.features.iter().all(|v| (0.0..=1.0).contains(v)));
            }
            Err(e) => prop_assert_eq!(&e.path, &p),
        }
        assert_small_allocations();
    }

    #[test]
    fn timit_headers_claiming_other_sizes_are_refused_without_allocating(
        dim in timit_size(), classes in timit_size(), train in timit_size(), test in timit_size(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // The files hold dim 3, train 2, test 1, labels below 4.
        write_timit(d);
        let header = format!(r#"{{"dim": {dim}, "classes": {classes}, "train": {train}, "test": {test}}}"#);
        write(d, "header.json", header.as_bytes());
        let result = timit::load(d);
        if (dim, train, test) == (3, 2, 1) && (4..=65536).contains(&classes) {
            let t = result.unwrap();
            prop_assert_eq!(t.classes, classes);
            prop_assert_eq!((t.train.len(), t.test.len()), (2, 1));
        } else {
            let e = result.expect_err("a header that does not match the files must be refused");
            let names = ["header.json", "train.f32", "train.u16", "test.f32", "test.u16"];
            prop_assert!(names.iter().any(|n| e.path == d.join(n)), "{e}");
            if e.path == d.join("header.json") {
                prop_assert!(
                    contains_any(&e.problem, &["positive", "at most", "overflows", "at least one"]),
                    "{}", e.problem
                );
            } else {
                // A size the files do not hold, or (with fewer than 4 classes) a label of the files.
                prop_assert!(contains_any(&e.problem, &["header.json says", "out of range"]), "{}", e.problem);
            }
        }
        assert_small_allocations();
    }

    #[test]
    fn timit_files_cut_anywhere_are_refused(which in 0usize..4, at: Index) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_timit(d);
        let name = ["train.f32", "train.u16", "test.f32", "test.u16"][which];
        let full = fs::read(d.join(name)).unwrap();
        let p = write(d, name, cut(&full, at));
        let problem = refused(timit::load(d), &p);
        prop_assert!(problem.starts_with("truncated:") && problem.contains("header.json says"), "{problem}");
        assert_small_allocations();
    }

    #[test]
    fn timit_random_headers_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_timit(d);
        let p = write(d, "header.json", &bytes);
        let problem = refused(timit::load(d), &p);
        prop_assert!(contains_any(&problem, &["not a valid header", "cannot read"]), "{problem}");
        assert_small_allocations();
    }

    #[test]
    fn timit_random_features_are_read_or_refused_as_not_finite(
        bytes in proptest::collection::vec(any::<u8>(), 24),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_timit(d);
        let p = write(d, "train.f32", &bytes);
        match timit::load(d) {
            Ok(t) => prop_assert!(t.train.features.iter().all(|v| v.is_finite())),
            Err(e) => {
                prop_assert_eq!(&e.path, &p);
                prop_assert!(e.problem.contains("is not finite"), "{}", e.problem);
            }
        }
        assert_small_allocations();
    }

    #[test]
    fn catalog_never_verifies_cut_or_random_files(at: Index, random in proptest::collection::vec(any::<u8>(), 0..512)) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let file = RemoteFile { name: "a.gz", sha256: Some(ABC_SHA256), md5: None };
        let full = gzip(b"abc");
        let kept = cut(&full, at);
        let p = write(d, "a.gz", kept);
        let state = catalog::check(d, &file);
        prop_assert!(matches!(state, FileState::Corrupt { .. }), "{:?}", state);
        if kept.len() >= 2 {
            // Still a gzip stream, but an incomplete one.
            let problem = refused(catalog::content_sha256(&p), &p);
            prop_assert!(problem.contains("corrupt gzip stream"), "{problem}");
            let problem = refused(datasets::error::read_maybe_gz(&p), &p);
            prop_assert!(problem.contains("corrupt gzip stream"), "{problem}");
        }
        if random != b"abc" {
            write(d, "a.gz", &random);
            let state = catalog::check(d, &file);
        prop_assert!(matches!(state, FileState::Corrupt { .. }), "{:?}", state);
        }
        assert_small_allocations();
    }
}

/// SHA-256 of "abc" (the FIPS 180-2 test vector).
const ABC_SHA256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

/// A size in a TIMIT header: often absurd.
fn timit_size() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        1usize..5,
        Just(65536),
        Just(65537),
        Just(1 << 31),
        Just(1 << 62),
        Just(usize::MAX),
        any::<usize>()
    ]
}

/// Valid TIMIT-style files: dim 3, classes 4, 2 train rows and 1 test row.
fn write_timit(d: &Path) {
    let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let u16s = |v: &[u16]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    write(d, "header.json", br#"{"dim": 3, "classes": 4, "train": 2, "test": 1}"#);
    write(d, "train.f32", &f32s(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    write(d, "train.u16", &u16s(&[0, 3]));
    write(d, "test.f32", &f32s(&[7.0, 8.0, 9.0]));
    write(d, "test.u16", &u16s(&[2]));
}

#[test]
fn idx_headers_of_huge_sizes_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 2^31 labels announced, 3 present.
    let p = write(d, "labels", &idx_file(0x0801, &[1 << 31], &[1, 2, 3]));
    let problem = refused(idx::read_labels(&p, 10), &p);
    assert_eq!(problem, "truncated: header says 2147483648 labels (2147483656 bytes) but the file has 11 bytes");
    // The same as a gzip stream, whose length is only known by reading it.
    let p = write(d, "labels.gz", &gzip(&idx_file(0x0801, &[1 << 31], &[1, 2, 3])));
    let problem = refused(idx::read_labels(&p, 10), &p);
    assert_eq!(
        problem,
        "truncated: header says 2147483648 labels (2147483656 bytes) but the decompressed stream ends after 11 bytes"
    );
    // Dimensions whose product overflows 64 bits.
    let p = write(d, "images", &idx_file(0x0803, &[u32::MAX; 3], &[0; 16]));
    let problem = refused(idx::read_images(&p), &p);
    assert!(
        problem.contains("4294967295 images of 4294967295×4294967295") && problem.contains("overflows"),
        "{problem}"
    );
    // Trailing data, raw and compressed.
    let bytes = idx_file(0x0803, &[1, 2, 2], &[0; 5]);
    let p = write(d, "long", &bytes);
    let problem = refused(idx::read_images(&p), &p);
    assert!(problem.starts_with("trailing data") && problem.contains("the file has 21 bytes"), "{problem}");
    let p = write(d, "long.gz", &gzip(&bytes));
    let problem = refused(idx::read_images(&p), &p);
    assert!(problem.starts_with("trailing data") && problem.contains("decompressed stream is longer"), "{problem}");
    // A zero dimension.
    let p = write(d, "flat", &idx_file(0x0803, &[4, 0, 28], &[]));
    assert!(refused(idx::read_images(&p), &p).contains("every dimension must be positive"));
    // With no classes, every label is out of range (and the message does not underflow).
    let p = write(d, "one", &idx_file(0x0801, &[1], &[0]));
    assert!(refused(idx::read_labels(&p, 0), &p).contains("label 0 at index 0 is out of range"));
    assert_small_allocations();
}

#[test]
fn optdigits_overlong_lines_and_non_utf8_lines_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = write(d, "long.tra", &vec![b'0'; 1 << 20]);
    assert_eq!(refused(optdigits::read(&p), &p), "line 1 is longer than 4096 bytes");
    let p = write(d, "long.tra.gz", &gzip(&vec![b'0'; 1 << 20]));
    assert_eq!(refused(optdigits::read(&p), &p), "line 1 is longer than 4096 bytes");
    let p = write(d, "latin1.tra", b"\n\xff\xfe\n");
    assert_eq!(refused(optdigits::read(&p), &p), "line 2: not UTF-8 text");
    assert_small_allocations();
}

#[test]
fn timit_absurd_headers_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_timit(d);
    let h = d.join("header.json");
    let cases = [
        (format!(r#"{{"dim": 3, "classes": {}, "train": 2, "test": 1}}"#, 1u64 << 40), "classes 1099511627776"),
        (format!(r#"{{"dim": {}, "classes": 4, "train": 2, "test": 1}}"#, usize::MAX), "overflows"),
        (r#"{"dim": 3, "classes": 4, "train": 0, "test": 1}"#.to_string(), "train is 0"),
        (r#"{"dim": 3, "classes": 4, "train": -2, "test": 1}"#.to_string(), "not a valid header"),
        (r#"{"dim": 3, "classes": 4, "train": 2}"#.to_string(), "missing field `test`"),
    ];
    for (header, expected) in cases {
        write(d, "header.json", header.as_bytes());
        let problem = refused(timit::load(d), &h);
        assert!(problem.contains(expected), "{header}: {problem}");
    }
    // 2^31 rows of 3 f32: 24 GiB announced, 24 bytes present.
    write(d, "header.json", format!(r#"{{"dim": 3, "classes": 4, "train": {}, "test": 1}}"#, 1u64 << 31).as_bytes());
    let p = d.join("train.f32");
    assert_eq!(
        refused(timit::load(d), &p),
        "truncated: 24 bytes; header.json says 2147483648 rows of 3 f32 = 25769803776 bytes"
    );
    // An oversized header file.
    write(d, "header.json", &vec![b' '; 100_000]);
    assert!(refused(timit::load(d), &h).contains("100000 bytes; a header is at most 65536"));
    assert_small_allocations();
}
