//! The one error type of the loaders: which file, and what is wrong with it.

use std::fmt;
use std::path::{Path, PathBuf};

/// A dataset file that could not be read or is malformed.
#[derive(Debug)]
pub struct DataError {
    /// The file (or folder) concerned.
    pub path: PathBuf,
    /// What is wrong, in words.
    pub problem: String,
}

impl DataError {
    /// An error about `path`.
    pub fn new(path: &Path, problem: impl Into<String>) -> Self {
        DataError { path: path.to_path_buf(), problem: problem.into() }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.problem)
    }
}

impl std::error::Error for DataError {}

/// Reads a whole file, gunzipping it when it starts with the gzip magic bytes.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = std::fs::read(path).map_err(|e| DataError::new(path, format!("cannot read: {e}")))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut out)
            .map_err(|e| DataError::new(path, format!("corrupt gzip stream: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}
