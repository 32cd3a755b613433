//! The admin server: `/health` (the process is up and its pipeline is not
//! stalled), `/ready` (the pipeline
//! is running), `/metrics` (Prometheus text), `POST /-/reload` (re-read the
//! config and apply what changed), the console's JSON API under `/api/v1`
//! ([`api`]) and the console itself under `/console/` ([`assets`]), with
//! `/` leading there. Bound where the config's `admin.address` says; keep
//! it on localhost, or set `admin.token`: then everything but `/health`,
//! `/ready` and the console's files (which hold no data) needs
//! `Authorization: Bearer <token>`.

pub mod api;
mod assets;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use api::{Console, ReloadFn};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::core::secret::Secret;

/// What is wrong with the pipeline, one line per problem (a stalled
/// queue); empty when it is healthy.
pub type HealthFn = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

/// What the admin handlers read.
#[derive(Clone, Default)]
pub struct AdminState {
    /// True once every output has started and every input listens; false
    /// again while draining.
    pub ready: Arc<AtomicBool>,
    /// How to reload; `None` answers 503.
    pub reload: Option<ReloadFn>,
    /// The running pipeline, for the console's API; `None` answers 404.
    pub console: Option<Arc<dyn Console>>,
    /// The bearer token guarding everything but health, readiness and the
    /// console's files.
    pub token: Option<Secret>,
    /// What `/health` checks beyond the process answering; `None` checks
    /// nothing more.
    pub health: Option<HealthFn>,
}

/// The admin routes.
pub fn router(state: AdminState) -> Router {
    let guarded = Router::new()
        .route("/metrics", get(metrics))
        .route("/-/reload", axum::routing::post(reload))
        .nest("/api/v1", api::routes())
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), authorise));
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(assets::serve_index))
        .route("/console/{*file}", get(assets::serve))
        .merge(guarded)
        .with_state(state)
}

/// Refuse a request without the configured bearer token (constant-time
/// compare, as the HTTP input does).
async fn authorise(State(state): State<AdminState>, request: Request, next: Next) -> Response {
    let Some(token) = &state.token else {
        return next.run(request).await;
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if subtle::ConstantTimeEq::ct_eq(given.as_bytes(), token.expose().as_bytes()).into() {
        return next.run(request).await;
    }
    let body = serde_json::json!({ "error": { "kind": "unauthorized", "message": "missing or wrong bearer token (admin.token)" } });
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], axum::Json(body)).into_response()
}

/// 200 `ok`, or 503 `stalled: ...` naming each stalled queue, so a
/// liveness probe restarts a pipeline that stopped moving.
async fn health(State(state): State<AdminState>) -> impl IntoResponse {
    let problems = state.health.as_ref().map(|check| check()).unwrap_or_default();
    if problems.is_empty() {
        (StatusCode::OK, "ok\n".to_string())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("stalled: {}\n", problems.join("; ")))
    }
}

async fn ready(State(state): State<AdminState>) -> impl IntoResponse {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
    }
}

async fn reload(State(state): State<AdminState>) -> impl IntoResponse {
    run_reload(&state, serde_json::Map::new()).await
}

/// Reload with filter config blocks replaced by name: 200 `{"reloaded":
/// true, "changes"}`, 422 `{"reloaded": false, "error"}`, or 503 when no
/// pipeline runs.
async fn run_reload(
    state: &AdminState,
    overrides: serde_json::Map<String, serde_json::Value>,
) -> (StatusCode, axum::Json<serde_json::Value>) {
    let Some(reload) = &state.reload else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "reloaded": false, "error": "the pipeline is not running" })),
        );
    };
    match reload(overrides).await {
        Ok(changes) => (StatusCode::OK, axum::Json(serde_json::json!({ "reloaded": true, "changes": changes }))),
        Err(error) => {
            (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(serde_json::json!({ "reloaded": false, "error": error })))
        }
    }
}

async fn metrics() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::core::metrics::registry().render())
}

/// Serve the admin API on `address` until `shutdown` fires.
pub async fn serve(
    address: SocketAddr,
    state: AdminState,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    tracing::info!(address = %listener.local_addr()?, "admin API listening");
    axum::serve(listener, router(state)).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    async fn get_status(app: Router, path: &str) -> (StatusCode, String) {
        let response = app.oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn ready_turns_200_once_the_pipeline_runs() {
        let state = AdminState::default();
        assert_eq!(get_status(router(state.clone()), "/ready").await.0, StatusCode::SERVICE_UNAVAILABLE);
        state.ready.store(true, Ordering::Release);
        assert_eq!(get_status(router(state), "/ready").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn metrics_are_served_as_prometheus_text() {
        let metric = &crate::core::metrics::catalogue::ALERTMANAGER_ACTIVE;
        crate::core::metrics::registry().gauge(metric, &["admin-test"]).set(7);
        let (status, body) = get_status(router(AdminState::default()), "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("weir_alertmanager_active_alerts{output=\"admin-test\"} 7"), "{body}");
    }

    #[tokio::test]
    async fn health_answers_503_naming_what_stalled() {
        assert_eq!(get_status(router(AdminState::default()), "/health").await, (StatusCode::OK, "ok\n".into()));
        let stalled: HealthFn = Arc::new(|| vec!["output es: full (8 of 8 batches), nothing taken for 61s".into()]);
        let state = AdminState { health: Some(stalled), ..AdminState::default() };
        let (status, body) = get_status(router(state), "/health").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, "stalled: output es: full (8 of 8 batches), nothing taken for 61s\n");
    }

    #[tokio::test]
    async fn reload_answers_what_changed_or_why_not() {
        let ok: ReloadFn =
            Arc::new(|_| Box::pin(async { Ok(serde_json::json!({ "filters": { "modified": ["a"] } })) }));
        let state = AdminState { reload: Some(ok), ..AdminState::default() };
        let response = router(state).oneshot(Request::post("/-/reload").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&body).unwrap()["changes"]["filters"]["modified"][0],
            "a"
        );

        let refused: ReloadFn = Arc::new(|_| Box::pin(async { Err("plugin x: config field `y`: bad".to_string()) }));
        let state = AdminState { reload: Some(refused), ..AdminState::default() };
        let response = router(state).oneshot(Request::post("/-/reload").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["reloaded"], false);
        assert_eq!(body["error"], "plugin x: config field `y`: bad");
    }

    #[tokio::test]
    async fn serves_on_a_real_port() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router(AdminState::default())).await });
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
}
