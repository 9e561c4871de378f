use super::*;
use crate::State::{Firing, Ok, Pending, Resolved};

fn above(
    value: f64,
    hold_ms: Millis,
    clear_value: Option<f64>,
    clear_hold_ms: Millis,
) -> Threshold {
    Threshold::new(ThresholdConfig {
        comparison: Comparison::Above,
        value,
        hold_ms,
        clear_value,
        clear_hold_ms,
    })
}

/// Feeds the samples and returns the (state, changed) answers.
fn feed(d: &mut Threshold, samples: &[(Millis, f64)]) -> Vec<(State, bool)> {
    samples
        .iter()
        .map(|&(t, v)| {
            let e = d.observe(t, v);
            (e.state, e.changed)
        })
        .collect()
}

#[test]
fn non_breaching_samples_stay_ok() {
    let mut d = above(0.9, 10_000, None, 0);
    let got = feed(&mut d, &[(0, 0.1), (1_000, 0.5), (2_000, 0.9)]);
    assert_eq!(got, vec![(Ok, false), (Ok, false), (Ok, false)]);
    assert_eq!(d.state(), Ok);
}

#[test]
fn bound_itself_does_not_breach() {
    let mut d = above(0.9, 0, None, 0);
    assert_eq!(d.observe(0, 0.9).state, Ok);
    let mut d = Threshold::new(ThresholdConfig {
        comparison: Comparison::Below,
        value: 0.1,
        hold_ms: 0,
        clear_value: None,
        clear_hold_ms: 0,
    });
    assert_eq!(d.observe(0, 0.1).state, Ok);
}

#[test]
fn fires_when_held_exactly_hold_ms() {
    let mut d = above(0.9, 10_000, None, 0);
    let got = feed(
        &mut d,
        &[
            (1_000, 0.95),
            (5_000, 0.95),
            (10_999, 0.99),
            (11_000, 0.91),
            (12_000, 0.92),
        ],
    );
    assert_eq!(
        got,
        vec![
            (Pending, true),
            (Pending, false),
            (Pending, false),
            (Firing, true),
            (Firing, false)
        ]
    );
}

#[test]
fn hold_minus_one_does_not_fire() {
    let mut d = above(0.9, 10_000, None, 0);
    assert_eq!(d.observe(0, 1.0).state, Pending);
    let e = d.observe(9_999, 1.0);
    assert_eq!((e.state, e.changed), (Pending, false));
    assert_eq!(e.evidence.since, Some(0));
    let e = d.observe(10_000, 1.0);
    assert_eq!((e.state, e.changed), (Firing, true));
    assert_eq!(e.evidence.since, Some(0));
}

#[test]
fn zero_hold_fires_on_first_breach() {
    let mut d = above(0.9, 0, None, 0);
    let e = d.observe(7_000, 0.95);
    assert_eq!((e.state, e.changed), (Firing, true));
    assert_eq!(e.evidence.since, Some(7_000));
    assert_eq!(e.evidence.reason, "value 0.95 > 0.9 for 0s");
}

#[test]
fn pending_interrupted_goes_back_to_ok_and_restarts_hold() {
    let mut d = above(0.9, 10_000, None, 0);
    let got = feed(
        &mut d,
        &[
            (0, 0.95),
            (8_000, 0.5),
            (9_000, 0.95),
            (10_000, 0.95),
            (18_999, 0.95),
            (19_000, 0.95),
        ],
    );
    assert_eq!(
        got,
        vec![
            (Pending, true),
            (Ok, true),
            (Pending, true),
            (Pending, false),
            (Pending, false),
            (Firing, true),
        ]
    );
}

#[test]
fn below_comparison() {
    let mut d = Threshold::new(ThresholdConfig {
        comparison: Comparison::Below,
        value: 10.0,
        hold_ms: 2_000,
        clear_value: Some(20.0),
        clear_hold_ms: 0,
    });
    let got = feed(
        &mut d,
        &[
            (0, 50.0),
            (1_000, 5.0),
            (3_000, 9.0),
            (4_000, 15.0),
            (5_000, 20.0),
            (6_000, 21.0),
            (7_000, 21.0),
        ],
    );
    assert_eq!(
        got,
        vec![
            (Ok, false),
            (Pending, true),
            (Firing, true),
            (Firing, false),
            (Firing, false),
            (Resolved, true),
            (Ok, true),
        ]
    );
    assert_eq!(
        d.observe(8_000, 9.5).evidence.reason,
        "value 9.5 < 10 for 0s (hold 2s)"
    );
}

#[test]
fn hysteresis_keeps_firing_between_clear_value_and_value() {
    let mut d = above(0.9, 0, Some(0.8), 0);
    let got = feed(
        &mut d,
        &[
            (0, 0.95),
            (1_000, 0.85),
            (2_000, 0.8),
            (3_000, 0.9),
            (4_000, 0.79),
            (5_000, 0.85),
        ],
    );
    assert_eq!(
        got,
        vec![
            (Firing, true),
            (Firing, false),
            (Firing, false),
            (Firing, false),
            (Resolved, true),
            (Ok, true),
        ]
    );
}

#[test]
fn without_clear_value_any_non_breaching_sample_clears() {
    let mut d = above(0.9, 0, None, 0);
    let got = feed(&mut d, &[(0, 0.95), (1_000, 0.9), (2_000, 0.9)]);
    assert_eq!(got, vec![(Firing, true), (Resolved, true), (Ok, true)]);
}

#[test]
fn clear_hold_must_hold_continuously() {
    let mut d = above(0.9, 0, Some(0.8), 5_000);
    let got = feed(
        &mut d,
        &[
            (0, 0.95),
            (10_000, 0.5),  // clear timer starts
            (14_999, 0.5),  // 4_999 < 5_000
            (15_000, 0.85), // not clearing: timer reset
            (16_000, 0.5),  // timer restarts at 16_000
            (20_999, 0.5),
            (21_000, 0.5), // held 5_000
            (22_000, 0.5),
        ],
    );
    assert_eq!(
        got,
        vec![
            (Firing, true),
            (Firing, false),
            (Firing, false),
            (Firing, false),
            (Firing, false),
            (Firing, false),
            (Resolved, true),
            (Ok, true),
        ]
    );
}

#[test]
fn resolved_is_answered_exactly_once_and_then_judged_fresh() {
    let mut d = above(0.9, 1_000, None, 0);
    let got = feed(
        &mut d,
        &[
            (0, 1.0),
            (1_000, 1.0),
            (2_000, 0.1),
            (3_000, 1.0),
            (3_500, 1.0),
            (4_000, 1.0),
        ],
    );
    assert_eq!(
        got,
        vec![
            (Pending, true),
            (Firing, true),
            (Resolved, true),
            (Pending, true),
            (Pending, false),
            (Firing, true),
        ]
    );
    let e = d.observe(5_000, 0.0);
    assert_eq!((e.state, e.changed), (Resolved, true));
    assert_eq!(
        e.evidence.since,
        Some(3_000),
        "resolved evidence names the incident start"
    );
    let e = d.observe(6_000, 0.0);
    assert_eq!((e.state, e.changed), (Ok, true));
    assert_eq!(e.evidence.since, None);
}

#[test]
fn nan_is_ignored() {
    let mut d = above(0.9, 10_000, None, 0);
    assert_eq!(d.observe(0, 1.0).state, Pending);
    let e = d.observe(5_000, f64::NAN);
    assert_eq!((e.state, e.changed), (Pending, false));
    assert!(e.evidence.observed.is_nan());
    assert_eq!(e.evidence.since, Some(0));
    assert_eq!(e.evidence.reason, "ignored: value is NaN");
    // The pending condition was not interrupted.
    assert_eq!(d.observe(10_000, 1.0).state, Firing);
    let e = d.observe(11_000, f64::NAN);
    assert_eq!((e.state, e.changed), (Firing, false));
}

#[test]
fn out_of_order_samples_are_ignored() {
    let mut d = above(0.9, 0, None, 0);
    assert_eq!(d.observe(5_000, 0.1).state, Ok);
    let e = d.observe(4_999, 1.0);
    assert_eq!((e.state, e.changed), (Ok, false));
    assert_eq!(
        e.evidence.reason,
        "ignored: sample at 4999 is older than the last one at 5000"
    );
    // Equal times are in order.
    let e = d.observe(5_000, 1.0);
    assert_eq!((e.state, e.changed), (Firing, true));
    let e = d.observe(1_000, 0.0);
    assert_eq!((e.state, e.changed), (Firing, false));
    assert_eq!(d.state(), Firing);
}

#[test]
fn ignored_sample_after_resolved_repeats_resolved_unchanged() {
    let mut d = above(0.9, 0, None, 0);
    feed(&mut d, &[(0, 1.0), (1_000, 0.0)]);
    assert_eq!(d.state(), Resolved);
    let e = d.observe(2_000, f64::NAN);
    assert_eq!((e.state, e.changed), (Resolved, false));
    let e = d.observe(3_000, 0.0);
    assert_eq!((e.state, e.changed), (Ok, true));
}

#[test]
fn evidence_threshold_is_the_bound_compared_with() {
    let mut d = above(0.9, 0, Some(0.8), 0);
    assert_eq!(d.observe(0, 0.5).evidence.threshold, 0.9);
    let e = d.observe(1_000, 0.95);
    assert_eq!(e.evidence.threshold, 0.9);
    assert_eq!(e.evidence.observed, 0.95);
    assert_eq!(e.evidence.at, 1_000);
    // While firing, samples are compared with the clear value.
    assert_eq!(d.observe(2_000, 0.85).evidence.threshold, 0.8);
    assert_eq!(d.observe(3_000, 0.5).evidence.threshold, 0.8);
    assert_eq!(d.observe(4_000, 0.5).evidence.threshold, 0.9);
}

#[test]
fn reasons() {
    let mut d = above(0.9, 10_000, Some(0.8), 2_500);
    let reasons: Vec<String> = [
        (0, 0.5),
        (5_000, 0.93),
        (15_000, 0.93),
        (16_000, 0.85),
        (17_000, 0.7),
        (19_500, 0.7),
        (20_000, 0.7),
    ]
    .iter()
    .map(|&(t, v)| d.observe(t, v).evidence.reason)
    .collect();
    assert_eq!(
        reasons,
        vec![
            "value 0.5 <= 0.9",
            "value 0.93 > 0.9 for 0s (hold 10s)",
            "value 0.93 > 0.9 for 10s",
            "value 0.85 >= clear value 0.8, firing for 11s",
            "value 0.7 < 0.8 for 0s (clear hold 2.5s), firing for 12s",
            "resolved: value 0.7 < 0.8 for 2.5s",
            "value 0.7 <= 0.9",
        ]
    );
}

#[test]
fn negative_holds_count_as_zero() {
    let mut d = above(0.9, -5, None, -5);
    let got = feed(&mut d, &[(0, 1.0), (0, 0.0)]);
    assert_eq!(got, vec![(Firing, true), (Resolved, true)]);
}
