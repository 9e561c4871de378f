//! Window clustering: distance of the latest window's shape to the k-means
//! centroids of recent normal windows.

use std::collections::VecDeque;

use linfa::DatasetBase;
use linfa::traits::Fit;
use linfa_clustering::KMeans;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::mad::median_and_sigma;
use super::{
    Direction, Model, NormalGate, Score, bounded, fit_guarded, floor_scale, ignored, quantile,
    statistic_to_score,
};
use crate::Millis;

/// Features of one window: level, slope, spread, last-value z.
const FEATURES: usize = 4;

/// Parameters of [`Cluster`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Points in a window (the current point is the last). At least 2.
    pub window: usize,
    /// Recent points kept to train on (bounds memory). At least `window`.
    pub history: usize,
    /// Clusters (k of k-means). At least 1.
    pub clusters: usize,
    /// Normal windows needed before the first fit (warm-up).
    pub min_train: usize,
    /// Points between refits.
    pub refit_every: usize,
    /// The training distances' quantile that distances are measured
    /// against (e.g. 0.99).
    pub quantile: f64,
    /// Distance (in units of that quantile) that scores ½.
    pub z_half: f64,
    /// A point joins the training data only if it scored below this.
    pub normal_below: f64,
    /// After this many rejected points in a row, points are admitted
    /// again: the series has a new normal.
    pub adapt_after: u64,
    /// Which side of the expected value counts.
    pub direction: Direction,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            window: 8,
            history: 512,
            clusters: 8,
            min_train: 64,
            refit_every: 128,
            quantile: 0.99,
            z_half: 2.0,
            normal_below: 0.5,
            adapt_after: 256,
            direction: Direction::Both,
        }
    }
}

/// The fitted part: how windows are normalised, and the centroids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Fitted {
    /// Median of the training values.
    center: f64,
    /// Robust σ of the training values (normalises the level).
    level_scale: f64,
    /// Robust σ of one step's change / √2 (normalises everything else).
    noise_scale: f64,
    /// Centroids, row after row (`FEATURES` values each), kept as plain
    /// numbers so that saved state restores bit for bit.
    centroids: Vec<f64>,
    /// The `quantile` of the training windows' distances to their nearest
    /// centroid (floored above 0).
    reference: f64,
}

/// Clusters the shapes of sliding windows and scores how far the latest
/// window is from every shape seen recently in normal data.
///
/// Each window of `window` points is described by four features: its
/// level (mean against the training median, in robust σ of the values),
/// its slope (second half's mean minus the first half's), its spread
/// (standard deviation) and the z of its last point against the others'
/// mean — the last three in units of the series' step noise (robust σ of
/// the first differences / √2). k-means (linfa-clustering, k-means++ with a
/// fixed seed, so deterministic) is fitted on the windows of the last
/// `history` points that end at a point judged normal (score below
/// `normal_below`), first once `min_train` such windows exist and then
/// every `refit_every` points. The score is the distance to the nearest
/// centroid divided by the `quantile` of the training distances, mapped by
/// [`statistic_to_score`] with `z_half`.
///
/// `expected` is an approximation: the mean of the previous `window − 1`
/// points plus the last-value z of the nearest centroid; the band is
/// `expected ± z_half · reference` step-noise σ.
///
/// Memory: `history` values and flags, and `clusters × 4` centroids. Cost
/// per point: O(window + clusters) to score, plus a k-means fit on up to
/// `history` windows every `refit_every` points.
///
/// The fit uses linfa, whose k-means assigns points in parallel through
/// rayon's global pool; the result does not depend on the threads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    cfg: ClusterConfig,
    values: VecDeque<f64>,
    /// Whether each value in `values` was judged normal.
    normal: VecDeque<bool>,
    gate: NormalGate,
    since_fit: usize,
    fitted: Option<Fitted>,
}

impl Cluster {
    /// A model with no history.
    pub fn new(cfg: ClusterConfig) -> Self {
        let window = cfg.window.max(2);
        let cfg = ClusterConfig {
            window,
            history: cfg.history.max(window),
            clusters: cfg.clusters.max(1),
            min_train: cfg.min_train.max(1),
            refit_every: cfg.refit_every.max(1),
            ..cfg
        };
        Cluster {
            cfg,
            values: VecDeque::with_capacity(cfg.history),
            normal: VecDeque::with_capacity(cfg.history),
            gate: NormalGate::default(),
            since_fit: 0,
            fitted: None,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &ClusterConfig {
        &self.cfg
    }

    /// The fitted centroids (`clusters` rows of level, slope, spread,
    /// last-value z), empty before the first fit.
    pub fn centroids(&self) -> Vec<[f64; FEATURES]> {
        self.fitted.as_ref().map_or_else(Vec::new, |f| {
            f.centroids
                .chunks_exact(FEATURES)
                .map(|c| [c[0], c[1], c[2], c[3]])
                .collect()
        })
    }

    /// Learns `value` and refits when due.
    fn learn(&mut self, value: f64, score: f64) {
        let admitted = self
            .gate
            .admit(score, self.cfg.normal_below, self.cfg.adapt_after);
        if self.values.len() == self.cfg.history {
            self.values.pop_front();
            self.normal.pop_front();
        }
        self.values.push_back(value);
        self.normal.push_back(admitted);
        self.since_fit += 1;
        let due = match self.fitted {
            None => self.training_windows() >= self.cfg.min_train,
            Some(_) => self.since_fit >= self.cfg.refit_every,
        };
        if due {
            self.since_fit = 0;
            if let Some(f) = self.fit() {
                self.fitted = Some(f);
            }
        }
    }

    /// Windows in the history that end at a normal point.
    fn training_windows(&self) -> usize {
        self.normal
            .iter()
            .skip(self.cfg.window - 1)
            .filter(|&&n| n)
            .count()
    }

    /// Fits the normalisation and k-means on the normal windows of the
    /// history (`None` when there are too few).
    fn fit(&self) -> Option<Fitted> {
        let w = self.cfg.window;
        let values: Vec<f64> = self.values.iter().copied().collect();
        let normal: Vec<bool> = self.normal.iter().copied().collect();
        let mut scratch = Vec::with_capacity(values.len());
        let (center, level_sigma) = median_and_sigma(
            values.iter().zip(&normal).filter(|p| *p.1).map(|p| *p.0),
            &mut scratch,
        );
        let (_, step_sigma) =
            median_and_sigma(values.windows(2).map(|p| p[1] - p[0]), &mut scratch);
        let mut fitted = Fitted {
            center,
            level_scale: floor_scale(level_sigma, center),
            noise_scale: floor_scale(step_sigma / std::f64::consts::SQRT_2, center),
            centroids: Vec::new(),
            reference: 0.0,
        };
        let rows: Vec<[f64; FEATURES]> = (w - 1..values.len())
            .filter(|&end| normal[end])
            .map(|end| fitted.features(&values[end + 1 - w..=end]))
            .collect();
        if rows.len() < self.cfg.min_train.min(values.len()) || rows.is_empty() {
            return None;
        }
        fitted.centroids = k_means(&rows, self.cfg.clusters);
        let mut distances: Vec<f64> = rows.iter().map(|r| fitted.nearest(r).1).collect();
        fitted.reference = quantile(&mut distances, self.cfg.quantile).max(1e-3);
        Some(fitted)
    }
}

/// k-means centroids of `rows` (flattened), by linfa with its fixed seed;
/// the mean of the rows if the fit fails or gives a non-finite centroid.
fn k_means(rows: &[[f64; FEATURES]], clusters: usize) -> Vec<f64> {
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    let fitted = Array2::from_shape_vec((rows.len(), FEATURES), flat)
        .ok()
        .and_then(|data| {
            fit_guarded(|| {
                KMeans::params(clusters.min(rows.len()))
                    .n_runs(1)
                    .max_n_iterations(50)
                    .tolerance(1e-3)
                    .fit(&DatasetBase::from(data))
                    .ok()
            })
        })
        .map(|m| m.centroids().iter().copied().collect::<Vec<f64>>())
        .filter(|c| !c.is_empty() && c.iter().all(|v| v.is_finite()));
    fitted.unwrap_or_else(|| {
        let n = rows.len() as f64;
        (0..FEATURES)
            .map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / n)
            .collect()
    })
}

impl Fitted {
    /// The four features of `w` (at least 2 values, the current one last).
    fn features(&self, w: &[f64]) -> [f64; FEATURES] {
        let m = w.len();
        let mean = w.iter().sum::<f64>() / m as f64;
        let var = w.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / m as f64;
        let half = m / 2;
        let first = w[..half].iter().sum::<f64>() / half as f64;
        let second = w[half..].iter().sum::<f64>() / (m - half) as f64;
        let previous = w[..m - 1].iter().sum::<f64>() / (m - 1) as f64;
        [
            (mean - self.center) / self.level_scale,
            (second - first) / self.noise_scale,
            var.sqrt() / self.noise_scale,
            (w[m - 1] - previous) / self.noise_scale,
        ]
        .map(bounded)
    }

    /// The index of the centroid nearest to `row` and its distance.
    fn nearest(&self, row: &[f64; FEATURES]) -> (usize, f64) {
        let (i, d2) = self
            .centroids
            .chunks_exact(FEATURES)
            .map(|c| {
                c.iter()
                    .zip(row)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f64>()
            })
            .enumerate()
            .fold(
                (0, f64::INFINITY),
                |best, (i, d2)| {
                    if d2 < best.1 { (i, d2) } else { best }
                },
            );
        (i, d2.sqrt())
    }
}

impl Model for Cluster {
    fn observe(&mut self, _t: Millis, value: f64) -> Score {
        let w = self.cfg.window;
        let have = self.values.len() + 1 >= w;
        let mut window = Vec::with_capacity(w);
        window.extend(
            self.values
                .iter()
                .skip((self.values.len() + 1).saturating_sub(w)),
        );
        window.push(value);
        let previous = if window.len() > 1 {
            window[..window.len() - 1].iter().sum::<f64>() / (window.len() - 1) as f64
        } else {
            f64::NAN
        };
        let judged = match (&self.fitted, have && value.is_finite()) {
            (Some(f), true) => {
                let row = f.features(&window);
                let (i, d) = f.nearest(&row);
                let expected = previous + f.centroids[i * FEATURES + 3] * f.noise_scale;
                let half_width = self.cfg.z_half * f.reference * f.noise_scale;
                Some((d / f.reference, expected, half_width))
            }
            _ => None,
        };
        let (stat, expected, half_width) = judged.unwrap_or((0.0, previous, f64::NAN));
        let (lower, upper) = (expected - half_width, expected + half_width);
        let warming_up = self.fitted.is_none() || !have;
        if !value.is_finite() {
            return ignored(value, expected, lower, upper, warming_up);
        }
        // One-sided: a window on the ignored side of the expected value is
        // not an alarm, whatever its shape.
        let wrong_side = self.cfg.direction != Direction::Both
            && self.cfg.direction.deviation(value - expected) == 0.0;
        let score = if warming_up || wrong_side {
            0.0
        } else {
            statistic_to_score(stat, self.cfg.z_half)
        };
        self.learn(value, score);
        Score {
            score,
            ..ignored(value, expected, lower, upper, warming_up)
        }
    }
}

#[cfg(test)]
mod tests;
