//! A deliberately tiny template language for HTTP bodies and notification
//! text: `{{ incident.id }}`, `{{ labels.service }}`. No logic, no shell.

use crate::executors::StepContext;
use crate::incidents::Incident;

/// Names about the incident, known to every template (see [`incident_value`]).
pub const INCIDENT_NAMES: &[&str] = &[
    "incident.id",
    "incident.detector",
    "incident.severity",
    "incident.state",
    "incident.summary",
    "incident.fingerprint",
];

/// Names a runbook step's template may use besides [`INCIDENT_NAMES`].
pub const STEP_NAMES: &[&str] = &["runbook", "step", "attempt", "idempotency_key"];

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

fn known(name: &str, extra: &[&str]) -> bool {
    INCIDENT_NAMES.contains(&name)
        || extra.contains(&name)
        || name.strip_prefix("labels.").is_some_and(|l| !l.is_empty())
}

/// Check that every `{{ name }}` in a step's template is known. Returns the
/// first unknown name.
pub fn check(t: &str) -> Result<(), String> {
    check_names(t, STEP_NAMES)
}

/// Check against [`INCIDENT_NAMES`], `labels.<name>` and `extra`.
pub fn check_names(t: &str, extra: &[&str]) -> Result<(), String> {
    for p in parts(t)? {
        if let Part::Name(name) = p
            && !known(name, extra)
        {
            return Err(format!(
                "unknown template name {name:?}; known: {}, {}, labels.<name>",
                INCIDENT_NAMES.join(", "),
                extra.join(", ")
            ));
        }
    }
    Ok(())
}

/// Fill a template. `escape` is applied to every substituted value (e.g. JSON
/// string escaping for a JSON body). Templates are checked at load time; one
/// that does not parse is used as it is.
pub fn render(t: &str, ctx: &StepContext, escape: fn(&str) -> String) -> String {
    render_with(
        t,
        &|name| {
            Some(match name {
                "runbook" => ctx.runbook.clone(),
                "step" => ctx.step_name.clone(),
                "attempt" => ctx.attempt.to_string(),
                "idempotency_key" => ctx.idempotency_key.clone(),
                other => return incident_value(&ctx.incident, other),
            })
        },
        escape,
    )
}

/// The value of an `incident.*` or `labels.*` name (labels missing: empty).
pub fn incident_value(i: &Incident, name: &str) -> Option<String> {
    Some(match name {
        "incident.id" => i.id.to_string(),
        "incident.detector" => i.detector.clone(),
        "incident.severity" => i.severity.clone(),
        "incident.state" => i.state.as_str().to_string(),
        "incident.summary" => i.summary.clone(),
        "incident.fingerprint" => i.fingerprint.clone(),
        other => other
            .strip_prefix("labels.")
            .map(|l| i.labels.get(l).cloned().unwrap_or_default())?,
    })
}

/// Fill a template from `lookup` (unknown names become empty).
pub fn render_with(
    t: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    escape: fn(&str) -> String,
) -> String {
    let Ok(parts) = parts(t) else {
        return t.to_string();
    };
    let mut out = String::with_capacity(t.len());
    for p in parts {
        match p {
            Part::Text(s) => out.push_str(s),
            Part::Name(name) => out.push_str(&escape(&lookup(name).unwrap_or_default())),
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

/// Escape for HTML text and attribute values.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
