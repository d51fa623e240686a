//! The MNIST-1D generator (Greydanus & Kobak, "Scaling down deep learning with MNIST-1D", 2020/2024).
//!
//! Ten 12-point templates are padded, stretched, shifted, filled with correlated noise, perturbed
//! with i.i.d. noise, sheared and resampled to 40 points. The steps, their order, the defaults,
//! the random draws (NumPy's legacy `RandomState`, [`crate::numpy_random`]) and the rounding of
//! each step follow upstream's generator, so `generate(&Config::default())` reproduces the frozen
//! reference split (`mnist1d_data.pkl`) value for value (a test checks the standardized signals
//! against the split to 1e-12, and the labels exactly). The frozen arrays are standardized:
//! they equal upstream's raw signals after `(xs − mean) / std`, to 2e-16.

use std::path::Path;

use crate::numpy_random::RandomState;
use crate::{DataError, Dataset, Split};

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
    /// Seed of the generator (`np.random.seed`).
    pub seed: u32,
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
    // As upstream: centre, then divide by the std of the centred values (`x.std()` takes their
    // mean again), then start at 0 and divide by 6.
    let mean = numpy_sum(&t) / 12.0;
    let centred: Vec<f64> = t.iter().map(|v| v - mean).collect();
    let again = numpy_sum(&centred) / 12.0;
    let deviations: Vec<f64> = centred.iter().map(|v| (v - again).powi(2)).collect();
    let std = (numpy_sum(&deviations) / 12.0).sqrt();
    let z: Vec<f64> = centred.iter().map(|v| v / std).collect();
    let mut out = [0.0; 12];
    for (o, v) in out.iter_mut().zip(&z) {
        *o = (v - z[0]) / 6.0;
    }
    out
}

/// Sum of `a` as NumPy computes it (`pairwise_sum`: eight accumulators in blocks of up to 128,
/// halves above), so that means, deviations and kernel weights round as upstream's do.
pub fn numpy_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        a.iter().fold(0.0, |s, v| s + v)
    } else if n <= 128 {
        let mut r = [0.0; 8];
        r.copy_from_slice(&a[..8]);
        let blocks = n - n % 8;
        for chunk in a[8..blocks].chunks_exact(8) {
            for (acc, v) in r.iter_mut().zip(chunk) {
                *acc += v;
            }
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for v in &a[blocks..] {
            res += v;
        }
        res
    } else {
        let mut half = n / 2;
        half -= half % 8;
        numpy_sum(&a[..half]) + numpy_sum(&a[half..])
    }
}

/// `np.linspace(start, stop, n)`: `k · step + start`, the last point exactly `stop`.
fn linspace(start: f64, stop: f64, n: usize) -> Vec<f64> {
    let step = (stop - start) / (n.max(2) - 1) as f64;
    let mut v: Vec<f64> = (0..n).map(|k| k as f64 * step + start).collect();
    if let Some(last) = v.last_mut()
        && n > 1
    {
        *last = stop;
    }
    v
}

/// Linear interpolation of `x` (taken on evenly spaced positions over [0, 1]) at `len` evenly
/// spaced positions over [0, 1], rounding as `np.interp` does (what SciPy's linear `interp1d`
/// delegates to): a position on a knot takes the knot's value, any other
/// `slope · (t − tⱼ) + xⱼ`.
pub fn resample(x: &[f64], len: usize) -> Vec<f64> {
    let knots = linspace(0.0, 1.0, x.len());
    linspace(0.0, 1.0, len)
        .into_iter()
        .map(|t| {
            // j: the last knot ≤ t.
            let j = knots.partition_point(|&k| k <= t).saturating_sub(1);
            if j + 1 >= knots.len() || knots[j] == t {
                x[j]
            } else {
                let slope = (x[j + 1] - x[j]) / (knots[j + 1] - knots[j]);
                slope * (t - knots[j]) + x[j]
            }
        })
        .collect()
}

/// Gaussian filter with standard deviation `sigma`, radius `4σ` rounded, and reflecting borders
/// (`d c b a | a b c d | d c b a`), as SciPy's `gaussian_filter1d` computes it: normalized
/// weights, the centre first, then each symmetric pair from the outermost in.
pub fn gaussian_filter(x: &[f64], sigma: f64) -> Vec<f64> {
    let radius = (4.0 * sigma + 0.5) as isize;
    let phi: Vec<f64> = (-radius..=radius).map(|k| ((-0.5 / (sigma * sigma)) * (k * k) as f64).exp()).collect();
    let total = numpy_sum(&phi);
    let w: Vec<f64> = phi.iter().map(|p| p / total).collect();
    let centre = radius as usize;
    let n = x.len() as isize;
    let at = |i: isize| -> f64 {
        // Fold into [0, 2n), then mirror the upper half; works for any offset.
        let i = i.rem_euclid(2 * n);
        x[(if i < n { i } else { 2 * n - 1 - i }) as usize]
    };
    (0..n)
        .map(|i| {
            let mut acc = x[i as usize] * w[centre];
            for d in (1..=radius).rev() {
                acc += (at(i - d) + at(i + d)) * w[centre - d as usize];
            }
            acc
        })
        .collect()
}

/// One sample of class `digit`, following the reference transformations in order and drawing
/// from `rng` exactly as upstream draws from NumPy's global `RandomState`.
pub fn sample(digit: usize, cfg: &Config, rng: &mut RandomState) -> Vec<f64> {
    let len = 12 + cfg.max_padding;
    // 1. template (+1e-8 so that no template point is exactly 0), then p appended zeros.
    let padding = cfg.min_padding + (rng.random_sample() * (cfg.max_padding - cfg.min_padding + 1) as f64) as usize;
    let mut x: Vec<f64> = template(digit).iter().map(|v| v + 1e-8).collect();
    x.extend(std::iter::repeat_n(0.0, padding));
    // 2. resample to 72 points.
    let x = resample(&x, len);
    // 3. scale the amplitude.
    let scale = 1.0 + cfg.scale_coeff * (rng.random_sample() - 0.5);
    let x: Vec<f64> = x.iter().map(|v| v * scale).collect();
    // 4. circular shift right by k (`choice(max_translation)`).
    let k = rng.interval(cfg.max_translation.max(1) as u32 - 1) as usize;
    let mut shifted = vec![0.0; len];
    for (i, v) in x.iter().enumerate() {
        shifted[(i + k) % len] = *v;
    }
    // 5. the exact zeros (the padding) become smoothed Gaussian noise.
    let noise: Vec<f64> = (0..len).map(|_| cfg.corr_noise_scale * rng.gauss()).collect();
    let noise = gaussian_filter(&noise, cfg.corr_noise_sigma);
    let mut x: Vec<f64> = shifted.iter().zip(&noise).map(|(v, n)| if *v == 0.0 { *n } else { *v }).collect();
    // 6. i.i.d. noise everywhere.
    let iid: Vec<f64> = (0..len).map(|_| cfg.iid_noise_scale * rng.gauss()).collect();
    for (v, e) in x.iter_mut().zip(&iid) {
        *v += e;
    }
    // 7. shear by a ramp from −½ to ½.
    let c = cfg.shear_scale * (rng.random_sample() - 0.5);
    for (v, r) in x.iter_mut().zip(linspace(-0.5, 0.5, len)) {
        *v -= c * r;
    }
    // 8. resample to the final length.
    resample(&x, cfg.final_len)
}

/// The dataset before standardization: every sample with its label, training samples first.
/// Classes are generated in turn, then permuted, then (the "shuffled" variant) the positions
/// permuted, all from one `RandomState(seed)`.
pub fn generate_raw(cfg: &Config) -> Vec<(Vec<f64>, u32)> {
    let total = cfg.train + cfg.test;
    let mut rng = RandomState::new(cfg.seed);
    let mut rows: Vec<(Vec<f64>, u32)> = Vec::with_capacity(total);
    for digit in 0..10 {
        let count = total / 10 + usize::from(digit < total % 10);
        for _ in 0..count {
            rows.push((sample(digit, cfg, &mut rng), digit as u32));
        }
    }
    // `permutation(n)` applied to the rows equals shuffling the rows with the same swaps.
    rng.shuffle(&mut rows);
    if cfg.shuffle_positions {
        let perm = rng.permutation(cfg.final_len);
        for (x, _) in &mut rows {
            *x = perm.iter().map(|&p| x[p]).collect();
        }
    }
    rows
}

/// Standardizes `rows` in place with the global mean and (population) standard deviation of
/// all their values, as upstream's `(xs - xs.mean()) / xs.std()`.
pub fn standardize(rows: &mut [(Vec<f64>, u32)]) {
    let all: Vec<f64> = rows.iter().flat_map(|(x, _)| x.iter().copied()).collect();
    let mean = numpy_sum(&all) / all.len() as f64;
    let deviations: Vec<f64> = all.iter().map(|v| (v - mean).powi(2)).collect();
    let std = (numpy_sum(&deviations) / all.len() as f64).sqrt();
    for (x, _) in rows {
        for v in x {
            *v = (*v - mean) / std;
        }
    }
}

/// The first `train` rows as the training split, the rest as the test split, in f32.
fn dataset(rows: &[(Vec<f64>, u32)], train: usize, final_len: usize, name: &str, provenance: String) -> Dataset {
    let split = |rows: &[(Vec<f64>, u32)]| Split {
        features: rows.iter().flat_map(|(x, _)| x.iter().map(|&v| v as f32)).collect(),
        labels: rows.iter().map(|(_, y)| *y).collect(),
    };
    Dataset {
        name: name.into(),
        sample_shape: vec![final_len],
        classes: 10,
        class_names: (0..10).map(|d| d.to_string()).collect(),
        train: split(&rows[..train]),
        test: split(&rows[train..]),
        provenance,
    }
}

/// Generates the dataset: [`generate_raw`], [`standardize`]d, split into train and test.
pub fn generate(cfg: &Config) -> Dataset {
    let mut rows = generate_raw(cfg);
    standardize(&mut rows);
    let provenance = format!(
        "MNIST-1D generated by flatland (Greydanus & Kobak defaults, NumPy's legacy stream), seed {}, {} train / {} test{}",
        cfg.seed,
        cfg.train,
        cfg.test,
        if cfg.shuffle_positions { ", positions shuffled" } else { "" }
    );
    dataset(&rows, cfg.train, cfg.final_len, "mnist1d", provenance)
}

/// The files of upstream's frozen split, as `.npy` (converted from `mnist1d_data.pkl`).
pub const FROZEN_FILES: [&str; 4] = ["x.npy", "y.npy", "x_test.npy", "y_test.npy"];

/// Upstream's frozen split from `x.npy`, `y.npy`, `x_test.npy`, `y_test.npy` in `dir`: the values
/// as stored (already standardized upstream: they equal [`standardize`]d raw signals).
pub fn load_frozen(dir: &Path) -> Result<Dataset, DataError> {
    let mut rows = Vec::new();
    let mut train = 0;
    let mut len = 0;
    for (xn, yn) in [("x.npy", "y.npy"), ("x_test.npy", "y_test.npy")] {
        let x = crate::npy::read(&dir.join(xn))?;
        let labels = crate::npy::read(&dir.join(yn))?.labels(&dir.join(yn), 10)?;
        let &[n, l] = x.shape.as_slice() else {
            return Err(DataError::new(&dir.join(xn), format!("shape {:?}; expected (samples, 40)", x.shape)));
        };
        if n == 0 {
            return Err(DataError::new(&dir.join(xn), "no samples; the split must hold at least one"));
        }
        if labels.len() != n || l == 0 || (len != 0 && l != len) {
            return Err(DataError::new(
                &dir.join(yn),
                format!("{} labels for {n} signals of {l} values", labels.len()),
            ));
        }
        len = l;
        rows.extend(x.values.chunks(l).map(<[f64]>::to_vec).zip(labels));
        if xn == "x.npy" {
            train = rows.len();
        }
    }
    let provenance =
        format!("MNIST-1D frozen upstream split (greydanus/mnist1d mnist1d_data.pkl) in {}", dir.display());
    Ok(dataset(&rows, train, len, "mnist1d-frozen", provenance))
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
        let mut rng = RandomState::new(1);
        let x = sample(3, &cfg, &mut rng);
        assert_eq!(x.len(), 40);
        assert!(x.iter().any(|v| v.abs() > 0.05), "template should be visible");
    }
}
