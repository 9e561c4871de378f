//! Stand-ins for everything a runbook touches outside medic: executors that
//! record each call and answer as the test scripts them, and `verify` checks
//! answered from the timeline. The approval gate is the real one: it only
//! reads the store, where the timeline's acknowledgements go.
//!
//! The fakes also watch two of the runner's rules as it plays: every call
//! was journalled (`intended`) before it was made, and no step of `steps`
//! acted on a resolved incident. A break is a violation and fails the case.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use super::file::Answer;
use crate::clock::SharedClock;
use crate::executors::{
    ActionConfig, ActionOutcome, BuildExecutor, ExecFuture, Executor, ExecutorDeps, StepContext,
};
use crate::runbooks::checks::{CheckFuture, Checks};
use crate::series::Millis;
use crate::stores::{ActionState, Store};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One call of a fake executor.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The attempt's idempotency key.
    pub key: String,
    /// Step name.
    pub step: String,
    /// Executor kind.
    pub kind: String,
    /// `kind:target`.
    pub target: String,
    /// Attempt number.
    pub attempt: u32,
    /// Called to say what it would do (a dry run).
    pub dry_run: bool,
    /// When (wall-clock milliseconds of the virtual clock).
    pub at: Millis,
}

/// The fake executors of one case.
pub struct Fakes {
    answers: BTreeMap<String, Vec<Answer>>,
    used: Mutex<HashMap<String, usize>>,
    calls: Mutex<Vec<Call>>,
    violations: Mutex<Vec<String>>,
    store: Arc<dyn Store>,
    clock: SharedClock,
    deps: ExecutorDeps,
}

impl Fakes {
    /// Fakes answering as `answers` says. `deps` builds the real executors
    /// the fakes ask for their kind, parameters and target (never to act).
    pub fn new(
        answers: BTreeMap<String, Vec<Answer>>,
        deps: ExecutorDeps,
        clock: SharedClock,
    ) -> Arc<Self> {
        Arc::new(Fakes {
            answers,
            used: Mutex::default(),
            calls: Mutex::default(),
            violations: Mutex::default(),
            store: deps.store.clone(),
            clock,
            deps,
        })
    }

    /// What the runner builds its executors with.
    pub fn builder(self: &Arc<Self>) -> BuildExecutor {
        let me = self.clone();
        Arc::new(move |a: &ActionConfig| {
            Box::new(Fake {
                real: a.build(&me.deps),
                fakes: me.clone(),
            }) as Box<dyn Executor>
        })
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.calls).clone()
    }

    /// Rules the runner broke.
    pub fn violations(&self) -> Vec<String> {
        lock(&self.violations).clone()
    }

    /// The scripted answer for the next call of `step`, if it has a script.
    fn next_answer(&self, step: &str) -> Option<Answer> {
        let list = self.answers.get(step)?;
        let mut used = lock(&self.used);
        let n = used.entry(step.to_string()).or_default();
        let a = list.get(*n).or(list.last()).cloned();
        *n += 1;
        a
    }

    fn record(&self, ctx: &StepContext, kind: &str, target: String) {
        let at = self.clock.now_millis();
        let mut violations = Vec::new();
        match self.store.journal_get(&ctx.idempotency_key) {
            Ok(Some(a)) if a.state == ActionState::Intended => {}
            Ok(Some(a)) => violations.push(format!(
                "step {:?} was called with its journal entry {} already {}",
                ctx.step_name,
                ctx.idempotency_key,
                a.state.as_str()
            )),
            _ => violations.push(format!(
                "step {:?} was called before it was journalled ({})",
                ctx.step_name, ctx.idempotency_key
            )),
        }
        if ctx.step.starts_with("steps[")
            && !ctx.dry_run
            && matches!(self.store.incident(ctx.incident.id), Ok(Some(i)) if !i.is_open())
        {
            violations.push(format!(
                "step {:?} acted on incident {} after it resolved",
                ctx.step_name, ctx.incident.id
            ));
        }
        lock(&self.violations).extend(violations);
        lock(&self.calls).push(Call {
            key: ctx.idempotency_key.clone(),
            step: ctx.step_name.clone(),
            kind: kind.to_string(),
            target: format!("{kind}:{target}"),
            attempt: ctx.attempt,
            dry_run: ctx.dry_run,
            at,
        });
    }
}

/// A fake executor: the real one's kind, parameters and target; a scripted
/// answer instead of the action.
struct Fake {
    real: Box<dyn Executor>,
    fakes: Arc<Fakes>,
}

impl Executor for Fake {
    fn kind(&self) -> &'static str {
        self.real.kind()
    }

    fn describe(&self) -> serde_json::Value {
        self.real.describe()
    }

    fn target(&self, ctx: &StepContext) -> String {
        self.real.target(ctx)
    }

    fn supports_dry_run(&self) -> bool {
        self.real.supports_dry_run()
    }

    fn execute<'a>(&'a self, ctx: &'a StepContext) -> ExecFuture<'a> {
        Box::pin(async move {
            let kind = self.real.kind();
            self.fakes.record(ctx, kind, self.real.target(ctx));
            // The approval gate only reads the store: the real one runs.
            let real_gate = kind == "approval";
            if ctx.dry_run {
                if real_gate {
                    return self.real.execute(ctx).await;
                }
                return Ok(ActionOutcome {
                    summary: format!("(test) {kind} would run"),
                    details: serde_json::Value::Null,
                });
            }
            let answer = match self.fakes.next_answer(&ctx.step_name) {
                Some(a) => a,
                None if real_gate => return self.real.execute(ctx).await,
                None => Answer::Ok,
            };
            let ok = || {
                Ok(ActionOutcome {
                    summary: format!("(test) {kind} step {:?} succeeded", ctx.step_name),
                    details: serde_json::Value::Null,
                })
            };
            match answer {
                Answer::Ok => ok(),
                Answer::Fail(m) => Err(m),
                Answer::Hang => std::future::pending().await,
                Answer::Takes(d) => {
                    tokio::time::sleep(d.std()).await;
                    ok()
                }
            }
        })
    }
}

/// `verify.http` and `verify.tcp` answered from the timeline's `passes` and
/// `fails` events. A check fails until it passes.
#[derive(Default)]
pub struct TimelineChecks {
    passing: Mutex<HashMap<String, bool>>,
}

impl TimelineChecks {
    /// From now on `check` passes (or fails).
    pub fn set(&self, check: &str, passes: bool) {
        lock(&self.passing).insert(check.to_string(), passes);
    }

    fn passes(&self, check: &str) -> bool {
        lock(&self.passing).get(check).copied().unwrap_or(false)
    }
}

impl Checks for TimelineChecks {
    fn http<'a>(&'a self, url: &'a str, _expect_status: &'a [u16]) -> CheckFuture<'a> {
        Box::pin(std::future::ready(self.passes(url)))
    }

    fn tcp<'a>(&'a self, addr: &'a str) -> CheckFuture<'a> {
        Box::pin(std::future::ready(self.passes(addr)))
    }
}
