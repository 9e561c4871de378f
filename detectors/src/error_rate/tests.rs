use super::*;
use crate::State::{Firing, Ok, Pending, Resolved};

fn detector(hold_ms: Millis, clear_ratio: Option<f64>) -> ErrorRate {
    ErrorRate::new(ErrorRateConfig {
        window_ms: 30_000,
        max_ratio: 0.1,
        min_total: 10.0,
        hold_ms,
        clear_ratio,
    })
}

/// Feeds (t, errors, total) readings and returns the (state, changed) answers.
fn feed(d: &mut ErrorRate, readings: &[(Millis, f64, f64)]) -> Vec<(State, bool)> {
    readings
        .iter()
        .map(|&(t, e, n)| {
            let ev = d.observe(t, e, n);
            (ev.state, ev.changed)
        })
        .collect()
}

#[test]
fn first_observation_only_sets_the_baseline() {
    let mut d = detector(0, None);
    // Huge cumulative values at start are history, not a breach.
    let e = d.observe(0, 1_000.0, 1_000.0);
    assert_eq!((e.state, e.changed), (Ok, false));
    assert_eq!(e.evidence.reason, "baseline: first counter reading");
    assert_eq!(e.evidence.observed, 0.0);
    let e = d.observe(10_000, 1_001.0, 1_100.0);
    assert_eq!((e.state, e.changed), (Ok, false));
    assert_eq!(e.evidence.observed, 0.01);
    assert_eq!(
        e.evidence.reason,
        "error ratio 0.01 <= 0.1 over 30s (100 requests)"
    );
}

#[test]
fn breach_fires_immediately_without_hold() {
    let mut d = detector(0, None);
    d.observe(0, 0.0, 0.0);
    let e = d.observe(10_000, 42.0, 100.0);
    assert_eq!((e.state, e.changed), (Firing, true));
    assert_eq!(e.evidence.observed, 0.42);
    assert_eq!(e.evidence.threshold, 0.1);
    assert_eq!(e.evidence.since, Some(10_000));
    assert_eq!(
        e.evidence.reason,
        "error ratio 0.42 > 0.1 over 30s (100 requests) for 0s"
    );
}

#[test]
fn hold_boundary() {
    let mut d = ErrorRate::new(ErrorRateConfig {
        window_ms: 60_000,
        max_ratio: 0.1,
        min_total: 10.0,
        hold_ms: 10_000,
        clear_ratio: None,
    });
    let got = feed(
        &mut d,
        &[
            (0, 0.0, 0.0),
            (1_000, 50.0, 100.0),  // pending since 1_000
            (10_999, 60.0, 200.0), // held 9_999
            (11_000, 70.0, 300.0), // held 10_000
            (12_000, 80.0, 400.0),
        ],
    );
    assert_eq!(
        got,
        vec![
            (Ok, false),
            (Pending, true),
            (Pending, false),
            (Firing, true),
            (Firing, false)
        ]
    );
}

#[test]
fn pending_interrupted_goes_back_to_ok() {
    let mut d = ErrorRate::new(ErrorRateConfig {
        window_ms: 10_000,
        max_ratio: 0.1,
        min_total: 10.0,
        hold_ms: 20_000,
        clear_ratio: None,
    });
    let got = feed(
        &mut d,
        &[
            (0, 0.0, 0.0),
            (10_000, 50.0, 100.0),  // 0.5
            (20_000, 50.0, 1100.0), // window is (10_000, 20_000]: 0/1000
        ],
    );
    assert_eq!(got, vec![(Ok, false), (Pending, true), (Ok, true)]);
}

#[test]
fn counter_reset_mid_window_counts_the_new_value_as_the_increase() {
    let mut d = detector(0, None);
    d.observe(0, 100.0, 10_000.0);
    let e = d.observe(10_000, 105.0, 10_100.0); // +5 / +100
    assert_eq!(e.evidence.observed, 0.05);
    // Both counters restarted (process restart): increases are 2 and 50.
    let e = d.observe(20_000, 2.0, 50.0);
    assert_eq!(e.evidence.observed, 7.0 / 150.0);
    assert_eq!(e.state, Ok);
    // Counting continues from the new values.
    let e = d.observe(25_000, 32.0, 100.0); // +30 / +50
    assert_eq!(e.evidence.observed, 37.0 / 200.0);
    assert_eq!((e.state, e.changed), (Firing, true));
}

#[test]
fn reset_of_one_counter_only() {
    let mut d = detector(0, None);
    d.observe(0, 10.0, 1_000.0);
    // errors went 10 -> 4: restarted, increase 4; total +100.
    let e = d.observe(10_000, 4.0, 1_100.0);
    assert_eq!(e.evidence.observed, 0.04);
}

#[test]
fn quiet_service_never_pages() {
    let mut d = detector(0, None);
    d.observe(0, 0.0, 0.0);
    // Every request fails, but there are only 3 per 10s: 9 per 30s window
    // (< min_total 10).
    for i in 1..=100i64 {
        let n = (3 * i) as f64;
        let e = d.observe(i * 10_000, n, n);
        assert_eq!((e.state, e.changed), (Ok, false), "at step {i}");
        assert_eq!(e.evidence.observed, 1.0);
    }
    let e = d.observe(1_010_000, 303.0, 303.0);
    assert_eq!(
        e.evidence.reason,
        "insufficient volume: 9 requests over 30s (minimum 10)"
    );
}

#[test]
fn volume_exactly_min_total_counts() {
    let mut d = detector(0, None);
    d.observe(0, 0.0, 0.0);
    let e = d.observe(1_000, 5.0, 10.0);
    assert_eq!((e.state, e.changed), (Firing, true));
}

#[test]
fn insufficient_volume_while_firing_resolves() {
    let mut d = detector(0, Some(0.05));
    let got = feed(
        &mut d,
        &[
            (0, 0.0, 0.0),
            (10_000, 50.0, 100.0), // firing
            (45_000, 50.0, 101.0), // the burst left the window: 1 request
            (50_000, 50.0, 101.0),
        ],
    );
    assert_eq!(
        got,
        vec![(Ok, false), (Firing, true), (Resolved, true), (Ok, true)]
    );
}

#[test]
fn old_errors_expire_from_the_window() {
    let mut d = detector(0, None);
    let got = feed(
        &mut d,
        &[
            (0, 0.0, 0.0),
            (10_000, 50.0, 100.0), // errors burst, increase stamped 10_000
            (20_000, 50.0, 200.0), // 50/200
            (39_999, 50.0, 300.0), // 10_000 > 39_999 - 30_000: still inside, 50/300
            (40_000, 50.0, 400.0), // 10_000 <= 40_000 - 30_000: burst dropped, 0/300
        ],
    );
    assert_eq!(
        got,
        vec![
            (Ok, false),
            (Firing, true),
            (Firing, false),
            (Firing, false),
            (Resolved, true)
        ]
    );
    let e = d.observe(40_001, 50.0, 400.0);
    assert_eq!(e.evidence.observed, 0.0);
    assert_eq!(
        e.evidence.reason,
        "error ratio 0 <= 0.1 over 30s (300 requests)"
    );
}

#[test]
fn ratio_is_capped_at_one() {
    let mut d = detector(0, None);
    d.observe(0, 0.0, 0.0);
    let e = d.observe(1_000, 200.0, 100.0);
    assert_eq!(e.evidence.observed, 1.0);
    assert_eq!(e.state, Firing);
}

#[test]
fn hysteresis_with_clear_ratio() {
    let mut d = ErrorRate::new(ErrorRateConfig {
        window_ms: 1_000,
        max_ratio: 0.1,
        min_total: 10.0,
        hold_ms: 0,
        clear_ratio: Some(0.05),
    });
    // The window is short: each step judges only its own increase.
    let got = feed(
        &mut d,
        &[
            (0, 0.0, 0.0),
            (2_000, 20.0, 100.0),  // 0.2: firing
            (4_000, 28.0, 200.0),  // 0.08: between, still firing
            (6_000, 33.0, 300.0),  // 0.05: not strictly below, still firing
            (8_000, 37.0, 400.0),  // 0.04: resolved
            (10_000, 45.0, 500.0), // 0.08: ok (judged fresh against 0.1)
        ],
    );
    assert_eq!(
        got,
        vec![
            (Ok, false),
            (Firing, true),
            (Firing, false),
            (Firing, false),
            (Resolved, true),
            (Ok, true)
        ]
    );
}

#[test]
fn evidence_and_reasons_across_an_incident() {
    let mut d = ErrorRate::new(ErrorRateConfig {
        window_ms: 1_000,
        max_ratio: 0.1,
        min_total: 10.0,
        hold_ms: 2_000,
        clear_ratio: Some(0.05),
    });
    d.observe(0, 0.0, 0.0);
    let evs: Vec<Evaluation> = [
        (1_000, 42.0, 100.0),
        (2_000, 84.0, 200.0),
        (3_000, 126.0, 300.0),
        (4_000, 134.0, 400.0),
        (5_000, 135.0, 500.0),
    ]
    .iter()
    .map(|&(t, e, n)| d.observe(t, e, n))
    .collect();
    let got: Vec<(State, f64, Option<Millis>, &str)> = evs
        .iter()
        .map(|e| {
            (
                e.state,
                e.evidence.threshold,
                e.evidence.since,
                e.evidence.reason.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                Pending,
                0.1,
                Some(1_000),
                "error ratio 0.42 > 0.1 over 1s (100 requests) for 0s (hold 2s)"
            ),
            (
                Pending,
                0.1,
                Some(1_000),
                "error ratio 0.42 > 0.1 over 1s (100 requests) for 1s (hold 2s)"
            ),
            (
                Firing,
                0.1,
                Some(1_000),
                "error ratio 0.42 > 0.1 over 1s (100 requests) for 2s"
            ),
            (
                Firing,
                0.05,
                Some(1_000),
                "error ratio 0.08 >= clear ratio 0.05 over 1s (100 requests), firing for 3s"
            ),
            (
                Resolved,
                0.05,
                Some(1_000),
                "resolved: error ratio 0.01 < 0.05 over 1s (100 requests)"
            ),
        ]
    );
}

#[test]
fn non_finite_inputs_are_ignored() {
    let mut d = detector(0, None);
    d.observe(0, 0.0, 0.0);
    assert_eq!(d.observe(1_000, 50.0, 100.0).state, Firing);
    for (e, n) in [
        (f64::NAN, 200.0),
        (60.0, f64::NAN),
        (f64::INFINITY, 200.0),
        (0.0, f64::NEG_INFINITY),
    ] {
        let ev = d.observe(2_000, e, n);
        assert_eq!((ev.state, ev.changed), (Firing, false));
        assert!(
            ev.evidence
                .reason
                .starts_with("ignored: counters are not finite")
        );
    }
    // The baseline is still the reading at 1_000.
    let ev = d.observe(3_000, 50.0, 200.0);
    assert_eq!(ev.evidence.observed, 50.0 / 200.0);
}

#[test]
fn nan_before_baseline_does_not_set_it() {
    let mut d = detector(0, None);
    let e = d.observe(0, f64::NAN, 0.0);
    assert_eq!((e.state, e.changed), (Ok, false));
    assert!(d.last.is_none());
}

#[test]
fn out_of_order_observations_are_ignored() {
    let mut d = detector(0, None);
    d.observe(10_000, 0.0, 0.0);
    let e = d.observe(9_000, 50.0, 100.0);
    assert_eq!((e.state, e.changed), (Ok, false));
    assert_eq!(
        e.evidence.reason,
        "ignored: observation at 9000 is older than the last one at 10000"
    );
    // The baseline is unchanged: 0/0 -> 1/100.
    let e = d.observe(11_000, 1.0, 100.0);
    assert_eq!(e.evidence.observed, 0.01);
    // Equal times are accepted.
    let e = d.observe(11_000, 31.0, 200.0);
    assert_eq!(e.evidence.observed, 31.0 / 200.0);
    assert_eq!(e.state, Firing);
}

#[test]
fn memory_is_bounded() {
    let mut d = ErrorRate::new(ErrorRateConfig {
        window_ms: Millis::MAX,
        max_ratio: 0.5,
        min_total: 1.0,
        hold_ms: 0,
        clear_ratio: None,
    });
    d.observe(0, 0.0, 0.0);
    let steps = 12_000i64;
    for i in 1..=steps {
        let errors = (i / 4) as f64; // one error every fourth request
        d.observe(i, errors, i as f64);
    }
    assert_eq!(d.window.len(), MAX_ENTRIES);
    // Merging kept every increase.
    let j = d.judge();
    assert_eq!(j.total, steps as f64);
    assert_eq!(j.ratio, (steps / 4) as f64 / steps as f64);
}

#[test]
fn idle_steps_store_nothing() {
    let mut d = detector(0, None);
    d.observe(0, 0.0, 0.0);
    for i in 1..100 {
        d.observe(i * 1_000, 0.0, 0.0);
    }
    assert!(d.window.is_empty());
    let e = d.observe(100_000, 0.0, 0.0);
    assert_eq!(
        e.evidence.reason,
        "insufficient volume: 0 requests over 30s (minimum 10)"
    );
}

#[test]
fn increase_handles_resets() {
    assert_eq!(increase(5.0, 8.0), 3.0);
    assert_eq!(increase(8.0, 5.0), 5.0);
    assert_eq!(increase(8.0, 8.0), 0.0);
    assert_eq!(increase(8.0, -1.0), 0.0);
}
