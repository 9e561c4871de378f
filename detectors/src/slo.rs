//! SLO burn-rate detector: multi-window, multi-burn-rate alerts as in the
//! Google SRE workbook ("Alerting on SLOs", approach 6).
//!
//! * Fed two cumulative counters at each observation: bad events (or good
//!   events, see [`SloBurnConfig::counts_good`]) and total events. Counter
//!   resets are handled like [`ErrorRate`](crate::ErrorRate): a decrease
//!   means the counter restarted from zero. Increases are never negative;
//!   with good-event counting, `bad = max(0, total increase − good increase)`.
//! * The error budget is `1 − objective` (e.g. 0.001 for 99.9 %). Over a
//!   window `W` the burn rate is `bad_W / max(total_W, min_events) / budget`:
//!   how many times faster than sustainable the budget is being spent.
//! * **Minimum events.** Padding the denominator to `min_events` means a
//!   service with little traffic does not page on one failed request (1 bad
//!   of 3 is a ratio of 1 / min_events, not 33 %), yet a total outage is not
//!   hidden: when every one of a few requests fails the padded ratio still
//!   grows with each failure, and it pages once `bad_W ≥ min_events ·
//!   burn · budget`. There is no volume below which failures are ignored.
//! * A rule `(long, short, burn)` breaches when the burn rate over **both**
//!   its long and its short window is at least `burn`: the long window gives
//!   significance, the short one makes the alert stop soon after the problem
//!   does. The detector fires when any rule breaches and resolves when none
//!   does (no hold: the windows already provide it).
//! * Window sums come from snapshots of the running counters taken at most
//!   every `resolution` (the shortest window / 10, and at least the longest
//!   window / [`MAX_SNAPSHOTS`], and at least 1 s), so memory is bounded and
//!   window edges are accurate to one resolution step.
//! * A window longer than the history seen so far (just after start) counts
//!   its unseen part as healthy traffic at the rate seen so far: the total
//!   is scaled by `window / history`, the bad events are not. So a long
//!   window's low threshold is not crossed by one early failure, while an
//!   outage from the start is caught as fast as with full history.
//! * Non-finite inputs and observations older than the last one are
//!   ignored: the previous answer is repeated with `changed == false`.

use std::collections::VecDeque;

use crate::machine::Machine;
use crate::{Evaluation, Evidence, Millis, State, fmt};

#[cfg(test)]
#[path = "slo/tests.rs"]
mod tests;

/// The most counter snapshots an [`SloBurn`] keeps.
pub const MAX_SNAPSHOTS: usize = 8192;

/// One multi-window rule.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BurnRule {
    /// Long window (ms): significance.
    pub long_ms: Millis,
    /// Short window (ms): fast reset.
    pub short_ms: Millis,
    /// Burn rate both windows must reach.
    pub burn_rate: f64,
}

impl BurnRule {
    /// The SRE workbook's recommended rules for a 30-day SLO: 2 % of the
    /// budget in 1 h (14.4×, with 5 m), 5 % in 6 h (6×, with 30 m), 10 % in
    /// 3 d (1×, with 6 h).
    pub fn workbook() -> Vec<BurnRule> {
        const M: Millis = 60_000;
        vec![
            BurnRule {
                long_ms: 60 * M,
                short_ms: 5 * M,
                burn_rate: 14.4,
            },
            BurnRule {
                long_ms: 6 * 60 * M,
                short_ms: 30 * M,
                burn_rate: 6.0,
            },
            BurnRule {
                long_ms: 3 * 24 * 60 * M,
                short_ms: 6 * 60 * M,
                burn_rate: 1.0,
            },
        ]
    }
}

/// Configuration of an [`SloBurn`] detector.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SloBurnConfig {
    /// Target fraction of good events, in (0, 1), e.g. 0.999.
    pub objective: f64,
    /// The rules; the detector fires when any breaches.
    pub rules: Vec<BurnRule>,
    /// Denominators below this count as this (see the module docs).
    pub min_events: f64,
    /// The first counter counts good events rather than bad ones.
    pub counts_good: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
struct Snapshot {
    at: Millis,
    bad: f64,
    total: f64,
}

/// Burn rates of one rule at one observation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuleBurn {
    /// Burn rate over the long window.
    pub long: f64,
    /// Burn rate over the short window.
    pub short: f64,
}

/// The detector state for one SLO (one group of series).
#[derive(Debug, Clone)]
pub struct SloBurn {
    cfg: SloBurnConfig,
    resolution: Millis,
    longest: Millis,
    last_counters: Option<(f64, f64)>,
    last_t: Option<Millis>,
    bad: f64,
    total: f64,
    snaps: VecDeque<Snapshot>,
    machine: Machine,
    last: Option<Evaluation>,
}

impl SloBurn {
    /// A detector with no history.
    pub fn new(cfg: SloBurnConfig) -> Self {
        let shortest = cfg
            .rules
            .iter()
            .flat_map(|r| [r.long_ms, r.short_ms])
            .min()
            .unwrap_or(60_000)
            .max(1);
        let longest = cfg
            .rules
            .iter()
            .flat_map(|r| [r.long_ms, r.short_ms])
            .max()
            .unwrap_or(60_000)
            .max(1);
        let resolution = (shortest / 10)
            .max(longest / MAX_SNAPSHOTS as Millis)
            .max(1000);
        SloBurn {
            cfg,
            resolution,
            longest,
            last_counters: None,
            last_t: None,
            bad: 0.0,
            total: 0.0,
            snaps: VecDeque::new(),
            machine: Machine::new(0, 0),
            last: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.machine.state()
    }

    /// Snapshot spacing in ms.
    pub fn resolution_ms(&self) -> Millis {
        self.resolution
    }

    /// The running totals `(bad, total)` at or before `t` (the earliest
    /// snapshot when history is shorter).
    fn at_or_before(&self, t: Millis) -> (f64, f64) {
        let i = self.snaps.partition_point(|s| s.at <= t);
        let s = if i == 0 {
            self.snaps.front()
        } else {
            self.snaps.get(i - 1)
        };
        s.map_or((0.0, 0.0), |s| (s.bad, s.total))
    }

    fn burn_over(&self, now: Millis, window: Millis) -> f64 {
        let (b0, t0) = self.at_or_before(now - window);
        let bad = (self.bad - b0).max(0.0);
        let mut total = (self.total - t0).max(0.0);
        // A window longer than the history: count its unseen part as healthy
        // traffic at the rate seen so far.
        let covered = self.snaps.front().map_or(0, |s| now - s.at);
        if covered > 0 && covered < window {
            total *= window as f64 / covered as f64;
        }
        let budget = (1.0 - self.cfg.objective).max(f64::MIN_POSITIVE);
        bad / total.max(self.cfg.min_events).max(f64::MIN_POSITIVE) / budget
    }

    /// Burn rates of every rule now (after the last observation).
    pub fn burns(&self) -> Vec<RuleBurn> {
        let Some(now) = self.last_t else {
            return vec![
                RuleBurn {
                    long: 0.0,
                    short: 0.0
                };
                self.cfg.rules.len()
            ];
        };
        self.cfg
            .rules
            .iter()
            .map(|r| RuleBurn {
                long: self.burn_over(now, r.long_ms),
                short: self.burn_over(now, r.short_ms),
            })
            .collect()
    }

    /// Feed both counters' values observed at `t`.
    pub fn observe(&mut self, t: Millis, first: f64, total: f64) -> Evaluation {
        let stale = self.last_t.is_some_and(|l| t < l);
        if !first.is_finite() || !total.is_finite() || stale {
            return match &self.last {
                Some(e) => Evaluation {
                    changed: false,
                    ..e.clone()
                },
                None => answer(
                    t,
                    State::Ok,
                    false,
                    None,
                    "no usable observation yet".into(),
                    0.0,
                    0.0,
                ),
            };
        }
        if let Some((pf, pt)) = self.last_counters {
            let inc = |prev: f64, now: f64| if now >= prev { now - prev } else { now };
            let (df, dt) = (inc(pf, first), inc(pt, total));
            let bad = if self.cfg.counts_good {
                (dt - df).max(0.0)
            } else {
                df
            };
            self.bad += bad;
            self.total += dt;
        } else {
            // The first observation sets the baseline: snapshot zero.
            self.snaps.push_back(Snapshot {
                at: t,
                bad: 0.0,
                total: 0.0,
            });
        }
        self.last_counters = Some((first, total));
        self.last_t = Some(t);
        if self
            .snaps
            .back()
            .is_none_or(|s| t - s.at >= self.resolution)
        {
            self.snaps.push_back(Snapshot {
                at: t,
                bad: self.bad,
                total: self.total,
            });
        }
        // Keep one snapshot at or before the longest window's start.
        while self.snaps.len() > 1 && self.snaps[1].at <= t - self.longest {
            self.snaps.pop_front();
        }
        while self.snaps.len() > MAX_SNAPSHOTS {
            self.snaps.pop_front();
        }

        let burns = self.burns();
        let breaching = self
            .cfg
            .rules
            .iter()
            .zip(&burns)
            .enumerate()
            .filter(|(_, (r, b))| b.long >= r.burn_rate && b.short >= r.burn_rate)
            .max_by(|a, b| {
                (a.1.1.long / a.1.0.burn_rate).total_cmp(&(b.1.1.long / b.1.0.burn_rate))
            });
        // The rule to report: the breaching one, else the closest to breaching.
        let (i, (rule, b)) = breaching.unwrap_or_else(|| {
            self.cfg
                .rules
                .iter()
                .zip(&burns)
                .enumerate()
                .max_by(|a, b| {
                    let ka = a.1.1.long.min(a.1.1.short) / a.1.0.burn_rate;
                    let kb = b.1.1.long.min(b.1.1.short) / b.1.0.burn_rate;
                    ka.total_cmp(&kb)
                })
                .unwrap_or((0, (&NO_RULE, &NO_BURN)))
        });
        let step = self
            .machine
            .step(t, breaching.is_some(), breaching.is_none());
        let reason = format!(
            "error budget of SLO {}% burning {}× over {} and {}× over {} (rule {}: ≥ {}×)",
            fmt::num(self.cfg.objective * 100.0),
            fmt::num(round2(b.long)),
            fmt::dur(rule.long_ms),
            fmt::num(round2(b.short)),
            fmt::dur(rule.short_ms),
            i + 1,
            fmt::num(rule.burn_rate),
        );
        let e = answer(
            t,
            step.state,
            step.changed,
            step.since,
            reason,
            b.long,
            rule.burn_rate,
        );
        self.last = Some(e.clone());
        e
    }
}

#[allow(clippy::too_many_arguments)]
fn answer(
    t: Millis,
    state: State,
    changed: bool,
    since: Option<Millis>,
    reason: String,
    observed: f64,
    threshold: f64,
) -> Evaluation {
    Evaluation {
        state,
        changed,
        evidence: Evidence {
            at: t,
            observed,
            threshold,
            since,
            reason,
        },
    }
}

const NO_RULE: BurnRule = BurnRule {
    long_ms: 0,
    short_ms: 0,
    burn_rate: f64::INFINITY,
};
const NO_BURN: RuleBurn = RuleBurn {
    long: 0.0,
    short: 0.0,
};

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
