//! Reading a window record, as `percentiles` emits it:
//! `{"window_start": RFC 3339, "window_end": RFC 3339, "metric": "...",
//! "labels": {...}, "count": n, "p95": x, ...}`. It owns what counts as a
//! well-formed window record; which rules apply is `engine`'s.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use weir_plugin_sdk::{self as sdk, Fields, RawValue, json};

/// A window record's identity and times, borrowed from its body.
#[derive(Debug)]
pub struct WindowView<'a> {
    /// Window start, ns since the epoch.
    pub start: i64,
    /// Window end, ns since the epoch.
    pub end: i64,
    /// `window_start` as written, for templates.
    pub start_text: Cow<'a, str>,
    /// `window_end` as written, for templates.
    pub end_text: Cow<'a, str>,
    /// The series' labels.
    pub labels: BTreeMap<String, String>,
}

/// The metric name of a record body, if it has one.
pub fn metric<'a>(fields: &Fields<'a>) -> Option<Cow<'a, str>> {
    fields.get("metric").and_then(sdk::as_str)
}

/// A stat of the window (`p95`, `count`), if present and numeric.
pub fn stat(fields: &Fields<'_>, name: &str) -> Option<f64> {
    fields.get(name).and_then(sdk::as_f64)
}

/// Read the times and labels of a window record; the error names the field.
pub fn parse<'a>(fields: &Fields<'a>) -> Result<WindowView<'a>, String> {
    let time = |key: &str| -> Result<(i64, Cow<'a, str>), String> {
        let raw = fields.get(key).ok_or_else(|| format!("field {key:?} is missing"))?;
        let text = sdk::as_str(raw)
            .ok_or_else(|| format!("field {key:?} is not a string (got {})", json::quote(raw.get())))?;
        let nanos = json::parse_rfc3339(&text)
            .ok_or_else(|| format!("field {key:?} is not an RFC 3339 time (got {text:?})"))?;
        Ok((nanos, text))
    };
    let (start, start_text) = time("window_start")?;
    let (end, end_text) = time("window_end")?;
    if end <= start {
        return Err(format!("window_end {end_text} is not after window_start {start_text}"));
    }
    let labels = match fields.get("labels") {
        None => BTreeMap::new(),
        Some(raw) => labels(raw)?,
    };
    Ok(WindowView { start, end, start_text, end_text, labels })
}

fn labels(raw: &RawValue) -> Result<BTreeMap<String, String>, String> {
    if raw.get() == "null" {
        return Ok(BTreeMap::new());
    }
    let object: HashMap<Cow<'_, str>, &RawValue> = serde_json::from_str(raw.get())
        .map_err(|_| format!("field \"labels\" is not an object (got {})", json::quote(raw.get())))?;
    object
        .into_iter()
        .map(|(k, v)| match sdk::as_str(v) {
            Some(text) => Ok((k.into_owned(), text.into_owned())),
            None => Err(format!("field \"labels.{k}\" is not a string (got {})", json::quote(v.get()))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_times_labels_and_stats() {
        let body = br#"{"window_start":"2026-11-22T10:15:00Z","window_end":"2026-11-22T10:30:00Z","metric":"latency_ms","labels":{"op":"pay"},"count":3,"p95":812.5}"#;
        let fields = sdk::fields(body).unwrap();
        assert_eq!(metric(&fields).as_deref(), Some("latency_ms"));
        let w = parse(&fields).unwrap();
        assert_eq!(w.end - w.start, 900_000_000_000);
        assert_eq!(w.start_text, "2026-11-22T10:15:00Z");
        assert_eq!(w.labels["op"], "pay");
        assert_eq!(stat(&fields, "p95"), Some(812.5));
        assert_eq!(stat(&fields, "p99"), None);
    }

    #[test]
    fn malformed_window_records_say_which_field() {
        let cases: [(&[u8], &str); 4] = [
            (br#"{"metric":"m","window_end":"2026-11-22T10:30:00Z"}"#, "field \"window_start\" is missing"),
            (br#"{"metric":"m","window_start":"10:15","window_end":"2026-11-22T10:30:00Z"}"#, "field \"window_start\" is not an RFC 3339 time (got \"10:15\")"),
            (br#"{"metric":"m","window_start":"2026-11-22T10:30:00Z","window_end":"2026-11-22T10:30:00Z"}"#, "window_end 2026-11-22T10:30:00Z is not after window_start 2026-11-22T10:30:00Z"),
            (br#"{"metric":"m","window_start":"2026-11-22T10:15:00Z","window_end":"2026-11-22T10:30:00Z","labels":{"a":1}}"#, "field \"labels.a\" is not a string (got 1)"),
        ];
        for (body, want) in cases {
            let fields = sdk::fields(body).unwrap();
            assert_eq!(parse(&fields).unwrap_err(), want);
        }
    }
}
