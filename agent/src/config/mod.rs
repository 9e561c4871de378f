//! Configuration: `medic.yaml` and the runbook files, as typed serde structs
//! with unknown fields rejected. The JSON Schema editors use is generated from
//! the same structs (`medic schema`).
//!
//! Loading never half-applies: [`load`] returns either a complete, validated
//! [`Loaded`] or every error found, each with file, line and column.

pub mod duration;
pub mod spanned;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::detectors::DetectorConfig;
use crate::executors::ActionConfig;
use crate::runbooks::{Runbook, Step};
use crate::series::selector::Selector;
use crate::services::ServiceConfig;
use crate::sources::{SourceConfig, SourceKind};
use spanned::Spanned;

/// `medic.yaml`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MedicConfig {
    /// Address of the HTTP API, console and `/metrics`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Where state lives (the store, service pidfiles and logs). Relative to this file.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Where incidents, the journal and on-call state are kept: the embedded
    /// SQLite database in `state_dir` (default), or `kind: etcd`.
    #[serde(default)]
    pub store: crate::stores::StoreConfig,
    /// Directory of runbook files (`*.yaml`). Relative to this file.
    #[serde(default = "default_runbooks")]
    pub runbooks: PathBuf,
    /// Record what runbooks would do, without doing it.
    #[serde(default)]
    pub dry_run: bool,
    /// Processes medic starts and keeps (restartable by `kind: restart` steps).
    #[serde(default)]
    pub services: BTreeMap<String, ServiceConfig>,
    /// Where samples come from.
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    /// What counts as failing.
    #[serde(default)]
    pub detectors: Vec<DetectorConfig>,
    /// The URL people reach medic at, for links in notifications
    /// (default: `http://` + `listen`).
    #[serde(default)]
    pub external_url: Option<String>,
    /// Signed acknowledgement links in notifications.
    #[serde(default)]
    pub ack_links: crate::oncall::AckLinkConfig,
    /// Ways to reach people (`kind:` email, webhook, alertmanager_webhook,
    /// slack, pagerduty).
    #[serde(default)]
    pub notifiers: Vec<crate::notifiers::NotifierConfig>,
    /// Levels of notifiers with waits between them.
    #[serde(default)]
    pub escalation_policies: Vec<crate::oncall::EscalationPolicy>,
    /// Which incidents go to which escalation policy; first match wins.
    #[serde(default)]
    pub routes: Vec<crate::oncall::Route>,
    /// While an incident matching `source` is open, don't notify for
    /// incidents matching `target` with the same `equal` labels.
    #[serde(default)]
    pub inhibit_rules: Vec<crate::oncall::InhibitRule>,
    /// Weekly windows during which matching incidents are not notified.
    #[serde(default)]
    pub maintenance_windows: Vec<crate::oncall::maintenance::MaintenanceWindow>,
    /// Hold incidents that keep changing state open until they settle.
    #[serde(default)]
    pub flapping: Option<crate::incidents::flapping::FlappingConfig>,
    /// API tokens with roles (viewer, responder, admin). Without any, the
    /// API needs no token.
    #[serde(default)]
    pub auth: crate::api::auth::AuthConfig,
}

fn default_listen() -> String {
    "127.0.0.1:9460".into()
}
fn default_state_dir() -> PathBuf {
    "data".into()
}
fn default_runbooks() -> PathBuf {
    "runbooks".into()
}

/// A mistake in a config or runbook file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// File.
    pub file: PathBuf,
    /// 1-based line (0: whole file).
    pub line: u64,
    /// 1-based column (0: whole line).
    pub column: u64,
    /// What is wrong and what was expected.
    pub message: String,
    /// Source excerpt, if any.
    pub snippet: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )?;
        if let Some(s) = &self.snippet {
            write!(f, "\n{s}")?;
        }
        Ok(())
    }
}

/// Several errors, one per line.
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Everything medic runs on, validated.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Path of `medic.yaml`.
    pub path: PathBuf,
    /// Its directory: relative paths are resolved against it.
    pub base_dir: PathBuf,
    /// The parsed file.
    pub config: MedicConfig,
    /// Runbooks in file-name order, with their files.
    pub runbooks: Vec<(PathBuf, Runbook)>,
}

impl Loaded {
    /// Absolute state directory.
    pub fn state_dir(&self) -> PathBuf {
        self.base_dir.join(&self.config.state_dir)
    }
    /// The URL people reach medic at, without a trailing slash.
    pub fn external_url(&self) -> String {
        match &self.config.external_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.config.listen),
        }
    }
    /// Absolute runbooks directory.
    pub fn runbooks_dir(&self) -> PathBuf {
        self.base_dir.join(&self.config.runbooks)
    }
}

/// Parse YAML into `T`, turning a parse error into a located [`ConfigError`].
pub fn parse_yaml<T: serde::de::DeserializeOwned>(
    file: &Path,
    text: &str,
) -> Result<T, ConfigError> {
    serde_saphyr::from_str::<T>(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        let shown = e.to_string();
        // The library's text is "error: line L column C: message\n --> <input>…";
        // keep the message and the excerpt, with our file name in it.
        let mut lines = shown.lines();
        let first = lines.next().unwrap_or_default();
        let message = first
            .split_once(&format!("line {line} column {column}: "))
            .map(|(_, m)| m.to_string())
            .unwrap_or_else(|| first.trim_start_matches("error: ").to_string());
        let rest: Vec<&str> = lines.collect();
        // With `kind:`-tagged sections the library reports the end of the
        // section; point at the `kind:` line that names the unknown variant,
        // and at an unknown field's own line (the nearest key of that name
        // at or above the reported end).
        let quoted = |prefix: &str| {
            message
                .strip_prefix(prefix)
                .and_then(|m| m.split_once('`'))
                .map(|(name, _)| name)
        };
        let (line, column) = if let Some(variant) = quoted("unknown variant `") {
            locate_kind(text, variant, line).unwrap_or((line, column))
        } else if let Some(field) = quoted("unknown field `") {
            locate_key(text, field, line).unwrap_or((line, column))
        } else {
            (line, column)
        };
        let snippet = (!rest.is_empty()).then(|| {
            rest.join("\n")
                .replace("<input>", &file.display().to_string())
        });
        ConfigError {
            file: file.to_path_buf(),
            line,
            column,
            message,
            snippet,
        }
    })
}

/// An error at `s` (found in the file when the parser lost its position).
pub(crate) fn err_at<T: fmt::Display>(file: &Path, s: &Spanned<T>, message: String) -> ConfigError {
    let (mut line, mut column) = (s.line, s.column);
    if line == 0 {
        // The YAML library cannot keep positions inside `kind:`-tagged
        // sections; find the value in the file instead.
        if let Some((l, c)) = std::fs::read_to_string(file)
            .ok()
            .and_then(|t| locate(&t, &s.value.to_string()))
        {
            (line, column) = (l, c);
        }
    }
    ConfigError {
        file: file.to_path_buf(),
        line,
        column,
        message,
        snippet: None,
    }
}

/// 1-based line and column of the first place `needle` appears as a YAML
/// value (after `: `, `- `, `[`, `,` or a quote), else anywhere.
pub fn locate(text: &str, needle: &str) -> Option<(u64, u64)> {
    if needle.is_empty() {
        return None;
    }
    let mut fallback = None;
    for (i, line) in text.lines().enumerate() {
        let mut from = 0;
        while let Some(pos) = line[from..].find(needle) {
            let at = from + pos;
            let before = line[..at].trim_end_matches(['"', '\'']);
            let col = line[..at].chars().count() as u64 + 1;
            let quote = line[..at].len() - before.len();
            let col = col - quote as u64;
            if before.ends_with(':')
                || before.ends_with('-')
                || before.ends_with('[')
                || before.ends_with(',')
            {
                return Some((i as u64 + 1, col));
            }
            fallback.get_or_insert((i as u64 + 1, col));
            from = at + needle.len().max(1);
        }
    }
    fallback
}

/// The `kind: <variant>` nearest before `line` (or the first one).
fn locate_kind(text: &str, variant: &str, line: u64) -> Option<(u64, u64)> {
    let mut best = None;
    for (i, l) in text.lines().enumerate() {
        let t = l.trim_start().trim_start_matches("- ");
        if let Some(v) = t.strip_prefix("kind:")
            && v.trim().trim_matches(['"', '\'']) == variant
        {
            let n = i as u64 + 1;
            let col = (l.len() - l.trim_start().len()) as u64
                + 1
                + (l.trim_start().len() - t.len()) as u64;
            if n <= line || best.is_none() {
                best = Some((n, col));
            }
        }
    }
    best
}

/// The nearest line at or above `line` where `key` is written as a block
/// mapping key (`key:` or `- key:`), with its column; `None` when `line`
/// itself has it (a flow mapping: the library's place is right).
fn locate_key(text: &str, key: &str, line: u64) -> Option<(u64, u64)> {
    let lines: Vec<&str> = text.lines().take(line as usize).collect();
    if lines.last()?.contains(&format!("{key}:")) {
        return None;
    }
    lines.iter().enumerate().rev().find_map(|(i, l)| {
        let t = l.trim_start().trim_start_matches("- ");
        let rest = t.strip_prefix(key)?;
        rest.starts_with(':')
            .then(|| (i as u64 + 1, (l.len() - t.len()) as u64 + 1))
    })
}

/// Runbook files in a directory, in name order. Files ending in `.test.yaml`
/// are runbook tests, not runbooks.
pub fn runbook_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if p.is_file()
            && (name.ends_with(".yaml") || name.ends_with(".yml"))
            && !name.ends_with(".test.yaml")
            && !name.starts_with('.')
        {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// Read one runbook file on its own (`medic test`): parsed, plug-in paths
/// anchored to its directory, steps and guards checked. What needs
/// `medic.yaml` (detector and service names) is `medic check`'s to check.
pub fn load_runbook(path: &Path) -> Result<Runbook, ConfigErrors> {
    let r = read_runbook(path).map_err(|e| ConfigErrors(vec![e]))?;
    let mut errors = Vec::new();
    validate_runbook(path, &r, None, &mut errors);
    if errors.is_empty() {
        Ok(r)
    } else {
        Err(ConfigErrors(errors))
    }
}

fn cannot_read(file: &Path, e: std::io::Error) -> ConfigError {
    ConfigError {
        file: file.to_path_buf(),
        line: 0,
        column: 0,
        message: format!("cannot read: {e}"),
        snippet: None,
    }
}

/// Read and parse a runbook file; plug-in paths anchored to its directory.
fn read_runbook(f: &Path) -> Result<Runbook, ConfigError> {
    let text = std::fs::read_to_string(f).map_err(|e| cannot_read(f, e))?;
    let mut r: Runbook = parse_yaml(f, &text)?;
    let dir = f.parent().unwrap_or(Path::new(".")).to_path_buf();
    anchor_plugins(&dir, &mut r.steps);
    anchor_plugins(&dir, &mut r.escalate);
    anchor_plugins(&dir, &mut r.restore);
    Ok(r)
}

/// Read and validate `medic.yaml` and every runbook.
pub fn load(path: &Path) -> Result<Loaded, ConfigErrors> {
    let one = |e: ConfigError| ConfigErrors(vec![e]);
    let text = std::fs::read_to_string(path).map_err(|e| one(cannot_read(path, e)))?;
    let config: MedicConfig = parse_yaml(path, &text).map_err(one)?;
    let base_dir = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let mut errors = Vec::new();
    let rb_dir = base_dir.join(&config.runbooks);
    let mut runbooks = Vec::new();
    match runbook_files(&rb_dir) {
        Ok(files) => {
            for f in files {
                match read_runbook(&f) {
                    Ok(r) => runbooks.push((f, r)),
                    Err(e) => errors.push(e),
                }
            }
        }
        Err(e) => errors.push(ConfigError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            message: format!("runbooks directory {}: {e}", rb_dir.display()),
            snippet: None,
        }),
    }
    let loaded = Loaded {
        path: path.to_path_buf(),
        base_dir,
        config,
        runbooks,
    };
    errors.extend(validate(&loaded));
    if errors.is_empty() {
        Ok(loaded)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// What is wrong with a `forecast` detector's settings (nothing for other kinds).
fn forecast_problems(kind: &crate::detectors::DetectorKind) -> Vec<&'static str> {
    let crate::detectors::DetectorKind::Forecast {
        above,
        below,
        horizon,
        window,
        clear_horizon,
        min_points,
        ..
    } = kind
    else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    if above.is_some() == below.is_some() {
        problems.push("needs exactly one of `above` or `below`");
    }
    if above.or(*below).is_some_and(|v| !v.is_finite()) {
        problems.push("the limit must be a finite number");
    }
    if horizon.millis() <= 0 {
        problems.push("horizon must be more than 0");
    }
    if window.millis() < 32 {
        problems.push("window must be at least 32 ms (it is divided into 32 slots)");
    }
    if clear_horizon.is_some_and(|c| c.millis() < horizon.millis()) {
        problems.push("clear_horizon must be at least horizon");
    }
    if !(2..=32).contains(min_points) {
        problems.push("min_points must be between 2 and 32");
    }
    problems
}

/// What is wrong with a `multivariate` detector's settings (nothing for
/// other kinds).
fn multivariate_problems(kind: &crate::detectors::DetectorKind) -> Vec<String> {
    let crate::detectors::DetectorKind::Multivariate {
        metrics,
        rate,
        step,
        threshold,
        clear,
        pca,
        ..
    } = kind
    else {
        return Vec::new();
    };
    let names = || metrics.keys().cloned().collect::<Vec<_>>().join(", ");
    // NaN is within nothing.
    let within = |v: f64, lo: f64, hi: f64| v > lo && v <= hi;
    let mut p = Vec::new();
    if metrics.len() < 2 {
        p.push(format!(
            "needs at least 2 metrics (it judges how they move together); it has {} ({})",
            metrics.len(),
            names()
        ));
    }
    for r in rate.iter().filter(|r| !metrics.contains_key(*r)) {
        p.push(format!(
            "rate: {r:?} is not one of its metrics ({})",
            names()
        ));
    }
    if step.millis() <= 0 {
        p.push("step must be more than 0, e.g. 10s".into());
    }
    if !within(*threshold, 0.0, 1.0) {
        p.push("threshold must be in (0, 1]".into());
    }
    if clear.is_some_and(|c| !(0.0..=*threshold).contains(&c)) {
        p.push("clear must be between 0 and threshold".into());
    }
    if pca.min_train < 2 || pca.min_train > pca.reservoir {
        p.push(format!(
            "pca.min_train (the warm-up) must be at least 2 rows and at most pca.reservoir ({})",
            pca.reservoir
        ));
    }
    if pca.refit_every == 0 || pca.max_components == 0 {
        p.push("pca.refit_every and pca.max_components must be at least 1".into());
    }
    if !within(pca.variance, 0.0, 1.0) {
        p.push("pca.variance must be in (0, 1]".into());
    }
    if !within(pca.quantile, 0.0, 1.0) || pca.quantile == 1.0 {
        p.push("pca.quantile must be between 0 and 1 (exclusive)".into());
    }
    if !within(pca.normal_below, 0.0, 1.0) {
        p.push("pca.normal_below must be in (0, 1]".into());
    }
    if !within(pca.z_half, 0.0, f64::MAX) {
        p.push("pca.z_half must be more than 0".into());
    }
    if !(pca.min_scale >= 0.0 && pca.min_scale.is_finite()) {
        p.push("pca.min_scale must be 0 or more".into());
    }
    p
}

fn check_selector(file: &Path, s: &Spanned<String>, errors: &mut Vec<ConfigError>) {
    if let Err(e) = s.value.parse::<Selector>() {
        let mut err = err_at(
            file,
            s,
            format!("invalid series selector {:?}: {}", s.value, e.message),
        );
        // Point at the offending character inside the selector.
        if err.line > 0 && e.column > 0 {
            err.column += e.column as u64 - 1;
        }
        errors.push(err);
    }
}

/// Checks that need more than one struct: names unique, references resolve.
fn validate(l: &Loaded) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let file = l.path.as_path();
    let c = &l.config;
    if c.listen.parse::<std::net::SocketAddr>().is_err() {
        errors.push(ConfigError {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            message: format!(
                "listen: {:?} is not an address like 127.0.0.1:9460",
                c.listen
            ),
            snippet: None,
        });
    }
    for message in c.store.problems() {
        errors.push(ConfigError {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            message,
            snippet: None,
        });
    }
    for (name, s) in &c.services {
        if s.argv.is_empty() {
            errors.push(ConfigError {
                file: file.to_path_buf(),
                line: 0,
                column: 0,
                message: format!("services.{name}.argv must not be empty"),
                snippet: None,
            });
        }
    }
    let mut seen = HashSet::new();
    let mut push_kinds = HashSet::new();
    for s in &c.sources {
        if !seen.insert(s.name.value.clone()) {
            errors.push(err_at(
                file,
                &s.name,
                format!("duplicate source name {:?}", s.name.value),
            ));
        }
        let (targets, files) = match &s.kind {
            SourceKind::Scrape(k) => (
                k.targets.len(),
                k.file_sd.len() + usize::from(k.dns_sd.is_some()),
            ),
            SourceKind::HttpProbe(k) => (k.targets.len(), k.file_sd.len()),
            SourceKind::TcpProbe(k) => (
                k.targets.len(),
                k.file_sd.len() + usize::from(k.dns_sd.is_some()),
            ),
            SourceKind::ExecProbe(k) => (usize::from(!k.argv.is_empty()), 1),
            SourceKind::Promql(k) => (k.queries.len(), 1),
            SourceKind::RemoteWrite(_) | SourceKind::Alertmanager(_) | SourceKind::Otlp(_) => {
                (1, 1)
            }
        };
        if s.kind.is_push() && !push_kinds.insert(s.kind.name()) {
            errors.push(err_at(
                file,
                &s.name,
                format!(
                    "source {:?}: only one {} source can be served on medic's listener",
                    s.name.value,
                    s.kind.name()
                ),
            ));
        }
        if let SourceKind::Otlp(k) = &s.kind {
            for p in k.problems() {
                errors.push(err_at(
                    file,
                    &s.name,
                    format!("source {:?}: {p}", s.name.value),
                ));
            }
        }
        if let SourceKind::Promql(k) = &s.kind {
            if k.queries.is_empty() {
                errors.push(err_at(
                    file,
                    &s.name,
                    format!("source {:?}: queries must not be empty", s.name.value),
                ));
            }
            if reqwest::Url::parse(&k.url).is_err() {
                errors.push(err_at(
                    file,
                    &s.name,
                    format!("source {:?}: url {:?} is not a URL", s.name.value, k.url),
                ));
            }
        }
        if targets == 0 && files == 0 {
            errors.push(err_at(
                file,
                &s.name,
                format!("source {:?} has no targets and no file_sd", s.name.value),
            ));
        }
        if let SourceKind::ExecProbe(k) = &s.kind
            && k.argv.is_empty()
        {
            errors.push(err_at(
                file,
                &s.name,
                format!("source {:?}: argv must not be empty", s.name.value),
            ));
        }
    }
    let mut detectors = HashSet::new();
    for d in &c.detectors {
        if !detectors.insert(d.name.value.clone()) {
            errors.push(err_at(
                file,
                &d.name,
                format!("duplicate detector name {:?}", d.name.value),
            ));
        }
        for s in d.kind.selectors() {
            check_selector(file, s, &mut errors);
        }
        if let crate::detectors::DetectorKind::Threshold { above, below, .. } = &d.kind
            && above.is_some() == below.is_some()
        {
            errors.push(err_at(
                file,
                &d.name,
                format!(
                    "threshold detector {:?} needs exactly one of `above` or `below`",
                    d.name.value
                ),
            ));
        }
        for p in forecast_problems(&d.kind) {
            errors.push(err_at(
                file,
                &d.name,
                format!("forecast detector {:?}: {p}", d.name.value),
            ));
        }
        if let crate::detectors::DetectorKind::ErrorRate { max_ratio, .. } = &d.kind
            && !(0.0..=1.0).contains(max_ratio)
        {
            errors.push(err_at(
                file,
                &d.name,
                format!(
                    "error_rate detector {:?}: max_ratio must be between 0 and 1",
                    d.name.value
                ),
            ));
        }
        if let crate::detectors::DetectorKind::SloBurn {
            errors: bad,
            good,
            objective,
            windows,
            ..
        } = &d.kind
        {
            let mut problems = Vec::new();
            if bad.is_some() == good.is_some() {
                problems.push("needs exactly one of `errors` or `good`");
            }
            if objective.is_nan() || *objective <= 0.0 || *objective >= 1.0 {
                problems.push("objective must be between 0 and 1 (exclusive), e.g. 0.999");
            }
            if windows.is_empty() {
                problems.push("windows must not be empty");
            }
            if windows.iter().any(|w| {
                w.long.millis() <= 0
                    || w.short.millis() <= 0
                    || w.burn_rate.is_nan()
                    || w.burn_rate <= 0.0
            }) {
                problems.push("every window needs long > 0, short > 0 and burn_rate > 0");
            }
            for p in problems {
                errors.push(err_at(
                    file,
                    &d.name,
                    format!("slo_burn detector {:?}: {p}", d.name.value),
                ));
            }
        }
        for p in multivariate_problems(&d.kind) {
            errors.push(err_at(
                file,
                &d.name,
                format!("multivariate detector {:?}: {p}", d.name.value),
            ));
        }
    }
    for (at, message) in c.auth.check() {
        errors.push(err_at(file, at, message));
    }
    for (at, message) in crate::oncall::validate(c) {
        errors.push(match at {
            Some(s) => err_at(file, s, message),
            None => ConfigError {
                file: file.to_path_buf(),
                line: 0,
                column: 0,
                message,
                snippet: None,
            },
        });
    }
    let mut runbook_names = HashSet::new();
    for (f, r) in &l.runbooks {
        if !runbook_names.insert(r.name.value.clone()) {
            errors.push(err_at(
                f,
                &r.name,
                format!("duplicate runbook name {:?}", r.name.value),
            ));
        }
        // With an Alertmanager source, alert names play the detector's role
        // and are not known in advance.
        let alerts = c
            .sources
            .iter()
            .any(|s| matches!(s.kind, SourceKind::Alertmanager(_)));
        for d in &r.matches.detectors {
            if !detectors.contains(&d.value) && !alerts {
                let known: Vec<&str> = c.detectors.iter().map(|d| d.name.value.as_str()).collect();
                errors.push(err_at(
                    f,
                    d,
                    format!(
                        "match.detectors: no detector named {:?} in {} (known: {}; with a kind: alertmanager source, alert names are accepted too)",
                        d.value,
                        file.display(),
                        known.join(", ")
                    ),
                ));
            }
        }
        if let Some(lbl) = &r.matches.labels
            && let Err(e) = Selector::matchers_only(lbl)
        {
            errors.push(err_at(f, lbl, format!("match.labels: {}", e.message)));
        }
        validate_runbook(f, r, Some(&c.services), &mut errors);
        if let Some(e) = c.store.election() {
            for st in r.steps.iter().chain(&r.escalate).chain(&r.restore) {
                validate_lease_timing(f, e, st, &mut errors);
            }
        }
    }
    errors
}

/// Checks of one runbook on its own: steps, templates, guards.
/// `services`: those a `restart` may name (None: not checked).
fn validate_runbook(
    f: &Path,
    r: &Runbook,
    services: Option<&BTreeMap<String, ServiceConfig>>,
    errors: &mut Vec<ConfigError>,
) {
    if r.steps.is_empty() {
        errors.push(err_at(f, &r.name, "runbook has no steps".into()));
    }
    for s in r.steps.iter().chain(&r.escalate).chain(&r.restore) {
        validate_step(f, services, s, 0, errors);
    }
    if let Err(e) = validate_guards(&r.guards) {
        errors.push(err_at(f, &r.name, format!("guards: {e}")));
    }
}

fn validate_guards(g: &crate::runbooks::guards::Guards) -> Result<(), String> {
    for (target, t) in &g.targets {
        if !t.targets.is_empty() {
            return Err(format!("targets.{target}: per-target settings do not nest"));
        }
        validate_guards(t).map_err(|e| format!("targets.{target}: {e}"))?;
    }
    if g.rate_limit.as_ref().is_some_and(|r| r.max == 0) {
        return Err("rate_limit.max must be at least 1".into());
    }
    if g.restart_loop.as_ref().is_some_and(|r| r.max_restarts == 0) {
        return Err("restart_loop.max_restarts must be at least 1".into());
    }
    if g.circuit_breaker.as_ref().is_some_and(|c| c.failures == 0) {
        return Err("circuit_breaker.failures must be at least 1".into());
    }
    if let Some(c) = &g.concurrency {
        if c.max_targets == Some(0) {
            return Err("concurrency.max_targets must be at least 1".into());
        }
        match (c.max_percent, c.group_size) {
            (Some(p), _) if !(p > 0.0 && p <= 100.0) => {
                return Err("concurrency.max_percent must be in (0, 100]".into());
            }
            (Some(_), None) => {
                return Err("concurrency.max_percent needs group_size".into());
            }
            (None, _) if c.max_targets.is_none() => {
                return Err("concurrency needs max_targets or max_percent".into());
            }
            _ => {}
        }
    }
    Ok(())
}

/// A relative plug-in program path with a `/` (`plugins/flag.py`) is
/// relative to the runbook file, wherever medic was started.
fn anchor_plugins(dir: &Path, steps: &mut [Step]) {
    for s in steps {
        if let ActionConfig::Plugin(p) = &mut s.action
            && let Some(program) = p.argv.first_mut()
            && program.contains('/')
            && Path::new(program.as_str()).is_relative()
        {
            *program = dir.join(&*program).display().to_string();
        }
        anchor_plugins(dir, &mut s.on_failure);
    }
}

fn validate_plugin(p: &crate::executors::plugin::PluginParams) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let Some(program) = p.argv.first() else {
        return Err("argv must not be empty".into());
    };
    if program.contains('/') {
        let meta = std::fs::metadata(program).map_err(|e| format!("plug-in {program}: {e}"))?;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            return Err(format!("plug-in {program} is not an executable file"));
        }
    }
    if let Some(t) = &p.target {
        crate::executors::template::check(t).map_err(|e| format!("target: {e}"))?;
    }
    for (k, v) in &p.env {
        if let crate::executors::plugin::EnvValue::Marked(m) = v
            && m.value.is_some() == m.from_env.is_some()
        {
            return Err(format!("env {k}: give exactly one of value and from_env"));
        }
    }
    if p.max_output == 0 {
        return Err("max_output must be at least 1".into());
    }
    Ok(())
}

/// Check one step. `services`: the configured services a `restart` must
/// name (None: a runbook read on its own, by `medic test`).
fn validate_step(
    f: &Path,
    services: Option<&BTreeMap<String, ServiceConfig>>,
    s: &Step,
    depth: usize,
    errors: &mut Vec<ConfigError>,
) {
    match &s.action {
        ActionConfig::Restart(p) if p.service.contains("{{") => {
            if let Err(e) = crate::executors::template::check(&p.service) {
                errors.push(err_at(
                    f,
                    &s.name,
                    format!("step {:?}: service: {e}", s.name.value),
                ));
            }
        }
        ActionConfig::Haproxy(p) => {
            if let Err(e) = crate::executors::haproxy::Haproxy::validate(p) {
                errors.push(err_at(f, &s.name, format!("step {:?}: {e}", s.name.value)));
            }
        }
        ActionConfig::Plugin(p) => {
            if let Err(e) = validate_plugin(p) {
                errors.push(err_at(f, &s.name, format!("step {:?}: {e}", s.name.value)));
            }
        }
        ActionConfig::Restart(p) => {
            if let Some(services) = services
                && !services.contains_key(&p.service)
            {
                let known: Vec<&str> = services.keys().map(String::as_str).collect();
                errors.push(err_at(
                    f,
                    &s.name,
                    format!(
                        "step {:?}: restart of unknown service {:?} (services: {})",
                        s.name.value,
                        p.service,
                        known.join(", ")
                    ),
                ));
            }
        }
        ActionConfig::Command(p) => {
            if p.argv.is_empty() {
                errors.push(err_at(
                    f,
                    &s.name,
                    format!("step {:?}: argv must not be empty", s.name.value),
                ));
            }
        }
        ActionConfig::Http(p) => {
            if reqwest::Url::parse(&p.url).is_err() {
                errors.push(err_at(
                    f,
                    &s.name,
                    format!("step {:?}: invalid url {:?}", s.name.value, p.url),
                ));
            }
            if let Some(b) = &p.body
                && let Err(e) = crate::executors::template::check(b)
            {
                errors.push(err_at(
                    f,
                    &s.name,
                    format!("step {:?}: body: {e}", s.name.value),
                ));
            }
        }
        ActionConfig::Notify(p) => {
            if reqwest::Url::parse(&p.url).is_err() {
                errors.push(err_at(
                    f,
                    &s.name,
                    format!("step {:?}: invalid url {:?}", s.name.value, p.url),
                ));
            }
            if let Some(m) = &p.message
                && let Err(e) = crate::executors::template::check(m)
            {
                errors.push(err_at(
                    f,
                    &s.name,
                    format!("step {:?}: message: {e}", s.name.value),
                ));
            }
        }
        // The step's timeout is the approval deadline; nothing else to check.
        ActionConfig::Approval(_) => {}
    }
    if s.retry.max_attempts == 0 {
        errors.push(err_at(
            f,
            &s.name,
            format!(
                "step {:?}: retry.max_attempts must be at least 1",
                s.name.value
            ),
        ));
    }
    if depth > 0 && !s.on_failure.is_empty() {
        errors.push(err_at(
            f,
            &s.name,
            format!(
                "step {:?}: on_failure steps cannot have their own on_failure",
                s.name.value
            ),
        ));
    }
    for o in &s.on_failure {
        validate_step(f, services, o, depth + 1, errors);
    }
}

/// The leader-lease timing rule (stores/etcd/election.rs): an action must
/// end before the lease it started under can expire.
fn validate_lease_timing(
    f: &Path,
    e: &crate::stores::etcd::election::ElectionConfig,
    s: &Step,
    errors: &mut Vec<ConfigError>,
) {
    if !matches!(s.action, ActionConfig::Approval(_)) && s.timeout.std() > e.budget() {
        errors.push(err_at(
            f,
            &s.name,
            format!(
                "step {:?}: timeout {} is longer than a leader may act: 0.9 × store.election.ttl {} − 2 × renew {} = {}; raise the ttl or shorten the step",
                s.name.value,
                s.timeout,
                e.ttl,
                e.renew,
                crate::config::duration::Duration(e.budget())
            ),
        ));
    }
    for o in &s.on_failure {
        validate_lease_timing(f, e, o, errors);
    }
}

/// JSON Schemas for `medic.yaml`, runbook files and runbook test files, from
/// the same structs.
pub fn schemas() -> Vec<(&'static str, serde_json::Value)> {
    let m = schemars::schema_for!(MedicConfig);
    let r = schemars::schema_for!(Runbook);
    let t = schemars::schema_for!(crate::runbooks::testing::file::TestFile);
    vec![
        (
            "medic.schema.json",
            serde_json::to_value(m).unwrap_or_default(),
        ),
        (
            "runbook.schema.json",
            serde_json::to_value(r).unwrap_or_default(),
        ),
        (
            "runbook-test.schema.json",
            serde_json::to_value(t).unwrap_or_default(),
        ),
    ]
}

#[cfg(test)]
mod tests;
