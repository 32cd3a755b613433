//! Filter state across restarts: with `state_dir` set, each filter's
//! `snapshot` is written to `<state_dir>/<filter>.state` at shutdown, and
//! for a filter with `dedupe` the identities it was given to
//! `<state_dir>/<filter>.seen` at the same moment (so the two agree), each
//! atomically (a temporary file renamed over the old one); both are handed
//! back at the next start.

use std::path::{Path, PathBuf};

use super::chain::{Chain, Stage};
use super::error::PipelineError;
use crate::config::Config;

/// Restore `stage`'s filter from its saved state, and its dedupe set, if
/// any.
///
/// # Errors
/// [`PipelineError::State`] when a file cannot be read,
/// [`PipelineError::Restore`] when the filter refuses its state,
/// [`PipelineError::Seen`] when the dedupe set is not one.
pub(super) fn restore(config: &Config, stage: &mut Stage) -> Result<(), PipelineError> {
    let name = stage.name().to_string();
    if let Some(state) = read(state_file(config, &name, "state"))? {
        let (file, bytes) = state;
        stage.instance_mut().restore(&bytes).map_err(|e| PipelineError::Restore { file: file.clone(), source: e })?;
        tracing::info!(filter = %name, file = %file.display(), bytes = bytes.len(), "restored filter state");
    }
    if stage.seen().is_some()
        && let Some((file, bytes)) = read(state_file(config, &name, "seen"))?
    {
        stage.restore_seen(&bytes).map_err(|reason| PipelineError::Seen { file: file.clone(), reason })?;
        tracing::info!(filter = %name, file = %file.display(), "restored dedupe set");
    }
    Ok(())
}

/// The contents of `file`, when there is one.
fn read(file: Option<PathBuf>) -> Result<Option<(PathBuf, Vec<u8>)>, PipelineError> {
    let Some(file) = file.filter(|f| f.is_file()) else { return Ok(None) };
    let bytes = std::fs::read(&file).map_err(|source| PipelineError::State { file: file.clone(), source })?;
    Ok(Some((file, bytes)))
}

fn state_file(config: &Config, filter: &str, extension: &str) -> Option<PathBuf> {
    config.state_dir.as_ref().map(|dir| dir.join(format!("{filter}.{extension}")))
}

/// Write `bytes` to `file` through a temporary file renamed over it.
fn write_atomically(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = file.with_extension(format!("{}.tmp", file.extension().and_then(|e| e.to_str()).unwrap_or("")));
    std::fs::create_dir_all(file.parent().unwrap_or(file))?;
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, file)
}

/// Save every filter's state (and dedupe set) to `state_dir`, when set. A
/// filter whose state cannot be saved is logged at ERROR: its state is
/// lost, the others are kept.
pub(super) fn save(config: &Config, chain: &mut Chain) {
    for stage in chain.stages_mut() {
        let name = stage.name().to_string();
        let Some(file) = state_file(config, &name, "state") else { return };
        let seen = stage.seen().map(|seen| seen.to_bytes());
        let result = stage
            .instance_mut()
            .snapshot()
            .map_err(|e| e.to_string())
            .and_then(|state| write_atomically(&file, &state).map_err(|e| e.to_string()))
            .and_then(|()| match (&seen, state_file(config, &name, "seen")) {
                (Some(bytes), Some(seen_file)) => write_atomically(&seen_file, bytes).map_err(|e| e.to_string()),
                _ => Ok(()),
            });
        match result {
            Ok(()) => {
                tracing::info!(filter = %name, file = %file.display(), dedupe = seen.is_some(), "saved filter state")
            }
            Err(error) => {
                tracing::error!(filter = %name, file = %file.display(), error, "cannot save filter state; it is lost")
            }
        }
    }
}
