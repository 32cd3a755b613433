//! [`PluginError`]: why a plugin could not be loaded, configured or called.
//! The pipeline matches on it: load and configure errors stop start-up (or
//! refuse a reload); call errors dead-letter the batch and recreate the
//! instance.

use std::path::PathBuf;
use std::time::Duration;

/// What went wrong with a plugin. Messages name the plugin and its file.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The file could not be read.
    #[error("plugin {plugin} ({}): cannot read: {source}", path.display())]
    Read {
        /// The filter's name.
        plugin: String,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid component.
    #[error("plugin {plugin} ({}): cannot compile: {reason}", path.display())]
    Compile {
        /// The filter's name.
        plugin: String,
        /// The file.
        path: PathBuf,
        /// The compiler's message.
        reason: String,
    },
    /// Built for another version of the contract, or not a filter at all.
    #[error("plugin {plugin} ({}): {reason}", path.display())]
    Contract {
        /// The filter's name.
        plugin: String,
        /// The file.
        path: PathBuf,
        /// What is wrong, naming both versions.
        reason: String,
    },
    /// Instantiation failed (missing imports, a trap in start-up code).
    #[error("plugin {plugin}: cannot instantiate: {reason}")]
    Instantiate {
        /// The filter's name.
        plugin: String,
        /// Why.
        reason: String,
    },
    /// The plugin refused its `config:` block.
    #[error("plugin {plugin}: config{}: {message}", field.as_ref().map(|f| format!(" field `{f}`")).unwrap_or_default())]
    Configure {
        /// The filter's name.
        plugin: String,
        /// The offending key inside `config:`, if the plugin named one.
        field: Option<String>,
        /// The plugin's message.
        message: String,
    },
    /// The plugin refused a snapshot in `restore`.
    #[error("plugin {plugin}: restore refused the saved state: {message}")]
    Restore {
        /// The filter's name.
        plugin: String,
        /// The plugin's message.
        message: String,
    },
    /// The plugin refused a whole batch (`process` returned `err`).
    #[error("plugin {plugin}: refused the batch: {message}")]
    Refused {
        /// The filter's name.
        plugin: String,
        /// The plugin's message.
        message: String,
    },
    /// A call ran past its deadline and was interrupted.
    #[error("plugin {plugin}: deadline of {deadline:?} exceeded in {call}")]
    Deadline {
        /// The filter's name.
        plugin: String,
        /// The configured deadline.
        deadline: Duration,
        /// Which export was running.
        call: &'static str,
    },
    /// A call tried to grow memory past the cap.
    #[error("plugin {plugin}: memory cap of {limit} bytes exceeded in {call}")]
    MemoryCap {
        /// The filter's name.
        plugin: String,
        /// The configured cap.
        limit: u64,
        /// Which export was running.
        call: &'static str,
    },
    /// A call trapped (a panic, an out-of-bounds access, ...).
    #[error("plugin {plugin}: trapped in {call}: {reason}")]
    Trap {
        /// The filter's name.
        plugin: String,
        /// Which export was running.
        call: &'static str,
        /// The trap and, for a panic, the guest's message.
        reason: String,
    },
    /// The plugin returned something that breaks the contract.
    #[error("plugin {plugin}: broke the contract in {call}: {reason}")]
    Misbehaved {
        /// The filter's name.
        plugin: String,
        /// Which export was running.
        call: &'static str,
        /// What was wrong.
        reason: String,
    },
}

impl PluginError {
    /// Whether the instance is unusable afterwards and must be recreated.
    pub fn poisons_instance(&self) -> bool {
        matches!(self, PluginError::Deadline { .. } | PluginError::MemoryCap { .. } | PluginError::Trap { .. })
    }

    /// A short, bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            PluginError::Read { .. } => "read",
            PluginError::Compile { .. } => "compile",
            PluginError::Contract { .. } => "contract",
            PluginError::Instantiate { .. } => "instantiate",
            PluginError::Configure { .. } => "configure",
            PluginError::Restore { .. } => "restore",
            PluginError::Refused { .. } => "refused",
            PluginError::Deadline { .. } => "deadline",
            PluginError::MemoryCap { .. } => "memory",
            PluginError::Trap { .. } => "trap",
            PluginError::Misbehaved { .. } => "misbehaved",
        }
    }
}
