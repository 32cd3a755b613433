//! Consumer lag per partition, from librdkafka's statistics (emitted every
//! `statistics.interval.ms`, 10 s unless `librdkafka:` says otherwise), as
//! `weir_kafka_consumer_lag_messages{input, topic, partition}`.
//!
//! The lag is librdkafka's `consumer_lag`: the partition's high watermark
//! (last stable offset under `read_committed`) minus the group's committed
//! offset. Weir commits only what was delivered, so it counts messages not
//! yet delivered or not yet read. A partition this consumer does not own,
//! or whose committed offset is not known yet, reports no lag; its series
//! is removed, so a rebalance leaves no stale lag behind.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Deserialize;

use crate::core::metrics::catalogue::KAFKA_CONSUMER_LAG;
use crate::core::metrics::registry;

/// librdkafka's default is off; every 10 s keeps the lag fresh for a
/// scrape every 15-30 s at the cost of one JSON document per interval.
pub const DEFAULT_STATISTICS_INTERVAL_MS: &str = "10000";

/// The part of librdkafka's statistics JSON read here.
#[derive(Deserialize)]
struct Statistics {
    #[serde(default)]
    topics: BTreeMap<String, TopicStatistics>,
}

#[derive(Deserialize)]
struct TopicStatistics {
    #[serde(default)]
    partitions: BTreeMap<String, PartitionStatistics>,
}

#[derive(Deserialize)]
struct PartitionStatistics {
    partition: i32,
    consumer_lag: i64,
}

/// `(topic, partition, lag)` of every partition with a known lag, from one
/// statistics document. librdkafka's internal partition -1 and lags of -1
/// (unknown) are left out.
///
/// # Errors
/// When the document is not librdkafka statistics JSON.
pub fn partition_lags(json: &[u8]) -> Result<Vec<(String, i32, i64)>, serde_json::Error> {
    let stats: Statistics = serde_json::from_slice(json)?;
    Ok(stats
        .topics
        .into_iter()
        .flat_map(|(topic, t)| {
            t.partitions
                .into_values()
                .filter(|p| p.partition >= 0 && p.consumer_lag >= 0)
                .map(move |p| (topic.clone(), p.partition, p.consumer_lag))
        })
        .collect())
}

/// The lag gauges of one input: set from each statistics document, and
/// removed when their partition stops reporting or the input stops.
pub struct LagGauges {
    input: String,
    served: Mutex<Vec<(String, String)>>,
}

impl LagGauges {
    /// Gauges for the input named `input`.
    pub fn new(input: &str) -> Self {
        LagGauges { input: input.to_string(), served: Mutex::default() }
    }

    /// Apply one statistics document; a malformed one is logged and skipped.
    pub fn update(&self, json: &[u8]) {
        let lags = match partition_lags(json) {
            Ok(lags) => lags,
            Err(error) => {
                tracing::warn!(input = self.input, %error, "cannot read librdkafka statistics; consumer lag not updated");
                return;
            }
        };
        let mut served = self.served.lock().unwrap_or_else(|p| p.into_inner());
        let now: Vec<(String, String)> = lags.iter().map(|(t, p, _)| (t.clone(), p.to_string())).collect();
        for (topic, partition) in served.iter().filter(|s| !now.contains(s)) {
            registry().remove(&KAFKA_CONSUMER_LAG, &[&self.input, topic, partition]);
        }
        for ((topic, partition), (_, _, lag)) in now.iter().zip(&lags) {
            registry().gauge(&KAFKA_CONSUMER_LAG, &[&self.input, topic, partition]).set(*lag);
        }
        *served = now;
    }
}

impl Drop for LagGauges {
    fn drop(&mut self) {
        let served = self.served.get_mut().unwrap_or_else(|p| p.into_inner());
        for (topic, partition) in served.iter() {
            registry().remove(&KAFKA_CONSUMER_LAG, &[&self.input, topic, partition]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trimmed from a real librdkafka 2.x consumer's statistics: one topic
    /// with the internal partition -1, an owned partition with a known lag,
    /// and one whose committed offset is unknown (lag -1).
    const STATS: &str = r#"{
      "name": "rdkafka#consumer-1", "type": "consumer", "ts": 5416934853, "time": 1732960000,
      "brokers": {},
      "topics": {
        "mobile-chunks": {
          "topic": "mobile-chunks", "age": 9013, "metadata_age": 9004,
          "partitions": {
            "0": { "partition": 0, "broker": 1, "fetch_state": "active", "hi_offset": 160,
                   "committed_offset": 100, "stored_offset": 100, "consumer_lag": 60, "consumer_lag_stored": 60 },
            "1": { "partition": 1, "broker": 1, "fetch_state": "active", "hi_offset": 40,
                   "committed_offset": -1001, "stored_offset": -1001, "consumer_lag": -1, "consumer_lag_stored": -1 },
            "-1": { "partition": -1, "broker": -1, "fetch_state": "none", "hi_offset": -1001,
                    "committed_offset": -1001, "consumer_lag": -1, "consumer_lag_stored": -1 }
          }
        }
      },
      "cgrp": { "state": "up", "join_state": "steady", "assignment_size": 2 }
    }"#;

    #[test]
    fn reads_the_lag_of_partitions_with_a_known_commit() {
        assert_eq!(partition_lags(STATS.as_bytes()).unwrap(), [("mobile-chunks".to_string(), 0, 60)]);
        assert_eq!(partition_lags(br#"{"name": "x", "topics": {}}"#).unwrap(), []);
        assert!(partition_lags(b"not json").is_err());
    }

    #[test]
    fn gauges_follow_the_partitions_that_report_and_go_with_the_input() {
        let gauges = LagGauges::new("lag-test");
        let series = |p| {
            format!("weir_kafka_consumer_lag_messages{{input=\"lag-test\",topic=\"mobile-chunks\",partition=\"{p}\"}}")
        };
        gauges.update(STATS.as_bytes());
        assert!(registry().render().contains(&format!("{} 60", series(0))));
        gauges.update(STATS.replace("\"consumer_lag\": 60", "\"consumer_lag\": -1").as_bytes());
        assert!(!registry().render().contains(&series(0)), "a partition no longer reporting is removed");
        gauges.update(STATS.as_bytes());
        drop(gauges);
        assert!(!registry().render().contains(&series(0)), "a stopped input leaves no lag behind");
    }
}
