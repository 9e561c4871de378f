//! `kind: plugin` — an executor in any language: an executable that reads
//! one JSON document (the step) on stdin and answers one JSON document (the
//! result) on stdout. The protocol is in `docs/plugins.md`.
//!
//! The program is started from `argv` (never a shell), in its own process
//! group. Incident data reaches it only inside the JSON on stdin, so a hostile
//! label value is data, never code. When the step times out (the runner drops
//! the future), when stdout passes `max_output`, or when the program exits
//! and leaves children holding its pipes, the whole group is killed. Env values
//! marked `secret` are never journalled or logged, and are blanked out of the
//! output medic keeps.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::process::{Captured, GroupGuard, child_command, read_limited, read_up_to};
use super::{ActionOutcome, ExecFuture, Executor, StepContext, template};

/// Version of the stdin/stdout protocol, sent as `protocol` and `MEDIC_PLUGIN_PROTOCOL`.
pub const PROTOCOL: u32 = 1;

/// Parameters of a plugin step.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginParams {
    /// Program and arguments, used as they are (no templating, no shell). A
    /// relative program path containing `/` is relative to the runbook file.
    pub argv: Vec<String>,
    /// Free-form parameters, handed to the plug-in as `params`.
    #[serde(default)]
    pub params: serde_json::Value,
    /// Environment variables: a string, or `{value: ..., secret: true}` /
    /// `{from_env: NAME, secret: true}` for values that must never be logged.
    #[serde(default)]
    pub env: BTreeMap<String, EnvValue>,
    /// What the step acts on, e.g. `"{{ labels.instance }}"`: the key guard
    /// rails count and lock by, and `target` in the plug-in's input. Default:
    /// the program path.
    #[serde(default)]
    pub target: Option<String>,
    /// During a dry run, call the plug-in with `dry_run: true` (it promises
    /// to change nothing then) and record its answer. Otherwise a dry run does
    /// not start it at all.
    #[serde(default)]
    pub dry_run_capable: bool,
    /// Most bytes accepted on stdout; a plug-in that writes more is killed
    /// and the step fails.
    #[serde(default = "default_max_output")]
    pub max_output: u64,
    /// Working directory.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
}

fn default_max_output() -> u64 {
    64 * 1024
}

/// Most bytes of stderr kept in the action's details.
const STDERR_LIMIT: u64 = 4096;

/// How long output may stay open after the plug-in exited (children it left
/// behind holding the pipes) before the group is killed.
const EXIT_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// One environment variable of a plug-in.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum EnvValue {
    /// A plain value, shown in the journal.
    Plain(String),
    /// A value with options.
    Marked(MarkedEnv),
}

/// An environment value given with options.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkedEnv {
    /// The value.
    #[serde(default)]
    pub value: Option<String>,
    /// Take the value from this variable of medic's own environment.
    #[serde(default)]
    pub from_env: Option<String>,
    /// Never journal, log or show the value.
    #[serde(default)]
    pub secret: bool,
}

impl EnvValue {
    fn secret(&self) -> bool {
        matches!(self, EnvValue::Marked(m) if m.secret)
    }
    /// The value to pass, or why there is none.
    fn resolve(&self) -> Result<String, String> {
        match self {
            EnvValue::Plain(v) => Ok(v.clone()),
            EnvValue::Marked(MarkedEnv {
                value: Some(v),
                from_env: None,
                ..
            }) => Ok(v.clone()),
            EnvValue::Marked(MarkedEnv {
                value: None,
                from_env: Some(n),
                ..
            }) => std::env::var(n).map_err(|_| format!("medic's environment has no {n}")),
            EnvValue::Marked(_) => Err("give exactly one of value and from_env".into()),
        }
    }
    /// As shown in the journal.
    fn shown(&self) -> serde_json::Value {
        match self {
            _ if self.secret() => "<secret>".into(),
            EnvValue::Plain(v) => v.as_str().into(),
            EnvValue::Marked(m) => serde_json::json!({"value": m.value, "from_env": m.from_env}),
        }
    }
}

/// What a plug-in answers on stdout.
#[derive(Debug, Deserialize)]
struct Answer {
    ok: bool,
    #[serde(default)]
    message: String,
    #[serde(default)]
    details: serde_json::Value,
}

/// The plugin executor.
pub struct Plugin {
    params: PluginParams,
}

impl Plugin {
    /// Build.
    pub fn new(params: PluginParams) -> Self {
        Plugin { params }
    }

    /// The document the plug-in reads on stdin.
    pub fn input(&self, ctx: &StepContext) -> serde_json::Value {
        let i = &ctx.incident;
        serde_json::json!({
            "protocol": PROTOCOL,
            "incident": {
                "id": i.id,
                "detector": i.detector,
                "labels": i.labels,
                "severity": i.severity,
                "summary": i.summary,
                "state": i.state.as_str(),
                "fingerprint": i.fingerprint,
            },
            "runbook": ctx.runbook,
            "step": ctx.step_name,
            "target": self.target(ctx),
            "params": self.params.params,
            "attempt": ctx.attempt,
            "idempotency_key": ctx.idempotency_key,
            "dry_run": ctx.dry_run,
            "timeout_ms": ctx.timeout.as_millis() as u64,
            "fence": ctx.fence,
        })
    }

    /// Replace every secret value in `s`.
    fn redact(&self, mut s: String) -> String {
        for v in self.params.env.values().filter(|v| v.secret()) {
            if let Ok(secret) = v.resolve()
                && !secret.is_empty()
            {
                s = s.replace(&secret, "<secret>");
            }
        }
        s
    }

    async fn run(&self, ctx: &StepContext) -> Result<ActionOutcome, String> {
        let p = &self.params;
        let program = &p.argv[0];
        let mut cmd = child_command(&p.argv);
        cmd.stdin(std::process::Stdio::piped());
        for (k, v) in &p.env {
            let value = v.resolve().map_err(|e| format!("env {k}: {e}"))?;
            cmd.env(k, value);
        }
        if let Some(d) = &p.cwd {
            cmd.current_dir(d);
        }
        cmd.env("MEDIC_PLUGIN_PROTOCOL", PROTOCOL.to_string())
            .env("MEDIC_INCIDENT_ID", ctx.incident.id.to_string())
            .env("MEDIC_ATTEMPT", ctx.attempt.to_string())
            .env("MEDIC_IDEMPOTENCY_KEY", &ctx.idempotency_key)
            .env("MEDIC_DRY_RUN", if ctx.dry_run { "1" } else { "0" });
        if let Some(f) = ctx.fence {
            cmd.env("MEDIC_FENCE", f.to_string());
        }
        let input = serde_json::to_vec(&self.input(ctx)).unwrap_or_default();
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("plug-in {program:?} did not start: {e}"))?;
        let group = GroupGuard::new(child.id());
        let stdin = child.stdin.take();
        let mut out = child.stdout.take().expect("piped");
        let mut err = child.stderr.take().expect("piped");
        let (io_done, io_done_rx) = tokio::sync::oneshot::channel::<()>();
        let io = async {
            let write = async {
                // A plug-in that does not read its input is allowed to exit.
                if let Some(mut s) = stdin {
                    let _ = s.write_all(&input).await;
                    let _ = s.shutdown().await;
                }
            };
            let read_out = async {
                let r = read_up_to(&mut out, p.max_output).await;
                if r.1 {
                    group.kill();
                }
                r
            };
            let (_, out, err) = tokio::join!(write, read_out, read_limited(&mut err, STDERR_LIMIT));
            let _ = io_done.send(());
            (out, err)
        };
        let wait = async {
            let status = child.wait().await;
            if tokio::time::timeout(EXIT_GRACE, io_done_rx).await.is_err() {
                group.kill();
            }
            status
        };
        let (((stdout, too_much), stderr), status) = tokio::join!(io, wait);
        let status = status.map_err(|e| format!("wait for plug-in: {e}"))?;
        let stderr = Captured {
            text: self.redact(stderr.text),
            ..stderr
        };
        let stderr_note = if stderr.text.trim().is_empty() {
            String::new()
        } else {
            format!("; stderr: {}", stderr.text.trim())
        };
        if too_much {
            return Err(format!(
                "plug-in {program:?} wrote more than {} bytes on stdout and was killed{stderr_note}",
                p.max_output
            ));
        }
        let stdout = self.redact(String::from_utf8_lossy(&stdout).into_owned());
        let answer = serde_json::from_str::<Answer>(stdout.trim());
        let answer = match (status.success(), answer) {
            (true, Ok(a)) => a,
            (false, Ok(a)) => {
                return Err(format!(
                    "plug-in {program:?} failed ({status}): {}{stderr_note}",
                    a.message
                ));
            }
            (false, Err(_)) => {
                return Err(format!(
                    "plug-in {program:?} failed ({status}){stderr_note}"
                ));
            }
            (true, Err(e)) => {
                let head: String = stdout.trim().chars().take(200).collect();
                return Err(format!(
                    "plug-in {program:?} answered no valid result ({e}): {head:?}{stderr_note}"
                ));
            }
        };
        let details = serde_json::json!({
            "details": answer.details,
            "exit_code": status.code(),
            "stderr": stderr.text,
            "stderr_truncated": stderr.truncated,
        });
        if answer.ok {
            let summary = if answer.message.is_empty() {
                format!("plug-in {program:?} succeeded")
            } else {
                answer.message
            };
            Ok(ActionOutcome { summary, details })
        } else {
            Err(format!(
                "plug-in {program:?} reported failure: {}{stderr_note}",
                answer.message
            ))
        }
    }
}

impl Executor for Plugin {
    fn kind(&self) -> &'static str {
        "plugin"
    }
    fn describe(&self) -> serde_json::Value {
        let env: serde_json::Map<String, serde_json::Value> = self
            .params
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.shown()))
            .collect();
        serde_json::json!({
            "argv": self.params.argv,
            "params": self.params.params,
            "env": env,
            "target": self.params.target,
        })
    }
    fn target(&self, ctx: &StepContext) -> String {
        match &self.params.target {
            Some(t) => template::render(t, ctx, template::raw),
            None => self.params.argv[0].clone(),
        }
    }
    fn supports_dry_run(&self) -> bool {
        self.params.dry_run_capable
    }
    fn execute<'a>(&'a self, ctx: &'a StepContext) -> ExecFuture<'a> {
        Box::pin(self.run(ctx))
    }
}

#[cfg(test)]
pub(crate) mod tests;
