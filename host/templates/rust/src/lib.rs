//! `{{name}}`: a Weir filter. It marks every record with
//! `"seen_by": "{{name}}"` and drops the records whose `level` is the
//! configured `drop_level`; a body that is not a JSON object is rejected
//! (dead-lettered with the reason).
//!
//! The Weir plugin guide (wit/README.md in Weir's repository) explains the
//! contract; `tests.yaml` holds this filter's tests (`weir test tests.yaml`).

use serde::Deserialize;
use weir_plugin_sdk::{BatchResult, ConfigError, Emitted, Event, Filter, ObjectWriter, Rejected};
use weir_plugin_sdk::{as_str, config, host, lookup};

/// The `config:` block, such as `{"drop_level": "debug"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct {{name_camel}} {
    /// Records whose `level` is this are dropped. Default: none are.
    drop_level: Option<String>,
}

impl Filter for {{name_camel}} {
    fn configure(config: &str) -> Result<Self, ConfigError> {
        // `{"drop_level": 3}` fails with field `drop_level` and the message
        // "invalid type: integer `3`, expected a string".
        config::parse(config)
    }

    fn process(&mut self, events: Vec<Event>) -> Result<BatchResult, String> {
        let mut result = BatchResult { emitted: Vec::with_capacity(events.len()), rejected: Vec::new() };
        let mut dropped = 0;
        for (index, event) in (0..).zip(events) {
            // Borrowed lookup: no DOM is built.
            let level = lookup(&event.body, "level").and_then(as_str);
            if level.is_some() && level.as_deref() == self.drop_level.as_deref() {
                // Neither emitted nor rejected: acknowledged as consumed.
                dropped += 1;
                continue;
            }
            match ObjectWriter::extend(&event.body, 24) {
                Ok(mut body) => {
                    body.str("seen_by", "{{name}}");
                    let event = Event { body: body.finish(), ..event };
                    result.emitted.push(Emitted { parent: Some(index), event });
                }
                Err(e) => result.rejected.push(Rejected { index, reason: e.to_string() }),
            }
        }
        // Once per batch, never per record.
        host::counter_add("dropped", dropped);
        Ok(result)
    }
}

weir_plugin_sdk::export_filter!({{name_camel}});
