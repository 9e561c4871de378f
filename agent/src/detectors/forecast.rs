//! `kind: forecast`: one [`Forecast`] per series, a robust (Theil–Sen)
//! trend through the series' recent values that fires when the trend is
//! predicted to cross a limit within a horizon ("disk full in 4 h"),
//! before anything has broken.

use std::collections::HashMap;

use medic_detectors::{Forecast, ForecastConfig};

use super::{Change, finite};
use crate::series::selector::Selector;
use crate::series::{Batch, Labels};

/// A configured `forecast` detector: its selector and a trend per series.
pub(super) struct ForecastBinding {
    selector: Selector,
    cfg: ForecastConfig,
    by_series: HashMap<Labels, Followed>,
}

/// One series' trend, and whether it has answered since this medic (or
/// this configuration) started following it: the first answer is always
/// reported (after a restart it resolves an incident left open), later ones
/// only when the state changes.
struct Followed {
    forecast: Forecast,
    answered: bool,
}

impl Followed {
    fn new(forecast: Forecast) -> Self {
        Followed {
            forecast,
            answered: false,
        }
    }
}

impl ForecastBinding {
    pub(super) fn new(selector: Selector, cfg: ForecastConfig) -> Self {
        ForecastBinding {
            selector,
            cfg,
            by_series: HashMap::new(),
        }
    }

    pub(super) fn selects(&self, name: &str, labels: &Labels) -> bool {
        self.selector.matches(name, labels)
    }

    pub(super) fn state(&self, labels: &Labels) -> Option<medic_detectors::State> {
        self.by_series.get(labels).map(|f| f.forecast.state())
    }

    pub(super) fn model_states(&self) -> Vec<(Labels, String)> {
        self.by_series
            .iter()
            .filter_map(|(l, f)| Some((l.clone(), serde_json::to_string(&f.forecast).ok()?)))
            .collect()
    }

    /// Restores saved trends; one saved under another configuration (the
    /// limit or window changed) is dropped, as its slots would mislead.
    pub(super) fn restore_model_states(&mut self, states: Vec<(Labels, String)>) -> usize {
        let mut n = 0;
        let fresh = Forecast::new(self.cfg);
        for (l, text) in states {
            if let Ok(f) = serde_json::from_str::<Forecast>(&text)
                && f.config() == fresh.config()
            {
                self.by_series.insert(l, Followed::new(f));
                n += 1;
            }
        }
        n
    }

    /// Feeds the batch's selected samples; reports what the engine acts on
    /// (state changes and each series' first answer), with the prediction
    /// as detail, and how many samples were judged.
    pub(super) fn observe(&mut self, detector: &str, batch: &Batch) -> (Vec<Change>, u64) {
        let mut out = Vec::new();
        let mut judged = 0;
        for s in &batch.samples {
            if !self.selector.matches(&s.name, &s.labels) {
                continue;
            }
            // The labels are cloned for a new series only.
            let f = match self.by_series.get_mut(&s.labels) {
                Some(f) => f,
                None => self
                    .by_series
                    .entry(s.labels.clone())
                    .or_insert_with(|| Followed::new(Forecast::new(self.cfg))),
            };
            judged += 1;
            let evaluation = if f.answered {
                f.forecast.observe_change(s.at, s.value)
            } else {
                f.answered = true;
                Some(f.forecast.observe(s.at, s.value))
            };
            if let Some(evaluation) = evaluation {
                out.push(Change {
                    detector: detector.to_string(),
                    labels: s.labels.clone(),
                    detail: Some(detail(&f.forecast)),
                    evaluation,
                });
            }
        }
        (out, judged)
    }
}

/// The prediction for the timeline: the trend, when the limit is reached
/// (seconds from the sample; 0: already past it; null: not heading there),
/// and the band of the slot means around the trend (for the chart).
fn detail(f: &Forecast) -> serde_json::Value {
    let cfg = f.config();
    let score = f.score();
    let secs = |ms: Option<i64>| ms.map(|m| m as f64 / 1000.0);
    let p = f.prediction();
    serde_json::json!({
        "model": "forecast",
        "limit": cfg.limit,
        "comparison": match cfg.comparison {
            medic_detectors::Comparison::Above => "above",
            medic_detectors::Comparison::Below => "below",
        },
        "horizon_seconds": cfg.horizon_ms as f64 / 1000.0,
        "level": p.and_then(|p| finite(p.level)),
        "slope_per_hour": p.and_then(|p| finite(p.slope_per_hour)),
        "breach_in_seconds": p.and_then(|p| secs(p.breach_in_ms)),
        "earliest_seconds": p.and_then(|p| secs(p.earliest_ms)),
        "latest_seconds": p.and_then(|p| secs(p.latest_ms)),
        "expected": finite(score.expected),
        "lower": finite(score.lower),
        "upper": finite(score.upper),
        "observed": finite(score.observed),
        "warming_up": p.is_none(),
    })
}

#[cfg(test)]
mod tests;
