//! Supervisor tests against real processes (`sleep`, `sh -c` scripts).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration as StdDuration, Instant};

use tokio::sync::mpsc;

use super::*;

/// A scratch directory removed at the end of the test.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "medic-sup-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A service running `argv` with every other setting at its default.
fn config_of(argv: Vec<String>) -> ServiceConfig {
    ServiceConfig {
        argv,
        env: BTreeMap::new(),
        cwd: None,
        stop_signal: StopSignal::default(),
        grace: default_grace(),
        on_exit: OnExit::default(),
        backoff: RestartBackoff::default(),
        log: None,
    }
}

fn config(argv: &[&str]) -> ServiceConfig {
    config_of(argv.iter().map(|s| s.to_string()).collect())
}

fn services(list: &[(&str, &ServiceConfig)]) -> BTreeMap<String, ServiceConfig> {
    list.iter()
        .map(|(n, c)| (n.to_string(), (*c).clone()))
        .collect()
}

fn supervisor(dir: &TempDir) -> (Supervisor, mpsc::Receiver<Batch>) {
    let (tx, rx) = mpsc::channel(1024);
    (Supervisor::new(dir.path().to_path_buf(), tx), rx)
}

fn value(batch: &Batch, metric: &str) -> Option<f64> {
    batch
        .samples
        .iter()
        .find(|s| s.name == metric)
        .map(|s| s.value)
}

/// Receive batches until one for `service` satisfies `pred`.
async fn next_batch(
    rx: &mut mpsc::Receiver<Batch>,
    service: &str,
    timeout: StdDuration,
    pred: impl Fn(&Batch) -> bool,
) -> Batch {
    let wait = async {
        loop {
            let b = rx.recv().await.expect("channel closed");
            if b.target == service && pred(&b) {
                return b;
            }
        }
    };
    tokio::time::timeout(timeout, wait)
        .await
        .unwrap_or_else(|_| panic!("no matching batch for {service} within {timeout:?}"))
}

fn is_up(b: &Batch) -> bool {
    value(b, "medic_service_up") == Some(1.0)
}

fn is_down(b: &Batch) -> bool {
    value(b, "medic_service_up") == Some(0.0)
}

/// Alive and not a zombie (PID 1 here may not reap orphans).
fn alive(pid: u32) -> bool {
    process_alive(pid, None)
}

async fn wait_dead(pid: u32, timeout: StdDuration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    !alive(pid)
}

/// Poll until the file has a complete line (scripts write their output with a trailing newline).
async fn read_when_ready(path: &Path) -> String {
    let deadline = Instant::now() + StdDuration::from_secs(5);
    loop {
        if let Ok(s) = std::fs::read_to_string(path)
            && s.ends_with('\n')
        {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{} never written",
            path.display()
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}

async fn status_of(sup: &Supervisor, name: &str) -> ServiceStatus {
    sup.status()
        .await
        .into_iter()
        .find(|s| s.name == name)
        .expect("service in status")
}

fn kill9(pid: u32) {
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}

#[tokio::test]
async fn start_reports_status_pidfile_and_batches() {
    let dir = TempDir::new("start");
    let (sup, mut rx) = supervisor(&dir);
    let cfg = config(&["sleep", "60"]);
    sup.apply(&services(&[("web", &cfg)])).await.unwrap();

    assert!(sup.has_service("web"));
    assert!(!sup.has_service("db"));
    let st = status_of(&sup, "web").await;
    let pid = st.pid.expect("pid");
    assert!(st.running && !st.adopted);
    assert_eq!(st.restarts, 0);
    assert!(st.started_at.is_some());
    assert!(alive(pid));

    let b = next_batch(&mut rx, "web", StdDuration::from_secs(2), is_up).await;
    assert_eq!(b.source, "services");
    assert_eq!(value(&b, "medic_service_pid"), Some(f64::from(pid)));
    assert_eq!(value(&b, "medic_service_restarts_total"), Some(0.0));
    assert!(
        b.samples
            .iter()
            .all(|s| s.labels.get("service").map(String::as_str) == Some("web"))
    );

    let pidfile = std::fs::read_to_string(dir.path().join("services/web.pid")).unwrap();
    assert_eq!(pidfile.lines().next(), Some(pid.to_string().as_str()));

    // The process is in its own process group.
    assert_eq!(proc_stat(pid).unwrap().pgrp, i64::from(pid));

    sup.shutdown().await;
    assert!(wait_dead(pid, StdDuration::from_secs(2)).await);
}

#[tokio::test]
async fn heartbeat_resends_state() {
    let dir = TempDir::new("heartbeat");
    let (sup, mut rx) = supervisor(&dir);
    sup.apply(&services(&[("hb", &config(&["sleep", "60"]))]))
        .await
        .unwrap();
    let first = next_batch(&mut rx, "hb", StdDuration::from_secs(2), is_up).await;
    let later = next_batch(&mut rx, "hb", StdDuration::from_secs(3), |b| {
        is_up(b) && b.at >= first.at + 500
    })
    .await;
    assert_eq!(
        value(&later, "medic_service_pid"),
        value(&first, "medic_service_pid")
    );
    sup.shutdown().await;
}

#[tokio::test]
async fn kill_is_reported_at_once_and_report_mode_leaves_it_stopped() {
    let dir = TempDir::new("kill");
    let (sup, mut rx) = supervisor(&dir);
    sup.apply(&services(&[("svc", &config(&["sleep", "60"]))]))
        .await
        .unwrap();
    next_batch(&mut rx, "svc", StdDuration::from_secs(2), is_up).await;
    let pid = status_of(&sup, "svc").await.pid.unwrap();

    let t0 = Instant::now();
    kill9(pid);
    let b = next_batch(&mut rx, "svc", StdDuration::from_secs(2), is_down).await;
    eprintln!("exit reported after {:?}", t0.elapsed());
    assert_eq!(value(&b, "medic_service_pid"), None);

    let st = status_of(&sup, "svc").await;
    assert!(!st.running && st.pid.is_none());
    assert!(!dir.path().join("services/svc.pid").exists());

    // on_exit: report (the default) does not restart.
    tokio::time::sleep(StdDuration::from_millis(700)).await;
    assert!(!status_of(&sup, "svc").await.running);

    // A restart of a dead service just starts it.
    let out = sup.restart("svc").await.unwrap();
    assert_eq!(out.old_pid, None);
    assert!(!out.killed);
    assert!(alive(out.new_pid));
    let st = status_of(&sup, "svc").await;
    assert_eq!(st.restarts, 1);
    assert_eq!(st.pid, Some(out.new_pid));
    sup.shutdown().await;
}

#[tokio::test]
async fn restart_kills_the_old_group_including_grandchildren() {
    let dir = TempDir::new("group");
    let (sup, mut rx) = supervisor(&dir);
    let out_file = dir.path().join("grandchild");
    let mut cfg = config(&["sh", "-c", "sleep 60 & echo $! > \"$OUT\"; wait"]);
    cfg.env.insert("OUT".into(), out_file.display().to_string());
    sup.apply(&services(&[("wrap", &cfg)])).await.unwrap();
    let old = status_of(&sup, "wrap").await.pid.unwrap();
    let grandchild: u32 = read_when_ready(&out_file).await.trim().parse().unwrap();
    assert!(alive(grandchild));
    assert_eq!(proc_stat(grandchild).unwrap().pgrp, i64::from(old));

    let out = sup.restart("wrap").await.unwrap();
    assert_eq!(out.old_pid, Some(old));
    assert_ne!(out.new_pid, old);
    assert!(!out.killed, "SIGTERM should have been enough");
    assert!(wait_dead(old, StdDuration::from_secs(2)).await);
    assert!(wait_dead(grandchild, StdDuration::from_secs(2)).await);
    assert!(alive(out.new_pid));

    // A restart medic performs is not reported as the service going down
    // (that would open a "process down" incident for medic's own action).
    let b = next_batch(&mut rx, "wrap", StdDuration::from_secs(2), |b| {
        assert!(!is_down(b), "restart reported as down: {b:?}");
        is_up(b) && value(b, "medic_service_pid") == Some(f64::from(out.new_pid))
    })
    .await;
    assert_eq!(value(&b, "medic_service_pid"), Some(f64::from(out.new_pid)));
    assert_eq!(value(&b, "medic_service_restarts_total"), Some(1.0));
    sup.shutdown().await;
}

#[tokio::test]
async fn a_process_ignoring_sigterm_is_killed_after_grace() {
    let dir = TempDir::new("stubborn");
    let (sup, _rx) = supervisor(&dir);
    let ready = dir.path().join("ready");
    // The ignored disposition is inherited by sleep, so the whole group ignores TERM.
    let mut cfg = config(&["sh", "-c", "trap '' TERM; echo ready > \"$OUT\"; sleep 60"]);
    cfg.env.insert("OUT".into(), ready.display().to_string());
    cfg.grace = Duration::from_millis(300);
    sup.apply(&services(&[("stubborn", &cfg)])).await.unwrap();
    let old = status_of(&sup, "stubborn").await.pid.unwrap();
    read_when_ready(&ready).await; // the trap is set
    std::fs::remove_file(&ready).unwrap();

    let t0 = Instant::now();
    let out = sup.restart("stubborn").await.unwrap();
    assert!(out.killed);
    assert!(t0.elapsed() >= StdDuration::from_millis(300));
    assert!(wait_dead(old, StdDuration::from_secs(1)).await);
    assert_ne!(out.new_pid, old);

    // stop() takes the same path.
    read_when_ready(&ready).await;
    sup.stop("stubborn").await.unwrap();
    assert!(wait_dead(out.new_pid, StdDuration::from_secs(1)).await);
    assert!(!status_of(&sup, "stubborn").await.running);
    sup.shutdown().await;
}

#[tokio::test]
async fn restart_can_override_the_stop_signal_for_a_hung_process() {
    let dir = TempDir::new("hung");
    let (sup, _rx) = supervisor(&dir);
    let ready = dir.path().join("ready");
    let mut cfg = config(&["sh", "-c", "trap '' TERM; echo ready > \"$OUT\"; sleep 60"]);
    cfg.env.insert("OUT".into(), ready.display().to_string());
    // A grace far longer than the test may take: only the override can be quick.
    cfg.grace = Duration::from_secs(120);
    sup.apply(&services(&[("hung", &cfg)])).await.unwrap();
    let old = status_of(&sup, "hung").await.pid.unwrap();
    read_when_ready(&ready).await;
    let opts = StopOptions {
        signal: Some(StopSignal::Kill),
        grace: None,
    };
    let out = tokio::time::timeout(StdDuration::from_secs(30), sup.restart_with("hung", opts))
        .await
        .expect("did not wait out the configured grace")
        .unwrap();
    assert!(wait_dead(old, StdDuration::from_secs(1)).await);
    assert_ne!(out.new_pid, old);
    // The new process ignores SIGTERM too, and shutdown would wait out the
    // long configured grace: kill it here.
    // SAFETY: signalling the process group this test started.
    unsafe {
        libc::kill(-(out.new_pid as i32), libc::SIGKILL);
    }
    assert!(wait_dead(out.new_pid, StdDuration::from_secs(5)).await);
    sup.shutdown().await;
}

#[tokio::test]
async fn on_exit_restart_restarts_with_growing_backoff_until_stopped() {
    let dir = TempDir::new("crashloop");
    let (sup, mut rx) = supervisor(&dir);
    let mut cfg = config(&["sh", "-c", "sleep 0.1; exit 3"]);
    cfg.on_exit = OnExit::Restart;
    cfg.backoff = RestartBackoff {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(400),
        min_uptime: Duration::from_secs(10),
    };
    let t0 = Instant::now();
    sup.apply(&services(&[("loop", &cfg)])).await.unwrap();
    let first = status_of(&sup, "loop").await.pid.unwrap();

    let b = next_batch(&mut rx, "loop", StdDuration::from_secs(10), |b| {
        is_up(b) && value(b, "medic_service_restarts_total") == Some(4.0)
    })
    .await;
    // Back-offs 0 (first quick restart) + 100 + 200 + 400 ms, plus four runs of 100 ms each.
    let elapsed = t0.elapsed();
    assert!(
        elapsed >= StdDuration::from_millis(1100),
        "too fast: {elapsed:?}"
    );
    assert_ne!(value(&b, "medic_service_pid"), Some(f64::from(first)));

    // stop() ends the loop, also while a back-off is pending.
    sup.stop("loop").await.unwrap();
    let restarts = status_of(&sup, "loop").await.restarts;
    tokio::time::sleep(StdDuration::from_millis(900)).await;
    let st = status_of(&sup, "loop").await;
    assert!(!st.running);
    assert_eq!(st.restarts, restarts);
    sup.shutdown().await;
}

#[tokio::test]
async fn concurrent_restarts_are_serialized_and_back_off() {
    let dir = TempDir::new("serial");
    let (sup, _rx) = supervisor(&dir);
    let mut cfg = config(&["sleep", "60"]);
    cfg.backoff = RestartBackoff {
        initial: Duration::from_millis(200),
        max: Duration::from_millis(300),
        min_uptime: Duration::from_secs(10),
    };
    sup.apply(&services(&[("s", &cfg)])).await.unwrap();
    let first = status_of(&sup, "s").await.pid.unwrap();

    let (a, b) = tokio::join!(sup.restart("s"), sup.restart("s"));
    let mut outs = [a.unwrap(), b.unwrap()];
    outs.sort_by_key(|o| o.waited_backoff_ms);
    assert_eq!(
        outs[0].waited_backoff_ms, 0,
        "the first quick restart is immediate"
    );
    assert_eq!(outs[1].waited_backoff_ms, 200, "then initial");
    assert_eq!(outs[0].old_pid, Some(first));
    assert_eq!(outs[1].old_pid, Some(outs[0].new_pid));
    assert!(!alive(first) && !alive(outs[0].new_pid));
    assert!(alive(outs[1].new_pid));
    assert_eq!(status_of(&sup, "s").await.restarts, 2);

    // A new configuration applies from the next restart; a run longer than
    // min_uptime resets the back-off.
    cfg.backoff.min_uptime = Duration::from_millis(100);
    sup.apply(&services(&[("s", &cfg)])).await.unwrap();
    assert_eq!(
        status_of(&sup, "s").await.pid,
        Some(outs[1].new_pid),
        "kept running"
    );
    tokio::time::sleep(StdDuration::from_millis(150)).await;
    let out = sup.restart("s").await.unwrap();
    assert_eq!(out.waited_backoff_ms, 0);
    sup.shutdown().await;
}

#[tokio::test]
async fn adopts_services_left_running_by_a_crashed_medic() {
    let dir = TempDir::new("adopt");
    let cfg = config(&["sleep", "60"]);
    let pid = {
        let (sup, _rx) = supervisor(&dir);
        sup.apply(&services(&[("kept", &cfg)])).await.unwrap();
        let pid = status_of(&sup, "kept").await.pid.unwrap();
        sup.detach(); // medic "crashes": nothing is stopped
        pid
    };
    assert!(alive(pid));

    let (sup, mut rx) = supervisor(&dir);
    sup.apply(&services(&[("kept", &cfg)])).await.unwrap();
    let st = status_of(&sup, "kept").await;
    assert_eq!(st.pid, Some(pid), "adopted, not started again");
    assert!(st.running && st.adopted);
    let started = st.started_at.expect("start time from /proc");
    assert!(
        (now_millis() - started).abs() < 60_000,
        "plausible start time {started}"
    );
    let b = next_batch(&mut rx, "kept", StdDuration::from_secs(2), is_up).await;
    assert_eq!(value(&b, "medic_service_pid"), Some(f64::from(pid)));

    // The exit of a process that is not our child is noticed through its pidfd.
    kill9(pid);
    next_batch(&mut rx, "kept", StdDuration::from_secs(2), is_down).await;
    assert!(!status_of(&sup, "kept").await.running);
    sup.shutdown().await;
}

#[tokio::test]
async fn restart_of_an_adopted_service_stops_it_and_starts_a_child() {
    let dir = TempDir::new("adopt-restart");
    let cfg = config(&["sleep", "60"]);
    let pid = {
        let (sup, _rx) = supervisor(&dir);
        sup.apply(&services(&[("kept", &cfg)])).await.unwrap();
        let pid = status_of(&sup, "kept").await.pid.unwrap();
        sup.detach();
        pid
    };
    let (sup, _rx) = supervisor(&dir);
    sup.apply(&services(&[("kept", &cfg)])).await.unwrap();
    assert!(status_of(&sup, "kept").await.adopted);
    let out = sup.restart("kept").await.unwrap();
    assert_eq!(out.old_pid, Some(pid));
    assert!(!out.killed);
    assert!(wait_dead(pid, StdDuration::from_secs(1)).await);
    let st = status_of(&sup, "kept").await;
    assert!(st.running && !st.adopted);
    assert_eq!(st.pid, Some(out.new_pid));
    sup.shutdown().await;
    assert!(wait_dead(out.new_pid, StdDuration::from_secs(2)).await);
}

#[tokio::test]
async fn a_stale_pidfile_is_not_adopted() {
    let dir = TempDir::new("stale");
    let services_dir = dir.path().join("services");
    std::fs::create_dir_all(&services_dir).unwrap();
    // A live process with a different command line.
    let mut other = std::process::Command::new("sleep")
        .arg("61")
        .spawn()
        .unwrap();
    std::fs::write(services_dir.join("svc.pid"), format!("{}\n", other.id())).unwrap();

    let (sup, _rx) = supervisor(&dir);
    sup.apply(&services(&[("svc", &config(&["sleep", "60"]))]))
        .await
        .unwrap();
    let st = status_of(&sup, "svc").await;
    assert!(!st.adopted);
    assert_ne!(st.pid, Some(other.id()));
    assert!(alive(other.id()), "an unrelated process is left alone");
    let pidfile = std::fs::read_to_string(services_dir.join("svc.pid")).unwrap();
    assert_eq!(
        pidfile.lines().next(),
        Some(st.pid.unwrap().to_string().as_str())
    );
    sup.shutdown().await;
    other.kill().unwrap();
    other.wait().unwrap();

    // A pidfile naming a dead process is replaced too.
    std::fs::write(services_dir.join("svc.pid"), format!("{}\n", other.id())).unwrap();
    let (sup, _rx) = supervisor(&dir);
    sup.apply(&services(&[("svc", &config(&["sleep", "60"]))]))
        .await
        .unwrap();
    assert!(!status_of(&sup, "svc").await.adopted);
    sup.shutdown().await;
}

#[tokio::test]
async fn shutdown_stops_everything() {
    let dir = TempDir::new("shutdown");
    let (sup, _rx) = supervisor(&dir);
    let ready = dir.path().join("ready");
    let mut stubborn = config(&["sh", "-c", "trap '' TERM; echo ready > \"$OUT\"; sleep 60"]);
    stubborn
        .env
        .insert("OUT".into(), ready.display().to_string());
    stubborn.grace = Duration::from_millis(200);
    let mut restarting = config(&["sleep", "60"]);
    restarting.on_exit = OnExit::Restart;
    sup.apply(&services(&[
        ("a", &config(&["sleep", "60"])),
        ("b", &stubborn),
        ("c", &restarting),
    ]))
    .await
    .unwrap();
    read_when_ready(&ready).await;
    let pids: Vec<u32> = sup.status().await.iter().map(|s| s.pid.unwrap()).collect();
    assert_eq!(pids.len(), 3);

    sup.shutdown().await;
    for pid in &pids {
        assert!(
            wait_dead(*pid, StdDuration::from_secs(1)).await,
            "pid {pid} survived"
        );
    }
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert!(
        sup.status().await.iter().all(|s| !s.running),
        "on_exit: restart must not restart at shutdown"
    );
    for name in ["a", "b", "c"] {
        assert!(!dir.path().join(format!("services/{name}.pid")).exists());
    }
    assert!(matches!(
        sup.restart("a").await,
        Err(SupervisorError::ShuttingDown)
    ));
}

#[tokio::test]
async fn apply_stops_removed_services_and_keeps_running_ones() {
    let dir = TempDir::new("apply");
    let (sup, _rx) = supervisor(&dir);
    let cfg = config(&["sleep", "60"]);
    sup.apply(&services(&[("a", &cfg), ("b", &cfg)]))
        .await
        .unwrap();
    let a = status_of(&sup, "a").await.pid.unwrap();
    let b = status_of(&sup, "b").await.pid.unwrap();

    sup.apply(&services(&[("a", &cfg)])).await.unwrap();
    assert!(!sup.has_service("b"));
    assert!(wait_dead(b, StdDuration::from_secs(1)).await);
    assert_eq!(status_of(&sup, "a").await.pid, Some(a));
    assert!(matches!(sup.restart("b").await, Err(SupervisorError::Unknown(n)) if n == "b"));
    sup.shutdown().await;
}

#[tokio::test]
async fn env_cwd_and_output_reach_the_child_and_its_log() {
    let dir = TempDir::new("env");
    let (sup, _rx) = supervisor(&dir);
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let out = dir.path().join("out");
    let mut cfg = config(&[
        "sh",
        "-c",
        "printf '%s|%s\\n' \"$SECRET\" \"$(pwd -P)\" > \"$OUT\"; echo to-stdout; echo to-stderr >&2; sleep 60",
    ]);
    cfg.env.insert("SECRET".into(), "s3cr3t value".into());
    cfg.env.insert("OUT".into(), out.display().to_string());
    cfg.cwd = Some(work.clone());
    sup.apply(&services(&[("envy", &cfg)])).await.unwrap();

    let got = read_when_ready(&out).await;
    let work = work.canonicalize().unwrap();
    assert_eq!(got, format!("s3cr3t value|{}\n", work.display()));

    let log = dir.path().join("services/envy.log");
    let deadline = Instant::now() + StdDuration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("to-stdout\n") && text.contains("to-stderr\n") {
            break;
        }
        assert!(Instant::now() < deadline, "log has {text:?}");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    sup.shutdown().await;
}

#[tokio::test]
async fn hostile_arguments_reach_the_child_verbatim() {
    let dir = TempDir::new("argv");
    let (sup, _rx) = supervisor(&dir);
    let out = dir.path().join("argv");
    let touched = dir.path().join("touched");
    let hostile = [
        format!("$(touch {})", touched.display()),
        format!("`touch {}`", touched.display()),
        "; rm -rf /nonexistent-medic-test".to_string(),
        "a && b || c | d > e".to_string(),
        "'single' \"double\" \\backslash".to_string(),
        "line one\nline two".to_string(),
        String::new(),
        "  spaces  ".to_string(),
        "*".to_string(),
        "ünïcødé ✓".to_string(),
    ];
    // The script prints each of its arguments followed by a NUL byte.
    let mut argv = vec![
        "sh".to_string(),
        "-c".to_string(),
        "for a in \"$@\"; do printf '%s\\0' \"$a\"; done > \"$OUT.tmp\"; mv \"$OUT.tmp\" \"$OUT\"; sleep 60".to_string(),
        "sh".to_string(),
    ];
    argv.extend(hostile.iter().cloned());
    let mut cfg = config_of(argv);
    cfg.env.insert("OUT".into(), out.display().to_string());
    sup.apply(&services(&[("argv", &cfg)])).await.unwrap();

    let deadline = Instant::now() + StdDuration::from_secs(5);
    while !out.exists() {
        assert!(Instant::now() < deadline, "no output");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    let raw = std::fs::read(&out).unwrap();
    let got: Vec<String> = raw
        .strip_suffix(b"\0")
        .unwrap()
        .split(|&b| b == 0)
        .map(|a| String::from_utf8(a.to_vec()).unwrap())
        .collect();
    assert_eq!(got, hostile);
    assert!(!touched.exists(), "an argument was run by a shell");

    // The command line the kernel shows matches the configuration (used for adoption).
    let pid = status_of(&sup, "argv").await.pid.unwrap();
    assert!(cmdline_matches(&proc_cmdline(pid).unwrap(), &cfg.argv));
    sup.shutdown().await;
}

#[tokio::test]
async fn errors_for_unknown_invalid_and_unstartable_services() {
    let dir = TempDir::new("errors");
    let (sup, mut rx) = supervisor(&dir);
    assert!(matches!(
        sup.restart("nope").await,
        Err(SupervisorError::Unknown(_))
    ));
    assert!(matches!(
        sup.stop("nope").await,
        Err(SupervisorError::Unknown(_))
    ));

    let bad_name = sup
        .apply(&services(&[("../x", &config(&["sleep", "1"]))]))
        .await;
    assert!(matches!(bad_name, Err(SupervisorError::Invalid { .. })));
    let empty = sup.apply(&services(&[("x", &config_of(vec![]))])).await;
    assert!(matches!(empty, Err(SupervisorError::Invalid { .. })));
    assert!(!sup.has_service("x"));

    let missing = config(&["/nonexistent/medic-test-binary"]);
    let err = sup
        .apply(&services(&[("missing", &missing)]))
        .await
        .unwrap_err();
    assert!(matches!(&err, SupervisorError::Spawn { service, .. } if service == "missing"));
    assert!(err.to_string().starts_with("failed to start missing: "));
    // Known but not running, and reported down.
    assert!(sup.has_service("missing"));
    assert!(!status_of(&sup, "missing").await.running);
    next_batch(&mut rx, "missing", StdDuration::from_secs(2), is_down).await;
    assert!(matches!(
        sup.restart("missing").await,
        Err(SupervisorError::Spawn { .. })
    ));
    sup.shutdown().await;
}

#[test]
fn config_parses_with_defaults_and_signal_spellings() {
    let cfg: ServiceConfig = serde_json::from_str(r#"{"argv": ["app", "--port", "80"]}"#).unwrap();
    assert_eq!(cfg.stop_signal, StopSignal::Term);
    assert_eq!(cfg.grace, Duration::from_secs(5));
    assert_eq!(cfg.on_exit, OnExit::Report);
    assert_eq!(cfg.backoff, RestartBackoff::default());
    assert_eq!(cfg.backoff.initial, Duration::from_millis(500));
    assert_eq!(cfg.backoff.max, Duration::from_secs(30));
    assert_eq!(cfg.backoff.min_uptime, Duration::from_secs(10));
    assert_eq!(
        cfg,
        config_of(vec!["app".into(), "--port".into(), "80".into()])
    );

    let cfg: ServiceConfig = serde_json::from_str(
        r#"{"argv": ["app"], "stop_signal": "SIGINT", "grace": "2s", "on_exit": "restart",
            "backoff": {"initial": "1s"}, "env": {"A": "b"}, "cwd": "/srv", "log": "/var/log/app.log"}"#,
    )
    .unwrap();
    assert_eq!(cfg.stop_signal, StopSignal::Int);
    assert_eq!(cfg.grace, Duration::from_secs(2));
    assert_eq!(cfg.on_exit, OnExit::Restart);
    assert_eq!(cfg.backoff.initial, Duration::from_secs(1));
    assert_eq!(cfg.backoff.max, Duration::from_secs(30));

    for (text, sig) in [
        ("TERM", StopSignal::Term),
        ("SIGTERM", StopSignal::Term),
        ("INT", StopSignal::Int),
        ("QUIT", StopSignal::Quit),
        ("SIGHUP", StopSignal::Hup),
        ("KILL", StopSignal::Kill),
        ("USR1", StopSignal::Usr1),
        ("SIGUSR2", StopSignal::Usr2),
    ] {
        let parsed: StopSignal = serde_json::from_value(serde_json::json!(text)).unwrap();
        assert_eq!(parsed, sig, "{text}");
    }
    assert_eq!(
        serde_json::to_value(StopSignal::Term).unwrap(),
        serde_json::json!("TERM")
    );
    assert!(serde_json::from_str::<StopSignal>(r#""STOP""#).is_err());
    assert!(serde_json::from_str::<ServiceConfig>(r#"{"argv": ["a"], "restart": true}"#).is_err());
    assert!(
        serde_json::from_str::<ServiceConfig>(r#"{"argv": ["a"], "backoff": {"maximum": "1s"}}"#)
            .is_err()
    );
    // The schema generates (it is part of medic's config schema).
    let schema = schemars::schema_for!(ServiceConfig);
    assert!(
        serde_json::to_string(&schema)
            .unwrap()
            .contains("stop_signal")
    );
}

#[test]
fn command_lines_match_by_basename_and_through_shebangs() {
    let cl = |s: &[&str]| s.iter().map(|a| a.as_bytes().to_vec()).collect::<Vec<_>>();
    let argv = |s: &[&str]| s.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    assert!(cmdline_matches(
        &cl(&["/usr/bin/sleep", "60"]),
        &argv(&["sleep", "60"])
    ));
    assert!(cmdline_matches(
        &cl(&["sleep", "60"]),
        &argv(&["/bin/sleep", "60"])
    ));
    assert!(!cmdline_matches(
        &cl(&["sleep", "61"]),
        &argv(&["sleep", "60"])
    ));
    assert!(!cmdline_matches(&cl(&["sleep"]), &argv(&["sleep", "60"])));
    assert!(!cmdline_matches(
        &cl(&["sleepy", "60"]),
        &argv(&["sleep", "60"])
    ));
    // `#!/usr/bin/env python3` script started as ./app.py
    assert!(cmdline_matches(
        &cl(&["python3", "./app.py", "-v"]),
        &argv(&["./app.py", "-v"])
    ));
    assert!(cmdline_matches(
        &cl(&["/usr/bin/env", "python3", "/srv/app.py"]),
        &argv(&["app.py"])
    ));
    assert!(!cmdline_matches(
        &cl(&["a", "b", "c", "app.py"]),
        &argv(&["app.py"])
    ));
    assert!(!cmdline_matches(&cl(&["app"]), &[]));
}

#[tokio::test]
async fn leftovers_of_a_dead_leader_are_killed() {
    let dir = TempDir::new("leftover");
    let (sup, mut rx) = supervisor(&dir);
    let out_file = dir.path().join("grandchild");
    // The wrapper exits on its own, leaving its child behind in the group.
    let mut cfg = config(&["sh", "-c", "sleep 60 & echo $! > \"$OUT\"; sleep 0.2"]);
    cfg.env.insert("OUT".into(), out_file.display().to_string());
    sup.apply(&services(&[("leaky", &cfg)])).await.unwrap();
    let grandchild: u32 = read_when_ready(&out_file).await.trim().parse().unwrap();
    next_batch(&mut rx, "leaky", StdDuration::from_secs(3), is_down).await;
    assert!(wait_dead(grandchild, StdDuration::from_secs(1)).await);
    sup.shutdown().await;
}

#[test]
fn supervisor_is_send_sync_and_cheap_to_clone() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<Supervisor>();
}
