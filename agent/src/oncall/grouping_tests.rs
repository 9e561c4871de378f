use super::*;
use crate::stores::oncall::DeliveryState;

fn due(id: i64, service: &str, created_at: Millis, grouping: Option<Grouping>) -> Due {
    Due {
        entry: OutboxEntry {
            id,
            key: format!("incident-{id}/climb-0/level-1/hook"),
            incident_id: id,
            notifier: "hook".into(),
            event: "opened".into(),
            level: Some(1),
            state: DeliveryState::Pending,
            attempts: 0,
            next_attempt_at: created_at,
            created_at,
            finished_at: None,
            detail: None,
        },
        incident: Some(Incident::example(id, "down", &[("service", service)])),
        grouping,
    }
}

fn by_service() -> Option<Grouping> {
    Some(Grouping {
        by: vec!["service".into()],
        wait: 1_000,
        interval: 10_000,
    })
}

fn ids(b: &Batch) -> Vec<i64> {
    b.members.iter().map(|d| d.entry.incident_id).collect()
}

#[test]
fn ungrouped_entries_go_alone_at_once() {
    let out = batches(
        vec![due(1, "web", 0, None), due(2, "web", 0, None)],
        &HashMap::new(),
        0,
    );
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|b| b.key.is_none() && b.members.len() == 1));
}

#[test]
fn a_new_group_waits_group_wait_then_goes_as_one() {
    let entries = || {
        vec![
            due(3, "web", 200, by_service()),
            due(1, "web", 0, by_service()),
            due(2, "db", 100, by_service()),
            due(4, "web", 900, by_service()),
        ]
    };
    assert!(batches(entries(), &HashMap::new(), 999).is_empty());
    let out = batches(entries(), &HashMap::new(), 1_000);
    assert_eq!(out.len(), 1, "only web's group is ready: {out:?}");
    assert_eq!(ids(&out[0]), vec![1, 3, 4], "oldest leads");
    assert_eq!(out[0].labels, [("service".into(), "web".into())].into());
    let out = batches(entries(), &HashMap::new(), 1_100);
    assert_eq!(out.len(), 2);
}

#[test]
fn a_recently_sent_group_waits_for_group_interval() {
    let d = due(5, "web", 20_000, by_service());
    let key = batches(vec![d.clone()], &HashMap::new(), 21_000)[0]
        .key
        .clone()
        .unwrap();
    let last = HashMap::from([(key, 15_000)]);
    assert!(batches(vec![d.clone()], &last, 24_999).is_empty());
    assert_eq!(batches(vec![d], &last, 25_000).len(), 1);
}

#[test]
fn groups_are_per_notifier_event_and_level() {
    let mut a = due(1, "web", 0, by_service());
    let mut b = due(2, "web", 0, by_service());
    let c = due(3, "web", 0, by_service());
    a.entry.notifier = "mail".into();
    b.entry.event = "resolved".into();
    b.entry.level = None;
    let out = batches(vec![a, b, c], &HashMap::new(), 5_000);
    assert_eq!(out.len(), 3);
}

#[test]
fn empty_group_by_puts_the_whole_route_in_one_group() {
    let all = Some(Grouping {
        by: vec![],
        wait: 0,
        interval: 0,
    });
    let out = batches(
        vec![due(1, "web", 0, all.clone()), due(2, "db", 0, all)],
        &HashMap::new(),
        0,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(ids(&out[0]), vec![1, 2]);
}

#[test]
fn a_missing_label_groups_with_the_others_missing_it() {
    let mut i = due(1, "web", 0, by_service());
    i.incident.as_mut().unwrap().labels.clear();
    let mut j = due(2, "web", 0, by_service());
    j.incident.as_mut().unwrap().labels.clear();
    let out = batches(vec![i, j], &HashMap::new(), 1_000);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].labels, [("service".into(), String::new())].into());
}
