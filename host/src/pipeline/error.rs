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
    /// Saved state of a partitioned filter has another layout than the
    /// configured one.
    #[error(
        "{}: filter {filter} saved its state as {saved} but is configured as {configured}; state cannot move between partitions: start with the pipeline.workers and partition_by it was saved with, or delete the filter's state files to start it empty",
        file.display()
    )]
    StateLayout {
        /// The layout file, or the one-instance state file.
        file: PathBuf,
        /// The filter's name.
        filter: String,
        /// The saved layout.
        saved: String,
        /// The configured layout.
        configured: String,
    },
    /// A saved dedupe set is not one.
    #[error("{}: cannot read the saved dedupe set: {reason} (delete the file to start with an empty one)", file.display())]
    Seen {
        /// The `.seen` file.
        file: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A chain thread (dispatcher or worker) could not be started.
    #[error("cannot start a filter chain thread: {0}")]
    Thread(std::io::Error),
    /// A chain thread panicked: a bug in Weir.
    #[error("a filter chain thread panicked; this is a bug in weir")]
    ChainPanicked,
}
