use proptest::prelude::*;

use super::*;

/// Rank `⌊q·(n−1)⌋` of the sorted values: what the sketch approximates.
fn exact(sorted: &[f64], q: f64) -> f64 {
    sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
}

fn assert_close(got: f64, want: f64, what: &str) {
    let err = (got - want).abs() / want.abs().max(MIN_VALUE);
    assert!(
        err <= ALPHA + 1e-12,
        "{what}: got {got}, exact {want}, relative error {err}"
    );
}

/// Deterministic log-uniform latencies from 100 µs to 10 s.
fn latencies(n: usize, seed: u64) -> Vec<f64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            1e-4 * (1e5f64).powf(u)
        })
        .collect()
}

#[test]
fn quantiles_are_within_one_percent_of_exact() {
    let v = latencies(20_000, 7);
    let mut s = Sketch::new();
    for x in &v {
        s.insert(*x);
    }
    let mut sorted = v.clone();
    sorted.sort_by(f64::total_cmp);
    for q in [0.0, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0] {
        assert_close(s.quantile(q).unwrap(), exact(&sorted, q), &format!("q={q}"));
    }
    assert_eq!(s.count(), 20_000);
    // 100 µs .. 10 s at 1 %: about 580 buckets, not 20 000 values.
    assert!(s.bins.len() < 700, "{} buckets", s.bins.len());
}

#[test]
fn merge_is_the_sketch_of_all_values() {
    let a = latencies(5_000, 1);
    let b = latencies(7_000, 2);
    let (mut sa, mut sb, mut all) = (Sketch::new(), Sketch::new(), Sketch::new());
    for x in &a {
        sa.insert(*x);
        all.insert(*x);
    }
    for x in &b {
        sb.insert(*x);
        all.insert(*x);
    }
    sa.merge(&sb);
    assert_eq!(sa, all);
    let mut sorted: Vec<f64> = a.iter().chain(&b).copied().collect();
    sorted.sort_by(f64::total_cmp);
    assert_close(
        sa.quantile(0.99).unwrap(),
        exact(&sorted, 0.99),
        "merged p99",
    );
}

#[test]
fn zeros_nan_and_empty() {
    let mut s = Sketch::new();
    assert_eq!(s.quantile(0.5), None);
    s.insert(f64::NAN);
    assert_eq!(s.count(), 0);
    for _ in 0..9 {
        s.insert(0.0);
    }
    s.insert(2.0);
    assert_eq!(s.quantile(0.5), Some(0.0));
    assert_close(s.quantile(1.0).unwrap(), 2.0, "max");
}

#[test]
fn bins_stay_bounded_and_keep_the_high_end_accurate() {
    let mut s = Sketch::new();
    // 1e-9 .. 1e30 spans far more than MAX_BINS buckets at 1 %.
    let mut x = 2e-9;
    while x < 1e30 {
        s.insert(x);
        x *= 1.5;
    }
    s.insert(1e30);
    assert!(s.bins.len() <= MAX_BINS);
    assert_close(s.quantile(1.0).unwrap(), 1e30, "max");
    assert_close(
        s.quantile(0.99).unwrap(),
        {
            let mut v = vec![];
            let mut x = 2e-9;
            while x < 1e30 {
                v.push(x);
                x *= 1.5;
            }
            v.push(1e30);
            exact(&v, 0.99)
        },
        "p99",
    );
}

#[test]
fn window_forgets_old_slots() {
    let mut w = Window::new(10_000, 6);
    w.insert(0, 5.0);
    w.insert(30_000, 1.0);
    assert_eq!(w.merged(30_000).count(), 2);
    // At 60 s the slot of time 0 (slot 0) has left the window (slots 1..=6).
    let m = w.merged(60_000);
    assert_eq!(m.count(), 1);
    assert_close(m.quantile(1.0).unwrap(), 1.0, "only the newer value");
    assert_eq!(w.merged(200_000).count(), 0);
    assert_eq!(w.heap_bytes(), 0);
}

proptest! {
    #[test]
    fn any_quantile_of_any_values_is_within_alpha(
        v in prop::collection::vec(1e-6f64..1e6, 1..300),
        q in 0.0f64..=1.0,
    ) {
        let mut s = Sketch::new();
        for x in &v { s.insert(*x); }
        let mut sorted = v.clone();
        sorted.sort_by(f64::total_cmp);
        let got = s.quantile(q).unwrap();
        let want = exact(&sorted, q);
        prop_assert!((got - want).abs() / want <= ALPHA + 1e-12, "q={} got {} want {}", q, got, want);
    }

    #[test]
    fn merge_in_any_split_equals_one_sketch(
        v in prop::collection::vec(0.0f64..1e4, 0..200),
        cut in 0usize..200,
    ) {
        let cut = cut.min(v.len());
        let (mut a, mut b, mut all) = (Sketch::new(), Sketch::new(), Sketch::new());
        for x in &v[..cut] { a.insert(*x); }
        for x in &v[cut..] { b.insert(*x); }
        for x in &v { all.insert(*x); }
        a.merge(&b);
        prop_assert_eq!(a.count(), all.count());
        for q in [0.0, 0.5, 0.9, 0.99, 1.0] {
            prop_assert_eq!(a.quantile(q), all.quantile(q));
        }
    }
}
