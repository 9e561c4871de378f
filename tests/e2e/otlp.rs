//! OTLP ingest end to end: the real OpenTelemetry Python SDK sends spans and
//! metrics to the real `medic` binary over OTLP/HTTP (medic's listener) and
//! OTLP/gRPC (the source's own port). Spans become RED series and medic's
//! `error_rate` detector fires on a burst of failed spans and resolves on
//! healthy ones; SDK metrics become series a threshold detector sees;
//! malformed bodies get a 4xx and medic keeps serving.
//!
//! The SDK lives in the venv `tests/run.sh` creates (`$MEDIC_VENV`, default
//! `~/.cache/medic-venv`); without it these tests skip with a message.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use medic_e2e::*;
use serde_json::Value;

const LONG: Duration = Duration::from_secs(60);

fn python() -> Option<PathBuf> {
    let venv = std::env::var_os("MEDIC_VENV")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/medic-venv")))?;
    let py = venv.join("bin/python");
    let ok = Command::new(&py)
        .args(["-c", "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.grpc, opentelemetry.exporter.otlp.proto.http"])
        .status()
        .is_ok_and(|s| s.success());
    if !medic_e2e::components::present(
        ok,
        &format!(
            "the OpenTelemetry SDK venv at {} (or set MEDIC_VENV)",
            venv.display()
        ),
    ) {
        return None;
    }
    Some(py)
}

/// Run `tests/clients/otlp_emit.py` with `args`; panics when an export failed.
fn emit(py: &PathBuf, args: &[&str]) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients/otlp_emit.py");
    let out = Command::new(py)
        .arg(&script)
        .args(args)
        .output()
        .expect("run otlp_emit.py");
    assert!(
        out.status.success(),
        "otlp_emit.py {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn start(dir: &TempDir, grpc_port: u16) -> Medic {
    let cfg = format!(
        r#"sources:
  - name: otel
    kind: otlp
    grpc_listen: 127.0.0.1:{grpc_port}
    labels: {{env: e2e}}
    red:
      flush_interval: 500ms
detectors:
  - name: span-errors
    kind: error_rate
    errors: medic_span_errors_total{{job="otel"}}
    total: medic_span_requests_total
    by: [service]
    window: 5s
    max_ratio: 0.2
    clear_ratio: 0.05
    min_total: 10
    severity: warning
  - name: sdk-failed-requests
    kind: threshold
    series: http_server_requests{{code="500", job="payments"}}
    above: 10
    severity: warning
  - name: sdk-histogram-count
    kind: threshold
    series: http_server_duration_count{{route="/cart", env="e2e"}}
    above: 50
    severity: info
"#
    );
    Medic::start(dir, &cfg, &[])
}

/// `127.0.0.1:port` once medic's OTLP/gRPC server accepts connections.
fn grpc_endpoint(port: u16) -> String {
    let endpoint = format!("127.0.0.1:{port}");
    wait_for(LONG, "medic's OTLP/gRPC port", || {
        std::net::TcpStream::connect(&endpoint).ok()
    });
    endpoint
}

fn is_state(d: &Value, service: &str, state: &str) -> bool {
    d["incident"]["labels"]["service"] == service && d["incident"]["state"] == state
}

/// Failed spans fire the error-rate detector of their service; healthy spans
/// after them resolve it.
fn fires_then_resolves(m: &Medic, py: &PathBuf, protocol: &str, endpoint: &str, service: &str) {
    let common = [
        "--protocol",
        protocol,
        "--endpoint",
        endpoint,
        "--service",
        service,
    ];
    emit(
        py,
        &[&common[..], &["--spans", "200", "--error-fraction", "0.5"]].concat(),
    );
    let d = m.wait_incident("span-errors", LONG, |d| is_state(d, service, "firing"));
    let observed = d["timeline"][0]["data"]["observed"].as_f64().unwrap_or(0.0);
    assert!(observed > 0.2, "the evidence carries the error ratio: {d}");
    emit(
        py,
        &[&common[..], &["--spans", "400", "--error-fraction", "0"]].concat(),
    );
    m.wait_incident("span-errors", LONG, |d| is_state(d, service, "resolved"));
}

#[test]
fn spans_over_http_fire_and_resolve_the_error_rate_detector() {
    let Some(py) = python() else { return };
    let dir = TempDir::new("otlp-http");
    let m = start(&dir, free_port());
    fires_then_resolves(&m, &py, "http", &m.api, "checkout");
}

#[test]
fn spans_over_grpc_fire_and_resolve_the_error_rate_detector() {
    let Some(py) = python() else { return };
    let dir = TempDir::new("otlp-grpc");
    let grpc = free_port();
    let m = start(&dir, grpc);
    let endpoint = grpc_endpoint(grpc);
    fires_then_resolves(&m, &py, "grpc", &endpoint, "payments");
}

#[test]
fn sdk_metrics_become_series_over_http_and_grpc() {
    let Some(py) = python() else { return };
    let dir = TempDir::new("otlp-metrics");
    let grpc = free_port();
    let m = start(&dir, grpc);
    // Counter over gRPC: 20 of 100 requests with code 500 → above 10.
    let endpoint = grpc_endpoint(grpc);
    let args = [
        "--protocol",
        "grpc",
        "--endpoint",
        &endpoint,
        "--service",
        "payments",
    ];
    emit(
        &py,
        &[
            &args[..],
            &["--spans", "100", "--error-fraction", "0.2", "--metrics"],
        ]
        .concat(),
    );
    let d = m.wait_incident("sdk-failed-requests", LONG, |d| {
        d["incident"]["state"] == "firing"
    });
    assert_eq!(d["incident"]["labels"]["code"], "500", "{d}");
    assert_eq!(d["incident"]["labels"]["job"], "payments", "{d}");
    // Histogram over HTTP: 100 recordings → _count 100 > 50.
    let args = [
        "--protocol",
        "http",
        "--endpoint",
        &m.api,
        "--service",
        "cart",
    ];
    emit(&py, &[&args[..], &["--spans", "100", "--metrics"]].concat());
    let d = m.wait_incident("sdk-histogram-count", LONG, |d| {
        d["incident"]["state"] == "firing"
    });
    assert_eq!(d["incident"]["labels"]["job"], "cart", "{d}");
}

#[test]
fn malformed_bodies_get_4xx_and_medic_keeps_serving() {
    let dir = TempDir::new("otlp-bad");
    let m = start(&dir, free_port());
    let c = reqwest::blocking::Client::new();
    let post = |path: &str, ct: &str, body: &'static [u8]| {
        c.post(format!("{}{path}", m.api))
            .header("content-type", ct)
            .body(body)
            .send()
            .unwrap()
    };
    let r = post(
        "/v1/traces",
        "application/x-protobuf",
        b"\xff\xff\xff\xff not protobuf",
    );
    assert_eq!(r.status().as_u16(), 400);
    let r = post(
        "/v1/metrics",
        "application/json",
        b"{\"resourceMetrics\": 12}",
    );
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.headers()["content-type"], "application/json");
    let status: Value = r.json().unwrap();
    assert!(
        status["message"].as_str().unwrap().contains("OTLP/JSON"),
        "{status}"
    );
    let r = post("/v1/traces", "text/plain", b"hello");
    assert_eq!(r.status().as_u16(), 415);
    // A well-formed empty export is a plain success.
    let r = post("/v1/traces", "application/json", b"{}");
    assert_eq!(r.status().as_u16(), 200);
    let health = reqwest::blocking::get(format!("{}/healthz", m.api)).unwrap();
    assert!(health.status().is_success());
    let metrics = m.metrics();
    assert!(
        metrics.contains(r#"medic_source_errors_total{source="otel",reason="malformed"} 2"#),
        "refusals are counted:\n{metrics}"
    );
}
