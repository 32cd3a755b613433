//! One `process` call as a pure function: events in, records out, plus the
//! counts the WIT glue reports to the host.
//!
//! This module owns what becomes of each input event (raw record passed on,
//! enriched or not, plus one metric record per match) and the counter names.
//! It does not call the host: `lib.rs` hands `Counts` to the host once per
//! call (through the SDK's `counters::flush`), so native tests never touch a
//! WIT import.

use weir_plugin_sdk::ConfigError;

use crate::body::{RecordView, enrich};
use crate::config::{ExtractFilterConfig, Mode};
use crate::rules::RuleSet;

/// A configured `extract` filter.
#[derive(Debug)]
pub struct ExtractFilter {
    rules: RuleSet,
    mode: Mode,
    metric_tag: String,
    enrich_field: String,
}

/// An event as `process` sees it; mirrors WIT `event` without depending on
/// the bindings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Event time, nanoseconds since the Unix epoch.
    pub time: i64,
    /// Routing tag.
    pub tag: String,
    /// One JSON object.
    pub body: Vec<u8>,
}

/// A record `process` emits, with the index of the input event it derives from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emitted {
    /// Index of the input event in the batch.
    pub parent: u32,
    /// The record.
    pub event: Event,
}

/// Per-call totals, reported once per `process` call, never per record.
///
/// Every input event counts in exactly one of `matched`, `unmatched` and
/// `no_source`; `value_errors` counts matches (not events) whose value could
/// not be read, so in mode `all` one event can add several.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Input events seen.
    pub records: u64,
    /// Events some rule's pattern matched.
    pub matched: u64,
    /// Events with a source string that no pattern matched.
    pub unmatched: u64,
    /// Events with no source field that is a string (or a body that is not
    /// a JSON object).
    pub no_source: u64,
    /// Matches whose value group did not parse.
    pub value_errors: u64,
    /// Metric records emitted.
    pub metrics: u64,
}

impl Counts {
    /// `(host counter name, delta)` for every counter.
    pub fn by_name(&self) -> [(&'static str, u64); 6] {
        [
            ("records", self.records),
            ("matched", self.matched),
            ("unmatched", self.unmatched),
            ("no_source", self.no_source),
            ("value_errors", self.value_errors),
            ("metrics", self.metrics),
        ]
    }
}

impl ExtractFilter {
    /// Read and compile the JSON `config:` block.
    pub fn configure(json: &str) -> Result<Self, ConfigError> {
        let config = ExtractFilterConfig::from_json(json)?;
        if config.metric_tag.is_empty() {
            return Err(ConfigError::at("metric_tag", "tag is empty"));
        }
        if config.enrich_field.is_empty() || config.enrich_field == crate::body::ERROR_FIELD {
            return Err(ConfigError::at(
                "enrich_field",
                format!("field name must be neither empty nor {:?}", crate::body::ERROR_FIELD),
            ));
        }
        let rules = RuleSet::compile(&config)?;
        Ok(Self { rules, mode: config.mode, metric_tag: config.metric_tag, enrich_field: config.enrich_field })
    }

    /// Every input event comes out as its raw record (same time, tag and
    /// parent; enriched when a rule matched), followed by one record per
    /// extracted metric, tagged `metric_tag`, with the input's time and
    /// index as parent.
    pub fn process(&self, events: Vec<Event>) -> (Vec<Emitted>, Counts) {
        let mut counts = Counts { records: events.len() as u64, ..Counts::default() };
        let mut out = Vec::with_capacity(events.len() * 2);
        for (index, mut event) in events.into_iter().enumerate() {
            let parent = u32::try_from(index).expect("WIT lists are indexed by u32");
            let extraction = self.rules.extract(&RecordView::new(&event.body));
            if !extraction.has_source {
                counts.no_source += 1;
            } else if !extraction.matched {
                counts.unmatched += 1;
            } else {
                counts.matched += 1;
            }
            counts.value_errors += extraction.errors.len() as u64;
            counts.metrics += extraction.metrics.len() as u64;
            if let Some(enriched) =
                enrich(&event.body, &self.enrich_field, self.mode, &extraction.metrics, &extraction.errors)
            {
                event.body = enriched;
            }
            let time = event.time;
            out.push(Emitted { parent, event });
            out.extend(extraction.metrics.into_iter().map(|body| Emitted {
                parent,
                event: Event { time, tag: self.metric_tag.clone(), body: body.into_bytes() },
            }));
        }
        (out, counts)
    }
}

#[cfg(test)]
mod tests;
