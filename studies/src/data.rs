//! The data a study trains on, as stored in its records.

use datasets::{Dataset, mnist1d};
use serde::{Deserialize, Serialize};

/// The data a cell trains on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase")]
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
}

impl DataSpec {
    /// Short name of the dataset.
    pub fn name(&self) -> &'static str {
        match self {
            DataSpec::Mnist1d { .. } => "mnist1d",
        }
    }

    /// Generates or loads the dataset.
    pub fn load(&self) -> Dataset {
        match *self {
            DataSpec::Mnist1d { train, test, seed } => mnist1d::generate(&mnist1d::Config { train, test, seed, ..Default::default() }),
        }
    }
}

