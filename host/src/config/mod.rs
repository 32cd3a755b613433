//! Configuration: the YAML schema, loading and validation.
//!
//! [`load`] reads a file, parses the YAML into a tree of positioned nodes
//! ([`yaml`]), interpolating `${VAR}`s inside its values ([`interpolate`]),
//! reads the raw shape from it through serde ([`de`], [`raw`]) and resolves
//! it into [`Config`] ([`resolve`]), the only form the rest of Weir sees. Every error names the file, line,
//! column and key. Checks that need a plugin instance (the plugin's own
//! `config:` block) happen in `weir validate` and at start-up, in
//! [`crate::plugin`].

mod de;
mod error;
mod interpolate;
mod raw;
mod resolve;
mod spans;
mod test_suite;
mod yaml;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use error::ConfigError;
pub use test_suite::{ExpectedBody, ExpectedDeadLetter, ExpectedRecord, Matching, TestCase, TestStep, TestSuite};

use crate::core::secret::Secret;
use crate::core::tag_match::TagMatch;
use crate::inputs::InputConfig;
use crate::outputs::OutputConfig;
use crate::plugin::FilterSpec;

/// A validated pipeline configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where compiled plugins are cached.
    pub cache_dir: PathBuf,
    /// Where filter state is saved on shutdown and restored on start; no
    /// persistence when `None`.
    pub state_dir: Option<PathBuf>,
    /// Queue and batch sizes.
    pub pipeline: PipelineSettings,
    /// The tag dead-lettered records carry.
    pub dead_letter_tag: Arc<str>,
    /// The admin API and console, if served.
    pub admin: Option<AdminSpec>,
    /// Inputs, in file order.
    pub inputs: Vec<InputSpec>,
    /// Filters, in the order records pass through them.
    pub filters: Vec<FilterSpec>,
    /// Outputs, in file order.
    pub outputs: Vec<OutputSpec>,
}

impl Config {
    /// The `kafka` input with `checkpoints:`, if any (at most one).
    pub fn checkpointed_input(&self) -> Option<&crate::inputs::kafka::KafkaInputConfig> {
        self.inputs.iter().find_map(|input| match &input.config {
            crate::inputs::InputConfig::Kafka(kafka) if kafka.checkpoints.is_some() => Some(kafka),
            _ => None,
        })
    }
}

/// Sizes and periods of the record path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineSettings {
    /// Most records given to one filter call.
    pub batch_max_records: usize,
    /// Capacity, in batches, of each queue between stages.
    pub queue_capacity: usize,
    /// How often time-driven filters are ticked.
    pub tick_interval: Duration,
    /// The longest a drain after SIGTERM may take: filters finish what is
    /// queued and their state is saved within the first part of it, then
    /// outputs get the rest; what is still undelivered then is given up and
    /// counted, and `weir run` exits 1. Read at start; a reload changes it
    /// for the next start.
    pub shutdown_timeout: Duration,
    /// Threads running the filter chain (`pipeline.workers`; default: the
    /// number of cores, or `$WEIR_WORKERS`). Stateless filters run one
    /// instance per worker; a stateful one runs one instance per partition
    /// (`partition_by`). Only a restart changes it.
    pub workers: usize,
    /// How long a queue may stay full with nothing taken from it before
    /// `/health` reports the pipeline stalled (503). A reload applies it.
    pub stall_timeout: Duration,
}

/// The admin API and console (`admin:`).
#[derive(Debug, Clone, PartialEq)]
pub struct AdminSpec {
    /// Where it listens.
    pub address: SocketAddr,
    /// When set, `/metrics`, `/-/reload` and `/api/v1/*` need `Authorization:
    /// Bearer <token>`; `/health`, `/ready` and the console's own files never do.
    pub token: Option<Secret>,
    /// Sample input records kept per series and time bucket, for the
    /// console's window samples; none kept when `None`.
    pub samples: Option<SampleSpec>,
}

/// Which records the console's window samples keep (`admin.samples`): for
/// every record the filter `filter` emits with a parent and a tag `matches`
/// selects, the parent (the record that reached the filter) is kept in a
/// reservoir per series (the values of the emitted record's `key` fields)
/// and `bucket` of event time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleSpec {
    /// Name of the filter whose emitted records name a series.
    pub filter: String,
    /// Which of its emitted records count (default every tag).
    pub matches: TagMatch,
    /// Top-level fields of an emitted record that name its series.
    pub key: Vec<String>,
    /// Width of a time bucket of event time (default 1m); align it with the
    /// windows the console shows.
    pub bucket: Duration,
}

/// One input.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSpec {
    /// Unique name, used in logs and metrics.
    pub name: String,
    /// Tag given to the records it reads.
    pub tag: Arc<str>,
    /// Its own settings.
    pub config: InputConfig,
}

/// One output.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputSpec {
    /// Unique name, used in logs and metrics.
    pub name: String,
    /// Which records it receives.
    pub matches: TagMatch,
    /// How it groups records into writes.
    pub batch: BatchSettings,
    /// How often a failed write is tried before its records are dead-lettered.
    pub retry: RetrySettings,
    /// Its own settings.
    pub config: OutputConfig,
}

/// Batching of writes to an output, by count and by time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSettings {
    /// Write once this many records are waiting.
    pub max_records: usize,
    /// Write what is waiting at least this often.
    pub max_wait: Duration,
}

/// Retries of an output's failed writes (`retry:`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetrySettings {
    /// Give up (and dead-letter) after this many attempts; `None` (the
    /// default) retries forever, so backpressure holds the inputs instead.
    pub max_attempts: Option<u32>,
}

/// Load and validate the config at `path`, interpolating variables from the
/// process environment.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    parse(path, &read(path)?, |name| std::env::var(name).ok())
}

/// Validate config `text` as if read from `path`.
pub fn parse(path: &Path, text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    resolve::resolve(path, text, &env)
}

/// Load the `weir test` file at `path` and every config its tests name,
/// interpolating variables from the process environment.
pub fn load_tests(path: &Path) -> Result<TestSuite, ConfigError> {
    parse_tests(path, &read(path)?, |name| std::env::var(name).ok())
}

/// Validate test-file `text` as if read from `path`; the configs its tests
/// name are read from disk.
pub fn parse_tests(path: &Path, text: &str, env: impl Fn(&str) -> Option<String>) -> Result<TestSuite, ConfigError> {
    let load = |config: &Path| parse(config, &read(config)?, &env);
    test_suite::resolve(path, text, &env, &load)
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests;
