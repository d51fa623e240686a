//! `studies bench`: how fast flatland trains and measures, on this machine, beside PyTorch.
//!
//! Every figure is the median of `--reps` timed repetitions after untimed warm-up steps, with
//! the min–max spread: F1 and C1 training steps (Adam) at the paper's batch sizes, the
//! full-set loss-and-gradient evaluation that sharpness uses, data generation and batch
//! assembly, a 4096² matrix multiply (the GEMM peak), and the grid's throughput at
//! `--jobs 1..cores`. `--compare-torch` runs `bench/torch_bench.py` beside us, a process per
//! figure, and alternates repetitions, one of ours then one of PyTorch's, so both sides see the
//! same machine (a shared VM's speed drifts by tens of percent within minutes, more than the
//! gaps measured), and prints the ratios against the targets of README's Performance section;
//! `--memory` runs the default keskar run and the F1 paper protocol as child processes for
//! their peak resident memory and wall time. A benchmark, not a test: the numbers belong to
//! the machine.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use datasets::{Dataset, Split, mnist1d};
use measure::Objective;
use nets::Device;
use nets::objective::BatchNormMode;
use nets::train::{NetSpec, step_timer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::harness::{self, GridArgs, fill};

/// Arguments of `studies bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Timed repetitions of each figure (the median is quoted, min–max is the spread).
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Training steps per repetition at batch 256 (fewer at larger batches, for about the same
    /// samples per repetition).
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Thread counts to measure at (default: 1 and every core).
    #[arg(long, value_delimiter = ',')]
    pub threads: Vec<usize>,
    /// C1 batch sizes.
    #[arg(long, value_delimiter = ',', default_values_t = [256, 1000, 5000])]
    pub c1_batches: Vec<usize>,
    /// Also run the PyTorch reference (bench/torch_bench.py) and print the ratios.
    #[arg(long)]
    pub compare_torch: bool,
    /// Python with torch installed, for --compare-torch (default: $FLATLAND_PYTHON, else python3).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Also run PyTorch's C1 with this jemalloc preloaded and never purging (the issue's
    /// allocator-tuned reference), e.g. /usr/lib/x86_64-linux-gnu/libjemalloc.so.2.
    #[arg(long)]
    pub torch_jemalloc: Option<PathBuf>,
    /// Also measure peak memory and wall time of the default keskar run and of the F1 paper
    /// protocol (its first epoch; needs MNIST), both at --jobs = cores (about 6 minutes).
    #[arg(long)]
    pub memory: bool,
    /// Folder holding the datasets, for --memory (default: $FLATLAND_DATA, else the cache folder).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub common: GridArgs,
}

/// One measured figure: flatland's rates and, when compared, PyTorch's.
#[derive(Debug, Clone)]
struct Figure {
    what: String,
    batch: usize,
    threads: usize,
    unit: &'static str,
    ours: Vec<f64>,
    torch: Option<Vec<f64>>,
    /// C1 with --torch-jemalloc: a second pass of ours, and PyTorch's with jemalloc never
    /// purging, alternated the same way.
    torch_tuned: Option<(Vec<f64>, Vec<f64>)>,
    /// The target as text and whether it is met (filled in once both sides are known).
    target: Option<(String, bool)>,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 { s[n / 2] } else { 0.5 * (s[n / 2 - 1] + s[n / 2]) }
}

fn spread(v: &[f64]) -> (f64, f64) {
    crate::stats::min_max(v.iter().copied())
}

/// Floating-point operations of one F1-family training step per sample: forward 2·MACs,
/// backward 4·MACs less the input gradient of the first layer (never needed).
fn mlp_train_flops(spec: &nets::mlp::MlpSpec) -> f64 {
    let mut macs = 0usize;
    let mut last = spec.input;
    for _ in 0..spec.depth {
        macs += last * spec.width;
        last = spec.width;
    }
    macs += last * spec.classes;
    (6 * macs - 2 * spec.input * spec.width) as f64
}

/// A rayon pool of `threads` threads (Burn's flex backend, its matrix multiply and our fused
/// kernels use the current pool).
fn pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().context("building the thread pool")
}

fn random_split(n: usize, features: usize, seed: u64) -> Split {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Split {
        features: (0..n * features).map(|_| rng.random_range(-1.0..1.0)).collect(),
        labels: (0..n).map(|i| (i % 10) as u32).collect(),
    }
}

/// A timer of F1's loss and gradient over `data`'s training set in chunks of 500 (inference
/// mode, what sharpness and curvature evaluate): one evaluation per call, in samples/s.
fn full_gradient_timer<'a>(data: &'a Dataset, device: &Device) -> impl FnMut() -> f64 + use<'a> {
    let spec = NetSpec::Mlp(nets::mlp::f1());
    let weights = spec.initial_weights(0, device);
    let mut objective = spec.training_loss(&weights, data, 500, BatchNormMode::Running, device);
    let theta = weights.params_f64();
    let mut grad = vec![0.0; theta.len()];
    objective.value_grad(&theta, &mut grad);
    move || {
        let start = Instant::now();
        objective.value_grad(&theta, &mut grad);
        data.train.len() as f64 / start.elapsed().as_secs_f64()
    }
}

/// The Python that runs the PyTorch reference: --python, else $FLATLAND_PYTHON, else python3.
fn python(args: &Args) -> PathBuf {
    args.python
        .clone()
        .or_else(|| std::env::var_os("FLATLAND_PYTHON").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("python3"))
}

/// Fails early, before the minutes of measuring, when the Python given cannot import torch.
fn check_torch(args: &Args) -> Result<()> {
    let python = python(args);
    let out = Command::new(&python).args(["-c", "import torch"]).output();
    match out {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => bail!(
            "--compare-torch: {} cannot import torch ({}); install it as README's Performance section says, then give --python or FLATLAND_PYTHON",
            python.display(),
            String::from_utf8_lossy(&o.stderr).trim().lines().last().unwrap_or("no message")
        ),
        Err(e) => bail!(
            "--compare-torch: cannot start {} ({e}); give --python or FLATLAND_PYTHON: a Python with torch installed",
            python.display()
        ),
    }
}

/// One timed repetition asked of the PyTorch reference.
#[derive(Debug, Clone, Copy)]
struct Request {
    what: &'static str,
    batch: usize,
    threads: usize,
    steps: usize,
}

/// A line of bench/torch_bench.py's output: its version first, then one rate per request.
#[derive(Debug, Deserialize)]
struct Reply {
    rate: Option<f64>,
    torch: Option<String>,
}

/// A running bench/torch_bench.py, answering one timed repetition per request.
struct Torch {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    version: String,
}

impl Torch {
    fn start(args: &Args, env: &[(&str, String)]) -> Result<Torch> {
        let python = python(args);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/torch_bench.py");
        let mut child = Command::new(&python)
            .arg(&script)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} {} (give --python or FLATLAND_PYTHON: a Python with torch)",
                    python.display(),
                    script.display()
                )
            })?;
        let (input, output) = (child.stdin.take().expect("piped"), BufReader::new(child.stdout.take().expect("piped")));
        let mut torch = Torch { child, input, output, version: String::new() };
        torch.version = torch.reply()?.torch.context("the PyTorch reference's first line names no version")?;
        Ok(torch)
    }

    fn reply(&mut self) -> Result<Reply> {
        let mut line = String::new();
        if self.output.read_line(&mut line)? == 0 {
            let status = self.child.wait()?;
            bail!("the PyTorch reference stopped ({status}); its error is above");
        }
        serde_json::from_str(&line).with_context(|| format!("reading the PyTorch reference's line {line:?}"))
    }

    fn send(&mut self, r: Request) -> Result<()> {
        writeln!(self.input, "{}", json!({"what": r.what, "batch": r.batch, "threads": r.threads, "steps": r.steps}))
            .context("writing to the PyTorch reference")
    }

    fn receive(&mut self) -> Result<f64> {
        self.reply()?.rate.context("the PyTorch reference answered without a rate")
    }

    fn rate(&mut self, r: Request) -> Result<f64> {
        self.send(r)?;
        self.receive()
    }
}

impl Drop for Torch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `reps` repetitions of ours (`build` makes the timer, warm-up included, on `pool`), each
/// followed by one of `reference`'s where there is one.
fn alternate<R: FnMut() -> f64>(
    pool: &rayon::ThreadPool,
    reps: usize,
    request: Request,
    build: &(impl Fn() -> R + Sync),
    mut reference: Option<Torch>,
) -> Result<(Vec<f64>, Vec<f64>)> {
    pool.install(move || {
        let mut rep = build();
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            ours.push(rep());
            if let Some(torch) = reference.as_mut() {
                theirs.push(torch.rate(request)?);
            }
        }
        Ok((ours, theirs))
    })
}

/// The measurements, and how to start the references.
struct Bench<'a> {
    args: &'a Args,
    figures: Vec<Figure>,
    /// The environment of jemalloc-tuned PyTorch (for C1), where asked for.
    tuned_env: Option<[(&'static str, String); 2]>,
    /// PyTorch's version, once a reference has started.
    torch_version: Option<String>,
}

impl Bench<'_> {
    /// A fresh PyTorch reference for one figure (plain, or jemalloc-tuned with `tuned`), or
    /// none without --compare-torch. One figure's process at a time: C1 at batch 5000 takes
    /// about 7 GB in each of us and PyTorch, and a process kept for every figure would keep its
    /// peak too.
    fn reference(&mut self, tuned: bool) -> Result<Option<Torch>> {
        let env: &[(&str, String)] = match (&self.tuned_env, tuned) {
            _ if !self.args.compare_torch => return Ok(None),
            (Some(env), true) => env,
            (None, true) => return Ok(None),
            (_, false) => &[],
        };
        let torch = Torch::start(self.args, env)?;
        self.torch_version.get_or_insert_with(|| torch.version.clone());
        Ok(Some(torch))
    }

    /// One figure: on `pool`, `build` makes our timer (warm-up included), then
    /// `reps` repetitions of ours alternate with PyTorch's, so each pair of repetitions sees the
    /// same machine; where `tuned`, a second pass alternates ours with jemalloc-tuned PyTorch's.
    #[allow(clippy::too_many_arguments)]
    fn figure<R: FnMut() -> f64>(
        &mut self,
        pool: &rayon::ThreadPool,
        what: &'static str,
        batch: usize,
        unit: &'static str,
        steps: usize,
        tuned: bool,
        build: impl Fn() -> R + Sync,
    ) -> Result<()> {
        let threads = pool.current_num_threads();
        let request = Request { what, batch, threads, steps };
        let reference = self.reference(false)?;
        let (ours, torch) = alternate(pool, self.args.reps, request, &build, reference)?;
        let torch_tuned = match tuned.then(|| self.reference(true)).transpose()?.flatten() {
            Some(reference) => Some(alternate(pool, self.args.reps, request, &build, Some(reference))?),
            None => None,
        };
        let torch = (!torch.is_empty()).then_some(torch);
        self.push(Figure { what: what.into(), batch, threads, unit, ours, torch, torch_tuned, target: None });
        Ok(())
    }

    /// The grid's samples/s at `jobs` cells at once (F1, batch 256, building each network
    /// included, as `run_grid` runs them), summed over the cells; at `jobs` = cores alternated
    /// with PyTorch's best on all cores run the same way: one single-threaded process per core.
    fn grid(&mut self, jobs: usize, steps: usize, cores: usize, device: &Device) -> Result<()> {
        let spec = NetSpec::Mlp(nets::mlp::f1());
        let mut cells = Vec::new();
        if jobs == cores {
            for _ in 0..cores {
                cells.extend(self.reference(false)?);
            }
        }
        let request = Request { what: "f1-grid-cell", batch: 256, threads: 1, steps };
        // Untimed: a fresh process's first step pays for torch's lazy initialisation.
        for cell in &mut cells {
            cell.rate(Request { steps: 1, ..request })?;
        }
        let reps = self.args.reps;
        let (ours, theirs) = pool(jobs)?.install(|| -> Result<_> {
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            for _ in 0..reps {
                let start = Instant::now();
                (0..jobs).into_par_iter().for_each(|_| {
                    step_timer(&spec, 256, 0, device)(steps);
                });
                ours.push((jobs * steps * 256) as f64 / start.elapsed().as_secs_f64());
                if !cells.is_empty() {
                    let start = Instant::now();
                    cells.iter_mut().try_for_each(|c| c.send(request))?;
                    cells.iter_mut().try_for_each(|c| c.receive().map(drop))?;
                    theirs.push((cells.len() * steps * 256) as f64 / start.elapsed().as_secs_f64());
                }
            }
            Ok((ours, theirs))
        })?;
        let torch = (!theirs.is_empty()).then_some(theirs);
        self.push(Figure {
            what: "f1-grid".into(),
            batch: 256,
            threads: jobs,
            unit: "samples/s",
            ours,
            torch,
            torch_tuned: None,
            target: None,
        });
        Ok(())
    }

    fn push(&mut self, f: Figure) {
        let theirs = f.torch.as_ref().map_or(String::new(), |t| format!(", PyTorch {:.1}", median(t)));
        eprintln!(
            "{} batch {} threads {}: {:.1} {}{theirs} (median of {})",
            f.what,
            f.batch,
            f.threads,
            median(&f.ours),
            f.unit,
            f.ours.len()
        );
        self.figures.push(f);
    }
}

/// Peak resident memory (MiB) and wall time (s) of a child process: its VmHWM (the kernel's
/// high-water mark of its resident set) read every 50 ms until it exits. The rusage of wait4
/// would not do: a child started by posix_spawn shares our address space until exec, and the
/// kernel carries our own peak into its count.
#[cfg(target_os = "linux")]
fn peak_memory(cmd: &mut Command) -> Result<(f64, f64)> {
    let start = Instant::now();
    let mut child = cmd.stdout(Stdio::null()).spawn().context("starting the run")?;
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    let status = loop {
        if let Some(hwm) = std::fs::read_to_string(&status_file).ok().and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        }) {
            peak_kib = peak_kib.max(hwm);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    if !status.success() {
        bail!("the run failed ({status})");
    }
    Ok((peak_kib as f64 / 1024.0, start.elapsed().as_secs_f64()))
}

#[cfg(not(target_os = "linux"))]
fn peak_memory(_cmd: &mut Command) -> Result<(f64, f64)> {
    bail!("--memory reads the child's peak memory from /proc, which needs Linux")
}

/// Runs the benchmark and writes `<out>/bench/bench.{md,csv}`.
pub fn run(args: Args) -> Result<()> {
    let (backend, device, _) = args.common.validate()?;
    if args.steps == 0 || args.reps == 0 {
        crate::usage!("--steps {} --reps {}: both must be at least 1", args.steps, args.reps);
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let threads = if args.threads.is_empty() { harness::distinct([1, cores]) } else { args.threads.clone() };
    if let Some(&t) = threads.iter().find(|&&t| t == 0) {
        crate::usage!("--threads {t}: thread counts must be at least 1");
    }
    if let Some(&b) = args.c1_batches.iter().find(|&&b| b == 0) {
        crate::usage!("--c1-batches {b}: batch sizes must be at least 1");
    }
    harness::check_writable(&args.common.out)?;
    if args.compare_torch {
        check_torch(&args)?;
    }
    if let Some(lib) = args.torch_jemalloc.as_ref().filter(|l| !l.exists()) {
        crate::usage!(
            "--torch-jemalloc {}: no such file (Debian's package libjemalloc2 installs /usr/lib/x86_64-linux-gnu/libjemalloc.so.2)",
            lib.display()
        );
    }
    let steps = args.steps;
    let steps_at = |batch: usize| (steps * 256 / batch).max(1);
    let f1 = NetSpec::Mlp(nets::mlp::f1());
    let c1 = NetSpec::Shallow(nets::shallow::c1());
    let tuned_env = args.torch_jemalloc.as_ref().map(|lib| {
        [("LD_PRELOAD", lib.display().to_string()), ("MALLOC_CONF", "dirty_decay_ms:-1,muzzy_decay_ms:-1".to_string())]
    });
    let mut bench = Bench { args: &args, figures: Vec::new(), tuned_env, torch_version: None };
    if args.compare_torch {
        eprintln!("PyTorch reference: {} bench/torch_bench.py, one process per figure", python(&args).display());
    }
    let random = Dataset {
        name: "random".into(),
        sample_shape: vec![784],
        classes: 10,
        class_names: (0..10).map(|c| c.to_string()).collect(),
        train: random_split(10000, 784, 4),
        test: Split { features: vec![], labels: vec![] },
        provenance: "uniform(−1, 1) inputs".into(),
    };
    for &t in &threads {
        // One pool for all of a thread count's figures: a pool's threads keep their allocator
        // heaps (mimalloc never purges here), so a new pool per figure would hold C1's peak at
        // batch 5000 once more for every pool.
        let pool = pool(t)?;
        bench.figure(&pool, "matmul-4096", 4096, "GFLOP/s", 1, false, || nets::backend::matmul_timer(4096, &device))?;
        for batch in [256, 6000] {
            let steps = steps_at(batch).max(2);
            bench.figure(&pool, "f1-train", batch, "samples/s", steps, false, || {
                let mut rep = step_timer(&f1, batch, 2, &device);
                move || rep(steps)
            })?;
        }
        for &batch in &args.c1_batches {
            let steps = steps_at(batch);
            bench.figure(&pool, "c1-train", batch, "samples/s", steps, true, || {
                let mut rep = step_timer(&c1, batch, 1, &device);
                move || rep(steps)
            })?;
        }
        bench.figure(&pool, "f1-full-gradient", random.train.len(), "samples/s", 1, false, || {
            full_gradient_timer(&random, &device)
        })?;
    }
    for jobs in 1..=cores {
        bench.grid(jobs, steps, cores, &device)?;
    }
    let (torch_version, mut figures) = (bench.torch_version, bench.figures);
    let generate: Vec<f64> = (0..args.reps)
        .map(|_| {
            let start = Instant::now();
            let data = mnist1d::generate(&mnist1d::Config::default());
            (data.train.len() + data.test.len()) as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    let split = random_split(60000, 784, 5);
    let assemble: Vec<f64> = (0..args.reps)
        .map(|_| {
            let order: Vec<usize> = (0..split.len()).rev().collect();
            let start = Instant::now();
            for idx in order.chunks(256) {
                let _ = nets::train::batch(&split, idx, 784, &device);
            }
            split.len() as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    for (what, batch, ours) in [("mnist1d-generate", 0, generate), ("batch-assembly", 256, assemble)] {
        eprintln!("{what}: {:.0} samples/s (median of {})", median(&ours), ours.len());
        figures.push(Figure {
            what: what.into(),
            batch,
            threads: 1,
            unit: "samples/s",
            ours,
            torch: None,
            torch_tuned: None,
            target: None,
        });
    }

    let mut notes = Vec::new();
    if args.compare_torch {
        notes.push(set_targets(&mut figures, cores));
    }

    let mut memory = Vec::new();
    if args.memory {
        let exe = std::env::current_exe().context("locating the studies binary")?;
        let scratch = args.common.out.join("bench").join(format!(".memory-{}", std::process::id()));
        let jobs = cores.to_string();
        let mut default = Command::new(&exe);
        default.args(["keskar", "--jobs", &jobs, "--out"]).arg(scratch.join("default"));
        let (mib, secs) = peak_memory(&mut default)?;
        memory.push(("default keskar run (`studies keskar`)".to_string(), mib, secs));
        let mut paper = Command::new(&exe);
        paper
            .args([
                "keskar", "--scale", "paper", "--nets", "f1", "--seeds", "1", "--epochs", "1", "--jobs", &jobs, "--out",
            ])
            .arg(scratch.join("paper"));
        if let Some(d) = &args.data_dir {
            paper.arg("--data-dir").arg(d);
        }
        match peak_memory(&mut paper) {
            Ok((mib, secs)) => memory.push(("F1 paper protocol, SB and LB at once, first epoch (`keskar --scale paper --nets f1 --seeds 1 --epochs 1`)".to_string(), mib, secs)),
            Err(e) => eprintln!("skipping the F1 paper protocol's memory: {e:#} (is MNIST in the data folder? `studies data fetch mnist`)"),
        }
        std::fs::remove_dir_all(&scratch).ok();
    }

    let env = crate::env::Env::capture(backend, &device, cores);
    let (md, csv) = report(&figures, &memory, &notes, &env, torch_version.as_deref(), &args, cores)?;
    let dir = args.common.out.join("bench");
    std::fs::create_dir_all(&dir)?;
    harness::write_atomic(&dir.join("bench.md"), md.as_bytes())?;
    harness::write_csv(&dir.join("bench.csv"), &csv)?;
    println!("{md}");
    Ok(())
}

/// Sets the targets of the issue (README: Performance) on the figures measured beside PyTorch.
/// Returns a note on which PyTorch setup was the best on all cores.
fn set_targets(figures: &mut [Figure], cores: usize) -> String {
    let theirs = |what: &str, batch: usize, threads: usize| {
        figures
            .iter()
            .find(|f| f.what == what && f.batch == batch && f.threads == threads)
            .and_then(|f| f.torch.as_deref())
            .map(median)
    };
    let rate = |r: Option<f64>| r.map_or("not measured".to_string(), |r| format!("{r:.0} samples/s"));
    let one_process = theirs("f1-train", 256, cores);
    let processes = theirs("f1-grid", 256, cores);
    let note = fill(
        include_str!("text/bench-torch-cores.md"),
        &[("cores", cores.to_string()), ("one_process", rate(one_process)), ("processes", rate(processes))],
    );
    let peak: Vec<(usize, f64)> = figures
        .iter()
        .filter(|f| f.what == "matmul-4096")
        .map(|f| (f.threads, median(&f.ours).max(f.torch.as_deref().map_or(0.0, median))))
        .collect();
    let f1_flops = mlp_train_flops(&nets::mlp::f1());
    for f in figures.iter_mut() {
        let Some(t) = &f.torch else { continue };
        let ratio = median(&f.ours) / median(t);
        f.target = match f.what.as_str() {
            // Training, and the full-set loss and gradient that sharpness and curvature spend
            // their time in.
            "f1-train" | "f1-full-gradient" => Some(("≥ 1.0× PyTorch".into(), ratio >= 1.0)),
            // PyTorch's best on all cores: the faster of one process with every thread and one
            // single-threaded process per core.
            "f1-grid" => {
                let best = processes.into_iter().chain(one_process).fold(0.0, f64::max);
                let ratio = median(&f.ours) / best;
                Some((format!("≥ 1.0× PyTorch's best on all cores (here {ratio:.2}×)"), ratio >= 1.0))
            }
            "c1-train" => Some(match &f.torch_tuned {
                Some((ours, tuned)) => {
                    let r = median(ours) / median(tuned);
                    (format!("≥ 1.0× PyTorch, ≥ 0.8× PyTorch+jemalloc (here {r:.2}×)"), ratio >= 1.0 && r >= 0.8)
                }
                None => ("≥ 1.0× PyTorch".into(), ratio >= 1.0),
            }),
            _ => None,
        };
        if f.what == "f1-train" && f.batch == 6000 {
            let peak = peak.iter().find(|(t, _)| *t == f.threads).map_or(f64::NAN, |p| p.1);
            let share = median(&f.ours) * f1_flops / 1e9 / peak;
            let (text, met) = f.target.take().unwrap_or_default();
            f.target =
                Some((format!("{text}; ≥ 50 % of GEMM peak (here {:.0} %)", 100.0 * share), met && share >= 0.5));
        }
    }
    note
}

/// One row of `bench.csv`: a figure, or a whole-run measurement (no batch, no PyTorch).
#[derive(Serialize)]
struct BenchCsv {
    what: String,
    batch: Option<usize>,
    threads: usize,
    unit: String,
    flatland_median: f64,
    flatland_min: f64,
    flatland_max: f64,
    torch_median: Option<f64>,
    torch_min: Option<f64>,
    torch_max: Option<f64>,
    ratio: Option<f64>,
    torch_jemalloc_median: Option<f64>,
    target: String,
    met: Option<bool>,
}

impl BenchCsv {
    fn whole_run(what: String, cores: usize, unit: &str, value: f64) -> BenchCsv {
        BenchCsv {
            what,
            batch: None,
            threads: cores,
            unit: unit.into(),
            flatland_median: value,
            flatland_min: value,
            flatland_max: value,
            torch_median: None,
            torch_min: None,
            torch_max: None,
            ratio: None,
            torch_jemalloc_median: None,
            target: String::new(),
            met: None,
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn report(
    figures: &[Figure],
    memory: &[(String, f64, f64)],
    notes: &[String],
    env: &crate::env::Env,
    torch: Option<&str>,
    args: &Args,
    cores: usize,
) -> Result<(String, Vec<BenchCsv>)> {
    let mut md = String::from("# flatland benchmark\n\n");
    writeln!(
        md,
        "CPU {} ({cores} cores), backend {}, Burn {}, code {}{}.",
        env.machine.cpu,
        env.backend,
        env.burn_version,
        env.build.short(),
        torch.map_or(String::new(), |v| format!(", PyTorch {v}"))
    )?;
    let method = [("reps", args.reps.to_string()), ("steps", args.steps.to_string())];
    writeln!(md, "{}", fill(include_str!("text/bench-method.md"), &method))?;
    if torch.is_some() {
        writeln!(md, "{}", fill(include_str!("text/bench-alternation.md"), &[]))?;
    }
    md.push('\n');
    let compared = figures.iter().any(|f| f.torch.is_some());
    md.push_str(if compared { "| what | batch | threads | flatland | PyTorch | ratio | target | met |\n|---|---:|---:|---:|---:|---:|---|---|\n" } else { "| what | batch | threads | flatland |\n|---|---:|---:|---:|\n" });
    let mut csv: Vec<BenchCsv> = Vec::new();
    let cell = |v: &[f64], unit: &str| {
        let (lo, hi) = spread(v);
        format!("{:.0} {unit} [{lo:.0}–{hi:.0}]", median(v))
    };
    for f in figures {
        let batch = if f.batch == 0 { "—".to_string() } else { f.batch.to_string() };
        let threads = if f.what == "f1-grid" { format!("{} jobs", f.threads) } else { f.threads.to_string() };
        let (lo, hi) = spread(&f.ours);
        let torch = f.torch.as_deref().map(|t| (median(t), spread(t)));
        let ratio = torch.map(|(t, _)| median(&f.ours) / t);
        let (target, met) = f.target.clone().map_or((String::new(), None), |(t, m)| (t, Some(m)));
        csv.push(BenchCsv {
            what: f.what.clone(),
            batch: (f.batch > 0).then_some(f.batch),
            threads: f.threads,
            unit: f.unit.to_string(),
            flatland_median: median(&f.ours),
            flatland_min: lo,
            flatland_max: hi,
            torch_median: torch.map(|t| t.0),
            torch_min: torch.map(|t| t.1.0),
            torch_max: torch.map(|t| t.1.1),
            ratio,
            torch_jemalloc_median: f.torch_tuned.as_ref().map(|(_, t)| median(t)),
            target: target.clone(),
            met,
        });
        let met = met.map_or("", |m| if m { "yes" } else { "no" });
        if compared {
            let theirs = f.torch.as_ref().map_or("—".to_string(), |t| cell(t, f.unit));
            let ratio = ratio.map_or("—".to_string(), |r| format!("{r:.3}×"));
            writeln!(
                md,
                "| {} | {batch} | {threads} | {} | {theirs} | {ratio} | {target} | {met} |",
                f.what,
                cell(&f.ours, f.unit)
            )?;
        } else {
            writeln!(md, "| {} | {batch} | {threads} | {} |", f.what, cell(&f.ours, f.unit))?;
        }
    }
    if !memory.is_empty() {
        md.push_str("\n| whole run | peak resident memory (MiB) | wall time (s) |\n|---|---:|---:|\n");
        for (what, mib, secs) in memory {
            writeln!(md, "| {what} | {mib:.0} | {secs:.0} |")?;
            for (kind, unit, value) in [("peak memory", "MiB", *mib), ("wall time", "s", *secs)] {
                csv.push(BenchCsv::whole_run(format!("{kind}: {what}"), cores, unit, value));
            }
        }
    }
    for note in notes {
        writeln!(md, "\n{note}")?;
    }
    let mflop = format!("{:.2}", mlp_train_flops(&nets::mlp::f1()) / 1e6);
    writeln!(md, "\n{}", fill(include_str!("text/bench-flops.md"), &[("mflop", mflop)]))?;
    Ok((md, csv))
}
