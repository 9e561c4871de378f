//! The pairwise slopes of the forecast's slots, kept in order so that the
//! ranks the Theil–Sen trend needs cost a few binary searches per point.

use std::collections::VecDeque;

use super::Slot;
use crate::Millis;

/// The most slots: positions in the slope order are bytes.
pub(super) const MAX_POINTS: usize = 256;

/// Slots held on the stack while predicting (more go to the heap).
pub(super) const STACK: usize = 32;

/// A slot's means: its index and start time, the mean time offset within
/// it, the mean value.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Mean {
    pub(super) index: i64,
    /// `index · width` (exact below 2⁵³ ms).
    pub(super) start: f64,
    pub(super) dt: f64,
    pub(super) v: f64,
}

impl Slot {
    pub(super) fn mean(&self, width: Millis) -> Mean {
        let n = f64::from(self.n);
        Mean {
            index: self.index,
            start: (self.index * width) as f64,
            dt: self.sum_dt / n,
            v: self.sum_v / n,
        }
    }
}

/// The slope from slot `a` to the later slot `b`, in units per ms: the
/// difference of their mean values over the difference of their mean times,
/// taken as the difference of the slots' starts (exact) plus the difference
/// of the mean offsets within the slots. `None` when `b` is not later on
/// average (it always is: a slot's mean offset is within it).
pub(super) fn pair_slope(a: &Mean, b: &Mean) -> Option<f64> {
    let dt = span(a, b);
    (dt > 0.0).then(|| (b.v - a.v) / dt)
}

/// The time from slot `a`'s mean time to slot `b`'s.
fn span(a: &Mean, b: &Mean) -> f64 {
    (b.start - a.start) + (b.dt - a.dt)
}

/// `x` as an integer in the order of `f64::total_cmp`.
fn ordered(x: f64) -> i64 {
    let bits = x.to_bits() as i64;
    bits ^ (((bits >> 63) as u64) >> 1) as i64
}

/// The first `n` places of `stack`, or of `heap` when there are more.
pub(super) fn buffer<'a, T: Copy + Default>(
    stack: &'a mut [T; STACK],
    heap: &'a mut Vec<T>,
    n: usize,
) -> &'a mut [T] {
    if n <= STACK {
        &mut stack[..n]
    } else {
        heap.resize(n, T::default());
        heap
    }
}

/// The value of rank `r` (from 0, in `total_cmp` order) among the values of
/// two sorted lists: `len` values `a(0) ≤ a(1) ≤ …`, and `b`. There are
/// more than `r` of them.
pub(super) fn nth_of_two(r: usize, len: usize, a: impl Fn(usize) -> f64, b: &[f64]) -> f64 {
    // The r + 1 smallest values are a's first r + 1 − j and b's first j,
    // for the smallest j at which b[j] is not below the a value they leave
    // out.
    let (mut lo, mut hi) = ((r + 1).saturating_sub(len), (r + 1).min(b.len()));
    while lo < hi {
        let j = (lo + hi) / 2;
        let i = r + 1 - j;
        if i > 0 && b[j].total_cmp(&a(i - 1)).is_lt() {
            lo = j + 1;
        } else {
            hi = j;
        }
    }
    let i = r + 1 - lo;
    match (i > 0, lo > 0) {
        (true, true) => {
            let (x, y) = (a(i - 1), b[lo - 1]);
            if x.total_cmp(&y).is_ge() { x } else { y }
        }
        (true, false) => a(i - 1),
        _ => b[lo - 1],
    }
}

/// Sorts `values` by `total_cmp`, moving `positions` along: insertion sort,
/// which takes a few steps when they are nearly in order already (the
/// slopes to the newest slot move a little with each point).
fn sort_along(values: &mut [f64], positions: &mut [u8]) {
    for i in 1..values.len() {
        let (v, p) = (values[i], positions[i]);
        let mut j = i;
        while j > 0 && values[j - 1].total_cmp(&v).is_gt() {
            values[j] = values[j - 1];
            positions[j] = positions[j - 1];
            j -= 1;
        }
        values[j] = v;
        positions[j] = p;
    }
}

/// Derived from the slots, so neither saved (rebuilt after a restore) nor
/// compared:
///
/// * the pairs of closed slots (positions in `Forecast::slots`, earlier
///   first; every slot but the newest is closed) in increasing order of
///   their slopes (`total_cmp`; equal slopes in any order);
/// * the positions of the other slots in the order of their slopes to the
///   newest one at the last prediction, so the next one sorts them in a few
///   steps, and they are merged in that order when the newest slot closes.
#[derive(Debug, Clone, Default)]
pub(super) struct SlopeOrder {
    pairs: Vec<[u8; 2]>,
    valid: bool,
    /// Positions with a slope to the newest slot, in order, then those
    /// without (none in practice).
    recent: Vec<u8>,
    /// How many of `recent` have a slope.
    recent_len: usize,
    /// The index of the newest slot when `recent` was ordered.
    recent_of: Option<i64>,
}

impl PartialEq for SlopeOrder {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl SlopeOrder {
    /// The pairs of closed slots in order of their slopes.
    pub(super) fn closed(&self) -> &[[u8; 2]] {
        &self.pairs
    }

    /// Orders all the pairs of closed slots, unless they are in order.
    pub(super) fn ensure(&mut self, slots: &VecDeque<Slot>, width: Millis) {
        if self.valid {
            return;
        }
        let means: Vec<Mean> = slots.iter().map(|s| s.mean(width)).collect();
        let closed = means.len().saturating_sub(1);
        let mut keyed = Vec::with_capacity(closed * closed.saturating_sub(1) / 2);
        for b in 0..closed {
            for a in 0..b {
                if let Some(slope) = pair_slope(&means[a], &means[b]) {
                    keyed.push((slope, [a as u8, b as u8]));
                }
            }
        }
        keyed.sort_unstable_by(|x, y| x.0.total_cmp(&y.0));
        self.pairs = keyed.into_iter().map(|(_, pair)| pair).collect();
        self.valid = true;
    }

    /// Writes the slopes from the newest slot to the others (`means` of
    /// every slot, the newest last) to `values` in increasing order, and
    /// answers how many there are.
    pub(super) fn recent_slopes(&mut self, means: &[Mean], values: &mut [f64]) -> usize {
        let newest = means[means.len() - 1];
        let others = means.len() - 1;
        let fresh = self.recent_of != Some(newest.index) || self.recent.len() != others;
        if fresh {
            self.recent.clear();
            self.recent.extend((0..others).map(|a| a as u8));
        }
        // Those with a slope first, in the order of last time; then the
        // others.
        let mut k = 0;
        for i in 0..others {
            let a = self.recent[i];
            if let Some(slope) = pair_slope(&means[usize::from(a)], &newest) {
                values[k] = slope;
                if k < i {
                    self.recent.copy_within(k..i, k + 1);
                    self.recent[k] = a;
                }
                k += 1;
            }
        }
        if fresh {
            let (mut keyed, mut heap) = ([(0.0, 0u8); STACK], Vec::new());
            let keyed = buffer(&mut keyed, &mut heap, k);
            for (e, (&v, &a)) in keyed.iter_mut().zip(values.iter().zip(&self.recent)) {
                *e = (v, a);
            }
            keyed.sort_unstable_by(|x, y| x.0.total_cmp(&y.0));
            for (e, (v, a)) in keyed.iter().zip(values.iter_mut().zip(&mut self.recent)) {
                (*v, *a) = *e;
            }
        } else {
            sort_along(&mut values[..k], &mut self.recent[..k]);
        }
        self.recent_len = k;
        self.recent_of = Some(newest.index);
        k
    }

    /// After a new slot was added to `slots` and the `dropped` oldest were
    /// dropped: forgets the pairs of the dropped slots and merges in those
    /// of the slot before the new one, closed now.
    pub(super) fn slot_closed(&mut self, slots: &VecDeque<Slot>, dropped: usize, width: Millis) {
        let known = self.recent_of.take();
        if !self.valid {
            return;
        }
        let Some(closed) = slots.len().checked_sub(2) else {
            self.pairs.clear();
            return;
        };
        let (mut means, mut heap) = ([Mean::default(); STACK], Vec::new());
        let means = buffer(&mut means, &mut heap, closed + 1);
        for (m, s) in means.iter_mut().zip(slots) {
            *m = s.mean(width);
        }
        let c = closed as u8;
        // The slot just closed, with the others: in the order of its last
        // prediction when there was one (its means have not changed since).
        let (mut added, mut heap) = ([0u8; STACK], Vec::new());
        let added = buffer(&mut added, &mut heap, closed);
        let (mut keys, mut heap) = ([0.0; STACK], Vec::new());
        let keys = buffer(&mut keys, &mut heap, closed);
        let mut k = 0;
        let mut add = |a: u8| {
            if usize::from(a) >= dropped {
                let a = a - dropped as u8;
                if let Some(s) = pair_slope(&means[usize::from(a)], &means[closed]) {
                    added[k] = a;
                    keys[k] = s;
                    k += 1;
                }
            }
        };
        if known == Some(means[closed].index) {
            self.recent[..self.recent_len].iter().for_each(|&a| add(a));
        } else {
            (0..closed + dropped).for_each(|a| add(a as u8));
        }
        sort_along(&mut keys[..k], &mut added[..k]);
        // The pairs kept (those of dropped slots go), renumbered, and their
        // slopes as `pair_slope` computes them (they have one): differences
        // first, then the divisions in a loop of their own, which
        // vectorises. (Into new lists: renumbering the bytes in place stalls
        // on every pair.)
        let shift = u8::try_from(dropped).unwrap_or(u8::MAX);
        let len = self.pairs.len();
        let mut kept = vec![[0u8; 2]; len];
        let mut numbers = vec![0.0; 2 * len];
        let (slopes, spans) = numbers.split_at_mut(len);
        let mut m = 0;
        for &[a, b] in &self.pairs {
            if usize::from(a) >= dropped {
                let (a, b) = (a - shift, b - shift);
                kept[m] = [a, b];
                let (a, b) = (&means[usize::from(a)], &means[usize::from(b)]);
                slopes[m] = b.v - a.v;
                spans[m] = span(a, b);
                m += 1;
            }
        }
        for (slope, span) in slopes[..m].iter_mut().zip(&spans[..m]) {
            *slope /= span;
        }
        // Merge on integers in `total_cmp` order (written over the spans).
        let order = spans;
        for (o, &x) in order.iter_mut().zip(&slopes[..m]) {
            *o = f64::from_bits(ordered(x) as u64);
        }
        let (mut new_order, mut heap) = ([0i64; STACK], Vec::new());
        let new_order = buffer(&mut new_order, &mut heap, k);
        for (o, &x) in new_order.iter_mut().zip(&keys[..k]) {
            *o = ordered(x);
        }
        // Merge: each new pair after the kept ones whose slope is not
        // greater.
        self.pairs.resize(m + k, [0, 0]);
        let (mut j, mut w) = (0, 0);
        for (&pair, o) in kept[..m].iter().zip(&order[..m]) {
            let o = o.to_bits() as i64;
            while j < k && new_order[j] < o {
                self.pairs[w] = [added[j], c];
                j += 1;
                w += 1;
            }
            self.pairs[w] = pair;
            w += 1;
        }
        for &a in &added[j..k] {
            self.pairs[w] = [a, c];
            w += 1;
        }
    }
}
