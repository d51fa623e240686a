//! The data a study trains on, as stored in its records, and where file datasets live.
//!
//! Records name a dataset, not a path, so that a run resumes (and compares) across machines;
//! the folder a dataset was read from is resolved at run time: `--data-dir`, else the
//! `FLATLAND_DATA` environment variable, else the platform cache folder (`~/.cache/flatland` on
//! Linux). Each dataset has its own subfolder holding its files under their original names.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use datasets::{Dataset, cifar, idx, mnist1d, npy, optdigits, timit};
use nets::train::NetSpec;
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
        seed: u32,
    },
    /// Upstream MNIST-1D's frozen split (`.npy` files in `<data dir>/mnist1d`).
    Mnist1dFrozen,
    /// MNIST (IDX files in `<data dir>/mnist`).
    Mnist,
    /// Fashion-MNIST (IDX files in `<data dir>/fashion-mnist`).
    FashionMnist,
    /// CIFAR-10 (binary batches in `<data dir>/cifar-10`).
    Cifar10,
    /// CIFAR-10's first 4000 training and first 1000 test images (`<data dir>/cifar-10-subset`).
    Cifar10Subset,
    /// CIFAR-100 with fine labels (`<data dir>/cifar-100`).
    Cifar100,
    /// UCI optdigits (`<data dir>/optdigits`).
    Optdigits,
    /// User-supplied TIMIT-style frame features (`<data dir>/timit`).
    Timit,
    /// A user's own data: `x_train.npy`, `y_train.npy`, `x_test.npy`, `y_test.npy` in `dir`.
    Npy {
        /// The folder, as given on the command line.
        dir: PathBuf,
    },
}

/// The names `--data` accepts.
pub const DATA_NAMES: &str =
    "mnist1d, mnist1d-frozen, mnist, fashion-mnist, cifar-10, cifar-10-subset, cifar-100, optdigits, timit, npy:DIR";

/// Parses a `--data` value; `mnist1d` keeps the sizes of `generated` (the scale's own MNIST-1D).
pub fn parse_data(value: &str, generated: &DataSpec) -> Result<DataSpec> {
    let spec = match value {
        "mnist1d" => match generated {
            DataSpec::Mnist1d { .. } => generated.clone(),
            _ => DataSpec::Mnist1d { train: 4000, test: 1000, seed: 42 },
        },
        "mnist1d-frozen" => DataSpec::Mnist1dFrozen,
        "mnist" => DataSpec::Mnist,
        "fashion-mnist" => DataSpec::FashionMnist,
        "cifar-10" => DataSpec::Cifar10,
        "cifar-10-subset" => DataSpec::Cifar10Subset,
        "cifar-100" => DataSpec::Cifar100,
        "optdigits" => DataSpec::Optdigits,
        "timit" => DataSpec::Timit,
        other => match other.strip_prefix("npy:") {
            Some(dir) if !dir.is_empty() => DataSpec::Npy { dir: PathBuf::from(dir) },
            _ => crate::usage!("--data {other}: unknown dataset; accepted: {DATA_NAMES}"),
        },
    };
    Ok(spec)
}

/// Checks a `--data` value at parse time (clap's `value_parser`), so a typo exits 2 before
/// anything runs.
pub fn data_name(value: &str) -> std::result::Result<String, String> {
    parse_data(value, &DataSpec::Mnist).map(|_| value.to_string()).map_err(|e| format!("{e}"))
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
            DataSpec::Mnist1dFrozen => "mnist1d-frozen",
            DataSpec::Mnist => "mnist",
            DataSpec::FashionMnist => "fashion-mnist",
            DataSpec::Cifar10 => "cifar-10",
            DataSpec::Cifar10Subset => "cifar-10-subset",
            DataSpec::Cifar100 => "cifar-100",
            DataSpec::Optdigits => "optdigits",
            DataSpec::Timit => "timit",
            DataSpec::Npy { .. } => "npy",
        }
    }

    /// The name, with the split sizes where the name alone could be mistaken for the full
    /// dataset (every table states them).
    pub fn describe(&self) -> String {
        match self {
            DataSpec::Cifar10Subset => "cifar-10-subset (4000 train / 1000 test)".into(),
            other => other.name().into(),
        }
    }

    /// MNIST-1D, generated or upstream's frozen split (the same data).
    pub fn is_mnist1d(&self) -> bool {
        matches!(self, DataSpec::Mnist1d { .. } | DataSpec::Mnist1dFrozen)
    }

    /// The folder the dataset is read from.
    pub fn folder(&self, dir: &DataDir) -> PathBuf {
        match self {
            DataSpec::Npy { dir } => dir.clone(),
            // Upstream's frozen split lives where a user keeps MNIST-1D files.
            DataSpec::Mnist1dFrozen => dir.path.join("mnist1d"),
            _ => dir.path.join(self.name()),
        }
    }

    /// Whether a sample has a spatial layout a convolution can slide over: images, and 1-D
    /// signals (MNIST-1D, a user's arrays); TIMIT's stacked frame features have none.
    pub fn is_spatial(&self) -> bool {
        !matches!(self, DataSpec::Timit)
    }

    /// The files the dataset's loader reads, under their original names (a `.gz` name also
    /// stands for its uncompressed form, and a plain one for its `.gz`).
    fn files_read(&self) -> Vec<String> {
        let idx = [
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
        ];
        let names: Vec<&str> = match self {
            DataSpec::Mnist1d { .. } => vec![],
            DataSpec::Mnist1dFrozen => mnist1d::FROZEN_FILES.to_vec(),
            DataSpec::Npy { .. } => npy::USER_FILES.to_vec(),
            DataSpec::Mnist | DataSpec::FashionMnist => idx.to_vec(),
            DataSpec::Cifar10 => vec![
                "data_batch_1.bin",
                "data_batch_2.bin",
                "data_batch_3.bin",
                "data_batch_4.bin",
                "data_batch_5.bin",
                "test_batch.bin",
            ],
            DataSpec::Cifar10Subset => cifar::CIFAR10_SUBSET_FILES.to_vec(),
            DataSpec::Cifar100 => vec!["train.bin", "test.bin"],
            DataSpec::Optdigits => vec!["optdigits.tra", "optdigits.tes"],
            DataSpec::Timit => vec!["header.json", "train.f32", "train.u16", "test.f32", "test.u16"],
        };
        names.into_iter().map(String::from).collect()
    }

    /// SHA-256 of the decompressed contents of every file the dataset was read from, as
    /// ("<dataset>/<file>", hex), for the records (generated data: none).
    pub fn file_digests(&self, dir: &DataDir) -> Result<Vec<(String, String)>> {
        let folder = self.folder(dir);
        let mut out = Vec::new();
        for name in self.files_read() {
            let plain = name.strip_suffix(".gz").unwrap_or(&name).to_string();
            let Some(path) =
                [name.clone(), plain, format!("{name}.gz")].iter().map(|n| folder.join(n)).find(|p| p.is_file())
            else {
                continue;
            };
            let hash = datasets::catalog::content_sha256(&path).map_err(|e| anyhow!("{e}"))?;
            let file = path.file_name().map_or(name.clone(), |f| f.to_string_lossy().into_owned());
            out.push((format!("{}/{file}", self.name()), hash));
        }
        out.sort();
        Ok(out)
    }

    /// The files a user puts in the dataset's folder.
    fn expected_files(&self) -> &'static str {
        match self {
            DataSpec::Mnist1d { .. } => "none (generated)",
            DataSpec::Mnist1dFrozen => {
                "x.npy, y.npy, x_test.npy, y_test.npy (upstream's mnist1d_data.pkl converted with np.save; see README)"
            }
            DataSpec::Npy { .. } => "x_train.npy, y_train.npy, x_test.npy, y_test.npy",
            DataSpec::Mnist | DataSpec::FashionMnist => {
                "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz (or uncompressed)"
            }
            DataSpec::Cifar10 => "data_batch_1.bin … data_batch_5.bin, test_batch.bin (the binary version)",
            DataSpec::Cifar10Subset => {
                "data_batch_1_first4000.bin, test_batch_first1000.bin (from CIFAR-10's binary version: \
                 head -c 12292000 data_batch_1.bin > data_batch_1_first4000.bin; \
                 head -c 3073000 test_batch.bin > test_batch_first1000.bin)"
            }
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
        let folder = self.folder(dir);
        let loaded = match self {
            DataSpec::Mnist1d { .. } => unreachable!("generated above"),
            DataSpec::Mnist1dFrozen => mnist1d::load_frozen(&folder),
            DataSpec::Npy { .. } => npy::load_dataset(&folder),
            DataSpec::Mnist => idx::load(&folder, "mnist", &idx::MNIST_CLASSES),
            DataSpec::FashionMnist => idx::load(&folder, "fashion-mnist", &idx::FASHION_CLASSES),
            DataSpec::Cifar10 => cifar::load_cifar10(&folder),
            DataSpec::Cifar10Subset => cifar::load_cifar10_subset(&folder),
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
                None if matches!(self, DataSpec::Npy { .. }) => format!("The folder holds {}", self.expected_files()),
                None => format!("Put the files there by hand: {}", self.expected_files()),
            };
            let chosen = match self {
                DataSpec::Npy { .. } => String::new(),
                _ => format!(
                    " (data folder chosen by {}; set --data-dir or FLATLAND_DATA to look elsewhere)",
                    dir.source
                ),
            };
            anyhow!("dataset {} could not be loaded from {}{chosen}: {e}. {how}", self.name(), folder.display())
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

/// A study's network: its name (F1, C1, …), shape and data.
pub type NamedNet = (String, NetSpec, DataSpec);

/// A dataset with the spec it was loaded from.
pub type Loaded = (DataSpec, Dataset);

/// The networks a study trains, on `--data` when it is given (else each on its own data), each
/// network's shape adapted to its data ([`NetSpec::adapted`]: unchanged on the data it was
/// defined for); every dataset loaded, and every mismatch named, before any training.
pub fn on_data(nets: Vec<NamedNet>, data: Option<&str>, dir: &DataDir) -> Result<(Vec<NamedNet>, Vec<Loaded>)> {
    let nets: Vec<NamedNet> = match data {
        Some(value) => {
            let generated = nets.first().map(|(_, _, d)| d.clone()).unwrap_or(DataSpec::Mnist);
            let spec = parse_data(value, &generated)?;
            nets.into_iter().map(|(name, net, _)| (name, net, spec.clone())).collect()
        }
        None => nets,
    };
    let specs: Vec<DataSpec> = nets.iter().map(|(_, _, d)| d.clone()).collect();
    let loaded = load_all(&specs, dir)?;
    let flag = data.map_or(String::new(), |v| format!("--data {v}: "));
    let mut adapted = Vec::new();
    let mut problems = Vec::new();
    for (name, net, spec) in nets {
        let d = find(&loaded, &spec)?;
        match net.adapted(&d.sample_shape, d.classes, spec.is_spatial()) {
            Ok(net) => adapted.push((name, net, spec)),
            Err(e) => problems.push(format!("{flag}network {name} on {}: {e}", spec.name())),
        }
    }
    if !problems.is_empty() {
        crate::usage!("{}", problems.join("\n"));
    }
    Ok((adapted, loaded))
}
