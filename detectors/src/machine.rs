//! The `Ok → Pending → Firing → Resolved` state machine shared by the
//! threshold and error-rate detectors.

use crate::{Evaluation, Evidence, Millis, State};

/// Hold-and-clear state machine driven by one boolean judgement per step.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Machine {
    hold_ms: Millis,
    clear_hold_ms: Millis,
    /// The state answered by the last (non-ignored) step.
    answered: State,
    /// When the current pending/firing condition began.
    since: Option<Millis>,
    /// When the clear condition began to hold continuously while firing.
    clear_since: Option<Millis>,
}

/// The outcome of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    /// The state answered.
    pub state: State,
    /// Whether `state` differs from the previous answer.
    pub changed: bool,
    /// When the pending/firing condition began (for `Resolved`: the incident
    /// that just cleared).
    pub since: Option<Millis>,
    /// When the clear condition began to hold (firing/resolved only).
    pub clear_since: Option<Millis>,
}

impl Step {
    /// The detector's answer for this step.
    pub(crate) fn evaluation(
        &self,
        at: Millis,
        observed: f64,
        threshold: f64,
        reason: String,
    ) -> Evaluation {
        Evaluation {
            state: self.state,
            changed: self.changed,
            evidence: Evidence {
                at,
                observed,
                threshold,
                since: self.since,
                reason,
            },
        }
    }
}

impl Machine {
    /// A machine in state `Ok`. Negative durations are treated as zero.
    pub(crate) fn new(hold_ms: Millis, clear_hold_ms: Millis) -> Self {
        Self {
            hold_ms: hold_ms.max(0),
            clear_hold_ms: clear_hold_ms.max(0),
            answered: State::Ok,
            since: None,
            clear_since: None,
        }
    }

    /// The state answered by the last step.
    pub(crate) fn state(&self) -> State {
        self.answered
    }

    /// When the current pending/firing condition began.
    pub(crate) fn since(&self) -> Option<Millis> {
        self.since
    }

    /// Whether the next step judges a firing condition (so the caller should
    /// evaluate its clear condition rather than its breach condition).
    pub(crate) fn is_firing(&self) -> bool {
        self.answered == State::Firing
    }

    /// The hold duration.
    pub(crate) fn hold_ms(&self) -> Millis {
        self.hold_ms
    }

    /// The clear hold duration.
    pub(crate) fn clear_hold_ms(&self) -> Millis {
        self.clear_hold_ms
    }

    /// The answer to an ignored observation: the last state again,
    /// unchanged, with the condition's start.
    pub(crate) fn repeat(
        &self,
        at: Millis,
        observed: f64,
        threshold: f64,
        reason: String,
    ) -> Evaluation {
        let unchanged = Step {
            state: self.answered,
            changed: false,
            since: self.since,
            clear_since: self.clear_since,
        };
        unchanged.evaluation(at, observed, threshold, reason)
    }

    /// Advances the machine with the judgement of the observation at `t`.
    ///
    /// `breach` is consulted from `Ok`/`Pending`, `clear` from `Firing`.
    pub(crate) fn step(&mut self, t: Millis, breach: bool, clear: bool) -> Step {
        let prev = self.answered;
        let next = match prev {
            State::Ok | State::Resolved => {
                if breach {
                    self.since = Some(t);
                    if self.hold_ms == 0 {
                        State::Firing
                    } else {
                        State::Pending
                    }
                } else {
                    State::Ok
                }
            }
            State::Pending => {
                if breach {
                    let since = *self.since.get_or_insert(t);
                    if t.saturating_sub(since) >= self.hold_ms {
                        State::Firing
                    } else {
                        State::Pending
                    }
                } else {
                    self.since = None;
                    State::Ok
                }
            }
            State::Firing => {
                if clear {
                    let clear_since = *self.clear_since.get_or_insert(t);
                    if t.saturating_sub(clear_since) >= self.clear_hold_ms {
                        State::Resolved
                    } else {
                        State::Firing
                    }
                } else {
                    self.clear_since = None;
                    State::Firing
                }
            }
        };
        let step = Step {
            state: next,
            changed: next != prev,
            since: self.since,
            clear_since: self.clear_since,
        };
        if next == State::Resolved {
            self.since = None;
            self.clear_since = None;
        }
        self.answered = next;
        step
    }
}
