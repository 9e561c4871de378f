//! Pure, deterministic failure detectors for medic.
//!
//! Each detector is a small state machine: the caller feeds it observations
//! stamped with a time in milliseconds ([`Millis`]) and gets back an
//! [`Evaluation`]: the detector's [`State`], whether that state `changed`
//! since the previous answer, and the [`Evidence`] that justifies it.
//!
//! The crate does no I/O, spawns no threads of its own and never reads a
//! clock: time is always injected, so every detector is reproducible in
//! tests. (One exception to "spawns nothing": the k-means fit of
//! [`anomaly::Cluster`] comes from linfa, whose assignment step runs on
//! rayon's global thread pool; its results do not depend on the threads.)
//!
//! * [`Threshold`]: a sampled value above/below a bound for a hold duration,
//!   with optional hysteresis on the way back.
//! * [`ErrorRate`]: the ratio of two cumulative counters (errors / total)
//!   over a sliding window, with counter-reset handling and a minimum-volume
//!   guard.
//! * [`Heartbeat`]: a probe target that has not succeeded for a timeout.
//! * [`SloBurn`]: multi-window, multi-burn-rate SLO alerts over a bad/total
//!   (or good/total) counter pair, with a minimum-events guard.
//! * [`Forecast`]: a robust (Theil–Sen) trend predicted to cross a limit
//!   within a horizon ("disk full in 3 h"), with a confidence band on the
//!   time to breach.
//!
//! The [`anomaly`] module holds statistical anomaly models of a different
//! shape: `observe(t, value)` answers an [`anomaly::Score`] in `[0, 1]`
//! with the expected value and band, rather than a lifecycle state:
//! [`RollingMad`], [`Ewma`], [`PageHinkley`], [`Seasonal`],
//! [`anomaly::Cluster`] and their [`Ensemble`], and the multivariate
//! [`anomaly::Multivariate`].
//!
//! The lifecycle detectors share the same lifecycle: `Ok → Pending → Firing → Resolved`,
//! where `Resolved` is answered exactly once when a firing condition clears,
//! and the next observation is judged afresh from `Ok`.
//!
//! # Example
//!
//! ```
//! use medic_detectors::{Comparison, State, Threshold, ThresholdConfig};
//!
//! let mut cpu = Threshold::new(ThresholdConfig {
//!     comparison: Comparison::Above,
//!     value: 0.9,
//!     hold_ms: 10_000,
//!     clear_value: Some(0.8),
//!     clear_hold_ms: 0,
//! });
//!
//! assert_eq!(cpu.observe(0, 0.50).state, State::Ok);
//! assert_eq!(cpu.observe(5_000, 0.93).state, State::Pending);
//!
//! let e = cpu.observe(15_000, 0.95);
//! assert_eq!(e.state, State::Firing);
//! assert!(e.changed);
//! assert_eq!(e.evidence.since, Some(5_000));
//! assert_eq!(e.evidence.reason, "value 0.95 > 0.9 for 10s");
//!
//! // Hysteresis: 0.85 is below the bound but not below the clear value.
//! assert_eq!(cpu.observe(20_000, 0.85).state, State::Firing);
//!
//! let e = cpu.observe(25_000, 0.70);
//! assert_eq!(e.state, State::Resolved);
//! assert!(e.changed);
//!
//! // Resolved is answered once; the next sample is judged from Ok.
//! assert_eq!(cpu.observe(30_000, 0.70).state, State::Ok);
//! ```
//!
//! # Example: an anomaly score
//!
//! ```
//! use medic_detectors::anomaly::{Model, RollingMad, RollingMadConfig};
//!
//! let mut latency = RollingMad::new(RollingMadConfig::default());
//! for i in 0..50 {
//!     // 100 ms ± a little.
//!     let s = latency.observe(i * 1_000, 100.0 + (i % 3) as f64);
//!     assert!((0.0..=1.0).contains(&s.score));
//! }
//! let normal = latency.observe(50_000, 101.0);
//! assert!(!normal.warming_up);
//! assert!(normal.score < 0.01);
//! assert!(normal.lower <= 101.0 && 101.0 <= normal.upper);
//!
//! let spike = latency.observe(51_000, 250.0);
//! assert!(spike.score > 0.99);
//! assert_eq!(spike.expected, 101.0);
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod fmt;
mod machine;
#[cfg(test)]
mod testutil;

pub mod anomaly;
pub mod error_rate;
pub mod forecast;
pub mod heartbeat;
pub mod slo;
pub mod threshold;

pub use anomaly::{
    Ensemble, EnsembleConfig, Ewma, EwmaConfig, Model, PageHinkley, PageHinkleyConfig, RollingMad,
    RollingMadConfig, Score, Seasonal, SeasonalConfig,
};
pub use error_rate::{ErrorRate, ErrorRateConfig};
pub use forecast::{Forecast, ForecastConfig};
pub use heartbeat::{Heartbeat, HeartbeatConfig};
pub use slo::{BurnRule, SloBurn, SloBurnConfig};
pub use threshold::{Comparison, Threshold, ThresholdConfig};

/// A point in time in milliseconds since the Unix epoch (or any monotonic
/// origin), always injected by the caller.
pub type Millis = i64;

/// The lifecycle state of a detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// The condition is not present.
    Ok,
    /// The condition is present but has not yet lasted long enough to fire.
    Pending,
    /// The condition has lasted long enough: this is an incident.
    Firing,
    /// A firing condition has just cleared. Answered exactly once per
    /// incident; the following observation is judged afresh from [`State::Ok`].
    Resolved,
}

/// Why a detector answered what it answered.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Evidence {
    /// Time of the observation judged.
    pub at: Millis,
    /// The value judged: the sample, the error ratio, or seconds since the
    /// last success, depending on the detector.
    pub observed: f64,
    /// The bound `observed` was compared with.
    pub threshold: f64,
    /// When the current condition (pending/firing) began; for
    /// [`State::Resolved`], when the incident that just cleared began.
    pub since: Option<Millis>,
    /// One human sentence, e.g. `"value 0.93 > 0.9 for 10s"`.
    pub reason: String,
}

/// The answer of a detector to one observation.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// The detector's state after the observation.
    pub state: State,
    /// Whether `state` differs from the state answered by the previous call
    /// (the initial state counts as [`State::Ok`]).
    pub changed: bool,
    /// What the state is based on.
    pub evidence: Evidence,
}
