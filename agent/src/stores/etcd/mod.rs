//! The etcd store (`store: {kind: etcd}`): medic's state in an etcd v3
//! cluster, so that several medic nodes see the same incidents, journal and
//! on-call state.
//!
//! # Key layout
//!
//! Every key starts with the configured prefix `P` (default `/medic/`).
//! Values are the JSON of the Rust records (`Incident`, `Run`, `Action`, …);
//! ids and times in keys are 20 zero-padded digits so key order is number
//! order; free-form names (fingerprints, idempotency keys, targets, runbook
//! names) are one segment with `%`, `/` and control characters
//! percent-encoded.
//!
//! | key | value | why |
//! |---|---|---|
//! | `P meta/layout` | `1` | layout version, checked at start |
//! | `P ids/<kind>` | last id handed out | `incident`, `event`, `run`, `action`, `notification`, `silence`; bumped with a compare on its `mod_revision` |
//! | `P incidents/<id>` | `Incident` | |
//! | `P open/<fingerprint>` | incident id | at most one open incident per fingerprint: created only if absent (`create_revision == 0`), deleted on resolve |
//! | `P timeline/<incident>/<event id>` | `TimelineEvent` | |
//! | `P runs/<id>` | `Run` | |
//! | `P runs-of/<incident>/<run>`, `P running/<run>` | empty | an incident's runs; runs to resume after a crash |
//! | `P journal/<seq>` | `Action` | the action journal in order |
//! | `P journal-keys/<idempotency key>` | seq | created only if absent: an action with a key already journalled is never started again |
//! | `P journal-of-run/<run>/<seq>`, `P journal-of-incident/<incident>/<seq>` | empty | |
//! | `P journal-on-target/<target>/<intended_at>/<seq>`, `P journal-of-runbook/<runbook>/<intended_at>/<seq>` | empty | what the guard rails count, read from `since` on |
//! | `P models/<detector>/<config>/<labels JSON>` | `{labels, state, saved_at}` | learnt anomaly models |
//! | `P escalations/<incident>`, `P escalating/<incident>` | `Escalation`, empty | timers; those not done |
//! | `P outbox/<id>` | `OutboxEntry` | the notification outbox |
//! | `P outbox-keys/<key>` | id | created only if absent: a level is queued once |
//! | `P outbox-of/<incident>/<id>`, `P outbox-pending/<next_attempt_at>/<id>` | empty | an incident's notifications; what is due |
//! | `P silences/<id>` | `Silence` | |
//! | `P leader` | node name, on the leader's lease | with `election:`; its `create_revision` is the fencing token ([`election`]) |
//!
//! # Transactions
//!
//! Every method that changes more than one key — or decides from what it
//! read — runs in [`stm::atomically`]: reads from one snapshot, writes in one
//! `Txn` that compares every key read (`mod_revision`, or `create_revision
//! == 0` for a key seen absent), retried on conflict. That covers what the
//! SQLite store does in one SQL transaction: ids from counters, journal and
//! outbox keys created once, one open incident per fingerprint, and the
//! scheduler's "save this plan unless the incident changed meanwhile". There
//! are no foreign keys: medic never writes a child before its parent.
//! Learnt model states are the exception: they are written in chunks of at
//! most [`stm::MAX_TXN_OPS`] keys, each chunk atomic (a crash midway leaves
//! some series with older states, which is harmless).
//!
//! # Failure
//!
//! Each request has a deadline (`timeout`, default 2s); an unreachable etcd
//! or one without quorum makes the call fail with [`StoreError::Backend`]
//! after at most that long. See [`bridge`] for how the synchronous trait
//! meets the async client.

pub mod bridge;
pub mod election;
pub mod health;
mod import;
pub mod keys;
mod oncall;
pub mod stm;

use std::path::{Path, PathBuf};
use std::time::Duration;

use etcd_client::{
    Certificate, ConnectOptions, DeleteOptions, GetOptions, Identity, SortOrder, SortTarget,
    TlsOptions, Txn, TxnOp, TxnOpResponse,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use self::bridge::{Bridge, Connection};
use self::election::{ElectionConfig, Leadership};
use self::keys::{Keys, last_num, prefix_end};
use self::stm::{MAX_TXN_OPS, Stm, Writes, atomically, parse};
use super::{
    Action, ActionFilter, ActionState, Detection, IncidentFilter, Run, RunState, Store, StoreError,
    StoreResult,
};
use crate::config::duration::Duration as ConfigDuration;
use crate::incidents::{Incident, IncidentState, TimelineEvent};
use crate::series::{Labels, Millis};

/// The layout this code reads and writes.
const LAYOUT: &str = "1";

/// `store: {kind: etcd, ...}` in `medic.yaml`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EtcdConfig {
    /// Client URLs of the etcd members (`http://10.0.0.1:2379`, or
    /// `host:port`; `https://` with `tls`).
    pub endpoints: Vec<String>,
    /// Every key medic writes starts with this (default `/medic/`); medic
    /// groups sharing one etcd use different prefixes.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// TLS to etcd: the CA that signed its certificate, and a client
    /// certificate and key for mutual TLS. Paths are relative to medic.yaml.
    #[serde(default)]
    pub tls: Option<EtcdTls>,
    /// Deadline of each request (default 2s): with etcd unreachable, a store
    /// call fails after this long instead of hanging.
    #[serde(default = "default_timeout")]
    pub timeout: ConfigDuration,
    /// Leader election among the medic nodes on this prefix: only the
    /// leader starts runbooks, acts and escalates (see the timing rule).
    #[serde(default)]
    pub election: Option<ElectionConfig>,
}

/// TLS files for the etcd connection.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EtcdTls {
    /// PEM certificate(s) of the CA that signed etcd's certificate.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// PEM client certificate (with `key`).
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// PEM client key (with `cert`).
    #[serde(default)]
    pub key: Option<PathBuf>,
}

fn default_prefix() -> String {
    "/medic/".into()
}
fn default_timeout() -> ConfigDuration {
    ConfigDuration::from_secs(2)
}

impl EtcdConfig {
    /// Endpoints with defaults, for tests and the migrate command.
    pub fn new(endpoints: Vec<String>, prefix: &str) -> Self {
        EtcdConfig {
            endpoints,
            prefix: prefix.into(),
            tls: None,
            timeout: default_timeout(),
            election: None,
        }
    }

    /// Mistakes `medic check` reports.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.endpoints.is_empty() {
            out.push("store: etcd needs at least one endpoint".to_string());
        }
        if self.timeout.std().is_zero() {
            out.push("store: timeout must be more than 0".to_string());
        }
        if !self.prefix.starts_with('/') {
            out.push(format!("store: prefix {:?} must start with /", self.prefix));
        }
        if let Some(t) = &self.tls {
            if t.cert.is_some() != t.key.is_some() {
                out.push("store: tls needs both cert and key, or neither".to_string());
            }
            if let Some(e) = self.endpoints.iter().find(|e| e.starts_with("http://")) {
                out.push(format!(
                    "store: endpoint {e} is plain http but tls is set: use https://"
                ));
            }
        }
        if let Some(e) = &self.election {
            out.extend(e.problems());
        }
        out
    }

    fn connection(&self, base_dir: &Path) -> StoreResult<Connection> {
        let timeout = self.timeout.std();
        let mut options = ConnectOptions::new()
            .with_timeout(timeout)
            .with_connect_timeout(timeout)
            .with_keep_alive(Duration::from_secs(10), timeout);
        if let Some(t) = &self.tls {
            let read = |p: &PathBuf| {
                let p = base_dir.join(p);
                std::fs::read(&p)
                    .map_err(|e| StoreError::Backend(format!("etcd tls {}: {e}", p.display())))
            };
            let mut tls = TlsOptions::new();
            if let Some(ca) = &t.ca {
                tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
            }
            if let (Some(cert), Some(key)) = (&t.cert, &t.key) {
                tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
            }
            options = options.with_tls(tls);
        }
        Ok(Connection {
            endpoints: self.endpoints.clone(),
            options,
            timeout,
        })
    }
}

/// etcd-backed [`Store`].
pub struct EtcdStore {
    bridge: Bridge,
    keys: Keys,
    leadership: Option<Leadership>,
}

/// How many keys one range request returns at most.
const PAGE: usize = 256;
/// Pages of learnt model states (each can be large).
const MODEL_PAGE: usize = 16;
/// Bytes of values per chunked write (etcd's request limit is 1.5 MiB).
const CHUNK_BYTES: usize = 1 << 20;

/// A learnt model state as stored.
#[derive(Serialize, Deserialize)]
struct ModelState {
    labels: Labels,
    state: String,
    saved_at: Millis,
}

fn actor_detector(detector: &str) -> String {
    format!("detector:{detector}")
}

impl EtcdStore {
    /// Connect and check (or write) the layout version. `base_dir` resolves
    /// relative TLS paths.
    pub fn open(c: &EtcdConfig, base_dir: &Path) -> StoreResult<Self> {
        let bridge = Bridge::connect(c.connection(base_dir)?)?;
        let mut s = EtcdStore {
            bridge,
            keys: Keys::new(&c.prefix),
            leadership: None,
        };
        s.check_layout()?;
        let probe =
            s.bridge
                .health()
                .clone()
                .probe(s.bridge.client(), s.keys.leader(), s.bridge.timeout());
        s.bridge.spawn(probe);
        if let Some(e) = &c.election {
            s.leadership = Some(Leadership::start(&s.bridge, s.keys.leader(), e));
        }
        Ok(s)
    }

    fn check_layout(&self) -> StoreResult<()> {
        let key = self.keys.layout();
        atomically(&self.bridge, |tx| match tx.get(&key)? {
            None => {
                tx.put(key.clone(), LAYOUT.as_bytes().to_vec());
                Ok(())
            }
            Some(v) if v == LAYOUT.as_bytes() => Ok(()),
            Some(v) => Err(StoreError::Backend(format!(
                "etcd {key} is {:?}: written by another medic version (this one reads layout {LAYOUT})",
                String::from_utf8_lossy(&v)
            ))),
        })
    }

    /// The key names.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The connection.
    pub fn bridge(&self) -> &Bridge {
        &self.bridge
    }

    /// The election, when configured.
    pub fn leadership(&self) -> Option<&Leadership> {
        self.leadership.as_ref()
    }

    /// With an election: the fencing token this change is made under, with
    /// the compare that makes the commit fail if the leader key moved on.
    /// A node that does not lead gets [`StoreError::Fenced`].
    fn fence(&self, tx: &mut Stm<'_>) -> StoreResult<Option<i64>> {
        let Some(l) = &self.leadership else {
            return Ok(None);
        };
        let token = l.fence()?;
        tx.require_created(l.key(), token);
        Ok(Some(token))
    }

    /// With an election, a node that does not lead has no work: its runs to
    /// resume, escalations to plan and notifications to send are the
    /// leader's.
    fn follower(&self) -> bool {
        self.leadership.as_ref().is_some_and(|l| l.term().is_none())
    }

    /// Keys in `[start, end)`, ascending or descending, at most `limit`
    /// (0: all), fetched `page` at a time.
    fn range(
        &self,
        start: Vec<u8>,
        end: Vec<u8>,
        limit: usize,
        descend: bool,
        page: usize,
    ) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let (mut lo, mut hi) = (start, end);
        loop {
            let want = match limit {
                0 => page,
                l => page.min(l - out.len()),
            };
            let mut opts = self.read_options(
                GetOptions::new()
                    .with_range(hi.clone())
                    .with_limit(want as i64),
            );
            if descend {
                opts = opts.with_sort(SortTarget::Key, SortOrder::Descend);
            }
            let from = lo.clone();
            let resp = self.bridge.kv(move |mut kv| {
                let (from, opts) = (from.clone(), opts.clone());
                async move { kv.get(from, Some(opts)).await }
            })?;
            for kv in resp.kvs() {
                out.push((kv.key().to_vec(), kv.value().to_vec()));
            }
            let done = !resp.more() || resp.kvs().is_empty() || (limit > 0 && out.len() >= limit);
            if done {
                return Ok(out);
            }
            let last = out.last().map(|(k, _)| k.clone()).unwrap_or_default();
            if descend {
                hi = last;
            } else {
                lo = last;
                lo.push(0);
            }
        }
    }

    /// Every key and value under a prefix, in key order.
    fn scan(&self, prefix: &str) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
        self.range(
            prefix.as_bytes().to_vec(),
            prefix_end(prefix),
            0,
            false,
            PAGE,
        )
    }

    /// The numbers ending the keys under an index prefix, in key order.
    fn index(&self, prefix: &str) -> StoreResult<Vec<i64>> {
        Ok(self
            .scan(prefix)?
            .iter()
            .filter_map(|(k, _)| last_num(k))
            .collect())
    }

    /// Several keys in one round trip per [`MAX_TXN_OPS`] keys.
    fn get_many(&self, keys: &[String]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        let mut out = Vec::with_capacity(keys.len());
        // A transaction needs quorum; degraded, read key by key instead.
        if !self.bridge.health().up() {
            for k in keys {
                let (k, opts) = (k.clone(), self.read_options(GetOptions::new()));
                let resp = self.bridge.kv(move |mut kv| {
                    let (k, opts) = (k.clone(), opts.clone());
                    async move { kv.get(k, Some(opts)).await }
                })?;
                out.push(resp.kvs().first().map(|kv| kv.value().to_vec()));
            }
            return Ok(out);
        }
        for chunk in keys.chunks(MAX_TXN_OPS) {
            let ops: Vec<TxnOp> = chunk.iter().map(|k| TxnOp::get(k.clone(), None)).collect();
            let txn = Txn::new().and_then(ops);
            let resp = self.bridge.kv(move |mut kv| {
                let txn = txn.clone();
                async move { kv.txn(txn).await }
            })?;
            for r in resp.op_responses() {
                out.push(match r {
                    TxnOpResponse::Get(g) => g.kvs().first().map(|kv| kv.value().to_vec()),
                    _ => None,
                });
            }
        }
        Ok(out)
    }

    /// Records by key, skipping absent ones.
    fn records<T: serde::de::DeserializeOwned>(&self, keys: &[String]) -> StoreResult<Vec<T>> {
        let mut out = Vec::new();
        for (k, v) in keys.iter().zip(self.get_many(keys)?) {
            if let Some(v) = v {
                out.push(parse(k, &v)?);
            }
        }
        Ok(out)
    }

    /// Reads are linearizable; in degraded mode (`health.rs`) serializable,
    /// answered by any member that is still up.
    fn read_options(&self, opts: GetOptions) -> GetOptions {
        if self.bridge.health().up() {
            opts
        } else {
            opts.with_serializable()
        }
    }

    fn get_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> StoreResult<Option<T>> {
        let k = key.to_string();
        let opts = self.read_options(GetOptions::new());
        let resp = self.bridge.kv(move |mut kv| {
            let (k, opts) = (k.clone(), opts.clone());
            async move { kv.get(k, Some(opts)).await }
        })?;
        resp.kvs()
            .first()
            .map(|kv| parse(key, kv.value()))
            .transpose()
    }

    /// How many keys under a prefix.
    fn count(&self, prefix: &str) -> StoreResult<i64> {
        let opts = self.read_options(GetOptions::new().with_prefix().with_count_only());
        let p = prefix.to_string();
        Ok(self
            .bridge
            .kv(move |mut kv| {
                let (p, opts) = (p.clone(), opts.clone());
                async move { kv.get(p, Some(opts)).await }
            })?
            .count())
    }

    /// The last id a counter handed out (0: none).
    fn last_id(&self, kind: &str) -> StoreResult<i64> {
        let k = self.keys.counter(kind);
        let opts = self.read_options(GetOptions::new());
        let resp = self.bridge.kv(move |mut kv| {
            let (k, opts) = (k.clone(), opts.clone());
            async move { kv.get(k, Some(opts)).await }
        })?;
        Ok(resp
            .kvs()
            .first()
            .and_then(|kv| String::from_utf8_lossy(kv.value()).parse().ok())
            .unwrap_or(0))
    }

    /// Open incidents, by id.
    fn open_incidents(&self) -> StoreResult<Vec<Incident>> {
        let ids: Vec<String> = self
            .scan(&self.keys.all_open())?
            .iter()
            .filter_map(|(_, v)| String::from_utf8_lossy(v).parse::<i64>().ok())
            .map(|id| self.keys.incident(id))
            .collect();
        let mut open: Vec<Incident> = self.records(&ids)?;
        open.retain(Incident::is_open);
        open.sort_by_key(|i| i.id);
        Ok(open)
    }

    /// Journal entries by sequence number, in order.
    fn actions(&self, mut seqs: Vec<i64>) -> StoreResult<Vec<Action>> {
        seqs.sort_unstable();
        seqs.dedup();
        let keys: Vec<String> = seqs.iter().map(|s| self.keys.action(*s)).collect();
        self.records(&keys)
    }

    fn action_seq(tx: &mut Stm<'_>, k: &Keys, key: &str) -> StoreResult<Option<i64>> {
        Ok(tx
            .get(&k.action_key(key))?
            .and_then(|v| String::from_utf8_lossy(&v).parse().ok()))
    }

    /// Change a journal entry found by its idempotency key (absent: nothing).
    fn update_action(&self, key: &str, f: impl Fn(&mut Action)) -> StoreResult<()> {
        let k = &self.keys;
        atomically(&self.bridge, |tx| {
            let Some(seq) = Self::action_seq(tx, k, key)? else {
                return Ok(());
            };
            let Some(mut a) = tx.get_json::<Action>(&k.action(seq))? else {
                return Ok(());
            };
            f(&mut a);
            tx.put_json(k.action(seq), &a);
            Ok(())
        })
    }
}

/// Write an incident and keep the open index: set while open, removed when
/// it stops being open (`was_open`).
fn write_incident(w: &mut impl Writes, k: &Keys, was_open: bool, i: &Incident) {
    w.put_json(k.incident(i.id), i);
    if i.is_open() {
        w.put(k.open(&i.fingerprint), i.id.to_string().into_bytes());
    } else if was_open {
        w.delete(k.open(&i.fingerprint));
    }
}

fn write_run(w: &mut impl Writes, k: &Keys, r: &Run) {
    w.put_json(k.run(r.id), r);
    w.put(k.run_of(r.incident_id, r.id), Vec::new());
    if r.state == RunState::Running {
        w.put(k.running(r.id), Vec::new());
    } else {
        w.delete(k.running(r.id));
    }
}

/// A new journal entry with its indexes.
fn write_new_action(w: &mut impl Writes, k: &Keys, seq: i64, a: &Action) {
    w.put_json(k.action(seq), a);
    w.put(
        k.action_key(&a.idempotency_key),
        seq.to_string().into_bytes(),
    );
    w.put(
        format!("{}{}", k.actions_of_run(a.run_id), keys::num(seq)),
        Vec::new(),
    );
    w.put(
        format!("{}{}", k.actions_of_incident(a.incident_id), keys::num(seq)),
        Vec::new(),
    );
    w.put(
        Keys::at_seq(&k.actions_on_target(&a.target), a.intended_at, seq),
        Vec::new(),
    );
    w.put(
        Keys::at_seq(&k.actions_of_runbook(&a.runbook), a.intended_at, seq),
        Vec::new(),
    );
}

fn write_model(
    w: &mut impl Writes,
    k: &Keys,
    detector: &str,
    config: &str,
    labels: &Labels,
    state: &str,
    at: Millis,
) {
    let l = serde_json::to_string(labels).unwrap_or_default();
    w.put_json(
        format!("{}{}", k.models_of(detector, config), keys::seg(&l)),
        &ModelState {
            labels: labels.clone(),
            state: state.to_string(),
            saved_at: at,
        },
    );
}

/// A timeline entry to append.
struct Entry<'a> {
    kind: &'a str,
    actor: &'a str,
    message: &'a str,
    data: &'a serde_json::Value,
}

/// Append a timeline entry with a new id.
fn write_event(
    tx: &mut Stm<'_>,
    k: &Keys,
    incident_id: i64,
    at: Millis,
    e: Entry<'_>,
) -> StoreResult<()> {
    let id = tx.next_id(&k.counter("event"))?;
    tx.put_json(
        k.event(incident_id, id),
        &TimelineEvent {
            id,
            incident_id,
            at,
            kind: e.kind.to_string(),
            actor: e.actor.to_string(),
            message: e.message.to_string(),
            data: e.data.clone(),
        },
    );
    Ok(())
}

fn load_incident(tx: &mut Stm<'_>, k: &Keys, id: i64) -> StoreResult<Incident> {
    tx.get_json::<Incident>(&k.incident(id))?
        .ok_or_else(|| StoreError::NotFound(format!("incident {id}")))
}

/// The open incident with this fingerprint, if any.
fn open_incident(tx: &mut Stm<'_>, k: &Keys, fingerprint: &str) -> StoreResult<Option<Incident>> {
    let Some(id) = tx
        .get(&k.open(fingerprint))?
        .and_then(|v| String::from_utf8_lossy(&v).parse::<i64>().ok())
    else {
        return Ok(None);
    };
    Ok(tx
        .get_json::<Incident>(&k.incident(id))?
        .filter(Incident::is_open))
}

impl Store for EtcdStore {
    fn leading(&self) -> Option<bool> {
        self.leadership.as_ref().map(|l| l.term().is_some())
    }

    fn status(&self) -> super::StoreStatus {
        let health = self.bridge.health();
        let (detail, seen) = health.seen();
        let l = self.leadership.as_ref();
        // The leader knows its own term at once; the others read the key
        // (at most a probe interval old).
        let own = l.and_then(|l| {
            l.term().map(|t| super::LeaderInfo {
                node: l.node().to_string(),
                token: t.token,
            })
        });
        super::StoreStatus {
            up: health.up(),
            detail,
            node: l.map(|l| l.node().to_string()),
            leader: own.or(seen.filter(|_| l.is_some())),
        }
    }

    fn record_firing(&self, d: &Detection) -> StoreResult<(Incident, bool)> {
        let k = &self.keys;
        let actor = actor_detector(&d.detector);
        atomically(&self.bridge, |tx| {
            match open_incident(tx, k, &d.fingerprint)? {
                Some(mut i) => {
                    i.updated_at = d.at;
                    i.occurrences += 1;
                    i.summary = d.summary.clone();
                    write_incident(tx, k, true, &i);
                    write_event(
                        tx,
                        k,
                        i.id,
                        d.at,
                        Entry {
                            kind: "evidence",
                            actor: &actor,
                            message: &d.summary,
                            data: &d.evidence,
                        },
                    )?;
                    Ok((i, false))
                }
                None => {
                    let id = tx.next_id(&k.counter("incident"))?;
                    let i = d.new_incident(id);
                    write_incident(tx, k, false, &i);
                    let msg = format!("firing: {}", d.summary);
                    write_event(
                        tx,
                        k,
                        id,
                        d.at,
                        Entry {
                            kind: "opened",
                            actor: &actor,
                            message: &msg,
                            data: &d.evidence,
                        },
                    )?;
                    Ok((i, true))
                }
            }
        })
    }

    fn record_resolved(
        &self,
        fingerprint: &str,
        at: Millis,
        cause: &str,
        evidence: serde_json::Value,
    ) -> StoreResult<Option<Incident>> {
        let k = &self.keys;
        atomically(&self.bridge, |tx| {
            let Some(mut i) = open_incident(tx, k, fingerprint)? else {
                return Ok(None);
            };
            let from = i.state;
            i.state = IncidentState::Resolved;
            i.resolved_at = Some(at);
            i.updated_at = at;
            write_incident(tx, k, true, &i);
            let msg = format!("{} → resolved: {cause}", from.as_str());
            let actor = actor_detector(&i.detector);
            write_event(
                tx,
                k,
                i.id,
                at,
                Entry {
                    kind: "transition",
                    actor: &actor,
                    message: &msg,
                    data: &evidence,
                },
            )?;
            Ok(Some(i))
        })
    }

    fn transition(
        &self,
        id: i64,
        to: IncidentState,
        at: Millis,
        actor: &str,
        cause: &str,
    ) -> StoreResult<Incident> {
        let k = &self.keys;
        atomically(&self.bridge, |tx| {
            self.fence(tx)?;
            let mut i = load_incident(tx, k, id)?;
            if i.state == IncidentState::Resolved && to != IncidentState::Resolved {
                return Err(StoreError::Conflict(format!("incident {id} is resolved")));
            }
            if i.state == to {
                return Ok(i);
            }
            let from = i.state;
            i.state = to;
            i.updated_at = at;
            if to == IncidentState::Resolved {
                i.resolved_at = Some(at);
            }
            write_incident(tx, k, true, &i);
            let msg = format!("{} → {}: {cause}", from.as_str(), to.as_str());
            let data = serde_json::Value::Null;
            write_event(
                tx,
                k,
                id,
                at,
                Entry {
                    kind: "transition",
                    actor,
                    message: &msg,
                    data: &data,
                },
            )?;
            Ok(i)
        })
    }

    fn acknowledge(&self, id: i64, who: &str, comment: &str, at: Millis) -> StoreResult<Incident> {
        let k = &self.keys;
        atomically(&self.bridge, |tx| {
            let mut i = load_incident(tx, k, id)?;
            if i.state == IncidentState::Resolved {
                return Err(StoreError::Conflict(format!(
                    "incident {id} is already resolved"
                )));
            }
            // As in SQLite: acknowledged is a human state; a recovering
            // incident stays recovering but records who holds it.
            if i.state == IncidentState::Firing {
                i.state = IncidentState::Acknowledged;
            }
            i.acked_by = Some(who.to_string());
            i.acked_at = Some(at);
            i.updated_at = at;
            write_incident(tx, k, true, &i);
            let msg = if comment.is_empty() {
                format!("acknowledged by {who}")
            } else {
                format!("acknowledged by {who}: {comment}")
            };
            let data = serde_json::json!({"who": who, "comment": comment});
            let actor = format!("user:{who}");
            write_event(
                tx,
                k,
                id,
                at,
                Entry {
                    kind: "ack",
                    actor: &actor,
                    message: &msg,
                    data: &data,
                },
            )?;
            Ok(i)
        })
    }

    fn append_event(
        &self,
        incident_id: i64,
        at: Millis,
        kind: &str,
        actor: &str,
        message: &str,
        data: serde_json::Value,
    ) -> StoreResult<()> {
        let k = &self.keys;
        atomically(&self.bridge, |tx| {
            write_event(
                tx,
                k,
                incident_id,
                at,
                Entry {
                    kind,
                    actor,
                    message,
                    data: &data,
                },
            )
        })
    }

    fn incident(&self, id: i64) -> StoreResult<Option<Incident>> {
        self.get_json(&self.keys.incident(id))
    }

    fn incidents(&self, filter: &IncidentFilter) -> StoreResult<Vec<Incident>> {
        if filter.limit == Some(0) {
            return Ok(Vec::new());
        }
        if filter.open_only {
            let mut open = self.open_incidents()?;
            open.reverse();
            open.truncate(filter.limit.unwrap_or(usize::MAX));
            return Ok(open);
        }
        let Some(limit) = filter.limit else {
            let mut all: Vec<Incident> = self
                .scan(&self.keys.incidents())?
                .iter()
                .map(|(k, v)| parse(&String::from_utf8_lossy(k), v))
                .collect::<StoreResult<_>>()?;
            all.reverse();
            return Ok(all);
        };
        // Newest first without a server-side sort (etcd 3.4 sorts a whole
        // range before limiting it): ids are dense, so the newest `limit`
        // are the last ids handed out; widen the window if some are missing.
        let last = self.last_id("incident")?;
        let mut window = limit as i64;
        loop {
            let lo = (last - window + 1).max(1);
            let found = self.range(
                self.keys.incident(lo).into_bytes(),
                prefix_end(&self.keys.incidents()),
                0,
                false,
                PAGE,
            )?;
            if found.len() >= limit || lo == 1 {
                let mut out: Vec<Incident> = found
                    .iter()
                    .rev()
                    .take(limit)
                    .map(|(k, v)| parse(&String::from_utf8_lossy(k), v))
                    .collect::<StoreResult<_>>()?;
                out.sort_by_key(|i| std::cmp::Reverse(i.id));
                return Ok(out);
            }
            window *= 2;
        }
    }

    fn timeline(&self, id: i64) -> StoreResult<Vec<TimelineEvent>> {
        self.scan(&self.keys.timeline(id))?
            .iter()
            .map(|(k, v)| parse(&String::from_utf8_lossy(k), v))
            .collect()
    }

    fn count_by_state(&self) -> StoreResult<Vec<(IncidentState, i64)>> {
        let total = self.count(&self.keys.incidents())?;
        let open = self.open_incidents()?;
        let mut out: Vec<(IncidentState, i64)> = Vec::new();
        for s in IncidentState::ALL {
            let n = if s == IncidentState::Resolved {
                total - open.len() as i64
            } else {
                open.iter().filter(|i| i.state == s).count() as i64
            };
            if n > 0 {
                out.push((s, n));
            }
        }
        Ok(out)
    }

    fn start_run(&self, incident_id: i64, runbook: &str, at: Millis) -> StoreResult<Run> {
        let k = &self.keys;
        atomically(&self.bridge, |tx| {
            self.fence(tx)?;
            let run = Run {
                id: tx.next_id(&k.counter("run"))?,
                incident_id,
                runbook: runbook.to_string(),
                state: RunState::Running,
                started_at: at,
                finished_at: None,
                detail: None,
            };
            write_run(tx, k, &run);
            Ok(run)
        })
    }

    fn finish_run(
        &self,
        run_id: i64,
        state: RunState,
        at: Millis,
        detail: &str,
    ) -> StoreResult<()> {
        let k = &self.keys;
        atomically(&self.bridge, |tx| {
            self.fence(tx)?;
            let Some(mut run) = tx.get_json::<Run>(&k.run(run_id))? else {
                return Ok(());
            };
            run.state = state;
            run.finished_at = Some(at);
            run.detail = Some(detail.to_string());
            write_run(tx, k, &run);
            Ok(())
        })
    }

    fn running_runs(&self) -> StoreResult<Vec<Run>> {
        if self.follower() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = self
            .index(&self.keys.all_running())?
            .into_iter()
            .map(|id| self.keys.run(id))
            .collect();
        let mut runs: Vec<Run> = self.records(&keys)?;
        runs.retain(|r| r.state == RunState::Running);
        Ok(runs)
    }

    fn runs_for(&self, incident_id: i64) -> StoreResult<Vec<Run>> {
        let keys: Vec<String> = self
            .index(&self.keys.runs_of(incident_id))?
            .into_iter()
            .map(|id| self.keys.run(id))
            .collect();
        self.records(&keys)
    }

    fn journal_intend(&self, a: &Action) -> StoreResult<Option<i64>> {
        let k = &self.keys;
        atomically(&self.bridge, |tx| {
            // The token goes into the entry: the journal says under which
            // leader's term each action ran.
            let fence = self.fence(tx)?;
            if tx.get(&k.action_key(&a.idempotency_key))?.is_some() {
                return Err(StoreError::Conflict(format!(
                    "action {} already journalled",
                    a.idempotency_key
                )));
            }
            let seq = tx.next_id(&k.counter("action"))?;
            write_new_action(tx, k, seq, &Action { fence, ..a.clone() });
            Ok(fence)
        })
    }

    fn journal_finish(
        &self,
        key: &str,
        state: ActionState,
        at: Millis,
        detail: &str,
    ) -> StoreResult<()> {
        self.update_action(key, |a| {
            a.state = state;
            a.finished_at = Some(at);
            a.detail = Some(detail.to_string());
        })
    }

    fn journal_get(&self, key: &str) -> StoreResult<Option<Action>> {
        let k = self.keys.action_key(key);
        let Some(seq) = self.get_json::<i64>(&k)? else {
            return Ok(None);
        };
        self.get_json(&self.keys.action(seq))
    }

    fn journal_for_run(&self, run_id: i64) -> StoreResult<Vec<Action>> {
        self.actions(self.index(&self.keys.actions_of_run(run_id))?)
    }

    fn journal_for_incident(&self, incident_id: i64) -> StoreResult<Vec<Action>> {
        self.actions(self.index(&self.keys.actions_of_incident(incident_id))?)
    }

    fn journal_verified(&self, key: &str, passed: bool, at: Millis) -> StoreResult<()> {
        self.update_action(key, |a| {
            a.verified = Some(passed);
            a.verified_at = Some(at);
        })
    }

    fn recent_actions(&self, f: &ActionFilter) -> StoreResult<Vec<Action>> {
        if f.limit == 0 {
            return Ok(Vec::new());
        }
        let index = match (&f.target, &f.runbook) {
            (Some(t), _) => Some(self.keys.actions_on_target(t)),
            (None, Some(r)) => Some(self.keys.actions_of_runbook(r)),
            (None, None) => None,
        };
        let mut found = match index {
            // By time from `since` on, newest first; with both filters the
            // runbook is checked after reading, so read the whole window.
            Some(index) => {
                let limit = if f.target.is_some() && f.runbook.is_some() {
                    0
                } else {
                    f.limit
                };
                let start = Keys::at_seq(&index, f.since, 0);
                let seqs = self
                    .range(start.into_bytes(), prefix_end(&index), limit, true, PAGE)?
                    .iter()
                    .filter_map(|(k, _)| last_num(k))
                    .collect();
                self.actions(seqs)?
            }
            // No index: walk the journal back from the newest entry.
            None => {
                let mut out = Vec::new();
                let mut hi = self.last_id("action")?;
                while hi > 0 && out.len() < f.limit {
                    let lo = (hi - PAGE as i64 + 1).max(1);
                    let mut page = self.actions((lo..=hi).collect())?;
                    page.retain(|a| a.intended_at >= f.since);
                    page.reverse();
                    out.extend(page);
                    hi = lo - 1;
                }
                out.reverse();
                out
            }
        };
        found.retain(|a| {
            a.intended_at >= f.since
                && f.target.as_ref().is_none_or(|t| &a.target == t)
                && f.runbook.as_ref().is_none_or(|r| &a.runbook == r)
        });
        let skip = found.len().saturating_sub(f.limit);
        Ok(found.split_off(skip))
    }

    fn save_model_states(
        &self,
        detector: &str,
        config: &str,
        states: &[(Labels, String)],
        at: Millis,
    ) -> StoreResult<()> {
        let k = &self.keys;
        // States under another configuration go: everything of the detector
        // before and after this configuration's key range.
        let all = k.models(detector);
        let mine = k.models_of(detector, config);
        let mut ops = vec![
            TxnOp::delete(
                all.clone(),
                Some(DeleteOptions::new().with_range(mine.clone())),
            ),
            TxnOp::delete(
                prefix_end(&mine),
                Some(DeleteOptions::new().with_range(prefix_end(&all))),
            ),
        ];
        let mut batch = Batch::default();
        let mut bytes = 0;
        for (labels, state) in states {
            write_model(&mut batch, k, detector, config, labels, state, at);
            bytes += state.len();
            if batch.ops.len() + ops.len() >= MAX_TXN_OPS || bytes >= CHUNK_BYTES {
                ops.append(&mut batch.ops);
                self.commit_ops(std::mem::take(&mut ops))?;
                bytes = 0;
            }
        }
        ops.append(&mut batch.ops);
        self.commit_ops(ops)
    }

    fn load_model_states(
        &self,
        detector: &str,
        config: &str,
    ) -> StoreResult<Vec<(Labels, String)>> {
        let p = self.keys.models_of(detector, config);
        let rows = self.range(p.clone().into_bytes(), prefix_end(&p), 0, false, MODEL_PAGE)?;
        Ok(rows
            .iter()
            .filter_map(|(_, v)| serde_json::from_slice::<ModelState>(v).ok())
            .map(|m| (m.labels, m.state))
            .collect())
    }
}

/// Writes collected for a plain (unguarded) transaction.
#[derive(Default)]
pub struct Batch {
    ops: Vec<TxnOp>,
}

impl Writes for Batch {
    fn put(&mut self, key: String, value: Vec<u8>) {
        self.ops.push(TxnOp::put(key, value, None));
    }
    fn delete(&mut self, key: String) {
        self.ops.push(TxnOp::delete(key, None));
    }
}

impl Batch {
    /// Operations so far.
    pub fn len(&self) -> usize {
        self.ops.len()
    }
    /// Nothing collected.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

impl EtcdStore {
    /// Apply operations in one unguarded transaction.
    fn commit_ops(&self, ops: Vec<TxnOp>) -> StoreResult<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let txn = Txn::new().and_then(ops);
        self.bridge.kv(move |mut kv| {
            let txn = txn.clone();
            async move { kv.txn(txn).await }
        })?;
        Ok(())
    }

    /// Apply a batch in one transaction.
    pub fn commit_batch(&self, b: Batch) -> StoreResult<()> {
        self.commit_ops(b.ops)
    }

    /// Keys under the prefix that hold state (everything but `meta/`).
    pub fn state_keys(&self) -> StoreResult<i64> {
        Ok(self.count(self.keys.prefix())? - self.count(&self.keys.meta())?)
    }

    /// Delete every key under the prefix.
    pub fn delete_all(&self) -> StoreResult<()> {
        let p = self.keys.prefix().to_string();
        self.commit_ops(vec![TxnOp::delete(
            p,
            Some(DeleteOptions::new().with_prefix()),
        )])
    }

    /// Delete all state under the prefix, keeping it usable.
    pub fn clear(&self) -> StoreResult<()> {
        self.delete_all()?;
        self.check_layout()
    }
}

#[cfg(test)]
pub mod test_server;
#[cfg(test)]
mod tests;
