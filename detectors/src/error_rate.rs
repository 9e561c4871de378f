//! Error-rate detector: the ratio of two cumulative counters (errors / total)
//! over a sliding window.
//!
//! * `errors` and `total` are cumulative counter values (e.g. Prometheus
//!   counters). The first observation only sets the baseline. Each later
//!   observation contributes the increase of each counter since the previous
//!   one; when a counter decreased, it restarted from zero, so its increase
//!   for that step is its new value (as Prometheus' `increase()` does).
//!   Increases are never negative.
//! * The increase computed at an observation's time `a` covers the interval
//!   ending at `a`, so the window at `t` holds the increases with
//!   `a > t - window_ms` (left-open, like Prometheus range selectors); older
//!   ones are dropped. `window_ms < 1` counts as 1. Memory is bounded: at most [`MAX_ENTRIES`] increases are kept; beyond
//!   that the two oldest are merged.
//! * `ratio = sum(error increases) / sum(total increases)`, clamped to
//!   `[0, 1]` (more errors than requests counts as 1).
//! * Minimum-volume guard: when `sum(total increases) < min_total`, the
//!   condition is "not breaching" (and, while firing, clearing): a quiet
//!   service never pages.
//! * Breach is `ratio > max_ratio`. While firing, clearing is
//!   `ratio < clear_ratio` when configured, else "not breaching"; the first
//!   clearing observation resolves. Otherwise the lifecycle is the one of
//!   [`Threshold`](crate::Threshold): `Pending` for `hold_ms`, then `Firing`,
//!   `Resolved` once, then judged afresh from `Ok`.
//! * Non-finite inputs, and observations older than the last one, are
//!   ignored: the previous answer is repeated with `changed == false`.

use std::collections::VecDeque;

use crate::machine::{Machine, Step};
use crate::{Evaluation, Evidence, Millis, State, fmt};

#[cfg(test)]
mod tests;

/// The most per-observation increases an [`ErrorRate`] keeps in its window.
pub const MAX_ENTRIES: usize = 10_000;

/// Configuration of an [`ErrorRate`] detector.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ErrorRateConfig {
    /// Length (ms) of the sliding window the ratio is computed over
    /// (at least 1).
    pub window_ms: Millis,
    /// The ratio (0..=1) a window must strictly exceed to breach.
    pub max_ratio: f64,
    /// Minimum number of requests (sum of `total` increases) in the window
    /// for the ratio to count; below it the condition is "not breaching".
    pub min_total: f64,
    /// How long (ms) the breach must hold continuously before firing;
    /// 0 fires on the first breaching observation. Negative counts as 0.
    pub hold_ms: Millis,
    /// Hysteresis: while firing, the ratio must drop strictly below this to
    /// clear. `None`: any non-breaching observation clears.
    pub clear_ratio: Option<f64>,
}

/// The increases of both counters between two consecutive observations.
#[derive(Debug, Clone, Copy)]
struct Increase {
    at: Millis,
    errors: f64,
    total: f64,
}

/// Detects a high ratio of errors to requests over a sliding window.
///
/// See the [module documentation](self) for the exact semantics.
#[derive(Debug, Clone)]
pub struct ErrorRate {
    cfg: ErrorRateConfig,
    machine: Machine,
    /// The last observation: (time, errors counter, total counter).
    last: Option<(Millis, f64, f64)>,
    window: VecDeque<Increase>,
}

/// What one window says.
struct Judgement {
    ratio: f64,
    total: f64,
    enough: bool,
}

impl ErrorRate {
    /// A detector in state [`State::Ok`] with no baseline yet.
    pub fn new(cfg: ErrorRateConfig) -> Self {
        let machine = Machine::new(cfg.hold_ms, 0);
        Self {
            cfg,
            machine,
            last: None,
            window: VecDeque::new(),
        }
    }

    /// The state answered by the last (non-ignored) observation.
    pub fn state(&self) -> State {
        self.machine.state()
    }

    /// Judges the cumulative counters `errors` and `total` read at time `t`.
    pub fn observe(&mut self, t: Millis, errors: f64, total: f64) -> Evaluation {
        if !errors.is_finite() || !total.is_finite() {
            let reason = format!(
                "ignored: counters are not finite (errors {}, total {})",
                fmt::num(errors),
                fmt::num(total)
            );
            return self.repeat(t, f64::NAN, reason);
        }
        let Some((last_t, last_errors, last_total)) = self.last else {
            self.last = Some((t, errors, total));
            return self.repeat(t, 0.0, "baseline: first counter reading".to_owned());
        };
        if t < last_t {
            let reason =
                format!("ignored: observation at {t} is older than the last one at {last_t}");
            return self.repeat(t, self.judge().ratio, reason);
        }
        self.last = Some((t, errors, total));
        self.push(Increase {
            at: t,
            errors: increase(last_errors, errors),
            total: increase(last_total, total),
        });
        self.expire(t);

        let judging_firing = self.machine.is_firing();
        let bound = self.current_bound();
        let j = self.judge();
        let breach = j.enough && j.ratio > self.cfg.max_ratio;
        let clear = judging_firing
            && (!j.enough
                || match self.cfg.clear_ratio {
                    Some(c) => j.ratio < c,
                    None => !breach,
                });
        let step = self.machine.step(t, breach, clear);
        let reason = self.reason(t, &j, judging_firing, &step);
        Evaluation {
            state: step.state,
            changed: step.changed,
            evidence: Evidence {
                at: t,
                observed: j.ratio,
                threshold: bound,
                since: step.since,
                reason,
            },
        }
    }

    /// Repeats the previous answer without changing anything.
    fn repeat(&self, t: Millis, observed: f64, reason: String) -> Evaluation {
        Evaluation {
            state: self.machine.state(),
            changed: false,
            evidence: Evidence {
                at: t,
                observed,
                threshold: self.current_bound(),
                since: self.machine.since(),
                reason,
            },
        }
    }

    fn current_bound(&self) -> f64 {
        match self.cfg.clear_ratio {
            Some(c) if self.machine.is_firing() => c,
            _ => self.cfg.max_ratio,
        }
    }

    fn push(&mut self, inc: Increase) {
        if inc.errors == 0.0 && inc.total == 0.0 {
            return;
        }
        match self.window.back_mut() {
            Some(back) if back.at == inc.at => {
                back.errors += inc.errors;
                back.total += inc.total;
            }
            _ => self.window.push_back(inc),
        }
        while self.window.len() > MAX_ENTRIES {
            // Merge the two oldest; the merged entry keeps the newer time so
            // that no increase leaves the window earlier than it should.
            if let (Some(a), Some(b)) = (self.window.pop_front(), self.window.front_mut()) {
                b.errors += a.errors;
                b.total += a.total;
            }
        }
    }

    fn expire(&mut self, t: Millis) {
        let horizon = t.saturating_sub(self.window_ms());
        while self.window.front().is_some_and(|inc| inc.at <= horizon) {
            self.window.pop_front();
        }
    }

    fn window_ms(&self) -> Millis {
        self.cfg.window_ms.max(1)
    }

    fn judge(&self) -> Judgement {
        let (errors, total) = self
            .window
            .iter()
            .fold((0.0, 0.0), |(e, n), inc| (e + inc.errors, n + inc.total));
        let ratio = if total > 0.0 {
            let r = errors / total;
            if r.is_nan() { 1.0 } else { r.clamp(0.0, 1.0) }
        } else if errors > 0.0 {
            1.0
        } else {
            0.0
        };
        Judgement {
            ratio,
            total,
            enough: total >= self.cfg.min_total && total > 0.0,
        }
    }

    fn reason(&self, t: Millis, j: &Judgement, judging_firing: bool, step: &Step) -> String {
        let window = fmt::dur(self.window_ms());
        let ratio = fmt::num(j.ratio);
        let requests = fmt::num(j.total);
        if !j.enough {
            let verdict = match step.state {
                State::Resolved => "resolved: insufficient volume",
                _ => "insufficient volume",
            };
            return format!(
                "{verdict}: {requests} requests over {window} (minimum {})",
                fmt::num(self.cfg.min_total)
            );
        }
        let max = fmt::num(self.cfg.max_ratio);
        let held = fmt::dur(step.since.map_or(0, |s| t.saturating_sub(s)));
        let base = |op: &str, bound: &str| {
            format!("error ratio {ratio} {op} {bound} over {window} ({requests} requests)")
        };
        match (judging_firing, step.state) {
            (false, State::Pending) => format!(
                "{} for {held} (hold {})",
                base(">", &max),
                fmt::dur(self.machine.hold_ms())
            ),
            (false, State::Firing) => format!("{} for {held}", base(">", &max)),
            (false, _) => base("<=", &max),
            (true, State::Resolved) => match self.cfg.clear_ratio {
                Some(c) => format!("resolved: {}", base("<", &fmt::num(c))),
                None => format!("resolved: {}", base("<=", &max)),
            },
            (true, _) => match self.cfg.clear_ratio {
                Some(c) => format!(
                    "{}, firing for {held}",
                    base(">=", &format!("clear ratio {}", fmt::num(c)))
                ),
                None => format!("{} for {held}", base(">", &max)),
            },
        }
    }
}

/// The increase of a counter from `prev` to `cur`, treating a decrease as a
/// restart from zero. Never negative.
fn increase(prev: f64, cur: f64) -> f64 {
    let inc = if cur >= prev { cur - prev } else { cur };
    inc.max(0.0)
}
