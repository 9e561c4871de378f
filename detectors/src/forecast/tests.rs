use proptest::prelude::*;

use super::*;
use crate::State::{Firing, Ok, Pending, Resolved};
use crate::testutil::noise;

const MIN: Millis = 60_000;
const HOUR: Millis = 60 * MIN;

fn disk() -> Forecast {
    Forecast::new(ForecastConfig::default())
}

/// Disk usage from 50 % rising 10 % an hour (full at 5 h), one sample every
/// 45 s, plus noise of amplitude `amp`. Every value and slot mean is exact
/// in binary when `amp` is 0.
fn fill(t: Millis, amp: f64) -> f64 {
    50.0 + (t / 45_000) as f64 * 0.125 + amp * noise(t as u64)
}

/// Feeds `value(t)` every 45 s in `[from, to)`; returns (time, answer).
fn run(
    d: &mut Forecast,
    from: Millis,
    to: Millis,
    value: impl Fn(Millis) -> f64,
) -> Vec<(Millis, Evaluation)> {
    (0..)
        .map(|k| from + k * 45_000)
        .take_while(|&t| t < to)
        .map(|t| (t, d.observe(t, value(t))))
        .collect()
}

/// The (time, state) of every answer whose state changed.
fn changes(answers: &[(Millis, Evaluation)]) -> Vec<(Millis, State)> {
    answers
        .iter()
        .filter(|(_, e)| e.changed)
        .map(|(t, e)| (*t, e.state))
        .collect()
}

#[test]
fn a_linear_fill_is_predicted_exactly_and_fires_at_the_horizon() {
    let mut d = disk();
    let answers = run(&mut d, 0, 2 * HOUR + 1, |t| fill(t, 0.0));
    // 4 h before full (at 1 h) the breach is within the horizon: pending,
    // and at the first sample after the 10 min hold (samples are 45 s
    // apart), firing.
    assert_eq!(
        changes(&answers),
        vec![(HOUR, Pending), (HOUR + 10 * MIN + 30_000, Firing)]
    );
    let p = d.prediction().unwrap();
    assert_eq!(p.at, 2 * HOUR);
    assert!((p.level - 70.0).abs() < 1e-9, "{p:?}");
    assert!((p.slope_per_hour - 10.0).abs() < 1e-9, "{p:?}");
    assert_eq!(p.breach_in_ms, Some(3 * HOUR));
    assert_eq!(p.earliest_ms, Some(3 * HOUR));
    assert_eq!(p.latest_ms, Some(3 * HOUR));
    let e = &answers.last().unwrap().1;
    assert_eq!(e.evidence.since, Some(HOUR));
    assert_eq!(e.evidence.threshold, 100.0);
    assert_eq!(
        e.evidence.reason,
        "trend 70 at 10/h reaches 100 in 3h 0m (between 3h 0m and 3h 0m), horizon 4h 0m"
    );
}

#[test]
fn a_noisy_fill_is_predicted_within_tolerance_and_does_not_flap() {
    let mut d = disk();
    let answers = run(&mut d, 0, 4 * HOUR + 30 * MIN, |t| fill(t, 1.5));
    let changed = changes(&answers);
    assert_eq!(changed.len(), 2, "{changed:?}");
    let (pending, firing) = (changed[0], changed[1]);
    assert_eq!(pending.1, Pending);
    assert_eq!(firing.1, Firing);
    // Within 20 minutes of the noiseless times: at 1 h the trend is fitted
    // on one hour of noisy data (its slope here reads 9.2 %/h, not 10).
    assert!((pending.0 - HOUR).abs() <= 20 * MIN, "{changed:?}");
    assert_eq!(firing.0 - pending.0, 10 * MIN + 30_000, "{changed:?}");
    // Half an hour before full: predicted within 5 minutes, and the band
    // holds the truth.
    let p = d.prediction().unwrap();
    let truth = 5 * HOUR - p.at;
    let eta = p.breach_in_ms.unwrap();
    assert!((eta - truth).abs() <= 5 * MIN, "{p:?}");
    assert!(
        p.earliest_ms.unwrap() <= truth && truth <= p.latest_ms.unwrap(),
        "{p:?}"
    );
}

#[test]
fn a_flat_series_never_fires() {
    for amp in [0.0, 2.0, 10.0] {
        let mut d = disk();
        let answers = run(&mut d, 0, 24 * HOUR, |t| 60.0 + amp * noise(t as u64));
        assert!(
            answers.iter().all(|(_, e)| e.state == Ok),
            "amp {amp}: {:?}",
            changes(&answers)
        );
    }
    let mut d = disk();
    run(&mut d, 0, HOUR, |_| 60.0);
    let p = d.prediction().unwrap();
    assert_eq!(p.breach_in_ms, None);
    assert_eq!(p.latest_ms, None);
    assert_eq!(d.score().score, 0.0);
}

#[test]
fn one_outlier_does_not_move_the_trend() {
    let mut d = disk();
    run(&mut d, 0, HOUR, |_| 60.0);
    let e = d.observe(HOUR, 99.0);
    assert_eq!(e.state, Ok);
    assert_eq!(d.prediction().unwrap().breach_in_ms, None);
}

#[test]
fn falling_free_space_fires_for_below() {
    let mut d = Forecast::new(ForecastConfig {
        comparison: Comparison::Below,
        limit: 0.0,
        hold_ms: 0,
        ..ForecastConfig::default()
    });
    // Free space from 50 % falling 10 % an hour: empty at 5 h.
    let answers = run(&mut d, 0, 2 * HOUR, |t| 100.0 - fill(t, 0.0));
    assert_eq!(changes(&answers), vec![(HOUR, Firing)]);
}

#[test]
fn resolves_once_when_the_disk_is_cleaned() {
    let mut d = disk();
    let mut answers = run(&mut d, 0, 2 * HOUR, |t| fill(t, 0.0));
    answers.extend(run(&mut d, 2 * HOUR, 5 * HOUR, |_| 20.0));
    let changed = changes(&answers);
    assert_eq!(changed.len(), 4, "{changed:?}");
    assert_eq!(changed[2].1, Resolved);
    assert!(changed[2].0 < 3 * HOUR, "{changed:?}");
    assert_eq!(changed[3].1, Ok);
    assert!(
        answers
            .last()
            .unwrap()
            .1
            .evidence
            .reason
            .contains("not heading for 100")
    );
}

#[test]
fn already_past_the_limit_is_breach_now() {
    let mut d = Forecast::new(ForecastConfig {
        hold_ms: 0,
        ..ForecastConfig::default()
    });
    run(&mut d, 0, HOUR, |_| 101.0);
    assert_eq!(d.state(), Firing);
    assert_eq!(d.prediction().unwrap().breach_in_ms, Some(0));
    assert_eq!(d.score().score, 1.0);
}

#[test]
fn score_is_half_at_the_horizon() {
    let mut d = disk();
    run(&mut d, 0, HOUR + 1, |t| fill(t, 0.0));
    let s = d.score();
    assert_eq!(s.score, 0.5);
    assert!((s.expected - 60.0).abs() < 1e-9, "{s:?}");
    assert!(!s.warming_up);
}

#[test]
fn junk_and_old_samples_are_ignored() {
    let mut d = disk();
    run(&mut d, 0, HOUR, |t| fill(t, 0.0));
    let before = d.clone();
    for (t, v) in [(HOUR, f64::NAN), (HOUR, f64::INFINITY), (0, 10.0)] {
        let e = d.observe(t, v);
        assert!(!e.changed);
        assert!(e.evidence.reason.starts_with("ignored"));
    }
    assert_eq!(d, before);
}

#[test]
fn nothing_is_predicted_before_min_points_slots() {
    let mut d = disk();
    let answers = run(&mut d, 0, 7 * 225_000, |t| fill(t, 0.0));
    assert!(answers.iter().all(|(_, e)| e.state == Ok));
    assert_eq!(d.prediction(), None);
    assert!(d.score().warming_up);
    assert!(
        answers[0]
            .1
            .evidence
            .reason
            .starts_with("not enough history")
    );
}

/// The straightforward definition the incremental order must match: every
/// pairwise slope computed now and sorted.
fn reference(d: &Forecast, now: Millis) -> Option<Prediction> {
    let n = d.slots.len();
    if n < d.cfg.min_points {
        return None;
    }
    let means: Vec<Mean> = d.slots.iter().map(|s| s.mean(d.width)).collect();
    let mut slopes = Vec::new();
    for (i, a) in means.iter().enumerate() {
        for b in &means[i + 1..] {
            slopes.extend(pair_slope(a, b));
        }
    }
    slopes.sort_by(f64::total_cmp);
    let sen = sen_slopes(n, slopes.len(), |r| slopes[r], d.cfg.confidence_z)?;
    Some(d.prediction_from(now, &means, sen))
}

/// A prediction bit for bit (NaN equals NaN).
fn bits(p: Option<Prediction>) -> Option<(Millis, [u64; 3], [Option<Millis>; 3])> {
    p.map(|p| {
        (
            p.at,
            [
                p.level.to_bits(),
                p.slope_per_hour.to_bits(),
                p.sigma.to_bits(),
            ],
            [p.breach_in_ms, p.earliest_ms, p.latest_ms],
        )
    })
}

/// Observations: steps in time (some within a slot, some across several,
/// some long gaps, some back in time), values on a noisy trend with ties,
/// outliers, huge and non-finite values (not so huge that sums overflow:
/// an infinite sum or level would not survive JSON).
fn observations() -> impl Strategy<Value = Vec<(Millis, f64)>> {
    let step = prop_oneof![
        4 => 0..60_000i64,
        3 => 60_000..600_000i64,
        1 => 600_000..4 * HOUR,
        1 => -60_000..0i64,
    ];
    let value = prop_oneof![
        6 => -2.0..2.0f64,
        2 => (0i32..3).prop_map(f64::from),
        1 => -1e6..1e6f64,
        1 => prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(1e200), Just(-1e200)],
    ];
    prop::collection::vec((step, value), 0..300).prop_map(|steps| {
        let mut t = 0;
        steps
            .into_iter()
            .map(|(dt, v)| {
                t += dt;
                (t, 50.0 + t as f64 / 100_000.0 + v)
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn predictions_are_those_of_sorting_every_pairwise_slope(
        obs in observations(),
        points in 2usize..40,
        min_points in 2usize..12,
        cut in 0usize..300,
    ) {
        let cfg = ForecastConfig {
            points,
            min_points,
            window_ms: points as Millis * 225_000,
            ..ForecastConfig::default()
        };
        let mut d = Forecast::new(cfg);
        for (k, &(t, v)) in obs.iter().enumerate() {
            if k == cut {
                // A restored detector rebuilds its order of slopes.
                d = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
            }
            d.observe(t, v);
            prop_assert_eq!(bits(d.prediction()), bits(reference(&d, d.last.unwrap_or((t, v)).0)));
        }
    }
}

proptest! {
    #[test]
    fn observe_change_answers_exactly_the_changes_observe_answers(obs in observations()) {
        let (mut every, mut changes_only) = (disk(), disk());
        for &(t, v) in &obs {
            let e = every.observe(t, v);
            let c = changes_only.observe_change(t, v);
            prop_assert_eq!(c.is_some(), e.changed);
            if let Some(c) = c {
                prop_assert_eq!(c, e);
            }
            prop_assert_eq!(every.state(), changes_only.state());
            prop_assert_eq!(
                serde_json::to_string(&every).unwrap(),
                serde_json::to_string(&changes_only).unwrap()
            );
        }
    }
}
