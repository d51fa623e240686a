//! Measurements of a loss landscape that need only a plain objective: a parameter vector in,
//! a loss and its gradient out. Each estimator is tested on analytic functions with known
//! answers, and the same code measures any network once its training loss is wrapped as an
//! [`Objective`].
//!
//! - [`curvature`]: Hessian-vector products by central differences of gradients (Burn has no
//!   double backward), the top Hessian eigenvalue by the Lanczos method, and the Hessian trace by
//!   Hutchinson's estimator with Rademacher probes.
//! - [`density`]: the Hessian's eigenvalue density by stochastic Lanczos quadrature (Ghorbani et
//!   al. 2019), with its trace, eigenvalue counts and the number of outliers above the bulk.
//! - [`lbfgsb`]: L-BFGS-B (Byrd et al. 1995), the bound-constrained solver of the sharpness metric.
//! - [`sharpness`]: Keskar et al.'s ε-sharpness in the full space or a random subspace.
//! - [`nonfinite`]: a serde codec that keeps NaN and ±∞ in JSON records.
//! - [`slices`]: the line through two solutions and the plane through one along two directions.
#![warn(missing_docs)]

pub mod curvature;
pub mod density;
pub mod lbfgsb;
pub mod nonfinite;
pub mod sharpness;
pub mod slices;

/// A differentiable function of a parameter vector.
pub trait Objective {
    /// Number of parameters.
    fn dim(&self) -> usize;
    /// The value at `x`, with the gradient written into `grad` (same length as `x`).
    fn value_grad(&mut self, x: &[f64], grad: &mut [f64]) -> f64;
}

/// The quadratic ½ (x − c)ᵀ H (x − c) with a symmetric `H` given densely: the reference
/// objective of the tests (its Hessian is `H` everywhere).
#[derive(Debug, Clone)]
pub struct Quadratic {
    /// Row-major n × n symmetric matrix.
    pub h: Vec<f64>,
    /// The minimizer.
    pub center: Vec<f64>,
}

impl Quadratic {
    /// A diagonal quadratic with the given eigenvalues, centred at 0.
    pub fn diagonal(eigenvalues: &[f64]) -> Self {
        let n = eigenvalues.len();
        let mut h = vec![0.0; n * n];
        for (i, &l) in eigenvalues.iter().enumerate() {
            h[i * n + i] = l;
        }
        Quadratic { h, center: vec![0.0; n] }
    }

    /// A dense quadratic with eigenvalues `eig` along random directions: H = Q diag(eig) Qᵀ, Q
    /// by Gram-Schmidt (twice, orthogonal to rounding) of a Gaussian matrix drawn from `rng`,
    /// centred away from 0. Returns it with the rows of Q (the eigenvectors): a known spectrum to
    /// test estimators against.
    pub fn rotated(eig: &[f64], rng: &mut impl rand::Rng) -> (Self, Vec<Vec<f64>>) {
        use rand_distr::StandardNormal;
        let n = eig.len();
        let mut q: Vec<Vec<f64>> = Vec::new();
        while q.len() < n {
            let mut v: Vec<f64> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
            for _ in 0..2 {
                for u in &q {
                    let d = curvature::dot(&v, u);
                    v.iter_mut().zip(u).for_each(|(a, b)| *a -= d * b);
                }
            }
            curvature::normalize(&mut v);
            q.push(v);
        }
        let mut h = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                h[i * n + j] = (0..n).map(|k| q[k][i] * eig[k] * q[k][j]).sum();
            }
        }
        (Quadratic { h, center: (0..n).map(|i| (i % 7) as f64 * 0.1).collect() }, q)
    }
}

impl Objective for Quadratic {
    fn dim(&self) -> usize {
        self.center.len()
    }

    fn value_grad(&mut self, x: &[f64], grad: &mut [f64]) -> f64 {
        let n = self.dim();
        let d: Vec<f64> = x.iter().zip(&self.center).map(|(a, c)| a - c).collect();
        let mut value = 0.0;
        for i in 0..n {
            let row: f64 = (0..n).map(|j| self.h[i * n + j] * d[j]).sum();
            grad[i] = row;
            value += 0.5 * d[i] * row;
        }
        value
    }
}
