//! Choromanska, Henaff, Mathieu, Ben Arous & LeCun 2015, "The Loss Surfaces of Multilayer
//! Networks": under simplifying assumptions a ReLU network's loss is a spherical spin glass, whose
//! low critical values lie in a band above the global minimum that narrows as the network grows,
//! with minima outside it exponentially rare. Their experiment trains one-hidden-layer ReLU
//! networks of growing width many times from random initializations and shows that the final test
//! losses concentrate as the width grows.
//!
//! The study does the same: one-hidden-layer ReLU networks (no batch norm: the loss is a function
//! of the weights alone, as in their model) of 25, 50, 100, 250 and 500 units, each trained from
//! many initializations by plain minibatch SGD for a fixed number of epochs, then reports per
//! width the histogram of final test losses, their spread (standard deviation and interquartile
//! range, each with a bootstrap 95 % interval) and the Pearson correlation of final train and test
//! loss. The data is MNIST area-averaged to 10 × 10 (`datasets::resize`), as in the paper, when
//! it is in the data folder, else generated MNIST-1D. The paper's experiment details (widths,
//! 10 × 10 MNIST, SGD) come from its text as recalled in the reference notes; only the abstract
//! was checked (README: Landscape theory).
//!
//! A fixed epoch budget does not reach an exact critical point: each width's last-quarter change
//! of the training loss is reported beside its spread, so a reader sees how settled the runs are.
//!
//! Command: `cargo run --release -p studies -- spin-glass` (about five minutes on 2 cores).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;
use datasets::Dataset;
use nets::dense::DenseSpec;
use nets::train::{NetSpec, RunSeeds, TrainConfig, Trained as Outcome};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::{DataDir, DataSpec};
use crate::harness::{self, CellProgress, GridArgs, Record, Report, Study, fill};
use crate::plot::{self, PALETTE, Panel, Series};
use crate::scale::Scale;
use crate::stats::{mean, min_max, std};
use crate::usage;

/// One line: what `studies list` and `--help` say.
pub const ABOUT: &str =
    "Choromanska et al. 2015: test losses of one-hidden-layer ReLU nets from many inits, their spread against width";

/// `--data auto` or a dataset name.
fn data_choice(value: &str) -> std::result::Result<String, String> {
    if value == "auto" { Ok(value.into()) } else { crate::data::data_name(value) }
}

/// Arguments of `studies spin-glass`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Size: smoke (3 runs per width, 2 epochs), default (100 runs per width; MNIST: the first
    /// 10,000 training images), paper (1000 runs per width; MNIST: all 60,000).
    #[arg(long, value_enum, default_value_t = Scale::Default)]
    pub scale: Scale,
    /// Runs per width, replacing the scale's.
    #[arg(long)]
    pub runs: Option<usize>,
    /// Training data: auto (MNIST at 10 × 10 if it is in the data folder, else generated
    /// MNIST-1D), or mnist1d, mnist1d-frozen, mnist, fashion-mnist, cifar-10, cifar-10-subset, cifar-100,
    /// optdigits, timit, npy:DIR. One-channel images of at least 10 × 10 are area-averaged to
    /// 10 × 10; other data enters as it is, flattened.
    #[arg(long, default_value = "auto", value_parser = data_choice)]
    pub data: String,
    /// Folder holding the datasets (default: $FLATLAND_DATA, else the cache folder).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub grid: GridArgs,
}

// The study's settings.
/// Hidden units n₁ (the paper's widths).
const WIDTHS: [usize; 5] = [25, 50, 100, 250, 500];
/// MNIST images are area-averaged to this side (the paper's 10 × 10).
const SIDE: usize = 10;
/// Minibatch size of SGD.
const BATCH: usize = 100;
/// SGD's step size (constant, no momentum).
const LEARNING_RATE: f64 = 0.5;
/// Epochs at the default and paper scales, and at the smoke scale.
const EPOCHS: usize = 20;
/// See [`EPOCHS`].
const SMOKE_EPOCHS: usize = 2;
/// Runs per width at the smoke, default and paper scales.
const RUNS: [usize; 3] = [3, 100, 1000];
/// MNIST training images used at the smoke and default scales (the first this many); the paper
/// scale uses all.
const MNIST_TRAIN: usize = 10_000;
/// Bootstrap resamples behind each spread's 95 % interval.
const BOOTSTRAP: usize = 2000;

/// One cell: one network trained once from one initialization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Hidden units n₁.
    pub width: usize,
    /// The network.
    pub spec: NetSpec,
    /// Training data.
    pub data: DataSpec,
    /// Images area-averaged to `side × side` (none: used as they are).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub side: Option<usize>,
    /// Training samples used: the first this many (none: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_subset: Option<usize>,
    /// Batch, epochs, shuffling (the step size is the rule's).
    pub train: TrainConfig,
    /// The update rule: plain SGD.
    pub rule: optim::Rule,
    /// Index of the run among the width's.
    pub run_index: usize,
    /// Seeds derived from the master seed.
    pub seeds: RunSeeds,
}

struct SpinGlass {
    cells: Vec<Cell>,
    data: Dataset,
    device: nets::Device,
}

impl Study for SpinGlass {
    type Cell = Cell;
    type Outcome = Outcome;
    const NAME: &'static str = "spin-glass";

    fn cells(&self) -> Vec<Cell> {
        self.cells.clone()
    }

    fn label(cell: &Cell) -> String {
        format!("width{}-run{}", cell.width, cell.run_index)
    }

    fn run_cell(&self, cell: &Cell, progress: &CellProgress) -> Result<Outcome> {
        let epochs = cell.train.epochs;
        Ok(cell.spec.train_with_rule(&self.data, &cell.train, cell.seeds, cell.rule, None, &self.device, &mut |m, _| {
            progress.message(&format!("epoch {:>3}/{epochs}  train loss {:.4}  test loss {:.4}", m.epoch, m.train_loss, m.test_loss));
        }))
    }

    fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<Report> {
        report(records, dir)
    }
}

/// `studies report spin-glass`.
pub fn report_saved(out: &Path) -> Result<Report> {
    harness::report_saved::<SpinGlass>(out)
}

/// The data: `auto` is MNIST when it loads from the data folder, else generated MNIST-1D. Real
/// data keeps its first `subset` training samples; one-channel images of at least 10 × 10 are
/// area-averaged to 10 × 10 (the side, returned).
fn load_data(choice: &str, dir: &DataDir, subset: Option<usize>) -> Result<(DataSpec, Option<usize>, Option<usize>, Dataset)> {
    let mnist1d = DataSpec::Mnist1d { train: 4000, test: 1000, seed: 42 };
    let (spec, mut data) = match choice {
        "auto" => match DataSpec::Mnist.load(dir) {
            Ok(d) => (DataSpec::Mnist, d),
            Err(e) => {
                eprintln!("spin-glass: MNIST is not available, so the study runs on generated MNIST-1D ({e:#})");
                (mnist1d.clone(), mnist1d.load(dir)?)
            }
        },
        other => {
            let spec = crate::data::parse_data(other, &mnist1d)?;
            let data = crate::data::load_all(std::slice::from_ref(&spec), dir)?.remove(0).1;
            (spec, data)
        }
    };
    if matches!(spec, DataSpec::Mnist1d { .. }) {
        return Ok((spec, None, None, data));
    }
    let keep = subset.map(|n| data.keep_train(n));
    match data.sample_shape.as_slice() {
        &[1, h, w] if h >= SIDE && w >= SIDE => match datasets::resize::downsample(&data, SIDE, SIDE) {
            Some(small) => Ok((spec, Some(SIDE), keep, small)),
            None => usage!("images of shape {:?} cannot be area-averaged to {SIDE}×{SIDE}", data.sample_shape),
        },
        _ => Ok((spec, None, keep, data)),
    }
}

/// Builds the grid, runs it, reports.
pub fn run(args: Args) -> Result<Report> {
    let (backend, device, jobs) = args.grid.validate()?;
    let scale_index = match args.scale {
        Scale::Smoke => 0,
        Scale::Default => 1,
        Scale::Paper => 2,
    };
    let runs = args.runs.unwrap_or(RUNS[scale_index]);
    if runs < 2 {
        usage!("--runs {runs}: a spread needs at least 2 runs per width (accepted: 2 or more)");
    }
    let epochs = if args.scale == Scale::Smoke { SMOKE_EPOCHS } else { EPOCHS };
    let subset = (args.scale != Scale::Paper).then_some(MNIST_TRAIN);
    let dir = DataDir::resolve(args.data_dir.as_deref());
    let (data_spec, side, train_subset, data) = load_data(&args.data, &dir, subset)?;
    let master = args.grid.seed;
    let rule = optim::Rule::Gd { lr: LEARNING_RATE };
    let train = TrainConfig::adam(BATCH, epochs, LEARNING_RATE);
    let mut cells = Vec::new();
    for width in WIDTHS {
        let spec = NetSpec::Dense(DenseSpec { input: data.sample_len(), hidden: vec![width], classes: data.classes });
        for run_index in 0..runs {
            let (w, i) = (width.to_string(), run_index.to_string());
            cells.push(Cell {
                width,
                spec: spec.clone(),
                data: data_spec.clone(),
                side,
                train_subset,
                train: train.clone(),
                rule,
                run_index,
                seeds: RunSeeds {
                    init: harness::derive_seed(master, &["spin-glass", &w, "init", &i]),
                    order: harness::derive_seed(master, &["spin-glass", &w, "order", &i]),
                },
            });
        }
    }
    let env =
        crate::env::Env::capture(backend, &device, jobs).with_data(&data.name, &data).with_files(&data_spec, &dir)?;
    let opts = args.grid.options(jobs, env)?;
    harness::execute(&SpinGlass { cells, data, device }, &opts)
}

/// Sample quantile `q` of sorted `v` by linear interpolation between order statistics (R's and
/// NumPy's default, type 7).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Interquartile range of `v`.
fn iqr(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    quantile(&s, 0.75) - quantile(&s, 0.25)
}

/// Percentile-bootstrap 95 % interval of `statistic` over `v`, from a generator seeded by `seed`
/// (the report is a function of the records alone).
fn bootstrap_ci(v: &[f64], statistic: fn(&[f64]) -> f64, seed: u64) -> (f64, f64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut resample = vec![0.0; v.len()];
    let mut stats: Vec<f64> = (0..BOOTSTRAP)
        .map(|_| {
            resample.iter_mut().for_each(|x| *x = v[rng.random_range(0..v.len())]);
            statistic(&resample)
        })
        .collect();
    stats.sort_by(f64::total_cmp);
    (quantile(&stats, 0.025), quantile(&stats, 0.975))
}

/// Pearson's r of paired samples and its 95 % interval by Fisher's z (the whole [−1, 1] for
/// n = 3, NaN for fewer).
fn pearson(x: &[f64], y: &[f64]) -> (f64, f64, f64) {
    let (mx, my) = (mean(x), mean(y));
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let syy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    let r = sxy / (sxx * syy).sqrt();
    let se = 1.0 / (x.len() as f64 - 3.0).sqrt();
    let z = r.atanh();
    (r, (z - 1.96 * se).tanh(), (z + 1.96 * se).tanh())
}

/// A row of `spin-glass.csv`: one width.
#[derive(Serialize)]
struct WidthCsv {
    width: usize,
    parameters: usize,
    runs: usize,
    diverged: usize,
    train_loss_mean: f64,
    test_loss_mean: f64,
    test_loss_min: f64,
    test_loss_max: f64,
    test_loss_std: f64,
    test_loss_std_low: f64,
    test_loss_std_high: f64,
    test_loss_iqr: f64,
    test_loss_iqr_low: f64,
    test_loss_iqr_high: f64,
    train_test_pearson: f64,
    train_test_pearson_low: f64,
    train_test_pearson_high: f64,
    test_acc_mean: f64,
    /// Median over runs of (train loss at 3/4 of the epochs − final train loss) / final train loss.
    last_quarter_train_loss_drop: f64,
}

/// A row of `spin-glass-runs.csv`: one run.
#[derive(Serialize)]
struct RunCsv {
    width: usize,
    run_index: usize,
    epochs: usize,
    train_loss: f64,
    test_loss: f64,
    train_acc: f64,
    test_acc: f64,
}

/// What one width's runs gave.
struct WidthSummary {
    row: WidthCsv,
    test_losses: Vec<f64>,
}

fn summarize(width: usize, runs: &[&Record<Cell, Outcome>]) -> WidthSummary {
    let finished: Vec<_> = runs.iter().filter(|r| r.outcome.finished()).collect();
    let last = |r: &&&Record<Cell, Outcome>| r.outcome.curves.last().cloned().expect("epoch 0 is always evaluated");
    let train: Vec<f64> = finished.iter().map(|r| last(r).train_loss).collect();
    let test: Vec<f64> = finished.iter().map(|r| last(r).test_loss).collect();
    let acc: Vec<f64> = finished.iter().map(|r| last(r).test_acc).collect();
    let mut drops: Vec<f64> = finished
        .iter()
        .map(|r| {
            let c = &r.outcome.curves;
            let end = c[c.len() - 1].train_loss;
            (c[(3 * (c.len() - 1)) / 4].train_loss - end) / end
        })
        .collect();
    drops.sort_by(f64::total_cmp);
    let seed = width as u64;
    let ((std_low, std_high), (iqr_low, iqr_high)) = if test.len() >= 2 {
        (bootstrap_ci(&test, std, seed), bootstrap_ci(&test, iqr, seed + 1))
    } else {
        ((f64::NAN, f64::NAN), (f64::NAN, f64::NAN))
    };
    let (r, r_low, r_high) = if test.len() >= 2 { pearson(&train, &test) } else { (f64::NAN, f64::NAN, f64::NAN) };
    let row = WidthCsv {
        width,
        parameters: runs[0].outcome.parameters,
        runs: runs.len(),
        diverged: runs.len() - finished.len(),
        train_loss_mean: mean(&train),
        test_loss_mean: mean(&test),
        test_loss_min: min_max(test.iter().copied()).0,
        test_loss_max: min_max(test.iter().copied()).1,
        test_loss_std: if test.len() >= 2 { std(&test) } else { f64::NAN },
        test_loss_std_low: std_low,
        test_loss_std_high: std_high,
        test_loss_iqr: if test.is_empty() { f64::NAN } else { iqr(&test) },
        test_loss_iqr_low: iqr_low,
        test_loss_iqr_high: iqr_high,
        train_test_pearson: r,
        train_test_pearson_low: r_low,
        train_test_pearson_high: r_high,
        test_acc_mean: mean(&acc),
        last_quarter_train_loss_drop: if drops.is_empty() { f64::NAN } else { quantile(&drops, 0.5) },
    };
    WidthSummary { row, test_losses: test }
}

/// The verdict on the spread: narrower, wider, or no clear change from the narrowest network to
/// the widest, by the bootstrap intervals of both the standard deviation and the IQR.
fn verdict(first: &WidthCsv, last: &WidthCsv) -> &'static str {
    let below = |hi: f64, lo: f64| hi < lo;
    let narrower = below(last.test_loss_std_high, first.test_loss_std_low)
        && below(last.test_loss_iqr_high, first.test_loss_iqr_low);
    let wider = below(first.test_loss_std_high, last.test_loss_std_low)
        && below(first.test_loss_iqr_high, last.test_loss_iqr_low);
    match (narrower, wider) {
        (true, _) => "narrows",
        (_, true) => "widens",
        _ => "shows no clear change",
    }
}

fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<Report> {
    let c = &records[0].config;
    let data = match (c.side, &c.data) {
        (Some(side), d) => format!("{} area-averaged to {side} × {side}", d.name()),
        (None, d) => d.name().to_string(),
    };
    let subset = c.train_subset.map_or("all training samples".to_string(), |n| format!("the first {n} training samples"));
    let lr = match c.rule {
        optim::Rule::Gd { lr } => lr.to_string(),
        other => format!("{other:?}"),
    };
    let mut widths: Vec<usize> = records.iter().map(|r| r.config.width).collect();
    widths.sort_unstable();
    widths.dedup();
    let summaries: Vec<WidthSummary> = widths
        .iter()
        .map(|&w| summarize(w, &records.iter().filter(|r| r.config.width == w).collect::<Vec<_>>()))
        .collect();
    let mut md = String::from("# The spread of minima with width (Choromanska et al. 2015)\n\n");
    writeln!(
        md,
        "{}\n",
        fill(
            include_str!("text/spin-glass.md"),
            &[
                ("data", data),
                ("subset", subset),
                ("batch", c.train.batch_size.to_string()),
                ("lr", lr),
                ("epochs", c.train.epochs.to_string()),
                ("bootstrap", BOOTSTRAP.to_string()),
                ("widths", harness::distinct(widths.iter().map(|w| w.to_string())).join(", ")),
            ]
        )
    )?;
    md.push_str(
        "| width n₁ | parameters | runs | diverged | train loss (mean) | test loss (mean) | test loss min – max | \
         std of test loss [95 % CI] | IQR of test loss [95 % CI] | Pearson r (train, test) [95 % CI] | test acc % (mean) | \
         train-loss drop, last quarter (median) |\n|---:|---:|---:|---:|---:|---:|---|---|---|---|---:|---:|\n",
    );
    for s in &summaries {
        let r = &s.row;
        // A width whose runs all diverged has no statistics: dashes, not NaN or ±∞.
        let f = |v: f64, digits: usize| if v.is_finite() { format!("{v:.digits$}") } else { "–".into() };
        let ci = |v: f64, lo: f64, hi: f64, d: usize| format!("{} [{}, {}]", f(v, d), f(lo, d), f(hi, d));
        let drop = r.last_quarter_train_loss_drop;
        writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} – {} | {} | {} | {} | {} | {} |",
            r.width,
            r.parameters,
            r.runs,
            r.diverged,
            f(r.train_loss_mean, 4),
            f(r.test_loss_mean, 4),
            f(r.test_loss_min, 4),
            f(r.test_loss_max, 4),
            ci(r.test_loss_std, r.test_loss_std_low, r.test_loss_std_high, 4),
            ci(r.test_loss_iqr, r.test_loss_iqr_low, r.test_loss_iqr_high, 4),
            ci(r.train_test_pearson, r.train_test_pearson_low, r.train_test_pearson_high, 2),
            f(r.test_acc_mean, 2),
            if drop.is_finite() { format!("{drop:.1e}") } else { "–".into() },
        )?;
    }
    let (first, last) = (&summaries[0].row, &summaries[summaries.len() - 1].row);
    writeln!(
        md,
        "\n**Verdict.** From n₁ = {} to n₁ = {}, the spread of the final test loss {}: standard deviation \
         {:.4} → {:.4}, IQR {:.4} → {:.4} (\"narrows\" or \"widens\" only when the 95 % bootstrap intervals of both \
         are disjoint). The train–test correlation goes from {:.2} to {:.2}.",
        first.width,
        last.width,
        verdict(first, last),
        first.test_loss_std,
        last.test_loss_std,
        first.test_loss_iqr,
        last.test_loss_iqr,
        first.train_test_pearson,
        last.train_test_pearson,
    )?;

    // Plots: the histograms, the spread against width, the correlation against width.
    let all: Vec<f64> = summaries.iter().flat_map(|s| s.test_losses.iter().copied()).collect();
    let (lo, hi) = min_max(all.iter().copied());
    let span = if hi > lo { hi - lo } else { 1.0 };
    let edges: Vec<f64> = (0..=30).map(|i| lo + span * i as f64 / 30.0).collect();
    let histograms = summaries
        .iter()
        .zip(PALETTE.iter().cycle())
        .map(|(s, &color)| plot::histogram_series(format!("n₁ = {}", s.row.width), color, &s.test_losses, &edges))
        .collect();
    let x: Vec<f64> = summaries.iter().map(|s| s.row.width as f64).collect();
    let band = |f: fn(&WidthCsv) -> (f64, f64, f64)| -> (Vec<f64>, Vec<f64>) {
        // The band is drawn symmetric about the point: half the interval's width.
        summaries.iter().map(|s| f(&s.row)).map(|(v, l, h)| (v, (h - l) / 2.0)).unzip()
    };
    let (std_mean, std_band) = band(|r| (r.test_loss_std, r.test_loss_std_low, r.test_loss_std_high));
    let (iqr_mean, iqr_band) = band(|r| (r.test_loss_iqr, r.test_loss_iqr_low, r.test_loss_iqr_high));
    let (r_mean, r_band) = band(|r| (r.train_test_pearson, r.train_test_pearson_low, r.train_test_pearson_high));
    let mut spread = Panel::new(
        "Spread of the final test loss",
        "hidden units n₁ (log scale)",
        "test loss spread",
        vec![
            Series { label: "std (95 % CI)".into(), color: PALETTE[0], dashed: false, x: x.clone(), mean: std_mean, std: std_band },
            Series { label: "IQR (95 % CI)".into(), color: PALETTE[1], dashed: true, x: x.clone(), mean: iqr_mean, std: iqr_band },
        ],
    );
    spread.log_x = true;
    spread.legend = plotters::prelude::SeriesLabelPosition::UpperRight;
    let mut correlation = Panel::new(
        "Train–test correlation",
        "hidden units n₁ (log scale)",
        "Pearson r of final train and test loss",
        vec![Series { label: "r (95 % CI)".into(), color: PALETTE[2], dashed: false, x, mean: r_mean, std: r_band }],
    );
    correlation.log_x = true;
    let mut histogram = Panel::new("Final test loss, per width", "test loss", "runs", histograms);
    histogram.legend = plotters::prelude::SeriesLabelPosition::UpperRight;
    std::fs::create_dir_all(dir)?;
    plot::write_panels(&dir.join("spin-glass"), &[histogram, spread, correlation])?;

    let mut runs_csv = Vec::new();
    for r in records.iter().filter(|r| r.outcome.finished()) {
        let m = r.outcome.curves.last().expect("epoch 0 is always evaluated");
        runs_csv.push(RunCsv {
            width: r.config.width,
            run_index: r.config.run_index,
            epochs: m.epoch,
            train_loss: m.train_loss,
            test_loss: m.test_loss,
            train_acc: m.train_acc,
            test_acc: m.test_acc,
        });
    }
    let passed = summaries.iter().all(|s| s.row.diverged == 0);
    if !passed {
        writeln!(md, "\nSome runs diverged (column *diverged*); they are left out of every statistic.")?;
    }
    harness::write_csv(&dir.join("spin-glass.csv"), &summaries.into_iter().map(|s| s.row).collect::<Vec<_>>())?;
    harness::write_csv(&dir.join("spin-glass-runs.csv"), &runs_csv)?;
    harness::write_atomic(&dir.join("spin-glass.md"), md.as_bytes())?;
    Ok(Report { text: md, passed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_numpy_default() {
        // numpy.quantile([1, 2, 3, 4], [0.25, 0.5, 0.75]) = [1.75, 2.5, 3.25].
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!([quantile(&v, 0.25), quantile(&v, 0.5), quantile(&v, 0.75)], [1.75, 2.5, 3.25]);
        assert_eq!(iqr(&[4.0, 1.0, 3.0, 2.0]), 1.5);
    }

    #[test]
    fn pearson_of_exact_lines_and_its_interval() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let (r, ..) = pearson(&x, &[2.0, 4.0, 6.0, 8.0, 10.0]);
        assert!((r - 1.0).abs() < 1e-12);
        let (r, ..) = pearson(&x, &[5.0, 4.0, 3.0, 2.0, 1.0]);
        assert!((r + 1.0).abs() < 1e-12);
        // r = 0.5 at n = 28: z = 0.5493, se = 0.2, so the interval is tanh(0.5493 ± 0.392).
        let n = 28;
        let (lo, hi) = ((0.5493061443f64 - 0.392).tanh(), (0.5493061443f64 + 0.392).tanh());
        let x: Vec<f64> = (0..n).map(|i| i as f64).collect();
        // y = x + c·noise with noise orthogonal to x makes r exactly 1/√(1 + c²·var(e)/var(x)).
        let e: Vec<f64> = (0..n).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
        let (mx, me) = (mean(&x), mean(&e));
        let cov: f64 = x.iter().zip(&e).map(|(a, b)| (a - mx) * (b - me)).sum();
        let vx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
        let e: Vec<f64> = e.iter().zip(&x).map(|(b, a)| b - me - cov / vx * (a - mx)).collect();
        let ve: f64 = e.iter().map(|b| b * b).sum();
        let c = (3.0 * vx / ve).sqrt(); // r = 1/√(1 + 3) = 0.5
        let y: Vec<f64> = x.iter().zip(&e).map(|(a, b)| a + c * b).collect();
        let (r, low, high) = pearson(&x, &y);
        assert!((r - 0.5).abs() < 1e-9, "{r}");
        assert!((low - lo).abs() < 1e-3 && (high - hi).abs() < 1e-3, "{low} {high} vs {lo} {hi}");
    }

    #[test]
    fn bootstrap_interval_covers_the_statistic_and_is_reproducible() {
        let v: Vec<f64> = (0..50).map(|i| ((i * 7919) % 97) as f64 / 97.0).collect();
        let (lo, hi) = bootstrap_ci(&v, std, 3);
        assert!(lo < std(&v) && std(&v) < hi, "{lo} {} {hi}", std(&v));
        assert_eq!((lo, hi), bootstrap_ci(&v, std, 3));
        // A constant sample has no spread, in every resample.
        assert_eq!(bootstrap_ci(&[2.0; 10], iqr, 1), (0.0, 0.0));
    }

    fn row(width: usize, std: (f64, f64, f64), iqr: (f64, f64, f64)) -> WidthCsv {
        WidthCsv {
            width,
            parameters: 0,
            runs: 0,
            diverged: 0,
            train_loss_mean: 0.0,
            test_loss_mean: 0.0,
            test_loss_min: 0.0,
            test_loss_max: 0.0,
            test_loss_std: std.0,
            test_loss_std_low: std.1,
            test_loss_std_high: std.2,
            test_loss_iqr: iqr.0,
            test_loss_iqr_low: iqr.1,
            test_loss_iqr_high: iqr.2,
            train_test_pearson: 0.0,
            train_test_pearson_low: 0.0,
            train_test_pearson_high: 0.0,
            test_acc_mean: 0.0,
            last_quarter_train_loss_drop: 0.0,
        }
    }

    #[test]
    fn verdict_needs_both_intervals_disjoint() {
        let wide = row(25, (0.2, 0.15, 0.25), (0.3, 0.2, 0.4));
        let narrow = row(500, (0.05, 0.04, 0.06), (0.06, 0.05, 0.08));
        assert_eq!(verdict(&wide, &narrow), "narrows");
        assert_eq!(verdict(&narrow, &wide), "widens");
        let overlapping_iqr = row(500, (0.05, 0.04, 0.06), (0.1, 0.05, 0.25));
        assert_eq!(verdict(&wide, &overlapping_iqr), "shows no clear change");
    }
}
