use super::*;
use crate::testutil::{TempDir, synthetic_nab, write};

fn unit_profile() -> Profile {
    Profile {
        name: "unit".into(),
        tp_weight: 1.0,
        fp_weight: 1.0,
        fn_weight: 1.0,
    }
}

fn standard() -> Profile {
    Profile {
        name: "standard".into(),
        tp_weight: 1.0,
        fp_weight: 0.11,
        fn_weight: 1.0,
    }
}

fn w(start: usize, end: usize) -> Window {
    Window { start, end }
}

/// A small deterministic generator (no dependency on `rand`).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn scaled_sigmoid_values_from_the_spec() {
    assert_eq!(scaled_sigmoid(-1.0), 0.9866142981514305);
    assert_eq!(scaled_sigmoid(0.0), 0.0);
    assert!((scaled_sigmoid(1.0) + 0.98661).abs() < 1e-5);
    assert_eq!(scaled_sigmoid(3.0000001), -1.0);
    assert!(scaled_sigmoid(3.0) > -1.0);
    // Mathematically −tanh(2.5 y).
    for k in -40..=30 {
        let y = k as f64 / 10.0;
        assert!(
            (scaled_sigmoid(y) + (2.5 * y).tanh()).abs() < 1e-15,
            "y = {y}"
        );
    }
}

#[test]
fn probationary_period_is_capped_at_750_rows() {
    assert_eq!(probationary_rows(0), 0);
    assert_eq!(probationary_rows(7), 1); // floor(1.05)
    assert_eq!(probationary_rows(100), 15);
    assert_eq!(probationary_rows(1127), 169); // floor(169.05)
    assert_eq!(probationary_rows(4999), 749); // floor(749.85)
    assert_eq!(probationary_rows(5000), 750);
    assert_eq!(probationary_rows(5001), 750);
    assert_eq!(probationary_rows(15_902), 750);
}

#[test]
fn normalisation_formula() {
    assert_eq!(normalise(-116.0, -116.0, 116.0), 0.0);
    assert_eq!(normalise(116.0, -116.0, 116.0), 100.0);
    // §9 worked example (58-file corpus): numenta standard and low FN.
    assert!((normalise(46.6344501971, -116.0, 116.0) - 70.1011).abs() < 5e-5);
    assert!((normalise(30.4310725171, -116.0, 116.0) - 63.1168).abs() < 5e-5);
    assert!((normalise(26.6344501971, -232.0, 116.0) - 74.3202).abs() < 5e-5);
}

#[test]
fn per_row_weights_follow_section_4() {
    let p = standard();
    let layout = FileLayout::new(100, &[w(30, 34), w(65, 69)], 0).unwrap();
    // Before the first window: the full FP cost.
    assert_eq!(layout.sigma(0, &p), -0.11);
    assert_eq!(layout.sigma(29, &p), -0.11);
    // First row of a window: exactly A_TP; later rows less, still > 0.
    assert_eq!(layout.sigma(30, &p), 1.0);
    assert!(layout.sigma(31, &p) < 1.0 && layout.sigma(34, &p) > 0.0);
    let y = -1.0 / 5.0;
    assert_eq!(
        layout.sigma(34, &p),
        scaled_sigmoid(y) / scaled_sigmoid(-1.0)
    );
    // After a window: f((i − e)/(w − 1)) · A_FP, nearly free right after.
    assert_eq!(layout.sigma(35, &p), scaled_sigmoid(1.0 / 4.0) * 0.11);
    assert_eq!(layout.sigma(37, &p), scaled_sigmoid(3.0 / 4.0) * 0.11);
    assert!(layout.sigma(46, &p) > -0.11); // y = 3: still the sigmoid
    assert!((layout.sigma(46, &p) + 0.11).abs() < 1e-6);
    assert_eq!(layout.sigma(47, &p), -0.11); // y > 3
    // Near the *next* window there is no discount; after it, it counts.
    assert_eq!(layout.sigma(64, &p), -0.11);
    assert_eq!(layout.sigma(70, &p), scaled_sigmoid(1.0 / 4.0) * 0.11);
}

/// §11 test vector 1 (NAB's `scorer_test.testScoringAllMetrics`).
#[test]
fn test_vector_1_nab_unit_test() {
    let layout = FileLayout::new(100, &[w(30, 34), w(65, 69)], 0).unwrap();
    let mut a = vec![0.0; 100];
    for i in [30, 31, 37] {
        a[i] = 1.0;
    }
    let o = score_at(&[layout], &[a], &unit_profile(), 0.5).unwrap();
    assert_eq!(o.raw, 1.0 + scaled_sigmoid(0.75) - 1.0);
    assert!((o.raw - -0.95404).abs() < 1e-5, "{}", o.raw);
    assert_eq!(
        o.counts,
        Counts {
            tp: 2,
            fp: 1,
            tn: 89,
            fn_: 8
        }
    );
}

#[test]
fn probationary_rows_are_not_scored() {
    let layout = FileLayout::new(100, &[w(30, 34)], 15).unwrap();
    let mut a = vec![0.0; 100];
    a[3] = 1.0; // probationary: no FP
    let o = score_at(&[layout], &[a], &standard(), 0.5).unwrap();
    assert_eq!(o.raw, -1.0);
    assert_eq!(o.counts.fp, 0);
    assert_eq!(o.counts.tn + o.counts.fn_, 85);
}

#[test]
fn detection_uses_greater_or_equal() {
    let layout = FileLayout::new(50, &[w(20, 24)], 0).unwrap();
    let mut a = vec![0.0; 50];
    a[20] = 0.7;
    let o = score_at(&[layout], &[a], &standard(), 0.7).unwrap();
    assert_eq!(o.raw, 1.0);
}

#[test]
fn ties_go_to_the_highest_threshold() {
    // Row 10 (first row of the window) at 0.9 and row 12 at 0.8: both
    // thresholds give +1, the higher one wins.
    let layout = FileLayout::new(20, &[w(10, 14)], 0).unwrap();
    let mut a = vec![0.0; 20];
    a[10] = 0.9;
    a[12] = 0.8;
    let best = optimise_thresholds(std::slice::from_ref(&layout), &[a], &[standard()]).unwrap();
    assert_eq!(best, vec![(0.9, 1.0)]);
    // Nothing detected beats FPs alone: the "no detections" candidate 1.1.
    let quiet = FileLayout::new(20, &[], 0).unwrap();
    let mut a = vec![0.0; 20];
    a[2] = 0.9;
    let best = optimise_thresholds(&[quiet], &[a], &[standard()]).unwrap();
    assert_eq!(best, vec![(NO_DETECTION_THRESHOLD, 0.0)]);
    // A constant detector: with costly FPs, detecting everything loses to
    // detecting nothing (a tie would also go to 1.1).
    let best = optimise_thresholds(&[layout], &[vec![0.5; 20]], &[unit_profile()]).unwrap();
    assert_eq!(best, vec![(NO_DETECTION_THRESHOLD, -1.0)]);
}

#[test]
fn no_detection_threshold_stays_above_every_score() {
    let layout = FileLayout::new(10, &[], 0).unwrap();
    let best = optimise_thresholds(&[layout], &[vec![2.0; 10]], &[standard()]).unwrap();
    assert!(best[0].0 > 2.0);
    assert_eq!(best[0].1, 0.0);
}

/// The O(N log N) sweep equals brute force over every candidate threshold.
#[test]
fn sweep_matches_brute_force() {
    let mut rng = Lcg(7);
    let profiles = vec![
        standard(),
        Profile {
            name: "low_fp".into(),
            tp_weight: 1.0,
            fp_weight: 0.22,
            fn_weight: 1.0,
        },
        Profile {
            name: "low_fn".into(),
            tp_weight: 1.0,
            fp_weight: 0.11,
            fn_weight: 2.0,
        },
    ];
    for case in 0..200 {
        let files = 1 + rng.below(4) as usize;
        let mut layouts = Vec::new();
        let mut scores = Vec::new();
        for _ in 0..files {
            let n = 20 + rng.below(200) as usize;
            let mut windows = Vec::new();
            let mut at = rng.below(n as u64 / 2) as usize;
            while at + 3 < n && rng.below(3) > 0 {
                let len = 2 + rng.below(12) as usize;
                let end = (at + len).min(n - 1);
                windows.push(w(at, end));
                at = end + 1 + rng.below(40) as usize;
            }
            let probation = probationary_rows(n);
            layouts.push(FileLayout::new(n, &windows, probation).unwrap());
            // Few distinct values so that groups of equal scores occur.
            let levels = 1 + rng.below(if case % 2 == 0 { 6 } else { 1000 });
            scores.push(
                (0..n)
                    .map(|_| rng.below(levels) as f64 / levels as f64)
                    .collect::<Vec<f64>>(),
            );
        }
        let swept = optimise_thresholds(&layouts, &scores, &profiles).unwrap();
        let mut candidates: Vec<f64> = layouts
            .iter()
            .zip(&scores)
            .flat_map(|(l, a)| a[l.probation()..].iter().copied())
            .collect();
        candidates.push(NO_DETECTION_THRESHOLD);
        candidates.sort_by(|x, y| y.total_cmp(x));
        candidates.dedup();
        for (p, &(theta, raw)) in profiles.iter().zip(&swept) {
            let mut best = (f64::NAN, f64::NEG_INFINITY);
            for &c in &candidates {
                let o = score_at(&layouts, &scores, p, c).unwrap();
                if o.raw > best.1 + 1e-12 {
                    best = (c, o.raw);
                }
            }
            assert_eq!(theta, best.0, "case {case}, profile {}", p.name);
            assert!((raw - best.1).abs() < 1e-12, "case {case}");
            let direct = score_at(&layouts, &scores, p, theta).unwrap().raw;
            assert!((raw - direct).abs() < 1e-12, "case {case}");
        }
    }
}

#[test]
fn shapes_are_checked() {
    let layout = FileLayout::new(10, &[], 0).unwrap();
    assert!(
        score_at(
            std::slice::from_ref(&layout),
            &[vec![0.0; 9]],
            &standard(),
            0.5
        )
        .is_err()
    );
    assert!(optimise_thresholds(std::slice::from_ref(&layout), &[], &[standard()]).is_err());
    let mut a = vec![0.0; 10];
    a[4] = f64::NAN;
    assert!(optimise_thresholds(&[layout], &[a], &[standard()]).is_err());
    assert!(FileLayout::new(10, &[w(2, 5), w(5, 8)], 0).is_err());
    assert!(FileLayout::new(10, &[w(2, 10)], 0).is_err());
}

#[test]
fn loads_a_nab_folder() {
    let dir = TempDir::new("corpus");
    synthetic_nab(dir.path());
    let corpus = Corpus::load(dir.path()).unwrap();
    let keys: Vec<&str> = corpus.files.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys, ["catA/one.csv", "catA/two.csv", "catB/three.csv"]);
    assert_eq!(corpus.files[0].category, "catA");
    assert_eq!(corpus.files[0].name, "one");
    assert_eq!(corpus.files[0].windows, [w(60, 79), w(140, 159)]);
    assert!(corpus.files[1].windows.is_empty());
    // The repeated timestamp shifts the rows of three.csv by one.
    assert_eq!(corpus.files[2].windows, [w(100, 114)]);
    assert_eq!(corpus.files[2].times_ms[20], corpus.files[2].times_ms[21]);
    assert_eq!(corpus.window_count(), 3);
    assert_eq!(corpus.row_count(), 470);
    assert_eq!(corpus.files[0].value_text[1], "1.5");

    let profiles = load_profiles(&dir.path().join("config/profiles.json")).unwrap();
    let names: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, PROFILE_NAMES);
    assert_eq!(profiles[2].fn_weight, 2.0);
    assert_eq!(profiles[1].fp_weight, 0.22);
}

#[test]
fn null_and_perfect_detectors_score_0_and_100() {
    let dir = TempDir::new("norm");
    synthetic_nab(dir.path());
    let bench = Benchmark::load(dir.path()).unwrap();
    assert_eq!(bench.null_raw(), [-3.0, -3.0, -6.0]);

    let null: Vec<Vec<f64>> = bench
        .corpus
        .files
        .iter()
        .map(|f| vec![0.5; f.len()])
        .collect();
    for r in bench.score(&null).unwrap() {
        assert_eq!(r.score, 0.0, "{}", r.profile);
        assert_eq!(r.threshold, NO_DETECTION_THRESHOLD);
    }
    let perfect: Vec<Vec<f64>> = bench
        .corpus
        .files
        .iter()
        .map(|f| {
            let mut a = vec![0.0; f.len()];
            for win in &f.windows {
                a[win.start] = 1.0;
            }
            a
        })
        .collect();
    for r in bench.score(&perfect).unwrap() {
        assert_eq!(r.score, 100.0, "{}", r.profile);
        assert_eq!(r.raw, 3.0);
        assert_eq!(r.threshold, 1.0);
        assert_eq!(r.counts.tp, 3);
        assert_eq!(r.counts.fp, 0);
    }
}

#[test]
fn reads_the_results_layout() {
    let dir = TempDir::new("results");
    synthetic_nab(dir.path());
    let corpus = Corpus::load(dir.path()).unwrap();
    let results = dir.path().join("results");
    let write_det = |det: &str, rows: &[usize]| {
        for (f, &n) in corpus.files.iter().zip(rows) {
            let mut s = String::from("timestamp,value,anomaly_score,label,raw_score\n");
            for i in 0..n {
                s.push_str(&format!(
                    "{},{},{},0,9\n",
                    f.timestamps[i.min(f.len() - 1)],
                    1,
                    i as f64 / 1000.0
                ));
            }
            write(
                &results
                    .join(det)
                    .join(&f.category)
                    .join(format!("{det}_{}.csv", f.name)),
                &s,
            );
        }
    };
    write_det("good", &[200, 120, 150]);
    // A scores file is ignored.
    write(&results.join("good/good_standard_scores.csv"), "junk\n");
    let scores = load_results(&corpus, &results, "good").unwrap();
    assert_eq!(scores[0][199], 0.199);
    assert_eq!(scores[2].len(), 150);

    write_det("short", &[200, 119, 150]);
    let err = load_results(&corpus, &results, "short").unwrap_err();
    assert!(err.message().contains("119 rows"), "{err}");

    write_det("stray", &[200, 120, 150]);
    write(
        &results.join("stray/catA/stray_other.csv"),
        "timestamp,value,anomaly_score,label\n",
    );
    let err = load_results(&corpus, &results, "stray").unwrap_err();
    assert!(err.message().contains("catA/other.csv"), "{err}");

    write_det("missing", &[200, 120, 150]);
    std::fs::remove_file(results.join("missing/catB/missing_three.csv")).unwrap();
    let err = load_results(&corpus, &results, "missing").unwrap_err();
    assert!(err.message().contains("catB/three.csv"), "{err}");

    let err = load_results(&corpus, &results, "absent").unwrap_err();
    assert!(err.message().contains("no results folder"), "{err}");
}

#[test]
fn corpus_errors_are_clear() {
    let dir = TempDir::new("errors");
    synthetic_nab(dir.path());
    write(
        &dir.path().join("data/catC/extra.csv"),
        "timestamp,value\n2020-01-01 00:00:00,1\n",
    );
    let err = Corpus::load(dir.path()).unwrap_err();
    assert!(
        err.message().contains("catC/extra.csv has no entry"),
        "{err}"
    );

    let dir = TempDir::new("errors2");
    synthetic_nab(dir.path());
    write(
        &dir.path().join("labels/combined_windows.json"),
        r#"{"catA/one.csv": [["1999-01-01 00:00:00.000000", "2020-01-01 00:10:00.000000"]], "catA/two.csv": [], "catB/three.csv": []}"#,
    );
    let err = Corpus::load(dir.path()).unwrap_err();
    assert!(err.message().contains("1999-01-01"), "{err}");

    let err = Corpus::load(&dir.path().join("nope")).unwrap_err();
    assert!(err.message().contains("not found"), "{err}");
}
