//! Tests of `rules.rs`: compile-time refusals and matching.

use super::*;
use serde_json::{Value as Json, json};

/// The config example from the issue, in both modes.
pub(crate) fn example_config(mode: &str) -> String {
    format!(
        r#"{{"source": "message", "metric_tag": "metrics", "mode": "{mode}",
 "rules": [
   {{"metric": "response_time", "pattern": "txn=(?P<txn>\\w+) status=(?P<status>\\w+) resp_ms=(?P<ms>\\d+)", "value": {{"group": "ms", "type": "integer"}}, "labels": {{"groups": ["txn", "status"], "fields": ["os", {{"from": "app.version", "to": "app_version"}}]}}}},
   {{"metric": "page_load", "pattern": "page=(?P<page>\\S+) load=(?P<d>[0-9.]+(ms|s))", "value": {{"group": "d", "type": "duration", "unit": "ms"}}, "labels": {{"groups": ["page"]}}}}
 ]}}"#
    )
}

fn compile(json: &str) -> Result<RuleSet, ConfigError> {
    RuleSet::compile(&ExtractFilterConfig::from_json(json)?)
}

fn rules(json: &str) -> RuleSet {
    compile(json).expect("config should compile")
}

fn refusal(json: &str) -> (String, String) {
    let e = compile(json).expect_err("config should be refused");
    (e.field.unwrap_or_default(), e.message)
}

/// A one-rule config with `pattern` (JSON-escaped) and the rest given.
fn one_rule(pattern: &str, value: &str, labels: &str) -> String {
    format!(r#"{{"rules":[{{"metric":"m","pattern":"{pattern}","value":{value},"labels":{labels}}}]}}"#)
}

fn extract(rules: &RuleSet, body: &str) -> Extraction {
    rules.extract(&RecordView::new(body.as_bytes()))
}

fn metrics(extraction: &Extraction) -> Vec<Json> {
    extraction.metrics.iter().map(|m| serde_json::from_str(m).unwrap()).collect()
}

#[test]
fn the_issue_example_extracts_with_group_and_field_labels() {
    let rules = rules(&example_config("first"));
    let body = r#"{"message":"txn=pay status=OK resp_ms=231","os":"ios","app":{"version":"4.2.0"}}"#;
    let x = extract(&rules, body);
    assert!(x.has_source && x.matched && x.errors.is_empty());
    // Labels sorted by key, all strings.
    assert_eq!(
        x.metrics,
        vec![
            r#"{"metric":"response_time","value":231,"labels":{"app_version":"4.2.0","os":"ios","status":"OK","txn":"pay"}}"#
        ]
    );

    let x = extract(&rules, r#"{"message":"page=home load=1.2s"}"#);
    assert_eq!(metrics(&x), vec![json!({"metric": "page_load", "value": 1200.0, "labels": {"page": "home"}})]);
}

#[test]
fn missing_label_fields_are_left_out() {
    let rules = rules(&example_config("first"));
    let x = extract(&rules, r#"{"message":"txn=pay status=OK resp_ms=5","os":null}"#);
    assert_eq!(metrics(&x)[0]["labels"], json!({"status": "OK", "txn": "pay"}));
}

#[test]
fn first_mode_takes_the_first_rule_in_config_order_and_all_mode_takes_every_rule() {
    let config = |mode: &str| {
        format!(
            r#"{{"mode":"{mode}","rules":[
                {{"metric":"a","pattern":"x=(?P<v>\\d+)","value":{{"group":"v","type":"integer"}}}},
                {{"metric":"b","pattern":"y=(?P<v>\\d+)","value":{{"group":"v","type":"integer"}}}},
                {{"metric":"c","pattern":"(?P<v>\\d+)","value":{{"group":"v","type":"float"}}}}]}}"#
        )
    };
    // `y=` appears first in the text, but rule `a` comes first in the config.
    let body = r#"{"message":"y=2 x=1"}"#;
    let first = extract(&rules(&config("first")), body);
    assert_eq!(metrics(&first), vec![json!({"metric": "a", "value": 1, "labels": {}})]);

    let all = extract(&rules(&config("all")), body);
    assert_eq!(
        metrics(&all),
        vec![
            json!({"metric": "a", "value": 1, "labels": {}}),
            json!({"metric": "b", "value": 2, "labels": {}}),
            json!({"metric": "c", "value": 2.0, "labels": {}}),
        ]
    );
}

#[test]
fn unmatched_and_sourceless_records_yield_nothing() {
    let rules = rules(&example_config("all"));
    let x = extract(&rules, r#"{"message":"user tapped back"}"#);
    assert_eq!(x, Extraction { has_source: true, ..Extraction::default() });
    for body in [r#"{"msg":"txn=a status=b resp_ms=1"}"#, r#"{"message":42}"#, "not json", "[1]"] {
        assert_eq!(extract(&rules, body), Extraction::default(), "{body}");
    }
}

#[test]
fn a_bad_value_is_a_match_with_an_error_and_no_metric() {
    let rules = rules(&one_rule(r"resp_ms=(?P<ms>\\w+)", r#"{"group":"ms","type":"integer"}"#, "{}"));
    let x = extract(&rules, r#"{"message":"resp_ms=12x"}"#);
    assert!(x.matched);
    assert!(x.metrics.is_empty());
    assert_eq!(x.errors, vec![r#"rules[0] (m): group ms: "12x" is not an integer"#]);
}

#[test]
fn in_first_mode_a_bad_value_does_not_fall_through_to_later_rules() {
    let rules = rules(
        r#"{"rules":[
            {"metric":"a","pattern":"v=(?P<v>\\S+)","value":{"group":"v","type":"integer"}},
            {"metric":"b","pattern":"v=(?P<v>\\S+)","value":{"group":"v","type":"float"}}]}"#,
    );
    let x = extract(&rules, r#"{"message":"v=1.5"}"#);
    assert!(x.metrics.is_empty());
    assert_eq!(x.errors.len(), 1);
}

#[test]
fn an_optional_value_group_that_did_not_match_is_an_error() {
    let rules = rules(&one_rule(r"t(?P<v>\\d+)?", r#"{"group":"v","type":"integer"}"#, "{}"));
    let x = extract(&rules, r#"{"message":"t"}"#);
    assert_eq!(x.errors, vec!["rules[0] (m): group v: did not take part in the match"]);
}

#[test]
fn rules_may_read_their_own_source() {
    let rules = rules(
        r#"{"rules":[
            {"metric":"cold_start","source":"ctx.event","pattern":"cold_start=(?P<d>\\S+)","value":{"group":"d","type":"duration","unit":"s"}},
            {"metric":"render","pattern":"render=(?P<d>\\S+)","value":{"group":"d","type":"duration"}}]}"#,
    );
    let x = extract(&rules, r#"{"ctx":{"event":"cold_start=1500ms"}}"#);
    assert_eq!(metrics(&x), vec![json!({"metric": "cold_start", "value": 1.5, "labels": {}})]);
    // Default unit is ms.
    let x = extract(&rules, r#"{"message":"render=2s"}"#);
    assert_eq!(metrics(&x)[0]["value"], json!(2000.0));
}

#[test]
fn an_invalid_pattern_names_the_rule_and_the_position() {
    assert_eq!(
        refusal(&one_rule("a(b", r#"{"group":"v","type":"integer"}"#, "{}")),
        ("rules[0].pattern".into(), "unclosed group at 1".into())
    );
    // The third rule; the position counts characters of the unescaped pattern.
    let config = r#"{"rules":[
        {"metric":"a","pattern":"(?P<v>1)","value":{"group":"v","type":"integer"}},
        {"metric":"b","pattern":"(?P<v>2)","value":{"group":"v","type":"integer"}},
        {"metric":"c","pattern":"txn=(?P<t>\\w+)(?P<v>\\d+","value":{"group":"v","type":"integer"}}]}"#;
    assert_eq!(refusal(config), ("rules[2].pattern".into(), "unclosed group at 14".into()));
    assert_eq!(
        refusal(&one_rule("é+(", r#"{"group":"v","type":"integer"}"#, "{}")),
        ("rules[0].pattern".into(), "unclosed group at 2".into())
    );
    assert_eq!(
        refusal(&one_rule("ab)", r#"{"group":"v","type":"integer"}"#, "{}")),
        ("rules[0].pattern".into(), "unopened group at 2".into())
    );
    assert_eq!(
        refusal(&one_rule("x{2,1}", r#"{"group":"v","type":"integer"}"#, "{}")),
        ("rules[0].pattern".into(), "invalid repetition count range, the start must be <= the end at 1".into())
    );
}

#[test]
fn value_and_label_groups_must_exist_in_the_pattern() {
    assert_eq!(
        refusal(&one_rule(r"(?P<ms>\\d+)", r#"{"group":"v","type":"integer"}"#, "{}")),
        ("rules[0].value.group".into(), r#"group "v" is not in the pattern"#.into())
    );
    assert_eq!(
        refusal(&one_rule(r"(?P<v>\\d+)", r#"{"group":"v","type":"integer"}"#, r#"{"groups":["v","os"]}"#)),
        ("rules[0].labels.groups[1]".into(), r#"group "os" is not in the pattern"#.into())
    );
}

#[test]
fn units_are_checked() {
    assert_eq!(
        refusal(&one_rule(r"(?P<v>\\S+)", r#"{"group":"v","type":"duration","unit":"sec"}"#, "{}")),
        ("rules[0].value.unit".into(), r#"unknown unit "sec", expected one of ns, us, ms, s, m, h"#.into())
    );
    assert_eq!(
        refusal(&one_rule(r"(?P<v>\\S+)", r#"{"group":"v","type":"integer","unit":"ms"}"#, "{}")),
        ("rules[0].value.unit".into(), "unit applies only to type duration".into())
    );
    for unit in ["ns", "us", "µs", "ms", "s", "m", "h"] {
        let value = format!(r#"{{"group":"v","type":"duration","unit":"{unit}"}}"#);
        assert!(compile(&one_rule(r"(?P<v>\\S+)", &value, "{}")).is_ok(), "{unit}");
    }
}

#[test]
fn labels_must_not_clash_and_paths_must_be_sane() {
    assert_eq!(
        refusal(&one_rule(
            r"(?P<v>\\d+) (?P<os>\\w+)",
            r#"{"group":"v","type":"integer"}"#,
            r#"{"groups":["os"],"fields":["os"]}"#
        )),
        ("rules[0].labels.fields[0]".into(), r#"label "os" is already set by rules[0].labels.groups[0]"#.into())
    );
    assert_eq!(
        refusal(&one_rule(r"(?P<v>\\d+)", r#"{"group":"v","type":"integer"}"#, r#"{"fields":["a..b"]}"#)),
        ("rules[0].labels.fields[0]".into(), r#"invalid field path "a..b": empty segment"#.into())
    );
    assert_eq!(
        refusal(&one_rule(r"(?P<v>\\d+)", r#"{"group":"v","type":"integer"}"#, r#"{"fields":[{"from":"a","to":""}]}"#)),
        ("rules[0].labels.fields[0].to".into(), "label name is empty".into())
    );
    let (field, _) = refusal(
        r#"{"source":"","rules":[{"metric":"m","pattern":"(?P<v>1)","value":{"group":"v","type":"integer"}}]}"#,
    );
    assert_eq!(field, "source");
    assert_eq!(refusal(r#"{"rules":[]}"#), ("rules".into(), "at least one rule is needed".into()));
    let (field, _) =
        refusal(r#"{"rules":[{"metric":"","pattern":"(?P<v>1)","value":{"group":"v","type":"integer"}}]}"#);
    assert_eq!(field, "rules[0].metric");
}

/// Try every rule in config order, without the `RegexSet`: what `extract`
/// must agree with.
fn extract_naive(rules: &RuleSet, body: &str) -> Extraction {
    let record = RecordView::new(body.as_bytes());
    let mut extraction = Extraction::default();
    for rule in 0..rules.rules.len() {
        let group = rules.sources.iter().find(|g| g.rules.contains(&rule)).unwrap();
        let Some(text) = record.lookup_str(&group.path) else {
            continue;
        };
        extraction.has_source = true;
        if rules.rules[rule].apply(&text, &record, &mut extraction, None) && rules.mode == Mode::First {
            break;
        }
    }
    if !extraction.has_source {
        extraction.has_source = rules.sources.iter().any(|g| record.lookup_str(&g.path).is_some());
    }
    extraction
}

#[test]
fn the_regex_set_prefilter_agrees_with_trying_every_rule() {
    // Overlapping rules over two sources, some values failing to parse.
    let config = |mode: &str| {
        format!(
            r#"{{"mode":"{mode}","rules":[
            {{"metric":"r0","pattern":"a=(?P<v>\\d+)","value":{{"group":"v","type":"integer"}}}},
            {{"metric":"r1","pattern":"(?P<k>[ab])=(?P<v>\\w+)","value":{{"group":"v","type":"integer"}},"labels":{{"groups":["k"]}}}},
            {{"metric":"r2","source":"alt","pattern":"b=(?P<v>[0-9.]+(ms|s|h))","value":{{"group":"v","type":"duration"}}}},
            {{"metric":"r3","pattern":"^c(?P<v>\\d*)","value":{{"group":"v","type":"float"}},"labels":{{}}}},
            {{"metric":"r4","pattern":"(?P<v>\\d+)ms$","value":{{"group":"v","type":"float"}},"labels":{{"fields":["os"]}}}},
            {{"metric":"r5","source":"alt","pattern":"z+(?P<v>\\d)?","value":{{"group":"v","type":"integer"}}}}]}}"#
        )
    };
    let tokens = ["a=", "b=", "c", "z", "1", "23", ".5", "ms", "s", "h", "x", " ", "=", "9"];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |bound: usize| {
        // xorshift64*: deterministic, so a failure reproduces.
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % bound
    };
    for mode in ["first", "all"] {
        let rules = rules(&config(mode));
        let mut seen_matches = 0;
        for _ in 0..3000 {
            let text = |next: &mut dyn FnMut(usize) -> usize, n: usize| {
                (0..n).map(|_| tokens[next(tokens.len())]).collect::<String>()
            };
            let (message_len, alt_len) = (1 + next(8), next(6));
            let message = text(&mut next, message_len);
            let alt = text(&mut next, alt_len);
            let body = match next(4) {
                0 => json!({"message": message, "os": "android"}),
                1 => json!({"alt": alt}),
                2 => json!({"message": message, "alt": alt}),
                _ => json!({"other": 1}),
            }
            .to_string();
            let fast = extract(&rules, &body);
            assert_eq!(fast, extract_naive(&rules, &body), "mode {mode}, body {body}");
            seen_matches += usize::from(fast.matched);
        }
        assert!(seen_matches > 500, "the random bodies should often match, got {seen_matches}");
    }
}

#[test]
fn explain_says_which_rule_matched_where_in_characters() {
    let config = example_config("all").replacen('{', r#"{"explain": true, "#, 1);
    let explaining = rules(&config);
    // "é" is two bytes: offsets count characters, as pattern errors do.
    let x = extract(&explaining, r#"{"message":"é txn=pay status=OK resp_ms=231 page=home load=5ms","os":"ios"}"#);
    let m = metrics(&x);
    assert_eq!(
        m[0]["match"],
        json!({"rule": 0, "source": "message", "start": 2, "end": 31,
               "groups": {"txn": [6, 9], "status": [17, 19], "ms": [28, 31]}})
    );
    assert_eq!(m[1]["match"]["rule"], 1);
    assert_eq!(m[1]["match"]["groups"], json!({"page": [37, 41], "d": [47, 50]}));
    assert_eq!(m[0]["value"], 231, "the rest of the record is as without explain");

    let quiet = rules(&example_config("all"));
    let x = extract(&quiet, r#"{"message":"txn=pay status=OK resp_ms=231"}"#);
    assert!(metrics(&x)[0].get("match").is_none(), "off by default");
}
