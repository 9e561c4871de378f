use super::*;

#[test]
fn rfc3339_times() {
    assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(
        parse_rfc3339("2026-11-21T14:49:37Z"),
        Some(1_795_272_577_000)
    );
    assert_eq!(
        parse_rfc3339("2026-11-21T14:49:37.25Z"),
        Some(1_795_272_577_250)
    );
    assert_eq!(
        parse_rfc3339("2026-11-21T14:49:37.123456789Z"),
        Some(1_795_272_577_123)
    );
    assert_eq!(
        parse_rfc3339("2026-11-21T15:49:37+01:00"),
        Some(1_795_272_577_000)
    );
    assert_eq!(
        parse_rfc3339("2026-11-21T09:19:37-05:30"),
        Some(1_795_272_577_000)
    );
    assert_eq!(
        parse_rfc3339("2024-02-29T00:00:00Z"),
        Some(1_709_164_800_000)
    );
    // Go's zero time (endsAt of a firing alert) and garbage.
    assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z"), None);
    assert_eq!(parse_rfc3339("yesterday"), None);
    assert_eq!(parse_rfc3339("2026-13-01T00:00:00Z"), None);
    assert_eq!(parse_rfc3339("2026-11-21T14:49:37"), None);
}

// The payload Alertmanager 0.25 sent in ../shared/COMPONENTS.md, plus a
// resolved alert and two unusable ones.
const PAYLOAD: &str = r#"{"receiver":"hook","status":"firing",
 "alerts":[
  {"status":"firing","labels":{"alertname":"HighErrorRate","service":"checkout","severity":"critical"},
   "annotations":{"summary":"5xx ratio > 5%"},"startsAt":"2026-11-21T14:49:37Z","endsAt":"0001-01-01T00:00:00Z",
   "generatorURL":"http://127.0.0.1:19090/graph","fingerprint":"7d2d332feada5c59"},
  {"status":"resolved","labels":{"alertname":"DiskFull","instance":"db1"},
   "annotations":{},"startsAt":"2026-11-21T14:00:00Z","endsAt":"2026-11-21T14:50:00Z","fingerprint":"aa"},
  {"status":"firing","labels":{"service":"x"},"startsAt":"2026-11-21T14:49:37Z"},
  {"status":"pending","labels":{"alertname":"A"}}
 ],
 "groupLabels":{"alertname":"HighErrorRate"},"commonLabels":{},"commonAnnotations":{},
 "externalURL":"http://127.0.0.1:19093","version":"4","groupKey":"{}:{alertname=\"HighErrorRate\"}","truncatedAlerts":0}"#;

#[test]
fn webhook_alerts_become_events() {
    let w: Webhook = serde_json::from_str(PAYLOAD).unwrap();
    let (ev, skipped) = to_events("am", &w, &IngestLimits::default(), 42);
    assert_eq!(ev.len(), 2);
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(skipped[0].contains("alertname"));
    assert!(skipped[1].contains("pending"));

    let f = &ev[0];
    assert_eq!(f.detector, "HighErrorRate");
    assert!(f.firing);
    assert_eq!(f.severity, "critical");
    assert_eq!(f.summary, "5xx ratio > 5%");
    assert_eq!(f.at, 1_795_272_577_000);
    assert_eq!(
        f.labels.get("service").map(String::as_str),
        Some("checkout")
    );
    assert_eq!(f.evidence["generator_url"], "http://127.0.0.1:19090/graph");

    let r = &ev[1];
    assert!(!r.firing);
    assert_eq!(r.severity, "warning");
    assert_eq!(r.at, parse_rfc3339("2026-11-21T14:50:00Z").unwrap());
    assert!(r.summary.starts_with("DiskFull {"), "{}", r.summary);
}
