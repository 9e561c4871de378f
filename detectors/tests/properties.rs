//! Property tests of the detectors' public behaviour.

use medic_detectors::{
    Comparison, ErrorRate, ErrorRateConfig, Evaluation, Heartbeat, HeartbeatConfig, Millis, State,
    Threshold, ThresholdConfig,
};
use proptest::prelude::*;

/// Checks the invariants every sequence of answers must satisfy:
/// `changed` is true exactly when the state differs from the previous
/// answer (initially `Ok`), and a `Resolved` transition only follows `Firing`.
fn check_answers(answers: &[Evaluation]) -> Result<(), TestCaseError> {
    let mut prev = State::Ok;
    for (i, e) in answers.iter().enumerate() {
        prop_assert_eq!(
            e.changed,
            e.state != prev,
            "answer {}: {:?} after {:?}",
            i,
            e,
            prev
        );
        if e.state == State::Resolved && e.changed {
            prop_assert_eq!(prev, State::Firing, "answer {}", i);
        }
        if prev == State::Firing {
            prop_assert!(
                matches!(e.state, State::Firing | State::Resolved),
                "answer {}: firing may only continue or resolve, got {:?}",
                i,
                e.state
            );
        }
        prev = e.state;
    }
    Ok(())
}

fn comparison() -> impl Strategy<Value = Comparison> {
    prop_oneof![Just(Comparison::Above), Just(Comparison::Below)]
}

/// A threshold config around the bound 1.0, with a sensible clear value.
fn threshold_config() -> impl Strategy<Value = ThresholdConfig> {
    (
        comparison(),
        0..5_000i64,
        any::<bool>(),
        0.0..0.9f64,
        0..3_000i64,
    )
        .prop_map(
            |(comparison, hold_ms, hysteresis, gap, clear_hold_ms)| ThresholdConfig {
                comparison,
                value: 1.0,
                hold_ms,
                clear_value: hysteresis.then_some(match comparison {
                    Comparison::Above => 1.0 - gap,
                    Comparison::Below => 1.0 + gap,
                }),
                clear_hold_ms,
            },
        )
}

fn sample_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => 0.0..2.0f64,
        1 => Just(1.0),
        1 => Just(f64::NAN),
    ]
}

/// Samples at non-decreasing times starting at 0.
fn ordered_samples() -> impl Strategy<Value = Vec<(Millis, f64)>> {
    prop::collection::vec((0..2_000i64, sample_value()), 0..80).prop_map(|steps| {
        let mut t = 0;
        steps
            .into_iter()
            .map(|(dt, v)| {
                t += dt;
                (t, v)
            })
            .collect()
    })
}

fn breaches(cfg: &ThresholdConfig, v: f64) -> bool {
    match cfg.comparison {
        Comparison::Above => v > cfg.value,
        Comparison::Below => v < cfg.value,
    }
}

/// A cumulative counter reading: mostly growing, sometimes restarting.
#[derive(Debug, Clone)]
enum Reading {
    Grow { errors: f64, total: f64 },
    Reset { errors: f64, total: f64 },
    Raw { errors: f64, total: f64 },
}

fn reading() -> impl Strategy<Value = Reading> {
    prop_oneof![
        6 => (0.0..50.0f64, 0.0..100.0f64).prop_map(|(errors, total)| Reading::Grow { errors, total }),
        1 => (0.0..50.0f64, 0.0..100.0f64).prop_map(|(errors, total)| Reading::Reset { errors, total }),
        1 => (-10.0..1e6f64, -10.0..1e6f64).prop_map(|(errors, total)| Reading::Raw { errors, total }),
    ]
}

/// Turns readings into (t, errors, total) observations at non-decreasing times.
fn counters(steps: Vec<(Millis, Reading)>) -> Vec<(Millis, f64, f64)> {
    let (mut t, mut e, mut n) = (0, 0.0, 0.0);
    steps
        .into_iter()
        .map(|(dt, r)| {
            t += dt;
            match r {
                Reading::Grow { errors, total } => {
                    e += errors;
                    n += total;
                }
                Reading::Reset { errors, total } | Reading::Raw { errors, total } => {
                    e = errors;
                    n = total;
                }
            }
            (t, e, n)
        })
        .collect()
}

fn error_rate_config() -> impl Strategy<Value = ErrorRateConfig> {
    (
        0..60_000i64,
        0.01..0.9f64,
        0.0..200.0f64,
        0..10_000i64,
        any::<bool>(),
        0.1..1.0f64,
    )
        .prop_map(
            |(window_ms, max_ratio, min_total, hold_ms, hysteresis, frac)| ErrorRateConfig {
                window_ms,
                max_ratio,
                min_total,
                hold_ms,
                clear_ratio: hysteresis.then_some(max_ratio * frac),
            },
        )
}

#[derive(Debug, Clone, Copy)]
enum Probe {
    Success,
    Failure,
    Tick,
}

fn probe() -> impl Strategy<Value = Probe> {
    prop_oneof![
        Just(Probe::Success),
        Just(Probe::Failure),
        Just(Probe::Tick)
    ]
}

fn apply(d: &mut Heartbeat, p: Probe, t: Millis) -> Evaluation {
    match p {
        Probe::Success => d.success(t),
        Probe::Failure => d.failure(t),
        Probe::Tick => d.tick(t),
    }
}

proptest! {
    #[test]
    fn threshold_observe_change_answers_exactly_the_changes(cfg in threshold_config(), samples in ordered_samples()) {
        let mut full = Threshold::new(cfg.clone());
        let mut lean = Threshold::new(cfg);
        for &(t, v) in &samples {
            let e = full.observe(t, v);
            let c = lean.observe_change(t, v);
            prop_assert_eq!(c.as_ref(), e.changed.then_some(&e));
        }
        // Also a NaN and an out-of-order sample.
        let last = samples.last().map_or(0, |s| s.0);
        for (t, v) in [(last, f64::NAN), (last - 1, 1.0)] {
            let e = full.observe(t, v);
            let c = lean.observe_change(t, v);
            prop_assert_eq!(c.as_ref(), e.changed.then_some(&e));
        }
    }

    #[test]
    fn threshold_never_fires_before_the_condition_held(cfg in threshold_config(), samples in ordered_samples()) {
        let mut d = Threshold::new(cfg.clone());
        let mut prev = State::Ok;
        // Start of the current run of consecutive breaching (non-NaN) samples.
        let mut run_start: Option<Millis> = None;
        for (t, v) in samples {
            if !v.is_nan() {
                run_start = if breaches(&cfg, v) { Some(run_start.unwrap_or(t)) } else { None };
            }
            let e = d.observe(t, v);
            if e.state == State::Firing && prev != State::Firing {
                let since = e.evidence.since.expect("firing has a start");
                let run = run_start.expect("firing requires a breaching run");
                prop_assert!(t - since >= cfg.hold_ms, "fired at {} since {} (hold {})", t, since, cfg.hold_ms);
                prop_assert!(since >= run, "condition start {} precedes the breaching run {}", since, run);
            }
            if e.state == State::Pending && !v.is_nan() {
                prop_assert!(t - e.evidence.since.expect("pending has a start") < cfg.hold_ms);
            }
            prev = e.state;
        }
    }

    #[test]
    fn threshold_changed_flags(cfg in threshold_config(), samples in prop::collection::vec((0..10_000i64, sample_value()), 0..80)) {
        // Times are unordered on purpose: out-of-order samples are ignored.
        let mut d = Threshold::new(cfg);
        let answers: Vec<Evaluation> = samples.into_iter().map(|(t, v)| d.observe(t, v)).collect();
        check_answers(&answers)?;
        if let Some(last) = answers.last() {
            prop_assert_eq!(d.state(), last.state);
        }
    }

    #[test]
    fn threshold_firing_is_resolved_once_when_clearing_values_are_fed(cfg in threshold_config(), samples in ordered_samples()) {
        let mut d = Threshold::new(cfg.clone());
        let mut answers: Vec<Evaluation> = samples.iter().map(|&(t, v)| d.observe(t, v)).collect();
        let was_firing = d.state() == State::Firing;
        let clearing = match cfg.comparison {
            Comparison::Above => -1e9,
            Comparison::Below => 1e9,
        };
        let t0 = samples.last().map_or(0, |s| s.0);
        let n = cfg.clear_hold_ms / 1_000 + 3;
        let tail: Vec<Evaluation> = (1..=n).map(|k| d.observe(t0 + k * 1_000, clearing)).collect();
        let resolved: Vec<usize> = tail.iter().enumerate().filter(|(_, e)| e.state == State::Resolved).map(|(i, _)| i).collect();
        if was_firing {
            // The clear timer starts at the latest with the first clearing
            // sample (k = 1); it may have started during the prefix.
            let latest = usize::try_from((cfg.clear_hold_ms + 999) / 1_000).unwrap();
            prop_assert_eq!(resolved.len(), 1);
            prop_assert!(resolved[0] <= latest);
        } else {
            prop_assert!(resolved.is_empty());
        }
        prop_assert_eq!(tail.last().unwrap().state, State::Ok);
        answers.extend(tail);
        check_answers(&answers)?;
    }

    #[test]
    fn error_ratio_is_within_zero_and_one(
        cfg in error_rate_config(),
        steps in prop::collection::vec((0..20_000i64, reading()), 0..80),
    ) {
        let mut d = ErrorRate::new(cfg);
        let answers: Vec<Evaluation> = counters(steps).into_iter().map(|(t, e, n)| d.observe(t, e, n)).collect();
        for e in &answers {
            prop_assert!((0.0..=1.0).contains(&e.evidence.observed), "ratio {} out of range: {:?}", e.evidence.observed, e);
        }
        check_answers(&answers)?;
    }

    #[test]
    fn error_rate_changed_flags_with_junk_input(
        cfg in error_rate_config(),
        obs in prop::collection::vec(
            (0..100_000i64, prop_oneof![8 => 0.0..1e4f64, 1 => Just(f64::NAN), 1 => Just(f64::INFINITY)], 0.0..1e4f64),
            0..80,
        ),
    ) {
        let mut d = ErrorRate::new(cfg);
        let answers: Vec<Evaluation> = obs.into_iter().map(|(t, e, n)| d.observe(t, e, n)).collect();
        check_answers(&answers)?;
        if let Some(last) = answers.last() {
            prop_assert_eq!(d.state(), last.state);
        }
    }

    #[test]
    fn quiet_service_never_pages(
        cfg in error_rate_config(),
        steps in prop::collection::vec((0..20_000i64, 0.0..1.0f64), 0..80),
    ) {
        // Everything fails, but the whole run has fewer requests than min_total.
        let mut cfg = cfg;
        cfg.min_total = 100.0;
        let mut d = ErrorRate::new(cfg);
        let (mut t, mut n) = (0, 0.0);
        for (dt, inc) in steps {
            t += dt;
            n += inc;
            let e = d.observe(t, n, n);
            prop_assert_eq!(e.state, State::Ok);
        }
    }

    #[test]
    fn error_rate_firing_resolves_when_errors_stop(
        cfg in error_rate_config(),
        steps in prop::collection::vec((0..20_000i64, reading()), 0..80),
    ) {
        let mut d = ErrorRate::new(cfg);
        let obs = counters(steps);
        let mut answers: Vec<Evaluation> = obs.iter().map(|&(t, e, n)| d.observe(t, e, n)).collect();
        let was_firing = d.state() == State::Firing;
        let (t0, e0, n0) = obs.last().copied().unwrap_or((0, 0.0, 0.0));
        // Overwhelming successful traffic, no new errors.
        let tail: Vec<Evaluation> = (1..=3).map(|k| d.observe(t0 + k, e0, n0 + k as f64 * 1e12)).collect();
        let states: Vec<State> = tail.iter().map(|e| e.state).collect();
        if was_firing {
            prop_assert_eq!(states, vec![State::Resolved, State::Ok, State::Ok]);
        } else {
            prop_assert_eq!(states[1..].to_vec(), vec![State::Ok, State::Ok]);
        }
        answers.extend(tail);
        check_answers(&answers)?;
    }

    #[test]
    fn heartbeat_invariants(
        timeout_ms in 0..10_000i64,
        start in -5_000..5_000i64,
        ops in prop::collection::vec((0..3_000i64, probe()), 0..80),
    ) {
        let mut d = Heartbeat::new(HeartbeatConfig { timeout_ms }, start);
        let mut t = start;
        let mut answers = Vec::new();
        for (dt, p) in ops {
            t += dt;
            let e = apply(&mut d, p, t);
            let reference = d.last_success().unwrap_or(start);
            match p {
                Probe::Success => {
                    prop_assert_eq!(d.last_success(), Some(t));
                    prop_assert!(matches!(e.state, State::Ok | State::Resolved));
                }
                Probe::Failure | Probe::Tick => {
                    // Firing exactly when the timeout elapsed since the reference.
                    prop_assert_eq!(e.state == State::Firing, t - reference >= timeout_ms, "{:?}", e);
                    if e.state == State::Firing {
                        prop_assert!(e.evidence.observed >= e.evidence.threshold);
                    }
                }
            }
            answers.push(e);
        }
        check_answers(&answers)?;
    }

    #[test]
    fn heartbeat_changed_flags_with_unordered_times(
        timeout_ms in -10..10_000i64,
        ops in prop::collection::vec((0..30_000i64, probe()), 0..80),
    ) {
        let mut d = Heartbeat::new(HeartbeatConfig { timeout_ms }, 0);
        let answers: Vec<Evaluation> = ops.into_iter().map(|(t, p)| apply(&mut d, p, t)).collect();
        for e in &answers {
            prop_assert!(e.evidence.observed >= 0.0);
        }
        check_answers(&answers)?;
        if let Some(last) = answers.last() {
            prop_assert_eq!(d.state(), last.state);
        }
    }
}
