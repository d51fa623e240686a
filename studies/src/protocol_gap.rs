//! What makes Keskar et al.'s generalization gap appear or vanish: the SB − LB test-accuracy
//! gap under the paper's protocol and under each single change from it.
//!
//! The paper's protocol is its code's (Keras 1, `../shared/reference/papers.md` §1–2, checked in
//! the repository keskarnitish/large-batch-training): Glorot-uniform initialization with zero
//! biases, `BatchNormalization(mode=2)` (each batch normalized by its own statistics, in
//! evaluation too, evaluated in batches of 5000), Keras 1.2's batch-norm ε 1e-3 and momentum
//! 0.99, Adam with Keras' defaults, and the text's stopping rule: until the training loss stops
//! improving (here: no new minimum for 5 epochs, at most 100). Each variant changes one thing:
//!
//! - batch norm evaluated on its running statistics (PyTorch's inference mode): the paper
//!   protocol's own runs, evaluated at the end on running statistics as well, so that the
//!   training (and the stopping rule, which reads the training loss as evaluated) is the same;
//! - PyTorch's initialization;
//! - the stopping rule: a fixed 20 epochs (the code's `nb_epoch`), a fixed 100, or LB trained
//!   for as many updates as SB makes in 20 epochs (Hoffer et al. 2017's "regime adaptation");
//! - LB's learning rate scaled by B_LB/B_SB (Goyal et al. 2017's linear rule, here without its
//!   warm-up) or by √(B_LB/B_SB) (Hoffer et al. 2017);
//! - ghost batch norm for LB: batch norm over consecutive pieces of 128 samples (Hoffer et al.).
//!
//! SB and LB of a seed start from the same weights; a variant's runs share their seeds with the
//! paper protocol's, so every variant differs from it only in what it changes. Runs that a
//! variant does not change (SB under an LB-only change) are the paper protocol's own records.
//!
//! Subjects: at the default scale, the F1 and C1 families of `keskar`'s default scale on
//! generated MNIST-1D (SB 32, LB 512), 5 seeds; at paper scale, F1 on MNIST at the paper's shape
//! and batches (256 and 10 % of the training set, 6000), 3 seeds.
//!
//! Command: `cargo run --release -p studies -- protocol-gap` (about 30 minutes on 2 cores; it
//! prints its prediction first).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;
use datasets::Dataset;
use nets::objective::BatchNormMode;
use nets::train::{EpochMetrics, Init, NetSpec, Protocol, RunSeeds, TrainConfig, Trained};
use serde::{Deserialize, Serialize};

use crate::data::{DataDir, DataSpec};
use crate::harness::{self, CellProgress, GridArgs, Record, Report, Study, fill};
use crate::keskar::Regime;
use crate::plot::{self, Forest, ForestRow};
use crate::predict::{Prediction, Run};
use crate::scale::{Scale, scale_spec};
use crate::stats::{mean, welch_difference};
use crate::usage;

/// One line: what `studies list` and `--help` say.
pub const ABOUT: &str =
    "Keskar's SB−LB gap under the paper's protocol and each single change: BN mode, init, stopping, LR scaling, ghost BN";

/// Arguments of `studies protocol-gap`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Size: smoke (seconds), default (F1 and C1 on generated MNIST-1D), paper (F1 on MNIST).
    #[arg(long, value_enum, default_value_t = Scale::Default)]
    pub scale: Scale,
    /// Seeds per variant [default: 5; 3 at paper scale].
    #[arg(long)]
    pub seeds: Option<usize>,
    /// Variants to run, comma-separated (default: all); the paper protocol's runs are always
    /// included. Accepted: the names in the table (paper, running-statistics, torch-init,
    /// fixed-short, fixed-long, equal-updates, lr-linear, lr-sqrt, ghost-bn).
    #[arg(long, value_delimiter = ',')]
    pub variants: Option<Vec<String>>,
    /// Train the subjects on this data instead of the scale's own (networks adapt to its shape;
    /// LB stays 10 % of the training set at paper scale): mnist1d, mnist1d-frozen, mnist,
    /// fashion-mnist, cifar-10, cifar-10-subset, cifar-100, optdigits, timit, npy:DIR.
    #[arg(long, value_parser = crate::data::data_name)]
    pub data: Option<String>,
    /// Folder holding real datasets (MNIST at paper scale) [default: $FLATLAND_DATA, else the
    /// cache folder].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub grid: GridArgs,
}

// The study's settings.
/// Patience of the paper protocol's stopping rule (epochs without a new minimum of the training
/// loss), and its cap, at the smoke scale and at the others.
const PATIENCE: [usize; 2] = [1, 5];
/// See [`PATIENCE`].
const CAP: [usize; 2] = [4, 100];
/// The fixed budgets of the stopping variants: the code's 20 epochs and a long 100, at the smoke
/// scale and at the others.
const SHORT: [usize; 2] = [2, 20];
/// See [`SHORT`].
const LONG: [usize; 2] = [4, 100];
/// Samples per ghost batch (Hoffer et al. 2017).
const GHOST: usize = 128;
/// Seeds at the smoke and default scales, and at paper scale.
const SEEDS: [usize; 2] = [5, 3];

/// One single change from the paper's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Paper,
    RunningStatistics,
    TorchInit,
    FixedShort,
    FixedLong,
    EqualUpdates,
    LrLinear,
    LrSqrt,
    GhostBn,
}

const VARIANTS: [Variant; 9] = [
    Variant::Paper,
    Variant::RunningStatistics,
    Variant::TorchInit,
    Variant::FixedShort,
    Variant::FixedLong,
    Variant::EqualUpdates,
    Variant::LrLinear,
    Variant::LrSqrt,
    Variant::GhostBn,
];

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Paper => "paper",
            Variant::RunningStatistics => "running-statistics",
            Variant::TorchInit => "torch-init",
            Variant::FixedShort => "fixed-short",
            Variant::FixedLong => "fixed-long",
            Variant::EqualUpdates => "equal-updates",
            Variant::LrLinear => "lr-linear",
            Variant::LrSqrt => "lr-sqrt",
            Variant::GhostBn => "ghost-bn",
        }
    }

    /// The SB and LB configs of this variant, from the paper protocol's.
    fn configs(self, paper: &TrainConfig, sb: usize, lb: usize, train_len: usize, small: bool) -> (TrainConfig, TrainConfig) {
        let i = usize::from(!small);
        let (sb_paper, lb_paper) = (TrainConfig { batch_size: sb, ..paper.clone() }, TrainConfig { batch_size: lb, ..paper.clone() });
        let fixed = |c: &TrainConfig, epochs| TrainConfig { epochs, patience: None, ..c.clone() };
        let both = |f: &dyn Fn(&TrainConfig) -> TrainConfig| (f(&sb_paper), f(&lb_paper));
        let ratio = lb as f64 / sb as f64;
        match self {
            Variant::Paper => (sb_paper.clone(), lb_paper.clone()),
            // The paper's runs themselves, also evaluated on running statistics (`Outcome`).
            Variant::RunningStatistics => (sb_paper.clone(), lb_paper.clone()),
            Variant::TorchInit => both(&|c| TrainConfig { init: Init::Torch, ..c.clone() }),
            Variant::FixedShort => both(&|c| fixed(c, SHORT[i])),
            Variant::FixedLong => both(&|c| fixed(c, LONG[i])),
            Variant::EqualUpdates => {
                // SB's updates in the short budget, LB given as many (rounded up to whole epochs).
                let updates = SHORT[i] * train_len.div_ceil(sb);
                (fixed(&sb_paper, SHORT[i]), fixed(&lb_paper, updates.div_ceil(train_len.div_ceil(lb))))
            }
            Variant::LrLinear => {
                (sb_paper.clone(), TrainConfig { learning_rate: paper.learning_rate * ratio, ..lb_paper.clone() })
            }
            Variant::LrSqrt => {
                (sb_paper.clone(), TrainConfig { learning_rate: paper.learning_rate * ratio.sqrt(), ..lb_paper.clone() })
            }
            Variant::GhostBn => (sb_paper.clone(), TrainConfig { ghost_batch: Some(GHOST), ..lb_paper.clone() }),
        }
    }

    /// What the variant changes, for the table.
    fn describe(self, short: usize, long: usize) -> String {
        match self {
            Variant::Paper => "the paper's protocol (Keras code; stop when the training loss stops improving)".into(),
            Variant::RunningStatistics => "batch norm: running statistics in evaluation".into(),
            Variant::TorchInit => "initialization: PyTorch's".into(),
            Variant::FixedShort => format!("stopping: a fixed {short} epochs"),
            Variant::FixedLong => format!("stopping: a fixed {long} epochs"),
            Variant::EqualUpdates => format!("stopping: LB as many updates as SB in {short} epochs"),
            Variant::LrLinear => "LB learning rate × B_LB/B_SB (Goyal's SGD rule; with Adam)".into(),
            Variant::LrSqrt => "LB learning rate × √(B_LB/B_SB)".into(),
            Variant::GhostBn => format!("LB ghost batch norm over {GHOST} samples"),
        }
    }
}

/// One cell: one network trained once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Subject: network name.
    pub net: String,
    /// Training data.
    pub data: DataSpec,
    /// The network's exact shape (batch norm's constants included).
    pub spec: NetSpec,
    /// SB or LB.
    pub regime: Regime,
    /// Every training setting, each protocol item by name.
    pub train: TrainConfig,
    /// Index of the seed.
    pub seed_index: usize,
    /// Seeds: init shared by SB and LB and by every variant; order shared by the variants.
    pub seeds: RunSeeds,
    /// The variants this run belongs to (a run that several variants share is trained once).
    pub variants: Vec<String>,
    /// The short and long fixed budgets of the stopping variants (for the table's words).
    pub budgets: [usize; 2],
    /// Training samples (to count updates: ⌈samples / batch⌉ per epoch).
    pub train_samples: usize,
}

/// What one run gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The run, evaluated every epoch as its config says.
    pub trained: Trained,
    /// For a run evaluated on batch statistics: its final weights evaluated on batch norm's
    /// running statistics instead (inference mode), the running-statistics variant's numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_statistics: Option<EpochMetrics>,
}

impl Outcome {
    /// The last epoch's metrics under `variant`'s evaluation (`None` for a diverged run).
    fn last(&self, variant: Variant) -> Option<EpochMetrics> {
        if !self.trained.finished() {
            return None;
        }
        match variant {
            Variant::RunningStatistics => self.running_statistics.clone(),
            _ => self.trained.curves.last().cloned(),
        }
    }
}

struct ProtocolGap {
    cells: Vec<Cell>,
    data: Vec<(DataSpec, Dataset)>,
    device: nets::Device,
}

impl Study for ProtocolGap {
    type Cell = Cell;
    type Outcome = Outcome;
    const NAME: &'static str = "protocol-gap";

    fn cells(&self) -> Vec<Cell> {
        self.cells.clone()
    }

    fn label(cell: &Cell) -> String {
        format!("{}-{:?}-{}-seed{}", cell.net, cell.regime, cell.variants[0], cell.seed_index)
    }

    fn run_cell(&self, cell: &Cell, progress: &CellProgress) -> Result<Outcome> {
        let data = crate::data::find(&self.data, &cell.data)?;
        let cap = cell.train.epochs;
        let trained = cell.spec.train(data, &cell.train, cell.seeds, None, &self.device, &mut |m, _| {
            let msg = format!("epoch {:>3}/{cap}  train loss {:.4}  test {:5.1}%", m.epoch, m.train_loss, m.test_acc);
            if m.epoch % 20 == 0 { progress.log(&msg) } else { progress.message(&msg) }
        });
        let running_statistics = match trained.curves.last() {
            Some(last) if trained.finished() && cell.train.evaluation == BatchNormMode::Batch => {
                let w = &trained.weights;
                let mut eval = cell.spec.training_loss(w, data, cell.train.eval_batch, BatchNormMode::Running, &self.device);
                let params = w.params_f64();
                let (train_loss, train_acc) = eval.evaluate(&params, &w.buffers, &data.train);
                let (test_loss, test_acc) = eval.evaluate(&params, &w.buffers, &data.test);
                Some(EpochMetrics { epoch: last.epoch, train_loss, train_acc, test_loss, test_acc })
            }
            _ => None,
        };
        Ok(Outcome { trained, running_statistics })
    }

    fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<Report> {
        report(records, dir)
    }

    /// Parameters × samples seen: proportional to a dense net's training work.
    fn cost(&self, cell: &Cell) -> f64 {
        cell.spec.parameter_count(&self.device) as f64 * (cell.train.epochs * cell.train_samples) as f64
    }

    fn predict(&self, cells: &[&Cell]) -> Result<Option<Prediction>> {
        let runs: Vec<Run<'_>> =
            cells.iter().map(|c| Run::of(&c.spec, &c.train, &c.data, &self.data)).collect::<Result<_>>()?;
        crate::predict::price(&runs, "every run to its cap", &self.device).map(Some)
    }
}

/// `studies report protocol-gap`.
pub fn report_saved(out: &Path) -> Result<Report> {
    harness::report_saved::<ProtocolGap>(out)
}

/// The subjects of a scale: (name, network, data, SB batch, LB batch or 10 % of the data).
fn subjects(scale: Scale) -> Vec<(String, NetSpec, DataSpec, usize, Option<usize>)> {
    match scale {
        Scale::Paper => vec![("F1".into(), NetSpec::Mlp(nets::mlp::f1()), DataSpec::Mnist, 256, None)],
        small => {
            let spec = scale_spec(small);
            let mut out = Vec::new();
            for want in ["F1", "C1"] {
                if let Some((name, net, data)) = spec.nets.iter().find(|(n, ..)| *n == want) {
                    out.push((name.to_string(), net.clone(), data.clone(), spec.sb, spec.lb));
                }
            }
            out
        }
    }
}

/// Builds the grid, prints its predicted time, runs it, reports.
pub fn run(args: Args) -> Result<Report> {
    let small = args.scale == Scale::Smoke;
    let i = usize::from(!small);
    let seeds = args.seeds.unwrap_or(SEEDS[usize::from(args.scale == Scale::Paper)]);
    if seeds < 2 {
        usage!("--seeds {seeds}: a gap's interval needs at least 2 seeds per regime (accepted: 2 or more)");
    }
    let chosen: Vec<Variant> = match &args.variants {
        None => VARIANTS.to_vec(),
        Some(list) => {
            let mut chosen = vec![Variant::Paper];
            for name in list {
                match VARIANTS.iter().find(|v| v.name() == name.trim()) {
                    Some(v) if !chosen.contains(v) => chosen.push(*v),
                    Some(_) => {}
                    None => usage!(
                        "--variants: unknown variant '{name}'; accepted: {}",
                        VARIANTS.map(Variant::name).join(", ")
                    ),
                }
            }
            chosen
        }
    };
    let (backend, device, jobs) = args.grid.validate()?;
    let subjects = subjects(args.scale);
    let dir = DataDir::resolve(args.data_dir.as_deref());
    let nets: Vec<(String, NetSpec, DataSpec)> = subjects.iter().map(|s| (s.0.clone(), s.1.clone(), s.2.clone())).collect();
    let (nets, data) = crate::data::on_data(nets, args.data.as_deref(), &dir)?;
    let subjects: Vec<(String, NetSpec, DataSpec, usize, Option<usize>)> =
        nets.into_iter().zip(&subjects).map(|((n, net, d), s)| (n, net, d, s.3, s.4)).collect();
    let master = args.grid.seed;
    let mut cells: Vec<Cell> = Vec::new();
    for (net, spec, data_spec, sb, lb) in &subjects {
        let train_len = crate::data::find(&data, data_spec)?.train.len();
        let lb = lb.unwrap_or(train_len / 10).max(1);
        let spec = spec.clone().with_batch_norm(Protocol::Keras.batch_norm());
        let paper = TrainConfig { patience: Some(PATIENCE[i]), ..TrainConfig::adam(*sb, CAP[i], 1e-3) }
            .with_protocol(Protocol::Keras);
        // Every variant is laid out, so that a run's list of variants (part of its record's
        // identity) does not depend on which were chosen; the chosen ones' runs are kept below.
        for variant in VARIANTS {
            let (sb_train, lb_train) = variant.configs(&paper, *sb, lb, train_len, small);
            for (regime, train) in [(Regime::SB, sb_train), (Regime::LB, lb_train)] {
                for seed_index in 0..seeds {
                    let (s, r) = (seed_index.to_string(), format!("{regime:?}"));
                    let cell = Cell {
                        net: net.clone(),
                        data: data_spec.clone(),
                        spec: spec.clone(),
                        regime,
                        train: train.clone(),
                        seed_index,
                        seeds: RunSeeds {
                            init: harness::derive_seed(master, &["protocol-gap", net, "init", &s]),
                            order: harness::derive_seed(master, &["protocol-gap", net, &r, "order", &s]),
                        },
                        variants: vec![variant.name().to_string()],
                        budgets: [SHORT[i], LONG[i]],
                        train_samples: train_len,
                    };
                    // A run several variants share is one cell listing them all.
                    let same = |c: &Cell| c.net == cell.net && c.regime == regime && c.seed_index == seed_index && c.train == cell.train;
                    match cells.iter_mut().find(|c| same(c)) {
                        Some(c) => c.variants.push(variant.name().to_string()),
                        None => cells.push(cell),
                    }
                }
            }
        }
    }
    cells.retain(|c| chosen.iter().any(|v| c.variants.iter().any(|n| n == v.name())));
    let env = crate::env::Env::capture(backend, &device, jobs).with_datasets(&data, &dir)?;
    let opts = args.grid.options(jobs, env)?;
    harness::execute(&ProtocolGap { cells, data, device }, &opts)
}

/// A row of `protocol-gap.csv`: one variant of one subject.
#[derive(Serialize)]
struct GapCsv {
    net: String,
    variant: String,
    change: String,
    sb_runs: usize,
    lb_runs: usize,
    diverged: usize,
    sb_test_acc: f64,
    lb_test_acc: f64,
    gap: f64,
    gap_low: f64,
    gap_high: f64,
    p: f64,
    sb_epochs: f64,
    lb_epochs: f64,
    sb_updates: f64,
    lb_updates: f64,
}

fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<Report> {
    let first = &records[0].config;
    let [short, long] = first.budgets;
    let mut nets: Vec<String> = records.iter().map(|r| r.config.net.clone()).collect();
    nets.dedup();
    let nets = harness::distinct(nets);
    let mut md = String::from("# The generalization gap under the paper's protocol and each single change\n\n");
    let paper_lb = records.iter().find(|r| r.config.regime == Regime::LB && r.config.variants.iter().any(|v| v == "paper"));
    writeln!(
        md,
        "{}\n",
        fill(
            include_str!("text/protocol-gap.md"),
            &[
                ("sb", first.train.batch_size.to_string()),
                ("lb", paper_lb.map_or("–".into(), |r| r.config.train.batch_size.to_string())),
                ("patience", first.train.patience.map_or("–".into(), |p| p.to_string())),
                ("cap", first.train.epochs.to_string()),
                ("lr", first.train.learning_rate.to_string()),
                ("eval_batch", first.train.eval_batch.to_string()),
                ("bn_epsilon", first.spec.batch_norm().map_or("–".into(), |n| format!("{:e}", n.epsilon))),
                ("bn_momentum", first.spec.batch_norm().map_or("–".into(), |n| n.momentum.to_string())),
                ("code", harness::distinct(records.iter().map(|r| r.env.build.short())).join(", ")),
            ]
        )
    )?;
    if let Some(mix) = harness::machine_mix(records) {
        writeln!(md, "{mix}\n")?;
    }
    let mut csv = Vec::new();
    let mut forests = Vec::new();
    for net in &nets {
        let data = records.iter().find(|r| &r.config.net == net).map_or(String::new(), |r| r.config.data.name().to_string());
        writeln!(md, "## {net} on {data}\n")?;
        md.push_str(
            "| variant | change from the paper's protocol | SB test % | LB test % | gap SB − LB [95 % CI] | p | \
             epochs SB / LB | updates SB / LB | runs SB / LB | diverged |\n|---|---|---:|---:|---|---:|---|---|---|---:|\n",
        );
        let mut rows = Vec::new();
        for variant in VARIANTS {
            let of = |regime| -> Vec<&Record<Cell, Outcome>> {
                records
                    .iter()
                    .filter(|r| &r.config.net == net && r.config.regime == regime && r.config.variants.iter().any(|v| v == variant.name()))
                    .collect()
            };
            let (sb, lb) = (of(Regime::SB), of(Regime::LB));
            if sb.is_empty() || lb.is_empty() {
                continue;
            }
            let finished = |runs: &[&Record<Cell, Outcome>]| -> Vec<(f64, f64, f64)> {
                runs.iter()
                    .filter_map(|r| {
                        let last = r.outcome.last(variant)?;
                        let steps = (last.epoch * r.config.train_samples.div_ceil(r.config.train.batch_size)) as f64;
                        Some((last.test_acc, last.epoch as f64, steps))
                    })
                    .collect()
            };
            let (sb_done, lb_done) = (finished(&sb), finished(&lb));
            let acc = |v: &[(f64, f64, f64)]| v.iter().map(|t| t.0).collect::<Vec<_>>();
            let avg = |v: &[(f64, f64, f64)], f: fn(&(f64, f64, f64)) -> f64| mean(&v.iter().map(f).collect::<Vec<_>>());
            let (sb_acc, lb_acc) = (acc(&sb_done), acc(&lb_done));
            let (gap, low, high, p) = welch_difference(&sb_acc, &lb_acc).unwrap_or((mean(&sb_acc) - mean(&lb_acc), f64::NAN, f64::NAN, f64::NAN));
            let row = GapCsv {
                net: net.clone(),
                variant: variant.name().into(),
                change: variant.describe(short, long),
                sb_runs: sb.len(),
                lb_runs: lb.len(),
                diverged: sb.len() + lb.len() - sb_done.len() - lb_done.len(),
                sb_test_acc: mean(&sb_acc),
                lb_test_acc: mean(&lb_acc),
                gap,
                gap_low: low,
                gap_high: high,
                p,
                sb_epochs: avg(&sb_done, |t| t.1),
                lb_epochs: avg(&lb_done, |t| t.1),
                sb_updates: avg(&sb_done, |t| t.2),
                lb_updates: avg(&lb_done, |t| t.2),
            };
            writeln!(
                md,
                "| {} | {} | {:.2} | {:.2} | {:+.2} [{:+.2}, {:+.2}] | {:.3} | {:.1} / {:.1} | {:.0} / {:.0} | {} / {} | {} |",
                row.variant,
                row.change,
                row.sb_test_acc,
                row.lb_test_acc,
                row.gap,
                row.gap_low,
                row.gap_high,
                row.p,
                row.sb_epochs,
                row.lb_epochs,
                row.sb_updates,
                row.lb_updates,
                row.sb_runs,
                row.lb_runs,
                row.diverged,
            )?;
            rows.push(ForestRow { label: row.variant.clone(), value: row.gap, low: row.gap_low, high: row.gap_high });
            csv.push(row);
        }
        md.push('\n');
        forests.push(Forest { title: format!("{net} on {data}"), x_label: "gap SB − LB, test accuracy points (95 % CI)".into(), rows });
    }
    let diverged = records.iter().filter(|r| !r.outcome.trained.finished()).count();
    if diverged > 0 {
        writeln!(md, "{diverged} runs diverged (column *diverged*, where a run that several variants share counts in each); they are left out of the means.\n")?;
    }
    std::fs::create_dir_all(dir)?;
    plot::write_forests(&dir.join("protocol-gap"), &forests)?;
    harness::write_csv(&dir.join("protocol-gap.csv"), &csv)?;
    harness::write_atomic(&dir.join("protocol-gap.md"), md.as_bytes())?;
    Ok(Report::text(md))
}
