//! Snapshot and restore of alert states (per rule and series: the pending
//! run and the firing time), so a reload neither re-fires nor forgets an
//! alert. It owns the envelope format; what the state means is `engine`'s.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::engine::{AlertKey, AlertState, Threshold};

/// Names the plugin in the envelope.
const PLUGIN: &str = "weir-plugin-threshold";

/// Bumped when the envelope changes incompatibly; restore refuses others.
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    plugin: String,
    format: u32,
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
            })
            .collect();
        let envelope = Envelope {
            plugin: PLUGIN.to_string(),
            format: FORMAT,
            alerts,
        };
        serde_json::to_vec(&envelope).expect("the envelope has only string keys")
    }

    /// Replace this instance's alert states with a snapshot's. States of
    /// rules this config does not have (by name and metric) are dropped.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<Restored, String> {
        let envelope: Envelope = serde_json::from_slice(bytes)
            .map_err(|e| format!("snapshot is not a {PLUGIN} snapshot of format {FORMAT}: {e}"))?;
        if envelope.plugin != PLUGIN {
            return Err(format!(
                "snapshot is from {:?}, not {PLUGIN}",
                envelope.plugin
            ));
        }
        if envelope.format != FORMAT {
            return Err(format!(
                "snapshot format {} is not supported (this plugin reads format {FORMAT})",
                envelope.format
            ));
        }
        let mut states = BTreeMap::new();
        let mut dropped = 0;
        for entry in envelope.alerts {
            if !self
                .config
                .rules
                .iter()
                .any(|r| r.name == entry.rule && r.metric == entry.metric)
            {
                dropped += 1;
                continue;
            }
            if entry.last_end <= entry.last_start {
                return Err(format!(
                    "snapshot state of rule {} has an empty last window",
                    entry.rule
                ));
            }
            let key = AlertKey {
                rule: entry.rule,
                metric: entry.metric,
                labels: entry.labels,
            };
            let state = AlertState {
                consecutive: entry.consecutive,
                firing_since: entry.firing_since,
                last_start: entry.last_start,
                last_end: entry.last_end,
            };
            states.insert(key, state);
        }
        let kept = states.len();
        self.states = states;
        Ok(Restored { kept, dropped })
    }
}
