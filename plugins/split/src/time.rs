//! Event-time parsing: turns the text (or JSON number) found for a statement
//! into nanoseconds since the Unix epoch, UTC, in one of the configured
//! formats. It does not know where the text came from; `chunk` finds it.
//!
//! A strftime format must yield a full instant or say, at `configure`, what
//! completes it: a format with month, day and time but no year (BSD syslog's
//! `%b %d %H:%M:%S`) takes the year from the host clock, and one with a time
//! but no date (`%H:%M:%S`) takes the day from it, as syslog parsers do.
//! Any other gap (a date without a time of day, a day without a month, a
//! zone name that names no offset) is refused at `configure`, so `weir
//! validate` names it. Without an offset in the text, times are UTC.

use std::fmt::Write as _;

use chrono::format::{Fixed, Item, Parsed, StrftimeItems};
use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, TimeZone, Utc};
use weir_plugin_sdk::RawValue;

/// How far ahead of the host clock a statement's completed year may put it:
/// a day covers devices that log local time east of UTC (up to 14 hours
/// ahead) and clocks a little fast, so `Dec 31 23:59:59` read just after New
/// Year falls in the old year and `Jan 1 00:00:01` read just before it in
/// the new one.
const YEAR_AHEAD_OF_CLOCK: Duration = Duration::days(1);

/// How far ahead of the host clock a statement's completed day may put it:
/// half a day, so a time is read as the nearest one, and `23:59:59` read
/// just after midnight is yesterday's.
const DAY_AHEAD_OF_CLOCK: Duration = Duration::hours(12);

/// Years tried below the host clock's when completing a year: enough to
/// reach a leap year for `Feb 29` (eight years around 2100).
const YEARS_BACK: i32 = 8;

/// How a statement's time is written.
#[derive(Debug, Clone)]
pub enum TimeFormat {
    /// RFC 3339, such as `2024-05-01T12:00:00.250Z`.
    Rfc3339,
    /// Seconds since the epoch, possibly fractional (`1714564800.25`).
    Unix,
    /// Milliseconds since the epoch, possibly fractional.
    UnixMs,
    /// A strftime format, read as UTC when it carries no offset. The items are
    /// parsed once, in `configure`, so a bad format fails there.
    Strftime {
        /// The format as written in the config, for messages.
        source: String,
        /// The compiled format.
        items: Vec<Item<'static>>,
        /// What the host clock completes.
        completion: Completion,
    },
}

/// What a strftime format leaves for the host clock to complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// Nothing: the format gives a full date and time.
    Nothing,
    /// The year (`%b %d %H:%M:%S`): the latest year, from next year back,
    /// that makes a valid date at most a day ahead of the host clock.
    Year,
    /// The date (`%H:%M:%S`): the latest day that puts the time at most 12
    /// hours ahead of the host clock.
    Date,
}

/// Why a statement's time could not be read.
#[derive(Debug, Clone, PartialEq)]
pub enum TimeError {
    /// The text does not parse in the configured format.
    Invalid {
        /// The offending text.
        text: String,
        /// The format's name, e.g. `rfc3339` or `format "%Y-%m-%d"`.
        format: String,
        /// The parser's explanation.
        detail: String,
    },
    /// The value is valid but outside the range of a 64-bit nanosecond
    /// timestamp (years 1677 to 2262).
    OutOfRange {
        /// The offending text.
        text: String,
    },
    /// The JSON value is of a kind the format cannot read, e.g. a number for
    /// rfc3339.
    WrongKind {
        /// The raw JSON.
        json: String,
        /// What the format needs.
        expected: &'static str,
    },
}

impl std::fmt::Display for TimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid { text, format, detail } => {
                write!(f, "time {text:?} is not {format}: {detail}")
            }
            Self::OutOfRange { text } => {
                write!(f, "time {text:?} is outside the years 1677 to 2262")
            }
            Self::WrongKind { json, expected } => {
                write!(f, "time {json} is not {expected}")
            }
        }
    }
}

impl std::error::Error for TimeError {}

impl TimeFormat {
    /// Read a `time.format` config value: `rfc3339`, `unix`, `unix_ms`, or a
    /// strftime format. The error is the message for a config-error.
    pub fn from_config(format: &str) -> Result<Self, String> {
        match format {
            "rfc3339" => Ok(Self::Rfc3339),
            "unix" => Ok(Self::Unix),
            "unix_ms" => Ok(Self::UnixMs),
            other => {
                if !other.contains('%') {
                    return Err(format!(
                        "unknown format {other:?}: expected rfc3339, unix, unix_ms or a strftime format"
                    ));
                }
                let items = StrftimeItems::new(other)
                    .parse_to_owned()
                    .map_err(|e| format!("invalid strftime format {other:?}: {e}"))?;
                let completion = completion(other, &items)?;
                Ok(Self::Strftime { source: other.to_owned(), items, completion })
            }
        }
    }

    fn name(&self) -> String {
        match self {
            Self::Rfc3339 => "rfc3339".into(),
            Self::Unix => "unix seconds".into(),
            Self::UnixMs => "unix milliseconds".into(),
            Self::Strftime { source, .. } => format!("in format {source:?}"),
        }
    }

    /// Parse time text, such as a regex capture or a token of a string
    /// statement, with `now` (the host clock, ns) completing what the format
    /// lacks. Surrounding whitespace is ignored.
    pub fn parse_text(&self, text: &str, now: i64) -> Result<i64, TimeError> {
        let trimmed = text.trim();
        let invalid = |detail: String| TimeError::Invalid { text: text.to_owned(), format: self.name(), detail };
        let out_of_range = || TimeError::OutOfRange { text: text.to_owned() };
        match self {
            Self::Rfc3339 => DateTime::parse_from_rfc3339(trimmed)
                .map_err(|e| invalid(e.to_string()))?
                .timestamp_nanos_opt()
                .ok_or_else(out_of_range),
            // Seconds carry 9 decimal places of nanoseconds, milliseconds 6.
            Self::Unix => decimal_scaled(trimmed, 9).map_err(|e| match e {
                DecimalError::Syntax => invalid("expected a decimal number".into()),
                DecimalError::Range => out_of_range(),
            }),
            Self::UnixMs => decimal_scaled(trimmed, 6).map_err(|e| match e {
                DecimalError::Syntax => invalid("expected a decimal number".into()),
                DecimalError::Range => out_of_range(),
            }),
            Self::Strftime { items, completion, .. } => {
                let mut parsed = Parsed::new();
                chrono::format::parse(&mut parsed, trimmed, items.iter()).map_err(|e| invalid(e.to_string()))?;
                resolve(&parsed, *completion, now).map_err(invalid)?.timestamp_nanos_opt().ok_or_else(out_of_range)
            }
        }
    }

    /// Parse a JSON value found in an object statement: a string in any
    /// format, or a number for `unix` and `unix_ms` (read from its text, so
    /// no precision is lost to `f64`).
    pub fn parse_json(&self, value: &RawValue, now: i64) -> Result<i64, TimeError> {
        let json = value.get();
        match json.as_bytes().first() {
            Some(b'"') => match weir_plugin_sdk::as_str(value) {
                Some(text) => self.parse_text(&text, now),
                None => Err(TimeError::WrongKind { json: json.into(), expected: "a valid string" }),
            },
            Some(b'-' | b'0'..=b'9') if matches!(self, Self::Unix | Self::UnixMs) => self.parse_text(json, now),
            _ => Err(TimeError::WrongKind {
                json: json.into(),
                expected: match self {
                    Self::Unix | Self::UnixMs => "a number or a string",
                    _ => "a string",
                },
            }),
        }
    }
}

/// Decide what a strftime format leaves to complete, by formatting a
/// reference instant with it and reading the text back: what chrono's
/// parser then knows is what every statement will give. The error is the
/// config-error message.
fn completion(source: &str, items: &[Item<'static>]) -> Result<Completion, String> {
    let reference = FixedOffset::east_opt(3600)
        .and_then(|offset| offset.with_ymd_and_hms(2026, 11, 22, 10, 11, 12).single())
        .expect("a valid reference instant");
    // Formatting fails (and `to_string` would panic) on directives chrono
    // only reads, such as `%#z`.
    let mut text = String::new();
    write!(text, "{}", reference.format_with_items(items.iter())).map_err(|_| {
        format!("format {source:?} cannot write a time: it holds a directive that only reads, such as %#z; use %z")
    })?;
    let mut parsed = Parsed::new();
    chrono::format::parse(&mut parsed, &text, items.iter())
        .map_err(|e| format!("format {source:?} cannot read its own output {text:?}: {e}"))?;
    let zone_name = items.iter().any(|item| matches!(item, Item::Fixed(Fixed::TimezoneName)));
    if zone_name && parsed.offset().is_none() {
        return Err(format!(
            "format {source:?}: %Z reads a zone name, which gives no offset; use %z (+0100) or write the zone literally (UTC)"
        ));
    }
    if parsed.timestamp().is_some() {
        return Ok(Completion::Nothing);
    }
    let has_time = parsed.to_naive_time().is_ok();
    let has_date = parsed.to_naive_date().is_ok();
    let no_date_field = parsed.year().is_none()
        && parsed.year_mod_100().is_none()
        && parsed.isoyear().is_none()
        && parsed.isoyear_mod_100().is_none()
        && parsed.month().is_none()
        && parsed.day().is_none()
        && parsed.ordinal().is_none()
        && parsed.isoweek().is_none()
        && parsed.week_from_sun().is_none()
        && parsed.week_from_mon().is_none()
        && parsed.weekday().is_none();
    let mut with_year = parsed.clone();
    let year_completes = with_year.set_year(i64::from(reference.year())).is_ok() && with_year.to_naive_date().is_ok();
    match (has_date, has_time) {
        (true, true) => Ok(Completion::Nothing),
        (false, true) if year_completes => Ok(Completion::Year),
        (false, true) if no_date_field => Ok(Completion::Date),
        (_, false) => Err(format!(
            "format {source:?} gives no time of day: it needs an hour and a minute (%H:%M, or %I:%M with %p)"
        )),
        (false, true) => Err(format!(
            "format {source:?} gives no full date: it needs a month and a day (%b %d, %m-%d), a day of the year (%j), or no date at all (the host's day is taken)"
        )),
    }
}

/// The instant `parsed` names, with its offset or else as UTC.
fn instant(parsed: &Parsed) -> chrono::format::ParseResult<DateTime<Utc>> {
    if parsed.offset().is_some() {
        parsed.to_datetime().map(|t| t.to_utc())
    } else {
        parsed.to_naive_datetime_with_offset(0).map(|t| t.and_utc())
    }
}

/// The instant of `parsed`, its year or date completed from the host clock
/// `now` as `completion` says: the latest candidate that makes a valid date
/// no further ahead of `now` than the completion allows. The error is the
/// parser's explanation.
fn resolve(parsed: &Parsed, completion: Completion, now: i64) -> Result<DateTime<Utc>, String> {
    let now = DateTime::from_timestamp_nanos(now);
    let today = now.date_naive();
    let (candidates, ahead): (Vec<NaiveDate>, Duration) = match completion {
        Completion::Nothing => return instant(parsed).map_err(|e| e.to_string()),
        // One candidate per year: only its year is used.
        Completion::Year => (
            (-YEARS_BACK..=1).rev().filter_map(|back| NaiveDate::from_ymd_opt(today.year() + back, 1, 1)).collect(),
            YEAR_AHEAD_OF_CLOCK,
        ),
        // Two days each way cover every offset from -14 to +14 hours.
        Completion::Date => ((-2..=2).rev().map(|days| today + Duration::days(days)).collect(), DAY_AHEAD_OF_CLOCK),
    };
    let found = candidates.into_iter().find_map(|day| {
        let mut filled = parsed.clone();
        filled.set_year(i64::from(day.year())).ok()?;
        if completion == Completion::Date {
            filled.set_month(i64::from(day.month())).ok()?;
            filled.set_day(i64::from(day.day())).ok()?;
        }
        instant(&filled).ok().filter(|t| *t <= now + ahead)
    });
    found.ok_or_else(|| match completion {
        Completion::Date => format!("no day near the host clock {} makes it a valid time", now.to_rfc3339()),
        _ => format!(
            "no year from {} to {} makes it a valid date at most a day ahead of the host clock",
            now.year() - YEARS_BACK,
            now.year() + 1
        ),
    })
}

enum DecimalError {
    Syntax,
    Range,
}

/// Parse a decimal number (`-12.5`, `1.7e9`) exactly and multiply it by
/// 10^`scale`, truncating toward zero. Exact because `f64` has ~16
/// significant digits and a nanosecond timestamp needs 19.
fn decimal_scaled(text: &str, scale: i32) -> Result<i64, DecimalError> {
    // More digits than this cannot fit an i128 after scaling; no real
    // timestamp comes near it.
    const MAX_DIGITS: usize = 30;
    let bytes = text.as_bytes();
    let mut i = 0;
    let negative = match bytes.first() {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut mantissa: i128 = 0;
    let mut digits = 0usize;
    let mut exponent: i32 = 0;
    let mut seen_point = false;
    let mut any_digit = false;
    while i < bytes.len() {
        match bytes[i] {
            b @ b'0'..=b'9' => {
                any_digit = true;
                // Leading zeros cost nothing; digits past MAX_DIGITS are
                // below a nanosecond and are dropped.
                if mantissa != 0 || b != b'0' {
                    digits += 1;
                }
                if digits <= MAX_DIGITS {
                    mantissa = mantissa * 10 + i128::from(b - b'0');
                    if seen_point {
                        exponent -= 1;
                    }
                } else if !seen_point {
                    exponent += 1;
                }
            }
            b'.' if !seen_point => seen_point = true,
            b'e' | b'E' => break,
            _ => return Err(DecimalError::Syntax),
        }
        i += 1;
    }
    if !any_digit {
        return Err(DecimalError::Syntax);
    }
    if i < bytes.len() {
        // Exponent part, after `e`.
        let exp: i32 = text[i + 1..].parse().map_err(|_| DecimalError::Syntax)?;
        exponent = exponent.checked_add(exp).ok_or(DecimalError::Range)?;
    }
    let shift = exponent.checked_add(scale).ok_or(DecimalError::Range)?;
    let mut value = mantissa;
    if shift >= 0 {
        let factor = 10i128.checked_pow(shift.unsigned_abs()).ok_or(DecimalError::Range)?;
        value = value.checked_mul(factor).ok_or(DecimalError::Range)?;
    } else {
        value = match 10i128.checked_pow(shift.unsigned_abs()) {
            Some(divisor) => value / divisor,
            None => 0,
        };
    }
    if negative {
        value = -value;
    }
    i64::try_from(value).map_err(|_| DecimalError::Range)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host clock in most tests: 2026-11-30T05:00:00Z.
    const NOW: i64 = 1_796_014_800_000_000_000;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).unwrap()
    }

    #[test]
    fn rfc3339_reads_offsets_and_fractions() {
        let f = TimeFormat::Rfc3339;
        assert_eq!(f.parse_text("1970-01-01T00:00:01.5Z", NOW), Ok(1_500_000_000));
        assert_eq!(f.parse_text("1970-01-01T01:00:00+01:00", NOW), Ok(0));
    }

    #[test]
    fn rfc3339_errors_name_the_text_and_format() {
        let err = TimeFormat::Rfc3339.parse_text("abc", NOW).unwrap_err();
        assert!(err.to_string().starts_with(r#"time "abc" is not rfc3339: "#), "{err}");
    }

    #[test]
    fn unix_seconds_keep_nanosecond_precision() {
        let f = TimeFormat::Unix;
        assert_eq!(f.parse_text("1714564800.123456789", NOW), Ok(1_714_564_800_123_456_789));
        assert_eq!(f.parse_text("1714564800", NOW), Ok(1_714_564_800_000_000_000));
        assert_eq!(f.parse_text("-1.5", NOW), Ok(-1_500_000_000));
        assert_eq!(f.parse_text("1.7145648e9", NOW), Ok(1_714_564_800_000_000_000));
        assert_eq!(f.parse_text("0.0000000019", NOW), Ok(1));
    }

    #[test]
    fn unix_ms_scales_by_a_million() {
        assert_eq!(TimeFormat::UnixMs.parse_text("1714564800123", NOW), Ok(1_714_564_800_123_000_000));
        assert_eq!(TimeFormat::UnixMs.parse_text("1.5", NOW), Ok(1_500_000));
    }

    #[test]
    fn unix_rejects_junk_and_overflow() {
        assert!(matches!(TimeFormat::Unix.parse_text("12a", NOW), Err(TimeError::Invalid { .. })));
        assert!(matches!(TimeFormat::Unix.parse_text("", NOW), Err(TimeError::Invalid { .. })));
        assert!(matches!(TimeFormat::Unix.parse_text(".", NOW), Err(TimeError::Invalid { .. })));
        assert!(matches!(TimeFormat::Unix.parse_text("1e30", NOW), Err(TimeError::OutOfRange { .. })));
        assert!(matches!(
            TimeFormat::Unix.parse_text("99999999999999999999999999999999999", NOW),
            Err(TimeError::OutOfRange { .. })
        ));
    }

    #[test]
    fn strftime_without_offset_is_utc() {
        let f = TimeFormat::from_config("%Y-%m-%d %H:%M:%S%.3f").unwrap();
        assert_eq!(f.parse_text("1970-01-01 00:00:02.250", NOW), Ok(2_250_000_000));
    }

    #[test]
    fn strftime_with_offset_honours_it() {
        let f = TimeFormat::from_config("%Y-%m-%dT%H:%M:%S%z").unwrap();
        assert_eq!(f.parse_text("1970-01-01T02:00:00+0200", NOW), Ok(0));
    }

    #[test]
    fn strftime_mismatch_names_the_format() {
        let f = TimeFormat::from_config("%Y-%m-%d %H:%M:%S").unwrap();
        let err = f.parse_text("yesterday", NOW).unwrap_err().to_string();
        assert!(err.starts_with(r#"time "yesterday" is not in format "%Y-%m-%d %H:%M:%S": "#), "{err}");
    }

    #[test]
    fn from_config_refuses_unknown_names_and_bad_formats() {
        assert!(TimeFormat::from_config("iso").unwrap_err().starts_with("unknown format \"iso\""));
        assert!(TimeFormat::from_config("%Y-%Q").unwrap_err().starts_with("invalid strftime format"));
    }

    /// Found by the `split_time` fuzz target: `%#z` only reads, so writing
    /// the reference instant with it failed, and `to_string` panicked (the
    /// plugin trapped at configure instead of naming the setting).
    /// See: fuzz/plugins/regressions/split_time/
    #[test]
    fn issue_16_a_directive_that_only_reads_is_a_config_error_not_a_panic() {
        let refused = TimeFormat::from_config("%H:%M %#z").unwrap_err();
        assert_eq!(
            refused,
            "format \"%H:%M %#z\" cannot write a time: it holds a directive that only reads, such as %#z; use %z"
        );
    }

    #[test]
    fn json_numbers_work_for_unix_only() {
        assert_eq!(TimeFormat::Unix.parse_json(&raw("12.5"), NOW), Ok(12_500_000_000));
        assert_eq!(TimeFormat::UnixMs.parse_json(&raw(r#""12""#), NOW), Ok(12_000_000));
        let err = TimeFormat::Rfc3339.parse_json(&raw("12"), NOW).unwrap_err();
        assert_eq!(err.to_string(), "time 12 is not a string");
        let err = TimeFormat::Unix.parse_json(&raw("null"), NOW).unwrap_err();
        assert_eq!(err.to_string(), "time null is not a number or a string");
    }

    fn at(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp_nanos_opt().unwrap()
    }

    fn completed(format: &str, text: &str, now: &str) -> Result<String, TimeError> {
        let f = TimeFormat::from_config(format).unwrap();
        f.parse_text(text, at(now)).map(|t| DateTime::from_timestamp_nanos(t).to_rfc3339())
    }

    #[test]
    fn missing_years_and_dates_are_completed_from_the_host_clock() {
        // (format, text, host clock, instant)
        let cases = [
            // No year: the host clock's.
            ("%b %d %H:%M:%S", "Nov 22 10:00:00", "2026-11-30T05:00:00Z", "2026-11-22T10:00:00+00:00"),
            // chrono reads a space-padded day as syslog writes it.
            ("%b %d %H:%M:%S", "Nov  3 09:15:30", "2026-11-30T05:00:00Z", "2026-11-03T09:15:30+00:00"),
            ("%e %B %H:%M", "3 March 09:15", "2026-11-30T05:00:00Z", "2026-03-03T09:15:00+00:00"),
            // Written just before midnight, read just after: last year.
            ("%b %d %H:%M:%S", "Dec 31 23:59:58", "2027-01-01T00:00:03Z", "2026-12-31T23:59:58+00:00"),
            // A clock a little fast, read just before midnight: next year.
            ("%b %d %H:%M:%S", "Jan  1 00:00:02", "2026-12-31T23:59:58Z", "2027-01-01T00:00:02+00:00"),
            // Months old: still the past, not next year.
            ("%b %d %H:%M:%S", "May  1 08:00:00", "2026-11-30T05:00:00Z", "2026-05-01T08:00:00+00:00"),
            // Local time east of UTC, hours ahead of the clock: this year.
            ("%b %d %H:%M:%S", "Nov 30 18:00:00", "2026-11-30T05:00:00Z", "2026-11-30T18:00:00+00:00"),
            // More than a day ahead: last year's.
            ("%b %d %H:%M:%S", "Dec  2 06:00:00", "2026-11-30T05:00:00Z", "2025-12-02T06:00:00+00:00"),
            // An offset in the text is honoured.
            ("%b %d %H:%M:%S %z", "Nov 22 10:00:00 +0200", "2026-11-30T05:00:00Z", "2026-11-22T08:00:00+00:00"),
            // No date: the nearest day.
            ("%H:%M:%S%.3f", "04:59:00.250", "2026-11-30T05:00:00Z", "2026-11-30T04:59:00.250+00:00"),
            // Just before midnight, read just after: yesterday.
            ("%H:%M:%S%.3f", "23:59:59.000", "2026-11-30T00:00:02Z", "2026-11-29T23:59:59+00:00"),
            // Just after midnight, read by a slow clock just before: tomorrow.
            ("%H:%M:%S%.3f", "00:00:01.000", "2026-11-29T23:59:58Z", "2026-11-30T00:00:01+00:00"),
            // More than 12 hours ahead is yesterday's.
            ("%H:%M:%S%.3f", "18:00:00.000", "2026-11-30T05:00:00Z", "2026-11-29T18:00:00+00:00"),
            ("%I:%M:%S %p", "04:30:00 AM", "2026-11-30T05:00:00Z", "2026-11-30T04:30:00+00:00"),
        ];
        for (format, text, now, want) in cases {
            assert_eq!(completed(format, text, now).as_deref(), Ok(want), "{format} {text:?} at {now}");
        }
    }

    #[test]
    fn a_leap_day_without_a_year_takes_the_latest_leap_year() {
        let syslog = "%b %d %H:%M:%S";
        assert_eq!(completed(syslog, "Feb 29 12:00:00", "2026-11-30T05:00:00Z").unwrap(), "2024-02-29T12:00:00+00:00");
        let err = completed(syslog, "Feb 30 12:00:00", "2026-11-30T05:00:00Z").unwrap_err().to_string();
        assert_eq!(
            err,
            r#"time "Feb 30 12:00:00" is not in format "%b %d %H:%M:%S": no year from 2018 to 2027 makes it a valid date at most a day ahead of the host clock"#
        );
    }

    #[test]
    fn formats_that_name_their_instant_complete_nothing() {
        for format in ["%Y-%m-%d %H:%M:%S", "%d/%m/%y %H:%M", "%Y-%j %H:%M", "%s", "%+", "%G-W%V-%u %H:%M"] {
            match TimeFormat::from_config(format) {
                Ok(TimeFormat::Strftime { completion, .. }) => assert_eq!(completion, Completion::Nothing, "{format}"),
                other => panic!("{format}: {other:?}"),
            }
        }
        assert_eq!(
            completed("%d/%m/%y %H:%M", "22/11/26 10:00", "2030-01-01T00:00:00Z").unwrap(),
            "2026-11-22T10:00:00+00:00"
        );
    }

    #[test]
    fn formats_that_cannot_give_an_instant_are_refused_saying_what_is_missing() {
        let refused = |format: &str| TimeFormat::from_config(format).unwrap_err();
        for format in ["%Y-%m-%d", "%b %d", "%Y-%m-%d %H", "%d %b %I:%M"] {
            assert!(refused(format).contains("gives no time of day"), "{format}: {}", refused(format));
        }
        for format in ["%d %H:%M:%S", "%b %H:%M", "%Y %H:%M", "%a %H:%M", "%Y-%m %H:%M"] {
            assert!(refused(format).contains("gives no full date"), "{format}: {}", refused(format));
        }
        assert_eq!(
            refused("%Y-%m-%d %H:%M:%S %Z"),
            r#"format "%Y-%m-%d %H:%M:%S %Z": %Z reads a zone name, which gives no offset; use %z (+0100) or write the zone literally (UTC)"#
        );
        // A literal zone, or %Z beside an offset, is fine.
        assert!(TimeFormat::from_config("%Y-%m-%d %H:%M:%S UTC").is_ok());
        assert!(TimeFormat::from_config("%Y-%m-%d %H:%M:%S %z %Z").is_ok());
    }
}
