//! Adam training and evaluation, shared by every study.
//!
//! Keskar et al. train SB and LB alike with Adam (§2.2); the paper's metric is accuracy on the
//! train and test sets. Evaluation always runs the model in inference mode (batch norm on its
//! running statistics, no dropout), on the whole split, in fixed-size chunks.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use datasets::{Dataset, Split};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::baselines::BaselineSpec;
use crate::mlp::MlpSpec;
use crate::objective::{Weights, weights_of, with_weights};
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
    /// Batch order and dropout masks.
    pub order: u64,
}

/// Metrics after an epoch (epoch 0 is the initialization). Losses are mean cross-entropy,
/// accuracies percent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epochs completed.
    pub epoch: usize,
    /// Mean cross-entropy on the training set.
    pub train_loss: f64,
    /// Accuracy on the training set, %.
    pub train_acc: f64,
    /// Mean cross-entropy on the test set.
    pub test_loss: f64,
    /// Accuracy on the test set, %.
    pub test_acc: f64,
}

/// What one training run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trained {
    /// Trainable parameters of the network.
    pub parameters: usize,
    /// Metrics at initialization (epoch 0) and after every epoch.
    pub curves: Vec<EpochMetrics>,
    /// The final weights (not stored in records).
    #[serde(skip)]
    pub weights: Weights,
}

/// What `on_epoch` is handed after each evaluation: the metrics, and the weights on demand
/// (flattening costs a copy of the network, so only callers that need them pay it).
pub type OnEpoch<'a> = dyn FnMut(&EpochMetrics, &dyn Fn() -> Weights) + 'a;

impl NetSpec {
    /// Trainable parameters of this network.
    pub fn parameter_count(&self, device: &Device) -> usize {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let ad = device.clone().autodiff();
        match self {
            NetSpec::Mlp(s) => parameter_count(&s.init(&mut rng, &ad)),
            NetSpec::Shallow(s) => parameter_count(&s.init(&mut rng, &ad)),
            NetSpec::Vgg(s) => parameter_count(&s.init(&mut rng, &ad)),
            NetSpec::Baseline(s) => parameter_count(&s.init(&mut rng, &ad)),
        }
    }

    /// Builds the network from `seeds.init` (or, for a warm start, loads `start`: Adam's state
    /// starts fresh either way) and trains it with Adam on `data`, calling `on_epoch` after the
    /// initial evaluation and after every epoch. `device` is a plain (non-autodiff) device;
    /// training runs on its autodiff wrapper.
    pub fn train(
        &self,
        data: &Dataset,
        config: &TrainConfig,
        seeds: RunSeeds,
        start: Option<&Weights>,
        device: &Device,
        on_epoch: &mut OnEpoch,
    ) -> Trained {
        let mut rng = ChaCha8Rng::seed_from_u64(seeds.init);
        let ad = device.clone().autodiff();
        fn run<M: Classifier>(
            model: M,
            data: &Dataset,
            config: &TrainConfig,
            seeds: RunSeeds,
            start: Option<&Weights>,
            device: &Device,
            on_epoch: &mut OnEpoch,
        ) -> Trained {
            let model = match start {
                Some(w) => with_weights(model, &w.params, &w.buffers),
                None => model,
            };
            let parameters = parameter_count(&model);
            let (model, curves) = train(model, data, config, seeds, device, on_epoch);
            Trained { parameters, curves, weights: weights_of(&model) }
        }
        match self {
            NetSpec::Mlp(s) => run(s.init(&mut rng, &ad), data, config, seeds, start, device, on_epoch),
            NetSpec::Shallow(s) => run(s.init(&mut rng, &ad), data, config, seeds, start, device, on_epoch),
            NetSpec::Vgg(s) => run(s.init(&mut rng, &ad), data, config, seeds, start, device, on_epoch),
            NetSpec::Baseline(s) => run(s.init(&mut rng, &ad), data, config, seeds, start, device, on_epoch),
        }
    }
}

/// A timer of `spec`'s training throughput: builds the network, runs `warmup` untimed Adam
/// steps at `batch_size` on random inputs, and returns a function that runs `steps` more and
/// gives their samples per second (called once per repetition, so a benchmark can alternate
/// repetitions with another program's). `device` is a plain device; the threads are those of
/// the current rayon pool, so both calls belong inside the same pool.
pub fn step_timer(spec: &NetSpec, batch_size: usize, warmup: usize, device: &Device) -> Box<dyn FnMut(usize) -> f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let ad = device.clone().autodiff();
    let (features, classes) = match spec {
        NetSpec::Mlp(s) => (s.input, s.classes),
        NetSpec::Shallow(s) => (s.input.iter().product(), s.classes),
        NetSpec::Vgg(s) => (s.input.iter().product(), s.classes),
        NetSpec::Baseline(_) => (40, 10),
    };
    let shape = (features, classes, batch_size);
    match spec {
        NetSpec::Mlp(s) => timer(s.init(&mut rng, &ad), shape, warmup, ad),
        NetSpec::Shallow(s) => timer(s.init(&mut rng, &ad), shape, warmup, ad),
        NetSpec::Vgg(s) => timer(s.init(&mut rng, &ad), shape, warmup, ad),
        NetSpec::Baseline(s) => timer(s.init(&mut rng, &ad), shape, warmup, ad),
    }
}

fn timer<M: Classifier + 'static>(
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
    let mut optimizer = crate::fused::adam(1e-8);
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

/// Trains `model` (built on the autodiff wrapper of `device`) and returns it with its curves.
pub fn train<M: Classifier>(
    mut model: M,
    data: &Dataset,
    config: &TrainConfig,
    seeds: RunSeeds,
    device: &Device,
    on_epoch: &mut OnEpoch,
) -> (M, Vec<EpochMetrics>) {
    let ad = device.clone().autodiff();
    let sample_len = data.sample_len();
    let loss_fn = CrossEntropyLossConfig::new().init(&ad);
    let mut optimizer = crate::fused::adam(1e-8);
    let mut rng: DropoutRng = ChaCha8Rng::seed_from_u64(seeds.order);
    let mut order: Vec<usize> = (0..data.train.len()).collect();

    let mut curves = vec![evaluate_epoch(&model, data, config, device, 0)];
    on_epoch(&curves[0], &|| weights_of(&model));
    for epoch in 1..=config.epochs {
        if config.shuffle {
            order.shuffle(&mut rng);
        }
        for idx in order.chunks(config.batch_size) {
            let (x, y) = batch(&data.train, idx, sample_len, &ad);
            let logits = model.forward(x, Some(&mut rng));
            let loss = loss_fn.forward(logits, y);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(config.learning_rate, model, grads);
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
    (model, curves)
}

/// Trains `model` like [`train`], but each step applies `rule` from the `optim` crate to the flat
/// parameter vector (the same code that moves points on analytic surfaces); batch norm's running
/// statistics still update in the forward pass. The noise of noisy GD is drawn from `seeds.order`.
pub fn train_with_rule<M: Classifier>(
    mut model: M,
    data: &Dataset,
    config: &TrainConfig,
    seeds: RunSeeds,
    rule: optim::Rule,
    device: &Device,
    on_epoch: &mut OnEpoch,
) -> (M, Vec<EpochMetrics>) {
    let ad = device.clone().autodiff();
    let sample_len = data.sample_len();
    let loss_fn = CrossEntropyLossConfig::new().init(&ad);
    let mut rng: DropoutRng = ChaCha8Rng::seed_from_u64(seeds.order);
    let mut order: Vec<usize> = (0..data.train.len()).collect();
    let mut theta = weights_of(&model).params_f64();
    let mut optimizer = optim::Optimizer::new(rule, theta.len(), seeds.order);
    let mut grad = vec![0.0; theta.len()];
    let mut curves = vec![evaluate_epoch(&model, data, config, device, 0)];
    on_epoch(&curves[0], &|| weights_of(&model));
    for epoch in 1..=config.epochs {
        if config.shuffle {
            order.shuffle(&mut rng);
        }
        for idx in order.chunks(config.batch_size) {
            let (x, y) = batch(&data.train, idx, sample_len, &ad);
            let loss = loss_fn.forward(model.forward(x, Some(&mut rng)), y);
            let grads = loss.backward();
            grad.iter_mut().for_each(|g| *g = 0.0);
            crate::objective::accumulate(&model, &grads, &mut grad);
            optimizer.step(&mut theta, &grad);
            let buffers = weights_of(&model).buffers;
            let params: Vec<f32> = theta.iter().map(|&v| v as f32).collect();
            model = with_weights(model, &params, &buffers);
        }
        curves.push(evaluate_epoch(&model, data, config, device, epoch));
        on_epoch(curves.last().expect("just pushed"), &|| weights_of(&model));
    }
    (model, curves)
}

impl NetSpec {
    /// Builds the network from `seeds.init` (or loads `start`) and trains it with `rule` (see
    /// [`train_with_rule`]).
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
        let mut rng = ChaCha8Rng::seed_from_u64(seeds.init);
        let ad = device.clone().autodiff();
        #[allow(clippy::too_many_arguments)]
        fn run<M: Classifier>(
            model: M,
            data: &Dataset,
            config: &TrainConfig,
            seeds: RunSeeds,
            rule: optim::Rule,
            start: Option<&Weights>,
            device: &Device,
            on_epoch: &mut OnEpoch,
        ) -> Trained {
            let model = match start {
                Some(w) => with_weights(model, &w.params, &w.buffers),
                None => model,
            };
            let parameters = parameter_count(&model);
            let (model, curves) = train_with_rule(model, data, config, seeds, rule, device, on_epoch);
            Trained { parameters, curves, weights: weights_of(&model) }
        }
        match self {
            NetSpec::Mlp(s) => run(s.init(&mut rng, &ad), data, config, seeds, rule, start, device, on_epoch),
            NetSpec::Shallow(s) => run(s.init(&mut rng, &ad), data, config, seeds, rule, start, device, on_epoch),
            NetSpec::Vgg(s) => run(s.init(&mut rng, &ad), data, config, seeds, rule, start, device, on_epoch),
            NetSpec::Baseline(s) => run(s.init(&mut rng, &ad), data, config, seeds, rule, start, device, on_epoch),
        }
    }
}

fn evaluate_epoch<M: Classifier>(
    model: &M,
    data: &Dataset,
    config: &TrainConfig,
    device: &Device,
    epoch: usize,
) -> EpochMetrics {
    let eval = model.valid();
    let (train_loss, train_acc) = evaluate(&eval, &data.train, data.sample_len(), config.eval_batch, device);
    let (test_loss, test_acc) = evaluate(&eval, &data.test, data.sample_len(), config.eval_batch, device);
    EpochMetrics { epoch, train_loss, train_acc, test_loss, test_acc }
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
    let idx: Vec<usize> = (0..split.len()).collect();
    let (mut loss, mut correct) = (0.0, 0usize);
    for part in idx.chunks(chunk.max(1)) {
        let (x, _) = batch(split, part, sample_len, device);
        let logits: Vec<f32> = model.forward(x, None).into_data().try_to_vec().expect("f32 logits");
        let classes = logits.len() / part.len();
        for (row, &i) in logits.chunks(classes).zip(part) {
            let (l, hit) = cross_entropy(row, split.labels[i] as usize);
            loss += l;
            correct += usize::from(hit);
        }
    }
    let n = split.len().max(1) as f64;
    (loss / n, 100.0 * correct as f64 / n)
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
}
