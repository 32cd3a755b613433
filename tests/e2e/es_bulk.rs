//! Weir's Elasticsearch-compatible `_bulk` as real clients use it: the
//! official `elasticsearch` Python client and `opensearch-py` (pinned in
//! `tests/clients/requirements.txt`), each through its own bulk helpers and
//! unchanged, against the real binary: what shippers probe on connect,
//! every action with its metadata, gzip, `refresh` and `filter_path`, and
//! their retry of 429s when the pipeline stalls part-way.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::http_input::{Running, held_fifo};
use crate::util::{TestDir, client, read_ndjson};

const CLIENTS: [&str; 2] = ["elasticsearch", "opensearch"];

fn start(dir: &TestDir, config: &str) -> Running {
    Running::start_with_env(dir, config, &[("WEIR_TEST_HTTP_TOKEN", "s3cret")])
}

#[test]
fn both_clients_start_up_as_shippers_do_and_carry_every_action_with_its_metadata() {
    for name in CLIENTS {
        let dir = TestDir::new();
        let weir = start(
            &dir,
            "
inputs:
  - { type: http, address: 127.0.0.1:0, auth_token: '${WEIR_TEST_HTTP_TOKEN}', bulk_metadata_key: _es }
outputs:
  - { type: file, path: out.ndjson, match: 'es.*', batch: { max_wait: 20ms } }
",
        );
        let startup = client("es_bulk_client.py", &[name, "startup", &weir.url]);
        let mut expected = json!({
            "version": "8.15.0", "license": "active", "health": "green",
            "template_before": false, "template_after": true, "template_patterns": ["weir-logs-*"],
            "pipeline": true,
        });
        if name == "elasticsearch" {
            expected["policy_before"] = json!(false);
            expected["policy_after"] = json!(true);
        } else {
            expected["legacy_template"] = json!(false);
        }
        assert_eq!(startup, expected, "{name}");

        let report = client("es_bulk_client.py", &[name, "actions", &weir.url]);
        assert_eq!((&report["ok"], &report["errors"]), (&json!(5), &json!([])), "{name}: {report}");
        assert_eq!(
            report["filtered"],
            json!({"errors": true, "items": [
                {"create": {"status": 201}},
                {"delete": {"status": 400, "error": {
                    "type": "action_request_validation_exception",
                    "reason": "Validation Failed: 1: id is missing;",
                }}},
            ]}),
            "{name}: Logstash's filter_path"
        );
        weir.stop();
        // Delivered mode: each answer came after its records were written.
        let records = read_ndjson(&dir.path("out.ndjson"));
        let by_n = |n: u64| records.iter().find(|r| r["n"] == n).cloned().unwrap_or(Value::Null);
        assert_eq!(records.len(), 6, "{name}: {records:?}");
        assert_eq!(
            by_n(1)["_es"],
            json!({"index": "logs-a", "id": "d1", "action": "index", "routing": "r1", "pipeline": "weir-pipe"}),
            "{name}"
        );
        assert_eq!(by_n(2)["_es"], json!({"index": "logs-a", "action": "create"}), "{name}");
        assert_eq!(by_n(3)["_es"], json!({"index": "logs-b", "action": "create"}), "{name}");
        let action = |a: &str| -> Vec<&Value> { records.iter().filter(|r| r["_es"]["action"] == a).collect() };
        let updates = action("update");
        assert_eq!(updates.len(), 2, "{name}");
        assert_eq!(updates[0]["doc"], json!({"msg": "first, edited"}), "{name}");
        assert_eq!((&updates[1]["doc"], &updates[1]["doc_as_upsert"]), (&json!({"n": 9}), &json!(true)), "{name}");
        assert_eq!(
            action("delete"),
            [&json!({"_es": {"index": "logs-a", "id": "d2", "action": "delete"}})],
            "{name}: a delete is its metadata alone"
        );
    }
}

/// Documents the retry test sends per client: several times what the
/// stalled pipeline below holds, so the first request is taken in part.
const RETRY_DOCUMENTS: usize = 1500;

#[test]
fn both_clients_retry_only_the_items_refused_with_429_and_nothing_is_lost_or_duplicated() {
    for name in CLIENTS {
        let dir = TestDir::new();
        // The output blocks once the pipe buffer is full, the queues fill,
        // and `_bulk` items the pipeline cannot take answer 429.
        let (go, reader) = held_fifo(&dir, "out.fifo");
        let weir = start(
            &dir,
            "
pipeline: { queue_capacity: 1, batch_max_records: 10 }
inputs:
  - { type: http, address: 127.0.0.1:0, ack: accepted, queue_wait: 50ms, auth_token: '${WEIR_TEST_HTTP_TOKEN}' }
outputs:
  - { type: file, path: out.fifo, match: '*', batch: { max_records: 10, max_wait: 10ms } }
",
        );
        let unblock = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(3));
            go.send(()).unwrap();
        });
        let report = client("es_bulk_client.py", &[name, "retry", &weir.url, &RETRY_DOCUMENTS.to_string()]);
        unblock.join().unwrap();
        weir.stop();
        let delivered = reader.join().unwrap();

        assert_eq!((&report["ok"], &report["failed"]), (&json!(RETRY_DOCUMENTS), &json!([])), "{name}: {report}");
        let item_429 = report["item_429"].as_u64().unwrap();
        assert!(item_429 > 0, "{name}: the stalled pipeline refused items one by one: {report}");
        assert_eq!(
            report["documents"].as_u64().unwrap(),
            RETRY_DOCUMENTS as u64 + item_429 + report["request_429_documents"].as_u64().unwrap(),
            "{name}: only what was refused was sent again: {report}"
        );
        let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
        for line in delivered.lines() {
            let record: Value = serde_json::from_str(line).unwrap();
            *counts.entry(record["i"].as_u64().unwrap()).or_default() += 1;
        }
        assert_eq!(counts.len(), RETRY_DOCUMENTS, "{name}: every document arrived");
        assert!(counts.values().all(|&c| c == 1), "{name}: none twice");
    }
}
