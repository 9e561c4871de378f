//! Executors: the things a runbook step can do, one folder per kind, behind
//! one trait, chosen by `kind:`.
//!
//! Executors never build shell strings from incident data: labels reach
//! commands as environment variables and webhooks as JSON fields.

pub mod approval;
pub mod command;
pub mod haproxy;
pub mod http;
pub mod notify;
pub mod plugin;
pub mod process;
pub mod restart;
pub mod template;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::incidents::Incident;
use crate::services::Supervisor;

/// What an executor knows about the step it runs.
#[derive(Debug, Clone)]
pub struct StepContext {
    /// The incident being recovered (as re-read just before the step).
    pub incident: Incident,
    /// Runbook name.
    pub runbook: String,
    /// Step path, e.g. `steps[0]`.
    pub step: String,
    /// Step name.
    pub step_name: String,
    /// Attempt number from 1.
    pub attempt: u32,
    /// Unique key of this attempt; receivers can use it to deduplicate.
    pub idempotency_key: String,
    /// A dry run: only executors that [`Executor::supports_dry_run`] are
    /// called, and they must change nothing.
    pub dry_run: bool,
    /// The step timeout (the runner enforces it; executors may pass it on).
    pub timeout: std::time::Duration,
    /// With leader election: the leader's fencing token this action was
    /// journalled under. Executors pass it on (`MEDIC_FENCE` to commands and
    /// plug-ins, the `X-Medic-Fence` header on `http` steps), so a target
    /// can refuse a token older than one it has already seen.
    pub fence: Option<i64>,
}

/// What an action did.
#[derive(Debug, Clone, Serialize)]
pub struct ActionOutcome {
    /// One line.
    pub summary: String,
    /// Structured details for the timeline.
    pub details: serde_json::Value,
}

/// Boxed future returned by executors (the trait must be object-safe).
pub type ExecFuture<'a> = Pin<Box<dyn Future<Output = Result<ActionOutcome, String>> + Send + 'a>>;

/// One kind of action.
pub trait Executor: Send + Sync {
    /// Kind name, as written in YAML.
    fn kind(&self) -> &'static str;
    /// Parameters for the journal. Must not contain secrets.
    fn describe(&self) -> serde_json::Value;
    /// What this action acts on, for the per-target lock and the guard rails
    /// (the runner prefixes the kind): `restart:web`, `http:POST http://…`,
    /// `command:/usr/bin/x arg`. Default: the parameters.
    fn target(&self, _ctx: &StepContext) -> String {
        self.describe().to_string()
    }
    /// Can be called with `ctx.dry_run` set to report what it would do.
    fn supports_dry_run(&self) -> bool {
        false
    }
    /// Do it. The runner applies the step timeout by dropping the future, so
    /// implementations must clean up on drop (kill child processes).
    fn execute<'a>(&'a self, ctx: &'a StepContext) -> ExecFuture<'a>;
}

/// What executors may use.
#[derive(Clone)]
pub struct ExecutorDeps {
    /// The process supervisor (for `restart`).
    pub supervisor: Supervisor,
    /// Shared HTTP client.
    pub http: reqwest::Client,
    /// The store (the approval gate reads acknowledgements).
    pub store: std::sync::Arc<dyn crate::stores::Store>,
}

/// Builds a step's executor from its action: the real executor in the
/// daemon ([`ActionConfig::build`]), a recording fake under `medic test`.
pub type BuildExecutor = Arc<dyn Fn(&ActionConfig) -> Box<dyn Executor> + Send + Sync>;

/// A step's action, chosen by `kind:`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionConfig {
    /// Restart a service that medic supervises.
    Restart(restart::RestartParams),
    /// Run a program (argv, never a shell string).
    Command(command::CommandParams),
    /// Make an HTTP request.
    Http(http::HttpParams),
    /// Send a JSON notification to a webhook.
    Notify(notify::NotifyParams),
    /// Run an external plug-in executor (JSON on stdin, JSON on stdout).
    Plugin(plugin::PluginParams),
    /// Drain, weight or shift traffic on HAProxy through its runtime API.
    Haproxy(haproxy::HaproxyParams),
    /// Wait for a person to acknowledge the incident before the next step;
    /// no acknowledgement within the timeout denies it (and escalates).
    Approval(approval::ApprovalParams),
}

impl ActionConfig {
    /// Kind name.
    pub fn kind(&self) -> &'static str {
        match self {
            ActionConfig::Restart(_) => "restart",
            ActionConfig::Command(_) => "command",
            ActionConfig::Http(_) => "http",
            ActionConfig::Notify(_) => "notify",
            ActionConfig::Plugin(_) => "plugin",
            ActionConfig::Haproxy(_) => "haproxy",
            ActionConfig::Approval(_) => "approval",
        }
    }

    /// Build the executor.
    pub fn build(&self, deps: &ExecutorDeps) -> Box<dyn Executor> {
        match self {
            ActionConfig::Restart(p) => {
                Box::new(restart::Restart::new(p.clone(), deps.supervisor.clone()))
            }
            ActionConfig::Command(p) => Box::new(command::Command::new(p.clone())),
            ActionConfig::Http(p) => Box::new(http::Http::new(p.clone(), deps.http.clone())),
            ActionConfig::Notify(p) => Box::new(notify::Notify::new(p.clone(), deps.http.clone())),
            ActionConfig::Plugin(p) => Box::new(plugin::Plugin::new(p.clone())),
            ActionConfig::Approval(p) => {
                Box::new(approval::Approval::new(p.clone(), deps.store.clone()))
            }
            ActionConfig::Haproxy(p) => {
                Box::new(haproxy::Haproxy::new(p.clone(), deps.http.clone()))
            }
        }
    }
}
