//! Stage 2 (`configs/two-stage/stage2.yaml`: percentiles -> threshold,
//! state checkpointed per Kafka partition) scaled out in one consumer group
//! while samples flow, on the real broker: an aggregator joining, 1 -> 3 -> 1,
//! a kill -9 restarted after 10 s, a rolling restart. Each run's windows and
//! alerts are compared with a single process reading the same topic (in its
//! own group, at the same time) and with an exact oracle computed here.
//!
//! The traffic: 12 series on 3 partitions (4 each, keyed by series), ten
//! minutes of event time, 3% of samples 10 s out of order (within the 30 s
//! allowed lateness) and some 5 minutes late (dead-lettered), payment
//! latency on iOS above the alert threshold in minutes 3 to 5. It is
//! produced in slices while the group changes, so windows close (and
//! alerts fire) on every side of every rebalance. Each partition has its
//! own watermark, so the oracle replays it per partition.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

use super::kafka::{
    FLUSH_METRIC, Msg, client, create_topic, group_stable_with, produce, produce_flush_markers, signal, spawn_weir,
    stop, unique, wait_caught_up,
};
use super::kafka_bootstrap;
use crate::metrics::{Rng, Series, THRESHOLD, alert_transitions, check_window, iso};
use crate::util::{TestDir, free_port, http, read_ndjson, repo, wait_for};

const PARTITIONS: i32 = 3;
const METRICS: [&str; 2] = ["response_time_ms", "page_load_ms"];
const TXNS: [&str; 3] = ["pay", "search", "login"];
const OSES: [&str; 2] = ["ios", "android"];
const LATENESS_MS: i64 = 30_000;
const WINDOW_MS: i64 = 60_000;
const SLICES: usize = 12;
/// Filters whose state is checkpointed: percentiles and threshold.
const KEYED_FILTERS: usize = 2;

/// (window start, metric, txn, os) -> values.
type Windows = BTreeMap<(i64, String, String, String), Vec<u64>>;

#[derive(Clone, Copy)]
struct Sample {
    partition: i32,
    metric: &'static str,
    txn: &'static str,
    os: &'static str,
    time_ms: i64,
    value: u64,
}

/// The traffic, in production order.
fn traffic() -> Vec<Sample> {
    let start = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap().timestamp_millis();
    let mut rng = Rng(0x5ca1e);
    let mut samples = Vec::new();
    for second in 0..600i64 {
        for i in 0..10 {
            let series = rng.below((METRICS.len() * TXNS.len() * OSES.len()) as u64) as usize;
            let (metric, txn, os) = (METRICS[series % 2], TXNS[series / 2 % 3], OSES[series / 6]);
            let mut time_ms = start + second * 1000 + i * 100;
            match rng.below(100) {
                0..=2 => time_ms -= 10_000,
                3 if second > 400 => time_ms -= 300_000,
                _ => {}
            }
            let slow = metric == "response_time_ms" && txn == "pay" && os == "ios" && (180..360).contains(&second);
            let value = if slow { 700 + rng.below(800) } else { 50 + rng.below(400) };
            samples.push(Sample { partition: (series % PARTITIONS as usize) as i32, metric, txn, os, time_ms, value });
        }
    }
    samples
}

/// (window start, metric, txn, os) -> values, with each partition's own
/// watermark (largest event time recorded minus the allowed lateness); and
/// the number of late samples.
fn oracle(samples: &[Sample]) -> (Windows, usize) {
    let mut windows = Windows::new();
    let mut max_seen = [i64::MIN; PARTITIONS as usize];
    let mut late = 0;
    for s in samples {
        let max = &mut max_seen[s.partition as usize];
        let start = s.time_ms.div_euclid(WINDOW_MS) * WINDOW_MS;
        if *max != i64::MIN && start + WINDOW_MS <= *max - LATENESS_MS {
            late += 1;
            continue;
        }
        *max = (*max).max(s.time_ms);
        windows.entry((start, s.metric.into(), s.txn.into(), s.os.into())).or_default().push(s.value);
    }
    (windows, late)
}

fn messages(samples: &[Sample]) -> Vec<Msg> {
    samples
        .iter()
        .map(|s| Msg {
            partition: Some(s.partition),
            key: Some(format!("{}|{}|{}", s.metric, s.txn, s.os)),
            payload: serde_json::json!({"metric": s.metric, "value": s.value, "labels": {"txn": s.txn, "os": s.os}})
                .to_string(),
            timestamp_ms: Some(s.time_ms),
        })
        .collect()
}

/// The aggregators of one scenario, each with its own output folder and log.
struct Group<'a> {
    dir: &'a TestDir,
    prefix: &'static str,
    group: String,
    env: Vec<(String, String)>,
    /// Each running aggregator, its log and its admin port.
    running: Vec<(Child, PathBuf, u16)>,
    folders: Vec<PathBuf>,
}

impl<'a> Group<'a> {
    fn new(dir: &'a TestDir, prefix: &'static str, group: &str, metrics: &str, checkpoints: &str) -> Self {
        let env = [
            ("KAFKA_BROKERS", kafka_bootstrap()),
            ("METRICS_TOPIC", metrics.to_string()),
            ("STAGE2_GROUP", group.to_string()),
            ("CHECKPOINT_TOPIC", checkpoints.to_string()),
            ("CHECKPOINT_INTERVAL", "1s".to_string()),
            ("SESSION_TIMEOUT_MS", "6000".to_string()),
            ("IDLE_TIMEOUT", "1h".to_string()),
            ("TICK_INTERVAL", "200ms".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Group { dir, prefix, group: group.to_string(), env, running: Vec::new(), folders: Vec::new() }
    }

    /// Start one more aggregator; its index in `running`.
    fn start(&mut self) -> usize {
        let name = format!("{}-{}", self.prefix, self.folders.len());
        let out = self.dir.path(&name);
        let log = self.dir.path(&format!("{name}.log"));
        let mut env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let out_text = out.to_string_lossy().into_owned();
        env.push(("OUT_DIR", &out_text));
        // The stage-2 config as shipped, with an admin API to scrape.
        let admin = free_port();
        let stage2 = std::fs::read_to_string(repo().join("configs/two-stage/stage2.yaml")).unwrap();
        let config = self
            .dir
            .write(&format!("{name}.yaml"), &format!("{stage2}\nadmin: {{ address: \"127.0.0.1:{admin}\" }}\n"));
        let child = spawn_weir(&config, &env, &log);
        self.folders.push(out);
        self.running.push((child, log, admin));
        self.running.len() - 1
    }

    fn stable(&self, members: usize) {
        assert!(
            wait_for(Duration::from_secs(90), || group_stable_with(&self.group, members)),
            "group {} never stable with {members} members",
            self.group
        );
    }

    /// SIGTERM aggregator `i` and wait for its clean exit.
    fn stop(&mut self, i: usize) {
        let (child, log, _) = self.running.remove(i);
        stop(child, &log);
    }

    /// kill -9 aggregator `i`.
    fn kill(&mut self, i: usize) {
        let (mut child, ..) = self.running.remove(i);
        signal(&child, "-KILL");
        child.wait().unwrap();
    }

    /// The sum over the running aggregators of the samples of `metric`
    /// whose line starts with it (labels included when given).
    fn metric(&self, metric: &str) -> f64 {
        let mut sum = 0.0;
        for (_, _, admin) in &self.running {
            let (status, text) = http("GET", *admin, "/metrics").expect("the admin API answers");
            assert_eq!(status, 200);
            sum += text
                .lines()
                .filter(|l| l.starts_with(metric) && l[metric.len()..].starts_with([' ', '{']))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>();
        }
        sum
    }

    fn stop_all(&mut self) {
        while !self.running.is_empty() {
            self.stop(0);
        }
    }

    /// Every line of `file` in every aggregator's folder.
    fn records(&self, file: &str) -> Vec<Value> {
        self.folders.iter().flat_map(|f| read_ndjson(&f.join(file))).collect()
    }

    fn logs(&self) -> String {
        let mut logs = String::new();
        for i in 0..self.folders.len() {
            let name = self.folders[i].file_name().unwrap().to_string_lossy().into_owned();
            logs += &std::fs::read_to_string(self.dir.path(&format!("{name}.log"))).unwrap_or_default();
        }
        logs
    }
}

/// Window records keyed by (window_start, metric, labels), without the
/// flush markers'. A key seen twice is allowed only as an identical copy
/// when `copies` is true (after a kill -9: what was emitted after the last
/// checkpoint is emitted again by the next owner); returns the copies.
fn by_window(records: Vec<Value>, copies: bool, what: &str) -> (BTreeMap<(String, String, String), Value>, usize) {
    let mut got = BTreeMap::new();
    let mut repeated = 0;
    for w in records.into_iter().filter(|w| w["metric"] != FLUSH_METRIC) {
        let key = (
            w["window_start"].as_str().unwrap().to_string(),
            w["metric"].as_str().unwrap().to_string(),
            w["labels"].to_string(),
        );
        if let Some(first) = got.get(&key) {
            assert!(copies, "{what}: window {key:?} emitted twice:\n{first}\n{w}");
            assert_eq!(first, &w, "{what}: window {key:?} emitted twice, differently");
            repeated += 1;
            continue;
        }
        got.insert(key, w);
    }
    (got, repeated)
}

/// Alert transitions as (os, firing | resolved, time), in file order per
/// folder, copies removed when `copies` is true.
fn transitions(alerts: &[Value], copies: bool) -> Vec<(String, &'static str, String)> {
    let mut seen = HashSet::new();
    let mut out: Vec<(String, &'static str, String)> = alerts
        .iter()
        .map(|a| {
            let os = a["labels"]["os"].as_str().unwrap().to_string();
            match a.get("endsAt") {
                Some(end) => (os, "resolved", end.as_str().unwrap().to_string()),
                None => (os, "firing", a["startsAt"].as_str().unwrap().to_string()),
            }
        })
        .filter(|t| !copies || seen.insert(t.clone()))
        .collect();
    out.sort();
    out
}

/// The newest checkpoint record per key of `group` in `topic`, and how many
/// records the topic holds in all.
fn checkpoint_keys(topic: &str, group: &str) -> (HashSet<String>, usize) {
    let consumer: BaseConsumer =
        client().set("group.id", unique("reader")).set("enable.partition.eof", "true").create().unwrap();
    let (low, high) = consumer.fetch_watermarks(topic, 0, Duration::from_secs(10)).unwrap();
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, 0, Offset::Offset(low)).unwrap();
    consumer.assign(&list).unwrap();
    let mut keys = HashSet::new();
    let mut records = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                records += 1;
                let key: Value = serde_json::from_slice(m.key().unwrap()).unwrap();
                if key["pipeline"] == group {
                    keys.insert(key.to_string());
                }
                if m.offset() + 1 >= high {
                    break;
                }
            }
            Some(Err(_)) => break,
            None if high == low => break,
            None => {}
        }
    }
    (keys, records)
}

/// The value of `key` in `topic`'s config.
fn topic_config(topic: &str, key: &str) -> Option<String> {
    let admin: AdminClient<DefaultClientContext> = client().create().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let described = rt.block_on(admin.describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new()));
    let resource = described.unwrap().pop()?.ok()?;
    resource.get(key)?.value.clone()
}

/// A scenario: `drive` runs the group while `produce_slice(i)` writes the
/// i-th of [`SLICES`] slices of the traffic; then both runs are closed with
/// a marker per partition and compared. `copies`: identical repeats of a
/// window or alert are allowed (a kill -9).
fn scenario(name: &str, copies: bool, drive: impl FnOnce(&mut Group, &dyn Fn(usize))) {
    let dir = TestDir::new();
    let (metrics, checkpoints) = (unique(&format!("{name}-samples")), unique(&format!("{name}-checkpoints")));
    let (group, single_group) = (unique(&format!("{name}-group")), unique(&format!("{name}-single")));
    create_topic(&metrics, PARTITIONS);
    let samples = traffic();
    let (expected, late) = oracle(&samples);
    assert!(late >= 10 && expected.len() >= 100, "a meaningful oracle: {late} late, {} windows", expected.len());
    let slices: Vec<Vec<Msg>> = samples.chunks(samples.len().div_ceil(SLICES)).map(messages).collect();

    let mut single = Group::new(&dir, "single", &single_group, &metrics, &checkpoints);
    single.start();
    single.stable(1);
    let mut aggregators = Group::new(&dir, "aggregator", &group, &metrics, &checkpoints);
    let produce_slice = |i: usize| {
        produce(&metrics, &slices[i]);
        std::thread::sleep(Duration::from_millis(300));
    };
    drive(&mut aggregators, &produce_slice);

    // Every sample is through both runs; then one marker per partition,
    // stamped now, moves each partition's watermark past every window.
    for g in [&aggregators.group, &single.group] {
        assert!(wait_caught_up(g, &metrics, PARTITIONS, Duration::from_secs(120)), "{g} never caught up");
    }
    produce_flush_markers(&metrics, PARTITIONS);
    for g in [&aggregators.group, &single.group] {
        assert!(wait_caught_up(g, &metrics, PARTITIONS, Duration::from_secs(60)), "{g} never took the markers");
    }
    std::thread::sleep(Duration::from_millis(1500));
    // The running aggregators' checkpoint metrics moved (interval 1 s).
    let written = aggregators.metric("weir_checkpoints_total{input=\"samples\",outcome=\"written\"}");
    let bytes = aggregators.metric("weir_checkpoint_bytes");
    let took = aggregators.metric("weir_checkpoint_duration_seconds_count");
    let restores = aggregators.metric("weir_checkpoint_restore_seconds_count");
    let restored = aggregators.metric("weir_checkpoint_restored_total");
    let lag = aggregators.metric("weir_checkpoint_lag_seconds");
    assert!(
        written >= 1.0 && took >= written && bytes > 0.0,
        "{name}: {written} checkpoints, {took} timed, {bytes} bytes"
    );
    assert!(restores >= 1.0 && restored >= 1.0, "{name}: {restores} restores, {restored} states restored");
    assert!(lag <= 10.0 * aggregators.running.len() as f64, "{name}: checkpoint lag {lag} s with a 1 s interval");
    aggregators.stop_all();
    single.stop_all();

    let (reference, _) = by_window(single.records("windows.ndjson"), false, "single process");
    if reference.len() != expected.len() {
        eprintln!("single process log:\n{}", single.logs());
    }
    assert_eq!(reference.len(), expected.len(), "the single process emits every window of the oracle");
    for ((start, metric, txn, os), values) in &expected {
        let labels = serde_json::json!({"os": os, "txn": txn}).to_string();
        let w = reference
            .get(&(iso(*start), metric.clone(), labels))
            .unwrap_or_else(|| panic!("no window {start} {metric} {txn} {os}"));
        check_window(w, *start, values);
    }
    let (windows, repeated) = by_window(aggregators.records("windows.ndjson"), copies, name);
    let differ: Vec<_> = reference.iter().filter(|(k, w)| windows.get(*k) != Some(*w)).map(|(k, _)| k).collect();
    if !differ.is_empty() || windows.len() != reference.len() {
        eprintln!("{name} logs:\n{}", aggregators.logs());
    }
    for key in differ.iter().take(3) {
        let from: Vec<_> = aggregators
            .folders
            .iter()
            .filter(|f| by_window(read_ndjson(&f.join("windows.ndjson")), true, name).0.contains_key(*key))
            .collect();
        eprintln!(
            "{name}: window {key:?} from {from:?}: {:?} against the single process's {}",
            windows.get(*key),
            reference[*key]
        );
    }
    assert!(
        differ.is_empty(),
        "{name}: {} of {} windows missing or different from the single process's",
        differ.len(),
        reference.len()
    );
    assert_eq!(windows.len(), reference.len(), "{name}: no window the single process lacks");

    // Alerts: the same transitions as the single process and the oracle.
    let response: Series = expected
        .iter()
        .filter(|((_, metric, _, _), _)| metric == "response_time_ms")
        .map(|((start, _, txn, os), values)| ((*start, txn.clone(), os.clone()), values.clone()))
        .collect();
    let mut oracle_alerts = alert_transitions(&response);
    oracle_alerts.sort();
    assert!(THRESHOLD > 0.0 && oracle_alerts.len() == 2, "the traffic fires and resolves one alert: {oracle_alerts:?}");
    assert_eq!(transitions(&single.records("alerts.ndjson"), false), oracle_alerts, "single process alerts");
    assert_eq!(transitions(&aggregators.records("alerts.ndjson"), copies), oracle_alerts, "{name}: alerts");

    // The checkpoint topic holds one key per partition and keyed filter,
    // and is compacted (what keeps it at about that many records).
    let (keys, records) = checkpoint_keys(&checkpoints, &group);
    assert_eq!(topic_config(&checkpoints, "cleanup.policy").as_deref(), Some("compact"), "{name}: checkpoint topic");
    assert_eq!(keys.len(), PARTITIONS as usize * KEYED_FILTERS, "{name}: checkpoint keys {keys:?}");
    let logs = aggregators.logs();
    assert!(logs.contains("partition state restored"), "{name}: some partition's state moved:\n{logs}");
    eprintln!(
        "{name}: {} windows and {} alert transitions equal to one process and the oracle; {repeated} identical copies; checkpoint topic {records} records, {} keys of this group",
        windows.len(),
        oracle_alerts.len(),
        keys.len()
    );
}

/// A second aggregator joins while samples flow.
#[test]
#[ignore = "needs the real servers: just test-full"]
fn an_aggregator_joining_while_samples_flow_keeps_every_window_whole() {
    scenario("join", false, |group, produce| {
        group.start();
        group.stable(1);
        (0..5).for_each(produce);
        group.start();
        (5..8).for_each(produce);
        group.stable(2);
        (8..SLICES).for_each(produce);
    });
}

/// 1 -> 3 -> 1 aggregators while samples flow.
#[test]
#[ignore = "needs the real servers: just test-full"]
fn scaling_one_to_three_to_one_keeps_every_window_whole() {
    scenario("scale", false, |group, produce| {
        group.start();
        group.stable(1);
        (0..3).for_each(produce);
        group.start();
        group.start();
        (3..6).for_each(produce);
        group.stable(3);
        produce(6);
        group.stop(2);
        produce(7);
        group.stop(1);
        (8..10).for_each(produce);
        group.stable(1);
        (10..SLICES).for_each(produce);
    });
}

/// kill -9 of one of two aggregators mid-window, restarted after 10 s.
#[test]
#[ignore = "needs the real servers: just test-full"]
fn a_killed_aggregator_restarted_after_10_s_loses_no_sample_and_counts_none_twice() {
    scenario("kill", true, |group, produce| {
        group.start();
        group.start();
        group.stable(2);
        (0..5).for_each(produce);
        group.kill(1);
        (5..7).for_each(produce);
        std::thread::sleep(Duration::from_secs(10));
        group.start();
        (7..SLICES).for_each(produce);
        group.stable(2);
    });
}

/// A rolling restart of three aggregators, one at a time.
#[test]
#[ignore = "needs the real servers: just test-full"]
fn a_rolling_restart_keeps_every_window_whole() {
    scenario("rolling", false, |group, produce| {
        for _ in 0..3 {
            group.start();
        }
        group.stable(3);
        (0..3).for_each(produce);
        for slice in [3, 5, 7] {
            group.stop(0);
            produce(slice);
            group.start();
            produce(slice + 1);
            group.stable(3);
        }
        (9..SLICES).for_each(produce);
    });
}

/// A checkpoint whose offset the partition does not reach (the topic was
/// deleted and made again under the same name) is dropped with an ERROR:
/// the new topic's samples are all counted, none taken for a repeat.
#[test]
#[ignore = "needs the real servers: just test-full"]
fn a_checkpoint_past_the_partitions_end_is_dropped_not_a_black_hole() {
    let dir = TestDir::new();
    let (metrics, checkpoints, group) =
        (unique("remade-samples"), unique("remade-checkpoints"), unique("remade-group"));
    let samples: Vec<Sample> = traffic().into_iter().filter(|s| s.partition == 0).take(300).collect();
    let run_once = |name: &'static str, samples: &[Sample]| {
        create_topic(&metrics, 1);
        let ones: Vec<Sample> = samples.iter().map(|s| Sample { partition: 0, ..*s }).collect();
        produce(&metrics, &messages(&ones));
        let mut g = Group::new(&dir, name, &group, &metrics, &checkpoints);
        g.start();
        assert!(wait_caught_up(&group, &metrics, 1, Duration::from_secs(60)), "{name} never caught up");
        produce_flush_markers(&metrics, 1);
        assert!(wait_caught_up(&group, &metrics, 1, Duration::from_secs(60)), "{name} never took the marker");
        std::thread::sleep(Duration::from_millis(1500));
        g.stop_all();
        let counted: u64 = g
            .records("windows.ndjson")
            .iter()
            .filter(|w| w["metric"] != FLUSH_METRIC)
            .map(|w| w["count"].as_u64().unwrap())
            .sum();
        (counted, g.logs())
    };
    let (first, _) = run_once("before", &samples);
    assert!(first > 200, "the first topic's samples are counted: {first}");
    let admin: AdminClient<DefaultClientContext> = client().create().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(admin.delete_topics(&[&metrics], &AdminOptions::new())).unwrap();
    assert!(wait_for(Duration::from_secs(30), || topic_config(&metrics, "cleanup.policy").is_none()), "topic deleted");
    // Fewer samples than the checkpoint's offset: all below it.
    let (second, logs) = run_once("after", &samples[..100]);
    assert!(logs.contains("covers offsets the partition does not have"), "said at ERROR:\n{logs}");
    let (expected, _) = oracle(&samples[..100].iter().map(|s| Sample { partition: 0, ..*s }).collect::<Vec<_>>());
    assert_eq!(second, expected.values().map(|v| v.len() as u64).sum::<u64>(), "every sample of the new topic counted");
}
