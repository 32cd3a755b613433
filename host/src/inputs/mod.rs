//! Inputs: where records enter. Each input lives in its own folder, opens
//! with its `…Config` struct, and implements the small [`Input`] trait. The
//! pipeline hands it an [`InputContext`] to send batches through; sending
//! waits when the pipeline is full, which is how backpressure reaches the
//! source.

pub mod buffer;
pub mod file;
pub mod forward;
pub mod http;
pub mod kafka;
mod lines;
pub mod otlp;
pub mod stdin;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::core::clock::Clock;
use crate::core::dead_letter::DeadLetter;
use crate::core::metrics::catalogue::{INPUT_DEAD_LETTERS, INPUT_RECORDS, INPUT_SEND_WAIT};
use crate::core::metrics::{Counter, Histogram, registry};
use crate::core::record::{Arrival, Batch};

/// When an input that can tell its sender answers "taken": the `ack:`
/// setting of the `http`, `forward` and `otlp` inputs.
pub use http::AckMode;

/// The input types this build knows, as written in `type:`.
pub const TYPES: &[&str] = &["stdin", "file", "kafka", "http", "forward", "otlp"];

/// The settings of one input, by type.
#[derive(Debug, Clone, PartialEq)]
pub enum InputConfig {
    /// `type: stdin`
    Stdin(stdin::StdinInputConfig),
    /// `type: file`
    File(file::FileInputConfig),
    /// `type: kafka`
    Kafka(kafka::KafkaInputConfig),
    /// `type: http`
    Http(http::HttpInputConfig),
    /// `type: forward`
    Forward(forward::ForwardInputConfig),
    /// `type: otlp`
    Otlp(otlp::OtlpInputConfig),
}

/// Parse the body of an input of type `kind`; `None` for an unknown type.
pub fn parse_config<'de, D: serde::Deserializer<'de>>(
    kind: &str,
    body: D,
) -> Option<Result<InputConfig, serde_path_to_error::Error<D::Error>>> {
    Some(match kind {
        "stdin" => serde_path_to_error::deserialize(body).map(InputConfig::Stdin),
        "file" => serde_path_to_error::deserialize(body).map(InputConfig::File),
        "kafka" => serde_path_to_error::deserialize(body).map(InputConfig::Kafka),
        "http" => serde_path_to_error::deserialize(body).map(InputConfig::Http),
        "forward" => serde_path_to_error::deserialize(body).map(InputConfig::Forward),
        "otlp" => serde_path_to_error::deserialize(body).map(InputConfig::Otlp),
        _ => return None,
    })
}

impl InputConfig {
    /// The type as written in `type:`.
    pub fn kind(&self) -> &'static str {
        match self {
            InputConfig::Stdin(_) => "stdin",
            InputConfig::File(_) => "file",
            InputConfig::Kafka(_) => "kafka",
            InputConfig::Http(_) => "http",
            InputConfig::Forward(_) => "forward",
            InputConfig::Otlp(_) => "otlp",
        }
    }

    /// Make relative paths relative to the config file's folder.
    pub fn rebase(self, base: &Path) -> Self {
        match self {
            InputConfig::File(c) => InputConfig::File(c.rebase(base)),
            InputConfig::Http(c) => InputConfig::Http(c.rebase(base)),
            InputConfig::Forward(c) => InputConfig::Forward(c.rebase(base)),
            InputConfig::Otlp(c) => InputConfig::Otlp(c.rebase(base)),
            other => other,
        }
    }

    /// Build the input.
    pub fn build(&self) -> Result<Box<dyn Input>, InputError> {
        Ok(match self {
            InputConfig::Stdin(c) => Box::new(stdin::StdinInput::new(c.clone())),
            InputConfig::File(c) => Box::new(file::FileInput::new(c.clone())),
            InputConfig::Kafka(c) => Box::new(kafka::KafkaInput::new(c.clone())),
            InputConfig::Http(c) => Box::new(http::HttpInput::new(c.clone())),
            InputConfig::Forward(c) => Box::new(forward::ForwardInput::new(c.clone())),
            InputConfig::Otlp(c) => Box::new(otlp::OtlpInput::new(c.clone())),
        })
    }
}

/// Why an input could not start, or stopped with an error. The input's
/// name is carried once; the [`InputErrorKind`] says what happened.
#[derive(Debug, thiserror::Error)]
#[error("input {input}: {kind}")]
pub struct InputError {
    /// The input's name.
    pub input: String,
    /// What happened.
    pub kind: InputErrorKind,
}

impl InputError {
    /// An error of `kind` for the input named `input`.
    pub fn new(input: impl Into<String>, kind: impl Into<InputErrorKind>) -> Self {
        InputError { input: input.into(), kind: kind.into() }
    }

    /// An I/O error while doing `what`.
    pub fn io(input: impl Into<String>, what: impl Into<String>, source: std::io::Error) -> Self {
        Self::new(input, InputErrorKind::Io { what: what.into(), source })
    }
}

/// What went wrong in an input.
#[derive(Debug, thiserror::Error)]
pub enum InputErrorKind {
    /// Reading the source failed.
    #[error("{what}: {source}")]
    Io {
        /// What it was doing.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The Kafka client failed.
    #[error("{what}: {source}")]
    Kafka {
        /// What it was doing.
        what: String,
        /// The client's error.
        source: Box<rdkafka::error::KafkaError>,
    },
    /// The HTTP input could not start or serve.
    #[error(transparent)]
    Http(#[from] http::HttpInputError),
    /// The Forward input could not start.
    #[error(transparent)]
    Forward(#[from] forward::ForwardInputError),
    /// The OTLP input could not start or serve.
    #[error(transparent)]
    Otlp(#[from] otlp::OtlpInputError),
}

/// A source of records.
#[async_trait::async_trait]
pub trait Input: Send {
    /// Read until the source ends or `ctx.shutdown` fires, sending batches
    /// through `ctx`. Returns when done; records sent are the pipeline's.
    async fn run(self: Box<Self>, ctx: InputContext) -> Result<(), InputError>;
}

/// What an input needs from the pipeline.
pub struct InputContext {
    /// The input's name.
    pub name: Arc<str>,
    /// The tag its records get.
    pub tag: Arc<str>,
    /// How many records to put in one batch at most.
    pub batch_max_records: usize,
    /// Arrival times come from here.
    pub clock: Clock,
    /// Fires when the process is shutting down.
    pub shutdown: CancellationToken,
    sender: mpsc::Sender<Batch>,
    dead_letter_tag: Arc<str>,
    records: Counter,
    dead_letters: Counter,
    send_wait: Histogram,
    listening: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    /// Where a `kafka` input with `checkpoints` meets the filters whose
    /// state it keeps per partition.
    pub checkpoints: Option<Arc<crate::core::checkpoints::Checkpoints>>,
}

/// The receiving side has gone: the pipeline is shutting down.
#[derive(Debug, thiserror::Error)]
#[error("the pipeline has stopped")]
pub struct PipelineClosed;

/// Why [`InputContext::send_within`] queued nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendRefused {
    /// No room appeared within the wait: the caller should refuse its unit
    /// (an HTTP 429) rather than hold it.
    #[error("the pipeline is full")]
    Full,
    /// The pipeline has stopped.
    #[error("the pipeline has stopped")]
    Closed,
}

/// Why [`InputContext::send_and_confirm`] cannot confirm a unit. Every
/// case means "send again": nothing was queued (`Full`, `Closed` before
/// queueing), or the records may yet arrive (`Failed`, `Timeout`), so a
/// retry may duplicate them (at-least-once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unconfirmed {
    /// The pipeline stayed full: nothing was queued.
    #[error("the pipeline is full; retry later")]
    Full,
    /// The pipeline has stopped (Weir is shutting down).
    #[error("weir is shutting down")]
    Closed,
    /// A record could not be delivered nor dead-lettered.
    #[error("delivery failed; retry")]
    Failed,
    /// Not confirmed within the ack timeout.
    #[error("not confirmed within {0:?}; the records may still be delivered")]
    Timeout(Duration),
}

impl InputContext {
    /// A context sending into `sender`.
    pub fn new(
        name: &str,
        tag: Arc<str>,
        batch_max_records: usize,
        clock: Clock,
        shutdown: CancellationToken,
        sender: mpsc::Sender<Batch>,
        dead_letter_tag: Arc<str>,
    ) -> Self {
        InputContext {
            name: name.into(),
            tag,
            batch_max_records,
            clock,
            shutdown,
            sender,
            dead_letter_tag,
            records: registry().counter(&INPUT_RECORDS, &[name]),
            dead_letters: registry().counter(&INPUT_DEAD_LETTERS, &[name, "malformed"]),
            send_wait: registry().histogram(&INPUT_SEND_WAIT, &[name]),
            listening: std::sync::Mutex::new(None),
            checkpoints: None,
        }
    }

    /// Share `checkpoints` with the input (see [`InputContext::checkpoints`]).
    pub fn with_checkpoints(mut self, checkpoints: Option<Arc<crate::core::checkpoints::Checkpoints>>) -> Self {
        self.checkpoints = checkpoints;
        self
    }

    /// Tell `on_listening` when the input is ready to take records (see
    /// [`InputContext::listening`]); the pipeline's `/ready` waits for it.
    pub fn notify_listening(self, on_listening: tokio::sync::oneshot::Sender<()>) -> Self {
        *self.listening.lock().unwrap_or_else(|p| p.into_inner()) = Some(on_listening);
        self
    }

    /// Called by the input once it can take records: the HTTP input when its
    /// socket is bound, the Kafka input once subscribed, file and stdin at
    /// once. Later calls do nothing.
    pub fn listening(&self) {
        if let Some(tx) = self.listening.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = tx.send(());
        }
    }

    /// Send a batch, waiting while the pipeline is full.
    pub async fn send(&self, mut batch: Batch) -> Result<(), PipelineClosed> {
        if batch.is_empty() {
            return Ok(());
        }
        let n = batch.len() as u64;
        let started = Instant::now();
        stamp(&mut batch, Arrival::now());
        self.sender.send(batch).await.map_err(|_| PipelineClosed)?;
        self.send_wait.observe(started.elapsed());
        self.records.add(n);
        Ok(())
    }

    /// Send the batches of one unit (e.g. an HTTP request), or none of them:
    /// waits at most `wait` for room for the first ones (as many as the queue
    /// holds: all of them for a unit of up to `queue_capacity` batches), else
    /// returns [`SendRefused::Full`] with nothing queued. Once the first are
    /// queued the unit is accepted, and the rest wait for room as long as it
    /// takes, so accepted records are never dropped.
    pub async fn send_within(&self, batches: Vec<Batch>, wait: Duration) -> Result<(), SendRefused> {
        let batches: Vec<Batch> = batches.into_iter().filter(|b| !b.is_empty()).collect();
        if batches.is_empty() {
            return Ok(());
        }
        let first = batches.len().min(self.sender.max_capacity());
        let started = Instant::now();
        let permits = match tokio::time::timeout(wait, self.sender.reserve_many(first)).await {
            Err(_) => {
                self.send_wait.observe(started.elapsed());
                return Err(SendRefused::Full);
            }
            Ok(Err(_)) => return Err(SendRefused::Closed),
            Ok(Ok(permits)) => permits,
        };
        let mut queued = 0u64;
        let mut batches = batches.into_iter();
        for (permit, mut batch) in permits.zip(batches.by_ref()) {
            queued += batch.len() as u64;
            stamp(&mut batch, Arrival::now());
            permit.send(batch);
        }
        let mut result = Ok(());
        for mut batch in batches {
            let n = batch.len() as u64;
            stamp(&mut batch, Arrival::now());
            if self.sender.send(batch).await.is_err() {
                result = Err(SendRefused::Closed);
                break;
            }
            queued += n;
        }
        self.send_wait.observe(started.elapsed());
        self.records.add(queued);
        result
    }

    /// Send as many of `batches`, in order, as the pipeline takes: each
    /// waits at most `wait` for room, and the first that finds none within
    /// it stops the sending. Returns how many records were queued (those of
    /// the first batches); the caller refuses the rest, which are dropped
    /// unqueued. For a unit whose parts are answered one by one (`_bulk`
    /// items), so a pipeline that stalls refuses only what it did not take.
    ///
    /// # Errors
    /// [`SendRefused::Full`] when not even the first batch found room,
    /// [`SendRefused::Closed`] when the pipeline stopped before any did.
    pub async fn send_prefix_within(&self, batches: Vec<Batch>, wait: Duration) -> Result<usize, SendRefused> {
        let started = Instant::now();
        let mut queued = 0usize;
        let mut refused = None;
        for mut batch in batches.into_iter().filter(|b| !b.is_empty()) {
            match tokio::time::timeout(wait, self.sender.reserve()).await {
                Ok(Ok(permit)) => {
                    queued += batch.len();
                    stamp(&mut batch, Arrival::now());
                    permit.send(batch);
                }
                Ok(Err(_)) => {
                    refused = Some(SendRefused::Closed);
                    break;
                }
                Err(_) => {
                    refused = Some(SendRefused::Full);
                    break;
                }
            }
        }
        self.send_wait.observe(started.elapsed());
        self.records.add(queued as u64);
        match refused {
            Some(why) if queued == 0 => Err(why),
            _ => Ok(queued),
        }
    }

    /// Cut `records` into batches of at most `batch_max_records`, moving
    /// them (a clone would keep their acknowledgements alive).
    pub fn batches(&self, records: impl IntoIterator<Item = crate::core::record::Record>) -> Vec<Batch> {
        let size = self.batch_max_records.max(1);
        let mut records = records.into_iter().peekable();
        let mut out = Vec::new();
        while records.peek().is_some() {
            out.push(records.by_ref().take(size).collect());
        }
        out
    }

    /// Queue one unit's batches and dead letters, then with a `delivery`
    /// receiver (`ack: delivered`) wait up to `ack_timeout` for its outcome:
    /// what an input that answers its sender (`otlp`) needs between
    /// decoding a request and answering it. Nothing is queued when the
    /// pipeline stays full for `queue_wait`.
    ///
    /// # Errors
    /// [`Unconfirmed`]: why the sender must not take the unit as done.
    pub async fn send_and_confirm(
        &self,
        batches: Vec<Batch>,
        letters: Vec<DeadLetter>,
        queue_wait: Duration,
        delivery: Option<tokio::sync::oneshot::Receiver<crate::core::ack::Delivery>>,
        ack_timeout: Duration,
    ) -> Result<(), Unconfirmed> {
        self.send_within(batches, queue_wait).await.map_err(|refused| match refused {
            SendRefused::Full => Unconfirmed::Full,
            SendRefused::Closed => Unconfirmed::Closed,
        })?;
        self.dead_letter(letters).await.map_err(|_| Unconfirmed::Closed)?;
        let Some(delivery) = delivery else { return Ok(()) };
        match tokio::time::timeout(ack_timeout, delivery).await {
            Ok(Ok(crate::core::ack::Delivery::Delivered)) => Ok(()),
            Ok(Ok(crate::core::ack::Delivery::Failed) | Err(_)) => Err(Unconfirmed::Failed),
            Err(_) => Err(Unconfirmed::Timeout(ack_timeout)),
        }
    }

    /// Send malformed input to dead letter.
    pub async fn dead_letter(&self, letters: Vec<DeadLetter>) -> Result<(), PipelineClosed> {
        if letters.is_empty() {
            return Ok(());
        }
        self.dead_letters.add(letters.len() as u64);
        let mut batch: Batch = letters.into_iter().map(|l| l.into_record(&self.dead_letter_tag)).collect();
        stamp(&mut batch, Arrival::now());
        self.sender.send(batch).await.map_err(|_| PipelineClosed)
    }
}

/// Mark `batch` as entering the pipeline at `now` ([`Record::arrival`]).
///
/// [`Record::arrival`]: crate::core::record::Record::arrival
fn stamp(batch: &mut Batch, now: Arrival) {
    for record in batch {
        record.arrival = Some(now);
    }
}
