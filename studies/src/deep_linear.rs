//! Deep linear networks (Kawaguchi 2016, "Deep Learning without Poor Local Minima"): with the
//! squared loss, a linear network of any depth and width has no poor local minima. Every local
//! minimum is global, and every other critical point is a saddle; for more than three layers
//! (counting the input and output layers: depth L ≥ 3 weight matrices here) some saddles have no
//! negative Hessian eigenvalue ("bad" saddles). The theorem assumes XXᵀ and XYᵀ of full rank and
//! YXᵀ(XXᵀ)⁻¹XYᵀ with distinct eigenvalues, all of which hold for generic data like ours.
//!
//! The study trains linear networks x ↦ x A₁A₂⋯A_L of depth L = 2…5 by full-batch gradient
//! descent on a regression task, from many random initializations, and compares each run's
//! final loss with the global optimum in closed form. One hidden layer is a bottleneck of width
//! k, narrower than the input and the output, so the end-to-end map W = A₁⋯A_L has rank at most
//! k. The best such W is reduced-rank regression (Izenman 1975; for linear networks Baldi &
//! Hornik 1989): with the least-squares fit Ŵ = (XᵀX)⁻¹XᵀY and V_k the top k eigenvectors of
//! (XŴ)ᵀ(XŴ), the optimum is W* = Ŵ V_k V_kᵀ. A run that ends above it is reported with its
//! gradient norm, its Hessian's smallest eigenvalue (Lanczos on products from differences of
//! the analytic gradient) and ‖W‖, which tell a saddle from a slow descent.
//!
//! Two initial scales: the standard one (each entry N(0, 1/fan-in)), and a small one (a tenth of
//! it), which starts next to the saddle at W = 0. The theorem is about the landscape (there is no
//! poor local minimum to stop at), not about how long gradient descent takes: the report's
//! verdict checks that every run from the standard scale reached W* within its steps. That saddle is degenerate for L ≥ 3 (the loss near it is of order L in the
//! weights, so its Hessian vanishes), and gradient descent leaves it slowly.
//!
//! The linear algebra is a few small dense matrices, written out here: the shapes are at most
//! 12 × 12, and no matrix crate's setup would be shorter than the products themselves.
//!
//! Command: `cargo run --release -p studies -- deep-linear` (about a minute).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use measure::Objective;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::harness::{self, CellProgress, GridArgs, Record, Report, Study, fill};
use crate::plot::{self, PALETTE, Panel};
use crate::usage;

/// One line: what `studies list` and `--help` say.
pub const ABOUT: &str =
    "Deep linear nets (Kawaguchi 2016): GD from many inits against the closed-form global optimum";

/// Arguments of `studies deep-linear`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Random initializations per depth and initial scale.
    #[arg(long, default_value_t = 50)]
    pub inits: usize,
    /// Gradient-descent steps per run.
    #[arg(long, default_value_t = 20_000)]
    pub steps: usize,
    #[command(flatten)]
    pub grid: GridArgs,
}

// The task and the networks.
/// Input dimension d_x.
const INPUT: usize = 12;
/// Output dimension d_y.
const OUTPUT: usize = 10;
/// The bottleneck's width k, below both d_x and d_y: the rank of the end-to-end map.
const BOTTLENECK: usize = 3;
/// The width of the other hidden layers.
const HIDDEN: usize = 8;
/// Training samples n.
const SAMPLES: usize = 200;
/// Singular values of the true map W_true (d_x × d_y, rank d_y): three large, then a tail that
/// the bottleneck cannot fit, so the optimum's loss is well above the noise alone and the gap
/// between the third and fourth value keeps the top-k subspace well defined.
const TRUE_SINGULAR_VALUES: [f64; OUTPUT] = [2.0, 1.5, 1.0, 0.3, 0.25, 0.2, 0.15, 0.1, 0.05, 0.02];
/// Standard deviation of the label noise.
const NOISE: f64 = 0.5;
/// Depths L (weight matrices).
const DEPTHS: [usize; 4] = [2, 3, 4, 5];
/// Initial scales, in units of the standard deviation 1/√fan-in.
const INIT_SCALES: [f64; 2] = [1.0, 0.1];
/// The gradient-descent step (stable here: the Hessian's top eigenvalue stays below 2/0.02 on
/// this task at every depth).
const LEARNING_RATE: f64 = 0.02;
/// A run has reached the optimum when (L − L*) / L* is at most this ("within 1e-4 relative").
const TOLERANCE: f64 = 1e-4;
/// Lanczos steps for the final Hessian's extreme eigenvalues (at most the parameter count).
const LANCZOS_STEPS: usize = 60;
/// A run that ended above L* sits at the saddle value L*_r when its loss is this close
/// (relative).
const PLATEAU: f64 = 1e-3;
/// Step of the central differences of the analytic gradient (the loss is a polynomial: the
/// error is of order h² times its third derivatives).
const HESSIAN_STEP: f64 = 1e-5;

/// One cell: gradient descent on one network from one initialization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Layer widths d_x, hidden…, d_y.
    pub widths: Vec<usize>,
    /// Samples n.
    pub samples: usize,
    /// Singular values of the true map.
    pub true_singular_values: Vec<f64>,
    /// Label noise σ.
    pub noise: f64,
    /// Seed of the task (X, W_true, noise), shared by every cell.
    pub task_seed: u64,
    /// Initial scale in units of 1/√fan-in.
    pub init_scale: f64,
    /// Index of the initialization.
    pub init_index: usize,
    /// Seed of the initial weights.
    pub init_seed: u64,
    /// Gradient-descent step size.
    pub learning_rate: f64,
    /// Steps.
    pub steps: usize,
    /// Relative gap that counts as reaching the optimum.
    pub tolerance: f64,
}

impl Cell {
    /// Depth L.
    pub fn depth(&self) -> usize {
        self.widths.len() - 1
    }
}

/// What one run reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// L*, the closed-form global optimum of the loss over rank-k maps.
    pub optimum: f64,
    /// The eigenvalues of (XŴ)ᵀ(XŴ)/n, largest first: the theorem assumes them distinct, and
    /// the gap after the k-th makes the optimum unique.
    pub spectrum: Vec<f64>,
    /// The loss at the start.
    #[serde(with = "measure::nonfinite")]
    pub initial_loss: f64,
    /// The loss after the last step (NaN if it diverged).
    #[serde(with = "measure::nonfinite")]
    pub final_loss: f64,
    /// (L − L*) / L* at the end.
    #[serde(with = "measure::nonfinite")]
    pub relative_gap: f64,
    /// The first step at which the gap was within the tolerance, if any.
    pub reached_at: Option<usize>,
    /// ‖∇L‖ at the end.
    #[serde(with = "measure::nonfinite")]
    pub gradient_norm: f64,
    /// The Hessian's largest and smallest Ritz values at the end (by interlacing the Hessian has
    /// an eigenvalue at or below the smallest).
    pub hessian: measure::curvature::TopEigenvalue,
    /// ‖W‖_F of the end-to-end map at the end.
    #[serde(with = "measure::nonfinite")]
    pub end_to_end_norm: f64,
    /// ‖W*‖_F.
    pub optimum_norm: f64,
    /// L*_r, the loss of the best map of rank r, for r = 0…k (L*_0 at W = 0, L*_k = L*): the
    /// values of the saddles that gradient descent from a small initialization passes by, one
    /// rank at a time.
    pub rank_optima: Vec<f64>,
}

impl Outcome {
    /// The rank r whose L*_r is nearest the final loss, and the relative distance to it.
    pub fn nearest_rank(&self) -> (usize, f64) {
        self.rank_optima
            .iter()
            .map(|&l| ((self.final_loss - l) / l).abs())
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, f64::NAN))
    }
}

/// A dense row-major matrix product: `a` (m × k) times `b` (k × n).
fn matmul(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for p in 0..k {
            let v = a[i * k + p];
            if v != 0.0 {
                for j in 0..n {
                    out[i * n + j] += v * b[p * n + j];
                }
            }
        }
    }
    out
}

/// The transpose of an m × n row-major matrix.
fn transpose(a: &[f64], m: usize, n: usize) -> Vec<f64> {
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            out[j * m + i] = a[i * n + j];
        }
    }
    out
}

fn identity(n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        out[i * n + i] = 1.0;
    }
    out
}

/// The regression task in its sufficient statistics: C = XᵀX/n, B = XᵀY/n and ‖Y‖²/n, so that
/// ‖XW − Y‖²/2n = ½ (tr WᵀCW − 2 tr WᵀB + ‖Y‖²/n).
#[derive(Debug, Clone)]
pub struct Task {
    /// d_x.
    inputs: usize,
    /// d_y.
    outputs: usize,
    /// XᵀX/n (d_x × d_x).
    c: Vec<f64>,
    /// XᵀY/n (d_x × d_y).
    b: Vec<f64>,
    /// ‖Y‖²/n.
    yy: f64,
}

impl Task {
    /// Rows of X from N(0, I); Y = X W_true + σ·noise, with W_true = U diag(s) Vᵀ for random
    /// orthonormal U and V.
    pub fn random(n: usize, inputs: usize, singular: &[f64], noise: f64, seed: u64) -> Task {
        let outputs = singular.len();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let u = orthonormal_columns(inputs, outputs, &mut rng);
        let v = orthonormal_columns(outputs, outputs, &mut rng);
        let mut w_true = vec![0.0; inputs * outputs];
        for i in 0..inputs {
            for j in 0..outputs {
                w_true[i * outputs + j] = (0..outputs).map(|r| u[i * outputs + r] * singular[r] * v[j * outputs + r]).sum();
            }
        }
        let x: Vec<f64> = (0..n * inputs).map(|_| rng.sample(StandardNormal)).collect();
        let mut y = matmul(&x, &w_true, n, inputs, outputs);
        y.iter_mut().for_each(|v| *v += noise * rng.sample::<f64, _>(StandardNormal));
        Task::from_data(&x, &y, n, inputs, outputs)
    }

    /// The statistics of data X (n × inputs) and Y (n × outputs).
    pub fn from_data(x: &[f64], y: &[f64], n: usize, inputs: usize, outputs: usize) -> Task {
        let xt = transpose(x, n, inputs);
        let scale = 1.0 / n as f64;
        let c = matmul(&xt, x, inputs, n, inputs).iter().map(|v| v * scale).collect();
        let b = matmul(&xt, y, inputs, n, outputs).iter().map(|v| v * scale).collect();
        let yy = y.iter().map(|v| v * v).sum::<f64>() * scale;
        Task { inputs, outputs, c, b, yy }
    }

    /// The loss of the end-to-end map W (inputs × outputs) and its gradient CW − B.
    pub fn loss(&self, w: &[f64]) -> (f64, Vec<f64>) {
        let cw = matmul(&self.c, w, self.inputs, self.inputs, self.outputs);
        let quad: f64 = w.iter().zip(&cw).map(|(a, b)| a * b).sum();
        let lin: f64 = w.iter().zip(&self.b).map(|(a, b)| a * b).sum();
        let grad = cw.iter().zip(&self.b).map(|(a, b)| a - b).collect();
        (0.5 * (quad - 2.0 * lin + self.yy), grad)
    }

    /// Ŵ = C⁻¹B, the least-squares fit (through C's eigendecomposition; C is positive definite
    /// when X has full column rank).
    fn least_squares(&self) -> Vec<f64> {
        let d = self.inputs;
        let (values, vectors) = measure::curvature::symmetric_eigen(&self.c, d);
        let mut inverse = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..d {
                inverse[i * d + j] = (0..d).map(|r| vectors[i * d + r] * vectors[j * d + r] / values[r]).sum();
            }
        }
        matmul(&inverse, &self.b, d, d, self.outputs)
    }

    /// The best map of rank at most `rank` (reduced-rank regression), with the eigenvalues of
    /// (XŴ)ᵀ(XŴ)/n = ŴᵀCŴ, largest first.
    pub fn reduced_rank_optimum(&self, rank: usize) -> (Vec<f64>, Vec<f64>) {
        let (d, m) = (self.inputs, self.outputs);
        let fit = self.least_squares();
        let gram = matmul(&transpose(&fit, d, m), &matmul(&self.c, &fit, d, d, m), m, d, m);
        let (values, vectors) = measure::curvature::symmetric_eigen(&gram, m);
        let mut order: Vec<usize> = (0..m).collect();
        order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
        // P = V_k V_kᵀ, the projection onto the top-k right singular vectors of XŴ.
        let mut projection = vec![0.0; m * m];
        for &r in &order[..rank.min(m)] {
            for i in 0..m {
                for j in 0..m {
                    projection[i * m + j] += vectors[i * m + r] * vectors[j * m + r];
                }
            }
        }
        (matmul(&fit, &projection, d, m, m), order.iter().map(|&r| values[r]).collect())
    }
}

/// `cols` orthonormal columns of length `rows` (Gram-Schmidt of Gaussian vectors), row-major.
fn orthonormal_columns(rows: usize, cols: usize, rng: &mut impl Rng) -> Vec<f64> {
    let mut q: Vec<Vec<f64>> = Vec::new();
    while q.len() < cols {
        let mut v: Vec<f64> = (0..rows).map(|_| rng.sample(StandardNormal)).collect();
        for _ in 0..2 {
            for u in &q {
                let d: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(u).for_each(|(a, b)| *a -= d * b);
            }
        }
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        v.iter_mut().for_each(|a| *a /= norm);
        q.push(v);
    }
    let mut out = vec![0.0; rows * cols];
    for (j, v) in q.iter().enumerate() {
        for i in 0..rows {
            out[i * cols + j] = v[i];
        }
    }
    out
}

/// The loss of the linear network with layer widths `widths` as a function of its flat
/// weights (A₁, …, A_L row-major, one after another).
pub struct DeepLinear<'a> {
    /// The regression task.
    task: &'a Task,
    /// d_x, the hidden widths, d_y.
    widths: Vec<usize>,
}

impl DeepLinear<'_> {
    fn layers<'x>(&self, x: &'x [f64]) -> Vec<&'x [f64]> {
        let mut at = 0;
        self.widths
            .windows(2)
            .map(|w| {
                let layer = &x[at..at + w[0] * w[1]];
                at += w[0] * w[1];
                layer
            })
            .collect()
    }

    /// W = A₁⋯A_L.
    pub fn end_to_end(&self, x: &[f64]) -> Vec<f64> {
        let mut w = identity(self.widths[0]);
        for (i, a) in self.layers(x).into_iter().enumerate() {
            w = matmul(&w, a, self.widths[0], self.widths[i], self.widths[i + 1]);
        }
        w
    }

    /// Initial weights: entries N(0, (scale/√fan-in)²).
    pub fn initial(&self, scale: f64, rng: &mut impl Rng) -> Vec<f64> {
        self.widths
            .windows(2)
            .flat_map(|w| {
                let std = scale / (w[0] as f64).sqrt();
                (0..w[0] * w[1]).map(|_| std * rng.sample::<f64, _>(StandardNormal)).collect::<Vec<_>>()
            })
            .collect()
    }
}

impl Objective for DeepLinear<'_> {
    fn dim(&self) -> usize {
        self.widths.windows(2).map(|w| w[0] * w[1]).sum()
    }

    /// ∂L/∂A_i = (A₁⋯A_{i−1})ᵀ (CW − B) (A_{i+1}⋯A_L)ᵀ.
    fn value_grad(&mut self, x: &[f64], grad: &mut [f64]) -> f64 {
        let layers = self.layers(x);
        let (d, w) = (&self.widths, layers.len());
        // prefix[i] = A₁⋯A_i (d_x × d_i); suffix[i] = A_{i+1}⋯A_L (d_i × d_y).
        let mut prefix = vec![identity(d[0])];
        for i in 0..w {
            prefix.push(matmul(&prefix[i], layers[i], d[0], d[i], d[i + 1]));
        }
        let mut suffix = vec![identity(d[w]); w + 1];
        for i in (0..w).rev() {
            suffix[i] = matmul(layers[i], &suffix[i + 1], d[i], d[i + 1], d[w]);
        }
        let (loss, g) = self.task.loss(&prefix[w]);
        let mut at = 0;
        for i in 0..w {
            let left = matmul(&transpose(&prefix[i], d[0], d[i]), &g, d[i], d[0], d[w]);
            let block = matmul(&left, &transpose(&suffix[i + 1], d[i + 1], d[w]), d[i], d[w], d[i + 1]);
            grad[at..at + block.len()].copy_from_slice(&block);
            at += block.len();
        }
        loss
    }
}

fn frobenius(a: &[f64]) -> f64 {
    a.iter().map(|v| v * v).sum::<f64>().sqrt()
}

struct DeepLinearStudy {
    cells: Vec<Cell>,
}

impl Study for DeepLinearStudy {
    type Cell = Cell;
    type Outcome = Outcome;
    const NAME: &'static str = "deep-linear";

    fn cells(&self) -> Vec<Cell> {
        self.cells.clone()
    }

    fn label(cell: &Cell) -> String {
        format!("L{}-scale{}-init{}", cell.depth(), cell.init_scale, cell.init_index)
    }

    fn run_cell(&self, cell: &Cell, _progress: &CellProgress) -> Result<Outcome> {
        let task = Task::random(cell.samples, cell.widths[0], &cell.true_singular_values, cell.noise, cell.task_seed);
        let bottleneck = *cell.widths.iter().min().expect("widths");
        let (optimum_map, spectrum) = task.reduced_rank_optimum(bottleneck);
        let optimum = task.loss(&optimum_map).0;
        let rank_optima = (0..=bottleneck).map(|r| task.loss(&task.reduced_rank_optimum(r).0).0).collect();
        let mut net = DeepLinear { task: &task, widths: cell.widths.clone() };
        let mut rng = ChaCha8Rng::seed_from_u64(cell.init_seed);
        let mut x = net.initial(cell.init_scale, &mut rng);
        let mut g = vec![0.0; x.len()];
        let mut initial_loss = f64::NAN;
        let mut reached_at = None;
        for step in 0..cell.steps {
            let loss = net.value_grad(&x, &mut g);
            if step == 0 {
                initial_loss = loss;
            }
            if !loss.is_finite() {
                break;
            }
            if reached_at.is_none() && (loss - optimum) / optimum <= cell.tolerance {
                reached_at = Some(step);
            }
            x.iter_mut().zip(&g).for_each(|(w, g)| *w -= cell.learning_rate * g);
        }
        let final_loss = net.value_grad(&x, &mut g);
        if reached_at.is_none() && (final_loss - optimum) / optimum <= cell.tolerance {
            reached_at = Some(cell.steps);
        }
        let gradient_norm = frobenius(&g);
        let steps = LANCZOS_STEPS.min(x.len());
        let hessian = measure::curvature::top_eigenvalue(&mut net, &x, steps, 1e-10, HESSIAN_STEP, &mut rng);
        Ok(Outcome {
            optimum,
            spectrum,
            initial_loss,
            final_loss,
            relative_gap: (final_loss - optimum) / optimum,
            reached_at,
            gradient_norm,
            hessian,
            end_to_end_norm: frobenius(&net.end_to_end(&x)),
            optimum_norm: frobenius(&optimum_map),
            rank_optima,
        })
    }

    fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<Report> {
        let (text, passed) = report(records, dir)?;
        Ok(Report { text, passed })
    }
}

/// The widths of a depth-`depth` network: the bottleneck in the middle hidden layer.
fn widths(depth: usize) -> Vec<usize> {
    let mut w = vec![INPUT];
    w.extend((0..depth - 1).map(|i| if i == (depth - 1) / 2 { BOTTLENECK } else { HIDDEN }));
    w.push(OUTPUT);
    w
}

/// Builds the grid, runs it, reports; the report fails if a run from the standard
/// initialization ends away from the optimum.
pub fn run(args: Args) -> Result<Report> {
    if args.inits == 0 {
        usage!("--inits 0: at least one initialization is needed (accepted: 1 or more)");
    }
    if args.steps == 0 {
        usage!("--steps 0: at least one step is needed (accepted: 1 or more)");
    }
    let jobs = args.grid.jobs()?;
    let master = args.grid.seed;
    let task_seed = harness::derive_seed(master, &["deep-linear", "task"]);
    let mut cells = Vec::new();
    for depth in DEPTHS {
        for scale in INIT_SCALES {
            for i in 0..args.inits {
                cells.push(Cell {
                    widths: widths(depth),
                    samples: SAMPLES,
                    true_singular_values: TRUE_SINGULAR_VALUES.to_vec(),
                    noise: NOISE,
                    task_seed,
                    init_scale: scale,
                    init_index: i,
                    init_seed: harness::derive_seed(master, &["deep-linear", &depth.to_string(), &scale.to_string(), &i.to_string()]),
                    learning_rate: LEARNING_RATE,
                    steps: args.steps,
                    tolerance: TOLERANCE,
                });
            }
        }
    }
    let opts = args.grid.options(jobs, crate::env::Env::capture_cpu_only(jobs))?;
    harness::execute(&DeepLinearStudy { cells }, &opts)
}

/// `studies report deep-linear`.
pub fn report_saved(out: &Path) -> Result<Report> {
    harness::report_saved::<DeepLinearStudy>(out)
}

/// A row of `deep-linear.csv`: one run.
#[derive(Serialize)]
struct RunCsv {
    depth: usize,
    init_scale: f64,
    init_index: usize,
    final_loss: f64,
    optimum: f64,
    relative_gap: f64,
    reached_at: Option<usize>,
    gradient_norm: f64,
    hessian_largest: f64,
    hessian_smallest: f64,
    end_to_end_norm: f64,
    /// The r whose L*_r is nearest the final loss, and the relative distance to it.
    nearest_rank: usize,
    nearest_rank_distance: f64,
}

/// log₁₀ of a relative gap for the histogram, floored at 1e-16 (f64's resolution of a loss);
/// `None` for a diverged run (counted apart).
fn log_gap(gap: f64) -> Option<f64> {
    gap.is_finite().then(|| gap.max(1e-16).log10())
}

fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<(String, bool)> {
    let mut md = String::from("# Deep linear networks: every local minimum is global\n\n");
    let first = &records[0];
    let c = &first.config;
    let spectrum: Vec<String> = first.outcome.spectrum.iter().map(|v| format!("{v:.3}")).collect();
    writeln!(
        md,
        "{}\n",
        fill(
            include_str!("text/deep-linear.md"),
            &[
                ("inputs", c.widths[0].to_string()),
                ("outputs", c.widths[c.widths.len() - 1].to_string()),
                ("bottleneck", c.widths.iter().min().expect("widths").to_string()),
                ("samples", c.samples.to_string()),
                ("noise", c.noise.to_string()),
                ("steps", c.steps.to_string()),
                ("learning_rate", c.learning_rate.to_string()),
                ("tolerance", format!("{:e}", c.tolerance)),
                ("optimum", format!("{:.6}", first.outcome.optimum)),
                ("spectrum", spectrum.join(", ")),
            ]
        )
    )?;
    md.push_str(
        "| depth | widths | initial scale | runs | reached L* (within tolerance) | largest relative gap | \
         median steps to reach | smallest Hessian eigenvalue (reached runs, min) |\n\
         |---:|---|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut passed = true;
    let mut csv = Vec::new();
    let mut stragglers = Vec::new();
    let mut diverged = 0;
    // One row of panels per initial scale, one colour per depth.
    let mut panels = Vec::new();
    let gap_edges: Vec<f64> = (0..=34).map(|i| -16.0 + 0.5 * i as f64).collect();
    let mut depths: Vec<usize> = records.iter().map(|r| r.config.depth()).collect();
    depths.sort_unstable();
    depths.dedup();
    let mut scales: Vec<f64> = records.iter().map(|r| r.config.init_scale).collect();
    scales.sort_by(|a, b| b.total_cmp(a));
    scales.dedup();
    let max_steps = records.iter().map(|r| r.config.steps).max().unwrap_or(1) as f64;
    let step_edges: Vec<f64> = (0..=20).map(|i| max_steps * i as f64 / 20.0).collect();
    for &scale in &scales {
        let (mut gap_series, mut step_series) = (Vec::new(), Vec::new());
        for (&depth, &color) in depths.iter().zip(PALETTE.iter().cycle()) {
            let runs: Vec<&Record<Cell, Outcome>> =
                records.iter().filter(|r| r.config.depth() == depth && r.config.init_scale == scale).collect();
            if runs.is_empty() {
                continue;
            }
            let reached: Vec<&&Record<Cell, Outcome>> = runs.iter().filter(|r| r.outcome.reached_at.is_some()).collect();
            let largest = runs.iter().map(|r| r.outcome.relative_gap).fold(f64::NEG_INFINITY, |a, b| if a.is_nan() || b.is_nan() { f64::NAN } else { a.max(b) });
            let mut steps: Vec<f64> = reached.iter().map(|r| r.outcome.reached_at.unwrap_or(0) as f64).collect();
            steps.sort_by(f64::total_cmp);
            let median = if steps.is_empty() { f64::NAN } else { steps[steps.len() / 2] };
            let smallest = reached.iter().map(|r| r.outcome.hessian.smallest).fold(f64::INFINITY, f64::min);
            writeln!(
                md,
                "| {depth} | {} | {scale} | {} | {} | {largest:.1e} | {} | {} |",
                runs[0].config.widths.iter().map(|w| w.to_string()).collect::<Vec<_>>().join("–"),
                runs.len(),
                reached.len(),
                if median.is_nan() { "—".to_string() } else { format!("{median:.0}") },
                if reached.is_empty() { "—".to_string() } else { format!("{smallest:.1e}") },
            )?;
            if scale == 1.0 {
                passed &= reached.len() == runs.len();
            }
            for r in &runs {
                let o = &r.outcome;
                let (nearest_rank, nearest_rank_distance) = o.nearest_rank();
                if o.reached_at.is_none() {
                    stragglers.push(*r);
                }
                csv.push(RunCsv {
                    depth,
                    init_scale: scale,
                    init_index: r.config.init_index,
                    final_loss: o.final_loss,
                    optimum: o.optimum,
                    relative_gap: o.relative_gap,
                    reached_at: o.reached_at,
                    gradient_norm: o.gradient_norm,
                    hessian_largest: o.hessian.value,
                    hessian_smallest: o.hessian.smallest,
                    end_to_end_norm: o.end_to_end_norm,
                    nearest_rank,
                    nearest_rank_distance,
                });
            }
            let label = format!("L = {depth}");
            let gaps: Vec<f64> = runs.iter().filter_map(|r| log_gap(r.outcome.relative_gap)).collect();
            diverged += runs.len() - gaps.len();
            gap_series.push(plot::histogram_series(label.clone(), color, &gaps, &gap_edges));
            step_series.push(plot::histogram_series(label, color, &steps, &step_edges));
        }
        let mut gap_panel = Panel::new(
            format!("Final relative gap (L − L*) / L*, initial scale {scale}"),
            "log10 relative gap (floored at 1e-16)",
            "runs",
            gap_series,
        );
        gap_panel.legend = plotters::prelude::SeriesLabelPosition::UpperMiddle;
        let step_panel = Panel::new(
            format!("Steps until within the tolerance, initial scale {scale}"),
            "step",
            "runs",
            step_series,
        );
        panels.extend([gap_panel, step_panel]);
    }
    if diverged > 0 {
        writeln!(md, "\n{diverged} runs diverged (a non-finite loss); they are left out of the histogram.")?;
    }
    if stragglers.is_empty() {
        md.push_str("\nEvery run reached the optimum within the tolerance.\n");
    } else {
        md.push_str(include_str!("text/deep-linear-stragglers.md"));
        let optima = &stragglers[0].outcome.rank_optima;
        let optima: Vec<String> = optima.iter().enumerate().map(|(r, l)| format!("L*_{r} = {l:.4}")).collect();
        writeln!(md, "\nThe values L*_r of this task (the last is L*, the optimum): {}.", optima.join(", "))?;
        md.push_str(
            "\n| depth | initial scale | runs above L* | at L*_r (r: runs) | at none | ‖∇L‖ (largest) | \
             smallest Hessian eigenvalue (range) | ‖W‖_F (range; ‖W*‖_F) |\n\
             |---:|---:|---:|---|---:|---:|---|---|\n",
        );
        let mut groups: Vec<(usize, f64)> = stragglers.iter().map(|r| (r.config.depth(), r.config.init_scale)).collect();
        groups.dedup();
        for (depth, scale) in groups {
            let runs: Vec<&Outcome> = stragglers
                .iter()
                .filter(|r| r.config.depth() == depth && r.config.init_scale == scale)
                .map(|r| &r.outcome)
                .collect();
            let mut at_rank = vec![0usize; runs[0].rank_optima.len()];
            let mut elsewhere = 0;
            for o in &runs {
                match o.nearest_rank() {
                    (rank, distance) if distance <= PLATEAU => at_rank[rank] += 1,
                    _ => elsewhere += 1,
                }
            }
            let at: Vec<String> =
                at_rank.iter().enumerate().filter(|(_, n)| **n > 0).map(|(r, n)| format!("{r}: {n}")).collect();
            let range = |f: fn(&Outcome) -> f64| {
                let (lo, hi) = crate::stats::min_max(runs.iter().map(|o| f(o)));
                format!("{lo:.1e} … {hi:.1e}")
            };
            writeln!(
                md,
                "| {depth} | {scale} | {} | {} | {elsewhere} | {:.1e} | {} | {}; {:.2} |",
                runs.len(),
                if at.is_empty() { "—".to_string() } else { at.join(", ") },
                runs.iter().map(|o| o.gradient_norm).fold(0.0, f64::max),
                range(|o| o.hessian.smallest),
                range(|o| o.end_to_end_norm),
                runs[0].optimum_norm,
            )?;
        }
        writeln!(md, "\nEach run, with its nearest L*_r: `deep-linear.csv`.")?;
    }
    writeln!(md, "\nVerdict: {}.", if passed { "every run from the standard initialization reached the global optimum" } else { "a run from the standard initialization ended away from the global optimum" })?;
    std::fs::create_dir_all(dir)?;
    harness::write_atomic(&dir.join("deep-linear.md"), md.as_bytes())?;
    harness::write_csv(&dir.join("deep-linear.csv"), &csv)?;
    plot::write_grid(&dir.join("deep-linear"), scales.len(), &panels)?;
    Ok((md, passed))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The closed form against a brute-force search over every rank-1 map of a tiny problem:
    /// W = u vᵀ with ‖v‖ = 1, where for each v the best u is a least-squares solve, so a fine
    /// grid over v's angle covers every rank-1 W.
    #[test]
    fn reduced_rank_optimum_matches_a_brute_force_search() {
        let task = Task::random(30, 3, &[2.0, 0.7], 0.3, 7);
        let (w, _) = task.reduced_rank_optimum(1);
        let closed = task.loss(&w).0;
        let fit = task.least_squares();
        let mut best = f64::INFINITY;
        for i in 0..200_000 {
            let theta = std::f64::consts::PI * i as f64 / 200_000.0;
            let v = [theta.cos(), theta.sin()];
            // u = Ŵ v, and W = u vᵀ.
            let u: Vec<f64> = (0..3).map(|r| fit[r * 2] * v[0] + fit[r * 2 + 1] * v[1]).collect();
            let w: Vec<f64> = (0..3).flat_map(|r| [u[r] * v[0], u[r] * v[1]]).collect();
            best = best.min(task.loss(&w).0);
        }
        assert!(closed <= best + 1e-12, "closed form {closed} above the search's {best}");
        assert!(best - closed < 1e-8, "search {best} far above the closed form {closed}");
        // Full rank is ordinary least squares.
        let (full, _) = task.reduced_rank_optimum(2);
        assert!((task.loss(&full).0 - task.loss(&fit).0).abs() < 1e-12);
    }

    /// The sufficient statistics give the loss of the data themselves.
    #[test]
    fn task_loss_is_the_mean_squared_error() {
        let x = [1.0, 2.0, 0.5, -1.0, 3.0, 0.0];
        let y = [1.0, 0.0, 2.0, 1.0, -1.0, 0.5];
        let task = Task::from_data(&x, &y, 3, 2, 2);
        let w = [0.3, -0.2, 0.1, 0.4];
        let pred = matmul(&x, &w, 3, 2, 2);
        let direct = pred.iter().zip(&y).map(|(p, t)| (p - t).powi(2)).sum::<f64>() / (2.0 * 3.0);
        assert!((task.loss(&w).0 - direct).abs() < 1e-12);
    }

    /// The network's gradient against central differences of its loss.
    #[test]
    fn gradient_matches_finite_differences() {
        let task = Task::random(50, 4, &[1.0, 0.5, 0.2], 0.1, 3);
        let mut net = DeepLinear { task: &task, widths: vec![4, 3, 2, 3] };
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let x = net.initial(1.0, &mut rng);
        let mut g = vec![0.0; x.len()];
        net.value_grad(&x, &mut g);
        for i in 0..x.len() {
            let (mut plus, mut minus) = (x.clone(), x.clone());
            plus[i] += 1e-6;
            minus[i] -= 1e-6;
            let mut scratch = vec![0.0; x.len()];
            let fd = (net.value_grad(&plus, &mut scratch) - net.value_grad(&minus, &mut scratch)) / 2e-6;
            assert!((fd - g[i]).abs() < 1e-7 * (1.0 + g[i].abs()), "weight {i}: {fd} vs {}", g[i]);
        }
    }

    /// The bottleneck sits in the middle and caps the rank.
    #[test]
    fn widths_put_the_bottleneck_in_the_middle() {
        assert_eq!(widths(2), [INPUT, BOTTLENECK, OUTPUT]);
        assert_eq!(widths(3), [INPUT, HIDDEN, BOTTLENECK, OUTPUT]);
        assert_eq!(widths(5), [INPUT, HIDDEN, HIDDEN, BOTTLENECK, HIDDEN, OUTPUT]);
    }
}
