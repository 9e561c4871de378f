//! `kind: restart` — restart a service that medic supervises.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ActionOutcome, ExecFuture, Executor, StepContext, template};
use crate::config::duration::Duration;
use crate::services::{StopOptions, StopSignal, Supervisor};

/// Parameters of a restart step.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartParams {
    /// Name of a service under `services:` in `medic.yaml`, or a template
    /// naming one, e.g. `"{{ labels.service }}"`.
    pub service: String,
    /// Stop the old process with this signal instead of the service's
    /// `stop_signal` (e.g. `KILL` for a hung process).
    #[serde(default)]
    pub stop_signal: Option<StopSignal>,
    /// Wait this long for it to exit before SIGKILL, instead of the service's `grace`.
    #[serde(default)]
    pub grace: Option<Duration>,
}

/// The restart executor.
pub struct Restart {
    params: RestartParams,
    supervisor: Supervisor,
}

impl Restart {
    /// Build.
    pub fn new(params: RestartParams, supervisor: Supervisor) -> Self {
        Restart { params, supervisor }
    }
}

impl Executor for Restart {
    fn kind(&self) -> &'static str {
        "restart"
    }
    fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "service": self.params.service,
            "stop_signal": self.params.stop_signal,
            "grace": self.params.grace,
        })
    }
    fn target(&self, ctx: &StepContext) -> String {
        template::render(&self.params.service, ctx, template::raw)
    }
    fn execute<'a>(&'a self, ctx: &'a StepContext) -> ExecFuture<'a> {
        Box::pin(async move {
            let service = self.target(ctx);
            let o = self
                .supervisor
                .restart_with(
                    &service,
                    StopOptions {
                        signal: self.params.stop_signal,
                        grace: self.params.grace.map(Duration::std),
                    },
                )
                .await
                .map_err(|e| e.to_string())?;
            Ok(ActionOutcome {
                summary: format!(
                    "restarted {} (pid {} → {})",
                    service,
                    o.old_pid
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "none".into()),
                    o.new_pid
                ),
                details: serde_json::to_value(&o).unwrap_or_default(),
            })
        })
    }
}
