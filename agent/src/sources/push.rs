//! Push receivers: sources that other systems send to (Prometheus
//! remote_write, OTLP, Alertmanager webhooks), served on medic's own listener.
//!
//! A push source does not poll. While it is configured, its task registers a
//! [`Receiver`] in the [`PushRegistry`]; the HTTP routes look the receiver up
//! on every request, so a reload that changes or removes the source takes
//! effect at once. Each receiver carries the limits that protect medic:
//! maximum body size (413), maximum active series and labels per series
//! (429 / 400 or an OTLP partial success), all counted in
//! `medic_source_errors_total{reason}`.

use std::sync::{Arc, Mutex, RwLock};

use axum::http::StatusCode;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{SourceConfig, SourceContext};
use crate::config::duration::Duration;
use crate::series::{Labels, Millis};

/// Limits of one push source. Defaults suit one team's services.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct IngestLimits {
    /// Largest accepted request body in bytes, as sent (compressed). Larger: 413.
    pub max_body_bytes: usize,
    /// Largest accepted body after decompression. Larger: 413.
    pub max_decompressed_bytes: usize,
    /// Most distinct series kept active at once. A request that would add more
    /// is refused (429 for remote_write, a partial success for OTLP).
    pub max_series: usize,
    /// Most labels on one series (metric name included).
    pub max_labels_per_series: usize,
    /// Longest label name or value, in bytes.
    pub max_label_bytes: usize,
    /// A series not seen for this long stops counting as active.
    pub series_ttl: Duration,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            max_body_bytes: 8 << 20,
            max_decompressed_bytes: 64 << 20,
            max_series: 100_000,
            max_labels_per_series: 64,
            max_label_bytes: 2048,
            series_ttl: Duration::from_secs(600),
        }
    }
}

impl IngestLimits {
    /// Why a label set is refused, if it is.
    pub fn check_labels<'a>(
        &self,
        labels: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), String> {
        let n = labels.len();
        if n > self.max_labels_per_series {
            return Err(format!(
                "series has {n} labels; the limit is {}",
                self.max_labels_per_series
            ));
        }
        for (k, v) in labels {
            if k.len() > self.max_label_bytes || v.len() > self.max_label_bytes {
                return Err(format!(
                    "label {:?} is longer than {} bytes",
                    truncate(k, 64),
                    self.max_label_bytes
                ));
            }
        }
        Ok(())
    }
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Hash of a series identity (name and labels), for the active-series set.
pub fn series_key(name: &str, labels: &Labels) -> u64 {
    crate::series::key::series_key(name, labels)
}

/// The set of active series of one source, bounded by `max_series`.
#[derive(Debug)]
pub struct SeriesLimiter {
    max: usize,
    ttl: Millis,
    last_seen: crate::series::key::KeyMap<Millis>,
    last_gc: Millis,
}

impl SeriesLimiter {
    /// Empty.
    pub fn new(max: usize, ttl: Millis) -> Self {
        SeriesLimiter {
            max,
            ttl,
            last_seen: Default::default(),
            last_gc: 0,
        }
    }

    /// Active series now.
    pub fn active(&self) -> usize {
        self.last_seen.len()
    }

    fn gc(&mut self, now: Millis) {
        let ttl = self.ttl;
        self.last_seen.retain(|_, seen| now - *seen <= ttl);
        self.last_gc = now;
    }

    /// Admit all of `keys` or none: `Err(n)` when `n` new series would exceed
    /// the limit. Admitted keys are marked seen at `now`.
    pub fn admit_all(&mut self, keys: &[u64], now: Millis) -> Result<(), usize> {
        let new = |s: &Self| {
            let mut seen = std::collections::HashSet::new();
            keys.iter()
                .filter(|k| !s.last_seen.contains_key(k) && seen.insert(**k))
                .count()
        };
        let mut n = new(self);
        if self.last_seen.len() + n > self.max {
            self.gc(now);
            n = new(self);
            if self.last_seen.len() + n > self.max {
                return Err(self.last_seen.len() + n - self.max);
            }
        } else if now - self.last_gc > self.ttl {
            self.gc(now);
        }
        for k in keys {
            self.last_seen.insert(*k, now);
        }
        Ok(())
    }

    /// Admit each key that fits; answers which were admitted (for partial
    /// success answers).
    pub fn admit_each(&mut self, keys: &[u64], now: Millis) -> Vec<bool> {
        if now - self.last_gc > self.ttl {
            self.gc(now);
        }
        keys.iter()
            .map(|k| {
                if let Some(seen) = self.last_seen.get_mut(k) {
                    *seen = now;
                    return true;
                }
                if self.last_seen.len() >= self.max {
                    self.gc(now);
                    if self.last_seen.len() >= self.max {
                        return false;
                    }
                }
                self.last_seen.insert(*k, now);
                true
            })
            .collect()
    }
}

/// A configured push source, as the HTTP handlers see it.
pub struct Receiver<C> {
    /// Source name (`source` label of medic's metrics, `job` default).
    pub name: String,
    /// Labels added to every sample (where not already set).
    pub labels: Labels,
    /// Kind-specific settings.
    pub config: C,
    /// Limits.
    pub limits: IngestLimits,
    /// Active series.
    pub series: Mutex<SeriesLimiter>,
    /// Where samples go.
    pub ctx: SourceContext,
}

impl<C> Receiver<C> {
    /// Build from the source's config.
    pub fn new(cfg: &SourceConfig, config: C, limits: IngestLimits, ctx: SourceContext) -> Self {
        let ttl = limits.series_ttl.std().as_millis() as Millis;
        Receiver {
            name: cfg.name.value.clone(),
            labels: cfg.labels.clone(),
            config,
            series: Mutex::new(SeriesLimiter::new(limits.max_series, ttl)),
            limits,
            ctx,
        }
    }

    /// Count a refused request or data point.
    pub fn reject(&self, reason: &str, n: u64) {
        self.ctx
            .metrics
            .source_errors
            .get_or_create(&crate::telemetry::SourceErrorLabels {
                source: self.name.clone(),
                reason: reason.to_string(),
            })
            .inc_by(n);
    }

    fn labels(&self) -> crate::telemetry::SourceLabels {
        crate::telemetry::SourceLabels {
            source: self.name.clone(),
        }
    }

    /// Publish the active-series gauge.
    pub fn publish_active(&self, n: usize) {
        let l = self.labels();
        self.ctx
            .metrics
            .active_series
            .get_or_create(&l)
            .set(n as i64);
    }

    /// Count accepted items that are not samples (alerts).
    pub fn count_ingested(&self, n: u64) {
        let l = self.labels();
        self.ctx
            .metrics
            .samples_ingested
            .get_or_create(&l)
            .inc_by(n);
    }

    /// The source labels merged under `labels` (the sample's own win).
    pub fn add_source_labels(&self, labels: &mut Labels) {
        for (k, v) in &self.labels {
            labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}

/// One slot per push kind (at most one source of each kind is served on
/// medic's listener; config validation enforces it).
pub struct Slot<T>(RwLock<Option<Arc<T>>>);

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot(RwLock::new(None))
    }
}

impl<T> Slot<T> {
    /// The receiver now in force.
    pub fn get(&self) -> Option<Arc<T>> {
        self.0.read().ok().and_then(|g| g.clone())
    }

    /// Put `r` in force until the returned guard drops (the source task
    /// ends): then the slot empties unless a newer receiver replaced it.
    pub fn install(self: &Arc<Self>, r: Arc<T>) -> SlotGuard<T> {
        if let Ok(mut g) = self.0.write() {
            *g = Some(r.clone());
        }
        SlotGuard {
            slot: self.clone(),
            mine: r,
        }
    }
}

/// Clears its slot on drop if the slot still holds this receiver.
pub struct SlotGuard<T> {
    slot: Arc<Slot<T>>,
    mine: Arc<T>,
}

impl<T> Drop for SlotGuard<T> {
    fn drop(&mut self) {
        if let Ok(mut g) = self.slot.0.write()
            && g.as_ref().is_some_and(|cur| Arc::ptr_eq(cur, &self.mine))
        {
            *g = None;
        }
    }
}

/// The push receivers now in force, shared by the source tasks and the API.
#[derive(Default)]
pub struct PushRegistry {
    /// `POST /api/v1/write`.
    pub remote_write: Arc<Slot<Receiver<super::remote_write::RemoteWriteConfig>>>,
    /// `POST /api/v1/alertmanager`.
    pub alertmanager: Arc<Slot<Receiver<super::alertmanager::AlertmanagerConfig>>>,
    /// `POST /v1/traces`, `POST /v1/metrics`.
    pub otlp: Arc<Slot<super::otlp::OtlpReceiver>>,
}

/// Why a request was refused: the HTTP status and a reason for the sender.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// 4xx status.
    pub status: StatusCode,
    /// Counted as `reason` in `medic_source_errors_total`.
    pub reason: &'static str,
    /// Human-readable detail, sent back.
    pub message: String,
}

/// A [`Refusal`].
pub fn refuse(status: StatusCode, reason: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        reason,
        message: message.into(),
    }
}

/// Read a request body up to `limit` bytes: `Err(413 text)` beyond it.
pub async fn read_body(body: axum::body::Body, limit: usize) -> Result<axum::body::Bytes, String> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|e| format!("request body larger than {limit} bytes or unreadable: {e}"))
}

#[cfg(test)]
#[path = "push_tests.rs"]
mod tests;
