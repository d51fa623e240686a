//! C2 and C4 of Keskar et al.: VGG-16 with batch norm and dropout, as in the official code
//! (`network_zoo.deepnet`, the well-known "VGG + BN + dropout for CIFAR" recipe): stacks of 3×3
//! 'same' convs (2×64, 2×128, 3×256, 3×512, 3×512), each conv → BN → ReLU → dropout (0.3 in the
//! first stack, 0.4 after, none after a stack's last conv), a 2×2 max-pool after each stack, then
//! dropout ½ → dense 512 → BN → ReLU → dropout ½ → classes.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, Linear};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::init::BatchNormSettings;
use crate::shallow::{pool, window};
use crate::{Classifier, DropoutRng, fused, init};

/// Shape of a net of the C2/C4 family. A 1-D signal is an input of height 1 (1 × 3 kernels,
/// 1 × 2 pools).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VggSpec {
    /// Input `[channels, height, width]`.
    pub input: [usize; 3],
    /// Each stack as (channels, convs): VGG-16 is (64, 2), (128, 2), (256, 3), (512, 3), (512, 3).
    pub stacks: Vec<(usize, usize)>,
    /// Width of the dense layer (512).
    pub dense: usize,
    /// Output classes.
    pub classes: usize,
    /// Batch norm's constants.
    pub norm: BatchNormSettings,
    /// Dropout rates.
    pub dropout: VggDropout,
}

/// Dropout rates of the VGG recipe of Keskar's code.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VggDropout {
    /// After each conv of the first stack but its last (0.3).
    pub first_stack: f64,
    /// After each conv of the later stacks but their last (0.4).
    pub later_stacks: f64,
    /// Before and after the dense layer (0.5).
    pub dense: f64,
}

impl Default for VggDropout {
    fn default() -> Self {
        VggDropout { first_stack: 0.3, later_stacks: 0.4, dense: 0.5 }
    }
}

/// C2: CIFAR-10, 14,991,946 parameters.
pub fn c2() -> VggSpec {
    VggSpec {
        input: [3, 32, 32],
        stacks: vec![(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)],
        dense: 512,
        classes: 10,
        norm: BatchNormSettings::default(),
        dropout: VggDropout::default(),
    }
}

/// C4: C2's architecture on CIFAR-100, 15,038,116 parameters.
pub fn c4() -> VggSpec {
    VggSpec { classes: 100, ..c2() }
}

/// conv → BN → ReLU → dropout `p` (0 for a stack's last conv).
#[derive(Module, Debug)]
pub struct VggConv {
    conv: Conv2d,
    norm: BatchNorm,
    dropout: f64,
}

/// A stack of convs closed by a 2×2 max-pool.
#[derive(Module, Debug)]
pub struct VggStack {
    convs: Vec<VggConv>,
    pool: MaxPool2d,
}

/// A network of the C2/C4 family.
#[derive(Module, Debug)]
pub struct Vgg {
    stacks: Vec<VggStack>,
    dense: Linear,
    norm: BatchNorm,
    output: Linear,
    input: [usize; 3],
    dense_dropout: f64,
}

impl VggSpec {
    /// Builds the network with weights drawn from `rng`.
    pub fn init(&self, rng: &mut impl Rng, device: &Device) -> Vgg {
        let [mut c_in, mut h, mut w] = self.input;
        let height = h;
        let mut stacks = Vec::new();
        for (s, &(channels, convs)) in self.stacks.iter().enumerate() {
            let p = if s == 0 { self.dropout.first_stack } else { self.dropout.later_stacks };
            let convs = (0..convs)
                .map(|i| {
                    let conv = VggConv {
                        conv: init::conv(c_in, channels, window(height, 3), rng, device),
                        norm: init::batch_norm(channels, self.norm, device),
                        dropout: if i + 1 == convs { 0.0 } else { p },
                    };
                    c_in = channels;
                    conv
                })
                .collect();
            stacks.push(VggStack { convs, pool: pool(height, 2, false) });
            if height != 1 {
                h /= 2;
            }
            w /= 2;
        }
        let flat = c_in * h * w;
        Vgg {
            stacks,
            dense: init::linear(flat, self.dense, rng, device),
            norm: init::batch_norm(self.dense, self.norm, device),
            dense_dropout: self.dropout.dense,
            output: init::linear(self.dense, self.classes, rng, device),
            input: self.input,
        }
    }
}

impl Classifier for Vgg {
    /// # Shapes
    /// - `x`: `[batch, c·h·w]` → `[batch, classes]`
    fn forward(&self, x: Tensor<2>, mut dropout: Option<&mut DropoutRng>) -> Tensor<2> {
        let [batch, _] = x.dims();
        let [c, h, w] = self.input;
        let mut x = x.reshape([batch, c, h, w]);
        for stack in &self.stacks {
            for layer in &stack.convs {
                x = relu(fused::batch_norm(&layer.norm, fused::conv2d(&layer.conv, x))); // [batch, channels, h, w]
                x = init::dropout(x, layer.dropout, dropout.as_deref_mut());
            }
            x = fused::max_pool2d(&stack.pool, x); // [batch, channels, h/2, w/2]
        }
        let x = x.flatten::<2>(1, 3); // [batch, 512 · h/32 · w/32]
        let x = init::dropout(x, self.dense_dropout, dropout.as_deref_mut());
        let x = relu(fused::batch_norm(&self.norm, self.dense.forward(x))); // [batch, 512]
        let x = init::dropout(x, self.dense_dropout, dropout);
        self.output.forward(x)
    }
}
