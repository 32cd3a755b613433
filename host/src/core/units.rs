//! Human-friendly units in config values: durations (`250ms`, `1m`) and byte
//! sizes (`64MiB`). Components use these types in their `…Config` structs.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration written like `250ms`, `30s`, `1m 30s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// Parse `text`, naming what was expected on failure.
    pub fn parse(text: &str) -> Result<Self, String> {
        humantime::parse_duration(text.trim())
            .map(HumanDuration)
            .map_err(|e| format!("invalid duration {text:?} ({e}); expected e.g. \"250ms\", \"30s\", \"1m\""))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        HumanDuration::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A number of bytes written like `512KiB`, `64MiB`, `1GB` or `1048576`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parse `text`, naming what was expected on failure.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let multiplier: u64 = match unit.trim() {
            "" | "B" => 1,
            "KB" | "kB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            _ => return Err(format!("invalid size {text:?}; expected e.g. \"64MiB\", \"512KiB\", \"1GB\"")),
        };
        digits
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(multiplier))
            .map(ByteSize)
            .ok_or_else(|| format!("invalid size {text:?}; expected e.g. \"64MiB\", \"512KiB\", \"1GB\""))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"64MiB\" or a number of bytes")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_with_binary_and_decimal_units() {
        assert_eq!(ByteSize::parse("64MiB"), Ok(ByteSize(64 << 20)));
        assert_eq!(ByteSize::parse("1GB"), Ok(ByteSize(1_000_000_000)));
        assert_eq!(ByteSize::parse("4096"), Ok(ByteSize(4096)));
        assert!(ByteSize::parse("12 parsecs").unwrap_err().contains("expected e.g."));
    }

    #[test]
    fn parses_durations() {
        assert_eq!(HumanDuration::parse("250ms"), Ok(HumanDuration(Duration::from_millis(250))));
        assert_eq!(HumanDuration::parse("1m 30s"), Ok(HumanDuration(Duration::from_secs(90))));
        assert!(HumanDuration::parse("soon").unwrap_err().contains("invalid duration \"soon\""));
    }
}
