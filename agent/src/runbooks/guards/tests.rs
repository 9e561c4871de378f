//! Each guard, driven by journal entries and an explicit time.

use super::*;

const S: Millis = 1000;

/// A journal entry: `executor` acted on `target` at `at` (ms) with `state`.
fn act(at: Millis, state: ActionState) -> Action {
    Action {
        idempotency_key: format!("run-1/steps[0]/attempt-{at}"),
        run_id: 1,
        incident_id: 1,
        step: "steps[0]".into(),
        step_name: "restart".into(),
        attempt: 1,
        executor: "restart".into(),
        runbook: "rb".into(),
        target: "restart:web".into(),
        params: serde_json::Value::Null,
        state,
        intended_at: at,
        finished_at: (state != ActionState::Intended).then_some(at + 100),
        detail: None,
        verified: None,
        verified_at: None,
        fence: None,
    }
}

fn verified(mut a: Action, passed: bool, at: Millis) -> Action {
    a.verified = Some(passed);
    a.verified_at = Some(at);
    a
}

fn on_target(list: &[Action]) -> History<'_> {
    History {
        on_target: list,
        of_runbook: list,
        dry_run: false,
        asking: None,
    }
}

fn blocked_by(v: &Verdict) -> Option<&'static str> {
    match v {
        Verdict::Block { guard, .. } => Some(guard),
        _ => None,
    }
}

fn dur(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

#[test]
fn rate_limit_counts_a_sliding_window() {
    let g = RateLimit {
        max: 2,
        window: dur(60_000),
        per: Per::Runbook,
    };
    let j = [
        act(0, ActionState::Succeeded),
        act(10 * S, ActionState::Failed),
    ];
    assert_eq!(
        blocked_by(&g.check(20 * S, on_target(&j))),
        Some("rate_limit")
    );
    // The first leaves the window at 60 s.
    assert_eq!(g.check(60 * S, on_target(&j)), Verdict::Go);
    // Dry-run records and blocked attempts are not actions…
    let j = [
        act(0, ActionState::DryRun),
        act(S, ActionState::Blocked),
        act(2 * S, ActionState::Succeeded),
    ];
    assert_eq!(g.check(3 * S, on_target(&j)), Verdict::Go);
    // …except during a dry run, which shows what the guard would do.
    let h = History {
        dry_run: true,
        ..on_target(&j)
    };
    assert_eq!(blocked_by(&g.check(3 * S, h)), Some("rate_limit"));
}

#[test]
fn rate_limit_counts_only_the_runbooks_own_steps() {
    let g = RateLimit {
        max: 1,
        window: dur(60_000),
        per: Per::Runbook,
    };
    let mut escalation = act(0, ActionState::Succeeded);
    escalation.step = "escalate[0]".into();
    let mut compensation = act(S, ActionState::Succeeded);
    compensation.step = "steps[0].on_failure[0]".into();
    let mut restoration = act(2 * S, ActionState::Succeeded);
    restoration.step = "restore[0]".into();
    let j = [escalation, compensation, restoration];
    assert_eq!(g.check(3 * S, on_target(&j)), Verdict::Go);
    assert!(guarded("steps[1]"));
    assert!(!guarded("steps[0].on_failure[1]"));
    assert!(!guarded("escalate[0]") && !guarded("restore[0]"));
}

#[test]
fn rate_limit_lets_the_retries_of_a_step_it_let_act_through() {
    // degrade-on-latency: at most 2 per hour, 3 attempts per step.
    let g = RateLimit {
        max: 2,
        window: dur(3_600_000),
        per: Per::Runbook,
    };
    let attempt = |run: i64, n: u32, at| Action {
        run_id: run,
        attempt: n,
        ..act(at, ActionState::Failed)
    };
    let j = [attempt(1, 1, 0), attempt(1, 2, S)];
    // The third attempt of run 1's step is part of the action let through…
    let retry = History {
        asking: Some((1, "steps[0]")),
        ..on_target(&j)
    };
    assert_eq!(g.check(3 * S, retry), Verdict::Go);
    // …another run's step is a new action, and the attempts count.
    let other = History {
        asking: Some((2, "steps[0]")),
        ..on_target(&j)
    };
    assert_eq!(blocked_by(&g.check(3 * S, other)), Some("rate_limit"));
    // A step that was held back has no action to retry.
    let held = [
        attempt(1, 1, 0),
        attempt(2, 1, S),
        Action {
            run_id: 3,
            ..act(2 * S, ActionState::Blocked)
        },
    ];
    let again = History {
        asking: Some((3, "steps[0]")),
        ..on_target(&held)
    };
    assert_eq!(blocked_by(&g.check(3 * S, again)), Some("rate_limit"));
}

#[test]
fn rate_limit_per_target_uses_the_target_history() {
    let g = RateLimit {
        max: 1,
        window: dur(60_000),
        per: Per::Target,
    };
    let target = [act(0, ActionState::Succeeded)];
    let h = History {
        of_runbook: &[],
        ..on_target(&target)
    };
    assert!(blocked_by(&g.check(S, h)).is_some());
    let h = History {
        on_target: &[],
        ..on_target(&target)
    };
    assert_eq!(g.check(S, h), Verdict::Go);
}

fn restart_loop() -> RestartLoop {
    RestartLoop {
        max_restarts: 3,
        window: dur(600_000),
        reset_after: dur(60_000),
        warmup: dur(5_000),
        kinds: vec!["restart".into()],
    }
}

#[test]
fn restart_loop_blocks_the_fourth_restart_in_the_window() {
    let g = restart_loop();
    // Three restarts, each verified, each broken again 10 s later.
    let j = [
        verified(act(0, ActionState::Succeeded), true, 2 * S),
        verified(act(12 * S, ActionState::Succeeded), true, 14 * S),
        verified(act(24 * S, ActionState::Succeeded), true, 26 * S),
    ];
    assert_eq!(g.counted(36 * S, on_target(&j)).len(), 3);
    let v = g.check("restart", 36 * S, on_target(&j));
    assert_eq!(blocked_by(&v), Some("restart_loop"), "{v:?}");
    // Other executors are not restarts.
    assert_eq!(g.check("notify", 36 * S, on_target(&j)), Verdict::Go);
    // Failed restarts count too: they may have restarted the process.
    let j = [
        act(0, ActionState::Failed),
        act(12 * S, ActionState::Interrupted),
        act(24 * S, ActionState::Succeeded),
    ];
    assert!(blocked_by(&g.check("restart", 36 * S, on_target(&j))).is_some());
}

#[test]
fn restart_loop_count_resets_after_health_held() {
    let g = restart_loop();
    // Two restarts; the second verified at 14 s and nothing happened for 60 s.
    let mut j = vec![
        verified(act(0, ActionState::Succeeded), true, 2 * S),
        verified(act(12 * S, ActionState::Succeeded), true, 14 * S),
    ];
    assert_eq!(
        g.counted(73 * S, on_target(&j)).len(),
        2,
        "held 59 s: not yet"
    );
    assert_eq!(
        g.counted(74 * S, on_target(&j)).len(),
        0,
        "held 60 s: reset"
    );
    // A restart after the reset starts a new count of one, even later on.
    j.push(verified(act(80 * S, ActionState::Succeeded), true, 82 * S));
    assert_eq!(g.counted(90 * S, on_target(&j)).len(), 1);
    // A verification that failed does not reset anything.
    let j = [
        verified(act(0, ActionState::Succeeded), false, 2 * S),
        act(200 * S, ActionState::Succeeded),
    ];
    assert_eq!(g.counted(300 * S, on_target(&j)).len(), 2);
}

#[test]
fn restart_loop_forgets_restarts_outside_the_window() {
    let g = restart_loop();
    let j = [
        act(0, ActionState::Succeeded),
        act(10 * S, ActionState::Succeeded),
        act(590 * S, ActionState::Succeeded),
    ];
    assert_eq!(g.counted(605 * S, on_target(&j)).len(), 2);
    assert_eq!(g.check("restart", 605 * S, on_target(&j)), Verdict::Go);
}

#[test]
fn restart_loop_waits_out_the_warmup_after_a_restart() {
    let g = restart_loop();
    let j = [act(10 * S, ActionState::Succeeded)];
    // Finished at 10.1 s; warm-up 5 s.
    match g.check("restart", 12 * S, on_target(&j)) {
        Verdict::Wait { guard, until, .. } => {
            assert_eq!(guard, "restart_loop");
            assert_eq!(until, 15 * S + 100);
        }
        v => panic!("expected a wait, got {v:?}"),
    }
    assert_eq!(g.check("restart", 15 * S + 100, on_target(&j)), Verdict::Go);
}

fn breaker() -> CircuitBreaker {
    CircuitBreaker {
        failures: 3,
        cooldown: dur(30_000),
    }
}

#[test]
fn circuit_breaker_opens_after_consecutive_failures_then_half_opens() {
    let g = breaker();
    let mut j = vec![
        act(0, ActionState::Failed),
        // Did not verify: a failure as well.
        verified(act(S, ActionState::Succeeded), false, 2 * S),
        act(3 * S, ActionState::Failed),
    ];
    // Open from the last failure (finished at 3.1 s) for 30 s.
    assert_eq!(
        blocked_by(&g.check(10 * S, on_target(&j))),
        Some("circuit_breaker")
    );
    assert_eq!(
        blocked_by(&g.check(33 * S, on_target(&j))),
        Some("circuit_breaker")
    );
    // Half-open: one try.
    assert_eq!(g.check(33 * S + 100, on_target(&j)), Verdict::Go);
    // While it runs, nobody else tries.
    j.push(act(34 * S, ActionState::Intended));
    assert_eq!(
        blocked_by(&g.check(35 * S, on_target(&j))),
        Some("circuit_breaker")
    );
    // It failed: open again for a full cool-down.
    j.pop();
    j.push(act(34 * S, ActionState::Failed));
    assert_eq!(
        blocked_by(&g.check(60 * S, on_target(&j))),
        Some("circuit_breaker")
    );
    assert_eq!(g.check(64 * S + 100, on_target(&j)), Verdict::Go);
    // It succeeded: closed.
    j.push(act(65 * S, ActionState::Succeeded));
    assert_eq!(g.check(66 * S, on_target(&j)), Verdict::Go);
}

#[test]
fn circuit_breaker_needs_consecutive_failures() {
    let g = breaker();
    let j = [
        act(0, ActionState::Failed),
        act(S, ActionState::Failed),
        act(2 * S, ActionState::Succeeded),
        act(3 * S, ActionState::Failed),
    ];
    assert_eq!(g.check(4 * S, on_target(&j)), Verdict::Go);
}

#[test]
fn circuit_breaker_ignores_compensations_on_the_same_target() {
    // fail-over-backend: the failover fails and its on_failure step puts
    // the server back (same target, succeeds) — twice. The breaker opens.
    let g = CircuitBreaker {
        failures: 2,
        cooldown: dur(600_000),
    };
    let compensation = |at| Action {
        step: "steps[0].on_failure[0]".into(),
        ..act(at, ActionState::Succeeded)
    };
    let restoration = |at| Action {
        step: "restore[0]".into(),
        ..act(at, ActionState::Succeeded)
    };
    let j = [
        act(0, ActionState::Failed),
        compensation(S),
        act(60 * S, ActionState::Failed),
        compensation(61 * S),
        restoration(62 * S),
    ];
    assert_eq!(
        blocked_by(&g.check(120 * S, on_target(&j))),
        Some("circuit_breaker")
    );
}

#[test]
fn check_prefers_a_block_over_a_wait() {
    let g = Guards {
        restart_loop: Some(restart_loop()),
        rate_limit: Some(RateLimit {
            max: 1,
            window: dur(60_000),
            per: Per::Runbook,
        }),
        ..Guards::default()
    };
    let j = [act(10 * S, ActionState::Succeeded)];
    assert_eq!(
        blocked_by(&g.check("restart", 12 * S, on_target(&j))),
        Some("rate_limit")
    );
    let g = Guards {
        rate_limit: None,
        ..g
    };
    assert!(matches!(
        g.check("restart", 12 * S, on_target(&j)),
        Verdict::Wait { .. }
    ));
    assert_eq!(
        Guards::default().check("restart", 12 * S, on_target(&j)),
        Verdict::Go
    );
}

#[test]
fn concurrency_limit_by_count_and_percent() {
    let c = |t: Option<u32>, p: Option<f64>, n: Option<u32>| Concurrency {
        group: "web".into(),
        max_targets: t,
        max_percent: p,
        group_size: n,
    };
    assert_eq!(c(Some(3), None, None).limit(), 3);
    assert_eq!(c(None, Some(30.0), Some(10)).limit(), 3);
    assert_eq!(c(Some(2), Some(30.0), Some(10)).limit(), 2);
    assert_eq!(c(None, Some(10.0), Some(4)).limit(), 1, "at least one");
}

#[test]
fn pools_hold_at_most_the_limit_of_targets_across_runs() {
    let mut p = Pools::default();
    assert!(p.admit("web", 2, "restart:a", 1).is_ok());
    assert!(p.admit("web", 2, "restart:b", 2).is_ok());
    let e = p.admit("web", 2, "restart:c", 3).unwrap_err();
    assert!(e.contains("2 of at most 2 targets"), "{e}");
    // Another run on a held target shares its slot.
    assert!(p.admit("web", 2, "restart:a", 4).is_ok());
    // Other groups are separate.
    assert!(p.admit("db", 1, "restart:c", 3).is_ok());
    p.release(1);
    assert_eq!(p.held("web"), 2, "run 4 still holds a");
    p.release(4);
    assert!(p.admit("web", 2, "restart:c", 3).is_ok());
    assert_eq!(p.held("web"), 2);
}

#[test]
fn per_target_settings_replace_the_runbooks_for_that_target() {
    let g = Guards {
        restart_loop: Some(restart_loop()),
        circuit_breaker: Some(breaker()),
        targets: [(
            "restart:db".to_string(),
            Guards {
                restart_loop: Some(RestartLoop {
                    max_restarts: 1,
                    ..restart_loop()
                }),
                ..Guards::default()
            },
        )]
        .into(),
        ..Guards::default()
    };
    let db = g.for_target("restart:db");
    assert_eq!(db.restart_loop.unwrap().max_restarts, 1);
    assert_eq!(
        db.circuit_breaker,
        Some(breaker()),
        "the rest is the runbook's"
    );
    assert!(db.targets.is_empty());
    let web = g.for_target("restart:web");
    assert_eq!(web.restart_loop.unwrap().max_restarts, 3);
    // One restart of db already blocks the next; web may have three.
    let j = [act(0, ActionState::Succeeded)];
    let h = on_target(&j);
    assert!(blocked_by(&g.for_target("restart:db").check("restart", 10 * S, h)).is_some());
    assert_eq!(
        g.for_target("restart:web").check("restart", 10 * S, h),
        Verdict::Go
    );
}
