//! `kind: haproxy` — move traffic on a real load balancer through HAProxy's
//! runtime API (its stats socket, unix or TCP; the socket needs `level admin`).
//!
//! Actions on one server of a backend: `drain` (no new connections),
//! `maint` (no traffic at all), `ready` (back in service), `weight` (a new
//! weight), and `shift`: move traffic from `server` to `to` in weighted steps
//! (e.g. 100/0 → 50/50 → 0/100) with a check between steps; a failing check
//! puts the weights back as they were and fails the step. Afterwards medic can
//! confirm that traffic really flows to the new server (`confirm_traffic_to`:
//! its session count grows) — the step's `verify` then checks that requests
//! through HAProxy succeed.

pub mod runtime_api;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ActionOutcome, ExecFuture, Executor, StepContext, template};
use crate::config::duration::Duration;
use runtime_api::{command, expect_empty, parse_stat, parse_weights};

/// What to do to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HaproxyAction {
    /// `set server <backend>/<server> state drain`.
    Drain,
    /// `set server <backend>/<server> state maint`.
    Maint,
    /// `set server <backend>/<server> state ready`.
    Ready,
    /// `set server <backend>/<server> weight <weight>`.
    Weight,
    /// Shift traffic from `server` to `to` in `steps`.
    Shift,
}

impl HaproxyAction {
    fn as_str(self) -> &'static str {
        match self {
            HaproxyAction::Drain => "drain",
            HaproxyAction::Maint => "maint",
            HaproxyAction::Ready => "ready",
            HaproxyAction::Weight => "weight",
            HaproxyAction::Shift => "shift",
        }
    }
}

/// Parameters of an haproxy step.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HaproxyParams {
    /// Runtime API address: a unix socket path (`/run/haproxy/admin.sock`)
    /// or `host:port`.
    pub socket: String,
    /// Backend name.
    pub backend: String,
    /// Server to act on, or a template naming it (`"{{ labels.server }}"`).
    pub server: String,
    /// `drain`, `maint`, `ready`, `weight` or `shift`.
    pub action: HaproxyAction,
    /// For `weight`: the new weight (0–256).
    #[serde(default)]
    pub weight: Option<u32>,
    /// For `shift`: the server that takes the traffic over.
    #[serde(default)]
    pub to: Option<String>,
    /// For `shift`: the weight left on `server` after each step, `to` getting
    /// `100 - w` (e.g. `[75, 50, 25, 0]`).
    #[serde(default = "default_steps")]
    pub steps: Vec<u32>,
    /// For `shift`: wait this long after each step before checking.
    #[serde(default = "default_interval")]
    pub interval: Duration,
    /// For `shift`: after each step an HTTP GET of this URL must pass
    /// (`expect_status`, default any 2xx), or the weights are rolled back.
    #[serde(default)]
    pub check: Option<String>,
    /// Accepted status codes for `check`.
    #[serde(default)]
    pub expect_status: Vec<u16>,
    /// Afterwards, wait until this server's session count grows (traffic
    /// really reaches it). Default for `shift`: `to`.
    #[serde(default)]
    pub confirm_traffic_to: Option<String>,
    /// How long to wait for that.
    #[serde(default = "default_confirm_within")]
    pub confirm_within: Duration,
}

fn default_steps() -> Vec<u32> {
    vec![50, 0]
}
fn default_interval() -> Duration {
    Duration::from_secs(2)
}
fn default_confirm_within() -> Duration {
    Duration::from_secs(10)
}

/// One runtime API command never takes longer than this.
const API_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The haproxy executor.
pub struct Haproxy {
    params: HaproxyParams,
    http: reqwest::Client,
}

impl Haproxy {
    /// Build.
    pub fn new(params: HaproxyParams, http: reqwest::Client) -> Self {
        Haproxy { params, http }
    }

    /// Check the parameters (at load time).
    pub fn validate(p: &HaproxyParams) -> Result<(), String> {
        match p.action {
            HaproxyAction::Weight if p.weight.is_none_or(|w| w > 256) => {
                Err("action weight needs weight: 0..256".into())
            }
            HaproxyAction::Shift if p.to.is_none() => Err("action shift needs to:".into()),
            HaproxyAction::Shift if p.steps.is_empty() || p.steps.iter().any(|w| *w > 100) => {
                Err("shift steps are weights 0..100".into())
            }
            _ => template::check(&p.server).map_err(|e| format!("server: {e}")),
        }
    }

    async fn api(&self, cmd: &str) -> Result<String, String> {
        command(&self.params.socket, cmd, API_TIMEOUT).await
    }

    async fn set(&self, cmd: String) -> Result<(), String> {
        let a = self.api(&cmd).await?;
        expect_empty(&cmd, &a)
    }

    async fn set_weight(&self, server: &str, w: u32) -> Result<(), String> {
        self.set(format!(
            "set server {}/{server} weight {w}",
            self.params.backend
        ))
        .await
    }

    async fn stats(&self) -> Result<serde_json::Value, String> {
        let s = parse_stat(&self.api("show stat").await?, &self.params.backend)?;
        Ok(s.into_iter()
            .map(|(k, v)| {
                (
                    k,
                    serde_json::json!({"status": v.status, "weight": v.weight, "sessions": v.sessions_total}),
                )
            })
            .collect())
    }

    async fn sessions(&self, server: &str) -> Result<u64, String> {
        let s = parse_stat(&self.api("show stat").await?, &self.params.backend)?;
        s.get(server)
            .map(|s| s.sessions_total)
            .ok_or_else(|| format!("backend {} has no server {server}", self.params.backend))
    }

    /// Shift traffic step by step, rolling back on a failed check.
    async fn shift(&self, server: &str, to: &str) -> Result<Vec<String>, String> {
        let p = &self.params;
        let before = parse_weights(
            &self
                .api(&format!("show servers state {}", p.backend))
                .await?,
        )?;
        let (Some(&w_from), Some(&w_to)) = (before.get(server), before.get(to)) else {
            return Err(format!(
                "backend {} needs servers {server} and {to}",
                p.backend
            ));
        };
        let mut done = Vec::new();
        for &w in &p.steps {
            self.set_weight(server, w).await?;
            self.set_weight(to, 100 - w).await?;
            done.push(format!("{server}={w} {to}={}", 100 - w));
            tokio::time::sleep(p.interval.std()).await;
            if let Some(url) = &p.check
                && let Err(e) =
                    crate::sources::probe::check_http(&self.http, url, &p.expect_status).await
            {
                let rollback = async {
                    self.set_weight(server, w_from).await?;
                    self.set_weight(to, w_to).await
                }
                .await;
                return Err(format!(
                    "check after {server}={w} failed ({e}); weights {}",
                    match rollback {
                        Ok(()) => format!("rolled back to {server}={w_from} {to}={w_to}"),
                        Err(r) => format!("NOT rolled back: {r}"),
                    }
                ));
            }
        }
        Ok(done)
    }

    async fn run(&self, ctx: &StepContext) -> Result<ActionOutcome, String> {
        let p = &self.params;
        let server = self.target_server(ctx);
        let confirm = p.confirm_traffic_to.clone().or_else(|| {
            (p.action == HaproxyAction::Shift)
                .then(|| p.to.clone())
                .flatten()
        });
        let before = self.stats().await?;
        let sessions_before = match &confirm {
            Some(c) => Some(self.sessions(c).await?),
            None => None,
        };
        let what = match p.action {
            HaproxyAction::Drain | HaproxyAction::Maint | HaproxyAction::Ready => {
                self.set(format!(
                    "set server {}/{server} state {}",
                    p.backend,
                    p.action.as_str()
                ))
                .await?;
                format!("{}/{server} set to {}", p.backend, p.action.as_str())
            }
            HaproxyAction::Weight => {
                let w = p.weight.unwrap_or(0);
                self.set_weight(&server, w).await?;
                format!("{}/{server} weight set to {w}", p.backend)
            }
            HaproxyAction::Shift => {
                let to = p.to.clone().unwrap_or_default();
                let steps = self.shift(&server, &to).await?;
                format!(
                    "{}: traffic shifted from {server} to {to} ({})",
                    p.backend,
                    steps.join(" → ")
                )
            }
        };
        let mut summary = what;
        if let (Some(c), Some(n0)) = (&confirm, sessions_before) {
            let deadline = tokio::time::Instant::now() + p.confirm_within.std();
            loop {
                let n = self.sessions(c).await?;
                if n > n0 {
                    summary.push_str(&format!("; traffic reaches {c} ({} new sessions)", n - n0));
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(format!(
                        "{summary}, but no traffic reached {}/{c} within {}",
                        p.backend, p.confirm_within
                    ));
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
        let after = self.stats().await?;
        Ok(ActionOutcome {
            summary,
            details: serde_json::json!({"before": before, "after": after}),
        })
    }

    fn target_server(&self, ctx: &StepContext) -> String {
        template::render(&self.params.server, ctx, template::raw)
    }
}

impl Executor for Haproxy {
    fn kind(&self) -> &'static str {
        "haproxy"
    }
    fn describe(&self) -> serde_json::Value {
        serde_json::to_value(&self.params).unwrap_or_default()
    }
    fn target(&self, ctx: &StepContext) -> String {
        format!("{}/{}", self.params.backend, self.target_server(ctx))
    }
    fn execute<'a>(&'a self, ctx: &'a StepContext) -> ExecFuture<'a> {
        Box::pin(self.run(ctx))
    }
}

#[cfg(test)]
mod tests;
