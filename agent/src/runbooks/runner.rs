//! Runs runbooks: one task per run, each action journalled before and after.
//!
//! Safety rules, in the order a step meets them:
//! 1. Re-read the incident right before every attempt; never act on a
//!    resolved incident.
//! 2. Journal the attempt as `intended` (with its idempotency key) before
//!    running it, and its outcome after. A key already in the journal is never
//!    run again.
//! 3. Apply the step timeout by dropping the executor's future (executors
//!    clean up on drop).
//! 4. After a crash, a run marked `running` resumes: steps whose action
//!    succeeded are not re-run (their `verify` is checked again instead); an
//!    attempt found `intended` is marked `interrupted` — its outcome is unknown,
//!    so medic verifies first and only tries again (as a new attempt, within the
//!    retry budget) if the verification fails.
//! 5. With leader election, a node that is no longer the leader stops its
//!    runs quietly (the store refuses its journal write with
//!    [`StoreError::Fenced`], or it sees it no longer leads between
//!    attempts): it writes nothing more, and the new leader resumes the run
//!    from the journal.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::time::Instant;

use super::checks::{Checks, NetworkChecks};
use super::guards::{self, Guards, History, Pools, Verdict};
use super::{Runbook, Step, Verify};
use crate::clock::SharedClock;
use crate::executors::{BuildExecutor, ExecutorDeps, StepContext};
use crate::incidents::{Incident, IncidentState};
use crate::series::Millis;
use crate::stores::{Action, ActionFilter, ActionState, Run, RunState, Store, StoreError};
use crate::telemetry::{ActionLabels, ExecutorLabels, GuardLabels, Metrics};

/// How a step ended.
#[derive(Debug, Clone, PartialEq)]
enum StepOutcome {
    /// Action succeeded (and verified, if the step verifies).
    Done { verified: bool },
    /// The incident resolved: stop, act no further.
    IncidentResolved,
    /// Out of attempts.
    Failed(String),
    /// A guard rail held it back: nothing was done.
    Blocked(String),
    /// This node is no longer the leader: stop quietly, the new leader
    /// resumes the run.
    Deposed(String),
}

/// How many recent journal entries guard rails read per question.
const GUARD_HISTORY: usize = 500;

/// Starts and resumes runbook runs.
#[derive(Clone)]
pub struct Runner {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    dry_run: bool,
    // What the runner touches outside itself: the clock, the executors and
    // the verify checks. Real in the daemon; under `medic test` a virtual
    // clock, recording fakes and checks answered from the test's timeline.
    clock: SharedClock,
    build: BuildExecutor,
    checks: Arc<dyn Checks>,
    // A random number in [0, 1) for back-off jitter.
    jitter: fn() -> f64,
    // Incidents with a run in progress: one run per incident at a time.
    active: Arc<Mutex<HashSet<i64>>>,
    // One action per target at a time (target = executor kind + parameters),
    // so two incidents with one cause (process died → "down" and "unhealthy")
    // do not both restart the same service.
    targets: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    // When each target was last acted on successfully: a second incident
    // opened just after (a probe that hit the restart window) checks its
    // verification before acting again.
    recent: Arc<Mutex<HashMap<String, Instant>>>,
    // Targets being acted on per concurrency group, across runbooks.
    pools: Arc<Mutex<Pools>>,
}

/// How long after a successful action on a target another run first checks
/// whether its verification already holds before acting on that target again.
pub const SETTLE: std::time::Duration = std::time::Duration::from_secs(30);

impl Runner {
    /// Build. `dry_run` is the global switch from `medic.yaml`.
    pub fn new(
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        deps: ExecutorDeps,
        dry_run: bool,
    ) -> Self {
        let checks = Arc::new(NetworkChecks::new(deps.http.clone()));
        Runner {
            store,
            metrics,
            dry_run,
            clock: crate::clock::system(),
            build: Arc::new(move |a| a.build(&deps)),
            checks,
            jitter: rand::random::<f64>,
            active: Arc::new(Mutex::new(HashSet::new())),
            targets: Arc::new(Mutex::new(HashMap::new())),
            recent: Arc::new(Mutex::new(HashMap::new())),
            pools: Arc::new(Mutex::new(Pools::default())),
        }
    }

    /// Take time from `clock` (`medic test`: virtual time).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Build executors with `build` (`medic test`: recording fakes).
    pub fn with_executors(mut self, build: BuildExecutor) -> Self {
        self.build = build;
        self
    }

    /// Answer `verify.http` and `verify.tcp` with `checks`.
    pub fn with_checks(mut self, checks: Arc<dyn Checks>) -> Self {
        self.checks = checks;
        self
    }

    /// Draw back-off jitter from `jitter` (`medic test`: a fixed 0.5, i.e. none).
    pub fn with_jitter(mut self, jitter: fn() -> f64) -> Self {
        self.jitter = jitter;
        self
    }

    fn now(&self) -> Millis {
        self.clock.now_millis()
    }

    fn claim(&self, incident_id: i64) -> bool {
        self.active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(incident_id)
    }

    fn release(&self, incident_id: i64) {
        self.active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&incident_id);
    }

    /// Start a new run of `runbook` for `incident`, unless one is in progress.
    pub fn launch(&self, incident: &Incident, runbook: Arc<Runbook>) {
        if !self.claim(incident.id) {
            return;
        }
        let run = match self.store.start_run(incident.id, &runbook.name, self.now()) {
            Ok(r) => r,
            Err(StoreError::Fenced(why)) => {
                tracing::info!(incident = incident.id, %why, "not the leader: the leader starts this run");
                self.release(incident.id);
                return;
            }
            Err(e) => {
                tracing::error!(incident = incident.id, error = %e, "cannot record run start; not acting");
                self.release(incident.id);
                return;
            }
        };
        let this = self.clone();
        tokio::spawn(async move { this.drive(run, runbook, false).await });
    }

    /// Resume a run found `running` at start-up.
    pub fn resume(&self, run: Run, runbook: Option<Arc<Runbook>>) {
        let Some(runbook) = runbook else {
            let msg = format!("runbook {:?} no longer exists; run aborted", run.runbook);
            let _ = self
                .store
                .finish_run(run.id, RunState::Aborted, self.now(), &msg);
            let _ = self.store.append_event(
                run.incident_id,
                self.now(),
                "runbook",
                "medic",
                &msg,
                json!({"run": run.id}),
            );
            return;
        };
        if !self.claim(run.incident_id) {
            return;
        }
        self.hold_slots_again(&run, &runbook);
        let this = self.clone();
        tokio::spawn(async move { this.drive(run, runbook, true).await });
    }

    /// A resumed run takes back, at once, the concurrency slots it held when
    /// medic stopped (the pools are in memory): the targets its steps acted
    /// on, or were about to. Otherwise new runs could take them first and
    /// more targets of a group than the limit would be acted on at once.
    fn hold_slots_again(&self, run: &Run, rb: &Runbook) {
        let journal = self.store.journal_for_run(run.id).unwrap_or_default();
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        for a in journal {
            if !guards::guarded(&a.step) || a.state == ActionState::Blocked {
                continue;
            }
            if let Some(c) = rb.guards.for_target(&a.target).concurrency {
                pools.hold(&c.group, &a.target, run.id);
            }
        }
    }

    fn event(
        &self,
        incident_id: i64,
        kind: &str,
        actor: &str,
        message: &str,
        data: serde_json::Value,
    ) {
        if let Err(e) = self
            .store
            .append_event(incident_id, self.now(), kind, actor, message, data)
        {
            tracing::error!(incident = incident_id, error = %e, "cannot write timeline event");
        }
    }

    async fn drive(self, run: Run, rb: Arc<Runbook>, resumed: bool) {
        let actor = format!("runbook:{}", rb.name.value);
        let iid = run.incident_id;
        self.event(
            iid,
            "runbook",
            &actor,
            &if resumed {
                format!(
                    "runbook {} resumed after restart (run {})",
                    rb.name.value, run.id
                )
            } else {
                format!("runbook {} started (run {})", rb.name.value, run.id)
            },
            json!({"run": run.id}),
        );
        let outcome = self.drive_steps(&run, &rb, &actor).await;
        // Nothing is being acted on any more: free the concurrency slots now,
        // not after a wait for restoration.
        self.pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .release(run.id);
        let Ok((state, mut detail)) = outcome else {
            return self.stop_deposed(&run, outcome.err().unwrap_or_default());
        };
        if !rb.restore.is_empty()
            && matches!(
                state,
                RunState::Completed | RunState::Recovered | RunState::Aborted
            )
            && self.steps_acted(&run)
        {
            match self.restore(&run, &rb, &actor).await {
                Ok(d) => detail = format!("{detail}; {d}"),
                Err(why) => return self.stop_deposed(&run, why),
            }
        }
        let _ = self.store.finish_run(run.id, state, self.now(), &detail);
        self.event(
            iid,
            "runbook",
            &actor,
            &format!("runbook {} {}: {detail}", rb.name.value, state.as_str()),
            json!({"run": run.id, "state": state}),
        );
        tracing::info!(incident = iid, runbook = %rb.name, run = run.id, state = state.as_str(), detail, "run finished");
        self.release(iid);
    }

    /// Rule 5: this node lost the leadership mid-run. It writes nothing
    /// more (its writes would be refused anyway, leaving only confusing
    /// notes); the run stays `running` for the new leader to resume.
    fn stop_deposed(&self, run: &Run, why: String) {
        tracing::info!(incident = run.incident_id, run = run.id, %why, "no longer the leader: run left to the new leader");
        self.release(run.incident_id);
    }

    /// With leader election: this node no longer leads.
    fn deposed(&self) -> Option<String> {
        (self.store.leading() == Some(false))
            .then(|| "this node is no longer the leader".to_string())
    }

    /// Did one of the run's `steps` change something (or, in a dry run, would
    /// it have)? Telling people (`notify`) and waiting for them (`approval`)
    /// change nothing, so there is nothing to restore after them alone: a run
    /// whose incident resolved while it waited for approval restores nothing.
    fn steps_acted(&self, run: &Run) -> bool {
        self.store
            .journal_for_run(run.id)
            .unwrap_or_default()
            .iter()
            .any(|a| {
                a.step.starts_with("steps[")
                    && !matches!(a.executor.as_str(), "notify" | "approval")
                    && matches!(a.state, ActionState::Succeeded | ActionState::DryRun)
            })
    }

    /// Wait until the incident resolves, then run the `restore` steps (switch
    /// a degraded feature back on). The run stays `running` meanwhile, so a
    /// restart of medic resumes the wait and the restoration is not lost.
    async fn restore(&self, run: &Run, rb: &Runbook, actor: &str) -> Result<String, String> {
        let iid = run.incident_id;
        if !self.is_resolved(iid) {
            self.event(
                iid,
                "runbook",
                actor,
                "waiting for the incident to resolve, then restoring",
                json!({"run": run.id}),
            );
            while !self
                .sleep_unless_resolved(iid, std::time::Duration::from_secs(3600))
                .await
            {}
        }
        let mut failed = Vec::new();
        for (j, s) in rb.restore.iter().enumerate() {
            let path = format!("restore[{j}]");
            match self.run_step_inner(run, rb, s, &path, false).await {
                StepOutcome::Failed(why) => failed.push(format!("{:?}: {why}", s.name.value)),
                StepOutcome::Deposed(why) => return Err(why),
                _ => {}
            }
        }
        if failed.is_empty() {
            Ok(format!(
                "restored after recovery ({} steps)",
                rb.restore.len()
            ))
        } else {
            let why = format!("restoring failed: {}", failed.join("; "));
            self.event(iid, "escalation", actor, &why, json!({"run": run.id}));
            Ok(why)
        }
    }

    /// The run's steps; `Err`: this node was deposed midway.
    async fn drive_steps(
        &self,
        run: &Run,
        rb: &Runbook,
        actor: &str,
    ) -> Result<(RunState, String), String> {
        let mut any_verified = false;
        for (i, step) in rb.steps.iter().enumerate() {
            let path = format!("steps[{i}]");
            match self.run_step(run, rb, step, &path).await {
                StepOutcome::Done { verified } => any_verified |= verified,
                StepOutcome::Deposed(why) => return Err(why),
                StepOutcome::IncidentResolved => {
                    return Ok((
                        if any_verified {
                            RunState::Recovered
                        } else {
                            RunState::Aborted
                        },
                        format!(
                            "incident resolved; step {:?} and later not run",
                            step.name.value
                        ),
                    ));
                }
                StepOutcome::Failed(why) => {
                    for (j, f) in step.on_failure.iter().enumerate() {
                        let fpath = format!("{path}.on_failure[{j}]");
                        let o = self.run_step(run, rb, f, &fpath).await;
                        if let StepOutcome::Deposed(d) = o {
                            return Err(d);
                        }
                        tracing::info!(incident = run.incident_id, step = %f.name, outcome = ?o, "on_failure step done");
                    }
                    self.back_to_firing(run.incident_id, actor, &why);
                    self.escalate(run, rb, actor, &why).await?;
                    return Ok((
                        RunState::Failed,
                        format!("step {:?} failed: {why}", step.name.value),
                    ));
                }
                // Nothing was done, so there is nothing to compensate.
                StepOutcome::Blocked(why) => {
                    let why = format!("step {:?} not run: {why}", step.name.value);
                    self.back_to_firing(run.incident_id, actor, &why);
                    self.escalate(run, rb, actor, &why).await?;
                    return Ok((RunState::Blocked, why));
                }
            }
        }
        Ok(if any_verified {
            (
                RunState::Recovered,
                "all steps done; recovery verified".into(),
            )
        } else {
            (RunState::Completed, "all steps done".into())
        })
    }

    fn back_to_firing(&self, iid: i64, actor: &str, why: &str) {
        if let Ok(Some(i)) = self.store.incident(iid)
            && i.state == IncidentState::Recovering
        {
            let to = if i.acked_by.is_some() {
                IncidentState::Acknowledged
            } else {
                IncidentState::Firing
            };
            let _ = self.store.transition(
                iid,
                to,
                self.now(),
                actor,
                &format!("recovery did not verify: {why}"),
            );
        }
    }

    /// `Err`: this node was deposed midway.
    async fn escalate(
        &self,
        run: &Run,
        rb: &Runbook,
        actor: &str,
        why: &str,
    ) -> Result<(), String> {
        if rb.escalate.is_empty() {
            self.event(
                run.incident_id,
                "escalation",
                actor,
                &format!("recovery failed ({why}); runbook has no escalate steps"),
                json!({}),
            );
            return Ok(());
        }
        self.event(
            run.incident_id,
            "escalation",
            actor,
            &format!("escalating: {why}"),
            json!({}),
        );
        for (j, s) in rb.escalate.iter().enumerate() {
            let path = format!("escalate[{j}]");
            // Escalation must reach people even if the incident resolved meanwhile
            // is debatable; we keep the rule simple: it is a step like any other.
            let o = self.run_step_inner(run, rb, s, &path, false).await;
            if let StepOutcome::Deposed(d) = o {
                return Err(d);
            }
            tracing::info!(incident = run.incident_id, step = %s.name, outcome = ?o, "escalation step done");
        }
        Ok(())
    }

    async fn run_step(&self, run: &Run, rb: &Runbook, step: &Step, path: &str) -> StepOutcome {
        self.run_step_inner(run, rb, step, path, true).await
    }

    async fn run_step_inner(
        &self,
        run: &Run,
        rb: &Runbook,
        step: &Step,
        path: &str,
        require_open: bool,
    ) -> StepOutcome {
        let actor = format!("runbook:{}", rb.name.value);
        let iid = run.incident_id;
        let kind = step.action.kind();
        // What the journal already says about this step (after a crash).
        let previous: Vec<Action> = self
            .store
            .journal_for_run(run.id)
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a.step == path)
            .collect();
        let mut next_attempt = 1;
        let mut done_before = false;
        let mut interrupted = false;
        for a in &previous {
            next_attempt = next_attempt.max(a.attempt + 1);
            match a.state {
                ActionState::Succeeded | ActionState::DryRun => done_before = true,
                ActionState::Intended => {
                    interrupted = true;
                    let msg = "medic stopped while this action was running; its outcome is unknown";
                    let _ = self.store.journal_finish(
                        &a.idempotency_key,
                        ActionState::Interrupted,
                        self.now(),
                        msg,
                    );
                    self.event(
                        iid,
                        "action",
                        "medic",
                        &format!(
                            "step {:?} attempt {} interrupted: {msg}",
                            step.name.value, a.attempt
                        ),
                        json!({"idempotency_key": a.idempotency_key, "step": path}),
                    );
                }
                _ => {}
            }
        }
        if done_before || interrupted {
            match &step.verify {
                Some(v) if self.verify(iid, v).await => {
                    self.event(
                        iid,
                        "verify",
                        &actor,
                        &format!("step {:?} verified (not re-run)", step.name.value),
                        json!({"step": path}),
                    );
                    return StepOutcome::Done { verified: true };
                }
                Some(_) => {}
                None if done_before => return StepOutcome::Done { verified: false },
                None => {}
            }
        }
        let mut last_err = String::from("no attempt left");
        let first_attempt = next_attempt;
        for attempt in first_attempt..=step.retry.max_attempts.max(1) {
            if let Some(why) = self.deposed() {
                return StepOutcome::Deposed(why);
            }
            if attempt > 1 {
                let delay = step.retry.delay(attempt, (self.jitter)());
                if !require_open {
                    // Restore and escalate steps run whatever the incident
                    // does: they wait out their back-off in full (watching
                    // for resolution would end the wait at once).
                    tokio::time::sleep(delay).await;
                } else if self.sleep_unless_resolved(iid, delay).await {
                    return StepOutcome::IncidentResolved;
                }
            }
            let executor = (self.build)(&step.action);
            let key = format!("run-{}/{path}/attempt-{attempt}", run.id);
            let dry = self.dry_run || rb.dry_run || step.dry_run;
            let mut ctx = StepContext {
                incident: match self.read_incident(iid) {
                    Ok(i) => i,
                    Err(o) => return o,
                },
                runbook: rb.name.value.clone(),
                step: path.to_string(),
                step_name: step.name.value.clone(),
                attempt,
                idempotency_key: key.clone(),
                dry_run: dry,
                timeout: step.timeout.std(),
                fence: None,
            };
            let target_key = format!("{kind}:{}", executor.target(&ctx));
            let target_lock = self
                .targets
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(target_key.clone())
                .or_default()
                .clone();
            let (_held, contended) = match target_lock.clone().try_lock_owned() {
                Ok(g) => (g, false),
                // Another run is acting on this target: wait for it.
                Err(_) => (target_lock.lock_owned().await, true),
            };
            let acted_recently = self
                .recent
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&target_key)
                .is_some_and(|t| t.elapsed() < SETTLE);
            // Someone just acted on this target: maybe that already fixed our
            // incident too. Then acting again would only disturb a recovery.
            if (contended || acted_recently)
                && let Some(v) = &step.verify
                && self.verify_once(iid, v).await
            {
                self.event(iid, "action", &actor, &format!("step {:?} not run: the same target was just acted on and verification already holds", step.name.value), json!({"step": path}));
                return StepOutcome::Done { verified: true };
            }
            let mut action = Action {
                idempotency_key: key.clone(),
                run_id: run.id,
                incident_id: iid,
                step: path.to_string(),
                step_name: step.name.value.clone(),
                attempt,
                executor: kind.to_string(),
                runbook: rb.name.value.clone(),
                target: target_key.clone(),
                params: executor.describe(),
                state: ActionState::Intended,
                intended_at: self.now(),
                finished_at: None,
                detail: None,
                verified: None,
                verified_at: None,
                fence: None,
            };
            // Guard rails (not for escalation and compensation: those must run).
            if guards::guarded(path)
                && let Err(o) = self.pass_guards(run, rb, &action, dry, &actor).await
            {
                return o;
            }
            // Rule 1: re-check right before acting.
            ctx.incident = match self.read_incident(iid) {
                Ok(i) => i,
                Err(o) => return o,
            };
            let incident = ctx.incident.clone();
            if require_open && !incident.is_open() {
                self.event(
                    iid,
                    "action",
                    &actor,
                    &format!(
                        "step {:?} skipped: incident already resolved",
                        step.name.value
                    ),
                    json!({"step": path}),
                );
                return StepOutcome::IncidentResolved;
            }
            action.intended_at = self.now();
            // Rule 2: journal before acting. A conflict means this exact attempt
            // was already journalled: never run it twice.
            match self.store.journal_intend(&action) {
                Ok(fence) => ctx.fence = fence,
                Err(StoreError::Fenced(why)) => return StepOutcome::Deposed(why),
                Err(e) => return StepOutcome::Failed(format!("not run: {e}")),
            }
            if dry {
                let mut msg = format!(
                    "dry run: would run {kind} step {:?} on {target_key} with {}",
                    step.name.value, action.params
                );
                let mut answer = serde_json::Value::Null;
                // An executor that can answer a dry run says what it would do.
                if executor.supports_dry_run() {
                    answer = match tokio::time::timeout(step.timeout.std(), executor.execute(&ctx))
                        .await
                    {
                        Ok(Ok(out)) => {
                            msg.push_str(&format!("; it answered: {}", out.summary));
                            out.details
                        }
                        Ok(Err(e)) => json!({"error": e}),
                        Err(_) => json!({"error": format!("timed out after {}", step.timeout)}),
                    };
                }
                let _ = self
                    .store
                    .journal_finish(&key, ActionState::DryRun, self.now(), &msg);
                self.count(kind, "dry_run");
                self.event(
                    iid,
                    "action",
                    &actor,
                    &msg,
                    json!({"idempotency_key": key, "target": target_key, "params": action.params, "dry_run": true, "answer": answer}),
                );
                return StepOutcome::Done { verified: false };
            }
            self.event(
                iid,
                "action",
                &actor,
                &format!(
                    "running {kind} step {:?} on {target_key} (attempt {attempt}/{})",
                    step.name.value,
                    step.retry.max_attempts.max(1)
                ),
                json!({"idempotency_key": key, "target": target_key, "params": action.params}),
            );
            let started = Instant::now();
            // Rule 3: the timeout drops the future; executors clean up on drop.
            let result =
                match tokio::time::timeout(step.timeout.std(), executor.execute(&ctx)).await {
                    Ok(r) => r,
                    Err(_) => Err(format!("timed out after {}", step.timeout)),
                };
            let secs = started.elapsed().as_secs_f64();
            self.metrics
                .step_duration
                .get_or_create(&ExecutorLabels {
                    executor: kind.to_string(),
                })
                .observe(secs);
            match result {
                Ok(out) => {
                    self.recent
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(target_key.clone(), Instant::now());
                    let _ = self.store.journal_finish(
                        &key,
                        ActionState::Succeeded,
                        self.now(),
                        &out.summary,
                    );
                    self.count(kind, "succeeded");
                    self.event(
                        iid,
                        "action",
                        &actor,
                        &format!("{} ({:.2}s)", out.summary, secs),
                        json!({"idempotency_key": key, "result": out.details, "seconds": secs}),
                    );
                    let Some(v) = &step.verify else {
                        return StepOutcome::Done { verified: false };
                    };
                    if incident.is_open() && require_open {
                        let _ = self.store.transition(
                            iid,
                            IncidentState::Recovering,
                            self.now(),
                            &actor,
                            &format!("{kind} step {:?} ran; verifying", step.name.value),
                        );
                    }
                    let vstart = Instant::now();
                    let passed = self.verify(iid, v).await;
                    let _ = self.store.journal_verified(&key, passed, self.now());
                    if passed {
                        self.event(
                            iid,
                            "verify",
                            &actor,
                            &format!(
                                "verified: step {:?} held ({:.2}s)",
                                step.name.value,
                                vstart.elapsed().as_secs_f64()
                            ),
                            json!({"step": path}),
                        );
                        return StepOutcome::Done { verified: true };
                    }
                    last_err = format!("verification did not pass within {}", v.within);
                    self.event(
                        iid,
                        "verify",
                        &actor,
                        &format!("step {:?}: {last_err}", step.name.value),
                        json!({"step": path}),
                    );
                }
                Err(e) => {
                    let outcome = if e.starts_with("timed out") {
                        "timeout"
                    } else {
                        "failed"
                    };
                    let _ = self
                        .store
                        .journal_finish(&key, ActionState::Failed, self.now(), &e);
                    self.count(kind, outcome);
                    self.event(
                        iid,
                        "action",
                        &actor,
                        &format!(
                            "{kind} step {:?} attempt {attempt} failed: {e}",
                            step.name.value
                        ),
                        json!({"idempotency_key": key, "error": e}),
                    );
                    last_err = e;
                }
            }
        }
        StepOutcome::Failed(last_err)
    }

    fn count(&self, executor: &str, outcome: &str) {
        self.metrics
            .actions
            .get_or_create(&ActionLabels {
                executor: executor.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Sleep, watching the incident; true if it resolved meanwhile.
    async fn sleep_unless_resolved(&self, iid: i64, d: std::time::Duration) -> bool {
        let deadline = Instant::now() + d;
        loop {
            if self.is_resolved(iid) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            tokio::time::sleep((deadline - now).min(std::time::Duration::from_millis(100))).await;
        }
    }

    /// The incident as stored now.
    fn read_incident(&self, iid: i64) -> Result<Incident, StepOutcome> {
        match self.store.incident(iid) {
            Ok(Some(i)) => Ok(i),
            Ok(None) => Err(StepOutcome::Failed(format!("incident {iid} vanished"))),
            Err(e) => Err(StepOutcome::Failed(format!("store: {e}"))),
        }
    }

    /// Ask the runbook's guard rails about `action` (not yet journalled),
    /// waiting out warm-ups. A block is journalled, put in the timeline and
    /// counted, and ends the step.
    async fn pass_guards(
        &self,
        run: &Run,
        rb: &Runbook,
        action: &Action,
        dry: bool,
        actor: &str,
    ) -> Result<(), StepOutcome> {
        let g = &rb.guards.for_target(&action.target);
        if *g == Guards::default() {
            return Ok(());
        }
        let iid = run.incident_id;
        let mut announced = false;
        loop {
            let now = self.now();
            let since = now.saturating_sub(g.lookback());
            let read = |target: Option<&str>, runbook: Option<&str>| {
                self.store
                    .recent_actions(&ActionFilter {
                        target: target.map(str::to_string),
                        runbook: runbook.map(str::to_string),
                        since,
                        limit: GUARD_HISTORY,
                    })
                    .unwrap_or_default()
            };
            let on_target = read(Some(&action.target), None);
            let of_runbook = if g.rate_limit.is_some() {
                read(None, Some(&rb.name.value))
            } else {
                Vec::new()
            };
            let history = History {
                on_target: &on_target,
                of_runbook: &of_runbook,
                dry_run: dry,
                asking: Some((run.id, &action.step)),
            };
            match g.check(&action.executor, now, history) {
                Verdict::Go => break,
                Verdict::Block { guard, reason } => {
                    return Err(self.block(run, action, guard, &reason, actor));
                }
                Verdict::Wait {
                    guard,
                    until,
                    reason,
                } => {
                    if !announced {
                        self.event(
                            iid,
                            "guard",
                            actor,
                            &format!("step {:?} waits: {guard}: {reason}", action.step_name),
                            json!({"guard": guard, "until": until, "step": action.step}),
                        );
                        announced = true;
                    }
                    let d =
                        std::time::Duration::from_millis(until.saturating_sub(now).max(1) as u64);
                    if self.sleep_unless_resolved(iid, d).await {
                        return Err(StepOutcome::IncidentResolved);
                    }
                }
            }
        }
        if let Some(c) = &g.concurrency {
            let admitted = self.pools.lock().unwrap_or_else(|p| p.into_inner()).admit(
                &c.group,
                c.limit(),
                &action.target,
                run.id,
            );
            if let Err(reason) = admitted {
                return Err(self.block(run, action, "concurrency", &reason, actor));
            }
        }
        Ok(())
    }

    /// Record that guard `guard` held `action` back.
    fn block(
        &self,
        run: &Run,
        action: &Action,
        guard: &str,
        reason: &str,
        actor: &str,
    ) -> StepOutcome {
        let iid = run.incident_id;
        if self.is_resolved(iid) {
            return StepOutcome::IncidentResolved;
        }
        let detail = format!("guard {guard}: {reason}");
        let now = self.now();
        let blocked = Action {
            state: ActionState::Blocked,
            intended_at: now,
            finished_at: Some(now),
            detail: Some(detail.clone()),
            ..action.clone()
        };
        match self.store.journal_intend(&blocked) {
            Ok(_) => {}
            Err(StoreError::Fenced(why)) => return StepOutcome::Deposed(why),
            Err(e) => tracing::error!(incident = iid, error = %e, "cannot journal a guard block"),
        }
        self.metrics
            .guard_blocks
            .get_or_create(&GuardLabels {
                guard: guard.to_string(),
            })
            .inc();
        self.count(&action.executor, "blocked");
        self.event(
            iid,
            "guard",
            actor,
            &format!(
                "step {:?} on {} held by guard {guard}: {reason}",
                action.step_name, action.target
            ),
            json!({"guard": guard, "reason": reason, "target": action.target, "idempotency_key": action.idempotency_key}),
        );
        tracing::warn!(incident = iid, guard, target = %action.target, reason, "guard rail held an action back");
        StepOutcome::Blocked(detail)
    }

    fn is_resolved(&self, iid: i64) -> bool {
        matches!(self.store.incident(iid), Ok(Some(i)) if !i.is_open())
    }

    /// One poll of the verify checks.
    async fn verify_once(&self, iid: i64, v: &Verify) -> bool {
        let once = Verify {
            within: crate::config::duration::Duration::from_millis(0),
            ..v.clone()
        };
        self.verify(iid, &once).await
    }

    /// Poll the verify checks until all pass at once, or time runs out.
    async fn verify(&self, iid: i64, v: &Verify) -> bool {
        let deadline = Instant::now() + v.within.std();
        let cleared_needed = v.detector_cleared || (v.http.is_none() && v.tcp.is_none());
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let per_check = remaining.clamp(
                std::time::Duration::from_millis(500),
                std::time::Duration::from_secs(2),
            );
            let mut ok = true;
            if cleared_needed && !self.is_resolved(iid) {
                ok = false;
            }
            if ok && let Some(url) = &v.http {
                let r =
                    tokio::time::timeout(per_check, self.checks.http(url, &v.expect_status)).await;
                ok = r == Ok(true);
            }
            if ok && let Some(addr) = &v.tcp {
                let r = tokio::time::timeout(per_check, self.checks.tcp(addr)).await;
                ok = r == Ok(true);
            }
            if ok {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(v.interval.std()).await;
        }
    }
}

#[cfg(test)]
#[path = "runner_tests.rs"]
mod tests;
