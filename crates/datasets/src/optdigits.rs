//! UCI optical recognition of handwritten digits (Alpaydin & Kaynak 1998): `optdigits.tra` and
//! `optdigits.tes`, one sample per line, 64 integers 0..16 (an 8×8 image) and the digit.
//! Features are scaled to [0, 1] (divided by 16).

use std::path::Path;

use crate::error::{DataError, read_maybe_gz};
use crate::{Dataset, Split};

/// Reads one optdigits file.
pub fn read(path: &Path) -> Result<Split, DataError> {
    let bytes = read_maybe_gz(path)?;
    let text = String::from_utf8(bytes).map_err(|_| DataError::new(path, "not UTF-8 text"))?;
    let mut split = Split { features: Vec::new(), labels: Vec::new() };
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let values: Vec<&str> = line.trim().split(',').collect();
        if values.len() != 65 {
            return Err(DataError::new(
                path,
                format!("line {}: {} values, expected 64 pixels and a label", i + 1, values.len()),
            ));
        }
        for v in &values[..64] {
            let p: u32 = v
                .trim()
                .parse()
                .map_err(|_| DataError::new(path, format!("line {}: pixel '{v}' is not an integer", i + 1)))?;
            if p > 16 {
                return Err(DataError::new(path, format!("line {}: pixel {p} is out of range 0..16", i + 1)));
            }
            split.features.push(p as f32 / 16.0);
        }
        let y: u32 = values[64]
            .trim()
            .parse()
            .map_err(|_| DataError::new(path, format!("line {}: label '{}' is not an integer", i + 1, values[64])))?;
        if y > 9 {
            return Err(DataError::new(path, format!("line {}: label {y} is out of range 0..9", i + 1)));
        }
        split.labels.push(y);
    }
    if split.is_empty() {
        return Err(DataError::new(path, "no samples"));
    }
    Ok(split)
}

/// optdigits from `dir` holding `optdigits.tra` (train) and `optdigits.tes` (test).
pub fn load(dir: &Path) -> Result<Dataset, DataError> {
    Ok(Dataset {
        name: "optdigits".into(),
        sample_shape: vec![1, 8, 8],
        classes: 10,
        class_names: (0..10).map(|d| d.to_string()).collect(),
        train: read(&dir.join("optdigits.tra"))?,
        test: read(&dir.join("optdigits.tes"))?,
        provenance: format!("UCI optdigits files in {}", dir.display()),
    })
}
