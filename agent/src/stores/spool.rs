//! The local spool of degraded mode: what this node detected while the
//! shared store (etcd) was unreachable or without quorum.
//!
//! A small SQLite file, `<state_dir>/spool.db`, beside nothing else (with
//! `store: etcd` medic keeps no other local state). The engine writes an
//! event here when the store refuses to record an incident opening or
//! resolving ([`StoreError::Backend`](super::StoreError)); the degraded
//! sender (`oncall/degraded.rs`) notifies each event's recipients directly
//! from here, with retries, and the engine replays the events into the
//! store, in order, once it answers again — the incident then lives in etcd
//! as usual, and its timeline says it was spooled.
//!
//! Delivery is at least once: a send whose outcome was not recorded (a
//! crash) is sent again; every node that saw the incident sends its own
//! copy; and once the incident is in the store, the leader's normal
//! escalation notifies again ("opened"). Duplicates are the price of
//! telling people while the shared state is out of reach.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{Detection, StoreError, StoreResult};
use crate::incidents::Incident;
use crate::series::Millis;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event TEXT NOT NULL,            -- opened | resolved
    fingerprint TEXT NOT NULL,
    incident TEXT NOT NULL,         -- JSON Incident, as notified (id 0: not yet in the store)
    change TEXT NOT NULL,           -- JSON SpooledChange: what to replay into the store
    created_at INTEGER NOT NULL,
    planned INTEGER NOT NULL DEFAULT 0,  -- its sends are in `sends`
    flushed_at INTEGER              -- replayed into the store
);
CREATE TABLE IF NOT EXISTS sends (
    event_id INTEGER NOT NULL REFERENCES events(id),
    notifier TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',   -- pending | sent | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL,
    detail TEXT,
    PRIMARY KEY (event_id, notifier)
);
";

/// What to replay into the store when it answers again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SpooledChange {
    /// `record_firing` of this detection.
    Firing(Detection),
    /// `record_resolved` of the open incident with this fingerprint.
    Resolved {
        /// When.
        at: Millis,
        /// Why.
        cause: String,
        /// Evidence.
        evidence: serde_json::Value,
    },
}

/// One spooled event.
#[derive(Debug, Clone, PartialEq)]
pub struct SpooledEvent {
    /// Spool id.
    pub id: i64,
    /// `opened` or `resolved`.
    pub event: String,
    /// Fingerprint of detector + labels.
    pub fingerprint: String,
    /// The incident as notified.
    pub incident: Incident,
    /// What to replay.
    pub change: SpooledChange,
    /// When spooled.
    pub created_at: Millis,
}

/// A notification due from the spool.
#[derive(Debug, Clone, PartialEq)]
pub struct SpooledSend {
    /// The event.
    pub event: SpooledEvent,
    /// Notifier name.
    pub notifier: String,
    /// Attempts made.
    pub attempts: u32,
}

/// The spool file.
pub struct Spool {
    conn: Mutex<Connection>,
}

fn be(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("spool: {e}"))
}

impl Spool {
    /// Open (or create) `path`.
    pub fn open(path: &Path) -> StoreResult<Spool> {
        Self::init(Connection::open(path).map_err(be)?)
    }

    /// In memory (tests).
    pub fn memory() -> StoreResult<Spool> {
        Self::init(Connection::open_in_memory().map_err(be)?)
    }

    fn init(c: Connection) -> StoreResult<Spool> {
        c.pragma_update(None, "journal_mode", "WAL").map_err(be)?;
        c.pragma_update(None, "synchronous", "FULL").map_err(be)?;
        c.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(be)?;
        c.execute_batch(SCHEMA).map_err(be)?;
        Ok(Spool {
            conn: Mutex::new(c),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        let mut c = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut c).map_err(be)
    }

    /// Spool an event.
    pub fn add(
        &self,
        event: &str,
        incident: &Incident,
        change: &SpooledChange,
        at: Millis,
    ) -> StoreResult<i64> {
        let incident_json = serde_json::to_string(incident).unwrap_or_default();
        let change_json = serde_json::to_string(change).unwrap_or_default();
        self.with(|c| {
            c.execute(
                "INSERT INTO events (event, fingerprint, incident, change, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![event, incident.fingerprint, incident_json, change_json, at],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SpooledEvent> {
        let incident: String = r.get(3)?;
        let change: String = r.get(4)?;
        let bad = |e: serde_json::Error| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        };
        Ok(SpooledEvent {
            id: r.get(0)?,
            event: r.get(1)?,
            fingerprint: r.get(2)?,
            incident: serde_json::from_str(&incident).map_err(bad)?,
            change: serde_json::from_str(&change).map_err(bad)?,
            created_at: r.get(5)?,
        })
    }

    const EVENT_COLS: &'static str =
        "e.id, e.event, e.fingerprint, e.incident, e.change, e.created_at";

    /// Events not yet replayed into the store, oldest first.
    pub fn unflushed(&self) -> StoreResult<Vec<SpooledEvent>> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {} FROM events e WHERE flushed_at IS NULL ORDER BY id",
                Self::EVENT_COLS
            ))?;
            let rows = st.query_map([], Self::row)?;
            rows.collect()
        })
    }

    /// The event is in the store now. Old finished events are pruned.
    pub fn flushed(&self, id: i64, at: Millis) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "UPDATE events SET flushed_at = ?2 WHERE id = ?1",
                params![id, at],
            )?;
            c.execute(
                "DELETE FROM sends WHERE event_id IN (SELECT id FROM events WHERE flushed_at < ?1)
                   AND NOT EXISTS (SELECT 1 FROM sends s WHERE s.event_id = sends.event_id AND s.state = 'pending')",
                params![at - 24 * 3600 * 1000],
            )?;
            c.execute(
                "DELETE FROM events WHERE flushed_at < ?1 AND NOT EXISTS (SELECT 1 FROM sends s WHERE s.event_id = events.id)",
                params![at - 24 * 3600 * 1000],
            )?;
            Ok(())
        })
    }

    /// Events whose recipients are not chosen yet.
    pub fn unplanned(&self) -> StoreResult<Vec<SpooledEvent>> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {} FROM events e WHERE planned = 0 ORDER BY id",
                Self::EVENT_COLS
            ))?;
            let rows = st.query_map([], Self::row)?;
            rows.collect()
        })
    }

    /// Choose an event's recipients (none: nobody to tell).
    pub fn plan(&self, id: i64, notifiers: &[String], now: Millis) -> StoreResult<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            for n in notifiers {
                tx.execute(
                    "INSERT OR IGNORE INTO sends (event_id, notifier, next_at) VALUES (?1, ?2, ?3)",
                    params![id, n, now],
                )?;
            }
            tx.execute("UPDATE events SET planned = 1 WHERE id = ?1", [id])?;
            tx.commit()
        })
    }

    /// Sends due at `now`, oldest event first.
    pub fn due(&self, now: Millis) -> StoreResult<Vec<SpooledSend>> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {}, s.notifier, s.attempts FROM sends s JOIN events e ON e.id = s.event_id
                 WHERE s.state = 'pending' AND s.next_at <= ?1 ORDER BY e.id, s.notifier",
                Self::EVENT_COLS
            ))?;
            let rows = st.query_map([now], |r| {
                Ok(SpooledSend {
                    event: Self::row(r)?,
                    notifier: r.get(6)?,
                    attempts: r.get(7)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Record a delivery attempt: `retry_at` None and `ok` → sent; None and
    /// not ok → given up.
    pub fn attempted(
        &self,
        event_id: i64,
        notifier: &str,
        ok: bool,
        retry_at: Option<Millis>,
        detail: &str,
    ) -> StoreResult<()> {
        let state = match (ok, retry_at) {
            (true, _) => "sent",
            (false, Some(_)) => "pending",
            (false, None) => "failed",
        };
        self.with(|c| {
            c.execute(
                "UPDATE sends SET state = ?3, attempts = attempts + 1, next_at = COALESCE(?4, next_at), detail = ?5
                 WHERE event_id = ?1 AND notifier = ?2",
                params![event_id, notifier, state, retry_at, detail],
            )?;
            Ok(())
        })
    }

    /// What was sent for an event: `(notifier, state)` pairs.
    pub fn sends_of(&self, event_id: i64) -> StoreResult<Vec<(String, String)>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT notifier, state FROM sends WHERE event_id = ?1 ORDER BY notifier",
            )?;
            let rows = st.query_map([event_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
    }

    /// Counts for the status API: events not yet in the store, sends pending.
    pub fn counts(&self) -> StoreResult<(i64, i64)> {
        self.with(|c| {
            let unflushed: i64 = c.query_row(
                "SELECT COUNT(*) FROM events WHERE flushed_at IS NULL",
                [],
                |r| r.get(0),
            )?;
            let pending: i64 = c
                .query_row(
                    "SELECT COUNT(*) FROM sends WHERE state = 'pending'",
                    [],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or(0);
            Ok((unflushed, pending))
        })
    }
}

#[cfg(test)]
#[path = "spool_tests.rs"]
mod tests;
