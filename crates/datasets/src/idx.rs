//! MNIST and Fashion-MNIST in the IDX format (LeCun et al.), raw or gzip-compressed.
//!
//! Images: magic 0x00000803, then u32 big-endian count, rows, columns, then one byte per pixel.
//! Labels: magic 0x00000801, then u32 count, then one byte per label. Pixels are scaled to [0, 1].

use std::path::{Path, PathBuf};

use crate::error::{DataError, read_maybe_gz};
use crate::{Dataset, Split};

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Images of an IDX file: (pixels scaled to [0, 1], rows, columns).
pub fn read_images(path: &Path) -> Result<(Vec<f32>, usize, [usize; 2]), DataError> {
    let bytes = read_maybe_gz(path)?;
    if bytes.len() < 16 {
        return Err(DataError::new(path, format!("truncated: {} bytes, an IDX image header needs 16", bytes.len())));
    }
    let magic = be_u32(&bytes, 0);
    if magic != IMAGES_MAGIC {
        return Err(DataError::new(
            path,
            format!("wrong magic number 0x{magic:08x}; IDX images have 0x{IMAGES_MAGIC:08x}"),
        ));
    }
    let (n, rows, cols) = (be_u32(&bytes, 4) as usize, be_u32(&bytes, 8) as usize, be_u32(&bytes, 12) as usize);
    let expected = 16 + n * rows * cols;
    if bytes.len() != expected {
        return Err(DataError::new(
            path,
            format!(
                "{}: header says {n} images of {rows}×{cols} ({expected} bytes) but the file has {} bytes",
                if bytes.len() < expected { "truncated" } else { "trailing data" },
                bytes.len()
            ),
        ));
    }
    Ok((bytes[16..].iter().map(|&p| p as f32 / 255.0).collect(), n, [rows, cols]))
}

/// Labels of an IDX file, each checked to be below `classes`.
pub fn read_labels(path: &Path, classes: usize) -> Result<Vec<u32>, DataError> {
    let bytes = read_maybe_gz(path)?;
    if bytes.len() < 8 {
        return Err(DataError::new(path, format!("truncated: {} bytes, an IDX label header needs 8", bytes.len())));
    }
    let magic = be_u32(&bytes, 0);
    if magic != LABELS_MAGIC {
        return Err(DataError::new(
            path,
            format!("wrong magic number 0x{magic:08x}; IDX labels have 0x{LABELS_MAGIC:08x}"),
        ));
    }
    let n = be_u32(&bytes, 4) as usize;
    if bytes.len() != 8 + n {
        return Err(DataError::new(
            path,
            format!("header says {n} labels but the file holds {}", bytes.len() as i64 - 8),
        ));
    }
    let labels: Vec<u32> = bytes[8..].iter().map(|&b| b as u32).collect();
    if let Some((i, y)) = labels.iter().enumerate().find(|(_, y)| **y as usize >= classes) {
        return Err(DataError::new(
            path,
            format!("label {y} at index {i} is out of range (classes 0..{})", classes - 1),
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
