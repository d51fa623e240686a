//! UCI optical recognition of handwritten digits (Alpaydin & Kaynak 1998): `optdigits.tra` and
//! `optdigits.tes`, one sample per line, 64 integers 0..16 (an 8×8 image) and the digit.
//! Features are scaled to [0, 1] (divided by 16).

use std::path::Path;

use crate::error::DataError;
use crate::input::Input;
use crate::{Dataset, Split};

/// Longest line accepted: 65 values of at most two digits, with room for spaces and a `\r`.
const MAX_LINE: usize = 4096;

/// Reads one optdigits file (raw or gzip-compressed), line by line.
///
/// Refuses, naming the file and the line: a line that is not UTF-8, longer than 4096 bytes, without
/// exactly 65 values, with a pixel that is not an integer in 0..16 or a label that is not one in
/// 0..9; a file without samples; and a corrupt gzip stream.
pub fn read(path: &Path) -> Result<Split, DataError> {
    let mut input = Input::open(path)?;
    let mut split = Split { features: Vec::new(), labels: Vec::new() };
    let mut number = 0;
    loop {
        number += 1;
        let Some(bytes) = input.read_line(MAX_LINE, number)? else { break };
        let line =
            std::str::from_utf8(&bytes).map_err(|_| DataError::new(path, format!("line {number}: not UTF-8 text")))?;
        if line.trim().is_empty() {
            continue;
        }
        let values: Vec<&str> = line.trim().split(',').collect();
        if values.len() != 65 {
            return Err(DataError::new(
                path,
                format!("line {number}: {} values, expected 64 pixels and a label", values.len()),
            ));
        }
        for v in &values[..64] {
            let p: u32 = v
                .trim()
                .parse()
                .map_err(|_| DataError::new(path, format!("line {number}: pixel '{v}' is not an integer")))?;
            if p > 16 {
                return Err(DataError::new(path, format!("line {number}: pixel {p} is out of range 0..16")));
            }
            split.features.push(p as f32 / 16.0);
        }
        let y: u32 = values[64]
            .trim()
            .parse()
            .map_err(|_| DataError::new(path, format!("line {number}: label '{}' is not an integer", values[64])))?;
        if y > 9 {
            return Err(DataError::new(path, format!("line {number}: label {y} is out of range 0..9")));
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
