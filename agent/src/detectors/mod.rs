//! Detectors as configured in `medic.yaml`, bound to series.
//!
//! The state machines live in the pure `medic-detectors` crate; this module
//! selects the series each detector watches, keeps one state machine per label
//! set, and reports state changes. It owns no clock: time arrives with batches
//! and ticks.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use medic_detectors::anomaly::{
    ArtConfig, ContextualConfig, Direction, Ensemble, EnsembleConfig, Model, MultivariateConfig,
    Score, SeasonalConfig,
};
use medic_detectors::{
    BurnRule, Comparison, ErrorRate, ErrorRateConfig, Evaluation, Evidence, ForecastConfig,
    Heartbeat, HeartbeatConfig, SloBurn, SloBurnConfig, State, Threshold, ThresholdConfig,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::duration::Duration;
use crate::config::spanned::Spanned;
use crate::series::key::{CompactLabels, KeyMap, KeySet, labels_key};
use crate::series::selector::Selector;
use crate::series::{Batch, Labels, Millis};

mod forecast;
mod multivariate;
use forecast::ForecastBinding;
use multivariate::{Metric, MultivariateBinding};

/// How bad an incident from this detector is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Needs attention now.
    Critical,
    /// Needs attention soon.
    #[default]
    Warning,
    /// For the record.
    Info,
}

impl Severity {
    /// As written in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// One entry of `detectors:` in `medic.yaml`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct DetectorConfig {
    /// Unique name; runbooks match on it.
    pub name: Spanned<String>,
    /// Severity of the incidents it opens.
    #[serde(default)]
    pub severity: Severity,
    /// A sentence for humans, shown in incidents.
    #[serde(default)]
    pub summary: Option<String>,
    /// The kind of detector and its settings.
    #[serde(flatten)]
    pub kind: DetectorKind,
}

/// The kinds of detector, chosen by `kind:`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DetectorKind {
    /// Value above or below a bound for a while; clears with hysteresis.
    Threshold {
        /// Series selector, e.g. `probe_success{job="web"}`.
        series: Spanned<String>,
        /// Fire when the value is above this.
        #[serde(default)]
        above: Option<f64>,
        /// Fire when the value is below this.
        #[serde(default)]
        below: Option<f64>,
        /// The condition must hold this long before firing (`for` in Prometheus).
        #[serde(default, rename = "for")]
        hold: Duration,
        /// Clear only when the value is back past this bound (hysteresis).
        #[serde(default)]
        clear: Option<f64>,
        /// The clear condition must hold this long.
        #[serde(default)]
        clear_for: Duration,
    },
    /// errors / total over a window, from counters, with a minimum volume.
    ErrorRate {
        /// Selector of the error counter(s), e.g. `http_requests_total{code=~"5.."}`.
        errors: Spanned<String>,
        /// Selector of the total counter(s), e.g. `http_requests_total`.
        total: Spanned<String>,
        /// Labels that identify one incident (default: job, instance).
        #[serde(default = "default_by")]
        by: Vec<String>,
        /// Window the ratio is computed over.
        #[serde(default = "default_window")]
        window: Duration,
        /// Fire when the ratio is above this (0..1).
        max_ratio: f64,
        /// Clear when the ratio is below this (default: max_ratio).
        #[serde(default)]
        clear_ratio: Option<f64>,
        /// Fewer requests than this in the window never page.
        #[serde(default = "default_min_total")]
        min_total: f64,
        /// The ratio must stay high this long.
        #[serde(default, rename = "for")]
        hold: Duration,
    },
    /// SLO burn rate over a bad/total (or good/total) counter pair:
    /// multi-window, multi-burn-rate alerts (Google SRE workbook).
    SloBurn {
        /// Selector of the bad-event counter(s); give this or `good`.
        #[serde(default)]
        errors: Option<Spanned<String>>,
        /// Selector of the good-event counter(s); give this or `errors`.
        #[serde(default)]
        good: Option<Spanned<String>>,
        /// Selector of the total counter(s).
        total: Spanned<String>,
        /// Labels that identify one SLO (default: job, instance).
        #[serde(default = "default_by")]
        by: Vec<String>,
        /// Target fraction of good events, e.g. 0.999.
        objective: f64,
        /// Rules (default: 14.4× over 1h and 5m, 6× over 6h and 30m, 1× over 3d and 6h).
        #[serde(default = "default_burn_windows")]
        windows: Vec<BurnWindow>,
        /// Windows with fewer events count as having this many (a quiet
        /// service does not page on one failure; an outage is not hidden).
        #[serde(default = "default_min_events")]
        min_events: f64,
    },
    /// Statistical anomaly on each selected series: the value is far from
    /// what the series' own history predicts (a robust ensemble of rolling
    /// median/MAD, EWMA and Page–Hinkley change points; or a seasonal baseline;
    /// or a contextual model of the series' learnt patterns).
    Anomaly {
        /// Series selector.
        series: Spanned<String>,
        /// Which model: `auto` (all members), or one of them alone.
        #[serde(default)]
        model: AnomalyModel,
        /// Fire when the anomaly score (0..1) is at least this.
        #[serde(default = "default_anomaly_threshold")]
        threshold: f64,
        /// Clear when the score is below this (default: threshold).
        #[serde(default)]
        clear: Option<f64>,
        /// The score must stay high this long (minimum duration).
        #[serde(default, rename = "for")]
        hold: Duration,
        /// Which deviations count: up, down or both.
        #[serde(default)]
        direction: AnomalyDirection,
        /// Deviations smaller than this (in the series' units) never count.
        #[serde(default)]
        min_abs_deviation: f64,
        /// Points per series before it may score (learning).
        #[serde(default = "default_anomaly_warm_up")]
        warm_up: usize,
        /// After a score, the next `suppress` points must score higher to
        /// count again (one alarm per episode). 0 = off.
        #[serde(default = "default_anomaly_suppress")]
        suppress: usize,
    },
    /// Multivariate anomaly over several metrics of one service: a PCA
    /// model per `by` group learns how the metrics move together and scores
    /// a row of their values every `step` (squared prediction error: a
    /// broken correlation, though each metric stays in its usual range;
    /// Hotelling's T²: all of them together too far), naming the metrics at
    /// fault.
    Multivariate {
        /// The metrics of a row, by a name of your choice: name → series
        /// selector. At least 2. When a selector matches several series of
        /// a group (one per status code, say), their values are summed.
        metrics: BTreeMap<String, Spanned<String>>,
        /// Metrics that are counters: the row takes their per-second rate
        /// over the last step (a decrease counts as a reset from 0), as a
        /// raw counter only grows and says nothing of how the service is.
        #[serde(default)]
        rate: Vec<String>,
        /// Labels that identify one service: one model, one incident
        /// (default: job, instance). Every metric's series must carry them.
        #[serde(default = "default_by")]
        by: Vec<String>,
        /// A row is judged every step, from each metric's latest value (or
        /// rate) of the last two steps; a row missing a metric is skipped.
        /// At least the scrape interval of the metrics.
        #[serde(default = "default_multivariate_step")]
        step: Duration,
        /// Fire when the row's score (0..1) is at least this.
        #[serde(default = "default_anomaly_threshold")]
        threshold: f64,
        /// Clear when the score is below this (default: threshold).
        #[serde(default)]
        clear: Option<f64>,
        /// The score must stay high this long (minimum duration).
        #[serde(default, rename = "for")]
        hold: Duration,
        /// The PCA model, one per group (the defaults suit most services;
        /// `min_train` is the warm-up, in rows).
        #[serde(default)]
        pca: MultivariateConfig,
    },
    /// A trend heading for a limit ("disk full in 4 h"): a robust
    /// (Theil–Sen) line through each selected series' recent values fires
    /// when it is predicted to cross `above` (or `below`) within `horizon`,
    /// before anything has broken.
    Forecast {
        /// Series selector, e.g. `node_filesystem_avail_bytes{mountpoint="/"}`.
        series: Spanned<String>,
        /// The limit a rising series must not reach (e.g. 95 for a % used).
        #[serde(default)]
        above: Option<f64>,
        /// The limit a falling series must not reach (e.g. 0 bytes free).
        #[serde(default)]
        below: Option<f64>,
        /// Fire when the crossing is predicted at most this far ahead.
        horizon: Duration,
        /// The trend is fitted over this much recent time (32 slots of it).
        #[serde(default = "default_forecast_window")]
        window: Duration,
        /// The prediction must stay within the horizon this long before
        /// firing (one noisy hour does not page).
        #[serde(default = "default_forecast_hold", rename = "for")]
        hold: Duration,
        /// Clear only when the crossing is predicted further than this
        /// (hysteresis; default and minimum: `horizon`).
        #[serde(default)]
        clear_horizon: Option<Duration>,
        /// The clear condition must hold this long.
        #[serde(default = "default_forecast_hold")]
        clear_for: Duration,
        /// Slots of `window` with values needed before any prediction (the
        /// warm-up; at least 2 of the 32).
        #[serde(default = "default_forecast_min_points")]
        min_points: usize,
    },
    /// No successful probe (sample value ≠ 0), or no fresh sample, within a timeout.
    Heartbeat {
        /// Series selector, e.g. `probe_success{job="web"}` or `up{job="app"}`.
        series: Spanned<String>,
        /// Fire when the last success is older than this.
        timeout: Duration,
        /// Count any fresh sample as a success, whatever its value.
        #[serde(default)]
        any_sample: bool,
    },
}

fn default_by() -> Vec<String> {
    vec!["job".into(), "instance".into()]
}
fn default_forecast_window() -> Duration {
    Duration::from_secs(2 * 3600)
}
fn default_forecast_hold() -> Duration {
    Duration::from_secs(600)
}
fn default_forecast_min_points() -> usize {
    8
}
fn default_window() -> Duration {
    Duration::from_secs(60)
}
fn default_min_total() -> f64 {
    10.0
}
fn default_min_events() -> f64 {
    100.0
}
fn default_anomaly_threshold() -> f64 {
    0.9
}
fn default_anomaly_warm_up() -> usize {
    30
}
fn default_anomaly_suppress() -> usize {
    10
}
fn default_multivariate_step() -> Duration {
    Duration::from_secs(10)
}

/// The model of an `anomaly` detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyModel {
    /// Median/MAD, EWMA and Page–Hinkley combined by their maximum. (The
    /// seasonal model is opt-in: on short or aperiodic histories it can
    /// settle on a spurious period with too narrow a band.)
    #[default]
    Auto,
    /// Rolling median / MAD robust z-score.
    Mad,
    /// EWMA mean and variance control chart.
    Ewma,
    /// Page–Hinkley (CUSUM) change points.
    PageHinkley,
    /// Seasonal baseline, the period (daily, weekly, …) found in the data.
    Seasonal,
    /// Contextual model (after CAD OSE): learns which quantised values
    /// follow which contexts and scores what it did not foresee, with a
    /// rest of 30 points after each alarm. Catches breaks of a learnt
    /// pattern as well as values outside everything seen; an extreme value
    /// (60 σ from a slow baseline, or a tenth of the range beyond every
    /// value seen) scores 1 even during the rest. Learns its value
    /// range from the first 150 points (scores 0 until then); its alarm
    /// level is a score of 0.75. Costs more than the others: about 5 µs per
    /// point and up to ~100 KB of state per series.
    Contextual,
    /// The contextual model beside a fuzzy ART model of the last 4 values'
    /// level and shape (a new cluster of windows is an anomaly); a
    /// contextual alarm that ART does not also find new counts × 0.8; two
    /// more ART models judge the means of blocks of 4 and of 24 values.
    /// The best of medic's models on NAB (76.99 standard, against 71.81
    /// for `contextual`). Learns for 150 points; about 8 µs per point and
    /// ~150 KB of state per series.
    ContextualArt,
}

/// Which deviations an `anomaly` detector counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyDirection {
    /// Only values above the expected one.
    Up,
    /// Only values below.
    Down,
    /// Both.
    #[default]
    Both,
}

impl AnomalyModel {
    fn ensemble(
        self,
        direction: AnomalyDirection,
        min_abs_deviation: f64,
        warm_up: usize,
        suppress: usize,
    ) -> EnsembleConfig {
        let all = EnsembleConfig::default();
        let only = |c: EnsembleConfig| EnsembleConfig {
            mad: None,
            ewma: None,
            page_hinkley: None,
            seasonal: None,
            ..c
        };
        let mut c = match self {
            AnomalyModel::Auto => all,
            AnomalyModel::Mad => EnsembleConfig {
                mad: all.mad,
                ..only(all)
            },
            AnomalyModel::Ewma => EnsembleConfig {
                ewma: all.ewma,
                ..only(all)
            },
            AnomalyModel::PageHinkley => EnsembleConfig {
                page_hinkley: all.page_hinkley,
                ..only(all)
            },
            AnomalyModel::Seasonal => EnsembleConfig {
                seasonal: Some(SeasonalConfig::default()),
                ..only(all)
            },
            AnomalyModel::Contextual => EnsembleConfig {
                contextual: Some(ContextualConfig::default()),
                ..only(all)
            },
            AnomalyModel::ContextualArt => EnsembleConfig {
                contextual: Some(ContextualConfig::default()),
                art: Some(ArtConfig::default()),
                ..only(all)
            },
        };
        c.direction = match direction {
            AnomalyDirection::Up => Direction::Up,
            AnomalyDirection::Down => Direction::Down,
            AnomalyDirection::Both => Direction::Both,
        };
        c.min_abs_deviation = min_abs_deviation;
        c.warm_up = warm_up;
        c.suppress = suppress;
        c
    }
}

/// One rule of an `slo_burn` detector.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BurnWindow {
    /// Long window (significance).
    pub long: Duration,
    /// Short window (fast reset).
    pub short: Duration,
    /// Burn rate both must reach.
    pub burn_rate: f64,
}

fn default_burn_windows() -> Vec<BurnWindow> {
    BurnRule::workbook()
        .into_iter()
        .map(|r| BurnWindow {
            long: Duration::from_millis(r.long_ms as u64),
            short: Duration::from_millis(r.short_ms as u64),
            burn_rate: r.burn_rate,
        })
        .collect()
}

impl DetectorKind {
    /// The selectors this detector reads, with their positions (for validation).
    pub fn selectors(&self) -> Vec<&Spanned<String>> {
        match self {
            DetectorKind::Threshold { series, .. }
            | DetectorKind::Heartbeat { series, .. }
            | DetectorKind::Anomaly { series, .. }
            | DetectorKind::Forecast { series, .. } => vec![series],
            DetectorKind::ErrorRate { errors, total, .. } => vec![errors, total],
            DetectorKind::SloBurn {
                errors,
                good,
                total,
                ..
            } => errors.iter().chain(good.iter()).chain([total]).collect(),
            DetectorKind::Multivariate { metrics, .. } => metrics.values().collect(),
        }
    }
    /// Kind name as written in YAML.
    pub fn name(&self) -> &'static str {
        match self {
            DetectorKind::Threshold { .. } => "threshold",
            DetectorKind::ErrorRate { .. } => "error_rate",
            DetectorKind::SloBurn { .. } => "slo_burn",
            DetectorKind::Anomaly { .. } => "anomaly",
            DetectorKind::Multivariate { .. } => "multivariate",
            DetectorKind::Forecast { .. } => "forecast",
            DetectorKind::Heartbeat { .. } => "heartbeat",
        }
    }
}

/// A detector state change for one label set.
#[derive(Debug, Clone)]
pub struct Change {
    /// Detector name.
    pub detector: String,
    /// Labels identifying what is failing.
    pub labels: Labels,
    /// The evaluation that changed state (or first observed it).
    pub evaluation: Evaluation,
    /// More evidence for the timeline (anomaly: expected band and score).
    pub detail: Option<serde_json::Value>,
}

/// One label set a threshold detector follows.
struct ThresholdSeries {
    machine: Threshold,
    labels: CompactLabels,
    /// The batch origin (source, target) it comes from, to notice when a
    /// complete batch no longer has it; shared by the batch's series.
    origin: Arc<(String, String)>,
}

enum Machines {
    Threshold {
        selector: Selector,
        cfg: ThresholdConfig,
        // Each label set's machine, by its key (`series::key::labels_key`).
        by_series: KeyMap<ThresholdSeries>,
    },
    ErrorRate {
        errors: Selector,
        total: Selector,
        by: Vec<String>,
        cfg: RatioConfig,
        // Latest counter value per full series, so that groups spanning several
        // series (or targets) are summed consistently.
        errors_by_group: GroupedCounters,
        total_by_group: GroupedCounters,
        groups: HashMap<Labels, RatioMachine>,
    },
    Heartbeat {
        selector: Selector,
        cfg: HeartbeatConfig,
        any_sample: bool,
        by_series: HashMap<Labels, Heartbeat>,
    },
    Anomaly {
        selector: Selector,
        model: AnomalyModel,
        /// Boxed: the members' configurations make it the largest variant.
        ensemble: Box<EnsembleConfig>,
        cfg: ThresholdConfig,
        by_series: HashMap<Labels, AnomalySeries>,
    },
    /// Boxed: its configuration makes it the largest variant.
    Multivariate(Box<MultivariateBinding>),
    Forecast(Box<ForecastBinding>),
}

/// One label set an anomaly detector follows.
struct AnomalySeries {
    /// The model: learnt state, saved and restored.
    model: Ensemble,
    /// The lifecycle over its score (not saved: a restart starts it over).
    lifecycle: Threshold,
    /// Whether the lifecycle has answered since it was made. Its first
    /// answer is always reported (after a restart it resolves an incident
    /// left open); later ones only when the state changes.
    answered: bool,
}

impl AnomalySeries {
    fn new(model: Ensemble, cfg: &ThresholdConfig) -> Self {
        AnomalySeries {
            model,
            lifecycle: Threshold::new(cfg.clone()),
            answered: false,
        }
    }
}

/// One configured detector with its per-label-set state machines.
pub struct Bound {
    /// The configuration it was built from (to keep state across reloads when unchanged).
    pub config: DetectorConfig,
    machines: Machines,
}

/// The lifecycle over a score in [0, 1]: fires when the score is at least
/// `threshold` for `hold`, clears below `clear` (default: threshold).
fn score_lifecycle(threshold: f64, clear: Option<f64>, hold: Duration) -> ThresholdConfig {
    ThresholdConfig {
        comparison: Comparison::Above,
        // "at least": a score equal to the threshold fires.
        value: threshold - f64::EPSILON,
        hold_ms: hold.millis(),
        clear_value: clear.map(|c| c - f64::EPSILON),
        clear_hold_ms: 0,
    }
}

/// The side and value of `above:` / `below:` (validated at load time to
/// be exactly one; neither never fires).
fn bound(above: Option<f64>, below: Option<f64>) -> (Comparison, f64) {
    match (above, below) {
        (Some(a), _) => (Comparison::Above, a),
        (None, Some(b)) => (Comparison::Below, b),
        (None, None) => (Comparison::Above, f64::INFINITY),
    }
}

fn parse_sel(s: &Spanned<String>) -> Selector {
    // Validated at load time; an error here is a bug, so fall back to a
    // selector that matches nothing rather than panic in the engine.
    s.value.parse().unwrap_or_else(|_| Selector {
        metric: Some("__invalid__".into()),
        matchers: vec![],
    })
}

impl Bound {
    /// Build from config.
    pub fn new(config: DetectorConfig) -> Self {
        let machines = match &config.kind {
            DetectorKind::Threshold {
                series,
                above,
                below,
                hold,
                clear,
                clear_for,
            } => {
                let (comparison, value) = bound(*above, *below);
                Machines::Threshold {
                    selector: parse_sel(series),
                    cfg: ThresholdConfig {
                        comparison,
                        value,
                        hold_ms: hold.millis(),
                        clear_value: *clear,
                        clear_hold_ms: clear_for.millis(),
                    },
                    by_series: KeyMap::default(),
                }
            }
            DetectorKind::ErrorRate {
                errors,
                total,
                by,
                window,
                max_ratio,
                clear_ratio,
                min_total,
                hold,
            } => Machines::ErrorRate {
                errors: parse_sel(errors),
                total: parse_sel(total),
                by: by.clone(),
                cfg: RatioConfig::ErrorRate(ErrorRateConfig {
                    window_ms: window.millis(),
                    max_ratio: *max_ratio,
                    min_total: *min_total,
                    hold_ms: hold.millis(),
                    clear_ratio: *clear_ratio,
                }),
                errors_by_group: GroupedCounters::default(),
                total_by_group: GroupedCounters::default(),
                groups: HashMap::new(),
            },
            DetectorKind::SloBurn {
                errors,
                good,
                total,
                by,
                objective,
                windows,
                min_events,
            } => Machines::ErrorRate {
                errors: parse_sel(errors.as_ref().or(good.as_ref()).unwrap_or(total)),
                total: parse_sel(total),
                by: by.clone(),
                cfg: RatioConfig::SloBurn(SloBurnConfig {
                    objective: *objective,
                    rules: windows
                        .iter()
                        .map(|w| BurnRule {
                            long_ms: w.long.millis(),
                            short_ms: w.short.millis(),
                            burn_rate: w.burn_rate,
                        })
                        .collect(),
                    min_events: *min_events,
                    counts_good: errors.is_none(),
                }),
                errors_by_group: GroupedCounters::default(),
                total_by_group: GroupedCounters::default(),
                groups: HashMap::new(),
            },
            DetectorKind::Anomaly {
                series,
                model,
                threshold,
                clear,
                hold,
                direction,
                min_abs_deviation,
                warm_up,
                suppress,
            } => Machines::Anomaly {
                selector: parse_sel(series),
                model: *model,
                ensemble: Box::new(model.ensemble(
                    *direction,
                    *min_abs_deviation,
                    *warm_up,
                    *suppress,
                )),
                cfg: score_lifecycle(*threshold, *clear, *hold),
                by_series: HashMap::new(),
            },
            DetectorKind::Multivariate {
                metrics,
                rate,
                by,
                step,
                threshold,
                clear,
                hold,
                pca,
            } => Machines::Multivariate(Box::new(MultivariateBinding::new(
                metrics
                    .iter()
                    .map(|(name, series)| Metric {
                        name: name.clone(),
                        selector: parse_sel(series),
                        rate: rate.contains(name),
                    })
                    .collect(),
                by.clone(),
                step.millis(),
                *pca,
                score_lifecycle(*threshold, *clear, *hold),
            ))),
            DetectorKind::Forecast {
                series,
                above,
                below,
                horizon,
                window,
                hold,
                clear_horizon,
                clear_for,
                min_points,
            } => {
                let (comparison, limit) = bound(*above, *below);
                Machines::Forecast(Box::new(ForecastBinding::new(
                    parse_sel(series),
                    ForecastConfig {
                        comparison,
                        limit,
                        horizon_ms: horizon.millis(),
                        hold_ms: hold.millis(),
                        clear_horizon_ms: clear_horizon.unwrap_or(*horizon).millis(),
                        clear_hold_ms: clear_for.millis(),
                        window_ms: window.millis(),
                        min_points: *min_points,
                        ..ForecastConfig::default()
                    },
                )))
            }
            DetectorKind::Heartbeat {
                series,
                timeout,
                any_sample,
            } => Machines::Heartbeat {
                selector: parse_sel(series),
                cfg: HeartbeatConfig {
                    timeout_ms: timeout.millis(),
                },
                any_sample: *any_sample,
                by_series: HashMap::new(),
            },
        };
        Bound { config, machines }
    }

    /// Detector name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Fingerprint of the configuration learnt state belongs to.
    pub fn config_fingerprint(&self) -> String {
        let text = serde_json::to_string(&self.config.kind).unwrap_or_default();
        crate::incidents::fingerprint(&text, &Labels::new())
    }

    /// Whether it learns: its learnt state is saved to the store and
    /// restored at start (anomaly, multivariate and forecast detectors).
    pub fn learns(&self) -> bool {
        matches!(
            self.machines,
            Machines::Anomaly { .. } | Machines::Multivariate(_) | Machines::Forecast(_)
        )
    }

    /// Learnt model states to save, per series or group (empty unless it
    /// [`learns`](Self::learns)).
    pub fn model_states(&self) -> Vec<(Labels, String)> {
        match &self.machines {
            Machines::Anomaly { by_series, .. } => by_series
                .iter()
                .filter_map(|(l, a)| Some((l.clone(), serde_json::to_string(&a.model).ok()?)))
                .collect(),
            Machines::Multivariate(b) => b.model_states(),
            Machines::Forecast(b) => b.model_states(),
            _ => Vec::new(),
        }
    }

    /// Restore saved model states; answers how many were usable.
    pub fn restore_model_states(&mut self, states: Vec<(Labels, String)>) -> usize {
        match &mut self.machines {
            Machines::Anomaly { by_series, cfg, .. } => {
                let mut n = 0;
                for (l, text) in states {
                    if let Ok(m) = serde_json::from_str::<Ensemble>(&text) {
                        by_series.insert(l, AnomalySeries::new(m, cfg));
                        n += 1;
                    }
                }
                n
            }
            Machines::Multivariate(b) => b.restore_model_states(states),
            Machines::Forecast(b) => b.restore_model_states(states),
            _ => 0,
        }
    }

    /// Whether this detector reads the series.
    pub fn selects(&self, name: &str, labels: &Labels) -> bool {
        match &self.machines {
            Machines::Threshold { selector, .. }
            | Machines::Heartbeat { selector, .. }
            | Machines::Anomaly { selector, .. } => selector.matches(name, labels),
            Machines::ErrorRate { errors, total, .. } => {
                errors.matches(name, labels) || total.matches(name, labels)
            }
            Machines::Multivariate(b) => b.selects(name, labels),
            Machines::Forecast(b) => b.selects(name, labels),
        }
    }

    /// Feed a batch; returns the evaluations the engine acts on (per-series
    /// threshold, anomaly and forecast machines: changes and first answers;
    /// other kinds: all) and how many state machines were evaluated.
    pub fn observe(&mut self, batch: &Batch) -> (Vec<Change>, u64) {
        let name = self.config.name.value.clone();
        let mut out = Vec::new();
        let mut evaluations = 0;
        match &mut self.machines {
            Machines::Threshold {
                selector,
                cfg,
                by_series,
            } => {
                let origin = Arc::new((batch.source.clone(), batch.target.clone()));
                let mut seen = KeySet::default();
                for s in &batch.samples {
                    if !selector.matches(&s.name, &s.labels) {
                        continue;
                    }
                    let key = labels_key(&s.labels);
                    let first = !by_series.contains_key(&key);
                    let t = by_series.entry(key).or_insert_with(|| ThresholdSeries {
                        machine: Threshold::new(cfg.clone()),
                        labels: CompactLabels::new(&s.labels),
                        origin: origin.clone(),
                    });
                    if !t.labels.same_as(&s.labels) {
                        // Two label sets with one 64-bit key (keys are keyed
                        // SipHash: not expected in practice). Judge neither
                        // as the other.
                        tracing::warn!(detector = %name, "series key collision; sample skipped");
                        continue;
                    }
                    if !Arc::ptr_eq(&t.origin, &origin) && *t.origin != *origin {
                        t.origin = origin.clone();
                    }
                    // Only what the engine acts on: a change, or the first
                    // answer of a new machine (after a restart of medic it
                    // resolves an incident left open); the evidence text is
                    // built for those alone.
                    let e = if first {
                        Some(t.machine.observe(s.at, s.value))
                    } else {
                        t.machine.observe_change(s.at, s.value)
                    };
                    evaluations += 1;
                    if batch.complete {
                        seen.insert(key);
                    }
                    if let Some(e) = e {
                        out.push(Change {
                            detail: None,
                            detector: name.clone(),
                            labels: s.labels.clone(),
                            evaluation: e,
                        });
                    }
                }
                if batch.complete {
                    // Like Prometheus: a series its target stopped exposing is
                    // stale, and a condition on a stale series no longer holds.
                    let stale: Vec<u64> = by_series
                        .iter()
                        .filter(|(k, t)| *t.origin == *origin && !seen.contains(*k))
                        .map(|(k, _)| *k)
                        .collect();
                    for k in stale {
                        let Some(t) = by_series.remove(&k) else {
                            continue;
                        };
                        out.push(Change {
                            detail: None,
                            detector: name.clone(),
                            evaluation: Evaluation {
                                state: State::Ok,
                                changed: t.machine.state() != State::Ok,
                                evidence: Evidence {
                                    at: batch.at,
                                    observed: f64::NAN,
                                    threshold: cfg.value,
                                    since: None,
                                    reason: "series no longer exposed by its target (stale)".into(),
                                },
                            },
                            labels: t.labels.to_labels(),
                        });
                    }
                }
            }
            Machines::ErrorRate {
                errors,
                total,
                by,
                cfg,
                errors_by_group,
                total_by_group,
                groups,
            } => {
                let mut touched: HashMap<Labels, Millis> = HashMap::new();
                for s in &batch.samples {
                    let is_err = errors.matches(&s.name, &s.labels);
                    let is_tot = total.matches(&s.name, &s.labels);
                    if !is_err && !is_tot {
                        continue;
                    }
                    let key = (s.name.clone(), s.labels.clone());
                    let g = group_of(&s.labels, by);
                    if is_err {
                        errors_by_group.set(&g, key.clone(), s.value);
                    }
                    if is_tot {
                        total_by_group.set(&g, key, s.value);
                    }
                    let t = touched.entry(g).or_insert(s.at);
                    *t = (*t).max(s.at);
                }
                for (g, at) in touched {
                    let e_sum = errors_by_group.sum(&g);
                    let t_sum = total_by_group.sum(&g);
                    let m = groups.entry(g.clone()).or_insert_with(|| cfg.machine());
                    let e = m.observe(at, e_sum, t_sum);
                    evaluations += 1;
                    out.push(Change {
                        detail: None,
                        detector: name.clone(),
                        labels: g,
                        evaluation: e,
                    });
                }
            }
            Machines::Anomaly {
                selector,
                model,
                ensemble,
                cfg,
                by_series,
            } => {
                for s in &batch.samples {
                    if !selector.matches(&s.name, &s.labels) {
                        continue;
                    }
                    // The labels are cloned for a new series only.
                    let a = match by_series.get_mut(&s.labels) {
                        Some(a) => a,
                        None => by_series
                            .entry(s.labels.clone())
                            .or_insert_with(|| AnomalySeries::new(Ensemble::new(**ensemble), cfg)),
                    };
                    let score = a.model.observe(s.at, s.value);
                    // Suppression gives one alarm per episode; once the
                    // alarm is pending or firing, the unsuppressed score
                    // says whether the value is still anomalous, so a
                    // lasting shift keeps its incident open (and a `for`
                    // hold can be met) until the model has learnt the new
                    // level.
                    let judged = match a.lifecycle.state() {
                        State::Pending | State::Firing => a.model.unsuppressed(&score),
                        _ => score.score,
                    };
                    evaluations += 1;
                    // Like the threshold detector: only what the engine acts
                    // on (a change, or a new lifecycle's first answer) gets
                    // its evidence text and detail built.
                    let e = if a.answered {
                        a.lifecycle.observe_change(s.at, judged)
                    } else {
                        a.answered = true;
                        Some(a.lifecycle.observe(s.at, judged))
                    };
                    let Some(mut e) = e else {
                        continue;
                    };
                    let score = Score {
                        score: judged,
                        ..score
                    };
                    e.evidence.observed = s.value;
                    e.evidence.reason = anomaly_reason(&score, cfg.value + f64::EPSILON);
                    out.push(Change {
                        detector: name.clone(),
                        labels: s.labels.clone(),
                        evaluation: e,
                        detail: Some(serde_json::json!({
                            "model": model,
                            "score": score.score,
                            "expected": finite(score.expected),
                            "lower": finite(score.lower),
                            "upper": finite(score.upper),
                            "observed": finite(score.observed),
                            "warming_up": score.warming_up,
                        })),
                    });
                }
            }
            Machines::Multivariate(b) => return b.observe(&name, batch),
            Machines::Forecast(b) => return b.observe(&name, batch),
            Machines::Heartbeat {
                selector,
                cfg,
                any_sample,
                by_series,
            } => {
                for s in &batch.samples {
                    if !selector.matches(&s.name, &s.labels) {
                        continue;
                    }
                    let m = by_series
                        .entry(s.labels.clone())
                        .or_insert_with(|| Heartbeat::new(cfg.clone(), s.at));
                    let e = if *any_sample || (s.value != 0.0 && !s.value.is_nan()) {
                        m.success(s.at)
                    } else {
                        m.failure(s.at)
                    };
                    evaluations += 1;
                    out.push(Change {
                        detail: None,
                        detector: name.clone(),
                        labels: s.labels.clone(),
                        evaluation: e,
                    });
                }
            }
        }
        (out, evaluations)
    }

    /// Let time pass (heartbeat timeouts).
    pub fn tick(&mut self, now: Millis) -> Vec<Change> {
        let mut out = Vec::new();
        if let Machines::Heartbeat { by_series, .. } = &mut self.machines {
            for (labels, m) in by_series.iter_mut() {
                let e = m.tick(now);
                if e.changed {
                    out.push(Change {
                        detail: None,
                        detector: self.config.name.value.clone(),
                        labels: labels.clone(),
                        evaluation: e,
                    });
                }
            }
        }
        out
    }

    /// Current state for a label set, if known.
    pub fn state(&self, labels: &Labels) -> Option<State> {
        match &self.machines {
            Machines::Threshold { by_series, .. } => by_series
                .get(&labels_key(labels))
                .filter(|t| t.labels.same_as(labels))
                .map(|t| t.machine.state()),
            Machines::ErrorRate { groups, .. } => groups.get(labels).map(|m| m.state()),
            Machines::Heartbeat { by_series, .. } => by_series.get(labels).map(|m| m.state()),
            Machines::Anomaly { by_series, .. } => {
                by_series.get(labels).map(|a| a.lifecycle.state())
            }
            Machines::Multivariate(b) => b.state(labels),
            Machines::Forecast(b) => b.state(labels),
        }
    }
}

/// Detectors over a pair of counters (errors or good events, and total).
#[derive(Debug, Clone)]
enum RatioConfig {
    ErrorRate(ErrorRateConfig),
    SloBurn(SloBurnConfig),
}

impl RatioConfig {
    fn machine(&self) -> RatioMachine {
        match self {
            RatioConfig::ErrorRate(c) => RatioMachine::ErrorRate(ErrorRate::new(c.clone())),
            RatioConfig::SloBurn(c) => RatioMachine::SloBurn(Box::new(SloBurn::new(c.clone()))),
        }
    }
}

enum RatioMachine {
    ErrorRate(ErrorRate),
    SloBurn(Box<SloBurn>),
}

impl RatioMachine {
    fn observe(&mut self, t: Millis, first: f64, total: f64) -> Evaluation {
        match self {
            RatioMachine::ErrorRate(m) => m.observe(t, first, total),
            RatioMachine::SloBurn(m) => m.observe(t, first, total),
        }
    }
    fn state(&self) -> State {
        match self {
            RatioMachine::ErrorRate(m) => m.state(),
            RatioMachine::SloBurn(m) => m.state(),
        }
    }
}

/// The latest value of each counter series, kept per incident group, so a
/// group's sum reads only its own series (not every series the detector has
/// seen) and is exact (a running sum could drift on fractional counters, and
/// a tiny decrease would look like a counter reset).
#[derive(Default)]
struct GroupedCounters {
    by_group: HashMap<Labels, HashMap<(String, Labels), f64>>,
}

impl GroupedCounters {
    fn set(&mut self, group: &Labels, series: (String, Labels), value: f64) {
        match self.by_group.get_mut(group) {
            Some(m) => {
                m.insert(series, value);
            }
            None => {
                self.by_group
                    .insert(group.clone(), HashMap::from([(series, value)]));
            }
        }
    }

    fn sum(&self, group: &Labels) -> f64 {
        self.by_group
            .get(group)
            .map(|m| m.values().filter(|v| v.is_finite()).sum())
            .unwrap_or(0.0)
    }
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

fn anomaly_reason(s: &Score, threshold: f64) -> String {
    if s.warming_up {
        return format!("learning the series (value {})", trim(s.observed));
    }
    format!(
        "value {}, expected {} [{}, {}]: anomaly score {:.2} (fires at {})",
        trim(s.observed),
        trim(s.expected),
        trim(s.lower),
        trim(s.upper),
        s.score,
        trim(threshold),
    )
}

/// A number for a sentence: at most three decimals.
fn trim(v: f64) -> String {
    if v.is_finite() {
        let r = (v * 1000.0).round() / 1000.0;
        format!("{r}")
    } else {
        format!("{v}")
    }
}

fn group_of(labels: &Labels, by: &[String]) -> Labels {
    by.iter()
        .filter_map(|k| labels.get(k).map(|v| (k.clone(), v.clone())))
        .collect()
}

#[cfg(test)]
mod tests;
