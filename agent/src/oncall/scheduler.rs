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

use super::grouping::{self, Due};
use super::{SharedOncall, current, escalation, mute};

/// One delivery attempt of a batch, recorded for each of its entries.
struct Attempt<'a> {
    result: Result<String, String>,
    /// The failure cannot be retried (incident or notifier gone).
    permanent: bool,
    built: Option<&'a super::BuiltNotifier>,
    /// Timeline suffix for a grouped message ("" when alone).
    grouped: &'a str,
    jitter: f64,
}

/// How often timers are checked and the outbox is read.
const TICK: Duration = Duration::from_millis(250);

/// Runs the planner and the sender.
#[derive(Clone)]
pub struct Scheduler {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    oncall: SharedOncall,
    /// When each notification group was last sent (`grouping.rs`).
    last_sent: Arc<std::sync::Mutex<std::collections::HashMap<String, Millis>>>,
}

impl Scheduler {
    /// Build.
    pub fn new(store: Arc<dyn Store>, metrics: Arc<Metrics>, oncall: SharedOncall) -> Self {
        Scheduler {
            store,
            metrics,
            oncall,
            last_sent: Arc::default(),
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

    /// Send what is due in the outbox, each notification concurrently, and
    /// record the outcomes. Entries of a grouping route go out together
    /// (`grouping.rs`); held ones stay pending in the outbox.
    pub async fn deliver_once(&self) {
        let now = now_millis();
        let due = match self.store.due_notifications(now, 1000) {
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
        let due: Vec<Due> = due
            .into_iter()
            .map(|entry| {
                let incident = self.store.incident(entry.incident_id).ok().flatten();
                let groups = oc
                    .notifiers
                    .get(&entry.notifier)
                    .is_some_and(|b| b.notifier.groups());
                let grouping = incident
                    .as_ref()
                    .filter(|_| groups)
                    .and_then(|i| oc.route_of(i))
                    .and_then(|r| r.grouping());
                Due {
                    entry,
                    incident,
                    grouping,
                }
            })
            .collect();
        let batches = {
            let mut last = self.last_sent.lock().unwrap_or_else(|p| p.into_inner());
            last.retain(|_, at| now - *at < 24 * 3600 * 1000);
            grouping::batches(due, &last, now)
        };
        let mut set = tokio::task::JoinSet::new();
        for batch in batches {
            let built = oc.notifiers.get(&batch.members[0].entry.notifier).cloned();
            let links = oc.links.clone();
            set.spawn(async move {
                let lead = &batch.members[0];
                let result = match (&lead.incident, &built) {
                    (None, _) => Err(format!("incident {} not found", lead.entry.incident_id)),
                    (_, None) => Err(format!(
                        "notifier {:?} is no longer configured",
                        lead.entry.notifier
                    )),
                    (Some(i), Some(b)) => {
                        let n = Notification {
                            key: lead.entry.key.clone(),
                            event: Event::parse(&lead.entry.event).unwrap_or(Event::Opened),
                            level: lead.entry.level,
                            incident: i.clone(),
                            group: batch.members[1..]
                                .iter()
                                .filter_map(|d| d.incident.clone())
                                .collect(),
                            group_labels: batch.labels.clone(),
                            notifier: lead.entry.notifier.clone(),
                            links,
                            now_secs: now_millis() / 1000,
                        };
                        match tokio::time::timeout(b.timeout, b.notifier.send(&n)).await {
                            Ok(r) => r,
                            Err(_) => Err(format!("timed out after {:?}", b.timeout)),
                        }
                    }
                };
                let permanent = lead.incident.is_none() || built.is_none();
                (batch, built, result, permanent)
            });
        }
        while let Some(r) = set.join_next().await {
            let Ok((batch, built, result, permanent)) = r else {
                continue;
            };
            // Only a delivered message starts the group's interval: a failed
            // one is retried on its back-off.
            if let (Some(key), Ok(_)) = (&batch.key, &result) {
                self.last_sent
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key.clone(), now);
            }
            let others = batch.members.len() - 1;
            let grouped = (others > 0).then(|| {
                format!(
                    "; one message for {} incidents grouped by {}",
                    others + 1,
                    crate::incidents::labels_text(&batch.labels)
                )
            });
            let attempt = Attempt {
                result,
                permanent,
                built: built.as_ref(),
                grouped: grouped.as_deref().unwrap_or(""),
                // One jitter for the batch, so its members retry together.
                jitter: rand::random::<f64>(),
            };
            for d in &batch.members {
                self.record(&d.entry, &attempt);
            }
        }
    }

    fn record(&self, entry: &OutboxEntry, a: &Attempt<'_>) {
        let Attempt {
            permanent,
            built,
            grouped,
            jitter,
            ..
        } = *a;
        let max_attempts = built.map(|b| b.delivery.max_attempts).unwrap_or(1);
        let kind = built.map(|b| b.notifier.kind()).unwrap_or("?");
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
                "grouped": (!grouped.is_empty()).then_some(grouped.trim_start_matches("; ")),
            })
        };
        let (outcome, message, label) = match a.result.clone() {
            Ok(detail) => {
                tracing::info!(incident = entry.incident_id, notifier = %entry.notifier, key = %entry.key, "notification sent");
                (
                    Delivery::Sent(detail),
                    format!("notified {} ({kind}): {what}{grouped}", entry.notifier),
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
                    .map(|b| b.delivery.delay(attempt + 1, jitter))
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
