use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogram, Gauge, Histogram, Metric, ResourceMetrics, ScopeMetrics, Sum, Summary,
    summary_data_point::ValueAtQuantile,
};

use super::*;
use crate::sources::otlp::tests::kv;
use crate::sources::push::SeriesLimiter;

const T: u64 = 5_000_000_000; // 5 s in ns

fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", Value::StringValue("checkout".into())),
                    kv("service.instance.id", Value::StringValue("i-1".into())),
                    kv("host.name", Value::StringValue("h".into())),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn metric(name: &str, data: Data) -> Metric {
    Metric {
        name: name.into(),
        data: Some(data),
        ..Default::default()
    }
}

fn number_point(v: f64, code: &str) -> NumberDataPoint {
    NumberDataPoint {
        attributes: vec![kv("http.code", Value::StringValue(code.into()))],
        time_unix_nano: T,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    }
}

fn sum(
    name: &str,
    temporality: AggregationTemporality,
    monotonic: bool,
    points: Vec<NumberDataPoint>,
) -> Metric {
    metric(
        name,
        Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: temporality as i32,
            is_monotonic: monotonic,
        }),
    )
}

/// Converts with no series limit beyond `max`.
struct Fixture {
    limits: IngestLimits,
    series: SeriesLimiter,
    deltas: Deltas,
}

impl Fixture {
    fn new(max_series: usize) -> Self {
        Fixture {
            limits: IngestLimits::default(),
            series: SeriesLimiter::new(max_series, 600_000),
            deltas: Deltas::default(),
        }
    }

    fn convert(&mut self, metrics: Vec<Metric>) -> (Vec<Sample>, Outcome) {
        let series = &mut self.series;
        Converter {
            limits: &self.limits,
            admit: |k: &[u64]| series.admit_all(k, 1000).is_ok(),
            deltas: &mut self.deltas,
            now: 1000,
        }
        .convert(&request(metrics))
    }
}

/// `name{labels…}` → value, for compact assertions.
fn show(samples: &[Sample]) -> Vec<String> {
    samples
        .iter()
        .map(|s| {
            let l: Vec<String> = s
                .labels
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "job" | "instance"))
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!("{}{{{}}} {}", s.name, l.join(","), s.value)
        })
        .collect()
}

#[test]
fn names_and_labels_follow_the_documented_mapping() {
    let mut f = Fixture::new(100);
    let (s, o) = f.convert(vec![sum(
        "http.server.requests",
        AggregationTemporality::Cumulative,
        true,
        vec![number_point(3.0, "200")],
    )]);
    assert_eq!(o.accepted, 1);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].name, "http_server_requests");
    assert_eq!(s[0].at, 5000);
    let l: Vec<(&str, &str)> = s[0]
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        l,
        vec![
            ("http_code", "200"),
            ("instance", "i-1"),
            ("job", "checkout")
        ]
    );
    assert_eq!(sanitize("1a.b-c:d"), "_1a_b_c_d");
}

#[test]
fn sums_gauges_and_delta_accumulation() {
    let mut f = Fixture::new(100);
    let delta = |v| {
        sum(
            "jobs.done",
            AggregationTemporality::Delta,
            true,
            vec![number_point(v, "x")],
        )
    };
    let gauge = metric(
        "queue.depth",
        Data::Gauge(Gauge {
            data_points: vec![number_point(7.0, "x")],
        }),
    );
    let updown = sum(
        "conns",
        AggregationTemporality::Cumulative,
        false,
        vec![number_point(-2.0, "x")],
    );
    let (s, _) = f.convert(vec![delta(2.0), gauge, updown]);
    assert_eq!(
        show(&s),
        vec![
            "jobs_done{http_code=x} 2",
            "queue_depth{http_code=x} 7",
            "conns{http_code=x} -2"
        ]
    );
    let (s, _) = f.convert(vec![delta(3.0)]);
    assert_eq!(show(&s), vec!["jobs_done{http_code=x} 5"]);
    assert_eq!(f.deltas.len(), 1);
}

fn histogram_metric(temporality: AggregationTemporality, counts: Vec<u64>) -> Metric {
    let count = counts.iter().sum();
    metric(
        "http.server.duration",
        Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                time_unix_nano: T,
                count,
                sum: Some(100.0),
                bucket_counts: counts,
                explicit_bounds: vec![0.0, 5.0, 10.0],
                ..Default::default()
            }],
            aggregation_temporality: temporality as i32,
        }),
    )
}

#[test]
fn histograms_become_cumulative_buckets_sum_and_count() {
    let mut f = Fixture::new(100);
    let (s, o) = f.convert(vec![histogram_metric(
        AggregationTemporality::Cumulative,
        vec![1, 0, 2, 2],
    )]);
    assert_eq!(o.accepted, 1);
    assert_eq!(
        show(&s),
        vec![
            "http_server_duration_bucket{le=0} 1",
            "http_server_duration_bucket{le=5} 1",
            "http_server_duration_bucket{le=10} 3",
            "http_server_duration_bucket{le=+Inf} 5",
            "http_server_duration_sum{} 100",
            "http_server_duration_count{} 5",
        ]
    );
    // Delta histograms add up bucket by bucket.
    f.convert(vec![histogram_metric(
        AggregationTemporality::Delta,
        vec![1, 1, 0, 0],
    )]);
    let (s, _) = f.convert(vec![histogram_metric(
        AggregationTemporality::Delta,
        vec![0, 1, 0, 1],
    )]);
    assert_eq!(
        show(&s),
        vec![
            "http_server_duration_bucket{le=0} 1",
            "http_server_duration_bucket{le=5} 3",
            "http_server_duration_bucket{le=10} 3",
            "http_server_duration_bucket{le=+Inf} 4",
            "http_server_duration_sum{} 200",
            "http_server_duration_count{} 4",
        ]
    );
    // Counts that do not match the bounds: refused, not guessed.
    let (s, o) = f.convert(vec![histogram_metric(
        AggregationTemporality::Cumulative,
        vec![1, 2],
    )]);
    assert!(s.is_empty());
    assert_eq!(o.rejected.get("invalid"), Some(&1));
    assert!(o.message.contains("bucket counts"), "{}", o.message);
}

#[test]
fn exponential_histograms_use_the_bucket_upper_bounds() {
    let mut f = Fixture::new(100);
    // scale 0: base 2. Positive buckets at offset 1: (2,4], (4,8]. One
    // negative bucket at index 0: [-2,-1). Zero bucket: 1.
    let p = ExponentialHistogramDataPoint {
        time_unix_nano: T,
        count: 7,
        sum: Some(20.0),
        scale: 0,
        zero_count: 1,
        positive: Some(Buckets {
            offset: 1,
            bucket_counts: vec![2, 3],
        }),
        negative: Some(Buckets {
            offset: 0,
            bucket_counts: vec![1],
        }),
        ..Default::default()
    };
    let (s, o) = f.convert(vec![metric(
        "lat",
        Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![p.clone()],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        }),
    )]);
    assert_eq!(o.accepted, 1);
    assert_eq!(
        show(&s),
        vec![
            "lat_bucket{le=-1} 1",
            "lat_bucket{le=0} 2",
            "lat_bucket{le=4} 4",
            "lat_bucket{le=8} 7",
            "lat_bucket{le=+Inf} 7",
            "lat_sum{} 20",
            "lat_count{} 7",
        ]
    );
    // scale 1: base √2; index 2 covers (2, 2√2].
    let p1 = ExponentialHistogramDataPoint {
        scale: 1,
        negative: None,
        zero_count: 0,
        count: 1,
        positive: Some(Buckets {
            offset: 2,
            bucket_counts: vec![1],
        }),
        ..p.clone()
    };
    let (s, _) = f.convert(vec![metric(
        "lat1",
        Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![p1],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        }),
    )]);
    let le: f64 = s[1].labels["le"].parse().unwrap();
    assert!((le - 2f64 * 2f64.sqrt()).abs() < 1e-12, "{le}");
    // An absurd scale is refused.
    let bad = ExponentialHistogramDataPoint { scale: 99, ..p };
    let (_, o) = f.convert(vec![metric(
        "lat2",
        Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![bad],
            aggregation_temporality: 2,
        }),
    )]);
    assert_eq!(o.rejected.get("invalid"), Some(&1));
}

#[test]
fn summaries_keep_their_quantiles() {
    let mut f = Fixture::new(100);
    let (s, _) = f.convert(vec![metric(
        "rpc",
        Data::Summary(Summary {
            data_points: vec![SummaryDataPoint {
                time_unix_nano: T,
                count: 4,
                sum: 2.0,
                quantile_values: vec![ValueAtQuantile {
                    quantile: 0.5,
                    value: 0.4,
                }],
                ..Default::default()
            }],
        }),
    )]);
    assert_eq!(
        show(&s),
        vec!["rpc{quantile=0.5} 0.4", "rpc_sum{} 2", "rpc_count{} 4"]
    );
}

#[test]
fn series_limit_refuses_whole_points_as_partial_success() {
    // A histogram point is 6 series; with room for 7 the second point of the
    // request is refused whole, and the counter after it still fits.
    let mut f = Fixture::new(7);
    let two_points = metric(
        "h",
        Data::Histogram(Histogram {
            data_points: ["a", "b"]
                .iter()
                .map(|r| HistogramDataPoint {
                    attributes: vec![kv("route", Value::StringValue(r.to_string()))],
                    time_unix_nano: T,
                    count: 1,
                    sum: Some(1.0),
                    bucket_counts: vec![1, 0, 0, 0],
                    explicit_bounds: vec![1.0, 2.0, 3.0],
                    ..Default::default()
                })
                .collect(),
            aggregation_temporality: 2,
        }),
    );
    let counter = sum(
        "c",
        AggregationTemporality::Cumulative,
        true,
        vec![number_point(1.0, "x")],
    );
    let (s, o) = f.convert(vec![two_points, counter]);
    assert_eq!(o.accepted, 2);
    assert_eq!(o.rejected.get("series_limit"), Some(&1));
    assert_eq!(s.len(), 7);
    assert!(matches!(
        o.verdict(),
        crate::sources::otlp::Verdict::Accepted { rejected: 1, .. }
    ));
    // Nothing fits any more: all refused → exhausted.
    let (_, o) = f.convert(vec![sum(
        "d",
        AggregationTemporality::Cumulative,
        true,
        vec![number_point(1.0, "x")],
    )]);
    assert!(matches!(
        o.verdict(),
        crate::sources::otlp::Verdict::Exhausted(1, _)
    ));
}

#[test]
fn label_limits_and_missing_values_are_refused_per_point() {
    let mut f = Fixture::new(100);
    f.limits.max_label_bytes = 4;
    let (s, o) = f.convert(vec![sum(
        "c",
        AggregationTemporality::Cumulative,
        true,
        vec![number_point(1.0, "much too long")],
    )]);
    assert!(s.is_empty());
    assert_eq!(o.rejected.get("label_limit"), Some(&1));
    f.limits.max_label_bytes = 100;
    let no_value = NumberDataPoint {
        value: None,
        ..number_point(0.0, "x")
    };
    let stale = NumberDataPoint {
        flags: DataPointFlags::NoRecordedValueMask as u32,
        ..number_point(0.0, "x")
    };
    let (s, o) = f.convert(vec![sum(
        "c",
        AggregationTemporality::Cumulative,
        true,
        vec![no_value, stale],
    )]);
    assert!(s.is_empty());
    assert_eq!((o.accepted, o.rejected.get("invalid")), (1, Some(&1)));
    assert!(matches!(
        o.verdict(),
        crate::sources::otlp::Verdict::Accepted { rejected: 1, .. }
    ));
}
