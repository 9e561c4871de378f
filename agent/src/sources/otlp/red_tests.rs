use opentelemetry_proto::tonic::common::v1::any_value::Value;

use super::*;
use crate::sources::otlp::tests::{kv, resource_spans, span};

fn settings(attributes: &[&str]) -> Settings {
    Settings {
        attributes: attributes.iter().map(|a| a.to_string()).collect(),
        quantiles: vec![0.5, 0.99],
        window_ms: 60_000,
        ttl_ms: 600_000,
    }
}

#[test]
fn errors_are_status_error_or_http_5xx() {
    let ok = StatusCode::Unset;
    let cases = [
        (span("a", 1, StatusCode::Error, vec![]), true),
        (span("a", 1, StatusCode::Ok, vec![]), false),
        (
            span(
                "a",
                1,
                ok,
                vec![kv("http.status_code", Value::IntValue(500))],
            ),
            true,
        ),
        (
            span(
                "a",
                1,
                ok,
                vec![kv("http.status_code", Value::IntValue(404))],
            ),
            false,
        ),
        (
            span(
                "a",
                1,
                ok,
                vec![kv("http.response.status_code", Value::IntValue(503))],
            ),
            true,
        ),
        (
            span(
                "a",
                1,
                ok,
                vec![kv(
                    "http.response.status_code",
                    Value::StringValue("502".into()),
                )],
            ),
            true,
        ),
        (
            span(
                "a",
                1,
                ok,
                vec![kv("http.status_code", Value::StringValue("oops".into()))],
            ),
            false,
        ),
        (
            span(
                "a",
                1,
                ok,
                vec![kv("rpc.grpc.status_code", Value::IntValue(14))],
            ),
            false,
        ),
    ];
    for (i, (s, want)) in cases.iter().enumerate() {
        assert_eq!(is_error(s), *want, "case {i}: {s:?}");
    }
}

#[test]
fn spans_are_tallied_per_service_operation_and_attributes() {
    let route = |r: &str| kv("http.route", Value::StringValue(r.into()));
    let rs = vec![
        resource_spans(
            Some("checkout"),
            vec![
                span("GET", 10, StatusCode::Unset, vec![route("/cart")]),
                span("GET", 20, StatusCode::Error, vec![route("/cart")]),
                span("GET", 30, StatusCode::Unset, vec![route("/pay")]),
                span("POST", 40, StatusCode::Unset, vec![]),
            ],
        ),
        resource_spans(None, vec![span("GET", 5, StatusCode::Unset, vec![])]),
    ];
    let attrs = vec!["http.route".to_string()];
    let t = tally(&rs, &attrs);
    assert_eq!(t.len(), 4);
    let cart = KeyRef {
        service: "checkout".into(),
        operation: "GET",
        attrs: vec!["/cart".into()],
    };
    assert_eq!((t[&cart].requests, t[&cart].errors), (2, 1));
    let post = KeyRef {
        service: "checkout".into(),
        operation: "POST",
        attrs: vec!["".into()],
    };
    assert_eq!(t[&post].requests, 1);
    assert!(t.keys().any(|k| k.service == "unknown_service"));

    let l = settings(&["http.route"]).labels(&cart);
    let got: Vec<(&str, &str)> = l.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        got,
        vec![
            ("http_route", "/cart"),
            ("operation", "GET"),
            ("service", "checkout")
        ]
    );
}

fn value(samples: &[Sample], name: &str, extra: Option<(&str, &str)>) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && extra.is_none_or(|(k, v)| s.labels.get(k).map(String::as_str) == Some(v))
        })
        .map(|s| s.value)
}

#[test]
fn flush_sends_zeros_first_then_cumulative_counters_and_quantiles() {
    let rs = vec![resource_spans(
        Some("svc"),
        (0..100)
            .map(|i| {
                let st = if i % 4 == 0 {
                    StatusCode::Error
                } else {
                    StatusCode::Unset
                };
                span("op", i + 1, st, vec![])
            })
            .collect(),
    )];
    let s = settings(&[]);
    let mut red = Red::new(s.clone());
    for (k, t) in &tally(&rs, &[]) {
        red.record(k, s.labels(k), t, 10_000);
    }
    let (zeros, cur) = red.flush(10_500);
    assert_eq!(zeros.len(), 2);
    assert!(zeros.iter().all(|z| z.value == 0.0 && z.at == 10_499));
    assert_eq!(value(&cur, REQUESTS, None), Some(100.0));
    assert_eq!(value(&cur, ERRORS, None), Some(25.0));
    let p50 = value(&cur, DURATION, Some(("quantile", "0.5"))).unwrap();
    assert!((p50 - 0.050).abs() / 0.050 <= 0.011, "p50 {p50}");
    let p99 = value(&cur, DURATION, Some(("quantile", "0.99"))).unwrap();
    assert!((p99 - 0.099).abs() / 0.099 <= 0.011, "p99 {p99}");

    // Counters keep counting; no second zero.
    for (k, t) in &tally(&rs, &[]) {
        red.record(k, s.labels(k), t, 11_000);
    }
    let (zeros, cur) = red.flush(11_500);
    assert!(zeros.is_empty());
    assert_eq!(value(&cur, REQUESTS, None), Some(200.0));
    assert_eq!(value(&cur, ERRORS, None), Some(50.0));

    // Quantiles leave with the window; the key leaves after the ttl.
    let (_, cur) = red.flush(11_000 + 70_000);
    assert_eq!(value(&cur, REQUESTS, None), Some(200.0));
    assert_eq!(value(&cur, DURATION, None), None);
    let (_, cur) = red.flush(11_000 + 600_001);
    assert!(cur.is_empty());
    assert!(red.is_empty());
}

#[test]
fn series_of_a_key_are_what_counts_against_the_limit() {
    let s = settings(&[]);
    let key = KeyRef {
        service: "a".into(),
        operation: "b",
        attrs: vec![],
    };
    let names: Vec<&str> = s.series(&s.labels(&key)).iter().map(|(n, _)| *n).collect();
    assert_eq!(names, vec![REQUESTS, ERRORS, DURATION, DURATION]);
}
