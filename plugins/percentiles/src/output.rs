//! The body of an emitted window record. It owns the output shape:
//!
//! ```json
//! {"window_start":"2026-11-22T10:15:00Z","window_end":"2026-11-22T10:30:00Z",
//!  "metric":"latency_ms","labels":{"op":"pay"},"count":812,"min":3,"max":2210,
//!  "mean":211.42,"p50":180,"p75":260,"p90":410,"p95":530,"p99":1210}
//! ```
//!
//! Times are RFC 3339 in UTC; numbers that are integral print as integers.

use weir_plugin_sdk::ObjectWriter;
use weir_plugin_sdk::json::{number, rfc3339};

use crate::engine::WindowRecord;
use crate::quantile::Quantile;

/// Room for a typical record with a few labels and five quantiles, so the
/// writer rarely reallocates.
const TYPICAL_BODY: usize = 320;

/// Serialise `record`; `quantiles` names its quantile values, in order.
pub fn body(record: &WindowRecord, quantiles: &[Quantile]) -> Vec<u8> {
    let stats = &record.stats;
    let mut w = ObjectWriter::with_capacity(TYPICAL_BODY);
    w.str("window_start", &rfc3339(record.start))
        .str("window_end", &rfc3339(record.end))
        .str("metric", &record.key.metric)
        .value("labels", &record.key.labels)
        .i64("count", i64::try_from(stats.count).unwrap_or(i64::MAX))
        .raw("min", &number(stats.min))
        .raw("max", &number(stats.max))
        .raw("mean", &number(stats.mean));
    for (q, value) in quantiles.iter().zip(&stats.quantiles) {
        w.raw(&q.name, &number(*value));
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::SeriesKey;
    use crate::pane::WindowStats;
    use serde_json::json;

    #[test]
    fn the_body_has_the_documented_shape() {
        let record = WindowRecord {
            start: 1_795_342_500_000_000_000,
            end: 1_795_343_400_000_000_000,
            key: SeriesKey { metric: "latency_ms".into(), labels: [("op".to_string(), "pay".to_string())].into() },
            stats: WindowStats { count: 3, min: 3.0, max: 12.0, mean: 7.5, quantiles: vec![8.0, 12.0] },
        };
        let quantiles = [Quantile::parse(&json!("p50")).unwrap(), Quantile::parse(&json!("p99.9")).unwrap()];
        let text = String::from_utf8(body(&record, &quantiles)).unwrap();
        assert_eq!(
            text,
            r#"{"window_start":"2026-11-22T10:15:00Z","window_end":"2026-11-22T10:30:00Z","metric":"latency_ms","labels":{"op":"pay"},"count":3,"min":3,"max":12,"mean":7.5,"p50":8,"p99_9":12}"#
        );
    }
}
