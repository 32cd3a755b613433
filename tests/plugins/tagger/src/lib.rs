//! A test filter for reload tests. Each "version" is a config: it retags
//! every event with `tag` and adds `"version": <version>` and `"seen": N`,
//! where N counts the events this filter has processed, across instances:
//! `snapshot`/`restore` carry the count, so a reload that loses or skips
//! the handover shows up as a gap. `trap_on_restore: true` makes `restore`
//! trap, to test that a failed handover keeps the old version running.
//! Not a real filter; never shipped.

#![forbid(unsafe_code)]

use serde::Deserialize;
use weir_plugin_sdk::{BatchResult, ConfigError, Emitted, Event, Filter, ObjectWriter, Rejected, config};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaggerConfig {
    tag: String,
    version: String,
    #[serde(default)]
    trap_on_restore: bool,
}

/// The filter: its config and the count of events seen so far.
struct Tagger {
    config: TaggerConfig,
    seen: u64,
}

impl Filter for Tagger {
    fn configure(config: &str) -> Result<Self, ConfigError> {
        Ok(Self { config: config::parse(config)?, seen: 0 })
    }

    fn process(&mut self, events: Vec<Event>) -> Result<BatchResult, String> {
        let TaggerConfig { tag, version, .. } = &self.config;
        let mut emitted = Vec::with_capacity(events.len());
        let mut rejected = Vec::new();
        for (i, event) in events.into_iter().enumerate() {
            self.seen += 1;
            match ObjectWriter::extend(&event.body, 48) {
                Ok(mut body) => {
                    body.str("version", version).i64("seen", self.seen as i64);
                    emitted.push(Emitted {
                        parent: Some(i as u32),
                        event: Event { time: event.time, tag: tag.clone(), body: body.finish() },
                    });
                }
                Err(e) => rejected.push(Rejected { index: i as u32, reason: e.to_string() }),
            }
        }
        Ok(BatchResult { emitted, rejected })
    }

    fn snapshot(&self) -> Vec<u8> {
        self.seen.to_string().into_bytes()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        if self.config.trap_on_restore {
            panic!("restore trapped on purpose");
        }
        if state.is_empty() {
            return Ok(());
        }
        let text = std::str::from_utf8(state).map_err(|e| format!("state is not UTF-8: {e}"))?;
        self.seen = text.parse().map_err(|e| format!("state {text:?} is not a count: {e}"))?;
        Ok(())
    }
}

weir_plugin_sdk::export_filter!(Tagger);
