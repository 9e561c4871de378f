//! `kind: multivariate`: one PCA model ([`Multivariate`]) per `by` group,
//! judging a row of several metrics of one service every `step`, with a
//! threshold lifecycle over its score.
//!
//! Rows are assembled from the samples alone, with no timer, so the binding
//! stays as deterministic as the model: it keeps the latest value of each
//! selected series per group, and when a sample of a group arrives at or
//! past the group's next step boundary (the next multiple of `step`), the
//! group's row is taken at that sample's time. Each metric's entry is the
//! sum over the group's series of their latest value (a gauge) or their
//! per-second rate since the previous row (a counter named in `rate:`; a
//! decrease counts as a reset from 0), counting only series with a sample
//! within the last two steps. A row missing a metric is skipped. The first
//! sample of a group is due at once, so a restored model sees the rows the
//! uninterrupted one would have (counters need one more step for a rate).

use std::collections::{BTreeMap, HashMap};

use medic_detectors::anomaly::{MultiScore, Multivariate, MultivariateConfig};
use medic_detectors::{State, Threshold, ThresholdConfig};

use super::{Change, finite, group_of, trim};
use crate::series::key::{KeyMap, series_key};
use crate::series::selector::Selector;
use crate::series::{Batch, Labels, Millis};

/// One metric of a row.
pub(super) struct Metric {
    /// Its name in `metrics:`, used in evidence.
    pub name: String,
    /// The series it sums.
    pub selector: Selector,
    /// A counter: the row takes its per-second rate.
    pub rate: bool,
}

/// A configured `multivariate` detector: its metrics and a model per group.
pub(super) struct MultivariateBinding {
    metrics: Vec<Metric>,
    by: Vec<String>,
    step: Millis,
    model: MultivariateConfig,
    lifecycle: ThresholdConfig,
    groups: HashMap<Labels, Group>,
}

/// One group (service): its row assembly, model and lifecycle.
struct Group {
    rows: Rows,
    model: Multivariate,
    lifecycle: Threshold,
}

impl MultivariateBinding {
    pub(super) fn new(
        metrics: Vec<Metric>,
        by: Vec<String>,
        step: Millis,
        model: MultivariateConfig,
        lifecycle: ThresholdConfig,
    ) -> Self {
        MultivariateBinding {
            metrics,
            by,
            step: step.max(1),
            model,
            lifecycle,
            groups: HashMap::new(),
        }
    }

    fn group(&self, model: Multivariate) -> Group {
        Group {
            rows: Rows::new(self.step, self.metrics.iter().map(|m| m.rate).collect()),
            model,
            lifecycle: Threshold::new(self.lifecycle.clone()),
        }
    }

    pub(super) fn selects(&self, name: &str, labels: &Labels) -> bool {
        self.metrics
            .iter()
            .any(|m| m.selector.matches(name, labels))
    }

    pub(super) fn state(&self, group: &Labels) -> Option<State> {
        self.groups.get(group).map(|g| g.lifecycle.state())
    }

    pub(super) fn model_states(&self) -> Vec<(Labels, String)> {
        self.groups
            .iter()
            .filter_map(|(l, g)| Some((l.clone(), serde_json::to_string(&g.model).ok()?)))
            .collect()
    }

    pub(super) fn restore_model_states(&mut self, states: Vec<(Labels, String)>) -> usize {
        let mut n = 0;
        for (l, text) in states {
            if let Ok(m) = serde_json::from_str::<Multivariate>(&text) {
                let g = self.group(m);
                self.groups.insert(l, g);
                n += 1;
            }
        }
        n
    }

    /// Records the batch's samples; judges the row of each group it brought
    /// to a step boundary.
    pub(super) fn observe(&mut self, detector: &str, batch: &Batch) -> (Vec<Change>, u64) {
        // Groups this batch touched, at their latest sample; ordered, so
        // that changes come out in the same order every time.
        let mut touched: BTreeMap<Labels, Millis> = BTreeMap::new();
        for s in &batch.samples {
            let mut group: Option<Labels> = None;
            for (j, m) in self.metrics.iter().enumerate() {
                if !m.selector.matches(&s.name, &s.labels) {
                    continue;
                }
                let g = group.get_or_insert_with(|| group_of(&s.labels, &self.by));
                if !self.groups.contains_key(g) {
                    let new = self.group(Multivariate::new(self.model));
                    self.groups.insert(g.clone(), new);
                }
                if let Some(state) = self.groups.get_mut(g) {
                    state
                        .rows
                        .record(j, series_key(&s.name, &s.labels), s.at, s.value);
                }
            }
            if let Some(g) = group {
                let t = touched.entry(g).or_insert(s.at);
                *t = (*t).max(s.at);
            }
        }
        let mut out = Vec::new();
        for (labels, now) in touched {
            let Some(g) = self.groups.get_mut(&labels) else {
                continue;
            };
            let Some(row) = g.rows.take(now) else {
                continue;
            };
            let Some(row) = row.into_iter().collect::<Option<Vec<f64>>>() else {
                // A metric without a fresh value: no row this step.
                continue;
            };
            let score = g.model.observe(now, &row);
            let mut e = g.lifecycle.observe(now, score.score);
            let ranked = ranked(&self.metrics, &row, &score);
            e.evidence.observed = ranked.first().map_or(f64::NAN, |m| m.observed);
            e.evidence.reason = reason(&ranked, &score, self.lifecycle.value + f64::EPSILON);
            out.push(Change {
                detector: detector.to_string(),
                labels,
                evaluation: e,
                detail: Some(serde_json::json!({
                    "model": "pca",
                    "score": score.score,
                    "spe": score.spe,
                    "t2": score.t2,
                    "expected": ranked.first().and_then(|m| finite(m.expected)),
                    "metrics": ranked.iter().map(|m| serde_json::json!({
                        "metric": m.name,
                        "observed": finite(m.observed),
                        "expected": finite(m.expected),
                        "contribution": m.contribution,
                    })).collect::<Vec<_>>(),
                    "warming_up": score.warming_up,
                })),
            });
        }
        let judged = out.len() as u64;
        (out, judged)
    }
}

/// One metric of a judged row.
struct Judged<'a> {
    name: &'a str,
    observed: f64,
    expected: f64,
    contribution: f64,
}

/// The row's metrics, the largest contribution first (ties in `metrics:`
/// order).
fn ranked<'a>(metrics: &'a [Metric], row: &[f64], s: &MultiScore) -> Vec<Judged<'a>> {
    let mut v: Vec<Judged<'a>> = metrics
        .iter()
        .enumerate()
        .map(|(j, m)| Judged {
            name: &m.name,
            observed: row[j],
            expected: s.expected.get(j).copied().unwrap_or(f64::NAN),
            contribution: s.contributions.get(j).copied().unwrap_or(0.0),
        })
        .collect();
    v.sort_by(|a, b| b.contribution.total_cmp(&a.contribution));
    v
}

/// Metrics named in a reason; the rest are in the evidence's `metrics`.
const REASON_METRICS: usize = 3;

/// E.g. `row score 0.97 (SPE 14.2, T² 3.1; fires at 0.9): cpu=0.84
/// (expected 0.31) contributes 71 %, latency=0.12 (expected 0.11)
/// contributes 20 %, requests=100 (expected 98) contributes 9 %`.
fn reason(ranked: &[Judged<'_>], s: &MultiScore, threshold: f64) -> String {
    if s.warming_up {
        let row: Vec<String> = ranked
            .iter()
            .map(|m| format!("{}={}", m.name, trim(m.observed)))
            .collect();
        return format!("learning the service's normal rows ({})", row.join(", "));
    }
    let mut parts: Vec<String> = ranked
        .iter()
        .take(REASON_METRICS)
        .map(|m| {
            format!(
                "{}={} (expected {}) contributes {:.0} %",
                m.name,
                trim(m.observed),
                trim(m.expected),
                100.0 * m.contribution
            )
        })
        .collect();
    if ranked.len() > REASON_METRICS {
        parts.push(format!("{} more", ranked.len() - REASON_METRICS));
    }
    format!(
        "row score {:.2} (SPE {}, T² {}; fires at {}): {}",
        s.score,
        trim(s.spe),
        trim(s.t2),
        trim(threshold),
        parts.join(", ")
    )
}

/// One group's row assembly (see the module documentation).
struct Rows {
    step: Millis,
    /// Per metric: whether it is a counter.
    rate: Vec<bool>,
    /// The next step boundary; the first sample is due at once.
    next: Millis,
    /// Per metric: the latest point of each of its series in the group.
    latest: Vec<KeyMap<Latest>>,
}

/// The latest sample of one series.
#[derive(Debug, Clone, Copy)]
struct Latest {
    value: f64,
    at: Millis,
    /// Counters: the increase since `base_at` (resets counted from 0), and
    /// the rate the last row took, kept for rows that come before the next
    /// sample.
    increase: f64,
    base_at: Millis,
    rate: Option<f64>,
}

impl Rows {
    fn new(step: Millis, rate: Vec<bool>) -> Self {
        Rows {
            step,
            latest: vec![KeyMap::default(); rate.len()],
            rate,
            next: Millis::MIN,
        }
    }

    /// Records a sample of `metric` from the series keyed `series`.
    /// Non-finite values and samples no newer than the last are ignored.
    fn record(&mut self, metric: usize, series: u64, at: Millis, value: f64) {
        if !value.is_finite() {
            return;
        }
        let counter = self.rate[metric];
        let l = self.latest[metric].entry(series).or_insert(Latest {
            value,
            at,
            increase: 0.0,
            base_at: at,
            rate: None,
        });
        if at <= l.at {
            return;
        }
        if counter {
            l.increase += if value >= l.value {
                value - l.value
            } else {
                value
            };
        }
        l.value = value;
        l.at = at;
    }

    /// The row due at `now`: `None` before the next step boundary;
    /// otherwise each metric's value, `None` for a metric with no fresh
    /// series (or, for a counter, no rate yet).
    fn take(&mut self, now: Millis) -> Option<Vec<Option<f64>>> {
        if now < self.next {
            return None;
        }
        self.next = (now.div_euclid(self.step) + 1).saturating_mul(self.step);
        let fresh_from = now.saturating_sub(2 * self.step);
        let row = self
            .latest
            .iter_mut()
            .zip(&self.rate)
            .map(|(series, &counter)| {
                // A series gone quiet is forgotten (a counter starts over).
                series.retain(|_, l| l.at >= fresh_from);
                series
                    .values_mut()
                    .filter_map(|l| {
                        if counter {
                            l.take_rate()
                        } else {
                            Some(l.value)
                        }
                    })
                    .reduce(|a, b| a + b)
            })
            .collect();
        Some(row)
    }
}

impl Latest {
    /// The per-second rate since the previous row (or the previous rate
    /// when no sample came since).
    fn take_rate(&mut self) -> Option<f64> {
        if self.at > self.base_at {
            self.rate = Some(self.increase * 1000.0 / (self.at - self.base_at) as f64);
            self.increase = 0.0;
            self.base_at = self.at;
        }
        self.rate
    }
}

#[cfg(test)]
mod tests;
