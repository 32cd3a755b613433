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
    /// The component file.
    pub wasm: PathBuf,
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
}
