//! The quickstart config, checked against an oracle built from its input:
//! every statement of every chunk comes out once, with its context.

use std::collections::BTreeMap;
use std::process::Stdio;

use serde_json::Value;

use crate::util::{ndjson, repo, weir};

#[test]
fn quickstart_emits_every_statement_once_with_its_context() {
    let input = std::fs::read(repo().join("configs/sample/mobile-chunks.ndjson")).unwrap();
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    for chunk in ndjson(&input) {
        for statement in chunk["logs"].as_array().unwrap() {
            let key = format!(
                "{}|{}|{}|{}|{}",
                statement.as_str().unwrap(),
                chunk["app"].as_str().unwrap(),
                chunk["app_version"].as_str().unwrap(),
                chunk["device"]["os"].as_str().unwrap(),
                chunk["device"]["model"].as_str().unwrap()
            );
            *expected.entry(key).or_default() += 1;
        }
    }
    assert!(expected.len() >= 20, "the sample is too small to mean anything");

    let out =
        weir().args(["run", "-c"]).arg(repo().join("configs/quickstart.yaml")).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut got: BTreeMap<String, usize> = BTreeMap::new();
    for envelope in ndjson(&out.stdout) {
        let record = &envelope["body"];
        let field = |k: &str| record[k].as_str().unwrap_or_else(|| panic!("no {k} in {record}")).to_string();
        let statement_time = field("message").split(' ').next().unwrap().to_string();
        let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap();
        assert_eq!(
            parse(envelope["time"].as_str().unwrap()),
            parse(&statement_time),
            "event time is the statement's own"
        );
        assert_eq!(envelope["tag"], "mobile.statements");
        let key = format!(
            "{}|{}|{}|{}|{}",
            field("message"),
            field("app"),
            field("app_version"),
            field("os"),
            field("model")
        );
        *got.entry(key).or_default() += 1;
        assert_ne!(record.get("time_missing"), Some(&Value::Bool(true)), "every sample statement has a time");
    }
    assert_eq!(got, expected);
}
