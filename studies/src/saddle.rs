//! Escaping a strict saddle (Ge, Huang, Jin & Yuan 2015): f(x, y) = ½x² + ¼(y² − 1)² has a
//! strict saddle at the origin (Hessian diag(1, −1)) whose stable manifold is the x axis, and
//! minima at (0, ±1). Gradient descent started on that manifold converges to the saddle; started
//! 1e-8 off it, it leaves only after ~log(1e8)/log(1 + α) steps. Gradient descent with Gaussian
//! noise, θ ← θ − α∇f + ε with ε ~ N(0, σ²I), leaves from the manifold itself, sooner the larger σ.
//! Escape: |y| ≥ ½ (halfway to a minimum) within the step budget.
//!
//! The network counterpart ([`Plateau`]) starts the MNIST-1D baseline MLP at a strict saddle of
//! its training loss and compares full-batch GD with minibatch SGD at the same step size
//! (`--data` runs it on other data, the MLP taking the flattened sample).
//!
//! Command: `cargo run --release -p studies -- saddle` (about 30 s on 2 cores: 1000 runs per
//! noise level, then 3 seeds × 3 batch sizes × 1000 steps of the network).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use datasets::{Dataset, Split};
use measure::Objective;
use nets::Device;
use nets::baselines::BaselineSpec;
use nets::objective::{BatchNormMode, Weights};
use nets::train::NetSpec;
use optim::{Optimizer, Rule};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::DataSpec;
use crate::harness::{self, CellProgress, GridArgs, Record, Report, Study, fill};
use crate::plot::{self, PALETTE, Panel, Series};
use crate::stats::{mean, std};
use crate::usage;

/// One line: what `studies list` and `--help` say.
pub const ABOUT: &str =
    "GD stuck on a saddle's stable manifold vs noisy GD (Ge et al. 2015): escape probability and time against σ";

/// Arguments of `studies saddle`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Runs per noise level.
    #[arg(long, default_value_t = 1000)]
    pub runs: usize,
    /// Steps of the network runs (0 skips them).
    #[arg(long, default_value_t = 1000)]
    pub net_steps: usize,
    /// Seeds of the network runs.
    #[arg(long, default_value_t = 3)]
    pub net_seeds: usize,
    /// Data of the network runs (their first 4000 training samples; the MLP adapts to its
    /// shape): mnist1d (default), mnist1d-frozen, mnist, fashion-mnist, cifar-10, cifar-10-subset, cifar-100,
    /// optdigits, timit, npy:DIR.
    #[arg(long, value_parser = crate::data::data_name)]
    pub data: Option<String>,
    /// Folder holding real datasets [default: $FLATLAND_DATA, else the platform cache folder].
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub grid: GridArgs,
}

/// Noise levels σ.
const SIGMAS: [f64; 7] = [0.0, 1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1];

/// One cell: one start and one noise level, many runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Distance of the start from the stable manifold (the x axis): y₀.
    pub offset: f64,
    /// Noise σ per coordinate and step.
    pub sigma: f64,
    /// Step size α.
    pub lr: f64,
    /// Steps allowed.
    pub budget: usize,
    /// Independent runs.
    pub runs: usize,
    /// Seed of the noise.
    pub seed: u64,
}

/// What the runs of a cell did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Runs that reached |y| ≥ ½ within the budget.
    pub escaped: usize,
    /// Median escape step over all runs (a run that never escaped counts as beyond the
    /// budget); `None` when fewer than half escaped.
    pub median_steps: Option<usize>,
    /// |y| of run 0 at every step (for the plot).
    pub trace: Vec<f64>,
}

struct Saddle {
    cells: Vec<Cell>,
}

impl Study for Saddle {
    type Cell = Cell;
    type Outcome = Outcome;
    const NAME: &'static str = "saddle";

    fn cells(&self) -> Vec<Cell> {
        self.cells.clone()
    }

    fn label(cell: &Cell) -> String {
        format!("y0-{:e}-sigma-{:e}", cell.offset, cell.sigma)
    }

    fn run_cell(&self, cell: &Cell, _progress: &CellProgress) -> Result<Outcome> {
        let rule =
            if cell.sigma > 0.0 { Rule::NoisyGd { lr: cell.lr, sigma: cell.sigma } } else { Rule::Gd { lr: cell.lr } };
        let mut steps = Vec::with_capacity(cell.runs);
        let mut trace = Vec::new();
        for run in 0..cell.runs {
            let mut opt = Optimizer::new(rule, 2, harness::derive_seed(cell.seed, &[&run.to_string()]));
            let mut p = [1.0, cell.offset];
            let mut escaped = None;
            for k in 0..=cell.budget {
                if run == 0 {
                    trace.push(p[1].abs());
                }
                if p[1].abs() >= 0.5 {
                    escaped = Some(k);
                    break;
                }
                let g = [p[0], p[1] * (p[1] * p[1] - 1.0)];
                opt.step(&mut p, &g);
            }
            steps.push(escaped);
        }
        let escaped = steps.iter().filter(|s| s.is_some()).count();
        let mut sorted: Vec<usize> = steps.iter().map(|s| s.unwrap_or(usize::MAX)).collect();
        sorted.sort_unstable();
        let median = sorted[(sorted.len() - 1) / 2];
        Ok(Outcome { escaped, median_steps: (median != usize::MAX).then_some(median), trace })
    }

    fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<Report> {
        let (text, passed) = report(records, dir)?;
        if !passed {
            eprintln!("noisy GD did not escape where plain GD stays (see the table)");
        }
        Ok(Report { text, passed })
    }
}

/// `studies report saddle`: the analytic part, and the network part when it ran.
pub fn report_saved(out: &Path) -> Result<Report> {
    let mut report = harness::report_saved::<Saddle>(out)?;
    if harness::study_dir::<Plateau>(out).join("grid.grid.json").exists() {
        let network = harness::report_saved::<Plateau>(out)?;
        report.text = format!("{}\n{}", report.text, network.text);
        report.passed &= network.passed;
    }
    Ok(report)
}

/// A row of `saddle.csv` (an empty `median_steps` when fewer than half the runs escaped).
#[derive(Serialize)]
struct SaddleCsv {
    offset: f64,
    sigma: f64,
    budget: usize,
    runs: usize,
    escaped: usize,
    median_steps: Option<usize>,
}

/// A row of `saddle-network.csv` (an empty `escape_step` when the run never escaped).
#[derive(Serialize)]
struct NetworkCsv {
    batch: usize,
    seed: u64,
    start_grad_norm: f64,
    escape_step: Option<usize>,
    final_train_loss: Option<f64>,
    final_test_acc: f64,
}

/// Builds the grids, runs them, reports; the report fails unless noisy GD escapes where GD does
/// not, and minibatch SGD leaves the network's saddle before full-batch GD.
pub fn run(args: Args) -> Result<Report> {
    if args.runs == 0 {
        usage!("--runs 0: at least one run is needed (accepted: 1 or more)");
    }
    if args.net_seeds == 0 && args.net_steps > 0 {
        usage!("--net-seeds 0: at least one seed is needed for the network runs (accepted: 1 or more; --net-steps 0 skips them)");
    }
    let (backend, device, jobs) = args.grid.validate()?;
    let master = args.grid.seed;
    let (lr, budget) = (0.1, 150);
    let mut cells = vec![
        // Plain GD on the manifold and 1e-8 off it.
        Cell { offset: 0.0, sigma: 0.0, lr, budget, runs: 1, seed: 0 },
        Cell { offset: 1e-8, sigma: 0.0, lr, budget, runs: 1, seed: 0 },
        // … which does leave, given enough steps.
        Cell { offset: 1e-8, sigma: 0.0, lr, budget: 1000, runs: 1, seed: 0 },
    ];
    for &sigma in SIGMAS.iter().filter(|&&s| s > 0.0) {
        cells.push(Cell {
            offset: 0.0,
            sigma,
            lr,
            budget,
            runs: args.runs,
            seed: harness::derive_seed(master, &["saddle", &sigma.to_string()]),
        });
    }
    let dir = crate::data::DataDir::resolve(args.data_dir.as_deref());
    let generated = DataSpec::Mnist1d { train: NET_TRAIN, test: 1000, seed: 42 };
    let nets = vec![("MLP".to_string(), NetSpec::Baseline(BaselineSpec::MLP), generated)];
    let (mut nets, mut loaded) = crate::data::on_data(nets, args.data.as_deref(), &dir)?;
    let (_, spec, data_spec) = nets.remove(0);
    let mut data = loaded.remove(0).1;
    data.keep_train(NET_TRAIN);
    let env = crate::env::Env::capture(backend, &device, jobs)
        .with_data(&format!("{} (saddle-network)", data_spec.name()), &data)
        .with_files(&data_spec, &dir)?;
    let opts = args.grid.options(jobs, env)?;
    let mut report = harness::execute(&Saddle { cells }, &opts)?;
    if args.net_steps == 0 {
        return Ok(report);
    }
    let mut cells = Vec::new();
    for s in 0..args.net_seeds {
        let seed = harness::derive_seed(master, &["saddle-network", &s.to_string()]);
        for batch in NET_BATCHES {
            cells.push(NetCell {
                spec: spec.clone(),
                data: data_spec.clone(),
                batch: if batch == 0 { data.train.len() } else { batch },
                lr: NET_LR,
                steps: args.net_steps,
                seed,
            });
        }
    }
    let network = harness::execute(&Plateau { cells, data, device: device.clone() }, &opts)?;
    report.text = format!("{}\n{}", report.text, network.text);
    report.passed &= network.passed;
    Ok(report)
}

fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<(String, bool)> {
    let c = &records[0].config;
    let mut md = String::from("# Escaping a strict saddle: GD vs GD with noise\n\n");
    writeln!(md, "{}\n", fill(include_str!("text/saddle.md"), &[("lr", c.lr.to_string()), ("budget", c.budget.to_string())]))?;
    md.push_str(
        "| method | y₀ | σ | budget | runs | escaped within budget | median steps to escape |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut csv = Vec::new();
    for r in records {
        let c = &r.config;
        let o = &r.outcome;
        let sci = |v: f64| if v == 0.0 { "0".to_string() } else { format!("{v:e}") };
        writeln!(
            md,
            "| {} | {} | {} | {} | {} | {:.1} % | {} |",
            if c.sigma > 0.0 { "noisy GD" } else { "GD" },
            sci(c.offset),
            sci(c.sigma),
            c.budget,
            c.runs,
            100.0 * o.escaped as f64 / c.runs as f64,
            o.median_steps.map_or("never (> budget)".into(), |m| m.to_string())
        )?;
        csv.push(SaddleCsv {
            offset: c.offset,
            sigma: c.sigma,
            budget: c.budget,
            runs: c.runs,
            escaped: o.escaped,
            median_steps: o.median_steps,
        });
    }
    let on_manifold_gd = records.iter().find(|r| r.config.sigma == 0.0 && r.config.offset == 0.0);
    let noisy: Vec<_> = records.iter().filter(|r| r.config.sigma >= 1e-4).collect();
    // Plot GD runs at the common budget only.
    let records: Vec<_> =
        records.iter().filter(|r| r.config.budget == c.budget || r.config.sigma > 0.0).cloned().collect();
    let records = &records[..];
    let ok = on_manifold_gd.is_some_and(|r| r.outcome.escaped == 0)
        && noisy.iter().all(|r| r.outcome.escaped as f64 >= 0.99 * r.config.runs as f64);
    writeln!(
        md,
        "\nGD from the stable manifold never escapes; noisy GD with σ ≥ 1e-4 escapes in at least 99 % of runs \
         within the budget: {}.",
        if ok { "yes" } else { "NO" }
    )?;

    let noisy_all: Vec<_> = records.iter().filter(|r| r.config.sigma > 0.0).collect();
    let x: Vec<f64> = noisy_all.iter().map(|r| r.config.sigma).collect();
    let mut prob = Panel::new(
        "Escape probability within the budget",
        "noise σ (log scale)",
        "escaped (%)",
        vec![Series {
            label: "noisy GD from the manifold".into(),
            color: PALETTE[0],
            dashed: false,
            x: x.clone(),
            mean: noisy_all.iter().map(|r| 100.0 * r.outcome.escaped as f64 / r.config.runs as f64).collect(),
            std: vec![0.0; x.len()],
        }],
    );
    prob.log_x = true;
    let timed: Vec<_> = noisy_all.iter().filter(|r| r.outcome.median_steps.is_some()).collect();
    let mut time = Panel::new(
        "Median escape time",
        "noise σ (log scale)",
        "steps to |y| ≥ ½",
        vec![Series {
            label: "noisy GD from the manifold".into(),
            color: PALETTE[0],
            dashed: false,
            x: timed.iter().map(|r| r.config.sigma).collect(),
            mean: timed.iter().map(|r| r.outcome.median_steps.expect("filtered") as f64).collect(),
            std: vec![0.0; timed.len()],
        }],
    );
    time.log_x = true;
    time.legend = plotters::prelude::SeriesLabelPosition::UpperRight;
    let traces = records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.config.sigma == 0.0 || r.config.sigma == 1e-6 || r.config.sigma == 1e-2)
        .map(|(i, r)| Series {
            label: if r.config.sigma > 0.0 {
                format!("noisy GD, σ = {:e}", r.config.sigma)
            } else {
                if r.config.offset == 0.0 {
                    "GD, y₀ = 0 (on the manifold)".to_string()
                } else {
                    format!("GD, y₀ = {:e}", r.config.offset)
                }
            },
            color: PALETTE[i % PALETTE.len()],
            dashed: r.config.sigma == 0.0,
            x: (0..r.outcome.trace.len()).map(|k| k as f64).collect(),
            mean: r.outcome.trace.iter().map(|v| v.max(1e-12)).collect(),
            std: vec![0.0; r.outcome.trace.len()],
        })
        .collect();
    let mut tr =
        Panel::new("Distance from the stable manifold (run 0)", "step", "|y| (log scale, floored at 1e-12)", traces);
    tr.log_y = true;
    tr.legend = plotters::prelude::SeriesLabelPosition::LowerRight;
    std::fs::create_dir_all(dir)?;
    harness::write_atomic(&dir.join("saddle.md"), md.as_bytes())?;
    harness::write_csv(&dir.join("saddle.csv"), &csv)?;
    plot::write_panels(&dir.join("saddle"), &[tr, prob, time])?;
    Ok((md, ok))
}

/// The network counterpart: the MNIST-1D baseline MLP (40 → 100 → residual 100 → 10, ReLU)
/// started at a critical point of its training loss that is a strict saddle. Every weight matrix
/// is zero, the hidden biases positive (so every unit is active and outputs the same value for
/// every input) and the output bias the log class frequencies, so the network predicts the
/// class frequencies for every input and sits on the plateau at their entropy H. There the
/// full-batch gradient vanishes: the output weights' gradient is Σᵢ (p − yᵢ)·hᵀ with h the same
/// for every sample and p the class frequencies, and every other gradient passes through the
/// zero output weights. The loss is bilinear in the output and first-layer weights to second
/// order, with coupling Σᵢ (p − yᵢ)·xᵢᵀ (the class means of the inputs), so the Hessian has
/// negative eigenvalues: a strict saddle whose stable manifold holds the start. Full-batch GD
/// leaves only through rounding (a gradient of ~1e-8 in f32), minibatch SGD through the
/// gradient noise of its batches, which is zero only on average.
struct Plateau {
    cells: Vec<NetCell>,
    data: Dataset,
    device: Device,
}

/// One network run: a batch size (the training-set size is full-batch GD) and a seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetCell {
    /// The network (the MNIST-1D baseline MLP, adapted to the data's shape).
    pub spec: NetSpec,
    /// Its data (the first 4000 training samples).
    pub data: DataSpec,
    /// Samples per step; the training-set size makes it full-batch GD.
    pub batch: usize,
    /// Step size (the same for every batch size).
    pub lr: f64,
    /// Steps allowed.
    pub steps: usize,
    /// Seed of the hidden biases and of the batch order.
    pub seed: u64,
}

/// What a network run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetOutcome {
    /// Loss on the plateau: the entropy of the training set's class frequencies.
    pub plateau_loss: f64,
    /// Training loss at the start.
    pub start_loss: f64,
    /// Norm of the gradient of the first step: full-batch (zero but for f32 rounding) or of the
    /// first minibatch.
    pub start_grad_norm: f64,
    /// Training loss (full training set) before every step and after the last.
    #[serde(with = "measure::nonfinite::vec")]
    pub train_loss: Vec<f64>,
    /// Test accuracy (%) after the last step.
    pub test_acc: f64,
    /// First step with training loss ≤ H − [`ESCAPED_BELOW`]; `None` if never.
    pub escape_step: Option<usize>,
}

/// How far below the plateau the training loss must fall to count as escaped (nats).
pub const ESCAPED_BELOW: f64 = 0.1;

/// Batch sizes of the network runs (0: full batch).
const NET_BATCHES: [usize; 3] = [0, 250, 32];

/// Step size of the network runs.
const NET_LR: f64 = 0.1;

/// Training samples of the network runs (the first this many of the data).
const NET_TRAIN: usize = 4000;

/// The saddle start of [`Plateau`] for `spec`'s layout: weight matrices zero, hidden biases
/// |b| of the seeded initialization, output bias ln(class frequency).
fn plateau_start(spec: &NetSpec, data: &Dataset, seed: u64, device: &Device) -> Result<Weights> {
    let layout = spec.layout(device);
    let mut weights = spec.initial_weights(seed, device);
    let counts = data.train.class_counts(data.classes);
    if let Some(c) = counts.iter().position(|&c| c == 0) {
        anyhow::bail!("class {c} has no training sample: the plateau start needs every class present");
    }
    let n = data.train.len() as f64;
    let mut at = 0;
    for t in &layout.params {
        let len: usize = t.shape.iter().product();
        let values = &mut weights.params[at..at + len];
        if t.path.ends_with("weight") {
            values.fill(0.0);
        } else if t.path == "output.bias" {
            values.iter_mut().zip(&counts).for_each(|(v, &c)| *v = (c as f64 / n).ln() as f32);
        } else {
            values.iter_mut().for_each(|v| *v = v.abs());
        }
        at += len;
    }
    Ok(weights)
}

impl Study for Plateau {
    type Cell = NetCell;
    type Outcome = NetOutcome;
    const NAME: &'static str = "saddle-network";

    fn cells(&self) -> Vec<NetCell> {
        self.cells.clone()
    }

    fn label(cell: &NetCell) -> String {
        format!("batch-{}-seed-{}", cell.batch, cell.seed)
    }

    fn run_cell(&self, cell: &NetCell, progress: &CellProgress) -> Result<NetOutcome> {
        let spec = &cell.spec;
        let data = &self.data;
        let start = plateau_start(spec, data, cell.seed, &self.device)?;
        let n = data.train.len();
        let mut full = spec.training_loss(&start, data, n, BatchNormMode::Running, &self.device);
        let mut theta = start.params_f64();
        let mut grad = vec![0.0; theta.len()];
        let mut opt = Optimizer::new(Rule::Gd { lr: cell.lr }, theta.len(), cell.seed);
        let mut rng = ChaCha8Rng::seed_from_u64(harness::derive_seed(cell.seed, &["order"]));
        let mut order: Vec<usize> = (0..n).collect();
        let mut next = n; // position in `order`; n forces a shuffle before the first batch
        let len = data.sample_len();
        let mut train_loss = Vec::with_capacity(cell.steps + 1);
        let mut start_grad_norm = 0.0;
        for step in 0..=cell.steps {
            train_loss.push(full.evaluate(&theta, &[], &data.train).0);
            if step == cell.steps {
                break;
            }
            if cell.batch >= n {
                full.value_grad(&theta, &mut grad);
            } else {
                if next + cell.batch > n {
                    order.shuffle(&mut rng);
                    next = 0;
                }
                let idx = &order[next..next + cell.batch];
                next += cell.batch;
                let split = Split {
                    features: idx
                        .iter()
                        .flat_map(|&i| data.train.features[i * len..(i + 1) * len].iter().copied())
                        .collect(),
                    labels: idx.iter().map(|&i| data.train.labels[i]).collect(),
                };
                let minibatch = Dataset {
                    name: data.name.clone(),
                    sample_shape: data.sample_shape.clone(),
                    classes: data.classes,
                    class_names: data.class_names.clone(),
                    train: split,
                    test: Split { features: Vec::new(), labels: Vec::new() },
                    provenance: String::new(),
                };
                spec.training_loss(&start, &minibatch, cell.batch, BatchNormMode::Running, &self.device).value_grad(&theta, &mut grad);
            }
            if step == 0 {
                start_grad_norm = grad.iter().map(|g| g * g).sum::<f64>().sqrt();
            }
            opt.step(&mut theta, &grad);
            if step % 100 == 0 {
                progress.message(&format!("step {step} loss {:.4}", train_loss[step]));
            }
        }
        let counts = data.train.class_counts(data.classes);
        let plateau_loss = -counts.iter().map(|&c| c as f64 / n as f64).map(|p| p * p.ln()).sum::<f64>();
        let escape_step = train_loss.iter().position(|&l| l <= plateau_loss - ESCAPED_BELOW);
        let test_acc = full.evaluate(&theta, &[], &data.test).1;
        Ok(NetOutcome { plateau_loss, start_loss: train_loss[0], start_grad_norm, train_loss, test_acc, escape_step })
    }

    fn report(records: &[Record<NetCell, NetOutcome>], dir: &Path) -> Result<Report> {
        let (text, passed) = report_network(records, dir)?;
        if !passed {
            eprintln!("minibatch SGD did not leave the network's saddle sooner than full-batch GD (see the table)");
        }
        Ok(Report { text, passed })
    }
}

fn report_network(records: &[Record<NetCell, NetOutcome>], dir: &Path) -> Result<(String, bool)> {
    let c = &records[0].config;
    let o = &records[0].outcome;
    let batches = harness::distinct(records.iter().map(|r| r.config.batch));
    let full = batches.iter().copied().max().unwrap_or(0);
    let mut md = String::from("# Minibatch noise leaving a network's saddle\n\n");
    let intro = fill(
        include_str!("text/saddle-network.md"),
        &[
            ("train", full.to_string()),
            ("data", c.data.name().to_string()),
            ("input", match &c.spec {
                NetSpec::Baseline(b) => b.input.to_string(),
                _ => "?".into(),
            }),
            ("classes", match &c.spec {
                NetSpec::Baseline(b) => b.classes.to_string(),
                _ => "?".into(),
            }),
            ("entropy", format!("{:.4}", o.plateau_loss)),
            ("lr", c.lr.to_string()),
            ("steps", c.steps.to_string()),
            ("below", ESCAPED_BELOW.to_string()),
        ],
    );
    writeln!(md, "{intro}\n")?;
    md.push_str("| method | batch | seeds | ‖∇‖ at the start (median) | steps to escape (median) | steps to escape (each seed) | final training loss (mean) | final test accuracy % (mean) |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
    let mut csv = Vec::new();
    let median = |mut v: Vec<f64>| {
        if v.is_empty() {
            return f64::NAN;
        }
        v.sort_by(f64::total_cmp);
        v[(v.len() - 1) / 2]
    };
    let steps_text = |s: Option<usize>| s.map_or("never".to_string(), |s| s.to_string());
    for &b in &batches {
        let runs: Vec<_> = records.iter().filter(|r| r.config.batch == b).collect();
        let escapes: Vec<f64> =
            runs.iter().map(|r| r.outcome.escape_step.map_or(f64::INFINITY, |s| s as f64)).collect();
        let m = median(escapes.clone());
        writeln!(
            md,
            "| {} | {b} | {} | {:.1e} | {} | {} | {:.3} | {:.1} |",
            if b == full { "GD (full batch)" } else { "SGD" },
            runs.len(),
            median(runs.iter().map(|r| r.outcome.start_grad_norm).collect()),
            if m.is_finite() { format!("{m}") } else { "never".into() },
            runs.iter().map(|r| steps_text(r.outcome.escape_step)).collect::<Vec<_>>().join(", "),
            mean(&runs.iter().filter_map(|r| r.outcome.train_loss.last().copied()).collect::<Vec<_>>()),
            mean(&runs.iter().map(|r| r.outcome.test_acc).collect::<Vec<_>>()),
        )?;
        for r in runs {
            csv.push(NetworkCsv {
                batch: b,
                seed: r.config.seed,
                start_grad_norm: r.outcome.start_grad_norm,
                escape_step: r.outcome.escape_step,
                final_train_loss: r.outcome.train_loss.last().copied(),
                final_test_acc: r.outcome.test_acc,
            });
        }
    }
    // Per seed: every minibatch size leaves before full-batch GD does.
    let seeds = harness::distinct(records.iter().map(|r| r.config.seed));
    let ok = seeds.iter().all(|&seed| {
        let gd = records
            .iter()
            .find(|r| r.config.seed == seed && r.config.batch == full)
            .and_then(|r| r.outcome.escape_step)
            .unwrap_or(usize::MAX);
        records
            .iter()
            .filter(|r| r.config.seed == seed && r.config.batch != full)
            .all(|r| r.outcome.escape_step.is_some_and(|s| s < gd))
    });
    let gd_gradient = median(records.iter().filter(|r| r.config.batch == full).map(|r| r.outcome.start_grad_norm).collect());
    let verdict = fill(
        include_str!("text/saddle-network-verdict.md"),
        &[("verdict", (if ok { "yes" } else { "NO" }).to_string()), ("gd_gradient", format!("{gd_gradient:.1e}"))],
    );
    writeln!(md, "\n{verdict}")?;

    let mut loss_series = Vec::new();
    let mut gap_series = Vec::new();
    for (i, &b) in batches.iter().enumerate() {
        let runs: Vec<_> = records.iter().filter(|r| r.config.batch == b).collect();
        let len = runs.iter().map(|r| r.outcome.train_loss.len()).min().unwrap_or(0);
        let x: Vec<f64> = (0..len).map(|k| k as f64).collect();
        let at = |k: usize| runs.iter().map(|r| r.outcome.train_loss[k]).collect::<Vec<f64>>();
        let label = if b == full { format!("GD (full batch, {b})") } else { format!("SGD, batch {b}") };
        loss_series.push(Series {
            label: label.clone(),
            color: PALETTE[i % PALETTE.len()],
            dashed: b == full,
            x: x.clone(),
            mean: (0..len).map(|k| mean(&at(k))).collect(),
            std: (0..len).map(|k| std(&at(k))).collect(),
        });
        let first = &runs[0].outcome;
        gap_series.push(Series {
            label: format!("{label}, seed 0"),
            color: PALETTE[i % PALETTE.len()],
            dashed: b == full,
            x,
            mean: first.train_loss[..len].iter().map(|l| (first.plateau_loss - l).abs().max(1e-9)).collect(),
            std: vec![0.0; len],
        });
    }
    let mut loss = Panel::new("Training loss (mean ± std over seeds)", "step", "training loss", loss_series);
    loss.legend = plotters::prelude::SeriesLabelPosition::LowerLeft;
    let mut gap =
        Panel::new("Distance from the plateau", "step", "|H − training loss| (log scale, floored at 1e-9)", gap_series);
    gap.log_y = true;
    gap.legend = plotters::prelude::SeriesLabelPosition::LowerRight;
    std::fs::create_dir_all(dir)?;
    harness::write_atomic(&dir.join("saddle-network.md"), md.as_bytes())?;
    harness::write_csv(&dir.join("saddle-network.csv"), &csv)?;
    plot::write_panels(&dir.join("saddle-network"), &[loss, gap])?;
    Ok((md, ok))
}
