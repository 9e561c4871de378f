//! Real monitoring components for the end-to-end tests, started the way
//! ../shared/COMPONENTS.md documents: Prometheus 2.42 and Alertmanager 0.25
//! (Debian packages, installed by tests/run.sh), on loopback, stopped on drop;
//! and headless Chromium driven by playwright-core for the web console.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::{Proc, free_port, wait_for};

/// Whether a program is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether a test of a real component may run. When it is missing, a
/// developer's quick run skips the test with a note, but under `tests/run.sh`
/// (which sets `MEDIC_REQUIRE_COMPONENTS=1` after installing everything) the
/// test fails, so CI never passes a test that did not run.
pub fn present(ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    if std::env::var_os("MEDIC_REQUIRE_COMPONENTS").is_some_and(|v| v != "0") {
        panic!("{what} is missing, and MEDIC_REQUIRE_COMPONENTS is set (tests/run.sh installs it)");
    }
    eprintln!("SKIP: {what} is missing (tests/run.sh installs it)");
    false
}

fn start_logged(dir: &Path, name: &str, cmd: &mut Command) -> Proc {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e} (tests/run.sh installs it)"));
    Proc(child)
}

fn wait_ready(name: &str, url: &str) {
    wait_for(Duration::from_secs(30), &format!("{name} ready"), || {
        reqwest::blocking::get(url)
            .ok()
            .filter(|r| r.status().is_success())
    });
}

/// A running Prometheus.
pub struct Prometheus {
    /// Base URL.
    pub url: String,
    _proc: Proc,
}

impl Prometheus {
    /// Start with `config` (prometheus.yml text) and optional rule files,
    /// written into `dir/prometheus/`.
    pub fn start(dir: &Path, config: &str, rules: &[(&str, &str)]) -> Prometheus {
        let d = dir.join("prometheus");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("prometheus.yml"), config).unwrap();
        for (name, text) in rules {
            std::fs::write(d.join(name), text).unwrap();
        }
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let p = start_logged(
            &d,
            "prometheus",
            Command::new("prometheus")
                .arg(format!(
                    "--config.file={}",
                    d.join("prometheus.yml").display()
                ))
                .arg(format!("--storage.tsdb.path={}", d.join("data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg(format!("--web.external-url={url}"))
                .current_dir(&d),
        );
        wait_ready("prometheus", &format!("{url}/-/ready"));
        Prometheus { url, _proc: p }
    }

    /// An API query (`/api/v1/query`), as JSON.
    pub fn query(&self, expr: &str) -> Value {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/api/v1/query", self.url),
            &[("query", expr)],
        )
        .unwrap();
        reqwest::blocking::get(url)
            .and_then(|r| r.json())
            .unwrap_or(Value::Null)
    }
}

/// A running Alertmanager.
pub struct Alertmanager {
    /// Base URL.
    pub url: String,
    _proc: Proc,
}

impl Alertmanager {
    /// Start with `config` (alertmanager.yml text) in `dir/alertmanager/`.
    pub fn start(dir: &Path, config: &str) -> Alertmanager {
        let d = dir.join("alertmanager");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("alertmanager.yml"), config).unwrap();
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let p = start_logged(
            &d,
            "alertmanager",
            Command::new("prometheus-alertmanager")
                .arg(format!(
                    "--config.file={}",
                    d.join("alertmanager.yml").display()
                ))
                .arg(format!("--storage.path={}", d.join("data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address=")
                .current_dir(&d),
        );
        wait_ready("alertmanager", &format!("{url}/-/ready"));
        Alertmanager { url, _proc: p }
    }
}

/// dnsmasq serving SRV records on a loopback UDP/TCP port (no system
/// resolver, no hosts file): `records` are `(name, host, port)`.
pub struct Dnsmasq {
    /// `127.0.0.1:port`.
    pub addr: String,
    _proc: Proc,
}

impl Dnsmasq {
    /// Start on `port` (pass 0 for a free one).
    pub fn start(dir: &Path, port: u16, records: &[(&str, &str, u16)]) -> Dnsmasq {
        let port = if port == 0 { free_port() } else { port };
        let bin = if have("dnsmasq") {
            "dnsmasq".to_string()
        } else {
            "/usr/sbin/dnsmasq".to_string()
        };
        let mut cmd = Command::new(bin);
        cmd.args([
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--conf-file=/dev/null",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--user=root",
            "--pid-file=",
            "--log-queries",
            "--log-facility=-",
        ])
        .arg(format!("--port={port}"));
        for (name, host, p) in records {
            cmd.arg(format!("--srv-host={name},{host},{p}"));
        }
        let p = start_logged(dir, &format!("dnsmasq-{port}"), &mut cmd);
        let addr = format!("127.0.0.1:{port}");
        wait_for(Duration::from_secs(10), "dnsmasq listening", || {
            std::net::TcpStream::connect(&addr).ok()
        });
        Dnsmasq { addr, _proc: p }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.rsplit(':').next().unwrap().parse().unwrap()
    }
}

/// A running HAProxy 2.6 (`haproxy -db`, foreground) with one HTTP frontend
/// and a runtime API socket at `level admin`.
pub struct Haproxy {
    /// Frontend URL.
    pub url: String,
    /// Runtime API unix socket.
    pub socket: std::path::PathBuf,
    _proc: Proc,
}

impl Haproxy {
    /// The program: on PATH, or where Debian puts it.
    pub fn program() -> Option<String> {
        if have("haproxy") {
            Some("haproxy".into())
        } else if Path::new("/usr/sbin/haproxy").exists() {
            Some("/usr/sbin/haproxy".into())
        } else {
            None
        }
    }

    /// Start with backend `be` made of `servers` lines (e.g.
    /// `server primary 127.0.0.1:8081`), in `dir/haproxy/`.
    pub fn start(dir: &Path, servers: &[String]) -> Haproxy {
        let d = dir.join("haproxy");
        std::fs::create_dir_all(&d).unwrap();
        let socket = d.join("admin.sock");
        let port = free_port();
        let cfg = format!(
            "global\n    stats socket {} mode 600 level admin\n    stats timeout 10s\n\
             defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
             frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
             backend be\n    balance roundrobin\n{}\n",
            socket.display(),
            servers
                .iter()
                .map(|s| format!("    {s}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::fs::write(d.join("haproxy.cfg"), cfg).unwrap();
        let program = Haproxy::program().expect("haproxy (tests/run.sh installs it)");
        let p = start_logged(
            &d,
            "haproxy",
            Command::new(program)
                .args(["-db", "-f"])
                .arg(d.join("haproxy.cfg")),
        );
        wait_for(Duration::from_secs(30), "haproxy listening", || {
            (std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() && socket.exists())
                .then_some(())
        });
        Haproxy {
            url: format!("http://127.0.0.1:{port}"),
            socket,
            _proc: p,
        }
    }
}

/// The Python of the test venv (`$MEDIC_VENV`, made by tests/run.sh).
pub fn venv_python() -> std::path::PathBuf {
    let venv = std::env::var("MEDIC_VENV").unwrap_or_else(|_| {
        format!(
            "{}/.cache/medic-venv",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    Path::new(&venv).join("bin/python")
}

/// A real SMTP server (aiosmtpd, `tests/clients/smtp_sink.py`) that writes
/// every message it receives, decoded, to `msg-N.json` in its directory.
pub struct SmtpSink {
    /// Port on 127.0.0.1.
    pub port: u16,
    /// Where messages land.
    pub dir: std::path::PathBuf,
    _proc: Proc,
}

impl SmtpSink {
    /// Start in `dir/smtp`, waiting until it accepts connections.
    pub fn start(dir: &Path) -> SmtpSink {
        let out = dir.join("smtp");
        std::fs::create_dir_all(&out).unwrap();
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/smtp_sink.py");
        let p = start_logged(
            dir,
            "smtp-sink",
            Command::new(venv_python())
                .arg(script)
                .arg(port.to_string())
                .arg(&out),
        );
        wait_for(Duration::from_secs(20), "SMTP sink listening", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        SmtpSink {
            port,
            dir: out,
            _proc: p,
        }
    }

    /// Messages received so far, in order.
    pub fn messages(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for n in 1.. {
            match std::fs::read_to_string(self.dir.join(format!("msg-{n}.json"))) {
                Ok(t) => out.push(serde_json::from_str(&t).expect("message JSON")),
                Err(_) => break,
            }
        }
        out
    }
}

/// Where `tests/run.sh` installs playwright-core: `$MEDIC_NODE`, default
/// `~/.cache/medic-node` (its `node_modules/` holds the package).
pub fn node_dir() -> PathBuf {
    std::env::var_os("MEDIC_NODE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&std::env::var("HOME").unwrap_or_default()).join(".cache/medic-node")
        })
}

/// Where tests keep what people look at afterwards (screenshots):
/// `<target>/debug/e2e-artifacts/`.
pub fn artifacts_dir() -> PathBuf {
    let d = crate::build_dir().join("e2e-artifacts");
    std::fs::create_dir_all(&d).expect("artifacts dir");
    d
}

/// Run `tests/browser/<script>` with Node: it drives headless Chromium
/// (Debian `chromium`) through playwright-core. Returns its stdout; panics
/// with its output if it fails, and with what to install if node, chromium
/// or playwright-core is missing: the test never skips.
pub fn browser_script(script: &str, env: &[(&str, String)]) -> String {
    let install = "run tests/run.sh, which installs chromium and nodejs (apt) and playwright-core (npm, into $MEDIC_NODE)";
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "headless Chromium not found at {chromium}: {install}"
    );
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(node_ok, "node not found on PATH: {install}");
    let modules = node_dir().join("node_modules");
    assert!(
        modules.join("playwright-core/package.json").exists(),
        "playwright-core not found in {}: {install}",
        modules.display()
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("browser")
        .join(script);
    let out = Command::new("node")
        .arg(&path)
        .env("NODE_PATH", &modules)
        .env("CHROMIUM", &chromium)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} failed ({}):\n{stderr}\n{stdout}",
        path.display(),
        out.status
    );
    stdout
}

/// A running one-member etcd 3.4 (Debian `etcd-server`), as
/// ../shared/COMPONENTS.md starts it, in `dir/etcd/`.
pub struct Etcd {
    /// Client URL.
    pub url: String,
    _proc: Proc,
}

impl Etcd {
    /// Start on free loopback ports and wait until it is healthy.
    pub fn start(dir: &Path) -> Etcd {
        let d = dir.join("etcd");
        std::fs::create_dir_all(&d).unwrap();
        let url = format!("http://127.0.0.1:{}", free_port());
        let peer = format!("http://127.0.0.1:{}", free_port());
        let p = start_logged(
            &d,
            "etcd",
            Command::new("etcd")
                .args(["--name", "e2e", "--data-dir"])
                .arg(d.join("data"))
                .args([
                    "--listen-client-urls",
                    &url,
                    "--advertise-client-urls",
                    &url,
                ])
                .args([
                    "--listen-peer-urls",
                    &peer,
                    "--initial-advertise-peer-urls",
                    &peer,
                ])
                .args(["--initial-cluster", &format!("e2e={peer}")])
                .args(["--initial-cluster-state", "new"]),
        );
        wait_ready("etcd", &format!("{url}/health"));
        Etcd { url, _proc: p }
    }

    /// The keys under `prefix`, read with `etcdctl` (not through medic).
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args([
                "--endpoints",
                &self.url,
                "get",
                "--prefix",
                "--keys-only",
                prefix,
            ])
            .output()
            .expect("etcdctl (tests/run.sh installs etcd-client)");
        assert!(
            out.status.success(),
            "etcdctl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// A three-member (or `n`-member) etcd 3.4 cluster on loopback, as
/// ../shared/COMPONENTS.md starts one, in `dir/etcd-cluster/`. Members can
/// be killed (`kill -9`) and started again on their data directories.
pub struct EtcdCluster {
    /// Client URLs, one per member.
    pub urls: Vec<String>,
    dir: PathBuf,
    peers: Vec<String>,
    members: Vec<Option<Proc>>,
}

impl EtcdCluster {
    /// Start `n` members on free loopback ports and wait until the cluster
    /// is healthy.
    pub fn start(dir: &Path, n: usize) -> EtcdCluster {
        let dir = dir.join("etcd-cluster");
        std::fs::create_dir_all(&dir).unwrap();
        let urls: Vec<String> = (0..n)
            .map(|_| format!("http://127.0.0.1:{}", free_port()))
            .collect();
        let peers: Vec<String> = (0..n)
            .map(|_| format!("http://127.0.0.1:{}", free_port()))
            .collect();
        let mut c = EtcdCluster {
            urls,
            dir,
            peers,
            members: (0..n).map(|_| None).collect(),
        };
        for i in 0..n {
            c.start_member(i);
        }
        c.wait_healthy();
        c
    }

    /// `[url, url, url]` for `endpoints:` in medic.yaml.
    pub fn endpoints(&self) -> String {
        format!("[{}]", self.urls.join(", "))
    }

    fn start_member(&mut self, i: usize) {
        let cluster: Vec<String> = self
            .peers
            .iter()
            .enumerate()
            .map(|(j, p)| format!("m{j}={p}"))
            .collect();
        let url = &self.urls[i];
        let peer = &self.peers[i];
        let p = start_logged(
            &self.dir,
            &format!("m{i}"),
            Command::new("etcd")
                .args(["--name", &format!("m{i}"), "--data-dir"])
                .arg(self.dir.join(format!("m{i}.data")))
                .args(["--listen-client-urls", url, "--advertise-client-urls", url])
                .args([
                    "--listen-peer-urls",
                    peer,
                    "--initial-advertise-peer-urls",
                    peer,
                ])
                .args(["--initial-cluster", &cluster.join(",")])
                .args(["--initial-cluster-token", "medic-e2e"])
                .args(["--initial-cluster-state", "new"])
                .args(["--heartbeat-interval", "100", "--election-timeout", "1000"]),
        );
        self.members[i] = Some(p);
    }

    /// `kill -9` member `i`.
    pub fn kill9(&mut self, i: usize) {
        // Dropping a Proc kills it (SIGKILL) and reaps it.
        self.members[i] = None;
    }

    /// Start member `i` again on its data directory (it rejoins).
    pub fn restart(&mut self, i: usize) {
        if self.members[i].is_none() {
            self.start_member(i);
        }
    }

    /// Wait until a member reports the cluster healthy (it has quorum).
    pub fn wait_healthy(&self) {
        wait_for(Duration::from_secs(60), "etcd cluster healthy", || {
            self.urls.iter().enumerate().find_map(|(i, u)| {
                self.members[i].as_ref()?;
                reqwest::blocking::get(format!("{u}/health"))
                    .ok()?
                    .text()
                    .ok()
                    .filter(|t| t.contains("\"health\":\"true\""))
            })
        });
    }
}
