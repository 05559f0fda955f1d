//! Durations as a person says them: "3 hours", not 10800 or an RFC 3339 time in UTC.

/// `secs` (0 or more) in words, rounded to the unit a person would use: "less than a minute",
/// "1 minute", "45 minutes", "3 hours", "2 days".
pub fn duration_in_words(secs: i64) -> String {
    const MINUTE: i64 = 60;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;
    let secs = secs.max(0);
    let (count, unit) = if secs < MINUTE {
        return "less than a minute".into();
    } else if secs < 90 * MINUTE {
        (rounded(secs, MINUTE), "minute")
    } else if secs < 36 * HOUR {
        (rounded(secs, HOUR), "hour")
    } else {
        (rounded(secs, DAY), "day")
    };
    if count == 1 {
        format!("1 {unit}")
    } else {
        format!("{count} {unit}s")
    }
}

fn rounded(secs: i64, unit: i64) -> i64 {
    (secs + unit / 2) / unit
}

#[cfg(test)]
mod tests {
    use super::duration_in_words;

    #[test]
    fn durations_read_as_people_say_them() {
        for (secs, words) in [
            (-5, "less than a minute"),
            (59, "less than a minute"),
            (60, "1 minute"),
            (89, "1 minute"),
            (45 * 60, "45 minutes"),
            (89 * 60, "89 minutes"),
            (90 * 60, "2 hours"),
            (10_800, "3 hours"),
            (10_740, "3 hours"),
            (35 * 3600, "35 hours"),
            (36 * 3600, "2 days"),
            (14 * 86_400, "14 days"),
        ] {
            assert_eq!(duration_in_words(secs), words, "{secs} s");
        }
    }
}
