//! `kind: multivariate` end to end: medic scrapes a real HTTP target whose
//! requests, latency and CPU move together, learns how, and opens an
//! incident when CPU moves against the others though it stays in its usual
//! range, naming CPU as the metric at fault in the timeline; after a
//! restart the learnt model is restored rather than relearnt.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use medic_e2e::*;

/// Three gauges driven by one load (a wave over the scrapes, with 1 % of
/// noise); once `broken`, CPU follows the load's mirror image instead.
fn service_target(broken: Arc<AtomicBool>) -> TestServer {
    let n = AtomicU64::new(0);
    TestServer::start(move |_| {
        let k = n.fetch_add(1, Ordering::Relaxed);
        let noise = |salt: u64| {
            let x = (3 * k + salt).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
            x as f64 / 16_777_216.0 - 0.5
        };
        let load = 100.0 + 40.0 * (k as f64 * 0.3).sin() + 0.4 * noise(0);
        let cpu_load = if broken.load(Ordering::Relaxed) {
            200.0 - load
        } else {
            load
        };
        let latency = 0.05 + 0.001 * load + 0.0004 * noise(1);
        let cpu = 0.2 + 0.004 * cpu_load + 0.0016 * noise(2);
        (
            200,
            format!(
                "# TYPE app_requests_per_second gauge\napp_requests_per_second {load}\n\
                 # TYPE app_latency_seconds gauge\napp_latency_seconds {latency}\n\
                 # TYPE app_cpu_ratio gauge\napp_cpu_ratio {cpu}\n"
            ),
        )
    })
}

#[test]
fn a_broken_correlation_opens_an_incident_naming_the_metric_at_fault() {
    let broken = Arc::new(AtomicBool::new(false));
    let target = service_target(broken.clone());
    let dir = TempDir::new("multivariate");
    let config = format!(
        r#"sources:
  - name: app
    kind: scrape
    interval: 100ms
    targets: [127.0.0.1:{}]
detectors:
  - name: app-shape
    kind: multivariate
    metrics:
      requests: app_requests_per_second
      latency: app_latency_seconds
      cpu: app_cpu_ratio
    step: 200ms
    pca: {{min_train: 40, reservoir: 200}}
"#,
        target.port
    );
    let mut m = Medic::start(&dir, &config, &[]);
    // 40 rows to learn, then 20 judged normal. Counted, not timed: on a
    // busy machine the rows come slower than one per 200 ms, and a model
    // still warming up when the correlation breaks would learn the break.
    wait_for(Duration::from_secs(60), "60 rows judged", || {
        (rows_judged(&m) >= 60).then_some(())
    });
    assert!(m.incidents().is_empty(), "no false alarm while normal");

    broken.store(true, Ordering::Relaxed);
    let d = m.wait_incident("app-shape", Duration::from_secs(20), |_| true);
    assert_eq!(d["incident"]["labels"]["job"], "app", "{d}");
    let opened = &d["timeline"][0]["data"];
    assert!(opened["score"].as_f64().unwrap() >= 0.9, "{opened}");
    assert_eq!(opened["model"], "pca", "{opened}");
    assert_eq!(opened["metrics"][0]["metric"], "cpu", "{opened}");
    let share = opened["metrics"][0]["contribution"].as_f64().unwrap();
    assert!(share > 0.5, "{opened}");
    // Each metric alone stays in its usual range: CPU's value is one it
    // had while normal (0.2 + 0.004 × 60..140, with noise).
    let cpu = opened["observed"].as_f64().unwrap();
    assert!((0.439..=0.761).contains(&cpu), "{opened}");
    let reason = opened["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("row score ") && reason.contains("): cpu="),
        "{reason}"
    );
    assert!(timeline_text(&d).contains("cpu="), "{}", timeline_text(&d));

    // A graceful restart saves the learnt model; the new process restores it.
    let _restarted = m.restart_restoring_models();
}

/// Rows the `app-shape` detector has judged (its evaluations).
fn rows_judged(m: &Medic) -> u64 {
    m.metrics()
        .lines()
        .find(|l| l.starts_with("medic_detector_evaluations_total{detector=\"app-shape\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}
