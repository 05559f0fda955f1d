//! Cron expressions as people write them in crontab: five fields (minute, hour, day of month,
//! month, day of week) read in a time zone, with `*`, ranges, steps, lists, names (`mon`,
//! `jan`) and the `@daily`-style shorthands.
//!
//! Written here rather than taken from a crate: the jiff-based cron crate (`jiff-cron`) reads
//! six or seven fields with seconds first and counts days of the week from 1 = Sunday, so
//! `0 23 * * 1-5` would mean something else than in every crontab; `croner` follows crontab
//! but brings chrono and chrono-tz beside the jiff homehook already uses. The rules below are
//! Vixie cron's, the ones `man 5 crontab` describes:
//! - day of week 0–7, 0 and 7 both Sunday;
//! - when both day fields are restricted (neither starts with `*`), a day matches if
//!   **either** matches (`0 0 1 * mon`: the 1st and every Monday);
//! - a local time skipped by a daylight-saving jump fires just after the jump (02:30 on the
//!   spring-forward night runs at 03:30); a local time that happens twice fires once, the
//!   first time.

use std::fmt;
use std::str::FromStr;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};

/// A parsed five-field cron expression.
#[derive(Clone, PartialEq, Eq)]
pub struct Cron {
    text: String,
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    /// The day-of-month field was restricted (did not start with `*`).
    days_restricted: bool,
    /// The day-of-week field was restricted.
    weekdays_restricted: bool,
}

impl fmt::Debug for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cron({:?})", self.text)
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// One field's bounds and names.
struct Field {
    what: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// Value of the first name (`jan` = 1, `sun` = 0).
    names_from: u32,
}

const MINUTE: Field = Field {
    what: "minute",
    min: 0,
    max: 59,
    names: &[],
    names_from: 0,
};
const HOUR: Field = Field {
    what: "hour",
    min: 0,
    max: 23,
    names: &[],
    names_from: 0,
};
const DAY: Field = Field {
    what: "day of month",
    min: 1,
    max: 31,
    names: &[],
    names_from: 0,
};
const MONTH: Field = Field {
    what: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
    names_from: 1,
};
const WEEKDAY: Field = Field {
    what: "day of week",
    min: 0,
    max: 7,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    names_from: 0,
};

/// Years searched for the next run: `0 0 29 2 *` needs up to 8 (a skipped leap year at 2100).
const SEARCH_DAYS: i32 = 366 * 9;

impl Field {
    fn value(&self, text: &str) -> Result<u32, String> {
        let lower = text.to_ascii_lowercase();
        if let Some(i) = self.names.iter().position(|n| *n == lower) {
            return Ok(self.names_from + i as u32);
        }
        let n: u32 = text.parse().map_err(|_| {
            let names = if self.names.is_empty() {
                String::new()
            } else {
                format!(" or a name ({})", self.names.join(", "))
            };
            format!(
                "{} field: \"{text}\" is not a number from {} to {}{names}",
                self.what, self.min, self.max
            )
        })?;
        if !(self.min..=self.max).contains(&n) {
            return Err(format!(
                "{} field: {n} is out of range ({} to {})",
                self.what, self.min, self.max
            ));
        }
        Ok(n)
    }

    /// The set of values `text` names, as a bit mask.
    fn parse(&self, text: &str) -> Result<u64, String> {
        let mut mask = 0u64;
        for item in text.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((r, s)) => {
                    let step: u32 = s.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                        format!(
                            "{} field: step \"{s}\" must be a whole number above 0",
                            self.what
                        )
                    })?;
                    (r, step)
                }
                None => (item, 1),
            };
            let (from, to) = if range == "*" {
                (self.min, self.max)
            } else if let Some((a, b)) = range.split_once('-') {
                let (a, b) = (self.value(a)?, self.value(b)?);
                if a > b {
                    return Err(format!("{} field: range {a}-{b} runs backwards", self.what));
                }
                (a, b)
            } else {
                let a = self.value(range)?;
                // `5/15`: from 5 to the end, every 15 (as in Vixie cron).
                (a, if step > 1 { self.max } else { a })
            };
            let mut v = from;
            while v <= to {
                mask |= 1 << v;
                v += step;
            }
        }
        Ok(mask)
    }
}

impl FromStr for Cron {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let expanded = match text.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other if other.starts_with('@') => {
                return Err(format!(
                    "unknown shorthand \"{other}\" (known: @yearly, @monthly, @weekly, @daily, @hourly)"
                ));
            }
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), found {}: e.g. \"0 23 * * mon-fri\"",
                fields.len()
            ));
        };
        let mut weekdays = WEEKDAY.parse(weekday)?;
        // 7 is Sunday too.
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays | 1) & 0x7f;
        }
        Ok(Self {
            text: text.trim().to_string(),
            minutes: MINUTE.parse(minute)?,
            hours: HOUR.parse(hour)? as u32,
            days: DAY.parse(day)? as u32,
            months: MONTH.parse(month)? as u16,
            weekdays: weekdays as u8,
            days_restricted: !day.starts_with('*'),
            weekdays_restricted: !weekday.starts_with('*'),
        })
    }
}

impl Cron {
    fn day_matches(&self, date: Date) -> bool {
        if self.months & (1 << date.month()) == 0 {
            return false;
        }
        let by_day = self.days & (1 << date.day()) != 0;
        let by_weekday = self.weekdays & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => by_day || by_weekday,
            _ => by_day && by_weekday,
        }
    }

    /// The first run strictly after `after`, in `tz`. `None` if there is none within nine
    /// years (`0 0 30 2 *`: February never has a 30th).
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let local = after.to_zoned(tz.clone()).datetime();
        let mut date = local.date();
        // Today's candidates start after `after`'s local time; a time moved by a DST gap or
        // repeated by a fold can still land before `after`, so each is checked against it.
        let from = local.time();
        for day in 0..SEARCH_DAYS {
            if day > 0 {
                date = date.checked_add(1.day()).ok()?;
            }
            if !self.day_matches(date) {
                continue;
            }
            for hour in 0..24i8 {
                if self.hours & (1 << hour) == 0 || (day == 0 && hour < from.hour()) {
                    continue;
                }
                for minute in 0..60i8 {
                    if self.minutes & (1 << minute) == 0 {
                        continue;
                    }
                    let time = Time::new(hour, minute, 0, 0).ok()?;
                    if day == 0 && time <= from {
                        continue;
                    }
                    let at = fire_time(DateTime::from_parts(date, time), tz)?;
                    if at > after {
                        return Some(at);
                    }
                }
            }
        }
        None
    }

    /// The latest run at or before `now` and after `since`, if any: the one a late tick
    /// still owes.
    pub fn latest_in(&self, since: Timestamp, now: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let mut latest = None;
        let mut cursor = since;
        while let Some(at) = self.next_after(cursor, tz) {
            if at > now {
                break;
            }
            latest = Some(at);
            cursor = at;
        }
        latest
    }
}

/// When a local time happens: a time in a DST gap moves forward by the gap, a time that
/// happens twice is the first.
fn fire_time(local: DateTime, tz: &TimeZone) -> Option<Timestamp> {
    tz.to_ambiguous_zoned(local)
        .compatible()
        .ok()
        .map(|z: Zoned| z.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paris() -> TimeZone {
        TimeZone::get("Europe/Paris").expect("tzdb")
    }

    fn at(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    fn next(cron: &str, after: &str) -> String {
        let c: Cron = cron.parse().expect(cron);
        let t = c.next_after(at(after), &paris()).expect("fires");
        t.display_with_offset(paris().to_offset(t)).to_string()
    }

    #[test]
    fn weekdays_at_23_paris_time_count_from_monday_as_crontab_does() {
        // Friday 2026-11-20, 23:30 in Paris: the next weekday 23:00 is Monday's.
        assert_eq!(
            next("0 23 * * 1-5", "2026-11-20T22:30:00Z"),
            "2026-11-23T23:00:00+01:00"
        );
        assert_eq!(
            next("0 23 * * mon-fri", "2026-11-20T22:30:00Z"),
            "2026-11-23T23:00:00+01:00"
        );
        // Before 23:00 on a weekday: the same evening.
        assert_eq!(
            next("0 23 * * MON-FRI", "2026-11-24T08:00:00Z"),
            "2026-11-24T23:00:00+01:00"
        );
        // 0 and 7 are both Sunday.
        assert_eq!(
            next("0 9 * * 0", "2026-11-24T08:00:00Z"),
            "2026-11-29T09:00:00+01:00"
        );
        assert_eq!(
            next("0 9 * * 7", "2026-11-24T08:00:00Z"),
            "2026-11-29T09:00:00+01:00"
        );
    }

    #[test]
    fn restricted_day_fields_match_either_day() {
        // The 1st of the month or any Monday (Vixie cron), from Tuesday 2026-11-24.
        assert_eq!(
            next("0 0 1 * mon", "2026-11-24T08:00:00Z"),
            "2026-11-30T00:00:00+01:00"
        );
        assert_eq!(
            next("0 0 1 * mon", "2026-11-30T08:00:00Z"),
            "2026-12-01T00:00:00+01:00"
        );
        // `*` in one of them: both must match.
        assert_eq!(
            next("0 0 * 12 mon", "2026-11-24T08:00:00Z"),
            "2026-12-07T00:00:00+01:00"
        );
    }

    #[test]
    fn steps_lists_and_shorthands() {
        let c: Cron = "5/15 9,18 * * *".parse().expect("parses");
        let mut t = at("2026-11-24T07:00:00Z");
        let mut seen = vec![];
        for _ in 0..5 {
            t = c.next_after(t, &paris()).expect("fires");
            seen.push(t.to_zoned(paris()).strftime("%H:%M").to_string());
        }
        assert_eq!(seen, ["09:05", "09:20", "09:35", "09:50", "18:05"]);
        assert_eq!(
            next("@daily", "2026-11-24T08:00:00Z"),
            "2026-11-25T00:00:00+01:00"
        );
        assert_eq!(
            next("*/20 * * * *", "2026-11-24T08:00:00Z"),
            "2026-11-24T09:20:00+01:00"
        );
    }

    #[test]
    fn a_time_skipped_by_daylight_saving_runs_after_the_jump_and_a_repeated_one_runs_once() {
        // Paris springs forward on 2026-03-29 at 02:00 → 03:00: 02:30 does not exist.
        assert_eq!(
            next("30 2 * * *", "2026-03-28T23:00:00Z"),
            "2026-03-29T03:30:00+02:00"
        );
        assert_eq!(
            next("30 2 * * *", "2026-03-29T01:30:00Z"),
            "2026-03-30T02:30:00+02:00"
        );
        // It falls back on 2026-10-25 at 03:00 → 02:00: 02:30 happens twice, fires once.
        let first = "2026-10-25T02:30:00+02:00";
        assert_eq!(next("30 2 * * *", "2026-10-24T22:00:00Z"), first);
        assert_eq!(
            next("30 2 * * *", "2026-10-25T00:30:00Z"),
            "2026-10-26T02:30:00+01:00"
        );
        // From inside the second 02:00–03:00 hour, too.
        assert_eq!(
            next("30 2 * * *", "2026-10-25T01:10:00Z"),
            "2026-10-26T02:30:00+01:00"
        );
    }

    #[test]
    fn latest_run_owed_within_a_window() {
        let c: Cron = "0 23 * * *".parse().expect("parses");
        let tz = paris();
        // A tick at 23:04 owes the 23:00 run; one at 22:59 owes nothing yet.
        let owed = c.latest_in(at("2026-11-24T21:54:00Z"), at("2026-11-24T22:04:00Z"), &tz);
        assert_eq!(owed, Some(at("2026-11-24T22:00:00Z")));
        assert_eq!(
            c.latest_in(at("2026-11-24T21:49:00Z"), at("2026-11-24T21:59:00Z"), &tz),
            None
        );
        // Every minute, a 10-minute window: only the latest is owed.
        let every: Cron = "* * * * *".parse().expect("parses");
        assert_eq!(
            every.latest_in(at("2026-11-24T21:50:30Z"), at("2026-11-24T22:00:30Z"), &tz),
            Some(at("2026-11-24T22:00:00Z"))
        );
    }

    #[test]
    fn mistakes_are_explained_and_impossible_dates_never_fire() {
        for (text, says) in [
            ("0 23 * *", "expected 5 fields"),
            ("0 0 23 * * *", "expected 5 fields"),
            ("60 * * * *", "minute field: 60 is out of range"),
            ("* 24 * * *", "hour field"),
            ("* * 0 * *", "day of month field"),
            ("* * * 13 *", "month field"),
            ("* * * * 8", "day of week field"),
            ("* * * * funday", "name (sun, mon"),
            ("5-1 * * * *", "runs backwards"),
            ("*/0 * * * *", "step"),
            ("@reboot", "unknown shorthand"),
        ] {
            let e = text.parse::<Cron>().expect_err(text);
            assert!(e.contains(says), "{text}: {e}");
        }
        let never: Cron = "0 0 30 2 *".parse().expect("parses");
        assert_eq!(never.next_after(at("2026-01-01T00:00:00Z"), &paris()), None);
        let leap: Cron = "0 0 29 2 *".parse().expect("parses");
        assert_eq!(
            leap.next_after(at("2026-01-01T00:00:00Z"), &TimeZone::UTC),
            Some(at("2028-02-29T00:00:00Z"))
        );
    }
}
