//! `GET /api/audit-logs/rejections`: how many events of each action ingest requests had
//! refused by validation for the organization, with the last problem and when, since this
//! server process started (`auditlog_service::rejections`). Authorized like the list.

use auditlog_core::Timestamp;
use auditlog_service::rejections::{RejectedAction, RejectionCount};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};

use super::events::readable_org;
use crate::auth::Authed;
use crate::AppState;

/// The answer.
#[derive(Debug, Serialize)]
pub struct RejectionsResponse {
    items: Vec<RejectionItem>,
    total_count: u64,
}

/// One action's count.
#[derive(Debug, Serialize)]
struct RejectionItem {
    /// The action key the refused events sent (`""`: none); `null` for the count of every
    /// action beyond the ones counted by key.
    action_key: Option<String>,
    count: u64,
    last_error: LastError,
    last_rejected_at: Timestamp,
}

/// The first problem of the last refused event, as its 422 answer said it (without the
/// event's place in its batch).
#[derive(Debug, Serialize)]
struct LastError {
    code: String,
    loc: Vec<Value>,
    message: String,
}

impl From<RejectionCount> for RejectionItem {
    fn from(count: RejectionCount) -> RejectionItem {
        let mut loc = vec![json!("body")];
        if !count.last_problem.field.is_empty() {
            loc.push(json!(count.last_problem.field));
        }
        RejectionItem {
            action_key: match count.action {
                RejectedAction::Key(key) => Some(key),
                RejectedAction::Other => None,
            },
            count: count.count,
            last_error: LastError {
                code: count.last_problem.code,
                loc,
                message: count.last_problem.message,
            },
            last_rejected_at: count.last_rejected_at,
        }
    }
}

/// `GET /api/audit-logs/rejections`.
pub async fn list(
    State(state): State<AppState>,
    Authed(principal): Authed,
    headers: HeaderMap,
) -> Result<Json<RejectionsResponse>, crate::error::ApiError> {
    let org = readable_org(&state, &principal, &headers).await?;
    let items: Vec<RejectionItem> = state
        .service
        .rejections(&org)
        .into_iter()
        .map(RejectionItem::from)
        .collect();
    Ok(Json(RejectionsResponse {
        total_count: items.len() as u64,
        items,
    }))
}
