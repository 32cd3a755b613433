//! Filter state across restarts: with `state_dir` set, the `snapshot` of
//! every instance of a stateful filter is written at shutdown (atomically: a
//! temporary file renamed over the old one) and handed to `restore` of the
//! same instance at the next start.
//!
//! Files, per filter:
//! - one instance (no `partition_by`, or `partition_by: []`):
//!   `<filter>.state`;
//! - partitioned: `<filter>.<partition>.state` for each partition, and
//!   `<filter>.partitions`, the layout they were saved with
//!   (`{"partitions": 2, "partition_by": ["metric", "labels"]}`);
//! - with `dedupe`, beside each `.state` file a `.seen` file, the
//!   identities that instance was given, written at the same moment (so the
//!   two agree).
//!
//! A filter's keys are spread over partitions by hash, and no plugin can
//! merge or split its snapshots through the contract, so state saved with
//! another layout (other `partition_by`, another worker count) is refused
//! at start, saying what changed, rather than restored into the wrong
//! partitions. Stateless filters (one instance per worker) save nothing.
//! State kept per Kafka partition (a `kafka` input's `checkpoints`) is
//! checkpointed to Kafka instead (see [`super::keyed`]); only a keyed
//! filter's own instance, for records of other inputs, is saved here.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::chain::{Chain, Filter, Stage};
use super::error::PipelineError;
use super::partition::{Partitioner, Placement};
use crate::config::Config;

/// The layout partitioned state was saved with (`<filter>.partitions`).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Layout {
    partitions: usize,
    partition_by: Vec<String>,
}

impl Layout {
    fn of(partitioner: &Partitioner) -> Self {
        Layout {
            partitions: partitioner.partitions(),
            partition_by: partitioner.paths().iter().map(|p| p.as_str().to_string()).collect(),
        }
    }

    fn describe(&self) -> String {
        match self.partitions {
            1 => "one instance".to_string(),
            n => format!("{n} partitions by {:?}", self.partition_by),
        }
    }
}

/// Where one filter's state lives.
struct Files<'a> {
    dir: &'a Path,
    filter: &'a str,
}

impl Files<'_> {
    /// The `.state` file of the one instance.
    fn single(&self) -> PathBuf {
        self.dir.join(format!("{}.state", self.filter))
    }

    /// The file of `extension` of the instance at `partition` of `partitions`.
    fn instance(&self, partition: usize, partitions: usize, extension: &str) -> PathBuf {
        match partitions {
            1 => self.dir.join(format!("{}.{extension}", self.filter)),
            _ => self.dir.join(format!("{}.{partition}.{extension}", self.filter)),
        }
    }

    fn layout(&self) -> PathBuf {
        self.dir.join(format!("{}.partitions", self.filter))
    }

    /// The layout saved state has: `None` for none, one instance's as a
    /// single partition keyed by nothing.
    fn saved_layout(&self) -> Result<Option<Layout>, PipelineError> {
        let file = self.layout();
        if file.is_file() {
            let text = std::fs::read(&file).map_err(|source| PipelineError::State { file: file.clone(), source })?;
            let layout = serde_json::from_slice(&text).map_err(|e| PipelineError::State {
                file: file.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })?;
            return Ok(Some(layout));
        }
        Ok(self.single().is_file().then(|| Layout { partitions: 1, partition_by: Vec::new() }))
    }
}

/// Restore `filter`'s instances from their saved state, if any.
///
/// # Errors
/// [`PipelineError::State`] when a file cannot be read,
/// [`PipelineError::Restore`] when the filter refuses it,
/// [`PipelineError::StateLayout`] when the state was saved partitioned
/// otherwise.
pub(super) fn restore(config: &Config, filter: &mut Filter) -> Result<(), PipelineError> {
    let Some(dir) = &config.state_dir else { return Ok(()) };
    let Placement::Partitioned(partitioner) = &filter.placement else { return Ok(()) };
    let name = filter.name().to_string();
    let files = Files { dir, filter: &name };
    let Some(saved) = files.saved_layout()? else { return Ok(()) };
    let configured = Layout::of(partitioner);
    // One instance, saved as one: whatever it was keyed by, one holds all.
    let both_single = saved.partitions == 1 && configured.partitions == 1;
    if saved != configured && !both_single {
        let file = if files.layout().is_file() { files.layout() } else { files.single() };
        return Err(PipelineError::StateLayout {
            file,
            filter: name,
            saved: saved.describe(),
            configured: configured.describe(),
        });
    }
    for (partition, stage) in filter.instances.iter_mut().enumerate() {
        if let Some((file, state)) = read(files.instance(partition, configured.partitions, "state"))? {
            let instance = stage.instance_mut();
            instance.restore(&state).map_err(|e| PipelineError::Restore { file: file.clone(), source: e })?;
            tracing::info!(filter = %name, partition, file = %file.display(), bytes = state.len(), "restored filter state");
        }
        if stage.seen().is_some()
            && let Some((file, seen)) = read(files.instance(partition, configured.partitions, "seen"))?
        {
            stage.restore_seen(&seen).map_err(|reason| PipelineError::Seen { file: file.clone(), reason })?;
            tracing::info!(filter = %name, partition, file = %file.display(), "restored dedupe set");
        }
    }
    Ok(())
}

/// The contents of `file`, when there is one.
fn read(file: PathBuf) -> Result<Option<(PathBuf, Vec<u8>)>, PipelineError> {
    if !file.is_file() {
        return Ok(None);
    }
    let bytes = std::fs::read(&file).map_err(|source| PipelineError::State { file: file.clone(), source })?;
    Ok(Some((file, bytes)))
}

/// Save every stateful filter's state to `state_dir`, when set. A filter
/// whose state cannot be saved is logged at ERROR: its state is lost, the
/// others are kept.
pub(super) fn save(config: &Config, chain: &mut Chain) {
    let Some(dir) = &config.state_dir else { return };
    for filter in chain.filters_mut() {
        let Placement::Partitioned(partitioner) = &filter.placement else { continue };
        let name = filter.name().to_string();
        let files = Files { dir, filter: &name };
        let layout = Layout::of(partitioner);
        let partitions = layout.partitions;
        let result = if partitions == 1 {
            // A partitioned layout saved earlier no longer applies.
            let _ = std::fs::remove_file(files.layout());
            save_instance(&files, 0, 1, &mut filter.instances[0])
        } else {
            let _ = std::fs::remove_file(files.single());
            let _ = std::fs::remove_file(files.instance(0, 1, "seen"));
            let layout = serde_json::to_vec(&layout).expect("a layout is plain JSON");
            filter
                .instances
                .iter_mut()
                .enumerate()
                .try_for_each(|(partition, stage)| save_instance(&files, partition, partitions, stage))
                .and_then(|()| write_atomically(&files.layout(), &layout))
        };
        match result {
            Ok(()) => {
                tracing::info!(filter = name, dir = %dir.display(), partitions = filter.instances.len(), "saved filter state")
            }
            Err(error) => {
                tracing::error!(filter = name, dir = %dir.display(), error, "cannot save filter state; it is lost")
            }
        }
    }
}

/// Save the instance at `partition`: its snapshot, and its dedupe set.
fn save_instance(files: &Files, partition: usize, partitions: usize, stage: &mut Stage) -> Result<(), String> {
    let seen = stage.seen().map(|seen| seen.to_bytes());
    let state = stage.instance_mut().snapshot().map_err(|e| e.to_string())?;
    write_atomically(&files.instance(partition, partitions, "state"), &state)?;
    match seen {
        Some(seen) => write_atomically(&files.instance(partition, partitions, "seen"), &seen),
        None => Ok(()),
    }
}

fn write_atomically(file: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut tmp = file.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::create_dir_all(file.parent().unwrap_or(file))
        .and_then(|()| std::fs::write(&tmp, bytes))
        .and_then(|()| std::fs::rename(&tmp, file))
        .map_err(|e| format!("{}: {e}", file.display()))
}
