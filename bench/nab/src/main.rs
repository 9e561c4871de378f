//! `nab`: run medic's detectors on the NAB corpus, score results, write the report.
//!
//! ```text
//! nab run    --detector NAME --out DIR     run a built-in detector, write NAB's results layout
//! nab score  --results DIR --detector NAME print the three profile scores
//! nab report                               run + score the built-ins, write bench/results/nab.md
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use medic_nab::report::{self, ReportOptions};
use medic_nab::scorer::{Benchmark, ProfileResult};
use medic_nab::{Error, builtin, runner};

const DEFAULT_NAB_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/datasets/nab");
const DEFAULT_REPORT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../results/nab.md");

#[derive(Parser)]
#[command(
    name = "nab",
    about = "NAB (Numenta Anomaly Benchmark) tools for medic"
)]
struct Cli {
    /// The NAB folder (data/, labels/, config/, SCOREBOARD-dev.md).
    #[arg(long, env = "NAB_DIR", default_value = DEFAULT_NAB_DIR, global = true)]
    nab_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a built-in detector over the corpus and write NAB's results layout.
    Run {
        /// Built-in detector: null, baseline_gaussian.
        #[arg(long)]
        detector: String,
        /// Results folder; files go to DIR/<detector>/<category>/<detector>_<name>.csv.
        #[arg(long)]
        out: PathBuf,
    },
    /// Score a detector's results (NAB layout) on the three profiles.
    Score {
        /// Results folder holding <detector>/<category>/<detector>_<name>.csv.
        #[arg(long)]
        results: PathBuf,
        #[arg(long)]
        detector: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run and score the built-in detectors; write the markdown report.
    Report {
        /// The markdown report to write.
        #[arg(long, default_value = DEFAULT_REPORT)]
        out: PathBuf,
        /// Where to write the built-ins' results layout [default: <tmp>/medic-nab-results].
        #[arg(long)]
        results: Option<PathBuf>,
    },
}

fn print_scores(detector: &str, results: &[ProfileResult]) {
    println!("detector {detector}");
    println!(
        "{:<20} {:>16} {:>12} {:>9}  {:>6} {:>7} {:>6}",
        "profile", "threshold", "raw", "score", "TP", "FP", "FN"
    );
    for r in results {
        println!(
            "{:<20} {:>16} {:>12.4} {:>9.4}  {:>6} {:>7} {:>6}",
            r.profile,
            r.threshold.to_string(),
            r.raw,
            r.score,
            r.counts.tp,
            r.counts.fp,
            r.counts.fn_
        );
    }
}

fn main_inner() -> Result<(), Error> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { detector, out } => {
            let factory = builtin::factory(&detector).ok_or_else(|| {
                Error::new(format!(
                    "unknown detector {detector:?}; built-ins: {}",
                    builtin::NAMES.join(", ")
                ))
            })?;
            let corpus = medic_nab::scorer::Corpus::load(&cli.nab_dir)?;
            let started = std::time::Instant::now();
            let (_, dir) = runner::run_and_write(&corpus, factory.as_ref(), &out)?;
            eprintln!(
                "wrote {} files ({} rows) to {} in {:.1} s",
                corpus.files.len(),
                corpus.row_count(),
                dir.display(),
                started.elapsed().as_secs_f64()
            );
        }
        Command::Score {
            results,
            detector,
            json,
        } => {
            let bench = Benchmark::load(&cli.nab_dir)?;
            let scored = bench.score_results(&results, &detector)?;
            if json {
                let text = serde_json::to_string_pretty(&serde_json::json!({
                    "detector": detector,
                    "files": bench.corpus.files.len(),
                    "windows": bench.corpus.window_count(),
                    "profiles": scored,
                }))
                .map_err(|e| Error::new(e.to_string()))?;
                println!("{text}");
            } else {
                print_scores(&detector, &scored);
            }
        }
        Command::Report { out, results } => {
            let args: Vec<String> = std::env::args().skip(1).collect();
            let command = format!(
                "nice -n 19 cargo run --release -p medic-nab --bin nab -- {}",
                args.join(" ")
            );
            let opts = ReportOptions {
                nab_dir: cli.nab_dir,
                results_dir: results
                    .unwrap_or_else(|| std::env::temp_dir().join("medic-nab-results")),
                out,
                command,
            };
            let r = report::generate(&opts)?;
            for s in &r.medic {
                print_scores(&s.detector, &s.results);
            }
            eprintln!(
                "wrote {} ({} files, {} windows) in {:.1} s",
                opts.out.display(),
                r.files,
                r.windows,
                r.seconds
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match main_inner() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nab: {e}");
            ExitCode::FAILURE
        }
    }
}
