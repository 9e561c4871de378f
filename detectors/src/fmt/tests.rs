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
