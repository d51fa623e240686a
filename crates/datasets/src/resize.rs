//! Downsampling images by area averaging: each output pixel is the mean of the input over the
//! rectangle it covers, input pixels cut by the rectangle's edge counted by the fraction inside
//! (PIL's `BOX` filter, OpenCV's `INTER_AREA`). This is what "MNIST scaled down to 10×10"
//! (Choromanska et al. 2015) needs for a factor of 2.8, where pooling whole pixels cannot do.
//! Written here because it is a dozen lines over one axis, and no image crate works on f32
//! planes of a dataset without a copy per image.

use crate::{Dataset, Split};

/// The weights of one axis: `weights[o][i]` is the share of input pixel `i` in output pixel `o`
/// (each row sums to 1).
fn axis_weights(input: usize, output: usize) -> Vec<Vec<f64>> {
    let scale = input as f64 / output as f64;
    (0..output)
        .map(|o| {
            let (lo, hi) = (o as f64 * scale, (o + 1) as f64 * scale);
            (0..input).map(|i| ((i + 1) as f64).min(hi) - (i as f64).max(lo)).map(|w| w.max(0.0) / scale).collect()
        })
        .collect()
}

/// `dataset` with every channel of every image area-averaged to `height × width`. `None` if its
/// samples are not images (`[channels, height, width]`) at least that large.
pub fn downsample(dataset: &Dataset, height: usize, width: usize) -> Option<Dataset> {
    let &[channels, h_in, w_in] = dataset.sample_shape.as_slice() else { return None };
    if height == 0 || width == 0 || height > h_in || width > w_in {
        return None;
    }
    let (rows, cols) = (axis_weights(h_in, height), axis_weights(w_in, width));
    let plane_in = h_in * w_in;
    let resize = |split: &Split| -> Split {
        let mut features = Vec::with_capacity(split.len() * channels * height * width);
        let mut tmp = vec![0.0f64; height * w_in];
        for plane in split.features.chunks_exact(plane_in) {
            // Rows first: [h_in, w_in] → [height, w_in], then columns: → [height, width].
            for (o, weights) in rows.iter().enumerate() {
                let row = &mut tmp[o * w_in..(o + 1) * w_in];
                row.iter_mut().for_each(|v| *v = 0.0);
                for (i, &w) in weights.iter().enumerate().filter(|(_, w)| **w > 0.0) {
                    for (v, &x) in row.iter_mut().zip(&plane[i * w_in..(i + 1) * w_in]) {
                        *v += w * x as f64;
                    }
                }
            }
            for o in 0..height {
                let row = &tmp[o * w_in..(o + 1) * w_in];
                features
                    .extend(cols.iter().map(|weights| weights.iter().zip(row).map(|(w, x)| w * x).sum::<f64>() as f32));
            }
        }
        Split { features, labels: split.labels.clone() }
    };
    Some(Dataset {
        name: format!("{}-{height}x{width}", dataset.name),
        sample_shape: vec![channels, height, width],
        classes: dataset.classes,
        class_names: dataset.class_names.clone(),
        train: resize(&dataset.train),
        test: resize(&dataset.test),
        provenance: format!("{}; area-averaged from {h_in}×{w_in} to {height}×{width}", dataset.provenance),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_image(shape: [usize; 3], pixels: Vec<f32>) -> Dataset {
        let split = Split { features: pixels, labels: vec![0] };
        Dataset {
            name: "t".into(),
            sample_shape: shape.to_vec(),
            classes: 1,
            class_names: vec!["0".into()],
            train: split.clone(),
            test: split,
            provenance: "test".into(),
        }
    }

    #[test]
    fn halving_is_the_mean_of_each_two_by_two_block() {
        let pixels: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let out = downsample(&one_image([1, 4, 4], pixels), 2, 2).expect("image");
        assert_eq!(out.train.features, vec![2.5, 4.5, 10.5, 12.5]);
        assert_eq!(out.sample_shape, vec![1, 2, 2]);
    }

    #[test]
    fn a_factor_of_two_point_eight_weighs_cut_pixels_by_their_share() {
        // Output pixel 0 of 28 → 10 covers input [0, 2.8): pixels 0 and 1 whole, 0.8 of pixel 2.
        let w = axis_weights(28, 10);
        let expected = [1.0 / 2.8, 1.0 / 2.8, 0.8 / 2.8];
        for (got, want) in w[0].iter().zip(expected) {
            assert!((got - want).abs() < 1e-12);
        }
        assert!(w[0][3..].iter().all(|&v| v == 0.0));
        // Pixel 2's remaining 0.2 goes to output pixel 1.
        assert!((w[1][2] - 0.2 / 2.8).abs() < 1e-12);
        for row in &w {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12, "rows sum to one");
        }
        // A constant image stays constant, and the mean intensity is kept for any image.
        let out = downsample(&one_image([1, 28, 28], vec![0.7; 784]), 10, 10).expect("image");
        assert!(out.train.features.iter().all(|&v| (v - 0.7).abs() < 1e-6));
        let ramp: Vec<f32> = (0..784).map(|i| ((i * 37) % 101) as f32 / 100.0).collect();
        let mean_in = ramp.iter().map(|&v| v as f64).sum::<f64>() / 784.0;
        let out = downsample(&one_image([1, 28, 28], ramp), 10, 10).expect("image");
        let mean_out = out.train.features.iter().map(|&v| v as f64).sum::<f64>() / 100.0;
        assert!((mean_in - mean_out).abs() < 1e-6, "{mean_in} vs {mean_out}");
    }

    #[test]
    fn signals_and_upsampling_are_refused() {
        assert!(downsample(&one_image([1, 1, 4], vec![0.0; 4]), 1, 2).is_some());
        let signal = Dataset { sample_shape: vec![4], ..one_image([1, 1, 4], vec![0.0; 4]) };
        assert!(downsample(&signal, 1, 2).is_none());
        assert!(downsample(&one_image([1, 4, 4], vec![0.0; 16]), 5, 5).is_none());
    }
}
