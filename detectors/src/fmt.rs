//! Number and duration formatting for evidence sentences.

use crate::Millis;

/// Formats a number for humans: up to four decimals, trailing zeros trimmed
/// (`0.93`, `120`, `0.1`); very small magnitudes use scientific notation.
pub(crate) fn num(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v != 0.0 && v.abs() < 1e-3 {
        return format!("{v:.3e}");
    }
    trim(format!("{v:.4}"))
}

/// Formats a duration in milliseconds as seconds: `10s`, `2.5s`, `0.001s`.
pub(crate) fn dur(ms: Millis) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{}s", trim(format!("{:.3}", ms as f64 / 1000.0)))
    }
}

/// A span ahead for people: `3h 29m`, `12m 5s`, or [`dur`] under a minute
/// (rounded down to the unit shown last).
pub(crate) fn eta(ms: Millis) -> String {
    if ms < 60_000 {
        return dur(ms);
    }
    let s = ms / 1000;
    let (d, h, m) = (s / 86_400, s / 3600 % 24, s / 60 % 60);
    match (d, h) {
        (0, 0) => format!("{m}m {}s", s % 60),
        (0, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

fn trim(s: String) -> String {
    if s.contains('.') {
        let t = s.trim_end_matches('0').trim_end_matches('.');
        if t == "-0" {
            "0".to_owned()
        } else {
            t.to_owned()
        }
    } else {
        s
    }
}

#[cfg(test)]
mod tests;
