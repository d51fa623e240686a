//! Fixtures shared by the objective and backend tests: small MNIST-1D data, one network of each
//! batch-normed family, and three epochs of Adam on it.
#![allow(dead_code)] // each test file uses its own part

use datasets::{Dataset, mnist1d};
use nets::Backend;
use nets::init::BatchNormSettings;
use nets::mlp::MlpSpec;
use nets::objective::BatchNormMode;
use nets::shallow::ShallowSpec;
use nets::train::{NetSpec, RunSeeds, TrainConfig, Trained};

/// The device of `backend`, which the build must include.
pub fn device(backend: Backend) -> nets::Device {
    backend.device().expect("compiled in")
}

/// 200 training and 100 test samples of generated MNIST-1D.
pub fn data() -> Dataset {
    mnist1d::generate(&mnist1d::Config { train: 200, test: 100, ..Default::default() })
}

/// An MLP with batch norm after every hidden layer, and a conv net with batch norm and dropout.
pub fn specs() -> Vec<NetSpec> {
    vec![
        NetSpec::Mlp(MlpSpec { input: 40, width: 24, depth: 2, classes: 10, norm: BatchNormSettings::default() }),
        NetSpec::Shallow(ShallowSpec {
            input: [1, 1, 40],
            channels: 4,
            kernel: 5,
            dense: [16, 8],
            dropout: 0.5,
            classes: 10,
            norm: BatchNormSettings::default(),
        }),
    ]
}

/// Three epochs of Adam at batch 25 and lr 1e-3, evaluated on running statistics.
pub fn config() -> TrainConfig {
    TrainConfig {
        batch_size: 25,
        epochs: 3,
        learning_rate: 1e-3,
        eval_batch: 64,
        shuffle: true,
        patience: None,
        adam: Default::default(),
        init: Default::default(),
        evaluation: BatchNormMode::Running,
        ghost_batch: None,
    }
}

/// [`config`]'s training on `backend`, from fixed seeds.
pub fn trained(spec: &NetSpec, data: &Dataset, backend: Backend) -> Trained {
    spec.train(data, &config(), RunSeeds { init: 1, order: 2 }, None, &device(backend), &mut |_, _| {})
}
