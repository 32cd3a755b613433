//! Entry points for the fuzz targets under `fuzz/plugins/` (`just fuzz`),
//! replayed on the inputs that once crashed them by this crate's tests
//! (`fuzz/plugins/regressions/`): the fuzzer and the tests call the same
//! functions. Each takes arbitrary bytes and panics only when the code
//! under it does, or when a statement it emits is not one JSON object.

use crate::chunk::{Chunk, split_batch};
use crate::config::SplitFilterConfig;
use crate::time::TimeFormat;

/// The host clock the fuzzed statements are read against (2026-11-22).
const NOW: i64 = 1_795_000_000_000_000_000;

/// Configs covering each way of finding a statement's time.
const CONFIGS: &[&str] = &[
    r#"{}"#,
    r#"{"context":["app",{"from":"device.os","to":"os"}],"time":{"regex":"^(?P<time>\\S+)"}}"#,
    r#"{"time":{"regex":"^\\[(?P<time>[^\\]]+)\\]","format":"%d/%b %H:%M:%S"},"on_missing_time":"dead_letter"}"#,
    r#"{"time":{"delimiter":"|","position":1,"format":"unix"},"multiline":false}"#,
    r#"{"time":{"field":"ts","format":"unix_ms"},"message_key":"msg","time_missing_key":"late"}"#,
    r#"{"field":"a.b","time":{"field":"t","delimiter":" ","format":"%H:%M:%S%.f"}}"#,
];

/// Time formats, then arbitrary ones.
const FORMATS: &[&str] = &["rfc3339", "unix", "unix_ms", "%Y-%m-%d %H:%M:%S", "%b %e %H:%M:%S", "%H:%M:%S%.3f", "%s"];

/// A chunk's body: the first byte picks a config, the rest is the chunk.
pub fn chunk(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else { return };
    let config =
        SplitFilterConfig::from_json(CONFIGS[usize::from(pick) % CONFIGS.len()]).expect("the fuzzed configs are valid");
    let chunks = [Chunk { time: NOW, tag: "app", body }, Chunk { time: 0, tag: "app", body }];
    let outcome = split_batch(&config, chunks, NOW);
    for statement in &outcome.emitted {
        // Well-formed JSON (RFC 8259), read as syntax: a number beyond f64's
        // range is valid JSON that `serde_json::Value` refuses, and a
        // statement carries it as the chunk did.
        let raw: &serde_json::value::RawValue =
            serde_json::from_slice(&statement.body).expect("a statement is well-formed JSON");
        assert!(raw.get().starts_with('{'), "a statement is an object: {}", raw.get());
    }
}

/// Time text: the first byte picks a format, or, past the list, the text
/// up to the first newline is a strftime format of its own.
pub fn time(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else { return };
    let Ok(rest) = std::str::from_utf8(rest) else { return };
    let (format, text) = match FORMATS.get(usize::from(pick)) {
        Some(format) => (*format, rest),
        None => rest.split_once('\n').unwrap_or((rest, "")),
    };
    let Ok(format) = TimeFormat::from_config(format) else { return };
    for now in [NOW, 0, i64::MIN, i64::MAX] {
        let _ = format.parse_text(text, now);
        if let Ok(raw) = serde_json::from_str::<&serde_json::value::RawValue>(text) {
            let _ = format.parse_json(raw, now);
        }
    }
}

/// The targets, by name, as `fuzz/plugins/fuzz_targets/NAME.rs` calls them.
pub const TARGETS: &[weir_plugin_sdk::fuzz::Target] = &[("split_chunk", chunk), ("split_time", time)];

#[cfg(test)]
mod tests {
    /// Every input that once crashed a target, and its committed corpus,
    /// replayed through the same entry point.
    #[test]
    fn inputs_that_crashed_the_fuzz_targets_no_longer_do() {
        weir_plugin_sdk::fuzz::replay(env!("CARGO_MANIFEST_DIR"), super::TARGETS);
    }
}
