//! The admin API: `/health` (the process is up and its pipeline is not
//! stalled), `/ready` (the pipeline is running), `/metrics` (Prometheus
//! text) and `POST /-/reload` (re-read the config and apply what changed).
//! Bound where the config's `admin.address` says; keep it on localhost, as
//! reload needs no credentials.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

/// Reloads the pipeline: `Ok` with a JSON description of what changed, or
/// `Err` with why nothing did.
pub type ReloadFn =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<serde_json::Value, String>> + Send>> + Send + Sync>;

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
    /// What `/health` checks beyond the process answering; `None` checks
    /// nothing more.
    pub health: Option<HealthFn>,
}

/// The admin routes.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/-/reload", axum::routing::post(reload))
        .with_state(state)
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
    let Some(reload) = state.reload else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "reloaded": false, "error": "the pipeline is not running" })),
        );
    };
    match reload().await {
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
        let ok: ReloadFn = Arc::new(|| Box::pin(async { Ok(serde_json::json!({ "filters": { "modified": ["a"] } })) }));
        let state = AdminState { reload: Some(ok), ..AdminState::default() };
        let response = router(state).oneshot(Request::post("/-/reload").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&body).unwrap()["changes"]["filters"]["modified"][0],
            "a"
        );

        let refused: ReloadFn = Arc::new(|| Box::pin(async { Err("plugin x: config field `y`: bad".to_string()) }));
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
