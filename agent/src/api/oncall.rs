//! On-call routes: signed acknowledgement links (`GET /ack/{id}`, answered
//! with a small HTML page, since people open them from mail on a phone) and
//! silences (`/api/v1/silences`).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{ApiState, actor, auth, error, json_body, parse_id, store_error, wants_all};
use crate::executors::template::html;
use crate::oncall::links::LinkError;
use crate::series::now_millis;
use crate::series::selector::Selector;
use crate::stores::StoreError;

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let doc = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>medic: {t}</title></head><body style=\"font-family:sans-serif;max-width:40em;margin:2em auto\">\
         <h1>{t}</h1><p>{body}</p></body></html>",
        t = html(title)
    );
    (status, Html(doc)).into_response()
}

/// Fields of a signed link.
#[derive(Deserialize)]
pub struct AckLinkQuery {
    exp: Option<String>,
    who: Option<String>,
    sig: Option<String>,
}

/// `GET /ack/{id}?exp=…&who=…&sig=…`: acknowledge as `who` if the signature
/// holds and the link has not expired; otherwise change nothing and say why.
pub async fn ack_link(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<AckLinkQuery>,
) -> Response {
    let (Ok(id), Some(exp), Some(who), Some(sig)) = (
        id.parse::<i64>(),
        q.exp.and_then(|e| e.parse::<i64>().ok()),
        q.who,
        q.sig,
    ) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Incomplete link",
            "This acknowledgement link is missing a part. Open the whole link from the notification.",
        );
    };
    let signer = crate::oncall::current(&s.oncall).links.clone();
    match signer.verify(id, exp, &who, &sig, now_millis() / 1000) {
        Err(LinkError::Forged) => {
            tracing::warn!(incident = id, who = %who, "refused a forged acknowledgement link");
            return page(
                StatusCode::FORBIDDEN,
                "Link not valid",
                "This acknowledgement link was not issued by medic or has been altered. Nothing was changed.",
            );
        }
        Err(LinkError::Expired) => {
            return page(
                StatusCode::GONE,
                "Link expired",
                &format!(
                    "This acknowledgement link for incident {id} has expired. Nothing was changed; \
                     acknowledge from a newer notification, the CLI or the API."
                ),
            );
        }
        Ok(()) => {}
    }
    match s
        .store
        .acknowledge(id, &who, "via signed link", now_millis())
    {
        Ok(i) => page(
            StatusCode::OK,
            "Acknowledged",
            &format!(
                "Incident {} ({}: {}) is acknowledged by {}. Escalation has stopped.",
                i.id,
                html(&i.detector),
                html(&i.summary),
                html(&who)
            ),
        ),
        Err(StoreError::NotFound(_)) => page(
            StatusCode::NOT_FOUND,
            "No such incident",
            &format!("There is no incident {id}."),
        ),
        Err(StoreError::Conflict(_)) => page(
            StatusCode::CONFLICT,
            "Already resolved",
            &format!("Incident {id} is already resolved; there is nothing to acknowledge."),
        ),
        Err(e) => page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Not acknowledged",
            &html(&e.to_string()),
        ),
    }
}

/// A new silence.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceBody {
    matchers: String,
    /// Who creates it; with a token, the token's name is recorded instead.
    #[serde(default)]
    created_by: String,
    #[serde(default)]
    comment: String,
    /// RFC 3339; default now.
    #[serde(default)]
    starts_at: Option<String>,
    /// RFC 3339; or give `duration`.
    #[serde(default)]
    ends_at: Option<String>,
    /// e.g. `2h`; or give `ends_at`.
    #[serde(default)]
    duration: Option<String>,
}

fn time(field: &str, v: &str) -> Result<i64, Box<Response>> {
    crate::sources::alertmanager::parse_rfc3339(v).ok_or_else(|| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("{field}: {v:?} is not an RFC 3339 time like 2026-01-02T15:04:05Z"),
        ))
    })
}

fn silence_times(b: &SilenceBody, now: i64) -> Result<(i64, i64), Box<Response>> {
    let start = match &b.starts_at {
        Some(t) => time("starts_at", t)?,
        None => now,
    };
    let end = match (&b.ends_at, &b.duration) {
        (Some(t), None) => time("ends_at", t)?,
        (None, Some(d)) => {
            let d = humantime::parse_duration(d.trim()).map_err(|e| {
                Box::new(error(
                    StatusCode::BAD_REQUEST,
                    format!("duration: {d:?}: {e}; expected e.g. 30m, 2h"),
                ))
            })?;
            start + d.as_millis() as i64
        }
        _ => {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "give exactly one of ends_at and duration",
            )));
        }
    };
    if end <= start {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "the silence must end after it starts",
        )));
    }
    Ok((start, end))
}

/// `POST /api/v1/silences`.
pub async fn create_silence(
    State(s): State<ApiState>,
    principal: Option<axum::Extension<auth::Principal>>,
    body: Result<Json<SilenceBody>, JsonRejection>,
) -> Response {
    let b = match json_body(
        body,
        r#"{"matchers": "{service=\"web\"}", "created_by": "name", "duration": "2h", "comment": "..."}"#,
    ) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    match Selector::matchers_only(&b.matchers) {
        Ok(ms) if ms.is_empty() => {
            return error(
                StatusCode::BAD_REQUEST,
                "matchers: a silence needs at least one matcher",
            );
        }
        Ok(_) => {}
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "matchers: invalid label matchers {:?} at column {}: {}",
                    b.matchers, e.column, e.message
                ),
            );
        }
    }
    let created_by = actor(principal.as_ref(), &b.created_by);
    if created_by.is_empty() {
        return error(StatusCode::BAD_REQUEST, "created_by must not be empty");
    }
    let now = now_millis();
    let (start, end) = match silence_times(&b, now) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    match s
        .store
        .add_silence(&b.matchers, start, end, &created_by, &b.comment, now)
    {
        Ok(silence) => (StatusCode::CREATED, Json(json!({ "silence": silence }))).into_response(),
        Err(e) => store_error(e),
    }
}

/// Which silences to list.
#[derive(Deserialize)]
pub struct SilenceQuery {
    /// `active` (default: active and future) or `all`.
    state: Option<String>,
}

/// `GET /api/v1/silences`.
pub async fn list_silences(State(s): State<ApiState>, Query(q): Query<SilenceQuery>) -> Response {
    let all = match wants_all(q.state.as_deref(), "active") {
        Ok(a) => a,
        Err(r) => return *r,
    };
    match s.store.silences(all, now_millis()) {
        Ok(v) => Json(json!({ "silences": v })).into_response(),
        Err(e) => store_error(e),
    }
}

/// `DELETE /api/v1/silences/{id}`: end it now.
pub async fn expire_silence(State(s): State<ApiState>, Path(id): Path<String>) -> Response {
    let id = match parse_id(&id) {
        Ok(i) => i,
        Err(r) => return *r,
    };
    match s.store.expire_silence(id, now_millis()) {
        Ok(silence) => Json(json!({ "silence": silence })).into_response(),
        Err(e) => store_error(e),
    }
}
