//! Leader election on an etcd lease, and the fencing token that keeps a
//! deposed leader from acting (`store: {kind: etcd, election: {...}}`).
//!
//! Each node grants itself a lease of `ttl` and tries to create the leader
//! key `<prefix>leader` (only if absent, `create_revision == 0`) attached to
//! that lease. The node that creates it leads; the key's `create_revision`
//! is its **fencing token**, unique per term. The leader renews its lease
//! every `renew`; if it dies, the lease expires after `ttl`, etcd deletes the
//! key, and another node creates it with a new, larger token.
//!
//! The store enforces it: while election is on, `journal_intend` (the write
//! before every action), `start_run`, `finish_run` and `transition` commit
//! only with a compare that the leader key still has this node's token, and
//! the journal entry records the token. A node that lost the key can
//! therefore neither start an action nor move a run or an incident. A
//! follower's work queues (runs to resume, incidents to route, escalations,
//! due notifications) read empty and its escalation plans are refused, so
//! only the leader escalates and sends. Every node still records incidents;
//! the leader starts the runbooks of those a follower opened
//! (`daemon::adopt_incidents`) and resumes running runs when it takes over.
//!
//! # The timing rule
//!
//! A lease renewal sent at `t` keeps the lease alive on etcd until at least
//! `t + ttl`, so the node knows it leads until `valid_until = t + 0.9 × ttl`
//! (10% for clock-rate error between this host and etcd's leader; a
//! renewal that fails simply does not move it). An action is journalled only
//! if at least `budget = 0.9 × ttl − 2 × renew` of that validity is left,
//! and every acting step's `timeout` must fit in the budget (checked when the
//! configuration loads, so at start-up and on reload). Since the step timeout
//! cancels the action, every action a leader starts has ended before its
//! lease can expire — before any other node can become leader. A healthy
//! leader always has the budget (renewed at most `renew` ago, one missed
//! renewal tolerated); after two missed renewals it stops starting actions,
//! and once `valid_until` passes it is a follower. `approval` steps are
//! waits, not actions, and are not bound by the budget.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::bridge::{Bridge, until_sent};
use crate::config::duration::Duration as ConfigDuration;
use crate::stores::{StoreError, StoreResult};

/// `election:` under `store: {kind: etcd}`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ElectionConfig {
    /// This node's name, shown as the leader (default: host name and pid).
    #[serde(default)]
    pub node: Option<String>,
    /// Lease time to live (whole seconds, at least 2s; default 15s): how
    /// long a dead leader blocks the others.
    #[serde(default = "default_ttl")]
    pub ttl: ConfigDuration,
    /// How often the leader renews its lease (default 2s).
    #[serde(default = "default_renew")]
    pub renew: ConfigDuration,
}

fn default_ttl() -> ConfigDuration {
    ConfigDuration::from_secs(15)
}
fn default_renew() -> ConfigDuration {
    ConfigDuration::from_secs(2)
}

impl ElectionConfig {
    /// How long after a renewal the node knows it still leads.
    pub fn validity(&self) -> Duration {
        self.ttl.std().mul_f64(0.9)
    }

    /// The longest an acting step may take: `0.9 × ttl − 2 × renew`.
    pub fn budget(&self) -> Duration {
        self.validity().saturating_sub(self.renew.std() * 2)
    }

    /// Mistakes in the settings themselves.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let ttl = self.ttl.std();
        if ttl < Duration::from_secs(2) || ttl.subsec_nanos() != 0 {
            out.push(format!(
                "store: election.ttl {} must be whole seconds, at least 2s",
                self.ttl
            ));
        }
        if self.renew.std().is_zero() || self.budget().is_zero() {
            out.push(format!(
                "store: election.renew {} leaves no time to act: 0.9 × ttl − 2 × renew must be more than 0",
                self.renew
            ));
        }
        out
    }

    fn node_name(&self) -> String {
        self.node.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "medic".into());
            format!("{host}:{}", std::process::id())
        })
    }
}

/// A term of leadership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    /// The leader key's `create_revision`: the fencing token.
    pub token: i64,
    /// Until when this node knows it leads.
    pub valid_until: Instant,
}

/// This node's view of the election, kept current by a campaign task on
/// the etcd thread.
pub struct Leadership {
    key: String,
    node: String,
    budget: Duration,
    term: Arc<Mutex<Option<Term>>>,
}

impl Leadership {
    /// Start campaigning for `key`.
    pub fn start(bridge: &Bridge, key: String, c: &ElectionConfig) -> Leadership {
        let term = Arc::new(Mutex::new(None));
        let node = c.node_name();
        let campaign = Campaign {
            client: bridge.client(),
            key: key.clone(),
            node: node.clone(),
            ttl_secs: c.ttl.std().as_secs().max(2) as i64,
            validity: c.validity(),
            renew: c.renew.std(),
            term: term.clone(),
        };
        bridge.spawn(campaign.run());
        Leadership {
            key,
            node,
            budget: c.budget(),
            term,
        }
    }

    /// The leader key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The current term, if this node leads now.
    pub fn term(&self) -> Option<Term> {
        let t = *self.term.lock().unwrap_or_else(|p| p.into_inner());
        t.filter(|t| Instant::now() < t.valid_until)
    }

    /// The token to act under: this node leads, with at least the action
    /// budget of validity left.
    pub fn fence(&self) -> StoreResult<i64> {
        match self.term() {
            Some(t) if t.valid_until.saturating_duration_since(Instant::now()) >= self.budget => {
                Ok(t.token)
            }
            Some(_) => Err(StoreError::Fenced(format!(
                "node {} cannot renew its leader lease: not starting anything",
                self.node
            ))),
            None => Err(StoreError::Fenced(format!(
                "node {} is not the leader; only the leader acts",
                self.node
            ))),
        }
    }
}

struct Campaign {
    client: Client,
    key: String,
    node: String,
    ttl_secs: i64,
    validity: Duration,
    renew: Duration,
    term: Arc<Mutex<Option<Term>>>,
}

impl Campaign {
    fn set(&self, t: Option<Term>) {
        *self.term.lock().unwrap_or_else(|p| p.into_inner()) = t;
    }

    async fn run(mut self) {
        loop {
            let sent = Instant::now();
            match self.try_lead().await {
                Some((lease, token)) => {
                    self.set(Some(Term {
                        token,
                        valid_until: sent + self.validity,
                    }));
                    tracing::info!(node = %self.node, token, "leader: this node acts");
                    self.hold(lease, token).await;
                    self.set(None);
                    tracing::warn!(node = %self.node, token, "no longer the leader");
                    // Free the key at once if etcd still has it.
                    let _ = tokio::time::timeout(self.renew, self.client.lease_revoke(lease)).await;
                }
                None => tokio::time::sleep(self.renew).await,
            }
        }
    }

    /// Grant a lease and create the leader key on it if nobody holds it.
    async fn try_lead(&mut self) -> Option<(i64, i64)> {
        let t = self.renew;
        let (client, ttl) = (self.client.clone(), self.ttl_secs);
        let grant = until_sent(|| {
            let mut c = client.clone();
            async move { c.lease_grant(ttl, None).await }
        });
        let lease = match tokio::time::timeout(t, grant).await {
            Ok(Ok(l)) => l.id(),
            _ => return None,
        };
        let txn = Txn::new()
            .when([Compare::create_revision(
                self.key.clone(),
                CompareOp::Equal,
                0,
            )])
            .and_then([TxnOp::put(
                self.key.clone(),
                self.node.clone(),
                Some(PutOptions::new().with_lease(lease)),
            )]);
        let create = until_sent(|| {
            let (mut c, txn) = (client.clone(), txn.clone());
            async move { c.txn(txn).await }
        });
        match tokio::time::timeout(t, create).await {
            // The put's revision is the key's create_revision.
            Ok(Ok(r)) if r.succeeded() => r.header().map(|h| (lease, h.revision())),
            _ => {
                let _ = tokio::time::timeout(t, self.client.lease_revoke(lease)).await;
                None
            }
        }
    }

    /// Renew the lease every `renew` until it is lost: expired on etcd, or
    /// not renewed in time.
    async fn hold(&mut self, lease: i64, token: i64) {
        let mut stream = None;
        loop {
            tokio::time::sleep(self.renew).await;
            let valid_until = match *self.term.lock().unwrap_or_else(|p| p.into_inner()) {
                Some(t) => t.valid_until,
                None => return,
            };
            if Instant::now() >= valid_until {
                return;
            }
            if stream.is_none() {
                stream = tokio::time::timeout(self.renew, self.client.lease_keep_alive(lease))
                    .await
                    .ok()
                    .and_then(Result::ok);
            }
            let Some((keeper, answers)) = stream.as_mut() else {
                continue;
            };
            let sent = Instant::now();
            if keeper.keep_alive().await.is_err() {
                stream = None;
                continue;
            }
            match tokio::time::timeout(self.renew, answers.message()).await {
                Ok(Ok(Some(r))) if r.ttl() > 0 => {}
                // TTL 0: the lease is gone on etcd, and the key with it.
                Ok(Ok(Some(_))) => return,
                _ => {
                    stream = None;
                    continue;
                }
            }
            // The lease lives; is the key still ours (not deleted by hand)?
            let read = until_sent(|| {
                let (mut c, k) = (self.client.clone(), self.key.clone());
                async move { c.get(k, None).await }
            });
            match tokio::time::timeout(self.renew, read).await {
                Ok(Ok(r)) => match r.kvs().first() {
                    Some(kv) if kv.create_revision() == token => self.set(Some(Term {
                        token,
                        valid_until: sent + self.validity,
                    })),
                    _ => return,
                },
                _ => continue,
            }
        }
    }
}
