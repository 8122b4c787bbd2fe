//! Conversions between `time::OffsetDateTime` and protobuf timestamps.

use prost_types::Timestamp;
use time::OffsetDateTime;

/// The current time as a protobuf timestamp.
pub fn now() -> Timestamp {
    to_timestamp(OffsetDateTime::now_utc())
}

/// Converts a UTC time to a protobuf timestamp.
pub fn to_timestamp(t: OffsetDateTime) -> Timestamp {
    let nanos = t.unix_timestamp_nanos();
    Timestamp {
        seconds: nanos.div_euclid(1_000_000_000) as i64,
        nanos: nanos.rem_euclid(1_000_000_000) as i32,
    }
}

/// Converts a protobuf timestamp to UTC time (`None` when out of range).
pub fn from_timestamp(ts: &Timestamp) -> Option<OffsetDateTime> {
    let nanos = i128::from(ts.seconds) * 1_000_000_000 + i128::from(ts.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

/// Formats a protobuf timestamp as RFC 3339 UTC, e.g. `2026-11-28T11:29:51.123Z`.
pub fn to_rfc3339(ts: &Timestamp) -> Option<String> {
    from_timestamp(ts)?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_including_negative_times() {
        for secs in [0_i64, 1_700_000_000, -5] {
            let t =
                OffsetDateTime::from_unix_timestamp(secs).unwrap() + time::Duration::nanoseconds(7);
            assert_eq!(from_timestamp(&to_timestamp(t)), Some(t));
        }
        let ts = Timestamp {
            seconds: 0,
            nanos: 0,
        };
        assert_eq!(to_rfc3339(&ts).as_deref(), Some("1970-01-01T00:00:00Z"));
    }
}
