//! An organization's retention, legal holds and erasures on the page (administrators): the
//! same service calls as the API (`auditlog_service::retention`, `::compliance`), each form
//! checked for its CSRF token.

use auditlog_service::access::Actor;
use auditlog_service::compliance::{self, ComplianceError};
use auditlog_service::grant::ReadableOrg;
use auditlog_service::retention::RetentionError;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use uuid::Uuid;

use super::session::Viewer;
use super::{admin_form, first, internal, readable_org, views};
use crate::auth::{Body, Client};
use crate::AppState;

/// The page, with `notice` on top.
async fn render(
    state: &AppState,
    viewer: &Viewer,
    org: &ReadableOrg,
    status: StatusCode,
    notice: Option<&str>,
) -> Response {
    let retention = match state.service.retention(org).await {
        Ok(retention) => retention,
        Err(e) => return internal(viewer, e),
    };
    match state.service.legal_holds(org).await {
        Ok(holds) => views::page(
            status,
            views::retention_page(viewer, org, &retention, &holds, notice),
        ),
        Err(e) => internal(viewer, e),
    }
}

fn compliance_refused(viewer: &Viewer, error: ComplianceError) -> Response {
    match error {
        e @ ComplianceError::Invalid { .. } => views::error_page(
            Some(viewer),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Not accepted",
            &e.to_string(),
        ),
        e @ ComplianceError::NoSuchHold(_) => views::error_page(
            Some(viewer),
            StatusCode::NOT_FOUND,
            "Not found",
            &e.to_string(),
        ),
        ComplianceError::Held(message) => views::error_page(
            Some(viewer),
            StatusCode::CONFLICT,
            "Protected by a legal hold",
            &message,
        ),
        ComplianceError::Store(e) => internal(viewer, e),
    }
}

pub async fn retention(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(org_name): Path<String>,
) -> Response {
    match readable_org(&state, &viewer, &org_name).await {
        Ok(org) => render(&state, &viewer, &org, StatusCode::OK, None).await,
        Err(refused) => refused,
    }
}

pub async fn set_retention(
    State(state): State<AppState>,
    viewer: Viewer,
    client: Client,
    Path(org_name): Path<String>,
    Body(body): Body,
) -> Response {
    let (fields, org) = match admin_form(&state, &viewer, &org_name, &body).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let days = match first(&fields, "days").map(str::trim).unwrap_or("") {
        "" => None,
        text => match text.parse::<u32>() {
            Ok(days) => Some(days),
            Err(_) => {
                return views::error_page(
                    Some(&viewer),
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Not accepted",
                    "Give a whole number of days, or leave it empty for the default.",
                )
            }
        },
    };
    let actor = client.actor(Actor::user(viewer.user()));
    match state.service.set_retention(&org, &actor, days).await {
        Ok(_) => {
            render(
                &state,
                &viewer,
                &org,
                StatusCode::OK,
                Some("Retention saved."),
            )
            .await
        }
        Err(RetentionError::Invalid(message)) => views::error_page(
            Some(&viewer),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Not accepted",
            &format!("Retention {message}."),
        ),
        Err(RetentionError::Store(e)) => internal(&viewer, e),
    }
}

pub async fn place_hold(
    State(state): State<AppState>,
    viewer: Viewer,
    client: Client,
    Path(org_name): Path<String>,
    Body(body): Body,
) -> Response {
    let (fields, org) = match admin_form(&state, &viewer, &org_name, &body).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let reason = first(&fields, "reason").unwrap_or("");
    let subject = first(&fields, "subject")
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let actor = client.actor(Actor::user(viewer.user()));
    match state
        .service
        .place_legal_hold(&org, &actor, subject, reason)
        .await
    {
        Ok(_) => {
            let notice = "Legal hold placed.";
            render(&state, &viewer, &org, StatusCode::CREATED, Some(notice)).await
        }
        Err(e) => compliance_refused(&viewer, e),
    }
}

pub async fn lift_hold(
    State(state): State<AppState>,
    viewer: Viewer,
    client: Client,
    Path((org_name, id)): Path<(String, String)>,
    Body(body): Body,
) -> Response {
    let (_, org) = match admin_form(&state, &viewer, &org_name, &body).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return views::error_page(
            Some(&viewer),
            StatusCode::NOT_FOUND,
            "Not found",
            "No such legal hold.",
        );
    };
    let actor = client.actor(Actor::user(viewer.user()));
    match state.service.lift_legal_hold(&org, &actor, id).await {
        Ok(_) => {
            render(
                &state,
                &viewer,
                &org,
                StatusCode::OK,
                Some("Legal hold lifted."),
            )
            .await
        }
        Err(e) => compliance_refused(&viewer, e),
    }
}

pub async fn erase(
    State(state): State<AppState>,
    viewer: Viewer,
    client: Client,
    Path(org_name): Path<String>,
    Body(body): Body,
) -> Response {
    let (fields, org) = match admin_form(&state, &viewer, &org_name, &body).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let given = |key| first(&fields, key).map(str::trim).filter(|s| !s.is_empty());
    let subject = match compliance::subject(given("email"), given("actor_id")) {
        Ok(subject) => subject,
        Err(e) => return compliance_refused(&viewer, e),
    };
    let actor = client.actor(Actor::user(viewer.user()));
    match state.service.erase_subject(&org, &actor, subject).await {
        Ok(erasure) => {
            let notice = format!(
                "Erased {} fields from {} events{}.",
                erasure.fields,
                erasure.events,
                if erasure.unerasable > 0 {
                    format!(
                        "; {} older events could not be erased without changing their proofs",
                        erasure.unerasable
                    )
                } else {
                    String::new()
                }
            );
            render(&state, &viewer, &org, StatusCode::OK, Some(&notice)).await
        }
        Err(e) => compliance_refused(&viewer, e),
    }
}
