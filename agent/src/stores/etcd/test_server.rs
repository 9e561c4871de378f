//! A real etcd 3.4 (Debian `etcd-server`) for the store tests: one `etcd`
//! process per test binary, on free loopback ports with a temporary data
//! directory, killed when the test process exits. Each test works under its
//! own key prefix. No etcd installed is a test failure, never a skip.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{EtcdConfig, EtcdStore};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn data_root() -> PathBuf {
    std::env::temp_dir().join("medic-test-etcd")
}

/// Remove data directories of test processes that are gone.
fn sweep() {
    let Ok(rd) = std::fs::read_dir(data_root()) else {
        return;
    };
    for e in rd.flatten() {
        let pid = e.file_name().to_string_lossy().parse::<u32>().ok();
        if pid.is_some_and(|p| !PathBuf::from(format!("/proc/{p}")).exists()) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A running etcd, killed on drop (and when the thread that started it ends:
/// `PR_SET_PDEATHSIG`).
pub struct Etcd {
    /// Client URL.
    pub url: String,
    child: Child,
    dir: PathBuf,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Etcd {
    /// Start a one-member cluster and wait until it listens.
    pub fn start() -> Etcd {
        Etcd::launch(None)
    }

    /// Start one that serves clients over TLS only and requires a client
    /// certificate signed by the CA in `certs` (see [`make_certs`]).
    pub fn start_tls(certs: &std::path::Path) -> Etcd {
        Etcd::launch(Some(certs))
    }

    fn launch(tls: Option<&std::path::Path>) -> Etcd {
        static N: AtomicU32 = AtomicU32::new(0);
        sweep();
        let dir = data_root()
            .join(std::process::id().to_string())
            .join(N.fetch_add(1, Ordering::Relaxed).to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("etcd test dir");
        let (client, peer) = (free_port(), free_port());
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = std::fs::File::create(dir.join("etcd.log")).expect("etcd log");
        let mut cmd = Command::new("etcd");
        cmd.args(["--name", "t", "--data-dir"])
            .arg(dir.join("data"))
            .args([
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("t={peer_url}")])
            .args(["--initial-cluster-state", "new"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("etcd log"))
            .stderr(log);
        if let Some(c) = tls {
            cmd.arg("--cert-file")
                .arg(c.join("server.pem"))
                .arg("--key-file")
                .arg(c.join("server.key"))
                .arg("--trusted-ca-file")
                .arg(c.join("ca.pem"))
                .arg("--client-cert-auth");
        }
        // SAFETY: prctl is async-signal-safe; it only sets this child's death signal.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start `etcd` ({e}): the etcd store tests need etcd-server 3.4 on PATH \
                 (apt-get install etcd-server; tests/run.sh installs it)"
            )
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", client)).is_err() {
            assert!(
                Instant::now() < deadline,
                "etcd did not listen on {url} within 30s; see {}",
                dir.join("etcd.log").display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Etcd { url, child, dir }
    }
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, made
/// with the `openssl` command into `dir`: `ca.pem`, `server.pem`/`.key`,
/// `client.pem`/`.key`.
pub fn make_certs(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).expect("cert dir");
    let sh = |script: &str| {
        let out = Command::new("sh")
            .arg("-ec")
            .arg(script)
            .current_dir(dir)
            .output()
            .expect("sh");
        assert!(
            out.status.success(),
            "openssl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    sh(&format!(
        "openssl req -x509 {key} -keyout ca.key -out ca.pem -days 2 -subj /CN=medic-test-ca"
    ));
    for (name, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).expect("ext file");
        sh(&format!(
            "openssl req {key} -keyout {name}.key -out {name}.csr -subj /CN={name}
             openssl x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
               -out {name}.pem -days 2 -extfile {name}.ext"
        ));
    }
}

/// Start the shared etcd from a thread that never ends, so it lives exactly
/// as long as the test process.
fn start_shared() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let etcd = Etcd::start();
        let _ = tx.send(etcd.url.clone());
        loop {
            std::thread::park();
        }
    });
    rx.recv()
        .unwrap_or_else(|_| panic!("the shared etcd did not start (see the panic above)"))
}

/// The shared etcd's client URL.
pub fn endpoint() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(start_shared)
}

/// A store under a prefix no other test uses.
pub fn store(name: &str) -> EtcdStore {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    open(&format!("/medic-test/{name}-{n}/"))
}

/// A store under a given prefix of the shared etcd.
pub fn open(prefix: &str) -> EtcdStore {
    open_at(endpoint(), prefix)
}

/// A store under a prefix, waiting for a fresh etcd to answer.
pub fn open_at(url: &str, prefix: &str) -> EtcdStore {
    open_config(
        &EtcdConfig::new(vec![url.to_string()], prefix),
        std::path::Path::new("."),
    )
}

/// A store with these settings, waiting (30s at most) for a fresh etcd to
/// answer.
pub fn open_config(c: &EtcdConfig, base_dir: &std::path::Path) -> EtcdStore {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match EtcdStore::open(c, base_dir) {
            Ok(s) => return s,
            Err(e) if Instant::now() > deadline => panic!("etcd at {:?}: {e}", c.endpoints),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}
