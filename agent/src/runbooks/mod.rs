//! Runbooks: what to do about an incident, written by on-call engineers as
//! YAML files in the runbooks directory.
//!
//! A runbook matches incidents (detector names, labels, severity) and lists
//! steps. Each step names an executor (`kind:`), has a timeout, a retry policy
//! (attempts, exponential back-off, jitter) and an optional `verify` that must
//! hold within a time. A step that does not verify runs its `on_failure` steps
//! and the runbook escalates.

pub mod checks;
pub mod guards;
pub mod runner;
pub mod testing;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::duration::Duration;
use crate::config::spanned::Spanned;
use crate::detectors::Severity;
use crate::executors::ActionConfig;
use crate::incidents::Incident;
use crate::series::selector::Selector;

/// A runbook file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Runbook {
    /// Unique name.
    pub name: Spanned<String>,
    /// What it is for, for the humans reading it at 3 a.m.
    #[serde(default)]
    pub description: Option<String>,
    /// Which incidents it handles.
    #[serde(rename = "match")]
    pub matches: RunbookMatch,
    /// Steps, in order.
    pub steps: Vec<Step>,
    /// Run when recovery did not verify or a guard rail held a step back
    /// (usually `kind: notify`). Guard rails never hold these back.
    #[serde(default)]
    pub escalate: Vec<Step>,
    /// Run once the incident has resolved after `steps` acted: undo a
    /// degradation (switch the feature back on). The run waits for the
    /// resolution (and resumes waiting after a restart of medic). Not run
    /// when the steps failed or were held back: then people decide.
    #[serde(default)]
    pub restore: Vec<Step>,
    /// Guard rails: limits that hold steps back so recovery never makes
    /// things worse.
    #[serde(default)]
    pub guards: guards::Guards,
    /// Record what would run without running it.
    #[serde(default)]
    pub dry_run: bool,
}

/// Which incidents a runbook handles. All given conditions must hold.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RunbookMatch {
    /// Detector names (any of). Empty: any detector.
    #[serde(default)]
    pub detectors: Vec<Spanned<String>>,
    /// Label matchers in Prometheus syntax, e.g. `{service="web", env!="dev"}`.
    #[serde(default)]
    pub labels: Option<Spanned<String>>,
    /// Severities (any of). Empty: any.
    #[serde(default)]
    pub severity: Vec<Severity>,
}

impl RunbookMatch {
    /// Does this incident match?
    pub fn matches(&self, i: &Incident) -> bool {
        if !self.detectors.is_empty() && !self.detectors.iter().any(|d| d.value == i.detector) {
            return false;
        }
        if !self.severity.is_empty() && !self.severity.iter().any(|s| s.as_str() == i.severity) {
            return false;
        }
        if let Some(l) = &self.labels {
            match Selector::matchers_only(l) {
                Ok(ms) => {
                    if !ms.iter().all(|m| m.matches(&i.labels)) {
                        return false;
                    }
                }
                Err(_) => return false,
            }
        }
        true
    }
}

/// One step.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct Step {
    /// Name, shown in the timeline.
    pub name: Spanned<String>,
    /// Give up on one attempt after this long.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// How often to try.
    #[serde(default)]
    pub retry: Retry,
    /// What must hold afterwards.
    #[serde(default)]
    pub verify: Option<Verify>,
    /// Compensation / rollback steps, run when this step fails for good.
    #[serde(default)]
    pub on_failure: Vec<Step>,
    /// Record what would run without running it.
    #[serde(default)]
    pub dry_run: bool,
    /// The action.
    #[serde(flatten)]
    pub action: ActionConfig,
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

/// Retry policy: attempt n waits `backoff * 2^(n-1)` (capped at `max_backoff`),
/// randomised by ±`jitter` (a fraction), before it starts.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Total attempts, including the first.
    #[serde(default = "one")]
    pub max_attempts: u32,
    /// Wait before the second attempt.
    #[serde(default = "default_backoff")]
    pub backoff: Duration,
    /// Upper bound of the wait.
    #[serde(default = "default_max_backoff")]
    pub max_backoff: Duration,
    /// Random spread, 0..1 (0.2 = ±20 %).
    #[serde(default = "default_jitter")]
    pub jitter: f64,
}

fn one() -> u32 {
    1
}
fn default_backoff() -> Duration {
    Duration::from_secs(1)
}
fn default_max_backoff() -> Duration {
    Duration::from_secs(30)
}
fn default_jitter() -> f64 {
    0.2
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            max_attempts: 1,
            backoff: default_backoff(),
            max_backoff: default_max_backoff(),
            jitter: default_jitter(),
        }
    }
}

impl Retry {
    /// Wait before attempt `attempt` (2, 3, …) given a random `u` in [0, 1).
    pub fn delay(&self, attempt: u32, u: f64) -> std::time::Duration {
        if attempt <= 1 {
            return std::time::Duration::ZERO;
        }
        let base =
            self.backoff.std().as_secs_f64() * 2f64.powi(attempt.saturating_sub(2).min(30) as i32);
        let capped = base.min(self.max_backoff.std().as_secs_f64());
        let j = self.jitter.clamp(0.0, 1.0);
        let factor = 1.0 + j * (2.0 * u - 1.0);
        std::time::Duration::from_secs_f64((capped * factor).max(0.0))
    }
}

/// A condition that must hold within `within` after the action.
/// With no check given, `detector_cleared` is implied.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    /// Time allowed.
    #[serde(default = "default_within")]
    pub within: Duration,
    /// Poll interval.
    #[serde(default = "default_poll")]
    pub interval: Duration,
    /// The detector that opened the incident has cleared.
    #[serde(default)]
    pub detector_cleared: bool,
    /// An HTTP GET to this URL passes (`expect_status`, default any 2xx).
    #[serde(default)]
    pub http: Option<String>,
    /// Accepted status codes for `http`.
    #[serde(default)]
    pub expect_status: Vec<u16>,
    /// A TCP connect to this `host:port` succeeds.
    #[serde(default)]
    pub tcp: Option<String>,
}

fn default_within() -> Duration {
    Duration::from_secs(30)
}
fn default_poll() -> Duration {
    Duration::from_millis(200)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        let r = Retry {
            max_attempts: 5,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(3),
            jitter: 0.5,
        };
        assert_eq!(r.delay(1, 0.5), std::time::Duration::ZERO);
        assert_eq!(r.delay(2, 0.5), std::time::Duration::from_secs(1));
        assert_eq!(r.delay(3, 0.5), std::time::Duration::from_secs(2));
        assert_eq!(r.delay(4, 0.5), std::time::Duration::from_secs(3));
        assert_eq!(r.delay(2, 0.0), std::time::Duration::from_millis(500));
        assert_eq!(r.delay(2, 1.0), std::time::Duration::from_millis(1500));
    }
}
