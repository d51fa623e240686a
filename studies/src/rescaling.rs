//! Dinh, Pascanu, Bengio & Bengio 2017, "Sharp Minima Can Generalize for Deep Nets": a ReLU
//! network computes the same function after its layer pair (θ₁, θ₂) becomes (αθ₁, θ₂/α) (the
//! α-scale transformation T_α, by non-negative homogeneity), yet flatness measures that depend on
//! the parameterization (ε-sharpness, the Hessian's spectral norm and trace) can be made as large
//! as one likes by choosing α. So none of them can by itself explain generalization.
//!
//! The study trains F-family networks (Keskar's F1 at the chosen scale, SB and LB), applies T_α
//! for α ∈ {1, 2, 5, 10, 100}, checks that the function is unchanged (every test logit within
//! float tolerance, the test accuracy identical), and measures each rescaled network: Keskar's
//! ε-sharpness (A = I), the Hessian's top eigenvalue and trace, and the adaptive sharpness of
//! Kwon et al. 2021 in its ℓ∞ form (the box |δ_i| ≤ ε |w_i|; Andriushchenko et al. 2023), which
//! scales with each weight and must not move.
//!
//! Batch norm, and where the transformation goes: in the F family every dense layer's output is
//! batch-normalized, so scaling a dense layer's weights (Dinh's θ₁ → αθ₁) never reaches the next
//! layer: under batch statistics the normalization undoes it (up to batch norm's ε), and under
//! running statistics it changes the function unless the running statistics are rescaled too.
//! The scale survives past batch norm's affine output: γ and β of the
//! chosen hidden layer times α make that layer's output α times what it was, the ReLU passes the
//! factor on (relu(αz) = α relu(z) for α > 0), and the next dense layer's weight divided by α
//! takes it back. The running statistics do not change (they normalize the dense output, which
//! does not change), and the normalization is the same whether batch norm uses running or batch
//! statistics, so the function is unchanged in training and in evaluation alike.
//!
//! Curvature under rescaling: the rescaled Hessian is D⁻¹HD⁻¹ for the diagonal D of the
//! transformation, so λ_max can grow or shrink by at most max(α, 1/α)², which the report checks.
//! The central differences behind each Hessian-vector product take a step in the rescaled
//! coordinates; the step is divided by max(α, 1/α), so that it never exceeds the calibrated step
//! (`MeasureConfig::fd_step`) in the trained network's coordinates, where a larger one would
//! straddle ReLU kinks.
//!
//! Command: `cargo run --release -p studies -- rescaling` (about 30 seconds).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use nets::objective::{BatchNormMode, Layout, Weights};
use nets::train::{NetSpec, RunSeeds, TrainConfig, Trained};
use serde::{Deserialize, Serialize};

use crate::data::DataSpec;
use crate::figure::{FigureArgs, FigureSetup};
use crate::harness::{self, CellProgress, Record, Report, Study, fill};
use crate::keskar::Regime;
use crate::measurement::{MeasureConfig, Measures, measure};
use crate::plot::{self, PALETTE, Panel, Series};
use crate::usage;

/// One line: what `studies list` and `--help` say.
pub const ABOUT: &str = "Dinh et al. 2017: rescaled layer pairs, the same function, any sharpness";

/// The figure studies' flags.
pub type Args = FigureArgs;

// The study's settings.
/// The factors α of T_α (1: the trained network itself).
const ALPHAS: [f64; 5] = [1.0, 2.0, 5.0, 10.0, 100.0];
/// The hidden layer whose batch-norm γ and β are multiplied by α (the next dense layer's weight
/// is divided by α): the first, so the pair sits at the input end as in Dinh et al.'s figure.
const LAYER: usize = 0;
/// ε of Keskar's sharpness (the paper's two) and of the adaptive sharpness.
const EPSILONS: [f64; 2] = [1e-3, 5e-4];
/// Lanczos steps at most for λ_max (Keskar's study uses 20; the rescaled spectra are wider).
const LANCZOS_STEPS: usize = 40;
/// Test logits must agree with the trained network's to this fraction of its largest |logit|
/// (f32 rounding of γ, β and the weight after scaling, a few ulps through the layers).
const LOGIT_TOLERANCE: f64 = 1e-4;
/// A measure "changes" under rescaling by a factor of at least this (the 10×); the
/// adaptive sharpness must stay within `INVARIANT` relative.
const CHANGE: f64 = 10.0;
/// See [`CHANGE`].
const INVARIANT: f64 = 0.01;

/// One cell: one network trained once, then measured under every α.
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
    /// The factors α.
    pub alphas: Vec<f64>,
    /// The hidden layer whose γ and β are scaled by α (the next dense weight by 1/α).
    pub layer: usize,
    /// Sharpness, adaptive sharpness and curvature (running statistics).
    pub measure: MeasureConfig,
}

/// One rescaled network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rescaled {
    /// α.
    pub alpha: f64,
    /// The largest change of a test logit from the trained network's, as a fraction of its
    /// largest |logit|.
    #[serde(with = "measure::nonfinite")]
    pub logit_change: f64,
    /// Test cross-entropy (inference mode).
    #[serde(with = "measure::nonfinite")]
    pub test_loss: f64,
    /// Test accuracy, %.
    #[serde(with = "measure::nonfinite")]
    pub test_acc: f64,
    /// ‖θ‖₂ of the rescaled parameters.
    pub norm: f64,
    /// The difference step of the Hessian-vector products at this α (see the module doc).
    pub fd_step: f64,
    /// Sharpness and curvature of the rescaled network.
    pub measures: Measures,
}

/// What one cell produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The run.
    pub trained: Trained,
    /// The network under each α (none for a diverged run).
    pub rescaled: Vec<Rescaled>,
}

/// T_α on hidden layer `layer` of an F-family network: its batch norm's γ and β times α, the next
/// dense layer's weight (the output layer's after the last hidden layer) divided by α. Running
/// statistics are untouched. `None` if `layout` has no such tensors.
pub fn rescale(weights: &Weights, layout: &Layout, layer: usize, alpha: f64) -> Option<Weights> {
    let hidden = layout.params.iter().filter(|t| t.path.ends_with(".linear.weight")).count();
    let next = if layer + 1 < hidden { format!("hidden.{}.linear.weight", layer + 1) } else { "output.weight".into() };
    let (gamma, beta) = (format!("hidden.{layer}.norm.gamma"), format!("hidden.{layer}.norm.beta"));
    let mut out = weights.clone();
    let (mut at, mut found) = (0, 0);
    for info in &layout.params {
        let len: usize = info.shape.iter().product();
        let factor = match &info.path {
            p if *p == gamma || *p == beta => Some(alpha),
            p if *p == next => Some(1.0 / alpha),
            _ => None,
        };
        if let Some(factor) = factor {
            found += 1;
            out.params[at..at + len].iter_mut().for_each(|w| *w = (*w as f64 * factor) as f32);
        }
        at += len;
    }
    (found == 3).then_some(out)
}

struct Rescaling {
    setup: FigureSetup,
    cells: Vec<Cell>,
}

impl Study for Rescaling {
    type Cell = Cell;
    type Outcome = Outcome;
    const NAME: &'static str = "rescaling";

    fn cells(&self) -> Vec<Cell> {
        self.cells.clone()
    }

    fn label(cell: &Cell) -> String {
        format!("{}-{:?}-seed{}", cell.net, cell.regime, cell.seed_index)
    }

    fn run_cell(&self, cell: &Cell, progress: &CellProgress) -> Result<Outcome> {
        let data = self.setup.dataset(&cell.data);
        let device = &self.setup.device;
        let trained = cell.spec.train(data, &cell.train, cell.seeds, None, device, &mut |m, _| {
            progress.message(&format!("epoch {:>3}  train loss {:.4}", m.epoch, m.train_loss));
        });
        if !trained.finished() {
            return Ok(Outcome { trained, rescaled: Vec::new() });
        }
        let layout = cell.spec.layout(device);
        let mut eval = cell.spec.training_loss(&trained.weights, data, cell.measure.chunk, BatchNormMode::Running, device);
        let base = eval.logits(&trained.weights.params_f64(), &trained.weights.buffers, &data.test);
        let scale = base.iter().fold(0.0f64, |m, &v| m.max((v as f64).abs())).max(f64::MIN_POSITIVE);
        let mut rescaled = Vec::new();
        for &alpha in &cell.alphas {
            progress.message(&format!("α = {alpha}"));
            let Some(weights) = rescale(&trained.weights, &layout, cell.layer, alpha) else {
                anyhow::bail!("{}: no hidden layer {} with batch norm to rescale", cell.net, cell.layer);
            };
            let params = weights.params_f64();
            let logits = eval.logits(&params, &weights.buffers, &data.test);
            let logit_change =
                logits.iter().zip(&base).map(|(&a, &b)| (a as f64 - b as f64).abs()).fold(0.0, f64::max) / scale;
            let (test_loss, test_acc) = nets::train::score(&logits, &data.test);
            let norm = params.iter().map(|w| w * w).sum::<f64>().sqrt();
            let fd_step = cell.measure.fd_step / alpha.max(1.0 / alpha);
            let cfg = MeasureConfig { fd_step, ..cell.measure.clone() };
            let measures = measure(&cell.spec, &weights, data, &cfg, device).remove(0);
            rescaled.push(Rescaled { alpha, logit_change, test_loss, test_acc, norm, fd_step, measures });
        }
        Ok(Outcome { trained, rescaled })
    }

    fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<Report> {
        let (text, passed) = report(records, dir)?;
        Ok(Report { text, passed })
    }
}

/// `studies report rescaling`.
pub fn report_saved(out: &Path) -> Result<Report> {
    harness::report_saved::<Rescaling>(out)
}

/// Builds the grid (F-family networks only), runs it, reports.
pub fn run(args: FigureArgs) -> Result<Report> {
    let setup = FigureSetup::new(&args, &["F1"], 1)?;
    for (name, spec, _) in &setup.nets {
        if !matches!(spec, NetSpec::Mlp(m) if m.depth > LAYER) {
            usage!(
                "--nets {name}: T_α is applied here to an F-family network's batch norm and next dense layer; accepted: the F family (F1, F2)"
            );
        }
    }
    let epochs = setup.scale.epochs;
    let master = setup.opts.master_seed;
    let Some(lb) = setup.scale.lb else { usage!("rescaling runs at the small scales only") };
    let mut cells = Vec::new();
    for (net, spec, data) in &setup.nets {
        for regime in [Regime::SB, Regime::LB] {
            let batch = if regime == Regime::SB { setup.scale.sb } else { lb };
            for seed_index in 0..setup.seeds {
                let (i, r) = (seed_index.to_string(), format!("{regime:?}"));
                let measure = MeasureConfig {
                    epsilons: EPSILONS.to_vec(),
                    adaptive_epsilons: EPSILONS.to_vec(),
                    subspace_dim: 0,
                    subspace_matrices: Vec::new(),
                    batch_norm: vec![BatchNormMode::Running],
                    lanczos_steps: LANCZOS_STEPS,
                    ..MeasureConfig::keskar(harness::derive_seed(master, &["rescaling", net, &r, "measure", &i]))
                };
                let train = setup.train_config(batch, epochs);
                cells.push(Cell {
                    net: net.clone(),
                    spec: spec.clone(),
                    data: data.clone(),
                    regime,
                    train,
                    seed_index,
                    seeds: RunSeeds {
                        init: harness::derive_seed(master, &["rescaling", net, "init", &i]),
                        order: harness::derive_seed(master, &["rescaling", net, &r, "order", &i]),
                    },
                    alphas: ALPHAS.to_vec(),
                    layer: LAYER,
                    measure,
                });
            }
        }
    }
    let study = Rescaling { setup, cells };
    harness::execute(&study, &study.setup.opts)
}

/// A row of `rescaling.csv`: one network under one α (sharpness at the cell's first ε, the
/// others in `rescaling.md`).
#[derive(Serialize)]
struct RescalingCsv<'a> {
    net: &'a str,
    regime: String,
    seed_index: usize,
    alpha: f64,
    logit_change: f64,
    test_loss: f64,
    test_acc: f64,
    /// The training loss on the measurement's samples.
    train_loss: f64,
    epsilon: f64,
    sharpness: f64,
    adaptive_sharpness: f64,
    top_eigenvalue: f64,
    /// Whether Lanczos met its tolerance for λ_max.
    lanczos_converged: bool,
    trace: f64,
    trace_std_error: f64,
    fd_step: f64,
}

/// One measure of a rescaled network.
type Measured = fn(&Rescaled) -> f64;

/// The measures plotted against α, one panel each: title, axis, value (at the first ε).
const PLOTTED: [(&str, &str, Measured); 4] = [
    ("Keskar ε-sharpness (A = I)", "sharpness (log scale)", |p| nth(&p.measures.full_space, 0)),
    ("Adaptive sharpness (|δ_i| ≤ ε|w_i|)", "adaptive sharpness (log scale)", |p| nth(&p.measures.adaptive, 0)),
    ("Hessian top eigenvalue", "λ_max (log scale)", lambda_max),
    ("Hessian trace (Hutchinson)", "trace (log scale)", |p| p.measures.trace.as_ref().map_or(f64::NAN, |t| t.value)),
];

/// The value of the `i`-th sharpness, NaN if absent.
fn nth(values: &[measure::sharpness::Sharpness], i: usize) -> f64 {
    values.get(i).map_or(f64::NAN, |s| s.value)
}

fn lambda_max(p: &Rescaled) -> f64 {
    p.measures.top_eigenvalue.as_ref().map_or(f64::NAN, |t| t.value)
}

/// The smallest and largest of `f` over `points`, if every value is finite and positive (a
/// ratio of them is then a measured change, not an artifact of a NaN or a zero).
fn positive_range(points: &[Rescaled], f: Measured) -> Option<(f64, f64)> {
    let values: Vec<f64> = points.iter().map(f).collect();
    if values.iter().any(|v| !v.is_finite() || *v <= 0.0) {
        return None;
    }
    Some(crate::stats::min_max(values))
}

fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<(String, bool)> {
    let first = &records[0].config;
    let mut md = String::from("# Rescaled sharp minima (Dinh et al. 2017)\n\n");
    let eps = |values: &[f64]| values.iter().map(|e| format!("{e:e}")).collect::<Vec<_>>();
    let (keskar_eps, adaptive_eps) = (eps(&first.measure.epsilons), eps(&first.measure.adaptive_epsilons));
    writeln!(
        md,
        "{}\n",
        fill(
            include_str!("text/rescaling.md"),
            &[
                ("layer", (first.layer + 1).to_string()),
                ("alphas", first.alphas.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")),
                ("epsilons", keskar_eps.join(" and ")),
                ("adaptive_epsilons", adaptive_eps.join(" and ")),
                ("iterations", first.measure.lbfgsb_iterations.to_string()),
                ("samples", first.measure.samples.map_or("all".into(), |m| m.to_string())),
                ("lanczos", first.measure.lanczos_steps.to_string()),
                ("lanczos_tol", format!("{:e}", first.measure.lanczos_tol)),
                ("probes", first.measure.trace_probes.to_string()),
                ("fd_step", format!("{:e}", first.measure.fd_step)),
                ("tolerance", format!("{LOGIT_TOLERANCE:e}")),
                ("change", CHANGE.to_string()),
                ("invariant", format!("{} %", INVARIANT * 100.0)),
            ]
        )
    )?;
    let header = |label: &str, values: &[String]| -> String {
        values.iter().map(|e| format!(" {label} ε = {e} |")).collect()
    };
    writeln!(
        md,
        "| net | regime | seed | α | ‖θ‖ | max Δlogit | test acc | train loss |{}{} λ_max | λ_max / λ_max(α = 1) (bound) | trace (± s.e.) |",
        header("sharpness", &keskar_eps),
        header("adaptive", &adaptive_eps),
    )?;
    let columns = 11 + keskar_eps.len() + adaptive_eps.len();
    writeln!(md, "|---|---|{}", "---:|".repeat(columns - 2))?;
    let mut csv = Vec::new();
    let mut passed = true;
    let mut verdicts = Vec::new();
    let mut series: [Vec<Series>; 4] = Default::default();
    let mut unconverged = false;
    for (k, r) in records.iter().enumerate() {
        let c = &r.config;
        let points = &r.outcome.rescaled;
        if points.is_empty() {
            writeln!(md, "| {} | {:?} | {} | diverged |{}", c.net, c.regime, c.seed_index, " |".repeat(columns - 4))?;
            verdicts.push(format!("- {} {:?} seed {}: training diverged; nothing to rescale.", c.net, c.regime, c.seed_index));
            passed = false;
            continue;
        }
        let base = &points[0];
        for p in points {
            let m = &p.measures;
            let (trace, se) = m.trace.as_ref().map_or((f64::NAN, f64::NAN), |t| (t.value, t.std_error));
            let f_x = m.full_space.first().map_or(f64::NAN, |s| s.f_x);
            let converged = m.top_eigenvalue.as_ref().is_some_and(|t| t.converged);
            unconverged |= !converged;
            let bound = p.alpha.max(1.0 / p.alpha).powi(2) / base.alpha.max(1.0 / base.alpha).powi(2);
            let values = |v: &[measure::sharpness::Sharpness], digits: usize| -> String {
                v.iter().map(|s| format!(" {:.*} |", digits, s.value)).collect()
            };
            writeln!(
                md,
                "| {} | {:?} | {} | {} | {:.1} | {:.1e} | {:.2} | {:.5} |{}{} {:.3}{} | {:.2} ({:.0}) | {:.1} ± {:.1} |",
                c.net,
                c.regime,
                c.seed_index,
                p.alpha,
                p.norm,
                p.logit_change,
                p.test_acc,
                f_x,
                values(&m.full_space, 3),
                values(&m.adaptive, 4),
                lambda_max(p),
                if converged { "" } else { " †" },
                lambda_max(p) / lambda_max(base),
                bound,
                trace,
                se
            )?;
            csv.push(RescalingCsv {
                net: &c.net,
                regime: format!("{:?}", c.regime),
                seed_index: c.seed_index,
                alpha: p.alpha,
                logit_change: p.logit_change,
                test_loss: p.test_loss,
                test_acc: p.test_acc,
                train_loss: f_x,
                epsilon: c.measure.epsilons.first().copied().unwrap_or(f64::NAN),
                sharpness: nth(&m.full_space, 0),
                adaptive_sharpness: nth(&m.adaptive, 0),
                top_eigenvalue: lambda_max(p),
                lanczos_converged: converged,
                trace,
                trace_std_error: se,
                fd_step: p.fd_step,
            });
        }
        // The verdict of this network: the function and the adaptive sharpness unchanged, and
        // Keskar's sharpness or λ_max changed at least CHANGE-fold across the α; every value
        // finite and positive, so that no ratio comes from a NaN or a zero.
        let same_accuracy = points.iter().all(|p| p.test_acc == base.test_acc);
        let largest_change = points.iter().map(|p| p.logit_change).fold(0.0, f64::max);
        let same_function = same_accuracy && largest_change <= LOGIT_TOLERANCE;
        let sharpness = positive_range(points, PLOTTED[0].2);
        let adaptive = positive_range(points, PLOTTED[1].2);
        let lambda = positive_range(points, PLOTTED[2].2);
        let changed = [sharpness, lambda].iter().flatten().any(|(lo, hi)| *hi >= CHANGE * lo);
        let adaptive_same = adaptive.is_some_and(|(lo, hi)| hi - lo <= INVARIANT * lo);
        let ok = same_function && changed && adaptive_same;
        passed &= ok;
        let span = |range: Option<(f64, f64)>, digits: usize| match range {
            Some((lo, hi)) => format!("{lo:.digits$} … {hi:.digits$} ({:.0}×)", hi / lo),
            None => "not measured (a value is NaN, zero or negative)".to_string(),
        };
        verdicts.push(format!(
            "- {} {:?} seed {}: the function is {} (largest logit change {largest_change:.1e}, test accuracy {}); \
             Keskar's sharpness spans {} and λ_max {}; the adaptive sharpness spans {}. {}",
            c.net,
            c.regime,
            c.seed_index,
            if same_function { "unchanged" } else { "NOT unchanged" },
            if same_accuracy { format!("{:.2} % at every α", base.test_acc) } else { "differs between α".to_string() },
            span(sharpness, 3),
            span(lambda, 3),
            match adaptive {
                Some((lo, hi)) => format!("{lo:.4} … {hi:.4} ({:.1e} apart, relative)", (hi - lo) / lo),
                None => "not measured (a value is NaN, zero or negative)".to_string(),
            },
            if ok { "As Dinh et al. say." } else { "Not what Dinh et al. predict: see the table." }
        ));
        if c.seed_index == 0 {
            let color = PALETTE[k % PALETTE.len()];
            let label = format!("{} {:?}", c.net, c.regime);
            let alphas: Vec<f64> = points.iter().map(|p| p.alpha).collect();
            for (series, (_, _, f)) in series.iter_mut().zip(PLOTTED) {
                series.push(Series {
                    label: label.clone(),
                    color,
                    dashed: c.regime == Regime::LB,
                    x: alphas.clone(),
                    mean: points.iter().map(|p| f(p).max(1e-12)).collect(),
                    std: vec![0.0; points.len()],
                });
            }
        }
    }
    if unconverged {
        md.push_str("\n† Lanczos stopped at its step limit before its tolerance: a lower bound on λ_max.\n");
    }
    md.push('\n');
    for v in &verdicts {
        writeln!(md, "{v}")?;
    }
    writeln!(
        md,
        "\nVerdict: {}.",
        if passed {
            format!(
                "every network computes the same function at every α, Keskar's sharpness or λ_max moves at least {CHANGE}-fold, and the adaptive sharpness stays within {} %",
                INVARIANT * 100.0
            )
        } else {
            "at least one network does not show Dinh et al.'s effect as stated (see above)".to_string()
        }
    )?;
    let panels: Vec<Panel> = PLOTTED
        .iter()
        .zip(series)
        .map(|((title, y, _), series)| {
            let mut p = Panel::new(*title, "α (log scale)", *y, series);
            p.log_x = true;
            p.log_y = true;
            p.legend = plotters::prelude::SeriesLabelPosition::UpperLeft;
            p
        })
        .collect();
    std::fs::create_dir_all(dir)?;
    harness::write_atomic(&dir.join("rescaling.md"), md.as_bytes())?;
    harness::write_csv(&dir.join("rescaling.csv"), &csv)?;
    plot::write_grid(&dir.join("rescaling"), 2, &panels)?;
    Ok((md, passed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datasets::mnist1d;
    use measure::Objective;
    use nets::init::BatchNormSettings;
    use nets::mlp::MlpSpec;

    /// T_α on a briefly trained F network moves only γ, β of the chosen layer and the next dense
    /// weight, and changes no test logit (inference on running statistics) and no training loss
    /// (on running or batch statistics: the normalization does not change).
    #[test]
    fn rescaling_a_layer_pair_keeps_every_output() {
        let device = nets::Backend::Flex.device().expect("flex is a default feature");
        let spec = NetSpec::Mlp(MlpSpec { input: 40, width: 16, depth: 2, classes: 10, norm: BatchNormSettings::default() });
        let data = mnist1d::generate(&mnist1d::Config { train: 200, test: 100, ..Default::default() });
        let config = TrainConfig { eval_batch: 100, ..TrainConfig::adam(25, 2, 1e-3) };
        let weights = spec.train(&data, &config, RunSeeds { init: 1, order: 2 }, None, &device, &mut |_, _| {}).weights;
        let layout = spec.layout(&device);
        for layer in [0, 1] {
            for alpha in [2.0, 10.0, 100.0] {
                let scaled = rescale(&weights, &layout, layer, alpha).expect("an F network has the pair");
                let changed = weights.params.iter().zip(&scaled.params).filter(|(a, b)| a != b).count();
                // γ and β (16 each), and the next weight (16 × 16 inside, 16 × 10 at the output).
                let next = if layer == 0 { 256 } else { 160 };
                assert!(changed <= 32 + next && changed > next, "layer {layer}, α {alpha}: {changed} changed");
                assert_eq!(weights.buffers, scaled.buffers);
                let mut eval = spec.training_loss(&weights, &data, 50, BatchNormMode::Running, &device);
                let base = eval.logits(&weights.params_f64(), &weights.buffers, &data.test);
                let after = eval.logits(&scaled.params_f64(), &scaled.buffers, &data.test);
                assert_eq!(base.len(), data.test.len() * 10);
                let scale = base.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                for (a, b) in base.iter().zip(&after) {
                    assert!((a - b).abs() <= 1e-5 * scale, "layer {layer}, α {alpha}: {a} vs {b}");
                }
                for mode in [BatchNormMode::Running, BatchNormMode::Batch] {
                    let mut obj = spec.training_loss(&weights, &data, 50, mode, &device);
                    let mut g = vec![0.0; obj.dim()];
                    let f = obj.value_grad(&weights.params_f64(), &mut g);
                    let f_scaled = obj.value_grad(&scaled.params_f64(), &mut g);
                    assert!((f - f_scaled).abs() <= 1e-5 * f, "layer {layer}, α {alpha}, {mode:?}: {f} vs {f_scaled}");
                }
            }
        }
        assert!(rescale(&weights, &layout, 2, 2.0).is_none(), "no third hidden layer");
    }
}
