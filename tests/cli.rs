//! End-to-end tests of the `studies` binary: the smoke grid, resume after kill -9,
//! determinism, and clear errors for bad input.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn studies() -> Command {
    Command::new(env!("CARGO_BIN_EXE_studies"))
}

fn run(args: &[&str]) -> Output {
    studies().args(args).stdin(Stdio::null()).output().expect("studies runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn smoke(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["keskar", "--scale", "smoke", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&args)
}

/// The Table-2 records of a keskar run (not Figure 3's).
fn records(out: &Path) -> Vec<PathBuf> {
    study_records(out, "keskar").into_iter().filter(|p| !file_name(p).starts_with("figure3-")).collect()
}

/// Every record file of `study` under `out`.
fn study_records(out: &Path, study: &str) -> Vec<PathBuf> {
    let dir = out.join(study).join("records");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .map(|d| d.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect())
        .unwrap_or_default();
    files.sort();
    files
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// A record without its timings, which are the only fields allowed to differ between runs.
fn without_timings(path: &Path) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    let obj = v.as_object_mut().unwrap();
    obj.remove("wall_time_s");
    obj.remove("finished_unix_s");
    if let Some(outcome) = obj.get_mut("outcome").and_then(|o| o.as_object_mut()) {
        outcome.remove("train_seconds");
        for m in outcome.get_mut("measures").and_then(|m| m.as_array_mut()).into_iter().flatten() {
            m.as_object_mut().unwrap().remove("seconds");
        }
    }
    v
}

#[test]
fn help_and_list_name_the_studies() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("keskar"));
    let out = run(&["list"]);
    assert!(out.status.success());
    let listed = text(&out.stdout);
    assert!(listed.lines().any(|l| l.starts_with("keskar") && l.contains("Tables 2-4")), "{listed}");
}

#[test]
fn smoke_grid_writes_table_plot_and_records() {
    let dir = tempfile::tempdir().unwrap();
    let out = smoke(dir.path(), &[]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    // F1 and C1, SB and LB, 5 seeds.
    assert_eq!(records(dir.path()).len(), 20);
    let csv = fs::read_to_string(dir.path().join("keskar/table2.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "net,dataset,regime,runs,diverged,train_acc_mean,train_acc_std,test_acc_mean,test_acc_std,paper_train_acc,paper_test_acc"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0][..5], ["F1", "mnist1d", "SB", "5", "0"]);
    assert_eq!(rows[1][..5], ["F1", "mnist1d", "LB", "5", "0"]);
    assert_eq!(rows[2][9..], ["99.89", "80.04"], "C1 SB paper numbers");
    for row in &rows {
        let acc: f64 = row[7].parse().unwrap();
        assert!((0.0..=100.0).contains(&acc));
    }
    let md = fs::read_to_string(dir.path().join("keskar/table2.md")).unwrap();
    assert!(md.contains("Welch t"), "{md}");
    assert!(text(&out.stdout).starts_with(md.trim()), "the table is printed at the end");
    // The prediction printed before the grid starts charges the measurements too.
    assert!(text(&out.stderr).contains("of them measuring the solutions"), "{}", text(&out.stderr));

    // Tables 3 and 4 (sharpness), the curvature table and Figure 3.
    // F1 and C1, SB and LB, two ε each, under both batch-norm settings; Table 4 once for each
    // reading of A.
    for (n, readings) in [(3, 1), (4, 2)] {
        let csv = fs::read_to_string(dir.path().join(format!("keskar/table{n}.csv"))).unwrap();
        let header = "net,matrix,batch_norm,regime,runs,stalled,epsilon,sharpness_mean,sharpness_std,paper_mean\n";
        assert!(csv.starts_with(header), "{csv}");
        assert_eq!(csv.lines().count(), 1 + 2 * 8 * readings, "{csv}");
        for row in csv.lines().skip(1) {
            let cells: Vec<&str> = row.split(',').collect();
            assert_eq!(cells[5], "0", "no maximization stalls on the smoke solutions: {row}");
            let v: f64 = cells[7].parse().unwrap();
            assert!(v.is_finite() && v >= 0.0, "sharpness is a finite non-negative number: {row}");
        }
    }
    let curvature = fs::read_to_string(dir.path().join("keskar/curvature.md")).unwrap();
    assert!(curvature.contains("Cost: the measurements took"), "{curvature}");
    assert!(curvature.contains("smallest Ritz value") && curvature.contains("LB / SB per seed"), "{curvature}");
    let diagnostics = fs::read_to_string(dir.path().join("keskar/diagnostics.csv")).unwrap();
    assert_eq!(diagnostics.lines().count(), 1 + 2 * 8, "F1 and C1, SB and LB, two ε, two settings: {diagnostics}");
    assert_eq!(&fs::read(dir.path().join("keskar/figure3.png")).unwrap()[..4], b"\x89PNG");
    for plot in ["sweep.png", "density.png"] {
        assert_eq!(&fs::read(dir.path().join("keskar").join(plot)).unwrap()[..4], b"\x89PNG", "{plot}");
    }
    // Figure 3 is a stage with its own records: the two solutions' ids, the α grid, the values.
    let slices: Vec<_> =
        study_records(dir.path(), "keskar").into_iter().filter(|p| file_name(p).starts_with("figure3-")).collect();
    assert_eq!(slices.len(), 2, "one line per network");
    let slice: serde_json::Value = serde_json::from_slice(&fs::read(&slices[0]).unwrap()).unwrap();
    assert_eq!(slice["config"]["alpha"].as_array().unwrap().len(), 25);
    for line in ["interpolated", "recomputed"] {
        assert_eq!(slice["outcome"][line]["train_loss"].as_array().unwrap().len(), 25, "{slice}");
    }
    assert!(slice["config"]["sb"].as_str().unwrap().contains("-SB-seed0-"), "{slice}");
    let png = fs::read(dir.path().join("keskar/curves.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
    assert!(dir.path().join("keskar/curves.svg").exists());

    // A record holds the config, seeds, environment and curves.
    let record = without_timings(&records(dir.path())[0]);
    for key in ["schema", "config", "master_seed", "env", "outcome"] {
        assert!(record.get(key).is_some(), "record has {key}");
    }
    let env = &record["env"];
    assert_eq!(env["burn_version"], "0.22.1");
    assert_eq!(env["backend"], "flex");
    let build = &env["build"];
    for key in ["git_commit", "git_dirty", "source_hash", "rustc", "features", "target", "target_features"] {
        assert!(build[key].is_string(), "the build stamp has {key}: {build}");
    }
    assert!(env["command"].as_array().unwrap().iter().any(|a| a == "--scale"), "{env}");
    assert!(env["machine"]["simd"].is_array() && env["machine"]["caches"].is_array(), "{env}");
    assert_eq!(env["data"][0][0], "mnist1d");
    assert_eq!(env["data"][0][1].as_str().unwrap().len(), 64, "a SHA-256 of the data");
    // Every hyperparameter that changes a result is in the config.
    let config = &record["config"];
    assert_eq!(config["train"]["adam"]["beta_2"], 0.999);
    assert_eq!(config["spec"]["norm"]["momentum"], 0.1);
    assert_eq!(record["outcome"]["curves"].as_array().unwrap().len(), 4, "epoch 0 and 3 epochs");
    // One set of measurements per batch-norm setting; the batch one names its evaluation batch.
    let settings = record["outcome"]["measures"].as_array().unwrap();
    assert_eq!(settings.iter().map(|m| m["batch_norm"].as_str().unwrap()).collect::<Vec<_>>(), ["running", "batch"]);
    assert!(settings[0]["eval_batch"].is_null() && settings[1]["eval_batch"].is_number(), "{settings:?}");
    // Seed 0 carries the diagnostics (ε sweep, whole training set, density), other seeds not.
    let seed0 = config["seed_index"] == 0;
    for m in settings {
        assert_eq!(m["sweep"].as_array().is_some_and(|s| s.len() == 4), seed0, "{m}");
        assert_eq!(m["full_set"].is_object() && m["density"]["probes"].is_array(), seed0, "{m}");
    }
    let measures = &settings[0];
    assert_eq!(measures["full_space"].as_array().unwrap().len(), 2, "ε = 1e-3 and 5e-4");
    assert!(measures["top_eigenvalue"]["value"].is_number() && measures["trace"]["std_error"].is_number());
    assert!(measures["top_eigenvalue"]["smallest"].is_number(), "{measures}");
    assert_eq!(measures["subspace"][1]["matrix"], "unit-columns", "{measures}");
    // SB and LB of a seed index are measured on the same samples, A and probes.
    let measure_seed = |regime: &str| {
        records(dir.path())
            .into_iter()
            .map(|p| serde_json::from_slice::<serde_json::Value>(&fs::read(p).unwrap()).unwrap())
            .find(|r| r["config"]["regime"] == regime && r["config"]["seed_index"] == 0 && r["config"]["net"] == "F1")
            .map(|r| r["config"]["measure"]["seed"].clone())
    };
    assert_eq!(measure_seed("SB"), measure_seed("LB"));
}

#[test]
fn figure_studies_write_their_plots_and_tables() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    for (study, files) in [
        ("sweep", ["figure4.png", "sweep.csv"]),
        ("warmstart", ["figure5.png", "warmstart.csv"]),
        ("trajectory", ["figure6.png", "trajectory.csv"]),
        ("landscape", ["landscape.png", "landscape.md"]),
    ] {
        let run = run(&[study, "--scale", "smoke", "--out", out, "--jobs", "2"]);
        assert!(run.status.success(), "{study}: {}", text(&run.stderr));
        for f in files {
            let path = dir.path().join(study).join(f);
            assert!(path.exists(), "{study} writes {f}");
        }
    }
    // Figure 4's table has one row per batch size of the smoke sweep.
    let csv = fs::read_to_string(dir.path().join("sweep/sweep.csv")).unwrap();
    assert_eq!(
        csv.lines().skip(1).map(|l| l.split(',').nth(1).unwrap().to_string()).collect::<Vec<_>>(),
        ["16", "64", "160"]
    );
    let refused = run(&["sweep", "--scale", "paper", "--out", out]);
    assert!(
        !refused.status.success() && text(&refused.stderr).contains("accepted: smoke, default"),
        "{}",
        text(&refused.stderr)
    );
}

#[test]
fn same_seed_same_records_other_seed_other_records() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    let args = ["--nets", "F1", "--seeds", "1", "--jobs", "2"];
    assert!(smoke(a.path(), &args).status.success());
    assert!(smoke(b.path(), &["--nets", "F1", "--seeds", "1", "--jobs", "1"]).status.success());
    assert!(smoke(c.path(), &[&args[..], &["--seed", "9"]].concat()).status.success());
    let (ra, rb, rc) = (records(a.path()), records(b.path()), records(c.path()));
    assert_eq!(ra.len(), 2);
    for (x, y) in ra.iter().zip(&rb) {
        assert_eq!(x.file_name(), y.file_name());
        let (mut vx, mut vy) = (without_timings(x), without_timings(y));
        // --jobs and the command line are part of the environment, not of the result.
        for v in [&mut vx, &mut vy] {
            v["env"]["jobs"] = 0.into();
            v["env"]["command"] = serde_json::Value::Null;
        }
        assert_eq!(vx, vy, "{} differs between runs", x.display());
    }
    let curves = |p: &Path| without_timings(p)["outcome"]["curves"].clone();
    assert_ne!(curves(&ra[0]), curves(&rc[0]), "another master seed gives another run");
}

#[test]
fn rerun_after_kill_completes_without_redoing_finished_cells() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = studies()
        .args(["keskar", "--scale", "smoke", "--seeds", "2", "--epochs", "10", "--jobs", "1", "--out"])
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for a few finished cells, then kill -9 in the middle of the grid.
    let start = Instant::now();
    while records(dir.path()).len() < 3 && start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before: Vec<(PathBuf, Vec<u8>)> =
        records(dir.path()).into_iter().map(|p| (p.clone(), fs::read(&p).unwrap())).collect();
    assert!(before.len() >= 3 && before.len() < 8, "killed mid-grid with {} records", before.len());
    // No half-written record is left behind as a record.
    for (p, bytes) in &before {
        assert!(serde_json::from_slice::<serde_json::Value>(bytes).is_ok(), "{} is complete JSON", p.display());
    }

    let out = smoke(dir.path(), &["--seeds", "2", "--epochs", "10"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!("{} of 8 cells already have records", before.len())),
        "{}",
        text(&out.stderr)
    );
    assert!(!text(&out.stderr).contains("unreadable"), "a kill leaves no half-written record");
    assert_eq!(records(dir.path()).len(), 8);
    for (p, bytes) in before {
        assert_eq!(fs::read(&p).unwrap(), bytes, "{} was not redone", p.display());
    }
}

fn assert_refused(args: &[&str], needles: &[&str]) {
    let out = run(args);
    assert_eq!(out.status.code(), Some(2), "{args:?} is a usage error: {}", text(&out.stderr));
    let err = text(&out.stderr);
    for n in needles {
        assert!(err.contains(n), "{args:?}: error should mention {n:?}, got: {err}");
    }
}

#[test]
fn bad_values_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let o = out.to_str().unwrap();
    assert_refused(&["keskar", "--scale", "huge", "--out", o], &["huge", "smoke", "default", "paper"]);
    assert_refused(&["keskar", "--scale", "smoke", "--nets", "F1,X9", "--out", o], &["X9", "F1", "C1"]);
    assert_refused(&["keskar", "--scale", "smoke", "--backend", "tpu", "--out", o], &["tpu", "flex", "ndarray"]);
    assert_refused(&["keskar", "--scale", "smoke", "--seeds", "0", "--out", o], &["--seeds 0"]);
    assert_refused(&["keskar", "--scale", "smoke", "--jobs", "0", "--out", o], &["--jobs 0"]);
    assert_refused(&["keskar", "--scale", "smoke", "--epochs", "0", "--out", o], &["--epochs 0"]);
    assert_refused(&["keskar", "--scale", "smoke", "--sb", "0", "--out", o], &["--sb 0", "1 or more"]);
    // The smoke data has 640 training samples.
    assert_refused(
        &["keskar", "--scale", "smoke", "--lb", "641", "--out", o],
        &["--lb 641", "640 samples", "1 to 640"],
    );
    assert!(!out.exists(), "nothing written for refused arguments");

    // An out dir that is a file cannot be created.
    let file = dir.path().join("file");
    fs::write(&file, "keep me").unwrap();
    assert_refused(&["keskar", "--scale", "smoke", "--out", file.to_str().unwrap()], &[file.to_str().unwrap()]);
    assert_eq!(fs::read_to_string(&file).unwrap(), "keep me");
}

#[test]
fn paper_scale_names_the_missing_datasets() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = dir.path().join("out");
    assert_refused(
        &[
            "keskar",
            "--scale",
            "paper",
            "--nets",
            "F1,C3",
            "--data-dir",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[
            "dataset mnist",
            "dataset cifar-100",
            data.join("mnist").to_str().unwrap(),
            &format!("studies data fetch mnist --data-dir {}", data.display()),
            &format!("studies data fetch cifar-100 --data-dir {}", data.display()),
        ],
    );
    assert!(!out.exists(), "nothing written before the data is found");
}

#[test]
fn existing_results_survive_a_refused_run() {
    let dir = tempfile::tempdir().unwrap();
    assert!(smoke(dir.path(), &["--nets", "F1", "--seeds", "1"]).status.success());
    let table = fs::read(dir.path().join("keskar/table2.csv")).unwrap();
    assert_refused(&["keskar", "--scale", "smoke", "--nets", "nope", "--out", dir.path().to_str().unwrap()], &["nope"]);
    assert_eq!(fs::read(dir.path().join("keskar/table2.csv")).unwrap(), table);
}

#[test]
fn mnist1d_fidelity_reports_and_flags_a_miss() {
    // Two epochs are far too few to reach the reference accuracies: the table is still written,
    // and the command fails saying the generator check missed.
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["mnist1d", "--seeds", "1", "--epochs", "2", "--out", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "a failed scientific check exits with 1");
    assert!(text(&out.stderr).contains("more than 3 points from its reference"), "{}", text(&out.stderr));
    let csv = fs::read_to_string(dir.path().join("mnist1d/table.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows[0],
        "model,parameters,runs,diverged,test_acc_mean,test_acc_std,published_test_acc,reference_test_acc,difference,within_tolerance"
    );
    // Parameter counts: 40·10+10; 40·100+100 + 100·100+100 + 100·10+10; 1·25·5+25 + 2·(25·25·3+25) + 125·10+10.
    assert!(rows[1].starts_with("logistic regression,410,1,0,"), "{}", rows[1]);
    assert!(rows[2].starts_with("MLP,15210,1,0,"), "{}", rows[2]);
    assert!(rows[3].starts_with("CNN,5210,1,0,"), "{}", rows[3]);
}

/// A loopback HTTP server for at most `max` requests: `/good/<file>` serves `dir/<file>`,
/// `/bad/<file>` serves its first half (a corrupted copy), anything else 404.
fn serve(dir: PathBuf, max: usize) -> String {
    use std::io::{BufRead, BufReader, Write};
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
            let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
            let body = match path.split_once('/').map(|(_, rest)| rest.split_once('/')) {
                Some(Some(("good", name))) => fs::read(dir.join(name)).ok(),
                Some(Some(("bad", name))) => fs::read(dir.join(name)).ok().map(|b| b[..b.len() / 2].to_vec()),
                _ => None,
            };
            let _ = match body {
                Some(b) => stream
                    .write_all(
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", b.len())
                            .as_bytes(),
                    )
                    .and_then(|_| stream.write_all(&b)),
                None => stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
            };
        }
    });
    format!("http://{addr}")
}

/// A real dataset of ../shared/data. Tests that need one are `#[ignore]`d (a user's checkout has
/// no ../shared), and run on purpose with `-- --ignored` as CI does: then a missing folder fails.
fn shared_data(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data").join(name);
    assert!(dir.is_dir(), "{} is missing: the real-data tests need ../shared/data beside the checkout", dir.display());
    dir
}

#[test]
#[ignore = "needs ../shared/data beside the checkout; run: cargo test --release --workspace -- --ignored"]
fn fetch_tries_mirrors_in_order_and_keeps_only_verified_files() {
    let mnist = shared_data("mnist");
    let base = serve(mnist, 16);
    let data = tempfile::tempdir().unwrap();
    let d = data.path().to_str().unwrap();
    // The first mirror serves truncated copies: each is refused, the second mirror's is kept.
    let out = studies()
        .args(["data", "fetch", "mnist", "--data-dir", d])
        .env("FLATLAND_MIRRORS", format!("{base}/bad/,{base}/good/"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("/bad/train-images-idx3-ubyte.gz: ")
            && text(&out.stderr).contains("corrupt gzip stream"),
        "the truncated copy is refused: {}",
        text(&out.stderr)
    );
    let mut names: Vec<String> = fs::read_dir(data.path().join("mnist"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz"
        ],
        "no partial files left"
    );

    let out = run(&["data", "list", "--data-dir", d]);
    assert!(
        text(&out.stdout).lines().any(|l| l.starts_with("mnist") && l.contains("present, verified")),
        "{}",
        text(&out.stdout)
    );
    assert!(run(&["data", "verify", "mnist", "--data-dir", d]).status.success());

    // A corrupted file is reported with the expected and the actual hash.
    let labels = data.path().join("mnist/t10k-labels-idx1-ubyte.gz");
    fs::write(&labels, b"not gzip at all").unwrap();
    let out = run(&["data", "verify", "mnist", "--data-dir", d]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("expected ff7bcfd4"), "{}", text(&out.stderr));
    // Nothing reachable: every mirror's failure is named, and nothing is written.
    let out = studies()
        .args(["data", "fetch", "optdigits", "--data-dir", d])
        .env("FLATLAND_MIRRORS", format!("{base}/nowhere/"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("could not fetch optdigits.tra from any mirror"), "{}", text(&out.stderr));
    assert_eq!(fs::read_dir(data.path().join("optdigits")).unwrap().count(), 0);
}

#[test]
fn data_commands_name_unknown_datasets() {
    assert_refused(&["data", "fetch", "imagenet"], &["imagenet", "mnist", "optdigits"]);
}

#[test]
fn convex_and_momentum_studies_confirm_the_theory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    // Each study exits with an error if its assertion fails; the tables say yes on every row.
    for (study, table, rows) in [("convex", "convex/convex.md", 3), ("momentum", "momentum/momentum.md", 8)] {
        let run = run(&[study, "--out", out]);
        assert!(run.status.success(), "{study}: {}", text(&run.stderr));
        let md = fs::read_to_string(dir.path().join(table)).unwrap();
        let data_rows: Vec<&str> = md
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| κ") && !l.starts_with("| problem"))
            .collect();
        assert_eq!(data_rows.len(), rows, "{md}");
        assert!(data_rows.iter().all(|l| l.contains("yes") && !l.contains("NO")), "{md}");
    }
    let csv = fs::read_to_string(dir.path().join("momentum/momentum.csv")).unwrap();
    for row in csv.lines().skip(1) {
        let f: Vec<f64> = row.split(',').skip(3).map(|v| v.parse().unwrap()).collect();
        assert!((f[0] - f[1]).abs() < 0.01 * f[1], "measured rate within 1 % of theory: {row}");
    }
}

#[test]
fn surfaces_study_tunes_every_rule_on_every_surface() {
    let dir = tempfile::tempdir().unwrap();
    let run = run(&["surfaces", "--iterations", "300", "--out", dir.path().to_str().unwrap()]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let csv = fs::read_to_string(dir.path().join("surfaces/surfaces.csv")).unwrap();
    // Five surfaces × seven rules, each with its tuned step size from the grid 1e-5 … 10.
    assert_eq!(csv.lines().count(), 1 + 35, "{csv}");
    for row in csv.lines().skip(1) {
        let lr: f64 = row.split(',').nth(2).unwrap().parse().unwrap();
        assert!((1e-5 * 0.99..=10.0 * 1.01).contains(&lr), "{row}");
    }
    // Every rule escapes the saddle (started 1e-3 off its stable manifold) within 300 steps.
    assert!(csv.lines().filter(|l| l.starts_with("Saddle")).all(|l| !l.split(',').nth(3).unwrap().is_empty()), "{csv}");
    for f in ["trajectories.png", "losses.png", "surfaces.md"] {
        assert!(dir.path().join("surfaces").join(f).exists(), "{f}");
    }
}

#[test]
fn saddle_study_shows_noise_escaping_where_gd_is_stuck() {
    let dir = tempfile::tempdir().unwrap();
    let run = run(&["saddle", "--net-steps", "400", "--net-seeds", "1", "--out", dir.path().to_str().unwrap()]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    // The network counterpart: from the saddle start, SGD at batch 32 leaves the plateau before
    // full-batch GD, which leaves only through rounding (a start gradient under 1e-5).
    let net = fs::read_to_string(dir.path().join("saddle-network/saddle-network.csv")).unwrap();
    let row = |batch: &str| {
        net.lines()
            .find(|l| l.starts_with(&format!("{batch},")))
            .unwrap_or_else(|| panic!("batch {batch} in {net}"))
            .split(',')
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let (gd, sgd) = (row("4000"), row("32"));
    assert!(gd[2].parse::<f64>().unwrap() < 1e-5 && sgd[2].parse::<f64>().unwrap() > 1e-2, "{net}");
    let escape = |r: &[String]| r[3].parse::<usize>().unwrap_or(usize::MAX);
    assert!(escape(&sgd) < escape(&gd), "{net}");
    let csv = fs::read_to_string(dir.path().join("saddle/saddle.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    // GD from the manifold (y₀ = 0, σ = 0): never escapes.
    assert_eq!(rows[0][..5], ["0.0", "0.0", "150", "1", "0"]);
    // Noisy GD at σ = 0.01 with 1000 runs: all escape.
    let noisy = rows.iter().find(|r| r[1] == "0.01").expect("σ = 1e-2 row");
    assert_eq!(noisy[3..5], ["1000", "1000"]);
}

#[test]
fn deep_linear_study_reaches_the_closed_form_optimum_from_the_standard_init() {
    let dir = tempfile::tempdir().unwrap();
    let run = run(&["deep-linear", "--inits", "3", "--steps", "4000", "--out", dir.path().to_str().unwrap()]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let csv = fs::read_to_string(dir.path().join("deep-linear/deep-linear.csv")).unwrap();
    // Four depths × two initial scales × three initializations.
    assert_eq!(csv.lines().count(), 1 + 24, "{csv}");
    // Kawaguchi: from the standard initialization every run ends at L* (relative gap ≤ 1e-4),
    // never below it (L* is the global optimum: a loss under it would be a wrong closed form).
    for row in csv.lines().skip(1) {
        let f: Vec<&str> = row.split(',').collect();
        let gap: f64 = f[5].parse().unwrap();
        assert!(gap > -1e-12, "a loss below the closed-form optimum: {row}");
        if f[1] == "1.0" {
            assert!(gap <= 1e-4 && !f[6].is_empty(), "{row}");
        }
    }
    let md = fs::read_to_string(dir.path().join("deep-linear/deep-linear.md")).unwrap();
    assert!(md.contains("every run from the standard initialization reached the global optimum"), "{md}");
    assert!(dir.path().join("deep-linear/deep-linear.png").exists());
    assert_refused(&["deep-linear", "--inits", "0", "--out", dir.path().to_str().unwrap()], &["--inits 0"]);
}

#[test]
fn keskar_under_the_keras_protocol_records_it_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let keras = smoke(out, &["--nets", "F1", "--seeds", "1", "--protocol", "keras"]);
    assert!(keras.status.success(), "{}", text(&keras.stderr));
    let files = records(out);
    assert_eq!(files.len(), 2, "SB and LB");
    for f in &files {
        let v: serde_json::Value = serde_json::from_slice(&fs::read(f).unwrap()).unwrap();
        let train = &v["config"]["train"];
        assert_eq!((&train["init"], &train["evaluation"]), (&"glorot".into(), &"batch".into()), "{f:?}");
        assert_eq!(train["eval_batch"], 5000, "{f:?}");
        // Keras 1's batch norm (ε 1e-3, momentum 0.99 = 0.01 in PyTorch's convention).
        assert_eq!(v["config"]["spec"]["norm"], serde_json::json!({"epsilon": 0.001, "momentum": 0.01}), "{f:?}");
    }
    let md = fs::read_to_string(out.join("keskar/table2.md")).unwrap();
    assert!(md.contains("protocol `keras`") && md.contains("by its own statistics"), "{md}");
    // The same cells under torch are other records (the protocol is part of a record's
    // identity), and the tables follow the last run.
    let torch = smoke(out, &["--nets", "F1", "--seeds", "1"]);
    assert!(torch.status.success(), "{}", text(&torch.stderr));
    assert_eq!(records(out).len(), 4, "two protocols, two records each");
    let md = fs::read_to_string(out.join("keskar/table2.md")).unwrap();
    assert!(md.contains("protocol `torch`") && md.contains("inference mode"), "{md}");
    assert_refused(
        &["keskar", "--scale", "smoke", "--protocol", "pytorch", "--out", out.to_str().unwrap()],
        &["pytorch", "torch", "keras"],
    );
}

#[test]
fn protocol_gap_study_tabulates_every_variant_and_shares_unchanged_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let first = run(&["protocol-gap", "--scale", "smoke", "--seeds", "2", "--out", out]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let priced = "protocol-gap: 48 runs to run, predicted at most";
    assert!(text(&first.stderr).contains(priced), "{}", text(&first.stderr));
    let csv = fs::read_to_string(dir.path().join("protocol-gap/protocol-gap.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("{name}: {header:?}"));
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    // Two subjects (F1, C1), nine variants each.
    assert_eq!(rows.len(), 18, "{csv}");
    let row =
        |net: &str, variant: &str| rows.iter().find(|r| r[col("net")] == net && r[col("variant")] == variant).unwrap();
    let value = |r: &Vec<&str>, name: &str| -> f64 { r[col(name)].parse().unwrap() };
    for net in ["F1", "C1"] {
        let paper = row(net, "paper");
        // LB-only changes keep the paper's SB runs: the same SB accuracy.
        for v in ["lr-linear", "lr-sqrt", "ghost-bn"] {
            assert_eq!(value(row(net, v), "sb_test_acc"), value(paper, "sb_test_acc"), "{net} {v}");
        }
        // Equal updates: LB makes as many steps as SB (smoke: 640 samples, SB 16, LB 160, 2 epochs).
        // The running-statistics variant is the paper's runs evaluated otherwise: same epochs.
        let running = row(net, "running-statistics");
        assert_eq!(
            (value(running, "sb_epochs"), value(running, "lb_epochs")),
            (value(paper, "sb_epochs"), value(paper, "lb_epochs"))
        );
        let equal = row(net, "equal-updates");
        assert_eq!((value(equal, "sb_updates"), value(equal, "lb_updates")), (80.0, 80.0), "{net}");
        assert_eq!(value(row(net, "fixed-short"), "lb_epochs"), 2.0);
        let gap = value(paper, "gap");
        assert!(value(paper, "gap_low") <= gap && gap <= value(paper, "gap_high"), "{net}: {paper:?}");
    }
    // Runs that several variants share are trained once: per subject and seed, the paper's SB
    // and LB (also the running-statistics variant's), three variants with their own SB and LB,
    // four with their own LB only.
    assert_eq!(study_records(dir.path(), "protocol-gap").len(), 2 * 2 * (2 + 3 * 2 + 4));
    assert!(dir.path().join("protocol-gap/protocol-gap.png").exists());
    // A subset of variants runs the paper's protocol too, and reuses its records.
    let again = run(&["protocol-gap", "--scale", "smoke", "--seeds", "2", "--variants", "ghost-bn", "--out", out]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(study_records(dir.path(), "protocol-gap").len(), 2 * 2 * (2 + 3 * 2 + 4), "no run trained twice");
    assert!(!text(&again.stderr).contains("predicted"), "nothing to run, nothing priced: {}", text(&again.stderr));
    let md = fs::read_to_string(dir.path().join("protocol-gap/protocol-gap.md")).unwrap();
    assert!(md.contains("| paper |") && md.contains("| ghost-bn |") && !md.contains("| lr-sqrt |"), "{md}");
    // The prediction prices only the runs without a record.
    let ghost =
        study_records(dir.path(), "protocol-gap").into_iter().find(|p| file_name(p).contains("ghost-bn")).unwrap();
    fs::remove_file(&ghost).unwrap();
    let resumed = run(&["protocol-gap", "--scale", "smoke", "--seeds", "2", "--variants", "ghost-bn", "--out", out]);
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    let priced = "protocol-gap: 1 run to run, predicted at most";
    assert!(text(&resumed.stderr).contains(priced), "{}", text(&resumed.stderr));
    assert!(ghost.exists());
    assert_refused(&["protocol-gap", "--variants", "warmup", "--out", out], &["warmup", "ghost-bn"]);
    assert_refused(&["protocol-gap", "--seeds", "1", "--out", out], &["--seeds 1"]);
}

#[test]
fn spin_glass_study_reports_the_spread_per_width() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let first = run(&["spin-glass", "--scale", "smoke", "--data", "mnist1d", "--out", out]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let csv = fs::read_to_string(dir.path().join("spin-glass/spin-glass.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("{name}: {header:?}"));
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    // The paper's five widths, three smoke runs each; a one-hidden-layer net on 40 inputs has
    // 40·n₁ + n₁ + 10·n₁ + 10 parameters.
    let widths: Vec<&str> = rows.iter().map(|r| r[col("width")]).collect();
    assert_eq!(widths, ["25", "50", "100", "250", "500"]);
    for r in &rows {
        let n: usize = r[col("width")].parse().unwrap();
        assert_eq!(r[col("parameters")], (51 * n + 10).to_string());
        assert_eq!(r[col("runs")], "3");
        let std: f64 = r[col("test_loss_std")].parse().unwrap();
        let (low, high): (f64, f64) =
            (r[col("test_loss_std_low")].parse().unwrap(), r[col("test_loss_std_high")].parse().unwrap());
        assert!(std > 0.0 && low <= high, "{r:?}");
    }
    let runs = fs::read_to_string(dir.path().join("spin-glass/spin-glass-runs.csv")).unwrap();
    assert_eq!(runs.lines().count(), 1 + 15, "{runs}");
    let md = fs::read_to_string(dir.path().join("spin-glass/spin-glass.md")).unwrap();
    assert!(md.contains("**Verdict.**"), "{md}");
    assert!(dir.path().join("spin-glass/spin-glass.png").exists());
    // The same seed gives the same records on one job as on two.
    let again = tempfile::tempdir().unwrap();
    let one = run(&[
        "spin-glass",
        "--scale",
        "smoke",
        "--data",
        "mnist1d",
        "--jobs",
        "1",
        "--out",
        again.path().to_str().unwrap(),
    ]);
    assert!(one.status.success(), "{}", text(&one.stderr));
    assert_eq!(runs, fs::read_to_string(again.path().join("spin-glass/spin-glass-runs.csv")).unwrap());
    assert_refused(&["spin-glass", "--runs", "1", "--out", out], &["--runs 1"]);
}

#[test]
#[ignore = "needs ../shared/data beside the checkout; run: cargo test --release --workspace -- --ignored"]
fn keskar_on_the_cifar10_subset_states_its_sizes_in_every_table() {
    let data = shared_data("cifar-10-subset");
    let data_dir = data.parent().unwrap().to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // F1 (the flattened image): a C net's curvature in f64 on 3 × 32 × 32 images takes minutes.
    let args = ["--nets", "F1", "--seeds", "1", "--epochs", "1", "--lb", "400", "--data", "cifar-10-subset"];
    let out = smoke(dir.path(), &[&args[..], &["--data-dir", data_dir]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let study = dir.path().join("keskar");
    let sizes = "cifar-10-subset (4000 train / 1000 test)";
    let table2 = fs::read_to_string(study.join("table2.md")).unwrap();
    assert!(
        table2.contains(&format!("| {sizes} | SB | 16 |")) && table2.contains(&format!("| {sizes} | LB | 400 |")),
        "{table2}"
    );
    for table in ["table3.md", "table4.md", "curvature.md"] {
        let md = fs::read_to_string(study.join(table)).unwrap();
        assert!(md.contains(&format!("Data: F1 on {sizes}.")), "{table}: {md}");
    }
    // The record carries the SHA-256 of both files PROVENANCE.md gives.
    let record = fs::read_to_string(&records(dir.path())[0]).unwrap();
    assert!(record.contains("0993cf8b8e43bc207603aef9787006995746513f5e3fa5a52e06d1b069926330"), "{record}");
    assert!(record.contains("8314c96d7cd65618193bab23acdd5d4c4af15bf6dd00a1781d55beedf3be1ef5"), "{record}");
}

#[test]
#[ignore = "needs ../shared/data beside the checkout; run: cargo test --release --workspace -- --ignored"]
fn spin_glass_study_finds_mnist_and_trains_on_ten_by_ten_images() {
    let data = shared_data("mnist");
    let data_dir = data.parent().unwrap().to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    // `--data auto` (the default) takes MNIST when the data folder has it.
    let found = run(&["spin-glass", "--scale", "smoke", "--runs", "2", "--data-dir", data_dir, "--out", out]);
    assert!(found.status.success(), "{}", text(&found.stderr));
    let csv = fs::read_to_string(dir.path().join("spin-glass/spin-glass.csv")).unwrap();
    // 100 inputs (10 × 10): 100·n₁ + n₁ + 10·n₁ + 10 parameters; n₁ = 25 first.
    assert_eq!(csv.lines().nth(1).unwrap().split(',').nth(1), Some((111 * 25 + 10).to_string().as_str()));
    let md = fs::read_to_string(dir.path().join("spin-glass/spin-glass.md")).unwrap();
    assert!(md.contains("mnist area-averaged to 10 × 10"), "{md}");
    // Without MNIST, the default falls back to generated MNIST-1D and says so.
    let empty = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let run = run(&[
        "spin-glass",
        "--scale",
        "smoke",
        "--runs",
        "2",
        "--data-dir",
        empty.path().to_str().unwrap(),
        "--out",
        other.path().to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert!(text(&run.stderr).contains("runs on generated MNIST-1D"), "{}", text(&run.stderr));
    // Asked for by name, a missing MNIST is a usage error naming the fetch command.
    assert_refused(
        &["spin-glass", "--data", "mnist", "--data-dir", empty.path().to_str().unwrap(), "--out", out],
        &["studies data fetch mnist"],
    );
}

#[test]
fn rescaling_study_keeps_the_function_and_the_adaptive_sharpness() {
    let dir = tempfile::tempdir().unwrap();
    let run = run(&["rescaling", "--scale", "smoke", "--out", dir.path().to_str().unwrap()]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let csv = fs::read_to_string(dir.path().join("rescaling/rescaling.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    // SB and LB, five α each.
    assert_eq!(rows.len(), 10, "{csv}");
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("{name}: {header:?}"));
    for regime in ["SB", "LB"] {
        let of: Vec<&Vec<&str>> = rows.iter().filter(|r| r[col("regime")] == regime).collect();
        let value = |r: &Vec<&str>, name: &str| -> f64 { r[col(name)].parse().unwrap() };
        for r in &of {
            // The same function: logits within float tolerance, the same test accuracy.
            assert!(value(r, "logit_change") <= 1e-4, "{r:?}");
            assert_eq!(value(r, "test_acc"), value(of[0], "test_acc"), "{r:?}");
            // Adaptive sharpness does not see the rescaling.
            let (a, a0) = (value(r, "adaptive_sharpness"), value(of[0], "adaptive_sharpness"));
            assert!((a - a0).abs() <= 0.01 * a0, "{regime}: adaptive {a} vs {a0}");
        }
        // Keskar's sharpness at α = 100 is far above its value at α = 1.
        let last = of.last().unwrap();
        assert!(value(last, "sharpness") >= 10.0 * value(of[0], "sharpness"), "{regime}: {csv}");
    }
    assert!(dir.path().join("rescaling/rescaling.png").exists());
    assert_refused(&["rescaling", "--nets", "C1", "--out", dir.path().to_str().unwrap()], &["--nets C1"]);
}

#[test]
fn optimizers_study_tunes_then_runs_every_rule() {
    let dir = tempfile::tempdir().unwrap();
    let run = run(&["optimizers", "--scale", "smoke", "--seeds", "2", "--out", dir.path().to_str().unwrap()]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let csv = fs::read_to_string(dir.path().join("optimizers/optimizers.csv")).unwrap();
    let rules: Vec<&str> = csv.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(rules, ["GD", "noisy GD", "momentum", "Nesterov", "AdaGrad", "RMSProp", "Adam"]);
    // 7 rules × 9 step sizes (seed 0), then 7 rules × seed 1 (seed 0 at the chosen step is reused).
    let records = fs::read_dir(dir.path().join("optimizers/records")).unwrap().count();
    assert_eq!(records, 63 + 7);
    assert!(dir.path().join("optimizers/optimizers.png").exists());
}

#[test]
fn optimizers_on_mnist_names_a_missing_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("no-data");
    let run = run(&[
        "optimizers",
        "--data",
        "mnist",
        "--data-dir",
        empty.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!run.status.success());
    let err = text(&run.stderr);
    assert!(err.contains("mnist") && err.contains("data fetch mnist"), "{err}");
    assert!(!dir.path().join("optimizers/records").exists(), "nothing ran");
}

#[test]
fn bench_writes_its_table_and_checks_torch_first() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    // A Python that cannot import torch is named at once, before any measuring.
    let run_bad = run(&["bench", "--compare-torch", "--python", "/nonexistent/python", "--out", out]);
    assert!(!run_bad.status.success());
    assert!(text(&run_bad.stderr).contains("/nonexistent/python"), "{}", text(&run_bad.stderr));
    // A stand-in for the PyTorch reference that speaks its protocol (a version line, then one
    // rate per request line), so the side-by-side path runs here without torch.
    let fake = dir.path().join("fake-python");
    let script = "#!/bin/sh\n[ \"$1\" = -c ] && exit 0\necho '{\"what\": \"version\", \"torch\": \"0.0-fake\"}'\nwhile read -r line; do echo '{\"rate\": 1000.0}'; done\n";
    // Written by a child process: an executable this process held open for writing could be
    // inherited by a test running beside it and fail to start ("text file busy").
    let made = Command::new("sh")
        .args(["-c", "printf '%s' \"$1\" > \"$2\" && chmod +x \"$2\"", "sh", script, fake.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(made.success());
    // The stand-in also serves as the "jemalloc" library: the loader ignores a preload that
    // is no library, so the tuned reference runs as the plain one does.
    let fake_path = fake.to_str().unwrap();
    let run = run(&[
        "bench",
        "--reps",
        "2",
        "--steps",
        "1",
        "--threads",
        "1",
        "--c1-batches",
        "4",
        "--compare-torch",
        "--python",
        fake_path,
        "--torch-jemalloc",
        fake_path,
        "--out",
        out,
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let md = fs::read_to_string(dir.path().join("bench/bench.md")).unwrap();
    assert!(md.contains("PyTorch 0.0-fake") && md.contains("Repetitions alternate"), "{md}");
    let csv = fs::read_to_string(dir.path().join("bench/bench.csv")).unwrap();
    // Each compared figure carries the reference's rates and the ratio of the medians.
    let f1 = csv.lines().find(|l| l.starts_with("f1-train,256,")).unwrap();
    let cols: Vec<&str> = f1.split(',').collect();
    let (ours, theirs, ratio): (f64, f64, f64) =
        (cols[4].parse().unwrap(), cols[7].parse().unwrap(), cols[10].parse().unwrap());
    assert_eq!(theirs, 1000.0, "{f1}");
    assert!((ratio - ours / theirs).abs() < 1e-3 * ratio, "{f1}");
    assert!(
        csv.lines().any(|l| l.starts_with("f1-grid,256,") && !l.split(',').nth(7).unwrap().is_empty()),
        "the grid on all cores is compared: {csv}"
    );
    // The allocator-tuned reference is C1's alone.
    for line in csv.lines().skip(1) {
        assert_eq!(!line.split(',').nth(11).unwrap().is_empty(), line.starts_with("c1-train"), "{line}");
    }
    let whats: Vec<&str> = csv.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    for what in
        ["matmul-4096", "f1-train", "c1-train", "f1-full-gradient", "f1-grid", "mnist1d-generate", "batch-assembly"]
    {
        assert!(whats.contains(&what), "{what} missing from {csv}");
    }
    // Every figure is a positive rate.
    for line in csv.lines().skip(1) {
        let median: f64 = line.split(',').nth(4).unwrap().parse().unwrap();
        assert!(median > 0.0, "{line}");
    }
    assert!(dir.path().join("bench/bench.md").exists());
}

/// Config and outcome of a record, without timings: what must not depend on `--jobs`.
fn result_of(path: &Path) -> serde_json::Value {
    let v = without_timings(path);
    serde_json::json!({ "config": v["config"], "outcome": v["outcome"] })
}

#[test]
fn every_family_gives_the_same_records_on_any_jobs() {
    // F1 (MLP), C1 (conv + pool + dropout) and C2 (the VGG family), twice at --jobs 2 and once
    // at --jobs 1: the fused kernels' reductions must not depend on scheduling or pool size.
    let runs: Vec<_> = ["2", "2", "1"]
        .iter()
        .map(|jobs| {
            let dir = tempfile::tempdir().unwrap();
            let out = smoke(dir.path(), &["--nets", "F1,C1,C2", "--seeds", "1", "--jobs", jobs]);
            assert!(out.status.success(), "stderr: {}", text(&out.stderr));
            dir
        })
        .collect();
    let first = records(runs[0].path());
    assert_eq!(first.len(), 6, "three nets, SB and LB");
    for other in &runs[1..] {
        let theirs = records(other.path());
        assert_eq!(
            first.iter().map(|p| file_name(p)).collect::<Vec<_>>(),
            theirs.iter().map(|p| file_name(p)).collect::<Vec<_>>()
        );
        for (a, b) in first.iter().zip(&theirs) {
            assert_eq!(result_of(a), result_of(b), "{} differs between runs", file_name(a));
        }
    }
}

#[test]
fn report_rebuilds_the_tables_and_plots_byte_for_byte_from_records_alone() {
    let dir = tempfile::tempdir().unwrap();
    assert!(smoke(dir.path(), &["--nets", "F1", "--seeds", "2"]).status.success());
    let study = dir.path().join("keskar");
    let outputs = [
        "table2.md",
        "table2.csv",
        "table3.md",
        "table3.csv",
        "table4.md",
        "table4.csv",
        "curvature.md",
        "curvature.csv",
        "curves.png",
        "curves.svg",
        "figure3.png",
        "figure3.svg",
    ];
    let before: Vec<Vec<u8>> = outputs.iter().map(|f| fs::read(study.join(f)).unwrap()).collect();
    // Without the weights, the data or the grid flags: records only.
    fs::remove_dir_all(study.join("artifacts")).unwrap();
    for f in outputs {
        fs::remove_file(study.join(f)).unwrap();
    }
    let out = run(&["report", "keskar", "--out", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    for (f, bytes) in outputs.iter().zip(before) {
        assert!(fs::read(study.join(f)).unwrap() == bytes, "{f} differs when rebuilt from the records");
    }
    assert!(text(&out.stdout).contains("Welch t"));
    // A study that never ran has nothing to report: a usage error naming the command.
    assert_refused(&["report", "sweep", "--out", dir.path().to_str().unwrap()], &["studies sweep"]);
    assert_refused(&["report", "nope", "--out", dir.path().to_str().unwrap()], &["nope", "keskar", "toy"]);
}

fn toy(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["toy", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn records_of_other_code_are_refused_then_rerun_or_reused_on_request() {
    let dir = tempfile::tempdir().unwrap();
    assert!(toy(dir.path(), &[]).status.success());
    let path = study_records(dir.path(), "toy")[0].clone();
    let mut record: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let ours = record["env"]["build"]["source_hash"].as_str().unwrap().to_string();
    record["env"]["build"]["source_hash"] = "0123456789abcdef".into();
    let stale = serde_json::to_vec_pretty(&record).unwrap();
    fs::write(&path, &stale).unwrap();

    let out = toy(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    for needle in ["1 of 4 records", "made by other code", "0123456789abcdef", &ours, "--rerun", "--reuse-stale"] {
        assert!(err.contains(needle), "the refusal names {needle:?}: {err}");
    }
    assert_eq!(fs::read(&path).unwrap(), stale, "a refused run changes nothing");

    assert!(toy(dir.path(), &["--reuse-stale"]).status.success());
    assert_eq!(fs::read(&path).unwrap(), stale, "--reuse-stale keeps the record as it is");

    let out = toy(dir.path(), &["--rerun"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let again: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(again["env"]["build"]["source_hash"], ours.as_str(), "--rerun recomputes it with this code");

    // The same code on another backend computes other numbers: such a record is stale too.
    let mut other_backend = again.clone();
    other_backend["env"]["backend"] = "ndarray".into();
    fs::write(&path, serde_json::to_vec_pretty(&other_backend).unwrap()).unwrap();
    let out = toy(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("on ndarray") && err.contains("another backend"), "the refusal names the backend: {err}");

    // This code on this backend, on a machine whose kernels chose otherwise: used, with a warning.
    let mut other_machine = again.clone();
    other_machine["env"]["machine"]["kernels"] = serde_json::json!(["element-wise SIMD level (macerator): V4"]);
    let other_bytes = serde_json::to_vec_pretty(&other_machine).unwrap();
    fs::write(&path, &other_bytes).unwrap();
    let out = toy(dir.path(), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("1 of 4 records") && err.contains("kernels chose otherwise"), "the warning: {err}");
    assert_eq!(fs::read(&path).unwrap(), other_bytes, "the record is used as it is");
    assert!(toy(dir.path(), &["--rerun"]).status.success());
    let rerun: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(rerun["env"]["machine"]["kernels"], again["env"]["machine"]["kernels"], "--rerun recomputes it here");
}

#[test]
fn an_unreadable_record_is_kept_aside_named_and_recomputed() {
    let dir = tempfile::tempdir().unwrap();
    assert!(toy(dir.path(), &[]).status.success());
    let path = study_records(dir.path(), "toy")[1].clone();
    let good = fs::read(&path).unwrap();
    fs::write(&path, b"{ not a record").unwrap();
    let out = toy(dir.path(), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains(&file_name(&path)) && err.contains(".bad"), "{err}");
    let bad = PathBuf::from(format!("{}.bad", path.display()));
    assert_eq!(fs::read(&bad).unwrap(), b"{ not a record", "the unreadable file is kept, not overwritten");
    assert_eq!(without_timings_bytes(&fs::read(&path).unwrap()), without_timings_bytes(&good));

    // A run that stops on stale records (a usage error) moves nothing aside.
    fs::remove_file(&bad).unwrap();
    fs::write(&path, b"{ not a record").unwrap();
    // Every other record stale, so that each shard below holds one too.
    for other in study_records(dir.path(), "toy").into_iter().filter(|p| *p != path) {
        let mut stale: serde_json::Value = serde_json::from_slice(&fs::read(&other).unwrap()).unwrap();
        stale["env"]["build"]["source_hash"] = "0123456789abcdef".into();
        fs::write(&other, serde_json::to_vec_pretty(&stale).unwrap()).unwrap();
    }
    let out = toy(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(fs::read(&path).unwrap(), b"{ not a record", "the unreadable file stays where it was");
    assert!(!bad.exists(), "and nothing is set aside");
    // Nor does a shard write its manifest.
    for shard in ["0/2", "1/2"] {
        let out = toy(dir.path(), &["--shard", shard]);
        assert_eq!(out.status.code(), Some(2), "{shard}: {}", text(&out.stderr));
    }
    let shard_files: Vec<_> = fs::read_dir(dir.path().join("toy"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("shard"))
        .collect();
    assert!(shard_files.is_empty(), "{shard_files:?}");
    assert!(!bad.exists());
}

/// A record's bytes as JSON without its timings.
fn without_timings_bytes(bytes: &[u8]) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    let obj = v.as_object_mut().unwrap();
    obj.remove("wall_time_s");
    obj.remove("finished_unix_s");
    v
}

#[test]
fn a_diverged_run_is_recorded_counted_apart_and_not_recomputed() {
    // Adam's step is about the learning rate whatever the gradient: at 1e38 the weights
    // overflow f32 within a step or two, and the loss stops being finite.
    let dir = tempfile::tempdir().unwrap();
    let args = ["--nets", "F1", "--seeds", "1", "--learning-rate", "1e38"];
    let out = smoke(dir.path(), &args);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let files = records(dir.path());
    assert_eq!(files.len(), 2);
    for f in &files {
        let r: serde_json::Value = serde_json::from_slice(&fs::read(f).unwrap()).unwrap();
        let d = &r["outcome"]["diverged_at"];
        assert!(d["epoch"].as_u64().unwrap() >= 1 && d["what"].is_string(), "{}: {d}", file_name(f));
        assert!(r["outcome"].get("measures").is_none(), "a diverged run is not measured");
    }
    let csv = fs::read_to_string(dir.path().join("keskar/table2.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    // runs 1, diverged 1, and empty cells (not NaN, not a dash) for the accuracies.
    assert_eq!(rows, ["F1,mnist1d,SB,1,1,,,,,99.66,98.03", "F1,mnist1d,LB,1,1,,,,,99.92,97.81"]);
    let before: Vec<Vec<u8>> = files.iter().map(|f| fs::read(f).unwrap()).collect();
    let out = smoke(dir.path(), &args);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("2 of 2 cells already have records"), "{}", text(&out.stderr));
    for (f, b) in files.iter().zip(before) {
        assert_eq!(fs::read(f).unwrap(), b, "{} was read back, not recomputed", file_name(f));
    }
    assert_refused(&["keskar", "--scale", "smoke", "--learning-rate", "0"], &["--learning-rate 0"]);
}

#[test]
fn the_toy_study_of_readme_is_one_file_and_one_line() {
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let file = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/toy.rs")).unwrap();
    assert!(readme.contains(&file), "README shows studies/src/toy.rs exactly as it is");
    let main = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/main.rs")).unwrap();
    assert!(main.contains("    Toy: toy,\n") && readme.contains("    Toy: toy,\n"), "the one registration line");
    let dir = tempfile::tempdir().unwrap();
    let out = toy(dir.path(), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("| 0.25 |"), "{}", text(&out.stdout));
    assert!(run(&["list"]).stdout.starts_with(b"keskar"));
    assert!(text(&run(&["list"]).stdout).contains("toy"));
}

#[test]
fn readme_quotes_the_committed_results_verbatim() {
    // Each `<!-- quote: results/… -->` … `<!-- end quote -->` block of README is the committed
    // file's text, less its `# ` title line.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    let mut quoted = Vec::new();
    let mut rest = readme.as_str();
    while let Some(start) = rest.find("<!-- quote: ") {
        let after = &rest[start + "<!-- quote: ".len()..];
        let (name, body) = after.split_once(" -->").expect("a quote marker ends with -->");
        let (block, tail) = body.split_once("<!-- end quote -->").unwrap_or_else(|| panic!("{name}: no end marker"));
        let file = fs::read_to_string(root.join(name)).unwrap_or_else(|e| panic!("README quotes {name}: {e}"));
        let text = match file.split_once('\n') {
            Some((first, rest)) if first.starts_with("# ") => rest,
            _ => &file,
        };
        assert_eq!(block.trim(), text.trim(), "README's quote of {name} differs from the file: copy the file in");
        quoted.push(name.to_string());
        rest = tail;
    }
    for must in ["results/keskar/table2.md", "results/keskar/table3.md", "results/keskar/curvature.md"] {
        assert!(quoted.iter().any(|q| q == must), "README quotes {must}: {quoted:?}");
    }
}

/// Copies `from` into `to`, recursively.
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn studies_report_rebuilds_every_committed_table_and_plot_byte_for_byte() {
    // The committed records are fixed inputs; the committed tables and plots their exact
    // expected output. (Weights and data are not needed: reports read records only.)
    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results");
    for (study, out, folders) in [
        ("keskar", "", &["keskar"][..]),
        ("keskar", "keskar-paper-f1", &["keskar"][..]),
        ("keskar", "keskar-paper-f1-keras", &["keskar"][..]),
        ("keskar", "keskar-paper-c1", &["keskar"][..]),
        ("sweep", "", &["sweep"][..]),
        ("warmstart", "", &["warmstart"][..]),
        ("trajectory", "", &["trajectory"][..]),
        ("landscape", "", &["landscape"][..]),
        ("convex", "", &["convex"][..]),
        ("momentum", "", &["momentum"][..]),
        ("surfaces", "", &["surfaces"][..]),
        ("saddle", "", &["saddle", "saddle-network"][..]),
        ("optimizers", "", &["optimizers"][..]),
        ("optimizers", "optimizers-mnist", &["optimizers"][..]),
        ("mnist1d", "", &["mnist1d"][..]),
        ("toy", "", &["toy"][..]),
        ("deep-linear", "", &["deep-linear"][..]),
        ("rescaling", "", &["rescaling"][..]),
        ("spin-glass", "", &["spin-glass"][..]),
        ("spin-glass", "spin-glass-mnist1d", &["spin-glass"][..]),
        ("protocol-gap", "", &["protocol-gap"][..]),
        ("protocol-gap", "protocol-gap-paper", &["protocol-gap"][..]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut expected = Vec::new();
        for folder in folders {
            let committed = results.join(out).join(folder);
            let copy = dir.path().join(folder);
            fs::create_dir_all(&copy).unwrap();
            for entry in fs::read_dir(&committed).unwrap() {
                let entry = entry.unwrap();
                let name = entry.file_name().to_string_lossy().into_owned();
                if name == "records" {
                    copy_dir(&entry.path(), &copy.join("records"));
                } else if name.ends_with(".grid.json") {
                    fs::copy(entry.path(), copy.join(&name)).unwrap();
                } else if entry.file_type().unwrap().is_file() {
                    expected.push((copy.join(&name), fs::read(entry.path()).unwrap()));
                }
            }
        }
        assert!(!expected.is_empty(), "{study}: nothing committed to compare");
        let run = run(&["report", study, "--out", dir.path().to_str().unwrap()]);
        assert!(run.status.success(), "{study}: {}", text(&run.stderr));
        for (path, bytes) in expected {
            let rebuilt = fs::read(&path).unwrap_or_else(|e| panic!("{study}: {} not rebuilt: {e}", path.display()));
            assert!(rebuilt == bytes, "{study}: {} differs from the committed file", path.display());
        }
    }
}

/// A version-1.0 `.npy` file of little-endian `descr` values, as NumPy writes it.
fn npy(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

/// A user's dataset of `n_train`/`n_test` samples of `shape` in 3 classes (class = a feature's sign pattern).
fn write_user_data(dir: &Path, shape: &[usize], n_train: usize, n_test: usize) {
    let len: usize = shape.iter().product();
    for (x, y, n, salt) in [("x_train.npy", "y_train.npy", n_train, 0u64), ("x_test.npy", "y_test.npy", n_test, 7)] {
        let labels: Vec<i64> = (0..n as u64).map(|i| ((i * 7 + salt) % 3) as i64).collect();
        let features: Vec<f32> = labels
            .iter()
            .enumerate()
            .flat_map(|(i, &l)| (0..len).map(move |j| l as f32 + ((i * 31 + j * 17) % 11) as f32 / 20.0))
            .collect();
        let mut full_shape = vec![n];
        full_shape.extend(shape);
        fs::write(
            dir.join(x),
            npy("<f4", &full_shape, &features.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>()),
        )
        .unwrap();
        fs::write(dir.join(y), npy("<i8", &[n], &labels.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>()))
            .unwrap();
    }
}

#[test]
fn a_study_trains_on_a_users_npy_folder_with_adapted_nets_and_records_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mine");
    fs::create_dir(&data).unwrap();
    write_user_data(&data, &[2, 6], 200, 30);
    let out = dir.path().join("out");
    let spec = format!("npy:{}", data.display());
    let result = run(&[
        "keskar",
        "--scale",
        "smoke",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--data",
        &spec,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(result.status.success(), "stderr: {}", text(&result.stderr));
    let files = study_records(&out, "keskar");
    assert!(!files.is_empty());
    for f in files.iter().filter(|f| !file_name(f).starts_with("figure3")) {
        let r: serde_json::Value = serde_json::from_str(&fs::read_to_string(f).unwrap()).unwrap();
        assert_eq!(r["config"]["data"]["name"], "npy", "{}", file_name(f));
        let spec = &r["config"]["spec"];
        // F1 takes the flattened 2 × 6 sample; C1 the one-channel 2 × 6 image; 3 classes.
        match spec["family"].as_str() {
            Some("mlp") => {
                assert_eq!((spec["input"].as_u64(), spec["classes"].as_u64()), (Some(12), Some(3)), "{spec}")
            }
            _ => assert_eq!(
                (&spec["input"], &spec["classes"]),
                (&serde_json::json!([1, 2, 6]), &serde_json::json!(3)),
                "{spec}"
            ),
        }
        let names: Vec<&str> =
            r["env"]["data_files"].as_array().unwrap().iter().map(|p| p[0].as_str().unwrap()).collect();
        assert_eq!(names, ["npy/x_test.npy", "npy/x_train.npy", "npy/y_test.npy", "npy/y_train.npy"]);
    }
    // The MNIST-1D baselines on the same data: trained, with no published figure to compare with.
    let result = run(&["mnist1d", "--seeds", "1", "--epochs", "1", "--data", &spec, "--out", out.to_str().unwrap()]);
    assert!(result.status.success(), "stderr: {}", text(&result.stderr));
    let table = fs::read_to_string(out.join("mnist1d/table.md")).unwrap();
    assert!(table.starts_with("# MNIST-1D baselines on npy (no published figures to compare with)"), "{table}");
    // Logistic regression: 12 inputs, 3 classes.
    assert!(table.contains("| logistic regression | 39 | 1 |"), "{table}");
}

#[test]
fn data_that_does_not_fit_a_network_or_is_unknown_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mine");
    fs::create_dir(&data).unwrap();
    // 2-point signals: a smoke C2 (two stacks of 2 × 2 pools) would shrink them to nothing.
    write_user_data(&data, &[2], 20, 10);
    let out = dir.path().join("out");
    let spec = format!("npy:{}", data.display());
    assert_refused(
        &["keskar", "--scale", "smoke", "--nets", "F1,C2", "--data", &spec, "--out", out.to_str().unwrap()],
        &["--data npy:", "network C2 on npy", "too small (at least 4)"],
    );
    assert_refused(
        &["sweep", "--scale", "smoke", "--data", "imagenet", "--out", out.to_str().unwrap()],
        &["--data imagenet: unknown dataset", "mnist1d-frozen", "fashion-mnist", "npy:DIR"],
    );
    let missing = dir.path().join("nothing");
    assert_refused(
        &[
            "optimizers",
            "--scale",
            "smoke",
            "--data",
            "fashion-mnist",
            "--data-dir",
            missing.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &["dataset fashion-mnist", "studies data fetch fashion-mnist"],
    );
    assert!(!out.exists(), "nothing written");
}

#[test]
#[ignore = "needs ../shared/data beside the checkout; run: cargo test --release --workspace -- --ignored"]
fn mnist1d_baselines_on_the_frozen_split_equal_those_on_the_generated_data() {
    let shared = shared_data("mnist1d");
    let dir = tempfile::tempdir().unwrap();
    let outcomes = |data: &str| -> Vec<serde_json::Value> {
        let out = dir.path().join(data);
        let args = ["mnist1d", "--seeds", "1", "--epochs", "2", "--data", data, "--out", out.to_str().unwrap()];
        let result = studies()
            .args(args)
            .args(["--data-dir", shared.parent().unwrap().to_str().unwrap()])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        // The check against the published figures fails after 2 epochs; the runs are what count.
        assert!(result.status.code() == Some(0) || result.status.code() == Some(1), "{}", text(&result.stderr));
        let mut files = study_records(&out, "mnist1d");
        files.sort();
        files.iter().map(|f| result_of(f)["outcome"].clone()).collect()
    };
    let generated = outcomes("mnist1d");
    assert_eq!(generated.len(), 3);
    assert_eq!(generated, outcomes("mnist1d-frozen"), "same data, same training, same numbers");
}

/// The environment of a running Slurm cluster (`tests/slurm/cluster.sh up` prints the
/// `SLURM_CONF` to export; CI starts one). These tests run on purpose only:
/// `cargo test --release -p studies --test cli -- --ignored slurm_`.
fn slurm_conf() -> String {
    std::env::var("SLURM_CONF")
        .expect("SLURM_CONF is unset: start a cluster with tests/slurm/cluster.sh up and export it")
}

/// Waits until none of `jobs` is queued or running (bounded: a stuck job fails the test).
fn wait_for_jobs(jobs: &[String], limit: Duration) {
    let start = Instant::now();
    loop {
        let out = Command::new("squeue")
            .args(["-h", "-o", "%i %T", "-j", &jobs.join(",")])
            .env("SLURM_CONF", slurm_conf())
            .output()
            .unwrap();
        let queued = text(&out.stdout);
        // squeue refuses ids it no longer knows: then nothing of them is left.
        if queued.trim().is_empty() || !out.status.success() {
            return;
        }
        assert!(start.elapsed() < limit, "jobs still queued after {limit:?}: {queued}");
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// The tables and plots a report writes, by name (the cost line of curvature.md, a wall time,
/// left out).
fn report_files(study: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = [
        "table2.md",
        "table2.csv",
        "table3.md",
        "table3.csv",
        "table4.md",
        "table4.csv",
        "curvature.csv",
        "diagnostics.md",
        "figure3.svg",
        "curves.svg",
    ]
    .iter()
    .map(|f| (f.to_string(), fs::read(study.join(f)).unwrap_or_else(|e| panic!("{}: {e}", study.join(f).display()))))
    .collect();
    let curvature = fs::read_to_string(study.join("curvature.md")).unwrap();
    files.push((
        "curvature.md".into(),
        curvature.lines().filter(|l| !l.starts_with("Cost:")).collect::<Vec<_>>().join("\n").into_bytes(),
    ));
    files
}

/// `studies slurm … --submit` in `out`; returns (array job, report job).
fn submit(out: &Path, grid: &[&str], array: usize) -> (String, String) {
    let o = out.to_str().unwrap();
    let n = array.to_string();
    let mut args = vec!["slurm", "keskar", "--scale", "smoke", "--out", o, "--array", &n, "--cpus", "1", "--submit"];
    args.extend_from_slice(grid);
    let run = studies().args(&args).env("SLURM_CONF", slurm_conf()).stdin(Stdio::null()).output().unwrap();
    assert!(run.status.success(), "{}", text(&run.stderr));
    let said = text(&run.stdout);
    let after = |what: &str| {
        said.split(what)
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or_else(|| panic!("{said}"))
            .to_string()
    };
    (after("array job "), after("report job "))
}

#[test]
#[ignore = "needs a Slurm cluster: tests/slurm/cluster.sh up, then SLURM_CONF exported (CI does both)"]
fn slurm_array_of_the_smoke_grid_merges_to_the_local_tables() {
    let grid = ["--seeds", "2"];
    let local = tempfile::tempdir().unwrap();
    let mut args = vec!["keskar", "--scale", "smoke", "--out", local.path().to_str().unwrap()];
    args.extend_from_slice(&grid);
    let run = run(&args);
    assert!(run.status.success(), "{}", text(&run.stderr));
    // The cluster's jobs write here: a folder every task can reach (the same machine).
    let out = tempfile::tempdir().unwrap();
    let (array, report) = submit(out.path(), &grid, 4);
    wait_for_jobs(&[array.clone(), report.clone()], Duration::from_secs(600));
    let study = out.path().join("keskar");
    let logs = study.join("slurm/logs");
    let report_log = fs::read_to_string(logs.join(format!("report_{report}.out"))).unwrap_or_default();
    assert!(study.join("table2.md").exists(), "the report job wrote no tables; its log: {report_log}");
    // Four shards, each with its manifest, and every cell's record exactly once.
    for i in 0..4 {
        let log = fs::read_to_string(logs.join(format!("{array}_{i}.out"))).unwrap();
        assert!(log.contains(&format!("shard {i}/4 of keskar")), "{log}");
        assert!(study.join(format!("grid.grid.shard-{i}-of-4.json")).exists());
    }
    assert_eq!(records(out.path()).len(), 8);
    assert_eq!(
        report_files(&study),
        report_files(&local.path().join("keskar")),
        "a sharded run reports what a local one does"
    );
}

#[test]
#[ignore = "needs a Slurm cluster: tests/slurm/cluster.sh up, then SLURM_CONF exported (CI does both)"]
fn slurm_task_killed_and_resubmitted_alone_completes_the_grid() {
    // Longer runs than the default smoke grid, so that a task can be killed mid-run.
    let grid = ["--seeds", "2", "--epochs", "40"];
    let out = tempfile::tempdir().unwrap();
    let study = out.path().join("keskar");
    let (array, report) = submit(out.path(), &grid, 4);
    // Kill task 1 as soon as it runs (it has written its manifest, not all of its records).
    let task = format!("{array}_1");
    let start = Instant::now();
    loop {
        let state = Command::new("squeue")
            .args(["-h", "-o", "%T", "-j", &task])
            .env("SLURM_CONF", slurm_conf())
            .output()
            .unwrap();
        if text(&state.stdout).trim() == "RUNNING" && study.join("grid.grid.shard-1-of-4.json").exists() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(300), "task {task} never ran");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(Command::new("scancel").arg(&task).env("SLURM_CONF", slurm_conf()).status().unwrap().success());
    // The report job waits on every task's success: it can never run now.
    Command::new("scancel").arg(&report).env("SLURM_CONF", slurm_conf()).status().unwrap();
    wait_for_jobs(std::slice::from_ref(&array), Duration::from_secs(600));
    // The merge names what is missing and whose it is.
    let o = out.path().to_str().unwrap();
    let merge = run(&["report", "keskar", "--out", o]);
    assert_eq!(merge.status.code(), Some(2), "{}", text(&merge.stderr));
    let err = text(&merge.stderr);
    assert!(err.contains("(shard 1/4)") && !err.contains("(shard 0/4)") && !err.contains("(shard 2/4)"), "{err}");
    let before: Vec<PathBuf> = records(out.path());
    // Resubmit task 1 alone, then the report.
    let script = study.join("slurm/array.sbatch");
    let again = Command::new("sbatch")
        .args(["--parsable", "--array=1"])
        .arg(&script)
        .env("SLURM_CONF", slurm_conf())
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again.stderr));
    let again = text(&again.stdout).trim().split(';').next().unwrap().to_string();
    wait_for_jobs(&[again], Duration::from_secs(600));
    let merge = run(&["report", "keskar", "--out", o]);
    assert!(merge.status.success(), "{}", text(&merge.stderr));
    // Every cell once: the 8 records, the ones written before the kill untouched, and the
    // local run's tables.
    let after = records(out.path());
    assert_eq!(after.len(), 8, "{after:?}");
    assert!(before.iter().all(|p| after.contains(p)));
    let local = tempfile::tempdir().unwrap();
    let mut args = vec!["keskar", "--scale", "smoke", "--out", local.path().to_str().unwrap()];
    args.extend_from_slice(&grid);
    assert!(run(&args).status.success());
    assert_eq!(report_files(&study), report_files(&local.path().join("keskar")));
}

#[test]
fn shards_from_flags_and_from_a_slurm_environment_merge_to_the_whole_grid() {
    let grid = ["--nets", "F1", "--seeds", "3", "--epochs", "2"];
    let whole = tempfile::tempdir().unwrap();
    let mut args = vec!["keskar", "--scale", "smoke", "--out", whole.path().to_str().unwrap()];
    args.extend_from_slice(&grid);
    assert!(run(&args).status.success());
    let out = tempfile::tempdir().unwrap();
    let o = out.path().to_str().unwrap();
    let shard = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["keskar", "--scale", "smoke", "--out", o];
        args.extend_from_slice(&grid);
        args.extend_from_slice(extra);
        let mut cmd = studies();
        cmd.args(&args).stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let run = cmd.output().unwrap();
        assert!(run.status.success(), "{}", text(&run.stderr));
        text(&run.stdout)
    };
    // Shard 0 of 3 from the flag: its records only, no tables, and what to do next.
    let said = shard(&["--shard", "0/3"], &[]);
    assert!(said.contains("shard 0/3 of keskar") && said.contains("studies report keskar --out"), "{said}");
    assert!(!out.path().join("keskar/table2.md").exists(), "a shard writes no tables");
    // Before the other shards ran, the merge names what is missing and whose it is.
    let early = run(&["report", "keskar", "--out", o]);
    assert_eq!(early.status.code(), Some(2));
    let err = text(&early.stderr);
    assert!(
        err.contains("4 of 6 cells have no record") && err.contains("(shard 1/3)") && err.contains("(shard 2/3)"),
        "{err}"
    );
    assert!(err.contains("shards that never started: 1/3, 2/3"), "{err}");
    // Shard 1 from a Slurm array's environment (--array=10-14:2, task 12), shard 2 from a
    // Kubernetes Indexed Job's.
    let slurm = [
        ("SLURM_ARRAY_TASK_ID", "12"),
        ("SLURM_ARRAY_TASK_MIN", "10"),
        ("SLURM_ARRAY_TASK_STEP", "2"),
        ("SLURM_ARRAY_TASK_COUNT", "3"),
    ];
    assert!(shard(&[], &slurm).contains("shard 1/3 of keskar"));
    assert!(shard(&[], &[("JOB_COMPLETION_INDEX", "2"), ("FLATLAND_SHARDS", "3")]).contains("shard 2/3 of keskar"));
    // Each seed's SB and LB ran in one shard, and every record exists once.
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.path().join("keskar/grid.grid.shard-0-of-3.json")).unwrap())
            .unwrap();
    let owners: Vec<u64> = manifest["owners"].as_array().unwrap().iter().map(|o| o.as_u64().unwrap()).collect();
    let ids: Vec<&str> = manifest["records"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    for (id, owner) in ids.iter().zip(&owners) {
        let partner = ids.iter().zip(&owners).find(|(other, _)| {
            let seed = |s: &str| s.split('-').nth(2).unwrap().to_string();
            *other != id && seed(other) == seed(id)
        });
        assert_eq!(partner.map(|p| p.1), Some(owner), "{id}: SB and LB of a seed share a shard");
    }
    assert_eq!(records(out.path()).len(), 6);
    let merged = run(&["report", "keskar", "--out", o]);
    assert!(merged.status.success(), "{}", text(&merged.stderr));
    assert_eq!(report_files(&out.path().join("keskar")), report_files(&whole.path().join("keskar")));
}

#[test]
fn dry_run_lists_the_grid_and_slurm_writes_its_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("out");
    let o = o.to_str().unwrap();
    let dry = run(&["keskar", "--scale", "smoke", "--seeds", "2", "--out", o, "--shard", "1/2", "--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let listing = text(&dry.stdout);
    assert!(listing.contains("keskar grid (8 cells; dry run, nothing ran)"), "{listing}");
    assert!(listing.contains("| F1-SB-seed0-") && listing.contains("| F1-seed0 |"), "{listing}");
    assert!(listing.contains("Predicted:") && listing.contains("Suggested: --array 1"), "{listing}");
    assert!(!dir.path().join("out").exists(), "a dry run writes nothing");
    // Without --submit, `studies slurm` writes the scripts and says how to submit them.
    let slurm = run(&["slurm", "keskar", "--scale", "smoke", "--out", o, "--array", "3", "--time", "00:10:00"]);
    assert!(slurm.status.success(), "{}", text(&slurm.stderr));
    let scripts = dir.path().join("out/keskar/slurm");
    let array = fs::read_to_string(scripts.join("array.sbatch")).unwrap();
    assert!(array.contains("#SBATCH --array=0-2") && array.contains("#SBATCH --time=00:10:00"), "{array}");
    assert!(array.contains("--jobs 2 --shard \"${SLURM_ARRAY_TASK_ID}/3\""), "{array}");
    assert!(fs::read_to_string(scripts.join("report.sbatch")).unwrap().contains(&format!("report keskar --out {o}")));
    assert!(text(&slurm.stdout).contains("sbatch --dependency=afterok:$a"), "{}", text(&slurm.stdout));
    // A typo in the study's flags fails here, not in every task.
    assert_refused(&["slurm", "keskar", "--scale", "huge", "--array", "2", "--out", o], &["huge"]);
    assert_refused(&["slurm", "nosuch", "--array", "2"], &["nosuch", "keskar"]);
    assert_refused(&["keskar", "--scale", "smoke", "--shard", "3/3", "--out", o], &["--shard 3/3"]);
}
