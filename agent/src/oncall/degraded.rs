//! Degraded mode's sender: notifications straight from this node's spool
//! (`stores::spool`) while the shared store cannot hold the outbox.
//!
//! Each spooled event (an incident this node saw open or resolve while etcd
//! was unreachable or without quorum) goes to the first level of the
//! escalation policy its route picks — the people the normal path would
//! page first — unless a maintenance window or inhibition rule (from
//! `medic.yaml`) or a silence (read from the store when any member still
//! answers) mutes it. Each notifier is tried with its own `delivery`
//! retries. At least once, not exactly once: every node that saw the
//! incident sends its copy, and the leader's escalation sends "opened" again
//! once the incident is replayed into the store.

use std::sync::Arc;
use std::time::Duration;

use crate::notifiers::{Event, Notification};
use crate::series::{Millis, now_millis};
use crate::stores::Store;
use crate::stores::spool::{Spool, SpooledSend};
use crate::telemetry::{Metrics, NotificationLabels};

use super::{SharedOncall, current, mute};

const TICK: Duration = Duration::from_millis(250);

/// Sends what the spool holds.
#[derive(Clone)]
pub struct DegradedSender {
    /// The spool.
    pub spool: Arc<Spool>,
    /// For silences (best effort).
    pub store: Arc<dyn Store>,
    /// Routes, policies, notifiers.
    pub oncall: SharedOncall,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// This node's name, in notification keys.
    pub node: String,
}

impl DegradedSender {
    /// Start the loop.
    pub fn spawn(self) {
        tokio::spawn(async move {
            let mut t = tokio::time::interval(TICK);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                t.tick().await;
                let now = now_millis();
                self.plan_once(now);
                self.deliver_once(now).await;
            }
        });
    }

    /// Choose the recipients of newly spooled events.
    pub fn plan_once(&self, now: Millis) {
        let events = match self.spool.unplanned() {
            Ok(e) if e.is_empty() => return,
            Ok(e) => e,
            Err(err) => {
                tracing::error!(error = %err, "cannot read the spool");
                return;
            }
        };
        let oc = current(&self.oncall);
        let silences = self.store.silences(false, now).unwrap_or_default();
        for e in events {
            let event = Event::parse(&e.event).unwrap_or(Event::Opened);
            let muted = mute::reason(
                &e.incident,
                mute::Mutes {
                    silences: &silences,
                    windows: &oc.maintenance,
                    rules: &oc.inhibit,
                    open: &[],
                },
                now,
            );
            let notifiers: Vec<String> = match (&muted, oc.route(&e.incident)) {
                (None, Some(policy)) => policy
                    .levels
                    .first()
                    .map(|l| l.notify.iter().map(|n| n.value.clone()).collect())
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            let notifiers: Vec<String> = notifiers
                .into_iter()
                .filter(|n| oc.notifiers.get(n).is_some_and(|b| b.notifier.wants(event)))
                .collect();
            tracing::warn!(incident = %e.fingerprint, event = %e.event, ?notifiers, muted = ?muted, "degraded mode: notifying directly from the spool");
            if let Err(err) = self.spool.plan(e.id, &notifiers, now) {
                tracing::error!(error = %err, "cannot write the spool");
            }
        }
    }

    /// Send what is due.
    pub async fn deliver_once(&self, now: Millis) {
        let due = self.spool.due(now).unwrap_or_default();
        if due.is_empty() {
            return;
        }
        let oc = current(&self.oncall);
        let mut set = tokio::task::JoinSet::new();
        for s in due {
            let built = oc.notifiers.get(&s.notifier).cloned();
            let links = oc.links.clone();
            let node = self.node.clone();
            set.spawn(async move {
                let result = match &built {
                    None => Err(format!("notifier {:?} is no longer configured", s.notifier)),
                    Some(b) => {
                        let event = Event::parse(&s.event.event).unwrap_or(Event::Opened);
                        let n = Notification {
                            key: format!("spool/{node}/{}/{}", s.event.id, s.notifier),
                            event,
                            level: (event == Event::Opened).then_some(1),
                            incident: s.event.incident.clone(),
                            group: Vec::new(),
                            group_labels: Default::default(),
                            notifier: s.notifier.clone(),
                            links,
                            now_secs: now_millis() / 1000,
                        };
                        match tokio::time::timeout(b.timeout, b.notifier.send(&n)).await {
                            Ok(r) => r,
                            Err(_) => Err(format!("timed out after {:?}", b.timeout)),
                        }
                    }
                };
                (s, built, result)
            });
        }
        while let Some(r) = set.join_next().await {
            let Ok((s, built, result)) = r else { continue };
            self.record(&s, built.as_ref(), result);
        }
    }

    fn record(
        &self,
        s: &SpooledSend,
        built: Option<&super::BuiltNotifier>,
        result: Result<String, String>,
    ) {
        let attempt = s.attempts + 1;
        let max = built.map(|b| b.delivery.max_attempts).unwrap_or(1);
        let (ok, retry_at, detail, outcome) = match result {
            Ok(d) => (true, None, d, "sent"),
            Err(e) if built.is_some() && attempt < max => {
                let wait = built
                    .map(|b| b.delivery.delay(attempt + 1, rand::random::<f64>()))
                    .unwrap_or(Duration::from_secs(1));
                let at = now_millis() + wait.as_millis() as Millis;
                (false, Some(at), e, "failed")
            }
            Err(e) => (false, None, e, "gave_up"),
        };
        tracing::info!(incident = %s.event.fingerprint, notifier = %s.notifier, event = %s.event.event, outcome, %detail, "degraded-mode notification");
        if let Err(err) = self
            .spool
            .attempted(s.event.id, &s.notifier, ok, retry_at, &detail)
        {
            tracing::error!(error = %err, "cannot record a spooled notification");
        }
        self.metrics
            .spool_notifications
            .get_or_create(&NotificationLabels {
                notifier: s.notifier.clone(),
                outcome: outcome.into(),
            })
            .inc();
    }
}
