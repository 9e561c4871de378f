use super::proto::{Label, Sample as PSample, TimeSeries, WriteRequest};
use super::*;

fn series(labels: &[(&str, &str)], samples: &[(f64, i64)]) -> TimeSeries {
    TimeSeries {
        labels: labels
            .iter()
            .map(|(n, v)| Label {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect(),
        samples: samples
            .iter()
            .map(|(value, timestamp)| PSample {
                value: *value,
                timestamp: *timestamp,
            })
            .collect(),
    }
}

fn body(ts: Vec<TimeSeries>) -> Vec<u8> {
    let req = WriteRequest {
        timeseries: ts,
        metadata: vec![],
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

#[test]
fn decodes_series_and_orders_by_time() {
    let b = body(vec![
        series(
            &[("__name__", "up"), ("instance", "a:1"), ("job", "demo")],
            &[(1.0, 2000), (0.0, 3000)],
        ),
        series(
            &[("__name__", "req_total"), ("code", "500")],
            &[(7.0, 1000), (f64::from_bits(STALE_NAN), 4000)],
        ),
    ]);
    let s = decode(&b, &IngestLimits::default()).unwrap();
    let got: Vec<(&str, f64, i64)> = s.iter().map(|s| (s.name.as_str(), s.value, s.at)).collect();
    // The staleness marker is not passed on as a value.
    assert_eq!(
        got,
        vec![
            ("req_total", 7.0, 1000),
            ("up", 1.0, 2000),
            ("up", 0.0, 3000)
        ]
    );
    assert_eq!(s[1].labels.get("instance").map(String::as_str), Some("a:1"));
    assert!(!s[1].labels.contains_key("__name__"));
}

#[test]
fn refusals_name_their_reason() {
    let lim = IngestLimits::default();
    let e = decode(b"not snappy at all", &lim).unwrap_err();
    assert_eq!((e.status, e.reason), (StatusCode::BAD_REQUEST, "malformed"));

    let garbage = snap::raw::Encoder::new().compress_vec(&[0xff; 32]).unwrap();
    let e = decode(&garbage, &lim).unwrap_err();
    assert!(e.message.contains("WriteRequest"), "{}", e.message);

    let e = decode(&body(vec![series(&[("job", "x")], &[(1.0, 1)])]), &lim).unwrap_err();
    assert!(e.message.contains("no __name__"), "{}", e.message);

    let small = IngestLimits {
        max_labels_per_series: 1,
        ..IngestLimits::default()
    };
    let e = decode(
        &body(vec![series(&[("__name__", "a"), ("b", "c")], &[(1.0, 1)])]),
        &small,
    )
    .unwrap_err();
    assert_eq!(e.reason, "label_limit");

    let tiny = IngestLimits {
        max_decompressed_bytes: 4,
        ..IngestLimits::default()
    };
    let e = decode(
        &body(vec![series(&[("__name__", "a")], &[(1.0, 1)])]),
        &tiny,
    )
    .unwrap_err();
    assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
        let _ = decode(&b, &IngestLimits::default());
        let c = snap::raw::Encoder::new().compress_vec(&b).unwrap();
        let _ = decode(&c, &IngestLimits::default());
    }
}
