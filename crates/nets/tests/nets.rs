//! Parameter counts of the paper's networks, shapes of the scaled variants, determinism of
//! training, and agreement between the flex and ndarray backends.

use datasets::mnist1d;
use nets::init::BatchNormSettings;
use nets::mlp::{self, MlpSpec};
use nets::shallow::{self, ShallowSpec};
use nets::train::{NetSpec, RunSeeds, TrainConfig};
use nets::vgg::VggDropout;
use nets::vgg::{self, VggSpec};
use nets::{Backend, Classifier};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

mod common;

fn flex() -> nets::Device {
    Backend::Flex.device().expect("flex is a default feature")
}

#[test]
fn paper_parameter_counts() {
    // Weights, biases, BN scale and shift (Keskar nets as in the official code; our counts).
    let d = flex();
    assert_eq!(NetSpec::Mlp(mlp::f1()).parameter_count(&d), 1_462_794);
    assert_eq!(NetSpec::Shallow(shallow::c1()).parameter_count(&d), 1_757_834);
    assert_eq!(NetSpec::Shallow(shallow::c3()).parameter_count(&d), 1_775_204);
    assert_eq!(NetSpec::Vgg(vgg::c2()).parameter_count(&d), 14_991_946);
    assert_eq!(NetSpec::Vgg(vgg::c4()).parameter_count(&d), 15_038_116);
    // F2 as commonly given: 360·512+512 + 6·(512·512+512) + 7·1024 + 512·1973+1973.
    assert_eq!(NetSpec::Mlp(mlp::f2()).parameter_count(&d), 184_832 + 1_575_936 + 7_168 + 1_012_149);
}

fn logits_shape<M: Classifier>(model: &M, features: usize, device: &nets::Device) -> [usize; 2] {
    let x = burn::tensor::Tensor::<2>::zeros([3, features], device);
    model.valid().forward(x, None).dims()
}

#[test]
fn one_d_variants_map_signals_to_logits() {
    let d = flex();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let signal = [1, 1, 40];
    let c1 = ShallowSpec {
        input: signal,
        channels: 8,
        kernel: 5,
        dense: [16, 8],
        dropout: 0.5,
        classes: 10,
        norm: BatchNormSettings::default(),
    }
    .init(&mut rng, &d);
    assert_eq!(logits_shape(&c1, 40, &d), [3, 10]);
    let c2 = VggSpec {
        input: signal,
        stacks: vec![(4, 2), (8, 1)],
        dense: 8,
        classes: 10,
        norm: BatchNormSettings::default(),
        dropout: VggDropout::default(),
    }
    .init(&mut rng, &d);
    assert_eq!(logits_shape(&c2, 40, &d), [3, 10]);
    let f1 =
        MlpSpec { input: 40, width: 16, depth: 2, classes: 10, norm: BatchNormSettings::default() }.init(&mut rng, &d);
    assert_eq!(logits_shape(&f1, 40, &d), [3, 10]);
    // A 1-D C1 block has 1×5 kernels: 1·8·5+8 + 2·8 + 8·8·5+8 + 2·8 + (8·10)·16+16 + 32 + 16·8+8 + 16 + 8·10+10.
    let expected = 48 + 16 + 328 + 16 + 1296 + 32 + 136 + 16 + 90;
    assert_eq!(
        NetSpec::Shallow(ShallowSpec {
            input: signal,
            channels: 8,
            kernel: 5,
            dense: [16, 8],
            dropout: 0.5,
            classes: 10,
            norm: BatchNormSettings::default(),
        })
        .parameter_count(&d),
        expected
    );
}

#[test]
fn plain_relu_net_counts_and_shapes() {
    let d = flex();
    // Choromanska et al.'s one hidden layer on 10×10 images: 100·25 + 25 + 25·10 + 10.
    let one = nets::dense::DenseSpec { input: 100, hidden: vec![25], classes: 10 };
    assert_eq!(NetSpec::Dense(one.clone()).parameter_count(&d), 2_785);
    let two = nets::dense::DenseSpec { input: 40, hidden: vec![8, 6], classes: 3 };
    assert_eq!(NetSpec::Dense(two.clone()).parameter_count(&d), 40 * 8 + 8 + 8 * 6 + 6 + 6 * 3 + 3);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    assert_eq!(logits_shape(&two.init(&mut rng, &d), 40, &d), [3, 3]);
}

fn tiny_run(backend: Backend, spec: &NetSpec, epochs: usize) -> Vec<nets::train::EpochMetrics> {
    let data = mnist1d::generate(&mnist1d::Config { train: 128, test: 64, ..Default::default() });
    let config = TrainConfig { batch_size: 32, epochs, ..common::config() };
    spec.train(&data, &config, RunSeeds { init: 3, order: 4 }, None, &common::device(backend), &mut |_, _| {}).curves
}

fn tiny_mlp() -> NetSpec {
    NetSpec::Mlp(MlpSpec { input: 40, width: 16, depth: 2, classes: 10, norm: BatchNormSettings::default() })
}

#[test]
fn training_is_deterministic_and_learns() {
    let a = tiny_run(Backend::Flex, &tiny_mlp(), 5);
    let b = tiny_run(Backend::Flex, &tiny_mlp(), 5);
    assert_eq!(a, b, "same seeds, same curves");
    assert_eq!(a.len(), 6, "epoch 0 plus five epochs");
    assert!(a[5].train_loss < a[0].train_loss, "training lowers the loss: {} -> {}", a[0].train_loss, a[5].train_loss);
}

#[test]
fn dropout_nets_are_deterministic_in_parallel_threads() {
    // Each run draws dropout masks from its own generator, so threads do not interfere.
    // The shared conv net: batch norm and dropout ½.
    let spec = common::specs().remove(1);
    let alone = tiny_run(Backend::Flex, &spec, 2);
    let together: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3).map(|_| s.spawn(|| tiny_run(Backend::Flex, &spec, 2))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for run in together {
        assert_eq!(run, alone);
    }
}

#[cfg(feature = "ndarray")]
#[test]
fn flex_and_ndarray_train_alike() {
    // Same initial weights, batches and dropout masks; only float rounding differs.
    // The conv net of `common::specs`: batch norm and dropout.
    for spec in [tiny_mlp(), common::specs().remove(1)] {
        let flex = tiny_run(Backend::Flex, &spec, 3);
        let ndarray = tiny_run(Backend::Ndarray, &spec, 3);
        for (f, n) in flex.iter().zip(&ndarray) {
            assert!(
                (f.train_loss - n.train_loss).abs() < 1e-3,
                "epoch {}: flex {} vs ndarray {}",
                f.epoch,
                f.train_loss,
                n.train_loss
            );
            assert!(
                (f.test_loss - n.test_loss).abs() < 1e-3,
                "epoch {}: flex {} vs ndarray {}",
                f.epoch,
                f.test_loss,
                n.test_loss
            );
        }
    }
}

#[test]
fn stopping_rule_ends_training_once_the_loss_stops_improving() {
    // Patience 3: stop at the first epoch that is 3 epochs past the lowest training loss so far.
    let data = mnist1d::generate(&mnist1d::Config { train: 128, test: 64, ..Default::default() });
    let config = TrainConfig {
        batch_size: 32,
        epochs: 300,
        learning_rate: 3e-2,
        eval_batch: 64,
        shuffle: true,
        patience: Some(3),
        adam: Default::default(),
        init: Default::default(),
        evaluation: nets::objective::BatchNormMode::Running,
        ghost_batch: None,
    };
    let curves = tiny_mlp().train(&data, &config, RunSeeds { init: 3, order: 4 }, None, &flex(), &mut |_, _| {}).curves;
    let last = curves.len() - 1;
    assert!(last < 300, "a noisy run plateaus well before the cap");
    let best = (0..=last).min_by(|&a, &b| curves[a].train_loss.total_cmp(&curves[b].train_loss)).unwrap();
    assert_eq!(last - best, 3, "stopped 3 epochs after the best loss (epoch {best})");
    // Before that, no stretch of 3 epochs without a new minimum.
    let mut best_so_far = 0;
    for e in 1..last {
        if curves[e].train_loss < curves[best_so_far].train_loss {
            best_so_far = e;
        }
        assert!(e - best_so_far < 3, "should have stopped at epoch {e}");
    }
}

/// `--data`: each family takes a dataset's shape, and keeps the paper's shape on the paper's data.
#[test]
fn networks_adapt_to_the_datas_shape_and_keep_the_papers_on_its_data() {
    let f1 = NetSpec::Mlp(mlp::f1());
    let c1 = NetSpec::Shallow(shallow::c1());
    let c2 = NetSpec::Vgg(vgg::c2());
    // The paper's data: unchanged.
    assert_eq!(f1.adapted(&[1, 28, 28], 10, true).unwrap(), f1);
    assert_eq!(c1.adapted(&[3, 32, 32], 10, true).unwrap(), c1);
    assert_eq!(c2.adapted(&[3, 32, 32], 10, true).unwrap(), c2);
    // F1 on CIFAR-100: flattened input, 100 classes.
    let NetSpec::Mlp(m) = f1.adapted(&[3, 32, 32], 100, true).unwrap() else { panic!() };
    assert_eq!((m.input, m.classes, m.width, m.depth), (3072, 100, mlp::f1().width, mlp::f1().depth));
    // C1 on a 1-D signal: a height-1 image; on a 2-D sample: one channel.
    let NetSpec::Shallow(s) = c1.adapted(&[40], 10, true).unwrap() else { panic!() };
    assert_eq!(s.input, [1, 1, 40]);
    let NetSpec::Shallow(s) = c1.adapted(&[8, 8], 10, true).unwrap() else { panic!() };
    assert_eq!(s.input, [1, 8, 8]);
    // Refused, with the reason: features without a spatial layout; a VGG too deep for 8 × 8.
    let err = c1.adapted(&[360], 1973, false).unwrap_err();
    assert!(err.contains("spatial layout"), "{err}");
    let err = c2.adapted(&[1, 8, 8], 10, true).unwrap_err();
    assert!(err.contains("too small (at least 32)"), "{err}");
    // The adapted nets build and map a batch to logits of the data's classes.
    let device = flex();
    let NetSpec::Mlp(m) = f1.adapted(&[3, 4, 4], 7, true).unwrap() else { panic!() };
    let model = m.init(&mut ChaCha8Rng::seed_from_u64(0), &device);
    assert_eq!(logits_shape(&model, 48, &device), [3, 7]);
}
