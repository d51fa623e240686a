//! The seven update rules training a network: the F1-family MLP of the `keskar` default scale on
//! MNIST-1D. Each rule's step size is tuned on a log grid with seed 0 (by the final training
//! loss, as a training-speed comparison should be), then run with 5 seeds at the chosen step.
//!
//! Command: `cargo run --release -p studies -- optimizers` (under 2 minutes on 2 cores);
//! `--data mnist` (or any other real dataset) runs the same protocol on it (the F1 family taking
//! the flattened images, the first 10,000 training images, 5 epochs: about four minutes on MNIST).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use nets::train::{NetSpec, RunSeeds, TrainConfig, Trained};
use optim::Rule;
use serde::{Deserialize, Serialize};

use crate::data::DataSpec;
use crate::figure::{FigureArgs, FigureSetup};
use crate::harness::{self, CellProgress, Record, Report, Study, fill};
use crate::plot::{self, PALETTE, Panel, Series};
use crate::scale::Scale;
use crate::stats::{mean, mean_of, mean_std, std, std_of};

/// One line: what `studies list` and `--help` say.
pub const ABOUT: &str =
    "The seven update rules training the F1-family MLP on MNIST-1D: step sizes tuned, curves over 5 seeds";

/// The rules with the course's defaults; `lr` is tuned.
fn rules() -> Vec<Rule> {
    vec![
        Rule::Gd { lr: 0.0 },
        Rule::NoisyGd { lr: 0.0, sigma: 1e-4 },
        Rule::Momentum { lr: 0.0, rho: 0.9 },
        Rule::Nesterov { lr: 0.0, rho: 0.9 },
        Rule::AdaGrad { lr: 0.0 },
        Rule::RmsProp { lr: 0.0, decay: 0.9, eps: 1e-8 },
        Rule::Adam { lr: 0.0, beta1: 0.9, beta2: 0.999, eps: 1e-8 },
    ]
}

/// Step sizes tried: 10^(−4 … 0) in half decades.
fn lr_grid() -> Vec<f64> {
    (0..=8).map(|k| 10f64.powf(-4.0 + 0.5 * k as f64)).collect()
}

/// Arguments of `studies optimizers`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub figure: FigureArgs,
}

/// Training images used on real data (`--data` other than generated MNIST-1D), and its epochs:
/// the same protocol at a cost of minutes.
const REAL_TRAIN: usize = 10_000;
const REAL_EPOCHS: usize = 5;

/// One cell: one rule at one step size from one seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Network name.
    pub net: String,
    /// Its shape.
    pub spec: NetSpec,
    /// Data.
    pub data: DataSpec,
    /// Training samples used: the first this many (none: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_subset: Option<usize>,
    /// The rule with its step size.
    pub rule: Rule,
    /// Batch size and epochs (`learning_rate` unused: the rule carries its own).
    pub train: TrainConfig,
    /// Index of the seed.
    pub seed_index: usize,
    /// Seeds (shared by every rule at the same index).
    pub seeds: RunSeeds,
}

/// One stage of the study: `TUNING` is the first (every step size of the grid with seed 0),
/// otherwise the second (each rule at its tuned step size, every seed), which reports both.
struct Stage<'a, const TUNING: bool> {
    setup: &'a FigureSetup,
    cells: Vec<Cell>,
}

type Tuning<'a> = Stage<'a, true>;
type Optimizers<'a> = Stage<'a, false>;

impl<const TUNING: bool> Study for Stage<'_, TUNING> {
    type Cell = Cell;
    type Outcome = Trained;
    const NAME: &'static str = "optimizers";
    const STAGE: &'static str = if TUNING { "tuning" } else { "grid" };

    fn cells(&self) -> Vec<Cell> {
        self.cells.clone()
    }

    fn label(cell: &Cell) -> String {
        format!("{}-{}-lr{:.0e}-seed{}", cell.net, cell.rule.name().replace(' ', "-"), cell.rule.lr(), cell.seed_index)
    }

    fn run_cell(&self, cell: &Cell, progress: &CellProgress) -> Result<Trained> {
        let data = self.setup.dataset(&cell.data);
        Ok(cell.spec.train_with_rule(data, &cell.train, cell.seeds, cell.rule, None, &self.setup.device, &mut |m, _| {
            progress
                .message(&format!("epoch {:>3}  train loss {:.4}  test {:5.1}%", m.epoch, m.train_loss, m.test_acc))
        }))
    }

    fn report(records: &[Record<Cell, Trained>], dir: &Path) -> Result<Report> {
        if TUNING {
            return Ok(Report::text(String::new())); // reported with the second stage
        }
        let tuned = harness::load_grid::<Tuning<'_>>(dir)?;
        report(&tuned, records, dir).map(Report::text)
    }
}

/// `studies report optimizers`.
pub fn report_saved(out: &Path) -> Result<Report> {
    harness::report_saved::<Optimizers<'_>>(out)
}


/// Tunes, runs the seeds, reports.
pub fn run(args: Args) -> Result<Report> {
    let mut setup = FigureSetup::new(&args.figure, &["F1"], 5)?;
    let (mut epochs, batch) = match args.figure.scale {
        Scale::Smoke => (2, 64),
        _ => (20, 128),
    };
    let mut train_subset = None;
    if !setup.nets.iter().all(|(_, _, d)| d.is_mnist1d()) {
        // The records' checksum is of the data trained on: the first REAL_TRAIN samples.
        setup.opts.env.data.clear();
        for (spec, d) in &mut setup.data {
            let keep = d.keep_train(REAL_TRAIN);
            train_subset = Some(keep);
            setup.opts.env = setup.opts.env.clone().with_data(&format!("{} (first {keep} training samples)", spec.name()), d);
        }
        if args.figure.scale != Scale::Smoke {
            epochs = REAL_EPOCHS;
        }
    }
    let master = setup.opts.master_seed;
    let seeds = |net: &str, i: usize| RunSeeds {
        init: harness::derive_seed(master, &["optimizers", net, "init", &i.to_string()]),
        order: harness::derive_seed(master, &["optimizers", net, "order", &i.to_string()]),
    };
    let train = setup.train_config(batch, epochs);
    // Phase 1: every step size of the grid, seed 0.
    let mut tuning = Vec::new();
    for (net, spec, data) in &setup.nets {
        for rule in rules() {
            for lr in lr_grid() {
                tuning.push(Cell {
                    net: net.clone(),
                    spec: spec.clone(),
                    data: data.clone(),
                    train_subset,
                    rule: rule.with_lr(lr),
                    train: train.clone(),
                    seed_index: 0,
                    seeds: seeds(net, 0),
                });
            }
        }
    }
    let n_seeds = setup.seeds;
    let tuning = Tuning { setup: &setup, cells: tuning };
    eprintln!("tuning the step size of each rule (seed 0)");
    let mut tuned = harness::run_grid(&tuning, &setup.opts)?;
    // A shard picks the step sizes from the whole tuning grid: once every shard's tuning runs
    // are on disk (`studies slurm` runs a second array after the first), it goes on to its final
    // runs; until then it stops here.
    if let Some(shard) = setup.opts.shard {
        match harness::whole_grid(&tuning, &setup.opts.out)? {
            Some(all) => tuned = all,
            None => {
                return Ok(Report::text(format!(
                    "shard {shard} of optimizers: its tuning runs are done; the final runs need every shard's \
                     tuning runs: run the same command again once all shards have finished (the tuning runs \
                     are then skipped), then: studies report optimizers --out {}",
                    setup.opts.out.display()
                )));
            }
        }
    }
    // Phase 2: the best step size of each rule (lowest final training loss), every seed.
    let mut cells = Vec::new();
    for (net, spec, data) in &setup.nets {
        for rule in rules() {
            let best = tuned
                .iter()
                .filter(|r| r.config.net == *net && r.config.rule.name() == rule.name())
                .min_by(|a, b| final_loss(&a.outcome).total_cmp(&final_loss(&b.outcome)))
                .ok_or_else(|| anyhow::anyhow!("{net}: {} has no tuning record", rule.name()))?;
            for i in 0..n_seeds {
                cells.push(Cell {
                    net: net.clone(),
                    spec: spec.clone(),
                    data: data.clone(),
                    train_subset,
                    rule: best.config.rule,
                    train: train.clone(),
                    seed_index: i,
                    seeds: seeds(net, i),
                });
            }
        }
    }
    eprintln!("running every rule at its step size, {n_seeds} seeds");
    harness::execute(&Optimizers { setup: &setup, cells }, &setup.opts)
}

/// A row of `optimizers.csv` (empty cells where every run diverged).
#[derive(Serialize)]
struct OptimizersCsv<'a> {
    rule: &'a str,
    lr: f64,
    runs: usize,
    diverged: usize,
    train_loss_mean: Option<f64>,
    train_loss_std: Option<f64>,
    test_acc_mean: Option<f64>,
    test_acc_std: Option<f64>,
    epochs_to_95_mean: Option<f64>,
}

/// Final training loss; a diverged run counts as infinite.
fn final_loss(t: &Trained) -> f64 {
    if !t.finished() {
        return f64::INFINITY;
    }
    let l = t.curves.last().map_or(f64::INFINITY, |m| m.train_loss);
    if l.is_finite() { l } else { f64::INFINITY }
}

/// First epoch at which the training loss has made 95 % of its total decrease.
fn epochs_to_95(t: &Trained) -> usize {
    let (l0, lf) = (t.curves[0].train_loss, final_loss(t));
    t.curves.iter().find(|m| m.train_loss <= lf + 0.05 * (l0 - lf)).map_or(t.curves.len() - 1, |m| m.epoch)
}

fn report(tuned: &[Record<Cell, Trained>], records: &[Record<Cell, Trained>], dir: &Path) -> Result<String> {
    let first = &records[0].config;
    let mut md = String::from("# The update rules training a network\n\n");
    let subset = first.train_subset.map_or(String::new(), |n| format!(" (first {n} training images)"));
    // The tuning grid as the tuning records hold it.
    let mut grid: Vec<f64> = tuned.iter().map(|r| r.config.rule.lr()).collect();
    grid.sort_by(f64::total_cmp);
    grid.dedup();
    writeln!(md, "{}\n", fill(include_str!("text/optimizers.md"), &[("net", first.net.to_string()), ("parameters", records[0].outcome.parameters.to_string()), ("data", first.data.name().to_string()), ("batch", first.train.batch_size.to_string()), ("epochs", first.train.epochs.to_string()), ("seeds", records.iter().filter(|r| r.config.rule.name() == first.rule.name()).count().to_string()), ("subset", subset.to_string()), ("grid", harness::describe_log_grid(&grid)), ("constants", harness::describe_rule_constants(records.iter().map(|r| &r.config.rule)))]))?;
    md.push_str(
        "| rule | step size | runs | diverged | final train loss | test acc | epochs to 95 % |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut csv = Vec::new();
    let (mut loss_series, mut acc_series) = (Vec::new(), Vec::new());
    for (i, rule) in rules().iter().enumerate() {
        let all: Vec<_> = records.iter().filter(|r| r.config.rule.name() == rule.name()).collect();
        let Some(r0) = all.first() else { continue };
        let runs: Vec<_> = all.iter().filter(|r| r.outcome.finished()).collect();
        let loss: Vec<f64> = runs.iter().map(|r| final_loss(&r.outcome)).collect();
        let acc: Vec<f64> = runs.iter().filter_map(|r| r.outcome.curves.last()).map(|m| m.test_acc).collect();
        let e95: Vec<f64> = runs.iter().map(|r| epochs_to_95(&r.outcome) as f64).collect();
        let lr = r0.config.rule.lr();
        writeln!(
            md,
            "| {} | {lr:.0e} | {} | {} | {} | {} | {} |",
            rule.name(),
            all.len(),
            all.len() - runs.len(),
            mean_std(&loss, 4),
            mean_std(&acc, 2),
            mean_of(&e95).map_or("–".into(), |e| format!("{e:.1}")),
        )?;
        csv.push(OptimizersCsv {
            rule: rule.name(),
            lr,
            runs: all.len(),
            diverged: all.len() - runs.len(),
            train_loss_mean: mean_of(&loss),
            train_loss_std: std_of(&loss),
            test_acc_mean: mean_of(&acc),
            test_acc_std: std_of(&acc),
            epochs_to_95_mean: mean_of(&e95),
        });
        if runs.is_empty() {
            continue;
        }
        let len = runs.iter().map(|r| r.outcome.curves.len()).min().unwrap_or(0);
        let at = |e: usize, f: fn(&nets::train::EpochMetrics) -> f64| {
            runs.iter().map(|r| f(&r.outcome.curves[e])).collect::<Vec<_>>()
        };
        let color = if i < PALETTE.len() { PALETTE[i] } else { plotters::style::RGBColor(0, 0, 0) };
        let label = format!("{} (α = {lr:.0e})", rule.name());
        loss_series.push(Series {
            label: label.clone(),
            color,
            dashed: false,
            x: (0..len).map(|e| e as f64).collect(),
            mean: (0..len).map(|e| mean(&at(e, |m| m.train_loss))).collect(),
            std: vec![0.0; len],
        });
        acc_series.push(Series {
            label,
            color,
            dashed: false,
            x: (0..len).map(|e| e as f64).collect(),
            mean: (0..len).map(|e| mean(&at(e, |m| m.test_acc))).collect(),
            std: (0..len).map(|e| std(&at(e, |m| m.test_acc))).collect(),
        });
    }
    md.push_str("\nTuning (seed 0, final training loss at each step size):\n\n| rule |");
    for lr in &grid {
        write!(md, " {lr:.0e} |")?;
    }
    writeln!(md, "\n|---|{}", "---:|".repeat(grid.len()))?;
    for rule in rules() {
        write!(md, "| {} |", rule.name())?;
        for &lr in &grid {
            let r = tuned
                .iter()
                .find(|r| r.config.rule.name() == rule.name() && (r.config.rule.lr() - lr).abs() < 1e-12 * lr);
            match r.map(|r| final_loss(&r.outcome)) {
                Some(l) if l.is_finite() => write!(md, " {l:.3} |")?,
                Some(_) => write!(md, " diverged |")?,
                None => write!(md, " – |")?,
            }
        }
        writeln!(md)?;
    }
    let mut lp =
        Panel::new("Training loss (mean over seeds)", "epoch", "training cross-entropy (log scale)", loss_series);
    lp.log_y = true;
    lp.legend = plotters::prelude::SeriesLabelPosition::LowerLeft;
    let mut ap = Panel::new("Test accuracy (mean ± std over seeds)", "epoch", "test accuracy (%)", acc_series);
    ap.legend = plotters::prelude::SeriesLabelPosition::LowerRight;
    std::fs::create_dir_all(dir)?;
    harness::write_atomic(&dir.join("optimizers.md"), md.as_bytes())?;
    harness::write_csv(&dir.join("optimizers.csv"), &csv)?;
    plot::write_panels(&dir.join("optimizers"), &[lp, ap])?;
    Ok(md)
}
