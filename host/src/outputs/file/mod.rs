//! `type: file`: appends one NDJSON line per record to a file, or writes
//! them to a device or a pipe (`/dev/stdout`, `/dev/null`, a FIFO). Only a
//! regular file is synced to disk: the others have nothing to sync, and
//! `fsync` on them fails with `EINVAL`.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::{LineEncoding, Output, OutputError, OutputErrorKind, WriteReport};
use crate::core::record::Record;

/// Settings of the `file` output.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOutputConfig {
    /// The file, created if missing and appended to; relative to the config file's folder.
    pub path: PathBuf,
    /// `body` (default) writes the body; `envelope` wraps it with time and tag.
    #[serde(default)]
    pub encoding: LineEncoding,
    /// `fsync` after every batch, so a crash cannot lose acknowledged
    /// records. Default false: the OS page cache is trusted. Ignored for a
    /// path that is not a regular file (a device, a FIFO).
    #[serde(default)]
    pub fsync: bool,
}

impl FileOutputConfig {
    pub(crate) fn rebase(mut self, base: &Path) -> Self {
        self.path = base.join(&self.path);
        self
    }
}

/// Appends to a file.
pub struct FileOutput {
    name: String,
    config: FileOutputConfig,
    file: tokio::fs::File,
    /// Whether `path` is a regular file, the only kind that can be synced.
    syncable: bool,
    buf: Vec<u8>,
}

impl FileOutput {
    /// Open (creating) the file for appending. Opening a FIFO waits for a
    /// reader, as any writer of a FIFO does.
    pub async fn open(name: &str, config: FileOutputConfig) -> Result<Self, OutputError> {
        if let Some(dir) = config.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await.map_err(|source| {
                OutputError::new(name, OutputErrorKind::Io { what: format!("creating {}", dir.display()), source })
            })?;
        }
        let file =
            tokio::fs::OpenOptions::new().create(true).append(true).open(&config.path).await.map_err(|source| {
                OutputError::new(
                    name,
                    OutputErrorKind::Io { what: format!("opening {}", config.path.display()), source },
                )
            })?;
        let metadata = file.metadata().await.map_err(|source| {
            OutputError::new(
                name,
                OutputErrorKind::Io { what: format!("inspecting {}", config.path.display()), source },
            )
        })?;
        let syncable = metadata.file_type().is_file();
        Ok(FileOutput { name: name.to_string(), config, file, syncable, buf: Vec::new() })
    }

    fn io(&self, what: &str) -> impl FnOnce(std::io::Error) -> OutputError {
        let output = self.name.clone();
        let what = format!("{what} {}", self.config.path.display());
        move |source| OutputError::new(output, OutputErrorKind::Io { what, source })
    }
}

#[async_trait::async_trait]
impl Output for FileOutput {
    async fn write(&mut self, batch: &[Record]) -> Result<WriteReport, OutputError> {
        self.buf.clear();
        for record in batch {
            self.config.encoding.encode(record, &mut self.buf);
        }
        let written = self.file.write_all(&self.buf).await;
        written.map_err(self.io("writing"))?;
        let flushed = self.file.flush().await;
        flushed.map_err(self.io("flushing"))?;
        if self.config.fsync && self.syncable {
            let synced = self.file.sync_data().await;
            synced.map_err(self.io("syncing"))?;
        }
        Ok(WriteReport::default())
    }

    async fn flush(&mut self) -> Result<(), OutputError> {
        if !self.syncable {
            return Ok(());
        }
        let synced = self.file.sync_data().await;
        synced.map_err(self.io("syncing"))
    }
}
