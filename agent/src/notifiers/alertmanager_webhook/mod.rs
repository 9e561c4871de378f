//! `kind: alertmanager_webhook` — the payload Alertmanager's webhook receiver
//! sends (version 4), so receivers written for Alertmanager work unchanged.
//! Each incident is one alert (a grouped notification carries several);
//! `alertname` is the detector.
//! Alertmanager has no acknowledgement, so acks are not sent.

use std::collections::BTreeMap;

use super::webhook::WebhookConfig;
use super::{Event, Notification, Notifier, SendFuture, post_json};
use crate::series::Millis;

/// The Alertmanager-shaped notifier.
pub struct AlertmanagerWebhook {
    cfg: WebhookConfig,
    http: reqwest::Client,
}

impl AlertmanagerWebhook {
    /// Build.
    pub fn new(cfg: WebhookConfig, http: reqwest::Client) -> Self {
        AlertmanagerWebhook { cfg, http }
    }
}

/// RFC 3339 in UTC with milliseconds, as Alertmanager writes times.
pub fn rfc3339(ms: Millis) -> String {
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:03}Z",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}

/// The version 4 payload: one alert per incident of the notification (one,
/// or a group).
pub fn payload(n: &Notification) -> serde_json::Value {
    let resolved = n.event == Event::Resolved;
    let status = if resolved { "resolved" } else { "firing" };
    let mut alerts = Vec::new();
    let mut common: Option<BTreeMap<String, String>> = None;
    let mut common_ann: Option<serde_json::Value> = None;
    for i in n.all() {
        let mut labels = i.labels.clone();
        labels.insert("alertname".into(), i.detector.clone());
        labels
            .entry("severity".into())
            .or_insert_with(|| i.severity.clone());
        let mut annotations = serde_json::json!({ "summary": i.summary });
        if let Some(u) = n.ack_url_of(i, &n.notifier) {
            annotations["ack_url"] = u.into();
        }
        common = Some(match common {
            None => labels.clone(),
            Some(c) => c
                .into_iter()
                .filter(|(k, v)| labels.get(k) == Some(v))
                .collect(),
        });
        common_ann = Some(match common_ann {
            None => annotations.clone(),
            Some(c) if c == annotations => c,
            Some(_) => serde_json::json!({}),
        });
        alerts.push(serde_json::json!({
            "status": status,
            "labels": labels,
            "annotations": annotations,
            "startsAt": rfc3339(i.opened_at),
            "endsAt": if resolved { rfc3339(i.resolved_at.unwrap_or(i.updated_at)) } else { "0001-01-01T00:00:00Z".to_string() },
            "generatorURL": n.url_of(i),
            "fingerprint": i.fingerprint,
        }));
    }
    let group: BTreeMap<String, String> = if n.group.is_empty() && n.group_labels.is_empty() {
        [("alertname".to_string(), n.incident.detector.clone())].into()
    } else {
        n.group_labels.clone()
    };
    let key = group
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join(",");
    serde_json::json!({
        "version": "4",
        "groupKey": format!("{{}}:{{{key}}}"),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": n.notifier,
        "groupLabels": group,
        "commonLabels": common.unwrap_or_default(),
        "commonAnnotations": common_ann.unwrap_or_else(|| serde_json::json!({})),
        "externalURL": n.links.external_url(),
        "alerts": alerts,
    })
}

impl Notifier for AlertmanagerWebhook {
    fn kind(&self) -> &'static str {
        "alertmanager_webhook"
    }
    fn wants(&self, event: Event) -> bool {
        event != Event::Acknowledged
    }
    fn send<'a>(&'a self, n: &'a Notification) -> SendFuture<'a> {
        Box::pin(async move {
            let body = payload(n);
            post_json(&self.http, &self.cfg.url, &self.cfg.headers, &n.key, &body).await
        })
    }
}
