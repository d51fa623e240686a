//! F1 and F2 of Keskar et al.: `input → depth × [dense width, batch norm, ReLU] → classes`.

use burn::module::Module;
use burn::nn::{BatchNorm, Linear};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::init::BatchNormSettings;
use crate::{Classifier, DropoutRng, fused, init};

/// Shape of a fully connected net of the F1/F2 family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpSpec {
    /// Input features.
    pub input: usize,
    /// Units per hidden layer.
    pub width: usize,
    /// Hidden layers.
    pub depth: usize,
    /// Output classes.
    pub classes: usize,
    /// Batch norm's constants.
    pub norm: BatchNormSettings,
}

/// F1: MNIST, 784 → 5 × [512, BN, ReLU] → 10 (Keskar App. B.1), 1,462,794 parameters.
pub fn f1() -> MlpSpec {
    MlpSpec { input: 784, width: 512, depth: 5, classes: 10, norm: BatchNormSettings::default() }
}

/// F2: TIMIT frames, commonly given as 360 → 7 × [512, BN, ReLU] → 1973. The appendix that fixes
/// these was not available to us, so every number is a field of [`MlpSpec`].
pub fn f2() -> MlpSpec {
    MlpSpec { input: 360, width: 512, depth: 7, classes: 1973, norm: BatchNormSettings::default() }
}

/// One hidden layer: dense → batch norm (→ ReLU in the forward pass).
#[derive(Module, Debug)]
pub struct DenseBn {
    linear: Linear,
    norm: BatchNorm,
}

/// A network of the F1/F2 family.
#[derive(Module, Debug)]
pub struct Mlp {
    hidden: Vec<DenseBn>,
    output: Linear,
}

impl MlpSpec {
    /// Builds the network with weights drawn from `rng`.
    pub fn init(&self, rng: &mut impl Rng, device: &Device) -> Mlp {
        let hidden = (0..self.depth)
            .map(|i| DenseBn {
                linear: init::linear(if i == 0 { self.input } else { self.width }, self.width, rng, device),
                norm: init::batch_norm(self.width, self.norm, device),
            })
            .collect();
        let last = if self.depth == 0 { self.input } else { self.width };
        Mlp { hidden, output: init::linear(last, self.classes, rng, device) }
    }
}

impl Classifier for Mlp {
    /// # Shapes
    /// - `x`: `[batch, input]` → `[batch, classes]`
    fn forward(&self, x: Tensor<2>, _dropout: Option<&mut DropoutRng>) -> Tensor<2> {
        let mut x = x;
        for layer in &self.hidden {
            x = relu(fused::batch_norm(&layer.norm, layer.linear.forward(x))); // [batch, width]
        }
        self.output.forward(x)
    }
}
