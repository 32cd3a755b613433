//! One series' values over one pane (a step-sized slice of event time): a
//! histogram for quantiles plus exact count, sum, min and max. It owns how
//! values are recorded and how quantiles are read back; bucketing is
//! `histogram`'s, which panes make a window `window`'s.
//!
//! A quantile is read from the bucket holding the nearest-rank value,
//! narrowed to the exact `[min, max]`, as the number with the fewest
//! significant digits in it: it is within `10^-digits` (relative) of the
//! exact nearest-rank value, for values of any magnitude, and values logged
//! as round numbers (`0.6`, `1017`) read back as themselves. Count, min,
//! max and the mean (from a compensated sum) are exact and never come from
//! the histogram.

use crate::histogram::{Histogram, Precision, Sample, shortest_within};
use crate::quantile::Quantile;

/// Values of one series in one pane.
#[derive(Debug, Clone)]
pub struct Pane {
    pub(crate) histogram: Histogram,
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
    /// An empty pane whose histogram keeps `precision`.
    pub fn new(precision: Precision) -> Self {
        Self {
            histogram: Histogram::new(precision),
            count: 0,
            sum: 0.0,
            compensation: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    /// Record one value.
    pub fn record(&mut self, sample: Sample) {
        self.histogram.record(sample, 1);
        let value = sample.get();
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
        self.histogram.merge(&other.histogram);
        self.count += other.count;
        self.add_to_sum(other.sum);
        self.compensation += other.compensation;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Count, min, max, mean and the `quantiles` (nearest rank) of this pane.
    pub fn stats(&self, quantiles: &[Quantile]) -> WindowStats {
        let total = self.histogram.len();
        // Ranks in ascending order, so one pass over the buckets finds all.
        let mut wanted: Vec<(u64, usize)> = quantiles.iter().enumerate().map(|(i, q)| (q.rank(total), i)).collect();
        wanted.sort_unstable();
        let mut values = vec![self.max; quantiles.len()];
        let mut next = wanted.iter().peekable();
        let mut seen: u64 = 0;
        for bucket in self.histogram.buckets() {
            seen += bucket.count;
            while let Some(&&(rank, index)) = next.peek() {
                if rank > seen {
                    break;
                }
                // The first and last ranks are the exact extremes.
                values[index] = match rank {
                    1 => self.min,
                    rank if rank == total => self.max,
                    _ => shortest_within(bucket.low.max(self.min), bucket.high.min(self.max)),
                };
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

    fn pane_of(values: &[f64], digits: u8) -> Pane {
        let mut pane = Pane::new(Precision::new(digits));
        for &v in values {
            pane.record(Sample::new(v).unwrap());
        }
        pane
    }

    #[test]
    fn small_integers_are_exact() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let stats = pane_of(&values, 3).stats(&quantiles(&["p50", "p90", "p99", "p100"]));
        assert_eq!(stats.quantiles, [50.0, 90.0, 99.0, 100.0]);
        assert_eq!((stats.count, stats.min, stats.max, stats.mean), (100, 1.0, 100.0, 50.5));
    }

    #[test]
    fn large_values_stay_within_the_stated_precision() {
        let values: Vec<f64> = (1..=1000).map(|i| f64::from(i) * 9_973.0).collect();
        let stats = pane_of(&values, 3).stats(&quantiles(&["p50", "p95"]));
        for (got, want) in stats.quantiles.iter().zip([values[499], values[949]]) {
            assert!((got - want).abs() <= want * 1e-3, "{got} vs {want}");
        }
    }

    #[test]
    fn fractions_of_a_unit_read_back_as_logged() {
        let cold_starts = pane_of(&[0.2, 0.4, 0.6, 0.8, 1.0], 3);
        assert_eq!(cold_starts.stats(&quantiles(&["p50", "p75", "p90"])).quantiles, [0.6, 0.8, 1.0]);
        let frames = pane_of(&[0.11, 0.12, 0.13, 0.14, 0.45], 3);
        assert_eq!(frames.stats(&quantiles(&["p50", "p75", "p90"])).quantiles, [0.13, 0.14, 0.45]);
    }

    #[test]
    fn quantiles_are_clamped_to_the_exact_extremes() {
        // The first and last ranks are the exact min and max.
        let stats = pane_of(&[1.2346, 0.5], 2).stats(&quantiles(&["p100", "p1"]));
        assert_eq!(stats.quantiles, [1.2346, 0.5]);
        // Others are narrowed to them: 1.2341 and 1.2346 share a bucket at 2
        // digits, whose shortest number (1.24) is above the max.
        let stats = pane_of(&[1.2341, 1.2346, 1.2346], 2).stats(&quantiles(&["p50"]));
        assert!((1.2341..=1.2346).contains(&stats.quantiles[0]), "{stats:?}");
    }

    #[test]
    fn merging_panes_equals_recording_into_one() {
        let mut a = pane_of(&[1.0, 5.0, 9.0], 3);
        let b = pane_of(&[2.0, 30_000.0, 0.001], 3);
        a.merge(&b);
        let all = pane_of(&[1.0, 5.0, 9.0, 2.0, 30_000.0, 0.001], 3);
        let q = quantiles(&["p50", "p75", "p100"]);
        assert_eq!(a.stats(&q), all.stats(&q));
    }

    #[test]
    fn the_mean_comes_from_a_compensated_sum() {
        // A naive sum of ten 0.1s is 0.9999999999999999.
        let stats = pane_of(&[0.1; 10], 3).stats(&[]);
        assert_eq!(stats.mean, 0.1);
    }
}
