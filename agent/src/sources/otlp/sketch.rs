//! A mergeable quantile sketch for span latencies, and a sliding window of
//! them.
//!
//! [`Sketch`] follows DDSketch (Masson, Rim, Lee, VLDB 2019): a positive value
//! `x` goes to bucket `ceil(log_γ x)` with `γ = (1 + α) / (1 − α)`, and a
//! bucket answers `2γ^i / (γ + 1)`, which is within relative error `α` of
//! every value in it. With `α` = 1 % every sketch has the same buckets, so two
//! sketches merge by adding counts and the merge is exact (the same as one
//! sketch of all values). Memory is bounded: at most [`MAX_BINS`] buckets
//! (1 ns to beyond a day at 1 %); beyond that the lowest buckets fold together,
//! which only coarsens the smallest values.
//!
//! [`Window`] keeps one sketch per slot of time (e.g. six 10-second slots for
//! a one-minute window) and merges the slots still inside the window on
//! demand; old slots are dropped as time moves on. Time is an argument.

use std::collections::VecDeque;

use crate::series::Millis;

/// Relative accuracy of every quantile a sketch answers.
pub const ALPHA: f64 = 0.01;
/// Most buckets one sketch holds.
pub const MAX_BINS: usize = 2048;
/// Values at or below this (and negative ones) count as zero.
pub const MIN_VALUE: f64 = 1e-9;

fn ln_gamma() -> f64 {
    ((1.0 + ALPHA) / (1.0 - ALPHA)).ln()
}

/// A DDSketch-style quantile sketch of non-negative values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sketch {
    /// Counts of buckets `offset ..= offset + bins.len() - 1`.
    bins: Vec<u64>,
    offset: i32,
    zero: u64,
    count: u64,
    min: f64,
    max: f64,
}

impl Sketch {
    /// Empty.
    pub fn new() -> Self {
        Sketch::default()
    }

    /// Values added.
    pub fn count(&self) -> u64 {
        self.count
    }

    fn index(x: f64) -> i32 {
        (x.ln() / ln_gamma()).ceil() as i32
    }

    fn value(i: i32) -> f64 {
        let g = ln_gamma();
        2.0 * (f64::from(i) * g).exp() / (g.exp() + 1.0)
    }

    /// Make room for buckets `lo ..= hi`; answers the lowest bucket kept (lower
    /// ones fold into it when the span is wider than [`MAX_BINS`]).
    fn cover(&mut self, lo: i32, hi: i32) -> i32 {
        let (cur_lo, cur_hi) = if self.bins.is_empty() {
            (lo, hi)
        } else {
            (self.offset, self.offset + self.bins.len() as i32 - 1)
        };
        let hi = hi.max(cur_hi);
        let lo = lo.min(cur_lo).max(hi - MAX_BINS as i32 + 1);
        if self.bins.is_empty() {
            self.offset = lo;
            self.bins = vec![0; (hi - lo + 1) as usize];
            return lo;
        }
        if lo == cur_lo {
            // Growing at the top only: amortized, no copy.
            self.bins.resize((hi - lo + 1) as usize, 0);
            return lo;
        }
        let mut bins = vec![0; (hi - lo + 1) as usize];
        for (k, c) in self.bins.iter().enumerate() {
            let i = (cur_lo + k as i32).max(lo);
            bins[(i - lo) as usize] += c;
        }
        self.bins = bins;
        self.offset = lo;
        lo
    }

    fn add_to_bin(&mut self, i: i32, n: u64) {
        let lo = self.cover(i, i);
        self.bins[(i.max(lo) - lo) as usize] += n;
    }

    /// Add one value. NaN is ignored; values up to [`MIN_VALUE`] count as zero.
    pub fn insert(&mut self, x: f64) {
        if x.is_nan() {
            return;
        }
        if x <= MIN_VALUE {
            self.zero += 1;
        } else {
            self.add_to_bin(Self::index(x.min(f64::MAX)), 1);
        }
        self.min = if self.count == 0 { x } else { self.min.min(x) };
        self.max = if self.count == 0 { x } else { self.max.max(x) };
        self.count += 1;
    }

    /// Add all of `other`'s values.
    pub fn merge(&mut self, other: &Sketch) {
        if other.count == 0 {
            return;
        }
        if !other.bins.is_empty() {
            let lo = self.cover(other.offset, other.offset + other.bins.len() as i32 - 1);
            for (k, c) in other.bins.iter().enumerate() {
                let i = (other.offset + k as i32).max(lo);
                self.bins[(i - lo) as usize] += c;
            }
        }
        self.min = if self.count == 0 {
            other.min
        } else {
            self.min.min(other.min)
        };
        self.max = if self.count == 0 {
            other.max
        } else {
            self.max.max(other.max)
        };
        self.zero += other.zero;
        self.count += other.count;
    }

    /// The `q`-quantile (0 ≤ q ≤ 1) within relative error [`ALPHA`]: the
    /// value of rank `⌊q·(n−1)⌋` in sorted order. None when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || q.is_nan() {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * (self.count - 1) as f64).floor() as u64;
        let mut seen = self.zero;
        if rank < seen {
            return Some(0.0f64.max(self.min));
        }
        for (k, c) in self.bins.iter().enumerate() {
            seen += c;
            if rank < seen {
                let v = Self::value(self.offset + k as i32);
                return Some(v.clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }

    /// Approximate heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.bins.capacity() * std::mem::size_of::<u64>()
    }
}

/// Sketches of the last `slots × slot_ms` milliseconds, one per slot.
#[derive(Debug, Clone)]
pub struct Window {
    slot_ms: Millis,
    slots: usize,
    /// (slot number = time / slot_ms, its sketch), oldest first.
    parts: VecDeque<(Millis, Sketch)>,
}

impl Window {
    /// A window of `slots` slots of `slot_ms` each (both at least 1).
    pub fn new(slot_ms: Millis, slots: usize) -> Self {
        Window {
            slot_ms: slot_ms.max(1),
            slots: slots.max(1),
            parts: VecDeque::new(),
        }
    }

    fn first_live_slot(&self, now: Millis) -> Millis {
        now.div_euclid(self.slot_ms) - self.slots as Millis + 1
    }

    fn expire(&mut self, now: Millis) {
        let first = self.first_live_slot(now);
        while self.parts.front().is_some_and(|(s, _)| *s < first) {
            self.parts.pop_front();
        }
    }

    /// The sketch for time `now`'s slot (a slot older than the newest one is
    /// folded into the newest: time only moves forward here).
    fn slot(&mut self, now: Millis) -> &mut Sketch {
        self.expire(now);
        let s = now.div_euclid(self.slot_ms);
        if self.parts.back().is_none_or(|(last, _)| *last < s) {
            self.parts.push_back((s, Sketch::new()));
        }
        &mut self.parts.back_mut().expect("just pushed").1
    }

    /// Add a value observed at `now`.
    pub fn insert(&mut self, now: Millis, x: f64) {
        self.slot(now).insert(x);
    }

    /// Add a sketch of values observed at `now`.
    pub fn merge_at(&mut self, now: Millis, s: &Sketch) {
        self.slot(now).merge(s);
    }

    /// All values of the window ending at `now`, merged.
    pub fn merged(&mut self, now: Millis) -> Sketch {
        self.expire(now);
        let mut out = Sketch::new();
        for (_, s) in &self.parts {
            out.merge(s);
        }
        out
    }

    /// Approximate heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.parts
            .iter()
            .map(|(_, s)| s.heap_bytes() + std::mem::size_of::<(Millis, Sketch)>())
            .sum()
    }
}

#[cfg(test)]
#[path = "sketch_tests.rs"]
mod tests;
