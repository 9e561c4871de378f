//! Compact storage of the seasonal model's values: `f32` offsets.

use std::ops::{Deref, DerefMut};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::sigma_of_sorted;

/// The largest fallback window: arrival numbers are 16 bits.
pub(super) const MAX_WINDOW: usize = u16::MAX as usize;

/// `x` as an `f32`, within the finite range (NaN stays NaN).
pub(super) fn to_f32(x: f64) -> f32 {
    (x as f32).clamp(-f32::MAX, f32::MAX)
}

/// Calls `f` with a copy of `values` sorted by `total_cmp`.
pub(super) fn with_sorted<R>(values: &[f32], f: impl FnOnce(&[f32]) -> R) -> R {
    with_copy(values.iter().copied(), |v| {
        v.sort_unstable_by(f32::total_cmp);
        f(v)
    })
}

/// Calls `f` with the values of `sigmas` that are not NaN.
pub(super) fn with_ready_sigmas<R>(sigmas: &[f32], f: impl FnOnce(&mut [f32]) -> R) -> R {
    with_copy(sigmas.iter().copied().filter(|s| !s.is_nan()), f)
}

/// Calls `f` with `values` collected, on the stack when there are at most
/// 64 of them.
fn with_copy<R>(values: impl Iterator<Item = f32>, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut stack = [0f32; 64];
    let mut heap = Vec::new();
    let mut n = 0;
    for v in values {
        if n < stack.len() {
            stack[n] = v;
        } else {
            if heap.is_empty() {
                heap.extend_from_slice(&stack);
            }
            heap.push(v);
        }
        n += 1;
    }
    if n <= stack.len() {
        f(&mut stack[..n])
    } else {
        f(&mut heap)
    }
}

/// `f32` values in which NaN marks an unused place: serialised as numbers
/// and `null`s, and compared bit for bit (so unused places are equal).
#[derive(Debug, Clone, Default)]
pub(super) struct F32s(pub(super) Vec<f32>);

impl Deref for F32s {
    type Target = Vec<f32>;
    fn deref(&self) -> &Vec<f32> {
        &self.0
    }
}

impl DerefMut for F32s {
    fn deref_mut(&mut self) -> &mut Vec<f32> {
        &mut self.0
    }
}

impl PartialEq for F32s {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other.iter())
                .all(|(a, b)| a.to_bits() == b.to_bits())
    }
}

impl Serialize for F32s {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(|v| (!v.is_nan()).then_some(*v)))
    }
}

impl<'de> Deserialize<'de> for F32s {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let values = Vec::<Option<f32>>::deserialize(d)?;
        Ok(F32s(
            values.into_iter().map(|v| v.unwrap_or(f32::NAN)).collect(),
        ))
    }
}

/// The fallback's window: the last values (offsets) kept sorted by
/// `total_cmp`, each with its arrival number (mod 2¹⁶), so the oldest is
/// found without a second copy of the window in arrival order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Window {
    sorted: Vec<f32>,
    arrival: Vec<u16>,
    /// Arrival number of the next value.
    next: u16,
}

impl Window {
    pub(super) fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Median and robust σ (offsets) of the window, unless it is empty.
    pub(super) fn location_scale(&self) -> Option<(f64, f64)> {
        (!self.sorted.is_empty()).then(|| sigma_of_sorted(&self.sorted))
    }

    /// Adds a finite value, dropping the oldest once `window` (at most
    /// [`MAX_WINDOW`]) are held.
    pub(super) fn push(&mut self, x: f32, window: usize) {
        if self.arrival.len() != self.sorted.len() {
            // A state from elsewhere that does not fit: start again.
            self.sorted.clear();
            self.arrival.clear();
        }
        while self.sorted.len() > window.max(1) {
            self.remove_oldest();
        }
        // Where x goes among the values held, after those equal to it.
        let j = self.sorted.partition_point(|v| v.total_cmp(&x).is_le());
        if self.sorted.len() == window {
            // Drop the oldest and insert x with one shift.
            let i = self.oldest();
            if i < j {
                self.sorted.copy_within(i + 1..j, i);
                self.arrival.copy_within(i + 1..j, i);
                self.sorted[j - 1] = x;
                self.arrival[j - 1] = self.next;
            } else {
                self.sorted.copy_within(j..i, j + 1);
                self.arrival.copy_within(j..i, j + 1);
                self.sorted[j] = x;
                self.arrival[j] = self.next;
            }
        } else {
            self.sorted.insert(j, x);
            self.arrival.insert(j, self.next);
        }
        self.next = self.next.wrapping_add(1);
    }

    /// Index of the oldest value (not empty).
    fn oldest(&self) -> usize {
        let oldest = self.next.wrapping_sub(self.sorted.len() as u16);
        self.arrival.iter().position(|&a| a == oldest).unwrap_or(0)
    }

    fn remove_oldest(&mut self) {
        let i = self.oldest();
        self.sorted.remove(i);
        self.arrival.remove(i);
    }
}
