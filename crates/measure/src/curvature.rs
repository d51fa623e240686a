//! Curvature of an objective at a point, from gradients only.
//!
//! H·v ≈ (∇f(x + h v) − ∇f(x − h v)) / 2h (central differences: error O(h²) times the third
//! derivative, exact for quadratics up to rounding). The top eigenvalue comes from the Lanczos
//! method on these products, the trace from Hutchinson's estimator E[zᵀ H z] with Rademacher
//! z (Hutchinson 1989; as in PyHessian).
//!
//! Degenerate requests (no steps, no probes, an empty parameter vector, a NaN loss or gradient
//! near x, a zero or NaN difference step) return a documented value, NaN where there is no
//! estimate, and never loop past the requested number of products.

use rand::Rng;

use crate::Objective;

/// Hessian-vector product H(x)·v by central differences of gradients with step `h` along the
/// unit vector v/‖v‖ (the result is scaled back by ‖v‖). v = 0 gives 0 without evaluating;
/// `h` must be positive and finite, and h = 0 gives NaN; a NaN gradient gives NaN entries.
///
/// # Panics
/// If `v` and `x` differ in length.
pub fn hessian_vector(obj: &mut dyn Objective, x: &[f64], v: &[f64], h: f64) -> Vec<f64> {
    assert_eq!(v.len(), x.len(), "hessian_vector: v must have the length of x");
    let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
    if norm == 0.0 {
        return vec![0.0; v.len()];
    }
    let n = x.len();
    let (mut plus, mut minus) = (vec![0.0; n], vec![0.0; n]);
    let xp: Vec<f64> = x.iter().zip(v).map(|(a, b)| a + h * b / norm).collect();
    let xm: Vec<f64> = x.iter().zip(v).map(|(a, b)| a - h * b / norm).collect();
    obj.value_grad(&xp, &mut plus);
    obj.value_grad(&xm, &mut minus);
    plus.iter().zip(&minus).map(|(p, m)| (p - m) / (2.0 * h) * norm).collect()
}

/// The top eigenvalue estimate of the Lanczos method. `value` is NaN and `residual` ∞ when
/// there is no estimate (see [`top_eigenvalue`]); both are written with [`crate::nonfinite`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TopEigenvalue {
    /// The largest Ritz value θ (the largest eigenvalue of H restricted to the Krylov space).
    #[serde(with = "crate::nonfinite")]
    pub value: f64,
    /// Lanczos steps, one Hessian-vector product each.
    pub iterations: usize,
    /// Whether the relative residual fell below the tolerance.
    pub converged: bool,
    /// ‖H v − θ v‖ / |θ| of the Ritz vector v (from the recurrence: β_k |s_k| / |θ|); an
    /// eigenvalue of H lies within |θ| times this of θ.
    #[serde(with = "crate::nonfinite")]
    pub residual: f64,
    /// The smallest Ritz value of the same Krylov space. By Cauchy interlacing H has an
    /// eigenvalue at or below it, so a negative value shows negative curvature of at least that
    /// size; the iteration stops on the top pair, so this one need not have converged.
    #[serde(with = "crate::nonfinite")]
    pub smallest: f64,
    /// The relative residual of the smallest Ritz pair, as `residual` is of the largest.
    #[serde(with = "crate::nonfinite")]
    pub smallest_residual: f64,
}

/// The largest eigenvalue of H(x) by the Lanczos method with full reorthogonalization (Golub &
/// Van Loan §10.1): at most `max_iter` Hessian-vector products, stopping once the Ritz pair's
/// relative residual is below `tol`. Far fewer products than power iteration when the top
/// eigenvalues are close, as they are at flat minima.
///
/// No estimate (`value` NaN, `residual` ∞, `converged` false) when `max_iter` is 0 or `x` is
/// empty (zero iterations), or when a Hessian-vector product is not finite (a NaN or infinite
/// loss or gradient at x ± h v, or a zero `h`): the iteration stops at that product, and
/// `iterations` counts it. A NaN `tol` never counts as converged, so all `max_iter` steps run.
pub fn top_eigenvalue(
    obj: &mut dyn Objective,
    x: &[f64],
    max_iter: usize,
    tol: f64,
    h: f64,
    rng: &mut impl Rng,
) -> TopEigenvalue {
    let n = x.len();
    let mut q: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    normalize(&mut q);
    let mut basis: Vec<Vec<f64>> = Vec::new();
    let (mut alpha, mut beta): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    let none = |iterations| TopEigenvalue {
        value: f64::NAN,
        iterations,
        converged: false,
        residual: f64::INFINITY,
        smallest: f64::NAN,
        smallest_residual: f64::INFINITY,
    };
    let mut best = none(0);
    for it in 1..=max_iter.min(n) {
        let mut w = hessian_vector(obj, x, &q, h);
        let a = dot(&q, &w);
        if !a.is_finite() || w.iter().any(|v| !v.is_finite()) {
            return none(it);
        }
        basis.push(q.clone());
        alpha.push(a);
        // Full reorthogonalization, twice ("twice is enough"), against every earlier vector.
        for _ in 0..2 {
            for v in &basis {
                let c = dot(v, &w);
                w.iter_mut().zip(v).for_each(|(wi, vi)| *wi -= c * vi);
            }
        }
        let b = dot(&w, &w).sqrt();
        let (values, vectors) = symmetric_eigen(&tridiagonal(&alpha, &beta), alpha.len());
        // The largest Ritz value (the last of equal ones, as `Iterator::max_by` picks).
        let top = (1..values.len()).fold(0, |t, i| if values[i].total_cmp(&values[t]).is_ge() { i } else { t });
        let bottom = (1..values.len()).fold(0, |t, i| if values[i].total_cmp(&values[t]).is_lt() { i } else { t });
        if !values[top].is_finite() || !b.is_finite() {
            return none(it);
        }
        // β_k |s_k| / |θ|, s_k the last component of the Ritz pair's eigenvector of T.
        let relative =
            |j: usize| b * vectors[(alpha.len() - 1) * alpha.len() + j].abs() / values[j].abs().max(f64::MIN_POSITIVE);
        let residual = relative(top);
        best = TopEigenvalue {
            value: values[top],
            iterations: it,
            converged: residual < tol,
            residual,
            smallest: values[bottom],
            smallest_residual: relative(bottom),
        };
        if best.converged || b <= 1e-12 * values[top].abs().max(1.0) {
            best.converged = true;
            break;
        }
        beta.push(b);
        q = w.iter().map(|v| v / b).collect();
    }
    best
}

pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The k × k tridiagonal matrix with diagonal `alpha` and off-diagonal `beta`, row-major.
pub(crate) fn tridiagonal(alpha: &[f64], beta: &[f64]) -> Vec<f64> {
    let k = alpha.len();
    let mut t = vec![0.0; k * k];
    for i in 0..k {
        t[i * k + i] = alpha[i];
        if i + 1 < k {
            t[i * k + i + 1] = beta[i];
            t[(i + 1) * k + i] = beta[i];
        }
    }
    t
}

/// Eigenvalues and eigenvectors (column j of the row-major result) of a small symmetric matrix
/// by cyclic Jacobi rotations.
pub fn symmetric_eigen(a: &[f64], k: usize) -> (Vec<f64>, Vec<f64>) {
    let mut m = a.to_vec();
    let mut v = vec![0.0; k * k];
    for i in 0..k {
        v[i * k + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..k)
            .flat_map(|i| (0..k).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * k + j].powi(2))
            .sum();
        let scale: f64 = (0..k).map(|i| m[i * k + i].powi(2)).sum::<f64>().max(f64::MIN_POSITIVE);
        if off <= 1e-30 * scale {
            break;
        }
        for p in 0..k {
            for r in p + 1..k {
                let apr = m[p * k + r];
                if apr.abs() < 1e-300 {
                    continue;
                }
                let theta = (m[r * k + r] - m[p * k + p]) / (2.0 * apr);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for i in 0..k {
                    let (mip, mir) = (m[i * k + p], m[i * k + r]);
                    m[i * k + p] = c * mip - s * mir;
                    m[i * k + r] = s * mip + c * mir;
                }
                for i in 0..k {
                    let (mpi, mri) = (m[p * k + i], m[r * k + i]);
                    m[p * k + i] = c * mpi - s * mri;
                    m[r * k + i] = s * mpi + c * mri;
                }
                for i in 0..k {
                    let (vip, vir) = (v[i * k + p], v[i * k + r]);
                    v[i * k + p] = c * vip - s * vir;
                    v[i * k + r] = s * vip + c * vir;
                }
            }
        }
    }
    ((0..k).map(|i| m[i * k + i]).collect(), v)
}

/// Hutchinson's trace estimate with its standard error; the real fields may be NaN or ∞ (see
/// [`trace`]) and are written with [`crate::nonfinite`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Trace {
    /// Mean of zᵀHz over the probes.
    #[serde(with = "crate::nonfinite")]
    pub value: f64,
    /// Standard error of that mean (sample std / √probes).
    #[serde(with = "crate::nonfinite")]
    pub std_error: f64,
    /// Probes used.
    pub probes: usize,
}

/// Hutchinson's estimator of tr H(x) with `probes` Rademacher vectors.
///
/// With no probes there is no estimate: `value` NaN, `std_error` ∞. With one probe the sample
/// variance is undefined: `std_error` ∞. An empty `x` has trace 0 (each probe gives 0). A
/// probe whose Hessian-vector product is not finite (NaN loss or gradient) makes `value` NaN
/// or infinite; every probe still runs, so the cost is always `probes` products.
pub fn trace(obj: &mut dyn Objective, x: &[f64], probes: usize, h: f64, rng: &mut impl Rng) -> Trace {
    let samples: Vec<f64> = (0..probes)
        .map(|_| {
            let z: Vec<f64> = (0..x.len()).map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 }).collect();
            let hz = hessian_vector(obj, x, &z, h);
            z.iter().zip(&hz).map(|(a, b)| a * b).sum::<f64>()
        })
        .collect();
    if samples.is_empty() {
        return Trace { value: f64::NAN, std_error: f64::INFINITY, probes };
    }
    let n = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / n;
    let std_error = if samples.len() > 1 {
        let var = samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (var / n).sqrt()
    } else {
        f64::INFINITY
    };
    Trace { value: mean, std_error, probes }
}

/// How far Hutchinson's probes are from what a positive semi-definite H allows: the probes'
/// sample variance over 2 λ_max tr H. For PSD H and Rademacher z, Var(zᵀHz) = 2 Σ_{i≠j} H_ij²
/// ≤ 2 ‖H‖_F² ≤ 2 λ_max tr H, so a ratio above 1 says H is not PSD near this point, or the
/// Hessian-vector products are not a Hessian's (finite differences across kinks), up to the
/// sampling noise of the variance of a few probes. A non-positive trace or `lambda_max` with
/// varying probes is inconsistent by itself (∞); no estimate gives NaN.
pub fn psd_ratio(trace: &Trace, lambda_max: f64) -> f64 {
    let variance = trace.std_error.powi(2) * trace.probes as f64;
    let bound = 2.0 * lambda_max * trace.value;
    if !variance.is_finite() || !bound.is_finite() {
        f64::NAN
    } else if variance == 0.0 {
        0.0
    } else if bound <= 0.0 {
        f64::INFINITY
    } else {
        variance / bound
    }
}

/// The check that the Hessian-vector products are a symmetric operator: vᵀ(Hw) against wᵀ(Hv)
/// for two random unit vectors. Exact products of a twice-differentiable f agree up to rounding;
/// central differences that straddle a kink (ReLU, max pooling) do not, because the gradient's
/// jump enters one product and not the other.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Symmetry {
    /// vᵀ(Hw).
    #[serde(with = "crate::nonfinite")]
    pub v_hw: f64,
    /// wᵀ(Hv).
    #[serde(with = "crate::nonfinite")]
    pub w_hv: f64,
}

impl Symmetry {
    /// |vᵀHw − wᵀHv| / max(|vᵀHw|, |wᵀHv|): 0 for a symmetric operator, NaN without an estimate.
    pub fn relative(&self) -> f64 {
        let scale = self.v_hw.abs().max(self.w_hv.abs());
        if scale == 0.0 { 0.0 } else { (self.v_hw - self.w_hv).abs() / scale }
    }
}

/// [`Symmetry`] of the products at step `h`, from two random unit vectors: two products.
pub fn symmetry(obj: &mut dyn Objective, x: &[f64], h: f64, rng: &mut impl Rng) -> Symmetry {
    let mut unit = || {
        let mut v: Vec<f64> = (0..x.len()).map(|_| rng.random_range(-1.0..1.0)).collect();
        normalize(&mut v);
        v
    };
    let (v, w) = (unit(), unit());
    let (hv, hw) = (hessian_vector(obj, x, &v, h), hessian_vector(obj, x, &w, h));
    Symmetry { v_hw: dot(&v, &hw), w_hv: dot(&w, &hv) }
}

/// One step of a difference-step sweep: the Rayleigh quotient vᵀH_h v of the product at step h,
/// and the product's relative change ‖H_h v − H_h' v‖ / ‖H_h' v‖ from the next smaller step h'
/// of the sweep (NaN for the smallest).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepPoint {
    /// The difference step.
    pub h: f64,
    /// vᵀ H_h v for the sweep's unit vector v.
    #[serde(with = "crate::nonfinite")]
    pub rayleigh: f64,
    /// Relative change of H_h v from the next smaller step.
    #[serde(with = "crate::nonfinite")]
    pub change: f64,
}

/// The products along one random unit vector at each step of `steps` (sorted largest first):
/// where they stop changing, the differences neither straddle kinks nor drown in rounding, and
/// that plateau is where the step of the measurements belongs. One product per step.
pub fn step_sweep(obj: &mut dyn Objective, x: &[f64], steps: &[f64], rng: &mut impl Rng) -> Vec<StepPoint> {
    let mut v: Vec<f64> = (0..x.len()).map(|_| rng.random_range(-1.0..1.0)).collect();
    normalize(&mut v);
    let mut steps = steps.to_vec();
    steps.sort_by(|a, b| b.total_cmp(a));
    let products: Vec<Vec<f64>> = steps.iter().map(|&h| hessian_vector(obj, x, &v, h)).collect();
    (0..steps.len())
        .map(|i| {
            let change = match products.get(i + 1) {
                Some(next) => {
                    let diff: f64 = products[i].iter().zip(next).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
                    diff / dot(next, next).sqrt()
                }
                None => f64::NAN,
            };
            StepPoint { h: steps[i], rayleigh: dot(&v, &products[i]), change }
        })
        .collect()
}

pub(crate) fn normalize(v: &mut [f64]) {
    let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|a| *a /= norm);
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::Quadratic;

    /// ½ xᵀ diag(d) x + Σ relu(x_i − c_i): smooth except on the planes x_i = c_i, where the
    /// gradient jumps by 1 in coordinate i.
    struct Kinked {
        d: Vec<f64>,
        c: Vec<f64>,
    }

    impl Objective for Kinked {
        fn dim(&self) -> usize {
            self.d.len()
        }
        fn value_grad(&mut self, x: &[f64], grad: &mut [f64]) -> f64 {
            let mut f = 0.0;
            for i in 0..x.len() {
                let r = x[i] - self.c[i];
                f += 0.5 * self.d[i] * x[i] * x[i] + r.max(0.0);
                grad[i] = self.d[i] * x[i] + if r > 0.0 { 1.0 } else { 0.0 };
            }
            f
        }
    }

    #[test]
    fn symmetry_holds_for_exact_products_and_fails_across_a_kink() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (mut q, _) = Quadratic::rotated(&[3.0, -1.0, 0.5, 2.0, 7.0], &mut rng);
        let s = symmetry(&mut q, &[0.1, 0.2, -0.3, 0.4, 0.0], 1e-3, &mut rng);
        assert!(s.relative() < 1e-10, "{s:?}");
        // Kinks 1e-3 from x in every coordinate: a step of 0.1 straddles them all.
        let mut k = Kinked { d: vec![1.0, 2.0, 3.0, 4.0], c: vec![1e-3; 4] };
        let x = [0.0; 4];
        let mut far = ChaCha8Rng::seed_from_u64(5);
        assert!(symmetry(&mut k, &x, 0.1, &mut far).relative() > 1e-3);
        let mut near = ChaCha8Rng::seed_from_u64(5);
        assert!(symmetry(&mut k, &x, 1e-6, &mut near).relative() < 1e-8);
    }

    #[test]
    fn the_step_sweep_finds_the_plateau_below_the_kinks() {
        // Kinks at distance 1e-3: steps above it change the product (they see the gradient's
        // jump, divided by 2h); steps below it agree with each other and with the diagonal.
        let mut k = Kinked { d: vec![1.0, 2.0, 3.0, 4.0], c: vec![1e-3, -1e-3, 1e-3, -1e-3] };
        let points = step_sweep(&mut k, &[0.0; 4], &[1e-6, 1e-1, 1e-2, 1e-4, 1e-5], &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(points.iter().map(|p| p.h).collect::<Vec<_>>(), [1e-1, 1e-2, 1e-4, 1e-5, 1e-6]);
        assert!(points[0].change > 0.1 && points[1].change > 0.1, "{points:?}");
        assert!(points[2].change < 1e-8 && points[3].change < 1e-8 && points[4].change.is_nan(), "{points:?}");
        assert!(points[2].rayleigh > 1.0 && points[2].rayleigh < 4.0, "a Rayleigh quotient of diag(1, 2, 3, 4)");
    }

    #[test]
    fn hessian_vector_is_exact_on_quadratics() {
        // H = diag(1, 2, 3): H·(1, 1, 1) = (1, 2, 3) wherever it is taken.
        let mut q = Quadratic::diagonal(&[1.0, 2.0, 3.0]);
        let hv = hessian_vector(&mut q, &[5.0, -2.0, 0.5], &[1.0, 1.0, 1.0], 1e-3);
        for (a, b) in hv.iter().zip([1.0, 2.0, 3.0]) {
            assert!((a - b).abs() < 1e-9, "{hv:?}");
        }
    }

    #[test]
    fn lanczos_finds_the_top_eigenvalue_within_one_percent() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let eig: Vec<f64> = [10.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.5, 0.1].to_vec();
        let (mut q, _) = Quadratic::rotated(&eig, &mut rng);
        let x: Vec<f64> = (0..8).map(|i| i as f64).collect();
        let est = top_eigenvalue(&mut q, &x, 20, 1e-8, 1e-3, &mut rng);
        assert!(est.converged, "{est:?}");
        assert!((est.value - 10.0).abs() / 10.0 < 0.01, "{est:?}");
        // A hard case for power iteration: 150 eigenvalues with the top two 1 % apart (power
        // iteration would need hundreds of products); Lanczos resolves it in 20.
        let eig: Vec<f64> = (0..150)
            .map(|k| {
                if k == 0 {
                    10.0
                } else if k == 1 {
                    9.9
                } else {
                    9.0 * (1.0 - k as f64 / 150.0)
                }
            })
            .collect();
        let (mut q, _) = Quadratic::rotated(&eig, &mut rng);
        let x = vec![0.0; 150];
        let est = top_eigenvalue(&mut q, &x, 20, 1e-3, 1e-3, &mut rng);
        assert!((est.value - 10.0).abs() / 10.0 < 0.01, "{est:?}");
        assert!(est.value <= 10.0 + 1e-6, "a Ritz value never exceeds the top eigenvalue: {est:?}");
    }

    #[test]
    fn lanczos_reports_the_smallest_ritz_value_of_the_same_run() {
        // An indefinite Hessian: the full Krylov space (n steps) gives both ends exactly, and
        // fewer steps give a smallest Ritz value at or above λ_min (Cauchy interlacing).
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let eig = [6.0, 3.0, 1.0, 0.5, -0.2, -4.0];
        let (mut q, _) = Quadratic::rotated(&eig, &mut rng);
        let x = vec![0.3; 6];
        let full = top_eigenvalue(&mut q, &x, 6, 0.0, 1e-3, &mut rng);
        assert!((full.value - 6.0).abs() < 1e-6 && (full.smallest + 4.0).abs() < 1e-6, "{full:?}");
        assert!(full.smallest_residual < 1e-6, "{full:?}");
        let part = top_eigenvalue(&mut q, &x, 3, 0.0, 1e-3, &mut rng);
        assert!(part.smallest >= -4.0 - 1e-9 && part.smallest < part.value, "{part:?}");
    }

    #[test]
    fn psd_ratio_flags_probes_no_psd_hessian_allows() {
        // Sample variance 1² · 10 = 10 against 2 λ_max tr = 2 · 1 · 10 = 20.
        let t = Trace { value: 10.0, std_error: 1.0, probes: 10 };
        assert!((psd_ratio(&t, 1.0) - 0.5).abs() < 1e-12);
        assert!((psd_ratio(&t, 0.25) - 2.0).abs() < 1e-12);
        assert_eq!(psd_ratio(&Trace { value: -1.0, ..t.clone() }, 1.0), f64::INFINITY);
        assert!(psd_ratio(&Trace { value: f64::NAN, std_error: f64::INFINITY, probes: 0 }, 1.0).is_nan());
        // A PSD quadratic's probes always pass: diag(4, 1, 0.5, 0), exact products.
        let mut q = Quadratic::diagonal(&[4.0, 1.0, 0.5, 0.0]);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let t = trace(&mut q, &[0.0; 4], 20, 1e-3, &mut rng);
        assert!(psd_ratio(&t, 4.0) <= 1.0, "{t:?}");
    }

    #[test]
    fn jacobi_diagonalizes_a_known_matrix() {
        // [[2, 1], [1, 2]] has eigenvalues 1 and 3.
        let (mut values, _) = symmetric_eigen(&[2.0, 1.0, 1.0, 2.0], 2);
        values.sort_by(f64::total_cmp);
        assert!((values[0] - 1.0).abs() < 1e-12 && (values[1] - 3.0).abs() < 1e-12, "{values:?}");
    }

    #[test]
    fn hutchinson_trace_within_three_standard_errors() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let eig: Vec<f64> = (1..=20).map(|k| k as f64 * 0.5).collect();
        let exact: f64 = eig.iter().sum(); // 105
        let (mut q, _) = Quadratic::rotated(&eig, &mut rng);
        let x = vec![0.3; 20];
        let est = trace(&mut q, &x, 200, 1e-3, &mut rng);
        assert!(est.std_error > 0.0);
        assert!((est.value - exact).abs() < 3.0 * est.std_error, "{est:?} vs {exact}");
        // On a diagonal Hessian Rademacher probes are exact: zᵀHz = Σ hᵢ.
        let mut d = Quadratic::diagonal(&eig);
        let est = trace(&mut d, &x, 5, 1e-3, &mut rng);
        assert!((est.value - exact).abs() < 1e-6 && est.std_error < 1e-6, "{est:?}");
    }

    /// Counts evaluations, and returns NaN (value and gradient) everywhere.
    struct AllNan(usize);

    impl Objective for AllNan {
        fn dim(&self) -> usize {
            4
        }
        fn value_grad(&mut self, _x: &[f64], grad: &mut [f64]) -> f64 {
            self.0 += 1;
            grad.fill(f64::NAN);
            f64::NAN
        }
    }

    #[test]
    fn degenerate_requests_give_documented_values() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut q = Quadratic::diagonal(&[3.0, 1.0]);
        let x = [0.5, 0.5];
        // No steps, or an empty parameter vector: no estimate.
        for est in [
            top_eigenvalue(&mut q, &x, 0, 1e-6, 1e-3, &mut rng),
            top_eigenvalue(&mut Quadratic::diagonal(&[]), &[], 20, 1e-6, 1e-3, &mut rng),
        ] {
            assert!(est.value.is_nan() && est.residual == f64::INFINITY, "{est:?}");
            assert_eq!((est.iterations, est.converged), (0, false));
        }
        // No probes: no estimate; one probe: no standard error.
        let est = trace(&mut q, &x, 0, 1e-3, &mut rng);
        assert!(est.value.is_nan() && est.std_error == f64::INFINITY && est.probes == 0, "{est:?}");
        let est = trace(&mut q, &x, 1, 1e-3, &mut rng);
        assert!((est.value - 4.0).abs() < 1e-9 && est.std_error == f64::INFINITY, "{est:?}");
        // The trace of the 0 × 0 Hessian is 0, exactly.
        let est = trace(&mut Quadratic::diagonal(&[]), &[], 3, 1e-3, &mut rng);
        assert_eq!((est.value, est.std_error), (0.0, 0.0));
        // A zero difference step gives NaN products: no estimate, after one product.
        let est = top_eigenvalue(&mut q, &x, 20, 1e-6, 0.0, &mut rng);
        assert!(est.value.is_nan() && !est.converged && est.iterations == 1, "{est:?}");
        // v = 0 is a zero product.
        assert_eq!(hessian_vector(&mut q, &x, &[0.0, 0.0], 1e-3), vec![0.0, 0.0]);
    }

    #[test]
    fn a_nan_loss_stops_lanczos_and_poisons_the_trace() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut obj = AllNan(0);
        let est = top_eigenvalue(&mut obj, &[0.0; 4], 50, 1e-6, 1e-3, &mut rng);
        assert!(est.value.is_nan() && !est.converged && est.iterations == 1, "{est:?}");
        assert_eq!(obj.0, 2, "one Hessian-vector product, then stop");
        let mut obj = AllNan(0);
        let est = trace(&mut obj, &[0.0; 4], 3, 1e-3, &mut rng);
        assert!(est.value.is_nan() && est.probes == 3, "{est:?}");
        assert_eq!(obj.0, 6);
        // A NaN tolerance never converges but still stops after max_iter products.
        let mut q = Quadratic::diagonal(&[3.0, 1.0, 0.5]);
        let est = top_eigenvalue(&mut q, &[0.1, 0.2, 0.3], 2, f64::NAN, 1e-3, &mut rng);
        assert!(!est.converged && est.iterations == 2 && est.value.is_finite(), "{est:?}");
    }
}
