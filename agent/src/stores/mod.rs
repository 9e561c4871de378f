//! Durable state behind one interface: incidents, their timelines, runbook
//! runs and the action journal.
//!
//! The embedded SQLite store is the default; the etcd store (`store: {kind:
//! etcd}`) implements the same trait for several medic nodes. Every method is
//! short and synchronous: callers in async code may call it directly (SQLite
//! on local disk answers in well under a millisecond; etcd in a round trip or
//! a few, each bounded by its request timeout).

#[cfg(test)]
pub mod contract;
pub mod etcd;
pub mod migrate;
pub mod oncall;
pub mod spool;
pub mod sqlite;

pub use oncall::OncallStore;

use std::path::Path;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::incidents::{Incident, IncidentState, TimelineEvent};
use crate::series::{Labels, Millis};

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed.
    #[error("store: {0}")]
    Backend(String),
    /// No such record.
    #[error("not found: {0}")]
    NotFound(String),
    /// The change is not allowed in the record's current state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// With leader election: this node does not hold the leader key (or can
    /// no longer renew it), so the store refused a change only the leader
    /// makes. The caller must stop acting; the leader carries on.
    #[error("fenced: {0}")]
    Fenced(String),
}

/// Result alias.
pub type StoreResult<T> = Result<T, StoreError>;

/// `store:` in `medic.yaml`: where state lives.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StoreConfig {
    /// The embedded SQLite database `<state_dir>/medic.db` (the default).
    // A struct variant: serde refuses unknown fields only there.
    Sqlite {},
    /// An etcd v3 cluster shared by several medic nodes.
    Etcd(etcd::EtcdConfig),
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig::Sqlite {}
    }
}

impl StoreConfig {
    /// The leader election, if configured.
    pub fn election(&self) -> Option<&etcd::election::ElectionConfig> {
        match self {
            StoreConfig::Etcd(c) => c.election.as_ref(),
            StoreConfig::Sqlite {} => None,
        }
    }

    /// Mistakes `medic check` reports.
    pub fn problems(&self) -> Vec<String> {
        match self {
            StoreConfig::Sqlite {} => Vec::new(),
            StoreConfig::Etcd(c) => c.problems(),
        }
    }
}

/// The SQLite file in a state directory.
pub fn sqlite_path(state_dir: &Path) -> std::path::PathBuf {
    state_dir.join("medic.db")
}

/// Open the configured store. `base_dir` resolves relative paths in the
/// store's settings (TLS files).
pub fn open(c: &StoreConfig, state_dir: &Path, base_dir: &Path) -> StoreResult<Arc<dyn Store>> {
    Ok(match c {
        StoreConfig::Sqlite {} => Arc::new(sqlite::SqliteStore::open(&sqlite_path(state_dir))?),
        StoreConfig::Etcd(e) => Arc::new(etcd::EtcdStore::open(e, base_dir)?),
    })
}

/// A detector report for an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// Fingerprint of detector + labels.
    pub fingerprint: String,
    /// Detector name.
    pub detector: String,
    /// Labels.
    pub labels: Labels,
    /// Severity.
    pub severity: String,
    /// One line.
    pub summary: String,
    /// When.
    pub at: Millis,
    /// Evidence as JSON.
    pub evidence: serde_json::Value,
}

impl Detection {
    /// The incident this detection opens, with store id `id`.
    pub fn new_incident(&self, id: i64) -> Incident {
        Incident {
            id,
            fingerprint: self.fingerprint.clone(),
            detector: self.detector.clone(),
            labels: self.labels.clone(),
            severity: self.severity.clone(),
            state: IncidentState::Firing,
            summary: self.summary.clone(),
            opened_at: self.at,
            updated_at: self.at,
            resolved_at: None,
            acked_by: None,
            acked_at: None,
            occurrences: 1,
        }
    }
}

/// State of a runbook run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Steps are being executed.
    Running,
    /// A step verified: the incident is recovering or resolved.
    Recovered,
    /// Steps finished without verification failing.
    Completed,
    /// Recovery did not verify; on_failure ran and it escalated.
    Failed,
    /// Stopped because the incident resolved or the runbook disappeared.
    Aborted,
    /// A guard rail held a step back; it escalated.
    Blocked,
}

impl RunState {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Recovered => "recovered",
            RunState::Completed => "completed",
            RunState::Failed => "failed",
            RunState::Aborted => "aborted",
            RunState::Blocked => "blocked",
        }
    }
    /// Parse the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => RunState::Running,
            "recovered" => RunState::Recovered,
            "completed" => RunState::Completed,
            "failed" => RunState::Failed,
            "aborted" => RunState::Aborted,
            "blocked" => RunState::Blocked,
            _ => return None,
        })
    }
}

/// One execution of a runbook for an incident.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Run {
    /// Store id.
    pub id: i64,
    /// Incident.
    pub incident_id: i64,
    /// Runbook name.
    pub runbook: String,
    /// State.
    pub state: RunState,
    /// Started.
    pub started_at: Millis,
    /// Finished.
    pub finished_at: Option<Millis>,
    /// Why it ended as it did.
    pub detail: Option<String>,
}

/// Journal state of one action attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionState {
    /// Written before the action runs.
    Intended,
    /// The executor reported success.
    Succeeded,
    /// The executor reported failure or timed out.
    Failed,
    /// Found `intended` after a crash: it may or may not have run.
    Interrupted,
    /// Dry run: recorded, not executed.
    DryRun,
    /// A guard rail held it back; `detail` says which and why.
    Blocked,
}

impl ActionState {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionState::Intended => "intended",
            ActionState::Succeeded => "succeeded",
            ActionState::Failed => "failed",
            ActionState::Interrupted => "interrupted",
            ActionState::DryRun => "dry_run",
            ActionState::Blocked => "blocked",
        }
    }
    /// Parse the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "intended" => ActionState::Intended,
            "succeeded" => ActionState::Succeeded,
            "failed" => ActionState::Failed,
            "interrupted" => ActionState::Interrupted,
            "dry_run" => ActionState::DryRun,
            "blocked" => ActionState::Blocked,
            _ => return None,
        })
    }
}

/// One action attempt in the journal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Action {
    /// `run-<run>/<step path>/attempt-<n>`: unique; an action with a key
    /// already journalled is never started again.
    pub idempotency_key: String,
    /// Run.
    pub run_id: i64,
    /// Incident.
    pub incident_id: i64,
    /// Step path within the runbook (`steps[0]`, `steps[1].on_failure[0]`, `escalate[0]`).
    pub step: String,
    /// Step name.
    pub step_name: String,
    /// Attempt number from 1.
    pub attempt: u32,
    /// Executor kind.
    pub executor: String,
    /// Runbook name.
    pub runbook: String,
    /// What it acts on, as `<kind>:<target>` (`restart:web`): the key the
    /// per-target lock and the guard rails use.
    pub target: String,
    /// Parameters as JSON (no secrets).
    pub params: serde_json::Value,
    /// State.
    pub state: ActionState,
    /// Written before running.
    pub intended_at: Millis,
    /// Written after.
    pub finished_at: Option<Millis>,
    /// Result or error.
    pub detail: Option<String>,
    /// Whether the step's `verify` passed after this action (None: not checked).
    pub verified: Option<bool>,
    /// When the verification ended.
    pub verified_at: Option<Millis>,
    /// The leader's fencing token the action ran under; set by a store with
    /// leader election (etcd `election:`), `None` elsewhere.
    #[serde(default)]
    pub fence: Option<i64>,
}

impl Action {
    /// The action ran, or may have run (not a dry run, not blocked).
    pub fn acted(&self) -> bool {
        matches!(
            self.state,
            ActionState::Intended
                | ActionState::Succeeded
                | ActionState::Failed
                | ActionState::Interrupted
        )
    }
}

/// Which journal entries to read.
#[derive(Debug, Clone, Default)]
pub struct ActionFilter {
    /// Only actions on this target (`restart:web`).
    pub target: Option<String>,
    /// Only actions of this runbook.
    pub runbook: Option<String>,
    /// Only actions intended at or after this time.
    pub since: Millis,
    /// The newest this many (still returned oldest first).
    pub limit: usize,
}

/// Filter for listing incidents.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    /// Only open (not resolved) incidents.
    pub open_only: bool,
    /// At most this many, newest first.
    pub limit: Option<usize>,
}

/// Durable state. The on-call half (escalations, the notification outbox,
/// silences) is [`OncallStore`].
pub trait Store: OncallStore + Send + Sync {
    /// Open an incident for a detection, or update the open one with the same
    /// fingerprint. Returns the incident and whether it was newly opened.
    fn record_firing(&self, d: &Detection) -> StoreResult<(Incident, bool)>;
    /// Resolve the open incident with this fingerprint, if any.
    fn record_resolved(
        &self,
        fingerprint: &str,
        at: Millis,
        cause: &str,
        evidence: serde_json::Value,
    ) -> StoreResult<Option<Incident>>;
    /// Move an incident to a state, recording who and why.
    fn transition(
        &self,
        id: i64,
        to: IncidentState,
        at: Millis,
        actor: &str,
        cause: &str,
    ) -> StoreResult<Incident>;
    /// Acknowledge: sticky until resolved. Refused on resolved incidents.
    fn acknowledge(&self, id: i64, who: &str, comment: &str, at: Millis) -> StoreResult<Incident>;
    /// Append to a timeline.
    fn append_event(
        &self,
        incident_id: i64,
        at: Millis,
        kind: &str,
        actor: &str,
        message: &str,
        data: serde_json::Value,
    ) -> StoreResult<()>;
    /// One incident.
    fn incident(&self, id: i64) -> StoreResult<Option<Incident>>;
    /// Incidents, newest first.
    fn incidents(&self, filter: &IncidentFilter) -> StoreResult<Vec<Incident>>;
    /// An incident's timeline, oldest first.
    fn timeline(&self, id: i64) -> StoreResult<Vec<TimelineEvent>>;
    /// Count of incidents by state.
    fn count_by_state(&self) -> StoreResult<Vec<(IncidentState, i64)>>;
    /// Ids of open incidents whose timeline records flapping (the web
    /// console's marker). This default reads each open incident's timeline;
    /// a store may answer in one query.
    fn flapping_incidents(&self) -> StoreResult<Vec<i64>> {
        let open = self.incidents(&IncidentFilter {
            open_only: true,
            limit: None,
        })?;
        let mut out = Vec::new();
        for i in open {
            if self.timeline(i.id)?.iter().any(|e| e.kind == "flapping") {
                out.push(i.id);
            }
        }
        Ok(out)
    }

    /// Start a run.
    fn start_run(&self, incident_id: i64, runbook: &str, at: Millis) -> StoreResult<Run>;
    /// Finish a run.
    fn finish_run(&self, run_id: i64, state: RunState, at: Millis, detail: &str)
    -> StoreResult<()>;
    /// Runs still marked running (to resume after a crash).
    fn running_runs(&self) -> StoreResult<Vec<Run>>;
    /// Runs of an incident.
    fn runs_for(&self, incident_id: i64) -> StoreResult<Vec<Run>>;

    /// Journal an action as intended, before running it. Fails with
    /// `Conflict` if the key exists: the caller must not run it. Returns the
    /// fencing token the entry was written under (with leader election; the
    /// runner hands it to the executor), `None` without election.
    fn journal_intend(&self, a: &Action) -> StoreResult<Option<i64>>;
    /// Journal the outcome.
    fn journal_finish(
        &self,
        key: &str,
        state: ActionState,
        at: Millis,
        detail: &str,
    ) -> StoreResult<()>;
    /// Look up one action.
    fn journal_get(&self, key: &str) -> StoreResult<Option<Action>>;
    /// All actions of a run, in order.
    fn journal_for_run(&self, run_id: i64) -> StoreResult<Vec<Action>>;
    /// All actions of an incident, in order.
    fn journal_for_incident(&self, incident_id: i64) -> StoreResult<Vec<Action>>;
    /// Record whether the step's verification passed after this action.
    fn journal_verified(&self, key: &str, passed: bool, at: Millis) -> StoreResult<()>;
    /// Recent actions across runs, oldest first: what guard rails count.
    fn recent_actions(&self, filter: &ActionFilter) -> StoreResult<Vec<Action>>;

    /// Save learnt model states of a detector (per label set, serialised),
    /// under a fingerprint of its configuration; states saved under another
    /// configuration are dropped.
    fn save_model_states(
        &self,
        detector: &str,
        config: &str,
        states: &[(Labels, String)],
        at: Millis,
    ) -> StoreResult<()>;
    /// The states saved for this detector and configuration.
    fn load_model_states(&self, detector: &str, config: &str)
    -> StoreResult<Vec<(Labels, String)>>;

    /// With leader election (etcd `election:`): whether this node leads now.
    /// `None`: no election, this node always acts.
    fn leading(&self) -> Option<bool> {
        None
    }

    /// Whether the store answers, and with leader election who leads. Read
    /// from memory (a background probe keeps it current), so it is cheap.
    fn status(&self) -> StoreStatus {
        StoreStatus {
            up: true,
            detail: None,
            node: None,
            leader: None,
        }
    }
}

/// What [`Store::status`] reports: `GET /api/v1/status`, the console's
/// banner and `medic_store_up` come from it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreStatus {
    /// The store answers (etcd: a linearizable read succeeds, so it has
    /// quorum). `false` is degraded mode: no automated action runs, and
    /// incidents detected meanwhile are notified from the local spool.
    pub up: bool,
    /// Why it is down.
    pub detail: Option<String>,
    /// This node's name in the election.
    pub node: Option<String>,
    /// Who holds the leader key, as last read (unknown while down).
    pub leader: Option<LeaderInfo>,
}

/// The holder of the leader key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeaderInfo {
    /// Its node name (a label: two nodes may share one; the token tells
    /// them apart).
    pub node: String,
    /// Its fencing token (the key's `create_revision`).
    pub token: i64,
}
