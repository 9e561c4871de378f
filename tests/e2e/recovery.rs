//! Guard rails and plug-ins, end to end with the real `medic` binary: a
//! crash-looping service stops being restarted (and stays stopped across a
//! restart of medic); ten services failing because of one dependency are not
//! all restarted; an incident that resolves during a back-off ends the run;
//! a plug-in flips a feature flag; dry runs record what would have run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use medic_e2e::*;
use serde_json::Value;

const LONG: Duration = Duration::from_secs(60);

/// A runbook restarting the service named by the incident's `service` label,
/// verified by the detector clearing within `within`, escalating to `hook`.
fn restart_runbook(detector: &str, guards: &str, within: &str, hook: u16) -> String {
    format!(
        r#"name: restart-{detector}
match: {{detectors: [{detector}]}}
guards:
  {guards}
steps:
  - name: restart it
    kind: restart
    service: "{{{{ labels.service }}}}"
    timeout: 5s
    verify: {{detector_cleared: true, within: {within}}}
escalate:
  - name: page
    kind: notify
    url: http://127.0.0.1:{hook}/page
"#
    )
}

/// Every incident's detail.
fn details(m: &Medic) -> Vec<Value> {
    m.incidents()
        .iter()
        .map(|i| m.get(&format!("/api/v1/incidents/{}", i["id"])))
        .collect()
}

/// Journal entries across all incidents with this executor and state.
fn actions(ds: &[Value], executor: &str, state: &str) -> Vec<Value> {
    ds.iter()
        .flat_map(|d| d["actions"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["executor"] == executor && a["state"] == state)
        .collect()
}

/// The value of a counter line in medic's /metrics, 0 if absent.
fn metric(m: &Medic, line_prefix: &str) -> f64 {
    m.metrics()
        .lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// A scrape target exposing `fault_active` 1 or 0, switched by the test.
fn fault_switch() -> (TestServer, Arc<AtomicBool>) {
    let on = Arc::new(AtomicBool::new(false));
    let flag = on.clone();
    let s = TestServer::start(move |_| {
        let v = u8::from(flag.load(Ordering::SeqCst));
        (
            200,
            format!("# TYPE fault_active gauge\nfault_active {v}\n"),
        )
    });
    (s, on)
}

fn fault_config(port: u16) -> String {
    format!(
        r#"sources:
  - name: faults
    kind: scrape
    interval: 300ms
    targets: [127.0.0.1:{port}]
detectors:
  - name: fault
    kind: threshold
    series: fault_active
    above: 0
"#
    )
}

#[test]
fn crash_looping_service_is_restarted_three_times_then_escalated_even_after_a_medic_restart() {
    let dir = TempDir::new("crashloop");
    let hook = TestServer::start(|_| (200, "ok".into()));
    let cfg = r#"services:
  crashy:
    argv: [sh, -c, "sleep 1; exit 1"]
    grace: 1s
detectors:
  - name: crashy-down
    kind: threshold
    series: medic_service_up{service="crashy"}
    below: 1
    severity: critical
"#;
    let rb = restart_runbook(
        "crashy-down",
        "restart_loop: {max_restarts: 3, window: 10m, reset_after: 1m, warmup: 2s}",
        "3s",
        hook.port,
    );
    let mut m = Medic::start(&dir, cfg, &[("rb.yaml", &rb)]);
    let port = m.port();
    let blocked = m.wait_incident("crashy-down", LONG, |d| d["runs"][0]["state"] == "blocked");
    let text = timeline_text(&blocked);
    assert!(text.contains("held by guard restart_loop"), "{text}");
    assert!(text.contains("escalating"), "{text}");
    let ds = details(&m);
    let restarts = actions(&ds, "restart", "succeeded");
    assert_eq!(
        restarts.len(),
        3,
        "three restarts, then no more: {restarts:?}"
    );
    let held = actions(&ds, "restart", "blocked");
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(
        held[0]["detail"]
            .as_str()
            .unwrap()
            .contains("guard restart_loop")
    );
    // The warm-up after a restart held the next one back for a moment.
    let all: String = ds.iter().map(timeline_text).collect::<Vec<_>>().join("\n");
    assert!(all.contains("warm-up"), "{all}");
    wait_for(LONG, "escalation received", || {
        hook.requests()
            .iter()
            .any(|r| r.path == "/page")
            .then_some(())
    });
    assert_eq!(
        metric(&m, "medic_guard_blocks_total{guard=\"restart_loop\"}"),
        1.0
    );

    // medic restarts; the supervisor starts crashy again and it crashes again.
    // The journal still holds the three restarts: no fourth.
    m.kill9();
    let m = Medic::restart_in(&dir.0, port);
    wait_for(
        LONG,
        "a second blocked run after the restart of medic",
        || {
            let ds = details(&m);
            (actions(&ds, "restart", "blocked").len() >= 2).then_some(())
        },
    );
    let ds = details(&m);
    assert_eq!(
        actions(&ds, "restart", "succeeded").len(),
        3,
        "the count survived the restart of medic"
    );
}

#[test]
fn ten_services_failing_on_one_dependency_are_not_all_restarted() {
    let dir = TempDir::new("blast");
    let healthy = Arc::new(AtomicBool::new(true));
    let h = healthy.clone();
    let dep = TestServer::start(move |_| {
        if h.load(Ordering::SeqCst) {
            (200, "ok".into())
        } else {
            (500, "database unreachable".into())
        }
    });
    let hook = TestServer::start(|_| (200, "ok".into()));
    let mut cfg = String::from("services:\n");
    for i in 0..10 {
        cfg.push_str(&format!(
            "  svc-{i}:\n    argv: [sleep, \"3600\"]\n    grace: 1s\n"
        ));
    }
    cfg.push_str("sources:\n");
    for i in 0..10 {
        cfg.push_str(&format!(
            "  - name: svc-{i}-health\n    kind: http_probe\n    interval: 300ms\n    timeout: 250ms\n    targets: [http://127.0.0.1:{}/svc-{i}/health]\n    labels: {{service: svc-{i}}}\n",
            dep.port
        ));
    }
    cfg.push_str(
        "detectors:\n  - name: svc-unhealthy\n    kind: threshold\n    series: probe_success\n    below: 1\n",
    );
    let rb = restart_runbook(
        "svc-unhealthy",
        "concurrency: {group: fleet, max_targets: 3}",
        "4s",
        hook.port,
    );
    let m = Medic::start(&dir, &cfg, &[("rb.yaml", &rb)]);
    wait_for(LONG, "all ten probed healthy", || {
        (metric(&m, "medic_samples_ingested_total") > 20.0).then_some(())
    });
    healthy.store(false, Ordering::SeqCst);
    let ds = wait_for(LONG, "ten runs finished", || {
        let ds = details(&m);
        let done = ds
            .iter()
            .filter(|d| {
                d["runs"]
                    .as_array()
                    .is_some_and(|r| !r.is_empty() && r[0]["state"] != "running")
            })
            .count();
        (done >= 10).then_some(ds)
    });
    let restarted = actions(&ds, "restart", "succeeded");
    let held = actions(&ds, "restart", "blocked");
    assert_eq!(restarted.len(), 3, "at most three acted on: {restarted:?}");
    assert_eq!(held.len(), 7, "the other seven held: {held:?}");
    for a in &held {
        assert!(
            a["detail"].as_str().unwrap().contains("guard concurrency"),
            "{a}"
        );
    }
    let held_runs = ds
        .iter()
        .filter(|d| d["runs"][0]["state"] == "blocked")
        .count();
    assert_eq!(held_runs, 7);
    let all: String = ds.iter().map(timeline_text).collect::<Vec<_>>().join("\n");
    assert!(all.contains("held by guard concurrency"), "{all}");
    wait_for(LONG, "ten escalations", || {
        (hook.requests().iter().filter(|r| r.path == "/page").count() >= 10).then_some(())
    });
    assert_eq!(
        metric(&m, "medic_guard_blocks_total{guard=\"concurrency\"}"),
        7.0
    );
}

#[test]
fn incident_resolving_during_backoff_stops_the_run() {
    let dir = TempDir::new("backoff");
    let (metrics, fault) = fault_switch();
    let hook = TestServer::start(|_| (200, "ok".into()));
    let rb = format!(
        r#"name: slow-retries
match: {{detectors: [fault]}}
steps:
  - name: try
    kind: command
    argv: [/bin/false]
    retry: {{max_attempts: 3, backoff: 4s, jitter: 0}}
  - name: next
    kind: http
    url: http://127.0.0.1:{port}/next
escalate:
  - name: page
    kind: notify
    url: http://127.0.0.1:{port}/page
"#,
        port = hook.port
    );
    let m = Medic::start(&dir, &fault_config(metrics.port), &[("rb.yaml", &rb)]);
    fault.store(true, Ordering::SeqCst);
    // The first attempt failed; the run now waits 4 s before the second.
    let d = m.wait_incident("fault", LONG, |d| {
        d["actions"]
            .as_array()
            .is_some_and(|a| a.len() == 1 && a[0]["state"] == "failed")
    });
    let id = d["incident"]["id"].clone();
    fault.store(false, Ordering::SeqCst);
    let d = wait_for(LONG, "run to end", || {
        let d = m.get(&format!("/api/v1/incidents/{id}"));
        (d["runs"][0]["state"] != "running").then_some(d)
    });
    let text = timeline_text(&d);
    assert_eq!(d["incident"]["state"], "resolved", "{text}");
    assert_eq!(d["runs"][0]["state"], "aborted", "{text}");
    let acts = d["actions"].as_array().unwrap();
    assert_eq!(acts.len(), 1, "no second attempt, no next step: {acts:?}");
    assert!(text.contains("incident resolved"), "{text}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        hook.requests().is_empty(),
        "neither the next step nor an escalation ran"
    );
}

#[test]
fn a_flapping_signal_does_not_cause_a_storm_of_actions() {
    let dir = TempDir::new("flap");
    let (metrics, fault) = fault_switch();
    let hook = TestServer::start(|_| (200, "ok".into()));
    let rb = format!(
        r#"name: poke
match: {{detectors: [fault]}}
guards:
  rate_limit: {{max: 2, window: 1m}}
steps:
  - name: poke
    kind: http
    url: http://127.0.0.1:{}/act
"#,
        hook.port
    );
    let m = Medic::start(&dir, &fault_config(metrics.port), &[("rb.yaml", &rb)]);
    for _ in 0..5 {
        fault.store(true, Ordering::SeqCst);
        let n = m.incidents().len();
        wait_for(LONG, "the incident opened", || {
            (m.incidents().len() > n).then_some(())
        });
        fault.store(false, Ordering::SeqCst);
        wait_for(LONG, "the incident resolved", || {
            m.incidents()
                .iter()
                .all(|i| i["state"] == "resolved")
                .then_some(())
        });
    }
    let ds = wait_for(LONG, "five runs finished", || {
        let ds = details(&m);
        ds.iter()
            .all(|d| d["runs"][0]["state"] != "running" && d["runs"][0].is_object())
            .then_some(ds)
    });
    assert_eq!(ds.len(), 5);
    assert_eq!(actions(&ds, "http", "succeeded").len(), 2);
    let held = actions(&ds, "http", "blocked");
    assert_eq!(held.len(), 3, "{held:?}");
    assert!(
        held[0]["detail"]
            .as_str()
            .unwrap()
            .contains("guard rate_limit: 2 actions by this runbook")
    );
    assert_eq!(
        hook.requests().len(),
        2,
        "two actions in the minute, no more"
    );
    assert_eq!(
        metric(&m, "medic_guard_blocks_total{guard=\"rate_limit\"}"),
        3.0
    );
}

#[test]
fn circuit_breaker_stops_retrying_a_failing_action() {
    let dir = TempDir::new("breaker");
    let (metrics, fault) = fault_switch();
    let hook = TestServer::start(|_| (200, "ok".into()));
    let rb = format!(
        r#"name: keep-failing
match: {{detectors: [fault]}}
guards:
  circuit_breaker: {{failures: 2, cooldown: 1m}}
steps:
  - name: fails
    kind: command
    argv: [/bin/false]
    retry: {{max_attempts: 4, backoff: 100ms, jitter: 0}}
escalate:
  - name: page
    kind: notify
    url: http://127.0.0.1:{}/page
"#,
        hook.port
    );
    let m = Medic::start(&dir, &fault_config(metrics.port), &[("rb.yaml", &rb)]);
    fault.store(true, Ordering::SeqCst);
    let d = m.wait_incident("fault", LONG, |d| d["runs"][0]["state"] == "blocked");
    let states: Vec<&str> = d["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["step"] == "steps[0]")
        .map(|a| a["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["failed", "failed", "blocked"],
        "{}",
        timeline_text(&d)
    );
    assert!(
        timeline_text(&d).contains("held by guard circuit_breaker: open: 2 consecutive failures")
    );
    wait_for(LONG, "escalation", || {
        (hook.requests().len() == 1).then_some(())
    });
}

/// The shipped example plug-in, copied beside the test's runbook.
fn install_example_plugin(dir: &TempDir) {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../runbooks/plugins/feature-flag.py");
    let dst = dir.path("runbooks/plugins");
    std::fs::create_dir_all(&dst).unwrap();
    std::fs::copy(src, dst.join("feature-flag.py")).unwrap();
}

fn plugin_runbook(flags_port: u16, dry: &str) -> String {
    format!(
        r#"name: degrade
match: {{detectors: [fault]}}
steps:
  - name: switch recommendations off
    kind: plugin
    argv: [plugins/feature-flag.py]
    params: {{url: "http://127.0.0.1:{flags_port}/flags", flag: recommendations, value: false}}
    target: recommendations
    dry_run_capable: true
    env:
      FLAG_TOKEN: {{value: tok-very-secret, secret: true}}
    timeout: 10s
    {dry}
"#
    )
}

#[test]
fn plugin_step_flips_a_feature_flag() {
    let dir = TempDir::new("plugin");
    install_example_plugin(&dir);
    let (metrics, fault) = fault_switch();
    let flags = TestServer::start(|_| (200, "{}".into()));
    let rb = plugin_runbook(flags.port, "");
    let m = Medic::start(&dir, &fault_config(metrics.port), &[("rb.yaml", &rb)]);
    fault.store(true, Ordering::SeqCst);
    let d = m.wait_incident("fault", LONG, |d| d["runs"][0]["state"] == "completed");
    let text = timeline_text(&d);
    assert!(text.contains("set recommendations to false"), "{text}");
    let reqs = flags.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(
        (reqs[0].method.as_str(), reqs[0].path.as_str()),
        ("PUT", "/flags/recommendations")
    );
    let body: Value = serde_json::from_str(&reqs[0].body).unwrap();
    assert_eq!(body["value"], false);
    assert_eq!(body["incident"], d["incident"]["id"]);
    assert_eq!(d["actions"][0]["target"], "plugin:recommendations");
    assert!(!d.to_string().contains("tok-very-secret"), "secret leaked");
}

#[test]
fn degrade_switches_a_feature_off_and_restores_it_after_recovery() {
    let dir = TempDir::new("degrade");
    install_example_plugin(&dir);
    let (metrics, fault) = fault_switch();
    let flags = TestServer::start(|_| (200, "{}".into()));
    let flag_step = |name: &str, value: bool| {
        format!(
            r#"  - name: {name}
    kind: plugin
    argv: [plugins/feature-flag.py]
    params: {{url: "http://127.0.0.1:{}/flags", flag: recommendations, value: {value}}}
"#,
            flags.port
        )
    };
    let rb = format!(
        "name: degrade\nmatch: {{detectors: [fault]}}\nsteps:\n{}restore:\n{}",
        flag_step("switch recommendations off", false),
        flag_step("switch recommendations on", true)
    );
    let mut m = Medic::start(&dir, &fault_config(metrics.port), &[("rb.yaml", &rb)]);
    fault.store(true, Ordering::SeqCst);
    let d = m.wait_incident("fault", LONG, |d| {
        timeline_text(d).contains("waiting for the incident to resolve")
    });
    let id = d["incident"]["id"].clone();
    assert_eq!(flags.requests().len(), 1, "switched off, not yet back on");
    // A crash while degraded does not lose the restoration.
    let port = m.port();
    m.kill9();
    let m = Medic::restart_in(&dir.0, port);
    fault.store(false, Ordering::SeqCst);
    let d = wait_for(LONG, "run to end", || {
        let d = m.get(&format!("/api/v1/incidents/{id}"));
        (d["runs"][0]["state"] != "running").then_some(d)
    });
    let text = timeline_text(&d);
    assert_eq!(d["runs"][0]["state"], "completed", "{text}");
    assert!(text.contains("resumed after restart"), "{text}");
    assert!(
        d["runs"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("restored after recovery"),
        "{text}"
    );
    let values: Vec<Value> = flags
        .requests()
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["value"].clone())
        .collect();
    assert_eq!(
        values,
        [false, true],
        "off during the incident, on after: {text}"
    );
    let steps: Vec<&str> = d["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["steps[0]", "restore[0]"]);
}

#[test]
fn dry_runs_record_what_would_run_at_every_level() {
    for (name, global, runbook, step) in [
        ("dry-global", "dry_run: true\n", "", ""),
        ("dry-runbook", "", "dry_run: true\n", ""),
        ("dry-step", "", "", "dry_run: true"),
    ] {
        let dir = TempDir::new(name);
        install_example_plugin(&dir);
        let (metrics, fault) = fault_switch();
        let flags = TestServer::start(|_| (200, "{}".into()));
        let rb = format!("{runbook}{}", plugin_runbook(flags.port, step));
        let cfg = format!("{global}{}", fault_config(metrics.port));
        let m = Medic::start(&dir, &cfg, &[("rb.yaml", &rb)]);
        fault.store(true, Ordering::SeqCst);
        let d = m.wait_incident("fault", LONG, |d| d["runs"][0]["state"] == "completed");
        let text = timeline_text(&d);
        assert_eq!(d["actions"][0]["state"], "dry_run", "{name}: {text}");
        assert!(
            text.contains("dry run: would run plugin step \"switch recommendations off\" on plugin:recommendations"),
            "{name}: {text}"
        );
        assert!(
            text.contains("would set recommendations to false"),
            "{name}: {text}"
        );
        assert!(
            flags.requests().is_empty(),
            "{name}: a dry run changed nothing"
        );
    }
}

/// GETs `url` every 50 ms until dropped, recording when and the status (0
/// for a connection error).
struct Traffic {
    seen: Arc<std::sync::Mutex<Vec<(std::time::Instant, u16)>>>,
    stop: Arc<AtomicBool>,
}

impl Traffic {
    fn start(url: String) -> Traffic {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap();
            while !st.load(Ordering::SeqCst) {
                let code = client.get(&url).send().map_or(0, |r| r.status().as_u16());
                s.lock().unwrap().push((std::time::Instant::now(), code));
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Traffic { seen, stop }
    }
    fn since(&self, n: usize) -> Vec<u16> {
        self.seen.lock().unwrap()[n..].iter().map(|x| x.1).collect()
    }
    fn len(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
    /// How long after `t` clients still saw errors (the last failed request).
    fn errors_for(&self, t: std::time::Instant) -> Duration {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, code)| *at >= t && *code != 200)
            .map(|(at, _)| *at - t)
            .max()
            .unwrap_or_default()
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// medic fails a primary answering 500 over to the backup through HAProxy's
/// runtime API, and brings it back once it heals. Beside it, on the same two
/// services and the same fault, a second HAProxy fails over by its own health
/// checks (inter 500ms fall 2 rise 1): both outages are printed.
#[test]
fn haproxy_failover_drains_a_primary_returning_500s_and_restores_it() {
    if !components::present(components::Haproxy::program().is_some(), "haproxy") {
        return;
    }
    let dir = TempDir::new("haproxy");
    let (p1, p2) = (free_port(), free_port());
    let _primary = demo_service(p1);
    let _secondary = demo_service(p2);
    let lb = components::Haproxy::start(
        &dir.0,
        &[
            format!("server primary 127.0.0.1:{p1}"),
            format!("server secondary 127.0.0.1:{p2} backup"),
        ],
    );
    let checked_dir = TempDir::new("haproxy-checks");
    let checked = components::Haproxy::start(
        &checked_dir.0,
        &[
            "option httpchk GET /health".into(),
            format!("server primary 127.0.0.1:{p1} check inter 500ms fall 2 rise 1"),
            format!("server secondary 127.0.0.1:{p2} check inter 500ms fall 2 rise 1 backup"),
        ],
    );
    let cfg = format!(
        r#"sources:
  - name: primary-metrics
    kind: scrape
    interval: 300ms
    targets: [127.0.0.1:{p1}]
    labels: {{server: primary}}
detectors:
  - name: primary-errors
    kind: error_rate
    errors: demo_requests_total{{code=~"5.."}}
    total: demo_requests_total
    by: [server]
    window: 3s
    max_ratio: 0.2
    clear_ratio: 0.05
    min_total: 10
    severity: critical
"#
    );
    let rb = format!(
        r#"name: fail-over-primary
match: {{detectors: [primary-errors]}}
steps:
  - name: take the primary out
    kind: haproxy
    socket: {sock}
    backend: be
    server: "{{{{ labels.server }}}}"
    action: maint
    confirm_traffic_to: secondary
    confirm_within: 5s
    timeout: 10s
    verify: {{http: "{url}/health", expect_status: [200], within: 5s, interval: 100ms}}
restore:
  - name: put the primary back
    kind: haproxy
    socket: {sock}
    backend: be
    server: "{{{{ labels.server }}}}"
    action: ready
    confirm_traffic_to: primary
    timeout: 10s
"#,
        sock = lb.socket.display(),
        url = lb.url
    );
    let m = Medic::start(&dir, &cfg, &[("rb.yaml", &rb)]);
    let traffic = Traffic::start(format!("{}/health", lb.url));
    let traffic_checked = Traffic::start(format!("{}/health", checked.url));
    wait_for(LONG, "traffic through HAProxy", || {
        (traffic.len() > 5 && traffic_checked.len() > 5).then_some(())
    });
    assert!(
        traffic.since(0).iter().all(|c| *c == 200),
        "healthy at first"
    );
    let fault_at = std::time::Instant::now();
    let before_fault = traffic.len();
    demo_fault(p1, "500");
    let d = m.wait_incident("primary-errors", LONG, |d| {
        timeline_text(d).contains("verified: step")
    });
    let failover = fault_at.elapsed();
    let text = timeline_text(&d);
    let action = &d["actions"][0];
    assert_eq!(action["target"], "haproxy:be/primary", "{text}");
    assert_eq!(action["state"], "succeeded", "{text}");
    assert!(text.contains("be/primary set to maint"), "{text}");
    assert!(text.contains("traffic reaches secondary"), "{text}");
    // Errors reached clients between the fault and the failover, none after.
    let n = traffic.len();
    assert!(
        traffic.since(before_fault).contains(&500),
        "the fault was visible"
    );
    wait_for(LONG, "twenty more requests", || {
        (traffic.len() >= n + 20).then_some(())
    });
    let after = traffic.since(n);
    assert!(
        after.iter().all(|c| *c == 200),
        "all through the secondary: {after:?}"
    );
    // HAProxy's own view before and after, kept with the action.
    let result = d["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|e| e["data"]["result"]["after"].as_object().cloned())
        .expect("stats kept with the action");
    assert_eq!(result["primary"]["status"], "MAINT", "{result:?}");
    eprintln!(
        "fault → verified failover (seen through the API): {:.2}s; clients saw errors for {:.2}s through medic's HAProxy, {:.2}s through the health-checked one",
        failover.as_secs_f64(),
        traffic.errors_for(fault_at).as_secs_f64(),
        traffic_checked.errors_for(fault_at).as_secs_f64()
    );

    // The primary heals: the incident resolves and the restore step puts it
    // back; traffic reaches it again.
    demo_fault(p1, "ok");
    let id = d["incident"]["id"].clone();
    let d = wait_for(LONG, "run to end with the restore", || {
        let d = m.get(&format!("/api/v1/incidents/{id}"));
        (d["runs"][0]["state"] != "running").then_some(d)
    });
    let text = timeline_text(&d);
    assert_eq!(d["runs"][0]["state"], "recovered", "{text}");
    assert!(text.contains("be/primary set to ready"), "{text}");
    assert!(text.contains("traffic reaches primary"), "{text}");
}
