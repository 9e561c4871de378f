use std::io::Write;

use axum::http::StatusCode;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, status::StatusCode as SpanStatus,
};
use proptest::prelude::*;
use prost::Message;

use super::http::{Encoding, body_format, decode};
use super::*;
use crate::series::Batch;

// Fixtures shared by the tests of this folder.

pub fn kv(k: &str, v: Value) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

pub fn span(name: &str, ms: u64, status: SpanStatus, attrs: Vec<KeyValue>) -> Span {
    Span {
        name: name.into(),
        start_time_unix_nano: 1_000_000_000,
        end_time_unix_nano: 1_000_000_000 + ms * 1_000_000,
        status: Some(Status {
            code: status as i32,
            message: String::new(),
        }),
        attributes: attrs,
        ..Default::default()
    }
}

pub fn resource_spans(service: Option<&str>, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: service
                .map(|s| vec![kv("service.name", Value::StringValue(s.into()))])
                .unwrap_or_default(),
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn traces(rs: Vec<ResourceSpans>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest { resource_spans: rs }
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

const TRACE_JSON: &str = include_str!("testdata/trace.json");
const METRICS_JSON: &str = include_str!("testdata/metrics.json");

#[test]
fn decodes_protobuf_json_and_gzip() {
    let lim = IngestLimits::default();
    let req = traces(vec![resource_spans(
        Some("checkout"),
        vec![span("GET /cart", 3, SpanStatus::Error, vec![])],
    )]);
    let pb = req.encode_to_vec();
    let got: ExportTraceServiceRequest = decode(Encoding::Protobuf, false, &pb, &lim).unwrap();
    assert_eq!(got, req);
    let got: ExportTraceServiceRequest =
        decode(Encoding::Protobuf, true, &gzip(&pb), &lim).unwrap();
    assert_eq!(got, req);

    // The OTLP/JSON examples of opentelemetry-proto (hex ids, string int64s).
    let t: ExportTraceServiceRequest =
        decode(Encoding::Json, false, TRACE_JSON.as_bytes(), &lim).unwrap();
    let s = &t.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(s.name, "I'm a server span");
    assert_eq!(s.end_time_unix_nano - s.start_time_unix_nano, 1_000_000_000);
    assert_eq!(s.trace_id.len(), 16);
    let m: ExportMetricsServiceRequest =
        decode(Encoding::Json, true, &gzip(METRICS_JSON.as_bytes()), &lim).unwrap();
    let kinds: Vec<&str> = m.resource_metrics[0].scope_metrics[0]
        .metrics
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(kinds.len(), 4, "{kinds:?}");
}

#[test]
fn malformed_and_oversized_bodies_are_refused_with_reasons() {
    let lim = IngestLimits::default();
    let e = decode::<ExportTraceServiceRequest>(Encoding::Protobuf, false, &[0xff; 8], &lim)
        .unwrap_err();
    assert_eq!((e.status, e.reason), (StatusCode::BAD_REQUEST, "malformed"));
    assert!(
        e.message.contains("ExportTraceServiceRequest"),
        "{}",
        e.message
    );
    let e =
        decode::<ExportTraceServiceRequest>(Encoding::Json, false, b"{\"resourceSpans\": 7}", &lim)
            .unwrap_err();
    assert_eq!(e.status, StatusCode::BAD_REQUEST);
    let e =
        decode::<ExportTraceServiceRequest>(Encoding::Json, true, b"not gzip", &lim).unwrap_err();
    assert!(e.message.contains("gzip"), "{}", e.message);

    // A gzip bomb stops at the decompressed-size limit.
    let small = IngestLimits {
        max_decompressed_bytes: 1000,
        ..IngestLimits::default()
    };
    let bomb = gzip(&vec![b' '; 1_000_000]);
    assert!(bomb.len() < 5000);
    let e = decode::<ExportTraceServiceRequest>(Encoding::Json, true, &bomb, &small).unwrap_err();
    assert_eq!(
        (e.status, e.reason),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
    );
}

#[test]
fn content_type_and_encoding_are_checked() {
    let h = |ct: &str, ce: Option<&str>| {
        let mut h = axum::http::HeaderMap::new();
        h.insert("content-type", ct.parse().unwrap());
        if let Some(ce) = ce {
            h.insert("content-encoding", ce.parse().unwrap());
        }
        body_format(&h)
    };
    assert_eq!(
        h("application/x-protobuf", None),
        Ok((Encoding::Protobuf, false))
    );
    assert_eq!(
        h("application/json; charset=utf-8", Some("gzip")),
        Ok((Encoding::Json, true))
    );
    assert_eq!(
        h("Application/JSON", Some("identity")),
        Ok((Encoding::Json, false))
    );
    assert_eq!(
        h("text/plain", None).unwrap_err().status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let e = h("application/x-protobuf", Some("br")).unwrap_err();
    assert_eq!(
        (e.status, e.reason),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "encoding")
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512), json in any::<bool>(), gz in any::<bool>()) {
        let lim = IngestLimits::default();
        let enc = if json { Encoding::Json } else { Encoding::Protobuf };
        let body = if gz && !body.is_empty() && body[0] % 2 == 0 { gzip(&body) } else { body };
        if let Ok(req) = decode::<ExportMetricsServiceRequest>(enc, gz, &body, &lim) {
            let mut deltas = metrics::Deltas::default();
            let _ = metrics::Converter { limits: &lim, admit: |_: &[u64]| true, deltas: &mut deltas, now: 0 }
                .convert(&req);
        }
        if let Ok(req) = decode::<ExportTraceServiceRequest>(enc, gz, &body, &lim) {
            let _ = red::tally(&req.resource_spans, &["http.route".to_string()]);
        }
    }
}

/// A receiver whose batches land in the returned channel.
pub fn receiver(o: OtlpConfig) -> (Arc<OtlpReceiver>, tokio::sync::mpsc::Receiver<Batch>) {
    let (batches, rx) = tokio::sync::mpsc::channel(64);
    let (engine, _) = tokio::sync::mpsc::channel(1);
    let ctx = SourceContext {
        batches,
        metrics: Arc::new(crate::telemetry::Metrics::new()),
        http: reqwest::Client::new(),
        base_dir: ".".into(),
        push: Arc::default(),
        engine,
    };
    let cfg: SourceConfig = serde_json::from_value(serde_json::json!({
        "name": "otel", "kind": "otlp", "labels": {"env": "test"}
    }))
    .unwrap();
    (
        Arc::new(Receiver::new(&cfg, Otlp::new(o.clone()), o.limits, ctx)),
        rx,
    )
}

#[tokio::test]
async fn spans_become_red_series_with_partial_success_beyond_max_series() {
    // Each key is 2 counters + 3 quantiles = 5 series: room for two keys.
    let o = OtlpConfig {
        limits: IngestLimits {
            max_series: 10,
            ..IngestLimits::default()
        },
        ..OtlpConfig::default()
    };
    let (r, mut rx) = receiver(o);
    let req = traces(vec![resource_spans(
        Some("svc"),
        vec![
            span("a", 1, SpanStatus::Error, vec![]),
            span("a", 2, SpanStatus::Unset, vec![]),
            span("b", 3, SpanStatus::Unset, vec![]),
            span("c", 4, SpanStatus::Unset, vec![]),
        ],
    )]);
    // Real time: flush stamps with the clock and forgets keys idle past the ttl.
    let out = ingest_traces(&r, &req, crate::series::now_millis());
    assert_eq!(out.accepted + out.rejected_total(), 4);
    assert_eq!(
        out.rejected.get("series_limit").copied().unwrap_or(0),
        4 - out.accepted
    );
    assert!(out.rejected_total() >= 1, "{out:?}");
    match out.verdict() {
        Verdict::Accepted { rejected, message } => {
            assert_eq!(rejected, out.rejected_total());
            assert!(message.contains("limit of 10 active series"), "{message}");
        }
        v => panic!("{v:?}"),
    }
    let resp = Traces::response(1, "x".into());
    assert_eq!(resp.partial_success.unwrap().rejected_spans, 1);
    assert_eq!(Traces::response(0, String::new()).partial_success, None);

    flush(&r).await;
    let zeros = rx.recv().await.unwrap();
    let cur = rx.recv().await.unwrap();
    assert!(zeros.at < cur.at && !cur.complete);
    assert!(cur.samples.windows(2).all(|w| w[0].at <= w[1].at));
    let reqs: f64 = cur
        .samples
        .iter()
        .filter(|s| s.name == red::REQUESTS)
        .map(|s| s.value)
        .sum();
    assert_eq!(reqs, out.accepted as f64);
    assert!(cur.samples.iter().all(|s| s.labels["env"] == "test"
        && s.labels["service"] == "svc"
        && s.labels["job"] == "otel"));
    let text = r.ctx.metrics.encode();
    assert!(text.contains("reason=\"series_limit\""), "{text}");
}

#[tokio::test]
async fn metrics_are_emitted_with_source_labels() {
    let (r, mut rx) = receiver(OtlpConfig::default());
    let req: ExportMetricsServiceRequest = serde_json::from_str(METRICS_JSON).unwrap();
    let out = ingest_metrics(&r, &req, 1000).await;
    assert_eq!(out.rejected_total(), 0, "{out:?}");
    let b = rx.recv().await.unwrap();
    assert!(!b.samples.is_empty());
    assert!(b.samples.iter().all(|s| s.labels["env"] == "test"));
    assert!(
        b.samples.iter().any(|s| s.name == "my_counter"),
        "{:?}",
        b.samples
    );
}

#[test]
fn verdicts() {
    let mut o = Outcome::default();
    assert_eq!(
        o.verdict(),
        Verdict::Accepted {
            rejected: 0,
            message: String::new()
        }
    );
    o.refuse("invalid", "bad point".into());
    assert_eq!(o.verdict(), Verdict::Invalid("bad point".into()));
    o.accepted = 1;
    assert!(matches!(o.verdict(), Verdict::Accepted { rejected: 1, .. }));
}

#[test]
fn config_problems_are_named() {
    let mut c = OtlpConfig::default();
    assert!(c.problems().is_empty());
    c.grpc_listen = Some("localhost".into());
    c.red.quantiles = vec![0.5, 1.5];
    let p = c.problems();
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p[0].contains("grpc_listen"));
}
