//! The demo service run by `medic demo-service`: a small web service that can
//! be broken on purpose, so medic's detection and recovery can be watched.
//!
//! It produces its own traffic (a background task performs synthetic requests)
//! so its metrics move without a load generator. Faults are set over HTTP and
//! held only in memory: restarting the process clears them, which is exactly
//! the recovery medic performs in the demo.

use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::watch;

#[cfg(test)]
mod tests;

/// Synthetic requests per second unless told otherwise.
pub const DEFAULT_RPS: u32 = 20;

/// After shutdown is requested, how long open connections may take to finish.
const DRAIN: Duration = Duration::from_secs(5);

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 9] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// How to run the demo service.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Synthetic requests per second (0 disables the synthetic traffic).
    pub rps: u32,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            rps: DEFAULT_RPS,
        }
    }
}

/// Run the demo service until SIGTERM or SIGINT.
///
/// In `hang` mode the service plays a wedged process: SIGTERM is not honoured
/// until the mode changes, so a supervisor has to escalate to SIGKILL (which is
/// what the demo shows). SIGINT always stops it at once, for a person at a terminal.
pub async fn run(opts: DemoOptions) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    // Registered before serving, so a failure is an error rather than a service
    // that cannot be stopped gracefully.
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let listener = TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("cannot listen on {}", opts.listen))?;
    let graceful = async move {
        term.recv().await;
        tracing::info!("SIGTERM: demo service shutting down");
    };
    let immediate = async move {
        int.recv().await;
        tracing::info!("SIGINT: demo service exiting");
    };
    serve_until(listener, opts.rps, graceful, immediate).await
}

/// Serve the demo service on `listener`, with `rps` synthetic requests per
/// second, until `shutdown` completes; then stop accepting and let open
/// requests finish (for at most a few seconds).
///
/// A shutdown requested in `hang` mode waits until the mode changes, like a
/// wedged process that no longer gets to its shutdown code.
pub async fn serve(
    listener: TcpListener,
    rps: u32,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_until(listener, rps, shutdown, std::future::pending()).await
}

/// [`serve`], also returning at once (dropping open requests) when `immediate` completes.
async fn serve_until(
    listener: TcpListener,
    rps: u32,
    graceful: impl Future<Output = ()> + Send + 'static,
    immediate: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let addr = listener.local_addr().context("listener has no address")?;
    let demo = Arc::new(Demo::new(addr));
    let traffic = tokio::spawn(synthetic_traffic(demo.clone(), rps));
    tracing::info!(listen = %addr, pid = std::process::id(), rps, "demo service listening");

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut modes = demo.mode.subscribe();
    tokio::spawn(async move {
        graceful.await;
        if *modes.borrow() == Mode::Hang {
            tracing::warn!(
                "hung: not stopping until the fault mode changes (SIGKILL or SIGINT to force)"
            );
        }
        // Err means the service is gone already; stopping is then right too.
        let _ = modes.wait_for(|m| *m != Mode::Hang).await;
        stop_tx.send_replace(true);
    });
    let server =
        axum::serve(listener, router(demo)).with_graceful_shutdown(stopped(stop_rx.clone()));
    let drain_limit = async move {
        stopped(stop_rx).await;
        tokio::time::sleep(DRAIN).await;
    };
    let result = tokio::select! {
        r = server => r.context("demo server failed"),
        () = drain_limit => {
            tracing::warn!("connections still open after shutdown; closing them");
            Ok(())
        }
        () = immediate => Ok(()),
    };
    traffic.abort();
    result
}

/// Completes once shutdown was requested (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// A fault mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Healthy.
    Ok,
    /// Health checks fail with 500, and so does all traffic.
    Http500,
    /// Health checks never answer and no traffic completes.
    Hang,
    /// Half of the traffic fails with 500; health checks still pass.
    Errors,
    /// Traffic is slow (around 0.8 to 2.3 s); health checks still pass.
    Slow,
}

impl Mode {
    const ALL: [Mode; 5] = [
        Mode::Ok,
        Mode::Http500,
        Mode::Hang,
        Mode::Errors,
        Mode::Slow,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Mode::Ok => "ok",
            Mode::Http500 => "500",
            Mode::Hang => "hang",
            Mode::Errors => "errors",
            Mode::Slow => "slow",
        }
    }

    fn parse(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

struct Demo {
    addr: SocketAddr,
    /// A watch channel, so hung requests (and a deferred shutdown) can wait for a change.
    mode: watch::Sender<Mode>,
    stats: Mutex<Stats>,
    start_time: f64,
}

#[derive(Default)]
struct Stats {
    ok: u64,
    failed: u64,
    /// Per bucket (not cumulative); made cumulative when rendered.
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// Lock, ignoring poisoning: the data are plain counters.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Demo {
    fn new(addr: SocketAddr) -> Self {
        let start_time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Demo {
            addr,
            mode: watch::Sender::new(Mode::Ok),
            stats: Mutex::new(Stats::default()),
            start_time,
        }
    }

    fn mode(&self) -> Mode {
        *self.mode.borrow()
    }

    fn render_metrics(&self) -> String {
        let s = lock(&self.stats);
        let mut out = String::with_capacity(2048);
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "# HELP demo_requests_total Synthetic requests handled, by HTTP status code."
        );
        let _ = writeln!(out, "# TYPE demo_requests_total counter");
        let _ = writeln!(out, "demo_requests_total{{code=\"200\"}} {}", s.ok);
        let _ = writeln!(out, "demo_requests_total{{code=\"500\"}} {}", s.failed);
        let _ = writeln!(
            out,
            "# HELP demo_request_duration_seconds Latency of synthetic requests."
        );
        let _ = writeln!(out, "# TYPE demo_request_duration_seconds histogram");
        let mut cumulative = 0;
        for (le, n) in BUCKETS.iter().zip(s.buckets) {
            cumulative += n;
            let _ = writeln!(
                out,
                "demo_request_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "demo_request_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            s.count
        );
        let _ = writeln!(out, "demo_request_duration_seconds_sum {}", s.sum);
        let _ = writeln!(out, "demo_request_duration_seconds_count {}", s.count);
        let _ = writeln!(out, "# HELP demo_up Whether the demo service is running.");
        let _ = writeln!(out, "# TYPE demo_up gauge");
        let _ = writeln!(out, "demo_up 1");
        let _ = writeln!(
            out,
            "# HELP demo_mode The fault mode the demo service is in."
        );
        let _ = writeln!(out, "# TYPE demo_mode gauge");
        let _ = writeln!(out, "demo_mode{{mode=\"{}\"}} 1", self.mode().as_str());
        let _ = writeln!(
            out,
            "# HELP demo_start_time_seconds Start time of the process since the Unix epoch in seconds."
        );
        let _ = writeln!(out, "# TYPE demo_start_time_seconds gauge");
        let _ = writeln!(out, "demo_start_time_seconds {}", self.start_time);
        out
    }
}

impl Stats {
    fn record(&mut self, ok: bool, seconds: f64) {
        if ok {
            self.ok += 1;
        } else {
            self.failed += 1;
        }
        // Observations above the last bound are counted only in +Inf (= count).
        if let Some(i) = BUCKETS.iter().position(|le| seconds <= *le) {
            self.buckets[i] += 1;
        }
        self.sum += seconds;
        self.count += 1;
    }
}

fn router(demo: Arc<Demo>) -> Router {
    Router::new()
        .route("/", get(help))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/fault/{mode}", post(set_fault))
        .with_state(demo)
}

async fn help(State(demo): State<Arc<Demo>>) -> String {
    let a = demo.addr;
    format!(
        "medic demo service (pid {pid}, mode {mode})\n\
         \n\
         GET  /health        200 \"ok\" while healthy\n\
         GET  /metrics       Prometheus metrics\n\
         POST /fault/<mode>  break it: ok | 500 | hang | errors | slow\n\
         \n\
         Break it:\n\
         \x20 curl -X POST http://{a}/fault/500      # health checks fail\n\
         \x20 curl -X POST http://{a}/fault/hang     # health checks never answer, SIGTERM is ignored\n\
         \x20 curl -X POST http://{a}/fault/errors   # half the requests fail\n\
         \x20 curl -X POST http://{a}/fault/slow     # requests get slow\n\
         \x20 curl -X POST http://{a}/fault/ok       # heal it (so does a restart)\n",
        pid = std::process::id(),
        mode = demo.mode().as_str(),
    )
}

async fn health(State(demo): State<Arc<Demo>>) -> Response {
    let mut modes = demo.mode.subscribe();
    loop {
        let mode = *modes.borrow_and_update();
        match mode {
            Mode::Http500 => {
                return (StatusCode::INTERNAL_SERVER_ERROR, "fault: 500\n").into_response();
            }
            // Never answer while hung; the connection stays open. Only leaving
            // the mode releases the request (the sender lives as long as the service).
            Mode::Hang => {
                if modes.changed().await.is_err() {
                    return StatusCode::SERVICE_UNAVAILABLE.into_response();
                }
            }
            Mode::Ok | Mode::Errors | Mode::Slow => return (StatusCode::OK, "ok").into_response(),
        }
    }
}

async fn metrics(State(demo): State<Arc<Demo>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        demo.render_metrics(),
    )
        .into_response()
}

async fn set_fault(State(demo): State<Arc<Demo>>, Path(mode): Path<String>) -> Response {
    match Mode::parse(&mode) {
        Some(m) => {
            demo.mode.send_replace(m);
            tracing::info!(mode = m.as_str(), "demo fault mode set");
            (StatusCode::OK, format!("{}\n", m.as_str())).into_response()
        }
        None => (
            StatusCode::BAD_REQUEST,
            format!("unknown mode {mode:?}; expected one of ok, 500, hang, errors, slow\n"),
        )
            .into_response(),
    }
}

/// Perform `rps` synthetic requests per second, recording their outcome and
/// latency as the current mode dictates. Requests due are computed from the
/// elapsed time, so rates above the timer resolution are still met.
async fn synthetic_traffic(demo: Arc<Demo>, rps: u32) {
    if rps == 0 {
        return;
    }
    let period = (Duration::from_secs(1) / rps).max(Duration::from_millis(10));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let start = Instant::now();
    let mut done: u64 = 0;
    let mut rng = Rng::seeded();
    loop {
        tick.tick().await;
        let due = (start.elapsed().as_secs_f64() * f64::from(rps)) as u64;
        // After a stall (suspended machine), do not catch up with a burst.
        let n = (due - done).min(u64::from(rps) * 2);
        done = due;
        let mode = demo.mode();
        let mut stats = lock(&demo.stats);
        for _ in 0..n {
            let u = rng.next_f64();
            match mode {
                Mode::Ok => stats.record(true, 0.005 + 0.055 * u),
                Mode::Http500 => stats.record(false, 0.001 + 0.004 * u),
                // A hung service completes nothing.
                Mode::Hang => {}
                // Exactly every other request fails.
                Mode::Errors => {
                    let ok = (stats.ok + stats.failed).is_multiple_of(2);
                    stats.record(ok, 0.005 + 0.055 * u);
                }
                Mode::Slow => stats.record(true, 0.8 + 1.5 * u),
            }
        }
    }
}

/// xorshift64*: enough randomness for fake latencies, without a dependency.
struct Rng(u64);

impl Rng {
    fn seeded() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        Rng((u64::from(nanos) ^ 0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}
