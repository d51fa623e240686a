//! Keskar, Mudigere, Nocedal, Smelyanskiy & Tang, "On Large-Batch Training for Deep Learning:
//! Generalization Gap and Sharp Minima" (ICLR 2017), Table 2: train and test accuracy of
//! small-batch (SB) and large-batch (LB) Adam, mean ± std over seeds, beside the paper's numbers.
//!
//! Command: `cargo run --release -p studies -- keskar [--scale smoke|default|paper]`.
//! The default scale trains F1- and C1-family nets on generated MNIST-1D (no download) and takes
//! a few minutes on 2 cores; `smoke` is a seconds-long version for tests.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::ValueEnum;
use datasets::Dataset;
use nets::mlp::MlpSpec;
use nets::shallow::ShallowSpec;
use nets::train::{EpochMetrics, NetSpec, RunSeeds, TrainConfig, Trained as Outcome};
use nets::vgg::VggSpec;
use serde::{Deserialize, Serialize};

use crate::data::{DataDir, DataSpec};
use crate::harness::{self, CellProgress, GridArgs, Record, Study};
use crate::plot::{self, PALETTE, Panel, Series};
use crate::stats::{mean, std, welch_t_test};

/// Arguments of `studies keskar`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Size of the study: `smoke` (seconds, for tests), `default` (generated MNIST-1D, minutes on
    /// a laptop), `paper` (the paper's networks and datasets).
    #[arg(long, value_enum, default_value_t = Scale::Default)]
    pub scale: Scale,
    /// Networks to train, comma-separated (F1, F2, C1, C2, C3, C4; which exist depends on the
    /// scale). Default: F1,C1 at the small scales, all six at paper scale.
    #[arg(long, value_delimiter = ',')]
    pub nets: Option<Vec<String>>,
    /// Seeds (independent runs) per network and regime.
    #[arg(long, default_value_t = 5)]
    pub seeds: usize,
    /// Epochs per run (default: the scale's own; at paper scale, the cap of the stopping rule).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Folder holding the real datasets, one subfolder each (mnist, cifar-10, cifar-100, timit)
    /// [default: $FLATLAND_DATA, else the platform cache folder]. Paper scale only.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub grid: GridArgs,
}

/// Size of the study.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// Tiny nets, a few epochs: an end-to-end check in seconds.
    Smoke,
    /// F1- and C1-family nets on generated MNIST-1D.
    Default,
    /// The paper's networks on MNIST, TIMIT, CIFAR-10 and CIFAR-100.
    Paper,
}

/// Small batch or large batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Regime {
    /// Small batch (256 in the paper).
    SB,
    /// Large batch (10 % of the training set in the paper).
    LB,
}

/// One cell: a network trained once in one regime from one seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Table-2 name of the network (F1 … C4); at small scales, the family it is scaled from.
    pub net: String,
    /// Study scale.
    pub scale: Scale,
    /// Training data.
    pub data: DataSpec,
    /// The network's exact shape.
    pub spec: NetSpec,
    /// SB or LB.
    pub regime: Regime,
    /// Optimizer settings (Adam), batch size and epochs.
    pub train: TrainConfig,
    /// Index of the seed (0-based) among the cell's repeats.
    pub seed_index: usize,
    /// Seeds derived from the master seed: the init seed is shared by SB and LB of the same
    /// index (both start from the same weights, as in the paper's code); the order seed is not.
    pub seeds: RunSeeds,
}



/// The settings of one scale: networks with their data, batch sizes, epochs.
struct ScaleSpec {
    nets: Vec<(&'static str, NetSpec, DataSpec)>,
    default_nets: &'static [&'static str],
    sb: usize,
    /// Large batch; `None` is the paper's 10 % of the training set.
    lb: Option<usize>,
    epochs: usize,
    /// Stopping rule (see [`TrainConfig::patience`]); `None` trains exactly `epochs`.
    patience: Option<usize>,
    learning_rate: f64,
}

/// Hyperparameters of each scale, with reasons.
fn scale_spec(scale: Scale) -> ScaleSpec {
    // A 1-D signal of 40 points enters the convolutional nets as a 1 × 40 image.
    let signal = [1, 1, 40];
    match scale {
        // Seconds: tiny nets, few samples, 3 epochs. LB/SB = 10 as in the paper.
        Scale::Smoke => {
            let data = DataSpec::Mnist1d { train: 640, test: 200, seed: 42 };
            ScaleSpec {
                nets: vec![
                    ("F1", NetSpec::Mlp(MlpSpec { input: 40, width: 32, depth: 2, classes: 10 }), data.clone()),
                    ("F2", NetSpec::Mlp(MlpSpec { input: 40, width: 32, depth: 3, classes: 10 }), data.clone()),
                    ("C1", NetSpec::Shallow(ShallowSpec { input: signal, channels: 8, kernel: 5, dense: [32, 16], dropout: 0.5, classes: 10 }), data.clone()),
                    ("C2", NetSpec::Vgg(VggSpec { input: signal, stacks: vec![(8, 1), (16, 1)], dense: 16, classes: 10 }), data),
                ],
                default_nets: &["F1", "C1"],
                sb: 16,
                lb: Some(160),
                epochs: 3,
                patience: None,
                learning_rate: 1e-3,
            }
        }
        // Minutes on 2 cores. F1 and C1 keep their families' layout (BN after every layer,
        // dropout ½ on C1's dense layers) at widths that fit MNIST-1D's 40 features; 60 epochs
        // bring both regimes to ~100 % training accuracy.
        Scale::Default => {
            let data = DataSpec::Mnist1d { train: 4000, test: 1000, seed: 42 };
            ScaleSpec {
                nets: vec![
                    ("F1", NetSpec::Mlp(MlpSpec { input: 40, width: 256, depth: 3, classes: 10 }), data.clone()),
                    ("F2", NetSpec::Mlp(MlpSpec { input: 40, width: 256, depth: 5, classes: 10 }), data.clone()),
                    ("C1", NetSpec::Shallow(ShallowSpec { input: signal, channels: 32, kernel: 5, dense: [128, 64], dropout: 0.5, classes: 10 }), data.clone()),
                    ("C2", NetSpec::Vgg(VggSpec { input: signal, stacks: vec![(32, 2), (64, 2), (128, 2)], dense: 128, classes: 10 }), data),
                ],
                default_nets: &["F1", "C1"],
                sb: 32,
                lb: Some(512),
                epochs: 60,
                patience: None,
                learning_rate: 1e-3,
            }
        }
        // The paper (§2.2): SB 256, LB 10 % of the training set, trained until the training
        // loss stops improving: here, until it has not reached a new minimum for 5 epochs,
        // capped at 100 epochs.
        Scale::Paper => ScaleSpec {
            nets: vec![
                ("F1", NetSpec::Mlp(nets::mlp::f1()), DataSpec::Mnist),
                ("F2", NetSpec::Mlp(nets::mlp::f2()), DataSpec::Timit),
                ("C1", NetSpec::Shallow(nets::shallow::c1()), DataSpec::Cifar10),
                ("C2", NetSpec::Vgg(nets::vgg::c2()), DataSpec::Cifar10),
                ("C3", NetSpec::Shallow(nets::shallow::c3()), DataSpec::Cifar100),
                ("C4", NetSpec::Vgg(nets::vgg::c4()), DataSpec::Cifar100),
            ],
            default_nets: &["F1", "F2", "C1", "C2", "C3", "C4"],
            sb: 256,
            lb: None,
            epochs: 100,
            patience: Some(5),
            learning_rate: 1e-3,
        },
    }
}

/// Where each paper-scale network's data comes from (Keskar Table 1).
const PAPER_DATA: [(&str, &str); 6] = [
    ("F1", "MNIST"),
    ("F2", "TIMIT frame features (user-supplied)"),
    ("C1", "CIFAR-10"),
    ("C2", "CIFAR-10"),
    ("C3", "CIFAR-100"),
    ("C4", "CIFAR-100"),
];

/// Keskar Table 2, mean accuracies (%): train SB, train LB, test SB, test LB.
const PAPER_TABLE2: [(&str, [f64; 4]); 6] = [
    ("F1", [99.66, 99.92, 98.03, 97.81]),
    ("F2", [99.99, 98.35, 64.02, 59.45]),
    ("C1", [99.89, 99.66, 80.04, 77.26]),
    ("C2", [99.99, 99.99, 89.24, 87.26]),
    ("C3", [99.56, 99.88, 49.58, 46.45]),
    ("C4", [99.10, 99.57, 63.08, 57.81]),
];

fn paper_row(net: &str, regime: Regime) -> (f64, f64) {
    let (_, v) = PAPER_TABLE2.iter().find(|(n, _)| *n == net).expect("every net has a paper row");
    match regime {
        Regime::SB => (v[0], v[2]),
        Regime::LB => (v[1], v[3]),
    }
}

/// The Keskar study: its grid and the shared data.
pub struct Keskar {
    cells: Vec<Cell>,
    /// Every dataset the grid uses, loaded once.
    data: Vec<(DataSpec, Dataset)>,
    device: nets::Device,
}

impl Study for Keskar {
    type Cell = Cell;
    type Outcome = Outcome;
    const NAME: &'static str = "keskar";

    fn cells(&self) -> Vec<Cell> {
        self.cells.clone()
    }

    fn label(cell: &Cell) -> String {
        format!("{}-{:?}-seed{}", cell.net, cell.regime, cell.seed_index)
    }

    fn run_cell(&self, cell: &Cell, progress: &CellProgress) -> Result<Outcome> {
        let epochs = cell.train.epochs;
        let data = &self.data.iter().find(|(spec, _)| *spec == cell.data).expect("every cell's data is loaded").1;
        Ok(cell.spec.train(data, &cell.train, cell.seeds, None, &self.device, &mut |m, _| {
            let msg = format!("epoch {:>3}/{epochs}  train loss {:.4}  train {:5.1}%  test {:5.1}%", m.epoch, m.train_loss, m.train_acc, m.test_acc);
            if m.epoch % 10 == 0 || m.epoch == epochs {
                progress.log(&msg);
            } else {
                progress.message(&msg);
            }
        }))
    }
}

/// Validates the arguments, builds the grid, runs it and writes the report.
pub fn run(args: Args) -> Result<()> {
    let spec = scale_spec(args.scale);
    let known: Vec<&str> = spec.nets.iter().map(|(n, ..)| *n).collect();
    let given: Vec<String> = match &args.nets {
        Some(list) => list.iter().map(|n| n.trim().to_string()).collect(),
        None => spec.default_nets.iter().map(|s| s.to_string()).collect(),
    };
    let scale = format!("{:?}", args.scale).to_lowercase();
    let mut names = Vec::new();
    for n in &given {
        match known.iter().find(|k| k.eq_ignore_ascii_case(n)) {
            Some(k) => names.push(k.to_string()),
            None => bail!("--nets: unknown network '{n}' at scale {scale}; accepted: {}", known.join(", ")),
        }
    }
    if names.is_empty() {
        bail!("--nets: no network given; accepted: {}", known.join(", "));
    }
    if args.seeds == 0 {
        bail!("--seeds 0: at least one seed is needed (accepted: 1 or more)");
    }
    if args.epochs == Some(0) {
        bail!("--epochs 0: at least one epoch is needed (accepted: 1 or more)");
    }
    let (backend, device, jobs) = args.grid.validate()?;
    // Load every dataset first: missing ones fail here, all named, before any training.
    let data_dir = DataDir::resolve(args.data_dir.as_deref());
    let mut data: Vec<(DataSpec, Dataset)> = Vec::new();
    let mut missing = Vec::new();
    for name in &names {
        let (_, _, spec_data) = spec.nets.iter().find(|(n, ..)| n == name).expect("validated");
        if !data.iter().any(|(d, _)| d == spec_data) {
            match spec_data.load(&data_dir) {
                Ok(d) => data.push((spec_data.clone(), d)),
                Err(e) => missing.push(format!("{e:#}")),
            }
        }
    }
    if !missing.is_empty() {
        bail!("{}", missing.join("\n"));
    }
    harness::check_writable(&args.grid.out)?;

    let epochs = args.epochs.unwrap_or(spec.epochs);
    let master = args.grid.seed;
    let mut cells = Vec::new();
    for name in &names {
        let (_, net, data_spec) = spec.nets.iter().find(|(n, ..)| n == name).expect("validated");
        let dataset = &data.iter().find(|(d, _)| d == data_spec).expect("loaded above").1;
        let mut net = net.clone();
        // F2's input and classes follow the user's TIMIT features.
        if let NetSpec::Mlp(m) = &mut net
            && *data_spec == DataSpec::Timit
        {
            m.input = dataset.sample_len();
            m.classes = dataset.classes;
        }
        for regime in [Regime::SB, Regime::LB] {
            let batch_size = match regime {
                Regime::SB => spec.sb,
                Regime::LB => spec.lb.unwrap_or(dataset.train.len() / 10),
            };
            for seed_index in 0..args.seeds {
                let i = seed_index.to_string();
                cells.push(Cell {
                    net: name.clone(),
                    scale: args.scale,
                    data: data_spec.clone(),
                    spec: net.clone(),
                    regime,
                    train: TrainConfig {
                        batch_size,
                        epochs,
                        learning_rate: spec.learning_rate,
                        eval_batch: 1000,
                        shuffle: true,
                        patience: spec.patience,
                    },
                    seed_index,
                    seeds: RunSeeds {
                        init: harness::derive_seed(master, &["keskar", name, "init", &i]),
                        order: harness::derive_seed(master, &["keskar", name, &format!("{regime:?}"), "order", &i]),
                    },
                });
            }
        }
    }
    let study = Keskar { cells, data, device: device.clone() };
    let env = crate::env::Env::capture(backend, &device, jobs);
    let opts = harness::GridOptions { out: args.grid.out.clone(), jobs, master_seed: master, env };
    let records = harness::run_grid(&study, &opts)?;
    let text = report(&records, &harness::study_dir::<Keskar>(&args.grid.out))?;
    println!("{text}");
    Ok(())
}

/// Metrics at the last epoch of a run.
fn last(outcome: &Outcome) -> &EpochMetrics {
    outcome.curves.last().expect("at least the epoch-0 evaluation")
}

/// One row of Table 2.
struct Row<'a> {
    net: &'a str,
    dataset: &'a str,
    regime: Regime,
    batch: usize,
    parameters: usize,
    train: Vec<f64>,
    test: Vec<f64>,
}

/// Writes `table2.{md,csv}` and `curves.{png,svg}` into `dir` from the records alone, and returns
/// the Markdown it wrote.
pub fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<String> {
    let mut nets: Vec<&str> = Vec::new();
    for r in records {
        if !nets.contains(&r.config.net.as_str()) {
            nets.push(&r.config.net);
        }
    }
    let mut rows = Vec::new();
    for &net in &nets {
        for regime in [Regime::SB, Regime::LB] {
            let runs: Vec<_> = records.iter().filter(|r| r.config.net == net && r.config.regime == regime).collect();
            let Some(first) = runs.first() else { continue };
            rows.push(Row {
                net,
                dataset: first.config.data.name(),
                regime,
                batch: first.config.train.batch_size,
                parameters: first.outcome.parameters,
                train: runs.iter().map(|r| last(&r.outcome).train_acc).collect(),
                test: runs.iter().map(|r| last(&r.outcome).test_acc).collect(),
            });
        }
    }

    let mut csv = String::from("net,dataset,regime,runs,train_acc_mean,train_acc_std,test_acc_mean,test_acc_std,paper_train_acc,paper_test_acc\n");
    for r in &rows {
        let (ptrain, ptest) = paper_row(r.net, r.regime);
        writeln!(
            csv,
            "{},{},{:?},{},{:.4},{:.4},{:.4},{:.4},{:.2},{:.2}",
            r.net, r.dataset, r.regime, r.train.len(), mean(&r.train), std(&r.train), mean(&r.test), std(&r.test), ptrain, ptest
        )?;
    }

    let first = &records[0];
    let mut md = String::new();
    writeln!(md, "# Keskar et al. 2017, Table 2: small-batch vs large-batch Adam\n")?;
    writeln!(
        md,
        "Scale `{:?}`, {} epochs, Adam (lr {}), master seed {}, backend {}, git {}{}. \
         Accuracy in %, mean ± std over seeds, at the last epoch; evaluation in inference mode.\n",
        first.config.scale,
        first.config.train.epochs,
        first.config.train.learning_rate,
        first.master_seed,
        first.env.backend,
        &first.env.git_commit[..first.env.git_commit.len().min(10)],
        if first.env.git_dirty { " (dirty)" } else { "" }
    )?;
    writeln!(md, "| net | params | data | regime | batch | runs | train acc | test acc | paper train | paper test |")?;
    writeln!(md, "|---|---:|---|---|---:|---:|---:|---:|---:|---:|")?;
    for r in &rows {
        let (ptrain, ptest) = paper_row(r.net, r.regime);
        writeln!(
            md,
            "| {} | {} | {} | {:?} | {} | {} | {:.2} ± {:.2} | {:.2} ± {:.2} | {:.2} | {:.2} |",
            r.net, r.parameters, r.dataset, r.regime, r.batch, r.train.len(), mean(&r.train), std(&r.train), mean(&r.test), std(&r.test), ptrain, ptest
        )?;
    }
    let paper_data: Vec<String> = nets
        .iter()
        .map(|n| format!("{n} on {}", PAPER_DATA.iter().find(|(m, _)| m == n).map(|(_, d)| *d).unwrap_or("?")))
        .collect();
    writeln!(md, "\nThe paper's columns are its Table 2 ({}), shown for reference.\n", paper_data.join(", "))?;
    writeln!(md, "## Generalization gap (SB − LB test accuracy)\n")?;
    writeln!(md, "| net | SB test | LB test | gap (points) | Welch t | p (two-sided) | LB below SB, p < 0.05 |")?;
    writeln!(md, "|---|---:|---:|---:|---:|---:|---|")?;
    for &net in &nets {
        let sb = rows.iter().find(|r| r.net == net && r.regime == Regime::SB);
        let lb = rows.iter().find(|r| r.net == net && r.regime == Regime::LB);
        let (Some(sb), Some(lb)) = (sb, lb) else { continue };
        let gap = mean(&sb.test) - mean(&lb.test);
        let (t, p) = match welch_t_test(&sb.test, &lb.test) {
            Some((t, p)) => (format!("{t:.2}"), format!("{p:.2e}")),
            None => ("–".into(), "–".into()),
        };
        let significant = welch_t_test(&sb.test, &lb.test).is_some_and(|(_, p)| p < 0.05) && gap > 0.0;
        writeln!(md, "| {net} | {:.2} | {:.2} | {gap:.2} | {t} | {p} | {} |", mean(&sb.test), mean(&lb.test), if significant { "yes" } else { "no" })?;
    }

    fs::create_dir_all(dir)?;
    harness::write_atomic(&dir.join("table2.csv"), csv.as_bytes())?;
    harness::write_atomic(&dir.join("table2.md"), md.as_bytes())?;
    plot::write_panels(&dir.join("curves"), &curve_panels(records, &nets))?;
    Ok(md)
}

/// Train (dashed) and test (solid) accuracy vs epoch, SB blue and LB red, mean ± std over seeds.
fn curve_panels(records: &[Record<Cell, Outcome>], nets: &[&str]) -> Vec<Panel> {
    nets.iter()
        .map(|&net| {
            let mut series = Vec::new();
            for (regime, color) in [(Regime::SB, PALETTE[0]), (Regime::LB, PALETTE[1])] {
                let runs: Vec<_> = records.iter().filter(|r| r.config.net == net && r.config.regime == regime).collect();
                let Some(first) = runs.first() else { continue };
                let batch = first.config.train.batch_size;
                let len = runs.iter().map(|r| r.outcome.curves.len()).min().unwrap_or(0);
                for (which, dashed, get) in [("train", true, (|m: &EpochMetrics| m.train_acc) as fn(&EpochMetrics) -> f64), ("test", false, |m| m.test_acc)] {
                    let at = |e: usize| runs.iter().map(|r| get(&r.outcome.curves[e])).collect::<Vec<_>>();
                    series.push(Series {
                        label: format!("{regime:?} (batch {batch}) {which}"),
                        color,
                        dashed,
                        x: (0..len).map(|e| e as f64).collect(),
                        mean: (0..len).map(|e| mean(&at(e))).collect(),
                        std: (0..len).map(|e| std(&at(e))).collect(),
                    });
                }
            }
            Panel {
                title: format!("{net} on {}", records.iter().find(|r| r.config.net == net).map(|r| r.config.data.name()).unwrap_or("?")),
                x_label: "epoch".into(),
                y_label: "accuracy (%)".into(),
                series,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::Env;

    fn record(regime: Regime, seed_index: usize, train_acc: f64, test_acc: f64) -> Record<Cell, Outcome> {
        let spec = scale_spec(Scale::Smoke);
        let (_, net, data) = spec.nets[0].clone();
        let metrics = |epoch, train_acc, test_acc| EpochMetrics { epoch, train_loss: 1.0, train_acc, test_loss: 1.0, test_acc };
        Record {
            study: "keskar".into(),
            id: format!("F1-{regime:?}-seed{seed_index}"),
            master_seed: 0,
            config: Cell {
                net: "F1".into(),
                scale: Scale::Smoke,
                data,
                spec: net,
                regime,
                train: TrainConfig { batch_size: 16, epochs: 1, learning_rate: 1e-3, eval_batch: 1000, shuffle: true, patience: None },
                seed_index,
                seeds: RunSeeds { init: 1, order: 2 },
            },
            env: Env {
                flatland_version: "0.1.0".into(),
                git_commit: "0123456789abcdef".into(),
                git_dirty: false,
                burn_version: "0.22.1".into(),
                backend: "flex".into(),
                device: "Device<Flex(Cpu)>".into(),
                cpu: "test".into(),
                jobs: 1,
            },
            wall_time_s: 1.0,
            finished_unix_s: 0,
            outcome: Outcome { parameters: 2, curves: vec![metrics(0, 10.0, 10.0), metrics(1, train_acc, test_acc)] },
        }
    }

    #[test]
    fn table2_csv_from_fixed_records() {
        // SB test 70, 72 (mean 71, std √2); LB test 66, 66 (mean 66, std 0).
        let records = vec![
            record(Regime::SB, 0, 99.0, 70.0),
            record(Regime::SB, 1, 100.0, 72.0),
            record(Regime::LB, 0, 100.0, 66.0),
            record(Regime::LB, 1, 100.0, 66.0),
        ];
        let dir = tempfile::tempdir().unwrap();
        let md = report(&records, dir.path()).unwrap();
        let csv = std::fs::read_to_string(dir.path().join("table2.csv")).unwrap();
        assert_eq!(
            csv,
            "net,dataset,regime,runs,train_acc_mean,train_acc_std,test_acc_mean,test_acc_std,paper_train_acc,paper_test_acc\n\
             F1,mnist1d,SB,2,99.5000,0.7071,71.0000,1.4142,99.66,98.03\n\
             F1,mnist1d,LB,2,100.0000,0.0000,66.0000,0.0000,99.92,97.81\n"
        );
        // Welch: t = 5 / √(2/2 + 0) = 5, df = 1, two-sided p = 2·(1 − F₁(5)) = 0.1257 (Cauchy:
        // 1 − 2/π·atan 5).
        assert!(md.contains("| F1 | 71.00 | 66.00 | 5.00 | 5.00 | 1.26e-1 | no |"), "{md}");
        assert!(md.contains("| F1 | 2 | mnist1d | SB | 16 | 2 | 99.50 ± 0.71 | 71.00 ± 1.41 | 99.66 | 98.03 |"), "{md}");
        assert!(dir.path().join("curves.png").exists() && dir.path().join("curves.svg").exists());
    }
}
