//! `medic run`: wires sources, supervisor, engine, runner and API, and
//! handles reload (SIGHUP, `POST /api/v1/reload`) and shutdown.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::api::{self, ApiState, ReloadRequest};
use crate::config::{self, Loaded};
use crate::engine::{self, Engine};
use crate::executors::ExecutorDeps;
use crate::runbooks::Runbook;
use crate::runbooks::runner::Runner;
use crate::series::cache::{CacheLimits, SeriesCache};
use crate::services::Supervisor;
use crate::sources::{self, SourceContext};
use crate::stores::{Store, StoreConfig};
use crate::telemetry::{Metrics, ResultLabels};

/// Services with `argv[0] == "medic"` resolved to this very binary, so the
/// shipped demo works wherever cargo put it.
fn services(l: &Loaded) -> std::collections::BTreeMap<String, crate::services::ServiceConfig> {
    let me = std::env::current_exe().ok();
    l.config
        .services
        .iter()
        .map(|(k, v)| {
            let mut v = v.clone();
            if v.argv.first().is_some_and(|a| a == "medic")
                && let Some(me) = &me
            {
                v.argv[0] = me.display().to_string();
            }
            (k.clone(), v)
        })
        .collect()
}

fn runbook_list(l: &Loaded) -> Vec<Arc<Runbook>> {
    l.runbooks
        .iter()
        .map(|(_, r)| Arc::new(r.clone()))
        .collect()
}

struct Running {
    loaded: Loaded,
    /// The runbooks, for runs resumed when this node becomes the leader.
    runbooks: watch::Sender<Vec<Arc<Runbook>>>,
    sources: Vec<JoinHandle<()>>,
    oncall: crate::oncall::SharedOncall,
    http: reqwest::Client,
}

fn start_sources(l: &Loaded, ctx: &SourceContext) -> Vec<JoinHandle<()>> {
    l.config
        .sources
        .iter()
        .map(|s| sources::spawn(s.clone(), ctx.clone()))
        .collect()
}

/// Run until SIGINT/SIGTERM.
pub async fn run(config_path: &Path) -> anyhow::Result<()> {
    let loaded = config::load(config_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let state_dir = loaded.state_dir();
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("state dir {}", state_dir.display()))?;
    let store: Arc<dyn Store> =
        crate::stores::open(&loaded.config.store, &state_dir, &loaded.base_dir).with_context(
            || match &loaded.config.store {
                StoreConfig::Sqlite {} => {
                    format!("store {}", crate::stores::sqlite_path(&state_dir).display())
                }
                StoreConfig::Etcd(e) => format!("store etcd {}", e.endpoints.join(",")),
            },
        )?;
    let metrics = Arc::new(Metrics::new());
    let http = reqwest::Client::builder()
        .user_agent(concat!("medic/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(std::time::Duration::from_secs(30))
        .build()?;
    let (batch_tx, batch_rx) = mpsc::channel(4096);
    let (cmd_tx, cmd_rx) = mpsc::channel::<engine::Command>(1024);
    let push = Arc::new(sources::push::PushRegistry::default());
    let (reload_tx, mut reload_rx) = mpsc::channel::<ReloadRequest>(8);

    let supervisor = Supervisor::new(state_dir.clone(), batch_tx.clone());
    supervisor
        .apply(&services(&loaded))
        .await
        .context("starting services")?;
    let deps = ExecutorDeps {
        supervisor: supervisor.clone(),
        http: http.clone(),
        store: store.clone(),
    };
    let oncall: crate::oncall::SharedOncall = Arc::new(std::sync::RwLock::new(Arc::new(
        crate::oncall::Oncall::build(&loaded, &http).map_err(|e| anyhow::anyhow!("{e}"))?,
    )));
    crate::oncall::scheduler::Scheduler::new(store.clone(), metrics.clone(), oncall.clone())
        .spawn();
    let runner = Runner::new(store.clone(), metrics.clone(), deps, loaded.config.dry_run);
    let series = Arc::new(SeriesCache::new(CacheLimits::default()));
    // Degraded mode (shared store only): a local spool of what this node
    // detects while etcd is unreachable, notified from here directly.
    let spool = match &loaded.config.store {
        StoreConfig::Sqlite {} => None,
        StoreConfig::Etcd(_) => {
            let path = state_dir.join("spool.db");
            let spool = Arc::new(
                crate::stores::spool::Spool::open(&path)
                    .with_context(|| format!("spool {}", path.display()))?,
            );
            crate::oncall::degraded::DegradedSender {
                spool: spool.clone(),
                store: store.clone(),
                oncall: oncall.clone(),
                metrics: metrics.clone(),
                node: store.status().node.unwrap_or_else(|| "medic".into()),
            }
            .spawn();
            Some(spool)
        }
    };
    let engine = Engine::new(
        loaded.config.detectors.clone(),
        runbook_list(&loaded),
        store.clone(),
        metrics.clone(),
        runner.clone(),
        series.clone(),
    )
    .with_flapping(loaded.config.flapping.clone());
    let engine = match &spool {
        Some(s) => engine.with_spool(s.clone()),
        None => engine,
    };

    // Resume runs a crash interrupted, before the engine can launch new ones
    // (resumed runs take back their concurrency slots first): now, or with
    // leader election each time this node becomes the leader (a deposed
    // leader's runs included).
    let (runbooks_tx, runbooks_rx) = watch::channel(runbook_list(&loaded));
    match store.leading() {
        None => resume_runs(&*store, &runner, &runbook_list(&loaded)),
        Some(_) => {
            tokio::spawn(resume_when_leading(
                store.clone(),
                runner.clone(),
                runbooks_rx,
            ));
        }
    }
    tokio::spawn(engine.run(batch_rx, cmd_rx));

    let ctx = SourceContext {
        batches: batch_tx.clone(),
        metrics: metrics.clone(),
        http: http.clone(),
        base_dir: loaded.base_dir.clone(),
        push: push.clone(),
        engine: cmd_tx.clone(),
    };
    let ready = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind(&loaded.config.listen)
        .await
        .with_context(|| format!("listen on {}", loaded.config.listen))?;
    tracing::info!(listen = %loaded.config.listen, config = %config_path.display(), "medic running");
    let app = api::router(ApiState {
        store: store.clone(),
        metrics: metrics.clone(),
        reload: reload_tx,
        ready: ready.clone(),
        supervisor: supervisor.clone(),
        push,
        series,
        oncall: oncall.clone(),
        spool,
    });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "API server stopped");
        }
    });

    let mut running = Running {
        sources: start_sources(&loaded, &ctx),
        runbooks: runbooks_tx,
        loaded,
        oncall,
        http: http.clone(),
    };
    ready.store(true, Ordering::Relaxed);

    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = hup.recv() => {
                let r = reload(&mut running, &ctx, &supervisor, &cmd_tx, &metrics).await;
                if let Err(e) = r {
                    tracing::error!("reload refused; the running configuration stays in force:\n{e}");
                }
            }
            Some(req) = reload_rx.recv() => {
                let r = reload(&mut running, &ctx, &supervisor, &cmd_tx, &metrics).await;
                if let Err(e) = &r {
                    tracing::error!("reload refused; the running configuration stays in force:\n{e}");
                }
                let _ = req.send(r);
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("shutting down");
    let (saved, wait) = oneshot::channel();
    if cmd_tx.send(engine::Command::SaveState(saved)).await.is_ok() {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), wait).await;
    }
    for s in running.sources.drain(..) {
        s.abort();
    }
    supervisor.shutdown().await;
    Ok(())
}

/// Resume the runs still marked running.
fn resume_runs(store: &dyn Store, runner: &Runner, runbooks: &[Arc<Runbook>]) {
    for run in store.running_runs().unwrap_or_default() {
        let rb = runbooks
            .iter()
            .find(|r| r.name.value == run.runbook)
            .cloned();
        tracing::info!(run = run.id, incident = run.incident_id, runbook = %run.runbook, "resuming interrupted run");
        runner.resume(run, rb);
    }
}

/// With leader election: resume running runs whenever this node becomes
/// the leader, and while it leads, start the runbook of any open incident
/// that has none yet — every node records incidents, but the node that
/// opened one may be a follower, which cannot start runs.
async fn resume_when_leading(
    store: Arc<dyn Store>,
    runner: Runner,
    runbooks: watch::Receiver<Vec<Arc<Runbook>>>,
) {
    // Leadership is in memory, so it is looked at often (a new leader acts
    // within a quarter second); the scan for incidents without a run reads
    // the store, so it runs at once on taking over, then once a second.
    const LOOK: std::time::Duration = std::time::Duration::from_millis(250);
    const ADOPT: std::time::Duration = std::time::Duration::from_secs(1);
    let mut led = false;
    let mut adopted = tokio::time::Instant::now();
    loop {
        let leads = store.leading().unwrap_or(true);
        if leads && (!led || adopted.elapsed() >= ADOPT) {
            let rbs = runbooks.borrow().clone();
            if !led {
                resume_runs(&*store, &runner, &rbs);
            }
            adopt_incidents(&*store, &runner, &rbs);
            adopted = tokio::time::Instant::now();
        }
        led = leads;
        tokio::time::sleep(LOOK).await;
    }
}

/// Launch the matching runbook of open incidents that have no run.
fn adopt_incidents(store: &dyn Store, runner: &Runner, runbooks: &[Arc<Runbook>]) {
    let open = store
        .incidents(&crate::stores::IncidentFilter {
            open_only: true,
            limit: None,
        })
        .unwrap_or_default();
    for i in open {
        if !store.runs_for(i.id).is_ok_and(|r| r.is_empty()) {
            continue;
        }
        if let Some(rb) = runbooks.iter().find(|r| r.matches.matches(&i)) {
            tracing::info!(incident = i.id, runbook = %rb.name.value, "leader starts the runbook of an incident another node opened");
            runner.launch(&i, rb.clone());
        }
    }
}

async fn reload(
    running: &mut Running,
    ctx: &SourceContext,
    supervisor: &Supervisor,
    engine: &mpsc::Sender<engine::Command>,
    metrics: &Metrics,
) -> Result<String, String> {
    let result = async {
        let new = config::load(&running.loaded.path).map_err(|e| e.to_string())?;
        if new.config.listen != running.loaded.config.listen
            || new.state_dir() != running.loaded.state_dir()
        {
            return Err(
                "listen and state_dir cannot change on reload; restart medic for that".to_string(),
            );
        }
        // Built before anything changes: a notifier whose secret is missing
        // refuses the whole reload.
        let oncall = crate::oncall::Oncall::build(&new, &running.http)?;
        supervisor
            .apply(&services(&new))
            .await
            .map_err(|e| e.to_string())?;
        let (done, wait) = oneshot::channel();
        engine
            .send(engine::Command::Reload {
                detectors: new.config.detectors.clone(),
                runbooks: runbook_list(&new),
                flapping: new.config.flapping.clone(),
                done,
            })
            .await
            .map_err(|_| "engine stopped".to_string())?;
        let _ = wait.await;
        if new.config.sources != running.loaded.config.sources {
            for s in running.sources.drain(..) {
                s.abort();
            }
            running.sources = start_sources(&new, ctx);
        }
        let msg = format!(
            "{} sources, {} detectors, {} runbooks",
            new.config.sources.len(),
            new.config.detectors.len(),
            new.runbooks.len()
        );
        *running.oncall.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(oncall);
        let _ = running.runbooks.send(runbook_list(&new));
        running.loaded = new;
        tracing::info!(%msg, "configuration reloaded");
        Ok(msg)
    }
    .await;
    metrics
        .reloads
        .get_or_create(&ResultLabels {
            result: if result.is_ok() { "ok" } else { "error" }.into(),
        })
        .inc();
    result
}
