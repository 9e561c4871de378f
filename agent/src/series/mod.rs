//! Series: the samples that sources produce and detectors consume.
//!
//! A sample is a metric name, a label set and a value at a time. Sources send
//! whole batches (one scrape, one probe) so detectors see a consistent view of
//! a target at one instant.

pub mod cache;
pub mod key;
pub mod selector;

use std::collections::BTreeMap;

/// Label names to values, sorted so that equal label sets compare and hash equal.
pub type Labels = BTreeMap<String, String>;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// One observed value of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name (`__name__`).
    pub name: String,
    /// Labels, without `__name__`.
    pub labels: Labels,
    /// The value.
    pub value: f64,
    /// When it was observed (the exposed timestamp, or the scrape time).
    pub at: Millis,
}

/// All samples one source produced in one collection (one scrape of one target,
/// one probe run).
#[derive(Debug, Clone)]
pub struct Batch {
    /// Name of the source in `medic.yaml`.
    pub source: String,
    /// The target within the source (address, URL, service name).
    pub target: String,
    /// When the collection finished.
    pub at: Millis,
    /// The samples.
    pub samples: Vec<Sample>,
    /// The batch holds every series of its target (a successful scrape), so a
    /// series seen before from this target but absent now is stale.
    pub complete: bool,
}

/// Wall-clock time in milliseconds. The only place the agent reads the clock
/// for sample times; detectors get time passed in.
pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}
