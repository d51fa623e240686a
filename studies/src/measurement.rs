//! The measurement driver of every study that measures a solution: Keskar's ε-sharpness in the
//! full space and in a random subspace (Tables 3 and 4), and the Hessian's top eigenvalue, trace
//! and eigenvalue density, on the training loss of a network at its trained weights, under each
//! batch-norm setting asked for (running statistics, or each evaluation batch's own as in the
//! paper's Keras code).

use anyhow::Result;
use datasets::Dataset;
use measure::curvature::{self, StepPoint, Symmetry, TopEigenvalue, Trace};
use measure::density::{SpectralDensity, spectral_density};
use measure::sharpness::{RandomSubspace, Sharpness, Subspace, SubspaceMatrix, epsilon_sharpness};
use nets::objective::{BatchNormMode, Weights};
use nets::train::{NetSpec, Trained};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::harness;

/// How the sharpness and curvature of a solution are measured (Keskar §2.2.2 and Metric 2.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasureConfig {
    /// ε of Metric 2.1 (the paper: 1e-3 and 5e-4).
    pub epsilons: Vec<f64>,
    /// L-BFGS-B iterations of the inner maximization (the paper: 10).
    pub lbfgsb_iterations: usize,
    /// Dimension p of the random subspace of Table 4 (the paper: 100).
    pub subspace_dim: usize,
    /// The readings of A measured, each from the same draws (see
    /// `measure::sharpness::RandomSubspace`).
    pub subspace_matrices: Vec<SubspaceMatrix>,
    /// Lanczos steps (Hessian-vector products) at most for the top Hessian eigenvalue.
    pub lanczos_steps: usize,
    /// Relative residual of the Ritz pair that ends the Lanczos iteration.
    pub lanczos_tol: f64,
    /// Rademacher probes of Hutchinson's trace estimate.
    pub trace_probes: usize,
    /// Step of the central differences of gradients behind each Hessian-vector product. The
    /// gradients are computed in f64 for these products, and 1e-7 sits on the plateau of the
    /// step sweep on the default F1 and C1 solutions: steps of 1e-5 and above straddle ReLU
    /// kinks (the products change by 100 % or more between steps), steps of 1e-8 and below lose
    /// digits to rounding, and from 1e-6 to 1e-7 the products agree to about 1e-6. The seed-0
    /// runs record the sweep again (`step_sweep`).
    pub fd_step: f64,
    /// Steps of the difference-step sweep (one seed per cell): the Hessian-vector product along
    /// one random direction at each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub step_sweep: Vec<f64>,
    /// Samples per forward/backward chunk of the training loss (does not change the result).
    pub chunk: usize,
    /// The objective's training samples: a fixed random subset of this size (drawn from `seed`),
    /// or `None` for the whole training set as in the paper. A full-set gradient costs about one
    /// epoch of training, and the measurements take ~100 of them, so the default scale measures
    /// on a quarter of its training set to stay within 30 % of the training time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<usize>,
    /// The batch-norm settings measured, each a full set of measurements.
    #[serde(default = "running_only")]
    pub batch_norm: Vec<BatchNormMode>,
    /// Evaluation batch under batch statistics: the objective's samples are cut into consecutive
    /// batches of this size (the last may be smaller). The paper's code evaluates at 5000.
    #[serde(default = "paper_eval_batch")]
    pub eval_batch: usize,
    /// Extra ε of a full-space sweep (one seed per cell): how φ grows with ε, slope 2 on a
    /// log-log plot where the loss is quadratic over the box.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sweep_epsilons: Vec<f64>,
    /// Whether to measure the full-space sharpness at the first ε on the whole training set too
    /// (one seed per cell), beside the subset's value: the subset's bias.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub full_set: bool,
    /// ε of the adaptive sharpness (the box |δ_i| ≤ ε |x_i|; see `measure::sharpness`), if any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adaptive_epsilons: Vec<f64>,
    /// Stochastic Lanczos quadrature of the Hessian's eigenvalue density (one seed per cell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub density: Option<DensityConfig>,
    /// Seed of the subspace matrix, the Lanczos start and the probes.
    pub seed: u64,
}

/// Stochastic Lanczos quadrature's size (Ghorbani, Krishnan & Xiao 2019 use 90 steps, PyHessian
/// 100 steps and 1 probe).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DensityConfig {
    /// Lanczos steps per probe (one Hessian-vector product each).
    pub steps: usize,
    /// Random start vectors.
    pub probes: usize,
}

fn running_only() -> Vec<BatchNormMode> {
    vec![BatchNormMode::Running]
}

fn paper_eval_batch() -> usize {
    5000
}

impl MeasureConfig {
    /// The paper's settings, with curvature estimates sized to cost a fraction of training.
    pub fn keskar(seed: u64) -> MeasureConfig {
        MeasureConfig {
            epsilons: vec![1e-3, 5e-4],
            lbfgsb_iterations: 10,
            subspace_dim: 100,
            subspace_matrices: vec![SubspaceMatrix::Gaussian, SubspaceMatrix::UnitColumns],
            lanczos_steps: 20,
            lanczos_tol: 1e-2,
            trace_probes: 10,
            fd_step: 1e-7,
            step_sweep: Vec::new(),
            chunk: 500,
            samples: Some(1000),
            batch_norm: BatchNormMode::ALL.to_vec(),
            eval_batch: paper_eval_batch(),
            sweep_epsilons: Vec::new(),
            full_set: false,
            adaptive_epsilons: Vec::new(),
            density: None,
            seed,
        }
    }

    /// [`keskar`](MeasureConfig::keskar) with the diagnostics measured on one seed per cell: the
    /// ε sweep 1e-5 … 1e-3, the whole training set's value, and the eigenvalue density.
    pub fn keskar_diagnosed(seed: u64) -> MeasureConfig {
        MeasureConfig {
            sweep_epsilons: vec![1e-5, 3e-5, 1e-4, 3e-4],
            step_sweep: vec![1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9],
            full_set: true,
            density: Some(DensityConfig { steps: 40, probes: 2 }),
            ..MeasureConfig::keskar(seed)
        }
    }

    /// Full-space sharpness at ε = 1e-3 only, on running statistics (Figures 4–6, whose ε the
    /// paper does not state).
    pub fn sharpness_only(seed: u64) -> MeasureConfig {
        MeasureConfig {
            epsilons: vec![1e-3],
            subspace_dim: 0,
            subspace_matrices: Vec::new(),
            lanczos_steps: 0,
            trace_probes: 0,
            batch_norm: running_only(),
            ..MeasureConfig::keskar(seed)
        }
    }
}

/// What [`measure`] computes under a config, in the two units that price it: objective
/// evaluations (loss and gradient in f32) on the measured samples, and Hessian-vector products
/// (two f64 gradients each). For a run's predicted time, before it starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Work {
    /// Objective evaluations, counted in evaluations on the measured samples (one on the whole
    /// training set counts `train / samples`). Each L-BFGS-B maximization is charged
    /// 2 evaluations per iteration and 1 at the start: its line searches mostly take 1 or 2 (the
    /// committed records average 1.5 per iteration; a few take more).
    pub evaluations: f64,
    /// Hessian-vector products: every Lanczos step allowed, the symmetry check's 2, the trace's
    /// probes, the difference-step sweep and the density's steps.
    pub products: usize,
}

impl MeasureConfig {
    /// The work of measuring one solution of a network with (`has_norm`) or without batch norm,
    /// trained on `train` samples; a network without batch norm is measured once.
    pub fn work(&self, has_norm: bool, train: usize) -> Work {
        let settings = self.batch_norm.iter().filter(|&&m| has_norm || m == BatchNormMode::Running).count();
        let per_maximization = (2 * self.lbfgsb_iterations + 1) as f64;
        let subspaces = if self.subspace_dim > 0 { self.subspace_matrices.len() } else { 0 };
        let samples = self.samples.map_or(train, |m| m.min(train)).max(1);
        let whole_set = match self.full_set && !self.epsilons.is_empty() {
            true => train as f64 / samples as f64,
            false => 0.0,
        };
        let maximizations =
            (self.epsilons.len() * (1 + subspaces) + self.sweep_epsilons.len() + self.adaptive_epsilons.len()) as f64
                + whole_set;
        let lanczos = if self.lanczos_steps > 0 { self.lanczos_steps + 2 } else { 0 };
        let density = self.density.as_ref().map_or(0, |d| d.steps * d.probes);
        Work {
            evaluations: settings as f64 * per_maximization * maximizations,
            products: settings * (lanczos + self.trace_probes + self.step_sweep.len() + density),
        }
    }
}

/// Seconds of one objective evaluation (f32) and of one Hessian-vector product (f64) of `spec`
/// on the samples `cfg` measures on, timed once each at the network's initial weights on the
/// current thread pool (their cost does not depend on the weights).
pub fn unit_seconds(spec: &NetSpec, data: &Dataset, cfg: &MeasureConfig, device: &nets::Device) -> (f64, f64) {
    use measure::Objective;
    let samples = measured_samples(data, cfg);
    let weights = spec.initial_weights(0, device);
    let x = weights.params_f64();
    let mut grad = vec![0.0; x.len()];
    let mut obj = objective(spec, &weights, &samples, cfg, BatchNormMode::Running, device).0;
    let start = std::time::Instant::now();
    obj.value_grad(&x, &mut grad);
    let evaluation = start.elapsed().as_secs_f64();
    let mut hess = curvature_objective(spec, &weights, &samples, cfg, BatchNormMode::Running, device);
    let start = std::time::Instant::now();
    curvature::hessian_vector(&mut hess, &x, &grad, cfg.fd_step);
    (evaluation, start.elapsed().as_secs_f64())
}

/// Sharpness and curvature of one solution under one batch-norm setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measures {
    /// The statistics batch norm normalized with.
    pub batch_norm: BatchNormMode,
    /// The evaluation batch under batch statistics (the objective's samples when fewer than
    /// `eval_batch`); none under running statistics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_batch: Option<usize>,
    /// Metric 2.1 with A = I, one per ε (Table 3).
    pub full_space: Vec<Sharpness>,
    /// Metric 2.1 in the random subspace, one entry per reading of A (Table 4).
    pub subspace: Vec<SubspaceSharpness>,
    /// Top eigenvalue of the Hessian of the training loss (Lanczos; none if not asked).
    pub top_eigenvalue: Option<TopEigenvalue>,
    /// Trace of that Hessian (Hutchinson), with its standard error (none if not asked).
    pub trace: Option<Trace>,
    /// vᵀ(Hw) against wᵀ(Hv) for two random unit vectors: the products' symmetry (with the
    /// curvature; none if not asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symmetry: Option<Symmetry>,
    /// The difference-step sweep (empty if not asked).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub step_sweep: Vec<StepPoint>,
    /// Full-space sharpness at each `sweep_epsilons` (empty if not asked).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sweep: Vec<Sharpness>,
    /// Adaptive sharpness at each `adaptive_epsilons` (empty if not asked).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adaptive: Vec<Sharpness>,
    /// Full-space sharpness at the first ε on the whole training set (none if not asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_set: Option<Sharpness>,
    /// The Hessian's eigenvalue density (none if not asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub density: Option<SpectralDensity>,
    /// Wall time of these measurements, seconds.
    pub seconds: f64,
}

/// Metric 2.1 in the random subspace for one reading of A, one value per ε.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubspaceSharpness {
    /// How A was drawn.
    pub matrix: SubspaceMatrix,
    /// One per ε.
    pub values: Vec<Sharpness>,
}

impl Measures {
    /// Full-space ε-sharpness at the first ε measured (the figures' one number per solution).
    pub fn sharpness(&self) -> Option<f64> {
        self.full_space.first().map(|s| s.value)
    }
}

/// What one cell produced: the training run, and the measurements of its solution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Parameter count and curves.
    #[serde(flatten)]
    pub trained: Trained,
    /// Wall time of training (with its per-epoch evaluations), seconds.
    #[serde(default)]
    pub train_seconds: f64,
    /// Sharpness and curvature, one per batch-norm setting the cell asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measures: Vec<Measures>,
}

impl Outcome {
    /// The measurements under batch-norm setting `mode`, if made.
    pub fn measured(&self, mode: BatchNormMode) -> Option<&Measures> {
        self.measures.iter().find(|m| m.batch_norm == mode)
    }

    /// Full-space ε-sharpness at the first ε on running statistics (the figures' one number
    /// per solution).
    pub fn sharpness(&self) -> Option<f64> {
        self.measured(BatchNormMode::Running)?.sharpness()
    }
}

/// The samples `cfg` measures on: a fixed subset of `data`'s training split (`cfg.samples`), or
/// all of `data` when that split is no larger.
fn measured_samples<'d>(data: &'d Dataset, cfg: &MeasureConfig) -> std::borrow::Cow<'d, Dataset> {
    match cfg.samples {
        Some(m) if m < data.train.len() => {
            std::borrow::Cow::Owned(training_subset(data, m, harness::derive_seed(cfg.seed, &["samples"])))
        }
        _ => std::borrow::Cow::Borrowed(data),
    }
}

/// `data` with its training split cut to `m` samples drawn without replacement from `seed` (in
/// their original order).
fn training_subset(data: &Dataset, m: usize, seed: u64) -> Dataset {
    use rand::seq::index::sample;
    let mut idx = sample(&mut ChaCha8Rng::seed_from_u64(seed), data.train.len(), m).into_vec();
    idx.sort_unstable();
    let len = data.sample_len();
    let mut out = data.clone();
    out.train.features =
        idx.iter().flat_map(|&i| data.train.features[i * len..(i + 1) * len].iter().copied()).collect();
    out.train.labels = idx.iter().map(|&i| data.train.labels[i]).collect();
    out
}

/// Measures the solution `weights` of `spec` on the training set of `data` (the objective:
/// mean cross-entropy, no dropout), once per batch-norm setting of `cfg`. Every setting uses the
/// same samples, subspace A, Lanczos starts and probes.
pub fn measure(
    spec: &NetSpec,
    weights: &Weights,
    data: &Dataset,
    cfg: &MeasureConfig,
    device: &nets::Device,
) -> Vec<Measures> {
    let samples = &measured_samples(data, cfg);
    let x = weights.params_f64();
    let subspace_seed = harness::derive_seed(cfg.seed, &["subspace"]);
    let subspaces: Vec<(SubspaceMatrix, Subspace)> = if cfg.subspace_dim > 0 {
        cfg.subspace_matrices
            .iter()
            .map(|&m| (m, Subspace::Random(RandomSubspace::new(x.len(), cfg.subspace_dim, subspace_seed, m))))
            .collect()
    } else {
        Vec::new()
    };
    let has_norm = spec.batch_norm().is_some();
    let mut out = Vec::new();
    for &mode in &cfg.batch_norm {
        // Without batch norm both settings are the same function: measure it once.
        if !has_norm && mode == BatchNormMode::Batch {
            continue;
        }
        let start = std::time::Instant::now();
        let (mut obj, eval_batch) = objective(spec, weights, samples, cfg, mode, device);
        let sharpness = |obj: &mut nets::objective::TrainingLoss, a: &Subspace, eps: f64| {
            epsilon_sharpness(obj, &x, a, eps, cfg.lbfgsb_iterations)
        };
        let full_space = cfg.epsilons.iter().map(|&eps| sharpness(&mut obj, &Subspace::Full, eps)).collect();
        let subspace = subspaces
            .iter()
            .map(|(matrix, a)| SubspaceSharpness {
                matrix: *matrix,
                values: cfg.epsilons.iter().map(|&eps| sharpness(&mut obj, a, eps)).collect(),
            })
            .collect();
        let sweep = cfg.sweep_epsilons.iter().map(|&eps| sharpness(&mut obj, &Subspace::Full, eps)).collect();
        let adaptive = cfg.adaptive_epsilons.iter().map(|&eps| sharpness(&mut obj, &Subspace::Adaptive, eps)).collect();
        // Curvature from products of f64 gradients (see `fd_step`); sharpness needs only
        // gradients and stays in f32.
        let mut hess = curvature_objective(spec, weights, samples, cfg, mode, device);
        let mut rng = ChaCha8Rng::seed_from_u64(harness::derive_seed(cfg.seed, &["hessian"]));
        let top_eigenvalue = (cfg.lanczos_steps > 0).then(|| {
            curvature::top_eigenvalue(&mut hess, &x, cfg.lanczos_steps, cfg.lanczos_tol, cfg.fd_step, &mut rng)
        });
        let trace =
            (cfg.trace_probes > 0).then(|| curvature::trace(&mut hess, &x, cfg.trace_probes, cfg.fd_step, &mut rng));
        let symmetry = (cfg.lanczos_steps > 0).then(|| curvature::symmetry(&mut hess, &x, cfg.fd_step, &mut rng));
        let step_sweep = curvature::step_sweep(&mut hess, &x, &cfg.step_sweep, &mut rng);
        let density = cfg.density.as_ref().map(|d| {
            let mut rng = ChaCha8Rng::seed_from_u64(harness::derive_seed(cfg.seed, &["density"]));
            spectral_density(&mut hess, &x, d.steps, d.probes, cfg.fd_step, &mut rng)
        });
        let full_set = match (cfg.full_set, cfg.epsilons.first()) {
            (true, Some(&eps)) => {
                Some(sharpness(&mut objective(spec, weights, data, cfg, mode, device).0, &Subspace::Full, eps))
            }
            _ => None,
        };
        out.push(Measures {
            batch_norm: mode,
            eval_batch,
            full_space,
            subspace,
            top_eigenvalue,
            trace,
            symmetry,
            step_sweep,
            sweep,
            adaptive,
            full_set,
            density,
            seconds: start.elapsed().as_secs_f64(),
        });
    }
    out
}

/// The f64 objective of the curvature (see `fd_step`): on `device` where f64 `exp` and `log` are
/// exact, else on flex (wgpu; see `nets::backend::exact_f64_exp_log`).
fn curvature_objective<'d>(
    spec: &NetSpec,
    weights: &Weights,
    data: &'d Dataset,
    cfg: &MeasureConfig,
    mode: BatchNormMode,
    device: &nets::Device,
) -> nets::objective::TrainingLoss<'d> {
    let f64_device = match nets::backend::exact_f64_exp_log(device) {
        true => device.clone(),
        false => nets::Backend::Flex.device().unwrap_or_else(|| device.clone()),
    };
    objective(spec, weights, data, cfg, mode, &f64_device).0.double_precision()
}

/// The training loss on `data` under batch-norm setting `mode`, and the evaluation batch under
/// batch statistics (`cfg.eval_batch`, or all of `data` when it has fewer samples).
fn objective<'d>(
    spec: &NetSpec,
    weights: &Weights,
    data: &'d Dataset,
    cfg: &MeasureConfig,
    mode: BatchNormMode,
    device: &nets::Device,
) -> (nets::objective::TrainingLoss<'d>, Option<usize>) {
    let (chunk, batch) = match mode {
        BatchNormMode::Running => (cfg.chunk, None),
        BatchNormMode::Batch => {
            let b = cfg.eval_batch.clamp(1, data.train.len().max(1));
            (b, Some(b))
        }
    };
    (spec.training_loss(weights, data, chunk, mode, device), batch)
}

/// Measures a finished run when `cfg` asks for it and the run did not diverge (a diverged run's
/// weights are not a solution: its record says where it diverged and holds no measurements).
pub fn measure_run(
    spec: &NetSpec,
    trained: &Trained,
    data: &Dataset,
    cfg: Option<&MeasureConfig>,
    device: &nets::Device,
) -> Result<Vec<Measures>> {
    match cfg {
        Some(cfg) if trained.finished() => {
            spec.check_weights(&trained.weights, device).map_err(|e| anyhow::anyhow!("measuring: {e}"))?;
            Ok(measure(spec, &trained.weights, data, cfg, device))
        }
        _ => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_work_counts_every_maximization_and_product_a_config_asks_for() {
        // Per batch-norm setting: 2 ε × (the full space + 2 subspace readings) = 6 maximizations
        // of 2 · 10 + 1 evaluations; 20 Lanczos steps + 2 symmetry products + 10 probes.
        let plain = MeasureConfig::keskar(0);
        assert_eq!(plain.work(true, 4000), Work { evaluations: 2.0 * 6.0 * 21.0, products: 2 * 32 });
        // Without batch norm both settings are one function, measured once.
        assert_eq!(plain.work(false, 4000), Work { evaluations: 6.0 * 21.0, products: 32 });
        // The diagnostics add 4 sweep ε, the whole set (4000 / 1000 = 4 subsets' worth of one
        // maximization), 7 difference steps and 2 × 40 density steps.
        let diagnosed = MeasureConfig::keskar_diagnosed(0);
        assert_eq!(diagnosed.work(true, 4000), Work { evaluations: 2.0 * 14.0 * 21.0, products: 2 * (32 + 7 + 80) });
        // A training set smaller than the subset is measured whole: the whole-set check costs one.
        assert_eq!(diagnosed.work(false, 500).evaluations, 11.0 * 21.0);
        assert_eq!(MeasureConfig::sharpness_only(0).work(true, 4000), Work { evaluations: 21.0, products: 0 });
    }
}
