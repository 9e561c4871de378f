//! The runbook test file format (`<runbook>.test.yaml`), as typed serde
//! structs with unknown fields rejected, and the checks that need the
//! runbook (step names, verify checks, incident names). `docs/runbook-tests.md`
//! is the reference for users.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::duration::Duration;
use crate::config::spanned::Spanned;
use crate::config::{ConfigError, err_at, locate};
use crate::detectors::{DetectorConfig, Severity};
use crate::incidents::IncidentState;
use crate::runbooks::guards::Guards;
use crate::runbooks::{Runbook, Step};
use crate::series::Labels;
use crate::stores::{ActionState, RunState};

/// A runbook test file: the cases for the runbook beside it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// The cases, each played on its own: a fresh store, a fresh clock.
    pub cases: Vec<Case>,
}

/// One incident timeline and what must happen.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What the case shows, in a sentence.
    pub name: Spanned<String>,
    /// Incidents, by the name the timeline and the expectations use. An
    /// incident opened by a detector of `detectors:` takes the name whose
    /// detector and labels it matches.
    #[serde(default)]
    pub incidents: BTreeMap<String, IncidentSpec>,
    /// Detectors fed by `series:` (as `detectors:` in `medic.yaml`).
    #[serde(default)]
    pub detectors: Vec<DetectorConfig>,
    /// Series values over time, fed to `detectors:`.
    #[serde(default)]
    pub series: Vec<SeriesSpec>,
    /// What happens when, in time order.
    #[serde(default)]
    pub timeline: Vec<Event>,
    /// How the (fake) executors answer, by step name: one answer per call,
    /// in order; the last one repeats. Steps not listed succeed.
    #[serde(default)]
    pub answers: BTreeMap<String, Vec<Answer>>,
    /// The global dry-run switch (`dry_run:` in `medic.yaml`).
    #[serde(default)]
    pub dry_run: bool,
    /// Guard settings for this case: each guard given replaces the runbook's.
    #[serde(default)]
    pub guards: Option<Guards>,
    /// End the play at this time. Default: after the last event, as soon as
    /// no run is running, but at most an hour later.
    #[serde(default)]
    pub until: Option<Spanned<Duration>>,
    /// What must have happened.
    pub expect: Expect,
}

/// An incident the timeline fires, resolves and acknowledges.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentSpec {
    /// The detector (or alert name) it comes from; runbooks match on it.
    pub detector: Spanned<String>,
    /// Its labels.
    #[serde(default)]
    pub labels: Labels,
    /// Its severity (default critical).
    #[serde(default)]
    pub severity: Option<Severity>,
    /// One line (default: detector and labels).
    #[serde(default)]
    pub summary: Option<String>,
}

/// Values of one series over time, in promtool's notation.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SeriesSpec {
    /// The series as in the Prometheus text format: `up{job="web"}`.
    pub series: Spanned<String>,
    /// Values, one per `every`: `1 1 0x10 _ 1+1x5` (`_` no sample, `axn`
    /// a repeated n more times, `a+bxn` a, a+b, … a+n·b).
    pub values: Spanned<String>,
    /// Time between values (default 15s).
    #[serde(default = "default_every")]
    pub every: Duration,
    /// Time of the first value (default 0s).
    #[serde(default)]
    pub from: Duration,
}

fn default_every() -> Duration {
    Duration::from_secs(15)
}

/// One thing that happens at `at` (exactly one of the other fields).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Time since the start of the case.
    pub at: Spanned<Duration>,
    /// The incident's detector fires (as an alert would).
    #[serde(default)]
    pub fire: Option<Spanned<String>>,
    /// The incident's detector clears.
    #[serde(default)]
    pub resolve: Option<Spanned<String>>,
    /// A person acknowledges the open incident (`by`, default `on-call`).
    #[serde(default)]
    pub ack: Option<Spanned<String>>,
    /// Who acknowledges.
    #[serde(default)]
    pub by: Option<String>,
    /// From now on this `verify.http` URL or `verify.tcp` address passes.
    #[serde(default)]
    pub passes: Option<Spanned<String>>,
    /// From now on it fails (checks fail until they pass).
    #[serde(default)]
    pub fails: Option<Spanned<String>>,
}

/// What an event does.
#[derive(Debug, Clone, PartialEq)]
pub enum Happening {
    /// Fire the named incident.
    Fire(String),
    /// Resolve it.
    Resolve(String),
    /// Acknowledge it, by someone.
    Ack(String, String),
    /// A verify check passes (true) or fails from now on.
    Check(String, bool),
}

impl Event {
    /// What it does, if exactly one thing is given.
    pub fn happening(&self) -> Result<Happening, String> {
        let mut given = Vec::new();
        if let Some(n) = &self.fire {
            given.push(Happening::Fire(n.value.clone()));
        }
        if let Some(n) = &self.resolve {
            given.push(Happening::Resolve(n.value.clone()));
        }
        if let Some(n) = &self.ack {
            let by = self.by.clone().unwrap_or_else(|| "on-call".into());
            given.push(Happening::Ack(n.value.clone(), by));
        }
        if let Some(c) = &self.passes {
            given.push(Happening::Check(c.value.clone(), true));
        }
        if let Some(c) = &self.fails {
            given.push(Happening::Check(c.value.clone(), false));
        }
        if self.by.is_some() && self.ack.is_none() {
            return Err("`by` goes with `ack`".into());
        }
        match given.len() {
            1 => Ok(given.remove(0)),
            0 => Err("an event needs one of fire, resolve, ack, passes, fails".into()),
            _ => Err("one thing per event: give one of fire, resolve, ack, passes, fails".into()),
        }
    }
}

/// How a fake executor answers one call.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Answer {
    /// It worked.
    Ok,
    /// It failed with this message.
    Fail(String),
    /// It never answers: the step's timeout ends it.
    Hang,
    /// It succeeds after this long (longer than the step's timeout: it
    /// times out).
    Takes(Duration),
}

/// What must have happened. Everything is optional; what is given must hold.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Every step attempt the journal recorded (run, failed, dry run, held
    /// back by a guard), in order, all of them: each entry checks the fields
    /// it gives.
    #[serde(default)]
    pub steps: Option<Vec<ExpectedStep>>,
    /// Steps that must not have run (no journal entry except `blocked`).
    #[serde(default)]
    pub not_run: Vec<Spanned<String>>,
    /// Each named incident at the end: its state and the states of its runs.
    #[serde(default)]
    pub incidents: BTreeMap<String, ExpectedIncident>,
    /// Timeline entries that must appear, in this order (others may be
    /// between): each matches on the fields it gives.
    #[serde(default)]
    pub events: Vec<ExpectedEvent>,
}

/// One expected step attempt.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectedStep {
    /// When it was journalled, ±1s.
    #[serde(default)]
    pub at: Option<Duration>,
    /// For which incident.
    #[serde(default)]
    pub incident: Option<Spanned<String>>,
    /// Step name.
    #[serde(default)]
    pub step: Option<Spanned<String>>,
    /// Attempt number from 1.
    #[serde(default)]
    pub attempt: Option<u32>,
    /// Executor kind.
    #[serde(default)]
    pub executor: Option<String>,
    /// Target as the journal and the guards name it: `restart:web`.
    #[serde(default)]
    pub target: Option<String>,
    /// Parameters as written in the step, templates filled in; only the
    /// keys given are compared.
    #[serde(default)]
    pub params: Option<serde_json::Value>,
    /// `succeeded`, `failed`, `dry_run`, `blocked`, `interrupted`, `intended`.
    #[serde(default)]
    pub state: Option<ActionState>,
    /// For `blocked`: the guard that held it back.
    #[serde(default)]
    pub guard: Option<String>,
    /// Whether its verification passed.
    #[serde(default)]
    pub verified: Option<bool>,
    /// Text the result, error or guard reason contains.
    #[serde(default)]
    pub detail: Option<String>,
}

/// An incident at the end of the case.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectedIncident {
    /// Its state at the end (the latest incident of that name).
    #[serde(default)]
    pub state: Option<IncidentState>,
    /// The end states of its runbook runs, in order (a resolved incident
    /// that fires again is a new incident with a new run).
    #[serde(default)]
    pub runs: Option<Vec<RunState>>,
}

/// A timeline entry that must appear.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectedEvent {
    /// For which incident.
    #[serde(default)]
    pub incident: Option<Spanned<String>>,
    /// Kind: `runbook`, `action`, `verify`, `guard`, `escalation`, `ack`, …
    #[serde(default)]
    pub kind: Option<String>,
    /// Text the message contains.
    pub message: String,
}

/// Every step of a runbook with its path, in the order the runner knows them.
pub fn all_steps(rb: &Runbook) -> Vec<(String, &Step)> {
    let mut out = Vec::new();
    for (i, s) in rb.steps.iter().enumerate() {
        out.push((format!("steps[{i}]"), s));
        for (j, f) in s.on_failure.iter().enumerate() {
            out.push((format!("steps[{i}].on_failure[{j}]"), f));
        }
    }
    for (section, list) in [("escalate", &rb.escalate), ("restore", &rb.restore)] {
        for (i, s) in list.iter().enumerate() {
            out.push((format!("{section}[{i}]"), s));
        }
    }
    out
}

/// Checks a file's cases against its runbook: names resolve, events are in
/// order and say one thing, series parse. Every mistake, with its place.
pub fn check(path: &Path, text: &str, file: &TestFile, rb: &Runbook) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let at = |s: &Spanned<String>, message: String| err_at(path, s, message);
    // Map keys have no position of their own: find them in the text.
    let at_key = |key: &str, message: String| {
        let (line, column) = locate(text, &format!("{key}:"))
            .or_else(|| locate(text, key))
            .unwrap_or((0, 0));
        ConfigError {
            file: path.to_path_buf(),
            line,
            column,
            message,
            snippet: None,
        }
    };
    let steps: BTreeSet<&str> = all_steps(rb)
        .into_iter()
        .map(|(_, s)| s.name.value.as_str())
        .collect();
    let checks: BTreeSet<&str> = all_steps(rb)
        .into_iter()
        .filter_map(|(_, s)| s.verify.as_ref())
        .flat_map(|v| v.http.iter().chain(v.tcp.iter()))
        .map(String::as_str)
        .collect();
    let list = |set: &BTreeSet<&str>| {
        set.iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if file.cases.is_empty() {
        errors.push(ConfigError {
            file: path.to_path_buf(),
            line: 1,
            column: 1,
            message: "no cases".into(),
            snippet: None,
        });
    }
    let mut names = BTreeSet::new();
    for c in &file.cases {
        if !names.insert(c.name.value.as_str()) {
            errors.push(at(
                &c.name,
                format!("duplicate case name {:?}", c.name.value),
            ));
        }
        let incident = |n: &Spanned<String>, errors: &mut Vec<ConfigError>| {
            if !c.incidents.contains_key(&n.value) {
                let known: BTreeSet<&str> = c.incidents.keys().map(String::as_str).collect();
                errors.push(at(
                    n,
                    format!(
                        "case {:?}: no incident named {:?} (incidents: {})",
                        c.name.value,
                        n.value,
                        list(&known)
                    ),
                ));
            }
        };
        let step = |n: &Spanned<String>, errors: &mut Vec<ConfigError>| {
            if !steps.contains(n.value.as_str()) {
                errors.push(at(
                    n,
                    format!(
                        "case {:?}: runbook {:?} has no step named {:?} (steps: {})",
                        c.name.value,
                        rb.name.value,
                        n.value,
                        list(&steps)
                    ),
                ));
            }
        };
        if c.incidents.is_empty() {
            errors.push(at(
                &c.name,
                format!("case {:?}: no incidents", c.name.value),
            ));
        }
        if c.timeline.is_empty() && c.series.is_empty() {
            errors.push(at(
                &c.name,
                format!(
                    "case {:?}: nothing happens: give a timeline or series",
                    c.name.value
                ),
            ));
        }
        let mut last = Duration::default();
        for e in &c.timeline {
            let place = as_text(&e.at);
            if let Err(m) = e.happening() {
                errors.push(at(&place, format!("case {:?}: {m}", c.name.value)));
            }
            if e.at.value < last {
                errors.push(at(
                    &place,
                    format!(
                        "case {:?}: the timeline must be in time order ({} comes after {})",
                        c.name.value, e.at.value, last
                    ),
                ));
            }
            last = last.max(e.at.value);
            for n in [&e.fire, &e.resolve, &e.ack].into_iter().flatten() {
                incident(n, &mut errors);
            }
            for n in [&e.passes, &e.fails].into_iter().flatten() {
                if !checks.contains(n.value.as_str()) {
                    errors.push(at(
                        n,
                        format!(
                            "case {:?}: no step of runbook {:?} verifies {:?} (verify checks: {})",
                            c.name.value,
                            rb.name.value,
                            n.value,
                            if checks.is_empty() {
                                "none".into()
                            } else {
                                list(&checks)
                            }
                        ),
                    ));
                }
            }
        }
        if let Some(u) = &c.until
            && u.value < last
        {
            let place = as_text(u);
            errors.push(at(
                &place,
                format!(
                    "case {:?}: until ({}) is before the last event ({last})",
                    c.name.value, u.value
                ),
            ));
        }
        for s in &c.series {
            if let Err(m) = series_name(&s.series.value) {
                errors.push(at(
                    &s.series,
                    format!("case {:?}: series: {m}", c.name.value),
                ));
            }
            if let Err(m) = expand_values(&s.values.value) {
                errors.push(at(
                    &s.values,
                    format!("case {:?}: values: {m}", c.name.value),
                ));
            }
            if s.every.millis() <= 0 {
                errors.push(at(
                    &s.series,
                    format!("case {:?}: every must be > 0", c.name.value),
                ));
            }
        }
        if !c.series.is_empty() && c.detectors.is_empty() {
            errors.push(at(
                &c.name,
                format!(
                    "case {:?}: series need detectors to watch them",
                    c.name.value
                ),
            ));
        }
        for d in &c.detectors {
            for s in d.kind.selectors() {
                if let Err(e) = s.value.parse::<crate::series::selector::Selector>() {
                    errors.push(at(
                        s,
                        format!("invalid series selector {:?}: {}", s.value, e.message),
                    ));
                }
            }
        }
        for key in c.answers.keys() {
            if !steps.contains(key.as_str()) {
                errors.push(at_key(
                    key,
                    format!(
                        "case {:?}: answers: runbook {:?} has no step named {key:?} (steps: {})",
                        c.name.value,
                        rb.name.value,
                        list(&steps)
                    ),
                ));
            }
        }
        for (key, v) in &c.answers {
            if v.is_empty() {
                errors.push(at_key(
                    key,
                    format!(
                        "case {:?}: answers for {key:?}: give at least one",
                        c.name.value
                    ),
                ));
            }
        }
        for s in c.expect.steps.iter().flatten() {
            if let Some(n) = &s.step {
                step(n, &mut errors);
            }
            if let Some(n) = &s.incident {
                incident(n, &mut errors);
            }
        }
        for n in &c.expect.not_run {
            step(n, &mut errors);
        }
        for e in &c.expect.events {
            if let Some(n) = &e.incident {
                incident(n, &mut errors);
            }
        }
        for key in c.expect.incidents.keys() {
            if !c.incidents.contains_key(key) {
                errors.push(at_key(
                    key,
                    format!(
                        "case {:?}: expect.incidents: no incident named {key:?}",
                        c.name.value
                    ),
                ));
            }
        }
    }
    errors
}

/// A duration's place, for an error about it.
fn as_text(d: &Spanned<Duration>) -> Spanned<String> {
    Spanned {
        value: d.value.to_string(),
        line: d.line,
        column: d.column,
    }
}

/// Name and labels of a series written as in the Prometheus text format.
pub fn series_name(text: &str) -> Result<(String, Labels), String> {
    let parsed = crate::sources::scrape::parser::parse(&format!("{} 0\n", text.trim()))
        .map_err(|e| e.to_string())?;
    match parsed.as_slice() {
        [one] => Ok((one.name.clone(), one.labels.clone())),
        _ => Err(format!("{text:?} is not one series like up{{job=\"web\"}}")),
    }
}

/// Expand promtool's value notation: one entry per step, None for `_`.
pub fn expand_values(text: &str) -> Result<Vec<Option<f64>>, String> {
    let mut out = Vec::new();
    for token in text.split_whitespace() {
        let bad =
            || format!("{token:?}: expected a number, `_`, `_xN`, `AxN` or `A+BxN` / `A-BxN`");
        let (head, times) = match token.rsplit_once('x') {
            Some((h, n)) if !h.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => {
                (h, Some(n.parse::<usize>().map_err(|_| bad())?))
            }
            _ => (token, None),
        };
        if head == "_" {
            out.extend(std::iter::repeat_n(None, times.unwrap_or(1)));
            continue;
        }
        let Some(n) = times else {
            out.push(Some(token.parse::<f64>().map_err(|_| bad())?));
            continue;
        };
        // `A+B` / `A-B`: the sign after the first character (A may be negative).
        let split = head
            .char_indices()
            .skip(1)
            .find(|&(i, c)| (c == '+' || c == '-') && !head[..i].ends_with(['e', 'E']));
        let (start, step) = match split {
            Some((i, _)) => (
                head[..i].parse::<f64>().map_err(|_| bad())?,
                head[i..].parse::<f64>().map_err(|_| bad())?,
            ),
            None => (head.parse::<f64>().map_err(|_| bad())?, 0.0),
        };
        out.extend((0..=n).map(|k| Some(start + step * k as f64)));
    }
    if out.is_empty() {
        return Err("no values".into());
    }
    Ok(out)
}
