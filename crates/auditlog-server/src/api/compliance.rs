//! Retention, legal holds and erasure (`auditlog_service::retention`, `::compliance`). Reading
//! the retention is for whoever may read the log; every change is for an organization's
//! administrators (users; service accounts, which read and export, may not):
//!
//! - `GET /api/audit-logs/retention`: the period in force, the deployment's default and
//!   maximum, and from when the history is complete.
//! - `PUT /api/audit-logs/retention` `{"retention_period_in_days": 365}` (or `null` for the
//!   deployment's default).
//! - `GET /api/audit-logs/legal-holds`: the holds, live and lifted, newest first.
//! - `POST /api/audit-logs/legal-holds` `{"reason": "...", "subject": "<actor id or email>"}`
//!   places one (without `subject`, on the whole organization): 201.
//! - `DELETE /api/audit-logs/legal-holds/{id}` lifts a live one.
//! - `POST /api/audit-logs/erasures` `{"email": "...", "actor_id": "..."}` erases a person's
//!   personal fields from every event that names them: 409 while a hold protects them.

use auditlog_service::access::Principal;
use auditlog_service::compliance::{self, ComplianceError};
use auditlog_service::grant::ReadableOrg;
use auditlog_service::retention::{RetentionError, RetentionView};
use auditlog_store::LegalHold;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::events::readable_org;
use crate::auth::{Authed, Body, Client};
use crate::error::{ApiError, Detail};
use crate::AppState;

impl From<ComplianceError> for ApiError {
    fn from(error: ComplianceError) -> ApiError {
        match error {
            ComplianceError::Invalid { field, message } => ApiError::invalid(Detail::new(
                vec!["body".into(), field.into()],
                message,
                "value_error",
            )),
            e @ ComplianceError::NoSuchHold(_) => ApiError::NotFound(e.to_string()),
            ComplianceError::Held(message) => ApiError::Conflict(message),
            ComplianceError::Store(e) => e.into(),
        }
    }
}

/// The organization, for one of its administrators: holds and erasures change what the
/// log keeps, which an API client that only reads and exports must not do.
async fn administered_org(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
) -> Result<ReadableOrg, ApiError> {
    let org = readable_org(state, principal, headers).await?;
    if !matches!(principal, Principal::User { .. }) {
        return Err(ApiError::Forbidden(
            "only an administrator of the organization may change retention, place holds or erase"
                .into(),
        ));
    }
    Ok(org)
}

/// A JSON body of type `T`, or a 422 that says what is wrong with it.
fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(Detail::new(
            vec!["body".into()],
            format!("not a valid request: {e}"),
            "json_invalid",
        ))
    })
}

fn hold_json(hold: &LegalHold) -> Value {
    json!({
        "id": hold.id,
        "subject": hold.subject,
        "scope": if hold.subject.is_some() { "person" } else { "organization" },
        "reason": hold.reason,
        "placed_by": hold.placed_by,
        "placed_at": hold.placed_at,
        "lifted_at": hold.lifted_at,
        "lifted_by": hold.lifted_by,
        "live": hold.lifted_at.is_none(),
    })
}

/// `GET /api/audit-logs/legal-holds`.
pub async fn list_holds(
    State(state): State<AppState>,
    Authed(principal): Authed,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let org = administered_org(&state, &principal, &headers).await?;
    let holds = state.service.legal_holds(&org).await?;
    let items: Vec<Value> = holds.iter().map(hold_json).collect();
    Ok(Json(json!({"total_count": items.len(), "items": items})))
}

/// The body of `POST /api/audit-logs/legal-holds`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaceHold {
    reason: String,
    subject: Option<String>,
}

/// `POST /api/audit-logs/legal-holds`.
pub async fn place_hold(
    State(state): State<AppState>,
    Authed(principal): Authed,
    client: Client,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let org = administered_org(&state, &principal, &headers).await?;
    let request: PlaceHold = parse(&body)?;
    let actor = client.actor(principal.actor());
    let hold = state
        .service
        .place_legal_hold(&org, &actor, request.subject.as_deref(), &request.reason)
        .await?;
    Ok((StatusCode::CREATED, Json(hold_json(&hold))))
}

/// `DELETE /api/audit-logs/legal-holds/{id}`.
pub async fn lift_hold(
    State(state): State<AppState>,
    Authed(principal): Authed,
    client: Client,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let org = administered_org(&state, &principal, &headers).await?;
    let id = Uuid::parse_str(&id).map_err(|_| {
        ApiError::invalid(Detail::new(
            vec!["path".into(), "id".into()],
            "not a legal hold id",
            "uuid_parsing",
        ))
    })?;
    let actor = client.actor(principal.actor());
    let hold = state.service.lift_legal_hold(&org, &actor, id).await?;
    Ok(Json(hold_json(&hold)))
}

/// The body of `POST /api/audit-logs/erasures`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EraseRequest {
    email: Option<String>,
    actor_id: Option<String>,
}

/// `POST /api/audit-logs/erasures`.
pub async fn erase(
    State(state): State<AppState>,
    Authed(principal): Authed,
    client: Client,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<Value>, ApiError> {
    let org = administered_org(&state, &principal, &headers).await?;
    let request: EraseRequest = parse(&body)?;
    let subject = compliance::subject(request.email.as_deref(), request.actor_id.as_deref())?;
    let actor = client.actor(principal.actor());
    let erasure = state.service.erase_subject(&org, &actor, subject).await?;
    Ok(Json(json!({
        "events_erased": erasure.events,
        "fields_erased": erasure.fields,
        "events_unerasable": erasure.unerasable,
    })))
}

impl From<RetentionError> for ApiError {
    fn from(error: RetentionError) -> ApiError {
        match error {
            RetentionError::Invalid(message) => ApiError::invalid(Detail::new(
                vec!["body".into(), "retention_period_in_days".into()],
                message,
                "value_error",
            )),
            RetentionError::Store(e) => e.into(),
        }
    }
}

fn retention_json(view: &RetentionView) -> Value {
    json!({
        "retention_period_in_days": view.days,
        "organization_retention_days": view.organization_days,
        "default_retention_days": view.default_days,
        "maximum_retention_days": view.max_days,
        "history_starts_at": view.history_starts_at(),
        "purged_through_seq": view.purged.map(|p| p.through_seq),
    })
}

/// `GET /api/audit-logs/retention`.
pub async fn get_retention(
    State(state): State<AppState>,
    Authed(principal): Authed,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let org = readable_org(&state, &principal, &headers).await?;
    let view = state.service.retention(&org).await?;
    Ok(Json(retention_json(&view)))
}

/// `PUT /api/audit-logs/retention`.
pub async fn set_retention(
    State(state): State<AppState>,
    Authed(principal): Authed,
    client: Client,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<Value>, ApiError> {
    let org = administered_org(&state, &principal, &headers).await?;
    let request: serde_json::Map<String, Value> = parse(&body)?;
    let field = |message: &str, kind: &str| {
        ApiError::invalid(Detail::new(
            vec!["body".into(), "retention_period_in_days".into()],
            message,
            kind,
        ))
    };
    if let Some(other) = request.keys().find(|k| *k != "retention_period_in_days") {
        return Err(ApiError::invalid(Detail::new(
            vec!["body".into(), other.clone().into()],
            "unknown field: only retention_period_in_days may be set",
            "extra_forbidden",
        )));
    }
    let days = match request.get("retention_period_in_days") {
        None => {
            return Err(field(
                "required: a number of days, or null for the default",
                "missing",
            ))
        }
        Some(Value::Null) => None,
        Some(value) => Some(
            value
                .as_u64()
                .and_then(|d| u32::try_from(d).ok())
                .ok_or_else(|| field("must be a whole number of days, or null", "int_type"))?,
        ),
    };
    let actor = client.actor(principal.actor());
    let view = state.service.set_retention(&org, &actor, days).await?;
    Ok(Json(retention_json(&view)))
}
