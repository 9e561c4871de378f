//! OTLP decoding (protobuf and JSON, plain and gzip) of trace and metric
//! export requests on arbitrary bodies, then the metric conversion of what
//! decodes: never panics, never allocates past the decompressed-size limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medic_agent::sources::otlp::http::{Encoding, decode};
use medic_agent::sources::otlp::metrics::{Converter, Deltas};
use medic_agent::sources::push::IngestLimits;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

fuzz_target!(|data: &[u8]| {
    let limits = IngestLimits {
        max_decompressed_bytes: 1 << 20,
        ..IngestLimits::default()
    };
    for enc in [Encoding::Protobuf, Encoding::Json] {
        for gzip in [false, true] {
            let _ = decode::<ExportTraceServiceRequest>(enc, gzip, data, &limits);
            if let Ok(req) = decode::<ExportMetricsServiceRequest>(enc, gzip, data, &limits) {
                let mut deltas = Deltas::default();
                let mut c = Converter {
                    limits: &limits,
                    admit: |_: &[u64]| true,
                    deltas: &mut deltas,
                    now: 0,
                };
                let _ = c.convert(&req);
            }
        }
    }
});
