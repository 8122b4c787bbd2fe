//! The retry schedule of deliveries: the waits before each retry. The
//! first attempt is made at once; a delivery that fails them all fails.

use std::time::Duration;

/// The default: retries after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h,
/// 14 h and 24 h — ten attempts over about 2.7 days (Standard Webhooks'
/// recommendation, stretched to three days).
pub const DEFAULT: &str = "5s,5m,30m,2h,5h,10h,10h,14h,24h";

/// The waits, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule(pub Vec<Duration>);

/// Parses a comma-separated list of durations (`100ms,5s,5m`); an empty
/// list means no retry.
pub fn parse(s: &str) -> Result<Schedule, String> {
    s.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| humantime::parse_duration(part).map_err(|e| format!("`{part}`: {e}")))
        .collect::<Result<Vec<_>, _>>()
        .map(Schedule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_spans_about_three_days_in_ten_attempts() {
        let schedule = parse(DEFAULT).unwrap();
        assert_eq!(schedule.0.len(), 9);
        let total: Duration = schedule.0.iter().sum();
        assert!(total > Duration::from_secs(60 * 3600) && total < Duration::from_secs(72 * 3600));
        assert_eq!(
            parse("100ms, 2s").unwrap().0,
            [Duration::from_millis(100), Duration::from_secs(2)]
        );
        assert!(parse("soon").is_err());
    }
}
