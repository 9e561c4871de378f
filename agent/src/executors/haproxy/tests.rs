//! The haproxy executor against a real HAProxy (2.6, `haproxy -db`) with two
//! tiny backends. Skipped when HAProxy is not installed (tests/run.sh
//! installs it).

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::executors::plugin::tests::context;

/// A backend answering every request with the status in `code`.
async fn backend(code: Arc<AtomicU16>) -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let code = code.load(Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 {code} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    port
}

struct Lb {
    child: tokio::process::Child,
    dir: std::path::PathBuf,
    socket: String,
    url: String,
}

impl Drop for Lb {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn program() -> Option<&'static str> {
    [
        "/usr/sbin/haproxy",
        "/usr/local/sbin/haproxy",
        "/usr/bin/haproxy",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
}

async fn haproxy(name: &str, servers: &str) -> Option<Lb> {
    let program = program()?;
    let dir = std::env::temp_dir().join(format!("medic-haproxy-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("admin.sock").display().to_string();
    let port = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = format!(
        "global\n    stats socket {socket} mode 600 level admin\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    balance roundrobin\n{servers}"
    );
    std::fs::write(dir.join("haproxy.cfg"), cfg).unwrap();
    let child = tokio::process::Command::new(program)
        .arg("-db")
        .arg("-f")
        .arg(dir.join("haproxy.cfg"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
            && std::path::Path::new(&socket).exists()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Some(Lb {
        child,
        dir,
        socket,
        url: format!("http://127.0.0.1:{port}/"),
    })
}

fn params(lb: &Lb, server: &str, action: HaproxyAction) -> HaproxyParams {
    HaproxyParams {
        socket: lb.socket.clone(),
        backend: "be".into(),
        server: server.into(),
        action,
        weight: None,
        to: None,
        steps: vec![50, 0],
        interval: Duration::from_millis(100),
        check: None,
        expect_status: vec![],
        confirm_traffic_to: None,
        confirm_within: Duration::from_secs(5),
    }
}

async fn weights(lb: &Lb) -> BTreeMap<String, u32> {
    let a = command(&lb.socket, "show servers state be", API_TIMEOUT)
        .await
        .unwrap();
    parse_weights(&a).unwrap()
}

use std::collections::BTreeMap;

/// Requests through the load balancer every 20 ms, so session counters move.
fn traffic(url: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let c = reqwest::Client::new();
        loop {
            let _ = c.get(&url).send().await;
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
}

#[tokio::test]
async fn shift_moves_traffic_in_steps_and_rolls_back_on_a_failed_check() {
    let a = backend(Arc::new(AtomicU16::new(200))).await;
    let b_code = Arc::new(AtomicU16::new(200));
    let b = backend(b_code.clone()).await;
    let servers =
        format!("    server a 127.0.0.1:{a} weight 100\n    server b 127.0.0.1:{b} weight 0\n");
    let Some(lb) = haproxy("shift", &servers).await else {
        eprintln!("haproxy not installed; skipping");
        return;
    };
    let load = traffic(lb.url.clone());
    let ctx = context(false);
    let mut p = params(&lb, "a", HaproxyAction::Shift);
    p.to = Some("b".into());
    p.check = Some(lb.url.clone());
    let x = Haproxy::new(p.clone(), reqwest::Client::new());
    assert_eq!(x.target(&ctx), "be/a");
    let out = x.execute(&ctx).await.unwrap();
    assert!(
        out.summary.contains("a=50 b=50 → a=0 b=100"),
        "{}",
        out.summary
    );
    assert!(out.summary.contains("traffic reaches b"), "{}", out.summary);
    let w = weights(&lb).await;
    assert_eq!((w["a"], w["b"]), (0, 100));

    // Back to a=100 b=0; then b breaks, and the check after the first step
    // (b itself) fails: the weights go back to where they were.
    let back = Haproxy::new(
        HaproxyParams {
            server: "b".into(),
            to: Some("a".into()),
            steps: vec![0],
            ..p.clone()
        },
        reqwest::Client::new(),
    );
    back.execute(&ctx).await.unwrap();
    b_code.store(500, Ordering::SeqCst);
    let mut broken = p.clone();
    broken.check = Some(format!("http://127.0.0.1:{b}/"));
    let e = Haproxy::new(broken, reqwest::Client::new())
        .execute(&ctx)
        .await
        .unwrap_err();
    assert!(e.contains("rolled back to a=100 b=0"), "{e}");
    let w = weights(&lb).await;
    assert_eq!((w["a"], w["b"]), (100, 0));
    load.abort();
}

async fn act(lb: &Lb, action: HaproxyAction) -> Result<ActionOutcome, String> {
    Haproxy::new(params(lb, "a", action), reqwest::Client::new())
        .execute(&context(false))
        .await
}

#[tokio::test]
async fn drain_maint_ready_and_weight_set_the_server_state() {
    let a = backend(Arc::new(AtomicU16::new(200))).await;
    let b = backend(Arc::new(AtomicU16::new(200))).await;
    let servers = format!("    server a 127.0.0.1:{a}\n    server b 127.0.0.1:{b} backup\n");
    let Some(lb) = haproxy("states", &servers).await else {
        eprintln!("haproxy not installed; skipping");
        return;
    };
    let load = traffic(lb.url.clone());
    let ctx = context(false);
    let status = |out: &ActionOutcome| out.details["after"]["a"]["status"].clone();
    let mut drain = params(&lb, "a", HaproxyAction::Drain);
    drain.confirm_traffic_to = Some("b".into());
    let out = Haproxy::new(drain, reqwest::Client::new())
        .execute(&ctx)
        .await
        .unwrap();
    assert_eq!(status(&out), "DRAIN");
    assert!(out.summary.contains("traffic reaches b"), "{}", out.summary);
    assert_eq!(
        status(&act(&lb, HaproxyAction::Maint).await.unwrap()),
        "MAINT"
    );
    let ready = act(&lb, HaproxyAction::Ready).await.unwrap();
    assert_ne!(status(&ready), "MAINT");
    assert_ne!(status(&ready), "DRAIN");
    let mut w = params(&lb, "a", HaproxyAction::Weight);
    w.weight = Some(7);
    Haproxy::new(w, reqwest::Client::new())
        .execute(&ctx)
        .await
        .unwrap();
    assert_eq!(weights(&lb).await["a"], 7);
    // A server HAProxy does not know is a clear failure.
    let e = Haproxy::new(
        params(&lb, "nope", HaproxyAction::Maint),
        reqwest::Client::new(),
    )
    .execute(&ctx)
    .await
    .unwrap_err();
    assert!(e.contains("HAProxy refused"), "{e}");
    load.abort();
}
