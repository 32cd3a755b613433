//! `configs/mobile-monitoring.yaml`, exactly as shipped, against the real
//! Kafka, Elasticsearch and Alertmanager: ten minutes of app traffic whose
//! iOS payment latency rises above the threshold in minutes 3 to 5. The
//! first five minutes arrive over HTTP, the rest from a Kafka topic, with a
//! malformed chunk injected into each. Checked against the oracle of
//! `metrics.rs`: every statement in the daily raw index, every closed window
//! in the metrics index, the alert active in Alertmanager for exactly that
//! series and then resolved, and dead letters holding only the malformed
//! chunks and the late events.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use chrono::DateTime;
use serde_json::Value;

use super::alertmanager::{am_alerts_labelled, notified_labelled, webhook};
use super::elasticsearch::{Cleanup, SERVER, count, documents};
use super::kafka::{create_topic, msg, produce, unique, wait_caught_up};
use super::{alertmanager_url, elasticsearch_url, kafka_bootstrap};
use crate::http_input::post;
use crate::metrics::{
    LATENESS_SECS, WINDOW_SECS, alert_transitions, check_window, chunk_line, dead_letter_stages, iso, oracle, traffic,
};
use crate::observability::{dashboard, panels, selectors};
use crate::util::{TestDir, free_port, http, read_ndjson, repo, sigterm, wait_for, weir};

/// The minutes of traffic posted over HTTP; the rest comes from Kafka.
const HTTP_CHUNKS: usize = 300;
/// Chunks per HTTP request, as a collector batches them.
const CHUNKS_PER_REQUEST: usize = 30;

#[test]
#[ignore = "needs the real servers: just test-full"]
fn the_mobile_monitoring_config_pages_on_a_latency_shift_and_stores_everything() {
    let _shared = SERVER.read().unwrap_or_else(|e| e.into_inner());
    // The config's own index names (so its metrics template applies): start empty.
    drop(Cleanup("mobile-".into()));
    let _cleanup = Cleanup("mobile-".into());
    let hook = webhook();
    let (chunks, _) = traffic();
    let (expected, late) = oracle(&chunks);
    let lines: Vec<String> = chunks.iter().map(|c| chunk_line(c[0].os, c)).collect();
    let statements: usize = chunks.iter().map(Vec::len).sum();

    let dir = TestDir::new();
    let (topic, group, pipeline) = (unique("mobile"), unique("mobile-group"), unique("mobile").replace('-', "_"));
    create_topic(&topic, 1);
    let (port, admin) = (free_port(), free_port());
    let log = std::fs::File::create(dir.path("weir.log")).unwrap();
    let mut child = weir()
        .args(["run", "-c"])
        .arg(repo().join("configs/mobile-monitoring.yaml"))
        .env("HTTP_ADDRESS", format!("127.0.0.1:{port}"))
        .env("ADMIN_ADDRESS", format!("127.0.0.1:{admin}"))
        .env("KAFKA_BROKERS", kafka_bootstrap())
        .env("KAFKA_TOPIC", &topic)
        .env("KAFKA_GROUP", &group)
        .env("ES_URL", elasticsearch_url())
        .env("ALERTMANAGER_URL", alertmanager_url())
        .env("PIPELINE_ID", &pipeline)
        .env("OUT_DIR", dir.path("out"))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let weir_log = || std::fs::read_to_string(dir.path("weir.log")).unwrap_or_default();
    assert!(
        wait_for(Duration::from_secs(30), || http("GET", port, "/health").is_some_and(|(s, _)| s == 200)),
        "the HTTP input never listened: {}",
        weir_log()
    );

    // Minutes 0-4 over HTTP, one request after another, each answered once
    // delivered; one request carries a chunk whose `logs` is not an array.
    let url = format!("http://127.0.0.1:{port}/ingest");
    for (i, batch) in lines[..HTTP_CHUNKS].chunks(CHUNKS_PER_REQUEST).enumerate() {
        let mut body = batch.join("\n");
        if i == 3 {
            body.push_str("\n{\"app\":\"shop\",\"logs\":17}");
        }
        let (status, answer) = post(&url, &["content-type: application/x-ndjson"], body.as_bytes());
        assert_eq!(status, 200, "request {i}: {answer}");
        assert_eq!(answer["ack"], "delivered", "{answer}");
    }
    // Only one window above the threshold has closed so far: `for: 2` holds the alert back.
    assert!(am_alerts_labelled("pipeline", &pipeline).is_empty(), "fired after one window");

    // Minute 5 from Kafka closes the second window above: the page.
    let transitions = alert_transitions(&expected);
    assert_eq!(transitions.len(), 2, "the traffic fires and resolves one alert: {transitions:?}");
    let (fired_os, _, fired_at) = &transitions[0];
    produce(&topic, &lines[HTTP_CHUNKS..360].iter().map(msg).collect::<Vec<_>>());
    assert!(
        wait_for(Duration::from_secs(60), || !am_alerts_labelled("pipeline", &pipeline).is_empty()),
        "no alert in Alertmanager: {}",
        weir_log()
    );
    let alerts = am_alerts_labelled("pipeline", &pipeline);
    assert_eq!(alerts.len(), 1, "exactly one series pages: {alerts:?}");
    let alert = &alerts[0];
    assert_eq!(alert["status"]["state"], "active", "{alert}");
    let labels = alert["labels"].as_object().unwrap();
    let expected_labels = [
        ("alertname", "PaymentLatencyHigh"),
        ("metric", "response_time_ms"),
        ("txn", "pay"),
        ("os", fired_os.as_str()),
        ("app_version", "4.2.1"),
        ("severity", "page"),
        ("source", "weir"),
        ("pipeline", pipeline.as_str()),
    ];
    assert_eq!(labels.len(), expected_labels.len(), "{alert}");
    for (name, value) in expected_labels {
        assert_eq!(labels[name], value, "label {name}: {alert}");
    }
    let starts = DateTime::parse_from_rfc3339(alert["startsAt"].as_str().unwrap()).unwrap();
    assert_eq!(starts, DateTime::parse_from_rfc3339(fired_at).unwrap(), "starts at the end of the second window above");
    let summary = alert["annotations"]["summary"].as_str().unwrap();
    assert!(summary.starts_with(&format!("p95 payment latency on {fired_os} 4.2.1 is ")), "{summary}");

    assert!(
        wait_for(Duration::from_secs(15), || notified_labelled(&hook, "pipeline", &pipeline) == ["firing"]),
        "Alertmanager notified the webhook of the firing alert: {:?}",
        notified_labelled(&hook, "pipeline", &pipeline)
    );

    // The rest from Kafka, with a message that is not JSON: latency recovers
    // and the alert resolves.
    let mut rest: Vec<_> = lines[360..].iter().map(msg).collect();
    rest.insert(100, msg("{not json"));
    produce(&topic, &rest);
    assert!(
        wait_for(Duration::from_secs(60), || am_alerts_labelled("pipeline", &pipeline).is_empty()),
        "the alert never resolved: {:?}",
        am_alerts_labelled("pipeline", &pipeline)
    );
    assert!(
        wait_for(Duration::from_secs(15), || notified_labelled(&hook, "pipeline", &pipeline) == ["firing", "resolved"]),
        "Alertmanager notified the webhook: {:?}",
        notified_labelled(&hook, "pipeline", &pipeline)
    );
    assert!(wait_caught_up(&group, &topic, 1, Duration::from_secs(60)), "Kafka offsets committed to the end");

    // Closed windows are those the last event's watermark passed; the last
    // one stays open (and is not emitted) when Weir stops.
    let last_event = chunks.iter().flatten().map(|s| s.time.timestamp_millis()).max().unwrap();
    let closed: BTreeMap<_, _> = expected
        .iter()
        .filter(|((start, _, _), _)| start + WINDOW_SECS * 1000 <= last_event - LATENESS_SECS * 1000)
        .collect();
    assert!(closed.len() >= 50 && closed.len() < expected.len(), "{} closed windows", closed.len());
    assert!(
        wait_for(Duration::from_secs(30), || count("mobile-metrics-*") == closed.len() as u64),
        "window records in Elasticsearch: {} of {}",
        count("mobile-metrics-*"),
        closed.len()
    );
    // The pipeline's own metrics tell the same story, the Kafka lag too once
    // librdkafka's statistics (every 10 s) have seen the commits.
    let lag = format!("weir_kafka_consumer_lag_messages{{input=\"collectors\",topic=\"{topic}\",partition=\"0\"}} 0");
    assert!(
        wait_for(Duration::from_secs(30), || http("GET", admin, "/metrics").unwrap().1.lines().any(|l| l == lag)),
        "no {lag} in:\n{}",
        http("GET", admin, "/metrics").unwrap().1
    );
    let (_, metrics) = http("GET", admin, "/metrics").unwrap();
    // The dashboard's Kafka panels, which need a broker, query what is served.
    let board = dashboard();
    for panel in panels(&board) {
        for expr in panel["targets"].as_array().into_iter().flatten().filter_map(|t| t["expr"].as_str()) {
            for (name, _) in selectors(expr).into_iter().filter(|(n, _)| n.starts_with("weir_kafka_")) {
                assert!(metrics.contains(&format!("# TYPE {name} ")), "panel {:?}: {name} not served", panel["title"]);
            }
        }
    }
    let expected_metrics = [
        ("weir_input_records_total{input=\"apps\"}", HTTP_CHUNKS + 1),
        ("weir_input_records_total{input=\"collectors\"}", chunks.len() - HTTP_CHUNKS),
        ("weir_input_dead_letters_total{input=\"collectors\",reason=\"malformed\"}", 1),
        ("weir_filter_dead_letters_total{filter=\"split\",reason=\"rejected\"}", 1),
        ("weir_filter_dead_letters_total{filter=\"percentiles\",reason=\"rejected\"}", late),
        ("weir_output_records_total{output=\"logs\"}", statements),
        ("weir_output_records_total{output=\"metrics\"}", closed.len()),
        ("weir_output_records_total{output=\"alertmanager\"}", transitions.len()),
    ];
    for (series, value) in expected_metrics {
        assert!(metrics.lines().any(|l| l == format!("{series} {value}")), "{series} is not {value}:\n{metrics}");
    }
    sigterm(child.id());
    assert!(child.wait().unwrap().success(), "{}", weir_log());

    assert_eq!(count("mobile-logs-*"), statements as u64, "every statement in the raw index");
    let mut windows = BTreeMap::new();
    for hit in documents("mobile-metrics-*") {
        let w = &hit["_source"];
        assert_eq!(w["metric"], "response_time_ms", "{w}");
        assert_eq!(w["labels"]["app_version"], "4.2.1", "{w}");
        let key = (w["window_start"].as_str().unwrap().to_string(), label(w, "txn"), label(w, "os"));
        assert!(windows.insert(key.clone(), w.clone()).is_none(), "window {key:?} indexed twice");
    }
    assert_eq!(windows.len(), closed.len());
    for ((start, txn, os), values) in closed {
        let w = windows.get(&(iso(*start), txn.clone(), os.clone())).unwrap_or_else(|| {
            panic!("no window {} {txn} {os} in Elasticsearch", iso(*start));
        });
        check_window(w, *start, values);
    }

    let dead = read_ndjson(&dir.path("out/dead-letter.ndjson"));
    let stages = dead_letter_stages(&dead);
    assert_eq!(stages.get("filter split"), Some(&1), "the chunk without a logs array: {stages:?}");
    assert_eq!(stages.get("input collectors"), Some(&1), "the Kafka message that is not JSON: {stages:?}");
    assert_eq!(stages.get("filter percentiles").copied().unwrap_or(0), late, "late events: {stages:?}");
    assert_eq!(dead.len(), 2 + late, "nothing else is dead-lettered: {dead:?}");
}

fn label(window: &Value, name: &str) -> String {
    window["labels"][name].as_str().unwrap().to_string()
}
