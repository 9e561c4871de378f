//! `kind: notify` — a generic JSON webhook. The payload is built by medic
//! (not templated), so label values are always properly escaped JSON.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ActionOutcome, ExecFuture, Executor, StepContext, template};

/// Parameters of a notify step.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyParams {
    /// Webhook URL.
    pub url: String,
    /// Extra headers (e.g. authorization). Values are not journalled.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Message template, e.g. `{{ incident.summary }} on {{ labels.instance }}`.
    #[serde(default)]
    pub message: Option<String>,
}

/// The notify executor.
pub struct Notify {
    params: NotifyParams,
    client: reqwest::Client,
}

impl Notify {
    /// Build.
    pub fn new(params: NotifyParams, client: reqwest::Client) -> Self {
        Notify { params, client }
    }
}

impl Executor for Notify {
    fn kind(&self) -> &'static str {
        "notify"
    }
    fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "url": self.params.url,
            "headers": self.params.headers.keys().collect::<Vec<_>>(),
        })
    }
    fn target(&self, _ctx: &StepContext) -> String {
        self.params.url.clone()
    }
    fn execute<'a>(&'a self, ctx: &'a StepContext) -> ExecFuture<'a> {
        Box::pin(async move {
            let i = &ctx.incident;
            let message = match &self.params.message {
                Some(t) => template::render(t, ctx, template::raw),
                None => format!("[{}] {}: {}", i.severity, i.detector, i.summary),
            };
            let payload = serde_json::json!({
                "version": "1",
                "message": message,
                "incident": i,
                "runbook": ctx.runbook,
                "step": ctx.step_name,
                "idempotency_key": ctx.idempotency_key,
            });
            let mut req = self
                .client
                .post(&self.params.url)
                .header("Idempotency-Key", &ctx.idempotency_key)
                .json(&payload);
            for (k, v) in &self.params.headers {
                req = req.header(k, v);
            }
            let resp = req
                .send()
                .await
                .map_err(|e| format!("POST {}: {e}", self.params.url))?;
            let code = resp.status();
            if code.is_success() {
                Ok(ActionOutcome {
                    summary: format!("notified {} ({})", self.params.url, code.as_u16()),
                    details: serde_json::json!({"status": code.as_u16(), "message": message}),
                })
            } else {
                Err(format!(
                    "POST {} → status {}",
                    self.params.url,
                    code.as_u16()
                ))
            }
        })
    }
}
