//! [`FilterSpec`]: one filter as the config resolved it. The plugin runtime
//! owns it, as each input and output owns its `…Config`.

use std::path::PathBuf;

use super::limits::{Grants, Limits};
use crate::core::tag_match::TagMatch;
use crate::core::template::FieldPath;

/// One filter plugin in the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterSpec {
    /// Unique name, used in logs, metrics and dead-letter reasons.
    pub name: String,
    /// The component (or, for [`Abi::FluentBit`], core module) file.
    pub wasm: PathBuf,
    /// Which contract the file speaks.
    pub abi: Abi,
    /// Which records it processes.
    pub matches: TagMatch,
    /// Its `config:` block, handed to the plugin's `configure` as JSON.
    pub config: serde_json::Value,
    /// `partition_by`: the body fields whose values pick the instance a
    /// record goes to, so every record of one key meets the same state.
    /// `None`: the pipeline decides (see `pipeline::chain::Placement`); an
    /// empty list: one instance takes every record.
    pub partition_by: Option<Vec<FieldPath>>,
    /// Deadline and memory cap.
    pub limits: Limits,
    /// What it may reach beyond the contract.
    pub grants: Grants,
    /// Whether the host keeps repeats of records away from it (`dedupe:`);
    /// `None`: every record its `match` selects is given to it.
    pub dedupe: Option<DedupeSettings>,
}

/// `dedupe:` of a filter: the host remembers the identities
/// ([`Record::identity`](crate::core::record::Record::identity)) of the
/// records it gave the filter, and a record it gave before (a client's
/// retry, a replayed Kafka partition or file) is not given again: it is
/// acknowledged as consumed. For filters that count what they consume
/// (`percentiles`), so windows are as exactly-once as the Elasticsearch
/// index. A record without an origin (an aggregate) is always given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupeSettings {
    /// How many identities are remembered, the oldest forgotten first: 8
    /// bytes each in the state file, about 25 in memory.
    pub capacity: usize,
}

/// The contract between Weir and a filter's WebAssembly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Abi {
    /// A component exporting `weir:filter/plugin` (`wit/filter.wit`):
    /// batches, many records out per record in, state and timers.
    #[default]
    Component,
    /// A core module written to Fluent Bit's `filter_wasm` ABI
    /// (`docs/fluent-bit-abi.md`): one call of `function` per record, one
    /// record (or none) back.
    FluentBit {
        /// The exported function, Fluent Bit's `Function_Name`.
        function: String,
        /// How the record is handed over, Fluent Bit's `Event_Format`.
        format: EventFormat,
    },
}

/// How a Fluent Bit-ABI filter receives records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EventFormat {
    /// JSON text with a NUL after it (Fluent Bit's default).
    #[default]
    Json,
    /// A msgpack map.
    Msgpack,
}
