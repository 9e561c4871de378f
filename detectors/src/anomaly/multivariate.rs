//! Multivariate detection over several series of one service: PCA
//! reconstruction error on robustly standardised rows.

use std::collections::VecDeque;

use linfa_linalg::eigh::{EigSort, Eigh};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::mad::median_and_sigma;
use super::{NormalGate, bounded, fit_guarded, quantile, statistic_to_score};
use crate::Millis;

/// Parameters of [`Multivariate`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct MultivariateConfig {
    /// Recent normal rows kept to train on (bounds memory). At least 2.
    pub reservoir: usize,
    /// Rows needed before the first fit (warm-up). At least 2.
    pub min_train: usize,
    /// Rows between refits.
    pub refit_every: usize,
    /// Share of the standardised variance the principal components keep
    /// (the rest is the residual the score measures).
    pub variance: f64,
    /// Most principal components kept.
    pub max_components: usize,
    /// The training statistics' quantile scores are measured against.
    pub quantile: f64,
    /// The statistic (√ of SPE or T² over its reference) that scores ½.
    pub z_half: f64,
    /// Smallest scale a metric is standardised by, in its own units (for
    /// metrics constant in training: 0 makes any later change extreme).
    pub min_scale: f64,
    /// A row joins the training data only if it scored below this.
    pub normal_below: f64,
    /// After this many rejected rows in a row, rows are admitted again:
    /// the service has a new normal.
    pub adapt_after: u64,
}

impl Default for MultivariateConfig {
    fn default() -> Self {
        MultivariateConfig {
            reservoir: 512,
            min_train: 64,
            refit_every: 256,
            variance: 0.9,
            max_components: 8,
            quantile: 0.99,
            z_half: 2.0,
            min_scale: 0.0,
            normal_below: 0.5,
            adapt_after: 256,
        }
    }
}

/// The answer of [`Multivariate`] to one row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultiScore {
    /// How anomalous the row is, in `[0, 1]` (0 = normal).
    pub score: f64,
    /// Squared prediction error: the squared distance of the standardised
    /// row from the principal subspace of normal rows.
    pub spe: f64,
    /// Hotelling's T²: the squared, variance-scaled distance within that
    /// subspace from the normal centre.
    pub t2: f64,
    /// Each metric's share of the larger of the two statistics (summing to
    /// 1, or all 0 when there is nothing to explain): which metric is at
    /// fault.
    pub contributions: Vec<f64>,
    /// What each metric's contribution is measured against, in the
    /// metric's own units: when SPE is the larger statistic, the row
    /// reconstructed from the principal subspace (the value the other
    /// metrics' learnt correlation predicts); when T² is, the centre of
    /// the training rows. NaN while warming up.
    pub expected: Vec<f64>,
    /// True while the model has too little history to judge; the score is
    /// then 0.
    pub warming_up: bool,
}

/// The fitted part, as plain numbers so that saved state restores bit for
/// bit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Fitted {
    /// Per metric: median and robust σ used to standardise.
    center: Vec<f64>,
    scale: Vec<f64>,
    /// Mean of the standardised training rows.
    mean: Vec<f64>,
    /// Principal directions, row after row (`metrics` values each).
    components: Vec<f64>,
    /// Variance of the training rows along each direction.
    variances: Vec<f64>,
    /// The `quantile` of the training rows' SPE and T² (floored above 0).
    spe_ref: f64,
    t2_ref: f64,
}

/// PCA reconstruction error over a vector of metrics per time.
///
/// Each metric is standardised by the median and robust σ (1.4826 · MAD) of
/// the training rows. PCA (the exact symmetric eigendecomposition of their
/// covariance, linfa-linalg, so deterministic) is fitted on the last `reservoir` rows
/// judged normal (score below `normal_below`), first once `min_train` rows
/// exist and then every `refit_every` rows, keeping the fewest components
/// that explain `variance` of the standardised variance. A row is judged by
///
/// * SPE, its squared distance from that subspace: a broken correlation
///   (two metrics that move together no longer do) shows here even when
///   every metric alone stays in its usual range;
/// * T², its distance within the subspace scaled by each direction's
///   variance: everything moving together, but too far.
///
/// The score is [`statistic_to_score`] of the larger of √(SPE / its
/// training `quantile`) and √(T² / its training `quantile`), with
/// `z_half`. `contributions` apportion that statistic among the metrics:
/// each metric's squared residual for SPE, its squared standardised
/// deviation from the training mean for T².
///
/// The metric count is fixed by the first row; rows of another length are
/// scored 0 and not learnt. Non-finite entries are replaced by that
/// metric's training median (they contribute nothing) and the row is not
/// learnt.
///
/// Memory: `reservoir × metrics` values plus the components. Cost per row:
/// O(metrics × components), plus a PCA fit on the reservoir every
/// `refit_every` rows.
///
/// # Example
///
/// ```
/// use medic_detectors::anomaly::{Multivariate, MultivariateConfig};
///
/// // Requests and CPU of one service move together; errors are flat.
/// let row = |i: usize| {
///     let load = 100.0 + 50.0 * (i as f64 * 0.1).sin() + (i % 7) as f64;
///     [load, 0.4 * load + (i % 3) as f64, 1.0 + (i % 2) as f64 * 0.1]
/// };
/// let mut m = Multivariate::new(MultivariateConfig::default());
/// for i in 0..600 {
///     m.observe(i as i64 * 60_000, &row(i));
/// }
/// // CPU at its busiest while requests are at their quietest: each value
/// // is in its usual range, the pair is not.
/// let s = m.observe(600 * 60_000, &[55.0, 62.0, 1.05]);
/// assert!(s.score > 0.9);
/// assert!(s.contributions[2] < 0.1, "errors are not at fault");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Multivariate {
    cfg: MultivariateConfig,
    metrics: usize,
    rows: VecDeque<Vec<f64>>,
    gate: NormalGate,
    since_fit: usize,
    fitted: Option<Fitted>,
}

impl Multivariate {
    /// A model with no history.
    pub fn new(cfg: MultivariateConfig) -> Self {
        let cfg = MultivariateConfig {
            reservoir: cfg.reservoir.max(2),
            min_train: cfg.min_train.clamp(2, cfg.reservoir.max(2)),
            refit_every: cfg.refit_every.max(1),
            max_components: cfg.max_components.max(1),
            ..cfg
        };
        Multivariate {
            cfg,
            metrics: 0,
            rows: VecDeque::with_capacity(cfg.reservoir),
            gate: NormalGate::default(),
            since_fit: 0,
            fitted: None,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &MultivariateConfig {
        &self.cfg
    }

    /// Principal components in use (0 before the first fit).
    pub fn components(&self) -> usize {
        self.fitted.as_ref().map_or(0, |f| f.variances.len())
    }

    /// Judges `row` (one value per metric, observed at `t`) against the
    /// history, then learns from it.
    pub fn observe(&mut self, _t: Millis, row: &[f64]) -> MultiScore {
        if self.metrics == 0 {
            self.metrics = row.len();
        }
        let d = self.metrics;
        let quiet = |warming_up| MultiScore {
            score: 0.0,
            spe: 0.0,
            t2: 0.0,
            contributions: vec![0.0; d],
            expected: vec![f64::NAN; d],
            warming_up,
        };
        if row.len() != d || d == 0 {
            return quiet(self.fitted.is_none());
        }
        let finite = row.iter().all(|v| v.is_finite());
        let answer = match &self.fitted {
            None => quiet(true),
            Some(f) => f.judge(row, &self.cfg),
        };
        if finite {
            self.learn(row, answer.score);
        }
        answer
    }

    fn learn(&mut self, row: &[f64], score: f64) {
        let admitted = self
            .gate
            .admit(score, self.cfg.normal_below, self.cfg.adapt_after);
        if admitted {
            if self.rows.len() == self.cfg.reservoir {
                self.rows.pop_front();
            }
            self.rows.push_back(row.to_vec());
        }
        self.since_fit += 1;
        let due = match self.fitted {
            None => self.rows.len() >= self.cfg.min_train,
            Some(_) => self.since_fit >= self.cfg.refit_every,
        };
        if due {
            self.since_fit = 0;
            if let Some(f) = self.fit() {
                self.fitted = Some(f);
            }
        }
    }

    /// Standardises the reservoir and fits the PCA (`None` if it fails).
    fn fit(&self) -> Option<Fitted> {
        let (n, d) = (self.rows.len(), self.metrics);
        let mut scratch = Vec::with_capacity(n);
        let (center, scale): (Vec<f64>, Vec<f64>) = (0..d)
            .map(|j| {
                let (c, s) = median_and_sigma(self.rows.iter().map(|r| r[j]), &mut scratch);
                (c, s.max(self.cfg.min_scale))
            })
            .unzip();
        let z: Vec<f64> = self
            .rows
            .iter()
            .flat_map(|r| {
                (0..d)
                    .map(|j| (r[j] - center[j]) / scale[j])
                    .collect::<Vec<_>>()
            })
            .collect();
        let data = Array2::from_shape_vec((n, d), z).ok()?;
        let mean: Vec<f64> = (0..d)
            .map(|j| data.column(j).mean().unwrap_or(0.0))
            .collect();
        let column_var: Vec<f64> = (0..d).map(|j| data.column(j).var(1.0)).collect();
        let total: f64 = column_var.iter().sum();
        // A direction needs a varying column; LOBPCG cannot find more
        // directions than the data has.
        let active = column_var.iter().filter(|&&v| v > 1e-12).count();
        let k_max = self
            .cfg
            .max_components
            .min(active.saturating_sub(1))
            .min(n - 1);
        let mut fitted = Fitted {
            center,
            scale,
            mean,
            components: Vec::new(),
            variances: Vec::new(),
            spe_ref: 0.0,
            t2_ref: 0.0,
        };
        if k_max > 0 {
            // The principal directions are the eigenvectors of the d × d
            // covariance of the standardised rows, found exactly
            // (linfa-linalg's symmetric eigendecomposition: deterministic,
            // and accurate when the metrics move almost as one, where an
            // iterative truncated SVD can return a skewed direction).
            let centred = &data - &ndarray::Array1::from(fitted.mean.clone());
            let cov = centred.t().dot(&centred) / (n - 1) as f64;
            if !cov.iter().all(|v| v.is_finite()) {
                return None;
            }
            let (values, vectors) = fit_guarded(|| cov.eigh().ok().map(EigSort::sort_eig_desc))?;
            let mut kept = 0.0;
            for (i, &var) in values.iter().enumerate().take(k_max) {
                if kept >= self.cfg.variance * total {
                    break;
                }
                kept += var.max(0.0);
                fitted.variances.push(var.max(1e-12));
                fitted.components.extend(vectors.column(i).iter());
            }
        }
        if !fitted.components.iter().all(|v| v.is_finite()) {
            return None;
        }
        let (mut spe, mut t2): (Vec<f64>, Vec<f64>) = data
            .rows()
            .into_iter()
            .map(|r| {
                let c: Vec<f64> = r.iter().zip(&fitted.mean).map(|(v, m)| v - m).collect();
                let (residual, scores) = fitted.decompose(&c);
                (
                    residual.iter().map(|e| e * e).sum::<f64>(),
                    fitted.t2(&scores),
                )
            })
            .unzip();
        fitted.spe_ref = quantile(&mut spe, self.cfg.quantile).max(1e-6);
        fitted.t2_ref = quantile(&mut t2, self.cfg.quantile).max(1e-6);
        Some(fitted)
    }
}

impl Fitted {
    /// Standardised row, centred on the training mean.
    fn centred(&self, row: &[f64]) -> Vec<f64> {
        row.iter()
            .enumerate()
            .map(|(j, &v)| {
                let v = if v.is_finite() { v } else { self.center[j] };
                bounded((v - self.center[j]) / self.scale[j]) - self.mean[j]
            })
            .collect()
    }

    /// The residual of a standardised, centred row `c` off the principal
    /// subspace, and its coordinates in it.
    fn decompose(&self, c: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let d = c.len();
        let scores: Vec<f64> = self
            .components
            .chunks_exact(d)
            .map(|v| v.iter().zip(c).map(|(a, b)| a * b).sum())
            .collect();
        let mut residual = c.to_vec();
        for (v, s) in self.components.chunks_exact(d).zip(&scores) {
            for (r, a) in residual.iter_mut().zip(v) {
                *r -= s * a;
            }
        }
        (residual, scores)
    }

    fn t2(&self, scores: &[f64]) -> f64 {
        scores
            .iter()
            .zip(&self.variances)
            .map(|(s, v)| s * s / v)
            .sum()
    }

    fn judge(&self, row: &[f64], cfg: &MultivariateConfig) -> MultiScore {
        let c = self.centred(row);
        let (residual, scores) = self.decompose(&c);
        let spe: f64 = residual.iter().map(|e| e * e).sum();
        let t2 = self.t2(&scores);
        let spe_stat = (spe / self.spe_ref).sqrt();
        let t2_stat = (t2 / self.t2_ref).sqrt();
        // The deviation each metric's share measures, standardised.
        let off = if spe_stat >= t2_stat { &residual } else { &c };
        let parts: Vec<f64> = off.iter().map(|e| e * e).collect();
        let expected = (0..c.len())
            .map(|j| self.center[j] + self.scale[j] * (c[j] + self.mean[j] - off[j]))
            .collect();
        let sum: f64 = parts.iter().sum();
        let contributions = if sum > 0.0 && sum.is_finite() {
            parts.iter().map(|p| p / sum).collect()
        } else {
            vec![0.0; parts.len()]
        };
        MultiScore {
            score: statistic_to_score(spe_stat.max(t2_stat), cfg.z_half),
            spe,
            t2,
            contributions,
            expected,
            warming_up: false,
        }
    }
}

#[cfg(test)]
mod tests;
