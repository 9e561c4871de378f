//! `kind: http` — an HTTP request (method, URL, headers, body template,
//! expected status). Template values in a JSON body are JSON-escaped.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::template;
use super::{ActionOutcome, ExecFuture, Executor, StepContext};

/// Parameters of an HTTP step.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpParams {
    /// HTTP method.
    #[serde(default = "default_method")]
    pub method: String,
    /// URL (no templating: the target is fixed by the runbook author).
    pub url: String,
    /// Request headers. Values are not journalled (they may hold tokens).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Body template, e.g. `{"incident": "{{ incident.id }}"}`.
    #[serde(default)]
    pub body: Option<String>,
    /// Accepted status codes; empty means any 2xx.
    #[serde(default)]
    pub expect_status: Vec<u16>,
}

fn default_method() -> String {
    "POST".into()
}

/// The HTTP executor.
pub struct Http {
    params: HttpParams,
    client: reqwest::Client,
}

impl Http {
    /// Build.
    pub fn new(params: HttpParams, client: reqwest::Client) -> Self {
        Http { params, client }
    }
}

impl Executor for Http {
    fn kind(&self) -> &'static str {
        "http"
    }
    fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "method": self.params.method,
            "url": self.params.url,
            "headers": self.params.headers.keys().collect::<Vec<_>>(),
            "expect_status": self.params.expect_status,
        })
    }
    fn target(&self, _ctx: &StepContext) -> String {
        format!("{} {}", self.params.method, self.params.url)
    }
    fn execute<'a>(&'a self, ctx: &'a StepContext) -> ExecFuture<'a> {
        Box::pin(async move {
            let p = &self.params;
            let method = reqwest::Method::from_bytes(p.method.to_uppercase().as_bytes())
                .map_err(|_| format!("invalid method {:?}", p.method))?;
            let mut req = self
                .client
                .request(method, &p.url)
                .header("Idempotency-Key", &ctx.idempotency_key);
            if let Some(f) = ctx.fence {
                req = req.header("X-Medic-Fence", f.to_string());
            }
            for (k, v) in &p.headers {
                req = req.header(k, v);
            }
            if let Some(b) = &p.body {
                let json_body = b.trim_start().starts_with('{') || b.trim_start().starts_with('[');
                let escape = if json_body {
                    template::json_inner
                } else {
                    template::raw
                };
                if json_body {
                    req = req.header("Content-Type", "application/json");
                }
                req = req.body(template::render(b, ctx, escape));
            }
            let resp = req
                .send()
                .await
                .map_err(|e| format!("{} {}: {e}", p.method, p.url))?;
            let code = resp.status().as_u16();
            let text = resp.text().await.unwrap_or_default();
            let ok = if p.expect_status.is_empty() {
                (200..300).contains(&code)
            } else {
                p.expect_status.contains(&code)
            };
            let snippet: String = text.chars().take(512).collect();
            if ok {
                Ok(ActionOutcome {
                    summary: format!("{} {} → {code}", p.method, p.url),
                    details: serde_json::json!({"status": code, "body": snippet}),
                })
            } else {
                Err(format!(
                    "{} {} → unexpected status {code}: {snippet}",
                    p.method, p.url
                ))
            }
        })
    }
}
