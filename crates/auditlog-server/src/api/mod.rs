//! The routes of the JSON API. Every handler authenticates through `auth::Authed`, leaves
//! the decision of what the credential may do to the service (`Service::authorize_read`,
//! `Service::ingest_request`, `Service::create_sign_in_link`), and answers with wire types
//! built from `auditlog_core::wire`.

use axum::routing::{delete, get, post};
use axum::Router;

use crate::AppState;

mod compliance;
mod events;
pub mod exports;
mod iam;
mod log;
mod ops;
mod rejections;
mod viewer_links;

/// Every route of the service.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/audit-logs", get(events::list))
        .route("/api/audit-logs/events", post(events::ingest))
        .route("/api/audit-logs/facets", get(events::facets))
        .route("/api/audit-logs/actions", get(events::actions))
        .route("/api/audit-logs/rejections", get(rejections::list))
        .route(
            "/api/audit-logs/legal-holds",
            get(compliance::list_holds).post(compliance::place_hold),
        )
        .route(
            "/api/audit-logs/legal-holds/{id}",
            delete(compliance::lift_hold),
        )
        .route("/api/audit-logs/erasures", post(compliance::erase))
        .route(
            "/api/audit-logs/retention",
            get(compliance::get_retention).put(compliance::set_retention),
        )
        .route("/api/audit-logs/public-key", get(events::public_key))
        .route("/api/audit-logs/checkpoint", get(events::checkpoint))
        .route("/api/audit-logs/export", post(exports::create))
        .route("/api/audit-logs/export/{job_id}", get(exports::status))
        .route(
            "/api/audit-logs/export/{job_id}/download",
            get(exports::download),
        )
        .route("/api/audit-logs/{audit_log_id}", get(events::get_one))
        .route("/api/log/vkey", get(log::vkey))
        .route("/api/log/{org}/checkpoint", get(log::checkpoint))
        .route("/api/log/{org}/tile/{*path}", get(log::tile))
        .route("/api/log/{org}/proof/{audit_log_id}", get(log::proof))
        .route("/api/log/{org}/consistency", get(log::consistency))
        .route("/api/iam/token", post(iam::token))
        .route("/api/viewer-links", post(viewer_links::create))
        .route("/api/openapi.json", get(ops::openapi))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
}

/// Headers every audit-log request may carry.
pub mod headers {
    use axum::http::HeaderMap;

    use crate::error::{ApiError, Detail};

    /// The organization a request names in `X-Org-Name` (name or id).
    pub fn org_name(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
        match headers.get("x-org-name") {
            None => Ok(None),
            Some(value) => {
                let text = value.to_str().map_err(|_| {
                    ApiError::invalid(Detail::new(
                        vec!["header".into(), "x-org-name".into()],
                        "must be text",
                        "value_error",
                    ))
                })?;
                let text = text.trim();
                if text.is_empty() || text.len() > 128 {
                    return Err(ApiError::invalid(Detail::new(
                        vec!["header".into(), "x-org-name".into()],
                        "must be an organization name or id of 1 to 128 characters",
                        "value_error",
                    )));
                }
                Ok(Some(text.to_string()))
            }
        }
    }

    /// Checks `X-API-Version`: absent or `v1`.
    pub fn api_version(headers: &HeaderMap) -> Result<(), ApiError> {
        match headers
            .get("x-api-version")
            .map(|v| v.to_str().unwrap_or(""))
        {
            None | Some("v1") => Ok(()),
            Some(other) => Err(ApiError::BadRequest(format!(
                "unsupported X-API-Version {:?}: this server speaks v1",
                other.chars().take(32).collect::<String>()
            ))),
        }
    }
}
