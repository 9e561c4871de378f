//! The NAB scorer, re-implemented from `NAB_SCORING.md` (the section numbers
//! below refer to it), not from NAB's Python.
//!
//! * [`Corpus`]: the data files (`data/<category>/<name>.csv`) and their
//!   anomaly windows (`labels/combined_windows.json`), windows turned into
//!   row indices (§1, §2).
//! * [`load_profiles`]: `config/profiles.json` (§5).
//! * [`FileLayout`]: per-row weights σ and window tags of one file (§3, §4).
//! * [`optimise_thresholds`]: one threshold per profile for the whole corpus,
//!   by the exhaustive sweep of §7 (one sort, then running sums).
//! * [`score_at`]: the raw score and row counts at a fixed threshold (§6, §8).
//! * [`Benchmark`]: all of the above plus normalisation against the null and
//!   perfect detectors (§9); reads detector outputs in NAB's results layout
//!   (§10) with [`load_results`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::time::parse_timestamp_ms;
use crate::{Error, Result, read_text};

/// The three NAB profiles, in the order NAB reports them.
pub const PROFILE_NAMES: [&str; 3] = ["standard", "reward_low_FP_rate", "reward_low_FN_rate"];

/// The candidate threshold meaning "no detections at all" (§7).
pub const NO_DETECTION_THRESHOLD: f64 = 1.1;

/// The constant score of NAB's null detector (§9).
pub const NULL_DETECTOR_SCORE: f64 = 0.5;

const NO_WINDOW: u32 = u32::MAX;

// ---------------------------------------------------------------- §3, §4

/// The scaled sigmoid f(y) of §4, in its sigmoid form (bit-identical to NAB):
/// −1 for y > 3, else 2/(1 + e^{5y}) − 1.
pub fn scaled_sigmoid(y: f64) -> f64 {
    if y > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * y).exp()) - 1.0
    }
}

/// Number of leading rows left out of scoring for a file of `n` rows (§3):
/// rows `i` with `i < min(floor(0.15·n), 0.15·5000)`, computed in doubles.
pub fn probationary_rows(n: usize) -> usize {
    let p = (0.15 * n as f64).floor().min(0.15 * 5000.0);
    (p.ceil() as usize).min(n)
}

/// `100 · (raw − null) / (perfect − null)` (§9).
pub fn normalise(raw: f64, null_raw: f64, perfect_raw: f64) -> f64 {
    100.0 * (raw - null_raw) / (perfect_raw - null_raw)
}

// ---------------------------------------------------------------- §5

/// The cost weights of one application profile (§5). `tnWeight` is unused.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    pub name: String,
    pub tp_weight: f64,
    pub fp_weight: f64,
    pub fn_weight: f64,
}

/// Reads `config/profiles.json`. The order is [`PROFILE_NAMES`] first, then
/// any other profile alphabetically.
pub fn load_profiles(path: &Path) -> Result<Vec<Profile>> {
    #[derive(Deserialize)]
    struct Entry {
        #[serde(rename = "CostMatrix")]
        cost: Cost,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Cost {
        tp_weight: f64,
        fp_weight: f64,
        fn_weight: f64,
    }
    let text = read_text(path)?;
    let mut raw: BTreeMap<String, Entry> =
        serde_json::from_str(&text).map_err(|e| Error::new(format!("{}: {e}", path.display())))?;
    let mut names: Vec<String> = PROFILE_NAMES
        .iter()
        .filter(|n| raw.contains_key(**n))
        .map(|n| n.to_string())
        .collect();
    names.extend(
        raw.keys()
            .filter(|k| !PROFILE_NAMES.contains(&k.as_str()))
            .cloned(),
    );
    if names.is_empty() {
        return Err(Error::new(format!("{}: no profiles", path.display())));
    }
    Ok(names
        .into_iter()
        .map(|name| {
            let c = raw.remove(&name).expect("listed above").cost;
            Profile {
                name,
                tp_weight: c.tp_weight,
                fp_weight: c.fp_weight,
                fn_weight: c.fn_weight,
            }
        })
        .collect())
}

// ---------------------------------------------------------------- §1, §2

/// An anomaly window as row indices of its file, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: usize,
    pub end: usize,
}

/// One data file of the corpus.
#[derive(Debug, Clone)]
pub struct DataFile {
    /// `"<category>/<name>.csv"`, as in the windows file.
    pub key: String,
    /// `"<category>"` (the folder under `data/`).
    pub category: String,
    /// `"<name>"` (file name without `.csv`).
    pub name: String,
    /// The `timestamp` column, as written in the file.
    pub timestamps: Vec<String>,
    /// The `timestamp` column as Unix milliseconds (UTC).
    pub times_ms: Vec<i64>,
    /// The `value` column, as written in the file.
    pub value_text: Vec<String>,
    /// The `value` column as numbers.
    pub values: Vec<f64>,
    /// Anomaly windows as row indices, sorted, not overlapping.
    pub windows: Vec<Window>,
}

impl DataFile {
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Whether row `i` lies inside an anomaly window (the `label` column).
    pub fn in_window(&self, i: usize) -> bool {
        self.windows.iter().any(|w| w.start <= i && i <= w.end)
    }
}

/// The data files of a NAB folder and their windows. Files are sorted by key.
#[derive(Debug, Clone)]
pub struct Corpus {
    pub files: Vec<DataFile>,
    index: HashMap<String, usize>,
}

impl Corpus {
    /// Loads `<nab_dir>/data/**.csv` and `<nab_dir>/labels/combined_windows.json`.
    pub fn load(nab_dir: &Path) -> Result<Corpus> {
        if !nab_dir.is_dir() {
            return Err(Error::new(format!(
                "NAB dataset folder {} not found (set NAB_DIR or --nab-dir)",
                nab_dir.display()
            )));
        }
        Corpus::load_parts(
            &nab_dir.join("data"),
            &nab_dir.join("labels").join("combined_windows.json"),
        )
    }

    /// Loads every `*.csv` under `data_dir` and the windows file. Every data
    /// file must have an entry in the windows file (possibly `[]`), and every
    /// entry of the windows file must have a data file.
    pub fn load_parts(data_dir: &Path, windows_path: &Path) -> Result<Corpus> {
        let windows_text = read_text(windows_path)?;
        let mut windows: BTreeMap<String, Vec<[String; 2]>> =
            serde_json::from_str(&windows_text)
                .map_err(|e| Error::new(format!("{}: {e}", windows_path.display())))?;

        let mut paths = Vec::new();
        walk_files(data_dir, &mut paths)?;
        let mut files = Vec::new();
        for path in paths {
            let key = relative_key(data_dir, &path)?;
            if !key.ends_with(".csv") {
                continue;
            }
            let mut file = read_data_file(&path, &key)?;
            let Some(spans) = windows.remove(&key) else {
                return Err(Error::new(format!(
                    "{}: data file {key} has no entry in the windows file",
                    windows_path.display()
                )));
            };
            file.windows = match_windows(&file, &spans)
                .map_err(|e| Error::new(format!("{}: {key}: {e}", windows_path.display())))?;
            files.push(file);
        }
        if let Some(extra) = windows.keys().next() {
            return Err(Error::new(format!(
                "{}: {} windows-file entr{} without a data file under {}, e.g. {extra}",
                windows_path.display(),
                windows.len(),
                if windows.len() == 1 { "y" } else { "ies" },
                data_dir.display()
            )));
        }
        if files.is_empty() {
            return Err(Error::new(format!(
                "no data files under {}",
                data_dir.display()
            )));
        }
        Ok(Corpus::from_files(files))
    }

    /// Builds a corpus from files already in memory (tests, synthetic data).
    pub fn from_files(mut files: Vec<DataFile>) -> Corpus {
        files.sort_by(|a, b| a.key.cmp(&b.key));
        let index = files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.key.clone(), i))
            .collect();
        Corpus { files, index }
    }

    /// The position in [`Corpus::files`] of `"<category>/<name>.csv"`.
    pub fn position(&self, key: &str) -> Option<usize> {
        self.index.get(key).copied()
    }

    /// Total number of anomaly windows (W of §9).
    pub fn window_count(&self) -> usize {
        self.files.iter().map(|f| f.windows.len()).sum()
    }

    /// Total number of rows.
    pub fn row_count(&self) -> usize {
        self.files.iter().map(DataFile::len).sum()
    }
}

/// Every regular file under `dir`, recursively, sorted.
pub(crate) fn walk_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::new(format!("cannot list {}: {e}", dir.display())))?;
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::new(format!("cannot list {}: {e}", dir.display())))?;
        paths.push(entry.path());
    }
    paths.sort();
    for path in paths {
        if path.is_dir() {
            walk_files(&path, out)?;
        } else if path.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

/// `path` relative to `root`, with `/` separators.
pub(crate) fn relative_key(root: &Path, path: &Path) -> Result<String> {
    let rel = path.strip_prefix(root).map_err(|_| {
        Error::new(format!(
            "{} is not under {}",
            path.display(),
            root.display()
        ))
    })?;
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    Ok(parts.join("/"))
}

/// Splits a CSV header into trimmed column names.
fn header_columns(line: &str) -> Vec<&str> {
    line.trim_start_matches('\u{feff}')
        .trim_end_matches('\r')
        .split(',')
        .map(str::trim)
        .collect()
}

fn column(columns: &[&str], name: &str, path: &Path) -> Result<usize> {
    columns.iter().position(|c| *c == name).ok_or_else(|| {
        Error::new(format!(
            "{}: no `{name}` column in header {:?}",
            path.display(),
            columns.join(",")
        ))
    })
}

fn read_data_file(path: &Path, key: &str) -> Result<DataFile> {
    let text = read_text(path)?;
    let mut lines = text.lines();
    let header = header_columns(lines.next().unwrap_or(""));
    let ts_col = column(&header, "timestamp", path)?;
    let val_col = column(&header, "value", path)?;
    let (category, file_name) = match key.rsplit_once('/') {
        Some((c, f)) => (c.to_string(), f),
        None => (String::new(), key),
    };
    let name = file_name
        .strip_suffix(".csv")
        .unwrap_or(file_name)
        .to_string();
    let mut file = DataFile {
        key: key.to_string(),
        category,
        name,
        timestamps: Vec::new(),
        times_ms: Vec::new(),
        value_text: Vec::new(),
        values: Vec::new(),
        windows: Vec::new(),
    };
    for (lineno, line) in lines.enumerate() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let at = || format!("{}:{}", path.display(), lineno + 2);
        let fields: Vec<&str> = line.split(',').collect();
        let (Some(ts), Some(val)) = (fields.get(ts_col), fields.get(val_col)) else {
            return Err(Error::new(format!("{}: too few columns", at())));
        };
        let (ts, val) = (ts.trim(), val.trim());
        let t = parse_timestamp_ms(ts).map_err(|e| Error::new(format!("{}: {e}", at())))?;
        let v: f64 = val
            .parse()
            .map_err(|_| Error::new(format!("{}: bad value {val:?}", at())))?;
        file.timestamps.push(ts.to_string());
        file.times_ms.push(t);
        file.value_text.push(val.to_string());
        file.values.push(v);
    }
    Ok(file)
}

/// Turns `[start, end]` timestamps into row indices: the first row whose
/// timestamp equals each end (§2). Windows are sorted and must not overlap.
fn match_windows(file: &DataFile, spans: &[[String; 2]]) -> Result<Vec<Window>> {
    let mut first_row: HashMap<i64, usize> = HashMap::with_capacity(file.len());
    for (i, &t) in file.times_ms.iter().enumerate() {
        first_row.entry(t).or_insert(i);
    }
    let find = |text: &str| -> Result<usize> {
        let t = parse_timestamp_ms(text)?;
        first_row.get(&t).copied().ok_or_else(|| {
            Error::new(format!(
                "window edge {text:?} is not a timestamp of the file"
            ))
        })
    };
    let mut windows = Vec::with_capacity(spans.len());
    for [start, end] in spans {
        let w = Window {
            start: find(start)?,
            end: find(end)?,
        };
        if w.start > w.end {
            return Err(Error::new(format!(
                "window [{start}, {end}] ends before it starts"
            )));
        }
        windows.push(w);
    }
    windows.sort_by_key(|w| w.start);
    check_windows(file.len(), &windows)?;
    Ok(windows)
}

fn check_windows(n: usize, windows: &[Window]) -> Result<()> {
    for (k, w) in windows.iter().enumerate() {
        if w.start > w.end || w.end >= n {
            return Err(Error::new(format!(
                "window rows [{}, {}] invalid for {n} rows",
                w.start, w.end
            )));
        }
        if k > 0 && windows[k - 1].end >= w.start {
            return Err(Error::new(format!(
                "windows rows [{}, {}] and [{}, {}] overlap or are out of order",
                windows[k - 1].start,
                windows[k - 1].end,
                w.start,
                w.end
            )));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- §10

/// Reads a detector's outputs from NAB's results layout:
/// `<results_dir>/<detector>/<category>/<detector>_<name>.csv`, one per data
/// file, column `anomaly_score` (by name), paired with the data rows by
/// position. Every file under `<results_dir>/<detector>/` whose name contains
/// `.csv` is read except `*_scores.csv`; a file that maps to no data file, or
/// a data file without results, is an error. Returns the scores in the
/// order of [`Corpus::files`].
pub fn load_results(corpus: &Corpus, results_dir: &Path, detector: &str) -> Result<Vec<Vec<f64>>> {
    let det_dir = results_dir.join(detector);
    if !det_dir.is_dir() {
        return Err(Error::new(format!(
            "no results folder {} for detector {detector:?}",
            det_dir.display()
        )));
    }
    let mut paths = Vec::new();
    walk_files(&det_dir, &mut paths)?;
    let prefix = format!("{detector}_");
    let mut scores: Vec<Option<Vec<f64>>> = vec![None; corpus.files.len()];
    for path in paths {
        let rel = relative_key(&det_dir, &path)?;
        let (dir, file_name) = match rel.rsplit_once('/') {
            Some((d, f)) => (Some(d), f),
            None => (None, rel.as_str()),
        };
        if !file_name.contains(".csv") || file_name.ends_with("_scores.csv") {
            continue;
        }
        let Some(stripped) = file_name.strip_prefix(&prefix) else {
            return Err(Error::new(format!(
                "{}: result file name does not start with {prefix:?}",
                path.display()
            )));
        };
        let key = match dir {
            Some(d) => format!("{d}/{stripped}"),
            None => stripped.to_string(),
        };
        let Some(idx) = corpus.position(&key) else {
            return Err(Error::new(format!(
                "{}: maps to {key}, which is not a data file of the corpus (stray CSV?)",
                path.display()
            )));
        };
        if scores[idx].is_some() {
            return Err(Error::new(format!(
                "{}: second result file for {key}",
                path.display()
            )));
        }
        scores[idx] = Some(read_anomaly_scores(&path, corpus.files[idx].len())?);
    }
    let missing: Vec<&str> = corpus
        .files
        .iter()
        .zip(&scores)
        .filter(|(_, s)| s.is_none())
        .map(|(f, _)| f.key.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(Error::new(format!(
            "{}: no results for {} data file(s): {}",
            det_dir.display(),
            missing.len(),
            missing.join(", ")
        )));
    }
    Ok(scores.into_iter().map(|s| s.expect("checked")).collect())
}

fn read_anomaly_scores(path: &Path, expected_rows: usize) -> Result<Vec<f64>> {
    let text = read_text(path)?;
    let mut lines = text.lines();
    let header = header_columns(lines.next().unwrap_or(""));
    let col = column(&header, "anomaly_score", path)?;
    let mut out = Vec::with_capacity(expected_rows);
    for (lineno, line) in lines.enumerate() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let field = line.split(',').nth(col).map(str::trim).ok_or_else(|| {
            Error::new(format!(
                "{}:{}: too few columns",
                path.display(),
                lineno + 2
            ))
        })?;
        let a: f64 = field.parse().map_err(|_| {
            Error::new(format!(
                "{}:{}: bad anomaly_score {field:?}",
                path.display(),
                lineno + 2
            ))
        })?;
        if !a.is_finite() {
            return Err(Error::new(format!(
                "{}:{}: anomaly_score {field:?} is not a finite number",
                path.display(),
                lineno + 2
            )));
        }
        out.push(a);
    }
    if out.len() != expected_rows {
        return Err(Error::new(format!(
            "{}: {} rows, but the data file has {expected_rows}",
            path.display(),
            out.len()
        )));
    }
    Ok(out)
}

// ---------------------------------------------------------------- §3, §4: per-row weights

/// Per-row weights of one file: for each row, f(y) of §4 (before the profile
/// weights) and the window it belongs to, plus the probationary length.
#[derive(Debug, Clone)]
pub struct FileLayout {
    n: usize,
    probation: usize,
    windows: usize,
    /// f(y) for rows inside a window; f(y) (or −1) for rows outside.
    fy: Vec<f64>,
    /// Index of the row's window in this file, or `NO_WINDOW`.
    win: Vec<u32>,
}

impl FileLayout {
    /// The layout of a file of `n` rows with these windows (row indices,
    /// both ends included) and the first `probation` rows left out of scoring.
    pub fn new(n: usize, windows: &[Window], probation: usize) -> Result<FileLayout> {
        let mut windows = windows.to_vec();
        windows.sort_by_key(|w| w.start);
        check_windows(n, &windows)?;
        if windows.len() >= NO_WINDOW as usize {
            return Err(Error::new("too many windows"));
        }
        let mut fy = Vec::with_capacity(n);
        let mut win = Vec::with_capacity(n);
        let mut next = 0usize; // first window that has not ended before row i
        let mut previous: Option<Window> = None; // most recent window ended before i
        for i in 0..n {
            while next < windows.len() && windows[next].end < i {
                previous = Some(windows[next]);
                next += 1;
            }
            match windows.get(next) {
                Some(w) if w.start <= i => {
                    // §4.1: inside the window; y from −1 up to −1/w.
                    let width = (w.end - w.start + 1) as f64;
                    let y = -((w.end - i + 1) as f64) / width;
                    fy.push(scaled_sigmoid(y));
                    win.push(next as u32);
                }
                _ => {
                    match previous {
                        // §4.3: after a window; note w − 1 here.
                        Some(p) => {
                            let y = (i - p.end) as f64 / (p.end - p.start) as f64;
                            fy.push(scaled_sigmoid(y));
                        }
                        // §4.2: no window has ended yet in this file.
                        None => fy.push(-1.0),
                    }
                    win.push(NO_WINDOW);
                }
            }
        }
        Ok(FileLayout {
            n,
            probation: probation.min(n),
            windows: windows.len(),
            fy,
            win,
        })
    }

    /// The layout NAB uses for a corpus file (probation of §3).
    pub fn for_file(file: &DataFile) -> Result<FileLayout> {
        FileLayout::new(file.len(), &file.windows, probationary_rows(file.len()))
    }

    pub fn rows(&self) -> usize {
        self.n
    }

    pub fn probation(&self) -> usize {
        self.probation
    }

    pub fn window_count(&self) -> usize {
        self.windows
    }

    /// σ_i of §4 for a profile (computed for probationary rows too).
    pub fn sigma(&self, i: usize, profile: &Profile) -> f64 {
        if self.win[i] == NO_WINDOW {
            self.fy[i] * profile.fp_weight
        } else {
            profile.tp_weight * self.fy[i] / scaled_sigmoid(-1.0)
        }
    }
}

// ---------------------------------------------------------------- §6, §8: fixed threshold

/// Row counts of §6 (information only; scorable rows only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub tp: usize,
    pub fp: usize,
    pub tn: usize,
    #[serde(rename = "fn")]
    pub fn_: usize,
}

/// Raw score and counts at one threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Outcome {
    pub threshold: f64,
    pub raw: f64,
    pub counts: Counts,
}

fn check_shapes(layouts: &[FileLayout], scores: &[Vec<f64>]) -> Result<()> {
    if layouts.len() != scores.len() {
        return Err(Error::new(format!(
            "{} score series for {} files",
            scores.len(),
            layouts.len()
        )));
    }
    for (k, (l, s)) in layouts.iter().zip(scores).enumerate() {
        if l.n != s.len() {
            return Err(Error::new(format!(
                "file #{k}: {} scores for {} rows",
                s.len(),
                l.n
            )));
        }
        if let Some(i) = s.iter().position(|a| !a.is_finite()) {
            return Err(Error::new(format!(
                "file #{k}: score of row {i} is not finite"
            )));
        }
    }
    Ok(())
}

/// S(θ) of §6: per file, the best σ of each window's detections (or −A_FN)
/// plus the σ of every detection outside windows; summed over files (§8).
/// A row is a detection when it is scorable and `a ≥ θ`.
pub fn score_at(
    layouts: &[FileLayout],
    scores: &[Vec<f64>],
    profile: &Profile,
    threshold: f64,
) -> Result<Outcome> {
    check_shapes(layouts, scores)?;
    let mut raw = 0.0;
    let mut counts = Counts::default();
    let mut best: Vec<f64> = Vec::new();
    for (layout, a) in layouts.iter().zip(scores) {
        best.clear();
        best.resize(layout.windows, -profile.fn_weight);
        let mut fp_sum = 0.0;
        for (i, &ai) in a.iter().enumerate().skip(layout.probation) {
            let detected = ai >= threshold;
            let w = layout.win[i];
            match (w == NO_WINDOW, detected) {
                (true, true) => {
                    counts.fp += 1;
                    fp_sum += layout.sigma(i, profile);
                }
                (true, false) => counts.tn += 1,
                (false, true) => {
                    counts.tp += 1;
                    let s = layout.sigma(i, profile);
                    let c = &mut best[w as usize];
                    if s > *c {
                        *c = s;
                    }
                }
                (false, false) => counts.fn_ += 1,
            }
        }
        let file_score = best.iter().fold(fp_sum, |acc, c| acc + c);
        raw += file_score;
    }
    Ok(Outcome {
        threshold,
        raw,
        counts,
    })
}

// ---------------------------------------------------------------- §7: threshold optimisation

/// The threshold reported for "no detections": 1.1, or just above the
/// largest score if some score reaches 1.1.
fn no_detection_threshold(max_score: Option<f64>) -> f64 {
    match max_score {
        Some(m) if m >= NO_DETECTION_THRESHOLD => m.next_up(),
        _ => NO_DETECTION_THRESHOLD,
    }
}

/// The exhaustive sweep of §7, for every profile at once: pool the scorable
/// rows of all files, sort them once by score (highest first), and walk the
/// groups of equal scores keeping running sums (FP σ's, and the best σ of
/// each window so far). Candidates are "no detections" (1.1) and every
/// distinct score; the maximum wins, ties going to the highest threshold.
/// O(N log N) for N scorable rows. Returns `(threshold, raw)` per profile;
/// the raw score is that of the running sums (use [`score_at`] for the
/// directly summed figure).
pub fn optimise_thresholds(
    layouts: &[FileLayout],
    scores: &[Vec<f64>],
    profiles: &[Profile],
) -> Result<Vec<(f64, f64)>> {
    check_shapes(layouts, scores)?;
    struct Row {
        a: f64,
        fy: f64,
        win: u32,
    }
    let total_rows: usize = layouts.iter().map(|l| l.n - l.probation).sum();
    let mut pool: Vec<Row> = Vec::with_capacity(total_rows);
    let mut base = 0usize;
    for (layout, a) in layouts.iter().zip(scores) {
        for (i, &ai) in a.iter().enumerate().skip(layout.probation) {
            let w = layout.win[i];
            pool.push(Row {
                a: ai,
                fy: layout.fy[i],
                win: if w == NO_WINDOW {
                    NO_WINDOW
                } else {
                    (base + w as usize) as u32
                },
            });
        }
        base += layout.windows;
    }
    let window_total = base;
    pool.sort_by(|x, y| y.a.total_cmp(&x.a));
    let f_neg1 = scaled_sigmoid(-1.0);

    let mut out = Vec::with_capacity(profiles.len());
    let mut best_in_window = vec![0.0; window_total];
    for p in profiles {
        best_in_window.fill(-p.fn_weight);
        let mut window_sum = -p.fn_weight * window_total as f64;
        let mut fp_sum = 0.0;
        let mut best_threshold = no_detection_threshold(pool.first().map(|r| r.a));
        let mut best_raw = fp_sum + window_sum;
        let mut i = 0;
        while i < pool.len() {
            let a = pool[i].a;
            while i < pool.len() && pool[i].a == a {
                let r = &pool[i];
                if r.win == NO_WINDOW {
                    fp_sum += r.fy * p.fp_weight;
                } else {
                    let s = p.tp_weight * r.fy / f_neg1;
                    let c = &mut best_in_window[r.win as usize];
                    if s > *c {
                        window_sum += s - *c;
                        *c = s;
                    }
                }
                i += 1;
            }
            let raw = fp_sum + window_sum;
            if raw > best_raw {
                best_raw = raw;
                best_threshold = a;
            }
        }
        out.push((best_threshold, best_raw));
    }
    Ok(out)
}

// ---------------------------------------------------------------- §9: the benchmark

/// One profile's result for a detector.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileResult {
    pub profile: String,
    /// The optimal threshold (exhaustive sweep, §7).
    pub threshold: f64,
    /// S at that threshold, summed directly (§6, §8).
    pub raw: f64,
    /// The null detector's raw score at its own optimal threshold.
    pub null_raw: f64,
    /// W · A_TP.
    pub perfect_raw: f64,
    /// The normalised NAB score (§9).
    pub score: f64,
    pub counts: Counts,
}

/// A loaded NAB folder, ready to score detector outputs.
#[derive(Debug, Clone)]
pub struct Benchmark {
    pub corpus: Corpus,
    pub profiles: Vec<Profile>,
    layouts: Vec<FileLayout>,
    null_raw: Vec<f64>,
}

impl Benchmark {
    /// Loads `data/`, `labels/combined_windows.json` and `config/profiles.json`.
    pub fn load(nab_dir: &Path) -> Result<Benchmark> {
        let corpus = Corpus::load(nab_dir)?;
        let profiles = load_profiles(&nab_dir.join("config").join("profiles.json"))?;
        Benchmark::new(corpus, profiles)
    }

    /// Prepares the per-row weights and scores the null detector (constant
    /// 0.5, optimised like any detector) for the normalisation.
    pub fn new(corpus: Corpus, profiles: Vec<Profile>) -> Result<Benchmark> {
        let layouts = corpus
            .files
            .iter()
            .map(|f| FileLayout::for_file(f).map_err(|e| Error::new(format!("{}: {e}", f.key))))
            .collect::<Result<Vec<_>>>()?;
        let null_scores: Vec<Vec<f64>> = corpus
            .files
            .iter()
            .map(|f| vec![NULL_DETECTOR_SCORE; f.len()])
            .collect();
        let thresholds = optimise_thresholds(&layouts, &null_scores, &profiles)?;
        let null_raw = profiles
            .iter()
            .zip(&thresholds)
            .map(|(p, &(t, _))| score_at(&layouts, &null_scores, p, t).map(|o| o.raw))
            .collect::<Result<Vec<_>>>()?;
        Ok(Benchmark {
            corpus,
            profiles,
            layouts,
            null_raw,
        })
    }

    pub fn layouts(&self) -> &[FileLayout] {
        &self.layouts
    }

    /// The null detector's raw score per profile (same order as `profiles`).
    pub fn null_raw(&self) -> &[f64] {
        &self.null_raw
    }

    /// Optimises one threshold per profile and normalises. `scores` holds
    /// one series per file, in the order of `corpus.files`.
    pub fn score(&self, scores: &[Vec<f64>]) -> Result<Vec<ProfileResult>> {
        let thresholds = optimise_thresholds(&self.layouts, scores, &self.profiles)?;
        let windows = self.corpus.window_count() as f64;
        self.profiles
            .iter()
            .zip(&thresholds)
            .zip(&self.null_raw)
            .map(|((p, &(threshold, _)), &null_raw)| {
                let o = score_at(&self.layouts, scores, p, threshold)?;
                let perfect_raw = windows * p.tp_weight;
                Ok(ProfileResult {
                    profile: p.name.clone(),
                    threshold,
                    raw: o.raw,
                    null_raw,
                    perfect_raw,
                    score: normalise(o.raw, null_raw, perfect_raw),
                    counts: o.counts,
                })
            })
            .collect()
    }

    /// Reads `<results_dir>/<detector>/…` (§10) and scores it.
    pub fn score_results(&self, results_dir: &Path, detector: &str) -> Result<Vec<ProfileResult>> {
        let scores = load_results(&self.corpus, results_dir, detector)?;
        self.score(&scores)
    }
}

#[cfg(test)]
mod tests;
