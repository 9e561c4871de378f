//! The phase buckets of a period: the last values of each, as `f32`
//! offsets.

use serde::{Deserialize, Serialize};

use super::{F32s, SeasonalConfig, sigma_of_sorted, to_f32, with_ready_sigmas, with_sorted};

/// The buckets of the period in use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Buckets {
    /// The buckets' values (offsets): bucket `b` in
    /// `[b · per_bucket, (b + 1) · per_bucket)`, oldest first, unused places
    /// (NaN) last.
    values: F32s,
    /// Robust σ of each bucket with at least `min_per_bucket` values (NaN
    /// for the others).
    sigmas: F32s,
    /// Median σ over the buckets with at least `min_per_bucket` values (0
    /// when there are none).
    pub(super) pooled_sigma: f64,
    #[serde(skip)]
    recent: Recent,
}

/// Median and σ of the last two buckets computed (most recent first): a
/// point is judged against its bucket and one neighbour, nearly always the
/// same two as the point before. Derived, so neither saved nor compared.
#[derive(Debug, Clone, Default)]
struct Recent([Option<(usize, (f64, f64))>; 2]);

impl PartialEq for Recent {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Buckets {
    /// Empty buckets.
    pub(super) fn new(cfg: &SeasonalConfig) -> Self {
        Buckets {
            values: F32s(vec![f32::NAN; cfg.buckets * cfg.per_bucket]),
            sigmas: F32s(vec![f32::NAN; cfg.buckets]),
            pooled_sigma: 0.0,
            recent: Recent::default(),
        }
    }

    /// Whether they fit `cfg` (a restored state might not).
    pub(super) fn fit(&self, cfg: &SeasonalConfig) -> bool {
        self.sigmas.len() == cfg.buckets && self.values.len() == cfg.buckets * cfg.per_bucket
    }

    #[cfg(test)]
    pub(super) fn sizes(&self) -> (usize, usize) {
        (self.values.len(), self.sigmas.len())
    }

    fn bucket(&self, cfg: &SeasonalConfig, b: usize) -> &[f32] {
        let per = cfg.per_bucket;
        let all = &self.values[b * per..(b + 1) * per];
        &all[..all.iter().take_while(|v| !v.is_nan()).count()]
    }

    /// Whether bucket `b` has at least `min_per_bucket` values.
    pub(super) fn ready(&self, b: usize) -> bool {
        !self.sigmas[b].is_nan()
    }

    /// Median and σ (offsets) of bucket `b`, which is not empty.
    pub(super) fn stats(&mut self, cfg: &SeasonalConfig, b: usize) -> (f64, f64) {
        let [first, second] = self.recent.0;
        match (first, second) {
            (Some((c, stats)), _) if c == b => stats,
            (_, Some((c, stats))) if c == b => {
                self.recent.0 = [second, first];
                stats
            }
            _ => {
                let stats = with_sorted(self.bucket(cfg, b), sigma_of_sorted);
                self.recent.0 = [Some((b, stats)), first];
                stats
            }
        }
    }

    /// Adds an offset to bucket `b` (its oldest value goes when it is
    /// full); with `update`, its σ and the pooled σ follow.
    pub(super) fn push(&mut self, cfg: &SeasonalConfig, b: usize, x: f32, update: bool) {
        for entry in &mut self.recent.0 {
            if entry.is_some_and(|(c, _)| c == b) {
                *entry = None;
            }
        }
        let per = cfg.per_bucket;
        let len = self.bucket(cfg, b).len();
        let bucket = &mut self.values[b * per..(b + 1) * per];
        if len == per {
            bucket.copy_within(1.., 0);
            bucket[per - 1] = x;
        } else {
            bucket[len] = x;
        }
        if update && self.update_sigma(cfg, b) {
            self.update_pooled();
        }
    }

    /// Updates every bucket's σ and the pooled σ.
    pub(super) fn update_all(&mut self, cfg: &SeasonalConfig) {
        for b in 0..cfg.buckets {
            self.update_sigma(cfg, b);
        }
        self.update_pooled();
    }

    /// Updates bucket `b`'s σ; true when it changed.
    fn update_sigma(&mut self, cfg: &SeasonalConfig, b: usize) -> bool {
        let sigma = if self.bucket(cfg, b).len() >= cfg.min_per_bucket {
            to_f32(self.stats(cfg, b).1)
        } else {
            f32::NAN
        };
        let changed = sigma.to_bits() != self.sigmas[b].to_bits();
        self.sigmas[b] = sigma;
        changed
    }

    fn update_pooled(&mut self) {
        self.pooled_sigma = with_ready_sigmas(&self.sigmas, |s| {
            if s.is_empty() {
                0.0
            } else {
                let mid = s.len() / 2;
                f64::from(*s.select_nth_unstable_by(mid, f32::total_cmp).1)
            }
        });
    }
}
