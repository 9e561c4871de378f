//! Sources: where samples come from.
//!
//! Each source kind lives in its own folder with its config and code. A source
//! runs one task per target; every collection becomes one [`Batch`] sent to the
//! detection engine.

pub mod alertmanager;
pub mod dns_sd;
pub mod otlp;
pub mod probe;
pub mod promql;
pub mod push;
pub mod remote_write;
pub mod scrape;
pub mod targets;

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::duration::Duration;
use crate::config::spanned::Spanned;
use crate::series::{Batch, Labels};
use crate::telemetry::Metrics;

/// One entry of `sources:` in `medic.yaml`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct SourceConfig {
    /// Unique name; becomes the `job` label of its samples.
    pub name: Spanned<String>,
    /// How often each target is collected.
    #[serde(default = "default_interval")]
    pub interval: Duration,
    /// Give up on one collection after this long (default: the interval).
    #[serde(default)]
    pub timeout: Option<Duration>,
    /// Labels added to every sample of this source.
    #[serde(default)]
    pub labels: Labels,
    /// What kind of source, and its settings.
    #[serde(flatten)]
    pub kind: SourceKind,
}

fn default_interval() -> Duration {
    Duration::from_secs(10)
}

impl SourceConfig {
    /// The collection timeout in force.
    pub fn effective_timeout(&self) -> Duration {
        self.timeout.unwrap_or(self.interval)
    }
}

/// The kinds of source, chosen by `kind:`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceKind {
    /// Prometheus text-format scrape of `/metrics` endpoints.
    Scrape(scrape::ScrapeConfig),
    /// HTTP GET probe: success when the status is as expected within the timeout.
    HttpProbe(probe::HttpProbeConfig),
    /// TCP connect probe.
    TcpProbe(probe::TcpProbeConfig),
    /// Run a program: success when it exits 0 within the timeout.
    ExecProbe(probe::ExecProbeConfig),
    /// Instant PromQL queries against a Prometheus-compatible API.
    Promql(promql::PromqlConfig),
    /// Prometheus remote_write receiver at `POST /api/v1/write`.
    RemoteWrite(remote_write::RemoteWriteConfig),
    /// Alertmanager webhook receiver at `POST /api/v1/alertmanager`.
    Alertmanager(alertmanager::AlertmanagerConfig),
    /// OTLP receiver: traces (as RED series) and metrics at `POST /v1/traces`
    /// and `POST /v1/metrics`, and over gRPC on `grpc_listen`.
    Otlp(otlp::OtlpConfig),
}

impl SourceKind {
    /// Short kind name, as written in YAML.
    pub fn name(&self) -> &'static str {
        match self {
            SourceKind::Scrape(_) => "scrape",
            SourceKind::HttpProbe(_) => "http_probe",
            SourceKind::TcpProbe(_) => "tcp_probe",
            SourceKind::ExecProbe(_) => "exec_probe",
            SourceKind::Promql(_) => "promql",
            SourceKind::RemoteWrite(_) => "remote_write",
            SourceKind::Alertmanager(_) => "alertmanager",
            SourceKind::Otlp(_) => "otlp",
        }
    }

    /// Others send to it (no targets, no interval).
    pub fn is_push(&self) -> bool {
        matches!(
            self,
            SourceKind::RemoteWrite(_) | SourceKind::Alertmanager(_) | SourceKind::Otlp(_)
        )
    }
}

/// What a running source needs from the rest of medic.
#[derive(Clone)]
pub struct SourceContext {
    /// Where batches go.
    pub batches: mpsc::Sender<Batch>,
    /// medic's own metrics.
    pub metrics: Arc<Metrics>,
    /// One HTTP client shared by all HTTP sources (connection reuse).
    pub http: reqwest::Client,
    /// Directory `file_sd` paths are relative to.
    pub base_dir: std::path::PathBuf,
    /// Push receivers in force, read by the HTTP routes.
    pub push: Arc<push::PushRegistry>,
    /// The engine, for sources that raise incidents directly (Alertmanager).
    pub engine: mpsc::Sender<crate::engine::Command>,
}

impl SourceContext {
    /// Count and send one collection's samples to the engine; `complete` when
    /// they are every series of the target. False when the engine is gone
    /// (shutting down).
    pub async fn emit(
        &self,
        source: &str,
        target: &str,
        at: crate::series::Millis,
        samples: Vec<crate::series::Sample>,
        complete: bool,
    ) -> bool {
        self.metrics
            .samples_ingested
            .get_or_create(&crate::telemetry::SourceLabels {
                source: source.to_string(),
            })
            .inc_by(samples.len() as u64);
        let batch = Batch {
            source: source.to_string(),
            target: target.to_string(),
            at,
            samples,
            complete,
        };
        self.batches.send(batch).await.is_ok()
    }
}

/// Read an HTTP response body of at most `max_bytes` (pull sources): a larger
/// one is refused as `too_large` without reading the rest.
pub async fn read_limited(
    mut resp: reqwest::Response,
    max_bytes: usize,
) -> Result<Vec<u8>, (&'static str, String)> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| ("http", e.to_string()))? {
        body.extend_from_slice(&chunk);
        if body.len() > max_bytes {
            return Err((
                "too_large",
                format!("response larger than {max_bytes} bytes"),
            ));
        }
    }
    Ok(body)
}

/// Start a source; the returned task runs until aborted.
pub fn spawn(cfg: SourceConfig, ctx: SourceContext) -> JoinHandle<()> {
    tokio::spawn(async move {
        match &cfg.kind {
            SourceKind::Promql(p) => promql::run(&cfg, p, &ctx).await,
            SourceKind::RemoteWrite(r) => remote_write::run(&cfg, r, &ctx).await,
            SourceKind::Alertmanager(a) => alertmanager::run(&cfg, a, &ctx).await,
            SourceKind::Otlp(o) => otlp::run(&cfg, o, &ctx).await,
            _ => targets::run_source(cfg, ctx).await,
        }
    })
}
