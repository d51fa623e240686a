//! A network's training loss as a plain objective (flat parameter vector → loss, gradient), so
//! that the estimators of the `measure` crate run unchanged on any network.
//!
//! The objective is the mean cross-entropy over the whole training set, dropout off, with batch
//! norm in one of two settings ([`BatchNormMode`]): on its running statistics (held fixed: they
//! are state, not parameters; PyTorch's and Burn's inference), or on the statistics of each
//! evaluation batch, over a fixed partition of the samples (Keras 1's `BatchNormalization(mode=2)`,
//! what Keskar et al.'s code evaluates with). Either way it is a deterministic function of the
//! trainable parameters alone, which is what Keskar's metric and a Hessian need. Gradients come
//! from Burn's autodiff, one backward pass per chunk of the training set, a few chunks at once on
//! the thread pool, summed in f64 in chunk order (the same bits on any pool); in the batch
//! setting the gradient flows through the batch's mean and variance too.

use burn::module::{Flag, Module, ModuleMapper, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::Gradients;
use burn::tensor::{DType, Device, Element, Tensor, TensorData};
use datasets::{Dataset, Split};
use rayon::prelude::*;

use serde::{Deserialize, Serialize};

use crate::Classifier;
use crate::train::{NetSpec, WithNet, batch, evaluate};

/// Which statistics batch norm normalizes with when the objective is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BatchNormMode {
    /// The running statistics accumulated in training, held fixed (inference mode).
    Running,
    /// Each evaluation batch's own mean and biased variance, as in training: the samples are cut
    /// into consecutive batches of the objective's chunk size, always the same ones.
    Batch,
}

impl BatchNormMode {
    /// Both settings, running statistics first.
    pub const ALL: [BatchNormMode; 2] = [BatchNormMode::Running, BatchNormMode::Batch];

    /// A phrase for tables.
    pub fn describe(self) -> &'static str {
        match self {
            BatchNormMode::Running => "running statistics",
            BatchNormMode::Batch => "batch statistics",
        }
    }
}

/// A network's state, flattened in Burn's visiting order: the trainable parameters (what the
/// measurements perturb) and the running statistics of batch norm (fixed state).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Weights {
    /// Weights, biases, batch-norm scales and shifts.
    pub params: Vec<f32>,
    /// Batch-norm running means and variances.
    pub buffers: Vec<f32>,
}

impl Weights {
    /// Little-endian bytes: magic `FLWT`, parameter count and buffer count (u64), then the f32s.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(20 + 4 * (self.params.len() + self.buffers.len()));
        out.extend_from_slice(b"FLWT");
        out.extend_from_slice(&(self.params.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.buffers.len() as u64).to_le_bytes());
        for v in self.params.iter().chain(&self.buffers) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Reads [`to_bytes`](Weights::to_bytes)'s format; the error says what is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Result<Weights, String> {
        if bytes.len() < 20 || &bytes[..4] != b"FLWT" {
            return Err("not a flatland weights file (no FLWT header)".into());
        }
        let count = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes")) as usize;
        let (p, b) = (count(4), count(12));
        let expected = p.checked_add(b).and_then(|n| n.checked_mul(4)).and_then(|n| n.checked_add(20));
        if expected != Some(bytes.len()) {
            return Err(format!("{} bytes, but the header announces {p} parameters and {b} buffers", bytes.len()));
        }
        let floats: Vec<f32> =
            bytes[20..].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
        Ok(Weights { params: floats[..p].to_vec(), buffers: floats[p..].to_vec() })
    }

    /// The parameters in f64, the measurements' working precision.
    pub fn params_f64(&self) -> Vec<f64> {
        self.params.iter().map(|&v| v as f64).collect()
    }
}

/// Where one tensor sits in a network: its path of field names and its shape.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// Field path, e.g. `layers.0.norm.running_var`.
    pub path: String,
    /// Tensor shape.
    pub shape: Vec<usize>,
}

/// The tensors of a network in the order [`weights_of`] flattens them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Layout {
    /// Trainable tensors.
    pub params: Vec<TensorInfo>,
    /// Running statistics.
    pub buffers: Vec<TensorInfo>,
}

/// The layout of `model` (on an autodiff device).
pub fn layout_of<M: Module>(model: &M) -> Layout {
    struct Walk {
        path: Vec<String>,
        layout: Layout,
    }
    impl ModuleVisitor for Walk {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = param.val();
            let info = TensorInfo { path: self.path.join("."), shape: value.shape().dims::<D>().to_vec() };
            if value.is_require_grad() { &mut self.layout.params } else { &mut self.layout.buffers }.push(info);
        }
    }
    let mut walk = Walk { path: Vec::new(), layout: Layout::default() };
    model.visit(&mut walk);
    walk.layout
}

impl Weights {
    /// The point (1 − α)·self + α·other. Parameters move on the straight line (Keskar Fig. 3);
    /// batch norm's running statistics move with them, means linearly and variances
    /// geometrically (var_self^(1−α) · var_other^α), so that every point is a valid network
    /// for every α, including the extrapolated α < 0 and α > 1, and both ends are exact.
    pub fn lerp(&self, other: &Weights, alpha: f64, layout: &Layout) -> Weights {
        let params = self
            .params
            .iter()
            .zip(&other.params)
            .map(|(&a, &b)| ((1.0 - alpha) * a as f64 + alpha * b as f64) as f32)
            .collect();
        let mut buffers = Vec::with_capacity(self.buffers.len());
        let mut at = 0;
        for info in &layout.buffers {
            let len: usize = info.shape.iter().product();
            let geometric = info.path.ends_with("running_var");
            for i in at..at + len {
                let (a, b) = (self.buffers[i] as f64, other.buffers[i] as f64);
                let v = if geometric {
                    a.max(f64::MIN_POSITIVE).powf(1.0 - alpha) * b.max(f64::MIN_POSITIVE).powf(alpha)
                } else {
                    (1.0 - alpha) * a + alpha * b
                };
                buffers.push(v as f32);
            }
            at += len;
        }
        Weights { params, buffers }
    }
}

impl Layout {
    /// A random direction in parameter space, filter-normalized (Li et al. 2018, §4): Gaussian,
    /// then each filter's part scaled to the norm of that filter in `params`. A filter is an
    /// output unit: a column of a dense weight (Burn stores `[in, out]`), an output channel of a
    /// convolution. One-dimensional tensors (biases, batch-norm scale and shift) get no
    /// component, as in Li et al.
    pub fn filter_normalized_direction(&self, params: &[f32], rng: &mut impl rand::Rng) -> Vec<f64> {
        use rand_distr::StandardNormal;
        let mut dir = vec![0.0; params.len()];
        let mut at = 0;
        for info in &self.params {
            let len: usize = info.shape.iter().product();
            if info.shape.len() >= 2 {
                // Element k of filter f: column f of a [rows, cols] dense weight, or block f of
                // a convolution weight [out, in, …].
                let dense = info.shape.len() == 2;
                let filters = if dense { info.shape[1] } else { info.shape[0] };
                let index = |f: usize, k: usize| if dense { k * filters + f } else { f * (len / filters) + k };
                let per_filter = len / filters;
                for f in 0..filters {
                    let idx: Vec<usize> = (0..per_filter).map(|k| at + index(f, k)).collect();
                    let d: Vec<f64> = idx.iter().map(|_| rng.sample::<f64, _>(StandardNormal)).collect();
                    let d_norm = d.iter().map(|v| v * v).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
                    let w_norm = idx.iter().map(|&i| (params[i] as f64).powi(2)).sum::<f64>().sqrt();
                    for (&i, v) in idx.iter().zip(d) {
                        dir[i] = v / d_norm * w_norm;
                    }
                }
            }
            at += len;
        }
        dir
    }
}

/// Flattens `model`, which must live on an autodiff device (that is how trainable tensors are
/// told from running statistics).
pub fn weights_of<M: Module>(model: &M) -> Weights {
    flatten(model, None)
}

/// Flattens `model`, telling parameters from running statistics by `trainable` (one flag per
/// tensor, in visiting order) or, without it, by whether a tensor takes a gradient.
fn flatten<M: Module>(model: &M, trainable: Option<&[bool]>) -> Weights {
    struct Flatten<'a> {
        weights: Weights,
        trainable: Option<&'a [bool]>,
        at: usize,
    }
    impl ModuleVisitor for Flatten<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = param.val();
            let trainable = self.trainable.map_or(value.is_require_grad(), |flags| flags[self.at]);
            self.at += 1;
            let data: Vec<f32> = value.into_data().convert::<f32>().try_to_vec().expect("f32 tensor");
            if trainable { &mut self.weights.params } else { &mut self.weights.buffers }.extend(data);
        }
    }
    let mut flat = Flatten { weights: Weights::default(), trainable, at: 0 };
    model.visit(&mut flat);
    flat.weights
}

/// Whether each tensor of `model` (on an autodiff device) takes a gradient, in visiting order.
fn trainable_flags<M: Module>(model: &M) -> Vec<bool> {
    struct Flags(Vec<bool>);
    impl ModuleVisitor for Flags {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.val().is_require_grad());
        }
    }
    let mut flags = Flags(Vec::new());
    model.visit(&mut flags);
    flags.0
}

/// `model` with no tensor taking a gradient. Its forward passes then record no saved state for a
/// backward pass (Burn's autodiff keeps a forward pass's graph until a backward pass frees it,
/// so forward passes alone on tracked weights grow memory without bound).
pub(crate) fn untracked<M: Module>(model: M) -> M {
    struct Untrack;
    impl ModuleMapper for Untrack {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            param.map(|t| t.set_require_grad(false))
        }
    }
    model.map(&mut Untrack)
}

/// `model` (on an autodiff device) with its parameters and running statistics replaced by
/// `params` and `buffers`, in the order [`weights_of`] writes them.
///
/// # Panics
/// If the lengths do not match the network.
pub fn with_weights<M: Module>(model: M, params: &[f32], buffers: &[f32]) -> M {
    load(model, params, Some(buffers))
}

/// [`with_weights`] in double precision: every tensor of the network becomes f64 (parameters
/// from `params` exactly, running statistics widened from f32).
///
/// # Panics
/// If the lengths do not match the network.
pub fn with_weights_f64<M: Module>(model: M, params: &[f64], buffers: &[f32]) -> M {
    load(model, params, Some(buffers))
}

/// `model` (on an autodiff device) with its parameters replaced by `params` and its running
/// statistics kept as they are.
///
/// # Panics
/// If the length does not match the network.
pub fn with_params<M: Module>(model: M, params: &[f32]) -> M {
    load(model, params, None)
}

/// `model` with its parameters from `params` and, when given, its running statistics from
/// `buffers`, every tensor in `params`' precision (f32 or f64).
fn load<M: Module, E: Element>(model: M, params: &[E], buffers: Option<&[f32]>) -> M {
    struct Load<'a, E> {
        params: &'a [E],
        buffers: Option<&'a [f32]>,
    }
    impl<E: Element> ModuleMapper for Load<'_, E> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            param.map(|t| {
                let shape = t.shape();
                let len = shape.num_elements();
                let trainable = t.is_require_grad();
                let data = if trainable {
                    assert!(self.params.len() >= len, "weights are shorter than the network");
                    let (head, tail) = self.params.split_at(len);
                    self.params = tail;
                    TensorData::new(head.to_vec(), shape)
                } else {
                    let Some(buffers) = &mut self.buffers else { return t };
                    assert!(buffers.len() >= len, "running statistics are shorter than the network");
                    let (head, tail) = buffers.split_at(len);
                    *buffers = tail;
                    TensorData::new(head.to_vec(), shape).convert::<E>()
                };
                let next = Tensor::<D>::from_data(data, (&t.device(), E::dtype()));
                if trainable { next.require_grad() } else { next }
            })
        }
    }
    let mut load = Load { params, buffers };
    let model = model.map(&mut load);
    assert!(load.params.is_empty() && load.buffers.is_none_or(|b| b.is_empty()), "weights are longer than the network");
    model
}

/// `model` with every training flag (batch norm's) set to `on`: off computes in inference mode
/// while still on the autodiff device; on normalizes by each batch's statistics.
fn set_training<M: Module>(model: M, on: bool) -> M {
    struct Set(bool);
    impl ModuleMapper for Set {
        fn map_flag(&mut self, flag: Param<Flag>) -> Param<Flag> {
            flag.with_value(self.0)
        }
    }
    model.map(&mut Set(on))
}

fn inference_mode<M: Module>(model: M) -> M {
    set_training(model, false)
}

pub(crate) fn training_mode<M: Module>(model: M) -> M {
    set_training(model, true)
}

/// The training loss of one network as a [`measure::Objective`] over its trainable parameters;
/// also evaluates loss and accuracy at any weights (for slices and planes).
pub struct TrainingLoss<'a> {
    inner: Box<dyn Erased + Send + 'a>,
    dim: usize,
}

impl<'a> TrainingLoss<'a> {
    /// Mean cross-entropy and accuracy (%) on `split` of the network at `params` (f64, rounded to
    /// f32) and `buffers`, in inference mode.
    pub fn evaluate(&mut self, params: &[f64], buffers: &[f32], split: &Split) -> (f64, f64) {
        self.inner.evaluate(params, buffers, split)
    }

    /// The logits on every sample of `split` of the network at `params` (rounded to f32) and
    /// `buffers`, in inference mode, sample after sample.
    pub fn logits(&mut self, params: &[f64], buffers: &[f32], split: &Split) -> Vec<f32> {
        self.inner.logits(params, buffers, split)
    }

    /// Fixes the running statistics used by [`value_grad`](measure::Objective::value_grad).
    pub fn set_buffers(&mut self, buffers: &[f32]) {
        self.inner.set_buffers(buffers);
    }

    /// This objective computed in double precision (f64 tensors throughout, no fused f32
    /// kernels): gradients then carry ~16 digits, so central differences of them can take steps
    /// small enough that no ReLU kink falls between x − hv and x + hv (see `measure::curvature`).
    pub fn double_precision(mut self) -> Self {
        self.inner.set_double(true);
        self
    }

    /// Batch norm's statistics recomputed at `params` on the whole training set, as running
    /// statistics (the order of [`Weights::buffers`]): each layer's mean and biased variance over
    /// the training samples, pooled exactly over chunks of the objective's chunk size, each
    /// layer's input computed with the earlier layers normalized by their chunk's own statistics
    /// (as training-mode forward passes do; with one chunk holding the whole set, every layer's
    /// statistics are exact). What SWA's `update_bn` does, with pooled rather than averaged
    /// variances. `None` for a network without batch norm.
    pub fn recomputed_buffers(&mut self, params: &[f64]) -> Option<Vec<f32>> {
        self.inner.recomputed_buffers(params)
    }
}

impl measure::Objective for TrainingLoss<'_> {
    fn dim(&self) -> usize {
        self.dim
    }

    fn value_grad(&mut self, x: &[f64], grad: &mut [f64]) -> f64 {
        self.inner.value_grad(x, grad)
    }
}

trait Erased {
    fn value_grad(&mut self, x: &[f64], grad: &mut [f64]) -> f64;
    fn evaluate(&mut self, params: &[f64], buffers: &[f32], split: &Split) -> (f64, f64);
    fn logits(&mut self, params: &[f64], buffers: &[f32], split: &Split) -> Vec<f32>;
    fn set_buffers(&mut self, buffers: &[f32]);
    fn set_double(&mut self, on: bool);
    fn recomputed_buffers(&mut self, params: &[f64]) -> Option<Vec<f32>>;
}

/// How many chunks of the training set are evaluated at once, each by its own copy of the
/// network. Their gradients are held until they are summed in chunk order, so the result does
/// not depend on the pool. Memory: that many copies and gradients, and one chunk's activations
/// per thread that works on the window (at most this many).
const CHUNKS_IN_FLIGHT: usize = 4;

/// Elements per block when the chunks' gradients are summed on the pool.
const SUM_BLOCK: usize = 1 << 14;

/// One chunk's gradient, flat in visiting order, in the precision it was computed in (summed
/// into f64 later: an f32 gradient is exact in f64).
pub(crate) enum FlatGradient {
    Single(Vec<f32>),
    Double(Vec<f64>),
}

impl FlatGradient {
    /// Adds elements `at..at + out.len()` of this gradient into `out` (exact for an f32
    /// gradient; every digit of an f64 one).
    pub(crate) fn add_into(&self, at: usize, out: &mut [f64]) {
        match self {
            FlatGradient::Single(g) => out.iter_mut().zip(&g[at..]).for_each(|(o, &v)| *o += v as f64),
            FlatGradient::Double(g) => out.iter_mut().zip(&g[at..]).for_each(|(o, &v)| *o += v),
        }
    }
}

/// One chunk's share of the training loss and its gradient: the chunk's mean cross-entropy
/// weighted by its share of the training set.
fn chunk_value_grad<M: Classifier>(
    model: &M,
    data: &Dataset,
    part: &[usize],
    double: bool,
    device: &Device,
    dim: usize,
) -> (f64, FlatGradient) {
    let ad = device.clone().autodiff();
    let (xb, yb) = batch(&data.train, part, data.sample_len(), &ad);
    let xb = if double { xb.cast(DType::F64) } else { xb };
    let loss = CrossEntropyLossConfig::new()
        .init(&ad)
        .forward(model.forward(xb, None), yb)
        .mul_scalar(part.len() as f64 / data.train.len() as f64);
    let value = loss.clone().into_scalar::<f64>();
    (value, flat_gradient(model, &loss.backward(), dim, double))
}

/// Every trainable tensor's gradient, in visiting order, as one vector (zeros where a tensor
/// has none), in f64 when `double`.
pub(crate) fn flat_gradient<M: Module>(model: &M, grads: &Gradients, dim: usize, double: bool) -> FlatGradient {
    struct Collect<'a> {
        grads: &'a Gradients,
        out: FlatGradient,
    }
    impl ModuleVisitor for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = param.val();
            if !value.is_require_grad() {
                return;
            }
            let len = value.shape().num_elements();
            let g = value.grad(self.grads).map(|g| g.into_data());
            match (&mut self.out, g) {
                (FlatGradient::Single(out), Some(g)) => {
                    out.extend_from_slice(g.convert::<f32>().as_slice::<f32>().expect("f32 gradient"))
                }
                (FlatGradient::Double(out), Some(g)) => {
                    out.extend_from_slice(g.convert::<f64>().as_slice::<f64>().expect("f64 gradient"))
                }
                (FlatGradient::Single(out), None) => out.resize(out.len() + len, 0.0),
                (FlatGradient::Double(out), None) => out.resize(out.len() + len, 0.0),
            }
        }
    }
    let out = match double {
        true => FlatGradient::Double(Vec::with_capacity(dim)),
        false => FlatGradient::Single(Vec::with_capacity(dim)),
    };
    let mut collect = Collect { grads, out };
    model.visit(&mut collect);
    let len = match &collect.out {
        FlatGradient::Single(v) => v.len(),
        FlatGradient::Double(v) => v.len(),
    };
    assert_eq!(len, dim, "gradient length differs from the parameter count");
    collect.out
}

impl<M: Classifier> State<'_, M> {
    /// Applies the running-statistics updates that training-mode forward passes leave pending
    /// per thread (their average goes into the shared value, which every later use overwrites
    /// when it loads its weights). Burn's running state is shared by every clone of
    /// `self.model`: left pending, an update would be averaged into the next recomputation of
    /// the statistics.
    fn sync_pending_updates(&self) {
        let _ = self.model.valid();
    }
}

struct State<'a, M: Classifier> {
    /// The network on the autodiff device, batch norm in inference mode for
    /// [`BatchNormMode::Running`], in training mode for [`BatchNormMode::Batch`].
    model: M,
    /// Batch norm's momentum (to read a batch's statistics back from the running ones).
    momentum: Option<f64>,
    buffers: Vec<f32>,
    data: &'a Dataset,
    chunk: usize,
    device: Device,
    /// Whether value and gradient are computed in f64.
    double: bool,
}

impl<M: Classifier> Erased for State<'_, M> {
    fn value_grad(&mut self, x: &[f64], grad: &mut [f64]) -> f64 {
        let single: Vec<f32> = if self.double { Vec::new() } else { x.iter().map(|&v| v as f32).collect() };
        let split = &self.data.train;
        let n = split.len();
        let idx: Vec<usize> = (0..n).collect();
        let parts: Vec<&[usize]> = idx.chunks(self.chunk.max(1)).collect();
        grad.iter_mut().for_each(|g| *g = 0.0);
        let mut value = 0.0;
        // One network per chunk of a window, each with its own autodiff leaves, so the chunks
        // of a window run on the pool's threads at once.
        let mut models: Vec<M> = (0..CHUNKS_IN_FLIGHT.min(parts.len()))
            .map(|_| match self.double {
                true => with_weights_f64(self.model.clone(), x, &self.buffers),
                false => with_weights(self.model.clone(), &single, &self.buffers),
            })
            .collect();
        for window in parts.chunks(CHUNKS_IN_FLIGHT) {
            let (data, device, double, dim) = (self.data, &self.device, self.double, grad.len());
            // Mutable borrows only to hand each network to one thread (the network is Send, not
            // Sync); nothing is changed through them.
            let done: Vec<(f64, FlatGradient)> = models
                .par_iter_mut()
                .zip(window.par_iter())
                .map(|(model, part)| chunk_value_grad(&*model, data, part, double, device, dim))
                .collect();
            // Summed in chunk order, element by element: the same sum, bit for bit, as one chunk
            // after another, on any pool (the blocks only split the elements).
            for (v, _) in &done {
                value += v;
            }
            grad.par_chunks_mut(SUM_BLOCK).enumerate().for_each(|(b, out)| {
                let at = b * SUM_BLOCK;
                for (_, g) in &done {
                    g.add_into(at, out);
                }
            });
        }
        self.sync_pending_updates();
        value
    }

    fn evaluate(&mut self, params: &[f64], buffers: &[f32], split: &Split) -> (f64, f64) {
        let params: Vec<f32> = params.iter().map(|&v| v as f32).collect();
        let model = with_weights(self.model.clone(), &params, buffers).valid();
        evaluate(&model, split, self.data.sample_len(), self.chunk, &self.device)
    }

    fn logits(&mut self, params: &[f64], buffers: &[f32], split: &Split) -> Vec<f32> {
        let params: Vec<f32> = params.iter().map(|&v| v as f32).collect();
        let model = with_weights(self.model.clone(), &params, buffers).valid();
        crate::train::logits(&model, split, self.data.sample_len(), self.chunk, &self.device)
    }

    fn set_buffers(&mut self, buffers: &[f32]) {
        assert_eq!(buffers.len(), self.buffers.len(), "running statistics of the wrong length");
        self.buffers = buffers.to_vec();
    }

    fn set_double(&mut self, on: bool) {
        self.double = on;
    }

    fn recomputed_buffers(&mut self, params: &[f64]) -> Option<Vec<f32>> {
        let momentum = self.momentum.filter(|&m| m > 0.0)?;
        let params: Vec<f32> = params.iter().map(|&v| v as f32).collect();
        let layout = layout_of(&self.model);
        // Burn's batch norm holds its running mean, then its running variance, of one length:
        // each variance's mean sits `len` entries before it.
        let paired = layout.buffers.chunks(2).all(|p| {
            p.len() == 2
                && p[0].shape == p[1].shape
                && p[0]
                    .path
                    .strip_suffix("running_mean")
                    .is_some_and(|l| Some(l) == p[1].path.strip_suffix("running_var"))
        });
        assert!(paired, "batch norm's running statistics are not (mean, variance) pairs");
        let ad = self.device.clone().autodiff();
        let trainable = trainable_flags(&self.model);
        let split = &self.data.train;
        let n = split.len();
        let idx: Vec<usize> = (0..n).collect();
        // Pooled first and second moments per statistic: Σ w·mean and Σ w·(var + mean²).
        let (mut first, mut second) = (vec![0.0f64; self.buffers.len()], vec![0.0f64; self.buffers.len()]);
        for part in idx.chunks(self.chunk.max(1)) {
            // Training mode from zeroed running statistics: after one forward pass each running
            // statistic is momentum × the chunk's own.
            let zero = vec![0.0f32; self.buffers.len()];
            // Untracked: training mode needs the autodiff device, but no backward pass follows.
            let model = untracked(training_mode(with_weights(self.model.clone(), &params, &zero)));
            let (xb, _) = batch(split, part, self.data.sample_len(), &ad);
            let _ = model.forward(xb, None);
            // Burn keeps a running-state update per thread until the module syncs it.
            let _ = model.valid();
            let chunk = flatten(&model, Some(&trainable)).buffers;
            let w = part.len() as f64 / n as f64;
            let mut at = 0;
            for info in &layout.buffers {
                let len: usize = info.shape.iter().product();
                if info.path.ends_with("running_mean") {
                    for i in at..at + len {
                        first[i] += w * chunk[i] as f64 / momentum;
                    }
                } else {
                    for i in at..at + len {
                        let mean = chunk[i - len] as f64 / momentum;
                        second[i] += w * (chunk[i] as f64 / momentum + mean * mean);
                    }
                }
                at += len;
            }
        }
        let mut out = vec![0.0f32; self.buffers.len()];
        let mut at = 0;
        for info in &layout.buffers {
            let len: usize = info.shape.iter().product();
            for i in at..at + len {
                out[i] = if info.path.ends_with("running_mean") {
                    first[i] as f32
                } else {
                    (second[i] - first[i - len] * first[i - len]).max(0.0) as f32
                };
            }
            at += len;
        }
        Some(out)
    }
}

impl NetSpec {
    /// Names and shapes of this network's tensors, in flattening order.
    pub fn layout(&self, device: &Device) -> Layout {
        struct Get;
        impl WithNet for Get {
            type Output = Layout;
            fn run<M: Classifier>(self, model: M) -> Layout {
                layout_of(&model)
            }
        }
        self.build(0, device, Get)
    }

    /// The weights this network starts from with init seed `seed` (what training with
    /// `RunSeeds { init: seed, .. }` and no warm start begins at).
    pub fn initial_weights(&self, seed: u64, device: &Device) -> Weights {
        struct Get;
        impl WithNet for Get {
            type Output = Weights;
            fn run<M: Classifier>(self, model: M) -> Weights {
                weights_of(&model)
            }
        }
        self.build(seed, device, Get)
    }

    /// Checks that `weights` fit this network: as many parameters and running statistics as it
    /// has. The error names both counts.
    pub fn check_weights(&self, weights: &Weights, device: &Device) -> Result<(), String> {
        let layout = self.layout(device);
        let count = |t: &[TensorInfo]| t.iter().map(|t| t.shape.iter().product::<usize>()).sum::<usize>();
        let (p, b) = (count(&layout.params), count(&layout.buffers));
        if weights.params.len() != p || weights.buffers.len() != b {
            return Err(format!(
                "the weights hold {} parameters and {} running statistics; this network has {p} and {b}",
                weights.params.len(),
                weights.buffers.len()
            ));
        }
        Ok(())
    }

    /// The training loss of this network at `weights` over `data.train`, evaluated in chunks of
    /// `chunk` samples on `device` (a plain device; gradients run on its autodiff wrapper), with
    /// batch norm in `mode`. With running statistics the chunk does not change the result; with
    /// batch statistics it is the evaluation batch.
    ///
    /// # Panics
    /// If `weights` do not fit the network (see [`check_weights`](NetSpec::check_weights)).
    pub fn training_loss<'a>(
        &self,
        weights: &Weights,
        data: &'a Dataset,
        chunk: usize,
        mode: BatchNormMode,
        device: &Device,
    ) -> TrainingLoss<'a> {
        struct Build<'w, 'a> {
            weights: &'w Weights,
            data: &'a Dataset,
            chunk: usize,
            mode: BatchNormMode,
            momentum: Option<f64>,
            device: Device,
        }
        impl<'a> WithNet for Build<'_, 'a> {
            type Output = TrainingLoss<'a>;
            fn run<M: Classifier>(self, model: M) -> TrainingLoss<'a> {
                let (weights, data, chunk, device) = (self.weights, self.data, self.chunk, self.device);
                let model = with_weights(model, &weights.params, &weights.buffers);
                let model = match self.mode {
                    BatchNormMode::Running => inference_mode(model),
                    BatchNormMode::Batch => training_mode(model),
                };
                let momentum = self.momentum;
                let state =
                    State { model, momentum, buffers: weights.buffers.clone(), data, chunk, device, double: false };
                TrainingLoss { inner: Box::new(state), dim: weights.params.len() }
            }
        }
        let momentum = self.batch_norm().map(|b| b.momentum);
        self.build(0, device, Build { weights, data, chunk, mode, momentum, device: device.clone() })
    }
}
