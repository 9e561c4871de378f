//! Grouping: incidents that share the route's `group_by` labels go out as
//! one notification per notifier and event, as Alertmanager groups alerts.
//!
//! Pure: the sender hands in the due outbox entries, what it knows of each,
//! when each group was last sent and the time; this answers which entries to
//! send together now and which to hold.
//!
//! - A new group waits `group_wait` after its first entry was written, so
//!   incidents with one cause that open together arrive in one message.
//! - A group sent recently waits until `group_interval` after that send
//!   before the next message (new members, or the next event).
//! - Entries stay in the durable outbox while held, so a restart loses none;
//!   only the last-sent times are in memory, so after a restart a group's
//!   next message may come up to `group_interval` early, never late.

use std::collections::{BTreeMap, HashMap};

use crate::incidents::Incident;
use crate::series::Millis;
use crate::stores::oncall::OutboxEntry;

/// A route's grouping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grouping {
    /// Labels whose values make the group (empty: one group for the route).
    pub by: Vec<String>,
    /// Wait after a new group's first entry.
    pub wait: Millis,
    /// Wait between messages of one group.
    pub interval: Millis,
}

/// A due outbox entry and what the sender knows of it.
#[derive(Debug, Clone)]
pub struct Due {
    /// The entry.
    pub entry: OutboxEntry,
    /// Its incident (`None`: gone; sent alone, which fails for good).
    pub incident: Option<Incident>,
    /// The grouping of the incident's route, if it groups and the notifier
    /// accepts groups.
    pub grouping: Option<Grouping>,
}

/// Entries to send as one notification.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The group's identity (notifier, event, level, label values); `None`
    /// for an entry sent alone.
    pub key: Option<String>,
    /// The labels the group shares.
    pub labels: BTreeMap<String, String>,
    /// Entries, oldest first; the first one's incident leads the message.
    pub members: Vec<Due>,
}

fn group_labels(i: &Incident, by: &[String]) -> BTreeMap<String, String> {
    // What silences and inhibition match on (labels plus `alertname`), so a
    // group means the same labels everywhere in on-call.
    let labels = super::mute::match_labels(i);
    by.iter()
        .map(|l| {
            let v = match l.as_str() {
                "detector" => i.detector.clone(),
                "severity" if !labels.contains_key(l) => i.severity.clone(),
                _ => labels.get(l).cloned().unwrap_or_default(),
            };
            (l.clone(), v)
        })
        .collect()
}

/// Split `due` into batches to send at `now`; entries of groups not ready
/// yet are left out (they stay pending). `last_sent` holds each group key's
/// last send time.
pub fn batches(due: Vec<Due>, last_sent: &HashMap<String, Millis>, now: Millis) -> Vec<Batch> {
    let mut out = Vec::new();
    let mut groups: BTreeMap<String, Batch> = BTreeMap::new();
    for d in due {
        let (Some(g), Some(i)) = (&d.grouping, &d.incident) else {
            out.push(Batch {
                key: None,
                labels: BTreeMap::new(),
                members: vec![d],
            });
            continue;
        };
        let labels = group_labels(i, &g.by);
        let key = format!(
            "{}/{}/{}/{}",
            d.entry.notifier,
            d.entry.event,
            d.entry.level.map(|l| l.to_string()).unwrap_or_default(),
            crate::incidents::labels_text(&labels)
        );
        groups
            .entry(key.clone())
            .or_insert_with(|| Batch {
                key: Some(key),
                labels,
                members: Vec::new(),
            })
            .members
            .push(d);
    }
    for (key, mut b) in groups {
        b.members.sort_by_key(|d| (d.entry.created_at, d.entry.id));
        let g = b.members[0].grouping.clone().expect("grouped");
        let first = b.members[0].entry.created_at;
        let mut ready = first.saturating_add(g.wait);
        if let Some(last) = last_sent.get(&key) {
            ready = ready.max(last.saturating_add(g.interval));
        }
        if now >= ready {
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
#[path = "grouping_tests.rs"]
mod tests;
