//! `type: file`: reads a file once, or follows it like `tail -F`: waits for
//! new lines, and reopens the path when the file is rotated (a new inode) or
//! truncated.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::lines::{Decoded, LineDecoder, LineFormat, READ_CHUNK, read_to_end};
use super::stdin::{default_max_line_bytes, default_message_key};
use super::{Input, InputContext, InputError};
use crate::core::units::HumanDuration;

/// Settings of the `file` input.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileInputConfig {
    /// The file; relative to the config file's folder.
    pub path: PathBuf,
    /// Keep reading as the file grows, across rotation (`tail -F`). Default
    /// false: read once, and the input ends at end of file.
    #[serde(default)]
    pub follow: bool,
    /// When following, start at the `beginning` (default) or the `end`.
    #[serde(default)]
    pub start_at: StartAt,
    /// How often a followed file is checked for new data. Default 250ms.
    #[serde(default = "default_poll_interval")]
    pub poll_interval: HumanDuration,
    /// `ndjson` (default): each line is a JSON object; `lines`: each line is text.
    #[serde(default)]
    pub format: LineFormat,
    /// With `format: lines`, the field that holds the text. Default `message`.
    #[serde(default = "default_message_key")]
    pub message_key: String,
    /// Longer lines are dead-lettered. Default 1 MiB.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
}

/// Where a followed file starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    /// Read what is already there.
    #[default]
    Beginning,
    /// Only lines written from now on.
    End,
}

fn default_poll_interval() -> HumanDuration {
    HumanDuration(Duration::from_millis(250))
}

impl FileInputConfig {
    pub(crate) fn rebase(mut self, base: &Path) -> Self {
        self.path = base.join(&self.path);
        self
    }
}

/// Reads or follows a file.
pub struct FileInput {
    config: FileInputConfig,
}

impl FileInput {
    /// Build from settings.
    pub fn new(config: FileInputConfig) -> Self {
        FileInput { config }
    }
}

#[async_trait::async_trait]
impl Input for FileInput {
    async fn run(self: Box<Self>, ctx: InputContext) -> Result<(), InputError> {
        let c = &self.config;
        ctx.listening();
        let io = |what: &str| {
            let input = ctx.name.to_string();
            let what = format!("{what} {}", c.path.display());
            move |source| InputError::io(input, what, source)
        };
        let mut decoder = LineDecoder::new(
            c.format,
            c.message_key.clone(),
            c.max_line_bytes,
            format!("file:{}", c.path.display()).into(),
            format!("input {}", ctx.name),
        );
        if !c.follow {
            let file = File::open(&c.path).await.map_err(io("opening"))?;
            let _ = read_to_end(file, &mut decoder, &ctx).await.map_err(io("reading"))?;
            return Ok(());
        }
        self.follow(&ctx, &mut decoder).await
    }
}

impl FileInput {
    async fn follow(&self, ctx: &InputContext, decoder: &mut LineDecoder) -> Result<(), InputError> {
        let c = &self.config;
        let poll = c.poll_interval.0;
        let mut first_open = true;
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let (mut file, inode) = loop {
                match File::open(&c.path).await {
                    // Rotation is noticed by the inode changing, so one is
                    // needed: without it every poll would look like a
                    // rotation and re-read the file.
                    Ok(f) => match f.metadata().await {
                        Ok(m) => break (f, m.ino()),
                        Err(source) => {
                            tracing::warn!(input = %ctx.name, path = %c.path.display(), error = %source, "cannot stat followed file; retrying");
                        }
                    },
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        tracing::debug!(input = %ctx.name, path = %c.path.display(), "waiting for file to appear");
                    }
                    Err(source) => {
                        tracing::warn!(input = %ctx.name, path = %c.path.display(), error = %source, "cannot open followed file; retrying");
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(poll) => {}
                    () = ctx.shutdown.cancelled() => return Ok(()),
                }
            };
            let mut position = 0u64;
            if first_open && c.start_at == StartAt::End {
                // `start_at: end` must not quietly become the beginning.
                position = file.seek(std::io::SeekFrom::End(0)).await.map_err(|source| {
                    InputError::io(&*ctx.name, format!("seeking to the end of {}", c.path.display()), source)
                })?;
            }
            first_open = false;
            decoder.reset();
            // Read this file until it is replaced.
            loop {
                let n = tokio::select! {
                    n = file.read(&mut buf) => n,
                    () = ctx.shutdown.cancelled() => return Ok(()),
                };
                let n = match n {
                    Ok(n) => n,
                    Err(source) => {
                        tracing::warn!(input = %ctx.name, path = %c.path.display(), error = %source, "read failed; reopening");
                        break;
                    }
                };
                if n > 0 {
                    position += n as u64;
                    let mut decoded = Decoded::default();
                    decoder.feed(&buf[..n], ctx, &mut decoded);
                    if decoded.send(ctx).await.is_err() {
                        return Ok(());
                    }
                    continue;
                }
                tokio::select! {
                    () = tokio::time::sleep(poll) => {}
                    () = ctx.shutdown.cancelled() => return Ok(()),
                }
                match tokio::fs::metadata(&c.path).await {
                    Ok(m) if m.ino() != inode => {
                        // Rotated: what was written to the old file before the
                        // rename has been read (we were at its end); finish
                        // its last line and move to the new file.
                        let mut decoded = Decoded::default();
                        decoder.finish(ctx, &mut decoded);
                        if decoded.send(ctx).await.is_err() {
                            return Ok(());
                        }
                        tracing::info!(input = %ctx.name, path = %c.path.display(), "file rotated; reopening");
                        break;
                    }
                    Ok(m) if m.len() < position => {
                        tracing::info!(input = %ctx.name, path = %c.path.display(), "file truncated; reading from the start");
                        position = file.seek(std::io::SeekFrom::Start(0)).await.unwrap_or(0);
                        decoder.reset();
                    }
                    _ => {}
                }
            }
        }
    }
}
