use super::super::SqliteStore;
use crate::incidents::IncidentState;
use crate::series::Labels;
use crate::stores::oncall::*;
use crate::stores::{Detection, Store};

fn open(s: &SqliteStore, fp: &str) -> crate::incidents::Incident {
    s.record_firing(&Detection {
        fingerprint: fp.into(),
        detector: "d".into(),
        labels: Labels::from([("service".to_string(), "web".to_string())]),
        severity: "critical".into(),
        summary: "down".into(),
        at: 1,
        evidence: serde_json::Value::Null,
    })
    .unwrap()
    .0
}

fn level(key: &str) -> NewNotification {
    NewNotification {
        key: key.into(),
        notifier: "mail".into(),
        event: "opened".into(),
        level: Some(1),
    }
}

fn note() -> Note {
    Note {
        kind: "escalation",
        actor: "medic".into(),
        message: "level 1".into(),
        data: serde_json::Value::Null,
    }
}

#[test]
fn escalations_route_once_and_outbox_keys_are_unique() {
    let s = SqliteStore::memory().unwrap();
    let i = open(&s, "a");
    assert_eq!(s.unrouted_incidents().unwrap().len(), 1);
    let e = Escalation {
        incident_id: i.id,
        policy: Some("p".into()),
        next_level: 1,
        next_at: Some(100),
        notified: vec!["mail".into()],
        ..Escalation::default()
    };
    assert!(
        s.save_escalation(&e, Seen::of(&i), &[level("k1")], &[note()], None, 10)
            .unwrap()
    );
    assert!(s.unrouted_incidents().unwrap().is_empty());
    // The same key again (a replay) adds nothing.
    assert!(
        s.save_escalation(&e, Seen::of(&i), &[level("k1")], &[], None, 11)
            .unwrap()
    );
    assert_eq!(s.notifications_for(i.id).unwrap().len(), 1);
    let active = s.active_escalations().unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].0, e);
    assert_eq!(active[0].1.id, i.id);
    assert!(
        s.timeline(i.id)
            .unwrap()
            .iter()
            .any(|t| t.message == "level 1")
    );
}

#[test]
fn a_plan_made_before_an_ack_is_refused() {
    let s = SqliteStore::memory().unwrap();
    let i = open(&s, "a");
    let before = Seen::of(&i);
    s.acknowledge(i.id, "ann", "", 5).unwrap();
    let e = Escalation {
        incident_id: i.id,
        ..Escalation::default()
    };
    assert!(
        !s.save_escalation(&e, before, &[level("k")], &[], None, 6)
            .unwrap()
    );
    assert!(s.notifications_for(i.id).unwrap().is_empty());
}

#[test]
fn an_expired_ack_is_withdrawn_only_if_unchanged() {
    let s = SqliteStore::memory().unwrap();
    let i = open(&s, "a");
    let acked = s.acknowledge(i.id, "ann", "", 5).unwrap();
    let e = Escalation {
        incident_id: i.id,
        ..Escalation::default()
    };
    assert!(
        s.save_escalation(&e, Seen::of(&acked), &[], &[], Some(4), 6)
            .unwrap()
    );
    assert_eq!(
        s.incident(i.id).unwrap().unwrap().acked_by.as_deref(),
        Some("ann")
    );
    s.save_escalation(&e, Seen::of(&acked), &[], &[], Some(5), 7)
        .unwrap();
    let now = s.incident(i.id).unwrap().unwrap();
    assert_eq!(now.state, IncidentState::Firing);
    assert_eq!(now.acked_by, None);
}

#[test]
fn deliveries_retry_then_finish_with_timeline_notes() {
    let s = SqliteStore::memory().unwrap();
    let i = open(&s, "a");
    let e = Escalation {
        incident_id: i.id,
        ..Escalation::default()
    };
    s.save_escalation(&e, Seen::of(&i), &[level("k")], &[], None, 10)
        .unwrap();
    let due = s.due_notifications(10, 10).unwrap();
    assert_eq!(due.len(), 1);
    let retry = Delivery::Retry {
        at: 2000,
        error: "500".into(),
    };
    s.finish_notification(due[0].id, &retry, 11, &note())
        .unwrap();
    assert!(s.due_notifications(1999, 10).unwrap().is_empty());
    let again = s.due_notifications(2000, 10).unwrap();
    assert_eq!(again[0].attempts, 1);
    s.finish_notification(again[0].id, &Delivery::Sent("200".into()), 2001, &note())
        .unwrap();
    assert!(s.due_notifications(i64::MAX, 10).unwrap().is_empty());
    let n = &s.notifications_for(i.id).unwrap()[0];
    assert_eq!(n.state, DeliveryState::Sent);
    assert_eq!(n.attempts, 2);
    assert_eq!(n.finished_at, Some(2001));
}

#[test]
fn silences_list_and_expire() {
    let s = SqliteStore::memory().unwrap();
    let a = s
        .add_silence(r#"{service="web"}"#, 0, 1000, "ann", "deploy", 0)
        .unwrap();
    s.add_silence(r#"{service="db"}"#, 0, 10, "bob", "", 0)
        .unwrap();
    assert_eq!(s.silences(false, 500).unwrap().len(), 1);
    assert_eq!(s.silences(true, 500).unwrap().len(), 2);
    let ended = s.expire_silence(a.id, 600).unwrap();
    assert_eq!(ended.ends_at, 600);
    assert!(!ended.active(600));
    assert!(s.silences(false, 700).unwrap().is_empty());
    assert!(matches!(
        s.expire_silence(99, 1),
        Err(crate::stores::StoreError::NotFound(_))
    ));
}
