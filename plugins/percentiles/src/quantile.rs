//! Quantiles as configured (`"p99.9"` or `0.999`): exact decimal fractions,
//! their output field names (`p99_9`), and the nearest-rank rule.
//!
//! A quantile is kept as `numerator / 10^scale` rather than an `f64` so the
//! rank `ceil(q * n)` is computed exactly: `0.07 * 100` in floating point is
//! `7.000000000000001`, whose ceiling would pick the wrong rank.

/// Most decimal places a quantile may have; `p99.9999` (six places of the
/// fraction) is already beyond what a 5-digit histogram can tell apart.
const MAX_DECIMALS: u32 = 9;

/// One configured quantile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantile {
    /// Output field name: `p50`, `p99_9`.
    pub name: String,
    numerator: u64,
    denominator: u64,
}

impl Quantile {
    /// Parse `"p50"`, `"p99.9"` (a percentile) or a JSON number in `(0, 1]`
    /// (a fraction), given as its text so no precision is lost.
    pub fn parse(value: &serde_json::Value) -> Result<Self, String> {
        match value {
            serde_json::Value::String(s) => {
                let percent = s.strip_prefix('p').ok_or_else(|| {
                    format!("invalid quantile {s:?}: write a percentile such as \"p95\" or \"p99.9\", or a fraction such as 0.95")
                })?;
                let (numerator, decimals) = decimal(percent)
                    .ok_or_else(|| format!("invalid quantile {s:?}: {percent:?} is not a decimal number"))?;
                Self::from_decimal(numerator, decimals + 2).map_err(|why| format!("invalid quantile {s:?}: {why}"))
            }
            serde_json::Value::Number(n) => {
                let text = n.to_string();
                let (numerator, decimals) =
                    decimal(&text).ok_or_else(|| format!("invalid quantile {text}: not a plain decimal fraction"))?;
                Self::from_decimal(numerator, decimals).map_err(|why| format!("invalid quantile {text}: {why}"))
            }
            other => {
                Err(format!("invalid quantile {other}: expected a string such as \"p95\" or a number such as 0.95"))
            }
        }
    }

    /// `numerator / 10^decimals`, which must lie in `(0, 1]`.
    fn from_decimal(numerator: u64, decimals: u32) -> Result<Self, String> {
        if decimals > MAX_DECIMALS + 2 {
            return Err(format!("more than {MAX_DECIMALS} decimal places in the percentile"));
        }
        let denominator = 10u64.pow(decimals);
        if numerator == 0 || numerator > denominator {
            return Err("must be above 0 and at most 100 percent".to_string());
        }
        // Name by the percentage: numerator / 10^(decimals - 2) percent.
        let (whole, fraction) = if decimals <= 2 {
            (numerator * 10u64.pow(2 - decimals), String::new())
        } else {
            let per = 10u64.pow(decimals - 2);
            let digits = format!("{:0width$}", numerator % per, width = (decimals - 2) as usize);
            (numerator / per, digits.trim_end_matches('0').to_string())
        };
        let name = if fraction.is_empty() { format!("p{whole}") } else { format!("p{whole}_{fraction}") };
        Ok(Self { name, numerator, denominator })
    }

    /// The 1-based nearest rank `ceil(q * n)` among `n` sorted values, at
    /// least 1. Exact: no floating point.
    pub fn rank(&self, n: u64) -> u64 {
        let product = u128::from(self.numerator) * u128::from(n);
        let rank = product.div_ceil(u128::from(self.denominator));
        u64::try_from(rank).expect("rank <= n because q <= 1").max(1)
    }
}

/// Split a plain decimal (`"99.9"`, `"0.95"`, `"50"`) into its digits as an
/// integer and the count of digits after the point. No sign, no exponent.
fn decimal(text: &str) -> Option<(u64, u32)> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let fraction = fraction.trim_end_matches('0');
    let decimals = u32::try_from(fraction.len()).ok()?;
    let digits = format!("{whole}{fraction}");
    Some((digits.parse().ok()?, decimals))
}

/// The quantiles used when the config names none.
pub fn defaults() -> Vec<Quantile> {
    ["p50", "p75", "p90", "p95", "p99"]
        .iter()
        .map(|name| Quantile::parse(&serde_json::Value::from(*name)).expect("default quantiles are valid"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(value: serde_json::Value) -> Quantile {
        Quantile::parse(&value).unwrap()
    }

    #[test]
    fn names_follow_the_percentage_with_an_underscore_for_the_point() {
        assert_eq!(q(json!("p50")).name, "p50");
        assert_eq!(q(json!("p99.9")).name, "p99_9");
        assert_eq!(q(json!("p99.99")).name, "p99_99");
        assert_eq!(q(json!("p100")).name, "p100");
        assert_eq!(q(json!(0.95)).name, "p95");
        assert_eq!(q(json!(0.999)).name, "p99_9");
        assert_eq!(q(json!(0.5)).name, "p50");
        assert_eq!(q(json!(1)).name, "p100");
        assert_eq!(q(json!("p7.50")).name, "p7_5");
    }

    #[test]
    fn rank_is_the_exact_nearest_rank() {
        assert_eq!(q(json!("p50")).rank(10), 5);
        assert_eq!(q(json!("p50")).rank(11), 6);
        assert_eq!(q(json!("p7")).rank(100), 7);
        assert_eq!(q(json!("p95")).rank(20), 19);
        assert_eq!(q(json!("p99.9")).rank(1000), 999);
        assert_eq!(q(json!("p99.9")).rank(1001), 1000);
        assert_eq!(q(json!("p100")).rank(7), 7);
        assert_eq!(q(json!("p1")).rank(1), 1);
        assert_eq!(q(json!("p0.001")).rank(3), 1);
    }

    #[test]
    fn refuses_quantiles_outside_zero_to_one_hundred_percent() {
        for bad in [
            json!("p0"),
            json!("p101"),
            json!("95"),
            json!("pxx"),
            json!(0),
            json!(1.5),
            json!(-0.5),
            json!(true),
            json!("p-5"),
            json!("p1e2"),
        ] {
            assert!(Quantile::parse(&bad).is_err(), "{bad} should be refused");
        }
        assert!(Quantile::parse(&json!("p99.99999999999")).unwrap_err().contains("decimal places"));
    }
}
