//! Where each record lives under the prefix (the layout is described in the
//! module doc of [`super`]).

use crate::series::Millis;

/// Key names under one prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

/// An id or a time as 20 digits, so that key order is number order.
/// Times before 1970 sort as 1970 (they only order index entries).
pub fn num(n: i64) -> String {
    format!("{:020}", n.max(0))
}

/// A free-form name as one key segment: `%`, `/` and control characters are
/// percent-encoded, so a segment never contains `/`.
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '%' || c == '/' || c.is_control() {
            let mut b = [0u8; 4];
            for byte in c.encode_utf8(&mut b).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The number after the last `/` of a key.
pub fn last_num(key: &[u8]) -> Option<i64> {
    let k = std::str::from_utf8(key).ok()?;
    k.rsplit('/').next()?.parse().ok()
}

/// The first key after every key that starts with `prefix`.
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

impl Keys {
    /// Keys under `prefix` (a trailing `/` is added if missing).
    pub fn new(prefix: &str) -> Keys {
        let mut prefix = prefix.to_string();
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        Keys { prefix }
    }
    /// The prefix, ending in `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    fn k(&self, rest: std::fmt::Arguments<'_>) -> String {
        format!("{}{rest}", self.prefix)
    }
    /// Layout version.
    pub fn layout(&self) -> String {
        self.k(format_args!("meta/layout"))
    }
    /// The leader key (election).
    pub fn leader(&self) -> String {
        self.k(format_args!("leader"))
    }
    /// Everything that is not `meta/`: state.
    pub fn meta(&self) -> String {
        self.k(format_args!("meta/"))
    }
    /// The last id handed out for a kind of record.
    pub fn counter(&self, kind: &str) -> String {
        self.k(format_args!("ids/{kind}"))
    }
    /// An incident.
    pub fn incident(&self, id: i64) -> String {
        self.k(format_args!("incidents/{}", num(id)))
    }
    /// All incidents.
    pub fn incidents(&self) -> String {
        self.k(format_args!("incidents/"))
    }
    /// The open incident with a fingerprint.
    pub fn open(&self, fingerprint: &str) -> String {
        self.k(format_args!("open/{}", seg(fingerprint)))
    }
    /// All open incidents.
    pub fn all_open(&self) -> String {
        self.k(format_args!("open/"))
    }
    /// A timeline entry.
    pub fn event(&self, incident: i64, id: i64) -> String {
        self.k(format_args!("timeline/{}/{}", num(incident), num(id)))
    }
    /// An incident's timeline.
    pub fn timeline(&self, incident: i64) -> String {
        self.k(format_args!("timeline/{}/", num(incident)))
    }
    /// A run.
    pub fn run(&self, id: i64) -> String {
        self.k(format_args!("runs/{}", num(id)))
    }
    /// Index: a run of an incident.
    pub fn run_of(&self, incident: i64, run: i64) -> String {
        self.k(format_args!("runs-of/{}/{}", num(incident), num(run)))
    }
    /// Index: an incident's runs.
    pub fn runs_of(&self, incident: i64) -> String {
        self.k(format_args!("runs-of/{}/", num(incident)))
    }
    /// Index: a run still running.
    pub fn running(&self, run: i64) -> String {
        self.k(format_args!("running/{}", num(run)))
    }
    /// Index: runs still running.
    pub fn all_running(&self) -> String {
        self.k(format_args!("running/"))
    }
    /// A journal entry, by its sequence number.
    pub fn action(&self, seq: i64) -> String {
        self.k(format_args!("journal/{}", num(seq)))
    }
    /// The whole journal.
    pub fn journal(&self) -> String {
        self.k(format_args!("journal/"))
    }
    /// Index: idempotency key → sequence number.
    pub fn action_key(&self, key: &str) -> String {
        self.k(format_args!("journal-keys/{}", seg(key)))
    }
    /// Index: a run's actions.
    pub fn actions_of_run(&self, run: i64) -> String {
        self.k(format_args!("journal-of-run/{}/", num(run)))
    }
    /// Index: an incident's actions.
    pub fn actions_of_incident(&self, incident: i64) -> String {
        self.k(format_args!("journal-of-incident/{}/", num(incident)))
    }
    /// Index: actions on a target, by time.
    pub fn actions_on_target(&self, target: &str) -> String {
        self.k(format_args!("journal-on-target/{}/", seg(target)))
    }
    /// Index: actions of a runbook, by time.
    pub fn actions_of_runbook(&self, runbook: &str) -> String {
        self.k(format_args!("journal-of-runbook/{}/", seg(runbook)))
    }
    /// An index entry `<index><at>/<seq>` (by-time indexes).
    pub fn at_seq(index: &str, at: Millis, seq: i64) -> String {
        format!("{index}{}/{}", num(at), num(seq))
    }
    /// Model states of a detector.
    pub fn models(&self, detector: &str) -> String {
        self.k(format_args!("models/{}/", seg(detector)))
    }
    /// Model states of a detector under one configuration.
    pub fn models_of(&self, detector: &str, config: &str) -> String {
        self.k(format_args!("models/{}/{}/", seg(detector), seg(config)))
    }
    /// An escalation.
    pub fn escalation(&self, incident: i64) -> String {
        self.k(format_args!("escalations/{}", num(incident)))
    }
    /// Index: an escalation not yet done.
    pub fn escalating(&self, incident: i64) -> String {
        self.k(format_args!("escalating/{}", num(incident)))
    }
    /// Index: escalations not yet done.
    pub fn all_escalating(&self) -> String {
        self.k(format_args!("escalating/"))
    }
    /// An outbox entry.
    pub fn notification(&self, id: i64) -> String {
        self.k(format_args!("outbox/{}", num(id)))
    }
    /// Index: outbox key → id.
    pub fn notification_key(&self, key: &str) -> String {
        self.k(format_args!("outbox-keys/{}", seg(key)))
    }
    /// Index: an incident's notifications.
    pub fn notifications_of(&self, incident: i64) -> String {
        self.k(format_args!("outbox-of/{}/", num(incident)))
    }
    /// Index: pending notifications by due time.
    pub fn pending(&self) -> String {
        self.k(format_args!("outbox-pending/"))
    }
    /// A silence.
    pub fn silence(&self, id: i64) -> String {
        self.k(format_args!("silences/{}", num(id)))
    }
    /// All silences.
    pub fn silences(&self) -> String {
        self.k(format_args!("silences/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_never_contain_a_slash_and_numbers_sort() {
        assert_eq!(
            seg("run-1/steps[0]/attempt-1"),
            "run-1%2Fsteps[0]%2Fattempt-1"
        );
        assert_eq!(seg("50%"), "50%25");
        assert!(num(9) < num(10));
        assert_eq!(num(i64::MAX).len(), 20);
        assert_eq!(
            last_num(b"/m/journal-of-run/00000000000000000001/00000000000000000042"),
            Some(42)
        );
        assert_eq!(prefix_end("/m/a/"), b"/m/a0".to_vec());
        assert_eq!(
            Keys::new("/m").incident(3),
            "/m/incidents/00000000000000000003"
        );
    }
}
