//! DNS service discovery: targets from SRV records (host and port), or from
//! A/AAAA records with a configured port, re-resolved on an interval (like
//! Prometheus' `dns_sd_configs`). A failed lookup keeps the last good list.

use std::net::SocketAddr;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{Resolver, TokioResolver};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::duration::Duration;

/// `dns_sd:` of a scrape or tcp_probe source.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsSdConfig {
    /// Names to resolve, e.g. `_metrics._tcp.example.org`.
    pub names: Vec<String>,
    /// `SRV` (host and port from the record), `A` or `AAAA` (with `port`).
    #[serde(default, rename = "type")]
    pub record_type: DnsRecordType,
    /// Port for A/AAAA records.
    #[serde(default)]
    pub port: Option<u16>,
    /// How often to resolve again.
    #[serde(default = "default_refresh")]
    pub refresh: Duration,
    /// A specific DNS server (`ip:port`) instead of the system's
    /// (`/etc/resolv.conf`).
    #[serde(default)]
    pub server: Option<String>,
}

fn default_refresh() -> Duration {
    Duration::from_secs(30)
}

/// The record type to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
pub enum DnsRecordType {
    /// Service records: target host and port.
    #[default]
    #[serde(rename = "SRV")]
    Srv,
    /// IPv4 addresses.
    A,
    /// IPv6 addresses.
    #[serde(rename = "AAAA")]
    Aaaa,
}

/// Build the resolver for a config.
pub fn resolver(cfg: &DnsSdConfig) -> Result<TokioResolver, String> {
    match &cfg.server {
        None => Resolver::builder_tokio()
            .and_then(|b| b.build())
            .map_err(|e| format!("system DNS configuration: {e}")),
        Some(s) => {
            let addr: SocketAddr = s
                .parse()
                .map_err(|_| format!("dns_sd.server {s:?} is not ip:port"))?;
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
            Resolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![ns]),
                TokioRuntimeProvider::default(),
            )
            .build()
            .map_err(|e| format!("DNS resolver for {s}: {e}"))
        }
    }
}

/// Resolve every name; `Err` if any lookup failed (the caller keeps the
/// previous list). Targets are `host:port`, sorted and deduplicated.
pub async fn resolve(r: &TokioResolver, cfg: &DnsSdConfig) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for name in &cfg.names {
        let lookup = match cfg.record_type {
            DnsRecordType::Srv => r.srv_lookup(name.as_str()).await,
            DnsRecordType::A => r.ipv4_lookup(name.as_str()).await,
            DnsRecordType::Aaaa => r.ipv6_lookup(name.as_str()).await,
        };
        let lookup = match lookup {
            Ok(l) => l,
            // An empty answer is a valid (empty) target list.
            Err(e) if e.is_no_records_found() => continue,
            Err(e) => return Err(format!("{name}: {e}")),
        };
        for rec in lookup.answers() {
            match (&rec.data, cfg.port) {
                (RData::SRV(srv), _) => {
                    let host = srv.target.to_utf8();
                    let host = host.trim_end_matches('.');
                    out.push(format!("{host}:{}", srv.port));
                }
                (RData::A(a), Some(p)) => out.push(format!("{}:{p}", a.0)),
                (RData::AAAA(a), Some(p)) => out.push(format!("[{}]:{p}", a.0)),
                _ => {}
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}
