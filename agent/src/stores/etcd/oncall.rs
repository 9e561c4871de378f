//! [`OncallStore`] on etcd: escalations, the notification outbox and
//! silences (keys in the module doc of [`super`]).

use super::keys::{Keys, last_num, num};
use super::stm::{Stm, Writes, atomically};
use super::{Entry, EtcdStore, write_event, write_incident};
use crate::incidents::{Incident, IncidentState};
use crate::series::Millis;
use crate::stores::oncall::{
    Delivery, DeliveryState, Escalation, NewNotification, Note, OncallStore, OutboxEntry, Seen,
    Silence,
};
use crate::stores::{StoreError, StoreResult};

/// Write an escalation and keep the "not done" index.
pub(super) fn write_escalation(w: &mut impl Writes, k: &Keys, e: &Escalation) {
    w.put_json(k.escalation(e.incident_id), e);
    if e.done {
        w.delete(k.escalating(e.incident_id));
    } else {
        w.put(k.escalating(e.incident_id), Vec::new());
    }
}

fn pending_key(k: &Keys, n: &OutboxEntry) -> String {
    format!("{}{}/{}", k.pending(), num(n.next_attempt_at), num(n.id))
}

/// Write an outbox entry; `old` is what it replaces (`None`: new, so its
/// key and incident indexes are written too).
pub(super) fn write_notification(
    w: &mut impl Writes,
    k: &Keys,
    old: Option<&OutboxEntry>,
    n: &OutboxEntry,
) {
    w.put_json(k.notification(n.id), n);
    match old {
        None => {
            w.put(k.notification_key(&n.key), n.id.to_string().into_bytes());
            w.put(
                format!("{}{}", k.notifications_of(n.incident_id), num(n.id)),
                Vec::new(),
            );
        }
        Some(o) if o.state == DeliveryState::Pending => w.delete(pending_key(k, o)),
        Some(_) => {}
    }
    if n.state == DeliveryState::Pending {
        w.put(pending_key(k, n), Vec::new());
    }
}

fn note(tx: &mut Stm<'_>, k: &Keys, incident_id: i64, at: Millis, n: &Note) -> StoreResult<()> {
    let e = Entry {
        kind: n.kind,
        actor: &n.actor,
        message: &n.message,
        data: &n.data,
    };
    write_event(tx, k, incident_id, at, e)
}

impl OncallStore for EtcdStore {
    fn unrouted_incidents(&self) -> StoreResult<Vec<Incident>> {
        if self.follower() {
            return Ok(Vec::new());
        }
        let open = self.open_incidents()?;
        let keys: Vec<String> = open.iter().map(|i| self.keys.escalation(i.id)).collect();
        let rows = self.get_many(&keys)?;
        Ok(open
            .into_iter()
            .zip(rows)
            .filter(|(_, e)| e.is_none())
            .map(|(i, _)| i)
            .collect())
    }

    fn active_escalations(&self) -> StoreResult<Vec<(Escalation, Incident)>> {
        if self.follower() {
            return Ok(Vec::new());
        }
        let ids = self.index(&self.keys.all_escalating())?;
        let esc: Vec<String> = ids.iter().map(|id| self.keys.escalation(*id)).collect();
        let inc: Vec<String> = ids.iter().map(|id| self.keys.incident(*id)).collect();
        let escalations: Vec<Escalation> = self.records(&esc)?;
        let incidents: Vec<Incident> = self.records(&inc)?;
        Ok(escalations
            .into_iter()
            .filter(|e| !e.done)
            .filter_map(|e| {
                let i = incidents.iter().find(|i| i.id == e.incident_id)?.clone();
                Some((e, i))
            })
            .collect())
    }

    fn save_escalation(
        &self,
        e: &Escalation,
        seen: Seen,
        notifications: &[NewNotification],
        notes: &[Note],
        expire_ack: Option<Millis>,
        at: Millis,
    ) -> StoreResult<bool> {
        let k = &self.keys;
        atomically(&self.bridge, |tx| {
            // Only the leader escalates: elsewhere the plan is refused.
            if let Err(StoreError::Fenced(_)) = self.fence(tx) {
                return Ok(false);
            }
            // Reading the incident puts it in the commit's compares: an ack
            // landing between this read and the commit makes the commit
            // fail, and the retry sees it and refuses.
            let Some(mut i) = tx.get_json::<Incident>(&k.incident(e.incident_id))? else {
                return Ok(false);
            };
            if Seen::of(&i) != seen {
                return Ok(false);
            }
            write_escalation(tx, k, e);
            for n in notifications {
                if tx.get(&k.notification_key(&n.key))?.is_some() {
                    continue;
                }
                let entry = OutboxEntry {
                    id: tx.next_id(&k.counter("notification"))?,
                    key: n.key.clone(),
                    incident_id: e.incident_id,
                    notifier: n.notifier.clone(),
                    event: n.event.clone(),
                    level: n.level,
                    state: DeliveryState::Pending,
                    attempts: 0,
                    next_attempt_at: at,
                    created_at: at,
                    finished_at: None,
                    detail: None,
                };
                write_notification(tx, k, None, &entry);
            }
            for n in notes {
                note(tx, k, e.incident_id, at, n)?;
            }
            if let Some(acked_at) = expire_ack
                && i.acked_at == Some(acked_at)
            {
                i.acked_by = None;
                i.acked_at = None;
                i.updated_at = at;
                if i.state == IncidentState::Acknowledged {
                    i.state = IncidentState::Firing;
                }
                let was_open = i.is_open();
                write_incident(tx, k, was_open, &i);
            }
            Ok(true)
        })
    }

    fn due_notifications(&self, now: Millis, limit: usize) -> StoreResult<Vec<OutboxEntry>> {
        if limit == 0 || self.follower() {
            return Ok(Vec::new());
        }
        // Index keys are `<due>/<id>`: everything due by `now` sorts before
        // `<now>0` ('0' follows '/').
        let start = self.keys.pending();
        let end = format!("{start}{}0", num(now));
        let ids: Vec<String> = self
            .range(
                start.into_bytes(),
                end.into_bytes(),
                limit,
                false,
                super::PAGE,
            )?
            .iter()
            .filter_map(|(k, _)| last_num(k))
            .map(|id| self.keys.notification(id))
            .collect();
        let mut due: Vec<OutboxEntry> = self.records(&ids)?;
        due.retain(|n| n.state == DeliveryState::Pending && n.next_attempt_at <= now);
        Ok(due)
    }

    fn finish_notification(
        &self,
        id: i64,
        outcome: &Delivery,
        at: Millis,
        n: &Note,
    ) -> StoreResult<()> {
        let k = &self.keys;
        atomically(&self.bridge, |tx| {
            let Some(old) = tx.get_json::<OutboxEntry>(&k.notification(id))? else {
                return Err(StoreError::NotFound(format!("notification {id}")));
            };
            let mut new = old.clone();
            let (state, next, finished, detail) = match outcome {
                Delivery::Sent(d) => (DeliveryState::Sent, at, Some(at), d),
                Delivery::Retry { at: next, error } => (DeliveryState::Pending, *next, None, error),
                Delivery::GaveUp(e) => (DeliveryState::Failed, at, Some(at), e),
            };
            new.state = state;
            new.attempts += 1;
            new.next_attempt_at = next;
            new.finished_at = finished;
            new.detail = Some(detail.clone());
            write_notification(tx, k, Some(&old), &new);
            note(tx, k, old.incident_id, at, n)
        })
    }

    fn notifications_for(&self, incident_id: i64) -> StoreResult<Vec<OutboxEntry>> {
        let keys: Vec<String> = self
            .index(&self.keys.notifications_of(incident_id))?
            .into_iter()
            .map(|id| self.keys.notification(id))
            .collect();
        self.records(&keys)
    }

    fn add_silence(
        &self,
        matchers: &str,
        starts_at: Millis,
        ends_at: Millis,
        created_by: &str,
        comment: &str,
        at: Millis,
    ) -> StoreResult<Silence> {
        let k = &self.keys;
        atomically(&self.bridge, |tx| {
            let s = Silence {
                id: tx.next_id(&k.counter("silence"))?,
                matchers: matchers.to_string(),
                starts_at,
                ends_at,
                created_by: created_by.to_string(),
                comment: comment.to_string(),
                created_at: at,
            };
            tx.put_json(k.silence(s.id), &s);
            Ok(s)
        })
    }

    fn silences(&self, include_expired: bool, now: Millis) -> StoreResult<Vec<Silence>> {
        let mut all: Vec<Silence> = self
            .scan(&self.keys.silences())?
            .iter()
            .map(|(k, v)| super::stm::parse(&String::from_utf8_lossy(k), v))
            .collect::<StoreResult<_>>()?;
        all.retain(|s| include_expired || s.ends_at > now);
        all.reverse();
        Ok(all)
    }

    fn expire_silence(&self, id: i64, at: Millis) -> StoreResult<Silence> {
        let k = &self.keys;
        atomically(&self.bridge, |tx| {
            let Some(mut s) = tx.get_json::<Silence>(&k.silence(id))? else {
                return Err(StoreError::NotFound(format!("silence {id}")));
            };
            s.ends_at = s.ends_at.min(at);
            tx.put_json(k.silence(id), &s);
            Ok(s)
        })
    }
}
