//! Keskar, Mudigere, Nocedal, Smelyanskiy & Tang, "On Large-Batch Training for Deep Learning:
//! Generalization Gap and Sharp Minima" (ICLR 2017): Table 2 (train and test accuracy of
//! small-batch (SB) and large-batch (LB) Adam, mean ± std over seeds, beside the paper's numbers),
//! Tables 3 and 4 (ε-sharpness), the Hessian's curvature at the solutions, and Figure 3.
//!
//! Command: `cargo run --release -p studies -- keskar [--scale smoke|default|paper]`.
//! The default scale trains F1- and C1-family nets on generated MNIST-1D (no download) and takes
//! a few minutes on 2 cores; `smoke` is a seconds-long version for tests.
//!
//! - [`paper`]: the paper's numbers;
//! - [`report`]: the tables and plots, from records alone;
//! - [`figure3`]: the line between the SB and LB solutions, a stage with its own records.
//!
//! The scales (networks, batches, epochs, step size) are in [`crate::scale`]; the measurement
//! driver in [`crate::measurement`].

pub mod figure3;
pub mod paper;
pub mod report;

use std::path::{Path, PathBuf};

use anyhow::Result;
use datasets::Dataset;
use nets::train::{NetSpec, Protocol, RunSeeds, TrainConfig};
use serde::{Deserialize, Serialize};

use crate::data::{DataDir, DataSpec};
use crate::harness::{self, CellProgress, GridArgs, Record, Report, Study};
use crate::measurement::{MeasureConfig, Outcome, measure_run};
use crate::predict::{Prediction, Run};
use crate::scale::{Scale, scale_spec};
use crate::usage;
use figure3::Figure3;

/// One line: what `studies list` and `--help` say.
pub const ABOUT: &str =
    "Keskar et al. 2017 Tables 2-4, Fig. 3: SB vs LB Adam, accuracy, sharpness, curvature, with the paper's numbers";

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
    /// Adam's step size (default: the scale's own, 1e-3 as in the paper's code).
    #[arg(long)]
    pub learning_rate: Option<f64>,
    /// Small batch (default: the scale's own; 256 at paper scale).
    #[arg(long)]
    pub sb: Option<usize>,
    /// Large batch (default: the scale's own; at paper scale 10 % of the training set, as in
    /// the paper).
    #[arg(long)]
    pub lb: Option<usize>,
    /// Initialization and evaluation: `torch` (PyTorch's defaults: U(±1/√fan-in) init, batch norm
    /// ε 1e-5 and momentum 0.1, evaluation on running statistics) or `keras` (the paper's code:
    /// Glorot-uniform init, `BatchNormalization(mode=2)` with ε 1e-3 and momentum 0.99, each
    /// evaluation batch of 5000 normalized by its own statistics).
    #[arg(long, default_value = "torch", value_parser = ["torch", "keras"])]
    pub protocol: String,
    /// Train every network on this data instead of the scale's own (F nets take the flattened
    /// sample, C nets images as they are and 1-D signals as height-1 images): mnist1d,
    /// mnist1d-frozen, mnist, fashion-mnist, cifar-10, cifar-10-subset, cifar-100, optdigits, timit, npy:DIR.
    #[arg(long, value_parser = crate::data::data_name)]
    pub data: Option<String>,
    /// Folder holding the real datasets, one subfolder each (mnist, cifar-10, cifar-10-subset, cifar-100, timit, …)
    /// [default: $FLATLAND_DATA, else the platform cache folder].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub grid: GridArgs,
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
        let data = crate::data::find(&self.data, &cell.data)?;
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
        if let Some(d) = &trained.diverged_at {
            progress.log(&format!("diverged in epoch {} at step {} ({} not finite)", d.epoch, d.step, d.what));
        }
        harness::write_atomic(&progress.artifact("weights"), &trained.weights.to_bytes())?;
        if cell.measure.is_some() && trained.finished() {
            progress.log("measuring sharpness and curvature");
        }
        let measures = measure_run(&cell.spec, &trained, data, cell.measure.as_ref(), &self.device)?;
        for m in &measures {
            progress.log(&format!(
                "{}: sharpness (full, ε = {:.0e}) {:.3}   top eigenvalue {:.3}   trace {:.1}   [{:.1} s]",
                m.batch_norm.describe(),
                m.full_space.first().map_or(f64::NAN, |s| s.epsilon),
                m.sharpness().unwrap_or(f64::NAN),
                m.top_eigenvalue.as_ref().map_or(f64::NAN, |t| t.value),
                m.trace.as_ref().map_or(f64::NAN, |t| t.value),
                m.seconds
            ));
        }
        Ok(Outcome { trained, train_seconds, measures })
    }

    fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<Report> {
        report::report(records, dir)
    }

    /// SB and LB of one seed run in one shard: Figure 3 compares the seed-0 pair there.
    fn shard_group(cell: &Cell) -> String {
        format!("{}-seed{}", cell.net, cell.seed_index)
    }

    /// Parameters × samples seen: proportional to a dense net's training work.
    fn cost(&self, cell: &Cell) -> f64 {
        let train = crate::data::find(&self.data, &cell.data).map_or(0, |d| d.train.len());
        cell.spec.parameter_count(&self.device) as f64 * (cell.train.epochs * train) as f64
    }

    fn predict(&self, cells: &[&Cell]) -> Result<Option<Prediction>> {
        let runs: Vec<Run<'_>> = cells
            .iter()
            .map(|c| Ok(Run::of(&c.spec, &c.train, &c.data, &self.data)?.measuring(c.measure.as_ref())))
            .collect::<Result<_>>()?;
        crate::predict::price(&runs, "every run to its cap, Figure 3 on top", &self.device).map(Some)
    }
}

/// Validates the arguments, builds the grid, runs it, runs Figure 3 on its seed-0 solutions,
/// and writes the report.
pub fn run(args: Args) -> Result<Report> {
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
            None => usage!("--nets: unknown network '{n}' at scale {scale}; accepted: {}", known.join(", ")),
        }
    }
    if names.is_empty() {
        usage!("--nets: no network given; accepted: {}", known.join(", "));
    }
    if args.seeds == 0 {
        usage!("--seeds 0: at least one seed is needed (accepted: 1 or more)");
    }
    if args.epochs == Some(0) {
        usage!("--epochs 0: at least one epoch is needed (accepted: 1 or more)");
    }
    if let Some(lr) = args.learning_rate
        && !(lr.is_finite() && lr > 0.0)
    {
        usage!("--learning-rate {lr}: accepted: a finite number above 0");
    }
    for (flag, value) in [("--sb", args.sb), ("--lb", args.lb)] {
        if value == Some(0) {
            usage!("{flag} 0: a batch holds at least one sample (accepted: 1 or more)");
        }
    }
    let (backend, device, jobs) = args.grid.validate()?;
    let chosen: Vec<(String, NetSpec, DataSpec)> = names
        .iter()
        .map(|name| spec.nets.iter().find(|(n, ..)| n == name).expect("validated"))
        .map(|(n, net, d)| (n.to_string(), net.clone(), d.clone()))
        .collect();
    // Load every dataset first: missing ones and networks that do not fit their data fail
    // here, all named, before any training.
    let dir = DataDir::resolve(args.data_dir.as_deref());
    let (chosen, data) = crate::data::on_data(chosen, args.data.as_deref(), &dir)?;
    let env = crate::env::Env::capture(backend, &device, jobs).with_datasets(&data, &dir)?;

    let epochs = args.epochs.unwrap_or(spec.epochs);
    let master = args.grid.seed;
    let protocol = if args.protocol == "keras" { Protocol::Keras } else { Protocol::Torch };
    let mut cells = Vec::new();
    for (name, net, data_spec) in &chosen {
        let dataset = crate::data::find(&data, data_spec)?;
        let net = net.clone().with_batch_norm(protocol.batch_norm());
        for regime in [Regime::SB, Regime::LB] {
            let batch_size = match regime {
                Regime::SB => args.sb.unwrap_or(spec.sb),
                Regime::LB => args.lb.or(spec.lb).unwrap_or(dataset.train.len() / 10).max(1),
            };
            if batch_size > dataset.train.len() {
                let flag = if regime == Regime::SB { "--sb" } else { "--lb" };
                usage!(
                    "{flag} {batch_size}: larger than {name}'s training set on {} ({} samples); accepted: 1 to {}",
                    data_spec.name(),
                    dataset.train.len(),
                    dataset.train.len()
                );
            }
            for seed_index in 0..args.seeds {
                let i = seed_index.to_string();
                let r = format!("{regime:?}");
                cells.push(Cell {
                    net: name.to_string(),
                    scale: args.scale,
                    data: data_spec.clone(),
                    spec: net.clone(),
                    regime,
                    train: TrainConfig {
                        patience: spec.patience,
                        ..TrainConfig::adam(batch_size, epochs, args.learning_rate.unwrap_or(spec.learning_rate))
                    }
                    .with_protocol(protocol),
                    seed_index,
                    seeds: RunSeeds {
                        init: harness::derive_seed(master, &["keskar", name, "init", &i]),
                        order: harness::derive_seed(master, &["keskar", name, &r, "order", &i]),
                    },
                    // Every scale measures on a fixed 1000-sample subset of the training set (at
                    // paper scale a full-set gradient takes seconds, and the measurements take
                    // ~100 of them); seed 0 also carries the diagnostics: the ε sweep, the whole
                    // training set's value (the subset's bias) and the eigenvalue density.
                    measure: Some({
                        let seed = harness::derive_seed(master, &["keskar", name, "measure", &i]);
                        if seed_index == 0 { MeasureConfig::keskar_diagnosed(seed) } else { MeasureConfig::keskar(seed) }
                    }),
                });
            }
        }
    }
    let opts = args.grid.options(jobs, env)?;
    let study = Keskar { cells, data, device: device.clone() };
    let records = harness::run_grid(&study, &opts)?;
    let dir = harness::study_dir::<Keskar>(&opts.out);
    // In a shard, the lines whose two solutions this shard trained (seed 0 of a network is one
    // shard group).
    let figure3 = Figure3 { cells: Figure3::lines(&records), data: &study.data, artifacts: dir.join("artifacts"), device };
    if !figure3.cells.is_empty() {
        harness::run_grid(&figure3, &opts)?;
    }
    if let Some(shard) = opts.shard {
        return Ok(harness::shard_done::<Keskar>(shard, records.len(), &opts.out));
    }
    Keskar::report(&records, &dir)
}

/// `studies report keskar`: the tables and figures from the records under `out` (a grid run in
/// shards merged first), refused while a Figure 3 line the records call for is missing.
pub fn report_saved(out: &Path) -> Result<Report> {
    let dir = harness::study_dir::<Keskar>(out);
    let records = harness::load_grid::<Keskar>(&dir)?;
    let lines = Figure3::lines(&records);
    if !lines.is_empty() {
        let done: Vec<figure3::Cell> = match harness::load_grid::<Figure3>(&dir) {
            Ok(slices) => slices.into_iter().map(|s| s.config).collect(),
            Err(_) => Vec::new(),
        };
        let missing: Vec<&str> = lines.iter().filter(|l| !done.contains(l)).map(|l| l.net.as_str()).collect();
        if !missing.is_empty() {
            crate::usage!(
                "{}: Figure 3 has no record for {} (its stage runs after the grid, in the shard that trained \
                 seed 0): rerun that shard or the study with the same flags",
                dir.display(),
                missing.join(", ")
            );
        }
    }
    Keskar::report(&records, &dir)
}


#[cfg(test)]
mod tests {
    use super::*;
    use nets::objective::Weights;
    use nets::train::{Divergence, EpochMetrics, Trained};

    fn record(regime: Regime, seed_index: usize, train_acc: f64, test_acc: f64) -> Record<Cell, Outcome> {
        let spec = scale_spec(Scale::Smoke);
        let (_, net, data) = spec.nets[0].clone();
        let metrics =
            |epoch, train_acc, test_acc| EpochMetrics { epoch, train_loss: 1.0, train_acc, test_loss: 1.0, test_acc };
        Record {
            schema: harness::SCHEMA_VERSION,
            study: "keskar".into(),
            id: format!("F1-{regime:?}-seed{seed_index}"),
            master_seed: 0,
            config: Cell {
                net: "F1".into(),
                scale: Scale::Smoke,
                data,
                spec: net,
                regime,
                train: TrainConfig::adam(16, 1, 1e-3),
                seed_index,
                seeds: RunSeeds { init: 1, order: 2 },
                measure: None,
            },
            env: crate::env::Env::fixture(),
            wall_time_s: 1.0,
            finished_unix_s: 0,
            outcome: Outcome {
                trained: Trained {
                    parameters: 2,
                    curves: vec![metrics(0, 10.0, 10.0), metrics(1, train_acc, test_acc)],
                    diverged_at: None,
                    weights: Weights::default(),
                },
                train_seconds: 1.0,
                measures: Vec::new(),
            },
        }
    }

    #[test]
    fn table2_from_fixed_records_counts_a_diverged_run_apart() {
        // SB test 70, 72 (mean 71, std √2); LB test 66, 66 (mean 66, std 0) and one LB run that
        // diverged in epoch 1 (its accuracies must not enter the means).
        let mut diverged = record(Regime::LB, 2, f64::NAN, f64::NAN);
        diverged.outcome.trained.curves.pop();
        diverged.outcome.trained.diverged_at =
            Some(Divergence { epoch: 1, step: 3, what: "loss".into(), loss: f64::INFINITY });
        let records = vec![
            record(Regime::SB, 0, 99.0, 70.0),
            record(Regime::SB, 1, 100.0, 72.0),
            record(Regime::LB, 0, 100.0, 66.0),
            record(Regime::LB, 1, 100.0, 66.0),
            diverged,
        ];
        let dir = tempfile::tempdir().unwrap();
        let md = report::report(&records, dir.path()).unwrap().text;
        let csv = std::fs::read_to_string(dir.path().join("table2.csv")).unwrap();
        assert_eq!(
            csv,
            "net,dataset,regime,runs,diverged,train_acc_mean,train_acc_std,test_acc_mean,test_acc_std,paper_train_acc,paper_test_acc\n\
             F1,mnist1d,SB,2,0,99.5,0.7071067811865476,71.0,1.4142135623730951,99.66,98.03\n\
             F1,mnist1d,LB,3,1,100.0,0.0,66.0,0.0,99.92,97.81\n"
        );
        // Welch: t = 5 / √(2/2 + 0) = 5, df = 1, two-sided p = 2·(1 − F₁(5)) = 0.1257 (Cauchy:
        // 1 − 2/π·atan 5).
        assert!(md.contains("| F1 | 71.00 | 66.00 | 5.00 | 5.00 | 1.26e-1 | no |"), "{md}");
        assert!(
            md.contains("| F1 | 2 | mnist1d | SB | 16 | 2 | 0 | 1 | 99.50 ± 0.71 | 71.00 ± 1.41 | 99.66 | 98.03 |"),
            "{md}"
        );
        assert!(
            md.contains("| F1 | 2 | mnist1d | LB | 16 | 3 | 1 | 1 | 100.00 ± 0.00 | 66.00 ± 0.00 | 99.92 | 97.81 |"),
            "{md}"
        );
        assert!(md.contains("Adam (lr 0.001, β = (0.9, 0.999), ε = 1e-8)"), "{md}");
        assert!(dir.path().join("curves.png").exists() && dir.path().join("curves.svg").exists());
    }

    /// `record` with measurements: full-space and subspace sharpness `phi` at both ε and both
    /// readings of A, top eigenvalue `lambda`, and a trace `trace` with standard error 1 over 10
    /// probes (sample variance 10).
    fn measured(regime: Regime, seed_index: usize, phi: f64, lambda: f64, trace: f64) -> Record<Cell, Outcome> {
        use crate::measurement::{MeasureConfig, Measures, SubspaceSharpness};
        use measure::curvature::{TopEigenvalue, Trace};
        use measure::lbfgsb::Stop;
        use measure::sharpness::{Sharpness, SubspaceMatrix};
        let mut r = record(regime, seed_index, 100.0, 70.0);
        let cfg = MeasureConfig::keskar(7);
        let values: Vec<Sharpness> = cfg
            .epsilons
            .iter()
            .map(|&epsilon| Sharpness {
                value: phi,
                epsilon,
                f_x: 0.1,
                f_max: 0.1 + phi * 1.1 / 100.0,
                box_radius_sq: 4.0,
                iterations: 10,
                evaluations: 12,
                stop: Stop::MaxIterations,
                memory_resets: 0,
            })
            .collect();
        let subspace = [SubspaceMatrix::Gaussian, SubspaceMatrix::UnitColumns]
            .map(|matrix| SubspaceSharpness { matrix, values: values.clone() })
            .to_vec();
        // Seed 0 carries the sweep (φ ∝ ε² below the table's ε), the whole set's value (1.5 φ)
        // and a density: two probes whose nodes are 10 and a bulk at 0.01 (one outlier).
        let seed0 = seed_index == 0;
        let sweep = if seed0 {
            [1e-5, 1e-4].map(|e| Sharpness { value: phi * (e / 1e-3f64).powi(2), epsilon: e, ..values[0].clone() }).to_vec()
        } else {
            Vec::new()
        };
        let full_set = seed0.then(|| Sharpness { value: 1.5 * phi, ..values[0].clone() });
        let quadrature = measure::density::Quadrature { nodes: vec![0.01, 10.0], weights: vec![0.9, 0.1] };
        let density = seed0.then(|| measure::density::SpectralDensity { dim: 100, probes: vec![quadrature; 2] });
        let running = Measures {
            batch_norm: nets::objective::BatchNormMode::Running,
            eval_batch: None,
            full_space: values,
            subspace,
            top_eigenvalue: Some(TopEigenvalue {
                value: lambda,
                iterations: 20,
                converged: true,
                residual: 1e-3,
                smallest: -0.5,
                smallest_residual: 0.5,
            }),
            trace: Some(Trace { value: trace, std_error: 1.0, probes: 10 }),
            symmetry: Some(measure::curvature::Symmetry { v_hw: 1.0, w_hv: 1.0 + 1e-7 }),
            step_sweep: Vec::new(),
            sweep,
            adaptive: Vec::new(),
            full_set,
            density,
            seconds: 1.0,
        };
        // Batch statistics: three times as sharp, the same curvature.
        let scale = |s: &Sharpness| Sharpness { value: 3.0 * s.value, ..s.clone() };
        let batch = Measures {
            batch_norm: nets::objective::BatchNormMode::Batch,
            eval_batch: Some(1000),
            full_space: running.full_space.iter().map(scale).collect(),
            subspace: running
                .subspace
                .iter()
                .map(|s| SubspaceSharpness { matrix: s.matrix, values: s.values.iter().map(scale).collect() })
                .collect(),
            sweep: running.sweep.iter().map(scale).collect(),
            full_set: running.full_set.as_ref().map(scale),
            ..running.clone()
        };
        r.outcome.measures = vec![running, batch];
        r.config.measure = Some(cfg);
        r
    }

    #[test]
    fn sharpness_and_curvature_tables_pair_the_seeds_and_flag_non_psd_probes() {
        // Seed 0: LB / SB = 40 / 10 = 4; seed 1: 40 / 20 = 2. Geometric mean √8 = 2.83, and on
        // the logs (ln 4, ln 2) a t interval with 1 df: exp(1.5 ln 2 ± 12.706 · ln 2 / 2).
        // Top eigenvalue: LB / SB = 2 in both seeds. Trace: LB seed 1 is −5, which no PSD
        // Hessian allows with varying probes; SB's 10 with variance 10 ≤ 2 · 1 · 10 passes.
        let records = vec![
            measured(Regime::SB, 0, 10.0, 1.0, 10.0),
            measured(Regime::SB, 1, 20.0, 1.0, 10.0),
            measured(Regime::LB, 0, 40.0, 2.0, 10.0),
            measured(Regime::LB, 1, 40.0, 2.0, -5.0),
        ];
        let dir = tempfile::tempdir().unwrap();
        report::report(&records, dir.path()).unwrap();
        let table3 = std::fs::read_to_string(dir.path().join("table3.md")).unwrap();
        assert!(table3.contains("| F1 | 1e-3 | 2.7× | 2.83× [0.03–231.22] | 2 | 167× |"), "{table3}");
        // Both batch-norm settings, each paired on its own: the batch values are 3× the running
        // ones, so the means triple and the ratios stay.
        assert!(table3.contains("## Table 3: sharpness in the full space (A = I), batch norm on running statistics"), "{table3}");
        assert!(
            table3.contains("## Table 3: sharpness in the full space (A = I), batch norm on batch statistics (evaluation batch 1000)"),
            "{table3}"
        );
        assert!(table3.contains("| F1 | SB | 2 | 15.00 ± 7.07 |") && table3.contains("| F1 | SB | 2 | 45.00 ± 21.21 |"), "{table3}");
        assert_eq!(table3.matches("| F1 | 1e-3 | 2.7× | 2.83× [0.03–231.22] | 2 | 167× |").count(), 2, "{table3}");
        let table4 = std::fs::read_to_string(dir.path().join("table4.md")).unwrap();
        for title in ["A with i.i.d. N(0, 1) entries", "A with unit-norm columns"] {
            let running = format!("## Table 4: sharpness in the random subspace (p = 100, {title}), batch norm on running");
            assert!(table4.contains(&running), "{table4}");
        }
        let csv = std::fs::read_to_string(dir.path().join("table4.csv")).unwrap();
        assert_eq!(csv.lines().filter(|l| l.contains(",unit-columns,running,")).count(), 4, "{csv}");
        assert_eq!(csv.lines().filter(|l| l.contains(",unit-columns,batch,")).count(), 4, "{csv}");
        // The sweep of seed 0: φ at 1e-5, 1e-4 is φ(1e-3) · (ε / 1e-3)², so the low slope is 2;
        // 5e-4 and 1e-3 give the same φ (slope 0). The whole set's value is 1.5 × the subset's.
        let diagnostics = std::fs::read_to_string(dir.path().join("diagnostics.md")).unwrap();
        let sweep = "| F1 | SB | running | 0 | 1e-5: 1.00e-3, 1e-4: 0.10, 5e-4: 10.00, 1e-3: 10.00 | 2.00 | 0.00 | 15.00 | 1.50× |";
        assert!(diagnostics.contains(sweep), "{diagnostics}");
        assert!(diagnostics.contains("| F1 | LB | batch | 0 | 1e-5: 0.01, 1e-4: 1.20,"), "{diagnostics}");
        assert!(dir.path().join("sweep.png").exists() && dir.path().join("sweep.csv").exists());
        // The density: trace 100 · (0.9 · 0.01 + 0.1 · 10) = 100.9, one outlier at 10.
        let density = std::fs::read_to_string(dir.path().join("density.md")).unwrap();
        assert!(density.contains("| F1 | SB | running | 0 | 100.9 | 10.0 | 10.000 | 0.010 | 1 |"), "{density}");
        assert!(dir.path().join("density.png").exists());
        let curvature = std::fs::read_to_string(dir.path().join("curvature.md")).unwrap();
        assert!(curvature.contains("| F1 | SB | 2 | 1.000 ± 0.000 | 2/2 | 1.0e-3 | -0.500 ± 0.000 | 10.0 ± 0.0 | 1.0 | 0/2 | 1.0e-7 |"), "{curvature}");
        assert!(curvature.contains("| F1 | LB | 2 | 2.000 ± 0.000 | 2/2 | 1.0e-3 | -0.500 ± 0.000 | 2.5 ± 10.6 † | 1.0 | 1/2 | 1.0e-7 |"), "{curvature}");
        assert!(curvature.contains("| F1 | 2.00× [2.00–2.00] | 2 |"), "{curvature}");
        assert!(curvature.contains("† At least one run's Hutchinson probes"), "{curvature}");
        // Ceiling 100 · ½ · 1 · 4 / 1.1 = 181.82; φ / ceiling = 10/181.82 and 20/181.82.
        let row = "| F1 | SB | running | 1e-3 | 2 | 1.000e-1 | 2.650e-1 | MaxIterations 2 | 181.82 | 0.08 [0.06–0.11] |";
        assert!(diagnostics.contains(row), "{diagnostics}");
    }

    /// SB and LB runs of seeds 0, 1, … with these full-space φ; top eigenvalue 1 (SB) and 2 (LB), trace 10.
    fn seeds(sb: &[f64], lb: &[f64]) -> Vec<Record<Cell, Outcome>> {
        let runs = |regime, phis: &[f64], top| -> Vec<_> {
            phis.iter().enumerate().map(|(seed, &phi)| measured(regime, seed, phi, top, 10.0)).collect()
        };
        [runs(Regime::SB, sb, 1.0), runs(Regime::LB, lb, 2.0)].concat()
    }

    /// Makes `s` a maximization that stopped at the box's centre before its first iteration.
    fn stall(s: &mut measure::sharpness::Sharpness) {
        (s.value, s.f_max, s.iterations, s.evaluations) = (0.0, s.f_x, 0, 1);
        s.stop = measure::lbfgsb::Stop::ProjectedGradient;
    }

    #[test]
    fn a_maximization_that_took_no_step_is_left_out_and_counted() {
        // LB seed 0's L-BFGS-B stopped at the box's centre under running statistics (φ = 0 there
        // is the start, not a maximum), at both ε and on the whole set. Left out: LB's mean is
        // that of 40 and 120, and the pairs are seeds 1 (40 / 20) and 2 (120 / 40).
        let mut records = seeds(&[10.0, 20.0, 40.0], &[40.0, 40.0, 120.0]);
        let running = &mut records[3].outcome.measures[0];
        running.full_space.iter_mut().chain(running.full_set.as_mut()).for_each(stall);
        let dir = tempfile::tempdir().unwrap();
        report::report(&records, dir.path()).unwrap();
        let table3 = std::fs::read_to_string(dir.path().join("table3.md")).unwrap();
        let row = "| F1 | LB | 3 | 80.00 ± 56.57 (1 stalled) | 205.14 | 80.00 ± 56.57 (1 stalled) | 42.90 |";
        assert!(table3.contains(row), "{table3}");
        // Ratio of the means 80 / 23.33; per seed √(2 · 3).
        assert!(table3.contains("| F1 | 1e-3 | 3.4× | 2.45× ["), "{table3}");
        assert!(table3.contains("| 2 | 167× |") && table3.contains("| 2 | 70× |"), "two pairs at each ε: {table3}");
        assert!(table3.contains("| 3 | 167× |"), "three pairs under batch statistics: {table3}");
        assert_eq!(table3.matches("\"Stalled\" counts runs").count(), 1, "only the running table: {table3}");
        // Batch statistics did not stall: every run is in.
        assert!(table3.contains("| F1 | LB | 3 | 200.00 ± 138.56 | 205.14 |"), "{table3}");
        let csv = std::fs::read_to_string(dir.path().join("table3.csv")).unwrap();
        assert!(csv.starts_with("net,matrix,batch_norm,regime,runs,stalled,epsilon,sharpness_mean,"), "{csv}");
        assert!(csv.contains("\nF1,identity,running,LB,2,1,0.001,80.0,"), "{csv}");
        // The sweep names the stalled points and computes no slope or bias through them; the
        // diagnostics count the stop and leave the run out of φ / ceiling (ceiling 100 · ½ · 2 · 4
        // / 1.1 = 363.64; 40 and 120 of it).
        let diagnostics = std::fs::read_to_string(dir.path().join("diagnostics.md")).unwrap();
        let sweep = "| F1 | LB | running | 0 | 1e-5: 4.00e-3, 1e-4: 0.40, 5e-4: stalled, 1e-3: stalled | 2.00 | – | stalled | – |";
        assert!(diagnostics.contains(sweep), "{diagnostics}");
        assert!(diagnostics.contains("ProjectedGradient 1, MaxIterations 2 | 363.64 | 0.22 [0.11–0.33] |"), "{diagnostics}");
    }

    #[test]
    fn a_regime_whose_every_maximization_stalled_keeps_its_ratio_row_without_a_ratio() {
        // Every LB run stalled under running statistics: nothing to divide, so the ratio row says
        // so (no ratio, no pair) instead of leaving the table with a header and no rows.
        let mut records = seeds(&[10.0, 20.0], &[40.0, 40.0]);
        for r in &mut records[2..] {
            r.outcome.measures[0].full_space.iter_mut().for_each(stall);
        }
        let dir = tempfile::tempdir().unwrap();
        report::report(&records, dir.path()).unwrap();
        let table3 = std::fs::read_to_string(dir.path().join("table3.md")).unwrap();
        assert!(table3.contains("| F1 | LB | 2 | (2 stalled) | 205.14 |"), "{table3}");
        assert!(table3.contains("| F1 | 1e-3 | – | – | 0 | 167× |"), "{table3}");
        // Batch statistics did not stall: its ratio row is whole.
        assert!(table3.contains("| F1 | 1e-3 | 2.7× | 2.83× [0.03–231.22] | 2 | 167× |"), "{table3}");
    }

    #[test]
    fn a_diverged_record_round_trips_with_its_non_finite_loss() {
        let mut r = record(Regime::LB, 0, 10.0, 10.0);
        r.outcome.trained.curves[1].train_loss = f64::INFINITY;
        r.outcome.trained.curves[1].test_loss = f64::NAN;
        r.outcome.trained.diverged_at =
            Some(Divergence { epoch: 2, step: 0, what: "loss".into(), loss: f64::NEG_INFINITY });
        let text = serde_json::to_string_pretty(&r).unwrap();
        assert!(text.contains("\"train_loss\": \"inf\"") && text.contains("\"test_loss\": \"NaN\""), "{text}");
        let back: Record<Cell, Outcome> = harness::parse_record(&text).unwrap();
        assert_eq!(back.outcome.trained.curves[1].train_loss, f64::INFINITY);
        assert!(back.outcome.trained.curves[1].test_loss.is_nan());
        assert_eq!(back.outcome.trained.diverged_at.unwrap().loss, f64::NEG_INFINITY);
    }
}
