//! Support for end-to-end tests: start the real `medic` binary on a config in
//! a temporary directory, talk to its API, and run small loopback HTTP servers
//! (scrape targets, webhook receivers).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod components;

/// The medic binary: `$MEDIC_BIN`, else `<target>/debug/medic` next to this test binary.
pub fn medic_bin() -> PathBuf {
    if let Ok(p) = std::env::var("MEDIC_BIN") {
        return PathBuf::from(p);
    }
    let p = build_dir().join("medic");
    assert!(
        p.exists(),
        "medic binary not found at {}; run `cargo build -p medic-agent` first or set MEDIC_BIN",
        p.display()
    );
    p
}

/// The build directory the tests run from (`<target>/debug`).
pub fn build_dir() -> PathBuf {
    // <target>/debug/deps/spine-xxxx → <target>/debug
    let exe = std::env::current_exe().expect("test exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// A free loopback port (bound and released; fine for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Poll `f` until it returns Some, or panic with `what` after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Make one.
    pub fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(format!(
            "medic-e2e-{name}-{}-{}",
            std::process::id(),
            free_port()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("runbooks")).unwrap();
        TempDir(d)
    }
    /// Path inside.
    pub fn path(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("MEDIC_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A running medic daemon.
pub struct Medic {
    /// Its directory (config, runbooks, state).
    pub dir: PathBuf,
    /// API base URL.
    pub api: String,
    child: Option<Child>,
}

impl Medic {
    /// Write `medic.yaml` (with `listen` and `state_dir` set) and runbooks into
    /// `dir`, then start medic and wait until it is ready.
    pub fn start(dir: &TempDir, config: &str, runbooks: &[(&str, &str)]) -> Medic {
        Medic::start_with_env(dir, config, runbooks, &[])
    }

    /// [`Medic::start`] with extra environment variables for the process.
    pub fn start_with_env(
        dir: &TempDir,
        config: &str,
        runbooks: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> Medic {
        let port = free_port();
        let text =
            format!("listen: 127.0.0.1:{port}\nstate_dir: state\nrunbooks: runbooks\n{config}");
        std::fs::write(dir.path("medic.yaml"), text).unwrap();
        for (name, body) in runbooks {
            std::fs::write(dir.path("runbooks").join(name), body).unwrap();
        }
        Medic::spawn(&dir.0, port, env)
    }

    /// Start medic on an existing directory (after a crash).
    pub fn restart_in(dir: &Path, port: u16) -> Medic {
        Medic::spawn(dir, port, &[])
    }

    fn spawn(dir: &Path, port: u16, env: &[(&str, &str)]) -> Medic {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("medic.log"))
            .unwrap();
        let child = Command::new(medic_bin())
            .args(["run", "--config"])
            .arg(dir.join("medic.yaml"))
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn medic");
        let m = Medic {
            dir: dir.to_path_buf(),
            api: format!("http://127.0.0.1:{port}"),
            child: Some(child),
        };
        wait_for(Duration::from_secs(30), "medic /readyz", || {
            reqwest::blocking::get(format!("{}/readyz", m.api))
                .ok()
                .filter(|r| r.status().is_success())
        });
        m
    }

    /// Stop gracefully (which saves learnt model states) and start a new
    /// process in the same directory, on the same port; waits until it has
    /// restored the saved states. Keep this one until the new one is
    /// dropped, as with [`Medic::restart_in`].
    pub fn restart_restoring_models(&mut self) -> Medic {
        let port = self.port();
        self.stop();
        let m = Medic::restart_in(&self.dir, port);
        wait_for(Duration::from_secs(10), "restored state in the log", || {
            m.log()
                .contains("restored learnt model states")
                .then_some(())
        });
        m
    }

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// The API port.
    pub fn port(&self) -> u16 {
        self.api.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// medic's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("medic.log")).unwrap_or_default()
    }

    /// GET JSON from the API.
    pub fn get(&self, path: &str) -> Value {
        let r = reqwest::blocking::get(format!("{}{path}", self.api)).expect("GET");
        r.json().expect("json")
    }

    /// POST JSON to the API; returns (status, body).
    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = reqwest::blocking::Client::new()
            .post(format!("{}{path}", self.api))
            .json(body)
            .send()
            .expect("POST");
        let s = r.status().as_u16();
        (s, r.json().unwrap_or(Value::Null))
    }

    /// All incidents (open and resolved).
    pub fn incidents(&self) -> Vec<Value> {
        self.get("/api/v1/incidents?state=all")["incidents"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Wait for an incident from `detector` matching `pred`; returns its detail
    /// (incident, timeline, runs, actions).
    pub fn wait_incident(
        &self,
        detector: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        wait_for(timeout, &format!("incident from {detector}"), || {
            self.incidents()
                .into_iter()
                .filter(|i| i["detector"] == detector)
                .map(|i| self.get(&format!("/api/v1/incidents/{}", i["id"])))
                .find(|d| pred(d))
        })
    }

    /// medic's own /metrics text.
    pub fn metrics(&self) -> String {
        reqwest::blocking::get(format!("{}/metrics", self.api))
            .and_then(|r| r.text())
            .unwrap_or_default()
    }

    /// SIGKILL medic (a crash). Services it supervises keep running.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait (graceful: it stops its services).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Medic {
    fn drop(&mut self) {
        self.stop();
        // Whatever medic left (after kill -9): stop services by their pidfiles.
        kill_pidfiles(&self.dir.join("state/services"));
    }
}

/// SIGKILL the process groups named by `*.pid` files in `dir`.
pub fn kill_pidfiles(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().extension().is_some_and(|x| x == "pid")
                && let Ok(t) = std::fs::read_to_string(e.path())
                && let Some(pid) = t.lines().next().and_then(|l| l.trim().parse::<i32>().ok())
                && pid > 1
            {
                // SAFETY: signalling a process group we started.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
}

/// The pid medic's supervisor reports for a service.
pub fn service_pid(m: &Medic, name: &str) -> Option<u64> {
    m.get("/api/v1/services")["services"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name && s["running"] == true)
        .and_then(|s| s["pid"].as_u64())
}

/// A child process killed on drop (e.g. a demo service the test runs itself).
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `medic demo-service` on a port, waiting until it answers.
pub fn demo_service(port: u16) -> Proc {
    let c = Command::new(medic_bin())
        .args(["demo-service", "--listen", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn demo");
    let p = Proc(c);
    wait_for(Duration::from_secs(10), "demo service", || {
        reqwest::blocking::get(format!("http://127.0.0.1:{port}/health")).ok()
    });
    p
}

/// `medic.yaml` text for a supervised demo service on `demo_port`, probed
/// every `interval` by source `demo-health`, with a `demo-unhealthy`
/// threshold detector on the probe; `extra_sources` are YAML list items
/// appended to `sources:`.
pub fn supervised_demo_config(demo_port: u16, interval: &str, extra_sources: &str) -> String {
    format!(
        r#"services:
  demo:
    argv: ["{bin}", demo-service, --listen, "127.0.0.1:{demo_port}"]
    grace: 1s
sources:
  - name: demo-health
    kind: http_probe
    interval: {interval}
    timeout: 250ms
    targets: [http://127.0.0.1:{demo_port}/health]
{extra_sources}detectors:
  - name: demo-unhealthy
    kind: threshold
    series: probe_success{{job="demo-health"}}
    below: 1
"#,
        bin = medic_bin().display()
    )
}

/// A scrape target serving the gauge `app_queue_depth`: around 10 with
/// deterministic noise, 500 once `jump` is set.
pub fn queue_depth_target(jump: Arc<AtomicBool>) -> TestServer {
    let n = AtomicU64::new(0);
    TestServer::start(move |_| {
        let k = n.fetch_add(1, Ordering::Relaxed) + 1;
        let x = k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
        let depth = if jump.load(Ordering::Relaxed) {
            500.0
        } else {
            10.0 + (x % 100) as f64 / 50.0
        };
        (
            200,
            format!("# TYPE app_queue_depth gauge\napp_queue_depth {depth}\n"),
        )
    })
}

/// `medic.yaml` text scraping a [`queue_depth_target`] on `port` every 100 ms
/// (source `app`), with the anomaly detector `queue-anomaly` on
/// `app_queue_depth`; `extra_sources` and `extra_detectors` are YAML list
/// items appended to `sources:` and `detectors:`.
pub fn queue_depth_config(port: u16, extra_sources: &str, extra_detectors: &str) -> String {
    format!(
        r#"sources:
  - name: app
    kind: scrape
    interval: 100ms
    targets: [127.0.0.1:{port}]
{extra_sources}detectors:
  - name: queue-anomaly
    kind: anomaly
    series: app_queue_depth
    direction: up
    min_abs_deviation: 5
    warm_up: 30
{extra_detectors}"#
    )
}

/// POST to a demo service's fault endpoint.
pub fn demo_fault(port: u16, mode: &str) {
    let r = reqwest::blocking::Client::new()
        .post(format!("http://127.0.0.1:{port}/fault/{mode}"))
        .send()
        .expect("fault");
    assert!(r.status().is_success(), "fault {mode}: {}", r.status());
}

/// One request a [`TestServer`] received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Body.
    pub body: String,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
}

impl Received {
    /// A header's value (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A tiny HTTP/1.1 server on loopback: answers with a handler, records requests.
pub struct TestServer {
    /// Port.
    pub port: u16,
    /// Requests so far.
    pub received: Arc<Mutex<VecDeque<Received>>>,
}

type Handler = dyn Fn(&Received) -> (u16, String) + Send + Sync;

impl TestServer {
    /// Start; the handler gets each request and returns (status, body).
    pub fn start(
        handler: impl Fn(&Received) -> (u16, String) + Send + Sync + 'static,
    ) -> TestServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(VecDeque::new()));
        let rec = received.clone();
        let handler: Arc<Handler> = Arc::new(handler);
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let rec = rec.clone();
                let h = handler.clone();
                std::thread::spawn(move || serve_one(s, &rec, &*h));
            }
        });
        TestServer { port, received }
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().iter().cloned().collect()
    }
}

fn serve_one(s: TcpStream, rec: &Mutex<VecDeque<Received>>, h: &Handler) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut r = BufReader::new(s.try_clone().unwrap());
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut len = 0usize;
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let req = Received {
            method,
            path,
            body: String::from_utf8_lossy(&body).into_owned(),
            headers,
        };
        let (status, out) = h(&req);
        rec.lock().unwrap().push_back(req);
        let mut w = s.try_clone().unwrap();
        let resp = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{out}",
            out.len()
        );
        if w.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

/// An incident detail's timeline as text, one `kind actor message` per line.
pub fn timeline_text(detail: &Value) -> String {
    detail["timeline"]
        .as_array()
        .map(|t| {
            t.iter()
                .map(|e| {
                    format!(
                        "{} {} {}",
                        e["kind"].as_str().unwrap_or(""),
                        e["actor"].as_str().unwrap_or(""),
                        e["message"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}
