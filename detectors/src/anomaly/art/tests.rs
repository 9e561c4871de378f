use proptest::prelude::*;

use super::*;
use crate::anomaly::tests::{
    assert_deterministic, assert_ignores_non_finite, assert_memory_bounded,
    check_causal_and_restorable, feed, saw, values,
};

fn scores(m: &mut Art, values: &[f64], from: usize) -> Vec<f64> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| m.observe((from + i) as Millis * 1000, v).score)
        .collect()
}

#[test]
fn a_learnt_pattern_scores_zero() {
    let mut m = Art::new(ArtConfig::default());
    let s = feed(&mut m, &saw(1000));
    assert!(s[..150].iter().all(|s| s.warming_up && s.score == 0.0));
    assert!(!s[150].warming_up);
    assert!(s.iter().all(|s| s.score == 0.0));
    // A handful of categories holds the whole pattern.
    assert!(m.category_count() <= 40, "{}", m.category_count());
}

#[test]
fn a_spike_is_reported_once_then_rests() {
    let mut m = Art::new(ArtConfig::default());
    feed(&mut m, &saw(600));
    let mut rest = saw(700)[600..].to_vec();
    rest[5] = 40.0;
    let s = scores(&mut m, &rest, 600);
    assert!(s[..5].iter().all(|&s| s == 0.0), "{s:?}");
    assert!(s[5] > 0.5, "{s:?}");
    // The rest period hides the window sliding past the spike.
    assert!(s[6..=5 + 15].iter().all(|&s| s == 0.0), "{s:?}");
    // The range grew to hold it, and the pattern is still known.
    assert!(m.lo.unwrap() <= 0.0 && m.lo.unwrap() + m.width >= 40.0);
    assert!(s[30..].iter().all(|&s| s == 0.0), "{s:?}");
}

#[test]
fn a_change_of_shape_inside_the_range_is_reported() {
    // The defaults weigh the level most; with less weight on it a new
    // shape of known values is a new cluster.
    let mut m = Art::new(ArtConfig {
        level_weight: 1.0,
        ..ArtConfig::default()
    });
    feed(&mut m, &saw(600));
    // Known values, but alternating: no new level, a new shape.
    let zigzag: Vec<f64> = (0..40)
        .map(|i| if i % 2 == 0 { 0.0 } else { 9.0 })
        .collect();
    let s = scores(&mut m, &zigzag, 600);
    assert!(s.iter().any(|&s| s > 0.0), "{s:?}");
}

#[test]
fn a_constant_series_scores_zero_and_a_change_from_it_high() {
    let mut m = Art::new(ArtConfig {
        warm_up: 20,
        ..ArtConfig::default()
    });
    let s = feed(&mut m, &[42.0; 300]);
    assert!(s.iter().all(|s| s.score == 0.0));
    assert_eq!(m.width, 0.0);
    assert!(m.observe(300_000, 43.0).score > 0.5);
    assert_eq!((m.lo, m.width), (Some(42.0), 1.0));
}

#[test]
fn growing_the_range_re_expresses_the_categories() {
    // Dyadic numbers, so that the arithmetic is exact.
    let mut m = Art::new(ArtConfig {
        growth: RangeGrowth::Double,
        haar_gain: 1.0,
        ..ArtConfig::default()
    });
    let values: Vec<f64> = (0..40).map(|i| f64::from(i % 8) * 0.5).collect();
    feed(&mut m, &values);
    m.lo = Some(0.0);
    m.width = 4.0;
    m.slots = vec![0.0, 1.0, 2.5, 4.0];
    let before = m.features();
    m.categories = vec![Category {
        low: before.clone(),
        high: before.clone(),
        cluster: 1,
        last_used: 0,
    }];
    m.grow(6.0);
    assert_eq!((m.lo, m.width), (Some(0.0), 8.0));
    let after = m.features();
    assert_eq!(m.categories[0].low, after);
    assert_eq!(m.categories[0].high, after);
    m.grow(-2.0);
    assert_eq!((m.lo, m.width), (Some(-8.0), 16.0));
    assert_eq!(m.categories[0].low, m.features());
}

#[test]
fn stretching_keeps_a_margin_beyond_the_new_value() {
    let mut m = Art::new(ArtConfig {
        growth: RangeGrowth::Stretch(0.25),
        ..ArtConfig::default()
    });
    m.lo = Some(0.0);
    m.width = 4.0;
    m.grow(8.0);
    assert_eq!((m.lo, m.width), (Some(0.0), 10.0));
    m.grow(-2.0);
    assert_eq!((m.lo, m.width), (Some(-5.0), 15.0));
    let mut clamp = Art::new(ArtConfig {
        growth: RangeGrowth::Clamp,
        ..ArtConfig::default()
    });
    clamp.lo = Some(0.0);
    clamp.width = 4.0;
    clamp.grow(100.0);
    assert_eq!((clamp.lo, clamp.width), (Some(0.0), 4.0));
}

#[test]
fn features_are_in_the_unit_interval() {
    let mut m = Art::new(ArtConfig::default());
    m.lo = Some(0.0);
    m.width = 10.0;
    m.slots = vec![-5.0, 3.0, 1e300, 7.0];
    let f = m.features();
    assert_eq!(f.len(), 2 * 4 + 1);
    assert!(f.iter().all(|x| (0.0..=1.0).contains(x)), "{f:?}");
    // The level is the last value in the range.
    assert_eq!(f[0], 0.7);
}

#[test]
fn memory_stays_within_its_bound() {
    let mut m = Art::new(ArtConfig {
        max_categories: 32,
        warm_up: 10,
        ..ArtConfig::default()
    });
    assert_memory_bounded(&mut m, Art::category_count, 32);
}

#[test]
fn non_finite_values_are_ignored() {
    assert_ignores_non_finite(|| Art::new(ArtConfig::default()));
}

#[test]
fn the_band_is_the_learnt_range() {
    let mut m = Art::new(ArtConfig::default());
    let s = m.observe(0, 3.0);
    assert!(s.expected.is_nan() && s.warming_up);
    feed(&mut m, &saw(300));
    let s = m.observe(300_000, 5.0);
    assert_eq!((s.lower, s.upper, s.expected), (0.0, 9.0, 4.5));
}

#[test]
fn is_deterministic() {
    assert_deterministic(|| Art::new(ArtConfig::default()));
}

fn cfg_small() -> ArtConfig {
    ArtConfig {
        warm_up: 20,
        max_categories: 24,
        rest: 5,
        ..ArtConfig::default()
    }
}

proptest! {
    #[test]
    fn scores_stay_in_unit_interval(vs in values()) {
        for growth in [RangeGrowth::Stretch(0.03), RangeGrowth::Double, RangeGrowth::Clamp] {
            let mut m = Art::new(ArtConfig { growth, ..cfg_small() });
            for s in feed(&mut m, &vs) {
                prop_assert!((0.0..=1.0).contains(&s.score), "{:?}", s);
            }
            prop_assert!(m.category_count() <= 24);
        }
    }

    #[test]
    fn is_causal_and_restores_bit_for_bit(vs in values(), cut in 0usize..500) {
        check_causal_and_restorable(|| Art::new(cfg_small()), &vs, cut)?;
    }
}
