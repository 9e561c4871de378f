use super::*;
use crate::incidents::IncidentState;
use crate::stores::contract::{action, detection};
use crate::stores::etcd::test_server;
use crate::stores::oncall::{Delivery, NewNotification, Note, OncallStore, Seen};
use crate::stores::{ActionFilter, ActionState, IncidentFilter, RunState, Store};

/// A SQLite store with some of everything.
fn populated() -> SqliteStore {
    let s = SqliteStore::memory().unwrap();
    let (old, _) = s.record_firing(&detection("old/fp", 1)).unwrap();
    let run = s.start_run(old.id, "rb", 2).unwrap();
    let a = action(run.id, old.id, 1, "restart:web", 3);
    s.journal_intend(&a).unwrap();
    s.journal_finish(&a.idempotency_key, ActionState::Succeeded, 4, "ok")
        .unwrap();
    s.journal_verified(&a.idempotency_key, true, 5).unwrap();
    s.finish_run(run.id, RunState::Recovered, 6, "verified")
        .unwrap();
    s.record_resolved("old/fp", 7, "cleared", serde_json::Value::Null)
        .unwrap();
    let (open, _) = s.record_firing(&detection("open", 8)).unwrap();
    let open = s.acknowledge(open.id, "ann", "mine", 9).unwrap();
    let running = s.start_run(open.id, "rb", 10).unwrap();
    s.journal_intend(&action(running.id, open.id, 1, "restart:web", 11))
        .unwrap();
    let note = Note {
        kind: "escalation",
        actor: "medic".into(),
        message: "level 1".into(),
        data: serde_json::Value::Null,
    };
    let e = Escalation {
        incident_id: open.id,
        policy: Some("p".into()),
        next_level: 1,
        next_at: Some(100),
        notified: vec!["mail".into()],
        ..Escalation::default()
    };
    let n = |key: &str| NewNotification {
        key: key.into(),
        notifier: "mail".into(),
        event: "opened".into(),
        level: Some(1),
    };
    s.save_escalation(
        &e,
        Seen::of(&open),
        &[n("k1"), n("k2")],
        std::slice::from_ref(&note),
        None,
        12,
    )
    .unwrap();
    let first = s.due_notifications(12, 1).unwrap().remove(0);
    s.finish_notification(first.id, &Delivery::Sent("200".into()), 13, &note)
        .unwrap();
    s.add_silence(r#"{service="web"}"#, 0, 1000, "ann", "deploy", 14)
        .unwrap();
    let labels = Labels::from([("instance".to_string(), "a/b".to_string())]);
    s.save_model_states("anomaly", "cfg", &[(labels, "{\"m\":1}".into())], 15)
        .unwrap();
    s
}

/// What a store answers, through the trait, for everything it holds.
fn view(s: &dyn Store) -> String {
    let incidents = s.incidents(&IncidentFilter::default()).unwrap();
    let mut out = format!("{incidents:?}\n");
    for i in &incidents {
        out += &format!(
            "{:?}\n{:?}\n{:?}\n{:?}\n",
            s.timeline(i.id).unwrap(),
            s.runs_for(i.id).unwrap(),
            s.journal_for_incident(i.id).unwrap(),
            s.notifications_for(i.id).unwrap()
        );
    }
    let mut counts = s.count_by_state().unwrap();
    counts.sort_by_key(|(st, _)| st.as_str());
    out += &format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{counts:?}\n",
        s.running_runs().unwrap(),
        s.active_escalations().unwrap(),
        s.unrouted_incidents().unwrap(),
        s.due_notifications(i64::MAX, 100).unwrap(),
        s.silences(true, 0).unwrap(),
        s.recent_actions(&ActionFilter {
            target: Some("restart:web".into()),
            limit: 10,
            ..ActionFilter::default()
        })
        .unwrap(),
        s.load_model_states("anomaly", "cfg").unwrap(),
    );
    out
}

#[test]
fn everything_moves_and_ids_continue_after_it() {
    let from = populated();
    let to = test_server::store("migrate");
    let s = migrate(&from, &to, false).unwrap();
    assert_eq!(s.incidents.len(), 2);
    assert_eq!(s.notifications.len(), 2);
    assert_eq!(view(&to), view(&from));
    // The open incident is still the open one for its fingerprint.
    // Both stores go on alike: the open incident is still the open one for
    // its fingerprint, and new records get ids after the migrated ones.
    for s in [&to as &dyn Store, &from] {
        let (again, new) = s.record_firing(&detection("open", 20)).unwrap();
        assert!(!new);
        assert_eq!(again.state, IncidentState::Acknowledged);
        let (fresh, new) = s.record_firing(&detection("fresh", 21)).unwrap();
        assert!(new);
        assert_eq!(fresh.id, 3);
    }
    assert_eq!(view(&to), view(&from));
}

#[test]
fn a_target_with_state_is_refused_unless_forced() {
    let from = populated();
    let to = test_server::store("migrate-twice");
    migrate(&from, &to, false).unwrap();
    to.record_firing(&detection("only-in-etcd", 30)).unwrap();
    let err = migrate(&from, &to, false).unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert!(err.to_string().contains("--force"), "{err}");
    migrate(&from, &to, true).unwrap();
    assert_eq!(
        view(&to),
        view(&from),
        "forced: replaced, nothing left over"
    );
}
