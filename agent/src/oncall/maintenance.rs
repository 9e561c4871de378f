//! Recurring maintenance windows: on these weekdays, from `start` (UTC) for
//! `duration`, notifications for matching incidents are held, as by a silence
//! that comes back every week. Pure: time is an argument.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::duration::Duration;
use crate::config::spanned::Spanned;
use crate::series::selector::Selector;
use crate::series::{Labels, Millis};

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

const WEEK: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

/// One entry of `maintenance_windows:`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceWindow {
    /// Name, shown in the timeline.
    pub name: Spanned<String>,
    /// Label matchers of the incidents it covers; empty: all.
    #[serde(default)]
    pub matchers: Option<Spanned<String>>,
    /// Days it starts on; empty: every day.
    #[serde(default)]
    pub weekdays: Vec<Weekday>,
    /// Start time of day, `HH:MM` in UTC.
    pub start: Spanned<String>,
    /// How long it lasts (at most 7 days).
    pub duration: Duration,
}

const DAY: Millis = 86_400_000;

/// Minutes after midnight of `HH:MM`.
pub fn parse_start(s: &str) -> Result<i64, String> {
    let bad = || format!("start {s:?}: expected HH:MM (UTC), e.g. 02:30");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let (h, m): (i64, i64) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(0..24).contains(&h) || !(0..60).contains(&m) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

impl MaintenanceWindow {
    /// Problems found at load time.
    pub fn check(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Err(e) = parse_start(&self.start) {
            out.push(e);
        }
        if self.duration.millis() <= 0 || self.duration.millis() > 7 * DAY {
            out.push("duration must be above 0 and at most 7 days".into());
        }
        if let Some(m) = &self.matchers
            && let Err(e) = Selector::matchers_only(m)
        {
            out.push(format!("matchers: {}", e.message));
        }
        out
    }

    /// In force at `now` for these labels.
    pub fn covers(&self, labels: &Labels, now: Millis) -> bool {
        let Ok(start) = parse_start(&self.start) else {
            return false;
        };
        if let Some(m) = &self.matchers
            && !Selector::matchers_only(m).is_ok_and(|ms| ms.iter().all(|x| x.matches(labels)))
        {
            return false;
        }
        let today = now.div_euclid(DAY);
        // A window may have started up to 7 days ago.
        (0..=7).any(|k| {
            let day = today - k;
            // 1970-01-01 was a Thursday.
            let weekday = WEEK[(day + 3).rem_euclid(7) as usize];
            let from = day * DAY + start * 60_000;
            (self.weekdays.is_empty() || self.weekdays.contains(&weekday))
                && from <= now
                && now < from + self.duration.millis()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(weekdays: Vec<Weekday>, start: &str, hours: u64) -> MaintenanceWindow {
        MaintenanceWindow {
            name: Spanned::unplaced("patching".into()),
            matchers: Some(Spanned::unplaced(r#"{env="prod"}"#.into())),
            weekdays,
            start: Spanned::unplaced(start.into()),
            duration: Duration::from_secs(hours * 3600),
        }
    }

    fn prod() -> Labels {
        Labels::from([("env".to_string(), "prod".to_string())])
    }

    // 2026-11-22 is a Sunday.
    const SUN: Millis = 1_795_305_600_000;
    const H: Millis = 3_600_000;

    #[test]
    fn weekly_window_covers_only_its_hours() {
        let w = window(vec![Weekday::Sun], "02:00", 2);
        assert!(!w.covers(&prod(), SUN + H));
        assert!(w.covers(&prod(), SUN + 2 * H));
        assert!(w.covers(&prod(), SUN + 4 * H - 1));
        assert!(!w.covers(&prod(), SUN + 4 * H));
        // The Saturday before and the Monday after are not covered.
        assert!(!w.covers(&prod(), SUN - DAY + 3 * H));
        assert!(!w.covers(&prod(), SUN + DAY + 3 * H));
        // A week later it is back.
        assert!(w.covers(&prod(), SUN + 7 * DAY + 3 * H));
        let dev = Labels::from([("env".to_string(), "dev".to_string())]);
        assert!(!w.covers(&dev, SUN + 3 * H));
    }

    #[test]
    fn a_window_may_cross_midnight_and_every_day_is_the_default() {
        let w = window(vec![Weekday::Sat], "23:00", 3);
        assert!(
            w.covers(&prod(), SUN + H),
            "Saturday 23:00 + 3h reaches Sunday 01:00"
        );
        assert!(!w.covers(&prod(), SUN + 2 * H));
        let daily = window(vec![], "12:00", 1);
        for d in 0..7 {
            assert!(daily.covers(&prod(), SUN + d * DAY + 12 * H + 30 * 60_000));
        }
    }

    #[test]
    fn bad_settings_are_reported() {
        let mut w = window(vec![], "25:00", 0);
        w.matchers = Some(Spanned::unplaced("{env=~\"(\"}".into()));
        let p = w.check().join("\n");
        assert!(p.contains("expected HH:MM"), "{p}");
        assert!(p.contains("duration must be above 0"), "{p}");
        assert!(p.contains("matchers:"), "{p}");
        assert_eq!(parse_start("02:30"), Ok(150));
    }
}
