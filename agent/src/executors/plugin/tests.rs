//! Plug-ins that behave and plug-ins that do not: each is a small sh script
//! written to a temporary directory.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::*;
use crate::incidents::{Incident, IncidentState};

/// A context whose incident carries a label built to break a shell.
pub(crate) fn context(dry_run: bool) -> StepContext {
    let labels = [
        ("service".to_string(), "web".to_string()),
        (
            "evil".to_string(),
            "$(touch /tmp/pwned); `id` ' \" ;".to_string(),
        ),
    ]
    .into_iter()
    .collect();
    StepContext {
        incident: Incident {
            id: 7,
            fingerprint: "fp".into(),
            detector: "web-down".into(),
            labels,
            severity: "critical".into(),
            state: IncidentState::Firing,
            summary: "web is down".into(),
            opened_at: 1,
            updated_at: 1,
            resolved_at: None,
            acked_by: None,
            acked_at: None,
            occurrences: 1,
        },
        runbook: "rb".into(),
        step: "steps[0]".into(),
        step_name: "fix".into(),
        attempt: 2,
        idempotency_key: "run-1/steps[0]/attempt-2".into(),
        dry_run,
        timeout: Duration::from_secs(5),
        fence: Some(42),
    }
}

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!(
            "medic-plugin-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn script(&self, name: &str, body: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.display().to_string()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn plugin(program: String) -> Plugin {
    Plugin::new(PluginParams {
        argv: vec![program],
        params: serde_json::json!({"flag": "checkout"}),
        env: BTreeMap::new(),
        target: Some("{{ labels.service }}".into()),
        dry_run_capable: false,
        max_output: 1024,
        cwd: None,
    })
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

#[tokio::test]
async fn reads_the_step_as_json_and_answers_a_result() {
    let d = Dir::new("ok");
    let input = d.0.join("input.json");
    let p = plugin(d.script(
        "ok.sh",
        &format!(
            r#"cat > '{}'
echo "note on stderr" >&2
echo '{{"ok": true, "message": "flag set", "details": {{"flag": "checkout"}}}}'"#,
            input.display()
        ),
    ));
    let out = p.execute(&context(false)).await.unwrap();
    assert_eq!(out.summary, "flag set");
    assert_eq!(out.details["details"]["flag"], "checkout");
    assert_eq!(out.details["stderr"], "note on stderr\n");
    let got: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&input).unwrap()).unwrap();
    assert_eq!(got["protocol"], 1);
    assert_eq!(got["incident"]["id"], 7);
    assert_eq!(got["incident"]["labels"]["service"], "web");
    assert_eq!(
        got["incident"]["labels"]["evil"], "$(touch /tmp/pwned); `id` ' \" ;",
        "a hostile label arrives as data"
    );
    assert_eq!(got["params"]["flag"], "checkout");
    assert_eq!(got["target"], "web");
    assert_eq!(got["attempt"], 2);
    assert_eq!(got["idempotency_key"], "run-1/steps[0]/attempt-2");
    assert_eq!(got["dry_run"], false);
    assert_eq!(got["fence"], 42, "the fencing token reaches the plug-in");
}

#[tokio::test]
async fn a_hung_plugin_and_its_children_die_at_the_timeout() {
    let d = Dir::new("hang");
    let pids = d.0.join("pids");
    let p = plugin(d.script(
        "hang.sh",
        &format!("sleep 300 &\necho $$ $! > '{}'\nwait", pids.display()),
    ));
    let ctx = context(false);
    let started = Instant::now();
    // The runner applies the step timeout exactly like this: by dropping the future.
    let r = tokio::time::timeout(Duration::from_millis(500), p.execute(&ctx)).await;
    assert!(
        r.is_err(),
        "the plug-in must still be running at the timeout"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    let text = std::fs::read_to_string(&pids).unwrap();
    let pids: Vec<i32> = text
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2);
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|p| alive(*p)) && Instant::now() < deadline {
        // Killed processes are reaped by tokio (the plug-in) or init (its child).
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for pid in pids {
        let zombie_or_gone = !alive(pid)
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true);
        assert!(zombie_or_gone, "process {pid} survived the timeout");
    }
}

#[tokio::test]
async fn garbage_on_stdout_fails_the_step() {
    let d = Dir::new("garbage");
    let p = plugin(d.script("garbage.sh", "echo 'this is not json {'"));
    let e = p.execute(&context(false)).await.unwrap_err();
    assert!(e.contains("answered no valid result"), "{e}");
    assert!(e.contains("this is not json"), "{e}");
}

#[tokio::test]
async fn a_non_zero_exit_fails_with_its_stderr() {
    let d = Dir::new("exit");
    let p = plugin(d.script("exit.sh", "echo 'backend refused' >&2\nexit 3"));
    let e = p.execute(&context(false)).await.unwrap_err();
    assert!(e.contains("exit status: 3"), "{e}");
    assert!(e.contains("backend refused"), "{e}");
    // A valid answer does not make a non-zero exit a success.
    let p = plugin(d.script(
        "exit2.sh",
        "echo '{\"ok\": true, \"message\": \"?\"}'\nexit 1",
    ));
    assert!(p.execute(&context(false)).await.is_err());
}

#[tokio::test]
async fn ok_false_is_a_failure_with_the_message() {
    let d = Dir::new("okfalse");
    let p = plugin(d.script(
        "no.sh",
        "echo '{\"ok\": false, \"message\": \"flag service down\"}'",
    ));
    let e = p.execute(&context(false)).await.unwrap_err();
    assert!(e.contains("reported failure: flag service down"), "{e}");
}

#[tokio::test]
async fn too_much_output_is_cut_and_the_plugin_killed() {
    let d = Dir::new("chatty");
    let p = plugin(d.script(
        "chatty.sh",
        "while :; do echo xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; done",
    ));
    let started = Instant::now();
    let e = tokio::time::timeout(Duration::from_secs(5), p.execute(&context(false)))
        .await
        .expect("killed well before the timeout")
        .unwrap_err();
    assert!(e.contains("more than 1024 bytes"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn children_left_holding_the_pipes_do_not_stall_the_step() {
    let d = Dir::new("leftover");
    let p = plugin(d.script(
        "leftover.sh",
        "sleep 300 &\necho '{\"ok\": true, \"message\": \"done\"}'",
    ));
    let started = Instant::now();
    let out = p.execute(&context(false)).await.unwrap();
    assert_eq!(out.summary, "done");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn secrets_reach_the_plugin_but_never_the_journal_or_output() {
    let d = Dir::new("secret");
    let mut p = plugin(d.script(
        "secret.sh",
        "echo \"token is $API_TOKEN\" >&2\necho \"{\\\"ok\\\": true, \\\"message\\\": \\\"used $API_TOKEN\\\"}\"",
    ));
    p.params.env.insert(
        "API_TOKEN".into(),
        EnvValue::Marked(MarkedEnv {
            value: Some("s3cr3t-value".into()),
            from_env: None,
            secret: true,
        }),
    );
    p.params
        .env
        .insert("REGION".into(), EnvValue::Plain("eu".into()));
    let described = p.describe().to_string();
    assert!(!described.contains("s3cr3t-value"), "{described}");
    assert!(described.contains("eu"));
    let out = p.execute(&context(false)).await.unwrap();
    let all = format!("{} {}", out.summary, out.details);
    assert!(!all.contains("s3cr3t-value"), "{all}");
    assert!(all.contains("used <secret>"), "{all}");
    assert!(all.contains("token is <secret>"), "{all}");
}

#[tokio::test]
async fn a_missing_program_fails_clearly() {
    let p = plugin("/nonexistent/medic-plugin".into());
    let e = p.execute(&context(false)).await.unwrap_err();
    assert!(e.contains("did not start"), "{e}");
}

/// The example plug-in shipped in `runbooks/plugins/`, in dry-run mode: it
/// must report what it would do without any network access.
#[tokio::test]
async fn the_shipped_example_answers_a_dry_run() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runbooks/plugins/feature-flag.py");
    let mut p = plugin(example.display().to_string());
    p.params.params = serde_json::json!({"url": "http://127.0.0.1:9/flags", "flag": "recommendations", "value": false});
    p.params.dry_run_capable = true;
    p.params.max_output = 64 * 1024;
    let out = p.execute(&context(true)).await.unwrap();
    assert!(
        out.summary.contains("would set recommendations"),
        "{}",
        out.summary
    );
}
