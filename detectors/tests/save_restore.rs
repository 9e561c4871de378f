//! Saving a model's state (serde_json), restoring it and continuing gives
//! exactly the answers the uninterrupted model gives: a restart of medic
//! does not relearn from zero, nor drift.

use medic_detectors::anomaly::{
    Cluster, ClusterConfig, Contextual, ContextualConfig, DAY_MS, Ensemble, EnsembleConfig, Ewma,
    EwmaConfig, Model, MultiScore, Multivariate, MultivariateConfig, PageHinkley,
    PageHinkleyConfig, RollingMad, RollingMadConfig, Score, Seasonal, SeasonalConfig,
};
use medic_detectors::forecast::{Forecast, ForecastConfig};
use medic_detectors::{Evaluation, Millis};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Two days of a noisy daily cycle every 5 minutes, with a step and a few
/// spikes and gaps, so every part of every model's state is in use.
fn series() -> Vec<(Millis, f64)> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    (0..3 * 288)
        .map(|i: i64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let noise = (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            let t = i * 300_000;
            let day = 2.0 * std::f64::consts::PI * (t % DAY_MS) as f64 / DAY_MS as f64;
            let mut v = 50.0 + 20.0 * day.sin() + 3.0 * noise + if i > 500 { 15.0 } else { 0.0 };
            if i % 97 == 0 {
                v += 60.0;
            }
            if i % 131 == 0 {
                v = f64::NAN;
            }
            (t, v)
        })
        .collect()
}

fn bits(s: &Score) -> [u64; 5] {
    [
        s.score.to_bits(),
        s.expected.to_bits(),
        s.lower.to_bits(),
        s.upper.to_bits(),
        s.observed.to_bits(),
    ]
}

/// Runs `model` over the series uninterrupted, and again with a save and
/// restore through JSON after each cut; the answers must be bit-identical.
fn round_trip<M: Model + Serialize + DeserializeOwned + Clone>(name: &str, model: M) {
    let points = series();
    let mut whole = model.clone();
    let want: Vec<([u64; 5], bool)> = points
        .iter()
        .map(|&(t, v)| {
            let s = whole.observe(t, v);
            (bits(&s), s.warming_up)
        })
        .collect();
    for cut in [0, 1, 50, 300, 577, points.len()] {
        let mut m = model.clone();
        let mut got = Vec::new();
        for &(t, v) in &points[..cut] {
            let s = m.observe(t, v);
            got.push((bits(&s), s.warming_up));
        }
        let json = serde_json::to_string(&m).unwrap();
        let mut restored: M = serde_json::from_str(&json).unwrap();
        for &(t, v) in &points[cut..] {
            let s = restored.observe(t, v);
            got.push((bits(&s), s.warming_up));
        }
        assert!(
            got == want,
            "{name}: answers differ after a restore at {cut}"
        );
    }
}

#[test]
fn rolling_mad_round_trips() {
    round_trip("mad", RollingMad::new(RollingMadConfig::default()));
}

#[test]
fn ewma_round_trips() {
    round_trip("ewma", Ewma::new(EwmaConfig::default()));
}

#[test]
fn page_hinkley_round_trips() {
    round_trip("ph", PageHinkley::new(PageHinkleyConfig::default()));
}

#[test]
fn seasonal_round_trips() {
    let mut m = Seasonal::new(SeasonalConfig::default());
    for &(t, v) in &series() {
        m.observe(t, v);
    }
    assert_eq!(m.period(), Some(DAY_MS), "the series exercises the buckets");
    round_trip("seasonal", Seasonal::new(SeasonalConfig::default()));
}

#[test]
fn contextual_round_trips() {
    // A small memory, so that forgetting is exercised too.
    round_trip(
        "contextual",
        Contextual::new(ContextualConfig {
            max_contexts: 64,
            ..ContextualConfig::default()
        }),
    );
    round_trip("contextual", Contextual::new(ContextualConfig::default()));
    // With the extreme-value rules and their state.
    round_trip(
        "contextual",
        Contextual::new(ContextualConfig {
            outlier_z: 5.0,
            record_margin: Some(0.1),
            ..ContextualConfig::default()
        }),
    );
}

#[test]
fn ensemble_round_trips() {
    round_trip(
        "ensemble",
        Ensemble::new(EnsembleConfig {
            seasonal: Some(SeasonalConfig::default()),
            suppress: 20,
            ..EnsembleConfig::default()
        }),
    );
    round_trip(
        "ensemble with clustering",
        Ensemble::new(EnsembleConfig {
            cluster: Some(ClusterConfig::default()),
            suppress: 20,
            ..EnsembleConfig::default()
        }),
    );
    round_trip(
        "ensemble with the contextual model",
        Ensemble::new(EnsembleConfig {
            contextual: Some(ContextualConfig::default()),
            suppress: 20,
            ..EnsembleConfig::default()
        }),
    );
}

/// State saved before the clustering and contextual members existed (no
/// `cluster` or `contextual` key) still loads, and continues like an
/// ensemble without those members.
#[test]
fn ensemble_state_without_newer_member_keys_loads() {
    let mut m = Ensemble::new(EnsembleConfig::default());
    for &(t, v) in &series()[..100] {
        m.observe(t, v);
    }
    let mut json: serde_json::Value = serde_json::to_value(&m).unwrap();
    let state = json.as_object_mut().unwrap();
    for key in ["cluster", "contextual"] {
        assert!(state.remove(key).is_some());
        state["cfg"].as_object_mut().unwrap().remove(key);
    }
    let mut old: Ensemble = serde_json::from_value(json).unwrap();
    for &(t, v) in &series()[100..] {
        assert_eq!(bits(&old.observe(t, v)), bits(&m.observe(t, v)));
    }
}

#[test]
fn forecast_round_trips() {
    let points = series();
    let cfg = ForecastConfig {
        limit: 75.0,
        horizon_ms: 6 * 3_600_000,
        hold_ms: 0,
        clear_horizon_ms: 0,
        clear_hold_ms: 0,
        ..ForecastConfig::default()
    };
    let mut whole = Forecast::new(cfg);
    // Debug text compares NaN observations equal and prints f64 exactly.
    let text = |e: &Evaluation| format!("{e:?}");
    let want: Vec<Evaluation> = points.iter().map(|&(t, v)| whole.observe(t, v)).collect();
    assert!(
        want.iter().filter(|e| e.changed).count() > 2,
        "the series exercises the machine"
    );
    for cut in [0, 1, 50, 300, 577, points.len()] {
        let mut d = Forecast::new(cfg);
        let mut got: Vec<Evaluation> = points[..cut]
            .iter()
            .map(|&(t, v)| d.observe(t, v))
            .collect();
        let json = serde_json::to_string(&d).unwrap();
        let mut restored: Forecast = serde_json::from_str(&json).unwrap();
        got.extend(points[cut..].iter().map(|&(t, v)| restored.observe(t, v)));
        assert!(
            got.iter().map(text).eq(want.iter().map(text)),
            "forecast: answers differ after a restore at {cut}"
        );
        assert_eq!(
            restored.score().score.to_bits(),
            whole.score().score.to_bits()
        );
    }
}

#[test]
fn cluster_round_trips() {
    let cfg = ClusterConfig {
        refit_every: 50,
        ..ClusterConfig::default()
    };
    let mut m = Cluster::new(cfg);
    for &(t, v) in &series()[..200] {
        m.observe(t, v);
    }
    assert!(!m.centroids().is_empty(), "the series exercises the fit");
    round_trip("cluster", Cluster::new(cfg));
}

#[test]
fn multivariate_round_trips() {
    // Three metrics of one service: the series, a correlated copy, and
    // the series upside down; NaN gaps included.
    let rows: Vec<(Millis, Vec<f64>)> = series()
        .into_iter()
        .enumerate()
        .map(|(i, (t, v))| (t, vec![v, 2.0 * v + (i % 5) as f64, 100.0 - v]))
        .collect();
    let cfg = MultivariateConfig {
        reservoir: 200,
        refit_every: 40,
        ..MultivariateConfig::default()
    };
    let text = |s: &MultiScore| format!("{s:?}");
    let mut whole = Multivariate::new(cfg);
    let want: Vec<String> = rows
        .iter()
        .map(|(t, r)| text(&whole.observe(*t, r)))
        .collect();
    assert!(whole.components() > 0, "the series exercises the fit");
    for cut in [0, 1, 50, 300, 577, rows.len()] {
        let mut m = Multivariate::new(cfg);
        let mut got: Vec<String> = rows[..cut]
            .iter()
            .map(|(t, r)| text(&m.observe(*t, r)))
            .collect();
        let json = serde_json::to_string(&m).unwrap();
        let mut restored: Multivariate = serde_json::from_str(&json).unwrap();
        got.extend(
            rows[cut..]
                .iter()
                .map(|(t, r)| text(&restored.observe(*t, r))),
        );
        assert!(
            got == want,
            "multivariate: answers differ after a restore at {cut}"
        );
    }
}
