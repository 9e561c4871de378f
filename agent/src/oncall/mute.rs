//! Muting: silences, maintenance windows and inhibition. Both answer one question — should this
//! incident's notifications be held now, and why — and neither changes the
//! incident itself.
//!
//! Matchers see the incident's labels plus `alertname` (the detector's name)
//! when the labels have none, so Alertmanager habits carry over.

use crate::incidents::Incident;
use crate::series::selector::Selector;
use crate::series::{Labels, Millis};
use crate::stores::oncall::Silence;

use super::InhibitRule;
use super::maintenance::MaintenanceWindow;

/// The labels matchers see.
pub fn match_labels(i: &Incident) -> Labels {
    let mut l = i.labels.clone();
    l.entry("alertname".into())
        .or_insert_with(|| i.detector.clone());
    l
}

fn matches(matchers: &str, labels: &Labels) -> bool {
    Selector::matchers_only(matchers).is_ok_and(|ms| ms.iter().all(|m| m.matches(labels)))
}

/// What can hold notifications.
#[derive(Clone, Copy, Default)]
pub struct Mutes<'a> {
    /// Silences (active or not).
    pub silences: &'a [Silence],
    /// Maintenance windows.
    pub windows: &'a [MaintenanceWindow],
    /// Inhibition rules.
    pub rules: &'a [InhibitRule],
    /// Open incidents (possible inhibitors).
    pub open: &'a [&'a Incident],
}

/// Why `i`'s notifications are held at `now`, if they are: the first active
/// silence that matches, else a maintenance window, else the first open
/// incident that inhibits it.
pub fn reason(i: &Incident, m: Mutes<'_>, now: Millis) -> Option<String> {
    let Mutes {
        silences,
        windows,
        rules,
        open,
    } = m;
    let labels = match_labels(i);
    if let Some(s) = silences
        .iter()
        .find(|s| s.active(now) && matches(&s.matchers, &labels))
    {
        let comment = if s.comment.is_empty() {
            String::new()
        } else {
            format!(": {}", s.comment)
        };
        return Some(format!(
            "silenced by silence {} ({} by {}{comment})",
            s.id, s.matchers, s.created_by
        ));
    }
    if let Some(w) = windows.iter().find(|w| w.covers(&labels, now)) {
        return Some(format!("in maintenance window {}", w.name.value));
    }
    for r in rules {
        if !matches(&r.target, &labels) {
            continue;
        }
        let by = open.iter().find(|o| {
            if o.id == i.id || !o.is_open() {
                return false;
            }
            let ol = match_labels(o);
            matches(&r.source, &ol) && r.equal.iter().all(|k| ol.get(k) == labels.get(k))
        });
        if let Some(o) = by {
            return Some(format!(
                "inhibited by incident {} ({} {})",
                o.id,
                o.detector,
                crate::incidents::labels_text(&o.labels)
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::spanned::Spanned;
    use crate::incidents::IncidentState;

    fn incident(id: i64, detector: &str, labels: &[(&str, &str)]) -> Incident {
        Incident::example(id, detector, labels)
    }

    fn silence(matchers: &str, starts: Millis, ends: Millis) -> Silence {
        Silence {
            id: 3,
            matchers: matchers.into(),
            starts_at: starts,
            ends_at: ends,
            created_by: "ann".into(),
            comment: "deploy".into(),
            created_at: 0,
        }
    }

    #[test]
    fn a_silence_mutes_only_while_active_and_matching() {
        let i = incident(1, "web-down", &[("service", "web")]);
        let s = [silence(r#"{service="web"}"#, 100, 200)];
        let m = |s| Mutes {
            silences: s,
            ..Mutes::default()
        };
        assert_eq!(reason(&i, m(&s), 50), None);
        assert_eq!(
            reason(&i, m(&s), 100).as_deref(),
            Some(r#"silenced by silence 3 ({service="web"} by ann: deploy)"#)
        );
        assert_eq!(reason(&i, m(&s), 200), None);
        let other = [silence(r#"{service="db"}"#, 0, 1000)];
        assert_eq!(reason(&i, m(&other), 100), None);
        let by_name = [silence(r#"{alertname="web-down"}"#, 0, 1000)];
        assert!(reason(&i, m(&by_name), 100).is_some());
    }

    #[test]
    fn inhibition_needs_an_open_source_with_equal_labels() {
        let rule = InhibitRule {
            source: Spanned::unplaced(r#"{alertname="node-down"}"#.into()),
            target: Spanned::unplaced(r#"{alertname=~"web-.*"}"#.into()),
            equal: vec!["node".into()],
        };
        let web = incident(2, "web-down", &[("node", "a")]);
        let node_a = incident(1, "node-down", &[("node", "a")]);
        let node_b = incident(3, "node-down", &[("node", "b")]);
        let rules = [rule];
        let check = |i: &Incident, open: &[&Incident]| {
            let m = Mutes {
                rules: &rules,
                open,
                ..Mutes::default()
            };
            reason(i, m, 0)
        };
        assert!(
            check(&web, &[&node_a])
                .unwrap()
                .starts_with("inhibited by incident 1")
        );
        assert_eq!(check(&web, &[&node_b]), None);
        // The source does not inhibit itself.
        assert_eq!(check(&node_a, &[&node_a]), None);
        let mut resolved = node_a.clone();
        resolved.state = IncidentState::Resolved;
        assert_eq!(check(&web, &[&resolved]), None);
    }
}
