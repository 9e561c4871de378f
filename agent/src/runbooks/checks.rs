//! The outside checks a step's `verify` makes — an HTTP GET, a TCP connect —
//! behind one trait, so that `medic test` can answer them from its timeline
//! instead of the network. The runner applies the per-check timeout.

use std::future::Future;
use std::pin::Pin;

/// A check's answer: does it pass?
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = bool> + Send + 'a>>;

/// The checks `verify:` can name besides `detector_cleared`.
pub trait Checks: Send + Sync {
    /// `verify.http`: a GET to `url` answers with one of `expect_status`
    /// (any 2xx when empty).
    fn http<'a>(&'a self, url: &'a str, expect_status: &'a [u16]) -> CheckFuture<'a>;
    /// `verify.tcp`: a connection to `addr` (`host:port`) opens.
    fn tcp<'a>(&'a self, addr: &'a str) -> CheckFuture<'a>;
}

/// The real checks, over the network.
pub struct NetworkChecks {
    http: reqwest::Client,
}

impl NetworkChecks {
    /// Use this HTTP client.
    pub fn new(http: reqwest::Client) -> Self {
        NetworkChecks { http }
    }
}

impl Checks for NetworkChecks {
    fn http<'a>(&'a self, url: &'a str, expect_status: &'a [u16]) -> CheckFuture<'a> {
        Box::pin(async move {
            crate::sources::probe::check_http(&self.http, url, expect_status)
                .await
                .is_ok()
        })
    }

    fn tcp<'a>(&'a self, addr: &'a str) -> CheckFuture<'a> {
        Box::pin(async move { tokio::net::TcpStream::connect(addr).await.is_ok() })
    }
}
