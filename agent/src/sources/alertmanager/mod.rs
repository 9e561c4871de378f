//! Alertmanager webhook receiver: `POST /api/v1/alertmanager` with the
//! webhook payload (version 4). Alerts already defined as Prometheus rules
//! become medic incidents, so existing alert rules can trigger runbooks.
//!
//! Each alert maps to one incident: the detector is the `alertname` label,
//! the labels are the alert's labels, the severity comes from the
//! `severity` label (`critical`/`page`, `warning`, `info`; anything else is
//! `warning`), and the summary from the `summary` or `description`
//! annotation. `status: firing` opens (or updates) the incident and
//! `status: resolved` resolves it. Alertmanager repeats notifications, so a
//! repeat of a firing alert just updates the open incident.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::push::{IngestLimits, PushRegistry, Receiver, read_body};
use super::{SourceConfig, SourceContext};
use crate::engine::{Command, ExternalAlert};
use crate::incidents::labels_text;
use crate::series::{Labels, Millis, now_millis};

/// Settings of a `kind: alertmanager` source.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Limits (body size, labels per alert).
    #[serde(default)]
    pub limits: IngestLimits,
}

/// The webhook payload (fields medic reads; others are ignored).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// Payload version ("4").
    #[serde(default)]
    pub version: String,
    /// Receiver name in Alertmanager's config.
    #[serde(default)]
    pub receiver: String,
    /// Group key.
    #[serde(default)]
    pub group_key: String,
    /// Alertmanager's external URL.
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
    /// The alerts.
    pub alerts: Vec<WebhookAlert>,
}

/// One alert of the payload.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    /// `firing` or `resolved`.
    pub status: String,
    /// Labels; `alertname` is required.
    pub labels: Labels,
    /// Annotations.
    #[serde(default)]
    pub annotations: Labels,
    /// RFC 3339.
    #[serde(default)]
    pub starts_at: String,
    /// RFC 3339; zero time while firing.
    #[serde(default)]
    pub ends_at: String,
    /// Link to the rule's expression.
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
    /// Alertmanager's fingerprint.
    #[serde(default)]
    pub fingerprint: String,
}

/// Milliseconds since the epoch from an RFC 3339 time (`Z` or `±hh:mm`
/// offset, optional fraction). `None` for Go's zero time or garbage.
pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 || y < 1970
    {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = s.get(start..i)?;
        if digits.is_empty() {
            return None;
        }
        let ms3: String = digits.chars().chain("000".chars()).take(3).collect();
        frac_ms = ms3.parse().ok()?;
    }
    let offset_min = match s.get(i..)? {
        "Z" | "z" => 0,
        rest if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (oh * 60 + om)
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let (y2, m2) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset_min * 60;
    Some(secs * 1000 + frac_ms)
}

fn severity_of(labels: &Labels) -> &'static str {
    match labels
        .get("severity")
        .map(|s| s.to_ascii_lowercase())
        .as_deref()
    {
        Some("critical" | "page" | "error" | "high") => "critical",
        Some("info" | "informational" | "none" | "low") => "info",
        _ => "warning",
    }
}

/// Turn a payload into engine events. Alerts without `alertname` or with an
/// unknown status are skipped and reported in the second value.
pub fn to_events(
    source: &str,
    w: &Webhook,
    limits: &IngestLimits,
    now: Millis,
) -> (Vec<ExternalAlert>, Vec<String>) {
    let mut events = Vec::new();
    let mut skipped = Vec::new();
    for (i, a) in w.alerts.iter().enumerate() {
        let Some(name) = a.labels.get("alertname").filter(|n| !n.is_empty()) else {
            skipped.push(format!("alerts[{i}]: no alertname label"));
            continue;
        };
        if let Err(m) = limits.check_labels(a.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        {
            skipped.push(format!("alerts[{i}]: {m}"));
            continue;
        }
        let firing = match a.status.as_str() {
            "firing" => true,
            "resolved" => false,
            other => {
                skipped.push(format!(
                    "alerts[{i}]: status {other:?} is neither firing nor resolved"
                ));
                continue;
            }
        };
        let at = if firing {
            parse_rfc3339(&a.starts_at)
        } else {
            parse_rfc3339(&a.ends_at)
        }
        .unwrap_or(now);
        let summary = a
            .annotations
            .get("summary")
            .or_else(|| a.annotations.get("description"))
            .cloned()
            .unwrap_or_else(|| format!("{name} {}", labels_text(&a.labels)));
        events.push(ExternalAlert {
            detector: name.clone(),
            labels: a.labels.clone(),
            severity: severity_of(&a.labels).to_string(),
            summary,
            at,
            firing,
            evidence: json!({
                "reason": format!("Alertmanager: {name} is {}", a.status),
                "at": at,
                "source": source,
                "receiver": w.receiver,
                "group_key": w.group_key,
                "annotations": a.annotations,
                "starts_at": a.starts_at,
                "ends_at": a.ends_at,
                "generator_url": a.generator_url,
                "alertmanager_fingerprint": a.fingerprint,
                "external_url": w.external_url,
            }),
        });
    }
    (events, skipped)
}

/// Serve the source while its task lives: register it for `POST /api/v1/alertmanager`.
pub async fn run(cfg: &SourceConfig, am: &AlertmanagerConfig, ctx: &SourceContext) {
    let r = Arc::new(Receiver::new(
        cfg,
        am.clone(),
        am.limits.clone(),
        ctx.clone(),
    ));
    let _guard = ctx.push.alertmanager.install(r);
    std::future::pending::<()>().await;
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// `POST /api/v1/alertmanager`.
pub async fn handle(State(reg): State<Arc<PushRegistry>>, body: Body) -> Response {
    let Some(r) = reg.alertmanager.get() else {
        return answer(
            StatusCode::NOT_FOUND,
            json!({"error": "no alertmanager source is configured in medic.yaml"}),
        );
    };
    let body = match read_body(body, r.limits.max_body_bytes).await {
        Ok(b) => b,
        Err(m) => {
            r.reject("too_large", 1);
            return answer(StatusCode::PAYLOAD_TOO_LARGE, json!({ "error": m }));
        }
    };
    let w: Webhook = match serde_json::from_slice(&body) {
        Ok(w) => w,
        Err(e) => {
            r.reject("malformed", 1);
            return answer(
                StatusCode::BAD_REQUEST,
                json!({ "error": format!("expected an Alertmanager webhook payload (version 4): {e}") }),
            );
        }
    };
    let (events, skipped) = to_events(&r.name, &w, &r.limits, now_millis());
    if !skipped.is_empty() {
        r.reject("malformed", skipped.len() as u64);
        tracing::warn!(source = %r.name, skipped = ?skipped, "alerts skipped");
    }
    let accepted = events.len();
    r.count_ingested(accepted as u64);
    for e in events {
        if r.ctx.engine.send(Command::External(e)).await.is_err() {
            return answer(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "medic is shutting down"}),
            );
        }
    }
    if accepted == 0 && !skipped.is_empty() {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({ "error": "no usable alert in the payload", "skipped": skipped }),
        );
    }
    answer(
        StatusCode::OK,
        json!({ "accepted": accepted, "skipped": skipped }),
    )
}

#[cfg(test)]
mod tests;
