//! What a record says about where it was made: code version, Burn, backend, machine.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

/// Burn version this build pins in the workspace `Cargo.toml` (checked against Cargo.lock by a test).
pub const BURN_VERSION: &str = "0.22.1";

/// The environment of a run, stored in every record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Env {
    /// flatland version (workspace version).
    pub flatland_version: String,
    /// `git rev-parse HEAD` of the source tree, or "unknown" outside a git checkout.
    pub git_commit: String,
    /// Whether tracked files differed from that commit when the run started.
    pub git_dirty: bool,
    /// Burn version.
    pub burn_version: String,
    /// Backend name (flex, ndarray, wgpu, cuda).
    pub backend: String,
    /// The Burn device, as Burn prints it.
    pub device: String,
    /// CPU model, from /proc/cpuinfo where available.
    pub cpu: String,
    /// Threads the grid ran on (`--jobs`).
    pub jobs: usize,
}

impl Env {
    /// Reads the environment once, before any record is written.
    pub fn capture(backend: nets::Backend, device: &nets::Device, jobs: usize) -> Env {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let git = |args: &[&str]| {
            Command::new("git")
                .arg("-C")
                .arg(&repo)
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        };
        let git_commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
        let git_dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
        Env {
            flatland_version: env!("CARGO_PKG_VERSION").into(),
            git_commit,
            git_dirty,
            burn_version: BURN_VERSION.into(),
            backend: backend.name().into(),
            device: format!("{device:?}"),
            cpu: cpu_model(),
            jobs,
        }
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn burn_version_matches_the_lock_file() {
        let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock")).expect("Cargo.lock");
        let entry = format!("name = \"burn\"\nversion = \"{}\"", super::BURN_VERSION);
        assert!(lock.contains(&entry), "Cargo.lock does not pin burn {}", super::BURN_VERSION);
    }
}
