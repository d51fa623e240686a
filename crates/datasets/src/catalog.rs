//! What flatland knows about each downloadable dataset: its folder, its files (under their
//! original names), their checksums, and mirrors to fetch it from.
//!
//! A file's SHA-256 is of its *decompressed* contents, so that a file from any mirror, or
//! recompressed, verifies while a corrupted one is refused. Where the authors publish only an
//! MD5 (Fashion-MNIST's `.gz` files, the CIFAR archives), fetch checks it too. CIFAR's authors
//! publish no per-file checksum: its files come out of an archive whose MD5 (and, for CIFAR-10,
//! SHA-256) is checked, and fetch records each extracted file's SHA-256 in `SHA256SUMS` beside
//! them, which later verifications check.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::DataError;
use crate::input::Input;

/// One file of a dataset.
#[derive(Debug, Clone, Copy)]
pub struct RemoteFile {
    /// Name as published (and as stored in the dataset's folder).
    pub name: &'static str,
    /// SHA-256 of the decompressed contents, hex; `None` where no one publishes it (then
    /// `SHA256SUMS`, written when the file was fetched and verified, stands in).
    pub sha256: Option<&'static str>,
    /// MD5 of the file as published (a `.gz` file's compressed bytes, an archive member's
    /// bytes), hex, where the authors publish it; checked when the file is fetched.
    pub md5: Option<&'static str>,
}

/// An archive that a dataset's files are extracted from.
#[derive(Debug, Clone, Copy)]
pub struct Archive {
    /// File name as published (appended to a mirror's base URL).
    pub name: &'static str,
    /// MD5 of the archive as published by its authors, hex.
    pub md5: &'static str,
    /// SHA-256 of the archive, hex, where known.
    pub sha256: Option<&'static str>,
    /// The members extracted: (path inside the archive, name of the dataset's file). Other
    /// plain files in the same top folder are skipped; anything else (a path that leaves that
    /// folder, a link, a device) makes the archive unacceptable.
    pub members: &'static [(&'static str, &'static str)],
}

/// The name of the file in a dataset's folder that lists the SHA-256 of files verified through
/// their archive (`sha256  name` lines, as `sha256sum` writes them).
pub const SUMS_FILE: &str = "SHA256SUMS";

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
    /// The archive the files come out of (`None`: each file is fetched on its own).
    pub archive: Option<Archive>,
}

/// The datasets whose checksums flatland records. (TIMIT is licensed and cannot be
/// downloaded; MNIST-1D is generated, its frozen split converted by hand: see README.)
pub const CATALOG: &[Entry] = &[
    Entry {
        name: "mnist",
        files: &[
            RemoteFile {
                name: "train-images-idx3-ubyte.gz",
                sha256: Some("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
                md5: None,
            },
            RemoteFile {
                name: "train-labels-idx1-ubyte.gz",
                sha256: Some("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
                md5: None,
            },
            RemoteFile {
                name: "t10k-images-idx3-ubyte.gz",
                sha256: Some("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
                md5: None,
            },
            RemoteFile {
                name: "t10k-labels-idx1-ubyte.gz",
                sha256: Some("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
                md5: None,
            },
        ],
        mirrors: &[
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ],
        license: "MNIST, LeCun, Cortes & Burges; CC BY-SA 3.0",
        archive: None,
    },
    // Checksums: ../shared/reference/checksums.md (the authors' MD5 of each .gz, as torchvision
    // checks it; SHA-256 of the contents computed from Debian's dataset-fashion-mnist).
    Entry {
        name: "fashion-mnist",
        files: &[
            RemoteFile {
                name: "train-images-idx3-ubyte.gz",
                sha256: Some("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
                md5: Some("8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            },
            RemoteFile {
                name: "train-labels-idx1-ubyte.gz",
                sha256: Some("bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
                md5: Some("25c81989df183df01b3e8a0aad5dffbe"),
            },
            RemoteFile {
                name: "t10k-images-idx3-ubyte.gz",
                sha256: Some("5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
                md5: Some("bef4ecab320f06d8554ea6380940ec79"),
            },
            RemoteFile {
                name: "t10k-labels-idx1-ubyte.gz",
                sha256: Some("0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
                md5: Some("bb300cfdad3c16e7a12a480ee83cd310"),
            },
        ],
        mirrors: &[
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ],
        license: "Fashion-MNIST, Xiao, Rasul & Vollgraf 2017; MIT",
        archive: None,
    },
    // The authors' page (www.cs.toronto.edu/~kriz/cifar.html) publishes each archive's MD5;
    // the SHA-256 of CIFAR-10's is a third-party record (checksums.md).
    Entry {
        name: "cifar-10",
        files: &[
            RemoteFile { name: "data_batch_1.bin", sha256: None, md5: None },
            RemoteFile { name: "data_batch_2.bin", sha256: None, md5: None },
            RemoteFile { name: "data_batch_3.bin", sha256: None, md5: None },
            RemoteFile { name: "data_batch_4.bin", sha256: None, md5: None },
            RemoteFile { name: "data_batch_5.bin", sha256: None, md5: None },
            RemoteFile { name: "test_batch.bin", sha256: None, md5: None },
            RemoteFile { name: "batches.meta.txt", sha256: None, md5: None },
        ],
        mirrors: &["https://www.cs.toronto.edu/~kriz/"],
        license: "CIFAR-10, Krizhevsky 2009 (cite the tech report)",
        archive: Some(Archive {
            name: "cifar-10-binary.tar.gz",
            md5: "c32a1d4ab5d03f1284b67883e8d87530",
            sha256: Some("c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"),
            members: &[
                ("cifar-10-batches-bin/data_batch_1.bin", "data_batch_1.bin"),
                ("cifar-10-batches-bin/data_batch_2.bin", "data_batch_2.bin"),
                ("cifar-10-batches-bin/data_batch_3.bin", "data_batch_3.bin"),
                ("cifar-10-batches-bin/data_batch_4.bin", "data_batch_4.bin"),
                ("cifar-10-batches-bin/data_batch_5.bin", "data_batch_5.bin"),
                ("cifar-10-batches-bin/test_batch.bin", "test_batch.bin"),
                ("cifar-10-batches-bin/batches.meta.txt", "batches.meta.txt"),
            ],
        }),
    },
    // Member MD5s of CIFAR-100's binary archive: a third-party record (checksums.md).
    Entry {
        name: "cifar-100",
        files: &[
            RemoteFile { name: "train.bin", sha256: None, md5: Some("6172c7755cfe09b2fe270c85cebc1b15") },
            RemoteFile { name: "test.bin", sha256: None, md5: Some("4499cfba6c016c1be1438163640a0898") },
            RemoteFile { name: "fine_label_names.txt", sha256: None, md5: None },
            RemoteFile { name: "coarse_label_names.txt", sha256: None, md5: None },
        ],
        mirrors: &["https://www.cs.toronto.edu/~kriz/"],
        license: "CIFAR-100, Krizhevsky 2009 (cite the tech report)",
        archive: Some(Archive {
            name: "cifar-100-binary.tar.gz",
            md5: "03b5dce01913d631647c71ecec9e9cb8",
            sha256: None,
            members: &[
                ("cifar-100-binary/train.bin", "train.bin"),
                ("cifar-100-binary/test.bin", "test.bin"),
                ("cifar-100-binary/fine_label_names.txt", "fine_label_names.txt"),
                ("cifar-100-binary/coarse_label_names.txt", "coarse_label_names.txt"),
            ],
        }),
    },
    Entry {
        name: "optdigits",
        files: &[
            RemoteFile {
                name: "optdigits.tra",
                sha256: Some("e1b683cc211604fe8fd8c4417e6a69f31380e0c61d4af22e93cc21e9257ffedd"),
                md5: None,
            },
            RemoteFile {
                name: "optdigits.tes",
                sha256: Some("6ebb3d2fee246a4e99363262ddf8a00a3c41bee6014c373ed9d9216ba7f651b8"),
                md5: None,
            },
        ],
        mirrors: &["https://archive.ics.uci.edu/ml/machine-learning-databases/optdigits/"],
        license: "UCI optdigits, Alpaydin & Kaynak 1998; CC BY 4.0",
        archive: None,
    },
];

/// The catalog entry called `name`.
pub fn entry(name: &str) -> Option<&'static Entry> {
    CATALOG.iter().find(|e| e.name == name)
}

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// MD5 (hex) of the bytes of `path` as stored (not decompressed), read in chunks.
pub fn file_md5(path: &Path) -> Result<String, DataError> {
    raw_digest::<md5::Md5>(path)
}

/// SHA-256 (hex) of the bytes of `path` as stored (not decompressed): an archive's own hash.
pub fn file_sha256(path: &Path) -> Result<String, DataError> {
    raw_digest::<Sha256>(path)
}

fn raw_digest<D: Digest>(path: &Path) -> Result<String, DataError> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| DataError::new(path, format!("cannot open: {e}")))?;
    let mut hasher = D::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let got = file.read(&mut chunk).map_err(|e| DataError::new(path, format!("cannot read: {e}")))?;
        if got == 0 {
            break;
        }
        hasher.update(&chunk[..got]);
    }
    Ok(hex(&hasher.finalize()))
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
    Ok(hex(&hasher.finalize()))
}

/// The state of one file in a dataset's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// Neither the file nor its uncompressed form is there.
    Missing,
    /// Present, and its contents hash as expected.
    Verified(PathBuf),
    /// Present, but there is nothing to check it against: no published checksum, and no
    /// `SHA256SUMS` entry from a verified fetch (a file put in place by hand).
    Unverified(PathBuf),
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

/// The SHA-256 that `SHA256SUMS` in `folder` records for `name`, if any.
pub fn recorded_sha256(folder: &Path, name: &str) -> Option<String> {
    let sums = std::fs::read_to_string(folder.join(SUMS_FILE)).ok()?;
    sums.lines().find_map(|l| {
        let (hash, file) = l.split_once("  ")?;
        (file.trim_end() == name).then(|| hash.to_string())
    })
}

/// Checks one file of a dataset in `folder`: against its published SHA-256, else against the
/// one recorded in `SHA256SUMS` when it was fetched.
pub fn check(folder: &Path, file: &RemoteFile) -> FileState {
    let Some(path) = locate(folder, file) else { return FileState::Missing };
    let expected = match file.sha256 {
        Some(h) => h.to_string(),
        None => match recorded_sha256(folder, file.name) {
            Some(h) => h,
            None => return FileState::Unverified(path),
        },
    };
    match content_sha256(&path) {
        Ok(h) if h == expected => FileState::Verified(path),
        Ok(h) => FileState::Corrupt { path, expected, actual: h },
        Err(e) => FileState::Corrupt { path, expected, actual: e.problem },
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
        let file = RemoteFile { name: "a.gz", sha256: Some(abc), md5: None };
        assert_eq!(check(dir.path(), &file), FileState::Verified(packed.clone()));
        std::fs::remove_file(&packed).unwrap();
        assert_eq!(check(dir.path(), &file), FileState::Verified(raw.clone()), "the uncompressed form counts too");
        std::fs::write(&raw, b"abd").unwrap();
        assert!(matches!(check(dir.path(), &file), FileState::Corrupt { .. }));
        std::fs::remove_file(&raw).unwrap();
        assert_eq!(check(dir.path(), &file), FileState::Missing);
    }
}
