use proptest::prelude::*;

use super::*;
use crate::anomaly::RollingMad;
use crate::testutil::noise;

const MIN: Millis = 60_000;
const HOUR: Millis = 60 * MIN;

/// A daily cycle: 18 at noon, 2 at midnight, about 4.3 at 3 a.m.
fn daily(t: Millis) -> f64 {
    let hours = (t % DAY_MS) as f64 / HOUR as f64;
    10.0 + 8.0 * (2.0 * std::f64::consts::PI * (hours - 12.0) / 24.0).cos()
}

/// Feeds `value(t)` plus noise of amplitude `noise_amp` every `step` from
/// `from` (included) to `to` (excluded).
fn run(
    m: &mut Seasonal,
    from: Millis,
    to: Millis,
    step: Millis,
    noise_amp: f64,
    value: impl Fn(Millis) -> f64,
) -> Vec<Score> {
    (0..)
        .map(|k| from + k * step)
        .take_while(|&t| t < to)
        .map(|t| m.observe(t, value(t) + noise_amp * noise(t as u64)))
        .collect()
}

#[test]
fn a_value_normal_at_noon_is_alarming_at_3_am() {
    let mut m = Seasonal::new(SeasonalConfig::default());
    let scores = run(&mut m, 0, 8 * DAY_MS, 5 * MIN, 0.5, daily);
    assert_eq!(m.period(), Some(DAY_MS));
    // The last two days are judged seasonally and raise no alarm.
    assert!(
        scores[6 * 288..]
            .iter()
            .all(|s| s.score < 0.5 && !s.warming_up),
        "{:?}",
        scores[6 * 288..]
            .iter()
            .map(|s| s.score)
            .fold(0.0, f64::max)
    );

    // The model as it would be at `at`, after the normal series up to it,
    // judging `value` there.
    let probe = |at: Millis, value: f64| {
        let mut m = m.clone();
        run(&mut m, 8 * DAY_MS, at, 5 * MIN, 0.5, daily);
        m.observe(at, value)
    };
    let at_3 = probe(8 * DAY_MS + 3 * HOUR, 18.0);
    assert!(at_3.score > 0.9, "{at_3:?}");
    assert!(at_3.upper < 18.0, "{at_3:?}");
    assert!((at_3.expected - daily(3 * HOUR)).abs() < 1.0, "{at_3:?}");
    let at_12 = probe(8 * DAY_MS + 12 * HOUR, 18.0);
    assert!(at_12.score < 0.1, "{at_12:?}");
    assert!(at_12.lower <= 18.0 && 18.0 <= at_12.upper, "{at_12:?}");

    // A baseline without seasons cannot tell the two apart: over a day's
    // window, 18 is an ordinary value.
    let mut flat = RollingMad::new(RollingMadConfig {
        window: 288,
        ..RollingMadConfig::default()
    });
    for k in 0..(8 * 288 + 36) {
        let t = k * 5 * MIN;
        flat.observe(t, daily(t) + 0.5 * noise(t as u64));
    }
    assert!(flat.observe(8 * DAY_MS + 3 * HOUR, 18.0).score < 0.5);
}

#[test]
fn finds_a_daily_period_with_irregular_sampling() {
    let mut m = Seasonal::new(SeasonalConfig::default());
    let mut t = 0;
    let mut i = 0u64;
    while t < 6 * DAY_MS {
        m.observe(t, daily(t) + noise(i));
        // Gaps between 1 and 9 minutes.
        t += MIN + ((noise(i + 1_000_000) + 1.0) * 4.0 * MIN as f64) as Millis;
        i += 1;
    }
    assert_eq!(m.period(), Some(DAY_MS));
}

#[test]
fn finds_a_weekly_period() {
    // Busy weekdays (a daily bump), quiet weekends.
    let weekly = |t: Millis| {
        let day = (t / DAY_MS) % 7;
        if day < 5 { daily(t) } else { 2.0 }
    };
    let mut m = Seasonal::new(SeasonalConfig::default());
    run(&mut m, 0, 4 * WEEK_MS, HOUR, 0.5, weekly);
    assert_eq!(m.period(), Some(WEEK_MS));
    // Saturday noon at the weekend level is normal; a weekday level is not.
    let mut sat = m.clone();
    let saturday_noon = 4 * WEEK_MS + 5 * DAY_MS + 12 * HOUR;
    run(&mut sat, 4 * WEEK_MS, saturday_noon, HOUR, 0.5, weekly);
    assert!(sat.clone().observe(saturday_noon, 2.2).score < 0.1);
    assert!(sat.observe(saturday_noon, 18.0).score > 0.9);
}

#[test]
fn finds_a_period_that_is_neither_a_day_nor_a_week() {
    let period = 90 * MIN;
    let wave = |t: Millis| {
        let phase = (t % period) as f64 / period as f64;
        (2.0 * std::f64::consts::PI * phase).sin() * 5.0
    };
    let mut m = Seasonal::new(SeasonalConfig::default());
    run(&mut m, 0, 2 * DAY_MS, MIN, 0.3, wave);
    let found = m.period().expect("a period");
    // Within one history slot.
    assert!((found - period).abs() <= m.history.width, "{found}");
}

#[test]
fn no_period_in_noise_or_a_trend() {
    let mut m = Seasonal::new(SeasonalConfig::default());
    run(&mut m, 0, 10 * DAY_MS, 5 * MIN, 1.0, |_| 50.0);
    assert_eq!(m.period(), None);
    let mut m = Seasonal::new(SeasonalConfig::default());
    run(&mut m, 0, 10 * DAY_MS, 5 * MIN, 1.0, |t| {
        t as f64 / HOUR as f64
    });
    assert_eq!(m.period(), None);
}

#[test]
fn memory_is_bounded() {
    let cfg = SeasonalConfig::default();
    let mut m = Seasonal::new(cfg);
    run(&mut m, 0, 8 * WEEK_MS, MIN, 0.5, daily);
    assert!(m.history.len() <= cfg.history);
    let buckets = m.buckets.as_ref().expect("a period");
    assert_eq!(buckets.sizes(), (cfg.buckets * cfg.per_bucket, cfg.buckets));
    // The history stopped widening once it spans max_span_ms.
    assert!((cfg.history as i64 * m.history.width) < 2 * cfg.max_span_ms);
}

fn small() -> SeasonalConfig {
    SeasonalConfig {
        buckets: 8,
        per_bucket: 4,
        min_per_bucket: 2,
        history: 32,
        redetect_slots: 4,
        fallback: RollingMadConfig {
            window: 8,
            min_points: 3,
            ..RollingMadConfig::default()
        },
        ..SeasonalConfig::default()
    }
}

/// A periodic signal with random interruptions, at random increasing times.
fn points() -> impl Strategy<Value = Vec<(Millis, f64)>> {
    let value = prop_oneof![
        6 => Just(None),
        2 => (-1e3..1e3f64).prop_map(Some),
        1 => Just(Some(f64::NAN)),
        1 => prop::num::f64::ANY.prop_map(Some),
    ];
    prop::collection::vec((1..40 * MIN, value), 0..400).prop_map(|steps| {
        let mut t = 0;
        steps
            .into_iter()
            .map(|(dt, v)| {
                t += dt;
                (t, v.unwrap_or_else(|| daily(t * 12)))
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn scores_stay_in_unit_interval(pts in points()) {
        let mut m = Seasonal::new(small());
        for &(t, v) in &pts {
            let s = m.observe(t, v);
            prop_assert!((0.0..=1.0).contains(&s.score), "{:?}", s);
        }
        prop_assert!(m.history.len() <= 32);
    }

    #[test]
    fn appending_points_does_not_change_past_scores(pts in points(), cut in 0usize..400) {
        let k = cut % (pts.len() + 1);
        let mut all = Seasonal::new(small());
        let mut prefix = Seasonal::new(small());
        let a: Vec<Score> = pts.iter().map(|&(t, v)| all.observe(t, v)).collect();
        let b: Vec<Score> = pts[..k].iter().map(|&(t, v)| prefix.observe(t, v)).collect();
        for i in 0..k {
            prop_assert_eq!(a[i].score.to_bits(), b[i].score.to_bits());
            prop_assert_eq!(a[i].expected.to_bits(), b[i].expected.to_bits());
        }
    }
}

#[test]
fn a_series_far_from_zero_keeps_its_resolution() {
    // Noise of amplitude 0.5 around 10⁸, where an f32 step is 8: the values
    // are stored as offsets from the first one, so the fallback still sees
    // the noise, and a step of 5 stands out.
    let mut m = Seasonal::new(SeasonalConfig::default());
    let scores = run(&mut m, 0, DAY_MS, 5 * MIN, 0.5, |_| 1e8);
    assert_eq!(m.period(), None);
    assert!(scores[20..].iter().all(|s| s.score < 0.5));
    let s = m.observe(DAY_MS, 1e8 + 5.0);
    assert!(s.score > 0.9, "{s:?}");
    assert!((s.expected - 1e8).abs() < 0.2, "{s:?}");
}

#[test]
fn rounding_to_f32_alone_is_never_extreme() {
    // A constant far from the first value: its offset, 123 456 789.123, is
    // stored as the f32 123 456 792. The constant itself must not look
    // 3 away from the expectation with a σ of 1e-9 of the level.
    let mut m = Seasonal::new(SeasonalConfig::default());
    m.observe(0, 0.0);
    let scores = run(&mut m, MIN, 3 * DAY_MS, MIN, 0.0, |_| 123_456_789.123);
    assert!(
        scores[100..].iter().all(|s| s.score < 0.01),
        "{:?}",
        scores[100]
    );
    // A real change of the constant is still extreme.
    assert!(m.observe(3 * DAY_MS, 123_460_000.0).score > 0.9);
}

proptest! {
    #[test]
    fn stored_values_round_trip_through_json(bits in prop::collection::vec(any::<u32>(), 0..64)) {
        let values = F32s(bits.into_iter().map(f32::from_bits).filter(|v| v.is_finite()).collect());
        let json = serde_json::to_string(&values).unwrap();
        let back: F32s = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(values, back);
    }

    #[test]
    fn the_window_holds_the_last_values_sorted(
        values in prop::collection::vec(prop_oneof![-1e3..1e3f32, (0u8..4).prop_map(f32::from)], 0..300),
        window in 1usize..40,
    ) {
        let mut w = compact::Window::default();
        for (k, &v) in values.iter().enumerate() {
            w.push(v, window);
            let mut want: Vec<f32> = values[(k + 1).saturating_sub(window)..=k].to_vec();
            want.sort_by(f32::total_cmp);
            let (median, sigma) = crate::anomaly::mad::sigma_of_sorted(&want);
            prop_assert_eq!(w.len(), want.len());
            let (m, s) = w.location_scale().unwrap();
            prop_assert_eq!(m.to_bits(), median.to_bits());
            prop_assert_eq!(s.to_bits(), sigma.to_bits());
        }
    }
}
