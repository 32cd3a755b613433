//! The YAML shape, checked by serde and nothing more ("low args"). Only
//! `config::resolve` reads these structs. Input and output bodies are not
//! here: the resolver takes them out of the tree first, since their fields
//! belong to each component's own `…Config` struct.

use serde::Deserialize;

use crate::core::secret::{Secret, present};

/// The whole file but `inputs` and `outputs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub plugin_dir: Option<String>,
    pub cache_dir: Option<String>,
    pub state_dir: Option<String>,
    #[serde(default)]
    pub pipeline: RawPipeline,
    #[serde(default)]
    pub dead_letter: RawDeadLetter,
    pub admin: Option<RawAdmin>,
    #[serde(default)]
    pub filters: Vec<RawFilter>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPipeline {
    pub batch_max_records: Option<usize>,
    pub queue_capacity: Option<usize>,
    pub tick_interval: Option<String>,
    pub shutdown_timeout: Option<String>,
    pub workers: Option<usize>,
    pub stall_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDeadLetter {
    pub tag: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub address: String,
    #[serde(default, deserialize_with = "present")]
    pub token: Option<Secret>,
    pub samples: Option<RawSamples>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSamples {
    pub filter: String,
    #[serde(rename = "match")]
    pub matches: Option<RawMatch>,
    pub key: Vec<String>,
    pub bucket: Option<String>,
}

/// A tag glob or a list of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawMatch {
    One(String),
    Any(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFilter {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: Option<String>,
    #[serde(rename = "match")]
    pub matches: RawMatch,
    pub path: Option<String>,
    /// `component` (default) or `fluent-bit`.
    pub abi: Option<String>,
    /// The exported function of a `fluent-bit` module.
    pub function: Option<String>,
    /// `json` (default) or `msgpack`, for a `fluent-bit` module.
    pub event_format: Option<String>,
    pub config: Option<serde_json::Value>,
    pub partition_by: Option<Vec<String>>,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub grants: RawGrants,
    pub dedupe: Option<RawDedupe>,
}

/// `dedupe: true`, or with settings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawDedupe {
    On(bool),
    With(RawDedupeSettings),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDedupeSettings {
    pub capacity: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub deadline: Option<String>,
    pub memory: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrants {
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub dirs: Vec<RawDirGrant>,
    #[serde(default)]
    pub wall_clock: bool,
    #[serde(default)]
    pub network: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDirGrant {
    pub host: String,
    pub guest: String,
    #[serde(default)]
    pub writable: bool,
}

/// Output batching.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBatch {
    pub max_records: Option<usize>,
    pub max_wait: Option<String>,
}

/// Output retries.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    pub max_attempts: Option<u32>,
}
