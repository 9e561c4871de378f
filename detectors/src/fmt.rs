//! Number and duration formatting for evidence sentences.

use std::fmt::{self, Display, Formatter};

use crate::Millis;

/// Formats a number for humans: up to four decimals, trailing zeros trimmed
/// (`0.93`, `120`, `0.1`); very small magnitudes use scientific notation.
pub(crate) fn num(v: f64) -> String {
    Num(v).to_string()
}

/// [`num`] as a `Display`, to format into a sentence without a `String`
/// of its own.
pub(crate) struct Num(pub(crate) f64);

impl Display for Num {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if !v.is_finite() {
            write!(f, "{v}")
        } else if v != 0.0 && v.abs() < 1e-3 {
            write!(f, "{v:.3e}")
        } else if v.abs() < 1e14 {
            fixed(f, round_to_4_decimals(v.abs()), 4, v.is_sign_negative())
        } else {
            f.write_str(&trim(format!("{v:.4}")))
        }
    }
}

/// `v · 10⁴` rounded to an integer as `format!("{v:.4}")` rounds `v` (the
/// exact binary value, ties to even), for `0 ≤ v < 10¹⁴`: by integer
/// arithmetic, several times faster than the formatter's exact mode.
fn round_to_4_decimals(v: f64) -> u64 {
    let bits = v.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    let (mantissa, shift) = if exponent == 0 {
        (fraction, 1074)
    } else {
        (fraction | (1 << 52), 1075 - exponent)
    };
    // v = mantissa / 2^shift, and shift > 0 below 2^52.
    let scaled = u128::from(mantissa) * 10_000;
    if shift >= 128 {
        // v < 2^-60 (only 0 gets here): rounds to 0.
        return 0;
    }
    let shift = shift as u32;
    let q = scaled >> shift;
    let rest = scaled & ((1 << shift) - 1);
    let half = 1 << (shift - 1);
    let up = rest > half || (rest == half && q & 1 == 1);
    (q + u128::from(up)) as u64
}

/// Writes `q / 10^decimals` with trailing zeros trimmed, `-` first when
/// `negative` (but not for 0). The digits are put together here: the
/// formatting machinery for two integers costs several times more.
fn fixed(f: &mut Formatter<'_>, q: u64, decimals: u32, negative: bool) -> fmt::Result {
    // Written from the end: a sign, 20 digits, a point, 19 decimals.
    let mut buf = [0u8; 41];
    let mut at = buf.len();
    let mut put = |byte: u8| {
        at -= 1;
        buf[at] = byte;
    };
    let unit = 10u64.pow(decimals);
    let (mut int, mut frac) = (q / unit, q % unit);
    let mut width = decimals;
    while frac != 0 && frac % 10 == 0 {
        frac /= 10;
        width -= 1;
    }
    if frac != 0 {
        for _ in 0..width {
            put(b'0' + (frac % 10) as u8);
            frac /= 10;
        }
        put(b'.');
    }
    loop {
        put(b'0' + (int % 10) as u8);
        int /= 10;
        if int == 0 {
            break;
        }
    }
    if negative && q != 0 {
        put(b'-');
    }
    f.write_str(std::str::from_utf8(&buf[at..]).map_err(|_| fmt::Error)?)
}

/// Formats a duration in milliseconds as seconds: `10s`, `2.5s`, `0.001s`.
pub(crate) fn dur(ms: Millis) -> String {
    Dur(ms).to_string()
}

/// [`dur`] as a `Display`.
pub(crate) struct Dur(pub(crate) Millis);

impl Display for Dur {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        if ms % 1000 == 0 {
            write!(f, "{}s", ms / 1000)
        } else if ms.unsigned_abs() < 1_000_000_000_000 {
            // ms / 1000 as an f64 is within 10⁻⁷ of the exact quotient
            // here, so its three decimals are the quotient's.
            fixed(f, ms.unsigned_abs(), 3, ms < 0)?;
            f.write_str("s")
        } else {
            write!(f, "{}s", trim(format!("{:.3}", ms as f64 / 1000.0)))
        }
    }
}

/// A span ahead for people: `3h 29m`, `12m 5s`, or [`dur`] under a minute
/// (rounded down to the unit shown last).
#[cfg(test)]
pub(crate) fn eta(ms: Millis) -> String {
    Eta(ms).to_string()
}

/// [`eta`] as a `Display`.
pub(crate) struct Eta(pub(crate) Millis);

impl Display for Eta {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        if ms < 60_000 {
            return Dur(ms).fmt(f);
        }
        let s = ms / 1000;
        let (d, h, m) = (s / 86_400, s / 3600 % 24, s / 60 % 60);
        match (d, h) {
            (0, 0) => write!(f, "{m}m {}s", s % 60),
            (0, _) => write!(f, "{h}h {m}m"),
            _ => write!(f, "{d}d {h}h"),
        }
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
