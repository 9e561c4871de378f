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
        let a = Action {
            idempotency_key: format!("run-{}/steps[0]/attempt-1", run.id),
            run_id: run.id,
            incident_id: i.id,
            step: "steps[0]".into(),
            step_name: "restart".into(),
            attempt: 1,
            executor: "restart".into(),
            params: serde_json::json!({"service": "web"}),
            state: ActionState::Intended,
            intended_at: 3,
            finished_at: None,
            detail: None,
        };
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
