//! Statistical anomaly detectors for numeric series.
//!
//! Every detector here implements [`Model`]: it is fed one observation at a
//! time (`observe(t, value)`) and answers a [`Score`] for that observation,
//! judged only against the observations before it (causal). The score is in
//! `[0, 1]`, higher meaning more anomalous, and comes with the value the
//! model expected and the band around it.
//!
//! The detectors are pure and deterministic: no I/O, no clock, no
//! randomness. Memory per series is bounded (fixed-size ring buffers or a
//! few running sums). State is `Clone` and serde-serialisable so a caller
//! can save and restore it. Non-finite inputs (NaN, ±∞) are ignored: they
//! get a score of 0 and leave the state untouched.
//!
//! * [`RollingMad`]: robust z-score against the rolling median and median
//!   absolute deviation (MAD) of the last `window` points.
//! * [`Ewma`]: exponentially weighted mean and variance control chart.
//! * [`PageHinkley`]: two-sided CUSUM / Page–Hinkley change-point statistic
//!   on the signal standardised by a slow EWMA.
//! * [`Seasonal`]: a median and MAD per phase bucket of a period detected
//!   from the data (autocorrelation of a bounded, downsampled history; a
//!   day and a week are recognised exactly), so a value normal at noon can
//!   be alarming at 3 a.m.; without a significant period it falls back to
//!   a rolling median / MAD.
//! * [`Cluster`]: a learned model — k-means (linfa-clustering, fixed
//!   seed) on four features of sliding windows (level, slope, spread,
//!   last-value z), refitted periodically on recent windows judged normal;
//!   the score is the distance to the nearest centroid against the
//!   training distances' 99th percentile. It catches changes of shape
//!   (a series that stops oscillating) that stay inside the usual range.
//! * [`Contextual`]: a contextual anomaly detector after CAD OSE (a
//!   leading NAB entry): values are quantised into bins of a range learnt
//!   causally (it doubles, re-expressing the memory, when a value falls
//!   outside), and an online memory learns which facts follow which
//!   contexts (a step's bin bits plus the contexts that foresaw it); the
//!   score is how much of the present the contexts that held failed to
//!   predict and how much had to be learnt as new, with a rest period
//!   after each alarm. Bounded by a maximum number of contexts (least
//!   recently used forgotten). It catches breaks of a learnt sequence as
//!   well as values outside everything seen.
//! * [`Art`]: fuzzy ART (adaptive resonance theory, with dual vigilance)
//!   on features of a short sliding window: its last value, its shape
//!   (scaled by its own minimum and maximum) and its Haar wavelet
//!   transform, in a range learnt causally (set by held-back first values,
//!   stretched when a value falls outside, the learnt categories
//!   re-expressed exactly). An input that matches no learnt cluster well
//!   enough (the lower vigilance follows the running level of the best
//!   match) founds a new cluster: an anomaly, scored by how far its match
//!   fell below that level, with a rest period after it. Bounded by a
//!   maximum number of categories (least recently used forgotten). It
//!   catches new levels and new shapes of the recent values.
//! * [`Ensemble`]: the maximum of the members configured (by default
//!   median / MAD, EWMA and Page–Hinkley; optionally the seasonal
//!   baseline, window clustering and the contextual model), with noise
//!   controls (direction, minimum absolute deviation, warm-up) and
//!   suppression of repeated alarms for the same episode.
//!
//! [`Multivariate`] is not a [`Model`]: it judges a vector of metrics of
//! one service per time (`observe(t, &[f64]) -> MultiScore`). Each metric
//! is robustly standardised, PCA (exact eigendecomposition, linfa-linalg) is fitted on
//! a bounded reservoir of recent normal rows and refitted periodically, and
//! the score combines the squared prediction error (distance from the
//! principal subspace: a broken correlation) and Hotelling's T² (too far
//! within it), with each metric's share of it (which metric is at fault).
//!
//! The learned models keep their fitted parameters as plain numbers in
//! their state, so a restored model answers bit for bit as the original.
//! A fit on degenerate data that makes linfa panic is caught and the
//! previous fit kept.
//!
//! The forecasting detector ("disk full in 3 h") is a lifecycle detector,
//! not a score: see [`crate::forecast`]. Its
//! [`score`](crate::forecast::Forecast::score) is a [`Score`] too.
//!
//! Saving and restoring: serialise a model with serde and deserialise it
//! later; it continues exactly where it stopped (the save/restore tests
//! check bit-identical answers through `serde_json`, whose
//! `float_roundtrip` feature is needed for exact floats).
//!
//! Statistics are mapped to scores by [`statistic_to_score`], a monotone
//! log-logistic curve that is 0 at 0, ½ at the detector's `z_half`, and
//! approaches 1 without saturating early (so large deviations stay ordered).

mod art;
mod cluster;
mod contextual;
mod ensemble;
mod ewma;
mod mad;
mod multivariate;
mod page_hinkley;
mod seasonal;

pub use art::{Art, ArtConfig, RangeGrowth};
pub use cluster::{Cluster, ClusterConfig};
pub use contextual::{Contextual, ContextualConfig};
pub use ensemble::{Combine, Ensemble, EnsembleConfig};
pub use ewma::{Ewma, EwmaConfig};
pub use mad::{RollingMad, RollingMadConfig};
pub use multivariate::{MultiScore, Multivariate, MultivariateConfig};
pub use page_hinkley::{PageHinkley, PageHinkleyConfig};
pub use seasonal::{DAY_MS, Seasonal, SeasonalConfig, WEEK_MS};

use serde::{Deserialize, Serialize};

use crate::Millis;

/// The answer of a [`Model`] to one observation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// How anomalous the observation is, in `[0, 1]` (0 = normal).
    pub score: f64,
    /// The value the model expected (its location estimate before this
    /// observation).
    pub expected: f64,
    /// Lower edge of the expected band: values inside `[lower, upper]`
    /// score at most ½ on their own.
    pub lower: f64,
    /// Upper edge of the expected band.
    pub upper: f64,
    /// The observation judged, as given (possibly NaN).
    pub observed: f64,
    /// True while the model has too little history to judge; the score is
    /// then 0.
    pub warming_up: bool,
}

/// A streaming anomaly model over one series.
pub trait Model {
    /// Judges `value` observed at time `t` against the history so far, then
    /// learns from it. Non-finite values are scored 0 and not learnt.
    fn observe(&mut self, t: Millis, value: f64) -> Score;
}

/// Which deviations count as anomalous.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Only values above the expected value.
    Up,
    /// Only values below the expected value.
    Down,
    /// Both sides.
    #[default]
    Both,
}

impl Direction {
    /// The part of a signed deviation (`observed − expected`, or a z-score)
    /// this direction counts: non-negative, 0 for the ignored side.
    pub fn deviation(self, signed: f64) -> f64 {
        let d = match self {
            Direction::Up => signed,
            Direction::Down => -signed,
            Direction::Both => signed.abs(),
        };
        if d > 0.0 { d } else { 0.0 }
    }
}

/// Maps a non-negative statistic to a score in `[0, 1]`:
/// `1 / (1 + (z_half / stat)⁴)` — 0 at 0, ½ at `z_half`, about 0.94 at
/// `2·z_half`, strictly increasing, and 1 only when `stat` exceeds
/// `z_half` by some 10⁴. NaN, negative or zero statistics score 0; a
/// non-positive `z_half` is treated as the smallest positive number.
pub fn statistic_to_score(stat: f64, z_half: f64) -> f64 {
    if stat.is_nan() || stat <= 0.0 {
        return 0.0;
    }
    let half = if z_half > 0.0 {
        z_half
    } else {
        f64::MIN_POSITIVE
    };
    let r = half / stat;
    let r2 = r * r;
    (1.0 / (1.0 + r2 * r2)).clamp(0.0, 1.0)
}

/// A scale that is never 0: `scale`, or a tiny fraction of the level when
/// the history has no spread (a constant series), so that any change from
/// a constant is extreme but a repeat of it is not.
fn floor_scale(scale: f64, level: f64) -> f64 {
    let floor = 1e-9 * level.abs().max(1.0);
    if scale > floor { scale } else { floor }
}

/// The answer of a model that expects `expected` with scale `sigma`: the
/// band `expected ± z_half · sigma` and the score of the robust z-score
/// `(value − expected) / sigma` on the `direction` side; 0 while warming
/// up, and for a non-finite value (which the model does not learn).
fn band_score(
    value: f64,
    (expected, sigma): (f64, f64),
    z_half: f64,
    direction: Direction,
    warming_up: bool,
) -> Score {
    let half_width = z_half * sigma;
    let (lower, upper) = (expected - half_width, expected + half_width);
    let unscored = ignored(value, expected, lower, upper, warming_up);
    if warming_up || !value.is_finite() {
        return unscored;
    }
    let z = direction.deviation((value - expected) / sigma);
    Score {
        score: statistic_to_score(z, z_half),
        ..unscored
    }
}

/// A score for a non-finite observation: 0, with the model's current
/// expectation.
fn ignored(value: f64, expected: f64, lower: f64, upper: f64, warming_up: bool) -> Score {
    Score {
        score: 0.0,
        expected,
        lower,
        upper,
        observed: value,
        warming_up,
    }
}

/// Which points the learned models ([`Cluster`], [`Multivariate`]) may
/// train on: those that scored below a bound. So that a lasting change (a
/// new normal) is not excluded forever, after `adapt_after` rejections in a
/// row every point is admitted again until one scores below the bound.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct NormalGate {
    rejected_run: u64,
}

impl NormalGate {
    /// Whether a point with `score` joins the training data.
    pub(crate) fn admit(&mut self, score: f64, bound: f64, adapt_after: u64) -> bool {
        if score < bound {
            self.rejected_run = 0;
            return true;
        }
        self.rejected_run = self.rejected_run.saturating_add(1);
        self.rejected_run > adapt_after
    }
}

/// A standardised value safe to fit on: NaN (e.g. ∞ / ∞) is 0 and the
/// rest is clamped to ±10⁶, so sums of squares stay finite; the learned
/// models' fits (linfa) panic on non-finite data.
pub(crate) fn bounded(z: f64) -> f64 {
    if z.is_nan() { 0.0 } else { z.clamp(-1e6, 1e6) }
}

/// Runs a linfa fit, turning a panic into `None`. linfa's eigensolver
/// (LOBPCG) can panic on degenerate data (for example "NaN values in
/// array" on a nearly rank-deficient reservoir); a detector then keeps its
/// previous fit rather than taking the caller down. The panic message still
/// reaches the process's panic hook.
pub(crate) fn fit_guarded<T>(fit: impl FnOnce() -> Option<T>) -> Option<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(fit))
        .ok()
        .flatten()
}

/// The `q`-quantile (`0 ≤ q ≤ 1`) of `values`, sorted in place: the
/// element at rank `⌈q·n⌉ − 1` (NaN when empty).
pub(crate) fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_unstable_by(f64::total_cmp);
    let rank = (q.clamp(0.0, 1.0) * values.len() as f64).ceil() as usize;
    values[rank.saturating_sub(1).min(values.len() - 1)]
}

#[cfg(test)]
mod tests;

/// An exponentially weighted estimate of a series' level and spread: the
/// baseline both the EWMA chart and Page-Hinkley measure deviations against.
/// Each point's weight is at least 1/n, so early estimates are plain averages
/// rather than biased towards the first value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct EwBaseline {
    n: u64,
    mean: f64,
    var: f64,
}

impl EwBaseline {
    /// Points learnt so far.
    pub(crate) fn count(&self) -> u64 {
        self.n
    }

    /// Expected value and scale for the next point (NaN with no history).
    pub(crate) fn expected_sigma(&self) -> (f64, f64) {
        if self.n == 0 {
            (f64::NAN, f64::NAN)
        } else {
            (self.mean, floor_scale(self.var.sqrt(), self.mean))
        }
    }

    /// Learn one point with smoothing factor `alpha`.
    pub(crate) fn learn(&mut self, alpha: f64, value: f64) {
        self.n += 1;
        if self.n == 1 {
            self.mean = value;
            return;
        }
        let a = alpha.max(1.0 / self.n as f64);
        let d = value - self.mean;
        self.mean += a * d;
        self.var = (1.0 - a) * (self.var + a * d * d);
    }

    /// Count a point but move the level straight to it (after a declared
    /// change), keeping the spread.
    pub(crate) fn restart_at(&mut self, value: f64) {
        self.n += 1;
        self.mean = value;
    }
}
