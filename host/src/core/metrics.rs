//! Metrics about the pipeline itself, served as Prometheus text on
//! `/metrics`. Handles are looked up once when a component is built and
//! bumped with one atomic add per batch, never per record in a hot loop.
//! Names follow `weir_<area>_<thing>_total` with bounded labels.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

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

/// A value that goes up and down, such as a queue depth.
#[derive(Debug, Clone, Default)]
pub struct Gauge(Arc<AtomicI64>);

impl Gauge {
    /// Set to `n`.
    pub fn set(&self, n: i64) {
        self.0.store(n, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
struct Family {
    help: &'static str,
    kind: &'static str,
    counters: BTreeMap<String, Counter>,
    gauges: BTreeMap<String, Gauge>,
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

fn label_text(labels: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let escaped = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        let _ = write!(out, "{k}=\"{escaped}\"");
    }
    out
}

impl Registry {
    /// The counter `name{labels}`, created on first use.
    pub fn counter(&self, name: &'static str, help: &'static str, labels: &[(&str, &str)]) -> Counter {
        let mut families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let family = families.entry(name).or_insert_with(|| Family { help, kind: "counter", ..Default::default() });
        family.counters.entry(label_text(labels)).or_default().clone()
    }

    /// The gauge `name{labels}`, created on first use.
    pub fn gauge(&self, name: &'static str, help: &'static str, labels: &[(&str, &str)]) -> Gauge {
        let mut families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let family = families.entry(name).or_insert_with(|| Family { help, kind: "gauge", ..Default::default() });
        family.gauges.entry(label_text(labels)).or_default().clone()
    }

    /// The value of the counter `name{labels}`, 0 if it was never created:
    /// for readers such as the console, which must not create series.
    pub fn counter_value(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        families.get(name).and_then(|f| f.counters.get(&label_text(labels))).map_or(0, Counter::get)
    }

    /// Everything, in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for (name, family) in families.iter() {
            let _ = writeln!(out, "# HELP {name} {}", family.help);
            let _ = writeln!(out, "# TYPE {name} {}", family.kind);
            let values = family
                .counters
                .iter()
                .map(|(l, c)| (l, c.get() as i128))
                .chain(family.gauges.iter().map(|(l, g)| (l, g.get() as i128)));
            for (labels, value) in values {
                if labels.is_empty() {
                    let _ = writeln!(out, "{name} {value}");
                } else {
                    let _ = writeln!(out, "{name}{{{labels}}} {value}");
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_gauges_with_escaped_labels() {
        let r = Registry::default();
        r.counter("weir_test_total", "things", &[("input", "a\"b")]).add(3);
        r.counter("weir_test_total", "things", &[("input", "a\"b")]).add(2);
        r.gauge("weir_test_depth", "depth", &[]).set(-1);
        let text = r.render();
        assert!(text.contains("# TYPE weir_test_total counter"), "{text}");
        assert!(text.contains("weir_test_total{input=\"a\\\"b\"} 5"), "{text}");
        assert!(text.contains("weir_test_depth -1"), "{text}");
        assert_eq!(r.counter_value("weir_test_total", &[("input", "a\"b")]), 5);
        assert_eq!(r.counter_value("weir_test_total", &[("input", "other")]), 0);
        assert!(!r.render().contains("other"), "reading creates no series");
    }
}
