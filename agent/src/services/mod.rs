//! The process supervisor: starts the services configured in `medic.yaml`,
//! keeps them, and reports their state as series (like Monit's `check process`).
//!
//! Design notes:
//! - Every service runs in its own process group, and signals go to the whole
//!   group, so a shell wrapper's children stop with it.
//! - A pidfile per service (`<state_dir>/services/<name>.pid`) lets a medic that
//!   was killed adopt the services its predecessor started instead of starting
//!   second copies.
//! - Exits are noticed by events (`wait()` for own children, a pidfd for adopted
//!   processes), not by polling, so detectors see `medic_service_up == 0` at once.

use std::collections::BTreeMap;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc::error::{SendTimeoutError, TrySendError};
use tokio::sync::{mpsc, watch};
use tokio::task::{AbortHandle, JoinSet};

use crate::config::duration::Duration;
use crate::series::{Batch, Labels, Millis, Sample, now_millis};

#[cfg(test)]
mod tests;

/// How often the current state of every service is resent, so that a detector
/// that missed an event (or started late) still sees the state.
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(1);
/// How long a state change may wait for room in the sample channel before it is
/// dropped; supervision must never stall behind a slow consumer.
const EVENT_SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);
/// After SIGKILL, how long to wait for the exit before giving up (a process in
/// uninterruptible sleep cannot die until its I/O finishes).
const KILL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// How often the remaining members of a stopping process group are looked for.
const GROUP_POLL: std::time::Duration = std::time::Duration::from_millis(25);
/// Poll interval for adopted processes when pidfds are unavailable.
const FALLBACK_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// Source name of the batches the supervisor sends.
pub const SOURCE: &str = "services";

/// How one service is started and kept.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Program and arguments. `argv[0]` is looked up in `PATH` (`medic` means
    /// this medic binary). No shell is
    /// involved, so every argument reaches the program exactly as written.
    pub argv: Vec<String>,
    /// Environment variables added to the environment medic inherited.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory (default: medic's own).
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// The signal that asks the service to stop; sent to its whole process group.
    #[serde(default)]
    pub stop_signal: StopSignal,
    /// How long to wait after `stop_signal` before SIGKILLing the process group.
    #[serde(default = "default_grace")]
    pub grace: Duration,
    /// What to do when the service exits on its own.
    #[serde(default)]
    pub on_exit: OnExit,
    /// Delays between quick successive restarts.
    #[serde(default)]
    pub backoff: RestartBackoff,
    /// File the service's stdout and stderr are appended to
    /// (default `<state_dir>/services/<name>.log`).
    #[serde(default)]
    pub log: Option<PathBuf>,
}

fn default_grace() -> Duration {
    Duration::from_secs(5)
}

/// How a restart stops the old process; `None` uses the service's own
/// `stop_signal` and `grace`. A runbook step for a hung service can say
/// `stop_signal: KILL` (or `grace: 0s`): a hung process will not honour
/// SIGTERM, and waiting out the grace only prolongs the outage.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StopOptions {
    /// Signal to send instead of the configured one.
    pub signal: Option<StopSignal>,
    /// Grace instead of the configured one.
    pub grace: Option<std::time::Duration>,
}

/// A signal that asks a service to stop. Written `TERM` or `SIGTERM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
pub enum StopSignal {
    /// SIGTERM (the default).
    #[default]
    #[serde(rename = "TERM", alias = "SIGTERM")]
    Term,
    /// SIGINT.
    #[serde(rename = "INT", alias = "SIGINT")]
    Int,
    /// SIGQUIT.
    #[serde(rename = "QUIT", alias = "SIGQUIT")]
    Quit,
    /// SIGHUP.
    #[serde(rename = "HUP", alias = "SIGHUP")]
    Hup,
    /// SIGKILL: no graceful stop at all.
    #[serde(rename = "KILL", alias = "SIGKILL")]
    Kill,
    /// SIGUSR1.
    #[serde(rename = "USR1", alias = "SIGUSR1")]
    Usr1,
    /// SIGUSR2.
    #[serde(rename = "USR2", alias = "SIGUSR2")]
    Usr2,
}

impl StopSignal {
    /// The signal number.
    pub fn number(self) -> libc::c_int {
        match self {
            StopSignal::Term => libc::SIGTERM,
            StopSignal::Int => libc::SIGINT,
            StopSignal::Quit => libc::SIGQUIT,
            StopSignal::Hup => libc::SIGHUP,
            StopSignal::Kill => libc::SIGKILL,
            StopSignal::Usr1 => libc::SIGUSR1,
            StopSignal::Usr2 => libc::SIGUSR2,
        }
    }

    /// The conventional name, e.g. `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Term => "SIGTERM",
            StopSignal::Int => "SIGINT",
            StopSignal::Quit => "SIGQUIT",
            StopSignal::Hup => "SIGHUP",
            StopSignal::Kill => "SIGKILL",
            StopSignal::Usr1 => "SIGUSR1",
            StopSignal::Usr2 => "SIGUSR2",
        }
    }
}

/// What happens when a service exits by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnExit {
    /// Only report the exit (`medic_service_up` becomes 0); runbooks decide.
    #[default]
    #[serde(alias = "Report")]
    Report,
    /// Restart at once, subject to the back-off.
    #[serde(alias = "Restart")]
    Restart,
}

/// Delays between restarts of a service that keeps exiting soon after start.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RestartBackoff {
    /// The first delay, used from the second quick restart on (a restart
    /// less than `min_uptime` after the previous start); the first is immediate.
    pub initial: Duration,
    /// The delay doubles on each further quick restart up to this.
    pub max: Duration,
    /// A service that stayed up this long starts again without delay, and its
    /// back-off starts over.
    pub min_uptime: Duration,
}

impl Default for RestartBackoff {
    fn default() -> Self {
        RestartBackoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            min_uptime: Duration::from_secs(10),
        }
    }
}

/// The state of one service, for the API and the CLI.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    /// Service name in `medic.yaml`.
    pub name: String,
    /// Pid of the running process (the leader of its process group).
    pub pid: Option<u32>,
    /// Whether the process is running.
    pub running: bool,
    /// When the running process started.
    pub started_at: Option<Millis>,
    /// Restarts since this medic began supervising the service.
    pub restarts: u64,
    /// Whether the process was started by an earlier medic and adopted.
    pub adopted: bool,
}

/// What a restart did.
#[derive(Debug, Clone, Serialize)]
pub struct RestartOutcome {
    /// The process that was stopped, if one was running.
    pub old_pid: Option<u32>,
    /// The new process.
    pub new_pid: u32,
    /// Back-off waited between stop and start.
    pub waited_backoff_ms: u64,
    /// Whether the old process group needed SIGKILL after the grace period.
    pub killed: bool,
}

/// Why a supervisor operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// No service of that name is configured.
    #[error("unknown service {0:?}")]
    Unknown(String),
    /// The process could not be started.
    #[error("failed to start {service}: {source}")]
    Spawn {
        /// Service name.
        service: String,
        /// The error from spawning.
        source: std::io::Error,
    },
    /// The log file could not be opened, so the service was not started.
    #[error("failed to start {service}: cannot open log file {}: {source}", path.display())]
    Log {
        /// Service name.
        service: String,
        /// The log file.
        path: PathBuf,
        /// The error from opening it.
        source: std::io::Error,
    },
    /// The configuration cannot be used.
    #[error("invalid service {service:?}: {reason}")]
    Invalid {
        /// Service name.
        service: String,
        /// What is wrong.
        reason: String,
    },
    /// The process survived SIGKILL (it is probably stuck in the kernel).
    #[error("{service} (pid {pid}) did not exit even after SIGKILL")]
    StopTimeout {
        /// Service name.
        service: String,
        /// The process that would not exit.
        pid: u32,
    },
    /// The supervisor is shutting down and starts nothing more.
    #[error("the supervisor is shutting down")]
    ShuttingDown,
}

/// Starts, keeps, stops and restarts the configured services.
///
/// Cheap to clone; clones share the same services.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("state_dir", &self.inner.shared.state_dir)
            .finish_non_exhaustive()
    }
}

struct Inner {
    shared: Arc<Shared>,
    services: Mutex<BTreeMap<String, Arc<Service>>>,
    /// Serializes `apply` calls so two reloads never race to start a service.
    apply_lock: tokio::sync::Mutex<()>,
    heartbeat: Mutex<Option<AbortHandle>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(h) = lock(&self.heartbeat).take() {
            h.abort();
        }
    }
}

/// What the background tasks (exit watchers, automatic restarts) need; they
/// hold this rather than the `Supervisor` so the services outlive nothing.
struct Shared {
    state_dir: PathBuf,
    samples: mpsc::Sender<Batch>,
    /// Set once by `shutdown`: nothing starts any more, back-off sleeps end.
    closing: watch::Sender<bool>,
}

struct Service {
    name: String,
    /// Serializes operations (start, stop, restart) on this service.
    op: tokio::sync::Mutex<()>,
    state: Mutex<ServiceState>,
}

struct ServiceState {
    config: ServiceConfig,
    instance: Option<Instance>,
    next_generation: u64,
    /// Bumped by every start and stop; a pending automatic restart only goes
    /// ahead if nothing happened to the service since the exit it answers.
    epoch: u64,
    restarts: u64,
    last_start: Option<Instant>,
    last_backoff: Option<std::time::Duration>,
    removed: bool,
    /// medic itself stopped the service (restart, stop, shutdown): it is not
    /// reported as down, or a restart would open a "process down" incident.
    stopped_by_medic: bool,
}

/// One running process of a service.
struct Instance {
    generation: u64,
    pid: u32,
    /// Whether the process leads its own process group (then the group is signalled).
    own_group: bool,
    started_at: Option<Millis>,
    adopted: bool,
    /// Stop settings of the configuration the process was started with.
    stop_signal: StopSignal,
    grace: std::time::Duration,
    /// Set before a stop signal is sent, so the exit is not taken as a failure.
    stopping: Arc<AtomicBool>,
    /// Becomes true once the exit has been recorded.
    exited: watch::Receiver<bool>,
    #[cfg_attr(not(test), allow(dead_code))]
    watcher: Option<AbortHandle>,
}

/// Lock a std mutex, ignoring poisoning: the state stays consistent because no
/// code panics while holding these locks.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn services_dir(&self) -> PathBuf {
        self.state_dir.join("services")
    }

    fn pidfile(&self, name: &str) -> PathBuf {
        self.services_dir().join(format!("{name}.pid"))
    }

    fn is_closing(&self) -> bool {
        *self.closing.borrow()
    }

    /// Sleep for `d`, or less if the supervisor shuts down meanwhile.
    async fn backoff_sleep(&self, d: std::time::Duration) {
        if d.is_zero() {
            return;
        }
        let mut closing = self.closing.subscribe();
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = closing.wait_for(|c| *c) => {}
        }
    }

    /// Send a state change; wait briefly for room, then drop it with a warning.
    async fn send(&self, batch: Batch) {
        match self.samples.send_timeout(batch, EVENT_SEND_TIMEOUT).await {
            Ok(()) => {}
            Err(SendTimeoutError::Timeout(b)) => {
                tracing::warn!(service = %b.target, "sample channel full; dropped a service state change");
            }
            Err(SendTimeoutError::Closed(_)) => {}
        }
    }
}

impl Service {
    fn new(name: &str, config: ServiceConfig) -> Self {
        Service {
            name: name.to_string(),
            op: tokio::sync::Mutex::new(()),
            state: Mutex::new(ServiceState {
                config,
                instance: None,
                next_generation: 0,
                epoch: 0,
                restarts: 0,
                last_start: None,
                last_backoff: None,
                removed: false,
                stopped_by_medic: false,
            }),
        }
    }

    fn batch(&self) -> Batch {
        let st = lock(&self.state);
        let at = now_millis();
        let labels: Labels = BTreeMap::from([("service".to_string(), self.name.clone())]);
        let sample = |name: &str, value: f64| Sample {
            name: name.to_string(),
            labels: labels.clone(),
            value,
            at,
        };
        let running = st.instance.is_some();
        let mut samples = vec![sample("medic_service_restarts_total", st.restarts as f64)];
        if running || !st.stopped_by_medic {
            samples.push(sample("medic_service_up", if running { 1.0 } else { 0.0 }));
        }
        // No pid series while stopped: there is no process to name.
        if let Some(i) = &st.instance {
            samples.push(sample("medic_service_pid", f64::from(i.pid)));
        }
        Batch {
            source: SOURCE.to_string(),
            target: self.name.clone(),
            at,
            samples,
            // Reports only the service's own series, and omits `up` while
            // medic itself restarts it: absence is not staleness here.
            complete: false,
        }
    }

    fn status(&self) -> ServiceStatus {
        let st = lock(&self.state);
        let i = st.instance.as_ref();
        ServiceStatus {
            name: self.name.clone(),
            pid: i.map(|i| i.pid),
            running: i.is_some(),
            started_at: i.and_then(|i| i.started_at),
            restarts: st.restarts,
            adopted: i.is_some_and(|i| i.adopted),
        }
    }

    fn set_watcher(&self, generation: u64, handle: AbortHandle) {
        let mut st = lock(&self.state);
        if let Some(i) = st.instance.as_mut().filter(|i| i.generation == generation) {
            i.watcher = Some(handle);
        }
    }
}

impl Supervisor {
    /// A supervisor keeping pidfiles and default logs under `<state_dir>/services`
    /// and sending state changes and heartbeats on `samples`.
    pub fn new(state_dir: PathBuf, samples: mpsc::Sender<Batch>) -> Self {
        let (closing, _) = watch::channel(false);
        Supervisor {
            inner: Arc::new(Inner {
                shared: Arc::new(Shared {
                    state_dir,
                    samples,
                    closing,
                }),
                services: Mutex::new(BTreeMap::new()),
                apply_lock: tokio::sync::Mutex::new(()),
                heartbeat: Mutex::new(None),
            }),
        }
    }

    /// Make the running services match `services`: start (or adopt) new ones,
    /// keep running ones (a changed configuration applies from their next
    /// restart), stop and forget removed ones.
    ///
    /// Every service is attempted; the first error is returned. A service that
    /// failed to start stays known (not running), so it can be restarted.
    pub async fn apply(
        &self,
        services: &BTreeMap<String, ServiceConfig>,
    ) -> Result<(), SupervisorError> {
        for (name, config) in services {
            validate(name, config)?;
        }
        let shared = &self.inner.shared;
        if shared.is_closing() {
            return Err(SupervisorError::ShuttingDown);
        }
        let _apply = self.inner.apply_lock.lock().await;
        self.ensure_heartbeat();

        let (added, removed) = {
            let mut map = lock(&self.inner.services);
            let gone: Vec<String> = map
                .keys()
                .filter(|n| !services.contains_key(*n))
                .cloned()
                .collect();
            let removed: Vec<Arc<Service>> = gone.iter().filter_map(|n| map.remove(n)).collect();
            for svc in &removed {
                lock(&svc.state).removed = true;
            }
            let mut added = Vec::new();
            for (name, config) in services {
                match map.get(name) {
                    Some(svc) => lock(&svc.state).config = config.clone(),
                    None => {
                        let svc = Arc::new(Service::new(name, config.clone()));
                        map.insert(name.clone(), svc.clone());
                        added.push(svc);
                    }
                }
            }
            (added, removed)
        };

        let mut first_err = None;
        // Stop removed services first: a renamed service may want the same port.
        for svc in removed {
            let _op = svc.op.lock().await;
            match stop_instance(&svc).await {
                Ok(_) => tracing::info!(service = %svc.name, "service removed from configuration"),
                Err(e) => {
                    tracing::warn!(service = %svc.name, error = %e, "failed to stop removed service");
                    first_err.get_or_insert(e);
                }
            }
        }
        for svc in added {
            let _op = svc.op.lock().await;
            if adopt(shared, &svc).await {
                continue;
            }
            if let Err(e) = start(shared, &svc, false).await {
                tracing::error!(service = %svc.name, error = %e, "failed to start service");
                retry_if_wanted(shared, &svc);
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Stop the service (its stop signal, then SIGKILL after the grace period)
    /// and start it again, after the back-off if it was started recently.
    ///
    /// Concurrent restarts of one service run one after the other. A service
    /// that is not running is just started.
    pub async fn restart(&self, name: &str) -> Result<RestartOutcome, SupervisorError> {
        self.restart_with(name, StopOptions::default()).await
    }

    /// Restart, stopping the old process as `stop` says.
    pub async fn restart_with(
        &self,
        name: &str,
        stop: StopOptions,
    ) -> Result<RestartOutcome, SupervisorError> {
        let svc = self.service(name)?;
        let shared = &self.inner.shared;
        self.ensure_heartbeat();
        let _op = svc.op.lock().await;
        if lock(&svc.state).removed {
            return Err(SupervisorError::Unknown(name.to_string()));
        }
        if shared.is_closing() {
            return Err(SupervisorError::ShuttingDown);
        }
        lock(&svc.state).stopped_by_medic = true;
        let stopped = stop_instance_with(&svc, stop).await;
        if stopped.is_err() {
            lock(&svc.state).stopped_by_medic = false;
        }
        let stopped = stopped?;
        let wait = take_backoff(&mut lock(&svc.state));
        if !wait.is_zero() {
            tracing::info!(service = %svc.name, backoff_ms = wait.as_millis() as u64, "waiting before restart (back-off)");
        }
        shared.backoff_sleep(wait).await;
        let started = start(shared, &svc, true).await;
        lock(&svc.state).stopped_by_medic = false;
        let new_pid = match started {
            Ok(pid) => pid,
            Err(e) => {
                retry_if_wanted(shared, &svc);
                // Not running and not by choice: report it.
                shared.send(svc.batch()).await;
                return Err(e);
            }
        };
        Ok(RestartOutcome {
            old_pid: stopped.map(|(pid, _)| pid),
            new_pid,
            waited_backoff_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            killed: stopped.is_some_and(|(_, killed)| killed),
        })
    }

    /// Stop the service and leave it stopped (also cancels a pending automatic
    /// restart). Stopping a stopped service does nothing.
    pub async fn stop(&self, name: &str) -> Result<(), SupervisorError> {
        let svc = self.service(name)?;
        let _op = svc.op.lock().await;
        lock(&svc.state).stopped_by_medic = true;
        stop_instance(&svc).await.map(|_| ())
    }

    /// The state of every service, by name.
    pub async fn status(&self) -> Vec<ServiceStatus> {
        let services: Vec<Arc<Service>> = lock(&self.inner.services).values().cloned().collect();
        services.iter().map(|s| s.status()).collect()
    }

    /// Whether a service of that name is configured.
    pub fn has_service(&self, name: &str) -> bool {
        lock(&self.inner.services).contains_key(name)
    }

    /// Stop every service (stop signal, grace, SIGKILL), in parallel, for a
    /// graceful exit of medic. Nothing is started afterwards.
    pub async fn shutdown(&self) {
        self.inner.shared.closing.send_replace(true);
        let services: Vec<Arc<Service>> = lock(&self.inner.services).values().cloned().collect();
        let mut stops = JoinSet::new();
        for svc in services {
            stops.spawn(async move {
                let _op = svc.op.lock().await;
                lock(&svc.state).stopped_by_medic = true;
                if let Err(e) = stop_instance(&svc).await {
                    tracing::warn!(service = %svc.name, error = %e, "failed to stop service at shutdown");
                }
            });
        }
        while stops.join_next().await.is_some() {}
        if let Some(h) = lock(&self.inner.heartbeat).take() {
            h.abort();
        }
    }

    /// Stop supervising without stopping anything, as if medic had been killed:
    /// the services keep running and a new supervisor adopts them.
    #[cfg(test)]
    pub(crate) fn detach(self) {
        self.inner.shared.closing.send_replace(true);
        if let Some(h) = lock(&self.inner.heartbeat).take() {
            h.abort();
        }
        for svc in lock(&self.inner.services).values() {
            if let Some(w) = lock(&svc.state)
                .instance
                .as_ref()
                .and_then(|i| i.watcher.as_ref())
            {
                w.abort();
            }
        }
    }

    fn service(&self, name: &str) -> Result<Arc<Service>, SupervisorError> {
        lock(&self.inner.services)
            .get(name)
            .cloned()
            .ok_or_else(|| SupervisorError::Unknown(name.to_string()))
    }

    /// Start the heartbeat task (lazily, because `new` may run outside a runtime).
    fn ensure_heartbeat(&self) {
        let mut hb = lock(&self.inner.heartbeat);
        if hb.is_none() {
            *hb = Some(tokio::spawn(heartbeat(Arc::downgrade(&self.inner))).abort_handle());
        }
    }
}

/// Resend every service's state each second. Holds only a weak reference so a
/// dropped supervisor ends it.
async fn heartbeat(inner: Weak<Inner>) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // immediate; state changes were already sent as they happened
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let services: Vec<Arc<Service>> = lock(&inner.services).values().cloned().collect();
        let samples = inner.shared.samples.clone();
        drop(inner);
        for svc in services {
            // A heartbeat is repeated next second anyway, so never wait for room.
            if let Err(TrySendError::Full(b)) = samples.try_send(svc.batch()) {
                tracing::debug!(service = %b.target, "sample channel full; skipped a heartbeat");
            }
        }
    }
}

fn validate(name: &str, config: &ServiceConfig) -> Result<(), SupervisorError> {
    let invalid = |reason: &str| SupervisorError::Invalid {
        service: name.to_string(),
        reason: reason.to_string(),
    };
    // The name becomes a file name under the state directory.
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(invalid("the name must be a plain file name"));
    }
    match config.argv.first() {
        None => return Err(invalid("argv is empty")),
        Some(a) if a.is_empty() => return Err(invalid("argv[0] is empty")),
        _ => {}
    }
    if config.argv.iter().any(|a| a.contains('\0')) {
        return Err(invalid("argv contains a NUL byte"));
    }
    if config
        .env
        .iter()
        .any(|(k, v)| k.is_empty() || k.contains(['=', '\0']) || v.contains('\0'))
    {
        return Err(invalid(
            "env has a name that is empty or contains '=', or a NUL byte",
        ));
    }
    Ok(())
}

/// The back-off before the next start, updating the back-off state. If the
/// last start was less than `min_uptime` ago: nothing the first time, then the
/// initial delay, doubled for each further quick restart up to `max`; nothing
/// after a long enough run.
fn take_backoff(st: &mut ServiceState) -> std::time::Duration {
    let b = st.config.backoff;
    let quick = st
        .last_start
        .is_some_and(|t| t.elapsed() < b.min_uptime.std());
    if !quick {
        st.last_backoff = None;
        return std::time::Duration::ZERO;
    }
    // The first quick restart is immediate (recovery speed matters most
    // then); only a service that keeps failing soon after each restart is
    // slowed down: initial, then doubling up to max.
    let next = match st.last_backoff {
        None => std::time::Duration::ZERO,
        Some(prev) if prev.is_zero() => b.initial.std(),
        Some(prev) => prev.saturating_mul(2),
    }
    .min(b.max.std());
    st.last_backoff = Some(next);
    next
}

/// With `on_exit: restart`, keep trying to start a service whose start failed.
fn retry_if_wanted(shared: &Arc<Shared>, svc: &Arc<Service>) {
    let epoch = {
        let st = lock(&svc.state);
        if st.config.on_exit != OnExit::Restart || st.removed || shared.is_closing() {
            return;
        }
        st.epoch
    };
    spawn_auto_restart(shared.clone(), svc.clone(), epoch);
}

// The spawns below are in plain functions on purpose: `start` spawns the exit
// watcher, which spawns `auto_restart`, which awaits `start`. Spawning inside the
// async fns themselves would make the compiler prove `Send` for that cycle
// within its own definition, which it cannot.

fn spawn_auto_restart(shared: Arc<Shared>, svc: Arc<Service>, epoch: u64) {
    tokio::spawn(auto_restart(shared, svc, epoch));
}

fn spawn_watcher(
    shared: &Arc<Shared>,
    svc: &Arc<Service>,
    generation: u64,
    source: ExitSource,
    exited: watch::Sender<bool>,
    stopping: Arc<AtomicBool>,
) {
    let watcher = tokio::spawn(watch_exit(
        shared.clone(),
        svc.clone(),
        generation,
        source,
        exited,
        stopping,
    ));
    svc.set_watcher(generation, watcher.abort_handle());
}

/// Restart a service that exited by itself, after the back-off, unless
/// something else (a stop, a restart, removal, shutdown) happened meanwhile.
async fn auto_restart(shared: Arc<Shared>, svc: Arc<Service>, epoch: u64) {
    let wanted = |st: &ServiceState| {
        st.epoch == epoch && st.instance.is_none() && !st.removed && !shared.is_closing()
    };
    loop {
        let wait = {
            let mut st = lock(&svc.state);
            if !wanted(&st) {
                return;
            }
            take_backoff(&mut st)
        };
        if !wait.is_zero() {
            tracing::info!(service = %svc.name, backoff_ms = wait.as_millis() as u64, "restarting after back-off");
        }
        shared.backoff_sleep(wait).await;
        let _op = svc.op.lock().await;
        if !wanted(&lock(&svc.state)) {
            return;
        }
        match start(&shared, &svc, true).await {
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(service = %svc.name, error = %e, "automatic restart failed; will retry");
            }
        }
    }
}

/// Start a new process for the service. The caller holds the service's `op` lock.
async fn start(
    shared: &Arc<Shared>,
    svc: &Arc<Service>,
    is_restart: bool,
) -> Result<u32, SupervisorError> {
    if shared.is_closing() {
        return Err(SupervisorError::ShuttingDown);
    }
    let config = lock(&svc.state).config.clone();
    let child = match spawn_child(shared, &svc.name, &config) {
        Ok(child) => child,
        Err(e) => {
            // Counts as a start for the back-off, so a failing service is retried
            // ever more slowly rather than in a tight loop.
            lock(&svc.state).last_start = Some(Instant::now());
            shared.send(svc.batch()).await;
            return Err(e);
        }
    };
    let Some(pid) = child.id() else {
        // Only possible once the child was reaped, which nothing did yet.
        return Err(SupervisorError::Spawn {
            service: svc.name.clone(),
            source: std::io::Error::other("spawned process has no pid"),
        });
    };
    let (exited_tx, exited_rx) = watch::channel(false);
    let stopping = Arc::new(AtomicBool::new(false));
    let generation = {
        let mut st = lock(&svc.state);
        let generation = st.next_generation;
        st.next_generation += 1;
        st.epoch += 1;
        if is_restart {
            st.restarts += 1;
        }
        st.last_start = Some(Instant::now());
        st.stopped_by_medic = false;
        st.instance = Some(Instance {
            generation,
            pid,
            own_group: true,
            started_at: Some(now_millis()),
            adopted: false,
            stop_signal: config.stop_signal,
            grace: config.grace.std(),
            stopping: stopping.clone(),
            exited: exited_rx,
            watcher: None,
        });
        // Under the state lock, so it cannot interleave with the removal of the
        // previous process's pidfile by its exit watcher.
        write_pidfile(&shared.pidfile(&svc.name), pid);
        generation
    };
    spawn_watcher(
        shared,
        svc,
        generation,
        ExitSource::Child(child),
        exited_tx,
        stopping,
    );
    // Only argv[0]: arguments and environment may carry secrets.
    tracing::info!(service = %svc.name, pid, program = %config.argv[0], restart = is_restart, "service started");
    shared.send(svc.batch()).await;
    Ok(pid)
}

fn spawn_child(
    shared: &Shared,
    name: &str,
    config: &ServiceConfig,
) -> Result<tokio::process::Child, SupervisorError> {
    let log_path = config
        .log
        .clone()
        .unwrap_or_else(|| shared.services_dir().join(format!("{name}.log")));
    let log_err = |source| SupervisorError::Log {
        service: name.to_string(),
        path: log_path.clone(),
        source,
    };
    let stdout = open_log(&log_path).map_err(log_err)?;
    let stderr = stdout.try_clone().map_err(log_err)?;
    let (program, args) = config
        .argv
        .split_first()
        .ok_or_else(|| SupervisorError::Invalid {
            service: name.to_string(),
            reason: "argv is empty".to_string(),
        })?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .envs(&config.env)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        // Own process group: signals reach the whole service, and a Ctrl-C
        // aimed at medic's terminal does not.
        .process_group(0)
        // The service must survive medic, so that a new medic can adopt it.
        .kill_on_drop(false);
    if let Some(cwd) = &config.cwd {
        cmd.current_dir(cwd);
    }
    cmd.spawn().map_err(|source| SupervisorError::Spawn {
        service: name.to_string(),
        source,
    })
}

fn open_log(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
}

/// Pidfile: the pid on the first line, its start time (clock ticks after boot,
/// from /proc) on the second, so a recycled pid is not mistaken for the service.
fn write_pidfile(path: &Path, pid: u32) {
    let start = proc_stat(pid)
        .map(|s| s.starttime.to_string())
        .unwrap_or_default();
    let tmp = path.with_extension("pid.tmp");
    let result = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&tmp, format!("{pid}\n{start}\n")))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        // Not fatal: the service runs; only adoption after a crash is lost.
        tracing::warn!(path = %path.display(), error = %e, "cannot write pidfile");
    }
}

fn remove_pidfile(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot remove pidfile"),
    }
}

/// If the pidfile names a live process running the configured argv (left
/// behind by a medic that died), supervise it instead of starting a second
/// copy. Otherwise remove the stale pidfile. The caller holds the `op` lock.
async fn adopt(shared: &Arc<Shared>, svc: &Arc<Service>) -> bool {
    let path = shared.pidfile(&svc.name);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return false;
    };
    let mut lines = text.lines();
    let pid = lines.next().and_then(|l| l.trim().parse::<u32>().ok());
    let recorded_start = lines.next().and_then(|l| l.trim().parse::<u64>().ok());
    let config = lock(&svc.state).config.clone();

    let candidate = pid.filter(|&p| p > 1 && p != std::process::id());
    // Open the pidfd before checking, so that the checks and the watch are
    // about the same process even if the pid is recycled meanwhile.
    let pidfd = candidate.map(pidfd_open);
    let mut verified = None;
    if let Some(pid) = candidate
        && let Some(stat) = proc_stat(pid)
        && !stat.is_dead()
        && recorded_start.is_none_or(|s| s == stat.starttime)
        && settled_cmdline(pid)
            .await
            .is_some_and(|c| cmdline_matches(&c, &config.argv))
    {
        verified = Some((pid, stat));
    }
    let Some((pid, stat)) = verified else {
        tracing::info!(service = %svc.name, pid = ?pid, "removing stale pidfile");
        remove_pidfile(&path);
        return false;
    };
    let pidfd = match pidfd {
        Some(Ok(fd)) => Some(fd),
        Some(Err(e)) => {
            tracing::debug!(service = %svc.name, pid, error = %e, "pidfd_open failed; polling instead");
            None
        }
        None => None,
    };

    let (exited_tx, exited_rx) = watch::channel(false);
    let stopping = Arc::new(AtomicBool::new(false));
    let generation = {
        let mut st = lock(&svc.state);
        let generation = st.next_generation;
        st.next_generation += 1;
        st.epoch += 1;
        // Unknown start time: treat it as a long run, so no back-off.
        st.last_start = None;
        st.instance = Some(Instance {
            generation,
            pid,
            // Signal the group only if the process leads it: a foreign pgid
            // could be medic's own or a shell's.
            own_group: stat.pgrp == i64::from(pid),
            started_at: start_time_millis(stat.starttime),
            adopted: true,
            stop_signal: config.stop_signal,
            grace: config.grace.std(),
            stopping: stopping.clone(),
            exited: exited_rx,
            watcher: None,
        });
        generation
    };
    spawn_watcher(
        shared,
        svc,
        generation,
        ExitSource::Foreign {
            pid,
            pidfd,
            starttime: stat.starttime,
        },
        exited_tx,
        stopping,
    );
    tracing::info!(service = %svc.name, pid, "adopted running service left by a previous medic");
    shared.send(svc.batch()).await;
    true
}

/// Whether a process's command line is the configured argv. Element 0 is
/// compared by basename (it may have been resolved through PATH). A script
/// started through its `#!` line shows up with the interpreter (and maybe one
/// interpreter argument) in front, so up to two leading extra elements are allowed.
fn cmdline_matches(cmdline: &[Vec<u8>], argv: &[String]) -> bool {
    let Some(extra) = cmdline.len().checked_sub(argv.len()) else {
        return false;
    };
    if argv.is_empty() || extra > 2 {
        return false;
    }
    let tail = &cmdline[extra..];
    basename(&tail[0]) == basename(argv[0].as_bytes())
        && tail[1..]
            .iter()
            .zip(&argv[1..])
            .all(|(a, b)| a.as_slice() == b.as_bytes())
}

fn basename(path: &[u8]) -> &[u8] {
    path.rsplit(|&b| b == b'/').next().unwrap_or(path)
}

enum ExitSource {
    /// Our own child: `wait()` reports the exit and reaps it.
    Child(tokio::process::Child),
    /// An adopted process, which someone else reaps.
    Foreign {
        pid: u32,
        pidfd: Option<OwnedFd>,
        starttime: u64,
    },
}

/// Wait for the process to exit, record it, and restart it if so configured.
async fn watch_exit(
    shared: Arc<Shared>,
    svc: Arc<Service>,
    generation: u64,
    source: ExitSource,
    exited: watch::Sender<bool>,
    stopping: Arc<AtomicBool>,
) {
    let how = match source {
        ExitSource::Child(mut child) => match child.wait().await {
            Ok(status) => status.to_string(),
            Err(e) => format!("wait failed: {e}"),
        },
        ExitSource::Foreign {
            pid,
            pidfd,
            starttime,
        } => {
            wait_foreign(pid, pidfd, starttime).await;
            "exited (adopted process: status unknown)".to_string()
        }
    };
    let expected = stopping.load(Ordering::SeqCst);
    let recorded = {
        let mut st = lock(&svc.state);
        if st
            .instance
            .as_ref()
            .is_some_and(|i| i.generation == generation)
        {
            let instance = st.instance.take();
            remove_pidfile(&shared.pidfile(&svc.name));
            let restart = !expected
                && st.config.on_exit == OnExit::Restart
                && !st.removed
                && !shared.is_closing();
            instance.map(|i| (i.pid, i.own_group, restart, st.epoch))
        } else {
            None
        }
    };
    if let Some((pid, true, _, _)) = recorded
        && !expected
        && group_alive(pid)
    {
        // The service is its process group. With the leader gone nothing
        // supervises the rest, and left alone they would hold on to ports and
        // files that the next start needs.
        tracing::warn!(service = %svc.name, pid, "service leader exited but its process group lives on; killing the group");
        send_signal(pid, true, libc::SIGKILL);
    }
    // After the state update, so a stopper that wakes up sees the service stopped.
    exited.send_replace(true);
    let Some((pid, _, restart, epoch)) = recorded else {
        return;
    };
    if expected {
        tracing::info!(service = %svc.name, pid, status = %how, "service stopped");
    } else {
        tracing::warn!(service = %svc.name, pid, status = %how, "service exited unexpectedly");
    }
    shared.send(svc.batch()).await;
    if restart {
        spawn_auto_restart(shared, svc, epoch);
    }
}

/// Wait until a process that is not our child has exited: a pidfd becomes
/// readable at exit; without pidfds (old kernels, seccomp), poll.
async fn wait_foreign(pid: u32, pidfd: Option<OwnedFd>, starttime: u64) {
    if let Some(fd) = pidfd {
        // SAFETY: the OwnedFd is a valid open fd, owned by the AsyncFd (and
        // closed only when it is dropped), so it refers to the same pidfd throughout.
        match unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) } {
            Ok(fd) => match fd.readable().await {
                Ok(_) => return,
                Err(e) => tracing::debug!(pid, error = %e, "pidfd wait failed; polling instead"),
            },
            Err(e) => tracing::debug!(pid, error = %e, "cannot register pidfd; polling instead"),
        }
    }
    while process_alive(pid, Some(starttime)) {
        tokio::time::sleep(FALLBACK_POLL).await;
    }
}

fn pidfd_open(pid: u32) -> std::io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).map_err(std::io::Error::other)?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd = RawFd::try_from(fd).map_err(std::io::Error::other)?;
    // SAFETY: the kernel just returned this fd to us, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Stop the running process of a service, if any: the stop signal to its
/// group, up to `grace` for the group to go, then SIGKILL. Returns the pid and
/// whether SIGKILL was needed. The caller holds the `op` lock.
async fn stop_instance(svc: &Service) -> Result<Option<(u32, bool)>, SupervisorError> {
    stop_instance_with(svc, StopOptions::default()).await
}

async fn stop_instance_with(
    svc: &Service,
    opts: StopOptions,
) -> Result<Option<(u32, bool)>, SupervisorError> {
    let (pid, own_group, exited, stopping, signal, grace) = {
        let mut st = lock(&svc.state);
        // Also cancels an automatic restart waiting out its back-off.
        st.epoch += 1;
        let Some(i) = &st.instance else {
            return Ok(None);
        };
        (
            i.pid,
            i.own_group,
            i.exited.clone(),
            i.stopping.clone(),
            opts.signal.unwrap_or(i.stop_signal),
            opts.grace.unwrap_or(i.grace),
        )
    };
    stopping.store(true, Ordering::SeqCst);
    tracing::info!(service = %svc.name, pid, signal = signal.name(), "stopping service");
    let killed = terminate(&svc.name, pid, own_group, exited, signal, grace).await?;
    Ok(Some((pid, killed)))
}

async fn terminate(
    name: &str,
    pid: u32,
    own_group: bool,
    mut exited: watch::Receiver<bool>,
    signal: StopSignal,
    grace: std::time::Duration,
) -> Result<bool, SupervisorError> {
    let deadline = tokio::time::Instant::now() + grace;
    send_signal(pid, own_group, signal.number());
    let leader_gone = tokio::time::timeout_at(deadline, exited.wait_for(|e| *e))
        .await
        .is_ok();
    // The rest of the group (a wrapper's children) gets the same grace period.
    let mut group_gone = !own_group || !group_alive(pid);
    while !group_gone && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(GROUP_POLL).await;
        group_gone = !group_alive(pid);
    }
    if leader_gone && group_gone {
        return Ok(false);
    }
    tracing::warn!(
        service = name,
        pid,
        grace_ms = grace.as_millis() as u64,
        "service did not stop within its grace period; sending SIGKILL"
    );
    send_signal(pid, own_group, libc::SIGKILL);
    if tokio::time::timeout(KILL_WAIT, exited.wait_for(|e| *e))
        .await
        .is_err()
    {
        return Err(SupervisorError::StopTimeout {
            service: name.to_string(),
            pid,
        });
    }
    Ok(true)
}

fn send_signal(pid: u32, own_group: bool, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    let target = if own_group { -pid } else { pid };
    // SAFETY: kill(2) has no memory effects; ESRCH (already gone) is fine.
    unsafe {
        libc::kill(target, signal);
    }
}

/// The fields of /proc/<pid>/stat the supervisor needs.
#[derive(Debug, Clone, Copy)]
struct ProcStat {
    state: u8,
    pgrp: i64,
    /// Clock ticks after boot.
    starttime: u64,
}

impl ProcStat {
    /// Zombies count as dead: they run nothing, and where PID 1 does not reap
    /// orphans they may linger indefinitely.
    fn is_dead(&self) -> bool {
        matches!(self.state, b'Z' | b'X' | b'x')
    }
}

fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name in parentheses may itself contain spaces and parentheses.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcStat {
        state: *fields.first()?.as_bytes().first()?,
        pgrp: fields.get(2)?.parse().ok()?,
        starttime: fields.get(19)?.parse().ok()?,
    })
}

fn proc_cmdline(pid: u32) -> Option<Vec<Vec<u8>>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let raw = raw.strip_suffix(b"\0").unwrap_or(&raw);
    if raw.is_empty() {
        return None;
    }
    Some(raw.split(|&b| b == 0).map(<[u8]>::to_vec).collect())
}

/// The command line of a live process. Right after exec the kernel briefly
/// shows an empty one (the new argv is not mapped yet), so wait a little for it.
async fn settled_cmdline(pid: u32) -> Option<Vec<Vec<u8>>> {
    for _ in 0..50 {
        if let Some(c) = proc_cmdline(pid) {
            return Some(c);
        }
        if !process_alive(pid, None) {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    None
}

fn process_alive(pid: u32, starttime: Option<u64>) -> bool {
    proc_stat(pid).is_some_and(|s| !s.is_dead() && starttime.is_none_or(|t| t == s.starttime))
}

/// Whether any live process is left in process group `pgid`.
fn group_alive(pgid: u32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        let Ok(pgid) = libc::pid_t::try_from(pgid) else {
            return false;
        };
        // SAFETY: signal 0 only checks for existence.
        return unsafe { libc::kill(-pgid, 0) } == 0;
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .any(|pid| proc_stat(pid).is_some_and(|s| s.pgrp == i64::from(pgid) && !s.is_dead()))
}

/// Wall-clock start time of a process from its start in clock ticks after boot.
fn start_time_millis(starttime: u64) -> Option<Millis> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let btime: i64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: sysconf has no memory effects.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks <= 0 {
        return None;
    }
    let ticks = u64::try_from(ticks).ok()?;
    let after_boot_ms = i64::try_from(starttime.checked_mul(1000)? / ticks).ok()?;
    Some(btime * 1000 + after_boot_ms)
}
