//! Flap detection: an incident whose detector changes state more than
//! `changes` times within `window` is flapping. A flapping incident is held
//! open — its resolves are deferred until it has stayed clear for `settle` —
//! so it is notified once instead of on every bounce.
//!
//! Pure: time is an argument; the engine feeds changes and ticks.

use std::collections::{HashMap, VecDeque};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::duration::Duration;
use crate::series::Millis;

/// `flapping:` in `medic.yaml`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlappingConfig {
    /// More state changes than this within `window` is flapping.
    pub changes: usize,
    /// The window.
    pub window: Duration,
    /// A flapping incident resolves once clear this long.
    pub settle: Duration,
}

/// What to do with a resolve.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolve {
    /// Not flapping: resolve now.
    Now,
    /// Flapping: held open until `until` unless it fires again. `first` is
    /// true the first time it is held in this bout (worth a timeline note).
    Hold {
        /// When it may resolve.
        until: Millis,
        /// First hold of this bout.
        first: bool,
    },
}

#[derive(Debug, Default)]
struct Track {
    changes: VecDeque<Millis>,
    held_until: Option<Millis>,
    flapping: bool,
    // A hold was reported in this bout.
    noted: bool,
}

/// State changes per fingerprint.
#[derive(Debug)]
pub struct Flapping {
    cfg: FlappingConfig,
    tracks: HashMap<String, Track>,
}

impl Flapping {
    /// With a configuration.
    pub fn new(cfg: FlappingConfig) -> Self {
        Flapping {
            cfg,
            tracks: HashMap::new(),
        }
    }

    fn note(&mut self, fp: &str, at: Millis) -> &mut Track {
        let window = self.cfg.window.millis();
        let limit = self.cfg.changes;
        let t = self.tracks.entry(fp.to_string()).or_default();
        t.changes.push_back(at);
        while t.changes.front().is_some_and(|&c| c < at - window) {
            t.changes.pop_front();
        }
        if t.changes.len() > limit {
            t.flapping = true;
        }
        t
    }

    /// The detector fired (opened or re-fired). Cancels a pending resolve.
    /// Returns true when this change made it flapping.
    pub fn fired(&mut self, fp: &str, at: Millis) -> bool {
        let was = self.tracks.get(fp).is_some_and(|t| t.flapping);
        let t = self.note(fp, at);
        t.held_until = None;
        t.flapping && !was
    }

    /// The detector cleared: resolve now, or hold a flapping incident open.
    pub fn cleared(&mut self, fp: &str, at: Millis) -> Resolve {
        let settle = self.cfg.settle.millis();
        let t = self.note(fp, at);
        if !t.flapping {
            return Resolve::Now;
        }
        let first = !t.noted;
        t.noted = true;
        let until = at + settle;
        t.held_until = Some(until);
        Resolve::Hold { until, first }
    }

    /// Fingerprints whose hold ended by `now`: resolve them. They are no
    /// longer flapping.
    pub fn settled(&mut self, now: Millis) -> Vec<String> {
        let mut out = Vec::new();
        self.tracks.retain(|fp, t| {
            if t.held_until.is_some_and(|u| u <= now) {
                out.push(fp.clone());
                return false;
            }
            // Forget quiet fingerprints (bounded memory).
            t.held_until.is_some() || t.changes.back().is_some_and(|&c| c >= now - 86_400_000)
        });
        out
    }

    /// The settings.
    pub fn config(&self) -> &FlappingConfig {
        &self.cfg
    }

    /// Whether a fingerprint is flapping now.
    pub fn is_flapping(&self, fp: &str) -> bool {
        self.tracks.get(fp).is_some_and(|t| t.flapping)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f() -> Flapping {
        Flapping::new(FlappingConfig {
            changes: 3,
            window: Duration::from_secs(60),
            settle: Duration::from_secs(30),
        })
    }

    #[test]
    fn a_steady_incident_resolves_at_once() {
        let mut f = f();
        assert!(!f.fired("a", 0));
        assert_eq!(f.cleared("a", 10_000), Resolve::Now);
        // Changes spread wider than the window never add up.
        for k in 1..10 {
            assert!(!f.fired("a", k * 100_000));
            assert_eq!(f.cleared("a", k * 100_000 + 1), Resolve::Now);
        }
    }

    #[test]
    fn bouncing_is_held_open_until_it_settles() {
        let mut f = f();
        f.fired("a", 0);
        assert_eq!(f.cleared("a", 1000), Resolve::Now);
        f.fired("a", 2000);
        assert_eq!(
            f.cleared("a", 3000),
            Resolve::Hold {
                until: 33_000,
                first: true
            }
        );
        assert!(f.is_flapping("a"));
        // Fires again while held: the hold is cancelled; the next clear holds again.
        assert!(!f.fired("a", 4000), "already flapping");
        assert!(
            f.settled(34_000).is_empty(),
            "firing again cancels the hold"
        );
        assert_eq!(
            f.cleared("a", 5000),
            Resolve::Hold {
                until: 35_000,
                first: false
            }
        );
        assert!(f.settled(34_999).is_empty());
        assert_eq!(f.settled(35_000), ["a"]);
        assert!(!f.is_flapping("a"));
        assert!(f.settled(100_000).is_empty());
    }

    #[test]
    fn fingerprints_are_independent() {
        let mut f = f();
        for t in [0, 10, 20] {
            f.fired("a", t);
            f.cleared("a", t + 5);
        }
        assert!(f.is_flapping("a"));
        assert!(!f.is_flapping("b"));
        assert_eq!(f.cleared("b", 100), Resolve::Now);
    }
}
