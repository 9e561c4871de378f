//! The synchronous face of the async etcd client.
//!
//! The [`Store`](crate::stores::Store) trait is synchronous and is called
//! from inside tokio tasks (engine, runner, scheduler, API handlers). Blocking
//! on an async client there is the classic trap: `Handle::block_on` and
//! `block_in_place` panic or deadlock depending on the runtime flavour. So
//! the client lives on its own current-thread runtime, driven by a dedicated
//! thread (`medic-etcd`) that owns it. A call spawns the request onto that
//! runtime and waits for the answer on a plain channel: the calling thread
//! blocks (as it does for a SQLite write), whatever runtime it belongs to,
//! and never needs to poll anything itself. Every request has a deadline, so
//! a dead or partitioned etcd costs the caller at most `timeout` per call and
//! returns [`StoreError::Backend`]; it never hangs medic.

use std::future::Future;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions, KvClient};
use tokio::sync::oneshot;

use crate::stores::{StoreError, StoreResult};

/// gRPC answers can be larger than tonic's default 4 MiB (a page of learnt
/// model states); etcd itself limits a request to 1.5 MiB by default.
const MAX_ANSWER: usize = 64 << 20;

/// How to reach etcd.
#[derive(Debug, Clone)]
pub struct Connection {
    /// `http://host:port` or `https://host:port`.
    pub endpoints: Vec<String>,
    /// Connect options (TLS, timeouts).
    pub options: ConnectOptions,
    /// Deadline of each request.
    pub timeout: Duration,
}

/// A connected client on its own runtime thread.
pub struct Bridge {
    kv: KvClient,
    client: Client,
    handle: tokio::runtime::Handle,
    timeout: Duration,
    endpoints: String,
    health: std::sync::Arc<super::health::Health>,
    /// Dropping it ends the runtime thread.
    _stop: oneshot::Sender<()>,
}

impl Bridge {
    /// Start the runtime thread and build the client on it. The client
    /// connects lazily: an unreachable etcd shows up on the first request.
    pub fn connect(c: Connection) -> StoreResult<Bridge> {
        let endpoints = c.endpoints.join(",");
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let what = endpoints.clone();
        std::thread::Builder::new()
            .name("medic-etcd".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("runtime: {e}")));
                        return;
                    }
                };
                let client = rt.block_on(async {
                    tokio::time::timeout(
                        c.timeout,
                        Client::connect(&c.endpoints, Some(c.options.clone())),
                    )
                    .await
                });
                let client = match client {
                    Ok(Ok(client)) => client,
                    Ok(Err(e)) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                    Err(_) => {
                        let _ = ready_tx.send(Err(format!("no connection within {:?}", c.timeout)));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok((client, rt.handle().clone())));
                // Serve requests until the Bridge is dropped.
                let _ = rt.block_on(stop_rx);
            })
            .map_err(|e| StoreError::Backend(format!("etcd {what}: thread: {e}")))?;
        let (client, handle) = ready_rx
            .recv()
            .map_err(|_| StoreError::Backend(format!("etcd {endpoints}: client thread died")))?
            .map_err(|e| StoreError::Backend(format!("etcd {endpoints}: {e}")))?;
        let kv = client
            .kv_client()
            .max_decoding_message_size(MAX_ANSWER)
            .max_encoding_message_size(MAX_ANSWER);
        Ok(Bridge {
            kv,
            client,
            handle,
            timeout: c.timeout,
            endpoints,
            health: Default::default(),
            _stop: stop_tx,
        })
    }

    /// The deadline of one request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether etcd answers (`health.rs`); set by the probe the store starts.
    pub fn health(&self) -> &std::sync::Arc<super::health::Health> {
        &self.health
    }

    /// The endpoints, for messages.
    pub fn endpoints(&self) -> &str {
        &self.endpoints
    }

    /// The whole client (leases, elections), for use inside [`Bridge::call`].
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Run a background task on the etcd thread (the leader campaign).
    pub fn spawn<F: Future<Output = ()> + Send + 'static>(&self, f: F) {
        self.handle.spawn(f);
    }

    /// Run one key-value request on the etcd thread and wait for its answer,
    /// at most the request timeout. `f` builds the request; it is built
    /// again when a member could not be reached (see [`never_sent`]).
    pub fn kv<T, F, Fut>(&self, f: F) -> StoreResult<T>
    where
        F: Fn(KvClient) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
        T: Send + 'static,
    {
        let kv = self.kv.clone();
        self.call(until_sent(move || f(kv.clone())))
    }

    /// Run a request future on the etcd thread and wait for its answer, at
    /// most the request timeout.
    pub fn call<T, Fut>(&self, fut: Fut) -> StoreResult<T>
    where
        Fut: Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let timeout = self.timeout;
        self.handle.spawn(async move {
            let _ = tx.send(tokio::time::timeout(timeout, fut).await);
        });
        // The runtime enforces the deadline; the margin only covers a runtime
        // thread that stopped answering altogether.
        match rx.recv_timeout(timeout + Duration::from_secs(1)) {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(e))) => Err(StoreError::Backend(format!(
                "etcd {}: {}",
                self.endpoints,
                describe(&e)
            ))),
            Ok(Err(_)) | Err(_) => Err(StoreError::Backend(format!(
                "etcd {}: no answer within {timeout:?}",
                self.endpoints
            ))),
        }
    }
}

/// The client spreads requests over all endpoints, dead members included:
/// with one member of three down, about one request in three fails to
/// connect. Such a request never left this host, so sending it again (to
/// another member, the balancer's next pick) is safe even for a write; the
/// caller's deadline bounds the retries.
pub async fn until_sent<T, Fut>(mut f: impl FnMut() -> Fut) -> Result<T, etcd_client::Error>
where
    Fut: Future<Output = Result<T, etcd_client::Error>>,
{
    loop {
        match f().await {
            Err(e) if never_sent(&e) => tokio::time::sleep(Duration::from_millis(20)).await,
            r => return r,
        }
    }
}

/// The request failed before it was sent: no connection to that member.
pub fn never_sent(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::GRpcStatus(s) => {
            s.code() == tonic::Code::Unavailable && s.message().contains("connect error")
        }
        etcd_client::Error::TransportError(_) => true,
        _ => false,
    }
}

/// The gRPC message without tonic's debug dump.
fn describe(e: &etcd_client::Error) -> String {
    match e {
        etcd_client::Error::GRpcStatus(s) => format!("{:?}: {}", s.code(), s.message()),
        other => other.to_string(),
    }
}
