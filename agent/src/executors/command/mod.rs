//! `kind: command` — run a program with argv and environment, never a shell
//! string. Incident labels reach the program only as environment variables
//! (`MEDIC_LABEL_<NAME>`, and all of them as JSON in `MEDIC_LABELS`), so a
//! hostile label value is data, never code.
//!
//! The program runs in its own process group; on timeout (the runner drops the
//! future) the whole group is killed. It also dies if medic dies
//! (`PR_SET_PDEATHSIG`), so a crash cannot leave a half-done action running
//! unobserved: the journal marks it interrupted.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::process::{GroupGuard, child_command, read_limited};
use super::{ActionOutcome, ExecFuture, Executor, StepContext};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Parameters of a command step.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandParams {
    /// Program and arguments, used as they are (no templating, no shell).
    pub argv: Vec<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
}

/// The command executor.
pub struct Command {
    params: CommandParams,
}

impl Command {
    /// Build.
    pub fn new(params: CommandParams) -> Self {
        Command { params }
    }
}

/// `service.name` → `SERVICE_NAME`: environment-variable-safe label names.
pub fn env_name(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Most bytes of stdout and of stderr kept in the action's details.
const OUTPUT_LIMIT: u64 = 4096;

impl Executor for Command {
    fn kind(&self) -> &'static str {
        "command"
    }
    fn describe(&self) -> serde_json::Value {
        // Env values may be secrets: only their names go to the journal.
        serde_json::json!({
            "argv": self.params.argv,
            "env": self.params.env.keys().collect::<Vec<_>>(),
            "cwd": self.params.cwd,
        })
    }
    fn target(&self, _ctx: &StepContext) -> String {
        self.params.argv.join(" ")
    }
    fn execute<'a>(&'a self, ctx: &'a StepContext) -> ExecFuture<'a> {
        Box::pin(async move {
            let p = &self.params;
            let mut cmd = child_command(&p.argv);
            cmd.envs(&p.env);
            if let Some(d) = &p.cwd {
                cmd.current_dir(d);
            }
            let i = &ctx.incident;
            cmd.env("MEDIC_INCIDENT_ID", i.id.to_string())
                .env("MEDIC_DETECTOR", &i.detector)
                .env("MEDIC_SEVERITY", &i.severity)
                .env("MEDIC_STATE", i.state.as_str())
                .env("MEDIC_RUNBOOK", &ctx.runbook)
                .env("MEDIC_STEP", &ctx.step_name)
                .env("MEDIC_ATTEMPT", ctx.attempt.to_string())
                .env("MEDIC_IDEMPOTENCY_KEY", &ctx.idempotency_key)
                .env(
                    "MEDIC_LABELS",
                    serde_json::to_string(&i.labels).unwrap_or_default(),
                );
            for (k, v) in &i.labels {
                cmd.env(format!("MEDIC_LABEL_{}", env_name(k)), v);
            }
            if let Some(f) = ctx.fence {
                cmd.env("MEDIC_FENCE", f.to_string());
            }
            let mut child = cmd
                .spawn()
                .map_err(|e| format!("spawn {:?}: {e}", p.argv[0]))?;
            let _guard = GroupGuard::new(child.id());
            let mut out = child.stdout.take().expect("piped");
            let mut err = child.stderr.take().expect("piped");
            let (status, stdout, stderr) = tokio::join!(
                child.wait(),
                read_limited(&mut out, OUTPUT_LIMIT),
                read_limited(&mut err, OUTPUT_LIMIT)
            );
            let status = status.map_err(|e| format!("wait: {e}"))?;
            let details = serde_json::json!({
                "exit_code": status.code(),
                "stdout": stdout.text,
                "stderr": stderr.text,
            });
            if status.success() {
                Ok(ActionOutcome {
                    summary: format!("{:?} exited 0", p.argv[0]),
                    details,
                })
            } else {
                Err(format!(
                    "{:?} failed: {status}; stderr: {}",
                    p.argv[0],
                    stderr.text.trim()
                ))
            }
        })
    }
}
