use super::*;

fn sample(name: &str, job: &str, at: Millis, value: f64) -> Sample {
    Sample {
        name: name.into(),
        labels: [("job".to_string(), job.to_string())].into(),
        value,
        at,
    }
}

fn batch(at: Millis, samples: Vec<Sample>) -> Batch {
    Batch {
        source: "s".into(),
        target: "t".into(),
        at,
        samples,
        complete: false,
    }
}

#[test]
fn watched_series_keep_history_others_last_value() {
    let c = SeriesCache::new(CacheLimits {
        max_series: 10,
        points: 3,
        ttl: 1_000_000,
    });
    for t in 1..=5 {
        c.record(
            &batch(
                t,
                vec![
                    sample("a", "x", t, t as f64),
                    sample("b", "x", t, -(t as f64)),
                ],
            ),
            |s| s.name == "a",
        );
    }
    let a = c.query(&"a".parse().unwrap(), 10);
    assert_eq!(
        a[0].points,
        vec![(3, Some(3.0)), (4, Some(4.0)), (5, Some(5.0))]
    );
    assert!(a[0].watched);
    let b = c.query(&r#"{job="x"}"#.parse().unwrap(), 10);
    assert_eq!(b.len(), 2);
    assert_eq!(b[1].points, vec![(5, Some(-5.0))]);
}

#[test]
fn bounded_ordered_and_swept() {
    let c = SeriesCache::new(CacheLimits {
        max_series: 2,
        points: 4,
        ttl: 100_000,
    });
    c.record(
        &batch(
            10,
            vec![
                sample("a", "1", 10, 1.0),
                sample("a", "2", 10, 2.0),
                sample("a", "3", 10, 3.0),
            ],
        ),
        |_| true,
    );
    assert_eq!(c.stats(), (2, 1));
    // Older than the newest: ignored; same time: replaced; NaN shown as null.
    c.record(
        &batch(
            11,
            vec![sample("a", "1", 5, 9.0), sample("a", "1", 10, f64::NAN)],
        ),
        |_| true,
    );
    let v = c.query(&r#"a{job="1"}"#.parse().unwrap(), 10);
    assert_eq!(v[0].points, vec![(10, None)]);
    // A sweep after the TTL drops series not seen since.
    c.record(
        &batch(200_000, vec![sample("a", "2", 200_000, 1.0)]),
        |_| true,
    );
    assert_eq!(c.stats().0, 1);
}
