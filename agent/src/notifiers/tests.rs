use std::sync::Arc;

use super::*;
use crate::incidents::IncidentState;
use crate::oncall::links::AckSigner;

fn notification(event: Event) -> Notification {
    Notification {
        key: "incident-7/climb-0/level-2/hook".into(),
        event,
        level: Some(2),
        incident: Incident {
            fingerprint: "abcd".into(),
            summary: "web is down".into(),
            opened_at: 1_700_000_000_123,
            updated_at: 1_700_000_000_123,
            ..Incident::example(7, "web-down", &[("service", "web<1>")])
        },
        group: Vec::new(),
        group_labels: Default::default(),
        notifier: "hook".into(),
        links: Arc::new(AckSigner::new(
            b"k".to_vec(),
            "http://medic:9460",
            std::time::Duration::from_secs(60),
        )),
        now_secs: 1_700_000_000,
    }
}

#[test]
fn titles_say_what_happened() {
    assert_eq!(
        notification(Event::Escalated).title(),
        "[critical] ESCALATED (level 2) #7 web-down: web is down"
    );
    assert_eq!(
        notification(Event::Resolved).title(),
        "[critical] RESOLVED #7 web-down: web is down"
    );
}

#[test]
fn ack_links_only_where_acking_makes_sense() {
    let n = notification(Event::Opened);
    let u = n.ack_url("ann@example.com").unwrap();
    assert!(u.starts_with("http://medic:9460/ack/7?exp=1700000060&who=ann%40example.com&sig="));
    assert_eq!(notification(Event::Resolved).ack_url("x"), None);
    assert_eq!(notification(Event::Acknowledged).ack_url("x"), None);
    let mut acked = notification(Event::Reminder);
    acked.incident.acked_at = Some(1);
    assert_eq!(acked.ack_url("x"), None);
}

#[test]
fn templates_fill_names_and_escape_values() {
    let n = notification(Event::Opened);
    let t = "{{ event }} L{{ level }} {{ labels.service }} for {{ recipient }}";
    assert_eq!(
        n.render(t, "ann", crate::executors::template::html),
        "opened L2 web&lt;1&gt; for ann"
    );
    assert!(check_template("{{ ack_url }} {{ incident.summary }}").is_none());
    assert!(
        check_template("{{ nope }}")
            .unwrap()
            .contains("unknown template name")
    );
}

#[test]
fn generic_webhook_body() {
    let v = notification(Event::Escalated).json("hook");
    assert_eq!(v["event"], "escalated");
    assert_eq!(v["level"], 2);
    assert_eq!(v["key"], "incident-7/climb-0/level-2/hook");
    assert_eq!(v["incident"]["labels"]["service"], "web<1>");
    assert!(v["ack_url"].as_str().unwrap().contains("/ack/7?"));
}

#[test]
fn alertmanager_v4_shape() {
    let v = alertmanager_webhook::payload(&notification(Event::Opened));
    assert_eq!(v["version"], "4");
    assert_eq!(v["status"], "firing");
    assert_eq!(v["receiver"], "hook");
    let a = &v["alerts"][0];
    assert_eq!(a["labels"]["alertname"], "web-down");
    assert_eq!(a["labels"]["severity"], "critical");
    assert_eq!(a["startsAt"], "2023-11-14T22:13:20.123Z");
    assert_eq!(a["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(a["fingerprint"], "abcd");
    // medic's own Alertmanager source reads it back.
    let w: crate::sources::alertmanager::Webhook = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(w.alerts.len(), 1);
    assert_eq!(
        crate::sources::alertmanager::parse_rfc3339(&w.alerts[0].starts_at),
        Some(1_700_000_000_123)
    );
    let mut r = notification(Event::Resolved);
    r.incident.state = IncidentState::Resolved;
    r.incident.resolved_at = Some(1_700_000_060_000);
    let v = alertmanager_webhook::payload(&r);
    assert_eq!(v["status"], "resolved");
    assert_eq!(v["alerts"][0]["endsAt"], "2023-11-14T22:14:20.000Z");
}

#[test]
fn rfc3339_round_trips() {
    for ms in [0, 951_782_400_000, 1_700_000_000_123, 4_102_444_799_999] {
        let s = alertmanager_webhook::rfc3339(ms);
        assert_eq!(
            crate::sources::alertmanager::parse_rfc3339(&s),
            Some(ms),
            "{s}"
        );
    }
}

#[test]
fn pagerduty_events_v2_shape() {
    let v = pagerduty::payload("rk", "medic", &notification(Event::Opened));
    assert_eq!(v["routing_key"], "rk");
    assert_eq!(v["event_action"], "trigger");
    assert_eq!(v["dedup_key"], "abcd");
    assert_eq!(v["payload"]["severity"], "critical");
    assert_eq!(v["payload"]["source"], "medic");
    assert_eq!(v["payload"]["timestamp"], "2023-11-14T22:13:20.123Z");
    assert_eq!(v["links"].as_array().unwrap().len(), 2);
    for (e, action) in [
        (Event::Acknowledged, "acknowledge"),
        (Event::Resolved, "resolve"),
    ] {
        let v = pagerduty::payload("rk", "medic", &notification(e));
        assert_eq!(v["event_action"], action);
        assert_eq!(v["dedup_key"], "abcd");
        assert!(v.get("payload").is_none());
    }
}

#[test]
fn slack_text_escapes_and_links() {
    let cfg = slack::SlackConfig {
        url: "http://x".into(),
        text: None,
        channel: Some("#ops".into()),
    };
    let v = slack::payload(&cfg, &notification(Event::Opened));
    let t = v["text"].as_str().unwrap();
    assert!(t.contains("web&lt;1&gt;"), "{t}");
    assert!(t.contains("|Acknowledge>"), "{t}");
    assert_eq!(v["channel"], "#ops");
}

#[test]
fn email_bodies_carry_the_recipients_link() {
    let cfg: email::EmailConfig = serde_json::from_value(serde_json::json!({
        "host": "localhost", "from": "medic@example.com", "to": ["ann@example.com"],
    }))
    .unwrap();
    assert!(cfg.check().is_empty());
    let n = notification(Event::Opened);
    let (subject, text, html) = email::render(&cfg, &n, "ann@example.com");
    assert_eq!(subject, n.title());
    let link = n.ack_url("ann@example.com").unwrap();
    assert!(text.contains(&link), "{text}");
    assert!(
        html.contains(&crate::executors::template::html(&link)),
        "{html}"
    );
    let bad: email::EmailConfig = serde_json::from_value(serde_json::json!({
        "host": "h", "from": "nope", "to": [], "password_env": "X", "subject": "{{ x }}",
    }))
    .unwrap();
    let problems = bad.check().join("\n");
    for p in [
        "from \"nope\"",
        "to must not be empty",
        "needs a username",
        "subject: unknown",
    ] {
        assert!(problems.contains(p), "{p} in {problems}");
    }
}

/// An opened notification for #7 carrying #8 and #9 too, grouped by service.
fn grouped() -> Notification {
    let mut n = notification(Event::Opened);
    n.incident.labels.insert("service".into(), "web".into());
    for (id, pod) in [(8, "b"), (9, "c")] {
        n.group.push(Incident::example(
            id,
            "web-down",
            &[("service", "web"), ("pod", pod)],
        ));
    }
    n.group_labels = [("service".to_string(), "web".to_string())].into();
    n
}

#[test]
fn a_grouped_notification_carries_every_incident_with_its_own_link() {
    let n = grouped();
    assert!(n.title().ends_with("(+2 more)"), "{}", n.title());

    let body = n.json("hook");
    let all = body["incidents"].as_array().unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[2]["incident"]["id"], 9);
    assert!(
        all[2]["ack_url"].as_str().unwrap().contains("/ack/9?"),
        "{body}"
    );
    assert_eq!(body["group_labels"]["service"], "web");

    let am = alertmanager_webhook::payload(&n);
    let alerts = am["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 3);
    assert_eq!(am["groupLabels"], serde_json::json!({"service": "web"}));
    assert_eq!(am["commonLabels"]["service"], "web");
    assert!(am["commonLabels"].get("pod").is_none(), "{am}");
    assert_eq!(am["groupKey"], "{}:{service=\"web\"}");

    let cfg: email::EmailConfig = serde_json::from_value(serde_json::json!({
        "host": "localhost", "from": "medic@example.com", "to": ["ann@example.com"],
    }))
    .unwrap();
    let (_, text, html) = email::render(&cfg, &n, "ann@example.com");
    assert!(
        text.contains("Also in this notification (2 more, {service=\"web\"})"),
        "{text}"
    );
    assert!(text.contains(&n.ack_url_of(&n.group[1], "ann@example.com").unwrap()));
    assert!(html.contains("<li>#8"), "{html}");

    let slack = slack::payload(
        &slack::SlackConfig {
            url: "http://x".into(),
            text: None,
            channel: None,
        },
        &n,
    );
    assert!(slack["text"].as_str().unwrap().contains("• #9"), "{slack}");
    assert!(
        n.render("{{ group }}", "x", |s| s.to_string())
            .contains("- #8")
    );
}

#[test]
fn pagerduty_keeps_one_event_per_incident() {
    let dir = std::env::temp_dir().join(format!("medic-pd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pd.key"), "k").unwrap();
    let cfg: pagerduty::PagerdutyConfig = serde_json::from_value(serde_json::json!({
        "routing_key_file": "pd.key",
    }))
    .unwrap();
    let p = pagerduty::Pagerduty::new(&cfg, reqwest::Client::new(), &dir).unwrap();
    assert!(!p.groups());
    std::fs::remove_dir_all(&dir).ok();
}
