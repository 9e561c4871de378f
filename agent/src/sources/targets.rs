//! Target lists: static, or read from Prometheus `file_sd` files that are
//! re-read when they change. One task runs per target; the set of tasks is
//! reconciled whenever the list changes.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Deserialize;
use tokio::task::JoinHandle;

use super::dns_sd::{self, DnsSdConfig};
use super::{SourceConfig, SourceContext, SourceKind, probe, scrape};
use crate::series::Labels;

/// A target and the labels it brings (from its `file_sd` group).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    /// Address or URL.
    pub address: String,
    /// Extra labels from discovery.
    pub labels: Labels,
}

/// One group of a `file_sd` file (JSON or YAML).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSdGroup {
    targets: Vec<String>,
    #[serde(default)]
    labels: Labels,
}

/// Read one `file_sd` file. JSON when it ends in `.json`, YAML otherwise.
pub fn read_file_sd(path: &Path) -> Result<Vec<Target>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let groups: Vec<FileSdGroup> = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
    } else {
        serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
    };
    Ok(groups
        .into_iter()
        .flat_map(|g| {
            let labels = g.labels;
            g.targets.into_iter().map(move |address| Target {
                address,
                labels: labels.clone(),
            })
        })
        .collect())
}

fn dns_of(cfg: &SourceConfig) -> Option<DnsSdConfig> {
    match &cfg.kind {
        SourceKind::Scrape(s) => s.dns_sd.clone(),
        SourceKind::TcpProbe(p) => p.dns_sd.clone(),
        _ => None,
    }
}

fn static_and_files(cfg: &SourceConfig) -> (Vec<String>, Vec<PathBuf>) {
    match &cfg.kind {
        SourceKind::Scrape(s) => (s.targets.clone(), s.file_sd.clone()),
        SourceKind::HttpProbe(p) => (p.targets.clone(), p.file_sd.clone()),
        SourceKind::TcpProbe(p) => (p.targets.clone(), p.file_sd.clone()),
        SourceKind::ExecProbe(_) => (vec![cfg.name.value.clone()], vec![]),
        SourceKind::Promql(_)
        | SourceKind::RemoteWrite(_)
        | SourceKind::Alertmanager(_)
        | SourceKind::Otlp(_) => (vec![], vec![]),
    }
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Run a source: keep one collection task per current target.
pub async fn run_source(cfg: SourceConfig, ctx: SourceContext) {
    let (statics, files) = static_and_files(&cfg);
    let files: Vec<PathBuf> = files
        .into_iter()
        .map(|p| {
            if p.is_absolute() {
                p
            } else {
                ctx.base_dir.join(p)
            }
        })
        .collect();
    let mut running: HashMap<Target, JoinHandle<()>> = HashMap::new();
    let mut seen: BTreeMap<PathBuf, Option<SystemTime>> = BTreeMap::new();
    let mut from_files: Vec<Target> = Vec::new();
    let dns = dns_of(&cfg).map(|c| (dns_sd::resolver(&c), c));
    let mut from_dns: Vec<Target> = Vec::new();
    let mut next_dns = tokio::time::Instant::now();
    let mut first = true;
    loop {
        // Re-read file_sd files only when their modification time changed; a
        // file that fails to parse keeps the last good list (like Prometheus).
        let mut changed = first;
        for f in &files {
            let m = mtime(f);
            if seen.get(f) != Some(&m) {
                seen.insert(f.clone(), m);
                changed = true;
            }
        }
        if changed && !files.is_empty() {
            let mut all = Vec::new();
            let mut ok = true;
            for f in &files {
                match read_file_sd(f) {
                    Ok(t) => all.extend(t),
                    Err(e) => {
                        ok = false;
                        tracing::warn!(source = %cfg.name, error = %e, "file_sd file unreadable; keeping the previous targets");
                        ctx.metrics.source_error(&cfg.name, "file_sd");
                    }
                }
            }
            if ok {
                from_files = all;
            }
        }
        if let Some((r, c)) = &dns
            && tokio::time::Instant::now() >= next_dns
        {
            next_dns = tokio::time::Instant::now() + c.refresh.std();
            let found = match r {
                Ok(r) => dns_sd::resolve(r, c).await,
                Err(e) => Err(e.clone()),
            };
            match found {
                Ok(list) => {
                    let list: Vec<Target> = list
                        .into_iter()
                        .map(|address| Target {
                            address,
                            labels: Labels::new(),
                        })
                        .collect();
                    if list != from_dns {
                        from_dns = list;
                        changed = true;
                    }
                }
                Err(e) => {
                    tracing::warn!(source = %cfg.name, error = %e, "DNS discovery failed; keeping the previous targets");
                    ctx.metrics.source_error(&cfg.name, "dns_sd");
                }
            }
        }
        if changed {
            let mut wanted: Vec<Target> = statics
                .iter()
                .map(|a| Target {
                    address: a.clone(),
                    labels: Labels::new(),
                })
                .collect();
            wanted.extend(from_files.iter().cloned());
            wanted.extend(from_dns.iter().cloned());
            wanted.sort();
            wanted.dedup();
            running.retain(|t, h| {
                let keep = wanted.contains(t);
                if !keep {
                    tracing::info!(source = %cfg.name, target = %t.address, "target removed");
                    h.abort();
                }
                keep
            });
            for t in wanted {
                if let std::collections::hash_map::Entry::Vacant(e) = running.entry(t) {
                    if !first {
                        tracing::info!(source = %cfg.name, target = %e.key().address, "target added");
                    }
                    let h = spawn_target(&cfg, &ctx, e.key().clone());
                    e.insert(h);
                }
            }
            first = false;
        }
        let files_due = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
        match (files.is_empty(), dns.is_some()) {
            // Static list: nothing to watch; park until aborted.
            (true, false) => std::future::pending::<()>().await,
            (true, true) => tokio::time::sleep_until(next_dns).await,
            (false, false) => tokio::time::sleep_until(files_due).await,
            (false, true) => tokio::time::sleep_until(files_due.min(next_dns)).await,
        }
    }
}

fn spawn_target(cfg: &SourceConfig, ctx: &SourceContext, target: Target) -> JoinHandle<()> {
    let cfg = cfg.clone();
    let ctx = ctx.clone();
    tokio::spawn(async move {
        match &cfg.kind {
            SourceKind::Scrape(s) => scrape::run_target(&cfg, s, &ctx, target).await,
            SourceKind::HttpProbe(_) | SourceKind::TcpProbe(_) | SourceKind::ExecProbe(_) => {
                probe::run_target(&cfg, &ctx, target).await
            }
            // Not target-based: started by `sources::spawn` directly.
            SourceKind::Promql(_)
            | SourceKind::RemoteWrite(_)
            | SourceKind::Alertmanager(_)
            | SourceKind::Otlp(_) => {}
        }
    })
}

/// Labels every sample of `target` gets: source labels, discovery labels,
/// then `job` and `instance` unless already set.
pub fn target_labels(cfg: &SourceConfig, target: &Target) -> Labels {
    let mut l = cfg.labels.clone();
    for (k, v) in &target.labels {
        l.insert(k.clone(), v.clone());
    }
    l.entry("job".into())
        .or_insert_with(|| cfg.name.value.clone());
    l.entry("instance".into())
        .or_insert_with(|| target.address.clone());
    l
}

#[cfg(test)]
#[path = "targets_tests.rs"]
mod tests;
