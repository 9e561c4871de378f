//! High availability on a real three-member etcd 3.4 cluster: three medic
//! nodes with leader election. A test target records every action with the
//! fencing token it came with (`X-Medic-Fence`), so the tests can show each
//! action ran exactly once and never under a stale token — through a kill -9
//! of the leader mid-runbook, the loss of one etcd member, the loss of
//! quorum (degraded mode: no actions, notifications from the nodes' spools,
//! the status says so) and its return. And two nodes given one name: the
//! lease, not the name, decides who acts.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use medic_e2e::components::{self, Etcd, EtcdCluster};
use medic_e2e::*;
use serde_json::{Value, json};

const LONG: Duration = Duration::from_secs(90);

/// The scrape target: `bad{case="…"} 0|1` for each case the test sets.
struct Cases {
    values: Arc<Mutex<BTreeMap<String, u8>>>,
    server: TestServer,
}

impl Cases {
    fn start() -> Cases {
        let values: Arc<Mutex<BTreeMap<String, u8>>> = Arc::default();
        let v = values.clone();
        let server = TestServer::start(move |_| {
            let text: String = v
                .lock()
                .unwrap()
                .iter()
                .map(|(c, x)| format!("bad{{case=\"{c}\"}} {x}\n"))
                .collect();
            (200, format!("bad{{case=\"none\"}} 0\n{text}"))
        });
        Cases { values, server }
    }

    fn set(&self, case: &str, bad: u8) {
        self.values.lock().unwrap().insert(case.into(), bad);
    }
}

/// One action as the target received it.
#[derive(Debug, Clone, PartialEq)]
struct Act {
    case: String,
    step: String,
    fence: i64,
    key: String,
}

fn acts(target: &TestServer) -> Vec<Act> {
    target
        .requests()
        .iter()
        .filter(|r| r.path == "/act")
        .map(|r| {
            let b: Value = serde_json::from_str(&r.body).expect("action body");
            Act {
                case: b["case"].as_str().unwrap_or_default().into(),
                step: b["step"].as_str().unwrap_or_default().into(),
                fence: r
                    .header("x-medic-fence")
                    .and_then(|f| f.parse().ok())
                    .expect("every action carries X-Medic-Fence"),
                key: r.header("idempotency-key").unwrap_or_default().into(),
            }
        })
        .collect()
}

fn acts_of(target: &TestServer, case: &str) -> Vec<Act> {
    acts(target)
        .into_iter()
        .filter(|a| a.case == case)
        .collect()
}

/// In arrival order, no action came with a token older than one already
/// seen, and no (case, step) ran twice.
fn assert_exactly_once_never_stale(target: &TestServer) {
    let all = acts(target);
    let mut newest = 0;
    let mut seen = std::collections::HashSet::new();
    for a in &all {
        assert!(
            a.fence >= newest,
            "stale token {} after {newest}: {all:#?}",
            a.fence
        );
        newest = a.fence;
        assert!(
            seen.insert((a.case.clone(), a.step.clone())),
            "{}/{} ran twice: {all:#?}",
            a.case,
            a.step
        );
    }
}

fn http_step(name: &str, act: u16) -> String {
    format!(
        "  - name: {name}\n    kind: http\n    method: POST\n    url: http://127.0.0.1:{act}/act\n    body: '{{\"case\": \"{{{{ labels.case }}}}\", \"step\": \"{name}\"}}'\n    timeout: 1s\n"
    )
}

/// `staged` (case mid): an action, a wait for a person, two more actions.
/// `quick` (every other case): one action.
fn runbooks(act: u16) -> Vec<(&'static str, String)> {
    let staged = format!(
        "name: staged\nmatch: {{detectors: [bad], labels: '{{case=\"mid\"}}'}}\nsteps:\n{}  - name: wait for a person\n    kind: approval\n    timeout: 120s\n    poll: 100ms\n    retry: {{max_attempts: 3}}\n{}{}",
        http_step("s1", act),
        http_step("s2", act),
        http_step("s3", act)
    );
    let quick = format!(
        "name: quick\nmatch: {{detectors: [bad], labels: '{{case!=\"mid\"}}'}}\nsteps:\n{}",
        http_step("q", act)
    );
    vec![("staged.yaml", staged), ("quick.yaml", quick)]
}

fn node_config(endpoints: &str, node: &str, target: u16, hook: u16) -> String {
    node_config_lease(endpoints, node, target, hook, "3s", "500ms")
}

fn node_config_lease(
    endpoints: &str,
    node: &str,
    target: u16,
    hook: u16,
    ttl: &str,
    renew: &str,
) -> String {
    format!(
        "sources:\n  - name: t\n    kind: scrape\n    interval: 200ms\n    targets: [127.0.0.1:{target}]\n\
         detectors:\n  - name: bad\n    kind: threshold\n    series: bad\n    above: 0\n\
         store:\n  kind: etcd\n  endpoints: {endpoints}\n  prefix: /ha/\n  timeout: 1s\n  election: {{node: {node}, ttl: {ttl}, renew: {renew}}}\n\
         notifiers:\n  - name: hook\n    kind: webhook\n    url: http://127.0.0.1:{hook}/hook\n\
         escalation_policies:\n  - name: page\n    levels:\n      - notify: [hook]\n\
         routes:\n  - policy: page\n"
    )
}

fn start_node(dir: &TempDir, cfg: &str, act: u16) -> Medic {
    let rbs = runbooks(act);
    let rbs: Vec<(&str, &str)> = rbs.iter().map(|(n, t)| (*n, t.as_str())).collect();
    Medic::start(dir, cfg, &rbs)
}

fn status(m: &Medic) -> Value {
    m.get("/api/v1/status")
}

/// The index of the live node that leads (waits for one).
fn leader(nodes: &[Option<Medic>]) -> usize {
    wait_for(LONG, "a leader", || {
        nodes
            .iter()
            .position(|m| m.as_ref().is_some_and(|m| status(m)["role"] == "leader"))
    })
}

fn live(nodes: &[Option<Medic>]) -> impl Iterator<Item = &Medic> {
    nodes.iter().flatten()
}

fn case_incident(m: &Medic, case: &str, pred: impl Fn(&Value) -> bool) -> Value {
    m.wait_incident("bad", LONG, |d| {
        d["incident"]["labels"]["case"] == case && pred(d)
    })
}

fn wait_acts(target: &TestServer, case: &str, n: usize) {
    wait_for(LONG, &format!("{n} action(s) for {case}"), || {
        (acts_of(target, case).len() >= n).then_some(())
    });
}

#[test]
fn three_nodes_act_once_through_a_leader_crash_a_lost_member_and_lost_quorum() {
    let shared = TempDir::new("ha3");
    let mut etcd = EtcdCluster::start(&shared.0, 3);
    let cases = Cases::start();
    let target = TestServer::start(|_| (200, "done".into()));
    let hook = TestServer::start(|_| (200, "ok".into()));
    let dirs = [
        TempDir::new("ha3-n1"),
        TempDir::new("ha3-n2"),
        TempDir::new("ha3-n3"),
    ];
    let mut nodes: Vec<Option<Medic>> = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let cfg = node_config(
                &etcd.endpoints(),
                &format!("n{}", i + 1),
                cases.server.port,
                hook.port,
            );
            Some(start_node(d, &cfg, target.port))
        })
        .collect();

    // 1. kill -9 the leader in the middle of a runbook (waiting for a
    // person after its first action); another node finishes the run.
    let first = leader(&nodes);
    let token = status(nodes[first].as_ref().unwrap())["leader"]["token"]
        .as_i64()
        .expect("the leader knows its token");
    cases.set("mid", 1);
    wait_acts(&target, "mid", 1);
    let leading = leader(&nodes);
    nodes[leading].take().unwrap().kill9();
    let other = nodes.iter().position(Option::is_some).unwrap();
    let m = nodes[other].as_ref().unwrap();
    let id = case_incident(m, "mid", |_| true)["incident"]["id"]
        .as_i64()
        .unwrap();
    let (code, body) = m.post(
        &format!("/api/v1/incidents/{id}/ack"),
        &json!({"who": "alice", "comment": "go on"}),
    );
    assert_eq!(code, 200, "{body}");
    let d = case_incident(m, "mid", |d| d["runs"][0]["state"] == "completed");
    let mid = acts_of(&target, "mid");
    let steps: Vec<&str> = mid.iter().map(|a| a.step.as_str()).collect();
    assert_eq!(steps, ["s1", "s2", "s3"], "{mid:#?}");
    assert!(mid[0].fence >= token, "{mid:#?}");
    assert!(
        mid[1].fence > mid[0].fence,
        "a newer term after the crash: {mid:#?}"
    );
    assert_eq!(mid[1].fence, mid[2].fence, "{mid:#?}");
    assert_eq!(d["runs"].as_array().unwrap().len(), 1, "{}", d["runs"]);
    let journal: Vec<i64> = d["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["executor"] == "http")
        .map(|a| a["fence"].as_i64().unwrap())
        .collect();
    let sent: Vec<i64> = mid.iter().map(|a| a.fence).collect();
    assert_eq!(
        journal, sent,
        "the journal records the tokens the target got"
    );
    assert_exactly_once_never_stale(&target);

    // 2. One etcd member dies: nothing changes.
    etcd.kill9(0);
    cases.set("one", 1);
    wait_acts(&target, "one", 1);
    case_incident(nodes[other].as_ref().unwrap(), "one", |d| {
        d["runs"][0]["state"] == "completed"
    });
    assert_eq!(acts_of(&target, "one").len(), 1);
    for m in live(&nodes) {
        assert_eq!(status(m)["store"], "ok", "{}", status(m));
    }

    // 3. A second member dies: no quorum. Degraded mode: the status and the
    // metrics say so, no action runs, notifications still go out (from the
    // nodes' spools), and the console's reads still answer.
    etcd.kill9(1);
    for m in live(&nodes) {
        wait_for(LONG, "degraded mode", || {
            (status(m)["store"] == "degraded").then_some(())
        });
    }
    cases.set("dark", 1);
    let spooled = wait_for(LONG, "a notification from a spool", || {
        hook.requests().into_iter().find(|r| {
            r.header("idempotency-key")
                .is_some_and(|k| k.starts_with("spool/"))
                && r.body.contains("dark")
        })
    });
    assert!(spooled.body.contains("opened"), "{}", spooled.body);
    assert!(
        acts_of(&target, "dark").is_empty(),
        "an action without quorum"
    );
    for m in live(&nodes) {
        // A leader that cannot renew its lease stops leading (timing rule).
        let s = wait_for(LONG, "no leader", || {
            Some(status(m)).filter(|s| s["role"] == "follower")
        });
        assert!(
            s["message"]
                .as_str()
                .unwrap()
                .starts_with("Store unreachable: automated actions are paused"),
            "{s}"
        );
        assert!(m.metrics().contains("medic_store_up 0"));
        let listed = m.get("/api/v1/incidents?state=all");
        assert!(
            listed["incidents"].as_array().is_some_and(|l| l.len() >= 2),
            "degraded reads: {listed}"
        );
    }
    // The console, in Chromium, says so on top of the incidents it still lists.
    let shot = components::artifacts_dir().join("console-degraded.png");
    let out = components::browser_script(
        "degraded.js",
        &[
            ("MEDIC_URL", nodes[other].as_ref().unwrap().api.clone()),
            ("SHOT", shot.display().to_string()),
        ],
    );
    let seen: Value = serde_json::from_str(out.trim()).expect("script output");
    assert!(
        seen["banner"].as_str().unwrap().starts_with(
            "Store unreachable: automated actions are paused; notifications are sent from this node directly"
        ),
        "{seen}"
    );
    assert!(seen["rows"].as_u64().unwrap() >= 1, "{seen}");
    // The spooled incident is listed as a row, with where its notification
    // stands (pending or sent, by now).
    let spooled = seen["spooled"].as_array().expect("spooled rows");
    assert!(
        spooled.iter().any(|r| {
            let r = r.as_str().unwrap_or("");
            r.contains("opened") && r.contains("dark") && r.contains("hook: ")
        }),
        "{seen}"
    );

    // 4. Quorum returns: the spooled incident reaches the store and gets
    // its runbook; a new incident gets its runbook too.
    etcd.restart(0);
    etcd.restart(1);
    etcd.wait_healthy();
    for m in live(&nodes) {
        wait_for(LONG, "store up again", || {
            (status(m)["store"] == "ok").then_some(())
        });
    }
    let m = nodes[other].as_ref().unwrap();
    let d = case_incident(m, "dark", |d| d["runs"][0]["state"] == "completed");
    assert!(
        timeline_text(&d).contains("while the store was unavailable"),
        "{}",
        timeline_text(&d)
    );
    cases.set("after", 1);
    case_incident(m, "after", |d| d["runs"][0]["state"] == "completed");
    assert_eq!(acts_of(&target, "dark").len(), 1);
    assert_eq!(acts_of(&target, "after").len(), 1);
    assert_exactly_once_never_stale(&target);
    assert!(m.metrics().contains("medic_store_up 1"));
}

#[test]
fn two_nodes_with_one_name_act_once_because_the_lease_is_the_token() {
    let shared = TempDir::new("ha-twins");
    let etcd = Etcd::start(&shared.0);
    let cases = Cases::start();
    let target = TestServer::start(|_| (200, "done".into()));
    let hook = TestServer::start(|_| (200, "ok".into()));
    let endpoints = format!("[{}]", etcd.url);
    let cfg = node_config(&endpoints, "twin", cases.server.port, hook.port);
    let (da, db) = (TempDir::new("ha-twin-a"), TempDir::new("ha-twin-b"));
    let mut nodes = vec![
        Some(start_node(&da, &cfg, target.port)),
        Some(start_node(&db, &cfg, target.port)),
    ];

    // Exactly one leads; both name "twin" as the leader, with one token
    // (the follower reads the key once a second).
    let first = leader(&nodes);
    let s: Vec<Value> = wait_for(LONG, "both see the leader", || {
        let s: Vec<Value> = live(&nodes).map(status).collect();
        s.iter().all(|s| s["leader"]["token"].is_i64()).then_some(s)
    });
    let roles: Vec<&str> = s.iter().map(|s| s["role"].as_str().unwrap()).collect();
    assert_eq!(
        roles.iter().filter(|r| **r == "leader").count(),
        1,
        "{s:#?}"
    );
    assert!(s.iter().all(|s| s["leader"]["node"] == "twin"), "{s:#?}");
    let token = s[first]["leader"]["token"].as_i64().unwrap();
    assert_eq!(s[1 - first]["leader"]["token"], token, "{s:#?}");

    cases.set("a", 1);
    case_incident(nodes[1 - first].as_ref().unwrap(), "a", |d| {
        d["runs"][0]["state"] == "completed"
    });
    let a = acts_of(&target, "a");
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(a[0].fence, token);

    // The leader dies; its twin takes over under a new token.
    nodes[first].take().unwrap().kill9();
    let next = leader(&nodes);
    let newer = status(nodes[next].as_ref().unwrap())["leader"]["token"]
        .as_i64()
        .unwrap();
    assert!(newer > token, "{newer} after {token}");
    cases.set("b", 1);
    case_incident(nodes[next].as_ref().unwrap(), "b", |d| {
        d["runs"][0]["state"] == "completed"
    });
    let b = acts_of(&target, "b");
    assert_eq!(b.len(), 1, "{b:#?}");
    assert_eq!(b[0].fence, newer);
    assert_exactly_once_never_stale(&target);
}

/// libfaketime (Debian `libfaketime`), which shifts a process's wall clock
/// and leaves its monotonic clock alone.
const FAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// The leader's wall clock jumps two hours ahead, then an hour behind real
/// time, while it leads: leadership is measured on the monotonic clock and
/// by etcd's lease, so it keeps leading under the same token and each new
/// incident is acted on exactly once; only the times it records move.
#[test]
fn a_clock_jump_on_the_leader_changes_neither_who_acts_nor_how_often() {
    if !components::present(std::path::Path::new(FAKETIME).exists(), "libfaketime") {
        return;
    }
    let shared = TempDir::new("ha-clock");
    let etcd = Etcd::start(&shared.0);
    let cases = Cases::start();
    let target = TestServer::start(|_| (200, "done".into()));
    let hook = TestServer::start(|_| (200, "ok".into()));
    let endpoints = format!("[{}]", etcd.url);
    let offset = shared.path("clock-offset");
    std::fs::write(&offset, "+0\n").unwrap();
    let offset_text = offset.display().to_string();
    let (da, db) = (TempDir::new("ha-clock-a"), TempDir::new("ha-clock-b"));
    let rbs = runbooks(target.port);
    let rbs: Vec<(&str, &str)> = rbs.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let a = Medic::start_with_env(
        &da,
        &node_config(&endpoints, "a", cases.server.port, hook.port),
        &rbs,
        &[
            ("LD_PRELOAD", FAKETIME),
            ("FAKETIME_TIMESTAMP_FILE", &offset_text),
            ("FAKETIME_NO_CACHE", "1"),
            ("DONT_FAKE_MONOTONIC", "1"),
        ],
    );
    let nodes = vec![Some(a)];
    assert_eq!(leader(&nodes), 0);
    let mut nodes = nodes;
    nodes.push(Some(start_node(
        &db,
        &node_config(&endpoints, "b", cases.server.port, hook.port),
        target.port,
    )));
    let token = status(nodes[0].as_ref().unwrap())["leader"]["token"]
        .as_i64()
        .unwrap();
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    for (case, jump, shifted) in [
        ("before", "+0", 0),
        ("ahead", "+7200", 7_200_000),
        ("behind", "-3600", -3_600_000),
    ] {
        std::fs::write(&offset, format!("{jump}\n")).unwrap();
        let real = now_ms();
        cases.set(case, 1);
        let d = case_incident(nodes[1].as_ref().unwrap(), case, |d| {
            d["runs"][0]["state"] == "completed"
        });
        let acted = acts_of(&target, case);
        assert_eq!(acted.len(), 1, "{acted:#?}");
        assert_eq!(acted[0].fence, token, "same term through the jump");
        // The leader journalled the action on its shifted wall clock.
        let at = d["actions"][0]["intended_at"].as_i64().unwrap();
        assert!(
            (at - real - shifted).abs() < 60_000,
            "{case}: intended_at {at}, real {real}, shift {shifted}"
        );
        assert_eq!(status(nodes[0].as_ref().unwrap())["role"], "leader");
        assert_eq!(status(nodes[1].as_ref().unwrap())["role"], "follower");
    }
    assert_exactly_once_never_stale(&target);
}

/// The takeover benchmark (`bench/ha/run.sh`): three medic nodes on a
/// three-member etcd; each trial kills the leader with SIGKILL, makes a new
/// incident appear at once, and measures the time from the kill to the
/// first action of the new leader (the target's clock). The killed node is
/// started again before the next trial. `MEDIC_BENCH_TRIALS` (10),
/// `MEDIC_BENCH_TTL` (3s) and `MEDIC_BENCH_RENEW` (500ms) set the run.
#[test]
#[ignore = "benchmark: run by bench/ha/run.sh"]
fn bench_takeover_after_kill_9_of_the_leader() {
    let trials: usize = std::env::var("MEDIC_BENCH_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(10);
    let ttl = std::env::var("MEDIC_BENCH_TTL").unwrap_or_else(|_| "3s".into());
    let renew = std::env::var("MEDIC_BENCH_RENEW").unwrap_or_else(|_| "500ms".into());
    let shared = TempDir::new("ha-bench");
    let etcd = EtcdCluster::start(&shared.0, 3);
    let cases = Cases::start();
    let arrivals: Arc<Mutex<Vec<(String, std::time::Instant)>>> = Arc::default();
    let a2 = arrivals.clone();
    let target = TestServer::start(move |r| {
        let case = serde_json::from_str::<Value>(&r.body).unwrap_or_default()["case"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        a2.lock().unwrap().push((case, std::time::Instant::now()));
        (200, "done".into())
    });
    let hook = TestServer::start(|_| (200, "ok".into()));
    let dirs: Vec<TempDir> = (1..=3)
        .map(|i| TempDir::new(&format!("ha-bench-n{i}")))
        .collect();
    let mut nodes: Vec<Option<Medic>> = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let cfg = node_config_lease(
                &etcd.endpoints(),
                &format!("n{}", i + 1),
                cases.server.port,
                hook.port,
                &ttl,
                &renew,
            );
            Some(start_node(d, &cfg, target.port))
        })
        .collect();
    let arrived = |case: &str| {
        arrivals
            .lock()
            .unwrap()
            .iter()
            .find(|(c, _)| c == case)
            .map(|(_, t)| *t)
    };
    // A first incident, so that the leader is settled and acting.
    cases.set("warmup", 1);
    wait_for(LONG, "warm-up action", || arrived("warmup"));
    for trial in 1..=trials {
        let l = leader(&nodes);
        let m = nodes[l].take().unwrap();
        let port = m.port();
        let killed = std::time::Instant::now();
        let mut m = m;
        m.kill9();
        let case = format!("trial{trial}");
        cases.set(&case, 1);
        let acted = wait_for(LONG, "the new leader's action", || arrived(&case));
        let secs = acted.duration_since(killed).as_secs_f64();
        println!("takeover trial {trial}: {secs:.3}s ttl={ttl} renew={renew}");
        drop(m);
        nodes[l] = Some(Medic::restart_in(&dirs[l].0, port));
        // Wait until the restarted node has joined as a follower.
        wait_for(LONG, "restarted node follows", || {
            (status(nodes[l].as_ref().unwrap())["leader"]["token"].is_i64()).then_some(())
        });
    }
}
