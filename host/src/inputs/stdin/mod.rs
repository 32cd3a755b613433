//! `type: stdin`: reads standard input to its end, one record per line.

use serde::Deserialize;

use super::lines::{DEFAULT_MAX_LINE_BYTES, LineDecoder, LineFormat, read_to_end};
use super::{Input, InputContext, InputError};

/// Settings of the `stdin` input.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdinInputConfig {
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

pub(crate) fn default_message_key() -> String {
    "message".into()
}

pub(crate) fn default_max_line_bytes() -> usize {
    DEFAULT_MAX_LINE_BYTES
}

/// Reads standard input.
pub struct StdinInput {
    config: StdinInputConfig,
}

impl StdinInput {
    /// Build from settings.
    pub fn new(config: StdinInputConfig) -> Self {
        StdinInput { config }
    }
}

#[async_trait::async_trait]
impl Input for StdinInput {
    async fn run(self: Box<Self>, ctx: InputContext) -> Result<(), InputError> {
        let c = self.config;
        ctx.listening();
        let mut decoder =
            LineDecoder::new(c.format, c.message_key, c.max_line_bytes, "stdin".into(), format!("input {}", ctx.name));
        // A closed pipeline means shutdown; nothing more to read for.
        let _ = read_to_end(tokio::io::stdin(), &mut decoder, &ctx)
            .await
            .map_err(|source| InputError::io(&*ctx.name, "reading stdin", source))?;
        Ok(())
    }
}
