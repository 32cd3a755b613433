//! Metrics about the pipeline itself, served as Prometheus text on
//! `/metrics`. Every family is defined once, in [`catalogue`]; components
//! look their handles up once, when they are built, and bump them once per
//! batch or call, never per record in a hot loop.
//!
//! Four kinds of series: [`Counter`], [`Gauge`], [`Histogram`] (fixed
//! buckets in seconds) and gauges read when scraped
//! ([`Registry::gauge_fn`]), for values another structure already holds,
//! such as a queue's depth.

pub mod catalogue;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use catalogue::{Kind, Metric};

/// A monotonically increasing count.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Add `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down, such as requests in flight.
#[derive(Debug, Clone, Default)]
pub struct Gauge(Arc<AtomicI64>);

impl Gauge {
    /// Set to `n`.
    pub fn set(&self, n: i64) {
        self.0.store(n, Ordering::Relaxed);
    }

    /// Add `n` (negative to subtract).
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Add one until the returned guard drops: for things in progress.
    pub fn track(&self) -> GaugeGuard {
        self.add(1);
        GaugeGuard(self.clone())
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Takes back the one [`Gauge::track`] added, when dropped.
#[derive(Debug)]
pub struct GaugeGuard(Gauge);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.add(-1);
    }
}

/// Upper bounds of the histogram buckets, in seconds: from 100 µs (a small
/// filter call) to 2 minutes (a write retried through a destination's
/// outage), about three per decade, as Prometheus' default buckets are.
pub const BUCKETS: [f64; 19] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0,
];

/// [`BUCKETS`] in nanoseconds, to place an observation without floats.
const BUCKET_NANOS: [u64; 19] = {
    let mut out = [0u64; 19];
    let mut i = 0;
    while i < BUCKETS.len() {
        out[i] = (BUCKETS[i] * 1e9) as u64;
        i += 1;
    }
    out
};

#[derive(Debug, Default)]
struct HistogramCells {
    /// Per bucket, not cumulative; the last one is above every bound.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

/// Durations counted into [`BUCKETS`]: one observation per batch or call.
#[derive(Debug, Clone, Default)]
pub struct Histogram(Arc<HistogramCells>);

impl Histogram {
    /// Count one observation of `elapsed`.
    pub fn observe(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BUCKET_NANOS.partition_point(|&bound| bound < nanos);
        self.0.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.0.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// How many observations so far.
    pub fn count(&self) -> u64 {
        self.0.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// The sum of the observations so far.
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.0.sum_nanos.load(Ordering::Relaxed))
    }
}

/// A gauge's value, read when scraped.
type ReadFn = Arc<dyn Fn() -> i64 + Send + Sync>;

#[derive(Clone)]
enum Series {
    Counter(Counter),
    Gauge(Gauge),
    Read(ReadFn),
    Histogram(Histogram),
}

struct Family {
    metric: &'static Metric,
    series: BTreeMap<String, Series>,
}

/// All metrics of the process.
#[derive(Default)]
pub struct Registry {
    families: Mutex<BTreeMap<&'static str, Family>>,
}

/// The process-wide registry.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

/// `k="v",...` for the label names of `metric` and `values`, escaped.
fn label_text(metric: &Metric, values: &[&str]) -> String {
    assert_eq!(
        values.len(),
        metric.labels.len(),
        "{} takes the labels {:?}; a handle was asked for with {values:?} (a bug in weir)",
        metric.name,
        metric.labels
    );
    let mut out = String::new();
    for (i, (k, v)) in metric.labels.iter().zip(values).enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{k}=\"{}\"", escape(v));
    }
    out
}

/// A label value as the text format writes it: `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Registry {
    /// Run `f` on the series of `metric`'s family, made on first use.
    fn with_series<T>(&self, metric: &'static Metric, f: impl FnOnce(&mut BTreeMap<String, Series>) -> T) -> T {
        let mut families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let family = families.entry(metric.name).or_insert_with(|| Family { metric, series: BTreeMap::new() });
        f(&mut family.series)
    }

    /// The series `metric{values}` of `kind`, made by `make` when new.
    fn series(&self, metric: &'static Metric, kind: Kind, values: &[&str], make: impl FnOnce() -> Series) -> Series {
        assert_eq!(
            metric.kind,
            kind,
            "{} is a {}, not a {} (a bug in weir)",
            metric.name,
            metric.kind.as_str(),
            kind.as_str()
        );
        let labels = label_text(metric, values);
        self.with_series(metric, |series| series.entry(labels).or_insert_with(make).clone())
    }

    /// The counter `metric{values}` (label values in the order of
    /// `metric.labels`), created at 0 on first use.
    pub fn counter(&self, metric: &'static Metric, values: &[&str]) -> Counter {
        match self.series(metric, Kind::Counter, values, || Series::Counter(Counter::default())) {
            Series::Counter(c) => c,
            _ => unreachable!("a counter family holds counters, checked by kind above"),
        }
    }

    /// The gauge `metric{values}`, created at 0 on first use.
    pub fn gauge(&self, metric: &'static Metric, values: &[&str]) -> Gauge {
        match self.series(metric, Kind::Gauge, values, || Series::Gauge(Gauge::default())) {
            Series::Gauge(g) => g,
            _ => unreachable!("gauges read at scrape time have no handle; a family uses one way (a bug in weir)"),
        }
    }

    /// The histogram `metric{values}`, created empty on first use.
    pub fn histogram(&self, metric: &'static Metric, values: &[&str]) -> Histogram {
        match self.series(metric, Kind::Histogram, values, || Series::Histogram(Histogram::default())) {
            Series::Histogram(h) => h,
            _ => unreachable!("a histogram family holds histograms, checked by kind above"),
        }
    }

    /// Serve the gauge `metric{values}` by calling `read` at each scrape,
    /// replacing an earlier reader of the same series. `read` runs with the
    /// registry locked: it must not use the registry.
    pub fn gauge_fn(&self, metric: &'static Metric, values: &[&str], read: impl Fn() -> i64 + Send + Sync + 'static) {
        assert_eq!(metric.kind, Kind::Gauge, "{} is not a gauge (a bug in weir)", metric.name);
        let labels = label_text(metric, values);
        self.with_series(metric, |series| series.insert(labels, Series::Read(Arc::new(read))));
    }

    /// Stop serving the series `metric{values}` (e.g. a Kafka partition no
    /// longer assigned). Handles already taken keep working, unserved.
    pub fn remove(&self, metric: &'static Metric, values: &[&str]) {
        let labels = label_text(metric, values);
        let mut families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(family) = families.get_mut(metric.name) {
            family.series.remove(&labels);
        }
    }

    /// The sum of the counters of `metric` with the labels `labels` (over
    /// its other labels; all of them for `&[]`), 0 if there are none: for
    /// readers such as the console, which must not create series.
    pub fn counter_sum(&self, metric: &'static Metric, labels: &[(&str, &str)]) -> u64 {
        let wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
        // `k="v"` cannot occur inside a label value, whose quotes are escaped.
        let has = |text: &str, pair: &str| {
            text.match_indices(pair).any(|(at, _)| {
                (at == 0 || text[..at].ends_with(','))
                    && text[at + pair.len()..].chars().next().is_none_or(|c| c == ',')
            })
        };
        let families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let Some(family) = families.get(metric.name) else { return 0 };
        family
            .series
            .iter()
            .filter(|(text, _)| wanted.iter().all(|pair| has(text, pair)))
            .map(|(_, series)| match series {
                Series::Counter(c) => c.get(),
                _ => 0,
            })
            .sum()
    }

    /// Everything, in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for (name, family) in families.iter() {
            let _ = writeln!(out, "# HELP {name} {}", family.metric.help);
            let _ = writeln!(out, "# TYPE {name} {}", family.metric.kind.as_str());
            for (labels, series) in &family.series {
                let value = match series {
                    Series::Counter(c) => c.get() as i128,
                    Series::Gauge(g) => i128::from(g.get()),
                    Series::Read(read) => i128::from(read()),
                    Series::Histogram(h) => {
                        render_histogram(&mut out, name, labels, h);
                        continue;
                    }
                };
                let _ = writeln!(out, "{name}{} {value}", braced(labels));
            }
        }
        out
    }
}

/// `{labels}`, or nothing for a series without labels.
fn braced(labels: &str) -> String {
    if labels.is_empty() { String::new() } else { format!("{{{labels}}}") }
}

/// Cumulative `_bucket` lines, then `_sum` and `_count`. The count is the
/// `+Inf` bucket's, so a scrape racing an observation stays consistent.
fn render_histogram(out: &mut String, name: &str, labels: &str, histogram: &Histogram) {
    let sep = if labels.is_empty() { "" } else { "," };
    let mut cumulative = 0u64;
    for (i, cell) in histogram.0.buckets.iter().enumerate() {
        cumulative += cell.load(Ordering::Relaxed);
        let le = BUCKETS.get(i).map_or_else(|| "+Inf".to_string(), |b| b.to_string());
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}");
    }
    let sum = histogram.0.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
    let _ = writeln!(out, "{name}_sum{} {sum}", braced(labels));
    let _ = writeln!(out, "{name}_count{} {cumulative}", braced(labels));
}

#[cfg(test)]
mod tests {
    use super::catalogue::{CHAIN_QUEUE, INPUT_DEAD_LETTERS, INPUT_RECORDS, OUTPUT_WRITE, QUEUE_CAPACITY};
    use super::*;

    #[test]
    fn renders_counters_and_gauges_with_escaped_labels() {
        let r = Registry::default();
        r.counter(&INPUT_RECORDS, &["a\"b"]).add(3);
        r.counter(&INPUT_RECORDS, &["a\"b"]).add(2);
        r.gauge(&QUEUE_CAPACITY, &[]).set(-1);
        let text = r.render();
        assert!(text.contains("# TYPE weir_input_records_total counter"), "{text}");
        assert!(text.contains("weir_input_records_total{input=\"a\\\"b\"} 5"), "{text}");
        assert!(text.contains("weir_queue_capacity_batches -1"), "{text}");
        r.counter(&INPUT_DEAD_LETTERS, &["a\"b", "malformed"]).add(4);
        r.counter(&INPUT_DEAD_LETTERS, &["a\"b", "other"]).add(1);
        assert_eq!(r.counter_sum(&INPUT_DEAD_LETTERS, &[("input", "a\"b")]), 5, "summed over the other labels");
        assert_eq!(r.counter_sum(&INPUT_DEAD_LETTERS, &[("input", "none")]), 0);
        assert!(!r.render().contains("none"), "reading creates no series");
    }

    #[test]
    fn histograms_render_cumulative_buckets_sum_and_count() {
        let r = Registry::default();
        let h = r.histogram(&OUTPUT_WRITE, &["es"]);
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_millis(1));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(600));
        let text = r.render();
        for line in [
            "# TYPE weir_output_write_seconds histogram",
            "weir_output_write_seconds_bucket{output=\"es\",le=\"0.0001\"} 1",
            // An observation on a bound counts in that bucket (le: less or equal).
            "weir_output_write_seconds_bucket{output=\"es\",le=\"0.001\"} 2",
            "weir_output_write_seconds_bucket{output=\"es\",le=\"0.005\"} 3",
            "weir_output_write_seconds_bucket{output=\"es\",le=\"120\"} 3",
            "weir_output_write_seconds_bucket{output=\"es\",le=\"+Inf\"} 4",
            "weir_output_write_seconds_sum{output=\"es\"} 600.00405",
            "weir_output_write_seconds_count{output=\"es\"} 4",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert_eq!(h.count(), 4);
    }

    #[test]
    fn read_gauges_are_read_at_each_scrape_and_series_can_go() {
        let r = Registry::default();
        let depth = Arc::new(AtomicI64::new(2));
        let read = depth.clone();
        r.gauge_fn(&CHAIN_QUEUE, &[], move || read.load(Ordering::Relaxed));
        assert!(r.render().contains("weir_chain_queue_batches 2"));
        depth.store(5, Ordering::Relaxed);
        assert!(r.render().contains("weir_chain_queue_batches 5"));
        r.remove(&CHAIN_QUEUE, &[]);
        assert!(!r.render().contains("weir_chain_queue_batches 5"));
    }

    #[test]
    fn a_tracked_gauge_goes_back_down_when_the_guard_drops() {
        let g = Gauge::default();
        let guard = g.track();
        assert_eq!(g.get(), 1);
        drop(guard);
        assert_eq!(g.get(), 0);
    }

    #[test]
    #[should_panic(expected = "takes the labels")]
    fn a_handle_with_the_wrong_labels_is_a_bug() {
        Registry::default().counter(&INPUT_RECORDS, &[]);
    }
}
