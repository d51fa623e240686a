//! Keskar et al. 2017, Figure 3: cross-entropy and accuracy along the line through the SB and
//! LB solutions of one seed, x(α) = α x_LB + (1 − α) x_SB, on the paper's grid of 25 α in
//! [−1, 2]. A stage of its own after the Table-2 grid: one record per network, holding the two
//! solutions' record ids, the α grid and the values, so the figure is rebuilt from records alone.
//!
//! Batch norm's running statistics are not parameters, so the line does not define them. Two
//! readings, both recorded and drawn: interpolated along the line with the weights (see
//! `Weights::lerp`), and recomputed at each α on the training data (what a network at that point
//! would normalize with, the usual fix of SWA and mode-connectivity work).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use datasets::Dataset;
use nets::objective::{BatchNormMode, Weights};
use nets::train::NetSpec;
use serde::{Deserialize, Serialize};

use super::{Cell as RunCell, Outcome as RunOutcome, Regime};
use crate::data::DataSpec;
use crate::harness::{CellProgress, Record, Report, Study};
use crate::plot::{PALETTE, Panel, Series};

/// One line: a network's seed-0 SB and LB solutions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Network.
    pub net: String,
    /// Its shape.
    pub spec: NetSpec,
    /// Its data (the objective's training and test sets).
    pub data: DataSpec,
    /// Record id of the SB solution (α = 0).
    pub sb: String,
    /// Record id of the LB solution (α = 1).
    pub lb: String,
    /// The points of the line.
    pub alpha: Vec<f64>,
    /// Samples per forward pass. Evaluation is in inference mode, where it does not change the
    /// result; recomputing batch norm's statistics runs training-mode passes of this many
    /// samples, whose statistics are exact when the whole training set fits in one (the paper's
    /// evaluation batch, 5000).
    pub stats_chunk: usize,
}

/// Loss and accuracy at each α under both readings of batch norm's statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Running statistics interpolated along the line with the weights.
    pub interpolated: Line,
    /// Running statistics recomputed at each α on the whole training set.
    pub recomputed: Line,
}

/// Loss and accuracy at each α, in inference mode on the whole train and test sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// Mean cross-entropy on the training set at each α.
    #[serde(with = "measure::nonfinite::vec")]
    pub train_loss: Vec<f64>,
    /// Training accuracy, %.
    pub train_acc: Vec<f64>,
    /// Mean cross-entropy on the test set.
    #[serde(with = "measure::nonfinite::vec")]
    pub test_loss: Vec<f64>,
    /// Test accuracy, %.
    pub test_acc: Vec<f64>,
}

/// The paper's grid: 25 evenly spaced α in [−1, 2].
pub fn alphas() -> Vec<f64> {
    (0..25).map(|i| -1.0 + 3.0 * i as f64 / 24.0).collect()
}

/// The Figure 3 stage: its lines, the data, and where the solutions' weights are.
pub struct Figure3<'a> {
    /// One cell per network with both seed-0 solutions.
    pub cells: Vec<Cell>,
    /// The loaded datasets.
    pub data: &'a [(DataSpec, Dataset)],
    /// `<out>/keskar/artifacts`.
    pub artifacts: PathBuf,
    /// Where the tensors live.
    pub device: nets::Device,
}

impl Figure3<'_> {
    /// One line per network of `records` whose seed-0 SB and LB runs both finished.
    pub fn lines(records: &[Record<RunCell, RunOutcome>]) -> Vec<Cell> {
        let nets = crate::harness::distinct(records.iter().map(|r| r.config.net.as_str()));
        nets.into_iter()
            .filter_map(|net| {
                let find = |regime| {
                    records.iter().find(|r| {
                        r.config.net == net
                            && r.config.regime == regime
                            && r.config.seed_index == 0
                            && r.outcome.trained.finished()
                    })
                };
                let (sb, lb) = (find(Regime::SB)?, find(Regime::LB)?);
                Some(Cell {
                    net: net.into(),
                    spec: sb.config.spec.clone(),
                    data: sb.config.data.clone(),
                    sb: sb.id.clone(),
                    lb: lb.id.clone(),
                    alpha: alphas(),
                    stats_chunk: 5000,
                })
            })
            .collect()
    }

    fn weights(&self, id: &str, spec: &NetSpec) -> Result<Weights> {
        let file = self.artifacts.join(format!("{id}.weights"));
        let bytes = std::fs::read(&file).with_context(|| {
            format!("no weights at {} (rerun its cell with --rerun after deleting its record)", file.display())
        })?;
        let w = Weights::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        spec.check_weights(&w, &self.device).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        Ok(w)
    }
}

impl Study for Figure3<'_> {
    type Cell = Cell;
    type Outcome = Outcome;
    const NAME: &'static str = "keskar";
    const STAGE: &'static str = "figure3";
    const DERIVED: bool = true;

    fn cells(&self) -> Vec<Cell> {
        self.cells.clone()
    }

    fn label(cell: &Cell) -> String {
        format!("figure3-{}", cell.net)
    }

    fn run_cell(&self, cell: &Cell, progress: &CellProgress) -> Result<Outcome> {
        let (w_sb, w_lb) = (self.weights(&cell.sb, &cell.spec)?, self.weights(&cell.lb, &cell.spec)?);
        let data = &self.data.iter().find(|(d, _)| *d == cell.data).context("the line's data is loaded")?.1;
        let layout = cell.spec.layout(&self.device);
        let mut obj = cell.spec.training_loss(&w_sb, data, cell.stats_chunk, BatchNormMode::Running, &self.device);
        progress.log(&format!("{} points between the SB and LB solutions of seed 0", cell.alpha.len()));
        let mut line = |recompute: bool| {
            let points = measure::slices::line(&w_sb.params_f64(), &w_lb.params_f64(), &cell.alpha, |a, x| {
                let interpolated = w_sb.lerp(&w_lb, a, &layout).buffers;
                let buffers = if recompute { obj.recomputed_buffers(x).unwrap_or(interpolated) } else { interpolated };
                (obj.evaluate(x, &buffers, &data.train), obj.evaluate(x, &buffers, &data.test))
            });
            let mut out = Line { train_loss: vec![], train_acc: vec![], test_loss: vec![], test_acc: vec![] };
            for ((train_loss, train_acc), (test_loss, test_acc)) in points {
                out.train_loss.push(train_loss);
                out.train_acc.push(train_acc);
                out.test_loss.push(test_loss);
                out.test_acc.push(test_acc);
            }
            out
        };
        let interpolated = line(false);
        let recomputed = line(true);
        Ok(Outcome { interpolated, recomputed })
    }

    /// Figure 3 is drawn by the Keskar report, beside the tables.
    fn report(_: &[Record<Cell, Outcome>], _: &Path) -> Result<Report> {
        Ok(Report::text(String::new()))
    }
}

/// Figure 3: per net, cross-entropy (log scale) in the first row, accuracy in the second, and in
/// the third the change in cross-entropy when batch norm's statistics are recomputed rather than
/// interpolated; training data solid, test data dashed, as in the paper. Blue: statistics
/// interpolated; green: recomputed.
pub fn slice_panels(slices: &[Record<Cell, Outcome>], records: &[Record<RunCell, RunOutcome>]) -> Vec<Panel> {
    let name = |s: &Cell| {
        records
            .iter()
            .find(|r| r.id == s.sb)
            .map(|r| format!("{} on {}", s.net, r.config.data.name()))
            .unwrap_or(s.net.clone())
    };
    let series = |s: &Cell, which: &str, train: &[f64], test: &[f64], color| {
        let line = |data: &str, dashed: bool, y: &[f64]| Series {
            label: format!("{data}, {which}"),
            color,
            dashed,
            x: s.alpha.clone(),
            mean: y.to_vec(),
            std: vec![0.0; y.len()],
        };
        vec![line("train", false, train), line("test", true, test)]
    };
    let both = |s: &Cell, o: &Outcome, get: fn(&Line) -> (&[f64], &[f64])| {
        let (a, b) = (get(&o.interpolated), get(&o.recomputed));
        let mut lines = series(s, "stats interpolated", a.0, a.1, PALETTE[0]);
        lines.extend(series(s, "stats recomputed", b.0, b.1, PALETTE[2]));
        lines
    };
    let x_label = "α  (0 = SB solution, 1 = LB solution)";
    let mut panels: Vec<Panel> = slices
        .iter()
        .map(|r| {
            let (s, o) = (&r.config, &r.outcome);
            let lines = both(s, o, |l| (&l.train_loss, &l.test_loss));
            let mut p = Panel::new(format!("{}: cross-entropy", name(s)), x_label, "cross-entropy (log scale)", lines);
            p.log_y = true;
            p.legend = plotters::prelude::SeriesLabelPosition::UpperMiddle;
            p
        })
        .collect();
    panels.extend(slices.iter().map(|r| {
        let (s, o) = (&r.config, &r.outcome);
        let lines = both(s, o, |l| (&l.train_acc, &l.test_acc));
        let mut p = Panel::new(format!("{}: accuracy", name(s)), x_label, "accuracy (%)", lines);
        p.legend = plotters::prelude::SeriesLabelPosition::LowerMiddle;
        p
    }));
    panels.extend(slices.iter().map(|r| {
        let (s, o) = (&r.config, &r.outcome);
        let diff = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(i, r)| r - i).collect::<Vec<f64>>();
        let train = diff(&o.interpolated.train_loss, &o.recomputed.train_loss);
        let test = diff(&o.interpolated.test_loss, &o.recomputed.test_loss);
        let lines = series(s, "recomputed − interpolated", &train, &test, PALETTE[3]);
        let mut p = Panel::new(format!("{}: effect of recomputing", name(s)), x_label, "Δ cross-entropy", lines);
        p.legend = plotters::prelude::SeriesLabelPosition::UpperMiddle;
        p
    }));
    panels
}
