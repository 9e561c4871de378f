//! Incidents: what is failing, since when, and everything that happened about it.
//!
//! An incident is identified by a fingerprint of detector and labels; repeated
//! firing of the same detector for the same labels updates it. Lifecycle:
//! firing → (acknowledged) → recovering → resolved. Every transition is a
//! timeline event with time, cause and actor.

pub mod flapping;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::series::{Labels, Millis};

/// Where an incident is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    /// The detector fires; nobody has it yet.
    Firing,
    /// A human said "I have it".
    Acknowledged,
    /// An action ran; medic is verifying that it worked.
    Recovering,
    /// The detector cleared.
    Resolved,
}

impl IncidentState {
    /// As stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Firing => "firing",
            IncidentState::Acknowledged => "acknowledged",
            IncidentState::Recovering => "recovering",
            IncidentState::Resolved => "resolved",
        }
    }
    /// Parse the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "firing" => IncidentState::Firing,
            "acknowledged" => IncidentState::Acknowledged,
            "recovering" => IncidentState::Recovering,
            "resolved" => IncidentState::Resolved,
            _ => return None,
        })
    }
    /// All states, for metrics.
    pub const ALL: [IncidentState; 4] = [
        IncidentState::Firing,
        IncidentState::Acknowledged,
        IncidentState::Recovering,
        IncidentState::Resolved,
    ];
}

/// One incident.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Incident {
    /// Store id.
    pub id: i64,
    /// Hash of detector and labels.
    pub fingerprint: String,
    /// Detector that opened it.
    pub detector: String,
    /// Labels of what is failing.
    pub labels: Labels,
    /// `critical`, `warning` or `info`.
    pub severity: String,
    /// Current state.
    pub state: IncidentState,
    /// One line for humans.
    pub summary: String,
    /// When it opened.
    pub opened_at: Millis,
    /// Last change or detector update.
    pub updated_at: Millis,
    /// When it resolved.
    pub resolved_at: Option<Millis>,
    /// Who acknowledged it.
    pub acked_by: Option<String>,
    /// When it was acknowledged.
    pub acked_at: Option<Millis>,
    /// Times the detector reported it firing (repeats update, not duplicate).
    pub occurrences: i64,
}

impl Incident {
    /// Still needs attention.
    pub fn is_open(&self) -> bool {
        self.state != IncidentState::Resolved
    }
}

#[cfg(test)]
impl Incident {
    /// A firing critical incident opened at 0, for tests.
    pub fn example(id: i64, detector: &str, labels: &[(&str, &str)]) -> Incident {
        Incident {
            id,
            fingerprint: format!("fp{id}"),
            detector: detector.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            severity: "critical".into(),
            state: IncidentState::Firing,
            summary: format!("{detector} is down"),
            opened_at: 0,
            updated_at: 0,
            resolved_at: None,
            acked_by: None,
            acked_at: None,
            occurrences: 1,
        }
    }
}

/// One entry in an incident's timeline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TimelineEvent {
    /// Store id (ordering).
    pub id: i64,
    /// Incident it belongs to.
    pub incident_id: i64,
    /// When.
    pub at: Millis,
    /// What kind of event: `opened`, `transition`, `evidence`, `action`, `verify`,
    /// `ack`, `runbook`, `escalation`, `note`.
    pub kind: String,
    /// Who: `detector:NAME`, `runbook:NAME`, `user:NAME`, `medic`.
    pub actor: String,
    /// One sentence.
    pub message: String,
    /// Structured details (evidence, action parameters and results).
    pub data: serde_json::Value,
}

/// Stable identity of "this detector, these labels".
pub fn fingerprint(detector: &str, labels: &Labels) -> String {
    let mut h = Sha256::new();
    h.update(detector.as_bytes());
    for (k, v) in labels {
        // Separators that cannot appear unescaped keep ("a","bc") and ("ab","c") apart.
        h.update([0u8]);
        h.update(k.as_bytes());
        h.update([1u8]);
        h.update(v.as_bytes());
    }
    let d = h.finalize();
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Render labels as `{a="b", c="d"}`.
pub fn labels_text(labels: &Labels) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_stable_and_separates_labels() {
        let mut a = Labels::new();
        a.insert("a".into(), "bc".into());
        let mut b = Labels::new();
        b.insert("ab".into(), "c".into());
        assert_ne!(fingerprint("d", &a), fingerprint("d", &b));
        assert_eq!(fingerprint("d", &a), fingerprint("d", &a.clone()));
        assert_ne!(fingerprint("d", &a), fingerprint("e", &a));
        assert_eq!(fingerprint("d", &a).len(), 16);
    }
}
