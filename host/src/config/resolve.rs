//! Raw YAML -> [`Config`] ("high args"): defaults, relative paths, names,
//! globs, plugin files, and each component's own config struct. Errors carry
//! the position of the offending key, found through [`Spans`].

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::de::DeError;
use super::interpolate;
use super::raw::{RawAdmin, RawBatch, RawConfig, RawDedupe, RawFilter, RawGrants, RawLimits, RawMatch, RawRetry};
use super::spans::Spans;
use super::yaml::{self, Kind, LoadError, Node};
use super::{
    AdminSpec, BatchSettings, Config, ConfigError, InputSpec, OutputSpec, PipelineSettings, RetrySettings, SampleSpec,
};
use crate::core::tag_match::TagMatch;
use crate::core::template::FieldPath;
use crate::core::units::{ByteSize, HumanDuration};
use crate::inputs::buffer::BufferSettings;
use crate::plugin::{Abi, DedupeSettings, DirGrant, EventFormat, FilterSpec, Grants, Limits};
use crate::{inputs, outputs};

/// Records per filter call: large enough to amortise the ~1.5 µs fixed cost
/// of a WASM call, small enough to keep batch latency in milliseconds.
const DEFAULT_BATCH_MAX_RECORDS: usize = 1000;
/// The smallest durable buffer: room for a few requests.
const MIN_BUFFER_BYTES: u64 = 64 << 10;
/// Batches per queue: with 1,000-record batches, a few MiB of bodies at most.
const DEFAULT_QUEUE_CAPACITY: usize = 8;
/// Time-driven filters (windows, alerts) need second resolution at most.
const DEFAULT_TICK_INTERVAL: Duration = Duration::from_secs(1);
/// Under Kubernetes' default grace period (30 s) before SIGKILL, with room
/// for the process to exit after giving up.
const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(25);
/// Long enough that a destination's brief hiccup (a slow bulk request, a
/// leader election) is no stall, short enough for a liveness probe to act
/// within minutes.
const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_DEAD_LETTER_TAG: &str = "weir.dead_letter";
const DEFAULT_OUTPUT_MAX_RECORDS: usize = 1000;
const DEFAULT_OUTPUT_MAX_WAIT: Duration = Duration::from_millis(200);
/// Identities a `dedupe` filter remembers: at 1,000 records a second, a
/// quarter of an hour of retries and replays (a 15-minute window's worth),
/// for about 25 MB at most.
const DEFAULT_DEDUPE_CAPACITY: usize = 1_000_000;
/// The windows of the bundled scenario are a minute long; a bucket per
/// window keeps each window's samples apart.
const DEFAULT_SAMPLE_BUCKET: Duration = Duration::from_secs(60);

/// Parse `text` (interpolating `${VAR}`s with `env` inside its values) and
/// resolve it into a [`Config`].
pub fn resolve(file: &Path, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let (resolver, mut root) =
        Resolver::load(file, text, env, "the config is empty; expected `inputs:` and `outputs:`")?;
    let inputs = resolver.items("inputs", root.remove("inputs"))?;
    let outputs = resolver.items("outputs", root.remove("outputs"))?;
    let raw: RawConfig = serde_path_to_error::deserialize(&root).map_err(|e| resolver.serde_error("", e))?;
    resolver.config(raw, inputs, outputs, env)
}

/// Top-level keys starting with this are ignored: a place for anchors
/// (`x-defaults: &defaults {…}`) that only merge keys and aliases read.
const EXTENSION_PREFIX: &str = "x-";

/// A `${VAR}` written unquoted inside `{ }` or `[ ]` is YAML syntax there
/// (`{` and `}` are flow indicators); say so when that is where YAML failed.
fn hint_flow_quoting(text: &str, error: LoadError) -> String {
    let line = text.lines().nth(error.at.0.saturating_sub(1)).unwrap_or_default();
    if error.message.starts_with("invalid YAML") && line.contains("${") && line.contains(['{', '[']) {
        format!("{} (inside `{{ }}` or `[ ]`, write a variable quoted: \"${{VAR}}\")", error.message)
    } else {
        error.message
    }
}

/// Resolves one YAML file: knows its folder (relative paths) and where each
/// key is (error positions). The test files of `weir test` use it too.
pub(super) struct Resolver {
    file: PathBuf,
    base: PathBuf,
    spans: Spans,
}

impl Resolver {
    /// Parse `text`, read from `file`, into a mapping (interpolating
    /// `${VAR}`s inside its values), and a resolver for it; `empty` is the
    /// error for a file with no settings. Top-level `x-…` keys are dropped.
    pub(super) fn load(
        file: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
        empty: &str,
    ) -> Result<(Resolver, Node), ConfigError> {
        let positioned = |e: LoadError| ConfigError::Invalid {
            file: file.to_path_buf(),
            position: Some(e.at),
            key: String::new(),
            message: hint_flow_quoting(text, e),
        };
        let root =
            yaml::load(text, |value, style, at| interpolate::scalar(value, style, at, env)).map_err(positioned)?;
        let empty = || positioned(LoadError::new((1, 1), empty));
        let mut root = root.ok_or_else(empty)?;
        match &root.kind {
            Kind::Map(entries) if entries.is_empty() => return Err(empty()),
            Kind::Map(_) => {}
            _ => return Err(positioned(LoadError::new(root.at, "expected a mapping"))),
        }
        let resolver = Resolver {
            file: file.to_path_buf(),
            base: file.parent().map(Path::to_path_buf).unwrap_or_default(),
            spans: Spans::index(&root),
        };
        // `x-…` keys hold anchors for merge keys and aliases, as in Compose files.
        if let Kind::Map(entries) = &mut root.kind {
            entries.retain(|e| !e.key.starts_with(EXTENSION_PREFIX));
        }
        Ok((resolver, root))
    }

    /// The 1-based line and column of `key`, or of its nearest ancestor.
    pub(super) fn position(&self, key: &str) -> Option<(usize, usize)> {
        self.spans.find(key)
    }

    pub(super) fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.clone(),
            position: self.spans.find(key),
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// Turn a serde error at `prefix` into a positioned [`ConfigError`].
    pub(super) fn serde_error(&self, prefix: &str, error: serde_path_to_error::Error<DeError>) -> ConfigError {
        let inner_path = error.path().to_string();
        let mut key = match (prefix, inner_path.as_str()) {
            (p, ".") => p.to_string(),
            ("", i) => i.to_string(),
            (p, i) => format!("{p}.{i}"),
        };
        let message = error.into_inner().to_string();
        // serde reports an unknown field at its parent; name the field itself.
        if let Some(field) = message.strip_prefix("unknown field `").and_then(|m| m.split('`').next())
            && !key.ends_with(field)
        {
            key = if key.is_empty() { field.to_string() } else { format!("{key}.{field}") };
        }
        ConfigError::Invalid { file: self.file.clone(), position: self.spans.find(&key), key, message }
    }

    /// `value` relative to the file's folder.
    pub(super) fn path(&self, value: &str) -> PathBuf {
        self.base.join(value)
    }

    /// Where `type:` filters load NAME.wasm from: `plugin_dir:`, else
    /// `$WEIR_PLUGIN_DIR`, else `plugins` beside the file.
    pub(super) fn plugin_dir(&self, raw: Option<&str>, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
        match (raw, env("WEIR_PLUGIN_DIR")) {
            (Some(dir), _) => self.path(dir),
            (None, Some(dir)) => PathBuf::from(dir),
            (None, None) => self.path("plugins"),
        }
    }

    /// Where compiled plugins are cached: `cache_dir:`, else
    /// `$WEIR_CACHE_DIR`, else the user's cache folder.
    pub(super) fn cache_dir(&self, raw: Option<&str>, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
        match (raw, env("WEIR_CACHE_DIR")) {
            (Some(dir), _) => self.path(dir),
            (None, Some(dir)) => PathBuf::from(dir),
            (None, None) => default_cache_dir(env),
        }
    }

    /// A config of `filters` alone, every setting at its default: no
    /// inputs, no outputs. `weir test` runs a lone filter in one.
    pub(super) fn filters_only(&self, filters: Vec<FilterSpec>, cache_dir: PathBuf) -> Config {
        Config {
            cache_dir,
            state_dir: None,
            pipeline: PipelineSettings {
                batch_max_records: DEFAULT_BATCH_MAX_RECORDS,
                queue_capacity: DEFAULT_QUEUE_CAPACITY,
                tick_interval: DEFAULT_TICK_INTERVAL,
                shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
                // A dry run is one thread: one instance of each filter.
                workers: 1,
                stall_timeout: DEFAULT_STALL_TIMEOUT,
            },
            dead_letter_tag: DEFAULT_DEAD_LETTER_TAG.into(),
            admin: None,
            inputs: Vec::new(),
            filters,
            outputs: Vec::new(),
        }
    }

    /// The mappings listed under `section` (`inputs`, `outputs`); none when
    /// it is absent or empty.
    fn items(&self, section: &str, node: Option<Node>) -> Result<Vec<Node>, ConfigError> {
        let Some(node) = node.filter(|n| !n.is_null()) else { return Ok(Vec::new()) };
        let Kind::Seq(items) = node.kind else {
            return Err(self.error(section, "expected a list, each item a mapping with `type:`"));
        };
        for (i, item) in items.iter().enumerate() {
            if !matches!(item.kind, Kind::Map(_)) {
                return Err(self.error(&format!("{section}[{i}]"), "expected a mapping with `type:`"));
            }
        }
        Ok(items)
    }

    fn config(
        &self,
        raw: RawConfig,
        inputs: Vec<Node>,
        outputs: Vec<Node>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let plugin_dir = self.plugin_dir(raw.plugin_dir.as_deref(), env);
        let cache_dir = self.cache_dir(raw.cache_dir.as_deref(), env);
        let pipeline = PipelineSettings {
            batch_max_records: positive(
                self,
                "pipeline.batch_max_records",
                raw.pipeline.batch_max_records,
                DEFAULT_BATCH_MAX_RECORDS,
            )?,
            queue_capacity: positive(
                self,
                "pipeline.queue_capacity",
                raw.pipeline.queue_capacity,
                DEFAULT_QUEUE_CAPACITY,
            )?,
            tick_interval: self.duration(
                "pipeline.tick_interval",
                raw.pipeline.tick_interval.as_deref(),
                DEFAULT_TICK_INTERVAL,
            )?,
            shutdown_timeout: self.duration(
                "pipeline.shutdown_timeout",
                raw.pipeline.shutdown_timeout.as_deref(),
                DEFAULT_SHUTDOWN_TIMEOUT,
            )?,
            workers: positive(self, "pipeline.workers", raw.pipeline.workers, self.default_workers(env)?)?,
            stall_timeout: self.duration(
                "pipeline.stall_timeout",
                raw.pipeline.stall_timeout.as_deref(),
                DEFAULT_STALL_TIMEOUT,
            )?,
        };
        let dead_letter_tag: Arc<str> = raw.dead_letter.tag.as_deref().unwrap_or(DEFAULT_DEAD_LETTER_TAG).into();

        // Names are unique within each section: an input and an output may
        // both be called `file` (metrics label them `input=` and `output=`).
        if inputs.is_empty() {
            return Err(self.error("inputs", "no inputs; expected at least one"));
        }
        if outputs.is_empty() {
            return Err(self.error("outputs", "no outputs; expected at least one"));
        }
        let inputs = inputs
            .into_iter()
            .enumerate()
            .map({
                let mut names = HashSet::new();
                move |(i, body)| self.input(&format!("inputs[{i}]"), body, &mut names)
            })
            .collect::<Result<Vec<_>, _>>()?;
        // One durable buffer per folder: two inputs would share one log.
        let mut buffer_dirs = HashSet::new();
        for (i, input) in inputs.iter().enumerate() {
            if let inputs::InputConfig::Http(http) = &input.config
                && let Some(buffer) = &http.buffer
                && !buffer_dirs.insert(buffer.dir.clone())
            {
                return Err(self.error(
                    &format!("inputs[{i}].buffer.dir"),
                    format!("{} is the buffer of another input; give each input its own folder", buffer.dir.display()),
                ));
            }
        }
        // Keyed state follows one input's partitions: two would mix them.
        let checkpointed: Vec<usize> = (inputs.iter().enumerate())
            .filter(|(_, input)| matches!(&input.config, inputs::InputConfig::Kafka(k) if k.checkpoints.is_some()))
            .map(|(i, _)| i)
            .collect();
        if let [_, second, ..] = checkpointed[..] {
            return Err(self.error(
                &format!("inputs[{second}].checkpoints"),
                "only one input of a pipeline may have checkpoints: the filters' state follows that input's partitions",
            ));
        }
        for &i in &checkpointed {
            if let inputs::InputConfig::Kafka(kafka) = &inputs[i].config
                && let Some(checkpoints) = &kafka.checkpoints
                && let Err((key, message)) = checkpoints.check(&kafka.topics)
            {
                return Err(self.error(&format!("inputs[{i}].checkpoints.{key}"), message));
            }
        }
        let filters = raw
            .filters
            .into_iter()
            .enumerate()
            .map({
                let mut names = HashSet::new();
                let plugin_dir = &plugin_dir;
                move |(i, f)| self.filter(&format!("filters[{i}]"), f, plugin_dir, env, &mut names)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let outputs = outputs
            .into_iter()
            .enumerate()
            .map({
                let mut names = HashSet::new();
                move |(i, body)| self.output(&format!("outputs[{i}]"), body, &mut names)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let admin = match raw.admin {
            None => None,
            Some(admin) => Some(self.admin(admin, &filters)?),
        };

        Ok(Config {
            cache_dir,
            state_dir: raw.state_dir.as_deref().map(|d| self.path(d)),
            pipeline,
            dead_letter_tag,
            admin,
            inputs,
            filters,
            outputs,
        })
    }

    /// `$WEIR_WORKERS` when set (so a test suite can run every config with
    /// one worker), else the number of cores the process may use.
    fn default_workers(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<usize, ConfigError> {
        // Set but empty counts as unset, as for other variables.
        match env("WEIR_WORKERS").filter(|text| !text.trim().is_empty()) {
            Some(text) => match text.trim().parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(self.error(
                    "pipeline.workers",
                    format!("environment variable WEIR_WORKERS={text:?} is not a positive number of workers"),
                )),
            },
            None => Ok(std::thread::available_parallelism().map_or(1, usize::from)),
        }
    }

    fn admin(&self, raw: RawAdmin, filters: &[FilterSpec]) -> Result<AdminSpec, ConfigError> {
        let address = raw.address.parse().map_err(|e| {
            self.error(
                "admin.address",
                format!("invalid address {:?} ({e}); expected e.g. \"127.0.0.1:9600\"", raw.address),
            )
        })?;
        let samples = match raw.samples {
            None => None,
            Some(samples) => {
                if !filters.iter().any(|f| f.name == samples.filter) {
                    let names: Vec<&str> = filters.iter().map(|f| f.name.as_str()).collect();
                    return Err(self.error(
                        "admin.samples.filter",
                        format!("no filter named {:?}; the filters are: {}", samples.filter, names.join(", ")),
                    ));
                }
                if samples.key.is_empty() || samples.key.iter().any(String::is_empty) {
                    return Err(
                        self.error("admin.samples.key", "expected a list of field names, such as [metric, labels]")
                    );
                }
                let matches = match samples.matches {
                    None => TagMatch::new(vec!["*".into()]).expect("\"*\" is a valid glob"),
                    Some(raw) => self.tag_match("admin.samples.match", raw)?,
                };
                let bucket = self.duration("admin.samples.bucket", samples.bucket.as_deref(), DEFAULT_SAMPLE_BUCKET)?;
                if bucket.is_zero() {
                    return Err(self.error("admin.samples.bucket", "must be longer than 0s"));
                }
                Some(SampleSpec { filter: samples.filter, matches, key: samples.key, bucket })
            }
        };
        Ok(AdminSpec { address, token: raw.token, samples })
    }

    fn duration(&self, key: &str, value: Option<&str>, default: Duration) -> Result<Duration, ConfigError> {
        match value {
            None => Ok(default),
            Some(text) => HumanDuration::parse(text).map(|d| d.0).map_err(|m| self.error(key, m)),
        }
    }

    /// Take the `type` and `name` every component has, checking the name is unique.
    fn identity(
        &self,
        key: &str,
        body: &mut Node,
        names: &mut HashSet<String>,
    ) -> Result<(String, String), ConfigError> {
        let kind = match self.text(&format!("{key}.type"), body.remove("type"))? {
            Some(kind) => kind,
            None => return Err(self.error(key, "missing field `type`")),
        };
        let name = self.text(&format!("{key}.name"), body.remove("name"))?.unwrap_or_else(|| kind.clone());
        self.unique_name(key, &name, names)?;
        Ok((kind, name))
    }

    /// A setting that must be a non-empty string, when present.
    fn text(&self, key: &str, node: Option<Node>) -> Result<Option<String>, ConfigError> {
        match node {
            None => Ok(None),
            Some(node) => match String::deserialize(&node) {
                Ok(text) if !text.is_empty() => Ok(Some(text)),
                _ => Err(self.error(key, "expected a non-empty string")),
            },
        }
    }

    /// The setting `key` from an already-parsed YAML value (a `weir test`
    /// file completes its `filter:` before reading it).
    pub(super) fn value<T: for<'de> Deserialize<'de>>(
        &self,
        key: &str,
        value: serde_norway::Value,
    ) -> Result<T, ConfigError> {
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let key = if path == "." { key.to_string() } else { format!("{key}.{path}") };
            let mut message = e.into_inner().to_string();
            if let Some(cut) = message.find(" at line ") {
                message.truncate(cut);
            }
            self.error(&key, message)
        })
    }

    /// Deserialise the setting `key` from `node`.
    pub(super) fn setting<T: for<'de> Deserialize<'de>>(&self, key: &str, node: &Node) -> Result<T, ConfigError> {
        serde_path_to_error::deserialize(node).map_err(|e| self.serde_error(key, e))
    }

    fn unique_name(&self, key: &str, name: &str, names: &mut HashSet<String>) -> Result<(), ConfigError> {
        if !names.insert(name.to_string()) {
            return Err(self.error(key, format!("duplicate name {name:?}; give each one a unique `name:`")));
        }
        Ok(())
    }

    fn input(&self, key: &str, mut body: Node, names: &mut HashSet<String>) -> Result<InputSpec, ConfigError> {
        let (kind, name) = self.identity(key, &mut body, names)?;
        let tag: Arc<str> =
            self.text(&format!("{key}.tag"), body.remove("tag"))?.unwrap_or_else(|| name.clone()).into();
        let config = match inputs::parse_config(&kind, &body) {
            None => {
                return Err(self.error(
                    &format!("{key}.type"),
                    format!("unknown input type {kind:?}; expected one of: {}", inputs::TYPES.join(", ")),
                ));
            }
            Some(parsed) => parsed.map_err(|e| self.serde_error(key, e))?,
        }
        .rebase(&self.base);
        if let inputs::InputConfig::Http(http) = &config
            && let Some(buffer) = &http.buffer
        {
            self.buffer(&format!("{key}.buffer"), buffer, http.ack)?;
        }
        Ok(InputSpec { name, tag, config })
    }

    /// The rules of an input's `buffer:` that serde cannot state.
    fn buffer(&self, key: &str, buffer: &BufferSettings, ack: inputs::AckMode) -> Result<(), ConfigError> {
        if ack != inputs::AckMode::Accepted {
            return Err(self.error(
                key,
                "a durable buffer needs `ack: accepted`: with `ack: delivered` (the default) a client keeps its data until it is delivered",
            ));
        }
        if buffer.dir == self.base {
            return Err(self.error(&format!("{key}.dir"), "give the buffer a folder of its own (it is empty)"));
        }
        if buffer.max_bytes.0 < MIN_BUFFER_BYTES {
            return Err(self.error(
                &format!("{key}.max_bytes"),
                format!("at least {MIN_BUFFER_BYTES} bytes (64KiB): smaller holds hardly a request"),
            ));
        }
        if buffer.fsync_interval.0.is_zero() {
            return Err(self.error(&format!("{key}.fsync_interval"), "must be more than 0s"));
        }
        Ok(())
    }

    fn output(&self, key: &str, mut body: Node, names: &mut HashSet<String>) -> Result<OutputSpec, ConfigError> {
        let (kind, name) = self.identity(key, &mut body, names)?;
        let matches = match body.remove("match") {
            None => return Err(self.error(key, "missing field `match` (a tag glob such as \"*\" or \"mobile.*\")")),
            Some(value) => {
                let raw: RawMatch = self.setting(&format!("{key}.match"), &value)?;
                self.tag_match(&format!("{key}.match"), raw)?
            }
        };
        let batch: RawBatch = match body.remove("batch") {
            None => RawBatch::default(),
            Some(value) => self.setting(&format!("{key}.batch"), &value)?,
        };
        let batch = BatchSettings {
            max_records: positive(
                self,
                &format!("{key}.batch.max_records"),
                batch.max_records,
                DEFAULT_OUTPUT_MAX_RECORDS,
            )?,
            max_wait: self.duration(
                &format!("{key}.batch.max_wait"),
                batch.max_wait.as_deref(),
                DEFAULT_OUTPUT_MAX_WAIT,
            )?,
        };
        let retry: RawRetry = match body.remove("retry") {
            None => RawRetry::default(),
            Some(value) => self.setting(&format!("{key}.retry"), &value)?,
        };
        if retry.max_attempts == Some(0) {
            return Err(
                self.error(&format!("{key}.retry.max_attempts"), "must be at least 1 (omit it to retry forever)")
            );
        }
        let retry = RetrySettings { max_attempts: retry.max_attempts };
        let config = match outputs::parse_config(&kind, &body) {
            None => {
                return Err(self.error(
                    &format!("{key}.type"),
                    format!("unknown output type {kind:?}; expected one of: {}", outputs::TYPES.join(", ")),
                ));
            }
            Some(parsed) => parsed.map_err(|e| self.serde_error(key, e))?,
        }
        .rebase(&self.base);
        Ok(OutputSpec { name, matches, batch, retry, config })
    }

    fn tag_match(&self, key: &str, raw: RawMatch) -> Result<TagMatch, ConfigError> {
        let globs = match raw {
            RawMatch::One(glob) => vec![glob],
            RawMatch::Any(globs) => globs,
        };
        TagMatch::new(globs).map_err(|m| self.error(key, m))
    }

    /// One entry of `filters:` (or a test's `filter:`), at `key`.
    pub(super) fn filter(
        &self,
        key: &str,
        raw: RawFilter,
        plugin_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
        names: &mut HashSet<String>,
    ) -> Result<FilterSpec, ConfigError> {
        let name = raw.name.clone().unwrap_or_else(|| raw.kind.clone());
        self.unique_name(key, &name, names)?;
        let wasm = match &raw.path {
            Some(path) => self.path(path),
            None => plugin_dir.join(format!("{}.wasm", raw.kind)),
        };
        if !wasm.is_file() {
            let hint = if raw.path.is_some() {
                String::new()
            } else {
                format!(
                    " (filters of `type: {kind}` load {kind}.wasm from plugin_dir {dir}; build the bundled plugins with `just plugins`, or set `path:`)",
                    kind = raw.kind,
                    dir = plugin_dir.display()
                )
            };
            let at = if raw.path.is_some() { format!("{key}.path") } else { format!("{key}.type") };
            return Err(self.error(&at, format!("plugin file {} not found{hint}", wasm.display())));
        }
        let abi = self.abi(key, &raw)?;
        let matches = self.tag_match(&format!("{key}.match"), raw.matches)?;
        if matches!(abi, Abi::FluentBit { .. }) && raw.config.is_some() {
            return Err(self.error(
                &format!("{key}.config"),
                "a fluent-bit module takes no config: its ABI has none (use `grants` for environment variables and folders)",
            ));
        }
        let config = match raw.config {
            None => serde_json::Value::Object(Default::default()),
            Some(value @ serde_json::Value::Object(_)) => value,
            Some(_) => return Err(self.error(&format!("{key}.config"), "expected a mapping")),
        };
        let partition_by = match raw.partition_by {
            None => None,
            Some(paths) => Some(
                paths
                    .iter()
                    .enumerate()
                    .map(|(i, path)| {
                        FieldPath::parse(path).map_err(|m| self.error(&format!("{key}.partition_by[{i}]"), m))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        Ok(FilterSpec {
            name,
            wasm,
            abi,
            matches,
            config,
            partition_by,
            limits: self.limits(&format!("{key}.limits"), &raw.limits)?,
            grants: self.grants(raw.grants, env),
            dedupe: self.dedupe(&format!("{key}.dedupe"), raw.dedupe)?,
        })
    }

    fn dedupe(&self, key: &str, raw: Option<RawDedupe>) -> Result<Option<DedupeSettings>, ConfigError> {
        let capacity = match raw {
            None | Some(RawDedupe::On(false)) => return Ok(None),
            Some(RawDedupe::On(true)) => None,
            Some(RawDedupe::With(settings)) => settings.capacity,
        };
        let capacity = positive(self, &format!("{key}.capacity"), capacity, DEFAULT_DEDUPE_CAPACITY)?;
        Ok(Some(DedupeSettings { capacity }))
    }

    /// `abi:` with its `function:` and `event_format:`.
    fn abi(&self, key: &str, raw: &RawFilter) -> Result<Abi, ConfigError> {
        match raw.abi.as_deref() {
            None | Some("component") => {
                for (field, value) in [("function", &raw.function), ("event_format", &raw.event_format)] {
                    if value.is_some() {
                        return Err(
                            self.error(&format!("{key}.{field}"), "only a filter with `abi: fluent-bit` takes this")
                        );
                    }
                }
                Ok(Abi::Component)
            }
            Some("fluent-bit") => {
                let Some(function) = raw.function.clone().filter(|f| !f.is_empty()) else {
                    return Err(self.error(
                        &format!("{key}.function"),
                        "`abi: fluent-bit` needs the exported function to call (Fluent Bit's Function_Name)",
                    ));
                };
                let format = match raw.event_format.as_deref() {
                    None | Some("json") => EventFormat::Json,
                    Some("msgpack") => EventFormat::Msgpack,
                    Some(other) => {
                        return Err(self.error(
                            &format!("{key}.event_format"),
                            format!("unknown event format {other:?}; expected json or msgpack"),
                        ));
                    }
                };
                Ok(Abi::FluentBit { function, format })
            }
            Some(other) => {
                Err(self
                    .error(&format!("{key}.abi"), format!("unknown abi {other:?}; expected component or fluent-bit")))
            }
        }
    }

    fn limits(&self, key: &str, raw: &RawLimits) -> Result<Limits, ConfigError> {
        let defaults = Limits::default();
        let deadline = self.duration(&format!("{key}.deadline"), raw.deadline.as_deref(), defaults.deadline)?;
        if deadline.is_zero() {
            return Err(self.error(&format!("{key}.deadline"), "must be greater than zero"));
        }
        let memory = match &raw.memory {
            None => defaults.memory,
            Some(text) => ByteSize::parse(text).map_err(|m| self.error(&format!("{key}.memory"), m))?.0,
        };
        Ok(Limits { deadline, memory })
    }

    fn grants(&self, raw: RawGrants, env: &dyn Fn(&str) -> Option<String>) -> Grants {
        Grants {
            env: raw.env.into_iter().filter_map(|name| env(&name).map(|v| (name, v))).collect(),
            dirs: raw
                .dirs
                .into_iter()
                .map(|d| DirGrant { host: self.path(&d.host), guest: d.guest, writable: d.writable })
                .collect(),
            wall_clock: raw.wall_clock,
            network: raw.network,
        }
    }
}

fn positive(r: &Resolver, key: &str, value: Option<usize>, default: usize) -> Result<usize, ConfigError> {
    match value {
        Some(0) => Err(r.error(key, "must be at least 1")),
        Some(n) => Ok(n),
        None => Ok(default),
    }
}

fn default_cache_dir(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(dir) = env("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("weir");
    }
    match env("HOME") {
        Some(home) => PathBuf::from(home).join(".cache").join("weir"),
        None => std::env::temp_dir().join("weir-cache"),
    }
}
