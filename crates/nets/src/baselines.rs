//! The MNIST-1D baselines of Greydanus & Kobak (2020/2024), used to check that flatland's
//! generator makes data as hard as the reference: logistic regression, a residual MLP and a
//! strided 1-D CNN, all on 40-point signals with 10 classes.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{Linear, PaddingConfig1d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::{Classifier, DropoutRng, init};

/// Which baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BaselineSpec {
    /// One dense layer 40 → 10.
    LogReg,
    /// 40 → 100 (ReLU) → h + ReLU(dense 100 → 100) → 10.
    Mlp,
    /// conv(1→25, k5, s2, p1) → ReLU → conv(25→25, k3, s2, p1) → ReLU → conv(25→25, k3, s2, p1)
    /// → ReLU → flatten (125) → 10.
    Cnn,
}

/// A baseline network (only the layers its kind uses are present).
#[derive(Module, Debug)]
pub struct Baseline {
    convs: Vec<Conv1d>,
    hidden: Vec<Linear>,
    output: Linear,
}

fn conv1d(c_in: usize, c_out: usize, kernel: usize, rng: &mut impl Rng, device: &Device) -> Conv1d {
    let bound = 1.0 / ((c_in * kernel) as f64).sqrt();
    let mut layer = Conv1dConfig::new(c_in, c_out, kernel)
        .with_stride(2)
        .with_padding(PaddingConfig1d::Explicit(1, 1))
        .init(device);
    layer.weight = Param::from_tensor(init::uniform([c_out, c_in, kernel], bound, rng, device));
    layer.bias = Some(Param::from_tensor(init::uniform([c_out], bound, rng, device)));
    layer
}

impl BaselineSpec {
    /// Builds the network with weights drawn from `rng` (PyTorch's default init, as the reference).
    pub fn init(&self, rng: &mut impl Rng, device: &Device) -> Baseline {
        match self {
            BaselineSpec::LogReg => {
                Baseline { convs: vec![], hidden: vec![], output: init::linear(40, 10, rng, device) }
            }
            BaselineSpec::Mlp => Baseline {
                convs: vec![],
                hidden: vec![init::linear(40, 100, rng, device), init::linear(100, 100, rng, device)],
                output: init::linear(100, 10, rng, device),
            },
            BaselineSpec::Cnn => Baseline {
                convs: vec![
                    conv1d(1, 25, 5, rng, device),
                    conv1d(25, 25, 3, rng, device),
                    conv1d(25, 25, 3, rng, device),
                ],
                hidden: vec![],
                output: init::linear(125, 10, rng, device),
            },
        }
    }
}

impl Classifier for Baseline {
    /// # Shapes
    /// - `x`: `[batch, 40]` → `[batch, 10]`
    fn forward(&self, x: Tensor<2>, _dropout: Option<&mut DropoutRng>) -> Tensor<2> {
        if !self.convs.is_empty() {
            let [batch, len] = x.dims();
            let mut h = x.reshape([batch, 1, len]); // [batch, 1, 40]
            for conv in &self.convs {
                h = relu(conv.forward(h)); // [batch, 25, 19] → [batch, 25, 10] → [batch, 25, 5]
            }
            return self.output.forward(h.flatten::<2>(1, 2)); // [batch, 125] → [batch, 10]
        }
        match self.hidden.as_slice() {
            [first, residual] => {
                let h = relu(first.forward(x)); // [batch, 100]
                let h = h.clone() + relu(residual.forward(h)); // [batch, 100]
                self.output.forward(h)
            }
            _ => self.output.forward(x),
        }
    }
}
