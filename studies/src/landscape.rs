//! The loss landscape around the SB and LB solutions in two dimensions: the training loss on the
//! plane x + α d₁ + β d₂ spanned by two random filter-normalized directions (Li, Xu, Taylor,
//! Studer & Goldstein 2018, "Visualizing the Loss Landscape of Neural Nets"). Filter
//! normalization scales each filter of a direction to the norm of that filter in x, so planes
//! around differently scaled solutions compare; biases and batch-norm parameters do not move
//! (Li et al.), and batch norm keeps the solution's running statistics at every point.
//!
//! Command: `cargo run --release -p studies -- landscape` (F1 and C1 families on MNIST-1D,
//! SB and LB at the `keskar` default scale, a 21 × 21 grid over [−1, 1]²).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use nets::objective::BatchNormMode;
use nets::train::{NetSpec, RunSeeds, TrainConfig, Trained};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::DataSpec;
use crate::figure::{FigureArgs, FigureSetup};
use crate::harness::{self, CellProgress, Record, Report, Study, fill};
use crate::keskar::Regime;
use crate::plot::{self, Heatmap};
use crate::scale::Scale;

/// One line: what `studies list` and `--help` say.
pub const ABOUT: &str =
    "2-D loss landscape around the SB and LB solutions, filter-normalized directions (Li et al. 2018)";

/// The figure studies' flags.
pub type Args = FigureArgs;

/// One cell: one solution and the plane around it.
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
    /// Seeds (init shared by SB and LB).
    pub seeds: RunSeeds,
    /// Grid points per axis.
    pub points: usize,
    /// The grid spans [−span, span] along each direction.
    pub span: f64,
    /// Seed of the two directions.
    pub direction_seed: u64,
}

/// What one cell produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The training run.
    pub trained: Trained,
    /// Coordinates along each direction.
    pub grid: Vec<f64>,
    /// Training cross-entropy, `train_loss[j][i]` at (α = grid[i], β = grid[j]); empty when
    /// the run diverged.
    #[serde(with = "measure::nonfinite::vec2")]
    pub train_loss: Vec<Vec<f64>>,
}

struct Landscape {
    setup: FigureSetup,
    cells: Vec<Cell>,
}

impl Study for Landscape {
    type Cell = Cell;
    type Outcome = Outcome;
    const NAME: &'static str = "landscape";

    fn cells(&self) -> Vec<Cell> {
        self.cells.clone()
    }

    fn label(cell: &Cell) -> String {
        format!("{}-{:?}", cell.net, cell.regime)
    }

    fn run_cell(&self, cell: &Cell, progress: &CellProgress) -> Result<Outcome> {
        let data = self.setup.dataset(&cell.data);
        let device = &self.setup.device;
        let trained = cell.spec.train(data, &cell.train, cell.seeds, None, device, &mut |m, _| {
            progress.message(&format!("epoch {:>3}  train loss {:.4}", m.epoch, m.train_loss))
        });
        if !trained.finished() {
            return Ok(Outcome { trained, grid: Vec::new(), train_loss: Vec::new() });
        }
        let layout = cell.spec.layout(device);
        let mut rng = ChaCha8Rng::seed_from_u64(cell.direction_seed);
        let d1 = layout.filter_normalized_direction(&trained.weights.params, &mut rng);
        let d2 = layout.filter_normalized_direction(&trained.weights.params, &mut rng);
        let x = trained.weights.params_f64();
        let mut obj = cell.spec.training_loss(&trained.weights, data, 1000, BatchNormMode::Running, device);
        let grid: Vec<f64> =
            (0..cell.points).map(|i| -cell.span + 2.0 * cell.span * i as f64 / (cell.points.max(2) - 1) as f64).collect();
        let mut done = 0;
        let train_loss = measure::slices::plane(&x, &d1, &d2, &grid, |point| {
            done += 1;
            progress.message(&format!("plane point {done}/{}", grid.len() * grid.len()));
            obj.evaluate(point, &trained.weights.buffers, &data.train).0
        });
        Ok(Outcome { trained, grid, train_loss })
    }

    fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<Report> {
        report(records, dir).map(Report::text)
    }
}

/// `studies report landscape`.
pub fn report_saved(out: &Path) -> Result<Report> {
    harness::report_saved::<Landscape>(out)
}

/// Builds the grid, runs it, writes `landscape.{png,svg}` and `landscape.md`.
pub fn run(args: FigureArgs) -> Result<Report> {
    let setup = FigureSetup::new(&args, &["F1", "C1"], 1)?;
    let points = if args.scale == Scale::Smoke { 7 } else { 21 };
    let master = setup.opts.master_seed;
    let Some(lb) = setup.scale.lb else { crate::usage!("landscape runs at the small scales only") };
    let mut cells = Vec::new();
    for (net, spec, data) in &setup.nets {
        for regime in [Regime::SB, Regime::LB] {
            let r = format!("{regime:?}");
            cells.push(Cell {
                net: net.clone(),
                spec: spec.clone(),
                data: data.clone(),
                regime,
                train: setup.train_config(if regime == Regime::SB { setup.scale.sb } else { lb }, setup.scale.epochs),
                seeds: RunSeeds {
                    init: harness::derive_seed(master, &["landscape", net, "init"]),
                    order: harness::derive_seed(master, &["landscape", net, &r, "order"]),
                },
                points,
                span: 1.0,
                direction_seed: harness::derive_seed(master, &["landscape", net, &r, "directions"]),
            });
        }
    }
    let study = Landscape { setup, cells };
    harness::execute(&study, &study.setup.opts)
}

fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<String> {
    let mut md = String::from("# Loss landscape around the SB and LB solutions\n\n");
    writeln!(md, "{}\n", fill(include_str!("text/landscape.md"), &[]))?;
    md.push_str("| net | regime | batch | loss at centre | max loss, r ≤ 0.25 | max loss, r ≤ 0.5 | max loss, r ≤ 1 |\n|---|---|---:|---:|---:|---:|---:|\n");
    let mut maps = Vec::new();
    for r in records {
        let o = &r.outcome;
        if let Some(d) = &o.trained.diverged_at {
            writeln!(
                md,
                "| {} | {:?} | {} | diverged (epoch {}, step {}) | | | |",
                r.config.net, r.config.regime, r.config.train.batch_size, d.epoch, d.step
            )?;
            continue;
        }
        let c = o.grid.len() / 2;
        let within = |radius: f64| {
            let mut m = 0.0f64;
            for (j, row) in o.train_loss.iter().enumerate() {
                for (i, &v) in row.iter().enumerate() {
                    if o.grid[i].powi(2) + o.grid[j].powi(2) <= radius * radius + 1e-12 {
                        m = m.max(v);
                    }
                }
            }
            m
        };
        writeln!(
            md,
            "| {} | {:?} | {} | {:.4} | {:.4} | {:.4} | {:.4} |",
            r.config.net,
            r.config.regime,
            r.config.train.batch_size,
            o.train_loss[c][c],
            within(0.25),
            within(0.5),
            within(1.0)
        )?;
        maps.push(Heatmap {
            title: format!(
                "{} {:?} (batch {}): training loss",
                r.config.net, r.config.regime, r.config.train.batch_size
            ),
            x_label: "α (filter-normalized direction 1)".into(),
            y_label: "β (direction 2)".into(),
            x: o.grid.clone(),
            y: o.grid.clone(),
            z: o.train_loss.clone(),
            z_label: "cross-entropy".into(),
        });
    }
    std::fs::create_dir_all(dir)?;
    harness::write_atomic(&dir.join("landscape.md"), md.as_bytes())?;
    // One row per network: SB beside LB.
    plot::write_heatmaps(&dir.join("landscape"), &maps, 2, 14)?;
    Ok(md)
}
