//! `type: stdout`: one NDJSON line per record on standard output.

use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::{LineEncoding, Output, OutputError, OutputErrorKind, WriteReport};
use crate::core::record::Record;

/// Settings of the `stdout` output.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutOutputConfig {
    /// `body` (default) prints the body; `envelope` wraps it with time and tag.
    #[serde(default)]
    pub encoding: LineEncoding,
}

/// Writes to standard output.
pub struct StdoutOutput {
    config: StdoutOutputConfig,
    buf: Vec<u8>,
}

impl StdoutOutput {
    /// Build from settings.
    pub fn new(config: StdoutOutputConfig) -> Self {
        StdoutOutput { config, buf: Vec::new() }
    }
}

#[async_trait::async_trait]
impl Output for StdoutOutput {
    async fn write(&mut self, batch: &[Record]) -> Result<WriteReport, OutputError> {
        self.buf.clear();
        for record in batch {
            self.config.encoding.encode(record, &mut self.buf);
        }
        let mut stdout = tokio::io::stdout();
        let io = |source| OutputError::new("stdout", OutputErrorKind::Io { what: "writing".into(), source });
        stdout.write_all(&self.buf).await.map_err(io)?;
        stdout.flush().await.map_err(io)?;
        Ok(WriteReport::default())
    }
}
