//! MNIST and Fashion-MNIST in the IDX format (LeCun et al.), raw or gzip-compressed.
//!
//! Images: magic 0x00000803, then u32 big-endian count, rows, columns, then one byte per pixel.
//! Labels: magic 0x00000801, then u32 count, then one byte per label. Pixels are scaled to [0, 1].

use std::path::{Path, PathBuf};

use crate::error::DataError;
use crate::input::Input;
use crate::{Dataset, Split};

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Reads an IDX file with `magic` and `dims.len()` dimensions: fills `dims` from the header and
/// returns the payload, whose size the header must state exactly. The size the header implies is
/// computed with checked arithmetic and compared with the file's length (or, for a gzip stream,
/// with what the stream holds, read in bounded pieces) before anything of that size is allocated.
/// `describe` words the dimensions for messages, e.g. "3 images of 28×28".
fn read_idx(
    path: &Path,
    magic: u32,
    kind: &str,
    dims: &mut [u32],
    describe: impl Fn(&[u32]) -> String,
) -> Result<Vec<u8>, DataError> {
    let mut input = Input::open(path)?;
    let header_len = 4 + 4 * dims.len();
    let mut header = vec![0u8; header_len];
    let got = input.fill(&mut header)?;
    if got < header_len {
        return Err(input.error(format!(
            "truncated: the {} has {got} bytes, an IDX {kind} header needs {header_len}",
            input.what()
        )));
    }
    let found = be_u32(&header, 0);
    if found != magic {
        return Err(input.error(format!("wrong magic number 0x{found:08x}; IDX {kind} have 0x{magic:08x}")));
    }
    for (i, d) in dims.iter_mut().enumerate() {
        *d = be_u32(&header, 4 + 4 * i);
    }
    let what = describe(dims);
    if dims.contains(&0) {
        return Err(input.error(format!("header says {what}; every dimension must be positive")));
    }
    let header_len = header_len as u64;
    let expected = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(u64::from(d)))
        .and_then(|payload| payload.checked_add(header_len))
        .ok_or_else(|| input.error(format!("header says {what}: that many bytes overflows a 64-bit size")))?;
    let payload = expected - header_len;
    if usize::try_from(payload).is_err() {
        return Err(input.error(format!("header says {what} ({expected} bytes): more than this machine can address")));
    }
    if let Some(len) = input.raw_len()
        && len != expected
    {
        return Err(input.error(format!(
            "{}: header says {what} ({expected} bytes) but the file has {len} bytes",
            if len < expected { "truncated" } else { "trailing data" },
        )));
    }
    // One byte more than the payload, to see whether the stream goes on.
    let bytes = input.read_up_to(payload + 1)?;
    let read = bytes.len() as u64;
    if read < payload {
        return Err(input.error(format!(
            "truncated: header says {what} ({expected} bytes) but the {} ends after {} bytes",
            input.what(),
            header_len + read
        )));
    }
    if read > payload {
        return Err(input.error(format!(
            "trailing data: header says {what} ({expected} bytes) but the {} is longer",
            input.what()
        )));
    }
    Ok(bytes)
}

/// Images of an IDX file: (pixels scaled to [0, 1], rows, columns).
///
/// Refuses, naming the file: a missing or short header, a wrong magic number, a zero dimension, a
/// size that overflows, a file or decompressed stream shorter or longer than the header says, and
/// a corrupt gzip stream.
pub fn read_images(path: &Path) -> Result<(Vec<f32>, usize, [usize; 2]), DataError> {
    let mut dims = [0u32; 3];
    let bytes = read_idx(path, IMAGES_MAGIC, "images", &mut dims, |d| format!("{} images of {}×{}", d[0], d[1], d[2]))?;
    let [n, rows, cols] = dims.map(|d| d as usize);
    Ok((bytes.iter().map(|&p| p as f32 / 255.0).collect(), n, [rows, cols]))
}

/// Labels of an IDX file, each checked to be below `classes`.
///
/// Refuses what [`read_images`] refuses, and labels out of range.
pub fn read_labels(path: &Path, classes: usize) -> Result<Vec<u32>, DataError> {
    let mut dims = [0u32; 1];
    let bytes = read_idx(path, LABELS_MAGIC, "labels", &mut dims, |d| format!("{} labels", d[0]))?;
    let labels: Vec<u32> = bytes.iter().map(|&b| b as u32).collect();
    if let Some((i, y)) = labels.iter().enumerate().find(|(_, y)| **y as usize >= classes) {
        return Err(DataError::new(
            path,
            format!("label {y} at index {i} is out of range (expected below {classes}, the number of classes)"),
        ));
    }
    Ok(labels)
}

/// The first existing file among `name.gz` and `name` in `dir`.
fn find(dir: &Path, name: &str) -> Result<PathBuf, DataError> {
    [format!("{name}.gz"), name.to_string()]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.exists())
        .ok_or_else(|| DataError::new(dir, format!("missing {name} (or {name}.gz)")))
}

/// One split from an images file and a labels file, which must hold the same number of samples.
pub fn read_split(images: &Path, labels: &Path) -> Result<(Split, [usize; 2]), DataError> {
    let (features, n, shape) = read_images(images)?;
    let labels_v = read_labels(labels, 10)?;
    if labels_v.len() != n {
        return Err(DataError::new(
            labels,
            format!("{} labels for {n} images in {}", labels_v.len(), images.display()),
        ));
    }
    Ok((Split { features, labels: labels_v }, shape))
}

/// MNIST or Fashion-MNIST from `dir`, holding the four files under their original names
/// (`train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`, `t10k-…`).
pub fn load(dir: &Path, name: &str, class_names: &[&str]) -> Result<Dataset, DataError> {
    let (train, shape) = read_split(&find(dir, "train-images-idx3-ubyte")?, &find(dir, "train-labels-idx1-ubyte")?)?;
    let (test, test_shape) = read_split(&find(dir, "t10k-images-idx3-ubyte")?, &find(dir, "t10k-labels-idx1-ubyte")?)?;
    if shape != test_shape {
        return Err(DataError::new(dir, format!("train images are {shape:?}, test images {test_shape:?}")));
    }
    Ok(Dataset {
        name: name.into(),
        sample_shape: vec![1, shape[0], shape[1]],
        classes: class_names.len(),
        class_names: class_names.iter().map(|s| s.to_string()).collect(),
        train,
        test,
        provenance: format!("{name} IDX files in {}", dir.display()),
    })
}

/// MNIST digits.
pub const MNIST_CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// Fashion-MNIST classes.
pub const FASHION_CLASSES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
