//! ε-sharpness (Keskar et al. 2017, Metric 2.1):
//!
//! φ_{x,f}(ε, A) = 100 · (max_{y ∈ C_ε} f(x + A y) − f(x)) / (1 + f(x)),
//! C_ε = { y ∈ Rᵖ : |y_i| ≤ ε (|(A⁺x)_i| + 1) },
//!
//! with A = I (the full space, Keskar Table 3) or a random n × p matrix (Table 4); and the
//! adaptive sharpness of Kwon et al. (2021), in its ℓ∞ form (Andriushchenko et al. 2023): the
//! same φ over the box |δ_i| ≤ ε |x_i|, which scales with each weight and so is unchanged by any
//! element-wise rescaling of the parameters that leaves the function unchanged (Dinh et al.
//! 2017's α-scale transformation), where Keskar's "+ 1" makes the box absolute for small weights
//! and is not. The maximization runs in the box's own coordinates (δ = |x| ⊙ y, |y_i| ≤ ε), so
//! that under such a rescaling L-BFGS-B sees the same problem, step for step. The inner
//! maximization is solved approximately, as in the paper, by a few iterations of L-BFGS-B on −f,
//! started at y = 0 (as in the SciPy reimplementations). At an exact stationary point the
//! gradient is zero and the solver cannot move: the metric is then 0 by construction.
//!
//! Degenerate inputs give a documented value instead of a panic: see [`epsilon_sharpness`].

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::Objective;
use crate::lbfgsb::{self, Options, Stop};

/// Where the perturbation lives.
#[derive(Debug, Clone)]
pub enum Subspace {
    /// A = I: every parameter moves (Table 3).
    Full,
    /// A random n × p matrix (Table 4).
    Random(RandomSubspace),
    /// Every parameter moves, each by at most ε |x_i| (adaptive sharpness: a box that scales
    /// with the weights rather than a subspace).
    Adaptive,
}

/// A random n × p matrix A, in either reading of the paper's "randomly generated" (it does not
/// say more, and its GitHub issue #3 asking got no answer): i.i.d. standard normal entries
/// (NumPy's `randn(n, p)`), where a corner of the box C_ε moves each parameter by about ε√p, or
/// the same columns scaled to unit length (as one reimplementation does), which shrinks the
/// "+1" part of the box by about √n. Stored column by column in f32.
#[derive(Debug, Clone)]
pub struct RandomSubspace {
    n: usize,
    p: usize,
    columns: Vec<f32>,
    /// (AᵀA)⁻¹, p × p, computed once: every measurement's box needs A⁺x.
    gram_inverse: Vec<f64>,
}

/// Σ aᵢbᵢ in f64 with eight independent partial sums, so that the loop vectorizes.
fn dot<T: Copy + Into<f64>>(a: &[f32], b: &[T]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ca.remainder().iter().zip(cb.remainder()).map(|(&x, &y)| x as f64 * y.into()).sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] as f64 * y[k].into();
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// The two readings of the paper's "randomly generated" A.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SubspaceMatrix {
    /// i.i.d. N(0, 1) entries (NumPy's `randn(n, p)`).
    Gaussian,
    /// The same draws with each column scaled to unit length.
    UnitColumns,
}

impl SubspaceMatrix {
    /// How A is drawn, in words.
    pub fn describe(self) -> &'static str {
        match self {
            SubspaceMatrix::Gaussian => "A with i.i.d. N(0, 1) entries",
            SubspaceMatrix::UnitColumns => "A with unit-norm columns",
        }
    }

    /// The name records and CSV files use (serde's).
    pub fn name(self) -> &'static str {
        match self {
            SubspaceMatrix::Gaussian => "gaussian",
            SubspaceMatrix::UnitColumns => "unit-columns",
        }
    }
}

impl RandomSubspace {
    /// Draws A from `seed` with i.i.d. N(0, 1) entries.
    pub fn gaussian(n: usize, p: usize, seed: u64) -> RandomSubspace {
        RandomSubspace::new(n, p, seed, SubspaceMatrix::Gaussian)
    }

    /// Draws A from `seed` as `matrix` says: for one seed, the unit-column reading is the
    /// Gaussian one with each column divided by its norm.
    pub fn new(n: usize, p: usize, seed: u64, matrix: SubspaceMatrix) -> RandomSubspace {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut columns = Vec::with_capacity(n * p);
        for _ in 0..p {
            let column: Vec<f64> = (0..n).map(|_| rng.sample::<f64, _>(StandardNormal)).collect();
            let scale = match matrix {
                SubspaceMatrix::Gaussian => 1.0,
                SubspaceMatrix::UnitColumns => {
                    let norm = column.iter().map(|v| v * v).sum::<f64>().sqrt();
                    if norm > 0.0 { 1.0 / norm } else { 1.0 }
                }
            };
            columns.extend(column.iter().map(|v| (v * scale) as f32));
        }
        let mut gram = vec![0.0; p * p];
        for i in 0..p {
            for j in i..p {
                let v = dot(&columns[i * n..(i + 1) * n], &columns[j * n..(j + 1) * n]);
                gram[i * p + j] = v;
                gram[j * p + i] = v;
            }
        }
        // A has full column rank with probability one when p ≤ n; when p > n (a network with
        // fewer parameters than the subspace has dimensions) or n = 0 it cannot, and AᵀA is
        // singular: the Moore–Penrose pseudo-inverse (AᵀA)⁺ takes the place of the inverse.
        let gram_inverse = lbfgsb::invert(&gram, p).unwrap_or_else(|| symmetric_pseudo_inverse(&gram, p));
        RandomSubspace { n, p, columns, gram_inverse }
    }

    /// Dimension p of the subspace.
    pub fn dim(&self) -> usize {
        self.p
    }

    fn column(&self, j: usize) -> &[f32] {
        &self.columns[j * self.n..(j + 1) * self.n]
    }

    /// A y (missing trailing entries of `y` count as 0).
    ///
    /// # Panics
    /// If `y` has more than p entries.
    pub fn apply(&self, y: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.n];
        for (j, &yj) in y.iter().enumerate() {
            if yj != 0.0 {
                out.iter_mut().zip(self.column(j)).for_each(|(o, &a)| *o += yj * a as f64);
            }
        }
        out
    }

    /// Aᵀ v.
    pub fn transpose_apply(&self, v: &[f64]) -> Vec<f64> {
        (0..self.p).map(|j| dot(self.column(j), v)).collect()
    }

    /// A⁺ x = (AᵀA)⁺ Aᵀ x, the Moore–Penrose pseudo-inverse: (AᵀA)⁻¹ Aᵀ x when A has full
    /// column rank (with probability one when p ≤ n), and the minimum-norm least-squares
    /// solution of A y = x otherwise (p > n; all zeros when n = 0).
    pub fn pseudo_inverse_apply(&self, x: &[f64]) -> Vec<f64> {
        let p = self.p;
        let atx = self.transpose_apply(x);
        (0..p).map(|i| (0..p).map(|j| self.gram_inverse[i * p + j] * atx[j]).sum()).collect()
    }
}

/// (AᵀA)⁺ of a symmetric positive semidefinite p × p matrix (row-major) by its eigen-
/// decomposition V Λ Vᵀ: V Λ⁺ Vᵀ, inverting the eigenvalues above 1e-10 times the largest and
/// zeroing the rest (rounding noise of a rank-deficient Gram matrix).
fn symmetric_pseudo_inverse(a: &[f64], p: usize) -> Vec<f64> {
    let (values, vectors) = crate::curvature::symmetric_eigen(a, p);
    let largest = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let inverse: Vec<f64> = values.iter().map(|&v| if v > 1e-10 * largest { 1.0 / v } else { 0.0 }).collect();
    let mut out = vec![0.0; p * p];
    for i in 0..p {
        for j in 0..p {
            out[i * p + j] = (0..p).map(|k| vectors[i * p + k] * inverse[k] * vectors[j * p + k]).sum();
        }
    }
    out
}

/// One measurement of Metric 2.1. The real fields may be NaN or infinite (see
/// [`epsilon_sharpness`]); they are written with [`crate::nonfinite`] so such a record reads back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sharpness {
    /// φ, in the paper's units (percent of 1 + f(x)).
    #[serde(with = "crate::nonfinite")]
    pub value: f64,
    /// ε.
    #[serde(with = "crate::nonfinite")]
    pub epsilon: f64,
    /// f(x).
    #[serde(with = "crate::nonfinite")]
    pub f_x: f64,
    /// The largest f found in the box.
    #[serde(with = "crate::nonfinite")]
    pub f_max: f64,
    /// r² = Σ b_i², the squared distance from the centre to a corner of the box |y_i| ≤ b_i
    /// (in y, the subspace's coordinates; for the adaptive box in x, Σ ε² x_i²). In the full space a quadratic with top eigenvalue
    /// λ_max can rise by at most ½ λ_max r² over the box (no slope at a minimum). NaN in
    /// records written before it was recorded.
    #[serde(with = "crate::nonfinite", default = "not_recorded")]
    pub box_radius_sq: f64,
    /// L-BFGS-B iterations run.
    pub iterations: usize,
    /// Evaluations of f and its gradient, f(x) included.
    pub evaluations: usize,
    /// Why L-BFGS-B stopped.
    pub stop: Stop,
    /// Times L-BFGS-B discarded its limited memory and restarted
    /// ([`lbfgsb::Solution::memory_resets`]); 0 in records written before it was counted.
    #[serde(default)]
    pub memory_resets: usize,
}

fn not_recorded() -> f64 {
    f64::NAN
}

/// Metric 2.1 at `x` with `iterations` of L-BFGS-B (the paper: 10).
///
/// Degenerate cases, none of which panics:
/// - an empty `x` (or a subspace of dimension 0): nothing moves, φ = 0;
/// - ε = 0: the box is the point x, φ = 0;
/// - ε < 0 or NaN, or a NaN in x: the box is empty or undefined, and L-BFGS-B does not run
///   ([`Stop::InvalidInput`]; for the adaptive box, a NaN in x makes f NaN at x instead,
///   [`Stop::NonFinite`]): φ and `f_max` are NaN;
/// - the adaptive box never moves a weight that is exactly 0;
/// - f or its gradient not finite at x ([`Stop::NonFinite`]): φ and `f_max` are NaN;
/// - f not finite at points of the box: L-BFGS-B treats them as too long a step and `f_max` is
///   the largest finite value it found;
/// - the metric divides by 1 + f(x), meant for a loss (f ≥ 0): φ is ±∞ or NaN when f(x) = −1.
///
/// # Panics
/// If `x` does not have `obj.dim()` entries, or a random subspace's matrix does not have
/// `obj.dim()` rows (both are the caller's construction, not data).
pub fn epsilon_sharpness(
    obj: &mut dyn Objective,
    x: &[f64],
    subspace: &Subspace,
    epsilon: f64,
    iterations: usize,
) -> Sharpness {
    let n = obj.dim();
    assert_eq!(x.len(), n, "sharpness: x must have the objective's dimension");
    let mut g = vec![0.0; n];
    let f_x = obj.value_grad(x, &mut g);
    let upper: Vec<f64> = match subspace {
        Subspace::Full => x.iter().map(|c| epsilon * (c.abs() + 1.0)).collect(),
        Subspace::Random(a) => {
            assert_eq!(a.n, n, "sharpness: the subspace matrix must have n = {n} rows");
            a.pseudo_inverse_apply(x).iter().map(|c| epsilon * (c.abs() + 1.0)).collect()
        }
        Subspace::Adaptive => vec![epsilon; n],
    };
    let lower: Vec<f64> = upper.iter().map(|u| -u).collect();
    let box_radius_sq = match subspace {
        Subspace::Adaptive => x.iter().map(|v| (epsilon * v).powi(2)).sum(),
        _ => upper.iter().map(|u| u * u).sum(),
    };
    let mut ascent = Ascent { obj, x, subspace, full: vec![0.0; n] };
    let opts = Options { max_iter: iterations, ..Options::default() };
    let sol = lbfgsb::minimize(&mut ascent, &vec![0.0; upper.len()], &lower, &upper, &opts);
    let f_max = match sol.stop {
        // No maximization ran: there is no largest value to report.
        Stop::InvalidInput | Stop::NonFinite => f64::NAN,
        _ => (-sol.f).max(f_x),
    };
    Sharpness {
        value: 100.0 * (f_max - f_x) / (1.0 + f_x),
        epsilon,
        f_x,
        f_max,
        box_radius_sq,
        iterations: sol.iterations,
        evaluations: sol.evaluations + 1,
        stop: sol.stop,
        memory_resets: sol.memory_resets,
    }
}

/// y ↦ −f(x + A y) (for the adaptive box, −f(x + |x| ⊙ y)), the function L-BFGS-B minimizes.
struct Ascent<'a> {
    obj: &'a mut dyn Objective,
    x: &'a [f64],
    subspace: &'a Subspace,
    full: Vec<f64>,
}

impl Objective for Ascent<'_> {
    fn dim(&self) -> usize {
        match self.subspace {
            Subspace::Full | Subspace::Adaptive => self.x.len(),
            Subspace::Random(a) => a.p,
        }
    }

    fn value_grad(&mut self, y: &[f64], grad: &mut [f64]) -> f64 {
        match self.subspace {
            Subspace::Full => {
                let point: Vec<f64> = self.x.iter().zip(y).map(|(a, b)| a + b).collect();
                let f = self.obj.value_grad(&point, grad);
                grad.iter_mut().for_each(|g| *g = -*g);
                -f
            }
            Subspace::Adaptive => {
                let point: Vec<f64> = self.x.iter().zip(y).map(|(x, y)| x + x.abs() * y).collect();
                let f = self.obj.value_grad(&point, grad);
                grad.iter_mut().zip(self.x).for_each(|(g, x)| *g = -*g * x.abs());
                -f
            }
            Subspace::Random(a) => {
                let point: Vec<f64> = self.x.iter().zip(a.apply(y)).map(|(x, d)| x + d).collect();
                let f = self.obj.value_grad(&point, &mut self.full);
                for (g, v) in grad.iter_mut().zip(a.transpose_apply(&self.full)) {
                    *g = -v;
                }
                -f
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Quadratic;

    #[test]
    fn unit_column_reading_is_the_gaussian_one_normalized() {
        let (g, u) = (RandomSubspace::gaussian(50, 4, 9), RandomSubspace::new(50, 4, 9, SubspaceMatrix::UnitColumns));
        for j in 0..4 {
            let norm = |c: &[f32]| c.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
            assert!((norm(u.column(j)) - 1.0).abs() < 1e-6);
            let scale = norm(g.column(j));
            for (a, b) in g.column(j).iter().zip(u.column(j)) {
                assert!((*a as f64 / scale - *b as f64).abs() < 1e-6);
            }
        }
    }

    /// max over |y_i| ≤ b_i of ½ Σ h_i (d_i + y_i)² is ½ Σ h_i (|d_i| + b_i)².
    #[test]
    fn full_space_sharpness_matches_the_closed_form_box_maximum() {
        let eig = [50.0, 10.0, 3.0, 1.0, 0.2, 0.01];
        let mut q = Quadratic::diagonal(&eig);
        q.center = vec![0.3, -1.0, 2.0, 0.0, -0.5, 1.5];
        let offset = [1e-4, -3e-4, 2e-5, 5e-4, -1e-5, 1e-6];
        let x: Vec<f64> = q.center.iter().zip(&offset).map(|(c, o)| c + o).collect();
        for eps in [1e-3, 5e-4] {
            let f_x: f64 = (0..6).map(|i| 0.5 * eig[i] * offset[i] * offset[i]).sum();
            let f_max: f64 = (0..6).map(|i| 0.5 * eig[i] * (offset[i].abs() + eps * (x[i].abs() + 1.0)).powi(2)).sum();
            let expected = 100.0 * (f_max - f_x) / (1.0 + f_x);
            let s = epsilon_sharpness(&mut q, &x, &Subspace::Full, eps, 10);
            assert!((s.value - expected).abs() <= 0.01 * expected, "ε = {eps}: {} vs closed form {expected}", s.value);
            // r² = Σ ε²(|x_i| + 1)², and a quadratic's rise stays within ½ λ_max r² plus what the
            // small offset from the minimum adds.
            let r2: f64 = x.iter().map(|v| (eps * (v.abs() + 1.0)).powi(2)).sum();
            assert!((s.box_radius_sq - r2).abs() <= 1e-12 * r2, "{} vs {r2}", s.box_radius_sq);
            assert!(s.f_max - s.f_x <= 0.5 * 50.0 * (r2.sqrt() + 6e-4).powi(2), "{s:?}");
        }
    }

    /// The adaptive box |δ_i| ≤ ε|x_i| on a diagonal quadratic: ½ Σ h_i (|d_i| + ε|x_i|)².
    #[test]
    fn adaptive_sharpness_matches_the_closed_form_box_maximum() {
        let eig = [50.0, 10.0, 3.0, 1.0, 0.2];
        let mut q = Quadratic::diagonal(&eig);
        q.center = vec![0.3, -1.0, 2.0, 0.7, -0.5];
        let offset = [1e-4, -3e-4, 2e-5, 5e-4, -1e-5];
        let x: Vec<f64> = q.center.iter().zip(&offset).map(|(c, o)| c + o).collect();
        let eps = 1e-3;
        let f_x: f64 = (0..5).map(|i| 0.5 * eig[i] * offset[i] * offset[i]).sum();
        let f_max: f64 = (0..5).map(|i| 0.5 * eig[i] * (offset[i].abs() + eps * x[i].abs()).powi(2)).sum();
        let expected = 100.0 * (f_max - f_x) / (1.0 + f_x);
        let s = epsilon_sharpness(&mut q, &x, &Subspace::Adaptive, eps, 10);
        assert!((s.value - expected).abs() <= 0.01 * expected, "{} vs closed form {expected}", s.value);
        let r2: f64 = x.iter().map(|v| (eps * v).powi(2)).sum();
        assert!((s.box_radius_sq - r2).abs() <= 1e-12 * r2);
    }

    /// f(a, b) = (ab − 1)² + (ab)⁴ is unchanged by (a, b) → (αa, b/α). Adaptive sharpness
    /// is the same at every α; Keskar's box, absolute for the shrunk weight, grows with α.
    #[test]
    fn adaptive_sharpness_is_invariant_under_rescaling_and_keskars_is_not() {
        struct Product;
        impl Objective for Product {
            fn dim(&self) -> usize {
                2
            }
            fn value_grad(&mut self, x: &[f64], g: &mut [f64]) -> f64 {
                let p = x[0] * x[1];
                let d = 2.0 * (p - 1.0) + 4.0 * p.powi(3);
                g[0] = d * x[1];
                g[1] = d * x[0];
                (p - 1.0).powi(2) + p.powi(4)
            }
        }
        let at = |alpha: f64| [0.9 * alpha, 0.8 / alpha];
        let adaptive = |alpha| epsilon_sharpness(&mut Product, &at(alpha), &Subspace::Adaptive, 1e-2, 10).value;
        let keskar = |alpha| epsilon_sharpness(&mut Product, &at(alpha), &Subspace::Full, 1e-2, 10).value;
        let base = adaptive(1.0);
        assert!(base > 0.0);
        for alpha in [2.0, 10.0, 100.0] {
            assert!((adaptive(alpha) - base).abs() <= 1e-9 * base, "α = {alpha}: {} vs {base}", adaptive(alpha));
        }
        assert!(keskar(100.0) > 10.0 * keskar(1.0), "{} vs {}", keskar(100.0), keskar(1.0));
    }

    /// In a one-dimensional subspace A = a: max over |y| ≤ b of ½ (d + a y)ᵀ H (d + a y) is
    /// ½ dᵀHd + |aᵀHd| b + ½ aᵀHa b².
    #[test]
    fn one_dimensional_random_subspace_matches_the_closed_form() {
        let eig = [4.0, 1.0, 0.5, 9.0, 2.0];
        let mut q = Quadratic::diagonal(&eig);
        q.center = vec![1.0, -2.0, 0.5, 0.0, 3.0];
        let offset = [2e-3, -1e-3, 0.0, 4e-3, 1e-3];
        let x: Vec<f64> = q.center.iter().zip(&offset).map(|(c, o)| c + o).collect();
        let a = RandomSubspace::gaussian(5, 1, 7);
        let col: Vec<f64> = a.apply(&[1.0]);
        let eps = 1e-3;
        let b = eps * (a.pseudo_inverse_apply(&x)[0].abs() + 1.0);
        let dhd: f64 = (0..5).map(|i| eig[i] * offset[i] * offset[i]).sum();
        let ahd: f64 = (0..5).map(|i| eig[i] * col[i] * offset[i]).sum();
        let aha: f64 = (0..5).map(|i| eig[i] * col[i] * col[i]).sum();
        let f_x = 0.5 * dhd;
        let f_max = 0.5 * dhd + ahd.abs() * b + 0.5 * aha * b * b;
        let expected = 100.0 * (f_max - f_x) / (1.0 + f_x);
        let s = epsilon_sharpness(&mut q, &x, &Subspace::Random(a), eps, 10);
        assert!((s.value - expected).abs() <= 0.01 * expected, "{} vs closed form {expected}", s.value);
    }

    #[test]
    fn random_subspace_products_are_adjoint_and_the_pseudo_inverse_inverts() {
        let a = RandomSubspace::gaussian(300, 20, 3);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let y: Vec<f64> = (0..20).map(|_| rng.random_range(-1.0..1.0)).collect();
        let v: Vec<f64> = (0..300).map(|_| rng.random_range(-1.0..1.0)).collect();
        let lhs: f64 = a.apply(&y).iter().zip(&v).map(|(p, q)| p * q).sum();
        let rhs: f64 = a.transpose_apply(&v).iter().zip(&y).map(|(p, q)| p * q).sum();
        assert!((lhs - rhs).abs() < 1e-9 * lhs.abs().max(1.0));
        let back = a.pseudo_inverse_apply(&a.apply(&y));
        for (b, t) in back.iter().zip(&y) {
            assert!((b - t).abs() < 1e-5, "A⁺A y ≠ y: {b} vs {t}");
        }
        // Entries N(0, 1): over 300 × 20 entries the mean square is 1 within a few percent.
        let ones = a.apply(&[1.0; 20]);
        let mean_square = (0..20)
            .map(|j| {
                let mut e = vec![0.0; 20];
                e[j] = 1.0;
                a.apply(&e).iter().map(|v| v * v).sum::<f64>()
            })
            .sum::<f64>()
            / 6000.0;
        assert!((mean_square - 1.0).abs() < 0.06, "mean square entry {mean_square}, expected 1");
        // A corner y = (ε, …, ε) moves a parameter by about ε√p: Σ_j a_ij has variance p = 20.
        let var = ones.iter().map(|v| v * v).sum::<f64>() / 300.0;
        assert!((var / 20.0 - 1.0).abs() < 0.25, "variance of a row sum {var}, expected 20");
    }

    /// A quadratic ½‖x‖² that is NaN (value and gradient) at the origin only.
    struct NanAtOrigin;

    impl Objective for NanAtOrigin {
        fn dim(&self) -> usize {
            2
        }
        fn value_grad(&mut self, x: &[f64], grad: &mut [f64]) -> f64 {
            if x.iter().all(|&v| v == 0.0) {
                grad.fill(f64::NAN);
                return f64::NAN;
            }
            grad.copy_from_slice(x);
            0.5 * x.iter().map(|v| v * v).sum::<f64>()
        }
    }

    #[test]
    fn degenerate_inputs_give_documented_values_without_panicking() {
        let mut q = Quadratic::diagonal(&[2.0, 1.0]);
        let x = [0.1, -0.2];
        // An empty parameter vector: nothing moves.
        let mut empty = Quadratic::diagonal(&[]);
        let s = epsilon_sharpness(&mut empty, &[], &Subspace::Full, 1e-3, 10);
        assert_eq!((s.value, s.f_x, s.f_max), (0.0, 0.0, 0.0), "{s:?}");
        // A random subspace of dimension 0 does not move either.
        let s = epsilon_sharpness(&mut q, &x, &Subspace::Random(RandomSubspace::gaussian(2, 0, 1)), 1e-3, 10);
        assert_eq!(s.value, 0.0, "{s:?}");
        // ε = 0: the box is the point x.
        let s = epsilon_sharpness(&mut q, &x, &Subspace::Full, 0.0, 10);
        assert_eq!(s.value, 0.0, "{s:?}");
        // ε < 0, ε NaN, or a NaN parameter: no box, no maximization, NaN.
        for (eps, x) in [(-1e-3, x), (f64::NAN, x), (1e-3, [f64::NAN, 0.0])] {
            let s = epsilon_sharpness(&mut q, &x, &Subspace::Full, eps, 10);
            assert_eq!((s.stop, s.iterations, s.evaluations), (Stop::InvalidInput, 0, 1), "{s:?}");
            assert!(s.value.is_nan() && s.f_max.is_nan(), "{s:?}");
        }
        // A NaN loss at x: nothing to climb from.
        let s = epsilon_sharpness(&mut NanAtOrigin, &[0.0, 0.0], &Subspace::Full, 1e-3, 10);
        assert_eq!(s.stop, Stop::NonFinite, "{s:?}");
        assert!(s.value.is_nan() && s.f_x.is_nan() && s.f_max.is_nan(), "{s:?}");
        // No iterations: the measurement is the starting value, φ = 0.
        let s = epsilon_sharpness(&mut q, &x, &Subspace::Full, 1e-3, 0);
        assert_eq!((s.value, s.stop, s.memory_resets), (0.0, Stop::MaxIterations, 0), "{s:?}");
    }

    #[test]
    fn a_subspace_wider_than_the_space_uses_the_pseudo_inverse() {
        // p = 5 > n = 3: AᵀA is singular (this panicked before); A has full row rank, so
        // A A⁺ x = x, and A⁺ x is the minimum-norm solution, orthogonal to the null space of A.
        let a = RandomSubspace::gaussian(3, 5, 11);
        let x = [0.4, -1.0, 2.5];
        let y = a.pseudo_inverse_apply(&x);
        for (back, xi) in a.apply(&y).iter().zip(&x) {
            assert!((back - xi).abs() < 1e-6, "A A⁺ x ≠ x: {back} vs {xi}");
        }
        // The minimum-norm solution is Aᵀ (A Aᵀ)⁻¹ x.
        let columns: Vec<Vec<f64>> = (0..5)
            .map(|j| {
                let mut e = vec![0.0; 5];
                e[j] = 1.0;
                a.apply(&e)
            })
            .collect();
        let aat: Vec<f64> = (0..9).map(|k| columns.iter().map(|c| c[k / 3] * c[k % 3]).sum()).collect();
        let inv = lbfgsb::invert(&aat, 3).unwrap();
        let w: Vec<f64> = (0..3).map(|i| (0..3).map(|j| inv[i * 3 + j] * x[j]).sum()).collect();
        for (yj, c) in y.iter().zip(&columns) {
            let expected: f64 = c.iter().zip(&w).map(|(a, b)| a * b).sum();
            assert!((yj - expected).abs() < 1e-6, "A⁺ x is not the minimum-norm solution: {yj} vs {expected}");
        }
        // The studies' p = 100 on a network of 30 parameters.
        let wide = RandomSubspace::gaussian(30, 100, 5);
        let x30: Vec<f64> = (0..30).map(|i| (i as f64 * 0.37).sin()).collect();
        for (back, xi) in wide.apply(&wide.pseudo_inverse_apply(&x30)).iter().zip(&x30) {
            assert!((back - xi).abs() < 1e-6, "A A⁺ x ≠ x: {back} vs {xi}");
        }
        // n = 0: A⁺ is the empty map, A⁺ x = 0.
        let zero = RandomSubspace::gaussian(0, 4, 1);
        assert_eq!(zero.pseudo_inverse_apply(&[]), vec![0.0; 4]);
        // Sharpness in a 5-dimensional subspace of a 3-parameter quadratic is well defined.
        let mut q = Quadratic::diagonal(&[4.0, 1.0, 0.5]);
        let s = epsilon_sharpness(&mut q, &x, &Subspace::Random(a), 1e-3, 10);
        assert!(s.value.is_finite() && s.value > 0.0, "{s:?}");
    }

    /// A value of a hand-built record, to read records without a JSON crate.
    enum Value {
        F(f64),
        U(u64),
        S(&'static str),
    }

    impl<'de> serde::Deserializer<'de> for Value {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            match self {
                Value::F(v) => visitor.visit_f64(v),
                Value::U(v) => visitor.visit_u64(v),
                Value::S(v) => visitor.visit_borrowed_str(v),
            }
        }
        fn deserialize_enum<V: serde::de::Visitor<'de>>(
            self,
            name: &'static str,
            variants: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, Self::Error> {
            match self {
                Value::S(v) => serde::de::IntoDeserializer::<Self::Error>::into_deserializer(v)
                    .deserialize_enum(name, variants, visitor),
                other => other.deserialize_any(visitor),
            }
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map struct identifier ignored_any
        }
    }

    impl<'de> serde::de::IntoDeserializer<'de> for Value {
        type Deserializer = Value;
        fn into_deserializer(self) -> Value {
            self
        }
    }

    #[test]
    fn records_written_before_memory_resets_still_read() {
        use serde::de::value::MapDeserializer;
        let old = vec![
            ("value", Value::F(1.5)),
            ("epsilon", Value::F(1e-3)),
            ("f_x", Value::F(0.25)),
            ("f_max", Value::F(0.26875)),
            ("iterations", Value::U(10)),
            ("evaluations", Value::U(13)),
            ("stop", Value::S("max_iterations")),
        ];
        let s = Sharpness::deserialize(MapDeserializer::<_, serde::de::value::Error>::new(old.into_iter())).unwrap();
        assert_eq!((s.value, s.iterations, s.stop, s.memory_resets), (1.5, 10, Stop::MaxIterations, 0));
        // A non-finite value as `nonfinite` writes it reads back.
        let new = vec![
            ("value", Value::S("NaN")),
            ("epsilon", Value::F(1e-3)),
            ("f_x", Value::S("inf")),
            ("f_max", Value::S("NaN")),
            ("iterations", Value::U(0)),
            ("evaluations", Value::U(1)),
            ("stop", Value::S("non_finite")),
            ("memory_resets", Value::U(2)),
        ];
        let s = Sharpness::deserialize(MapDeserializer::<_, serde::de::value::Error>::new(new.into_iter())).unwrap();
        assert!(s.value.is_nan() && s.f_x == f64::INFINITY && s.f_max.is_nan());
        assert_eq!((s.stop, s.memory_resets), (Stop::NonFinite, 2));
    }
}
