//! Seasonal baseline: a median and MAD per phase of a period detected from
//! the data.

use serde::{Deserialize, Serialize};

use super::mad::sigma_of_sorted;
use super::{Direction, Model, RollingMadConfig, Score, band_score, floor_scale};
use crate::Millis;

mod buckets;
mod compact;
mod history;

use buckets::Buckets;
use compact::{F32s, MAX_WINDOW, Window, to_f32, with_ready_sigmas, with_sorted};
use history::History;

/// One day in milliseconds.
pub const DAY_MS: Millis = 86_400_000;
/// One week in milliseconds.
pub const WEEK_MS: Millis = 7 * DAY_MS;

/// Parameters of [`Seasonal`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeasonalConfig {
    /// Phase buckets per period (at least 2): a daily period with 48
    /// buckets compares each value with the same half hour of past days.
    pub buckets: usize,
    /// Values kept per bucket (the most recent ones; at least 1). Memory:
    /// `buckets · per_bucket` values of 4 bytes.
    pub per_bucket: usize,
    /// Values a bucket needs before it is used; until then the
    /// non-seasonal fallback scores.
    pub min_per_bucket: usize,
    /// Slots of the downsampled history the period is detected from (at
    /// least 32). Each slot holds the mean of the values in one time slot;
    /// slots start as wide as the first sampling interval and double in
    /// width whenever the history is full, until it spans `max_span_ms`.
    pub history: usize,
    /// The time the history should cover once the series is long enough:
    /// about three times the longest period to find.
    pub max_span_ms: Millis,
    /// The period is detected again after this many new history slots.
    pub redetect_slots: usize,
    /// The autocorrelation a period needs (at its lag, and as the height of
    /// its peak above the lowest autocorrelation at shorter lags).
    pub min_acf: f64,
    /// Periods a detected period snaps to when it is within one history
    /// slot (or 5%) of them: by default one day and one week.
    pub snap_ms: [Millis; 2],
    /// A bucket's σ is at least this fraction of the median σ over all
    /// buckets, so a bucket whose few values happen to agree does not make
    /// every small deviation extreme.
    pub spread_floor: f64,
    /// The non-seasonal robust baseline used while no period is found (or
    /// the current bucket has too few values): a rolling median / MAD with
    /// these parameters (`window` at most 65 535). Its `z_half` and
    /// `direction` are overridden by this model's.
    pub fallback: RollingMadConfig,
    /// The robust z-score that scores ½.
    pub z_half: f64,
    /// Which side of the expected value counts.
    pub direction: Direction,
}

impl Default for SeasonalConfig {
    fn default() -> Self {
        SeasonalConfig {
            buckets: 48,
            per_bucket: 8,
            min_per_bucket: 3,
            history: 256,
            max_span_ms: 3 * WEEK_MS,
            redetect_slots: 32,
            min_acf: 0.3,
            snap_ms: [DAY_MS, WEEK_MS],
            spread_floor: 0.5,
            fallback: RollingMadConfig::default(),
            z_half: 5.0,
            direction: Direction::Both,
        }
    }
}

/// A seasonal baseline with the period found in the data.
///
/// * **Period.** Values are averaged into a downsampled history of at most
///   `history` time slots (so irregular sampling and gaps are fine). Every
///   `redetect_slots` new slots, the autocorrelation of the linearly
///   detrended history is computed at every lag up to half its length; the
///   period is the shortest lag whose autocorrelation peak reaches
///   `min_acf`, stands `min_acf` above the lowest value at shorter lags, and
///   is within 0.1 of the highest such peak (so a daily pattern is found as
///   one day, not two, and a weekly one as a week, not a day). A period
///   within one slot of a `snap_ms` entry (one day, one week) is set to it
///   exactly. No such peak: no period.
/// * **Baseline.** With a period `P`, a value at time `t` belongs to bucket
///   `⌊(t mod P) · buckets / P⌋`. Each bucket keeps its last `per_bucket`
///   values, and their median and robust σ (1.4826 · MAD). The expected
///   value is the bucket's median, interpolated linearly towards the
///   nearer neighbouring bucket's by the distance of `t` from the bucket's
///   centre; σ is the larger of the two buckets' σ, and at least
///   `spread_floor` times the median σ of all buckets. When the period
///   changes, the buckets are refilled from the history (one slot mean per
///   slot).
/// * **Fallback.** Without a period, or while the value's bucket has fewer
///   than `min_per_bucket` values, a rolling median / MAD over the last
///   `fallback.window` values (as [`RollingMad`](super::RollingMad))
///   scores instead; it learns every value, so it is always ready.
///
/// **Memory.** Every stored value is an `f32` offset from the first value
/// seen (the anchor, kept as `f64`), so a series far from zero keeps its
/// small variations; σ is never taken below the resolution of those `f32`
/// offsets (2⁻²² of the offset), so rounding alone never makes a value
/// extreme. The state is `buckets · per_bucket` values and a σ per bucket
/// (only while there is a period, boxed), at most `history` slot means,
/// and the fallback's window kept sorted with a 2-byte arrival number per
/// value: with the defaults 1 536 + 192 + 120 + 1 024 + 768 bytes of heap
/// and 328 inline, at most about 4 KB (`bench/results/detectors.md`
/// measures it after a week of minute data, when the history is not yet
/// full).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seasonal {
    cfg: SeasonalConfig,
    /// The first finite value; every stored value is an offset from it.
    anchor: Option<f64>,
    fallback: Window,
    history: History,
    period: Option<Millis>,
    /// The buckets of the period (`None` while there is none).
    buckets: Option<Box<Buckets>>,
}

/// σ is at least this fraction of the stored offset it is judged at: the
/// resolution of an `f32` (a rounding is at most 2⁻²⁴ of it).
const F32_RESOLUTION: f64 = 1.0 / (1u64 << 22) as f64;

impl Seasonal {
    /// A model with no history.
    pub fn new(cfg: SeasonalConfig) -> Self {
        let d = SeasonalConfig::default();
        let cfg = SeasonalConfig {
            buckets: cfg.buckets.max(2),
            per_bucket: cfg.per_bucket.max(1),
            min_per_bucket: cfg.min_per_bucket.clamp(1, cfg.per_bucket.max(1)),
            history: cfg.history.max(32),
            max_span_ms: cfg.max_span_ms.max(1),
            redetect_slots: cfg.redetect_slots.max(1),
            min_acf: if cfg.min_acf.is_finite() {
                cfg.min_acf
            } else {
                d.min_acf
            },
            spread_floor: if cfg.spread_floor >= 0.0 {
                cfg.spread_floor
            } else {
                d.spread_floor
            },
            fallback: RollingMadConfig {
                window: cfg.fallback.window.clamp(1, MAX_WINDOW),
                z_half: cfg.z_half,
                direction: cfg.direction,
                ..cfg.fallback
            },
            ..cfg
        };
        Seasonal {
            cfg,
            anchor: None,
            fallback: Window::default(),
            history: History::default(),
            period: None,
            buckets: None,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &SeasonalConfig {
        &self.cfg
    }

    /// The period in use, in milliseconds (`None`: no significant period,
    /// the non-seasonal fallback scores).
    pub fn period(&self) -> Option<Millis> {
        self.period
    }

    /// `value`'s offset from the anchor, within the range of an `f32`.
    fn offset(&self, value: f64) -> f64 {
        let x = value - self.anchor.unwrap_or(0.0);
        x.clamp(-f64::from(f32::MAX), f64::from(f32::MAX))
    }

    /// The σ to judge with at a stored offset `at`: `sigma`, but at least
    /// the resolution of `f32` offsets there and, as for every model, a
    /// tiny fraction of the level.
    fn scale(&self, sigma: f64, at: f64) -> f64 {
        let level = self.anchor.unwrap_or(0.0) + at;
        floor_scale(sigma.max(F32_RESOLUTION * at.abs()), level)
    }

    fn bucket_of(&self, t: Millis, period: Millis) -> usize {
        let phase = t.rem_euclid(period) as i128;
        (phase * self.cfg.buckets as i128 / period as i128) as usize
    }

    /// Expected value (an offset) and σ from the seasonal buckets, if they
    /// can judge `t`: the bucket's median, interpolated linearly towards
    /// the median of the nearer neighbouring bucket (so a steep part of the
    /// cycle is not judged against the middle of its bucket), and the
    /// larger σ of the two.
    fn seasonal_expectation(&mut self, t: Millis) -> Option<(f64, f64)> {
        let period = self.period?;
        let b = self.bucket_of(t, period);
        let cfg = &self.cfg;
        let buckets = self.buckets.as_deref_mut()?;
        if !buckets.ready(b) {
            return None;
        }
        let (mut expected, mut sigma) = buckets.stats(cfg, b);
        // Offset of t from the centre of its bucket, in buckets: [-½, ½).
        let pos = t.rem_euclid(period) as f64 * cfg.buckets as f64 / period as f64;
        let offset = pos - b as f64 - 0.5;
        let near = if offset >= 0.0 {
            (b + 1) % cfg.buckets
        } else {
            (b + cfg.buckets - 1) % cfg.buckets
        };
        if buckets.ready(near) {
            let (m, s) = buckets.stats(cfg, near);
            expected += offset.abs().min(0.5) * (m - expected);
            sigma = sigma.max(s);
        }
        let floor = cfg.spread_floor * buckets.pooled_sigma;
        Some((expected, self.scale(sigma.max(floor), expected)))
    }

    /// Adds an offset to its bucket (the oldest value goes when it is full)
    /// and updates the bucket's σ.
    fn learn_bucket(&mut self, t: Millis, x: f32) {
        let Some(period) = self.period else { return };
        let b = self.bucket_of(t, period);
        if let Some(buckets) = self.buckets.as_deref_mut() {
            buckets.push(&self.cfg, b, x, true);
        }
    }

    /// Refills the buckets from the history, one slot mean per slot, for
    /// the period now in use (and frees them when there is none).
    fn rebuild(&mut self) {
        let Some(period) = self.period else {
            self.buckets = None;
            return;
        };
        let mut buckets = Buckets::new(&self.cfg);
        for (t, x) in self.history.samples() {
            buckets.push(&self.cfg, self.bucket_of(t, period), x, false);
        }
        buckets.update_all(&self.cfg);
        self.buckets = Some(Box::new(buckets));
    }

    /// The period the history shows now, keeping the current one when it is
    /// too short to be checked at the history's resolution.
    fn redetect(&self) -> Option<Millis> {
        let width = self.history.width;
        if let Some(p) = self.period
            && p < MIN_LAG as Millis * width
        {
            return Some(p);
        }
        let level = self.anchor.unwrap_or(0.0);
        let lag = self.history.period_lag(self.cfg.min_acf, level)?;
        let found = lag as Millis * width;
        let snapped = self
            .cfg
            .snap_ms
            .into_iter()
            .filter(|&c| c > 0 && (c - found).abs() <= width.max(c / 20))
            .min_by_key(|&c| (c - found).abs());
        Some(snapped.unwrap_or(found))
    }

    /// The fallback's answer for `value` (it learns finite values).
    fn fallback_observe(&mut self, value: f64) -> Score {
        let fb = self.cfg.fallback;
        let expectation = match self.fallback.location_scale() {
            Some((m, s)) => (self.anchor.unwrap_or(0.0) + m, self.scale(s, m)),
            None => (f64::NAN, f64::NAN),
        };
        let warming_up = self.fallback.len() < fb.min_points.max(1);
        let answer = band_score(value, expectation, fb.z_half, fb.direction, warming_up);
        if value.is_finite() {
            self.fallback.push(to_f32(self.offset(value)), fb.window);
        }
        answer
    }
}

impl Model for Seasonal {
    fn observe(&mut self, t: Millis, value: f64) -> Score {
        if self.anchor.is_none() && value.is_finite() {
            self.anchor = Some(value);
        }
        if self.period.is_some() && !self.buckets.as_ref().is_some_and(|b| b.fit(&self.cfg)) {
            // A state from elsewhere whose buckets do not fit.
            self.rebuild();
        }
        // The fallback always learns, so it is ready whenever the seasonal
        // buckets are not; it also answers for non-finite values.
        let base = self.fallback_observe(value);
        let Some((expected, sigma)) = self.seasonal_expectation(t) else {
            if value.is_finite() {
                self.learn(t, value);
            }
            return base;
        };
        let expected = self.anchor.unwrap_or(0.0) + expected;
        let (z_half, direction) = (self.cfg.z_half, self.cfg.direction);
        let answer = band_score(value, (expected, sigma), z_half, direction, false);
        if value.is_finite() {
            self.learn(t, value);
        }
        answer
    }
}

impl Seasonal {
    /// Learns a finite value: its bucket, the history, and the period when
    /// it is due to be detected again.
    fn learn(&mut self, t: Millis, value: f64) {
        let x = self.offset(value);
        self.learn_bucket(t, to_f32(x));
        if self.history.add(t, x, &self.cfg) {
            let period = self.redetect();
            if period != self.period {
                self.period = period;
                self.rebuild();
            }
        }
    }
}

/// The shortest lag (in slots) a period is looked for at.
const MIN_LAG: usize = 4;

#[cfg(test)]
mod tests;
