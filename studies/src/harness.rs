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

/// A study: a grid of cells, how to run one, how to report.
pub trait Study: Sync {
    /// Configuration of one cell, stored verbatim in its record.
    type Cell: Serialize + DeserializeOwned + Clone + PartialEq + Send + Sync;
    /// What one cell produces.
    type Outcome: Serialize + DeserializeOwned + Send;

    /// Folder name under the output directory.
    const NAME: &'static str;

    /// The cells of the grid, in report order.
    fn cells(&self) -> Vec<Self::Cell>;

    /// Human-readable label of a cell (file names add a hash of its config).
    fn label(cell: &Self::Cell) -> String;

    /// Runs one cell. `progress` takes short status messages.
    fn run_cell(&self, cell: &Self::Cell, progress: &CellProgress) -> Result<Self::Outcome>;
}

/// One finished cell, as written to `<out>/<study>/records/<id>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record<C, O> {
    /// Study name.
    pub study: String,
    /// File stem: label plus a hash of the config.
    pub id: String,
    /// The master seed every seed of the cell was derived from.
    pub master_seed: u64,
    /// Full configuration of the cell.
    pub config: C,
    /// Code, library and machine the cell ran on.
    pub env: Env,
    /// Wall time of the cell, seconds.
    pub wall_time_s: f64,
    /// When the cell finished, seconds since the Unix epoch.
    pub finished_unix_s: u64,
    /// What the cell produced.
    pub outcome: O,
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
}

impl GridArgs {
    /// The backend, its device and the number of jobs, or an error naming the bad value.
    pub fn validate(&self) -> Result<(Backend, Device, usize)> {
        let backend: Backend = self.backend.parse().map_err(|e| anyhow::anyhow!("--backend: {e}"))?;
        let Some(device) = backend.device() else {
            let compiled: Vec<_> = Backend::compiled().iter().map(|b| b.name()).collect();
            bail!(
                "--backend {backend}: not compiled into this build (rebuild with `--features {backend}`); compiled: {}",
                compiled.join(", ")
            );
        };
        let jobs = match self.jobs {
            Some(0) => bail!("--jobs 0: at least one job is needed (accepted: 1 or more)"),
            Some(j) => j,
            None => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        };
        Ok((backend, device, jobs))
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
}

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

/// Fails unless `out` can be created and written, before any work starts.
pub fn check_writable(out: &Path) -> Result<()> {
    fs::create_dir_all(out).with_context(|| format!("--out {}: cannot create the folder", out.display()))?;
    let probe = out.join(format!(".flatland-write-probe-{}", std::process::id()));
    fs::write(&probe, b"").with_context(|| format!("--out {}: folder is not writable", out.display()))?;
    fs::remove_file(&probe).ok();
    Ok(())
}

/// Loads the record of `cell` if a complete one exists.
fn load_record<S: Study>(path: &Path, cell: &S::Cell) -> Option<Record<S::Cell, S::Outcome>> {
    let text = fs::read_to_string(path).ok()?;
    let record: Record<S::Cell, S::Outcome> = serde_json::from_str(&text).ok()?;
    (record.config == *cell).then_some(record)
}

/// Runs every cell of `study` that has no record yet, `jobs` at a time, and returns the records
/// of the whole grid in cell order.
pub fn run_grid<S: Study>(study: &S, opts: &GridOptions) -> Result<Vec<Record<S::Cell, S::Outcome>>> {
    let dir = study_dir::<S>(&opts.out).join("records");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let cells = study.cells();
    let paths: Vec<PathBuf> = cells.iter().map(|c| dir.join(format!("{}.json", record_id::<S>(c)))).collect();
    let done: Vec<Option<Record<S::Cell, S::Outcome>>> =
        cells.iter().zip(&paths).map(|(c, p)| load_record::<S>(p, c)).collect();
    let pending: Vec<usize> = (0..cells.len()).filter(|&i| done[i].is_none()).collect();

    let progress = Progress::new(cells.len(), cells.len() - pending.len());
    let artifacts = study_dir::<S>(&opts.out).join("artifacts");
    let pool = rayon::ThreadPoolBuilder::new().num_threads(opts.jobs).build().context("building the thread pool")?;
    let finished: Vec<Result<(usize, Record<S::Cell, S::Outcome>)>> = pool.install(|| {
        pending
            .par_iter()
            .map(|&i| {
                let cell = &cells[i];
                let label = S::label(cell);
                let bar = progress.start(&label, artifacts.join(record_id::<S>(cell)));
                let start = Instant::now();
                let outcome = study.run_cell(cell, &bar).with_context(|| format!("cell {label}"))?;
                let record = Record {
                    study: S::NAME.into(),
                    id: record_id::<S>(cell),
                    master_seed: opts.master_seed,
                    config: cell.clone(),
                    env: opts.env.clone(),
                    wall_time_s: start.elapsed().as_secs_f64(),
                    finished_unix_s: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
                    outcome,
                };
                write_atomic(&paths[i], &serde_json::to_vec_pretty(&record)?)?;
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
    if records.len() != cells.len() {
        bail!("{} of {} cells have no record", cells.len() - records.len(), cells.len());
    }
    Ok(records)
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

/// Seed of one part of a run, derived from the master seed and a path of names
/// (SplitMix64 over an FNV-1a hash of the names), below 2⁵³.
pub fn derive_seed(master: u64, parts: &[&str]) -> u64 {
    // 0xff never occurs in UTF-8, so it separates the parts unambiguously.
    let joined: Vec<u8> = parts.iter().flat_map(|p| p.bytes().chain(std::iter::once(0xff))).collect();
    let mut z = master ^ fnv1a(&joined);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    // 53 bits, so the seed survives a round trip through JSON readers that use doubles.
    (z ^ (z >> 31)) >> 11
}

/// FNV-1a, a hash that is stable across Rust versions (record names must not change with the
/// compiler).
fn fnv1a(bytes: &[u8]) -> u64 {
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
    fn atomic_write_replaces_whole_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
