//! The spine, end to end, with the real `medic` binary and real processes on
//! loopback: a supervised service is broken four ways and medic detects,
//! restarts, verifies and resolves each; a failing runbook compensates and
//! escalates; a crash mid-runbook loses nothing and repeats nothing; bad input
//! is refused with file:line:col; hostile label values stay data.

use std::process::Command;
use std::time::Duration;

use medic_e2e::*;
use serde_json::{Value, json};

const LONG: Duration = Duration::from_secs(60);

fn demo_config(demo_port: u16) -> String {
    let bin = medic_bin();
    format!(
        r#"services:
  demo:
    argv: ["{bin}", demo-service, --listen, "127.0.0.1:{demo_port}"]
    grace: 2s
sources:
  - name: demo-health
    kind: http_probe
    interval: 500ms
    timeout: 400ms
    targets: [http://127.0.0.1:{demo_port}/health]
    labels: {{service: demo}}
  - name: demo-metrics
    kind: scrape
    interval: 500ms
    timeout: 400ms
    targets: [127.0.0.1:{demo_port}]
    labels: {{service: demo}}
detectors:
  - name: demo-process-down
    kind: threshold
    series: medic_service_up{{service="demo"}}
    below: 1
    severity: critical
  - name: demo-unhealthy
    kind: threshold
    series: probe_success{{job="demo-health"}}
    below: 1
    severity: critical
  - name: demo-error-rate
    kind: error_rate
    errors: demo_requests_total{{job="demo-metrics", code=~"5.."}}
    total: demo_requests_total{{job="demo-metrics"}}
    by: [service]
    window: 5s
    max_ratio: 0.2
    clear_ratio: 0.05
    min_total: 10
    severity: warning
"#,
        bin = bin.display()
    )
}

fn demo_runbooks(demo_port: u16) -> Vec<(&'static str, String)> {
    vec![
        (
            "restart-demo.yaml",
            format!(
                r#"name: restart-demo
match:
  detectors: [demo-process-down, demo-unhealthy]
steps:
  - name: restart demo
    kind: restart
    service: demo
    timeout: 10s
    retry: {{max_attempts: 3, backoff: 1s}}
    verify: {{http: "http://127.0.0.1:{demo_port}/health", within: 10s, interval: 100ms}}
"#
            ),
        ),
        (
            "restart-demo-on-errors.yaml",
            r#"name: restart-demo-on-errors
match:
  detectors: [demo-error-rate]
steps:
  - name: restart demo
    kind: restart
    service: demo
    timeout: 10s
    verify: {detector_cleared: true, within: 30s}
"#
            .to_string(),
        ),
    ]
}

/// A scrape of a demo service that medic does not supervise, and a detector
/// that fires while the demo is in `errors` mode (the series disappears when
/// the mode changes back, so the detector clears by staleness).
fn error_mode_config(demo_port: u16, interval: &str) -> String {
    format!(
        r#"sources:
  - name: demo-metrics
    kind: scrape
    interval: {interval}
    targets: [127.0.0.1:{demo_port}]
detectors:
  - name: demo-in-error-mode
    kind: threshold
    series: demo_mode{{mode="errors"}}
    above: 0
"#
    )
}

fn start_demo(name: &str) -> (TempDir, Medic, u16) {
    let dir = TempDir::new(name);
    let dp = free_port();
    let rbs = demo_runbooks(dp);
    let rbs: Vec<(&str, &str)> = rbs.iter().map(|(a, b)| (*a, b.as_str())).collect();
    let m = Medic::start(&dir, &demo_config(dp), &rbs);
    wait_for(LONG, "demo service healthy", || {
        reqwest::blocking::get(format!("http://127.0.0.1:{dp}/health"))
            .ok()
            .filter(|r| r.status().is_success())
    });
    (dir, m, dp)
}

fn kinds(detail: &Value) -> Vec<String> {
    detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

/// detected → restarted → verified → resolved, read back through the API.
fn assert_recovered(m: &Medic, detector: &str) -> Value {
    let d = m.wait_incident(detector, LONG, |d| {
        d["incident"]["state"] == "resolved" && d["runs"][0]["state"] != "running"
    });
    let text = timeline_text(&d);
    let k = kinds(&d);
    assert_eq!(k.first().map(String::as_str), Some("opened"), "{text}");
    assert!(
        text.contains("restarted demo"),
        "no restart in timeline:\n{text}"
    );
    assert!(
        k.iter().any(|x| x == "verify") && text.contains("verified"),
        "no verification:\n{text}"
    );
    assert!(text.contains("→ resolved"), "not resolved:\n{text}");
    let actions = d["actions"].as_array().unwrap();
    assert!(
        actions
            .iter()
            .any(|a| a["executor"] == "restart" && a["state"] == "succeeded"),
        "{actions:?}"
    );
    assert_eq!(d["runs"][0]["state"], "recovered", "{}", d["runs"]);
    d
}

#[test]
fn killed_service_is_restarted_verified_and_resolved() {
    let (_dir, m, _dp) = start_demo("kill");
    let pid = wait_for(LONG, "demo pid", || service_pid(&m, "demo"));
    // SAFETY: killing the demo service's process group, which medic started.
    unsafe {
        libc::kill(-(pid as i32), libc::SIGKILL);
    }
    assert_recovered(&m, "demo-process-down");
    let new_pid = wait_for(LONG, "new demo pid", || service_pid(&m, "demo"));
    assert_ne!(pid, new_pid);
    // One cause, one restart: the probe incident (if it opened at all) did not restart again.
    let restarts: usize = m
        .incidents()
        .iter()
        .map(|i| {
            m.get(&format!("/api/v1/incidents/{}", i["id"]))["actions"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["state"] == "succeeded")
                .count()
        })
        .sum();
    assert_eq!(restarts, 1, "expected exactly one restart for one kill");
}

#[test]
fn health_500_is_restarted_verified_and_resolved() {
    let (_dir, m, dp) = start_demo("500");
    demo_fault(dp, "500");
    assert_recovered(&m, "demo-unhealthy");
}

#[test]
fn hung_service_is_restarted_verified_and_resolved() {
    let (_dir, m, dp) = start_demo("hang");
    demo_fault(dp, "hang");
    assert_recovered(&m, "demo-unhealthy");
}

#[test]
fn error_rate_is_restarted_verified_and_resolved() {
    let (_dir, m, dp) = start_demo("errors");
    demo_fault(dp, "errors");
    let d = assert_recovered(&m, "demo-error-rate");
    let opened = &d["timeline"][0]["data"];
    assert!(
        opened["observed"].as_f64().unwrap() > 0.2,
        "evidence carries the ratio: {opened}"
    );
}

#[test]
fn failed_verification_runs_on_failure_and_escalates() {
    let dir = TempDir::new("onfailure");
    let dp = free_port();
    let _demo = demo_service(dp);
    let hook = TestServer::start(|_| (200, "ok".into()));
    let comp = dir.path("compensated");
    let dead = free_port();
    let cfg = error_mode_config(dp, "500ms");
    let rb = format!(
        r#"name: try-and-fail
match: {{detectors: [demo-in-error-mode]}}
steps:
  - name: poke
    kind: command
    argv: [/bin/true]
    retry: {{max_attempts: 2, backoff: 100ms}}
    verify: {{tcp: "127.0.0.1:{dead}", within: 1s}}
    on_failure:
      - name: compensate
        kind: command
        argv: [/bin/sh, -c, 'echo undone > "$1"', sh, "{comp}"]
      - name: record it
        kind: http
        method: PUT
        url: http://127.0.0.1:{hook}/record
        headers: {{X-Token: secret-token-value}}
        body: '{{"incident": "{{{{ incident.id }}}}", "summary": "{{{{ incident.summary }}}}"}}'
        expect_status: [200]
escalate:
  - name: page
    kind: notify
    url: http://127.0.0.1:{hook}/hook
"#,
        comp = comp.display(),
        hook = hook.port
    );
    let m = Medic::start(&dir, &cfg, &[("rb.yaml", &rb)]);
    demo_fault(dp, "errors");
    let d = m.wait_incident("demo-in-error-mode", LONG, |d| {
        d["runs"][0]["state"] == "failed"
    });
    let text = timeline_text(&d);
    assert_eq!(
        std::fs::read_to_string(&comp).unwrap_or_default().trim(),
        "undone",
        "{text}"
    );
    let actions = d["actions"].as_array().unwrap();
    let steps: Vec<&str> = actions
        .iter()
        .map(|a| a["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        vec![
            "steps[0]",
            "steps[0]",
            "steps[0].on_failure[0]",
            "steps[0].on_failure[1]",
            "escalate[0]"
        ],
        "{text}"
    );
    assert!(text.contains("escalating"), "{text}");
    let hooks = hook.requests();
    assert_eq!(hooks.len(), 2, "one http step, one escalation notification");
    // The http step: method, templated body with JSON-escaped values.
    assert_eq!(
        (hooks[0].method.as_str(), hooks[0].path.as_str()),
        ("PUT", "/record")
    );
    let rec: Value =
        serde_json::from_str(&hooks[0].body).expect("valid JSON even with quotes in the summary");
    assert_eq!(rec["incident"], d["incident"]["id"].to_string());
    assert_eq!(rec["summary"], d["incident"]["summary"]);
    // Header values (tokens) never reach the journal or the timeline.
    assert!(
        !d.to_string().contains("secret-token-value"),
        "secret leaked"
    );
    let body: Value = serde_json::from_str(&hooks[1].body).unwrap();
    assert_eq!(body["incident"]["detector"], "demo-in-error-mode");
    assert!(
        body["idempotency_key"]
            .as_str()
            .unwrap()
            .ends_with("escalate[0]/attempt-1")
    );
    // The incident is still open: nothing verified.
    assert_ne!(d["incident"]["state"], "resolved");
}

#[test]
fn crash_mid_runbook_resumes_without_repeating_completed_steps() {
    let dir = TempDir::new("crash");
    let dp = free_port();
    let _demo = demo_service(dp);
    let trail = dir.path("trail");
    let cfg = error_mode_config(dp, "500ms");
    let rb = format!(
        r#"name: two-steps
match: {{detectors: [demo-in-error-mode]}}
steps:
  - name: first
    kind: command
    argv: [/bin/sh, -c, 'echo first >> "$1"', sh, "{t}"]
  - name: slow second
    kind: command
    argv: [/bin/sh, -c, 'echo second-started >> "$1"; sleep 60; echo second-done >> "$1"', sh, "{t}"]
    timeout: 2m
"#,
        t = trail.display()
    );
    let mut m = Medic::start(&dir, &cfg, &[("rb.yaml", &rb)]);
    let port = m.port();
    demo_fault(dp, "errors");
    wait_for(LONG, "second step running", || {
        std::fs::read_to_string(&trail)
            .ok()
            .filter(|t| t.contains("second-started"))
    });
    let id = m.incidents()[0]["id"].clone();
    let (status, _) = m.post(
        &format!("/api/v1/incidents/{id}/ack"),
        &json!({"who": "bob", "comment": "watching"}),
    );
    assert_eq!(status, 200);
    m.kill9();
    // Restart on the same state: the incident is there and the run resumes.
    let m = Medic::restart_in(&dir.0, port);
    let d = wait_for(LONG, "run to finish after resume", || {
        let d = m.get(&format!("/api/v1/incidents/{id}"));
        (d["runs"][0]["state"] != "running").then_some(d)
    });
    let text = timeline_text(&d);
    let actions = d["actions"].as_array().unwrap();
    let first: Vec<&Value> = actions.iter().filter(|a| a["step"] == "steps[0]").collect();
    assert_eq!(first.len(), 1, "first step journalled once: {actions:?}");
    assert_eq!(first[0]["state"], "succeeded");
    let second: Vec<&Value> = actions.iter().filter(|a| a["step"] == "steps[1]").collect();
    assert_eq!(
        second[0]["state"], "interrupted",
        "journal shows the interrupted step: {actions:?}"
    );
    let trail_text = std::fs::read_to_string(&trail).unwrap();
    assert_eq!(
        trail_text.matches("first").count(),
        1,
        "completed step not re-run: {trail_text}"
    );
    assert!(
        !trail_text.contains("second-done"),
        "the interrupted action died with medic: {trail_text}"
    );
    assert!(text.contains("resumed after restart"), "{text}");
    assert_eq!(
        d["incident"]["acked_by"], "bob",
        "the acknowledgement survived kill -9"
    );
    assert!(text.contains("interrupted"), "{text}");
}

fn check(dir: &TempDir) -> (bool, String) {
    let out = Command::new(medic_bin())
        .args(["check", "--config"])
        .arg(dir.path("medic.yaml"))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

#[test]
fn check_reports_file_line_column_and_exits_nonzero() {
    let good_cfg = "detectors:\n  - name: d\n    kind: threshold\n    series: up\n    below: 1\n";
    let good_rb = "name: r\nmatch: {detectors: [d]}\nsteps:\n  - name: s\n    kind: command\n    argv: [/bin/true]\n";
    let cases: Vec<(&str, String, String, &str)> = vec![
        (
            "malformed",
            "detectors: [\n  - name: d\n".into(),
            good_rb.into(),
            "medic.yaml:",
        ),
        (
            "unknown-field",
            good_cfg.replace("below: 1", "below: 1\n    bellow: 2"),
            good_rb.into(),
            "medic.yaml:6:5: unknown field `bellow`",
        ),
        (
            "wrong-type",
            good_cfg.replace("below: 1", "below: [1]"),
            good_rb.into(),
            "medic.yaml:5:",
        ),
        (
            "unknown-kind",
            good_cfg.into(),
            good_rb.replace("kind: command", "kind: teleport"),
            "runbooks/r.yaml:5:5: unknown variant `teleport`",
        ),
        (
            "missing-detector",
            good_cfg.into(),
            good_rb.replace("[d]", "[nope]"),
            "runbooks/r.yaml:2:21: match.detectors: no detector named \"nope\"",
        ),
    ];
    for (name, cfg, rb, expect) in cases {
        let dir = TempDir::new(&format!("check-{name}"));
        std::fs::write(dir.path("medic.yaml"), &cfg).unwrap();
        std::fs::write(dir.path("runbooks/r.yaml"), &rb).unwrap();
        let (ok, out) = check(&dir);
        assert!(!ok, "{name}: must fail:\n{out}");
        assert!(
            out.contains(expect),
            "{name}: expected {expect:?} in:\n{out}"
        );
    }
    let dir = TempDir::new("check-good");
    std::fs::write(dir.path("medic.yaml"), good_cfg).unwrap();
    std::fs::write(dir.path("runbooks/r.yaml"), good_rb).unwrap();
    let (ok, out) = check(&dir);
    assert!(ok, "{out}");
}

#[test]
fn shipped_default_config_checks() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let out = Command::new(medic_bin())
        .args(["check", "--config"])
        .arg(root.join("medic.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn malformed_scrape_is_counted_and_bad_reload_keeps_running_config() {
    let dir = TempDir::new("badinput");
    let target = TestServer::start(|r| match r.path.as_str() {
        "/metrics" => (200, "good_metric 1\nthis is { not a metric\n".into()),
        _ => (404, String::new()),
    });
    let cfg = format!(
        "sources:\n  - name: broken\n    kind: scrape\n    interval: 200ms\n    targets: [127.0.0.1:{}]\ndetectors:\n  - name: d\n    kind: threshold\n    series: up\n    below: 0.5\n",
        target.port
    );
    let m = Medic::start(&dir, &cfg, &[]);
    wait_for(LONG, "parse errors counted", || {
        m.metrics()
            .lines()
            .find(|l| l.starts_with("medic_source_errors_total") && l.contains("reason=\"parse\""))
            .map(str::to_string)
    });
    assert!(m.log().contains("scrape failed"), "logged");
    // `up` is 0 for a failed scrape, so the detector fires: bad data is visible, not silent.
    m.wait_incident("d", LONG, |d| d["incident"]["state"] == "firing");
    // An invalid new config is refused with file:line:col; the old one stays.
    std::fs::write(
        dir.path("medic.yaml"),
        std::fs::read_to_string(dir.path("medic.yaml")).unwrap() + "    bogus: 1\n",
    )
    .unwrap();
    let (status, body) = m.post("/api/v1/reload", &json!({}));
    assert_eq!(status, 400, "{body}");
    let err = body["error"].as_str().unwrap();
    assert!(
        err.contains("medic.yaml:") && err.contains("bogus"),
        "{err}"
    );
    assert_eq!(
        reqwest::blocking::get(format!("{}/healthz", m.api))
            .unwrap()
            .status(),
        200
    );
    // Malformed API payloads get a 4xx and change nothing.
    let (status, _) = m.post("/api/v1/incidents/1/ack", &json!({"whom": "x"}));
    assert_eq!(status, 400);
    let (status, _) = m.post("/api/v1/incidents/999/ack", &json!({"who": "x"}));
    assert_eq!(status, 404);
    let r = reqwest::blocking::get(format!("{}/api/v1/incidents/abc", m.api)).unwrap();
    assert_eq!(r.status(), 400);
}

#[test]
fn hostile_label_values_reach_commands_only_as_data() {
    let dir = TempDir::new("hostile");
    let pwned = dir.path("pwned");
    let evil = format!(
        "x\\\"; touch {p}; $(touch {p}) `touch {p}` \\n'quoted'",
        p = pwned.display()
    );
    let exposition = format!("hostile_metric{{evil=\"{evil}\"}} 1\n");
    let target = TestServer::start(move |r| match r.path.as_str() {
        "/metrics" => (200, exposition.clone()),
        _ => (404, String::new()),
    });
    let cfg = format!(
        "sources:\n  - name: t\n    kind: scrape\n    interval: 300ms\n    targets: [127.0.0.1:{}]\ndetectors:\n  - name: hostile\n    kind: threshold\n    series: hostile_metric\n    above: 0\n",
        target.port
    );
    let rb = "name: echo\nmatch: {detectors: [hostile]}\nsteps:\n  - name: print it\n    kind: command\n    argv: [printenv, MEDIC_LABEL_EVIL]\n";
    let m = Medic::start(&dir, &cfg, &[("rb.yaml", rb)]);
    let d = m.wait_incident("hostile", LONG, |d| d["runs"][0]["state"] == "completed");
    let action = d["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["data"]["result"]["stdout"].is_string())
        .expect("command output in timeline")
        .clone();
    let printed = action["data"]["result"]["stdout"].as_str().unwrap();
    let expected = format!(
        "x\"; touch {p}; $(touch {p}) `touch {p}` \n'quoted'\n",
        p = pwned.display()
    );
    assert_eq!(printed, expected, "the label value arrives verbatim");
    assert!(!pwned.exists(), "nothing in the label value was executed");
}

#[test]
fn ack_through_api_and_cli_is_recorded() {
    let dir = TempDir::new("ack");
    let target = TestServer::start(|_| (200, "always_bad 1\n".into()));
    let cfg = format!(
        "sources:\n  - name: t\n    kind: scrape\n    interval: 300ms\n    targets: [127.0.0.1:{}]\ndetectors:\n  - name: bad\n    kind: threshold\n    series: always_bad\n    above: 0\n",
        target.port
    );
    let m = Medic::start(&dir, &cfg, &[]);
    let d = m.wait_incident("bad", LONG, |_| true);
    let id = d["incident"]["id"].as_i64().unwrap();
    let out = Command::new(medic_bin())
        .args([
            "ack",
            &id.to_string(),
            "--who",
            "alice",
            "--comment",
            "looking",
            "--api",
            &m.api,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = m.get(&format!("/api/v1/incidents/{id}"));
    assert_eq!(d["incident"]["state"], "acknowledged");
    assert_eq!(d["incident"]["acked_by"], "alice");
    assert!(timeline_text(&d).contains("acknowledged by alice: looking"));
    let out = Command::new(medic_bin())
        .args(["incidents", "--api", &m.api])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains("acknowledged") && listing.contains("alice"),
        "{listing}"
    );
}

#[test]
fn file_sd_targets_sighup_reload_and_tcp_exec_probes() {
    let dir = TempDir::new("discovery");
    let a = TestServer::start(|_| (200, "m 0\n".into()));
    let b = TestServer::start(|_| (200, "m 1\nn 1\n".into()));
    let sd = dir.path("targets.json");
    std::fs::write(
        &sd,
        format!(
            r#"[{{"targets": ["127.0.0.1:{}"], "labels": {{"team": "a"}}}}]"#,
            a.port
        ),
    )
    .unwrap();
    let closed = free_port();
    let base = format!(
        r#"sources:
  - name: apps
    kind: scrape
    interval: 300ms
    file_sd: [targets.json]
  - name: port-check
    kind: tcp_probe
    interval: 300ms
    timeout: 200ms
    targets: ["127.0.0.1:{closed}", "127.0.0.1:{open}"]
  - name: script-ok
    kind: exec_probe
    interval: 300ms
    argv: [/bin/true]
  - name: script-bad
    kind: exec_probe
    interval: 300ms
    argv: [/bin/false]
detectors:
  - name: m-high
    kind: threshold
    series: m{{job="apps"}}
    above: 0
  - name: probe-dead
    kind: heartbeat
    series: probe_success
    timeout: 1s
"#,
        open = a.port
    );
    let mut m = Medic::start(&dir, &base, &[]);
    // Probes: the closed port and the failing script fire; the others never do.
    let dead = m.wait_incident("probe-dead", LONG, |_| true);
    wait_for(LONG, "both failing probes", || {
        let firing: Vec<String> = m
            .incidents()
            .iter()
            .filter(|i| i["detector"] == "probe-dead")
            .map(|i| i["labels"]["instance"].as_str().unwrap_or("").to_string())
            .collect();
        (firing.len() == 2).then_some(firing)
    });
    assert!(
        dead["incident"]["summary"]
            .as_str()
            .unwrap()
            .contains("no successful probe"),
        "{dead}"
    );
    let instances: Vec<String> = m
        .incidents()
        .iter()
        .map(|i| i["labels"]["instance"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        instances.contains(&format!("127.0.0.1:{closed}"))
            && instances.contains(&"script-bad".to_string()),
        "{instances:?}"
    );
    assert!(
        !instances.contains(&"script-ok".to_string())
            && !instances.contains(&format!("127.0.0.1:{}", a.port)),
        "{instances:?}"
    );
    // file_sd: add a target by rewriting the file; medic picks it up with its labels.
    std::fs::write(
        &sd,
        format!(r#"[{{"targets": ["127.0.0.1:{}"], "labels": {{"team": "a"}}}}, {{"targets": ["127.0.0.1:{}"], "labels": {{"team": "b"}}}}]"#, a.port, b.port),
    )
    .unwrap();
    let d = m.wait_incident("m-high", LONG, |_| true);
    assert_eq!(d["incident"]["labels"]["team"], "b");
    assert_eq!(
        d["incident"]["labels"]["instance"],
        format!("127.0.0.1:{}", b.port)
    );
    // SIGHUP: a new detector takes effect without a restart.
    let cfg = std::fs::read_to_string(dir.path("medic.yaml")).unwrap()
        + "  - name: n-high\n    kind: threshold\n    series: \"n\"\n    above: 0\n";
    std::fs::write(dir.path("medic.yaml"), cfg).unwrap();
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(m.pid() as i32, libc::SIGHUP);
    }
    m.wait_incident("n-high", LONG, |_| true);
    assert!(
        m.metrics()
            .contains("medic_config_reloads_total{result=\"ok\"} 1"),
        "{}",
        m.metrics()
    );
    m.stop();
}

#[test]
fn never_acts_on_an_incident_that_resolved_meanwhile() {
    let dir = TempDir::new("recheck");
    let dp = free_port();
    let _demo = demo_service(dp);
    let marker = dir.path("second-ran");
    let cfg = error_mode_config(dp, "300ms");
    let rb = format!(
        r#"name: slow
match: {{detectors: [demo-in-error-mode]}}
steps:
  - name: wait a bit
    kind: command
    argv: [sleep, "3"]
  - name: must not run
    kind: command
    argv: [touch, "{m}"]
"#,
        m = marker.display()
    );
    let m = Medic::start(&dir, &cfg, &[("rb.yaml", &rb)]);
    demo_fault(dp, "errors");
    m.wait_incident("demo-in-error-mode", LONG, |d| {
        d["actions"].as_array().is_some_and(|a| !a.is_empty())
    });
    // The fault goes away while the first step runs: the detector clears.
    demo_fault(dp, "ok");
    let d = m.wait_incident("demo-in-error-mode", LONG, |d| {
        d["runs"][0]["state"] != "running" && d["runs"][0]["state"].is_string()
    });
    let text = timeline_text(&d);
    assert_eq!(d["incident"]["state"], "resolved", "{text}");
    assert_eq!(d["runs"][0]["state"], "aborted", "{text}");
    assert!(
        !marker.exists(),
        "the second step ran on a resolved incident:\n{text}"
    );
    assert_eq!(
        d["actions"].as_array().unwrap().len(),
        1,
        "only the first step was journalled: {text}"
    );
    assert!(text.contains("incident resolved"), "{text}");
}
