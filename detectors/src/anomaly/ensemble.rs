//! The three detectors combined into one score, with noise controls.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{
    Art, ArtConfig, Cluster, ClusterConfig, Contextual, ContextualConfig, Direction, Ewma,
    EwmaConfig, Model, PageHinkley, PageHinkleyConfig, RollingMad, RollingMadConfig, Score,
    Seasonal, SeasonalConfig,
};
use crate::Millis;

/// Parameters of [`Ensemble`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnsembleConfig {
    /// The rolling median / MAD member (`None`: not used). Its `direction`
    /// is overridden by the ensemble's.
    pub mad: Option<RollingMadConfig>,
    /// The EWMA member (`None`: not used). Its `direction` is overridden by
    /// the ensemble's.
    pub ewma: Option<EwmaConfig>,
    /// The Page–Hinkley member (`None`: not used). Its `direction` is
    /// overridden by the ensemble's.
    pub page_hinkley: Option<PageHinkleyConfig>,
    /// The seasonal baseline member (`None`: not used). Its `direction` is
    /// overridden by the ensemble's.
    pub seasonal: Option<SeasonalConfig>,
    /// The window clustering member (`None`: not used). Its `direction` is
    /// overridden by the ensemble's.
    pub cluster: Option<ClusterConfig>,
    /// The contextual member (`None`: not used). Its `direction` is
    /// overridden by the ensemble's.
    pub contextual: Option<ContextualConfig>,
    /// The fuzzy ART member (`None`: not used). It has no expected value of
    /// its own, so `direction` and `min_abs_deviation` judge its vote
    /// against the first other member's expected value. Beside the
    /// contextual member it also vouches for it: see `art_unconfirmed`.
    pub art: Option<ArtConfig>,
    /// With both the contextual and the ART member: a contextual vote is
    /// multiplied by this unless ART founded a new cluster at this point or
    /// the `art_novel` points before it (an alarm of the contextual memory
    /// that the window's features also find new counts in full). 1 = off.
    pub art_unconfirmed: f64,
    /// See `art_unconfirmed`.
    pub art_novel: u64,
    /// With the ART member: a second fuzzy ART model with the same settings
    /// (but `art_coarse_level_weight`) on a coarser time scale, learning the mean of each block of
    /// `art_coarse` values (counted from the first finite value), its
    /// `warm_up` and `rest` counted in blocks (divided by `art_coarse`, the
    /// rest rounded up). At a block's last value its score counts as ART's
    /// own (the largest of ART's models'); it does not vouch for the
    /// contextual member. 0 or 1 = off.
    pub art_coarse: usize,
    /// The `art_coarse` model's `level_weight` (`None`: the ART member's).
    /// Default 2, half the fine model's 4: on block means the shape says
    /// what the fine model, which already weighs the level, does not.
    pub art_coarse_level_weight: Option<f64>,
    /// With the ART member: a third fuzzy ART model, like the `art_coarse`
    /// one, on the means of blocks of `art_coarser` values (a slow shift
    /// of level or spread that no short window shows). 0 or 1 = off.
    pub art_coarser: usize,
    /// How member scores are combined.
    pub combine: Combine,
    /// Which deviations count, for every member.
    pub direction: Direction,
    /// A member's vote counts only if the observation is at least this far
    /// (in the series' own units) from what that member expected. 0 = off.
    pub min_abs_deviation: f64,
    /// Points scored 0 (and reported `warming_up`) at the start, on top of
    /// the members' own warm-ups.
    pub warm_up: usize,
    /// Suppression of repeated alarms for one episode: a combined score is
    /// passed on only if it is higher than every combined score of the
    /// previous `suppress` points; otherwise the answer is 0. 0 = off.
    pub suppress: usize,
}

impl Default for EnsembleConfig {
    fn default() -> Self {
        EnsembleConfig {
            mad: Some(RollingMadConfig::default()),
            ewma: Some(EwmaConfig::default()),
            page_hinkley: Some(PageHinkleyConfig::default()),
            seasonal: None,
            cluster: None,
            contextual: None,
            art: None,
            art_unconfirmed: 0.8,
            art_novel: 3,
            art_coarse: 4,
            art_coarse_level_weight: Some(2.0),
            art_coarser: 24,
            combine: Combine::Max,
            direction: Direction::Both,
            min_abs_deviation: 0.0,
            warm_up: 30,
            suppress: 0,
        }
    }
}

/// How [`Ensemble`] combines its members' scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    /// The largest member score: any member can raise an alarm.
    #[default]
    Max,
    /// The mean of the member scores: an alarm needs agreement.
    Mean,
}

/// [`RollingMad`], [`Ewma`], [`PageHinkley`], [`Seasonal`], [`Cluster`],
/// [`Contextual`] and [`Art`] (each optional) run side by side; the score
/// is the largest member score that passes the noise controls (direction,
/// `min_abs_deviation`), 0 during `warm_up`, and then, if `suppress > 0`,
/// kept only when it is a new maximum over the last `suppress` points, so
/// that an episode is reported by its onset (or by a clear escalation) and
/// not again while it lasts. Because that rule compares scores with scores,
/// it suppresses the same way whatever alerting threshold the caller uses.
///
/// `expected`, `lower` and `upper` are those of the first member present
/// in the order seasonal (the most specific), median / MAD (the robust
/// one), EWMA, Page–Hinkley, window clustering ([`Cluster`], optional),
/// contextual ([`Contextual`], optional), fuzzy ART ([`Art`], optional).
/// With no member at all the score is always 0 and `expected` is NaN.
///
/// The ART member's vote is the largest of its own score and, at the end of
/// each block of `art_coarse` (4) or `art_coarser` (24) values, the score
/// of an ART model with the same settings (the first with half the level
/// weight) on those blocks' means (two coarser time scales).
///
/// With both the contextual and the ART member, a contextual vote that ART
/// does not vouch for (no new ART cluster within the last `art_novel`
/// points) counts `art_unconfirmed` times: on NAB's 51 development files
/// the pair scores 76.99 / 71.84 / 81.42 (standard / low FP / low FN, mean
/// over four warm-up lengths; 76.44 / 71.27 / 80.87 with the fine model's
/// level weight for the blocks of 4, 74.70 / 69.43 / 79.03 without the
/// blocks of 24, 73.78 / 67.83 / 78.13 without either coarse model)
/// against 71.81 / 64.55 / 76.22 for the contextual model alone; at
/// warm-up 150 with the blocks shifted by 0 to 3 rows, 75.95 / 70.15 /
/// 80.83 against 73.51 / 67.92 / 78.27 with neither the blocks of 24 nor
/// the lower level weight (`bench/results/nab.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ensemble {
    cfg: EnsembleConfig,
    mad: Option<RollingMad>,
    ewma: Option<Ewma>,
    page_hinkley: Option<PageHinkley>,
    seasonal: Option<Seasonal>,
    #[serde(default)]
    cluster: Option<Cluster>,
    /// Boxed: its inline size would otherwise grow every ensemble.
    #[serde(default)]
    contextual: Option<Box<Contextual>>,
    /// The contextual member's vote without its rest period, for
    /// [`Ensemble::unsuppressed`].
    #[serde(default)]
    contextual_unrested: f64,
    /// Boxed, like the contextual member.
    #[serde(default)]
    art: Option<Box<Art>>,
    /// The ART member's cluster count at the last point, and the points
    /// since it last grew.
    #[serde(default)]
    art_clusters: u64,
    #[serde(default = "never")]
    since_art_novel: u64,
    /// The coarse ART model (`art_coarse`), and the sum and count of the
    /// values of its current block.
    #[serde(default)]
    art_coarse: Option<Box<Art>>,
    #[serde(default)]
    block_sum: f64,
    #[serde(default)]
    block_len: usize,
    /// The `art_coarser` model and its current block, likewise.
    #[serde(default)]
    art_coarser: Option<Box<Art>>,
    #[serde(default)]
    coarser_sum: f64,
    #[serde(default)]
    coarser_len: usize,
    n: u64,
    /// Combined (unsuppressed) scores of the last `suppress` points.
    recent: VecDeque<f64>,
}

impl Ensemble {
    /// A model with no history.
    pub fn new(cfg: EnsembleConfig) -> Self {
        let direction = cfg.direction;
        Ensemble {
            cfg,
            mad: cfg
                .mad
                .map(|c| RollingMad::new(RollingMadConfig { direction, ..c })),
            ewma: cfg.ewma.map(|c| Ewma::new(EwmaConfig { direction, ..c })),
            page_hinkley: cfg
                .page_hinkley
                .map(|c| PageHinkley::new(PageHinkleyConfig { direction, ..c })),
            seasonal: cfg
                .seasonal
                .map(|c| Seasonal::new(SeasonalConfig { direction, ..c })),
            cluster: cfg
                .cluster
                .map(|c| Cluster::new(ClusterConfig { direction, ..c })),
            contextual: cfg
                .contextual
                .map(|c| Box::new(Contextual::new(ContextualConfig { direction, ..c }))),
            contextual_unrested: 0.0,
            art: cfg.art.map(|c| Box::new(Art::new(c))),
            art_clusters: 0,
            since_art_novel: never(),
            art_coarse: coarse_model(&cfg, cfg.art_coarse, cfg.art_coarse_level_weight),
            block_sum: 0.0,
            block_len: 0,
            art_coarser: coarse_model(&cfg, cfg.art_coarser, None),
            coarser_sum: 0.0,
            coarser_len: 0,
            n: 0,
            recent: VecDeque::with_capacity(cfg.suppress),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &EnsembleConfig {
        &self.cfg
    }

    fn vote(&self, s: &Score) -> f64 {
        let dev = (s.observed - s.expected).abs();
        if dev >= self.cfg.min_abs_deviation {
            s.score
        } else {
            0.0
        }
    }
}

/// A new coarse ART model on blocks of `b` values (see
/// [`EnsembleConfig::art_coarse`]), with `level_weight` if given; none
/// without the ART member or for `b` below 2.
fn coarse_model(cfg: &EnsembleConfig, b: usize, level_weight: Option<f64>) -> Option<Box<Art>> {
    let c = cfg.art?;
    (b >= 2).then(|| {
        Box::new(Art::new(ArtConfig {
            warm_up: c.warm_up / b,
            rest: c.rest.div_ceil(b),
            level_weight: level_weight.unwrap_or(c.level_weight),
            ..c
        }))
    })
}

/// Adds `value` to a coarse model's block (`sum`, `len`) of `b` values; at
/// the block's last value the model learns the block's mean, and its score
/// is the answer.
fn coarse_step(
    model: &mut Art,
    (sum, len): (&mut f64, &mut usize),
    b: usize,
    t: Millis,
    value: f64,
) -> Option<f64> {
    *sum += value;
    *len += 1;
    if *len < b {
        return None;
    }
    let mean = *sum / *len as f64;
    (*sum, *len) = (0.0, 0);
    Some(model.observe(t, mean).score)
}

fn never() -> u64 {
    u64::MAX
}

impl Ensemble {
    /// The ART member's score for `value` (the largest of the fine and, at
    /// their blocks' ends, the coarse models'; 0 on the side `direction`
    /// ignores), judged against `expected` (the first other member's), and
    /// whether it vouches for the contextual member (the fine model alone).
    fn observe_art(&mut self, t: Millis, value: f64, expected: f64) -> Option<(Score, bool)> {
        let art = self.art.as_mut()?;
        let mut s = art.observe(t, value);
        if value.is_finite() {
            let clusters = art.cluster_count();
            self.since_art_novel = if clusters != self.art_clusters {
                0
            } else {
                self.since_art_novel.saturating_add(1)
            };
            self.art_clusters = clusters;
            let cfg = &self.cfg;
            let levels = [
                (
                    &mut self.art_coarse,
                    &mut self.block_sum,
                    &mut self.block_len,
                    cfg.art_coarse,
                    cfg.art_coarse_level_weight,
                ),
                (
                    &mut self.art_coarser,
                    &mut self.coarser_sum,
                    &mut self.coarser_len,
                    cfg.art_coarser,
                    None,
                ),
            ];
            for (model, sum, len, b, level_weight) in levels {
                // A state saved before a coarse model existed starts it.
                if model.is_none() && b >= 2 {
                    *model = coarse_model(cfg, b, level_weight);
                    (*sum, *len) = (0.0, 0);
                }
                if let Some(k) = model
                    .as_mut()
                    .and_then(|m| coarse_step(m, (sum, len), b, t, value))
                {
                    s.score = s.score.max(k);
                }
            }
        }
        // Unknown expectations (NaN) do not hide a vote.
        let side = match self.cfg.direction {
            Direction::Both => true,
            Direction::Up => expected.is_nan() || value > expected,
            Direction::Down => expected.is_nan() || value < expected,
        };
        if !side {
            s.score = 0.0;
        }
        // ART's own `expected` is the middle of its learnt range, not a
        // prediction: `min_abs_deviation` judges its vote against the other
        // members' expectation too, when there is one.
        if expected.is_finite() {
            s.expected = expected;
        }
        Some((s, self.since_art_novel <= self.cfg.art_novel))
    }

    /// The latest observation's combined score before episode suppression
    /// (`last` is what [`Model::observe`] answered for it), the contextual
    /// member counting without its rest period. A caller that already
    /// raised an alarm for the episode uses it to tell whether the value
    /// is still anomalous, since the suppressed score is 0 there.
    pub fn unsuppressed(&self, last: &Score) -> f64 {
        if !last.observed.is_finite() {
            return last.score;
        }
        let combined = if self.cfg.suppress > 0 {
            self.recent.back().copied().unwrap_or(0.0).clamp(0.0, 1.0)
        } else {
            last.score
        };
        combined.max(self.contextual_unrested)
    }
}

impl Model for Ensemble {
    fn observe(&mut self, t: Millis, value: f64) -> Score {
        let contextual = self.contextual.as_mut().map(|m| m.observe(t, value));
        let mut members = [
            self.seasonal.as_mut().map(|m| m.observe(t, value)),
            self.mad.as_mut().map(|m| m.observe(t, value)),
            self.ewma.as_mut().map(|m| m.observe(t, value)),
            self.page_hinkley.as_mut().map(|m| m.observe(t, value)),
            self.cluster.as_mut().map(|m| m.observe(t, value)),
            contextual,
            None,
        ];
        let expected = members
            .iter()
            .flatten()
            .next()
            .map_or(f64::NAN, |s| s.expected);
        if let Some((art, vouched)) = self.observe_art(t, value, expected) {
            if let Some(c) = members[5].as_mut().filter(|_| !vouched) {
                c.score *= self.cfg.art_unconfirmed.clamp(0.0, 1.0);
            }
            members[6] = Some(art);
        }
        let members: Vec<Score> = members.into_iter().flatten().collect();
        let first = members.first().copied().unwrap_or(Score {
            score: 0.0,
            expected: f64::NAN,
            lower: f64::NAN,
            upper: f64::NAN,
            observed: value,
            warming_up: false,
        });
        let warming_up = self.n < self.cfg.warm_up as u64 || members.iter().any(|s| s.warming_up);
        if !value.is_finite() {
            return Score {
                score: 0.0,
                warming_up,
                ..first
            };
        }
        self.n += 1;
        let combined = if self.n <= self.cfg.warm_up as u64 {
            0.0
        } else {
            members.iter().map(|s| self.vote(s)).fold(0.0, f64::max)
        };
        let unrested = match (&self.contextual, contextual) {
            (Some(m), Some(s)) if self.n > self.cfg.warm_up as u64 => self.vote(&Score {
                score: m.unrested(),
                ..s
            }),
            _ => 0.0,
        };
        self.contextual_unrested = unrested;
        let mut score = combined;
        if self.cfg.suppress > 0 {
            if self.recent.iter().any(|&r| r >= combined) {
                score = 0.0;
            }
            if self.recent.len() == self.cfg.suppress {
                self.recent.pop_front();
            }
            self.recent.push_back(combined);
        }
        Score {
            score: score.clamp(0.0, 1.0),
            warming_up,
            ..first
        }
    }
}
