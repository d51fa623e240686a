//! MNIST-1D fidelity: the baselines of Greydanus & Kobak ("Scaling down deep learning with
//! MNIST-1D", ICML 2024) trained on flatland's generator, beside the published test accuracies
//! and reference figures measured with the same setup on the upstream data. If our generator
//! made easier or harder data, these would drift: each model must land within 3 points of its
//! reference figure.
//!
//! Setup (the paper's): Adam, learning rate 1e-2, no weight decay, batch 100 taken in order,
//! 8000 steps (200 epochs of 4000 samples); test accuracy at the last step; 3 seeds.
//!
//! Command: `cargo run --release -p studies -- mnist1d` (about a minute on 2 cores). `--data`
//! trains the same baselines on other data (taking the flattened sample); the comparison with
//! the published figures, and the check, hold on MNIST-1D only.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::Result;
use datasets::Dataset;
use nets::baselines::BaselineSpec;
use nets::train::{NetSpec, RunSeeds, TrainConfig, Trained as Outcome};
use serde::{Deserialize, Serialize};

use crate::data::{DataDir, DataSpec};
use crate::harness::{self, CellProgress, GridArgs, Record, Report, Study, fill};
use crate::stats::{mean_of, mean_std, std_of};
use crate::usage;

/// One line: what `studies list` and `--help` say.
pub const ABOUT: &str =
    "MNIST-1D fidelity: logistic regression, MLP and CNN baselines on our generator vs the published accuracies";

/// Arguments of `studies mnist1d`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Seeds per model (the reference figures use 3).
    #[arg(long, default_value_t = 3)]
    pub seeds: usize,
    /// Epochs of 40 in-order batches of 100 (200 = the paper's 8000 steps).
    #[arg(long, default_value_t = 200)]
    pub epochs: usize,
    /// mnist1d (generated, the default), mnist1d-frozen (upstream's frozen split, from
    /// `<data dir>/mnist1d`; the same data), or any other (mnist, fashion-mnist, cifar-10,
    /// cifar-100, optdigits, timit, npy:DIR), where the baselines take the flattened sample and
    /// there is no published figure to compare with.
    #[arg(long, default_value = "mnist1d", value_parser = crate::data::data_name)]
    pub data: String,
    /// Folder holding the frozen split under `mnist1d/` [default: $FLATLAND_DATA, else the
    /// platform cache folder].
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub grid: GridArgs,
}

/// One cell: a baseline trained once from one seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Which baseline.
    pub model: BaselineSpec,
    /// Training data.
    pub data: DataSpec,
    /// Its training samples (the report's step count).
    pub train_samples: usize,
    /// Adam settings, batch, epochs, in-order batches.
    pub train: TrainConfig,
    /// Index of the seed among the repeats.
    pub seed_index: usize,
    /// Seeds derived from the master seed.
    pub seeds: RunSeeds,
}

/// (model, name, published test accuracy %, reference figure % on the upstream data, last step,
/// 3 seeds).
const REFERENCE: [(BaselineSpec, &str, f64, f64); 3] = [
    (BaselineSpec::LOG_REG, "logistic regression", 32.0, 31.4),
    (BaselineSpec::MLP, "MLP", 68.0, 65.0),
    (BaselineSpec::CNN, "CNN", 94.0, 93.7),
];

/// Largest accepted distance (points) between our accuracy and the reference figure.
const TOLERANCE: f64 = 3.0;

/// The fidelity study.
pub struct Mnist1dFidelity {
    cells: Vec<Cell>,
    data: Dataset,
    device: nets::Device,
}

impl Study for Mnist1dFidelity {
    type Cell = Cell;
    type Outcome = Outcome;
    const NAME: &'static str = "mnist1d";

    fn cells(&self) -> Vec<Cell> {
        self.cells.clone()
    }

    fn label(cell: &Cell) -> String {
        format!("{:?}-seed{}", cell.model.kind, cell.seed_index).to_lowercase()
    }

    fn run_cell(&self, cell: &Cell, progress: &CellProgress) -> Result<Outcome> {
        let spec = NetSpec::Baseline(cell.model);
        let epochs = cell.train.epochs;
        Ok(spec.train(&self.data, &cell.train, cell.seeds, None, &self.device, &mut |m, _| {
            let msg =
                format!("epoch {:>3}/{epochs}  train loss {:.4}  test {:5.1}%", m.epoch, m.train_loss, m.test_acc);
            if m.epoch % 50 == 0 || m.epoch == epochs { progress.log(&msg) } else { progress.message(&msg) }
        }))
    }

    fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<Report> {
        let (text, passed) = report(records, dir)?;
        if !passed {
            eprintln!(
                "a baseline is more than {TOLERANCE} points from its reference figure: the generator differs from the reference"
            );
        }
        Ok(Report { text, passed })
    }
}

/// `studies report mnist1d`.
pub fn report_saved(out: &Path) -> Result<Report> {
    harness::report_saved::<Mnist1dFidelity>(out)
}

/// Validates the arguments, runs the grid and writes the report.
pub fn run(args: Args) -> Result<Report> {
    if args.seeds == 0 {
        usage!("--seeds 0: at least one seed is needed (accepted: 1 or more)");
    }
    if args.epochs == 0 {
        usage!("--epochs 0: at least one epoch is needed (accepted: 1 or more)");
    }
    let (backend, device, jobs) = args.grid.validate()?;
    let dir = DataDir::resolve(args.data_dir.as_deref());
    let data = crate::data::parse_data(&args.data, &DataSpec::Mnist1d { train: 4000, test: 1000, seed: 42 })?;
    let mut loaded = crate::data::load_all(std::slice::from_ref(&data), &dir)?;
    let env = crate::env::Env::capture(backend, &device, jobs).with_datasets(&loaded, &dir)?;
    let loaded = loaded.remove(0).1;
    let train = TrainConfig { shuffle: false, ..TrainConfig::adam(100, args.epochs, 1e-2) };
    let master = args.grid.seed;
    let mut cells = Vec::new();
    for (model, ..) in REFERENCE {
        let adapted = NetSpec::Baseline(model).adapted(&loaded.sample_shape, loaded.classes, data.is_spatial());
        let model = match adapted {
            Ok(NetSpec::Baseline(m)) => m,
            Ok(_) => unreachable!("a baseline adapts to a baseline"),
            Err(e) => usage!("--data {}: the {:?} baseline: {e}", args.data, model.kind),
        };
        for seed_index in 0..args.seeds {
            let name = format!("{:?}", model.kind);
            let i = seed_index.to_string();
            cells.push(Cell {
                model,
                data: data.clone(),
                train_samples: loaded.train.len(),
                train: train.clone(),
                seed_index,
                seeds: RunSeeds {
                    init: harness::derive_seed(master, &["mnist1d", &name, "init", &i]),
                    order: harness::derive_seed(master, &["mnist1d", &name, "order", &i]),
                },
            });
        }
    }
    let opts = args.grid.options(jobs, env)?;
    let study = Mnist1dFidelity { cells, data: loaded, device: device.clone() };
    harness::execute(&study, &opts)
}

/// A row of `table.csv`.
#[derive(Serialize)]
struct FidelityCsv<'a> {
    model: &'a str,
    parameters: usize,
    runs: usize,
    diverged: usize,
    test_acc_mean: Option<f64>,
    test_acc_std: Option<f64>,
    published_test_acc: Option<f64>,
    reference_test_acc: Option<f64>,
    difference: Option<f64>,
    within_tolerance: Option<bool>,
}

/// Writes `table.md` and `table.csv` from the records; returns the Markdown and whether every
/// model is within the tolerance.
pub fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<(String, bool)> {
    let first = &records[0];
    let steps = first.config.train.epochs * first.config.train_samples.div_ceil(first.config.train.batch_size);
    let on_mnist1d = first.config.data.is_mnist1d();
    let mut md = String::new();
    let mut csv = Vec::new();
    let on = match &first.config.data {
        DataSpec::Mnist1dFrozen => "upstream's frozen split".to_string(),
        DataSpec::Mnist1d { .. } => "flatland's generator".to_string(),
        other => format!("{} (no published figures to compare with)", other.name()),
    };
    writeln!(md, "# MNIST-1D baselines on {on}\n")?;
    writeln!(md, "{}\n", fill(include_str!("text/mnist1d.md"), &[("lr", first.config.train.learning_rate.to_string()), ("batch", first.config.train.batch_size.to_string()), ("master_seed", first.master_seed.to_string()), ("backend", first.env.backend.to_string()), ("code", harness::distinct(records.iter().map(|r| r.env.build.short())).join(", ")), ("steps", steps.to_string())]))?;
    writeln!(
        md,
        "| model | params | runs | ours | published | reference | ours − reference | within {TOLERANCE} points |"
    )?;
    writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---|")?;
    let mut all_within = true;
    for (model, name, published, reference) in REFERENCE {
        let all: Vec<_> = records.iter().filter(|r| r.config.model.kind == model.kind).collect();
        let Some(one) = all.first() else { continue };
        let acc: Vec<f64> = all
            .iter()
            .filter(|r| r.outcome.finished())
            .filter_map(|r| r.outcome.curves.last())
            .map(|m| m.test_acc)
            .collect();
        let diff = mean_of(&acc).map(|m| m - reference).filter(|_| on_mnist1d);
        let within = !on_mnist1d || diff.is_some_and(|d| d.abs() <= TOLERANCE);
        all_within &= within;
        writeln!(
            md,
            "| {name} | {} | {} | {} | {} | {} | {} | {} |",
            one.outcome.parameters,
            all.len(),
            mean_std(&acc, 2),
            if on_mnist1d { format!("{published:.1}") } else { "–".into() },
            if on_mnist1d { format!("{reference:.1}") } else { "–".into() },
            diff.map_or("–".into(), |d| format!("{d:+.2}")),
            if !on_mnist1d { "–" } else if within { "yes" } else { "no" }
        )?;
        csv.push(FidelityCsv {
            model: name,
            parameters: one.outcome.parameters,
            runs: all.len(),
            diverged: all.len() - acc.len(),
            test_acc_mean: mean_of(&acc),
            test_acc_std: std_of(&acc),
            published_test_acc: on_mnist1d.then_some(published),
            reference_test_acc: on_mnist1d.then_some(reference),
            difference: diff,
            within_tolerance: on_mnist1d.then_some(within),
        });
    }
    fs::create_dir_all(dir)?;
    harness::write_atomic(&dir.join("table.md"), md.as_bytes())?;
    harness::write_csv(&dir.join("table.csv"), &csv)?;
    Ok((md, all_within))
}
