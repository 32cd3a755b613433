//! The value of a metric: its configured type, and turning captured text into
//! a number of that type.
//!
//! This module owns the parse rules per type and their error messages; it
//! does not know where the text came from (see `rules.rs`) or how the number
//! is written into a body (see `body.rs`).

use std::num::IntErrorKind;

use crate::duration::{self, Unit};

/// How captured text is read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ValueType {
    /// A signed 64-bit integer, written as a JSON integer.
    Integer,
    /// A finite decimal number, written as a JSON number.
    Float,
    /// Duration text (`231ms`, `1.2s`) normalised to the unit, written as a
    /// JSON number.
    Duration(Unit),
}

/// A parsed value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// From `ValueType::Integer`.
    Integer(i64),
    /// From `ValueType::Float` and `ValueType::Duration`; always finite.
    Float(f64),
}

impl ValueType {
    /// Read `text`, ignoring surrounding blanks. The error says what the text
    /// is not, e.g. `"12x" is not an integer`.
    pub fn parse(self, text: &str) -> Result<Value, String> {
        let trimmed = text.trim();
        match self {
            ValueType::Integer => trimmed.parse::<i64>().map(Value::Integer).map_err(|e| match e.kind() {
                IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => {
                    format!("{text:?} is out of range for a 64-bit integer")
                }
                _ => format!("{text:?} is not an integer"),
            }),
            ValueType::Float => match trimmed.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(Value::Float(v)),
                // Rust reads `inf`, `NaN` and `1e999` (as infinity); JSON has none of them.
                Ok(_) => Err(format!("{text:?} is not a finite number")),
                Err(_) => Err(format!("{text:?} is not a number")),
            },
            ValueType::Duration(unit) => duration::parse_in(trimmed, unit)
                .map(Value::Float)
                .map_err(|e| format!("{text:?} is not a duration: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_read_exactly() {
        assert_eq!(ValueType::Integer.parse("231"), Ok(Value::Integer(231)));
        assert_eq!(ValueType::Integer.parse(" -7 "), Ok(Value::Integer(-7)));
        assert_eq!(ValueType::Integer.parse("12x"), Err(r#""12x" is not an integer"#.into()));
        assert_eq!(ValueType::Integer.parse("1.5"), Err(r#""1.5" is not an integer"#.into()));
        assert_eq!(
            ValueType::Integer.parse("99999999999999999999"),
            Err(r#""99999999999999999999" is out of range for a 64-bit integer"#.into())
        );
    }

    #[test]
    fn floats_must_be_finite() {
        assert_eq!(ValueType::Float.parse("1.25"), Ok(Value::Float(1.25)));
        assert_eq!(ValueType::Float.parse("3"), Ok(Value::Float(3.0)));
        assert_eq!(ValueType::Float.parse("NaN"), Err(r#""NaN" is not a finite number"#.into()));
        assert_eq!(ValueType::Float.parse("1e999"), Err(r#""1e999" is not a finite number"#.into()));
        assert_eq!(ValueType::Float.parse("fast"), Err(r#""fast" is not a number"#.into()));
    }

    #[test]
    fn durations_are_normalised_to_the_unit() {
        let ms = ValueType::Duration(Unit::Millis);
        assert_eq!(ms.parse("1.2s"), Ok(Value::Float(1200.0)));
        assert_eq!(ms.parse("231ms"), Ok(Value::Float(231.0)));
        assert_eq!(
            ms.parse("231"),
            Err(r#""231" is not a duration: missing unit, expected one of ns, us, ms, s, m, h"#.into())
        );
    }
}
