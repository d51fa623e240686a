//! `studies slurm <study> [study flags] --array N [--partition P --time T --cpus C --mem M]
//! [--submit]`: a grid as a Slurm job array, one shard per task (`--shard I/N`, see
//! [`crate::shard`]), and a report job that runs once every task has succeeded
//! (`--dependency=afterok`). The scripts are written under `<out>/<study>/slurm/`; `--submit`
//! hands them to `sbatch`.
//!
//! Each task passes its shard explicitly (`--shard $SLURM_ARRAY_TASK_ID/N`), so resubmitting
//! one task alone (`sbatch --array=K array.sbatch`) runs shard K of the same split. A study
//! whose second stage needs the whole first stage (optimizers: the final runs take each rule's
//! best step size from every tuning run) gets a second array after the first.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::harness::write_atomic;
use crate::usage;

/// Arguments of `studies slurm`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The study and its flags as you would run it, with the Slurm flags anywhere among them:
    /// --array N (tasks, i.e. shards), --cpus C (per task, default 2; the study's --jobs),
    /// --partition P, --time T (e.g. 04:00:00), --mem M (e.g. 8G), --submit (run sbatch;
    /// otherwise the scripts are only written). Example: studies slurm keskar --scale paper
    /// --nets F1 --data-dir /data --array 5 --time 04:00:00 --submit
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true, value_name = "STUDY [FLAGS]")]
    pub command: Vec<String>,
}

/// The Slurm side of the command line.
#[derive(Debug, Default, PartialEq)]
struct Options {
    array: usize,
    cpus: usize,
    partition: Option<String>,
    time: Option<String>,
    mem: Option<String>,
    submit: bool,
}

/// Splits the command line into Slurm options and the study's own command.
fn split(command: &[String]) -> Result<(Options, Vec<String>)> {
    let mut o = Options { cpus: 2, ..Options::default() };
    let mut array = None;
    let mut study = Vec::new();
    let mut it = command.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        if !["--array", "--cpus", "--partition", "--time", "--mem", "--submit"].contains(&flag) {
            study.push(arg.clone());
            continue;
        }
        if flag == "--submit" {
            o.submit = true;
            continue;
        }
        let Some(value) = inline.or_else(|| it.next().cloned()) else { usage!("{flag}: a value is needed") };
        // Values go into #SBATCH lines: letters, digits and : - _ . , only.
        if value.is_empty() || !value.chars().all(|c| c.is_ascii_alphanumeric() || ":-_.,".contains(c)) {
            usage!("{flag} {value:?}: accepted: letters, digits and : - _ . , only");
        }
        let count = |v: &str| -> Result<usize> {
            match v.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => usage!("{flag} {v}: accepted: a whole number, 1 or more"),
            }
        };
        match flag {
            "--array" => array = Some(count(&value)?),
            "--cpus" => o.cpus = count(&value)?,
            "--partition" => o.partition = Some(value),
            "--time" => o.time = Some(value),
            _ => o.mem = Some(value),
        }
    }
    let Some(array) = array else {
        usage!("studies slurm: --array N is needed (the number of array tasks, 1 or more)")
    };
    o.array = array;
    if study.is_empty() {
        usage!("studies slurm: name the study and its flags, e.g. studies slurm keskar --scale paper --array 5");
    }
    if study.iter().any(|a| a == "--shard" || a.starts_with("--shard=")) {
        usage!("studies slurm: --shard is set per array task; leave it out");
    }
    if study.iter().any(|a| a == "--dry-run") {
        usage!("studies slurm: --dry-run runs nothing; run `studies {} --dry-run` directly", study[0]);
    }
    Ok((o, study))
}

/// The value of `--flag V` or `--flag=V` in `args`.
fn flag_value(args: &[String], flag: &str) -> Option<String> {
    let prefix = format!("{flag}=");
    args.iter()
        .enumerate()
        .find_map(|(i, a)| if a == flag { args.get(i + 1).cloned() } else { a.strip_prefix(&prefix).map(String::from) })
}

/// `arg` quoted for bash.
fn quote(arg: &str) -> String {
    if !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,".contains(c)) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// The two scripts: the array of shards and the report.
fn scripts(o: &Options, exe: &Path, cwd: &Path, study: &[String], out: &Path, logs: &Path) -> (String, String) {
    let name = &study[0];
    let mut head = String::new();
    for (key, value) in [("partition", &o.partition), ("time", &o.time)] {
        if let Some(v) = value {
            head.push_str(&format!("#SBATCH --{key}={v}\n"));
        }
    }
    let mut args: Vec<String> = study.iter().map(|a| quote(a)).collect();
    if flag_value(study, "--jobs").is_none() {
        args.push(format!("--jobs {}", o.cpus));
    }
    let mem = o.mem.as_ref().map_or(String::new(), |m| format!("#SBATCH --mem={m}\n"));
    let array = format!(
        "#!/bin/bash\n\
         #SBATCH --job-name=flatland-{name}\n\
         #SBATCH --array=0-{last}\n\
         #SBATCH --cpus-per-task={cpus}\n\
         {mem}{head}\
         #SBATCH --chdir={cwd}\n\
         #SBATCH --output={logs}/%A_%a.out\n\
         # Task K runs shard K of {n}; resubmit one task alone with: sbatch --array=K {file}\n\
         set -euo pipefail\n\
         exec {exe} {args} --shard \"${{SLURM_ARRAY_TASK_ID}}/{n}\"\n",
        last = o.array - 1,
        n = o.array,
        cpus = o.cpus,
        cwd = quote(&cwd.display().to_string()),
        logs = logs.display(),
        file = quote(&logs.with_file_name("array.sbatch").display().to_string()),
        exe = quote(&exe.display().to_string()),
        args = args.join(" "),
    );
    let report = format!(
        "#!/bin/bash\n\
         #SBATCH --job-name=flatland-{name}-report\n\
         #SBATCH --cpus-per-task=1\n\
         {head}\
         #SBATCH --chdir={cwd}\n\
         #SBATCH --output={logs}/report_%j.out\n\
         set -euo pipefail\n\
         exec {exe} report {name} --out {out}\n",
        cwd = quote(&cwd.display().to_string()),
        logs = logs.display(),
        exe = quote(&exe.display().to_string()),
        out = quote(&out.display().to_string()),
    );
    (array, report)
}

/// Submits `script` with `sbatch --parsable` (after `after`, if given) and returns the job id.
fn sbatch(script: &Path, after: Option<&str>) -> Result<String> {
    let mut cmd = Command::new("sbatch");
    cmd.arg("--parsable");
    if let Some(job) = after {
        cmd.arg(format!("--dependency=afterok:{job}"));
    }
    let out = match cmd.arg(script).output() {
        Ok(o) => o,
        Err(e) => usage!(
            "sbatch could not be run ({e}): is this a Slurm login node? The scripts are in place to submit by hand"
        ),
    };
    if !out.status.success() {
        anyhow::bail!("sbatch {} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // --parsable prints "jobid" or "jobid;cluster".
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        anyhow::bail!("sbatch {}: no job id in its output {text:?}", script.display());
    }
    Ok(id)
}

/// Writes the scripts, and submits them with `--submit`. `check` parses the study's command
/// line as `studies` would (so a typo fails here, not in every task).
pub fn run(args: Args, check: impl Fn(&[String]) -> Result<()>) -> Result<()> {
    let (o, study) = split(&args.command)?;
    check(&study)?;
    let name = study[0].clone();
    let cwd = std::env::current_dir().context("reading the current folder")?;
    let out = PathBuf::from(flag_value(&study, "--out").unwrap_or_else(|| "results".into()));
    let out = if out.is_absolute() { out } else { cwd.join(out) };
    let dir = out.join(&name).join("slurm");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let exe = std::env::current_exe().context("locating the studies binary")?;
    let (array, report) = scripts(&o, &exe, &cwd, &study, &out, &logs);
    let (array_path, report_path) = (dir.join("array.sbatch"), dir.join("report.sbatch"));
    write_atomic(&array_path, array.as_bytes())?;
    write_atomic(&report_path, report.as_bytes())?;
    // The optimizers' final runs need every tuning run: a second array after the first.
    let arrays = if name == "optimizers" { 2 } else { 1 };
    eprintln!("wrote {} ({} tasks) and {}", array_path.display(), o.array, report_path.display());
    if !o.submit {
        let chain = if arrays == 2 {
            "a=$(sbatch --parsable ARRAY); b=$(sbatch --parsable --dependency=afterok:$a ARRAY); sbatch --dependency=afterok:$b REPORT"
        } else {
            "a=$(sbatch --parsable ARRAY); sbatch --dependency=afterok:$a REPORT"
        };
        let chain = chain.replace("ARRAY", &quote(&array_path.display().to_string()));
        println!(
            "Submit with --submit, or by hand:\n  {}",
            chain.replace("REPORT", &quote(&report_path.display().to_string()))
        );
        return Ok(());
    }
    let mut last = sbatch(&array_path, None)?;
    let mut jobs = vec![last.clone()];
    for _ in 1..arrays {
        last = sbatch(&array_path, Some(&last))?;
        jobs.push(last.clone());
    }
    let report_job = sbatch(&report_path, Some(&last))?;
    jobs.push(report_job.clone());
    println!(
        "submitted array job {} ({} tasks{}) and report job {report_job} (runs once every task has succeeded)\n\
         watch:   squeue -j {}\n\
         logs:    {}\n\
         results: {} (tables written by the report job)\n\
         a failed task K: sbatch --array=K {}, then sbatch {}",
        jobs[0],
        o.array,
        if arrays == 2 { format!(", then a second array {} for the final runs", jobs[1]) } else { String::new() },
        jobs.join(","),
        logs.display(),
        out.join(&name).display(),
        quote(&array_path.display().to_string()),
        quote(&report_path.display().to_string()),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn slurm_flags_are_taken_out_of_the_study_command() {
        let (o, study) = split(&strings(&[
            "keskar",
            "--scale",
            "paper",
            "--array",
            "5",
            "--time=04:00:00",
            "--mem",
            "8G",
            "--submit",
            "--out",
            "r",
        ]))
        .unwrap();
        assert_eq!(
            o,
            Options {
                array: 5,
                cpus: 2,
                partition: None,
                time: Some("04:00:00".into()),
                mem: Some("8G".into()),
                submit: true
            }
        );
        assert_eq!(study, strings(&["keskar", "--scale", "paper", "--out", "r"]));
        for (args, needle) in [
            (&["keskar"][..], "--array N is needed"),
            (&["keskar", "--array", "0"][..], "--array 0"),
            (&["keskar", "--array", "2", "--partition", "a b"][..], "letters, digits"),
            (&["keskar", "--array", "2", "--shard", "0/2"][..], "--shard is set per array task"),
            (&["--array", "2"][..], "name the study"),
        ] {
            let e = format!("{:#}", split(&strings(args)).unwrap_err());
            assert!(e.contains(needle), "{args:?}: {e}");
        }
    }

    #[test]
    fn the_array_script_passes_each_task_its_shard_and_the_report_waits() {
        let (o, study) =
            split(&strings(&["keskar", "--scale", "smoke", "--array", "4", "--cpus", "1", "--partition", "cpu"]))
                .unwrap();
        let (array, report) = scripts(
            &o,
            Path::new("/opt/flatland/studies"),
            Path::new("/home/u/my run"),
            &study,
            Path::new("/r"),
            Path::new("/r/keskar/slurm/logs"),
        );
        assert!(array.contains("#SBATCH --array=0-3\n#SBATCH --cpus-per-task=1\n#SBATCH --partition=cpu\n"), "{array}");
        assert!(array.contains("#SBATCH --chdir='/home/u/my run'\n"), "{array}");
        assert!(
            array.ends_with(
                "exec /opt/flatland/studies keskar --scale smoke --jobs 1 --shard \"${SLURM_ARRAY_TASK_ID}/4\"\n"
            ),
            "{array}"
        );
        assert!(report.ends_with("exec /opt/flatland/studies report keskar --out /r\n"), "{report}");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
