//! What a record says about where it was made: the code (stamped at build time by `build.rs`),
//! the command line, Burn and its backend, the machine (CPU model, the SIMD features the kernels
//! choose from at run time, cache sizes) and the data.
//!
//! Records made by one binary on one machine are identical for a seed whatever `--jobs` is.
//! Across machines they can differ in the last bits: the GEMM kernels (crate `gemm`, used by
//! Burn's flex backend and by our fused convolution) pick their instruction set and blocking at
//! run time from the CPU's features and cache sizes, which is why both are recorded.

use serde::{Deserialize, Serialize};

/// Burn version this build pins in the workspace `Cargo.toml` (checked against Cargo.lock by a test).
pub const BURN_VERSION: &str = "0.22.1";

/// The code a binary was built from, fixed at build time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    /// flatland version (workspace version).
    pub version: String,
    /// `git rev-parse HEAD` when the binary was built, or "unknown" outside a git checkout.
    pub git_commit: String,
    /// Whether tracked files differed from that commit ("unknown" outside git).
    pub git_dirty: String,
    /// FNV-1a hash of every source file that can change a result (`crates/`, `studies/`, the
    /// manifests and Cargo.lock; not tests): the code version records are checked against.
    pub source_hash: String,
    /// `rustc --version`.
    pub rustc: String,
    /// Cargo features of the `studies` binary.
    pub features: String,
    /// Target triple and profile.
    pub target: String,
    /// CPU features enabled at compile time (`-C target-feature`/`target-cpu`).
    pub target_features: String,
}

impl Build {
    /// This binary's build.
    pub fn current() -> Build {
        Build {
            version: env!("CARGO_PKG_VERSION").into(),
            git_commit: env!("FLATLAND_GIT_COMMIT").into(),
            git_dirty: env!("FLATLAND_GIT_DIRTY").into(),
            source_hash: env!("FLATLAND_SOURCE_HASH").into(),
            rustc: env!("FLATLAND_RUSTC").into(),
            features: env!("FLATLAND_FEATURES").into(),
            target: format!("{} ({})", env!("FLATLAND_TARGET"), env!("FLATLAND_PROFILE")),
            target_features: env!("FLATLAND_TARGET_FEATURES").into(),
        }
    }

    /// Short name of this code version: the commit's first 10 hex digits, "+dirty" when the tree
    /// was dirty, and the source hash.
    pub fn short(&self) -> String {
        let commit = &self.git_commit[..self.git_commit.len().min(10)];
        let dirty = if self.git_dirty == "true" { "+dirty" } else { "" };
        format!("{commit}{dirty} (source {})", self.source_hash)
    }
}

/// The machine a run ran on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model, from /proc/cpuinfo where available.
    pub cpu: String,
    /// SIMD features detected at run time that the GEMM kernels choose between.
    pub simd: Vec<String>,
    /// Cache sizes of CPU 0 (level and type: size), from sysfs where available.
    pub caches: Vec<String>,
    /// Logical cores.
    pub cores: usize,
    /// The kernel choices Burn's CPU backends make from the above at run time
    /// (`nets::backend::kernel_dispatch`).
    pub kernels: Vec<String>,
}

impl Machine {
    fn capture() -> Machine {
        Machine {
            cpu: cpu_model(),
            simd: simd_features(),
            caches: caches(),
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            kernels: nets::backend::kernel_dispatch(),
        }
    }
}

/// The environment of a run, stored in every record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Env {
    /// The code.
    pub build: Build,
    /// The command line, as typed.
    pub command: Vec<String>,
    /// Burn version.
    pub burn_version: String,
    /// Backend name (flex, ndarray, wgpu, cuda).
    pub backend: String,
    /// The Burn device, as Burn prints it.
    pub device: String,
    /// The machine.
    pub machine: Machine,
    /// Threads the grid ran on (`--jobs`).
    pub jobs: usize,
    /// SHA-256 of the data the study read, by dataset name (generated data: of its features
    /// and labels as stored in memory).
    pub data: Vec<(String, String)>,
    /// SHA-256 of each file the data was read from, as ("<dataset>/<file>", hex).
    #[serde(default)]
    pub data_files: Vec<(String, String)>,
}

impl Env {
    /// Reads the environment once, before any record is written.
    pub fn capture(backend: nets::Backend, device: &nets::Device, jobs: usize) -> Env {
        Env {
            build: Build::current(),
            command: std::env::args().collect(),
            burn_version: BURN_VERSION.into(),
            backend: backend.name().into(),
            device: format!("{device:?}"),
            machine: Machine::capture(),
            jobs,
            data: Vec::new(),
            data_files: Vec::new(),
        }
    }

    /// For studies without a network (no backend): the same, with backend "none".
    pub fn capture_cpu_only(jobs: usize) -> Env {
        Env {
            build: Build::current(),
            command: std::env::args().collect(),
            burn_version: BURN_VERSION.into(),
            backend: "none".into(),
            device: "cpu".into(),
            machine: Machine::capture(),
            jobs,
            data: Vec::new(),
            data_files: Vec::new(),
        }
    }

    /// Adds the checksums of each loaded dataset and of the files it was read from.
    pub fn with_datasets(
        mut self,
        data: &[(crate::data::DataSpec, datasets::Dataset)],
        dir: &crate::data::DataDir,
    ) -> anyhow::Result<Env> {
        for (spec, d) in data {
            self = self.with_data(spec.name(), d).with_files(spec, dir)?;
        }
        Ok(self)
    }

    /// Adds the SHA-256 of every file `spec`'s loader read from `dir` (generated data: none).
    pub fn with_files(mut self, spec: &crate::data::DataSpec, dir: &crate::data::DataDir) -> anyhow::Result<Env> {
        for digest in spec.file_digests(dir)? {
            if !self.data_files.contains(&digest) {
                self.data_files.push(digest);
            }
        }
        Ok(self)
    }

    /// Adds the checksum of a dataset the study uses.
    pub fn with_data(mut self, name: &str, data: &datasets::Dataset) -> Env {
        if !self.data.iter().any(|(n, _)| n == name) {
            self.data.push((name.into(), dataset_sha256(data)));
        }
        self
    }
}

#[cfg(test)]
impl Env {
    /// A fixed environment for exporter tests (their expected text must not depend on the
    /// machine or the build).
    pub fn fixture() -> Env {
        Env {
            build: Build {
                version: "0.1.0".into(),
                git_commit: "0123456789abcdef".into(),
                git_dirty: "false".into(),
                source_hash: "00000000deadbeef".into(),
                rustc: "rustc 1.95.0".into(),
                features: "flex".into(),
                target: "x86_64-unknown-linux-gnu (release)".into(),
                target_features: String::new(),
            },
            command: vec!["studies".into()],
            burn_version: BURN_VERSION.into(),
            backend: "flex".into(),
            device: "Device<Flex(Cpu)>".into(),
            machine: Machine { cpu: "test".into(), simd: vec![], caches: vec![], cores: 1, kernels: vec![] },
            jobs: 1,
            data: vec![],
            data_files: vec![],
        }
    }
}

/// SHA-256 of a dataset as held in memory: train features (f32 little-endian), train labels,
/// test features, test labels.
pub fn dataset_sha256(data: &datasets::Dataset) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for split in [&data.train, &data.test] {
        for v in &split.features {
            h.update(v.to_le_bytes());
        }
        for &l in &split.labels {
            h.update((l as u64).to_le_bytes());
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
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

#[cfg(target_arch = "x86_64")]
fn simd_features() -> Vec<String> {
    let mut out = Vec::new();
    macro_rules! detect {
        ($($f:tt),*) => {$(
            if std::arch::is_x86_feature_detected!($f) {
                out.push($f.to_string());
            }
        )*};
    }
    detect!("sse4.2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl");
    out
}

#[cfg(target_arch = "aarch64")]
fn simd_features() -> Vec<String> {
    let mut out = Vec::new();
    if std::arch::is_aarch64_feature_detected!("neon") {
        out.push("neon".to_string());
    }
    if std::arch::is_aarch64_feature_detected!("fp16") {
        out.push("fp16".to_string());
    }
    out
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn simd_features() -> Vec<String> {
    Vec::new()
}

fn caches() -> Vec<String> {
    let base = std::path::Path::new("/sys/devices/system/cpu/cpu0/cache");
    let mut out = Vec::new();
    for i in 0..8 {
        let dir = base.join(format!("index{i}"));
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok().map(|s| s.trim().to_string());
        let (Some(level), Some(kind), Some(size)) = (read("level"), read("type"), read("size")) else { break };
        out.push(format!("L{level} {kind}: {size}"));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn burn_version_matches_the_lock_file() {
        let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock")).expect("Cargo.lock");
        let entry = format!("name = \"burn\"\nversion = \"{}\"", super::BURN_VERSION);
        assert!(lock.contains(&entry), "Cargo.lock does not pin burn {}", super::BURN_VERSION);
    }

    #[test]
    fn build_stamp_is_filled_in() {
        let b = super::Build::current();
        assert_eq!(b.source_hash.len(), 16, "{b:?}");
        assert!(b.rustc.starts_with("rustc "), "{b:?}");
        assert!(b.features.contains("flex"), "{b:?}");
    }
}
