//! Expectations against what happened: every difference said plainly, and
//! what happened written in the test file's own syntax, to read or paste.

use std::fmt::Write as _;

use super::file::{Expect, ExpectedEvent, ExpectedStep};
use super::play::{ActualEvent, ActualStep, Outcome, show_ms};
use crate::series::Millis;
use crate::stores::ActionState;

/// How far an expected `at` may be from the actual time: polls and
/// warm-up checks land a little after the round figure.
pub const AT_TOLERANCE: Millis = 1000;

/// Every way `o` differs from `e`, one paragraph each (empty: it passes).
pub fn compare(e: &Expect, o: &Outcome) -> Vec<String> {
    let mut out: Vec<String> = o
        .problems
        .iter()
        .map(|p| format!("rule broken: {p}"))
        .collect();
    if let Some(steps) = &e.steps
        && let Some(d) = steps_diff(steps, &o.steps)
    {
        out.push(d);
    }
    for n in &e.not_run {
        let ran: Vec<&ActualStep> = o
            .steps
            .iter()
            .filter(|s| s.step == n.value && s.state != ActionState::Blocked)
            .collect();
        if let Some(first) = ran.first() {
            out.push(format!(
                "step {:?} must not run, but it did {} time(s), first: {}",
                n.value,
                ran.len(),
                flow_actual(first)
            ));
        }
    }
    for (name, want) in &e.incidents {
        let Some(got) = o.incidents.get(name) else {
            out.push(format!(
                "incident {name}: expected it to open, but it never did"
            ));
            continue;
        };
        if let Some(s) = want.state
            && s != got.state
        {
            out.push(format!(
                "incident {name}: expected state {}, got {}",
                s.as_str(),
                got.state.as_str()
            ));
        }
        if let Some(runs) = &want.runs {
            let got_states: Vec<_> = got.runs.iter().map(|(s, _)| *s).collect();
            if *runs != got_states {
                let mut m = format!(
                    "incident {name}: expected runs [{}], got [{}]",
                    runs.iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    got_states
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                for (s, why) in &got.runs {
                    let _ = write!(m, "\n    {}: {why}", s.as_str());
                }
                if got.runs.is_empty() {
                    m.push_str(
                        "\n    (no run started: does the runbook's match select this incident?)",
                    );
                }
                out.push(m);
            }
        }
    }
    if let Some(d) = events_diff(&e.events, &o.events) {
        out.push(d);
    }
    out
}

fn steps_diff(want: &[ExpectedStep], got: &[ActualStep]) -> Option<String> {
    let mut lines = Vec::new();
    let mut bad = false;
    for i in 0..want.len().max(got.len()) {
        match (want.get(i), got.get(i)) {
            (Some(w), Some(g)) => {
                let diffs = step_diffs(w, g);
                if diffs.is_empty() {
                    lines.push(format!("  ✓ {:>2} {}", i + 1, flow_actual(g)));
                } else {
                    bad = true;
                    lines.push(format!("  ✗ {:>2} {}", i + 1, flow_actual(g)));
                    lines.push(format!("       expected {}", flow_expected(w)));
                    lines.push(format!("       {}", diffs.join("; ")));
                }
            }
            (None, Some(g)) => {
                bad = true;
                lines.push(format!(
                    "  + {:>2} {}   ← not expected",
                    i + 1,
                    flow_actual(g)
                ));
            }
            (Some(w), None) => {
                bad = true;
                lines.push(format!(
                    "  - {:>2} expected {}, but nothing more happened",
                    i + 1,
                    flow_expected(w)
                ));
            }
            (None, None) => {}
        }
    }
    bad.then(|| {
        format!(
            "steps differ (expected {}, got {}):\n{}",
            want.len(),
            got.len(),
            lines.join("\n")
        )
    })
}

/// The fields of `w` that `g` does not match.
fn step_diffs(w: &ExpectedStep, g: &ActualStep) -> Vec<String> {
    let mut d = Vec::new();
    let mut field = |name: &str, ok: bool, want: String, got: String| {
        if !ok {
            d.push(format!("{name}: expected {want}, got {got}"));
        }
    };
    if let Some(at) = w.at {
        field(
            "at",
            (g.at - at.millis()).abs() <= AT_TOLERANCE,
            format!("{at} (±1s)"),
            show_ms(g.at),
        );
    }
    if let Some(n) = &w.incident {
        field(
            "incident",
            n.value == g.incident,
            n.value.clone(),
            g.incident.clone(),
        );
    }
    if let Some(n) = &w.step {
        field(
            "step",
            n.value == g.step,
            format!("{:?}", n.value),
            format!("{:?}", g.step),
        );
    }
    if let Some(n) = w.attempt {
        field(
            "attempt",
            n == g.attempt,
            n.to_string(),
            g.attempt.to_string(),
        );
    }
    if let Some(x) = &w.executor {
        field("executor", *x == g.executor, x.clone(), g.executor.clone());
    }
    if let Some(x) = &w.target {
        field("target", *x == g.target, x.clone(), g.target.clone());
    }
    if let Some(p) = &w.params {
        field("params", contains(p, &g.params), flow(p), flow(&g.params));
    }
    if let Some(s) = w.state {
        field(
            "state",
            s == g.state,
            s.as_str().into(),
            g.state.as_str().into(),
        );
    }
    if let Some(x) = &w.guard {
        field(
            "guard",
            g.guard.as_deref() == Some(x.as_str()),
            x.clone(),
            g.guard.clone().unwrap_or_else(|| "none".into()),
        );
    }
    if let Some(v) = w.verified {
        field(
            "verified",
            g.verified == Some(v),
            v.to_string(),
            g.verified.map_or("not checked".into(), |v| v.to_string()),
        );
    }
    if let Some(x) = &w.detail {
        field(
            "detail",
            g.detail.contains(x.as_str()),
            format!("to contain {x:?}"),
            format!("{:?}", g.detail),
        );
    }
    d
}

/// Does `got` hold everything `want` gives? Objects: the keys given;
/// numbers: by value.
pub fn contains(want: &serde_json::Value, got: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => w
            .iter()
            .all(|(k, v)| g.get(k).is_some_and(|x| contains(v, x))),
        (Value::Array(w), Value::Array(g)) => {
            w.len() == g.len() && w.iter().zip(g).all(|(a, b)| contains(a, b))
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

fn events_diff(want: &[ExpectedEvent], got: &[ActualEvent]) -> Option<String> {
    let matches = |w: &ExpectedEvent, g: &ActualEvent| {
        w.incident.as_ref().is_none_or(|n| n.value == g.incident)
            && w.kind.as_ref().is_none_or(|k| *k == g.kind)
            && g.message.contains(&w.message)
    };
    let mut from = 0;
    for (i, w) in want.iter().enumerate() {
        match got[from..].iter().position(|g| matches(w, g)) {
            Some(p) => from += p + 1,
            None => {
                let earlier = got[..from].iter().any(|g| matches(w, g));
                let mut m = format!(
                    "event {} not found{}: {}",
                    i + 1,
                    if earlier {
                        " in this order (it happened before the previous expected event)"
                    } else {
                        ""
                    },
                    flow_event_expected(w)
                );
                m.push_str("\n  timeline:");
                for g in got {
                    let _ = write!(m, "\n    {}", flow_event(g));
                }
                return Some(m);
            }
        }
    }
    None
}

/// A string as a YAML flow scalar: bare when that reads back the same.
pub fn scalar(s: &str) -> String {
    let bare = !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || " _.-/+=<>()'".contains(c))
        && !s.starts_with([' ', '-', '\'', '.'])
        && !s.ends_with(' ')
        && !matches!(
            s,
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "~"
        )
        && s.parse::<f64>().is_err();
    if bare {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

/// A JSON value as YAML flow.
pub fn flow(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::String(s) => scalar(s),
        Value::Array(a) => format!("[{}]", a.iter().map(flow).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", scalar(k), flow(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// An actual step as an expectation entry that matches it.
pub fn flow_actual(g: &ActualStep) -> String {
    let mut f = vec![
        format!("at: {}", show_ms(g.at)),
        format!("incident: {}", scalar(&g.incident)),
        format!("step: {}", scalar(&g.step)),
        format!("attempt: {}", g.attempt),
        format!("state: {}", g.state.as_str()),
    ];
    if let Some(guard) = &g.guard {
        f.push(format!("guard: {guard}"));
    }
    if let Some(v) = g.verified {
        f.push(format!("verified: {v}"));
    }
    f.push(format!("target: {}", scalar(&g.target)));
    f.push(format!("params: {}", flow(&g.params)));
    if matches!(g.state, ActionState::Failed | ActionState::Blocked) {
        f.push(format!("detail: {}", scalar(&g.detail)));
    }
    format!("{{{}}}", f.join(", "))
}

fn flow_expected(w: &ExpectedStep) -> String {
    let mut f = Vec::new();
    if let Some(at) = w.at {
        f.push(format!("at: {at}"));
    }
    if let Some(n) = &w.incident {
        f.push(format!("incident: {}", scalar(n)));
    }
    if let Some(n) = &w.step {
        f.push(format!("step: {}", scalar(n)));
    }
    if let Some(n) = w.attempt {
        f.push(format!("attempt: {n}"));
    }
    if let Some(x) = &w.executor {
        f.push(format!("executor: {x}"));
    }
    if let Some(s) = w.state {
        f.push(format!("state: {}", s.as_str()));
    }
    if let Some(x) = &w.guard {
        f.push(format!("guard: {x}"));
    }
    if let Some(v) = w.verified {
        f.push(format!("verified: {v}"));
    }
    if let Some(x) = &w.target {
        f.push(format!("target: {}", scalar(x)));
    }
    if let Some(p) = &w.params {
        f.push(format!("params: {}", flow(p)));
    }
    if let Some(x) = &w.detail {
        f.push(format!("detail: {}", scalar(x)));
    }
    format!("{{{}}}", f.join(", "))
}

fn flow_event(g: &ActualEvent) -> String {
    format!(
        "{{at: {}, incident: {}, kind: {}, message: {}}}",
        show_ms(g.at),
        scalar(&g.incident),
        g.kind,
        scalar(&g.message)
    )
}

fn flow_event_expected(w: &ExpectedEvent) -> String {
    let mut f = Vec::new();
    if let Some(n) = &w.incident {
        f.push(format!("incident: {}", scalar(n)));
    }
    if let Some(k) = &w.kind {
        f.push(format!("kind: {k}"));
    }
    f.push(format!("message: {}", scalar(&w.message)));
    format!("{{{}}}", f.join(", "))
}

/// What happened, as an `expect:` section that matches it, with the
/// timeline after it (as comments).
pub fn what_happened(o: &Outcome) -> String {
    let mut s = String::from("expect:\n  steps:\n");
    if o.steps.is_empty() {
        s = String::from("expect:\n  steps: []\n");
    }
    for g in &o.steps {
        let _ = writeln!(s, "    - {}", flow_actual(g));
    }
    if !o.incidents.is_empty() {
        s.push_str("  incidents:\n");
        for (name, i) in &o.incidents {
            let runs: Vec<&str> = i.runs.iter().map(|(r, _)| r.as_str()).collect();
            let _ = writeln!(
                s,
                "    {}: {{state: {}, runs: [{}]}}",
                scalar(name),
                i.state.as_str(),
                runs.join(", ")
            );
        }
    }
    s.push_str("# timeline:\n");
    for g in &o.events {
        let _ = writeln!(
            s,
            "#   {:>10}  {:<12} {:<10} {}",
            show_ms(g.at),
            g.incident,
            g.kind,
            g.message
        );
    }
    s
}
