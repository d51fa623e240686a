//! Curvature of an objective at a point, from gradients only.
//!
//! H·v ≈ (∇f(x + h v) − ∇f(x − h v)) / 2h (central differences: error O(h²) times the third
//! derivative, exact for quadratics up to rounding). The top eigenvalue comes from power
//! iteration on these products, the trace from Hutchinson's estimator E[zᵀ H z] with Rademacher
//! z (Hutchinson 1989; as in PyHessian).

use rand::Rng;

use crate::Objective;

/// Hessian-vector product H(x)·v by central differences of gradients with step `h` along the
/// unit vector v/‖v‖ (the result is scaled back by ‖v‖).
pub fn hessian_vector(obj: &mut dyn Objective, x: &[f64], v: &[f64], h: f64) -> Vec<f64> {
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

/// The top eigenvalue estimate of power iteration.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TopEigenvalue {
    /// Rayleigh quotient vᵀHv of the last iterate (the eigenvalue of largest magnitude).
    pub value: f64,
    /// Iterations run.
    pub iterations: usize,
    /// Whether the relative change of the estimate fell below the tolerance.
    pub converged: bool,
    /// Relative change at the last iteration.
    pub relative_change: f64,
}

/// Power iteration for the eigenvalue of largest magnitude of H(x), at most `max_iter`
/// Hessian-vector products, stopping when the estimate changes by less than `tol` (relative).
pub fn top_eigenvalue(obj: &mut dyn Objective, x: &[f64], max_iter: usize, tol: f64, h: f64, rng: &mut impl Rng) -> TopEigenvalue {
    let mut v: Vec<f64> = (0..x.len()).map(|_| rng.random_range(-1.0..1.0)).collect();
    normalize(&mut v);
    let mut value = 0.0;
    let mut change = f64::INFINITY;
    for it in 1..=max_iter {
        let hv = hessian_vector(obj, x, &v, h);
        let next = v.iter().zip(&hv).map(|(a, b)| a * b).sum::<f64>();
        change = ((next - value) / next.abs().max(f64::MIN_POSITIVE)).abs();
        value = next;
        v = hv;
        normalize(&mut v);
        if it > 1 && change < tol {
            return TopEigenvalue { value, iterations: it, converged: true, relative_change: change };
        }
    }
    TopEigenvalue { value, iterations: max_iter, converged: false, relative_change: change }
}

/// Hutchinson's trace estimate with its standard error.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Trace {
    /// Mean of zᵀHz over the probes.
    pub value: f64,
    /// Standard error of that mean (sample std / √probes).
    pub std_error: f64,
    /// Probes used.
    pub probes: usize,
}

/// Hutchinson's estimator of tr H(x) with `probes` Rademacher vectors.
pub fn trace(obj: &mut dyn Objective, x: &[f64], probes: usize, h: f64, rng: &mut impl Rng) -> Trace {
    let samples: Vec<f64> = (0..probes)
        .map(|_| {
            let z: Vec<f64> = (0..x.len()).map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 }).collect();
            let hz = hessian_vector(obj, x, &z, h);
            z.iter().zip(&hz).map(|(a, b)| a * b).sum::<f64>()
        })
        .collect();
    let n = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / n;
    let var = if samples.len() > 1 { samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    Trace { value: mean, std_error: (var / n).sqrt(), probes }
}

fn normalize(v: &mut [f64]) {
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

    /// A dense symmetric matrix with eigenvalues `eig`: Q diag(eig) Qᵀ for a random rotation Q
    /// (Gram-Schmidt of a Gaussian matrix).
    fn rotated(eig: &[f64], rng: &mut ChaCha8Rng) -> Quadratic {
        use rand_distr::StandardNormal;
        let n = eig.len();
        let mut q: Vec<Vec<f64>> = Vec::new();
        while q.len() < n {
            let mut v: Vec<f64> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
            for u in &q {
                let d: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(u).for_each(|(a, b)| *a -= d * b);
            }
            normalize(&mut v);
            q.push(v);
        }
        let mut h = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                h[i * n + j] = (0..n).map(|k| q[k][i] * eig[k] * q[k][j]).sum();
            }
        }
        Quadratic { h, center: (0..n).map(|i| i as f64 * 0.1).collect() }
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
    fn power_iteration_finds_the_top_eigenvalue_within_one_percent() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        // Spectrum 10, 5, 4, …: gap ratio 0.5, so power iteration converges fast.
        let eig: Vec<f64> = [10.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.5, 0.1].to_vec();
        let mut q = rotated(&eig, &mut rng);
        let x: Vec<f64> = (0..8).map(|i| i as f64).collect();
        let est = top_eigenvalue(&mut q, &x, 200, 1e-8, 1e-3, &mut rng);
        assert!(est.converged, "{est:?}");
        assert!((est.value - 10.0).abs() / 10.0 < 0.01, "{est:?}");
    }

    #[test]
    fn hutchinson_trace_within_three_standard_errors() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let eig: Vec<f64> = (1..=20).map(|k| k as f64 * 0.5).collect();
        let exact: f64 = eig.iter().sum(); // 105
        let mut q = rotated(&eig, &mut rng);
        let x = vec![0.3; 20];
        let est = trace(&mut q, &x, 200, 1e-3, &mut rng);
        assert!(est.std_error > 0.0);
        assert!((est.value - exact).abs() < 3.0 * est.std_error, "{est:?} vs {exact}");
        // On a diagonal Hessian Rademacher probes are exact: zᵀHz = Σ hᵢ.
        let mut d = Quadratic::diagonal(&eig);
        let est = trace(&mut d, &x, 5, 1e-3, &mut rng);
        assert!((est.value - exact).abs() < 1e-6 && est.std_error < 1e-6, "{est:?}");
    }
}
