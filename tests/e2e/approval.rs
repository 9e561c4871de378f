//! The approval gate (`kind: approval`): a risky step waits for a person to
//! acknowledge the incident; with an ack it runs, attributed to the
//! approver; without one before the timeout it is denied and the runbook
//! escalates.

use std::time::Duration;

use medic_e2e::*;
use serde_json::{Value, json};

const LONG: Duration = Duration::from_secs(60);

fn setup(name: &str, approval_timeout: &str, hook: u16) -> (TempDir, Medic, u16) {
    let dir = TempDir::new(name);
    let demo_port = free_port();
    let config = supervised_demo_config(demo_port, "300ms", "");
    let runbook = format!(
        r#"name: restart-with-approval
match: {{detectors: [demo-unhealthy]}}
steps:
  - name: ask on-call
    kind: approval
    timeout: {approval_timeout}
    poll: 100ms
  - name: restart demo
    kind: restart
    service: demo
    timeout: 10s
    verify: {{http: "http://127.0.0.1:{demo_port}/health", within: 10s}}
escalate:
  - name: page
    kind: notify
    url: http://127.0.0.1:{hook}/page
"#
    );
    let m = Medic::start(&dir, &config, &[("rb.yaml", &runbook)]);
    wait_for(LONG, "demo healthy", || {
        reqwest::blocking::get(format!("http://127.0.0.1:{demo_port}/health"))
            .ok()
            .filter(|r| r.status().is_success())
    });
    (dir, m, demo_port)
}

fn restarts(d: &Value) -> usize {
    d["actions"]
        .as_array()
        .map(|a| a.iter().filter(|x| x["executor"] == "restart").count())
        .unwrap_or(0)
}

#[test]
fn a_risky_step_waits_for_an_ack_and_runs_attributed_to_the_approver() {
    let hook = TestServer::start(|_| (200, String::new()));
    let (_dir, m, demo_port) = setup("approve", "60s", hook.port);
    let pid = service_pid(&m, "demo").unwrap();
    demo_fault(demo_port, "500");
    let d = m.wait_incident("demo-unhealthy", LONG, |d| {
        timeline_text(d).contains("approval")
    });
    // Nobody approved yet: nothing restarted.
    std::thread::sleep(Duration::from_secs(2));
    let id = d["incident"]["id"].as_i64().unwrap();
    let d = m.get(&format!("/api/v1/incidents/{id}"));
    assert_eq!(restarts(&d), 0, "{}", timeline_text(&d));
    assert_eq!(service_pid(&m, "demo"), Some(pid));

    let (code, body) = m.post(
        &format!("/api/v1/incidents/{id}/ack"),
        &json!({"who": "alice", "comment": "go ahead"}),
    );
    assert_eq!(code, 200, "{body}");
    let d = m.wait_incident("demo-unhealthy", LONG, |d| {
        d["incident"]["state"] == "resolved"
    });
    assert_eq!(restarts(&d), 1, "{}", timeline_text(&d));
    assert!(
        timeline_text(&d).contains("approved: acknowledged by alice"),
        "{}",
        timeline_text(&d)
    );
    assert_ne!(service_pid(&m, "demo"), Some(pid), "restarted");
    assert!(hook.requests().is_empty(), "no escalation");
}

#[test]
fn no_ack_before_the_timeout_denies_the_step_and_escalates() {
    let hook = TestServer::start(|_| (200, String::new()));
    let (_dir, m, demo_port) = setup("deny", "2s", hook.port);
    let pid = service_pid(&m, "demo").unwrap();
    demo_fault(demo_port, "500");
    wait_for(LONG, "the escalation", || {
        hook.requests()
            .iter()
            .any(|r| r.path == "/page")
            .then_some(())
    });
    let d = m.wait_incident("demo-unhealthy", LONG, |_| true);
    assert_eq!(restarts(&d), 0, "{}", timeline_text(&d));
    assert_eq!(service_pid(&m, "demo"), Some(pid), "not restarted");
}
