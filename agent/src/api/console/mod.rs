//! The web console: a page that lists the open incidents and shows one with
//! its timeline, a chart of its series and buttons to acknowledge and
//! silence.
//!
//! Plain HTML, CSS and JavaScript embedded in the binary (`assets/`), so a
//! user needs no build toolchain and no network beyond medic itself. The
//! page reads the same JSON API as everyone else; the only data routes here
//! are the two things the API had no answer for: an incident's recent series
//! points and which open incidents are flapping.
//!
//! [`routes`] are the static assets: they hold no data and are served
//! without authentication. [`api_routes`] are data and sit with the API.

#[cfg(test)]
mod tests;

use std::sync::OnceLock;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Redirect, Response};
use axum::routing::get;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{ApiState, store_error};
use crate::series::Labels;
use crate::series::cache::{SeriesCache, SeriesView};
use crate::series::selector::{MatchOp, Matcher, Selector};

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: [Asset; 3] = [
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("assets/index.html"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/app.js"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("assets/style.css"),
    },
];

/// The page may load only its own script and style and talk only to medic:
/// a label that slipped past escaping still could not run script.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Most series shown for one incident.
const MAX_SERIES: usize = 4;

/// The console's static files: `/` and `/console` lead to `/console/`.
pub fn routes() -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route(
            "/console/",
            get(|h: HeaderMap| async move { asset("index.html", &h) }),
        )
        .route(
            "/console/{file}",
            get(|Path(file): Path<String>, h: HeaderMap| async move { asset(&file, &h) }),
        )
}

/// Data the console needs beyond the incident API (authenticated like it).
pub fn api_routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/incidents/flapping", get(flapping))
        .route("/api/v1/incidents/{id}/series", get(incident_series))
}

/// Strong ETags, computed once from the embedded bytes.
fn etags() -> &'static [String; 3] {
    static TAGS: OnceLock<[String; 3]> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS.each_ref().map(|a| {
            let d = Sha256::digest(a.body);
            let hex: String = d.iter().take(12).map(|b| format!("{b:02x}")).collect();
            format!("\"{hex}\"")
        })
    })
}

/// An embedded file, or 304 when the browser has it, or 404.
fn asset(name: &str, headers: &HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.name == name) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("no console file {name:?}\n"),
        )
            .into_response();
    };
    let a = &ASSETS[i];
    let tag = &etags()[i];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let status = if fresh {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    };
    let mut r = if fresh {
        status.into_response()
    } else {
        (status, a.body).into_response()
    };
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, v);
    }
    // Revalidate every time (a 304 is cheap): an upgraded medic serves new files at once.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// `GET /api/v1/incidents/flapping`: ids of open incidents marked flapping.
async fn flapping(State(s): State<ApiState>) -> Response {
    match s.store.flapping_incidents() {
        Ok(ids) => Json(json!({ "flapping": ids })).into_response(),
        Err(e) => store_error(e),
    }
}

/// `GET /api/v1/incidents/{id}/series`: the recent points medic keeps of the
/// series behind an incident (see [`series_of`]), with the detection time.
async fn incident_series(State(s): State<ApiState>, Path(id): Path<String>) -> Response {
    let (id, incident) = match super::incident_at(&s, &id) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let series = series_of(&s.series, &incident.labels);
    Json(json!({
        "incident_id": id,
        "detected_at": incident.opened_at,
        "series": series,
    }))
    .into_response()
}

/// The watched series whose labels include all of the incident's labels:
/// the series a detector judged, first those with exactly these labels (a
/// per-series detector), then those of a group (`by:` of error_rate). Only
/// watched series have history; none for an incident from Alertmanager or
/// whose series the cache dropped.
pub fn series_of(cache: &SeriesCache, labels: &Labels) -> Vec<SeriesView> {
    // No labels would select every series.
    if labels.is_empty() {
        return Vec::new();
    }
    let matchers: Result<Vec<Matcher>, _> = labels
        .iter()
        .map(|(k, v)| Matcher::new(k.as_str(), MatchOp::Equal, v.as_str()))
        .collect();
    // A label name no series can carry (e.g. from an Alertmanager alert).
    let Ok(matchers) = matchers else {
        return Vec::new();
    };
    let sel = Selector {
        metric: None,
        matchers,
    };
    let mut found: Vec<SeriesView> = cache
        .query(&sel, usize::MAX)
        .into_iter()
        .filter(|v| v.watched && !v.points.is_empty())
        .collect();
    // Stable: ties keep the cache's name-and-labels order.
    found.sort_by_key(|v| v.labels != *labels);
    found.truncate(MAX_SERIES);
    found
}
