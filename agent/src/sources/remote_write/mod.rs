//! Prometheus remote_write receiver (protocol 1.0): `POST /api/v1/write`
//! with a snappy block-compressed protobuf `WriteRequest`.
//!
//! Answers as Prometheus's own receiver does, so senders retry only what a
//! retry can fix: 204 on success; 400 for a payload that will never be
//! accepted (malformed, no metric name, too many labels); 413 when too
//! large; 415 for another encoding; 429 when the source's active-series limit
//! is reached (nothing of that request is kept, so a retry adds no
//! duplicates). Prometheus staleness markers end the series' current value
//! and are not passed on as numbers.

pub mod proto;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prost::Message;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::push::{IngestLimits, PushRegistry, Receiver, Refusal, read_body, refuse, series_key};
use super::{SourceConfig, SourceContext};
use crate::series::{Labels, Sample, now_millis};

/// Settings of a `kind: remote_write` source.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteConfig {
    /// Limits on what senders may push.
    #[serde(default)]
    pub limits: IngestLimits,
}

/// Prometheus's staleness marker: a NaN with this exact bit pattern.
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// Decompress and decode a remote_write body into samples (sorted by time,
/// each series' samples in order). Pure: the fuzz target calls this.
pub fn decode(body: &[u8], limits: &IngestLimits) -> Result<Vec<Sample>, Refusal> {
    let len = snap::raw::decompress_len(body).map_err(|e| {
        refuse(
            StatusCode::BAD_REQUEST,
            "malformed",
            format!("body is not snappy block-compressed: {e}"),
        )
    })?;
    if len > limits.max_decompressed_bytes {
        return Err(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "decompressed body would be {len} bytes; the limit is {}",
                limits.max_decompressed_bytes
            ),
        ));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| {
            refuse(
                StatusCode::BAD_REQUEST,
                "malformed",
                format!("body is not snappy block-compressed: {e}"),
            )
        })?;
    let req = proto::WriteRequest::decode(raw.as_slice()).map_err(|e| {
        refuse(
            StatusCode::BAD_REQUEST,
            "malformed",
            format!("body is not a prometheus.WriteRequest: {e}"),
        )
    })?;
    let mut out = Vec::new();
    for ts in req.timeseries {
        limits
            .check_labels(
                ts.labels
                    .iter()
                    .map(|l| (l.name.as_str(), l.value.as_str())),
            )
            .map_err(|m| refuse(StatusCode::BAD_REQUEST, "label_limit", m))?;
        let mut name = None;
        let mut labels = Labels::new();
        for l in ts.labels {
            if l.name.is_empty() {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    "malformed",
                    "a label has an empty name",
                ));
            }
            if l.name == "__name__" {
                name = Some(l.value);
            } else if labels.insert(l.name.clone(), l.value).is_some() {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    "malformed",
                    format!("label {:?} appears twice in one series", l.name),
                ));
            }
        }
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "malformed",
                format!("a series has no __name__ label (labels {labels:?})"),
            ));
        };
        for s in ts.samples {
            if s.value.to_bits() == STALE_NAN {
                continue;
            }
            out.push(Sample {
                name: name.clone(),
                labels: labels.clone(),
                value: s.value,
                at: s.timestamp,
            });
        }
    }
    out.sort_by_key(|s| s.at);
    Ok(out)
}

/// Serve the source while its task lives: register it for `POST /api/v1/write`.
pub async fn run(cfg: &SourceConfig, rw: &RemoteWriteConfig, ctx: &SourceContext) {
    let r = Arc::new(Receiver::new(
        cfg,
        rw.clone(),
        rw.limits.clone(),
        ctx.clone(),
    ));
    let _guard = ctx.push.remote_write.install(r);
    std::future::pending::<()>().await;
}

/// `POST /api/v1/write`.
pub async fn handle(
    State(reg): State<Arc<PushRegistry>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(r) = reg.remote_write.get() else {
        return (
            StatusCode::NOT_FOUND,
            "no remote_write source is configured in medic.yaml\n",
        )
            .into_response();
    };
    match ingest(&r, &headers, body).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => {
            r.reject(e.reason, 1);
            tracing::debug!(source = %r.name, status = %e.status, reason = e.reason, message = %e.message, "remote_write refused");
            let mut resp = (e.status, format!("{}\n", e.message)).into_response();
            if e.status == StatusCode::TOO_MANY_REQUESTS {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("30"));
            }
            resp
        }
    }
}

async fn ingest(
    r: &Receiver<RemoteWriteConfig>,
    headers: &HeaderMap,
    body: Body,
) -> Result<(), Refusal> {
    if let Some(enc) = headers.get(header::CONTENT_ENCODING)
        && !enc.as_bytes().eq_ignore_ascii_case(b"snappy")
    {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "encoding",
            format!("Content-Encoding {enc:?} is not supported; remote_write 1.0 uses snappy"),
        ));
    }
    let body = read_body(body, r.limits.max_body_bytes)
        .await
        .map_err(|m| refuse(StatusCode::PAYLOAD_TOO_LARGE, "too_large", m))?;
    let mut samples = decode(&body, &r.limits)?;
    let now = now_millis();
    {
        let mut keys: Vec<u64> = samples
            .iter()
            .map(|s| series_key(&s.name, &s.labels))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let mut lim = r.series.lock().expect("series limiter");
        lim.admit_all(&keys, now).map_err(|over| {
            refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "series_limit",
                format!(
                    "{over} new series would exceed this source's limit of {} active series",
                    r.limits.max_series
                ),
            )
        })?;
        r.publish_active(lim.active());
    }
    for s in &mut samples {
        r.add_source_labels(&mut s.labels);
    }
    if !samples.is_empty() {
        r.ctx
            .emit(&r.name, "remote_write", now, samples, false)
            .await;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
