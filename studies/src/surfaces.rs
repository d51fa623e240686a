//! Every update rule of the course on classic 2-D test surfaces: an ill-conditioned quadratic
//! (κ = 100: the elongated level sets where plain GD zig-zags), a strict saddle x² − y²,
//! Rosenbrock's valley, Beale's function, and Himmelblau's function with four minima. As in
//! DeepOBS, each rule gets its own step size, tuned on a log grid (the one that reaches the
//! tolerance in the fewest iterations, else the lowest final loss); the other hyperparameters
//! are the usual defaults.
//!
//! Command: `cargo run --release -p studies -- surfaces` (seconds).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use optim::{Optimizer, Rule};
use serde::{Deserialize, Serialize};

use crate::harness::{self, CellProgress, GridArgs, Record, Report, Study, fill};
use crate::plot::{self, ContourPaths, PALETTE, Panel, Series};

/// One line: what `studies list` and `--help` say.
pub const ABOUT: &str =
    "The seven update rules on an ill-conditioned quadratic, a saddle, Rosenbrock, Beale, Himmelblau: trajectories";

/// Arguments of `studies surfaces`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Iterations per run.
    #[arg(long, default_value_t = 2000)]
    pub iterations: usize,
    #[command(flatten)]
    pub grid: GridArgs,
}

/// A test surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Surface {
    /// ½(x² + 100 y²): condition number 100.
    IllConditioned,
    /// x² − y²: a strict saddle at the origin, unbounded below.
    Saddle,
    /// (1 − x)² + 100 (y − x²)², minimum 0 at (1, 1).
    Rosenbrock,
    /// Beale's function, minimum 0 at (3, ½).
    Beale,
    /// (x² + y − 11)² + (x + y² − 7)², four minima of value 0.
    Himmelblau,
}

const SURFACES: [Surface; 5] =
    [Surface::IllConditioned, Surface::Saddle, Surface::Rosenbrock, Surface::Beale, Surface::Himmelblau];

impl Surface {
    fn name(self) -> &'static str {
        match self {
            Surface::IllConditioned => "quadratic, κ = 100",
            Surface::Saddle => "saddle x² − y²",
            Surface::Rosenbrock => "Rosenbrock",
            Surface::Beale => "Beale",
            Surface::Himmelblau => "Himmelblau",
        }
    }

    /// Value and gradient at (x, y).
    fn eval(self, p: &[f64]) -> (f64, [f64; 2]) {
        let (x, y) = (p[0], p[1]);
        match self {
            Surface::IllConditioned => (0.5 * (x * x + 100.0 * y * y), [x, 100.0 * y]),
            Surface::Saddle => (x * x - y * y, [2.0 * x, -2.0 * y]),
            Surface::Rosenbrock => (
                (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2),
                [-2.0 * (1.0 - x) - 400.0 * x * (y - x * x), 200.0 * (y - x * x)],
            ),
            Surface::Beale => {
                let t = [(1.5, 1.0), (2.25, 2.0), (2.625, 3.0)];
                let mut f = 0.0;
                let mut g = [0.0, 0.0];
                for (c, k) in t {
                    let r = c - x + x * y.powf(k);
                    f += r * r;
                    g[0] += 2.0 * r * (y.powf(k) - 1.0);
                    g[1] += 2.0 * r * x * k * y.powf(k - 1.0);
                }
                (f, g)
            }
            Surface::Himmelblau => {
                let (a, b) = (x * x + y - 11.0, x + y * y - 7.0);
                (a * a + b * b, [4.0 * x * a + 2.0 * b, 2.0 * a + 4.0 * y * b])
            }
        }
    }

    /// Where every rule starts.
    fn start(self) -> [f64; 2] {
        match self {
            Surface::IllConditioned => [-9.0, 1.0],
            // Just off the stable manifold (the x axis), so that every rule can leave.
            Surface::Saddle => [1.0, 1e-3],
            Surface::Rosenbrock => [-1.5, 2.0],
            Surface::Beale => [1.0, 1.5],
            Surface::Himmelblau => [0.0, 0.0],
        }
    }

    /// Reached when f ≤ this (the minimum plus 1e-6; for the saddle, f ≤ −1: escaped).
    fn target(self) -> f64 {
        match self {
            Surface::Saddle => -1.0,
            _ => 1e-6,
        }
    }

    /// The plotted window.
    fn window(self) -> ([f64; 2], [f64; 2]) {
        match self {
            Surface::IllConditioned => ([-10.0, 2.0], [-1.5, 1.5]),
            Surface::Saddle => ([-1.5, 1.5], [-1.5, 1.5]),
            Surface::Rosenbrock => ([-2.0, 2.0], [-1.0, 3.0]),
            Surface::Beale => ([-0.5, 4.0], [-1.0, 2.0]),
            Surface::Himmelblau => ([-5.0, 5.0], [-5.0, 5.0]),
        }
    }
}

/// The rules with their usual defaults; the step size is tuned.
fn rules() -> Vec<Rule> {
    vec![
        Rule::Gd { lr: 1e-3 },
        Rule::NoisyGd { lr: 1e-3, sigma: 1e-3 },
        Rule::Momentum { lr: 1e-3, rho: 0.9 },
        Rule::Nesterov { lr: 1e-3, rho: 0.9 },
        Rule::AdaGrad { lr: 1e-3 },
        Rule::RmsProp { lr: 1e-3, decay: 0.9, eps: 1e-8 },
        Rule::Adam { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 },
    ]
}

/// One cell: one rule on one surface, its step size tuned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// The surface.
    pub surface: Surface,
    /// The rule (its `lr` is a placeholder: the grid below is searched).
    pub rule: Rule,
    /// Step sizes tried: 10^(−5 + k/3), k = 0 … 18 (10⁻⁵ … 10¹).
    pub lr_grid: Vec<f64>,
    /// Iterations per run.
    pub iterations: usize,
    /// Seed of noisy GD's noise.
    pub seed: u64,
}

/// The best run of a cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The chosen step size.
    pub lr: f64,
    /// First iteration with f at or below the target, if reached.
    pub iterations_to_target: Option<usize>,
    /// f after the last iteration (±∞ or NaN for a run that blew up).
    #[serde(with = "measure::nonfinite")]
    pub final_value: f64,
    /// The iterations kept for `values` and `path`: every one of the first 100, then evenly
    /// spaced ones (at most about 400 more), and the last.
    pub at: Vec<usize>,
    /// f at each kept iteration (0 is the start).
    #[serde(with = "measure::nonfinite::vec")]
    pub values: Vec<f64>,
    /// The point at each kept iteration.
    pub path: Vec<[f64; 2]>,
}

/// Iterations 0 … `last` kept in a record: all of the first 100 (where the rules differ most),
/// then every `stride`-th so that about 400 more remain, and the last.
fn kept(last: usize) -> Vec<usize> {
    let stride = last.div_ceil(400).max(1);
    (0..=last).filter(|&k| k < 100 || k % stride == 0 || k == last).collect()
}

fn run_one(surface: Surface, rule: Rule, iterations: usize, seed: u64) -> Outcome {
    let mut p = surface.start().to_vec();
    let mut opt = Optimizer::new(rule, 2, seed);
    let (mut values, mut path) = (Vec::with_capacity(iterations + 1), Vec::with_capacity(iterations + 1));
    let mut reached = None;
    for k in 0..=iterations {
        let (f, g) = surface.eval(&p);
        values.push(f);
        path.push([p[0], p[1]]);
        if reached.is_none() && f <= surface.target() {
            reached = Some(k);
        }
        // Stop a diverging run (and a saddle run that has escaped far).
        if !f.is_finite() || f.abs() > 1e12 || k == iterations {
            break;
        }
        opt.step(&mut p, &g);
    }
    let final_value = *values.last().expect("at least the start");
    let at = kept(values.len() - 1);
    let values = at.iter().map(|&k| values[k]).collect();
    let path = at.iter().map(|&k| path[k]).collect();
    Outcome { lr: 0.0, iterations_to_target: reached, final_value, at, values, path }
}

struct Surfaces {
    cells: Vec<Cell>,
}

impl Study for Surfaces {
    type Cell = Cell;
    type Outcome = Outcome;
    const NAME: &'static str = "surfaces";

    fn cells(&self) -> Vec<Cell> {
        self.cells.clone()
    }

    fn label(cell: &Cell) -> String {
        format!("{:?}-{}", cell.surface, cell.rule.name().replace(' ', "-"))
    }

    fn run_cell(&self, cell: &Cell, _progress: &CellProgress) -> Result<Outcome> {
        // Fewest iterations to the target; among runs that never reach it, the lowest final
        // value (a diverged run ranks last).
        let key = |o: &Outcome| {
            (
                o.iterations_to_target.unwrap_or(usize::MAX),
                if o.final_value.is_finite() { o.final_value } else { f64::INFINITY },
            )
        };
        let best = cell
            .lr_grid
            .iter()
            .map(|&lr| Outcome { lr, ..run_one(cell.surface, cell.rule.with_lr(lr), cell.iterations, cell.seed) })
            .min_by(|a, b| key(a).0.cmp(&key(b).0).then(key(a).1.total_cmp(&key(b).1)))
            .ok_or_else(|| anyhow::anyhow!("an empty step-size grid"))?;
        Ok(best)
    }

    fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<Report> {
        report(records, dir).map(Report::text)
    }
}

/// `studies report surfaces`.
pub fn report_saved(out: &Path) -> Result<Report> {
    harness::report_saved::<Surfaces>(out)
}

/// A row of `surfaces.csv` (an empty `iterations_to_target` when the target was not reached).
#[derive(Serialize)]
struct SurfacesCsv<'a> {
    surface: String,
    rule: &'a str,
    lr: f64,
    iterations_to_target: Option<usize>,
    final_value: f64,
}

/// Builds the grid, runs it, writes the table and the plots.
pub fn run(args: Args) -> Result<Report> {
    if args.iterations == 0 {
        crate::usage!("--iterations 0: at least one iteration is needed (accepted: 1 or more)");
    }
    let (backend, device, jobs) = args.grid.validate()?;
    let master = args.grid.seed;
    let lr_grid: Vec<f64> = (0..=18).map(|k| 10f64.powf(-5.0 + k as f64 / 3.0)).collect();
    let mut cells = Vec::new();
    for surface in SURFACES {
        for rule in rules() {
            cells.push(Cell {
                surface,
                rule,
                lr_grid: lr_grid.clone(),
                iterations: args.iterations,
                seed: harness::derive_seed(master, &["surfaces", &format!("{surface:?}"), rule.name()]),
            });
        }
    }
    let opts = args.grid.options(jobs, crate::env::Env::capture(backend, &device, jobs))?;
    harness::execute(&Surfaces { cells }, &opts)
}

fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<String> {
    let names: Vec<&str> = rules().iter().map(|r| r.name()).collect();
    let mut md = String::from("# Update rules on test surfaces\n\n");
    writeln!(md, "{}\n", fill(
            include_str!("text/surfaces.md"),
            &[
                ("iterations", records[0].config.iterations.to_string()),
                ("grid", harness::describe_log_grid(&records[0].config.lr_grid)),
                ("constants", harness::describe_rule_constants(records.iter().map(|r| &r.config.rule))),
            ]
        ))?;
    write!(md, "| surface |")?;
    for n in &names {
        write!(md, " {n} |")?;
    }
    writeln!(md, "\n|---|{}", "---:|".repeat(names.len()))?;
    let mut csv = Vec::new();
    let mut contour_panels = Vec::new();
    let mut loss_panels = Vec::new();
    for surface in SURFACES {
        let rs: Vec<_> = records.iter().filter(|r| r.config.surface == surface).collect();
        if rs.is_empty() {
            continue;
        }
        write!(md, "| {} |", surface.name())?;
        for r in &rs {
            let o = &r.outcome;
            match o.iterations_to_target {
                Some(k) => write!(md, " {k} (α = {:.0e}) |", o.lr)?,
                None => write!(md, " — ({:.2e}, α = {:.0e}) |", o.final_value, o.lr)?,
            }
            csv.push(SurfacesCsv {
                surface: format!("{surface:?}"),
                rule: r.config.rule.name(),
                lr: o.lr,
                iterations_to_target: o.iterations_to_target,
                final_value: o.final_value,
            });
        }
        writeln!(md)?;
        let ([xa, xb], [ya, yb]) = surface.window();
        let n = 120;
        let xs: Vec<f64> = (0..n).map(|i| xa + (xb - xa) * i as f64 / (n - 1) as f64).collect();
        let ys: Vec<f64> = (0..n).map(|j| ya + (yb - ya) * j as f64 / (n - 1) as f64).collect();
        let z = ys.iter().map(|&y| xs.iter().map(|&x| surface.eval(&[x, y]).0).collect()).collect();
        let paths = rs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                (r.config.rule.name().to_string(), plot_color(i), r.outcome.path.iter().map(|p| (p[0], p[1])).collect())
            })
            .collect();
        contour_panels.push(ContourPaths { title: surface.name().into(), x: xs, y: ys, z, paths });
        // Loss against iteration: f − f* on a log axis (for the saddle, −f would be the escape;
        // we plot f on a linear axis instead).
        let series = rs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                // The saddle runs escape within a few dozen steps: show those.
                let shown = if surface == Surface::Saddle { 40 } else { usize::MAX };
                let (at, vals): (Vec<f64>, Vec<f64>) = r
                    .outcome
                    .at
                    .iter()
                    .zip(&r.outcome.values)
                    .take_while(|(k, _)| **k < shown)
                    .map(|(&k, &v)| (k as f64, if surface == Surface::Saddle { v.max(-10.0) } else { v.max(1e-12) }))
                    .unzip();
                Series {
                    label: r.config.rule.name().into(),
                    color: plot_color(i),
                    dashed: false,
                    x: at,
                    mean: vals.clone(),
                    std: vec![0.0; vals.len()],
                }
            })
            .collect();
        let mut p = Panel::new(
            surface.name(),
            "iteration",
            if surface == Surface::Saddle { "f (clipped at −10)" } else { "f − f* (log scale, floored at 1e-12)" },
            series,
        );
        p.log_y = surface != Surface::Saddle;
        p.legend = if surface == Surface::Saddle {
            plotters::prelude::SeriesLabelPosition::UpperRight
        } else {
            plotters::prelude::SeriesLabelPosition::MiddleRight
        };
        loss_panels.push(p);
    }
    std::fs::create_dir_all(dir)?;
    harness::write_atomic(&dir.join("surfaces.md"), md.as_bytes())?;
    harness::write_csv(&dir.join("surfaces.csv"), &csv)?;
    plot::write_contour_paths(&dir.join("trajectories"), &contour_panels, 3)?;
    plot::write_grid(&dir.join("losses"), 2, &loss_panels)?;
    Ok(md)
}

/// Seven distinct colours: the palette's six and black.
fn plot_color(i: usize) -> plotters::style::RGBColor {
    if i < PALETTE.len() { PALETTE[i] } else { plotters::style::RGBColor(0, 0, 0) }
}
