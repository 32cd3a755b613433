//! One series' values over one pane (a step-sized slice of event time): an
//! HDR histogram for quantiles plus exact count, sum, min and max. It owns
//! how values are recorded and how quantiles are read back; which panes make
//! a window is `window`'s business.
//!
//! Recording: a value `v` is recorded in the histogram as the integer
//! `round(v * scale)`; with the default `scale` of 1, integer inputs are
//! recorded exactly and fractional ones rounded to the nearest integer. A
//! quantile is read as the highest value equivalent to the bucket holding the
//! nearest-rank value (HdrHistogram's convention, so it never under-reports),
//! divided by `scale` and clamped to the exact `[min, max]`. Its error is at
//! most `10^-digits` of the value plus one recorded unit (`1 / scale`).
//! Count, min, max and the mean (from a compensated sum) are exact and never
//! come from the histogram.

use hdrhistogram::Histogram;

use crate::quantile::Quantile;

/// Counts per bucket. 32 bits halve memory against 64; a bucket saturates
/// only past 4 billion values in one pane, and counts are kept exactly
/// beside the histogram anyway.
pub type Counts = u32;

/// Values of one series in one pane.
#[derive(Debug, Clone)]
pub struct Pane {
    pub(crate) histogram: Histogram<Counts>,
    pub(crate) count: u64,
    /// Neumaier-compensated sum: `sum + compensation` is the exact total for
    /// integer inputs below 2^53 and far closer than a naive sum otherwise.
    pub(crate) sum: f64,
    pub(crate) compensation: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

/// The figures emitted for one series over one window.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowStats {
    /// Number of values.
    pub count: u64,
    /// Exact smallest value.
    pub min: f64,
    /// Exact largest value.
    pub max: f64,
    /// Sum / count.
    pub mean: f64,
    /// One value per configured quantile, in config order.
    pub quantiles: Vec<f64>,
}

impl Pane {
    /// An empty pane whose histogram keeps `digits` significant digits and
    /// grows to the largest value recorded (so an unused high bound costs no
    /// memory).
    pub fn new(digits: u8) -> Self {
        Self {
            histogram: Histogram::new(digits).expect("digits are validated to 1..=5 at configure"),
            count: 0,
            sum: 0.0,
            compensation: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    /// Record `value`, whose histogram form is `recorded = round(value * scale)`.
    pub fn record(&mut self, value: f64, recorded: u64) {
        self.histogram
            .record(recorded)
            .expect("values are range-checked below 2^53, which an auto-resizing histogram holds");
        self.count += 1;
        self.add_to_sum(value);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    fn add_to_sum(&mut self, value: f64) {
        let total = self.sum + value;
        if self.sum.abs() >= value.abs() {
            self.compensation += (self.sum - total) + value;
        } else {
            self.compensation += (value - total) + self.sum;
        }
        self.sum = total;
    }

    /// Add another pane's values to this one.
    pub fn merge(&mut self, other: &Pane) {
        self.histogram.add(&other.histogram).expect("an auto-resizing histogram takes any other histogram's values");
        self.count += other.count;
        self.add_to_sum(other.sum);
        self.compensation += other.compensation;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Count, min, max, mean and the `quantiles` (nearest rank) of this pane.
    pub fn stats(&self, quantiles: &[Quantile], scale: f64) -> WindowStats {
        let total = self.histogram.len();
        // Ranks in ascending order, so one pass over the buckets finds all.
        let mut wanted: Vec<(u64, usize)> = quantiles.iter().enumerate().map(|(i, q)| (q.rank(total), i)).collect();
        wanted.sort_unstable();
        let mut values = vec![self.max; quantiles.len()];
        let mut next = wanted.iter().peekable();
        let mut seen: u64 = 0;
        for bucket in self.histogram.iter_recorded() {
            seen += bucket.count_since_last_iteration();
            while let Some(&&(rank, index)) = next.peek() {
                if rank > seen {
                    break;
                }
                let value = bucket.value_iterated_to() as f64 / scale;
                values[index] = value.clamp(self.min, self.max);
                next.next();
            }
            if next.peek().is_none() {
                break;
            }
        }
        WindowStats {
            count: self.count,
            min: self.min,
            max: self.max,
            mean: (self.sum + self.compensation) / self.count as f64,
            quantiles: values,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn quantiles(names: &[&str]) -> Vec<Quantile> {
        names.iter().map(|n| Quantile::parse(&json!(n)).unwrap()).collect()
    }

    fn pane_of(values: &[f64], scale: f64) -> Pane {
        let mut pane = Pane::new(3);
        for &v in values {
            pane.record(v, (v * scale).round() as u64);
        }
        pane
    }

    #[test]
    fn small_integers_are_exact() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let stats = pane_of(&values, 1.0).stats(&quantiles(&["p50", "p90", "p99", "p100"]), 1.0);
        assert_eq!(stats.quantiles, [50.0, 90.0, 99.0, 100.0]);
        assert_eq!((stats.count, stats.min, stats.max, stats.mean), (100, 1.0, 100.0, 50.5));
    }

    #[test]
    fn large_values_stay_within_the_stated_precision() {
        let values: Vec<f64> = (1..=1000).map(|i| f64::from(i) * 9_973.0).collect();
        let stats = pane_of(&values, 1.0).stats(&quantiles(&["p50", "p95"]), 1.0);
        for (got, want) in stats.quantiles.iter().zip([values[499], values[949]]) {
            assert!((got - want).abs() <= want * 1e-3, "{got} vs {want}");
            assert!(*got >= want, "highest-equivalent never under-reports");
        }
    }

    #[test]
    fn quantiles_are_clamped_to_the_exact_extremes() {
        // 1.2346 is recorded as round(1234.6) = 1235, which reads back as
        // 1.235; the exact max caps it.
        let stats = pane_of(&[1.2346, 0.5], 1000.0).stats(&quantiles(&["p100", "p1"]), 1000.0);
        assert_eq!(stats.quantiles, [1.2346, 0.5]);
    }

    #[test]
    fn merging_panes_equals_recording_into_one() {
        let mut a = pane_of(&[1.0, 5.0, 9.0], 1.0);
        let b = pane_of(&[2.0, 30_000.0], 1.0);
        a.merge(&b);
        let all = pane_of(&[1.0, 5.0, 9.0, 2.0, 30_000.0], 1.0);
        let q = quantiles(&["p50", "p75", "p100"]);
        assert_eq!(a.stats(&q, 1.0), all.stats(&q, 1.0));
    }

    #[test]
    fn the_mean_comes_from_a_compensated_sum() {
        // A naive sum of ten 0.1s is 0.9999999999999999.
        let mut pane = Pane::new(3);
        for v in [0.1; 10] {
            pane.record(v, 0);
        }
        assert_eq!(pane.stats(&[], 1.0).mean, 0.1);
    }
}
