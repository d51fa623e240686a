//! Escaping a strict saddle (Ge, Huang, Jin & Yuan 2015): f(x, y) = ½x² + ¼(y² − 1)² has a
//! strict saddle at the origin (Hessian diag(1, −1)) whose stable manifold is the x axis, and
//! minima at (0, ±1). Gradient descent started on that manifold converges to the saddle; started
//! 1e-8 off it, it leaves only after ~log(1e8)/log(1 + α) steps. Gradient descent with Gaussian
//! noise, θ ← θ − α∇f + ε with ε ~ N(0, σ²I), leaves from the manifold itself, sooner the larger σ.
//! Escape: |y| ≥ ½ (halfway to a minimum) within the step budget.
//!
//! Command: `cargo run --release -p studies -- saddle` (seconds; 1000 runs per noise level).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Result, bail};
use optim::{Optimizer, Rule};
use serde::{Deserialize, Serialize};

use crate::harness::{self, CellProgress, GridArgs, Record, Study};
use crate::plot::{self, PALETTE, Panel, Series};

/// Arguments of `studies saddle`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Runs per noise level.
    #[arg(long, default_value_t = 1000)]
    pub runs: usize,
    #[command(flatten)]
    pub grid: GridArgs,
}

/// Noise levels σ.
const SIGMAS: [f64; 7] = [0.0, 1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1];

/// One cell: one start and one noise level, many runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Distance of the start from the stable manifold (the x axis): y₀.
    pub offset: f64,
    /// Noise σ per coordinate and step.
    pub sigma: f64,
    /// Step size α.
    pub lr: f64,
    /// Steps allowed.
    pub budget: usize,
    /// Independent runs.
    pub runs: usize,
    /// Seed of the noise.
    pub seed: u64,
}

/// What the runs of a cell did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Runs that reached |y| ≥ ½ within the budget.
    pub escaped: usize,
    /// Median escape step over all runs (a run that never escaped counts as beyond the
    /// budget); `None` when fewer than half escaped.
    pub median_steps: Option<usize>,
    /// |y| of run 0 at every step (for the plot).
    pub trace: Vec<f64>,
}

struct Saddle {
    cells: Vec<Cell>,
}

impl Study for Saddle {
    type Cell = Cell;
    type Outcome = Outcome;
    const NAME: &'static str = "saddle";

    fn cells(&self) -> Vec<Cell> {
        self.cells.clone()
    }

    fn label(cell: &Cell) -> String {
        format!("y0-{:e}-sigma-{:e}", cell.offset, cell.sigma)
    }

    fn run_cell(&self, cell: &Cell, _progress: &CellProgress) -> Result<Outcome> {
        let rule = if cell.sigma > 0.0 { Rule::NoisyGd { lr: cell.lr, sigma: cell.sigma } } else { Rule::Gd { lr: cell.lr } };
        let mut steps = Vec::with_capacity(cell.runs);
        let mut trace = Vec::new();
        for run in 0..cell.runs {
            let mut opt = Optimizer::new(rule, 2, harness::derive_seed(cell.seed, &[&run.to_string()]));
            let mut p = [1.0, cell.offset];
            let mut escaped = None;
            for k in 0..=cell.budget {
                if run == 0 {
                    trace.push(p[1].abs());
                }
                if p[1].abs() >= 0.5 {
                    escaped = Some(k);
                    break;
                }
                let g = [p[0], p[1] * (p[1] * p[1] - 1.0)];
                opt.step(&mut p, &g);
            }
            steps.push(escaped);
        }
        let escaped = steps.iter().filter(|s| s.is_some()).count();
        let mut sorted: Vec<usize> = steps.iter().map(|s| s.unwrap_or(usize::MAX)).collect();
        sorted.sort_unstable();
        let median = sorted[(sorted.len() - 1) / 2];
        Ok(Outcome { escaped, median_steps: (median != usize::MAX).then_some(median), trace })
    }
}

/// Builds the grid, runs it, reports; fails unless noisy GD escapes where GD does not.
pub fn run(args: Args) -> Result<()> {
    if args.runs == 0 {
        bail!("--runs 0: at least one run is needed (accepted: 1 or more)");
    }
    let (backend, device, jobs) = args.grid.validate()?;
    harness::check_writable(&args.grid.out)?;
    let master = args.grid.seed;
    let (lr, budget) = (0.1, 150);
    let mut cells = vec![
        // Plain GD on the manifold and 1e-8 off it.
        Cell { offset: 0.0, sigma: 0.0, lr, budget, runs: 1, seed: 0 },
        Cell { offset: 1e-8, sigma: 0.0, lr, budget, runs: 1, seed: 0 },
        // … which does leave, given enough steps.
        Cell { offset: 1e-8, sigma: 0.0, lr, budget: 1000, runs: 1, seed: 0 },
    ];
    for &sigma in SIGMAS.iter().filter(|&&s| s > 0.0) {
        cells.push(Cell { offset: 0.0, sigma, lr, budget, runs: args.runs, seed: harness::derive_seed(master, &["saddle", &sigma.to_string()]) });
    }
    let env = crate::env::Env::capture(backend, &device, jobs);
    let opts = harness::GridOptions { out: args.grid.out.clone(), jobs, master_seed: master, env };
    let study = Saddle { cells };
    let records = harness::run_grid(&study, &opts)?;
    let (text, ok) = report(&records, &harness::study_dir::<Saddle>(&args.grid.out))?;
    println!("{text}");
    if !ok {
        bail!("noisy GD did not escape where plain GD stays (see the table)");
    }
    Ok(())
}

fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<(String, bool)> {
    let c = &records[0].config;
    let mut md = String::from("# Escaping a strict saddle: GD vs GD with noise\n\n");
    writeln!(md, "f(x, y) = ½x² + ¼(y² − 1)², start (1, y₀), step α = {}, budget {} steps; escaped once |y| ≥ ½. Noisy GD adds N(0, σ²) to each coordinate at every step.\n", c.lr, c.budget)?;
    md.push_str("| method | y₀ | σ | budget | runs | escaped within budget | median steps to escape |\n|---|---:|---:|---:|---:|---:|---:|\n");
    let mut csv = String::from("offset,sigma,budget,runs,escaped,median_steps\n");
    for r in records {
        let c = &r.config;
        let o = &r.outcome;
        let sci = |v: f64| if v == 0.0 { "0".to_string() } else { format!("{v:e}") };
        writeln!(md, "| {} | {} | {} | {} | {} | {:.1} % | {} |", if c.sigma > 0.0 { "noisy GD" } else { "GD" }, sci(c.offset), sci(c.sigma), c.budget, c.runs, 100.0 * o.escaped as f64 / c.runs as f64, o.median_steps.map_or("never (> budget)".into(), |m| m.to_string()))?;
        writeln!(csv, "{:e},{:e},{},{},{},{}", c.offset, c.sigma, c.budget, c.runs, o.escaped, o.median_steps.map_or(String::new(), |m| m.to_string()))?;
    }
    let on_manifold_gd = records.iter().find(|r| r.config.sigma == 0.0 && r.config.offset == 0.0).expect("GD on the manifold");
    let noisy: Vec<_> = records.iter().filter(|r| r.config.sigma >= 1e-4).collect();
    // Plot GD runs at the common budget only.
    let records: Vec<_> = records.iter().filter(|r| r.config.budget == c.budget || r.config.sigma > 0.0).cloned().collect();
    let records = &records[..];
    let ok = on_manifold_gd.outcome.escaped == 0 && noisy.iter().all(|r| r.outcome.escaped as f64 >= 0.99 * r.config.runs as f64);
    writeln!(md, "\nGD from the stable manifold never escapes; noisy GD with σ ≥ 1e-4 escapes in at least 99 % of runs within the budget: {}.", if ok { "yes" } else { "NO" })?;

    let noisy_all: Vec<_> = records.iter().filter(|r| r.config.sigma > 0.0).collect();
    let x: Vec<f64> = noisy_all.iter().map(|r| r.config.sigma).collect();
    let mut prob = Panel::new("Escape probability within the budget", "noise σ (log scale)", "escaped (%)", vec![Series { label: "noisy GD from the manifold".into(), color: PALETTE[0], dashed: false, x: x.clone(), mean: noisy_all.iter().map(|r| 100.0 * r.outcome.escaped as f64 / r.config.runs as f64).collect(), std: vec![0.0; x.len()] }]);
    prob.log_x = true;
    let timed: Vec<_> = noisy_all.iter().filter(|r| r.outcome.median_steps.is_some()).collect();
    let mut time = Panel::new(
        "Median escape time",
        "noise σ (log scale)",
        "steps to |y| ≥ ½",
        vec![Series { label: "noisy GD from the manifold".into(), color: PALETTE[0], dashed: false, x: timed.iter().map(|r| r.config.sigma).collect(), mean: timed.iter().map(|r| r.outcome.median_steps.expect("filtered") as f64).collect(), std: vec![0.0; timed.len()] }],
    );
    time.log_x = true;
    time.legend = plotters::prelude::SeriesLabelPosition::UpperRight;
    let traces = records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.config.sigma == 0.0 || r.config.sigma == 1e-6 || r.config.sigma == 1e-2)
        .map(|(i, r)| Series {
            label: if r.config.sigma > 0.0 { format!("noisy GD, σ = {:e}", r.config.sigma) } else { if r.config.offset == 0.0 { "GD, y₀ = 0 (on the manifold)".to_string() } else { format!("GD, y₀ = {:e}", r.config.offset) } },
            color: PALETTE[i % PALETTE.len()],
            dashed: r.config.sigma == 0.0,
            x: (0..r.outcome.trace.len()).map(|k| k as f64).collect(),
            mean: r.outcome.trace.iter().map(|v| v.max(1e-12)).collect(),
            std: vec![0.0; r.outcome.trace.len()],
        })
        .collect();
    let mut tr = Panel::new("Distance from the stable manifold (run 0)", "step", "|y| (log scale, floored at 1e-12)", traces);
    tr.log_y = true;
    tr.legend = plotters::prelude::SeriesLabelPosition::LowerRight;
    std::fs::create_dir_all(dir)?;
    harness::write_atomic(&dir.join("saddle.md"), md.as_bytes())?;
    harness::write_atomic(&dir.join("saddle.csv"), csv.as_bytes())?;
    plot::write_panels(&dir.join("saddle"), &[tr, prob, time])?;
    Ok((md, ok))
}
