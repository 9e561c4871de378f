//! Prometheus scrape: GET a text-format `/metrics` endpoint on an interval.
//!
//! Like Prometheus, every scrape also yields `up` (1 if the scrape worked),
//! `scrape_duration_seconds` and `scrape_samples_scraped` for the target, so a
//! heartbeat detector can watch `up`. A malformed response fails the whole
//! scrape (as in Prometheus): it is counted, logged, and `up` is 0.

pub mod parser;

use std::path::PathBuf;
use std::time::Instant;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::targets::{Target, target_labels};
use super::{SourceConfig, SourceContext};
use crate::series::{Sample, now_millis};

/// Settings of a `kind: scrape` source.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// `host:port` targets.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Prometheus `file_sd` files (JSON or YAML) with more targets; re-read when they change.
    #[serde(default)]
    pub file_sd: Vec<PathBuf>,
    /// Targets from DNS (SRV, A or AAAA records), re-resolved on an interval.
    #[serde(default)]
    pub dns_sd: Option<crate::sources::dns_sd::DnsSdConfig>,
    /// Path of the metrics endpoint.
    #[serde(default = "default_path")]
    pub path: String,
    /// `http` or `https`.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// Responses larger than this many bytes are refused (protects medic's memory).
    #[serde(default = "default_max_bytes")]
    pub max_response_bytes: usize,
}

fn default_path() -> String {
    "/metrics".into()
}
fn default_scheme() -> String {
    "http".into()
}
fn default_max_bytes() -> usize {
    16 << 20
}

/// Scrape one target forever.
pub async fn run_target(
    cfg: &SourceConfig,
    sc: &ScrapeConfig,
    ctx: &SourceContext,
    target: Target,
) {
    let url = if target.address.contains("://") {
        target.address.clone()
    } else {
        format!("{}://{}{}", sc.scheme, target.address, sc.path)
    };
    let base = target_labels(cfg, &target);
    // First collection one interval after start, not at once: a service
    // medic has just started gets that long to open its port.
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + cfg.interval.std(),
        cfg.interval.std(),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let started = Instant::now();
        let result = scrape_once(
            ctx,
            &url,
            cfg.effective_timeout().std(),
            sc.max_response_bytes,
        )
        .await;
        let at = now_millis();
        let took = started.elapsed().as_secs_f64();
        let mut samples = Vec::new();
        let up = match result {
            Ok(parsed) => {
                for p in parsed {
                    let mut labels = base.clone();
                    // Exposed labels win over target labels, except job/instance
                    // which identify the target (Prometheus honor_labels=false
                    // would rename them; we keep it simple and let target win).
                    for (k, v) in p.labels {
                        if k != "job" && k != "instance" {
                            labels.insert(k, v);
                        }
                    }
                    samples.push(Sample {
                        name: p.name,
                        labels,
                        value: p.value,
                        at: p.timestamp_ms.unwrap_or(at),
                    });
                }
                1.0
            }
            Err((reason, msg)) => {
                tracing::warn!(source = %cfg.name, target = %target.address, reason, error = %msg, "scrape failed");
                ctx.metrics.source_error(&cfg.name, reason);
                0.0
            }
        };
        let n = samples.len() as f64;
        for (name, value) in [
            ("up", up),
            ("scrape_duration_seconds", took),
            ("scrape_samples_scraped", n),
        ] {
            samples.push(Sample {
                name: name.into(),
                labels: base.clone(),
                value,
                at,
            });
        }
        if !ctx
            .emit(&cfg.name, &target.address, at, samples, up == 1.0)
            .await
        {
            return; // engine gone: shutting down
        }
    }
}

async fn scrape_once(
    ctx: &SourceContext,
    url: &str,
    timeout: std::time::Duration,
    max_bytes: usize,
) -> Result<Vec<parser::ParsedSample>, (&'static str, String)> {
    let fut = async {
        let resp = ctx
            .http
            .get(url)
            .header("Accept", "text/plain;version=0.0.4")
            .send()
            .await
            .map_err(|e| ("http", e.to_string()))?;
        if !resp.status().is_success() {
            return Err(("status", format!("HTTP status {}", resp.status())));
        }
        let body = super::read_limited(resp, max_bytes).await?;
        let text =
            String::from_utf8(body).map_err(|_| ("parse", "response is not UTF-8".to_string()))?;
        parser::parse(&text).map_err(|e| ("parse", e.to_string()))
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err((
            "timeout",
            format!("no complete response within {timeout:?}"),
        )),
    }
}
