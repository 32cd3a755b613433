//! What `weir test` got against what a test expects: each difference as a
//! line naming the record and the key (`records[1].body.os: expected
//! "ios", got "android"`), then both records in full, so a failure reads
//! without rerunning anything.

use crate::config::{ExpectedBody, ExpectedDeadLetter, ExpectedRecord, Matching};
use crate::core::clock::{parse_rfc3339, rfc3339};
use crate::core::dead_letter::Envelope;
use crate::core::record::{Record, Timestamp};

/// One record as it came out: a chain's record, or the original record
/// inside a dead letter, with who dead-lettered it and why.
pub struct Got {
    tag: String,
    time: Option<Timestamp>,
    body: Body,
    by: Option<String>,
    reason: Option<String>,
}

/// A body as it came out: JSON when it parses (with its text), else its text.
enum Body {
    Json(serde_json::Value, String),
    Text(String),
}

impl Body {
    fn render(&self) -> String {
        match self {
            Body::Json(json, _) => json.to_string(),
            Body::Text(text) => format!("text {}", json_string(text)),
        }
    }
}

impl Got {
    /// A record the chain emitted.
    pub fn record(record: &Record) -> Got {
        let text = String::from_utf8_lossy(&record.body).into_owned();
        let body = match serde_json::from_str(&text) {
            Ok(json) => Body::Json(json, text),
            Err(_) => Body::Text(text),
        };
        Got { tag: record.tag.to_string(), time: Some(record.time), body, by: None, reason: None }
    }

    /// A dead letter, dead-lettered `by` a filter or stage.
    pub fn dead_letter(by: &str, envelope: &Envelope) -> Got {
        let body = match &envelope.record {
            serde_json::Value::String(text) => Body::Text(text.clone()),
            json => Body::Json(json.clone(), json.to_string()),
        };
        Got {
            tag: envelope.tag.clone(),
            time: parse_rfc3339(&envelope.time).ok(),
            body,
            by: Some(by.to_string()),
            reason: Some(envelope.reason.clone()),
        }
    }

    fn render(&self, by_key: &str) -> String {
        let mut fields = Vec::new();
        if let Some(by) = &self.by {
            fields.push(format!("{by_key}: {by}"));
        }
        if let Some(reason) = &self.reason {
            fields.push(format!("reason: {}", json_string(reason)));
        }
        fields.push(format!("tag: {}", self.tag));
        if let Some(time) = self.time {
            fields.push(format!("time: {}", rfc3339(time)));
        }
        fields.push(format!("body: {}", self.body.render()));
        format!("{{ {} }}", fields.join(", "))
    }
}

/// One list of expectations (`records`, `rejected` or `dead_letters`)
/// against what came out; empty when they agree. `by_key` is the name of
/// the who-key in this list (`filter` or `stage`).
pub fn compare(
    list: &str,
    by_key: &str,
    matching: Matching,
    expected: &[(Option<&str>, Option<&str>, &ExpectedRecord)],
    got: &[Got],
) -> Vec<String> {
    let mut problems = Vec::new();
    if expected.len() != got.len() {
        problems.push(format!("{list}: expected {}, got {}", expected.len(), got.len()));
    }
    for i in 0..expected.len().max(got.len()) {
        let at = format!("{list}[{i}]");
        match (expected.get(i), got.get(i)) {
            (Some(&(by, reason, want)), Some(got)) => {
                let mut diffs = Vec::new();
                if let Some(by) = by
                    && got.by.as_deref() != Some(by)
                {
                    diffs.push(format!("{at}.{by_key}: expected {by}, got {}", got.by.as_deref().unwrap_or("none")));
                }
                if let (Some(want), Some(reason)) = (reason, &got.reason)
                    && !text_matches(matching, want, reason)
                {
                    let how = if matching == Matching::Partial { "expected it to contain" } else { "expected" };
                    diffs.push(format!("{at}.reason: {how} {}, got {}", json_string(want), json_string(reason)));
                }
                record_diffs(&at, matching, want, got, &mut diffs);
                if !diffs.is_empty() {
                    problems.extend(diffs);
                    problems.push(format!(
                        "  expected{}: {}",
                        position(want),
                        render_expected(by_key, by, reason, want)
                    ));
                    problems.push(format!("  got:      {}", got.render(by_key)));
                }
            }
            (Some(&(by, reason, want)), None) => {
                problems.push(format!("{at}: missing{}: {}", position(want), render_expected(by_key, by, reason, want)))
            }
            (None, Some(got)) => problems.push(format!("{at}: unexpected: {}", got.render(by_key))),
            (None, None) => unreachable!("the index is below one of the lengths"),
        }
    }
    problems
}

/// The expectations of a `rejected` or `dead_letters` list, as [`compare`] takes them.
pub fn dead_letter_expectations(list: &[ExpectedDeadLetter]) -> Vec<(Option<&str>, Option<&str>, &ExpectedRecord)> {
    list.iter().map(|d| (d.by.as_deref(), d.reason.as_deref(), &d.record)).collect()
}

/// Whether `got` is the expected text (exact) or contains it (partial).
pub fn text_matches(matching: Matching, expected: &str, got: &str) -> bool {
    match matching {
        Matching::Exact => got == expected,
        Matching::Partial => got.contains(expected),
    }
}

fn record_diffs(at: &str, matching: Matching, want: &ExpectedRecord, got: &Got, diffs: &mut Vec<String>) {
    if let Some(tag) = &want.tag
        && *tag != got.tag
    {
        diffs.push(format!("{at}.tag: expected {tag}, got {}", got.tag));
    }
    if let Some(time) = want.time
        && got.time != Some(time)
    {
        diffs.push(format!("{at}.time: expected {}, got {}", rfc3339(time), got.time.map_or("none".into(), rfc3339)));
    }
    match (&want.body, &got.body) {
        (None, _) => {}
        (Some(ExpectedBody::Json(want)), Body::Json(got, _)) => {
            json_diffs(&format!("{at}.body"), matching, want, got, diffs)
        }
        (Some(ExpectedBody::Text(want)), Body::Text(got) | Body::Json(_, got)) if want == got => {}
        (Some(want), got) => diffs.push(format!("{at}.body: expected {}, got {}", render_body(want), got.render())),
    }
}

/// Differences of `got` from `want` under `path`: with partial matching,
/// keys `want` leaves out are not checked.
fn json_diffs(
    path: &str,
    matching: Matching,
    want: &serde_json::Value,
    got: &serde_json::Value,
    diffs: &mut Vec<String>,
) {
    use serde_json::Value;
    match (want, got) {
        (Value::Object(want), Value::Object(got)) => {
            for (key, want) in want {
                match got.get(key) {
                    Some(got) => json_diffs(&format!("{path}.{key}"), matching, want, got, diffs),
                    None => diffs.push(format!("{path}.{key}: missing, expected {want}")),
                }
            }
            if matching == Matching::Exact {
                for (key, got) in got.iter().filter(|(key, _)| !want.contains_key(*key)) {
                    diffs.push(format!("{path}.{key}: unexpected, got {got}"));
                }
            }
        }
        (Value::Array(want_items), Value::Array(got_items)) => {
            if want_items.len() != got_items.len() {
                diffs.push(format!(
                    "{path}: expected {} items, got {}: expected {want}, got {got}",
                    want_items.len(),
                    got_items.len()
                ));
                return;
            }
            for (i, (want, got)) in want_items.iter().zip(got_items).enumerate() {
                json_diffs(&format!("{path}[{i}]"), matching, want, got, diffs);
            }
        }
        (Value::Number(want), Value::Number(got)) if same_number(want, got) => {}
        (want, got) if want == got => {}
        (want, got) => diffs.push(format!("{path}: expected {want}, got {got}")),
    }
}

/// Numbers compare by value: YAML's `1` is JSON's `1.0` when either has a fraction.
fn same_number(a: &serde_json::Number, b: &serde_json::Number) -> bool {
    match (a.as_i64(), b.as_i64(), a.as_u64(), b.as_u64()) {
        (Some(a), Some(b), _, _) => a == b,
        (_, _, Some(a), Some(b)) => a == b,
        _ => a.as_f64() == b.as_f64(),
    }
}

fn render_expected(by_key: &str, by: Option<&str>, reason: Option<&str>, want: &ExpectedRecord) -> String {
    let mut fields = Vec::new();
    if let Some(by) = by {
        fields.push(format!("{by_key}: {by}"));
    }
    if let Some(reason) = reason {
        fields.push(format!("reason: {}", json_string(reason)));
    }
    if let Some(tag) = &want.tag {
        fields.push(format!("tag: {tag}"));
    }
    if let Some(time) = want.time {
        fields.push(format!("time: {}", rfc3339(time)));
    }
    if let Some(body) = &want.body {
        fields.push(format!("body: {}", render_body(body)));
    }
    format!("{{ {} }}", fields.join(", "))
}

fn render_body(body: &ExpectedBody) -> String {
    match body {
        ExpectedBody::Json(json) => json.to_string(),
        ExpectedBody::Text(text) => format!("text {}", json_string(text)),
    }
}

fn position(want: &ExpectedRecord) -> String {
    want.position.map(|(line, column)| format!(" (line {line}:{column})")).unwrap_or_default()
}

fn json_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn got(body: serde_json::Value) -> Got {
        let record = Record {
            time: 5,
            tag: "app".into(),
            body: serde_json::to_vec(&body).unwrap().into(),
            origin: None,
            ack: None,
            arrival: None,
        };
        Got::record(&record)
    }

    fn want(body: serde_json::Value) -> ExpectedRecord {
        ExpectedRecord { body: Some(ExpectedBody::Json(body)), ..ExpectedRecord::default() }
    }

    fn records(matching: Matching, want: &[ExpectedRecord], got: &[Got]) -> Vec<String> {
        let expected: Vec<_> = want.iter().map(|w| (None, None, w)).collect();
        compare("records", "filter", matching, &expected, got)
    }

    #[test]
    fn equal_records_have_no_differences() {
        let body = json!({"a": 1, "b": {"c": [1, 2]}});
        assert!(records(Matching::Exact, &[want(body.clone())], &[got(body)]).is_empty());
    }

    #[test]
    fn a_difference_names_the_key_and_shows_both_records() {
        let problems =
            records(Matching::Exact, &[want(json!({"os": "ios", "n": 1}))], &[got(json!({"os": "android", "n": 1}))]);
        assert_eq!(problems[0], r#"records[0].body.os: expected "ios", got "android""#);
        assert!(problems[1].starts_with(r#"  expected: { body: {"#), "{problems:?}");
        assert!(problems[2].starts_with("  got:      { tag: app, time: 1970-01-01T00:00:00.000000005Z, body: {"));
    }

    #[test]
    fn partial_matching_ignores_keys_left_out_but_exact_does_not() {
        let (w, g) = (json!({"a": {"b": 1}}), json!({"a": {"b": 1, "c": 2}, "d": 3}));
        assert!(records(Matching::Partial, &[want(w.clone())], &[got(g.clone())]).is_empty());
        let problems = records(Matching::Exact, &[want(w)], &[got(g)]);
        assert_eq!(problems[..2], ["records[0].body.a.c: unexpected, got 2", "records[0].body.d: unexpected, got 3"]);
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(records(Matching::Exact, &[want(json!({"v": 1}))], &[got(json!({"v": 1.0}))]).is_empty());
        assert!(!records(Matching::Exact, &[want(json!({"v": 1}))], &[got(json!({"v": 1.5}))]).is_empty());
    }

    #[test]
    fn missing_and_unexpected_records_are_listed_with_the_count() {
        let problems = records(Matching::Exact, &[], &[got(json!({"a": 1}))]);
        assert_eq!(problems[0], "records: expected 0, got 1");
        assert!(problems[1].starts_with("records[0]: unexpected: { tag: app"));
        let problems = records(Matching::Exact, &[want(json!({"a": 1}))], &[]);
        assert_eq!(problems, ["records: expected 1, got 0", r#"records[0]: missing: { body: {"a":1} }"#]);
    }

    #[test]
    fn reasons_match_exactly_or_by_containing() {
        let envelope = Envelope {
            reason: "body is not a json object".into(),
            stage: "filter x".into(),
            tag: "app".into(),
            time: "1970-01-01T00:00:00Z".into(),
            origin: None,
            record: json!("oops"),
        };
        let got = [Got::dead_letter("x", &envelope)];
        let want = ExpectedRecord { body: Some(ExpectedBody::Text("oops".into())), ..ExpectedRecord::default() };
        let expected = [(Some("x"), Some("not a json"), &want)];
        assert!(compare("rejected", "filter", Matching::Partial, &expected, &got).is_empty());
        let problems = compare("rejected", "filter", Matching::Exact, &expected, &got);
        assert_eq!(problems[0], r#"rejected[0].reason: expected "not a json", got "body is not a json object""#);
    }
}
