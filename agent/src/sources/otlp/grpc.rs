//! OTLP/gRPC: `TraceService/Export` and `MetricsService/Export` on the
//! source's `grpc_listen` address, gzip accepted.
//!
//! Status codes as the OTLP specification says: OK with a partial success
//! when some items were refused; `INVALID_ARGUMENT` when nothing was accepted
//! and items were invalid (not retried); `RESOURCE_EXHAUSTED` without retry
//! information when the series limit refused everything (not retried either).
//! A body that is not protobuf is refused by tonic itself with `INTERNAL`,
//! as gRPC's status-code guide prescribes for parse errors.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use super::{Metrics, OtlpReceiver, Signal, Traces, Verdict};
use crate::series::now_millis;

/// The gRPC services of one source.
#[derive(Clone)]
pub struct Services(pub Arc<OtlpReceiver>);

async fn answer<S: Signal>(
    r: &OtlpReceiver,
    req: S::Request,
) -> Result<Response<S::Response>, Status> {
    match S::ingest(r, req, now_millis()).await.verdict() {
        Verdict::Accepted { rejected, message } => {
            Ok(Response::new(S::response(rejected, message)))
        }
        Verdict::Invalid(m) => Err(Status::invalid_argument(m)),
        Verdict::Exhausted(_, m) => Err(Status::resource_exhausted(m)),
    }
}

#[tonic::async_trait]
impl TraceService for Services {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        answer::<Traces>(&self.0, request.into_inner()).await
    }
}

#[tonic::async_trait]
impl MetricsService for Services {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        answer::<Metrics>(&self.0, request.into_inner()).await
    }
}

/// Serve gRPC while the returned future is polled (the source task); a
/// source without `grpc_listen` serves nothing. Binding is retried every
/// second, so a reload that moves the server to a new task gets the port as
/// soon as the old task lets it go.
pub async fn serve(r: Arc<OtlpReceiver>) {
    let Some(addr) = r
        .config
        .settings
        .grpc_listen
        .as_deref()
        .and_then(|a| a.parse::<SocketAddr>().ok())
    else {
        return;
    };
    let max = r.limits.max_decompressed_bytes;
    let mut warned = false;
    loop {
        let incoming = match TcpIncoming::bind(addr) {
            Ok(i) => i,
            Err(e) => {
                if !warned {
                    tracing::warn!(source = %r.name, %addr, error = %e, "cannot listen for OTLP/gRPC yet; retrying every second");
                    warned = true;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        tracing::info!(source = %r.name, %addr, "serving OTLP/gRPC");
        let svc = Services(r.clone());
        let result = tonic::transport::Server::builder()
            .add_service(
                TraceServiceServer::new(svc.clone())
                    .accept_compressed(CompressionEncoding::Gzip)
                    .send_compressed(CompressionEncoding::Gzip)
                    .max_decoding_message_size(max),
            )
            .add_service(
                MetricsServiceServer::new(svc)
                    .accept_compressed(CompressionEncoding::Gzip)
                    .send_compressed(CompressionEncoding::Gzip)
                    .max_decoding_message_size(max),
            )
            .serve_with_incoming(incoming)
            .await;
        if let Err(e) = result {
            tracing::warn!(source = %r.name, %addr, error = %e, "OTLP/gRPC server stopped; restarting");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

#[cfg(test)]
#[path = "grpc_tests.rs"]
mod tests;
