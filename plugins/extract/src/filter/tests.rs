//! Tests of `filter.rs`: whole `process` calls on canned batches.

use super::*;
use crate::rules::tests::example_config;
use serde_json::{Value as Json, json};

fn event(time: i64, body: &str) -> Event {
    Event { time, tag: "app.logs".into(), body: body.as_bytes().to_vec() }
}

fn parse(e: &Emitted) -> Json {
    serde_json::from_slice(&e.event.body).unwrap()
}

#[test]
fn a_match_enriches_the_raw_record_and_emits_a_tagged_metric() {
    let filter = ExtractFilter::configure(&example_config("first")).unwrap();
    let raw = r#"{"message":"txn=pay status=OK resp_ms=231","os":"ios","app":{"version":"4.2.0"}}"#;
    let (out, counts) = filter.process(vec![event(1_700_000_000_000_000_000, raw)]);
    assert_eq!(out.len(), 2);

    // The raw record keeps its time, tag and parent; its bytes are kept and the
    // extraction spliced in before the closing brace.
    assert_eq!(out[0].parent, 0);
    assert_eq!(out[0].event.tag, "app.logs");
    assert_eq!(out[0].event.time, 1_700_000_000_000_000_000);
    let metric = r#"{"metric":"response_time","value":231,"labels":{"app_version":"4.2.0","os":"ios","status":"OK","txn":"pay"}}"#;
    assert_eq!(
        std::str::from_utf8(&out[0].event.body).unwrap(),
        format!(r#"{},"extract":{metric}}}"#, &raw[..raw.len() - 1])
    );

    // The metric record: exactly the body `percentiles` consumes.
    assert_eq!(out[1].parent, 0);
    assert_eq!(out[1].event.tag, "metrics");
    assert_eq!(out[1].event.time, 1_700_000_000_000_000_000);
    assert_eq!(std::str::from_utf8(&out[1].event.body).unwrap(), metric);

    assert_eq!(counts, Counts { records: 1, matched: 1, metrics: 1, ..Counts::default() });
}

#[test]
fn unmatched_and_sourceless_records_pass_through_untouched_and_are_counted() {
    let filter = ExtractFilter::configure(&example_config("first")).unwrap();
    let batch = vec![
        event(1, r#"{"message":"user tapped back","os":"ios"}"#),
        event(2, r#"{"level":"info"}"#),
        event(3, r#"{"message":{"nested":true}}"#),
        event(4, "not json at all"),
        event(5, r#"{"message":"page=home load=80ms"}"#),
    ];
    let (out, counts) = filter.process(batch.clone());
    let raws: Vec<&Emitted> = out.iter().filter(|e| e.event.tag == "app.logs").collect();
    assert_eq!(raws.len(), 5);
    for (i, raw) in raws.iter().take(4).enumerate() {
        assert_eq!(raw.parent, i as u32);
        assert_eq!(raw.event, batch[i], "record {i} should be untouched");
    }
    assert_eq!(out.last().unwrap().parent, 4);
    assert_eq!(counts, Counts { records: 5, matched: 1, unmatched: 1, no_source: 3, value_errors: 0, metrics: 1 });
}

#[test]
fn a_bad_value_passes_the_record_on_with_the_reason_and_no_metric() {
    let filter = ExtractFilter::configure(
        r#"{"rules":[{"metric":"response_time","pattern":"resp_ms=(?P<ms>\\S+)","value":{"group":"ms","type":"integer"}}]}"#,
    )
    .unwrap();
    let (out, counts) = filter.process(vec![event(9, r#"{"message":"resp_ms=12x"}"#)]);
    assert_eq!(out.len(), 1);
    assert_eq!(
        parse(&out[0]),
        json!({"message": "resp_ms=12x",
               "extract_error": "rules[0] (response_time): group ms: \"12x\" is not an integer"})
    );
    assert_eq!(counts, Counts { records: 1, matched: 1, value_errors: 1, ..Counts::default() });
}

#[test]
fn all_mode_emits_one_metric_per_match_and_an_array_on_the_raw_record() {
    let filter = ExtractFilter::configure(
        r#"{"mode":"all","metric_tag":"m","enrich_field":"metrics_found","rules":[
            {"metric":"render","pattern":"render=(?P<d>\\S+)","value":{"group":"d","type":"duration","unit":"ms"}},
            {"metric":"frames","pattern":"frames=(?P<n>\\S+)","value":{"group":"n","type":"integer"}},
            {"metric":"fps","pattern":"fps=(?P<n>\\S+)","value":{"group":"n","type":"float"},"labels":{"fields":[{"from":"device.os","to":"os"}]}}]}"#,
    )
    .unwrap();
    let (out, counts) = filter.process(vec![
        event(1, r#"{"message":"render=0.25s frames=oops fps=59.5","device":{"os":"android"}}"#),
        event(2, r#"{"message":"fps=30"}"#),
    ]);
    let tags: Vec<(&str, u32)> = out.iter().map(|e| (e.event.tag.as_str(), e.parent)).collect();
    assert_eq!(tags, vec![("app.logs", 0), ("m", 0), ("m", 0), ("app.logs", 1), ("m", 1)]);
    assert_eq!(
        parse(&out[0]),
        json!({"message": "render=0.25s frames=oops fps=59.5", "device": {"os": "android"},
               "metrics_found": [{"metric": "render", "value": 250.0, "labels": {}},
                                 {"metric": "fps", "value": 59.5, "labels": {"os": "android"}}],
               "extract_error": "rules[1] (frames): group n: \"oops\" is not an integer"})
    );
    assert_eq!(parse(&out[1]), json!({"metric": "render", "value": 250.0, "labels": {}}));
    assert_eq!(parse(&out[2]), json!({"metric": "fps", "value": 59.5, "labels": {"os": "android"}}));
    assert_eq!(parse(&out[3])["metrics_found"], json!([{"metric": "fps", "value": 30.0, "labels": {}}]));
    assert_eq!(counts, Counts { records: 2, matched: 2, value_errors: 1, metrics: 3, ..Counts::default() });
}

#[test]
fn counters_have_the_documented_names() {
    let names: Vec<&str> = Counts::default().by_name().iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["records", "matched", "unmatched", "no_source", "value_errors", "metrics"]);
}

#[test]
fn filter_level_keys_are_checked() {
    let rule = r#"[{"metric":"m","pattern":"(?P<v>1)","value":{"group":"v","type":"integer"}}]"#;
    let e = ExtractFilter::configure(&format!(r#"{{"metric_tag":"","rules":{rule}}}"#)).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("metric_tag"));
    let e = ExtractFilter::configure(&format!(r#"{{"enrich_field":"extract_error","rules":{rule}}}"#)).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("enrich_field"));
}
