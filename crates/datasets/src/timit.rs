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

fn read_split(dir: &Path, name: &str, rows: usize, header: &Header) -> Result<Split, DataError> {
    let fpath = dir.join(format!("{name}.f32"));
    let lpath = dir.join(format!("{name}.u16"));
    let f = std::fs::read(&fpath).map_err(|e| DataError::new(&fpath, format!("cannot read: {e}")))?;
    let l = std::fs::read(&lpath).map_err(|e| DataError::new(&lpath, format!("cannot read: {e}")))?;
    if f.len() != rows * header.dim * 4 {
        return Err(DataError::new(
            &fpath,
            format!(
                "{} bytes; header.json says {rows} rows of {} f32 = {} bytes",
                f.len(),
                header.dim,
                rows * header.dim * 4
            ),
        ));
    }
    if l.len() != rows * 2 {
        return Err(DataError::new(
            &lpath,
            format!("{} bytes; header.json says {rows} u16 labels = {} bytes", l.len(), rows * 2),
        ));
    }
    let labels: Vec<u32> = l.chunks(2).map(|b| u16::from_le_bytes([b[0], b[1]]) as u32).collect();
    if let Some((i, y)) = labels.iter().enumerate().find(|(_, y)| **y as usize >= header.classes) {
        return Err(DataError::new(
            &lpath,
            format!("label {y} at row {i} is out of range (classes 0..{})", header.classes - 1),
        ));
    }
    Ok(Split { features: f.chunks(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(), labels })
}

/// TIMIT-style features from `dir` (see the module docs for the format).
pub fn load(dir: &Path) -> Result<Dataset, DataError> {
    let hpath = dir.join("header.json");
    let text = std::fs::read_to_string(&hpath).map_err(|e| DataError::new(&hpath, format!("cannot read: {e}")))?;
    let header: Header =
        serde_json::from_str(&text).map_err(|e| DataError::new(&hpath, format!("not a valid header: {e}")))?;
    if header.dim == 0 || header.classes == 0 {
        return Err(DataError::new(&hpath, "dim and classes must be positive"));
    }
    Ok(Dataset {
        name: "timit".into(),
        sample_shape: vec![header.dim],
        classes: header.classes,
        class_names: (0..header.classes).map(|c| c.to_string()).collect(),
        train: read_split(dir, "train", header.train, &header)?,
        test: read_split(dir, "test", header.test, &header)?,
        provenance: format!("user-supplied TIMIT-style features in {}", dir.display()),
    })
}
