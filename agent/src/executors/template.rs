//! A deliberately tiny template language for HTTP bodies and notification
//! text: `{{ incident.id }}`, `{{ labels.service }}`. No logic, no shell.

use crate::executors::StepContext;

/// Names a template may use.
pub const ROOTS: &[&str] = &[
    "incident.id",
    "incident.detector",
    "incident.severity",
    "incident.state",
    "incident.summary",
    "incident.fingerprint",
    "runbook",
    "step",
    "attempt",
    "idempotency_key",
];

/// Check that every `{{ name }}` in `t` is known. Returns the first unknown name.
pub fn check(t: &str) -> Result<(), String> {
    let mut rest = t;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err("unclosed '{{'".into());
        };
        let name = after[..end].trim();
        if !(ROOTS.contains(&name) || name.strip_prefix("labels.").is_some_and(|l| !l.is_empty())) {
            return Err(format!(
                "unknown template name {name:?}; known: {}, labels.<name>",
                ROOTS.join(", ")
            ));
        }
        rest = &after[end + 2..];
    }
    Ok(())
}

/// Fill a template. `escape` is applied to every substituted value (e.g. JSON
/// string escaping for a JSON body).
pub fn render(t: &str, ctx: &StepContext, escape: fn(&str) -> String) -> String {
    let mut out = String::with_capacity(t.len());
    let mut rest = t;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        let i = &ctx.incident;
        let value = match name {
            "incident.id" => i.id.to_string(),
            "incident.detector" => i.detector.clone(),
            "incident.severity" => i.severity.clone(),
            "incident.state" => i.state.as_str().to_string(),
            "incident.summary" => i.summary.clone(),
            "incident.fingerprint" => i.fingerprint.clone(),
            "runbook" => ctx.runbook.clone(),
            "step" => ctx.step_name.clone(),
            "attempt" => ctx.attempt.to_string(),
            "idempotency_key" => ctx.idempotency_key.clone(),
            other => other
                .strip_prefix("labels.")
                .and_then(|l| i.labels.get(l).cloned())
                .unwrap_or_default(),
        };
        out.push_str(&escape(&value));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// No escaping.
pub fn raw(s: &str) -> String {
    s.to_string()
}

/// Escape for the inside of a JSON string literal.
pub fn json_inner(s: &str) -> String {
    let q = serde_json::to_string(s).unwrap_or_default();
    q[1..q.len() - 1].to_string()
}
