//! Timestamps as NAB writes them, to epoch milliseconds (UTC), without chrono.

use crate::{Error, Result};

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `(year, month, day)` of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        _ => 28,
    }
}

/// Parses `YYYY-MM-DD HH:MM:SS` with an optional fraction `.f…` (the windows
/// file writes `.000000`) to milliseconds since the Unix epoch, UTC. Digits
/// of the fraction past milliseconds are ignored.
pub fn parse_timestamp_ms(text: &str) -> Result<i64> {
    let bad = |why: &str| Error::new(format!("bad timestamp {text:?}: {why}"));
    let b = text.as_bytes();
    if b.len() < 19 {
        return Err(bad("expected YYYY-MM-DD HH:MM:SS"));
    }
    for (pos, sep) in [(4, b'-'), (7, b'-'), (10, b' '), (13, b':'), (16, b':')] {
        if b[pos] != sep {
            return Err(bad("expected YYYY-MM-DD HH:MM:SS"));
        }
    }
    let num = |from: usize, to: usize| -> Result<u32> {
        let mut v = 0u32;
        for &c in &b[from..to] {
            if !c.is_ascii_digit() {
                return Err(bad("non-digit in a numeric field"));
            }
            v = v * 10 + u32::from(c - b'0');
        }
        Ok(v)
    };
    let year = i64::from(num(0, 4)?);
    let month = num(5, 7)?;
    let day = num(8, 10)?;
    let hour = num(11, 13)?;
    let minute = num(14, 16)?;
    let second = num(17, 19)?;
    if !(1..=12).contains(&month) {
        return Err(bad("month out of range"));
    }
    if day == 0 || day > days_in_month(year, month) {
        return Err(bad("day out of range"));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(bad("time of day out of range"));
    }
    let mut millis = 0i64;
    if b.len() > 19 {
        if b[19] != b'.' || b.len() == 20 {
            return Err(bad("trailing characters"));
        }
        let frac = &b[20..];
        if !frac.iter().all(u8::is_ascii_digit) {
            return Err(bad("non-digit in the fraction"));
        }
        for k in 0..3 {
            millis = millis * 10 + frac.get(k).map_or(0, |&c| i64::from(c - b'0'));
        }
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
    Ok(secs * 1000 + millis)
}

/// `YYYY-MM-DD` (UTC) of a Unix time in seconds.
pub fn format_date(unix_secs: i64) -> String {
    let (y, m, d) = civil_from_days(unix_secs.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_known_instants() {
        assert_eq!(parse_timestamp_ms("1970-01-01 00:00:00").unwrap(), 0);
        // date -u -d '2015-08-31 18:22:00' +%s  → 1441045320
        assert_eq!(
            parse_timestamp_ms("2015-08-31 18:22:00").unwrap(),
            1_441_045_320_000
        );
        assert_eq!(
            parse_timestamp_ms("2014-04-10 07:15:00.000000").unwrap(),
            parse_timestamp_ms("2014-04-10 07:15:00").unwrap()
        );
        assert_eq!(
            parse_timestamp_ms("2000-02-29 23:59:59.5").unwrap(),
            951_868_799_500
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "2015-08-31",
            "2015/08/31 18:22:00",
            "2015-13-01 00:00:00",
            "2015-02-29 00:00:00",
            "2015-08-31 24:00:00",
            "2015-08-31 18:22:00Z",
            "2015-08-31 18:22:00.",
            "2015-08-3x 18:22:00",
        ] {
            assert!(parse_timestamp_ms(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn civil_round_trip() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(format_date(1_441_045_320), "2015-08-31");
    }
}
