//! [`ConfigError`]: every way a config can be wrong, each naming the file,
//! the line and column, the key and what was expected.

use std::path::PathBuf;

/// A config that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read config: {source}", path.display())]
    Read {
        /// The config file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config is malformed or fails validation.
    #[error("{}{}{}: {message}", file.display(), position.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default(), if key.is_empty() { String::new() } else { format!(": {key}") })]
    Invalid {
        /// The config file.
        file: PathBuf,
        /// 1-based line and column, when known.
        position: Option<(usize, usize)>,
        /// The key path, e.g. `outputs[0].match`; empty for the whole file.
        key: String,
        /// What is wrong and what was expected.
        message: String,
    },
}
