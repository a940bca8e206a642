//! Export endpoints of the reference API: create a job, poll it, download its file.

use std::sync::atomic::Ordering;

use auditlog_service::export::{ExportFormat, ExportRequest};
use auditlog_service::jobs::{ExportFile, SubmitError};
use auditlog_store::{ExportJob, JobStatus};
use axum::body::Body as ResponseBody;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use uuid::Uuid;

use super::events::readable_org;
use crate::auth::{Authed, Body, Client};
use crate::error::{ApiError, Detail};
use crate::params::{build_filter, parse_date};
use crate::AppState;

fn body_detail(field: &str, msg: impl Into<String>, kind: &str) -> Detail {
    Detail::new(vec!["body".into(), field.into()], msg, kind)
}

/// Reads the export request body: the reference's `ExportRequest` plus `format` and `gzip`.
fn parse_request(body: &[u8]) -> Result<ExportRequest, ApiError> {
    // The reference requires a body (`{}` exports everything); no body is a 422, as there.
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid(Detail::new(
            vec!["body".into()],
            "a JSON object is required; send {} to export everything",
            "missing",
        )));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(Detail::new(
            vec!["body".into()],
            format!("not valid JSON: {e}"),
            "json_invalid",
        ))
    })?;
    let Value::Object(fields) = value else {
        return Err(ApiError::invalid(Detail::new(
            vec!["body".into()],
            "must be a JSON object",
            "type_error",
        )));
    };
    let mut details = Vec::new();
    let known = [
        "from_date",
        "to_date",
        "q",
        "search_operator",
        "format",
        "gzip",
    ];
    for key in fields.keys() {
        if !known.contains(&key.as_str()) {
            details.push(body_detail(
                key,
                format!("unknown field; known fields are {}", known.join(", ")),
                "extra_forbidden",
            ));
        }
    }
    let mut date = |name: &str| match fields.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => match parse_date(text) {
            Ok(t) => Some(t),
            Err(e) => {
                details.push(body_detail(name, e, "datetime_parsing"));
                None
            }
        },
        Some(_) => {
            details.push(body_detail(
                name,
                "must be a date-time string",
                "type_error",
            ));
            None
        }
    };
    let from_date = date("from_date");
    let to_date = date("to_date");
    let q: Vec<String> = match fields.get("q") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(_) => {
            details.push(body_detail(
                "q",
                "must be an array of strings",
                "type_error",
            ));
            Vec::new()
        }
    };
    let search_operator = match fields.get("search_operator") {
        None | Some(Value::Null) => "or".to_string(),
        Some(Value::String(text)) => text.clone(),
        Some(_) => {
            details.push(body_detail(
                "search_operator",
                "must be a string",
                "type_error",
            ));
            "or".to_string()
        }
    };
    let format = match fields.get("format").and_then(Value::as_str) {
        None | Some("jsonl") | Some("json_lines") => ExportFormat::Jsonl,
        Some("csv") => ExportFormat::Csv,
        Some(other) => {
            details.push(body_detail(
                "format",
                format!(
                    "{:?} is not one of jsonl, csv",
                    other.chars().take(32).collect::<String>()
                ),
                "enum",
            ));
            ExportFormat::Jsonl
        }
    };
    if fields
        .get("format")
        .is_some_and(|v| !v.is_string() && !v.is_null())
    {
        details.push(body_detail("format", "must be a string", "type_error"));
    }
    let gzip = match fields.get("gzip") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(_) => {
            details.push(body_detail("gzip", "must be a boolean", "type_error"));
            false
        }
    };
    // The filter is built (and so checked) now: a bad `q` is a 422 here rather than a
    // failed job later.
    let filter = build_filter(
        &q,
        Some(&search_operator),
        from_date,
        to_date,
        "body",
        &mut details,
    );
    if !details.is_empty() {
        return Err(ApiError::Validation(details));
    }
    Ok(ExportRequest {
        filter,
        format,
        gzip,
    })
}

/// `POST /api/audit-logs/export`.
pub async fn create(
    State(state): State<AppState>,
    Authed(principal): Authed,
    client: Client,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<Value>, ApiError> {
    let org = readable_org(&state, &principal, &headers).await?;
    let request = parse_request(&body)?;
    let actor = client.actor(principal.actor());
    let job = state
        .jobs
        .submit(&org, request, &actor)
        .await
        .map_err(|e| match e {
            SubmitError::Invalid(message) => {
                ApiError::invalid(Detail::new(vec!["body".into()], message, "value_error"))
            }
            SubmitError::Record(e) => e.into(),
            SubmitError::Store(e) => e.into(),
        })?;
    state
        .metrics
        .exports_requested
        .fetch_add(1, Ordering::Relaxed);
    Ok(Json(json!({ "id": job.id })))
}

fn job_path_id(job_id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(job_id).map_err(|_| {
        ApiError::invalid(Detail::new(
            vec!["path".into(), "job_id".into()],
            "must be a UUID",
            "uuid_parsing",
        ))
    })
}

fn job_json(state: &AppState, job: &ExportJob) -> Value {
    let download_url = (job.status == JobStatus::Completed).then(|| {
        format!(
            "{}/api/audit-logs/export/{}/download",
            state.config.public_url, job.id
        )
    });
    let request: Value = serde_json::from_str(&job.request).unwrap_or(Value::Null);
    json!({
        "id": job.id,
        "org_id": job.org_id,
        "status": job.status.as_str(),
        "created_at": job.created_at,
        "completed_at": job.completed_at,
        "download_url": download_url,
        "error_message": job.error_message,
        "progress": job.progress,
        "total_records": job.total_records,
        "expires_at": job.expires_at,
        "format": request.get("format"),
        "gzip": request.get("gzip"),
    })
}

/// `GET /api/audit-logs/export/{job_id}`.
pub async fn status(
    State(state): State<AppState>,
    Authed(principal): Authed,
    headers: HeaderMap,
    Path(job_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let org = readable_org(&state, &principal, &headers).await?;
    let job_id = job_path_id(&job_id)?;
    let job = state
        .jobs
        .status(&org, job_id)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    match job {
        Some(job) => Ok(Json(job_json(&state, &job))),
        None => Err(ApiError::NotFound(format!(
            "no export job {job_id} in organization {:?}",
            org.name
        ))),
    }
}

/// `GET /api/audit-logs/export/{job_id}/download`: streams the file.
pub async fn download(
    State(state): State<AppState>,
    Authed(principal): Authed,
    headers: HeaderMap,
    Path(job_id): Path<String>,
) -> Result<Response, ApiError> {
    let org = readable_org(&state, &principal, &headers).await?;
    let job_id = job_path_id(&job_id)?;
    let job = state
        .jobs
        .status(&org, job_id)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no export job {job_id} in organization {:?}",
                org.name
            ))
        })?;
    let path = match job.status {
        JobStatus::Completed => state.jobs.file(&job),
        JobStatus::Expired => {
            return Err(ApiError::NotFound(
                "the export has expired and its file was deleted; request a new one".into(),
            ))
        }
        JobStatus::Failed => {
            return Err(ApiError::Conflict(format!(
                "the export failed: {}",
                job.error_message.unwrap_or_default()
            )))
        }
        JobStatus::Pending | JobStatus::Running => {
            return Err(ApiError::Conflict(format!(
                "the export is not ready yet ({}%); poll its status",
                job.progress
            )));
        }
    };
    let path = path
        .ok_or_else(|| ApiError::NotFound("the export file is gone; request a new one".into()))?;
    file_response(&org.name, &path)
        .await
        .ok_or_else(|| ApiError::NotFound("the export file is gone; request a new one".into()))
}

/// Streams an export file as an attachment named after the organization, with the media
/// type of its request; `None` when the file cannot be opened (expired and deleted). The API
/// and the page both download this way.
pub async fn file_response(org_name: &str, export: &ExportFile) -> Option<Response> {
    let file = tokio::fs::File::open(&export.path).await.ok()?;
    let name = export
        .path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("export")
        .to_string();
    Some(
        (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, export.content_type.to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"audit-log-{org_name}-{name}\""),
                ),
            ],
            ResponseBody::from_stream(tokio_util::io::ReaderStream::new(file)),
        )
            .into_response(),
    )
}
