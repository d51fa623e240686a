//! `studies data list|verify|fetch`: the real datasets in the data folder.
//!
//! A download goes to a temporary name in the dataset's folder, is verified (SHA-256 of the
//! decompressed contents), and only then renamed: a partial or corrupted download is never taken
//! for a complete one. Mirrors are tried in order.

use std::fs;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use datasets::catalog::{self, CATALOG, Entry, FileState, RemoteFile};
use indicatif::{ProgressBar, ProgressStyle};

use crate::data::DataDir;

/// Arguments of `studies data`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
    /// Folder holding one subfolder per dataset [default: $FLATLAND_DATA, else the platform
    /// cache folder].
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
}

/// What to do.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// What is present, where, and whether it verifies.
    List,
    /// Check the SHA-256 of every present file (of one dataset, or all).
    Verify {
        /// Dataset name (mnist, optdigits); all when omitted.
        name: Option<String>,
    },
    /// Download a dataset into the data folder, verifying every file.
    Fetch {
        /// Dataset name (mnist, optdigits).
        name: String,
    },
}

fn lookup(name: &str) -> Result<&'static Entry> {
    catalog::entry(name).ok_or_else(|| {
        let names: Vec<_> = CATALOG.iter().map(|e| e.name).collect();
        anyhow::Error::new(crate::harness::Usage(format!("unknown dataset '{name}'; accepted: {}", names.join(", "))))
    })
}

/// Runs `studies data …`.
pub fn run(args: Args) -> Result<()> {
    let dir = DataDir::resolve(args.data_dir.as_deref());
    match args.command {
        Command::List => {
            println!("data folder: {} (chosen by {})", dir.path.display(), dir.source);
            for e in CATALOG {
                let states: Vec<FileState> =
                    e.files.iter().map(|f| catalog::check(&dir.path.join(e.name), f)).collect();
                let verified = states.iter().filter(|s| matches!(s, FileState::Verified(_))).count();
                let status = match verified {
                    n if n == e.files.len() => "present, verified".to_string(),
                    0 if states.iter().all(|s| *s == FileState::Missing) => {
                        format!("absent (studies data fetch {})", e.name)
                    }
                    n => format!(
                        "incomplete or corrupt: {n} of {} files verify (studies data verify {})",
                        e.files.len(),
                        e.name
                    ),
                };
                println!("{:<10} {:<60} {status}", e.name, dir.path.join(e.name).display());
            }
            Ok(())
        }
        Command::Verify { name } => {
            let entries: Vec<&Entry> = match name {
                Some(n) => vec![lookup(&n)?],
                None => CATALOG.iter().collect(),
            };
            let mut bad = Vec::new();
            for e in entries {
                for f in e.files {
                    match catalog::check(&dir.path.join(e.name), f) {
                        FileState::Verified(p) => println!("ok       {}", p.display()),
                        FileState::Missing => println!("missing  {}", dir.path.join(e.name).join(f.name).display()),
                        FileState::Corrupt { path, expected, actual } => {
                            println!("CORRUPT  {}", path.display());
                            bad.push(format!(
                                "{}: SHA-256 of the contents is {actual}, expected {expected}",
                                path.display()
                            ));
                        }
                    }
                }
            }
            if !bad.is_empty() {
                bail!("{} file(s) do not verify:\n{}", bad.len(), bad.join("\n"));
            }
            Ok(())
        }
        Command::Fetch { name } => {
            let e = lookup(&name)?;
            let folder = dir.path.join(e.name);
            fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
            for f in e.files {
                match catalog::check(&folder, f) {
                    FileState::Verified(p) => eprintln!("{} already present and verified", p.display()),
                    _ => fetch_file(e, f, &folder)?,
                }
            }
            eprintln!("{} is in {} ({})", e.name, folder.display(), e.license);
            Ok(())
        }
    }
}

/// Mirrors of `e`: the catalog's, unless `FLATLAND_MIRRORS` (comma-separated base URLs) says
/// otherwise, e.g. for a local copy.
fn mirrors(e: &Entry) -> Vec<String> {
    match std::env::var("FLATLAND_MIRRORS") {
        Ok(list) if !list.trim().is_empty() => list.split(',').map(|s| s.trim().to_string()).collect(),
        _ => e.mirrors.iter().map(|s| s.to_string()).collect(),
    }
}

fn fetch_file(e: &Entry, f: &RemoteFile, folder: &Path) -> Result<()> {
    let target = folder.join(f.name);
    let part = folder.join(format!(".{}.part-{}", f.name, std::process::id()));
    let mut failures = Vec::new();
    for base in mirrors(e) {
        let url = format!("{base}{}", f.name);
        match download(&url, &part).and_then(|_| {
            let actual = catalog::content_sha256(&part).map_err(|e| anyhow!("{e}"))?;
            if actual == f.sha256 {
                Ok(())
            } else {
                Err(anyhow!("SHA-256 of the contents is {actual}, expected {}", f.sha256))
            }
        }) {
            Ok(()) => {
                fs::rename(&part, &target)
                    .with_context(|| format!("renaming {} to {}", part.display(), target.display()))?;
                eprintln!("{} verified", target.display());
                return Ok(());
            }
            Err(err) => {
                fs::remove_file(&part).ok();
                eprintln!("{url}: {err:#}");
                failures.push(format!("{url}: {err:#}"));
            }
        }
    }
    bail!("could not fetch {} from any mirror:\n{}", f.name, failures.join("\n"))
}

fn download(url: &str, to: &Path) -> Result<()> {
    let response = ureq::get(url).call().map_err(|e| anyhow!("{e}"))?;
    let len: Option<u64> =
        response.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let bar = if std::io::stderr().is_terminal() { ProgressBar::new(len.unwrap_or(0)) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}").expect("valid template"),
    );
    bar.set_message(url.to_string());
    let mut reader = response.into_body().into_reader();
    let mut out = fs::File::create(to).with_context(|| format!("creating {}", to.display()))?;
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).with_context(|| format!("reading {url}"))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).with_context(|| format!("writing {}", to.display()))?;
        total += n as u64;
        bar.set_position(total);
    }
    out.sync_all()?;
    bar.finish_and_clear();
    if let Some(len) = len
        && len != total
    {
        bail!("download stopped after {total} of {len} bytes");
    }
    Ok(())
}
