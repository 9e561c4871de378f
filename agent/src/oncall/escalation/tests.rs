use super::*;
use crate::config::duration::Duration;
use crate::config::spanned::Spanned;
use crate::oncall::Level;

fn policy(repeat: Option<u64>, ack_ttl: Option<u64>) -> EscalationPolicy {
    let level = |names: &[&str], wait: u64| Level {
        notify: names
            .iter()
            .map(|n| Spanned::unplaced(n.to_string()))
            .collect(),
        wait: Duration::from_secs(wait),
    };
    EscalationPolicy {
        name: Spanned::unplaced("p".into()),
        levels: vec![level(&["mail"], 60), level(&["phone", "mail"], 0)],
        repeat: repeat.map(Duration::from_secs),
        ack_ttl: ack_ttl.map(Duration::from_secs),
    }
}

fn incident() -> Incident {
    Incident::example(7, "d", &[])
}

fn keys(p: &Plan) -> Vec<String> {
    p.notifications.iter().map(|n| n.key.clone()).collect()
}

/// Drive the planner the way the scheduler does, saving each plan.
fn run(e: &mut Escalation, i: &Incident, pol: &EscalationPolicy, now: Millis) -> Plan {
    let p = plan(e, i, Some(pol), None, now);
    *e = p.escalation.clone();
    p
}

#[test]
fn climbs_level_by_level_after_each_wait() {
    let pol = policy(None, None);
    let i = incident();
    let mut e = start(7, Some("p"), 1000);
    let p = run(&mut e, &i, &pol, 1000);
    assert_eq!(keys(&p), ["incident-7/climb-0/level-1/mail"]);
    assert_eq!(p.notifications[0].event, "opened");
    assert_eq!(e.next_at, Some(61_000));
    // Before the wait is over: nothing.
    assert!(run(&mut e, &i, &pol, 60_999).is_noop(&e));
    let p = run(&mut e, &i, &pol, 61_000);
    assert_eq!(
        keys(&p),
        [
            "incident-7/climb-0/level-2/phone",
            "incident-7/climb-0/level-2/mail"
        ]
    );
    assert_eq!(p.notifications[0].event, "escalated");
    assert_eq!(p.notifications[0].level, Some(2));
    assert_eq!(e.notified, ["mail", "phone"]);
    // Last level and no repeat: done climbing.
    assert_eq!(e.next_at, None);
    assert!(run(&mut e, &i, &pol, 10_000_000).is_noop(&e));
}

#[test]
fn replanning_a_saved_row_repeats_nothing() {
    // A restart replans from the saved row: the level already written is not due again.
    let pol = policy(None, None);
    let i = incident();
    let mut e = start(7, Some("p"), 0);
    run(&mut e, &i, &pol, 0);
    let saved = e.clone();
    let p = plan(&saved, &i, Some(&pol), None, 30_000);
    assert!(p.is_noop(&saved));
    let p = plan(&saved, &i, Some(&pol), None, 90_000);
    assert_eq!(p.notifications.len(), 2);
    assert!(keys(&p).iter().all(|k| k.contains("level-2")));
}

#[test]
fn an_ack_stops_the_climb_and_is_announced_to_those_notified() {
    let pol = policy(Some(600), None);
    let mut i = incident();
    let mut e = start(7, Some("p"), 0);
    run(&mut e, &i, &pol, 0);
    i.acked_at = Some(5_000);
    i.acked_by = Some("ann".into());
    i.state = IncidentState::Acknowledged;
    let p = run(&mut e, &i, &pol, 5_100);
    assert_eq!(keys(&p), ["incident-7/ack-5000/mail"]);
    assert_eq!(p.notifications[0].event, "acknowledged");
    assert!(p.notes[0].message.contains("acknowledged by ann"));
    // Long after level 2 would have been due: nothing more, ever.
    for t in [61_000, 700_000, 10_000_000] {
        assert!(run(&mut e, &i, &pol, t).is_noop(&e), "at {t}");
    }
}

#[test]
fn resolve_is_announced_once_and_finishes_the_row() {
    let pol = policy(None, None);
    let mut i = incident();
    let mut e = start(7, Some("p"), 0);
    run(&mut e, &i, &pol, 0);
    i.state = IncidentState::Resolved;
    let p = run(&mut e, &i, &pol, 10);
    assert_eq!(keys(&p), ["incident-7/resolved/mail"]);
    assert!(e.done);
    assert_eq!(e.next_at, None);
}

#[test]
fn reminders_repeat_after_the_last_level_until_acked() {
    let pol = policy(Some(600), None);
    let mut i = incident();
    let mut e = start(7, Some("p"), 0);
    run(&mut e, &i, &pol, 0);
    run(&mut e, &i, &pol, 60_000);
    assert_eq!(e.next_at, Some(660_000));
    let p = run(&mut e, &i, &pol, 660_000);
    assert_eq!(
        keys(&p),
        [
            "incident-7/climb-0/reminder-1/phone",
            "incident-7/climb-0/reminder-1/mail"
        ]
    );
    assert_eq!(p.notifications[0].event, "reminder");
    let p = run(&mut e, &i, &pol, 1_260_000);
    assert!(keys(&p)[0].contains("reminder-2"));
    i.acked_at = Some(1_300_000);
    run(&mut e, &i, &pol, 1_300_000);
    assert!(run(&mut e, &i, &pol, 5_000_000).is_noop(&e));
}

#[test]
fn an_expired_ack_is_withdrawn_and_the_climb_restarts() {
    let pol = policy(None, Some(3600));
    let mut i = incident();
    let mut e = start(7, Some("p"), 0);
    run(&mut e, &i, &pol, 0);
    i.acked_at = Some(10_000);
    i.acked_by = Some("ann".into());
    run(&mut e, &i, &pol, 10_000);
    assert!(run(&mut e, &i, &pol, 3_609_999).is_noop(&e));
    let p = run(&mut e, &i, &pol, 3_610_000);
    assert_eq!(p.expire_ack, Some(10_000));
    assert!(p.notes[0].message.contains("expired"));
    assert_eq!(e.occurrence, 1);
    // The store withdrew the ack; the first level fires again, as a new climb.
    i.acked_at = None;
    i.acked_by = None;
    let p = run(&mut e, &i, &pol, 3_610_250);
    assert_eq!(keys(&p), ["incident-7/climb-1/level-1/mail"]);
    assert_eq!(p.notifications[0].event, "reminder");
}

#[test]
fn muted_holds_the_climb_and_records_it_once() {
    let pol = policy(None, None);
    let i = incident();
    let mut e = start(7, Some("p"), 0);
    let p = plan(&e, &i, Some(&pol), Some("silenced by silence 1"), 0);
    assert!(p.notifications.is_empty());
    assert_eq!(p.notes.len(), 1);
    e = p.escalation;
    let p = plan(&e, &i, Some(&pol), Some("silenced by silence 1"), 100_000);
    assert!(p.is_noop(&e));
    // The silence ends: the held level goes out, with a note.
    let p = plan(&e, &i, Some(&pol), None, 200_000);
    assert_eq!(keys(&p), ["incident-7/climb-0/level-1/mail"]);
    assert!(p.notes[0].message.starts_with("notifications resume"));
}

#[test]
fn without_a_route_nobody_is_notified() {
    let i = incident();
    let e = start(7, None, 0);
    assert_eq!(e.next_at, None);
    assert!(plan(&e, &i, None, None, 1_000_000).is_noop(&e));
}
