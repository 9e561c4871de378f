//! The embedded default store: SQLite in WAL mode (rusqlite, bundled).
//!
//! Why SQLite: one file, transactions that survive `kill -9` (WAL with
//! `synchronous=FULL` makes every committed write durable before we act on
//! it), SQL for the console's queries, and no server to run.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{
    Action, ActionFilter, ActionState, Detection, IncidentFilter, Run, RunState, Store, StoreError,
    StoreResult,
};
use crate::incidents::{Incident, IncidentState, TimelineEvent};
use crate::series::{Labels, Millis};

/// SQLite-backed [`Store`].
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

fn be(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS incidents (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  fingerprint TEXT NOT NULL,
  detector TEXT NOT NULL,
  labels TEXT NOT NULL,
  severity TEXT NOT NULL,
  state TEXT NOT NULL,
  summary TEXT NOT NULL,
  opened_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  resolved_at INTEGER,
  acked_by TEXT,
  acked_at INTEGER,
  occurrences INTEGER NOT NULL DEFAULT 1
);
-- At most one open incident per fingerprint.
CREATE UNIQUE INDEX IF NOT EXISTS incidents_open_fp ON incidents(fingerprint) WHERE state != 'resolved';
CREATE TABLE IF NOT EXISTS timeline (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  incident_id INTEGER NOT NULL REFERENCES incidents(id),
  at INTEGER NOT NULL,
  kind TEXT NOT NULL,
  actor TEXT NOT NULL,
  message TEXT NOT NULL,
  data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS timeline_incident ON timeline(incident_id, id);
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  incident_id INTEGER NOT NULL REFERENCES incidents(id),
  runbook TEXT NOT NULL,
  state TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  finished_at INTEGER,
  detail TEXT
);
CREATE TABLE IF NOT EXISTS actions (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  idempotency_key TEXT NOT NULL UNIQUE,
  run_id INTEGER NOT NULL REFERENCES runs(id),
  incident_id INTEGER NOT NULL REFERENCES incidents(id),
  step TEXT NOT NULL,
  step_name TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  executor TEXT NOT NULL,
  params TEXT NOT NULL,
  state TEXT NOT NULL,
  intended_at INTEGER NOT NULL,
  finished_at INTEGER,
  detail TEXT,
  runbook TEXT NOT NULL DEFAULT '',
  target TEXT NOT NULL DEFAULT '',
  verified INTEGER,
  verified_at INTEGER
);
CREATE INDEX IF NOT EXISTS actions_run ON actions(run_id, seq);
CREATE TABLE IF NOT EXISTS model_states (
  detector TEXT NOT NULL,
  config TEXT NOT NULL,
  labels TEXT NOT NULL,
  state TEXT NOT NULL,
  saved_at INTEGER NOT NULL,
  PRIMARY KEY (detector, labels)
);
"#;

/// Columns added after the first release, for databases made before them.
const ACTION_COLUMNS_ADDED: &[(&str, &str)] = &[
    ("runbook", "TEXT NOT NULL DEFAULT ''"),
    ("target", "TEXT NOT NULL DEFAULT ''"),
    ("verified", "INTEGER"),
    ("verified_at", "INTEGER"),
];

/// Indexes on added columns: created after the columns exist.
const INDEXES: &str = r#"
CREATE INDEX IF NOT EXISTS actions_target ON actions(target, intended_at);
CREATE INDEX IF NOT EXISTS actions_runbook ON actions(runbook, intended_at);
"#;

fn migrate(c: &Connection) -> rusqlite::Result<()> {
    let have: Vec<String> = c
        .prepare("SELECT name FROM pragma_table_info('actions')")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for (col, ty) in ACTION_COLUMNS_ADDED {
        if !have.iter().any(|h| h == col) {
            c.execute_batch(&format!("ALTER TABLE actions ADD COLUMN {col} {ty}"))?;
        }
    }
    c.execute_batch(INDEXES)
}

const INCIDENT_COLS: &str = "id, fingerprint, detector, labels, severity, state, summary, opened_at, updated_at, resolved_at, acked_by, acked_at, occurrences";

fn incident_row(r: &Row<'_>) -> rusqlite::Result<Incident> {
    let labels: String = r.get(3)?;
    let state: String = r.get(5)?;
    Ok(Incident {
        id: r.get(0)?,
        fingerprint: r.get(1)?,
        detector: r.get(2)?,
        labels: serde_json::from_str::<Labels>(&labels).unwrap_or_default(),
        severity: r.get(4)?,
        state: IncidentState::parse(&state).unwrap_or(IncidentState::Firing),
        summary: r.get(6)?,
        opened_at: r.get(7)?,
        updated_at: r.get(8)?,
        resolved_at: r.get(9)?,
        acked_by: r.get(10)?,
        acked_at: r.get(11)?,
        occurrences: r.get(12)?,
    })
}

fn run_row(r: &Row<'_>) -> rusqlite::Result<Run> {
    let state: String = r.get(3)?;
    Ok(Run {
        id: r.get(0)?,
        incident_id: r.get(1)?,
        runbook: r.get(2)?,
        state: RunState::parse(&state).unwrap_or(RunState::Running),
        started_at: r.get(4)?,
        finished_at: r.get(5)?,
        detail: r.get(6)?,
    })
}

const TIMELINE_COLS: &str = "id, incident_id, at, kind, actor, message, data";

fn timeline_row(r: &Row<'_>) -> rusqlite::Result<TimelineEvent> {
    let data: String = r.get(6)?;
    Ok(TimelineEvent {
        id: r.get(0)?,
        incident_id: r.get(1)?,
        at: r.get(2)?,
        kind: r.get(3)?,
        actor: r.get(4)?,
        message: r.get(5)?,
        data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
    })
}

const ACTION_COLS: &str = "idempotency_key, run_id, incident_id, step, step_name, attempt, executor, params, state, intended_at, finished_at, detail, runbook, target, verified, verified_at";

fn action_row(r: &Row<'_>) -> rusqlite::Result<Action> {
    let params: String = r.get(7)?;
    let state: String = r.get(8)?;
    Ok(Action {
        idempotency_key: r.get(0)?,
        run_id: r.get(1)?,
        incident_id: r.get(2)?,
        step: r.get(3)?,
        step_name: r.get(4)?,
        attempt: r.get(5)?,
        executor: r.get(6)?,
        params: serde_json::from_str(&params).unwrap_or(serde_json::Value::Null),
        state: ActionState::parse(&state).unwrap_or(ActionState::Intended),
        intended_at: r.get(9)?,
        finished_at: r.get(10)?,
        detail: r.get(11)?,
        runbook: r.get(12)?,
        target: r.get(13)?,
        verified: r.get(14)?,
        verified_at: r.get(15)?,
        fence: None,
    })
}

impl SqliteStore {
    /// Open (creating if needed) the database file.
    pub fn open(path: &Path) -> StoreResult<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Backend(format!("{}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(be)?;
        Self::init(conn)
    }

    /// An in-memory store (tests).
    pub fn memory() -> StoreResult<Self> {
        Self::init(Connection::open_in_memory().map_err(be)?)
    }

    fn init(conn: Connection) -> StoreResult<Self> {
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(be)?;
        // FULL: a commit is on disk before we go on to act on it.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(be)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(be)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(be)?;
        conn.execute_batch(SCHEMA).map_err(be)?;
        migrate(&conn).map_err(be)?;
        conn.execute_batch(oncall::SCHEMA).map_err(be)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        // A panic while holding the lock leaves SQLite consistent (transactions
        // roll back), so a poisoned lock is safe to keep using.
        let mut c = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut c).map_err(be)
    }

    fn event(
        tx: &Connection,
        incident_id: i64,
        at: Millis,
        kind: &str,
        actor: &str,
        message: &str,
        data: &serde_json::Value,
    ) -> rusqlite::Result<()> {
        tx.execute(
            "INSERT INTO timeline (incident_id, at, kind, actor, message, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![incident_id, at, kind, actor, message, data.to_string()],
        )?;
        Ok(())
    }

    fn get_incident(c: &Connection, id: i64) -> rusqlite::Result<Option<Incident>> {
        c.query_row(
            &format!("SELECT {INCIDENT_COLS} FROM incidents WHERE id = ?1"),
            [id],
            incident_row,
        )
        .optional()
    }
}

impl Store for SqliteStore {
    fn record_firing(&self, d: &Detection) -> StoreResult<(Incident, bool)> {
        self.with(|c| {
            let tx = c.transaction()?;
            let open: Option<Incident> = tx
                .query_row(
                    &format!("SELECT {INCIDENT_COLS} FROM incidents WHERE fingerprint = ?1 AND state != 'resolved'"),
                    [&d.fingerprint],
                    incident_row,
                )
                .optional()?;
            let (inc, new) = match open {
                Some(i) => {
                    tx.execute(
                        "UPDATE incidents SET updated_at = ?2, occurrences = occurrences + 1, summary = ?3 WHERE id = ?1",
                        params![i.id, d.at, d.summary],
                    )?;
                    Self::event(&tx, i.id, d.at, "evidence", &format!("detector:{}", d.detector), &d.summary, &d.evidence)?;
                    (Self::get_incident(&tx, i.id)?.unwrap_or(i), false)
                }
                None => {
                    tx.execute(
                        "INSERT INTO incidents (fingerprint, detector, labels, severity, state, summary, opened_at, updated_at) VALUES (?1, ?2, ?3, ?4, 'firing', ?5, ?6, ?6)",
                        params![d.fingerprint, d.detector, serde_json::to_string(&d.labels).unwrap_or_default(), d.severity, d.summary, d.at],
                    )?;
                    let id = tx.last_insert_rowid();
                    Self::event(&tx, id, d.at, "opened", &format!("detector:{}", d.detector), &format!("firing: {}", d.summary), &d.evidence)?;
                    (Self::get_incident(&tx, id)?.expect("just inserted"), true)
                }
            };
            tx.commit()?;
            Ok((inc, new))
        })
    }

    fn record_resolved(
        &self,
        fingerprint: &str,
        at: Millis,
        cause: &str,
        evidence: serde_json::Value,
    ) -> StoreResult<Option<Incident>> {
        self.with(|c| {
            let tx = c.transaction()?;
            let open: Option<Incident> = tx
                .query_row(
                    &format!("SELECT {INCIDENT_COLS} FROM incidents WHERE fingerprint = ?1 AND state != 'resolved'"),
                    [fingerprint],
                    incident_row,
                )
                .optional()?;
            let Some(i) = open else {
                return Ok(None);
            };
            tx.execute(
                "UPDATE incidents SET state = 'resolved', resolved_at = ?2, updated_at = ?2 WHERE id = ?1",
                params![i.id, at],
            )?;
            Self::event(&tx, i.id, at, "transition", &format!("detector:{}", i.detector), &format!("{} → resolved: {cause}", i.state.as_str()), &evidence)?;
            let r = Self::get_incident(&tx, i.id)?;
            tx.commit()?;
            Ok(r)
        })
    }

    fn transition(
        &self,
        id: i64,
        to: IncidentState,
        at: Millis,
        actor: &str,
        cause: &str,
    ) -> StoreResult<Incident> {
        self.with(|c| {
            let tx = c.transaction()?;
            let Some(i) = Self::get_incident(&tx, id)? else {
                return Ok(Err(StoreError::NotFound(format!("incident {id}"))));
            };
            if i.state == IncidentState::Resolved && to != IncidentState::Resolved {
                return Ok(Err(StoreError::Conflict(format!("incident {id} is resolved"))));
            }
            if i.state == to {
                return Ok(Ok(i));
            }
            let resolved_at = (to == IncidentState::Resolved).then_some(at);
            tx.execute(
                "UPDATE incidents SET state = ?2, updated_at = ?3, resolved_at = COALESCE(?4, resolved_at) WHERE id = ?1",
                params![id, to.as_str(), at, resolved_at],
            )?;
            Self::event(&tx, id, at, "transition", actor, &format!("{} → {}: {cause}", i.state.as_str(), to.as_str()), &serde_json::Value::Null)?;
            let r = Self::get_incident(&tx, id)?.expect("exists");
            tx.commit()?;
            Ok(Ok(r))
        })?
    }

    fn acknowledge(&self, id: i64, who: &str, comment: &str, at: Millis) -> StoreResult<Incident> {
        self.with(|c| {
            let tx = c.transaction()?;
            let Some(i) = Self::get_incident(&tx, id)? else {
                return Ok(Err(StoreError::NotFound(format!("incident {id}"))));
            };
            if i.state == IncidentState::Resolved {
                return Ok(Err(StoreError::Conflict(format!("incident {id} is already resolved"))));
            }
            // Acknowledged is a human state; an incident medic is recovering
            // stays recovering but records who holds it.
            let new_state = if i.state == IncidentState::Firing { IncidentState::Acknowledged } else { i.state };
            tx.execute(
                "UPDATE incidents SET acked_by = ?2, acked_at = ?3, state = ?4, updated_at = ?3 WHERE id = ?1",
                params![id, who, at, new_state.as_str()],
            )?;
            let msg = if comment.is_empty() { format!("acknowledged by {who}") } else { format!("acknowledged by {who}: {comment}") };
            Self::event(&tx, id, at, "ack", &format!("user:{who}"), &msg, &serde_json::json!({"who": who, "comment": comment}))?;
            let r = Self::get_incident(&tx, id)?.expect("exists");
            tx.commit()?;
            Ok(Ok(r))
        })?
    }

    fn append_event(
        &self,
        incident_id: i64,
        at: Millis,
        kind: &str,
        actor: &str,
        message: &str,
        data: serde_json::Value,
    ) -> StoreResult<()> {
        self.with(|c| Self::event(c, incident_id, at, kind, actor, message, &data))
    }

    fn incident(&self, id: i64) -> StoreResult<Option<Incident>> {
        self.with(|c| Self::get_incident(c, id))
    }

    fn incidents(&self, filter: &IncidentFilter) -> StoreResult<Vec<Incident>> {
        self.with(|c| {
            let mut sql = format!("SELECT {INCIDENT_COLS} FROM incidents");
            if filter.open_only {
                sql.push_str(" WHERE state != 'resolved'");
            }
            sql.push_str(" ORDER BY id DESC");
            if let Some(l) = filter.limit {
                sql.push_str(&format!(" LIMIT {l}"));
            }
            let mut st = c.prepare(&sql)?;
            let rows = st.query_map([], incident_row)?;
            rows.collect()
        })
    }

    fn timeline(&self, id: i64) -> StoreResult<Vec<TimelineEvent>> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {TIMELINE_COLS} FROM timeline WHERE incident_id = ?1 ORDER BY id"
            ))?;
            let rows = st.query_map([id], timeline_row)?;
            rows.collect()
        })
    }

    fn flapping_incidents(&self) -> StoreResult<Vec<i64>> {
        self.with(|c| {
            // Per open incident through the timeline index, not a scan of the timeline.
            let mut st = c.prepare_cached(
                "SELECT id FROM incidents i WHERE state != 'resolved' AND EXISTS \
                 (SELECT 1 FROM timeline t WHERE t.incident_id = i.id AND t.kind = 'flapping') ORDER BY id DESC",
            )?;
            let rows = st.query_map([], |r| r.get(0))?;
            rows.collect()
        })
    }

    fn count_by_state(&self) -> StoreResult<Vec<(IncidentState, i64)>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT state, COUNT(*) FROM incidents GROUP BY state")?;
            let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (s, n) = row?;
                if let Some(s) = IncidentState::parse(&s) {
                    out.push((s, n));
                }
            }
            Ok(out)
        })
    }

    fn start_run(&self, incident_id: i64, runbook: &str, at: Millis) -> StoreResult<Run> {
        self.with(|c| {
            c.execute(
                "INSERT INTO runs (incident_id, runbook, state, started_at) VALUES (?1, ?2, 'running', ?3)",
                params![incident_id, runbook, at],
            )?;
            let id = c.last_insert_rowid();
            c.query_row("SELECT id, incident_id, runbook, state, started_at, finished_at, detail FROM runs WHERE id = ?1", [id], run_row)
        })
    }

    fn finish_run(
        &self,
        run_id: i64,
        state: RunState,
        at: Millis,
        detail: &str,
    ) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "UPDATE runs SET state = ?2, finished_at = ?3, detail = ?4 WHERE id = ?1",
                params![run_id, state.as_str(), at, detail],
            )?;
            Ok(())
        })
    }

    fn running_runs(&self) -> StoreResult<Vec<Run>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT id, incident_id, runbook, state, started_at, finished_at, detail FROM runs WHERE state = 'running' ORDER BY id")?;
            let rows = st.query_map([], run_row)?;
            rows.collect()
        })
    }

    fn runs_for(&self, incident_id: i64) -> StoreResult<Vec<Run>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT id, incident_id, runbook, state, started_at, finished_at, detail FROM runs WHERE incident_id = ?1 ORDER BY id")?;
            let rows = st.query_map([incident_id], run_row)?;
            rows.collect()
        })
    }

    fn journal_intend(&self, a: &Action) -> StoreResult<Option<i64>> {
        let r = self.with(|c| {
            let n = c.execute(
                &format!("INSERT OR IGNORE INTO actions ({ACTION_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"),
                params![a.idempotency_key, a.run_id, a.incident_id, a.step, a.step_name, a.attempt, a.executor, a.params.to_string(), a.state.as_str(), a.intended_at, a.finished_at, a.detail, a.runbook, a.target, a.verified, a.verified_at],
            )?;
            Ok(n)
        })?;
        if r == 0 {
            return Err(StoreError::Conflict(format!(
                "action {} already journalled",
                a.idempotency_key
            )));
        }
        Ok(None)
    }

    fn journal_finish(
        &self,
        key: &str,
        state: ActionState,
        at: Millis,
        detail: &str,
    ) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "UPDATE actions SET state = ?2, finished_at = ?3, detail = ?4 WHERE idempotency_key = ?1",
                params![key, state.as_str(), at, detail],
            )?;
            Ok(())
        })
    }

    fn journal_get(&self, key: &str) -> StoreResult<Option<Action>> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {ACTION_COLS} FROM actions WHERE idempotency_key = ?1"),
                [key],
                action_row,
            )
            .optional()
        })
    }

    fn journal_for_run(&self, run_id: i64) -> StoreResult<Vec<Action>> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {ACTION_COLS} FROM actions WHERE run_id = ?1 ORDER BY seq"
            ))?;
            let rows = st.query_map([run_id], action_row)?;
            rows.collect()
        })
    }

    fn journal_for_incident(&self, incident_id: i64) -> StoreResult<Vec<Action>> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {ACTION_COLS} FROM actions WHERE incident_id = ?1 ORDER BY seq"
            ))?;
            let rows = st.query_map([incident_id], action_row)?;
            rows.collect()
        })
    }

    fn journal_verified(&self, key: &str, passed: bool, at: Millis) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "UPDATE actions SET verified = ?2, verified_at = ?3 WHERE idempotency_key = ?1",
                params![key, passed, at],
            )?;
            Ok(())
        })
    }

    fn recent_actions(&self, f: &ActionFilter) -> StoreResult<Vec<Action>> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {ACTION_COLS} FROM (SELECT * FROM actions
                 WHERE (?1 IS NULL OR target = ?1) AND (?2 IS NULL OR runbook = ?2) AND intended_at >= ?3
                 ORDER BY seq DESC LIMIT ?4) ORDER BY seq"
            ))?;
            let limit = i64::try_from(f.limit).unwrap_or(i64::MAX);
            let rows = st.query_map(params![f.target, f.runbook, f.since, limit], action_row)?;
            rows.collect()
        })
    }

    fn save_model_states(
        &self,
        detector: &str,
        config: &str,
        states: &[(Labels, String)],
        at: Millis,
    ) -> StoreResult<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "DELETE FROM model_states WHERE detector = ?1 AND config != ?2",
                params![detector, config],
            )?;
            {
                let mut st = tx.prepare(
                    "INSERT INTO model_states (detector, config, labels, state, saved_at) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(detector, labels) DO UPDATE SET config = ?2, state = ?4, saved_at = ?5",
                )?;
                for (labels, state) in states {
                    let l = serde_json::to_string(labels).unwrap_or_default();
                    st.execute(params![detector, config, l, state, at])?;
                }
            }
            tx.commit()
        })
    }

    fn load_model_states(
        &self,
        detector: &str,
        config: &str,
    ) -> StoreResult<Vec<(Labels, String)>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT labels, state FROM model_states WHERE detector = ?1 AND config = ?2",
            )?;
            let rows = st.query_map(params![detector, config], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (l, state) = row?;
                if let Ok(labels) = serde_json::from_str::<Labels>(&l) {
                    out.push((labels, state));
                }
            }
            Ok(out)
        })
    }
}

mod export;
mod oncall;

#[cfg(test)]
mod tests;
