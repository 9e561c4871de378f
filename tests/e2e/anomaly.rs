//! `kind: anomaly` end to end: medic scrapes a real HTTP target, learns a
//! gauge, opens an incident when it jumps, with the expected band, the
//! observed value and the score in the timeline; after a restart the learnt
//! state is restored rather than relearnt. And `kind: forecast`: a rising
//! gauge opens an incident before it reaches its limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use medic_e2e::*;

#[test]
fn anomaly_detector_opens_an_incident_with_its_evidence_and_keeps_its_state() {
    let jump = Arc::new(AtomicBool::new(false));
    let target = queue_depth_target(jump.clone());
    let dir = TempDir::new("anomaly");
    let config = queue_depth_config(target.port, "", "");
    let mut m = Medic::start(&dir, &config, &[]);
    // Learn for a while, then jump.
    std::thread::sleep(Duration::from_secs(6));
    assert!(m.incidents().is_empty(), "no false alarm while normal");
    jump.store(true, Ordering::Relaxed);
    let d = m.wait_incident("queue-anomaly", Duration::from_secs(30), |_| true);
    let opened = &d["timeline"][0]["data"];
    assert_eq!(opened["observed"], 500.0, "{opened}");
    let (lo, hi) = (
        opened["lower"].as_f64().unwrap(),
        opened["upper"].as_f64().unwrap(),
    );
    assert!(lo < 12.0 && hi > 10.0 && hi < 500.0, "{opened}");
    assert!(opened["score"].as_f64().unwrap() >= 0.9, "{opened}");
    assert_eq!(opened["model"], "auto");

    // A graceful restart saves the learnt state, and the new process restores it.
    let _restarted = m.restart_restoring_models();
}

/// `kind: forecast` end to end: a scraped disk gauge starts to rise, and the
/// incident opens while the disk still has room, with the prediction (time
/// to the limit, trend) in its timeline.
#[test]
fn forecast_detector_opens_an_incident_before_the_limit_is_reached() {
    let started: Arc<std::sync::Mutex<Option<std::time::Instant>>> = Arc::default();
    let rising = started.clone();
    let target = TestServer::start(move |_| {
        // Flat at 40 % (with a wobble), then 2 % a second from the switch.
        let since = rising.lock().unwrap().map(|t| t.elapsed().as_secs_f64());
        let used = 40.0 + since.map_or(0.0, |s| 2.0 * s) + (rand_wobble() - 0.5);
        (
            200,
            format!("# TYPE app_disk_used_percent gauge\napp_disk_used_percent {used}\n"),
        )
    });
    let config = format!(
        r#"sources:
  - name: app
    kind: scrape
    interval: 100ms
    targets: [127.0.0.1:{port}]
detectors:
  - name: disk-full
    kind: forecast
    series: app_disk_used_percent
    above: 100
    horizon: 60s
    window: 8s
    for: 0s
    clear_for: 0s
    min_points: 4
"#,
        port = target.port
    );
    let dir = TempDir::new("forecast");
    let m = Medic::start(&dir, &config, &[]);
    std::thread::sleep(Duration::from_secs(6));
    assert!(
        m.incidents().is_empty(),
        "a flat disk is not predicted to fill"
    );
    let rise = std::time::Instant::now();
    *started.lock().unwrap() = Some(rise);
    let d = m.wait_incident("disk-full", Duration::from_secs(25), |_| true);
    // 100 % is 30 s after the rise began: the incident must come first.
    let ahead = 30.0 - rise.elapsed().as_secs_f64();
    assert!(
        ahead > 5.0,
        "opened only {ahead:.1} s before the disk is full"
    );
    let opened = &d["timeline"][0];
    let data = &opened["data"];
    assert_eq!(data["model"], "forecast", "{opened}");
    let eta = data["breach_in_seconds"]
        .as_f64()
        .expect("a predicted crossing");
    assert!(eta > 0.0 && eta <= 60.0, "{opened}");
    // Rising at 2 %/s = 7200 %/h; a line fitted while it turns is shallower.
    assert!(
        data["slope_per_hour"].as_f64().unwrap() > 1800.0,
        "{opened}"
    );
    let text = opened.to_string();
    assert!(text.contains("reaches 100 in"), "{opened}");
}

/// A value in [0, 1) that changes from call to call (a scrape's noise).
fn rand_wobble() -> f64 {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(0);
    let k = N.fetch_add(1, Ordering::Relaxed) + 1;
    (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as f64 / (1u64 << 24) as f64
}
