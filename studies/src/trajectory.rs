//! Keskar et al. 2017, Figure 6: sharpness against training cross-entropy along training, SB
//! and LB. Near initialization both are alike; as the loss falls, LB sharpness climbs while SB
//! stays flat or decreases.
//!
//! Command: `cargo run --release -p studies -- trajectory` (F1 and C1 families on MNIST-1D,
//! full-space sharpness at ε = 1e-3 measured at chosen epochs of one run per regime).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use nets::train::{NetSpec, RunSeeds, TrainConfig, Trained};
use serde::{Deserialize, Serialize};

use crate::data::DataSpec;
use crate::figure::{FigureArgs, FigureSetup};
use crate::harness::{self, CellProgress, Record, Report, Study, fill};
use crate::keskar::Regime;
use crate::measurement::{MeasureConfig, measure};
use crate::plot::{self, PALETTE, Panel, Series};

/// One line: what `studies list` and `--help` say.
pub const ABOUT: &str = "Keskar et al. 2017 Fig. 6: sharpness against training loss along SB and LB training";

/// The figure studies' flags.
pub type Args = FigureArgs;

/// Epochs at which sharpness is measured (the default scale trains 60).
const EPOCHS: [usize; 10] = [0, 1, 2, 3, 5, 10, 15, 20, 40, 60];

/// One cell: one run, measured along the way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Network name (family).
    pub net: String,
    /// Its exact shape.
    pub spec: NetSpec,
    /// Training data.
    pub data: DataSpec,
    /// SB or LB.
    pub regime: Regime,
    /// Adam settings.
    pub train: TrainConfig,
    /// Index of the seed.
    pub seed_index: usize,
    /// Seeds derived from the master seed (init shared by SB and LB).
    pub seeds: RunSeeds,
    /// Epochs at which the iterate is measured.
    pub at_epochs: Vec<usize>,
    /// Full-space sharpness at ε = 1e-3.
    pub measure: MeasureConfig,
}

/// Sharpness of the iterate after an epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Epochs completed.
    pub epoch: usize,
    /// Training cross-entropy (whole training set).
    #[serde(with = "measure::nonfinite")]
    pub train_loss: f64,
    /// Sharpness (Metric 2.1 at the cell's ε, A = I).
    #[serde(with = "measure::nonfinite")]
    pub sharpness: f64,
}

/// What one cell produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The run.
    pub trained: Trained,
    /// Its measured points.
    pub points: Vec<Point>,
}

struct Trajectory {
    setup: FigureSetup,
    cells: Vec<Cell>,
}

impl Study for Trajectory {
    type Cell = Cell;
    type Outcome = Outcome;
    const NAME: &'static str = "trajectory";

    fn cells(&self) -> Vec<Cell> {
        self.cells.clone()
    }

    fn label(cell: &Cell) -> String {
        format!("{}-{:?}-seed{}", cell.net, cell.regime, cell.seed_index)
    }

    fn run_cell(&self, cell: &Cell, progress: &CellProgress) -> Result<Outcome> {
        let data = self.setup.dataset(&cell.data);
        let mut points = Vec::new();
        let trained = cell.spec.train(data, &cell.train, cell.seeds, None, &self.setup.device, &mut |m, weights| {
            progress.message(&format!("epoch {:>3}  train loss {:.4}", m.epoch, m.train_loss));
            if cell.at_epochs.contains(&m.epoch) {
                let measures = measure(&cell.spec, &weights(), data, &cell.measure, &self.setup.device);
                points.push(Point {
                    epoch: m.epoch,
                    train_loss: m.train_loss,
                    sharpness: measures.first().and_then(|m| m.sharpness()).unwrap_or(f64::NAN),
                });
            }
        });
        Ok(Outcome { trained, points })
    }

    fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<Report> {
        report(records, dir).map(Report::text)
    }
}

/// `studies report trajectory`.
pub fn report_saved(out: &Path) -> Result<Report> {
    harness::report_saved::<Trajectory>(out)
}

/// A row of `trajectory.csv`.
#[derive(Serialize)]
struct TrajectoryCsv<'a> {
    net: &'a str,
    regime: String,
    seed_index: usize,
    epoch: usize,
    train_loss: f64,
    sharpness: f64,
}

/// Builds the grid, runs it, writes `figure6.{png,svg}` and `trajectory.{md,csv}`.
pub fn run(args: FigureArgs) -> Result<Report> {
    let setup = FigureSetup::new(&args, &["F1", "C1"], 1)?;
    let epochs = setup.scale.epochs;
    let at_epochs: Vec<usize> = EPOCHS
        .iter()
        .copied()
        .filter(|&e| e <= epochs)
        .chain(std::iter::once(epochs))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let master = setup.opts.master_seed;
    let Some(lb) = setup.scale.lb else { crate::usage!("trajectory runs at the small scales only") };
    let mut cells = Vec::new();
    for (net, spec, data) in &setup.nets {
        for regime in [Regime::SB, Regime::LB] {
            let batch = if regime == Regime::SB { setup.scale.sb } else { lb };
            for seed_index in 0..setup.seeds {
                let i = seed_index.to_string();
                let r = format!("{regime:?}");
                cells.push(Cell {
                    net: net.clone(),
                    spec: spec.clone(),
                    data: data.clone(),
                    regime,
                    train: setup.train_config(batch, epochs),
                    seed_index,
                    seeds: RunSeeds {
                        init: harness::derive_seed(master, &["trajectory", net, "init", &i]),
                        order: harness::derive_seed(master, &["trajectory", net, &r, "order", &i]),
                    },
                    at_epochs: at_epochs.clone(),
                    measure: MeasureConfig::sharpness_only(harness::derive_seed(
                        master,
                        &["trajectory", net, &r, "measure", &i],
                    )),
                });
            }
        }
    }
    let study = Trajectory { setup, cells };
    harness::execute(&study, &study.setup.opts)
}

fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<String> {
    let nets = harness::distinct(records.iter().map(|r| r.config.net.as_str()));
    let mut md = String::from("# Keskar et al. 2017, Figure 6: sharpness along training\n\n");
    writeln!(md, "{}\n", fill(include_str!("text/trajectory.md"), &[("epsilon", format!("{:e}", records[0].config.measure.epsilons.first().copied().unwrap_or(f64::NAN)))]))?;
    md.push_str("| net | regime | epoch | train loss | sharpness |\n|---|---|---:|---:|---:|\n");
    let mut csv = Vec::new();
    let mut panels = Vec::new();
    for &net in &nets {
        let mut series = Vec::new();
        for (regime, color) in [(Regime::SB, PALETTE[0]), (Regime::LB, PALETTE[1])] {
            for r in records.iter().filter(|r| r.config.net == net && r.config.regime == regime) {
                for p in &r.outcome.points {
                    csv.push(TrajectoryCsv {
                        net,
                        regime: format!("{regime:?}"),
                        seed_index: r.config.seed_index,
                        epoch: p.epoch,
                        train_loss: p.train_loss,
                        sharpness: p.sharpness,
                    });
                    if r.config.seed_index == 0 {
                        writeln!(
                            md,
                            "| {net} | {regime:?} | {} | {:.4} | {:.2} |",
                            p.epoch, p.train_loss, p.sharpness
                        )?;
                    }
                }
                if r.config.seed_index == 0 {
                    series.push(Series {
                        label: format!("{regime:?} (batch {})", r.config.train.batch_size),
                        color,
                        dashed: false,
                        x: r.outcome.points.iter().map(|p| p.train_loss).collect(),
                        mean: r.outcome.points.iter().map(|p| p.sharpness.max(1e-6)).collect(),
                        std: vec![0.0; r.outcome.points.len()],
                    });
                }
            }
        }
        let mut p = Panel::new(
            format!("{net}: sharpness along training"),
            "training cross-entropy (log scale; training runs right to left)",
            "sharpness, ε = 1e-3 (log scale)",
            series,
        );
        p.log_x = true;
        p.log_y = true;
        p.legend = plotters::prelude::SeriesLabelPosition::LowerLeft;
        panels.push(p);
    }
    std::fs::create_dir_all(dir)?;
    harness::write_atomic(&dir.join("trajectory.md"), md.as_bytes())?;
    harness::write_csv(&dir.join("trajectory.csv"), &csv)?;
    plot::write_panels(&dir.join("figure6"), &panels)?;
    Ok(md)
}
