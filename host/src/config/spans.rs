//! Where each key of the config is, so errors found after parsing
//! (unknown plugin, bad glob, duplicate name, a serde error at a key path)
//! can still name a line and column. Built from the [`Node`] tree, so keys
//! that came through an alias or a merge key point at the text they came
//! from; paths look like `outputs[1].hosts[0]`.

use std::collections::HashMap;

use super::yaml::{Kind, Node, Position};

/// Positions of every mapping key and sequence item, by path.
#[derive(Debug, Default)]
pub struct Spans(HashMap<String, Position>);

impl Spans {
    /// Index the tree under `root`.
    pub fn index(root: &Node) -> Spans {
        let mut spans = Spans::default();
        spans.walk("", root);
        spans
    }

    fn walk(&mut self, path: &str, node: &Node) {
        match &node.kind {
            Kind::Scalar(_) => {}
            Kind::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    self.0.insert(p.clone(), item.at);
                    self.walk(&p, item);
                }
            }
            Kind::Map(entries) => {
                for entry in entries {
                    let p = join(path, &entry.key);
                    self.0.insert(p.clone(), entry.at);
                    self.walk(&p, &entry.value);
                }
            }
        }
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
    use super::super::yaml;
    use super::*;

    fn index(text: &str) -> Spans {
        Spans::index(&yaml::load(text, yaml::as_written).unwrap().unwrap())
    }

    #[test]
    fn merged_keys_point_at_their_anchor() {
        let spans = index("a: &d\n  x: 1\nb:\n  <<: *d\n");
        assert_eq!(spans.find("b.x"), Some((2, 3)));
    }

    const DOC: &str = "inputs:\n  - type: file\n    path: a.log\noutputs:\n  - type: stdout\n    match: \"*\"\n";

    #[test]
    fn finds_keys_and_items() {
        let spans = index(DOC);
        assert_eq!(spans.find("inputs"), Some((1, 1)));
        assert_eq!(spans.find("inputs[0]"), Some((2, 5)));
        assert_eq!(spans.find("inputs[0].path"), Some((3, 5)));
        assert_eq!(spans.find("outputs[0].match"), Some((6, 5)));
    }

    #[test]
    fn falls_back_to_the_nearest_ancestor() {
        let spans = index(DOC);
        assert_eq!(spans.find("inputs[0].nope"), Some((2, 5)));
        assert_eq!(spans.find("nothing.here"), None);
    }
}
