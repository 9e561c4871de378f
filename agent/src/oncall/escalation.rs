//! The escalation planner: given an incident, its escalation row, its policy
//! and the time, what is due — a level, a reminder, announcing an ack or a
//! resolve, an expired ack. Pure: no clock, no store; the scheduler saves the
//! plan (row, outbox entries, timeline notes) in one transaction.
//!
//! Exactly once per level: every notification has a key unique per
//! (incident, climb, level or reminder, notifier), and the row saying
//! "level N is done" is written in the same transaction as level N's
//! outbox entries. A restart replans from the row and finds nothing to redo.

use crate::incidents::{Incident, IncidentState};
use crate::notifiers::Event;
use crate::series::Millis;
use crate::stores::oncall::{Escalation, NewNotification, Note};

use super::EscalationPolicy;

/// What to save.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The row after this step.
    pub escalation: Escalation,
    /// Notifications to add to the outbox.
    pub notifications: Vec<NewNotification>,
    /// Timeline notes.
    pub notes: Vec<Note>,
    /// Withdraw the acknowledgement made at this time (it expired).
    pub expire_ack: Option<Millis>,
}

impl Plan {
    /// Nothing to save.
    pub fn is_noop(&self, before: &Escalation) -> bool {
        self.escalation == *before
            && self.notifications.is_empty()
            && self.notes.is_empty()
            && self.expire_ack.is_none()
    }

    fn send(&mut self, event: Event, level: Option<u32>, slot: &str, to: &[String]) {
        let e = &self.escalation;
        for n in to {
            self.notifications.push(NewNotification {
                key: format!("incident-{}/{slot}/{n}", e.incident_id),
                notifier: n.clone(),
                event: event.as_str().to_string(),
                level,
            });
        }
    }

    fn note(&mut self, kind: &'static str, message: String) {
        self.notes.push(Note {
            kind,
            actor: "medic".into(),
            message,
            data: serde_json::Value::Null,
        });
    }
}

/// The row of a newly routed incident: its first level is due now.
pub fn start(incident_id: i64, policy: Option<&str>, now: Millis) -> Escalation {
    Escalation {
        incident_id,
        policy: policy.map(str::to_string),
        next_at: policy.map(|_| now),
        ..Escalation::default()
    }
}

/// What is due at `now`. `muted` is why notifications are held (a silence,
/// an inhibition), if they are.
pub fn plan(
    before: &Escalation,
    i: &Incident,
    policy: Option<&EscalationPolicy>,
    muted: Option<&str>,
    now: Millis,
) -> Plan {
    let mut p = Plan {
        escalation: before.clone(),
        notifications: Vec::new(),
        notes: Vec::new(),
        expire_ack: None,
    };
    let notified = before.notified.clone();
    if i.state == IncidentState::Resolved {
        p.escalation.done = true;
        p.escalation.next_at = None;
        p.send(Event::Resolved, None, "resolved", &notified);
        return p;
    }
    if let Some(acked_at) = i.acked_at {
        let who = i.acked_by.clone().unwrap_or_default();
        if before.acked_seen != Some(acked_at) {
            p.escalation.acked_seen = Some(acked_at);
            p.send(
                Event::Acknowledged,
                None,
                &format!("ack-{acked_at}"),
                &notified,
            );
            if policy.is_some() {
                p.note(
                    "escalation",
                    format!("escalation stopped: acknowledged by {who}"),
                );
            }
        }
        if let Some(ttl) = policy.and_then(|x| x.ack_ttl)
            && now >= acked_at.saturating_add(ttl.millis())
        {
            p.expire_ack = Some(acked_at);
            let e = &mut p.escalation;
            e.occurrence += 1;
            e.next_level = 0;
            e.reminders = 0;
            e.next_at = Some(now);
            p.note(
                "ack",
                format!("acknowledgement by {who} expired after {ttl}; notifying again"),
            );
        }
        return p;
    }
    let Some(policy) = policy else {
        return p;
    };
    if let Some(m) = muted {
        if before.muted.as_deref() != Some(m) {
            p.escalation.muted = Some(m.to_string());
            p.note("silence", format!("notifications held: {m}"));
        }
        return p;
    }
    if let Some(m) = p.escalation.muted.take() {
        p.note("silence", format!("notifications resume (held: {m})"));
    }
    let Some(due) = before.next_at else {
        return p;
    };
    if now < due {
        return p;
    }
    let e = &before;
    let climb = e.occurrence;
    let levels = &policy.levels;
    let n = e.next_level as usize;
    if let Some(level) = levels.get(n) {
        let to: Vec<String> = level.notify.iter().map(|s| s.value.clone()).collect();
        let event = match (n, climb) {
            (0, 0) => Event::Opened,
            (0, _) => Event::Reminder,
            _ => Event::Escalated,
        };
        let number = n as u32 + 1;
        p.send(
            event,
            Some(number),
            &format!("climb-{climb}/level-{number}"),
            &to,
        );
        p.note(
            "escalation",
            format!(
                "escalation policy {}, level {number}: notifying {}",
                policy.name.value,
                to.join(", ")
            ),
        );
        let row = &mut p.escalation;
        for t in to {
            if !row.notified.contains(&t) {
                row.notified.push(t);
            }
        }
        row.next_level += 1;
        row.next_at = if n + 1 < levels.len() {
            Some(now + level.wait.millis())
        } else {
            policy.repeat.map(|r| now + r.millis())
        };
    } else if let (Some(r), Some(last)) = (policy.repeat, levels.last()) {
        let to: Vec<String> = last.notify.iter().map(|s| s.value.clone()).collect();
        let k = e.reminders + 1;
        p.send(
            Event::Reminder,
            None,
            &format!("climb-{climb}/reminder-{k}"),
            &to,
        );
        p.note(
            "escalation",
            format!(
                "reminder {k}: still unacknowledged; notifying {}",
                to.join(", ")
            ),
        );
        p.escalation.reminders = k;
        p.escalation.next_at = Some(now + r.millis());
    } else {
        p.escalation.next_at = None;
    }
    p
}

#[cfg(test)]
mod tests;
