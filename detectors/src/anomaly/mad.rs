//! Rolling median / MAD robust z-score.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{Direction, Model, Score, floor_scale, ignored, statistic_to_score};
use crate::Millis;

/// 1.4826 · MAD estimates the standard deviation of normal data.
const MAD_TO_SIGMA: f64 = 1.482_602_218_505_602;
/// √(π/2): the mean absolute deviation times this estimates σ.
const MEAN_AD_TO_SIGMA: f64 = 1.253_314_137_315_500_3;

/// Parameters of [`RollingMad`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RollingMadConfig {
    /// Points kept (the ring buffer's size). At least 1.
    pub window: usize,
    /// Points needed before anything is scored (warm-up).
    pub min_points: usize,
    /// The robust z-score that scores ½ (see
    /// [`statistic_to_score`](super::statistic_to_score)).
    pub z_half: f64,
    /// Which side of the median counts.
    pub direction: Direction,
}

impl Default for RollingMadConfig {
    fn default() -> Self {
        RollingMadConfig {
            window: 128,
            min_points: 16,
            z_half: 5.0,
            direction: Direction::Both,
        }
    }
}

/// Robust z-score `(x − median) / (1.4826 · MAD)` of each point against the
/// previous `window` points. When the MAD is 0 (more than half the window
/// is one value), the mean absolute deviation from the median is used
/// instead; when that is 0 too (a constant window) any other value is
/// extreme.
///
/// Memory: one ring buffer of `window` values. Cost per point:
/// O(window · log window).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollingMad {
    cfg: RollingMadConfig,
    pub(super) buf: VecDeque<f64>,
    #[serde(skip)]
    scratch: Vec<f64>,
}

impl RollingMad {
    /// A model with no history.
    pub fn new(cfg: RollingMadConfig) -> Self {
        let cfg = RollingMadConfig {
            window: cfg.window.max(1),
            ..cfg
        };
        RollingMad {
            cfg,
            buf: VecDeque::with_capacity(cfg.window),
            scratch: Vec::with_capacity(cfg.window),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &RollingMadConfig {
        &self.cfg
    }

    /// Median and robust σ of the window (NaN, NaN when empty).
    fn location_scale(&mut self) -> (f64, f64) {
        median_and_sigma(self.buf.iter().copied(), &mut self.scratch)
    }
}

/// Median and robust σ of `values` (NaN, NaN when empty): 1.4826 · MAD, or,
/// when the MAD is 0, √(π/2) · the mean absolute deviation from the median,
/// floored by [`floor_scale`]. `scratch` is working space.
pub(super) fn median_and_sigma(
    values: impl Iterator<Item = f64>,
    scratch: &mut Vec<f64>,
) -> (f64, f64) {
    scratch.clear();
    scratch.extend(values);
    if scratch.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    scratch.sort_unstable_by(f64::total_cmp);
    let median = median_of_sorted(scratch);
    let mut mean_ad = 0.0;
    for v in scratch.iter_mut() {
        *v = (*v - median).abs();
        mean_ad += *v;
    }
    mean_ad /= scratch.len() as f64;
    scratch.sort_unstable_by(f64::total_cmp);
    let mad = median_of_sorted(scratch);
    let sigma = if mad > 0.0 {
        MAD_TO_SIGMA * mad
    } else {
        MEAN_AD_TO_SIGMA * mean_ad
    };
    (median, floor_scale(sigma, median))
}

fn median_of_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

impl Model for RollingMad {
    fn observe(&mut self, _t: Millis, value: f64) -> Score {
        let (median, sigma) = self.location_scale();
        let half_width = self.cfg.z_half * sigma;
        let (lower, upper) = (median - half_width, median + half_width);
        let warming_up = self.buf.len() < self.cfg.min_points.max(1);
        if !value.is_finite() {
            return ignored(value, median, lower, upper, warming_up);
        }
        let score = if warming_up {
            0.0
        } else {
            let z = self.cfg.direction.deviation((value - median) / sigma);
            statistic_to_score(z, self.cfg.z_half)
        };
        if self.buf.len() == self.cfg.window {
            self.buf.pop_front();
        }
        self.buf.push_back(value);
        Score {
            score,
            expected: median,
            lower,
            upper,
            observed: value,
            warming_up,
        }
    }
}
