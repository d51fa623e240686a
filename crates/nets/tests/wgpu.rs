//! The wgpu backend against flex on the same weights and data: the objective's loss and gradient
//! in single and double precision, and a short training run. Built only with `--features wgpu`;
//! on a machine without a GPU, Mesa's CPU Vulkan driver (lavapipe, Debian's
//! `mesa-vulkan-drivers`) serves. Command:
//! `cargo test --release -p nets --features wgpu --test wgpu -- --nocapture`.
#![cfg(feature = "wgpu")]

use measure::Objective;
use nets::Backend;
use nets::objective::BatchNormMode;

mod common;
use common::{data, device, specs, trained};

/// Relative distance between two vectors.
fn relative(a: &[f64], b: &[f64]) -> f64 {
    let diff = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
    diff / b.iter().map(|y| y * y).sum::<f64>().sqrt().max(f64::MIN_POSITIVE)
}

/// Loss and gradient at flex's trained weights agree across backends: within 1e-4 (relative)
/// in f32, where the backends sum in different orders, and within 1e-9 in f64 where the device
/// computes f64 `exp` and `log` exactly (not on Vulkan: see the next test).
#[test]
fn the_objective_on_wgpu_matches_flex_in_single_and_double_precision() {
    let data = data();
    let precisions: &[(bool, f64)] = match nets::backend::exact_f64_exp_log(&device(Backend::Wgpu)) {
        true => &[(false, 1e-4), (true, 1e-9)],
        false => &[(false, 1e-4)],
    };
    for spec in specs() {
        let run = trained(&spec, &data, Backend::Flex);
        let x = run.weights.params_f64();
        for mode in BatchNormMode::ALL {
            for &(double, tol) in precisions {
                let evaluate = |backend| {
                    let obj = spec.training_loss(&run.weights, &data, 100, mode, &device(backend));
                    let mut obj = if double { obj.double_precision() } else { obj };
                    let mut g = vec![0.0; x.len()];
                    let f = obj.value_grad(&x, &mut g);
                    (f, g)
                };
                let ((f_flex, g_flex), (f_wgpu, g_wgpu)) = (evaluate(Backend::Flex), evaluate(Backend::Wgpu));
                let (df, dg) = ((f_wgpu - f_flex).abs() / f_flex.abs(), relative(&g_wgpu, &g_flex));
                println!("{spec:?} {mode:?} f64={double}: loss {f_flex} vs {f_wgpu} ({df:.1e}), gradient {dg:.1e}");
                assert!(df <= tol && dg <= tol, "{spec:?} {mode:?} f64={double}: loss {df:.1e}, gradient {dg:.1e}");
            }
        }
    }
}

/// Three epochs of Adam from the same initial weights: the backends' per-epoch training losses
/// agree to 1e-3 (relative; their f32 sums differ in order, and the difference grows with the
/// steps).
#[test]
fn training_on_wgpu_follows_flex() {
    let data = data();
    for spec in specs() {
        let (flex, wgpu) = (trained(&spec, &data, Backend::Flex), trained(&spec, &data, Backend::Wgpu));
        for (a, b) in flex.curves.iter().zip(&wgpu.curves) {
            let d = (a.train_loss - b.train_loss).abs() / a.train_loss;
            println!("{spec:?} epoch {}: train loss {} vs {} ({d:.1e})", a.epoch, a.train_loss, b.train_loss);
            assert!(d <= 1e-3, "{spec:?} epoch {}: {} vs {}", a.epoch, a.train_loss, b.train_loss);
        }
        assert_eq!(flex.curves.len(), wgpu.curves.len());
    }
}

/// The f64 operations the objective uses give flex's values on wgpu, but for `exp` and `log`
/// where `exact_f64_exp_log` says they do not (lavapipe: wrong values; the measurement then
/// computes its f64 curvature on flex).
#[test]
fn f64_primitives_on_wgpu_match_flex() {
    use burn::tensor::{DType, Tensor, TensorData};
    let values: Vec<f64> = (0..64).map(|i| ((i * 37 % 23) as f64 - 11.0) / 7.0).collect();
    let run = |backend| {
        let device = device(backend);
        let a = Tensor::<2>::from_data(TensorData::new(values.clone(), [8, 8]), &device).cast(DType::F64);
        let results: Vec<(&str, Tensor<2>)> = vec![
            ("identity", a.clone()),
            ("add", a.clone() + a.clone()),
            ("mul", a.clone() * a.clone()),
            ("matmul", a.clone().matmul(a.clone())),
            ("exp", a.clone().exp()),
            ("log", a.clone().abs().add_scalar(1.0).log()),
            ("sqrt", a.clone().abs().sqrt()),
            ("sum_dim", a.clone().sum_dim(1)),
            ("max_dim", a.clone().max_dim(1)),
            ("relu", burn::tensor::activation::relu(a.clone())),
            ("div", a.clone() / a.clone().abs().add_scalar(1.0)),
            ("powf", a.clone().abs().powf_scalar(2.0)),
        ];
        results
            .into_iter()
            .map(|(name, t)| (name, t.into_data().convert::<f64>().try_to_vec::<f64>().expect("f64 data")))
            .collect::<Vec<_>>()
    };
    let (flex, wgpu) = (run(Backend::Flex), run(Backend::Wgpu));
    let mut wrong = Vec::new();
    for ((name, f), (_, w)) in flex.iter().zip(&wgpu) {
        let d = relative(w, f);
        println!("f64 {name}: relative difference {d:.1e}");
        // NaN counts as wrong.
        if d.is_nan() || d > 1e-12 {
            wrong.push(*name);
        }
    }
    let expected: &[&str] = match nets::backend::exact_f64_exp_log(&device(Backend::Wgpu)) {
        true => &[],
        false => &["exp", "log"],
    };
    assert_eq!(wrong, expected, "f64 operations that differ on wgpu");
    assert!(nets::backend::exact_f64_exp_log(&device(Backend::Flex)));
}
