//! API tokens with roles.
//!
//! Without an `auth:` section the API is open (loopback by default), as it
//! always was. With tokens configured, every API route needs
//! `Authorization: Bearer <token>`:
//!
//! | role | may |
//! |---|---|
//! | `viewer` | read incidents, timelines, series, services, silences |
//! | `responder` | viewer + acknowledge incidents, create and expire silences |
//! | `admin` | responder + reload the configuration |
//!
//! Not covered, on purpose: `/healthz`, `/readyz` and `/metrics` (probes and
//! Prometheus scrape them), the signed `/ack/{id}` links (the HMAC signature is
//! their credential), the console's static files (they hold no data), and
//! the push receivers (`/api/v1/write`, `/v1/traces`, …), which machines call
//! and whose limits are per source.
//!
//! Acknowledgements and silences made with a token are attributed to the
//! token's `name`, whatever the request body says, so the record shows who
//! really acted. Tokens are kept only as SHA-256 digests and compared in
//! constant time; a token never reaches a log.

use std::path::{Path, PathBuf};

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{ApiState, error};
use crate::config::spanned::Spanned;

/// `auth:` in `medic.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// API tokens. With none, the API needs no token.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
}

/// One API token. Give exactly one of `sha256`, `token_env`, `token_file`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Whose token: acks and silences made with it are recorded under this name.
    pub name: Spanned<String>,
    /// What it may do.
    pub role: Role,
    /// Hex SHA-256 of the token (`printf %s "$TOKEN" | sha256sum`), so the
    /// configuration holds no secret.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Environment variable holding the token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// File holding the token (relative to medic.yaml).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

/// Roles, each including the ones before it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read everything.
    Viewer,
    /// Read, acknowledge, silence.
    Responder,
    /// Everything, including reload.
    Admin,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Responder => "responder",
            Role::Admin => "admin",
        }
    }
}

/// Who made a request, known from its token. Handlers that record an actor
/// take it from here when present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's name.
    pub name: String,
    /// Its role.
    pub role: Role,
}

/// The tokens in force.
#[derive(Debug, Default)]
pub struct Auth {
    tokens: Vec<([u8; 32], Principal)>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl AuthConfig {
    /// Mistakes found without reading secrets, with the token they concern.
    pub fn check(&self) -> Vec<(&Spanned<String>, String)> {
        let mut out = Vec::new();
        let mut names = std::collections::HashSet::new();
        for t in &self.tokens {
            let name = &t.name.value;
            if name.trim().is_empty() {
                out.push((&t.name, "auth token name must not be empty".to_string()));
            } else if !names.insert(name.as_str()) {
                out.push((&t.name, format!("duplicate auth token name {name:?}")));
            }
            let given = [
                t.sha256.is_some(),
                t.token_env.is_some(),
                t.token_file.is_some(),
            ]
            .iter()
            .filter(|g| **g)
            .count();
            if given != 1 {
                out.push((
                    &t.name,
                    format!(
                        "auth token {name:?}: give exactly one of sha256, token_env, token_file"
                    ),
                ));
            }
            if let Some(h) = &t.sha256
                && parse_hex32(h).is_none()
            {
                out.push((
                    &t.name,
                    format!(
                        "auth token {name:?}: sha256 must be 64 hex digits (printf %s \"$TOKEN\" | sha256sum)"
                    ),
                ));
            }
        }
        out
    }
}

impl Auth {
    /// Build from the configuration, reading token files and variables.
    pub fn build(c: &AuthConfig, base_dir: &Path) -> Result<Auth, String> {
        if let Some((_, p)) = c.check().into_iter().next() {
            return Err(p);
        }
        let mut tokens = Vec::new();
        for t in &c.tokens {
            let what = format!("auth token {:?}", t.name.value);
            let d = if let Some(h) = &t.sha256 {
                parse_hex32(h).ok_or_else(|| format!("{what}: sha256 is not 64 hex digits"))?
            } else if let Some(var) = &t.token_env {
                match std::env::var(var) {
                    Ok(v) if !v.trim().is_empty() => digest(v.trim()),
                    _ => {
                        return Err(format!("{what}: environment variable {var} is not set"));
                    }
                }
            } else if let Some(f) = &t.token_file {
                let p = base_dir.join(f);
                let v = std::fs::read_to_string(&p)
                    .map_err(|e| format!("{what}: token_file {}: {e}", p.display()))?;
                if v.trim().is_empty() {
                    return Err(format!("{what}: token_file {} is empty", p.display()));
                }
                digest(v.trim())
            } else {
                unreachable!("checked above")
            };
            tokens.push((
                d,
                Principal {
                    name: t.name.value.clone(),
                    role: t.role,
                },
            ));
        }
        Ok(Auth { tokens })
    }

    /// Whether any token is configured (otherwise the API is open).
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The owner of a presented token. Every configured digest is compared,
    /// in constant time, so timing tells nothing about which one is close.
    pub fn identify(&self, token: &str) -> Option<Principal> {
        let d = digest(token);
        let mut found = None;
        for (k, p) in &self.tokens {
            if same(k, &d) && found.is_none() {
                found = Some(p.clone());
            }
        }
        found
    }

    /// Decide a request: `Ok(None)` when the API is open, `Ok(Some(who))`
    /// for a token with the role, otherwise the refusal to send.
    pub fn authorize(
        &self,
        authorization: Option<&str>,
        need: Role,
    ) -> Result<Option<Principal>, Refusal> {
        if !self.enabled() {
            return Ok(None);
        }
        let Some(h) = authorization else {
            return Err(Refusal::Unauthenticated(
                "this API needs a token: send Authorization: Bearer <token>".into(),
            ));
        };
        let token = h
            .strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Refusal::Unauthenticated("the Authorization header must be Bearer <token>".into())
            })?;
        let p = self
            .identify(token)
            .ok_or_else(|| Refusal::Unauthenticated("unknown token".into()))?;
        if p.role < need {
            return Err(Refusal::Forbidden(format!(
                "token {:?} has role {}; this needs {}",
                p.name,
                p.role.as_str(),
                need.as_str()
            )));
        }
        Ok(Some(p))
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 401: no token, malformed header, unknown token.
    Unauthenticated(String),
    /// 403: a known token without the role.
    Forbidden(String),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Unauthenticated(m) => {
                let mut r = error(StatusCode::UNAUTHORIZED, m);
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer realm=\"medic\""),
                );
                r
            }
            Refusal::Forbidden(m) => error(StatusCode::FORBIDDEN, m),
        }
    }
}

/// Middleware: refuse requests without the role; put the [`Principal`] in
/// the request's extensions for handlers.
async fn require(need: Role, s: ApiState, mut req: Request, next: Next) -> Response {
    let auth = crate::oncall::current(&s.oncall).auth.clone();
    let h = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match auth.authorize(h, need) {
        Ok(Some(p)) => {
            req.extensions_mut().insert(p);
            next.run(req).await
        }
        Ok(None) => next.run(req).await,
        Err(refusal) => {
            let reason = match &refusal {
                Refusal::Unauthenticated(_) => "unauthenticated",
                Refusal::Forbidden(_) => "forbidden",
            };
            s.metrics
                .api_auth_refusals
                .get_or_create(&crate::telemetry::RefusalLabels {
                    reason: reason.into(),
                })
                .inc();
            tracing::warn!(path = %req.uri().path(), need = need.as_str(), refusal = ?refusal, "API request refused");
            refusal.into_response()
        }
    }
}

/// The role a request needs: reading needs `viewer`; reloading the
/// configuration needs `admin`; any other change needs `responder`.
pub fn needed(method: &axum::http::Method, path: &str) -> Role {
    use axum::http::Method;
    if method == Method::GET || method == Method::HEAD || method == Method::OPTIONS {
        Role::Viewer
    } else if path == "/api/v1/reload" {
        Role::Admin
    } else {
        Role::Responder
    }
}

/// Middleware over the API routes: the role is chosen by [`needed`].
pub async fn guard(State(s): State<ApiState>, req: Request, next: Next) -> Response {
    let need = needed(req.method(), req.uri().path());
    require(need, s, req, next).await
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
