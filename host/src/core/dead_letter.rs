//! Dead letters: records Weir could not process or deliver, kept with the
//! reason. A dead letter is itself a record, tagged with the configured
//! dead-letter tag (`weir.dead_letter` by default) and routed to the outputs
//! that match it. It skips filters, and carries the original record's
//! acknowledgement, so its input hears "delivered" once the dead letter is
//! written: the record is accounted for, never silently gone.

use std::sync::Arc;

use bytes::Bytes;

use super::clock::rfc3339;
use super::record::{Arrival, Origin, Record, Timestamp};
use crate::core::ack::AckToken;

/// A record that failed, and why.
#[derive(Debug)]
pub struct DeadLetter {
    /// Where it failed: `input file`, `filter extract`, `output es`.
    pub stage: String,
    /// Why, for a person; the Display of the error.
    pub reason: String,
    /// The original tag.
    pub tag: Arc<str>,
    /// The original event time.
    pub time: Timestamp,
    /// The original body; may not be valid JSON when an input rejected it.
    pub body: Bytes,
    /// The original identity.
    pub origin: Option<Origin>,
    /// The original acknowledgement.
    pub ack: Option<AckToken>,
    /// When the original record entered the pipeline ([`Record::arrival`]).
    pub arrival: Option<Arrival>,
}

impl DeadLetter {
    /// A dead letter for `record`, failed at `stage` because of `reason`.
    pub fn of(record: Record, stage: impl Into<String>, reason: impl Into<String>) -> Self {
        DeadLetter {
            stage: stage.into(),
            reason: reason.into(),
            tag: record.tag,
            time: record.time,
            body: record.body,
            origin: record.origin,
            ack: record.ack,
            arrival: record.arrival,
        }
    }

    /// The record that carries this dead letter:
    /// `{"reason","stage","tag","time","origin","record"}`, where `record` is
    /// the original body as JSON when it parses, else as a string.
    pub fn into_record(self, dead_letter_tag: &Arc<str>) -> Record {
        #[derive(serde::Serialize)]
        struct Envelope<'a> {
            reason: &'a str,
            stage: &'a str,
            tag: &'a str,
            time: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            origin: Option<String>,
            record: &'a serde_json::value::RawValue,
        }
        let original = std::str::from_utf8(&self.body)
            .ok()
            .and_then(|s| serde_json::from_str::<&serde_json::value::RawValue>(s).ok());
        let as_string;
        let record = match original {
            Some(raw) => raw,
            None => {
                let text =
                    serde_json::to_string(&String::from_utf8_lossy(&self.body)).expect("a string always serialises");
                as_string = serde_json::value::RawValue::from_string(text).expect("a serialised string is valid JSON");
                &*as_string
            }
        };
        let envelope = Envelope {
            reason: &self.reason,
            stage: &self.stage,
            tag: &self.tag,
            time: rfc3339(self.time),
            origin: self.origin.as_ref().map(ToString::to_string),
            record,
        };
        let body = serde_json::to_vec(&envelope).expect("the envelope always serialises");
        Record {
            time: self.time,
            tag: dead_letter_tag.clone(),
            body: body.into(),
            origin: self.origin,
            ack: self.ack,
            arrival: self.arrival,
        }
    }
}

/// A dead-letter record's body read back, as a dead-letter output receives
/// it (see [`DeadLetter::into_record`]); `weir test` compares these.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Envelope {
    /// Why.
    pub reason: String,
    /// Where it failed.
    pub stage: String,
    /// The original tag.
    pub tag: String,
    /// The original event time, RFC 3339.
    pub time: String,
    /// The original identity, if any.
    pub origin: Option<String>,
    /// The original body: JSON when it parsed, else a string of its text.
    pub record: serde_json::Value,
}

impl Envelope {
    /// Read the body of a dead-letter record.
    ///
    /// # Errors
    /// When `body` is not an envelope (it was not made by [`DeadLetter::into_record`]).
    pub fn read(body: &[u8]) -> Result<Envelope, serde_json::Error> {
        serde_json::from_slice(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(body: &'static [u8]) -> Record {
        Record {
            time: 0,
            tag: "app".into(),
            body: Bytes::from_static(body),
            origin: Some(Origin { stream: "file:x".into(), offset: 3, lineage: 0 }),
            ack: None,
            arrival: None,
        }
    }

    #[test]
    fn keeps_a_json_body_as_json() {
        let dl = DeadLetter::of(record(br#"{"a":1}"#), "filter split", "no logs field");
        let out = dl.into_record(&Arc::from("dlq"));
        let v: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(&*out.tag, "dlq");
        assert_eq!(v["record"]["a"], 1);
        assert_eq!(v["reason"], "no logs field");
        assert_eq!(v["stage"], "filter split");
        assert_eq!(v["tag"], "app");
        assert_eq!(v["origin"], "file:x@3");
        assert_eq!(v["time"], "1970-01-01T00:00:00Z");
    }

    #[test]
    fn an_envelope_reads_back_what_was_written() {
        let out = DeadLetter::of(record(br#"{"a":1}"#), "filter split", "no logs field").into_record(&Arc::from("dlq"));
        let envelope = Envelope::read(&out.body).unwrap();
        assert_eq!(envelope.stage, "filter split");
        assert_eq!(envelope.reason, "no logs field");
        assert_eq!(envelope.tag, "app");
        assert_eq!(envelope.time, "1970-01-01T00:00:00Z");
        assert_eq!(envelope.origin.as_deref(), Some("file:x@3"));
        assert_eq!(envelope.record, serde_json::json!({"a": 1}));
    }

    #[test]
    fn keeps_a_malformed_body_as_a_string() {
        let out = DeadLetter::of(record(b"{oops"), "input file", "bad json").into_record(&Arc::from("dlq"));
        let v: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(v["record"], "{oops");
    }
}
