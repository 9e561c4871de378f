//! On-call end to end: notifications through a real SMTP server (aiosmtpd)
//! and webhook receivers, signed ack links, escalation across a SIGKILL,
//! delivery retries, silences.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use medic_e2e::components::{SmtpSink, venv_python};
use medic_e2e::{Medic, TempDir, TestServer, wait_for};
use serde_json::{Value, json};

/// Open (or resolve) an incident through medic's Alertmanager webhook source.
fn alert(m: &Medic, name: &str, labels: &[(&str, &str)], firing: bool) {
    let mut l = serde_json::Map::new();
    l.insert("alertname".into(), name.into());
    for (k, v) in labels {
        l.insert(k.to_string(), (*v).into());
    }
    let status = if firing { "firing" } else { "resolved" };
    let (code, body) = m.post(
        "/api/v1/alertmanager",
        &json!({"version": "4", "status": status, "receiver": "medic",
                "alerts": [{"status": status, "labels": l, "annotations": {"summary": format!("{name} is down")}}]}),
    );
    assert!(code < 300, "alertmanager webhook: {code} {body}");
}

fn sources() -> &'static str {
    "sources:\n  - name: am\n    kind: alertmanager\n"
}

/// A config whose only policy has one level: the notifier `name`, whose
/// settings (indented YAML lines) are `settings`.
fn one_level(name: &str, settings: &str) -> String {
    format!(
        "{}notifiers:\n  - name: {name}\n{settings}escalation_policies:\n  - name: p\n    levels:\n      - notify: [{name}]\nroutes:\n  - policy: p\n",
        sources()
    )
}

/// medic with one webhook notifier `hook` (a receiver answering 200) as the
/// only level, plus `extra` config. Bind as `let (_dir, hook, m)` so medic
/// stops before its directory goes.
fn with_hook(test: &str, extra: &str) -> (TempDir, TestServer, Medic) {
    let hook = ok_server();
    let dir = TempDir::new(test);
    let settings = format!(
        "    kind: webhook\n    url: http://127.0.0.1:{}/hook\n",
        hook.port
    );
    let m = Medic::start(
        &dir,
        &format!("{}{extra}", one_level("hook", &settings)),
        &[],
    );
    (dir, hook, m)
}

/// The incident a detector opened (waits for it).
fn incident(m: &Medic, detector: &str) -> Value {
    m.wait_incident(detector, Duration::from_secs(20), |_| true)
}

fn detail(m: &Medic, id: &Value) -> Value {
    m.get(&format!("/api/v1/incidents/{id}"))
}

fn timeline_has(d: &Value, needle: &str) -> bool {
    d["timeline"].as_array().is_some_and(|t| {
        t.iter()
            .any(|e| e["message"].as_str().unwrap_or("").contains(needle))
    })
}

/// Requests a receiver got about one incident, as JSON bodies.
fn bodies_for(s: &TestServer, incident_id: &Value) -> Vec<Value> {
    s.requests()
        .iter()
        .filter_map(|r| serde_json::from_str::<Value>(&r.body).ok())
        .filter(|b| &b["incident"]["id"] == incident_id)
        .collect()
}

fn ok_server() -> TestServer {
    TestServer::start(|_| (200, "ok".into()))
}

fn have_aiosmtpd() -> bool {
    std::process::Command::new(venv_python())
        .args(["-c", "import aiosmtpd"])
        .status()
        .is_ok_and(|s| s.success())
}

/// GET a link without following redirects; (status, body).
fn get(url: &str) -> (u16, String) {
    let r = reqwest::blocking::get(url).expect("GET");
    (r.status().as_u16(), r.text().unwrap_or_default())
}

/// HMAC-SHA256 hex, computed by Python's standard library (an independent
/// implementation of what medic signs).
fn python_hmac(key: &str, msg: &str) -> String {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import hmac,hashlib,sys; print(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha256).hexdigest())",
            key,
            msg,
        ])
        .output()
        .expect("python3");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn email_ack_link_acknowledges_as_the_recipient_and_forged_or_expired_links_change_nothing() {
    if !have_aiosmtpd() {
        panic!("aiosmtpd missing in the test venv; run tests/run.sh (tests/requirements.txt)");
    }
    let dir = TempDir::new("oncall-mail");
    let smtp = SmtpSink::start(&dir.0);
    std::fs::write(dir.path("ack.key"), "test-secret\n").unwrap();
    let settings = format!(
        "    kind: email\n    host: 127.0.0.1\n    port: {}\n    security: plain\n    from: medic <medic@example.com>\n    to: [ann@example.com]\n",
        smtp.port
    );
    let config = format!(
        "{}ack_links:\n  secret_file: ack.key\n  ttl: 1h\n",
        one_level("mail", &settings)
    );
    let m = Medic::start(&dir, &config, &[]);
    alert(&m, "WebDown", &[("service", "web")], true);
    let inc = incident(&m, "WebDown");
    let id = inc["incident"]["id"].clone();

    let msg = wait_for(Duration::from_secs(30), "the incident email", || {
        smtp.messages().into_iter().next()
    });
    assert_eq!(msg["rcpt_tos"], json!(["ann@example.com"]));
    assert!(msg["subject"].as_str().unwrap().contains("OPENED"), "{msg}");
    let text = msg["text"].as_str().unwrap();
    let html = msg["html"].as_str().unwrap();
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/ack/"))
        .unwrap_or_else(|| panic!("no ack link in {text}"))
        .to_string();
    assert!(link.starts_with(&format!("{}/ack/{id}?", m.api)), "{link}");
    assert!(link.contains("who=ann%40example.com"), "{link}");
    assert!(html.contains("/ack/"), "{html}");

    // Forged: the signature of ann's link with another name.
    let forged = link.replace("who=ann%40example.com", "who=mallory");
    let (code, body) = get(&forged);
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("Link not valid"), "{body}");
    // Expired: correctly signed (with the configured secret), in the past.
    let exp = 1_000_000;
    let sig = python_hmac("test-secret", &format!("ack\n{id}\n{exp}\nann@example.com"));
    let (code, body) = get(&format!(
        "{}/ack/{id}?exp={exp}&who=ann%40example.com&sig={sig}",
        m.api
    ));
    assert_eq!(code, 410, "{body}");
    assert!(body.contains("expired"), "{body}");
    let d = detail(&m, &id);
    assert_eq!(d["incident"]["state"], "firing", "{d}");
    assert!(d["incident"]["acked_by"].is_null(), "{d}");

    // The real link acknowledges as the recipient.
    let (code, body) = get(&link);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("acknowledged by ann@example.com"), "{body}");
    let d = detail(&m, &id);
    assert_eq!(d["incident"]["state"], "acknowledged");
    assert_eq!(d["incident"]["acked_by"], "ann@example.com");
    assert!(d["incident"]["acked_at"].is_i64());
    assert!(timeline_has(&d, "notified mail (email): opened"), "{d}");
    assert!(timeline_has(&d, "acknowledged by ann@example.com"), "{d}");
    // Those notified hear that someone has it.
    let ack_mail = wait_for(Duration::from_secs(20), "the acknowledged email", || {
        smtp.messages().into_iter().nth(1)
    });
    assert!(
        ack_mail["subject"]
            .as_str()
            .unwrap()
            .contains("ACKNOWLEDGED"),
        "{ack_mail}"
    );
    // A second visit changes nothing and still answers.
    let (code, _) = get(&link);
    assert_eq!(code, 200);
}

fn two_level_config(wait: &str, l1: &TestServer, l2: &TestServer) -> String {
    format!(
        r#"{}notifiers:
  - name: first
    kind: webhook
    url: http://127.0.0.1:{}/hook
  - name: second
    kind: webhook
    url: http://127.0.0.1:{}/hook
escalation_policies:
  - name: two-levels
    levels:
      - notify: [first]
        wait: {wait}
      - notify: [second]
routes:
  - policy: two-levels
"#,
        sources(),
        l1.port,
        l2.port
    )
}

#[test]
fn escalation_reaches_level_two_without_ack_and_stops_at_an_ack() {
    let (l1, l2) = (ok_server(), ok_server());
    let dir = TempDir::new("oncall-escalate");
    let m = Medic::start(&dir, &two_level_config("2s", &l1, &l2), &[]);

    alert(&m, "Unacked", &[], true);
    alert(&m, "Acked", &[], true);
    let unacked = incident(&m, "Unacked")["incident"]["id"].clone();
    let acked = incident(&m, "Acked")["incident"]["id"].clone();
    wait_for(Duration::from_secs(20), "level 1 for both", || {
        (bodies_for(&l1, &unacked).len() == 1 && bodies_for(&l1, &acked).len() == 1).then_some(())
    });
    let (code, body) = m.post(
        &format!("/api/v1/incidents/{acked}/ack"),
        &json!({"who": "bob"}),
    );
    assert_eq!(code, 200, "{body}");

    let esc = wait_for(
        Duration::from_secs(20),
        "level 2 for the unacked incident",
        || bodies_for(&l2, &unacked).into_iter().next(),
    );
    assert_eq!(esc["event"], "escalated");
    assert_eq!(esc["level"], 2);
    assert!(
        esc["ack_url"]
            .as_str()
            .unwrap()
            .contains(&format!("/ack/{unacked}?"))
    );
    // Well past the wait: the acknowledged one never reached level 2, and its
    // level 1 heard of the ack.
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        bodies_for(&l2, &acked).is_empty(),
        "{:?}",
        bodies_for(&l2, &acked)
    );
    let events: Vec<Value> = bodies_for(&l1, &acked)
        .iter()
        .map(|b| b["event"].clone())
        .collect();
    assert_eq!(events, [json!("opened"), json!("acknowledged")]);
    assert!(timeline_has(
        &detail(&m, &acked),
        "escalation stopped: acknowledged by bob"
    ));
    assert_eq!(bodies_for(&l2, &unacked).len(), 1);
}

#[test]
fn sigkill_during_the_wait_neither_loses_nor_repeats_a_level() {
    let (l1, l2) = (ok_server(), ok_server());
    let dir = TempDir::new("oncall-restart");
    let mut m = Medic::start(&dir, &two_level_config("5s", &l1, &l2), &[]);
    let port = m.port();
    alert(&m, "Crashy", &[], true);
    let id = incident(&m, "Crashy")["incident"]["id"].clone();
    wait_for(Duration::from_secs(20), "level 1 recorded as sent", || {
        timeline_has(&detail(&m, &id), "notified first (webhook)").then_some(())
    });
    m.kill9();
    assert!(bodies_for(&l2, &id).is_empty(), "level 2 before the wait");
    std::thread::sleep(Duration::from_secs(1));
    let m = Medic::restart_in(&dir.0, port);
    wait_for(Duration::from_secs(30), "level 2 after the restart", || {
        (!bodies_for(&l2, &id).is_empty()).then_some(())
    });
    // Time for any duplicate to show up.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(bodies_for(&l2, &id).len(), 1, "{:?}", l2.requests());
    assert_eq!(bodies_for(&l1, &id).len(), 1, "{:?}", l1.requests());
    let d = detail(&m, &id);
    let level2: Vec<&Value> = d["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["level"] == 2)
        .collect();
    assert_eq!(level2.len(), 1, "{d}");
    assert_eq!(level2[0]["state"], "sent");
}

#[test]
fn a_failing_receiver_gets_the_notification_after_a_retry() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let hook = TestServer::start(move |_| {
        if c.fetch_add(1, Ordering::SeqCst) == 0 {
            (500, "try later".into())
        } else {
            (200, "ok".into())
        }
    });
    let dir = TempDir::new("oncall-retry");
    let config = one_level(
        "flaky",
        &format!(
            "    kind: webhook\n    url: http://127.0.0.1:{}/hook\n    delivery: {{max_attempts: 5, backoff: 500ms, max_backoff: 2s}}\n",
            hook.port
        ),
    );
    let m = Medic::start(&dir, &config, &[]);
    alert(&m, "Flaky", &[], true);
    let id = incident(&m, "Flaky")["incident"]["id"].clone();
    let d = wait_for(Duration::from_secs(30), "delivery after a retry", || {
        let d = detail(&m, &id);
        (d["notifications"][0]["state"] == "sent").then_some(d)
    });
    assert_eq!(d["notifications"][0]["attempts"], 2, "{d}");
    let reqs = hook.requests();
    assert_eq!(reqs.len(), 2);
    // The retry is the same notification (same key); only the ack link is fresh.
    let keys: Vec<Value> = reqs
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["key"].clone())
        .collect();
    assert_eq!(keys, vec![json!("incident-1/climb-0/level-1/flaky"); 2]);
    assert!(timeline_has(&d, "failed (attempt 1 of 5)"), "{d}");
    assert!(timeline_has(&d, "notified flaky (webhook): opened"), "{d}");
    let metrics = m.metrics();
    assert!(
        metrics.contains(r#"medic_notifications_total{notifier="flaky",outcome="failed"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"medic_notifications_total{notifier="flaky",outcome="sent"} 1"#),
        "{metrics}"
    );
}

#[test]
fn a_silence_holds_notifications_until_it_ends_and_bad_matchers_are_refused() {
    let (_dir, hook, m) = with_hook("oncall-silence", "");
    let (code, body) = m.post(
        "/api/v1/silences",
        &json!({"matchers": "{service=~\"(\"}", "created_by": "ann", "duration": "1h"}),
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("invalid label matchers"),
        "{body}"
    );
    let (code, body) = m.post(
        "/api/v1/silences",
        &json!({"matchers": "{service=\"web\"}", "created_by": "ann", "comment": "deploy", "duration": "1h"}),
    );
    assert_eq!(code, 201, "{body}");
    let sid = body["silence"]["id"].clone();
    assert_eq!(
        m.get("/api/v1/silences")["silences"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    alert(&m, "Quiet", &[("service", "web")], true);
    let id = incident(&m, "Quiet")["incident"]["id"].clone();
    wait_for(
        Duration::from_secs(20),
        "the silence in the timeline",
        || timeline_has(&detail(&m, &id), "notifications held: silenced by silence").then_some(()),
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(hook.requests().is_empty(), "silenced, yet notified");

    let r = reqwest::blocking::Client::new()
        .delete(format!("{}/api/v1/silences/{sid}", m.api))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    wait_for(
        Duration::from_secs(20),
        "notification once the silence ends",
        || bodies_for(&hook, &id).into_iter().next(),
    );
    assert!(timeline_has(&detail(&m, &id), "notifications resume"));
}

#[test]
fn a_flapping_incident_is_notified_once_and_held_open_until_it_settles() {
    let (_dir, hook, m) = with_hook(
        "oncall-flap",
        "flapping:\n  changes: 2\n  window: 1m\n  settle: 3s\n",
    );
    // Fire and clear three times: the third change marks it flapping.
    for _ in 0..3 {
        alert(&m, "Bouncy", &[], true);
        alert(&m, "Bouncy", &[], false);
    }
    let flapping = m.wait_incident("Bouncy", Duration::from_secs(20), |d| {
        timeline_has(d, "marked flapping")
    });
    let id = flapping["incident"]["id"].clone();
    assert!(
        timeline_has(&flapping, "held open until clear for 3s"),
        "{flapping}"
    );
    assert_eq!(
        flapping["incident"]["state"], "firing",
        "held open: {flapping}"
    );
    assert_eq!(
        m.incidents().len(),
        2,
        "the bounces after it opened no new incident"
    );
    let d = wait_for(Duration::from_secs(20), "resolved once settled", || {
        let d = detail(&m, &id);
        (d["incident"]["state"] == "resolved").then_some(d)
    });
    assert!(timeline_has(&d, "settled after flapping"), "{d}");
    wait_for(Duration::from_secs(10), "the resolved notification", || {
        (bodies_for(&hook, &id).len() >= 2).then_some(())
    });
    let events: Vec<Value> = bodies_for(&hook, &id)
        .iter()
        .map(|b| b["event"].clone())
        .collect();
    assert_eq!(events, [json!("opened"), json!("resolved")]);
}

#[test]
fn an_ack_lasts_until_resolved_and_a_recurrence_is_notified_again() {
    let (_dir, hook, m) = with_hook("oncall-rearm", "");
    alert(&m, "Recurring", &[], true);
    let first = incident(&m, "Recurring")["incident"]["id"].clone();
    wait_for(Duration::from_secs(20), "first notification", || {
        bodies_for(&hook, &first).into_iter().next()
    });
    let (code, _) = m.post(
        &format!("/api/v1/incidents/{first}/ack"),
        &json!({"who": "ann"}),
    );
    assert_eq!(code, 200);
    wait_for(Duration::from_secs(20), "the ack announced", || {
        (bodies_for(&hook, &first).len() == 2).then_some(())
    });
    // Repeats of the firing alert keep the ack (sticky).
    alert(&m, "Recurring", &[], true);
    alert(&m, "Recurring", &[], false);
    let d = wait_for(Duration::from_secs(20), "resolved", || {
        let d = detail(&m, &first);
        (d["incident"]["state"] == "resolved").then_some(d)
    });
    assert_eq!(d["incident"]["acked_by"], "ann");
    // It recurs: a new incident, unacknowledged, notified again.
    alert(&m, "Recurring", &[], true);
    let second = m.wait_incident("Recurring", Duration::from_secs(20), |d| {
        d["incident"]["id"] != first
    })["incident"]
        .clone();
    assert!(second["acked_by"].is_null(), "{second}");
    let opened = wait_for(
        Duration::from_secs(20),
        "notification of the recurrence",
        || bodies_for(&hook, &second["id"]).into_iter().next(),
    );
    assert_eq!(opened["event"], "opened");
    let events: Vec<Value> = bodies_for(&hook, &first)
        .iter()
        .map(|b| b["event"].clone())
        .collect();
    assert_eq!(
        events,
        [json!("opened"), json!("acknowledged"), json!("resolved")]
    );
}

/// (status, JSON body) of a request with an optional bearer token.
fn call(
    m: &Medic,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = reqwest::blocking::Client::new().request(method, format!("{}{path}", m.api));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().expect("request");
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

#[test]
fn api_tokens_enforce_roles_and_acks_and_silences_are_attributed_to_the_token_owner() {
    use reqwest::Method;
    let dir = TempDir::new("oncall-tokens");
    for (f, t) in [
        ("vera.token", "viewer-token-1"),
        ("rita.token", "responder-token-2"),
        ("adam.token", "admin-token-3"),
    ] {
        std::fs::write(dir.path(f), format!("{t}\n")).unwrap();
    }
    let m = Medic::start(
        &dir,
        &format!(
            "{}auth:\n  tokens:\n    - {{name: vera, role: viewer, token_file: vera.token}}\n    - {{name: rita, role: responder, token_file: rita.token}}\n    - {{name: adam, role: admin, token_file: adam.token}}\n",
            sources()
        ),
        &[],
    );
    alert(&m, "Down", &[("service", "web")], true);
    let (viewer, responder, admin) = (
        Some("viewer-token-1"),
        Some("responder-token-2"),
        Some("admin-token-3"),
    );
    let id = wait_for(Duration::from_secs(20), "the incident", || {
        let (code, v) = call(&m, Method::GET, "/api/v1/incidents", viewer, None);
        assert_eq!(code, 200, "{v}");
        v["incidents"]
            .as_array()
            .and_then(|l| l.first())
            .map(|i| i["id"].clone())
    });

    // No token, a malformed header, an unknown token: 401, nothing changes.
    let (code, body) = call(&m, Method::GET, "/api/v1/incidents", None, None);
    assert_eq!(code, 401, "{body}");
    assert!(body["error"].as_str().unwrap().contains("Bearer"), "{body}");
    let (code, _) = call(&m, Method::GET, "/api/v1/incidents", Some("nope"), None);
    assert_eq!(code, 401);
    let ack_path = format!("/api/v1/incidents/{id}/ack");
    let (code, _) = call(
        &m,
        Method::POST,
        &ack_path,
        None,
        Some(json!({"who": "mallory"})),
    );
    assert_eq!(code, 401);
    // A viewer may read but not acknowledge or silence: 403 with the reason.
    let (code, body) = call(
        &m,
        Method::POST,
        &ack_path,
        viewer,
        Some(json!({"who": "vera"})),
    );
    assert_eq!(code, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("needs responder"),
        "{body}"
    );
    let (code, _) = call(
        &m,
        Method::POST,
        "/api/v1/silences",
        viewer,
        Some(json!({"matchers": "{service=\"web\"}", "duration": "1h"})),
    );
    assert_eq!(code, 403);
    let (_, d) = call(
        &m,
        Method::GET,
        &format!("/api/v1/incidents/{id}"),
        viewer,
        None,
    );
    assert_eq!(d["incident"]["state"], "firing", "{d}");
    let (_, s) = call(&m, Method::GET, "/api/v1/silences", viewer, None);
    assert_eq!(s["silences"].as_array().unwrap().len(), 0, "{s}");

    // A responder acknowledges; the record names the token's owner, not the
    // name in the body.
    let (code, body) = call(
        &m,
        Method::POST,
        &ack_path,
        responder,
        Some(json!({"who": "mallory", "comment": "on it"})),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["incident"]["acked_by"], "rita", "{body}");
    let (code, body) = call(
        &m,
        Method::POST,
        "/api/v1/silences",
        responder,
        Some(json!({"matchers": "{service=\"web\"}", "duration": "1h", "comment": "deploy"})),
    );
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["silence"]["created_by"], "rita", "{body}");

    // The CLI sends its token (--token or MEDIC_TOKEN) and says plainly when
    // it lacks one.
    let cli = |args: &[&str]| {
        std::process::Command::new(medic_e2e::medic_bin())
            .args(args)
            .args(["--api", &m.api])
            .env_remove("MEDIC_TOKEN")
            .output()
            .expect("medic cli")
    };
    let out = cli(&["incidents"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs a token"),
        "{out:?}"
    );
    let out = cli(&["incidents", "--token", "viewer-token-1"]);
    assert!(out.status.success(), "{out:?}");
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains("Down is down") && listed.contains("rita"),
        "{listed}"
    );

    // Reload needs admin.
    let (code, _) = call(&m, Method::POST, "/api/v1/reload", responder, None);
    assert_eq!(code, 403);
    let (code, body) = call(&m, Method::POST, "/api/v1/reload", admin, None);
    assert_eq!(code, 200, "{body}");

    // Probes and Prometheus need no token; refusals are counted.
    let (code, _) = get(&format!("{}/healthz", m.api));
    assert_eq!(code, 200);
    let metrics = m.metrics();
    assert!(
        metrics.contains("medic_api_auth_refusals_total{reason=\"unauthenticated\"} 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("medic_api_auth_refusals_total{reason=\"forbidden\"} 3"),
        "{metrics}"
    );
    // Tokens never reach the log.
    let log = m.log();
    for t in [
        "viewer-token-1",
        "responder-token-2",
        "admin-token-3",
        "nope",
    ] {
        assert!(!log.contains(t), "token {t} in the log");
    }
}

#[test]
fn incidents_sharing_group_labels_arrive_as_one_notification() {
    let hook = ok_server();
    let dir = TempDir::new("oncall-group");
    let config = format!(
        "{}notifiers:\n  - name: hook\n    kind: webhook\n    url: http://127.0.0.1:{}/hook\nescalation_policies:\n  - name: p\n    levels:\n      - notify: [hook]\nroutes:\n  - policy: p\n    group_by: [service]\n    group_wait: 2s\n    group_interval: 3s\n",
        sources(),
        hook.port
    );
    let m = Medic::start(&dir, &config, &[]);
    for pod in ["a", "b", "c"] {
        alert(&m, "PodDown", &[("service", "web"), ("pod", pod)], true);
    }
    alert(&m, "PodDown", &[("service", "db"), ("pod", "d")], true);
    let opened = |b: &Value| b["event"] == "opened";
    let messages = wait_for(Duration::from_secs(20), "two grouped messages", || {
        let v: Vec<Value> = hook
            .requests()
            .iter()
            .filter_map(|r| serde_json::from_str::<Value>(&r.body).ok())
            .filter(opened)
            .collect();
        (v.len() >= 2).then_some(v)
    });
    let services = |b: &Value| -> Vec<String> {
        b["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                i["incident"]["labels"]["service"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let web = messages
        .iter()
        .find(|b| b["group_labels"]["service"] == "web")
        .expect("web's message");
    assert_eq!(services(web), vec!["web"; 3], "{web}");
    let db = messages
        .iter()
        .find(|b| b["group_labels"]["service"] == "db")
        .expect("db's message");
    assert_eq!(services(db), vec!["db"], "{db}");
    assert_eq!(messages.len(), 2, "{messages:?}");
    let id = web["incident"]["id"].clone();
    assert!(timeline_has(
        &detail(&m, &id),
        "one message for 3 incidents grouped by {service=\"web\"}"
    ));

    // A late member of a group already notified comes in the group's next
    // message, on its own.
    alert(&m, "PodDown", &[("service", "web"), ("pod", "e")], true);
    let late = wait_for(Duration::from_secs(20), "the late member", || {
        hook.requests()
            .iter()
            .filter_map(|r| serde_json::from_str::<Value>(&r.body).ok())
            .filter(opened)
            .nth(2)
    });
    assert_eq!(late["group_labels"]["service"], "web");
    assert_eq!(late["incidents"].as_array().unwrap().len(), 1, "{late}");
    assert_eq!(late["incident"]["labels"]["pod"], "e");
}
