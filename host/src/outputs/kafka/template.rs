//! Topic and key templates of the `kafka` output: literal text with
//! `{field}` or `{a.b}` placeholders taken from the record body, and `{{`
//! / `}}` for literal braces. Pure; parsed once at config load.
//!
//! A string renders as its text; a number or boolean as JSON; an object
//! or array as canonical JSON (keys sorted at every level, no spaces), so
//! `{metric}|{labels}` keys every sample of one series identically no
//! matter how its labels were ordered: the series reaches one partition
//! and so one aggregator. A missing or null field is an error: the record
//! is dead-lettered with the reason rather than sent to a surprising topic.

use std::fmt::Write as _;

use serde_json::Value;

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Field(Vec<String>),
}

/// Why a template cannot be rendered for a record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    /// The field is absent or null.
    #[error("template {template:?}: field `{field}` is missing or null")]
    Missing {
        /// The template's text.
        template: String,
        /// The dotted path.
        field: String,
    },
    /// The body is not a JSON object.
    #[error("template {template:?}: record body is not a JSON object")]
    NotAnObject {
        /// The template's text.
        template: String,
    },
}

impl TryFrom<String> for Template {
    type Error = String;
    fn try_from(source: String) -> Result<Self, String> {
        Template::parse(&source)
    }
}

impl Template {
    /// Parse `source`, naming the problem on failure.
    pub fn parse(source: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = source.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|p| p.1) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|p| p.1) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let rest = &source[at + 1..];
                    let end = rest.find('}').ok_or_else(|| {
                        format!(
                            "template {source:?}: `{{` at byte {at} is not closed (write `{{{{` for a literal brace)"
                        )
                    })?;
                    let path = &rest[..end];
                    if path.is_empty() || path.split('.').any(|s| s.trim().is_empty() || s.contains('{')) {
                        return Err(format!(
                            "template {source:?}: invalid field path {path:?} at byte {at}; expected e.g. {{metric}} or {{labels.op}}"
                        ));
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Field(path.split('.').map(str::to_string).collect()));
                    for _ in 0..path.chars().count() + 1 {
                        chars.next();
                    }
                }
                '}' => {
                    return Err(format!(
                        "template {source:?}: unmatched `}}` at byte {at} (write `}}}}` for a literal brace)"
                    ));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template { source: source.to_string(), parts })
    }

    /// True when the template has no placeholders.
    pub fn is_static(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// The template's text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Render for a record whose parsed body is `body` (`None` when the
    /// template is static and the body was not parsed).
    pub fn render(&self, body: Option<&Value>) -> Result<String, TemplateError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Field(path) => {
                    let Some(root @ Value::Object(_)) = body else {
                        return Err(TemplateError::NotAnObject { template: self.source.clone() });
                    };
                    let value = path.iter().try_fold(root, |v, key| v.get(key));
                    match value {
                        None | Some(Value::Null) => {
                            return Err(TemplateError::Missing {
                                template: self.source.clone(),
                                field: path.join("."),
                            });
                        }
                        Some(Value::String(s)) => out.push_str(s),
                        Some(v) => canonical(v, &mut out),
                    }
                }
            }
        }
        Ok(out)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(t: &str, body: Value) -> Result<String, TemplateError> {
        Template::parse(t).unwrap().render(Some(&body))
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
        assert!(Template::parse("{a}").unwrap().render(Some(&json!([1]))).is_err());
    }

    #[test]
    fn static_templates_need_no_body() {
        let t = Template::parse("weir-metrics").unwrap();
        assert!(t.is_static());
        assert_eq!(t.render(None).unwrap(), "weir-metrics");
    }

    #[test]
    fn malformed_templates_are_refused() {
        for bad in ["{", "a}", "{}", "{a..b}", "{a{b}"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }
}
