//! `${VAR}` and `${VAR:-default}` inside the config's scalar values, after
//! YAML parsing: a variable's value is text put into one value, never YAML
//! that could add a comment, an anchor, a tag, a key or a new line, so it
//! arrives verbatim whatever characters it holds. `$$` is a literal `$`; a
//! `$` not followed by `{` stays as it is. Keys and comments are never
//! looked at. Which type an interpolated value takes is up to the setting
//! that reads it (see [`super::de`]).

use saphyr_parser::ScalarStyle;

use super::yaml::{LoadError, Position, Scalar};

/// Interpolate the scalar `text` written in `style` at `at`, looking
/// variables up with `lookup`. An unset variable with a default takes the
/// default, as does a set but empty one; an unset one without a default is
/// an error, an empty one without a default is empty.
///
/// # Errors
/// An unset variable without a default, naming it and where it is.
pub fn scalar(
    text: &str,
    style: ScalarStyle,
    at: Position,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Scalar, LoadError> {
    let quoted = style != ScalarStyle::Plain;
    if !text.contains('$') {
        return Ok(Scalar { text: text.to_string(), quoted, interpolated: false });
    }
    let mut out = String::with_capacity(text.len());
    let mut interpolated = false;
    let mut rest = text;
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
                    let offset = text.len() - rest.len() + pos;
                    return Err(LoadError::new(
                        position_in(text, style, at, offset),
                        format!(
                            "environment variable {name} is not set; set it or give a default: ${{{name}:-default}}"
                        ),
                    ));
                }
            }
            interpolated = true;
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(Scalar { text: out, quoted, interpolated })
}

/// Where byte `offset` of a scalar's text is in the file: exact for a
/// scalar on one line written plain or quoted without escapes (the usual
/// `key: ${VAR}`), else the scalar's start.
fn position_in(text: &str, style: ScalarStyle, at: Position, offset: usize) -> Position {
    let before = &text[..offset];
    let shift = match style {
        ScalarStyle::Plain => 0,
        ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted if !before.contains(['\\', '\'']) => 1,
        _ => return at,
    };
    if before.contains('\n') {
        return at;
    }
    (at.0, at.1 + shift + before.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("es.local".into()),
            "EMPTY" => Some(String::new()),
            "YAML" => Some("&a #b: !c\n- [d]".into()),
            _ => None,
        }
    }

    fn text(value: &str) -> String {
        scalar(value, ScalarStyle::Plain, (1, 1), &env).unwrap().text
    }

    #[test]
    fn replaces_set_variables_and_defaults() {
        assert_eq!(text("${HOST}"), "es.local");
        assert_eq!(text("${PORT:-9200}"), "9200");
        assert_eq!(text("http://${HOST}:${PORT:-9200}/x"), "http://es.local:9200/x");
        assert_eq!(text("$$x"), "$x");
    }

    #[test]
    fn values_are_inserted_verbatim_and_not_scanned_again() {
        assert_eq!(text("${YAML}"), "&a #b: !c\n- [d]");
        let with_dollars = |name: &str| (name == "V").then(|| "$${HOST}".to_string());
        assert_eq!(scalar("${V}", ScalarStyle::Plain, (1, 1), &with_dollars).unwrap().text, "$${HOST}");
    }

    #[test]
    fn empty_values_take_the_default() {
        assert_eq!(text("${EMPTY:-d}"), "d");
        assert_eq!(text("[${EMPTY}]"), "[]");
    }

    #[test]
    fn marks_what_was_interpolated() {
        let s = scalar("${HOST}", ScalarStyle::DoubleQuoted, (1, 1), &env).unwrap();
        assert!(s.interpolated && s.quoted);
        let s = scalar("5$", ScalarStyle::Plain, (1, 1), &env).unwrap();
        assert!(!s.interpolated && !s.quoted);
        assert_eq!(s.text, "5$");
        assert_eq!(text("${unclosed"), "${unclosed");
    }

    #[test]
    fn a_missing_variable_names_its_position() {
        let err = scalar("x ${NOPE}", ScalarStyle::Plain, (2, 4), &env).unwrap_err();
        assert_eq!(err.at, (2, 6));
        assert_eq!(err.message, "environment variable NOPE is not set; set it or give a default: ${NOPE:-default}");
        assert_eq!(scalar("x ${NOPE}", ScalarStyle::DoubleQuoted, (2, 4), &env).unwrap_err().at, (2, 7));
        assert_eq!(scalar("a\nb ${NOPE}", ScalarStyle::Literal, (2, 4), &env).unwrap_err().at, (2, 4));
    }
}
