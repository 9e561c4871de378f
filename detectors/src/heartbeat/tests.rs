use super::*;
use crate::State::{Firing, Ok, Pending, Resolved};

fn hb(timeout_ms: Millis, start: Millis) -> Heartbeat {
    Heartbeat::new(HeartbeatConfig { timeout_ms }, start)
}

fn sc(e: Evaluation) -> (State, bool) {
    (e.state, e.changed)
}

#[test]
fn never_seen_target_fires_after_timeout_from_start() {
    let mut d = hb(3_000, 1_000);
    assert_eq!(d.state(), Ok);
    assert_eq!(d.last_success(), None);
    let e = d.tick(3_999);
    assert_eq!((e.state, e.changed), (Ok, false));
    assert_eq!(
        e.evidence.reason,
        "no probe result yet, 3.0s since start (timeout 3s)"
    );
    let e = d.tick(4_000);
    assert_eq!((e.state, e.changed), (Firing, true));
    assert_eq!(e.evidence.observed, 3.0);
    assert_eq!(e.evidence.threshold, 3.0);
    assert_eq!(e.evidence.since, Some(4_000));
    assert_eq!(
        e.evidence.reason,
        "no successful probe since start 3.0s ago (timeout 3s)"
    );
    assert_eq!(sc(d.tick(10_000)), (Firing, false));
}

#[test]
fn timeout_counts_from_the_last_success() {
    let mut d = hb(3_000, 0);
    assert_eq!(sc(d.success(10_000)), (Ok, false));
    assert_eq!(d.last_success(), Some(10_000));
    let e = d.tick(12_999);
    assert_eq!((e.state, e.changed), (Ok, false));
    assert_eq!(
        e.evidence.reason,
        "last successful probe 3.0s ago (timeout 3s)"
    );
    let e = d.tick(13_000);
    assert_eq!((e.state, e.changed), (Firing, true));
    assert_eq!(e.evidence.since, Some(13_000));
    assert_eq!(
        e.evidence.reason,
        "no successful probe for 3.0s (timeout 3s)"
    );
}

#[test]
fn success_resolves_exactly_once() {
    let mut d = hb(3_000, 0);
    assert_eq!(sc(d.tick(5_000)), (Firing, true));
    let e = d.success(6_500);
    assert_eq!((e.state, e.changed), (Resolved, true));
    assert_eq!(e.evidence.observed, 6.5);
    assert_eq!(e.evidence.since, Some(3_000));
    assert_eq!(
        e.evidence.reason,
        "probe succeeded after 6.5s without success"
    );
    assert_eq!(d.state(), Resolved);
    let e = d.success(7_000);
    assert_eq!((e.state, e.changed), (Ok, true));
    assert_eq!(e.evidence.reason, "probe succeeded");
    assert_eq!(e.evidence.since, None);
    assert_eq!(sc(d.tick(8_000)), (Ok, false));
}

#[test]
fn tick_after_resolved_answers_ok() {
    let mut d = hb(3_000, 0);
    d.tick(3_000);
    assert_eq!(sc(d.success(4_000)), (Resolved, true));
    assert_eq!(sc(d.tick(4_500)), (Ok, true));
}

#[test]
fn failures_go_pending_then_fire() {
    let mut d = hb(3_000, 0);
    d.success(1_000);
    let e = d.failure(2_000);
    assert_eq!((e.state, e.changed), (Pending, true));
    assert_eq!(e.evidence.since, Some(2_000));
    assert_eq!(
        e.evidence.reason,
        "probe failed; no successful probe for 1.0s (timeout 3s)"
    );
    let e = d.failure(3_000);
    assert_eq!((e.state, e.changed), (Pending, false));
    assert_eq!(
        e.evidence.since,
        Some(2_000),
        "pending since the first failure"
    );
    let e = d.tick(3_500);
    assert_eq!((e.state, e.changed), (Pending, false));
    assert_eq!(
        e.evidence.reason,
        "probe failing; no successful probe for 2.5s (timeout 3s)"
    );
    let e = d.failure(4_000);
    assert_eq!((e.state, e.changed), (Firing, true));
    assert_eq!(
        e.evidence.since,
        Some(2_000),
        "the incident began at the first failure"
    );
    assert_eq!(e.evidence.observed, 3.0);
    assert_eq!(sc(d.failure(5_000)), (Firing, false));
    assert_eq!(d.failure(5_000).evidence.since, Some(2_000));
    let e = d.success(6_000);
    assert_eq!((e.state, e.changed), (Resolved, true));
    assert_eq!(e.evidence.since, Some(2_000));
}

#[test]
fn failure_past_the_deadline_fires_at_once() {
    let mut d = hb(3_000, 0);
    // The deadline (3_000) passed before the first failure was seen.
    let e = d.failure(5_000);
    assert_eq!((e.state, e.changed), (Firing, true));
    assert_eq!(e.evidence.since, Some(3_000));
}

#[test]
fn success_while_pending_goes_back_to_ok() {
    let mut d = hb(3_000, 0);
    assert_eq!(sc(d.failure(1_000)), (Pending, true));
    assert_eq!(sc(d.success(1_500)), (Ok, true));
    // A new failure starts a new pending condition.
    let e = d.failure(2_000);
    assert_eq!((e.state, e.changed), (Pending, true));
    assert_eq!(e.evidence.since, Some(2_000));
    // ... which fires relative to the last success (1_500).
    assert_eq!(sc(d.tick(4_499)), (Pending, false));
    assert_eq!(sc(d.tick(4_500)), (Firing, true));
}

#[test]
fn failure_after_resolved_goes_pending() {
    let mut d = hb(3_000, 0);
    d.tick(3_000);
    assert_eq!(sc(d.success(3_100)), (Resolved, true));
    let e = d.failure(3_200);
    assert_eq!((e.state, e.changed), (Pending, true));
    assert_eq!(e.evidence.since, Some(3_200));
}

#[test]
fn last_success_never_moves_backwards() {
    let mut d = hb(3_000, 0);
    d.success(10_000);
    d.success(9_000);
    assert_eq!(d.last_success(), Some(10_000));
    assert_eq!(sc(d.tick(12_999)), (Ok, false));
    assert_eq!(sc(d.tick(13_000)), (Firing, true));
}

#[test]
fn stale_failure_before_last_success_does_not_go_pending() {
    let mut d = hb(3_000, 0);
    d.success(10_000);
    let e = d.failure(9_500);
    assert_eq!((e.state, e.changed), (Ok, false));
    assert_eq!(e.evidence.observed, 0.0, "elapsed is never negative");
    // A failure at the same time as the success counts.
    assert_eq!(sc(d.failure(10_000)), (Pending, true));
}

#[test]
fn zero_timeout_fires_unless_a_success_is_reported() {
    let mut d = hb(0, 0);
    assert_eq!(sc(d.tick(0)), (Firing, true));
    assert_eq!(sc(d.success(0)), (Resolved, true));
    assert_eq!(sc(d.tick(0)), (Firing, true));
}

#[test]
fn negative_timeout_counts_as_zero() {
    let mut d = hb(-10, 0);
    let e = d.tick(0);
    assert_eq!((e.state, e.changed), (Firing, true));
    assert_eq!(e.evidence.threshold, 0.0);
}
