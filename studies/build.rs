//! Stamps the binary with what it was built from, so every record says which code made it:
//! the git commit and whether the tree was dirty, a hash of every source file that can change a
//! result (the code version records are checked against), rustc, the cargo features, the target
//! and the CPU features compiled in. Read at build time, not from the source tree at run time,
//! so a binary copied elsewhere still tells the truth. Report templates (`studies/src/**/text/*.md`)
//! are not hashed: they change a table's prose, never a record.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest.parent().expect("studies/ sits in the workspace").to_path_buf();

    // Sources that change results: every crate's src/, the lock file and the manifests.
    let mut files = Vec::new();
    for dir in ["crates", "studies"] {
        collect(&root.join(dir), &mut files);
    }
    for f in ["Cargo.lock", "Cargo.toml"] {
        files.push(root.join(f));
    }
    files.sort();
    // FNV-1a over each file's path relative to the root and its bytes.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            hash = (hash ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    };
    for f in &files {
        let rel = f.strip_prefix(&root).unwrap_or(f);
        feed(rel.to_string_lossy().replace('\\', "/").as_bytes());
        feed(&[0]);
        feed(&std::fs::read(f).unwrap_or_default());
        feed(&[0]);
    }
    for dir in ["crates", "studies/src", "Cargo.lock", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    for f in [".git/HEAD", ".git/index"] {
        if root.join(f).exists() {
            println!("cargo:rerun-if-changed={}", root.join(f).display());
        }
    }

    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(&root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let commit = git(&["rev-parse", "HEAD"]).map_or_else(|| "unknown".into(), |s| s.trim().to_string());
    // Dirty means: a file the source hash covers differs from the commit (edited, added or
    // deleted), so README or a test being edited does not mark records as made by dirty code.
    // `-z`: entries are NUL-terminated, paths unquoted, and a rename or copy is followed by its
    // source path as a separate entry; every path is tested, so moving a source file away counts.
    let dirty = git(&[
        "status",
        "--porcelain=v1",
        "-z",
        "--untracked-files=all",
        "--",
        "crates",
        "studies",
        "Cargo.toml",
        "Cargo.lock",
    ])
    .map(|out| {
        let mut entries = out.split('\0').filter(|e| !e.is_empty());
        let mut dirty = false;
        while let Some(entry) = entries.next() {
            let (status, path) = (entry.get(..2).unwrap_or(""), entry.get(3..).unwrap_or(""));
            dirty |= is_hashed(path);
            if status.contains('R') || status.contains('C') {
                dirty |= entries.next().is_some_and(is_hashed);
            }
        }
        dirty
    });
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let mut features: Vec<String> = std::env::vars()
        .filter_map(|(k, _)| k.strip_prefix("CARGO_FEATURE_").map(|f| f.to_lowercase().replace('_', "-")))
        .collect();
    features.sort();
    let target_features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();

    println!("cargo:rustc-env=FLATLAND_SOURCE_HASH={hash:016x}");
    println!("cargo:rustc-env=FLATLAND_GIT_COMMIT={commit}");
    println!(
        "cargo:rustc-env=FLATLAND_GIT_DIRTY={}",
        match dirty {
            Some(true) => "true",
            Some(false) => "false",
            None => "unknown",
        }
    );
    println!("cargo:rustc-env=FLATLAND_RUSTC={rustc_version}");
    println!("cargo:rustc-env=FLATLAND_FEATURES={}", features.join(","));
    println!("cargo:rustc-env=FLATLAND_TARGET={}", std::env::var("TARGET").unwrap_or_default());
    println!("cargo:rustc-env=FLATLAND_PROFILE={}", std::env::var("PROFILE").unwrap_or_default());
    println!("cargo:rustc-env=FLATLAND_TARGET_FEATURES={target_features}");
}

/// Whether a path relative to the root (as `git status -z` prints it) is one `collect` hashes.
fn is_hashed(path: &str) -> bool {
    if path == "Cargo.lock" || path == "Cargo.toml" {
        return true;
    }
    let parts: Vec<&str> = path.split('/').collect();
    let source = path.ends_with(".rs") || path.ends_with("/Cargo.toml");
    source
        && matches!(parts[0], "crates" | "studies")
        && !parts[..parts.len() - 1].iter().any(|d| *d == "target" || *d == "tests" || d.starts_with('.'))
}

/// Every file under `dir` that is source: `.rs` and `Cargo.toml` (not build outputs, not tests).
fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            if name != "target" && name != "tests" && !name.to_string_lossy().starts_with('.') {
                collect(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") || name == "Cargo.toml" {
            out.push(path);
        }
    }
}
