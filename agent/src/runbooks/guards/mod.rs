//! Guard rails: the checks a step passes right before it may act, so that
//! automatic recovery never makes an outage worse.
//!
//! Each guard is configured per runbook (`guards:`) and decides from the
//! action journal — what was done, to which target, when, and whether it
//! verified — and the current time. Nothing here reads a clock or a store:
//! the runner reads the journal and passes it in, so the decisions are exact
//! and repeatable in tests, and counts survive a restart of medic because the
//! journal does.
//!
//! | guard | holds a step back when |
//! |---|---|
//! | `rate_limit` | `max` actions of this runbook (or on this target) happened in the last `window` |
//! | `restart_loop` | `max_restarts` actions on the target within `window`, counted since health last held for `reset_after`; and during `warmup` after each one (waits instead of blocking) |
//! | `circuit_breaker` | `failures` consecutive failures on the target (executor + target), for `cooldown`; then one try (half-open) |
//! | `concurrency` | `max_targets` (or `max_percent` of `group_size`) other targets of the `group` are being acted on, across runbooks |
//!
//! Escalation steps are never held back: a guard that stops medic acting
//! is exactly when people must hear about it.

mod pools;

pub use pools::Pools;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::duration::Duration;
use crate::series::Millis;
use crate::stores::{Action, ActionState};

/// The guard rails of one runbook. Absent guards do not apply.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Guards {
    /// At most `max` actions per `window`.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// Stop restarting a target that keeps failing again.
    #[serde(default)]
    pub restart_loop: Option<RestartLoop>,
    /// Stop trying an executor on a target that keeps failing, for a while.
    #[serde(default)]
    pub circuit_breaker: Option<CircuitBreaker>,
    /// At most so many targets of a group acted on at once (blast radius).
    #[serde(default)]
    pub concurrency: Option<Concurrency>,
    /// Per-target settings, by target as the journal names it
    /// (`restart:db`, `haproxy:be/primary`): each guard given here replaces
    /// the runbook's for that target.
    #[serde(default)]
    pub targets: std::collections::BTreeMap<String, Guards>,
}

/// What a rate limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    /// All actions of the runbook, whatever their target.
    #[default]
    Runbook,
    /// Actions on the step's target (from any runbook).
    Target,
}

/// At most `max` actions in any `window`. Only the runbook's own steps
/// count: escalations, compensations and restorations never use up the budget.
/// Every attempt counts, but the retries of a step the limit let act are
/// part of that action: they are not held back (the retry policy says how
/// many there are).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Actions allowed per window.
    pub max: u32,
    /// The sliding window.
    pub window: Duration,
    /// Count per runbook (default) or per target.
    #[serde(default)]
    pub per: Per,
}

/// N restarts of one target within a window → stop and escalate.
///
/// Counting: every action of the listed kinds on the target counts (a
/// failed one too: it may have restarted the process). The count starts over
/// when an action verified and the target then stayed healthy — no further
/// action on it — for `reset_after`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartLoop {
    /// Restarts allowed within `window`; the next one is blocked.
    pub max_restarts: u32,
    /// The sliding window.
    pub window: Duration,
    /// Verified health held this long resets the count.
    #[serde(default = "default_reset_after")]
    pub reset_after: Duration,
    /// After each restart, wait this long before acting on the target again
    /// (a service that is still starting is not restarted again).
    #[serde(default)]
    pub warmup: Duration,
    /// Executor kinds that count as restarts.
    #[serde(default = "default_restart_kinds")]
    pub kinds: Vec<String>,
}

fn default_reset_after() -> Duration {
    Duration::from_secs(300)
}
fn default_restart_kinds() -> Vec<String> {
    vec!["restart".into()]
}

/// `failures` consecutive failures of actions on one target → open (no
/// tries) for `cooldown`, then half-open: one try; success closes it, failure
/// opens it again. A failure is a failed action or one that did not verify.
/// Only runbooks' own steps count: a compensation (`on_failure`), an
/// escalation or a restoration that succeeds on the same target says nothing
/// about whether the action works, so it neither opens nor closes the breaker.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreaker {
    /// Consecutive failures that open the breaker.
    pub failures: u32,
    /// How long it stays open.
    pub cooldown: Duration,
}

/// At most this many targets of `group` acted on at once, across all
/// runbooks naming the group. A target is "acted on" from a run's first
/// action on it until that run ends (verification included).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Concurrency {
    /// Group name, shared by runbooks that act on the same fleet.
    #[serde(default = "default_group")]
    pub group: String,
    /// At most this many targets at once.
    #[serde(default)]
    pub max_targets: Option<u32>,
    /// At most this percentage of `group_size` (rounded down, at least 1).
    #[serde(default)]
    pub max_percent: Option<f64>,
    /// Targets in the group, for `max_percent`.
    #[serde(default)]
    pub group_size: Option<u32>,
}

fn default_group() -> String {
    "default".into()
}

impl Concurrency {
    /// Targets allowed at once.
    pub fn limit(&self) -> usize {
        let by_count = self.max_targets.map(|n| n as usize);
        let by_percent = match (self.max_percent, self.group_size) {
            (Some(p), Some(n)) => Some(((p / 100.0 * n as f64).floor() as usize).max(1)),
            _ => None,
        };
        match (by_count, by_percent) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => usize::MAX,
        }
    }
}

/// A guard's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Act.
    Go,
    /// Do not act before `until`; then ask again.
    Wait {
        /// Guard name.
        guard: &'static str,
        /// Ask again at this time.
        until: Millis,
        /// Why, for the timeline.
        reason: String,
    },
    /// Do not act: escalate.
    Block {
        /// Guard name (`rate_limit`, `restart_loop`, `circuit_breaker`, `concurrency`).
        guard: &'static str,
        /// Why, for the timeline and the journal.
        reason: String,
    },
}

/// What the journal says, as the guards need it.
#[derive(Debug, Clone, Copy)]
pub struct History<'a> {
    /// Recent actions on the step's target, oldest first.
    pub on_target: &'a [Action],
    /// Recent actions of the runbook, oldest first.
    pub of_runbook: &'a [Action],
    /// During a dry run, dry-run records count as actions, so a dry run shows
    /// what the guards would have done.
    pub dry_run: bool,
    /// The run and step path asking: the rate limit lets a retry of a step it
    /// already let act in this run through.
    pub asking: Option<(i64, &'a str)>,
}

/// Whether guard rails apply to the step at `path`: the runbook's own
/// `steps`, not their `on_failure` compensation, not `escalate` or `restore`.
pub fn guarded(path: &str) -> bool {
    path.starts_with("steps[") && !path.contains(".on_failure")
}

impl History<'_> {
    fn counts(&self, a: &Action) -> bool {
        a.acted() || (self.dry_run && a.state == ActionState::DryRun)
    }
}

impl Guards {
    /// The guards that apply to `target`: its own settings where given, the
    /// runbook's otherwise.
    pub fn for_target(&self, target: &str) -> Guards {
        let Some(t) = self.targets.get(target) else {
            return Guards {
                targets: Default::default(),
                ..self.clone()
            };
        };
        Guards {
            rate_limit: t.rate_limit.clone().or_else(|| self.rate_limit.clone()),
            restart_loop: t.restart_loop.clone().or_else(|| self.restart_loop.clone()),
            circuit_breaker: t
                .circuit_breaker
                .clone()
                .or_else(|| self.circuit_breaker.clone()),
            concurrency: t.concurrency.clone().or_else(|| self.concurrency.clone()),
            targets: Default::default(),
        }
    }

    /// How far back the journal must be read for these guards.
    pub fn lookback(&self) -> Millis {
        let rl = self.rate_limit.as_ref().map_or(0, |r| r.window.millis());
        let loop_ = self.restart_loop.as_ref().map_or(0, |r| {
            r.window
                .millis()
                .max(r.warmup.millis())
                .saturating_add(r.reset_after.millis())
        });
        // The breaker looks at the last few actions, however old.
        let cb = if self.circuit_breaker.is_some() {
            Millis::MAX
        } else {
            0
        };
        rl.max(loop_).max(cb)
    }

    /// Every journal-based guard, for a step of executor `kind` at `now`.
    /// The first that objects wins; `Block` before `Wait`.
    pub fn check(&self, kind: &str, now: Millis, h: History<'_>) -> Verdict {
        let mut wait = None;
        for v in [
            self.rate_limit.as_ref().map(|g| g.check(now, h)),
            self.restart_loop.as_ref().map(|g| g.check(kind, now, h)),
            self.circuit_breaker.as_ref().map(|g| g.check(now, h)),
        ]
        .into_iter()
        .flatten()
        {
            match v {
                Verdict::Block { .. } => return v,
                Verdict::Wait { .. } if wait.is_none() => wait = Some(v),
                _ => {}
            }
        }
        wait.unwrap_or(Verdict::Go)
    }
}

impl RateLimit {
    /// Check at `now`.
    pub fn check(&self, now: Millis, h: History<'_>) -> Verdict {
        let (list, what) = match self.per {
            Per::Runbook => (h.of_runbook, "by this runbook"),
            Per::Target => (h.on_target, "on this target"),
        };
        let since = now.saturating_sub(self.window.millis());
        let retry = h.asking.is_some_and(|(run, step)| {
            list.iter()
                .any(|a| a.run_id == run && a.step == step && h.counts(a))
        });
        if retry {
            return Verdict::Go;
        }
        let n = list
            .iter()
            .filter(|a| h.counts(a) && guarded(&a.step) && a.intended_at > since)
            .count();
        if n >= self.max as usize {
            Verdict::Block {
                guard: "rate_limit",
                reason: format!(
                    "{n} actions {what} in the last {} (limit {})",
                    self.window, self.max
                ),
            }
        } else {
            Verdict::Go
        }
    }
}

impl RestartLoop {
    /// The restarts that count at `now`, oldest first: those since health
    /// last held for `reset_after`, within the window.
    pub fn counted<'a>(&self, now: Millis, h: History<'a>) -> Vec<&'a Action> {
        let all: Vec<&Action> = h
            .on_target
            .iter()
            .filter(|a| self.kinds.contains(&a.executor))
            .collect();
        // Health held from a verification until the next journal entry on the
        // target (anything: a new problem brings one), or until now.
        let mut start = 0;
        for (i, a) in all.iter().enumerate() {
            if let (Some(true), Some(v)) = (a.verified, a.verified_at) {
                let next = all.get(i + 1).map_or(now, |n| n.intended_at);
                if next.saturating_sub(v) >= self.reset_after.millis() {
                    start = i + 1;
                }
            }
        }
        let since = now.saturating_sub(self.window.millis());
        all[start..]
            .iter()
            .copied()
            .filter(|a| h.counts(a) && a.intended_at > since)
            .collect()
    }

    /// Check a step of executor `kind` at `now`.
    pub fn check(&self, kind: &str, now: Millis, h: History<'_>) -> Verdict {
        if !self.kinds.iter().any(|k| k == kind) {
            return Verdict::Go;
        }
        let counted = self.counted(now, h);
        if counted.len() >= self.max_restarts as usize {
            return Verdict::Block {
                guard: "restart_loop",
                reason: format!(
                    "{} restarts of this target within {} without health holding for {} (limit {}); not restarting again",
                    counted.len(),
                    self.window,
                    self.reset_after,
                    self.max_restarts
                ),
            };
        }
        if let Some(last) = counted.last() {
            let start = last.finished_at.unwrap_or(last.intended_at);
            let until = start.saturating_add(self.warmup.millis());
            if now < until {
                return Verdict::Wait {
                    guard: "restart_loop",
                    until,
                    reason: format!(
                        "warm-up: the target was restarted {:.1}s ago; waiting {} before acting on it again",
                        (now - start) as f64 / 1000.0,
                        self.warmup
                    ),
                };
            }
        }
        Verdict::Go
    }
}

impl CircuitBreaker {
    /// Check at `now`.
    pub fn check(&self, now: Millis, h: History<'_>) -> Verdict {
        let newest_first: Vec<&Action> = h
            .on_target
            .iter()
            .rev()
            .filter(|a| h.counts(a) && guarded(&a.step))
            .collect();
        let trial_running = newest_first
            .first()
            .is_some_and(|a| a.state == ActionState::Intended);
        let mut failures = 0u32;
        let mut last_failure = None;
        for a in newest_first {
            match (a.state, a.verified) {
                (ActionState::Failed, _) | (_, Some(false)) => {
                    failures += 1;
                    last_failure
                        .get_or_insert(a.verified_at.or(a.finished_at).unwrap_or(a.intended_at));
                }
                // Unknown outcomes neither open nor close the breaker.
                (ActionState::Interrupted | ActionState::Intended, _) => {}
                _ => break,
            }
        }
        let Some(at) = last_failure.filter(|_| failures >= self.failures) else {
            return Verdict::Go;
        };
        let until = at.saturating_add(self.cooldown.millis());
        if now < until {
            Verdict::Block {
                guard: "circuit_breaker",
                reason: format!(
                    "open: {failures} consecutive failures on this target; one try allowed again in {:.1}s",
                    (until - now) as f64 / 1000.0
                ),
            }
        } else if trial_running {
            Verdict::Block {
                guard: "circuit_breaker",
                reason: "half-open: the one trial action is still running".into(),
            }
        } else {
            Verdict::Go
        }
    }
}

#[cfg(test)]
mod tests;
