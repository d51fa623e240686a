//! The MNIST-1D generator (Greydanus & Kobak, "Scaling down deep learning with MNIST-1D", 2020/2024).
//!
//! Ten 12-point templates are padded, stretched, shifted, filled with correlated noise, perturbed
//! with i.i.d. noise, sheared and resampled to 40 points. The steps, their order and the defaults
//! follow the paper's reference generator; randomness comes from a seeded ChaCha generator, so
//! agreement with the published pickle is statistical, not bitwise.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::{Dataset, Split};

/// The ten digit templates, 12 points each, before normalization.
pub const TEMPLATES: [[f64; 12]; 10] = [
    [5., 6., 6.5, 6.75, 7., 7., 7., 7., 6.75, 6.5, 6., 5.],
    [5., 3., 3., 3.4, 3.8, 4.2, 4.6, 5., 5.4, 5.8, 5., 5.],
    [5., 6., 6.5, 6.5, 6., 5.25, 4.75, 4., 3.5, 3.5, 4., 5.],
    [5., 6., 6.5, 6.5, 6., 5., 5., 6., 6.5, 6.5, 6., 5.],
    [5., 4.4, 3.8, 3.2, 2.6, 2.6, 5., 5., 5., 5., 5., 5.],
    [5., 3., 3., 3., 3., 5., 6., 6.5, 6.5, 6., 4.5, 5.],
    [5., 4., 3.5, 3.25, 3., 3., 3., 3., 3.25, 3.5, 4., 5.],
    [5., 7., 7., 6.6, 6.2, 5.8, 5.4, 5., 4.6, 4.2, 5., 5.],
    [5., 4., 3.5, 3.5, 4., 5., 5., 4., 3.5, 3.5, 4., 5.],
    [5., 4., 3.5, 3.5, 4., 5., 5., 5., 5., 4.7, 4.3, 5.],
];

/// Generator settings; [`Default`] gives the reference defaults (4000 train / 1000 test, seed 42).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Training samples.
    pub train: usize,
    /// Test samples.
    pub test: usize,
    /// Seed of the generator.
    pub seed: u64,
    /// Smallest number of zeros appended to a template (36).
    pub min_padding: usize,
    /// Largest number of zeros appended to a template (60).
    pub max_padding: usize,
    /// Amplitude scale: a sample is multiplied by `1 + scale_coeff · (u − ½)` (0.4).
    pub scale_coeff: f64,
    /// Circular shifts are drawn from `0..max_translation` (48).
    pub max_translation: usize,
    /// Scale of the correlated background noise (0.25).
    pub corr_noise_scale: f64,
    /// Standard deviation, in samples, of the Gaussian filter smoothing that noise (2).
    pub corr_noise_sigma: f64,
    /// Scale of the i.i.d. noise added everywhere (0.02).
    pub iid_noise_scale: f64,
    /// Shear: a ramp times `shear_scale · (u − ½)` is subtracted (0.75).
    pub shear_scale: f64,
    /// Length of the final signal (40).
    pub final_len: usize,
    /// Permute the 40 positions with one fixed permutation (the "shuffled" variant).
    pub shuffle_positions: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            train: 4000,
            test: 1000,
            seed: 42,
            min_padding: 36,
            max_padding: 60,
            scale_coeff: 0.4,
            max_translation: 48,
            corr_noise_scale: 0.25,
            corr_noise_sigma: 2.0,
            iid_noise_scale: 0.02,
            shear_scale: 0.75,
            final_len: 40,
            shuffle_positions: false,
        }
    }
}

/// The normalized template of `digit`: zero mean and unit (population) std, shifted to start at 0,
/// divided by 6.
pub fn template(digit: usize) -> [f64; 12] {
    let t = TEMPLATES[digit];
    let mean = t.iter().sum::<f64>() / 12.0;
    let std = (t.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 12.0).sqrt();
    let z: Vec<f64> = t.iter().map(|v| (v - mean) / std).collect();
    let mut out = [0.0; 12];
    for (o, v) in out.iter_mut().zip(&z) {
        *o = (v - z[0]) / 6.0;
    }
    out
}

/// Linear interpolation of `x` (taken on evenly spaced positions over [0, 1]) at `len` evenly
/// spaced positions over [0, 1].
pub fn resample(x: &[f64], len: usize) -> Vec<f64> {
    let n = x.len();
    (0..len)
        .map(|i| {
            let pos = if len == 1 { 0.0 } else { i as f64 / (len - 1) as f64 * (n - 1) as f64 };
            let lo = (pos.floor() as usize).min(n - 1);
            let hi = (lo + 1).min(n - 1);
            let w = pos - lo as f64;
            x[lo] * (1.0 - w) + x[hi] * w
        })
        .collect()
}

/// Gaussian filter with standard deviation `sigma`, radius `4σ` rounded, and reflecting borders
/// (`d c b a | a b c d | d c b a`, SciPy's `reflect` mode).
pub fn gaussian_filter(x: &[f64], sigma: f64) -> Vec<f64> {
    let radius = (4.0 * sigma + 0.5) as isize;
    let kernel: Vec<f64> = (-radius..=radius).map(|k| (-(k * k) as f64 / (2.0 * sigma * sigma)).exp()).collect();
    let total: f64 = kernel.iter().sum();
    let n = x.len() as isize;
    let reflect = |mut i: isize| -> usize {
        // Fold into [0, 2n) then mirror the upper half; works for any offset.
        i = i.rem_euclid(2 * n);
        (if i < n { i } else { 2 * n - 1 - i }) as usize
    };
    (0..n)
        .map(|i| kernel.iter().enumerate().map(|(j, k)| k * x[reflect(i + j as isize - radius)]).sum::<f64>() / total)
        .collect()
}

/// One sample of class `digit`, following the reference transformations in order.
pub fn sample(digit: usize, cfg: &Config, rng: &mut impl Rng) -> Vec<f64> {
    let len = 12 + cfg.max_padding;
    // 1. template (+1e-8 so that no template point is exactly 0), then p appended zeros.
    let padding = cfg.min_padding + (rng.random::<f64>() * (cfg.max_padding - cfg.min_padding + 1) as f64) as usize;
    let mut x: Vec<f64> = template(digit).iter().map(|v| v + 1e-8).collect();
    x.extend(std::iter::repeat_n(0.0, padding));
    // 2. resample to 72 points.
    let x = resample(&x, len);
    // 3. scale the amplitude.
    let scale = 1.0 + cfg.scale_coeff * (rng.random::<f64>() - 0.5);
    let x: Vec<f64> = x.iter().map(|v| v * scale).collect();
    // 4. circular shift right by k.
    let k = rng.random_range(0..cfg.max_translation);
    let mut shifted = vec![0.0; len];
    for (i, v) in x.iter().enumerate() {
        shifted[(i + k) % len] = *v;
    }
    // 5. the exact zeros (the padding) become smoothed Gaussian noise.
    let noise: Vec<f64> = (0..len).map(|_| cfg.corr_noise_scale * rng.sample::<f64, _>(StandardNormal)).collect();
    let noise = gaussian_filter(&noise, cfg.corr_noise_sigma);
    let mut x: Vec<f64> = shifted.iter().zip(&noise).map(|(v, n)| if *v == 0.0 { *n } else { *v }).collect();
    // 6. i.i.d. noise everywhere.
    for v in &mut x {
        *v += cfg.iid_noise_scale * rng.sample::<f64, _>(StandardNormal);
    }
    // 7. shear by a ramp from −½ to ½.
    let c = cfg.shear_scale * (rng.random::<f64>() - 0.5);
    for (i, v) in x.iter_mut().enumerate() {
        *v -= c * (i as f64 / (len - 1) as f64 - 0.5);
    }
    // 8. resample to the final length.
    resample(&x, cfg.final_len)
}

/// Generates the dataset: classes in turn, permuted, optionally position-shuffled, standardized
/// with the global mean and std of all values, then split into train and test.
pub fn generate(cfg: &Config) -> Dataset {
    let total = cfg.train + cfg.test;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut rows: Vec<(Vec<f64>, u32)> = Vec::with_capacity(total);
    for digit in 0..10 {
        let count = total / 10 + usize::from(digit < total % 10);
        for _ in 0..count {
            rows.push((sample(digit, cfg, &mut rng), digit as u32));
        }
    }
    // Fisher-Yates, deterministic from the same generator.
    for i in (1..rows.len()).rev() {
        let j = rng.random_range(0..=i);
        rows.swap(i, j);
    }
    if cfg.shuffle_positions {
        let mut perm: Vec<usize> = (0..cfg.final_len).collect();
        for i in (1..perm.len()).rev() {
            let j = rng.random_range(0..=i);
            perm.swap(i, j);
        }
        for (x, _) in &mut rows {
            *x = perm.iter().map(|&p| x[p]).collect();
        }
    }
    let values = (total * cfg.final_len) as f64;
    let mean = rows.iter().flat_map(|(x, _)| x).sum::<f64>() / values;
    let std = (rows.iter().flat_map(|(x, _)| x).map(|v| (v - mean).powi(2)).sum::<f64>() / values).sqrt();
    let split = |rows: &[(Vec<f64>, u32)]| Split {
        features: rows.iter().flat_map(|(x, _)| x.iter().map(|v| ((v - mean) / std) as f32)).collect(),
        labels: rows.iter().map(|(_, y)| *y).collect(),
    };
    Dataset {
        name: "mnist1d".into(),
        sample_shape: vec![cfg.final_len],
        classes: 10,
        class_names: (0..10).map(|d| d.to_string()).collect(),
        train: split(&rows[..cfg.train]),
        test: split(&rows[cfg.train..]),
        provenance: format!(
            "MNIST-1D generated by flatland (Greydanus & Kobak defaults), seed {}, {} train / {} test{}",
            cfg.seed,
            cfg.train,
            cfg.test,
            if cfg.shuffle_positions { ", positions shuffled" } else { "" }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_start_and_end_at_zero_with_unit_spread() {
        for d in 0..10 {
            let t = template(d);
            assert_eq!(t[0], 0.0);
            assert!(t[11].abs() < 1e-12, "digit {d} ends at {}", t[11]);
            // Population std of the normalized template is 1/6.
            let mean = t.iter().sum::<f64>() / 12.0;
            let std = (t.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 12.0).sqrt();
            assert!((std - 1.0 / 6.0).abs() < 1e-12);
        }
    }

    #[test]
    fn resample_is_linear_interpolation() {
        // [0, 1, 2] on 0, ½, 1 read at 0, ¼, ½, ¾, 1.
        assert_eq!(resample(&[0.0, 1.0, 2.0], 5), vec![0.0, 0.5, 1.0, 1.5, 2.0]);
    }

    #[test]
    fn gaussian_filter_keeps_constants_and_mass() {
        let c = gaussian_filter(&[3.0; 20], 2.0);
        assert!(c.iter().all(|v| (v - 3.0).abs() < 1e-12));
        // Reflecting borders conserve the sum of a signal far from the edges.
        let mut spike = vec![0.0; 41];
        spike[20] = 1.0;
        let s = gaussian_filter(&spike, 2.0);
        assert!((s.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(s[20] > s[19] && (s[19] - s[21]).abs() < 1e-15);
    }

    #[test]
    fn default_shapes_and_class_balance() {
        let d = generate(&Config::default());
        assert_eq!(d.sample_shape, vec![40]);
        assert_eq!(d.train.len(), 4000);
        assert_eq!(d.test.len(), 1000);
        assert_eq!(d.train.features.len(), 4000 * 40);
        assert_eq!(d.test.features.len(), 1000 * 40);
        // 500 per class in all; a random split leaves each class near 400 / 100.
        let train = d.train.class_counts(10);
        let test = d.test.class_counts(10);
        for c in 0..10 {
            assert_eq!(train[c] + test[c], 500);
            assert!((340..=460).contains(&train[c]), "class {c}: {} train samples", train[c]);
        }
    }

    #[test]
    fn standardized_over_all_values() {
        let d = generate(&Config::default());
        let all: Vec<f64> = d.train.features.iter().chain(&d.test.features).map(|&v| v as f64).collect();
        let mean = all.iter().sum::<f64>() / all.len() as f64;
        let var = all.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / all.len() as f64;
        assert!(mean.abs() < 1e-5, "mean {mean}");
        assert!((var - 1.0).abs() < 1e-4, "variance {var}");
    }

    #[test]
    fn same_seed_same_data_other_seed_other_data() {
        let a = generate(&Config { train: 200, test: 50, ..Config::default() });
        let b = generate(&Config { train: 200, test: 50, ..Config::default() });
        let c = generate(&Config { train: 200, test: 50, seed: 7, ..Config::default() });
        assert_eq!(a, b);
        assert_ne!(a.train.features, c.train.features);
    }

    #[test]
    fn any_sample_count() {
        let d = generate(&Config { train: 123, test: 7, ..Config::default() });
        assert_eq!((d.train.len(), d.test.len()), (123, 7));
        assert_eq!(d.train.class_counts(10).iter().sum::<usize>() + d.test.class_counts(10).iter().sum::<usize>(), 130);
    }

    #[test]
    fn padding_is_noise_and_signal_survives() {
        // Without noise or shear, a sample's non-padding part is the stretched template.
        let cfg = Config {
            corr_noise_scale: 0.0,
            iid_noise_scale: 0.0,
            shear_scale: 0.0,
            scale_coeff: 0.0,
            ..Config::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let x = sample(3, &cfg, &mut rng);
        assert_eq!(x.len(), 40);
        assert!(x.iter().any(|v| v.abs() > 0.05), "template should be visible");
    }
}
