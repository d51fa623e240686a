//! `studies`: flatland's command line. Each study is a module behind the [`harness::Study`] trait,
//! registered by one line in `studies!` below; this file only parses arguments and dispatches.

mod bench;
mod data;
mod datacmd;
mod env;
mod figure;
mod harness;
mod measurement;
mod plot;
mod predict;
mod scale;
mod shard;
mod slurm;
mod stats;

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

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Parser, Subcommand};
use harness::Report;

/// The command name of a study: its module's name, or the name given after `=` (for a name
/// with a hyphen, which a module name cannot have).
macro_rules! command_name {
    ($module:ident) => {
        stringify!($module)
    };
    ($module:ident $name:literal) => {
        $name
    };
}

/// Registers the studies: one line each, `Variant: module` or `Variant: module = "command-name"`
/// (the macro declares the module too). A study module provides `ABOUT`
/// (its one-line description), `Args` (its flags), `run(Args) -> Result<Report>` and
/// `report_saved(&Path) -> Result<Report>` (its tables from records alone, for `studies report`).
macro_rules! studies {
    ($($variant:ident: $module:ident $(= $name:literal)?),* $(,)?) => {
        $(mod $module;)*

        #[derive(Subcommand)]
        enum Command {
            /// List the studies with a one-line description.
            List,
            $(
                #[command(name = command_name!($module $($name)?), about = $module::ABOUT)]
                $variant($module::Args),
            )*
            /// Rebuild a study's tables and plots from its records alone (no data, no device).
            Report(ReportArgs),
            /// The real datasets: list, verify, fetch.
            Data(datacmd::Args),
            /// Training throughput of F1 and parallel efficiency of the default grid.
            Bench(bench::Args),
            /// Run a study's grid as a Slurm job array (one shard per task) plus a report job.
            Slurm(slurm::Args),
        }

        /// Every study's name and description, in `studies list` order.
        const STUDIES: &[(&str, &str)] = &[$((command_name!($module $($name)?), $module::ABOUT)),*];

        /// Runs a study command.
        fn run_study(command: Command) -> Result<Report> {
            match command {
                $(Command::$variant(args) => $module::run(args),)*
                Command::Report(args) => {
                    if args.reuse_stale {
                        harness::allow_mixed_code();
                    }
                    report(&args.study, &args.out)
                }
                Command::List => {
                    for (name, about) in STUDIES {
                        println!("{name:<11} {about}");
                    }
                    Ok(Report::text(String::new()))
                }
                Command::Data(args) => datacmd::run(args).map(|()| Report::text(String::new())),
                Command::Bench(args) => bench::run(args).map(|()| Report::text(String::new())),
                Command::Slurm(args) => slurm::run(args, check_study_command).map(|()| Report::text(String::new())),
            }
        }

        /// `studies report <study>`.
        fn report(study: &str, out: &Path) -> Result<Report> {
            match study {
                $(command_name!($module $($name)?) => $module::report_saved(out),)*
                other => crate::usage!(
                    "studies report {other}: no such study; accepted: {}",
                    STUDIES.iter().map(|s| s.0).collect::<Vec<_>>().join(", ")
                ),
            }
        }
    };
}

studies! {
    Keskar: keskar,
    Sweep: sweep,
    Warmstart: warmstart,
    Trajectory: trajectory,
    Landscape: landscape,
    Convex: convex,
    Momentum: momentum,
    Surfaces: surfaces,
    Saddle: saddle,
    Optimizers: optimizers,
    Mnist1d: mnist1d,
    DeepLinear: deep_linear = "deep-linear",
    Rescaling: rescaling,
    SpinGlass: spin_glass = "spin-glass",
    ProtocolGap: protocol_gap = "protocol-gap",
    Toy: toy,
}

/// Reproducible studies of how neural networks train: where optimizers land, sharp or flat
/// minima, and why it matters for generalization.
#[derive(Parser)]
#[command(name = "studies", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Checks that `args` (a study's name and flags) is a study command `studies` accepts.
fn check_study_command(args: &[String]) -> Result<()> {
    let name = args.first().map_or("", String::as_str);
    if !STUDIES.iter().any(|(n, _)| *n == name) {
        usage!(
            "studies slurm {name}: not a study; accepted: {}",
            STUDIES.iter().map(|s| s.0).collect::<Vec<_>>().join(", ")
        );
    }
    let argv = std::iter::once("studies".to_string()).chain(args.iter().cloned());
    if let Err(e) = Cli::try_parse_from(argv) {
        usage!("studies slurm: the study's flags do not parse: {}", e.render().to_string().trim());
    }
    Ok(())
}

/// Arguments of `studies report`.
#[derive(clap::Args, Debug)]
struct ReportArgs {
    /// The study whose tables to rebuild (see `studies list`).
    study: String,
    /// Output folder the study wrote into (its records are under <OUT>/<study>/records/). A grid
    /// run in shards is merged first: every cell must have its record.
    #[arg(long, default_value = "results")]
    out: PathBuf,
    /// Report records made by different code or backends together (refused otherwise).
    #[arg(long)]
    reuse_stale: bool,
}

/// Exit status: 0 success, 1 a failed run or a study whose scientific check failed, 2 a usage
/// error (bad flag value, missing data, records that need a decision).
fn main() -> ExitCode {
    never_purge();
    let cli = Cli::parse();
    match run_study(cli.command) {
        Ok(report) => {
            if !report.text.is_empty() {
                println!("{}", report.text);
            }
            if report.passed {
                ExitCode::SUCCESS
            } else {
                eprintln!("the study's check failed (see the report above)");
                ExitCode::from(1)
            }
        }
        Err(err) if err.downcast_ref::<harness::Stop>().is_some() => {
            println!("{err}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            if err.downcast_ref::<harness::Usage>().is_some() { ExitCode::from(2) } else { ExitCode::from(1) }
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
