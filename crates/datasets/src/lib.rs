//! In-memory classification datasets, free of any deep-learning framework.
//!
//! Every data source (the generated MNIST-1D and upstream's frozen split; MNIST and Fashion-MNIST,
//! CIFAR-10/100, UCI optdigits, user-supplied TIMIT-style features and a user's `.npy` files)
//! produces one
//! [`Dataset`]: a train and a test [`Split`] of f32 features with `u32` labels and the
//! per-sample shape, so networks and studies see a single type.
#![warn(missing_docs)]

pub mod archive;
pub mod catalog;
pub mod cifar;
pub mod error;
pub mod idx;
mod input;
pub mod mnist1d;
pub mod npy;
pub mod numpy_random;
pub mod optdigits;
pub mod resize;
pub mod timit;

pub use error::DataError;

/// One split of a dataset: `n` samples of `sample_shape` features each, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Features, `len() == n * sample_len()`.
    pub features: Vec<f32>,
    /// Class index of each sample, `< classes`.
    pub labels: Vec<u32>,
}

impl Split {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the split holds no sample.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Samples per class, indexed by class.
    pub fn class_counts(&self, classes: usize) -> Vec<usize> {
        let mut counts = vec![0; classes];
        for &y in &self.labels {
            counts[y as usize] += 1;
        }
        counts
    }
}

/// A train/test classification dataset held in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Short name, e.g. `mnist1d`.
    pub name: String,
    /// Shape of one sample, e.g. `[40]` for MNIST-1D or `[3, 32, 32]` for CIFAR.
    pub sample_shape: Vec<usize>,
    /// Number of classes.
    pub classes: usize,
    /// Name of each class, in label order.
    pub class_names: Vec<String>,
    /// Training split.
    pub train: Split,
    /// Test split.
    pub test: Split,
    /// Where the data came from, in words (generator and seed, or files and checksums).
    pub provenance: String,
}

impl Dataset {
    /// Features per sample (the product of `sample_shape`).
    pub fn sample_len(&self) -> usize {
        self.sample_shape.iter().product()
    }

    /// Keeps the first `n` training samples (all, if there are fewer); returns how many remain.
    pub fn keep_train(&mut self, n: usize) -> usize {
        let keep = n.min(self.train.len());
        self.train.features.truncate(keep * self.sample_len());
        self.train.labels.truncate(keep);
        keep
    }
}
