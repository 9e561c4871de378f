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

/// Two medic nodes on one etcd with leader election, one scrape target
/// that can be made bad, and a runbook whose command appends a line to
/// `actions.log` in `shared`.
fn ha_node(dir: &TempDir, shared: &TempDir, etcd: &Etcd, node: &str, target: u16) -> Medic {
    let log = shared.path("actions.log");
    let cfg = format!(
        "sources:\n  - name: t\n    kind: scrape\n    interval: 200ms\n    targets: [127.0.0.1:{target}]\n\
         detectors:\n  - name: bad\n    kind: threshold\n    series: bad\n    above: 0\n\
         {}  election: {{node: {node}, ttl: 3s, renew: 500ms}}\n",
        store(etcd, "/ha/")
    );
    let rb = format!(
        "name: act\nmatch: {{detectors: [bad]}}\nsteps:\n  - name: record\n    kind: command\n    timeout: 1s\n    argv: [sh, -c, 'echo acted >> {}']\n",
        log.display()
    );
    Medic::start(dir, &cfg, &[("act.yaml", &rb)])
}

fn actions(shared: &TempDir) -> usize {
    std::fs::read_to_string(shared.path("actions.log"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

fn leader(etcd: &Etcd) -> Option<String> {
    let out = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args([
            "--endpoints",
            &etcd.url,
            "get",
            "--print-value-only",
            "/ha/leader",
        ])
        .output()
        .ok()?;
    let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!v.is_empty()).then_some(v)
}

#[test]
fn two_nodes_act_once_and_the_survivor_takes_over_with_a_newer_token() {
    let shared = TempDir::new("ha-shared");
    let etcd = Etcd::start(&shared.0);
    let bad = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let b2 = bad.clone();
    let target = TestServer::start(move |_| {
        let v = u8::from(b2.load(std::sync::atomic::Ordering::SeqCst));
        (200, format!("bad {v}\n"))
    });
    let (da, db) = (TempDir::new("ha-a"), TempDir::new("ha-b"));
    let mut nodes = [
        ha_node(&da, &shared, &etcd, "a", target.port),
        ha_node(&db, &shared, &etcd, "b", target.port),
    ];
    wait_for(LONG, "a leader", || leader(&etcd));

    // Both nodes see the incident; the leader acts, once.
    bad.store(true, std::sync::atomic::Ordering::SeqCst);
    wait_for(LONG, "the action", || (actions(&shared) > 0).then_some(()));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(actions(&shared), 1, "one action for one incident");
    let d = nodes[1].wait_incident("bad", LONG, |d| d["runs"][0]["state"] == "completed");
    assert_eq!(d["runs"].as_array().unwrap().len(), 1, "{}", d["runs"]);
    let token = d["actions"][0]["fence"].as_i64().expect("a fencing token");

    // kill -9 the leader; the incident clears and comes back: the other
    // node leads within the lease TTL and acts under a newer token.
    let current = leader(&etcd).expect("a leader");
    let (dead, alive) = if current == "a" { (0, 1) } else { (1, 0) };
    nodes[dead].kill9();
    bad.store(false, std::sync::atomic::Ordering::SeqCst);
    nodes[alive].wait_incident("bad", LONG, |d| d["incident"]["state"] == "resolved");
    bad.store(true, std::sync::atomic::Ordering::SeqCst);
    wait_for(LONG, "the survivor's action", || {
        (actions(&shared) > 1).then_some(())
    });
    assert_ne!(leader(&etcd), Some(current));
    let d = nodes[alive].wait_incident("bad", LONG, |d| {
        d["incident"]["state"] != "resolved" && d["runs"][0]["state"] == "completed"
    });
    let newer = d["actions"][0]["fence"].as_i64().expect("a fencing token");
    assert!(newer > token, "{newer} after {token}");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(actions(&shared), 2);
}
