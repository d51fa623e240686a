//! Gradient descent on a convex loss: least-squares linear regression, L(w) = ‖Xw − y‖² / 2n.
//!
//! Its Hessian H = XᵀX / n is constant, so full-batch GD w ← w − α∇L converges to the
//! normal-equations solution w* = (XᵀX)⁻¹Xᵀy for every step size α < 2/L (L = λ_max(H)) and
//! diverges above it: the error along H's top eigenvector is multiplied by |1 − αL| per step.
//! The study checks both: GD at α = 1/L reaches w* to a relative error below 1e-6, and the
//! threshold found by bisection on α (does GD diverge within a step budget?) matches 2/L within
//! 2 %.
//!
//! Command: `cargo run --release -p studies -- convex` (seconds).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use measure::Objective;
use optim::{Optimizer, Rule};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::harness::{self, CellProgress, GridArgs, Record, Report, Study, fill};
use crate::plot::{self, PALETTE, Panel, Series};
use crate::usage;

/// One line: what `studies list` and `--help` say.
pub const ABOUT: &str =
    "GD on linear regression: reaches the normal-equations solution; step-size threshold 2/L found empirically";

/// Arguments of `studies convex`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Random regression problems (each its own X, w_true and noise).
    #[arg(long, default_value_t = 3)]
    pub seeds: usize,
    #[command(flatten)]
    pub grid: GridArgs,
}

/// One cell: one random regression problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Samples n.
    pub samples: usize,
    /// Features d.
    pub features: usize,
    /// Condition number of the feature covariance the rows are drawn from.
    pub condition: f64,
    /// Standard deviation of the label noise.
    pub noise: f64,
    /// GD iterations allowed to reach w* at α = 1/L.
    pub max_iter: usize,
    /// Iterations after which a run at step α counts as diverged (loss above its start).
    pub budget: usize,
    /// Index of the problem.
    pub seed_index: usize,
    /// Seed of X, w_true and the noise.
    pub seed: u64,
}

/// What one cell found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// L = λ_max(H), by Lanczos on Hessian-vector products (exact for a quadratic).
    pub lipschitz: f64,
    /// L(w*), the loss at the normal-equations solution.
    pub loss_at_optimum: f64,
    /// GD iterations at α = 1/L until ‖w − w*‖ / ‖w*‖ < 1e-8 (or `max_iter`).
    pub iterations: usize,
    /// ‖w − w*‖ / ‖w*‖ at the end of that run.
    pub relative_error: f64,
    /// The largest stable step found by bisection, in units of 2/L.
    pub threshold_over_theory: f64,
    /// L(w_k) − L(w*) along GD at the plotted step sizes (in units of 1/L), 200 iterations.
    pub curves: Vec<(f64, Vec<f64>)>,
}

/// Step sizes of the plot, in units of 1/L: below, near and above 2/L.
const PLOTTED: [f64; 5] = [0.5, 1.0, 1.9, 2.0, 2.05];

struct Convex {
    cells: Vec<Cell>,
}

/// L(w) = ‖Xw − y‖² / 2n as a [`measure::Objective`].
struct LeastSquares {
    x: Vec<f64>,
    y: Vec<f64>,
    n: usize,
    d: usize,
}

impl Objective for LeastSquares {
    fn dim(&self) -> usize {
        self.d
    }

    fn value_grad(&mut self, w: &[f64], grad: &mut [f64]) -> f64 {
        grad.iter_mut().for_each(|g| *g = 0.0);
        let mut loss = 0.0;
        for i in 0..self.n {
            let row = &self.x[i * self.d..(i + 1) * self.d];
            let r: f64 = row.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() - self.y[i];
            loss += r * r;
            grad.iter_mut().zip(row).for_each(|(g, a)| *g += r * a / self.n as f64);
        }
        loss / (2.0 * self.n as f64)
    }
}

impl LeastSquares {
    /// Rows drawn from N(0, Σ) with Σ's eigenvalues spread log-uniformly over [1/κ, 1] in a
    /// random basis; y = X w_true + noise.
    fn random(cell: &Cell) -> (LeastSquares, Vec<f64>) {
        let mut rng = ChaCha8Rng::seed_from_u64(cell.seed);
        let (n, d) = (cell.samples, cell.features);
        let scales: Vec<f64> =
            (0..d).map(|k| cell.condition.powf(-(k as f64) / (d - 1).max(1) as f64).sqrt()).collect();
        let mut q: Vec<Vec<f64>> = Vec::new();
        while q.len() < d {
            let mut v: Vec<f64> = (0..d).map(|_| rng.sample(StandardNormal)).collect();
            for u in &q {
                let c: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(u).for_each(|(a, b)| *a -= c * b);
            }
            let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
            v.iter_mut().for_each(|a| *a /= norm);
            q.push(v);
        }
        let w_true: Vec<f64> = (0..d).map(|_| rng.sample(StandardNormal)).collect();
        let mut x = vec![0.0; n * d];
        let mut y = vec![0.0; n];
        for i in 0..n {
            let z: Vec<f64> = (0..d).map(|k| scales[k] * rng.sample::<f64, _>(StandardNormal)).collect();
            for j in 0..d {
                x[i * d + j] = (0..d).map(|k| q[k][j] * z[k]).sum();
            }
            let noise: f64 = rng.sample(StandardNormal);
            y[i] = x[i * d..(i + 1) * d].iter().zip(&w_true).map(|(a, b)| a * b).sum::<f64>() + cell.noise * noise;
        }
        (LeastSquares { x, y, n, d }, w_true)
    }

    /// w* = (XᵀX)⁻¹ Xᵀy by a Cholesky solve of the normal equations.
    fn normal_equations(&self) -> Vec<f64> {
        let d = self.d;
        let mut a = vec![0.0; d * d];
        let mut b = vec![0.0; d];
        for i in 0..self.n {
            let row = &self.x[i * d..(i + 1) * d];
            for j in 0..d {
                b[j] += row[j] * self.y[i];
                for k in 0..d {
                    a[j * d + k] += row[j] * row[k];
                }
            }
        }
        // A = LLᵀ, then L z = b, Lᵀ w = z.
        let mut l = vec![0.0; d * d];
        for j in 0..d {
            for k in 0..=j {
                let s: f64 = (0..k).map(|m| l[j * d + m] * l[k * d + m]).sum();
                l[j * d + k] = if j == k { (a[j * d + j] - s).sqrt() } else { (a[j * d + k] - s) / l[k * d + k] };
            }
        }
        let mut z = vec![0.0; d];
        for j in 0..d {
            z[j] = (b[j] - (0..j).map(|m| l[j * d + m] * z[m]).sum::<f64>()) / l[j * d + j];
        }
        let mut w = vec![0.0; d];
        for j in (0..d).rev() {
            w[j] = (z[j] - (j + 1..d).map(|m| l[m * d + j] * w[m]).sum::<f64>()) / l[j * d + j];
        }
        w
    }
}

/// Runs GD at step `lr` from w = 0 for `iters` steps; returns L(w_k) − `optimum` for k = 0 … iters.
fn gd_gaps(obj: &mut LeastSquares, lr: f64, iters: usize, optimum: f64) -> Vec<f64> {
    let mut w = vec![0.0; obj.d];
    let mut g = vec![0.0; obj.d];
    let mut opt = Optimizer::new(Rule::Gd { lr }, obj.d, 0);
    let mut gaps = Vec::with_capacity(iters + 1);
    for _ in 0..iters {
        gaps.push(obj.value_grad(&w, &mut g) - optimum);
        opt.step(&mut w, &g);
    }
    gaps.push(obj.value_grad(&w, &mut g) - optimum);
    gaps
}

impl Study for Convex {
    type Cell = Cell;
    type Outcome = Outcome;
    const NAME: &'static str = "convex";

    fn cells(&self) -> Vec<Cell> {
        self.cells.clone()
    }

    fn label(cell: &Cell) -> String {
        format!("problem{}", cell.seed_index)
    }

    fn run_cell(&self, cell: &Cell, progress: &CellProgress) -> Result<Outcome> {
        let (mut obj, _) = LeastSquares::random(cell);
        let w_star = obj.normal_equations();
        let loss_at_optimum = obj.value_grad(&w_star, &mut vec![0.0; obj.d]);
        // Lanczos on the exact Hessian-vector products of a quadratic: d steps give λ_max exactly.
        let top = measure::curvature::top_eigenvalue(
            &mut obj,
            &w_star,
            cell.features,
            1e-12,
            1.0,
            &mut ChaCha8Rng::seed_from_u64(cell.seed),
        );
        let lipschitz = top.value;

        progress.message("GD at α = 1/L");
        let mut w = vec![0.0; obj.d];
        let mut g = vec![0.0; obj.d];
        let mut opt = Optimizer::new(Rule::Gd { lr: 1.0 / lipschitz }, obj.d, 0);
        let norm_star = w_star.iter().map(|v| v * v).sum::<f64>().sqrt();
        let error = |w: &[f64]| w.iter().zip(&w_star).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt() / norm_star;
        let mut iterations = 0;
        while iterations < cell.max_iter && error(&w) >= 1e-8 {
            obj.value_grad(&w, &mut g);
            opt.step(&mut w, &g);
            iterations += 1;
        }
        let relative_error = error(&w);

        progress.message("bisection on the step size");
        // Stable: after `budget` steps the loss has not risen above its starting value.
        let mut stable = |lr: f64| {
            let gaps = gd_gaps(&mut obj, lr, cell.budget, loss_at_optimum);
            let last = *gaps.last().expect("gaps");
            last.is_finite() && last <= gaps[0]
        };
        let (mut lo, mut hi) = (1.0 / lipschitz, 4.0 / lipschitz);
        for _ in 0..40 {
            let mid = 0.5 * (lo + hi);
            if stable(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let threshold_over_theory = 0.5 * (lo + hi) / (2.0 / lipschitz);
        let curves = PLOTTED.iter().map(|&k| (k, gd_gaps(&mut obj, k / lipschitz, 200, loss_at_optimum))).collect();
        Ok(Outcome { lipschitz, loss_at_optimum, iterations, relative_error, threshold_over_theory, curves })
    }

    fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<Report> {
        let (text, passed) = report(records, dir)?;
        Ok(Report { text, passed })
    }
}

/// `studies report convex`.
pub fn report_saved(out: &Path) -> Result<Report> {
    harness::report_saved::<Convex>(out)
}

/// A row of `convex.csv`.
#[derive(Serialize)]
struct ConvexCsv {
    problem: usize,
    lipschitz: f64,
    iterations: usize,
    relative_error: f64,
    threshold_over_theory: f64,
}

/// Builds the grid, runs it, reports; the report fails if an assertion of the study does not hold.
pub fn run(args: Args) -> Result<Report> {
    if args.seeds == 0 {
        usage!("--seeds 0: at least one problem is needed (accepted: 1 or more)");
    }
    let (backend, device, jobs) = args.grid.validate()?;
    let master = args.grid.seed;
    let cells = (0..args.seeds)
        .map(|i| Cell {
            samples: 500,
            features: 20,
            condition: 100.0,
            noise: 0.1,
            max_iter: 100_000,
            budget: 2000,
            seed_index: i,
            seed: harness::derive_seed(master, &["convex", &i.to_string()]),
        })
        .collect();
    let opts = args.grid.options(jobs, crate::env::Env::capture(backend, &device, jobs))?;
    harness::execute(&Convex { cells }, &opts)
}

fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<(String, bool)> {
    let mut md = String::from("# Gradient descent on linear regression\n\n");
    let c = &records[0].config;
    writeln!(md, "{}\n", fill(include_str!("text/convex.md"), &[("samples", c.samples.to_string()), ("features", c.features.to_string()), ("condition", c.condition.to_string()), ("noise", c.noise.to_string()), ("budget", c.budget.to_string())]))?;
    md.push_str(
        "| problem | L | iterations at α = 1/L (to 1e-8) | ‖w − w*‖ / ‖w*‖ | error < 1e-6 | \
         stable threshold / (2/L) | within 2 % |\n|---|---:|---:|---:|---|---:|---|\n",
    );
    let mut csv = Vec::new();
    let mut ok = true;
    for r in records {
        let o = &r.outcome;
        let e_ok = o.relative_error < 1e-6;
        let t_ok = (o.threshold_over_theory - 1.0).abs() < 0.02;
        ok &= e_ok && t_ok;
        writeln!(
            md,
            "| {} | {:.4} | {} | {:.2e} | {} | {:.5} | {} |",
            r.config.seed_index,
            o.lipschitz,
            o.iterations,
            o.relative_error,
            if e_ok { "yes" } else { "NO" },
            o.threshold_over_theory,
            if t_ok { "yes" } else { "NO" }
        )?;
        csv.push(ConvexCsv {
            problem: r.config.seed_index,
            lipschitz: o.lipschitz,
            iterations: o.iterations,
            relative_error: o.relative_error,
            threshold_over_theory: o.threshold_over_theory,
        });
    }
    let o = &records[0].outcome;
    let series = o
        .curves
        .iter()
        .enumerate()
        .map(|(i, (k, gaps))| Series {
            label: format!(
                "α = {k}/L{}",
                if *k < 2.0 {
                    ""
                } else if *k == 2.0 {
                    " (= 2/L)"
                } else {
                    " (> 2/L)"
                }
            ),
            color: PALETTE[i % PALETTE.len()],
            dashed: *k >= 2.0,
            x: (0..gaps.len()).map(|j| j as f64).collect(),
            mean: gaps.iter().map(|g| g.max(1e-16)).collect(),
            std: vec![0.0; gaps.len()],
        })
        .collect();
    let mut panel = Panel::new("GD on linear regression (problem 0)", "iteration", "L(w) − L(w*) (log scale)", series);
    panel.log_y = true;
    panel.legend = plotters::prelude::SeriesLabelPosition::UpperLeft;
    std::fs::create_dir_all(dir)?;
    harness::write_atomic(&dir.join("convex.md"), md.as_bytes())?;
    harness::write_csv(&dir.join("convex.csv"), &csv)?;
    plot::write_panels(&dir.join("convex"), &[panel])?;
    Ok((md, ok))
}
