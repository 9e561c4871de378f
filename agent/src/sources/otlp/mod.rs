//! OTLP receiver: traces and metrics from OpenTelemetry SDKs and Collectors.
//!
//! * HTTP on medic's own listener: `POST /v1/traces` and `POST /v1/metrics`,
//!   protobuf or JSON, optionally gzip ([`http`]).
//! * gRPC on `grpc_listen`: `TraceService/Export` and `MetricsService/Export`
//!   ([`grpc`]); the server lives in the source task and stops with it.
//!
//! Metrics become series as [`metrics`] describes; spans become RED series
//! (rate, errors, duration quantiles) per service and operation as [`red`]
//! describes, flushed every `red.flush_interval`. What the limits refuse is
//! answered as an OTLP partial success and counted in
//! `medic_source_errors_total{reason}`.

pub mod grpc;
pub mod http;
pub mod metrics;
pub mod red;
pub mod sketch;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::push::{IngestLimits, Receiver, series_key};
use super::{SourceConfig, SourceContext};
use crate::config::duration::Duration;
use crate::series::{Millis, now_millis};

/// Settings of a `kind: otlp` source.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OtlpConfig {
    /// Also serve OTLP/gRPC on this address (e.g. `127.0.0.1:4317`). OTLP/HTTP
    /// is always served on medic's listener at `/v1/traces` and `/v1/metrics`.
    #[serde(default)]
    pub grpc_listen: Option<String>,
    /// How spans become RED series.
    #[serde(default)]
    pub red: RedConfig,
    /// Limits on what senders may push. RED series count against `max_series`
    /// like metric series do.
    #[serde(default)]
    pub limits: IngestLimits,
}

/// How spans become RED series (`medic_span_requests_total`,
/// `medic_span_errors_total`, `medic_span_duration_seconds{quantile}`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RedConfig {
    /// Span attributes that split RED series beyond service and operation,
    /// e.g. `[http.route]`; each becomes a label with `.` → `_`.
    pub attributes: Vec<String>,
    /// Latency quantiles reported, each in 0..=1.
    pub quantiles: Vec<f64>,
    /// How often RED series are sent to detectors.
    pub flush_interval: Duration,
    /// Latency quantiles cover the spans of this last stretch of time.
    pub window: Duration,
}

impl Default for RedConfig {
    fn default() -> Self {
        RedConfig {
            attributes: Vec::new(),
            quantiles: vec![0.5, 0.9, 0.99],
            flush_interval: Duration::from_secs(1),
            window: Duration::from_secs(60),
        }
    }
}

impl OtlpConfig {
    /// What is wrong with these settings, if anything.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(a) = &self.grpc_listen
            && a.parse::<std::net::SocketAddr>().is_err()
        {
            out.push(format!(
                "grpc_listen {a:?} is not an address like 127.0.0.1:4317"
            ));
        }
        for q in &self.red.quantiles {
            if !(0.0..=1.0).contains(q) {
                out.push(format!("red.quantiles: {q} is not between 0 and 1"));
            }
        }
        if self.red.flush_interval.std().is_zero() {
            out.push("red.flush_interval must be more than 0".into());
        }
        out
    }
}

/// What one export did: items kept, items refused and why.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Spans or data points kept.
    pub accepted: u64,
    /// Refused items per reason (`series_limit`, `label_limit`, `invalid`).
    pub rejected: BTreeMap<&'static str, u64>,
    /// The first refusal's explanation.
    pub message: String,
}

/// How an export is answered (HTTP and gRPC alike).
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Accepted, maybe partly: `rejected` items and why.
    Accepted {
        /// Items refused.
        rejected: u64,
        /// Why (empty when none).
        message: String,
    },
    /// Nothing accepted, and some items were invalid: do not retry.
    Invalid(String),
    /// Nothing accepted because of the series limit: `rejected` items.
    Exhausted(u64, String),
}

impl Outcome {
    /// Refuse one item for `reason`.
    pub fn refuse(&mut self, reason: &'static str, message: String) {
        self.refuse_n(reason, 1, message);
    }

    /// Refuse `n` items for `reason`.
    pub fn refuse_n(&mut self, reason: &'static str, n: u64, message: String) {
        *self.rejected.entry(reason).or_default() += n;
        if self.message.is_empty() {
            self.message = message;
        }
    }

    /// Items refused.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// How to answer.
    pub fn verdict(&self) -> Verdict {
        let rejected = self.rejected_total();
        if self.accepted == 0 && rejected > 0 {
            if self.rejected.keys().all(|r| *r == "series_limit") {
                return Verdict::Exhausted(rejected, self.message.clone());
            }
            return Verdict::Invalid(self.message.clone());
        }
        Verdict::Accepted {
            rejected,
            message: if rejected > 0 {
                format!("{rejected} refused: {}", self.message)
            } else {
                String::new()
            },
        }
    }
}

/// The state of a running `otlp` source, shared by its HTTP routes, gRPC
/// server and flush loop.
pub struct Otlp {
    /// Settings.
    pub settings: OtlpConfig,
    red: Mutex<red::Red>,
    deltas: Mutex<metrics::Deltas>,
}

/// The receiver the routes and gRPC services use.
pub type OtlpReceiver = Receiver<Otlp>;

fn millis(d: Duration) -> Millis {
    d.std().as_millis() as Millis
}

impl Otlp {
    /// Fresh state for `config`.
    pub fn new(config: OtlpConfig) -> Self {
        let red = red::Red::new(red::Settings {
            attributes: config.red.attributes.clone(),
            quantiles: config.red.quantiles.clone(),
            window_ms: millis(config.red.window),
            ttl_ms: millis(config.limits.series_ttl),
        });
        Otlp {
            settings: config,
            red: Mutex::new(red),
            deltas: Mutex::new(metrics::Deltas::default()),
        }
    }
}

fn count_refusals(r: &OtlpReceiver, o: &Outcome) {
    for (reason, n) in &o.rejected {
        r.reject(reason, *n);
    }
}

/// Take spans into the RED state (sent on the next flush).
pub fn ingest_traces(r: &OtlpReceiver, req: &ExportTraceServiceRequest, now: Millis) -> Outcome {
    let mut outcome = Outcome::default();
    let tallies = red::tally(&req.resource_spans, &r.config.settings.red.attributes);
    if tallies.is_empty() {
        return outcome;
    }
    {
        let mut red = r.config.red.lock().expect("red state");
        let mut lim = r.series.lock().expect("series limiter");
        for (key, t) in &tallies {
            let labels = red.settings().labels(key);
            let keys: Vec<u64> = red
                .settings()
                .series(&labels)
                .iter()
                .map(|(n, l)| series_key(n, l))
                .collect();
            let check = r.limits.check_labels(
                labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect::<Vec<_>>()
                    .into_iter(),
            );
            if let Err(m) = check {
                outcome.refuse_n("label_limit", t.requests, m);
            } else if lim.admit_all(&keys, now).is_err() {
                outcome.refuse_n(
                    "series_limit",
                    t.requests,
                    format!(
                        "RED series of service {:?} operation {:?} would exceed this source's \
                         limit of {} active series",
                        key.service, key.operation, r.limits.max_series
                    ),
                );
            } else {
                outcome.accepted += t.requests;
                red.record(key, labels, t, now);
            }
        }
        r.publish_active(lim.active());
    }
    count_refusals(r, &outcome);
    outcome
}

/// Convert metrics to samples and send them to detectors.
pub async fn ingest_metrics(
    r: &OtlpReceiver,
    req: &ExportMetricsServiceRequest,
    now: Millis,
) -> Outcome {
    let (mut samples, outcome) = {
        let mut deltas = r.config.deltas.lock().expect("delta state");
        let mut lim = r.series.lock().expect("series limiter");
        deltas.gc(now, millis(r.limits.series_ttl));
        let converted = metrics::Converter {
            limits: &r.limits,
            admit: |keys: &[u64]| lim.admit_all(keys, now).is_ok(),
            deltas: &mut deltas,
            now,
        }
        .convert(req);
        r.publish_active(lim.active());
        converted
    };
    count_refusals(r, &outcome);
    for s in &mut samples {
        r.add_source_labels(&mut s.labels);
    }
    if !samples.is_empty() {
        r.ctx
            .emit(&r.name, "otlp_metrics", now, samples, false)
            .await;
    }
    outcome
}

/// One OTLP signal (traces or metrics): its request and response types and
/// how an export of it is taken in. HTTP and gRPC share it.
pub trait Signal {
    /// `Export*ServiceRequest`.
    type Request: prost::Message + Default + serde::de::DeserializeOwned + Send + 'static;
    /// `Export*ServiceResponse`.
    type Response: prost::Message + Serialize + Send + 'static;
    /// What the items are called in messages (`spans`, `data points`).
    const ITEMS: &'static str;
    /// Take the request in.
    fn ingest(
        r: &OtlpReceiver,
        req: Self::Request,
        now: Millis,
    ) -> impl std::future::Future<Output = Outcome> + Send;
    /// The success answer, with a partial success when items were refused.
    fn response(rejected: u64, message: String) -> Self::Response;
}

/// The partial-success fields, unset (None) for a plain success.
fn partial(rejected: u64, message: String) -> Option<(i64, String)> {
    (rejected > 0 || !message.is_empty()).then(|| (rejected.min(i64::MAX as u64) as i64, message))
}

/// Traces: spans become RED series.
pub struct Traces;

impl Signal for Traces {
    type Request = ExportTraceServiceRequest;
    type Response = ExportTraceServiceResponse;
    const ITEMS: &'static str = "spans";
    async fn ingest(r: &OtlpReceiver, req: Self::Request, now: Millis) -> Outcome {
        ingest_traces(r, &req, now)
    }
    fn response(rejected: u64, message: String) -> Self::Response {
        ExportTraceServiceResponse {
            partial_success: partial(rejected, message).map(|(n, m)| ExportTracePartialSuccess {
                rejected_spans: n,
                error_message: m,
            }),
        }
    }
}

/// Metrics: data points become series.
pub struct Metrics;

impl Signal for Metrics {
    type Request = ExportMetricsServiceRequest;
    type Response = ExportMetricsServiceResponse;
    const ITEMS: &'static str = "data points";
    async fn ingest(r: &OtlpReceiver, req: Self::Request, now: Millis) -> Outcome {
        ingest_metrics(r, &req, now).await
    }
    fn response(rejected: u64, message: String) -> Self::Response {
        ExportMetricsServiceResponse {
            partial_success: partial(rejected, message).map(|(n, m)| ExportMetricsPartialSuccess {
                rejected_data_points: n,
                error_message: m,
            }),
        }
    }
}

/// Send the RED series now.
async fn flush(r: &OtlpReceiver) {
    let now = now_millis();
    let (mut zeros, mut current) = r.config.red.lock().expect("red state").flush(now);
    for s in zeros.iter_mut().chain(current.iter_mut()) {
        r.add_source_labels(&mut s.labels);
        // Like a scrape target's series: `job` names the source they came from.
        s.labels
            .entry("job".into())
            .or_insert_with(|| r.name.clone());
    }
    if !zeros.is_empty() {
        r.ctx
            .emit(&r.name, "otlp_spans", now - 1, zeros, false)
            .await;
    }
    if !current.is_empty() {
        r.ctx.emit(&r.name, "otlp_spans", now, current, false).await;
    }
}

/// Serve the source while its task lives: HTTP routes, the gRPC server (when
/// configured) and the RED flush loop.
pub async fn run(cfg: &SourceConfig, o: &OtlpConfig, ctx: &SourceContext) {
    let r = Arc::new(Receiver::new(
        cfg,
        Otlp::new(o.clone()),
        o.limits.clone(),
        ctx.clone(),
    ));
    let _guard = ctx.push.otlp.install(r.clone());
    let grpc = grpc::serve(r.clone());
    let flushing = async {
        let mut every = tokio::time::interval(o.red.flush_interval.std());
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            flush(&r).await;
        }
    };
    tokio::join!(grpc, flushing);
}

#[cfg(test)]
mod tests;
