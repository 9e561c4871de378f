//! Recent values of the series medic receives, for people: `GET
//! /api/v1/series?match=<selector>` answers what medic last saw of each
//! matching series, and, for series a detector watches, their recent points
//! (the chart around a detection).
//!
//! Bounded: at most `max_series` series (new ones beyond are not cached and
//! are counted), at most `points` points for a watched series and one for the
//! others; series with no sample for `ttl` are dropped.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;

use super::key::{CompactLabels, KeyMap, series_key};
use super::selector::Selector;
use super::{Batch, Labels, Millis, Sample};

/// Cache sizes.
#[derive(Debug, Clone, Copy)]
pub struct CacheLimits {
    /// Most series cached.
    pub max_series: usize,
    /// Points kept per watched series.
    pub points: usize,
    /// Series unseen for this long are dropped (ms).
    pub ttl: Millis,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            max_series: 200_000,
            points: 240,
            ttl: 15 * 60 * 1000,
        }
    }
}

struct Entry {
    name: Box<str>,
    labels: CompactLabels,
    watched: bool,
    points: VecDeque<(Millis, f64)>,
}

struct Inner {
    map: KeyMap<Entry>,
    last_sweep: Millis,
    dropped: u64,
}

/// The cache; shared by the engine (writer) and the API (reader).
pub struct SeriesCache {
    limits: CacheLimits,
    inner: Mutex<Inner>,
}

/// One series as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SeriesView {
    /// Metric name.
    pub name: String,
    /// Labels.
    pub labels: Labels,
    /// Whether a detector watches it (then `points` has its recent history).
    pub watched: bool,
    /// `[time ms, value]`, oldest first; non-finite values as null.
    pub points: Vec<(Millis, Option<f64>)>,
}

impl SeriesCache {
    /// Empty.
    pub fn new(limits: CacheLimits) -> Self {
        SeriesCache {
            limits,
            inner: Mutex::new(Inner {
                map: KeyMap::default(),
                last_sweep: 0,
                dropped: 0,
            }),
        }
    }

    /// Record a batch; `watched` says whether a detector selects a sample's
    /// series (asked once per new series).
    pub fn record(&self, batch: &Batch, watched: impl Fn(&Sample) -> bool) {
        let Ok(mut g) = self.inner.lock() else {
            return;
        };
        let inner = &mut *g;
        for s in &batch.samples {
            let k = series_key(&s.name, &s.labels);
            let e = match inner.map.get_mut(&k) {
                Some(e) => e,
                None => {
                    if inner.map.len() >= self.limits.max_series {
                        inner.dropped += 1;
                        continue;
                    }
                    inner.map.entry(k).or_insert_with(|| Entry {
                        name: s.name.as_str().into(),
                        labels: CompactLabels::new(&s.labels),
                        watched: watched(s),
                        points: VecDeque::new(),
                    })
                }
            };
            let cap = if e.watched { self.limits.points } else { 1 };
            // Keep time order: an older sample than the newest is ignored.
            if e.points.back().is_some_and(|(t, _)| *t > s.at) {
                continue;
            }
            if e.points.back().is_some_and(|(t, _)| *t == s.at) {
                e.points.pop_back();
            }
            while e.points.len() >= cap {
                e.points.pop_front();
            }
            e.points.push_back((s.at, s.value));
        }
        if batch.at - inner.last_sweep > 60_000 {
            let ttl = self.limits.ttl;
            let now = batch.at;
            inner
                .map
                .retain(|_, e| e.points.back().is_some_and(|(t, _)| now - *t <= ttl));
            inner.last_sweep = now;
        }
    }

    /// Re-decide which series are watched (after a reload).
    pub fn rewatch(&self, watched: impl Fn(&str, &Labels) -> bool) {
        if let Ok(mut g) = self.inner.lock() {
            for e in g.map.values_mut() {
                e.watched = watched(&e.name, &e.labels.to_labels());
            }
        }
    }

    /// Series matching `sel` (at most `limit`, sorted by name and labels).
    pub fn query(&self, sel: &Selector, limit: usize) -> Vec<SeriesView> {
        let Ok(g) = self.inner.lock() else {
            return Vec::new();
        };
        let mut out: Vec<SeriesView> = g
            .map
            .values()
            .filter_map(|e| {
                let labels = e.labels.to_labels();
                sel.matches(&e.name, &labels).then_some((e, labels))
            })
            .map(|(e, labels)| SeriesView {
                name: e.name.to_string(),
                labels,
                watched: e.watched,
                points: e
                    .points
                    .iter()
                    .map(|(t, v)| (*t, Some(*v).filter(|v| v.is_finite())))
                    .collect(),
            })
            .collect();
        out.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
        out.truncate(limit);
        out
    }

    /// Series cached and series refused because the cache was full.
    pub fn stats(&self) -> (usize, u64) {
        self.inner
            .lock()
            .map(|g| (g.map.len(), g.dropped))
            .unwrap_or((0, 0))
    }
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
