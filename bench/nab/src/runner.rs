//! Runs a streaming detector over every file of the corpus, strictly
//! causally, and writes NAB's results layout (`NAB_SCORING.md` §10).
//!
//! Causality is structural: for each file a fresh detector is made (the
//! factory is told nothing about the file), and it is fed
//! `observe(t_ms, value)` one row at a time, in file order; the score it
//! returns for row `i` is recorded before row `i + 1` exists for it. The
//! detector never sees the windows, the labels, the file name or the
//! category, and every file is run with the same factory (one set of
//! parameters for the whole corpus).

use std::collections::HashSet;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::scorer::{Corpus, relative_key, walk_files};
use crate::{Error, Result};

/// A detector running over one series: fed one row at a time, it answers
/// an anomaly score in `[0, 1]` for that row (higher = more anomalous).
pub trait Streaming {
    fn observe(&mut self, t_ms: i64, value: f64) -> f64;
}

/// Makes a fresh [`Streaming`] detector for each file, always with the same
/// parameters.
pub trait DetectorFactory {
    /// The detector's name in the results layout (`results/<name>/…`).
    fn name(&self) -> &str;
    /// A new detector with no state, for the next file.
    fn new_for_file(&self) -> Box<dyn Streaming>;
}

/// Runs `factory` over every file of `corpus`, one row at a time. Returns
/// the scores in the order of `corpus.files`. A score outside `[0, 1]` (or
/// NaN) is an error, as in NAB's own runner.
pub fn run(corpus: &Corpus, factory: &dyn DetectorFactory) -> Result<Vec<Vec<f64>>> {
    let mut all = Vec::with_capacity(corpus.files.len());
    for file in &corpus.files {
        let mut detector = factory.new_for_file();
        let mut scores = Vec::with_capacity(file.len());
        for (i, (&t, &v)) in file.times_ms.iter().zip(&file.values).enumerate() {
            let a = detector.observe(t, v);
            if !(0.0..=1.0).contains(&a) {
                return Err(Error::new(format!(
                    "detector {:?} returned {a} for {} row {i}: scores must be in [0, 1]",
                    factory.name(),
                    file.key
                )));
            }
            scores.push(a);
        }
        all.push(scores);
    }
    Ok(all)
}

fn check_name(detector: &str) -> Result<()> {
    if detector.is_empty() || detector.starts_with('.') || detector.contains(['/', '\\', ',']) {
        return Err(Error::new(format!("bad detector name {detector:?}")));
    }
    Ok(())
}

/// The relative path (under `results/<detector>/`) of a data file's results.
fn result_key(category: &str, detector: &str, name: &str) -> String {
    if category.is_empty() {
        format!("{detector}_{name}.csv")
    } else {
        format!("{category}/{detector}_{name}.csv")
    }
}

/// Writes `<out_dir>/<detector>/<category>/<detector>_<name>.csv` for every
/// file, columns `timestamp,value,anomaly_score,label` (timestamp and value
/// copied from the data file, `label` 1 inside a window). Scores are written
/// in Rust's shortest round-trip form, so reading them back gives the same
/// doubles. Refuses to write into a folder holding other CSVs the scorer
/// would read. Returns `<out_dir>/<detector>`.
pub fn write_results(
    corpus: &Corpus,
    detector: &str,
    scores: &[Vec<f64>],
    out_dir: &Path,
) -> Result<PathBuf> {
    check_name(detector)?;
    if scores.len() != corpus.files.len() {
        return Err(Error::new(format!(
            "{} score series for {} files",
            scores.len(),
            corpus.files.len()
        )));
    }
    let det_dir = out_dir.join(detector);
    let ours: HashSet<String> = corpus
        .files
        .iter()
        .map(|f| result_key(&f.category, detector, &f.name))
        .collect();
    if det_dir.is_dir() {
        let mut existing = Vec::new();
        walk_files(&det_dir, &mut existing)?;
        for path in existing {
            let rel = relative_key(&det_dir, &path)?;
            let name = rel.rsplit('/').next().unwrap_or(&rel);
            if name.contains(".csv") && !name.ends_with("_scores.csv") && !ours.contains(&rel) {
                return Err(Error::new(format!(
                    "{} holds {rel}, which is not a result of this corpus; the scorer would \
                     read it. Remove it or choose another output folder.",
                    det_dir.display()
                )));
            }
        }
    }
    for (file, a) in corpus.files.iter().zip(scores) {
        if a.len() != file.len() {
            return Err(Error::new(format!(
                "{}: {} scores for {} rows",
                file.key,
                a.len(),
                file.len()
            )));
        }
        let path = det_dir.join(result_key(&file.category, detector, &file.name));
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| Error::new(format!("cannot create {}: {e}", parent.display())))?;
        }
        let io_err =
            |e: std::io::Error| Error::new(format!("cannot write {}: {e}", path.display()));
        let mut out = BufWriter::new(fs::File::create(&path).map_err(io_err)?);
        out.write_all(b"timestamp,value,anomaly_score,label\n")
            .map_err(io_err)?;
        let mut w = file.windows.iter().peekable();
        let rows = file.timestamps.iter().zip(&file.value_text).zip(a);
        for (i, ((timestamp, value), score)) in rows.enumerate() {
            while w.peek().is_some_and(|win| win.end < i) {
                w.next();
            }
            let label = u8::from(w.peek().is_some_and(|win| win.start <= i));
            writeln!(out, "{timestamp},{value},{score:?},{label}").map_err(io_err)?;
        }
        out.flush().map_err(io_err)?;
    }
    Ok(det_dir)
}

/// [`run`] then [`write_results`] under the factory's name.
pub fn run_and_write(
    corpus: &Corpus,
    factory: &dyn DetectorFactory,
    out_dir: &Path,
) -> Result<(Vec<Vec<f64>>, PathBuf)> {
    check_name(factory.name())?;
    let scores = run(corpus, factory)?;
    let dir = write_results(corpus, factory.name(), &scores, out_dir)?;
    Ok((scores, dir))
}

#[cfg(test)]
mod tests;
