//! The `kafka` input and output against the real broker of
//! `tests/servers/kafka.sh`: round trip with malformed messages, kill -9
//! mid-stream (at least once, never committed past unacknowledged data),
//! and two stage-2 aggregators in one group equal to one process.
//! Every test uses its own topics and groups.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;

use super::kafka_bootstrap;
use crate::metrics::{chunk_line, traffic};
use crate::util::{TestDir, read_ndjson, repo, wait_for, weir};

const TIMEOUT: Duration = Duration::from_secs(10);

pub(super) fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("weir-test-{what}-{}-{nanos}", std::process::id())
}

pub(super) fn client() -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", kafka_bootstrap());
    c
}

pub(super) fn create_topic(name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = client().create().expect("an admin client");
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Kafka 3.6+ refuses timestamps over an hour ahead of the broker's clock
    // (KIP-937); the test traffic and the flush markers are event times in
    // the future, carried as message timestamps.
    // Nor may time-based retention (7 days) delete what the test wrote:
    // the traffic's event times are fixed days in the past, and the
    // broker would drop those segments mid-test (a consumer then meets
    // "offset out of range" and skips ahead).
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1))
        .set("message.timestamp.after.max.ms", "9223372036854775807")
        .set("retention.ms", "-1");
    let results = rt.block_on(admin.create_topics(&[topic], &AdminOptions::new())).unwrap_or_else(|e| {
        panic!("kafka at {} unreachable: {e} (run `bash tests/servers/kafka.sh start`)", kafka_bootstrap())
    });
    for r in results {
        r.unwrap_or_else(|(topic, e)| panic!("creating topic {topic}: {e}"));
    }
    // Wait until metadata shows every partition with a leader.
    let consumer: BaseConsumer = client().create().unwrap();
    assert!(wait_for(TIMEOUT, || {
        consumer
            .fetch_metadata(Some(name), Duration::from_secs(2))
            .ok()
            .and_then(|m| {
                m.topics().first().map(|t| t.partitions().len() == partitions as usize && t.error().is_none())
            })
            .unwrap_or(false)
    }));
}

/// One message to produce.
pub(super) struct Msg {
    pub partition: Option<i32>,
    pub key: Option<String>,
    pub payload: String,
    pub timestamp_ms: Option<i64>,
}

pub(super) fn msg(payload: impl Into<String>) -> Msg {
    Msg { partition: None, key: None, payload: payload.into(), timestamp_ms: None }
}

pub(super) fn produce(topic: &str, messages: &[Msg]) {
    let producer: BaseProducer = client().set("enable.idempotence", "true").set("linger.ms", "5").create().unwrap();
    for m in messages {
        let mut record: BaseRecord<'_, String, String> = BaseRecord::to(topic).payload(&m.payload);
        if let Some(p) = m.partition {
            record = record.partition(p);
        }
        if let Some(k) = &m.key {
            record = record.key(k);
        }
        if let Some(ts) = m.timestamp_ms {
            record = record.timestamp(ts);
        }
        let mut record = record;
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30)).expect("every test message delivered");
}

fn end_offsets(topic: &str, partitions: i32) -> Vec<i64> {
    let consumer: BaseConsumer = client().create().unwrap();
    (0..partitions).map(|p| consumer.fetch_watermarks(topic, p, TIMEOUT).unwrap().1).collect()
}

/// The group's committed offsets; -1 where nothing is committed.
fn committed(group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let consumer: BaseConsumer = client().set("group.id", group).create().unwrap();
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(topic, p);
    }
    // The coordinator may not know the group yet: nothing committed.
    let Ok(got) = consumer.committed_offsets(list, TIMEOUT) else {
        return vec![-1; partitions as usize];
    };
    (0..partitions)
        .map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o,
            _ => -1,
        })
        .collect()
}

pub(super) fn wait_caught_up(group: &str, topic: &str, partitions: i32, timeout: Duration) -> bool {
    let end = end_offsets(topic, partitions);
    // An empty partition has nothing to commit.
    let caught_up = |c: Vec<i64>| c.iter().zip(&end).all(|(c, e)| c == e || (*e == 0 && *c < 0));
    let ok = wait_for(timeout, || caught_up(committed(group, topic, partitions)));
    if !ok {
        eprintln!("group {group}: committed {:?}, end offsets {end:?}", committed(group, topic, partitions));
    }
    ok
}

pub(super) fn group_stable_with(group: &str, members: usize) -> bool {
    let consumer: BaseConsumer = client().create().unwrap();
    consumer
        .fetch_group_list(Some(group), TIMEOUT)
        .is_ok_and(|list| list.groups().first().is_some_and(|g| g.state() == "Stable" && g.members().len() == members))
}

/// Every message of `topic`, read from the beginning with no group.
fn consume_all(topic: &str, partitions: i32, expected: usize) -> Vec<(i32, Option<String>, Value, Option<i64>)> {
    let consumer: BaseConsumer =
        client().set("group.id", unique("reader")).set("enable.auto.commit", "false").create().unwrap();
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&list).unwrap();
    let mut out = Vec::new();
    let start = Instant::now();
    while out.len() < expected && start.elapsed() < Duration::from_secs(30) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let body = serde_json::from_slice(m.payload().unwrap()).unwrap();
            let key = m.key().map(|k| String::from_utf8(k.to_vec()).unwrap());
            out.push((m.partition(), key, body, m.timestamp().to_millis()));
        }
    }
    out
}

/// `weir run -c config` in the background, logging to `log`.
pub(super) fn spawn_weir(config: &Path, env: &[(&str, &str)], log: &Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    let mut cmd = weir();
    cmd.args(["run", "-c"]).arg(config).stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
    cmd.env("RUST_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("weir starts")
}

pub(super) fn signal(child: &Child, sig: &str) {
    let status = std::process::Command::new("kill").args([sig, &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

/// SIGTERM, then wait for a clean exit.
pub(super) fn stop(mut child: Child, log: &Path) {
    signal(&child, "-TERM");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                status.success(),
                "weir exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "weir did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "needs the real servers: just test-full"]
fn messages_round_trip_and_malformed_ones_are_dead_lettered_without_stalling() {
    let dir = TestDir::new();
    let (input, output, group) = (unique("in"), unique("out"), unique("group"));
    create_topic(&input, 2);
    create_topic(&output, 3);
    let mut messages: Vec<Msg> = (0..100)
        .map(|i| Msg {
            partition: Some(i % 2),
            key: Some(format!("k{i}")),
            payload: format!(r#"{{"n":{i},"app":"app{}"}}"#, i % 3),
            timestamp_ms: Some(1_800_000_000_000 + i64::from(i)),
        })
        .collect();
    for (i, bad) in ["{oops", "[1,2]", "plain text"].into_iter().enumerate() {
        messages.insert(10 + 20 * i, Msg { partition: Some(0), ..msg(bad) });
    }
    produce(&input, &messages);

    let config = dir.write(
        "weir.yaml",
        &format!(
            r#"
inputs:
  - {{ type: kafka, name: in, tag: app, brokers: "{b}", group_id: {group}, topics: [{input}], metadata_field: _kafka, commit_interval: 200ms }}
outputs:
  - {{ type: file, name: copy, match: app, path: out.ndjson }}
  - {{ type: kafka, name: out, match: app, brokers: "{b}", topic: "{output}", key: "{{app}}", compression: zstd }}
  - {{ type: file, name: dead_letter, match: weir.dead_letter, path: dlq.ndjson }}
"#,
            b = kafka_bootstrap()
        ),
    );
    let log = dir.path("weir.log");
    let child = spawn_weir(&config, &[], &log);
    let caught_up = wait_caught_up(&group, &input, 2, Duration::from_secs(60));
    stop(child, &log);
    assert!(caught_up, "the group never committed the end offsets: {}", std::fs::read_to_string(&log).unwrap());

    let copied = read_ndjson(&dir.path("out.ndjson"));
    assert_eq!(copied.len(), 100);
    let first = copied.iter().find(|r| r["n"] == 0).unwrap();
    assert_eq!(first["_kafka"]["topic"], input.as_str());
    assert_eq!(first["_kafka"]["partition"], 0);
    assert_eq!(first["_kafka"]["key"], "k0");
    assert_eq!(first["_kafka"]["timestamp"], 1_800_000_000_000i64);

    let dead = read_ndjson(&dir.path("dlq.ndjson"));
    assert_eq!(dead.len(), 3, "{dead:?}");
    for d in &dead {
        let reason = d["reason"].as_str().unwrap();
        assert!(reason.starts_with(&format!("topic {input} partition 0 offset ")), "{reason}");
        assert!(reason.contains("not a JSON object"), "{reason}");
        assert!(d["origin"].as_str().unwrap().starts_with(&format!("kafka:{input}/0@")), "{d}");
    }

    let produced = consume_all(&output, 3, 100);
    assert_eq!(produced.len(), 100);
    let mut partitions_of_key: HashMap<String, BTreeSet<i32>> = HashMap::new();
    for (partition, key, body, ts) in &produced {
        let key = key.clone().unwrap();
        assert_eq!(body["app"].as_str().unwrap(), key, "key rendered from the record");
        assert_eq!(*ts, Some(1_800_000_000_000 + body["n"].as_i64().unwrap()), "event time travels as the timestamp");
        partitions_of_key.entry(key).or_default().insert(*partition);
    }
    assert!(partitions_of_key.values().all(|p| p.len() == 1), "one key, one partition: {partitions_of_key:?}");
}

/// Partition and offset of every record in `out`, with how often each appears.
fn delivered_positions(out: &Path) -> BTreeMap<(i64, i64), usize> {
    let mut seen = BTreeMap::new();
    for r in read_ndjson(out) {
        *seen
            .entry((r["_kafka"]["partition"].as_i64().unwrap(), r["_kafka"]["offset"].as_i64().unwrap()))
            .or_insert(0) += 1;
    }
    seen
}

#[test]
#[ignore = "needs the real servers: just test-full"]
fn kill_9_mid_stream_loses_nothing_and_never_commits_past_delivered_data() {
    const PARTITIONS: i32 = 3;
    const ROUNDS: usize = 5;
    // Large enough that a round takes the consumer a second or more, so the
    // kill lands while it is still consuming and committing.
    const PER_ROUND: usize = 40_000;
    let dir = TestDir::new();
    let (topic, group) = (unique("fault"), unique("group"));
    create_topic(&topic, PARTITIONS);
    let config = dir.write(
        "weir.yaml",
        &format!(
            r#"
pipeline: {{ batch_max_records: 50, queue_capacity: 2 }}
inputs:
  - type: kafka
    name: in
    tag: app
    brokers: "{b}"
    group_id: {group}
    topics: {topic}
    metadata_field: _kafka
    commit_interval: 100ms
    # Static membership: a restarted member takes its place at once.
    librdkafka: {{ group.instance.id: fault-test, session.timeout.ms: 6000 }}
outputs:
  - {{ type: file, name: copy, match: app, path: out.ndjson, batch: {{ max_records: 50, max_wait: 20ms }} }}
"#,
            b = kafka_bootstrap()
        ),
    );
    let out = dir.path("out.ndjson");
    let log = dir.path("weir.log");
    let mut next_id = 0usize;
    let mut violations = Vec::new();
    let mut mid_stream = 0;
    for round in 0..ROUNDS {
        // More data arrives while the consumer is down.
        let batch: Vec<Msg> = (next_id..next_id + PER_ROUND).map(|id| msg(format!(r#"{{"id":{id}}}"#))).collect();
        next_id += PER_ROUND;
        produce(&topic, &batch);
        let size = || std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
        let before = size();
        let mut child = spawn_weir(&config, &[], &log);
        // Kill as soon as it is visibly mid-stream: some of the round written.
        let started = wait_for(Duration::from_secs(60), || size() > before + 20_000);
        signal(&child, "-KILL");
        child.wait().unwrap();
        assert!(started, "round {round}: no progress: {}", std::fs::read_to_string(&log).unwrap());
        // The dead process commits nothing more: every offset below the
        // committed one must be in the output.
        let seen = delivered_positions(&out);
        if seen.len() < next_id {
            mid_stream += 1;
        }
        for (p, &c) in committed(&group, &topic, PARTITIONS).iter().enumerate() {
            for offset in 0..c {
                if !seen.contains_key(&(p as i64, offset)) {
                    violations.push((round, p, offset, c));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "committed past undelivered data (round, partition, offset, committed): {:?}",
        &violations[..violations.len().min(10)]
    );

    // A last clean run to the end.
    let child = spawn_weir(&config, &[], &log);
    let caught_up = wait_caught_up(&group, &topic, PARTITIONS, Duration::from_secs(90));
    stop(child, &log);
    assert!(caught_up, "never caught up: {}", std::fs::read_to_string(&log).unwrap());

    let mut per_id: BTreeMap<u64, usize> = BTreeMap::new();
    for r in read_ndjson(&out) {
        *per_id.entry(r["id"].as_u64().unwrap()).or_insert(0) += 1;
    }
    let missing: Vec<usize> = (0..next_id).filter(|id| !per_id.contains_key(&(*id as u64))).collect();
    assert!(missing.is_empty(), "{} records lost, e.g. {:?}", missing.len(), &missing[..missing.len().min(10)]);
    let duplicates: usize = per_id.values().map(|n| n - 1).sum();
    eprintln!(
        "kill -9 x{ROUNDS} ({mid_stream} with records of the round not yet written): {next_id} records, all delivered; {duplicates} duplicates (at least once allows them)"
    );
    assert!(duplicates < next_id, "replays are bounded by the uncommitted tail of each kill");
    assert!(
        mid_stream >= ROUNDS - 1,
        "the kills must land mid-stream to test anything: only {mid_stream} of {ROUNDS} did"
    );
}

/// Window records of an output folder, keyed by (window_start, metric,
/// labels), without the flush marker's series.
pub(super) fn windows(out_dir: &Path) -> BTreeMap<(String, String, String), Value> {
    let mut got = BTreeMap::new();
    for w in read_ndjson(&out_dir.join("windows.ndjson")) {
        if w["metric"] == FLUSH_METRIC {
            continue;
        }
        let key = (
            w["window_start"].as_str().unwrap().to_string(),
            w["metric"].as_str().unwrap().to_string(),
            w["labels"].to_string(),
        );
        assert!(got.insert(key.clone(), w).is_none(), "window {key:?} emitted twice in {}", out_dir.display());
    }
    got
}

/// The metric of the markers that close every window (not compared).
pub(super) const FLUSH_METRIC: &str = "_flush";

/// One marker sample per partition of `topic`, stamped with the host's
/// "now": far ahead of the test traffic (days ago), yet within
/// `max_future`, which keeps a wrong clock from moving the watermark past
/// the host clock. Each partition's watermark then passes every window of
/// the traffic; only the markers' own window stays open.
pub(super) fn produce_flush_markers(topic: &str, partitions: i32) {
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let markers: Vec<Msg> = (0..partitions)
        .map(|p| Msg {
            partition: Some(p),
            key: None,
            payload: format!(r#"{{"metric":"{FLUSH_METRIC}","value":0,"labels":{{}}}}"#),
            timestamp_ms: Some(now_ms),
        })
        .collect();
    produce(topic, &markers);
}

/// Two stage-2 processes in one group over a 4-partition metrics topic emit,
/// together, exactly the windows one process emits.
///
/// How the end is driven: stage 2 never ends by itself, and SIGTERM saves
/// open windows instead of emitting them. So `allowed_lateness` is set above
/// the whole traffic's span (no event is late in any process, whatever the
/// interleaving of partitions), and after stage 1 has caught up the test
/// writes one marker sample per partition, stamped with the host clock (days
/// after the traffic, yet within `max_future`). Each process
/// owns at least one partition, sees a marker, and its watermark passes
/// every real window, which closes and is emitted; only the markers' own
/// window stays open. The single process runs at the same time in its own
/// group, so it too has processed every sample before the markers arrive. Once the group has committed the end offsets the
/// markers have been processed, and SIGTERM drains the emitted windows to
/// the files. The processes join before any sample is written, so no
/// rebalance moves a series between them mid-stream.
#[test]
#[ignore = "needs the real servers: just test-full"]
fn two_aggregators_in_one_group_equal_one_process() {
    let dir = TestDir::new();
    let (raw, metrics) = (unique("raw"), unique("metrics"));
    let (g1, g2, single) = (unique("stage1"), unique("stage2"), unique("single"));
    create_topic(&raw, 2);
    create_topic(&metrics, 4);
    let (chunks, _) = traffic();
    let lines: Vec<Msg> = chunks.iter().map(|c| msg(chunk_line(c[0].os, c))).collect();
    produce(&raw, &lines);

    let stage1 = repo().join("configs/two-stage/stage1.yaml");
    let stage2 = repo().join("configs/two-stage/stage2.yaml");
    let b = kafka_bootstrap();
    let out = |name: &str| dir.path(name).to_string_lossy().into_owned();
    let (out_a, out_b, out_single, out_1) = (out("a"), out("b"), out("single"), out("stage1"));
    let env2 = |group: &str, out_dir: &str| -> Vec<(String, String)> {
        [
            ("KAFKA_BROKERS", b.as_str()),
            ("METRICS_TOPIC", metrics.as_str()),
            ("STAGE2_GROUP", group),
            ("OUT_DIR", out_dir),
            ("ALLOWED_LATENESS", "1h"),
            ("IDLE_TIMEOUT", "1h"),
            ("TICK_INTERVAL", "200ms"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };
    let as_refs = |env: &[(String, String)]| env.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>();
    let spawn = |config: &Path, env: &[(String, String)], log: &str| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        spawn_weir(config, &env, &dir.path(log))
    };

    let a = spawn(&stage2, &as_refs(&env2(&g2, &out_a)), "a.log");
    let bb = spawn(&stage2, &as_refs(&env2(&g2, &out_b)), "b.log");
    let s = spawn(&stage2, &as_refs(&env2(&single, &out_single)), "single.log");
    assert!(
        wait_for(Duration::from_secs(60), || group_stable_with(&g2, 2)),
        "stage 2 group never stable with 2 members"
    );
    assert!(wait_for(Duration::from_secs(60), || group_stable_with(&single, 1)), "the single process never joined");

    let env1: Vec<(String, String)> = [
        ("KAFKA_BROKERS", b.as_str()),
        ("RAW_TOPIC", raw.as_str()),
        ("METRICS_TOPIC", metrics.as_str()),
        ("STAGE1_GROUP", g1.as_str()),
        ("OUT_DIR", out_1.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let s1 = spawn(&stage1, &env1, "stage1.log");
    let caught_up = wait_caught_up(&g1, &raw, 2, Duration::from_secs(120));
    stop(s1, &dir.path("stage1.log"));
    assert!(caught_up, "stage 1 never caught up: {}", std::fs::read_to_string(dir.path("stage1.log")).unwrap());

    // Every sample is processed before any marker: within a process,
    // partitions interleave, so a marker read early would close windows
    // that other partitions still feed.
    assert!(wait_caught_up(&g2, &metrics, 4, Duration::from_secs(60)), "stage 2 never caught up");
    assert!(wait_caught_up(&single, &metrics, 4, Duration::from_secs(60)), "the single process never caught up");
    produce_flush_markers(&metrics, 4);
    let done = wait_caught_up(&g2, &metrics, 4, Duration::from_secs(60))
        && wait_caught_up(&single, &metrics, 4, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(500));
    stop(a, &dir.path("a.log"));
    stop(bb, &dir.path("b.log"));
    stop(s, &dir.path("single.log"));
    assert!(done, "stage 2 never processed the markers: {}", std::fs::read_to_string(dir.path("a.log")).unwrap());

    let expected = windows(&dir.path("single"));
    if expected.len() < 50 {
        for f in ["single/dead-letter.ndjson", "stage1/stage1-dead-letter.ndjson", "single.log"] {
            let text = std::fs::read_to_string(dir.path(f)).unwrap_or_default();
            eprintln!("{f}: {}", &text[..text.len().min(1500)]);
        }
    }
    let (wa, wb) = (windows(&dir.path("a")), windows(&dir.path("b")));
    assert!(expected.len() >= 50, "a meaningful comparison: {} windows", expected.len());
    assert!(!wa.is_empty() && !wb.is_empty(), "both aggregators own series: {} and {}", wa.len(), wb.len());
    let overlap: Vec<_> = wa.keys().filter(|k| wb.contains_key(*k)).collect();
    assert!(overlap.is_empty(), "a series lives in one aggregator only: {overlap:?}");
    let mut union = wa;
    union.extend(wb);
    assert_eq!(union.len(), expected.len());
    for (key, w) in &expected {
        assert_eq!(union.get(key), Some(w), "window {key:?}");
    }
    eprintln!("scale-out: {} windows, identical across 1 and 2 aggregators", expected.len());
}

/// A filter-only reload leaves the consumer alone: no new subscription, no
/// rebalance, no replay from the last commit (which would duplicate).
#[test]
#[ignore = "needs the real servers: just test-full"]
fn a_filter_only_reload_leaves_the_consumer_and_its_offsets_alone() {
    let dir = TestDir::new();
    let topic = unique("reload");
    let group = unique("reload-group");
    create_topic(&topic, 2);
    let admin = crate::util::free_port();
    let plugin = crate::util::plugin_dir().join("tagger.wasm");
    let config = |version: &str| {
        format!(
            "admin: {{ address: 127.0.0.1:{admin} }}
inputs:
  - {{ type: kafka, brokers: [{brokers}], group_id: {group}, topics: [{topic}], start_at: earliest, tag: raw }}
filters:
  - {{ type: tagger, path: {plugin}, match: raw, config: {{ tag: t, version: {version} }} }}
outputs: [{{ type: file, path: out.ndjson, match: '*', batch: {{ max_wait: 10ms }} }}]
",
            brokers = kafka_bootstrap(),
            plugin = plugin.display()
        )
    };
    let file = dir.write("weir.yaml", &config("v0"));
    let log = dir.path("weir.log");
    let child = spawn_weir(&file, &[], &log);
    let out = dir.path("out.ndjson");
    produce(&topic, &(0..300).map(|n| msg(format!("{{\"n\":{n}}}"))).collect::<Vec<_>>());
    assert!(wait_for(Duration::from_secs(60), || read_ndjson(&out).len() == 300), "first half delivered");
    // Let a periodic commit land, so a restarted consumer would have something to replay from.
    std::thread::sleep(Duration::from_millis(1500));

    dir.write("weir.yaml", &config("v1"));
    let (status, body) = crate::util::http("POST", admin, "/-/reload").unwrap();
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["changes"]["inputs"]["unchanged"], serde_json::json!(["kafka"]), "{body}");

    produce(&topic, &(300..600).map(|n| msg(format!("{{\"n\":{n}}}"))).collect::<Vec<_>>());
    assert!(wait_for(Duration::from_secs(60), || read_ndjson(&out).len() >= 600), "second half delivered");
    std::thread::sleep(Duration::from_millis(500));
    // Read before stopping: shutdown itself revokes the partitions.
    let text = std::fs::read_to_string(&log).unwrap();
    stop(child, &log);

    let records = read_ndjson(&out);
    let mut seen = std::collections::BTreeSet::new();
    for r in &records {
        assert!(seen.insert(r["n"].as_u64().unwrap()), "record {} consumed twice: the consumer restarted", r["n"]);
    }
    assert_eq!(seen.len(), 600);
    assert!(records[..300].iter().all(|r| r["version"] == "v0"));
    assert!(records[300..].iter().all(|r| r["version"] == "v1"));
    assert_eq!(text.matches("kafka input subscribed").count(), 1, "subscribed once:\n{text}");
    assert_eq!(text.matches("partitions assigned").count(), 1, "assigned once:\n{text}");
    assert!(!text.contains("partitions revoked"), "no rebalance during the reload:\n{text}");
    assert_eq!(committed(&group, &topic, 2).iter().sum::<i64>(), 600, "offsets committed through the last message");
}

/// `weir_kafka_consumer_lag_messages` counts, per partition, the messages
/// between the end of the log and the group's commit: 0 once everything is
/// delivered, and exactly what is stuck behind an output that cannot
/// deliver.
#[test]
#[ignore = "needs the real servers: just test-full"]
fn consumer_lag_per_partition_counts_what_is_not_yet_delivered_and_committed() {
    let dir = TestDir::new();
    let (topic, group) = (unique("lag"), unique("lag-group"));
    create_topic(&topic, 2);
    let admin = crate::util::free_port();
    let config = |output: &str| {
        format!(
            "admin: {{ address: 127.0.0.1:{admin} }}
pipeline: {{ shutdown_timeout: 2s }}
inputs:
  - type: kafka
    name: collectors
    brokers: [{brokers}]
    group_id: {group}
    topics: [{topic}]
    commit_interval: 200ms
    librdkafka: {{ statistics.interval.ms: 500 }}
outputs: [{output}]
",
            brokers = kafka_bootstrap(),
        )
    };
    let lag = |partition: i32| -> Option<i64> {
        let series = format!(
            "weir_kafka_consumer_lag_messages{{input=\"collectors\",topic=\"{topic}\",partition=\"{partition}\"}} "
        );
        let (_, metrics) = crate::util::http("GET", admin, "/metrics")?;
        metrics.lines().find_map(|l| l.strip_prefix(&series)).map(|v| v.parse().unwrap())
    };
    let log = dir.path("weir.log");
    let lags_become = |expected: [i64; 2], timeout: Duration| {
        let ok = wait_for(timeout, || [lag(0), lag(1)] == expected.map(Some));
        assert!(ok, "lags {:?}, not {expected:?}: {}", [lag(0), lag(1)], std::fs::read_to_string(&log).unwrap());
    };
    let to = |counts: [usize; 2]| -> Vec<Msg> {
        (0..2)
            .flat_map(|p| {
                (0..counts[p as usize]).map(move |i| Msg { partition: Some(p), ..msg(format!("{{\"n\":{i}}}")) })
            })
            .collect()
    };

    // Everything delivered and committed: no lag.
    produce(&topic, &to([10, 4]));
    let file = dir.write("weir.yaml", &config("{ type: blackhole, match: '*' }"));
    let child = spawn_weir(&file, &[], &log);
    assert!(wait_caught_up(&group, &topic, 2, Duration::from_secs(60)), "{}", std::fs::read_to_string(&log).unwrap());
    lags_become([0, 0], Duration::from_secs(20));
    stop(child, &log);

    // Behind an Elasticsearch nobody answers for, nothing new is delivered,
    // so nothing new is committed: the lag is what was produced since.
    produce(&topic, &to([25, 7]));
    let dead = crate::util::free_port();
    let output = format!("{{ type: elasticsearch, match: '*', hosts: [\"http://127.0.0.1:{dead}\"], index: x }}");
    let file = dir.write("weir.yaml", &config(&output));
    let mut child = spawn_weir(&file, &[], &log);
    lags_become([25, 7], Duration::from_secs(30));
    // The drain gives up on the stuck records at shutdown_timeout: exit 1.
    signal(&child, "-TERM");
    assert_eq!(child.wait().unwrap().code(), Some(1));
}
