//! Reading fields from a record body and writing the bodies this filter
//! produces: the metric record and the enriched raw record.
//!
//! Everything here borrows from or splices into the body bytes through
//! `weir-plugin-sdk`; no body is parsed into a DOM and serialised again. This
//! module owns the output shapes; it does not decide what matched (`rules.rs`).

use std::borrow::Cow;

use weir_plugin_sdk::{Fields, ObjectWriter, RawValue};

use crate::config::Mode;
use crate::value::Value;

/// Field added to a raw record whose value could not be read, with the reason.
pub const ERROR_FIELD: &str = "extract_error";

/// A validated dotted field path such as `app.version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    full: String,
    /// Byte length of the first segment, looked up in the already-parsed top level.
    head_len: usize,
}

impl FieldPath {
    /// Check a dotted path: non-empty segments separated by `.`.
    pub fn parse(path: &str) -> Result<Self, String> {
        if path.split('.').any(str::is_empty) {
            return Err(format!("invalid field path {path:?}: empty segment"));
        }
        let head_len = path.find('.').unwrap_or(path.len());
        Ok(Self { full: path.to_owned(), head_len })
    }

    /// The path as configured.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    fn head(&self) -> &str {
        &self.full[..self.head_len]
    }

    fn tail(&self) -> Option<&str> {
        self.full.get(self.head_len + 1..)
    }
}

/// A record body with its top level parsed once, so that the source and
/// every field label cost one lookup each rather than one parse each (the
/// SDK's `lookup` starts from the top every time).
pub struct RecordView<'a> {
    fields: Option<Fields<'a>>,
}

impl<'a> RecordView<'a> {
    /// Parse the top level of `body`. A body that is not a JSON object has no
    /// fields, so every lookup misses.
    pub fn new(body: &'a [u8]) -> Self {
        Self { fields: weir_plugin_sdk::fields(body).ok() }
    }

    /// The raw JSON at `path`, descending through nested objects.
    pub fn lookup(&self, path: &FieldPath) -> Option<&'a RawValue> {
        let top = self.fields.as_ref()?.get(path.head())?;
        match path.tail() {
            None => Some(top),
            Some(tail) => weir_plugin_sdk::lookup(top.get().as_bytes(), tail),
        }
    }

    /// The string at `path`; `None` when missing or not a string.
    pub fn lookup_str(&self, path: &FieldPath) -> Option<Cow<'a, str>> {
        weir_plugin_sdk::as_str(self.lookup(path)?)
    }

    /// The field at `path` as label text: strings decoded, numbers and
    /// booleans as their JSON text; `None` for missing, null, objects and
    /// arrays, which make no sensible label.
    pub fn lookup_label(&self, path: &FieldPath) -> Option<Cow<'a, str>> {
        let raw = self.lookup(path)?;
        let text = raw.get();
        match text.as_bytes().first()? {
            b'"' => weir_plugin_sdk::as_str(raw),
            b'-' | b'0'..=b'9' | b't' | b'f' => Some(Cow::Borrowed(text)),
            _ => None,
        }
    }
}

/// The body of a metric record:
/// `{"metric":"<name>","value":<number>,"labels":{"<k>":"<v>",...}}`, and
/// `"match":<explained>` after them when `explain` is on.
/// `labels` must already be sorted by key (rules sort them once, at configure).
pub fn metric_body(metric: &str, value: Value, labels: &[(&str, &str)], explained: Option<&str>) -> String {
    debug_assert!(labels.windows(2).all(|w| w[0].0 < w[1].0), "labels must be sorted");
    let mut label_object = ObjectWriter::with_capacity(16 * labels.len() + 2);
    for (key, text) in labels {
        label_object.str(key, text);
    }
    let label_object = label_object.finish();
    let mut body = ObjectWriter::with_capacity(48 + metric.len() + label_object.len());
    body.str("metric", metric);
    match value {
        Value::Integer(i) => body.i64("value", i),
        Value::Float(f) => body.f64("value", f),
    };
    body.raw("labels", utf8(&label_object));
    if let Some(explained) = explained {
        body.raw("match", explained);
    }
    String::from_utf8(body.finish()).expect("an ObjectWriter fed only str writes UTF-8")
}

/// The raw record with what was extracted spliced in before its closing `}`:
/// `enrich_field` holding the metric body (mode `first`) or an array of them
/// (mode `all`, even for one), and `extract_error` with the reasons joined by
/// `"; "` when any value failed. Returns `None` when there is nothing to add
/// or the body is not an object, meaning: pass the body on untouched.
pub fn enrich(body: &[u8], enrich_field: &str, mode: Mode, metrics: &[String], errors: &[String]) -> Option<Vec<u8>> {
    if metrics.is_empty() && errors.is_empty() {
        return None;
    }
    let extra: usize = metrics.iter().map(|m| m.len() + 1).sum::<usize>()
        + errors.iter().map(|e| e.len() + 2).sum::<usize>()
        + enrich_field.len()
        + ERROR_FIELD.len()
        + 16;
    let mut writer = ObjectWriter::extend(body, extra).ok()?;
    match (mode, metrics) {
        (_, []) => {}
        (Mode::First, [only]) => {
            writer.raw(enrich_field, only);
        }
        (Mode::First, [first, ..]) => {
            debug_assert!(false, "first mode yields at most one metric per record");
            writer.raw(enrich_field, first);
        }
        (Mode::All, all) => {
            let mut array = String::with_capacity(extra);
            array.push('[');
            array.push_str(&all.join(","));
            array.push(']');
            writer.raw(enrich_field, &array);
        }
    }
    if !errors.is_empty() {
        writer.str(ERROR_FIELD, &errors.join("; "));
    }
    Some(writer.finish())
}

fn utf8(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("an ObjectWriter fed only str writes UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value as Json, json};

    fn path(p: &str) -> FieldPath {
        FieldPath::parse(p).unwrap()
    }

    #[test]
    fn paths_refuse_empty_segments() {
        assert!(FieldPath::parse("a.b").is_ok());
        assert_eq!(FieldPath::parse("a..b"), Err(r#"invalid field path "a..b": empty segment"#.into()));
        assert!(FieldPath::parse("").is_err());
        assert!(FieldPath::parse(".a").is_err());
        assert!(FieldPath::parse("a.").is_err());
    }

    #[test]
    fn lookups_descend_and_decode() {
        let body = br#"{"message":"a\"b","os":"ios","app":{"version":"1.2","build":7,"beta":true,"x":null,"o":{}}}"#;
        let view = RecordView::new(body);
        assert_eq!(view.lookup_str(&path("message")).as_deref(), Some("a\"b"));
        assert_eq!(view.lookup_str(&path("app.version")).as_deref(), Some("1.2"));
        assert_eq!(view.lookup_str(&path("app.build")), None);
        assert_eq!(view.lookup_label(&path("app.build")).as_deref(), Some("7"));
        assert_eq!(view.lookup_label(&path("app.beta")).as_deref(), Some("true"));
        assert_eq!(view.lookup_label(&path("app.x")), None);
        assert_eq!(view.lookup_label(&path("app.o")), None);
        assert_eq!(view.lookup_label(&path("app.missing")), None);
        assert_eq!(view.lookup_label(&path("os.deeper")), None);
        assert_eq!(RecordView::new(b"not json").lookup(&path("message")).map(|v| v.get()), None);
    }

    #[test]
    fn metric_body_has_the_agreed_shape() {
        let body = metric_body("response_time", Value::Integer(231), &[("os", "ios"), ("txn", "pay\"ment")], None);
        assert_eq!(body, r#"{"metric":"response_time","value":231,"labels":{"os":"ios","txn":"pay\"ment"}}"#);
        let body = metric_body("page_load", Value::Float(1200.0), &[], None);
        assert_eq!(body, r#"{"metric":"page_load","value":1200.0,"labels":{}}"#);
        let parsed: Json = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed, json!({"metric": "page_load", "value": 1200.0, "labels": {}}));
    }

    #[test]
    fn enrich_splices_without_touching_the_original_bytes() {
        let raw = br#"{"message":"x",  "n" : 1 }"#;
        let m = metric_body("m", Value::Integer(1), &[], None);
        let out = enrich(raw, "extract", Mode::First, std::slice::from_ref(&m), &[]).unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"message":"x",  "n" : 1 ,"extract":{"metric":"m","value":1,"labels":{}}}"#
        );
    }

    #[test]
    fn all_mode_always_writes_an_array_and_errors_join() {
        let raw = br#"{"message":"x"}"#;
        let a = metric_body("a", Value::Integer(1), &[], None);
        let b = metric_body("b", Value::Float(0.5), &[], None);
        let out = enrich(raw, "extract", Mode::All, &[a.clone(), b], &["e1".into(), "e2".into()]).unwrap();
        let parsed: Json = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            parsed,
            json!({"message": "x",
                   "extract": [{"metric": "a", "value": 1, "labels": {}}, {"metric": "b", "value": 0.5, "labels": {}}],
                   "extract_error": "e1; e2"})
        );
        let out = enrich(raw, "extract", Mode::All, &[a], &[]).unwrap();
        let parsed: Json = serde_json::from_slice(&out).unwrap();
        assert!(parsed["extract"].is_array());
    }

    #[test]
    fn nothing_to_add_or_no_object_means_untouched() {
        assert_eq!(enrich(br#"{"a":1}"#, "extract", Mode::First, &[], &[]), None);
        assert_eq!(enrich(b"[1]", "extract", Mode::First, &[], &["e".into()]), None);
    }
}
