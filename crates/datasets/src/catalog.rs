//! What flatland knows about each downloadable dataset: its folder, its files (under their
//! original names), the SHA-256 of each file's *decompressed* contents, and mirrors to fetch
//! it from. Hashing the decompressed contents makes a file from any mirror, or recompressed,
//! verify, while a corrupted one is refused.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::DataError;
use crate::input::Input;

/// One file of a dataset.
#[derive(Debug, Clone, Copy)]
pub struct RemoteFile {
    /// Name as published (and as stored in the dataset's folder).
    pub name: &'static str,
    /// SHA-256 of the decompressed contents, hex.
    pub sha256: &'static str,
}

/// A dataset that can be fetched.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// Folder name under the data directory.
    pub name: &'static str,
    /// Its files.
    pub files: &'static [RemoteFile],
    /// Base URLs tried in order; a file's URL is the base followed by its name.
    pub mirrors: &'static [&'static str],
    /// License and citation, in one line.
    pub license: &'static str,
}

/// The datasets whose checksums flatland records. (CIFAR-10/100 and Fashion-MNIST are loaded
/// from files a user puts in place; their checksums are not recorded yet, so they are not
/// fetched. TIMIT is licensed and cannot be downloaded.)
pub const CATALOG: &[Entry] = &[
    Entry {
        name: "mnist",
        files: &[
            RemoteFile {
                name: "train-images-idx3-ubyte.gz",
                sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            },
            RemoteFile {
                name: "train-labels-idx1-ubyte.gz",
                sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            },
            RemoteFile {
                name: "t10k-images-idx3-ubyte.gz",
                sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            },
            RemoteFile {
                name: "t10k-labels-idx1-ubyte.gz",
                sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            },
        ],
        mirrors: &[
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ],
        license: "MNIST, LeCun, Cortes & Burges; CC BY-SA 3.0",
    },
    Entry {
        name: "optdigits",
        files: &[
            RemoteFile {
                name: "optdigits.tra",
                sha256: "e1b683cc211604fe8fd8c4417e6a69f31380e0c61d4af22e93cc21e9257ffedd",
            },
            RemoteFile {
                name: "optdigits.tes",
                sha256: "6ebb3d2fee246a4e99363262ddf8a00a3c41bee6014c373ed9d9216ba7f651b8",
            },
        ],
        mirrors: &["https://archive.ics.uci.edu/ml/machine-learning-databases/optdigits/"],
        license: "UCI optdigits, Alpaydin & Kaynak 1998; CC BY 4.0",
    },
];

/// The catalog entry called `name`.
pub fn entry(name: &str) -> Option<&'static Entry> {
    CATALOG.iter().find(|e| e.name == name)
}

/// SHA-256 (hex) of the decompressed contents of `path`.
/// The file is hashed as it is read, so memory stays small whatever its size; a truncated or
/// corrupt gzip stream is an error naming the file.
pub fn content_sha256(path: &Path) -> Result<String, DataError> {
    let mut input = Input::open(path)?;
    let mut hasher = Sha256::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let got = input.fill(&mut chunk)?;
        hasher.update(&chunk[..got]);
        if got < chunk.len() {
            break;
        }
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The state of one file in a dataset's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// Neither the file nor its uncompressed form is there.
    Missing,
    /// Present, and its contents hash as expected.
    Verified(PathBuf),
    /// Present with other contents (or unreadable).
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Expected SHA-256 of the decompressed contents.
        expected: String,
        /// What it hashed to, or why it could not be read.
        actual: String,
    },
}

/// Where `file` is in `folder`: under its name, or uncompressed (name without `.gz`).
pub fn locate(folder: &Path, file: &RemoteFile) -> Option<PathBuf> {
    let plain = file.name.strip_suffix(".gz").unwrap_or(file.name);
    [file.name, plain].iter().map(|n| folder.join(n)).find(|p| p.is_file())
}

/// Checks one file of a dataset in `folder`.
pub fn check(folder: &Path, file: &RemoteFile) -> FileState {
    let Some(path) = locate(folder, file) else { return FileState::Missing };
    match content_sha256(&path) {
        Ok(h) if h == file.sha256 => FileState::Verified(path),
        Ok(h) => FileState::Corrupt { path, expected: file.sha256.into(), actual: h },
        Err(e) => FileState::Corrupt { path, expected: file.sha256.into(), actual: e.problem },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hash_ignores_compression() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("a");
        std::fs::write(&raw, b"abc").unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gz, b"abc").unwrap();
        let packed = dir.path().join("a.gz");
        std::fs::write(&packed, gz.finish().unwrap()).unwrap();
        // SHA-256("abc") is the FIPS 180-2 test vector.
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(content_sha256(&raw).unwrap(), abc);
        assert_eq!(content_sha256(&packed).unwrap(), abc);
        let file = RemoteFile { name: "a.gz", sha256: abc };
        assert_eq!(check(dir.path(), &file), FileState::Verified(packed.clone()));
        std::fs::remove_file(&packed).unwrap();
        assert_eq!(check(dir.path(), &file), FileState::Verified(raw.clone()), "the uncompressed form counts too");
        std::fs::write(&raw, b"abd").unwrap();
        assert!(matches!(check(dir.path(), &file), FileState::Corrupt { .. }));
        std::fs::remove_file(&raw).unwrap();
        assert_eq!(check(dir.path(), &file), FileState::Missing);
    }
}
