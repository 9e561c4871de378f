//! The on-call shell: one task that routes new incidents and plans
//! escalations from the store (durable timers: the next-fire times are rows),
//! and one that delivers the outbox with retries. Both only read the clock
//! here and hand it to the pure parts.

use std::sync::Arc;
use std::time::Duration;

use crate::incidents::Incident;
use crate::notifiers::{Event, Notification};
use crate::series::{Millis, now_millis};
use crate::stores::Store;
use crate::stores::oncall::{Delivery, Note, OutboxEntry, Seen};
use crate::telemetry::{Metrics, NotificationLabels};

use super::{SharedOncall, current, escalation, mute};

/// How often timers are checked and the outbox is read.
const TICK: Duration = Duration::from_millis(250);

/// Runs the planner and the sender.
#[derive(Clone)]
pub struct Scheduler {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    oncall: SharedOncall,
}

impl Scheduler {
    /// Build.
    pub fn new(store: Arc<dyn Store>, metrics: Arc<Metrics>, oncall: SharedOncall) -> Self {
        Scheduler {
            store,
            metrics,
            oncall,
        }
    }

    /// Start both loops.
    pub fn spawn(self) {
        let sender = self.clone();
        tokio::spawn(async move {
            let mut t = tokio::time::interval(TICK);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                t.tick().await;
                self.plan_once(now_millis());
            }
        });
        tokio::spawn(async move {
            let mut t = tokio::time::interval(TICK);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                t.tick().await;
                sender.deliver_once().await;
            }
        });
    }

    /// Route incidents that have no escalation yet, then plan every active
    /// escalation at `now` and save what is due.
    pub fn plan_once(&self, now: Millis) {
        let oc = current(&self.oncall);
        for i in self.store.unrouted_incidents().unwrap_or_default() {
            let policy = oc.route(&i).map(|p| p.name.value.clone());
            let e = escalation::start(i.id, policy.as_deref(), now);
            let message = match &policy {
                Some(p) => format!("routed to escalation policy {p}"),
                None => "no route matches: nobody is notified".to_string(),
            };
            let note = Note {
                kind: "escalation",
                actor: "medic".into(),
                message,
                data: serde_json::Value::Null,
            };
            if let Err(err) = self
                .store
                .save_escalation(&e, Seen::of(&i), &[], &[note], None, now)
            {
                tracing::error!(incident = i.id, error = %err, "cannot route incident");
            }
        }
        let active = match self.store.active_escalations() {
            Ok(a) => a,
            Err(err) => {
                tracing::error!(error = %err, "cannot read escalations");
                return;
            }
        };
        let silences: Vec<_> = self
            .store
            .silences(false, now)
            .unwrap_or_default()
            .into_iter()
            .filter(|s| s.active(now))
            .collect();
        let open: Vec<&Incident> = active.iter().map(|(_, i)| i).collect();
        for (e, i) in &active {
            let policy = e.policy.as_ref().and_then(|n| oc.policies.get(n));
            let mutes = mute::Mutes {
                silences: &silences,
                windows: &oc.maintenance,
                rules: &oc.inhibit,
                open: &open,
            };
            let muted = mute::reason(i, mutes, now);
            let mut plan = escalation::plan(e, i, policy, muted.as_deref(), now);
            if plan.is_noop(e) {
                continue;
            }
            // A kind with nothing to say about an event is not sent it.
            plan.notifications.retain(|n| {
                let event = Event::parse(&n.event).unwrap_or(Event::Opened);
                oc.notifiers
                    .get(&n.notifier)
                    .is_none_or(|b| b.notifier.wants(event))
            });
            match self.store.save_escalation(
                &plan.escalation,
                Seen::of(i),
                &plan.notifications,
                &plan.notes,
                plan.expire_ack,
                now,
            ) {
                Ok(true) => {
                    for n in &plan.notifications {
                        tracing::info!(incident = i.id, notifier = %n.notifier, event = %n.event, key = %n.key, "notification queued");
                    }
                }
                // The incident changed meanwhile (an ack): plan again next tick.
                Ok(false) => {}
                Err(err) => {
                    tracing::error!(incident = i.id, error = %err, "cannot save escalation")
                }
            }
        }
    }

    /// Send what is due in the outbox, each attempt concurrently, and record
    /// the outcomes.
    pub async fn deliver_once(&self) {
        let now = now_millis();
        let due = match self.store.due_notifications(now, 64) {
            Ok(d) => d,
            Err(err) => {
                tracing::error!(error = %err, "cannot read the notification outbox");
                return;
            }
        };
        if due.is_empty() {
            return;
        }
        let oc = current(&self.oncall);
        let mut set = tokio::task::JoinSet::new();
        for entry in due {
            let incident = self.store.incident(entry.incident_id).ok().flatten();
            let built = oc.notifiers.get(&entry.notifier).cloned();
            let links = oc.links.clone();
            set.spawn(async move {
                let result = match (&incident, &built) {
                    (None, _) => Err(format!("incident {} not found", entry.incident_id)),
                    (_, None) => Err(format!(
                        "notifier {:?} is no longer configured",
                        entry.notifier
                    )),
                    (Some(i), Some(b)) => {
                        let n = Notification {
                            key: entry.key.clone(),
                            event: Event::parse(&entry.event).unwrap_or(Event::Opened),
                            level: entry.level,
                            incident: i.clone(),
                            notifier: entry.notifier.clone(),
                            links,
                            now_secs: now_millis() / 1000,
                        };
                        match tokio::time::timeout(b.timeout, b.notifier.send(&n)).await {
                            Ok(r) => r,
                            Err(_) => Err(format!("timed out after {:?}", b.timeout)),
                        }
                    }
                };
                let permanent = incident.is_none() || built.is_none();
                (entry, built, result, permanent)
            });
        }
        while let Some(r) = set.join_next().await {
            let Ok((entry, built, result, permanent)) = r else {
                continue;
            };
            let max = built.as_ref().map(|b| b.delivery.max_attempts).unwrap_or(1);
            let kind = built.as_ref().map(|b| b.notifier.kind()).unwrap_or("?");
            self.record(&entry, kind, result, permanent, max, built.as_ref());
        }
    }

    fn record(
        &self,
        entry: &OutboxEntry,
        kind: &str,
        result: Result<String, String>,
        permanent: bool,
        max_attempts: u32,
        built: Option<&super::BuiltNotifier>,
    ) {
        let now = now_millis();
        let attempt = entry.attempts + 1;
        let what = match entry.level {
            Some(l) => format!("{} (level {l})", entry.event),
            None => entry.event.clone(),
        };
        let data = |detail: &str| {
            serde_json::json!({
                "key": entry.key, "notifier": entry.notifier, "kind": kind,
                "event": entry.event, "level": entry.level, "attempt": attempt, "detail": detail,
            })
        };
        let (outcome, message, label) = match result {
            Ok(detail) => {
                tracing::info!(incident = entry.incident_id, notifier = %entry.notifier, key = %entry.key, "notification sent");
                (
                    Delivery::Sent(detail),
                    format!("notified {} ({kind}): {what}", entry.notifier),
                    "sent",
                )
            }
            Err(error) if permanent || attempt >= max_attempts => {
                tracing::error!(incident = entry.incident_id, notifier = %entry.notifier, key = %entry.key, %error, "notification failed for good");
                (
                    Delivery::GaveUp(error.clone()),
                    format!(
                        "notification to {} ({kind}) failed for good after {attempt} attempt(s): {what}: {error}",
                        entry.notifier
                    ),
                    "gave_up",
                )
            }
            Err(error) => {
                let wait = built
                    .map(|b| b.delivery.delay(attempt + 1, rand::random::<f64>()))
                    .unwrap_or(Duration::from_secs(1));
                tracing::warn!(incident = entry.incident_id, notifier = %entry.notifier, key = %entry.key, %error, retry_in = ?wait, "notification failed; will retry");
                (
                    Delivery::Retry {
                        at: now + wait.as_millis() as Millis,
                        error: error.clone(),
                    },
                    format!(
                        "notification to {} ({kind}) failed (attempt {attempt} of {max_attempts}): {what}: {error}; retrying in {}",
                        entry.notifier,
                        humantime::format_duration(Duration::from_millis(wait.as_millis() as u64))
                    ),
                    "failed",
                )
            }
        };
        let detail = match &outcome {
            Delivery::Sent(d) | Delivery::GaveUp(d) => d.clone(),
            Delivery::Retry { error, .. } => error.clone(),
        };
        let note = Note {
            kind: "notification",
            actor: format!("notifier:{}", entry.notifier),
            message,
            data: data(&detail),
        };
        if let Err(err) = self
            .store
            .finish_notification(entry.id, &outcome, now, &note)
        {
            tracing::error!(key = %entry.key, error = %err, "cannot record notification outcome");
        }
        self.metrics
            .notifications
            .get_or_create(&NotificationLabels {
                notifier: entry.notifier.clone(),
                outcome: label.into(),
            })
            .inc();
    }
}
