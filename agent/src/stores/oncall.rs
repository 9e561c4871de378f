//! The on-call part of the store: escalation timers, the notification outbox
//! and silences.
//!
//! Why an outbox: a notification is written (durably, in the same transaction
//! that advances its escalation) before anyone tries to send it, so a crash
//! can neither lose it nor send a level twice; the sender then works through
//! the outbox with retries, and every outcome lands in the incident timeline.

use serde::{Deserialize, Serialize};

use super::StoreResult;
use crate::incidents::{Incident, IncidentState};
use crate::series::Millis;

/// Where an incident is on its escalation policy. One row per incident,
/// written only by the on-call scheduler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Escalation {
    /// The incident.
    pub incident_id: i64,
    /// Policy name; `None`: no route matched, nobody is notified.
    pub policy: Option<String>,
    /// Climbs so far: 0, then +1 each time an expired acknowledgement restarts it.
    pub occurrence: u32,
    /// The level (0-based) that fires next.
    pub next_level: u32,
    /// When the next level or reminder is due; `None`: nothing more to do.
    pub next_at: Option<Millis>,
    /// Reminders sent in this climb.
    pub reminders: u32,
    /// Notifiers reached so far, in order (they also hear of ack and resolve).
    pub notified: Vec<String>,
    /// The acknowledgement time already announced.
    pub acked_seen: Option<Millis>,
    /// Why notifications are held (silence, inhibition), as last recorded.
    pub muted: Option<String>,
    /// The incident resolved and that was announced: the row is finished.
    pub done: bool,
}

/// A notification to put in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewNotification {
    /// Unique per (incident, occurrence, level or event, notifier): a key
    /// already in the outbox is not added again.
    pub key: String,
    /// Notifier name.
    pub notifier: String,
    /// `opened`, `escalated`, `reminder`, `acknowledged`, `resolved`.
    pub event: String,
    /// 1-based escalation level, for level notifications.
    pub level: Option<u32>,
}

/// Delivery state of an outbox entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not delivered yet (maybe after failed attempts).
    Pending,
    /// The receiver accepted it.
    Sent,
    /// Retries exhausted; recorded in the timeline and metrics.
    Failed,
}

impl DeliveryState {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Sent => "sent",
            DeliveryState::Failed => "failed",
        }
    }
    /// Parse the stored form.
    pub fn parse(s: &str) -> Self {
        match s {
            "sent" => DeliveryState::Sent,
            "failed" => DeliveryState::Failed,
            _ => DeliveryState::Pending,
        }
    }
}

/// One notification in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// Store id.
    pub id: i64,
    /// Unique key (also sent as the receivers' idempotency key).
    pub key: String,
    /// Incident.
    pub incident_id: i64,
    /// Notifier name.
    pub notifier: String,
    /// Event name.
    pub event: String,
    /// 1-based level.
    pub level: Option<u32>,
    /// State.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due.
    pub next_attempt_at: Millis,
    /// Written.
    pub created_at: Millis,
    /// Sent or given up.
    pub finished_at: Option<Millis>,
    /// Last error or the receiver's answer.
    pub detail: Option<String>,
}

/// The outcome of one delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// Delivered.
    Sent(String),
    /// Failed; try again at this time.
    Retry {
        /// Next attempt.
        at: Millis,
        /// What went wrong.
        error: String,
    },
    /// Failed for the last time.
    GaveUp(String),
}

/// A timeline entry to write with a change.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    /// Timeline kind (`notification`, `escalation`, `silence`, `ack`).
    pub kind: &'static str,
    /// Who.
    pub actor: String,
    /// One sentence.
    pub message: String,
    /// Details.
    pub data: serde_json::Value,
}

/// What the scheduler saw of an incident when it planned: saving is refused
/// if the incident changed meanwhile (e.g. an ack arrived), and planning runs
/// again on the new state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// State.
    pub state: IncidentState,
    /// Acknowledgement time.
    pub acked_at: Option<Millis>,
}

impl Seen {
    /// Of an incident.
    pub fn of(i: &Incident) -> Self {
        Seen {
            state: i.state,
            acked_at: i.acked_at,
        }
    }
}

/// A silence: notifications for matching incidents are held while it lasts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// Store id.
    pub id: i64,
    /// Label matchers, e.g. `{service="web", env=~"prod.*"}`.
    pub matchers: String,
    /// Start.
    pub starts_at: Millis,
    /// End.
    pub ends_at: Millis,
    /// Who created it.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// When it was created.
    pub created_at: Millis,
}

impl Silence {
    /// In force at `now`.
    pub fn active(&self, now: Millis) -> bool {
        self.starts_at <= now && now < self.ends_at
    }
}

/// Durable on-call state.
pub trait OncallStore {
    /// Open incidents that have no escalation row yet.
    fn unrouted_incidents(&self) -> StoreResult<Vec<Incident>>;
    /// Escalations not yet done, with their incidents.
    fn active_escalations(&self) -> StoreResult<Vec<(Escalation, Incident)>>;
    /// In one transaction: write the escalation row, add the notifications to
    /// the outbox (keys already there are skipped), append the notes to the
    /// timeline and, with `expire_ack`, withdraw the acknowledgement made at
    /// that time. Refused (returns `false`, nothing written) when the
    /// incident's state or acknowledgement is no longer `seen`.
    fn save_escalation(
        &self,
        e: &Escalation,
        seen: Seen,
        notifications: &[NewNotification],
        notes: &[Note],
        expire_ack: Option<Millis>,
        at: Millis,
    ) -> StoreResult<bool>;
    /// Pending notifications due at `now`, oldest first.
    fn due_notifications(&self, now: Millis, limit: usize) -> StoreResult<Vec<OutboxEntry>>;
    /// Record a delivery attempt and its timeline note.
    fn finish_notification(
        &self,
        id: i64,
        outcome: &Delivery,
        at: Millis,
        note: &Note,
    ) -> StoreResult<()>;
    /// An incident's notifications, in order.
    fn notifications_for(&self, incident_id: i64) -> StoreResult<Vec<OutboxEntry>>;
    /// Add a silence.
    fn add_silence(
        &self,
        matchers: &str,
        starts_at: Millis,
        ends_at: Millis,
        created_by: &str,
        comment: &str,
        at: Millis,
    ) -> StoreResult<Silence>;
    /// Silences, newest first; expired ones only with `include_expired`.
    fn silences(&self, include_expired: bool, now: Millis) -> StoreResult<Vec<Silence>>;
    /// End a silence now.
    fn expire_silence(&self, id: i64, at: Millis) -> StoreResult<Silence>;
}
