//! `kind: anomaly` end to end: medic scrapes a real HTTP target, learns a
//! gauge, opens an incident when it jumps, with the expected band, the
//! observed value and the score in the timeline; after a restart the learnt
//! state is restored rather than relearnt.

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
