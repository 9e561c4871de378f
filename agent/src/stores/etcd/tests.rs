//! The store contract on a real etcd, and what only etcd has: several
//! clients on one prefix (several medic nodes), a dead etcd, calls from
//! inside tokio tasks, and the key layout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::test_server::{self, Etcd};
use super::*;
use crate::stores::OncallStore;
use crate::stores::contract::{Backend, action, detection, store_contract};

/// etcd for the shared store contract: each fresh store under its own prefix.
struct EtcdBackend;

fn named(name: &str) -> String {
    format!("/medic-test/named/{name}/")
}

impl Backend for EtcdBackend {
    fn fresh(&self) -> Box<dyn Store> {
        Box::new(test_server::store("contract"))
    }
    fn open(&self, name: &str) -> Box<dyn Store> {
        Box::new(test_server::open(&named(name)))
    }
    fn remove(&self, name: &str) {
        test_server::open(&named(name)).delete_all().unwrap();
    }
}

store_contract!(EtcdBackend);

/// Raw keys under the store's prefix, without it.
fn raw_keys(s: &EtcdStore) -> Vec<String> {
    let p = s.keys().prefix().to_string();
    s.scan(&p)
        .unwrap()
        .into_iter()
        .map(|(k, _)| String::from_utf8_lossy(&k)[p.len()..].to_string())
        .collect()
}

#[test]
fn keys_are_laid_out_as_documented() {
    let s = test_server::store("layout");
    let (i, _) = s.record_firing(&detection("fp/1", 1)).unwrap();
    let run = s.start_run(i.id, "rb", 2).unwrap();
    s.journal_intend(&action(run.id, i.id, 1, "restart:web", 3))
        .unwrap();
    let n = |x: i64| keys::num(x);
    let keys = raw_keys(&s);
    for want in [
        "meta/layout".to_string(),
        "ids/incident".into(),
        format!("incidents/{}", n(i.id)),
        "open/fp%2F1".into(),
        format!("timeline/{}/{}", n(i.id), n(1)),
        format!("runs/{}", n(run.id)),
        format!("running/{}", n(run.id)),
        format!("journal/{}", n(1)),
        "journal-keys/run-1%2Fsteps[0]%2Fattempt-1".into(),
        format!("journal-on-target/restart:web/{}/{}", n(3), n(1)),
    ] {
        assert!(keys.contains(&want), "no {want} in {keys:#?}");
    }
    s.record_resolved("fp/1", 4, "ok", serde_json::Value::Null)
        .unwrap();
    assert!(!raw_keys(&s).iter().any(|k| k.starts_with("open/")));
}

#[test]
fn several_nodes_open_one_incident_per_fingerprint_and_claim_a_key_once() {
    let prefix = "/medic-test/nodes/";
    test_server::open(prefix).delete_all().unwrap();
    let nodes: Vec<Arc<EtcdStore>> = (0..3)
        .map(|_| Arc::new(test_server::open(prefix)))
        .collect();
    let mut threads = Vec::new();
    for (n, s) in nodes.iter().enumerate() {
        for t in 0..2 {
            let s = s.clone();
            threads.push(std::thread::spawn(move || {
                let mut opened = 0;
                let mut claimed = 0;
                for k in 0..10 {
                    let at = (n * 100 + t * 10 + k) as i64;
                    let (i, new) = s.record_firing(&detection("same", at)).unwrap();
                    opened += usize::from(new);
                    let mut a = action(1, i.id, 1, "restart:web", at);
                    a.idempotency_key = format!("claim-{k}");
                    match s.journal_intend(&a) {
                        Ok(_) => claimed += 1,
                        Err(StoreError::Conflict(_)) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
                (opened, claimed)
            }));
        }
    }
    let (opened, claimed) = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert_eq!(opened, 1, "one open incident per fingerprint");
    assert_eq!(
        claimed, 10,
        "each idempotency key claimed by exactly one writer"
    );
    let s = &nodes[0];
    let all = s.incidents(&IncidentFilter::default()).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].occurrences, 60);
    let tl = s.timeline(all[0].id).unwrap();
    assert_eq!(tl.len(), 60);
    let mut ids: Vec<i64> = tl.iter().map(|e| e.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), 60, "timeline ids are unique");
    assert_eq!(s.journal_for_incident(all[0].id).unwrap().len(), 10);
}

#[test]
fn an_unreachable_etcd_fails_the_call_within_the_timeout() {
    let etcd = Etcd::start();
    let mut c = EtcdConfig::new(vec![etcd.url.clone()], "/medic-test/dead/");
    c.timeout = ConfigDuration::from_millis(500);
    let s = test_server::open_config(&c, Path::new("."));
    s.record_firing(&detection("fp", 1)).unwrap();
    drop(etcd);
    let t = Instant::now();
    let err = s.record_firing(&detection("fp", 2)).unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err}");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    assert!(s.incidents(&IncidentFilter::default()).is_err());
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    // Nobody there at all: opening fails too, as promptly.
    let t = Instant::now();
    assert!(EtcdStore::open(&c, Path::new(".")).is_err());
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
}

#[tokio::test(flavor = "current_thread")]
async fn calls_from_a_current_thread_runtime_neither_panic_nor_deadlock() {
    let s = test_server::store("tokio-ct");
    let (i, _) = s.record_firing(&detection("fp", 1)).unwrap();
    assert_eq!(s.incident(i.id).unwrap().unwrap().id, i.id);
    // And dropping the store inside async code is fine.
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_from_tokio_tasks_work() {
    let s = Arc::new(test_server::store("tokio-mt"));
    let tasks: Vec<_> = (0..4)
        .map(|n| {
            let s = s.clone();
            tokio::spawn(async move { s.record_firing(&detection(&format!("fp{n}"), 1)).unwrap() })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().1);
    }
    assert_eq!(s.incidents(&IncidentFilter::default()).unwrap().len(), 4);
}

#[test]
fn another_layout_version_is_refused() {
    let s = test_server::store("layout-version");
    let key = s.keys().layout();
    s.bridge()
        .kv(move |mut kv| {
            let key = key.clone();
            async move { kv.put(key, "99", None).await }
        })
        .unwrap();
    let err = match EtcdStore::open(
        &EtcdConfig::new(vec![test_server::endpoint().into()], s.keys().prefix()),
        Path::new("."),
    ) {
        Ok(_) => panic!("opened a store of layout 99"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("layout"), "{err}");
}

/// A store with an election on a shared prefix: `ttl` 2s, `renew` 200ms.
fn elector(prefix: &str, node: &str) -> EtcdStore {
    let mut c = EtcdConfig::new(vec![test_server::endpoint().into()], prefix);
    c.election = Some(election::ElectionConfig {
        node: Some(node.into()),
        ttl: ConfigDuration::from_secs(2),
        renew: ConfigDuration::from_millis(200),
    });
    EtcdStore::open(&c, Path::new(".")).unwrap()
}

/// Another term begins behind `s`'s back: the leader key is deleted and
/// written again by someone else.
fn usurp_leadership(s: &EtcdStore) {
    let key = s.keys().leader();
    s.bridge()
        .kv(move |mut kv| {
            let key = key.clone();
            async move {
                kv.delete(key.clone(), None).await?;
                kv.put(key, "usurper", None).await
            }
        })
        .unwrap();
}

fn wait_leader<'a>(nodes: &[&'a EtcdStore], within: Duration) -> &'a EtcdStore {
    let deadline = Instant::now() + within;
    loop {
        let leaders: Vec<&EtcdStore> = nodes
            .iter()
            .copied()
            .filter(|n| n.leading() == Some(true))
            .collect();
        assert!(leaders.len() <= 1, "two leaders at once");
        if let [one] = leaders[..] {
            return one;
        }
        assert!(Instant::now() < deadline, "no leader within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn only_the_leader_acts_and_its_token_is_journalled() {
    let prefix = "/medic-test/election/";
    test_server::open(prefix).delete_all().unwrap();
    let a = elector(prefix, "a");
    let b = elector(prefix, "b");
    let first = wait_leader(&[&a, &b], Duration::from_secs(10))
        .leadership()
        .unwrap()
        .node()
        .to_string();
    let (leader, follower) = if first == "a" { (a, b) } else { (b, a) };
    assert_eq!(follower.leading(), Some(false));
    let token = leader.leadership().unwrap().term().unwrap().token;

    // Every node records what it sees; only the leader runs and acts.
    let (i, _) = follower.record_firing(&detection("fp", 1)).unwrap();
    let not_leader =
        |r: StoreResult<_>| matches!(r, Err(StoreError::Fenced(m)) if m.contains("not the leader"));
    assert!(not_leader(follower.start_run(i.id, "rb", 2).map(|_| ())));
    let run = leader.start_run(i.id, "rb", 2).unwrap();
    let a1 = action(run.id, i.id, 1, "restart:web", 3);
    assert!(not_leader(follower.journal_intend(&a1).map(|_| ())));
    assert!(not_leader(
        follower
            .transition(i.id, IncidentState::Recovering, 3, "x", "y")
            .map(|_| ())
    ));
    assert!(not_leader(follower.finish_run(
        run.id,
        RunState::Failed,
        3,
        "x"
    )));
    leader.journal_intend(&a1).unwrap();
    let got = follower.journal_get(&a1.idempotency_key).unwrap().unwrap();
    assert_eq!(got.fence, Some(token), "the token is in the journal entry");
    // The follower has no work queue; the leader has.
    assert!(follower.running_runs().unwrap().is_empty());
    assert_eq!(leader.running_runs().unwrap().len(), 1);
    assert!(follower.unrouted_incidents().unwrap().is_empty());
    assert_eq!(leader.unrouted_incidents().unwrap().len(), 1);
    let esc = crate::stores::oncall::Escalation {
        incident_id: i.id,
        ..Default::default()
    };
    let seen = crate::stores::oncall::Seen::of(&leader.incident(i.id).unwrap().unwrap());
    assert!(
        !follower
            .save_escalation(&esc, seen, &[], &[], None, 4)
            .unwrap()
    );
    assert!(
        leader
            .save_escalation(&esc, seen, &[], &[], None, 4)
            .unwrap()
    );

    // The leader dies (no revoke: its lease runs out); the other takes over
    // within the TTL, under a larger token.
    let alive = follower.leadership().unwrap().node().to_string();
    let (survivor, t0) = (&follower, Instant::now());
    drop(leader);
    let next = wait_leader(&[survivor], Duration::from_secs(6));
    assert_eq!(next.leadership().unwrap().node(), alive);
    let took = t0.elapsed();
    assert!(
        took <= Duration::from_millis(2000 + 2 * 200 + 1000),
        "took {took:?}"
    );
    let newer = next.leadership().unwrap().term().unwrap().token;
    assert!(newer > token);
    let a2 = action(run.id, i.id, 2, "restart:web", 5);
    next.journal_intend(&a2).unwrap();
    assert_eq!(
        next.journal_get(&a2.idempotency_key)
            .unwrap()
            .unwrap()
            .fence,
        Some(newer)
    );
}

#[test]
fn a_leader_whose_key_moved_on_cannot_commit_an_action() {
    let prefix = "/medic-test/election-stale/";
    test_server::open(prefix).delete_all().unwrap();
    let s = elector(prefix, "solo");
    wait_leader(&[&s], Duration::from_secs(10));
    let (i, _) = s.record_firing(&detection("fp", 1)).unwrap();
    let run = s.start_run(i.id, "rb", 2).unwrap();
    // Someone else's term begins behind this node's back: its local view is
    // still valid, but the compare on the leader key refuses the write.
    usurp_leadership(&s);
    let err = s
        .journal_intend(&action(run.id, i.id, 1, "restart:web", 3))
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Fenced(m) if m.contains("no longer held"))
            || err.to_string().contains("not the leader"),
        "{err}"
    );
    assert!(
        s.journal_for_run(run.id).unwrap().is_empty(),
        "nothing journalled"
    );
    // The campaign notices within a renewal and steps down.
    let deadline = Instant::now() + Duration::from_secs(3);
    while s.leading() != Some(false) {
        assert!(Instant::now() < deadline, "still believes it leads");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn mutual_tls_to_etcd_works_and_a_client_without_a_certificate_is_refused() {
    let certs = std::env::temp_dir().join(format!("medic-test-etcd-certs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&certs);
    test_server::make_certs(&certs);
    let etcd = Etcd::start_tls(&certs);
    assert!(etcd.url.starts_with("https://"));
    let mut c = EtcdConfig::new(vec![etcd.url.clone()], "/medic-test/tls/");
    c.tls = Some(EtcdTls {
        ca: Some("ca.pem".into()),
        cert: Some("client.pem".into()),
        key: Some("client.key".into()),
    });
    let s = test_server::open_config(&c, &certs);
    let (i, new) = s.record_firing(&detection("fp", 1)).unwrap();
    assert!(new);
    assert_eq!(s.incident(i.id).unwrap().unwrap().id, i.id);
    // Without a client certificate the server refuses.
    c.tls.as_mut().unwrap().cert = None;
    c.tls.as_mut().unwrap().key = None;
    c.timeout = ConfigDuration::from_millis(1000);
    assert!(EtcdStore::open(&c, &certs).is_err());
    drop(etcd);
    let _ = std::fs::remove_dir_all(&certs);
}

/// Rule 5 of the runner: a leader deposed in the middle of a run (here its
/// key is taken from it while a step backs off between attempts) stops the
/// run quietly — no further attempt, no "not run" notes, the run left
/// `running` — and the next leader resumes it without repeating what was
/// done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_leader_stops_its_run_quietly_and_the_next_leader_finishes_it() {
    use crate::executors::ExecutorDeps;
    use crate::runbooks::runner::Runner;
    use crate::runbooks::testing::fakes::{Fakes, TimelineChecks};
    use crate::runbooks::testing::file::Answer;

    let prefix = "/medic-test/runner-deposed/";
    test_server::open(prefix).delete_all().unwrap();
    let a: Arc<EtcdStore> = Arc::new(elector(prefix, "a"));
    let first = wait_leader(&[&a], Duration::from_secs(10));
    let token = first.leadership().unwrap().term().unwrap().token;
    let store: Arc<dyn Store> = a.clone();
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    let deps = ExecutorDeps {
        supervisor: crate::services::Supervisor::new("/nonexistent".into(), tx),
        http: reqwest::Client::new(),
        store: store.clone(),
    };
    let answers = [(
        "first".to_string(),
        vec![Answer::Fail("boom".into()), Answer::Ok],
    )]
    .into();
    let fakes = Fakes::new(answers, deps.clone(), crate::clock::system());
    let runner = |s: Arc<dyn Store>| {
        Runner::new(
            s,
            Arc::new(crate::telemetry::Metrics::new()),
            deps.clone(),
            false,
        )
        .with_executors(fakes.builder())
        .with_checks(Arc::new(TimelineChecks::default()))
    };
    let rb: Arc<crate::runbooks::Runbook> = Arc::new(
        crate::config::parse_yaml(
            Path::new("two.yaml"),
            "name: two\nmatch: {}\nsteps:\n  - name: first\n    kind: restart\n    service: web\n    timeout: 1s\n    retry: {max_attempts: 2, backoff: 1500ms, max_backoff: 1500ms}\n  - name: second\n    kind: restart\n    service: db\n    timeout: 1s\n",
        )
        .unwrap(),
    );
    let (i, _) = store.record_firing(&detection("fp-deposed", 1)).unwrap();
    runner(store.clone()).launch(&i, rb.clone());
    let journal = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let j = store.journal_for_incident(i.id).unwrap();
            if j.len() >= n && j.iter().all(|a| a.state != ActionState::Intended) {
                return j;
            }
            assert!(Instant::now() < deadline, "journal: {j:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let j = journal(1);
    assert_eq!(j[0].state, ActionState::Failed, "{j:?}");

    // While the step backs off, another term begins (the key is taken).
    usurp_leadership(&a);
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.leading() != Some(false) {
        assert!(Instant::now() < deadline, "still leads");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Well past the back-off: nothing more was attempted or written.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(store.journal_for_incident(i.id).unwrap().len(), 1);
    assert_eq!(fakes.calls().len(), 1, "{:?}", fakes.calls());
    let runs = store.runs_for(i.id).unwrap();
    assert_eq!(runs[0].state, RunState::Running, "left for the next leader");
    let notes: Vec<String> = store
        .timeline(i.id)
        .unwrap()
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert_eq!(
        notes,
        [
            "firing: down",
            "runbook two started (run 1)",
            "running restart step \"first\" on restart:web (attempt 1/2)",
            "restart step \"first\" attempt 1 failed: boom",
        ],
        "nothing after the deposition"
    );

    // The usurper goes; a leader (here `a` again, under a new token)
    // resumes the run: attempt 2 of the first step, then the second.
    let key = a.keys().leader();
    a.bridge()
        .kv(move |mut kv| {
            let key = key.clone();
            async move { kv.delete(key, None).await }
        })
        .unwrap();
    let next = wait_leader(&[&a], Duration::from_secs(10));
    let newer = next.leadership().unwrap().term().unwrap().token;
    assert!(newer > token);
    let run = store.running_runs().unwrap().remove(0);
    runner(store.clone()).resume(run, Some(rb));
    let j = journal(3);
    let done: Vec<(&str, u32, Option<i64>)> = j
        .iter()
        .map(|a| (a.step_name.as_str(), a.attempt, a.fence))
        .collect();
    assert_eq!(
        done,
        [
            ("first", 1, Some(token)),
            ("first", 2, Some(newer)),
            ("second", 1, Some(newer))
        ]
    );
    assert_eq!(fakes.calls().len(), 3);
}
