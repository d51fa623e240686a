//! Adam training and evaluation, shared by every study.
//!
//! Keskar et al. train SB and LB alike with Adam (§2.2); the paper's metric is accuracy on the
//! train and test sets. Evaluation always runs the model in inference mode (batch norm on its
//! running statistics, no dropout), on the whole split, in fixed-size chunks.
//!
//! There is one training loop, [`train`], generic over what updates the weights ([`Update`]):
//! Adam (fused on flex, Burn's elsewhere) or a flat rule of the `optim` crate. The stopping rule
//! and the divergence check live in it, and the shuffle, dropout and noise streams each get their
//! own seed (derived from [`RunSeeds::order`]).

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Gradients;
use burn::tensor::{Device, Int, Tensor, TensorData};
use datasets::{Dataset, Split};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::baselines::BaselineSpec;
use crate::dense::DenseSpec;
use crate::mlp::MlpSpec;
use crate::objective::{BatchNormMode, Weights, weights_of, with_weights};
use crate::shallow::ShallowSpec;
use crate::vgg::VggSpec;
use crate::{Classifier, DropoutRng, parameter_count};

/// Any network flatland can build, as stored in a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "lowercase")]
pub enum NetSpec {
    /// F1/F2 family.
    Mlp(MlpSpec),
    /// C1/C3 family.
    Shallow(ShallowSpec),
    /// C2/C4 family.
    Vgg(VggSpec),
    /// An MNIST-1D baseline.
    Baseline(BaselineSpec),
    /// A plain ReLU network without batch norm.
    Dense(DenseSpec),
}

/// How one run trains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Minibatch size (samples per Adam step).
    pub batch_size: usize,
    /// Passes over the training set.
    pub epochs: usize,
    /// Adam step size (Keras' default 1e-3 in Keskar's code).
    pub learning_rate: f64,
    /// Samples per forward pass when evaluating (does not change the result: inference mode).
    pub eval_batch: usize,
    /// Reshuffle the training set every epoch (true), or take batches in order (the MNIST-1D
    /// baselines' setup).
    /// Stored only when false, so records of shuffled runs keep their shape.
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub shuffle: bool,
    /// Stopping rule: stop once the training loss has not reached a new minimum for this many
    /// epochs (`epochs` stays the cap). `None` trains exactly `epochs` epochs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patience: Option<usize>,
    /// Adam's constants (unused by the flat rules, which carry their own).
    pub adam: AdamConstants,
    /// How the weights are drawn (read as `torch` from records that predate it).
    #[serde(default)]
    pub init: Init,
    /// Which statistics batch norm normalizes by when the network is evaluated: the running
    /// ones (inference mode), or each evaluation batch's own (`eval_batch` samples, Keras 1's
    /// `BatchNormalization(mode=2)`). Read as `running` from records that predate it.
    #[serde(default = "running", skip_serializing_if = "is_running")]
    pub evaluation: BatchNormMode,
    /// Ghost batch norm (Hoffer et al. 2017): each minibatch goes through the network in
    /// consecutive pieces of this many samples, so batch norm normalizes each piece by its own
    /// statistics; the loss and its gradient are still the whole minibatch's. `None`: one piece.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ghost_batch: Option<usize>,
}

fn running() -> BatchNormMode {
    BatchNormMode::Running
}

fn is_running(mode: &BatchNormMode) -> bool {
    *mode == BatchNormMode::Running
}

/// How the weights are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// PyTorch's default: every weight and bias U(±1/√fan-in).
    #[default]
    Torch,
    /// Keras 1's default (Glorot & Bengio 2010, "glorot_uniform"): weights
    /// U(±√(6/(fan-in + fan-out))), biases zero ([`glorot_uniform`]).
    Glorot,
}

/// A set of conventions for initializing and evaluating a network: PyTorch's, or those of
/// Keskar et al.'s code. The networks and the training loop are shared; a protocol sets the
/// config's items ([`TrainConfig::with_protocol`]: [`Init`], the evaluation's batch-norm
/// statistics and batch) and batch norm's ε and momentum, which live in the network's spec
/// ([`Protocol::batch_norm`]). Records hold the items, each by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// PyTorch's conventions: weights and biases U(±1/√fan-in); batch norm ε = 1e-5, momentum
    /// 0.1; evaluation on the running statistics.
    #[default]
    Torch,
    /// Keskar et al.'s code (Keras 1 with Theano): Glorot-uniform weights U(±√(6/(fan-in +
    /// fan-out))) and zero biases; `BatchNormalization(mode=2)`, which normalizes by each batch's
    /// own statistics in training and in evaluation alike, evaluated in batches of
    /// [`Protocol::KERAS_EVAL_BATCH`]; Keras 1's ε = 1e-3 and momentum 0.99 (0.01 in PyTorch's
    /// convention, which [`BatchNormSettings`](crate::init::BatchNormSettings) uses).
    Keras,
}

impl Protocol {
    /// The evaluation batch of Keskar et al.'s code (`model.evaluate(..., batch_size=5000)`).
    pub const KERAS_EVAL_BATCH: usize = 5000;

    /// Batch norm's constants under this protocol.
    pub fn batch_norm(self) -> crate::init::BatchNormSettings {
        match self {
            Protocol::Torch => crate::init::BatchNormSettings::default(),
            Protocol::Keras => crate::init::BatchNormSettings { epsilon: 1e-3, momentum: 0.01 },
        }
    }

    /// The protocol whose items `config` and `norm` have, if one has them all.
    pub fn of(config: &TrainConfig, norm: Option<crate::init::BatchNormSettings>) -> Option<Protocol> {
        [Protocol::Torch, Protocol::Keras].into_iter().find(|&p| {
            let items = config.clone().with_protocol(p);
            items.init == config.init
                && items.evaluation == config.evaluation
                && (config.evaluation == BatchNormMode::Running || items.eval_batch == config.eval_batch)
                && norm.is_none_or(|n| n == p.batch_norm())
        })
    }
}

/// Adam's constants β₁, β₂ and ε (Kingma & Ba 2015, Alg. 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamConstants {
    /// Decay of the first moment.
    pub beta_1: f64,
    /// Decay of the second moment.
    pub beta_2: f64,
    /// Added to the root of the second moment.
    pub epsilon: f64,
}

impl Default for AdamConstants {
    /// β = (0.9, 0.999), ε = 1e-8: the paper's, and the default of Keras 1 and PyTorch alike.
    fn default() -> Self {
        AdamConstants { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-8 }
    }
}

impl TrainConfig {
    /// Adam at `learning_rate` and `batch_size` for `epochs`, shuffled every epoch, evaluated in
    /// chunks of 1000, no stopping rule, default constants.
    pub fn adam(batch_size: usize, epochs: usize, learning_rate: f64) -> TrainConfig {
        TrainConfig {
            batch_size,
            epochs,
            learning_rate,
            eval_batch: 1000,
            shuffle: true,
            patience: None,
            adam: AdamConstants::default(),
            init: Init::Torch,
            evaluation: BatchNormMode::Running,
            ghost_batch: None,
        }
    }

    /// This config with `protocol`'s initialization and evaluation (Keras: Glorot-uniform, and
    /// each evaluation batch of [`Protocol::KERAS_EVAL_BATCH`] normalized by its own statistics).
    pub fn with_protocol(self, protocol: Protocol) -> TrainConfig {
        match protocol {
            Protocol::Torch => TrainConfig { init: Init::Torch, evaluation: BatchNormMode::Running, ..self },
            Protocol::Keras => TrainConfig {
                init: Init::Glorot,
                evaluation: BatchNormMode::Batch,
                eval_batch: Protocol::KERAS_EVAL_BATCH,
                ..self
            },
        }
    }
}

fn yes() -> bool {
    true
}

fn is_yes(b: &bool) -> bool {
    *b
}

/// Seeds of one run, derived by the caller from the master seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSeeds {
    /// Initial weights.
    pub init: u64,
    /// The run's random streams: batch order, dropout masks and the noise of noisy rules each
    /// draw from their own generator, seeded from this one and the stream's name.
    pub order: u64,
}

impl RunSeeds {
    /// Seed of one stream of the run (SplitMix64 of `order` and the stream's index), so that
    /// adding dropout to a net does not change its batch order.
    pub fn stream(&self, stream: Stream) -> u64 {
        splitmix64_mix(self.order ^ (stream as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }
}

/// The output function of SplitMix64 (Steele, Lea & Flood 2014): a bijection of u64 whose
/// outputs for nearby inputs look independent, which every seed derivation uses.
pub fn splitmix64_mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The random streams of a training run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The permutation of the training set each epoch.
    Shuffle = 0,
    /// Dropout masks.
    Dropout = 1,
    /// The Gaussian noise of noisy gradient descent.
    Noise = 2,
}

/// Where a run stopped being finite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Divergence {
    /// The epoch being trained (1-based).
    pub epoch: usize,
    /// Minibatch steps completed in that epoch before the non-finite value was seen.
    pub step: usize,
    /// What was not finite: `loss` (the minibatch loss, checked every step) or `weights`
    /// (checked after every epoch).
    pub what: String,
    /// The minibatch loss at that step (NaN or ±∞ when `what` is `loss`).
    #[serde(with = "measure::nonfinite")]
    pub loss: f64,
}

/// Metrics after an epoch (epoch 0 is the initialization). Losses are mean cross-entropy,
/// accuracies percent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epochs completed.
    pub epoch: usize,
    /// Mean cross-entropy on the training set.
    #[serde(with = "measure::nonfinite")]
    pub train_loss: f64,
    /// Accuracy on the training set, %.
    #[serde(with = "measure::nonfinite")]
    pub train_acc: f64,
    /// Mean cross-entropy on the test set.
    #[serde(with = "measure::nonfinite")]
    pub test_loss: f64,
    /// Accuracy on the test set, %.
    #[serde(with = "measure::nonfinite")]
    pub test_acc: f64,
}

/// What one training run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trained {
    /// Trainable parameters of the network.
    pub parameters: usize,
    /// Metrics at initialization (epoch 0) and after every epoch.
    pub curves: Vec<EpochMetrics>,
    /// Where training stopped on a non-finite loss or weight (`None`: it did not). The curves
    /// then end at the last finite epoch, and the weights are those of the diverged step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diverged_at: Option<Divergence>,
    /// The final weights (not stored in records).
    #[serde(skip)]
    pub weights: Weights,
}

impl Trained {
    /// Whether training ran to its end without diverging (only such runs are measured and
    /// averaged).
    pub fn finished(&self) -> bool {
        self.diverged_at.is_none()
    }
}

/// What `on_epoch` is handed after each evaluation: the metrics, and the weights on demand
/// (flattening costs a copy of the network, so only callers that need them pay it).
pub type OnEpoch<'a> = dyn FnMut(&EpochMetrics, &dyn Fn() -> Weights) + 'a;

/// Something to do with a network of any family: [`NetSpec::build`] hands it the built network.
/// (The one place that matches on the family; everything else goes through it.)
pub trait WithNet {
    /// What it returns.
    type Output;
    /// Runs on the network, built on the autodiff device.
    fn run<M: Classifier>(self, model: M) -> Self::Output;
}

impl NetSpec {
    /// This network's shape for samples of `sample_shape` in `classes` classes: the F family
    /// and plain dense nets take the flattened sample; the C families take an image as it is
    /// (`[c, h, w]`; `[h, w]` is one channel) and a 1-D signal as an image of height 1, but need
    /// a `spatial` sample (not stacked features) big enough for their pools. With the data a
    /// network was defined for, the shape is unchanged. An error says what does not fit.
    pub fn adapted(&self, sample_shape: &[usize], classes: usize, spatial: bool) -> Result<NetSpec, String> {
        let flat: usize = sample_shape.iter().product();
        if flat == 0 || classes < 2 {
            return Err(format!("samples of shape {sample_shape:?} in {classes} classes cannot be learned"));
        }
        let image = || -> Result<[usize; 3], String> {
            if !spatial {
                return Err(format!(
                    "a convolutional network needs samples with a spatial layout (images or 1-D signals); these are feature vectors of {flat}"
                ));
            }
            match *sample_shape {
                [w] => Ok([1, 1, w]),
                [h, w] => Ok([1, h, w]),
                [c, h, w] => Ok([c, h, w]),
                _ => Err(format!(
                    "a convolutional network takes samples of 1 to 3 dimensions; these have shape {sample_shape:?}"
                )),
            }
        };
        Ok(match self {
            NetSpec::Mlp(s) => NetSpec::Mlp(MlpSpec { input: flat, classes, ..s.clone() }),
            NetSpec::Dense(s) => NetSpec::Dense(DenseSpec { input: flat, classes, ..s.clone() }),
            NetSpec::Shallow(s) => NetSpec::Shallow(ShallowSpec { input: image()?, classes, ..s.clone() }),
            NetSpec::Vgg(s) => {
                let input = image()?;
                let need = 1usize << s.stacks.len();
                let [_, h, w] = input;
                if w < need || (h != 1 && h < need) {
                    return Err(format!(
                        "a VGG net of {} stacks halves each side {} times; samples of {h} × {w} are too small (at least {need})",
                        s.stacks.len(),
                        s.stacks.len()
                    ));
                }
                NetSpec::Vgg(VggSpec { input, classes, ..s.clone() })
            }
            NetSpec::Baseline(b) => {
                let adapted = BaselineSpec { input: flat, classes, ..*b };
                if b.kind == crate::baselines::BaselineKind::Cnn {
                    image()?;
                    if adapted.cnn_length() < 1 || flat < 5 {
                        return Err(format!("the baseline CNN needs signals of at least 5 points; these have {flat}"));
                    }
                }
                NetSpec::Baseline(adapted)
            }
        })
    }

    /// Builds the network with weights drawn from `init_seed` on the autodiff wrapper of `device`
    /// and hands it to `f`.
    pub fn build<F: WithNet>(&self, init_seed: u64, device: &Device, f: F) -> F::Output {
        let mut rng = ChaCha8Rng::seed_from_u64(init_seed);
        let ad = device.clone().autodiff();
        match self {
            NetSpec::Mlp(s) => f.run(s.init(&mut rng, &ad)),
            NetSpec::Shallow(s) => f.run(s.init(&mut rng, &ad)),
            NetSpec::Vgg(s) => f.run(s.init(&mut rng, &ad)),
            NetSpec::Baseline(s) => f.run(s.init(&mut rng, &ad)),
            NetSpec::Dense(s) => f.run(s.init(&mut rng, &ad)),
        }
    }

    /// Trainable parameters of this network.
    pub fn parameter_count(&self, device: &Device) -> usize {
        struct Count;
        impl WithNet for Count {
            type Output = usize;
            fn run<M: Classifier>(self, model: M) -> usize {
                parameter_count(&model)
            }
        }
        self.build(0, device, Count)
    }

    /// Builds the network from `seeds.init` (or, for a warm start, loads `start`: the
    /// optimizer's state starts fresh either way) and trains it with Adam on `data`, calling
    /// `on_epoch` after the initial evaluation and after every epoch. `device` is a plain
    /// (non-autodiff) device; training runs on its autodiff wrapper.
    pub fn train(
        &self,
        data: &Dataset,
        config: &TrainConfig,
        seeds: RunSeeds,
        start: Option<&Weights>,
        device: &Device,
        on_epoch: &mut OnEpoch,
    ) -> Trained {
        self.train_with(data, config, seeds, None, start, device, on_epoch)
    }

    /// Like [`train`](NetSpec::train), but each step applies `rule` from the `optim` crate to the
    /// flat parameter vector (the same code that moves points on analytic surfaces); batch norm's
    /// running statistics still update in the forward pass.
    #[allow(clippy::too_many_arguments)]
    pub fn train_with_rule(
        &self,
        data: &Dataset,
        config: &TrainConfig,
        seeds: RunSeeds,
        rule: optim::Rule,
        start: Option<&Weights>,
        device: &Device,
        on_epoch: &mut OnEpoch,
    ) -> Trained {
        self.train_with(data, config, seeds, Some(rule), start, device, on_epoch)
    }

    #[allow(clippy::too_many_arguments)]
    fn train_with(
        &self,
        data: &Dataset,
        config: &TrainConfig,
        seeds: RunSeeds,
        rule: Option<optim::Rule>,
        start: Option<&Weights>,
        device: &Device,
        on_epoch: &mut OnEpoch,
    ) -> Trained {
        struct Run<'a, 'b> {
            data: &'a Dataset,
            config: &'a TrainConfig,
            seeds: RunSeeds,
            rule: Option<optim::Rule>,
            start: Option<&'a Weights>,
            device: &'a Device,
            on_epoch: &'a mut OnEpoch<'b>,
        }
        impl WithNet for Run<'_, '_> {
            type Output = Trained;
            fn run<M: Classifier>(self, model: M) -> Trained {
                let model = match (self.start, self.config.init) {
                    (Some(w), _) => with_weights(model, &w.params, &w.buffers),
                    (None, Init::Torch) => model,
                    (None, Init::Glorot) => glorot_uniform(model, self.seeds.init),
                };
                let parameters = parameter_count(&model);
                let (model, curves, diverged_at) = match self.rule {
                    None => {
                        let update = AdamUpdate(crate::fused::adam(self.config.adam));
                        train(model, self.data, self.config, self.seeds, update, self.device, self.on_epoch)
                    }
                    Some(rule) => {
                        let update = RuleUpdate::new(&model, rule, self.seeds.stream(Stream::Noise));
                        train(model, self.data, self.config, self.seeds, update, self.device, self.on_epoch)
                    }
                };
                Trained { parameters, curves, diverged_at, weights: weights_of(&model) }
            }
        }
        let run = Run { data, config, seeds, rule, start, device, on_epoch };
        self.build(seeds.init, device, run)
    }

    /// Batch norm's constants, for the families that have batch norm.
    pub fn batch_norm(&self) -> Option<crate::init::BatchNormSettings> {
        match self {
            NetSpec::Mlp(s) => Some(s.norm),
            NetSpec::Shallow(s) => Some(s.norm),
            NetSpec::Vgg(s) => Some(s.norm),
            NetSpec::Baseline(_) | NetSpec::Dense(_) => None,
        }
    }

    /// This network with batch norm's constants set to `settings` (unchanged for the families
    /// without batch norm).
    pub fn with_batch_norm(mut self, settings: crate::init::BatchNormSettings) -> NetSpec {
        match &mut self {
            NetSpec::Mlp(s) => s.norm = settings,
            NetSpec::Shallow(s) => s.norm = settings,
            NetSpec::Vgg(s) => s.norm = settings,
            NetSpec::Baseline(_) | NetSpec::Dense(_) => {}
        }
        self
    }

    /// Inputs and classes of this network.
    fn io(&self) -> (usize, usize) {
        match self {
            NetSpec::Mlp(s) => (s.input, s.classes),
            NetSpec::Shallow(s) => (s.input.iter().product(), s.classes),
            NetSpec::Vgg(s) => (s.input.iter().product(), s.classes),
            NetSpec::Baseline(_) => (40, 10),
            NetSpec::Dense(s) => (s.input, s.classes),
        }
    }
}

/// A timer of `spec`'s training throughput: builds the network, runs `warmup` untimed Adam
/// steps at `batch_size` on random inputs, and returns a function that runs `steps` more and
/// gives their samples per second (called once per repetition, so a benchmark can alternate
/// repetitions with another program's). `device` is a plain device; the threads are those of
/// the current rayon pool, so both calls belong inside the same pool.
pub fn step_timer(spec: &NetSpec, batch_size: usize, warmup: usize, device: &Device) -> Box<dyn FnMut(usize) -> f64> {
    struct Timer {
        shape: (usize, usize, usize),
        warmup: usize,
        ad: Device,
    }
    impl WithNet for Timer {
        type Output = Box<dyn FnMut(usize) -> f64>;
        fn run<M: Classifier>(self, model: M) -> Self::Output {
            timer(model, self.shape, self.warmup, self.ad)
        }
    }
    let (features, classes) = spec.io();
    spec.build(0, device, Timer { shape: (features, classes, batch_size), warmup, ad: device.clone().autodiff() })
}

fn timer<M: Classifier>(
    model: M,
    (features, classes, batch_size): (usize, usize, usize),
    warmup: usize,
    ad: Device,
) -> Box<dyn FnMut(usize) -> f64> {
    use rand::Rng;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let x: Vec<f32> = (0..batch_size * features).map(|_| rng.random_range(-1.0..1.0)).collect();
    let y: Vec<i64> = (0..batch_size).map(|i| (i % classes) as i64).collect();
    let loss_fn = CrossEntropyLossConfig::new().init(&ad);
    let mut optimizer = crate::fused::adam(AdamConstants::default());
    let mut dropout: DropoutRng = ChaCha8Rng::seed_from_u64(2);
    let mut step = move |model: M| {
        let xb = Tensor::<2>::from_data(TensorData::new(x.clone(), [batch_size, features]), &ad);
        let yb = Tensor::<1, Int>::from_data(TensorData::new(y.clone(), [batch_size]), &ad);
        let loss = loss_fn.forward(model.forward(xb, Some(&mut dropout)), yb);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let model = optimizer.step(1e-3, model, grads);
        // Wait for the step to finish (asynchronous GPU backends), so the timing is the work's.
        ad.sync().expect("device synchronizes");
        model
    };
    let mut model = Some((0..warmup).fold(model, |m, _| step(m)));
    Box::new(move |steps| {
        let start = std::time::Instant::now();
        let mut m = model.take().expect("the model is put back after every repetition");
        for _ in 0..steps {
            m = step(m);
        }
        model = Some(m);
        (steps * batch_size) as f64 / start.elapsed().as_secs_f64()
    })
}

/// Rows `idx` of `split` as a feature tensor `[n, features]` and a label tensor `[n]`.
pub fn batch(split: &Split, idx: &[usize], sample_len: usize, device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
    let mut x = Vec::with_capacity(idx.len() * sample_len);
    for &i in idx {
        x.extend_from_slice(&split.features[i * sample_len..(i + 1) * sample_len]);
    }
    let y: Vec<i64> = idx.iter().map(|&i| split.labels[i] as i64).collect();
    (
        Tensor::from_data(TensorData::new(x, [idx.len(), sample_len]), device),
        Tensor::from_data(TensorData::new(y, [idx.len()]), device),
    )
}

/// What moves the weights after each minibatch's backward pass.
pub trait Update<M: Classifier> {
    /// The model after one step at `learning_rate` from the gradients of the minibatch loss.
    fn step(&mut self, model: M, grads: Gradients, learning_rate: f64) -> M;
}

/// Adam as a Burn module optimizer (fused on flex).
struct AdamUpdate(ModuleOptimizer);

impl<M: Classifier> Update<M> for AdamUpdate {
    fn step(&mut self, model: M, grads: Gradients, learning_rate: f64) -> M {
        let grads = GradientsParams::from_grads(grads, &model);
        self.0.step(learning_rate, model, grads)
    }
}

/// A rule of the `optim` crate on the flat parameter vector (its own step size; the config's
/// learning rate is unused).
struct RuleUpdate {
    optimizer: optim::Optimizer,
    theta: Vec<f64>,
    grad: Vec<f64>,
}

impl RuleUpdate {
    fn new<M: Classifier>(model: &M, rule: optim::Rule, noise_seed: u64) -> RuleUpdate {
        let theta = weights_of(model).params_f64();
        let grad = vec![0.0; theta.len()];
        RuleUpdate { optimizer: optim::Optimizer::new(rule, theta.len(), noise_seed), theta, grad }
    }
}

impl<M: Classifier> Update<M> for RuleUpdate {
    fn step(&mut self, model: M, grads: Gradients, _learning_rate: f64) -> M {
        self.grad.iter_mut().for_each(|g| *g = 0.0);
        crate::objective::flat_gradient(&model, &grads, self.grad.len(), false).add_into(0, &mut self.grad);
        self.optimizer.step(&mut self.theta, &self.grad);
        let params: Vec<f32> = self.theta.iter().map(|&v| v as f32).collect();
        crate::objective::with_params(model, &params)
    }
}

/// Trains `model` (built on the autodiff wrapper of `device`) with `update` and returns it with
/// its curves and, if it diverged, where. Training stops at the first non-finite minibatch loss
/// (checked every step) or weight (checked after every epoch); the stopping rule of
/// `config.patience` ends it once the training loss has made no new minimum for that many epochs.
pub fn train<M: Classifier>(
    mut model: M,
    data: &Dataset,
    config: &TrainConfig,
    seeds: RunSeeds,
    mut update: impl Update<M>,
    device: &Device,
    on_epoch: &mut OnEpoch,
) -> (M, Vec<EpochMetrics>, Option<Divergence>) {
    let ad = device.clone().autodiff();
    let sample_len = data.sample_len();
    let loss_fn = CrossEntropyLossConfig::new().init(&ad);
    let mut shuffle = ChaCha8Rng::seed_from_u64(seeds.stream(Stream::Shuffle));
    let mut dropout: DropoutRng = ChaCha8Rng::seed_from_u64(seeds.stream(Stream::Dropout));
    let mut order: Vec<usize> = (0..data.train.len()).collect();

    let mut curves = vec![evaluate_epoch(&model, data, config, device, 0)];
    on_epoch(&curves[0], &|| weights_of(&model));
    for epoch in 1..=config.epochs {
        if config.shuffle {
            order.shuffle(&mut shuffle);
        }
        for (step, idx) in order.chunks(config.batch_size.max(1)).enumerate() {
            let (logits, y) = match config.ghost_batch {
                Some(ghost) if ghost < idx.len() => {
                    // Ghost batch norm: the pieces' logits, each normalized on its own.
                    let parts: Vec<Tensor<2>> = idx
                        .chunks(ghost.max(1))
                        .map(|piece| model.forward(batch(&data.train, piece, sample_len, &ad).0, Some(&mut dropout)))
                        .collect();
                    let labels: Vec<i64> = idx.iter().map(|&i| data.train.labels[i] as i64).collect();
                    (Tensor::cat(parts, 0), Tensor::from_data(TensorData::new(labels, [idx.len()]), &ad))
                }
                _ => {
                    let (x, y) = batch(&data.train, idx, sample_len, &ad);
                    (model.forward(x, Some(&mut dropout)), y)
                }
            };
            let loss = loss_fn.forward(logits, y);
            let value = loss.clone().into_scalar::<f32>() as f64;
            if !value.is_finite() {
                let what = "loss".to_string();
                return (model, curves, Some(Divergence { epoch, step, what, loss: value }));
            }
            model = update.step(model, loss.backward(), config.learning_rate);
        }
        if !weights_of(&model).params.iter().all(|v| v.is_finite()) {
            let steps = order.len().div_ceil(config.batch_size.max(1));
            let what = "weights".to_string();
            return (model, curves, Some(Divergence { epoch, step: steps, what, loss: f64::NAN }));
        }
        curves.push(evaluate_epoch(&model, data, config, device, epoch));
        on_epoch(curves.last().expect("just pushed"), &|| weights_of(&model));
        if let Some(patience) = config.patience {
            let best = curves
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.train_loss.total_cmp(&b.1.train_loss))
                .map(|(i, _)| i)
                .unwrap_or(0);
            if epoch - best >= patience {
                break;
            }
        }
    }
    (model, curves, None)
}

fn evaluate_epoch<M: Classifier>(
    model: &M,
    data: &Dataset,
    config: &TrainConfig,
    device: &Device,
    epoch: usize,
) -> EpochMetrics {
    let (len, chunk) = (data.sample_len(), config.eval_batch);
    let ((train_loss, train_acc), (test_loss, test_acc)) = match config.evaluation {
        BatchNormMode::Running => {
            let eval = model.valid();
            (evaluate(&eval, &data.train, len, chunk, device), evaluate(&eval, &data.test, len, chunk, device))
        }
        BatchNormMode::Batch => (
            score(&batch_statistics_logits(model, &data.train, len, chunk, device), &data.train),
            score(&batch_statistics_logits(model, &data.test, len, chunk, device), &data.test),
        ),
    };
    EpochMetrics { epoch, train_loss, train_acc, test_loss, test_acc }
}

/// The logits of `model` (on the autodiff wrapper of `device`) on every sample of `split`, batch
/// norm normalizing each consecutive batch of `chunk` samples by that batch's own mean and
/// biased variance (Keras 1's `BatchNormalization(mode=2)` in evaluation), without dropout. The
/// forward passes run on untracked weights (no graph is kept), and the running statistics are
/// left as they were.
pub fn batch_statistics_logits<M: Classifier>(
    model: &M,
    split: &Split,
    sample_len: usize,
    chunk: usize,
    device: &Device,
) -> Vec<f32> {
    // Training's last step left its running-statistics update queued (Burn's `RunningState`
    // applies it at the next read): apply it first, so that it is part of what is restored.
    drop(model.valid());
    let saved = weights_of(model);
    let probe = crate::objective::training_mode(crate::objective::untracked(model.clone()));
    let out = logits(&probe, split, sample_len, chunk, &device.clone().autodiff());
    // The passes queued updates of the running statistics, which every clone shares (Burn's
    // `RunningState`): apply them, then write the trained values back over them.
    drop(probe.valid());
    drop(with_weights(model.clone(), &saved.params, &saved.buffers));
    out
}

/// `model` with Keras 1's initialization (Glorot & Bengio 2010, "glorot_uniform"): every dense and
/// convolution weight U(±√(6/(fan-in + fan-out))), fans counting the kernel's window, every bias
/// zero; batch norm's scale and shift stay 1 and 0. Drawn from its own stream of `init_seed`.
pub fn glorot_uniform<M: Classifier>(model: M, init_seed: u64) -> M {
    use rand::Rng;
    let mut rng = ChaCha8Rng::seed_from_u64(splitmix64_mix(init_seed ^ 0x6b65_7261_735f_696e));
    let layout = crate::objective::layout_of(&model);
    let mut weights = weights_of(&model);
    let mut at = 0;
    for info in &layout.params {
        let len: usize = info.shape.iter().product();
        let values = &mut weights.params[at..at + len];
        if info.path.ends_with(".bias") {
            values.iter_mut().for_each(|v| *v = 0.0);
        } else if info.path.ends_with("weight") && info.shape.len() >= 2 {
            let (fan_in, fan_out) = glorot_fans(&info.shape);
            let bound = (6.0 / (fan_in + fan_out) as f64).sqrt();
            values.iter_mut().for_each(|v| *v = rng.random_range(-bound..bound) as f32);
        }
        at += len;
    }
    with_weights(model, &weights.params, &weights.buffers)
}

/// (fan-in, fan-out) of a weight as Keras 1 counts them: a dense weight `[in, out]` (Burn's
/// layout); a convolution kernel `[out, in, window…]` times the window's size.
pub fn glorot_fans(shape: &[usize]) -> (usize, usize) {
    match shape {
        [fan_in, fan_out] => (*fan_in, *fan_out),
        [out, input, window @ ..] => {
            let field: usize = window.iter().product();
            (input * field, out * field)
        }
        _ => (1, 1),
    }
}

/// Mean cross-entropy and accuracy (%) of `model` on `split`, in inference mode: `model` should be
/// a [`valid`](burn::module::Module::valid) snapshot and `device` a plain device.
pub fn evaluate<M: Classifier>(
    model: &M,
    split: &Split,
    sample_len: usize,
    chunk: usize,
    device: &Device,
) -> (f64, f64) {
    score(&logits(model, split, sample_len, chunk, device), split)
}

/// Mean cross-entropy and accuracy (%) of `logits` (sample after sample, as [`logits`] gives
/// them) against the labels of `split`.
pub fn score(logits: &[f32], split: &Split) -> (f64, f64) {
    let (mut loss, mut correct) = (0.0, 0usize);
    if !split.is_empty() {
        let classes = logits.len() / split.len();
        for (row, &label) in logits.chunks(classes).zip(&split.labels) {
            let (l, hit) = cross_entropy(row, label as usize);
            loss += l;
            correct += usize::from(hit);
        }
    }
    let n = split.len().max(1) as f64;
    (loss / n, 100.0 * correct as f64 / n)
}

/// The logits of `model` on every sample of `split`, sample after sample, computed `chunk`
/// samples at a time (as [`evaluate`] takes them).
pub fn logits<M: Classifier>(model: &M, split: &Split, sample_len: usize, chunk: usize, device: &Device) -> Vec<f32> {
    let idx: Vec<usize> = (0..split.len()).collect();
    let mut out = Vec::new();
    for part in idx.chunks(chunk.max(1)) {
        let (x, _) = batch(split, part, sample_len, device);
        out.extend(model.forward(x, None).into_data().try_to_vec::<f32>().expect("f32 logits"));
    }
    out
}

/// Cross-entropy of one row of logits against `label` (log-sum-exp in f64), and whether the
/// arg-max (first on ties) is the label.
pub fn cross_entropy(logits: &[f32], label: usize) -> (f64, bool) {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    let lse = max + logits.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln();
    let argmax = logits.iter().enumerate().fold(0, |best, (i, &v)| if v > logits[best] { i } else { best });
    (lse - logits[label] as f64, argmax == label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_entropy_of_uniform_logits_is_log_classes() {
        // Four equal logits: −log(1/4) = log 4; ties go to the first class.
        let (l, hit) = cross_entropy(&[0.0; 4], 0);
        assert!((l - 4f64.ln()).abs() < 1e-12);
        assert!(hit);
        // logits [2, 0]: loss of class 1 = log(e² + 1) ≈ 2.126928.
        let (l, hit) = cross_entropy(&[2.0, 0.0], 1);
        assert!((l - 2.1269280110429727).abs() < 1e-9);
        assert!(!hit);
    }

    #[test]
    fn each_stream_of_a_run_has_its_own_seed_from_the_order_seed_alone() {
        let s = RunSeeds { init: 1, order: 2 };
        let all = [s.stream(Stream::Shuffle), s.stream(Stream::Dropout), s.stream(Stream::Noise)];
        assert!(all[0] != all[1] && all[1] != all[2] && all[0] != all[2], "{all:?}");
        // The init seed does not enter; the order seed does.
        assert_eq!(s.stream(Stream::Dropout), RunSeeds { init: 9, order: 2 }.stream(Stream::Dropout));
        assert_ne!(s.stream(Stream::Dropout), RunSeeds { init: 1, order: 3 }.stream(Stream::Dropout));
    }
}
