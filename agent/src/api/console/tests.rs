use axum::http::HeaderMap;

use super::*;
use crate::series::cache::CacheLimits;
use crate::series::{Batch, Sample};

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn cache_with(samples: &[(&str, Labels)], watched: &[&str]) -> SeriesCache {
    let c = SeriesCache::new(CacheLimits::default());
    for t in 1..=3 {
        let batch = Batch {
            source: "s".into(),
            target: "t".into(),
            at: t,
            samples: samples
                .iter()
                .map(|(name, l)| Sample {
                    name: name.to_string(),
                    labels: l.clone(),
                    value: t as f64,
                    at: t,
                })
                .collect(),
            complete: false,
        };
        c.record(&batch, |s| watched.contains(&s.name.as_str()));
    }
    c
}

#[test]
fn an_incident_gets_its_watched_series_exact_labels_first() {
    let web = labels(&[("job", "web")]);
    let web_a = labels(&[("job", "web"), ("instance", "a")]);
    let c = cache_with(
        &[
            ("errors_total", web_a.clone()),
            ("queue_depth", web.clone()),
            ("up", web.clone()),
            ("queue_depth", labels(&[("job", "db")])),
        ],
        &["queue_depth", "errors_total"],
    );
    let found = series_of(&c, &web);
    let names: Vec<(&str, &Labels)> = found.iter().map(|v| (v.name.as_str(), &v.labels)).collect();
    // `up` is not watched (no history); `db` does not match.
    assert_eq!(names, vec![("queue_depth", &web), ("errors_total", &web_a)]);
    assert_eq!(
        found[0].points,
        vec![(1, Some(1.0)), (2, Some(2.0)), (3, Some(3.0))]
    );
}

#[test]
fn no_labels_or_unusable_labels_select_nothing() {
    let c = cache_with(
        &[("queue_depth", labels(&[("job", "web")]))],
        &["queue_depth"],
    );
    assert!(
        series_of(&c, &Labels::new()).is_empty(),
        "would select every series"
    );
    // Alertmanager labels may have names a series cannot.
    assert!(series_of(&c, &labels(&[("job", "web"), ("bad-name", "x")])).is_empty());
}

#[test]
fn assets_have_their_types_and_revalidate_by_etag() {
    for (name, ty) in [
        ("index.html", "text/html; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
    ] {
        let r = asset(name, &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::OK, "{name}");
        assert_eq!(r.headers()[header::CONTENT_TYPE], ty);
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");
        assert!(r.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        let tag = r.headers()[header::ETAG].clone();
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, tag.clone());
        let again = asset(name, &h);
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{name}");
        assert_eq!(again.headers()[header::ETAG], tag);
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert_eq!(asset(name, &h).status(), StatusCode::OK);
    }
    assert_eq!(
        asset("../Cargo.toml", &HeaderMap::new()).status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        asset("secrets", &HeaderMap::new()).status(),
        StatusCode::NOT_FOUND
    );
}

#[test]
fn the_page_loads_nothing_from_elsewhere_and_nothing_inline() {
    let html = std::str::from_utf8(ASSETS[0].body).unwrap();
    let js = std::str::from_utf8(ASSETS[1].body).unwrap();
    // Offline on loopback: no CDN, no external fonts.
    for text in [html, js, std::str::from_utf8(ASSETS[2].body).unwrap()] {
        assert!(!text.contains("http://") && !text.contains("https://"));
    }
    // The CSP forbids inline script and style, so there must be none.
    assert!(!html.contains("<script>") && !html.contains("style="));
    assert!(
        !js.contains("style=\""),
        "inline styles are blocked by the CSP"
    );
    assert!(html.contains(r#"src="app.js""#) && html.contains(r#"href="style.css""#));
}
