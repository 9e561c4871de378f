//! Property tests of the anomaly models: scores in `[0, 1]` and causality
//! (the first k answers do not depend on what comes after).

use medic_detectors::anomaly::{
    Cluster, ClusterConfig, Contextual, ContextualConfig, Direction, Ensemble, EnsembleConfig,
    Ewma, EwmaConfig, Model, Multivariate, MultivariateConfig, PageHinkley, PageHinkleyConfig,
    RollingMad, RollingMadConfig, Score, Seasonal, SeasonalConfig,
};
use proptest::prelude::*;

fn make(kind: u8, direction: Direction) -> Box<dyn Model> {
    match kind % 7 {
        0 => Box::new(RollingMad::new(RollingMadConfig {
            window: 16,
            min_points: 4,
            direction,
            ..RollingMadConfig::default()
        })),
        1 => Box::new(Ewma::new(EwmaConfig {
            warm_up: 4,
            direction,
            ..EwmaConfig::default()
        })),
        2 => Box::new(PageHinkley::new(PageHinkleyConfig {
            warm_up: 4,
            direction,
            ..PageHinkleyConfig::default()
        })),
        3 => Box::new(Seasonal::new(SeasonalConfig {
            buckets: 4,
            per_bucket: 4,
            min_per_bucket: 2,
            history: 32,
            redetect_slots: 2,
            fallback: RollingMadConfig {
                window: 16,
                min_points: 4,
                ..RollingMadConfig::default()
            },
            direction,
            ..SeasonalConfig::default()
        })),
        5 => Box::new(Cluster::new(ClusterConfig {
            window: 4,
            history: 32,
            clusters: 3,
            min_train: 8,
            refit_every: 8,
            adapt_after: 10,
            direction,
            ..ClusterConfig::default()
        })),
        6 => Box::new(Contextual::new(ContextualConfig {
            warm_up: 8,
            max_contexts: 32,
            rest: 3,
            direction,
            ..ContextualConfig::default()
        })),
        _ => Box::new(Ensemble::new(EnsembleConfig {
            mad: Some(RollingMadConfig {
                window: 16,
                min_points: 4,
                ..RollingMadConfig::default()
            }),
            warm_up: 4,
            suppress: 5,
            min_abs_deviation: 0.5,
            direction,
            ..EnsembleConfig::default()
        })),
    }
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => -100.0..100.0f64,
        2 => (0i32..5).prop_map(f64::from),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => prop::num::f64::ANY,
    ]
}

fn direction() -> impl Strategy<Value = Direction> {
    prop_oneof![
        Just(Direction::Up),
        Just(Direction::Down),
        Just(Direction::Both)
    ]
}

fn run(m: &mut dyn Model, values: &[f64]) -> Vec<Score> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| m.observe(i as i64 * 60_000, v))
        .collect()
}

/// Bitwise equality, so NaN fields compare equal to themselves.
fn same(a: &Score, b: &Score) -> bool {
    a.score.to_bits() == b.score.to_bits()
        && a.expected.to_bits() == b.expected.to_bits()
        && a.lower.to_bits() == b.lower.to_bits()
        && a.upper.to_bits() == b.upper.to_bits()
        && a.observed.to_bits() == b.observed.to_bits()
        && a.warming_up == b.warming_up
}

proptest! {
    #[test]
    fn scores_are_in_unit_interval(
        kind in 0u8..7,
        dir in direction(),
        values in prop::collection::vec(value(), 0..200),
    ) {
        let mut m = make(kind, dir);
        for (i, s) in run(m.as_mut(), &values).iter().enumerate() {
            prop_assert!((0.0..=1.0).contains(&s.score), "row {}: {:?}", i, s);
        }
    }

    #[test]
    fn prefix_gives_the_same_scores(
        kind in 0u8..7,
        dir in direction(),
        values in prop::collection::vec(value(), 1..150),
        cut in 0usize..150,
    ) {
        let k = cut % (values.len() + 1);
        let all = run(make(kind, dir).as_mut(), &values);
        let prefix = run(make(kind, dir).as_mut(), &values[..k]);
        for i in 0..k {
            prop_assert!(same(&prefix[i], &all[i]), "row {}: {:?} vs {:?}", i, prefix[i], all[i]);
        }
    }
}

/// A small multivariate model that fits early and often.
fn multivariate() -> Multivariate {
    Multivariate::new(MultivariateConfig {
        reservoir: 24,
        min_train: 6,
        refit_every: 5,
        max_components: 2,
        adapt_after: 8,
        ..MultivariateConfig::default()
    })
}

fn run_rows(m: &mut Multivariate, rows: &[Vec<f64>]) -> Vec<String> {
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            let s = m.observe(i as i64 * 60_000, r);
            assert!((0.0..=1.0).contains(&s.score), "row {i}: {s:?}");
            assert!(
                s.contributions.iter().all(|c| (0.0..=1.0).contains(c)),
                "row {i}: {s:?}"
            );
            // Debug prints floats exactly and NaN equal to itself.
            format!("{s:?}")
        })
        .collect()
}

proptest! {
    #[test]
    fn multivariate_scores_are_in_unit_interval_and_causal(
        rows in prop::collection::vec(prop::collection::vec(value(), 3), 1..80),
        cut in 0usize..80,
    ) {
        let k = cut % (rows.len() + 1);
        let all = run_rows(&mut multivariate(), &rows);
        let prefix = run_rows(&mut multivariate(), &rows[..k]);
        prop_assert_eq!(&prefix[..], &all[..k]);
    }
}
