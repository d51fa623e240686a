//! A grid's predicted training time, printed before it starts, so that a long run (paper scale)
//! can be planned: each distinct (network, batch size) is timed for a few steps on one thread,
//! and every run is charged its epochs' training steps plus its evaluations.

use anyhow::Result;
use nets::train::{NetSpec, TrainConfig};

use crate::data::{DataSpec, Loaded};

/// One run to predict: network, batch size, epochs (the cap, under a stopping rule), and the
/// training and test samples it sees.
pub struct Run<'a> {
    /// The network.
    pub spec: &'a NetSpec,
    /// Samples per step.
    pub batch: usize,
    /// Epochs, or the cap of a stopping rule.
    pub epochs: usize,
    /// Training samples.
    pub train: usize,
    /// Test samples.
    pub test: usize,
}

impl<'a> Run<'a> {
    /// The run of `spec` trained with `train` on `data`, among the `loaded` datasets.
    pub fn of(spec: &'a NetSpec, train: &TrainConfig, data: &DataSpec, loaded: &[Loaded]) -> Result<Run<'a>> {
        let d = crate::data::find(loaded, data)?;
        Ok(Run { spec, batch: train.batch_size, epochs: train.epochs, train: d.train.len(), test: d.test.len() })
    }
}

/// Prints `study: N runs; predicted at most M min on J jobs …` to stderr and returns each run's
/// predicted seconds on one thread. An evaluation pass (forward only, every epoch, on both
/// splits) is charged a third of a training step's cost per sample.
pub fn print(study: &str, runs: &[Run<'_>], what: &str, device: &nets::Device, jobs: usize) -> Result<Vec<f64>> {
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let mut timed: Vec<(&NetSpec, usize, f64)> = Vec::new();
    let mut each = Vec::with_capacity(runs.len());
    for r in runs {
        let rate = match timed.iter().find(|(s, b, _)| *s == r.spec && *b == r.batch) {
            Some((.., rate)) => *rate,
            None => {
                let rate = one.install(|| nets::train::step_timer(r.spec, r.batch, 2, device)(3));
                timed.push((r.spec, r.batch, rate));
                rate
            }
        };
        each.push(r.epochs as f64 * (r.train as f64 + (r.train + r.test) as f64 / 3.0) / rate);
    }
    let seconds: f64 = each.iter().sum();
    eprintln!(
        "{study}: {} runs; predicted at most {:.0} min on {jobs} jobs ({what}; timed on one thread: {})",
        runs.len(),
        seconds / 60.0 / jobs.max(1) as f64,
        timed.iter().map(|(_, b, r)| format!("{r:.0} samples/s at batch {b}")).collect::<Vec<_>>().join(", ")
    );
    Ok(each)
}
