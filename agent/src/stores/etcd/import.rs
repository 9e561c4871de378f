//! Loading a whole [`Snapshot`] (`medic store migrate`): the same records and
//! indexes the store's own methods write, with the counters set past the
//! highest ids, in chunks of at most [`MAX_TXN_OPS`] operations.

use etcd_client::TxnOp;

use super::oncall::{write_escalation, write_notification};
use super::stm::{MAX_TXN_OPS, Writes};
use super::{CHUNK_BYTES, EtcdStore, write_incident, write_model, write_new_action, write_run};
use crate::stores::migrate::Snapshot;
use crate::stores::{StoreError, StoreResult};

/// Writes sent in chunks as they fill.
struct Loader<'a> {
    store: &'a EtcdStore,
    ops: Vec<TxnOp>,
    bytes: usize,
    error: Option<StoreError>,
}

impl Writes for Loader<'_> {
    fn put(&mut self, key: String, value: Vec<u8>) {
        self.bytes += key.len() + value.len();
        self.ops.push(TxnOp::put(key, value, None));
        self.flush_if_full();
    }
    fn delete(&mut self, key: String) {
        self.ops.push(TxnOp::delete(key, None));
        self.flush_if_full();
    }
}

impl Loader<'_> {
    fn flush_if_full(&mut self) {
        if self.ops.len() >= MAX_TXN_OPS || self.bytes >= CHUNK_BYTES {
            self.flush();
        }
    }
    fn flush(&mut self) {
        let ops = std::mem::take(&mut self.ops);
        self.bytes = 0;
        if self.error.is_none()
            && let Err(e) = self.store.commit_ops(ops)
        {
            self.error = Some(e);
        }
    }
}

impl EtcdStore {
    /// Write every record of `s` under the prefix, which should be empty.
    pub fn import(&self, s: &Snapshot) -> StoreResult<()> {
        let k = self.keys.clone();
        let mut w = Loader {
            store: self,
            ops: Vec::new(),
            bytes: 0,
            error: None,
        };
        for i in &s.incidents {
            write_incident(&mut w, &k, false, i);
        }
        for e in &s.timeline {
            w.put_json(k.event(e.incident_id, e.id), e);
        }
        for r in &s.runs {
            write_run(&mut w, &k, r);
        }
        for (seq, a) in &s.actions {
            write_new_action(&mut w, &k, *seq, a);
        }
        for e in &s.escalations {
            write_escalation(&mut w, &k, e);
        }
        for n in &s.notifications {
            write_notification(&mut w, &k, None, n);
        }
        for x in &s.silences {
            w.put_json(k.silence(x.id), x);
        }
        for m in &s.models {
            write_model(
                &mut w,
                &k,
                &m.detector,
                &m.config,
                &m.labels,
                &m.state,
                m.saved_at,
            );
        }
        let counters = [
            ("incident", s.incidents.iter().map(|x| x.id).max()),
            ("event", s.timeline.iter().map(|x| x.id).max()),
            ("run", s.runs.iter().map(|x| x.id).max()),
            ("action", s.actions.iter().map(|x| x.0).max()),
            ("notification", s.notifications.iter().map(|x| x.id).max()),
            ("silence", s.silences.iter().map(|x| x.id).max()),
        ];
        for (kind, last) in counters {
            if let Some(last) = last {
                w.put(k.counter(kind), last.to_string().into_bytes());
            }
        }
        w.flush();
        match w.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
