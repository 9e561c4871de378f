//! The store contract on a real etcd, and what only etcd has: several
//! clients on one prefix (several medic nodes), a dead etcd, calls from
//! inside tokio tasks, and the key layout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::test_server::{self, Etcd};
use super::*;
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
                        Ok(()) => claimed += 1,
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
    let s = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match EtcdStore::open(&c, Path::new(".")) {
                Ok(s) => break s,
                Err(e) => {
                    assert!(Instant::now() < deadline, "{e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    };
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
        .kv(move |mut kv| async move { kv.put(key, "99", None).await })
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
