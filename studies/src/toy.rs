//! The example of README's "Adding a study": gradient descent on f(x) = ½λx² from x₀ = 1. Each
//! step multiplies x by (1 − αλ), so after k steps |x_k| = |1 − αλ|^k exactly; the study runs GD
//! for a few step sizes α and checks the measured |x_k| against that closed form.
//!
//! Command: `cargo run --release -p studies -- toy` (instant).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::harness::{self, CellProgress, GridArgs, Record, Report, Study};

/// One line: what `studies list` and `--help` say.
pub const ABOUT: &str = "README's example study: GD on ½λx², measured against |1 − αλ|^k";

/// Arguments of `studies toy`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// GD steps per run.
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    #[command(flatten)]
    pub grid: GridArgs,
}

/// Curvature λ and the step sizes α (stable below 2/λ = 1).
const LAMBDA: f64 = 2.0;
const ALPHAS: [f64; 4] = [0.1, 0.25, 0.5, 0.9];

/// One cell: GD at one step size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Step size α.
    pub alpha: f64,
    /// Curvature λ.
    pub lambda: f64,
    /// Steps k.
    pub steps: usize,
}

/// What one cell measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// |x_k| after the steps.
    pub measured: f64,
}

struct Toy {
    cells: Vec<Cell>,
}

impl Study for Toy {
    type Cell = Cell;
    type Outcome = Outcome;
    const NAME: &'static str = "toy";

    fn cells(&self) -> Vec<Cell> {
        self.cells.clone()
    }

    fn label(cell: &Cell) -> String {
        format!("alpha{}", cell.alpha)
    }

    fn run_cell(&self, cell: &Cell, _progress: &CellProgress) -> Result<Outcome> {
        let mut x = 1.0f64;
        for _ in 0..cell.steps {
            x -= cell.alpha * cell.lambda * x; // x ← x − α f'(x)
        }
        Ok(Outcome { measured: x.abs() })
    }

    fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<Report> {
        let mut md = String::from("| α | measured | closed form |\n|---:|---:|---:|\n");
        let mut passed = true;
        for r in records {
            let c = &r.config;
            let exact = (1.0 - c.alpha * c.lambda).abs().powi(c.steps as i32);
            passed &= (r.outcome.measured - exact).abs() <= 1e-12 * exact.max(1e-300);
            writeln!(md, "| {} | {:.6e} | {exact:.6e} |", c.alpha, r.outcome.measured)?;
        }
        harness::write_atomic(&dir.join("toy.md"), md.as_bytes())?;
        Ok(Report { text: md, passed })
    }
}

/// Builds the grid, runs it, reports.
pub fn run(args: Args) -> Result<Report> {
    let jobs = args.grid.jobs()?;
    let cells = ALPHAS.iter().map(|&alpha| Cell { alpha, lambda: LAMBDA, steps: args.steps }).collect();
    let opts = args.grid.options(jobs, crate::env::Env::capture_cpu_only(jobs))?;
    harness::execute(&Toy { cells }, &opts)
}

/// `studies report toy`.
pub fn report_saved(out: &Path) -> Result<Report> {
    harness::report_saved::<Toy>(out)
}
