//! Good and deliberately bad configurations: each mistake must name file,
//! line and column.

use super::*;

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn setup(name: &str, medic: &str, runbooks: &[(&str, &str)]) -> (Dir, PathBuf) {
    let d = std::env::temp_dir().join(format!("medic-cfg-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("runbooks")).unwrap();
    std::fs::write(d.join("medic.yaml"), medic).unwrap();
    for (f, t) in runbooks {
        std::fs::write(d.join("runbooks").join(f), t).unwrap();
    }
    let p = d.join("medic.yaml");
    (Dir(d), p)
}

const GOOD: &str = r#"listen: 127.0.0.1:9460
services:
  web:
    argv: [sleep, "1000"]
sources:
  - name: web-health
    kind: http_probe
    interval: 1s
    timeout: 500ms
    targets: [http://127.0.0.1:8081/health]
detectors:
  - name: web-down
    kind: heartbeat
    series: probe_success{job="web-health"}
    timeout: 3s
    severity: critical
"#;

const GOOD_RB: &str = r#"name: restart-web
match:
  detectors: [web-down]
  labels: '{job="web-health"}'
steps:
  - name: restart web
    kind: restart
    service: web
    timeout: 10s
    retry: {max_attempts: 3, backoff: 1s}
    verify: {http: "http://127.0.0.1:8081/health", within: 10s}
    on_failure:
      - name: tell someone
        kind: notify
        url: http://127.0.0.1:9999/hook
escalate:
  - name: page
    kind: notify
    url: http://127.0.0.1:9999/hook
"#;

fn only_error(p: &Path) -> ConfigError {
    let e = load(p).expect_err("must fail");
    assert_eq!(e.0.len(), 1, "{e}");
    e.0[0].clone()
}

#[test]
fn good_config_loads() {
    let (_d, p) = setup("good", GOOD, &[("restart.yaml", GOOD_RB)]);
    let l = load(&p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(l.runbooks.len(), 1);
    assert_eq!(l.config.detectors[0].name.line, 12);
}

#[test]
fn malformed_yaml_names_line_and_column() {
    let (_d, p) = setup("malformed", "sources: [\n  {name: x\n", &[]);
    let e = only_error(&p);
    assert_eq!(e.file, p);
    assert!(e.line >= 1 && e.column >= 1, "{e}");
}

#[test]
fn unknown_field_names_line_and_column() {
    let bad = GOOD.replace(
        "    timeout: 3s\n",
        "    timeout: 3s\n    timout_typo: 4s\n",
    );
    let (_d, p) = setup("unknown", &bad, &[]);
    let e = only_error(&p);
    assert!(e.message.contains("timout_typo"), "{e}");
    // Its own line, not the end of its `kind:`-tagged section (17).
    assert_eq!((e.line, e.column), (16, 5), "{e}");
}

#[test]
fn wrong_type_names_line_and_column() {
    let bad = GOOD.replace("timeout: 3s", "timeout: [3s]");
    let (_d, p) = setup("wrongtype", &bad, &[]);
    let e = only_error(&p);
    assert_eq!(e.line, 16, "{e}");
    assert!(e.column > 0, "{e}");
}

#[test]
fn otlp_source_settings_are_checked_where_written() {
    let otlp = |name: &str, extra: &str| format!("  - name: {name}\n    kind: otlp\n{extra}");
    let good = GOOD.replace(
        "detectors:\n",
        &format!(
            "{}detectors:\n",
            otlp(
                "otel",
                "    grpc_listen: 127.0.0.1:4317\n    red: {attributes: [http.route]}\n"
            )
        ),
    );
    let (_d, p) = setup("otlp-good", &good, &[]);
    load(&p).unwrap_or_else(|e| panic!("{e}"));

    let bad = GOOD.replace(
        "detectors:\n",
        &format!(
            "{}detectors:\n",
            otlp(
                "otel",
                "    grpc_listen: somewhere\n    red: {quantiles: [0.5, 2]}\n"
            )
        ),
    );
    let (_d, p) = setup("otlp-bad", &bad, &[]);
    let e = load(&p).expect_err("must fail");
    assert_eq!(e.0.len(), 2, "{e}");
    assert!(e.0.iter().all(|e| e.line == 11), "{e}");
    assert!(e.0[0].message.contains("grpc_listen"), "{e}");
    assert!(e.0[1].message.contains("quantiles"), "{e}");

    let two = GOOD.replace(
        "detectors:\n",
        &format!("{}{}detectors:\n", otlp("a", ""), otlp("b", "")),
    );
    let (_d, p) = setup("otlp-two", &two, &[]);
    let e = only_error(&p);
    assert!(e.message.contains("only one otlp source"), "{e}");
}

#[test]
fn unknown_executor_kind_in_runbook() {
    let bad = GOOD_RB.replace("kind: restart", "kind: reboot_universe");
    let (_d, p) = setup("kind", GOOD, &[("r.yaml", &bad)]);
    let e = only_error(&p);
    assert!(e.file.ends_with("runbooks/r.yaml"), "{e}");
    assert!(e.message.contains("reboot_universe"), "{e}");
    assert!(e.message.contains("restart"), "lists the known kinds: {e}");
    assert_eq!((e.line, e.column), (7, 5), "{e}");
}

#[test]
fn runbook_naming_missing_detector() {
    let bad = GOOD_RB.replace("detectors: [web-down]", "detectors: [web-dwn]");
    let (_d, p) = setup("missingdet", GOOD, &[("r.yaml", &bad)]);
    let e = only_error(&p);
    assert!(e.file.ends_with("runbooks/r.yaml"), "{e}");
    assert!(
        e.message.contains("web-dwn") && e.message.contains("web-down"),
        "{e}"
    );
    assert_eq!((e.line, e.column), (3, 15), "{e}");
}

#[test]
fn restart_of_unknown_service_and_bad_selector() {
    let bad_rb = GOOD_RB.replace("service: web", "service: nope");
    let bad = GOOD.replace(
        r#"probe_success{job="web-health"}"#,
        r#"probe_success{job=~"("}"#,
    );
    let (_d, p) = setup("refs", &bad, &[("r.yaml", &bad_rb)]);
    let e = load(&p).expect_err("must fail");
    let text = e.to_string();
    assert!(text.contains("unknown service \"nope\""), "{text}");
    assert!(text.contains("invalid series selector"), "{text}");
    assert!(e.0.iter().all(|e| e.line > 0), "{text}");
}

#[test]
fn invalid_duration_is_explained() {
    let bad = GOOD.replace("interval: 1s", "interval: soon");
    let (_d, p) = setup("duration", &bad, &[]);
    let e = only_error(&p);
    assert!(e.message.contains("invalid duration"), "{e}");
    assert_eq!(e.line, 8, "{e}");
}

#[test]
fn schemas_are_generated() {
    let s = schemas();
    assert_eq!(s.len(), 3);
    let rb = &s[1].1;
    let text = rb.to_string();
    assert!(
        text.contains("on_failure") && text.contains("restart"),
        "{text}"
    );
}

#[test]
fn shipped_schemas_are_current() {
    // runbooks/schema/ is what editors load; it must be what the code generates.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runbooks/schema");
    for (name, schema) in schemas() {
        let shipped = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        let generated = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        assert!(
            shipped == generated,
            "{name} is stale: run `medic schema` and commit runbooks/schema/"
        );
    }
}

const PLUGIN_RB: &str = r#"name: degrade
match:
  detectors: [web-down]
guards:
  rate_limit: {max: 3, window: 10m}
  restart_loop: {max_restarts: 3, window: 10m, reset_after: 5m, warmup: 10s}
  circuit_breaker: {failures: 3, cooldown: 1m}
  concurrency: {group: web, max_percent: 30, group_size: 10}
  targets:
    "restart:db": {restart_loop: {max_restarts: 1, window: 1h}}
steps:
  - name: restart the failing one
    kind: restart
    service: "{{ labels.service }}"
  - name: switch recommendations off
    kind: plugin
    argv: [plugins/flag.sh, --verbose]
    params: {flag: recommendations, value: false}
    target: "{{ labels.instance }}"
    env:
      REGION: eu
      TOKEN: {from_env: FLAG_TOKEN, secret: true}
"#;

fn with_plugin(d: &Dir) {
    use std::os::unix::fs::PermissionsExt;
    let plugins = d.0.join("runbooks/plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let f = plugins.join("flag.sh");
    std::fs::write(&f, "#!/bin/sh\necho '{\"ok\": true}'\n").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn plugin_paths_are_relative_to_the_runbook_and_guards_load() {
    let (d, p) = setup("plugin", GOOD, &[("degrade.yaml", PLUGIN_RB)]);
    with_plugin(&d);
    let l = load(&p).unwrap_or_else(|e| panic!("{e}"));
    let rb = &l.runbooks[0].1;
    let ActionConfig::Plugin(pp) = &rb.steps[1].action else {
        panic!("plugin step expected")
    };
    assert_eq!(Path::new(&pp.argv[0]), d.0.join("runbooks/plugins/flag.sh"));
    assert_eq!(pp.argv[1], "--verbose");
    assert_eq!(rb.guards.concurrency.as_ref().unwrap().limit(), 3);
    assert_eq!(rb.guards.restart_loop.as_ref().unwrap().kinds, ["restart"]);
    let db = rb.guards.for_target("restart:db");
    assert_eq!(db.restart_loop.unwrap().max_restarts, 1);
}

#[test]
fn missing_plugin_and_bad_guards_are_refused() {
    let (_d, p) = setup("plugin-missing", GOOD, &[("degrade.yaml", PLUGIN_RB)]);
    let e = only_error(&p);
    assert!(e.message.contains("flag.sh"), "{e}");
    let bad = PLUGIN_RB.replace(
        "{max_restarts: 1, window: 1h}",
        "{max_restarts: 0, window: 1h}",
    );
    let (d, p) = setup("guards-target-bad", GOOD, &[("degrade.yaml", &bad)]);
    with_plugin(&d);
    let e = only_error(&p);
    assert!(
        e.message
            .contains("targets.restart:db: restart_loop.max_restarts"),
        "{e}"
    );
    let bad = PLUGIN_RB.replace("max_percent: 30, group_size: 10", "max_percent: 30");
    let (d, p) = setup("guards-bad", GOOD, &[("degrade.yaml", &bad)]);
    with_plugin(&d);
    let e = only_error(&p);
    assert!(e.message.contains("max_percent needs group_size"), "{e}");
    let bad = PLUGIN_RB.replace(
        "{from_env: FLAG_TOKEN, secret: true}",
        "{value: x, from_env: FLAG_TOKEN}",
    );
    let (d, p) = setup("env-bad", GOOD, &[("degrade.yaml", &bad)]);
    with_plugin(&d);
    let e = only_error(&p);
    assert!(
        e.message.contains("exactly one of value and from_env"),
        "{e}"
    );
    let bad = PLUGIN_RB.replace("{{ labels.service }}", "{{ lables.service }}");
    let (d, p) = setup("tmpl-bad", GOOD, &[("degrade.yaml", &bad)]);
    with_plugin(&d);
    let e = only_error(&p);
    assert!(e.message.contains("lables.service"), "{e}");
}

#[test]
fn the_runbook_library_checks_against_its_example_config() {
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../runbooks/library/example/medic.yaml");
    let l = load(&example).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(l.runbooks.len(), 6);
}

const ONCALL: &str = r#"external_url: https://medic.example.com/
notifiers:
  - name: mail
    kind: email
    host: smtp.example.com
    security: tls
    from: medic <medic@example.com>
    to: [ann@example.com]
    text: "{{ incident.summary }} {{ ack_url }}"
  - name: hook
    kind: webhook
    url: http://127.0.0.1:9999/hook
    delivery: {max_attempts: 3, backoff: 1s}
  - {name: am, kind: alertmanager_webhook, url: "http://127.0.0.1:9093/"}
  - {name: chat, kind: slack, url: "https://hooks.example.com/x"}
  - {name: pd, kind: pagerduty, routing_key_file: pd.key}
escalation_policies:
  - name: web
    levels:
      - notify: [mail, chat]
        wait: 10m
      - notify: [pd, hook, am]
    repeat: 30m
    ack_ttl: 4h
routes:
  - match: {labels: '{service="web"}', severity: [critical]}
    policy: web
inhibit_rules:
  - {source: '{alertname="node-down"}', target: '{service="web"}', equal: [node]}
maintenance_windows:
  - {name: sunday-patching, matchers: '{env="prod"}', weekdays: [sun], start: "02:00", duration: 2h}
"#;

#[test]
fn a_full_oncall_section_loads() {
    let (_d, p) = setup("oncall-good", ONCALL, &[]);
    let l = load(&p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(l.external_url(), "https://medic.example.com");
    assert_eq!(l.config.notifiers.len(), 5);
    assert_eq!(l.config.escalation_policies[0].levels[1].notify.len(), 3);
    assert_eq!(l.config.maintenance_windows[0].start.value, "02:00");
}

/// The error line mentioning `needle` points at `medic.yaml` line `line`.
fn assert_on_line(errors: &str, needle: &str, line: usize) {
    let l = errors
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in:\n{errors}"));
    assert!(
        l.contains(&format!("medic.yaml:{line}:")),
        "{needle:?} should be on line {line}: {l}"
    );
}

#[test]
fn oncall_mistakes_point_at_their_line() {
    let bad = ONCALL
        .replace(
            "      - notify: [pd, hook, am]",
            "      - notify: [pd, hook, pager]",
        )
        .replace("    policy: web", "    policy: webb")
        .replace("'{service=\"web\"}', equal", "'{service=~\"(\"}', equal")
        .replace(
            "    text: \"{{ incident.summary }} {{ ack_url }}\"",
            "    text: \"{{ nope }}\"",
        )
        .replace("start: \"02:00\"", "start: \"2am\"");
    let (_d, p) = setup("oncall-bad", &bad, &[]);
    let e = load(&p).unwrap_err().to_string();
    for (needle, line) in [
        ("no notifier named \"pager\"", 22),
        ("no escalation policy named \"webb\"", 27),
        ("inhibit_rules:", 29),
        ("text: unknown template name \"nope\"", 3),
        ("maintenance window \"sunday-patching\": start \"2am\"", 31),
    ] {
        assert_on_line(&e, needle, line);
    }
}

#[test]
fn an_unknown_notifier_kind_is_refused_at_its_kind_line() {
    let bad = "notifiers:\n  - name: x\n    kind: pigeon\n    url: http://x\n";
    let (_d, p) = setup("oncall-kind", bad, &[]);
    let e = load(&p).unwrap_err().to_string();
    assert!(e.contains("pigeon"), "{e}");
    assert!(e.contains("medic.yaml:3:"), "{e}");
}

#[test]
fn auth_token_mistakes_point_at_their_line() {
    let cfg = format!(
        "{GOOD}auth:\n  tokens:\n    - name: ann\n      role: responder\n      sha256: abc\n    - name: ann\n      role: viewer\n      token_env: ANN\n      token_file: ann.token\n"
    );
    let (_d, p) = setup("auth-bad", &cfg, &[("rb.yaml", GOOD_RB)]);
    let e = load(&p).unwrap_err().to_string();
    let base = GOOD.lines().count();
    for (needle, line) in [
        ("sha256 must be 64 hex digits", base + 3),
        ("duplicate auth token name \"ann\"", base + 6),
        (
            "give exactly one of sha256, token_env, token_file",
            base + 6,
        ),
    ] {
        assert_on_line(&e, needle, line);
    }
    let bad_role = format!("{GOOD}auth:\n  tokens:\n    - {{name: x, role: root, sha256: abc}}\n");
    let (_d2, p2) = setup("auth-role", &bad_role, &[("rb.yaml", GOOD_RB)]);
    let e = only_error(&p2);
    assert!(e.message.contains("root"), "{e}");
    assert_eq!(e.line as usize, GOOD.lines().count() + 3, "{e}");
}

#[test]
fn the_store_is_sqlite_by_default_and_etcd_when_configured() {
    let (_d, p) = setup("store-default", GOOD, &[]);
    assert_eq!(
        load(&p).unwrap().config.store,
        crate::stores::StoreConfig::Sqlite {}
    );
    let etcd = format!(
        "{GOOD}store:\n  kind: etcd\n  endpoints: [https://127.0.0.1:2379, 10.0.0.2:2379]\n  prefix: /medic-a/\n  timeout: 500ms\n  tls: {{ca: ca.pem, cert: c.pem, key: k.pem}}\n"
    );
    let (_d, p) = setup("store-etcd", &etcd, &[]);
    let l = load(&p).unwrap_or_else(|e| panic!("{e}"));
    let crate::stores::StoreConfig::Etcd(c) = l.config.store else {
        panic!("not etcd: {:?}", l.config.store)
    };
    assert_eq!(c.endpoints.len(), 2);
    assert_eq!(c.prefix, "/medic-a/");
    assert_eq!(c.timeout.millis(), 500);
    assert_eq!(c.tls.unwrap().key, Some(PathBuf::from("k.pem")));
    let minimal = format!("{GOOD}store: {{kind: etcd, endpoints: [127.0.0.1:2379]}}\n");
    let (_d, p) = setup("store-minimal", &minimal, &[]);
    let crate::stores::StoreConfig::Etcd(c) = load(&p).unwrap().config.store else {
        panic!("not etcd")
    };
    assert_eq!((c.prefix.as_str(), c.timeout.millis()), ("/medic/", 2000));
}

#[test]
fn store_mistakes_are_refused() {
    for (name, store, want) in [
        (
            "typo",
            "store:\n  kind: etcd\n  endpoints: [a:1]\n  prefx: /x/\n",
            "prefx",
        ),
        (
            "sqlite-extra",
            "store:\n  kind: sqlite\n  path: x.db\n",
            "path",
        ),
        ("kind", "store:\n  kind: consul\n", "consul"),
        (
            "empty",
            "store:\n  kind: etcd\n  endpoints: []\n",
            "at least one endpoint",
        ),
        (
            "half-tls",
            "store:\n  kind: etcd\n  endpoints: [a:1]\n  tls: {cert: c.pem}\n",
            "both cert and key",
        ),
        (
            "http-tls",
            "store:\n  kind: etcd\n  endpoints: [http://a:1]\n  tls: {ca: ca.pem}\n",
            "use https://",
        ),
    ] {
        let (_d, p) = setup(&format!("store-{name}"), &format!("{GOOD}{store}"), &[]);
        let e = only_error(&p);
        assert!(e.message.contains(want), "{name}: {e}");
    }
}

#[test]
fn the_leader_lease_timing_rule_is_enforced_per_step() {
    let store = |ttl: &str| {
        format!(
            "{GOOD}store:\n  kind: etcd\n  endpoints: [127.0.0.1:2379]\n  election: {{ttl: {ttl}, renew: 2s}}\n"
        )
    };
    // 0.9 × 15s − 2 × 2s = 9.5s: the 10s restart and the 30s default
    // timeouts of the notify steps are too long.
    let (_d, p) = setup("lease-short", &store("15s"), &[("restart.yaml", GOOD_RB)]);
    let e = load(&p).expect_err("must fail");
    assert_eq!(e.0.len(), 3, "{e}");
    assert!(
        e.0.iter()
            .all(|e| e.message.contains("longer than a leader may act")),
        "{e}"
    );
    assert!(e.0[0].message.contains("9s 500ms"), "{e}");
    // 0.9 × 40s − 4s = 32s: every step fits; an approval is a wait, not an
    // action, and may be longer.
    let approval = "name: gate\nmatch: {detectors: [web-down]}\nsteps:\n  - name: ask\n    kind: approval\n    timeout: 1h\n";
    let (_d, p) = setup(
        "lease-ok",
        &store("40s"),
        &[("restart.yaml", GOOD_RB), ("gate.yaml", approval)],
    );
    load(&p).unwrap_or_else(|e| panic!("{e}"));
    let (_d, p) = setup("lease-bad", &store("1500ms"), &[]);
    let e = load(&p).expect_err("must fail").to_string();
    assert!(
        e.contains("whole seconds") && e.contains("no time to act"),
        "{e}"
    );
}

const MULTIVARIATE: &str = r#"  - name: api-shape
    kind: multivariate
    metrics:
      latency: 'http_request_duration_seconds_sum{job="api"}'
      errors: 'http_errors_total{job="api"}'
    rate: [latency, errors]
    by: [job, instance]
    step: 10s
    pca: {reservoir: 256, variance: 0.95}
"#;

#[test]
fn a_multivariate_detector_loads_and_its_mistakes_point_at_it() {
    let good = format!("{GOOD}{MULTIVARIATE}");
    let (_d, p) = setup("mv-good", &good, &[]);
    load(&p).unwrap_or_else(|e| panic!("{e}"));

    // Detector on line 17: one metric, a rate of no metric, step 0, a
    // warm-up longer than the reservoir, a bad selector.
    let bad = good
        .replace("      errors: 'http_errors_total{job=\"api\"}'\n", "")
        .replace("step: 10s", "step: 0s")
        .replace("{job=\"api\"}'", "{job=~\"(\"}'")
        .replace("pca: {", "pca: {min_train: 300, ");
    let (_d, p) = setup("mv-bad", &bad, &[]);
    let e = load(&p).unwrap_err().to_string();
    for needle in [
        "needs at least 2 metrics (it judges how they move together); it has 1 (latency)",
        "rate: \"errors\" is not one of its metrics (latency)",
        "step must be more than 0",
        "pca.min_train (the warm-up) must be at least 2 rows and at most pca.reservoir (256)",
    ] {
        assert_on_line(&e, needle, 17);
    }
    assert_on_line(&e, "invalid series selector", 20);

    // Unknown settings, in the detector and in `pca:`.
    let typo = good.replace("step: 10s", "stepp: 10s");
    let (_d, p) = setup("mv-typo", &typo, &[]);
    let e = only_error(&p);
    assert!(e.message.contains("stepp"), "{e}");
    assert_eq!(
        (e.line, e.column),
        (24, 5),
        "at the key, not the section's end: {e}"
    );
    let typo = good.replace("variance: 0.95", "varaince: 0.95");
    let (_d, p) = setup("mv-pca-typo", &typo, &[]);
    let e = only_error(&p);
    assert!(e.message.contains("varaince"), "{e}");
    assert_eq!(e.line, 25, "{e}");
}

const FORECAST: &str = r#"  - name: disk-full
    kind: forecast
    series: 'disk_used_percent{volume="/data"}'
    above: 95
    horizon: 4h
"#;

#[test]
fn a_forecast_detector_loads_and_its_mistakes_point_at_it() {
    let good = format!("{GOOD}{FORECAST}");
    let (_d, p) = setup("fc-good", &good, &[]);
    load(&p).unwrap_or_else(|e| panic!("{e}"));

    // Detector on line 17: both limits, a zero horizon, a clear horizon
    // inside it, too few slots to fit a line.
    let bad = good.replace(
        "    horizon: 4h\n",
        "    below: 5\n    horizon: 0s\n    clear_horizon: 1h\n    min_points: 1\n",
    );
    let (_d, p) = setup("fc-bad", &bad, &[]);
    let e = load(&p).unwrap_err().to_string();
    for needle in [
        "forecast detector \"disk-full\": needs exactly one of `above` or `below`",
        "horizon must be more than 0",
        "min_points must be between 2 and 32",
    ] {
        assert_on_line(&e, needle, 17);
    }
    let bad = good.replace(
        "    horizon: 4h\n",
        "    horizon: 4h\n    clear_horizon: 1h\n",
    );
    let (_d, p) = setup("fc-clear", &bad, &[]);
    let e = load(&p).unwrap_err().to_string();
    assert_on_line(&e, "clear_horizon must be at least horizon", 17);

    // The horizon is required; unknown settings point at their line.
    let missing = good.replace("    horizon: 4h\n", "");
    let (_d, p) = setup("fc-missing", &missing, &[]);
    assert!(
        only_error(&p).message.contains("horizon"),
        "{}",
        only_error(&p)
    );
    let typo = good.replace("horizon: 4h", "horizont: 4h");
    let (_d, p) = setup("fc-typo", &typo, &[]);
    let e = only_error(&p);
    assert!(e.message.contains("horizont"), "{e}");
    assert_eq!(e.line, 21, "{e}");
}
