//! Line framing and decoding shared by inputs that read byte streams
//! (`stdin`, `file`): split on `\n`, decode each line as NDJSON or plain
//! text, batch, and dead-letter what does not decode, naming the line. A
//! byte order mark before the first line of a stream (of a file, and of
//! each file after rotation or truncation) is dropped ([`bom`]).

use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{InputContext, PipelineClosed};
use crate::core::bom;
use crate::core::dead_letter::DeadLetter;
use crate::core::record::{Origin, Record};

/// How each line becomes a record body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineFormat {
    /// Each line is one JSON object.
    #[default]
    Ndjson,
    /// Each line is text, wrapped as `{"<message_key>": "<line>"}`.
    Lines,
}

/// Longest line accepted by default: far above any log statement, small
/// enough that one bad file cannot exhaust memory.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;
/// Bytes of an over-long line kept in its dead letter: enough to recognise
/// it, without putting megabytes in the dead-letter output.
const DEAD_LETTER_PREFIX: usize = 1024;
pub(super) const READ_CHUNK: usize = 64 * 1024;

/// Splits a byte stream into lines and turns them into records.
pub struct LineDecoder {
    format: LineFormat,
    message_key: String,
    max_line_bytes: usize,
    stream: Arc<str>,
    stage: String,
    line_no: u64,
    pending: Vec<u8>,
    /// Set while skipping the rest of an over-long line.
    skipping: bool,
}

impl LineDecoder {
    /// A decoder for the stream named `stream` (e.g. `file:/x.log`), read by
    /// the input named in `stage`.
    pub fn new(
        format: LineFormat,
        message_key: String,
        max_line_bytes: usize,
        stream: Arc<str>,
        stage: String,
    ) -> Self {
        LineDecoder {
            format,
            message_key,
            max_line_bytes,
            stream,
            stage,
            line_no: 0,
            pending: Vec::new(),
            skipping: false,
        }
    }

    /// Restart numbering, e.g. after the file was rotated: the next line is
    /// the first of a new stream again.
    pub fn reset(&mut self) {
        self.line_no = 0;
        self.pending.clear();
        self.skipping = false;
    }

    /// Feed bytes; complete lines become records or dead letters.
    pub fn feed(&mut self, bytes: &[u8], ctx: &InputContext, out: &mut Decoded) {
        let mut rest = bytes;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(nl);
            rest = &tail[1..];
            if self.skipping {
                self.skipping = false;
                continue;
            }
            if self.pending.is_empty() {
                self.line(head, ctx, out);
            } else {
                let mut line = std::mem::take(&mut self.pending);
                line.extend_from_slice(head);
                self.line(&line, ctx, out);
            }
        }
        if !self.skipping {
            self.pending.extend_from_slice(rest);
            if self.pending.len() > self.max_line_bytes {
                self.line_no += 1;
                let prefix = std::mem::take(&mut self.pending);
                out.dead.push(self.dead_letter(
                    ctx,
                    &prefix[..self.max_line_bytes.min(DEAD_LETTER_PREFIX)],
                    format!(
                        "line {} is longer than {} bytes (max_line_bytes); skipped",
                        self.line_no, self.max_line_bytes
                    ),
                ));
                self.skipping = true;
            }
        }
    }

    /// The stream ended: a last line without a newline still counts.
    pub fn finish(&mut self, ctx: &InputContext, out: &mut Decoded) {
        let line = std::mem::take(&mut self.pending);
        if !self.skipping && !line.is_empty() {
            self.line(&line, ctx, out);
        }
        self.skipping = false;
    }

    fn line(&mut self, line: &[u8], ctx: &InputContext, out: &mut Decoded) {
        let line = if self.line_no == 0 { bom::strip(line) } else { line };
        self.line_no += 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        match self.body(line) {
            Ok(body) => out.records.push(Record {
                time: ctx.clock.now(),
                tag: ctx.tag.clone(),
                body,
                origin: Some(Origin { stream: self.stream.clone(), offset: self.line_no, lineage: 0 }),
                ack: None,
                arrival: None,
            }),
            Err(reason) => {
                let reason = format!("line {}: {reason}", self.line_no);
                out.dead.push(self.dead_letter(ctx, line, reason));
            }
        }
    }

    fn body(&self, line: &[u8]) -> Result<Bytes, String> {
        match self.format {
            LineFormat::Ndjson => {
                let text = std::str::from_utf8(line).map_err(|e| format!("not UTF-8: {e}"))?;
                let trimmed = text.trim();
                if !trimmed.starts_with('{') {
                    return Err("expected a JSON object".into());
                }
                serde_json::from_str::<&serde_json::value::RawValue>(trimmed)
                    .map_err(|e| format!("invalid JSON: {e}"))?;
                Ok(Bytes::copy_from_slice(trimmed.as_bytes()))
            }
            LineFormat::Lines => {
                let text = String::from_utf8_lossy(line);
                let mut map = serde_json::Map::with_capacity(1);
                map.insert(self.message_key.clone(), serde_json::Value::String(text.into_owned()));
                Ok(serde_json::to_vec(&map).expect("a map of strings serialises").into())
            }
        }
    }

    fn dead_letter(&self, ctx: &InputContext, line: &[u8], reason: String) -> DeadLetter {
        DeadLetter {
            stage: self.stage.clone(),
            reason,
            tag: ctx.tag.clone(),
            time: ctx.clock.now(),
            body: Bytes::copy_from_slice(line),
            origin: Some(Origin { stream: self.stream.clone(), offset: self.line_no, lineage: 0 }),
            ack: None,
            arrival: None,
        }
    }
}

/// Records and dead letters decoded from a chunk of input.
#[derive(Default)]
pub struct Decoded {
    /// Good records.
    pub records: Vec<Record>,
    /// Lines that did not decode.
    pub dead: Vec<DeadLetter>,
}

impl Decoded {
    /// Send what has accumulated, in batches of at most `batch_max_records`.
    pub async fn send(&mut self, ctx: &InputContext) -> Result<(), PipelineClosed> {
        ctx.dead_letter(std::mem::take(&mut self.dead)).await?;
        while !self.records.is_empty() {
            let take = self.records.len().min(ctx.batch_max_records);
            let rest = self.records.split_off(take);
            ctx.send(std::mem::replace(&mut self.records, rest)).await?;
        }
        Ok(())
    }
}

/// Read `reader` to its end (or until shutdown), sending batches.
pub async fn read_to_end<R: AsyncRead + Unpin>(
    mut reader: R,
    decoder: &mut LineDecoder,
    ctx: &InputContext,
) -> std::io::Result<Result<(), PipelineClosed>> {
    let mut buf = vec![0u8; READ_CHUNK];
    let mut decoded = Decoded::default();
    loop {
        let n = tokio::select! {
            n = reader.read(&mut buf) => n?,
            () = ctx.shutdown.cancelled() => return Ok(Ok(())),
        };
        if n == 0 {
            decoder.finish(ctx, &mut decoded);
            return Ok(decoded.send(ctx).await);
        }
        decoder.feed(&buf[..n], ctx, &mut decoded);
        // Send what each read produced: a slow stream is not held back
        // waiting for a full batch; the filter chain coalesces small batches.
        if let Err(closed) = decoded.send(ctx).await {
            return Ok(Err(closed));
        }
    }
}
