//! `asd`: evaluate medic's anomaly detectors on the ASD dataset.
//!
//! ```text
//! asd report [--data DIR] [--out FILE]   run every detector, write bench/results/asd.md
//! ```
//!
//! Every detector runs causally per entity: the train rows are history
//! (not scored), then each test row is scored before it is learnt. One
//! threshold per detector for all entities, chosen as the best pooled row
//! F1 (without point adjustment) on entities omi-1…6 and applied unchanged
//! to omi-7…12 (held out). The same with the threshold chosen on all 12
//! entities' labels is reported too, marked optimistic.

mod data;
mod detectors;
mod metrics;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};

use data::Entity;
use detectors::Run;
use metrics::{Counts, best_threshold, counts, early};

const DEFAULT_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/datasets/asd");
const DEFAULT_OUT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../results/asd.md");
/// Entities whose labels choose the threshold (the rest are held out).
const TUNE: std::ops::RangeInclusive<usize> = 1..=6;
/// A segment counts as detected early if flagged within its first rows.
const EARLY_ROWS: usize = 5;

#[derive(Parser)]
#[command(name = "asd", about = "ASD evaluation of medic's anomaly detectors")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every detector on all 12 entities and write the markdown report.
    Report {
        /// The ASD folder (omi-N_train.csv, omi-N_test.csv, interpretation_label/).
        #[arg(long, env = "ASD_DIR", default_value = DEFAULT_DATA)]
        data: PathBuf,
        /// The markdown report to write.
        #[arg(long, default_value = DEFAULT_OUT)]
        out: PathBuf,
    },
    /// Try PCA settings on the tuning entities (omi-1…6) only; print their
    /// best pooled F1. The held-out entities are not read.
    Sweep {
        #[arg(long, env = "ASD_DIR", default_value = DEFAULT_DATA)]
        data: PathBuf,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Report { data, out } => report(&data, &out),
        Command::Sweep { data } => sweep(&data),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("asd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The three scores of one detector over some entities at one threshold.
struct Eval {
    threshold: f64,
    raw: Counts,
    adjusted: Counts,
    early: (usize, usize),
}

fn evaluate(entities: &[&Entity], runs: &[&Run], threshold: f64) -> Eval {
    let mut eval = Eval {
        threshold,
        raw: Counts::default(),
        adjusted: Counts::default(),
        early: (0, 0),
    };
    for (e, r) in entities.iter().zip(runs) {
        let flags: Vec<bool> = r.scores.iter().map(|&s| s >= threshold).collect();
        eval.raw.add(counts(&flags, &e.labels, false));
        eval.adjusted.add(counts(&flags, &e.labels, true));
        let (found, all) = early(&flags, &e.labels, EARLY_ROWS);
        eval.early.0 += found;
        eval.early.1 += all;
    }
    eval
}

/// Threshold = best pooled row F1 on `tune`, evaluated on `on`.
fn choose_and_evaluate(
    entities: &[Entity],
    runs: &[Run],
    tune: impl Fn(usize) -> bool,
    on: impl Fn(usize) -> bool,
) -> Eval {
    let pairs: Vec<(&[f64], &[bool])> = entities
        .iter()
        .zip(runs)
        .enumerate()
        .filter(|(i, _)| tune(*i + 1))
        .map(|(_, (e, r))| (&r.scores[..], &e.labels[..]))
        .collect();
    let (threshold, _) = best_threshold(&pairs);
    let (es, rs): (Vec<&Entity>, Vec<&Run>) = entities
        .iter()
        .zip(runs)
        .enumerate()
        .filter(|(i, _)| on(*i + 1))
        .map(|(_, p)| p)
        .unzip();
    evaluate(&es, &rs, threshold)
}

/// Which-metric accuracy of the PCA contributions: for every fault
/// segment, at its highest-scoring row, the share of the |G| metrics at
/// fault found among the |G| largest contributions (HitRate@100 %), and
/// whether the largest contribution is a metric at fault; with the hit
/// rate a random ranking would get on average (|G| / 19).
fn interpretation(entities: &[Entity], runs: &[Run]) -> Option<(usize, f64, f64, f64)> {
    let (mut n, mut hit, mut top1, mut random) = (0, 0.0, 0.0, 0.0);
    for (e, r) in entities.iter().zip(runs) {
        let contributions = r.contributions.as_ref()?;
        for f in &e.faults {
            let end = f.end.min(r.scores.len().saturating_sub(1));
            let Some(row) = (f.start..=end).max_by(|&a, &b| r.scores[a].total_cmp(&r.scores[b]))
            else {
                continue;
            };
            let c = &contributions[row];
            let mut order: Vec<usize> = (0..c.len()).collect();
            order.sort_by(|&a, &b| c[b].total_cmp(&c[a]));
            let g = f.metrics.len();
            let found = order[..g.min(order.len())]
                .iter()
                .filter(|m| f.metrics.contains(m))
                .count();
            n += 1;
            hit += found as f64 / g as f64;
            top1 += f64::from(u8::from(f.metrics.contains(&order[0])));
            random += g as f64 / c.len() as f64;
        }
    }
    (n > 0).then(|| (n, hit / n as f64, top1 / n as f64, random / n as f64))
}

fn sweep(dir: &std::path::Path) -> Result<(), String> {
    use medic_detectors::anomaly::MultivariateConfig as C;
    let entities: Vec<Entity> = TUNE.map(|n| data::load(dir, n)).collect::<Result<_, _>>()?;
    let base = detectors::pca_config();
    let variants: [(&str, C); 8] = [
        ("pca (as reported)", base),
        (
            "normal_below 0.1",
            C {
                normal_below: 0.1,
                ..base
            },
        ),
        (
            "normal_below 0.2",
            C {
                normal_below: 0.2,
                ..base
            },
        ),
        (
            "frozen after train",
            C {
                refit_every: 1_000_000,
                reservoir: 8640,
                ..base
            },
        ),
        (
            "reservoir 4096",
            C {
                reservoir: 4096,
                ..base
            },
        ),
        (
            "quantile 0.999",
            C {
                quantile: 0.999,
                ..base
            },
        ),
        (
            "variance 0.95",
            C {
                variance: 0.95,
                ..base
            },
        ),
        (
            "3 components",
            C {
                max_components: 3,
                variance: 1.0,
                ..base
            },
        ),
    ];
    let print = |name: &str, runs: &[Run]| {
        let e = choose_and_evaluate(&entities, runs, |_| true, |_| true);
        println!(
            "{name:<20} th {:.4} F1 {:.3} F1-PA {:.3} early {}/{}",
            e.threshold,
            e.raw.f1(),
            e.adjusted.f1(),
            e.early.0,
            e.early.1
        );
    };
    let runs: Vec<Run> = entities
        .iter()
        .map(|e| detectors::run("zscore_max", e))
        .collect();
    print("zscore_max", &runs);
    for (name, cfg) in variants {
        let runs: Vec<Run> = entities.iter().map(|e| detectors::pca(e, cfg)).collect();
        print(name, &runs);
    }
    Ok(())
}

fn row(out: &mut String, name: &str, e: &Eval, seconds: f64) {
    let _ = writeln!(
        out,
        "| {name} | {:.4} | {:.3} | {:.3} | {}/{} = {:.3} | {} / {} / {} | {seconds:.1} s |",
        e.threshold,
        e.raw.f1(),
        e.adjusted.f1(),
        e.early.0,
        e.early.1,
        e.early.0 as f64 / e.early.1.max(1) as f64,
        e.raw.tp,
        e.raw.fp,
        e.raw.fn_,
    );
}

fn report(dir: &std::path::Path, out: &std::path::Path) -> Result<(), String> {
    let started = Instant::now();
    let entities: Vec<Entity> = (1..=12)
        .map(|n| data::load(dir, n))
        .collect::<Result<_, _>>()?;
    let mut results = Vec::new();
    for name in detectors::NAMES {
        let t = Instant::now();
        let runs: Vec<Run> = entities.iter().map(|e| detectors::run(name, e)).collect();
        let seconds = t.elapsed().as_secs_f64();
        eprintln!("{name}: {seconds:.1} s");
        results.push((name, runs, seconds));
    }
    let header = "| detector | threshold | F1 (no PA) | F1 (PA) | segments found in first 5 rows | TP / FP / FN rows | run time (12 entities) |\n|---|---:|---:|---:|---:|---:|---:|\n";
    let mut held_out = String::from(header);
    let mut tuning = String::from(header);
    let mut optimistic = String::from(header);
    for (name, runs, seconds) in &results {
        let e = choose_and_evaluate(
            &entities,
            runs,
            |i| TUNE.contains(&i),
            |i| !TUNE.contains(&i),
        );
        row(&mut held_out, name, &e, *seconds);
        let e = choose_and_evaluate(
            &entities,
            runs,
            |i| TUNE.contains(&i),
            |i| TUNE.contains(&i),
        );
        row(&mut tuning, name, &e, *seconds);
        let e = choose_and_evaluate(&entities, runs, |_| true, |_| true);
        row(&mut optimistic, name, &e, *seconds);
    }
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# ASD (application server dataset) — medic's detectors\n\n\
         Generated by `asd report` (crate `bench/asd`, package `medic-asd`); all 12 entities, \
         run + score took {:.0} s on a shared 2-core machine.\n\n\
         Reproduce (from the workspace root):\n\n\
         ```\nnice -n 19 cargo run --release -p medic-asd -- report\n```\n\n\
         Data: `/work/shared/datasets/asd` (12 entities omi-1…12, 19 metrics every 5 minutes). \
         Each detector runs causally per entity: the train rows are history (learnt, not \
         scored), then every test row is scored before it is learnt.\n\n\
         Scores, side by side: (1) row F1 without point adjustment; (2) row F1 with point \
         adjustment (a segment counts as fully found if any of its rows is flagged — this \
         inflates scores); (3) the share of labelled segments flagged within their first \
         {EARLY_ROWS} rows. Flagged = score ≥ threshold.\n\n\
         Threshold: **one per detector for all entities**, the value with the best pooled row \
         F1 (no point adjustment).\n",
        started.elapsed().as_secs_f64()
    );
    let _ = writeln!(
        md,
        "## Held out: threshold chosen on omi-1…6, scores on omi-7…12\n\n{held_out}"
    );
    let _ = writeln!(
        md,
        "The same thresholds on the tuning entities omi-1…6 themselves (where they were \
         chosen), to show how much the ranking of detectors changes between the two halves:\n\n\
         {tuning}"
    );
    let _ = writeln!(
        md,
        "## Optimistic: threshold chosen on the test labels of all 12, scores on all 12\n\n\
         Choosing the threshold on the labels being scored flatters every detector; shown for \
         comparison with papers that report best-F1.\n\n{optimistic}"
    );
    let _ = writeln!(
        md,
        "Reading the tables: no detector wins on both halves. On omi-1…6 the PCA and \
         clustering detectors beat the z-score baseline on row F1; on the held-out omi-7…12 \
         the baseline is best. The per-metric models (ensemble, clustering) flag most \
         segments within 5 rows, but with many false-positive rows, which is why their \
         point-adjusted F1 stays low.\n"
    );
    let _ = writeln!(md, "## Detectors\n");
    for name in detectors::NAMES {
        let _ = writeln!(md, "* `{name}`: {}", detectors::describe(name));
    }
    let _ = writeln!(
        md,
        "\nThe PCA settings were set before any run, then checked with \
         `cargo run --release -p medic-asd -- sweep`, which reads omi-1…6 only (reservoir \
         size, the bound for learning a row, a model frozen after the train rows, the \
         reference quantile, the variance kept, 3 components): the pooled F1 on omi-1…6 \
         ranged from about 0.15 to 0.20 and none was clearly better, so they were kept. The \
         univariate models use the library defaults."
    );
    if let Some((_, runs, _)) = results.iter().find(|r| r.0 == "pca")
        && let Some((n, hit, top1, random)) = interpretation(&entities, runs)
    {
        let _ = writeln!(
            md,
            "\n## Which metric is at fault (PCA contributions)\n\n\
             For each of the {n} segments of `interpretation_label/`, at the segment's \
             highest-scoring row, the metrics ranked by contribution: \
             HitRate@100% (share of the |G| metrics at fault among the top |G|) = {hit:.3}; \
             the top metric is at fault in {:.1} % of segments. A random ranking would give \
             HitRate@100% = {random:.3} on average (|G| / 19): many segments have most of the \
             19 metrics at fault, so this baseline is high.",
            100.0 * top1
        );
    }
    let _ = writeln!(
        md,
        "\nNo published ASD numbers are quoted: neither the dataset's README nor \
         `ANCHORS.md` gives any."
    );
    std::fs::write(out, md).map_err(|e| format!("{}: {e}", out.display()))?;
    eprintln!("wrote {}", out.display());
    Ok(())
}
