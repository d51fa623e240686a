//! Tables 2–4, the curvature table, the training curves and Figure 3 of the Keskar study, from
//! its records alone. Runs that diverged are counted and left out of every mean.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use measure::curvature::{self, TopEigenvalue, Trace};
use nets::init::BatchNormSettings;
use nets::train::{EpochMetrics, Init, Protocol, TrainConfig};
use serde::Serialize;

use super::figure3::{Figure3, slice_panels};
use super::paper::{PAPER_DATA, PAPER_TABLE3, PAPER_TABLE4, paper_row, paper_sharpness};
use super::{Cell, Outcome, Regime};
use crate::harness::{self, Record, Report, fill};
use crate::plot::{self, PALETTE, Panel, Series};
use crate::measurement::Measures;
use measure::density::outlier_count;
use measure::sharpness::{Sharpness, SubspaceMatrix};
use nets::objective::BatchNormMode;
use crate::stats::{geometric_mean_ci, mean, mean_of, mean_std, std, std_of, welch_t_test};

/// Metrics at the last epoch of a run.
fn last(outcome: &Outcome) -> &EpochMetrics {
    outcome.trained.curves.last().expect("at least the epoch-0 evaluation")
}

/// The records of `net` in `regime`.
fn runs<'a>(records: &'a [Record<Cell, Outcome>], net: &str, regime: Regime) -> Vec<&'a Record<Cell, Outcome>> {
    records.iter().filter(|r| r.config.net == net && r.config.regime == regime).collect()
}

/// LB / SB of `value` under batch-norm setting `mode` for each seed index whose SB and LB runs
/// were both measured (the pair shares its initial weights, the objective's samples, the subspace
/// A and the Hessian probes).
fn paired_ratios(
    records: &[Record<Cell, Outcome>],
    net: &str,
    mode: BatchNormMode,
    value: impl Fn(&Measures) -> Option<f64>,
) -> Vec<f64> {
    let measured = |r: &Record<Cell, Outcome>| r.outcome.measured(mode).and_then(&value);
    let lb = runs(records, net, Regime::LB);
    runs(records, net, Regime::SB)
        .into_iter()
        .filter_map(|sb| {
            let lb = lb.iter().find(|lb| lb.config.seed_index == sb.config.seed_index)?;
            Some(measured(lb)? / measured(sb)?)
        })
        .collect()
}

/// "batch norm on running statistics", or "… on batch statistics (evaluation batch B)".
fn describe_mode(records: &[Record<Cell, Outcome>], mode: BatchNormMode) -> String {
    let batch = records.iter().find_map(|r| r.outcome.measured(mode)?.eval_batch);
    match batch {
        Some(b) => format!("batch norm on {} (evaluation batch {b})", mode.describe()),
        None => format!("batch norm on {}", mode.describe()),
    }
}

/// "Data: F1 on mnist, C1 on cifar-10-subset (4000 train / 1000 test)." for the tables whose
/// rows name only the network.
fn data_line(records: &[Record<Cell, Outcome>], nets: &[&str]) -> String {
    let each: Vec<String> = nets
        .iter()
        .filter_map(|&net| records.iter().find(|r| r.config.net == net))
        .map(|r| format!("{} on {}", r.config.net, r.config.data.describe()))
        .collect();
    format!("Data: {}.", each.join(", "))
}

/// Two decimals, or three significant digits in scientific notation for magnitudes below 0.01
/// that two decimals would show as 0.00.
fn two_decimals(v: f64) -> String {
    if v == 0.0 || v.abs() >= 0.01 || !v.is_finite() { format!("{v:.2}") } else { format!("{v:.2e}") }
}

/// Whether L-BFGS-B took no step from its start, the box's centre (there its projected gradient
/// was already below its tolerance, or f was not finite): φ is then 0 by construction, the start
/// rather than a maximum, so the tables leave such a run out of every mean, ratio and pair, and
/// count it.
fn stalled(s: &Sharpness) -> bool {
    s.iterations == 0
}

/// "g× [lo–hi]" for the geometric mean of paired ratios and its 95 % CI, or a dash.
fn paired_cell(ratios: &[f64]) -> String {
    geometric_mean_ci(ratios)
        .map_or("–".into(), |(g, lo, hi)| format!("{}× [{}–{}]", two_decimals(g), two_decimals(lo), two_decimals(hi)))
}

/// One row of Table 2: the runs that finished, and how many diverged.
struct Row<'a> {
    net: &'a str,
    dataset: &'a str,
    /// The data with its split sizes where its name alone could mislead.
    data: String,
    regime: Regime,
    batch: usize,
    parameters: usize,
    train: Vec<f64>,
    test: Vec<f64>,
    /// Epochs each finished run trained.
    epochs: Vec<usize>,
    diverged: usize,
}

/// A row of `table2.csv`.
#[derive(Serialize)]
struct Table2Csv<'a> {
    net: &'a str,
    dataset: &'a str,
    regime: String,
    runs: usize,
    diverged: usize,
    train_acc_mean: Option<f64>,
    train_acc_std: Option<f64>,
    test_acc_mean: Option<f64>,
    test_acc_std: Option<f64>,
    paper_train_acc: Option<f64>,
    paper_test_acc: Option<f64>,
}

/// Writes `table2.{md,csv}`, `table3`/`table4`/`curvature` when the runs were measured,
/// `curves.{png,svg}` and `figure3.{png,svg}` into `dir` from the records alone.
pub fn report(records: &[Record<Cell, Outcome>], dir: &Path) -> Result<Report> {
    let nets = harness::distinct(records.iter().map(|r| r.config.net.as_str()));
    let mut rows = Vec::new();
    for &net in &nets {
        for regime in [Regime::SB, Regime::LB] {
            let all = runs(records, net, regime);
            let Some(first) = all.first() else { continue };
            let finished: Vec<_> = all.iter().filter(|r| r.outcome.trained.finished()).collect();
            rows.push(Row {
                net,
                dataset: first.config.data.name(),
                data: first.config.data.describe(),
                regime,
                batch: first.config.train.batch_size,
                parameters: first.outcome.trained.parameters,
                train: finished.iter().map(|r| last(&r.outcome).train_acc).collect(),
                test: finished.iter().map(|r| last(&r.outcome).test_acc).collect(),
                epochs: finished.iter().map(|r| last(&r.outcome).epoch).collect(),
                diverged: all.len() - finished.len(),
            });
        }
    }

    let csv: Vec<Table2Csv> = rows
        .iter()
        .map(|r| {
            let paper = paper_row(r.net, r.regime);
            Table2Csv {
                net: r.net,
                dataset: r.dataset,
                regime: format!("{:?}", r.regime),
                runs: r.train.len() + r.diverged,
                diverged: r.diverged,
                train_acc_mean: mean_of(&r.train),
                train_acc_std: std_of(&r.train),
                test_acc_mean: mean_of(&r.test),
                test_acc_std: std_of(&r.test),
                paper_train_acc: paper.map(|p| p.0),
                paper_test_acc: paper.map(|p| p.1),
            }
        })
        .collect();

    let first = &records[0];
    let code = harness::distinct(records.iter().map(|r| r.env.build.short())).join(", ");
    let train = &first.config.train;
    let schedule = match train.patience {
        Some(p) => {
            format!("until the training loss has made no new minimum for {p} epochs, at most {} epochs", train.epochs)
        }
        None => format!("{} epochs", train.epochs),
    };
    let norm = first.config.spec.batch_norm();
    let mut md = String::new();
    writeln!(md, "# Keskar et al. 2017, Table 2: small-batch vs large-batch Adam\n")?;
    let header = fill(
        include_str!("text/table2.md"),
        &[
            ("scale", format!("{:?}", first.config.scale)),
            ("schedule", schedule),
            ("lr", train.learning_rate.to_string()),
            ("beta_1", train.adam.beta_1.to_string()),
            ("beta_2", train.adam.beta_2.to_string()),
            ("adam_epsilon", format!("{:e}", train.adam.epsilon)),
            ("bn_epsilon", norm.map_or("–".into(), |n| format!("{:e}", n.epsilon))),
            ("bn_momentum", norm.map_or("–".into(), |n| n.momentum.to_string())),
            ("protocol", protocol_phrase(train, norm)),
            ("evaluation", evaluation_phrase(train)),
            ("seed", first.master_seed.to_string()),
            ("backend", first.env.backend.clone()),
            ("code", code),
        ],
    );
    // A blank line after each prose paragraph: a Markdown table cannot start inside one.
    writeln!(md, "{header}\n")?;
    if let Some(mix) = harness::machine_mix(records) {
        writeln!(md, "{mix}\n")?;
    }
    writeln!(
        md,
        "| net | params | data | regime | batch | runs | diverged | epochs run | train acc | test acc | paper train | paper test |"
    )?;
    writeln!(md, "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    let paper_cell = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.2}"));
    for r in &rows {
        let paper = paper_row(r.net, r.regime);
        let epochs = match (r.epochs.iter().min(), r.epochs.iter().max()) {
            (Some(lo), Some(hi)) if lo == hi => lo.to_string(),
            (Some(lo), Some(hi)) => format!("{lo}–{hi}"),
            _ => "–".into(),
        };
        writeln!(
            md,
            "| {} | {} | {} | {:?} | {} | {} | {} | {epochs} | {} | {} | {} | {} |",
            r.net,
            r.parameters,
            r.data,
            r.regime,
            r.batch,
            r.train.len() + r.diverged,
            r.diverged,
            mean_std(&r.train, 2),
            mean_std(&r.test, 2),
            paper_cell(paper.map(|p| p.0)),
            paper_cell(paper.map(|p| p.1)),
        )?;
    }
    let paper_data: Vec<String> = nets
        .iter()
        .map(|n| format!("{n} on {}", PAPER_DATA.iter().find(|(m, _)| m == n).map(|(_, d)| *d).unwrap_or("?")))
        .collect();
    writeln!(md, "\nThe paper's columns are its Table 2 ({}), shown for reference.\n", paper_data.join(", "))?;
    writeln!(md, "## Generalization gap (SB − LB test accuracy)\n")?;
    writeln!(md, "| net | SB test | LB test | gap (points) | Welch t | p (two-sided) | LB below SB, p < 0.05 |")?;
    writeln!(md, "|---|---:|---:|---:|---:|---:|---|")?;
    for &net in &nets {
        let sb = rows.iter().find(|r| r.net == net && r.regime == Regime::SB);
        let lb = rows.iter().find(|r| r.net == net && r.regime == Regime::LB);
        let (Some(sb), Some(lb)) = (sb, lb) else { continue };
        if sb.test.is_empty() || lb.test.is_empty() {
            continue;
        }
        let gap = mean(&sb.test) - mean(&lb.test);
        let test = welch_t_test(&sb.test, &lb.test);
        let (t, p) = match test {
            Some((t, p)) => (format!("{t:.2}"), format!("{p:.2e}")),
            None => ("–".into(), "–".into()),
        };
        let significant = test.is_some_and(|(_, p)| p < 0.05) && gap > 0.0;
        writeln!(
            md,
            "| {net} | {:.2} | {:.2} | {gap:.2} | {t} | {p} | {} |",
            mean(&sb.test),
            mean(&lb.test),
            if significant { "yes" } else { "no" }
        )?;
    }

    std::fs::create_dir_all(dir)?;
    harness::write_csv(&dir.join("table2.csv"), &csv)?;
    harness::write_atomic(&dir.join("table2.md"), md.as_bytes())?;
    plot::write_panels(&dir.join("curves"), &curve_panels(records, &nets))?;
    let modes: Vec<BatchNormMode> =
        BatchNormMode::ALL.into_iter().filter(|&m| records.iter().any(|r| r.outcome.measured(m).is_some())).collect();
    if !modes.is_empty() {
        let matrices = records.iter().find_map(|r| r.config.measure.as_ref()).map_or(Vec::new(), |c| {
            if c.subspace_dim > 0 { c.subspace_matrices.clone() } else { Vec::new() }
        });
        let subspaces: Vec<Space> = matrices.into_iter().map(Space::Subspace).collect();
        for (n, spaces) in [(3, vec![Space::Full]), (4, subspaces)] {
            let mut csv = Vec::new();
            let mut table_md = String::new();
            for &mode in &modes {
                for space in &spaces {
                    if !table_md.is_empty() {
                        table_md.push('\n');
                    }
                    table_md.push_str(&sharpness_table(records, &nets, mode, *space, &mut csv)?);
                }
            }
            harness::write_csv(&dir.join(format!("table{n}.csv")), &csv)?;
            harness::write_atomic(&dir.join(format!("table{n}.md")), table_md.as_bytes())?;
            md.push('\n');
            md.push_str(&table_md);
        }
        let curv_md = curvature_tables(records, &nets, &modes, &dir.join("curvature.csv"))?;
        harness::write_atomic(&dir.join("curvature.md"), curv_md.as_bytes())?;
        md.push('\n');
        md.push_str(&curv_md);
        let (diag_md, diag_csv) = diagnostics_table(records, &nets, &modes)?;
        let (sweep_md, sweep_csv) = sweep_table(records, &nets, &modes)?;
        let diag_md = format!("{diag_md}\n{sweep_md}");
        harness::write_csv(&dir.join("diagnostics.csv"), &diag_csv)?;
        harness::write_csv(&dir.join("sweep.csv"), &sweep_csv)?;
        harness::write_atomic(&dir.join("diagnostics.md"), diag_md.as_bytes())?;
        md.push('\n');
        md.push_str(&diag_md);
        let sweep_panels = sweep_panels(records, &nets, &modes);
        if !sweep_panels.is_empty() {
            plot::write_grid(&dir.join("sweep"), nets.len(), &sweep_panels)?;
        }
        let (density_md, density_csv) = density_table(records, &nets, &modes)?;
        if !density_csv.is_empty() {
            harness::write_csv(&dir.join("density.csv"), &density_csv)?;
            harness::write_atomic(&dir.join("density.md"), density_md.as_bytes())?;
            plot::write_grid(&dir.join("density"), nets.len(), &density_panels(records, &nets, &modes))?;
            md.push('\n');
            md.push_str(&density_md);
        }
    }
    // Figure 3, when its stage ran on these records' solutions.
    let mut slices: Vec<_> = match harness::load_grid::<Figure3>(dir) {
        Ok(slices) => slices
            .into_iter()
            .filter(|s| records.iter().any(|r| r.id == s.config.sb) && records.iter().any(|r| r.id == s.config.lb))
            .collect(),
        Err(_) => Vec::new(),
    };
    // In the grid's order, however the shards that ran them listed them.
    slices.sort_by_key(|s| records.iter().position(|r| r.id == s.config.sb));
    if !slices.is_empty() {
        plot::write_grid(&dir.join("figure3"), 3, &slice_panels(&slices, records))?;
    }
    Ok(Report::text(md))
}

/// The setting's name in CSV files and records.
fn mode_name(mode: BatchNormMode) -> &'static str {
    match mode {
        BatchNormMode::Running => "running",
        BatchNormMode::Batch => "batch",
    }
}

/// Full space (Table 3) or random subspace (Table 4) with one reading of A.
#[derive(Clone, Copy, PartialEq)]
enum Space {
    Full,
    Subspace(SubspaceMatrix),
}

impl Space {
    /// The value at the `k`-th ε in this space, if measured.
    fn get(self, m: &Measures, k: usize) -> Option<&Sharpness> {
        match self {
            Space::Full => m.full_space.get(k),
            Space::Subspace(a) => m.subspace.iter().find(|s| s.matrix == a)?.values.get(k),
        }
    }
}

/// A row of `table3.csv` / `table4.csv`.
#[derive(Serialize)]
struct SharpnessCsv<'a> {
    net: &'a str,
    /// "identity" (Table 3), or the reading of A (Table 4).
    matrix: &'static str,
    /// "running" or "batch".
    batch_norm: &'static str,
    regime: String,
    /// Runs in the mean: measured, less the stalled ones.
    runs: usize,
    /// Runs whose L-BFGS-B took no step (φ = 0 by construction), left out.
    stalled: usize,
    epsilon: f64,
    sharpness_mean: Option<f64>,
    sharpness_std: Option<f64>,
    paper_mean: Option<f64>,
}

/// Table 3 or 4 as Markdown (returned) and CSV (written to `csv_path`): sharpness mean ± std
/// over the measured seeds per net, regime and ε, the paper's value beside it, and the LB/SB
/// ratios of the means and per seed.
fn sharpness_table<'a>(
    records: &[Record<Cell, Outcome>],
    nets: &[&'a str],
    mode: BatchNormMode,
    space: Space,
    csv: &mut Vec<SharpnessCsv<'a>>,
) -> Result<String> {
    let cfg = records.iter().find_map(|r| r.config.measure.as_ref());
    let p = cfg.map_or(0, |c| c.subspace_dim);
    let (n, title, paper, matrix) = match space {
        Space::Full => (3, "full space (A = I)".to_string(), &PAPER_TABLE3, "identity"),
        Space::Subspace(a) => (
            4,
            format!("random subspace (p = {p}, {})", a.describe()),
            &PAPER_TABLE4,
            a.name(),
        ),
    };
    // The values of the runs that took a step, how many stalled, and the ε.
    let values = |net: &str, regime: Regime, k: usize| -> (Vec<f64>, usize, f64) {
        let all: Vec<&Sharpness> =
            runs(records, net, regime).iter().filter_map(|r| r.outcome.measured(mode)).filter_map(|m| space.get(m, k)).collect();
        let eps = all.first().map_or(0.0, |s| s.epsilon);
        let stalled_runs = all.iter().filter(|s| stalled(s)).count();
        (all.iter().filter(|s| !stalled(s)).map(|s| s.value).collect(), stalled_runs, eps)
    };
    let epsilons: Vec<f64> = cfg.map(|m| m.epsilons.clone()).unwrap_or_default();
    let iterations = cfg.map(|m| m.lbfgsb_iterations).unwrap_or(0);
    let mut md = String::new();
    writeln!(md, "## Table {n}: sharpness in the {title}, {}\n", describe_mode(records, mode))?;
    writeln!(md, "{}\n", data_line(records, nets))?;
    writeln!(md, "{}\n", fill(include_str!("text/sharpness.md"), &[("iterations", iterations.to_string())]))?;
    let mut header = String::from("| net | regime | runs |");
    let mut rule = String::from("|---|---|---:|");
    for e in &epsilons {
        write!(header, " ε = {e:.0e} | paper |")?;
        rule.push_str("---:|---:|");
    }
    writeln!(md, "{header}\n{rule}")?;
    let paper_cell = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.2}"));
    let mut any_stalled = false;
    for &net in nets {
        for regime in [Regime::SB, Regime::LB] {
            let mut row = String::new();
            let mut measured = 0;
            for k in 0..epsilons.len() {
                let (v, stalled_runs, eps) = values(net, regime, k);
                measured = v.len() + stalled_runs;
                if measured == 0 {
                    continue;
                }
                any_stalled |= stalled_runs > 0;
                let p = paper_sharpness(paper, net, regime, eps);
                // One value has no spread to show.
                let spread = |v: &[f64]| match v.len() {
                    1 => two_decimals(v[0]),
                    _ => format!("{} ± {}", two_decimals(mean(v)), two_decimals(std(v))),
                };
                let value = match (v.is_empty(), stalled_runs) {
                    (true, _) => format!("({stalled_runs} stalled)"),
                    (false, 0) => spread(&v),
                    (false, _) => format!("{} ({stalled_runs} stalled)", spread(&v)),
                };
                write!(row, " {value} | {} |", paper_cell(p))?;
                csv.push(SharpnessCsv {
                    net,
                    matrix,
                    batch_norm: mode_name(mode),
                    regime: format!("{regime:?}"),
                    runs: v.len(),
                    stalled: stalled_runs,
                    epsilon: eps,
                    sharpness_mean: (!v.is_empty()).then(|| mean(&v)),
                    sharpness_std: (v.len() > 1).then(|| std(&v)),
                    paper_mean: p,
                });
            }
            if measured > 0 {
                writeln!(md, "| {net} | {regime:?} | {measured} |{row}")?;
            }
        }
    }
    writeln!(
        md,
        "\n| net | ε | LB / SB of the means | LB / SB per seed: geometric mean [95 % CI] | pairs | LB / SB (paper) |\n\
         |---|---|---:|---:|---:|---:|"
    )?;
    for &net in nets {
        for k in 0..epsilons.len() {
            let ((sb, sb_stalled, eps), (lb, lb_stalled, _)) = (values(net, Regime::SB, k), values(net, Regime::LB, k));
            if sb.len() + sb_stalled == 0 || lb.len() + lb_stalled == 0 {
                continue;
            }
            // A regime whose every maximization stalled has no mean to divide: the row stays, with no ratio.
            let ratio = match sb.is_empty() || lb.is_empty() {
                true => "–".to_string(),
                false => format!("{:.1}×", mean(&lb) / mean(&sb)),
            };
            let pairs = paired_ratios(records, net, mode, |m| space.get(m, k).filter(|s| !stalled(s)).map(|s| s.value));
            let p = match (paper_sharpness(paper, net, Regime::SB, eps), paper_sharpness(paper, net, Regime::LB, eps)) {
                (Some(s), Some(l)) => format!("{:.0}×", l / s),
                _ => "–".into(),
            };
            writeln!(md, "| {net} | {eps:.0e} | {ratio} | {} | {} | {p} |", paired_cell(&pairs), pairs.len())?;
        }
    }
    if any_stalled {
        writeln!(md, "\n{}", fill(include_str!("text/stalled.md"), &[]))?;
    }
    Ok(md)
}

/// A row of `diagnostics.csv`.
#[derive(Serialize)]
struct DiagnosticsCsv<'a> {
    net: &'a str,
    regime: String,
    batch_norm: &'static str,
    epsilon: f64,
    runs: usize,
    f_x_mean: f64,
    f_max_mean: f64,
    stops: String,
    ceiling_mean: f64,
    /// Over the runs that did not stall (empty if all did).
    ratio_to_ceiling_mean: Option<f64>,
    ratio_to_ceiling_min: Option<f64>,
    ratio_to_ceiling_max: Option<f64>,
}

/// What qualifies the full-space sharpness (Table 3): f(x), f at the maximizer, why L-BFGS-B
/// stopped, and each run's quadratic ceiling 100 · ½ λ_max r² / (1 + f(x)) with φ's ratio to it.
fn diagnostics_table<'a>(
    records: &[Record<Cell, Outcome>],
    nets: &[&'a str],
    modes: &[BatchNormMode],
) -> Result<(String, Vec<DiagnosticsCsv<'a>>)> {
    let mut md = String::from("## Diagnostics of the full-space sharpness\n\n");
    writeln!(md, "{}\n", fill(include_str!("text/diagnostics.md"), &[]))?;
    md.push_str(
        "| net | regime | batch norm | ε | runs | f(x) | f at the maximizer | L-BFGS-B stop | quadratic ceiling | \
         φ / ceiling [min–max] |\n|---|---|---|---:|---:|---:|---:|---|---:|---:|\n",
    );
    let mut csv = Vec::new();
    let epsilons = records.iter().find_map(|r| r.config.measure.as_ref()).map_or(Vec::new(), |c| c.epsilons.clone());
    for &net in nets {
        for regime in [Regime::SB, Regime::LB] {
            for &mode in modes {
                for (k, &epsilon) in epsilons.iter().enumerate() {
                    let ms: Vec<(&Sharpness, f64)> = runs(records, net, regime)
                        .iter()
                        .filter_map(|r| r.outcome.measured(mode))
                        .filter_map(|m| Some((m.full_space.get(k)?, m.top_eigenvalue.as_ref()?.value)))
                        .collect();
                    if ms.is_empty() {
                        continue;
                    }
                    let ceiling: Vec<f64> =
                        ms.iter().map(|(s, lambda)| 100.0 * 0.5 * lambda * s.box_radius_sq / (1.0 + s.f_x)).collect();
                    let ratio: Vec<f64> =
                        ms.iter().zip(&ceiling).filter(|((s, _), _)| !stalled(s)).map(|((s, _), c)| s.value / c).collect();
                    let stop_of: Vec<String> = ms.iter().map(|(s, _)| format!("{:?}", s.stop)).collect();
                    let stops = harness::distinct(stop_of.iter().map(String::as_str))
                        .into_iter()
                        .map(|stop| format!("{stop} {}", stop_of.iter().filter(|s| *s == stop).count()))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let (lo, hi) = crate::stats::min_max(ratio.iter().copied());
                    let ratio_cell = if ratio.is_empty() {
                        "–".to_string()
                    } else {
                        format!("{:.2} [{lo:.2}–{hi:.2}]", mean(&ratio))
                    };
                    let f_x: Vec<f64> = ms.iter().map(|(s, _)| s.f_x).collect();
                    let f_max: Vec<f64> = ms.iter().map(|(s, _)| s.f_max).collect();
                    writeln!(
                        md,
                        "| {net} | {regime:?} | {} | {epsilon:.0e} | {} | {:.3e} | {:.3e} | {stops} | {:.2} | {ratio_cell} |",
                        mode_name(mode),
                        ms.len(),
                        mean(&f_x),
                        mean(&f_max),
                        mean(&ceiling),
                    )?;
                    csv.push(DiagnosticsCsv {
                        net,
                        regime: format!("{regime:?}"),
                        batch_norm: mode_name(mode),
                        epsilon,
                        runs: ms.len(),
                        f_x_mean: mean(&f_x),
                        f_max_mean: mean(&f_max),
                        stops,
                        ceiling_mean: mean(&ceiling),
                        ratio_to_ceiling_mean: (!ratio.is_empty()).then(|| mean(&ratio)),
                        ratio_to_ceiling_min: (!ratio.is_empty()).then_some(lo),
                        ratio_to_ceiling_max: (!ratio.is_empty()).then_some(hi),
                    });
                }
            }
        }
    }
    Ok((md, csv))
}

/// A row of `sweep.csv`: one run's full-space sharpness at one ε, on the subset or the whole
/// training set.
#[derive(Serialize)]
struct SweepCsv<'a> {
    net: &'a str,
    regime: String,
    batch_norm: &'static str,
    seed_index: usize,
    samples: &'static str,
    epsilon: f64,
    sharpness: f64,
    /// L-BFGS-B took no step: `sharpness` is its start, 0.
    stalled: bool,
    f_x: f64,
}

/// The seed-0 runs measured with the ε sweep: (record, measures) per net, regime and setting.
fn swept<'a>(
    records: &'a [Record<Cell, Outcome>],
    net: &str,
    regime: Regime,
    mode: BatchNormMode,
) -> Option<(&'a Record<Cell, Outcome>, &'a Measures)> {
    runs(records, net, regime).into_iter().find_map(|r| {
        let m = r.outcome.measured(mode)?;
        (!m.sweep.is_empty()).then_some((r, m))
    })
}

/// Every full-space value of a swept run, sorted by ε.
fn sweep_points(m: &Measures) -> Vec<&Sharpness> {
    let mut all: Vec<&Sharpness> = m.full_space.iter().chain(&m.sweep).collect();
    all.sort_by(|a, b| a.epsilon.total_cmp(&b.epsilon));
    all
}

/// The ε sweep (log-log slopes of φ against ε) and the whole training set's value beside the
/// subset's, for the one seed per cell that measured them.
fn sweep_table<'a>(
    records: &[Record<Cell, Outcome>],
    nets: &[&'a str],
    modes: &[BatchNormMode],
) -> Result<(String, Vec<SweepCsv<'a>>)> {
    let mut md = String::from("## Sharpness against ε, and the subset's bias\n\n");
    writeln!(md, "{}\n", fill(include_str!("text/sweep-epsilon.md"), &[]))?;
    md.push_str(
        "| net | regime | batch norm | seed | φ at each ε | slope, lowest two ε | slope, highest two ε | \
         φ on the whole training set (first ε) | whole / subset |\n|---|---|---|---:|---|---:|---:|---:|---:|\n",
    );
    let mut csv = Vec::new();
    let mut any_stalled = false;
    let slope = |a: &Sharpness, b: &Sharpness| (b.value / a.value).ln() / (b.epsilon / a.epsilon).ln();
    for &net in nets {
        for regime in [Regime::SB, Regime::LB] {
            for &mode in modes {
                let Some((r, m)) = swept(records, net, regime, mode) else { continue };
                let points = sweep_points(m);
                let value = |s: &Sharpness| if stalled(s) { "stalled".to_string() } else { two_decimals(s.value) };
                any_stalled |= points.iter().copied().chain(m.full_set.as_ref()).any(stalled);
                let listed: Vec<String> = points.iter().map(|s| format!("{:.0e}: {}", s.epsilon, value(s))).collect();
                let slope_of = |a: &Sharpness, b: &Sharpness| {
                    if stalled(a) || stalled(b) { "–".to_string() } else { format!("{:.2}", slope(a, b)) }
                };
                let n = points.len();
                let (low, high) = if n >= 2 {
                    (slope_of(points[0], points[1]), slope_of(points[n - 2], points[n - 1]))
                } else {
                    ("–".into(), "–".into())
                };
                let (whole, bias) = match (&m.full_set, m.full_space.first()) {
                    (Some(f), Some(s)) if !stalled(f) && !stalled(s) => {
                        (two_decimals(f.value), format!("{:.2}×", f.value / s.value))
                    }
                    (Some(f), Some(_)) => (value(f), "–".into()),
                    _ => ("–".into(), "–".into()),
                };
                writeln!(
                    md,
                    "| {net} | {regime:?} | {} | {} | {} | {low} | {high} | {whole} | {bias} |",
                    mode_name(mode),
                    r.config.seed_index,
                    listed.join(", ")
                )?;
                for s in &points {
                    csv.push(SweepCsv {
                        net,
                        regime: format!("{regime:?}"),
                        batch_norm: mode_name(mode),
                        seed_index: r.config.seed_index,
                        samples: "subset",
                        epsilon: s.epsilon,
                        sharpness: s.value,
                        stalled: stalled(s),
                        f_x: s.f_x,
                    });
                }
                if let Some(f) = &m.full_set {
                    csv.push(SweepCsv {
                        net,
                        regime: format!("{regime:?}"),
                        batch_norm: mode_name(mode),
                        seed_index: r.config.seed_index,
                        samples: "whole",
                        epsilon: f.epsilon,
                        sharpness: f.value,
                        stalled: stalled(f),
                        f_x: f.f_x,
                    });
                }
            }
        }
    }
    if any_stalled {
        writeln!(md, "\n\"stalled\": L-BFGS-B took no step from the box's centre, so φ = 0 is its start (see Table 3).")?;
    }
    Ok((md, csv))
}

/// φ against ε on log-log axes, one panel per net and batch-norm setting, SB and LB, with lines
/// of slope 2 (the quadratic regime) and 1 (a slope of the loss dominates) through SB's smallest ε.
fn sweep_panels(records: &[Record<Cell, Outcome>], nets: &[&str], modes: &[BatchNormMode]) -> Vec<Panel> {
    let mut panels = Vec::new();
    for &net in nets {
        for &mode in modes {
            let mut series = Vec::new();
            for (regime, color) in [(Regime::SB, PALETTE[0]), (Regime::LB, PALETTE[1])] {
                let Some((r, m)) = swept(records, net, regime, mode) else { continue };
                let points: Vec<&Sharpness> = sweep_points(m).into_iter().filter(|s| !stalled(s)).collect();
                if points.is_empty() {
                    continue;
                }
                if regime == Regime::SB
                    && let (Some(first), Some(last)) = (points.first(), points.last())
                {
                    for (slope, label, color) in
                        [(2, "slope 2 (quadratic)", PALETTE[2]), (1, "slope 1 (gradient)", PALETTE[4])]
                    {
                        series.push(Series {
                            label: label.into(),
                            color,
                            dashed: true,
                            x: vec![first.epsilon, last.epsilon],
                            mean: vec![first.value, first.value * (last.epsilon / first.epsilon).powi(slope)],
                            std: vec![0.0; 2],
                        });
                    }
                }
                series.push(Series {
                    label: format!("{regime:?} (seed {})", r.config.seed_index),
                    color,
                    dashed: false,
                    x: points.iter().map(|s| s.epsilon).collect(),
                    mean: points.iter().map(|s| s.value).collect(),
                    std: vec![0.0; points.len()],
                });
            }
            if series.is_empty() {
                continue;
            }
            let mut p = Panel::new(format!("{net}, {}", describe_mode(records, mode)), "ε", "ε-sharpness φ", series);
            p.log_x = true;
            p.log_y = true;
            p.legend = plotters::prelude::SeriesLabelPosition::UpperLeft;
            panels.push(p);
        }
    }
    panels
}

/// A row of `density.csv`.
#[derive(Serialize)]
struct DensityCsv<'a> {
    net: &'a str,
    regime: String,
    batch_norm: &'static str,
    seed_index: usize,
    probes: usize,
    slq_trace: f64,
    hutchinson_trace: f64,
    top_ritz: f64,
    bottom_ritz: f64,
    outliers: usize,
}

/// The most outliers looked for: twice the classes of the paper's data.
const MAX_OUTLIERS: usize = 20;

/// The seed-0 runs with an eigenvalue density, per net, regime and setting.
fn with_density<'a>(
    records: &'a [Record<Cell, Outcome>],
    net: &str,
    regime: Regime,
    mode: BatchNormMode,
) -> Option<(&'a Record<Cell, Outcome>, &'a Measures, &'a measure::density::SpectralDensity)> {
    runs(records, net, regime).into_iter().find_map(|r| {
        let m = r.outcome.measured(mode)?;
        Some((r, m, m.density.as_ref().filter(|d| !d.probes.is_empty())?))
    })
}

/// The eigenvalue density's checks: its trace against Hutchinson's, its extreme Ritz values, and
/// the outliers above the bulk.
fn density_table<'a>(
    records: &[Record<Cell, Outcome>],
    nets: &[&'a str],
    modes: &[BatchNormMode],
) -> Result<(String, Vec<DensityCsv<'a>>)> {
    let mut md = String::from("## The Hessian's eigenvalue density\n\n");
    let cfg = records.iter().find_map(|r| r.config.measure.as_ref()?.density.clone());
    let (steps, probes) = cfg.map_or((0, 0), |d| (d.steps, d.probes));
    writeln!(
        md,
        "{}\n",
        fill(
            include_str!("text/density.md"),
            &[("steps", steps.to_string()), ("probes", probes.to_string()), ("max_outliers", MAX_OUTLIERS.to_string())]
        )
    )?;
    md.push_str(
        "| net | regime | batch norm | seed | trace (SLQ) | trace (Hutchinson) | largest Ritz | smallest Ritz | outliers |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut csv = Vec::new();
    for &net in nets {
        for regime in [Regime::SB, Regime::LB] {
            for &mode in modes {
                let Some((r, m, d)) = with_density(records, net, regime, mode) else { continue };
                let ritz = d.ritz_values();
                let (top, bottom) = (ritz.first().copied().unwrap_or(f64::NAN), ritz.last().copied().unwrap_or(f64::NAN));
                let hutchinson = m.trace.as_ref().map_or(f64::NAN, |t| t.value);
                let outliers = outlier_count(d, MAX_OUTLIERS);
                writeln!(
                    md,
                    "| {net} | {regime:?} | {} | {} | {:.1} | {hutchinson:.1} | {top:.3} | {bottom:.3} | {outliers} |",
                    mode_name(mode),
                    r.config.seed_index,
                    d.trace()
                )?;
                csv.push(DensityCsv {
                    net,
                    regime: format!("{regime:?}"),
                    batch_norm: mode_name(mode),
                    seed_index: r.config.seed_index,
                    probes: d.probes.len(),
                    slq_trace: d.trace(),
                    hutchinson_trace: hutchinson,
                    top_ritz: top,
                    bottom_ritz: bottom,
                    outliers,
                });
            }
        }
    }
    Ok((md, csv))
}

/// Linear range of the density plot's symmetric-log axis.
const SYMLOG_RANGE: f64 = 1e-2;

/// The smoothed eigenvalue density on a symmetric-log λ axis and a log density axis, one panel
/// per net and batch-norm setting, SB and LB. Each Ritz value is spread as a Gaussian of width 1 %
/// of the run's Ritz range; the density is floored at 1e-6 of its peak to keep the axis readable.
fn density_panels(records: &[Record<Cell, Outcome>], nets: &[&str], modes: &[BatchNormMode]) -> Vec<Panel> {
    let mut panels = Vec::new();
    for &net in nets {
        for &mode in modes {
            let mut series = Vec::new();
            for (regime, color) in [(Regime::SB, PALETTE[0]), (Regime::LB, PALETTE[1])] {
                let Some((r, _, d)) = with_density(records, net, regime, mode) else { continue };
                let ritz = d.ritz_values();
                let (Some(&hi), Some(&lo)) = (ritz.first(), ritz.last()) else { continue };
                let sigma = (0.01 * (hi - lo)).max(f64::MIN_POSITIVE);
                // Points evenly spaced on the symmetric-log axis, 3σ beyond the extremes.
                let (a, b) = (plot::symlog(lo - 3.0 * sigma, SYMLOG_RANGE), plot::symlog(hi + 3.0 * sigma, SYMLOG_RANGE));
                let grid: Vec<f64> =
                    (0..=800).map(|i| plot::inverse_symlog(a + (b - a) * i as f64 / 800.0, SYMLOG_RANGE)).collect();
                let density = d.smoothed(&grid, sigma);
                let peak = density.iter().copied().fold(0.0, f64::max);
                series.push(Series {
                    label: format!("{regime:?} (seed {})", r.config.seed_index),
                    color,
                    dashed: false,
                    mean: density.iter().map(|v| v.max(1e-6 * peak)).collect(),
                    std: vec![0.0; grid.len()],
                    x: grid,
                });
            }
            if series.is_empty() {
                continue;
            }
            let title = format!("{net}, {}", describe_mode(records, mode));
            let mut p = Panel::new(title, "eigenvalue λ (symmetric log)", "density (log)", series);
            p.symlog_x = Some(SYMLOG_RANGE);
            p.log_y = true;
            p.legend = plotters::prelude::SeriesLabelPosition::UpperRight;
            panels.push(p);
        }
    }
    panels
}

/// The difference-step sweep of the seed-0 runs: how much the product along one random direction
/// changes from each step to the next smaller one. Empty when no run recorded a sweep.
fn step_sweep_table(records: &[Record<Cell, Outcome>], nets: &[&str], modes: &[BatchNormMode]) -> Result<String> {
    let steps: Vec<f64> = records
        .iter()
        .find_map(|r| r.outcome.measures.iter().find(|m| !m.step_sweep.is_empty()))
        .map_or(Vec::new(), |m| m.step_sweep.iter().map(|p| p.h).collect());
    if steps.len() < 2 {
        return Ok(String::new());
    }
    let mut md = format!("\n### The difference step\n\n{}\n\n| net | regime | batch norm |", fill(include_str!("text/step.md"), &[]));
    let mut rule = String::from("\n|---|---|---|");
    for pair in steps.windows(2) {
        write!(md, " {:.0e} → {:.0e} |", pair[0], pair[1])?;
        rule.push_str("---:|");
    }
    md.push_str(&rule);
    md.push('\n');
    for &net in nets {
        for regime in [Regime::SB, Regime::LB] {
            for &mode in modes {
                let sweep = runs(records, net, regime)
                    .into_iter()
                    .find_map(|r| r.outcome.measured(mode).filter(|m| !m.step_sweep.is_empty()));
                let Some(m) = sweep else { continue };
                write!(md, "| {net} | {regime:?} | {} |", mode_name(mode))?;
                for p in &m.step_sweep[..m.step_sweep.len() - 1] {
                    write!(md, " {:.1e} |", p.change)?;
                }
                md.push('\n');
            }
        }
    }
    Ok(md)
}

/// A row of `curvature.csv`.
#[derive(Serialize)]
struct CurvatureCsv<'a> {
    net: &'a str,
    regime: String,
    batch_norm: &'static str,
    runs: usize,
    top_eigenvalue_mean: f64,
    top_eigenvalue_std: f64,
    converged: usize,
    max_residual: f64,
    smallest_ritz_mean: f64,
    smallest_ritz_std: f64,
    trace_mean: f64,
    trace_std: f64,
    trace_max_std_error: f64,
    /// Runs whose Hutchinson probes vary more than a PSD Hessian with their λ_max allows.
    beyond_psd_bound: usize,
    /// The largest relative asymmetry vᵀHw against wᵀHv of the runs' products.
    max_asymmetry: f64,
}

/// Hessian top eigenvalue and trace per net, regime and batch-norm setting, and what the
/// measurements cost, as Markdown (returned) and CSV (written to `csv_path`).
fn curvature_tables(
    records: &[Record<Cell, Outcome>],
    nets: &[&str],
    modes: &[BatchNormMode],
    csv_path: &Path,
) -> Result<String> {
    let cfg = records.iter().find_map(|r| r.config.measure.as_ref());
    let mut md = format!("## Curvature of the training loss at the solutions\n\n{}\n\n", data_line(records, nets));
    let text = fill(
        include_str!("text/curvature.md"),
        &[
            ("fd_step", cfg.map_or("–".into(), |c| format!("{:e}", c.fd_step))),
            ("lanczos_tol", cfg.map_or("–".into(), |c| format!("{:e}", c.lanczos_tol))),
            ("probes", cfg.map_or("–".into(), |c| c.trace_probes.to_string())),
        ],
    );
    writeln!(md, "{text}")?;
    let mut flagged = false;
    let mut csv = Vec::new();
    for &mode in modes {
    writeln!(md, "\n### {}\n", describe_mode(records, mode))?;
    md.push_str(
        "| net | regime | runs | top eigenvalue | converged | max residual | smallest Ritz value | trace | trace s.e. | \
         beyond PSD bound | max asymmetry |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for &net in nets {
        for regime in [Regime::SB, Regime::LB] {
            let measured: Vec<&Measures> =
                runs(records, net, regime).iter().filter_map(|r| r.outcome.measured(mode)).collect();
            let ms: Vec<(&TopEigenvalue, &Trace)> =
                measured.iter().filter_map(|m| Some((m.top_eigenvalue.as_ref()?, m.trace.as_ref()?))).collect();
            // The largest |vᵀHw − wᵀHv| / max(|vᵀHw|, |wᵀHv|) of the runs; NaN when one is NaN
            // (a non-finite product), where a plain max would skip it.
            let asymmetries: Vec<f64> = measured.iter().filter_map(|m| Some(m.symmetry.as_ref()?.relative())).collect();
            let asymmetry = match asymmetries.iter().any(|a| a.is_nan()) {
                true => f64::NAN,
                false => asymmetries.iter().copied().fold(f64::NAN, f64::max),
            };
            if ms.is_empty() {
                continue;
            }
            let eig: Vec<f64> = ms.iter().map(|m| m.0.value).collect();
            let tr: Vec<f64> = ms.iter().map(|m| m.1.value).collect();
            let conv = ms.iter().filter(|m| m.0.converged).count();
            let se = ms.iter().map(|m| m.1.std_error).fold(0.0, f64::max);
            let res = ms.iter().map(|m| m.0.residual).fold(0.0, f64::max);
            let low: Vec<f64> = ms.iter().map(|m| m.0.smallest).collect();
            let beyond = ms.iter().filter(|m| curvature::psd_ratio(m.1, m.0.value) > 1.0).count();
            let mark = if beyond > 0 { " †" } else { "" };
            flagged |= beyond > 0;
            writeln!(
                md,
                "| {net} | {regime:?} | {} | {:.3} ± {:.3} | {conv}/{} | {res:.1e} | {:.3} ± {:.3} | {:.1} ± {:.1}{mark} | \
                 {se:.1} | {beyond}/{} | {asymmetry:.1e} |",
                ms.len(),
                mean(&eig),
                std(&eig),
                ms.len(),
                mean(&low),
                std(&low),
                mean(&tr),
                std(&tr),
                ms.len()
            )?;
            csv.push(CurvatureCsv {
                net,
                regime: format!("{regime:?}"),
                batch_norm: mode_name(mode),
                runs: ms.len(),
                top_eigenvalue_mean: mean(&eig),
                top_eigenvalue_std: std(&eig),
                converged: conv,
                max_residual: res,
                smallest_ritz_mean: mean(&low),
                smallest_ritz_std: std(&low),
                trace_mean: mean(&tr),
                trace_std: std(&tr),
                trace_max_std_error: se,
                beyond_psd_bound: beyond,
                max_asymmetry: asymmetry,
            });
        }
    }
    writeln!(md, "\n| net | top eigenvalue, LB / SB per seed: geometric mean [95 % CI] | pairs |\n|---|---:|---:|")?;
    for &net in nets {
        let pairs = paired_ratios(records, net, mode, |m| Some(m.top_eigenvalue.as_ref()?.value));
        if !pairs.is_empty() {
            writeln!(md, "| {net} | {} | {} |", paired_cell(&pairs), pairs.len())?;
        }
    }
    }
    md.push_str(&step_sweep_table(records, nets, modes)?);
    if flagged {
        let probes = cfg.map_or("–".into(), |c| c.trace_probes.to_string());
        writeln!(md, "\n{}", fill(include_str!("text/psd.md"), &[("probes", probes)]))?;
    }
    let measured_runs = || records.iter().filter(|r| !r.outcome.measures.is_empty());
    let train: f64 = measured_runs().map(|r| r.outcome.train_seconds).sum();
    let measured: f64 = measured_runs().flat_map(|r| &r.outcome.measures).map(|m| m.seconds).sum();
    let per_mode: Vec<String> = modes
        .iter()
        .map(|&mode| {
            let s: f64 = measured_runs().filter_map(|r| r.outcome.measured(mode)).map(|m| m.seconds).sum();
            format!("{s:.0} s on {}", mode.describe())
        })
        .collect();
    let objective = match cfg.and_then(|m| m.samples) {
        Some(m) => format!("a fixed random subset of {m} training samples"),
        None => "the whole training set".into(),
    };
    let cost = fill(
        include_str!("text/cost.md"),
        &[
            ("measured", format!("{measured:.0}")),
            ("percent", format!("{:.0}", 100.0 * measured / train.max(f64::MIN_POSITIVE))),
            ("train", format!("{train:.0}")),
            ("per_mode", per_mode.join(", ")),
            ("objective", objective),
        ],
    );
    writeln!(md, "\n{cost}")?;
    harness::write_csv(csv_path, &csv)?;
    Ok(md)
}

/// Train (dashed) and test (solid) accuracy vs epoch, SB blue and LB red, mean ± std over the
/// runs that did not diverge.
fn curve_panels(records: &[Record<Cell, Outcome>], nets: &[&str]) -> Vec<Panel> {
    nets.iter()
        .map(|&net| {
            let mut series = Vec::new();
            for (regime, color) in [(Regime::SB, PALETTE[0]), (Regime::LB, PALETTE[1])] {
                let runs: Vec<_> =
                    runs(records, net, regime).into_iter().filter(|r| r.outcome.trained.finished()).collect();
                let Some(first) = runs.first() else { continue };
                let batch = first.config.train.batch_size;
                let len = runs.iter().map(|r| r.outcome.trained.curves.len()).min().unwrap_or(0);
                type Get = fn(&EpochMetrics) -> f64;
                for (which, dashed, get) in
                    [("train", true, (|m: &EpochMetrics| m.train_acc) as Get), ("test", false, |m| m.test_acc)]
                {
                    let at = |e: usize| runs.iter().map(|r| get(&r.outcome.trained.curves[e])).collect::<Vec<_>>();
                    series.push(Series {
                        label: format!("{regime:?} (batch {batch}) {which}"),
                        color,
                        dashed,
                        x: (0..len).map(|e| e as f64).collect(),
                        mean: (0..len).map(|e| mean(&at(e))).collect(),
                        std: (0..len).map(|e| std(&at(e))).collect(),
                    });
                }
            }
            let data = records.iter().find(|r| r.config.net == net).map(|r| r.config.data.name()).unwrap_or("?");
            Panel::new(format!("{net} on {data}"), "epoch", "accuracy (%)", series)
        })
        .collect()
}

/// The initialization and the protocol it belongs to, for Table 2's header.
fn protocol_phrase(train: &TrainConfig, norm: Option<BatchNormSettings>) -> String {
    let init = match train.init {
        Init::Torch => "PyTorch's initialization (weights and biases U(±1/√fan-in))",
        Init::Glorot => "Keras 1's Glorot-uniform initialization (biases zero)",
    };
    match Protocol::of(train, norm) {
        Some(Protocol::Torch) => format!("{init}: protocol `torch`"),
        Some(Protocol::Keras) => format!("{init}: protocol `keras` (Keskar et al.'s code)"),
        None => init.to_string(),
    }
}

/// How the accuracies were evaluated.
fn evaluation_phrase(train: &TrainConfig) -> String {
    match train.evaluation {
        BatchNormMode::Running => "evaluation in inference mode (batch norm on its running statistics)".into(),
        BatchNormMode::Batch => format!(
            "evaluation as the paper's code does it (`BatchNormalization(mode=2)`): batch norm normalizes each \
             evaluation batch of {} samples by its own statistics",
            train.eval_batch
        ),
    }
}
