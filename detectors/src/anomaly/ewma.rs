//! EWMA mean and variance control chart.

use serde::{Deserialize, Serialize};

use super::{Direction, EwBaseline, Model, Score, band_score};
use crate::Millis;

/// Parameters of [`Ewma`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EwmaConfig {
    /// Smoothing factor in `(0, 1]`: the weight of each new point in the
    /// running mean and variance (about `2/alpha` points of memory).
    pub alpha: f64,
    /// Points needed before anything is scored. During warm-up the weight
    /// is at least `1/n`, so the estimates start as plain averages.
    pub warm_up: usize,
    /// The z-score that scores ½.
    pub z_half: f64,
    /// Which side of the mean counts.
    pub direction: Direction,
}

impl Default for EwmaConfig {
    fn default() -> Self {
        EwmaConfig {
            alpha: 0.05,
            warm_up: 20,
            z_half: 5.0,
            direction: Direction::Both,
        }
    }
}

/// Exponentially weighted moving mean `m` and variance `v`; each point is
/// scored by `z = (x − m) / √v` with the estimates from before it, then
/// `m ← m + α·d`, `v ← (1 − α)(v + α·d²)` with `d = x − m`.
///
/// Memory: three numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ewma {
    cfg: EwmaConfig,
    base: EwBaseline,
}

impl Ewma {
    /// A model with no history.
    pub fn new(cfg: EwmaConfig) -> Self {
        let alpha = if cfg.alpha > 0.0 && cfg.alpha <= 1.0 {
            cfg.alpha
        } else {
            EwmaConfig::default().alpha
        };
        Ewma {
            cfg: EwmaConfig { alpha, ..cfg },
            base: EwBaseline::default(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &EwmaConfig {
        &self.cfg
    }

    /// Points learnt so far.
    pub fn count(&self) -> u64 {
        self.base.count()
    }
}

impl Model for Ewma {
    fn observe(&mut self, _t: Millis, value: f64) -> Score {
        let warming_up = self.base.count() < self.cfg.warm_up.max(1) as u64;
        let expectation = self.base.expected_sigma();
        let answer = band_score(
            value,
            expectation,
            self.cfg.z_half,
            self.cfg.direction,
            warming_up,
        );
        if value.is_finite() {
            self.base.learn(self.cfg.alpha, value);
        }
        answer
    }
}
