//! `studies bench`: training throughput of F1 (samples/s) at the paper's batch sizes 256 and
//! 6000, and the default Keskar grid's wall time at `--jobs 1` and `--jobs 2` (parallel
//! efficiency). A benchmark, not a test: numbers vary by machine.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::Result;
use nets::train::{NetSpec, throughput};

use crate::harness::{self, GridArgs};
use crate::keskar;

/// Arguments of `studies bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Timed Adam steps per batch size (after one warm-up step).
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Also time the default Keskar grid at --jobs 1 and --jobs 2 (minutes).
    #[arg(long)]
    pub grid: bool,
    /// Seeds of that grid (5 is the default run's).
    #[arg(long, default_value_t = 5)]
    pub grid_seeds: usize,
    #[command(flatten)]
    pub common: GridArgs,
}

/// Runs the benchmark and writes `<out>/bench/bench.md`.
pub fn run(args: Args) -> Result<()> {
    let (backend, device, _) = args.common.validate()?;
    if args.steps == 0 {
        anyhow::bail!("--steps 0: at least one step is needed (accepted: 1 or more)");
    }
    harness::check_writable(&args.common.out)?;
    let threads = rayon::current_num_threads();
    let mut md = String::new();
    writeln!(md, "# flatland benchmark\n")?;
    let env = crate::env::Env::capture(backend, &device, threads);
    writeln!(md, "Backend {}, CPU {}, {} threads, git {}{}.\n", env.backend, env.cpu, threads, &env.git_commit[..env.git_commit.len().min(10)], if env.git_dirty { " (dirty)" } else { "" })?;
    writeln!(md, "| what | batch | steps | samples/s |")?;
    writeln!(md, "|---|---:|---:|---:|")?;
    for batch in [256, 6000] {
        let rate = throughput(&NetSpec::Mlp(nets::mlp::f1()), batch, args.steps, &device);
        eprintln!("F1 batch {batch}: {rate:.0} samples/s");
        writeln!(md, "| F1 (784-5×512-10) training step | {batch} | {} | {rate:.0} |", args.steps)?;
    }
    if args.grid {
        writeln!(md, "\n| default keskar grid | jobs | wall time (s) |")?;
        writeln!(md, "|---|---:|---:|")?;
        let mut times = Vec::new();
        for jobs in [1, 2] {
            let dir = tempfile_dir(&args.common.out, jobs)?;
            let start = Instant::now();
            keskar::run(keskar::Args {
                scale: keskar::Scale::Default,
                nets: None,
                seeds: args.grid_seeds,
                epochs: None,
                data_dir: None,
                grid: GridArgs { jobs: Some(jobs), out: dir.clone(), backend: args.common.backend.clone(), seed: args.common.seed },
            })?;
            let secs = start.elapsed().as_secs_f64();
            std::fs::remove_dir_all(&dir).ok();
            writeln!(md, "| {} seeds | {jobs} | {secs:.1} |", args.grid_seeds)?;
            times.push(secs);
        }
        writeln!(md, "\nParallel efficiency at 2 jobs: {:.0} % (speed-up {:.2}×).", 100.0 * times[0] / (2.0 * times[1]), times[0] / times[1])?;
    }
    let path = args.common.out.join("bench").join("bench.md");
    harness::write_atomic(&path, md.as_bytes())?;
    println!("{md}");
    Ok(())
}

/// A fresh scratch folder for one timed grid run.
fn tempfile_dir(out: &std::path::Path, jobs: usize) -> Result<std::path::PathBuf> {
    let dir = out.join("bench").join(format!(".grid-jobs{jobs}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
