//! Dynamic strings of outputs: one [`Template`] language and one
//! [`FieldPath`] rule for every output's index, topic, key and URL (Vector's
//! `src/template.rs` and Fluent Bit's record accessor play this part there).
//!
//! The language, written down once:
//! - `{a.b}` is replaced by the body field at that [`FieldPath`];
//! - `{{` and `}}` are literal braces;
//! - with [`Template::with_time`] only, strftime specifiers (`%Y`, `%m`,
//!   `%d`, ...) take the record's event time in UTC and `%%` is a literal
//!   percent sign; elsewhere `%` is plain text (URLs are full of it);
//! - a value becomes text by one rule ([`write_value`]): a string as its
//!   text, a number or boolean as JSON, an object or array as canonical
//!   JSON (keys sorted at every level, no spaces), so `{labels}` names a
//!   series the same whatever order its labels came in;
//! - a missing or null field is an error naming the field, unless the
//!   caller gives a fallback.
//!
//! `threshold`'s alert text (annotations) is another language on purpose:
//! it is rendered inside the plugin from alert variables (`{{value}}`,
//! `{{window_start}}`), in the double-brace style of Prometheus alerting
//! rules. Both `generator_url` settings (the `threshold` rule's and the
//! `alertmanager` output's) take `{labels.NAME}`: see the README.

use std::fmt::Write as _;
use std::sync::Mutex;

use chrono::DateTime;
use chrono::format::{Item, StrftimeItems};
use serde_json::Value;

use super::record::Timestamp;

/// A dotted path to a field of a JSON object, such as `device.os`.
///
/// Lookup descends through nested objects first; when that finds nothing,
/// a top-level key spelled with the dots (`"device.os": ...`, as flattened
/// shippers write them) is taken instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    text: String,
    keys: Vec<String>,
}

impl FieldPath {
    /// Parse `text`: non-empty keys separated by single dots.
    ///
    /// # Errors
    /// A message naming the path when a key is empty or holds a brace.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() || text.split('.').any(|k| k.trim().is_empty() || k.contains(['{', '}'])) {
            return Err(format!("invalid field path {text:?}; expected e.g. app or device.os"));
        }
        Ok(FieldPath { text: text.to_string(), keys: text.split('.').map(str::to_string).collect() })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The keys, outermost first.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// The value at this path in `body`, if any.
    pub fn lookup<'a>(&self, body: &'a Value) -> Option<&'a Value> {
        let nested = self.keys.iter().try_fold(body, |v, key| v.get(key));
        nested.or_else(|| if self.keys.len() > 1 { body.get(&self.text) } else { None })
    }
}

impl<'de> serde::Deserialize<'de> for FieldPath {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        FieldPath::parse(&String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// Append `value` as text by the module's one rule; `false` (nothing
/// written) for null.
pub fn write_value(value: &Value, out: &mut String) -> bool {
    match value {
        Value::Null => return false,
        Value::String(s) => out.push_str(s),
        other => canonical(other, out),
    }
    true
}

/// Compact JSON with object keys sorted at every level.
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{}", Value::String(key.clone()));
                out.push(':');
                canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// Literal text, braces unescaped.
    Literal(String),
    /// strftime specifiers and text between them (with [`Template::with_time`]).
    Time(String),
    /// A body field.
    Field(FieldPath),
}

/// Why a template cannot be rendered for a record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    /// The field is absent or null.
    #[error("template {template:?}: field `{field}` is missing or null")]
    Missing {
        /// The template as written.
        template: String,
        /// The field's path.
        field: String,
    },
    /// The template has fields and the body is not a JSON object.
    #[error("template {template:?}: record body is not a JSON object")]
    NotAnObject {
        /// The template as written.
        template: String,
    },
}

/// Specifiers that change at most once a day, so a day's rendering can be
/// reused for every record of that day.
const DAILY_SPECIFIERS: &str = "YCyGgmbBhdejFDUWVuwaA";

/// A parsed template; see the module docs for the language.
pub struct Template {
    source: String,
    parts: Vec<Part>,
    /// Seconds during which the time parts cannot change (86,400 for a
    /// template of days), so consecutive records reuse one rendering; 0
    /// means render every time (sub-second specifiers).
    period: i64,
    /// The last rendering of the time parts, by period number.
    cache: Mutex<Option<(i64, Vec<String>)>>,
}

impl Template {
    /// Parse `source`: literal text and `{field}`s; `%` is plain text.
    ///
    /// # Errors
    /// A message naming the template and the byte where it is malformed.
    pub fn parse(source: &str) -> Result<Self, String> {
        Self::build(source, false)
    }

    /// Parse `source` with strftime specifiers taking event time, as
    /// index names need (`logs-%Y.%m.%d`).
    ///
    /// # Errors
    /// As [`Template::parse`], and for a lone `%` or an unknown specifier.
    pub fn with_time(source: &str) -> Result<Self, String> {
        Self::build(source, true)
    }

    fn build(source: &str, time: bool) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut in_time = false;
        let mut period = 86_400;
        let flush = |parts: &mut Vec<Part>, text: &mut String, in_time: bool| {
            if !text.is_empty() {
                let t = std::mem::take(text);
                parts.push(if in_time { Part::Time(t) } else { Part::Literal(t) });
            }
        };
        let mut chars = source.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' | '}' if chars.peek().map(|p| p.1) == Some(c) => {
                    chars.next();
                    // In a strftime run a brace is plain text to chrono too.
                    text.push(c);
                }
                '{' => {
                    let rest = &source[at + 1..];
                    let Some(end) = rest.find('}') else {
                        return Err(format!(
                            "unclosed `{{` at byte {at} of {source:?}: the field reference is not closed (write `{{{{` for a literal brace)"
                        ));
                    };
                    let name = &rest[..end];
                    let path = FieldPath::parse(name).map_err(|_| {
                        format!(
                            "invalid field reference `{{{name}}}` in {source:?}; expected e.g. {{app}} or {{device.os}}"
                        )
                    })?;
                    flush(&mut parts, &mut text, in_time);
                    parts.push(Part::Field(path));
                    for _ in 0..name.chars().count() + 1 {
                        chars.next();
                    }
                }
                '}' => {
                    return Err(format!(
                        "unmatched `}}` at byte {at} of {source:?} (write `}}}}` for a literal brace)"
                    ));
                }
                '%' if time => {
                    let Some((_, spec)) = chars.next() else {
                        return Err(format!("{source:?} ends with a lone `%`; write `%%` for a literal percent sign"));
                    };
                    if !in_time {
                        flush(&mut parts, &mut text, in_time);
                        in_time = true;
                    }
                    text.push('%');
                    text.push(spec);
                    if spec != '%' && !DAILY_SPECIFIERS.contains(spec) {
                        period = if period == 0 || matches!(spec, 'f' | '.' | '3' | '6' | '9') { 0 } else { 1 };
                    }
                }
                c => {
                    if in_time {
                        // Plain text inside a time run is fine for chrono,
                        // but keep literal runs apart so `%` never reaches it.
                        flush(&mut parts, &mut text, in_time);
                        in_time = false;
                    }
                    text.push(c);
                }
            }
        }
        flush(&mut parts, &mut text, in_time);
        for part in &parts {
            if let Part::Time(format) = part
                && StrftimeItems::new(format).any(|item| matches!(item, Item::Error))
            {
                return Err(format!("invalid strftime specifier in {source:?}; expected e.g. %Y, %m, %d, %H"));
            }
        }
        Ok(Template { source: source.to_string(), parts, period, cache: Mutex::new(None) })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether rendering needs the body (it has `{field}`s).
    pub fn uses_fields(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Field(_)))
    }

    /// Whether rendering depends on event time (it has strftime specifiers).
    pub fn uses_time(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Time(_)))
    }

    /// The field paths, in order.
    pub fn fields(&self) -> impl Iterator<Item = &FieldPath> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field(path) => Some(path),
            _ => None,
        })
    }

    /// Render for a record at `time` whose parsed body is `body` (`None`
    /// when [`uses_fields`](Self::uses_fields) is false and it was not
    /// parsed). Each field's text passes through `encode` (identity for
    /// names, percent-encoding for URLs); a missing or null field takes
    /// `fallback` when given.
    ///
    /// # Errors
    /// [`TemplateError::Missing`] for a missing or null field with no
    /// fallback, [`TemplateError::NotAnObject`] when the body is not an
    /// object.
    pub fn render_with(
        &self,
        time: Timestamp,
        body: Option<&Value>,
        fallback: Option<&str>,
        encode: impl Fn(&str, &mut String),
    ) -> Result<String, TemplateError> {
        let mut out = String::with_capacity(self.source.len() + 16);
        let times = self.time_parts(time);
        let mut next_time = times.iter();
        let mut value_text = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Time(_) => out.push_str(next_time.next().map(String::as_str).unwrap_or_default()),
                Part::Field(path) => {
                    let Some(root @ Value::Object(_)) = body else {
                        return Err(TemplateError::NotAnObject { template: self.source.clone() });
                    };
                    value_text.clear();
                    match path.lookup(root) {
                        Some(value) if write_value(value, &mut value_text) => encode(&value_text, &mut out),
                        _ => match fallback {
                            Some(fallback) => out.push_str(fallback),
                            None => {
                                return Err(TemplateError::Missing {
                                    template: self.source.clone(),
                                    field: path.as_str().to_string(),
                                });
                            }
                        },
                    }
                }
            }
        }
        Ok(out)
    }

    /// [`render_with`](Self::render_with) with no fallback and field text
    /// as is.
    ///
    /// # Errors
    /// As [`render_with`](Self::render_with).
    pub fn render(&self, time: Timestamp, body: Option<&Value>) -> Result<String, TemplateError> {
        self.render_with(time, body, None, |text, out| out.push_str(text))
    }

    /// The rendered time parts for `time`, reused within one period.
    fn time_parts(&self, time: Timestamp) -> Vec<String> {
        if !self.parts.iter().any(|p| matches!(p, Part::Time(_))) {
            return Vec::new();
        }
        let secs = time.div_euclid(1_000_000_000);
        let key = if self.period > 0 { secs.div_euclid(self.period) } else { i64::MIN };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((cached, rendered)) = &*cache
            && self.period > 0
            && *cached == key
        {
            return rendered.clone();
        }
        let at = DateTime::from_timestamp_nanos(time);
        let rendered: Vec<String> = self
            .parts
            .iter()
            .filter_map(|p| match p {
                Part::Time(format) => Some(at.format(format).to_string()),
                _ => None,
            })
            .collect();
        *cache = Some((key, rendered.clone()));
        rendered
    }
}

/// In config, a template is a string parsed without time parts; settings
/// that take time (index names) parse with [`Template::with_time`].
impl<'de> serde::Deserialize<'de> for Template {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Template::parse(&String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

impl Clone for Template {
    fn clone(&self) -> Self {
        Template {
            source: self.source.clone(),
            parts: self.parts.clone(),
            period: self.period,
            cache: Mutex::new(None),
        }
    }
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Template").field(&self.source).finish()
    }
}

impl PartialEq for Template {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source && self.parts == other.parts
    }
}

impl Eq for Template {}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn render(t: &str, body: Value) -> Result<String, TemplateError> {
        Template::parse(t).unwrap().render(0, Some(&body))
    }

    #[test]
    fn renders_fields_and_nested_paths() {
        let body = json!({"metric": "rt", "labels": {"op": "pay", "os": "ios"}, "n": 3, "ok": true});
        assert_eq!(render("metrics-{labels.op}", body.clone()).unwrap(), "metrics-pay");
        assert_eq!(render("{metric}/{n}/{ok}", body.clone()).unwrap(), "rt/3/true");
        assert_eq!(render("{{literal}}-{metric}", body).unwrap(), "{literal}-rt");
    }

    #[test]
    fn labels_render_canonically_whatever_their_order() {
        let a = render("{metric}|{labels}", json!({"metric": "rt", "labels": {"os": "ios", "txn": "pay"}})).unwrap();
        let b = render("{metric}|{labels}", json!({"labels": {"txn": "pay", "os": "ios"}, "metric": "rt"})).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, r#"rt|{"os":"ios","txn":"pay"}"#);
        let nested = render("{x}", json!({"x": {"b": [1, {"d": 1, "c": 2}], "a": null}})).unwrap();
        assert_eq!(nested, r#"{"a":null,"b":[1,{"c":2,"d":1}]}"#);
    }

    #[test]
    fn missing_fields_are_errors_that_name_the_field() {
        let e = render("m-{labels.op}", json!({"labels": {}})).unwrap_err();
        assert_eq!(e.to_string(), r#"template "m-{labels.op}": field `labels.op` is missing or null"#);
        assert!(render("{a}", json!({"a": null})).is_err());
        assert!(Template::parse("{a}").unwrap().render(0, Some(&json!([1]))).is_err());
    }

    #[test]
    fn a_fallback_stands_in_for_a_missing_field() {
        let t = Template::parse("logs-{app}").unwrap();
        let out = t.render_with(0, Some(&json!({})), Some("unknown"), |s, o| o.push_str(s)).unwrap();
        assert_eq!(out, "logs-unknown");
    }

    #[test]
    fn static_templates_need_no_body() {
        let t = Template::parse("weir-metrics").unwrap();
        assert!(!t.uses_fields());
        assert_eq!(t.render(0, None).unwrap(), "weir-metrics");
    }

    #[test]
    fn malformed_templates_are_refused() {
        for bad in ["{", "a}", "{}", "{a..b}", "{a{b}"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
        assert!(Template::with_time("logs-%").unwrap_err().contains("lone `%`"));
        assert!(Template::with_time("logs-%Q").unwrap_err().contains("invalid strftime specifier"));
    }

    #[test]
    fn time_parts_take_event_time_in_utc_and_only_with_time() {
        let t = Template::with_time("logs-{app}-%Y.%m.%d").unwrap();
        let at = 1_795_341_600_000_000_000; // 2026-11-22T10:00:00Z
        assert_eq!(t.render(at, Some(&json!({"app": "shop"}))).unwrap(), "logs-shop-2026.11.22");
        assert_eq!(t.render(at + 86_400_000_000_000, Some(&json!({"app": "shop"}))).unwrap(), "logs-shop-2026.11.23");
        assert_eq!(Template::with_time("a-%%-%H").unwrap().render(at, None).unwrap(), "a-%-10");
        assert_eq!(Template::parse("http://g/?q=%2F").unwrap().render(at, None).unwrap(), "http://g/?q=%2F");
    }

    #[test]
    fn dotted_paths_descend_then_fall_back_to_a_dotted_key() {
        let path = FieldPath::parse("device.os").unwrap();
        assert_eq!(path.lookup(&json!({"device": {"os": "ios"}})), Some(&json!("ios")));
        assert_eq!(path.lookup(&json!({"device.os": "android"})), Some(&json!("android")));
        assert_eq!(path.lookup(&json!({"device": {}})), None);
        assert!(FieldPath::parse("a..b").is_err() && FieldPath::parse("").is_err());
    }
}
