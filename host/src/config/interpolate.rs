//! `${VAR}` and `${VAR:-default}` in config text, resolved before YAML
//! parsing so values can be of any type. `$$` is a literal `$`. Full-line
//! comments are left alone, so commented-out examples need no variables.

/// A `${VAR}` that is unset and has no default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingVariable {
    /// The variable's name.
    pub name: String,
    /// 1-based line and column of the `$`.
    pub line: usize,
    /// 1-based column of the `$`.
    pub column: usize,
}

/// Replace variables in `text`, looking them up with `lookup`.
pub fn interpolate(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, MissingVariable> {
    let mut out = String::with_capacity(text.len());
    for (index, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
            } else if let Some(inner) = after.strip_prefix('{')
                && let Some(end) = inner.find('}')
            {
                let expr = &inner[..end];
                let (name, default) = match expr.split_once(":-") {
                    Some((name, default)) => (name, Some(default)),
                    None => (expr, None),
                };
                let value = lookup(name).filter(|v| !v.is_empty() || default.is_none());
                match (value, default) {
                    (Some(v), _) => out.push_str(&v),
                    (None, Some(d)) => out.push_str(d),
                    (None, None) => {
                        return Err(MissingVariable {
                            name: name.to_string(),
                            line: index + 1,
                            column: line.len() - rest.len() + pos + 1,
                        });
                    }
                }
                rest = &inner[end + 1..];
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("es.local".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn replaces_set_variables_and_defaults() {
        let out = interpolate("a: ${HOST}\nb: ${PORT:-9200}\nc: $$x\n", env).unwrap();
        assert_eq!(out, "a: es.local\nb: 9200\nc: $x\n");
    }

    #[test]
    fn empty_values_take_the_default() {
        assert_eq!(interpolate("${EMPTY:-d}", env).unwrap(), "d");
        assert_eq!(interpolate("[${EMPTY}]", env).unwrap(), "[]");
    }

    #[test]
    fn a_missing_variable_names_its_position() {
        let err = interpolate("a: 1\nb: x ${NOPE}\n", env).unwrap_err();
        assert_eq!(err, MissingVariable { name: "NOPE".into(), line: 2, column: 6 });
    }

    #[test]
    fn comments_and_lone_dollars_are_untouched() {
        let text = "# ${NOPE}\nprice: 5$\n";
        assert_eq!(interpolate(text, env).unwrap(), text);
    }
}
