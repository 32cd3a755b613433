//! Durations as written in filter configs (`"15m"`, `"1h30m"`, `"500ms"`):
//! parsing into nanoseconds and formatting back for messages. It owns the
//! syntax only; which durations are valid for which key is each filter's
//! call (a config key reads one with [`config::Duration`](crate::config::Duration)).
//!
//! Not `extract`'s `duration.rs`, on purpose: that one reads metric values
//! out of log text (fractions such as `1.2s`, blanks, `μs`, no days), while a
//! config duration is whole numbers only, with days, and round-trips through
//! [`format()`] for messages. The two grammars accept different text, so they
//! stay apart.

/// Nanoseconds per unit, longest first, as accepted in configs.
const UNITS: [(&str, i64); 8] = [
    ("d", 86_400_000_000_000),
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("µs", 1_000),
    ("ns", 1),
];

/// Parse a duration made of one or more `<integer><unit>` parts, e.g.
/// `"15m"`, `"1h30m"`, `"0s"`. Units: `d`, `h`, `m`, `s`, `ms`, `us`, `ns`.
pub fn parse(text: &str) -> Result<i64, String> {
    let invalid = |why: &str| format!("invalid duration {text:?}: {why}");
    if text.is_empty() {
        return Err(invalid("empty (write e.g. \"15m\")"));
    }
    let mut rest = text;
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid("expected a number (write e.g. \"15m\" or \"1h30m\")"));
        }
        let number: i64 = rest[..digits].parse().map_err(|_| invalid("number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.char_indices().find(|(_, c)| c.is_ascii_digit()).map_or(rest.len(), |(i, _)| i);
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let Some(&(_, per_unit)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(if unit.is_empty() {
                invalid("missing unit (use d, h, m, s, ms, us or ns)")
            } else {
                invalid(&format!("unknown unit {unit:?} (use d, h, m, s, ms, us or ns)"))
            });
        };
        total = number.checked_mul(per_unit).and_then(|n| total.checked_add(n)).ok_or_else(|| invalid("too large"))?;
    }
    Ok(total)
}

/// Format nanoseconds as the shortest exact duration text, e.g. `"1h30m"`.
pub fn format(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    if nanos < 0 {
        out.push('-');
    }
    let mut rest = nanos.unsigned_abs();
    for (name, per_unit) in UNITS {
        if name == "µs" {
            continue;
        }
        let per_unit = per_unit.unsigned_abs();
        if rest >= per_unit {
            out.push_str(&(rest / per_unit).to_string());
            out.push_str(name);
            rest %= per_unit;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_and_compound_durations() {
        assert_eq!(parse("15m"), Ok(900_000_000_000));
        assert_eq!(parse("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse("0s"), Ok(0));
        assert_eq!(parse("500ms"), Ok(500_000_000));
        assert_eq!(parse("2d"), Ok(172_800_000_000_000));
        assert_eq!(parse("7us"), Ok(7_000));
    }

    #[test]
    fn refuses_malformed_durations_with_the_text() {
        assert_eq!(
            parse("15x").unwrap_err(),
            r#"invalid duration "15x": unknown unit "x" (use d, h, m, s, ms, us or ns)"#
        );
        assert!(parse("15").unwrap_err().contains("missing unit"));
        assert!(parse("m").unwrap_err().contains("expected a number"));
        assert!(parse("").is_err());
        assert!(parse("-1m").is_err());
        assert!(parse("99999999999999d").unwrap_err().contains("too large"));
    }

    #[test]
    fn formats_back_to_the_shortest_exact_text() {
        assert_eq!(format(900_000_000_000), "15m");
        assert_eq!(format(5_400_000_000_000), "1h30m");
        assert_eq!(format(0), "0s");
        assert_eq!(format(1_500_000_000), "1s500ms");
        for text in ["1m", "15m", "1h30m", "2d", "250ms", "3ns"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }
}
