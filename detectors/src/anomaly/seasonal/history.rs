//! The downsampled history the period is detected from.

use serde::{Deserialize, Serialize};

use super::{F32s, MIN_LAG, SeasonalConfig, to_f32};
use crate::Millis;

/// The series (offsets from the anchor) averaged into consecutive time
/// slots of `width` ms, aligned on `origin`: slot `i` covers
/// `[origin + i·width, origin + (i+1)·width)`. The newest slot is open and
/// sums its values in `f64`; the slots before it are closed and kept as
/// `f32` means.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct History {
    /// The first value, held until a later time gives the slot width.
    first: Option<(Millis, f64)>,
    origin: Millis,
    /// 0 until the first sampling interval is known.
    pub(super) width: Millis,
    /// Slot index of `means[0]`.
    start: i64,
    /// Mean of each closed slot, oldest first (NaN: no values).
    means: F32s,
    /// The newest slot, at index `start + means.len()` (`None` until the
    /// width is known).
    open: Option<Open>,
    /// New slots since the period was last detected.
    since_detect: usize,
}

/// The newest slot of the history.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Open {
    sum: f64,
    n: u32,
    /// When the slots were doubled while this one was open: the mean of the
    /// slot it was merged with (its earlier half).
    earlier: Option<f32>,
}

impl Open {
    fn new(x: f64) -> Self {
        Open {
            sum: x,
            n: 1,
            earlier: None,
        }
    }

    /// The mean of the slot: of its values, or of its two halves' means.
    fn mean(&self) -> f64 {
        let m = self.sum / f64::from(self.n.max(1));
        match self.earlier {
            Some(e) => 0.5 * (f64::from(e) + m),
            None => m,
        }
    }
}

/// The mean of two slots' means (NaN: no values).
fn combine(a: f32, b: f32) -> f32 {
    if a.is_nan() {
        b
    } else if b.is_nan() {
        a
    } else {
        to_f32(0.5 * (f64::from(a) + f64::from(b)))
    }
}

impl History {
    /// Slots held, closed and open.
    pub(super) fn len(&self) -> usize {
        self.means.len() + usize::from(self.open.is_some())
    }

    /// Adds an offset; true when it is time to detect the period again.
    /// A value older than the newest slot is not added.
    pub(super) fn add(&mut self, t: Millis, x: f64, cfg: &SeasonalConfig) -> bool {
        if self.width == 0 {
            match self.first {
                Some((t0, x0)) if t > t0 => {
                    self.origin = t0;
                    self.width = t - t0;
                    self.open = Some(Open::new(x0));
                    self.first = None;
                }
                Some(_) => return false,
                None => {
                    self.first = Some((t, x));
                    return false;
                }
            }
        }
        let i = (t - self.origin).div_euclid(self.width);
        let newest = self.start + self.means.len() as i64;
        match &mut self.open {
            Some(open) if i == newest => {
                open.sum += x;
                open.n = open.n.saturating_add(1);
            }
            Some(_) if i < newest => return false,
            open => {
                let end = newest + 1;
                match open.take() {
                    Some(closed) if i < end + cfg.history as i64 => {
                        self.means.push(to_f32(closed.mean()));
                        self.means.extend((end..i).map(|_| f32::NAN));
                        self.since_detect += (i - end + 1) as usize;
                    }
                    _ => {
                        self.means.clear();
                        self.start = i;
                        self.since_detect += 1;
                    }
                }
                self.open = Some(Open::new(x));
            }
        }
        let mut due = self.since_detect >= cfg.redetect_slots;
        while self.len() > cfg.history {
            if (cfg.history as i64).saturating_mul(self.width) < cfg.max_span_ms {
                self.double();
                due = true;
            } else {
                self.means.remove(0);
                self.start += 1;
            }
        }
        if due {
            self.since_detect = 0;
        }
        due
    }

    /// Merges pairs of slots (`2j` and `2j + 1`): twice the width, half the
    /// slots. Two closed slots merge into the mean of their means; a closed
    /// slot merged with the open one is kept as its earlier half.
    fn double(&mut self) {
        let new_start = self.start.div_euclid(2);
        let newest = self.start + self.means.len() as i64;
        let mut merged = 0;
        for k in 0..self.means.len() {
            let j = ((self.start + k as i64).div_euclid(2) - new_start) as usize;
            let m = self.means[k];
            if j == merged {
                self.means[merged] = m;
                merged += 1;
            } else {
                self.means[merged - 1] = combine(self.means[merged - 1], m);
            }
        }
        self.means.truncate(merged);
        if let Some(open) = &mut self.open
            && merged > 0
            && (newest.div_euclid(2) - new_start) as usize == merged - 1
            && let Some(earlier) = self.means.pop()
        {
            // (Slots double once per new slot at most, so `earlier` is
            // normally empty here.)
            let earlier = combine(earlier, open.earlier.unwrap_or(f32::NAN));
            open.earlier = (!earlier.is_nan()).then_some(earlier);
        }
        self.start = new_start;
        self.width = self.width.saturating_mul(2);
    }

    /// (centre time, mean) of every slot that has values.
    pub(super) fn samples(&self) -> impl Iterator<Item = (Millis, f32)> + '_ {
        let centre = |i: i64| self.origin + i * self.width + self.width / 2;
        let closed = self
            .means
            .iter()
            .enumerate()
            .filter(|(_, m)| !m.is_nan())
            .map(move |(k, &m)| (centre(self.start + k as i64), m));
        let newest = self.start + self.means.len() as i64;
        let open = self.open.map(|o| (centre(newest), to_f32(o.mean())));
        closed.chain(open)
    }

    /// The period's lag in slots, by the autocorrelation of the linearly
    /// detrended slot means (see [`Seasonal`](super::Seasonal)); `level` is
    /// the value the offsets are from.
    pub(super) fn period_lag(&self, min_acf: f64, level: f64) -> Option<usize> {
        let xs: Vec<Option<f64>> = self
            .means
            .iter()
            .map(|&m| (!m.is_nan()).then_some(f64::from(m)))
            .chain(self.open.map(|o| Some(o.mean())))
            .collect();
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
        if var.is_nan() || var <= 1e-12 * (level + sx / n).abs().max(1.0).powi(2) {
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
