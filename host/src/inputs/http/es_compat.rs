//! Elasticsearch compatibility: the answers ES clients and shippers probe
//! on connect (`GET /`, `/_license`, `/_xpack`, `/_nodes`,
//! `/_cluster/health`), the `X-Elastic-Product` header they insist on, and
//! 404s in Elasticsearch's error shape. The `_bulk` endpoint itself is in
//! `server.rs`, beside `/ingest`, since both queue records the same way.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::errors::RequestError;
use super::server::HttpInputState;

/// The Elasticsearch version Weir's ES endpoints claim. Clients pick their
/// wire format by major version; 8 is what current collectors speak.
pub const ES_VERSION: &str = "8.15.0";

/// The build Weir's ES endpoints claim, matching [`ES_VERSION`].
const ES_BUILD_DATE: &str = "2024-08-05T10:05:34.233336849Z";
/// The Lucene version of Elasticsearch [`ES_VERSION`].
const LUCENE_VERSION: &str = "9.11.1";

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
    es_respond(state.authorize(&headers).map(|()| {
        json!({
            "name": "weir",
            "cluster_name": "weir",
            "cluster_uuid": "weir-http-input",
            "version": {
                "number": ES_VERSION,
                "build_flavor": "default",
                "build_type": "weir",
                "build_hash": "weir",
                "build_date": ES_BUILD_DATE,
                "build_snapshot": false,
                "lucene_version": LUCENE_VERSION,
                "minimum_wire_compatibility_version": "7.17.0",
                "minimum_index_compatibility_version": "7.0.0"
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
    es_respond(state.authorize(&headers).map(|()| {
        json!({
            "build": { "hash": "weir", "date": ES_BUILD_DATE },
            "license": { "uid": "weir", "type": "basic", "mode": "basic", "status": "active" },
            "features": {}
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
                "name": "weir", "version": ES_VERSION, "roles": ["data", "ingest", "master"],
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
