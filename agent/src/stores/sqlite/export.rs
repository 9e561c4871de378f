//! Everything in the SQLite store, for `medic store migrate`.

use rusqlite::Row;

use super::oncall::{
    ESCALATION_COLS, OUTBOX_COLS, SILENCE_COLS, escalation_row, outbox_row, silence_row,
};
use super::{
    ACTION_COLS, INCIDENT_COLS, SqliteStore, TIMELINE_COLS, action_row, incident_row, run_row,
    timeline_row,
};
use crate::series::Labels;
use crate::stores::StoreResult;
use crate::stores::migrate::{ModelRow, Snapshot};

fn all<T>(
    c: &rusqlite::Connection,
    sql: &str,
    f: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut st = c.prepare(sql)?;
    let rows = st.query_map([], f)?;
    rows.collect()
}

impl SqliteStore {
    /// Every record, in id order, read in one transaction.
    pub fn export(&self) -> StoreResult<Snapshot> {
        self.with(|c| {
            let tx = c.transaction()?;
            let s = Snapshot {
                incidents: all(&tx, &format!("SELECT {INCIDENT_COLS} FROM incidents ORDER BY id"), incident_row)?,
                timeline: all(&tx, &format!("SELECT {TIMELINE_COLS} FROM timeline ORDER BY id"), timeline_row)?,
                runs: all(
                    &tx,
                    "SELECT id, incident_id, runbook, state, started_at, finished_at, detail FROM runs ORDER BY id",
                    run_row,
                )?,
                actions: all(&tx, &format!("SELECT {ACTION_COLS}, seq FROM actions ORDER BY seq"), |r| {
                    Ok((r.get(16)?, action_row(r)?))
                })?,
                escalations: all(
                    &tx,
                    &format!("SELECT {ESCALATION_COLS} FROM escalations e ORDER BY e.incident_id"),
                    |r| escalation_row(r, 0),
                )?,
                notifications: all(&tx, &format!("SELECT {OUTBOX_COLS} FROM notifications ORDER BY id"), outbox_row)?,
                silences: all(&tx, &format!("SELECT {SILENCE_COLS} FROM silences ORDER BY id"), silence_row)?,
                models: all(
                    &tx,
                    "SELECT detector, config, labels, state, saved_at FROM model_states ORDER BY detector, labels",
                    |r| {
                        let labels: String = r.get(2)?;
                        Ok(ModelRow {
                            detector: r.get(0)?,
                            config: r.get(1)?,
                            labels: serde_json::from_str::<Labels>(&labels).unwrap_or_default(),
                            state: r.get(3)?,
                            saved_at: r.get(4)?,
                        })
                    },
                )?,
            };
            tx.commit()?;
            Ok(s)
        })
    }
}
