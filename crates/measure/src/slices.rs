//! Low-dimensional views of a loss landscape: the line through two points (Goodfellow et al.
//! 2015; Keskar Fig. 3) and the plane through a point along two directions (Li et al. 2018).
//! They evaluate any function of the parameter vector, so they work for a loss, an accuracy, or
//! both at once.

/// `eval(α, (1 − α)·a + α·b)` for each α: α = 0 is `a`, α = 1 is `b`; values outside [0, 1]
/// extrapolate the line. `eval` also gets α, for state that moves with the point (such as batch
/// norm's running statistics). No α gives an empty result; NaN entries reach `eval` as they are.
///
/// # Panics
/// If `a` and `b` differ in length.
pub fn line<T>(a: &[f64], b: &[f64], alphas: &[f64], mut eval: impl FnMut(f64, &[f64]) -> T) -> Vec<T> {
    assert_eq!(a.len(), b.len(), "line: both ends must have the same dimension");
    let mut point = vec![0.0; a.len()];
    alphas
        .iter()
        .map(|&alpha| {
            for ((p, x), y) in point.iter_mut().zip(a).zip(b) {
                *p = (1.0 - alpha) * x + alpha * y;
            }
            eval(alpha, &point)
        })
        .collect()
}

/// `eval(x + α·d₁ + β·d₂)` on the grid α, β ∈ `grid`; row j of the result holds β = grid[j]. An
/// empty grid gives an empty result.
///
/// # Panics
/// If `x`, `d1` and `d2` differ in length.
pub fn plane<T>(x: &[f64], d1: &[f64], d2: &[f64], grid: &[f64], mut eval: impl FnMut(&[f64]) -> T) -> Vec<Vec<T>> {
    assert!(
        x.len() == d1.len() && x.len() == d2.len(),
        "plane: the point and both directions must have the same dimension"
    );
    let mut point = vec![0.0; x.len()];
    grid.iter()
        .map(|&beta| {
            grid.iter()
                .map(|&alpha| {
                    for (k, p) in point.iter_mut().enumerate() {
                        *p = x[k] + alpha * d1[k] + beta * d2[k];
                    }
                    eval(&point)
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Objective, Quadratic};

    #[test]
    fn a_quadratic_along_a_line_is_the_closed_form_parabola() {
        // f(z) = ½ zᵀ diag(2, 4) z along z(α) = (1 − α) a + α b with a = (1, 0), b = (0, 1):
        // f = (1 − α)² + 2α².
        let mut q = Quadratic::diagonal(&[2.0, 4.0]);
        let alphas: Vec<f64> = (0..25).map(|i| -1.0 + 3.0 * i as f64 / 24.0).collect();
        let values = line(&[1.0, 0.0], &[0.0, 1.0], &alphas, |_, p| q.value_grad(p, &mut [0.0; 2]));
        for (a, v) in alphas.iter().zip(values) {
            assert!((v - ((1.0 - a).powi(2) + 2.0 * a * a)).abs() < 1e-12, "α = {a}: {v}");
        }
    }

    #[test]
    fn a_quadratic_on_a_plane_is_the_closed_form_bowl() {
        // Around the minimum of ½ (3u² + v²) along d₁ = (1, 0), d₂ = (0, 2): f = 1.5α² + 2β².
        let mut q = Quadratic::diagonal(&[3.0, 1.0]);
        let grid = [-1.0, -0.5, 0.0, 0.5, 1.0];
        let values = plane(&[0.0, 0.0], &[1.0, 0.0], &[0.0, 2.0], &grid, |p| q.value_grad(p, &mut [0.0; 2]));
        for (j, row) in values.iter().enumerate() {
            for (i, v) in row.iter().enumerate() {
                let (a, b) = (grid[i], grid[j]);
                assert!((v - (1.5 * a * a + 2.0 * b * b)).abs() < 1e-12);
            }
        }
    }
}
