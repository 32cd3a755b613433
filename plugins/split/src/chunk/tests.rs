use serde_json::{Value, json};

use super::*;

const NOW: i64 = 9_000_000_000;
const CHUNK_TIME: i64 = 5;

fn config(json: &str) -> SplitFilterConfig {
    SplitFilterConfig::from_json(json).unwrap()
}

fn split(config: &SplitFilterConfig, bodies: &[&str]) -> BatchOutcome {
    let chunks = bodies.iter().map(|b| Chunk { time: CHUNK_TIME, tag: "app", body: b.as_bytes() });
    split_batch(config, chunks, NOW)
}

fn bodies(outcome: &BatchOutcome) -> Vec<Value> {
    outcome.emitted.iter().map(|s| serde_json::from_slice(&s.body).unwrap()).collect()
}

#[test]
fn string_statements_become_message_records_with_the_chunks_time() {
    let out = split(&config("{}"), &[r#"{"logs":["a","b \"q\""]}"#]);
    assert_eq!(bodies(&out), [json!({"message": "a"}), json!({"message": "b \"q\""})]);
    assert!(out.emitted.iter().all(|s| s.parent == 0 && s.time == CHUNK_TIME && s.tag == "app"));
    assert_eq!(
        out.counts,
        Counts { statements: 2, chunks: 1, rejected_chunks: 0, time_missing: 0, continuation_lines: 0 }
    );
}

#[test]
fn object_statements_keep_their_bytes_and_gain_context() {
    let c = config(r#"{"context":["device.os",{"from":"session","to":"sid"},"absent.x"],"message_key":"msg"}"#);
    let out = split(&c, &[r#"{"device":{"os":"ios"},"session":{"id":7},"logs":[{"level":"info","n":1},"hi"]}"#]);
    assert_eq!(
        std::str::from_utf8(&out.emitted[0].body).unwrap(),
        r#"{"level":"info","n":1,"os":"ios","sid":{"id":7}}"#
    );
    assert_eq!(bodies(&out)[1], json!({"msg": "hi", "os": "ios", "sid": {"id": 7}}));
}

#[test]
fn a_statements_own_field_wins_over_context() {
    let c = config(r#"{"context":["os"]}"#);
    let out = split(&c, &[r#"{"os":"ios","logs":[{"os":"android"}]}"#]);
    assert_eq!(std::str::from_utf8(&out.emitted[0].body).unwrap(), r#"{"os":"android"}"#);
}

#[test]
fn newline_text_gives_one_statement_per_non_empty_line() {
    let out = split(&config(r#"{"field":"payload.text"}"#), &[r#"{"payload":{"text":"one\r\n\n  \ntwo\n"}}"#]);
    assert_eq!(bodies(&out), [json!({"message": "one"}), json!({"message": "two"})]);
}

#[test]
fn the_configured_tag_replaces_the_chunks() {
    let out = split(&config(r#"{"tag":"app.statement"}"#), &[r#"{"logs":["x"]}"#]);
    assert_eq!(out.emitted[0].tag, "app.statement");
}

#[test]
fn time_comes_from_an_object_field() {
    let c = config(r#"{"time":{"field":"meta.ts","format":"unix_ms"}}"#);
    let out = split(&c, &[r#"{"logs":[{"meta":{"ts":1500}},{"meta":{"ts":"2"}}]}"#]);
    let times: Vec<_> = out.emitted.iter().map(|s| s.time).collect();
    assert_eq!(times, [1_500_000_000, 2_000_000]);
}

#[test]
fn time_comes_from_a_regex_or_a_token() {
    let c = config(r#"{"time":{"regex":"^\\[(?P<time>[^\\]]+)\\]"}}"#);
    let out = split(&c, &[r#"{"logs":"[1970-01-01T00:00:01Z] started"}"#]);
    assert_eq!(out.emitted[0].time, 1_000_000_000);
    assert_eq!(bodies(&out)[0], json!({"message": "[1970-01-01T00:00:01Z] started"}));

    let c = config(r#"{"time":{"delimiter":"|","position":1,"format":"unix"}}"#);
    let out = split(&c, &[r#"{"logs":["info|3.5|done"]}"#]);
    assert_eq!(out.emitted[0].time, 3_500_000_000);
}

#[test]
fn a_missing_time_takes_the_arrival_time_and_a_flag() {
    let c = config(r#"{"time":{"field":"ts"},"time_missing_key":"late"}"#);
    let out = split(&c, &[r#"{"logs":[{"ts":"1970-01-01T00:00:00Z"},{"m":1},{"ts":"abc"},"text"]}"#]);
    let times: Vec<_> = out.emitted.iter().map(|s| s.time).collect();
    assert_eq!(times, [0, NOW, NOW, NOW]);
    assert_eq!(bodies(&out)[1], json!({"m": 1, "late": true}));
    assert_eq!(bodies(&out)[3], json!({"message": "text", "late": true}));
    assert_eq!(out.counts.time_missing, 3);
    assert_eq!(out.first_time_problem.as_deref(), Some(r#"chunk 0: statement 1: time field "ts" is missing"#));
}

#[test]
fn dead_letter_mode_rejects_the_chunk_naming_the_statement() {
    let c = config(r#"{"time":{"field":"ts"},"on_missing_time":"dead_letter"}"#);
    let out = split(
        &c,
        &[r#"{"logs":[{"ts":"1970-01-01T00:00:00Z"},{"ts":"1970-01-01T00:00:00Z"},{"ts":"abc"}]}"#, r#"{"logs":[]}"#],
    );
    assert!(out.emitted.is_empty(), "nothing of a rejected chunk is emitted");
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].0, 0);
    assert!(out.rejected[0].1.starts_with(r#"statement 2: time "abc" is not rfc3339: "#), "{}", out.rejected[0].1);
    assert_eq!(
        out.counts,
        Counts { statements: 0, chunks: 2, rejected_chunks: 1, time_missing: 0, continuation_lines: 0 }
    );
}

#[test]
fn dead_letter_reasons_for_text_name_the_line() {
    let c = config(r#"{"time":{"delimiter":" "},"on_missing_time":"dead_letter","multiline":false}"#);
    let out = split(&c, &[r#"{"logs":"1970-01-01T00:00:00Z ok\n\nbad line"}"#]);
    assert!(
        out.rejected[0].1.starts_with(r#"statement 1 (line 3): time "bad" is not rfc3339"#),
        "{}",
        out.rejected[0].1
    );
}

#[test]
fn malformed_chunks_are_rejected_and_others_flow() {
    let out = split(
        &config(r#"{"field":"p.logs"}"#),
        &[
            "[1]",
            r#"{"p":{"other":1}}"#,
            r#"{"p":{"logs":3}}"#,
            r#"{"p":{"logs":["ok",4]}}"#,
            r#"{"p":"x"}"#,
            r#"{"p":{"logs":["fine"]}}"#,
        ],
    );
    let reasons: Vec<_> = out.rejected.iter().map(|(i, r)| format!("{i} {r}")).collect();
    assert!(reasons[0].starts_with("0 body is not a JSON object: "), "{}", reasons[0]);
    assert_eq!(
        reasons[1..],
        [
            r#"1 field "p.logs": missing"#,
            r#"2 field "p.logs": expected an array or a string, found a number"#,
            r#"3 field "p.logs"[1]: expected a string or an object, found a number"#,
            r#"4 field "p.logs": "p" is a string, not an object"#,
        ]
    );
    assert_eq!(out.emitted.len(), 1);
    assert_eq!(out.emitted[0].parent, 5);
    assert_eq!(
        out.counts,
        Counts { statements: 1, chunks: 6, rejected_chunks: 5, time_missing: 0, continuation_lines: 0 }
    );
}

#[test]
fn ten_thousand_statements_split_in_linear_time() {
    const N: usize = 10_000;
    let objects: Vec<String> =
        (0..N).map(|i| format!(r#"{{"ts":{},"msg":"statement {i}","level":"info"}}"#, 1_700_000_000 + i)).collect();
    let strings: Vec<String> = (0..N).map(|i| format!(r#""{} line {i}""#, 1_700_000_000 + i)).collect();
    let body = format!(
        r#"{{"device":{{"os":"ios","model":"x"}},"app":"demo","logs":[{},{}]}}"#,
        objects.join(","),
        strings.join(",")
    );
    let c = config(r#"{"context":["device.os","app"],"time":{"field":"ts","delimiter":" ","format":"unix"}}"#);
    let started = std::time::Instant::now();
    let out = split(&c, &[&body]);
    let elapsed = started.elapsed();
    assert_eq!(out.emitted.len(), 2 * N);
    assert_eq!(out.counts.time_missing, 0);
    assert_eq!(out.emitted[N - 1].time, (1_700_000_000 + N as i64 - 1) * 1_000_000_000);
    assert_eq!(
        bodies(&out)[2 * N - 1],
        json!({"message": format!("{} line {}", 1_700_000_000 + N - 1, N - 1), "os": "ios", "app": "demo"})
    );
    // A quadratic split would take minutes here; linear takes milliseconds,
    // even unoptimised. The bound is loose so a busy machine does not fail it.
    assert!(elapsed < std::time::Duration::from_secs(10), "took {elapsed:?}");
}

// ---------------------------------------------------------------------------
// Multi-line statements.

const JAVA: &str = "2026-11-22T10:00:00.000Z txn=pay status=error crash
java.lang.IllegalStateException: card token expired
\tat com.example.shop.pay.Checkout.submit(Checkout.java:88)
\tat com.example.shop.ui.PayFragment.onClick(PayFragment.java:41)
Caused by: java.io.IOException: timeout
\t... 2 more";

const PYTHON: &str = "2026-11-22T10:00:01.000Z ERROR payment failed
Traceback (most recent call last):
  File \"/app/pay.py\", line 12, in submit
    charge(card)
ValueError: card token expired

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File \"/app/pay.py\", line 14, in submit
    raise PaymentError()
PaymentError";

const GO: &str = "2026-11-22T10:00:02.000Z panic: runtime error: index out of range [3] with length 3

goroutine 1 [running]:
main.checkout(...)
\t/app/main.go:8 +0x1d
main.main()
\t/app/main.go:12 +0x25
exit status 2";

const NEXT: &str = "2026-11-22T10:00:03.000Z page=home load=900ms";

/// 2026-11-22T10:00:00Z in ns.
const T: i64 = 1_795_341_600_000_000_000;

fn text_chunk(text: &str) -> String {
    json!({"app": "shop", "logs": text}).to_string()
}

fn messages(outcome: &BatchOutcome) -> Vec<String> {
    bodies(outcome).iter().map(|b| b["message"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn java_python_and_go_traces_stay_with_their_statement_and_its_time() {
    let c = config(r#"{"time":{"regex":"^(?P<time>\\S+)"},"context":["app"]}"#);
    for trace in [JAVA, PYTHON, GO] {
        let out = split(&c, &[&text_chunk(&format!("{trace}\n{NEXT}\n"))]);
        assert_eq!(messages(&out), [trace, NEXT], "{trace}");
        let first_line = trace.lines().next().unwrap();
        let second = T + i64::from(first_line.as_bytes()[18] - b'0') * 1_000_000_000;
        assert_eq!(out.emitted[0].time, second, "the trace takes its first line's time");
        assert_eq!(out.emitted[1].time, T + 3_000_000_000);
        assert_eq!(out.counts.time_missing, 0);
        let lines = trace.lines().filter(|l| !l.trim().is_empty()).count() as u64;
        assert_eq!(out.counts.continuation_lines, lines - 1, "{trace}");
        assert_eq!(bodies(&out)[0]["app"], "shop");
    }
}

#[test]
fn traces_sent_as_array_elements_join_their_statement() {
    let c = config(r#"{"time":{"regex":"^(?P<time>\\S+)"}}"#);
    let mut logs: Vec<Value> = JAVA.lines().map(|l| json!(l)).collect();
    logs.push(json!({"msg": "object", "n": 1}));
    logs.push(json!("\tat an.orphan.Frame(Frame.java:1)"));
    logs.push(json!(NEXT));
    let out = split(&c, &[&json!({"logs": logs}).to_string()]);
    let bodies = bodies(&out);
    assert_eq!(bodies[0]["message"], JAVA);
    // An object statement needs time.field, which this config lacks.
    assert_eq!(bodies[1], json!({"msg": "object", "n": 1, "time_missing": true}));
    // A continuation right after an object has no statement to join.
    assert_eq!(bodies[2], json!({"message": "\tat an.orphan.Frame(Frame.java:1)", "time_missing": true}));
    assert_eq!(bodies[3]["message"], NEXT);
    assert_eq!(out.counts.continuation_lines, 5);
}

#[test]
fn a_chunk_that_starts_with_a_continuation_keeps_it_as_a_statement_of_its_own() {
    let c = config(r#"{"time":{"regex":"^(?P<time>\\S+)"}}"#);
    let text =
        "\tat com.example.Tail.run(Tail.java:7)\n\tat java.lang.Thread.run(Thread.java:1583)\n".to_owned() + JAVA;
    let out = split(&c, &[&text_chunk(&text)]);
    assert_eq!(
        messages(&out),
        ["\tat com.example.Tail.run(Tail.java:7)\n\tat java.lang.Thread.run(Thread.java:1583)", JAVA]
    );
    // Its first line has no time: the arrival time, flagged.
    assert_eq!((out.emitted[0].time, bodies(&out)[0]["time_missing"].clone()), (NOW, json!(true)));
    assert_eq!(out.emitted[1].time, T);
    assert_eq!(out.counts.time_missing, 1);

    // In dead_letter mode the chunk is refused, naming the fragment's first line.
    let c = config(r#"{"time":{"regex":"^(?P<time>\\S+)"},"on_missing_time":"dead_letter"}"#);
    let out = split(&c, &[&text_chunk(&format!("\n{text}"))]);
    assert!(out.emitted.is_empty());
    assert_eq!(out.rejected[0].1, "statement 0 (line 2): time regex did not match");
}

#[test]
fn blank_lines_stay_inside_a_statement_but_not_at_its_ends() {
    let c = config(r#"{"time":{"regex":"^(?P<time>\\S+)"}}"#);
    let out = split(&c, &[&text_chunk(&format!("\r\n\n{}\r\n\n\n{NEXT}\n\n", GO.replace('\n', "\r\n")))]);
    assert_eq!(messages(&out), [GO, NEXT]);
}

#[test]
fn a_start_regex_decides_which_lines_start_statements() {
    // Lines start with a level; the time is elsewhere.
    let c = config(
        r#"{"time":{"regex":"at (?P<time>\\S+)$"},"multiline":{"start":"^(INFO|WARN|ERROR) "},"on_missing_time":"dead_letter"}"#,
    );
    let text = "ERROR payment failed at 2026-11-22T10:00:00Z\njava.lang.IllegalStateException: at boot\n\tat x.Y(Y.java:1)\nINFO page=home at 2026-11-22T10:00:01Z";
    let out = split(&c, &[&text_chunk(text)]);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(messages(&out).len(), 2);
    assert!(messages(&out)[0].ends_with("\tat x.Y(Y.java:1)"));
    assert_eq!((out.emitted[0].time, out.emitted[1].time), (T, T + 1_000_000_000));
}

#[test]
fn multiline_false_keeps_one_statement_per_line() {
    let c = config(r#"{"time":{"regex":"^(?P<time>\\S+)"},"multiline":false}"#);
    let out = split(&c, &[&text_chunk(JAVA)]);
    assert_eq!(out.emitted.len(), 6);
    assert_eq!(out.counts.time_missing, 5);
    assert_eq!(out.counts.continuation_lines, 0);
}

#[test]
fn without_a_text_time_rule_every_line_is_a_statement() {
    let out = split(&config("{}"), &[&text_chunk(JAVA)]);
    assert_eq!(out.emitted.len(), 6);
    assert!(out.emitted.iter().all(|s| s.time == CHUNK_TIME));
}
