use super::*;
use crate::stores::contract::{Backend, detection, store_contract};

/// SQLite for the shared store contract: in memory, or files in a directory
/// of this test process.
struct Sqlite;

fn db(name: &str) -> std::path::PathBuf {
    std::env::temp_dir()
        .join(format!("medic-store-{}", std::process::id()))
        .join(format!("{name}.db"))
}

impl Backend for Sqlite {
    fn fresh(&self) -> Box<dyn Store> {
        Box::new(SqliteStore::memory().unwrap())
    }
    fn open(&self, name: &str) -> Box<dyn Store> {
        Box::new(SqliteStore::open(&db(name)).unwrap())
    }
    fn remove(&self, name: &str) {
        let p = db(name);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
        }
        if let Some(dir) = p.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

store_contract!(Sqlite);

#[test]
fn a_database_from_before_guard_rails_is_migrated() {
    let dir = std::env::temp_dir().join(format!("medic-store-migrate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("medic.db");
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE actions (seq INTEGER PRIMARY KEY AUTOINCREMENT, idempotency_key TEXT NOT NULL UNIQUE,
             run_id INTEGER NOT NULL, incident_id INTEGER NOT NULL, step TEXT NOT NULL, step_name TEXT NOT NULL,
             attempt INTEGER NOT NULL, executor TEXT NOT NULL, params TEXT NOT NULL, state TEXT NOT NULL,
             intended_at INTEGER NOT NULL, finished_at INTEGER, detail TEXT);
             INSERT INTO actions (idempotency_key, run_id, incident_id, step, step_name, attempt, executor, params, state, intended_at)
             VALUES ('run-1/steps[0]/attempt-1', 1, 1, 'steps[0]', 'restart', 1, 'restart', '{}', 'succeeded', 5);",
        )
        .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    let old = s.journal_get("run-1/steps[0]/attempt-1").unwrap().unwrap();
    assert_eq!((old.target.as_str(), old.verified), ("", None));
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn flapping_incidents_are_the_open_ones_with_a_flapping_event() {
    let s = SqliteStore::memory().unwrap();
    let (a, _) = s.record_firing(&detection("a", 1)).unwrap();
    let (b, _) = s.record_firing(&detection("b", 1)).unwrap();
    let (c, _) = s.record_firing(&detection("c", 1)).unwrap();
    for id in [a.id, c.id] {
        s.append_event(
            id,
            2,
            "flapping",
            "medic",
            "flapping",
            serde_json::Value::Null,
        )
        .unwrap();
    }
    s.append_event(
        b.id,
        2,
        "note",
        "medic",
        "flapping mentioned",
        serde_json::Value::Null,
    )
    .unwrap();
    assert_eq!(s.flapping_incidents().unwrap(), vec![c.id, a.id]);
    s.record_resolved("c", 3, "cleared", serde_json::Value::Null)
        .unwrap();
    assert_eq!(s.flapping_incidents().unwrap(), vec![a.id]);
}
