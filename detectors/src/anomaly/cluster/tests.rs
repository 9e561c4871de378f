use super::*;
use crate::anomaly::tests::feed;
use crate::testutil::noise;

/// A noisy oscillation of period 8 around 50.
fn wave(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let phase = 2.0 * std::f64::consts::PI * (i % 8) as f64 / 8.0;
            50.0 + 10.0 * phase.sin() + noise(i as u64)
        })
        .collect()
}

#[test]
fn warms_up_then_fits_centroids() {
    let mut m = Cluster::new(ClusterConfig::default());
    let scores = feed(&mut m, &wave(600));
    assert!(scores[..70].iter().all(|s| s.warming_up && s.score == 0.0));
    assert!(!scores[599].warming_up);
    assert_eq!(m.centroids().len(), 8);
    assert!(m.values.len() <= m.config().history);
}

#[test]
fn normal_windows_score_low_and_a_spike_high() {
    let mut m = Cluster::new(ClusterConfig::default());
    let scores = feed(&mut m, &wave(1000));
    let late = &scores[600..];
    let high = late.iter().filter(|s| s.score > 0.5).count();
    assert!(high <= late.len() / 50, "{high} high scores on normal data");
    let s = m.observe(1_000_000, 200.0);
    assert!(s.score > 0.9, "{s:?}");
}

/// The oscillation stops: every value stays inside its usual range, so a
/// point detector sees nothing, but the windows' shape (spread, slope) is
/// one never seen in training.
#[test]
fn a_series_that_stops_oscillating_is_found() {
    let mut m = Cluster::new(ClusterConfig::default());
    feed(&mut m, &wave(800));
    let flat: Vec<f64> = (0..30).map(|i| 50.0 + 0.05 * noise(9000 + i)).collect();
    let scores: Vec<f64> = flat
        .iter()
        .enumerate()
        .map(|(i, &v)| m.observe((800 + i) as Millis * 1000, v).score)
        .collect();
    assert!(
        scores.iter().any(|&s| s > 0.5),
        "{scores:?} {:?}",
        m.centroids()
    );
}

#[test]
fn is_deterministic() {
    let run = || {
        let mut m = Cluster::new(ClusterConfig::default());
        feed(&mut m, &wave(700))
            .iter()
            .map(|s| s.score.to_bits())
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

#[test]
fn constant_series_does_not_alarm_on_repeats() {
    let mut m = Cluster::new(ClusterConfig::default());
    let scores = feed(&mut m, &[7.0; 400]);
    assert!(scores.iter().all(|s| s.score == 0.0));
    assert!(m.observe(400_000, 9.0).score > 0.9);
}

#[test]
fn non_finite_values_are_ignored() {
    let mut m = Cluster::new(ClusterConfig::default());
    feed(&mut m, &wave(300));
    let before = m.clone();
    let s = m.observe(300_000, f64::NAN);
    assert_eq!(s.score, 0.0);
    assert_eq!(m, before);
}

#[test]
fn direction_up_ignores_drops() {
    let mut m = Cluster::new(ClusterConfig {
        direction: Direction::Up,
        ..ClusterConfig::default()
    });
    feed(&mut m, &wave(800));
    assert_eq!(m.clone().observe(800_000, -200.0).score, 0.0);
    assert!(m.observe(800_000, 300.0).score > 0.9);
}
