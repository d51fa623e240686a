//! CIFAR-10 and CIFAR-100 in their binary formats (Krizhevsky 2009).
//!
//! CIFAR-10 record: 1 label byte, then 3072 pixel bytes (1024 red, 1024 green, 1024 blue, rows of
//! 32). CIFAR-100 record: 1 coarse label byte (20 superclasses), 1 fine label byte (100 classes),
//! then the same 3072 bytes. Pixels are scaled to [0, 1], as in Keskar et al.'s code.

use std::path::{Path, PathBuf};

use crate::error::DataError;
use crate::input::Input;
use crate::{Dataset, Split};

const PIXELS: usize = 3 * 32 * 32;

/// Which CIFAR and, for CIFAR-100, which labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Labels {
    /// CIFAR-10: one label, 10 classes.
    Cifar10,
    /// CIFAR-100 fine labels (100 classes).
    Fine,
    /// CIFAR-100 coarse labels (20 superclasses).
    Coarse,
}

impl Labels {
    fn label_bytes(self) -> usize {
        if self == Labels::Cifar10 { 1 } else { 2 }
    }

    fn classes(self) -> usize {
        match self {
            Labels::Cifar10 => 10,
            Labels::Fine => 100,
            Labels::Coarse => 20,
        }
    }
}

/// Reads CIFAR records from `files` in order into one split.
///
/// Each file (raw or gzip-compressed) is read one record at a time, so memory grows only with the
/// records actually there. Refuses, naming the file: an empty file, a length (of the file, checked
/// before reading it, or of the decompressed stream) that is not a whole number of records, a
/// label out of range, and a corrupt gzip stream.
pub fn read_records(files: &[PathBuf], labels: Labels) -> Result<Split, DataError> {
    let record = labels.label_bytes() + PIXELS;
    let not_whole = |total: u64| {
        format!("truncated or not a {labels:?} file: {total} bytes is not a whole number of {record}-byte records")
    };
    let mut split = Split { features: Vec::new(), labels: Vec::new() };
    let mut rec = vec![0u8; record];
    for path in files {
        let mut input = Input::open(path)?;
        if let Some(len) = input.raw_len() {
            if len == 0 {
                return Err(input.error(format!("empty file; a {labels:?} file holds {record}-byte records")));
            }
            if !len.is_multiple_of(record as u64) {
                return Err(input.error(not_whole(len)));
            }
            // The file's real length (not a header's claim) bounds this.
            let records = usize::try_from(len / record as u64).unwrap_or(0);
            split.features.reserve(records.saturating_mul(PIXELS));
            split.labels.reserve(records);
        }
        let mut i = 0u64;
        loop {
            let got = input.fill(&mut rec)?;
            if got == 0 {
                break;
            }
            if got < record {
                return Err(input.error(not_whole(i * record as u64 + got as u64)));
            }
            let y = match labels {
                Labels::Cifar10 | Labels::Coarse => rec[0],
                Labels::Fine => rec[1],
            } as u32;
            if y as usize >= labels.classes() {
                return Err(input
                    .error(format!("label {y} of record {i} is out of range (classes 0..{})", labels.classes() - 1)));
            }
            split.labels.push(y);
            split.features.extend(rec[labels.label_bytes()..].iter().map(|&p| p as f32 / 255.0));
            i += 1;
        }
        if i == 0 {
            return Err(input.error(format!("empty {}; a {labels:?} file holds {record}-byte records", input.what())));
        }
    }
    Ok(split)
}

fn require(dir: &Path, name: &str) -> Result<PathBuf, DataError> {
    let path = dir.join(name);
    if path.exists() { Ok(path) } else { Err(DataError::new(dir, format!("missing {name}"))) }
}

/// CIFAR-10 from `dir` holding `data_batch_1.bin` … `data_batch_5.bin` and `test_batch.bin`.
pub fn load_cifar10(dir: &Path) -> Result<Dataset, DataError> {
    let train: Vec<PathBuf> =
        (1..=5).map(|i| require(dir, &format!("data_batch_{i}.bin"))).collect::<Result<_, _>>()?;
    let test = vec![require(dir, "test_batch.bin")?];
    dataset(
        "cifar-10",
        dir,
        read_records(&train, Labels::Cifar10)?,
        read_records(&test, Labels::Cifar10)?,
        &CIFAR10_CLASSES.map(String::from),
    )
}

/// The CIFAR-10 subset's files: the first 4000 records of `data_batch_1.bin` and the first 1000
/// of `test_batch.bin`, byte for byte (`head -c 12292000 data_batch_1.bin`, `head -c 3073000
/// test_batch.bin`).
pub const CIFAR10_SUBSET_FILES: [&str; 2] = ["data_batch_1_first4000.bin", "test_batch_first1000.bin"];

/// The CIFAR-10 subset (4000 training, 1000 test images) from `dir` holding
/// [`CIFAR10_SUBSET_FILES`]; any other length is refused, so a table that says 4000/1000 is.
pub fn load_cifar10_subset(dir: &Path) -> Result<Dataset, DataError> {
    let [train, test] = CIFAR10_SUBSET_FILES.map(|f| require(dir, f));
    let (train, test) = (train?, test?);
    let split = |path: PathBuf, want: usize| -> Result<Split, DataError> {
        let s = read_records(std::slice::from_ref(&path), Labels::Cifar10)?;
        if s.labels.len() != want {
            return Err(DataError::new(&path, format!("{} records; the subset has {want}", s.labels.len())));
        }
        Ok(s)
    };
    dataset("cifar-10-subset", dir, split(train, 4000)?, split(test, 1000)?, &CIFAR10_CLASSES.map(String::from))
}

/// CIFAR-100 from `dir` holding `train.bin` and `test.bin`, with fine or coarse labels.
pub fn load_cifar100(dir: &Path, labels: Labels) -> Result<Dataset, DataError> {
    let train = read_records(&[require(dir, "train.bin")?], labels)?;
    let test = read_records(&[require(dir, "test.bin")?], labels)?;
    let names: Vec<String> = (0..labels.classes()).map(|c| c.to_string()).collect();
    dataset("cifar-100", dir, train, test, &names)
}

fn dataset(name: &str, dir: &Path, train: Split, test: Split, class_names: &[String]) -> Result<Dataset, DataError> {
    Ok(Dataset {
        name: name.into(),
        sample_shape: vec![3, 32, 32],
        classes: class_names.len(),
        class_names: class_names.to_vec(),
        train,
        test,
        provenance: format!("{name} binary files in {}", dir.display()),
    })
}

/// CIFAR-10 class names, in label order.
pub const CIFAR10_CLASSES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];
