//! The console's JSON API, `/api/v1/...`: the HTTP side only (routes,
//! limits, status codes, shapes). What it reads and runs comes from a
//! [`Console`], which the pipeline implements (`pipeline/console`), so this
//! floor names no pipeline type and the host still names no filter.
//!
//! | endpoint | answer |
//! |---|---|
//! | `GET /api/v1/pipeline` | inputs, filters, outputs: settings, plugin file and digest, limits, counters, queue depths |
//! | `GET /api/v1/filters/{name}/samples?limit=N` | the last records (a bounded sample) that reached filter `name` |
//! | `POST /api/v1/filters/{name}/test` | runs filter `name` (its plugin, with `config` if given) on `records` |
//! | `GET /api/v1/records?tags=a,b&limit=N` | the last records of those tags on their way to outputs (all of rare tags such as windows and alerts, a spread of busy ones) |
//! | `GET /api/v1/samples?from=&to=&key=` | sample input records of one series in a time range (`admin.samples`) |
//! | `GET /api/v1/dead-letters?limit=N` | the last dead letters, with their reasons |
//! | `GET /api/v1/stream?tags=a,b` | Server-Sent Events: `records` (of those tags), `dead_letter`, `stats` (every second), `lagged` |
//! | `POST /api/v1/reload` | reload from the config file; `{"filters": {NAME: {"config": {...}}}}` replaces those filters' config blocks |
//!
//! Errors are `{"error": {"kind", "message", ...}}` with 400 (bad input),
//! 404 (an unknown filter), 413 (a body or batch over the limits) or 422
//! (the plugin refused: a config error carries the plugin's `field`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::AdminState;
use crate::core::clock::rfc3339;
use crate::core::record::Timestamp;

/// Largest request body of `POST /api/v1/filters/{name}/test`: a generous
/// paste, small enough that a mistaken one cannot hurt the running pipeline.
pub const MAX_TEST_BODY: usize = 1 << 20;
/// Most records per test run, as a pipeline batch holds by default.
pub const MAX_TEST_RECORDS: usize = 1000;
/// Most records any list endpoint returns.
const MAX_LIST: usize = 1000;
/// How often the stream sends counters.
const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// A record as the pipeline holds it: time, tag and body bytes. Serialised
/// as `{"time": RFC 3339, "tag", "body": JSON}` (a body that is not JSON
/// shows as a string).
#[derive(Debug, Clone)]
pub struct Sample {
    /// Event time, ns since the epoch.
    pub time: Timestamp,
    /// Routing tag.
    pub tag: Arc<str>,
    /// The body bytes.
    pub body: Bytes,
}

impl Serialize for Sample {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let body = serde_json::from_slice::<Value>(&self.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&self.body).into_owned()));
        json!({ "time": rfc3339(self.time), "tag": &*self.tag, "body": body }).serialize(serializer)
    }
}

/// What the stream carries besides counters.
#[derive(Debug, Clone)]
pub enum StreamEvent {
    /// Records kept on their way to outputs.
    Records(Vec<Sample>),
    /// A dead letter (its body is the envelope with the reason).
    DeadLetter(Sample),
}

/// One record to test a filter on.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestRecord {
    /// Its body, a JSON object.
    pub body: serde_json::Map<String, Value>,
    /// Its tag; default `console.test`.
    #[serde(default)]
    pub tag: Option<String>,
    /// Its event time, RFC 3339; default now.
    #[serde(default)]
    pub time: Option<String>,
}

/// `POST /api/v1/filters/{name}/test`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    /// A config block to run the filter's plugin with instead of its own.
    #[serde(default)]
    pub config: Option<Value>,
    /// The records, at most [`MAX_TEST_RECORDS`].
    pub records: Vec<TestRecord>,
}

/// What a test run made of each record.
#[derive(Debug, Serialize)]
pub struct TestOutcome {
    /// The filter.
    pub filter: String,
    /// One entry per input record, in order.
    pub results: Vec<TestResult>,
    /// Records emitted with no parent.
    pub aggregates: Vec<Sample>,
    /// How long configure and process took, in ms.
    pub took_ms: f64,
}

/// What became of one input record.
#[derive(Debug, Default, Serialize)]
pub struct TestResult {
    /// The records emitted with it as parent, in the plugin's order.
    pub emitted: Vec<Sample>,
    /// The plugin's reason, when it rejected the record.
    pub rejected: Option<String>,
}

/// `GET /api/v1/samples`: a series (`key`: the values of the configured
/// key fields, e.g. `{"metric": "m", "labels": {...}}`) and a time range.
#[derive(Debug, Deserialize)]
pub struct WindowQuery {
    /// Start, RFC 3339, inclusive.
    pub from: String,
    /// End, RFC 3339, exclusive.
    pub to: String,
    /// The series, as a JSON object of the key fields.
    pub key: String,
    /// Most samples; default 20.
    pub limit: Option<usize>,
}

/// Why an API call failed.
#[derive(Debug)]
pub enum ApiError {
    /// 400: the request is malformed.
    BadRequest(String),
    /// 404: no such filter (or feature not configured).
    NotFound(String),
    /// 413: over a limit.
    TooLarge(String),
    /// 422: the plugin refused; `detail` holds `kind`, `message` and, for a
    /// config error, `field`.
    Plugin(Value),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, json!({ "kind": "bad_request", "message": m })),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, json!({ "kind": "not_found", "message": m })),
            ApiError::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, json!({ "kind": "too_large", "message": m })),
            ApiError::Plugin(detail) => (StatusCode::UNPROCESSABLE_ENTITY, detail),
        };
        (status, Json(json!({ "error": error }))).into_response()
    }
}

/// What the console reads from, and runs in, the running pipeline.
pub trait Console: Send + Sync {
    /// The components, their settings and live counters (the shape of
    /// `GET /api/v1/pipeline`).
    fn pipeline(&self) -> Value;
    /// Counters only, as sent on the stream every second.
    fn stats(&self) -> Value;
    /// The last records, up to `limit`, that reached filter `filter`.
    ///
    /// # Errors
    /// [`ApiError::NotFound`] for an unknown filter.
    fn filter_samples(&self, filter: &str, limit: usize) -> Result<Vec<Sample>, ApiError>;
    /// Run filter `filter` on `records` in a fresh instance of its plugin,
    /// configured with `config` or its own block. Blocking: compiles and
    /// calls the plugin.
    ///
    /// # Errors
    /// Unknown filter, malformed records, or the plugin's refusal.
    fn test_filter(&self, filter: &str, request: TestRequest) -> Result<TestOutcome, ApiError>;
    /// The last records, up to `limit` per tag, of `tags` (all when
    /// empty), by event time; and the tags kept with their counts.
    fn records(&self, tags: &[&str], limit: usize) -> Value;
    /// Sample input records of one series and time range.
    ///
    /// # Errors
    /// Malformed times or key; `NotFound` when `admin.samples` is not set.
    fn window_samples(&self, query: &WindowQuery) -> Result<Value, ApiError>;
    /// The last dead letters, oldest first.
    fn dead_letters(&self, limit: usize) -> Vec<Sample>;
    /// Newly kept records and dead letters, as they happen.
    fn subscribe(&self) -> broadcast::Receiver<StreamEvent>;
}

/// Reloads the pipeline with config blocks replaced by filter name (empty:
/// as the file says): `Ok` with what changed, or `Err` with why nothing did.
pub type ReloadFn = Arc<
    dyn Fn(serde_json::Map<String, Value>) -> Pin<Box<dyn Future<Output = Result<Value, String>> + Send>> + Send + Sync,
>;

/// The `/api/v1` routes.
pub fn routes() -> axum::Router<AdminState> {
    axum::Router::new()
        .route("/pipeline", get(pipeline))
        .route("/filters/{name}/samples", get(filter_samples))
        .route("/filters/{name}/test", post(test_filter))
        .route("/records", get(records))
        .route("/samples", get(window_samples))
        .route("/dead-letters", get(dead_letters))
        .route("/stream", get(stream))
        .route("/reload", post(reload))
}

fn console(state: &AdminState) -> Result<Arc<dyn Console>, ApiError> {
    state.console.clone().ok_or_else(|| ApiError::NotFound("the pipeline is not running".into()))
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<usize>,
}

impl Limit {
    fn get(&self, default: usize) -> usize {
        self.limit.unwrap_or(default).min(MAX_LIST)
    }
}

async fn pipeline(State(state): State<AdminState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(console(&state)?.pipeline()))
}

async fn filter_samples(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    Query(limit): Query<Limit>,
) -> Result<Json<Value>, ApiError> {
    let records = console(&state)?.filter_samples(&name, limit.get(50))?;
    Ok(Json(json!({ "filter": name, "records": records })))
}

async fn test_filter(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Json<TestOutcome>, ApiError> {
    let console = console(&state)?;
    let bytes = axum::body::to_bytes(body, MAX_TEST_BODY)
        .await
        .map_err(|_| ApiError::TooLarge(format!("request body over {MAX_TEST_BODY} bytes")))?;
    let request: TestRequest = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::BadRequest(format!("request body: {e}; expected {{\"records\": [{{\"body\": {{...}}}}]}}"))
    })?;
    if request.records.len() > MAX_TEST_RECORDS {
        return Err(ApiError::TooLarge(format!(
            "{} records; at most {MAX_TEST_RECORDS} per test",
            request.records.len()
        )));
    }
    let outcome = tokio::task::spawn_blocking(move || console.test_filter(&name, request))
        .await
        .map_err(|e| ApiError::Plugin(json!({ "kind": "internal", "message": e.to_string() })))??;
    Ok(Json(outcome))
}

/// `?tags=a,b` (none: every tag) and `?limit=N`.
#[derive(Deserialize)]
struct Tags {
    tags: Option<String>,
    limit: Option<usize>,
}

impl Tags {
    fn list(&self) -> Vec<&str> {
        self.tags.as_deref().map(|t| t.split(',').filter(|t| !t.is_empty()).collect()).unwrap_or_default()
    }
}

async fn records(State(state): State<AdminState>, Query(query): Query<Tags>) -> Result<Json<Value>, ApiError> {
    let limit = query.limit.unwrap_or(MAX_LIST).min(MAX_LIST);
    Ok(Json(console(&state)?.records(&query.list(), limit)))
}

async fn window_samples(
    State(state): State<AdminState>,
    Query(query): Query<WindowQuery>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(console(&state)?.window_samples(&query)?))
}

async fn dead_letters(State(state): State<AdminState>, Query(limit): Query<Limit>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "records": console(&state)?.dead_letters(limit.get(100)) })))
}

/// The stream: what happens, as it happens, plus counters every second. A
/// client too slow for the rate of events gets `lagged` (with how many it
/// missed) and should re-read the lists.
async fn stream(State(state): State<AdminState>, Query(query): Query<Tags>) -> Result<Response, ApiError> {
    let console = console(&state)?;
    let tags: Arc<[String]> = query.list().into_iter().map(String::from).collect();
    let events = console.subscribe();
    let mut stats = tokio::time::interval(STATS_INTERVAL);
    stats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let state = (console, events, stats, tags);
    let stream = futures_util::stream::unfold(state, |(console, mut events, mut stats, tags)| async move {
        let event = loop {
            break tokio::select! {
                _ = stats.tick() => Event::default().event("stats").json_data(console.stats()),
                received = events.recv() => match received {
                    Ok(StreamEvent::Records(records)) => {
                        let wanted: Vec<&Sample> =
                            records.iter().filter(|s| tags.is_empty() || tags.iter().any(|t| **t == *s.tag)).collect();
                        if wanted.is_empty() {
                            continue;
                        }
                        Event::default().event("records").json_data(wanted)
                    }
                    Ok(StreamEvent::DeadLetter(letter)) => Event::default().event("dead_letter").json_data(letter),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        Event::default().event("lagged").json_data(json!({ "missed": missed }))
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            };
        };
        Some((event, (console, events, stats, tags)))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReloadRequest {
    #[serde(default)]
    filters: serde_json::Map<String, Value>,
}

/// `POST /api/v1/reload`: as `POST /-/reload`, optionally with filter
/// config blocks replaced. The body must be JSON (`{}` for a plain
/// reload), which also keeps other sites' pages from posting it.
async fn reload(State(state): State<AdminState>, Json(request): Json<ReloadRequest>) -> Response {
    let mut overrides = serde_json::Map::new();
    for (name, value) in request.filters {
        match value {
            Value::Object(mut filter) if filter.len() == 1 && filter.contains_key("config") => {
                overrides.insert(name, filter.remove("config").expect("checked above"));
            }
            _ => {
                return ApiError::BadRequest(format!("filters.{name}: expected {{\"config\": {{...}}}}"))
                    .into_response();
            }
        }
    }
    super::run_reload(&state, overrides).await.into_response()
}
