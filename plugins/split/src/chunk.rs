//! Splitting: turns a batch of chunk records into statement records, or a
//! rejection per malformed chunk. Pure: the host clock arrives as `now` and
//! counts go back in [`Counts`], so native tests never touch the WIT imports
//! (that glue is in `lib.rs`). Time parsing itself lives in `time`.
//!
//! Text (a newline-delimited string, or the string elements of an array) is
//! gathered into statements by the `multiline` rule: a line that does not
//! start a statement, such as a stack-trace frame, joins the one before it,
//! so a trace keeps its statement's time instead of becoming records of its
//! own stamped with the arrival time. Statements never span chunks: chunks
//! of different devices interleave.
//!
//! Cost is linear in chunk size. The chunk's top level is read once (borrowed,
//! via the SDK), context values once per chunk, and each object statement is
//! emitted by splicing fields before its closing `}` rather than through a
//! DOM. An object statement's top-level keys are scanned (borrowed) only when
//! split adds fields to it or reads its time, so an added key never duplicates
//! one the statement already has: the statement's own field wins.

use std::borrow::Cow;

use weir_plugin_sdk::{Fields, ObjectWriter, RawValue};

use crate::config::{Multiline, OnMissingTime, SplitFilterConfig, TextTime};
use crate::time::TimeError;

/// One input event, borrowed from the WIT batch.
#[derive(Debug, Clone, Copy)]
pub struct Chunk<'a> {
    /// Event time of the chunk, ns since the epoch.
    pub time: i64,
    /// The chunk's tag.
    pub tag: &'a str,
    /// The chunk's JSON body.
    pub body: &'a [u8],
}

/// One emitted statement record.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// Index of its chunk in the batch.
    pub parent: u32,
    /// Event time, ns since the epoch.
    pub time: i64,
    /// Tag.
    pub tag: String,
    /// JSON object body.
    pub body: Vec<u8>,
}

/// Counter deltas for one `process` call, added to the host once per call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Statement records emitted.
    pub statements: u64,
    /// Chunks seen, rejected or not.
    pub chunks: u64,
    /// Chunks rejected.
    pub rejected_chunks: u64,
    /// Emitted statements that took the arrival time.
    pub time_missing: u64,
    /// Lines joined to the statement before them (`multiline`).
    pub continuation_lines: u64,
}

impl Counts {
    /// `(host counter name, delta)` for every counter.
    pub fn by_name(&self) -> [(&'static str, u64); 5] {
        [
            ("statements", self.statements),
            ("chunks", self.chunks),
            ("rejected_chunks", self.rejected_chunks),
            ("time_missing", self.time_missing),
            ("continuation_lines", self.continuation_lines),
        ]
    }
}

/// What [`split_batch`] returns.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Statement records, in chunk order then statement order.
    pub emitted: Vec<Statement>,
    /// `(index, reason)` of each rejected chunk.
    pub rejected: Vec<(u32, String)>,
    /// Counter deltas.
    pub counts: Counts,
    /// In `arrival` mode, the first statement whose time was missing, with
    /// its chunk index, for one debug log line per batch.
    pub first_time_problem: Option<String>,
}

/// Why a chunk was rejected. Its Display is the dead-letter reason.
#[derive(Debug, Clone, PartialEq)]
pub enum ChunkError {
    /// The body is not a JSON object.
    Body(String),
    /// The statements field is absent.
    Missing {
        /// The configured path.
        field: String,
    },
    /// A step of the statements path is not an object.
    PathNotObject {
        /// The configured path.
        field: String,
        /// The part of it that is not an object.
        prefix: String,
        /// What it is.
        found: &'static str,
    },
    /// The statements field is neither an array nor a string.
    WrongType {
        /// The configured path.
        field: String,
        /// What it is.
        found: &'static str,
    },
    /// An array element is neither a string nor an object.
    BadStatement {
        /// The configured path.
        field: String,
        /// The element's index.
        index: usize,
        /// What it is.
        found: &'static str,
    },
    /// A string cannot be decoded (a lone UTF-16 surrogate escape).
    Undecodable {
        /// The configured path.
        field: String,
        /// The element's index, when the field is an array.
        index: Option<usize>,
    },
    /// In `dead_letter` mode, a statement's time is missing or unreadable.
    Time {
        /// The statement's index: the array index of its first element, or
        /// its index among the statements of the text.
        index: usize,
        /// 1-based number of its first line, for newline-delimited text.
        line: Option<usize>,
        /// What was wrong.
        problem: TimeProblem,
    },
}

impl std::fmt::Display for ChunkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Body(detail) => f.write_str(detail),
            Self::Missing { field } => write!(f, "field {field:?}: missing"),
            Self::PathNotObject { field, prefix, found } => {
                write!(f, "field {field:?}: {prefix:?} is {found}, not an object")
            }
            Self::WrongType { field, found } => {
                write!(f, "field {field:?}: expected an array or a string, found {found}")
            }
            Self::BadStatement { field, index, found } => {
                write!(f, "field {field:?}[{index}]: expected a string or an object, found {found}")
            }
            Self::Undecodable { field, index: None } => {
                write!(f, "field {field:?}: string cannot be decoded")
            }
            Self::Undecodable { field, index: Some(i) } => {
                write!(f, "field {field:?}[{i}]: string cannot be decoded")
            }
            Self::Time { index, line: None, problem } => write!(f, "statement {index}: {problem}"),
            Self::Time { index, line: Some(line), problem } => {
                write!(f, "statement {index} (line {line}): {problem}")
            }
        }
    }
}

impl std::error::Error for ChunkError {}

/// Why a statement has no usable time.
#[derive(Debug, Clone, PartialEq)]
pub enum TimeProblem {
    /// The object statement lacks `time.field`, or it is null.
    MissingField(String),
    /// The regex did not match, or its `time` group took no part.
    NoMatch,
    /// The string has too few tokens.
    NoToken {
        /// The configured position.
        position: usize,
        /// The configured delimiter.
        delimiter: String,
    },
    /// A string statement, but only `time.field` is configured.
    NoTextRule,
    /// An object statement, but only `time.regex` or `time.delimiter` is configured.
    NoFieldRule,
    /// The time is there but unreadable.
    Parse(TimeError),
}

impl std::fmt::Display for TimeProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MissingField(field) => write!(f, "time field {field:?} is missing"),
            Self::NoMatch => f.write_str("time regex did not match"),
            Self::NoToken { position, delimiter } => {
                write!(f, "no token {position} when split on {delimiter:?}")
            }
            Self::NoTextRule => f.write_str("string statement but no time.regex or time.delimiter is set"),
            Self::NoFieldRule => f.write_str("object statement but no time.field is set"),
            Self::Parse(e) => e.fmt(f),
        }
    }
}

/// Split every chunk of a batch. `now` is the host clock, used for
/// statements whose time is missing in `arrival` mode.
pub fn split_batch<'a>(
    config: &SplitFilterConfig,
    chunks: impl IntoIterator<Item = Chunk<'a>>,
    now: i64,
) -> BatchOutcome {
    let mut outcome = BatchOutcome::default();
    for (index, chunk) in chunks.into_iter().enumerate() {
        // The WIT batch is indexed by u32, so a batch cannot be longer.
        let parent = u32::try_from(index).expect("a WIT list has at most u32::MAX elements");
        outcome.counts.chunks += 1;
        let start = outcome.emitted.len();
        let mut counts = Counts::default();
        let mut problem = None;
        let mut splitter = Splitter {
            config,
            parent,
            chunk,
            now,
            out: &mut outcome.emitted,
            counts: &mut counts,
            first_problem: &mut problem,
        };
        match splitter.run() {
            Ok(()) => {
                outcome.counts.statements += counts.statements;
                outcome.counts.time_missing += counts.time_missing;
                outcome.counts.continuation_lines += counts.continuation_lines;
                if outcome.first_time_problem.is_none() {
                    outcome.first_time_problem = problem.map(|p| format!("chunk {index}: {p}"));
                }
            }
            Err(e) => {
                // Nothing of a rejected chunk is emitted.
                outcome.emitted.truncate(start);
                outcome.counts.rejected_chunks += 1;
                outcome.rejected.push((parent, e.to_string()));
            }
        }
    }
    outcome
}

/// The state of splitting one chunk.
struct Splitter<'c, 'a> {
    config: &'c SplitFilterConfig,
    parent: u32,
    chunk: Chunk<'a>,
    now: i64,
    out: &'c mut Vec<Statement>,
    counts: &'c mut Counts,
    first_problem: &'c mut Option<ChunkError>,
}

impl<'c, 'a> Splitter<'c, 'a> {
    fn run(&mut self) -> Result<(), ChunkError> {
        let config: &'c SplitFilterConfig = self.config;
        let field = &config.field;
        let top = weir_plugin_sdk::fields(self.chunk.body).map_err(|e| ChunkError::Body(e.to_string()))?;
        let statements = match find(&top, field) {
            Ok(Some(v)) => v,
            Ok(None) => {
                return Err(ChunkError::Missing { field: field.clone() });
            }
            Err(NotObject { prefix, found }) => {
                return Err(ChunkError::PathNotObject { field: field.clone(), prefix, found });
            }
        };
        // Context values are looked up once per chunk; a missing one is skipped.
        let context: Vec<(&str, &RawValue)> =
            config.context.iter().filter_map(|c| Some((c.to.as_str(), find(&top, &c.from).ok()??))).collect();
        // Room for `"key":value,` per context field.
        let extra =
            context.iter().map(|(k, v)| k.len() + v.get().len() + 4).sum::<usize>() + config.time_missing_key.len() + 8;

        match statements.get().as_bytes().first() {
            Some(b'[') => {
                let items: Vec<&RawValue> =
                    serde_json::from_str(statements.get()).expect("a raw value starting with [ is a valid JSON array");
                let mut text = TextStatements::default();
                for (index, item) in items.into_iter().enumerate() {
                    match item.get().as_bytes().first() {
                        Some(b'"') => {
                            let line = weir_plugin_sdk::as_str(item)
                                .ok_or_else(|| ChunkError::Undecodable { field: field.clone(), index: Some(index) })?;
                            if let Some(done) = text.push(self, line, index, None) {
                                self.text_statement(done, &context, extra)?;
                            }
                        }
                        Some(b'{') => {
                            // An object ends the run of text before it.
                            if let Some(done) = text.finish() {
                                self.text_statement(done, &context, extra)?;
                            }
                            self.object_statement(item, index, &context, extra)?;
                        }
                        _ => {
                            return Err(ChunkError::BadStatement { field: field.clone(), index, found: kind(item) });
                        }
                    }
                }
                if let Some(done) = text.finish() {
                    self.text_statement(done, &context, extra)?;
                }
            }
            Some(b'"') => {
                let whole = weir_plugin_sdk::as_str(statements)
                    .ok_or_else(|| ChunkError::Undecodable { field: field.clone(), index: None })?;
                let mut text = TextStatements::default();
                for (n, line) in whole.split('\n').enumerate() {
                    let line = line.strip_suffix('\r').unwrap_or(line);
                    if line.trim().is_empty() {
                        text.blank();
                        continue;
                    }
                    let index = text.count;
                    if let Some(done) = text.push(self, Cow::Borrowed(line), index, Some(n + 1)) {
                        self.text_statement(done, &context, extra)?;
                    }
                }
                if let Some(done) = text.finish() {
                    self.text_statement(done, &context, extra)?;
                }
            }
            _ => {
                return Err(ChunkError::WrongType { field: field.clone(), found: kind(statements) });
            }
        }
        Ok(())
    }

    /// Where the time of a text statement is, and what it says.
    fn text_time(&self, text: &str) -> Result<i64, TimeProblem> {
        let Some(time) = &self.config.time else {
            return Ok(self.chunk.time);
        };
        match &time.text {
            None => Err(TimeProblem::NoTextRule),
            Some(TextTime::Regex(regex)) => match regex.captures(text).and_then(|c| c.name("time")) {
                Some(m) => time.format.parse_text(m.as_str(), self.now).map_err(TimeProblem::Parse),
                None => Err(TimeProblem::NoMatch),
            },
            Some(TextTime::Token { delimiter, position }) => match text.split(delimiter.as_str()).nth(*position) {
                Some(token) => time.format.parse_text(token, self.now).map_err(TimeProblem::Parse),
                None => Err(TimeProblem::NoToken { position: *position, delimiter: delimiter.clone() }),
            },
        }
    }

    fn text_statement(
        &mut self,
        statement: TextStatement<'_>,
        context: &[(&str, &RawValue)],
        extra: usize,
    ) -> Result<(), ChunkError> {
        let TextStatement { text, index, line, time, continued } = statement;
        self.counts.continuation_lines += continued;
        let (time, missing) = self.settle(time, index, line)?;
        let mut w = ObjectWriter::with_capacity(text.len() + self.config.message_key.len() + extra + 8);
        w.str(&self.config.message_key, &text);
        // Config checks rule out clashes between these keys.
        for (key, value) in context {
            w.raw(key, value.get());
        }
        if missing {
            w.bool(&self.config.time_missing_key, true);
        }
        self.emit(time, w.finish());
        Ok(())
    }

    fn object_statement(
        &mut self,
        item: &RawValue,
        index: usize,
        context: &[(&str, &RawValue)],
        extra: usize,
    ) -> Result<(), ChunkError> {
        let json = item.get();
        if context.is_empty() && self.config.time.is_none() {
            // Nothing to add or read: pass the bytes through.
            self.emit(self.chunk.time, json.as_bytes().to_vec());
            return Ok(());
        }
        let own: Fields<'_> = serde_json::from_str(json).expect("a raw value starting with { is a JSON object");
        let found = match &self.config.time {
            None => Ok(self.chunk.time),
            Some(time) => match &time.field {
                None => Err(TimeProblem::NoFieldRule),
                Some(path) => match find(&own, path) {
                    Ok(Some(value)) if value.get() != "null" => {
                        time.format.parse_json(value, self.now).map_err(TimeProblem::Parse)
                    }
                    _ => Err(TimeProblem::MissingField(path.clone())),
                },
            },
        };
        let (time, missing) = self.settle(found, index, None)?;
        let mut w = ObjectWriter::extend(json.as_bytes(), extra).expect("a raw value starting with { ends with }");
        // The statement's own field wins over an added one of the same key.
        for (key, value) in context {
            if !own.contains_key(key) {
                w.raw(key, value.get());
            }
        }
        if missing && !own.contains_key(self.config.time_missing_key.as_str()) {
            w.bool(&self.config.time_missing_key, true);
        }
        self.emit(time, w.finish());
        Ok(())
    }

    /// Turn a time lookup into `(time, missing)`, or reject the chunk in
    /// `dead_letter` mode.
    fn settle(
        &mut self,
        found: Result<i64, TimeProblem>,
        index: usize,
        line: Option<usize>,
    ) -> Result<(i64, bool), ChunkError> {
        match found {
            Ok(time) => Ok((time, false)),
            Err(problem) => {
                let error = ChunkError::Time { index, line, problem };
                match self.config.on_missing_time {
                    OnMissingTime::DeadLetter => Err(error),
                    OnMissingTime::Arrival => {
                        self.counts.time_missing += 1;
                        self.first_problem.get_or_insert(error);
                        Ok((self.now, true))
                    }
                }
            }
        }
    }

    fn emit(&mut self, time: i64, body: Vec<u8>) {
        let tag = self.config.tag.as_deref().unwrap_or(self.chunk.tag).to_owned();
        self.counts.statements += 1;
        self.out.push(Statement { parent: self.parent, time, tag, body });
    }
}

/// A text statement gathered from one or more lines.
struct TextStatement<'t> {
    /// Its lines, joined with newlines.
    text: Cow<'t, str>,
    /// Array index of its first element, or its index among the text's statements.
    index: usize,
    /// 1-based number of its first line, for newline-delimited text.
    line: Option<usize>,
    /// Its time, read from its first line.
    time: Result<i64, TimeProblem>,
    /// Lines joined to the first.
    continued: u64,
}

/// Gathers lines into statements by the `multiline` rule: a line either
/// starts a statement, handing back the one it ends, or continues the open
/// one. Blank lines are kept inside a statement, never at its ends.
#[derive(Default)]
struct TextStatements<'t> {
    open: Option<TextStatement<'t>>,
    /// Blank lines seen since the open statement's last line.
    blanks: usize,
    /// Statements started so far.
    count: usize,
}

impl<'t> TextStatements<'t> {
    fn blank(&mut self) {
        if self.open.is_some() {
            self.blanks += 1;
        }
    }

    /// Take `line`; returns the statement it closes, if it starts one.
    fn push(
        &mut self,
        splitter: &Splitter<'_, '_>,
        line: Cow<'t, str>,
        index: usize,
        line_no: Option<usize>,
    ) -> Option<TextStatement<'t>> {
        let time = match splitter.config.multiline {
            Multiline::Time => Some(splitter.text_time(&line)),
            Multiline::Off | Multiline::Start(_) => None,
        };
        let starts = match (&splitter.config.multiline, &time) {
            (Multiline::Off, _) => true,
            (Multiline::Start(start), _) => start.is_match(&line),
            (Multiline::Time, time) => time.as_ref().is_some_and(Result::is_ok),
        };
        if let (false, Some(open)) = (starts, self.open.as_mut()) {
            let text = open.text.to_mut();
            text.extend(std::iter::repeat_n('\n', self.blanks + 1));
            text.push_str(&line);
            open.continued += 1;
            self.blanks = 0;
            return None;
        }
        let time = time.unwrap_or_else(|| splitter.text_time(&line));
        self.blanks = 0;
        self.count += 1;
        self.open.replace(TextStatement { text: line, index, line: line_no, time, continued: 0 })
    }

    /// The statement still open at the end of the text.
    fn finish(&mut self) -> Option<TextStatement<'t>> {
        self.blanks = 0;
        self.open.take()
    }
}

/// A step of a dotted path that is not an object.
struct NotObject {
    prefix: String,
    found: &'static str,
}

/// Look up a dotted path in already-parsed top-level fields, descending
/// through nested objects (borrowed, no DOM). `Ok(None)` when a key is absent.
fn find<'a>(top: &Fields<'a>, path: &str) -> Result<Option<&'a RawValue>, NotObject> {
    let mut segments = path.split('.');
    let first = segments.next().expect("split yields at least one piece");
    let Some(mut value) = top.get(first) else {
        return Ok(None);
    };
    let mut walked = first.len();
    for segment in segments {
        let nested: Fields<'a> = serde_json::from_str(value.get())
            .map_err(|_| NotObject { prefix: path[..walked].to_owned(), found: kind(value) })?;
        match nested.get(segment) {
            Some(v) => value = v,
            None => return Ok(None),
        }
        walked += 1 + segment.len();
    }
    Ok(Some(value))
}

/// "a number", "an object"…, for messages; from the first byte of valid JSON.
fn kind(value: &RawValue) -> &'static str {
    match value.get().as_bytes().first() {
        Some(b'"') => "a string",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

#[cfg(test)]
mod tests;
