//! [`PluginError`]: why a plugin could not be loaded, configured or called.
//! The context (which plugin) is carried once; the [`PluginErrorKind`] says
//! what happened, as ripgrep's globset does with `Error { glob, kind }`.
//! The pipeline matches on the kind: load and configure errors stop
//! start-up (or refuse a reload); call errors dead-letter the batch and
//! recreate the instance.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// What went wrong with which plugin. Displayed as `plugin NAME: …`, or
/// `plugin NAME (FILE): …` when the file is at fault.
#[derive(Debug)]
pub struct PluginError {
    /// The filter's name.
    pub plugin: String,
    /// What happened.
    pub kind: PluginErrorKind,
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum PluginErrorKind {
    /// The file could not be read.
    #[error("cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid component.
    #[error("cannot compile: {reason}")]
    Compile {
        /// The file.
        path: PathBuf,
        /// The compiler's message.
        reason: String,
    },
    /// Built for another version of the contract, or not a filter at all.
    #[error("{reason}")]
    Contract {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming both versions.
        reason: String,
    },
    /// Instantiation failed (missing imports, a trap in start-up code).
    #[error("cannot instantiate: {0}")]
    Instantiate(String),
    /// The plugin refused its `config:` block.
    #[error("config{}: {message}", field.as_ref().map(|f| format!(" field `{f}`")).unwrap_or_default())]
    Configure {
        /// The offending key inside `config:`, if the plugin named one.
        field: Option<String>,
        /// The plugin's message.
        message: String,
    },
    /// The plugin refused a snapshot in `restore`.
    #[error("restore refused the saved state: {0}")]
    Restore(String),
    /// The plugin refused a whole batch (`process` returned `err`).
    #[error("refused the batch: {0}")]
    Refused(String),
    /// A call ran past its deadline and was interrupted.
    #[error("deadline of {deadline:?} exceeded in {call}")]
    Deadline {
        /// The configured deadline.
        deadline: Duration,
        /// Which export was running.
        call: &'static str,
    },
    /// A call tried to grow memory past the cap.
    #[error("memory cap of {limit} bytes exceeded in {call}")]
    MemoryCap {
        /// The configured cap, in bytes.
        limit: u64,
        /// Which export was running.
        call: &'static str,
    },
    /// A call trapped (a panic, an out-of-bounds access, ...).
    #[error("trapped in {call}: {reason}")]
    Trap {
        /// Which export was running.
        call: &'static str,
        /// The trap and, for a panic, the guest's message.
        reason: String,
    },
    /// The plugin returned something that breaks the contract.
    #[error("broke the contract in {call}: {reason}")]
    Misbehaved {
        /// Which export was running.
        call: &'static str,
        /// What was wrong.
        reason: String,
    },
}

impl PluginError {
    /// An error of `kind` for the plugin named `plugin`.
    pub fn new(plugin: impl Into<String>, kind: PluginErrorKind) -> Self {
        PluginError { plugin: plugin.into(), kind }
    }

    /// Whether the instance is unusable afterwards and must be recreated.
    pub fn poisons_instance(&self) -> bool {
        matches!(
            self.kind,
            PluginErrorKind::Deadline { .. } | PluginErrorKind::MemoryCap { .. } | PluginErrorKind::Trap { .. }
        )
    }

    /// A short, bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self.kind {
            PluginErrorKind::Read { .. } => "read",
            PluginErrorKind::Compile { .. } => "compile",
            PluginErrorKind::Contract { .. } => "contract",
            PluginErrorKind::Instantiate(_) => "instantiate",
            PluginErrorKind::Configure { .. } => "configure",
            PluginErrorKind::Restore(_) => "restore",
            PluginErrorKind::Refused(_) => "refused",
            PluginErrorKind::Deadline { .. } => "deadline",
            PluginErrorKind::MemoryCap { .. } => "memory",
            PluginErrorKind::Trap { .. } => "trap",
            PluginErrorKind::Misbehaved { .. } => "misbehaved",
        }
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            PluginErrorKind::Read { path, .. }
            | PluginErrorKind::Compile { path, .. }
            | PluginErrorKind::Contract { path, .. } => {
                write!(f, "plugin {} ({}): {}", self.plugin, path.display(), self.kind)
            }
            kind => write!(f, "plugin {}: {kind}", self.plugin),
        }
    }
}

impl std::error::Error for PluginError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            PluginErrorKind::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}
