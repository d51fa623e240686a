//! Seeded parameter initialization and dropout, independent of the backend's global RNG.
//!
//! Burn's backends keep one process-wide generator, so two runs training in parallel threads
//! would interleave their draws. Every random number of a run comes from its own [`DropoutRng`]
//! or init generator instead, which also gives every backend the same starting weights.

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor, TensorData};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The generator of a run's dropout masks (and of its initial weights).
pub type DropoutRng = ChaCha8Rng;

/// Tensor of `shape` drawn from U(−bound, bound).
pub fn uniform<const D: usize>(shape: [usize; D], bound: f64, rng: &mut impl Rng, device: &Device) -> Tensor<D> {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.random_range(-bound..bound) as f32).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Dense layer with PyTorch's default init: weights and biases from U(−1/√fan_in, 1/√fan_in).
pub fn linear(d_in: usize, d_out: usize, rng: &mut impl Rng, device: &Device) -> Linear {
    let bound = 1.0 / (d_in as f64).sqrt();
    let mut layer = LinearConfig::new(d_in, d_out).init(device);
    layer.weight = Param::from_tensor(uniform([d_in, d_out], bound, rng, device));
    layer.bias = Some(Param::from_tensor(uniform([d_out], bound, rng, device)));
    layer
}

/// Stride-1 'same' convolution with a `kernel` window, PyTorch's default init.
pub fn conv(c_in: usize, c_out: usize, kernel: [usize; 2], rng: &mut impl Rng, device: &Device) -> Conv2d {
    let fan_in = c_in * kernel[0] * kernel[1];
    let bound = 1.0 / (fan_in as f64).sqrt();
    let mut layer = Conv2dConfig::new([c_in, c_out], kernel).with_padding(PaddingConfig2d::Same).init(device);
    layer.weight = Param::from_tensor(uniform([c_out, c_in, kernel[0], kernel[1]], bound, rng, device));
    layer.bias = Some(Param::from_tensor(uniform([c_out], bound, rng, device)));
    layer
}

/// Batch norm's constants, part of every net's spec (they change results).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BatchNormSettings {
    /// Added to the variance before the square root.
    pub epsilon: f64,
    /// Weight of the current batch in the running statistics' update (PyTorch's convention:
    /// running ← (1 − momentum)·running + momentum·batch).
    pub momentum: f64,
}

impl Default for BatchNormSettings {
    /// ε = 1e-5 and momentum 0.1: the defaults of Burn and PyTorch.
    fn default() -> Self {
        BatchNormSettings { epsilon: 1e-5, momentum: 0.1 }
    }
}

/// Batch norm with scale 1 and shift 0 (deterministic: no draw).
pub fn batch_norm(features: usize, settings: BatchNormSettings, device: &Device) -> BatchNorm {
    BatchNormConfig::new(features).with_epsilon(settings.epsilon).with_momentum(settings.momentum).init(device)
}

/// Inverted dropout: zero each entry with probability `p` and scale the rest by 1/(1 − p).
/// `None` for `rng` is inference (identity).
pub fn dropout<const D: usize>(x: Tensor<D>, p: f64, rng: Option<&mut DropoutRng>) -> Tensor<D> {
    let Some(rng) = rng else { return x };
    if p == 0.0 {
        return x;
    }
    let shape = x.shape();
    let n = shape.num_elements();
    let keep = 1.0 - p;
    let scale = (1.0 / keep) as f32;
    let mask: Vec<f32> = (0..n).map(|_| if rng.random::<f64>() < keep { scale } else { 0.0 }).collect();
    let mask = Tensor::<D>::from_data(TensorData::new(mask, shape), &x.device());
    x * mask
}
