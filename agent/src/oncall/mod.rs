//! On-call: who hears of an incident, when, and how they say "I have it".
//!
//! The stages an incident passes, each in its own file:
//! route (`routes:` → an escalation policy) → mute (silences, inhibition:
//! `mute.rs`; weekly maintenance windows: `maintenance.rs`) → escalate (`escalation.rs`, a pure planner: which level or
//! reminder is due, acks and resolves announced) → outbox (the store) →
//! deliver (`scheduler.rs`: retries with back-off, outcome in the timeline).
//! Acknowledgement links are signed in `links.rs`.

pub mod degraded;
pub mod escalation;
pub mod grouping;
pub mod links;
pub mod maintenance;
pub mod mute;
pub mod scheduler;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::duration::Duration;
use crate::config::spanned::Spanned;
use crate::incidents::Incident;
use crate::notifiers::Notifier;
use crate::runbooks::{Retry, RunbookMatch};
use links::AckSigner;

/// One escalation level: who is notified, and how long they have to
/// acknowledge before the next level is.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Level {
    /// Notifier names.
    pub notify: Vec<Spanned<String>>,
    /// Wait before the next level (ignored on the last level).
    #[serde(default = "default_wait")]
    pub wait: Duration,
}

fn default_wait() -> Duration {
    Duration::from_secs(300)
}

/// Levels of recipients with waits between them.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalationPolicy {
    /// Unique name; routes refer to it.
    pub name: Spanned<String>,
    /// Levels, first notified first.
    pub levels: Vec<Level>,
    /// After the last level: remind its notifiers this often while the
    /// incident is unresolved and unacknowledged.
    #[serde(default)]
    pub repeat: Option<Duration>,
    /// An acknowledgement lasts this long; then medic re-notifies from the
    /// first level. Default: until resolved.
    #[serde(default)]
    pub ack_ttl: Option<Duration>,
}

/// Which incidents go to which escalation policy. Routes are tried in order;
/// the first that matches wins.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Detectors, label matchers and severities (as in runbooks). Empty: all.
    #[serde(rename = "match", default)]
    pub matches: RunbookMatch,
    /// Escalation policy name.
    pub policy: Spanned<String>,
    /// Send incidents sharing these labels' values as one notification per
    /// notifier and event (`alertname` or `detector` is the detector). `[]`:
    /// the whole route is one group. Absent: one notification per incident.
    #[serde(default)]
    pub group_by: Option<Vec<String>>,
    /// With `group_by`: how long a new group waits for more incidents before
    /// its first notification.
    #[serde(default = "default_group_wait")]
    pub group_wait: Duration,
    /// With `group_by`: the least time between two notifications of a group.
    #[serde(default = "default_group_interval")]
    pub group_interval: Duration,
}

fn default_group_wait() -> Duration {
    Duration::from_secs(30)
}

fn default_group_interval() -> Duration {
    Duration::from_secs(300)
}

impl Route {
    /// The grouping, when `group_by` is set.
    pub fn grouping(&self) -> Option<grouping::Grouping> {
        self.group_by.as_ref().map(|by| grouping::Grouping {
            by: by.clone(),
            wait: self.group_wait.millis(),
            interval: self.group_interval.millis(),
        })
    }
}

/// While an open incident matches `source`, incidents matching `target` whose
/// `equal` labels have the same values are not notified.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InhibitRule {
    /// Label matchers of the inhibiting incident, e.g. `{alertname="NodeDown"}`.
    pub source: Spanned<String>,
    /// Label matchers of the inhibited incidents.
    pub target: Spanned<String>,
    /// Labels that must be equal in both.
    #[serde(default)]
    pub equal: Vec<String>,
}

/// Signed acknowledgement links in notifications.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AckLinkConfig {
    /// Environment variable holding the signing secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// File holding the signing secret (relative to medic.yaml). With
    /// neither, a random secret is generated into the state directory.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// How long a link stays valid.
    #[serde(default = "default_link_ttl")]
    pub ttl: Duration,
}

fn default_link_ttl() -> Duration {
    Duration::from_secs(24 * 3600)
}

impl Default for AckLinkConfig {
    fn default() -> Self {
        AckLinkConfig {
            secret_env: None,
            secret_file: None,
            ttl: default_link_ttl(),
        }
    }
}

/// A built notifier with its delivery settings.
#[derive(Clone)]
pub struct BuiltNotifier {
    /// The notifier.
    pub notifier: Arc<dyn Notifier>,
    /// Retries.
    pub delivery: Retry,
    /// Time per attempt.
    pub timeout: std::time::Duration,
}

/// The on-call configuration in force, built from `medic.yaml`.
#[derive(Clone)]
pub struct Oncall {
    /// Notifiers by name.
    pub notifiers: BTreeMap<String, BuiltNotifier>,
    /// Policies by name.
    pub policies: BTreeMap<String, EscalationPolicy>,
    /// Routes in order.
    pub routes: Vec<Route>,
    /// Inhibition rules.
    pub inhibit: Vec<InhibitRule>,
    /// Recurring maintenance windows.
    pub maintenance: Vec<maintenance::MaintenanceWindow>,
    /// Link signing.
    pub links: Arc<AckSigner>,
    /// API tokens (they are reloaded with the rest of this).
    pub auth: Arc<crate::api::auth::Auth>,
}

impl Oncall {
    /// Build from a loaded configuration (reads secrets).
    pub fn build(l: &crate::config::Loaded, http: &reqwest::Client) -> Result<Oncall, String> {
        let c = &l.config;
        let mut notifiers = BTreeMap::new();
        for n in &c.notifiers {
            let built = n
                .build(http, &l.base_dir)
                .map_err(|e| format!("notifier {:?}: {e}", n.name.value))?;
            notifiers.insert(
                n.name.value.clone(),
                BuiltNotifier {
                    notifier: built,
                    delivery: n.delivery.clone(),
                    timeout: n.timeout.std(),
                },
            );
        }
        let secret = links::load_secret(&c.ack_links, &l.base_dir, &l.state_dir())?;
        let auth = Arc::new(crate::api::auth::Auth::build(&c.auth, &l.base_dir)?);
        Ok(Oncall {
            auth,
            notifiers,
            policies: c
                .escalation_policies
                .iter()
                .map(|p| (p.name.value.clone(), p.clone()))
                .collect(),
            routes: c.routes.clone(),
            inhibit: c.inhibit_rules.clone(),
            maintenance: c.maintenance_windows.clone(),
            links: Arc::new(AckSigner::new(
                secret,
                &l.external_url(),
                c.ack_links.ttl.std(),
            )),
        })
    }

    /// The policy of the first route matching the incident.
    pub fn route(&self, i: &Incident) -> Option<&EscalationPolicy> {
        self.route_of(i)
            .and_then(|r| self.policies.get(&r.policy.value))
    }

    /// The first route matching the incident.
    pub fn route_of(&self, i: &Incident) -> Option<&Route> {
        self.routes.iter().find(|r| r.matches.matches(i))
    }
}

/// The on-call configuration shared by the scheduler and the API; replaced
/// whole on reload.
pub type SharedOncall = Arc<std::sync::RwLock<Arc<Oncall>>>;

/// The configuration in force now.
pub fn current(s: &SharedOncall) -> Arc<Oncall> {
    s.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Checks of the on-call sections that need more than one struct.
pub fn validate(c: &crate::config::MedicConfig) -> Vec<(Option<&Spanned<String>>, String)> {
    let mut out = Vec::new();
    let mut names = std::collections::HashSet::new();
    for n in &c.notifiers {
        if !names.insert(n.name.value.as_str()) {
            out.push((
                Some(&n.name),
                format!("duplicate notifier name {:?}", n.name.value),
            ));
        }
        for p in n.check() {
            out.push((Some(&n.name), format!("notifier {:?}: {p}", n.name.value)));
        }
    }
    let mut policies = std::collections::HashSet::new();
    for p in &c.escalation_policies {
        if !policies.insert(p.name.value.as_str()) {
            out.push((
                Some(&p.name),
                format!("duplicate escalation policy {:?}", p.name.value),
            ));
        }
        if p.levels.is_empty() {
            out.push((
                Some(&p.name),
                format!("escalation policy {:?} has no levels", p.name.value),
            ));
        }
        for l in &p.levels {
            if l.notify.is_empty() {
                out.push((
                    Some(&p.name),
                    format!(
                        "escalation policy {:?}: a level notifies nobody",
                        p.name.value
                    ),
                ));
            }
            for n in &l.notify {
                if !names.contains(n.value.as_str()) {
                    out.push((
                        Some(n),
                        format!(
                            "escalation policy {:?}: no notifier named {:?}",
                            p.name.value, n.value
                        ),
                    ));
                }
            }
        }
        if p.repeat.is_some_and(|r| r.millis() < 1000) {
            out.push((
                Some(&p.name),
                format!(
                    "escalation policy {:?}: repeat must be at least 1s",
                    p.name.value
                ),
            ));
        }
    }
    for r in &c.routes {
        if !policies.contains(r.policy.value.as_str()) {
            out.push((
                Some(&r.policy),
                format!("route: no escalation policy named {:?}", r.policy.value),
            ));
        }
        if let Some(l) = &r.matches.labels
            && let Err(e) = crate::series::selector::Selector::matchers_only(l)
        {
            out.push((Some(l), format!("route match.labels: {}", e.message)));
        }
        for l in r.group_by.iter().flatten() {
            let ok = l
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                out.push((
                    Some(&r.policy),
                    format!("route group_by: {l:?} is not a label name"),
                ));
            }
        }
    }
    for i in &c.inhibit_rules {
        for m in [&i.source, &i.target] {
            if let Err(e) = crate::series::selector::Selector::matchers_only(m) {
                out.push((Some(m), format!("inhibit_rules: {}", e.message)));
            }
        }
    }
    for w in &c.maintenance_windows {
        for p in w.check() {
            out.push((
                Some(&w.name),
                format!("maintenance window {:?}: {p}", w.name.value),
            ));
        }
    }
    if let Some(f) = &c.flapping
        && (f.changes == 0 || f.window.millis() <= 0 || f.settle.millis() <= 0)
    {
        out.push((
            None,
            "flapping: changes, window and settle must be above 0".to_string(),
        ));
    }
    if let Some(u) = &c.external_url
        && reqwest::Url::parse(u).is_err()
    {
        out.push((
            None,
            format!("external_url {u:?} is not a URL like https://medic.example.com"),
        ));
    }
    out
}
