//! Series identity for the hot path: a 64-bit key per (name, labels), and a
//! compact copy of a label set for what medic keeps per series.
//!
//! Keys are SipHash-1-3 with a key drawn at random once per process, so
//! nobody outside can craft label sets that collide; maps keyed by them use
//! the key itself as the hash ([`KeyMap`]). A key is computed once per sample
//! by the engine and shared by the series cache and the detectors.
//!
//! [`CompactLabels`] holds a label set in one allocation (length-prefixed
//! names and values), about a tenth of a `BTreeMap<String, String>` clone
//! (whose first node alone is over 500 bytes); it is turned back into
//! [`Labels`] only when an answer needs them.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::OnceLock;

use super::Labels;

fn random_state() -> &'static std::collections::hash_map::RandomState {
    static STATE: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    STATE.get_or_init(std::collections::hash_map::RandomState::new)
}

/// The key of a series identity (name and labels).
pub fn series_key(name: &str, labels: &Labels) -> u64 {
    let mut h = random_state().build_hasher();
    name.hash(&mut h);
    labels.hash(&mut h);
    h.finish()
}

/// The key of a label set alone (detectors that follow a label set whatever
/// the metric name, as incidents are identified by labels).
pub fn labels_key(labels: &Labels) -> u64 {
    random_state().hash_one(labels)
}

/// A hasher for maps keyed by [`series_key`] values, which are already
/// uniformly random: it passes the key through.
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are expected; fold anything else in.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A map keyed by series keys.
pub type KeyMap<V> = HashMap<u64, V, BuildHasherDefault<KeyHasher>>;

/// A set of series keys.
pub type KeySet = std::collections::HashSet<u64, BuildHasherDefault<KeyHasher>>;

/// A label set in one allocation: for each label, its name's length (u32,
/// little-endian), the name, its value's length, the value; sorted by name
/// as [`Labels`] is.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct CompactLabels(Box<[u8]>);

impl CompactLabels {
    /// Copy a label set.
    pub fn new(labels: &Labels) -> Self {
        let len: usize = labels.iter().map(|(k, v)| 8 + k.len() + v.len()).sum();
        let mut b = Vec::with_capacity(len);
        for (k, v) in labels {
            for s in [k, v] {
                b.extend_from_slice(&(s.len() as u32).to_le_bytes());
                b.extend_from_slice(s.as_bytes());
            }
        }
        CompactLabels(b.into_boxed_slice())
    }

    /// The (name, value) pairs, sorted by name.
    pub fn iter(&self) -> Pairs<'_> {
        Pairs(&self.0)
    }

    /// Back to a label set.
    pub fn to_labels(&self) -> Labels {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Whether this is the same label set, without allocating.
    pub fn same_as(&self, labels: &Labels) -> bool {
        let mut mine = self.iter();
        for (k, v) in labels {
            match mine.next() {
                Some((mk, mv)) if mk == k && mv == v => {}
                _ => return false,
            }
        }
        mine.next().is_none()
    }

    /// Bytes held on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.0.len()
    }
}

impl std::fmt::Debug for CompactLabels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Iterator over a [`CompactLabels`].
pub struct Pairs<'a>(&'a [u8]);

impl<'a> Pairs<'a> {
    fn take(&mut self) -> Option<&'a str> {
        let (len, rest) = self.0.split_first_chunk::<4>()?;
        let n = u32::from_le_bytes(*len) as usize;
        let (s, rest) = rest.split_at_checked(n)?;
        self.0 = rest;
        // Built from `&str`s only, so always valid UTF-8.
        std::str::from_utf8(s).ok()
    }
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a str, &'a str);
    fn next(&mut self) -> Option<Self::Item> {
        let k = self.take()?;
        let v = self.take()?;
        Some((k, v))
    }
}

#[cfg(test)]
#[path = "key_tests.rs"]
mod tests;
