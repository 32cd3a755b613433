//! Filter state across restarts: with `state_dir` set, each filter's
//! `snapshot` is written to `<state_dir>/<filter>.state` at shutdown
//! (atomically: a temporary file renamed over the old one) and handed to
//! `restore` of the new instance at the next start.

use std::path::PathBuf;

use super::chain::Chain;
use super::error::PipelineError;
use crate::config::Config;
use crate::plugin::FilterInstance;

/// Restore `instance` from its saved state, if any.
///
/// # Errors
/// [`PipelineError::State`] when the file cannot be read,
/// [`PipelineError::Restore`] when the filter refuses it.
pub(super) fn restore(config: &Config, instance: &mut FilterInstance) -> Result<(), PipelineError> {
    let Some(file) = state_file(config, instance.name()) else { return Ok(()) };
    if !file.is_file() {
        return Ok(());
    }
    let state = std::fs::read(&file).map_err(|source| PipelineError::State { file: file.clone(), source })?;
    instance.restore(&state).map_err(|e| PipelineError::Restore { file: file.clone(), source: e })?;
    tracing::info!(filter = %instance.name(), file = %file.display(), bytes = state.len(), "restored filter state");
    Ok(())
}

fn state_file(config: &Config, filter: &str) -> Option<PathBuf> {
    config.state_dir.as_ref().map(|dir| dir.join(format!("{filter}.state")))
}

/// Save every filter's state to `state_dir`, when set. A filter whose state
/// cannot be saved is logged at ERROR: its state is lost, the others are kept.
pub(super) fn save(config: &Config, chain: &mut Chain) {
    for stage in chain.stages_mut() {
        let instance = stage.instance_mut();
        let Some(file) = state_file(config, instance.name()) else { return };
        let result = instance.snapshot().map_err(|e| e.to_string()).and_then(|state| {
            let tmp = file.with_extension("state.tmp");
            std::fs::create_dir_all(file.parent().unwrap_or(&file))
                .and_then(|()| std::fs::write(&tmp, &state))
                .and_then(|()| std::fs::rename(&tmp, &file))
                .map_err(|e| e.to_string())
        });
        match result {
            Ok(()) => tracing::info!(filter = %instance.name(), file = %file.display(), "saved filter state"),
            Err(error) => {
                tracing::error!(filter = %instance.name(), file = %file.display(), error, "cannot save filter state; it is lost")
            }
        }
    }
}
