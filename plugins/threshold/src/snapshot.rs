//! Snapshot and restore of alert states (per rule and series: the pending
//! run and the firing time), so a reload neither re-fires nor forgets an
//! alert. It owns the snapshot's state format, inside the SDK's versioned
//! envelope; what the state means is `engine`'s.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use weir_plugin_sdk::SnapshotEnvelope;

use crate::engine::{AlertKey, AlertState, Threshold};

/// Names the plugin; the format is bumped when `State` changes
/// incompatibly, as restore refuses others.
const ENVELOPE: SnapshotEnvelope = SnapshotEnvelope::new("weir-plugin-threshold", 1);

/// What the snapshot holds besides the envelope's plugin and format. No
/// `deny_unknown_fields`: the envelope refuses unknown top-level keys.
#[derive(Serialize, Deserialize)]
struct State {
    alerts: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    rule: String,
    metric: String,
    labels: BTreeMap<String, String>,
    consecutive: u32,
    firing_since: Option<i64>,
    last_start: i64,
    last_end: i64,
    /// Absent from snapshots of versions before `absent_for`.
    #[serde(default)]
    last_value: f64,
}

/// What a restore kept and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    /// States taken over.
    pub kept: usize,
    /// States of rules this instance no longer has (or whose metric
    /// changed), dropped; firing ones among them are never resolved.
    pub dropped: usize,
}

impl Threshold {
    /// Serialise every pending or firing alert state.
    pub fn snapshot(&self) -> Vec<u8> {
        let alerts = self
            .states
            .iter()
            .map(|(key, state)| Entry {
                rule: key.rule.clone(),
                metric: key.metric.clone(),
                labels: key.labels.clone(),
                consecutive: state.consecutive,
                firing_since: state.firing_since,
                last_start: state.last_start,
                last_end: state.last_end,
                last_value: state.last_value,
            })
            .collect();
        ENVELOPE.write(&State { alerts }).expect("the envelope has only string keys")
    }

    /// Replace this instance's alert states with a snapshot's. States of
    /// rules this config does not have (by name and metric) are dropped.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<Restored, String> {
        let state: State = ENVELOPE.read(bytes)?;
        let mut states = BTreeMap::new();
        let mut dropped = 0;
        for entry in state.alerts {
            if !self.config.rules.iter().any(|r| r.name == entry.rule && r.metric == entry.metric) {
                dropped += 1;
                continue;
            }
            if entry.last_end <= entry.last_start {
                return Err(format!("snapshot state of rule {} has an empty last window", entry.rule));
            }
            let key = AlertKey { rule: entry.rule, metric: entry.metric, labels: entry.labels };
            let state = AlertState {
                consecutive: entry.consecutive,
                firing_since: entry.firing_since,
                last_start: entry.last_start,
                last_end: entry.last_end,
                last_value: entry.last_value,
            };
            states.insert(key, state);
        }
        let kept = states.len();
        self.states = states;
        Ok(Restored { kept, dropped })
    }
}
