//! Notifiers: how people learn of an incident. One folder per kind, behind
//! one trait, chosen by `kind:` in the `notifiers:` section of `medic.yaml`.
//!
//! A notifier only formats and sends one [`Notification`]; when to send, to
//! whom, retries and recording are the on-call scheduler's (`crate::oncall`).

pub mod alertmanager_webhook;
pub mod email;
pub mod pagerduty;
pub mod slack;
pub mod webhook;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::spanned::Spanned;
use crate::executors::template;
use crate::incidents::{Incident, labels_text};
use crate::oncall::links::AckSigner;
use crate::runbooks::Retry;

/// Why a notification is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// The incident opened (the first level of its policy).
    Opened,
    /// Nobody acknowledged in time: a later level.
    Escalated,
    /// Still unresolved and unacknowledged (or the acknowledgement expired).
    Reminder,
    /// Someone has it.
    Acknowledged,
    /// It is over.
    Resolved,
}

impl Event {
    /// As stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Opened => "opened",
            Event::Escalated => "escalated",
            Event::Reminder => "reminder",
            Event::Acknowledged => "acknowledged",
            Event::Resolved => "resolved",
        }
    }
    /// Parse the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "opened" => Event::Opened,
            "escalated" => Event::Escalated,
            "reminder" => Event::Reminder,
            "acknowledged" => Event::Acknowledged,
            "resolved" => Event::Resolved,
            _ => return None,
        })
    }
    /// Asks someone to act (as opposed to telling them it is handled).
    pub fn pages(self) -> bool {
        matches!(self, Event::Opened | Event::Escalated | Event::Reminder)
    }
}

/// One notification, ready to format.
#[derive(Debug, Clone)]
pub struct Notification {
    /// Outbox key: unique, and the receivers' idempotency key.
    pub key: String,
    /// Why.
    pub event: Event,
    /// 1-based escalation level, for level notifications.
    pub level: Option<u32>,
    /// The incident as it is now.
    pub incident: Incident,
    /// Other incidents sent in this same notification (grouping by labels,
    /// `group_by` on the route); same event. Empty when not grouped.
    pub group: Vec<Incident>,
    /// The labels the group shares (its `group_by` values).
    pub group_labels: BTreeMap<String, String>,
    /// Notifier name.
    pub notifier: String,
    /// Makes acknowledgement links.
    pub links: Arc<AckSigner>,
    /// Now, in Unix seconds (links expire relative to it).
    pub now_secs: i64,
}

/// Names notification templates may use besides the incident's own
/// (`template::INCIDENT_NAMES`) and `labels.<name>`.
pub const TEMPLATE_NAMES: &[&str] = &[
    "incident.labels",
    "incident.acked_by",
    "event",
    "level",
    "notifier",
    "recipient",
    "ack_url",
    "incident_url",
    "group",
];

impl Notification {
    /// A signed acknowledgement link for `who`, while acknowledging makes
    /// sense. None for an incident not yet in the store (id 0: notified from
    /// the degraded-mode spool), which has nothing to acknowledge yet.
    pub fn ack_url(&self, who: &str) -> Option<String> {
        self.ack_url_of(&self.incident, who)
    }

    /// The incident in medic's API.
    pub fn incident_url(&self) -> String {
        self.url_of(&self.incident)
    }

    /// An incident of the group in medic's API.
    pub fn url_of(&self, i: &Incident) -> String {
        format!("{}/api/v1/incidents/{}", self.links.external_url(), i.id)
    }

    /// A signed link acknowledging one incident of the group.
    pub fn ack_url_of(&self, i: &Incident, who: &str) -> Option<String> {
        (self.event.pages() && i.id > 0 && i.is_open() && i.acked_at.is_none())
            .then(|| self.links.link(i.id, who, self.now_secs))
    }

    /// Every incident of the notification: the first, then the group.
    pub fn all(&self) -> impl Iterator<Item = &Incident> {
        std::iter::once(&self.incident).chain(&self.group)
    }

    /// The rest of the group, one line each with its own links (empty when
    /// not grouped).
    pub fn group_text(&self, who: &str) -> String {
        let mut t = String::new();
        for i in &self.group {
            t.push_str(&format!(
                "- #{} [{}] {}: {} ({})",
                i.id,
                i.severity,
                i.detector,
                i.summary,
                labels_text(&i.labels)
            ));
            if let Some(u) = self.ack_url_of(i, who) {
                t.push_str(&format!(" acknowledge: {u}"));
            }
            t.push_str(&format!(" details: {}\n", self.url_of(i)));
        }
        t
    }

    /// One line: `[critical] ESCALATED (level 2) #7 web-down: summary`.
    pub fn title(&self) -> String {
        let i = &self.incident;
        let what = match (self.event, self.level) {
            (Event::Escalated, Some(l)) => format!("ESCALATED (level {l})"),
            (e, _) => e.as_str().to_ascii_uppercase(),
        };
        let more = match self.group.len() {
            0 => String::new(),
            n => format!(" (+{n} more)"),
        };
        format!(
            "[{}] {what} #{} {}: {}{more}",
            i.severity, i.id, i.detector, i.summary
        )
    }

    /// Value of a template name, for the recipient `who`.
    pub fn value(&self, name: &str, who: &str) -> Option<String> {
        let i = &self.incident;
        Some(match name {
            "incident.labels" => labels_text(&i.labels),
            "incident.acked_by" => i.acked_by.clone().unwrap_or_default(),
            "event" => self.event.as_str().to_string(),
            "level" => self.level.map(|l| l.to_string()).unwrap_or_default(),
            "notifier" => self.notifier.clone(),
            "recipient" => who.to_string(),
            "ack_url" => self.ack_url(who).unwrap_or_default(),
            "incident_url" => self.incident_url(),
            "group" => self.group_text(who),
            other => return template::incident_value(i, other),
        })
    }

    /// Fill a template for `who` with `escape` applied to values.
    pub fn render(&self, t: &str, who: &str, escape: fn(&str) -> String) -> String {
        template::render_with(t, &|n| self.value(n, who), escape)
    }

    /// The generic JSON body shared by the webhook kinds.
    pub fn json(&self, who: &str) -> serde_json::Value {
        serde_json::json!({
            "version": "1",
            "key": self.key,
            "event": self.event.as_str(),
            "level": self.level,
            "title": self.title(),
            "incident": self.incident,
            "incident_url": self.incident_url(),
            "ack_url": self.ack_url(who),
            "group_labels": self.group_labels,
            "incidents": self.all().map(|i| serde_json::json!({
                "incident": i,
                "incident_url": self.url_of(i),
                "ack_url": self.ack_url_of(i, who),
            })).collect::<Vec<_>>(),
        })
    }
}

/// Boxed future of a send: the receiver's answer in one line, or the error.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>>;

/// One kind of notifier.
pub trait Notifier: Send + Sync {
    /// Kind name, as written in YAML.
    fn kind(&self) -> &'static str;
    /// Whether this kind has anything to say about `event` (Alertmanager
    /// receivers know no acknowledgement, for instance).
    fn wants(&self, _event: Event) -> bool {
        true
    }
    /// Whether one message may carry several incidents (grouping). Kinds whose
    /// receivers track each incident by its own key (PagerDuty's dedup key)
    /// get one notification per incident.
    fn groups(&self) -> bool {
        true
    }
    /// Send. Dropping the future abandons the attempt.
    fn send<'a>(&'a self, n: &'a Notification) -> SendFuture<'a>;
}

/// One entry of `notifiers:`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct NotifierConfig {
    /// Unique name; escalation levels refer to it.
    pub name: Spanned<String>,
    /// Retries of a failed delivery (exponential back-off with jitter). When
    /// they are used up the notification is marked failed in the timeline.
    #[serde(default = "default_delivery")]
    pub delivery: Retry,
    /// Time allowed for one attempt.
    #[serde(default = "default_timeout")]
    pub timeout: crate::config::duration::Duration,
    /// The kind and its settings.
    #[serde(flatten)]
    pub kind: NotifierKind,
}

fn default_delivery() -> Retry {
    Retry {
        max_attempts: 20,
        backoff: crate::config::duration::Duration::from_secs(1),
        max_backoff: crate::config::duration::Duration::from_secs(300),
        jitter: 0.2,
    }
}

fn default_timeout() -> crate::config::duration::Duration {
    crate::config::duration::Duration::from_secs(30)
}

/// The kinds of notifier, chosen by `kind:`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum NotifierKind {
    /// Email over SMTP (plain, STARTTLS or TLS), text and HTML bodies.
    Email(email::EmailConfig),
    /// A generic JSON webhook.
    Webhook(webhook::WebhookConfig),
    /// Alertmanager's webhook payload (version 4), for existing receivers.
    AlertmanagerWebhook(webhook::WebhookConfig),
    /// A Slack-style incoming webhook.
    Slack(slack::SlackConfig),
    /// PagerDuty Events API v2 (trigger, acknowledge, resolve).
    Pagerduty(pagerduty::PagerdutyConfig),
}

impl NotifierConfig {
    /// Build the notifier; fails when a secret it needs cannot be read.
    pub fn build(
        &self,
        http: &reqwest::Client,
        base_dir: &std::path::Path,
    ) -> Result<Arc<dyn Notifier>, String> {
        Ok(match &self.kind {
            NotifierKind::Email(c) => Arc::new(email::Email::new(c, base_dir)?),
            NotifierKind::Webhook(c) => Arc::new(webhook::Webhook::new(c.clone(), http.clone())),
            NotifierKind::AlertmanagerWebhook(c) => Arc::new(
                alertmanager_webhook::AlertmanagerWebhook::new(c.clone(), http.clone()),
            ),
            NotifierKind::Slack(c) => Arc::new(slack::Slack::new(c.clone(), http.clone())),
            NotifierKind::Pagerduty(c) => {
                Arc::new(pagerduty::Pagerduty::new(c, http.clone(), base_dir)?)
            }
        })
    }

    /// Problems found without sending anything (URLs, templates).
    pub fn check(&self) -> Vec<String> {
        let url = |u: &str| {
            reqwest::Url::parse(u)
                .err()
                .map(|e| format!("url {u:?} is not a URL: {e}"))
        };
        let mut out = Vec::new();
        if self.delivery.max_attempts == 0 {
            out.push("delivery.max_attempts must be at least 1".to_string());
        }
        out.extend(match &self.kind {
            NotifierKind::Email(c) => c.check(),
            NotifierKind::Webhook(c) | NotifierKind::AlertmanagerWebhook(c) => {
                url(&c.url).into_iter().collect()
            }
            NotifierKind::Slack(c) => url(&c.url)
                .into_iter()
                .chain(c.text.as_deref().and_then(check_template))
                .collect(),
            NotifierKind::Pagerduty(c) => url(&c.url).into_iter().chain(c.check()).collect(),
        });
        out
    }
}

/// A notification template's first unknown name, if any.
pub fn check_template(t: &str) -> Option<String> {
    template::check_names(t, TEMPLATE_NAMES).err()
}

/// A secret from an environment variable or a file (relative to `base_dir`);
/// `what` names the setting in errors. Never logged.
pub fn read_secret(
    what: &str,
    env: Option<&str>,
    file: Option<&std::path::Path>,
    base_dir: &std::path::Path,
) -> Result<Option<String>, String> {
    if let Some(var) = env {
        return match std::env::var(var) {
            Ok(v) => Ok(Some(v)),
            Err(_) => Err(format!("{what}_env: environment variable {var} is not set")),
        };
    }
    if let Some(f) = file {
        let p = base_dir.join(f);
        return std::fs::read_to_string(&p)
            .map(|s| Some(s.trim_end_matches(['\r', '\n']).to_string()))
            .map_err(|e| format!("{what}_file {}: {e}", p.display()));
    }
    Ok(None)
}

/// POST JSON with the notification's key as `Idempotency-Key`; a 2xx answer
/// is success.
pub async fn post_json(
    http: &reqwest::Client,
    url: &str,
    headers: &BTreeMap<String, String>,
    key: &str,
    body: &serde_json::Value,
) -> Result<String, String> {
    let mut req = http.post(url).header("Idempotency-Key", key).json(body);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = req.send().await.map_err(|e| format!("POST {url}: {e}"))?;
    let code = resp.status();
    if code.is_success() {
        Ok(format!("POST {url} → {}", code.as_u16()))
    } else {
        let text = resp.text().await.unwrap_or_default();
        let text: String = text.chars().take(200).collect();
        Err(format!("POST {url} → status {}: {text}", code.as_u16()))
    }
}

#[cfg(test)]
mod tests;
