//! OTLP metrics → series, the way Prometheus's own OTLP receiver names them.
//!
//! * **Names**: the metric name with every character other than
//!   `[A-Za-z0-9_]` replaced by `_` (`http.server.duration` →
//!   `http_server_duration`); no unit or `_total` suffix is added.
//! * **Labels**: data point attributes, names sanitized the same way
//!   (`http.route` → `http_route`); then `job` = resource `service.name`
//!   (`service.namespace/service.name` when a namespace is set) and
//!   `instance` = `service.instance.id`, which win over point attributes of
//!   the same name. Other resource attributes are not copied (they would
//!   multiply series).
//! * **Sums**: cumulative → the value as sent (a monotonic one is a counter);
//!   delta → added up per series into a running total, so every sum reaches
//!   detectors as a cumulative value. **Gauges** → the value.
//! * **Histograms** → `<name>_bucket{le="…"}` (cumulative counts, `+Inf` =
//!   count), `<name>_sum` (when sent), `<name>_count`; delta ones are added up
//!   per series as sums are. **Exponential histograms** → the same three,
//!   with `le` at each bucket's upper bound (`base^(index+1)`,
//!   `base = 2^(2^−scale)`; negative buckets at `−base^index`; the zero bucket at
//!   the zero threshold). **Summaries** → `<name>{quantile="…"}`, `_sum`,
//!   `_count`.
//! * Points flagged "no recorded value" are skipped. A point is kept or
//!   refused whole: refused when a series of it exceeds the label limits, is
//!   inconsistent (bucket counts that do not match the bounds), or would
//!   exceed the active-series limit. Refusals become an OTLP partial success.
//!
//! Pure: the series limit is a callback and time an argument.

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, DataPointFlags, ExponentialHistogramDataPoint, HistogramDataPoint,
    NumberDataPoint, SummaryDataPoint, exponential_histogram_data_point::Buckets, metric::Data,
    number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::Outcome;
use super::red::{attr, value_text};
use crate::series::{Labels, Millis, Sample};
use crate::sources::push::{IngestLimits, series_key};

/// Prometheus-safe name: characters other than `[A-Za-z0-9_]` become `_`,
/// and a leading digit gets a `_` in front.
pub fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    out.extend(
        s.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
    );
    out
}

/// An `le`/`quantile` label value as Prometheus writes it.
fn bound(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        v.to_string()
    }
}

/// Running totals of delta series, bounded by the series limit: an entry not
/// updated for `ttl` is forgotten (its series restarts from the next delta).
#[derive(Debug, Default)]
pub struct Deltas {
    totals: HashMap<u64, (f64, Millis)>,
    last_gc: Millis,
}

impl Deltas {
    /// Add `delta` to the series `key`; answers its new total.
    fn add(&mut self, key: u64, delta: f64, now: Millis) -> f64 {
        let e = self.totals.entry(key).or_insert((0.0, now));
        e.0 += delta;
        e.1 = now;
        e.0
    }

    /// Forget totals idle for longer than `ttl`.
    pub fn gc(&mut self, now: Millis, ttl: Millis) {
        if now - self.last_gc > ttl.min(60_000) {
            self.totals.retain(|_, (_, seen)| now - *seen <= ttl);
            self.last_gc = now;
        }
    }

    /// Series with a running total.
    pub fn len(&self) -> usize {
        self.totals.len()
    }

    /// None.
    pub fn is_empty(&self) -> bool {
        self.totals.is_empty()
    }
}

/// `job` and `instance` from a resource.
pub fn resource_labels(resource: Option<&Resource>) -> Labels {
    let mut l = Labels::new();
    let Some(r) = resource else {
        return l;
    };
    let text = |k: &str| {
        attr(&r.attributes, k)
            .map(value_text)
            .filter(|v| !v.is_empty())
    };
    if let Some(name) = text("service.name") {
        let job = match text("service.namespace") {
            Some(ns) => format!("{ns}/{name}"),
            None => name.to_string(),
        };
        l.insert("job".into(), job);
    }
    if let Some(id) = text("service.instance.id") {
        l.insert("instance".into(), id.to_string());
    }
    l
}

/// One data point's series before limits: (name, labels, value).
type Series = Vec<(String, Labels, f64)>;

/// Why a point is refused without looking at limits.
type Invalid = String;

/// Converts one request.
pub struct Converter<'a, A: FnMut(&[u64]) -> bool> {
    /// Limits on labels.
    pub limits: &'a IngestLimits,
    /// Admit a point's series keys, all or none (the active-series limit).
    pub admit: A,
    /// Running totals of delta series.
    pub deltas: &'a mut Deltas,
    /// Receive time: stamps points without a time.
    pub now: Millis,
}

impl<A: FnMut(&[u64]) -> bool> Converter<'_, A> {
    /// The samples of `req` (in time order) and what was refused.
    pub fn convert(&mut self, req: &ExportMetricsServiceRequest) -> (Vec<Sample>, Outcome) {
        let mut out = Vec::new();
        let mut outcome = Outcome::default();
        for rm in &req.resource_metrics {
            let base = resource_labels(rm.resource.as_ref());
            for sm in &rm.scope_metrics {
                for m in &sm.metrics {
                    let name = sanitize(&m.name);
                    let (n, b) = (name.as_str(), &base);
                    let time = |t: u64, f: u32| (t, f);
                    let points: Vec<Point> = match &m.data {
                        None => Vec::new(),
                        Some(Data::Gauge(g)) => each(&g.data_points, 0, |p| {
                            (time(p.time_unix_nano, p.flags), number(n, b, p))
                        }),
                        Some(Data::Sum(s)) => {
                            each(&s.data_points, s.aggregation_temporality, |p| {
                                (time(p.time_unix_nano, p.flags), number(n, b, p))
                            })
                        }
                        Some(Data::Histogram(h)) => {
                            each(&h.data_points, h.aggregation_temporality, |p| {
                                (time(p.time_unix_nano, p.flags), histogram(n, b, p))
                            })
                        }
                        Some(Data::ExponentialHistogram(h)) => {
                            each(&h.data_points, h.aggregation_temporality, |p| {
                                (time(p.time_unix_nano, p.flags), exponential(n, b, p))
                            })
                        }
                        Some(Data::Summary(s)) => each(&s.data_points, 0, |p| {
                            (time(p.time_unix_nano, p.flags), summary(n, b, p))
                        }),
                    };
                    for (t, flags, delta, series) in points {
                        if flags & DataPointFlags::NoRecordedValueMask as u32 != 0 {
                            outcome.accepted += 1;
                            continue;
                        }
                        let series = series.and_then(|s| {
                            if name.is_empty() {
                                Err("a metric has no name".to_string())
                            } else {
                                Ok(s)
                            }
                        });
                        self.point(t, delta, series, &mut out, &mut outcome);
                    }
                }
            }
        }
        out.sort_by_key(|s| s.at);
        (out, outcome)
    }

    fn point(
        &mut self,
        t: u64,
        delta: bool,
        series: Result<Series, Invalid>,
        out: &mut Vec<Sample>,
        outcome: &mut Outcome,
    ) {
        let series = match series {
            Ok(s) => s,
            Err(m) => return outcome.refuse("invalid", m),
        };
        for (name, labels, _) in &series {
            let all: Vec<(&str, &str)> = std::iter::once(("__name__", name.as_str()))
                .chain(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .collect();
            if let Err(m) = self.limits.check_labels(all.into_iter()) {
                return outcome.refuse("label_limit", format!("{name}: {m}"));
            }
        }
        let keys: Vec<u64> = series.iter().map(|(n, l, _)| series_key(n, l)).collect();
        if !(self.admit)(&keys) {
            return outcome.refuse(
                "series_limit",
                "the source's limit of active series is reached".to_string(),
            );
        }
        let at = if t == 0 {
            self.now
        } else {
            (t / 1_000_000) as Millis
        };
        for ((name, labels, value), key) in series.into_iter().zip(keys) {
            let value = if delta {
                self.deltas.add(key, value, self.now)
            } else {
                value
            };
            out.push(Sample {
                name,
                labels,
                value,
                at,
            });
        }
        outcome.accepted += 1;
    }
}

/// One data point: (time in ns, flags, delta temporality, its series).
type Point = (u64, u32, bool, Result<Series, Invalid>);

/// Convert the points of one metric; `temporality` 0 (unspecified) for
/// gauges and summaries.
fn each<P>(
    points: &[P],
    temporality: i32,
    convert: impl Fn(&P) -> ((u64, u32), Result<Series, Invalid>),
) -> Vec<Point> {
    let delta = temporality == AggregationTemporality::Delta as i32;
    points
        .iter()
        .map(|p| {
            let ((t, flags), series) = convert(p);
            (t, flags, delta, series)
        })
        .collect()
}

fn point_labels(base: &Labels, attributes: &[KeyValue]) -> Labels {
    let mut l: Labels = attributes
        .iter()
        .map(|kv| {
            let v = kv.value.as_ref().map(value_text).unwrap_or_default();
            (sanitize(&kv.key), v.into_owned())
        })
        .collect();
    for (k, v) in base {
        l.insert(k.clone(), v.clone());
    }
    l
}

fn number(name: &str, base: &Labels, p: &NumberDataPoint) -> Result<Series, Invalid> {
    let v = match p.value {
        Some(number_data_point::Value::AsDouble(d)) => d,
        Some(number_data_point::Value::AsInt(i)) => i as f64,
        None => return Err(format!("{name}: a data point has no value")),
    };
    Ok(vec![(
        name.to_string(),
        point_labels(base, &p.attributes),
        v,
    )])
}

/// `_bucket` series for cumulative `(upper bound, count)` pairs, then `_sum`
/// and `_count`.
fn buckets_sum_count(
    name: &str,
    labels: Labels,
    cumulative: impl IntoIterator<Item = (f64, u64)>,
    sum: Option<f64>,
    count: u64,
) -> Series {
    let mut out: Series = cumulative
        .into_iter()
        .chain([(f64::INFINITY, count)])
        .map(|(le, c)| {
            let mut l = labels.clone();
            l.insert("le".into(), bound(le));
            (format!("{name}_bucket"), l, c as f64)
        })
        .collect();
    if let Some(s) = sum {
        out.push((format!("{name}_sum"), labels.clone(), s));
    }
    out.push((format!("{name}_count"), labels, count as f64));
    out
}

fn running(counts: impl IntoIterator<Item = u64>) -> impl Iterator<Item = u64> {
    counts.into_iter().scan(0u64, |acc, c| {
        *acc = acc.saturating_add(c);
        Some(*acc)
    })
}

fn histogram(name: &str, base: &Labels, p: &HistogramDataPoint) -> Result<Series, Invalid> {
    let labels = point_labels(base, &p.attributes);
    if !p.bucket_counts.is_empty() && p.bucket_counts.len() != p.explicit_bounds.len() + 1 {
        return Err(format!(
            "{name}: {} bucket counts for {} bounds (want bounds + 1)",
            p.bucket_counts.len(),
            p.explicit_bounds.len()
        ));
    }
    // The last bucket (above the highest bound) is the +Inf one: the count.
    let n = p.bucket_counts.len().saturating_sub(1);
    let cumulative = p
        .explicit_bounds
        .iter()
        .copied()
        .zip(running(p.bucket_counts[..n].iter().copied()));
    Ok(buckets_sum_count(name, labels, cumulative, p.sum, p.count))
}

/// Largest supported |scale| keeps bounds finite and buckets few.
const MAX_SCALE: i32 = 20;
/// Most buckets one exponential histogram point may have (each is a series).
const MAX_EXP_BUCKETS: usize = 320;

fn exponential(
    name: &str,
    base: &Labels,
    p: &ExponentialHistogramDataPoint,
) -> Result<Series, Invalid> {
    if !(-10..=MAX_SCALE).contains(&p.scale) {
        return Err(format!("{name}: scale {} is outside -10..=20", p.scale));
    }
    let empty = Buckets::default();
    let (pos, neg) = (
        p.positive.as_ref().unwrap_or(&empty),
        p.negative.as_ref().unwrap_or(&empty),
    );
    if pos.bucket_counts.len() + neg.bucket_counts.len() > MAX_EXP_BUCKETS {
        return Err(format!(
            "{name}: more than {MAX_EXP_BUCKETS} exponential buckets"
        ));
    }
    // base^i = 2^(i · 2^−scale)
    let pow = |i: i64| (i as f64 * (-f64::from(p.scale)).exp2()).exp2();
    let index = |b: &Buckets, k: usize| i64::from(b.offset) + k as i64;
    // Ascending bounds: the negative buckets from the most negative, the zero
    // bucket, then the positive ones.
    let mut bounds: Vec<(f64, u64)> = Vec::new();
    for (k, c) in neg.bucket_counts.iter().enumerate().rev() {
        bounds.push((-pow(index(neg, k)), *c));
    }
    bounds.push((p.zero_threshold.max(0.0), p.zero_count));
    for (k, c) in pos.bucket_counts.iter().enumerate() {
        bounds.push((pow(index(pos, k) + 1), *c));
    }
    // Bounds beyond f64 fold into +Inf.
    bounds.retain(|(le, _)| le.is_finite());
    let les: Vec<f64> = bounds.iter().map(|(le, _)| *le).collect();
    let cumulative = les
        .into_iter()
        .zip(running(bounds.into_iter().map(|(_, c)| c)));
    let labels = point_labels(base, &p.attributes);
    Ok(buckets_sum_count(name, labels, cumulative, p.sum, p.count))
}

fn summary(name: &str, base: &Labels, p: &SummaryDataPoint) -> Result<Series, Invalid> {
    let labels = point_labels(base, &p.attributes);
    let mut out: Series = p
        .quantile_values
        .iter()
        .map(|q| {
            let mut l = labels.clone();
            l.insert("quantile".into(), bound(q.quantile));
            (name.to_string(), l, q.value)
        })
        .collect();
    out.push((format!("{name}_sum"), labels.clone(), p.sum));
    out.push((format!("{name}_count"), labels, p.count as f64));
    Ok(out)
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
