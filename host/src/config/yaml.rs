//! The config file as a tree of positioned YAML nodes ([`Node`]), built from
//! saphyr's event stream. It owns what YAML syntax means for a Weir config:
//! anchors and aliases (an alias is a copy of its anchor's node), YAML 1.1
//! merge keys (`<<: *defaults`, applied), tags (only the core schema's,
//! `!!str` and friends), and refusing duplicate keys and more than one
//! document. It does not own `${VAR}`s: every scalar value goes through the
//! `scalar` callback of [`load`] as it is read (see
//! [`super::interpolate`]), nor what the values mean (serde, through
//! [`super::de`]).
//!
//! Why a tree of our own rather than a YAML crate's value: interpolation
//! must happen inside parsed scalars (never in the text, where a value
//! could turn into YAML syntax), after which serde needs to know which
//! scalars came from a variable and were written plain or quoted, and
//! errors need every node's line and column. serde_norway's `Value` keeps
//! none of that.

use std::collections::{HashMap, HashSet};

use saphyr_parser::{Event, Parser, ScalarStyle, Tag};

/// 1-based line and column.
pub type Position = (usize, usize);

/// One YAML node and where it starts in the file (an alias's node keeps
/// the position of its anchor, where its text is).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts.
    pub at: Position,
    /// What it holds.
    pub kind: Kind,
}

/// A node's content.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A scalar.
    Scalar(Scalar),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order; merged (`<<`) entries after the explicit ones.
    Map(Vec<Entry>),
}

/// One key of a mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key's text.
    pub key: String,
    /// Where the key is.
    pub at: Position,
    /// Its value.
    pub value: Node,
}

/// A scalar value, its text after YAML's own unescaping and after
/// interpolation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar {
    /// The text.
    pub text: String,
    /// Written quoted, a block scalar (`|`, `>`) or tagged `!!str`: always
    /// text. Otherwise plain: typed by YAML's core schema (`8`, `true`, `~`).
    pub quoted: bool,
    /// It held a `${VAR}`: never null, and typed by the setting it is read
    /// into (see [`super::de`]).
    pub interpolated: bool,
}

/// Why the file is not a usable YAML document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// Where.
    pub at: Position,
    /// What is wrong.
    pub message: String,
}

impl LoadError {
    /// An error at `at`.
    pub fn new(at: Position, message: impl Into<String>) -> Self {
        LoadError { at, message: message.into() }
    }
}

impl Node {
    /// The mapping's value under `key`, taken out of it; `None` when absent
    /// or when this is not a mapping.
    pub fn remove(&mut self, key: &str) -> Option<Node> {
        let Kind::Map(entries) = &mut self.kind else { return None };
        let i = entries.iter().position(|e| e.key == key)?;
        Some(entries.remove(i).value)
    }

    /// Whether this is a null written in the file (`~`, `null`, or nothing);
    /// an interpolated or quoted scalar never is.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar(s) if !s.quoted && !s.interpolated && is_null_text(&s.text))
    }
}

/// YAML 1.2 core schema nulls.
pub fn is_null_text(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// The key that merges other mappings in (YAML 1.1, kept by most loaders).
const MERGE_KEY: &str = "<<";

/// A collection being read.
enum Open {
    Seq { at: Position, anchor: usize, items: Vec<Node> },
    Map { at: Position, anchor: usize, entries: Vec<Entry>, merges: Vec<Node>, key: Option<PendingKey> },
}

struct PendingKey {
    text: String,
    at: Position,
    merge: bool,
}

/// Read `text` as one YAML document. Each scalar value (not key) is made
/// by `scalar(text, style, at)`, where the caller interpolates. `Ok(None)`
/// for a file with no document (empty, or only comments).
///
/// # Errors
/// YAML syntax errors, unsupported tags, duplicate keys, non-scalar keys,
/// misused merge keys, several documents, and whatever `scalar` returns.
pub fn load(
    text: &str,
    mut scalar: impl FnMut(&str, ScalarStyle, Position) -> Result<Scalar, LoadError>,
) -> Result<Option<Node>, LoadError> {
    let mut stack: Vec<Open> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root: Option<Node> = None;
    let mut documents = 0;
    for next in Parser::new_from_str(text) {
        let (event, span) = next.map_err(|e| {
            LoadError::new((e.marker().line(), e.marker().col() + 1), format!("invalid YAML: {}", e.info()))
        })?;
        let at = (span.start.line(), span.start.col() + 1);
        let (node, anchor) = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(LoadError::new(at, "more than one YAML document (`---`); expected one"));
                }
                continue;
            }
            Event::SequenceStart(anchor, tag) => {
                check_tag(tag.as_deref(), at, &["seq"])?;
                stack.push(Open::Seq { at, anchor, items: Vec::new() });
                continue;
            }
            Event::MappingStart(anchor, tag) => {
                check_tag(tag.as_deref(), at, &["map"])?;
                stack.push(Open::Map { at, anchor, entries: Vec::new(), merges: Vec::new(), key: None });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Open::Seq { at, anchor, items }) => (Node { at, kind: Kind::Seq(items) }, anchor),
                Some(Open::Map { at, anchor, mut entries, merges, .. }) => {
                    merge(&mut entries, merges)?;
                    (Node { at, kind: Kind::Map(entries) }, anchor)
                }
                None => continue,
            },
            Event::Scalar(value, style, anchor, tag) => {
                let force_text = check_tag(tag.as_deref(), at, &["str", "int", "float", "bool", "null"])?;
                let is_key = matches!(stack.last(), Some(Open::Map { key: None, .. }));
                let mut value = if is_key {
                    Scalar { text: value.to_string(), quoted: style != ScalarStyle::Plain, interpolated: false }
                } else {
                    scalar(&value, style, at)?
                };
                value.quoted |= force_text;
                (Node { at, kind: Kind::Scalar(value) }, anchor)
            }
            Event::Alias(id) => match anchors.get(&id) {
                Some(node) => (node.clone(), 0),
                None => return Err(LoadError::new(at, "an alias to an unknown anchor")),
            },
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => continue,
        };
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(Open::Seq { items, .. }) => items.push(node),
            Some(Open::Map { entries, merges, key, .. }) => match key.take() {
                None => {
                    let Kind::Scalar(text) = node.kind else {
                        return Err(LoadError::new(node.at, "a mapping key must be a scalar such as `name:`"));
                    };
                    let merge = text.text == MERGE_KEY && !text.quoted;
                    *key = Some(PendingKey { text: text.text, at: node.at, merge });
                }
                Some(PendingKey { merge: true, .. }) => merges.push(node),
                Some(PendingKey { text, at, .. }) => {
                    if entries.iter().any(|e| e.key == text) {
                        return Err(LoadError::new(at, format!("duplicate key `{text}`")));
                    }
                    entries.push(Entry { key: text, at, value: node });
                }
            },
        }
    }
    Ok(root)
}

/// Accept no tag, or a core schema tag among `allowed`; returns whether it
/// is `!!str`. Other tags would be silently ignored or change the type of a
/// value, so they are refused by name.
fn check_tag(tag: Option<&Tag>, at: Position, allowed: &[&str]) -> Result<bool, LoadError> {
    match tag {
        None => Ok(false),
        Some(tag) if tag.is_yaml_core_schema() && allowed.contains(&tag.suffix.as_str()) => Ok(tag.suffix == "str"),
        Some(tag) => Err(LoadError::new(
            at,
            format!("unsupported YAML tag `{tag}`; a value starting with `!` must be quoted, e.g. \"!value\""),
        )),
    }
}

/// Apply merge keys: each mapping of `merges` (a mapping, or a list of
/// them, as `<<: *a` or `<<: [*a, *b]`) adds the keys the mapping does not
/// set itself; among merged mappings, the first to give a key wins.
fn merge(entries: &mut Vec<Entry>, merges: Vec<Node>) -> Result<(), LoadError> {
    let mut seen: HashSet<String> = entries.iter().map(|e| e.key.clone()).collect();
    for node in merges {
        let sources = match node.kind {
            Kind::Map(map) => vec![map],
            Kind::Seq(items) => items
                .into_iter()
                .map(|item| match item.kind {
                    Kind::Map(map) => Ok(map),
                    _ => Err(merge_error(item.at)),
                })
                .collect::<Result<_, _>>()?,
            Kind::Scalar(_) => return Err(merge_error(node.at)),
        };
        for entry in sources.into_iter().flatten() {
            if seen.insert(entry.key.clone()) {
                entries.push(entry);
            }
        }
    }
    Ok(())
}

/// A `scalar` callback for [`load`] that keeps scalars as written, for
/// tests that need no variables.
#[cfg(test)]
pub fn as_written(text: &str, style: ScalarStyle, _: Position) -> Result<Scalar, LoadError> {
    Ok(Scalar { text: text.to_string(), quoted: style != ScalarStyle::Plain, interpolated: false })
}

fn merge_error(at: Position) -> LoadError {
    LoadError::new(at, "the merge key `<<` takes a mapping or a list of mappings, e.g. `<<: *defaults`")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(node: &Node) -> Vec<(&str, &Node)> {
        match &node.kind {
            Kind::Map(entries) => entries.iter().map(|e| (e.key.as_str(), &e.value)).collect(),
            other => panic!("not a map: {other:?}"),
        }
    }

    fn text(node: &Node) -> &str {
        match &node.kind {
            Kind::Scalar(s) => &s.text,
            other => panic!("not a scalar: {other:?}"),
        }
    }

    #[test]
    fn positions_are_those_of_the_file() {
        let root = load("a: 1\nb:\n  - x\n  - { c: 'y' }\n", as_written).unwrap().unwrap();
        let entries = map(&root);
        assert_eq!(entries[0].1.at, (1, 4));
        let Kind::Seq(items) = &entries[1].1.kind else { panic!() };
        assert_eq!(items[0].at, (3, 5));
        let Kind::Map(inner) = &items[1].kind else { panic!() };
        assert_eq!((inner[0].key.as_str(), inner[0].at), ("c", (4, 7)));
        assert_eq!(inner[0].value.kind, Kind::Scalar(Scalar { text: "y".into(), quoted: true, interpolated: false }));
    }

    #[test]
    fn aliases_copy_their_anchor_and_merge_keys_apply() {
        let doc = "base: &b { x: 1, y: 2 }\nalias: *b\nmerged:\n  <<: *b\n  y: 3\nlist:\n  <<: [{ z: 1 }, *b]\n";
        let root = load(doc, as_written).unwrap().unwrap();
        let entries = map(&root);
        assert_eq!(map(entries[1].1).len(), 2);
        let merged = map(entries[2].1);
        assert_eq!(merged.iter().map(|(k, v)| (*k, text(v))).collect::<Vec<_>>(), [("y", "3"), ("x", "1")]);
        let list = map(entries[3].1);
        assert_eq!(list.iter().map(|(k, _)| *k).collect::<Vec<_>>(), ["z", "x", "y"]);
    }

    #[test]
    fn a_quoted_merge_key_is_an_ordinary_key() {
        let root = load("'<<': 1\n", as_written).unwrap().unwrap();
        assert_eq!(map(&root)[0].0, "<<");
    }

    #[test]
    fn misused_merge_keys_name_them() {
        let err = load("a:\n  <<: 5\n", as_written).unwrap_err();
        assert_eq!(err.at, (2, 7));
        assert!(err.message.contains("merge key `<<`"), "{err:?}");
        assert!(load("a:\n  <<: [1]\n", as_written).unwrap_err().message.contains("`<<`"));
    }

    #[test]
    fn refuses_duplicate_keys_unknown_tags_and_several_documents() {
        assert_eq!(load("a: 1\na: 2\n", as_written).unwrap_err(), LoadError::new((2, 1), "duplicate key `a`"));
        let err = load("a: !secret x\n", as_written).unwrap_err();
        assert!(err.message.starts_with("unsupported YAML tag `!secret`"), "{err:?}");
        assert!(load("a: 1\n---\nb: 2\n", as_written).unwrap_err().message.contains("more than one YAML document"));
        assert!(load("? [a]\n: 1\n", as_written).unwrap_err().message.contains("key must be a scalar"));
    }

    #[test]
    fn core_tags_are_read_and_str_forces_text() {
        let root = load("a: !!str 8\nb: !!int 8\n", as_written).unwrap().unwrap();
        let entries = map(&root);
        assert!(matches!(&entries[0].1.kind, Kind::Scalar(s) if s.quoted));
        assert!(matches!(&entries[1].1.kind, Kind::Scalar(s) if !s.quoted));
    }

    #[test]
    fn an_empty_or_comment_only_file_has_no_document() {
        assert_eq!(load("", as_written).unwrap(), None);
        assert_eq!(load("# nothing\n", as_written).unwrap(), None);
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let err = load("a: [1\n", as_written).unwrap_err();
        assert!(err.message.starts_with("invalid YAML"), "{err:?}");
    }
}
