//! medic: detect failures and recover them, safely and durably.
//!
//! The data path, one folder per stage:
//! `sources` → `series` → `detectors` → `incidents` (via `engine`) →
//! `runbooks` → `executors` → verification → record (`stores`).
//! See ARCHITECTURE.md.

pub mod api;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod detectors;
pub mod engine;
pub mod executors;
pub mod incidents;
pub mod notifiers;
pub mod oncall;
pub mod runbooks;
pub mod series;
pub mod services;
pub mod sources;
pub mod stores;
pub mod telemetry;
