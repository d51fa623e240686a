//! The update rules of the course, each implemented once on flat parameter vectors, so the same
//! code drives a point on an analytic surface and the flattened parameters of a network.
//!
//! With gradient g = ∇L(θ) and step size α:
//! - **GD / SGD**: θ ← θ − α g (SGD when g comes from a minibatch).
//! - **Noisy GD** (Ge et al. 2015): θ ← θ − α g + ε, ε ~ N(0, σ² I).
//! - **Heavy-ball momentum** (the course's form, Goh 2017): V ← ρ V + g; θ ← θ − α V.
//! - **Nesterov momentum** (Sutskever et al. 2013, in the form PyTorch and Burn use):
//!   V ← ρ V + g; θ ← θ − α (g + ρ V).
//! - **AdaGrad** (Duchi et al. 2011): G ← G + g²; θ ← θ − α g / (√G + 1e-10).
//! - **RMSProp** (Tieleman & Hinton 2012): G ← γ G + (1 − γ) g²; θ ← θ − α g / (√G + ε). The
//!   course slide writes the cache with ∇L instead of (∇L)²; this is the standard squared form.
//! - **Adam** (Kingma & Ba 2015), RMSProp plus momentum with bias correction:
//!   m ← β₁ m + (1 − β₁) g; v ← β₂ v + (1 − β₂) g²; θ ← θ − α m̂ / (√v̂ + ε) with
//!   m̂ = m / (1 − β₁ᵗ), v̂ = v / (1 − β₂ᵗ).
//!
//! All squares and roots are element-wise.
//!
//! The rules assume their usual ranges (step sizes and σ finite, momenta and decays in [0, 1),
//! ε ≥ 0); [`Optimizer::step`] never panics on values, but outside these ranges the iterate can
//! become non-finite. A coordinate whose adaptive denominator is exactly 0 (RMSProp or Adam with
//! ε = 0 and a gradient that has been 0 so far) is left where it is instead of being set to NaN
//! by 0/0. A non-finite gradient is not hidden: it makes the iterate non-finite, for the caller's
//! divergence check.
#![warn(missing_docs)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

/// An update rule and its hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Rule {
    /// Plain (stochastic) gradient descent.
    Gd {
        /// Step size α.
        lr: f64,
    },
    /// Gradient descent plus isotropic Gaussian noise (Ge et al. 2015).
    NoisyGd {
        /// Step size α.
        lr: f64,
        /// Noise standard deviation σ per coordinate and step.
        sigma: f64,
    },
    /// Heavy-ball momentum, V ← ρV + g, θ ← θ − αV.
    Momentum {
        /// Step size α.
        lr: f64,
        /// Momentum ρ.
        rho: f64,
    },
    /// Nesterov momentum, V ← ρV + g, θ ← θ − α(g + ρV).
    Nesterov {
        /// Step size α.
        lr: f64,
        /// Momentum ρ.
        rho: f64,
    },
    /// AdaGrad with the course's 1e-10 in the denominator.
    AdaGrad {
        /// Step size α.
        lr: f64,
    },
    /// RMSProp.
    RmsProp {
        /// Step size α.
        lr: f64,
        /// Decay γ of the squared-gradient average.
        decay: f64,
        /// ε added to the root.
        eps: f64,
    },
    /// Adam.
    Adam {
        /// Step size α.
        lr: f64,
        /// β₁.
        beta1: f64,
        /// β₂.
        beta2: f64,
        /// ε added to the root.
        eps: f64,
    },
}

impl Rule {
    /// Short name, as tables print it.
    pub fn name(&self) -> &'static str {
        match self {
            Rule::Gd { .. } => "GD",
            Rule::NoisyGd { .. } => "noisy GD",
            Rule::Momentum { .. } => "momentum",
            Rule::Nesterov { .. } => "Nesterov",
            Rule::AdaGrad { .. } => "AdaGrad",
            Rule::RmsProp { .. } => "RMSProp",
            Rule::Adam { .. } => "Adam",
        }
    }

    /// The rule's step size.
    pub fn lr(&self) -> f64 {
        match *self {
            Rule::Gd { lr }
            | Rule::NoisyGd { lr, .. }
            | Rule::Momentum { lr, .. }
            | Rule::Nesterov { lr, .. }
            | Rule::AdaGrad { lr }
            | Rule::RmsProp { lr, .. }
            | Rule::Adam { lr, .. } => lr,
        }
    }

    /// The rule's fixed hyperparameters besides the step size, in the symbols of the module
    /// doc, e.g. `β = (0.9, 0.999), ε = 1e-8` (empty for GD).
    pub fn constants(&self) -> String {
        match *self {
            Rule::Gd { .. } => String::new(),
            Rule::NoisyGd { sigma, .. } => format!("σ = {sigma:e}"),
            Rule::Momentum { rho, .. } | Rule::Nesterov { rho, .. } => format!("ρ = {rho}"),
            Rule::AdaGrad { .. } => format!("ε = {ADAGRAD_EPS:e}"),
            Rule::RmsProp { decay, eps, .. } => format!("γ = {decay}, ε = {eps:e}"),
            Rule::Adam { beta1, beta2, eps, .. } => format!("β = ({beta1}, {beta2}), ε = {eps:e}"),
        }
    }

    /// The same rule with step size `lr`.
    pub fn with_lr(mut self, new: f64) -> Rule {
        match &mut self {
            Rule::Gd { lr }
            | Rule::NoisyGd { lr, .. }
            | Rule::Momentum { lr, .. }
            | Rule::Nesterov { lr, .. }
            | Rule::AdaGrad { lr }
            | Rule::RmsProp { lr, .. }
            | Rule::Adam { lr, .. } => *lr = new,
        }
        self
    }
}

/// AdaGrad's term in the denominator (the course's value; not a field of [`Rule::AdaGrad`]).
const ADAGRAD_EPS: f64 = 1e-10;

/// A rule with its state (velocity, squared-gradient cache, moments, step count, noise stream).
#[derive(Debug, Clone)]
pub struct Optimizer {
    rule: Rule,
    first: Vec<f64>,
    second: Vec<f64>,
    steps: u64,
    rng: ChaCha8Rng,
}

impl Optimizer {
    /// A fresh optimizer for `dim` parameters; `seed` drives the noise of noisy GD.
    pub fn new(rule: Rule, dim: usize, seed: u64) -> Optimizer {
        Optimizer {
            rule,
            first: vec![0.0; dim],
            second: vec![0.0; dim],
            steps: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The rule.
    pub fn rule(&self) -> Rule {
        self.rule
    }

    /// One update of `theta` with gradient `grad` at `theta` (zero parameters is a valid, empty
    /// update).
    ///
    /// # Panics
    /// If `theta` or `grad` does not have the length the optimizer was built for.
    pub fn step(&mut self, theta: &mut [f64], grad: &[f64]) {
        assert!(
            theta.len() == self.first.len() && grad.len() == self.first.len(),
            "optimizer built for {} parameters",
            self.first.len()
        );
        self.steps += 1;
        match self.rule {
            Rule::Gd { lr } => theta.iter_mut().zip(grad).for_each(|(t, g)| *t -= lr * g),
            Rule::NoisyGd { lr, sigma } => {
                for (t, g) in theta.iter_mut().zip(grad) {
                    let noise: f64 = self.rng.sample(StandardNormal);
                    *t += -lr * g + sigma * noise;
                }
            }
            Rule::Momentum { lr, rho } => {
                for ((t, g), v) in theta.iter_mut().zip(grad).zip(&mut self.first) {
                    *v = rho * *v + g;
                    *t -= lr * *v;
                }
            }
            Rule::Nesterov { lr, rho } => {
                for ((t, g), v) in theta.iter_mut().zip(grad).zip(&mut self.first) {
                    *v = rho * *v + g;
                    *t -= lr * (g + rho * *v);
                }
            }
            Rule::AdaGrad { lr } => {
                for ((t, g), s) in theta.iter_mut().zip(grad).zip(&mut self.second) {
                    *s += g * g;
                    *t -= lr * g / (s.sqrt() + ADAGRAD_EPS);
                }
            }
            Rule::RmsProp { lr, decay, eps } => {
                for ((t, g), s) in theta.iter_mut().zip(grad).zip(&mut self.second) {
                    *s = decay * *s + (1.0 - decay) * g * g;
                    let denominator = s.sqrt() + eps;
                    if denominator != 0.0 {
                        *t -= lr * g / denominator;
                    }
                }
            }
            Rule::Adam { lr, beta1, beta2, eps } => {
                // The power t saturates at i32::MAX (where βᵗ is 0 for β < 1) instead of wrapping.
                let t = i32::try_from(self.steps).unwrap_or(i32::MAX);
                let (c1, c2) = (1.0 - beta1.powi(t), 1.0 - beta2.powi(t));
                for (((t, g), m), v) in theta.iter_mut().zip(grad).zip(&mut self.first).zip(&mut self.second) {
                    *m = beta1 * *m + (1.0 - beta1) * g;
                    *v = beta2 * *v + (1.0 - beta2) * g * g;
                    let denominator = (*v / c2).sqrt() + eps;
                    if denominator != 0.0 {
                        *t -= lr * (*m / c1) / denominator;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three steps on f(θ) = θ² (g = 2θ) from θ = 1; returns θ after each step.
    fn three_steps(rule: Rule) -> [f64; 3] {
        let mut opt = Optimizer::new(rule, 1, 0);
        let mut theta = [1.0];
        let mut out = [0.0; 3];
        for o in &mut out {
            let g = [2.0 * theta[0]];
            opt.step(&mut theta, &g);
            *o = theta[0];
        }
        out
    }

    fn close(a: [f64; 3], b: [f64; 3]) {
        for (x, y) in a.iter().zip(&b) {
            // 1e-9: the hand values leave out AdaGrad's 1e-10 in the denominator.
            assert!((x - y).abs() < 1e-9, "{a:?} vs hand-computed {b:?}");
        }
    }

    #[test]
    fn gd_by_hand() {
        // θ ← θ − 0.1·2θ = 0.8θ: 0.8, 0.64, 0.512.
        close(three_steps(Rule::Gd { lr: 0.1 }), [0.8, 0.64, 0.512]);
    }

    #[test]
    fn momentum_by_hand() {
        // α = 0.1, ρ = 0.5. V₁ = 2, θ₁ = 0.8; V₂ = 1 + 1.6 = 2.6, θ₂ = 0.54;
        // V₃ = 1.3 + 1.08 = 2.38, θ₃ = 0.302.
        close(three_steps(Rule::Momentum { lr: 0.1, rho: 0.5 }), [0.8, 0.54, 0.302]);
    }

    #[test]
    fn nesterov_by_hand() {
        // α = 0.1, ρ = 0.5. g = 2, V₁ = 2, θ₁ = 1 − 0.1(2 + 1) = 0.7;
        // g = 1.4, V₂ = 1 + 1.4 = 2.4, θ₂ = 0.7 − 0.1(1.4 + 1.2) = 0.44;
        // g = 0.88, V₃ = 1.2 + 0.88 = 2.08, θ₃ = 0.44 − 0.1(0.88 + 1.04) = 0.248.
        close(three_steps(Rule::Nesterov { lr: 0.1, rho: 0.5 }), [0.7, 0.44, 0.248]);
    }

    #[test]
    fn adagrad_by_hand() {
        // α = 0.5. g = 2, G = 4, θ₁ = 1 − 0.5·2/2 = 0.5; g = 1, G = 5, θ₂ = 0.5 − 0.5/√5;
        // g₃ = 2θ₂, G = 5 + g₃², θ₃ = θ₂ − 0.5 g₃/√G.
        let t2 = 0.5 - 0.5 / 5f64.sqrt();
        let g3 = 2.0 * t2;
        let t3 = t2 - 0.5 * g3 / (5.0 + g3 * g3).sqrt();
        close(three_steps(Rule::AdaGrad { lr: 0.5 }), [0.5, t2, t3]);
    }

    #[test]
    fn rmsprop_by_hand() {
        // α = 0.1, γ = 0.9, ε = 0. g = 2, G = 0.4, θ₁ = 1 − 0.2/√0.4;
        // then G₂ = 0.36 + 0.1 g₂², θ₂ = θ₁ − 0.1 g₂/√G₂, and so on.
        let mut t = 1.0f64;
        let mut g_cache = 0.0;
        let mut expected = [0.0; 3];
        for e in &mut expected {
            let g = 2.0 * t;
            g_cache = 0.9 * g_cache + 0.1 * g * g;
            t -= 0.1 * g / g_cache.sqrt();
            *e = t;
        }
        // The first step by hand: 1 − 0.2/√0.4 = 1 − 0.316227766 = 0.683772234.
        assert!((expected[0] - 0.683_772_233_983_162).abs() < 1e-12);
        close(three_steps(Rule::RmsProp { lr: 0.1, decay: 0.9, eps: 0.0 }), expected);
    }

    #[test]
    fn adam_by_hand() {
        // With bias correction the first step is α·sign(g): θ₁ = 1 − 0.1 = 0.9.
        // Step 2: g = 1.8, m = 0.1·1.8 + 0.09·2 … computed below from the formulas.
        let (b1, b2) = (0.9f64, 0.999f64);
        let (mut m, mut v, mut t) = (0.0f64, 0.0f64, 1.0f64);
        let mut expected = [0.0; 3];
        for (k, e) in expected.iter_mut().enumerate() {
            let g = 2.0 * t;
            m = b1 * m + (1.0 - b1) * g;
            v = b2 * v + (1.0 - b2) * g * g;
            let step = (k + 1) as i32;
            t -= 0.1 * (m / (1.0 - b1.powi(step))) / ((v / (1.0 - b2.powi(step))).sqrt() + 1e-8);
            *e = t;
        }
        assert!((expected[0] - 0.9).abs() < 1e-7, "first Adam step is α·sign(g)");
        close(three_steps(Rule::Adam { lr: 0.1, beta1: b1, beta2: b2, eps: 1e-8 }), expected);
    }

    #[test]
    fn a_zero_adaptive_denominator_leaves_the_coordinate_alone() {
        // ε = 0 and a coordinate whose gradient is 0: RMSProp's and Adam's denominators are
        // exactly 0, and 0/0 would make θ NaN; the coordinate stays put instead, while the other
        // coordinate moves as the formula says.
        for rule in [
            Rule::RmsProp { lr: 0.1, decay: 0.9, eps: 0.0 },
            Rule::Adam { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 0.0 },
        ] {
            let mut opt = Optimizer::new(rule, 2, 0);
            let mut theta = [1.0, 2.0];
            for _ in 0..3 {
                let g = [0.0, 2.0 * theta[1]];
                opt.step(&mut theta, &g);
            }
            assert_eq!(theta[0], 1.0, "{rule:?}");
            assert!(theta[1].is_finite() && theta[1] < 2.0, "{rule:?}: {theta:?}");
        }
    }

    #[test]
    fn zero_parameters_and_a_nan_gradient_do_not_panic() {
        for rule in [
            Rule::Gd { lr: 0.1 },
            Rule::NoisyGd { lr: 0.1, sigma: 0.1 },
            Rule::Momentum { lr: 0.1, rho: 0.9 },
            Rule::Nesterov { lr: 0.1, rho: 0.9 },
            Rule::AdaGrad { lr: 0.1 },
            Rule::RmsProp { lr: 0.1, decay: 0.9, eps: 1e-8 },
            Rule::Adam { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8 },
        ] {
            let mut empty = Optimizer::new(rule, 0, 0);
            empty.step(&mut [], &[]);
            // A NaN gradient is not hidden: the iterate becomes NaN for the caller to see.
            let mut opt = Optimizer::new(rule, 1, 0);
            let mut theta = [1.0];
            opt.step(&mut theta, &[f64::NAN]);
            assert!(theta[0].is_nan(), "{rule:?}");
        }
    }

    #[test]
    fn noisy_gd_adds_seeded_gaussian_noise() {
        // σ = 0 is GD; σ > 0 adds noise that the seed fixes.
        close(three_steps(Rule::NoisyGd { lr: 0.1, sigma: 0.0 }), [0.8, 0.64, 0.512]);
        let a = three_steps(Rule::NoisyGd { lr: 0.1, sigma: 0.01 });
        let b = three_steps(Rule::NoisyGd { lr: 0.1, sigma: 0.01 });
        assert_eq!(a, b);
        assert!((a[0] - 0.8).abs() > 0.0 && (a[0] - 0.8).abs() < 0.05, "{a:?}");
    }
}
