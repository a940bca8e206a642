//! Operations endpoints: health, readiness, Prometheus metrics and the OpenAPI document.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;

use crate::AppState;

/// `GET /api/openapi.json`.
pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], crate::OPENAPI)
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Indexing lag beyond which `/readyz` says so (reads stay complete, only slower).
const LAG_REPORTED_SECONDS: f64 = 5.0;

/// `GET /readyz`: the store answers; the body also says when derived state (indexes,
/// rollups, search postings) has fallen behind the stored events.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if let Err(e) = state.service.ready().await {
        tracing::warn!(error = %e, "readiness probe failed");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "store unavailable\n".to_string(),
        );
    }
    match state.service.index_lag().await {
        Ok(lag) if crate::metrics::lag_seconds(lag) > LAG_REPORTED_SECONDS => (
            StatusCode::OK,
            format!(
                "ready; indexing {} events behind ({:.0} s): reads include them, more slowly\n",
                lag.events,
                crate::metrics::lag_seconds(lag)
            ),
        ),
        Ok(_) => (StatusCode::OK, "ready\n".to_string()),
        Err(e) => {
            tracing::warn!(error = %e, "readiness probe failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "store unavailable\n".to_string(),
            )
        }
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let disk = state.service.disk_bytes().await.unwrap_or(0);
    let lag = state.service.index_lag().await.unwrap_or_default();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(
            disk,
            lag,
            &state.service.every_org_rejections(),
            state.service.unrecorded_actions(),
        ),
    )
}
