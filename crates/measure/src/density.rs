//! The Hessian's eigenvalue density by stochastic Lanczos quadrature (SLQ; Golub & Meurant 1994,
//! Ubaru, Chen & Saad 2017; applied to networks by Ghorbani, Krishnan & Xiao 2019, as
//! PyHessian's `density`).
//!
//! For a unit vector v and H = Σ λ_i u_i u_iᵀ, vᵀ f(H) v = Σ_i (u_iᵀ v)² f(λ_i): an integral of f
//! against a measure μ_v with atoms at the eigenvalues. m Lanczos steps from v give the
//! tridiagonal T whose eigenvalues θ_k (Ritz values) and squared first eigenvector components τ_k
//! are the m-node Gauss quadrature of μ_v, exact for polynomials of degree up to 2m − 1. For
//! v = z/√n with Rademacher z, the mean of μ_v is (1/n) Σ_i δ_{λ_i}, the eigenvalue density, so
//! the average of the quadratures over a few probes estimates it. A node θ_k with weight τ_k
//! stands for n·τ_k eigenvalues near θ_k: isolated eigenvalues (outliers) converge to nodes of
//! their own within a few steps, while a bulk of many close eigenvalues is resolved only as mass
//! spread over nodes.
//!
//! Cost: `steps × probes` Hessian-vector products (two gradients each), and `steps` stored
//! vectors of length n for the full reorthogonalization, as in [`crate::curvature::top_eigenvalue`].

use rand::Rng;

use crate::Objective;
use crate::curvature::{dot, hessian_vector, normalize, symmetric_eigen, tridiagonal};

/// One SLQ probe: the Gauss quadrature of the probe's spectral measure. The nodes are the Ritz
/// values θ_k (ascending) and the weights τ_k the squared first components of the matching
/// eigenvectors of the Lanczos matrix T, so Σ τ_k = 1. Empty when the probe's first
/// Hessian-vector product was not finite (see [`spectral_density`]). Both vectors are written with
/// [`crate::nonfinite::vec`], so a record with non-finite entries reads back as written.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Quadrature {
    /// Ritz values, ascending.
    #[serde(with = "crate::nonfinite::vec")]
    pub nodes: Vec<f64>,
    /// Weight of each node; they sum to 1 (up to rounding).
    #[serde(with = "crate::nonfinite::vec")]
    pub weights: Vec<f64>,
}

/// The SLQ estimate of the eigenvalue density: one quadrature per probe, and the dimension n that
/// turns the probes' unit mass into eigenvalue counts.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SpectralDensity {
    /// Number of parameters n (the Hessian is n × n).
    pub dim: usize,
    /// One quadrature per probe, in the order they ran.
    pub probes: Vec<Quadrature>,
}

/// The eigenvalue density of H(x) by stochastic Lanczos quadrature: for each of `probes`
/// Rademacher start vectors (normalized), `steps` Lanczos steps with full reorthogonalization
/// (twice, as in [`crate::curvature::top_eigenvalue`]), one [`hessian_vector`] product with
/// difference step `h` each. Steps are capped at n, the largest Krylov space.
///
/// - No steps, no probes or an empty `x`: no probes are run (`probes` is empty), and the
///   estimates are NaN (see the methods of [`SpectralDensity`]; an empty `x` has trace 0).
/// - Breakdown: a new Lanczos direction shorter than 1e-10 times the largest product so far (the
///   start vector lies in an invariant subspace, e.g. H has fewer distinct eigenvalues than
///   `steps`) ends the probe early. Its quadrature is then exact: the nodes are the eigenvalues
///   the start vector sees and the weights its squared components on their eigenspaces. The
///   relative 1e-10 is well above the rounding of a central difference on a quadratic (about
///   1e-16 ‖x − centre‖ / h) and far below any real residual.
/// - A Hessian-vector product that is not finite (a NaN or infinite loss or gradient at x ± h q,
///   or a zero `h`) ends that probe, and the quadrature of the steps before it is kept: it is the
///   exact Gauss rule of a smaller Krylov space, with weights summing to 1. A probe whose first
///   product is not finite has no quadrature and is recorded empty, which makes the estimates NaN,
///   as one NaN probe makes Hutchinson's trace NaN. No probe runs more than `steps` products.
pub fn spectral_density(
    obj: &mut dyn Objective,
    x: &[f64],
    steps: usize,
    probes: usize,
    h: f64,
    rng: &mut impl Rng,
) -> SpectralDensity {
    let n = x.len();
    if steps == 0 || probes == 0 || n == 0 {
        return SpectralDensity { dim: n, probes: Vec::new() };
    }
    let probes = (0..probes)
        .map(|_| {
            let mut z: Vec<f64> = (0..n).map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 }).collect();
            normalize(&mut z);
            lanczos_quadrature(obj, x, z, steps.min(n), h)
        })
        .collect();
    SpectralDensity { dim: n, probes }
}

/// At most `steps` Lanczos steps from the unit vector `q`, and the Gauss quadrature of T.
fn lanczos_quadrature(obj: &mut dyn Objective, x: &[f64], mut q: Vec<f64>, steps: usize, h: f64) -> Quadrature {
    let mut basis: Vec<Vec<f64>> = Vec::new();
    let (mut alpha, mut beta): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    // The largest ‖H q_j‖ so far: the scale of H on the Krylov space, for the breakdown test.
    let mut scale = 0.0_f64;
    for step in 1..=steps {
        let mut w = hessian_vector(obj, x, &q, h);
        let a = dot(&q, &w);
        let norm = dot(&w, &w).sqrt();
        if !a.is_finite() || !norm.is_finite() || w.iter().any(|v| !v.is_finite()) {
            break;
        }
        scale = scale.max(norm);
        basis.push(q);
        alpha.push(a);
        if step == steps {
            break;
        }
        // Full reorthogonalization, twice ("twice is enough"), against every earlier vector.
        for _ in 0..2 {
            for v in &basis {
                let c = dot(v, &w);
                w.iter_mut().zip(v).for_each(|(wi, vi)| *wi -= c * vi);
            }
        }
        let b = dot(&w, &w).sqrt();
        // Breakdown (also when H q = 0: scale 0 and b 0): T so far is exact.
        if b <= 1e-10 * scale {
            break;
        }
        beta.push(b);
        q = w.iter().map(|v| v / b).collect();
    }
    let k = alpha.len();
    if k == 0 {
        return Quadrature { nodes: Vec::new(), weights: Vec::new() };
    }
    beta.truncate(k - 1);
    let (values, vectors) = symmetric_eigen(&tridiagonal(&alpha, &beta), k);
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    Quadrature {
        nodes: order.iter().map(|&j| values[j]).collect(),
        // Row 0 of the eigenvector matrix: the first components (column j is eigenvector j).
        weights: order.iter().map(|&j| vectors[j].powi(2)).collect(),
    }
}

impl SpectralDensity {
    /// Whether every probe has a quadrature (and there is at least one probe).
    fn complete(&self) -> bool {
        !self.probes.is_empty() && self.probes.iter().all(|p| !p.nodes.is_empty())
    }

    /// The mean over probes of Σ_k τ_k f(θ_k), NaN when some probe has no quadrature or there are
    /// none.
    fn mean(&self, f: impl Fn(f64) -> f64) -> f64 {
        if !self.complete() {
            return f64::NAN;
        }
        let total: f64 =
            self.probes.iter().map(|p| p.nodes.iter().zip(&p.weights).map(|(&t, w)| w * f(t)).sum::<f64>()).sum();
        total / self.probes.len() as f64
    }

    /// The density smoothed by a Gaussian of standard deviation `sigma`, on `grid`:
    /// φ(t) = (1/probes) Σ_probes Σ_k τ_k N(t; θ_k, σ²). It integrates to 1 over the real line;
    /// multiply by `dim` for a density of eigenvalue counts. `sigma` sets the resolution: features
    /// closer than a few σ merge, and a σ below the spacing of the Ritz values in the bulk shows
    /// the nodes instead of a continuous bulk (PyHessian takes σ² = 1e-5 of the squared spectral
    /// width). NaN everywhere when there is no estimate (no probes, a probe without quadrature)
    /// or `sigma` is not positive and finite.
    pub fn smoothed(&self, grid: &[f64], sigma: f64) -> Vec<f64> {
        if !(sigma > 0.0 && sigma.is_finite()) {
            return vec![f64::NAN; grid.len()];
        }
        let c = 1.0 / (sigma * (2.0 * std::f64::consts::PI).sqrt());
        grid.iter().map(|&t| self.mean(|theta| c * (-0.5 * ((t - theta) / sigma).powi(2)).exp())).collect()
    }

    /// The trace estimate of the quadrature: dim · mean_probes Σ_k τ_k θ_k. Since Σ_k τ_k θ_k =
    /// (T)₁₁ = vᵀHv for the unit start vector v = z/√n, this is Hutchinson's estimate with the same
    /// Rademacher probes (as [`crate::curvature::trace`] draws them), whatever the number of steps.
    /// An empty `x` has trace 0; otherwise NaN when there is no estimate.
    pub fn trace(&self) -> f64 {
        if self.dim == 0 {
            return 0.0;
        }
        self.dim as f64 * self.mean(|theta| theta)
    }

    /// The estimated number of eigenvalues at or above `t`: dim · mean_probes Σ_{θ_k ≥ t} τ_k. It
    /// counts the mass of the nodes, so a threshold inside the bulk is resolved only to the
    /// spacing of the nodes there; above the bulk, where the nodes are converged outliers, it is
    /// close to the true count. An empty `x` has 0; otherwise NaN when there is no estimate or `t`
    /// is NaN.
    pub fn count_above(&self, t: f64) -> f64 {
        if t.is_nan() {
            return f64::NAN;
        }
        if self.dim == 0 {
            return 0.0;
        }
        self.dim as f64 * self.mean(|theta| if theta >= t { 1.0 } else { 0.0 })
    }

    /// The Ritz values of all probes pooled, sorted descending. A converged eigenvalue appears once
    /// per probe; probes without a quadrature contribute nothing.
    pub fn ritz_values(&self) -> Vec<f64> {
        let mut all: Vec<f64> = self.probes.iter().flat_map(|p| p.nodes.iter().copied()).collect();
        all.sort_by(|a, b| b.total_cmp(a));
        all
    }
}

/// The number of Hessian eigenvalues separated from the bulk by the eigengap heuristic: about one
/// per class at the end of training (Sagun et al. 2017; Papyan 2019; Ghorbani et al. 2019).
///
/// Each probe counts separately, on its own Ritz values θ_1 > θ_2 > …, the distinct values of
/// one Lanczos run (an unreduced tridiagonal T has no repeated eigenvalues, whereas pooling
/// probes repeats every converged outlier once per probe):
/// - take the `max_outliers + 1` largest, θ_1 … θ_K (fewer if the probe has fewer nodes);
/// - with the floor f = 10⁻³ θ_1, the gap below θ_i, for each i < K with θ_i > f, is the ratio
///   θ_i / max(θ_{i+1}, f). Ritz values below f, zero or negative ones included, count as f:
///   between values near 0, whose size and sign are rounding or finite-difference noise, a plain
///   ratio would be an arbitrarily large gap, and at a thousandth of the top they are bulk for
///   any outlier count this heuristic can resolve. Positive outliers above a non-positive bulk are
///   thus separated by the gap θ_r / f below the last of them;
/// - the probe's count is the i of the largest gap (the smallest such i on ties), the number of
///   Ritz values above it; 0 when there is no gap (θ_1 ≤ 0, a single node, or `max_outliers` 0).
///
/// The result is the median of the probes' counts (the lower one for an even number of probes),
/// so one probe that barely saw an outlier (a small weight on it, an unconverged Ritz value in the
/// gap) does not decide it. Probes without a quadrature are skipped; 0 when none is left.
///
/// The heuristic locates the largest gap but does not test that it is significant: a spectrum
/// without outliers but with a positive top Ritz value still gives at least 1, so look at the gap
/// itself (e.g. in [`SpectralDensity::ritz_values`]) before reading the count as outliers.
/// `max_outliers` must be at least the true count, or the answer is the largest gap among the
/// outliers themselves; the outliers must also have converged, which needs some more `steps` than
/// there are outliers.
pub fn outlier_count(density: &SpectralDensity, max_outliers: usize) -> usize {
    let mut counts: Vec<usize> = density
        .probes
        .iter()
        .filter(|p| !p.nodes.is_empty())
        .map(|p| {
            let mut top = p.nodes.clone();
            top.sort_by(|a, b| b.total_cmp(a));
            top.truncate(max_outliers.saturating_add(1));
            let floor = 1e-3 * top[0];
            let mut best = (0, f64::NEG_INFINITY);
            for (i, pair) in top.windows(2).enumerate() {
                // Descending, so no later value is above the floor either (also stops at NaN).
                if !(floor > 0.0 && pair[0] > floor) {
                    break;
                }
                let gap = pair[0] / pair[1].max(floor);
                if gap > best.1 {
                    best = (i + 1, gap);
                }
            }
            best.0
        })
        .collect();
    if counts.is_empty() {
        return 0;
    }
    counts.sort_unstable();
    counts[(counts.len() - 1) / 2]
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::Quadratic;

    /// The Rademacher vectors `spectral_density` draws from `rng`: n signs per probe, in order.
    fn rademacher(rng: &mut ChaCha8Rng, n: usize, probes: usize) -> Vec<Vec<f64>> {
        (0..probes).map(|_| (0..n).map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 }).collect()).collect()
    }

    fn close(a: f64, b: f64, rel: f64, scale: f64) -> bool {
        (a - b).abs() <= rel * scale
    }

    #[test]
    fn the_quadrature_is_exact_on_a_diagonal_hessian() {
        // Three distinct eigenvalues with multiplicities 2, 5, 3 (n = 10). Rademacher z has z_i² = 1,
        // so every probe's measure is exactly Σ (multiplicity / n) δ_λ.
        let eig = [-1.0, -1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 5.0, 5.0, 5.0];
        let (distinct, weights) = ([-1.0, 2.0, 5.0], [0.2, 0.5, 0.3]);
        let mut q = Quadratic::diagonal(&eig);
        let x: Vec<f64> = (0..10).map(|i| i as f64 * 0.3 - 1.0).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(10);
        // Exactly 3 steps, and 8: the second breaks down after 3 (the Krylov space is 3-dim).
        for steps in [3, 8] {
            let mut counter = Counted(&mut q, 0);
            let d = spectral_density(&mut counter, &x, steps, 4, 1e-3, &mut rng);
            assert_eq!(counter.1, 2 * 3 * 4, "3 products per probe, breakdown stops the rest");
            assert_eq!((d.dim, d.probes.len()), (10, 4));
            for p in &d.probes {
                assert_eq!(p.nodes.len(), 3, "{p:?}");
                for k in 0..3 {
                    assert!(close(p.nodes[k], distinct[k], 1e-6, 5.0), "{p:?}");
                    assert!((p.weights[k] - weights[k]).abs() < 1e-10, "{p:?}");
                }
            }
            assert!((d.trace() - 23.0).abs() < 1e-8, "{}", d.trace());
            assert!((d.count_above(1.5) - 8.0).abs() < 1e-8 && (d.count_above(4.9) - 3.0).abs() < 1e-8);
            assert!((d.count_above(-10.0) - 10.0).abs() < 1e-8 && d.count_above(10.0) == 0.0);
            assert_eq!(d.ritz_values().len(), 12);
            assert!(d.ritz_values().windows(2).all(|w| w[0] >= w[1]));
        }
    }

    #[test]
    fn the_quadrature_is_exact_on_a_rotated_hessian() {
        // A dense H with 4 distinct eigenvalues (one negative, one zero) of multiplicities 3, 2, 4, 3.
        // The weights are the start vector's squared components on the eigenspaces, known from Q
        // and the replayed probes.
        let eig = [4.0, 4.0, 4.0, -2.0, -2.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.5];
        let distinct = [-2.0, 0.0, 0.5, 4.0];
        let n = eig.len();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let (mut quad, rows) = Quadratic::rotated(&eig, &mut rng);
        let x = vec![0.3; n];
        let replay = rademacher(&mut rng.clone(), n, 5);
        let d = spectral_density(&mut quad, &x, 9, 5, 1e-3, &mut rng);
        for (p, z) in d.probes.iter().zip(&replay) {
            assert_eq!(p.nodes.len(), 4, "breakdown after the 4 distinct eigenvalues: {p:?}");
            let mut total = 0.0;
            for (k, &l) in distinct.iter().enumerate() {
                assert!(close(p.nodes[k], l, 1e-6, 4.0), "{p:?}");
                let w: f64 = (0..n).filter(|&i| eig[i] == l).map(|i| dot(&rows[i], z).powi(2)).sum::<f64>() / n as f64;
                assert!((p.weights[k] - w).abs() < 1e-8, "{p:?} vs {w}");
                total += p.weights[k];
            }
            assert!((total - 1.0).abs() < 1e-12);
        }
        // The quadrature's trace is Hutchinson's on the same probes (the first moment of T).
        let hutchinson: f64 =
            replay.iter().map(|z| eig.iter().zip(&rows).map(|(l, u)| l * dot(u, z).powi(2)).sum::<f64>()).sum::<f64>()
                / 5.0;
        assert!((d.trace() - hutchinson).abs() < 1e-8, "{} vs {hutchinson}", d.trace());
    }

    #[test]
    fn the_trace_is_within_ten_percent_on_a_random_spectrum() {
        // n = 200 eigenvalues uniform in [0.1, 2], a dense rotation, 30 probes of 20 steps.
        let n = 200;
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let eig: Vec<f64> = (0..n).map(|_| rng.random_range(0.1..2.0)).collect();
        let exact: f64 = eig.iter().sum();
        let (mut quad, _) = Quadratic::rotated(&eig, &mut rng);
        let x = vec![0.2; n];
        let d = spectral_density(&mut quad, &x, 20, 30, 1e-3, &mut rng);
        assert!(d.probes.iter().all(|p| p.nodes.len() == 20));
        // The estimate is Hutchinson's, and for Rademacher z, Var(zᵀHz) = 2 Σ_{i≠j} H_ij²
        // ≤ 2 (‖H‖_F² − (tr H)² / n) = 2 Σ (λ_i − λ̄)² (Cauchy-Schwarz on the diagonal). The tolerance
        // is at least 4 standard errors of that bound: by Chebyshev a seed fails with probability
        // below 1/16, and below 1e-4 under the normal approximation of a 30-probe mean.
        let mean = exact / n as f64;
        let bound_se = (2.0 * eig.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / 30.0).sqrt();
        let tol = 0.1 * exact;
        assert!(tol >= 4.0 * bound_se, "tolerance {tol} vs standard error bound {bound_se}");
        assert!((d.trace() - exact).abs() < tol, "{} vs {exact}", d.trace());
    }

    #[test]
    fn the_smoothed_density_integrates_to_one_and_peaks_at_the_eigenvalues() {
        let eig = [-1.0, -1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 5.0, 5.0, 5.0];
        let mut q = Quadratic::diagonal(&eig);
        let mut rng = ChaCha8Rng::seed_from_u64(13);
        let d = spectral_density(&mut q, &[0.0; 10], 10, 3, 1e-3, &mut rng);
        let (sigma, dt) = (0.1, 1e-3);
        let grid: Vec<f64> = (0..=10_000).map(|i| -3.0 + i as f64 * dt).collect(); // [-3, 7]
        let phi = d.smoothed(&grid, sigma);
        let integral: f64 = phi.windows(2).map(|w| 0.5 * (w[0] + w[1]) * dt).sum();
        assert!((integral - 1.0).abs() < 1e-3, "{integral}");
        // Local maxima: exactly one at each eigenvalue (to the grid spacing), with the height of
        // its mass, multiplicity / n, in a Gaussian of width σ.
        let peaks: Vec<usize> = (1..grid.len() - 1).filter(|&i| phi[i] > phi[i - 1] && phi[i] >= phi[i + 1]).collect();
        assert_eq!(peaks.len(), 3, "{peaks:?}");
        let height = 1.0 / (sigma * (2.0 * std::f64::consts::PI).sqrt());
        for (&i, (l, m)) in peaks.iter().zip([(-1.0, 0.2), (2.0, 0.5), (5.0, 0.3)]) {
            assert!((grid[i] - l).abs() <= dt, "peak at {} for {l}", grid[i]);
            assert!((phi[i] - m * height).abs() < 1e-6, "{} vs {}", phi[i], m * height);
        }
        // No resolution, no density.
        for sigma in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(d.smoothed(&grid[..3], sigma).iter().all(|v| v.is_nan()));
        }
    }

    #[test]
    fn the_outliers_above_a_bulk_are_counted() {
        // Ten outliers 50..59 above a bulk of 190 eigenvalues uniform in [-0.5, 1] (n = 200).
        let n = 200;
        let mut rng = ChaCha8Rng::seed_from_u64(14);
        let eig: Vec<f64> =
            (0..n).map(|i| if i < 10 { 50.0 + i as f64 } else { rng.random_range(-0.5..1.0) }).collect();
        let (mut quad, _) = Quadratic::rotated(&eig, &mut rng);
        let d = spectral_density(&mut quad, &vec![0.1; n], 40, 20, 1e-3, &mut rng);
        for max_outliers in [10, 15, 20] {
            assert_eq!(outlier_count(&d, max_outliers), 10, "max_outliers {max_outliers}");
        }
        // The outliers are converged nodes of every probe (10 per probe, 200 pooled); the next
        // Ritz value is at most the 11th eigenvalue, the top of the bulk (Cauchy interlacing).
        let ritz = d.ritz_values();
        assert!(ritz[..200].iter().all(|&t| t > 50.0 - 1e-6 && t < 59.0 + 1e-9), "{:?}", &ritz[..200]);
        let bulk_top = eig[10..].iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        assert!(ritz[200] <= bulk_top + 1e-9, "{:?}", &ritz[195..205]);
        // The mass above the bulk: n Σ τ over the outlier nodes is zᵀPz for the projector P on the
        // outliers' eigenspace, with mean rank P = 10 and variance 2 Σ_{i≠j} P_ij² ≤ 2 ‖P‖_F² = 20
        // per probe: a standard error of at most 1 over 20 probes, and the tolerance is 4 of them.
        let above = d.count_above(25.0);
        assert!((above - 10.0).abs() < 4.0, "{above}");
        // A non-positive bulk: the positive values are the outliers (an infinite gap at the sign).
        let mut q = Quadratic::diagonal(&[30.0, 20.0, 10.0, 0.0, -0.5, -1.0, -1.0]);
        let d = spectral_density(&mut q, &[0.0; 7], 7, 3, 1e-3, &mut rng);
        assert_eq!(outlier_count(&d, 5), 3);
        // One outlier above a plateau; a multiple of the identity has a single node and no gap.
        let mut q = Quadratic::diagonal(&[100.0, 1.0, 1.0, 1.0]);
        assert_eq!(outlier_count(&spectral_density(&mut q, &[0.0; 4], 4, 3, 1e-3, &mut rng), 3), 1);
        let mut q = Quadratic::diagonal(&[2.0; 5]);
        let d = spectral_density(&mut q, &[0.0; 5], 5, 3, 1e-3, &mut rng);
        assert!(d.probes.iter().all(|p| p.nodes.len() == 1));
        assert_eq!(outlier_count(&d, 3), 0);
        // No gap to look at: max_outliers = 0, or a negative definite H.
        let mut q = Quadratic::diagonal(&[-1.0, -2.0, -3.0]);
        assert_eq!(outlier_count(&spectral_density(&mut q, &[0.0; 3], 3, 2, 1e-3, &mut rng), 2), 0);
        let mut q = Quadratic::diagonal(&[10.0, 1.0, 1.0]);
        assert_eq!(outlier_count(&spectral_density(&mut q, &[0.0; 3], 3, 2, 1e-3, &mut rng), 0), 0);
    }

    /// Counts evaluations of an inner objective.
    struct Counted<'a>(&'a mut dyn Objective, usize);

    impl Objective for Counted<'_> {
        fn dim(&self) -> usize {
            self.0.dim()
        }
        fn value_grad(&mut self, x: &[f64], grad: &mut [f64]) -> f64 {
            self.1 += 1;
            self.0.value_grad(x, grad)
        }
    }

    /// A quadratic whose loss and gradient turn NaN after `finite` evaluations.
    struct NanAfter(Quadratic, usize);

    impl Objective for NanAfter {
        fn dim(&self) -> usize {
            self.0.dim()
        }
        fn value_grad(&mut self, x: &[f64], grad: &mut [f64]) -> f64 {
            if self.1 == 0 {
                grad.fill(f64::NAN);
                return f64::NAN;
            }
            self.1 -= 1;
            self.0.value_grad(x, grad)
        }
    }

    fn assert_no_estimate(d: &SpectralDensity) {
        assert!(d.trace().is_nan() && d.count_above(0.0).is_nan(), "{d:?}");
        assert!(d.smoothed(&[0.0, 1.0], 0.1).iter().all(|v| v.is_nan()));
    }

    #[test]
    fn degenerate_requests_give_documented_values() {
        let mut rng = ChaCha8Rng::seed_from_u64(15);
        let mut q = Quadratic::diagonal(&[3.0, 1.0]);
        let x = [0.5, 0.5];
        // No steps or no probes: nothing runs, no estimate.
        for (steps, probes) in [(0, 5), (5, 0)] {
            let mut counter = Counted(&mut q, 0);
            let d = spectral_density(&mut counter, &x, steps, probes, 1e-3, &mut rng);
            assert_eq!((counter.1, d.dim, d.probes.len()), (0, 2, 0));
            assert_no_estimate(&d);
            assert!(d.ritz_values().is_empty() && outlier_count(&d, 5) == 0);
        }
        // An empty x: no probes, a trace and counts of 0 (no eigenvalues), no density.
        let d = spectral_density(&mut Quadratic::diagonal(&[]), &[], 5, 5, 1e-3, &mut rng);
        assert_eq!((d.dim, d.probes.len()), (0, 0));
        assert_eq!((d.trace(), d.count_above(1.0)), (0.0, 0.0));
        assert!(d.smoothed(&[0.0], 1.0)[0].is_nan() && d.count_above(f64::NAN).is_nan());
        // More steps than dimensions: capped at n (here also exact after 2).
        let d = spectral_density(&mut q, &x, 50, 2, 1e-3, &mut rng);
        assert!(d.probes.iter().all(|p| p.nodes.len() == 2), "{d:?}");
        assert!((d.trace() - 4.0).abs() < 1e-9);
        // H q = 0 is a breakdown at once: the exact measure δ_0.
        let mut zero = Quadratic::diagonal(&[0.0; 4]);
        let d = spectral_density(&mut zero, &[1.0; 4], 4, 2, 1e-3, &mut rng);
        assert!(d.probes.iter().all(|p| p.nodes == [0.0] && p.weights == [1.0]), "{d:?}");
        // A zero difference step: every product is NaN, each probe stops after one product and
        // is recorded empty.
        let mut counter = Counted(&mut q, 0);
        let d = spectral_density(&mut counter, &x, 10, 3, 0.0, &mut rng);
        assert_eq!(counter.1, 2 * 3);
        assert!(d.probes.len() == 3 && d.probes.iter().all(|p| p.nodes.is_empty() && p.weights.is_empty()));
        assert_no_estimate(&d);
        assert!(d.ritz_values().is_empty() && outlier_count(&d, 5) == 0);
    }

    #[test]
    fn a_nan_product_ends_the_probe_and_keeps_the_steps_before() {
        // Finite for the first two products (4 evaluations), NaN after: the first probe keeps a
        // 2-node Gauss rule of its 2-dim Krylov space (weights summing to 1), the others are
        // empty and make the estimates NaN; the kept probe still counts for the outliers.
        let mut rng = ChaCha8Rng::seed_from_u64(16);
        let mut obj = NanAfter(Quadratic::diagonal(&[9.0, 4.0, 1.0, 0.5, 0.25]), 4);
        let d = spectral_density(&mut obj, &[0.0; 5], 5, 3, 1e-3, &mut rng);
        assert_eq!(d.probes.len(), 3);
        let first = &d.probes[0];
        assert_eq!(first.nodes.len(), 2, "{first:?}");
        assert!((first.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // Gauss quadrature with 2 nodes matches the first moment exactly: mean eigenvalue 2.95.
        let m1: f64 = first.nodes.iter().zip(&first.weights).map(|(t, w)| t * w).sum();
        assert!((m1 - 14.75 / 5.0).abs() < 1e-9, "{m1}");
        assert!(d.probes[1..].iter().all(|p| p.nodes.is_empty()));
        assert_no_estimate(&d);
        assert_eq!(d.ritz_values().len(), 2);
        assert!(outlier_count(&d, 3) >= 1);
    }
}
