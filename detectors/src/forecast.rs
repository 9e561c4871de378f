//! Forecasting detector: a robust linear trend that predicts when a series
//! will cross a limit ("disk full in 3 h"), and fires when that time is
//! within a horizon.
//!
//! * **Trend.** Values are averaged into at most `points` time slots of
//!   `window_ms / points` each; slots older than `window_ms` are dropped.
//!   The trend is the Theil–Sen line through the slot means: the slope is
//!   the median of the slopes between every pair of slots, the level now is
//!   the median of `value − slope · (time − now)`. One outlier, or a few,
//!   barely moves either. The slope between two slots is the difference of
//!   their mean values over the difference of their mean times, the latter
//!   taken as the difference of the slots' starts (exact) plus that of the
//!   mean offsets within the slots, so it does not depend on when it is
//!   computed.
//! * **Time to breach.** For [`Comparison::Above`], with `gap = limit −
//!   level`: 0 if `gap ≤ 0` (already there), `gap / slope` if the slope is
//!   positive, and none otherwise (never, on this trend). `Below` mirrors
//!   it. The band comes from Sen's rank confidence interval on the slope
//!   (normal approximation with `confidence_z`) and the standard error of
//!   the level: the earliest breach uses the steepest plausible slope from
//!   the nearest plausible level, the latest the shallowest slope from the
//!   farthest level (none when that slope does not head for the limit).
//! * **Lifecycle.** A *breaching* observation is one whose predicted time
//!   to breach is at most `horizon_ms`. As for [`Threshold`](crate::Threshold):
//!   `Pending` for `hold_ms`, then `Firing`; while firing, an observation
//!   clears when its prediction is beyond `clear_horizon_ms` (or there is
//!   none), and after `clear_hold_ms` of clearing observations the answer
//!   is `Resolved`, once. Until `min_points` slots exist there is no
//!   prediction, which is not breaching.
//! * Non-finite values, and observations older than the last one, are
//!   ignored: the previous answer is repeated with `changed == false`.
//!
//! Memory: `points` slots of four numbers (at most 256 slots), and, derived
//! from them (not saved), the pairs of closed slots (all but the newest) in
//! the order of their slopes, two bytes a pair (465 pairs, 930 bytes, for
//! 32 slots). Cost per observation: the slopes from the newest slot to the
//! others (`points − 1`), sorted (nearly in order already: insertion), and
//! a few binary searches in the two sorted lists for the ranks the median
//! and its band need; when a slot closes, the slopes of the closed pairs
//! are computed again (O(points²): one division per pair) and those of the
//! slot just closed merged in. The answers are those of sorting all the
//! pairwise slopes (a test checks it bit for bit).
//!
//! # Example
//!
//! ```
//! use medic_detectors::forecast::{Forecast, ForecastConfig};
//! use medic_detectors::{Comparison, State};
//!
//! let mut disk = Forecast::new(ForecastConfig {
//!     comparison: Comparison::Above,
//!     limit: 100.0,
//!     horizon_ms: 4 * 3_600_000,
//!     hold_ms: 0,
//!     ..ForecastConfig::default()
//! });
//! // 1 % per 10 minutes from 40 %: full 10 h after 0.
//! let mut last = None;
//! for k in 0..=40 {
//!     last = Some(disk.observe(k * 600_000, 40.0 + k as f64));
//! }
//! // At 6 h 40 m the disk is at 80 % and 20 % from full: 3 h 20 m to go.
//! let e = last.unwrap();
//! assert_eq!(e.state, State::Firing);
//! let p = disk.prediction().unwrap();
//! assert_eq!(p.breach_in_ms, Some(12_000_000));
//! ```

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::anomaly::{Score, statistic_to_score};
use crate::fmt::{Eta, Num};
use crate::machine::Machine;
use crate::{Comparison, Evaluation, Millis, State};

mod slopes;
#[cfg(test)]
mod tests;

use slopes::{MAX_POINTS, Mean, STACK, SlopeOrder, buffer, nth_of_two, pair_slope};

/// Configuration of a [`Forecast`] detector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForecastConfig {
    /// Which crossing is bad: `Above` for a value rising to `limit` (disk
    /// usage), `Below` for one falling to it (free space).
    pub comparison: Comparison,
    /// The value whose crossing is predicted, e.g. 100 (% of capacity).
    pub limit: f64,
    /// Fire when the predicted crossing is at most this far ahead.
    pub horizon_ms: Millis,
    /// How long (ms) the prediction must stay within the horizon before
    /// firing. Negative counts as 0.
    pub hold_ms: Millis,
    /// Hysteresis: while firing, an observation clears only when its
    /// predicted crossing is further than this (or there is none). Values
    /// below `horizon_ms` count as `horizon_ms`.
    pub clear_horizon_ms: Millis,
    /// How long (ms) the clear condition must hold before resolving.
    pub clear_hold_ms: Millis,
    /// The trend is fitted over this much recent time.
    pub window_ms: Millis,
    /// Time slots the window is divided into (at least 2, at most 256):
    /// the memory.
    pub points: usize,
    /// Slots with values needed before anything is predicted (at least 2).
    pub min_points: usize,
    /// Width of the confidence band on the slope, in standard normal
    /// quantiles (1.96: about 95 %).
    pub confidence_z: f64,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        ForecastConfig {
            comparison: Comparison::Above,
            limit: 100.0,
            horizon_ms: 4 * 3_600_000,
            hold_ms: 10 * 60_000,
            clear_horizon_ms: 6 * 3_600_000,
            clear_hold_ms: 10 * 60_000,
            window_ms: 2 * 3_600_000,
            points: 32,
            min_points: 8,
            confidence_z: 1.96,
        }
    }
}

/// What the trend says at one observation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Time of the observation the prediction was made at.
    pub at: Millis,
    /// The trend's value at `at`.
    pub level: f64,
    /// The trend's slope, in units per hour.
    pub slope_per_hour: f64,
    /// Predicted time (ms from `at`) until the limit is crossed: 0 when the
    /// trend is already past it, `None` when it is not heading there.
    pub breach_in_ms: Option<Millis>,
    /// The earliest plausible crossing (steepest slope of the band).
    pub earliest_ms: Option<Millis>,
    /// The latest plausible crossing (`None`: possibly never).
    pub latest_ms: Option<Millis>,
    /// Robust σ of the slot means around the trend line.
    pub sigma: f64,
}

/// One time slot of the window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Slot {
    index: i64,
    n: u32,
    /// Sum of (time − slot start) in ms.
    sum_dt: f64,
    sum_v: f64,
}

/// Predicts when a series will cross a limit and fires ahead of it.
///
/// See the [module documentation](self) for the method and lifecycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    cfg: ForecastConfig,
    width: Millis,
    slots: VecDeque<Slot>,
    machine: Machine,
    /// The last observation judged: (time, value).
    last: Option<(Millis, f64)>,
    prediction: Option<Prediction>,
    /// The pairwise slopes in order (derived from `slots`).
    #[serde(skip)]
    order: SlopeOrder,
}

impl Forecast {
    /// A detector in state [`State::Ok`] that has seen nothing yet.
    pub fn new(cfg: ForecastConfig) -> Self {
        let points = cfg.points.clamp(2, MAX_POINTS);
        let cfg = ForecastConfig {
            points,
            min_points: cfg.min_points.clamp(2, points),
            window_ms: cfg.window_ms.max(points as Millis),
            horizon_ms: cfg.horizon_ms.max(0),
            clear_horizon_ms: cfg.clear_horizon_ms.max(cfg.horizon_ms.max(0)),
            confidence_z: if cfg.confidence_z >= 0.0 {
                cfg.confidence_z
            } else {
                ForecastConfig::default().confidence_z
            },
            ..cfg
        };
        Forecast {
            cfg,
            width: cfg.window_ms / points as Millis,
            slots: VecDeque::with_capacity(points),
            machine: Machine::new(cfg.hold_ms, cfg.clear_hold_ms),
            last: None,
            prediction: None,
            order: SlopeOrder::default(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &ForecastConfig {
        &self.cfg
    }

    /// The state answered by the last (non-ignored) observation.
    pub fn state(&self) -> State {
        self.machine.state()
    }

    /// The prediction made at the last (non-ignored) observation.
    pub fn prediction(&self) -> Option<Prediction> {
        self.prediction
    }

    /// The last prediction as an anomaly [`Score`]: ½ when the crossing is
    /// predicted exactly `horizon_ms` ahead, rising towards 1 as it nears
    /// (about 0.94 at half the horizon, 1 once crossed), 0 with no
    /// prediction. `expected` is the trend's level, the band ± 3 σ of the
    /// slot means around the trend.
    pub fn score(&self) -> Score {
        let observed = self.last.map_or(f64::NAN, |l| l.1);
        let Some(p) = self.prediction else {
            return Score {
                score: 0.0,
                expected: f64::NAN,
                lower: f64::NAN,
                upper: f64::NAN,
                observed,
                warming_up: true,
            };
        };
        let score = match p.breach_in_ms {
            Some(0) => 1.0,
            Some(eta) => statistic_to_score(self.cfg.horizon_ms as f64 / eta as f64, 1.0),
            None => 0.0,
        };
        Score {
            score,
            expected: p.level,
            lower: p.level - 3.0 * p.sigma,
            upper: p.level + 3.0 * p.sigma,
            observed,
            warming_up: false,
        }
    }

    /// Judges the sample `value` taken at time `t`.
    pub fn observe(&mut self, t: Millis, value: f64) -> Evaluation {
        match self.judge(t, value, true) {
            Some(e) => e,
            None => unreachable!("judge answers every sample when asked to"),
        }
    }

    /// Like [`observe`](Self::observe), but builds the evaluation (and its
    /// reason text) only when the state changed, for callers that act on
    /// changes alone. The trend and the state machine step exactly as with
    /// `observe`.
    pub fn observe_change(&mut self, t: Millis, value: f64) -> Option<Evaluation> {
        self.judge(t, value, false)
    }

    fn judge(&mut self, t: Millis, value: f64, always: bool) -> Option<Evaluation> {
        if !value.is_finite() {
            return always
                .then(|| self.ignored(t, value, "ignored: value is not finite".to_owned()));
        }
        if let Some((last, _)) = self.last.filter(|&(last, _)| t < last) {
            return always.then(|| {
                let reason = format!("ignored: sample at {t} is older than the last one at {last}");
                self.ignored(t, value, reason)
            });
        }
        self.last = Some((t, value));
        self.add(t, value);
        self.prediction = self.predict(t);
        let eta = self.prediction.and_then(|p| p.breach_in_ms);
        let breach = eta.is_some_and(|e| e <= self.cfg.horizon_ms);
        let clear = eta.is_none_or(|e| e > self.cfg.clear_horizon_ms);
        let step = self.machine.step(t, breach, clear);
        (always || step.changed).then(|| step.evaluation(t, value, self.cfg.limit, self.reason()))
    }

    fn ignored(&self, t: Millis, value: f64, reason: String) -> Evaluation {
        self.machine.repeat(t, value, self.cfg.limit, reason)
    }

    fn add(&mut self, t: Millis, value: f64) {
        let index = t.div_euclid(self.width);
        let start = index * self.width;
        match self.slots.back_mut() {
            Some(s) if s.index == index => {
                s.n += 1;
                s.sum_dt += (t - start) as f64;
                s.sum_v += value;
                return;
            }
            _ => self.slots.push_back(Slot {
                index,
                n: 1,
                sum_dt: (t - start) as f64,
                sum_v: value,
            }),
        }
        let oldest = index - self.cfg.points as i64 + 1;
        let mut dropped = 0;
        while self.slots.front().is_some_and(|s| s.index < oldest) {
            self.slots.pop_front();
            dropped += 1;
        }
        self.order.slot_closed(&self.slots, dropped, self.width);
    }

    /// The Theil–Sen trend and time to breach at `now`.
    fn predict(&mut self, now: Millis) -> Option<Prediction> {
        let n = self.slots.len();
        if n < self.cfg.min_points {
            return None;
        }
        self.order.ensure(&self.slots, self.width);
        let width = self.width;
        let (mut means, mut heap) = ([Mean::default(); STACK], Vec::new());
        let means = buffer(&mut means, &mut heap, n);
        for (m, s) in means.iter_mut().zip(&self.slots) {
            *m = s.mean(width);
        }
        // The slopes from the newest slot (still filling) to the others.
        let (mut recent, mut heap) = ([0.0; STACK], Vec::new());
        let recent = buffer(&mut recent, &mut heap, n);
        let k = self.order.recent_slopes(means, recent);
        let recent = &recent[..k];
        let closed = self.order.closed();
        // The slope of rank r (from 0) among all pairs.
        let rank = |r: usize| {
            nth_of_two(
                r,
                closed.len(),
                |i| {
                    let [a, b] = closed[i];
                    let (a, b) = (&means[usize::from(a)], &means[usize::from(b)]);
                    pair_slope(a, b).unwrap_or(f64::NAN)
                },
                recent,
            )
        };
        let pairs = closed.len() + recent.len();
        let slopes = sen_slopes(n, pairs, rank, self.cfg.confidence_z)?;
        Some(self.prediction_from(now, means, slopes))
    }

    /// The prediction at `now` from the slots' means and the trend's slope
    /// with its band (`sen_slopes`): the level is the median of `value −
    /// slope · (time − now)`.
    fn prediction_from(
        &self,
        now: Millis,
        means: &[Mean],
        (slope, slope_lo, slope_hi): (f64, f64, f64),
    ) -> Prediction {
        let width = self.width;
        // (time relative to now in ms, mean value) of each slot.
        let at = |m: &Mean| ((m.index * width - now) as f64 + m.dt, m.v);
        let (mut residuals, mut heap) = ([0.0; STACK], Vec::new());
        let residuals = buffer(&mut residuals, &mut heap, means.len());
        for (r, m) in residuals.iter_mut().zip(means) {
            let (t, v) = at(m);
            *r = v - slope * t;
        }
        let level = median(residuals);
        for (r, m) in residuals.iter_mut().zip(means) {
            let (t, v) = at(m);
            *r = (v - level - slope * t).abs();
        }
        let sigma = 1.482_602_218_505_602 * median(residuals);
        let nf = means.len() as f64;
        // Distance to the limit and rates towards it, for either side.
        let (gap, rate, rate_fast, rate_slow) = match self.cfg.comparison {
            Comparison::Above => (self.cfg.limit - level, slope, slope_hi, slope_lo),
            Comparison::Below => (level - self.cfg.limit, -slope, -slope_lo, -slope_hi),
        };
        // Standard error of the level (a median: 1.2533 σ / √n), at the
        // band's confidence.
        let level_err = self.cfg.confidence_z * 1.253_314_137_315_500_3 * sigma / nf.sqrt();
        let eta = |gap: f64, rate: f64| -> Option<Millis> {
            if gap <= 0.0 {
                Some(0)
            } else if rate > 0.0 {
                let ms = gap / rate;
                (ms < 9.0e15).then(|| ms.round() as Millis)
            } else {
                None
            }
        };
        Prediction {
            at: now,
            level,
            slope_per_hour: slope * 3_600_000.0,
            breach_in_ms: eta(gap, rate),
            earliest_ms: eta(gap - level_err, rate_fast),
            latest_ms: eta(gap + level_err, rate_slow),
            sigma,
        }
    }

    fn reason(&self) -> String {
        let limit = Num(self.cfg.limit);
        let Some(p) = self.prediction else {
            return format!(
                "not enough history to predict: {} of {} slots",
                self.slots.len(),
                self.cfg.min_points
            );
        };
        let (level, trend) = (Num(p.level), Num(p.slope_per_hour));
        match (p.breach_in_ms, p.earliest_ms, p.latest_ms) {
            (Some(0), _, _) => format!("trend {level} is already past {limit}"),
            (Some(eta), earliest, latest) => {
                let earliest = earliest.map_or(DurOr::Word("?"), |e| DurOr::Eta(Eta(e)));
                let latest = latest.map_or(DurOr::Word("never"), |l| DurOr::Eta(Eta(l)));
                format!(
                    "trend {level} at {trend}/h reaches {limit} in {} (between {earliest} and \
                     {latest}), horizon {}",
                    Eta(eta),
                    Eta(self.cfg.horizon_ms)
                )
            }
            (None, _, _) => format!("trend {level} at {trend}/h is not heading for {limit}"),
        }
    }
}

/// A duration, or a word in its place.
enum DurOr {
    Eta(Eta),
    Word(&'static str),
}

impl std::fmt::Display for DurOr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DurOr::Eta(d) => d.fmt(f),
            DurOr::Word(w) => f.write_str(w),
        }
    }
}

/// The Theil–Sen slope (the median of the `pairs` pairwise slopes of `n`
/// slots) and Sen's confidence band around it (the slopes of ranks
/// (N ∓ C)/2), from `rank(r)`, the slope of rank `r` (from 0); `None`
/// without pairs.
fn sen_slopes(
    n: usize,
    pairs: usize,
    rank: impl Fn(usize) -> f64,
    z: f64,
) -> Option<(f64, f64, f64)> {
    if pairs == 0 {
        return None;
    }
    let slope = if pairs % 2 == 1 {
        rank(pairs / 2)
    } else {
        0.5 * (rank(pairs / 2 - 1) + rank(pairs / 2))
    };
    let nf = n as f64;
    let c = z * (nf * (nf - 1.0) * (2.0 * nf + 5.0) / 18.0).sqrt();
    let lo_rank = ((pairs as f64 - c) / 2.0).round().max(1.0) as usize - 1;
    let hi_rank = (((pairs as f64 + c) / 2.0).round() as usize).min(pairs - 1);
    Some((slope, rank(lo_rank), rank(hi_rank)))
}

/// The median of `v` (reordered; NaN when empty).
fn median(v: &mut [f64]) -> f64 {
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    let hi = *v.select_nth_unstable_by(n / 2, f64::total_cmp).1;
    if n % 2 == 1 {
        hi
    } else {
        let lo = v[..n / 2].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        0.5 * (lo + hi)
    }
}
