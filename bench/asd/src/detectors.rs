//! The detectors compared, each run causally over one entity: the train
//! rows first (history, not scored), then the test rows one by one.

use medic_detectors::Millis;
use medic_detectors::anomaly::{
    Cluster, ClusterConfig, Ensemble, EnsembleConfig, Model, Multivariate, MultivariateConfig,
    statistic_to_score,
};

use crate::data::Entity;

/// Rows are 5 minutes apart.
const STEP_MS: Millis = 300_000;

/// Scores of the test rows, and for the PCA detector each row's per-metric
/// contributions.
pub struct Run {
    pub scores: Vec<f64>,
    pub contributions: Option<Vec<Vec<f64>>>,
}

/// The detectors by name, in report order.
pub const NAMES: [&str; 4] = ["pca", "ensemble_max", "cluster_max", "zscore_max"];

/// Runs detector `name` over `e`.
pub fn run(name: &str, e: &Entity) -> Run {
    match name {
        "pca" => pca(e, pca_config()),
        "ensemble_max" => per_metric(e, || Box::new(Ensemble::new(EnsembleConfig::default()))),
        "cluster_max" => per_metric(e, || Box::new(Cluster::new(ClusterConfig::default()))),
        "zscore_max" => zscore(e),
        _ => panic!("unknown detector {name}"),
    }
}

/// What each detector is, for the report.
pub fn describe(name: &str) -> &'static str {
    match name {
        "pca" => {
            "`Multivariate` (PCA, SPE + T²) on all 19 metrics, reservoir 1024 rows, `min_scale` 0.01"
        }
        "ensemble_max" => {
            "`Ensemble` (library defaults: median/MAD, EWMA, Page–Hinkley) per metric, max over metrics"
        }
        "cluster_max" => {
            "`Cluster` (library defaults: window 8, k = 8) per metric, max over metrics"
        }
        "zscore_max" => {
            "baseline: per-metric |z| against the train mean / std (std ≥ 0.01), max over metrics"
        }
        _ => "",
    }
}

/// The multivariate model's settings on ASD.
pub fn pca_config() -> MultivariateConfig {
    MultivariateConfig {
        reservoir: 1024,
        min_scale: 0.01,
        ..MultivariateConfig::default()
    }
}

/// Runs the multivariate model with `cfg` over `e`.
pub fn pca(e: &Entity, cfg: MultivariateConfig) -> Run {
    let mut m = Multivariate::new(cfg);
    for (i, r) in e.train.iter().enumerate() {
        m.observe(i as Millis * STEP_MS, r);
    }
    let offset = e.train.len();
    let (scores, contributions) = e
        .test
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let s = m.observe((offset + i) as Millis * STEP_MS, r);
            (s.score, s.contributions)
        })
        .unzip();
    Run {
        scores,
        contributions: Some(contributions),
    }
}

/// One univariate model per metric; a row's score is the largest.
fn per_metric(e: &Entity, make: fn() -> Box<dyn Model>) -> Run {
    let metrics = e.test.first().map_or(0, Vec::len);
    let offset = e.train.len();
    // Two threads (the machine has two cores), each a share of the metrics.
    let columns: Vec<Vec<f64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|part| {
                s.spawn(move || {
                    (part..metrics)
                        .step_by(2)
                        .map(|j| {
                            let mut m = make();
                            for (i, r) in e.train.iter().enumerate() {
                                m.observe(i as Millis * STEP_MS, r[j]);
                            }
                            e.test
                                .iter()
                                .enumerate()
                                .map(|(i, r)| {
                                    m.observe((offset + i) as Millis * STEP_MS, r[j]).score
                                })
                                .collect::<Vec<f64>>()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("detector thread"))
            .collect()
    });
    let scores = (0..e.test.len())
        .map(|i| columns.iter().map(|c| c[i]).fold(0.0, f64::max))
        .collect();
    Run {
        scores,
        contributions: None,
    }
}

fn zscore(e: &Entity) -> Run {
    let metrics = e.test.first().map_or(0, Vec::len);
    let n = e.train.len() as f64;
    let stats: Vec<(f64, f64)> = (0..metrics)
        .map(|j| {
            let mean = e.train.iter().map(|r| r[j]).sum::<f64>() / n;
            let var = e.train.iter().map(|r| (r[j] - mean).powi(2)).sum::<f64>() / n;
            (mean, var.sqrt().max(0.01))
        })
        .collect();
    let scores = e
        .test
        .iter()
        .map(|r| {
            let z = r
                .iter()
                .zip(&stats)
                .map(|(v, (mean, std))| ((v - mean) / std).abs())
                .fold(0.0, f64::max);
            statistic_to_score(z, 3.0)
        })
        .collect();
    Run {
        scores,
        contributions: None,
    }
}
