//! The runner with the runbook-test fakes in virtual time, for what a test
//! file cannot say: a restart of medic in the middle of a run.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::clock::{SharedClock, VirtualClock};
use crate::incidents::fingerprint;
use crate::runbooks::testing::fakes::{Fakes, TimelineChecks};
use crate::services::Supervisor;
use crate::stores::Detection;
use crate::stores::sqlite::SqliteStore;

const FLEET: &str = r#"name: fleet
match: {detectors: [down]}
guards:
  concurrency: {group: fleet, max_targets: 1}
steps:
  - name: restart it
    kind: restart
    service: "{{ labels.service }}"
    verify: {detector_cleared: true, within: 10m}
"#;

fn fire(store: &dyn Store, clock: &SharedClock, service: &str) -> Incident {
    let labels: crate::series::Labels = [("service".to_string(), service.to_string())].into();
    store
        .record_firing(&Detection {
            fingerprint: fingerprint("down", &labels),
            detector: "down".into(),
            labels,
            severity: "critical".into(),
            summary: format!("{service} is down"),
            at: clock.now_millis(),
            evidence: serde_json::Value::Null,
        })
        .unwrap()
        .0
}

#[tokio::test(start_paused = true)]
async fn a_resumed_run_takes_back_its_concurrency_slot_before_new_runs() {
    let clock: SharedClock = Arc::new(VirtualClock::starting_at(1_000_000));
    let store: Arc<dyn Store> = Arc::new(SqliteStore::memory().unwrap());
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    let deps = ExecutorDeps {
        supervisor: Supervisor::new("/nonexistent".into(), tx),
        http: reqwest::Client::new(),
        store: store.clone(),
    };
    let fakes = Fakes::new(Default::default(), deps.clone(), clock.clone());
    let rb: Arc<Runbook> =
        Arc::new(crate::config::parse_yaml(std::path::Path::new("fleet.yaml"), FLEET).unwrap());

    // Before medic stopped: web1's run restarted web1 and was verifying.
    let web1 = fire(store.as_ref(), &clock, "web1");
    let run = store
        .start_run(web1.id, "fleet", clock.now_millis())
        .unwrap();
    let key = format!("run-{}/steps[0]/attempt-1", run.id);
    store
        .journal_intend(&Action {
            idempotency_key: key.clone(),
            run_id: run.id,
            incident_id: web1.id,
            step: "steps[0]".into(),
            step_name: "restart it".into(),
            attempt: 1,
            executor: "restart".into(),
            runbook: "fleet".into(),
            target: "restart:web1".into(),
            params: serde_json::Value::Null,
            state: ActionState::Intended,
            intended_at: clock.now_millis(),
            finished_at: None,
            detail: None,
            fence: None,
            verified: None,
            verified_at: None,
        })
        .unwrap();
    store
        .journal_finish(
            &key,
            ActionState::Succeeded,
            clock.now_millis(),
            "restarted",
        )
        .unwrap();

    // medic starts again: a new runner, with empty pools, resumes the run.
    let runner = Runner::new(store.clone(), Arc::new(Metrics::new()), deps, false)
        .with_clock(clock.clone())
        .with_executors(fakes.builder())
        .with_checks(Arc::new(TimelineChecks::default()))
        .with_jitter(|| 0.5);
    runner.resume(run, Some(rb.clone()));
    // A new incident on another target of the group is held back: web1's
    // run still holds the group's one slot.
    let web2 = fire(store.as_ref(), &clock, "web2");
    runner.launch(&web2, rb.clone());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let j = store.journal_for_incident(web2.id).unwrap();
    assert_eq!(j[0].state, ActionState::Blocked, "{j:?}");
    assert!(
        j[0].detail
            .as_deref()
            .unwrap_or_default()
            .starts_with("guard concurrency: 1 of at most 1 targets in group \"fleet\""),
        "{j:?}"
    );
    // The resumed run verifies rather than restarting web1 again.
    assert!(fakes.calls().is_empty(), "{:?}", fakes.calls());

    // web1 recovers: its run ends and frees the slot for the next one.
    store
        .record_resolved(
            &web1.fingerprint,
            clock.now_millis(),
            "ok",
            serde_json::Value::Null,
        )
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let web3 = fire(store.as_ref(), &clock, "web3");
    runner.launch(&web3, rb);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let j = store.journal_for_incident(web3.id).unwrap();
    assert_eq!(j[0].state, ActionState::Succeeded, "{j:?}");
    assert_eq!(fakes.calls()[0].target, "restart:web3");
}
