//! Spans → RED series: request rate, errors and duration per service,
//! operation and configured span attributes.
//!
//! Every span counts once in `medic_span_requests_total` of its key
//! `(service.name, span name, configured attributes)`, and in
//! `medic_span_errors_total` when it failed: status code ERROR, or an HTTP
//! status attribute (`http.response.status_code`, or the older
//! `http.status_code`) of 500 or more. Its duration goes into a
//! [sketch](super::sketch) of the key's last window, which answers
//! `medic_span_duration_seconds{quantile="…"}`.
//!
//! Labels: `service` (resource `service.name`, `unknown_service` when
//! absent), `operation` (span name), and one label per configured attribute,
//! named like the attribute with `.` → `_` (`http.route` → `http_route`),
//! empty when a span lacks it; the source adds `job` = its own name, as for a
//! scrape target. A key is one unit of state; keys not seen for
//! the source's `series_ttl` are forgotten.
//!
//! The counters are cumulative and flushed together on an interval, so the
//! `error_rate` detector (errors vs total, grouped `by: [service]` or
//! `[service, operation]`) works on traces as on any counter. A key's first
//! flush is preceded by a zero one, so its first requests count as an increase.
//! Pure: time is an argument.

use std::borrow::Cow;
use std::collections::HashMap;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span, status::StatusCode};

use super::sketch::{Sketch, Window};
use crate::series::{Labels, Millis, Sample};

/// Counter of spans per key.
pub const REQUESTS: &str = "medic_span_requests_total";
/// Counter of failed spans per key.
pub const ERRORS: &str = "medic_span_errors_total";
/// Latency quantiles per key, in seconds.
pub const DURATION: &str = "medic_span_duration_seconds";

/// Slots per latency window.
const WINDOW_SLOTS: usize = 6;

/// The identity of one RED series set, borrowed from a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyRef<'a> {
    /// `service.name`.
    pub service: Cow<'a, str>,
    /// Span name.
    pub operation: &'a str,
    /// Values of the configured attributes, in configured order.
    pub attrs: Vec<Cow<'a, str>>,
}

/// The same, owned (the aggregator's map key).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    service: String,
    operation: String,
    attrs: Vec<String>,
}

impl KeyRef<'_> {
    /// Owned copy.
    pub fn to_owned(&self) -> Key {
        Key {
            service: self.service.to_string(),
            operation: self.operation.to_string(),
            attrs: self.attrs.iter().map(|a| a.to_string()).collect(),
        }
    }
}

/// What one request says about one key.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Spans.
    pub requests: u64,
    /// Failed spans.
    pub errors: u64,
    /// Their durations.
    pub durations: Sketch,
}

/// Label name for a span attribute: `.` and other characters Prometheus
/// does not allow in label names become `_`.
pub fn label_name(attr: &str) -> String {
    super::metrics::sanitize(attr)
}

/// The text of an attribute value (numbers and booleans as written).
pub fn value_text(v: &AnyValue) -> Cow<'_, str> {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => Cow::Borrowed(s),
        Some(any_value::Value::IntValue(i)) => Cow::Owned(i.to_string()),
        Some(any_value::Value::DoubleValue(d)) => Cow::Owned(d.to_string()),
        Some(any_value::Value::BoolValue(b)) => Cow::Borrowed(if *b { "true" } else { "false" }),
        _ => Cow::Borrowed(""),
    }
}

/// The value of attribute `key`, if present.
pub fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

fn http_status(v: &AnyValue) -> Option<i64> {
    match &v.value {
        Some(any_value::Value::IntValue(i)) => Some(*i),
        Some(any_value::Value::StringValue(s)) => s.trim().parse().ok(),
        Some(any_value::Value::DoubleValue(d)) => Some(*d as i64),
        _ => None,
    }
}

/// A failed span: status ERROR, or an HTTP status of 500 or more.
pub fn is_error(span: &Span) -> bool {
    if span
        .status
        .as_ref()
        .is_some_and(|s| s.code == StatusCode::Error as i32)
    {
        return true;
    }
    ["http.response.status_code", "http.status_code"]
        .iter()
        .filter_map(|k| attr(&span.attributes, k))
        .filter_map(http_status)
        .any(|code| code >= 500)
}

/// Span duration in seconds (0 when the end is before the start).
pub fn duration_seconds(span: &Span) -> f64 {
    span.end_time_unix_nano
        .saturating_sub(span.start_time_unix_nano) as f64
        / 1e9
}

/// Group a request's spans by key.
pub fn tally<'a>(
    resource_spans: &'a [ResourceSpans],
    attributes: &[String],
) -> HashMap<KeyRef<'a>, Tally> {
    let mut out: HashMap<KeyRef<'a>, Tally> = HashMap::new();
    for rs in resource_spans {
        let service = rs
            .resource
            .as_ref()
            .and_then(|r| attr(&r.attributes, "service.name"))
            .map(value_text)
            .filter(|s| !s.is_empty())
            .unwrap_or(Cow::Borrowed("unknown_service"));
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                let key = KeyRef {
                    service: service.clone(),
                    operation: &span.name,
                    attrs: attributes
                        .iter()
                        .map(|a| attr(&span.attributes, a).map_or(Cow::Borrowed(""), value_text))
                        .collect(),
                };
                let t = out.entry(key).or_default();
                t.requests += 1;
                t.errors += u64::from(is_error(span));
                t.durations.insert(duration_seconds(span));
            }
        }
    }
    out
}

/// How RED series are computed.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Configured span attributes (their label names are derived).
    pub attributes: Vec<String>,
    /// Quantiles to report.
    pub quantiles: Vec<f64>,
    /// Latency window length.
    pub window_ms: Millis,
    /// Forget keys not seen for this long.
    pub ttl_ms: Millis,
}

impl Settings {
    /// The labels of a key's series (without `quantile`).
    pub fn labels(&self, key: &KeyRef<'_>) -> Labels {
        let mut l = Labels::new();
        for (a, v) in self.attributes.iter().zip(&key.attrs) {
            l.insert(label_name(a), v.to_string());
        }
        l.insert("service".into(), key.service.to_string());
        l.insert("operation".into(), key.operation.to_string());
        l
    }

    /// Every series a key produces, as (name, labels): what counts against
    /// the source's series limit.
    pub fn series(&self, labels: &Labels) -> Vec<(&'static str, Labels)> {
        let mut out = vec![(REQUESTS, labels.clone()), (ERRORS, labels.clone())];
        for q in &self.quantiles {
            let mut l = labels.clone();
            l.insert("quantile".into(), q.to_string());
            out.push((DURATION, l));
        }
        out
    }
}

#[derive(Debug)]
struct Series {
    labels: Labels,
    requests: u64,
    errors: u64,
    durations: Window,
    last_seen: Millis,
    flushed: bool,
}

/// RED state of one source: one entry per active key.
#[derive(Debug)]
pub struct Red {
    settings: Settings,
    keys: HashMap<Key, Series>,
}

impl Red {
    /// No keys yet.
    pub fn new(settings: Settings) -> Self {
        Red {
            settings,
            keys: HashMap::new(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Active keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// No active keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Add one request's tally of `key` (labels: [`Settings::labels`]).
    pub fn record(&mut self, key: &KeyRef<'_>, labels: Labels, t: &Tally, now: Millis) {
        let slot_ms = (self.settings.window_ms / WINDOW_SLOTS as Millis).max(1);
        let s = self.keys.entry(key.to_owned()).or_insert_with(|| Series {
            labels,
            requests: 0,
            errors: 0,
            durations: Window::new(slot_ms, WINDOW_SLOTS),
            last_seen: now,
            flushed: false,
        });
        s.requests += t.requests;
        s.errors += t.errors;
        s.durations.merge_at(now, &t.durations);
        s.last_seen = s.last_seen.max(now);
    }

    /// The series now: `(zeros, current)`. `zeros` holds a 0 at `now − 1` for
    /// each counter flushed for the first time (emit it first); `current` the
    /// counters and quantiles at `now`. Keys idle for longer than the ttl are
    /// dropped.
    pub fn flush(&mut self, now: Millis) -> (Vec<Sample>, Vec<Sample>) {
        let ttl = self.settings.ttl_ms;
        self.keys.retain(|_, s| now - s.last_seen <= ttl);
        let (mut zeros, mut current) = (Vec::new(), Vec::with_capacity(self.keys.len() * 5));
        let sample = |name: &str, labels: &Labels, value: f64, at: Millis| Sample {
            name: name.to_string(),
            labels: labels.clone(),
            value,
            at,
        };
        for s in self.keys.values_mut() {
            if !s.flushed {
                zeros.push(sample(REQUESTS, &s.labels, 0.0, now - 1));
                zeros.push(sample(ERRORS, &s.labels, 0.0, now - 1));
                s.flushed = true;
            }
            current.push(sample(REQUESTS, &s.labels, s.requests as f64, now));
            current.push(sample(ERRORS, &s.labels, s.errors as f64, now));
            let merged = s.durations.merged(now);
            for q in &self.settings.quantiles {
                if let Some(v) = merged.quantile(*q) {
                    let mut l = s.labels.clone();
                    l.insert("quantile".into(), q.to_string());
                    current.push(sample(DURATION, &l, v, now));
                }
            }
        }
        (zeros, current)
    }
}

#[cfg(test)]
#[path = "red_tests.rs"]
mod tests;
