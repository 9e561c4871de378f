//! `medic test`, the binary: the shipped runbooks pass their tests (CI runs
//! them here), a wrong expectation fails with exit code 1 and a diff, a
//! malformed test file fails with exit code 2 and its file:line:column.

use std::path::Path;
use std::process::{Command, Output};

use medic_e2e::*;

fn medic_test(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let Output { status, stdout, .. } = Command::new(medic_bin())
        .arg("test")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run medic test");
    (status.code(), String::from_utf8_lossy(&stdout).into_owned())
}

#[test]
fn the_shipped_runbooks_pass_medic_test() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (code, out) = medic_test(&repo, &["runbooks/"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(" 0 failed; 8 test files"), "{out}");
    assert!(!out.contains("has no tests"), "{out}");
}

const RUNBOOK: &str = r#"name: restart-web
match: {detectors: [web-down]}
steps:
  - name: restart web
    kind: restart
    service: web
    verify: {detector_cleared: true, within: 30s}
"#;

#[test]
fn a_wrong_expectation_fails_medic_test() {
    let dir = TempDir::new("rbtest-wrong");
    std::fs::write(dir.path("rb.yaml"), RUNBOOK).unwrap();
    std::fs::write(
        dir.path("rb.test.yaml"),
        r#"cases:
  - name: restarted once
    incidents: {web: {detector: web-down}}
    timeline:
      - {at: 0s, fire: web}
      - {at: 5s, resolve: web}
    expect:
      steps:
        - {step: restart web, state: blocked, guard: restart_loop}
"#,
    )
    .unwrap();
    let (code, out) = medic_test(&dir.0, &["."]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAILED  restarted once"), "{out}");
    assert!(
        out.contains("state: expected blocked, got succeeded"),
        "{out}"
    );
    assert!(out.contains("0 passed, 1 failed"), "{out}");
}

#[test]
fn a_malformed_test_file_fails_medic_test_with_its_place() {
    let dir = TempDir::new("rbtest-malformed");
    std::fs::write(dir.path("rb.yaml"), RUNBOOK).unwrap();
    std::fs::write(
        dir.path("rb.test.yaml"),
        "cases:\n  - name: x\n    incidents: {web: {detector: web-down}}\n    timeline:\n      - {at: 0s, fire: web, when: now}\n    expect: {}\n",
    )
    .unwrap();
    let (code, out) = medic_test(&dir.0, &["rb.test.yaml"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("rb.test.yaml:5:29: unknown field `when`"),
        "{out}"
    );
}
