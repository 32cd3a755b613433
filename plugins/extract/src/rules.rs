//! Compiled rules, and matching one record against them.
//!
//! `RuleSet::compile` turns the config into regexes once, in `configure`, and
//! refuses anything that would only fail later: bad patterns (with the error's
//! position), missing groups, unknown units, bad paths, clashing labels.
//! `RuleSet::extract` then finds the matching rules of a record. It does not
//! build the output records (`filter.rs`) nor know the output shapes
//! (`body.rs`).
//!
//! Many rules stay fast because each source field is searched once by a
//! `RegexSet` of all the rules reading it; only the rules it reports are run
//! again for their captures. A field read by one rule, or in mode `first`
//! by up to three, skips the set (`IN_ORDER`). `extract_naive` in the tests
//! checks that this gives what trying every rule in order gives.

use std::borrow::Cow;

use regex::{Captures, Regex, RegexSet};
use weir_plugin_sdk::{ConfigError, ObjectWriter};

use crate::body::{FieldPath, RecordView, metric_body};
use crate::config::{ExtractFilterConfig, Mode, RuleConfig, ValueKind};
use crate::duration::{UNIT_NAMES, Unit};
use crate::value::ValueType;

/// Unit of a `duration` value whose rule names none; the unit the replaced
/// pipeline reported latencies in.
const DEFAULT_DURATION_UNIT: Unit = Unit::Millis;

/// Up to this many rules reading one field are tried in order in mode
/// `first` instead of asking their `RegexSet` first: each rule's own search
/// (with its literal prefilter) rejects a statement quickly, and the first
/// match ends the search. Measured on the chain benchmark (BENCHMARKS.md):
/// 3 rules 10-12% less plugin time in order, 6 even, 10 18-21% more.
const IN_ORDER: usize = 3;

/// All rules of a filter, compiled.
#[derive(Debug)]
pub struct RuleSet {
    mode: Mode,
    /// Whether metric records say where their rule matched (`explain`).
    explain: bool,
    rules: Vec<Rule>,
    /// One entry per distinct source path, in order of first use.
    sources: Vec<SourceGroup>,
}

/// The rules reading one source field, behind one `RegexSet`.
#[derive(Debug)]
struct SourceGroup {
    path: FieldPath,
    /// Pattern `i` of the set is rule `rules[i]`.
    set: RegexSet,
    rules: Vec<usize>,
}

#[derive(Debug)]
struct Rule {
    /// `rules[i] (metric)`, the prefix of this rule's value errors.
    name: String,
    metric: String,
    regex: Regex,
    value_group: usize,
    value_group_name: String,
    value_type: ValueType,
    /// Sorted by label name, so metric bodies need no sort per record.
    labels: Vec<Label>,
}

#[derive(Debug)]
struct Label {
    name: String,
    from: LabelFrom,
}

#[derive(Debug)]
enum LabelFrom {
    /// Capture group index.
    Group(usize),
    Field(FieldPath),
}

/// What the rules made of one record.
#[derive(Debug, Default, PartialEq)]
pub struct Extraction {
    /// Some source field of the record was a string. When false, nothing
    /// else is set.
    pub has_source: bool,
    /// Some rule's pattern matched, whether or not its value could be read.
    pub matched: bool,
    /// One metric body per match whose value was read, in rule order.
    pub metrics: Vec<String>,
    /// One reason per match whose value could not be read, in rule order.
    pub errors: Vec<String>,
}

impl RuleSet {
    /// Compile and check every rule.
    pub fn compile(config: &ExtractFilterConfig) -> Result<Self, ConfigError> {
        if config.rules.is_empty() {
            return Err(ConfigError::at("rules", "at least one rule is needed"));
        }
        let default_source = FieldPath::parse(&config.source).map_err(|message| ConfigError::at("source", message))?;
        let mut rules = Vec::with_capacity(config.rules.len());
        let mut sources: Vec<(FieldPath, Vec<usize>)> = Vec::new();
        for (index, rule_config) in config.rules.iter().enumerate() {
            let at = format!("rules[{index}]");
            rules.push(Rule::compile(&at, rule_config)?);
            let source = match &rule_config.source {
                Some(path) => {
                    FieldPath::parse(path).map_err(|message| ConfigError::at(format!("{at}.source"), message))?
                }
                None => default_source.clone(),
            };
            match sources.iter_mut().find(|(path, _)| *path == source) {
                Some((_, members)) => members.push(index),
                None => sources.push((source, vec![index])),
            }
        }
        let sources = sources
            .into_iter()
            .map(|(path, members)| {
                let set = RegexSet::new(members.iter().map(|&i| rules[i].regex.as_str())).map_err(|e| {
                    ConfigError::at(
                        "rules",
                        format!(
                            "the patterns reading {:?} do not fit in one regex set: {}",
                            path.as_str(),
                            regex_error_message(&e)
                        ),
                    )
                })?;
                Ok(SourceGroup { path, set, rules: members })
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(Self { mode: config.mode, explain: config.explain, rules, sources })
    }

    /// Match a record against the rules: in mode `first` the first rule in
    /// config order whose pattern matches, in mode `all` every one.
    pub fn extract(&self, record: &RecordView<'_>) -> Extraction {
        let texts: Vec<Option<Cow<'_, str>>> =
            self.sources.iter().map(|group| record.lookup_str(&group.path)).collect();
        if texts.iter().all(Option::is_none) {
            return Extraction::default();
        }
        // (rule index, source index) of every rule that may match, in config
        // order once sorted; `apply` runs each rule's own search.
        let mut hits: Vec<(usize, usize)> = Vec::new();
        for (source, (group, text)) in self.sources.iter().zip(&texts).enumerate() {
            match (text, &group.rules[..]) {
                (None, _) => {}
                // A lone rule, or in mode `first` a few (`IN_ORDER`): their own
                // searches decide, and the first match stops them; asking the
                // set first searched the text once more.
                (Some(_), members) if members.len() == 1 || self.mode == Mode::First && members.len() <= IN_ORDER => {
                    hits.extend(members.iter().map(|&member| (member, source)));
                }
                (Some(text), _) => {
                    hits.extend(group.set.matches(text).iter().map(|member| (group.rules[member], source)));
                }
            }
        }
        hits.sort_unstable();
        let mut extraction = Extraction { has_source: true, ..Extraction::default() };
        for (rule, source) in hits {
            let text = texts[source].as_deref().expect("hits only come from present sources");
            let explain = self.explain.then(|| Explain { rule, source: self.sources[source].path.as_str() });
            if self.rules[rule].apply(text, record, &mut extraction, explain) && self.mode == Mode::First {
                break;
            }
        }
        extraction
    }
}

impl Rule {
    fn compile(at: &str, config: &RuleConfig) -> Result<Self, ConfigError> {
        if config.metric.is_empty() {
            return Err(ConfigError::at(format!("{at}.metric"), "metric name is empty"));
        }
        let regex = Regex::new(&config.pattern)
            .map_err(|e| ConfigError::at(format!("{at}.pattern"), pattern_error_message(&config.pattern, &e)))?;
        let group = |name: &str| regex.capture_names().position(|n| n == Some(name));

        let value = &config.value;
        let value_group = group(&value.group).ok_or_else(|| {
            ConfigError::at(format!("{at}.value.group"), format!("group {:?} is not in the pattern", value.group))
        })?;
        let value_type = match (value.kind, &value.unit) {
            (ValueKind::Integer, None) => ValueType::Integer,
            (ValueKind::Float, None) => ValueType::Float,
            (ValueKind::Integer | ValueKind::Float, Some(_)) => {
                return Err(ConfigError::at(format!("{at}.value.unit"), "unit applies only to type duration"));
            }
            (ValueKind::Duration, None) => ValueType::Duration(DEFAULT_DURATION_UNIT),
            (ValueKind::Duration, Some(unit)) => ValueType::Duration(Unit::parse(unit).ok_or_else(|| {
                ConfigError::at(
                    format!("{at}.value.unit"),
                    format!("unknown unit {unit:?}, expected one of {UNIT_NAMES}"),
                )
            })?),
        };

        // (label name, its config path) so a clash names both keys.
        let mut labels: Vec<(Label, String)> = Vec::new();
        for (i, name) in config.labels.groups.iter().enumerate() {
            let key = format!("{at}.labels.groups[{i}]");
            let index =
                group(name).ok_or_else(|| ConfigError::at(&key, format!("group {name:?} is not in the pattern")))?;
            labels.push((Label { name: name.clone(), from: LabelFrom::Group(index) }, key));
        }
        for (i, field) in config.labels.fields.iter().enumerate() {
            let key = format!("{at}.labels.fields[{i}]");
            let path = FieldPath::parse(&field.from).map_err(|message| ConfigError::at(&key, message))?;
            if field.to.is_empty() {
                return Err(ConfigError::at(format!("{key}.to"), "label name is empty"));
            }
            labels.push((Label { name: field.to.clone(), from: LabelFrom::Field(path) }, key));
        }
        // Stable sort: of two labels with one name, the later in the config
        // comes second and is the one blamed.
        labels.sort_by(|(a, _), (b, _)| a.name.cmp(&b.name));
        if let Some(pair) = labels.windows(2).find(|pair| pair[0].0.name == pair[1].0.name) {
            let ((label, first), (_, second)) = (&pair[0], &pair[1]);
            return Err(ConfigError::at(second, format!("label {:?} is already set by {first}", label.name)));
        }

        Ok(Self {
            name: format!("{at} ({})", config.metric),
            metric: config.metric.clone(),
            regex,
            value_group,
            value_group_name: value.group.clone(),
            value_type,
            labels: labels.into_iter().map(|(label, _)| label).collect(),
        })
    }

    /// Run this rule on `text`, adding a metric or an error to `extraction`.
    /// Returns whether the pattern matched.
    fn apply(
        &self,
        text: &str,
        record: &RecordView<'_>,
        extraction: &mut Extraction,
        explain: Option<Explain>,
    ) -> bool {
        let Some(captures) = self.regex.captures(text) else {
            return false;
        };
        extraction.matched = true;
        let explained = explain.map(|e| self.explain(e, text, &captures));
        match self.metric(&captures, record, explained.as_deref()) {
            Ok(body) => extraction.metrics.push(body),
            Err(reason) => extraction.errors.push(format!("{}: group {}: {reason}", self.name, self.value_group_name)),
        }
        true
    }

    /// The `match` object of `explain`: where this rule matched in `text`.
    fn explain(&self, explain: Explain, text: &str, captures: &Captures<'_>) -> String {
        let chars = |byte: usize| text[..byte].chars().count();
        let span = |m: regex::Match<'_>| format!("[{},{}]", chars(m.start()), chars(m.end()));
        let mut groups = ObjectWriter::with_capacity(64);
        for (index, name) in self.regex.capture_names().enumerate() {
            if let (Some(name), Some(group)) = (name, captures.get(index)) {
                groups.raw(name, &span(group));
            }
        }
        let whole = captures.get(0).expect("group 0 is the whole match");
        let mut out = ObjectWriter::with_capacity(128);
        out.i64("rule", i64::try_from(explain.rule).unwrap_or(i64::MAX))
            .str("source", explain.source)
            .i64("start", i64::try_from(chars(whole.start())).unwrap_or(i64::MAX))
            .i64("end", i64::try_from(chars(whole.end())).unwrap_or(i64::MAX))
            .raw("groups", std::str::from_utf8(&groups.finish()).expect("an ObjectWriter writes UTF-8"));
        String::from_utf8(out.finish()).expect("an ObjectWriter writes UTF-8")
    }

    fn metric(
        &self,
        captures: &Captures<'_>,
        record: &RecordView<'_>,
        explained: Option<&str>,
    ) -> Result<String, String> {
        let text = captures.get(self.value_group).ok_or("did not take part in the match")?.as_str();
        let value = self.value_type.parse(text)?;
        let texts: Vec<(&str, Cow<'_, str>)> = self
            .labels
            .iter()
            .filter_map(|label| {
                let text = match &label.from {
                    LabelFrom::Group(index) => Cow::Borrowed(captures.get(*index)?.as_str()),
                    LabelFrom::Field(path) => record.lookup_label(path)?,
                };
                Some((label.name.as_str(), text))
            })
            .collect();
        let labels: Vec<(&str, &str)> = texts.iter().map(|(name, text)| (*name, text.as_ref())).collect();
        Ok(metric_body(&self.metric, value, &labels, explained))
    }
}

/// Which rule matched and where it read, for `explain`.
#[derive(Clone, Copy)]
struct Explain<'a> {
    rule: usize,
    source: &'a str,
}

/// A pattern error as `<what> at <offset>`: the offset counts characters
/// from 0 in the pattern as configured (after JSON/YAML unescaping), e.g.
/// `unclosed group at 1` for `a(b`. The regex crate only offers a
/// preformatted multi-line message, so the span comes from `regex-syntax`,
/// which `regex` parses with using the same defaults.
fn pattern_error_message(pattern: &str, error: &regex::Error) -> String {
    if let Err(syntax) = regex_syntax::Parser::new().parse(pattern) {
        let located = match &syntax {
            regex_syntax::Error::Parse(e) => Some((e.kind().to_string(), e.span().start.offset)),
            regex_syntax::Error::Translate(e) => Some((e.kind().to_string(), e.span().start.offset)),
            _ => None,
        };
        if let Some((what, offset)) = located {
            let at = pattern[..offset].chars().count();
            return format!("{} at {at}", lowercase_first(&what));
        }
    }
    regex_error_message(error)
}

/// A regex error without a position: size limits, or a syntax error that
/// `regex-syntax` alone does not reproduce.
fn regex_error_message(error: &regex::Error) -> String {
    match error {
        // Multi-line: the pattern, a caret line, then `error: <what>`.
        regex::Error::Syntax(text) => {
            let last = text.lines().last().unwrap_or(text);
            lowercase_first(last.strip_prefix("error: ").unwrap_or(last))
        }
        regex::Error::CompiledTooBig(limit) => {
            format!("compiled pattern exceeds the size limit of {limit} bytes")
        }
        other => lowercase_first(&other.to_string()),
    }
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
pub(crate) mod tests;
