//! `type: blackhole`: accepts and discards every record, counting them. For
//! benchmarks and for routing records deliberately nowhere (Vector's name).

use serde::Deserialize;

use super::{Output, OutputError, WriteReport};
use crate::core::record::Record;

/// Settings of the `blackhole` output: none.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlackholeOutputConfig {}

/// Discards records; they count as delivered.
pub struct BlackholeOutput;

#[async_trait::async_trait]
impl Output for BlackholeOutput {
    async fn write(&mut self, _batch: &[Record]) -> Result<WriteReport, OutputError> {
        Ok(WriteReport::default())
    }
}
