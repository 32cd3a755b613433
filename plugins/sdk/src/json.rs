//! Single values written as, or read from, JSON text: RFC 3339 timestamps,
//! numbers printed without a spurious `.0`, and a short quote of offending
//! raw JSON for rejection reasons. Whole bodies (fields, splicing) are
//! `body`'s.

use chrono::{DateTime, SecondsFormat};

/// Largest integer an `f64` holds exactly (2^53); integral values up to it
/// print as integers.
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

/// How much of an offending raw value a reason quotes: enough to recognise it,
/// short enough to keep a dead-letter line readable.
const QUOTE_LIMIT: usize = 64;

/// Format nanoseconds since the epoch as RFC 3339 in UTC, with a fraction
/// only when it is not zero: `2026-11-22T10:15:00Z`.
pub fn rfc3339(nanos: i64) -> String {
    DateTime::from_timestamp_nanos(nanos).to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Read an RFC 3339 timestamp as nanoseconds since the epoch.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text).ok()?.timestamp_nanos_opt()
}

/// Write a number as JSON text: integral values as integers (`12`, not
/// `12.0`), others in the shortest form that reads back exactly, and
/// non-finite values as `null`, as JSON has none.
pub fn number(value: f64) -> String {
    if !value.is_finite() {
        "null".to_string()
    } else if value.fract() == 0.0 && value.abs() <= MAX_EXACT_INTEGER {
        format!("{}", value as i64)
    } else {
        serde_json::to_string(&value).expect("a finite f64 always serialises")
    }
}

/// Quote raw JSON for a reason, cut to a readable length.
pub fn quote(raw: &str) -> String {
    match raw.char_indices().nth(QUOTE_LIMIT) {
        Some((cut, _)) => format!("{}…", &raw[..cut]),
        None => raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_is_utc_with_a_z_and_no_zero_fraction() {
        assert_eq!(rfc3339(1_795_342_500_000_000_000), "2026-11-22T10:15:00Z");
        assert_eq!(rfc3339(1_795_342_500_250_000_000), "2026-11-22T10:15:00.250Z");
    }

    #[test]
    fn rfc3339_reads_back() {
        assert_eq!(parse_rfc3339("2026-11-22T10:15:00Z"), Some(1_795_342_500_000_000_000));
        assert_eq!(parse_rfc3339("2026-11-22T11:15:00+01:00"), Some(1_795_342_500_000_000_000));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn integral_numbers_print_without_a_fraction() {
        assert_eq!(number(12.0), "12");
        assert_eq!(number(-3.0), "-3");
        assert_eq!(number(12.5), "12.5");
        assert_eq!(number(0.1), "0.1");
        assert_eq!(number(f64::NAN), "null");
        assert_eq!(number(1e300), "1e+300");
    }

    #[test]
    fn long_raw_values_are_cut() {
        let long = "x".repeat(100);
        assert_eq!(quote(&long).chars().count(), QUOTE_LIMIT + 1);
        assert_eq!(quote("\"12ms\""), "\"12ms\"");
    }
}
