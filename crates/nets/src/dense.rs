//! A plain fully connected ReLU network, without batch norm: `input → [dense, ReLU] per hidden
//! width → classes`. With one hidden layer it is the network of Choromanska et al. 2015's
//! experiments (the spin-glass study); no batch norm, so its loss is a function of the weights
//! alone, as in their model.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::{Classifier, DropoutRng, init};

/// Shape of a plain ReLU network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenseSpec {
    /// Input features.
    pub input: usize,
    /// Units of each hidden layer, input end first.
    pub hidden: Vec<usize>,
    /// Output classes.
    pub classes: usize,
}

/// A plain ReLU network.
#[derive(Module, Debug)]
pub struct Dense {
    hidden: Vec<Linear>,
    output: Linear,
}

impl DenseSpec {
    /// Builds the network with weights drawn from `rng` (PyTorch's default init).
    pub fn init(&self, rng: &mut impl Rng, device: &Device) -> Dense {
        let mut fan_in = self.input;
        let mut hidden = Vec::with_capacity(self.hidden.len());
        for &width in &self.hidden {
            hidden.push(init::linear(fan_in, width, rng, device));
            fan_in = width;
        }
        Dense { hidden, output: init::linear(fan_in, self.classes, rng, device) }
    }
}

impl Classifier for Dense {
    /// # Shapes
    /// - `x`: `[batch, input]` → `[batch, classes]`
    fn forward(&self, x: Tensor<2>, _dropout: Option<&mut DropoutRng>) -> Tensor<2> {
        let mut x = x;
        for layer in &self.hidden {
            x = relu(layer.forward(x)); // [batch, width]
        }
        self.output.forward(x)
    }
}
