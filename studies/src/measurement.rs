//! The measurement driver of every study that measures a solution: Keskar's ε-sharpness in the
//! full space and in a random subspace (Tables 3 and 4), and the Hessian's top eigenvalue and
//! trace, on the training loss of a network at its trained weights.

use anyhow::Result;
use datasets::Dataset;
use measure::curvature::{self, TopEigenvalue, Trace};
use measure::sharpness::{RandomSubspace, Sharpness, Subspace, SubspaceMatrix, epsilon_sharpness};
use nets::objective::Weights;
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
    /// Step of the central differences of gradients behind each Hessian-vector product.
    pub fd_step: f64,
    /// Samples per forward/backward chunk of the training loss (does not change the result).
    pub chunk: usize,
    /// The objective's training samples: a fixed random subset of this size (drawn from `seed`),
    /// or `None` for the whole training set as in the paper. A full-set gradient costs about one
    /// epoch of training, and the measurements take ~100 of them, so the default scale measures
    /// on a quarter of its training set to stay within 30 % of the training time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<usize>,
    /// Seed of the subspace matrix, the Lanczos start and the probes.
    pub seed: u64,
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
            fd_step: 1e-3,
            chunk: 500,
            samples: Some(1000),
            seed,
        }
    }

    /// Full-space sharpness at ε = 1e-3 only (Figures 4–6, whose ε the paper does not state).
    pub fn sharpness_only(seed: u64) -> MeasureConfig {
        MeasureConfig {
            epsilons: vec![1e-3],
            subspace_dim: 0,
            lanczos_steps: 0,
            trace_probes: 0,
            ..MeasureConfig::keskar(seed)
        }
    }
}

/// Sharpness and curvature of one solution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measures {
    /// Metric 2.1 with A = I, one per ε (Table 3).
    pub full_space: Vec<Sharpness>,
    /// Metric 2.1 in the random subspace, one entry per reading of A (Table 4).
    pub subspace: Vec<SubspaceSharpness>,
    /// Top eigenvalue of the Hessian of the training loss (Lanczos; none if not asked).
    pub top_eigenvalue: Option<TopEigenvalue>,
    /// Trace of that Hessian (Hutchinson), with its standard error (none if not asked).
    pub trace: Option<Trace>,
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
    /// Sharpness and curvature, when the cell asked for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measures: Option<Measures>,
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
/// mean cross-entropy, batch norm on its running statistics, no dropout).
pub fn measure(
    spec: &NetSpec,
    weights: &Weights,
    data: &Dataset,
    cfg: &MeasureConfig,
    device: &nets::Device,
) -> Measures {
    let start = std::time::Instant::now();
    let subset;
    let data = match cfg.samples {
        Some(m) if m < data.train.len() => {
            subset = training_subset(data, m, harness::derive_seed(cfg.seed, &["samples"]));
            &subset
        }
        _ => data,
    };
    let mut obj = spec.training_loss(weights, data, cfg.chunk, device);
    let x = weights.params_f64();
    let full_space = cfg
        .epsilons
        .iter()
        .map(|&eps| epsilon_sharpness(&mut obj, &x, &Subspace::Full, eps, cfg.lbfgsb_iterations))
        .collect();
    let subspace = if cfg.subspace_dim > 0 { cfg.subspace_matrices.clone() } else { Vec::new() };
    let subspace = subspace
        .into_iter()
        .map(|matrix| {
            let seed = harness::derive_seed(cfg.seed, &["subspace"]);
            let a = Subspace::Random(RandomSubspace::new(x.len(), cfg.subspace_dim, seed, matrix));
            let values = cfg
                .epsilons
                .iter()
                .map(|&eps| epsilon_sharpness(&mut obj, &x, &a, eps, cfg.lbfgsb_iterations))
                .collect();
            SubspaceSharpness { matrix, values }
        })
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(harness::derive_seed(cfg.seed, &["hessian"]));
    let top_eigenvalue = (cfg.lanczos_steps > 0)
        .then(|| curvature::top_eigenvalue(&mut obj, &x, cfg.lanczos_steps, cfg.lanczos_tol, cfg.fd_step, &mut rng));
    let trace = (cfg.trace_probes > 0).then(|| curvature::trace(&mut obj, &x, cfg.trace_probes, cfg.fd_step, &mut rng));
    Measures { full_space, subspace, top_eigenvalue, trace, seconds: start.elapsed().as_secs_f64() }
}

/// Measures a finished run when `cfg` asks for it and the run did not diverge (a diverged run's
/// weights are not a solution: its record says where it diverged and holds no measurements).
pub fn measure_run(
    spec: &NetSpec,
    trained: &Trained,
    data: &Dataset,
    cfg: Option<&MeasureConfig>,
    device: &nets::Device,
) -> Result<Option<Measures>> {
    match cfg {
        Some(cfg) if trained.finished() => {
            spec.check_weights(&trained.weights, device).map_err(|e| anyhow::anyhow!("measuring: {e}"))?;
            Ok(Some(measure(spec, &trained.weights, data, cfg, device)))
        }
        _ => Ok(None),
    }
}
