use proptest::prelude::*;

use super::*;
use crate::anomaly::tests::{
    assert_deterministic, assert_ignores_non_finite, assert_memory_bounded,
    check_causal_and_restorable, feed, saw, values,
};
use crate::anomaly::{Ensemble, EnsembleConfig};

fn small(warm_up: usize) -> ContextualConfig {
    ContextualConfig {
        warm_up,
        ..ContextualConfig::default()
    }
}

#[test]
fn a_learnt_sequence_scores_zero() {
    let mut m = Contextual::new(ContextualConfig::default());
    let scores = feed(&mut m, &saw(600));
    assert!(scores[..150].iter().all(|s| s.warming_up && s.score == 0.0));
    assert!(!scores[150].warming_up);
    // After a few periods every step is foreseen.
    assert!(
        scores[300..].iter().all(|s| s.score == 0.0),
        "{:?}",
        scores[300..].iter().map(|s| s.score).fold(0.0, f64::max)
    );
}

#[test]
fn the_expected_band_holds_the_next_value() {
    let mut m = Contextual::new(ContextualConfig::default());
    let series = saw(600);
    feed(&mut m, &series[..599]);
    let s = m.observe(599_000, series[599]);
    assert!(s.lower <= series[599] && series[599] <= s.upper, "{s:?}");
    // One bin of the eight wide: the model knows the value, not just the range.
    assert!(s.upper - s.lower < 2.0, "{s:?}");
}

#[test]
fn a_break_in_the_sequence_is_reported_once() {
    let mut m = Contextual::new(ContextualConfig::default());
    feed(&mut m, &saw(600));
    // 7 where 0 should follow 9: a known value in an unknown place.
    let mut rest: Vec<f64> = saw(700)[600..].to_vec();
    rest[5] = 8.0;
    rest[6] = 1.0;
    let scores: Vec<f64> = rest
        .iter()
        .enumerate()
        .map(|(i, &v)| m.observe((600 + i) as Millis * 1000, v).score)
        .collect();
    assert!(scores[..5].iter().all(|&s| s == 0.0), "{scores:?}");
    let first = scores.iter().position(|&s| s >= 0.75);
    assert!(first.is_some_and(|i| (5..=7).contains(&i)), "{scores:?}");
    // The rest period: nothing more for `rest` points.
    let i = first.unwrap_or(0);
    assert!(scores[i + 1..=i + 30].iter().all(|&s| s == 0.0));
}

#[test]
fn a_value_far_outside_the_range_scores_high_and_memory_survives() {
    let mut m = Contextual::new(ContextualConfig::default());
    feed(&mut m, &saw(600));
    let before = m.context_count();
    let s = m.observe(600_000, 35.0);
    assert!(s.score >= 0.75, "{s:?}");
    // The range grew (doubled twice, from [0, 10) to about [0, 40)); the
    // memory was re-expressed, not dropped.
    let (lo, width) = (m.memory.lo.unwrap(), m.memory.width);
    assert!(
        lo <= 0.0 && lo + width >= 35.0 && width < 80.0,
        "{lo} {width}"
    );
    assert!(
        m.context_count() > before / 4,
        "{before} → {}",
        m.context_count()
    );
    // The sawtooth, now in the three lowest bins (runs of equal bins the
    // contexts only partly tell apart), raises no alarm.
    let scores = feed(&mut m, &saw(300));
    assert!(scores[50..].iter().all(|s| s.score < 0.5));
}

#[test]
fn the_range_grows_downwards_too() {
    let mut m = Contextual::new(ContextualConfig::default());
    feed(&mut m, &saw(400));
    assert!(m.observe(400_000, -25.0).score >= 0.75);
    let (lo, width) = (m.memory.lo.unwrap(), m.memory.width);
    assert!(lo <= -25.0 && lo + width >= 9.0, "{lo} {width}");
}

#[test]
fn a_constant_series_scores_zero_and_a_change_from_it_high() {
    let mut m = Contextual::new(small(20));
    let scores = feed(&mut m, &[42.0; 300]);
    assert!(scores.iter().all(|s| s.score == 0.0));
    assert_eq!(m.memory.width, 0.0);
    assert!(m.observe(300_000, 43.0).score >= 0.75);
    assert_eq!(m.memory.width, 1.0);
}

#[test]
fn a_fixed_range_is_kept_and_values_outside_fall_in_the_edge_bins() {
    let mut m = Contextual::new(ContextualConfig {
        range: Some([0.0, 100.0]),
        ..ContextualConfig::default()
    });
    let scores = feed(&mut m, &saw(300));
    assert!(scores[..150].iter().all(|s| s.warming_up));
    assert!(m.pending.is_empty());
    assert_eq!(m.memory.sensory(-5.0), m.memory.sensory(0.0));
    assert_eq!(m.memory.sensory(150.0), m.memory.sensory(99.0));
    let s = m.observe(300_000, 95.0);
    assert!(
        (0.0..=100.0).contains(&s.lower) && s.upper <= 100.0,
        "{s:?}"
    );
    assert!(m.memory.lo.is_none());
}

#[test]
fn memory_stays_within_its_bound() {
    let mut m = Contextual::new(ContextualConfig {
        max_contexts: 64,
        warm_up: 10,
        ..ContextualConfig::default()
    });
    assert_memory_bounded(&mut m, Contextual::context_count, 64);
    // Every part in memory is used by a context.
    let mem = &m.memory;
    assert!(mem.lefts.iter().all(|l| !l.contexts.is_empty()));
    assert!(mem.rights.len() <= mem.contexts.len());
}

#[test]
fn direction_up_ignores_drops() {
    let up = Contextual::new(ContextualConfig {
        direction: Direction::Up,
        ..ContextualConfig::default()
    });
    let mut m = up.clone();
    feed(&mut m, &saw(600));
    assert_eq!(m.clone().observe(600_000, -30.0).score, 0.0);
    assert!(m.observe(600_000, 40.0).score >= 0.75);
}

#[test]
fn non_finite_values_are_ignored() {
    assert_ignores_non_finite(|| Contextual::new(ContextualConfig::default()));
}

#[test]
fn regrids_match_quantising_in_the_new_range() {
    // An exact (dyadic) range, so that the arithmetic is exact.
    let mut m = Memory::new(ContextualConfig::default());
    m.lo = Some(-8.0);
    m.width = 16.0;
    let values: Vec<f64> = (0..64).map(|i| -8.0 + f64::from(i) * 0.25).collect();
    let old: Vec<Sensory> = values.iter().map(|&v| m.sensory(v)).collect();
    // Upwards: [-8, 24).
    m.width = 32.0;
    for (&v, &o) in values.iter().zip(&old) {
        assert_eq!(m.regrid_sensory(o, &[Regrid::Up]), m.sensory(v), "{v}");
    }
    // Downwards from the original: [-24, 8).
    m.lo = Some(-24.0);
    for (&v, &o) in values.iter().zip(&old) {
        assert_eq!(m.regrid_sensory(o, &[Regrid::Down]), m.sensory(v), "{v}");
    }
}

#[test]
fn is_deterministic() {
    assert_deterministic(|| Contextual::new(ContextualConfig::default()));
}

fn cfg_small() -> ContextualConfig {
    ContextualConfig {
        warm_up: 20,
        max_contexts: 96,
        rest: 5,
        outlier_z: 5.0,
        record_margin: Some(0.1),
        ..ContextualConfig::default()
    }
}

proptest! {
    #[test]
    fn scores_stay_in_unit_interval(vs in values()) {
        let mut m = Contextual::new(cfg_small());
        for s in feed(&mut m, &vs) {
            prop_assert!((0.0..=1.0).contains(&s.score), "{:?}", s);
        }
        prop_assert!(m.context_count() <= 96);
    }

    #[test]
    fn is_causal_and_restores_bit_for_bit(vs in values(), cut in 0usize..500) {
        check_causal_and_restorable(|| Contextual::new(cfg_small()), &vs, cut)?;
    }
}

#[test]
fn the_unrested_score_shows_an_episode_the_rest_period_hides() {
    let mut m = Contextual::new(ContextualConfig::default());
    feed(&mut m, &saw(600));
    // A lasting jump to a level never seen: reported once, and still
    // unusual while its contexts are new.
    let s = m.observe(600_000, 40.0);
    assert!(s.score >= 0.75 && m.unrested() == s.score, "{s:?}");
    let s = m.observe(601_000, 41.0);
    assert_eq!(s.score, 0.0);
    assert!(m.unrested() > 0.5, "{}", m.unrested());
}

#[test]
fn an_ensemble_with_the_contextual_member_stays_unsuppressed_during_an_episode() {
    let mut e = Ensemble::new(EnsembleConfig {
        mad: None,
        ewma: None,
        page_hinkley: None,
        contextual: Some(ContextualConfig::default()),
        suppress: 10,
        ..EnsembleConfig::default()
    });
    feed(&mut e, &saw(600));
    let s = e.observe(600_000, 40.0);
    assert!(s.score >= 0.75, "{s:?}");
    let s = e.observe(601_000, 41.0);
    assert_eq!(s.score, 0.0);
    assert!(e.unsuppressed(&s) > 0.5, "{}", e.unsuppressed(&s));
}

#[test]
fn extreme_values_can_be_turned_off() {
    let cfg = ContextualConfig {
        outlier_z: 0.0,
        record_margin: None,
        ..ContextualConfig::default()
    };
    let mut m = Contextual::new(cfg);
    feed(&mut m, &saw(600));
    assert!(m.observe(600_000, 40.0).score >= 0.75);
    // Hidden by the rest period, however far out.
    assert_eq!(m.observe(601_000, 1e6).score, 0.0);
}

/// A model with `outlier_z` 60 that has learnt 600 values of the sawtooth.
fn sawtooth_with_outliers() -> Contextual {
    let mut m = Contextual::new(ContextualConfig {
        record_margin: None,
        ..ContextualConfig::default()
    });
    feed(&mut m, &saw(600));
    m
}

#[test]
fn an_extreme_deviation_scores_one_even_during_a_rest_period() {
    let mut m = sawtooth_with_outliers();
    // An alarm of the memory's (about 12 σ: not extreme), then, during its
    // rest period, a value some 200 σ out.
    assert!(m.observe(600_000, 40.0).score >= 0.75);
    assert_eq!(m.observe(601_000, 20.0).score, 0.0);
    let s = m.observe(602_000, 1000.0);
    assert_eq!(s.score, 1.0, "{s:?}");
    assert_eq!(m.unrested(), 1.0);
}

#[test]
fn a_lasting_shift_is_extreme_once() {
    let mut m = sawtooth_with_outliers();
    let scores: Vec<f64> = (0..30)
        .map(|i| m.observe((600 + i) * 1000, 1000.0).score)
        .collect();
    assert_eq!(scores[0], 1.0);
    // The jump widened the baseline's spread: the next values are not
    // extreme, and the rest period hides the memory's surprise.
    assert!(scores[1..].iter().all(|&s| s == 0.0), "{scores:?}");
}

#[test]
fn a_new_extreme_beyond_the_margin_scores_one_even_during_a_rest_period() {
    let cfg = ContextualConfig {
        record_margin: Some(0.1),
        ..ContextualConfig::default()
    };
    let mut m = Contextual::new(cfg);
    feed(&mut m, &saw(600));
    // 0 to 9 seen: 40 is beyond 9 by far more than 0.9.
    assert_eq!(m.observe(600_000, 40.0).score, 1.0);
    // 0 to 40 seen: 42 is a new maximum within the margin (4), hidden by
    // the rest period; 50 is beyond 42 by more than 4.2.
    assert_eq!(m.observe(601_000, 42.0).score, 0.0);
    assert_eq!(m.observe(602_000, 50.0).score, 1.0);

    // Only on the side `direction` counts.
    let mut up = Contextual::new(ContextualConfig {
        direction: Direction::Up,
        ..cfg
    });
    feed(&mut up, &saw(600));
    assert_eq!(up.observe(600_000, -40.0).score, 0.0);
    assert_eq!(up.observe(601_000, 100.0).score, 1.0);
}

#[test]
fn extreme_values_wait_for_the_warm_up() {
    let mut m = Contextual::new(ContextualConfig {
        outlier_z: 5.0,
        record_margin: Some(0.0),
        ..ContextualConfig::default()
    });
    let mut series = saw(150);
    series[100] = 1e6;
    assert!(feed(&mut m, &series).iter().all(|s| s.score == 0.0));
}
