//! `medic store migrate`: move all state from the embedded SQLite store to
//! etcd, so that switching is a config change plus one command.
//!
//! Stop medic first (the SQLite file is read in one transaction, but writes
//! made after it would stay behind). The target prefix must hold no state;
//! `--force` deletes what is there first. The load is chunked (etcd caps a
//! transaction at 128 operations), so a failure midway leaves a partial
//! copy: run it again with `--force`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::etcd::{EtcdConfig, EtcdStore};
use super::oncall::{Escalation, OutboxEntry, Silence};
use super::sqlite::SqliteStore;
use super::{Action, Run, StoreConfig, StoreError, StoreResult};
use crate::incidents::{Incident, TimelineEvent};
use crate::series::{Labels, Millis};

/// Every record of a store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Incidents.
    pub incidents: Vec<Incident>,
    /// Timeline entries of all incidents.
    pub timeline: Vec<TimelineEvent>,
    /// Runs.
    pub runs: Vec<Run>,
    /// The journal: (sequence number, entry).
    pub actions: Vec<(i64, Action)>,
    /// Escalation rows.
    pub escalations: Vec<Escalation>,
    /// The notification outbox.
    pub notifications: Vec<OutboxEntry>,
    /// Silences.
    pub silences: Vec<Silence>,
    /// Learnt model states.
    pub models: Vec<ModelRow>,
}

/// One learnt model state.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRow {
    /// Detector.
    pub detector: String,
    /// Configuration fingerprint.
    pub config: String,
    /// Series.
    pub labels: Labels,
    /// Serialised state.
    pub state: String,
    /// When saved.
    pub saved_at: Millis,
}

impl Snapshot {
    /// One line: how many of each.
    pub fn summary(&self) -> String {
        format!(
            "{} incidents, {} timeline entries, {} runs, {} journal entries, {} escalations, {} notifications, {} silences, {} model states",
            self.incidents.len(),
            self.timeline.len(),
            self.runs.len(),
            self.actions.len(),
            self.escalations.len(),
            self.notifications.len(),
            self.silences.len(),
            self.models.len()
        )
    }
}

/// Copy everything from `from` to `to`. Refused if `to` holds state, unless
/// `force` (which deletes it first).
pub fn migrate(from: &SqliteStore, to: &EtcdStore, force: bool) -> StoreResult<Snapshot> {
    let held = to.state_keys()?;
    if held > 0 {
        if !force {
            return Err(StoreError::Conflict(format!(
                "etcd {} already holds {held} keys of medic state under {}; \
                 use --force to replace them",
                to.bridge().endpoints(),
                to.keys().prefix()
            )));
        }
        to.clear()?;
    }
    let snapshot = from.export()?;
    to.import(&snapshot)?;
    Ok(snapshot)
}

/// `medic store …`.
#[derive(Debug, clap::Subcommand)]
pub enum StoreCommand {
    /// Move all state from the embedded store (`<state_dir>/medic.db`) to etcd.
    Migrate(MigrateArgs),
}

/// Where the state goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// An etcd cluster.
    Etcd,
}

/// `medic store migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// Configuration file: where the embedded store is (`state_dir`) and,
    /// without --endpoints, the etcd to fill (its `store:` section).
    #[arg(long, short, default_value = "medic.yaml", env = "MEDIC_CONFIG")]
    pub config: PathBuf,
    /// The kind of store to move to.
    #[arg(long, value_enum, default_value = "etcd")]
    pub to: Target,
    /// etcd client URLs, comma-separated (default: the config's `store:`).
    #[arg(long, value_delimiter = ',')]
    pub endpoints: Vec<String>,
    /// Key prefix in etcd (with --endpoints).
    #[arg(long, default_value = "/medic/")]
    pub prefix: String,
    /// Replace state already under the prefix.
    #[arg(long)]
    pub force: bool,
}

/// Run a `medic store` command.
pub fn main(cmd: StoreCommand) -> ExitCode {
    let StoreCommand::Migrate(args) = cmd;
    match run_migrate(&args) {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("medic store migrate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_migrate(args: &MigrateArgs) -> Result<String, String> {
    let loaded = crate::config::load(&args.config).map_err(|e| e.to_string())?;
    let db = super::sqlite_path(&loaded.state_dir());
    if !db.exists() {
        return Err(format!("no embedded store at {}", db.display()));
    }
    let target = match (&args.to, args.endpoints.is_empty(), &loaded.config.store) {
        (Target::Etcd, false, _) => EtcdConfig::new(args.endpoints.clone(), &args.prefix),
        (Target::Etcd, true, StoreConfig::Etcd(c)) => c.clone(),
        (Target::Etcd, true, StoreConfig::Sqlite {}) => {
            return Err(format!(
                "{} has no `store: {{kind: etcd}}`: give --endpoints",
                args.config.display()
            ));
        }
    };
    let from = SqliteStore::open(&db).map_err(|e| format!("{}: {e}", db.display()))?;
    let to = EtcdStore::open(&target, &loaded.base_dir).map_err(|e| e.to_string())?;
    let s = migrate(&from, &to, args.force).map_err(|e| e.to_string())?;
    Ok(format!(
        "moved {} from {} to etcd {} under {}",
        s.summary(),
        db.display(),
        to.bridge().endpoints(),
        to.keys().prefix()
    ))
}

#[cfg(test)]
mod tests;
