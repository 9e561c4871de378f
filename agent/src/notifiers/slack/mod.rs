//! `kind: slack` — a Slack-style incoming webhook: `{"text": …}` in Slack's
//! mrkdwn, with the acknowledgement link as `<url|Acknowledge>`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Notification, Notifier, SendFuture, post_json};

/// Settings of a Slack incoming webhook.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The incoming-webhook URL.
    pub url: String,
    /// Message template; default: the title, labels and links.
    #[serde(default)]
    pub text: Option<String>,
    /// Channel override, for webhooks that accept one.
    #[serde(default)]
    pub channel: Option<String>,
}

/// The Slack notifier.
pub struct Slack {
    cfg: SlackConfig,
    http: reqwest::Client,
}

impl Slack {
    /// Build.
    pub fn new(cfg: SlackConfig, http: reqwest::Client) -> Self {
        Slack { cfg, http }
    }
}

/// Slack's escaping: `&`, `<` and `>` only.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The payload.
pub fn payload(cfg: &SlackConfig, n: &Notification) -> serde_json::Value {
    let who = &n.notifier;
    let text = match &cfg.text {
        Some(t) => n.render(t, who, escape),
        None => {
            let mut t = format!(
                "*{}*\n{}",
                escape(&n.title()),
                escape(&crate::incidents::labels_text(&n.incident.labels))
            );
            if let Some(by) = &n.incident.acked_by {
                t.push_str(&format!("\nacknowledged by {}", escape(by)));
            }
            if let Some(u) = n.ack_url(who) {
                t.push_str(&format!("\n<{u}|Acknowledge>"));
            }
            t.push_str(&format!("  <{}|Details>", n.incident_url()));
            for i in &n.group {
                t.push_str(&format!(
                    "\n• #{} [{}] {}: {}",
                    i.id,
                    escape(&i.severity),
                    escape(&i.detector),
                    escape(&i.summary)
                ));
                if let Some(u) = n.ack_url_of(i, who) {
                    t.push_str(&format!(" <{u}|Acknowledge>"));
                }
            }
            t
        }
    };
    let mut v = serde_json::json!({ "text": text });
    if let Some(c) = &cfg.channel {
        v["channel"] = c.clone().into();
    }
    v
}

impl Notifier for Slack {
    fn kind(&self) -> &'static str {
        "slack"
    }
    fn send<'a>(&'a self, n: &'a Notification) -> SendFuture<'a> {
        Box::pin(async move {
            let body = payload(&self.cfg, n);
            post_json(&self.http, &self.cfg.url, &BTreeMap::new(), &n.key, &body).await
        })
    }
}
