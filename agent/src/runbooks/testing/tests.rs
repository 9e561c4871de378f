//! The runbook test runner: the shipped runbooks pass their tests, a wrong
//! expectation fails with a diff that says what differs, a malformed file
//! names file, line and column, and a play is the same every time.

use std::path::{Path, PathBuf};

use super::*;

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A directory with `rb.yaml` and `rb.test.yaml`.
fn setup(name: &str, runbook: &str, test: &str) -> (Dir, PathBuf) {
    let d = std::env::temp_dir().join(format!("medic-rbtest-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("rb.yaml"), runbook).unwrap();
    std::fs::write(d.join("rb.test.yaml"), test).unwrap();
    let t = d.join("rb.test.yaml");
    (Dir(d), t)
}

fn run_one(test: &Path) -> (Summary, String) {
    let mut out = Vec::new();
    let s = run(&[test.to_path_buf()], &Options::default(), &mut out);
    (s, String::from_utf8(out).unwrap())
}

const RUNBOOK: &str = r#"name: restart-web
match: {detectors: [web-down]}
guards:
  restart_loop: {max_restarts: 2, window: 10m, reset_after: 5m}
steps:
  - name: restart web
    kind: restart
    service: "{{ labels.service }}"
    timeout: 10s
    retry: {max_attempts: 2, backoff: 5s}
    verify: {detector_cleared: true, within: 30s}
escalate:
  - name: page
    kind: notify
    url: http://127.0.0.1:9/hook
"#;

/// A case whose expectations all hold; the tests below break one at a time.
const GOOD_CASE: &str = r#"  - name: CASE
    incidents:
      web: {detector: web-down, labels: {service: web}}
    timeline:
      - {at: 0s, fire: web}
      - {at: 10s, resolve: web}
    expect:
      steps:
        - {at: 0s, incident: web, step: restart web, attempt: 1, state: succeeded, verified: true,
           target: "restart:web", params: {service: web}}
      not_run: [page]
      incidents:
        web: {state: resolved, runs: [recovered]}
      events:
        - {incident: web, kind: verify, message: "verified: step \"restart web\" held"}
"#;

#[test]
fn the_shipped_runbooks_pass_their_tests_and_each_has_some() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runbooks");
    let mut out = Vec::new();
    let s = run(&[dir], &Options::default(), &mut out);
    let out = String::from_utf8(out).unwrap();
    assert!(s.ok(), "{out}");
    assert!(
        s.untested.is_empty(),
        "runbooks without tests: {:?}",
        s.untested
    );
    // Two top-level runbooks and six in the library.
    assert_eq!(s.files, 8, "{out}");
    assert!(s.passed >= 30, "{out}");
}

#[test]
fn a_case_whose_expectations_hold_passes() {
    let test = format!("cases:\n{}", GOOD_CASE.replace("CASE", "good"));
    let (_d, t) = setup("good", RUNBOOK, &test);
    let (s, out) = run_one(&t);
    assert_eq!((s.passed, s.failed, s.malformed), (1, 0, 0), "{out}");
    assert!(out.contains("  ok      good"), "{out}");
}

/// Each wrong expectation, alone, fails the case and the output says what
/// differs. A test that cannot fail is not a test.
#[test]
fn a_wrong_expectation_fails_and_says_what_differs() {
    let wrong = [
        // (replace, with, the diff must contain)
        (
            "state: succeeded, verified: true",
            "state: blocked, verified: true",
            "state: expected blocked, got succeeded",
        ),
        (
            "{at: 0s, incident",
            "{at: 30s, incident",
            "at: expected 30s (±1s), got 0s",
        ),
        ("attempt: 1", "attempt: 2", "attempt: expected 2, got 1"),
        (
            "params: {service: web}",
            "params: {service: db}",
            "params: expected {service: db}",
        ),
        (
            "target: \"restart:web\"",
            "target: \"restart:db\"",
            "target: expected restart:db",
        ),
        (
            "not_run: [page]",
            "not_run: [restart web]",
            "step \"restart web\" must not run",
        ),
        (
            "runs: [recovered]",
            "runs: [blocked]",
            "expected runs [blocked], got [recovered]",
        ),
        (
            "state: resolved",
            "state: firing",
            "incident web: expected state firing, got resolved",
        ),
        (
            "message: \"verified",
            "message: \"blocked",
            "event 1 not found",
        ),
        // One more step than happened.
        (
            "params: {service: web}}\n",
            "params: {service: web}}\n        - {step: page}\n",
            "expected {step: page}, but nothing more happened",
        ),
    ];
    for (i, (from, to, says)) in wrong.iter().enumerate() {
        let case = GOOD_CASE.replacen(from, to, 1);
        assert_ne!(case, GOOD_CASE, "{from:?} not in the case");
        let test = format!("cases:\n{}", case.replace("CASE", "wrong"));
        let (_d, t) = setup(&format!("wrong{i}"), RUNBOOK, &test);
        let (s, out) = run_one(&t);
        assert_eq!(
            (s.passed, s.failed),
            (0, 1),
            "{from:?} → {to:?} passed:\n{out}"
        );
        assert!(!s.ok());
        assert!(out.contains("FAILED  wrong"), "{out}");
        assert!(
            out.contains(says),
            "{from:?} → {to:?}: no {says:?} in\n{out}"
        );
        // What happened is shown, ready to paste.
        assert!(out.contains("what happened:"), "{out}");
    }
}

#[test]
fn an_unexpected_step_fails_the_case() {
    let test = r#"cases:
  - name: never fixed
    incidents:
      web: {detector: web-down, labels: {service: web}}
    timeline:
      - {at: 0s, fire: web}
    expect:
      steps:
        - {step: restart web, attempt: 1}
"#;
    let (_d, t) = setup("extra", RUNBOOK, test);
    let (s, out) = run_one(&t);
    assert_eq!(s.failed, 1, "{out}");
    // The retry after 30s of verification and 5s of back-off, then the page.
    assert!(
        out.contains("+  2 {at: 35s, incident: web, step: restart web, attempt: 2"),
        "{out}"
    );
    assert!(out.contains("step: page"), "{out}");
    assert!(out.contains("← not expected"), "{out}");
}

fn malformed(name: &str, test: &str) -> String {
    let (_d, t) = setup(name, RUNBOOK, test);
    let (s, out) = run_one(&t);
    assert_eq!(s.malformed, 1, "{out}");
    assert!(!s.ok());
    out
}

#[test]
fn a_malformed_test_file_names_file_line_and_column() {
    // Unknown field (serde), with the excerpt.
    let out = malformed(
        "typo",
        "cases:\n  - name: x\n    incidents: {web: {detector: web-down}}\n    timeline:\n      - {at: 0s, fire: web}\n    expect:\n      stepz: []\n",
    );
    assert!(
        out.contains("rb.test.yaml:7:7: unknown field `stepz`"),
        "{out}"
    );
    // A step the runbook does not have.
    let out = malformed(
        "step",
        "cases:\n  - name: x\n    incidents: {web: {detector: web-down}}\n    timeline:\n      - {at: 0s, fire: web}\n    expect:\n      not_run: [restart db]\n",
    );
    assert!(
        out.contains("rb.test.yaml:7:17: case \"x\": runbook \"restart-web\" has no step named \"restart db\""),
        "{out}"
    );
    // An incident the case does not declare.
    let out = malformed(
        "incident",
        "cases:\n  - name: x\n    incidents: {web: {detector: web-down}}\n    timeline:\n      - {at: 0s, fire: db}\n    expect: {}\n",
    );
    assert!(
        out.contains("rb.test.yaml:5:24: case \"x\": no incident named \"db\""),
        "{out}"
    );
    // A check no step verifies.
    let out = malformed(
        "check",
        "cases:\n  - name: x\n    incidents: {web: {detector: web-down}}\n    timeline:\n      - {at: 0s, passes: \"http://x/health\"}\n    expect: {}\n",
    );
    assert!(
        out.contains("rb.test.yaml:5:26: case \"x\": no step of runbook"),
        "{out}"
    );
    // Answers for a step that does not exist (a map key).
    let out = malformed(
        "answers",
        "cases:\n  - name: x\n    incidents: {web: {detector: web-down}}\n    timeline:\n      - {at: 0s, fire: web}\n    answers:\n      restart wbe: [ok]\n    expect: {}\n",
    );
    assert!(
        out.contains("rb.test.yaml:7:7: case \"x\": answers: runbook"),
        "{out}"
    );
    // Two things in one event; events out of order.
    let out = malformed(
        "events",
        "cases:\n  - name: x\n    incidents: {web: {detector: web-down}}\n    timeline:\n      - {at: 5s, fire: web, resolve: web}\n      - {at: 1s, resolve: web}\n    expect: {}\n",
    );
    assert!(
        out.contains("rb.test.yaml:5:14: case \"x\": one thing per event"),
        "{out}"
    );
    assert!(
        out.contains("rb.test.yaml:6:14: case \"x\": the timeline must be in time order"),
        "{out}"
    );
    // Bad answer.
    let out = malformed(
        "answer",
        "cases:\n  - name: x\n    incidents: {web: {detector: web-down}}\n    timeline:\n      - {at: 0s, fire: web}\n    answers:\n      restart web: [sucess]\n    expect: {}\n",
    );
    assert!(out.contains("rb.test.yaml:7:"), "{out}");
    assert!(out.contains("sucess"), "{out}");
}

#[test]
fn a_test_file_needs_its_runbook_beside_it() {
    let (d, _) = setup("orphan", RUNBOOK, "cases: []\n");
    let orphan = d.0.join("other.test.yaml");
    std::fs::write(&orphan, "cases: []\n").unwrap();
    let (s, out) = run_one(&orphan);
    assert_eq!(s.malformed, 1);
    assert!(
        out.contains("other.test.yaml:0:0: no runbook beside this test file"),
        "{out}"
    );
}

#[test]
fn discovery_walks_directories_and_notes_runbooks_without_tests() {
    let (d, _) = setup("discover", RUNBOOK, &format!("cases:\n{}", GOOD_CASE));
    std::fs::create_dir_all(d.0.join("sub")).unwrap();
    std::fs::write(d.0.join("sub/lonely.yaml"), RUNBOOK).unwrap();
    std::fs::write(d.0.join("sub/notes.yaml"), "just: data\n").unwrap();
    let (tests, untested, missing) = discover(&[d.0.clone(), d.0.join("nope")]);
    assert_eq!(tests, vec![d.0.join("rb.test.yaml")]);
    assert_eq!(untested, vec![d.0.join("sub/lonely.yaml")]);
    assert_eq!(missing, vec![d.0.join("nope")]);
    // A runbook path runs its tests.
    let (tests, untested, _) = discover(&[d.0.join("rb.yaml")]);
    assert_eq!(tests, vec![d.0.join("rb.test.yaml")]);
    assert!(untested.is_empty());
}

#[test]
fn a_play_is_the_same_every_time() {
    let test = format!("cases:\n{}", GOOD_CASE.replace("CASE", "same"));
    let (_d, t) = setup("same", RUNBOOK, &test);
    let (tf, rb) = load(&t).unwrap();
    let a = play::play(&tf.cases[0], &rb).unwrap();
    let b = play::play(&tf.cases[0], &rb).unwrap();
    assert_eq!(a.steps, b.steps);
    assert_eq!(a.events, b.events);
    assert_eq!(a.calls, b.calls);
}

#[test]
fn hours_of_timeline_play_in_virtual_time() {
    // Two hours of a never-resolving incident waiting to restore.
    let rb = r#"name: degrade
match: {detectors: [slow]}
steps:
  - {name: switch off, kind: http, url: "http://127.0.0.1:9/off", method: POST}
restore:
  - {name: switch on, kind: http, url: "http://127.0.0.1:9/on", method: POST}
"#;
    let test = r#"cases:
  - name: slow for two hours
    incidents:
      api: {detector: slow}
    timeline:
      - {at: 0s, fire: api}
      - {at: 2h, resolve: api}
    expect:
      steps:
        - {at: 0s, step: switch off, state: succeeded}
        - {at: 2h, step: switch on, state: succeeded, params: {url: "http://127.0.0.1:9/on"}}
      incidents:
        api: {runs: [completed]}
"#;
    let (_d, t) = setup("hours", rb, test);
    let started = std::time::Instant::now();
    let (s, out) = run_one(&t);
    assert!(s.ok(), "{out}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{out}"
    );
}

#[test]
fn fakes_record_calls_and_report_a_call_made_before_journalling() {
    use crate::executors::{ActionConfig, StepContext};
    use crate::incidents::Incident;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let store: std::sync::Arc<dyn crate::stores::Store> =
            std::sync::Arc::new(crate::stores::sqlite::SqliteStore::memory().unwrap());
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        let deps = crate::executors::ExecutorDeps {
            supervisor: crate::services::Supervisor::new("/nonexistent".into(), tx),
            http: reqwest::Client::new(),
            store,
        };
        let clock: crate::clock::SharedClock =
            std::sync::Arc::new(crate::clock::VirtualClock::starting_at(0));
        let answers = [(
            "restart web".to_string(),
            vec![file::Answer::Fail("boom".into()), file::Answer::Ok],
        )]
        .into_iter()
        .collect();
        let fakes = fakes::Fakes::new(answers, deps, clock);
        let action: ActionConfig =
            serde_json::from_value(serde_json::json!({"kind": "restart", "service": "web"}))
                .unwrap();
        let exec = (fakes.builder())(&action);
        let ctx = StepContext {
            incident: Incident::example(1, "web-down", &[("service", "web")]),
            runbook: "rb".into(),
            step: "steps[0]".into(),
            step_name: "restart web".into(),
            attempt: 1,
            idempotency_key: "run-1/steps[0]/attempt-1".into(),
            dry_run: false,
            timeout: std::time::Duration::from_secs(1),
            fence: None,
        };
        // Scripted answers in order; the last one repeats.
        assert_eq!(exec.execute(&ctx).await.unwrap_err(), "boom");
        assert!(exec.execute(&ctx).await.is_ok());
        assert!(exec.execute(&ctx).await.is_ok());
        let calls = fakes.calls();
        assert_eq!(calls.len(), 3);
        assert_eq!(calls[0].target, "restart:web");
        assert!(!calls[0].dry_run);
        // Never journalled: the rule "journal before acting" was broken.
        assert!(
            fakes.violations()[0].contains("called before it was journalled"),
            "{:?}",
            fakes.violations()
        );
    });
}

#[test]
fn promtool_value_notation_expands() {
    use file::expand_values;
    assert_eq!(
        expand_values("1 _ 2x2 _x2 0+5x2 10-1x1").unwrap(),
        vec![
            Some(1.0),
            None,
            Some(2.0),
            Some(2.0),
            Some(2.0),
            None,
            None,
            Some(0.0),
            Some(5.0),
            Some(10.0),
            Some(10.0),
            Some(9.0)
        ]
    );
    assert_eq!(
        expand_values("-1+1e3x1").unwrap(),
        vec![Some(-1.0), Some(999.0)]
    );
    assert_eq!(expand_values("5e9x1").unwrap(), vec![Some(5e9), Some(5e9)]);
    assert!(expand_values("one").is_err());
    assert!(expand_values("").is_err());
}

#[test]
fn params_match_on_the_keys_given() {
    use compare::contains;
    use serde_json::json;
    let got = json!({"service": "web", "stop_signal": "KILL", "argv": ["a", "b"], "n": 1});
    assert!(contains(&json!({"service": "web"}), &got));
    assert!(contains(&json!({"n": 1.0}), &got));
    assert!(contains(&json!({"argv": ["a", "b"]}), &got));
    assert!(!contains(&json!({"argv": ["a"]}), &got));
    assert!(!contains(&json!({"service": "db"}), &got));
    assert!(!contains(&json!({"grace": "1s"}), &got));
}
