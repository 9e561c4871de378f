use super::*;
use crate::State;

const S: Millis = 1000;
const M: Millis = 60 * S;

fn cfg(min_events: f64) -> SloBurnConfig {
    SloBurnConfig {
        objective: 0.999,
        rules: BurnRule::workbook(),
        min_events,
        counts_good: false,
    }
}

/// Feed `rps` requests per second with `bad_fraction` failing, every 10 s,
/// from `from` to `to`; returns the evaluations.
fn run(
    d: &mut SloBurn,
    c: &mut (f64, f64),
    from: Millis,
    to: Millis,
    rps: f64,
    bad: f64,
) -> Vec<Evaluation> {
    let mut out = Vec::new();
    let mut t = from;
    while t <= to {
        c.1 += rps * 10.0;
        c.0 += rps * 10.0 * bad;
        out.push(d.observe(t, c.0, c.1));
        t += 10 * S;
    }
    out
}

/// 10 requests/s: healthy for 2 h, then all fail for 5 m.
fn two_hours_then_five_minutes_down(d: &mut SloBurn, c: &mut (f64, f64)) -> Vec<Evaluation> {
    run(d, c, 0, 2 * 60 * M, 10.0, 0.0);
    run(d, c, 2 * 60 * M + 10 * S, 2 * 60 * M + 5 * M, 10.0, 1.0)
}

#[test]
fn healthy_service_never_fires() {
    let mut d = SloBurn::new(cfg(100.0));
    let mut c = (0.0, 0.0);
    // 0.05 % errors: half the budget.
    let ev = run(&mut d, &mut c, 0, 4 * 24 * 60 * M, 10.0, 0.0005);
    assert!(ev.iter().all(|e| e.state == State::Ok));
    let b = d.burns();
    assert!((b[2].long - 0.5).abs() < 0.05, "{b:?}");
}

#[test]
fn fast_burn_pages_within_minutes_and_resets_fast() {
    let mut d = SloBurn::new(cfg(100.0));
    let mut c = (0.0, 0.0);
    // 100 % errors: burn 1000×. The 1 h window reaches 14.4× after about
    // 0.0144 h = 52 s; the 5 m window sooner.
    let ev = two_hours_then_five_minutes_down(&mut d, &mut c);
    let fired = ev.iter().find(|e| e.state == State::Firing).expect("fires");
    assert!(fired.changed);
    let after = fired.evidence.at - 2 * 60 * M;
    assert!(after <= 60 * S, "fired {after} ms after the outage began");
    assert!(
        fired.evidence.reason.contains("rule 1"),
        "{}",
        fired.evidence.reason
    );
    // Recovery: rule 1's 5 m window clears once the errors have aged out
    // of it, even though its 1 h window still shows a high burn. The slower
    // rules (6× over 6 h/30 m, 1× over 3 d/6 h) rightly stay on: 3000 failed
    // requests are 11 % of a 30-day budget at this traffic.
    let start = 2 * 60 * M + 5 * M + 10 * S;
    let ev = run(&mut d, &mut c, start, start + 6 * M, 10.0, 0.0);
    let last = ev.last().unwrap();
    assert!(d.burns()[0].short < 14.4 && d.burns()[0].long > 14.4);
    assert_eq!(last.state, State::Firing);
    assert!(
        !last.evidence.reason.contains("rule 1"),
        "{}",
        last.evidence.reason
    );

    // With rule 1 alone the same outage resolves within its short window.
    let mut d = SloBurn::new(SloBurnConfig {
        rules: vec![BurnRule::workbook()[0]],
        ..cfg(100.0)
    });
    let mut c = (0.0, 0.0);
    two_hours_then_five_minutes_down(&mut d, &mut c);
    let ev = run(&mut d, &mut c, start, start + 10 * M, 10.0, 0.0);
    let resolved = ev
        .iter()
        .find(|e| e.state == State::Resolved)
        .expect("resolves");
    let took = resolved.evidence.at - start;
    assert!(took <= 5 * M + 20 * S, "resolved {took} ms after recovery");
}

#[test]
fn slow_burn_opens_on_the_long_rules_only() {
    let mut d = SloBurn::new(cfg(100.0));
    let mut c = (0.0, 0.0);
    // 0.8 % errors: 8× — rule 2 (6×) fires after hours, never rule 1 (14.4×).
    let ev = run(&mut d, &mut c, 0, 8 * 60 * M, 10.0, 0.008);
    let fired = ev.iter().find(|e| e.state == State::Firing).expect("fires");
    assert!(fired.evidence.reason.contains("rule 2") || fired.evidence.reason.contains("rule 3"));
    assert!(fired.evidence.at >= 30 * M, "{}", fired.evidence.at);
}

#[test]
fn little_traffic_neither_pages_on_one_failure_nor_hides_an_outage() {
    // One request a minute.
    let mut d = SloBurn::new(cfg(100.0));
    let (mut bad, mut total) = (0.0, 0.0);
    let mut states = Vec::new();
    for i in 0..120 {
        total += 1.0;
        if i == 60 {
            bad += 1.0; // one failed request
        }
        states.push(d.observe(i * M, bad, total).state);
    }
    // One bad of ~60 in the hour is 1 % (16× a 99.9 % SLO's budget with the
    // raw ratio), but padded to 100 events it is 10×: no page.
    assert!(states.iter().all(|s| *s == State::Ok), "{states:?}");

    // Total outage at the same low traffic: every request fails.
    let mut d = SloBurn::new(cfg(100.0));
    let (mut bad, mut total) = (0.0, 0.0);
    let mut fired_at = None;
    for i in 0..30 {
        total += 1.0;
        bad += 1.0;
        if d.observe(i * M, bad, total).state == State::Firing && fired_at.is_none() {
            fired_at = Some(i);
        }
    }
    // Pages once 2 failures are in both windows (2 / 100 / 0.001 = 20×).
    assert_eq!(fired_at, Some(2));
}

#[test]
fn good_counting_and_counter_resets() {
    let mut d = SloBurn::new(SloBurnConfig {
        counts_good: true,
        rules: vec![BurnRule {
            long_ms: 10 * S,
            short_ms: 10 * S,
            burn_rate: 14.4,
        }],
        ..cfg(10.0)
    });
    d.observe(0, 100.0, 100.0);
    // Process restart: both counters start again from zero; the increase
    // is the new value (20 total, 10 good → 10 bad).
    let e = d.observe(10 * S, 10.0, 20.0);
    assert_eq!(e.state, State::Firing);
    let b = d.burns()[0];
    // 10 bad / 20 total = 50 % = 500× of a 0.1 % budget.
    assert!(e.evidence.reason.contains("500×"), "{}", e.evidence.reason);
    assert!((b.short - 500.0).abs() < 1e-6, "{b:?}");
    // NaN and out-of-order observations are ignored.
    let e2 = d.observe(5 * S, 0.0, 0.0);
    assert_eq!((e2.state, e2.changed), (State::Firing, false));
    assert!(!d.observe(20 * S, f64::NAN, 1.0).changed);
}

#[test]
fn memory_is_bounded() {
    let mut d = SloBurn::new(cfg(100.0));
    let mut c = (0.0, 0.0);
    run(&mut d, &mut c, 0, 10 * 24 * 60 * M, 1.0, 0.0);
    assert!(d.snaps.len() <= MAX_SNAPSHOTS);
    // 3 d at the 30 s resolution (5 m / 10), plus one.
    assert!(d.snaps.len() <= (3 * 24 * 60 * M / d.resolution_ms()) as usize + 2);
}

proptest::proptest! {
    #[test]
    fn burn_rates_are_finite_and_non_negative(
        steps in proptest::collection::vec((1i64..600_000, 0.0f64..1e6, 0.0f64..1e6), 1..200)
    ) {
        let mut d = SloBurn::new(cfg(10.0));
        let mut t = 0;
        for (dt, a, b) in steps {
            t += dt;
            let e = d.observe(t, a, b);
            proptest::prop_assert!(e.evidence.observed.is_finite() && e.evidence.observed >= 0.0);
            for r in d.burns() {
                proptest::prop_assert!(r.long >= 0.0 && r.short >= 0.0);
            }
        }
    }
}
