//! The two protocols: Keras 1's Glorot-uniform initialization (bounds, variance, fans), its
//! `BatchNormalization(mode=2)` evaluation (each batch normalized by its own statistics, running
//! statistics untouched), and the protocol's place in a stored config.

use burn::module::Module;
use datasets::{Dataset, Split};
use nets::init::BatchNormSettings;
use nets::mlp::{self, MlpSpec};
use nets::objective::{layout_of, weights_of, with_weights};
use nets::train::{NetSpec, Protocol, RunSeeds, TrainConfig, batch_statistics_logits, glorot_fans, glorot_uniform};
use nets::{Backend, Classifier};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn flex() -> nets::Device {
    Backend::Flex.device().expect("flex is a default feature")
}

#[test]
fn glorot_uniform_has_keras_bounds_variance_and_zero_biases() {
    let ad = flex().autodiff();
    let model = mlp::f1().init(&mut ChaCha8Rng::seed_from_u64(0), &ad);
    let model = glorot_uniform(model, 7);
    let (layout, weights) = (layout_of(&model), weights_of(&model));
    let mut at = 0;
    let mut checked = 0;
    for info in &layout.params {
        let len: usize = info.shape.iter().product();
        let values: Vec<f64> = weights.params[at..at + len].iter().map(|&v| v as f64).collect();
        at += len;
        if info.path.ends_with(".bias") || info.path.ends_with(".beta") {
            assert!(values.iter().all(|&v| v == 0.0), "{}: not zero", info.path);
        } else if info.path.ends_with(".gamma") {
            assert!(values.iter().all(|&v| v == 1.0), "{}: not one", info.path);
        } else {
            // U(±b) with b = √(6/(fan-in + fan-out)): |w| < b, variance b²/3 = 2/(fan-in + fan-out).
            let (fan_in, fan_out) = (info.shape[0], info.shape[1]);
            let bound = (6.0 / (fan_in + fan_out) as f64).sqrt();
            assert!(values.iter().all(|v| v.abs() <= bound), "{}: outside ±{bound}", info.path);
            let mean = values.iter().sum::<f64>() / len as f64;
            let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (len - 1) as f64;
            let expected = 2.0 / (fan_in + fan_out) as f64;
            // The sample variance of n uniform draws has relative std √(0.8/n): 5120 draws (the
            // output layer) give 1.25 %, so 6 % is beyond four standard deviations.
            assert!((variance / expected - 1.0).abs() < 0.06, "{}: variance {variance} vs {expected}", info.path);
            assert!(values.iter().any(|v| v.abs() > 0.9 * bound), "{}: the draws fill the interval", info.path);
            checked += 1;
        }
    }
    assert_eq!(checked, 6, "five hidden layers and the output layer");
    // The same seed draws the same weights; the PyTorch draw is a different one.
    let again = glorot_uniform(mlp::f1().init(&mut ChaCha8Rng::seed_from_u64(0), &ad), 7);
    assert_eq!(weights_of(&again).params, weights.params);
    let torch = weights_of(&mlp::f1().init(&mut ChaCha8Rng::seed_from_u64(0), &ad));
    assert_ne!(torch.params, weights.params);
}

#[test]
fn glorot_fans_count_the_kernel_window() {
    // Keras 1: a dense [in, out] weight has fans (in, out); a conv kernel [out, in, kh, kw] has
    // fan-in in·kh·kw and fan-out out·kh·kw.
    assert_eq!(glorot_fans(&[784, 512]), (784, 512));
    assert_eq!(glorot_fans(&[64, 3, 5, 5]), (75, 1600));
    assert_eq!(glorot_fans(&[25, 1, 5]), (5, 125));
    // On a C1-family net every conv weight stays within its bound.
    let spec = nets::shallow::ShallowSpec { input: [3, 8, 8], dense: [16, 8], ..nets::shallow::c1() };
    let ad = flex().autodiff();
    let model = glorot_uniform(spec.init(&mut ChaCha8Rng::seed_from_u64(1), &ad), 3);
    let (layout, weights) = (layout_of(&model), weights_of(&model));
    let mut at = 0;
    for info in &layout.params {
        let len: usize = info.shape.iter().product();
        if info.shape.len() == 4 {
            let (fan_in, fan_out) = glorot_fans(&info.shape);
            let bound = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
            assert!(weights.params[at..at + len].iter().all(|v| v.abs() <= bound), "{}", info.path);
        }
        at += len;
    }
}

/// A random dataset of `n` samples with `features` features and `classes` classes.
fn random_split(n: usize, features: usize, classes: usize, seed: u64) -> Split {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Split {
        features: (0..n * features).map(|_| rng.random_range(-1.0..1.0)).collect(),
        labels: (0..n).map(|_| rng.random_range(0..classes as u32)).collect(),
    }
}

#[test]
fn mode_two_batch_norm_normalizes_each_evaluation_batch_by_its_own_statistics() {
    let (features, width, classes) = (6, 5, 3);
    let norm = Protocol::Keras.batch_norm();
    let spec = MlpSpec { input: features, width, depth: 1, classes, norm };
    let ad = flex().autodiff();
    let model = spec.init(&mut ChaCha8Rng::seed_from_u64(2), &ad);
    // Every parameter and running statistic away from its initial value, so that none of them
    // can be skipped unnoticed.
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let start = weights_of(&model);
    let params: Vec<f32> = start.params.iter().map(|_| rng.random_range(-1.0..1.0)).collect();
    let buffers: Vec<f32> = start.buffers.iter().map(|_| rng.random_range(0.5..1.5)).collect();
    let model = with_weights(model, &params, &buffers);
    let split = random_split(10, features, classes, 4);
    let chunk = 4; // batches of 4, 4 and 2
    let logits = batch_statistics_logits(&model, &split, features, chunk, &flex());

    // By hand: dense, then each batch's mean and biased variance, γ, β, ReLU, dense.
    let (w1, rest) = params.split_at(features * width);
    let (b1, rest) = rest.split_at(width);
    let (gamma, rest) = rest.split_at(width);
    let (beta, rest) = rest.split_at(width);
    let (w2, b2) = rest.split_at(width * classes);
    let layout = layout_of(&model);
    let paths: Vec<&str> = layout.params.iter().map(|t| t.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "hidden.0.linear.weight",
            "hidden.0.linear.bias",
            "hidden.0.norm.gamma",
            "hidden.0.norm.beta",
            "output.weight",
            "output.bias"
        ]
    );
    let mut expected = Vec::new();
    for rows in (0..split.len()).collect::<Vec<_>>().chunks(chunk) {
        let h: Vec<Vec<f64>> = rows
            .iter()
            .map(|&r| {
                let x = &split.features[r * features..(r + 1) * features];
                (0..width)
                    .map(|j| b1[j] as f64 + (0..features).map(|i| x[i] as f64 * w1[i * width + j] as f64).sum::<f64>())
                    .collect()
            })
            .collect();
        let n = h.len() as f64;
        for row in &h {
            let z: Vec<f64> = (0..width)
                .map(|j| {
                    let mean = h.iter().map(|r| r[j]).sum::<f64>() / n;
                    let var = h.iter().map(|r| (r[j] - mean).powi(2)).sum::<f64>() / n;
                    let y = gamma[j] as f64 * (row[j] - mean) / (var + norm.epsilon).sqrt() + beta[j] as f64;
                    y.max(0.0)
                })
                .collect();
            expected.extend(
                (0..classes).map(|k| b2[k] as f64 + (0..width).map(|j| z[j] * w2[j * classes + k] as f64).sum::<f64>()),
            );
        }
    }
    assert_eq!(logits.len(), expected.len());
    for (got, want) in logits.iter().zip(&expected) {
        assert!((*got as f64 - want).abs() < 1e-4 * (1.0 + want.abs()), "{got} vs {want}");
    }
    // The running statistics are what they were, and inference on them gives other logits.
    assert_eq!(weights_of(&model).buffers, buffers);
    let inference = nets::train::logits(&model.valid(), &split, features, chunk, &flex());
    assert!(inference.iter().zip(&logits).any(|(a, b)| (a - b).abs() > 1e-3));
    // A sample's logits depend on its batch-mates: the whole split as one batch differs.
    let whole = batch_statistics_logits(&model, &split, features, split.len(), &flex());
    assert!(whole.iter().zip(&logits).any(|(a, b)| (a - b).abs() > 1e-3));
}

#[test]
fn keras_training_evaluates_with_batch_statistics_and_leaves_running_statistics_to_training() {
    let (features, classes) = (6, 3);
    let data = Dataset {
        name: "random".into(),
        sample_shape: vec![features],
        classes,
        class_names: (0..classes).map(|c| c.to_string()).collect(),
        train: random_split(40, features, classes, 5),
        test: random_split(12, features, classes, 6),
        provenance: "test".into(),
    };
    let spec =
        NetSpec::Mlp(MlpSpec { input: features, width: 8, depth: 2, classes, norm: Protocol::Keras.batch_norm() });
    let config = TrainConfig { eval_batch: 5, ..TrainConfig::adam(10, 2, 1e-2).with_protocol(Protocol::Keras) };
    let seeds = RunSeeds { init: 1, order: 2 };
    let run = spec.train(&data, &config, seeds, None, &flex(), &mut |_, _| {});
    // The last epoch's test metrics are those of batch-statistics evaluation in batches of 5.
    struct Check<'a>(&'a nets::objective::Weights, &'a Dataset);
    impl nets::train::WithNet for Check<'_> {
        type Output = (f64, f64);
        fn run<M: Classifier>(self, model: M) -> (f64, f64) {
            let model = with_weights(model, &self.0.params, &self.0.buffers);
            nets::train::score(&batch_statistics_logits(&model, &self.1.test, 6, 5, &flex()), &self.1.test)
        }
    }
    let (loss, acc) = spec.build(0, &flex(), Check(&run.weights, &data));
    let last = run.curves.last().unwrap();
    assert_eq!((last.test_loss, last.test_acc), (loss, acc));
    // Evaluation leaves no trace in training: the same run evaluated on running statistics
    // trains to the same weights and the same running statistics (every step's update kept),
    // and its first epoch's metrics differ only by the evaluation.
    let running = TrainConfig { evaluation: nets::objective::BatchNormMode::Running, ..config.clone() };
    let other = spec.train(&data, &running, seeds, None, &flex(), &mut |_, _| {});
    assert_eq!(other.weights.params, run.weights.params);
    assert_eq!(other.weights.buffers, run.weights.buffers);
    assert_ne!(other.curves[1], run.curves[1]);
}

#[test]
fn ghost_batch_norm_steps_along_the_gradient_of_piecewise_normalized_batches() {
    // One SGD step on one minibatch of 8 in ghost batches of 4 must equal θ − η∇L, where L is
    // the mean loss over the 8 samples with each half normalized by its own statistics: the
    // training objective in batch-statistics mode with chunks of 4.
    let (features, classes) = (6, 3);
    let split = random_split(8, features, classes, 7);
    let data = Dataset {
        name: "random".into(),
        sample_shape: vec![features],
        classes,
        class_names: (0..classes).map(|c| c.to_string()).collect(),
        train: split.clone(),
        test: split,
        provenance: "test".into(),
    };
    let spec =
        NetSpec::Mlp(MlpSpec { input: features, width: 5, depth: 2, classes, norm: BatchNormSettings::default() });
    let seeds = RunSeeds { init: 3, order: 4 };
    let lr = 0.1;
    let base = TrainConfig { shuffle: false, eval_batch: 8, ..TrainConfig::adam(8, 1, lr) };
    let start = spec.train(&data, &TrainConfig { epochs: 0, ..base.clone() }, seeds, None, &flex(), &mut |_, _| {});
    let step = |ghost| {
        let config = TrainConfig { ghost_batch: ghost, ..base.clone() };
        spec.train_with_rule(&data, &config, seeds, optim::Rule::Gd { lr }, None, &flex(), &mut |_, _| {}).weights
    };
    let x = start.weights.params_f64();
    let mut grad = vec![0.0; x.len()];
    let mut objective = spec.training_loss(&start.weights, &data, 4, nets::objective::BatchNormMode::Batch, &flex());
    measure::Objective::value_grad(&mut objective, &x, &mut grad);
    let ghost = step(Some(4)).params;
    for ((after, before), g) in ghost.iter().zip(&x).zip(&grad) {
        let want = before - lr * g;
        assert!((*after as f64 - want).abs() < 1e-5 * (1.0 + want.abs()), "{after} vs {want}");
    }
    // Without ghost batches (or with a ghost batch as large as the minibatch) the step differs.
    let whole = step(None).params;
    assert_eq!(step(Some(8)).params, whole);
    assert!(whole.iter().zip(&ghost).any(|(a, b)| (a - b).abs() > 1e-5));
}

#[test]
fn the_protocol_round_trips_through_a_stored_config() {
    let keras = TrainConfig::adam(256, 20, 1e-3).with_protocol(Protocol::Keras);
    let json = serde_json::to_string(&keras).unwrap();
    // Each item is named in the record.
    assert!(json.contains(r#""init":"glorot""#) && json.contains(r#""evaluation":"batch""#), "{json}");
    assert!(json.contains(r#""eval_batch":5000"#), "{json}");
    let back: TrainConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, keras);
    assert_eq!(Protocol::of(&back, Some(Protocol::Keras.batch_norm())), Some(Protocol::Keras));
    // One item changed is no longer the protocol.
    let running = TrainConfig { evaluation: nets::objective::BatchNormMode::Running, ..keras.clone() };
    assert_eq!(Protocol::of(&running, Some(Protocol::Keras.batch_norm())), None);
    assert_eq!(Protocol::of(&keras, Some(BatchNormSettings::default())), None);
    let torch = serde_json::to_string(&TrainConfig::adam(256, 20, 1e-3)).unwrap();
    assert!(torch.contains(r#""init":"torch""#), "{torch}");
    // A config stored before the items existed reads as torch.
    let old = torch.replace(r#","init":"torch""#, "");
    assert!(!old.contains("init") && !old.contains("evaluation"), "{old}");
    let old: TrainConfig = serde_json::from_str(&old).unwrap();
    assert_eq!(Protocol::of(&old, Some(BatchNormSettings::default())), Some(Protocol::Torch));
    // Keras 1's batch-norm constants, in PyTorch's momentum convention.
    assert_eq!(Protocol::Keras.batch_norm(), BatchNormSettings { epsilon: 1e-3, momentum: 0.01 });
    assert_eq!(Protocol::Torch.batch_norm(), BatchNormSettings::default());
}
