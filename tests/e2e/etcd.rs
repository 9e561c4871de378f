//! medic on a real etcd 3.4 (`store: {kind: etcd}`): the spine scenario
//! keeps its state in etcd and survives a restart of medic; `medic store
//! migrate` moves the embedded store's state to etcd.

use std::process::Command;
use std::time::Duration;

use medic_e2e::components::Etcd;
use medic_e2e::*;
use serde_json::{Value, json};

const LONG: Duration = Duration::from_secs(60);

/// A scrape target whose `always_bad` series keeps detector `bad` firing.
fn always_bad() -> TestServer {
    TestServer::start(|_| (200, "always_bad 1\n".into()))
}

fn bad_source(port: u16) -> String {
    format!(
        "  - name: bad-target\n    kind: scrape\n    interval: 300ms\n    targets: [127.0.0.1:{port}]\n"
    )
}

const BAD_DETECTOR: &str =
    "  - name: bad\n    kind: threshold\n    series: always_bad\n    above: 0\n";

fn store(etcd: &Etcd, prefix: &str) -> String {
    format!(
        "store:\n  kind: etcd\n  endpoints: [{}]\n  prefix: {prefix}\n  timeout: 2s\n",
        etcd.url
    )
}

fn restart_runbook(demo_port: u16) -> String {
    format!(
        r#"name: restart-demo
match:
  detectors: [demo-unhealthy]
steps:
  - name: restart demo
    kind: restart
    service: demo
    timeout: 10s
    verify: {{http: "http://127.0.0.1:{demo_port}/health", within: 10s, interval: 100ms}}
"#
    )
}

fn ack(m: &Medic, id: i64, who: &str) {
    let (status, body) = m.post(
        &format!("/api/v1/incidents/{id}/ack"),
        &json!({"who": who, "comment": "mine"}),
    );
    assert_eq!(status, 200, "{body}");
}

fn detail(m: &Medic, id: i64) -> Value {
    m.get(&format!("/api/v1/incidents/{id}"))
}

#[test]
fn the_spine_runs_on_etcd_and_its_state_survives_a_restart() {
    let dir = TempDir::new("etcd-spine");
    let etcd = Etcd::start(&dir.0);
    let dp = free_port();
    let target = always_bad();
    let cfg = supervised_demo_config(dp, "200ms", &bad_source(target.port)).replace(
        "detectors:\n",
        &format!("{}detectors:\n{BAD_DETECTOR}", store(&etcd, "/medic-e2e/")),
    );
    let rb = restart_runbook(dp);
    let mut m = Medic::start(&dir, &cfg, &[("restart-demo.yaml", &rb)]);
    let port = m.port();
    wait_for(LONG, "demo service healthy", || {
        reqwest::blocking::get(format!("http://127.0.0.1:{dp}/health"))
            .ok()
            .filter(|r| r.status().is_success())
    });

    // Detected, restarted, verified, resolved.
    demo_fault(dp, "500");
    let d = m.wait_incident("demo-unhealthy", LONG, |d| {
        d["incident"]["state"] == "resolved" && d["runs"][0]["state"] == "recovered"
    });
    let recovered = d["incident"]["id"].as_i64().unwrap();
    let text = timeline_text(&d);
    assert!(text.contains("restarted demo"), "{text}");
    assert!(text.contains("→ resolved"), "{text}");
    assert_eq!(d["actions"][0]["state"], "succeeded", "{}", d["actions"]);

    // Acknowledged through the API.
    let held = m.wait_incident("bad", LONG, |_| true)["incident"]["id"]
        .as_i64()
        .unwrap();
    ack(&m, held, "alice");
    assert_eq!(detail(&m, held)["incident"]["state"], "acknowledged");

    // The state is in etcd, not in a local file.
    m.stop();
    assert!(
        !dir.path("state/medic.db").exists(),
        "medic wrote an SQLite store"
    );
    let keys = etcd.keys("/medic-e2e/");
    for want in [
        format!("/medic-e2e/incidents/{recovered:020}"),
        format!("/medic-e2e/incidents/{held:020}"),
        "/medic-e2e/journal/00000000000000000001".to_string(),
    ] {
        assert!(keys.contains(&want), "no {want} in {keys:#?}");
    }

    // A new medic process reads it all back.
    let m = Medic::restart_in(&dir.0, port);
    let d = detail(&m, recovered);
    assert_eq!(d["incident"]["state"], "resolved");
    assert_eq!(d["runs"][0]["state"], "recovered");
    assert_eq!(d["actions"][0]["state"], "succeeded");
    assert!(timeline_text(&d).contains("restarted demo"));
    let h = detail(&m, held);
    assert_eq!(h["incident"]["state"], "acknowledged", "{h}");
    assert_eq!(h["incident"]["acked_by"], "alice");
    assert!(timeline_text(&h).contains("acknowledged by alice: mine"));
}

fn migrate(dir: &TempDir, extra: &[&str]) -> (bool, String) {
    let out = Command::new(medic_bin())
        .args(["store", "migrate", "--config"])
        .arg(dir.path("medic.yaml"))
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn store_migrate_moves_the_embedded_state_to_etcd() {
    let dir = TempDir::new("etcd-migrate");
    let etcd = Etcd::start(&dir.0);
    let target = always_bad();
    let cfg = format!(
        "sources:\n{}detectors:\n{BAD_DETECTOR}",
        bad_source(target.port)
    );
    let mut m = Medic::start(&dir, &cfg, &[]);
    let port = m.port();
    let id = m.wait_incident("bad", LONG, |_| true)["incident"]["id"]
        .as_i64()
        .unwrap();
    ack(&m, id, "bob");
    let before = timeline_text(&detail(&m, id));
    m.stop();

    let endpoints = ["--endpoints", etcd.url.as_str(), "--prefix", "/migrated/"];
    let (ok, out) = migrate(&dir, &endpoints);
    assert!(ok, "{out}");
    assert!(out.contains("1 incidents"), "{out}");
    let (ok, out) = migrate(&dir, &endpoints);
    assert!(
        !ok && out.contains("--force"),
        "a second run must refuse: {out}"
    );
    let (ok, out) = migrate(&dir, &[&endpoints[..], &["--force"]].concat());
    assert!(ok, "{out}");

    // Switch medic.yaml to etcd; the SQLite file is set aside so that
    // only etcd can answer.
    let yaml = std::fs::read_to_string(dir.path("medic.yaml")).unwrap();
    std::fs::write(
        dir.path("medic.yaml"),
        format!("{yaml}{}", store(&etcd, "/migrated/")),
    )
    .unwrap();
    std::fs::rename(dir.path("state/medic.db"), dir.path("state/old.db")).unwrap();
    let m = Medic::restart_in(&dir.0, port);
    let d = detail(&m, id);
    assert_eq!(d["incident"]["state"], "acknowledged", "{d}");
    assert_eq!(d["incident"]["acked_by"], "bob");
    assert!(
        timeline_text(&d).starts_with(&before),
        "timeline after migration:\n{}\nbefore:\n{before}",
        timeline_text(&d)
    );
    assert!(!dir.path("state/medic.db").exists());
}
