//! Entry point for the `extract_rules` fuzz target under `fuzz/plugins/`
//! (`just fuzz`), replayed on the inputs that once crashed it by this
//! crate's tests (`fuzz/plugins/regressions/`). It panics only when the
//! code under it does, or when a record it emits is not one JSON object.

use crate::filter::{Event, ExtractFilter};

/// Rules of each value type and both modes; the last takes its pattern
/// from the fuzzer.
const CONFIGS: &[&str] = &[
    r#"{"metric_tag":"metrics","mode":"first","rules":[
      {"metric":"response_time","pattern":"txn=(?P<txn>\\w+) status=(?P<status>\\w+) resp_ms=(?P<ms>\\d+)","value":{"group":"ms","type":"integer"},"labels":{"groups":["txn","status"],"fields":["os",{"from":"app.version","to":"app_version"}]}},
      {"metric":"page_load","pattern":"page=(?P<page>\\S+) load=(?P<d>[0-9.]+(ms|s))","value":{"group":"d","type":"duration","unit":"ms"},"labels":{"groups":["page"]}}]}"#,
    r#"{"metric_tag":"metrics","mode":"all","rules":[
      {"metric":"ratio","pattern":"(?P<v>[-+0-9.eE]+)","value":{"group":"v","type":"float"}},
      {"metric":"took","pattern":"took (?P<d>\\S+)","value":{"group":"d","type":"duration","unit":"s"}},
      {"metric":"n","pattern":"n=(?P<n>-?\\d+)","value":{"group":"n","type":"integer"}}]}"#,
];

/// A statement: the first byte picks a config and whether the rest is a
/// record body or a `message`; with its top bit set, the rest up to the
/// first newline is a rule's pattern and what follows the statement.
pub fn rules(data: &[u8]) {
    // Configured once: compiling their regexes would take most of each run.
    static CONFIGURED: std::sync::OnceLock<Vec<ExtractFilter>> = std::sync::OnceLock::new();
    let configured = CONFIGURED.get_or_init(|| {
        CONFIGS.iter().map(|c| ExtractFilter::configure(c).expect("the fuzzed configs are valid")).collect()
    });
    let Some((&pick, rest)) = data.split_first() else { return };
    let own;
    let (filter, statement) = if pick & 0x80 != 0 {
        let Ok(text) = std::str::from_utf8(rest) else { return };
        let (pattern, statement) = text.split_once('\n').unwrap_or((text, ""));
        let rule = serde_json::json!({ "rules": [{ "metric": "m", "pattern": pattern, "value": { "group": "v", "type": "float" } }] });
        let Ok(filter) = ExtractFilter::configure(&rule.to_string()) else { return };
        own = filter;
        (&own, statement.as_bytes())
    } else {
        (&configured[usize::from(pick) % configured.len()], rest)
    };
    let message =
        serde_json::json!({ "message": String::from_utf8_lossy(statement), "os": "ios", "app": { "version": "4.2" } });
    let body = if pick & 1 == 0 { statement.to_vec() } else { message.to_string().into_bytes() };
    let (emitted, _) = filter.process(vec![Event { time: 0, tag: "app".into(), body: body.clone() }]);
    for record in emitted.iter().skip(1) {
        let value: serde_json::Value = serde_json::from_slice(&record.event.body).expect("a metric is JSON");
        assert!(value.is_object(), "a metric is an object: {value}");
    }
    if serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&body).is_ok()
        && let Some(first) = emitted.first()
    {
        serde_json::from_slice::<serde_json::Value>(&first.event.body).expect("an enriched object stays JSON");
    }
}

/// The targets, by name, as `fuzz/plugins/fuzz_targets/NAME.rs` calls them.
pub const TARGETS: &[weir_plugin_sdk::fuzz::Target] = &[("extract_rules", rules)];

#[cfg(test)]
mod tests {
    /// Every input that once crashed the target, and its committed corpus,
    /// replayed through the same entry point.
    #[test]
    fn inputs_that_crashed_the_fuzz_target_no_longer_do() {
        weir_plugin_sdk::fuzz::replay(env!("CARGO_MANIFEST_DIR"), super::TARGETS);
    }
}
