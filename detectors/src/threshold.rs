//! Threshold detector: a sampled value above (or below) a bound for at least
//! a hold duration, with optional hysteresis on the way back.
//!
//! * A *breaching* sample is `value > cfg.value` ([`Comparison::Above`]) or
//!   `value < cfg.value` ([`Comparison::Below`]).
//! * From `Ok`, the first breaching sample answers `Pending` (or `Firing`
//!   immediately when `hold_ms == 0`); the condition start is that sample's
//!   time.
//! * While `Pending`, a breaching sample at `t` answers `Firing` once
//!   `t - since >= hold_ms`; any non-breaching sample answers `Ok`.
//! * While `Firing`, a *clearing* sample is `value < clear_value` (`Above`) /
//!   `value > clear_value` (`Below`) when a clear value is configured, else
//!   simply a non-breaching sample. Once clearing samples have been seen
//!   continuously for `clear_hold_ms` (0: the first clearing sample), the
//!   answer is `Resolved`, exactly once; a non-clearing sample restarts the
//!   clear timer.
//! * After `Resolved`, the next sample is judged afresh from `Ok`.
//! * NaN samples, and samples older than the last one observed, are ignored:
//!   the previous answer is repeated with `changed == false`.

use crate::machine::{Machine, Step};
use crate::{Evaluation, Millis, State, fmt};

#[cfg(test)]
mod tests;

/// Which side of the bound is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// Values strictly greater than the bound breach.
    Above,
    /// Values strictly less than the bound breach.
    Below,
}

/// Configuration of a [`Threshold`] detector.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ThresholdConfig {
    /// Which side of `value` is bad.
    pub comparison: Comparison,
    /// The bound a sample must strictly cross to breach.
    pub value: f64,
    /// How long (ms) the breach must hold continuously before firing;
    /// 0 fires on the first breaching sample. Negative counts as 0.
    pub hold_ms: Millis,
    /// Hysteresis: while firing, a sample clears only when strictly below
    /// (`Above`) / above (`Below`) this value. `None`: any non-breaching
    /// sample clears.
    pub clear_value: Option<f64>,
    /// How long (ms) the clear condition must hold continuously before the
    /// detector resolves; 0 resolves on the first clearing sample.
    /// Negative counts as 0.
    pub clear_hold_ms: Millis,
}

/// Detects a sampled value crossing a bound for a hold duration.
///
/// See the [module documentation](self) for the exact semantics.
#[derive(Debug, Clone)]
pub struct Threshold {
    cfg: ThresholdConfig,
    machine: Machine,
    last_t: Option<Millis>,
}

impl Threshold {
    /// A detector in state [`State::Ok`] that has seen no sample yet.
    pub fn new(cfg: ThresholdConfig) -> Self {
        let machine = Machine::new(cfg.hold_ms, cfg.clear_hold_ms);
        Self {
            cfg,
            machine,
            last_t: None,
        }
    }

    /// The state answered by the last (non-ignored) observation.
    pub fn state(&self) -> State {
        self.machine.state()
    }

    /// Judges the sample `value` taken at time `t`.
    pub fn observe(&mut self, t: Millis, value: f64) -> Evaluation {
        self.judge(t, value, true)
            .expect("a full evaluation is always built")
    }

    /// Like [`observe`](Self::observe), but builds the evaluation (and its
    /// reason text) only when the state changed: for callers that act on
    /// changes alone and see many samples, the text is most of the cost.
    /// The machine steps exactly as with `observe`.
    pub fn observe_change(&mut self, t: Millis, value: f64) -> Option<Evaluation> {
        self.judge(t, value, false)
    }

    fn judge(&mut self, t: Millis, value: f64, always: bool) -> Option<Evaluation> {
        if value.is_nan() {
            // An ignored sample never changes the state.
            return always.then(|| self.ignored(t, value, "ignored: value is NaN".to_owned()));
        }
        if let Some(last) = self.last_t.filter(|&last| t < last) {
            return always.then(|| {
                let reason = format!("ignored: sample at {t} is older than the last one at {last}");
                self.ignored(t, value, reason)
            });
        }
        self.last_t = Some(t);

        let judging_firing = self.machine.is_firing();
        let bound = self.current_bound();
        let breach = self.breaches(value);
        let clear = judging_firing && self.clears(value);
        let step = self.machine.step(t, breach, clear);
        (always || step.changed).then(|| {
            let reason = self.reason(t, value, judging_firing, &step);
            step.evaluation(t, value, bound, reason)
        })
    }

    fn ignored(&self, t: Millis, value: f64, reason: String) -> Evaluation {
        self.machine.repeat(t, value, self.current_bound(), reason)
    }

    /// The bound the next sample is compared with.
    fn current_bound(&self) -> f64 {
        if self.machine.is_firing() {
            self.cfg.clear_value.unwrap_or(self.cfg.value)
        } else {
            self.cfg.value
        }
    }

    fn breaches(&self, value: f64) -> bool {
        match self.cfg.comparison {
            Comparison::Above => value > self.cfg.value,
            Comparison::Below => value < self.cfg.value,
        }
    }

    fn clears(&self, value: f64) -> bool {
        match (self.cfg.clear_value, self.cfg.comparison) {
            (Some(c), Comparison::Above) => value < c,
            (Some(c), Comparison::Below) => value > c,
            (None, _) => !self.breaches(value),
        }
    }

    /// Operators for (breach, not breach, clear, not clear).
    fn ops(&self) -> (&'static str, &'static str, &'static str, &'static str) {
        match (self.cfg.comparison, self.cfg.clear_value.is_some()) {
            (Comparison::Above, true) => (">", "<=", "<", ">="),
            (Comparison::Above, false) => (">", "<=", "<=", ">"),
            (Comparison::Below, true) => ("<", ">=", ">", "<="),
            (Comparison::Below, false) => ("<", ">=", ">=", "<"),
        }
    }

    fn reason(&self, t: Millis, value: f64, judging_firing: bool, step: &Step) -> String {
        let (breach_op, ok_op, clear_op, not_clear_op) = self.ops();
        let v = fmt::num(value);
        let bound = fmt::num(self.cfg.value);
        let clear_bound = fmt::num(self.cfg.clear_value.unwrap_or(self.cfg.value));
        let held = step.since.map_or(0, |s| t.saturating_sub(s));
        let cleared_for = step.clear_since.map_or(0, |s| t.saturating_sub(s));
        match (judging_firing, step.state) {
            (false, State::Pending) => format!(
                "value {v} {breach_op} {bound} for {} (hold {})",
                fmt::dur(held),
                fmt::dur(self.machine.hold_ms())
            ),
            (false, State::Firing) => {
                format!("value {v} {breach_op} {bound} for {}", fmt::dur(held))
            }
            (false, _) => format!("value {v} {ok_op} {bound}"),
            (true, State::Resolved) => format!(
                "resolved: value {v} {clear_op} {clear_bound} for {}",
                fmt::dur(cleared_for)
            ),
            (true, _) if step.clear_since.is_some() => format!(
                "value {v} {clear_op} {clear_bound} for {} (clear hold {}), firing for {}",
                fmt::dur(cleared_for),
                fmt::dur(self.machine.clear_hold_ms()),
                fmt::dur(held)
            ),
            (true, _) if self.cfg.clear_value.is_some() => format!(
                "value {v} {not_clear_op} clear value {clear_bound}, firing for {}",
                fmt::dur(held)
            ),
            (true, _) => format!("value {v} {breach_op} {bound} for {}", fmt::dur(held)),
        }
    }
}
