//! Elasticsearch's `filter_path` query parameter, pure: which parts of a
//! JSON answer to keep. Logstash asks every `_bulk` for
//! `filter_path=errors,items.*.error,items.*.status`.
//!
//! Supported as Elasticsearch documents it: comma-separated dotted paths,
//! `*` inside a name matching any characters, `**` matching any number of
//! levels, arrays transparent (`items.*.status` reaches into each element
//! of `items`), and `-` before a path to exclude it. An object or array
//! left empty is dropped; nothing kept answers `{}`.

use serde_json::{Map, Value};

/// A parsed `filter_path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterPath {
    include: Vec<Vec<Segment>>,
    exclude: Vec<Vec<Segment>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// `**`: any number of levels, none included.
    AnyDepth,
    /// A name, `*` matching any run of characters.
    Name(String),
}

impl FilterPath {
    /// Parse the parameter's value; `None` when it names no path.
    pub fn parse(text: &str) -> Option<FilterPath> {
        let mut filter = FilterPath { include: Vec::new(), exclude: Vec::new() };
        for path in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (list, path) = match path.strip_prefix('-') {
                Some(rest) => (&mut filter.exclude, rest),
                None => (&mut filter.include, path),
            };
            let segments = path
                .split('.')
                .map(|s| if s == "**" { Segment::AnyDepth } else { Segment::Name(s.to_string()) })
                .collect();
            list.push(segments);
        }
        (!filter.include.is_empty() || !filter.exclude.is_empty()).then_some(filter)
    }

    /// `value` with only what the paths keep.
    pub fn apply(&self, value: Value) -> Value {
        let include: Vec<&[Segment]> = self.include.iter().map(Vec::as_slice).collect();
        let exclude: Vec<&[Segment]> = self.exclude.iter().map(Vec::as_slice).collect();
        // Only exclusions: everything else is kept.
        let everything: [&[Segment]; 1] = [&[]];
        let include = if include.is_empty() { &everything[..] } else { &include[..] };
        filter(value, include, &exclude).unwrap_or_else(|| Value::Object(Map::new()))
    }
}

/// What is left of `value` under the paths still to match; `None` when
/// nothing is.
fn filter(value: Value, include: &[&[Segment]], exclude: &[&[Segment]]) -> Option<Value> {
    if exclude.iter().any(|p| p.is_empty()) {
        return None;
    }
    let whole = include.iter().any(|p| p.is_empty());
    if whole && exclude.is_empty() {
        return Some(value);
    }
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, value) in map {
                let next_include = advance_all(include, &key);
                if next_include.is_empty() && !whole {
                    continue;
                }
                // Below an included object, everything is included.
                let next_include = if whole { vec![&[][..]] } else { next_include };
                let next_exclude = advance_all(exclude, &key);
                if let Some(kept) = filter(value, &next_include, &next_exclude) {
                    out.insert(key, kept);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Value::Array(elements) => {
            let kept: Vec<Value> = elements.into_iter().filter_map(|v| filter(v, include, exclude)).collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        leaf => whole.then_some(leaf),
    }
}

/// The rests of `paths` that go on below `key`.
fn advance_all<'a>(paths: &[&'a [Segment]], key: &str) -> Vec<&'a [Segment]> {
    let mut next = Vec::new();
    for path in paths {
        advance(path, key, &mut next);
    }
    next
}

fn advance<'a>(path: &'a [Segment], key: &str, next: &mut Vec<&'a [Segment]>) {
    match path.first() {
        None => {}
        Some(Segment::AnyDepth) => {
            // `**` takes this level and stays, or takes none.
            next.push(path);
            if path.len() == 1 {
                next.push(&[]);
            } else {
                advance(&path[1..], key, next);
            }
        }
        Some(Segment::Name(pattern)) if wildcard_match(pattern, key) => next.push(&path[1..]),
        Some(Segment::Name(_)) => {}
    }
}

/// Whether `text` matches `pattern`, whose `*`s match any run of characters.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn apply(path: &str, value: Value) -> Value {
        FilterPath::parse(path).unwrap().apply(value)
    }

    fn bulk_answer() -> Value {
        json!({"took": 3, "errors": true, "items": [
            {"index": {"_index": "a", "_id": "1", "status": 201, "result": "created", "_shards": {"total": 1}}},
            {"delete": {"_index": "a", "status": 400, "error": {"type": "x", "reason": "y"}}},
        ]})
    }

    #[test]
    fn logstashs_filter_keeps_errors_and_each_items_status_and_error() {
        assert_eq!(
            apply("errors,items.*.error,items.*.status", bulk_answer()),
            json!({"errors": true, "items": [
                {"index": {"status": 201}},
                {"delete": {"status": 400, "error": {"type": "x", "reason": "y"}}},
            ]})
        );
    }

    #[test]
    fn wildcards_double_stars_and_exclusions_select_as_elasticsearch_does() {
        assert_eq!(apply("took", bulk_answer()), json!({"took": 3}));
        assert_eq!(
            apply("items.*._sh*.total", bulk_answer()),
            json!({"items": [{"index": {"_shards": {"total": 1}}}]})
        );
        assert_eq!(apply("**.reason", bulk_answer()), json!({"items": [{"delete": {"error": {"reason": "y"}}}]}));
        assert_eq!(apply("-items,-took", bulk_answer()), json!({"errors": true}));
        assert_eq!(
            apply("items,-items.*._shards,-items.*.error,-items.*.result,-items.*._id", bulk_answer()),
            json!({"items": [{"index": {"_index": "a", "status": 201}}, {"delete": {"_index": "a", "status": 400}}]})
        );
        assert_eq!(apply("nothing.here", bulk_answer()), json!({}));
        assert_eq!(FilterPath::parse(" , "), None);
    }

    #[test]
    fn wildcard_match_anchors_both_ends() {
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a*c", "abbc"));
        assert!(!wildcard_match("a*c", "abcd"));
        assert!(wildcard_match("*_id", "_id"));
        assert!(!wildcard_match("a*a", "a"));
        assert!(wildcard_match("st*us", "status"));
    }
}
