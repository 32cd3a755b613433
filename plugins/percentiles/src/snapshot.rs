//! Snapshot and restore of every open window, so a reload or restart loses
//! none. It owns the snapshot's state format, inside the SDK's versioned
//! envelope (plugin name and format number, so a snapshot of another filter
//! or of an unknown version is refused with a clear message); what the
//! state means is `engine`'s.
//!
//! Format 2 holds each pane's histogram as `[bucket, count]` pairs at the
//! snapshot's `significant_digits`; floats are written as their shortest
//! exact decimal text so they read back bit for bit. Format 1, written by
//! versions whose histograms held `round(value * scale)` as integers
//! (HdrHistogram's V2 + deflate encoding, base64), is still read: each of its
//! buckets is recorded at its largest value divided by `scale`, so the
//! values of windows open across the upgrade keep format 1's precision.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::serialization::Deserializer;
use serde::{Deserialize, Serialize};
use weir_plugin_sdk::json::rfc3339;
use weir_plugin_sdk::{SnapshotEnvelope, duration};

use crate::engine::{Percentiles, Series};
use crate::histogram::{Histogram, Precision, Sample};
use crate::metric::SeriesKey;
use crate::pane::Pane;

/// Names the plugin; the format is bumped when `State` changes
/// incompatibly. Restore reads this format and [`FORMAT_1`].
const ENVELOPE: SnapshotEnvelope = SnapshotEnvelope::new("weir-plugin-percentiles", 2);

/// The format before log-linear histograms.
const FORMAT_1: SnapshotEnvelope = SnapshotEnvelope::new("weir-plugin-percentiles", 1);

/// What the snapshot holds besides the envelope's plugin and format. No
/// `deny_unknown_fields`: the envelope refuses unknown top-level keys.
#[derive(Serialize, Deserialize)]
struct State {
    window: i64,
    step: i64,
    /// Precision the bucket keys are at.
    significant_digits: u8,
    max_event_time: Option<i64>,
    closed: Option<i64>,
    series: Vec<SeriesState<PaneState>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeriesState<P> {
    metric: String,
    labels: BTreeMap<String, String>,
    last_seen: i64,
    flushed_through: Option<i64>,
    panes: Vec<P>,
}

/// A pane's exact figures, shared by both formats.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Figures {
    start: i64,
    count: u64,
    #[serde(with = "exact_f64")]
    sum: f64,
    #[serde(with = "exact_f64")]
    compensation: f64,
    #[serde(with = "exact_f64")]
    min: f64,
    #[serde(with = "exact_f64")]
    max: f64,
}

#[derive(Serialize, Deserialize)]
struct PaneState {
    #[serde(flatten)]
    figures: Figures,
    /// `[bucket, count]`, smallest values first.
    buckets: Vec<(u32, u64)>,
}

/// Format 1's state.
#[derive(Deserialize)]
struct StateV1 {
    window: i64,
    step: i64,
    #[serde(with = "exact_f64")]
    scale: f64,
    max_event_time: Option<i64>,
    closed: Option<i64>,
    series: Vec<SeriesState<PaneStateV1>>,
}

#[derive(Deserialize)]
struct PaneStateV1 {
    #[serde(flatten)]
    figures: Figures,
    /// Base64 of the V2 + deflate HdrHistogram of `round(value * scale)`.
    histogram: String,
}

/// Floats as strings: Rust prints the shortest text that parses back to the
/// same bits, which a JSON number parser does not promise.
mod exact_f64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(|_| serde::de::Error::custom(format!("invalid number {text:?}")))
    }
}

impl Percentiles {
    /// Serialise all open windows and the watermark.
    pub fn snapshot(&self) -> Vec<u8> {
        let series = self
            .series
            .iter()
            .map(|(key, s)| SeriesState {
                metric: key.metric.clone(),
                labels: key.labels.clone(),
                last_seen: s.last_seen,
                flushed_through: s.flushed_through,
                panes: s
                    .panes
                    .iter()
                    .map(|(&start, pane)| PaneState {
                        figures: Figures {
                            start,
                            count: pane.count,
                            sum: pane.sum,
                            compensation: pane.compensation,
                            min: pane.min,
                            max: pane.max,
                        },
                        buckets: pane.histogram.raw_buckets().collect(),
                    })
                    .collect(),
            })
            .collect();
        let state = State {
            window: self.config.window,
            step: self.config.step,
            significant_digits: self.precision.digits(),
            max_event_time: self.max_event_time,
            closed: self.closed,
            series,
        };
        ENVELOPE.write(&state).expect("the envelope has only string keys and finite-or-string values")
    }

    /// Replace this instance's state with a snapshot's, of format 2 or 1.
    /// The config stays this instance's own, but the window geometry must
    /// match the snapshot's: open panes cannot be re-cut. Histograms of
    /// another precision are re-bucketed.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        let state: State = match ENVELOPE.format_of(bytes)? {
            2 => ENVELOPE.read(bytes)?,
            1 => self.upgrade(FORMAT_1.read(bytes)?)?,
            other => {
                return Err(format!("snapshot format {other} is not supported (this plugin reads formats 1 and 2)"));
            }
        };
        if (state.window, state.step) != (self.config.window, self.config.step) {
            return Err(format!(
                "snapshot has window {} and step {}, this instance is configured with window {} and step {}: open windows cannot be re-cut",
                duration::format(state.window),
                duration::format(state.step),
                duration::format(self.config.window),
                duration::format(self.config.step)
            ));
        }
        let precision = Precision::new(state.significant_digits);
        let mut series = BTreeMap::new();
        for s in state.series {
            let key = SeriesKey { metric: s.metric, labels: s.labels };
            let mut panes = BTreeMap::new();
            for PaneState { figures, buckets } in s.panes {
                let where_ = || format!("snapshot series {key} pane at {}", rfc3339(figures.start));
                if figures.start.rem_euclid(self.config.step) != 0 {
                    return Err(format!("{}: start is not aligned to the step", where_()));
                }
                let histogram = Histogram::from_raw(precision, &buckets).map_err(|e| format!("{}: {e}", where_()))?;
                if histogram.len() != figures.count || figures.count == 0 {
                    return Err(format!(
                        "{}: histogram holds {} values but the pane counts {}",
                        where_(),
                        histogram.len(),
                        figures.count
                    ));
                }
                let Figures { start, count, sum, compensation, min, max } = figures;
                // A histogram of another precision joins an empty one of ours.
                let mut ours = Pane::new(self.precision);
                ours.merge(&Pane { histogram, count, sum, compensation, min, max });
                panes.insert(start, ours);
            }
            series.insert(key, Series { panes, last_seen: s.last_seen, flushed_through: s.flushed_through });
        }
        self.series = series;
        self.max_event_time = state.max_event_time;
        // Never move the closed boundary back: windows already emitted stay closed.
        self.closed = self.closed.max(state.closed);
        Ok(())
    }

    /// Format 1's state as format 2's: each HdrHistogram bucket recorded at
    /// its largest value divided by `scale`, at this instance's precision.
    fn upgrade(&self, old: StateV1) -> Result<State, String> {
        let scale = old.scale;
        if !(scale.is_finite() && scale > 0.0) {
            return Err(format!("snapshot has scale {scale}, which must be above 0"));
        }
        let mut deserializer = Deserializer::new();
        let mut read = |histogram: &str| -> Result<Vec<(u32, u64)>, String> {
            let bytes = BASE64.decode(histogram).map_err(|e| format!("histogram is not base64: {e}"))?;
            let hdr = deserializer
                .deserialize::<u32, _>(&mut bytes.as_slice())
                .map_err(|e| format!("histogram does not decode: {e:?}"))?;
            let mut ours = Histogram::new(self.precision);
            for bucket in hdr.iter_recorded() {
                // The bucket's largest value, as format 1 read quantiles.
                let value = bucket.value_iterated_to() as f64 / scale;
                let sample = Sample::new(value).map_err(|why| format!("value {value} {why}"))?;
                ours.record(sample, bucket.count_since_last_iteration());
            }
            Ok(ours.raw_buckets().collect())
        };
        let mut series = Vec::with_capacity(old.series.len());
        for s in old.series {
            let mut panes = Vec::with_capacity(s.panes.len());
            for PaneStateV1 { figures, histogram } in s.panes {
                let buckets = read(&histogram).map_err(|e| {
                    let key = SeriesKey { metric: s.metric.clone(), labels: s.labels.clone() };
                    format!("snapshot series {key} pane at {}: {e}", rfc3339(figures.start))
                })?;
                panes.push(PaneState { figures, buckets });
            }
            let SeriesState { metric, labels, last_seen, flushed_through, .. } = s;
            series.push(SeriesState { metric, labels, last_seen, flushed_through, panes });
        }
        Ok(State {
            window: old.window,
            step: old.step,
            significant_digits: self.precision.digits(),
            max_event_time: old.max_event_time,
            closed: old.closed,
            series,
        })
    }
}
