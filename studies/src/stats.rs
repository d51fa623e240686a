//! Summary statistics over seeds.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// Mean of `xs` (NaN when empty).
pub fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample standard deviation (n − 1 in the denominator; 0 for a single value), as papers report
/// "mean ± std over runs".
pub fn std(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs);
    (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

/// Welch's two-sample t-test: the statistic and the two-sided p-value of "mean(a) = mean(b)".
/// `None` when either sample has fewer than two values or both have zero variance.
pub fn welch_t_test(a: &[f64], b: &[f64]) -> Option<(f64, f64)> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let (va, vb) = (std(a).powi(2) / a.len() as f64, std(b).powi(2) / b.len() as f64);
    if va + vb == 0.0 {
        return None;
    }
    let t = (mean(a) - mean(b)) / (va + vb).sqrt();
    // Welch–Satterthwaite degrees of freedom.
    let df = (va + vb).powi(2) / (va.powi(2) / (a.len() - 1) as f64 + vb.powi(2) / (b.len() - 1) as f64);
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    Some((t, 2.0 * (1.0 - dist.cdf(t.abs()))))
}

/// The difference of means mean(a) − mean(b), its 95 % Welch confidence interval and the
/// two-sided p of "no difference". `None` when either sample has fewer than two values or both
/// have zero variance.
pub fn welch_difference(a: &[f64], b: &[f64]) -> Option<(f64, f64, f64, f64)> {
    let (_, p) = welch_t_test(a, b)?;
    let (va, vb) = (std(a).powi(2) / a.len() as f64, std(b).powi(2) / b.len() as f64);
    let df = (va + vb).powi(2) / (va.powi(2) / (a.len() - 1) as f64 + vb.powi(2) / (b.len() - 1) as f64);
    let t = StudentsT::new(0.0, 1.0, df).ok()?.inverse_cdf(0.975);
    let (d, half) = (mean(a) - mean(b), t * (va + vb).sqrt());
    Some((d, d - half, d + half, p))
}

/// Geometric mean of paired ratios with its 95 % confidence interval: a Student-t interval on
/// the logarithms over the pairs, mapped back. `None` for fewer than two ratios or any ratio
/// that is not positive and finite (no logarithm).
pub fn geometric_mean_ci(ratios: &[f64]) -> Option<(f64, f64, f64)> {
    if ratios.len() < 2 || ratios.iter().any(|r| !(r.is_finite() && *r > 0.0)) {
        return None;
    }
    let logs: Vec<f64> = ratios.iter().map(|r| r.ln()).collect();
    let (m, se) = (mean(&logs), std(&logs) / (logs.len() as f64).sqrt());
    let t = StudentsT::new(0.0, 1.0, (logs.len() - 1) as f64).ok()?.inverse_cdf(0.975);
    Some((m.exp(), (m - t * se).exp(), (m + t * se).exp()))
}

/// The smallest and largest of `values`, NaNs skipped (as `f64::min` and `f64::max` do); (∞, −∞)
/// when there is none.
pub fn min_max(values: impl IntoIterator<Item = f64>) -> (f64, f64) {
    values.into_iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

/// The mean, or `None` for no values (an empty CSV cell).
pub fn mean_of(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| mean(v))
}

/// The sample standard deviation, or `None` for no values.
pub fn std_of(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| std(v))
}

/// `mean ± std` with `digits` decimals, or a dash when there are no values.
pub fn mean_std(v: &[f64], digits: usize) -> String {
    if v.is_empty() { "–".into() } else { format!("{:.digits$} ± {:.digits$}", mean(v), std(v)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welch_difference_matches_an_independent_computation() {
        // Welch's test of [1, 2, 3, 4] against [2, 4, 6, 8, 10] (computed independently, by
        // numerical integration of Student's t): t = −2.2514, df = 5.5208, p = 0.0691,
        // t₀.₉₇₅(5.5208) = 2.4993 and the standard error 1.5546, so the interval of −3.5 is
        // −3.5 ± 2.4993 · 1.5546.
        let (d, lo, hi, p) = welch_difference(&[1.0, 2.0, 3.0, 4.0], &[2.0, 4.0, 6.0, 8.0, 10.0]).unwrap();
        assert!((d + 3.5).abs() < 1e-12);
        assert!((p - 0.0691).abs() < 1e-4, "{p}");
        let half = (hi - lo) / 2.0;
        assert!((half - 2.4993 * 1.5546).abs() < 1e-3, "{half}");
        assert!(welch_difference(&[1.0], &[2.0, 3.0]).is_none());
    }

    #[test]
    fn mean_and_sample_std() {
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, sum of squares 32, sample variance 32/7.
        let xs = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert_eq!(mean(&xs), 5.0);
        assert!((std(&xs) - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!(std(&[3.0]), 0.0);
    }

    #[test]
    fn geometric_mean_ci_of_paired_ratios() {
        // Equal ratios: no spread. Ratios 1 and 4: geometric mean 2, log s.e. ln 4 / √2 / √2 =
        // ln 2, t(0.975, 1 df) = 12.7062047, so the interval is 2^(1 ± 12.7062047).
        assert_eq!(geometric_mean_ci(&[2.0, 2.0, 2.0]).map(|g| g.0), Some(2.0));
        let (g, lo, hi) = geometric_mean_ci(&[1.0, 4.0]).unwrap();
        assert!((g - 2.0).abs() < 1e-12);
        assert!((lo.log2() - (1.0 - 12.706204736)).abs() < 1e-6 && (hi.log2() - (1.0 + 12.706204736)).abs() < 1e-6);
        assert!(geometric_mean_ci(&[2.0]).is_none() && geometric_mean_ci(&[2.0, -1.0]).is_none());
    }

    #[test]
    fn welch_matches_hand_computation() {
        // a = 1..5 (mean 3, var 2.5), b = 3,4,5,6,8 (mean 5.2, var 3.7):
        // t = −2.2 / √(0.5 + 0.74) = −1.97565832..., df = 1.24² / ((0.25 + 0.5476)/4) = 7.7111...,
        // two-sided p = 0.084956 (Simpson integration of the Student-t density, done separately).
        let (t, p) = welch_t_test(&[1., 2., 3., 4., 5.], &[3., 4., 5., 6., 8.]).unwrap();
        assert!((t + 1.9756583222945239).abs() < 1e-12, "t = {t}");
        assert!((p - 0.0849561).abs() < 1e-5, "p = {p}");
        assert!(welch_t_test(&[1.0], &[2.0, 3.0]).is_none());
        assert!(welch_t_test(&[1.0, 1.0], &[1.0, 1.0]).is_none());
    }
}
