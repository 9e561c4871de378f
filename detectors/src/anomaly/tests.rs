use super::*;

pub(super) fn feed<M: Model + ?Sized>(m: &mut M, values: &[f64]) -> Vec<Score> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| m.observe(i as Millis * 1000, v))
        .collect()
}

/// A repeating sawtooth 0, 1, …, 9.
pub(super) fn saw(n: usize) -> Vec<f64> {
    (0..n).map(|i| (i % 10) as f64).collect()
}

/// Values with repeats and rare jumps, with a few non-finite ones: input
/// for the property tests every learned model shares.
pub(super) fn values() -> impl proptest::strategy::Strategy<Value = Vec<f64>> {
    use proptest::prelude::*;
    let value = prop_oneof![
        8 => (0u8..12).prop_map(f64::from),
        2 => -1e3..1e3f64,
        1 => proptest::num::f64::ANY,
    ];
    prop::collection::vec(value, 0..500)
}

/// Whether two scores are the same, bit for bit (NaN included).
pub(super) fn same(a: &Score, b: &Score) -> bool {
    a.score.to_bits() == b.score.to_bits()
        && a.expected.to_bits() == b.expected.to_bits()
        && a.lower.to_bits() == b.lower.to_bits()
        && a.upper.to_bits() == b.upper.to_bits()
        && a.warming_up == b.warming_up
}

/// A model made by `make` answers the same scores, bit for bit, on two runs
/// over one noisy series.
pub(super) fn assert_deterministic<M: Model>(make: impl Fn() -> M) {
    let run = || {
        let mut m = make();
        let series: Vec<f64> = (0..3000)
            .map(|i| crate::testutil::noise(i) * 10.0)
            .collect();
        feed(&mut m, &series)
            .iter()
            .map(|s| s.score.to_bits())
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

/// A model made by `make`, after a sawtooth, ignores NaN and ±∞: a score
/// of 0 and its state untouched.
/// Feeds `m` 5 000 noisy values; every score is in [0, 1] and `count(m)`
/// (the model's memory: contexts, categories) never exceeds `bound`.
pub(super) fn assert_memory_bounded<M: Model>(
    m: &mut M,
    count: impl Fn(&M) -> usize,
    bound: usize,
) {
    for i in 0..5000 {
        let s = m.observe(i * 1000, crate::testutil::noise(i as u64) * 100.0);
        assert!((0.0..=1.0).contains(&s.score));
        assert!(count(m) <= bound, "{}", count(m));
    }
}

pub(super) fn assert_ignores_non_finite<M: Model + Clone + PartialEq + std::fmt::Debug>(
    make: impl Fn() -> M,
) {
    let mut m = make();
    feed(&mut m, &saw(300));
    let before = m.clone();
    for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let s = m.observe(300_000, v);
        assert_eq!(s.score, 0.0);
        assert_eq!(m, before);
    }
}

/// The properties every learned model has on any input `vs`: scores in
/// [0, 1]; a score depends only on the values up to it (appending values
/// after `cut` changes no earlier score); and a model saved (serde) or
/// cloned after `cut` goes on exactly as the original, with equal state.
pub(super) fn check_causal_and_restorable<M>(
    make: impl Fn() -> M,
    vs: &[f64],
    cut: usize,
) -> Result<(), proptest::test_runner::TestCaseError>
where
    M: Model + Clone + PartialEq + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
{
    use proptest::{prop_assert, prop_assert_eq};
    let k = cut % (vs.len() + 1);
    let (mut all, mut prefix) = (make(), make());
    let a = feed(&mut all, vs);
    for s in &a {
        prop_assert!((0.0..=1.0).contains(&s.score), "{:?}", s);
    }
    let b = feed(&mut prefix, &vs[..k]);
    for i in 0..k {
        prop_assert!(same(&a[i], &b[i]), "{}: {:?} {:?}", i, a[i], b[i]);
    }
    let text = serde_json::to_string(&prefix).unwrap();
    let mut restored: M = serde_json::from_str(&text).unwrap();
    prop_assert_eq!(&restored, &prefix);
    let mut cloned = prefix.clone();
    let rest = &vs[k..];
    let at = |i: usize| (k + i) as Millis * 1000;
    for (i, &v) in rest.iter().enumerate() {
        let (p, r, c) = (
            prefix.observe(at(i), v),
            restored.observe(at(i), v),
            cloned.observe(at(i), v),
        );
        prop_assert!(
            same(&p, &r) && same(&p, &c),
            "{}: {:?} {:?} {:?}",
            k + i,
            p,
            r,
            c
        );
        prop_assert!(same(&p, &a[k + i]), "{}: {:?} {:?}", k + i, p, a[k + i]);
    }
    prop_assert_eq!(&restored, &prefix);
    Ok(())
}

/// A deterministic, noisy but stationary series around 10.
fn noisy(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| 10.0 + ((i * 7919) % 13) as f64 * 0.05 - 0.3)
        .collect()
}

fn models() -> Vec<(&'static str, Box<dyn Model>)> {
    vec![
        (
            "mad",
            Box::new(RollingMad::new(RollingMadConfig::default())),
        ),
        ("ewma", Box::new(Ewma::new(EwmaConfig::default()))),
        (
            "ph",
            Box::new(PageHinkley::new(PageHinkleyConfig::default())),
        ),
        (
            "contextual",
            Box::new(Contextual::new(ContextualConfig {
                warm_up: 30,
                ..ContextualConfig::default()
            })),
        ),
        (
            "ensemble",
            Box::new(Ensemble::new(EnsembleConfig::default())),
        ),
        ("contextual_art", Box::new(contextual_art(0.8))),
        (
            "ensemble_suppress",
            Box::new(Ensemble::new(EnsembleConfig {
                suppress: 20,
                ..EnsembleConfig::default()
            })),
        ),
    ]
}

#[test]
fn statistic_to_score_is_monotone_and_bounded() {
    assert_eq!(statistic_to_score(0.0, 5.0), 0.0);
    assert_eq!(statistic_to_score(-3.0, 5.0), 0.0);
    assert_eq!(statistic_to_score(f64::NAN, 5.0), 0.0);
    assert_eq!(statistic_to_score(5.0, 5.0), 0.5);
    assert_eq!(statistic_to_score(f64::INFINITY, 5.0), 1.0);
    assert!((statistic_to_score(10.0, 5.0) - 16.0 / 17.0).abs() < 1e-15);
    let mut prev = 0.0;
    for i in 1..2000 {
        let s = statistic_to_score(i as f64 * 0.05, 5.0);
        assert!(s > prev && s <= 1.0, "{i}: {s}");
        prev = s;
    }
    // Large statistics stay ordered rather than all reading 1.0.
    assert!(statistic_to_score(200.0, 5.0) < statistic_to_score(400.0, 5.0));
}

#[test]
fn direction_keeps_one_side() {
    assert_eq!(Direction::Up.deviation(2.0), 2.0);
    assert_eq!(Direction::Up.deviation(-2.0), 0.0);
    assert_eq!(Direction::Down.deviation(-2.0), 2.0);
    assert_eq!(Direction::Down.deviation(2.0), 0.0);
    assert_eq!(Direction::Both.deviation(-2.0), 2.0);
}

#[test]
fn step_change_is_flagged_within_a_few_points() {
    for (name, mut m) in models() {
        let mut series = noisy(200);
        series.extend(noisy(20).iter().map(|v| v + 5.0));
        let scores = feed(m.as_mut(), &series);
        let first = scores[200..].iter().position(|s| s.score > 0.9);
        assert!(
            first.is_some_and(|i| i <= 3),
            "{name}: first score > 0.9 at {first:?} after the step: {:?}",
            &scores[200..205]
        );
        assert!(
            scores[100..200].iter().all(|s| s.score < 0.5),
            "{name}: false alarm before the step"
        );
    }
}

#[test]
fn constant_series_scores_zero_after_warm_up() {
    for (name, mut m) in models() {
        let scores = feed(m.as_mut(), &[42.0; 300]);
        assert!(scores[..5].iter().all(|s| s.warming_up), "{name}");
        for s in &scores[100..] {
            assert!(!s.warming_up, "{name}");
            assert_eq!(s.score, 0.0, "{name}");
            assert_eq!(s.expected, 42.0, "{name}");
            assert!(s.lower <= 42.0 && 42.0 <= s.upper, "{name}");
        }
    }
}

#[test]
fn scores_stay_in_unit_interval_on_wild_input() {
    let wild = [
        0.0,
        1e300,
        -1e300,
        5.0,
        f64::NAN,
        1e-300,
        7.0,
        f64::INFINITY,
        -3.0,
        0.0,
        1e15,
        2.0,
    ];
    for (name, mut m) in models() {
        let series: Vec<f64> = (0..500).map(|i| wild[(i * 5) % wild.len()]).collect();
        for s in feed(m.as_mut(), &series) {
            assert!((0.0..=1.0).contains(&s.score), "{name}: {s:?}");
        }
    }
}

#[test]
fn nan_is_ignored_without_poisoning_state() {
    let clean = noisy(150);
    let mut dirty = clean.clone();
    dirty.insert(60, f64::NAN);
    dirty.insert(90, f64::INFINITY);
    dirty.insert(91, f64::NEG_INFINITY);
    for ((name, mut a), (_, mut b)) in models().into_iter().zip(models()) {
        let sa = feed(a.as_mut(), &clean);
        let sb: Vec<Score> = feed(b.as_mut(), &dirty);
        for i in [60, 90, 91] {
            assert_eq!(sb[i].score, 0.0, "{name}");
            assert!(!sb[i].observed.is_finite(), "{name}");
        }
        let kept: Vec<f64> = sb
            .iter()
            .filter(|s| s.observed.is_finite())
            .map(|s| s.score)
            .collect();
        let want: Vec<f64> = sa.iter().map(|s| s.score).collect();
        assert_eq!(kept, want, "{name}");
    }
}

#[test]
fn mad_is_robust_to_a_single_outlier() {
    let mut m = RollingMad::new(RollingMadConfig::default());
    let mut series = noisy(100);
    series[80] = 1e6;
    let scores = feed(&mut m, &series);
    assert!(scores[80].score > 0.999);
    // The outlier barely moves the median or the MAD.
    assert!(scores[81..].iter().all(|s| s.score < 0.5));
    assert!((scores[99].expected - 10.0).abs() < 0.5);
}

#[test]
fn mad_window_is_bounded_and_forgets() {
    let cfg = RollingMadConfig {
        window: 10,
        ..RollingMadConfig::default()
    };
    let mut m = RollingMad::new(RollingMadConfig {
        min_points: 5,
        ..cfg
    });
    for i in 0..100 {
        m.observe(i, 1.0);
    }
    for i in 100..120 {
        m.observe(i, 50.0);
    }
    let s = m.observe(120, 50.0);
    assert_eq!(s.expected, 50.0);
    assert_eq!(s.score, 0.0);
    assert_eq!(m.buf.len(), 10);
}

#[test]
fn direction_up_ignores_drops() {
    let mut m = Ensemble::new(EnsembleConfig {
        direction: Direction::Up,
        ..EnsembleConfig::default()
    });
    let mut series = noisy(200);
    series.extend([0.0, 0.0, 0.0]);
    let scores = feed(&mut m, &series);
    assert!(scores[200..].iter().all(|s| s.score == 0.0));
}

#[test]
fn min_abs_deviation_silences_small_moves() {
    let mut m = Ensemble::new(EnsembleConfig {
        min_abs_deviation: 10.0,
        ..EnsembleConfig::default()
    });
    let mut series = noisy(200);
    series.extend([15.0, 15.0, 15.0, 40.0]);
    let scores = feed(&mut m, &series);
    assert!(scores[200..203].iter().all(|s| s.score == 0.0));
    assert!(scores[203].score > 0.9);
}

#[test]
fn suppression_reports_an_episode_once() {
    let mut m = Ensemble::new(EnsembleConfig {
        suppress: 30,
        ..EnsembleConfig::default()
    });
    let mut series = noisy(200);
    series.extend(noisy(10).iter().map(|v| v + 5.0));
    series.extend(noisy(100));
    let scores = feed(&mut m, &series);
    let alarms: Vec<usize> = (0..scores.len())
        .filter(|&i| scores[i].score > 0.5)
        .collect();
    assert_eq!(alarms.first(), Some(&200), "{alarms:?}");
    // Nothing above 0.5 for the rest of the episode and its aftermath,
    // except a strictly higher score.
    for &i in &alarms[1..] {
        assert!(scores[i].score > scores[200].score, "{i}");
    }
}

#[test]
fn warm_up_is_reported() {
    let mut m = Ensemble::new(EnsembleConfig {
        warm_up: 50,
        ..EnsembleConfig::default()
    });
    let scores = feed(&mut m, &noisy(60));
    assert!(scores[..50].iter().all(|s| s.warming_up && s.score == 0.0));
    assert!(!scores[55].warming_up);
}

/// The contextual and ART members alone, with no warm-up or suppression of
/// the ensemble's own.
fn contextual_art(unconfirmed: f64) -> Ensemble {
    Ensemble::new(contextual_art_config(unconfirmed))
}

fn contextual_art_config(unconfirmed: f64) -> EnsembleConfig {
    EnsembleConfig {
        mad: None,
        ewma: None,
        page_hinkley: None,
        contextual: Some(ContextualConfig {
            warm_up: 30,
            ..ContextualConfig::default()
        }),
        art: Some(ArtConfig {
            warm_up: 30,
            ..ArtConfig::default()
        }),
        art_unconfirmed: unconfirmed,
        warm_up: 0,
        ..EnsembleConfig::default()
    }
}

/// The scores of [`EnsembleConfig::art_coarse`]'s (`b` 4) or
/// `art_coarser`'s (24) model in [`contextual_art`]: a standalone ART model
/// (warm-up and rest in blocks; for 4, `art_coarse_level_weight`) fed the
/// means of blocks of `b` values, its score at each block's last row and 0
/// elsewhere.
fn coarse_art_scores(series: &[f64], b: usize) -> Vec<f64> {
    coarse_scores(contextual_art_config(1.0).art.unwrap(), series, b)
}

/// The same for an ART member with settings `fine` and the default
/// coarse settings.
fn coarse_scores(fine: ArtConfig, series: &[f64], b: usize) -> Vec<f64> {
    let defaults = EnsembleConfig::default();
    assert!(b == defaults.art_coarse || b == defaults.art_coarser);
    let level_weight = match b {
        4 => defaults.art_coarse_level_weight.unwrap(),
        _ => fine.level_weight,
    };
    let mut coarse = Art::new(ArtConfig {
        warm_up: fine.warm_up / b,
        rest: fine.rest.div_ceil(b),
        level_weight,
        ..fine
    });
    let mut out = vec![0.0; series.len()];
    for (k, block) in series.chunks_exact(b).enumerate() {
        let mean = block.iter().sum::<f64>() / b as f64;
        let end = k * b + b - 1;
        out[end] = coarse.observe(end as Millis * 1000, mean).score;
    }
    out
}

/// Blocks of 4 rows, each low (10, 11, 10, 11) or high (20, 21, 20, 21):
/// alternately until 600, then two low, two high. Every 4-value window of
/// the second part was seen in the first; the sequence of block means was
/// not.
fn slow_pattern_change() -> Vec<f64> {
    (0..900)
        .map(|i| {
            let block = i / 4;
            let high = if i < 600 {
                block % 2 == 1
            } else {
                block % 4 >= 2
            };
            (if high { 20.0 } else { 10.0 }) + (i % 2) as f64
        })
        .collect()
}

#[test]
fn the_coarse_art_model_sees_a_change_of_pattern_on_its_time_scale() {
    let series = slow_pattern_change();
    let mut art = Art::new(contextual_art_config(1.0).art.unwrap());
    let fine = feed(&mut art, &series);
    let coarse = coarse_art_scores(&series, 4);
    let coarser = coarse_art_scores(&series, 24);
    // The 4-value windows after 600 are old ones; the block means are new.
    assert!(fine[600..].iter().all(|s| s.score == 0.0), "fine ART fired");
    assert!(
        coarse[600..620].iter().any(|&k| k >= 0.5),
        "{:?}",
        &coarse[600..620]
    );
    // The ensemble's vote is the largest of the three models' (the
    // coarser one on blocks of 24, `art_coarser`); with a coarse model off
    // (0 or 1) it is the others' alone.
    let vote = |art_coarse: usize, art_coarser: usize| {
        let mut m = Ensemble::new(EnsembleConfig {
            contextual: None,
            art_coarse,
            art_coarser,
            ..contextual_art_config(1.0)
        });
        feed(&mut m, &series)
    };
    let with = vote(4, 24);
    assert!(
        coarser.iter().any(|&k| k > 0.0),
        "the coarser model never scored"
    );
    for i in 0..series.len() {
        let want = fine[i].score.max(coarse[i]).max(coarser[i]);
        assert_eq!(with[i].score, want, "{i}");
    }
    for off in [0, 1] {
        let only_coarse = vote(4, off);
        let only_coarser = vote(off, 24);
        let neither = vote(off, off);
        for i in 0..series.len() {
            assert_eq!(only_coarse[i].score, fine[i].score.max(coarse[i]), "{i}");
            assert_eq!(only_coarser[i].score, fine[i].score.max(coarser[i]), "{i}");
            assert_eq!(neither[i].score, fine[i].score, "{i}");
        }
    }
}

/// `art_coarse_level_weight` sets the coarse model's level weight only;
/// `None` leaves it the ART member's.
#[test]
fn the_coarse_models_level_weight_is_its_own() {
    let series = patterned(900);
    let only_coarse = |level_weight: Option<f64>| {
        let mut m = Ensemble::new(EnsembleConfig {
            contextual: None,
            art_coarser: 0,
            art_coarse_level_weight: level_weight,
            ..contextual_art_config(1.0)
        });
        let state = serde_json::to_value(&m).unwrap();
        let weight = state["art_coarse"]["cfg"]["level_weight"].as_f64();
        (feed(&mut m, &series), weight)
    };
    let fine = contextual_art_config(1.0).art.unwrap().level_weight;
    assert_eq!(only_coarse(None).1, Some(fine));
    assert_eq!(only_coarse(Some(2.0)).1, Some(2.0));
    assert_eq!(only_coarse(Some(0.5)).1, Some(0.5));
    let mut art = Art::new(contextual_art_config(1.0).art.unwrap());
    let fine_scores = feed(&mut art, &series);
    let coarse = coarse_art_scores(&series, 4);
    for (i, s) in only_coarse(Some(2.0)).0.iter().enumerate() {
        assert_eq!(s.score, fine_scores[i].score.max(coarse[i]), "{i}");
    }
}

/// A state saved before the coarser ART model existed (no `art_coarser`
/// keys) loads and starts that model, aligned to the blocks from there.
#[test]
fn an_ensemble_saved_without_the_coarser_art_model_starts_it() {
    let series = slow_pattern_change();
    let mut m = Ensemble::new(contextual_art_config(1.0));
    feed(&mut m, &series[..100]);
    let mut json = serde_json::to_value(&m).unwrap();
    let state = json.as_object_mut().unwrap();
    for key in ["art_coarser", "coarser_sum", "coarser_len"] {
        assert!(state.remove(key).is_some(), "{key}");
    }
    state["cfg"].as_object_mut().unwrap().remove("art_coarser");
    let mut old: Ensemble = serde_json::from_value(json).unwrap();
    let state = |m: &Ensemble| serde_json::to_value(m).unwrap();
    assert!(state(&old)["art_coarser"].is_null());
    old.observe(100_000, series[100]);
    let now = state(&old);
    assert!(now["art_coarser"].is_object(), "{}", now["art_coarser"]);
    assert_eq!(now["coarser_len"], 1);
}

/// A repeating pattern that changes shape at 400 and level at 700.
fn patterned(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| match i {
            0..400 => 10.0 + (i % 6) as f64,
            400..700 => 10.0 + if i % 6 < 3 { 0.0 } else { 5.0 },
            _ => 40.0 + (i % 6) as f64,
        })
        .collect()
}

#[test]
fn art_vouches_for_the_contextual_member_or_its_vote_is_discounted() {
    let series = patterned(900);
    let mut contextual = Contextual::new(ContextualConfig {
        warm_up: 30,
        ..ContextualConfig::default()
    });
    let mut art = Art::new(ArtConfig {
        warm_up: 30,
        ..ArtConfig::default()
    });
    let c = feed(&mut contextual, &series);
    // ART's vote: the largest of the fine and the two coarse models'.
    let coarse = coarse_art_scores(&series, 4);
    let coarser = coarse_art_scores(&series, 24);
    let a: Vec<Score> = feed(&mut art, &series)
        .into_iter()
        .zip(coarse.iter().zip(&coarser))
        .map(|(s, (&k, &kk))| Score {
            score: s.score.max(k).max(kk),
            ..s
        })
        .collect();
    // Without the discount the pair is the larger of the two.
    let plain = feed(&mut contextual_art(1.0), &series);
    for i in 0..series.len() {
        assert_eq!(plain[i].score, c[i].score.max(a[i].score), "{i}");
    }
    // With it, each contextual vote counts whole or × 0.8.
    let gated = feed(&mut contextual_art(0.8), &series);
    let (mut whole, mut discounted) = (0, 0);
    for i in 0..series.len() {
        let s = gated[i].score;
        if s == c[i].score.max(a[i].score) && c[i].score > 0.0 {
            whole += 1;
        } else if s == (0.8 * c[i].score).max(a[i].score) {
            discounted += usize::from(c[i].score > a[i].score);
        } else {
            panic!(
                "{i}: {s} from contextual {} and ART {}",
                c[i].score, a[i].score
            );
        }
    }
    assert!(
        whole > 0 && discounted > 0,
        "{whole} whole, {discounted} discounted"
    );
    // The level shift is an alarm either way.
    assert!(
        gated[700..705].iter().any(|s| s.score >= 0.75),
        "{:?}",
        &gated[700..705]
    );
}

/// A ramp 10…15, one excursion to 60 at 300 (which stretches ART's range:
/// its own `expected`, the range's middle, moves to about 36), then the
/// ramp 40…45 from 400.
fn excursion_then_new_level() -> Vec<f64> {
    (0..600)
        .map(|i| match i {
            300..303 => 60.0,
            0..400 => 10.0 + (i % 6) as f64,
            _ => 40.0 + (i % 6) as f64,
        })
        .collect()
}

#[test]
fn min_abs_deviation_judges_the_art_vote_against_the_other_members_expectation() {
    // An EWMA member that never scores more than a trace (z_half huge)
    // supplies the expectation; the ART member's vote (the largest of its
    // three models') counts where the value is at least `d` from it.
    let ewma = EwmaConfig {
        z_half: 1e12,
        ..EwmaConfig::default()
    };
    let art = ArtConfig {
        warm_up: 30,
        ..ArtConfig::default()
    };
    let series = excursion_then_new_level();
    let e = feed(&mut Ewma::new(ewma), &series);
    let a: Vec<f64> = feed(&mut Art::new(art), &series)
        .iter()
        .zip(
            coarse_scores(art, &series, 4)
                .iter()
                .zip(coarse_scores(art, &series, 24)),
        )
        .map(|(s, (&k, kk))| s.score.max(k).max(kk))
        .collect();
    let d = 10.0;
    let mut m = Ensemble::new(EnsembleConfig {
        mad: None,
        page_hinkley: None,
        ewma: Some(ewma),
        art: Some(art),
        min_abs_deviation: d,
        warm_up: 0,
        ..EnsembleConfig::default()
    });
    let got = feed(&mut m, &series);
    let mut counted = 0;
    for i in 0..series.len() {
        let far = (series[i] - e[i].expected).abs() >= d;
        let vote = |s: f64| if far { s } else { 0.0 };
        assert_eq!(got[i].score, vote(e[i].score).max(vote(a[i])), "{i}");
        counted += usize::from(far && a[i] > 0.5);
    }
    // The new level, far from the EWMA but near the middle of ART's range.
    assert!(counted >= 1, "{a:?}");
}

#[test]
fn state_round_trips_through_serde_and_clone() {
    // serde_json is not a dependency: check the derives exist and that a
    // clone continues exactly like the original.
    fn is_serde<T: serde::Serialize + serde::de::DeserializeOwned>(_: &T) {}
    let mut m = Ensemble::new(EnsembleConfig {
        suppress: 10,
        ..EnsembleConfig::default()
    });
    let series = noisy(300);
    feed(&mut m, &series[..150]);
    is_serde(&m);
    is_serde(&EnsembleConfig::default());
    let mut c = m.clone();
    let a = feed(&mut m, &series[150..]);
    let b = feed(&mut c, &series[150..]);
    assert_eq!(a, b);
}

/// The sort-twice definition the incremental rolling MAD must match bit for
/// bit: median of the window, then the median of the absolute deviations
/// (or the mean absolute deviation when that is 0).
fn reference_sigma(window: &[f64]) -> (f64, f64) {
    let mut v = window.to_vec();
    v.sort_unstable_by(f64::total_cmp);
    let med = |s: &[f64]| {
        let n = s.len();
        if n % 2 == 1 {
            s[n / 2]
        } else {
            0.5 * (s[n / 2 - 1] + s[n / 2])
        }
    };
    let median = med(&v);
    let mut mean_ad = 0.0;
    for x in v.iter_mut() {
        *x = (*x - median).abs();
        mean_ad += *x;
    }
    mean_ad /= v.len() as f64;
    v.sort_unstable_by(f64::total_cmp);
    let mad = med(&v);
    let sigma = if mad > 0.0 {
        1.482_602_218_505_602 * mad
    } else {
        1.253_314_137_315_500_3 * mean_ad
    };
    (median, floor_scale(sigma, median))
}

mod incremental_mad {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn incremental_mad_matches_the_sorting_definition_bit_for_bit(
            window in 1usize..40,
            // Few distinct values, so ties, zero MADs and duplicates at the
            // median are common; plus signed zeros.
            values in proptest::collection::vec(
                prop_oneof![
                    (-5i32..5).prop_map(|v| v as f64 * 0.5),
                    proptest::num::f64::NORMAL,
                    Just(-0.0),
                ],
                1..300,
            ),
        ) {
            let mut m = RollingMad::new(RollingMadConfig { window, min_points: 1, ..RollingMadConfig::default() });
            let mut seen: Vec<f64> = Vec::new();
            for (i, &v) in values.iter().enumerate() {
                let s = m.observe(i as Millis, v);
                if !seen.is_empty() {
                    let from = seen.len().saturating_sub(window);
                    let (median, sigma) = reference_sigma(&seen[from..]);
                    prop_assert_eq!(s.expected.to_bits(), median.to_bits());
                    let half = m.config().z_half * sigma;
                    prop_assert_eq!(s.lower.to_bits(), (median - half).to_bits());
                    prop_assert_eq!(s.upper.to_bits(), (median + half).to_bits());
                }
                seen.push(v);
            }
            // A restored copy (sorted window rebuilt) answers the same.
            let mut restored: RollingMad = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
            let a = m.observe(10_000, 1.25);
            let b = restored.observe(10_000, 1.25);
            prop_assert_eq!(a.score.to_bits(), b.score.to_bits());
            prop_assert_eq!(a.lower.to_bits(), b.lower.to_bits());
        }
    }
}

proptest::proptest! {
    #[test]
    fn contextual_art_is_causal_and_restores_bit_for_bit(vs in values(), cut in 0usize..500) {
        check_causal_and_restorable(|| contextual_art(0.8), &vs, cut)?;
    }
}
