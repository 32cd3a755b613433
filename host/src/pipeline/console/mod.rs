//! The pipeline's side of the console ([`crate::admin::api`]): what the
//! running pipeline shows (components, settings, counters, queue depths),
//! the taps' bounded copies of what flows ([`taps`], [`samples`]), and
//! test runs of a configured filter on pasted records.
//!
//! A test run builds a fresh instance of the filter's plugin (with the
//! given config block or its own) off the chain, on the caller's thread,
//! so it never touches the running instance, its state or its batches.
//! It is named `console-test:<filter>`, so the counters it bumps are its
//! own series, apart from the running filter's. The host knows no filter
//! here either: the console page knows what `extract` emits.
//!
//! The taps exist only while the admin server does (`admin:` set).

pub mod samples;
pub mod taps;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::admin::api::{
    ApiError, Console, Sample, StreamEvent, TestOutcome, TestRecord, TestRequest, TestResult, WindowQuery,
};
use crate::config::{Config, OutputSpec};
use crate::core::clock::{Clock, parse_rfc3339};
use crate::core::metrics::catalogue::{
    FILTER_DEAD_LETTERS, FILTER_RECORDS_IN, FILTER_RECORDS_OUT, FILTER_RESTARTS, INPUT_DEAD_LETTERS, INPUT_RECORDS,
    Metric, OUTPUT_DEAD_LETTERS, OUTPUT_RECORDS, OUTPUT_RETRIES, RECORDS_UNROUTED,
};
use crate::core::metrics::registry;
use crate::core::record::{Batch, Record};
use crate::outputs::OutputConfig;
use crate::plugin::{FilterInstance, PluginEngine, PluginError, PluginErrorKind};
use taps::Taps;

/// Tag of a test record that names none.
const DEFAULT_TEST_TAG: &str = "console.test";
/// Most window samples one query returns.
const MAX_WINDOW_SAMPLES: usize = 100;

/// What the pipeline shows the console: set on start and after each
/// applied reload.
struct View {
    config: Config,
    digests: HashMap<String, Option<String>>,
    /// Queue 1 (inputs to the chain), held weakly so the console never
    /// keeps a queue open at shutdown.
    input_queue: Option<mpsc::WeakSender<Batch>>,
    output_queues: HashMap<String, mpsc::WeakSender<Batch>>,
}

/// The console of one running pipeline.
pub struct PipelineConsole {
    taps: Arc<Taps>,
    engine: PluginEngine,
    clock: Clock,
    view: RwLock<View>,
}

impl PipelineConsole {
    /// A console over `config`, reading `taps`.
    pub fn new(config: &Config, engine: PluginEngine, clock: Clock, taps: Arc<Taps>) -> Self {
        let view =
            View { config: config.clone(), digests: HashMap::new(), input_queue: None, output_queues: HashMap::new() };
        PipelineConsole { taps, engine, clock, view: RwLock::new(view) }
    }

    /// Show `config` as running, with its plugin digests and queues.
    pub fn set_running(
        &self,
        config: &Config,
        digests: &HashMap<String, Option<String>>,
        input_queue: &mpsc::Sender<Batch>,
        output_queues: &HashMap<String, mpsc::Sender<Batch>>,
    ) {
        let mut view = self.view.write().unwrap_or_else(|p| p.into_inner());
        view.config = config.clone();
        view.digests = digests.clone();
        view.input_queue = Some(input_queue.downgrade());
        view.output_queues = output_queues.iter().map(|(name, tx)| (name.clone(), tx.downgrade())).collect();
    }

    /// The taps the chain, router and dead-letter route write to.
    pub fn taps(&self) -> Arc<Taps> {
        self.taps.clone()
    }

    fn view(&self) -> std::sync::RwLockReadGuard<'_, View> {
        self.view.read().unwrap_or_else(|p| p.into_inner())
    }
}

/// `{"depth", "capacity"}` of a queue, in batches; depth 0 once it closed.
fn queue(sender: Option<&mpsc::WeakSender<Batch>>, capacity: usize) -> Value {
    let depth = sender.and_then(mpsc::WeakSender::upgrade).map_or(0, |tx| tx.max_capacity() - tx.capacity());
    json!({ "depth": depth, "capacity": capacity })
}

/// `{key: value}` of the counters `metrics` (`(key, metric)`) of one
/// component, labelled `label=value`, each summed over its other labels.
fn counters(label: &str, value: &str, metrics: &[(&str, &'static Metric)]) -> Value {
    let read = |metric: &'static Metric| json!(registry().counter_sum(metric, &[(label, value)]));
    Value::Object(metrics.iter().map(|(key, metric)| ((*key).to_string(), read(metric))).collect())
}

fn input_counters(name: &str) -> Value {
    counters("input", name, &[("records", &INPUT_RECORDS), ("dead_letters", &INPUT_DEAD_LETTERS)])
}

fn filter_counters(name: &str) -> Value {
    counters(
        "filter",
        name,
        &[
            ("in", &FILTER_RECORDS_IN),
            ("out", &FILTER_RECORDS_OUT),
            ("dead_letters", &FILTER_DEAD_LETTERS),
            ("restarts", &FILTER_RESTARTS),
        ],
    )
}

fn output_counters(name: &str) -> Value {
    counters(
        "output",
        name,
        &[("records", &OUTPUT_RECORDS), ("retries", &OUTPUT_RETRIES), ("dead_letters", &OUTPUT_DEAD_LETTERS)],
    )
}

/// Settings of an output the console links to; the rest stays private
/// (credentials among them).
fn output_links(spec: &OutputSpec) -> Value {
    match &spec.config {
        OutputConfig::Elasticsearch(es) => json!({
            "elasticsearch": {
                "hosts": es.hosts.iter().map(|h| h.0.as_str().trim_end_matches('/').to_string()).collect::<Vec<_>>(),
                "index": es.index.source(),
            }
        }),
        _ => json!({}),
    }
}

fn plugin_error(error: PluginError) -> ApiError {
    let message = error.to_string();
    let mut detail = json!({ "kind": error.kind(), "plugin": error.plugin, "message": message });
    if let PluginErrorKind::Configure { field, message } = error.kind {
        detail["kind"] = json!("config");
        detail["field"] = json!(field);
        detail["message"] = json!(message);
    }
    ApiError::Plugin(detail)
}

impl Console for PipelineConsole {
    fn pipeline(&self) -> Value {
        let view = self.view();
        let config = &view.config;
        let capacity = config.pipeline.queue_capacity;
        let inputs: Vec<Value> = config
            .inputs
            .iter()
            .map(|i| json!({ "name": i.name, "type": i.config.kind(), "tag": &*i.tag, "counters": input_counters(&i.name) }))
            .collect();
        let filters: Vec<Value> = config
            .filters
            .iter()
            .map(|f| {
                json!({
                    "name": f.name,
                    "plugin": f.wasm.display().to_string(),
                    "digest": view.digests.get(&f.name).cloned().flatten(),
                    "match": f.matches.globs(),
                    "limits": { "deadline_ms": f.limits.deadline.as_millis() as u64, "memory_bytes": f.limits.memory },
                    "grants": {
                        "env": f.grants.env.iter().map(|(name, _)| name).collect::<Vec<_>>(),
                        "dirs": f.grants.dirs.iter().map(|d| json!({ "host": d.host.display().to_string(), "guest": d.guest, "writable": d.writable })).collect::<Vec<_>>(),
                        "wall_clock": f.grants.wall_clock,
                        "network": f.grants.network,
                    },
                    "config": f.config,
                    "counters": filter_counters(&f.name),
                })
            })
            .collect();
        let outputs: Vec<Value> = config
            .outputs
            .iter()
            .map(|o| {
                let mut out = json!({
                    "name": o.name,
                    "type": o.config.kind(),
                    "match": o.matches.globs(),
                    "batch": { "max_records": o.batch.max_records, "max_wait_ms": o.batch.max_wait.as_millis() as u64 },
                    "retry": { "max_attempts": o.retry.max_attempts },
                    "counters": output_counters(&o.name),
                    "queue": queue(view.output_queues.get(&o.name), capacity),
                });
                if let (Value::Object(out), Value::Object(links)) = (&mut out, output_links(o)) {
                    out.extend(links);
                }
                out
            })
            .collect();
        let samples = config.admin.as_ref().and_then(|a| a.samples.as_ref()).map(|s| {
            json!({ "filter": s.filter, "match": s.matches.globs(), "key": s.key, "bucket_ms": s.bucket.as_millis() as u64 })
        });
        json!({
            "inputs": inputs,
            "filters": filters,
            "outputs": outputs,
            "queue": queue(view.input_queue.as_ref(), capacity),
            "unrouted": registry().counter_sum(&RECORDS_UNROUTED, &[]),
            "dead_letter_tag": &*config.dead_letter_tag,
            "samples": samples,
        })
    }

    fn stats(&self) -> Value {
        let view = self.view();
        let config = &view.config;
        let capacity = config.pipeline.queue_capacity;
        let by_name = |names: Vec<(String, Value)>| Value::Object(names.into_iter().collect());
        json!({
            "inputs": by_name(config.inputs.iter().map(|i| (i.name.clone(), input_counters(&i.name))).collect()),
            "filters": by_name(config.filters.iter().map(|f| (f.name.clone(), filter_counters(&f.name))).collect()),
            "outputs": by_name(config.outputs.iter().map(|o| {
                let mut counters = output_counters(&o.name);
                counters["queue"] = queue(view.output_queues.get(&o.name), capacity);
                (o.name.clone(), counters)
            }).collect()),
            "queue": queue(view.input_queue.as_ref(), capacity),
            "unrouted": registry().counter_sum(&RECORDS_UNROUTED, &[]),
        })
    }

    fn filter_samples(&self, filter: &str, limit: usize) -> Result<Vec<Sample>, ApiError> {
        self.known_filter(filter)?;
        Ok(self.taps.inputs(filter, limit).unwrap_or_default())
    }

    fn test_filter(&self, filter: &str, request: TestRequest) -> Result<TestOutcome, ApiError> {
        let spec = self.view().config.filters.iter().find(|f| f.name == filter).cloned();
        let mut spec = spec.ok_or_else(|| self.unknown(filter))?;
        spec.name = format!("console-test:{filter}");
        if let Some(config) = request.config {
            if !config.is_object() {
                return Err(ApiError::BadRequest("config: expected a JSON object (the filter's config block)".into()));
            }
            spec.config = config;
        }
        let now = self.clock.now();
        let records = request
            .records
            .into_iter()
            .enumerate()
            .map(|(i, TestRecord { body, tag, time })| {
                let time = match time {
                    None => now,
                    Some(text) => {
                        parse_rfc3339(&text).map_err(|e| ApiError::BadRequest(format!("records[{i}].time: {e}")))?
                    }
                };
                let body = serde_json::to_vec(&body).expect("a JSON map serialises");
                let tag = tag.unwrap_or_else(|| DEFAULT_TEST_TAG.into());
                Ok(Record { time, tag: tag.into(), body: Bytes::from(body), origin: None, ack: None, arrival: None })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        let started = Instant::now();
        let mut instance = FilterInstance::new(&self.engine, &spec, self.clock.clone()).map_err(plugin_error)?;
        let processed = instance.process(&records).map_err(plugin_error)?;
        let took_ms = started.elapsed().as_secs_f64() * 1000.0;
        let mut results: Vec<TestResult> = records.iter().map(|_| TestResult::default()).collect();
        let mut aggregates = Vec::new();
        for (record, parent) in processed.emitted.into_iter().zip(processed.parents) {
            let sample = Sample { time: record.time, tag: record.tag, body: record.body };
            match parent {
                Some(p) => results[p].emitted.push(sample),
                None => aggregates.push(sample),
            }
        }
        for (index, reason) in processed.rejected {
            results[index].rejected = Some(reason);
        }
        Ok(TestOutcome { filter: filter.to_string(), results, aggregates, took_ms })
    }

    fn records(&self, tags: &[&str], limit: usize) -> Value {
        let kept: Vec<Value> =
            self.taps.tags().into_iter().map(|(tag, count)| json!({ "tag": tag, "records": count })).collect();
        json!({ "records": self.taps.records(tags, limit), "tags": kept })
    }

    fn window_samples(&self, query: &WindowQuery) -> Result<Value, ApiError> {
        let Some((spec, store)) = self.taps.samples() else {
            return Err(ApiError::NotFound("window samples are off; set admin.samples in the config".into()));
        };
        let from = parse_rfc3339(&query.from).map_err(|e| ApiError::BadRequest(format!("from: {e}")))?;
        let to = parse_rfc3339(&query.to).map_err(|e| ApiError::BadRequest(format!("to: {e}")))?;
        let limit = query.limit.unwrap_or(20).min(MAX_WINDOW_SAMPLES);
        let mut answer = store
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .query(&query.key, from, to, limit)
            .map_err(ApiError::BadRequest)?;
        answer["filter"] = json!(spec.filter);
        answer["from"] = json!(query.from);
        answer["to"] = json!(query.to);
        Ok(answer)
    }

    fn dead_letters(&self, limit: usize) -> Vec<Sample> {
        self.taps.last_dead_letters(limit)
    }

    fn subscribe(&self) -> broadcast::Receiver<StreamEvent> {
        self.taps.subscribe()
    }
}

impl PipelineConsole {
    fn unknown(&self, filter: &str) -> ApiError {
        let names: Vec<String> = self.view().config.filters.iter().map(|f| f.name.clone()).collect();
        ApiError::NotFound(format!("no filter named {filter:?}; the filters are: {}", names.join(", ")))
    }

    fn known_filter(&self, filter: &str) -> Result<(), ApiError> {
        let known = self.view().config.filters.iter().any(|f| f.name == filter);
        if known { Ok(()) } else { Err(self.unknown(filter)) }
    }
}
