//! Outputs: where records leave. Each output lives in its own folder, opens
//! with its `…Config` struct, and implements the small [`Output`] trait. The
//! pipeline batches records for it, retries what it reports as retryable
//! and dead-letters what it rejects; an output only has to write a batch and
//! say what happened to each record.

pub mod alertmanager;
pub mod blackhole;
pub mod elasticsearch;
pub mod file;
mod http_client;
pub mod kafka;
pub mod stdout;

use std::path::Path;

use serde::Deserialize;

use crate::core::clock::rfc3339;
use crate::core::record::Record;

/// The output types this build knows, as written in `type:`.
pub const TYPES: &[&str] = &["stdout", "file", "blackhole", "elasticsearch", "alertmanager", "kafka"];

/// The settings of one output, by type.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputConfig {
    /// `type: stdout`
    Stdout(stdout::StdoutOutputConfig),
    /// `type: file`
    File(file::FileOutputConfig),
    /// `type: blackhole`
    Blackhole(blackhole::BlackholeOutputConfig),
    /// `type: elasticsearch`
    Elasticsearch(Box<elasticsearch::ElasticsearchOutputConfig>),
    /// `type: alertmanager`
    Alertmanager(alertmanager::AlertmanagerOutputConfig),
    /// `type: kafka`
    Kafka(kafka::KafkaOutputConfig),
}

/// Parse the body of an output of type `kind`; `None` for an unknown type.
pub fn parse_config<'de, D: serde::Deserializer<'de>>(
    kind: &str,
    body: D,
) -> Option<Result<OutputConfig, serde_path_to_error::Error<D::Error>>> {
    Some(match kind {
        "stdout" => serde_path_to_error::deserialize(body).map(OutputConfig::Stdout),
        "file" => serde_path_to_error::deserialize(body).map(OutputConfig::File),
        "blackhole" => serde_path_to_error::deserialize(body).map(OutputConfig::Blackhole),
        "elasticsearch" => serde_path_to_error::deserialize(body).map(|c| OutputConfig::Elasticsearch(Box::new(c))),
        "alertmanager" => serde_path_to_error::deserialize(body).map(OutputConfig::Alertmanager),
        "kafka" => serde_path_to_error::deserialize(body).map(OutputConfig::Kafka),
        _ => return None,
    })
}

impl OutputConfig {
    /// The type as written in `type:`.
    pub fn kind(&self) -> &'static str {
        match self {
            OutputConfig::Stdout(_) => "stdout",
            OutputConfig::File(_) => "file",
            OutputConfig::Blackhole(_) => "blackhole",
            OutputConfig::Elasticsearch(_) => "elasticsearch",
            OutputConfig::Alertmanager(_) => "alertmanager",
            OutputConfig::Kafka(_) => "kafka",
        }
    }

    /// Make relative paths relative to the config file's folder.
    pub fn rebase(self, base: &Path) -> Self {
        match self {
            OutputConfig::File(c) => OutputConfig::File(c.rebase(base)),
            OutputConfig::Elasticsearch(c) => OutputConfig::Elasticsearch(Box::new(c.rebase(base))),
            OutputConfig::Alertmanager(c) => OutputConfig::Alertmanager(c.rebase(base)),
            other => other,
        }
    }

    /// Build the output.
    pub async fn build(&self, name: &str) -> Result<Box<dyn Output>, OutputError> {
        Ok(match self {
            OutputConfig::Stdout(c) => Box::new(stdout::StdoutOutput::new(c.clone())),
            OutputConfig::File(c) => Box::new(file::FileOutput::open(name, c.clone()).await?),
            OutputConfig::Blackhole(_) => Box::new(blackhole::BlackholeOutput),
            OutputConfig::Elasticsearch(c) => Box::new(c.build(name)?),
            OutputConfig::Alertmanager(c) => Box::new(alertmanager::build(name, c)?),
            OutputConfig::Kafka(c) => Box::new(kafka::KafkaOutput::new(name, c.clone())?),
        })
    }
}

/// Why an output could not be built, or why a write failed as a whole (the
/// pipeline then retries the batch with backoff). The output's name is
/// carried once; the [`OutputErrorKind`] says what happened.
#[derive(Debug, thiserror::Error)]
#[error("output {output}: {kind}")]
pub struct OutputError {
    /// The output's name.
    pub output: String,
    /// What happened.
    pub kind: OutputErrorKind,
}

impl OutputError {
    /// An error of `kind` for the output named `output`.
    pub fn new(output: impl Into<String>, kind: impl Into<OutputErrorKind>) -> Self {
        OutputError { output: output.into(), kind: kind.into() }
    }
}

/// What went wrong in an output.
#[derive(Debug, thiserror::Error)]
pub enum OutputErrorKind {
    /// Local I/O failed.
    #[error("{what}: {source}")]
    Io {
        /// What it was doing.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Elasticsearch could not be set up or reached, or refused a request.
    #[error(transparent)]
    Elasticsearch(#[from] elasticsearch::ElasticsearchError),
    /// An Alertmanager output cannot be built.
    #[error(transparent)]
    Alertmanager(#[from] alertmanager::AlertmanagerError),
    /// The Kafka client failed.
    #[error("{what}: {source}")]
    Kafka {
        /// What it was doing.
        what: String,
        /// The client's error.
        source: Box<rdkafka::error::KafkaError>,
    },
}

/// What happened to the records of a batch that was written. Records not
/// named here were delivered.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Indices of records to try again later (e.g. throttled).
    pub retry: Vec<usize>,
    /// Indices of records the destination refused for good, with its reason.
    pub rejected: Vec<(usize, String)>,
}

/// A destination of records.
#[async_trait::async_trait]
pub trait Output: Send {
    /// Write a batch. `Err` means nothing is known to be delivered and the
    /// whole batch is retried; `Ok` reports per record.
    async fn write(&mut self, batch: &[Record]) -> Result<WriteReport, OutputError>;

    /// Make everything written so far durable or visible; called before shutdown.
    async fn flush(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
}

/// How local outputs write a record as one NDJSON line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineEncoding {
    /// The body as is.
    #[default]
    Body,
    /// `{"time": RFC 3339, "tag": ..., "body": {...}}`, keeping time and tag.
    Envelope,
}

impl LineEncoding {
    /// Append `record` and a newline to `out`.
    pub fn encode(self, record: &Record, out: &mut Vec<u8>) {
        match self {
            LineEncoding::Body => out.extend_from_slice(&record.body),
            LineEncoding::Envelope => {
                out.extend_from_slice(b"{\"time\":");
                serde_json::to_writer(&mut *out, &rfc3339(record.time)).expect("writing to a Vec cannot fail");
                out.extend_from_slice(b",\"tag\":");
                serde_json::to_writer(&mut *out, &*record.tag).expect("writing to a Vec cannot fail");
                out.extend_from_slice(b",\"body\":");
                out.extend_from_slice(&record.body);
                out.push(b'}');
            }
        }
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_keeps_time_and_tag() {
        let record = Record {
            time: 1_000_000_000,
            tag: "a.b".into(),
            body: br#"{"x":1}"#.as_slice().into(),
            origin: None,
            ack: None,
            arrival: None,
        };
        let mut out = Vec::new();
        LineEncoding::Envelope.encode(&record, &mut out);
        assert_eq!(out, b"{\"time\":\"1970-01-01T00:00:01Z\",\"tag\":\"a.b\",\"body\":{\"x\":1}}\n");
        out.clear();
        LineEncoding::Body.encode(&record, &mut out);
        assert_eq!(out, b"{\"x\":1}\n");
    }
}
