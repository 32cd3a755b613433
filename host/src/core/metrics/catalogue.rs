//! Every metric Weir exposes, in one table: name, type, labels and help.
//! Components take their handles from the registry with one of these
//! definitions, so a name or a help text lives here and nowhere else; the
//! README's metrics table, the Grafana dashboard under `deploy/grafana/`
//! and their tests are checked against [`ALL`].
//!
//! Names follow Prometheus conventions: `weir_<area>_<thing>`, counters end
//! in `_total`, durations are histograms in `_seconds`, sizes in base units
//! (`_bytes`, `_batches`, `_messages`). Label values are bounded: component
//! names from the config, stages, and small fixed sets of reasons.

/// The kind of a metric, as in the exposition format's `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (resets when the process restarts).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations counted into fixed buckets (seconds), with sum and count.
    Histogram,
}

impl Kind {
    /// As written after `# TYPE name`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One metric family.
#[derive(Debug, PartialEq, Eq)]
pub struct Metric {
    /// The family name.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// Label names; handles are taken with values in this order.
    pub labels: &'static [&'static str],
    /// The `# HELP` text: what one unit is and when it moves.
    pub help: &'static str,
}

const fn counter(name: &'static str, labels: &'static [&'static str], help: &'static str) -> Metric {
    Metric { name, kind: Kind::Counter, labels, help }
}

const fn gauge(name: &'static str, labels: &'static [&'static str], help: &'static str) -> Metric {
    Metric { name, kind: Kind::Gauge, labels, help }
}

const fn histogram(name: &'static str, labels: &'static [&'static str], help: &'static str) -> Metric {
    Metric { name, kind: Kind::Histogram, labels, help }
}

// Inputs.

/// Records an input put on the pipeline's input queue.
pub const INPUT_RECORDS: Metric =
    counter("weir_input_records_total", &["input"], "Records an input accepted into the pipeline.");
/// Units an input could not turn into records (not JSON, not an object, a
/// line over `max_line_bytes`); `reason` is always `malformed` today.
pub const INPUT_DEAD_LETTERS: Metric = counter(
    "weir_input_dead_letters_total",
    &["input", "reason"],
    "Input units an input could not read as records, sent to dead letter, by reason.",
);
/// Frames the `forward` input could not read.
pub const INPUT_BAD_FRAMES: Metric =
    counter("weir_input_bad_frames_total", &["input"], "Frames an input could not read; each closed its connection.");
/// How long each send of an input waited for room in the input queue.
pub const INPUT_SEND_WAIT: Metric = histogram(
    "weir_input_send_wait_seconds",
    &["input"],
    "Seconds each send of an input waited for room in the pipeline's input queue (backpressure).",
);
/// HTTP requests an `http` input is handling, including those waiting for
/// delivery (`ack: delivered`).
pub const INPUT_REQUESTS_IN_FLIGHT: Metric = gauge(
    "weir_input_requests_in_flight",
    &["input"],
    "HTTP requests an http input is handling, including those waiting for delivery.",
);
/// HTTP requests an `http` input refused, by the reason of its answer.
pub const INPUT_REQUESTS_REFUSED: Metric = counter(
    "weir_input_requests_refused_total",
    &["input", "reason"],
    "HTTP requests an http input answered with an error status, by reason (a short fixed name per refusal).",
);
/// Connections an `http` input closed, or lost, before answering them.
pub const INPUT_CONNECTIONS_CLOSED: Metric = counter(
    "weir_input_connections_closed_total",
    &["input", "reason"],
    "Connections an http input closed or lost without a normal answer, by reason: header_timeout, idle_timeout, max_connections, client_gone.",
);
/// Connections an `http` input holds open.
pub const INPUT_CONNECTIONS: Metric =
    gauge("weir_input_connections", &["input"], "Connections an http input holds open (at most max_connections).");
/// Bytes an input's durable buffer holds on disk.
pub const BUFFER_BYTES: Metric = gauge(
    "weir_buffer_bytes",
    &["input"],
    "Bytes an input's durable buffer (buffer:) holds on disk, acknowledged units included until their segment is deleted.",
);
/// Units (requests) in an input's durable buffer not yet acknowledged.
pub const BUFFER_UNITS: Metric = gauge(
    "weir_buffer_units",
    &["input"],
    "Requests in an input's durable buffer not yet delivered (or dead-lettered).",
);
/// Units sent again at start.
pub const BUFFER_REPLAYED: Metric = counter(
    "weir_buffer_replayed_total",
    &["input"],
    "Requests an input's durable buffer sent again at start because they were not known to be delivered.",
);
/// Damage cut off a durable buffer.
pub const BUFFER_TRUNCATED: Metric = counter(
    "weir_buffer_truncated_total",
    &["input", "reason"],
    "Segments of an input's durable buffer cut short at damage, by reason: torn (a crash mid-write) or corrupt (a CRC mismatch).",
);
/// Kafka consumer lag per assigned partition, from librdkafka statistics.
pub const KAFKA_CONSUMER_LAG: Metric = gauge(
    "weir_kafka_consumer_lag_messages",
    &["input", "topic", "partition"],
    "Messages between a partition's high watermark and the input's committed offset (delivered and committed), per assigned partition.",
);
/// Checkpoints of a `kafka` input's `checkpoints:`, by outcome: `written`,
/// `skipped` (what the filters emitted was not delivered in time, or the
/// chain did not answer), `failed` (the write failed).
pub const CHECKPOINTS: Metric = counter(
    "weir_checkpoints_total",
    &["input", "outcome"],
    "Checkpoints of the partitions' filter state, by outcome: written, skipped (emitted records not yet delivered, or no barrier), failed (the write failed).",
);
/// Size of the newest checkpoint written.
pub const CHECKPOINT_BYTES: Metric = gauge(
    "weir_checkpoint_bytes",
    &["input"],
    "Bytes of filter state (snapshots and dedupe sets, every partition and filter) in the newest checkpoint written.",
);
/// Barrier to durable write.
pub const CHECKPOINT_DURATION: Metric = histogram(
    "weir_checkpoint_duration_seconds",
    &["input"],
    "Seconds from a checkpoint's barrier to its write being acknowledged, including the wait for the delivery of what the filters emitted before it.",
);
/// How far a crash now would send the partitions back.
pub const CHECKPOINT_LAG: Metric = gauge(
    "weir_checkpoint_lag_seconds",
    &["input"],
    "Seconds since the barrier of the newest checkpoint written: how much input a crash now would replay (0 before the first).",
);
/// Reading state on assignment.
pub const CHECKPOINT_RESTORE: Metric = histogram(
    "weir_checkpoint_restore_seconds",
    &["input"],
    "Seconds to read the checkpoints of newly assigned partitions and hand them to the filters, per assignment.",
);
/// States restored.
pub const CHECKPOINT_RESTORED: Metric = counter(
    "weir_checkpoint_restored_total",
    &["input"],
    "Filter states restored from checkpoints (one per filter and partition) on assignment.",
);

// Queues and the pipeline as a whole.

/// Batches queued in front of the filter chain.
pub const CHAIN_QUEUE: Metric = gauge(
    "weir_chain_queue_batches",
    &[],
    "Batches waiting in the queue every input sends to, in front of the filter chain.",
);
/// Batches queued in front of each output.
pub const OUTPUT_QUEUE: Metric =
    gauge("weir_output_queue_batches", &["output"], "Batches waiting in an output's queue.");
/// The capacity of every queue.
pub const QUEUE_CAPACITY: Metric = gauge(
    "weir_queue_capacity_batches",
    &[],
    "Capacity of each queue between stages, in batches (pipeline.queue_capacity).",
);
/// 1 while `/health` reports a stall.
pub const PIPELINE_STALLED: Metric = gauge(
    "weir_pipeline_stalled",
    &[],
    "1 while a queue has been full with nothing taken from it for pipeline.stall_timeout (what /health reports), else 0.",
);
/// Records given up: at shutdown, dead letters nothing could take, or
/// dropped by a filter's own policy.
pub const RECORDS_DROPPED: Metric = counter(
    "weir_records_dropped_total",
    &["stage", "reason"],
    "Records neither delivered nor dead-lettered, by the stage that gave them up and why.",
);
/// Records no output selected.
pub const RECORDS_UNROUTED: Metric =
    counter("weir_records_unrouted_total", &[], "Records no output matched, sent to dead letter.");
/// From entering the pipeline to delivery, per delivered batch.
pub const PIPELINE_LATENCY: Metric = histogram(
    "weir_pipeline_latency_seconds",
    &["output"],
    "Per batch an output delivered: seconds from its oldest record entering the pipeline (queued by its input, or emitted by a filter without a parent) to the end of the write that delivered it.",
);
/// Reloads by outcome.
pub const RELOADS: Metric = counter("weir_reloads_total", &["result"], "Reloads applied or refused.");

// Filters.

/// Records handed to a filter.
pub const FILTER_RECORDS_IN: Metric =
    counter("weir_filter_records_in_total", &["filter"], "Records given to a filter.");
/// Records a filter emitted (from `process` and `tick`).
pub const FILTER_RECORDS_OUT: Metric =
    counter("weir_filter_records_out_total", &["filter"], "Records a filter emitted.");
/// Records a filter rejected (`rejected`) or a failed call took to dead
/// letter (the call's error kind).
pub const FILTER_DEAD_LETTERS: Metric = counter(
    "weir_filter_dead_letters_total",
    &["filter", "reason"],
    "Records a filter rejected or failed on, sent to dead letter, by reason (rejected, or the failed call's error kind).",
);
/// Failed calls by kind.
pub const FILTER_ERRORS: Metric =
    counter("weir_filter_errors_total", &["filter", "kind"], "Filter calls that failed, by kind.");
/// Instances recreated after a poisoning failure.
pub const FILTER_RESTARTS: Metric = counter(
    "weir_filter_restarts_total",
    &["filter"],
    "Filter instances recreated after a trap, deadline or memory cap.",
);
/// Records a filter with `dedupe` was not given because it was given them
/// before (retries, replays).
pub const FILTER_REPEATS: Metric = counter(
    "weir_filter_repeats_total",
    &["filter"],
    "Records not given to a filter with dedupe because it was given them before (retries, replays).",
);
/// Time spent inside the plugin, per call.
pub const FILTER_CALL: Metric = histogram(
    "weir_filter_call_seconds",
    &["filter", "call"],
    "Seconds per call into a filter plugin (process, tick, configure, snapshot, restore), limits included.",
);
/// Counters plugins report with `counter-add`.
pub const FILTER_EVENTS: Metric =
    counter("weir_filter_events_total", &["filter", "counter"], "Counters reported by filter plugins.");

// Outputs.

/// Records the Elasticsearch output found outside `max_future`/`max_past`.
pub const ELASTICSEARCH_OUT_OF_RANGE: Metric = counter(
    "weir_elasticsearch_out_of_range_total",
    &["output"],
    "Records whose event time was outside max_future/max_past of the host clock (dead-lettered, or indexed by the host clock).",
);
/// Records an output delivered.
pub const OUTPUT_RECORDS: Metric = counter("weir_output_records_total", &["output"], "Records an output delivered.");
/// Records an output took to dead letter, by reason.
pub const OUTPUT_DEAD_LETTERS: Metric = counter(
    "weir_output_dead_letters_total",
    &["output", "reason"],
    "Records an output sent to dead letter, by reason: rejected (refused by the destination, or given up by the output itself), retries_exhausted (retry.max_attempts), shutdown (shutdown_timeout).",
);
/// Write attempts retried.
pub const OUTPUT_RETRIES: Metric =
    counter("weir_output_retries_total", &["output"], "Write attempts an output retried.");
/// Time of each write attempt.
pub const OUTPUT_WRITE: Metric = histogram(
    "weir_output_write_seconds",
    &["output"],
    "Seconds per write attempt of an output (one batch, one call to the destination), failed attempts included.",
);
/// Alerts being re-sent.
pub const ALERTMANAGER_ACTIVE: Metric =
    gauge("weir_alertmanager_active_alerts", &["output"], "Firing alerts an alertmanager output re-sends.");
/// Re-sends.
pub const ALERTMANAGER_RESENDS: Metric =
    counter("weir_alertmanager_resends_total", &["output"], "Alerts re-sent to keep them active.");
/// Re-sends an Alertmanager did not take.
pub const ALERTMANAGER_RESEND_FAILURES: Metric = counter(
    "weir_alertmanager_resend_failures_total",
    &["output"],
    "Resend posts that an alertmanager did not accept (best-effort, not dead-lettered).",
);
/// Batches only some Alertmanagers took.
pub const ALERTMANAGER_PARTIAL: Metric = counter(
    "weir_alertmanager_partial_deliveries_total",
    &["output"],
    "Batches some but not all alertmanagers accepted.",
);

/// Every metric, in the order of the README's table.
pub const ALL: &[&Metric] = &[
    &INPUT_RECORDS,
    &INPUT_DEAD_LETTERS,
    &INPUT_BAD_FRAMES,
    &INPUT_SEND_WAIT,
    &INPUT_REQUESTS_IN_FLIGHT,
    &INPUT_REQUESTS_REFUSED,
    &INPUT_CONNECTIONS_CLOSED,
    &INPUT_CONNECTIONS,
    &BUFFER_BYTES,
    &BUFFER_UNITS,
    &BUFFER_REPLAYED,
    &BUFFER_TRUNCATED,
    &KAFKA_CONSUMER_LAG,
    &CHECKPOINTS,
    &CHECKPOINT_BYTES,
    &CHECKPOINT_DURATION,
    &CHECKPOINT_LAG,
    &CHECKPOINT_RESTORE,
    &CHECKPOINT_RESTORED,
    &CHAIN_QUEUE,
    &OUTPUT_QUEUE,
    &QUEUE_CAPACITY,
    &PIPELINE_STALLED,
    &RECORDS_DROPPED,
    &RECORDS_UNROUTED,
    &PIPELINE_LATENCY,
    &RELOADS,
    &FILTER_RECORDS_IN,
    &FILTER_RECORDS_OUT,
    &FILTER_DEAD_LETTERS,
    &FILTER_ERRORS,
    &FILTER_RESTARTS,
    &FILTER_REPEATS,
    &FILTER_CALL,
    &FILTER_EVENTS,
    &OUTPUT_RECORDS,
    &OUTPUT_DEAD_LETTERS,
    &OUTPUT_RETRIES,
    &OUTPUT_WRITE,
    &ELASTICSEARCH_OUT_OF_RANGE,
    &ALERTMANAGER_ACTIVE,
    &ALERTMANAGER_RESENDS,
    &ALERTMANAGER_RESEND_FAILURES,
    &ALERTMANAGER_PARTIAL,
];

/// The family a sample name belongs to: a histogram's `_bucket`, `_sum` and
/// `_count` series name their family without the suffix.
pub fn family_of(sample: &str) -> Option<&'static Metric> {
    ALL.iter().copied().find(|m| {
        sample == m.name
            || (m.kind == Kind::Histogram
                && ["_bucket", "_sum", "_count"].iter().any(|s| sample.strip_suffix(s) == Some(m.name)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        let mut seen = std::collections::HashSet::new();
        for m in ALL {
            assert!(seen.insert(m.name), "{} listed twice", m.name);
            assert!(m.name.starts_with("weir_"), "{}", m.name);
            assert!(m.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "{}", m.name);
            match m.kind {
                Kind::Counter => assert!(m.name.ends_with("_total"), "a counter ends in _total: {}", m.name),
                Kind::Histogram => assert!(m.name.ends_with("_seconds"), "durations are in seconds: {}", m.name),
                Kind::Gauge => assert!(!m.name.ends_with("_total"), "a gauge is no total: {}", m.name),
            }
            assert!(!m.help.is_empty() && !m.help.contains('\n'), "{}", m.name);
            for label in m.labels {
                assert!(*label != "le" && !label.starts_with("__"), "{}: reserved label {label}", m.name);
            }
        }
    }

    #[test]
    fn histogram_series_name_their_family() {
        assert_eq!(family_of("weir_output_write_seconds_bucket"), Some(&OUTPUT_WRITE));
        assert_eq!(family_of("weir_output_write_seconds_count"), Some(&OUTPUT_WRITE));
        assert_eq!(family_of("weir_output_records_total"), Some(&OUTPUT_RECORDS));
        assert_eq!(family_of("weir_output_records_total_count"), None);
        assert_eq!(family_of("weir_nothing"), None);
    }
}
