//! The data a study trains on, as stored in its records, and where file datasets live.
//!
//! Records name a dataset, not a path, so that a run resumes (and compares) across machines;
//! the folder a dataset was read from is resolved at run time: `--data-dir`, else the
//! `FLATLAND_DATA` environment variable, else the platform cache folder (`~/.cache/flatland` on
//! Linux). Each dataset has its own subfolder holding its files under their original names.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use datasets::{Dataset, cifar, idx, mnist1d, optdigits, timit};
use serde::{Deserialize, Serialize};

/// The data a cell trains on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum DataSpec {
    /// Generated MNIST-1D (reference generator defaults, `seed` is the generator's seed).
    Mnist1d {
        /// Training samples.
        train: usize,
        /// Test samples.
        test: usize,
        /// Generator seed (42 is the reference default).
        seed: u64,
    },
    /// MNIST (IDX files in `<data dir>/mnist`).
    Mnist,
    /// Fashion-MNIST (IDX files in `<data dir>/fashion-mnist`).
    FashionMnist,
    /// CIFAR-10 (binary batches in `<data dir>/cifar-10`).
    Cifar10,
    /// CIFAR-100 with fine labels (`<data dir>/cifar-100`).
    Cifar100,
    /// UCI optdigits (`<data dir>/optdigits`).
    Optdigits,
    /// User-supplied TIMIT-style frame features (`<data dir>/timit`).
    Timit,
}

/// Where file datasets are looked for, and why there.
#[derive(Debug, Clone)]
pub struct DataDir {
    /// The folder holding one subfolder per dataset.
    pub path: PathBuf,
    /// How it was chosen: "--data-dir", "FLATLAND_DATA" or "the default cache folder".
    pub source: &'static str,
}

impl DataDir {
    /// `--data-dir`, else `$FLATLAND_DATA`, else the platform cache folder.
    pub fn resolve(flag: Option<&Path>) -> DataDir {
        if let Some(p) = flag {
            return DataDir { path: p.to_path_buf(), source: "--data-dir" };
        }
        if let Some(p) = std::env::var_os("FLATLAND_DATA").filter(|p| !p.is_empty()) {
            return DataDir { path: PathBuf::from(p), source: "FLATLAND_DATA" };
        }
        let base = dirs::cache_dir().unwrap_or_else(|| PathBuf::from(".cache"));
        DataDir { path: base.join("flatland"), source: "the default cache folder" }
    }
}

impl DataSpec {
    /// Short name of the dataset (also its folder name under the data dir).
    pub fn name(&self) -> &'static str {
        match self {
            DataSpec::Mnist1d { .. } => "mnist1d",
            DataSpec::Mnist => "mnist",
            DataSpec::FashionMnist => "fashion-mnist",
            DataSpec::Cifar10 => "cifar-10",
            DataSpec::Cifar100 => "cifar-100",
            DataSpec::Optdigits => "optdigits",
            DataSpec::Timit => "timit",
        }
    }

    /// The files a user puts in the dataset's folder.
    fn expected_files(&self) -> &'static str {
        match self {
            DataSpec::Mnist1d { .. } => "none (generated)",
            DataSpec::Mnist | DataSpec::FashionMnist => {
                "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz (or uncompressed)"
            }
            DataSpec::Cifar10 => "data_batch_1.bin … data_batch_5.bin, test_batch.bin (the binary version)",
            DataSpec::Cifar100 => "train.bin, test.bin (the binary version)",
            DataSpec::Optdigits => "optdigits.tra, optdigits.tes",
            DataSpec::Timit => {
                "header.json, train.f32, train.u16, test.f32, test.u16 (see README: TIMIT-style features)"
            }
        }
    }

    /// Generates the dataset, or loads it from its folder under `dir`. A missing or malformed
    /// dataset is an error naming the dataset, the folder looked in and the files expected there.
    pub fn load(&self, dir: &DataDir) -> Result<Dataset> {
        if let DataSpec::Mnist1d { train, test, seed } = *self {
            return Ok(mnist1d::generate(&mnist1d::Config { train, test, seed, ..Default::default() }));
        }
        let folder = dir.path.join(self.name());
        let loaded = match self {
            DataSpec::Mnist1d { .. } => unreachable!("generated above"),
            DataSpec::Mnist => idx::load(&folder, "mnist", &idx::MNIST_CLASSES),
            DataSpec::FashionMnist => idx::load(&folder, "fashion-mnist", &idx::FASHION_CLASSES),
            DataSpec::Cifar10 => cifar::load_cifar10(&folder),
            DataSpec::Cifar100 => cifar::load_cifar100(&folder, cifar::Labels::Fine),
            DataSpec::Optdigits => optdigits::load(&folder),
            DataSpec::Timit => timit::load(&folder),
        };
        loaded.map_err(|e| {
            let how = match datasets::catalog::entry(self.name()) {
                Some(_) if dir.source == "--data-dir" => {
                    format!("Fetch it with: studies data fetch {} --data-dir {}", self.name(), dir.path.display())
                }
                Some(_) => format!("Fetch it with: studies data fetch {}", self.name()),
                None => format!("Put the files there by hand: {}", self.expected_files()),
            };
            anyhow!(
                "dataset {} could not be loaded from {} (data folder chosen by {}; set --data-dir or FLATLAND_DATA to look elsewhere): {e}. {how}",
                self.name(),
                folder.display(),
                dir.source,
            )
        })
    }
}

/// Loads every dataset of `specs` once, in order. Every missing or malformed one is named
/// (all of them, not just the first) in one usage error, before any training starts.
pub fn load_all(specs: &[DataSpec], dir: &DataDir) -> Result<Vec<(DataSpec, Dataset)>> {
    let mut data: Vec<(DataSpec, Dataset)> = Vec::new();
    let mut missing = Vec::new();
    for spec in specs {
        if !data.iter().any(|(d, _)| d == spec) {
            match spec.load(dir) {
                Ok(d) => data.push((spec.clone(), d)),
                Err(e) => missing.push(format!("{e:#}")),
            }
        }
    }
    if !missing.is_empty() {
        crate::usage!("{}", missing.join("\n"));
    }
    Ok(data)
}

/// The loaded dataset `spec` among `data` (an error, not a panic, if it was not loaded).
pub fn find<'a>(data: &'a [(DataSpec, Dataset)], spec: &DataSpec) -> Result<&'a Dataset> {
    data.iter()
        .find(|(d, _)| d == spec)
        .map(|(_, d)| d)
        .with_context(|| format!("dataset {} is not loaded", spec.name()))
}
