//! The detection engine: the one task that turns batches into detector state
//! changes, state changes into incidents, and new incidents into runbook runs.
//!
//! Being a single task keeps the order of events simple: an incident is opened
//! and resolved in the order its detector changed state.

use std::collections::HashMap;
use std::sync::Arc;

use medic_detectors::State;
use tokio::sync::{mpsc, oneshot};

use crate::clock::SharedClock;
use crate::detectors::{Bound, Change, DetectorConfig};
use crate::incidents::flapping::{Flapping, FlappingConfig, Resolve};
use crate::incidents::{Incident, IncidentState};
use crate::incidents::{fingerprint, labels_text};
use crate::runbooks::Runbook;
use crate::runbooks::runner::Runner;
use crate::series::Batch;
use crate::series::cache::SeriesCache;
use crate::stores::spool::{Spool, SpooledChange};
use crate::stores::{Detection, IncidentFilter, Store, StoreError};
use crate::telemetry::{DetectorLabels, Metrics, StateLabels};

/// Requests to the engine.
pub enum Command {
    /// Swap detectors and runbooks (config reload). Detectors whose config did
    /// not change keep their state.
    Reload {
        /// New detectors.
        detectors: Vec<DetectorConfig>,
        /// New runbooks, in match order.
        runbooks: Vec<Arc<Runbook>>,
        /// New flap detection settings.
        flapping: Option<FlappingConfig>,
        /// Answered when applied.
        done: oneshot::Sender<()>,
    },
    /// An alert from outside (an Alertmanager webhook) firing or resolved.
    External(ExternalAlert),
    /// Save learnt model states now (before shutdown); answered when done.
    SaveState(oneshot::Sender<()>),
}

/// Load the learnt states saved for this detector and configuration.
fn restore(mut b: Bound, store: &dyn Store) -> Bound {
    if b.learns() {
        let states = store
            .load_model_states(b.name(), &b.config_fingerprint())
            .unwrap_or_default();
        let n = b.restore_model_states(states);
        if n > 0 {
            tracing::info!(detector = %b.name(), series = n, "restored learnt model states");
        }
    }
    b
}

/// The evaluation's evidence with the detector's extra detail merged in.
fn evidence_json(c: &Change) -> serde_json::Value {
    let mut v = serde_json::to_value(&c.evaluation.evidence).unwrap_or_default();
    if let (Some(serde_json::Value::Object(extra)), serde_json::Value::Object(m)) =
        (&c.detail, &mut v)
    {
        for (k, x) in extra {
            m.entry(k.clone()).or_insert_with(|| x.clone());
        }
    }
    v
}

/// An incident raised by another system, e.g. a Prometheus alert rule
/// delivered by Alertmanager.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalAlert {
    /// Plays the detector's role: runbooks match on it (the alert name).
    pub detector: String,
    /// The alert's labels.
    pub labels: crate::series::Labels,
    /// `critical`, `warning` or `info`.
    pub severity: String,
    /// One line.
    pub summary: String,
    /// When it started (firing) or ended (resolved).
    pub at: crate::series::Millis,
    /// Firing (true) or resolved.
    pub firing: bool,
    /// Evidence recorded in the timeline.
    pub evidence: serde_json::Value,
}

/// The engine's state.
pub struct Engine {
    detectors: Vec<Bound>,
    runbooks: Vec<Arc<Runbook>>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    runner: Runner,
    series: Arc<SeriesCache>,
    // Open incidents by fingerprint: lets an `ok` evaluation (e.g. the first
    // one after a restart of medic) resolve an incident cheaply.
    open: HashMap<String, i64>,
    flapping: Option<Flapping>,
    // Flapping incidents whose detector cleared, held open: fingerprint → cause.
    held: HashMap<String, String>,
    // Time for ticks (`medic test`: virtual time).
    clock: SharedClock,
    // Degraded mode (`store: etcd`): detections the store could not record
    // go to this local spool; the degraded sender notifies from it, and the
    // engine replays it into the store when the store answers again.
    spool: Option<Arc<Spool>>,
    // Incidents opened only in the spool so far: fingerprint → as notified.
    spooled: HashMap<String, Incident>,
    // The spool may hold events not yet replayed.
    spool_pending: bool,
}

impl Engine {
    /// Build; loads the open incidents from the store.
    pub fn new(
        detectors: Vec<DetectorConfig>,
        runbooks: Vec<Arc<Runbook>>,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        runner: Runner,
        series: Arc<SeriesCache>,
    ) -> Self {
        let open = store
            .incidents(&IncidentFilter {
                open_only: true,
                limit: None,
            })
            .unwrap_or_default()
            .into_iter()
            .map(|i| (i.fingerprint, i.id))
            .collect();
        let e = Engine {
            detectors: detectors
                .into_iter()
                .map(|c| restore(Bound::new(c), store.as_ref()))
                .collect(),
            runbooks,
            store,
            metrics,
            runner,
            series,
            open,
            flapping: None,
            spool: None,
            spooled: HashMap::new(),
            spool_pending: false,
            held: HashMap::new(),
            clock: crate::clock::system(),
        };
        e.update_gauges();
        e
    }

    /// Take time from `clock` (`medic test`: virtual time).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Hold flapping incidents open (`flapping:` in medic.yaml).
    pub fn with_flapping(mut self, cfg: Option<FlappingConfig>) -> Self {
        self.set_flapping(cfg);
        self
    }

    fn set_flapping(&mut self, cfg: Option<FlappingConfig>) {
        let same = match (&self.flapping, &cfg) {
            (Some(f), Some(c)) => f.config() == c,
            (None, None) => true,
            _ => false,
        };
        if !same {
            self.flapping = cfg.map(Flapping::new);
        }
    }

    /// Run until the batch channel closes.
    pub async fn run(
        mut self,
        mut batches: mpsc::Receiver<Batch>,
        mut commands: mpsc::Receiver<Command>,
    ) {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The runner and the API also change incident states (recovering,
        // acknowledged); refresh the gauges now and then to include those.
        let mut gauges = tokio::time::interval(std::time::Duration::from_secs(5));
        // Learnt model states survive a restart (at most this much is relearnt).
        let mut save = tokio::time::interval(std::time::Duration::from_secs(60));
        save.tick().await;
        loop {
            tokio::select! {
                b = batches.recv() => match b {
                    Some(b) => self.observe(&b),
                    None => return,
                },
                _ = tick.tick() => self.tick(self.clock.now_millis()),
                _ = gauges.tick() => self.update_gauges(),
                _ = save.tick() => self.save_states(),
                c = commands.recv() => match c {
                    Some(Command::Reload { detectors, runbooks, flapping, done }) => {
                        self.reload(detectors, runbooks);
                        self.set_flapping(flapping);
                        let _ = done.send(());
                    }
                    Some(Command::External(a)) => self.external(a),
                    Some(Command::SaveState(done)) => {
                        self.save_states();
                        let _ = done.send(());
                    }
                    None => return,
                },
            }
        }
    }

    fn save_states(&self) {
        for d in &self.detectors {
            let states = d.model_states();
            if states.is_empty() {
                continue;
            }
            if let Err(e) = self.store.save_model_states(
                d.name(),
                &d.config_fingerprint(),
                &states,
                self.clock.now_millis(),
            ) {
                tracing::warn!(detector = %d.name(), error = %e, "cannot save model states");
            }
        }
    }

    fn reload(&mut self, detectors: Vec<DetectorConfig>, runbooks: Vec<Arc<Runbook>>) {
        self.save_states();
        let mut old: HashMap<String, Bound> = self
            .detectors
            .drain(..)
            .map(|b| (b.name().to_string(), b))
            .collect();
        self.detectors = detectors
            .into_iter()
            .map(|cfg| match old.remove(&cfg.name.value) {
                Some(b) if b.config == cfg => b,
                _ => restore(Bound::new(cfg), self.store.as_ref()),
            })
            .collect();
        self.runbooks = runbooks;
        let ds = &self.detectors;
        self.series
            .rewatch(|n, l| ds.iter().any(|d| d.selects(n, l)));
    }

    fn observe(&mut self, batch: &Batch) {
        let ds = &self.detectors;
        self.series
            .record(batch, |s| ds.iter().any(|d| d.selects(&s.name, &s.labels)));
        let mut changes = Vec::new();
        for d in &mut self.detectors {
            let (c, n) = d.observe(batch);
            if n > 0 {
                self.metrics
                    .detector_evaluations
                    .get_or_create(&DetectorLabels {
                        detector: d.name().to_string(),
                    })
                    .inc_by(n);
            }
            changes.extend(c);
        }
        for c in changes {
            self.handle(c);
        }
    }

    /// Spool what the store cannot record (degraded mode).
    pub fn with_spool(mut self, spool: Arc<Spool>) -> Self {
        self.spool = Some(spool);
        // Events left from before a restart are replayed too.
        self.spool_pending = true;
        self
    }

    fn tick(&mut self, now: i64) {
        self.flush_spool(now);
        let settled = self
            .flapping
            .as_mut()
            .map(|f| f.settled(now))
            .unwrap_or_default();
        for fp in settled {
            if let Some(cause) = self.held.remove(&fp) {
                let cause = format!("settled after flapping: {cause}");
                self.resolve_now(&fp, now, &cause, serde_json::Value::Null);
            }
        }
        let mut changes = Vec::new();
        for d in &mut self.detectors {
            changes.extend(d.tick(now));
        }
        for c in changes {
            self.handle(c);
        }
    }

    fn handle(&mut self, c: Change) {
        let fp = fingerprint(&c.detector, &c.labels);
        let e = &c.evaluation;
        match e.state {
            State::Firing if e.changed => self.fire(&c, fp),
            // Most evaluations are `ok` with nothing open: no cause text or
            // evidence to build for them.
            State::Resolved | State::Ok
                if !self.open.contains_key(&fp) && !self.spooled.contains_key(&fp) => {}
            State::Resolved | State::Ok => {
                let cause = if e.state == State::Resolved {
                    format!("detector cleared: {}", e.evidence.reason)
                } else {
                    format!("detector reports ok: {}", e.evidence.reason)
                };
                let evidence = evidence_json(&c);
                self.resolve(&c.detector, &c.labels, fp, e.evidence.at, &cause, evidence);
            }
            _ => {}
        }
    }

    fn resolve(
        &mut self,
        detector: &str,
        labels: &crate::series::Labels,
        fp: String,
        at: crate::series::Millis,
        cause: &str,
        evidence: serde_json::Value,
    ) {
        if let Some(i) = self.spooled.remove(&fp) {
            self.spool_event(
                "resolved",
                resolved(i, at),
                SpooledChange::Resolved {
                    at,
                    cause: cause.to_string(),
                    evidence,
                },
                at,
            );
            return;
        }
        let Some(id) = self.open.get(&fp).copied() else {
            return;
        };
        // Held already: later `ok` evaluations are not new changes.
        if self.held.contains_key(&fp) {
            return;
        }
        if let Some(f) = &mut self.flapping
            && let Resolve::Hold { until, first } = f.cleared(&fp, at)
        {
            if first {
                let c = f.config();
                let _ = self.store.append_event(
                    id,
                    at,
                    "flapping",
                    "medic",
                    &format!(
                        "flapping: more than {} state changes within {}; held open until clear for {}",
                        c.changes, c.window, c.settle
                    ),
                    serde_json::json!({ "until": until }),
                );
                tracing::warn!(incident = id, detector = %detector, labels = %labels_text(labels), "incident is flapping; held open");
            }
            self.held.insert(fp, cause.to_string());
            return;
        }
        self.resolve_now(&fp, at, cause, evidence);
    }

    fn resolve_now(
        &mut self,
        fp: &str,
        at: crate::series::Millis,
        cause: &str,
        evidence: serde_json::Value,
    ) {
        let Some(id) = self.open.get(fp).copied() else {
            return;
        };
        match self.store.record_resolved(fp, at, cause, evidence.clone()) {
            Ok(_) => {
                tracing::info!(incident = id, cause = %cause, "incident resolved");
                self.open.remove(fp);
                self.update_gauges();
            }
            Err(StoreError::Backend(err)) if self.spool.is_some() => {
                tracing::warn!(incident = id, error = %err, "store unavailable: resolution spooled");
                // A degraded read (any etcd member) usually still has it.
                let i = match self.store.incident(id) {
                    Ok(Some(i)) => i,
                    _ => Detection {
                        fingerprint: fp.to_string(),
                        detector: String::new(),
                        labels: Default::default(),
                        severity: "warning".into(),
                        summary: format!("incident {id}"),
                        at,
                        evidence: serde_json::Value::Null,
                    }
                    .new_incident(id),
                };
                self.open.remove(fp);
                let change = SpooledChange::Resolved {
                    at,
                    cause: cause.to_string(),
                    evidence,
                };
                self.spool_event("resolved", resolved(i, at), change, at);
            }
            Err(err) => {
                tracing::error!(incident = id, error = %err, "cannot record resolution")
            }
        }
    }

    fn external(&mut self, a: ExternalAlert) {
        let fp = fingerprint(&a.detector, &a.labels);
        if a.firing {
            let reason = a.evidence["reason"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            self.open_incident(
                Detection {
                    fingerprint: fp,
                    detector: a.detector,
                    labels: a.labels,
                    severity: a.severity,
                    summary: a.summary,
                    at: a.at,
                    evidence: a.evidence,
                },
                &reason,
            );
        } else {
            let cause = a.evidence["reason"]
                .as_str()
                .unwrap_or("resolved")
                .to_string();
            self.resolve(&a.detector, &a.labels, fp, a.at, &cause, a.evidence);
        }
    }

    fn fire(&mut self, c: &Change, fp: String) {
        let Some(det) = self.detectors.iter().find(|d| d.name() == c.detector) else {
            return;
        };
        let e = &c.evaluation;
        let summary = match &det.config.summary {
            Some(s) => format!("{s} ({})", e.evidence.reason),
            None => format!(
                "{} {}: {}",
                c.detector,
                labels_text(&c.labels),
                e.evidence.reason
            ),
        };
        let d = Detection {
            fingerprint: fp,
            detector: c.detector.clone(),
            labels: c.labels.clone(),
            severity: det.config.severity.as_str().to_string(),
            summary,
            at: e.evidence.at,
            evidence: evidence_json(c),
        };
        self.open_incident(d, &e.evidence.reason);
    }

    /// Record a firing detection; a new incident gets its runbook.
    fn open_incident(&mut self, d: Detection, reason: &str) {
        // Waiting in the spool already: repeats add nothing to notify.
        if self.spooled.contains_key(&d.fingerprint) {
            return;
        }
        let r = match self.store.record_firing(&d) {
            Ok(r) => r,
            Err(StoreError::Backend(err)) if self.spool.is_some() => {
                tracing::warn!(detector = %d.detector, error = %err, "store unavailable: incident spooled; notifying from this node, no automated action");
                let i = d.new_incident(0);
                self.spooled.insert(d.fingerprint.clone(), i.clone());
                self.spool_event("opened", i, SpooledChange::Firing(d.clone()), d.at);
                return;
            }
            Err(err) => {
                tracing::error!(detector = %d.detector, error = %err, "cannot record incident; not acting");
                return;
            }
        };
        self.opened(&d, r, reason);
    }

    fn spool_event(&mut self, event: &str, i: Incident, change: SpooledChange, at: i64) {
        let Some(spool) = &self.spool else { return };
        match spool.add(event, &i, &change, at) {
            Ok(_) => self.spool_pending = true,
            Err(err) => tracing::error!(error = %err, "cannot write the spool: this event is lost"),
        }
    }

    /// Replay the spool into the store, in order, once it answers again.
    /// Stops at the first failure and tries again on a later tick.
    fn flush_spool(&mut self, now: i64) {
        if !self.spool_pending || !self.store.status().up {
            return;
        }
        let Some(spool) = self.spool.clone() else {
            return;
        };
        let node = self
            .store
            .status()
            .node
            .unwrap_or_else(|| "this node".into());
        for e in spool.unflushed().unwrap_or_default() {
            let sent = spool
                .sends_of(e.id)
                .unwrap_or_default()
                .iter()
                .map(|(n, s)| format!("{n} ({s})"))
                .collect::<Vec<_>>();
            let sent = if sent.is_empty() {
                "nobody".to_string()
            } else {
                sent.join(", ")
            };
            let id = match &e.change {
                SpooledChange::Firing(d) => match self.store.record_firing(d) {
                    Ok(r) => {
                        let id = r.0.id;
                        self.spooled.remove(&e.fingerprint);
                        self.opened(d, r, "spooled while the store was unavailable");
                        Some(id)
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "spool not replayed yet");
                        return;
                    }
                },
                SpooledChange::Resolved {
                    at,
                    cause,
                    evidence,
                } => match self
                    .store
                    .record_resolved(&e.fingerprint, *at, cause, evidence.clone())
                {
                    Ok(i) => {
                        self.open.remove(&e.fingerprint);
                        i.map(|i| i.id)
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "spool not replayed yet");
                        return;
                    }
                },
            };
            if let Some(id) = id {
                let _ = self.store.append_event(
                    id,
                    now,
                    "degraded",
                    "medic",
                    &format!(
                        "{} while the store was unavailable, seen by {node} and notified from its spool: {sent}",
                        e.event
                    ),
                    serde_json::json!({"spooled_at": e.created_at, "node": node}),
                );
            }
            if let Err(err) = spool.flushed(e.id, now) {
                tracing::error!(error = %err, "cannot write the spool");
                return;
            }
            tracing::info!(event = %e.event, fingerprint = %e.fingerprint, "spooled event replayed into the store");
        }
        self.spool_pending = false;
        self.update_gauges();
    }

    /// The store recorded a firing detection.
    fn opened(&mut self, d: &Detection, (incident, new): (Incident, bool), reason: &str) {
        self.open.insert(d.fingerprint.clone(), incident.id);
        // A change is a new incident or a re-fire of one held open; repeats
        // of a firing alert are not changes.
        let refired = self.held.remove(&d.fingerprint).is_some();
        if let Some(f) = &mut self.flapping
            && (new || refired)
            && f.fired(&d.fingerprint, d.at)
        {
            let _ = self.store.append_event(
                incident.id,
                d.at,
                "flapping",
                "medic",
                "marked flapping: it keeps changing state; notified once and held open until it settles",
                serde_json::Value::Null,
            );
        }
        if !new {
            return;
        }
        tracing::warn!(incident = incident.id, detector = %d.detector, labels = %labels_text(&d.labels), reason = %reason, "incident opened");
        self.update_gauges();
        // With leader election only the leader starts runbooks; it adopts
        // incidents other nodes opened (daemon::adopt_incidents).
        if self.store.leading() == Some(false) {
            return;
        }
        match self.runbooks.iter().find(|r| r.matches.matches(&incident)) {
            Some(rb) => self.runner.launch(&incident, rb.clone()),
            None => {
                let _ = self.store.append_event(
                    incident.id,
                    self.clock.now_millis(),
                    "runbook",
                    "medic",
                    "no runbook matches this incident",
                    serde_json::Value::Null,
                );
            }
        }
    }

    fn update_gauges(&self) {
        if let Ok(counts) = self.store.count_by_state() {
            for s in crate::incidents::IncidentState::ALL {
                let n = counts
                    .iter()
                    .find(|(k, _)| *k == s)
                    .map(|(_, n)| *n)
                    .unwrap_or(0);
                self.metrics
                    .incidents
                    .get_or_create(&StateLabels {
                        state: s.as_str().to_string(),
                    })
                    .set(n);
            }
        }
    }
}

fn resolved(mut i: Incident, at: i64) -> Incident {
    i.state = IncidentState::Resolved;
    i.resolved_at = Some(at);
    i.updated_at = at;
    i
}
