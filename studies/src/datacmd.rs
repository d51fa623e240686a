//! `studies data list|verify|fetch`: the real datasets in the data folder.
//!
//! A download goes to a temporary name in the dataset's folder, is verified (the published MD5
//! where there is one, and the SHA-256 of the decompressed contents), and only then renamed: a
//! partial or corrupted download is never taken for a complete one. Mirrors are tried in order.
//! A dataset that comes as an archive (CIFAR) is downloaded, verified, unpacked member by member
//! ([`datasets::archive`]), and the SHA-256 of each extracted file recorded in `SHA256SUMS`.

use std::fs;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use datasets::catalog::{self, Archive, CATALOG, Entry, FileState, RemoteFile};
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
        /// Dataset name (mnist, fashion-mnist, cifar-10, cifar-100, optdigits); all when omitted.
        name: Option<String>,
    },
    /// Download a dataset into the data folder, verifying every file.
    Fetch {
        /// Dataset name (mnist, fashion-mnist, cifar-10, cifar-100, optdigits).
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
                let unverified = states.iter().filter(|s| matches!(s, FileState::Unverified(_))).count();
                let status = match verified {
                    n if n == e.files.len() => "present, verified".to_string(),
                    n if n + unverified == e.files.len() => format!(
                        "present, {unverified} file(s) unverified: no published checksum (fetch verifies them through the archive)"
                    ),
                    0 if states.iter().all(|s| *s == FileState::Missing) => {
                        format!("absent (studies data fetch {})", e.name)
                    }
                    n => format!(
                        "incomplete or corrupt: {n} of {} files verify (studies data verify {})",
                        e.files.len(),
                        e.name
                    ),
                };
                println!("{:<14} {:<60} {status}", e.name, dir.path.join(e.name).display());
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
                        FileState::Unverified(p) => {
                            println!("unknown  {} (no published checksum, not fetched by flatland)", p.display())
                        }
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
            let states: Vec<FileState> = e.files.iter().map(|f| catalog::check(&folder, f)).collect();
            match &e.archive {
                Some(_) if states.iter().all(|s| matches!(s, FileState::Verified(_))) => {
                    eprintln!("{} already present and verified", folder.display())
                }
                Some(archive) => fetch_archive(archive, e.files, &mirrors(e), &folder)?,
                None => {
                    for (f, state) in e.files.iter().zip(states) {
                        match state {
                            FileState::Verified(p) => eprintln!("{} already present and verified", p.display()),
                            _ => fetch_file(f, &mirrors(e), &folder)?,
                        }
                    }
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

/// Checks the MD5 of `path` as stored against a published one.
fn check_md5(path: &Path, expected: Option<&str>) -> Result<()> {
    if let Some(expected) = expected {
        let actual = catalog::file_md5(path).map_err(|e| anyhow!("{e}"))?;
        if actual != expected {
            bail!("MD5 is {actual}, expected the published {expected}");
        }
    }
    Ok(())
}

fn fetch_file(f: &RemoteFile, mirrors: &[String], folder: &Path) -> Result<()> {
    let target = folder.join(f.name);
    let part = folder.join(format!(".{}.part-{}", f.name, std::process::id()));
    let mut failures = Vec::new();
    for base in mirrors {
        let url = format!("{base}{}", f.name);
        match download(&url, &part).and_then(|_| check_md5(&part, f.md5)).and_then(|_| {
            let actual = catalog::content_sha256(&part).map_err(|e| anyhow!("{e}"))?;
            match f.sha256 {
                Some(expected) if actual != expected => {
                    Err(anyhow!("SHA-256 of the contents is {actual}, expected {expected}"))
                }
                _ => Ok(()),
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

/// Downloads `archive` from the first mirror that serves it intact (its MD5, and SHA-256 where
/// known), extracts its members (each checked against the published MD5 `files` gives it, if
/// any, before any is put in place), and records the SHA-256 of each in `SHA256SUMS`. The
/// archive itself is not kept.
fn fetch_archive(archive: &Archive, files: &[RemoteFile], mirrors: &[String], folder: &Path) -> Result<()> {
    let part = folder.join(format!(".{}.part-{}", archive.name, std::process::id()));
    let mut failures = Vec::new();
    for base in mirrors {
        let url = format!("{base}{}", archive.name);
        let fetched =
            download(&url, &part).and_then(|_| check_md5(&part, Some(archive.md5))).and_then(|_| {
                match archive.sha256 {
                    Some(expected) => {
                        let actual = catalog::file_sha256(&part).map_err(|e| anyhow!("{e}"))?;
                        if actual != expected {
                            bail!("SHA-256 is {actual}, expected {expected}");
                        }
                        Ok(())
                    }
                    None => Ok(()),
                }
            });
        if let Err(err) = fetched {
            fs::remove_file(&part).ok();
            eprintln!("{url}: {err:#}");
            failures.push(format!("{url}: {err:#}"));
            continue;
        }
        let unpacked = datasets::archive::unpack(&part, archive, files, folder);
        fs::remove_file(&part).ok();
        let extracted = unpacked.map_err(|e| anyhow!("{url}: {e}"))?;
        let sums: String = extracted.iter().map(|x| format!("{}  {}\n", x.sha256, x.name)).collect();
        crate::harness::write_atomic(&folder.join(catalog::SUMS_FILE), sums.as_bytes())?;
        eprintln!("{} verified ({} files extracted from {})", folder.display(), extracted.len(), archive.name);
        return Ok(());
    }
    bail!("could not fetch {} from any mirror:\n{}", archive.name, failures.join("\n"))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback HTTP server answering `max` requests: `/<name>` serves `files[name]`, else 404.
    fn serve(files: Vec<(String, Vec<u8>)>, max: usize) -> String {
        use std::io::{BufRead, BufReader};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(max) {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                reader.read_line(&mut request).unwrap();
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap() == 0 || header == "\r\n" {
                        break;
                    }
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/').to_string();
                let _ = match files.iter().find(|(n, _)| *n == path) {
                    Some((_, b)) => stream
                        .write_all(
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", b.len())
                                .as_bytes(),
                        )
                        .and_then(|_| stream.write_all(b)),
                    None => {
                        stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    }
                };
            }
        });
        format!("http://{addr}/")
    }

    fn tar_gz(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        for (path, bytes) in members {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_cksum();
            builder.append(&header, *bytes).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    fn md5_of(bytes: &[u8]) -> &'static str {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), bytes).unwrap();
        Box::leak(catalog::file_md5(&dir.path().join("f")).unwrap().into_boxed_str())
    }

    const FILES: &[RemoteFile] = &[
        RemoteFile { name: "train.bin", sha256: None, md5: None },
        RemoteFile { name: "test.bin", sha256: None, md5: None },
    ];
    const MEMBERS: &[(&str, &str)] = &[("toy/train.bin", "train.bin"), ("toy/test.bin", "test.bin")];

    fn names(dir: &Path) -> Vec<String> {
        let mut n: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        n.sort();
        n
    }

    #[test]
    fn an_archive_is_verified_unpacked_and_its_files_recorded() {
        let good = tar_gz(&[("toy/train.bin", b"0123"), ("toy/readme.html", b"-"), ("toy/test.bin", b"45")]);
        // The archive's own SHA-256 (of its compressed bytes, as published for CIFAR-10's).
        let sha = {
            let dir = tempfile::tempdir().unwrap();
            fs::write(dir.path().join("a"), &good).unwrap();
            Box::leak(catalog::file_sha256(&dir.path().join("a")).unwrap().into_boxed_str())
        };
        let archive = Archive { name: "toy.tar.gz", md5: md5_of(&good), sha256: Some(sha), members: MEMBERS };
        // The first mirror serves a corrupt copy (refused by its MD5), the second the archive.
        let mut corrupt = good.clone();
        corrupt[40] ^= 1;
        let first = serve(vec![("toy.tar.gz".into(), corrupt)], 1);
        let second = serve(vec![("toy.tar.gz".into(), good)], 1);
        let dir = tempfile::tempdir().unwrap();
        fetch_archive(&archive, FILES, &[first, second], dir.path()).unwrap();
        assert_eq!(names(dir.path()), ["SHA256SUMS", "test.bin", "train.bin"], "no archive or partial file left");
        assert_eq!(fs::read(dir.path().join("train.bin")).unwrap(), b"0123");
        // Later verification uses the recorded SHA-256: a changed file is caught.
        assert!(matches!(catalog::check(dir.path(), &FILES[0]), FileState::Verified(_)));
        fs::write(dir.path().join("train.bin"), b"0124").unwrap();
        assert!(matches!(catalog::check(dir.path(), &FILES[0]), FileState::Corrupt { .. }));
        fs::remove_file(dir.path().join("SHA256SUMS")).unwrap();
        assert!(matches!(catalog::check(dir.path(), &FILES[0]), FileState::Unverified(_)));
    }

    #[test]
    fn a_corrupt_or_hostile_archive_is_refused_leaving_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // Corrupt: no mirror serves bytes of the published MD5.
        let good = tar_gz(&[("toy/train.bin", b"0123"), ("toy/test.bin", b"45")]);
        let archive = Archive { name: "toy.tar.gz", md5: md5_of(&good), sha256: None, members: MEMBERS };
        let base = serve(vec![("toy.tar.gz".into(), good[..good.len() / 2].to_vec())], 1);
        let err = fetch_archive(&archive, FILES, &[base], dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("MD5 is"), "{err:#}");
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
        // Hostile: the MD5 matches (the authors' archive would say so), but a member leaves the folder.
        let evil = tar_gz(&[("toy/train.bin", b"0123"), ("../x", b"evil"), ("toy/test.bin", b"45")]);
        let archive = Archive { name: "toy.tar.gz", md5: md5_of(&evil), sha256: None, members: MEMBERS };
        let base = serve(vec![("toy.tar.gz".into(), evil)], 1);
        let err = fetch_archive(&archive, FILES, &[base], dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("unexpected member '../x'"), "{err:#}");
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
        // A member with the wrong published MD5: nothing is extracted, and files already in
        // the folder stay as they were.
        fs::write(dir.path().join("train.bin"), b"mine").unwrap();
        let files =
            [RemoteFile { name: "train.bin", sha256: None, md5: Some("00000000000000000000000000000000") }, FILES[1]];
        let good = tar_gz(&[("toy/train.bin", b"0123"), ("toy/test.bin", b"45")]);
        let archive = Archive { name: "toy.tar.gz", md5: md5_of(&good), sha256: None, members: MEMBERS };
        let base = serve(vec![("toy.tar.gz".into(), good)], 1);
        let err = fetch_archive(&archive, &files, &[base], dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("MD5 of member train.bin is"), "{err:#}");
        assert_eq!(names(dir.path()), ["train.bin"], "only the file that was there");
        assert_eq!(fs::read(dir.path().join("train.bin")).unwrap(), b"mine");
    }

    #[test]
    fn a_gz_file_must_match_its_published_md5_and_its_contents_sha256() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(b"abc").unwrap();
        let gz = gz.finish().unwrap();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let dir = tempfile::tempdir().unwrap();
        // Same contents, recompressed: the SHA-256 of the contents matches, the published MD5 does not.
        let mut other = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        other.write_all(b"abc").unwrap();
        let other = other.finish().unwrap();
        let f = RemoteFile { name: "a.gz", sha256: Some(abc), md5: Some(md5_of(&gz)) };
        let first = serve(vec![("a.gz".into(), other)], 1);
        let second = serve(vec![("a.gz".into(), gz)], 1);
        fetch_file(&f, &[first.clone(), second], dir.path()).unwrap();
        assert_eq!(names(dir.path()), ["a.gz"]);
        assert!(matches!(catalog::check(dir.path(), &f), FileState::Verified(_)));
    }
}
