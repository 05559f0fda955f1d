//! Durations and times in words ("in 52 min", "3 h 5 min ago"), for tables people read.

/// A length of time: "45 s", "52 min", "3 h 5 min", "2 days".
pub(crate) fn span(secs: i64) -> String {
    let secs = secs.abs();
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 2 * 86_400 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        s => format!("{} days", s / 86_400),
    }
}

/// When something expires, seen from now: "in 52 min", or "expired" (and how long ago).
pub(crate) fn expires(secs_left: i64) -> String {
    if secs_left <= 0 {
        format!("expired {} ago", span(secs_left))
    } else {
        format!("in {}", span(secs_left))
    }
}

/// How long ago an RFC 3339 time was: "5 min ago" (or the text itself if it does not parse).
pub(crate) fn ago(rfc3339: &str, now: jiff::Timestamp) -> String {
    match rfc3339.parse::<jiff::Timestamp>() {
        Ok(at) => {
            let secs = now.as_second() - at.as_second();
            if secs < 0 {
                format!("in {}", span(secs))
            } else {
                format!("{} ago", span(secs))
            }
        }
        Err(_) => rfc3339.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_for_people() {
        assert_eq!(expires(3120), "in 52 min");
        assert_eq!(expires(-30), "expired 30 s ago");
        assert_eq!(span(10_800 + 300), "3 h 5 min");
        let now: jiff::Timestamp = "2026-01-01T12:00:00Z".parse().unwrap_or_default();
        assert_eq!(ago("2026-01-01T11:55:00Z", now), "5 min ago");
    }
}
