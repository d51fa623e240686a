//! The network objective: flattening round-trips, the loss is the inference-mode training loss,
//! the gradient agrees with finite differences, and a warm start resumes from given weights.

use datasets::{Dataset, mnist1d};
use measure::Objective;
use nets::Backend;
use nets::objective::{BatchNormMode, Weights};
use nets::train::{NetSpec, RunSeeds, TrainConfig, Trained};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod common;
use common::{data, specs};

fn flex() -> nets::Device {
    common::device(Backend::Flex)
}

fn trained(spec: &NetSpec, data: &Dataset) -> Trained {
    common::trained(spec, data, Backend::Flex)
}

#[test]
fn training_loss_is_the_inference_mode_loss_of_the_trained_network() {
    let data = data();
    for spec in specs() {
        let run = trained(&spec, &data);
        assert_eq!(run.weights.params.len(), run.parameters);
        assert!(!run.weights.buffers.is_empty(), "batch norm's running statistics are flattened too");
        let mut obj = spec.training_loss(&run.weights, &data, 64, BatchNormMode::Running, &flex());
        let x = run.weights.params_f64();
        let mut g = vec![0.0; x.len()];
        let value = obj.value_grad(&x, &mut g);
        let last = run.curves.last().expect("curves");
        assert!(
            (value - last.train_loss).abs() < 1e-5,
            "{spec:?}: objective {value} vs evaluated train loss {}",
            last.train_loss
        );
        // Evaluating does not move batch norm's statistics: the same point gives the same value.
        let again = obj.value_grad(&x, &mut vec![0.0; x.len()]);
        assert_eq!(value, again);
        let (test_loss, test_acc) = obj.evaluate(&x, &run.weights.buffers, &data.test);
        assert!((test_loss - last.test_loss).abs() < 1e-5 && (test_acc - last.test_acc).abs() < 1e-9);
    }
}

/// Central difference of the objective along the unit vector v/‖v‖ with step h, and the
/// gradient's directional derivative.
fn directional(obj: &mut dyn Objective, x: &[f64], g: &[f64], v: &[f64], h: f64) -> (f64, f64) {
    let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
    let plus: Vec<f64> = x.iter().zip(v).map(|(a, b)| a + h * b / norm).collect();
    let minus: Vec<f64> = x.iter().zip(v).map(|(a, b)| a - h * b / norm).collect();
    let mut scratch = vec![0.0; x.len()];
    let fd = (obj.value_grad(&plus, &mut scratch) - obj.value_grad(&minus, &mut scratch)) / (2.0 * h);
    (fd, g.iter().zip(v).map(|(a, b)| a * b).sum::<f64>() / norm)
}

#[test]
fn gradient_agrees_with_central_differences() {
    let data = data();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    // Without batch norm the loss is smooth enough at this scale for a 2 % check (the f32 loss
    // rounds at ~1e-7, a few tenths of a percent of these differences).
    for spec in
        [NetSpec::Baseline(nets::baselines::BaselineSpec::MLP), NetSpec::Baseline(nets::baselines::BaselineSpec::CNN)]
    {
        let run = trained(&spec, &data);
        let mut obj = spec.training_loss(&run.weights, &data, 64, BatchNormMode::Running, &flex());
        let x = run.weights.params_f64();
        let mut g = vec![0.0; x.len()];
        obj.value_grad(&x, &mut g);
        for _ in 0..3 {
            let v: Vec<f64> = (0..x.len()).map(|_| rng.random_range(-1.0..1.0)).collect();
            let (fd, analytic) = directional(&mut obj, &x, &g, &v, 1e-2);
            assert!(
                (fd - analytic).abs() <= 0.02 * analytic.abs() + 1e-5,
                "{spec:?}: finite difference {fd} vs gradient {analytic}"
            );
        }
    }
    // Inference-mode batch norm divides by the running deviation, which magnifies the ReLU kinks
    // a finite step crosses: the difference quotient then converges to the gradient at rate O(h)
    // rather than O(h²). Check that it converges, under both batch-norm settings (under batch
    // statistics, to the gradient that flows through the batch's mean and variance).
    for spec in specs() {
        let run = trained(&spec, &data);
        for (mode, chunk) in [(BatchNormMode::Running, 64), (BatchNormMode::Batch, 100)] {
            let mut obj = spec.training_loss(&run.weights, &data, chunk, mode, &flex());
            let x = run.weights.params_f64();
            let mut g = vec![0.0; x.len()];
            obj.value_grad(&x, &mut g);
            let v: Vec<f64> = (0..x.len()).map(|_| rng.random_range(-1.0..1.0)).collect();
            let (coarse, analytic) = directional(&mut obj, &x, &g, &v, 1e-1);
            let (fine, _) = directional(&mut obj, &x, &g, &v, 1e-3);
            assert!(
                (fine - analytic).abs() < (coarse - analytic).abs() && (fine - analytic).abs() <= 0.05 * analytic.abs(),
                "{spec:?} {mode:?}: {coarse} at h = 0.1, {fine} at h = 0.001, gradient {analytic}"
            );
        }
    }
}

#[test]
fn warm_start_resumes_from_the_given_weights() {
    let data = data();
    let spec = &specs()[0];
    let run = trained(spec, &data);
    let config = TrainConfig { batch_size: 100, epochs: 1, ..common::config() };
    let mut at_start: Option<Weights> = None;
    let warm =
        spec.train(&data, &config, RunSeeds { init: 5, order: 6 }, Some(&run.weights), &flex(), &mut |m, weights| {
            if m.epoch == 0 {
                at_start = Some(weights());
            }
        });
    assert_eq!(at_start.as_ref(), Some(&run.weights));
    assert_eq!(warm.curves[0], nets::train::EpochMetrics { epoch: 0, ..run.curves.last().expect("curves").clone() });
}

#[test]
fn layout_interpolation_and_filter_normalized_directions() {
    let data = data();
    for spec in specs() {
        let run = trained(&spec, &data);
        let layout = spec.layout(&flex());
        let size =
            |v: &[nets::objective::TensorInfo]| v.iter().map(|t| t.shape.iter().product::<usize>()).sum::<usize>();
        assert_eq!(size(&layout.params), run.weights.params.len());
        assert_eq!(size(&layout.buffers), run.weights.buffers.len());
        assert!(
            layout.buffers.iter().all(|b| b.path.ends_with("running_mean") || b.path.ends_with("running_var")),
            "{:?}",
            layout.buffers
        );

        // Both ends of the line are the two networks; variances stay positive far outside.
        let other = trained(
            &spec,
            &mnist1d::generate(&mnist1d::Config { train: 200, test: 100, seed: 7, ..Default::default() }),
        )
        .weights;
        assert_eq!(run.weights.lerp(&other, 0.0, &layout), run.weights);
        assert_eq!(run.weights.lerp(&other, 1.0, &layout), other);
        let far = run.weights.lerp(&other, -1.0, &layout);
        let mut at = 0;
        for b in &layout.buffers {
            let len: usize = b.shape.iter().product();
            if b.path.ends_with("running_var") {
                assert!(far.buffers[at..at + len].iter().all(|&v| v > 0.0));
            }
            at += len;
        }

        // Each filter of the direction has its filter's norm; vectors get nothing.
        let dir = layout.filter_normalized_direction(&run.weights.params, &mut ChaCha8Rng::seed_from_u64(3));
        let mut at = 0;
        for t in &layout.params {
            let len: usize = t.shape.iter().product();
            if t.shape.len() == 1 {
                assert!(dir[at..at + len].iter().all(|&v| v == 0.0), "{} moves", t.path);
            } else {
                let first_filter: Vec<usize> = if t.shape.len() == 2 {
                    (0..t.shape[0]).map(|k| at + k * t.shape[1]).collect()
                } else {
                    (at..at + len / t.shape[0]).collect()
                };
                let d: f64 = first_filter.iter().map(|&i| dir[i] * dir[i]).sum::<f64>().sqrt();
                let w: f64 = first_filter.iter().map(|&i| (run.weights.params[i] as f64).powi(2)).sum::<f64>().sqrt();
                assert!((d - w).abs() < 1e-9 * w.max(1.0), "{}: {d} vs {w}", t.path);
            }
            at += len;
        }
    }
}

/// Three full-batch steps of Burn's optimizer and of `optim`'s rule from the same weights of a
/// network without batch norm or dropout; the largest difference of any parameter.
fn burn_vs_ours(mut burn_opt: burn::optim::ModuleOptimizer, rule: optim::Rule) -> f64 {
    use burn::nn::loss::CrossEntropyLossConfig;
    use burn::optim::GradientsParams;
    use nets::Classifier;
    let data = mnist1d::generate(&mnist1d::Config { train: 64, test: 8, ..Default::default() });
    let spec = NetSpec::Baseline(nets::baselines::BaselineSpec::MLP);
    let ad = flex().autodiff();
    let mut model = nets::baselines::BaselineSpec::MLP.init(&mut ChaCha8Rng::seed_from_u64(4), &ad);
    let start = nets::objective::weights_of(&model);
    let idx: Vec<usize> = (0..data.train.len()).collect();
    let lr = match rule {
        optim::Rule::Momentum { lr, .. }
        | optim::Rule::Nesterov { lr, .. }
        | optim::Rule::AdaGrad { lr }
        | optim::Rule::RmsProp { lr, .. }
        | optim::Rule::Adam { lr, .. }
        | optim::Rule::Gd { lr }
        | optim::Rule::NoisyGd { lr, .. } => lr,
    };
    let loss_fn = CrossEntropyLossConfig::new().init(&ad);
    for _ in 0..3 {
        let (x, y) = nets::train::batch(&data.train, &idx, data.sample_len(), &ad);
        let loss = loss_fn.forward(model.forward(x, None), y);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = burn_opt.step(lr, model, grads);
    }
    let burn_params = nets::objective::weights_of(&model).params;

    let mut obj = spec.training_loss(&start, &data, 64, BatchNormMode::Running, &flex());
    let mut theta = start.params_f64();
    let mut opt = optim::Optimizer::new(rule, theta.len(), 0);
    let mut g = vec![0.0; theta.len()];
    for _ in 0..3 {
        obj.value_grad(&theta, &mut g);
        opt.step(&mut theta, &g);
        // Burn keeps parameters in f32: round ours the same way after every step.
        theta.iter_mut().for_each(|t| *t = *t as f32 as f64);
    }
    theta.iter().zip(&burn_params).map(|(a, b)| (a - *b as f64).abs()).fold(0.0, f64::max)
}

#[test]
fn update_rules_match_burn_optimizers() {
    use burn::optim::momentum::MomentumConfig;
    use burn::optim::{AdaGradConfig, AdamConfig, RmsPropConfig, SgdConfig};
    let momentum = |nesterov| {
        SgdConfig::new().with_momentum(Some(MomentumConfig { momentum: 0.9, dampening: 0.0, nesterov })).init()
    };
    let cases = [
        ("momentum", burn_vs_ours(momentum(false), optim::Rule::Momentum { lr: 0.05, rho: 0.9 })),
        ("Nesterov", burn_vs_ours(momentum(true), optim::Rule::Nesterov { lr: 0.05, rho: 0.9 })),
        ("AdaGrad", burn_vs_ours(AdaGradConfig::new().with_epsilon(1e-10).init(), optim::Rule::AdaGrad { lr: 0.01 })),
        (
            "RMSProp",
            burn_vs_ours(
                RmsPropConfig::new().with_alpha(0.9).with_momentum(0.0).with_epsilon(1e-8).init(),
                optim::Rule::RmsProp { lr: 0.001, decay: 0.9, eps: 1e-8 },
            ),
        ),
        (
            "Adam",
            burn_vs_ours(
                AdamConfig::new().with_epsilon(1e-8).init(),
                optim::Rule::Adam { lr: 0.001, beta1: 0.9, beta2: 0.999, eps: 1e-8 },
            ),
        ),
    ];
    for (name, diff) in cases {
        assert!(diff < 1e-5, "{name}: largest parameter difference to Burn's optimizer after 3 steps is {diff}");
    }
}

#[test]
fn training_with_the_flat_adam_rule_matches_burns_adam() {
    // A network without batch norm or dropout, the same batches: the two trainings agree.
    let data = data();
    let spec = NetSpec::Baseline(nets::baselines::BaselineSpec::MLP);
    let config = TrainConfig { batch_size: 50, epochs: 2, ..common::config() };
    let seeds = RunSeeds { init: 1, order: 2 };
    let burn = spec.train(&data, &config, seeds, None, &flex(), &mut |_, _| {});
    let ours = spec.train_with_rule(
        &data,
        &config,
        seeds,
        optim::Rule::Adam { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 },
        None,
        &flex(),
        &mut |_, _| {},
    );
    for (a, b) in burn.curves.iter().zip(&ours.curves) {
        assert!(
            (a.train_loss - b.train_loss).abs() < 1e-4,
            "epoch {}: Burn {} vs flat rule {}",
            a.epoch,
            a.train_loss,
            b.train_loss
        );
    }
    assert!(ours.curves[2].train_loss < ours.curves[0].train_loss, "it learns");
}

/// `data` with its training split cut to samples `range`.
fn train_slice(data: &Dataset, range: std::ops::Range<usize>) -> Dataset {
    let len = data.sample_len();
    let mut out = data.clone();
    out.train.features = data.train.features[range.start * len..range.end * len].to_vec();
    out.train.labels = data.train.labels[range].to_vec();
    out
}

#[test]
fn batch_statistics_normalize_each_evaluation_batch_by_its_own_statistics() {
    let data = data();
    let n = data.train.len();
    for spec in specs() {
        let run = trained(&spec, &data);
        let x = run.weights.params_f64();
        let mut g = vec![0.0; x.len()];
        // Batches of 50: the loss is the mean of four objectives, each on exactly one batch.
        let batched = spec.training_loss(&run.weights, &data, 50, BatchNormMode::Batch, &flex()).value_grad(&x, &mut g);
        let parts: f64 = (0..n / 50)
            .map(|b| {
                let part = train_slice(&data, b * 50..(b + 1) * 50);
                let mut obj = spec.training_loss(&run.weights, &part, 50, BatchNormMode::Batch, &flex());
                obj.value_grad(&x, &mut vec![0.0; x.len()])
            })
            .sum::<f64>()
            / (n / 50) as f64;
        assert!((batched - parts).abs() < 1e-5, "{spec:?}: {batched} vs the batches' mean {parts}");
        // Running statistics ignore the partition; batch statistics do not.
        let whole = spec.training_loss(&run.weights, &data, n, BatchNormMode::Batch, &flex()).value_grad(&x, &mut g);
        assert!((whole - batched).abs() > 1e-4, "{spec:?}: batches of 50 and of {n} give {batched} and {whole}");
        // Running statistics recomputed on the whole set in one chunk make inference equal to
        // one batch of the whole set.
        let mut obj = spec.training_loss(&run.weights, &data, n, BatchNormMode::Running, &flex());
        let buffers = obj.recomputed_buffers(&x).expect("batch norm");
        assert_eq!(buffers.len(), run.weights.buffers.len());
        obj.set_buffers(&buffers);
        let inference = obj.value_grad(&x, &mut g);
        assert!((inference - whole).abs() < 1e-5, "{spec:?}: recomputed statistics give {inference}, batch {whole}");
        // Pooled over chunks, the first layer's statistics are still exact (its input does not
        // depend on earlier normalization): the first mean and variance agree with one chunk's.
        let mut chunked = spec.training_loss(&run.weights, &data, 64, BatchNormMode::Running, &flex());
        let pooled = chunked.recomputed_buffers(&x).expect("batch norm");
        let layout = spec.layout(&flex());
        let first: usize = layout.buffers[0].shape.iter().product();
        for i in 0..2 * first {
            assert!((pooled[i] - buffers[i]).abs() <= 1e-4 * (1.0 + buffers[i].abs()), "{spec:?}: entry {i}");
        }
    }
}

#[test]
fn double_precision_agrees_with_single_and_is_smooth_at_small_steps() {
    let data = data();
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let mut all = specs();
    all.push(NetSpec::Baseline(nets::baselines::BaselineSpec::CNN));
    all.push(NetSpec::Dense(nets::dense::DenseSpec { input: 40, hidden: vec![25], classes: 10 }));
    for spec in all {
        let run = trained(&spec, &data);
        let x = run.weights.params_f64();
        for mode in BatchNormMode::ALL {
            let mut single = spec.training_loss(&run.weights, &data, 100, mode, &flex());
            let mut double = spec.training_loss(&run.weights, &data, 100, mode, &flex()).double_precision();
            let (mut g32, mut g64) = (vec![0.0; x.len()], vec![0.0; x.len()]);
            let (f32_value, f64_value) = (single.value_grad(&x, &mut g32), double.value_grad(&x, &mut g64));
            assert!((f32_value - f64_value).abs() < 1e-5, "{spec:?} {mode:?}: {f32_value} vs {f64_value}");
            let norm = g64.iter().map(|g| g * g).sum::<f64>().sqrt();
            let diff = g32.iter().zip(&g64).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
            assert!(diff <= 1e-4 * norm, "{spec:?} {mode:?}: gradients differ by {diff} (norm {norm})");
            // In f64 a step of 1e-6 sees no kink on this data: the difference quotient matches
            // the gradient to many digits.
            let v: Vec<f64> = (0..x.len()).map(|_| rng.random_range(-1.0..1.0)).collect();
            let (fd, analytic) = directional(&mut double, &x, &g64, &v, 1e-6);
            assert!((fd - analytic).abs() <= 1e-6 * analytic.abs().max(1e-3), "{spec:?} {mode:?}: {fd} vs {analytic}");
        }
    }
}

/// Chunks run in parallel but are summed in a fixed order: loss and gradient are the same bits
/// on a pool of one thread and of three. A batch-statistics evaluation leaves no running-state
/// update behind: recomputed statistics after it equal those of a fresh objective.
#[test]
fn the_objective_does_not_depend_on_the_pool_and_leaves_no_state_behind() {
    let data = data();
    let pool = |threads| rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a pool");
    for spec in specs() {
        let run = trained(&spec, &data);
        let x = run.weights.params_f64();
        for mode in BatchNormMode::ALL {
            // Batches of 25: eight chunks, more than are in flight at once.
            let evaluate = |threads, double: bool| {
                let mut g = vec![0.0; x.len()];
                let obj = spec.training_loss(&run.weights, &data, 25, mode, &flex());
                let mut obj = if double { obj.double_precision() } else { obj };
                let value = pool(threads).install(|| obj.value_grad(&x, &mut g));
                // Then on this thread, after the pool's threads may have left their updates.
                let buffers = obj.recomputed_buffers(&x);
                (value.to_bits(), g.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), buffers)
            };
            // In f64 too, where the per-chunk networks hold f64 running statistics.
            let (one, three) = (evaluate(1, true), evaluate(3, true));
            assert!(one.0 == three.0 && one.1 == three.1, "{spec:?} {mode:?}: the pool changed the f64 objective");
            let (one, three) = (evaluate(1, false), evaluate(3, false));
            assert!(one.0 == three.0 && one.1 == three.1, "{spec:?} {mode:?}: the pool changed the objective");
            let mut fresh = spec.training_loss(&run.weights, &data, 25, mode, &flex());
            assert_eq!(three.2, fresh.recomputed_buffers(&x), "{spec:?} {mode:?}: state left behind");
        }
    }
}
