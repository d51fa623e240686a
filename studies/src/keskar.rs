//! Keskar, Mudigere, Nocedal, Smelyanskiy & Tang, "On Large-Batch Training for Deep Learning:
//! Generalization Gap and Sharp Minima" (ICLR 2017), Table 2: train and test accuracy of
//! small-batch (SB) and large-batch (LB) Adam, mean ± std over seeds, beside the paper's numbers.
//!
//! Command: `cargo run --release -p studies -- keskar [--scale smoke|default|paper]`.
//! The default scale trains F1- and C1-family nets on generated MNIST-1D (no download) and takes
//! a few minutes on 2 cores; `smoke` is a seconds-long version for tests.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use datasets::Dataset;
use measure::curvature::{self, TopEigenvalue, Trace};
use measure::sharpness::{RandomSubspace, Sharpness, Subspace, epsilon_sharpness};
use nets::mlp::MlpSpec;
use nets::objective::Weights;
use nets::shallow::ShallowSpec;
use nets::train::{EpochMetrics, NetSpec, RunSeeds, TrainConfig, Trained};
use nets::vgg::VggSpec;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::{DataDir, DataSpec};
use crate::harness::{self, CellProgress, GridArgs, Record, Study};
use crate::plot::{self, PALETTE, Panel, Series};
use crate::stats::{mean, std, welch_t_test};

/// Arguments of `studies keskar`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Size of the study: `smoke` (seconds, for tests), `default` (generated MNIST-1D, minutes on
    /// a laptop), `paper` (the paper's networks and datasets).
    #[arg(long, value_enum, default_value_t = Scale::Default)]
    pub scale: Scale,
    /// Networks to train, comma-separated (F1, F2, C1, C2, C3, C4; which exist depends on the
    /// scale). Default: F1,C1 at the small scales, all six at paper scale.
    #[arg(long, value_delimiter = ',')]
    pub nets: Option<Vec<String>>,
    /// Seeds (independent runs) per network and regime.
    #[arg(long, default_value_t = 5)]
    pub seeds: usize,
    /// Epochs per run (default: the scale's own; at paper scale, the cap of the stopping rule).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Folder holding the real datasets, one subfolder each (mnist, cifar-10, cifar-100, timit)
    /// [default: $FLATLAND_DATA, else the platform cache folder]. Paper scale only.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub grid: GridArgs,
}

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

/// Small batch or large batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Regime {
    /// Small batch (256 in the paper).
    SB,
    /// Large batch (10 % of the training set in the paper).
    LB,
}

/// One cell: a network trained once in one regime from one seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Table-2 name of the network (F1 … C4); at small scales, the family it is scaled from.
    pub net: String,
    /// Study scale.
    pub scale: Scale,
    /// Training data.
    pub data: DataSpec,
    /// The network's exact shape.
    pub spec: NetSpec,
    /// SB or LB.
    pub regime: Regime,
    /// Optimizer settings (Adam), batch size and epochs.
    pub train: TrainConfig,
    /// Index of the seed (0-based) among the cell's repeats.
    pub seed_index: usize,
    /// Seeds derived from the master seed: the init seed is shared by SB and LB of the same
    /// index (both start from the same weights, as in the paper's code); the order seed is not.
    pub seeds: RunSeeds,
    /// How the solution's sharpness and curvature are measured (none: not measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<MeasureConfig>,
}

/// How the sharpness and curvature of a solution are measured (Keskar §2.2.2 and Metric 2.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasureConfig {
    /// ε of Metric 2.1 (the paper: 1e-3 and 5e-4).
    pub epsilons: Vec<f64>,
    /// L-BFGS-B iterations of the inner maximization (the paper: 10).
    pub lbfgsb_iterations: usize,
    /// Dimension p of the random subspace of Table 4 (the paper: 100).
    pub subspace_dim: usize,
    /// How A is drawn (see `measure::sharpness::RandomSubspace`).
    pub subspace_matrix: String,
    /// Lanczos steps (Hessian-vector products) at most for the top Hessian eigenvalue.
    pub lanczos_steps: usize,
    /// Relative residual of the Ritz pair that ends the Lanczos iteration.
    pub lanczos_tol: f64,
    /// Rademacher probes of Hutchinson's trace estimate.
    pub trace_probes: usize,
    /// Step of the central differences of gradients behind each Hessian-vector product.
    pub fd_step: f64,
    /// Samples per forward/backward chunk of the training loss (does not change the result).
    pub chunk: usize,
    /// The objective's training samples: a fixed random subset of this size (drawn from `seed`),
    /// or `None` for the whole training set as in the paper. A full-set gradient costs about one
    /// epoch of training, and the measurements take ~100 of them, so the default scale measures
    /// on a quarter of its training set to stay within 30 % of the training time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<usize>,
    /// Seed of the subspace matrix, the Lanczos start and the probes.
    pub seed: u64,
}

impl MeasureConfig {
    /// The paper's settings, with curvature estimates sized to cost a fraction of training.
    pub fn keskar(seed: u64) -> MeasureConfig {
        MeasureConfig {
            epsilons: vec![1e-3, 5e-4],
            lbfgsb_iterations: 10,
            subspace_dim: 100,
            subspace_matrix: "iid standard normal entries".into(),
            lanczos_steps: 20,
            lanczos_tol: 1e-2,
            trace_probes: 10,
            fd_step: 1e-3,
            chunk: 500,
            samples: Some(1000),
            seed,
        }
    }

    /// Full-space sharpness at ε = 1e-3 only (Figures 4–6, whose ε the paper does not state).
    pub fn sharpness_only(seed: u64) -> MeasureConfig {
        MeasureConfig {
            epsilons: vec![1e-3],
            subspace_dim: 0,
            lanczos_steps: 0,
            trace_probes: 0,
            ..MeasureConfig::keskar(seed)
        }
    }
}

/// Sharpness and curvature of one solution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measures {
    /// Metric 2.1 with A = I, one per ε (Table 3).
    pub full_space: Vec<Sharpness>,
    /// Metric 2.1 in the random subspace, one per ε (Table 4).
    pub subspace: Vec<Sharpness>,
    /// Top eigenvalue of the Hessian of the training loss (Lanczos; none if not asked).
    pub top_eigenvalue: Option<TopEigenvalue>,
    /// Trace of that Hessian (Hutchinson), with its standard error (none if not asked).
    pub trace: Option<Trace>,
    /// Wall time of these measurements, seconds.
    pub seconds: f64,
}

/// What one cell produced: the training run, and the measurements of its solution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Parameter count and curves.
    #[serde(flatten)]
    pub trained: Trained,
    /// Wall time of training (with its per-epoch evaluations), seconds.
    #[serde(default)]
    pub train_seconds: f64,
    /// Sharpness and curvature, when the cell asked for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measures: Option<Measures>,
}

/// `data` with its training split cut to `m` samples drawn without replacement from `seed` (in
/// their original order).
fn training_subset(data: &Dataset, m: usize, seed: u64) -> Dataset {
    use rand::seq::index::sample;
    let mut idx = sample(&mut ChaCha8Rng::seed_from_u64(seed), data.train.len(), m).into_vec();
    idx.sort_unstable();
    let len = data.sample_len();
    let mut out = data.clone();
    out.train.features =
        idx.iter().flat_map(|&i| data.train.features[i * len..(i + 1) * len].iter().copied()).collect();
    out.train.labels = idx.iter().map(|&i| data.train.labels[i]).collect();
    out
}

/// Measures the solution `weights` of `spec` on the training set of `data` (the objective:
/// mean cross-entropy, batch norm on its running statistics, no dropout).
pub fn measure(
    spec: &NetSpec,
    weights: &Weights,
    data: &Dataset,
    cfg: &MeasureConfig,
    device: &nets::Device,
) -> Measures {
    let start = std::time::Instant::now();
    let subset;
    let data = match cfg.samples {
        Some(m) if m < data.train.len() => {
            subset = training_subset(data, m, harness::derive_seed(cfg.seed, &["samples"]));
            &subset
        }
        _ => data,
    };
    let mut obj = spec.training_loss(weights, data, cfg.chunk, device);
    let x = weights.params_f64();
    let full_space = cfg
        .epsilons
        .iter()
        .map(|&eps| epsilon_sharpness(&mut obj, &x, &Subspace::Full, eps, cfg.lbfgsb_iterations))
        .collect();
    let subspace = if cfg.subspace_dim > 0 {
        let a = Subspace::Random(RandomSubspace::gaussian(
            x.len(),
            cfg.subspace_dim,
            harness::derive_seed(cfg.seed, &["subspace"]),
        ));
        cfg.epsilons.iter().map(|&eps| epsilon_sharpness(&mut obj, &x, &a, eps, cfg.lbfgsb_iterations)).collect()
    } else {
        Vec::new()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(harness::derive_seed(cfg.seed, &["hessian"]));
    let top_eigenvalue = (cfg.lanczos_steps > 0)
        .then(|| curvature::top_eigenvalue(&mut obj, &x, cfg.lanczos_steps, cfg.lanczos_tol, cfg.fd_step, &mut rng));
    let trace = (cfg.trace_probes > 0).then(|| curvature::trace(&mut obj, &x, cfg.trace_probes, cfg.fd_step, &mut rng));
    Measures { full_space, subspace, top_eigenvalue, trace, seconds: start.elapsed().as_secs_f64() }
}

/// The settings of one scale: networks with their data, batch sizes, epochs.
pub struct ScaleSpec {
    /// (Table-2 name, network, data) of every network the scale knows.
    pub nets: Vec<(&'static str, NetSpec, DataSpec)>,
    default_nets: &'static [&'static str],
    /// Small batch.
    pub sb: usize,
    /// Large batch; `None` is the paper's 10 % of the training set.
    pub lb: Option<usize>,
    /// Epochs (the cap, with a stopping rule).
    pub epochs: usize,
    /// Stopping rule (see [`TrainConfig::patience`]); `None` trains exactly `epochs`.
    patience: Option<usize>,
    /// Adam step size.
    pub learning_rate: f64,
    /// Measure sharpness and curvature of every solution (Tables 3 and 4).
    measure: bool,
}

/// Arguments shared by the figure studies (Figures 4–6, the 2-D landscape), which reuse this
/// study's networks and data at the small scales.
#[derive(clap::Args, Debug)]
pub struct FigureArgs {
    /// `smoke` (seconds, for tests) or `default` (generated MNIST-1D, minutes).
    #[arg(long, value_enum, default_value_t = Scale::Default)]
    pub scale: Scale,
    /// Networks, comma-separated (F1, F2, C1, C2) [default: the figure's own].
    #[arg(long, value_delimiter = ',')]
    pub nets: Option<Vec<String>>,
    /// Seeds per point [default: the figure's own].
    #[arg(long)]
    pub seeds: Option<usize>,
    /// Folder holding real datasets (studies that can use them) [default: $FLATLAND_DATA, else
    /// the platform cache folder].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub grid: GridArgs,
}

/// What a figure study needs: its networks with their data loaded, the scale's settings, the
/// device and the grid options.
pub struct FigureSetup {
    /// (name, network, data) of each chosen network.
    pub nets: Vec<(String, NetSpec, DataSpec)>,
    /// Every dataset the networks use.
    pub data: Vec<(DataSpec, Dataset)>,
    /// The scale's batch sizes, epochs and step size.
    pub scale: ScaleSpec,
    /// Seeds per point.
    pub seeds: usize,
    /// Where the tensors live.
    pub device: nets::Device,
    /// How the grid runs.
    pub opts: harness::GridOptions,
}

impl FigureSetup {
    /// Validates `args` (the figures exist at the smoke and default scales) and loads the data.
    pub fn new(args: &FigureArgs, default_nets: &[&str], default_seeds: usize) -> Result<FigureSetup> {
        if args.scale == Scale::Paper {
            bail!("--scale paper: this figure runs at the small scales only; accepted: smoke, default");
        }
        let scale = scale_spec(args.scale);
        let known: Vec<&str> = scale.nets.iter().map(|(n, ..)| *n).collect();
        let given: Vec<String> = match &args.nets {
            Some(list) => list.iter().map(|n| n.trim().to_string()).collect(),
            None => default_nets.iter().map(|s| s.to_string()).collect(),
        };
        let mut nets = Vec::new();
        for n in &given {
            match scale.nets.iter().find(|(k, ..)| k.eq_ignore_ascii_case(n)) {
                Some((k, spec, data)) => nets.push((k.to_string(), spec.clone(), data.clone())),
                None => bail!("--nets: unknown network '{n}'; accepted: {}", known.join(", ")),
            }
        }
        if nets.is_empty() {
            bail!("--nets: no network given; accepted: {}", known.join(", "));
        }
        let seeds = args.seeds.unwrap_or(default_seeds);
        if seeds == 0 {
            bail!("--seeds 0: at least one seed is needed (accepted: 1 or more)");
        }
        let (backend, device, jobs) = args.grid.validate()?;
        let mut data: Vec<(DataSpec, Dataset)> = Vec::new();
        for (_, _, spec) in &nets {
            if !data.iter().any(|(d, _)| d == spec) {
                data.push((spec.clone(), spec.load(&DataDir::resolve(args.data_dir.as_deref()))?));
            }
        }
        harness::check_writable(&args.grid.out)?;
        let env = crate::env::Env::capture(backend, &device, jobs);
        let opts = harness::GridOptions { out: args.grid.out.clone(), jobs, master_seed: args.grid.seed, env };
        Ok(FigureSetup { nets, data, scale, seeds, device, opts })
    }

    /// The loaded dataset `spec`.
    pub fn dataset(&self, spec: &DataSpec) -> &Dataset {
        &self.data.iter().find(|(d, _)| d == spec).expect("every network's data is loaded").1
    }

    /// Adam settings at `batch_size` for `epochs`.
    pub fn train_config(&self, batch_size: usize, epochs: usize) -> TrainConfig {
        TrainConfig {
            batch_size,
            epochs,
            learning_rate: self.scale.learning_rate,
            eval_batch: 1000,
            shuffle: true,
            patience: None,
        }
    }
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
                    ("F1", NetSpec::Mlp(MlpSpec { input: 40, width: 32, depth: 2, classes: 10 }), data.clone()),
                    ("F2", NetSpec::Mlp(MlpSpec { input: 40, width: 32, depth: 3, classes: 10 }), data.clone()),
                    (
                        "C1",
                        NetSpec::Shallow(ShallowSpec {
                            input: signal,
                            channels: 8,
                            kernel: 5,
                            dense: [32, 16],
                            dropout: 0.5,
                            classes: 10,
                        }),
                        data.clone(),
                    ),
                    (
                        "C2",
                        NetSpec::Vgg(VggSpec { input: signal, stacks: vec![(8, 1), (16, 1)], dense: 16, classes: 10 }),
                        data,
                    ),
                ],
                default_nets: &["F1", "C1"],
                sb: 16,
                lb: Some(160),
                epochs: 3,
                patience: None,
                learning_rate: 1e-3,
                measure: true,
            }
        }
        // Minutes on 2 cores. F1 and C1 keep their families' layout (BN after every layer,
        // dropout ½ on C1's dense layers) at widths that fit MNIST-1D's 40 features; 60 epochs
        // bring both regimes to ~100 % training accuracy.
        Scale::Default => {
            let data = DataSpec::Mnist1d { train: 4000, test: 1000, seed: 42 };
            ScaleSpec {
                nets: vec![
                    ("F1", NetSpec::Mlp(MlpSpec { input: 40, width: 256, depth: 3, classes: 10 }), data.clone()),
                    ("F2", NetSpec::Mlp(MlpSpec { input: 40, width: 256, depth: 5, classes: 10 }), data.clone()),
                    (
                        "C1",
                        NetSpec::Shallow(ShallowSpec {
                            input: signal,
                            channels: 32,
                            kernel: 5,
                            dense: [128, 64],
                            dropout: 0.5,
                            classes: 10,
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
                measure: true,
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
            // Not yet at paper scale: a full-MNIST gradient takes seconds, and the committed
            // F1 records predate the measurements.
            measure: false,
        },
    }
}

/// Where each paper-scale network's data comes from (Keskar Table 1).
const PAPER_DATA: [(&str, &str); 6] = [
    ("F1", "MNIST"),
    ("F2", "TIMIT frame features (user-supplied)"),
    ("C1", "CIFAR-10"),
    ("C2", "CIFAR-10"),
    ("C3", "CIFAR-100"),
    ("C4", "CIFAR-100"),
];

/// Keskar Table 2, mean accuracies (%): train SB, train LB, test SB, test LB.
const PAPER_TABLE2: [(&str, [f64; 4]); 6] = [
    ("F1", [99.66, 99.92, 98.03, 97.81]),
    ("F2", [99.99, 98.35, 64.02, 59.45]),
    ("C1", [99.89, 99.66, 80.04, 77.26]),
    ("C2", [99.99, 99.99, 89.24, 87.26]),
    ("C3", [99.56, 99.88, 49.58, 46.45]),
    ("C4", [99.10, 99.57, 63.08, 57.81]),
];

/// Keskar Table 3 (A = I) and Table 4 (p = 100): mean sharpness SB ε=1e-3, LB ε=1e-3,
/// SB ε=5e-4, LB ε=5e-4.
const PAPER_TABLE3: [(&str, [f64; 4]); 6] = [
    ("F1", [1.23, 205.14, 0.61, 42.90]),
    ("F2", [1.39, 310.64, 0.90, 93.15]),
    ("C1", [28.58, 707.23, 7.08, 227.31]),
    ("C2", [8.68, 925.32, 2.07, 175.31]),
    ("C3", [29.85, 258.75, 8.56, 105.11]),
    ("C4", [12.83, 421.84, 4.07, 109.35]),
];
const PAPER_TABLE4: [(&str, [f64; 4]); 6] = [
    ("F1", [0.11, 9.22, 0.05, 9.17]),
    ("F2", [0.29, 23.63, 0.05, 6.28]),
    ("C1", [2.18, 137.25, 0.71, 29.50]),
    ("C2", [0.95, 25.09, 0.31, 5.82]),
    ("C3", [17.02, 236.03, 4.03, 86.96]),
    ("C4", [6.05, 72.99, 1.89, 19.85]),
];

/// The paper's mean sharpness for `net`, `regime` and ε (1e-3 or 5e-4) from `table`.
fn paper_sharpness(table: &[(&str, [f64; 4]); 6], net: &str, regime: Regime, epsilon: f64) -> Option<f64> {
    let (_, v) = table.iter().find(|(n, _)| *n == net)?;
    let col = match (regime, epsilon) {
        (Regime::SB, e) if e == 1e-3 => 0,
        (Regime::LB, e) if e == 1e-3 => 1,
        (Regime::SB, e) if e == 5e-4 => 2,
        (Regime::LB, e) if e == 5e-4 => 3,
        _ => return None,
    };
    Some(v[col])
}

fn paper_row(net: &str, regime: Regime) -> (f64, f64) {
    let (_, v) = PAPER_TABLE2.iter().find(|(n, _)| *n == net).expect("every net has a paper row");
    match regime {
        Regime::SB => (v[0], v[2]),
        Regime::LB => (v[1], v[3]),
    }
}

/// The Keskar study: its grid and the shared data.
pub struct Keskar {
    cells: Vec<Cell>,
    /// Every dataset the grid uses, loaded once.
    data: Vec<(DataSpec, Dataset)>,
    device: nets::Device,
}

impl Study for Keskar {
    type Cell = Cell;
    type Outcome = Outcome;
    const NAME: &'static str = "keskar";

    fn cells(&self) -> Vec<Cell> {
        self.cells.clone()
    }

    fn label(cell: &Cell) -> String {
        format!("{}-{:?}-seed{}", cell.net, cell.regime, cell.seed_index)
    }

    fn run_cell(&self, cell: &Cell, progress: &CellProgress) -> Result<Outcome> {
        let epochs = cell.train.epochs;
        let data = &self.data.iter().find(|(spec, _)| *spec == cell.data).expect("every cell's data is loaded").1;
        let start = std::time::Instant::now();
        let trained = cell.spec.train(data, &cell.train, cell.seeds, None, &self.device, &mut |m, _| {
            let msg = format!(
                "epoch {:>3}/{epochs}  train loss {:.4}  train {:5.1}%  test {:5.1}%",
                m.epoch, m.train_loss, m.train_acc, m.test_acc
            );
            if m.epoch % 10 == 0 || m.epoch == epochs {
                progress.log(&msg);
            } else {
                progress.message(&msg);
            }
        });
        let train_seconds = start.elapsed().as_secs_f64();
        harness::write_atomic(&progress.artifact("weights"), &trained.weights.to_bytes())?;
        let measures = cell.measure.as_ref().map(|cfg| {
            progress.log("measuring sharpness and curvature");
            let m = measure(&cell.spec, &trained.weights, data, cfg, &self.device);
            progress.log(&format!(
                "sharpness (full, ε = {:.0e}) {:.3}   top eigenvalue {:.3}   trace {:.1}   [{:.1} s]",
                cfg.epsilons[0],
                m.full_space[0].value,
                m.top_eigenvalue.as_ref().map_or(f64::NAN, |t| t.value),
                m.trace.as_ref().map_or(f64::NAN, |t| t.value),
                m.seconds
            ));
            m
        });
        Ok(Outcome { trained, train_seconds, measures })
    }
}

/// Validates the arguments, builds the grid, runs it and writes the report.
pub fn run(args: Args) -> Result<()> {
    let spec = scale_spec(args.scale);
    let known: Vec<&str> = spec.nets.iter().map(|(n, ..)| *n).collect();
    let given: Vec<String> = match &args.nets {
        Some(list) => list.iter().map(|n| n.trim().to_string()).collect(),
        None => spec.default_nets.iter().map(|s| s.to_string()).collect(),
    };
    let scale = format!("{:?}", args.scale).to_lowercase();
    let mut names = Vec::new();
    for n in &given {
        match known.iter().find(|k| k.eq_ignore_ascii_case(n)) {
            Some(k) => names.push(k.to_string()),
            None => bail!("--nets: unknown network '{n}' at scale {scale}; accepted: {}", known.join(", ")),
        }
    }
    if names.is_empty() {
        bail!("--nets: no network given; accepted: {}", known.join(", "));
    }
    if args.seeds == 0 {
        bail!("--seeds 0: at least one seed is needed (accepted: 1 or more)");
    }
    if args.epochs == Some(0) {
        bail!("--epochs 0: at least one epoch is needed (accepted: 1 or more)");
    }
    let (backend, device, jobs) = args.grid.validate()?;
    // Load every dataset first: missing ones fail here, all named, before any training.
    let data_dir = DataDir::resolve(args.data_dir.as_deref());
    let mut data: Vec<(DataSpec, Dataset)> = Vec::new();
    let mut missing = Vec::new();
    for name in &names {
        let (_, _, spec_data) = spec.nets.iter().find(|(n, ..)| n == name).expect("validated");
        if !data.iter().any(|(d, _)| d == spec_data) {
            match spec_data.load(&data_dir) {
                Ok(d) => data.push((spec_data.clone(), d)),
                Err(e) => missing.push(format!("{e:#}")),
            }
        }
    }
    if !missing.is_empty() {
        bail!("{}", missing.join("\n"));
    }
    harness::check_writable(&args.grid.out)?;

    let epochs = args.epochs.unwrap_or(spec.epochs);
    let master = args.grid.seed;
    let mut cells = Vec::new();
    for name in &names {
        let (_, net, data_spec) = spec.nets.iter().find(|(n, ..)| n == name).expect("validated");
        let dataset = &data.iter().find(|(d, _)| d == data_spec).expect("loaded above").1;
        let mut net = net.clone();
        // F2's input and classes follow the user's TIMIT features.
        if let NetSpec::Mlp(m) = &mut net
            && *data_spec == DataSpec::Timit
        {
            m.input = dataset.sample_len();
            m.classes = dataset.classes;
        }
        for regime in [Regime::SB, Regime::LB] {
            let batch_size = match regime {
                Regime::SB => spec.sb,
                Regime::LB => spec.lb.unwrap_or(dataset.train.len() / 10),
            };
            for seed_index in 0..args.seeds {
                let i = seed_index.to_string();
                cells.push(Cell {
                    net: name.clone(),
                    scale: args.scale,
                    data: data_spec.clone(),
                    spec: net.clone(),
                    regime,
                    train: TrainConfig {
                        batch_size,
                        epochs,
                        learning_rate: spec.learning_rate,
                        eval_batch: 1000,
                        shuffle: true,
                        patience: spec.patience,
                    },
                    seed_index,
                    seeds: RunSeeds {
                        init: harness::derive_seed(master, &["keskar", name, "init", &i]),
                        order: harness::derive_seed(master, &["keskar", name, &format!("{regime:?}"), "order", &i]),
                    },
                    measure: spec.measure.then(|| {
                        MeasureConfig::keskar(harness::derive_seed(
                            master,
                            &["keskar", name, &format!("{regime:?}"), "measure", &i],
                        ))
                    }),
                });
            }
        }
    }
    let study = Keskar { cells, data, device: device.clone() };
    let env = crate::env::Env::capture(backend, &device, jobs);
    let opts = harness::GridOptions { out: args.grid.out.clone(), jobs, master_seed: master, env };
    let records = harness::run_grid(&study, &opts)?;
    let dir = harness::study_dir::<Keskar>(&args.grid.out);
    for net in &names {
        parametric_slice(&study, &records, net, &dir)?;
    }
    let text = report(&records, &dir)?;
    println!("{text}");
    Ok(())
}

/// Keskar Fig. 3: loss and accuracy along the line through the SB and LB solutions of one seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slice {
    /// Network.
    pub net: String,
    /// Records of the two solutions (α = 0 is SB, α = 1 is LB).
    pub sb: String,
    /// LB record.
    pub lb: String,
    /// Points of the line: α x_LB + (1 − α) x_SB.
    pub alpha: Vec<f64>,
    /// Mean cross-entropy on the training set at each α.
    pub train_loss: Vec<f64>,
    /// Training accuracy, %.
    pub train_acc: Vec<f64>,
    /// Mean cross-entropy on the test set.
    pub test_loss: Vec<f64>,
    /// Test accuracy, %.
    pub test_acc: Vec<f64>,
}

/// The paper's grid: 25 evenly spaced α in [−1, 2].
fn slice_alphas() -> Vec<f64> {
    (0..25).map(|i| -1.0 + 3.0 * i as f64 / 24.0).collect()
}

/// Computes (or keeps, when it is up to date) `slices/<net>.json` from the seed-0 SB and LB
/// solutions' weights. Batch norm's running statistics move along the line with the weights
/// (see `Weights::lerp`); evaluation is in inference mode on the whole train and test sets.
fn parametric_slice(study: &Keskar, records: &[Record<Cell, Outcome>], net: &str, dir: &Path) -> Result<()> {
    let find =
        |regime| records.iter().find(|r| r.config.net == net && r.config.regime == regime && r.config.seed_index == 0);
    let (Some(sb), Some(lb)) = (find(Regime::SB), find(Regime::LB)) else { return Ok(()) };
    let path = dir.join("slices").join(format!("{net}.json"));
    let alpha = slice_alphas();
    if let Ok(old) =
        fs::read_to_string(&path).map_err(anyhow::Error::from).and_then(|t| Ok(serde_json::from_str::<Slice>(&t)?))
        && old.sb == sb.id
        && old.lb == lb.id
        && old.alpha == alpha
    {
        return Ok(());
    }
    let load = |r: &Record<Cell, Outcome>| -> Result<Weights> {
        let file = dir.join("artifacts").join(format!("{}.weights", r.id));
        let bytes = fs::read(&file).with_context(|| format!("no weights at {}", file.display()))?;
        Weights::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
    };
    let (w_sb, w_lb) = match (load(sb), load(lb)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            // Records made before weights were kept (or copied without them): the tables still
            // come from the records; only the slice is missing.
            eprintln!("{net}: no Figure 3 ({e:#}); delete the seed-0 records of {net} and rerun to recreate it");
            return Ok(());
        }
    };
    let data = &study.data.iter().find(|(spec, _)| *spec == sb.config.data).expect("every cell's data is loaded").1;
    let layout = sb.config.spec.layout(&study.device);
    let mut obj = sb.config.spec.training_loss(&w_sb, data, 1000, &study.device);
    let mut slice = Slice {
        net: net.into(),
        sb: sb.id.clone(),
        lb: lb.id.clone(),
        alpha: alpha.clone(),
        train_loss: vec![],
        train_acc: vec![],
        test_loss: vec![],
        test_acc: vec![],
    };
    eprintln!("{net}: Figure 3, {} points between the SB and LB solutions of seed 0", alpha.len());
    let points = measure::slices::line(&w_sb.params_f64(), &w_lb.params_f64(), &alpha, |a, x| {
        let buffers = w_sb.lerp(&w_lb, a, &layout).buffers;
        (obj.evaluate(x, &buffers, &data.train), obj.evaluate(x, &buffers, &data.test))
    });
    for ((train_loss, train_acc), (test_loss, test_acc)) in points {
        slice.train_loss.push(train_loss);
        slice.train_acc.push(train_acc);
        slice.test_loss.push(test_loss);
        slice.test_acc.push(test_acc);
    }
    harness::write_atomic(&path, &serde_json::to_vec_pretty(&slice)?)
}

/// Metrics at the last epoch of a run.
fn last(outcome: &Outcome) -> &EpochMetrics {
    outcome.trained.curves.last().expect("at least the epoch-0 evaluation")
}

/// One row of Table 2.
struct Row<'a> {
    net: &'a str,
    dataset: &'a str,
    regime: Regime,
    batch: usize,
    parameters: usize,
    train: Vec<f64>,
    test: Vec<f64>,
    /// Epochs each run trained.
    epochs: Vec<usize>,
}

/// Writes `table2.{md,csv}` and `curves.{png,svg}` into `dir` from the records alone, and returns
/// the Markdown it wrote.
pub fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<String> {
    let nets = harness::distinct(records.iter().map(|r| r.config.net.as_str()));
    let mut rows = Vec::new();
    for &net in &nets {
        for regime in [Regime::SB, Regime::LB] {
            let runs: Vec<_> = records.iter().filter(|r| r.config.net == net && r.config.regime == regime).collect();
            let Some(first) = runs.first() else { continue };
            rows.push(Row {
                net,
                dataset: first.config.data.name(),
                regime,
                batch: first.config.train.batch_size,
                parameters: first.outcome.trained.parameters,
                train: runs.iter().map(|r| last(&r.outcome).train_acc).collect(),
                test: runs.iter().map(|r| last(&r.outcome).test_acc).collect(),
                epochs: runs.iter().map(|r| last(&r.outcome).epoch).collect(),
            });
        }
    }

    let mut csv = String::from(
        "net,dataset,regime,runs,train_acc_mean,train_acc_std,test_acc_mean,test_acc_std,paper_train_acc,paper_test_acc\n",
    );
    for r in &rows {
        let (ptrain, ptest) = paper_row(r.net, r.regime);
        writeln!(
            csv,
            "{},{},{:?},{},{:.4},{:.4},{:.4},{:.4},{:.2},{:.2}",
            r.net,
            r.dataset,
            r.regime,
            r.train.len(),
            mean(&r.train),
            std(&r.train),
            mean(&r.test),
            std(&r.test),
            ptrain,
            ptest
        )?;
    }

    let first = &records[0];
    let mut commits: Vec<String> = Vec::new();
    for r in records {
        let short = format!(
            "{}{}",
            &r.env.git_commit[..r.env.git_commit.len().min(10)],
            if r.env.git_dirty { " (dirty)" } else { "" }
        );
        if !commits.contains(&short) {
            commits.push(short);
        }
    }
    let schedule = match first.config.train.patience {
        Some(p) => format!(
            "until the training loss has made no new minimum for {p} epochs, at most {} epochs",
            first.config.train.epochs
        ),
        None => format!("{} epochs", first.config.train.epochs),
    };
    let mut md = String::new();
    writeln!(md, "# Keskar et al. 2017, Table 2: small-batch vs large-batch Adam\n")?;
    writeln!(
        md,
        "Scale `{:?}`, {schedule}, Adam (lr {}), master seed {}, backend {}, git {}. \
         Accuracy in %, mean ± std over seeds, at the last epoch; evaluation in inference mode.\n",
        first.config.scale,
        first.config.train.learning_rate,
        first.master_seed,
        first.env.backend,
        commits.join(", "),
    )?;
    writeln!(
        md,
        "| net | params | data | regime | batch | runs | epochs run | train acc | test acc | paper train | paper test |"
    )?;
    writeln!(md, "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|")?;
    for r in &rows {
        let (ptrain, ptest) = paper_row(r.net, r.regime);
        let (lo, hi) = r.epochs.iter().fold((usize::MAX, 0), |(a, b), &e| (a.min(e), b.max(e)));
        let epochs = if lo == hi { lo.to_string() } else { format!("{lo}–{hi}") };
        writeln!(
            md,
            "| {} | {} | {} | {:?} | {} | {} | {epochs} | {:.2} ± {:.2} | {:.2} ± {:.2} | {:.2} | {:.2} |",
            r.net,
            r.parameters,
            r.dataset,
            r.regime,
            r.batch,
            r.train.len(),
            mean(&r.train),
            std(&r.train),
            mean(&r.test),
            std(&r.test),
            ptrain,
            ptest
        )?;
    }
    let paper_data: Vec<String> = nets
        .iter()
        .map(|n| format!("{n} on {}", PAPER_DATA.iter().find(|(m, _)| m == n).map(|(_, d)| *d).unwrap_or("?")))
        .collect();
    writeln!(md, "\nThe paper's columns are its Table 2 ({}), shown for reference.\n", paper_data.join(", "))?;
    writeln!(md, "## Generalization gap (SB − LB test accuracy)\n")?;
    writeln!(md, "| net | SB test | LB test | gap (points) | Welch t | p (two-sided) | LB below SB, p < 0.05 |")?;
    writeln!(md, "|---|---:|---:|---:|---:|---:|---|")?;
    for &net in &nets {
        let sb = rows.iter().find(|r| r.net == net && r.regime == Regime::SB);
        let lb = rows.iter().find(|r| r.net == net && r.regime == Regime::LB);
        let (Some(sb), Some(lb)) = (sb, lb) else { continue };
        let gap = mean(&sb.test) - mean(&lb.test);
        let (t, p) = match welch_t_test(&sb.test, &lb.test) {
            Some((t, p)) => (format!("{t:.2}"), format!("{p:.2e}")),
            None => ("–".into(), "–".into()),
        };
        let significant = welch_t_test(&sb.test, &lb.test).is_some_and(|(_, p)| p < 0.05) && gap > 0.0;
        writeln!(
            md,
            "| {net} | {:.2} | {:.2} | {gap:.2} | {t} | {p} | {} |",
            mean(&sb.test),
            mean(&lb.test),
            if significant { "yes" } else { "no" }
        )?;
    }

    fs::create_dir_all(dir)?;
    harness::write_atomic(&dir.join("table2.csv"), csv.as_bytes())?;
    harness::write_atomic(&dir.join("table2.md"), md.as_bytes())?;
    plot::write_panels(&dir.join("curves"), &curve_panels(records, &nets))?;
    if records.iter().any(|r| r.outcome.measures.is_some()) {
        for (n, which) in [(3, Space::Full), (4, Space::Subspace)] {
            let (table_md, table_csv) = sharpness_table(records, &nets, which)?;
            harness::write_atomic(&dir.join(format!("table{n}.csv")), table_csv.as_bytes())?;
            harness::write_atomic(&dir.join(format!("table{n}.md")), table_md.as_bytes())?;
            md.push('\n');
            md.push_str(&table_md);
        }
        let (curv_md, curv_csv) = curvature_table(records, &nets)?;
        harness::write_atomic(&dir.join("curvature.csv"), curv_csv.as_bytes())?;
        harness::write_atomic(&dir.join("curvature.md"), curv_md.as_bytes())?;
        md.push('\n');
        md.push_str(&curv_md);
    }
    let slices: Vec<Slice> = nets
        .iter()
        .filter_map(|n| fs::read_to_string(dir.join("slices").join(format!("{n}.json"))).ok())
        .filter_map(|t| serde_json::from_str(&t).ok())
        .filter(|s: &Slice| records.iter().any(|r| r.id == s.sb) && records.iter().any(|r| r.id == s.lb))
        .collect();
    if !slices.is_empty() {
        plot::write_grid(&dir.join("figure3"), 2, &slice_panels(&slices, records))?;
    }
    Ok(md)
}

/// Full space (Table 3) or random subspace (Table 4).
#[derive(Clone, Copy, PartialEq)]
enum Space {
    Full,
    Subspace,
}

/// Table 3 or 4 as Markdown and CSV: sharpness mean ± std over seeds per net, regime and ε,
/// the paper's value beside it, and the LB/SB ratio of the means.
fn sharpness_table(records: &[Record<Cell, Outcome>], nets: &[&str], space: Space) -> Result<(String, String)> {
    let (n, title, paper) = match space {
        Space::Full => (3, "full space (A = I)", &PAPER_TABLE3),
        Space::Subspace => (4, "random subspace (p = 100, A with i.i.d. N(0, 1) entries)", &PAPER_TABLE4),
    };
    let values = |net: &str, regime: Regime, k: usize| -> (Vec<f64>, f64) {
        let mut eps = 0.0;
        let v = records
            .iter()
            .filter(|r| r.config.net == net && r.config.regime == regime)
            .filter_map(|r| r.outcome.measures.as_ref())
            .map(|m| {
                let s = match space {
                    Space::Full => &m.full_space[k],
                    Space::Subspace => &m.subspace[k],
                };
                eps = s.epsilon;
                s.value
            })
            .collect();
        (v, eps)
    };
    let epsilons: Vec<f64> =
        records.iter().find_map(|r| r.config.measure.as_ref()).map(|m| m.epsilons.clone()).unwrap_or_default();
    let iterations = records.iter().find_map(|r| r.config.measure.as_ref()).map(|m| m.lbfgsb_iterations).unwrap_or(0);
    let mut md = String::new();
    let mut csv = String::from("net,regime,runs,epsilon,sharpness_mean,sharpness_std,paper_mean\n");
    writeln!(md, "## Table {n}: sharpness in the {title}\n")?;
    writeln!(
        md,
        "Metric 2.1, 100 · (max f(x + Ay) − f(x)) / (1 + f(x)) over the box |y_i| ≤ ε(|(A⁺x)_i| + 1), maximized by {iterations} iterations of L-BFGS-B; mean ± std over seeds. The paper's means beside ours.\n"
    )?;
    let mut header = String::from("| net | regime | runs |");
    let mut rule = String::from("|---|---|---:|");
    for e in &epsilons {
        write!(header, " ε = {e:.0e} | paper |")?;
        rule.push_str("---:|---:|");
    }
    writeln!(md, "{header}\n{rule}")?;
    for &net in nets {
        for regime in [Regime::SB, Regime::LB] {
            let mut row = String::new();
            let mut runs = 0;
            for k in 0..epsilons.len() {
                let (v, eps) = values(net, regime, k);
                runs = v.len();
                if v.is_empty() {
                    continue;
                }
                let p = paper_sharpness(paper, net, regime, eps).map(|p| format!("{p:.2}")).unwrap_or("–".into());
                write!(row, " {:.2} ± {:.2} | {p} |", mean(&v), std(&v))?;
                writeln!(csv, "{net},{regime:?},{},{eps:e},{:.6},{:.6},{p}", v.len(), mean(&v), std(&v))?;
            }
            if runs > 0 {
                writeln!(md, "| {net} | {regime:?} | {runs} |{row}")?;
            }
        }
    }
    writeln!(md, "\n| net | ε | LB / SB (ours) | LB / SB (paper) |\n|---|---|---:|---:|")?;
    for &net in nets {
        for k in 0..epsilons.len() {
            let ((sb, eps), (lb, _)) = (values(net, Regime::SB, k), values(net, Regime::LB, k));
            if sb.is_empty() || lb.is_empty() {
                continue;
            }
            let ratio = mean(&lb) / mean(&sb);
            let p = match (paper_sharpness(paper, net, Regime::SB, eps), paper_sharpness(paper, net, Regime::LB, eps)) {
                (Some(s), Some(l)) => format!("{:.0}×", l / s),
                _ => "–".into(),
            };
            writeln!(md, "| {net} | {eps:.0e} | {ratio:.1}× | {p} |")?;
        }
    }
    Ok((md, csv))
}

/// Hessian top eigenvalue and trace per net and regime, and what the measurements cost.
fn curvature_table(records: &[Record<Cell, Outcome>], nets: &[&str]) -> Result<(String, String)> {
    let mut md = String::from("## Curvature of the training loss at the solutions\n\n");
    md.push_str("Top Hessian eigenvalue by the Lanczos method and trace by Hutchinson's estimator (Rademacher probes), both on Hessian-vector products from central differences of gradients; mean ± std over seeds. `converged` counts runs whose Ritz pair reached the relative-residual tolerance (the eigenvalue is then within that fraction of the estimate); `max residual` is the largest relative residual of a run; `trace s.e.` is the largest standard error of a single run's estimate.\n\n");
    md.push_str("| net | regime | runs | top eigenvalue | converged | max residual | trace | trace s.e. |\n|---|---|---:|---:|---:|---:|---:|---:|\n");
    let mut csv = String::from(
        "net,regime,runs,top_eigenvalue_mean,top_eigenvalue_std,converged,max_residual,trace_mean,trace_std,trace_max_std_error\n",
    );
    for &net in nets {
        for regime in [Regime::SB, Regime::LB] {
            let ms: Vec<(&TopEigenvalue, &Trace)> = records
                .iter()
                .filter(|r| r.config.net == net && r.config.regime == regime)
                .filter_map(|r| r.outcome.measures.as_ref())
                .filter_map(|m| Some((m.top_eigenvalue.as_ref()?, m.trace.as_ref()?)))
                .collect();
            if ms.is_empty() {
                continue;
            }
            let eig: Vec<f64> = ms.iter().map(|m| m.0.value).collect();
            let tr: Vec<f64> = ms.iter().map(|m| m.1.value).collect();
            let conv = ms.iter().filter(|m| m.0.converged).count();
            let se = ms.iter().map(|m| m.1.std_error).fold(0.0, f64::max);
            let res = ms.iter().map(|m| m.0.residual).fold(0.0, f64::max);
            writeln!(
                md,
                "| {net} | {regime:?} | {} | {:.3} ± {:.3} | {conv}/{} | {res:.1e} | {:.1} ± {:.1} | {se:.1} |",
                ms.len(),
                mean(&eig),
                std(&eig),
                ms.len(),
                mean(&tr),
                std(&tr)
            )?;
            writeln!(
                csv,
                "{net},{regime:?},{},{:.6},{:.6},{conv},{res:.6e},{:.6},{:.6},{se:.6}",
                ms.len(),
                mean(&eig),
                std(&eig),
                mean(&tr),
                std(&tr)
            )?;
        }
    }
    let train: f64 = records.iter().filter(|r| r.outcome.measures.is_some()).map(|r| r.outcome.train_seconds).sum();
    let measured: f64 = records.iter().filter_map(|r| r.outcome.measures.as_ref()).map(|m| m.seconds).sum();
    let samples = records.iter().find_map(|r| r.config.measure.as_ref()).and_then(|m| m.samples);
    writeln!(
        md,
        "\nCost: the measurements took {measured:.0} s in all, {:.0} % of the {train:.0} s spent training the same cells (summed over cells). The objective is the training loss on {}.",
        100.0 * measured / train.max(f64::MIN_POSITIVE),
        match samples {
            Some(m) => format!("a fixed random subset of {m} training samples"),
            None => "the whole training set".into(),
        }
    )?;
    Ok((md, csv))
}

/// Figure 3: per net, cross-entropy (log scale) above and accuracy below, along α; training
/// data solid, test data dashed, as in the paper.
fn slice_panels(slices: &[Slice], records: &[Record<Cell, Outcome>]) -> Vec<Panel> {
    let name = |s: &Slice| {
        records
            .iter()
            .find(|r| r.id == s.sb)
            .map(|r| format!("{} on {}", s.net, r.config.data.name()))
            .unwrap_or(s.net.clone())
    };
    let series = |s: &Slice, train: &[f64], test: &[f64], color| {
        vec![
            Series {
                label: "train".into(),
                color,
                dashed: false,
                x: s.alpha.clone(),
                mean: train.to_vec(),
                std: vec![0.0; train.len()],
            },
            Series {
                label: "test".into(),
                color,
                dashed: true,
                x: s.alpha.clone(),
                mean: test.to_vec(),
                std: vec![0.0; test.len()],
            },
        ]
    };
    let mut panels: Vec<Panel> = slices
        .iter()
        .map(|s| {
            let mut p = Panel::new(
                format!("{}: cross-entropy", name(s)),
                "α  (0 = SB solution, 1 = LB solution)",
                "cross-entropy (log scale)",
                series(s, &s.train_loss, &s.test_loss, PALETTE[0]),
            );
            p.log_y = true;
            p.legend = plotters::prelude::SeriesLabelPosition::UpperMiddle;
            p
        })
        .collect();
    panels.extend(slices.iter().map(|s| {
        let mut p = Panel::new(
            format!("{}: accuracy", name(s)),
            "α  (0 = SB solution, 1 = LB solution)",
            "accuracy (%)",
            series(s, &s.train_acc, &s.test_acc, PALETTE[1]),
        );
        p.legend = plotters::prelude::SeriesLabelPosition::LowerMiddle;
        p
    }));
    panels
}

/// Train (dashed) and test (solid) accuracy vs epoch, SB blue and LB red, mean ± std over seeds.
fn curve_panels(records: &[Record<Cell, Outcome>], nets: &[&str]) -> Vec<Panel> {
    nets.iter()
        .map(|&net| {
            let mut series = Vec::new();
            for (regime, color) in [(Regime::SB, PALETTE[0]), (Regime::LB, PALETTE[1])] {
                let runs: Vec<_> =
                    records.iter().filter(|r| r.config.net == net && r.config.regime == regime).collect();
                let Some(first) = runs.first() else { continue };
                let batch = first.config.train.batch_size;
                let len = runs.iter().map(|r| r.outcome.trained.curves.len()).min().unwrap_or(0);
                for (which, dashed, get) in [
                    ("train", true, (|m: &EpochMetrics| m.train_acc) as fn(&EpochMetrics) -> f64),
                    ("test", false, |m| m.test_acc),
                ] {
                    let at = |e: usize| runs.iter().map(|r| get(&r.outcome.trained.curves[e])).collect::<Vec<_>>();
                    series.push(Series {
                        label: format!("{regime:?} (batch {batch}) {which}"),
                        color,
                        dashed,
                        x: (0..len).map(|e| e as f64).collect(),
                        mean: (0..len).map(|e| mean(&at(e))).collect(),
                        std: (0..len).map(|e| std(&at(e))).collect(),
                    });
                }
            }
            Panel::new(
                format!(
                    "{net} on {}",
                    records.iter().find(|r| r.config.net == net).map(|r| r.config.data.name()).unwrap_or("?")
                ),
                "epoch",
                "accuracy (%)",
                series,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::Env;

    fn record(regime: Regime, seed_index: usize, train_acc: f64, test_acc: f64) -> Record<Cell, Outcome> {
        let spec = scale_spec(Scale::Smoke);
        let (_, net, data) = spec.nets[0].clone();
        let metrics =
            |epoch, train_acc, test_acc| EpochMetrics { epoch, train_loss: 1.0, train_acc, test_loss: 1.0, test_acc };
        Record {
            study: "keskar".into(),
            id: format!("F1-{regime:?}-seed{seed_index}"),
            master_seed: 0,
            config: Cell {
                net: "F1".into(),
                scale: Scale::Smoke,
                data,
                spec: net,
                regime,
                train: TrainConfig {
                    batch_size: 16,
                    epochs: 1,
                    learning_rate: 1e-3,
                    eval_batch: 1000,
                    shuffle: true,
                    patience: None,
                },
                seed_index,
                seeds: RunSeeds { init: 1, order: 2 },
                measure: None,
            },
            env: Env {
                flatland_version: "0.1.0".into(),
                git_commit: "0123456789abcdef".into(),
                git_dirty: false,
                burn_version: "0.22.1".into(),
                backend: "flex".into(),
                device: "Device<Flex(Cpu)>".into(),
                cpu: "test".into(),
                jobs: 1,
            },
            wall_time_s: 1.0,
            finished_unix_s: 0,
            outcome: Outcome {
                trained: Trained {
                    parameters: 2,
                    curves: vec![metrics(0, 10.0, 10.0), metrics(1, train_acc, test_acc)],
                    weights: Weights::default(),
                },
                train_seconds: 1.0,
                measures: None,
            },
        }
    }

    #[test]
    fn table2_csv_from_fixed_records() {
        // SB test 70, 72 (mean 71, std √2); LB test 66, 66 (mean 66, std 0).
        let records = vec![
            record(Regime::SB, 0, 99.0, 70.0),
            record(Regime::SB, 1, 100.0, 72.0),
            record(Regime::LB, 0, 100.0, 66.0),
            record(Regime::LB, 1, 100.0, 66.0),
        ];
        let dir = tempfile::tempdir().unwrap();
        let md = report(&records, dir.path()).unwrap();
        let csv = std::fs::read_to_string(dir.path().join("table2.csv")).unwrap();
        assert_eq!(
            csv,
            "net,dataset,regime,runs,train_acc_mean,train_acc_std,test_acc_mean,test_acc_std,paper_train_acc,paper_test_acc\n\
             F1,mnist1d,SB,2,99.5000,0.7071,71.0000,1.4142,99.66,98.03\n\
             F1,mnist1d,LB,2,100.0000,0.0000,66.0000,0.0000,99.92,97.81\n"
        );
        // Welch: t = 5 / √(2/2 + 0) = 5, df = 1, two-sided p = 2·(1 − F₁(5)) = 0.1257 (Cauchy:
        // 1 − 2/π·atan 5).
        assert!(md.contains("| F1 | 71.00 | 66.00 | 5.00 | 5.00 | 1.26e-1 | no |"), "{md}");
        assert!(
            md.contains("| F1 | 2 | mnist1d | SB | 16 | 2 | 1 | 99.50 ± 0.71 | 71.00 ± 1.41 | 99.66 | 98.03 |"),
            "{md}"
        );
        assert!(dir.path().join("curves.png").exists() && dir.path().join("curves.svg").exists());
    }
}
