//! Probes: the heartbeat. HTTP, TCP and exec checks on an interval, each run
//! under a timeout. Every run yields `probe_success` (1 or 0) and
//! `probe_duration_seconds` for the target.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::targets::{Target, target_labels};
use super::{SourceConfig, SourceContext, SourceKind};
use crate::series::{Sample, now_millis};

/// Settings of a `kind: http_probe` source.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpProbeConfig {
    /// URLs to GET.
    #[serde(default)]
    pub targets: Vec<String>,
    /// `file_sd` files with more URLs.
    #[serde(default)]
    pub file_sd: Vec<PathBuf>,
    /// Accepted status codes; empty means any 2xx.
    #[serde(default)]
    pub expect_status: Vec<u16>,
}

/// Settings of a `kind: tcp_probe` source.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpProbeConfig {
    /// `host:port` targets.
    #[serde(default)]
    pub targets: Vec<String>,
    /// `file_sd` files with more targets.
    #[serde(default)]
    pub file_sd: Vec<PathBuf>,
    /// Targets from DNS (SRV, A or AAAA records), re-resolved on an interval.
    #[serde(default)]
    pub dns_sd: Option<crate::sources::dns_sd::DnsSdConfig>,
}

/// Settings of a `kind: exec_probe` source. The target is the source name.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecProbeConfig {
    /// Program and arguments (no shell).
    pub argv: Vec<String>,
    /// Extra environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// Run one probe check now. `Ok(())` is success; `Err` says why not.
pub async fn check(
    kind: &SourceKind,
    http: &reqwest::Client,
    target: &str,
    timeout: std::time::Duration,
) -> Result<(), String> {
    let fut = async {
        match kind {
            SourceKind::HttpProbe(p) => check_http(http, target, &p.expect_status).await,
            SourceKind::TcpProbe(_) => tokio::net::TcpStream::connect(target)
                .await
                .map(|_| ())
                .map_err(|e| format!("connect {target}: {e}")),
            SourceKind::ExecProbe(p) => {
                let mut cmd = tokio::process::Command::new(&p.argv[0]);
                cmd.args(&p.argv[1..])
                    .envs(&p.env)
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .kill_on_drop(true);
                let st = cmd.status().await.map_err(|e| format!("spawn: {e}"))?;
                if st.success() {
                    Ok(())
                } else {
                    Err(format!("exited with {st}"))
                }
            }
            _ => Err("not a probe".into()),
        }
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(format!("timed out after {timeout:?}")),
    }
}

/// One HTTP GET check: success when the status is in `expect` (or 2xx if empty).
pub async fn check_http(http: &reqwest::Client, url: &str, expect: &[u16]) -> Result<(), String> {
    let resp = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let code = resp.status().as_u16();
    let ok = if expect.is_empty() {
        resp.status().is_success()
    } else {
        expect.contains(&code)
    };
    if ok {
        Ok(())
    } else {
        Err(format!("GET {url}: status {code}"))
    }
}

/// Probe one target forever.
pub async fn run_target(cfg: &SourceConfig, ctx: &SourceContext, target: Target) {
    let base = target_labels(cfg, &target);
    // First collection one interval after start, not at once: a service
    // medic has just started gets that long to open its port.
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + cfg.interval.std(),
        cfg.interval.std(),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_ok = true;
    loop {
        tick.tick().await;
        let started = Instant::now();
        let result = check(
            &cfg.kind,
            &ctx.http,
            &target.address,
            cfg.effective_timeout().std(),
        )
        .await;
        let at = now_millis();
        let took = started.elapsed().as_secs_f64();
        if let Err(e) = &result {
            // Log the change to failing, not every failed run.
            if last_ok {
                tracing::warn!(source = %cfg.name, target = %target.address, error = %e, "probe failing");
            }
            ctx.metrics.source_error(&cfg.name, "probe");
        } else if !last_ok {
            tracing::info!(source = %cfg.name, target = %target.address, "probe passing again");
        }
        last_ok = result.is_ok();
        let samples = vec![
            Sample {
                name: "probe_success".into(),
                labels: base.clone(),
                value: if result.is_ok() { 1.0 } else { 0.0 },
                at,
            },
            Sample {
                name: "probe_duration_seconds".into(),
                labels: base.clone(),
                value: took,
                at,
            },
        ];
        if !ctx
            .emit(&cfg.name, &target.address, at, samples, false)
            .await
        {
            return; // engine gone: shutting down
        }
    }
}
