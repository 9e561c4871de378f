//! Demo service tests over real HTTP on loopback.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::serve;

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    async fn start(rps: u32) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(serve(listener, rps, async move {
            let _ = rx.await;
        }));
        Server {
            addr,
            stop: Some(tx),
            task,
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("server stops")
            .unwrap()
            .unwrap();
    }
}

struct Reply {
    status: u16,
    headers: String,
    body: String,
}

/// A minimal HTTP/1.1 request; `None` if no complete answer arrived in time.
async fn http(addr: SocketAddr, method: &str, path: &str, timeout: Duration) -> Option<Reply> {
    let exchange = async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        String::from_utf8(raw).unwrap()
    };
    let text = tokio::time::timeout(timeout, exchange).await.ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some(Reply {
        status,
        headers: head.to_ascii_lowercase(),
        body: body.to_string(),
    })
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    http(addr, "GET", path, Duration::from_secs(5))
        .await
        .unwrap_or_else(|| panic!("GET {path} did not answer"))
}

async fn post(addr: SocketAddr, path: &str) -> Reply {
    http(addr, "POST", path, Duration::from_secs(5))
        .await
        .unwrap_or_else(|| panic!("POST {path} did not answer"))
}

/// Parse the exposition text: series (name with labels) to value, checking
/// that every sample line is well formed and every family has HELP and TYPE.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let mut series = BTreeMap::new();
    let mut typed = BTreeMap::new();
    let mut helped = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            helped.push(rest.split(' ').next().unwrap().to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let name = parts.next().unwrap().to_string();
            let kind = parts.next().unwrap().to_string();
            assert!(
                ["counter", "gauge", "histogram"].contains(&kind.as_str()),
                "{line}"
            );
            typed.insert(name, kind);
        } else {
            assert!(!line.starts_with('#'), "unexpected comment {line:?}");
            let (key, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad line {line:?}"));
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}"));
            let name = key.split('{').next().unwrap();
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "bad name in {line:?}"
            );
            if let Some(labels) = key.strip_prefix(name) {
                assert!(
                    labels.is_empty() || (labels.starts_with("{") && labels.ends_with("\"}")),
                    "{line:?}"
                );
            }
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s)
                        .filter(|f| typed.get(*f).is_some_and(|k| k == "histogram"))
                })
                .unwrap_or(name);
            assert!(typed.contains_key(family), "no TYPE before {line:?}");
            assert!(
                helped.iter().any(|h| h == family),
                "no HELP before {line:?}"
            );
            series.insert(key.to_string(), value);
        }
    }
    series
}

async fn scrape(addr: SocketAddr) -> BTreeMap<String, f64> {
    let r = get(addr, "/metrics").await;
    assert_eq!(r.status, 200);
    parse_metrics(&r.body)
}

const OK: &str = "demo_requests_total{code=\"200\"}";
const FAILED: &str = "demo_requests_total{code=\"500\"}";

#[tokio::test]
async fn metrics_are_well_formed_prometheus_text() {
    let server = Server::start(0).await;
    let r = get(server.addr, "/metrics").await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers
            .contains("content-type: text/plain; version=0.0.4"),
        "{}",
        r.headers
    );
    let m = parse_metrics(&r.body);

    // Both counters exist from the start.
    assert_eq!(m[OK], 0.0);
    assert_eq!(m[FAILED], 0.0);
    assert_eq!(m["demo_up"], 1.0);
    assert_eq!(m["demo_mode{mode=\"ok\"}"], 1.0);
    let start = m["demo_start_time_seconds"];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(start <= now && start > now - 60.0, "start time {start}");

    for le in [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf",
    ] {
        let key = format!("demo_request_duration_seconds_bucket{{le=\"{le}\"}}");
        assert!(m.contains_key(&key), "missing {key}");
    }
    assert!(m.contains_key("demo_request_duration_seconds_sum"));
    assert!(m.contains_key("demo_request_duration_seconds_count"));
    assert!(r.body.contains("# TYPE demo_requests_total counter"));
    assert!(
        r.body
            .contains("# TYPE demo_request_duration_seconds histogram")
    );
    assert!(r.body.contains("# TYPE demo_up gauge"));
    server.stop().await;
}

#[tokio::test]
async fn synthetic_traffic_moves_the_counters_and_histogram() {
    let server = Server::start(200).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let a = scrape(server.addr).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b = scrape(server.addr).await;
    assert!(b[OK] > a[OK], "{} then {}", a[OK], b[OK]);
    assert_eq!(b[FAILED], 0.0, "healthy traffic does not fail");

    // Histogram: cumulative, consistent with count and the 200 counter.
    let count = b["demo_request_duration_seconds_count"];
    assert_eq!(
        b["demo_request_duration_seconds_bucket{le=\"+Inf\"}"],
        count
    );
    assert_eq!(count, b[OK] + b[FAILED]);
    let buckets: Vec<f64> = [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5",
    ]
    .iter()
    .map(|le| b[&format!("demo_request_duration_seconds_bucket{{le=\"{le}\"}}")])
    .collect();
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert_eq!(buckets[4], count, "healthy latencies are under 100 ms");
    assert!(b["demo_request_duration_seconds_sum"] > 0.0);
    server.stop().await;
}

#[tokio::test]
async fn fault_500_fails_health_until_healed() {
    let server = Server::start(50).await;
    let h = get(server.addr, "/health").await;
    assert_eq!((h.status, h.body.as_str()), (200, "ok"));

    let r = post(server.addr, "/fault/500").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.trim(), "500");
    assert_eq!(get(server.addr, "/health").await.status, 500);
    assert_eq!(scrape(server.addr).await["demo_mode{mode=\"500\"}"], 1.0);

    assert_eq!(post(server.addr, "/fault/ok").await.status, 200);
    assert_eq!(get(server.addr, "/health").await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn fault_hang_hangs_health_and_defers_shutdown_until_unhung() {
    let mut server = Server::start(50).await;
    assert_eq!(post(server.addr, "/fault/hang").await.status, 200);

    assert!(
        http(server.addr, "GET", "/health", Duration::from_millis(500))
            .await
            .is_none(),
        "health must not answer in hang mode"
    );
    let m = scrape(server.addr).await;
    assert_eq!(m["demo_mode{mode=\"hang\"}"], 1.0);
    assert_eq!(m["demo_up"], 1.0);

    // A wedged service does not honour a graceful stop: a supervisor has to SIGKILL it.
    let addr = server.addr;
    let hung =
        tokio::spawn(async move { http(addr, "GET", "/health", Duration::from_secs(30)).await });
    let _ = server.stop.take().unwrap().send(());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!server.task.is_finished(), "stopped while hung");
    assert_eq!(get(server.addr, "/metrics").await.status, 200);

    // Leaving hang mode answers the hung request and lets the stop proceed.
    assert_eq!(post(server.addr, "/fault/ok").await.status, 200);
    let r = hung.await.unwrap().expect("released health check answers");
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    tokio::time::timeout(Duration::from_secs(3), &mut server.task)
        .await
        .expect("server stops once no longer hung")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn fault_errors_fails_half_the_traffic_but_not_health() {
    let server = Server::start(200).await;
    assert_eq!(post(server.addr, "/fault/errors").await.status, 200);
    let before = scrape(server.addr).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let after = scrape(server.addr).await;
    let failed = after[FAILED] - before[FAILED];
    let ok = after[OK] - before[OK];
    assert!(failed > 0.0, "no failures in errors mode");
    assert!(
        (failed - ok).abs() <= 2.0,
        "not half: {ok} ok, {failed} failed"
    );
    assert_eq!(get(server.addr, "/health").await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn fault_slow_raises_latency() {
    let server = Server::start(200).await;
    assert_eq!(post(server.addr, "/fault/slow").await.status, 200);
    let before = scrape(server.addr).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = scrape(server.addr).await;
    let fast = "demo_request_duration_seconds_bucket{le=\"0.5\"}";
    let count = "demo_request_duration_seconds_count";
    assert!(after[count] > before[count]);
    assert_eq!(
        after[fast], before[fast],
        "slow requests all take over 0.5 s"
    );
    assert_eq!(get(server.addr, "/health").await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn unknown_mode_is_rejected_and_help_lists_endpoints() {
    let server = Server::start(0).await;
    let r = post(server.addr, "/fault/broken").await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("unknown mode \"broken\""), "{}", r.body);
    assert!(r.body.contains("ok, 500, hang, errors, slow"));
    assert_eq!(
        scrape(server.addr).await["demo_mode{mode=\"ok\"}"],
        1.0,
        "mode unchanged"
    );

    let help = get(server.addr, "/").await;
    assert_eq!(help.status, 200);
    for needle in ["/health", "/metrics", "/fault/", "curl -X POST"] {
        assert!(
            help.body.contains(needle),
            "help lacks {needle}: {}",
            help.body
        );
    }
    assert!(
        help.body
            .contains(&format!("http://{}/fault/500", server.addr))
    );
    server.stop().await;
}
