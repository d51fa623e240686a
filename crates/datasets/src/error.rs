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

/// Reads a whole file, gunzipping it when it starts with the gzip magic bytes. The result grows
/// only with the bytes actually read; a truncated or corrupt gzip stream is an error.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    crate::input::Input::open(path)?.read_up_to(u64::MAX)
}
