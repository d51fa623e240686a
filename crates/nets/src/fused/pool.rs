//! 2-D max pooling as one fused op on `flex`: one pass for the windows' maxima, and a backward
//! pass that finds each window's maximum again and routes the output gradient to it.
//!
//! Burn's flex pooling goes through its generic 3-D kernel, returns the argmax as an integer
//! tensor and scatters the gradient through it; on C1 that was a sixth of a training step
//! (README: Performance). Semantics are [`MaxPool2d::forward`]'s: padding never wins a window,
//! the first maximum in row-major window order does. Layers this does not cover (dilation,
//! ceil mode, asymmetric padding) and other backends take Burn's path.

use burn::nn::pool::MaxPool2d;
use burn::tensor::Tensor;

/// `pool.forward(x)`, fused on `flex` (with or without autodiff).
///
/// # Shapes
/// - `x`: `[batch, channels, height, width]` → `[batch, channels, height_out, width_out]`
pub fn max_pool2d(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if let Some(y) = flex::max_pool2d(pool, &x) {
        return y;
    }
    pool.forward(x)
}

/// One pooling: `planes` images of `h × w`, a `kh × kw` window, stride, symmetric padding.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Geometry {
    planes: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    ph: usize,
    pw: usize,
    oh: usize,
    ow: usize,
}

/// Planes per parallel task.
const PLANES_PER_TASK: usize = 8;

impl Geometry {
    /// Rows of window `oy` inside the image (padding never wins a window).
    fn rows(&self, oy: usize) -> std::ops::Range<usize> {
        (oy * self.sh).saturating_sub(self.ph)..(oy * self.sh + self.kh).saturating_sub(self.ph).min(self.h)
    }

    /// Columns of window `ox` inside the image.
    fn columns(&self, ox: usize) -> std::ops::Range<usize> {
        (ox * self.sw).saturating_sub(self.pw)..(ox * self.sw + self.kw).saturating_sub(self.pw).min(self.w)
    }
}

/// Each window's maximum. Values only: an `f32::max` chain per window has no data-dependent
/// branch (tracking the argmax here, with its unpredictable selects, was several times
/// slower); the backward pass finds the pixel again.
fn forward(g: &Geometry, x: &[f32]) -> Vec<f32> {
    use rayon::prelude::*;
    let (plane_in, plane_out) = (g.h * g.w, g.oh * g.ow);
    let columns: Vec<_> = (0..g.ow).map(|ox| g.columns(ox)).collect();
    let mut out = vec![0f32; g.planes * plane_out];
    out.par_chunks_mut(plane_out * PLANES_PER_TASK).zip(x.par_chunks(plane_in * PLANES_PER_TASK)).for_each(
        |(out, x)| {
            for (out, x) in out.chunks_exact_mut(plane_out).zip(x.chunks_exact(plane_in)) {
                for (oy, out) in out.chunks_exact_mut(g.ow).enumerate() {
                    let rows = g.rows(oy);
                    for (o, cols) in out.iter_mut().zip(&columns) {
                        let mut best = f32::NEG_INFINITY;
                        for y in rows.clone() {
                            for &v in &x[y * g.w + cols.start..y * g.w + cols.end] {
                                best = best.max(v);
                            }
                        }
                        *o = best;
                    }
                }
            }
        },
    );
    out
}

/// ∂L/∂x: each output gradient added onto its window's first pixel (row-major) holding the
/// maximum, as Burn's max pool routes it.
fn backward(g: &Geometry, x: &[f32], y: &[f32], dy: &[f32]) -> Vec<f32> {
    use rayon::prelude::*;
    let (plane_in, plane_out) = (g.h * g.w, g.oh * g.ow);
    let columns: Vec<_> = (0..g.ow).map(|ox| g.columns(ox)).collect();
    let mut dx = vec![0f32; g.planes * plane_in];
    dx.par_chunks_mut(plane_in * PLANES_PER_TASK)
        .zip(x.par_chunks(plane_in * PLANES_PER_TASK))
        .zip(y.par_chunks(plane_out * PLANES_PER_TASK).zip(dy.par_chunks(plane_out * PLANES_PER_TASK)))
        .for_each(|((dx, x), (y, dy))| {
            for (((dx, x), y), dy) in dx
                .chunks_exact_mut(plane_in)
                .zip(x.chunks_exact(plane_in))
                .zip(y.chunks_exact(plane_out))
                .zip(dy.chunks_exact(plane_out))
            {
                for oy in 0..g.oh {
                    let rows = g.rows(oy);
                    for (ox, cols) in columns.iter().enumerate() {
                        let best = y[oy * g.ow + ox];
                        // Scanned backwards with a select, so the last match is the first
                        // maximum and the loop has no data-dependent branch.
                        let mut at = rows.start * g.w + cols.start;
                        for r in rows.clone().rev() {
                            for i in (r * g.w + cols.start..r * g.w + cols.end).rev() {
                                at = if x[i] == best { i } else { at };
                            }
                        }
                        dx[at] += dy[oy * g.ow + ox];
                    }
                }
            }
        });
    dx
}

#[cfg(feature = "flex")]
mod flex {
    use burn::backend::Flex;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops};
    use burn::backend::flex::FlexTensor;
    use burn::nn::PaddingConfig2d;
    use burn::nn::pool::MaxPool2d;
    use burn::tensor::{Shape, Tensor};

    use super::super::flex::{Ad, contiguous, floats, on_ad, on_flex, record, tensor};
    use super::{Geometry, backward, forward};

    #[derive(Debug)]
    struct MaxPoolOp;

    impl Backward<Flex, 1> for MaxPoolOp {
        /// The input and output (both kept by the ReLU and the next layer anyway), the geometry.
        type State = (FlexTensor, FlexTensor, Geometry);

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
            let [node_x] = ops.parents;
            let dy = contiguous(&grads.consume::<Flex>(&ops.node));
            let (x, y, g) = ops.state;
            if let Some(node) = node_x {
                let shape = x.layout().shape().clone();
                grads.register::<Flex>(node.id, tensor(backward(&g, floats(&x), floats(&y), floats(&dy)), shape));
            }
        }
    }

    fn geometry(pool: &MaxPool2d, dims: [usize; 4]) -> Option<Geometry> {
        let [n, c, h, w] = dims;
        let PaddingConfig2d::Explicit(top, left, bottom, right) = pool.padding else {
            return None;
        };
        let ([kh, kw], [sh, sw]) = (pool.kernel_size, pool.stride);
        if pool.dilation != [1, 1]
            || pool.ceil_mode
            || top != bottom
            || left != right
            || h + 2 * top < kh
            || w + 2 * left < kw
            || top >= kh
            || left >= kw
        {
            return None;
        }
        let (ph, pw) = (top, left);
        Some(Geometry {
            planes: n * c,
            h,
            w,
            kh,
            kw,
            sh,
            sw,
            ph,
            pw,
            oh: (h + 2 * ph - kh) / sh + 1,
            ow: (w + 2 * pw - kw) / sw + 1,
        })
    }

    /// The fused max pool on `flex` (tracked by autodiff or not), `None` elsewhere.
    pub(super) fn max_pool2d(pool: &MaxPool2d, x: &Tensor<4>) -> Option<Tensor<4>> {
        let g = geometry(pool, x.dims())?;
        let [n, c, _, _] = x.dims();
        let out_shape = Shape::new([n, c, g.oh, g.ow]);
        if x.device().is_autodiff() {
            let x = on_ad(x)?;
            let xs = contiguous(x.primitive());
            let y = tensor(forward(&g, floats(&xs)), out_shape);
            Some(Tensor::from_primitive::<Ad>(record(MaxPoolOp, [&x], || (xs, y.clone(), g), y.clone())))
        } else {
            let y = forward(&g, floats(&on_flex(x)?));
            Some(Tensor::from_primitive::<Flex>(tensor(y, out_shape)))
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::module::Module;
    use burn::nn::PaddingConfig2d;
    use burn::nn::pool::MaxPool2dConfig;
    use burn::tensor::activation::relu;
    use burn::tensor::{Device, Distribution, Tensor, TensorData};

    use super::*;

    /// Output and input gradient against Burn's max pool; after a ReLU, so that windows of
    /// zeros test which of several equal maxima takes the gradient.
    fn agrees_with_burn(input: [usize; 4], kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2]) {
        let device = Device::flex().autodiff();
        let pool = MaxPool2dConfig::new(kernel)
            .with_strides(stride)
            .with_padding(PaddingConfig2d::Explicit(padding[0], padding[1], padding[0], padding[1]))
            .init();
        let x = Tensor::<4>::random(input, Distribution::Normal(-0.3, 1.0), &device).require_grad();
        assert!(flex::max_pool2d(&pool, &x).is_some(), "the fused kernel runs on flex");
        let ours = max_pool2d(&pool, relu(x.clone()));
        let theirs = pool.forward(relu(x.clone()));
        assert_eq!(
            ours.to_data().try_to_vec::<f32>().unwrap(),
            theirs.to_data().try_to_vec::<f32>().unwrap(),
            "output"
        );
        let weights = ours.random_like(Distribution::Normal(0.0, 1.0));
        let grads_ours = (ours * weights.clone()).sum().backward();
        let grads_theirs = (theirs * weights).sum().backward();
        let (a, b) = (x.grad(&grads_ours).unwrap().into_data(), x.grad(&grads_theirs).unwrap().into_data());
        assert_eq!(a.try_to_vec::<f32>().unwrap(), b.try_to_vec::<f32>().unwrap(), "∂/∂x");

        let plain = pool.valid();
        let x = x.inner();
        assert_eq!(
            max_pool2d(&plain, x.clone()).into_data().try_to_vec::<f32>().unwrap(),
            plain.forward(x).into_data().try_to_vec::<f32>().unwrap(),
            "inference output"
        );
    }

    /// C1's pool: 3 × 3, stride 2, 'same'.
    #[test]
    fn c1_pool_matches_burn() {
        agrees_with_burn([3, 4, 10, 9], [3, 3], [2, 2], [1, 1]);
    }

    #[test]
    fn unpadded_pool_matches_burn() {
        agrees_with_burn([2, 3, 8, 8], [2, 2], [2, 2], [0, 0]);
    }

    /// The 1-D variants: 1 × 3 windows over a height-1 signal.
    #[test]
    fn signal_pool_matches_burn() {
        agrees_with_burn([2, 5, 1, 21], [1, 3], [1, 2], [0, 1]);
    }

    /// Closed form: 2 × 2 windows, stride 2, over a 2 × 4 image take each block's maximum, and
    /// the gradient lands on exactly those pixels.
    #[test]
    fn takes_each_windows_maximum() {
        let device = Device::flex().autodiff();
        let pool = MaxPool2dConfig::new([2, 2])
            .with_strides([2, 2])
            .with_padding(PaddingConfig2d::Explicit(0, 0, 0, 0))
            .init();
        let x = Tensor::<4>::from_data(
            TensorData::new(vec![1f32, 5.0, -2.0, 0.0, 3.0, 4.0, -1.0, -3.0], [1, 1, 2, 4]),
            &device,
        )
        .require_grad();
        let y = max_pool2d(&pool, x.clone());
        assert_eq!(y.to_data().try_to_vec::<f32>().unwrap(), vec![5.0, 0.0]);
        let grads = y.sum().backward();
        assert_eq!(
            x.grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap(),
            vec![0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]
        );
    }
}
