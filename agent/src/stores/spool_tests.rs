use super::*;

fn detection(fp: &str) -> Detection {
    Detection {
        fingerprint: fp.into(),
        detector: "bad".into(),
        labels: [("service".to_string(), "web".to_string())].into(),
        severity: "critical".into(),
        summary: "web is bad".into(),
        at: 10,
        evidence: serde_json::json!({"reason": "x"}),
    }
}

fn incident(fp: &str) -> Incident {
    Incident {
        fingerprint: fp.into(),
        ..Incident::example(0, "bad", &[("service", "web")])
    }
}

#[test]
fn events_replay_in_order_and_each_recipient_is_sent_until_it_succeeds() {
    let s = Spool::memory().unwrap();
    let opened = s
        .add(
            "opened",
            &incident("a"),
            &SpooledChange::Firing(detection("a")),
            10,
        )
        .unwrap();
    let resolved = SpooledChange::Resolved {
        at: 20,
        cause: "ok".into(),
        evidence: serde_json::Value::Null,
    };
    let closed = s.add("resolved", &incident("a"), &resolved, 20).unwrap();
    let pending = s.unflushed().unwrap();
    assert_eq!(
        pending.iter().map(|e| e.id).collect::<Vec<_>>(),
        [opened, closed]
    );
    assert_eq!(pending[0].change, SpooledChange::Firing(detection("a")));
    assert_eq!(pending[1].change, resolved);

    // Recipients are chosen once; a failed send is retried at its time.
    assert_eq!(s.unplanned().unwrap().len(), 2);
    s.plan(opened, &["hook".into(), "mail".into()], 10).unwrap();
    s.plan(closed, &[], 20).unwrap();
    assert!(s.unplanned().unwrap().is_empty());
    let due = s.due(10).unwrap();
    assert_eq!(due.len(), 2);
    s.attempted(opened, "hook", true, None, "200").unwrap();
    s.attempted(opened, "mail", false, Some(15), "refused")
        .unwrap();
    assert!(s.due(14).unwrap().is_empty());
    let again = s.due(15).unwrap();
    assert_eq!((again[0].notifier.as_str(), again[0].attempts), ("mail", 1));
    s.attempted(opened, "mail", false, None, "refused").unwrap();
    assert_eq!(
        s.sends_of(opened).unwrap(),
        [
            ("hook".into(), "sent".into()),
            ("mail".into(), "failed".into())
        ]
    );
    assert_eq!(s.counts().unwrap(), (2, 0));

    s.flushed(opened, 30).unwrap();
    assert_eq!(s.unflushed().unwrap().len(), 1);
    s.flushed(closed, 31).unwrap();
    assert_eq!(s.counts().unwrap(), (0, 0));
}

#[test]
fn the_spool_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("medic-spool-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("spool.db");
    {
        let s = Spool::open(&path).unwrap();
        s.add(
            "opened",
            &incident("b"),
            &SpooledChange::Firing(detection("b")),
            1,
        )
        .unwrap();
    }
    let s = Spool::open(&path).unwrap();
    assert_eq!(s.unflushed().unwrap()[0].fingerprint, "b");
    let _ = std::fs::remove_dir_all(&dir);
}
