//! TIMIT-style frame features supplied by the user (TIMIT is licensed and cannot be downloaded).
//!
//! Format, in one folder:
//! - `header.json`: `{"dim": 360, "classes": 1973, "train": N, "test": M}`;
//! - `train.f32`, `test.f32`: row-major little-endian f32 matrices of `N × dim` and `M × dim`;
//! - `train.u16`, `test.u16`: little-endian u16 labels, `N` and `M` of them, each `< classes`.
//!
//! Any feature extractor (Kaldi, python_speech_features, …) can write this with a few lines.

use std::path::Path;

use serde::Deserialize;

use crate::error::DataError;
use crate::{Dataset, Split};

/// `header.json`.
#[derive(Debug, Deserialize)]
struct Header {
    dim: usize,
    classes: usize,
    train: usize,
    test: usize,
}

/// Largest `header.json` read; a real one is a few dozen bytes.
const MAX_HEADER_BYTES: u64 = 64 * 1024;

/// Labels are u16, so there are at most this many classes.
const MAX_CLASSES: usize = 1 << 16;

/// Reads `path`, whose length must be `expected` bytes; the length is checked before reading.
/// `claim` says where `expected` comes from, for the message.
fn read_exactly(path: &Path, expected: usize, claim: &str) -> Result<Vec<u8>, DataError> {
    let cannot = |e: std::io::Error| DataError::new(path, format!("cannot read: {e}"));
    let mismatch = |len: u64| {
        DataError::new(
            path,
            format!(
                "{}: {len} bytes; header.json says {claim} = {expected} bytes",
                if len < expected as u64 { "truncated" } else { "trailing data" }
            ),
        )
    };
    let len = std::fs::metadata(path).map_err(cannot)?.len();
    if len != expected as u64 {
        return Err(mismatch(len));
    }
    let bytes = std::fs::read(path).map_err(cannot)?;
    if bytes.len() != expected {
        // The file changed since its length was checked.
        return Err(mismatch(bytes.len() as u64));
    }
    Ok(bytes)
}

fn read_split(dir: &Path, name: &str, rows: usize, header: &Header) -> Result<Split, DataError> {
    let fpath = dir.join(format!("{name}.f32"));
    let lpath = dir.join(format!("{name}.u16"));
    // `load` has checked that these products do not overflow.
    let f = read_exactly(&fpath, rows * header.dim * 4, &format!("{rows} rows of {} f32", header.dim))?;
    let l = read_exactly(&lpath, rows * 2, &format!("{rows} u16 labels"))?;
    let labels: Vec<u32> = l.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]]) as u32).collect();
    if let Some((i, y)) = labels.iter().enumerate().find(|(_, y)| **y as usize >= header.classes) {
        return Err(DataError::new(
            &lpath,
            format!("label {y} at row {i} is out of range (classes 0..{})", header.classes - 1),
        ));
    }
    let features: Vec<f32> = f.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    if let Some((i, v)) = features.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(DataError::new(
            &fpath,
            format!("value {v} at row {}, column {} is not finite", i / header.dim, i % header.dim),
        ));
    }
    Ok(Split { features, labels })
}

/// TIMIT-style features from `dir` (see the module docs for the format).
///
/// Refuses, naming the file: a `header.json` that is over 64 KiB, not valid, or with a zero `dim`,
/// `classes`, `train` or `test`, more than 65536 classes (labels are u16), or sizes that overflow;
/// a feature or label file whose length (checked before it is read) differs from the header's;
/// a non-finite feature; and a label out of range.
pub fn load(dir: &Path) -> Result<Dataset, DataError> {
    let hpath = dir.join("header.json");
    let cannot = |e: std::io::Error| DataError::new(&hpath, format!("cannot read: {e}"));
    let len = std::fs::metadata(&hpath).map_err(cannot)?.len();
    if len > MAX_HEADER_BYTES {
        return Err(DataError::new(&hpath, format!("{len} bytes; a header is at most {MAX_HEADER_BYTES}")));
    }
    let text = std::fs::read_to_string(&hpath).map_err(cannot)?;
    let header: Header =
        serde_json::from_str(&text).map_err(|e| DataError::new(&hpath, format!("not a valid header: {e}")))?;
    if header.dim == 0 || header.classes == 0 {
        return Err(DataError::new(&hpath, "dim and classes must be positive"));
    }
    if header.classes > MAX_CLASSES {
        return Err(DataError::new(
            &hpath,
            format!("classes {}: labels are u16, so there are at most {MAX_CLASSES}", header.classes),
        ));
    }
    for (name, rows) in [("train", header.train), ("test", header.test)] {
        if rows == 0 {
            return Err(DataError::new(&hpath, format!("{name} is 0; each split needs at least one row")));
        }
        if rows.checked_mul(header.dim).and_then(|v| v.checked_mul(4)).is_none() {
            return Err(DataError::new(
                &hpath,
                format!("{name}: {rows} rows of {} f32 is a size that overflows", header.dim),
            ));
        }
    }
    let train = read_split(dir, "train", header.train, &header)?;
    let test = read_split(dir, "test", header.test, &header)?;
    Ok(Dataset {
        name: "timit".into(),
        sample_shape: vec![header.dim],
        classes: header.classes,
        class_names: (0..header.classes).map(|c| c.to_string()).collect(),
        train,
        test,
        provenance: format!("user-supplied TIMIT-style features in {}", dir.display()),
    })
}
