//! The scales of the Keskar family of studies (`keskar`, `sweep`, `warmstart`, `trajectory`,
//! `landscape`): each scale's networks with their data, batch sizes, epochs and step size, in one
//! block with the reasons for each number.

use clap::ValueEnum;
use nets::init::BatchNormSettings;
use nets::mlp::MlpSpec;
use nets::shallow::ShallowSpec;
use nets::train::NetSpec;
use nets::vgg::{VggDropout, VggSpec};
use serde::{Deserialize, Serialize};

use crate::data::DataSpec;

/// Size of the study.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// Tiny nets, a few epochs: an end-to-end check in seconds.
    Smoke,
    /// F1- and C1-family nets on generated MNIST-1D.
    Default,
    /// The paper's networks on MNIST, TIMIT, CIFAR-10 and CIFAR-100.
    Paper,
}

/// The settings of one scale: networks with their data, batch sizes, epochs.
pub struct ScaleSpec {
    /// (Table-2 name, network, data) of every network the scale knows.
    pub nets: Vec<(&'static str, NetSpec, DataSpec)>,
    pub default_nets: &'static [&'static str],
    /// Small batch.
    pub sb: usize,
    /// Large batch; `None` is the paper's 10 % of the training set.
    pub lb: Option<usize>,
    /// Epochs (the cap, with a stopping rule).
    pub epochs: usize,
    /// Stopping rule (see [`TrainConfig::patience`]); `None` trains exactly `epochs`.
    pub patience: Option<usize>,
    /// Adam step size.
    pub learning_rate: f64,
}

/// Hyperparameters of each scale, with reasons.
pub fn scale_spec(scale: Scale) -> ScaleSpec {
    // A 1-D signal of 40 points enters the convolutional nets as a 1 × 40 image.
    let signal = [1, 1, 40];
    match scale {
        // Seconds: tiny nets, few samples, 3 epochs. LB/SB = 10 as in the paper.
        Scale::Smoke => {
            let data = DataSpec::Mnist1d { train: 640, test: 200, seed: 42 };
            ScaleSpec {
                nets: vec![
                    (
                        "F1",
                        NetSpec::Mlp(MlpSpec {
                            input: 40,
                            width: 32,
                            depth: 2,
                            classes: 10,
                            norm: BatchNormSettings::default(),
                        }),
                        data.clone(),
                    ),
                    (
                        "F2",
                        NetSpec::Mlp(MlpSpec {
                            input: 40,
                            width: 32,
                            depth: 3,
                            classes: 10,
                            norm: BatchNormSettings::default(),
                        }),
                        data.clone(),
                    ),
                    (
                        "C1",
                        NetSpec::Shallow(ShallowSpec {
                            input: signal,
                            channels: 8,
                            kernel: 5,
                            dense: [32, 16],
                            dropout: 0.5,
                            classes: 10,
                            norm: BatchNormSettings::default(),
                        }),
                        data.clone(),
                    ),
                    (
                        "C2",
                        NetSpec::Vgg(VggSpec {
                            input: signal,
                            stacks: vec![(8, 1), (16, 1)],
                            dense: 16,
                            classes: 10,
                            norm: BatchNormSettings::default(),
                            dropout: VggDropout::default(),
                        }),
                        data,
                    ),
                ],
                default_nets: &["F1", "C1"],
                sb: 16,
                lb: Some(160),
                epochs: 3,
                patience: None,
                learning_rate: 1e-3,
            }
        }
        // Minutes on 2 cores. F1 and C1 keep their families' layout (BN after every layer,
        // dropout ½ on C1's dense layers) at widths that fit MNIST-1D's 40 features; 60 epochs
        // bring both regimes to ~100 % training accuracy.
        Scale::Default => {
            let data = DataSpec::Mnist1d { train: 4000, test: 1000, seed: 42 };
            ScaleSpec {
                nets: vec![
                    (
                        "F1",
                        NetSpec::Mlp(MlpSpec {
                            input: 40,
                            width: 256,
                            depth: 3,
                            classes: 10,
                            norm: BatchNormSettings::default(),
                        }),
                        data.clone(),
                    ),
                    (
                        "F2",
                        NetSpec::Mlp(MlpSpec {
                            input: 40,
                            width: 256,
                            depth: 5,
                            classes: 10,
                            norm: BatchNormSettings::default(),
                        }),
                        data.clone(),
                    ),
                    (
                        "C1",
                        NetSpec::Shallow(ShallowSpec {
                            input: signal,
                            channels: 32,
                            kernel: 5,
                            dense: [128, 64],
                            dropout: 0.5,
                            classes: 10,
                            norm: BatchNormSettings::default(),
                        }),
                        data.clone(),
                    ),
                    (
                        "C2",
                        NetSpec::Vgg(VggSpec {
                            input: signal,
                            stacks: vec![(32, 2), (64, 2), (128, 2)],
                            dense: 128,
                            classes: 10,
                            norm: BatchNormSettings::default(),
                            dropout: VggDropout::default(),
                        }),
                        data,
                    ),
                ],
                default_nets: &["F1", "C1"],
                sb: 32,
                lb: Some(512),
                epochs: 60,
                patience: None,
                learning_rate: 1e-3,
            }
        }
        // The paper (§2.2): SB 256, LB 10 % of the training set, trained until the training
        // loss stops improving: here, until it has not reached a new minimum for 5 epochs,
        // capped at 100 epochs.
        Scale::Paper => ScaleSpec {
            nets: vec![
                ("F1", NetSpec::Mlp(nets::mlp::f1()), DataSpec::Mnist),
                ("F2", NetSpec::Mlp(nets::mlp::f2()), DataSpec::Timit),
                ("C1", NetSpec::Shallow(nets::shallow::c1()), DataSpec::Cifar10),
                ("C2", NetSpec::Vgg(nets::vgg::c2()), DataSpec::Cifar10),
                ("C3", NetSpec::Shallow(nets::shallow::c3()), DataSpec::Cifar100),
                ("C4", NetSpec::Vgg(nets::vgg::c4()), DataSpec::Cifar100),
            ],
            default_nets: &["F1", "F2", "C1", "C2", "C3", "C4"],
            sb: 256,
            lb: None,
            epochs: 100,
            patience: Some(5),
            learning_rate: 1e-3,
        },
    }
}
