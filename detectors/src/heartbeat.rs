//! Heartbeat detector: a probed target that has not succeeded for a timeout.
//!
//! The *reference* time is the last success, or the `start` given to
//! [`Heartbeat::new`] when no probe has succeeded yet (so a target that is
//! never seen fires `timeout_ms` after `start`).
//!
//! * [`Heartbeat::success`] records the success (the reference never moves
//!   backwards) and answers `Resolved` (exactly once) if firing, else `Ok`.
//! * [`Heartbeat::failure`] records a failed probe: when not firing, it
//!   answers `Pending`, the condition starting at the first failure after the
//!   last success; then it applies the timeout check. A failure stamped
//!   before the last success is stale and only applies the timeout check.
//! * [`Heartbeat::tick`] only applies the timeout check.
//! * Timeout check: `t - reference >= timeout_ms` answers `Firing`. Firing
//!   lasts until the next success.
//! * After `Resolved`, the next call is judged afresh from `Ok`.
//!
//! Evidence: `observed` is the number of seconds from the reference to `t`
//! (never negative; for a success, the reference before it), `threshold` is
//! the timeout in seconds. `since` is the first failure after the last
//! success while `Pending`; while `Firing` (and for the `Resolved` answer), the
//! earlier of that failure and the deadline `reference + timeout_ms`.

use crate::{Evaluation, Evidence, Millis, State, fmt};

#[cfg(test)]
mod tests;

/// Configuration of a [`Heartbeat`] detector.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HeartbeatConfig {
    /// How long (ms) without a successful probe fires. Negative counts as 0.
    pub timeout_ms: Millis,
}

/// Detects a target whose probes have not succeeded for a timeout.
///
/// See the [module documentation](self) for the exact semantics.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    timeout_ms: Millis,
    start: Millis,
    last_success: Option<Millis>,
    /// The state answered by the last call.
    answered: State,
    /// The first failure after the last success.
    pending_since: Option<Millis>,
    /// When the current firing condition began.
    firing_since: Option<Millis>,
}

/// Which call is being judged.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Call {
    Failure,
    Tick,
}

impl Heartbeat {
    /// A detector in state [`State::Ok`] whose reference time is `start`
    /// until a probe succeeds.
    pub fn new(cfg: HeartbeatConfig, start: Millis) -> Self {
        Self {
            timeout_ms: cfg.timeout_ms.max(0),
            start,
            last_success: None,
            answered: State::Ok,
            pending_since: None,
            firing_since: None,
        }
    }

    /// The state answered by the last call.
    pub fn state(&self) -> State {
        self.answered
    }

    /// The time of the latest successful probe, if any.
    pub fn last_success(&self) -> Option<Millis> {
        self.last_success
    }

    /// Records a successful probe at `t`.
    pub fn success(&mut self, t: Millis) -> Evaluation {
        let prev = self.answered;
        let gap = self.elapsed(t);
        self.last_success = Some(self.last_success.map_or(t, |s| s.max(t)));
        self.pending_since = None;
        let (state, since, reason) = if prev == State::Firing {
            let reason = format!("probe succeeded after {} without success", secs(gap));
            (State::Resolved, self.firing_since, reason)
        } else {
            (State::Ok, None, "probe succeeded".to_owned())
        };
        self.firing_since = None;
        self.answer(t, state, gap, since, reason)
    }

    /// Records a failed probe at `t`, then applies the timeout check.
    pub fn failure(&mut self, t: Millis) -> Evaluation {
        if self.answered != State::Firing && self.last_success.is_none_or(|s| t >= s) {
            self.pending_since.get_or_insert(t);
        }
        self.check(t, Call::Failure)
    }

    /// Applies the timeout check at `t` without a probe result.
    pub fn tick(&mut self, t: Millis) -> Evaluation {
        self.check(t, Call::Tick)
    }

    fn reference(&self) -> Millis {
        self.last_success.unwrap_or(self.start)
    }

    /// Milliseconds from the reference to `t`, never negative.
    fn elapsed(&self, t: Millis) -> Millis {
        t.saturating_sub(self.reference()).max(0)
    }

    fn check(&mut self, t: Millis, call: Call) -> Evaluation {
        let elapsed = self.elapsed(t);
        let timeout = fmt::dur(self.timeout_ms);
        let silent = match self.last_success {
            Some(_) => format!("no successful probe for {}", secs(elapsed)),
            None => format!("no successful probe since start {} ago", secs(elapsed)),
        };
        let (state, since, reason) = if self.answered == State::Firing || elapsed >= self.timeout_ms
        {
            let deadline = self.reference().saturating_add(self.timeout_ms);
            let since = *self.firing_since.get_or_insert(
                self.pending_since
                    .map_or(deadline, |first| first.min(deadline)),
            );
            (
                State::Firing,
                Some(since),
                format!("{silent} (timeout {timeout})"),
            )
        } else if let Some(first) = self.pending_since {
            let what = match call {
                Call::Failure => "probe failed",
                Call::Tick => "probe failing",
            };
            let reason = format!("{what}; {silent} (timeout {timeout})");
            (State::Pending, Some(first), reason)
        } else {
            let reason = match self.last_success {
                Some(_) => format!(
                    "last successful probe {} ago (timeout {timeout})",
                    secs(elapsed)
                ),
                None => format!(
                    "no probe result yet, {} since start (timeout {timeout})",
                    secs(elapsed)
                ),
            };
            (State::Ok, None, reason)
        };
        self.answer(t, state, elapsed, since, reason)
    }

    fn answer(
        &mut self,
        t: Millis,
        state: State,
        elapsed: Millis,
        since: Option<Millis>,
        reason: String,
    ) -> Evaluation {
        let changed = state != self.answered;
        self.answered = state;
        Evaluation {
            state,
            changed,
            evidence: Evidence {
                at: t,
                observed: elapsed as f64 / 1000.0,
                threshold: self.timeout_ms as f64 / 1000.0,
                since,
                reason,
            },
        }
    }
}

/// Seconds with one decimal: `3.0s`.
fn secs(ms: Millis) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}
