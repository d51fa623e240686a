//! Burn's Adam with its update fused into one parallel pass per parameter tensor on `flex`.
//!
//! Burn 0.22's Adam makes about eleven passes over every parameter tensor per step (each a
//! tensor operation with a fresh buffer, most of them single-threaded at F1's sizes): a tenth of
//! F1's training step at batch 256. Here the moments and the parameter are updated in place, in
//! one pass, with the same f32 arithmetic in the same order, so the weights are the ones Burn's
//! Adam gives, bit for bit (a test checks). Other backends run Burn's Adam itself.

use burn::optim::{AdamConfig, AdamState, ModuleOptimizer, Optimizer};
use burn::tensor::{Device, Tensor};

/// Adam (Kingma & Ba 2015, Alg. 1, in Burn's arrangement of the bias corrections).
#[derive(Clone)]
pub struct Adam {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    /// Burn's own Adam with the same settings, for tensors not on `flex`.
    reference: burn::optim::Adam,
}

/// Adam with these constants (in f32, as Burn computes), as a module optimizer.
pub fn adam(constants: crate::train::AdamConstants) -> ModuleOptimizer {
    let (beta_1, beta_2, epsilon) = (constants.beta_1 as f32, constants.beta_2 as f32, constants.epsilon as f32);
    let reference = AdamConfig::new().with_beta_1(beta_1).with_beta_2(beta_2).with_epsilon(epsilon).build();
    ModuleOptimizer::from(Adam { beta_1, beta_2, epsilon, reference })
}

impl Optimizer for Adam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: f64,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<AdamState<D>>,
    ) -> (Tensor<D>, Option<AdamState<D>>) {
        #[cfg(feature = "flex")]
        if flex::is_flex(&tensor) && flex::is_flex(&grad) {
            return flex::step(self, lr, tensor, grad, state);
        }
        self.reference.step(lr, tensor, grad, state)
    }

    fn to_device<const D: usize>(state: AdamState<D>, device: &Device) -> AdamState<D> {
        burn::optim::Adam::to_device(state, device)
    }
}

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

/// One Adam step over a slice of parameters `p`, moments `m` and `v`, gradient `g`, as Burn's
/// `AdaptiveMomentum::transform` and `Adam::step` compute it element by element:
/// m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², p ← p − lr · (c·m) / (√v + ε·√(1−β₂ᵗ)),
/// c = √(1−β₂ᵗ)/(1−β₁ᵗ).
fn update(adam: &Adam, lr: f32, time: i32, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
    use rayon::prelude::*;
    let (b1, b2) = (adam.beta_1, adam.beta_2);
    let (f1, f2) = (1.0 - b1, 1.0 - b2);
    let bias_correction2_sqrt = (1.0 - b2.powi(time)).sqrt();
    let combined = bias_correction2_sqrt / (1.0 - b1.powi(time));
    let eps = adam.epsilon * bias_correction2_sqrt;
    p.par_chunks_mut(CHUNK)
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK).zip(g.par_chunks(CHUNK)))
        .for_each(|((p, m), (v, g))| {
            for (((p, m), v), &g) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
                *m = *m * b1 + g * f1;
                *v = *v * b2 + (g * g) * f2;
                *p -= ((*m * combined) / (v.sqrt() + eps)) * lr;
            }
        });
}

#[cfg(feature = "flex")]
mod flex {
    use burn::backend::Flex;
    use burn::backend::flex::FlexTensor;
    use burn::optim::{AdamState, AdaptiveMomentumState};
    use burn::tensor::{DType, Tensor, TensorData};

    use super::{Adam, update};

    pub(super) fn is_flex<const D: usize>(t: &Tensor<D>) -> bool {
        t.clone().try_into_primitive::<Flex>().is_ok_and(|t| t.dtype() == DType::F32)
    }

    /// The tensor's values as a uniquely owned contiguous buffer: its own storage when nothing
    /// else holds it, a copy otherwise.
    fn owned<const D: usize>(t: Tensor<D>) -> FlexTensor {
        let t = t.try_into_primitive::<Flex>().expect("a flex tensor");
        if t.is_unique() && t.is_contiguous() && t.layout().start_offset() == 0 {
            t
        } else {
            let shape = t.layout().shape().clone();
            FlexTensor::from_data(TensorData::new(
                super::super::flex::floats(&super::super::flex::contiguous(&t)).to_vec(),
                shape,
            ))
        }
    }

    pub(super) fn step<const D: usize>(
        adam: &Adam,
        lr: f64,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<AdamState<D>>,
    ) -> (Tensor<D>, Option<AdamState<D>>) {
        let (time, m, v) = match state {
            Some(s) if s.momentum.max_moment_2.is_none() => {
                (s.momentum.time + 1, owned(s.momentum.moment_1), owned(s.momentum.moment_2))
            }
            _ => {
                let zeros = || FlexTensor::zeros(tensor.shape(), DType::F32);
                (1, zeros(), zeros())
            }
        };
        let (mut p, mut m, mut v) = (owned(tensor), m, v);
        let g = grad.try_into_primitive::<Flex>().expect("a flex tensor");
        let g = super::super::flex::contiguous(&g);
        update(
            adam,
            lr as f32,
            time as i32,
            p.try_storage_mut::<f32>().expect("owned"),
            m.try_storage_mut::<f32>().expect("owned"),
            v.try_storage_mut::<f32>().expect("owned"),
            super::super::flex::floats(&g),
        );
        let momentum =
            AdaptiveMomentumState::new(time, Tensor::from_primitive::<Flex>(m), Tensor::from_primitive::<Flex>(v));
        (Tensor::from_primitive::<Flex>(p), Some(AdamState::new(momentum)))
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::optim::{AdamConfig, GradientsParams};
    use burn::tensor::{Device, TensorData};
    use rand::SeedableRng;

    use crate::Classifier;
    use crate::mlp::MlpSpec;

    /// Five steps of F1-shaped training (with batch norm) under the fused Adam and under Burn's
    /// give the same weights, bit for bit.
    #[test]
    fn matches_burns_adam_bit_for_bit() {
        let device = Device::flex().autodiff();
        let spec =
            MlpSpec { input: 20, width: 16, depth: 2, classes: 3, norm: crate::init::BatchNormSettings::default() };
        let train = |mut optimizer: burn::optim::ModuleOptimizer| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
            let mut model = spec.init(&mut rng, &device);
            for step in 0..5 {
                let x: Vec<f32> = (0..8 * 20).map(|i| ((i * 37 + step * 11) % 17) as f32 / 17.0 - 0.5).collect();
                let x = burn::tensor::Tensor::<2>::from_data(TensorData::new(x, [8, 20]), &device);
                let loss = model.forward(x, None).powf_scalar(2.0).mean();
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = optimizer.step(1e-2, model, grads);
            }
            crate::objective::weights_of(&model)
        };
        let ours = train(super::adam(crate::train::AdamConstants::default()));
        let theirs = train(AdamConfig::new().with_epsilon(1e-8).init());
        assert!(ours.params.len() > 400);
        assert_eq!(ours.params, theirs.params);
    }
}
