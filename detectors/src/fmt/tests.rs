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
