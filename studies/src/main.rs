//! `studies`: flatland's command line. Each study is a module behind the [`harness::Study`] trait;
//! this file only parses arguments and dispatches.

mod bench;
mod convex;
mod data;
mod datacmd;
mod env;
mod harness;
mod keskar;
mod landscape;
mod mnist1d;
mod momentum;
mod optimizers;
mod plot;
mod saddle;
mod stats;
mod surfaces;
mod sweep;
mod trajectory;
mod warmstart;

use std::process::ExitCode;

/// mimalloc keeps freed memory for reuse where the system allocator hands large buffers back
/// to the kernel and faults them in again at the next step (README: Performance).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc 3's `mimalloc.h` (the enum's 16th entry; libmimalloc-sys
/// names no constant for it). A test checks that this index holds the option's default here.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Tells mimalloc never to hand freed memory back to the kernel (unless the user chose with
/// `MIMALLOC_PURGE_DELAY`): a training step frees and reallocates the same large activation
/// buffers every step, and on a VM each page handed back costs a fault and a zeroing when it
/// returns (C1's steps ran 10–30 % faster without). Peak memory is unchanged.
fn never_purge() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: a plain call into mimalloc's option API with a valid option index.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}

use clap::{Parser, Subcommand};

/// Reproducible studies of how neural networks train: where optimizers land, sharp or flat
/// minima, and why it matters for generalization.
#[derive(Parser)]
#[command(name = "studies", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the studies with a one-line description.
    List,
    /// Keskar et al. 2017, Tables 2–4 and Figure 3: SB vs LB Adam, accuracy, sharpness, curvature.
    Keskar(keskar::Args),
    /// Keskar et al. 2017, Figure 4: test accuracy and sharpness against the batch size.
    Sweep(keskar::FigureArgs),
    /// Keskar et al. 2017, Figure 5: LB training warm-started from SB iterates.
    Warmstart(keskar::FigureArgs),
    /// Keskar et al. 2017, Figure 6: sharpness against training loss along training.
    Trajectory(keskar::FigureArgs),
    /// 2-D loss landscapes around the SB and LB solutions (Li et al. 2018).
    Landscape(keskar::FigureArgs),
    /// Gradient descent on linear regression: convergence to the normal equations, the 2/L threshold.
    Convex(convex::Args),
    /// GD vs heavy-ball momentum on quadratics: measured rates against (κ−1)/(κ+1) and (√κ−1)/(√κ+1).
    Momentum(momentum::Args),
    /// Every update rule on 2-D test surfaces: tuned step sizes, trajectories, iterations to tolerance.
    Surfaces(surfaces::Args),
    /// GD vs GD with Gaussian noise at a strict saddle: escape probability and time against σ.
    Saddle(saddle::Args),
    /// The seven update rules training the F1-family MLP on MNIST-1D: tuned step sizes, 5 seeds.
    Optimizers(optimizers::Args),
    /// Greydanus & Kobak's MNIST-1D baselines on our generator, beside the published accuracies.
    Mnist1d(mnist1d::Args),
    /// The real datasets: list, verify, fetch.
    Data(datacmd::Args),
    /// Training throughput of F1 and parallel efficiency of the default grid.
    Bench(bench::Args),
}

/// Studies and their one-line descriptions, as `studies list` prints them (`data` and `bench`
/// are tools, listed by `--help`).
const STUDIES: &[(&str, &str)] = &[
    (
        "keskar",
        "Keskar et al. 2017 Tables 2-4, Fig. 3: SB vs LB Adam, accuracy, sharpness, curvature, with the paper's numbers",
    ),
    ("sweep", "Keskar et al. 2017 Fig. 4: test accuracy and sharpness against the batch size"),
    ("warmstart", "Keskar et al. 2017 Fig. 5: LB training warm-started from SB iterates after k epochs"),
    ("trajectory", "Keskar et al. 2017 Fig. 6: sharpness against training loss along SB and LB training"),
    ("landscape", "2-D loss landscape around the SB and LB solutions, filter-normalized directions (Li et al. 2018)"),
    (
        "convex",
        "GD on linear regression: reaches the normal-equations solution; step-size threshold 2/L found empirically",
    ),
    ("momentum", "GD vs heavy-ball momentum on quadratics, κ = 10…10⁴: measured convergence rates against the theory"),
    (
        "surfaces",
        "The seven update rules on an ill-conditioned quadratic, a saddle, Rosenbrock, Beale, Himmelblau: trajectories",
    ),
    (
        "saddle",
        "GD stuck on a saddle's stable manifold vs noisy GD (Ge et al. 2015): escape probability and time against σ",
    ),
    (
        "optimizers",
        "The seven update rules training the F1-family MLP on MNIST-1D: step sizes tuned, curves over 5 seeds",
    ),
    (
        "mnist1d",
        "MNIST-1D fidelity: logistic regression, MLP and CNN baselines on our generator vs the published accuracies",
    ),
];

fn main() -> ExitCode {
    never_purge();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::List => {
            for (name, about) in STUDIES {
                println!("{name:<11} {about}");
            }
            Ok(())
        }
        Command::Keskar(args) => keskar::run(args),
        Command::Mnist1d(args) => mnist1d::run(args),
        Command::Convex(args) => convex::run(args),
        Command::Momentum(args) => momentum::run(args),
        Command::Surfaces(args) => surfaces::run(args),
        Command::Saddle(args) => saddle::run(args),
        Command::Optimizers(args) => optimizers::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Warmstart(args) => warmstart::run(args),
        Command::Trajectory(args) => trajectory::run(args),
        Command::Landscape(args) => landscape::run(args),
        Command::Data(args) => datacmd::run(args),
        Command::Bench(args) => bench::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }

    /// The index is mimalloc's purge delay: its default in the pinned mimalloc (1000 ms) sits
    /// there, and no neighbouring option has that default.
    #[test]
    fn purge_delay_index_holds_its_default() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) }, 1000);
        }
    }
}
