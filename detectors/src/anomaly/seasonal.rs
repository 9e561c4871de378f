//! Seasonal baseline: a median and MAD per phase of a period detected from
//! the data.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::mad::median_and_sigma;
use super::{Direction, Model, RollingMad, RollingMadConfig, Score, statistic_to_score};
use crate::Millis;

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
    /// Values kept per bucket (the most recent ones; at least 1).
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
    /// the current bucket has too few values). Its `z_half` and
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
            per_bucket: 12,
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
///   `spread_floor` times the median σ of all buckets. When the period changes, the buckets are refilled from the
///   history (one raw value per slot).
/// * **Fallback.** Without a period, or while the value's bucket has fewer
///   than `min_per_bucket` values, a [`RollingMad`] over the recent values
///   scores instead; it learns every value, so it is always ready.
///
/// Memory: `buckets · per_bucket` values, `buckets` cached (median, σ)
/// pairs, `history` slots of three numbers, and the fallback's window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seasonal {
    cfg: SeasonalConfig,
    fallback: RollingMad,
    history: History,
    period: Option<Millis>,
    buckets: Vec<VecDeque<f64>>,
    /// Median and σ of each bucket (0 when empty: JSON has no NaN).
    stats: Vec<(f64, f64)>,
    /// Median σ over the buckets with at least `min_per_bucket` values (0
    /// when there are none).
    pooled_sigma: f64,
    #[serde(skip)]
    scratch: Vec<f64>,
}

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
                z_half: cfg.z_half,
                direction: cfg.direction,
                ..cfg.fallback
            },
            ..cfg
        };
        Seasonal {
            cfg,
            fallback: RollingMad::new(cfg.fallback),
            history: History::default(),
            period: None,
            buckets: vec![VecDeque::with_capacity(cfg.per_bucket); cfg.buckets],
            stats: vec![(0.0, 0.0); cfg.buckets],
            pooled_sigma: 0.0,
            scratch: Vec::with_capacity(cfg.per_bucket.max(cfg.buckets)),
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

    fn bucket_of(&self, t: Millis, period: Millis) -> usize {
        let phase = t.rem_euclid(period) as i128;
        (phase * self.cfg.buckets as i128 / period as i128) as usize
    }

    /// Expected value and σ from the seasonal buckets, if they can judge
    /// `t`: the bucket's median, interpolated linearly towards the median of
    /// the nearer neighbouring bucket (so a steep part of the cycle is not
    /// judged against the middle of its bucket), and the larger σ of the two.
    fn seasonal_expectation(&self, t: Millis) -> Option<(f64, f64)> {
        let period = self.period?;
        let buckets = self.cfg.buckets;
        let ready = |b: usize| self.buckets[b].len() >= self.cfg.min_per_bucket;
        let b = self.bucket_of(t, period);
        if !ready(b) {
            return None;
        }
        let (mut expected, mut sigma) = self.stats[b];
        // Offset of t from the centre of its bucket, in buckets: [-½, ½).
        let pos = t.rem_euclid(period) as f64 * buckets as f64 / period as f64;
        let offset = pos - b as f64 - 0.5;
        let near = if offset >= 0.0 {
            (b + 1) % buckets
        } else {
            (b + buckets - 1) % buckets
        };
        if ready(near) {
            let (m, s) = self.stats[near];
            expected += offset.abs().min(0.5) * (m - expected);
            sigma = sigma.max(s);
        }
        let floor = self.cfg.spread_floor * self.pooled_sigma;
        Some((expected, sigma.max(floor)))
    }

    fn learn_bucket(&mut self, t: Millis, value: f64) {
        let Some(period) = self.period else { return };
        let b = self.bucket_of(t, period);
        let bucket = &mut self.buckets[b];
        if bucket.len() == self.cfg.per_bucket {
            bucket.pop_front();
        }
        bucket.push_back(value);
        self.stats[b] = bucket_stats(bucket, &mut self.scratch);
        self.update_pooled();
    }

    fn update_pooled(&mut self) {
        self.scratch.clear();
        let min = self.cfg.min_per_bucket;
        self.scratch.extend(
            self.buckets
                .iter()
                .zip(&self.stats)
                .filter(|(b, _)| b.len() >= min)
                .map(|(_, s)| s.1),
        );
        self.pooled_sigma = if self.scratch.is_empty() {
            0.0
        } else {
            let mid = self.scratch.len() / 2;
            *self.scratch.select_nth_unstable_by(mid, f64::total_cmp).1
        };
    }

    /// Empties the buckets and refills them from the history, one value per
    /// slot, for the period now in use.
    fn rebuild(&mut self) {
        for b in &mut self.buckets {
            b.clear();
        }
        if let Some(period) = self.period {
            let points: Vec<(Millis, f64)> = self.history.samples().collect();
            for (t, v) in points {
                let b = self.bucket_of(t, period);
                let bucket = &mut self.buckets[b];
                if bucket.len() == self.cfg.per_bucket {
                    bucket.pop_front();
                }
                bucket.push_back(v);
            }
        }
        for b in 0..self.cfg.buckets {
            self.stats[b] = bucket_stats(&self.buckets[b], &mut self.scratch);
        }
        self.update_pooled();
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
        let lag = self.history.period_lag(self.cfg.min_acf)?;
        let found = lag as Millis * width;
        let snapped = self
            .cfg
            .snap_ms
            .into_iter()
            .filter(|&c| c > 0 && (c - found).abs() <= width.max(c / 20))
            .min_by_key(|&c| (c - found).abs());
        Some(snapped.unwrap_or(found))
    }
}

impl Model for Seasonal {
    fn observe(&mut self, t: Millis, value: f64) -> Score {
        // The fallback always learns, so it is ready whenever the seasonal
        // buckets are not; it also answers for non-finite values.
        let base = self.fallback.observe(t, value);
        let Some((expected, sigma)) = self.seasonal_expectation(t) else {
            if value.is_finite() {
                self.learn(t, value);
            }
            return base;
        };
        let half_width = self.cfg.z_half * sigma;
        let mut answer = Score {
            score: 0.0,
            expected,
            lower: expected - half_width,
            upper: expected + half_width,
            observed: value,
            warming_up: false,
        };
        if value.is_finite() {
            let z = self.cfg.direction.deviation((value - expected) / sigma);
            answer.score = statistic_to_score(z, self.cfg.z_half);
            self.learn(t, value);
        }
        answer
    }
}

impl Seasonal {
    /// Learns a finite value: its bucket, the history, and the period when
    /// it is due to be detected again.
    fn learn(&mut self, t: Millis, value: f64) {
        self.learn_bucket(t, value);
        if self.history.add(t, value, &self.cfg) {
            let period = self.redetect();
            if period != self.period {
                self.period = period;
                self.rebuild();
            }
        }
    }
}

/// Median and σ of a bucket; (0, 0) when it is empty.
fn bucket_stats(bucket: &VecDeque<f64>, scratch: &mut Vec<f64>) -> (f64, f64) {
    if bucket.is_empty() {
        (0.0, 0.0)
    } else {
        median_and_sigma(bucket.iter().copied(), scratch)
    }
}

/// The shortest lag (in slots) a period is looked for at.
const MIN_LAG: usize = 4;

/// One time slot of the downsampled history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct Slot {
    sum: f64,
    n: u32,
    /// The last raw value that fell in the slot (keeps the noise the mean
    /// smooths away, for refilling buckets).
    last: f64,
}

impl Slot {
    fn add(&mut self, value: f64) {
        self.sum += value;
        self.n += 1;
        self.last = value;
    }

    fn merge(&mut self, later: Slot) {
        if later.n > 0 {
            self.sum += later.sum;
            self.n += later.n;
            self.last = later.last;
        }
    }

    fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / f64::from(self.n))
    }
}

/// The series averaged into consecutive time slots of `width` ms, aligned
/// on `origin`: slot `i` covers `[origin + i·width, origin + (i+1)·width)`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct History {
    /// The first value, held until a later time gives the slot width.
    first: Option<(Millis, f64)>,
    origin: Millis,
    /// 0 until the first sampling interval is known.
    width: Millis,
    /// Slot index of `slots[0]`.
    start: i64,
    slots: VecDeque<Slot>,
    /// New slots since the period was last detected.
    since_detect: usize,
}

impl History {
    /// Adds a value; true when it is time to detect the period again.
    fn add(&mut self, t: Millis, value: f64, cfg: &SeasonalConfig) -> bool {
        if self.width == 0 {
            match self.first {
                Some((t0, v0)) if t > t0 => {
                    self.origin = t0;
                    self.width = t - t0;
                    self.slots.push_back(Slot::default());
                    self.slots[0].add(v0);
                    self.first = None;
                }
                Some(_) => return false,
                None => {
                    self.first = Some((t, value));
                    return false;
                }
            }
        }
        let i = (t - self.origin).div_euclid(self.width);
        let end = self.start + self.slots.len() as i64;
        if i < self.start {
            return false;
        }
        if i >= end + cfg.history as i64 {
            self.slots.clear();
            self.start = i;
        } else {
            for _ in end..=i {
                self.slots.push_back(Slot::default());
                self.since_detect += 1;
            }
        }
        if self.slots.is_empty() {
            self.slots.push_back(Slot::default());
            self.since_detect += 1;
        }
        let k = (i - self.start) as usize;
        self.slots[k].add(value);
        let mut due = self.since_detect >= cfg.redetect_slots;
        while self.slots.len() > cfg.history {
            if (cfg.history as i64).saturating_mul(self.width) < cfg.max_span_ms {
                self.double();
                due = true;
            } else {
                self.slots.pop_front();
                self.start += 1;
            }
        }
        if due {
            self.since_detect = 0;
        }
        due
    }

    /// Merges pairs of slots: twice the width, half the slots.
    fn double(&mut self) {
        let mut merged: VecDeque<Slot> = VecDeque::with_capacity(self.slots.len() / 2 + 1);
        let new_start = self.start.div_euclid(2);
        for (k, slot) in self.slots.iter().enumerate() {
            let j = (self.start + k as i64).div_euclid(2) - new_start;
            if j as usize == merged.len() {
                merged.push_back(*slot);
            } else if let Some(last) = merged.back_mut() {
                last.merge(*slot);
            }
        }
        self.slots = merged;
        self.start = new_start;
        self.width = self.width.saturating_mul(2);
    }

    /// (centre time, last raw value) of every slot that has values.
    fn samples(&self) -> impl Iterator<Item = (Millis, f64)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.n > 0)
            .map(|(k, s)| {
                let i = self.start + k as i64;
                (self.origin + i * self.width + self.width / 2, s.last)
            })
    }

    /// The period's lag in slots, by the autocorrelation of the linearly
    /// detrended slot means (see [`Seasonal`]).
    fn period_lag(&self, min_acf: f64) -> Option<usize> {
        let xs: Vec<Option<f64>> = self.slots.iter().map(Slot::mean).collect();
        let len = xs.len();
        let max_lag = len / 2;
        if max_lag <= MIN_LAG {
            return None;
        }
        // Least-squares line through the slot means.
        let (mut n, mut si, mut sx, mut sii, mut six) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (i, x) in xs.iter().enumerate() {
            if let Some(x) = *x {
                let i = i as f64;
                n += 1.0;
                si += i;
                sx += x;
                sii += i * i;
                six += i * x;
            }
        }
        if n < (2 * MIN_LAG) as f64 {
            return None;
        }
        let denom = n * sii - si * si;
        let slope = if denom > 0.0 {
            (n * six - si * sx) / denom
        } else {
            0.0
        };
        let intercept = (sx - slope * si) / n;
        let ys: Vec<f64> = xs
            .iter()
            .enumerate()
            .map(|(i, x)| x.map_or(f64::NAN, |x| x - (intercept + slope * i as f64)))
            .collect();
        let var = ys
            .iter()
            .filter(|y| !y.is_nan())
            .map(|y| y * y)
            .sum::<f64>()
            / n;
        if var.is_nan() || var <= 1e-12 * (sx / n).abs().max(1.0).powi(2) {
            return None;
        }
        // r[lag] for lag in 0..=max_lag + 1 (r[0] = 1).
        let mut r = vec![f64::NAN; max_lag + 2];
        r[0] = 1.0;
        for (lag, slot) in r.iter_mut().enumerate().skip(1) {
            let (mut sum, mut pairs) = (0.0, 0usize);
            for (a, b) in ys.iter().zip(&ys[lag..]) {
                if !a.is_nan() && !b.is_nan() {
                    sum += a * b;
                    pairs += 1;
                }
            }
            if pairs * 4 >= len {
                *slot = sum / (pairs as f64 * var);
            }
        }
        let mut lowest = f64::INFINITY;
        let mut peaks: Vec<(usize, f64)> = Vec::new();
        for lag in 1..=max_lag {
            let here = r[lag];
            if lag >= MIN_LAG
                && here >= min_acf
                && here - lowest >= min_acf
                && here >= r[lag - 1]
                && (r[lag + 1].is_nan() || here >= r[lag + 1])
            {
                peaks.push((lag, here));
            }
            if here < lowest {
                lowest = here;
            }
        }
        let best = peaks.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        peaks
            .into_iter()
            .find(|&(_, v)| v >= best - 0.1)
            .map(|(lag, _)| lag)
    }
}

#[cfg(test)]
mod tests;
