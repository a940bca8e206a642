//! `POST /api/viewer-links`: a platform, with its ingest key, mints a five-minute one-time
//! sign-in link for one user of one organization — the way platforms embed the viewer. The
//! service decides whether the key may (`Service::create_sign_in_link`).

use auditlog_core::Timestamp;
use auditlog_service::access::Principal;
use auditlog_store::Role;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::headers;
use crate::auth::{Authed, Body};
use crate::error::{ApiError, Detail};
use crate::AppState;

/// The request body.
#[derive(Debug, Deserialize)]
struct ViewerLinkRequest {
    /// Whom the link signs in.
    email: Option<String>,
    /// `admin` or `member`: adds the user with that role (creating them when new); without
    /// it, the user must already be a member.
    role: Option<String>,
    /// The name shown for a new user.
    display_name: Option<String>,
    /// The organization, when `X-Org-Name` does not name it.
    org: Option<String>,
}

/// The answer.
#[derive(Debug, Serialize)]
pub struct ViewerLink {
    /// Opens the page signed in, once.
    url: String,
    /// When the link stops working.
    expires_at: Timestamp,
}

/// The handler.
pub async fn create(
    State(state): State<AppState>,
    Authed(principal): Authed,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<ViewerLink>, ApiError> {
    // Only an ingest key's request is worth reading; the service decides again.
    if !matches!(principal, Principal::Ingest { .. }) {
        return Err(ApiError::Forbidden(
            "only ingest keys may mint sign-in links".into(),
        ));
    }
    let request: ViewerLinkRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::invalid(Detail::new(
            vec!["body".into()],
            format!("not a valid viewer-link request: {e}"),
            "json_invalid",
        ))
    })?;
    // The service holds the email rule, the same for every way a user comes to exist.
    let email = request.email.as_deref().ok_or_else(|| {
        ApiError::invalid(Detail::new(
            vec!["body".into(), "email".into()],
            "an email address is required",
            "missing",
        ))
    })?;
    let role = match request.role.as_deref() {
        None => None,
        Some(text) => Some(Role::parse(text).ok_or_else(|| {
            ApiError::invalid(Detail::new(
                vec!["body".into(), "role".into()],
                "must be admin or member",
                "enum",
            ))
        })?),
    };
    // A display name that could not be a label is left out rather than refused: the user
    // is then shown by email.
    let display_name = request
        .display_name
        .as_deref()
        .filter(|name| crate::page::valid_label(name));
    let org_name = headers::org_name(&headers)?
        .or(request.org)
        .ok_or_else(|| {
            ApiError::invalid(Detail::new(
                vec!["header".into(), "x-org-name".into()],
                "name the organization",
                "missing",
            ))
        })?;
    let (token, expires_at) = state
        .service
        .create_sign_in_link(&principal, &org_name, email, display_name, role)
        .await?;
    Ok(Json(ViewerLink {
        url: format!("{}/sign-in/link?token={token}", state.config.public_url),
        expires_at,
    }))
}
