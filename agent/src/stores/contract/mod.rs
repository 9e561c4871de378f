//! The store contract: one suite every [`Store`] passes, run against each
//! backend by [`store_contract!`] (SQLite in `sqlite/tests.rs`, etcd on a
//! real etcd in `etcd/tests.rs`).

pub mod oncall;

use crate::incidents::IncidentState;
use crate::series::{Labels, Millis};
use crate::stores::{
    Action, ActionFilter, ActionState, Detection, IncidentFilter, RunState, Store, StoreError,
};

/// How a backend makes stores for the suite.
pub trait Backend {
    /// A store with no state.
    fn fresh(&self) -> Box<dyn Store>;
    /// A store on state named `name` that outlives it: opening the same
    /// name again sees it, as medic does after a restart.
    fn open(&self, name: &str) -> Box<dyn Store>;
    /// Delete the state `open(name)` made.
    fn remove(&self, name: &str);
}

/// `#[test]`s running every case of the suite against `$backend`.
macro_rules! store_contract {
    ($backend:expr) => {
        $crate::stores::contract::store_contract!(@cases $backend;
            repeats_update_the_open_incident_and_resolve_rearms,
            ack_is_recorded_and_refused_when_resolved,
            transitions_are_recorded_and_resolved_is_final,
            incidents_list_newest_first_and_count_by_state,
            journal_key_is_unique_and_survives_reopen,
            journal_records_outcome_and_verification,
            recent_actions_filter_by_target_runbook_and_time_and_keep_verification,
            runs_start_finish_and_resume,
            model_states_are_kept_per_configuration,
            oncall::escalations_route_once_and_outbox_keys_are_unique,
            oncall::a_plan_made_before_an_ack_is_refused,
            oncall::an_expired_ack_is_withdrawn_only_if_unchanged,
            oncall::deliveries_retry_then_finish_with_timeline_notes,
            oncall::silences_list_and_expire,
            oncall::done_escalations_leave_the_active_list_and_due_is_ordered,
        );
    };
    (@cases $backend:expr; $($($case:ident)::+),* $(,)?) => {
        mod contract {
            #[allow(unused_imports)]
            use super::*;
            $(
                $crate::stores::contract::store_contract!(@one $backend; $($case)::+);
            )*
        }
    };
    (@one $backend:expr; $case:ident) => {
        #[test]
        fn $case() {
            $crate::stores::contract::$case(&$backend);
        }
    };
    (@one $backend:expr; $m:ident :: $case:ident) => {
        #[test]
        fn $case() {
            $crate::stores::contract::$m::$case(&$backend);
        }
    };
}
pub(crate) use store_contract;

/// A detection of `fp` at `at`.
pub fn detection(fp: &str, at: Millis) -> Detection {
    Detection {
        fingerprint: fp.into(),
        detector: "d".into(),
        labels: Labels::from([("service".to_string(), "web".to_string())]),
        severity: "critical".into(),
        summary: "down".into(),
        at,
        evidence: serde_json::json!({"observed": 0}),
    }
}

/// A first attempt at `steps[0]` on `target`.
pub fn action(run: i64, incident: i64, attempt: u32, target: &str, at: Millis) -> Action {
    Action {
        idempotency_key: format!("run-{run}/steps[0]/attempt-{attempt}"),
        run_id: run,
        incident_id: incident,
        step: "steps[0]".into(),
        step_name: "restart".into(),
        attempt,
        executor: "restart".into(),
        runbook: "rb".into(),
        target: target.into(),
        params: serde_json::json!({"service": "web"}),
        state: ActionState::Intended,
        intended_at: at,
        finished_at: None,
        detail: None,
        verified: None,
        verified_at: None,
        fence: None,
    }
}

pub fn repeats_update_the_open_incident_and_resolve_rearms(b: &dyn Backend) {
    let s = b.fresh();
    let (a, new) = s.record_firing(&detection("fp", 1)).unwrap();
    assert!(new);
    let (b2, new) = s.record_firing(&detection("fp", 2)).unwrap();
    assert!(!new);
    assert_eq!(a.id, b2.id);
    assert_eq!(b2.occurrences, 2);
    assert_eq!(s.incident(a.id).unwrap().unwrap(), b2);
    let r = s
        .record_resolved("fp", 3, "cleared", serde_json::Value::Null)
        .unwrap()
        .unwrap();
    assert_eq!(r.state, IncidentState::Resolved);
    assert_eq!(r.resolved_at, Some(3));
    assert!(
        s.record_resolved("fp", 4, "again", serde_json::Value::Null)
            .unwrap()
            .is_none()
    );
    let (c, new) = s.record_firing(&detection("fp", 4)).unwrap();
    assert!(new, "a recurrence after resolve is a new incident");
    assert_ne!(c.id, a.id);
    let tl = s.timeline(a.id).unwrap();
    let kinds: Vec<&str> = tl.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, vec!["opened", "evidence", "transition"]);
    assert_eq!(tl[0].message, "firing: down");
    assert_eq!(tl[0].actor, "detector:d");
    assert_eq!(tl[0].data, serde_json::json!({"observed": 0}));
    assert_eq!(tl[2].message, "firing → resolved: cleared");
    assert!(tl.windows(2).all(|w| w[0].id < w[1].id));
}

pub fn ack_is_recorded_and_refused_when_resolved(b: &dyn Backend) {
    let s = b.fresh();
    let (a, _) = s.record_firing(&detection("fp", 1)).unwrap();
    let i = s.acknowledge(a.id, "alice", "on it", 2).unwrap();
    assert_eq!(i.state, IncidentState::Acknowledged);
    assert_eq!(i.acked_by.as_deref(), Some("alice"));
    assert_eq!(i.acked_at, Some(2));
    let last = s.timeline(a.id).unwrap().pop().unwrap();
    assert_eq!(
        (
            last.kind.as_str(),
            last.actor.as_str(),
            last.message.as_str()
        ),
        ("ack", "user:alice", "acknowledged by alice: on it")
    );
    s.record_resolved("fp", 3, "cleared", serde_json::Value::Null)
        .unwrap();
    assert!(matches!(
        s.acknowledge(a.id, "bob", "", 4),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.acknowledge(999, "bob", "", 4),
        Err(StoreError::NotFound(_))
    ));
}

pub fn transitions_are_recorded_and_resolved_is_final(b: &dyn Backend) {
    let s = b.fresh();
    let (a, _) = s.record_firing(&detection("fp", 1)).unwrap();
    let r = s
        .transition(
            a.id,
            IncidentState::Recovering,
            2,
            "runbook:rb",
            "restarted",
        )
        .unwrap();
    assert_eq!((r.state, r.updated_at), (IncidentState::Recovering, 2));
    // Acknowledging a recovering incident records who holds it, state kept.
    let r = s.acknowledge(a.id, "ann", "", 3).unwrap();
    assert_eq!(r.state, IncidentState::Recovering);
    let same = s
        .transition(a.id, IncidentState::Recovering, 4, "x", "again")
        .unwrap();
    assert_eq!(same.updated_at, 3, "no change, nothing written");
    let done = s
        .transition(a.id, IncidentState::Resolved, 5, "runbook:rb", "verified")
        .unwrap();
    assert_eq!(done.resolved_at, Some(5));
    assert!(matches!(
        s.transition(a.id, IncidentState::Firing, 6, "x", "y"),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.transition(77, IncidentState::Firing, 6, "x", "y"),
        Err(StoreError::NotFound(_))
    ));
    // Resolving by transition frees the fingerprint too.
    let (n, new) = s.record_firing(&detection("fp", 7)).unwrap();
    assert!(new && n.id != a.id);
    let msgs: Vec<String> = s
        .timeline(a.id)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "transition")
        .map(|e| format!("{} {}", e.actor, e.message))
        .collect();
    assert_eq!(
        msgs,
        vec![
            "runbook:rb firing → recovering: restarted",
            "runbook:rb recovering → resolved: verified"
        ]
    );
    s.append_event(
        n.id,
        8,
        "note",
        "user:ann",
        "looking",
        serde_json::json!([1]),
    )
    .unwrap();
    let last = s.timeline(n.id).unwrap().pop().unwrap();
    assert_eq!((last.kind.as_str(), last.at), ("note", 8));
    assert_eq!(last.data, serde_json::json!([1]));
}

pub fn incidents_list_newest_first_and_count_by_state(b: &dyn Backend) {
    let s = b.fresh();
    let ids: Vec<i64> = (0..5)
        .map(|n| {
            s.record_firing(&detection(&format!("fp{n}"), n))
                .unwrap()
                .0
                .id
        })
        .collect();
    s.record_resolved("fp1", 10, "ok", serde_json::Value::Null)
        .unwrap();
    s.record_resolved("fp3", 10, "ok", serde_json::Value::Null)
        .unwrap();
    s.acknowledge(ids[4], "ann", "", 11).unwrap();
    let list = |open_only, limit| {
        s.incidents(&IncidentFilter { open_only, limit })
            .unwrap()
            .iter()
            .map(|i| i.id)
            .collect::<Vec<_>>()
    };
    let mut newest = ids.clone();
    newest.reverse();
    assert_eq!(list(false, None), newest);
    assert_eq!(list(false, Some(2)), newest[..2].to_vec());
    assert_eq!(list(true, None), vec![ids[4], ids[2], ids[0]]);
    assert_eq!(list(true, Some(1)), vec![ids[4]]);
    let mut counts = s.count_by_state().unwrap();
    counts.sort_by_key(|(st, _)| st.as_str());
    assert_eq!(
        counts,
        vec![
            (IncidentState::Acknowledged, 1),
            (IncidentState::Firing, 2),
            (IncidentState::Resolved, 2)
        ]
    );
    assert!(s.incident(9999).unwrap().is_none());
}

pub fn journal_key_is_unique_and_survives_reopen(b: &dyn Backend) {
    let name = "journal-reopen";
    b.remove(name);
    {
        let s = b.open(name);
        let (i, _) = s.record_firing(&detection("fp", 1)).unwrap();
        let run = s.start_run(i.id, "rb", 2).unwrap();
        let a = action(run.id, i.id, 1, "restart:web", 3);
        s.journal_intend(&a).unwrap();
        assert!(matches!(s.journal_intend(&a), Err(StoreError::Conflict(_))));
        // Dropped here without finishing: as if medic died mid-action.
    }
    let s = b.open(name);
    let runs = s.running_runs().unwrap();
    assert_eq!(runs.len(), 1);
    let j = s.journal_for_run(runs[0].id).unwrap();
    assert_eq!(j.len(), 1);
    assert_eq!(j[0].state, ActionState::Intended);
    assert!(matches!(
        s.journal_intend(&j[0]),
        Err(StoreError::Conflict(_))
    ));
    drop(s);
    b.remove(name);
}

pub fn journal_records_outcome_and_verification(b: &dyn Backend) {
    let s = b.fresh();
    let (i, _) = s.record_firing(&detection("fp", 1)).unwrap();
    let run = s.start_run(i.id, "rb", 2).unwrap();
    let first = action(run.id, i.id, 1, "restart:web", 3);
    let second = action(run.id, i.id, 2, "restart:web", 4);
    s.journal_intend(&first).unwrap();
    s.journal_intend(&second).unwrap();
    s.journal_finish(&first.idempotency_key, ActionState::Failed, 5, "exit 1")
        .unwrap();
    s.journal_finish(&second.idempotency_key, ActionState::Succeeded, 6, "ok")
        .unwrap();
    s.journal_verified(&second.idempotency_key, true, 7)
        .unwrap();
    // Unknown keys change nothing.
    s.journal_finish("nope", ActionState::Failed, 8, "")
        .unwrap();
    s.journal_verified("nope", false, 8).unwrap();
    assert!(s.journal_get("nope").unwrap().is_none());
    let got = s.journal_get(&second.idempotency_key).unwrap().unwrap();
    let mut want = second.clone();
    want.state = ActionState::Succeeded;
    want.finished_at = Some(6);
    want.detail = Some("ok".into());
    want.verified = Some(true);
    want.verified_at = Some(7);
    assert_eq!(got, want);
    let all = s.journal_for_incident(i.id).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].state, ActionState::Failed);
    assert_eq!(all[1], want);
    assert_eq!(s.journal_for_run(run.id).unwrap(), all);
    assert!(s.journal_for_run(run.id + 100).unwrap().is_empty());
}

pub fn recent_actions_filter_by_target_runbook_and_time_and_keep_verification(b: &dyn Backend) {
    let s = b.fresh();
    let (i, _) = s.record_firing(&detection("fp", 1)).unwrap();
    let run = s.start_run(i.id, "rb", 2).unwrap();
    for (n, (target, at)) in [
        ("restart:web", 10),
        ("restart:db", 20),
        ("restart:web", 30),
        ("restart:web", 40),
    ]
    .into_iter()
    .enumerate()
    {
        s.journal_intend(&action(run.id, i.id, n as u32 + 1, target, at))
            .unwrap();
    }
    s.journal_verified(&format!("run-{}/steps[0]/attempt-3", run.id), true, 35)
        .unwrap();
    let read = |target: Option<&str>, runbook: Option<&str>, since, limit| {
        s.recent_actions(&ActionFilter {
            target: target.map(str::to_string),
            runbook: runbook.map(str::to_string),
            since,
            limit,
        })
        .unwrap()
        .iter()
        .map(|a| a.intended_at)
        .collect::<Vec<_>>()
    };
    let web = |since, limit| read(Some("restart:web"), None, since, limit);
    assert_eq!(web(0, 10), vec![10, 30, 40]);
    assert_eq!(web(20, 10), vec![30, 40]);
    assert_eq!(web(0, 2), vec![30, 40], "the newest, oldest first");
    assert_eq!(web(0, 0), Vec::<Millis>::new());
    assert_eq!(read(None, None, 0, 3), vec![20, 30, 40]);
    assert_eq!(read(None, None, 25, 10), vec![30, 40]);
    assert_eq!(read(Some("restart:web"), Some("rb"), 0, 2), vec![30, 40]);
    assert_eq!(
        read(Some("restart:web"), Some("other"), 0, 2),
        Vec::<Millis>::new()
    );
    assert_eq!(read(Some("restart:none"), None, 0, 2), Vec::<Millis>::new());
    let all = s
        .recent_actions(&ActionFilter {
            runbook: Some("rb".into()),
            limit: 10,
            ..ActionFilter::default()
        })
        .unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(
        (all[2].verified, all[2].verified_at),
        (Some(true), Some(35))
    );
    assert_eq!(all[1].target, "restart:db");
}

pub fn runs_start_finish_and_resume(b: &dyn Backend) {
    let s = b.fresh();
    let (i, _) = s.record_firing(&detection("fp", 1)).unwrap();
    let (j, _) = s.record_firing(&detection("other", 1)).unwrap();
    let r1 = s.start_run(i.id, "rb", 2).unwrap();
    let r2 = s.start_run(i.id, "rb2", 3).unwrap();
    let r3 = s.start_run(j.id, "rb", 4).unwrap();
    assert_eq!((r1.state, r1.started_at), (RunState::Running, 2));
    assert!(r1.id < r2.id && r2.id < r3.id);
    s.finish_run(r1.id, RunState::Recovered, 5, "verified")
        .unwrap();
    s.finish_run(999, RunState::Failed, 5, "no such run")
        .unwrap();
    let running: Vec<i64> = s.running_runs().unwrap().iter().map(|r| r.id).collect();
    assert_eq!(running, vec![r2.id, r3.id]);
    let of_i = s.runs_for(i.id).unwrap();
    assert_eq!(of_i.len(), 2);
    assert_eq!(of_i[0].state, RunState::Recovered);
    assert_eq!(of_i[0].finished_at, Some(5));
    assert_eq!(of_i[0].detail.as_deref(), Some("verified"));
    assert_eq!(of_i[1], r2);
}

pub fn model_states_are_kept_per_configuration(b: &dyn Backend) {
    let s = b.fresh();
    let l = |v: &str| Labels::from([("instance".to_string(), v.to_string())]);
    let many: Vec<(Labels, String)> = (0..300)
        .map(|n| (l(&format!("/i{n}")), format!("state {n}")))
        .collect();
    s.save_model_states("anomaly", "c1", &many, 1).unwrap();
    s.save_model_states("other", "c1", &[(l("x"), "kept".into())], 1)
        .unwrap();
    let mut got = s.load_model_states("anomaly", "c1").unwrap();
    got.sort();
    let mut want = many.clone();
    want.sort();
    assert_eq!(got, want);
    // The same configuration: upserted, others kept.
    s.save_model_states("anomaly", "c1", &[(l("/i0"), "newer".into())], 2)
        .unwrap();
    let got = s.load_model_states("anomaly", "c1").unwrap();
    assert_eq!(got.len(), 300);
    assert!(got.contains(&(l("/i0"), "newer".into())));
    // Another configuration drops every state of the old one.
    s.save_model_states("anomaly", "c2", &[(l("/i1"), "fresh".into())], 3)
        .unwrap();
    assert!(s.load_model_states("anomaly", "c1").unwrap().is_empty());
    assert_eq!(
        s.load_model_states("anomaly", "c2").unwrap(),
        vec![(l("/i1"), "fresh".into())]
    );
    assert_eq!(s.load_model_states("other", "c1").unwrap().len(), 1);
}
