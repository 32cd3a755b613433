//! Duration text such as `231ms`, `1.2s` or `1m30s`, and the units a value is
//! normalised to.
//!
//! This module owns the grammar and the arithmetic; it knows nothing of rules,
//! regexes or JSON. A duration is one or more `<number><unit>` segments (Go's
//! `time.ParseDuration` shape, so `1h2m3.5s` works), where the number is
//! unsigned decimal with an optional fraction and blanks may sit between a
//! number and its unit or between segments. Text is summed exactly in whole
//! nanoseconds (finer fractions are truncated, as in Go) and only then divided
//! into the target unit, so `1.2s` in `ms` is exactly `1200`, not
//! `1199.9999999999998`.
//!
//! Not `percentiles`' config durations (`15m`, `1h30m`): those are whole
//! numbers only and know days, a different grammar kept apart on purpose.

use std::fmt;

/// A time unit, for duration text and for the unit a value is reported in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Nanoseconds, `ns`.
    Nanos,
    /// Microseconds, `us` (also `µs` and `μs`).
    Micros,
    /// Milliseconds, `ms`.
    Millis,
    /// Seconds, `s`.
    Seconds,
    /// Minutes, `m`.
    Minutes,
    /// Hours, `h`.
    Hours,
}

/// The unit names accepted everywhere, for error messages.
pub const UNIT_NAMES: &str = "ns, us, ms, s, m, h";

impl Unit {
    /// Parse a unit name: `ns`, `us`, `µs` (micro sign), `μs` (Greek mu), `ms`,
    /// `s`, `m` or `h`. Case-sensitive, as `m` and `M` mean different things
    /// elsewhere.
    pub fn parse(name: &str) -> Option<Unit> {
        Some(match name {
            "ns" => Unit::Nanos,
            "us" | "\u{b5}s" | "\u{3bc}s" => Unit::Micros,
            "ms" => Unit::Millis,
            "s" => Unit::Seconds,
            "m" => Unit::Minutes,
            "h" => Unit::Hours,
            _ => return None,
        })
    }

    /// Nanoseconds in one of this unit.
    pub fn nanos(self) -> u64 {
        match self {
            Unit::Nanos => 1,
            Unit::Micros => 1_000,
            Unit::Millis => 1_000_000,
            Unit::Seconds => 1_000_000_000,
            Unit::Minutes => 60_000_000_000,
            Unit::Hours => 3_600_000_000_000,
        }
    }
}

/// Why duration text could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    /// The text is empty or blank.
    Empty,
    /// A segment does not start with a digit or `.`, e.g. `-5ms` or `ms`.
    ExpectedNumber,
    /// A number has no unit after it, e.g. `231`.
    MissingUnit,
    /// A number is followed by a word that is not a unit, e.g. `5sec`.
    UnknownUnit(String),
    /// The total does not fit in 128 bits of nanoseconds.
    TooLarge,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::Empty => f.write_str("empty duration"),
            DurationError::ExpectedNumber => f.write_str("expected an unsigned number"),
            DurationError::MissingUnit => write!(f, "missing unit, expected one of {UNIT_NAMES}"),
            DurationError::UnknownUnit(u) => {
                write!(f, "unknown unit {u:?}, expected one of {UNIT_NAMES}")
            }
            DurationError::TooLarge => f.write_str("duration too large"),
        }
    }
}

impl std::error::Error for DurationError {}

/// Fraction digits looked at per segment: 18 keeps `digits * unit` inside
/// u128 for any unit up to hours, and anything past the 12th digit of an hour
/// is already below a nanosecond.
const MAX_FRACTION_DIGITS: usize = 18;

/// Parse duration text into whole nanoseconds.
pub fn parse_nanos(text: &str) -> Result<u128, DurationError> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (whole, fraction, after_number) = split_number(rest)?;
        let after_blank = after_number.trim_start();
        let unit_len =
            after_blank.char_indices().find(|(_, c)| !c.is_alphabetic()).map_or(after_blank.len(), |(i, _)| i);
        let (unit_text, after_unit) = after_blank.split_at(unit_len);
        if unit_text.is_empty() {
            return Err(DurationError::MissingUnit);
        }
        let unit = Unit::parse(unit_text).ok_or_else(|| DurationError::UnknownUnit(unit_text.to_owned()))?;
        total = total.checked_add(segment_nanos(whole, fraction, unit)?).ok_or(DurationError::TooLarge)?;
        rest = after_unit.trim_start();
    }
    Ok(total)
}

/// Parse duration text and express it in `unit`, e.g. `1.5s` in ms is 1500.
pub fn parse_in(text: &str, unit: Unit) -> Result<f64, DurationError> {
    let nanos = parse_nanos(text)?;
    // Split before dividing so whole units stay exact beyond f64's 2^53.
    let per_unit = u128::from(unit.nanos());
    Ok((nanos / per_unit) as f64 + (nanos % per_unit) as f64 / per_unit as f64)
}

/// Split `12.5ms...` into (`12`, `5`, `ms...`). Either digit run may be empty
/// (`.5s`, `5.s`), not both.
fn split_number(text: &str) -> Result<(&str, &str, &str), DurationError> {
    let whole_len = text.bytes().take_while(u8::is_ascii_digit).count();
    let (whole, rest) = text.split_at(whole_len);
    let (fraction, rest) = match rest.strip_prefix('.') {
        Some(after_dot) => {
            let len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            after_dot.split_at(len)
        }
        None => ("", rest),
    };
    if whole.is_empty() && fraction.is_empty() {
        return Err(DurationError::ExpectedNumber);
    }
    Ok((whole, fraction, rest))
}

fn segment_nanos(whole: &str, fraction: &str, unit: Unit) -> Result<u128, DurationError> {
    let per_unit = u128::from(unit.nanos());
    let mut nanos: u128 = 0;
    for digit in whole.bytes() {
        nanos = nanos
            .checked_mul(10)
            .and_then(|n| n.checked_add(u128::from(digit - b'0')))
            .ok_or(DurationError::TooLarge)?;
    }
    nanos = nanos.checked_mul(per_unit).ok_or(DurationError::TooLarge)?;
    let fraction = &fraction[..fraction.len().min(MAX_FRACTION_DIGITS)];
    let mut digits: u128 = 0;
    let mut scale: u128 = 1;
    for digit in fraction.bytes() {
        digits = digits * 10 + u128::from(digit - b'0');
        scale *= 10;
    }
    nanos.checked_add(digits * per_unit / scale).ok_or(DurationError::TooLarge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_is_read() {
        assert_eq!(parse_nanos("7ns"), Ok(7));
        assert_eq!(parse_nanos("7us"), Ok(7_000));
        assert_eq!(parse_nanos("7µs"), Ok(7_000));
        assert_eq!(parse_nanos("7μs"), Ok(7_000));
        assert_eq!(parse_nanos("7ms"), Ok(7_000_000));
        assert_eq!(parse_nanos("7s"), Ok(7_000_000_000));
        assert_eq!(parse_nanos("7m"), Ok(420_000_000_000));
        assert_eq!(parse_nanos("7h"), Ok(25_200_000_000_000));
    }

    #[test]
    fn fractions_are_exact_to_the_nanosecond() {
        assert_eq!(parse_in("1.2s", Unit::Millis), Ok(1200.0));
        assert_eq!(parse_in("0.1s", Unit::Millis), Ok(100.0));
        assert_eq!(parse_in("231ms", Unit::Millis), Ok(231.0));
        assert_eq!(parse_in("231ms", Unit::Seconds), Ok(0.231));
        assert_eq!(parse_in("1.5ms", Unit::Micros), Ok(1500.0));
        assert_eq!(parse_in(".5h", Unit::Minutes), Ok(30.0));
        assert_eq!(parse_in("5.s", Unit::Millis), Ok(5000.0));
        assert_eq!(parse_in("2.5us", Unit::Nanos), Ok(2500.0));
        assert_eq!(parse_in("90s", Unit::Hours), Ok(0.025));
        // Below a nanosecond is truncated, as in Go.
        assert_eq!(parse_nanos("1.9ns"), Ok(1));
        assert_eq!(parse_nanos("0.0000000001s"), Ok(0));
    }

    #[test]
    fn segments_add_up_and_ms_is_not_minutes() {
        assert_eq!(parse_in("1m30s", Unit::Seconds), Ok(90.0));
        assert_eq!(parse_in("1h 2m 3.5s", Unit::Seconds), Ok(3723.5));
        assert_eq!(parse_in("1m5ms", Unit::Millis), Ok(60_005.0));
    }

    #[test]
    fn blanks_around_and_before_the_unit_are_allowed() {
        assert_eq!(parse_in("  231 ms ", Unit::Millis), Ok(231.0));
    }

    #[test]
    fn bad_text_says_what_is_wrong() {
        assert_eq!(parse_nanos(""), Err(DurationError::Empty));
        assert_eq!(parse_nanos("  "), Err(DurationError::Empty));
        assert_eq!(parse_nanos("231"), Err(DurationError::MissingUnit));
        assert_eq!(parse_nanos("-5ms"), Err(DurationError::ExpectedNumber));
        assert_eq!(parse_nanos("ms"), Err(DurationError::ExpectedNumber));
        assert_eq!(parse_nanos("."), Err(DurationError::ExpectedNumber));
        assert_eq!(parse_nanos("5sec"), Err(DurationError::UnknownUnit("sec".into())));
        assert_eq!(parse_nanos("5MS"), Err(DurationError::UnknownUnit("MS".into())));
        assert_eq!(parse_nanos("1s2"), Err(DurationError::MissingUnit));
        assert_eq!(
            DurationError::UnknownUnit("sec".into()).to_string(),
            r#"unknown unit "sec", expected one of ns, us, ms, s, m, h"#
        );
    }

    #[test]
    fn huge_values_are_refused_not_wrapped() {
        let big = format!("{}h", "9".repeat(40));
        assert_eq!(parse_nanos(&big), Err(DurationError::TooLarge));
        let many_fraction_digits = format!("1.{}s", "5".repeat(60));
        assert_eq!(parse_nanos(&many_fraction_digits), Ok(1_555_555_555));
    }

    #[test]
    fn unit_names_round_trip() {
        for name in UNIT_NAMES.split(", ") {
            assert!(Unit::parse(name).is_some(), "{name}");
        }
        assert_eq!(Unit::parse("sec"), None);
    }
}
