//! `kind: webhook` — a generic JSON POST: event, level, the incident, and a
//! signed acknowledgement link. Built by medic, not templated, so label
//! values are always properly escaped JSON.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Notification, Notifier, SendFuture, post_json};

/// Settings of a webhook (also used by `alertmanager_webhook`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST.
    pub url: String,
    /// Extra headers (e.g. authorization). Never logged.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// The webhook notifier.
pub struct Webhook {
    cfg: WebhookConfig,
    http: reqwest::Client,
}

impl Webhook {
    /// Build.
    pub fn new(cfg: WebhookConfig, http: reqwest::Client) -> Self {
        Webhook { cfg, http }
    }
}

impl Notifier for Webhook {
    fn kind(&self) -> &'static str {
        "webhook"
    }
    fn send<'a>(&'a self, n: &'a Notification) -> SendFuture<'a> {
        Box::pin(async move {
            let body = n.json(&n.notifier);
            post_json(&self.http, &self.cfg.url, &self.cfg.headers, &n.key, &body).await
        })
    }
}
