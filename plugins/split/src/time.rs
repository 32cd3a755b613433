//! Event-time parsing: turns the text (or JSON number) found for a statement
//! into nanoseconds since the Unix epoch, UTC, in one of the configured
//! formats. It does not know where the text came from; `chunk` finds it.

use chrono::DateTime;
use chrono::format::{Item, Parsed, StrftimeItems};
use weir_plugin_sdk::RawValue;

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
    },
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
                Ok(Self::Strftime { source: other.to_owned(), items })
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
    /// statement. Surrounding whitespace is ignored.
    pub fn parse_text(&self, text: &str) -> Result<i64, TimeError> {
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
            Self::Strftime { items, .. } => {
                let mut parsed = Parsed::new();
                chrono::format::parse(&mut parsed, trimmed, items.iter()).map_err(|e| invalid(e.to_string()))?;
                let utc = if parsed.offset().is_some() {
                    parsed.to_datetime().map(|t| t.to_utc())
                } else {
                    parsed.to_naive_datetime_with_offset(0).map(|t| t.and_utc())
                };
                utc.map_err(|e| invalid(e.to_string()))?.timestamp_nanos_opt().ok_or_else(out_of_range)
            }
        }
    }

    /// Parse a JSON value found in an object statement: a string in any
    /// format, or a number for `unix` and `unix_ms` (read from its text, so
    /// no precision is lost to `f64`).
    pub fn parse_json(&self, value: &RawValue) -> Result<i64, TimeError> {
        let json = value.get();
        match json.as_bytes().first() {
            Some(b'"') => match weir_plugin_sdk::as_str(value) {
                Some(text) => self.parse_text(&text),
                None => Err(TimeError::WrongKind { json: json.into(), expected: "a valid string" }),
            },
            Some(b'-' | b'0'..=b'9') if matches!(self, Self::Unix | Self::UnixMs) => self.parse_text(json),
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

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).unwrap()
    }

    #[test]
    fn rfc3339_reads_offsets_and_fractions() {
        let f = TimeFormat::Rfc3339;
        assert_eq!(f.parse_text("1970-01-01T00:00:01.5Z"), Ok(1_500_000_000));
        assert_eq!(f.parse_text("1970-01-01T01:00:00+01:00"), Ok(0));
    }

    #[test]
    fn rfc3339_errors_name_the_text_and_format() {
        let err = TimeFormat::Rfc3339.parse_text("abc").unwrap_err();
        assert!(err.to_string().starts_with(r#"time "abc" is not rfc3339: "#), "{err}");
    }

    #[test]
    fn unix_seconds_keep_nanosecond_precision() {
        let f = TimeFormat::Unix;
        assert_eq!(f.parse_text("1714564800.123456789"), Ok(1_714_564_800_123_456_789));
        assert_eq!(f.parse_text("1714564800"), Ok(1_714_564_800_000_000_000));
        assert_eq!(f.parse_text("-1.5"), Ok(-1_500_000_000));
        assert_eq!(f.parse_text("1.7145648e9"), Ok(1_714_564_800_000_000_000));
        assert_eq!(f.parse_text("0.0000000019"), Ok(1));
    }

    #[test]
    fn unix_ms_scales_by_a_million() {
        assert_eq!(TimeFormat::UnixMs.parse_text("1714564800123"), Ok(1_714_564_800_123_000_000));
        assert_eq!(TimeFormat::UnixMs.parse_text("1.5"), Ok(1_500_000));
    }

    #[test]
    fn unix_rejects_junk_and_overflow() {
        assert!(matches!(TimeFormat::Unix.parse_text("12a"), Err(TimeError::Invalid { .. })));
        assert!(matches!(TimeFormat::Unix.parse_text(""), Err(TimeError::Invalid { .. })));
        assert!(matches!(TimeFormat::Unix.parse_text("."), Err(TimeError::Invalid { .. })));
        assert!(matches!(TimeFormat::Unix.parse_text("1e30"), Err(TimeError::OutOfRange { .. })));
        assert!(matches!(
            TimeFormat::Unix.parse_text("99999999999999999999999999999999999"),
            Err(TimeError::OutOfRange { .. })
        ));
    }

    #[test]
    fn strftime_without_offset_is_utc() {
        let f = TimeFormat::from_config("%Y-%m-%d %H:%M:%S%.3f").unwrap();
        assert_eq!(f.parse_text("1970-01-01 00:00:02.250"), Ok(2_250_000_000));
    }

    #[test]
    fn strftime_with_offset_honours_it() {
        let f = TimeFormat::from_config("%Y-%m-%dT%H:%M:%S%z").unwrap();
        assert_eq!(f.parse_text("1970-01-01T02:00:00+0200"), Ok(0));
    }

    #[test]
    fn strftime_mismatch_names_the_format() {
        let f = TimeFormat::from_config("%Y-%m-%d %H:%M:%S").unwrap();
        let err = f.parse_text("yesterday").unwrap_err().to_string();
        assert!(err.starts_with(r#"time "yesterday" is not in format "%Y-%m-%d %H:%M:%S": "#), "{err}");
    }

    #[test]
    fn from_config_refuses_unknown_names_and_bad_formats() {
        assert!(TimeFormat::from_config("iso").unwrap_err().starts_with("unknown format \"iso\""));
        assert!(TimeFormat::from_config("%Y-%Q").unwrap_err().starts_with("invalid strftime format"));
    }

    #[test]
    fn json_numbers_work_for_unix_only() {
        assert_eq!(TimeFormat::Unix.parse_json(&raw("12.5")), Ok(12_500_000_000));
        assert_eq!(TimeFormat::UnixMs.parse_json(&raw(r#""12""#)), Ok(12_000_000));
        let err = TimeFormat::Rfc3339.parse_json(&raw("12")).unwrap_err();
        assert_eq!(err.to_string(), "time 12 is not a string");
        let err = TimeFormat::Unix.parse_json(&raw("null")).unwrap_err();
        assert_eq!(err.to_string(), "time null is not a number or a string");
    }
}
