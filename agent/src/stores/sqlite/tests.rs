use super::*;

fn detection(fp: &str, at: Millis) -> Detection {
    Detection {
        fingerprint: fp.into(),
        detector: "d".into(),
        labels: Labels::from([("service".to_string(), "web".to_string())]),
        severity: "critical".into(),
        summary: "down".into(),
        at,
        evidence: serde_json::json!({"observed": 0}),
    }
}

#[test]
fn repeats_update_the_open_incident_and_resolve_rearms() {
    let s = SqliteStore::memory().unwrap();
    let (a, new) = s.record_firing(&detection("fp", 1)).unwrap();
    assert!(new);
    let (b, new) = s.record_firing(&detection("fp", 2)).unwrap();
    assert!(!new);
    assert_eq!(a.id, b.id);
    assert_eq!(b.occurrences, 2);
    let r = s
        .record_resolved("fp", 3, "cleared", serde_json::Value::Null)
        .unwrap()
        .unwrap();
    assert_eq!(r.state, IncidentState::Resolved);
    assert_eq!(r.resolved_at, Some(3));
    let (c, new) = s.record_firing(&detection("fp", 4)).unwrap();
    assert!(new, "a recurrence after resolve is a new incident");
    assert_ne!(c.id, a.id);
    let kinds: Vec<String> = s
        .timeline(a.id)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, vec!["opened", "evidence", "transition"]);
}

#[test]
fn ack_is_recorded_and_refused_when_resolved() {
    let s = SqliteStore::memory().unwrap();
    let (a, _) = s.record_firing(&detection("fp", 1)).unwrap();
    let i = s.acknowledge(a.id, "alice", "on it", 2).unwrap();
    assert_eq!(i.state, IncidentState::Acknowledged);
    assert_eq!(i.acked_by.as_deref(), Some("alice"));
    s.record_resolved("fp", 3, "cleared", serde_json::Value::Null)
        .unwrap();
    assert!(matches!(
        s.acknowledge(a.id, "bob", "", 4),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.acknowledge(999, "bob", "", 4),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn journal_key_is_unique_and_survives_reopen() {
    let dir = std::env::temp_dir().join(format!("medic-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("medic.db");
    {
        let s = SqliteStore::open(&path).unwrap();
        let (i, _) = s.record_firing(&detection("fp", 1)).unwrap();
        let run = s.start_run(i.id, "rb", 2).unwrap();
        let a = action(run.id, i.id, 1, "restart:web", 3);
        s.journal_intend(&a).unwrap();
        assert!(matches!(s.journal_intend(&a), Err(StoreError::Conflict(_))));
        // Dropped here without finishing: as if medic died mid-action.
    }
    let s = SqliteStore::open(&path).unwrap();
    let runs = s.running_runs().unwrap();
    assert_eq!(runs.len(), 1);
    let j = s.journal_for_run(runs[0].id).unwrap();
    assert_eq!(j.len(), 1);
    assert_eq!(j[0].state, ActionState::Intended);
    let _ = std::fs::remove_dir_all(&dir);
}

fn action(run: i64, incident: i64, attempt: u32, target: &str, at: Millis) -> Action {
    Action {
        idempotency_key: format!("run-{run}/steps[0]/attempt-{attempt}"),
        run_id: run,
        incident_id: incident,
        step: "steps[0]".into(),
        step_name: "restart".into(),
        attempt,
        executor: "restart".into(),
        runbook: "rb".into(),
        target: target.into(),
        params: serde_json::json!({"service": "web"}),
        state: ActionState::Intended,
        intended_at: at,
        finished_at: None,
        detail: None,
        verified: None,
        verified_at: None,
    }
}

#[test]
fn recent_actions_filter_by_target_runbook_and_time_and_keep_verification() {
    let s = SqliteStore::memory().unwrap();
    let (i, _) = s.record_firing(&detection("fp", 1)).unwrap();
    let run = s.start_run(i.id, "rb", 2).unwrap();
    for (n, (target, at)) in [
        ("restart:web", 10),
        ("restart:db", 20),
        ("restart:web", 30),
        ("restart:web", 40),
    ]
    .into_iter()
    .enumerate()
    {
        s.journal_intend(&action(run.id, i.id, n as u32 + 1, target, at))
            .unwrap();
    }
    s.journal_verified(&format!("run-{}/steps[0]/attempt-3", run.id), true, 35)
        .unwrap();
    let web = |since, limit| {
        s.recent_actions(&ActionFilter {
            target: Some("restart:web".into()),
            since,
            limit,
            ..ActionFilter::default()
        })
        .unwrap()
        .iter()
        .map(|a| a.intended_at)
        .collect::<Vec<_>>()
    };
    assert_eq!(web(0, 10), vec![10, 30, 40]);
    assert_eq!(web(20, 10), vec![30, 40]);
    assert_eq!(web(0, 2), vec![30, 40], "the newest, oldest first");
    let all = s
        .recent_actions(&ActionFilter {
            runbook: Some("rb".into()),
            limit: 10,
            ..ActionFilter::default()
        })
        .unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(
        (all[2].verified, all[2].verified_at),
        (Some(true), Some(35))
    );
    assert_eq!(all[1].target, "restart:db");
}

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
