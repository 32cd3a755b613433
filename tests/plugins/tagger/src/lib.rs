//! A test filter for reload tests. Each "version" is a config: it retags
//! every event with `tag` and adds `"version": <version>` and `"seen": N`,
//! where N counts the events this filter has processed, across instances:
//! `snapshot`/`restore` carry the count, so a reload that loses or skips
//! the handover shows up as a gap. `trap_on_restore: true` makes `restore`
//! trap, to test that a failed handover keeps the old version running.
//! Not a real filter; never shipped.

use std::sync::Mutex;

use serde::Deserialize;
use weir_plugin_sdk::ObjectWriter;

wit_bindgen::generate!({ path: "../../../wit", world: "filter" });

use exports::weir::filter::plugin::Guest;
use weir::filter::types::{BatchResult, ConfigError, Emitted, Event, Rejected, Timestamp};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaggerConfig {
    tag: String,
    version: String,
    #[serde(default)]
    trap_on_restore: bool,
}

struct State {
    config: Option<TaggerConfig>,
    seen: u64,
}

/// A component instance is single-threaded; the mutex only satisfies `static`.
static STATE: Mutex<State> = Mutex::new(State { config: None, seen: 0 });

fn state() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Tagger;

impl Guest for Tagger {
    fn configure(config: String) -> Result<(), ConfigError> {
        let parsed: TaggerConfig = serde_json::from_str(&config).map_err(|e| {
            let text = e.to_string();
            let field = ["tag", "version", "trap_on_restore"]
                .into_iter()
                .find(|f| text.contains(&format!("`{f}`")))
                .map(String::from);
            ConfigError { field, message: text }
        })?;
        state().config = Some(parsed);
        Ok(())
    }

    fn process(events: Vec<Event>) -> Result<BatchResult, String> {
        let mut state = state();
        let (tag, version) = match &state.config {
            Some(c) => (c.tag.clone(), c.version.clone()),
            None => return Err("not configured".into()),
        };
        let mut emitted = Vec::with_capacity(events.len());
        let mut rejected = Vec::new();
        for (i, event) in events.into_iter().enumerate() {
            state.seen += 1;
            match ObjectWriter::extend(&event.body, 48) {
                Ok(mut body) => {
                    body.str("version", &version).i64("seen", state.seen as i64);
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

    fn tick(_now: Timestamp) -> Vec<Event> {
        Vec::new()
    }

    fn snapshot() -> Vec<u8> {
        state().seen.to_string().into_bytes()
    }

    fn restore(bytes: Vec<u8>) -> Result<(), String> {
        let mut state = state();
        if state.config.as_ref().is_some_and(|c| c.trap_on_restore) {
            panic!("restore trapped on purpose");
        }
        if bytes.is_empty() {
            return Ok(());
        }
        let text = std::str::from_utf8(&bytes).map_err(|e| format!("state is not UTF-8: {e}"))?;
        state.seen = text.parse().map_err(|e| format!("state {text:?} is not a count: {e}"))?;
        Ok(())
    }
}

// Only the component exports the WIT names; they cannot link natively.
#[cfg(target_arch = "wasm32")]
export!(Tagger);
