//! Elasticsearch compatibility: the answers ES clients and shippers probe
//! on connect (`GET /`, `/_license`, `/_xpack`, `/_nodes`,
//! `/_cluster/health`) for the version Weir claims ([`EsVersion`]), the
//! index templates, ILM policies and ingest pipelines they check for and
//! install ([`Resources`]), the `X-Elastic-Product` header they insist on,
//! and 404s in Elasticsearch's error shape. The `_bulk` endpoint itself is
//! in `server.rs`, beside `/ingest`, since both queue records the same way.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::errors::RequestError;
use super::server::HttpInputState;

/// The Elasticsearch version the ES endpoints claim (`es_version`, default
/// [`EsVersion::DEFAULT`]). Shippers read it on connect: Filebeat and
/// Logstash choose their wire format, templates and data streams by its
/// major version, Beats refuse a cluster older than themselves unless
/// `allow_older_versions`, and 7.x answers carry `_type: _doc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EsVersion {
    text: String,
    major: u8,
}

impl EsVersion {
    /// What Weir claims unless told: an 8.x that 8.x clients and shippers
    /// accept.
    pub const DEFAULT: &str = "8.15.0";

    /// `MAJOR.MINOR.PATCH` with a major version of 7, 8 or 9.
    ///
    /// # Errors
    /// A message naming the value and what was expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split('.').collect();
        let numbers = parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        match parts[0].parse::<u8>() {
            Ok(major @ 7..=9) if parts.len() == 3 && numbers => Ok(EsVersion { text: text.to_string(), major }),
            _ => Err(format!("es_version {text:?}: expected MAJOR.MINOR.PATCH with a major version of 7, 8 or 9")),
        }
    }

    /// The version as written, `8.15.0`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether answers carry 7.x's `_type: _doc`.
    pub fn has_types(&self) -> bool {
        self.major == 7
    }

    /// Lucene version and oldest wire and index versions of this major, as
    /// Elasticsearch's `GET /` reports them.
    fn lineage(&self) -> (&'static str, &'static str, &'static str) {
        match self.major {
            7 => ("8.11.3", "6.8.0", "6.0.0-beta1"),
            8 => ("9.11.1", "7.17.0", "7.0.0"),
            _ => ("10.1.0", "8.18.0", "8.0.0"),
        }
    }
}

impl Default for EsVersion {
    fn default() -> Self {
        EsVersion::parse(EsVersion::DEFAULT).expect("the default version parses")
    }
}

impl<'de> Deserialize<'de> for EsVersion {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        EsVersion::parse(&String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// The build Weir's ES endpoints claim.
const ES_BUILD_DATE: &str = "2024-08-05T10:05:34.233336849Z";

/// `X-Elastic-Product: Elasticsearch`: ES clients (Python, Java, Go 8.x)
/// refuse to talk to a server whose responses lack it.
pub(super) async fn elastic_product(mut response: Response) -> Response {
    response.headers_mut().insert("x-elastic-product", HeaderValue::from_static("Elasticsearch"));
    response
}

pub(super) async fn not_found(request: axum::extract::Request) -> Response {
    let reason = format!("no handler found for uri [{}] and method [{}]", request.uri(), request.method());
    let body = json!({ "error": { "type": "resource_not_found_exception", "reason": reason }, "status": 404 });
    elastic_product((StatusCode::NOT_FOUND, axum::Json(body)).into_response()).await
}

pub(super) fn es_respond(result: Result<Value, RequestError>) -> Response {
    match result {
        Ok(body) => axum::Json(body).into_response(),
        Err(error) => error.es_response(),
    }
}

pub(super) async fn es_root(State(state): State<HttpInputState>, headers: HeaderMap) -> Response {
    let version = state.es_version();
    let (lucene, wire, index) = version.lineage();
    es_respond(state.authorize(&headers).map(|()| {
        json!({
            "name": "weir",
            "cluster_name": "weir",
            "cluster_uuid": "weir-http-input",
            "version": {
                "number": version.as_str(),
                "build_flavor": "default",
                "build_type": "weir",
                "build_hash": "weir",
                "build_date": ES_BUILD_DATE,
                "build_snapshot": false,
                "lucene_version": lucene,
                "minimum_wire_compatibility_version": wire,
                "minimum_index_compatibility_version": index
            },
            "tagline": "You Know, for Search"
        })
    }))
}

pub(super) async fn es_license(State(state): State<HttpInputState>, headers: HeaderMap) -> Response {
    es_respond(state.authorize(&headers).map(|()| {
        json!({ "license": { "status": "active", "uid": "weir", "type": "basic", "mode": "basic", "issued_to": "weir", "issuer": "weir" } })
    }))
}

pub(super) async fn es_xpack(State(state): State<HttpInputState>, headers: HeaderMap) -> Response {
    let state_security = state.requires_auth();
    es_respond(state.authorize(&headers).map(|()| {
        json!({
            "build": { "hash": "weir", "date": ES_BUILD_DATE },
            "license": { "uid": "weir", "type": "basic", "mode": "basic", "status": "active" },
            // Shippers install ILM policies only where ILM is available.
            "features": {
                "ilm": { "available": true, "enabled": true },
                "security": { "available": true, "enabled": state_security }
            }
        })
    }))
}

pub(super) async fn es_nodes(State(state): State<HttpInputState>, headers: HeaderMap) -> Response {
    let address = state.address().to_string();
    es_respond(state.authorize(&headers).map(|()| {
        json!({
            "_nodes": { "total": 1, "successful": 1, "failed": 0 },
            "cluster_name": "weir",
            "nodes": { "weir": {
                "name": "weir", "version": state.es_version().as_str(), "roles": ["data", "ingest", "master"],
                "http": { "publish_address": address, "bound_address": [address] }
            } }
        })
    }))
}

pub(super) async fn es_cluster_health(State(state): State<HttpInputState>, headers: HeaderMap) -> Response {
    es_respond(state.authorize(&headers).map(|()| {
        json!({
            "cluster_name": "weir", "status": "green", "timed_out": false,
            "number_of_nodes": 1, "number_of_data_nodes": 1,
            "active_primary_shards": 0, "active_shards": 0, "relocating_shards": 0,
            "initializing_shards": 0, "unassigned_shards": 0, "delayed_unassigned_shards": 0,
            "number_of_pending_tasks": 0, "number_of_in_flight_fetch": 0,
            "task_max_waiting_in_queue_millis": 0, "active_shards_percent_as_number": 100.0
        })
    }))
}

/// Most resources one input keeps: shippers install a handful (a template,
/// a policy, a pipeline each); the bound keeps a misbehaving client from
/// growing memory without limit.
const MAX_RESOURCES: usize = 1024;

/// Largest resource body kept: Filebeat's index template, the largest a
/// shipper installs, is about 300 KiB.
pub(super) const MAX_RESOURCE_BYTES: usize = 4 << 20;

/// What shippers check for and install before they index, in the
/// Elasticsearch API's words. Weir keeps what was `PUT` so that a later
/// `HEAD`/`GET` finds it, as Elasticsearch would, and applies none of it:
/// mappings, lifecycles and ingest pipelines belong to the Elasticsearch
/// behind Weir's Elasticsearch output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum ResourceKind {
    /// `/_index_template/{name}` (composable, 7.8+).
    IndexTemplate,
    /// `/_template/{name}` (legacy).
    LegacyTemplate,
    /// `/_component_template/{name}`.
    ComponentTemplate,
    /// `/_ilm/policy/{name}`.
    IlmPolicy,
    /// `/_ingest/pipeline/{name}`.
    IngestPipeline,
}

impl ResourceKind {
    /// Every kind with its path prefix, for the router.
    pub(super) const ALL: [(ResourceKind, &'static str); 5] = [
        (ResourceKind::IndexTemplate, "/_index_template"),
        (ResourceKind::LegacyTemplate, "/_template"),
        (ResourceKind::ComponentTemplate, "/_component_template"),
        (ResourceKind::IlmPolicy, "/_ilm/policy"),
        (ResourceKind::IngestPipeline, "/_ingest/pipeline"),
    ];

    /// A `GET`'s answer for `name` holding `body`, shaped as Elasticsearch's.
    fn answer(self, name: &str, body: &Value) -> Value {
        match self {
            ResourceKind::IndexTemplate => json!({ "index_templates": [{ "name": name, "index_template": body }] }),
            ResourceKind::ComponentTemplate => {
                json!({ "component_templates": [{ "name": name, "component_template": body }] })
            }
            ResourceKind::IlmPolicy => json!({ name: {
                "version": 1,
                "modified_date": "1970-01-01T00:00:00.000Z",
                "policy": body.get("policy").cloned().unwrap_or_else(|| json!({})),
            } }),
            ResourceKind::LegacyTemplate | ResourceKind::IngestPipeline => json!({ name: body }),
        }
    }

    /// The 404 for `name`: Elasticsearch's error for templates and policies;
    /// an empty object for legacy templates and pipelines, as it answers.
    fn missing(self, name: &str) -> Value {
        let reason = match self {
            ResourceKind::IndexTemplate => format!("index template matching [{name}] not found"),
            ResourceKind::ComponentTemplate => format!("component template matching [{name}] not found"),
            ResourceKind::IlmPolicy => format!("Lifecycle policy not found: {name}"),
            ResourceKind::LegacyTemplate | ResourceKind::IngestPipeline => return json!({}),
        };
        let error = json!({ "type": "resource_not_found_exception", "reason": reason });
        json!({ "error": { "root_cause": [error.clone()], "type": error["type"], "reason": error["reason"] }, "status": 404 })
    }
}

/// The resources `PUT` to one input, in memory (a restart forgets them and
/// shippers put them again).
#[derive(Debug, Default)]
pub(super) struct Resources(Mutex<HashMap<(ResourceKind, String), Value>>);

impl Resources {
    fn get(&self, kind: ResourceKind, name: &str) -> Option<Value> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).get(&(kind, name.to_string())).cloned()
    }

    fn put(&self, kind: ResourceKind, name: &str, body: Value) -> Result<(), RequestError> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let key = (kind, name.to_string());
        if map.len() >= MAX_RESOURCES && !map.contains_key(&key) {
            return Err(RequestError::IllegalArgument(format!(
                "more than {MAX_RESOURCES} templates, policies and pipelines were put to this input"
            )));
        }
        map.insert(key, body);
        Ok(())
    }

    fn delete(&self, kind: ResourceKind, name: &str) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&(kind, name.to_string())).is_some()
    }
}

/// `HEAD`, `GET`, `PUT`/`POST` and `DELETE` of one resource.
pub(super) async fn resource(
    kind: ResourceKind,
    state: HttpInputState,
    name: String,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(error) = state.authorize(&headers) {
        return error.es_response();
    }
    let found = |value: Value| axum::Json(value).into_response();
    match method {
        Method::GET | Method::HEAD => match state.resources().get(kind, &name) {
            Some(body) => found(kind.answer(&name, &body)),
            None => (StatusCode::NOT_FOUND, axum::Json(kind.missing(&name))).into_response(),
        },
        Method::PUT | Method::POST => {
            let stored = async {
                let bytes = state.small_body(&headers, body, MAX_RESOURCE_BYTES).await?;
                let value: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
                    json!({})
                } else {
                    serde_json::from_slice(&bytes)
                        .map_err(|e| RequestError::IllegalArgument(format!("the body is not JSON: {e}")))?
                };
                if !value.is_object() {
                    return Err(RequestError::IllegalArgument("the body is not a JSON object".into()));
                }
                state.resources().put(kind, &name, value)
            };
            match stored.await {
                Ok(()) => found(json!({ "acknowledged": true })),
                Err(error) => error.es_response(),
            }
        }
        Method::DELETE if state.resources().delete(kind, &name) => found(json!({ "acknowledged": true })),
        Method::DELETE => (StatusCode::NOT_FOUND, axum::Json(kind.missing(&name))).into_response(),
        other => {
            let reason = format!("Incorrect HTTP method for uri [{}], allowed: [GET, HEAD, PUT, POST, DELETE]", other);
            let body = json!({ "error": reason, "status": 405 });
            (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
        }
    }
}
