use proptest::prelude::*;

use super::*;

#[test]
fn numbers() {
    assert_eq!(num(0.93), "0.93");
    assert_eq!(num(0.1), "0.1");
    assert_eq!(num(120.0), "120");
    assert_eq!(num(0.0), "0");
    assert_eq!(num(-2.5), "-2.5");
    assert_eq!(num(0.1 + 0.2), "0.3");
    assert_eq!(num(0.00001), "1.000e-5");
    assert_eq!(num(f64::NAN), "NaN");
    assert_eq!(num(f64::INFINITY), "inf");
}

#[test]
fn durations() {
    assert_eq!(dur(0), "0s");
    assert_eq!(dur(10_000), "10s");
    assert_eq!(dur(2_500), "2.5s");
    assert_eq!(dur(1), "0.001s");
    assert_eq!(dur(-1_500), "-1.5s");
}

#[test]
fn etas() {
    assert_eq!(eta(2_500), "2.5s");
    assert_eq!(eta(60_000), "1m 0s");
    assert_eq!(eta(725_000), "12m 5s");
    assert_eq!(eta(12_597_711), "3h 29m");
    assert_eq!(eta(3 * 86_400_000 + 5 * 3_600_000 + 1), "3d 5h");
}

/// The formatter's own rounding, as `num` and `dur` were written first.
fn num_by_format(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v != 0.0 && v.abs() < 1e-3 {
        return format!("{v:.3e}");
    }
    trim(format!("{v:.4}"))
}

fn dur_by_format(ms: Millis) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{}s", trim(format!("{:.3}", ms as f64 / 1000.0)))
    }
}

#[test]
fn ties_round_to_even_as_the_formatter_does() {
    // k / 32 is exact in binary and halfway between two 4-decimal numbers
    // when k is odd: 0.03125, 0.09375, …
    for k in 0..100_000 {
        let v = f64::from(k) / 32.0;
        assert_eq!(num(v), num_by_format(v), "{v}");
        assert_eq!(num(-v), num_by_format(-v), "{v}");
    }
    for v in [
        0.03125,
        0.09375,
        1e14 - 1.0,
        99_999_999_999_999.99,
        1e-3,
        0.00099999,
    ] {
        assert_eq!(num(v), num_by_format(v), "{v}");
    }
}

proptest! {
    #[test]
    fn numbers_are_formatted_as_the_formatter_rounds(
        v in prop_oneof![
            any::<f64>(),
            -1e15..1e15f64,
            -1e3..1e3f64,
            (-1_000_000i64..1_000_000).prop_map(|k| k as f64 / 10_000.0),
            (-1_000_000i64..1_000_000).prop_map(|k| k as f64 / 1024.0),
        ],
    ) {
        prop_assert_eq!(num(v), num_by_format(v));
    }

    #[test]
    fn durations_are_formatted_as_the_formatter_rounds(
        ms in prop_oneof![any::<i64>(), -10_000_000_000_000i64..10_000_000_000_000, -100_000i64..100_000],
    ) {
        prop_assert_eq!(dur(ms), dur_by_format(ms));
    }
}
