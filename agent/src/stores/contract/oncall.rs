//! The on-call half of the store contract.

use super::Backend;
use crate::incidents::IncidentState;
use crate::series::Labels;
use crate::stores::oncall::*;
use crate::stores::{Detection, Store};

fn open(s: &dyn Store, fp: &str) -> crate::incidents::Incident {
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

pub fn escalations_route_once_and_outbox_keys_are_unique(b: &dyn Backend) {
    let s = b.fresh();
    let i = open(&*s, "a");
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

pub fn a_plan_made_before_an_ack_is_refused(b: &dyn Backend) {
    let s = b.fresh();
    let i = open(&*s, "a");
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

pub fn an_expired_ack_is_withdrawn_only_if_unchanged(b: &dyn Backend) {
    let s = b.fresh();
    let i = open(&*s, "a");
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

pub fn deliveries_retry_then_finish_with_timeline_notes(b: &dyn Backend) {
    let s = b.fresh();
    let i = open(&*s, "a");
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

pub fn silences_list_and_expire(b: &dyn Backend) {
    let s = b.fresh();
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

pub fn done_escalations_leave_the_active_list_and_due_is_ordered(b: &dyn Backend) {
    let s = b.fresh();
    let i = open(&*s, "a");
    let j = open(&*s, "b");
    let mut e = Escalation {
        incident_id: i.id,
        next_at: Some(5),
        ..Escalation::default()
    };
    let notify = |key: &str, event: &str| NewNotification {
        event: event.into(),
        ..level(key)
    };
    // One key twice in one plan is queued once.
    assert!(
        s.save_escalation(
            &e,
            Seen::of(&i),
            &[notify("i1", "opened"), notify("i1", "opened")],
            &[],
            None,
            30
        )
        .unwrap()
    );
    let f = Escalation {
        incident_id: j.id,
        ..Escalation::default()
    };
    s.save_escalation(&f, Seen::of(&j), &[notify("j1", "opened")], &[], None, 20)
        .unwrap();
    assert_eq!(s.unrouted_incidents().unwrap(), vec![]);
    let due: Vec<String> = s
        .due_notifications(100, 10)
        .unwrap()
        .into_iter()
        .map(|n| n.key)
        .collect();
    assert_eq!(due, vec!["j1", "i1"], "by due time");
    assert_eq!(s.due_notifications(100, 1).unwrap().len(), 1);
    assert!(s.due_notifications(19, 10).unwrap().is_empty());
    let j1 = s.notifications_for(j.id).unwrap().remove(0);
    s.finish_notification(j1.id, &Delivery::GaveUp("410".into()), 40, &note())
        .unwrap();
    let j1 = s.notifications_for(j.id).unwrap().remove(0);
    assert_eq!(j1.state, DeliveryState::Failed);
    assert_eq!((j1.attempts, j1.finished_at), (1, Some(40)));
    assert_eq!(j1.detail.as_deref(), Some("410"));
    assert!(matches!(
        s.finish_notification(999, &Delivery::Sent("x".into()), 1, &note()),
        Err(crate::stores::StoreError::NotFound(_))
    ));
    e.done = true;
    e.next_at = None;
    s.save_escalation(&e, Seen::of(&i), &[notify("i2", "resolved")], &[], None, 50)
        .unwrap();
    let active: Vec<i64> = s
        .active_escalations()
        .unwrap()
        .iter()
        .map(|(e, _)| e.incident_id)
        .collect();
    assert_eq!(active, vec![j.id]);
    let keys: Vec<String> = s
        .notifications_for(i.id)
        .unwrap()
        .into_iter()
        .map(|n| n.key)
        .collect();
    assert_eq!(keys, vec!["i1", "i2"]);
    // A resolved incident is not unrouted, an open one without a row is.
    let k = open(&*s, "c");
    s.record_resolved("a", 60, "ok", serde_json::Value::Null)
        .unwrap();
    let unrouted: Vec<i64> = s
        .unrouted_incidents()
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(unrouted, vec![k.id]);
    assert!(
        !s.save_escalation(
            &Escalation {
                incident_id: 999,
                ..Escalation::default()
            },
            Seen::of(&k),
            &[],
            &[],
            None,
            61
        )
        .unwrap(),
        "no such incident"
    );
}
