//! The web console in real headless Chromium (Debian `chromium` driven by
//! playwright-core, `tests/browser/console.js`): medic scrapes a real target
//! and takes alerts through its Alertmanager webhook; the browser loads the
//! list (HTML in labels stays text; the flapping marker shows), opens
//! incidents (the anomaly chart with its band, an incident without series),
//! acknowledges one and sees its state change, and silences it. Then the
//! API must agree. Screenshots land in `<target>/debug/e2e-artifacts/`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use medic_e2e::components::{artifacts_dir, browser_script};
use medic_e2e::*;
use serde_json::{Value, json};

const WHO: &str = "browser-e2e";

/// One POST to the Alertmanager webhook source.
fn webhook(m: &Medic, alerts: Vec<Value>) {
    let (code, body) = m.post(
        "/api/v1/alertmanager",
        &json!({"version": "4", "status": "firing", "receiver": "medic", "alerts": alerts}),
    );
    assert!(code < 300, "alertmanager webhook: {code} {body}");
}

/// `n` ordinary alerts and one whose label and summary are HTML.
fn send_alerts(m: &Medic, n: usize) {
    let mut alerts: Vec<Value> = (0..n)
        .map(|i| {
            json!({"status": "firing",
                   "labels": {"alertname": "HighLatency", "service": format!("svc-{i}"), "severity": "warning"},
                   "annotations": {"summary": format!("p99 latency above 2s on svc-{i}")}})
        })
        .collect();
    alerts.push(json!({"status": "firing",
        "labels": {"alertname": "Evil", "note": "<img src=x onerror=window.__pwned=1>\"'&", "severity": "critical"},
        "annotations": {"summary": "<script>window.__pwned=2</script> evil"}}));
    webhook(m, alerts);
}

/// Fire and clear an alert three times: with `flapping: {changes: 2}` the
/// incident is marked flapping and held open.
fn bounce(m: &Medic) -> i64 {
    for _ in 0..3 {
        for status in ["firing", "resolved"] {
            webhook(
                m,
                vec![json!({"status": status, "labels": {"alertname": "Bouncy"}})],
            );
        }
    }
    wait_for(Duration::from_secs(20), "a flapping incident", || {
        m.get("/api/v1/incidents/flapping")["flapping"][0].as_i64()
    })
}

fn id_of(m: &Medic, detector: &str) -> i64 {
    wait_for(
        Duration::from_secs(30),
        &format!("incident from {detector}"),
        || {
            m.incidents()
                .into_iter()
                .find(|i| i["detector"] == detector)
                .and_then(|i| i["id"].as_i64())
        },
    )
}

#[test]
fn the_console_in_chromium_lists_opens_acknowledges_and_silences_an_incident() {
    let jumped = Arc::new(AtomicBool::new(false));
    let target = queue_depth_target(jumped.clone());
    let dir = TempDir::new("console");
    let config = queue_depth_config(
        target.port,
        "  - name: am\n    kind: alertmanager\n",
        "  - name: queue-high\n    kind: threshold\n    series: app_queue_depth\n    above: 100\n    severity: critical\n",
    );
    let config = format!("{config}flapping:\n  changes: 2\n  window: 1m\n  settle: 10m\n");
    let m = Medic::start(&dir, &config, &[]);
    // Let the anomaly model learn the normal level, then jump.
    wait_for(Duration::from_secs(30), "60 cached points", || {
        let s = m.get("/api/v1/series?match=app_queue_depth");
        (s["series"][0]["points"].as_array().map_or(0, Vec::len) >= 60).then_some(())
    });
    assert!(m.incidents().is_empty(), "no false alarm while normal");
    send_alerts(&m, 30);
    let flapping = bounce(&m);
    jumped.store(true, Ordering::Relaxed);
    let anomaly = id_of(&m, "queue-anomaly");
    let high = id_of(&m, "queue-high");
    let evil = id_of(&m, "Evil");

    let shots = artifacts_dir();
    let out = browser_script(
        "console.js",
        &[
            ("MEDIC_URL", m.api.clone()),
            ("ACK_ID", high.to_string()),
            ("ANOMALY_ID", anomaly.to_string()),
            ("EVIL_ID", evil.to_string()),
            ("FLAPPING_ID", flapping.to_string()),
            // 30 alerts, the evil one, the flapping one, the threshold incident
            // (the anomaly one may have cleared).
            ("MIN_ROWS", "33".into()),
            ("WHO", WHO.into()),
            ("SHOT_DIR", shots.display().to_string()),
        ],
    );
    println!("browser saw: {out}");
    let seen: Value = serde_json::from_str(out.trim()).expect("the script prints JSON");
    assert_eq!(seen["stateBefore"], "firing", "{seen}");
    assert_eq!(seen["stateAfter"], "acknowledged", "{seen}");
    assert!(
        seen["badSilenceResult"]
            .as_str()
            .is_some_and(|r| r.contains("(400)") && r.contains("matchers")),
        "{seen}"
    );
    for s in seen["screenshots"].as_array().unwrap() {
        println!("screenshot: {}", s.as_str().unwrap());
    }

    // The API agrees: acknowledged by the name typed, one silence from the labels.
    let d = m.get(&format!("/api/v1/incidents/{high}"));
    assert_eq!(d["incident"]["state"], "acknowledged", "{d}");
    assert_eq!(d["incident"]["acked_by"], WHO, "{d}");
    assert!(
        timeline_text(&d).contains("looking at it from the console"),
        "{d}"
    );
    let silences = m.get("/api/v1/silences")["silences"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        silences.len(),
        1,
        "the bad silence changed nothing: {silences:?}"
    );
    assert_eq!(silences[0]["created_by"], WHO);
    assert_eq!(
        silences[0]["matchers"],
        format!(r#"{{instance="127.0.0.1:{}", job="app"}}"#, target.port)
    );
    assert_eq!(silences[0]["comment"], "deploy in progress");
    let hour =
        silences[0]["ends_at"].as_i64().unwrap() - silences[0]["starts_at"].as_i64().unwrap();
    assert_eq!(hour, 3_600_000);
}

#[test]
fn with_api_tokens_the_console_asks_for_one_and_acks_as_the_tokens_owner() {
    let dir = TempDir::new("console-tokens");
    std::fs::write(dir.path("vera.token"), "console-viewer-1\n").unwrap();
    std::fs::write(dir.path("rita.token"), "console-responder-2\n").unwrap();
    let m = Medic::start(
        &dir,
        "sources:\n  - name: am\n    kind: alertmanager\nauth:\n  tokens:\n    - {name: vera, role: viewer, token_file: vera.token}\n    - {name: rita, role: responder, token_file: rita.token}\n",
        &[],
    );
    webhook(
        &m,
        vec![
            json!({"status": "firing", "labels": {"alertname": "Down", "service": "web"},
                    "annotations": {"summary": "web is down"}}),
        ],
    );
    let get = |path: &str| -> Value {
        reqwest::blocking::Client::new()
            .get(format!("{}{path}", m.api))
            .bearer_auth("console-viewer-1")
            .send()
            .and_then(|r| r.json())
            .expect("GET with a token")
    };
    let id = wait_for(Duration::from_secs(20), "the incident", || {
        get("/api/v1/incidents")["incidents"][0]["id"].as_i64()
    });
    let out = browser_script(
        "console_tokens.js",
        &[
            ("MEDIC_URL", m.api.clone()),
            ("ACK_ID", id.to_string()),
            ("VIEWER_TOKEN", "console-viewer-1".into()),
            ("RESPONDER_TOKEN", "console-responder-2".into()),
            ("SHOT_DIR", artifacts_dir().display().to_string()),
        ],
    );
    let seen: Value = serde_json::from_str(out.trim()).expect("the script prints JSON");
    assert!(
        seen["viewerAck"]
            .as_str()
            .is_some_and(|r| r.contains("needs responder")),
        "{seen}"
    );
    assert_eq!(seen["stateAfterViewer"], "firing", "{seen}");
    assert_eq!(seen["holder"], "rita", "{seen}");
    let d = get(&format!("/api/v1/incidents/{id}"));
    assert_eq!(d["incident"]["acked_by"], "rita", "{d}");
}
