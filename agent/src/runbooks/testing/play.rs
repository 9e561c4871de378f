//! Plays one case: the real engine, runner, guard rails and SQLite store
//! (in memory), with fake executors and checks, in paused tokio time that a
//! [`VirtualClock`] turns into wall-clock milliseconds. An hour of timeline
//! takes milliseconds and plays the same way every time: time only moves
//! when every task waits, and back-offs have no jitter.
//!
//! Incidents reach the engine the way Alertmanager alerts do (fire and
//! resolve commands), or from the case's detectors fed with its series; the
//! engine opens them and launches the runbook exactly as the daemon does.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::fakes::{Call, Fakes, TimelineChecks};
use super::file::{Case, Happening, IncidentSpec, all_steps, expand_values, series_name};
use crate::clock::{Clock, SharedClock, VirtualClock};
use crate::engine::{Command, Engine, ExternalAlert};
use crate::executors::{ExecutorDeps, StepContext, template};
use crate::incidents::{Incident, IncidentState, fingerprint};
use crate::runbooks::Runbook;
use crate::runbooks::guards::Guards;
use crate::runbooks::runner::Runner;
use crate::series::cache::{CacheLimits, SeriesCache};
use crate::series::{Batch, Labels, Millis, Sample};
use crate::services::Supervisor;
use crate::stores::sqlite::SqliteStore;
use crate::stores::{ActionFilter, ActionState, IncidentFilter, RunState, Store};
use crate::telemetry::Metrics;

/// The wall-clock time a case starts at (2026-01-01T00:00:00Z): fixed, so
/// every play of a case stores the same times.
pub const START: Millis = 1_767_225_600_000;

/// Without `until`, play at most this long after the last event while runs
/// are still running (a restore waits for the incident to resolve).
pub const IDLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(3600);

/// One step attempt as the journal recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActualStep {
    /// Idempotency key.
    pub key: String,
    /// When it was journalled, since the start of the case (ms).
    pub at: Millis,
    /// The incident's name in the case.
    pub incident: String,
    /// Step name.
    pub step: String,
    /// Step path (`steps[0]`, `escalate[0]`).
    pub path: String,
    /// Attempt number.
    pub attempt: u32,
    /// Executor kind.
    pub executor: String,
    /// `kind:target`.
    pub target: String,
    /// The step's parameters with templates filled in.
    pub params: serde_json::Value,
    /// Journal state.
    pub state: ActionState,
    /// The guard that held it back.
    pub guard: Option<String>,
    /// Whether its verification passed.
    pub verified: Option<bool>,
    /// Result, error or guard reason.
    pub detail: String,
}

/// An incident name at the end of the case.
#[derive(Debug, Clone, PartialEq)]
pub struct ActualIncident {
    /// State of the latest incident of that name.
    pub state: IncidentState,
    /// Its runs (of all its incidents), oldest first: state and why.
    pub runs: Vec<(RunState, String)>,
}

/// A timeline entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ActualEvent {
    /// Since the start of the case (ms).
    pub at: Millis,
    /// The incident's name in the case.
    pub incident: String,
    /// Kind.
    pub kind: String,
    /// Message.
    pub message: String,
}

/// What happened in one play of a case.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Every journal entry, in order.
    pub steps: Vec<ActualStep>,
    /// Each incident name seen.
    pub incidents: BTreeMap<String, ActualIncident>,
    /// All timelines merged, in time order.
    pub events: Vec<ActualEvent>,
    /// Every call of a fake executor.
    pub calls: Vec<Call>,
    /// Rules broken and timeline events that could not apply: each fails
    /// the case.
    pub problems: Vec<String>,
    /// How much timeline was played (ms).
    pub played: Millis,
}

/// What the timeline does next.
enum Move {
    Samples(Vec<(String, Labels, f64)>),
    Event(Happening),
}

fn http_client() -> reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(reqwest::Client::new).clone()
}

/// Play `case` against `rb` (a runbook loaded from its file).
pub fn play(case: &Case, rb: &Runbook) -> Result<Outcome, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    rt.block_on(play_paused(case, rb))
}

/// Each guard the case gives replaces the runbook's.
fn overlay(base: &Guards, over: &Guards) -> Guards {
    let mut targets = base.targets.clone();
    targets.extend(over.targets.clone());
    Guards {
        rate_limit: over.rate_limit.clone().or_else(|| base.rate_limit.clone()),
        restart_loop: over
            .restart_loop
            .clone()
            .or_else(|| base.restart_loop.clone()),
        circuit_breaker: over
            .circuit_breaker
            .clone()
            .or_else(|| base.circuit_breaker.clone()),
        concurrency: over
            .concurrency
            .clone()
            .or_else(|| base.concurrency.clone()),
        targets,
    }
}

async fn play_paused(case: &Case, rb: &Runbook) -> Result<Outcome, String> {
    let t0 = Instant::now();
    let clock: SharedClock = Arc::new(VirtualClock::starting_at(START));
    let store: Arc<dyn Store> = Arc::new(SqliteStore::memory().map_err(|e| e.to_string())?);
    let metrics = Arc::new(Metrics::new());
    let (batch_tx, batch_rx) = mpsc::channel::<Batch>(1024);
    let (cmd_tx, cmd_rx) = mpsc::channel::<Command>(1024);
    let deps = ExecutorDeps {
        // Never asked to act: restarts are faked.
        supervisor: Supervisor::new(PathBuf::from("/nonexistent/medic-test"), batch_tx.clone()),
        http: http_client(),
        store: store.clone(),
    };
    let fakes = Fakes::new(case.answers.clone(), deps.clone(), clock.clone());
    let checks = Arc::new(TimelineChecks::default());
    let runner = Runner::new(store.clone(), metrics.clone(), deps, case.dry_run)
        .with_clock(clock.clone())
        .with_executors(fakes.builder())
        .with_checks(checks.clone())
        .with_jitter(|| 0.5);
    let mut rb = rb.clone();
    if let Some(g) = &case.guards {
        rb.guards = overlay(&rb.guards, g);
    }
    let engine = Engine::new(
        case.detectors.clone(),
        vec![Arc::new(rb.clone())],
        store.clone(),
        metrics,
        runner,
        Arc::new(SeriesCache::new(CacheLimits::default())),
    )
    .with_clock(clock.clone());
    let engine_task = tokio::spawn(engine.run(batch_rx, cmd_rx));

    let moves = moves(case)?;
    let mut problems = Vec::new();
    let mut last = 0;
    for (at, _, m) in moves {
        tokio::time::sleep_until(t0 + ms(at)).await;
        last = at;
        match m {
            Move::Samples(list) => {
                let now = clock.now_millis();
                let samples = list
                    .into_iter()
                    .map(|(name, labels, value)| Sample {
                        name,
                        labels,
                        value,
                        at: now,
                    })
                    .collect();
                let b = Batch {
                    source: "medic-test".into(),
                    target: "series".into(),
                    at: now,
                    samples,
                    complete: false,
                };
                let _ = batch_tx.send(b).await;
            }
            Move::Event(Happening::Fire(name)) => {
                let _ = cmd_tx
                    .send(Command::External(alert(
                        &name,
                        &case.incidents[&name],
                        true,
                        clock.as_ref(),
                    )))
                    .await;
            }
            Move::Event(Happening::Resolve(name)) => {
                let _ = cmd_tx
                    .send(Command::External(alert(
                        &name,
                        &case.incidents[&name],
                        false,
                        clock.as_ref(),
                    )))
                    .await;
            }
            Move::Event(Happening::Ack(name, by)) => {
                let spec = &case.incidents[&name];
                let fp = fingerprint(&spec.detector, &spec.labels);
                let open = store
                    .incidents(&IncidentFilter {
                        open_only: true,
                        limit: None,
                    })
                    .unwrap_or_default()
                    .into_iter()
                    .find(|i| i.fingerprint == fp);
                match open {
                    Some(i) => {
                        if let Err(e) = store.acknowledge(i.id, &by, "", clock.now_millis()) {
                            problems.push(format!("timeline: ack {name} at {}: {e}", show_ms(at)));
                        }
                    }
                    None => problems.push(format!(
                        "timeline: ack {name} at {}: {name} has no open incident to acknowledge",
                        show_ms(at)
                    )),
                }
            }
            Move::Event(Happening::Check(check, passes)) => checks.set(&check, passes),
        }
        if !settle(&cmd_tx, &batch_tx).await {
            problems.push("the engine stopped".into());
            break;
        }
    }
    match &case.until {
        Some(u) => tokio::time::sleep_until(t0 + u.value.std()).await,
        None => {
            let limit = t0 + ms(last) + IDLE_LIMIT;
            while !store.running_runs().unwrap_or_default().is_empty() && Instant::now() < limit {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    engine_task.abort();
    let played = Instant::now().duration_since(t0).as_millis() as Millis;
    let mut outcome = collect(case, &rb, store.as_ref())?;
    outcome.calls = fakes.calls();
    outcome.problems = problems;
    outcome.problems.extend(fakes.violations());
    outcome.problems.extend(dry_run_violations(&outcome));
    outcome.played = played;
    Ok(outcome)
}

fn ms(m: Millis) -> std::time::Duration {
    std::time::Duration::from_millis(m.max(0) as u64)
}

/// A time since the start, as a test file writes it (to 100 ms).
pub fn show_ms(m: Millis) -> String {
    let rounded = (m.max(0) + 50) / 100 * 100;
    if rounded == 0 {
        return "0s".into();
    }
    humantime::format_duration(ms(rounded)).to_string()
}

/// Until the engine has taken everything sent to it. It handles each
/// command or batch within the poll that receives it, so once the channels
/// are empty, the incidents are opened and their runs launched.
async fn settle(cmd: &mpsc::Sender<Command>, batch: &mpsc::Sender<Batch>) -> bool {
    while cmd.capacity() < cmd.max_capacity() || batch.capacity() < batch.max_capacity() {
        if cmd.is_closed() || batch.is_closed() {
            return false;
        }
        tokio::task::yield_now().await;
    }
    true
}

fn alert(name: &str, spec: &IncidentSpec, firing: bool, clock: &dyn Clock) -> ExternalAlert {
    let labels: Vec<String> = spec
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    ExternalAlert {
        detector: spec.detector.value.clone(),
        labels: spec.labels.clone(),
        severity: spec
            .severity
            .unwrap_or(crate::detectors::Severity::Critical)
            .as_str()
            .into(),
        summary: spec
            .summary
            .clone()
            .unwrap_or_else(|| format!("{} {{{}}}", spec.detector.value, labels.join(", "))),
        at: clock.now_millis(),
        firing,
        evidence: serde_json::json!({ "reason": format!("test timeline: {name} {}", if firing { "fires" } else { "clears" }) }),
    }
}

/// The timeline's events and the series' values, in time order (at one
/// time: series values first, then events in file order).
fn moves(case: &Case) -> Result<Vec<(Millis, usize, Move)>, String> {
    let mut out = Vec::new();
    let mut points: BTreeMap<Millis, Vec<(String, Labels, f64)>> = BTreeMap::new();
    for s in &case.series {
        let (name, labels) = series_name(&s.series.value)?;
        for (i, v) in expand_values(&s.values.value)?.into_iter().enumerate() {
            if let Some(v) = v {
                let at = s.from.millis() + s.every.millis() * i as Millis;
                points
                    .entry(at)
                    .or_default()
                    .push((name.clone(), labels.clone(), v));
            }
        }
    }
    for (at, list) in points {
        out.push((at, 0, Move::Samples(list)));
    }
    for (i, e) in case.timeline.iter().enumerate() {
        out.push((e.at.value.millis(), i + 1, Move::Event(e.happening()?)));
    }
    out.sort_by_key(|(at, seq, _)| (*at, *seq));
    Ok(out)
}

/// The case's name for an incident: the one whose detector it comes from
/// and whose labels it has (all of them; an exact match first).
fn name_of(case: &Case, i: &Incident) -> String {
    let matching = |exact: bool| {
        case.incidents.iter().find(|(_, s)| {
            s.detector.value == i.detector
                && if exact {
                    s.labels == i.labels
                } else {
                    s.labels.iter().all(|(k, v)| i.labels.get(k) == Some(v))
                }
        })
    };
    match matching(true).or_else(|| matching(false)) {
        Some((n, _)) => n.clone(),
        None => {
            let labels: Vec<String> = i.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            format!("{}{{{}}}", i.detector, labels.join(", "))
        }
    }
}

fn collect(case: &Case, rb: &Runbook, store: &dyn Store) -> Result<Outcome, String> {
    let e = |e: crate::stores::StoreError| e.to_string();
    let mut incidents = store
        .incidents(&IncidentFilter {
            open_only: false,
            limit: None,
        })
        .map_err(e)?;
    incidents.sort_by_key(|i| i.id);
    let names: BTreeMap<i64, String> = incidents.iter().map(|i| (i.id, name_of(case, i))).collect();
    let mut out = Outcome::default();
    for i in &incidents {
        let name = names[&i.id].clone();
        let runs = store.runs_for(i.id).map_err(e)?;
        let entry = out.incidents.entry(name.clone()).or_insert(ActualIncident {
            state: i.state,
            runs: Vec::new(),
        });
        entry.state = i.state;
        let mut runs: Vec<_> = runs.into_iter().collect();
        runs.sort_by_key(|r| r.id);
        entry.runs.extend(
            runs.into_iter()
                .map(|r| (r.state, r.detail.unwrap_or_default())),
        );
        for ev in store.timeline(i.id).map_err(e)? {
            out.events.push(ActualEvent {
                at: ev.at - START,
                incident: name.clone(),
                kind: ev.kind,
                message: ev.message,
            });
        }
    }
    out.events.sort_by_key(|ev| ev.at);
    let steps = all_steps(rb);
    let journal = store
        .recent_actions(&ActionFilter {
            target: None,
            runbook: None,
            since: 0,
            limit: 1_000_000,
        })
        .map_err(e)?;
    for a in journal {
        let incident = incidents.iter().find(|i| i.id == a.incident_id);
        let step = steps.iter().find(|(p, _)| *p == a.step).map(|(_, s)| *s);
        let params = match (step, incident) {
            (Some(s), Some(i)) => {
                let ctx = StepContext {
                    incident: i.clone(),
                    runbook: a.runbook.clone(),
                    step: a.step.clone(),
                    step_name: a.step_name.clone(),
                    attempt: a.attempt,
                    idempotency_key: a.idempotency_key.clone(),
                    dry_run: a.state == ActionState::DryRun,
                    timeout: s.timeout.std(),
                    fence: None,
                };
                rendered_params(&s.action, &ctx)
            }
            _ => a.params.clone(),
        };
        let detail = a.detail.clone().unwrap_or_default();
        let guard = (a.state == ActionState::Blocked)
            .then(|| {
                detail
                    .strip_prefix("guard ")
                    .and_then(|d| d.split_once(':'))
                    .map(|(g, _)| g.to_string())
            })
            .flatten();
        out.steps.push(ActualStep {
            key: a.idempotency_key.clone(),
            at: a.intended_at - START,
            incident: names.get(&a.incident_id).cloned().unwrap_or_default(),
            step: a.step_name,
            path: a.step,
            attempt: a.attempt,
            executor: a.executor,
            target: a.target,
            params,
            state: a.state,
            guard,
            verified: a.verified,
            detail,
        });
    }
    Ok(out)
}

/// The step's action as written (without `kind` and unset fields), every
/// template filled in for this attempt.
pub fn rendered_params(
    action: &crate::executors::ActionConfig,
    ctx: &StepContext,
) -> serde_json::Value {
    fn fill(v: serde_json::Value, ctx: &StepContext) -> Option<serde_json::Value> {
        use serde_json::Value;
        Some(match v {
            Value::Null => return None,
            Value::String(s) if s.contains("{{") => {
                Value::String(template::render(&s, ctx, template::raw))
            }
            // Unset fields (null, empty lists and maps) are left out.
            Value::Array(a) if a.is_empty() => return None,
            Value::Object(m) if m.is_empty() => return None,
            Value::Array(a) => Value::Array(a.into_iter().filter_map(|x| fill(x, ctx)).collect()),
            Value::Object(m) => Value::Object(
                m.into_iter()
                    .filter_map(|(k, x)| fill(x, ctx).map(|x| (k, x)))
                    .collect(),
            ),
            other => other,
        })
    }
    let mut v = serde_json::to_value(action).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.remove("kind");
    }
    fill(v, ctx).unwrap_or_default()
}

/// A dry run must not touch a target: an executor called without its
/// dry-run flag for an attempt the journal records as a dry run.
fn dry_run_violations(o: &Outcome) -> Vec<String> {
    o.calls
        .iter()
        .filter(|c| !c.dry_run)
        .filter(|c| {
            o.steps
                .iter()
                .any(|s| s.key == c.key && s.state == ActionState::DryRun)
        })
        .map(|c| {
            format!(
                "dry run: step {:?} acted on {} ({})",
                c.step, c.target, c.key
            )
        })
        .collect()
}
