//! Keskar et al. 2017, Figure 5, warm start ("piggybacking"): small-batch Adam for k epochs,
//! then large-batch Adam (fresh optimizer state) from that iterate. With few SB epochs LB stays
//! sharp and generalizes worse; after enough SB epochs it lands in a flatter region and
//! generalizes like SB.
//!
//! Command: `cargo run --release -p studies -- warmstart` (C1 family on MNIST-1D; k from 0 to
//! 40 SB epochs at batch 32, then the default scale's epochs of LB at batch 512).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use nets::train::{EpochMetrics, NetSpec, RunSeeds, TrainConfig, Trained};
use serde::{Deserialize, Serialize};

use crate::data::DataSpec;
use crate::figure::{FigureArgs, FigureSetup};
use crate::harness::{self, CellProgress, Record, Report, Study, fill};
use crate::measurement::{MeasureConfig, Measures, measure_run};
use crate::plot::{self, PALETTE, Panel, Series};
use crate::scale::Scale;
use crate::stats::{mean, mean_of, mean_std, std, std_of};

/// One line: what `studies list` and `--help` say.
pub const ABOUT: &str = "Keskar et al. 2017 Fig. 5: LB training warm-started from SB iterates after k epochs";

/// The figure studies' flags.
pub type Args = FigureArgs;

/// SB warm-up epochs k.
const WARMUP: [usize; 8] = [0, 1, 2, 5, 10, 20, 30, 40];

/// One cell: k SB epochs, then LB from there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Network name (family).
    pub net: String,
    /// Its exact shape.
    pub spec: NetSpec,
    /// Training data.
    pub data: DataSpec,
    /// The SB phase (its `epochs` is k).
    pub sb: TrainConfig,
    /// The LB phase.
    pub lb: TrainConfig,
    /// Index of the seed.
    pub seed_index: usize,
    /// Seeds of the SB phase: shared by every k, so the cells follow one SB trajectory.
    pub sb_seeds: RunSeeds,
    /// Batch-order seed of the LB phase.
    pub lb_order: u64,
    /// Full-space sharpness at ε = 1e-3 of the LB solution.
    pub measure: MeasureConfig,
}

/// What one cell produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Metrics of the SB iterate after k epochs.
    pub sb: EpochMetrics,
    /// The LB phase (it diverges at its first step when the SB phase did).
    pub lb: Trained,
    /// Sharpness of the LB solution, on running statistics (empty if either phase diverged).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measures: Vec<Measures>,
}

struct WarmStart {
    setup: FigureSetup,
    cells: Vec<Cell>,
}

impl Study for WarmStart {
    type Cell = Cell;
    type Outcome = Outcome;
    const NAME: &'static str = "warmstart";

    fn cells(&self) -> Vec<Cell> {
        self.cells.clone()
    }

    fn label(cell: &Cell) -> String {
        format!("{}-k{}-seed{}", cell.net, cell.sb.epochs, cell.seed_index)
    }

    fn run_cell(&self, cell: &Cell, progress: &CellProgress) -> Result<Outcome> {
        let data = self.setup.dataset(&cell.data);
        let device = &self.setup.device;
        // k = 0 trains no epoch: the start is the initialization itself.
        let sb = cell.spec.train(data, &cell.sb, cell.sb_seeds, None, device, &mut |m, _| {
            progress.message(&format!("SB epoch {:>3}  test {:5.1}%", m.epoch, m.test_acc))
        });
        let lb_seeds = RunSeeds { init: cell.sb_seeds.init, order: cell.lb_order };
        let lb = cell.spec.train(data, &cell.lb, lb_seeds, Some(&sb.weights), device, &mut |m, _| {
            progress.message(&format!("LB epoch {:>3}  test {:5.1}%", m.epoch, m.test_acc))
        });
        progress.message("measuring sharpness");
        let measures = measure_run(&cell.spec, &lb, data, Some(&cell.measure), device)?;
        Ok(Outcome { sb: sb.curves.last().cloned().expect("epoch-0 evaluation"), lb, measures })
    }

    fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<Report> {
        report(records, dir).map(Report::text)
    }
}

/// `studies report warmstart`.
pub fn report_saved(out: &Path) -> Result<Report> {
    harness::report_saved::<WarmStart>(out)
}

/// Builds the grid, runs it, writes `figure5.{png,svg}` and `warmstart.{md,csv}`.
pub fn run(args: FigureArgs) -> Result<Report> {
    let setup = FigureSetup::new(&args, &["C1"], 2)?;
    let warmup: Vec<usize> = match args.scale {
        Scale::Smoke => vec![0, 1, 3],
        _ => WARMUP.to_vec(),
    };
    let master = setup.opts.master_seed;
    let Some(lb) = setup.scale.lb else { crate::usage!("warmstart runs at the small scales only") };
    let mut cells = Vec::new();
    for (net, spec, data) in &setup.nets {
        for &k in &warmup {
            for seed_index in 0..setup.seeds {
                let i = seed_index.to_string();
                cells.push(Cell {
                    net: net.clone(),
                    spec: spec.clone(),
                    data: data.clone(),
                    sb: setup.train_config(setup.scale.sb, k),
                    lb: setup.train_config(lb, setup.scale.epochs),
                    seed_index,
                    sb_seeds: RunSeeds {
                        init: harness::derive_seed(master, &["warmstart", net, "init", &i]),
                        order: harness::derive_seed(master, &["warmstart", net, "SB", "order", &i]),
                    },
                    lb_order: harness::derive_seed(master, &["warmstart", net, &k.to_string(), "LB", "order", &i]),
                    measure: MeasureConfig::sharpness_only(harness::derive_seed(
                        master,
                        &["warmstart", net, &k.to_string(), "measure", &i],
                    )),
                });
            }
        }
    }
    let study = WarmStart { setup, cells };
    harness::execute(&study, &study.setup.opts)
}

/// A row of `warmstart.csv` (empty cells where no run finished).
#[derive(Serialize)]
struct WarmStartCsv<'a> {
    net: &'a str,
    k: usize,
    runs: usize,
    diverged: usize,
    sb_test_acc_mean: Option<f64>,
    lb_test_acc_mean: Option<f64>,
    lb_test_acc_std: Option<f64>,
    lb_sharpness_mean: Option<f64>,
    lb_sharpness_std: Option<f64>,
}

fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<String> {
    let nets = harness::distinct(records.iter().map(|r| r.config.net.as_str()));
    let mut md = String::from("# Keskar et al. 2017, Figure 5: warm-started large-batch training\n\n");
    writeln!(md, "{}\n", fill(include_str!("text/warmstart.md"), &[("epsilon", format!("{:e}", records[0].config.measure.epsilons.first().copied().unwrap_or(f64::NAN)))]))?;
    md.push_str(
        "| net | k (SB epochs) | runs | diverged | SB iterate test acc | LB solution test acc | LB sharpness |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut csv = Vec::new();
    let mut panels = Vec::new();
    for &net in &nets {
        let mut ks: Vec<usize> = records.iter().filter(|r| r.config.net == net).map(|r| r.config.sb.epochs).collect();
        ks.sort_unstable();
        ks.dedup();
        let (mut sb_acc, mut lb_acc, mut sharp) = (Vec::new(), Vec::new(), Vec::new());
        for &k in &ks {
            let all: Vec<_> = records.iter().filter(|r| r.config.net == net && r.config.sb.epochs == k).collect();
            let runs: Vec<_> = all.iter().filter(|r| r.outcome.lb.finished()).collect();
            let sb: Vec<f64> = runs.iter().map(|r| r.outcome.sb.test_acc).collect();
            let lb: Vec<f64> = runs.iter().filter_map(|r| r.outcome.lb.curves.last()).map(|m| m.test_acc).collect();
            let s: Vec<f64> = runs.iter().filter_map(|r| r.outcome.measures.first()?.sharpness()).collect();
            writeln!(
                md,
                "| {net} | {k} | {} | {} | {} | {} | {} |",
                all.len(),
                all.len() - runs.len(),
                mean_std(&sb, 2),
                mean_std(&lb, 2),
                mean_std(&s, 2)
            )?;
            csv.push(WarmStartCsv {
                net,
                k,
                runs: all.len(),
                diverged: all.len() - runs.len(),
                sb_test_acc_mean: mean_of(&sb),
                lb_test_acc_mean: mean_of(&lb),
                lb_test_acc_std: std_of(&lb),
                lb_sharpness_mean: mean_of(&s),
                lb_sharpness_std: std_of(&s),
            });
            if !runs.is_empty() {
                sb_acc.push((k as f64, mean(&sb), std(&sb)));
                lb_acc.push((k as f64, mean(&lb), std(&lb)));
            }
            if !s.is_empty() {
                sharp.push((k as f64, mean(&s), std(&s)));
            }
        }
        let series = |label: &str, color, dashed, v: &[(f64, f64, f64)]| Series {
            label: label.into(),
            color,
            dashed,
            x: v.iter().map(|a| a.0).collect(),
            mean: v.iter().map(|a| a.1).collect(),
            std: v.iter().map(|a| a.2).collect(),
        };
        panels.push(Panel::new(
            format!("{net}: test accuracy"),
            "SB warm-start epochs k",
            "test accuracy (%)",
            vec![
                series("SB iterate after k epochs", PALETTE[0], true, &sb_acc),
                series("LB solution from it", PALETTE[1], false, &lb_acc),
            ],
        ));
        let mut p = Panel::new(
            format!("{net}: LB sharpness"),
            "SB warm-start epochs k",
            "sharpness, ε = 1e-3",
            vec![series("LB solution, mean ± std", PALETTE[1], false, &sharp)],
        );
        p.legend = plotters::prelude::SeriesLabelPosition::UpperRight;
        panels.push(p);
    }
    std::fs::create_dir_all(dir)?;
    harness::write_atomic(&dir.join("warmstart.md"), md.as_bytes())?;
    harness::write_csv(&dir.join("warmstart.csv"), &csv)?;
    plot::write_panels(&dir.join("figure5"), &panels)?;
    Ok(md)
}
