//! [`OncallStore`] on SQLite: tables `escalations`, `notifications` (the
//! outbox) and `silences`.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{INCIDENT_COLS, SqliteStore, incident_row};
use crate::incidents::Incident;
use crate::series::Millis;
use crate::stores::oncall::{
    Delivery, DeliveryState, Escalation, NewNotification, Note, OncallStore, OutboxEntry, Seen,
    Silence,
};
use crate::stores::{StoreError, StoreResult};

pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS escalations (
  incident_id INTEGER PRIMARY KEY REFERENCES incidents(id),
  policy TEXT,
  occurrence INTEGER NOT NULL,
  next_level INTEGER NOT NULL,
  next_at INTEGER,
  reminders INTEGER NOT NULL,
  notified TEXT NOT NULL,
  acked_seen INTEGER,
  muted TEXT,
  done INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS notifications (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT NOT NULL UNIQUE,
  incident_id INTEGER NOT NULL REFERENCES incidents(id),
  notifier TEXT NOT NULL,
  event TEXT NOT NULL,
  level INTEGER,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  finished_at INTEGER,
  detail TEXT
);
CREATE INDEX IF NOT EXISTS notifications_pending ON notifications(next_attempt_at) WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS silences (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  matchers TEXT NOT NULL,
  starts_at INTEGER NOT NULL,
  ends_at INTEGER NOT NULL,
  created_by TEXT NOT NULL,
  comment TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
"#;

pub(super) const ESCALATION_COLS: &str = "e.incident_id, e.policy, e.occurrence, e.next_level, e.next_at, e.reminders, e.notified, e.acked_seen, e.muted, e.done";

/// An escalation from the columns starting at `b` (it follows the incident's in a join).
pub(super) fn escalation_row(r: &Row<'_>, b: usize) -> rusqlite::Result<Escalation> {
    let notified: String = r.get(b + 6)?;
    Ok(Escalation {
        incident_id: r.get(b)?,
        policy: r.get(b + 1)?,
        occurrence: r.get(b + 2)?,
        next_level: r.get(b + 3)?,
        next_at: r.get(b + 4)?,
        reminders: r.get(b + 5)?,
        notified: serde_json::from_str(&notified).unwrap_or_default(),
        acked_seen: r.get(b + 7)?,
        muted: r.get(b + 8)?,
        done: r.get(b + 9)?,
    })
}

pub(super) const OUTBOX_COLS: &str = "id, key, incident_id, notifier, event, level, state, attempts, next_attempt_at, created_at, finished_at, detail";

pub(super) fn outbox_row(r: &Row<'_>) -> rusqlite::Result<OutboxEntry> {
    let state: String = r.get(6)?;
    Ok(OutboxEntry {
        id: r.get(0)?,
        key: r.get(1)?,
        incident_id: r.get(2)?,
        notifier: r.get(3)?,
        event: r.get(4)?,
        level: r.get(5)?,
        state: DeliveryState::parse(&state),
        attempts: r.get(7)?,
        next_attempt_at: r.get(8)?,
        created_at: r.get(9)?,
        finished_at: r.get(10)?,
        detail: r.get(11)?,
    })
}

pub(super) const SILENCE_COLS: &str =
    "id, matchers, starts_at, ends_at, created_by, comment, created_at";

pub(super) fn silence_row(r: &Row<'_>) -> rusqlite::Result<Silence> {
    Ok(Silence {
        id: r.get(0)?,
        matchers: r.get(1)?,
        starts_at: r.get(2)?,
        ends_at: r.get(3)?,
        created_by: r.get(4)?,
        comment: r.get(5)?,
        created_at: r.get(6)?,
    })
}

fn note(c: &Connection, incident_id: i64, at: Millis, n: &Note) -> rusqlite::Result<()> {
    SqliteStore::event(c, incident_id, at, n.kind, &n.actor, &n.message, &n.data)
}

fn get_silence(c: &Connection, id: i64) -> rusqlite::Result<Option<Silence>> {
    c.query_row(
        &format!("SELECT {SILENCE_COLS} FROM silences WHERE id = ?1"),
        [id],
        silence_row,
    )
    .optional()
}

impl OncallStore for SqliteStore {
    fn unrouted_incidents(&self) -> StoreResult<Vec<Incident>> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {INCIDENT_COLS} FROM incidents WHERE state != 'resolved' AND id NOT IN (SELECT incident_id FROM escalations) ORDER BY id"
            ))?;
            let rows = st.query_map([], incident_row)?;
            rows.collect()
        })
    }

    fn active_escalations(&self) -> StoreResult<Vec<(Escalation, Incident)>> {
        let cols: Vec<String> = INCIDENT_COLS
            .split(", ")
            .map(|c| format!("i.{c}"))
            .collect();
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {}, {ESCALATION_COLS} FROM escalations e JOIN incidents i ON i.id = e.incident_id WHERE e.done = 0 ORDER BY e.incident_id",
                cols.join(", ")
            ))?;
            let rows = st.query_map([], |r| {
                let i = incident_row(r)?;
                Ok((escalation_row(r, cols.len())?, i))
            })?;
            rows.collect()
        })
    }

    fn save_escalation(
        &self,
        e: &Escalation,
        seen: Seen,
        notifications: &[NewNotification],
        notes: &[Note],
        expire_ack: Option<Millis>,
        at: Millis,
    ) -> StoreResult<bool> {
        self.with(|c| {
            let tx = c.transaction()?;
            let Some(now) = SqliteStore::get_incident(&tx, e.incident_id)? else {
                return Ok(false);
            };
            if Seen::of(&now) != seen {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO escalations (incident_id, policy, occurrence, next_level, next_at, reminders, notified, acked_seen, muted, done)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT(incident_id) DO UPDATE SET policy = ?2, occurrence = ?3, next_level = ?4, next_at = ?5,
                   reminders = ?6, notified = ?7, acked_seen = ?8, muted = ?9, done = ?10",
                params![
                    e.incident_id,
                    e.policy,
                    e.occurrence,
                    e.next_level,
                    e.next_at,
                    e.reminders,
                    serde_json::to_string(&e.notified).unwrap_or_default(),
                    e.acked_seen,
                    e.muted,
                    e.done
                ],
            )?;
            for n in notifications {
                tx.execute(
                    "INSERT OR IGNORE INTO notifications (key, incident_id, notifier, event, level, state, next_attempt_at, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6)",
                    params![n.key, e.incident_id, n.notifier, n.event, n.level, at],
                )?;
            }
            for n in notes {
                note(&tx, e.incident_id, at, n)?;
            }
            if let Some(acked_at) = expire_ack {
                tx.execute(
                    "UPDATE incidents SET acked_by = NULL, acked_at = NULL, updated_at = ?3,
                       state = CASE state WHEN 'acknowledged' THEN 'firing' ELSE state END
                     WHERE id = ?1 AND acked_at = ?2",
                    params![e.incident_id, acked_at, at],
                )?;
            }
            tx.commit()?;
            Ok(true)
        })
    }

    fn due_notifications(&self, now: Millis, limit: usize) -> StoreResult<Vec<OutboxEntry>> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {OUTBOX_COLS} FROM notifications WHERE state = 'pending' AND next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT ?2"
            ))?;
            let rows = st.query_map(params![now, limit as i64], outbox_row)?;
            rows.collect()
        })
    }

    fn finish_notification(
        &self,
        id: i64,
        outcome: &Delivery,
        at: Millis,
        n: &Note,
    ) -> StoreResult<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            let Some(incident_id) = tx
                .query_row(
                    "SELECT incident_id FROM notifications WHERE id = ?1",
                    [id],
                    |r| r.get::<_, i64>(0),
                )
                .optional()?
            else {
                return Ok(Err(StoreError::NotFound(format!("notification {id}"))));
            };
            let (state, next, finished, detail) = match outcome {
                Delivery::Sent(d) => (DeliveryState::Sent, at, Some(at), d),
                Delivery::Retry { at: next, error } => (DeliveryState::Pending, *next, None, error),
                Delivery::GaveUp(e) => (DeliveryState::Failed, at, Some(at), e),
            };
            tx.execute(
                "UPDATE notifications SET state = ?2, attempts = attempts + 1, next_attempt_at = ?3, finished_at = ?4, detail = ?5 WHERE id = ?1",
                params![id, state.as_str(), next, finished, detail],
            )?;
            note(&tx, incident_id, at, n)?;
            tx.commit()?;
            Ok(Ok(()))
        })?
    }

    fn notifications_for(&self, incident_id: i64) -> StoreResult<Vec<OutboxEntry>> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {OUTBOX_COLS} FROM notifications WHERE incident_id = ?1 ORDER BY id"
            ))?;
            let rows = st.query_map([incident_id], outbox_row)?;
            rows.collect()
        })
    }

    fn add_silence(
        &self,
        matchers: &str,
        starts_at: Millis,
        ends_at: Millis,
        created_by: &str,
        comment: &str,
        at: Millis,
    ) -> StoreResult<Silence> {
        self.with(|c| {
            c.execute(
                "INSERT INTO silences (matchers, starts_at, ends_at, created_by, comment, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![matchers, starts_at, ends_at, created_by, comment, at],
            )?;
            let id = c.last_insert_rowid();
            Ok(get_silence(c, id)?.expect("just inserted"))
        })
    }

    fn silences(&self, include_expired: bool, now: Millis) -> StoreResult<Vec<Silence>> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {SILENCE_COLS} FROM silences WHERE ?1 OR ends_at > ?2 ORDER BY id DESC"
            ))?;
            let rows = st.query_map(params![include_expired, now], silence_row)?;
            rows.collect()
        })
    }

    fn expire_silence(&self, id: i64, at: Millis) -> StoreResult<Silence> {
        self.with(|c| {
            c.execute(
                "UPDATE silences SET ends_at = MIN(ends_at, ?2) WHERE id = ?1",
                params![id, at],
            )?;
            get_silence(c, id)
        })?
        .ok_or_else(|| StoreError::NotFound(format!("silence {id}")))
    }
}
