use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as SpanStatus;
use tonic::Code;

use super::*;
use crate::sources::otlp::OtlpConfig;
use crate::sources::otlp::tests::{receiver, resource_spans, span};
use crate::sources::push::IngestLimits;

fn export(names: &[&str]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![resource_spans(
            Some("svc"),
            names
                .iter()
                .map(|n| span(n, 5, SpanStatus::Unset, vec![]))
                .collect(),
        )],
    }
}

#[tokio::test]
async fn export_over_grpc_with_gzip_answers_partial_success_then_resource_exhausted() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // One key is 2 counters + 3 quantiles: room for one key only.
    let (r, _rx) = receiver(OtlpConfig {
        grpc_listen: Some(format!("127.0.0.1:{port}")),
        limits: IngestLimits {
            max_series: 5,
            ..IngestLimits::default()
        },
        ..OtlpConfig::default()
    });
    let server = tokio::spawn(serve(r.clone()));
    let mut client = loop {
        match TraceServiceClient::connect(format!("http://127.0.0.1:{port}")).await {
            Ok(c) => break c.send_compressed(CompressionEncoding::Gzip),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let resp = client
        .export(export(&["a", "a"]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.partial_success, None);
    let resp = client
        .export(export(&["a", "b", "b"]))
        .await
        .unwrap()
        .into_inner();
    let p = resp.partial_success.expect("partial success");
    assert_eq!(p.rejected_spans, 2);
    assert!(p.error_message.contains("\"b\""), "{}", p.error_message);
    let err = client.export(export(&["c"])).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert_eq!(r.config.red.lock().unwrap().len(), 1);
    server.abort();
}
