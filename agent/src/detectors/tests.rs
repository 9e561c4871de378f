use super::*;
use crate::series::Sample;

fn cfg(yaml: &str) -> DetectorConfig {
    serde_saphyr::from_str(yaml).unwrap()
}

type Spec<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

fn batch(at: Millis, samples: &[Spec<'_>]) -> Batch {
    Batch {
        source: "s".into(),
        target: "t".into(),
        at,
        samples: samples
            .iter()
            .map(|(n, l, v)| Sample {
                name: n.to_string(),
                labels: l
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
                value: *v,
                at,
            })
            .collect(),
        complete: true,
    }
}

#[test]
fn threshold_per_series() {
    let mut d = Bound::new(cfg(
        "name: down\nkind: threshold\nseries: 'up{job=\"a\"}'\nbelow: 1\n",
    ));
    let (c, n) = d.observe(&batch(
        1000,
        &[
            ("up", &[("job", "a"), ("instance", "x")], 0.0),
            ("up", &[("job", "b")], 0.0),
        ],
    ));
    assert_eq!(n, 1);
    assert_eq!(c[0].evaluation.state, State::Firing);
    assert_eq!(c[0].labels.get("instance").unwrap(), "x");
}

#[test]
fn error_rate_sums_series_of_a_group() {
    let mut d = Bound::new(cfg(
        "name: err\nkind: error_rate\nerrors: 'req_total{code=~\"5..\"}'\ntotal: req_total\nwindow: 10s\nmax_ratio: 0.2\nmin_total: 5\n",
    ));
    let l200: &[(&str, &str)] = &[("job", "a"), ("instance", "x"), ("code", "200")];
    let l500: &[(&str, &str)] = &[("job", "a"), ("instance", "x"), ("code", "500")];
    d.observe(&batch(
        0,
        &[("req_total", l200, 0.0), ("req_total", l500, 0.0)],
    ));
    let (c, _) = d.observe(&batch(
        1000,
        &[("req_total", l200, 10.0), ("req_total", l500, 10.0)],
    ));
    assert_eq!(c.len(), 1);
    assert_eq!(
        c[0].evaluation.state,
        State::Firing,
        "{:?}",
        c[0].evaluation
    );
    assert_eq!(c[0].labels.len(), 2, "grouped by job, instance");
}

#[test]
fn heartbeat_fires_on_tick_and_resolves() {
    let mut d = Bound::new(cfg(
        "name: hb\nkind: heartbeat\nseries: probe_success\ntimeout: 2s\n",
    ));
    let l: &[(&str, &str)] = &[("instance", "x")];
    d.observe(&batch(0, &[("probe_success", l, 1.0)]));
    d.observe(&batch(1000, &[("probe_success", l, 0.0)]));
    let c = d.tick(2500);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].evaluation.state, State::Firing);
    let (c, _) = d.observe(&batch(3000, &[("probe_success", l, 1.0)]));
    assert_eq!(c[0].evaluation.state, State::Resolved);
}

#[test]
fn threshold_series_that_vanish_from_a_complete_batch_are_stale() {
    let mut d = Bound::new(cfg(
        "name: mode\nkind: threshold\nseries: 'mode{m=\"bad\"}'\nabove: 0\n",
    ));
    let bad: &[(&str, &str)] = &[("m", "bad")];
    let ok: &[(&str, &str)] = &[("m", "ok")];
    let (c, _) = d.observe(&batch(0, &[("mode", bad, 1.0)]));
    assert_eq!(c[0].evaluation.state, State::Firing);
    // An incomplete batch (failed scrape) says nothing about absence.
    let mut failed = batch(500, &[("up", &[], 0.0)]);
    failed.complete = false;
    assert!(d.observe(&failed).0.is_empty());
    assert_eq!(
        d.state(
            &bad.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        ),
        Some(State::Firing)
    );
    // The target now exposes mode{m="ok"} only: the bad series is stale.
    let (c, _) = d.observe(&batch(1000, &[("mode", ok, 1.0)]));
    let stale = c
        .iter()
        .find(|c| c.labels.get("m").map(String::as_str) == Some("bad"))
        .expect("stale change");
    assert_eq!(stale.evaluation.state, State::Ok);
    assert!(stale.evaluation.changed);
    assert!(stale.evaluation.evidence.reason.contains("stale"));
}

#[test]
fn slo_burn_over_good_and_total_per_group() {
    let mut d = Bound::new(cfg(r#"name: checkout-slo
kind: slo_burn
good: 'req_total{code="200"}'
total: req_total
by: [service]
objective: 0.99
min_events: 10
windows:
  - {long: 1m, short: 10s, burn_rate: 10}
"#));
    let mut states = Vec::new();
    // 100 requests per 5 s; healthy for a minute, then 30 % fail.
    let (mut ok, mut bad) = (0.0, 0.0);
    for i in 0..30 {
        let t = i * 5_000;
        if i < 12 {
            ok += 100.0;
        } else {
            ok += 70.0;
            bad += 30.0;
        }
        let (c, _) = d.observe(&batch(
            t,
            &[
                ("req_total", &[("service", "a"), ("code", "200")], ok),
                ("req_total", &[("service", "a"), ("code", "500")], bad),
            ],
        ));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].labels.get("service").map(String::as_str), Some("a"));
        states.push(c[0].evaluation.state);
    }
    let first_firing = states.iter().position(|s| *s == State::Firing).unwrap();
    // 30 % errors is 30× a 1 % budget: both windows reach 10× within about
    // 20 s of the change (the 1 m window holds 12 healthy intervals).
    assert!((12..=16).contains(&first_firing), "{states:?}");
    assert!(states[..12].iter().all(|s| *s == State::Ok));
}
