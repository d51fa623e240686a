//! The MNIST-1D baselines of Greydanus & Kobak (2020/2024), used to check that flatland's
//! generator makes data as hard as the reference: logistic regression, a residual MLP and a
//! strided 1-D CNN, on 40-point signals with 10 classes (other lengths and classes for other data).

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
pub enum BaselineKind {
    /// One dense layer n → classes.
    LogReg,
    /// n → 100 (ReLU) → h + ReLU(dense 100 → 100) → classes.
    Mlp,
    /// conv(1→25, k5, s2, p1) → ReLU → conv(25→25, k3, s2, p1) → ReLU → conv(25→25, k3, s2, p1)
    /// → ReLU → flatten → classes, over the sample as one 1-D signal.
    Cnn,
}

/// A baseline with its input length and classes (40 and 10 on MNIST-1D, the `LOG_REG`, `MLP`
/// and `CNN` constants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineSpec {
    /// Which baseline.
    pub kind: BaselineKind,
    /// Input features (the signal's length).
    pub input: usize,
    /// Output classes.
    pub classes: usize,
}

impl BaselineSpec {
    /// Logistic regression on MNIST-1D: 40 → 10.
    pub const LOG_REG: BaselineSpec = BaselineSpec { kind: BaselineKind::LogReg, input: 40, classes: 10 };
    /// The residual MLP on MNIST-1D.
    pub const MLP: BaselineSpec = BaselineSpec { kind: BaselineKind::Mlp, input: 40, classes: 10 };
    /// The strided CNN on MNIST-1D (flatten 125).
    pub const CNN: BaselineSpec = BaselineSpec { kind: BaselineKind::Cnn, input: 40, classes: 10 };

    /// Length of the CNN's output signal: three strided convolutions (k 5, 3, 3; stride 2;
    /// padding 1) take 40 points to 19, 10, 5.
    pub fn cnn_length(&self) -> usize {
        [5, 3, 3].iter().fold(self.input, |len, k| (len + 2).saturating_sub(*k) / 2 + 1)
    }
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
        let (n, classes) = (self.input, self.classes);
        match self.kind {
            BaselineKind::LogReg => {
                Baseline { convs: vec![], hidden: vec![], output: init::linear(n, classes, rng, device) }
            }
            BaselineKind::Mlp => Baseline {
                convs: vec![],
                hidden: vec![init::linear(n, 100, rng, device), init::linear(100, 100, rng, device)],
                output: init::linear(100, classes, rng, device),
            },
            BaselineKind::Cnn => Baseline {
                convs: vec![
                    conv1d(1, 25, 5, rng, device),
                    conv1d(25, 25, 3, rng, device),
                    conv1d(25, 25, 3, rng, device),
                ],
                hidden: vec![],
                output: init::linear(25 * self.cnn_length(), classes, rng, device),
            },
        }
    }
}

impl Classifier for Baseline {
    /// # Shapes
    /// - `x`: `[batch, n]` → `[batch, classes]` (MNIST-1D: n = 40, classes = 10)
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
