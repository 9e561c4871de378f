//! medic's own telemetry: Prometheus metrics (prometheus-client) and logs (tracing).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels `{source}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    /// Source name.
    pub source: String,
}

/// Labels `{source, reason}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceErrorLabels {
    /// Source name.
    pub source: String,
    /// Short machine-readable reason (`http`, `timeout`, `parse`, `status`).
    pub reason: String,
}

/// Labels `{detector}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DetectorLabels {
    /// Detector name.
    pub detector: String,
}

/// Labels `{state}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// Incident state.
    pub state: String,
}

/// Labels `{executor, outcome}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    /// Executor kind.
    pub executor: String,
    /// `succeeded`, `failed`, `timeout`, `dry_run`, `blocked`.
    pub outcome: String,
}

/// Labels `{executor}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExecutorLabels {
    /// Executor kind.
    pub executor: String,
}

/// Labels `{reason}` of refused API requests.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    /// `unauthenticated` (401) or `forbidden` (403).
    pub reason: String,
}

/// Labels `{guard}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GuardLabels {
    /// `rate_limit`, `restart_loop`, `circuit_breaker`, `concurrency`.
    pub guard: String,
}

/// Labels `{notifier, outcome}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotificationLabels {
    /// Notifier name.
    pub notifier: String,
    /// `sent`, `failed` (an attempt; it is retried) or `gave_up`.
    pub outcome: String,
}

/// Labels `{result}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `ok` or `error`.
    pub result: String,
}

/// Every metric medic exports about itself.
pub struct Metrics {
    /// Samples accepted from sources.
    pub samples_ingested: Family<SourceLabels, Counter>,
    /// Failed collections (scrape or probe errors, malformed payloads).
    pub source_errors: Family<SourceErrorLabels, Counter>,
    /// Active series per push source (bounded by its `max_series`).
    pub active_series: Family<SourceLabels, Gauge>,
    /// Detector evaluations.
    pub detector_evaluations: Family<DetectorLabels, Counter>,
    /// Incidents by state (open ones, plus resolved in the store).
    pub incidents: Family<StateLabels, Gauge>,
    /// Actions run, by executor and outcome.
    pub actions: Family<ActionLabels, Counter>,
    /// Wall time of one step attempt, by executor.
    pub step_duration: Family<ExecutorLabels, Histogram>,
    /// Actions guard rails held back, by guard.
    pub guard_blocks: Family<GuardLabels, Counter>,
    /// Config reloads by result.
    pub reloads: Family<ResultLabels, Counter>,
    /// Notification delivery attempts by notifier and outcome.
    pub notifications: Family<NotificationLabels, Counter>,
    /// API requests refused for want of a token or a role.
    pub api_auth_refusals: Family<RefusalLabels, Counter>,
    /// 1 while the store answers, 0 in degraded mode (etcd unreachable or
    /// without quorum).
    pub store_up: Gauge,
    /// 1 while this node leads (with leader election; always 1 without).
    pub leader: Gauge,
    /// Notifications sent from this node's local spool while the store was
    /// unavailable, by notifier and outcome.
    pub spool_notifications: Family<NotificationLabels, Counter>,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Build the registry.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("medic");
        let samples_ingested = Family::<SourceLabels, Counter>::default();
        registry.register(
            "samples_ingested",
            "Samples accepted from sources",
            samples_ingested.clone(),
        );
        let source_errors = Family::<SourceErrorLabels, Counter>::default();
        registry.register(
            "source_errors",
            "Failed collections: scrape or probe errors and malformed payloads",
            source_errors.clone(),
        );
        let active_series = Family::<SourceLabels, Gauge>::default();
        registry.register(
            "active_series",
            "Active series per push source",
            active_series.clone(),
        );
        let detector_evaluations = Family::<DetectorLabels, Counter>::default();
        registry.register(
            "detector_evaluations",
            "Detector evaluations",
            detector_evaluations.clone(),
        );
        let incidents = Family::<StateLabels, Gauge>::default();
        registry.register("incidents", "Incidents by state", incidents.clone());
        let actions = Family::<ActionLabels, Counter>::default();
        registry.register(
            "actions",
            "Runbook actions by executor and outcome",
            actions.clone(),
        );
        let step_duration = Family::<ExecutorLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0])
        });
        registry.register(
            "step_duration_seconds",
            "Wall time of one runbook step attempt",
            step_duration.clone(),
        );
        let guard_blocks = Family::<GuardLabels, Counter>::default();
        registry.register(
            "guard_blocks",
            "Runbook actions held back by a guard rail, by guard",
            guard_blocks.clone(),
        );
        let reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "config_reloads",
            "Configuration reloads by result",
            reloads.clone(),
        );
        let notifications = Family::<NotificationLabels, Counter>::default();
        registry.register(
            "notifications",
            "Notification delivery attempts by notifier and outcome",
            notifications.clone(),
        );
        let api_auth_refusals = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "api_auth_refusals",
            "API requests refused: no or unknown token (unauthenticated), role too low (forbidden)",
            api_auth_refusals.clone(),
        );
        let store_up = Gauge::default();
        store_up.set(1);
        registry.register(
            "store_up",
            "1 while the store answers; 0 in degraded mode (automated actions paused)",
            store_up.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this node may act (the leader, or no election); 0 on a follower",
            leader.clone(),
        );
        let spool_notifications = Family::<NotificationLabels, Counter>::default();
        registry.register(
            "spool_notifications",
            "Notifications sent directly from the local spool while the store was unavailable",
            spool_notifications.clone(),
        );
        Metrics {
            store_up,
            leader,
            spool_notifications,
            api_auth_refusals,
            notifications,
            samples_ingested,
            source_errors,
            active_series,
            detector_evaluations,
            incidents,
            actions,
            step_duration,
            guard_blocks,
            reloads,
            registry,
        }
    }

    /// Count a source error.
    pub fn source_error(&self, source: &str, reason: &str) {
        self.source_errors
            .get_or_create(&SourceErrorLabels {
                source: source.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Render in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Set up logging: human-readable by default, JSON lines with `json = true`.
/// `RUST_LOG` overrides the default level (`info`).
pub fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: log files and journald get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if json {
        let _ = builder.json().with_current_span(false).try_init();
    } else {
        let _ = builder.try_init();
    }
}
