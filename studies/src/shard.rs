//! A grid split across machines: `--shard I/N` (or a Slurm array task, or a Kubernetes Indexed
//! Job) runs only the cells assigned to shard I, and `studies report` merges the shards.
//!
//! Assignment is a pure function of the grid: cells are grouped (a study keeps cells a later
//! stage compares in one group), groups are taken by decreasing cost, ties by a stable hash of
//! the group's name, and each goes to the least-loaded shard (longest processing time first).
//! Every shard computes the same assignment from the same flags, so no coordinator is needed,
//! and since each cell's record is its own file, written atomically, two shards never write the
//! same file. Each shard writes `<stage>.grid.shard-<I>-of-<N>.json` when it starts, listing
//! every cell with its owner: enough for the merge to name a missing cell's shard even when
//! that shard never ran.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::harness::fnv1a;
use crate::usage;

/// Shard `index` of `count` (0-based): the part of a grid one machine (one array task) runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, 0 ≤ index < count.
    pub index: usize,
    /// Shards in all.
    pub count: usize,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Parses `I/N` (clap's `value_parser` of `--shard`).
    pub fn parse(value: &str) -> std::result::Result<Shard, String> {
        let bad = || format!("--shard {value}: accepted: I/N with 0 ≤ I < N, e.g. 0/4");
        let (i, n) = value.split_once('/').ok_or_else(bad)?;
        let index = i.trim().parse::<usize>().map_err(|_| bad())?;
        let count = n.trim().parse::<usize>().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// The shard a job scheduler gives through the environment `var`: a Slurm array task
    /// (`SLURM_ARRAY_TASK_ID`, normalized by `SLURM_ARRAY_TASK_MIN` and `SLURM_ARRAY_TASK_STEP`,
    /// of `SLURM_ARRAY_TASK_COUNT`), or a Kubernetes Indexed Job's `JOB_COMPLETION_INDEX` of
    /// `FLATLAND_SHARDS` (Kubernetes does not export the count; the Job sets it). `None` outside
    /// both; a usage error for values that do not make a shard.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<Shard>> {
        let num = |name: &str| -> Result<Option<usize>> {
            match var(name) {
                None => Ok(None),
                Some(v) => match v.trim().parse::<usize>() {
                    Ok(n) => Ok(Some(n)),
                    Err(_) => usage!("{name}={v}: not a whole number (the shard is read from it)"),
                },
            }
        };
        let (index, count, from) = if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let step = num("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1);
            let Some(count) = num("SLURM_ARRAY_TASK_COUNT")? else {
                usage!("SLURM_ARRAY_TASK_ID={id} without SLURM_ARRAY_TASK_COUNT: pass --shard I/N");
            };
            if id < min || step == 0 || !(id - min).is_multiple_of(step) {
                usage!(
                    "SLURM_ARRAY_TASK_ID={id} is not on the array's grid (min {min}, step {step}): pass --shard I/N"
                );
            }
            ((id - min) / step, count, "SLURM_ARRAY_TASK_ID")
        } else if let Some(index) = num("JOB_COMPLETION_INDEX")? {
            let Some(count) = num("FLATLAND_SHARDS")? else {
                usage!(
                    "JOB_COMPLETION_INDEX={index} without FLATLAND_SHARDS: set FLATLAND_SHARDS to the Job's \
                     completions, or pass --shard I/N"
                );
            };
            (index, count, "JOB_COMPLETION_INDEX")
        } else {
            return Ok(None);
        };
        if count == 0 || index >= count {
            usage!("{from}: shard {index} of {count} does not exist (accepted: 0 ≤ index < count); pass --shard I/N");
        }
        Ok(Some(Shard { index, count }))
    }
}

/// The owning shard of each cell: groups (cells sharing a name in `groups`) by decreasing total
/// cost, ties by FNV-1a of the group name, each to the least-loaded shard (ties: the lowest).
pub fn assign(groups: &[String], costs: &[f64], count: usize) -> Vec<usize> {
    let mut names: Vec<&String> = Vec::new();
    let mut totals: Vec<f64> = Vec::new();
    for (g, c) in groups.iter().zip(costs) {
        match names.iter().position(|n| *n == g) {
            Some(k) => totals[k] += c,
            None => {
                names.push(g);
                totals.push(*c);
            }
        }
    }
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|&a, &b| {
        totals[b].total_cmp(&totals[a]).then(fnv1a(names[a].as_bytes()).cmp(&fnv1a(names[b].as_bytes())))
    });
    let mut load = vec![0.0f64; count.max(1)];
    let mut owner_of = vec![0usize; names.len()];
    for k in order {
        let least = (0..load.len()).min_by(|&a, &b| load[a].total_cmp(&load[b]).then(a.cmp(&b))).unwrap_or(0);
        owner_of[k] = least;
        load[least] += totals[k];
    }
    groups.iter().map(|g| owner_of[names.iter().position(|n| *n == g).unwrap_or(0)]).collect()
}

/// What one shard of a grid runs, written when it starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardManifest {
    /// Study name.
    pub study: String,
    /// Grid name within the study.
    pub stage: String,
    /// This shard.
    pub shard: Shard,
    /// Whether `records` is the whole grid; a derived stage (built from the shard's own records)
    /// lists the shard's cells only.
    pub whole_grid: bool,
    /// Record ids, in cell order.
    pub records: Vec<String>,
    /// The shard that owns each record.
    pub owners: Vec<usize>,
}

/// `<study dir>/<stage>.grid.shard-<I>-of-<N>.json`.
pub fn manifest_path(study_dir: &Path, stage: &str, shard: Shard) -> PathBuf {
    study_dir.join(format!("{stage}.grid.shard-{}-of-{}.json", shard.index, shard.count))
}

/// The shard manifests of `stage` in `study_dir`, by shard index.
pub fn manifests(study_dir: &Path, stage: &str) -> Result<Vec<(PathBuf, ShardManifest)>> {
    let prefix = format!("{stage}.grid.shard-");
    let mut out = Vec::new();
    let entries = match fs::read_dir(study_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("reading {}", study_dir.display())),
    };
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with(&prefix) && name.ends_with(".json") {
            let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            let m: ShardManifest =
                serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
            out.push((path, m));
        }
    }
    out.sort_by_key(|(_, m)| m.shard.index);
    Ok(out)
}

/// Removes the shard manifests of `stage` (a whole run of the grid supersedes them).
pub fn remove_manifests(study_dir: &Path, stage: &str) -> Result<()> {
    for (path, _) in manifests(study_dir, stage)? {
        fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

/// The grid's record ids merged from its shards' manifests: all shards must have split the same
/// grid the same way, and every cell must have a record file under `records_dir`; otherwise a
/// usage error lists each missing cell with the shard that owns it (and the shards that never
/// started). `None` when the stage has no shard manifests.
pub fn merge(study_dir: &Path, stage: &str) -> Result<Option<Vec<String>>> {
    let found = manifests(study_dir, stage)?;
    let Some((first_path, first)) = found.first() else { return Ok(None) };
    let count = first.shard.count;
    let mut ids: Vec<String> = Vec::new();
    let mut owners: Vec<usize> = Vec::new();
    for (path, m) in &found {
        if m.shard.count != count || m.whole_grid != first.whole_grid {
            usage!(
                "{} and {} split the grid differently ({} vs {}): remove the manifests of the run you abandoned",
                first_path.display(),
                path.display(),
                first.shard,
                m.shard
            );
        }
        if m.whole_grid && (m.records != first.records || m.owners != first.owners) {
            usage!(
                "{} and {} list different grids (other flags?): remove the manifests of the run you abandoned",
                first_path.display(),
                path.display()
            );
        }
        for (id, owner) in m.records.iter().zip(&m.owners) {
            if !ids.contains(id) {
                ids.push(id.clone());
                owners.push(*owner);
            }
        }
    }
    let records_dir = study_dir.join("records");
    let missing: Vec<String> = ids
        .iter()
        .zip(&owners)
        .filter(|(id, _)| !records_dir.join(format!("{id}.json")).is_file())
        .map(|(id, owner)| format!("{id} (shard {owner}/{count})"))
        .collect();
    if !missing.is_empty() {
        let started: Vec<usize> = found.iter().map(|(_, m)| m.shard.index).collect();
        let never: Vec<String> = (0..count).filter(|i| !started.contains(i)).map(|i| format!("{i}/{count}")).collect();
        let never =
            if never.is_empty() { String::new() } else { format!("; shards that never started: {}", never.join(", ")) };
        usage!(
            "{stage} grid in {}: {} of {} cells have no record{never}. Rerun those shards (same flags, --shard I/{count}); \
             missing: {}",
            study_dir.display(),
            missing.len(),
            ids.len(),
            missing.join(", ")
        );
    }
    Ok(Some(ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_shards_and_refuses_the_impossible() {
        assert_eq!(Shard::parse("2/4"), Ok(Shard { index: 2, count: 4 }));
        for bad in ["4/4", "0/0", "1", "-1/3", "a/b", "1/2/3"] {
            let e = Shard::parse(bad).unwrap_err();
            assert!(e.contains(bad) && e.contains("0 ≤ I < N"), "{e}");
        }
    }

    /// The environment holding `pairs` only.
    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn slurm_and_kubernetes_environments_give_the_shard() {
        assert_eq!(Shard::from_env(env(&[])).unwrap(), None);
        // --array=0-3: task 2 of 4.
        let slurm = [("SLURM_ARRAY_TASK_ID", "2"), ("SLURM_ARRAY_TASK_COUNT", "4")];
        assert_eq!(Shard::from_env(env(&slurm)).unwrap(), Some(Shard { index: 2, count: 4 }));
        // --array=10-16:2 (10, 12, 14, 16): task 14 is shard 2 of 4.
        let stepped = [
            ("SLURM_ARRAY_TASK_ID", "14"),
            ("SLURM_ARRAY_TASK_MIN", "10"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ];
        assert_eq!(Shard::from_env(env(&stepped)).unwrap(), Some(Shard { index: 2, count: 4 }));
        let off = [
            ("SLURM_ARRAY_TASK_ID", "13"),
            ("SLURM_ARRAY_TASK_MIN", "10"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ];
        assert!(format!("{:#}", Shard::from_env(env(&off)).unwrap_err()).contains("not on the array's grid"));
        let k8s = [("JOB_COMPLETION_INDEX", "3"), ("FLATLAND_SHARDS", "5")];
        assert_eq!(Shard::from_env(env(&k8s)).unwrap(), Some(Shard { index: 3, count: 5 }));
        let no_count = [("JOB_COMPLETION_INDEX", "3")];
        assert!(format!("{:#}", Shard::from_env(env(&no_count)).unwrap_err()).contains("FLATLAND_SHARDS"));
        let beyond = [("JOB_COMPLETION_INDEX", "5"), ("FLATLAND_SHARDS", "5")];
        assert!(format!("{:#}", Shard::from_env(env(&beyond)).unwrap_err()).contains("shard 5 of 5 does not exist"));
    }

    #[test]
    fn assignment_keeps_groups_together_and_balances_cost() {
        // Four groups of cost 4, 3, 2, 1 (one of two cells): 4 → shard 0, 3 → 1, 2 → 1 (load 3
        // < 4), 1 → 0 (4 < 5): loads 5 and 5.
        let groups: Vec<String> = ["a", "a", "b", "c", "d"].map(String::from).to_vec();
        let costs = [2.0, 2.0, 3.0, 2.0, 1.0];
        let owners = assign(&groups, &costs, 2);
        assert_eq!(owners, vec![0, 0, 1, 1, 0]);
        // Equal costs: balanced counts, and a pure function of the grid.
        let many: Vec<String> = (0..10).map(|i| format!("cell{i}")).collect();
        let owners = assign(&many, &[1.0; 10], 3);
        assert_eq!(owners, assign(&many, &[1.0; 10], 3));
        let counts: Vec<usize> = (0..3).map(|s| owners.iter().filter(|&&o| o == s).count()).collect();
        assert_eq!(counts, vec![4, 3, 3]);
    }

    #[test]
    fn merge_names_each_missing_cell_with_its_shard() {
        let dir = tempfile::tempdir().unwrap();
        let study = dir.path();
        fs::create_dir_all(study.join("records")).unwrap();
        let write = |index: usize| {
            let m = ShardManifest {
                study: "toy".into(),
                stage: "grid".into(),
                shard: Shard { index, count: 2 },
                whole_grid: true,
                records: vec!["a".into(), "b".into(), "c".into()],
                owners: vec![0, 1, 0],
            };
            fs::write(manifest_path(study, "grid", m.shard), serde_json::to_vec(&m).unwrap()).unwrap();
        };
        assert_eq!(merge(study, "grid").unwrap(), None);
        write(0);
        fs::write(study.join("records/a.json"), "{}").unwrap();
        let e = format!("{:#}", merge(study, "grid").unwrap_err());
        assert!(e.contains("2 of 3 cells have no record") && e.contains("b (shard 1/2), c (shard 0/2)"), "{e}");
        write(1);
        fs::write(study.join("records/b.json"), "{}").unwrap();
        fs::write(study.join("records/c.json"), "{}").unwrap();
        assert_eq!(merge(study, "grid").unwrap(), Some(vec!["a".into(), "b".into(), "c".into()]));
        // A shard of another split refuses the merge.
        let other = ShardManifest {
            study: "toy".into(),
            stage: "grid".into(),
            shard: Shard { index: 2, count: 3 },
            whole_grid: true,
            records: vec![],
            owners: vec![],
        };
        fs::write(manifest_path(study, "grid", other.shard), serde_json::to_vec(&other).unwrap()).unwrap();
        assert!(format!("{:#}", merge(study, "grid").unwrap_err()).contains("split the grid differently"));
    }
}
