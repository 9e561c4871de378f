//! The shipped Grafana dashboard against real data: a real Prometheus 2.42
//! scrapes a medic that detects, restarts, reloads and fails a scrape, and
//! every query of every panel in dashboards/medic.json returns data.

use std::time::Duration;

use medic_e2e::components::{Prometheus, have, present};
use medic_e2e::*;
use serde_json::Value;

/// Every PromQL expression of the dashboard, with Grafana's variables
/// replaced the way Grafana would for this Prometheus (1 s scrapes).
fn dashboard_queries() -> Vec<(String, String)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboards/medic.json");
    let d: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(e) = t["expr"].as_str() {
                let e = e
                    .replace("$__rate_interval", "15s")
                    .replace("$__interval", "5s")
                    .replace("$job", ".*");
                out.push((p["title"].as_str().unwrap_or("?").to_string(), e));
            }
        }
    }
    out
}

#[test]
fn every_dashboard_panel_has_data() {
    if !present(have("prometheus"), "prometheus") {
        return;
    }
    let queries = dashboard_queries();
    assert!(queries.len() >= 9, "{queries:?}");
    let dir = TempDir::new("dash");
    let demo_port = free_port();
    let config = supervised_demo_config(
        demo_port,
        "500ms",
        "  - name: gone\n    kind: scrape\n    interval: 1s\n    targets: [127.0.0.1:1]\n",
    );
    let runbook = format!(
        r#"name: restart-demo
match:
  detectors: [demo-unhealthy]
steps:
  - name: restart
    kind: restart
    service: demo
    timeout: 10s
    verify: {{http: "http://127.0.0.1:{demo_port}/health", within: 10s}}
"#
    );
    // A receiver, so the notification panel has deliveries to show.
    let hook = TestServer::start(|_| (200, "ok".into()));
    let config = format!(
        "{config}notifiers:\n  - name: hook\n    kind: webhook\n    url: http://127.0.0.1:{}/hook\nescalation_policies:\n  - name: p\n    levels:\n      - notify: [hook]\nroutes:\n  - policy: p\n",
        hook.port
    );
    let m = Medic::start(&dir, &config, &[("restart.yaml", &runbook)]);
    let prom = Prometheus::start(
        &dir.0,
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: medic\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            m.port()
        ),
        &[],
    );
    // Give the panels something to show: a hang the runbook fixes (an
    // incident, an action with a duration), a reload, a failing scrape.
    wait_for(Duration::from_secs(20), "demo healthy", || {
        reqwest::blocking::get(format!("http://127.0.0.1:{demo_port}/health"))
            .ok()
            .filter(|r| r.status().is_success())
    });
    demo_fault(demo_port, "500");
    m.wait_incident("demo-unhealthy", Duration::from_secs(60), |d| {
        d["incident"]["state"] == "resolved"
    });
    let (code, _) = m.post("/api/v1/reload", &Value::Null);
    assert_eq!(code, 200);

    let mut missing = Vec::new();
    wait_for(Duration::from_secs(60), "every panel to have data", || {
        missing.clear();
        for (title, q) in &queries {
            let r = prom.query(q);
            let n = r["data"]["result"].as_array().map_or(0, |a| a.len());
            if n == 0 {
                missing.push(format!("{title}: {q} -> {r}"));
            }
        }
        missing.is_empty().then_some(())
    });
}
