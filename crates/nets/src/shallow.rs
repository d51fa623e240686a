//! C1 and C3 of Keskar et al., the AlexNet-like "shallow" convolutional net, as in the official
//! code (`network_zoo.shallownet`): two blocks [conv 5×5, 64 channels, stride 1, 'same', BN, ReLU,
//! max-pool 3×3 stride 2 'same'], then dense 384 → BN → ReLU → dropout ½ → dense 192 → BN → ReLU
//! → dropout ½ → classes. (The paper's notation says stride 2; its code says 1; we follow the
//! code, whose parameter counts are the ones we assert.)

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, Linear, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::init::BatchNormSettings;
use crate::{Classifier, DropoutRng, fused, init};

/// Shape of a net of the C1/C3 family. A 1-D signal is an input of height 1, which turns every
/// k × k window into a 1 × k one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShallowSpec {
    /// Input `[channels, height, width]`.
    pub input: [usize; 3],
    /// Channels of both conv layers (64).
    pub channels: usize,
    /// Conv kernel side (5).
    pub kernel: usize,
    /// Widths of the two dense layers (384, 192).
    pub dense: [usize; 2],
    /// Dropout probability after each dense layer (0.5).
    pub dropout: f64,
    /// Output classes.
    pub classes: usize,
    /// Batch norm's constants.
    pub norm: BatchNormSettings,
}

/// C1: CIFAR-10, 1,757,834 parameters.
pub fn c1() -> ShallowSpec {
    ShallowSpec {
        input: [3, 32, 32],
        channels: 64,
        kernel: 5,
        dense: [384, 192],
        dropout: 0.5,
        classes: 10,
        norm: BatchNormSettings::default(),
    }
}

/// C3: C1's architecture on CIFAR-100, 1,775,204 parameters.
pub fn c3() -> ShallowSpec {
    ShallowSpec { classes: 100, ..c1() }
}

/// Window of a k-wide operation on an input of this height: k × k, or 1 × k for a signal.
pub(crate) fn window(height: usize, k: usize) -> [usize; 2] {
    if height == 1 { [1, k] } else { [k, k] }
}

/// Max-pool with a `k` window and stride 2. With `same`, 'same' padding: the side becomes ⌈side/2⌉.
pub(crate) fn pool(height: usize, k: usize, same: bool) -> MaxPool2d {
    let w = window(height, k);
    let pad = |side: usize| if same { (side - 1) / 2 } else { 0 };
    MaxPool2dConfig::new(w)
        .with_strides(window(height, 2))
        .with_padding(PaddingConfig2d::Explicit(pad(w[0]), pad(w[1]), pad(w[0]), pad(w[1])))
        .init()
}

/// One block: conv → batch norm → ReLU → max-pool.
#[derive(Module, Debug)]
pub struct ConvBlock {
    conv: Conv2d,
    norm: BatchNorm,
    pool: MaxPool2d,
}

/// A network of the C1/C3 family.
#[derive(Module, Debug)]
pub struct Shallow {
    blocks: Vec<ConvBlock>,
    dense1: Linear,
    norm1: BatchNorm,
    dense2: Linear,
    norm2: BatchNorm,
    output: Linear,
    dropout: f64,
    input: [usize; 3],
}

impl ShallowSpec {
    /// Side lengths after the two 'same' pools: ⌈side/4⌉ (32 → 8; a 1-D 40 → 10).
    fn pooled(&self) -> [usize; 2] {
        let [_, h, w] = self.input;
        let half = |s: usize| s.div_ceil(2);
        [if h == 1 { 1 } else { half(half(h)) }, half(half(w))]
    }

    /// Builds the network with weights drawn from `rng`.
    pub fn init(&self, rng: &mut impl Rng, device: &Device) -> Shallow {
        let [c, h, _] = self.input;
        let blocks = [c, self.channels]
            .into_iter()
            .map(|c_in| ConvBlock {
                conv: init::conv(c_in, self.channels, window(h, self.kernel), rng, device),
                norm: init::batch_norm(self.channels, self.norm, device),
                pool: pool(h, 3, true),
            })
            .collect();
        let [ph, pw] = self.pooled();
        let flat = self.channels * ph * pw;
        Shallow {
            blocks,
            dense1: init::linear(flat, self.dense[0], rng, device),
            norm1: init::batch_norm(self.dense[0], self.norm, device),
            dense2: init::linear(self.dense[0], self.dense[1], rng, device),
            norm2: init::batch_norm(self.dense[1], self.norm, device),
            output: init::linear(self.dense[1], self.classes, rng, device),
            dropout: self.dropout,
            input: self.input,
        }
    }
}

impl Classifier for Shallow {
    /// # Shapes
    /// - `x`: `[batch, c·h·w]` → `[batch, classes]`
    fn forward(&self, x: Tensor<2>, mut dropout: Option<&mut DropoutRng>) -> Tensor<2> {
        let [batch, _] = x.dims();
        let [c, h, w] = self.input;
        let mut x = x.reshape([batch, c, h, w]);
        for block in &self.blocks {
            x = fused::max_pool2d(&block.pool, relu(fused::batch_norm(&block.norm, fused::conv2d(&block.conv, x)))); // [batch, 64, ⌈h/2⌉, ⌈w/2⌉]
        }
        let x = x.flatten::<2>(1, 3); // [batch, 64 · h/4 · w/4]
        let x = relu(fused::batch_norm(&self.norm1, self.dense1.forward(x))); // [batch, 384]
        let x = init::dropout(x, self.dropout, dropout.as_deref_mut());
        let x = relu(fused::batch_norm(&self.norm2, self.dense2.forward(x))); // [batch, 192]
        let x = init::dropout(x, self.dropout, dropout);
        self.output.forward(x)
    }
}
