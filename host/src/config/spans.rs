//! Where each key of a YAML document is, so errors found after parsing
//! (unknown plugin, bad glob, duplicate name) can still name a line and
//! column. Built from saphyr's event stream; paths look like
//! `outputs[1].hosts[0]`.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScanError};

/// 1-based line and column.
pub type Position = (usize, usize);

/// Positions of every mapping key and sequence item, by path.
#[derive(Debug, Default)]
pub struct Spans(HashMap<String, Position>);

enum Frame {
    Mapping { path: String, key: Option<String> },
    Sequence { path: String, index: usize },
}

impl Spans {
    /// Index `text`. Fails only on YAML syntax errors.
    pub fn index(text: &str) -> Result<Spans, ScanError> {
        let mut spans = HashMap::new();
        let mut stack: Vec<Frame> = Vec::new();
        for next in Parser::new_from_str(text) {
            let (event, span) = next?;
            let position = (span.start.line(), span.start.col() + 1);
            // The path the current node occupies, and whether it is a key.
            let node_path = match stack.last_mut() {
                Some(Frame::Mapping { path, key }) => match key.take() {
                    Some(k) => Some(join(path, &k)),
                    None => {
                        if let Event::Scalar(value, ..) = &event {
                            let path = path.clone();
                            *key = Some(value.to_string());
                            spans.insert(join(&path, value), position);
                        }
                        None
                    }
                },
                Some(Frame::Sequence { path, index }) => {
                    let p = format!("{path}[{index}]");
                    *index += 1;
                    spans.insert(p.clone(), position);
                    Some(p)
                }
                None => Some(String::new()),
            };
            match event {
                Event::MappingStart(..) => {
                    stack.push(Frame::Mapping { path: node_path.unwrap_or_default(), key: None })
                }
                Event::SequenceStart(..) => {
                    stack.push(Frame::Sequence { path: node_path.unwrap_or_default(), index: 0 })
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                _ => {}
            }
        }
        Ok(Spans(spans))
    }

    /// The position of `path`, or of its nearest indexed ancestor.
    pub fn find(&self, path: &str) -> Option<Position> {
        let mut path = path;
        loop {
            if let Some(p) = self.0.get(path) {
                return Some(*p);
            }
            let cut = path.rfind(['.', '['])?;
            path = &path[..cut];
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "inputs:\n  - type: file\n    path: a.log\noutputs:\n  - type: stdout\n    match: \"*\"\n";

    #[test]
    fn finds_keys_and_items() {
        let spans = Spans::index(DOC).unwrap();
        assert_eq!(spans.find("inputs"), Some((1, 1)));
        assert_eq!(spans.find("inputs[0]"), Some((2, 5)));
        assert_eq!(spans.find("inputs[0].path"), Some((3, 5)));
        assert_eq!(spans.find("outputs[0].match"), Some((6, 5)));
    }

    #[test]
    fn falls_back_to_the_nearest_ancestor() {
        let spans = Spans::index(DOC).unwrap();
        assert_eq!(spans.find("inputs[0].nope"), Some((2, 5)));
        assert_eq!(spans.find("nothing.here"), None);
    }
}
