//! 2-D convolution as one fused op on `flex`: per sample, im2col and one matrix multiply for
//! the output, and in the backward pass one multiply for the weight gradient and one (with
//! col2im) for the input gradient.
//!
//! Burn 0.22 computes a convolution's weight gradient as a second convolution with batch and
//! channels swapped (kernels the size of the image), and its input gradient as a transposed
//! convolution; on C1 those took more time than the forward pass itself (README: Performance).
//! The semantics are [`Conv2d::forward`]'s; layers this does not cover (groups, dilation,
//! asymmetric padding, no bias) and other backends take Burn's path.

use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;

/// `conv.forward(x)`, fused on `flex` (with or without autodiff).
///
/// # Shapes
/// - `x`: `[batch, channels_in, height, width]` → `[batch, channels_out, height_out, width_out]`
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if let Some(y) = flex::conv2d(conv, &x) {
        return y;
    }
    conv.forward(x)
}

/// Shape of one convolution: input `[n, ci, h, w]`, kernel `[co, ci, kh, kw]`, stride, symmetric
/// zero padding, output `[n, co, oh, ow]`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Geometry {
    n: usize,
    ci: usize,
    h: usize,
    w: usize,
    co: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    ph: usize,
    pw: usize,
    oh: usize,
    ow: usize,
}

impl Geometry {
    /// Rows of the im2col matrix: one per (input channel, kernel row, kernel column).
    fn k(&self) -> usize {
        self.ci * self.kh * self.kw
    }

    /// Output positions per channel: the im2col matrix's columns.
    fn p(&self) -> usize {
        self.oh * self.ow
    }

    /// The convolution whose output is this one's input gradient, where there is one: at
    /// stride 1 with padding below the kernel size, dx = dy ⋆ W' padded by k − 1 − p (W' the
    /// kernel flipped in space, input and output channels swapped).
    fn transposed(&self) -> Option<Geometry> {
        if self.sh != 1 || self.sw != 1 || self.ph >= self.kh || self.pw >= self.kw {
            return None;
        }
        let (ph, pw) = (self.kh - 1 - self.ph, self.kw - 1 - self.pw);
        Some(Geometry {
            n: self.n,
            ci: self.co,
            h: self.oh,
            w: self.ow,
            co: self.ci,
            kh: self.kh,
            kw: self.kw,
            sh: 1,
            sw: 1,
            ph,
            pw,
            oh: self.h,
            ow: self.w,
        })
    }

    fn sample_in(&self) -> usize {
        self.ci * self.h * self.w
    }

    fn sample_out(&self) -> usize {
        self.co * self.p()
    }

    /// Output columns `ox` whose input column `ox·sw + j − pw` lies inside the image.
    fn valid_columns(&self, j: usize) -> std::ops::Range<usize> {
        let lo = self.pw.saturating_sub(j).div_ceil(self.sw);
        let hi = if self.w + self.pw > j { (self.w + self.pw - j).div_ceil(self.sw) } else { 0 };
        lo.min(self.ow)..hi.min(self.ow).max(lo.min(self.ow))
    }

    /// The input row of output row `oy` under kernel row `i`, if inside the image.
    fn input_row(&self, oy: usize, i: usize) -> Option<usize> {
        (oy * self.sh + i).checked_sub(self.ph).filter(|&y| y < self.h)
    }

    /// Calls `f(im2col row, output row, input row, valid output columns, input column offset)`
    /// for every (channel, kernel row, kernel column, output row) that reads inside the image.
    fn for_each_span(&self, mut f: impl FnMut(usize, usize, usize, std::ops::Range<usize>, isize)) {
        for c in 0..self.ci {
            for i in 0..self.kh {
                for j in 0..self.kw {
                    let row = (c * self.kh + i) * self.kw + j;
                    let columns = self.valid_columns(j);
                    for oy in 0..self.oh {
                        if let Some(iy) = self.input_row(oy, i) {
                            f(row, oy, c * self.h + iy, columns.clone(), j as isize - self.pw as isize);
                        }
                    }
                }
            }
        }
    }
}

/// The im2col matrix `[k, p]` of one sample `[ci, h, w]`: entry (channel·kernel offset, output
/// position) is the input pixel under that kernel offset, zero in the padding.
fn im2col(g: &Geometry, x: &[f32], cols: &mut [f32]) {
    if g.sh == 1 && g.sw == 1 && g.ow == g.w && g.pw < g.w { im2col_same(g, x, cols) } else { im2col_rows(g, x, cols) }
}

/// [`im2col`] for any geometry, one output row at a time. Every entry is written once: zeros
/// only where the window lies in the padding.
fn im2col_rows(g: &Geometry, x: &[f32], cols: &mut [f32]) {
    for c in 0..g.ci {
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = (c * g.kh + i) * g.kw + j;
                let columns = g.valid_columns(j);
                let offset = j as isize - g.pw as isize;
                for (oy, out) in cols[row * g.p()..][..g.p()].chunks_exact_mut(g.ow).enumerate() {
                    let Some(iy) = g.input_row(oy, i) else {
                        out.fill(0.0);
                        continue;
                    };
                    let src = &x[(c * g.h + iy) * g.w..][..g.w];
                    out[..columns.start].fill(0.0);
                    out[columns.end..].fill(0.0);
                    if g.sw == 1 {
                        let start = (columns.start as isize + offset) as usize;
                        out[columns.clone()].copy_from_slice(&src[start..start + columns.len()]);
                    } else {
                        for ox in columns.clone() {
                            out[ox] = src[(ox as isize * g.sw as isize + offset) as usize];
                        }
                    }
                }
            }
        }
    }
}

/// [`im2col`] at stride 1 with the output as wide as the input ('same' padding across): each
/// row is the input plane shifted by one flat offset (kernel row and column), so one copy per
/// row, then zeros on the rows and border columns the window takes from the padding.
fn im2col_same(g: &Geometry, x: &[f32], cols: &mut [f32]) {
    let (w, p) = (g.w, g.p());
    for c in 0..g.ci {
        let plane = &x[c * g.h * w..][..g.h * w];
        for i in 0..g.kh {
            // Output rows whose input row oy + di lies inside the image.
            let di = i as isize - g.ph as isize;
            let (lo, hi) = ((-di).max(0) as usize, (g.h as isize - di).clamp(0, g.oh as isize) as usize);
            let lo = lo.min(hi);
            for j in 0..g.kw {
                let out = &mut cols[((c * g.kh + i) * g.kw + j) * p..][..p];
                out[..lo * w].fill(0.0);
                out[hi * w..].fill(0.0);
                if lo == hi {
                    continue;
                }
                let dj = j as isize - g.pw as isize;
                let (left, right) = ((-dj).max(0) as usize, dj.max(0) as usize);
                // out[f] = plane[f + di·w + dj]; the first `left` and last `right` entries
                // of each row wrap across the row edge and are zeroed below.
                let (start, end) = (lo * w + left, hi * w - right);
                let from = (start as isize + di * w as isize + dj) as usize;
                out[start..end].copy_from_slice(&plane[from..from + (end - start)]);
                for row in out[lo * w..hi * w].chunks_exact_mut(w) {
                    row[..left].fill(0.0);
                    row[w - right..].fill(0.0);
                }
            }
        }
    }
}

/// Adds each entry of an im2col-shaped gradient `[k, p]` back onto the input pixel it was read
/// from (the adjoint of [`im2col`]).
fn col2im(g: &Geometry, cols: &[f32], dx: &mut [f32]) {
    let p = g.p();
    g.for_each_span(|row, oy, input_row, columns, offset| {
        let src = &cols[row * p + oy * g.ow..][..g.ow];
        let out = &mut dx[input_row * g.w..][..g.w];
        for ox in columns {
            out[(ox as isize * g.sw as isize + offset) as usize] += src[ox];
        }
    });
}

/// Whether a `rows × cols` matrix with non-negative `(row, column)` strides fits in `len`
/// elements (an empty matrix always does).
fn fits(len: usize, rows: usize, cols: usize, (rs, cs): (isize, isize)) -> bool {
    if rows == 0 || cols == 0 {
        return true;
    }
    let (Ok(rs), Ok(cs)) = (usize::try_from(rs), usize::try_from(cs)) else { return false };
    let last = (rows - 1).checked_mul(rs).zip((cols - 1).checked_mul(cs)).and_then(|(a, b)| a.checked_add(b));
    last.is_some_and(|last| last < len)
}

/// `dst[m×n] (+)= lhs[m×k]·rhs[k×n]`, every matrix given by its row and column strides.
#[allow(clippy::too_many_arguments)]
fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_strides: (isize, isize),
    accumulate: bool,
    lhs: &[f32],
    lhs_strides: (isize, isize),
    rhs: &[f32],
    rhs_strides: (isize, isize),
) {
    // Every element the GEMM touches lies inside its slice: checked on every call (a few integer
    // operations against a multiply of thousands of flops), not only in debug builds.
    assert!(fits(dst.len(), m, n, dst_strides), "GEMM destination {m}×{n} {dst_strides:?} exceeds {}", dst.len());
    assert!(fits(lhs.len(), m, k, lhs_strides), "GEMM left operand {m}×{k} {lhs_strides:?} exceeds {}", lhs.len());
    assert!(fits(rhs.len(), k, n, rhs_strides), "GEMM right operand {k}×{n} {rhs_strides:?} exceeds {}", rhs.len());
    // SAFETY: the asserts above bound every index the GEMM reads or writes; `dst` is a unique
    // borrow, so it aliases neither operand.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_strides.1,
            dst_strides.0,
            accumulate,
            lhs.as_ptr(),
            lhs_strides.1,
            lhs_strides.0,
            rhs.as_ptr(),
            rhs_strides.1,
            rhs_strides.0,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// y[n] = W·im2col(x[n]) + b, samples in parallel.
fn forward(g: &Geometry, x: &[f32], weight: &[f32], bias: &[f32]) -> Vec<f32> {
    use rayon::prelude::*;
    let (k, p) = (g.k(), g.p());
    let mut out = vec![0f32; g.n * g.sample_out()];
    out.par_chunks_mut(g.sample_out()).zip(x.par_chunks(g.sample_in())).for_each_init(
        || vec![0f32; k * p],
        |cols, (y, x)| {
            im2col(g, x, cols);
            for (row, &b) in y.chunks_exact_mut(p).zip(bias) {
                row.fill(b);
            }
            matmul(g.co, p, k, y, (p as isize, 1), true, weight, (k as isize, 1), cols, (p as isize, 1));
        },
    );
    out
}

/// Partial sums of the weight gradient: the batch is cut into this many contiguous groups of
/// samples whatever the pool size, each group summed in sample order, and the groups' sums added
/// in group order, so the gradient is the same bits on any number of threads and any schedule
/// (rayon's `fold`/`reduce` split where work stealing happens to).
const WEIGHT_GRAD_GROUPS: usize = 32;

/// ∂L/∂W = Σₙ dy[n]·im2col(x[n])ᵀ and ∂L/∂b = Σₙ Σₚ dy[n], groups of samples in parallel.
fn weight_and_bias_grad(g: &Geometry, x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    use rayon::prelude::*;
    let (k, p) = (g.k(), g.p());
    let per_group = g.n.div_ceil(WEIGHT_GRAD_GROUPS).max(1);
    let partial: Vec<(Vec<f32>, Vec<f64>)> = x
        .par_chunks(g.sample_in() * per_group)
        .zip(dy.par_chunks(g.sample_out() * per_group))
        .map(|(x, dy)| {
            let (mut dw, mut db, mut cols) = (vec![0f32; g.co * k], vec![0f64; g.co], vec![0f32; k * p]);
            for (x, dy) in x.chunks_exact(g.sample_in()).zip(dy.chunks_exact(g.sample_out())) {
                im2col(g, x, &mut cols);
                // cols viewed transposed: entry (position, row) at cols[row·p + position].
                // dw held transposed, [k, co]: a column-major destination keeps the GEMM
                // from transposing the problem and packing the whole im2col matrix.
                matmul(g.co, k, p, &mut dw, (1, g.co as isize), true, dy, (p as isize, 1), &cols, (1, p as isize));
                for (sum, row) in db.iter_mut().zip(dy.chunks_exact(p)) {
                    // Eight partial sums, so the loop vectorizes.
                    let mut lanes = [0f32; 8];
                    let chunks = row.chunks_exact(8);
                    for (l, &v) in chunks.remainder().iter().enumerate() {
                        lanes[l] += v;
                    }
                    for chunk in chunks {
                        lanes.iter_mut().zip(chunk).for_each(|(a, &v)| *a += v);
                    }
                    *sum += lanes.iter().map(|&v| v as f64).sum::<f64>();
                }
            }
            (dw, db)
        })
        .collect();
    let (mut dw, mut db) = (vec![0f32; g.co * k], vec![0f64; g.co]);
    for (dw2, db2) in &partial {
        dw.iter_mut().zip(dw2).for_each(|(a, b)| *a += b);
        db.iter_mut().zip(db2).for_each(|(a, b)| *a += b);
    }
    let mut dw_rows = vec![0f32; g.co * k];
    for (r, column) in dw.chunks_exact(g.co).enumerate() {
        for (o, &v) in column.iter().enumerate() {
            dw_rows[o * k + r] = v;
        }
    }
    (dw_rows, db.into_iter().map(|v| v as f32).collect())
}

/// ∂L/∂x, samples in parallel: at stride 1 as the forward convolution of dy with the flipped,
/// transposed kernel (a matrix multiply as deep as the forward one, ci·kh·kw, where Wᵀ·dy is
/// only co deep and took a third longer than the forward pass on C1); otherwise col2im(Wᵀ·dy[n]).
fn input_grad(g: &Geometry, weight: &[f32], dy: &[f32]) -> Vec<f32> {
    use rayon::prelude::*;
    if let Some(t) = g.transposed() {
        // W'[c, o, i, j] = W[o, c, kh−1−i, kw−1−j].
        let taps = g.kh * g.kw;
        let mut flipped = vec![0f32; weight.len()];
        for (o, kernels) in weight.chunks_exact(g.ci * taps).enumerate() {
            for (c, kernel) in kernels.chunks_exact(taps).enumerate() {
                let out = &mut flipped[(c * g.co + o) * taps..][..taps];
                out.iter_mut().zip(kernel.iter().rev()).for_each(|(a, &b)| *a = b);
            }
        }
        return forward(&t, dy, &flipped, &vec![0f32; g.ci]);
    }
    let (k, p) = (g.k(), g.p());
    let mut dx = vec![0f32; g.n * g.sample_in()];
    dx.par_chunks_mut(g.sample_in()).zip(dy.par_chunks(g.sample_out())).for_each_init(
        || vec![0f32; k * p],
        |cols, (dx, dy)| {
            // Wᵀ: entry (row, out channel) at weight[channel·k + row].
            matmul(k, p, g.co, cols, (p as isize, 1), false, weight, (1, k as isize), dy, (p as isize, 1));
            col2im(g, cols, dx);
        },
    );
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
    use burn::nn::conv::Conv2d;
    use burn::tensor::{Shape, Tensor};

    use super::super::flex::{Ad, contiguous, floats, on_ad, on_flex, record, tensor};
    use super::{Geometry, forward, input_grad, weight_and_bias_grad};

    #[derive(Debug)]
    struct Conv2dOp;

    impl Backward<Flex, 3> for Conv2dOp {
        /// The input, the weight, the geometry.
        type State = (FlexTensor, FlexTensor, Geometry);

        fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
            let [node_x, node_weight, node_bias] = ops.parents;
            let dy = contiguous(&grads.consume::<Flex>(&ops.node));
            let (x, weight, g) = ops.state;
            if let Some(node) = node_x {
                let dx = input_grad(&g, floats(&weight), floats(&dy));
                grads.register::<Flex>(node.id, tensor(dx, Shape::new([g.n, g.ci, g.h, g.w])));
            }
            if node_weight.is_some() || node_bias.is_some() {
                let (dw, db) = weight_and_bias_grad(&g, floats(&x), floats(&dy));
                if let Some(node) = node_weight {
                    grads.register::<Flex>(node.id, tensor(dw, Shape::new([g.co, g.ci, g.kh, g.kw])));
                }
                if let Some(node) = node_bias {
                    grads.register::<Flex>(node.id, tensor(db, Shape::new([g.co])));
                }
            }
        }
    }

    /// (before, after) zero padding of each side, as `PaddingConfig2d` computes it for
    /// `Conv2d::forward` ('same': the output side is ⌈side/stride⌉, the odd pixel after).
    fn padding(
        config: &PaddingConfig2d,
        input: [usize; 2],
        kernel: [usize; 2],
        stride: [usize; 2],
    ) -> ((usize, usize), (usize, usize)) {
        let same = |i: usize| {
            let out = input[i].div_ceil(stride[i]);
            let total = if out > 0 { ((out - 1) * stride[i] + kernel[i]).saturating_sub(input[i]) } else { 0 };
            (total / 2, total - total / 2)
        };
        match *config {
            PaddingConfig2d::Valid => ((0, 0), (0, 0)),
            PaddingConfig2d::Same => (same(0), same(1)),
            PaddingConfig2d::Explicit(top, left, bottom, right) => ((top, bottom), (left, right)),
        }
    }

    /// The layer's geometry on input `x`, or `None` where the fused kernels do not apply.
    fn geometry(conv: &Conv2d, dims: [usize; 4]) -> Option<Geometry> {
        let [n, ci, h, w] = dims;
        let [co, wci, kh, kw] = conv.weight.dims();
        let ((top, bottom), (left, right)) = padding(&conv.padding, [h, w], conv.kernel_size, conv.stride);
        if conv.groups != 1
            || conv.dilation != [1, 1]
            || top != bottom
            || left != right
            || wci != ci
            || conv.bias.is_none()
        {
            return None;
        }
        let [sh, sw] = conv.stride;
        let (ph, pw) = (top, left);
        if h + 2 * ph < kh || w + 2 * pw < kw || n == 0 {
            return None;
        }
        Some(Geometry {
            n,
            ci,
            h,
            w,
            co,
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

    /// The fused convolution on `flex` (tracked by autodiff or not), `None` elsewhere.
    pub(super) fn conv2d(conv: &Conv2d, x: &Tensor<4>) -> Option<Tensor<4>> {
        let g = geometry(conv, x.dims())?;
        let bias = conv.bias.as_ref()?.val();
        let out_shape = Shape::new([g.n, g.co, g.oh, g.ow]);
        if x.device().is_autodiff() {
            let (x, weight, bias) = (on_ad(x)?, on_ad(&conv.weight.val())?, on_ad(&bias)?);
            let (xs, ws) = (contiguous(x.primitive()), contiguous(weight.primitive()));
            let y = tensor(forward(&g, floats(&xs), floats(&ws), floats(&contiguous(bias.primitive()))), out_shape);
            Some(Tensor::from_primitive::<Ad>(record(Conv2dOp, [&x, &weight, &bias], || (xs, ws, g), y)))
        } else {
            let (x, weight, bias) = (on_flex(x)?, on_flex(&conv.weight.val())?, on_flex(&bias)?);
            let y = forward(&g, floats(&x), floats(&weight), floats(&bias));
            Some(Tensor::from_primitive::<Flex>(tensor(y, out_shape)))
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::module::{Module, Param};
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Device, Distribution, Tensor, TensorData};

    use super::*;

    fn close(a: TensorData, b: TensorData, what: &str) {
        let (a, b) = (a.try_to_vec::<f32>().unwrap(), b.try_to_vec::<f32>().unwrap());
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        let scale = b.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        for (i, (p, q)) in a.iter().zip(&b).enumerate() {
            assert!((p - q).abs() <= 2e-5 * scale, "{what}[{i}]: fused {p}, Burn {q}");
        }
    }

    /// Output and the gradients of a random linear functional of it (input, weight, bias)
    /// against Burn's own convolution, with and without autodiff.
    fn agrees_with_burn(
        input: [usize; 4],
        channels_out: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: PaddingConfig2d,
    ) {
        let device = Device::flex().autodiff();
        let mut conv =
            Conv2dConfig::new([input[1], channels_out], kernel).with_stride(stride).with_padding(padding).init(&device);
        conv.weight = Param::from_tensor(conv.weight.val().random_like(Distribution::Normal(0.0, 1.0)));
        let x = Tensor::<4>::random(input, Distribution::Normal(0.0, 1.0), &device).require_grad();
        assert!(flex::conv2d(&conv, &x).is_some(), "the fused kernel runs on flex");
        let ours = conv2d(&conv, x.clone());
        let theirs = conv.forward(x.clone());
        close(ours.to_data(), theirs.to_data(), "output");
        let weights = ours.random_like(Distribution::Normal(0.0, 1.0));
        let grads_ours = (ours * weights.clone()).sum().backward();
        let grads_theirs = (theirs * weights).sum().backward();
        close(x.grad(&grads_ours).unwrap().to_data(), x.grad(&grads_theirs).unwrap().to_data(), "∂/∂x");
        let w = conv.weight.val();
        close(w.grad(&grads_ours).unwrap().to_data(), w.grad(&grads_theirs).unwrap().to_data(), "∂/∂W");
        let b = conv.bias.as_ref().unwrap().val();
        close(b.grad(&grads_ours).unwrap().to_data(), b.grad(&grads_theirs).unwrap().to_data(), "∂/∂b");

        // Inference on a plain device takes the fused forward too.
        let plain = conv.valid();
        let x = x.inner();
        assert!(flex::conv2d(&plain, &x).is_some());
        close(conv2d(&plain, x.clone()).to_data(), plain.forward(x).to_data(), "inference output");
    }

    #[test]
    fn same_padding_matches_burn() {
        agrees_with_burn([3, 4, 9, 8], 5, [5, 5], [1, 1], PaddingConfig2d::Same);
    }

    #[test]
    fn strided_explicit_padding_matches_burn() {
        agrees_with_burn([2, 3, 11, 10], 4, [3, 3], [2, 2], PaddingConfig2d::Explicit(1, 1, 1, 1));
    }

    #[test]
    fn unpadded_matches_burn() {
        agrees_with_burn([2, 2, 6, 7], 3, [3, 2], [1, 1], PaddingConfig2d::Valid);
    }

    /// The 1-D variants: a signal as a height-1 image under a 1 × k kernel.
    #[test]
    fn signal_matches_burn() {
        agrees_with_burn([4, 3, 1, 40], 6, [1, 5], [1, 1], PaddingConfig2d::Same);
    }

    /// The one-copy-per-row im2col of 'same' convolutions writes what the general one does,
    /// padding and wrapped border columns included.
    #[test]
    fn same_im2col_matches_the_general_one() {
        for (h, w, kh, kw, ph, pw) in [
            (9, 8, 5, 5, 2, 2),
            (4, 6, 3, 5, 1, 2),
            (1, 40, 1, 5, 0, 2),
            (3, 3, 7, 3, 3, 1),
            (5, 4, 3, 1, 0, 0),
            (2, 2, 3, 3, 2, 1),
        ] {
            let (oh, ow) = (h + 2 * ph - kh + 1, w + 2 * pw - kw + 1);
            let g = Geometry { n: 1, ci: 2, h, w, co: 1, kh, kw, sh: 1, sw: 1, ph, pw, oh, ow };
            assert_eq!(ow, w, "the case is a 'same' one across");
            let x: Vec<f32> = (0..g.sample_in()).map(|v| v as f32 + 1.0).collect();
            let (mut fast, mut general) = (vec![f32::NAN; g.k() * g.p()], vec![f32::NAN; g.k() * g.p()]);
            im2col_same(&g, &x, &mut fast);
            im2col_rows(&g, &x, &mut general);
            assert_eq!(fast, general, "{g:?}");
        }
    }

    /// A 1 × 1 image under a 3 × 3 kernel with padding 1: only the centre tap reads the image,
    /// so the output is W[:, :, 1, 1]·x + b (closed form).
    #[test]
    fn single_pixel_reads_only_the_centre_tap() {
        let device = Device::flex();
        let conv = Conv2dConfig::new([2, 1], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(&device);
        let x = Tensor::<4>::from_data(TensorData::new(vec![2f32, -3.0], [1, 2, 1, 1]), &device);
        let w = conv.weight.val().into_data().try_to_vec::<f32>().unwrap();
        let b = conv.bias.as_ref().unwrap().val().into_data().try_to_vec::<f32>().unwrap();
        let y = conv2d(&conv, x).into_data().try_to_vec::<f32>().unwrap();
        let expected = 2.0 * w[4] - 3.0 * w[9 + 4] + b[0];
        assert!((y[0] - expected).abs() < 1e-6, "{y:?} vs {expected}");
    }
}
