//! Optimistic transactions: read what you need, decide, then commit every
//! write in one etcd `Txn` guarded by what was read.
//!
//! Reads go to one snapshot (the revision of the first read) and are
//! remembered with their `mod_revision` (0: the key was absent). The commit
//! compares each of them — `mod_revision == seen` for a key that existed,
//! `create_revision == 0` for one that did not — and applies the writes only
//! if all still hold; otherwise the whole closure runs again on a fresh
//! snapshot. That is how every multi-record change the SQLite store makes in
//! one SQL transaction stays one atomic change here: a counter bumped by two
//! writers, an idempotency key created twice, a plan saved after an ack.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use etcd_client::{Compare, CompareOp, GetOptions, Txn, TxnOp, TxnOpResponse};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::bridge::Bridge;
use crate::stores::{StoreError, StoreResult};

/// etcd's default `--max-txn-ops`: compares and operations per transaction.
pub const MAX_TXN_OPS: usize = 128;

/// Writes, whether into a transaction or a bulk load.
pub trait Writes {
    /// Set a key.
    fn put(&mut self, key: String, value: Vec<u8>);
    /// Remove a key (absent is fine).
    fn delete(&mut self, key: String);
    /// Set a key to a record's JSON.
    fn put_json<T: Serialize>(&mut self, key: String, value: &T) {
        self.put(key, serde_json::to_vec(value).unwrap_or_default());
    }
}

/// One optimistic transaction.
pub struct Stm<'a> {
    bridge: &'a Bridge,
    rev: i64,
    reads: BTreeMap<String, i64>,
    writes: BTreeMap<String, Option<Vec<u8>>>,
    /// Keys that must still have this `create_revision` (the leader key).
    required: Vec<(String, i64)>,
    stale: bool,
}

impl Writes for Stm<'_> {
    fn put(&mut self, key: String, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }
    fn delete(&mut self, key: String) {
        self.writes.insert(key, None);
    }
}

/// Parse a stored record.
pub fn parse<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Backend(format!("etcd {key}: {e}")))
}

impl<'a> Stm<'a> {
    fn new(bridge: &'a Bridge) -> Self {
        Stm {
            bridge,
            rev: 0,
            reads: BTreeMap::new(),
            writes: BTreeMap::new(),
            required: Vec::new(),
            stale: false,
        }
    }

    /// A key's value as of this transaction (its own writes included).
    pub fn get(&mut self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        if let Some(w) = self.writes.get(key) {
            return Ok(w.clone());
        }
        let opts = (self.rev > 0).then(|| GetOptions::new().with_revision(self.rev));
        let k = key.to_string();
        let r = self.bridge.kv(move |mut kv| {
            let k = k.clone();
            let opts = opts.clone();
            async move { kv.get(k, opts).await }
        });
        let resp = match r {
            Ok(resp) => resp,
            Err(e) => {
                // The snapshot was compacted away under us: start over.
                self.stale = e.to_string().contains("compacted");
                return Err(e);
            }
        };
        if self.rev == 0 {
            self.rev = resp.header().map(|h| h.revision()).unwrap_or(0);
        }
        let kv = resp.kvs().first();
        self.reads
            .entry(key.to_string())
            .or_insert(kv.map(|kv| kv.mod_revision()).unwrap_or(0));
        Ok(kv.map(|kv| kv.value().to_vec()))
    }

    /// A record as of this transaction.
    pub fn get_json<T: DeserializeOwned>(&mut self, key: &str) -> StoreResult<Option<T>> {
        self.get(key)?.map(|b| parse(key, &b)).transpose()
    }

    /// The next id from a counter key (the last id handed out, in decimal).
    pub fn next_id(&mut self, counter: &str) -> StoreResult<i64> {
        let last = match self.get(counter)? {
            Some(b) => String::from_utf8_lossy(&b)
                .parse::<i64>()
                .map_err(|e| StoreError::Backend(format!("etcd {counter}: {e}")))?,
            None => 0,
        };
        let id = last + 1;
        self.put(counter.to_string(), id.to_string().into_bytes());
        Ok(id)
    }

    /// Commit only if `key` still has this `create_revision`; if it does
    /// not, the change fails with [`StoreError::Fenced`] (not retried).
    pub fn require_created(&mut self, key: &str, revision: i64) {
        self.required.push((key.to_string(), revision));
    }

    /// Apply the writes if nothing read has changed. `Ok(false)`: conflict.
    fn commit(self) -> StoreResult<bool> {
        if self.writes.is_empty() {
            return Ok(true);
        }
        if self.reads.len() + self.required.len() > MAX_TXN_OPS || self.writes.len() > MAX_TXN_OPS {
            return Err(StoreError::Backend(format!(
                "etcd: one change of {} reads and {} writes exceeds etcd's {MAX_TXN_OPS} operations per transaction",
                self.reads.len(),
                self.writes.len()
            )));
        }
        let required = self.required;
        let compares: Vec<Compare> = self
            .reads
            .into_iter()
            .map(|(k, rev)| match rev {
                0 => Compare::create_revision(k, CompareOp::Equal, 0),
                rev => Compare::mod_revision(k, CompareOp::Equal, rev),
            })
            .chain(
                required
                    .iter()
                    .map(|(k, rev)| Compare::create_revision(k.clone(), CompareOp::Equal, *rev)),
            )
            .collect();
        // On failure, read the required keys to tell a lost claim from an
        // ordinary conflict.
        let check: Vec<TxnOp> = required
            .iter()
            .map(|(k, _)| TxnOp::get(k.clone(), None))
            .collect();
        let ops: Vec<TxnOp> = self
            .writes
            .into_iter()
            .map(|(k, v)| match v {
                Some(v) => TxnOp::put(k, v, None),
                None => TxnOp::delete(k, None),
            })
            .collect();
        let txn = Txn::new().when(compares).and_then(ops).or_else(check);
        let r = self.bridge.kv(move |mut kv| {
            let txn = txn.clone();
            async move { kv.txn(txn).await }
        })?;
        if r.succeeded() {
            return Ok(true);
        }
        for ((key, rev), resp) in required.iter().zip(r.op_responses()) {
            let now = match resp {
                TxnOpResponse::Get(g) => g.kvs().first().map(|kv| kv.create_revision()),
                _ => None,
            };
            if now != Some(*rev) {
                return Err(StoreError::Fenced(format!(
                    "{key} is no longer held at revision {rev}: not written"
                )));
            }
        }
        Ok(false)
    }
}

/// Run `f` in an optimistic transaction until it commits. An error from `f`
/// is the answer as of its snapshot; nothing is written.
pub fn atomically<T>(
    bridge: &Bridge,
    mut f: impl FnMut(&mut Stm<'_>) -> StoreResult<T>,
) -> StoreResult<T> {
    // Degraded mode: no write can commit without quorum; fail at once
    // rather than after the request timeout.
    if !bridge.health().up() {
        return Err(StoreError::Backend(format!(
            "etcd {} unreachable or without quorum (degraded mode): not written",
            bridge.endpoints()
        )));
    }
    let started = Instant::now();
    let mut attempt: u32 = 0;
    loop {
        let mut tx = Stm::new(bridge);
        let r = f(&mut tx);
        if !tx.stale {
            let v = r?;
            if tx.commit()? {
                return Ok(v);
            }
        }
        attempt += 1;
        // Writers in one medic contend for a few counters; a handful of
        // retries settles it. A long streak means something is wrong.
        if attempt >= 100 || started.elapsed() > bridge.timeout() * 4 {
            return Err(StoreError::Backend(format!(
                "etcd {}: gave up after {attempt} conflicting attempts",
                bridge.endpoints()
            )));
        }
        let jitter = rand::random::<u64>() % (u64::from(attempt.min(20)) + 1);
        std::thread::sleep(Duration::from_millis(jitter));
    }
}
