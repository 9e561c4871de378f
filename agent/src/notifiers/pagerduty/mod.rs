//! `kind: pagerduty` — PagerDuty Events API v2: `trigger` for level
//! notifications and reminders, `acknowledge`, `resolve`, all with the
//! incident's fingerprint as `dedup_key` so PagerDuty keeps one alert per
//! incident. The URL is configurable (a proxy, or a local server in tests).

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::alertmanager_webhook::rfc3339;
use super::{Event, Notification, Notifier, SendFuture, post_json, read_secret};

/// Settings of a PagerDuty notifier. The routing key is a secret: give it
/// from an environment variable or a file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyConfig {
    /// Events API endpoint.
    #[serde(default = "default_url")]
    pub url: String,
    /// Environment variable holding the integration (routing) key.
    #[serde(default)]
    pub routing_key_env: Option<String>,
    /// File holding the routing key (relative to medic.yaml).
    #[serde(default)]
    pub routing_key_file: Option<PathBuf>,
    /// `source` of the event (default: medic).
    #[serde(default)]
    pub source: Option<String>,
}

fn default_url() -> String {
    "https://events.pagerduty.com/v2/enqueue".into()
}

impl PagerdutyConfig {
    /// Problems found at load time.
    pub fn check(&self) -> Vec<String> {
        if self.routing_key_env.is_some() == self.routing_key_file.is_some() {
            vec!["needs exactly one of routing_key_env or routing_key_file".into()]
        } else {
            Vec::new()
        }
    }
}

/// The PagerDuty notifier.
pub struct Pagerduty {
    cfg: PagerdutyConfig,
    routing_key: String,
    http: reqwest::Client,
}

impl Pagerduty {
    /// Build; reads the routing key.
    pub fn new(
        cfg: &PagerdutyConfig,
        http: reqwest::Client,
        base_dir: &std::path::Path,
    ) -> Result<Self, String> {
        let routing_key = read_secret(
            "routing_key",
            cfg.routing_key_env.as_deref(),
            cfg.routing_key_file.as_deref(),
            base_dir,
        )?
        .ok_or("needs routing_key_env or routing_key_file")?;
        Ok(Pagerduty {
            cfg: cfg.clone(),
            routing_key,
            http,
        })
    }
}

/// PagerDuty's severities: critical, error, warning, info.
fn severity(s: &str) -> &'static str {
    match s {
        "critical" => "critical",
        "info" => "info",
        _ => "warning",
    }
}

/// The Events API v2 body.
pub fn payload(routing_key: &str, source: &str, n: &Notification) -> serde_json::Value {
    let i = &n.incident;
    let action = match n.event {
        Event::Acknowledged => "acknowledge",
        Event::Resolved => "resolve",
        _ => "trigger",
    };
    let mut v = serde_json::json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": i.fingerprint,
    });
    if action == "trigger" {
        v["payload"] = serde_json::json!({
            "summary": n.title().chars().take(1024).collect::<String>(),
            "source": source,
            "severity": severity(&i.severity),
            "timestamp": rfc3339(i.opened_at),
            "component": i.labels.get("service").or_else(|| i.labels.get("job")),
            "class": i.detector,
            "custom_details": {
                "incident_id": i.id,
                "labels": i.labels,
                "event": n.event.as_str(),
                "level": n.level,
            },
        });
        let mut links =
            vec![serde_json::json!({"href": n.incident_url(), "text": "Incident in medic"})];
        if let Some(u) = n.ack_url(&n.notifier) {
            links.push(serde_json::json!({"href": u, "text": "Acknowledge in medic"}));
        }
        v["links"] = links.into();
    }
    v
}

impl Notifier for Pagerduty {
    fn kind(&self) -> &'static str {
        "pagerduty"
    }
    fn groups(&self) -> bool {
        false
    }
    fn send<'a>(&'a self, n: &'a Notification) -> SendFuture<'a> {
        Box::pin(async move {
            let source = self.cfg.source.as_deref().unwrap_or("medic");
            let body = payload(&self.routing_key, source, n);
            post_json(&self.http, &self.cfg.url, &BTreeMap::new(), &n.key, &body).await
        })
    }
}
