use crate::detectors::tests::{batch, cfg, changed};
use crate::detectors::{Bound, Change};
use medic_detectors::State;

const MIN: i64 = 60_000;

/// Disk usage in % of one volume, one sample a minute: flat at 50 % until
/// minute `rise_from`, then rising 1 % every 5 minutes (full 250 minutes
/// later), with a small wobble.
fn disk(minute: i64, rise_from: i64) -> f64 {
    let wobble = [0.3, -0.2, 0.1, -0.3, 0.2][(minute % 5) as usize];
    50.0 + wobble + (minute - rise_from).max(0) as f64 / 5.0
}

fn detector() -> Bound {
    Bound::new(cfg(
        "name: disk-full\nkind: forecast\nseries: disk_used_percent\nabove: 100\nhorizon: 4h\nwindow: 1h\nfor: 5m\nclear_for: 5m\n",
    ))
}

fn feed(d: &mut Bound, from: i64, to: i64, rise_from: i64) -> Vec<Change> {
    (from..to)
        .flat_map(|m| {
            let at = m * MIN;
            d.observe(&batch(
                at,
                &[(
                    "disk_used_percent",
                    &[("volume", "/data")],
                    disk(m, rise_from),
                )],
            ))
            .0
        })
        .collect()
}

fn first_in(changes: &[Change], state: State) -> Option<&Change> {
    changes.iter().find(|c| c.evaluation.state == state)
}

#[test]
fn a_flat_series_never_fires() {
    let mut d = detector();
    let out = feed(&mut d, 0, 600, i64::MAX / MIN);
    // The first answer is reported, then only changes: none.
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].evaluation.state, State::Ok);
    let first = out[0].detail.as_ref().unwrap();
    assert_eq!(first["model"], "forecast");
    assert_eq!(first["breach_in_seconds"], serde_json::Value::Null);
    assert_eq!(
        d.state(&crate::detectors::tests::labels(&[("volume", "/data")])),
        Some(State::Ok)
    );
}

#[test]
fn a_rising_series_fires_hours_before_the_limit_with_the_prediction_as_evidence() {
    let mut d = detector();
    // Rising from minute 120: 100 % is reached at minute 370.
    let out = feed(&mut d, 0, 330, 120);
    let fired = first_in(&out, State::Firing).expect("fires");
    let minute = fired.evaluation.evidence.at / MIN;
    // The trend needs part of the window to turn, then the prediction must
    // be within 4 h for 5 minutes; it fires well before the disk is full.
    assert!((125..=200).contains(&minute), "fired at minute {minute}");
    assert!(370 - minute >= 170, "only {} minutes ahead", 370 - minute);
    let reason = &fired.evaluation.evidence.reason;
    assert!(reason.contains("reaches 100 in"), "{reason}");
    let detail = fired.detail.as_ref().unwrap();
    let eta = detail["breach_in_seconds"].as_f64().unwrap();
    assert!(eta <= 4.0 * 3600.0, "{detail}");
    // The predicted crossing is about right by the time it fires.
    let actual = ((370 - minute) * 60) as f64;
    assert!((eta - actual).abs() < 0.25 * actual, "{eta} vs {actual}");
    assert!(detail["slope_per_hour"].as_f64().unwrap() > 5.0, "{detail}");
    assert_eq!(
        fired.labels.get("volume").map(String::as_str),
        Some("/data")
    );
}

#[test]
fn it_resolves_once_the_trend_stops() {
    let mut d = detector();
    let mut out = feed(&mut d, 0, 200, 120);
    assert!(first_in(&out, State::Firing).is_some());
    // Someone cleaned up: usage flat again (at its new level).
    for m in 200..400 {
        out.extend(
            d.observe(&batch(
                m * MIN,
                &[(
                    "disk_used_percent",
                    &[("volume", "/data")],
                    disk(m, 120).min(66.0),
                )],
            ))
            .0,
        );
    }
    let resolved = first_in(&out, State::Resolved).expect("resolves");
    assert!(resolved.evaluation.evidence.at / MIN > 200);
}

#[test]
fn the_trend_survives_a_restart() {
    let mut whole = detector();
    let expected = feed(&mut whole, 0, 240, 120);
    let mut first = detector();
    let mut got = feed(&mut first, 0, 150, 120);
    let states = first.model_states();
    assert_eq!(states.len(), 1);
    let mut second = detector();
    assert!(second.learns());
    assert_eq!(second.restore_model_states(states), 1);
    got.extend(feed(&mut second, 150, 240, 120));
    assert_eq!(second.model_states(), whole.model_states());
    // The same changes with the same predictions; the restored trend's first
    // answer (minute 150) is reported too.
    assert!(!changed(&expected).is_empty());
    assert_eq!(changed(&got), changed(&expected));
    assert_eq!(got.len(), expected.len() + 1);
}
