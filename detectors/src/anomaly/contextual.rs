//! Contextual anomaly detection: an online memory of which facts follow
//! which contexts, scored by how much of the present it failed to foresee.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};

use serde::{Deserialize, Serialize};

use super::{Direction, EwBaseline, Model, Score, ignored};
use crate::Millis;

/// A step's sensory facts as bits: bit `2k + v` is set when bit `k` of the
/// value's bin is `v`.
type Sensory = u32;

/// A small, fast, deterministic hasher (the multiply-rotate scheme of
/// rustc's FxHasher) for the memory's lookup tables: their keys are short
/// and come from the model itself, not from an adversary.
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u32(&mut self, x: u32) {
        self.write_u64(u64::from(x));
    }

    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;
type FxSet<K> = HashSet<K, BuildHasherDefault<Fx>>;

/// Parameters of [`Contextual`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContextualConfig {
    /// Bits of the quantised value: it falls in one of `2^bits` equal bins
    /// of the value range. 1 to 8.
    pub bits: u32,
    /// At most this many of the contexts that fully predicted a step
    /// become facts of the next step's context (those confirmed most
    /// often).
    pub max_active: usize,
    /// Generalised contexts are learnt only from a shared left part of at
    /// most this many facts.
    pub max_left_facts: usize,
    /// A raw score at least this opens a rest period.
    pub alarm: f64,
    /// After a raw score of at least `alarm`, the next `rest` points score
    /// 0: one report per episode.
    pub rest: usize,
    /// The first `warm_up` values are scored 0. Without a fixed `range`
    /// they are held back until their minimum and maximum give the initial
    /// range, then learnt in order.
    pub warm_up: usize,
    /// The memory bound: when more contexts are known, the least recently
    /// used are forgotten down to three quarters of it.
    pub max_contexts: usize,
    /// A fixed value range `[min, max]` (e.g. `[0, 100]` for a percentage)
    /// instead of the one learnt from the values; values outside it fall in
    /// the edge bins.
    pub range: Option<[f64; 2]>,
    /// Which side of the expected value counts: a value on the other side
    /// scores 0 (it still opens a rest period).
    pub direction: Direction,
    /// Extreme deviations: after warm-up, a value at least this many
    /// standard deviations from a slow exponentially weighted mean and
    /// variance (the baseline of [`Ewma`](super::Ewma), weight
    /// `outlier_alpha`) is an extreme value (see [`Contextual`]). 0 = off;
    /// default 60 (only what no ordinary variation reaches).
    pub outlier_z: f64,
    /// Weight of each new value in the `outlier_z` baseline, in `(0, 1]`
    /// (about `2 / outlier_alpha` values of memory).
    pub outlier_alpha: f64,
    /// New extremes: after warm-up, a value above the largest value seen
    /// (or below the smallest) by more than this share of their difference
    /// is an extreme value (see [`Contextual`]). `None` = off; default 0.1.
    pub record_margin: Option<f64>,
}

impl Default for ContextualConfig {
    fn default() -> Self {
        ContextualConfig {
            bits: 3,
            max_active: 15,
            max_left_facts: 7,
            alarm: 0.75,
            rest: 30,
            warm_up: 150,
            max_contexts: 1024,
            range: None,
            direction: Direction::Both,
            outlier_z: 60.0,
            outlier_alpha: 0.01,
            record_margin: Some(0.1),
        }
    }
}

/// A learnt context: when its left part held at one step, it predicted its
/// right part (sensory facts) for the next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Context {
    left: u32,
    right: u32,
    /// Its identity as a fact of later contexts; never reused.
    id: u64,
    /// Right facts predicted, summed over the steps its left part held.
    predicted: u32,
    /// Of those, the ones that came true.
    confirmed: u32,
    /// Steps at which its whole right part came true.
    active: u32,
    /// Learnt from a whole step (left: the previous step's context, right:
    /// the present's sensory facts) rather than as a generalisation.
    whole: bool,
    /// Step of its last use (created, or its left part held).
    last_used: u64,
}

/// A step's context, or the left part of a learnt context: sensory facts
/// and the identities of contexts that were active.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct Facts {
    sensory: Sensory,
    /// Sorted.
    ids: Vec<u64>,
}

impl Facts {
    fn len(&self) -> u32 {
        self.sensory.count_ones() + self.ids.len() as u32
    }

    fn is_empty(&self) -> bool {
        self.sensory == 0 && self.ids.is_empty()
    }

    fn key(&self) -> u64 {
        let mut h = Fx::default();
        self.hash(&mut h);
        h.finish()
    }
}

/// A left part and the contexts it starts: (right part, context) pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Left {
    facts: Facts,
    contexts: Vec<(u32, u32)>,
}

/// A change of the learnt range, for re-expressing the memory.
#[derive(Debug, Clone, Copy)]
enum Regrid {
    /// The width doubled upwards (the minimum kept).
    Up,
    /// The width doubled downwards (the maximum kept).
    Down,
    /// A first width: every earlier value was one constant, now in this bin.
    FromConstant(u32),
}

/// Lookup tables derived from the state; rebuilt after a restore.
#[derive(Debug, Clone, Default)]
struct Index {
    built: bool,
    /// Left parts by [`Facts::key`].
    left_of: FxMap<u64, Vec<u32>>,
    right_of: FxMap<Sensory, u32>,
    /// Left parts holding a context identity.
    lefts_with: FxMap<u64, Vec<u32>>,
    /// Left parts with sensory facts only.
    sensory_only: Vec<u32>,
    /// The left parts `Memory::facts` fully holds, if known.
    held: Option<Vec<u32>>,
    /// Scratch counts per left part, all 0 between uses.
    counts: Vec<u32>,
    /// Scratch list of the left parts counted.
    touched: Vec<u32>,
}

/// The learnt range and the contexts learnt on its bins.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Memory {
    cfg: ContextualConfig,
    /// Steps learnt.
    n: u64,
    /// The learnt range `[lo, lo + width]` (none before the first value;
    /// width 0 until two distinct values were seen).
    lo: Option<f64>,
    width: f64,
    /// The previous step's context.
    facts: Facts,
    /// Sensory facts the best contexts predicted for this step.
    predicted: Sensory,
    lefts: Vec<Left>,
    rights: Vec<Sensory>,
    contexts: Vec<Context>,
    next_id: u64,
    #[serde(skip)]
    index: Index,
}

impl PartialEq for Memory {
    fn eq(&self, other: &Self) -> bool {
        self.cfg == other.cfg
            && self.n == other.n
            && self.lo.map(f64::to_bits) == other.lo.map(f64::to_bits)
            && self.width.to_bits() == other.width.to_bits()
            && self.facts == other.facts
            && self.predicted == other.predicted
            && self.lefts == other.lefts
            && self.rights == other.rights
            && self.contexts == other.contexts
            && self.next_id == other.next_id
    }
}

/// Sorted intersection of two sorted lists.
fn intersect(a: &[u64], b: &[u64]) -> Vec<u64> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// One step's input to the pass over the memory.
struct Present<'a> {
    /// The previous step's context.
    previous: &'a Facts,
    sensory: Sensory,
    /// The whole-step context, if this step created it.
    whole_new: Option<u32>,
}

/// What one step's pass over the memory gathers.
#[derive(Default)]
struct Pass {
    selected: u64,
    active: Vec<u32>,
    candidates: Vec<(Facts, Sensory)>,
    seen: FxSet<(Facts, Sensory)>,
}

impl Memory {
    fn new(cfg: ContextualConfig) -> Self {
        Memory {
            cfg,
            n: 0,
            lo: None,
            width: 0.0,
            facts: Facts::default(),
            predicted: 0,
            lefts: Vec::new(),
            rights: Vec::new(),
            contexts: Vec::new(),
            next_id: 0,
            index: Index {
                built: true,
                ..Index::default()
            },
        }
    }

    fn max_bin(&self) -> u32 {
        (1u32 << self.cfg.bits) - 1
    }

    fn fixed_range(&self) -> Option<(f64, f64)> {
        match self.cfg.range {
            Some([a, b]) if a.is_finite() && b.is_finite() && a < b && (b - a).is_finite() => {
                Some((a, b - a))
            }
            _ => None,
        }
    }

    /// Lowest value and bin width of the range in use.
    fn scale(&self) -> (f64, f64) {
        let (lo, width) = self
            .fixed_range()
            .unwrap_or((self.lo.unwrap_or(0.0), self.width));
        let step = width / f64::from(self.max_bin() + 1);
        (
            lo,
            if step > 0.0 && step.is_finite() {
                step
            } else {
                1.0
            },
        )
    }

    fn sensory(&self, value: f64) -> Sensory {
        let (lo, step) = self.scale();
        let b = ((value - lo) / step).floor();
        let bin = if b.is_nan() || b <= 0.0 {
            0
        } else {
            (b as u32).min(self.max_bin())
        };
        (0..self.cfg.bits).fold(0, |m, k| m | 1 << (2 * k + ((bin >> k) & 1)))
    }

    /// Grows the learnt range to hold `value` (see [`Contextual`]).
    fn learn_range(&mut self, value: f64) {
        if self.fixed_range().is_some() {
            return;
        }
        let Some(mut lo) = self.lo else {
            self.lo = Some(value);
            self.width = 0.0;
            return;
        };
        let mut regrids = Vec::new();
        if self.width == 0.0 {
            if value == lo {
                return;
            }
            let width = (value - lo).abs();
            if !width.is_finite() {
                // Too far apart to measure: start over from this value.
                self.lo = Some(value);
                return;
            }
            // Every value so far was `lo`: it becomes bin 0 or the top bin.
            let bin = if value > lo { 0 } else { self.max_bin() };
            lo = lo.min(value);
            self.width = width;
            regrids.push(Regrid::FromConstant(bin));
        }
        let mut guard = 0;
        while value > lo + self.width && guard < 2200 {
            self.width = (self.width * 2.0).min(f64::MAX);
            regrids.push(Regrid::Up);
            guard += 1;
        }
        while value < lo && guard < 2200 {
            // Saturate: an infinite `lo` would not survive serialisation.
            lo = (lo - self.width).max(f64::MIN);
            self.width = (self.width * 2.0).min(f64::MAX);
            regrids.push(Regrid::Down);
            guard += 1;
        }
        self.lo = Some(lo);
        if !regrids.is_empty() {
            // After `bits` doublings no old bit is left: only the last
            // `bits` changes matter.
            let skip = regrids.len().saturating_sub(self.cfg.bits as usize);
            self.regrid(&regrids[skip..]);
        }
    }

    /// `m` after the range changes `regrids`.
    fn regrid_sensory(&self, mut m: Sensory, regrids: &[Regrid]) -> Sensory {
        let top = 2 * (self.cfg.bits - 1);
        for r in regrids {
            m = match *r {
                Regrid::Up => (m >> 2) | 1 << top,
                Regrid::Down => (m >> 2) | 1 << (top + 1),
                Regrid::FromConstant(bin) => (0..self.cfg.bits)
                    .filter(|k| m & (3 << (2 * k)) != 0)
                    .fold(0, |out, k| out | 1 << (2 * k + ((bin >> k) & 1))),
            };
        }
        m
    }

    /// Re-expresses the memory after the range changes `regrids`: parts
    /// and contexts that become equal are merged (counts added; the merged
    /// context keeps the older identity).
    fn regrid(&mut self, regrids: &[Regrid]) {
        let old_contexts = std::mem::take(&mut self.contexts);
        let old_lefts = std::mem::take(&mut self.lefts);
        let old_rights = std::mem::take(&mut self.rights);
        let mut left_of: FxMap<Facts, u32> = FxMap::default();
        let mut right_of: FxMap<Sensory, u32> = FxMap::default();
        let mut context_of: FxMap<(u32, u32), u32> = FxMap::default();
        for c in old_contexts {
            let old = &old_lefts[c.left as usize].facts;
            let facts = Facts {
                sensory: self.regrid_sensory(old.sensory, regrids),
                ids: old.ids.clone(),
            };
            let l = match left_of.get(&facts) {
                Some(&l) => l,
                None => {
                    let l = self.lefts.len() as u32;
                    left_of.insert(facts.clone(), l);
                    self.lefts.push(Left {
                        facts,
                        contexts: Vec::new(),
                    });
                    l
                }
            };
            let right = self.regrid_sensory(old_rights[c.right as usize], regrids);
            let r = *right_of.entry(right).or_insert_with(|| {
                self.rights.push(right);
                self.rights.len() as u32 - 1
            });
            match context_of.get(&(l, r)) {
                Some(&k) => {
                    let m = &mut self.contexts[k as usize];
                    m.predicted = m.predicted.saturating_add(c.predicted);
                    m.confirmed = m.confirmed.saturating_add(c.confirmed);
                    m.active = m.active.saturating_add(c.active);
                    m.whole |= c.whole;
                    m.last_used = m.last_used.max(c.last_used);
                    m.id = m.id.min(c.id);
                }
                None => {
                    let k = self.contexts.len() as u32;
                    context_of.insert((l, r), k);
                    self.lefts[l as usize].contexts.push((r, k));
                    self.contexts.push(Context {
                        left: l,
                        right: r,
                        ..c
                    });
                }
            }
        }
        self.facts.sensory = self.regrid_sensory(self.facts.sensory, regrids);
        self.predicted = self.regrid_sensory(self.predicted, regrids);
        self.rebuild_index();
    }

    /// The value band of the bins consistent with the predicted facts.
    fn predicted_band(&self) -> (f64, f64, f64) {
        let (lo, step) = self.scale();
        let (mut low_bin, mut high_bin) = (0u32, 0u32);
        for k in 0..self.cfg.bits {
            let zero = self.predicted & 1 << (2 * k) != 0;
            let one = self.predicted & 1 << (2 * k + 1) != 0;
            match (zero, one) {
                (true, false) => {}
                (false, true) => {
                    low_bin |= 1 << k;
                    high_bin |= 1 << k;
                }
                _ => high_bin |= 1 << k,
            }
        }
        let lower = lo + f64::from(low_bin) * step;
        let upper = lo + f64::from(high_bin + 1) * step;
        (0.5 * (lower + upper), lower, upper)
    }

    fn rebuild_index(&mut self) {
        let mut index = Index {
            built: true,
            counts: vec![0; self.lefts.len()],
            ..Index::default()
        };
        for (i, l) in self.lefts.iter().enumerate() {
            Self::index_left(&mut index, &l.facts, i as u32);
        }
        for (i, &r) in self.rights.iter().enumerate() {
            index.right_of.insert(r, i as u32);
        }
        self.index = index;
    }

    fn index_left(index: &mut Index, facts: &Facts, l: u32) {
        index.left_of.entry(facts.key()).or_default().push(l);
        if facts.ids.is_empty() {
            index.sensory_only.push(l);
        }
        for &id in &facts.ids {
            index.lefts_with.entry(id).or_default().push(l);
        }
    }

    /// Adds, per left part, how many of `ids` it holds to the scratch
    /// counts; returns the left parts touched (reset them after use).
    fn count_ids(&mut self, ids: &[u64]) -> Vec<u32> {
        let mut touched = std::mem::take(&mut self.index.touched);
        touched.clear();
        for id in ids {
            if let Some(lefts) = self.index.lefts_with.get(id) {
                for &l in lefts {
                    let c = &mut self.index.counts[l as usize];
                    if *c == 0 {
                        touched.push(l);
                    }
                    *c += 1;
                }
            }
        }
        touched
    }

    fn reset_counts(&mut self, touched: Vec<u32>) {
        for &l in &touched {
            self.index.counts[l as usize] = 0;
        }
        self.index.touched = touched;
    }

    /// The left parts `facts` fully holds (in no particular order: every
    /// use of the list is order-free).
    fn held(&mut self, facts: &Facts) -> Vec<u32> {
        let touched = self.count_ids(&facts.ids);
        let mut held: Vec<u32> = touched
            .iter()
            .copied()
            .filter(|&l| {
                let left = &self.lefts[l as usize].facts;
                self.index.counts[l as usize] as usize == left.ids.len()
                    && left.sensory & !facts.sensory == 0
            })
            .collect();
        held.extend(
            self.index
                .sensory_only
                .iter()
                .copied()
                .filter(|&l| self.lefts[l as usize].facts.sensory & !facts.sensory == 0),
        );
        self.reset_counts(touched);
        held
    }

    /// The context (left → right), created if new (`true`).
    fn context(&mut self, left: &Facts, right: Sensory, whole: bool) -> (u32, bool) {
        let key = left.key();
        let found = self.index.left_of.get(&key).and_then(|ls| {
            ls.iter()
                .copied()
                .find(|&l| self.lefts[l as usize].facts == *left)
        });
        let l = match found {
            Some(l) => l,
            None => {
                let l = self.lefts.len() as u32;
                self.lefts.push(Left {
                    facts: left.clone(),
                    contexts: Vec::new(),
                });
                self.index.counts.push(0);
                Self::index_left(&mut self.index, left, l);
                l
            }
        };
        let r = match self.index.right_of.get(&right) {
            Some(&r) => r,
            None => {
                let r = self.rights.len() as u32;
                self.rights.push(right);
                self.index.right_of.insert(right, r);
                r
            }
        };
        if let Some(&(_, c)) = self.lefts[l as usize]
            .contexts
            .iter()
            .find(|&&(rr, _)| rr == r)
        {
            if whole {
                self.contexts[c as usize].whole = true;
            }
            return (c, false);
        }
        let c = self.contexts.len() as u32;
        self.contexts.push(Context {
            left: l,
            right: r,
            id: self.next_id,
            predicted: 0,
            confirmed: 0,
            active: 0,
            whole,
            last_used: self.n,
        });
        self.next_id += 1;
        self.lefts[l as usize].contexts.push((r, c));
        (c, true)
    }

    /// Forgets the least recently used contexts down to ¾ of the bound,
    /// and the parts no context uses any more.
    fn prune(&mut self) {
        let keep = self.cfg.max_contexts * 3 / 4;
        let mut order: Vec<u32> = (0..self.contexts.len() as u32).collect();
        let mut kept = vec![false; self.contexts.len()];
        if keep > 0 && keep < order.len() {
            order.select_nth_unstable_by_key(keep - 1, |&c| {
                let c = &self.contexts[c as usize];
                (std::cmp::Reverse(c.last_used), c.id)
            });
            order.truncate(keep);
        }
        for &c in order.iter().take(keep) {
            kept[c as usize] = true;
        }
        let old_contexts = std::mem::take(&mut self.contexts);
        let old_lefts = std::mem::take(&mut self.lefts);
        let old_rights = std::mem::take(&mut self.rights);
        let mut left_map = vec![u32::MAX; old_lefts.len()];
        let mut right_map = vec![u32::MAX; old_rights.len()];
        for (c, context) in old_contexts.into_iter().enumerate() {
            if !kept[c] {
                continue;
            }
            let l = context.left as usize;
            if left_map[l] == u32::MAX {
                left_map[l] = self.lefts.len() as u32;
                self.lefts.push(Left {
                    facts: old_lefts[l].facts.clone(),
                    contexts: Vec::new(),
                });
            }
            let r = context.right as usize;
            if right_map[r] == u32::MAX {
                right_map[r] = self.rights.len() as u32;
                self.rights.push(old_rights[r]);
            }
            let k = self.contexts.len() as u32;
            self.lefts[left_map[l] as usize]
                .contexts
                .push((right_map[r], k));
            self.contexts.push(Context {
                left: left_map[l],
                right: right_map[r],
                ..context
            });
        }
        self.rebuild_index();
    }

    /// Visits the contexts of left part `l`, which the previous context
    /// holds `overlap` facts of (all of them when `full`).
    fn visit(&mut self, pass: &mut Pass, present: &Present, l: u32, full: bool, overlap: u32) {
        let Present {
            previous,
            sensory,
            whole_new,
        } = *present;
        let generalising = whole_new.is_some() && overlap as usize <= self.cfg.max_left_facts;
        for k in 0..self.lefts[l as usize].contexts.len() {
            let (r, c) = self.lefts[l as usize].contexts[k];
            if Some(c) == whole_new {
                continue;
            }
            let right = self.rights[r as usize];
            let size = right.count_ones();
            let hits = (right & sensory).count_ones();
            let context = &mut self.contexts[c as usize];
            if full {
                pass.selected += 1;
                context.predicted = context.predicted.saturating_add(size);
                context.confirmed = context.confirmed.saturating_add(hits);
                context.last_used = self.n;
                if hits == size {
                    context.active = context.active.saturating_add(1);
                    pass.active.push(c);
                    continue;
                }
            }
            if generalising && context.whole && hits > 0 {
                let left = &self.lefts[l as usize].facts;
                let candidate = (
                    Facts {
                        sensory: left.sensory & previous.sensory,
                        ids: intersect(&left.ids, &previous.ids),
                    },
                    right & sensory,
                );
                if pass.seen.insert(candidate.clone()) {
                    pass.candidates.push(candidate);
                }
            }
        }
    }

    /// One step of learning on the present sensory facts; returns the raw
    /// score.
    fn step(&mut self, sensory: Sensory) -> f64 {
        if !self.index.built {
            self.rebuild_index();
        }
        let surprised = sensory & !self.predicted != 0;
        let lefts_before = self.lefts.len() as u32;
        let previous = std::mem::take(&mut self.facts);
        let held = match self.index.held.take() {
            Some(held) => held,
            None => self.held(&previous),
        };

        // The whole step as a context: previous context → present.
        let whole_new = if previous.is_empty() {
            None
        } else {
            let (c, created) = self.context(&previous, sensory, true);
            created.then_some(c)
        };

        // Contexts whose left part held: which came true; and, after a new
        // step, the generalisations with the steps it partly overlaps.
        let mut pass = Pass::default();
        let present = Present {
            previous: &previous,
            sensory,
            whole_new,
        };
        if whole_new.is_some() {
            let touched = self.count_ids(&previous.ids);
            for l in 0..lefts_before {
                let left = &self.lefts[l as usize].facts;
                let overlap =
                    (left.sensory & previous.sensory).count_ones() + self.index.counts[l as usize];
                let full = overlap == left.len();
                // A part neither held nor small enough to generalise from
                // has nothing to do.
                if full || (overlap > 0 && overlap as usize <= self.cfg.max_left_facts) {
                    self.visit(&mut pass, &present, l, full, overlap);
                }
            }
            self.reset_counts(touched);
        } else {
            for l in held {
                let overlap = self.lefts[l as usize].facts.len();
                self.visit(&mut pass, &present, l, true, overlap);
            }
        }
        let confirmed = if pass.selected > 0 {
            pass.active.len() as f64 / pass.selected as f64
        } else {
            0.0
        };

        // The contexts confirmed most often join the present context.
        let mut active = std::mem::take(&mut pass.active);
        let top = self.cfg.max_active;
        if top < active.len() {
            if top > 0 {
                active.select_nth_unstable_by_key(top - 1, |&c| {
                    let c = &self.contexts[c as usize];
                    (std::cmp::Reverse(c.active), c.id)
                });
            }
            active.truncate(top);
        }
        let mut ids: Vec<u64> = active
            .iter()
            .map(|&c| self.contexts[c as usize].id)
            .collect();
        ids.sort_unstable();

        // Learn the generalisations.
        let offered = pass.candidates.len() + usize::from(!previous.is_empty());
        let mut new = usize::from(whole_new.is_some());
        for (left, right) in &pass.candidates {
            if self.context(left, *right, false).1 {
                new += 1;
            }
        }
        let novel = if whole_new.is_some() && offered > 0 {
            new as f64 / offered as f64
        } else {
            0.0
        };

        // Predict the next step from the contexts whose left part holds.
        self.facts = Facts { sensory, ids };
        let facts = self.facts.clone();
        let held = self.held(&facts);
        let mut best = 0.0;
        let mut predicted = 0;
        for &l in &held {
            for &(r, c) in &self.lefts[l as usize].contexts {
                let context = &self.contexts[c as usize];
                let weight = if context.predicted > 0 {
                    f64::from(context.confirmed) / f64::from(context.predicted)
                } else {
                    0.0
                };
                if weight > best {
                    best = weight;
                    predicted = 0;
                }
                if weight >= best {
                    predicted |= self.rights[r as usize];
                }
            }
        }
        self.predicted = predicted;
        self.index.held = Some(held);

        if self.contexts.len() > self.cfg.max_contexts {
            self.prune();
        }

        if surprised {
            (1.0 - confirmed + novel) / 2.0
        } else {
            0.0
        }
    }
}

/// A contextual anomaly detector after CAD OSE (Smirnov's Contextual
/// Anomaly Detector, Open Source Edition, an entry of the Numenta Anomaly
/// Benchmark), written from its published description, with a range learnt
/// causally and a bounded memory.
///
/// **Facts.** Each value falls in one of `2^bits` equal bins of the value
/// range, and the bits of the bin are the step's sensory facts. A step's
/// context is its sensory facts plus the identities of the (at most
/// `max_active`) contexts that fully predicted it, so it carries some of
/// the sequence that led there.
///
/// **Memory.** A learnt context is a pair (left facts → right sensory
/// facts). Every step learns the pair (previous step's context → present
/// sensory facts); when that pair is new, the generalisations it shares
/// with the pairs it partly overlaps are learnt too (the intersections of
/// their left and of their right parts).
///
/// **Score.** Of the contexts whose left part held at the previous step,
/// the share whose right part came true is `confirmed`; of the candidate
/// contexts this step offered, the share that was new is `novel`. The raw
/// score is `(1 − confirmed + novel) / 2`, and 0 when every sensory fact
/// was among those the best contexts (highest share of confirmed facts)
/// predicted. A raw score of at least `alarm` opens a rest period of
/// `rest` points scored 0, so an episode is reported once.
///
/// **Range.** Unless `range` is fixed, the first `warm_up` values set it
/// (their minimum and maximum) and are then learnt. A later value outside
/// it doubles the range's width (keeping the far edge) as often as needed,
/// and the memory is re-expressed in the new bins: after a doubling, old
/// bin `b` is bin `b / 2` (upwards) or `2^(bits−1) + b / 2` (downwards),
/// so every sensory fact moves one bit down, the lowest bit is forgotten
/// and the new top bit is known. Nothing is relearnt from scratch, and a
/// value far outside everything seen has facts no context predicts. (CAD
/// OSE as run on NAB is given each file's minimum and maximum in advance,
/// which a streaming detector cannot know.)
///
/// **Extreme values** (both off by default). The memory judges values by
/// the bins of a range it had to learn, and its rest period hides what
/// follows an alarm. With `outlier_z`, a value at least that many standard
/// deviations from a slow exponentially weighted mean, and with
/// `record_margin`, a value beyond the smallest or largest value seen by
/// more than that share of their difference, scores 1 whatever the memory
/// foresaw, even during a rest period, and opens one. Both are judged
/// against the values before it, after warm-up, on the side `direction`
/// counts. A large jump inflates the weighted variance at once, so a
/// lasting shift is extreme once, not at every step.
///
/// `expected`, `lower` and `upper` are the value range of the bins the
/// best contexts predicted.
///
/// Memory: at most `max_contexts` contexts (beyond, the least recently used
/// are forgotten down to three quarters of it); a left part holds at most
/// `bits` sensory facts and `max_active` context identities, a right part
/// `bits` sensory facts (one `u32`); the extreme-value rules keep five
/// numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contextual {
    memory: Memory,
    /// Finite values seen.
    n: u64,
    /// Steps since the last raw score of at least `alarm`.
    quiet: u64,
    /// The first values, held until they set the range.
    pending: Vec<f64>,
    /// The latest raw score as it would count without the rest period.
    #[serde(default)]
    unrested: f64,
    /// The baseline of [`ContextualConfig::outlier_z`].
    #[serde(default)]
    outliers: EwBaseline,
    /// The smallest and largest values seen, for
    /// [`ContextualConfig::record_margin`].
    #[serde(default)]
    seen: Option<[f64; 2]>,
}

impl Contextual {
    /// A model with no history.
    pub fn new(cfg: ContextualConfig) -> Self {
        let cfg = ContextualConfig {
            bits: cfg.bits.clamp(1, 8),
            max_contexts: cfg.max_contexts.max(16),
            ..cfg
        };
        Contextual {
            memory: Memory::new(cfg),
            n: 0,
            quiet: 0,
            pending: Vec::new(),
            unrested: 0.0,
            outliers: EwBaseline::default(),
            seen: None,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &ContextualConfig {
        &self.memory.cfg
    }

    /// Contexts in memory.
    pub fn context_count(&self) -> usize {
        self.memory.contexts.len()
    }

    /// The latest observation's score without the rest period (still 0
    /// during warm-up and on the side `direction` ignores): how anomalous
    /// the value is while alarms rest, e.g. to keep an open incident open
    /// until the new behaviour has been learnt.
    pub fn unrested(&self) -> f64 {
        self.unrested
    }

    /// Whether `value` is an extreme value ([`ContextualConfig::outlier_z`],
    /// [`ContextualConfig::record_margin`]), judged against the values
    /// before it; then learns it into the baselines of both.
    fn extreme(&mut self, value: f64, warming_up: bool) -> bool {
        let cfg = self.memory.cfg;
        let mut extreme = false;
        if cfg.outlier_z > 0.0 {
            let (mean, sigma) = self.outliers.expected_sigma();
            let z = cfg.direction.deviation((value - mean) / sigma);
            extreme |= !warming_up && z >= cfg.outlier_z;
            let alpha = if cfg.outlier_alpha > 0.0 && cfg.outlier_alpha <= 1.0 {
                cfg.outlier_alpha
            } else {
                ContextualConfig::default().outlier_alpha
            };
            // A value too far out to square would make the variance
            // infinite, which neither helps nor survives serialisation.
            if mean.is_nan() || (value - mean).abs() < 1e150 {
                self.outliers.learn(alpha, value);
            }
        }
        if let Some(margin) = cfg.record_margin {
            let [lo, hi] = self.seen.unwrap_or([value, value]);
            let beyond = (hi - lo) * margin;
            let (up, down) = (value - hi > beyond, lo - value > beyond);
            extreme |= !warming_up
                && match cfg.direction {
                    Direction::Both => up || down,
                    Direction::Up => up,
                    Direction::Down => down,
                };
            self.seen = Some([lo.min(value), hi.max(value)]);
        }
        extreme
    }

    /// Sets the range from the held-back values and learns them in order.
    fn start_range(&mut self) {
        let held = std::mem::take(&mut self.pending);
        let lo = held.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = held.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if lo.is_finite() {
            self.memory.lo = Some(lo);
            self.memory.width = if (hi - lo).is_finite() { hi - lo } else { 0.0 };
        }
        for v in held {
            self.memory.learn(v);
        }
    }
}

impl Model for Contextual {
    fn observe(&mut self, _t: Millis, value: f64) -> Score {
        let cfg = self.memory.cfg;
        let warming_up = self.n < cfg.warm_up as u64;
        let (expected, lower, upper) = self.memory.band();
        if !value.is_finite() {
            return ignored(value, expected, lower, upper, warming_up);
        }
        self.n += 1;
        let extreme = self.extreme(value, warming_up);
        let raw = if warming_up && self.memory.fixed_range().is_none() {
            // Held back until the initial range is known.
            self.pending.push(value);
            if self.n >= cfg.warm_up as u64 {
                self.start_range();
            }
            0.0
        } else {
            self.memory.learn(value)
        };
        let raw = if extreme { 1.0 } else { raw };
        let rested = extreme || self.quiet >= cfg.rest as u64;
        self.quiet = if raw >= cfg.alarm {
            0
        } else {
            self.quiet.saturating_add(1)
        };
        let side = match cfg.direction {
            Direction::Both => true,
            Direction::Up => value > expected,
            Direction::Down => value < expected,
        };
        self.unrested = if warming_up || !(side || extreme) {
            0.0
        } else {
            raw
        };
        let score = if rested { self.unrested } else { 0.0 };
        Score {
            score: score.clamp(0.0, 1.0),
            expected,
            lower,
            upper,
            observed: value,
            warming_up,
        }
    }
}

impl Memory {
    /// Learns one value; returns its raw score.
    fn learn(&mut self, value: f64) -> f64 {
        self.learn_range(value);
        let raw = self.step(self.sensory(value));
        self.n += 1;
        raw
    }

    /// The expected value and band: NaN before any value, the constant
    /// while every value was one constant.
    fn band(&self) -> (f64, f64, f64) {
        match self.lo {
            _ if self.fixed_range().is_some() => self.predicted_band(),
            None => (f64::NAN, f64::NAN, f64::NAN),
            Some(lo) if self.width == 0.0 => (lo, lo, lo),
            Some(_) => self.predicted_band(),
        }
    }
}

#[cfg(test)]
mod tests;
