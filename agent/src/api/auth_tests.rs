use super::*;
use axum::http::Method;

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn token(name: &str, role: Role, secret: &str) -> TokenConfig {
    TokenConfig {
        name: Spanned::unplaced(name.to_string()),
        role,
        sha256: Some(hex(&digest(secret))),
        token_env: None,
        token_file: None,
    }
}

fn auth() -> Auth {
    Auth::build(
        &AuthConfig {
            tokens: vec![
                token("vera", Role::Viewer, "v-secret"),
                token("rita", Role::Responder, "r-secret"),
                token("adam", Role::Admin, "a-secret"),
            ],
        },
        Path::new("."),
    )
    .unwrap()
}

#[test]
fn without_tokens_the_api_is_open() {
    let a = Auth::build(&AuthConfig::default(), Path::new(".")).unwrap();
    assert!(!a.enabled());
    assert_eq!(a.authorize(None, Role::Admin), Ok(None));
}

#[test]
fn roles_include_the_ones_below() {
    let a = auth();
    let who = |h: &str, need| a.authorize(Some(h), need);
    assert_eq!(
        who("Bearer v-secret", Role::Viewer).unwrap().unwrap().name,
        "vera"
    );
    assert!(matches!(
        who("Bearer v-secret", Role::Responder),
        Err(Refusal::Forbidden(m)) if m.contains("vera") && m.contains("responder")
    ));
    assert_eq!(
        who("Bearer r-secret", Role::Responder)
            .unwrap()
            .unwrap()
            .role,
        Role::Responder
    );
    assert!(matches!(
        who("Bearer r-secret", Role::Admin),
        Err(Refusal::Forbidden(_))
    ));
    assert_eq!(
        who("Bearer a-secret", Role::Admin).unwrap().unwrap().name,
        "adam"
    );
}

#[test]
fn missing_malformed_and_unknown_tokens_are_unauthenticated() {
    let a = auth();
    for h in [
        None,
        Some("v-secret"),
        Some("Basic dmVyYTp4"),
        Some("Bearer "),
        Some("Bearer nope"),
        Some("Bearer v-secret2"),
    ] {
        assert!(
            matches!(
                a.authorize(h, Role::Viewer),
                Err(Refusal::Unauthenticated(_))
            ),
            "{h:?}"
        );
    }
}

#[test]
fn refusals_never_echo_the_token() {
    let a = auth();
    let r = a.authorize(Some("Bearer s3cr3t-value"), Role::Viewer);
    assert!(!format!("{r:?}").contains("s3cr3t"));
    let r = a.authorize(Some("Bearer v-secret"), Role::Admin);
    assert!(!format!("{r:?}").contains("v-secret"));
}

#[test]
fn reading_needs_viewer_changing_needs_responder_reload_needs_admin() {
    assert_eq!(needed(&Method::GET, "/api/v1/incidents"), Role::Viewer);
    assert_eq!(needed(&Method::HEAD, "/api/v1/incidents/3"), Role::Viewer);
    assert_eq!(
        needed(&Method::POST, "/api/v1/incidents/3/ack"),
        Role::Responder
    );
    assert_eq!(needed(&Method::POST, "/api/v1/silences"), Role::Responder);
    assert_eq!(
        needed(&Method::DELETE, "/api/v1/silences/2"),
        Role::Responder
    );
    assert_eq!(needed(&Method::POST, "/api/v1/reload"), Role::Admin);
}

#[test]
fn tokens_come_from_environment_and_files() {
    let dir = std::env::temp_dir().join(format!("medic-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ops.token"), "file-secret\n").unwrap();
    // SAFETY: a variable only this test reads.
    unsafe { std::env::set_var("MEDIC_TEST_AUTH_TOKEN", "env-secret") };
    let c = AuthConfig {
        tokens: vec![
            TokenConfig {
                name: Spanned::unplaced("ops".to_string()),
                role: Role::Responder,
                sha256: None,
                token_env: None,
                token_file: Some("ops.token".into()),
            },
            TokenConfig {
                name: Spanned::unplaced("ci".to_string()),
                role: Role::Viewer,
                sha256: None,
                token_env: Some("MEDIC_TEST_AUTH_TOKEN".into()),
                token_file: None,
            },
        ],
    };
    let a = Auth::build(&c, &dir).unwrap();
    assert_eq!(
        a.identify("file-secret").map(|p| p.name),
        Some("ops".into())
    );
    assert_eq!(a.identify("env-secret").map(|p| p.name), Some("ci".into()));
    let mut bad = c.clone();
    bad.tokens[0].token_file = Some("missing.token".into());
    assert!(
        Auth::build(&bad, &dir)
            .unwrap_err()
            .contains("missing.token")
    );
    let mut unset = c;
    unset.tokens[1].token_env = Some("MEDIC_TEST_AUTH_UNSET".into());
    assert!(
        Auth::build(&unset, &dir)
            .unwrap_err()
            .contains("MEDIC_TEST_AUTH_UNSET is not set")
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn configuration_mistakes_are_named() {
    let mut two = token("x", Role::Viewer, "a");
    two.token_env = Some("X".into());
    let c = AuthConfig {
        tokens: vec![
            two,
            token("dup", Role::Viewer, "b"),
            token("dup", Role::Admin, "c"),
            TokenConfig {
                sha256: Some("abc".into()),
                ..token("short", Role::Viewer, "d")
            },
        ],
    };
    let problems: Vec<String> = c.check().into_iter().map(|(_, m)| m).collect();
    assert!(
        problems
            .iter()
            .any(|m| m.contains("\"x\"") && m.contains("exactly one")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|m| m.contains("duplicate auth token name \"dup\"")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|m| m.contains("\"short\"") && m.contains("64 hex digits")),
        "{problems:?}"
    );
    assert!(Auth::build(&c, Path::new(".")).is_err());
}
