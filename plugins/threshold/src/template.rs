//! A tiny template engine for alert annotations and the generator URL:
//! literal text with holes, where a variable is a name or a dotted path
//! (`labels.op`). A hole is written `{{variable}}`, as in Prometheus
//! alerting rules, or `{variable}`, as in the host's templates (the
//! `alertmanager` output's `generator_url` is `…?os={labels.os}`), so the
//! two `generator_url` settings of one pipeline read alike. In the
//! double-brace form an unknown variable is refused when the template is
//! compiled (at `configure`), so a typo never reaches on-call as an empty
//! summary; a single brace around anything that is not a variable is plain
//! text, so annotations may still contain braces. It owns the syntax and
//! the variable names; the values come from the caller's [`Context`].

use std::collections::BTreeMap;

use weir_plugin_sdk::json;

/// Variables a template may use, for messages and docs.
pub const VARIABLES: &str =
    "alertname, metric, stat, op, threshold, value, for, count, window_start, window_end, labels.<name>";

/// One hole.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Var {
    Alertname,
    Metric,
    Stat,
    Op,
    Threshold,
    Value,
    For,
    Count,
    WindowStart,
    WindowEnd,
    /// A label of the series; empty when the series has no such label.
    Label(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(Var),
}

/// A compiled template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// The values a template is rendered with.
pub struct Context<'a> {
    /// Rule name.
    pub alertname: &'a str,
    /// Metric name.
    pub metric: &'a str,
    /// Statistic the rule compares (`p95`).
    pub stat: &'a str,
    /// Comparison (`>`).
    pub op: &'a str,
    /// The rule's threshold.
    pub threshold: f64,
    /// The observed value of `stat` in the window.
    pub value: f64,
    /// The rule's `for`.
    pub for_windows: u32,
    /// The window's `count`, when it has one.
    pub count: Option<f64>,
    /// Window start, as the window record wrote it.
    pub window_start: &'a str,
    /// Window end, as the window record wrote it.
    pub window_end: &'a str,
    /// The series' labels.
    pub labels: &'a BTreeMap<String, String>,
}

impl Template {
    /// Compile `text`; the error says what is wrong and at which byte.
    pub fn compile(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        let mut offset = 0;
        while let Some(open) = rest.find('{') {
            literal.push_str(&rest[..open]);
            let after = &rest[open..];
            let (var, consumed) = if let Some(inner) = after.strip_prefix("{{") {
                let close = inner.find("}}").ok_or_else(|| format!("unclosed {{{{ at byte {}", offset + open))?;
                let var = variable(inner[..close].trim()).map_err(|why| format!("{why} at byte {}", offset + open))?;
                (Some(var), 2 + close + 2)
            } else {
                // `{name}`: a variable only when `name` is one; else plain text.
                match after[1..].find('}').and_then(|close| Some((variable(&after[1..1 + close]).ok()?, close))) {
                    Some((var, close)) => (Some(var), 1 + close + 1),
                    None => (None, 1),
                }
            };
            match var {
                Some(var) => {
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Var(var));
                }
                None => literal.push('{'),
            }
            rest = &after[consumed..];
            offset += open + consumed;
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Self { parts })
    }

    /// Render with `context`.
    pub fn render(&self, context: &Context<'_>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Var(var) => match var {
                    Var::Alertname => out.push_str(context.alertname),
                    Var::Metric => out.push_str(context.metric),
                    Var::Stat => out.push_str(context.stat),
                    Var::Op => out.push_str(context.op),
                    Var::Threshold => out.push_str(&json::number(context.threshold)),
                    Var::Value => out.push_str(&json::number(context.value)),
                    Var::For => out.push_str(&context.for_windows.to_string()),
                    Var::Count => out.push_str(&context.count.map(json::number).unwrap_or_default()),
                    Var::WindowStart => out.push_str(context.window_start),
                    Var::WindowEnd => out.push_str(context.window_end),
                    Var::Label(name) => out.push_str(context.labels.get(name).map_or("", String::as_str)),
                },
            }
        }
        out
    }
}

fn variable(name: &str) -> Result<Var, String> {
    Ok(match name {
        "alertname" => Var::Alertname,
        "metric" => Var::Metric,
        "stat" => Var::Stat,
        "op" => Var::Op,
        "threshold" => Var::Threshold,
        "value" => Var::Value,
        "for" => Var::For,
        "count" => Var::Count,
        "window_start" => Var::WindowStart,
        "window_end" => Var::WindowEnd,
        "" => return Err("empty variable {{}}".to_string()),
        _ => match name.split_once('.') {
            Some(("labels", label)) if !label.is_empty() && !label.contains('.') => Var::Label(label.to_string()),
            _ => return Err(format!("unknown variable {name:?} (known: {VARIABLES})")),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(labels: &BTreeMap<String, String>) -> Context<'_> {
        Context {
            alertname: "PaymentLatencyHigh",
            metric: "latency_ms",
            stat: "p95",
            op: ">",
            threshold: 800.0,
            value: 912.5,
            for_windows: 2,
            count: Some(1204.0),
            window_start: "2026-11-22T10:15:00Z",
            window_end: "2026-11-22T10:30:00Z",
            labels,
        }
    }

    #[test]
    fn renders_variables_and_dotted_label_paths() {
        let labels = [("op".to_string(), "pay".to_string())].into();
        let t = Template::compile(
            "p95 {{metric}} for {{labels.op}} is {{value}} (threshold {{ threshold }}) in window {{window_start}}..{{window_end}}",
        )
        .unwrap();
        assert_eq!(
            t.render(&context(&labels)),
            "p95 latency_ms for pay is 912.5 (threshold 800) in window 2026-11-22T10:15:00Z..2026-11-22T10:30:00Z"
        );
        let t =
            Template::compile("{{alertname}}: {{stat}} {{op}} {{threshold}} for {{for}} windows of {{count}}").unwrap();
        assert_eq!(t.render(&context(&labels)), "PaymentLatencyHigh: p95 > 800 for 2 windows of 1204");
    }

    #[test]
    fn a_missing_label_renders_empty_and_plain_text_stays() {
        let labels = BTreeMap::new();
        assert_eq!(Template::compile("[{{labels.os}}]").unwrap().render(&context(&labels)), "[]");
        assert_eq!(Template::compile("no holes } { }}").unwrap().render(&context(&labels)), "no holes } { }}");
        assert_eq!(Template::compile("").unwrap().render(&context(&labels)), "");
    }

    #[test]
    fn single_braces_hold_variables_as_in_host_templates_and_are_text_otherwise() {
        let labels = [("os".to_string(), "ios 17".to_string())].into();
        let url = Template::compile("https://g/d?os={labels.os}&from={window_start}").unwrap();
        assert_eq!(url.render(&context(&labels)), "https://g/d?os=ios 17&from=2026-11-22T10:15:00Z");
        let same = Template::compile("https://g/d?os={{labels.os}}&from={{window_start}}").unwrap();
        assert_eq!(same, url, "both spellings compile to the same template");
        let text = Template::compile(r#"{"json": {value}} {valu} { metric }"#).unwrap();
        assert_eq!(text.render(&context(&labels)), r#"{"json": 912.5} {valu} { metric }"#);
    }

    #[test]
    fn unknown_variables_and_bad_syntax_are_refused_with_the_position() {
        assert_eq!(
            Template::compile("p95 is {{valu}}").unwrap_err(),
            format!("unknown variable \"valu\" (known: {VARIABLES}) at byte 7")
        );
        assert_eq!(Template::compile("x {{value}} {{value").unwrap_err(), "unclosed {{ at byte 12");
        assert!(Template::compile("{{labels.}}").unwrap_err().starts_with("unknown variable \"labels.\""));
        assert!(Template::compile("{{labels.a.b}}").is_err());
        assert!(Template::compile("{{window.start}}").is_err());
        assert_eq!(Template::compile("{{ }}").unwrap_err(), "empty variable {{}} at byte 0");
    }
}
