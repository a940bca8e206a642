//! Exports from the page: the Export form starts a job with the table's filter, a status
//! page follows its progress, and the download streams the finished file.

use auditlog_service::access::Actor;
use auditlog_service::export::{ExportFormat, ExportRequest};
use auditlog_service::grant::ReadableOrg;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use uuid::Uuid;

use super::filter::PageFilter;
use super::session::{self, Viewer};
use super::{admin_form, first, internal, readable_org, views};
use crate::auth::{Body, Client};
use crate::AppState;

pub async fn create_export(
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
    // The export gets the table's own filter, values as they are (commas included).
    let request = ExportRequest {
        filter: PageFilter::parse(&fields).filter(),
        format: if first(&fields, "format") == Some("csv") {
            ExportFormat::Csv
        } else {
            ExportFormat::Jsonl
        },
        gzip: first(&fields, "gzip") == Some("true"),
    };
    let actor = client.actor(Actor::user(viewer.user()));
    match state.jobs.submit(&org, request, &actor).await {
        Ok(job) => session::secure(
            Redirect::to(&format!("/orgs/{}/exports/{}", org.name, job.id)).into_response(),
        ),
        Err(e) => internal(&viewer, e),
    }
}

async fn export_job(
    state: &AppState,
    viewer: &Viewer,
    org_name: &str,
    job: &str,
) -> Result<(ReadableOrg, auditlog_store::ExportJob), Response> {
    let org = readable_org(state, viewer, org_name).await?;
    let not_found = || {
        views::error_page(
            Some(viewer),
            StatusCode::NOT_FOUND,
            "Export not found",
            "No export of this organization has that id.",
        )
    };
    let job_id = Uuid::parse_str(job).map_err(|_| not_found())?;
    match state.jobs.status(&org, job_id).await {
        Ok(Some(job)) => Ok((org, job)),
        Ok(None) => Err(not_found()),
        Err(e) => Err(internal(viewer, e)),
    }
}

pub async fn export_status(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((org_name, job)): Path<(String, String)>,
) -> Response {
    match export_job(&state, &viewer, &org_name, &job).await {
        Ok((org, job)) => views::page(StatusCode::OK, views::export_status(&viewer, &org, &job)),
        Err(refused) => refused,
    }
}

pub async fn export_download(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((org_name, job)): Path<(String, String)>,
) -> Response {
    let (org, job) = match export_job(&state, &viewer, &org_name, &job).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let gone = || {
        views::error_page(
            Some(&viewer),
            StatusCode::NOT_FOUND,
            "Export unavailable",
            "This export is not ready, failed, or has expired.",
        )
    };
    let Some(file) = state.jobs.file(&job) else {
        return gone();
    };
    match crate::api::exports::file_response(&org.name, &file).await {
        Some(response) => response,
        None => gone(),
    }
}
