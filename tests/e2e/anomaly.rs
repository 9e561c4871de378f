//! `kind: anomaly` end to end: medic scrapes a real HTTP target, learns a
//! gauge, opens an incident when it jumps, with the expected band, the
//! observed value and the score in the timeline; after a restart the learnt
//! state is restored rather than relearnt.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use medic_e2e::*;

#[test]
fn anomaly_detector_opens_an_incident_with_its_evidence_and_keeps_its_state() {
    let value = Arc::new(Mutex::new(0u64));
    let v = value.clone();
    // A queue depth around 10 with noise; the test sets a jump.
    let target = TestServer::start(move |_| {
        let mut n = v.lock().unwrap();
        *n += 1;
        let x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
        let depth = if *n > 1_000_000 {
            500.0
        } else {
            10.0 + (x % 100) as f64 / 50.0
        };
        (
            200,
            format!("# TYPE app_queue_depth gauge\napp_queue_depth {depth}\n"),
        )
    });
    let dir = TempDir::new("anomaly");
    let config = format!(
        r#"sources:
  - name: app
    kind: scrape
    interval: 100ms
    targets: [127.0.0.1:{}]
detectors:
  - name: queue-anomaly
    kind: anomaly
    series: app_queue_depth
    direction: up
    min_abs_deviation: 5
    warm_up: 30
"#,
        target.port
    );
    let mut m = Medic::start(&dir, &config, &[]);
    // Learn for a while, then jump.
    std::thread::sleep(Duration::from_secs(6));
    assert!(m.incidents().is_empty(), "no false alarm while normal");
    *value.lock().unwrap() = 2_000_000;
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
    let port = m.port();
    m.stop();
    let m2 = Medic::restart_in(&dir.0, port);
    wait_for(Duration::from_secs(10), "restored state in the log", || {
        m2.log()
            .contains("restored learnt model states")
            .then_some(())
    });
}
