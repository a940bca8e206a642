//! `Timestamp`: a UTC instant with millisecond precision, the only time type events carry.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Milliseconds since the Unix epoch, UTC.
///
/// Events are stored and returned with millisecond precision; finer digits in input are
/// truncated (not rounded) so that a value never moves into the next millisecond.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Why a string is not an RFC 3339 timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected an RFC 3339 timestamp with an offset, such as 2026-01-31T12:00:00Z: {0}")]
pub struct TimestampError(String);

/// The earliest instant we accept (year 1970); earlier times in an audit log are input errors.
const MIN_MS: i64 = 0;
/// The latest instant we accept (year 9999).
const MAX_MS: i64 = 253_402_300_799_999;

impl Timestamp {
    /// Builds a timestamp from milliseconds since the epoch, if it is in range.
    pub fn from_millis(ms: i64) -> Option<Timestamp> {
        (MIN_MS..=MAX_MS).contains(&ms).then_some(Timestamp(ms))
    }

    /// Milliseconds since the epoch.
    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// The current time, truncated to milliseconds.
    pub fn now() -> Timestamp {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        Timestamp((nanos / 1_000_000) as i64)
    }

    /// Parses RFC 3339 (`2026-01-31T12:00:00.123+02:00`); the offset is required.
    pub fn parse(text: &str) -> Result<Timestamp, TimestampError> {
        let parsed =
            OffsetDateTime::parse(text, &Rfc3339).map_err(|e| TimestampError(e.to_string()))?;
        // Rounded down, not toward zero: 1969-12-31T23:59:59.9999Z is before 1970, not its
        // first millisecond.
        let ms = parsed.unix_timestamp_nanos().div_euclid(1_000_000) as i64;
        Timestamp::from_millis(ms)
            .ok_or_else(|| TimestampError("outside the years 1970 to 9999".to_string()))
    }

    /// Parses either RFC 3339 or a bare date (`2026-01-31`, meaning its first millisecond
    /// UTC), the forms people type on a command line or in a date picker.
    pub fn parse_lenient(text: &str) -> Result<Timestamp, TimestampError> {
        if text.len() == 10 {
            return Timestamp::parse(&format!("{text}T00:00:00Z"));
        }
        Timestamp::parse(text)
    }

    /// The UTC day this instant falls on, as days since the epoch.
    pub fn day(self) -> i64 {
        self.0.div_euclid(MS_PER_DAY)
    }

    /// The first millisecond of the given day (days since the epoch).
    pub fn start_of_day(day: i64) -> Timestamp {
        Timestamp(day * MS_PER_DAY)
    }

    /// This instant moved by `ms` milliseconds, clamped to the accepted range.
    pub fn plus_millis(self, ms: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms).clamp(MIN_MS, MAX_MS))
    }
}

/// Milliseconds in a UTC day.
pub const MS_PER_DAY: i64 = 86_400_000;

impl fmt::Display for Timestamp {
    /// Always `YYYY-MM-DDTHH:MM:SS.mmmZ`: fixed width, so the text sorts like the instant.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dt = OffsetDateTime::from_unix_timestamp_nanos(self.0 as i128 * 1_000_000)
            .expect("range checked at construction");
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            dt.year(),
            dt.month() as u8,
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second(),
            dt.millisecond()
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_offsets_and_prints_utc_millis() {
        let t = Timestamp::parse("2026-01-31T14:00:00.123456+02:00").unwrap();
        assert_eq!(t.to_string(), "2026-01-31T12:00:00.123Z");
        assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
    }

    #[test]
    fn rejects_missing_offset_and_garbage() {
        assert!(Timestamp::parse("2026-01-31T12:00:00").is_err());
        assert!(Timestamp::parse("yesterday").is_err());
        assert!(Timestamp::parse("1969-12-31T23:59:59Z").is_err());
    }

    #[test]
    fn an_instant_a_fraction_of_a_millisecond_before_1970_is_refused() {
        for before in [
            "1969-12-31T23:59:59.9999Z",
            "1969-12-31T23:59:59.999999999Z",
            "1970-01-01T00:00:00.0001+00:01",
        ] {
            assert!(Timestamp::parse(before).is_err(), "{before}");
        }
        let first = Timestamp::parse("1970-01-01T00:00:00.0009Z").unwrap();
        assert_eq!(first.as_millis(), 0);
    }

    #[test]
    fn lenient_accepts_bare_dates() {
        let t = Timestamp::parse_lenient("2026-02-01").unwrap();
        assert_eq!(t.to_string(), "2026-02-01T00:00:00.000Z");
        assert_eq!(Timestamp::start_of_day(t.day()), t);
    }
}
