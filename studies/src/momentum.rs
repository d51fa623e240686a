//! Why momentum works (Goh 2017): on a quadratic whose Hessian has eigenvalues in [μ, L] (condition
//! number κ = L/μ), gradient descent with its best step α = 2/(L + μ) contracts the error by
//! (κ − 1)/(κ + 1) per step, and heavy-ball momentum (V ← ρV + ∇f, x ← x − αV) with its best
//! parameters α = 4/(√L + √μ)², ρ = ((√κ − 1)/(√κ + 1))² by (√κ − 1)/(√κ + 1): √κ instead of κ.
//! The study measures both asymptotic rates for κ from 10 to 10⁴ and checks each against the
//! theory within 1 %.
//!
//! Command: `cargo run --release -p studies -- momentum` (seconds).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use optim::{Optimizer, Rule};
use serde::{Deserialize, Serialize};

use crate::harness::{self, CellProgress, GridArgs, Record, Report, Study, fill};
use crate::plot::{self, PALETTE, Panel, Series};

/// One line: what `studies list` and `--help` say.
pub const ABOUT: &str =
    "GD vs heavy-ball momentum on quadratics, κ = 10…10⁴: measured convergence rates against the theory";

/// Arguments of `studies momentum`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub grid: GridArgs,
}

/// Condition numbers of the study.
const KAPPAS: [f64; 4] = [10.0, 100.0, 1000.0, 10000.0];

/// One cell: one method on one quadratic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Condition number κ (μ = 1, L = κ).
    pub kappa: f64,
    /// Eigenvalues, log-spaced over [1, κ] (both ends included).
    pub dimension: usize,
    /// GD with α = 2/(L + μ), or heavy ball with the optimal α and ρ.
    pub rule: Rule,
    /// The rate the theory predicts.
    pub theory: f64,
}

/// What one cell measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Iterations run.
    pub iterations: usize,
    /// (‖x_N‖ / ‖x_{N/2}‖)^(2/N): the asymptotic contraction per step.
    pub rate: f64,
    /// ‖x_k‖ every 15 steps of the first 3000 (for the plot).
    pub trace: Vec<(usize, f64)>,
}

struct Momentum {
    cells: Vec<Cell>,
}

impl Study for Momentum {
    type Cell = Cell;
    type Outcome = Outcome;
    const NAME: &'static str = "momentum";

    fn cells(&self) -> Vec<Cell> {
        self.cells.clone()
    }

    fn label(cell: &Cell) -> String {
        format!("{}-kappa{}", cell.rule.name().replace(' ', "-"), cell.kappa)
    }

    fn run_cell(&self, cell: &Cell, progress: &CellProgress) -> Result<Outcome> {
        let d = cell.dimension;
        let lambda: Vec<f64> = (0..d).map(|i| cell.kappa.powf(i as f64 / (d.max(2) - 1) as f64)).collect();
        // Long enough for the error to fall by ~1e-200 (so that start-up transients and the
        // polynomial factor of the heavy ball's double eigenvalues fade), short of underflow.
        let iterations = ((200.0 * 10f64.ln() / -cell.theory.ln()).ceil() as usize).max(1000);
        progress.message(&format!("{iterations} iterations"));
        let mut x = vec![1.0; d];
        let mut g = vec![0.0; d];
        let mut opt = Optimizer::new(cell.rule, d, 0);
        // Scaled so that squaring does not underflow at 1e-200.
        let norm = |x: &[f64]| {
            let m = x.iter().fold(0.0f64, |a, v| a.max(v.abs()));
            if m == 0.0 { 0.0 } else { m * x.iter().map(|v| (v / m).powi(2)).sum::<f64>().sqrt() }
        };
        let mut trace = Vec::new();
        let mut half = 0.0;
        for k in 0..iterations {
            if k < 3000 && k % 15 == 0 {
                trace.push((k, norm(&x)));
            }
            if k == iterations / 2 {
                half = norm(&x);
            }
            g.iter_mut().zip(&lambda).zip(&x).for_each(|((gi, l), xi)| *gi = l * xi);
            opt.step(&mut x, &g);
        }
        let end = norm(&x);
        let rate = (end / half).powf(1.0 / (iterations - iterations / 2) as f64);
        Ok(Outcome { iterations, rate, trace })
    }

    fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<Report> {
        let (text, passed) = report(records, dir)?;
        Ok(Report { text, passed })
    }
}

/// `studies report momentum`.
pub fn report_saved(out: &Path) -> Result<Report> {
    harness::report_saved::<Momentum>(out)
}

/// A row of `momentum.csv`.
#[derive(Serialize)]
struct MomentumCsv<'a> {
    kappa: f64,
    method: &'a str,
    iterations: usize,
    measured_rate: f64,
    theory_rate: f64,
}

/// Builds the grid, runs it, reports; the report fails if a rate is more than 1 % from the theory.
pub fn run(args: Args) -> Result<Report> {
    let (backend, device, jobs) = args.grid.validate()?;
    let mut cells = Vec::new();
    for &kappa in &KAPPAS {
        let (mu, l) = (1.0, kappa);
        let gd = (kappa - 1.0) / (kappa + 1.0);
        cells.push(Cell { kappa, dimension: 100, rule: Rule::Gd { lr: 2.0 / (l + mu) }, theory: gd });
        let sk = kappa.sqrt();
        let hb = (sk - 1.0) / (sk + 1.0);
        cells.push(Cell {
            kappa,
            dimension: 100,
            rule: Rule::Momentum { lr: 4.0 / (l.sqrt() + mu.sqrt()).powi(2), rho: hb * hb },
            theory: hb,
        });
    }
    let opts = args.grid.options(jobs, crate::env::Env::capture(backend, &device, jobs))?;
    harness::execute(&Momentum { cells }, &opts)
}

fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<(String, bool)> {
    let mut md = String::from("# Momentum: convergence rates on ill-conditioned quadratics\n\n");
    writeln!(md, "{}\n", fill(include_str!("text/momentum.md"), &[("dimension", records[0].config.dimension.to_string())]))?;
    md.push_str(
        "| κ | method | iterations N | measured rate | theory | relative difference | within 1 % |\n\
         |---:|---|---:|---:|---:|---:|---|\n",
    );
    let mut csv = Vec::new();
    let mut ok = true;
    for r in records {
        let diff = (r.outcome.rate - r.config.theory) / r.config.theory;
        let within = diff.abs() < 0.01;
        ok &= within;
        writeln!(
            md,
            "| {} | {} | {} | {:.6} | {:.6} | {:+.2e} | {} |",
            r.config.kappa,
            r.config.rule.name(),
            r.outcome.iterations,
            r.outcome.rate,
            r.config.theory,
            diff,
            if within { "yes" } else { "NO" }
        )?;
        csv.push(MomentumCsv {
            kappa: r.config.kappa,
            method: r.config.rule.name(),
            iterations: r.outcome.iterations,
            measured_rate: r.outcome.rate,
            theory_rate: r.config.theory,
        });
    }
    // 1 − rate against κ on log-log axes: slope −1 for GD, −½ for momentum.
    let mut series = Vec::new();
    for (i, name) in ["GD", "momentum"].iter().enumerate() {
        let rs: Vec<_> = records.iter().filter(|r| r.config.rule.name() == *name).collect();
        let x: Vec<f64> = rs.iter().map(|r| r.config.kappa).collect();
        series.push(Series {
            label: format!("{name}, measured"),
            color: PALETTE[i],
            dashed: false,
            x: x.clone(),
            mean: rs.iter().map(|r| 1.0 - r.outcome.rate).collect(),
            std: vec![0.0; rs.len()],
        });
        series.push(Series {
            label: format!("{name}, theory"),
            color: PALETTE[i],
            dashed: true,
            x,
            mean: rs.iter().map(|r| 1.0 - r.config.theory).collect(),
            std: vec![0.0; rs.len()],
        });
    }
    let mut rate_panel = Panel::new(
        "1 − rate against κ (measured on theory)",
        "condition number κ (log scale)",
        "1 − rate per step (log scale)",
        series,
    );
    rate_panel.log_x = true;
    rate_panel.log_y = true;
    rate_panel.legend = plotters::prelude::SeriesLabelPosition::LowerLeft;
    // ‖x_k‖ for κ = 1000.
    let traces = records
        .iter()
        .filter(|r| r.config.kappa == 1000.0)
        .enumerate()
        .map(|(i, r)| Series {
            label: r.config.rule.name().into(),
            color: PALETTE[i],
            dashed: false,
            // Down to 1e-10: below that the curve leaves the plot's range.
            x: r.outcome.trace.iter().filter(|t| t.1 > 1e-10).map(|t| t.0 as f64).collect(),
            mean: r.outcome.trace.iter().filter(|t| t.1 > 1e-10).map(|t| t.1).collect(),
            std: vec![0.0; r.outcome.trace.iter().filter(|t| t.1 > 1e-10).count()],
        })
        .collect();
    let mut trace_panel =
        Panel::new("Distance to the minimum, κ = 1000", "iteration", "‖x_k − x*‖ (log scale)", traces);
    trace_panel.log_y = true;
    trace_panel.legend = plotters::prelude::SeriesLabelPosition::UpperRight;
    std::fs::create_dir_all(dir)?;
    harness::write_atomic(&dir.join("momentum.md"), md.as_bytes())?;
    harness::write_csv(&dir.join("momentum.csv"), &csv)?;
    plot::write_panels(&dir.join("momentum"), &[rate_panel, trace_panel])?;
    Ok((md, ok))
}
