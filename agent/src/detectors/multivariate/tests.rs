use super::*;
use crate::detectors::tests::{Spec, batch, cfg};
use crate::detectors::{Bound, DetectorKind};

// Row assembly.

const A: u64 = 1;
const B: u64 = 2;

#[test]
fn a_row_is_due_at_the_first_sample_and_then_at_each_step_boundary() {
    let mut r = Rows::new(1000, vec![false, false]);
    r.record(0, A, 200, 1.0);
    r.record(1, B, 200, 2.0);
    assert_eq!(r.take(200), Some(vec![Some(1.0), Some(2.0)]));
    // The next boundary is 1000: nothing before it.
    r.record(0, A, 700, 3.0);
    assert_eq!(r.take(700), None);
    assert_eq!(r.take(1100), Some(vec![Some(3.0), Some(2.0)]));
    // One row per step, however many samples; missed steps are not made up.
    assert_eq!(r.take(1900), None);
    assert!(r.take(4500).is_some());
    assert_eq!(r.take(4999), None);
}

#[test]
fn series_of_one_metric_are_summed_and_non_finite_values_ignored() {
    let mut r = Rows::new(1000, vec![false, false]);
    r.record(0, A, 0, 1.5);
    r.record(0, B, 0, 2.5);
    r.record(0, B, 10, f64::NAN);
    r.record(1, A, 0, f64::INFINITY);
    assert_eq!(r.take(10), Some(vec![Some(4.0), None]));
}

#[test]
fn a_metric_without_a_sample_in_the_last_two_steps_is_missing() {
    let mut r = Rows::new(1000, vec![false, false]);
    r.record(0, A, 0, 1.0);
    r.record(1, B, 0, 2.0);
    r.take(0);
    r.record(0, A, 2000, 1.0);
    // B's sample is exactly two steps old: still fresh.
    assert_eq!(r.take(2000), Some(vec![Some(1.0), Some(2.0)]));
    r.record(0, A, 3000, 1.0);
    assert_eq!(r.take(3000), Some(vec![Some(1.0), None]));
    // Forgotten once stale; back with its next sample.
    r.record(1, B, 4000, 5.0);
    r.record(0, A, 4000, 1.0);
    assert_eq!(r.take(4000), Some(vec![Some(1.0), Some(5.0)]));
}

#[test]
fn a_counter_becomes_its_per_second_rate_with_resets_counted_from_zero() {
    let mut r = Rows::new(1000, vec![true]);
    r.record(0, A, 0, 100.0);
    assert_eq!(r.take(0), Some(vec![None]), "no rate from one sample");
    r.record(0, A, 1000, 110.0);
    assert_eq!(r.take(1000), Some(vec![Some(10.0)]));
    // The process restarted: 110 → 5 is an increase of 5.
    r.record(0, A, 2000, 5.0);
    assert_eq!(r.take(2000), Some(vec![Some(5.0)]));
    // Two samples within one step (a faster scrape) and a longer span.
    r.record(0, A, 2500, 15.0);
    r.record(0, A, 4000, 65.0);
    assert_eq!(r.take(4000), Some(vec![Some(30.0)]));
    // No new sample by the next row: the last rate stands while fresh.
    assert_eq!(r.take(5000), Some(vec![Some(30.0)]));
    // A repeat or an older sample changes nothing.
    r.record(0, A, 4000, 1000.0);
    r.record(0, A, 3000, 0.0);
    assert_eq!(r.take(6000), Some(vec![Some(30.0)]));
}

// The detector.

/// Requests (a counter, and its rate as a gauge), latency and CPU of a service move together with
/// its load; from row `broken_from` on, CPU moves against the load while
/// staying in its usual range.
fn service(i: i64, broken_from: i64, requests_total: &mut f64) -> Batch {
    let noise =
        |k: i64| ((k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as f64 / 16_777_216.0 - 0.5;
    let load = 100.0 + 40.0 * (i as f64 * 0.3).sin() + 2.0 * noise(3 * i);
    *requests_total += load;
    let cpu_load = if i >= broken_from { 200.0 - load } else { load };
    let labels: &[(&str, &str)] = &[("job", "api"), ("instance", "a")];
    let samples: [Spec<'_>; 4] = [
        ("requests_total", labels, *requests_total),
        ("requests_per_second", labels, load),
        (
            "latency_seconds",
            labels,
            0.05 + 0.001 * load + 0.002 * noise(3 * i + 1),
        ),
        (
            "cpu_ratio",
            labels,
            0.2 + 0.004 * cpu_load + 0.01 * noise(3 * i + 2),
        ),
    ];
    batch(i * 1000, &samples)
}

const SHAPE: &str = r#"name: api-shape
kind: multivariate
metrics:
  requests: requests_total
  latency: latency_seconds
  cpu: cpu_ratio
rate: [requests]
by: [job]
step: 1s
pca: {min_train: 40}
"#;

/// Feeds rows `from..to` (one batch a second); the changes, by row.
fn feed(d: &mut Bound, from: i64, to: i64, broken_from: i64) -> Vec<(i64, Change)> {
    let mut total = 0.0;
    let mut out = Vec::new();
    for i in 0..to {
        let b = service(i, broken_from, &mut total);
        if i >= from {
            out.extend(d.observe(&b).0.into_iter().map(|c| (i, c)));
        }
    }
    out
}

fn firing(changes: &[(i64, Change)]) -> Vec<&(i64, Change)> {
    changes
        .iter()
        .filter(|(_, c)| c.evaluation.state == State::Firing && c.evaluation.changed)
        .collect()
}

#[test]
fn a_broken_correlation_opens_an_incident_naming_the_metric_at_fault() {
    let mut d = Bound::new(cfg(SHAPE));
    let changes = feed(&mut d, 0, 260, 200);
    // Row 0 has no request rate yet: the first row is row 1.
    assert_eq!(changes[0].0, 1);
    let learning = &changes[0].1;
    assert_eq!(learning.detail.as_ref().unwrap()["warming_up"], true);
    assert!(
        learning
            .evaluation
            .evidence
            .reason
            .starts_with("learning the service's normal rows (cpu="),
        "{}",
        learning.evaluation.evidence.reason
    );

    let fired = firing(&changes);
    // Not before the break; after it, again whenever the load crosses its
    // middle, where CPU against the load is CPU with it.
    let (at, c) = fired[0];
    assert!((200..205).contains(at), "fires soon after the break: {at}");
    let group: Labels = [("job".to_string(), "api".to_string())].into();
    assert_eq!(c.labels, group, "labelled by `by`");
    let detail = c.detail.as_ref().unwrap();
    assert_eq!(detail["model"], "pca");
    assert!(detail["score"].as_f64().unwrap() >= 0.9, "{detail}");
    assert_eq!(detail["metrics"][0]["metric"], "cpu", "{detail}");
    assert_eq!(
        c.evaluation.evidence.observed,
        detail["metrics"][0]["observed"].as_f64().unwrap()
    );
    assert_eq!(detail["expected"], detail["metrics"][0]["expected"]);
    let reason = &c.evaluation.evidence.reason;
    assert!(
        reason.starts_with("row score ") && reason.contains("fires at 0.9): cpu="),
        "{reason}"
    );
    assert!(
        reason.contains("contributes") && reason.contains("latency="),
        "{reason}"
    );
    assert_eq!(d.state(&group), Some(State::Firing));

    // The correlation back: the incident resolves.
    let mut d = Bound::new(cfg(SHAPE));
    let mut total = 0.0;
    let mut states = Vec::new();
    for i in 0..320 {
        let broken = (200..220).contains(&i);
        let b = service(i, if broken { 0 } else { i64::MAX }, &mut total);
        for c in d.observe(&b).0 {
            if c.evaluation.changed {
                states.push((i, c.evaluation.state));
            }
        }
    }
    let fired_at = states.iter().find(|(_, s)| *s == State::Firing).unwrap().0;
    assert!(
        states
            .iter()
            .any(|(i, s)| *i > fired_at && *s == State::Resolved),
        "{states:?}"
    );
}

#[test]
fn a_row_missing_a_metric_is_not_judged() {
    let mut d = Bound::new(cfg(SHAPE));
    for i in 0..100 {
        let mut b = service(i, i64::MAX, &mut 0.0);
        b.samples.retain(|s| s.name != "cpu_ratio");
        let (changes, judged) = d.observe(&b);
        assert!(changes.is_empty() && judged == 0, "row {i}");
    }
}

#[test]
fn a_restored_model_gives_the_scores_the_uninterrupted_one_gives() {
    let scores = |v: &[(i64, Change)]| -> Vec<(i64, f64)> {
        v.iter()
            .map(|(i, c)| (*i, c.detail.as_ref().unwrap()["score"].as_f64().unwrap()))
            .collect()
    };
    // Gauges only: a counter's first row after a restart has no rate yet.
    let gauges = SHAPE
        .replace("requests_total", "requests_per_second")
        .replace("rate: [requests]\n", "");
    let mut whole = Bound::new(cfg(&gauges));
    let expected = scores(&feed(&mut whole, 0, 300, 250));

    let mut first = Bound::new(cfg(&gauges));
    let mut got = scores(&feed(&mut first, 0, 150, 250));
    let states = first.model_states();
    assert_eq!(states.len(), 1, "one model, for the one group");
    drop(first);
    let mut second = Bound::new(cfg(&gauges));
    assert!(second.learns());
    assert_eq!(second.restore_model_states(states), 1);
    // Nothing relearnt: the next rows score bit for bit the same.
    got.extend(scores(&feed(&mut second, 150, 300, 250)));
    assert_eq!(got, expected);
    assert!(expected.iter().any(|(_, s)| *s >= 0.9), "the break scored");
}

#[test]
fn the_configuration_reads_as_written() {
    let d = cfg(SHAPE);
    let DetectorKind::Multivariate {
        metrics,
        rate,
        by,
        step,
        threshold,
        pca,
        ..
    } = &d.kind
    else {
        panic!("{d:?}")
    };
    assert_eq!(
        metrics.keys().collect::<Vec<_>>(),
        ["cpu", "latency", "requests"]
    );
    assert_eq!(
        (rate.as_slice(), by.as_slice()),
        (&["requests".to_string()][..], &["job".to_string()][..])
    );
    assert_eq!((step.millis(), *threshold), (1000, 0.9));
    assert_eq!(
        *pca,
        MultivariateConfig {
            min_train: 40,
            ..MultivariateConfig::default()
        }
    );
    assert_eq!(d.kind.selectors().len(), 3);
    assert_eq!(d.kind.name(), "multivariate");
}
