//! MNIST-1D fidelity: the baselines of Greydanus & Kobak ("Scaling down deep learning with
//! MNIST-1D", ICML 2024) trained on flatland's generator, beside the published test accuracies
//! and reference figures measured with the same setup on the upstream data. If our generator
//! made easier or harder data, these would drift: each model must land within 3 points of its
//! reference figure.
//!
//! Setup (the paper's): Adam, learning rate 1e-2, no weight decay, batch 100 taken in order,
//! 8000 steps (200 epochs of 4000 samples); test accuracy at the last step; 3 seeds.
//!
//! Command: `cargo run --release -p studies -- mnist1d` (about a minute on 2 cores).

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::{Result, bail};
use datasets::Dataset;
use nets::baselines::BaselineSpec;
use nets::train::{NetSpec, RunSeeds, TrainConfig, Trained as Outcome};
use serde::{Deserialize, Serialize};

use crate::data::{DataDir, DataSpec};
use crate::harness::{self, CellProgress, GridArgs, Record, Study};
use crate::stats::{mean, std};

/// Arguments of `studies mnist1d`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Seeds per model (the reference figures use 3).
    #[arg(long, default_value_t = 3)]
    pub seeds: usize,
    /// Epochs of 40 in-order batches of 100 (200 = the paper's 8000 steps).
    #[arg(long, default_value_t = 200)]
    pub epochs: usize,
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
    (BaselineSpec::LogReg, "logistic regression", 32.0, 31.4),
    (BaselineSpec::Mlp, "MLP", 68.0, 65.0),
    (BaselineSpec::Cnn, "CNN", 94.0, 93.7),
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
        format!("{:?}-seed{}", cell.model, cell.seed_index).to_lowercase()
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
}

/// Validates the arguments, runs the grid and writes the report.
pub fn run(args: Args) -> Result<()> {
    if args.seeds == 0 {
        bail!("--seeds 0: at least one seed is needed (accepted: 1 or more)");
    }
    if args.epochs == 0 {
        bail!("--epochs 0: at least one epoch is needed (accepted: 1 or more)");
    }
    let (backend, device, jobs) = args.grid.validate()?;
    harness::check_writable(&args.grid.out)?;
    let data = DataSpec::Mnist1d { train: 4000, test: 1000, seed: 42 };
    let train = TrainConfig {
        batch_size: 100,
        epochs: args.epochs,
        learning_rate: 1e-2,
        eval_batch: 1000,
        shuffle: false,
        patience: None,
    };
    let master = args.grid.seed;
    let mut cells = Vec::new();
    for (model, ..) in REFERENCE {
        for seed_index in 0..args.seeds {
            let name = format!("{model:?}");
            let i = seed_index.to_string();
            cells.push(Cell {
                model,
                data: data.clone(),
                train: train.clone(),
                seed_index,
                seeds: RunSeeds {
                    init: harness::derive_seed(master, &["mnist1d", &name, "init", &i]),
                    order: harness::derive_seed(master, &["mnist1d", &name, "order", &i]),
                },
            });
        }
    }
    let study = Mnist1dFidelity { cells, data: data.load(&DataDir::resolve(None))?, device: device.clone() };
    let env = crate::env::Env::capture(backend, &device, jobs);
    let opts = harness::GridOptions { out: args.grid.out.clone(), jobs, master_seed: master, env };
    let records = harness::run_grid(&study, &opts)?;
    let (text, all_within) = report(&records, &harness::study_dir::<Mnist1dFidelity>(&args.grid.out))?;
    println!("{text}");
    if !all_within {
        bail!(
            "a baseline is more than {TOLERANCE} points from its reference figure: the generator differs from the reference"
        );
    }
    Ok(())
}

/// Writes `table.md` and `table.csv` from the records; returns the Markdown and whether every
/// model is within the tolerance.
pub fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<(String, bool)> {
    let first = &records[0];
    let steps = first.config.train.epochs * 4000 / first.config.train.batch_size;
    let mut md = String::new();
    let mut csv = String::from(
        "model,parameters,runs,test_acc_mean,test_acc_std,published_test_acc,reference_test_acc,difference,within_tolerance\n",
    );
    writeln!(md, "# MNIST-1D baselines on flatland's generator\n")?;
    writeln!(
        md,
        "Adam lr 1e-2, batch 100 in order, {steps} steps, test accuracy (%) at the last step, mean ± std over seeds; \
         master seed {}, backend {}, git {}{}. Reference: the same setup on the upstream data (3 seeds).\n",
        first.master_seed,
        first.env.backend,
        &first.env.git_commit[..first.env.git_commit.len().min(10)],
        if first.env.git_dirty { " (dirty)" } else { "" }
    )?;
    writeln!(
        md,
        "| model | params | runs | ours | published | reference | ours − reference | within {TOLERANCE} points |"
    )?;
    writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---|")?;
    let mut all_within = true;
    for (model, name, published, reference) in REFERENCE {
        let runs: Vec<_> = records.iter().filter(|r| r.config.model == model).collect();
        let Some(one) = runs.first() else { continue };
        let acc: Vec<f64> =
            runs.iter().map(|r| r.outcome.curves.last().map(|m| m.test_acc).unwrap_or(f64::NAN)).collect();
        let diff = mean(&acc) - reference;
        let within = diff.abs() <= TOLERANCE;
        all_within &= within;
        writeln!(
            md,
            "| {name} | {} | {} | {:.2} ± {:.2} | {published:.1} | {reference:.1} | {diff:+.2} | {} |",
            one.outcome.parameters,
            acc.len(),
            mean(&acc),
            std(&acc),
            if within { "yes" } else { "no" }
        )?;
        writeln!(
            csv,
            "{name},{},{},{:.4},{:.4},{published},{reference},{diff:.4},{within}",
            one.outcome.parameters,
            acc.len(),
            mean(&acc),
            std(&acc)
        )?;
    }
    fs::create_dir_all(dir)?;
    harness::write_atomic(&dir.join("table.md"), md.as_bytes())?;
    harness::write_atomic(&dir.join("table.csv"), csv.as_bytes())?;
    Ok((md, all_within))
}
