//! The shared machinery of every study: a grid of cells run in parallel, one JSON record per
//! finished cell (written atomically, so a killed run loses only the cells in flight), resume by
//! skipping cells whose record exists, and live progress.
//!
//! A study only says what its cells are, how to run one, and how to report from records
//! (the runner never reports; the report is rebuilt from record files alone).

use std::fs;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use nets::{Backend, Device};

use crate::env::Env;
use crate::predict::Prediction;
use crate::shard::{Shard, ShardManifest};

/// Version of the record format; a record of another version is unreadable (kept aside as
/// `.bad`, and its cell recomputed).
pub const SCHEMA_VERSION: u32 = 4;

/// A study: a grid of cells, how to run one, and how to report from records alone.
pub trait Study: Sync {
    /// Configuration of one cell, stored verbatim in its record.
    type Cell: Serialize + DeserializeOwned + Clone + PartialEq + Send + Sync;
    /// What one cell produces.
    type Outcome: Serialize + DeserializeOwned + Send;

    /// Folder name under the output directory.
    const NAME: &'static str;
    /// Name of this grid within the study's folder (a study of several grids, such as a tuning
    /// grid and a final one, gives each its own).
    const STAGE: &'static str = "grid";

    /// The cells of the grid, in report order.
    fn cells(&self) -> Vec<Self::Cell>;

    /// Human-readable label of a cell (file names add a hash of its config).
    fn label(cell: &Self::Cell) -> String;

    /// Runs one cell. `progress` takes short status messages.
    fn run_cell(&self, cell: &Self::Cell, progress: &CellProgress) -> Result<Self::Outcome>;

    /// Writes the study's tables and plots into `dir` from the grid's records (and, for a study
    /// of several grids, the other grids' records under `dir`), with no data, device or flags.
    fn report(records: &[Record<Self::Cell, Self::Outcome>], dir: &Path) -> Result<Report>;

    /// Cells that must run in one shard share a group (default: every cell alone), e.g. the
    /// two runs a later stage of the same shard compares.
    fn shard_group(cell: &Self::Cell) -> String {
        Self::label(cell)
    }

    /// A cell's relative cost from its config alone (every shard must compute the same), so
    /// that shards get equal work; 1 where the study does not know.
    fn cost(&self, _cell: &Self::Cell) -> f64 {
        1.0
    }

    /// The predicted one-thread time of each of `cells` from a timing probe (None: the study
    /// times no probe): printed before a run starts, for the runs it will run, and listed per
    /// cell by `--dry-run`.
    fn predict(&self, _cells: &[&Self::Cell]) -> Result<Option<Prediction>> {
        Ok(None)
    }

    /// Whether the grid is built from the records this process holds (a stage after another,
    /// such as Keskar's Figure 3): in a shard, its cells are all the shard's own.
    const DERIVED: bool = false;
}

/// What a report says: its Markdown, and whether the study's scientific check held (a study
/// without one always passes). A failed check exits with status 1.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The Markdown the report wrote, printed to stdout.
    pub text: String,
    /// Whether the study's claim held on these records.
    pub passed: bool,
}

impl Report {
    /// A report with no check of its own.
    pub fn text(text: String) -> Report {
        Report { text, passed: true }
    }
}

/// A usage error: a bad flag value, missing data, records that need a decision. Exits with 2
/// (every other error exits with 1).
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// Returns a [`Usage`] error from the enclosing function, formatted like `format!`.
#[macro_export]
macro_rules! usage {
    ($($arg:tt)*) => {
        return Err(anyhow::Error::new($crate::harness::Usage(format!($($arg)*))))
    };
}

/// One finished cell, as written to `<out>/<study>/records/<id>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record<C, O> {
    /// Record format version ([`SCHEMA_VERSION`]).
    pub schema: u32,
    /// Study name.
    pub study: String,
    /// File stem: label plus a hash of the config.
    pub id: String,
    /// The master seed every seed of the cell was derived from.
    pub master_seed: u64,
    /// Full configuration of the cell.
    pub config: C,
    /// Code, command, library, machine and data the cell ran with.
    pub env: Env,
    /// Wall time of the cell, seconds.
    pub wall_time_s: f64,
    /// When the cell finished, seconds since the Unix epoch.
    pub finished_unix_s: u64,
    /// What the cell produced.
    pub outcome: O,
}

/// The list of a grid's records, in report order, written after the grid ran: what
/// `studies report` rebuilds the tables from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Study name.
    pub study: String,
    /// Grid name within the study.
    pub stage: String,
    /// Record ids, in cell order.
    pub records: Vec<String>,
}

/// Command-line options every grid study shares.
#[derive(clap::Args, Debug)]
pub struct GridArgs {
    /// Cells run at once [default: the number of cores].
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Output folder; the study writes under <OUT>/<study>/.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Burn backend: flex (default), ndarray, wgpu, cuda (each needs its cargo feature).
    #[arg(long, default_value = "flex")]
    pub backend: String,
    /// Master seed: every seed of every run is derived from it.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Recompute the cells whose records were made by other code, on another backend, or on a
    /// machine whose kernels chose otherwise (records made here by this code are what a rerun
    /// gives, bit for bit, and are kept).
    #[arg(long, conflicts_with = "reuse_stale")]
    pub rerun: bool,
    /// Use records made by other code or on another backend as they are (they say which).
    #[arg(long)]
    pub reuse_stale: bool,
    /// Run only shard I of N of the grid (0 ≤ I < N), writing its records and no tables;
    /// `studies report <study>` merges the shards [default: from a Slurm array task's or a
    /// Kubernetes Indexed Job's environment, else the whole grid].
    #[arg(long, value_parser = crate::shard::Shard::parse)]
    pub shard: Option<Shard>,
    /// Print the grid (each cell's record id, shard and predicted cost) and run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// What to do with records that other code (or another backend) made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stale {
    /// Stop and say so (the default).
    Refuse,
    /// Recompute them.
    Rerun,
    /// Use them.
    Reuse,
}

impl GridArgs {
    /// The backend, its device and the number of jobs, or an error naming the bad value.
    pub fn validate(&self) -> Result<(Backend, Device, usize)> {
        let backend: Backend = match self.backend.parse() {
            Ok(b) => b,
            Err(e) => usage!("--backend: {e}"),
        };
        let Some(device) = backend.device() else {
            let compiled: Vec<_> = Backend::compiled().iter().map(|b| b.name()).collect();
            usage!(
                "--backend {backend}: not compiled into this build (rebuild with `--features {backend}`); compiled: {}",
                compiled.join(", ")
            );
        };
        Ok((backend, device, self.jobs()?))
    }

    /// The number of jobs, or an error for 0.
    pub fn jobs(&self) -> Result<usize> {
        Ok(match self.jobs {
            Some(0) => usage!("--jobs 0: at least one job is needed (accepted: 1 or more)"),
            Some(j) => j,
            None => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        })
    }

    /// What to do with stale records.
    pub fn stale(&self) -> Stale {
        match (self.rerun, self.reuse_stale) {
            (true, _) => Stale::Rerun,
            (_, true) => Stale::Reuse,
            _ => Stale::Refuse,
        }
    }

    /// The grid options for `env`, after checking that `--out` is writable.
    pub fn options(&self, jobs: usize, env: Env) -> Result<GridOptions> {
        let shard = match self.shard {
            Some(s) => Some(s),
            None => Shard::from_env(|k| std::env::var(k).ok())?,
        };
        if !self.dry_run {
            check_writable(&self.out)?;
        }
        if self.reuse_stale {
            allow_mixed_code();
        }
        Ok(GridOptions {
            out: self.out.clone(),
            jobs,
            master_seed: self.seed,
            env,
            stale: self.stale(),
            shard,
            dry_run: self.dry_run,
        })
    }
}

/// How a grid runs.
pub struct GridOptions {
    /// Output root; records go to `<out>/<study>/records/`.
    pub out: PathBuf,
    /// Cells run at once (threads of the pool every cell's tensor work also runs on).
    pub jobs: usize,
    /// Master seed, recorded in every record.
    pub master_seed: u64,
    /// Environment recorded in every record.
    pub env: Env,
    /// What to do with records other code made.
    pub stale: Stale,
    /// The part of the grid this process runs (None: all of it).
    pub shard: Option<Shard>,
    /// List the grid and run nothing.
    pub dry_run: bool,
}

/// A run that stopped on purpose before its report (`--dry-run`): main prints the text and
/// exits 0.
#[derive(Debug)]
pub struct Stop(pub String);

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Stop {}

/// The record file name of a cell: its label and a hash of its full config, so that runs with
/// other settings never overwrite (or get mistaken for) each other.
pub fn record_id<S: Study>(cell: &S::Cell) -> String {
    let json = serde_json::to_string(cell).expect("cell config serializes");
    format!("{}-{:08x}", S::label(cell), fnv1a(json.as_bytes()) as u32)
}

/// `<out>/<study>`.
pub fn study_dir<S: Study>(out: &Path) -> PathBuf {
    out.join(S::NAME)
}

/// Writes `bytes` to `path` atomically: a temp file in the same folder, then a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("path has no parent folder")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp =
        dir.join(format!(".{}.{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("out"), std::process::id()));
    let mut f = fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes).and_then(|_| f.sync_all()).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// Writes `rows` as CSV (a header from the row type's field names; `None` as an empty cell).
pub fn write_csv<R: Serialize>(path: &Path, rows: &[R]) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in rows {
        w.serialize(row).with_context(|| format!("writing {}", path.display()))?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    write_atomic(path, &bytes)
}

/// `template` with every `{key}` replaced by its value: report prose lives in template files
/// beside the study, its numbers come from the records.
pub fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut text = template.trim_end().to_string();
    for (key, value) in values {
        text = text.replace(&format!("{{{key}}}"), value);
    }
    text
}

/// A log-spaced grid of step sizes as prose, e.g. `10^(−4 … 0), 2 per decade`, read from the
/// values themselves.
pub fn describe_log_grid(values: &[f64]) -> String {
    let logs: Vec<f64> = values.iter().map(|v| v.log10()).collect();
    let (lo, hi) = crate::stats::min_max(logs.iter().copied());
    let exponent = |v: f64| format!("{v:.2}").trim_end_matches('0').trim_end_matches('.').replace('-', "−");
    if values.len() < 2 || hi <= lo {
        return values.iter().map(|v| format!("{v:e}")).collect::<Vec<_>>().join(", ");
    }
    let per_decade = (values.len() - 1) as f64 / (hi - lo);
    format!("10^({} … {}), {} per decade", exponent(lo), exponent(hi), exponent(per_decade))
}

/// The fixed hyperparameters of each rule in `rules` besides the step size, once per rule, e.g.
/// `momentum ρ = 0.9, Adam β = (0.9, 0.999), ε = 1e-8`.
pub fn describe_rule_constants<'a>(rules: impl IntoIterator<Item = &'a optim::Rule>) -> String {
    let mut seen: Vec<String> = Vec::new();
    for rule in rules {
        let constants = rule.constants();
        let line = format!("{} {constants}", rule.name());
        if !constants.is_empty() && !seen.contains(&line) {
            seen.push(line);
        }
    }
    seen.join("; ")
}

/// Fails unless `out` can be created and written, before any work starts.
pub fn check_writable(out: &Path) -> Result<()> {
    if let Err(e) = fs::create_dir_all(out) {
        usage!("--out {}: cannot create the folder ({e})", out.display());
    }
    let probe = out.join(format!(".flatland-write-probe-{}", std::process::id()));
    if let Err(e) = fs::write(&probe, b"") {
        usage!("--out {}: folder is not writable ({e})", out.display());
    }
    fs::remove_file(&probe).ok();
    Ok(())
}

/// What was found at a cell's record path.
enum Found<C, O> {
    /// No record.
    Missing,
    /// A record this code made, on this backend, with this machine's kernel choices.
    Current(Record<C, O>),
    /// A record this code made on this backend, on a machine whose kernels chose otherwise
    /// (`env.machine.kernels`): used, with a warning, unless `--rerun`.
    OtherKernels(Record<C, O>),
    /// A record other code, or another backend, made.
    Stale(Record<C, O>),
    /// A file that is no record of this cell (corrupt, another schema, another config under the
    /// same name), and why: its cell runs again once the file is set aside.
    Unreadable(String),
}

/// Reads the record at `path` for `cell`, changing nothing on disk. A record counts as this
/// run's when the same code (`source_hash`) made it on the same backend; other code or another
/// backend makes it stale.
fn load_record<S: Study>(path: &Path, cell: &S::Cell, env: &Env) -> Result<Found<S::Cell, S::Outcome>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Missing),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let problem = match parse_record::<S::Cell, S::Outcome>(&text) {
        Ok(r) if r.config == *cell => {
            return Ok(if r.env.build.source_hash != env.build.source_hash || r.env.backend != env.backend {
                Found::Stale(r)
            } else if r.env.machine.kernels != env.machine.kernels {
                Found::OtherKernels(r)
            } else {
                Found::Current(r)
            });
        }
        Ok(_) => "its config is not the cell's".to_string(),
        Err(e) => format!("{e:#}"),
    };
    Ok(Found::Unreadable(problem))
}

/// Parses a record, checking its schema version first (so an old record says so, rather than
/// naming the first field that changed).
pub fn parse_record<C: DeserializeOwned, O: DeserializeOwned>(text: &str) -> Result<Record<C, O>> {
    #[derive(Deserialize)]
    struct Version {
        schema: Option<u32>,
    }
    let v: Version = serde_json::from_str(text).context("not a JSON record")?;
    match v.schema {
        Some(SCHEMA_VERSION) => Ok(serde_json::from_str(text)?),
        Some(other) => bail!("record schema {other}, this build reads {SCHEMA_VERSION}"),
        None => bail!("a record from before schema versions (this build reads {SCHEMA_VERSION})"),
    }
}

/// Renames `path` to `<path>.bad` (or `.bad.1`, `.bad.2`, … if taken) and returns the new name.
fn set_aside(path: &Path) -> Result<PathBuf> {
    let mut bad = PathBuf::from(format!("{}.bad", path.display()));
    let mut n = 0;
    while bad.exists() {
        n += 1;
        bad = PathBuf::from(format!("{}.bad.{n}", path.display()));
    }
    fs::rename(path, &bad).with_context(|| format!("moving {} aside to {}", path.display(), bad.display()))?;
    Ok(bad)
}

/// Runs every cell of `study` that has no usable record yet, `jobs` at a time, writes the grid's
/// manifest, and returns the records of the whole grid in cell order.
pub fn run_grid<S: Study>(study: &S, opts: &GridOptions) -> Result<Vec<Record<S::Cell, S::Outcome>>> {
    let dir = study_dir::<S>(&opts.out).join("records");
    let cells = study.cells();
    if cells.is_empty() {
        usage!("{}: the grid has no cells (check the flags that choose networks, seeds and sizes)", S::NAME);
    }
    let ids: Vec<String> = cells.iter().map(record_id::<S>).collect();
    let owners: Vec<usize> = match opts.shard {
        Some(shard) if !S::DERIVED => {
            let groups: Vec<String> = cells.iter().map(S::shard_group).collect();
            let costs: Vec<f64> = cells.iter().map(|c| study.cost(c)).collect();
            crate::shard::assign(&groups, &costs, shard.count)
        }
        Some(shard) => vec![shard.index; cells.len()],
        None => vec![0; cells.len()],
    };
    if opts.dry_run {
        return Err(Stop(dry_run_listing(study, &cells, &ids, &owners, opts.shard)?).into());
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mine: Vec<bool> = owners.iter().map(|&o| opts.shard.is_none_or(|s| s.index == o)).collect();
    let paths: Vec<PathBuf> = ids.iter().map(|id| dir.join(format!("{id}.json"))).collect();
    let mut done: Vec<Option<Record<S::Cell, S::Outcome>>> = Vec::with_capacity(cells.len());
    let mut stale: Vec<(String, String)> = Vec::new();
    let mut other_kernels: Vec<String> = Vec::new();
    let mut unreadable: Vec<(&Path, String)> = Vec::new();
    for ((c, p), &mine) in cells.iter().zip(&paths).zip(&mine) {
        if !mine {
            done.push(None);
            continue;
        }
        done.push(match load_record::<S>(p, c, &opts.env)? {
            Found::Missing => None,
            Found::Unreadable(problem) => {
                unreadable.push((p, problem));
                None
            }
            Found::Current(r) => Some(r),
            Found::OtherKernels(r) => match opts.stale {
                Stale::Rerun => None,
                Stale::Reuse | Stale::Refuse => {
                    other_kernels.push(r.id.clone());
                    Some(r)
                }
            },
            Found::Stale(r) => match opts.stale {
                Stale::Reuse => Some(r),
                Stale::Rerun => None,
                Stale::Refuse => {
                    stale.push((r.id.clone(), format!("{} on {}", r.env.build.short(), r.env.backend)));
                    None
                }
            },
        });
    }
    if !stale.is_empty() {
        let versions = distinct(stale.iter().map(|s| s.1.as_str()));
        usage!(
            "{} of {} records in {} were made by other code or on another backend ({}); this run is {} on {}. \
             Recompute them with --rerun, or use them as they are with --reuse-stale. First: {}",
            stale.len(),
            cells.len(),
            dir.display(),
            versions.join(", "),
            opts.env.build.short(),
            opts.env.backend,
            stale[0].0
        );
    }
    let owned = mine.iter().filter(|&&m| m).count();
    if let Some(shard) = opts.shard {
        let manifest = ShardManifest {
            study: S::NAME.into(),
            stage: S::STAGE.into(),
            shard,
            whole_grid: !S::DERIVED,
            records: ids.clone(),
            owners: owners.clone(),
        };
        let path = crate::shard::manifest_path(&study_dir::<S>(&opts.out), S::STAGE, shard);
        write_atomic(&path, &serde_json::to_vec_pretty(&manifest)?)?;
        eprintln!("{} {}: shard {shard} runs {owned} of the grid's {} cells", S::NAME, S::STAGE, cells.len());
    }
    // Only a run that goes ahead touches the folder: an unreadable file is moved aside to
    // `<path>.bad` (never overwritten) and its cell runs again.
    for (path, problem) in unreadable {
        let bad = set_aside(path)?;
        eprintln!(
            "warning: record {} is unreadable ({problem}); kept as {} and its cell is recomputed",
            path.display(),
            bad.display()
        );
    }
    if let Some(first) = other_kernels.first() {
        eprintln!(
            "warning: {} of {} records in {} were made by this code on a machine whose kernels chose otherwise \
             (env.machine.kernels: SIMD level or matrix-multiply blocking), so their numbers can differ from \
             this machine's; they are used as they are, --rerun recomputes them. First: {first}",
            other_kernels.len(),
            cells.len(),
            dir.display(),
        );
    }
    let pending: Vec<usize> = (0..cells.len()).filter(|&i| mine[i] && done[i].is_none()).collect();
    // Priced after the resume check: only the runs that will run.
    if !pending.is_empty() {
        let todo: Vec<&S::Cell> = pending.iter().map(|&i| &cells[i]).collect();
        if let Some(prediction) = predict(study, &todo)? {
            eprintln!("{}", prediction.line(S::NAME, opts.jobs));
        }
    }

    let progress = Progress::new(owned, owned - pending.len());
    let artifacts = study_dir::<S>(&opts.out).join("artifacts");
    let pool = rayon::ThreadPoolBuilder::new().num_threads(opts.jobs).build().context("building the thread pool")?;
    type Finished<C, O> = Vec<Result<(usize, Record<C, O>)>>;
    let finished: Finished<S::Cell, S::Outcome> = pool.install(|| {
        pending
            .par_iter()
            .map(|&i| {
                let cell = &cells[i];
                let label = S::label(cell);
                let bar = progress.start(&label, artifacts.join(&ids[i]));
                let start = Instant::now();
                let outcome = study.run_cell(cell, &bar).with_context(|| format!("cell {label}"))?;
                let record = Record {
                    schema: SCHEMA_VERSION,
                    study: S::NAME.into(),
                    id: ids[i].clone(),
                    master_seed: opts.master_seed,
                    config: cell.clone(),
                    env: opts.env.clone(),
                    wall_time_s: start.elapsed().as_secs_f64(),
                    finished_unix_s: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
                    outcome,
                };
                let bytes = serde_json::to_vec_pretty(&record)?;
                // A record that does not read back (a NaN written as null into a plain f64
                // field) would be recomputed on every run: refuse to write it. The report is
                // built from the record as read back, as `studies report` builds it, so the two
                // agree to the last digit.
                let record = parse_record::<S::Cell, S::Outcome>(std::str::from_utf8(&bytes)?)
                    .with_context(|| format!("record {} does not read back", ids[i]))?;
                write_atomic(&paths[i], &bytes)?;
                progress.finish(bar, &label, record.wall_time_s);
                Ok((i, record))
            })
            .collect()
    });
    progress.done();
    let mut records = done;
    for f in finished {
        let (i, r) = f?;
        records[i] = Some(r);
    }
    let records: Vec<_> = records.into_iter().flatten().collect();
    if records.len() != owned {
        bail!("{} of {owned} cells have no record", owned - records.len());
    }
    // A shard's manifest was written when it started; the grid's is `studies report`'s to write.
    if opts.shard.is_none() {
        let manifest = Manifest { study: S::NAME.into(), stage: S::STAGE.into(), records: ids };
        write_atomic(&manifest_path::<S>(&opts.out), &serde_json::to_vec_pretty(&manifest)?)?;
        crate::shard::remove_manifests(&study_dir::<S>(&opts.out), S::STAGE)?;
    }
    Ok(records)
}

/// The records of a study's grid.
pub type Records<S> = Vec<Record<<S as Study>::Cell, <S as Study>::Outcome>>;

/// The records of every cell of `study`'s grid when all are on disk (made by any shard), in
/// cell order; `None` while one is missing or unreadable. For a stage that needs the whole of
/// the grid before it (the optimizers' final runs need every tuning run).
pub fn whole_grid<S: Study>(study: &S, out: &Path) -> Result<Option<Records<S>>> {
    let dir = study_dir::<S>(out).join("records");
    let mut records = Vec::new();
    for cell in study.cells() {
        let path = dir.join(format!("{}.json", record_id::<S>(&cell)));
        let Ok(text) = fs::read_to_string(&path) else { return Ok(None) };
        match parse_record::<S::Cell, S::Outcome>(&text) {
            Ok(r) if r.config == cell => records.push(r),
            _ => return Ok(None),
        }
    }
    Ok(Some(records))
}

/// `study.predict(cells)`, checked to price each of `cells`.
fn predict<S: Study>(study: &S, cells: &[&S::Cell]) -> Result<Option<Prediction>> {
    let prediction = study.predict(cells)?;
    if let Some(p) = &prediction {
        anyhow::ensure!(
            p.prices.len() == cells.len(),
            "{}: the prediction priced {} runs of {}",
            S::NAME,
            p.prices.len(),
            cells.len()
        );
    }
    Ok(prediction)
}

/// `--dry-run`'s text: every cell with its record id, shard and cost, the predicted CPU-hours
/// where the study times a probe, and an array size to ask for.
fn dry_run_listing<S: Study>(
    study: &S,
    cells: &[S::Cell],
    ids: &[String],
    owners: &[usize],
    shard: Option<Shard>,
) -> Result<String> {
    use std::fmt::Write as _;
    let mut text = format!("{} {} ({} cells; dry run, nothing ran)\n\n", S::NAME, S::STAGE, cells.len());
    let prediction = predict(study, &cells.iter().collect::<Vec<_>>())?;
    let predicted: Vec<Option<f64>> = match &prediction {
        Some(p) => p.prices.iter().map(|price| Some(price.seconds())).collect(),
        None => vec![None; cells.len()],
    };
    let _ = writeln!(text, "| record id | group | shard | relative cost | predicted CPU-hours |");
    let _ = writeln!(text, "|---|---|---:|---:|---:|");
    for (i, cell) in cells.iter().enumerate() {
        let shard = shard.map_or("–".into(), |s| format!("{}/{}", owners[i], s.count));
        let hours = predicted[i].map_or("–".into(), |p| format!("{:.2}", p / 3600.0));
        let _ =
            writeln!(text, "| {} | {} | {shard} | {:.3e} | {hours} |", ids[i], S::shard_group(cell), study.cost(cell));
    }
    let groups = distinct(cells.iter().map(S::shard_group)).len();
    if predicted.iter().all(Option::is_some) {
        let total: f64 = predicted.iter().flatten().sum::<f64>() / 3600.0;
        // About two CPU-hours per array task, never more tasks than groups of cells.
        let array = ((total / 2.0).ceil() as usize).clamp(1, groups);
        let _ = write!(
            text,
            "\nPredicted: {total:.1} CPU-hours in all (every run to its cap; one thread per cell). Suggested: \
             --array {array} (about {:.1} CPU-hours per task; {groups} groups of cells at most).",
            total / array as f64
        );
    } else {
        let _ = write!(
            text,
            "\nThis study times no probe; {groups} groups of cells, so at most {groups} array tasks have work."
        );
    }
    Ok(text)
}

/// `<out>/<study>/<stage>.grid.json`.
fn manifest_path<S: Study>(out: &Path) -> PathBuf {
    study_dir::<S>(out).join(format!("{}.grid.json", S::STAGE))
}

/// Runs the grid and writes the report: the tail every study shares. A shard writes no report.
pub fn execute<S: Study>(study: &S, opts: &GridOptions) -> Result<Report> {
    let records = run_grid(study, opts)?;
    if let Some(shard) = opts.shard {
        return Ok(shard_done::<S>(shard, records.len(), &opts.out));
    }
    S::report(&records, &study_dir::<S>(&opts.out))
}

/// What a shard says when its cells are done: how to merge.
pub fn shard_done<S: Study>(shard: Shard, cells: usize, out: &Path) -> Report {
    Report::text(format!(
        "shard {shard} of {}: {cells} cells have records in {}. Once every shard is done: studies report {} --out {}",
        S::NAME,
        study_dir::<S>(out).join("records").display(),
        S::NAME,
        out.display()
    ))
}

/// The records of the last grid of `S` run into `dir` (a study folder), in cell order, as its
/// manifest lists them.
pub fn load_grid<S: Study>(dir: &Path) -> Result<Vec<Record<S::Cell, S::Outcome>>> {
    let path = dir.join(format!("{}.grid.json", S::STAGE));
    // A grid run in shards: merge their manifests (every cell must have its record) into the
    // grid's manifest, as a single run writes it.
    if let Some(records) = crate::shard::merge(dir, S::STAGE)? {
        let manifest = Manifest { study: S::NAME.into(), stage: S::STAGE.into(), records };
        write_atomic(&path, &serde_json::to_vec_pretty(&manifest)?)?;
    }
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => usage!("{}: no grid manifest ({e}); run `studies {}` with this --out first", path.display(), S::NAME),
    };
    let manifest: Manifest = serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
    let records: Vec<Record<S::Cell, S::Outcome>> = manifest
        .records
        .iter()
        .map(|id| {
            let file = dir.join("records").join(format!("{id}.json"));
            let text = fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            parse_record(&text).with_context(|| format!("reading {}", file.display()))
        })
        .collect::<Result<_>>()?;
    let versions = distinct(records.iter().map(|r| format!("{} on {}", r.env.build.short(), r.env.backend)));
    if versions.len() > 1 && !MIXED_CODE_OK.load(std::sync::atomic::Ordering::Relaxed) {
        usage!(
            "{}: the {} grid's records were made by different code or backends ({}); rerun the stale ones, or \
             report them as they are with --reuse-stale",
            dir.display(),
            S::STAGE,
            versions.join(", ")
        );
    }
    Ok(records)
}

/// Whether a report may mix records of different code versions (`--reuse-stale`).
static MIXED_CODE_OK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Lets reports mix records of different code versions (`--reuse-stale` of a run or a report).
pub fn allow_mixed_code() {
    MIXED_CODE_OK.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// `studies report`: rebuilds the tables and plots of `S` from the records under `out`.
pub fn report_saved<S: Study>(out: &Path) -> Result<Report> {
    let dir = study_dir::<S>(out);
    let records = load_grid::<S>(&dir)?;
    S::report(&records, &dir)
}

/// Progress of a grid: on a terminal, a bar (cells done/total, ETA) and one live line per
/// running cell; otherwise one plain line per event on stderr.
struct Progress {
    multi: Option<MultiProgress>,
    overall: Option<ProgressBar>,
    total: usize,
    done: Mutex<usize>,
    started: Instant,
}

/// Live status of one running cell, and where it may leave files beside its record.
pub struct CellProgress {
    label: String,
    line: Option<ProgressBar>,
    artifacts: PathBuf,
}

impl CellProgress {
    /// `<out>/<study>/artifacts/<record id>.<ext>`: a file the cell writes (atomically) beside its
    /// record, such as trained weights, too large for the record itself.
    pub fn artifact(&self, ext: &str) -> PathBuf {
        PathBuf::from(format!("{}.{ext}", self.artifacts.display()))
    }

    /// Shows `msg` on the cell's live line (terminal only).
    pub fn message(&self, msg: &str) {
        if let Some(line) = &self.line {
            line.set_message(format!("{:<16} {msg}", self.label));
        }
    }

    /// Logs `msg`: on the cell's live line on a terminal, as a plain line otherwise.
    pub fn log(&self, msg: &str) {
        match &self.line {
            Some(_) => self.message(msg),
            None => eprintln!("{:<16} {msg}", self.label),
        }
    }
}

impl Progress {
    fn new(total: usize, already: usize) -> Self {
        let tty = std::io::stderr().is_terminal();
        if already > 0 {
            eprintln!("{already} of {total} cells already have records; running the other {}", total - already);
        }
        let (multi, overall) = if tty {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let bar = multi.add(ProgressBar::new(total as u64));
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} cells  elapsed {elapsed}  ETA {eta}")
                    .expect("valid template"),
            );
            bar.set_position(already as u64);
            (Some(multi), Some(bar))
        } else {
            (None, None)
        };
        Progress { multi, overall, total, done: Mutex::new(already), started: Instant::now() }
    }

    fn start(&self, label: &str, artifacts: PathBuf) -> CellProgress {
        let line = self.multi.as_ref().map(|m| {
            let line = m.add(ProgressBar::new_spinner());
            line.set_style(ProgressStyle::with_template("  {spinner} {msg}").expect("valid template"));
            line.set_message(format!("{label:<16} starting"));
            line.enable_steady_tick(std::time::Duration::from_millis(200));
            line
        });
        if line.is_none() {
            eprintln!("{label:<16} started");
        }
        CellProgress { label: label.into(), line, artifacts }
    }

    fn finish(&self, cell: CellProgress, label: &str, seconds: f64) {
        let mut done = self.done.lock().expect("progress lock");
        *done += 1;
        match (&self.overall, cell.line) {
            (Some(bar), Some(line)) => {
                line.finish_and_clear();
                bar.inc(1);
            }
            _ => {
                let elapsed = self.started.elapsed().as_secs_f64();
                eprintln!(
                    "{label:<16} finished in {seconds:.1} s   [{}/{} cells, {elapsed:.0} s elapsed]",
                    *done, self.total
                );
            }
        }
    }

    fn done(&self) {
        if let Some(bar) = &self.overall {
            bar.finish_and_clear();
        }
    }
}

/// The distinct values of `items`, in order of first appearance (e.g. the networks of a grid's
/// records, in report order).
pub fn distinct<T: PartialEq>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// A sentence naming the machines of `records` when their CPU kernels chose differently
/// (`env.machine.kernels`), with how many records each made; `None` when they all agree. Records
/// of such machines are not bit-comparable, so a table mixing them says so.
pub fn machine_mix<C, O>(records: &[Record<C, O>]) -> Option<String> {
    let kernels = distinct(records.iter().map(|r| &r.env.machine.kernels));
    if kernels.len() < 2 {
        return None;
    }
    let parts: Vec<String> = kernels
        .iter()
        .map(|k| {
            let on: Vec<_> = records.iter().filter(|r| &r.env.machine.kernels == *k).collect();
            let simd = k.iter().find_map(|s| s.strip_prefix("element-wise SIMD level (macerator): ")).unwrap_or("?");
            let machine = &on[0].env.machine;
            // L3 too: two machines of one CPU name can differ only there (and so in GEMM blocking).
            let cache = |level: &str| {
                machine.caches.iter().find_map(|c| c.strip_prefix(&format!("{level} Unified: "))).unwrap_or("?")
            };
            format!("{} on {} (SIMD level {simd}, L2 {}, L3 {})", on.len(), machine.cpu, cache("L2"), cache("L3"))
        })
        .collect();
    Some(format!(
        "The records come from {} machines whose CPU kernels chose differently (`env.machine.kernels`), so \
         runs of different machines agree in distribution, not to the last bit: {}.",
        kernels.len(),
        parts.join("; ")
    ))
}

/// Seed of one part of a run, derived from the master seed and a path of names
/// (SplitMix64 over an FNV-1a hash of the names), below 2⁵³.
pub fn derive_seed(master: u64, parts: &[&str]) -> u64 {
    // 0xff never occurs in UTF-8, so it separates the parts unambiguously.
    let joined: Vec<u8> = parts.iter().flat_map(|p| p.bytes().chain(std::iter::once(0xff))).collect();
    let z = (master ^ fnv1a(&joined)).wrapping_add(0x9e37_79b9_7f4a_7c15);
    // 53 bits, so the seed survives a round trip through JSON readers that use doubles.
    nets::train::splitmix64_mix(z) >> 11
}

/// FNV-1a, a hash that is stable across Rust versions (record names and shard assignments must
/// not change with the compiler or the machine).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_seeds_differ_by_part_and_master() {
        let a = derive_seed(0, &["F1", "init", "0"]);
        assert_eq!(a, derive_seed(0, &["F1", "init", "0"]));
        assert_ne!(a, derive_seed(1, &["F1", "init", "0"]));
        assert_ne!(a, derive_seed(0, &["F1", "init", "1"]));
        // Part boundaries matter: ("ab", "c") is not ("a", "bc").
        assert_ne!(derive_seed(0, &["ab", "c"]), derive_seed(0, &["a", "bc"]));
    }

    #[test]
    fn machine_mix_names_each_machine_only_when_kernels_differ() {
        let record = |cpu: &str, level: &str, l2: &str, l3: &str| {
            let mut env = Env::fixture();
            env.machine.cpu = cpu.into();
            env.machine.caches = vec![format!("L2 Unified: {l2}"), format!("L3 Unified: {l3}")];
            env.machine.kernels = vec![format!("element-wise SIMD level (macerator): {level}"), format!("L3 {l3}")];
            Record {
                schema: 1,
                study: "t".into(),
                id: cpu.into(),
                master_seed: 0,
                config: (),
                env,
                wall_time_s: 0.0,
                finished_unix_s: 0,
                outcome: (),
            }
        };
        let amd = || record("AMD EPYC", "V3", "512K", "32768K");
        assert_eq!(machine_mix(&[amd(), amd()]), None);
        let xeon = |l3| record("Intel Xeon", "V4", "2048K", l3);
        let mix = machine_mix(&[amd(), xeon("491520K"), amd(), xeon("307200K")]).unwrap();
        assert!(mix.starts_with("The records come from 3 machines"), "{mix}");
        assert!(
            mix.ends_with(
                ": 2 on AMD EPYC (SIMD level V3, L2 512K, L3 32768K); 1 on Intel Xeon (SIMD level V4, L2 2048K, \
                 L3 491520K); 1 on Intel Xeon (SIMD level V4, L2 2048K, L3 307200K)."
            ),
            "{mix}"
        );
    }

    #[test]
    fn atomic_write_replaces_whole_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
