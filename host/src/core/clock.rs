//! The host clock: arrival times, `tick(now)` and the `now()` plugins import.
//! System time in production; tests set it by hand so time-driven filters
//! can be driven without waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use super::record::Timestamp;

/// A source of "now", in nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system's real-time clock.
    pub fn system() -> Self {
        Clock { manual: None }
    }

    /// A clock that stands still at `start` until [`Clock::set`] moves it.
    pub fn manual(start: Timestamp) -> Self {
        Clock { manual: Some(Arc::new(AtomicI64::new(start))) }
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        match &self.manual {
            Some(t) => t.load(Ordering::Acquire),
            None => system_now(),
        }
    }

    /// Move a manual clock; returns false for the system clock, which cannot be set.
    pub fn set(&self, now: Timestamp) -> bool {
        match &self.manual {
            Some(t) => {
                t.store(now, Ordering::Release);
                true
            }
            None => false,
        }
    }
}

fn system_now() -> Timestamp {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_nanos()).unwrap_or(i64::MAX)
}

/// Format a timestamp as RFC 3339 in UTC (`Z`), with the fraction of a
/// second trimmed to what is set: `2026-11-22T10:00:00Z`, `...00.5Z`.
pub fn rfc3339(time: Timestamp) -> String {
    rfc3339_utc(chrono::DateTime::from_timestamp_nanos(time))
}

/// [`rfc3339`] of a chrono time, for times beyond the nanosecond range.
pub fn rfc3339_utc(time: chrono::DateTime<chrono::Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Read an RFC 3339 time as ns since the epoch.
///
/// # Errors
/// When `text` is not RFC 3339, or is outside the years 1678..2262 that
/// nanoseconds in an `i64` cover.
pub fn parse_rfc3339(text: &str) -> Result<Timestamp, String> {
    let time =
        chrono::DateTime::parse_from_rfc3339(text).map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))?;
    time.timestamp_nanos_opt().ok_or_else(|| format!("{text:?} is outside the years 1678 to 2262"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_set() {
        let clock = Clock::manual(5);
        assert_eq!(clock.now(), 5);
        assert!(clock.clone().set(9));
        assert_eq!(clock.now(), 9);
        assert!(!Clock::system().set(1));
    }

    #[test]
    fn formats_rfc3339_in_utc() {
        assert_eq!(rfc3339(1_700_000_000_123_000_000), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20.123Z"), Ok(1_700_000_000_123_000_000));
        assert!(parse_rfc3339("yesterday").unwrap_err().starts_with("\"yesterday\" is not an RFC 3339 time"));
    }

    #[test]
    fn parses_rfc3339_with_any_offset() {
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20.123Z"), Ok(1_700_000_000_123_000_000));
        assert_eq!(parse_rfc3339("2023-11-14T23:13:20.123+01:00"), Ok(1_700_000_000_123_000_000));
        assert!(parse_rfc3339("2023-11-14").unwrap_err().contains("is not an RFC 3339 time"));
        assert!(parse_rfc3339("2300-01-01T00:00:00Z").unwrap_err().contains("outside"));
    }
}
