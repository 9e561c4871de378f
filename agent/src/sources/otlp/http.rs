//! OTLP/HTTP: `POST /v1/traces` and `POST /v1/metrics` on medic's listener.
//!
//! Answers as the OTLP/HTTP specification says: 200 with an
//! `Export*ServiceResponse` in the request's encoding (a partial success
//! names what the limits refused — also when they refused everything, since a
//! retry would be refused again); 400 with a `google.rpc.Status` for a body
//! that is not OTLP or holds only invalid items; 413 when the body (or its
//! decompressed form) is too large; 415 for another content type or
//! encoding; 404 while no `otlp` source is configured.

use std::io::Read;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prost::Message;
use serde::Serialize;

use super::{Metrics, OtlpReceiver, Signal, Traces, Verdict};
use crate::series::now_millis;
use crate::sources::push::{IngestLimits, PushRegistry, Refusal, read_body, refuse};

/// How a body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json` (OTLP/JSON).
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// `google.rpc.Status`, the body of OTLP/HTTP error answers (details omitted).
#[derive(Clone, PartialEq, Message, Serialize)]
pub struct RpcStatus {
    /// gRPC code: 3 invalid argument, 8 resource exhausted.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// Why.
    #[prost(string, tag = "2")]
    pub message: String,
}

/// The body's encoding and whether it is gzip-compressed, from the headers.
pub fn body_format(headers: &HeaderMap) -> Result<(Encoding, bool), Refusal> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    let enc = if mime.eq_ignore_ascii_case("application/x-protobuf") {
        Encoding::Protobuf
    } else if mime.eq_ignore_ascii_case("application/json") {
        Encoding::Json
    } else {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content_type",
            format!(
                "Content-Type {ct:?} is not supported; send application/x-protobuf or application/json"
            ),
        ));
    };
    let gzip = match headers.get(header::CONTENT_ENCODING).map(|v| v.as_bytes()) {
        None => false,
        Some(e) if e.eq_ignore_ascii_case(b"identity") => false,
        Some(e) if e.eq_ignore_ascii_case(b"gzip") => true,
        Some(e) => {
            return Err(refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "encoding",
                format!(
                    "Content-Encoding {:?} is not supported; send gzip or none",
                    String::from_utf8_lossy(e)
                ),
            ));
        }
    };
    Ok((enc, gzip))
}

/// Decompress (when `gzip`) and decode a request body. Pure: no panics on any
/// input; the fuzz target and property tests call this.
pub fn decode<M: Message + Default + serde::de::DeserializeOwned>(
    enc: Encoding,
    gzip: bool,
    body: &[u8],
    limits: &IngestLimits,
) -> Result<M, Refusal> {
    let malformed = |m: String| refuse(StatusCode::BAD_REQUEST, "malformed", m);
    let raw;
    let body = if gzip {
        let limit = limits.max_decompressed_bytes;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| malformed(format!("body is not valid gzip: {e}")))?;
        if out.len() > limit {
            return Err(refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("decompressed body is larger than {limit} bytes"),
            ));
        }
        raw = out;
        &raw[..]
    } else {
        body
    };
    let name = std::any::type_name::<M>().rsplit("::").next().unwrap_or("");
    match enc {
        Encoding::Protobuf => {
            M::decode(body).map_err(|e| malformed(format!("body is not a protobuf {name}: {e}")))
        }
        Encoding::Json => serde_json::from_slice(body)
            .map_err(|e| malformed(format!("body is not an OTLP/JSON {name}: {e}"))),
    }
}

fn reply<M: Message + Serialize>(enc: Encoding, status: StatusCode, msg: &M) -> Response {
    let body = match enc {
        Encoding::Protobuf => msg.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(msg).unwrap_or_default(),
    };
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(enc.content_type()),
    );
    resp
}

fn refused(r: &OtlpReceiver, enc: Encoding, e: Refusal) -> Response {
    r.reject(e.reason, 1);
    tracing::debug!(source = %r.name, status = %e.status, reason = e.reason, message = %e.message, "OTLP export refused");
    let code = if e.status == StatusCode::PAYLOAD_TOO_LARGE {
        8
    } else {
        3
    };
    reply(
        enc,
        e.status,
        &RpcStatus {
            code,
            message: e.message,
        },
    )
}

async fn export<S: Signal>(reg: Arc<PushRegistry>, headers: HeaderMap, body: Body) -> Response {
    let Some(r) = reg.otlp.get() else {
        return (
            StatusCode::NOT_FOUND,
            "no otlp source is configured in medic.yaml\n",
        )
            .into_response();
    };
    let (enc, gzip) = match body_format(&headers) {
        Ok(f) => f,
        Err(e) => return refused(&r, Encoding::Protobuf, e),
    };
    let body = match read_body(body, r.limits.max_body_bytes).await {
        Ok(b) => b,
        Err(m) => {
            let e = refuse(StatusCode::PAYLOAD_TOO_LARGE, "too_large", m);
            return refused(&r, enc, e);
        }
    };
    let req = match decode::<S::Request>(enc, gzip, &body, &r.limits) {
        Ok(req) => req,
        Err(e) => return refused(&r, enc, e),
    };
    match S::ingest(&r, req, now_millis()).await.verdict() {
        Verdict::Accepted { rejected, message } => {
            reply(enc, StatusCode::OK, &S::response(rejected, message))
        }
        Verdict::Exhausted(rejected, message) => reply(
            enc,
            StatusCode::OK,
            &S::response(rejected, format!("all {} refused: {message}", S::ITEMS)),
        ),
        Verdict::Invalid(message) => reply(
            enc,
            StatusCode::BAD_REQUEST,
            &RpcStatus { code: 3, message },
        ),
    }
}

/// `POST /v1/traces`.
pub async fn traces(
    State(reg): State<Arc<PushRegistry>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    export::<Traces>(reg, headers, body).await
}

/// `POST /v1/metrics`.
pub async fn metrics(
    State(reg): State<Arc<PushRegistry>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    export::<Metrics>(reg, headers, body).await
}
