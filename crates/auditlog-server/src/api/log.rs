//! Each organization's transparency log under a C2SP tlog-tiles prefix,
//! `/api/log/{org}/`: the signed checkpoint, the tiles, an event's inclusion proof (JSON or
//! `c2sp.org/tlog-proof@v1` text) and consistency proofs; and the verifier key, which is
//! public. The organization in the path (a name or id) is authorized exactly as `X-Org-Name`
//! is on the other reads.

use auditlog_service::access::Principal;
use auditlog_service::grant::ReadableOrg;
use auditlog_service::log::{base64_hash, LogError};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use uuid::Uuid;

use super::headers;
use crate::auth::Authed;
use crate::error::{ApiError, Detail};
use crate::AppState;

impl From<LogError> for ApiError {
    fn from(error: LogError) -> ApiError {
        match error {
            LogError::NotFound(message) => ApiError::NotFound(message),
            LogError::Invalid(message) => {
                ApiError::invalid(Detail::new(vec!["path".into()], message, "value_error"))
            }
            e @ LogError::Inconsistent(_) => ApiError::Internal(e.to_string()),
            LogError::Store(e) => e.into(),
        }
    }
}

/// Authorizes a read of the organization named in the path.
async fn log_org(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    org: &str,
) -> Result<ReadableOrg, ApiError> {
    headers::api_version(headers)?;
    Ok(state.service.authorize_read(principal, Some(org)).await?)
}

/// A text answer that no cache keeps (it changes as the log grows).
fn text(body: String) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

/// `GET /api/log/vkey`: the verifier key of every organization's checkpoints, as a C2SP
/// signed-note `vkey` (public, like the public key).
pub async fn vkey(State(state): State<AppState>) -> Response {
    text(format!("{}\n", state.service.note_verifier().to_vkey()))
}

/// `GET /api/log/{org}/checkpoint`: the organization's signed checkpoint (a C2SP signed
/// note), signed now if the log grew since the last one.
pub async fn checkpoint(
    State(state): State<AppState>,
    Authed(principal): Authed,
    headers: HeaderMap,
    Path(org): Path<String>,
) -> Result<Response, ApiError> {
    let org = log_org(&state, &principal, &headers, &org).await?;
    Ok(text(state.service.tree_checkpoint(&org).await?.note))
}

/// `GET /api/log/{org}/tile/{path}`: one tile (`tile/<L>/<N>[.p/<W>]`), its hashes
/// concatenated. A full tile never changes, so caches may keep it.
pub async fn tile(
    State(state): State<AppState>,
    Authed(principal): Authed,
    headers: HeaderMap,
    Path((org, path)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let org = log_org(&state, &principal, &headers, &org).await?;
    let path = format!("tile/{path}");
    let bytes = state.service.tile(&org, &path).await?;
    let cache = if path.contains(".p/") {
        "private, no-store"
    } else {
        "private, max-age=31536000, immutable"
    };
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        bytes,
    )
        .into_response())
}

/// `GET /api/log/{org}/proof/{audit_log_id}`: the event's inclusion proof against the
/// organization's current signed checkpoint: JSON, or `c2sp.org/tlog-proof@v1` text when the
/// request accepts `text/plain` (and not JSON) or asks `?format=tlog-proof`.
pub async fn proof(
    State(state): State<AppState>,
    Authed(principal): Authed,
    headers: HeaderMap,
    Path((org, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let org = log_org(&state, &principal, &headers, &org).await?;
    let id = Uuid::parse_str(&id).map_err(|_| {
        ApiError::invalid(Detail::new(
            vec!["path".into(), "audit_log_id".into()],
            "must be a UUID",
            "uuid_parsing",
        ))
    })?;
    let params = query_params(raw.as_deref(), &["format"])?;
    let as_text = match params.iter().find(|(name, _)| name == "format") {
        Some((_, format)) if format == "tlog-proof" => true,
        Some((_, format)) if format == "json" => false,
        Some((_, format)) => {
            return Err(ApiError::invalid(Detail::new(
                vec!["query".into(), "format".into()],
                format!("{format:?} is not a format: use json or tlog-proof"),
                "value_error",
            )))
        }
        None => headers
            .get(header::ACCEPT)
            .and_then(|accept| accept.to_str().ok())
            .is_some_and(|accept| accept.contains("text/plain") && !accept.contains("json")),
    };
    let proof = state.service.inclusion_proof(&org, id).await?;
    if as_text {
        return Ok(text(proof.to_tlog_proof()));
    }
    Ok(Json(json!({
        "audit_log_id": id,
        "leaf_index": proof.index,
        "leaf_hash": base64_hash(&proof.leaf),
        "tree_size": proof.checkpoint.size,
        "root_hash": base64_hash(&proof.checkpoint.root),
        "hashes": proof.hashes.iter().map(base64_hash).collect::<Vec<_>>(),
        "checkpoint": proof.checkpoint.note,
    }))
    .into_response())
}

/// `GET /api/log/{org}/consistency?old=N[&new=M]`: the consistency proof from the tree of `N`
/// events to that of `M` (the current signed checkpoint's size when absent), with that
/// checkpoint.
pub async fn consistency(
    State(state): State<AppState>,
    Authed(principal): Authed,
    headers: HeaderMap,
    Path(org): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let org = log_org(&state, &principal, &headers, &org).await?;
    let params = query_params(raw.as_deref(), &["old", "new"])?;
    let size = |name: &str| -> Result<Option<u64>, ApiError> {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| {
                value.parse::<u64>().map_err(|_| {
                    ApiError::invalid(Detail::new(
                        vec!["query".into(), name.into()],
                        "must be a whole number of events, 0 or more",
                        "int_parsing",
                    ))
                })
            })
            .transpose()
    };
    let old = size("old")?.ok_or_else(|| {
        ApiError::invalid(Detail::new(
            vec!["query".into(), "old".into()],
            "Field required",
            "missing",
        ))
    })?;
    let new = size("new")?;
    let (hashes, checkpoint) = state.service.consistency_proof(&org, old, new).await?;
    Ok(Json(json!({
        "old_size": old,
        "new_size": new.unwrap_or(checkpoint.size),
        "hashes": hashes.iter().map(base64_hash).collect::<Vec<_>>(),
        "checkpoint": checkpoint.note,
    })))
}

/// The query's parameters; one not in `known`, or one given twice, is refused by name.
fn query_params(raw: Option<&str>, known: &[&str]) -> Result<Vec<(String, String)>, ApiError> {
    let mut params: Vec<(String, String)> = Vec::new();
    for (name, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        let refuse = |msg: &str| {
            ApiError::invalid(Detail::new(
                vec!["query".into(), name.to_string().into()],
                msg,
                "value_error",
            ))
        };
        if !known.contains(&name.as_ref()) {
            return Err(refuse("is not a parameter of this endpoint"));
        }
        if params.iter().any(|(n, _)| *n == name) {
            return Err(refuse("is given more than once"));
        }
        params.push((name.into_owned(), value.into_owned()));
    }
    Ok(params)
}
