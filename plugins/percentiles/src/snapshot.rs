//! Snapshot and restore of every open window, so a reload or restart loses
//! none. It owns the snapshot's state format, inside the SDK's versioned
//! envelope (plugin name and format number, so a snapshot of another filter
//! or of an incompatible version is refused with a clear message); what the
//! state means is `engine`'s.
//!
//! Each pane's histogram is HdrHistogram's V2 + deflate encoding (typically a
//! few hundred bytes) in base64; floats are written as their shortest exact
//! decimal text so they read back bit for bit.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use serde::{Deserialize, Serialize};
use weir_plugin_sdk::SnapshotEnvelope;
use weir_plugin_sdk::json::rfc3339;

use crate::duration;
use crate::engine::{Percentiles, Series};
use crate::metric::SeriesKey;
use crate::pane::{Counts, Pane};

/// Names the plugin; the format is bumped when `State` changes
/// incompatibly, as restore refuses others.
const ENVELOPE: SnapshotEnvelope = SnapshotEnvelope::new("weir-plugin-percentiles", 1);

/// What the snapshot holds besides the envelope's plugin and format. No
/// `deny_unknown_fields`: the envelope refuses unknown top-level keys.
#[derive(Serialize, Deserialize)]
struct State {
    window: i64,
    step: i64,
    #[serde(with = "exact_f64")]
    scale: f64,
    max_event_time: Option<i64>,
    closed: Option<i64>,
    series: Vec<SeriesState>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeriesState {
    metric: String,
    labels: BTreeMap<String, String>,
    last_seen: i64,
    flushed_through: Option<i64>,
    panes: Vec<PaneState>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PaneState {
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
    /// Base64 of the V2 + deflate histogram.
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
        let mut serializer = V2DeflateSerializer::new();
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
                    .map(|(&start, pane)| {
                        let mut bytes = Vec::new();
                        serializer
                            .serialize(&pane.histogram, &mut bytes)
                            .expect("serialising an in-range histogram into a Vec cannot fail");
                        PaneState {
                            start,
                            count: pane.count,
                            sum: pane.sum,
                            compensation: pane.compensation,
                            min: pane.min,
                            max: pane.max,
                            histogram: BASE64.encode(bytes),
                        }
                    })
                    .collect(),
            })
            .collect();
        let state = State {
            window: self.config.window,
            step: self.config.step,
            scale: self.config.scale,
            max_event_time: self.max_event_time,
            closed: self.closed,
            series,
        };
        ENVELOPE.write(&state).expect("the envelope has only string keys and finite-or-string values")
    }

    /// Replace this instance's state with a snapshot's. The config stays this
    /// instance's own, but the window geometry and scale must match the
    /// snapshot's: open panes cannot be re-cut or re-scaled.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        let snapshot: State = ENVELOPE.read(bytes)?;
        if (snapshot.window, snapshot.step) != (self.config.window, self.config.step) {
            return Err(format!(
                "snapshot has window {} and step {}, this instance is configured with window {} and step {}: open windows cannot be re-cut",
                duration::format(snapshot.window),
                duration::format(snapshot.step),
                duration::format(self.config.window),
                duration::format(self.config.step)
            ));
        }
        if snapshot.scale != self.config.scale {
            return Err(format!(
                "snapshot has scale {}, this instance is configured with scale {}: recorded values cannot be re-scaled",
                snapshot.scale, self.config.scale
            ));
        }

        let mut deserializer = Deserializer::new();
        let mut series = BTreeMap::new();
        for state in snapshot.series {
            let key = SeriesKey { metric: state.metric, labels: state.labels };
            let mut panes = BTreeMap::new();
            for pane in state.panes {
                let where_ = || format!("snapshot series {key} pane at {}", rfc3339(pane.start));
                if pane.start.rem_euclid(self.config.step) != 0 {
                    return Err(format!("{}: start is not aligned to the step", where_()));
                }
                let bytes = BASE64
                    .decode(&pane.histogram)
                    .map_err(|e| format!("{}: histogram is not base64: {e}", where_()))?;
                let mut histogram = deserializer
                    .deserialize::<Counts, _>(&mut bytes.as_slice())
                    .map_err(|e| format!("{}: histogram does not decode: {e:?}", where_()))?;
                if histogram.len() != pane.count || pane.count == 0 {
                    return Err(format!(
                        "{}: histogram holds {} values but the pane counts {}",
                        where_(),
                        histogram.len(),
                        pane.count
                    ));
                }
                histogram.auto(true);
                let restored = Pane {
                    histogram,
                    count: pane.count,
                    sum: pane.sum,
                    compensation: pane.compensation,
                    min: pane.min,
                    max: pane.max,
                };
                panes.insert(pane.start, restored);
            }
            series.insert(key, Series { panes, last_seen: state.last_seen, flushed_through: state.flushed_through });
        }
        self.series = series;
        self.max_event_time = snapshot.max_event_time;
        // Never move the closed boundary back: windows already emitted stay closed.
        self.closed = self.closed.max(snapshot.closed);
        Ok(())
    }
}
