//! The networks of Keskar et al. (ICLR 2017) in Burn, with the training loop and evaluation
//! that every flatland study shares.
//!
//! - [`mlp`]: F1 and F2 (dense → batch norm → ReLU stacks) and their scaled variants.
//! - [`shallow`]: C1/C3, the AlexNet-like two-block convolutional net.
//! - [`vgg`]: C2/C4, VGG-16 with batch norm and dropout.
//! - [`train`]: Adam training with per-epoch train/test metrics, and evaluation in inference mode.
//! - [`baselines`]: the MNIST-1D paper's logistic regression, MLP and CNN.
//! - [`dense`]: plain ReLU networks without batch norm (Choromanska et al.'s one hidden layer).
//! - [`backend`]: which Burn backend runs the tensors.
//! - [`fused`]: batch norm, convolution, max pooling and Adam as fused kernels on `flex`.
//! - [`objective`]: a network's training loss as a plain objective for the `measure` crate.
//!
//! Parameters are initialized from our own seeded generator ([`init`]), not the backend's
//! global one, so that runs in parallel threads are reproducible and every backend starts from
//! the same weights. 1-D variants of the convolutional nets take a signal as a height-1 image:
//! the same code with 1 × k kernels and 1 × k pools.
#![warn(missing_docs)]

pub mod backend;
pub mod baselines;
pub mod dense;
pub mod fused;
pub mod init;
pub mod mlp;
pub mod objective;
pub mod shallow;
pub mod train;
pub mod vgg;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

pub use backend::Backend;
pub use init::DropoutRng;

/// A network mapping flat feature rows to class logits.
pub trait Classifier: Module + 'static {
    /// Logits `[batch, classes]` of flat inputs `[batch, features]`. Dropout masks are drawn from
    /// `dropout` while training; `None` (or a module in [`valid`](Module::valid) mode on a plain
    /// device) is inference.
    fn forward(&self, x: Tensor<2>, dropout: Option<&mut DropoutRng>) -> Tensor<2>;
}

/// Number of trainable scalars: weights, biases, batch-norm scale and shift. Burn's
/// `num_params` also counts batch norm's running statistics, which are state, not parameters;
/// this counts only tensors that take gradients, so `model` must live on an autodiff device.
pub fn parameter_count<M: Module>(model: &M) -> usize {
    struct Trainable(usize);
    impl ModuleVisitor for Trainable {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = param.val();
            if value.is_require_grad() {
                self.0 += value.shape().num_elements();
            }
        }
    }
    let mut count = Trainable(0);
    model.visit(&mut count);
    count.0
}
pub use burn::tensor::Device;
