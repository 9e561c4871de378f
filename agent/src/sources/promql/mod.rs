//! PromQL source: run instant queries against a Prometheus-compatible HTTP
//! API (`GET /api/v1/query`) on the source's interval and feed each returned
//! series to the detectors.
//!
//! Each query is its own target: its result is a complete batch, so a series
//! that drops out of the result is stale (its threshold condition clears).
//! Every evaluation also yields `up{job=<source>, query=<name>}` (1 when the
//! query answered, 0 otherwise) for heartbeat detectors. A series without a
//! metric name (e.g. `rate(...)`) is named after the query.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{SourceConfig, SourceContext};
use crate::series::{Labels, Millis, Sample, now_millis};

/// Settings of a `kind: promql` source.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PromqlConfig {
    /// Base URL of the Prometheus-compatible API, e.g. `http://127.0.0.1:9090`.
    pub url: String,
    /// The queries to run every interval.
    pub queries: Vec<PromqlQuery>,
    /// Responses larger than this many bytes are refused.
    #[serde(default = "default_max_bytes")]
    pub max_response_bytes: usize,
}

fn default_max_bytes() -> usize {
    16 << 20
}

/// One query.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PromqlQuery {
    /// Name of the query: the metric name of result series that have none,
    /// and the `query` label of its `up` series.
    pub name: String,
    /// The PromQL expression (an instant query: vector or scalar result).
    pub expr: String,
}

#[derive(Deserialize)]
struct ApiResponse {
    status: String,
    #[serde(default)]
    data: Option<ApiData>,
    #[serde(default, rename = "errorType")]
    error_type: String,
    #[serde(default)]
    error: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiData {
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct VectorItem {
    metric: Labels,
    value: (f64, String),
}

fn parse_value(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .map_err(|_| format!("sample value {s:?} is not a number"))
}

/// Turn a `/api/v1/query` answer into samples. Pure; tested on real answers.
pub fn parse_response(
    body: &[u8],
    query: &PromqlQuery,
    extra: &Labels,
) -> Result<Vec<Sample>, String> {
    let r: ApiResponse = serde_json::from_slice(body)
        .map_err(|e| format!("answer is not a Prometheus API response: {e}"))?;
    if r.status != "success" {
        return Err(format!("query failed: {} {}", r.error_type, r.error));
    }
    let data = r.data.ok_or("answer has no data")?;
    let to_ms = |t: f64| (t * 1000.0).round() as Millis;
    let mut out = Vec::new();
    match data.result_type.as_str() {
        "vector" => {
            let items: Vec<VectorItem> =
                serde_json::from_value(data.result).map_err(|e| format!("vector result: {e}"))?;
            for it in items {
                let mut labels = it.metric;
                let name = labels
                    .remove("__name__")
                    .unwrap_or_else(|| query.name.clone());
                for (k, v) in extra {
                    labels.entry(k.clone()).or_insert_with(|| v.clone());
                }
                out.push(Sample {
                    name,
                    labels,
                    value: parse_value(&it.value.1)?,
                    at: to_ms(it.value.0),
                });
            }
        }
        "scalar" => {
            let (t, v): (f64, String) =
                serde_json::from_value(data.result).map_err(|e| format!("scalar result: {e}"))?;
            out.push(Sample {
                name: query.name.clone(),
                labels: extra.clone(),
                value: parse_value(&v)?,
                at: to_ms(t),
            });
        }
        other => {
            return Err(format!(
                "result type {other:?}: use an instant query that returns a vector or a scalar"
            ));
        }
    }
    Ok(out)
}

/// Run the source's queries on its interval until aborted.
pub async fn run(cfg: &SourceConfig, pc: &PromqlConfig, ctx: &SourceContext) {
    let endpoint = format!("{}/api/v1/query", pc.url.trim_end_matches('/'));
    let mut tick = tokio::time::interval(cfg.interval.std());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for q in &pc.queries {
            let mut extra = cfg.labels.clone();
            extra
                .entry("job".into())
                .or_insert_with(|| cfg.name.value.clone());
            let result = query_once(ctx, &endpoint, q, cfg, pc.max_response_bytes, &extra).await;
            let at = now_millis();
            let (mut samples, ok) = match result {
                Ok(s) => (s, true),
                Err((reason, msg)) => {
                    tracing::warn!(source = %cfg.name, query = %q.name, reason, error = %msg, "PromQL query failed");
                    ctx.metrics.source_error(&cfg.name, reason);
                    (Vec::new(), false)
                }
            };
            let mut up = extra.clone();
            up.insert("query".into(), q.name.clone());
            samples.push(Sample {
                name: "up".into(),
                labels: up,
                value: if ok { 1.0 } else { 0.0 },
                at,
            });
            if !ctx.emit(&cfg.name, &q.name, at, samples, ok).await {
                return;
            }
        }
    }
}

async fn query_once(
    ctx: &SourceContext,
    endpoint: &str,
    q: &PromqlQuery,
    cfg: &SourceConfig,
    max_bytes: usize,
    extra: &Labels,
) -> Result<Vec<Sample>, (&'static str, String)> {
    let url = reqwest::Url::parse_with_params(endpoint, &[("query", q.expr.as_str())])
        .map_err(|e| ("config", format!("url {endpoint:?}: {e}")))?;
    let timeout = cfg.effective_timeout().std();
    let fut = async {
        let resp = ctx
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| ("http", e.to_string()))?;
        let status = resp.status();
        let body = super::read_limited(resp, max_bytes).await?;
        match parse_response(&body, q, extra) {
            Ok(s) => Ok(s),
            Err(m) if !status.is_success() => Err(("status", format!("HTTP {status}: {m}"))),
            Err(m) => Err(("parse", m)),
        }
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(("timeout", format!("no answer within {timeout:?}"))),
    }
}

#[cfg(test)]
mod tests;
