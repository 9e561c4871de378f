//! `kind: approval`: the manual gate of a runbook ("manual recovery =
//! recover × notify × acknowledge"). The step waits until a person
//! acknowledges the incident (console, CLI, API, or the signed link in the
//! notification the escalation policy sent) and then lets the next step
//! run, recording who approved. When nobody acknowledges within the step's
//! `timeout`, the step fails: the risky step is denied and the runbook's
//! `on_failure` and `escalate` steps run. An acknowledgement given before
//! the step started counts (the person already holds the incident). An
//! incident that resolves while the gate waits closes it: the next step is
//! not run (the runner re-checks the incident) and nobody is paged.
//!
//! Put a `notify` step (or rely on the route's escalation policy) before it
//! so that someone is asked.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ActionOutcome, ExecFuture, Executor, StepContext};
use crate::config::duration::Duration;
use crate::incidents::IncidentState;
use crate::stores::Store;

/// Settings of a `kind: approval` step (its `timeout` is the deadline).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalParams {
    /// How often to look for the acknowledgement (default 500ms).
    #[serde(default)]
    pub poll: Option<Duration>,
}

/// The approval gate.
pub struct Approval {
    params: ApprovalParams,
    store: Arc<dyn Store>,
}

impl Approval {
    /// Build.
    pub fn new(params: ApprovalParams, store: Arc<dyn Store>) -> Self {
        Approval { params, store }
    }
}

impl Executor for Approval {
    fn kind(&self) -> &'static str {
        "approval"
    }

    fn describe(&self) -> serde_json::Value {
        serde_json::json!({ "wait_for": "acknowledgement" })
    }

    fn target(&self, ctx: &StepContext) -> String {
        format!("incident-{}", ctx.incident.id)
    }

    fn supports_dry_run(&self) -> bool {
        true
    }

    fn execute<'a>(&'a self, ctx: &'a StepContext) -> ExecFuture<'a> {
        Box::pin(async move {
            if ctx.dry_run {
                return Ok(ActionOutcome {
                    summary: format!(
                        "would wait up to {:?} for an acknowledgement before the next step",
                        ctx.timeout
                    ),
                    details: serde_json::Value::Null,
                });
            }
            let poll = self
                .params
                .poll
                .map(|d| d.std())
                .unwrap_or(std::time::Duration::from_millis(500));
            let id = ctx.incident.id;
            loop {
                match self.store.incident(id) {
                    Ok(Some(i)) if i.acked_by.is_some() => {
                        let who = i.acked_by.unwrap_or_default();
                        return Ok(ActionOutcome {
                            summary: format!("approved: acknowledged by {who}"),
                            details: serde_json::json!({ "approved_by": who, "acked_at": i.acked_at }),
                        });
                    }
                    // Nothing to approve any more. Not a failure of recovery
                    // (that would escalate a resolved incident): the gate
                    // closes, and the runner's re-check stops the next step.
                    Ok(Some(i)) if i.state == IncidentState::Resolved => {
                        return Ok(ActionOutcome {
                            summary: "not approved: the incident resolved first; the next step will not run"
                                .into(),
                            details: serde_json::json!({ "approved_by": null, "resolved_at": i.resolved_at }),
                        });
                    }
                    Ok(None) => return Err(format!("incident {id} not found")),
                    Ok(Some(_)) => {}
                    Err(e) => {
                        tracing::warn!(incident = id, error = %e, "approval: cannot read the incident")
                    }
                }
                tokio::time::sleep(poll).await;
            }
        })
    }
}
