//! The histogram behind every quantile: log-linear buckets over `f64`
//! values, the layout of HdrHistogram's double histogram, so every value
//! from the smallest normal `f64` up keeps the same relative precision, with
//! no scale to choose. It owns bucketing, bucket edges and how a bucket is
//! written back as a number; which values a window holds is `pane`'s.
//!
//! A bucket is a binade (`[2^e, 2^(e+1))`) cut into `2^bits` equal parts:
//! the value's exponent and the top `bits` bits of its mantissa, which is
//! its IEEE 754 bit pattern shifted right. A bucket is thus at most `2^-bits`
//! of its lower edge wide, and `bits` is the least that makes that at most
//! `10^-digits` (10 bits for 3 digits: 1/1024 < 0.1%). Zero has a bucket of
//! its own. Subnormal values (below 2.2e-308) have fewer mantissa bits than
//! that and are refused: [`Sample`] is the checked value, so recording
//! cannot fail.
//!
//! Buckets are kept sparse (only those holding values), so a pane costs
//! about 30 bytes per distinct bucket rather than a dense array from 0 to its
//! largest value.

use std::collections::BTreeMap;

/// Bits of the `f64` mantissa.
const MANTISSA_BITS: u32 = 52;

/// How finely values are bucketed: `digits` significant decimal digits,
/// kept as the mantissa bits a bucket spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Precision {
    digits: u8,
    bits: u32,
}

impl Precision {
    /// The precision of `digits` significant digits, 1 to 5 (checked at
    /// configure; larger values are taken as 5).
    pub fn new(digits: u8) -> Self {
        let digits = digits.clamp(1, 5);
        let needed = 10u64.pow(u32::from(digits));
        let bits = (1..=MANTISSA_BITS).find(|&b| 1u64 << b >= needed).unwrap_or(MANTISSA_BITS);
        Self { digits, bits }
    }

    /// Significant decimal digits.
    pub fn digits(self) -> u8 {
        self.digits
    }

    /// The largest relative width of a bucket, `2^-bits`: every value in a
    /// bucket is within this fraction of every other, relative to the
    /// smaller.
    pub fn relative_width(self) -> f64 {
        (-f64::from(self.bits)).exp2()
    }

    fn shift(self) -> u32 {
        MANTISSA_BITS - self.bits
    }

    /// The bucket of `sample`.
    fn key(self, sample: Sample) -> u32 {
        let key = sample.0.to_bits() >> self.shift();
        u32::try_from(key).expect("a positive f64 shifted right by at least 35 bits fits in 32")
    }

    /// Whether bucket `key` holds zero or finite normal values.
    fn holds_values(self, key: u32) -> bool {
        let smallest = f64::MIN_POSITIVE.to_bits() >> self.shift();
        let largest = f64::MAX.to_bits() >> self.shift();
        key == 0 || (smallest..=largest).contains(&u64::from(key))
    }

    /// The smallest and largest `f64` of bucket `key`, one that
    /// [`holds_values`](Self::holds_values).
    fn edges(self, key: u32) -> (f64, f64) {
        if key == 0 {
            return (0.0, 0.0);
        }
        let low = u64::from(key) << self.shift();
        let high = ((u64::from(key) + 1) << self.shift()) - 1;
        (f64::from_bits(low), f64::from_bits(high))
    }
}

/// A value the histogram holds: zero or a positive normal `f64`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample(f64);

/// Why a value cannot be a [`Sample`]; its Display completes "value V ...".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unrepresentable {
    /// Below zero.
    Negative,
    /// NaN or infinite.
    NotFinite,
    /// Positive but below the smallest normal `f64`.
    Subnormal,
}

impl std::fmt::Display for Unrepresentable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Negative => f.write_str("is negative"),
            Self::NotFinite => f.write_str("is not finite"),
            Self::Subnormal => write!(
                f,
                "is below {:e}, the smallest value the histogram holds to its significant digits",
                f64::MIN_POSITIVE
            ),
        }
    }
}

impl Sample {
    /// Check `value`. `-0.0` is taken as `0`.
    pub fn new(value: f64) -> Result<Self, Unrepresentable> {
        if !value.is_finite() {
            Err(Unrepresentable::NotFinite)
        } else if value == 0.0 {
            Ok(Self(0.0))
        } else if value < 0.0 {
            Err(Unrepresentable::Negative)
        } else if value < f64::MIN_POSITIVE {
            Err(Unrepresentable::Subnormal)
        } else {
            Ok(Self(value))
        }
    }

    /// The value.
    pub fn get(self) -> f64 {
        self.0
    }
}

/// Counts per bucket, sparse.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    precision: Precision,
    buckets: BTreeMap<u32, u64>,
}

/// One non-empty bucket, as [`Histogram::buckets`] yields them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Smallest value of the bucket.
    pub low: f64,
    /// Largest value of the bucket.
    pub high: f64,
    /// Values recorded in it.
    pub count: u64,
}

impl Histogram {
    /// An empty histogram.
    pub fn new(precision: Precision) -> Self {
        Self { precision, buckets: BTreeMap::new() }
    }

    /// Its precision.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Record `count` values equal to `sample`.
    pub fn record(&mut self, sample: Sample, count: u64) {
        let bucket = self.buckets.entry(self.precision.key(sample)).or_insert(0);
        *bucket = bucket.saturating_add(count);
    }

    /// Add every value of `other`. A histogram of another precision is
    /// re-bucketed by each bucket's largest value, so nothing is lost and
    /// nothing reads lower than it was.
    pub fn merge(&mut self, other: &Histogram) {
        if other.precision == self.precision {
            for (&key, &count) in &other.buckets {
                let bucket = self.buckets.entry(key).or_insert(0);
                *bucket = bucket.saturating_add(count);
            }
        } else {
            for bucket in other.buckets() {
                self.record(Sample(bucket.high), bucket.count);
            }
        }
    }

    /// Number of values recorded.
    pub fn len(&self) -> u64 {
        self.buckets.values().fold(0, |total, &count| total.saturating_add(count))
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// The non-empty buckets, smallest values first.
    pub fn buckets(&self) -> impl Iterator<Item = Bucket> + '_ {
        self.buckets.iter().map(|(&key, &count)| {
            let (low, high) = self.precision.edges(key);
            Bucket { low, high, count }
        })
    }

    /// `(bucket key, count)` pairs, smallest first, for snapshots.
    pub fn raw_buckets(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.buckets.iter().map(|(&key, &count)| (key, count))
    }

    /// Rebuild from [`raw_buckets`](Self::raw_buckets) written at
    /// `precision`. The error names the first key no finite value has.
    pub fn from_raw(precision: Precision, buckets: &[(u32, u64)]) -> Result<Self, String> {
        let mut histogram = Self::new(precision);
        for &(key, count) in buckets {
            if !precision.holds_values(key) {
                return Err(format!("bucket {key} holds no finite normal value"));
            }
            let bucket = histogram.buckets.entry(key).or_insert(0);
            *bucket = bucket.saturating_add(count);
        }
        Ok(histogram)
    }
}

/// The number in `[low, high]` written with the fewest significant digits,
/// so a quantile of values logged as `0.6` or `1017` reads back as `0.6` or
/// `1017`, not as a bucket edge such as `1017.9999999999999`.
pub fn shortest_within(low: f64, high: f64) -> f64 {
    let middle = low + (high - low) / 2.0;
    // Rounding the middle to `digits` significant digits gives the
    // `digits`-digit number nearest to it, which is inside the interval
    // whenever any such number is. At 17 digits it is the middle itself.
    (1..=17)
        .filter_map(|digits| format!("{middle:.*e}", digits - 1).parse::<f64>().ok())
        .find(|&candidate| (low..=high).contains(&candidate))
        .unwrap_or(middle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_become_the_fewest_bits_that_hold_them() {
        let bits: Vec<u32> = (1..=5).map(|d| Precision::new(d).bits).collect();
        assert_eq!(bits, [4, 7, 10, 14, 17]);
        for digits in 1..=5 {
            let p = Precision::new(digits);
            assert!(p.relative_width() <= 10f64.powi(-i32::from(digits)));
            assert!(p.relative_width() * 2.0 > 10f64.powi(-i32::from(digits)), "no bit more than needed");
        }
    }

    #[test]
    fn every_value_lies_in_its_bucket_and_buckets_are_narrow() {
        let p = Precision::new(3);
        for value in [1e-300, 1e-6, 0.13, 0.6, 1.0, 1017.0, 1024.0, 4095.5, 1e9, 1.7e308, f64::MIN_POSITIVE] {
            let (low, high) = p.edges(p.key(Sample::new(value).unwrap()));
            assert!(low <= value && value <= high, "{value} in [{low}, {high}]");
            assert!((high - low) / low <= p.relative_width(), "{value}: [{low}, {high}]");
        }
        assert_eq!(p.edges(p.key(Sample::new(0.0).unwrap())), (0.0, 0.0));
    }

    #[test]
    fn buckets_are_in_value_order() {
        let p = Precision::new(2);
        let values = [0.0, 1e-9, 3e-9, 0.25, 0.26, 1.0, 2.0, 1e6];
        let keys: Vec<u32> = values.iter().map(|&v| p.key(Sample::new(v).unwrap())).collect();
        assert!(keys.windows(2).all(|k| k[0] < k[1]), "{keys:?}");
    }

    #[test]
    fn values_that_cannot_be_held_are_named() {
        assert_eq!(Sample::new(-1.0), Err(Unrepresentable::Negative));
        assert_eq!(Sample::new(f64::NAN), Err(Unrepresentable::NotFinite));
        assert_eq!(Sample::new(f64::INFINITY), Err(Unrepresentable::NotFinite));
        assert_eq!(Sample::new(1e-310), Err(Unrepresentable::Subnormal));
        assert_eq!(Sample::new(-0.0).map(Sample::get), Ok(0.0));
        assert_eq!(
            Unrepresentable::Subnormal.to_string(),
            "is below 2.2250738585072014e-308, the smallest value the histogram holds to its significant digits"
        );
    }

    #[test]
    fn the_shortest_number_within_a_bucket_is_the_round_one() {
        let p = Precision::new(3);
        for value in [0.6, 0.13, 0.45, 1017.0, 2.0, 5000.0, 1e-6, 1.23e8] {
            let (low, high) = p.edges(p.key(Sample::new(value).unwrap()));
            assert_eq!(shortest_within(low, high), value, "[{low}, {high}]");
        }
        assert_eq!(shortest_within(0.0, 0.0), 0.0);
        assert_eq!(shortest_within(9.995, 10.004), 10.0);
        // 123456789 shares a bucket of 65536 with 123440000 at 3 digits.
        assert_eq!(shortest_within(123_404_288.0, 123_469_823.999_999_99), 123_440_000.0);
        let odd = shortest_within(1.000_123_4, 1.000_123_6);
        assert!((1.000_123_4..=1.000_123_6).contains(&odd), "{odd}");
    }

    #[test]
    fn merging_another_precision_rebuckets_by_the_largest_value() {
        let mut fine = Histogram::new(Precision::new(5));
        fine.record(Sample::new(1.0).unwrap(), 2);
        let mut coarse = Histogram::new(Precision::new(1));
        coarse.record(Sample::new(1.0).unwrap(), 3);
        fine.merge(&coarse);
        assert_eq!(fine.len(), 5);
        let buckets: Vec<Bucket> = fine.buckets().collect();
        assert_eq!(buckets[0].count, 2);
        assert!(buckets[1].low >= 1.0 && buckets[1].low <= 1.0625 && buckets[1].count == 3, "{buckets:?}");
    }

    #[test]
    fn raw_buckets_round_trip_and_impossible_keys_are_refused() {
        let p = Precision::new(3);
        let mut h = Histogram::new(p);
        for v in [0.0, 0.5, 0.5, 3.25, 1e12] {
            h.record(Sample::new(v).unwrap(), 1);
        }
        let raw: Vec<(u32, u64)> = h.raw_buckets().collect();
        assert_eq!(Histogram::from_raw(p, &raw), Ok(h));
        assert!(Histogram::from_raw(p, &[(5, 1)]).unwrap_err().contains("bucket 5"));
        assert!(Histogram::from_raw(p, &[(u32::MAX, 1)]).is_err());
    }
}
