//! Page–Hinkley / two-sided CUSUM change-point detection.

use serde::{Deserialize, Serialize};

use super::{Direction, EwBaseline, Model, Score, ignored, statistic_to_score};
use crate::Millis;

/// Parameters of [`PageHinkley`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PageHinkleyConfig {
    /// Smoothing factor of the slow EWMA baseline (mean and variance) that
    /// standardises the signal, in `(0, 1]`.
    pub alpha: f64,
    /// Points needed before anything is scored.
    pub warm_up: usize,
    /// Allowed drift per point, in standard deviations: the cumulative sums
    /// grow only while the standardised signal exceeds it.
    pub drift: f64,
    /// The cumulative sum (in standard deviations) at which a change is
    /// declared: it scores ½ there, and the sums restart from 0 with the
    /// baseline moved to the new level.
    pub threshold: f64,
    /// Which changes count: increases, decreases, or both.
    pub direction: Direction,
}

impl Default for PageHinkleyConfig {
    fn default() -> Self {
        PageHinkleyConfig {
            alpha: 0.01,
            warm_up: 30,
            drift: 0.5,
            threshold: 8.0,
            direction: Direction::Both,
        }
    }
}

/// Two cumulative sums of the standardised signal `z = (x − m) / σ` (with
/// `m`, `σ` a slow EWMA baseline learnt from earlier points):
/// `g⁺ ← max(0, g⁺ + z − drift)`, `g⁻ ← max(0, g⁻ − z − drift)`. The
/// statistic is the larger of the two (per `direction`), scored against
/// `threshold`. When it reaches `threshold` the change is declared: the
/// sums restart at 0 and the baseline mean jumps to the new value, so a
/// level shift is flagged once, not for as long as it lasts.
///
/// Memory: six numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageHinkley {
    cfg: PageHinkleyConfig,
    base: EwBaseline,
    g_up: f64,
    g_down: f64,
}

impl PageHinkley {
    /// A model with no history.
    pub fn new(cfg: PageHinkleyConfig) -> Self {
        let d = PageHinkleyConfig::default();
        let cfg = PageHinkleyConfig {
            alpha: if cfg.alpha > 0.0 && cfg.alpha <= 1.0 {
                cfg.alpha
            } else {
                d.alpha
            },
            drift: if cfg.drift >= 0.0 { cfg.drift } else { d.drift },
            threshold: if cfg.threshold > 0.0 {
                cfg.threshold
            } else {
                d.threshold
            },
            ..cfg
        };
        PageHinkley {
            cfg,
            base: EwBaseline::default(),
            g_up: 0.0,
            g_down: 0.0,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &PageHinkleyConfig {
        &self.cfg
    }
}

impl Model for PageHinkley {
    fn observe(&mut self, _t: Millis, value: f64) -> Score {
        let warming_up = self.base.count() < self.cfg.warm_up.max(1) as u64;
        let (expected, sigma) = self.base.expected_sigma();
        let half_width = (self.cfg.threshold + self.cfg.drift) * sigma;
        let (lower, upper) = (expected - half_width, expected + half_width);
        if !value.is_finite() {
            return ignored(value, expected, lower, upper, warming_up);
        }
        let mut score = 0.0;
        let mut declared = false;
        if !warming_up {
            let z = (value - expected) / sigma;
            self.g_up = (self.g_up + z - self.cfg.drift).max(0.0);
            self.g_down = (self.g_down - z - self.cfg.drift).max(0.0);
            let stat = match self.cfg.direction {
                Direction::Up => self.g_up,
                Direction::Down => self.g_down,
                Direction::Both => self.g_up.max(self.g_down),
            };
            score = statistic_to_score(stat, self.cfg.threshold);
            declared = stat >= self.cfg.threshold;
        }
        if declared || self.base.count() == 0 {
            self.base.restart_at(value);
            self.g_up = 0.0;
            self.g_down = 0.0;
        } else {
            self.base.learn(self.cfg.alpha, value);
        }
        Score {
            score,
            expected,
            lower,
            upper,
            observed: value,
            warming_up,
        }
    }
}
