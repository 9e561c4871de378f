//! Adaptive resonance theory (fuzzy ART) on features of a sliding window:
//! an input that matches no learnt cluster is an anomaly.

use serde::{Deserialize, Serialize};

use super::{EwBaseline, Model, Score, ignored, statistic_to_score};
use crate::Millis;

/// How [`Art`]'s learnt value range grows when a value falls outside it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RangeGrowth {
    /// Never: values outside are clamped to the range's edge.
    Clamp,
    /// To the value, and beyond it by this share of the new width.
    Stretch(f64),
    /// The width doubles (keeping the far edge) as often as needed.
    Double,
}

/// Parameters of [`Art`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArtConfig {
    /// The first `warm_up` values are held back until their minimum and
    /// maximum give the initial range, then learnt in order; they score 0.
    pub warm_up: usize,
    /// Values per window, rounded up to a power of two (2 to 64).
    pub window: usize,
    /// Weight of the window's last value in the range (its level).
    pub level_weight: f64,
    /// Weight of the window scaled by its own minimum and maximum (its
    /// shape).
    pub shape_weight: f64,
    /// Weight of the window's Haar wavelet transform in the range.
    pub haar_weight: f64,
    /// Haar detail coefficients are multiplied by this, then centred on ½
    /// and clamped to `[0, 1]`.
    pub haar_gain: f64,
    /// The shape's scale is at least this share of the range, so that the
    /// noise of a flat window is not magnified into a shape.
    pub shape_floor: f64,
    /// The choice function's `α` (a small positive number).
    pub choice: f64,
    /// Learning rate `β` of a resonating category, in `[0, 1]` (1 = fast
    /// learning: its box grows to hold the input).
    pub learn_rate: f64,
    /// Upper vigilance `ρ_ub`: a category matching the input at least this
    /// well resonates and learns it; if none does, the input becomes a new
    /// category.
    pub vigilance: f64,
    /// The lower vigilance `ρ_lb` is at most `vigilance − cluster_gap`
    /// (and see `cluster_k`).
    pub cluster_gap: f64,
    /// `ρ_lb` is also at most the running mean of the best match minus
    /// this many of its standard deviations.
    pub cluster_k: f64,
    /// Weight of each best match in its running mean and variance (an
    /// exponentially weighted estimate), in `(0, 1]`.
    pub similarity_alpha: f64,
    /// A new cluster scores [`statistic_to_score`] of how many standard
    /// deviations its best match fell below the running mean: ½ at this
    /// many.
    pub z_half: f64,
    /// After a new cluster is reported, the next `rest` values score 0.
    pub rest: usize,
    /// At most this many categories; beyond, the least recently used is
    /// forgotten.
    pub max_categories: usize,
    /// How the range grows when a value falls outside it (default: to the
    /// value and 3% of the new width beyond it).
    pub growth: RangeGrowth,
}

impl Default for ArtConfig {
    fn default() -> Self {
        ArtConfig {
            warm_up: 150,
            window: 4,
            level_weight: 4.0,
            shape_weight: 0.5,
            haar_weight: 1.0,
            haar_gain: 2.0,
            shape_floor: 0.2,
            choice: 0.001,
            learn_rate: 1.0,
            vigilance: 0.9,
            cluster_gap: 0.02,
            cluster_k: 3.0,
            similarity_alpha: 0.05,
            z_half: 8.0,
            rest: 15,
            max_categories: 256,
            growth: RangeGrowth::Stretch(0.03),
        }
    }
}

/// How a feature follows a change of the value range.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// A value in the range: `x' = a x + b`.
    Level,
    /// A difference centred on ½: `x' = ½ + a (x − ½)`.
    Centred,
    /// Independent of the range.
    Invariant,
}

/// A learnt category: a box `[low, high]` in feature space (the fuzzy ART
/// weight `w` is `(low, 1 − high)` in complement coding).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Category {
    low: Vec<f64>,
    high: Vec<f64>,
    /// The cluster (dual vigilance) it belongs to.
    cluster: u64,
    /// Step of its last use (created or resonated).
    last_used: u64,
}

/// A fuzzy ART anomaly detector on features of a sliding window, written
/// from the published methods: fuzzy ART (Carpenter, Grossberg & Rosen
/// 1991) and dual vigilance fuzzy ART (Brito da Silva, Elnabarawy & Wunsch
/// 2019), with a range learnt causally.
///
/// **Range.** The first `warm_up` values are held back; their minimum and
/// maximum give the initial range, and they are then learnt in order,
/// unscored. A later value outside the range grows it (`growth`; by default
/// to the value and 3% beyond), and every category is re-expressed in the
/// new range exactly (each feature is an affine function of the range, so
/// a box maps to a box). Values are scaled into the range and clamped to
/// `[0, 1]`.
///
/// **Features** of the last `window` values, in `[0, 1]`: the last value
/// (its level), the window scaled by its own minimum and maximum (its
/// shape; the scale is at least `shape_floor` of the range, so a flat
/// window stays flat), and the Haar wavelet transform of the window (its
/// mean and its detail coefficients times `haar_gain`, centred on ½). Each
/// group has a weight; within a group the features share it equally.
///
/// **ART.** An input `x` is a point, a category a box. A category's match
/// is `|x ∧ w| / |x|` in complement coding, i.e. one minus the weighted
/// growth of its box needed to hold `x`; its choice is `|x ∧ w| / (α +
/// |w|)`. Of the categories matching at least `vigilance`, the one of
/// highest choice learns `x` (its box grows towards it by `learn_rate`);
/// if none matches, `x` becomes a new category, in the cluster of the
/// best-matching category if that one matches at least the lower
/// vigilance `ρ_lb`, or else in a new cluster.
///
/// **Score.** `ρ_lb` adapts to the running level of the best match: it is
/// the smaller of `vigilance − cluster_gap` and the best match's
/// exponentially weighted mean minus `cluster_k` standard deviations. After
/// warm-up, an input founding a new cluster is an anomaly, scored by how
/// many standard deviations its best match fell below the mean; it does
/// not enter the running level, and the next `rest` values score 0 (any
/// input founding a new cluster restarts the rest). Every other input
/// scores 0.
///
/// `expected`, `lower` and `upper` are the middle and edges of the learnt
/// range.
///
/// Memory: at most `max_categories` categories of `2 · window + 1`
/// features (two numbers each), the window, and a few numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Art {
    cfg: ArtConfig,
    /// Finite values seen.
    n: u64,
    /// The first values, held until they set the range.
    pending: Vec<f64>,
    /// The range `[lo, lo + width]`: `None` before the first learnt value,
    /// width 0 while every value was the same.
    lo: Option<f64>,
    width: f64,
    /// The last `window` values (oldest first).
    slots: Vec<f64>,
    categories: Vec<Category>,
    /// Clusters founded.
    clusters: u64,
    /// ART steps taken.
    steps: u64,
    /// The running level of the best match.
    similarity: EwBaseline,
    /// Values since an input last founded a new cluster.
    quiet: u64,
}

impl Art {
    /// A model with no history.
    pub fn new(cfg: ArtConfig) -> Self {
        let cfg = ArtConfig {
            window: cfg.window.clamp(2, 64).next_power_of_two(),
            max_categories: cfg.max_categories.max(1),
            ..cfg
        };
        Art {
            cfg,
            n: 0,
            pending: Vec::new(),
            lo: None,
            width: 0.0,
            slots: Vec::new(),
            categories: Vec::new(),
            clusters: 0,
            steps: 0,
            similarity: EwBaseline::default(),
            quiet: u64::MAX,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &ArtConfig {
        &self.cfg
    }

    /// Categories in memory.
    pub fn category_count(&self) -> usize {
        self.categories.len()
    }

    /// Clusters founded so far (including forgotten ones).
    pub fn cluster_count(&self) -> u64 {
        self.clusters
    }

    /// The kind and weight of each feature, in the order of
    /// [`Art::features`].
    fn layout(&self) -> Vec<(Kind, f64)> {
        let w = self.cfg.window;
        let share = |weight: f64| {
            if weight > 0.0 { weight / w as f64 } else { 0.0 }
        };
        let positive = |weight: f64| if weight > 0.0 { weight } else { 0.0 };
        let (shape, haar) = (share(self.cfg.shape_weight), share(self.cfg.haar_weight));
        let mut out = Vec::with_capacity(2 * w + 1);
        out.push((Kind::Level, positive(self.cfg.level_weight)));
        out.extend((0..w).map(|_| (Kind::Invariant, shape)));
        out.push((Kind::Level, haar));
        out.extend((1..w).map(|_| (Kind::Centred, haar)));
        out
    }

    /// Lowest value and width of the range in use (width 1 while it is
    /// not known).
    fn scale(&self) -> (f64, f64) {
        let width = if self.width > 0.0 { self.width } else { 1.0 };
        (self.lo.unwrap_or(0.0), width)
    }

    /// The features of the current (full) window, in `[0, 1]`.
    fn features(&self) -> Vec<f64> {
        let (lo, width) = self.scale();
        let g: Vec<f64> = self
            .slots
            .iter()
            .map(|&v| {
                let u = (v - lo) / width;
                if u.is_nan() { 0.5 } else { u.clamp(0.0, 1.0) }
            })
            .collect();
        let w = g.len();
        let (mn, mx) = g
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        let floor = if self.cfg.shape_floor > 1e-9 {
            self.cfg.shape_floor
        } else {
            1e-9
        };
        let span = (mx - mn).max(floor);
        let mid = 0.5 * (mn + mx);
        let mut out = Vec::with_capacity(2 * w + 1);
        out.push(g[w - 1]);
        out.extend(g.iter().map(|&x| (0.5 + (x - mid) / span).clamp(0.0, 1.0)));
        // Haar pyramid: means and half-differences of pairs, finest first.
        let mut level = g;
        let mut details = Vec::with_capacity(w - 1);
        while level.len() > 1 {
            details.extend(level.chunks(2).map(|p| 0.5 * (p[1] - p[0])));
            level = level.chunks(2).map(|p| 0.5 * (p[0] + p[1])).collect();
        }
        out.push(level[0]);
        let gain = self.cfg.haar_gain;
        out.extend(details.iter().map(|&d| {
            let x = 0.5 + gain * d;
            if x.is_nan() { 0.5 } else { x.clamp(0.0, 1.0) }
        }));
        out
    }

    /// Moves the range to `[lo, lo + width]` and re-expresses every
    /// category in it.
    fn rescale(&mut self, lo: f64, width: f64) {
        let (old_lo, old_width) = self.scale();
        let a = old_width / width;
        let b = (old_lo - lo) / width;
        if !(a.is_finite() && b.is_finite()) {
            // Too far apart to map: the old boxes mean nothing here.
            self.categories.clear();
        }
        let layout = self.layout();
        for c in &mut self.categories {
            for (i, &(kind, _)) in layout.iter().enumerate() {
                let f = |x: f64| {
                    let y = match kind {
                        Kind::Level => a * x + b,
                        Kind::Centred => 0.5 + a * (x - 0.5),
                        Kind::Invariant => x,
                    };
                    y.clamp(0.0, 1.0)
                };
                c.low[i] = f(c.low[i]);
                c.high[i] = f(c.high[i]);
            }
        }
        self.lo = Some(lo);
        self.width = width;
    }

    /// Grows the range to hold `v` (see [`RangeGrowth`]).
    fn grow(&mut self, v: f64) {
        let Some(lo) = self.lo else {
            self.lo = Some(v);
            return;
        };
        if self.width == 0.0 {
            let d = (v - lo).abs();
            if d > 0.0 && d.is_finite() {
                // A first width: the constant so far goes to an edge.
                self.rescale(lo.min(v), d);
            }
            return;
        }
        let hi = lo + self.width;
        if (lo..=hi).contains(&v) {
            return;
        }
        let (new_lo, new_width) = match self.cfg.growth {
            RangeGrowth::Clamp => return,
            RangeGrowth::Stretch(margin) => {
                let (a, b) = (lo.min(v), hi.max(v));
                let extra = (b - a) * margin.max(0.0);
                let lo = if v < lo { a - extra } else { a };
                (lo, b - a + extra)
            }
            RangeGrowth::Double => {
                let (mut lo, mut width) = (lo, self.width);
                while v > lo + width && width.is_finite() {
                    width *= 2.0;
                }
                while v < lo && width.is_finite() {
                    lo -= width;
                    width *= 2.0;
                }
                (lo, width)
            }
        };
        if new_width.is_finite() && new_width > 0.0 && new_lo.is_finite() {
            self.rescale(new_lo, new_width);
        }
    }

    /// The lower vigilance, and the running mean and standard deviation
    /// of the best match.
    fn lower_vigilance(&self) -> (f64, f64, f64) {
        let (mean, sd) = self.similarity.expected_sigma();
        if mean.is_nan() {
            return (f64::NEG_INFINITY, 1.0, 1.0);
        }
        let cap = self.cfg.vigilance - self.cfg.cluster_gap;
        ((mean - self.cfg.cluster_k * sd).min(cap), mean, sd)
    }

    /// One ART step on the current window: learns it and returns its
    /// anomaly statistic (0 unless it founded a new cluster while
    /// `scoring`).
    fn step(&mut self, scoring: bool) -> f64 {
        let x = self.features();
        let layout = self.layout();
        let total: f64 = layout.iter().map(|&(_, w)| w).sum();
        if total <= 0.0 || !total.is_finite() {
            return 0.0;
        }
        let mut best: Option<(usize, f64)> = None;
        let mut chosen: Option<(usize, f64)> = None;
        for (j, c) in self.categories.iter().enumerate() {
            // |x ∧ w| and |w| in complement coding, per feature.
            let (mut inter, mut size) = (0.0, 0.0);
            for (i, &(_, wt)) in layout.iter().enumerate() {
                let grown = c.high[i].max(x[i]) - c.low[i].min(x[i]);
                inter += wt * (1.0 - grown);
                size += wt * (1.0 - (c.high[i] - c.low[i]));
            }
            let m = inter / total;
            if best.is_none_or(|(_, b)| m > b) {
                best = Some((j, m));
            }
            if m >= self.cfg.vigilance {
                let t = inter / (self.cfg.choice.max(0.0) + size);
                if chosen.is_none_or(|(_, tb)| t > tb) {
                    chosen = Some((j, t));
                }
            }
        }
        self.steps += 1;
        let (rho, mean, sd) = self.lower_vigilance();
        let new_cluster = best.is_none_or(|(_, m)| m < rho);
        let mut stat = 0.0;
        match best {
            Some((_, m)) if scoring && new_cluster => {
                stat = ((mean - m) / sd.max(1e-12)).max(f64::MIN_POSITIVE);
            }
            Some((_, m)) => {
                let alpha = if self.cfg.similarity_alpha > 0.0 && self.cfg.similarity_alpha <= 1.0 {
                    self.cfg.similarity_alpha
                } else {
                    ArtConfig::default().similarity_alpha
                };
                self.similarity.learn(alpha, m);
            }
            None => {}
        }
        // A new cluster is a new category, whatever the vigilances.
        match chosen.filter(|_| !new_cluster) {
            Some((j, _)) => {
                let beta = self.cfg.learn_rate.clamp(0.0, 1.0);
                let c = &mut self.categories[j];
                for (i, &xi) in x.iter().enumerate() {
                    c.low[i] = beta * c.low[i].min(xi) + (1.0 - beta) * c.low[i];
                    c.high[i] = beta * c.high[i].max(xi) + (1.0 - beta) * c.high[i];
                }
                c.last_used = self.steps;
            }
            None => {
                let cluster = match best {
                    Some((j, _)) if !new_cluster => self.categories[j].cluster,
                    _ => {
                        self.clusters += 1;
                        self.clusters
                    }
                };
                if self.categories.len() >= self.cfg.max_categories {
                    let oldest = (0..self.categories.len())
                        .min_by_key(|&j| self.categories[j].last_used)
                        .unwrap_or(0);
                    self.categories.swap_remove(oldest);
                }
                self.categories.push(Category {
                    low: x.clone(),
                    high: x,
                    cluster,
                    last_used: self.steps,
                });
            }
        }
        stat
    }

    /// Learns one value: grows the range, slides the window and, once it
    /// is full, takes an ART step. Returns the step's statistic.
    fn learn(&mut self, v: f64, scoring: bool) -> f64 {
        self.grow(v);
        if self.slots.len() == self.cfg.window {
            self.slots.remove(0);
        }
        self.slots.push(v);
        if self.slots.len() < self.cfg.window {
            return 0.0;
        }
        self.step(scoring)
    }

    /// Sets the range from the held-back values and learns them in order.
    fn start(&mut self) {
        let held = std::mem::take(&mut self.pending);
        let lo = held.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = held.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if lo.is_finite() {
            self.lo = Some(lo);
            self.width = if (hi - lo).is_finite() { hi - lo } else { 0.0 };
        }
        for v in held {
            self.learn(v, false);
        }
    }
}

impl Model for Art {
    fn observe(&mut self, _t: Millis, value: f64) -> Score {
        let warming_up = self.n < self.cfg.warm_up as u64;
        let (expected, lower, upper) = match self.lo {
            Some(lo) => (lo + 0.5 * self.width, lo, lo + self.width),
            None => (f64::NAN, f64::NAN, f64::NAN),
        };
        if !value.is_finite() {
            return ignored(value, expected, lower, upper, warming_up);
        }
        self.n += 1;
        let rested = self.quiet >= self.cfg.rest as u64;
        let clusters = self.clusters;
        let stat = if warming_up {
            self.pending.push(value);
            if self.n >= self.cfg.warm_up as u64 {
                self.start();
            }
            0.0
        } else {
            self.learn(value, true)
        };
        self.quiet = if self.clusters != clusters {
            0
        } else {
            self.quiet.saturating_add(1)
        };
        let score = if stat > 0.0 && rested {
            statistic_to_score(stat, self.cfg.z_half)
        } else {
            0.0
        };
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

#[cfg(test)]
mod tests;
