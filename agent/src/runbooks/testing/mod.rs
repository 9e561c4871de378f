//! `medic test`: runbook tests. A test file (`<runbook>.test.yaml`, beside
//! the runbook) describes incident timelines — incidents firing, resolving,
//! acknowledged; executors answering; verify checks passing; or series
//! values fed to detectors — and what must happen: which steps run, in which
//! order, with which parameters, which guard rail holds what back, how the
//! runs end.
//!
//! Each case plays through the real engine, runner, guard rails and SQLite
//! store (in memory), so journal-based guards count as in production. Only
//! what touches the world is replaced ([`fakes`]): executors record each
//! call and answer as scripted, verify checks answer from the timeline.
//! Time is tokio's paused time ([`play`]): hours of back-offs, windows and
//! warm-ups play in milliseconds, the same way every time.
//!
//! | file | what |
//! |---|---|
//! | [`file`] | the format, and the checks that need the runbook |
//! | [`play`] | plays one case, collects what happened |
//! | [`fakes`] | recording executors, timeline checks |
//! | [`compare`] | expectations against what happened, and the diff |

pub mod compare;
pub mod fakes;
pub mod file;
pub mod play;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::{self, ConfigError, ConfigErrors};

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only cases whose name contains this.
    pub filter: Option<String>,
    /// Print what happened in every case, not only in failed ones.
    pub show: bool,
}

/// Counts over a run of `medic test`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Test files read.
    pub files: usize,
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed.
    pub failed: usize,
    /// Files that could not be read, parsed or checked (or paths not found).
    pub malformed: usize,
    /// Runbooks without a test file beside them.
    pub untested: Vec<PathBuf>,
}

impl Summary {
    /// Every case passed and every file was well-formed.
    pub fn ok(&self) -> bool {
        self.failed == 0 && self.malformed == 0
    }
}

/// The test file of a runbook file.
pub fn test_file_of(runbook: &Path) -> PathBuf {
    let name = runbook
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let stem = name
        .strip_suffix(".yaml")
        .or_else(|| name.strip_suffix(".yml"))
        .unwrap_or(name);
    runbook.with_file_name(format!("{stem}.test.yaml"))
}

/// The runbook file a test file tests.
pub fn runbook_of(test: &Path) -> Option<PathBuf> {
    let name = test.file_name()?.to_str()?;
    let stem = name.strip_suffix(".test.yaml")?;
    [".yaml", ".yml"]
        .iter()
        .map(|ext| test.with_file_name(format!("{stem}{ext}")))
        .find(|p| p.is_file())
}

fn is_test_file(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".test.yaml"))
}

/// A YAML file that looks like a runbook (a top-level `steps:`).
fn looks_like_runbook(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    (name.ends_with(".yaml") || name.ends_with(".yml"))
        && !is_test_file(p)
        && std::fs::read_to_string(p).is_ok_and(|t| t.lines().any(|l| l.starts_with("steps:")))
}

/// Test files under `paths` (files, or directories searched recursively),
/// runbooks found without one, and paths that do not exist.
pub fn discover(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<PathBuf>, Vec<PathBuf>) {
    fn walk(dir: &Path, tests: &mut Vec<PathBuf>, runbooks: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for p in entries {
            let hidden = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if hidden {
                continue;
            }
            if p.is_dir() {
                walk(&p, tests, runbooks);
            } else if is_test_file(&p) {
                tests.push(p);
            } else if looks_like_runbook(&p) {
                runbooks.push(p);
            }
        }
    }
    let (mut tests, mut runbooks, mut missing) = (Vec::new(), Vec::new(), Vec::new());
    for p in paths {
        if p.is_dir() {
            walk(p, &mut tests, &mut runbooks);
        } else if is_test_file(p) && p.is_file() {
            tests.push(p.clone());
        } else if p.is_file() {
            // A runbook: its tests.
            runbooks.push(p.clone());
            let t = test_file_of(p);
            if t.is_file() {
                tests.push(t);
            }
        } else {
            missing.push(p.clone());
        }
    }
    tests.dedup();
    let untested = runbooks
        .into_iter()
        .filter(|r| !test_file_of(r).is_file())
        .collect();
    (tests, untested, missing)
}

/// Run every test under `paths`, writing one line per case (and the
/// differences of failed ones) to `out`.
pub fn run(paths: &[PathBuf], opts: &Options, out: &mut dyn Write) -> Summary {
    let (tests, untested, missing) = discover(paths);
    let mut s = Summary {
        untested,
        ..Summary::default()
    };
    for m in missing {
        s.malformed += 1;
        let _ = writeln!(out, "{}: no such file or directory", m.display());
    }
    for t in tests {
        s.files += 1;
        run_file(&t, opts, out, &mut s);
    }
    for u in &s.untested {
        let _ = writeln!(
            out,
            "note: {} has no tests (expected {})",
            u.display(),
            test_file_of(u).display()
        );
    }
    let _ = writeln!(
        out,
        "\n{} cases: {} passed, {} failed; {} test files{}",
        s.passed + s.failed,
        s.passed,
        s.failed,
        s.files,
        if s.malformed > 0 {
            format!(", {} malformed", s.malformed)
        } else {
            String::new()
        }
    );
    s
}

/// Read, parse and check a test file and its runbook.
pub fn load(path: &Path) -> Result<(file::TestFile, crate::runbooks::Runbook), ConfigErrors> {
    let one = |message: String| {
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            message,
            snippet: None,
        }])
    };
    let text = std::fs::read_to_string(path).map_err(|e| one(format!("cannot read: {e}")))?;
    let tf: file::TestFile = config::parse_yaml(path, &text).map_err(|e| ConfigErrors(vec![e]))?;
    let Some(rb_path) = runbook_of(path) else {
        return Err(one(
            "no runbook beside this test file (a test file `x.test.yaml` tests `x.yaml`)".into(),
        ));
    };
    let rb = config::load_runbook(&rb_path)?;
    let errors = file::check(path, &text, &tf, &rb);
    if errors.is_empty() {
        Ok((tf, rb))
    } else {
        Err(ConfigErrors(errors))
    }
}

fn indent(text: &str, by: &str) -> String {
    text.lines()
        .map(|l| format!("{by}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn run_file(path: &Path, opts: &Options, out: &mut dyn Write, s: &mut Summary) {
    let (tf, rb) = match load(path) {
        Ok(x) => x,
        Err(e) => {
            s.malformed += 1;
            let _ = writeln!(out, "{e}");
            return;
        }
    };
    let _ = writeln!(out, "{} (runbook {})", path.display(), rb.name.value);
    for case in &tf.cases {
        if let Some(f) = &opts.filter
            && !case.name.value.contains(f.as_str())
        {
            continue;
        }
        let started = std::time::Instant::now();
        let (diffs, outcome) = match play::play(case, &rb) {
            Ok(o) => (compare::compare(&case.expect, &o), Some(o)),
            Err(e) => (vec![format!("could not play: {e}")], None),
        };
        let took = started.elapsed();
        let played = outcome.as_ref().map_or(0, |o| o.played);
        let timing = format!(
            "{} of timeline in {} ms",
            play::show_ms(played),
            took.as_millis()
        );
        if diffs.is_empty() {
            s.passed += 1;
            let _ = writeln!(out, "  ok      {}  ({timing})", case.name.value);
        } else {
            s.failed += 1;
            let _ = writeln!(
                out,
                "  FAILED  {} ({}:{})  ({timing})",
                case.name.value,
                path.display(),
                case.name.line
            );
            for d in &diffs {
                let _ = writeln!(out, "{}", indent(d, "          "));
            }
        }
        if let Some(o) = &outcome
            && (opts.show || !diffs.is_empty())
        {
            let _ = writeln!(out, "          what happened:");
            let _ = writeln!(
                out,
                "{}",
                indent(&compare::what_happened(o), "            ")
            );
        }
    }
}

#[cfg(test)]
mod tests;
