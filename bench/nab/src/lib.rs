//! NAB (Numenta Anomaly Benchmark) evaluation tools for medic.
//!
//! * [`scorer`]: the NAB scorer, re-implemented from `NAB_SCORING.md`
//!   (corpus, windows, profiles, probationary period, scaled sigmoid,
//!   exhaustive threshold optimisation, normalisation).
//! * [`runner`]: runs a streaming detector over every file of the corpus,
//!   strictly causally, and writes NAB's results layout.
//! * [`builtin`]: the detectors the `nab` binary knows by name.
//! * [`scoreboard`]: reads the published scores in `SCOREBOARD-dev.md`.
//! * [`report`]: writes `bench/results/nab.md`.
//! * [`time`]: `YYYY-MM-DD HH:MM:SS[.ffffff]` to epoch milliseconds (UTC).

pub mod builtin;
pub mod report;
pub mod runner;
pub mod scoreboard;
pub mod scorer;
pub mod time;

use std::fmt;
use std::path::Path;

/// An error with a human-readable message (file, line and cause).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    pub fn new(message: impl Into<String>) -> Self {
        Error(message.into())
    }

    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Reads a whole text file, naming the file in the error.
pub(crate) fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::new(format!("cannot read {}: {e}", path.display())))
}

#[cfg(test)]
pub(crate) mod testutil;
