//! Fused kernels for the `flex` backend, where Burn 0.22's own operations were the limit of a
//! training step or of the training loss's gradient (README: Performance): batch norm in training
//! mode and in inference mode with gradients (here), 2-D convolution ([`conv2d`]), max pooling
//! ([`max_pool2d`]) and the Adam update ([`adam`]).
//!
//! Each takes Burn's path unchanged on any other backend (or device kind), and keeps Burn's
//! semantics on flex; the tests compare outputs and gradients with Burn's own operations.
//!
//! Batch norm: Burn runs a training-mode batch norm as a chain of tensor operations: it swaps
//! the batch and channel axes and copies the activation into channel-major order twice in the
//! forward pass and twice in the backward pass, and every subtraction, product and scale is a
//! pass of its own. On F1 at batch 6000 those transposing copies alone took a fifth of a
//! training step. Here the statistics are two passes over the activation and the output one
//! more; the backward pass is one reduction and one output pass. In inference mode on the
//! autodiff device (the objective that sharpness and curvature differentiate) Burn's chain is
//! five passes forward; here it is one, y = x·scale + shift. The semantics are
//! [`burn::nn::BatchNorm`]'s: biased batch variance, running statistics updated with the
//! layer's momentum, inference on the running statistics.

mod adam;
mod conv;
mod pool;

pub use adam::{Adam, adam};
pub use conv::conv2d;
pub use pool::max_pool2d;

use burn::nn::BatchNorm;
use burn::tensor::Tensor;

/// `norm.forward(x)`, with the training-mode statistics, normalization and their backward pass,
/// or the inference-mode normalization and its backward pass, fused into single kernels where
/// the tensor lives on `flex` with autodiff as f32.
///
/// # Shapes
/// - `x`: `[batch, channels, ...]` → same shape
pub fn batch_norm<const D: usize>(norm: &BatchNorm, x: Tensor<D>) -> Tensor<D> {
    if !x.device().is_autodiff() {
        return norm.forward(x);
    }
    if !norm.training.is_enabled() {
        // Inference on the running statistics, with gradients (the training loss that
        // sharpness and curvature differentiate).
        #[cfg(feature = "flex")]
        if let Some(output) = flex_inference::batch_norm_inference(
            &x,
            &norm.gamma.val(),
            &norm.beta.val(),
            &norm.running_mean.value(),
            &norm.running_var.value(),
            norm.epsilon,
        ) {
            return output;
        }
        return norm.forward(x);
    }
    #[cfg(feature = "flex")]
    if let Some((output, mean, variance)) =
        flex::batch_norm_train(&x, &norm.gamma.val(), &norm.beta.val(), norm.epsilon)
    {
        // Running statistics exactly as burn::nn::BatchNorm::forward_train updates them.
        let device = x.device();
        let momentum = norm.momentum;
        let running_mean = norm.running_mean.value_sync().to_device(&device);
        let running_var = norm.running_var.value_sync().to_device(&device);
        let running_mean = running_mean.mul_scalar(1.0 - momentum).add(mean.mul_scalar(momentum));
        let running_var = running_var.mul_scalar(1.0 - momentum).add(variance.mul_scalar(momentum));
        norm.running_mean.update(running_mean.detach());
        norm.running_var.update(running_var.detach());
        return output;
    }
    norm.forward(x)
}

#[cfg(feature = "flex")]
mod flex {
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::flex::FlexTensor;
    use burn::backend::{Autodiff, BackendTypes, Flex};
    use burn::tensor::{DType, Shape, Tensor, TensorData};
    use rayon::prelude::*;

    /// Burn's autodiff over flex, as `Device::flex().autodiff()` builds it.
    pub(super) type Ad = Autodiff<Flex, NoCheckpointing>;

    /// A float tensor of [`Ad`]: a flex tensor with its autodiff node.
    pub(super) type AdTensor = <Ad as BackendTypes>::FloatTensorPrimitive;

    /// `t` on autodiff over flex as f32, or `None` on any other backend, device kind or dtype.
    pub(super) fn on_ad<const D: usize>(t: &Tensor<D>) -> Option<AdTensor> {
        t.clone().try_into_primitive::<Ad>().ok().filter(|t| t.primitive().dtype() == DType::F32)
    }

    /// `t` on plain flex as contiguous f32, or `None` on any other backend, device kind or dtype.
    pub(super) fn on_flex<const D: usize>(t: &Tensor<D>) -> Option<FlexTensor> {
        let t = t.clone().try_into_primitive::<Flex>().ok().filter(|t| t.dtype() == DType::F32)?;
        Some(contiguous(&t))
    }

    /// `output` as the result of one autodiff operation `op` on `inputs`; its backward step gets
    /// `state`, built only when an input takes a gradient.
    pub(super) fn record<O: Backward<Flex, N>, const N: usize>(
        op: O,
        inputs: [&AdTensor; N],
        state: impl FnOnce() -> O::State,
        output: FlexTensor,
    ) -> AdTensor {
        match op.prepare::<NoCheckpointing>(inputs.map(|t| t.node())).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(state(), output),
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }

    /// Rows of the `[outer, channels, inner]` view handed to one parallel task: enough work to
    /// amortize the task, few enough tasks to keep the per-task channel sums small.
    const ROWS_PER_TASK: usize = 64;

    /// An activation seen as `[outer, channels, inner]`: batch, channels, spatial positions.
    #[derive(Debug, Clone, Copy)]
    pub(super) struct View {
        outer: usize,
        pub(super) channels: usize,
        inner: usize,
    }

    impl View {
        pub(super) fn of(shape: &Shape) -> View {
            let dims = shape.as_slice();
            View { outer: dims[0], channels: dims[1], inner: dims[2..].iter().product() }
        }

        /// Samples per channel (the `m` of the batch statistics).
        fn per_channel(&self) -> usize {
            self.outer * self.inner
        }

        /// Rows of one task, in units of `channels * inner` elements.
        fn rows(&self) -> usize {
            ROWS_PER_TASK.div_ceil(self.inner).max(1)
        }
    }

    /// Partial sums kept per channel span: one AVX register of f32.
    const LANES: usize = 8;

    /// Per-channel sums of `f(elements of a and b)` over batch and positions, accumulated in
    /// f32 within a task and in f64 across tasks.
    // One index walks several arrays (a, b, the K sums) in step; iterators would hide that.
    #[allow(clippy::needless_range_loop)]
    pub(super) fn channel_sums<const K: usize>(
        v: View,
        a: &[f32],
        b: &[f32],
        f: impl Fn(usize, f32, f32) -> [f32; K] + Sync,
    ) -> [Vec<f64>; K] {
        let block = v.channels * v.inner;
        let partial = a
            .par_chunks(block * v.rows())
            .zip(b.par_chunks(block * v.rows()))
            .map(|(a, b)| {
                let mut sums = [(); K].map(|_| vec![0f32; v.channels]);
                for (a, b) in a.chunks_exact(block).zip(b.chunks_exact(block)) {
                    if v.inner == 1 {
                        for c in 0..v.channels {
                            let r = f(c, a[c], b[c]);
                            for k in 0..K {
                                sums[k][c] += r[k];
                            }
                        }
                    } else {
                        for c in 0..v.channels {
                            let span = c * v.inner..(c + 1) * v.inner;
                            // LANES partial sums, so the loop vectorizes (one running f32 sum
                            // is a serial chain of adds).
                            let mut acc = [[0f32; LANES]; K];
                            let (xs, ys) = (a[span.clone()].chunks_exact(LANES), b[span].chunks_exact(LANES));
                            let tail = xs.remainder().iter().zip(ys.remainder());
                            for (x, y) in xs.zip(ys) {
                                for l in 0..LANES {
                                    let r = f(c, x[l], y[l]);
                                    for k in 0..K {
                                        acc[k][l] += r[k];
                                    }
                                }
                            }
                            for (l, (&x, &y)) in tail.enumerate() {
                                let r = f(c, x, y);
                                for k in 0..K {
                                    acc[k][l] += r[k];
                                }
                            }
                            for k in 0..K {
                                sums[k][c] += acc[k].iter().sum::<f32>();
                            }
                        }
                    }
                }
                sums
            })
            .collect::<Vec<_>>();
        let mut total = [(); K].map(|_| vec![0f64; v.channels]);
        for sums in partial {
            for k in 0..K {
                for (t, s) in total[k].iter_mut().zip(&sums[k]) {
                    *t += *s as f64;
                }
            }
        }
        total
    }

    /// `out[i] = a[i]·p[c] + b[i]·q[c] + r[c]` for the channel `c` of each element.
    pub(super) fn channel_affine(v: View, a: &[f32], b: &[f32], p: &[f32], q: &[f32], r: &[f32]) -> Vec<f32> {
        let block = v.channels * v.inner;
        let mut out = vec![0f32; a.len()];
        out.par_chunks_mut(block * v.rows())
            .zip(a.par_chunks(block * v.rows()).zip(b.par_chunks(block * v.rows())))
            .for_each(|(out, (a, b))| {
                for ((out, a), b) in out.chunks_exact_mut(block).zip(a.chunks_exact(block)).zip(b.chunks_exact(block)) {
                    if v.inner == 1 {
                        for c in 0..v.channels {
                            out[c] = a[c] * p[c] + b[c] * q[c] + r[c];
                        }
                    } else {
                        for c in 0..v.channels {
                            let span = c * v.inner..(c + 1) * v.inner;
                            for ((o, &x), &y) in out[span.clone()].iter_mut().zip(&a[span.clone()]).zip(&b[span]) {
                                *o = x * p[c] + y * q[c] + r[c];
                            }
                        }
                    }
                }
            });
        out
    }

    pub(super) fn contiguous(t: &FlexTensor) -> FlexTensor {
        if t.is_contiguous() && t.layout().start_offset() == 0 { t.clone() } else { t.to_contiguous() }
    }

    pub(super) fn tensor(values: Vec<f32>, shape: Shape) -> FlexTensor {
        FlexTensor::from_data(TensorData::new(values, shape))
    }

    pub(super) fn floats(t: &FlexTensor) -> &[f32] {
        t.as_slice::<f32>().expect("a contiguous f32 tensor")
    }

    fn as_f32(v: &[f64]) -> Vec<f32> {
        v.iter().map(|&x| x as f32).collect()
    }

    /// Forward kernel: the output, the batch mean and the biased batch variance (Ioffe & Szegedy
    /// 2015, Alg. 1: μ_B, σ²_B, y = γ·x̂ + β).
    fn forward(x: &FlexTensor, gamma: &[f32], beta: &[f32], epsilon: f64) -> (FlexTensor, Vec<f32>, Vec<f32>) {
        let v = View::of(&x.layout().shape().clone());
        let xs = floats(x);
        let m = v.per_channel() as f64;
        let [sum] = channel_sums(v, xs, xs, |_, x, _| [x]);
        let mean: Vec<f32> = sum.iter().map(|s| (s / m) as f32).collect();
        let [squares] = channel_sums(v, xs, xs, |c, x, _| {
            let d = x - mean[c];
            [d * d]
        });
        let variance: Vec<f32> = squares.iter().map(|s| (s / m) as f32).collect();
        // y = x·scale + shift with scale = γ/√(σ²+ε), shift = β − μ·scale.
        let scale: Vec<f32> =
            (0..v.channels).map(|c| gamma[c] / ((variance[c] as f64 + epsilon).sqrt() as f32)).collect();
        let shift: Vec<f32> = (0..v.channels).map(|c| beta[c] - mean[c] * scale[c]).collect();
        let zeros = vec![0f32; v.channels];
        let out = channel_affine(v, xs, xs, &scale, &zeros, &shift);
        (tensor(out, x.layout().shape().clone()), mean, variance)
    }

    /// Backward kernel: ∂L/∂x, ∂L/∂γ, ∂L/∂β from the output gradient (Ioffe & Szegedy 2015, §3).
    fn backward(
        x: &FlexTensor,
        gamma: &[f32],
        mean: &[f32],
        variance: &[f32],
        epsilon: f64,
        grad: &FlexTensor,
    ) -> [FlexTensor; 3] {
        let v = View::of(&x.layout().shape().clone());
        let (xs, dy) = (floats(x), floats(grad));
        let m = v.per_channel() as f64;
        let [sum_dy, sum_dy_centered] = channel_sums(v, dy, xs, |c, dy, x| [dy, dy * (x - mean[c])]);
        let inv_std: Vec<f64> = variance.iter().map(|&s| 1.0 / (s as f64 + epsilon).sqrt()).collect();
        let beta_grad = as_f32(&sum_dy);
        let gamma_grad: Vec<f32> = (0..v.channels).map(|c| (sum_dy_centered[c] * inv_std[c]) as f32).collect();
        // ∂L/∂x = γ/σ · (dy − Σdy/m − x̂·Σ(dy·x̂)/m) = a·dy + b·x + k per channel.
        let mut a = vec![0f32; v.channels];
        let mut b = vec![0f32; v.channels];
        let mut k = vec![0f32; v.channels];
        for c in 0..v.channels {
            let ac = gamma[c] as f64 * inv_std[c];
            let bc = -ac * inv_std[c] * inv_std[c] * sum_dy_centered[c] / m;
            a[c] = ac as f32;
            b[c] = bc as f32;
            k[c] = (-ac * sum_dy[c] / m - bc * mean[c] as f64) as f32;
        }
        let x_grad = channel_affine(v, dy, xs, &a, &b, &k);
        let per_channel = Shape::new([v.channels]);
        [
            tensor(x_grad, x.layout().shape().clone()),
            tensor(gamma_grad, per_channel.clone()),
            tensor(beta_grad, per_channel),
        ]
    }

    #[derive(Debug)]
    struct BatchNormTrain;

    impl Backward<Flex, 3> for BatchNormTrain {
        /// The input, γ, the batch mean and variance, ε.
        type State = (FlexTensor, Vec<f32>, Vec<f32>, Vec<f32>, f64);

        fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
            let [node_x, node_gamma, node_beta] = ops.parents;
            let grad = contiguous(&grads.consume::<Flex>(&ops.node));
            let (x, gamma, mean, variance, epsilon) = ops.state;
            let [x_grad, gamma_grad, beta_grad] = backward(&x, &gamma, &mean, &variance, epsilon, &grad);
            if let Some(node) = node_x {
                grads.register::<Flex>(node.id, x_grad);
            }
            if let Some(node) = node_gamma {
                grads.register::<Flex>(node.id, gamma_grad);
            }
            if let Some(node) = node_beta {
                grads.register::<Flex>(node.id, beta_grad);
            }
        }
    }

    /// The fused training-mode batch norm: output, batch mean and biased batch variance (both
    /// detached), or `None` when `x` does not live on `flex` with autodiff (without gradient
    /// checkpointing) or is not f32.
    pub(super) fn batch_norm_train<const D: usize>(
        x: &Tensor<D>,
        gamma: &Tensor<1>,
        beta: &Tensor<1>,
        epsilon: f64,
    ) -> Option<(Tensor<D>, Tensor<1>, Tensor<1>)> {
        let (x, gamma, beta) = (on_ad(x)?, on_ad(gamma)?, on_ad(beta)?);
        if D < 2 {
            return None;
        }
        let xs = contiguous(x.primitive());
        let gamma_values = floats(&contiguous(gamma.primitive())).to_vec();
        let beta_values = floats(&contiguous(beta.primitive())).to_vec();
        let gamma_values_len = gamma_values.len();
        let (output, mean, variance) = forward(&xs, &gamma_values, &beta_values, epsilon);
        let state = || (xs, gamma_values, mean.clone(), variance.clone(), epsilon);
        let output = record(BatchNormTrain, [&x, &gamma, &beta], state, output);
        let output = Tensor::<D>::from_primitive::<Ad>(output);
        let device = output.device();
        let stat = |v: Vec<f32>| Tensor::<1>::from_data(TensorData::new(v, [gamma_values_len]), &device);
        Some((output, stat(mean), stat(variance)))
    }
}

#[cfg(feature = "flex")]
mod flex_inference {
    use burn::backend::Flex;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops};
    use burn::backend::flex::FlexTensor;
    use burn::tensor::{Shape, Tensor};

    use super::flex::{Ad, View, channel_affine, channel_sums, contiguous, floats, on_ad, record, tensor};

    /// Per channel: scale = γ/√(σ²+ε), shift = β − μ·scale, and 1/√(σ²+ε), from the running
    /// mean μ and variance σ².
    fn affine(
        gamma: &[f32],
        beta: &[f32],
        mean: &[f32],
        variance: &[f32],
        epsilon: f64,
    ) -> (Vec<f32>, Vec<f32>, Vec<f64>) {
        let inv_std: Vec<f64> = variance.iter().map(|&s| 1.0 / (s as f64 + epsilon).sqrt()).collect();
        let scale: Vec<f32> = gamma.iter().zip(&inv_std).map(|(&g, &i)| (g as f64 * i) as f32).collect();
        let shift: Vec<f32> = (0..gamma.len()).map(|c| beta[c] - mean[c] * scale[c]).collect();
        (scale, shift, inv_std)
    }

    #[derive(Debug)]
    struct BatchNormInference;

    impl Backward<Flex, 3> for BatchNormInference {
        /// The input, the running mean, 1/√(σ²+ε) and the scale per channel.
        type State = (FlexTensor, Vec<f32>, Vec<f64>, Vec<f32>);

        fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
            let [node_x, node_gamma, node_beta] = ops.parents;
            let dy = contiguous(&grads.consume::<Flex>(&ops.node));
            let (x, mean, inv_std, scale) = ops.state;
            let v = View::of(&x.layout().shape().clone());
            let (xs, dys) = (floats(&x), floats(&dy));
            let per_channel = Shape::new([v.channels]);
            // ∂L/∂β = Σ dy, ∂L/∂γ = Σ dy·x̂ with x̂ = (x − μ)/√(σ²+ε), ∂L/∂x = dy·scale.
            if node_gamma.is_some() || node_beta.is_some() {
                let [sum_dy, sum_dy_centered] = channel_sums(v, dys, xs, |c, dy, x| [dy, dy * (x - mean[c])]);
                if let Some(node) = node_gamma {
                    let g = (0..v.channels).map(|c| (sum_dy_centered[c] * inv_std[c]) as f32).collect();
                    grads.register::<Flex>(node.id, tensor(g, per_channel.clone()));
                }
                if let Some(node) = node_beta {
                    grads.register::<Flex>(node.id, tensor(sum_dy.iter().map(|&s| s as f32).collect(), per_channel));
                }
            }
            if let Some(node) = node_x {
                let zeros = vec![0f32; v.channels];
                let x_grad = channel_affine(v, dys, dys, &scale, &zeros, &zeros);
                grads.register::<Flex>(node.id, tensor(x_grad, x.layout().shape().clone()));
            }
        }
    }

    /// The fused inference-mode batch norm with gradients: y = x·scale + shift in one pass, and
    /// a backward pass of one reduction and one output pass; `None` when `x`, γ or β do not live
    /// on `flex` with autodiff as f32, or `x` has no channel axis.
    pub(super) fn batch_norm_inference<const D: usize>(
        x: &Tensor<D>,
        gamma: &Tensor<1>,
        beta: &Tensor<1>,
        mean: &Tensor<1>,
        variance: &Tensor<1>,
        epsilon: f64,
    ) -> Option<Tensor<D>> {
        let (x, gamma, beta) = (on_ad(x)?, on_ad(gamma)?, on_ad(beta)?);
        if D < 2 {
            return None;
        }
        let values = |t: &Tensor<1>| t.clone().into_data().convert::<f32>().try_into_vec::<f32>().ok();
        let (mean, variance) = (values(mean)?, values(variance)?);
        let xs = contiguous(x.primitive());
        let gamma_values = floats(&contiguous(gamma.primitive())).to_vec();
        let beta_values = floats(&contiguous(beta.primitive())).to_vec();
        let (scale, shift, inv_std) = affine(&gamma_values, &beta_values, &mean, &variance, epsilon);
        let v = View::of(&xs.layout().shape().clone());
        let zeros = vec![0f32; v.channels];
        let output =
            tensor(channel_affine(v, floats(&xs), floats(&xs), &scale, &zeros, &shift), xs.layout().shape().clone());
        let state = || (xs, mean, inv_std, scale);
        Some(Tensor::<D>::from_primitive::<Ad>(record(BatchNormInference, [&x, &gamma, &beta], state, output)))
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::module::Param;
    use burn::tensor::{Device, Distribution, Tensor, TensorData};

    use super::*;

    /// `a` within `tolerance` × max |b| of `b`, element by element.
    fn close(a: TensorData, b: TensorData, tolerance: f32, what: &str) {
        let (a, b) = (a.try_to_vec::<f32>().unwrap(), b.try_to_vec::<f32>().unwrap());
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        for (i, (p, q)) in a.iter().zip(&b).enumerate() {
            assert!((p - q).abs() <= tolerance * scale, "{what}[{i}]: fused {p}, Burn {q}");
        }
    }

    /// The gradients of Σ weights ⊙ output with respect to x, γ and β: ours (output `outputs[0]`
    /// of layer `norms[0]`) against Burn's (`outputs[1]` of `norms[1]`).
    fn gradients_agree<const D: usize>(
        outputs: [&Tensor<D>; 2],
        x: &Tensor<D>,
        weights: Tensor<D>,
        norms: [&BatchNorm; 2],
        tolerance: f32,
    ) {
        let grads_ours = (outputs[0].clone() * weights.clone()).sum().backward();
        let grads_theirs = (outputs[1].clone() * weights).sum().backward();
        close(x.grad(&grads_ours).unwrap().to_data(), x.grad(&grads_theirs).unwrap().to_data(), tolerance, "∂/∂x");
        let same = |a: &Tensor<1>, b: &Tensor<1>, what| {
            close(a.grad(&grads_ours).unwrap().to_data(), b.grad(&grads_theirs).unwrap().to_data(), tolerance, what)
        };
        same(&norms[0].gamma.val(), &norms[1].gamma.val(), "∂/∂γ");
        same(&norms[0].beta.val(), &norms[1].beta.val(), "∂/∂β");
    }

    /// The fused kernels against Burn's own batch norm: output, running statistics and the
    /// gradients of a random linear functional of the output, for a dense and a convolutional
    /// activation.
    fn agrees_with_burn<const D: usize>(shape: [usize; D]) {
        let device = Device::flex().autodiff();
        let channels = shape[1];
        let gamma = Tensor::<1>::random([channels], Distribution::Uniform(0.5, 1.5), &device);
        let beta = Tensor::<1>::random([channels], Distribution::Uniform(-0.5, 0.5), &device);
        // Two layers with the same parameters and running statistics of their own.
        let layer = || BatchNorm {
            gamma: Param::from_tensor(gamma.clone()),
            beta: Param::from_tensor(beta.clone()),
            ..crate::init::batch_norm(channels, Default::default(), &device)
        };
        let (norm, reference) = (layer(), layer());
        let x = Tensor::<D>::random(shape, Distribution::Normal(0.7, 2.0), &device).require_grad();
        let weights = Tensor::<D>::random(shape, Distribution::Normal(0.0, 1.0), &device);

        assert!(flex::batch_norm_train(&x, &gamma, &beta, norm.epsilon).is_some(), "the fused kernel runs on flex");
        let ours = batch_norm(&norm, x.clone());
        let theirs = reference.forward(x.clone());
        close(ours.to_data(), theirs.to_data(), 1e-4, "output");
        close(norm.running_mean.value().to_data(), reference.running_mean.value().to_data(), 1e-4, "running mean");
        close(norm.running_var.value().to_data(), reference.running_var.value().to_data(), 1e-4, "running variance");
        gradients_agree([&ours, &theirs], &x, weights, [&norm, &reference], 1e-4);
    }

    /// The fused inference-mode kernel against Burn's inference on the same running statistics:
    /// output and the gradients of a random linear functional of it.
    fn inference_agrees_with_burn<const D: usize>(shape: [usize; D]) {
        let device = Device::flex().autodiff();
        let channels = shape[1];
        let random = |lo, hi| Tensor::<1>::random([channels], Distribution::Uniform(lo, hi), &device);
        let (gamma, beta) = (random(0.5, 1.5), random(-0.5, 0.5));
        let (mean, variance) = (random(-1.0, 1.0), random(0.2, 3.0));
        let layer = || {
            let norm = BatchNorm {
                gamma: Param::from_tensor(gamma.clone()),
                beta: Param::from_tensor(beta.clone()),
                training: Param::from_bool(false),
                ..crate::init::batch_norm(channels, Default::default(), &device)
            };
            norm.running_mean.update(mean.clone());
            norm.running_var.update(variance.clone());
            let _ = norm.running_mean.value_sync();
            let _ = norm.running_var.value_sync();
            norm
        };
        let (norm, reference) = (layer(), layer());
        let x = Tensor::<D>::random(shape, Distribution::Normal(0.7, 2.0), &device).require_grad();
        let weights = Tensor::<D>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let (mean_values, variance_values) = (norm.running_mean.value(), norm.running_var.value());
        let fused = flex_inference::batch_norm_inference(&x, &gamma, &beta, &mean_values, &variance_values, 1e-5);
        assert!(fused.is_some(), "the fused kernel runs on flex");
        let ours = batch_norm(&norm, x.clone());
        let theirs = reference.forward(x.clone());
        close(ours.to_data(), theirs.to_data(), 1e-5, "output");
        gradients_agree([&ours, &theirs], &x, weights, [&norm, &reference], 1e-5);
    }

    #[test]
    fn inference_matches_burn_dense_and_convolutional() {
        inference_agrees_with_burn([300, 37]);
        inference_agrees_with_burn([5, 7, 9, 11]);
    }

    #[test]
    fn dense_activation_matches_burn() {
        agrees_with_burn([300, 37]);
    }

    #[test]
    fn convolutional_activation_matches_burn() {
        agrees_with_burn([5, 7, 9, 11]);
    }

    /// Off `flex` (here ndarray) Burn's own batch norm runs.
    #[cfg(feature = "ndarray")]
    #[test]
    #[allow(deprecated)] // Device::ndarray: the backend stays selectable
    fn other_backends_take_burns_path() {
        let device = Device::ndarray().autodiff();
        let x = Tensor::<2>::ones([4, 3], &device);
        let (gamma, beta) = (Tensor::<1>::ones([3], &device), Tensor::<1>::zeros([3], &device));
        assert!(flex::batch_norm_train(&x, &gamma, &beta, 1e-5).is_none());
    }

    /// A batch of one channel value per sample is normalized to zero mean and unit variance
    /// (up to ε): the closed form of the forward pass.
    #[test]
    fn normalizes_to_zero_mean_unit_variance() {
        let device = Device::flex().autodiff();
        let norm = crate::init::batch_norm(1, Default::default(), &device);
        let x = Tensor::<2>::from_data(TensorData::new(vec![1f32, 2.0, 3.0, 6.0], [4, 1]), &device);
        let y = batch_norm(&norm, x).into_data().try_to_vec::<f32>().unwrap();
        // mean 3, biased variance 3.5
        let expected: Vec<f32> = [1f32, 2.0, 3.0, 6.0].iter().map(|v| (v - 3.0) / (3.5f32 + 1e-5).sqrt()).collect();
        for (a, b) in y.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-5, "{y:?} vs {expected:?}");
        }
    }
}
