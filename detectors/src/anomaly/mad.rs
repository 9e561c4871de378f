//! Rolling median / MAD robust z-score.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{Direction, Model, Score, band_score, floor_scale};
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
/// Memory: the ring buffer of `window` values and the same values kept
/// sorted. Cost per point: a binary search and a shift of at most `window`
/// values to keep them sorted, then the MAD by merging outward from the
/// median (about `window / 2` steps); no sort. Only the ring buffer is
/// state: the sorted copy is rebuilt from it after a restore.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RollingMad {
    cfg: RollingMadConfig,
    pub(super) buf: VecDeque<f64>,
    /// `buf`'s values in `total_cmp` order (derived; rebuilt when its length
    /// disagrees with `buf`, e.g. after deserialising).
    #[serde(skip)]
    sorted: Vec<f64>,
}

impl PartialEq for RollingMad {
    fn eq(&self, other: &Self) -> bool {
        self.cfg == other.cfg && self.buf == other.buf
    }
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
            sorted: Vec::with_capacity(cfg.window),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &RollingMadConfig {
        &self.cfg
    }

    /// Median and robust σ of the window (NaN, NaN when empty).
    fn location_scale(&mut self) -> (f64, f64) {
        if self.sorted.len() != self.buf.len() {
            self.sorted.clear();
            self.sorted.extend(self.buf.iter().copied());
            self.sorted.sort_unstable_by(f64::total_cmp);
        }
        if self.sorted.is_empty() {
            return (f64::NAN, f64::NAN);
        }
        sigma_of_sorted(&self.sorted)
    }

    /// Append a finite value, dropping the oldest when full; keeps `sorted`.
    fn push(&mut self, value: f64) {
        if self.buf.len() == self.cfg.window
            && let Some(old) = self.buf.pop_front()
        {
            let i = self.sorted.partition_point(|v| v.total_cmp(&old).is_lt());
            if self
                .sorted
                .get(i)
                .is_some_and(|v| v.total_cmp(&old).is_eq())
            {
                self.sorted.remove(i);
            }
        }
        self.buf.push_back(value);
        let i = self.sorted.partition_point(|v| v.total_cmp(&value).is_le());
        self.sorted.insert(i, value);
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
    if scratch[0].is_finite() && scratch[scratch.len() - 1].is_finite() {
        return sigma_of_sorted(scratch);
    }
    // Non-finite values: sort the deviations as well (NaN last).
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

/// Median and robust σ of finite values sorted by `total_cmp` (not empty),
/// exactly as [`median_and_sigma`] computes them: the absolute deviations
/// from the median come in increasing order by merging outward from the
/// median, so the MAD needs no second sort. The values may be `f32`
/// (stored compactly); the arithmetic is in `f64`.
pub(super) fn sigma_of_sorted<T: Copy + Into<f64>>(sorted: &[T]) -> (f64, f64) {
    let n = sorted.len();
    let median = median_of_sorted(sorted);
    // [0, l) lies below the median, [r, n) at or above it.
    let mut r = sorted.partition_point(|v| (*v).into() < median);
    let mut l = r;
    let (mut prev, mut cur) = (0.0, 0.0);
    for _ in 0..=n / 2 {
        let below = (l > 0).then(|| (sorted[l - 1].into() - median).abs());
        let above = (r < n).then(|| (sorted[r].into() - median).abs());
        let d = match (below, above) {
            (Some(a), Some(b)) if a <= b => {
                l -= 1;
                a
            }
            (Some(a), None) => {
                l -= 1;
                a
            }
            (_, Some(b)) => {
                r += 1;
                b
            }
            (None, None) => break,
        };
        prev = cur;
        cur = d;
    }
    let mad = if n % 2 == 1 { cur } else { 0.5 * (prev + cur) };
    let sigma = if mad > 0.0 {
        MAD_TO_SIGMA * mad
    } else {
        // In the sorted order, as the sort-based version sums them.
        let mut mean_ad = 0.0;
        for v in sorted {
            mean_ad += ((*v).into() - median).abs();
        }
        MEAN_AD_TO_SIGMA * (mean_ad / n as f64)
    };
    (median, floor_scale(sigma, median))
}

fn median_of_sorted<T: Copy + Into<f64>>(v: &[T]) -> f64 {
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2].into()
    } else {
        0.5 * (v[n / 2 - 1].into() + v[n / 2].into())
    }
}

impl Model for RollingMad {
    fn observe(&mut self, _t: Millis, value: f64) -> Score {
        let expectation = self.location_scale();
        let warming_up = self.buf.len() < self.cfg.min_points.max(1);
        let answer = band_score(
            value,
            expectation,
            self.cfg.z_half,
            self.cfg.direction,
            warming_up,
        );
        if value.is_finite() {
            self.push(value);
        }
        answer
    }
}
