//! A grid's predicted time, printed before it starts (for the runs that have no record yet), so
//! that a long run (paper scale) can be planned: each distinct (network, batch size) is timed
//! for a few steps on one thread, and every run is charged its epochs' training steps plus its
//! evaluations; a run that measures its solution is charged that work too
//! ([`crate::measurement::Work`]), priced by one objective evaluation and one Hessian-vector
//! product timed per network.

use anyhow::Result;
use datasets::Dataset;
use nets::train::{NetSpec, TrainConfig};

use crate::data::{DataSpec, Loaded};
use crate::measurement::MeasureConfig;

/// One run to predict: network, batch size, epochs (the cap, under a stopping rule), and the
/// training and test samples it sees.
pub struct Run<'a> {
    /// The network.
    pub spec: &'a NetSpec,
    /// Samples per step.
    pub batch: usize,
    /// Epochs, or the cap of a stopping rule.
    pub epochs: usize,
    /// The data it trains on and is evaluated on.
    pub data: &'a Dataset,
    /// What is measured on the solution (none: nothing).
    pub measure: Option<&'a MeasureConfig>,
}

impl<'a> Run<'a> {
    /// The run of `spec` trained with `train` on `data`, among the `loaded` datasets.
    pub fn of(spec: &'a NetSpec, train: &TrainConfig, data: &DataSpec, loaded: &'a [Loaded]) -> Result<Run<'a>> {
        let data = crate::data::find(loaded, data)?;
        Ok(Run { spec, batch: train.batch_size, epochs: train.epochs, data, measure: None })
    }

    /// This run, measuring its solution under `cfg`.
    pub fn measuring(self, cfg: Option<&'a MeasureConfig>) -> Run<'a> {
        Run { measure: cfg, ..self }
    }
}

/// A run's predicted seconds on one thread.
#[derive(Debug, Clone, Copy)]
pub struct Price {
    /// Training steps and the evaluations of every epoch.
    pub training: f64,
    /// Measuring the solution (0: nothing measured).
    pub measuring: f64,
}

impl Price {
    /// The whole run.
    pub fn seconds(&self) -> f64 {
        self.training + self.measuring
    }
}

/// The prices of some runs, and what they rest on.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// One per run, in the order given.
    pub prices: Vec<Price>,
    /// What is charged and the probes' rates, for the printed line.
    pub basis: String,
}

impl Prediction {
    /// `study: N runs to run, predicted at most M min on J jobs …`: the runs' one-thread seconds
    /// spread over `jobs` threads (never more threads than runs), and never less than the
    /// longest run.
    pub fn line(&self, study: &str, jobs: usize) -> String {
        let runs = self.prices.len();
        let threads = jobs.clamp(1, runs.max(1));
        let minutes = |s: f64| s / 60.0 / threads as f64;
        let measuring: f64 = self.prices.iter().map(|p| p.measuring).sum();
        let measured = match measuring > 0.0 {
            true => format!(", {:.0} of them measuring the solutions", minutes(measuring)),
            false => String::new(),
        };
        let longest = self.prices.iter().map(Price::seconds).fold(0.0, f64::max) / 60.0;
        let plural = |n: usize, one: &str, more: &str| format!("{n} {}", if n == 1 { one } else { more });
        format!(
            "{study}: {} to run, predicted at most {:.0} min on {}{measured} ({})",
            plural(runs, "run", "runs"),
            minutes(self.prices.iter().map(Price::seconds).sum()).max(longest),
            plural(threads, "job", "jobs"),
            self.basis
        )
    }
}

/// Prices `runs` (`what`: what the prices charge, for the printed line). An evaluation pass
/// (forward only, every epoch, on both splits) is charged a third of a training step's cost
/// per sample.
pub fn price(runs: &[Run<'_>], what: &str, device: &nets::Device) -> Result<Prediction> {
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let mut timed: Vec<(&NetSpec, usize, f64)> = Vec::new();
    // (network, measured samples) → seconds of one evaluation and of one product.
    let mut units: Vec<(&NetSpec, Option<usize>, (f64, f64))> = Vec::new();
    let mut prices = Vec::with_capacity(runs.len());
    for r in runs {
        let rate = match timed.iter().find(|(s, b, _)| *s == r.spec && *b == r.batch) {
            Some((.., rate)) => *rate,
            None => {
                let rate = one.install(|| nets::train::step_timer(r.spec, r.batch, 2, device)(3));
                timed.push((r.spec, r.batch, rate));
                rate
            }
        };
        let (train, test) = (r.data.train.len(), r.data.test.len());
        let training = r.epochs as f64 * (train as f64 + (train + test) as f64 / 3.0) / rate;
        let mut measuring = 0.0;
        if let Some(cfg) = r.measure {
            let (evaluation, product) = match units.iter().find(|(s, m, _)| *s == r.spec && *m == cfg.samples) {
                Some((.., u)) => *u,
                None => {
                    let u = one.install(|| crate::measurement::unit_seconds(r.spec, r.data, cfg, device));
                    units.push((r.spec, cfg.samples, u));
                    u
                }
            };
            let work = cfg.work(r.spec.batch_norm().is_some(), train);
            measuring = work.evaluations * evaluation + work.products as f64 * product;
        }
        prices.push(Price { training, measuring });
    }
    let priced = units.iter().map(|(s, m, (e, p))| {
        let on = m.map_or("the training set".to_string(), |m| format!("{m} samples"));
        let n = s.parameter_count(device);
        format!("{n}-parameter net on {on}: {e:.2} s per evaluation, {p:.2} s per Hessian-vector product")
    });
    let rates = timed.iter().map(|(_, b, r)| format!("{r:.0} samples/s at batch {b}")).chain(priced);
    Ok(Prediction { prices, basis: format!("{what}; timed on one thread: {}", rates.collect::<Vec<_>>().join(", ")) })
}
