use super::*;
use crate::testutil::noise;

/// Three metrics: a and b move together (b ≈ 2a), c is independent noise.
fn row(i: u64) -> [f64; 3] {
    let a = 10.0 + 5.0 * (i as f64 * 0.05).sin() + 0.2 * noise(3 * i);
    [
        a,
        2.0 * a + 0.2 * noise(3 * i + 1),
        100.0 + noise(3 * i + 2),
    ]
}

fn trained(n: u64) -> Multivariate {
    let mut m = Multivariate::new(MultivariateConfig::default());
    for i in 0..n {
        m.observe(i as Millis * 1000, &row(i));
    }
    m
}

#[test]
fn warms_up_then_fits() {
    let mut m = Multivariate::new(MultivariateConfig::default());
    let first = m.observe(0, &row(0));
    assert!(first.warming_up && first.score == 0.0);
    assert_eq!(first.contributions.len(), 3);
    for i in 1..100 {
        m.observe(i * 1000, &row(i as u64));
    }
    assert!(m.components() >= 1);
    assert!(!m.observe(100_000, &row(100)).warming_up);
}

#[test]
fn normal_rows_score_low() {
    let mut m = trained(1000);
    let high = (1000..1500)
        .filter(|&i| m.observe(i as Millis * 1000, &row(i)).score > 0.5)
        .count();
    assert!(high <= 10, "{high} high scores on normal rows");
}

/// a stays where it is and b stays in its usual range, but b no longer
/// follows a: only the pair is wrong, and the contributions say so.
#[test]
fn a_broken_correlation_is_found_though_each_metric_is_in_range() {
    let mut m = trained(1000);
    let mut r = row(1000);
    // a is near 10 ± 5; b normally ≈ 2a; put b at the other end of its range.
    r[1] = 40.0 - r[1] + 0.0;
    assert!((10.0..=30.0).contains(&r[1]), "{r:?}");
    let s = m.observe(1_000_000, &r);
    assert!(s.score > 0.9, "{s:?}");
    let top = s
        .contributions
        .iter()
        .enumerate()
        .max_by(|x, y| x.1.total_cmp(y.1))
        .unwrap()
        .0;
    assert!(top < 2, "{s:?}");
    assert!(s.contributions[2] < 0.1, "{s:?}");
    assert!((s.contributions.iter().sum::<f64>() - 1.0).abs() < 1e-9);
}

#[test]
fn a_single_metric_jump_is_attributed_to_it() {
    let mut m = trained(1000);
    let mut r = row(1000);
    r[2] += 30.0;
    let s = m.observe(1_000_000, &r);
    assert!(s.score > 0.9, "{s:?}");
    assert!(s.contributions[2] > 0.8, "{s:?}");
}

#[test]
fn is_deterministic_and_bounded() {
    let a = trained(1500);
    let b = trained(1500);
    assert_eq!(a, b);
    assert!(a.rows.len() <= a.config().reservoir);
}

#[test]
fn wrong_length_and_non_finite_rows_are_not_learnt() {
    let mut m = trained(300);
    let before = m.clone();
    let s = m.observe(300_000, &[1.0, 2.0]);
    assert_eq!(s.score, 0.0);
    assert_eq!(m, before);
    let s = m.observe(300_000, &[f64::NAN, 20.0, 100.0]);
    assert!((0.0..=1.0).contains(&s.score));
    assert_eq!(m.rows, before.rows);
}

#[test]
fn constant_metrics_do_not_break_the_fit() {
    let mut m = Multivariate::new(MultivariateConfig {
        min_scale: 0.01,
        ..MultivariateConfig::default()
    });
    for i in 0..400 {
        let r = row(i);
        m.observe(i as Millis * 1000, &[r[0], 5.0, r[1], 0.0]);
    }
    let r = row(400);
    let s = m.observe(400_000, &[r[0], 5.0, r[1], 0.0]);
    assert!(s.score < 0.5, "{s:?}");
    let s = m.observe(401_000, &[r[0], 5.0, r[1], 1.0]);
    assert!(s.score > 0.9 && s.contributions[3] > 0.5, "{s:?}");
}

/// `expected` is what each contribution is measured against: the shares
/// are the squared standardised distances of the row from it.
#[test]
fn contributions_are_the_distances_from_expected() {
    let mut m = trained(1000);
    let mut broken = row(1000);
    broken[1] = 40.0 - broken[1];
    let mut jump = row(1001);
    jump[2] += 30.0;
    for (i, r) in [row(999), broken, jump].iter().enumerate() {
        let scale = m.fitted.as_ref().unwrap().scale.clone();
        let s = m.observe(1_000_000 + i as Millis, r);
        let parts: Vec<f64> = (0..3)
            .map(|j| ((r[j] - s.expected[j]) / scale[j]).powi(2))
            .collect();
        let sum: f64 = parts.iter().sum();
        for (p, c) in parts.iter().zip(&s.contributions) {
            assert!((p / sum - c).abs() < 1e-9, "{s:?}");
        }
    }
}

#[test]
fn expected_says_what_the_row_should_have_been() {
    let mut m = trained(1000);
    assert!(m.observe(0, &row(0)).expected.iter().all(|e| e.is_finite()));
    let fresh = Multivariate::new(MultivariateConfig::default()).observe(0, &row(0));
    assert!(fresh.expected.iter().all(|e| e.is_nan()));

    // b off its pairing with a: the expectation is nearer the pairing.
    let mut r = row(1000);
    r[1] = 40.0 - r[1];
    let s = m.observe(1_000_000, &r);
    let pairing = 2.0 * r[0];
    assert!(
        (s.expected[1] - pairing).abs() < (r[1] - pairing).abs(),
        "{s:?}"
    );
    // c jumped by 30: it was expected near its usual 100.
    let mut r = row(1001);
    r[2] += 30.0;
    let s = m.observe(1_001_000, &r);
    assert!((s.expected[2] - 100.0).abs() < 5.0, "{s:?}");
}
