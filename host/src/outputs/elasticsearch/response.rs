//! Reading a `_bulk` response, with no I/O: each document is delivered,
//! to be retried (429 and 5xx: the cluster is busy or a shard is moving), or
//! refused for good (mapping errors and other 4xx), in which case the
//! reason names Elasticsearch's error type and reason, the index and the
//! `_id`. A 409 `version_conflict_engine_exception` on a `create` means a
//! document with our deterministic `_id` is already there, which is what a
//! retry or replay should find: delivered; a replayed `delete` answered 404
//! `not_found` finds nothing to delete: delivered. Whole-request failures (the
//! status line) are the client's business, not this module's.

use std::collections::HashMap;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::bulk::{BulkAction, ItemMeta};

/// What happened to one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Stored (or already there).
    Delivered,
    /// Try again later; the reason is for logs.
    Retry(String),
    /// Refused for good; the reason goes with the dead letter.
    Rejected(String),
}

/// The fields asked for with `filter_path` (see `client.rs`); extra fields
/// (a full response) are ignored.
#[derive(Deserialize)]
struct Summary {
    errors: bool,
    items: Vec<IgnoredAny>,
}

#[derive(Deserialize)]
struct Full {
    items: Vec<HashMap<String, Item>>,
}

#[derive(Deserialize)]
struct Item {
    status: u16,
    error: Option<ItemError>,
}

#[derive(Deserialize)]
struct ItemError {
    #[serde(rename = "type")]
    kind: Option<String>,
    reason: Option<String>,
    caused_by: Option<Box<ItemError>>,
}

impl ItemError {
    fn describe(&self) -> String {
        let mut text = format!(
            "{}: {}",
            self.kind.as_deref().unwrap_or("unknown_error"),
            self.reason.as_deref().unwrap_or("no reason given")
        );
        let mut cause = self.caused_by.as_deref();
        while let Some(c) = cause {
            text.push_str(&format!(
                " (caused by {}: {})",
                c.kind.as_deref().unwrap_or("unknown_error"),
                c.reason.as_deref().unwrap_or("no reason given")
            ));
            cause = c.caused_by.as_deref();
        }
        text
    }
}

/// Classify each document of a `_bulk` request whose documents were `sent`,
/// in order. `Err` when the body is not a `_bulk` response for them: the
/// caller retries the whole request, which is safe with deterministic ids.
pub fn classify(body: &[u8], sent: &[ItemMeta], action: BulkAction) -> Result<Vec<ItemOutcome>, String> {
    let summary: Summary = serde_json::from_slice(body).map_err(|e| format!("unreadable _bulk response: {e}"))?;
    if summary.items.len() != sent.len() {
        return Err(format!("the _bulk response has {} items for {} documents", summary.items.len(), sent.len()));
    }
    if !summary.errors {
        return Ok(vec![ItemOutcome::Delivered; sent.len()]);
    }
    let full: Full = serde_json::from_slice(body).map_err(|e| format!("unreadable _bulk response: {e}"))?;
    full.items
        .into_iter()
        .zip(sent)
        .map(|(item, meta)| {
            let Some(item) = item.into_values().next() else {
                return Err(format!("the _bulk response item for index {}, _id {} is empty", meta.index, meta.id));
            };
            Ok(outcome(&item, meta, action))
        })
        .collect()
}

fn outcome(item: &Item, meta: &ItemMeta, action: BulkAction) -> ItemOutcome {
    let why = || {
        let error = item.error.as_ref().map(ItemError::describe).unwrap_or_else(|| "no error given".into());
        format!("index {}, _id {}: status {}: {error}", meta.index, meta.id, item.status)
    };
    let action = meta.replayed.unwrap_or(action.as_str());
    match item.status {
        200..=299 => ItemOutcome::Delivered,
        // A replayed delete of a document that is not there: nothing to do.
        404 if action == "delete" && item.error.is_none() => ItemOutcome::Delivered,
        409 if action == "create"
            && item.error.as_ref().and_then(|e| e.kind.as_deref()) == Some("version_conflict_engine_exception") =>
        {
            ItemOutcome::Delivered
        }
        // A replayed update raced another writer of the document: it
        // applies cleanly once the other write is in.
        429 | 500..=599 => ItemOutcome::Retry(why()),
        409 if action == "update" => ItemOutcome::Retry(why()),
        _ => ItemOutcome::Rejected(format!("elasticsearch refused the document: {}", why())),
    }
}
