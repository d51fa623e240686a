//! Keskar et al. 2017, Figure 4: test accuracy and sharpness of the final iterate against the
//! batch size. The paper sees test accuracy fall past a threshold batch size (≈500 for C1) while
//! sharpness climbs.
//!
//! Command: `cargo run --release -p studies -- sweep` (C1 family on MNIST-1D, eight batch sizes
//! from 16 to 2000, two seeds each, the `keskar` default scale's epochs and step size).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use nets::train::{NetSpec, RunSeeds, TrainConfig};
use serde::{Deserialize, Serialize};

use crate::data::DataSpec;
use crate::figure::{FigureArgs, FigureSetup};
use crate::harness::{self, CellProgress, Record, Report, Study, fill};
use crate::measurement::{MeasureConfig, Outcome, measure_run};
use crate::plot::{self, PALETTE, Panel, Series};
use crate::scale::Scale;
use crate::stats::{mean, mean_of, mean_std, std, std_of};

/// One line: what `studies list` and `--help` say.
pub const ABOUT: &str = "Keskar et al. 2017 Fig. 4: test accuracy and sharpness against the batch size";

/// The figure studies' flags.
pub type Args = FigureArgs;

/// Batch sizes of the sweep at the default scale (the training set has 4000 samples).
const BATCHES: [usize; 8] = [16, 32, 64, 128, 256, 512, 1000, 2000];

/// One cell: a network trained at one batch size from one seed, then measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Network name (family).
    pub net: String,
    /// Its exact shape.
    pub spec: NetSpec,
    /// Training data.
    pub data: DataSpec,
    /// Adam settings; the batch size is the swept variable.
    pub train: TrainConfig,
    /// Index of the seed.
    pub seed_index: usize,
    /// Seeds derived from the master seed (the init seed is shared across batch sizes).
    pub seeds: RunSeeds,
    /// Full-space sharpness at ε = 1e-3.
    pub measure: MeasureConfig,
}

struct Sweep {
    setup: FigureSetup,
    cells: Vec<Cell>,
}

impl Study for Sweep {
    type Cell = Cell;
    type Outcome = Outcome;
    const NAME: &'static str = "sweep";

    fn cells(&self) -> Vec<Cell> {
        self.cells.clone()
    }

    fn label(cell: &Cell) -> String {
        format!("{}-b{}-seed{}", cell.net, cell.train.batch_size, cell.seed_index)
    }

    fn run_cell(&self, cell: &Cell, progress: &CellProgress) -> Result<Outcome> {
        let data = self.setup.dataset(&cell.data);
        let start = std::time::Instant::now();
        let trained = cell.spec.train(data, &cell.train, cell.seeds, None, &self.setup.device, &mut |m, _| {
            progress
                .message(&format!("epoch {:>3}  train loss {:.4}  test {:5.1}%", m.epoch, m.train_loss, m.test_acc));
        });
        let train_seconds = start.elapsed().as_secs_f64();
        progress.message("measuring sharpness");
        let measures = measure_run(&cell.spec, &trained, data, Some(&cell.measure), &self.setup.device)?;
        Ok(Outcome { trained, train_seconds, measures })
    }

    fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<Report> {
        report(records, dir).map(Report::text)
    }
}

/// `studies report sweep`.
pub fn report_saved(out: &Path) -> Result<Report> {
    harness::report_saved::<Sweep>(out)
}

/// Builds the grid, runs it, writes `figure4.{png,svg}` and `sweep.{md,csv}`.
pub fn run(args: FigureArgs) -> Result<Report> {
    let setup = FigureSetup::new(&args, &["C1"], 2)?;
    let batches: Vec<usize> = match args.scale {
        Scale::Smoke => vec![16, 64, 160],
        _ => BATCHES.to_vec(),
    };
    let master = setup.opts.master_seed;
    let mut cells = Vec::new();
    for (net, spec, data) in &setup.nets {
        for &b in &batches {
            for seed_index in 0..setup.seeds {
                let i = seed_index.to_string();
                cells.push(Cell {
                    net: net.clone(),
                    spec: spec.clone(),
                    data: data.clone(),
                    train: setup.train_config(b, setup.scale.epochs),
                    seed_index,
                    seeds: RunSeeds {
                        init: harness::derive_seed(master, &["sweep", net, "init", &i]),
                        order: harness::derive_seed(master, &["sweep", net, &b.to_string(), "order", &i]),
                    },
                    measure: MeasureConfig::sharpness_only(harness::derive_seed(
                        master,
                        &["sweep", net, &b.to_string(), "measure", &i],
                    )),
                });
            }
        }
    }
    let study = Sweep { setup, cells };
    harness::execute(&study, &study.setup.opts)
}

/// A row of `sweep.csv` (empty cells where no run finished or none was measured).
#[derive(Serialize)]
struct SweepCsv<'a> {
    net: &'a str,
    batch: usize,
    runs: usize,
    diverged: usize,
    train_acc_mean: Option<f64>,
    test_acc_mean: Option<f64>,
    test_acc_std: Option<f64>,
    sharpness_mean: Option<f64>,
    sharpness_std: Option<f64>,
}

fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<String> {
    let nets = harness::distinct(records.iter().map(|r| r.config.net.as_str()));
    let cfg = &records[0].config.measure;
    let mut md = String::from("# Keskar et al. 2017, Figure 4: batch-size sweep\n\n");
    writeln!(md, "{}\n", fill(include_str!("text/sweep.md"), &[("epsilon", format!("{:e}", cfg.epsilons.first().copied().unwrap_or(f64::NAN))), ("iterations", cfg.lbfgsb_iterations.to_string())]))?;
    md.push_str(
        "| net | batch | runs | diverged | train acc | test acc | sharpness |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut csv = Vec::new();
    let mut panels = Vec::new();
    for &net in &nets {
        let mut batches: Vec<usize> =
            records.iter().filter(|r| r.config.net == net).map(|r| r.config.train.batch_size).collect();
        batches.sort_unstable();
        batches.dedup();
        let (mut acc, mut sharp) = (Vec::new(), Vec::new());
        for &b in &batches {
            let all: Vec<_> = records.iter().filter(|r| r.config.net == net && r.config.train.batch_size == b).collect();
            let runs: Vec<_> = all.iter().filter(|r| r.outcome.trained.finished()).collect();
            let last = |r: &&&Record<Cell, Outcome>| r.outcome.trained.curves.last().cloned().expect("curves");
            let train: Vec<f64> = runs.iter().map(|r| last(r).train_acc).collect();
            let test: Vec<f64> = runs.iter().map(|r| last(r).test_acc).collect();
            let s: Vec<f64> = runs.iter().filter_map(|r| r.outcome.sharpness()).collect();
            writeln!(
                md,
                "| {net} | {b} | {} | {} | {} | {} | {} |",
                all.len(),
                all.len() - runs.len(),
                mean_of(&train).map_or("–".into(), |m| format!("{m:.2}")),
                mean_std(&test, 2),
                mean_std(&s, 2),
            )?;
            csv.push(SweepCsv {
                net,
                batch: b,
                runs: all.len(),
                diverged: all.len() - runs.len(),
                train_acc_mean: mean_of(&train),
                test_acc_mean: mean_of(&test),
                test_acc_std: std_of(&test),
                sharpness_mean: mean_of(&s),
                sharpness_std: std_of(&s),
            });
            if !test.is_empty() {
                acc.push((b as f64, mean(&test), std(&test)));
            }
            if !s.is_empty() {
                sharp.push((b as f64, mean(&s)));
            }
        }
        let mut p = Panel::new(
            format!("{net}: test accuracy"),
            "batch size (log scale)",
            "test accuracy (%)",
            vec![Series {
                label: "test accuracy, mean ± std".into(),
                color: PALETTE[0],
                dashed: false,
                x: acc.iter().map(|a| a.0).collect(),
                mean: acc.iter().map(|a| a.1).collect(),
                std: acc.iter().map(|a| a.2).collect(),
            }],
        );
        p.log_x = true;
        p.legend = plotters::prelude::SeriesLabelPosition::LowerLeft;
        panels.push(p);
        let mut p = Panel::new(
            format!("{net}: sharpness"),
            "batch size (log scale)",
            "sharpness, ε = 1e-3 (log scale)",
            vec![Series {
                label: "sharpness, mean".into(),
                color: PALETTE[1],
                dashed: false,
                x: sharp.iter().map(|a| a.0).collect(),
                mean: sharp.iter().map(|a| a.1).collect(),
                std: vec![0.0; sharp.len()],
            }],
        );
        p.log_x = true;
        p.log_y = true;
        p.legend = plotters::prelude::SeriesLabelPosition::UpperLeft;
        panels.push(p);
    }
    std::fs::create_dir_all(dir)?;
    harness::write_atomic(&dir.join("sweep.md"), md.as_bytes())?;
    harness::write_csv(&dir.join("sweep.csv"), &csv)?;
    plot::write_panels(&dir.join("figure4"), &panels)?;
    Ok(md)
}
