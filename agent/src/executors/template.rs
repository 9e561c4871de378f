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

/// A template cut into literal text and `{{ name }}` references.
enum Part<'a> {
    Text(&'a str),
    Name(&'a str),
}

fn parts(t: &str) -> Result<Vec<Part<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(start) = rest.find("{{") {
        out.push(Part::Text(&rest[..start]));
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err("unclosed '{{'".into());
        };
        out.push(Part::Name(after[..end].trim()));
        rest = &after[end + 2..];
    }
    out.push(Part::Text(rest));
    Ok(out)
}

fn known(name: &str) -> bool {
    ROOTS.contains(&name) || name.strip_prefix("labels.").is_some_and(|l| !l.is_empty())
}

/// Check that every `{{ name }}` in `t` is known. Returns the first unknown name.
pub fn check(t: &str) -> Result<(), String> {
    for p in parts(t)? {
        if let Part::Name(name) = p
            && !known(name)
        {
            return Err(format!(
                "unknown template name {name:?}; known: {}, labels.<name>",
                ROOTS.join(", ")
            ));
        }
    }
    Ok(())
}

/// Fill a template. `escape` is applied to every substituted value (e.g. JSON
/// string escaping for a JSON body). Templates are checked at load time; one
/// that does not parse is used as it is.
pub fn render(t: &str, ctx: &StepContext, escape: fn(&str) -> String) -> String {
    let Ok(parts) = parts(t) else {
        return t.to_string();
    };
    let i = &ctx.incident;
    let mut out = String::with_capacity(t.len());
    for p in parts {
        match p {
            Part::Text(s) => out.push_str(s),
            Part::Name(name) => {
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
            }
        }
    }
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
