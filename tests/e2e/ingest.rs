//! Ingest from the monitoring teams already run, with the real components:
//! Prometheus 2.42 scrapes the demo service and remote-writes to medic (the
//! same values arrive); a PromQL source queries that Prometheus; Alertmanager
//! 0.25 delivers a Prometheus alert rule's firing and resolved notifications
//! to medic, whose runbook fixes the cause.

use std::time::Duration;

use medic_e2e::components::{Alertmanager, Prometheus, have, present};
use medic_e2e::*;
use serde_json::Value;

const LONG: Duration = Duration::from_secs(90);

fn components_present() -> bool {
    present(
        have("prometheus") && have("prometheus-alertmanager"),
        "prometheus / prometheus-alertmanager",
    )
}

fn prometheus_config(demo_port: u16, medic_port: u16, extra: &str) -> String {
    format!(
        r#"global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: demo
    static_configs:
      - targets: ['127.0.0.1:{demo_port}']
remote_write:
  - url: http://127.0.0.1:{medic_port}/api/v1/write
    queue_config:
      batch_send_deadline: 1s
{extra}"#
    )
}

/// Raw samples `(ms, value)` Prometheus holds for a series over the last minute.
fn prometheus_points(p: &Prometheus, selector: &str) -> Vec<(i64, f64)> {
    let r = p.query(&format!("{selector}[1m]"));
    r["data"]["result"][0]["values"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|v| {
            let t = (v[0].as_f64().unwrap() * 1000.0).round() as i64;
            (t, v[1].as_str().unwrap().parse::<f64>().unwrap())
        })
        .collect()
}

fn medic_points(m: &Medic, selector: &str) -> Vec<(i64, f64)> {
    let v = m.get(&format!(
        "/api/v1/series?match={}",
        reqwest::Url::parse_with_params("http://x/", &[("m", selector)])
            .unwrap()
            .query()
            .unwrap()
            .trim_start_matches("m=")
    ));
    v["series"][0]["points"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|p| Some((p[0].as_i64()?, p[1].as_f64()?)))
        .collect()
}

#[test]
fn prometheus_remote_write_and_promql_feed_detectors() {
    if !components_present() {
        return;
    }
    let dir = TempDir::new("rw");
    let demo_port = free_port();
    let _demo = demo_service(demo_port);
    let prom_port_file = dir.path("prom-url");
    // medic first (Prometheus needs its port), with the PromQL source's URL
    // filled in by a reload once Prometheus runs.
    let config = |prom_url: &str| {
        format!(
            r#"sources:
  - name: rw
    kind: remote_write
    labels: {{via: remote_write}}
  - name: prom
    kind: promql
    interval: 1s
    url: {prom_url}
    queries:
      - name: demo_error_ratio
        expr: 'sum(rate(demo_requests_total{{code="500"}}[5s])) / sum(rate(demo_requests_total[5s]))'
detectors:
  - name: demo-down
    kind: threshold
    series: up{{job="demo", via="remote_write"}}
    below: 1
    severity: critical
  - name: demo-errors-from-rw
    kind: error_rate
    errors: demo_requests_total{{job="demo", code="500"}}
    total: demo_requests_total{{job="demo"}}
    by: [job]
    window: 5s
    max_ratio: 0.3
    clear_ratio: 0.1
    min_total: 5
  - name: demo-errors-from-promql
    kind: threshold
    series: demo_error_ratio{{job="prom"}}
    above: 0.3
"#
        )
    };
    let m = Medic::start(&dir, &config("http://127.0.0.1:1"), &[]);
    let prom = Prometheus::start(&dir.0, &prometheus_config(demo_port, m.port(), ""), &[]);
    let text = std::fs::read_to_string(dir.path("medic.yaml"))
        .unwrap()
        .replace("http://127.0.0.1:1", &prom.url);
    std::fs::write(dir.path("medic.yaml"), text).unwrap();
    std::fs::write(&prom_port_file, &prom.url).unwrap();
    let (code, body) = m.post("/api/v1/reload", &Value::Null);
    assert_eq!(code, 200, "{body}");

    // The same values arrive: every point medic holds of a counter that lies
    // within Prometheus's last minute is exactly one of Prometheus's samples.
    let sel = r#"demo_requests_total{job="demo",code="200"}"#;
    let matched = wait_for(LONG, "remote-written samples in medic", || {
        let ours = medic_points(&m, sel);
        let theirs = prometheus_points(&prom, sel);
        let first = theirs.first()?.0;
        let common: Vec<_> = ours.iter().filter(|p| p.0 >= first).collect();
        for p in &common {
            assert!(
                theirs.contains(p),
                "medic has {p:?}, which Prometheus does not: {theirs:?}"
            );
        }
        (common.len() >= 5).then_some(common.len())
    });
    eprintln!("{matched} remote-written points identical to Prometheus's");
    assert!(
        m.metrics()
            .contains(r#"medic_samples_ingested_total{source="rw"}"#)
    );

    // Half the demo's requests fail: both the remote_write error-rate detector
    // and the PromQL-fed threshold fire.
    demo_fault(demo_port, "errors");
    let rw = m.wait_incident("demo-errors-from-rw", LONG, |_| true);
    assert_eq!(rw["incident"]["labels"]["job"], "demo");
    let pq = m.wait_incident("demo-errors-from-promql", LONG, |_| true);
    assert_eq!(pq["incident"]["labels"]["job"], "prom");
    demo_fault(demo_port, "ok");
    m.wait_incident("demo-errors-from-rw", LONG, |d| {
        d["incident"]["state"] == "resolved"
    });
    m.wait_incident("demo-errors-from-promql", LONG, |d| {
        d["incident"]["state"] == "resolved"
    });

    // The target going away reaches medic as Prometheus's own up == 0.
    drop(_demo);
    let down = m.wait_incident("demo-down", LONG, |_| true);
    assert_eq!(
        down["incident"]["labels"]["instance"],
        format!("127.0.0.1:{demo_port}")
    );
}

#[test]
fn remote_write_refuses_bad_payloads_and_keeps_serving() {
    let dir = TempDir::new("rw-bad");
    let m = Medic::start(
        &dir,
        "sources:\n  - name: rw\n    kind: remote_write\n    limits: {max_body_bytes: 1000}\n",
        &[],
    );
    let c = reqwest::blocking::Client::new();
    let post = |body: Vec<u8>, enc: &str| {
        let r = c
            .post(format!("{}/api/v1/write", m.api))
            .header("Content-Encoding", enc)
            .header("Content-Type", "application/x-protobuf")
            .body(body)
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    let (s, t) = post(b"garbage".to_vec(), "snappy");
    assert_eq!(s, 400, "{t}");
    assert!(t.contains("snappy"), "{t}");
    let (s, t) = post(vec![0; 2000], "snappy");
    assert_eq!(s, 413, "{t}");
    let (s, _) = post(vec![0; 10], "gzip");
    assert_eq!(s, 415);
    assert_eq!(
        m.get("/api/v1/incidents")["incidents"],
        Value::Array(vec![])
    );
    let metrics = m.metrics();
    assert!(
        metrics.contains(r#"medic_source_errors_total{source="rw",reason="malformed"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"reason="too_large"} 1"#), "{metrics}");
}

#[test]
fn alertmanager_alerts_open_incidents_that_runbooks_fix() {
    if !components_present() {
        return;
    }
    let dir = TempDir::new("am");
    let demo_port = free_port();
    let _demo = demo_service(demo_port);
    let runbook = format!(
        r#"name: clear-demo-errors
match:
  detectors: [DemoInErrorMode]
steps:
  - name: put the demo back to ok
    kind: http
    url: http://127.0.0.1:{demo_port}/fault/ok
    timeout: 5s
    verify: {{detector_cleared: true, within: 60s}}
"#
    );
    let m = Medic::start(
        &dir,
        "sources:\n  - name: am\n    kind: alertmanager\n",
        &[("clear.yaml", &runbook)],
    );
    let am = Alertmanager::start(
        &dir.0,
        &format!(
            r#"route:
  receiver: medic
  group_by: ['alertname']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: medic
    webhook_configs:
      - url: {}/api/v1/alertmanager
        send_resolved: true
"#,
            m.api
        ),
    );
    let rules = r#"groups:
  - name: demo
    rules:
      - alert: DemoInErrorMode
        expr: demo_mode{mode="errors"} == 1
        labels: {severity: critical, service: demo}
        annotations: {summary: "the demo fails half its requests"}
"#;
    let am_port = am.url.rsplit(':').next().unwrap().to_string();
    let _prom = Prometheus::start(
        &dir.0,
        &format!(
            r#"global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [rules.yml]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:{am_port}']
scrape_configs:
  - job_name: demo
    static_configs:
      - targets: ['127.0.0.1:{demo_port}']
"#
        ),
        &[("rules.yml", rules)],
    );
    demo_fault(demo_port, "errors");
    // Prometheus fires the rule, Alertmanager notifies medic, medic opens an
    // incident and runs the runbook, which puts the demo back to ok; the rule
    // stops firing and Alertmanager's resolved notification resolves it.
    let d = m.wait_incident("DemoInErrorMode", LONG, |d| {
        d["incident"]["state"] == "resolved"
    });
    let i = &d["incident"];
    assert_eq!(i["severity"], "critical");
    assert_eq!(i["labels"]["service"], "demo");
    assert_eq!(i["summary"], "the demo fails half its requests");
    let tl = d["timeline"].as_array().unwrap();
    assert!(
        tl.iter().any(|e| e["data"]["source"] == "am"),
        "timeline: {tl:?}"
    );
    let resolved = tl
        .iter()
        .find(|e| e["message"].as_str().unwrap_or("").contains("→ resolved"))
        .unwrap_or_else(|| panic!("no resolution in {tl:?}"));
    assert!(
        resolved["message"]
            .as_str()
            .unwrap()
            .contains("DemoInErrorMode is resolved"),
        "{resolved}"
    );
    let actions = d["actions"].as_array().unwrap();
    assert!(
        actions.iter().any(|a| a["state"] == "succeeded"),
        "actions: {actions:?}"
    );
    assert!(
        m.metrics()
            .contains(r#"medic_samples_ingested_total{source="am"}"#)
    );
}

#[test]
fn dns_srv_discovery_follows_the_records() {
    if !present(
        have("dnsmasq") || std::path::Path::new("/usr/sbin/dnsmasq").exists(),
        "dnsmasq (dnsmasq-base)",
    ) {
        return;
    }
    let dir = TempDir::new("dns");
    let (p1, p2) = (free_port(), free_port());
    let _d1 = demo_service(p1);
    let _d2 = demo_service(p2);
    let name = "_demo._tcp.medic.test";
    let dns = medic_e2e::components::Dnsmasq::start(&dir.0, 0, &[(name, "localhost", p1)]);
    let m = Medic::start(
        &dir,
        &format!(
            r#"sources:
  - name: demo
    kind: scrape
    interval: 300ms
    dns_sd:
      names: [{name}]
      server: {}
      refresh: 1s
"#,
            dns.addr
        ),
        &[],
    );
    let instances = || -> Vec<String> {
        m.get("/api/v1/series?match=up")["series"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|s| s["points"][0][1] == 1.0)
            .map(|s| s["labels"]["instance"].as_str().unwrap().to_string())
            .collect()
    };
    wait_for(LONG, "the SRV target scraped", || {
        (instances() == vec![format!("localhost:{p1}")]).then_some(())
    });
    // The records change: both, then only the second.
    let port = dns.port();
    drop(dns);
    let dns = medic_e2e::components::Dnsmasq::start(
        &dir.0,
        port,
        &[(name, "localhost", p1), (name, "localhost", p2)],
    );
    wait_for(LONG, "the second SRV target scraped", || {
        let i = instances();
        (i.contains(&format!("localhost:{p2}"))).then_some(())
    });
    drop(dns);
    let _dns = medic_e2e::components::Dnsmasq::start(&dir.0, port, &[(name, "localhost", p2)]);
    wait_for(LONG, "the first target dropped", || {
        m.log()
            .contains(&format!("target removed source=demo target=localhost:{p1}"))
            .then_some(())
    });
}
