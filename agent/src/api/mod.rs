//! The HTTP API (axum): incidents, acknowledgements, reload, health, metrics.
//!
//! On-call routes (signed ack links, silences) are in `oncall.rs`.
//!
//! Errors are JSON `{"error": "..."}` with a 4xx status for the caller's
//! mistakes; the daemon keeps serving whatever a request contains.

pub mod auth;
mod console;
mod oncall;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::series::now_millis;
use crate::services::Supervisor;
use crate::stores::{IncidentFilter, Store, StoreError, StoreResult};
use crate::telemetry::Metrics;

/// A reload request: answered with the outcome (error text on failure).
pub type ReloadRequest = oneshot::Sender<Result<String, String>>;

/// What handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Reload requests go to the daemon's main loop.
    pub reload: mpsc::Sender<ReloadRequest>,
    /// Set once sources run.
    pub ready: Arc<AtomicBool>,
    /// Supervised services.
    pub supervisor: Supervisor,
    /// Push receivers (remote_write, Alertmanager, OTLP) in force.
    pub push: Arc<crate::sources::push::PushRegistry>,
    /// Recent series values.
    pub series: Arc<crate::series::cache::SeriesCache>,
    /// On-call configuration (ack link signing).
    pub oncall: crate::oncall::SharedOncall,
    /// Degraded mode's local spool (`store: etcd` only).
    pub spool: Option<Arc<crate::stores::spool::Spool>>,
}

/// The router. Ingest routes have their own per-source body limits, so they
/// sit outside the API's 1 MiB limit.
pub fn router(state: ApiState) -> Router {
    let ingest = Router::new()
        .route("/api/v1/write", post(crate::sources::remote_write::handle))
        .route(
            "/api/v1/alertmanager",
            post(crate::sources::alertmanager::handle),
        )
        .route("/v1/traces", post(crate::sources::otlp::http::traces))
        .route("/v1/metrics", post(crate::sources::otlp::http::metrics))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state.push.clone());
    // Open to all: probes, Prometheus, and signed links (their signature is
    // the credential). Everything else needs a token's role when tokens are
    // configured (`auth.rs`).
    let open = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/ack/{id}", get(oncall::ack_link))
        .with_state(state.clone());
    Router::new()
        .route("/api/v1/incidents", get(list_incidents))
        .route("/api/v1/incidents/{id}", get(get_incident))
        .route("/api/v1/incidents/{id}/ack", post(ack))
        .route(
            "/api/v1/silences",
            get(oncall::list_silences).post(oncall::create_silence),
        )
        .route("/api/v1/silences/{id}", delete(oncall::expire_silence))
        .route("/api/v1/services", get(services))
        .route("/api/v1/status", get(status))
        .route("/api/v1/spool", get(spool))
        .route("/api/v1/series", get(series))
        .route("/api/v1/reload", post(reload))
        .merge(console::api_routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard,
        ))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(1 << 20))
        .with_state(state)
        .merge(open)
        .merge(ingest)
        .merge(console::routes())
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({ "error": msg.into() }))).into_response()
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::NotFound(m) => error(StatusCode::NOT_FOUND, m),
        StoreError::Conflict(m) | StoreError::Fenced(m) => error(StatusCode::CONFLICT, m),
        StoreError::Backend(m) => error(StatusCode::INTERNAL_SERVER_ERROR, m),
    }
}

async fn readyz(State(s): State<ApiState>) -> Response {
    if s.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
    }
}

/// `GET /api/v1/status`: whether the store answers (`ok` or `degraded`),
/// who leads, this node's role, and what waits in the local spool.
async fn status(State(s): State<ApiState>) -> Response {
    let st = s.store.status();
    let role = match s.store.leading() {
        None => "single",
        Some(true) => "leader",
        Some(false) => "follower",
    };
    let spool = s.spool.as_ref().and_then(|sp| sp.counts().ok()).map(
        |(unflushed, pending)| json!({"events_not_in_store": unflushed, "notifications_pending": pending}),
    );
    let message = (!st.up).then_some(
        "Store unreachable: automated actions are paused; notifications are sent from this node directly",
    );
    Json(json!({
        "store": if st.up { "ok" } else { "degraded" },
        "store_detail": st.detail,
        "message": message,
        "node": st.node,
        "role": role,
        "leader": st.leader,
        "spool": spool,
    }))
    .into_response()
}

/// `GET /api/v1/spool`: what this node saw while the store was out of
/// reach and has not yet replayed into it (degraded mode; `store: etcd`
/// only), oldest first, with where each notification stands. Each node
/// has its own spool: this lists this node's.
async fn spool(State(s): State<ApiState>) -> Response {
    let Some(sp) = s.spool.as_ref() else {
        return Json(json!({ "events": [] })).into_response();
    };
    let listed = sp.unflushed().and_then(|events| {
        events
            .into_iter()
            .map(|e| {
                let sends = sp.sends_of(e.id)?;
                Ok(json!({
                    "id": e.id,
                    "event": e.event,
                    "fingerprint": e.fingerprint,
                    "detector": e.incident.detector,
                    "labels": e.incident.labels,
                    "severity": e.incident.severity,
                    "summary": e.incident.summary,
                    "spooled_at": e.created_at,
                    "notifications": sends
                        .into_iter()
                        .map(|(notifier, state)| json!({"notifier": notifier, "state": state}))
                        .collect::<Vec<_>>(),
                }))
            })
            .collect::<StoreResult<Vec<_>>>()
    });
    match listed {
        Ok(events) => Json(json!({ "events": events })).into_response(),
        Err(e) => store_error(e),
    }
}

async fn metrics(State(s): State<ApiState>) -> Response {
    // The store's health as of this scrape (the only place these gauges are
    // set: nothing else reads them).
    s.metrics.store_up.set(i64::from(s.store.status().up));
    s.metrics
        .leader
        .set(i64::from(s.store.leading().unwrap_or(true)));
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
        .into_response()
}

#[derive(Deserialize)]
struct ListQuery {
    /// `open` (default) or `all`.
    state: Option<String>,
    limit: Option<usize>,
}

async fn list_incidents(
    State(s): State<ApiState>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return error(
            StatusCode::BAD_REQUEST,
            "query: expected ?state=open|all&limit=N",
        );
    };
    let open_only = match wants_all(q.state.as_deref(), "open") {
        Ok(all) => !all,
        Err(r) => return *r,
    };
    match s.store.incidents(&IncidentFilter {
        open_only,
        limit: Some(q.limit.unwrap_or(1000).min(10_000)),
    }) {
        Ok(v) => Json(json!({ "incidents": v })).into_response(),
        Err(e) => store_error(e),
    }
}

/// `?state=`: absent or `narrow` → false, `all` → true, anything else a 400.
fn wants_all(state: Option<&str>, narrow: &str) -> Result<bool, Box<Response>> {
    match state {
        None => Ok(false),
        Some("all") => Ok(true),
        Some(s) if s == narrow => Ok(false),
        Some(other) => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("state: expected {narrow} or all, got {other:?}"),
        ))),
    }
}

/// A JSON body, or a 400 that shows what was expected.
fn json_body<T>(body: Result<Json<T>, JsonRejection>, expected: &str) -> Result<T, Box<Response>> {
    body.map(|Json(b)| b).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("expected JSON {expected}: {}", e.body_text()),
        ))
    })
}

fn parse_id(id: &str) -> Result<i64, Box<Response>> {
    id.parse::<i64>().map_err(|_| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("incident id must be a number, got {id:?}"),
        ))
    })
}

/// The incident a path's `{id}` names: 400 for a non-number, 404 when
/// there is none.
fn incident_at(s: &ApiState, id: &str) -> Result<(i64, crate::incidents::Incident), Box<Response>> {
    let id = parse_id(id)?;
    match s.store.incident(id) {
        Ok(Some(i)) => Ok((id, i)),
        Ok(None) => Err(Box::new(error(
            StatusCode::NOT_FOUND,
            format!("no incident {id}"),
        ))),
        Err(e) => Err(Box::new(store_error(e))),
    }
}

async fn get_incident(State(s): State<ApiState>, Path(id): Path<String>) -> Response {
    let (id, incident) = match incident_at(&s, &id) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let timeline = s.store.timeline(id).unwrap_or_default();
    let runs = s.store.runs_for(id).unwrap_or_default();
    let actions = s.store.journal_for_incident(id).unwrap_or_default();
    let notifications = s.store.notifications_for(id).unwrap_or_default();
    Json(json!({ "incident": incident, "timeline": timeline, "runs": runs, "actions": actions, "notifications": notifications }))
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    /// Who acknowledges; with a token, the token's name is recorded instead.
    #[serde(default)]
    who: String,
    #[serde(default)]
    comment: String,
}

/// The actor to record: the token's owner when a token was used, otherwise
/// the name the caller gave.
fn actor(principal: Option<&axum::Extension<auth::Principal>>, given: &str) -> String {
    match principal {
        Some(p) => p.name.clone(),
        None => given.trim().to_string(),
    }
}

async fn ack(
    State(s): State<ApiState>,
    principal: Option<axum::Extension<auth::Principal>>,
    Path(id): Path<String>,
    body: Result<Json<AckBody>, JsonRejection>,
) -> Response {
    let id = match parse_id(&id) {
        Ok(i) => i,
        Err(r) => return *r,
    };
    let b = match json_body(body, r#"{"who": "name", "comment": "..."}"#) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let who = actor(principal.as_ref(), &b.who);
    if who.is_empty() {
        return error(StatusCode::BAD_REQUEST, "who must not be empty");
    }
    match s.store.acknowledge(id, &who, &b.comment, now_millis()) {
        Ok(i) => Json(json!({ "incident": i })).into_response(),
        Err(e) => store_error(e),
    }
}

#[derive(Deserialize)]
struct SeriesQuery {
    #[serde(rename = "match")]
    selector: String,
    limit: Option<usize>,
}

async fn series(
    State(s): State<ApiState>,
    q: Result<Query<SeriesQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return error(
            StatusCode::BAD_REQUEST,
            "query: expected ?match=<series selector>&limit=N",
        );
    };
    let sel: crate::series::selector::Selector = match q.selector.parse() {
        Ok(s) => s,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("match: invalid series selector {:?}: {e}", q.selector),
            );
        }
    };
    let (cached, dropped) = s.series.stats();
    let v = s.series.query(&sel, q.limit.unwrap_or(1000).min(10_000));
    Json(json!({ "series": v, "cached_series": cached, "uncached_series": dropped }))
        .into_response()
}

async fn services(State(s): State<ApiState>) -> Response {
    Json(json!({ "services": s.supervisor.status().await })).into_response()
}

async fn reload(State(s): State<ApiState>) -> Response {
    let (tx, rx) = oneshot::channel();
    if s.reload.send(tx).await.is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    match rx.await {
        Ok(Ok(msg)) => Json(json!({ "status": "reloaded", "message": msg })).into_response(),
        Ok(Err(e)) => error(
            StatusCode::BAD_REQUEST,
            format!("reload refused; the running configuration stays in force:\n{e}"),
        ),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
    }
}
