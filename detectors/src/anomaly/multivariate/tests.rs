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

/// Rows (cpu, latency, requests) of a service whose metrics move almost as
/// one: an end-to-end run's first 60 rows. An iterative truncated SVD once
/// returned a skewed first direction for rows like these (weights 0.33 /
/// 0.71 / 0.62 and training SPE of 0.4), so a broken correlation did not
/// stand out; the exact eigendecomposition finds the common direction.
const ALMOST_ONE: [[f64; 3]; 60] = [
    [0.598778, 0.149847, 99.8000],
    [0.647194, 0.161951, 111.9624],
    [0.691387, 0.172599, 122.6690],
    [0.749236, 0.187062, 137.2481],
    [0.754992, 0.188901, 138.8037],
    [0.707917, 0.177132, 127.1517],
    [0.669357, 0.167092, 117.1700],
    [0.574803, 0.143453, 93.6482],
    [0.489066, 0.122419, 72.3307],
    [0.443370, 0.110995, 61.0234],
    [0.452311, 0.112830, 62.9753],
    [0.511397, 0.128002, 77.8638],
    [0.602864, 0.150869, 100.8470],
    [0.693390, 0.173100, 123.1953],
    [0.749986, 0.187649, 137.4610],
    [0.754154, 0.188691, 138.6199],
    [0.736841, 0.184363, 134.3499],
    [0.666710, 0.166430, 116.5340],
    [0.571945, 0.143139, 92.9594],
    [0.486924, 0.121884, 71.8208],
    [0.444220, 0.110808, 60.8616],
    [0.441575, 0.110147, 60.2586],
    [0.477852, 0.119616, 69.4446],
    [0.556719, 0.139332, 89.2780],
    [0.653498, 0.163127, 113.1895],
    [0.728774, 0.181946, 132.1252],
    [0.759124, 0.189934, 139.8295],
    [0.735220, 0.183958, 133.9703],
    [0.664046, 0.165764, 115.8933],
    [0.569096, 0.142427, 92.2726],
    [0.486414, 0.121756, 71.7188],
    [0.457822, 0.114608, 64.6292],
    [0.441674, 0.110171, 60.3088],
    [0.479407, 0.120005, 69.8590],
    [0.560716, 0.140332, 90.3028],
    [0.655828, 0.163710, 113.7976],
    [0.730152, 0.182691, 132.4952],
    [0.758997, 0.189902, 139.8233],
    [0.733561, 0.183543, 133.5811],
    [0.661363, 0.165094, 115.2482],
    [0.566255, 0.141717, 91.5880],
    [0.521014, 0.130406, 80.3361],
    [0.442855, 0.110467, 60.5714],
    [0.441817, 0.110207, 60.3702],
    [0.480996, 0.120402, 70.2818],
    [0.563124, 0.140934, 90.9304],
    [0.658143, 0.164288, 114.4018],
    [0.731493, 0.183026, 132.8561],
    [0.758825, 0.189859, 139.8058],
    [0.733465, 0.183119, 133.1824],
    [0.658663, 0.164419, 114.5987],
    [0.563424, 0.141009, 90.9056],
    [0.482291, 0.120726, 70.7392],
    [0.456615, 0.113907, 63.9786],
    [0.442005, 0.110254, 60.4428],
    [0.482619, 0.120808, 70.7129],
    [0.565542, 0.141538, 91.5605],
    [0.660441, 0.164863, 115.0019],
    [0.732797, 0.183352, 133.2076],
    [0.760207, 0.190205, 140.1770],
];

#[test]
fn metrics_moving_almost_as_one_give_their_common_direction() {
    let mut m = Multivariate::new(MultivariateConfig {
        min_train: 40,
        reservoir: 200,
        ..MultivariateConfig::default()
    });
    for (i, r) in ALMOST_ONE.iter().enumerate() {
        let s = m.observe(i as i64 * 200, r);
        if i >= 40 {
            assert!(s.score < 0.5, "row {i}: {s:?}");
        }
    }
    let f = m.fitted.as_ref().expect("fitted");
    assert_eq!(f.variances.len(), 1, "{f:?}");
    for w in &f.components[..3] {
        assert!((w.abs() - 3f64.sqrt().recip()).abs() < 0.01, "{f:?}");
    }
    // CPU high while requests are low: each value within its usual range.
    let s = m.observe(60 * 200, &[0.715056, 0.121221, 71.1523]);
    assert!(s.score >= 0.9, "{s:?}");
    let top = (0..3).max_by(|&a, &b| s.contributions[a].total_cmp(&s.contributions[b]));
    assert_eq!(top, Some(0), "{s:?}");
}
