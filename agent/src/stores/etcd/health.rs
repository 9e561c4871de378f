//! Whether etcd answers: degraded mode.
//!
//! A probe on the etcd thread reads the leader key once a second with a
//! linearizable read, which etcd answers only with quorum. Two failures in a
//! row put the store in **degraded mode** (one success ends it):
//!
//! - writes fail at once with [`StoreError::Backend`] instead of each
//!   waiting out the request timeout (so the engine, the API and the
//!   runner stay responsive); nothing is lost by it: no write can commit
//!   without quorum anyway;
//! - reads are served *serializable*, from whichever member still answers
//!   (possibly stale), so the console keeps showing incidents;
//! - `Store::status` says `up: false`, which the API (`/api/v1/status`),
//!   the console banner and `medic_store_up` show, and the engine spools
//!   new detections locally (`stores::spool`) and notifies from there.
//!
//! Actions need no check here: they need the leader's fencing token, and a
//! leader that cannot renew its lease stops acting by the timing rule.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use etcd_client::Client;

use crate::stores::LeaderInfo;

/// How often the probe reads.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);
/// Failed probes in a row before the store counts as down.
const FAILURES_TO_DOWN: u32 = 2;

/// The probe's findings.
#[derive(Default)]
pub struct Health {
    down: AtomicBool,
    seen: Mutex<Seen>,
}

#[derive(Default, Clone)]
struct Seen {
    detail: Option<String>,
    leader: Option<LeaderInfo>,
}

impl Health {
    /// The store answers (not degraded).
    pub fn up(&self) -> bool {
        !self.down.load(Ordering::Relaxed)
    }

    /// Why it is down, and the leader as last read (`None` while down).
    pub fn seen(&self) -> (Option<String>, Option<LeaderInfo>) {
        let s = self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        (s.detail, s.leader)
    }

    fn answered(&self, leader: Option<LeaderInfo>) {
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::warn!("etcd answers again: store up, leaving degraded mode");
        }
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Seen {
            detail: None,
            leader,
        };
    }

    fn failed(&self, detail: String) {
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::error!(%detail, "etcd unreachable or without quorum: degraded mode (automated actions paused; notifications sent from this node directly)");
        }
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Seen {
            detail: Some(detail),
            leader: None,
        };
    }

    /// Probe forever (spawned on the etcd thread).
    pub async fn probe(self: std::sync::Arc<Self>, client: Client, key: String, timeout: Duration) {
        let mut failures = 0;
        loop {
            let read = super::bridge::until_sent(|| {
                let (mut c, k) = (client.clone(), key.clone());
                async move { c.get(k, None).await }
            });
            match tokio::time::timeout(timeout, read).await {
                Ok(Ok(r)) => {
                    failures = 0;
                    self.answered(r.kvs().first().map(|kv| LeaderInfo {
                        node: String::from_utf8_lossy(kv.value()).into_owned(),
                        token: kv.create_revision(),
                    }));
                }
                outcome => {
                    failures += 1;
                    if failures >= FAILURES_TO_DOWN {
                        self.failed(match outcome {
                            Ok(Err(e)) => format!("etcd: {e}"),
                            _ => format!("etcd: no answer within {timeout:?}"),
                        });
                    }
                }
            }
            tokio::time::sleep(PROBE_EVERY).await;
        }
    }
}
