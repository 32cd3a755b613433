//! [`PipelineError`]: why a pipeline could not start or failed while running.

use std::path::PathBuf;

use crate::inputs::InputError;
use crate::outputs::OutputError;
use crate::plugin::PluginError;

/// Why a pipeline could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A filter could not be loaded or configured.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// An input could not be built.
    #[error(transparent)]
    Input(#[from] InputError),
    /// An output could not be built.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// Saved filter state could not be read.
    #[error("{}: cannot read saved filter state: {source}", file.display())]
    State {
        /// The state file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Saved filter state was refused by the plugin.
    #[error("{}: {source} (delete the file to start with empty state)", file.display())]
    Restore {
        /// The state file.
        file: PathBuf,
        /// The plugin's refusal.
        source: PluginError,
    },
    /// A saved dedupe set is not one.
    #[error("{}: cannot read the saved dedupe set: {reason} (delete the file to start with an empty one)", file.display())]
    Seen {
        /// The `.seen` file.
        file: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The chain thread could not be started.
    #[error("cannot start the filter chain thread: {0}")]
    Thread(std::io::Error),
    /// The chain thread panicked: a bug in Weir.
    #[error("the filter chain thread panicked; this is a bug in weir")]
    ChainPanicked,
}
