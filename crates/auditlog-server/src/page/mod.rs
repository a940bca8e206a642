//! The web page: sign in, Organizations → an organization → User Management → Audit Logs,
//! with filters, paging, details, export, a chart, service accounts and API tokens.
//! Server-rendered HTML that works with JavaScript off; every state-changing form carries a
//! CSRF token; every page goes through the same `Service` as the API, and every decision of
//! who may see what is the service's (`auditlog_service::grant`).
//!
//! - `sign_in`: the sign-in form, one-time links, sign-out.
//! - `audit_log`: the table with its filters and paging, and one event's details.
//! - `filter`: the filter form of the page's query string.
//! - `exports`: export jobs from the page.
//! - `accounts`: organizations, service accounts, API tokens, the password.
//! - `session`, `views`, `chart`: cookies and CSRF, the HTML, the chart.

use std::collections::HashMap;

use auditlog_service::grant::{MemberOf, ReadableOrg, ViewerRefused};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::AppState;

mod accounts;
mod audit_log;
mod chart;
mod compliance;
mod exports;
mod filter;
mod session;
mod sign_in;
mod views;

use session::Viewer;

/// The page's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/static/app.css", get(stylesheet))
        .route("/static/app.js", get(script))
        .route(
            "/sign-in",
            get(sign_in::sign_in_form).post(sign_in::sign_in),
        )
        .route("/sign-in/link", get(sign_in::sign_in_link))
        .route("/sign-out", post(sign_in::sign_out))
        .route("/orgs", get(accounts::orgs))
        .route("/orgs/{org}/audit-logs", get(audit_log::audit_log))
        .route("/orgs/{org}/audit-logs/{id}", get(audit_log::event_details))
        .route(
            "/orgs/{org}/audit-logs/{id}/proof",
            get(audit_log::event_proof),
        )
        .route("/orgs/{org}/exports", post(exports::create_export))
        .route("/orgs/{org}/exports/{job}", get(exports::export_status))
        .route(
            "/orgs/{org}/exports/{job}/download",
            get(exports::export_download),
        )
        .route(
            "/orgs/{org}/service-accounts",
            get(accounts::service_accounts).post(accounts::create_service_account),
        )
        .route(
            "/orgs/{org}/service-accounts/{id}/delete",
            post(accounts::delete_service_account),
        )
        .route(
            "/orgs/{org}/tokens",
            get(accounts::tokens).post(accounts::create_token),
        )
        .route(
            "/orgs/{org}/tokens/{id}/revoke",
            post(accounts::revoke_token),
        )
        .route(
            "/orgs/{org}/retention",
            get(compliance::retention).post(compliance::set_retention),
        )
        .route("/orgs/{org}/legal-holds", post(compliance::place_hold))
        .route(
            "/orgs/{org}/legal-holds/{id}/lift",
            post(compliance::lift_hold),
        )
        .route("/orgs/{org}/erasures", post(compliance::erase))
        .route(
            "/account/password",
            get(accounts::password_form).post(accounts::change_password),
        )
}

/// The fields of a URL-encoded form or query string; repeated keys keep every value.
type Fields = HashMap<String, Vec<String>>;

/// The form fields of a URL-encoded body.
fn form(body: &[u8]) -> Fields {
    let mut fields: HashMap<String, Vec<String>> = HashMap::new();
    for (key, value) in form_urlencoded::parse(body) {
        fields
            .entry(key.into_owned())
            .or_default()
            .push(value.into_owned());
    }
    fields
}

fn first<'a>(fields: &'a Fields, key: &str) -> Option<&'a str> {
    fields
        .get(key)
        .and_then(|values| values.first())
        .map(String::as_str)
}

async fn home() -> Redirect {
    Redirect::to("/orgs")
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/app.css"),
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/app.js"),
    )
        .into_response()
}

/// The page for a failure the viewer cannot fix; the details go to the log.
fn internal(viewer: &Viewer, error: impl std::fmt::Display) -> Response {
    tracing::error!(error = %error, "page failed");
    views::error_page(
        Some(viewer),
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The server log has the details.",
    )
}

/// The page that explains why the service refused the viewer an organization.
fn refused(viewer: &Viewer, refusal: ViewerRefused) -> Response {
    match refusal {
        ViewerRefused::NotMember => views::error_page(
            Some(viewer),
            StatusCode::NOT_FOUND,
            "Organization not found",
            "You are not a member of an organization by that name.",
        ),
        ViewerRefused::NotAdmin { display_name } => views::error_page(
            Some(viewer),
            StatusCode::FORBIDDEN,
            "Administrators only",
            &format!("Only administrators of {display_name} can view its audit log. Ask an administrator for access."),
        ),
        ViewerRefused::NotEnrolled { display_name } => views::error_page(
            Some(viewer),
            StatusCode::FORBIDDEN,
            "Audit logs are in early access",
            &format!("{display_name} is not enrolled in the audit logs early access program yet. Contact your account team to enable it."),
        ),
        ViewerRefused::Store(e) => internal(viewer, e),
    }
}

/// The organization named in the path, if the service lets the viewer read its audit log;
/// otherwise the page that says why not.
async fn readable_org(
    state: &AppState,
    viewer: &Viewer,
    name: &str,
) -> Result<ReadableOrg, Response> {
    state
        .service
        .authorize_viewer(&viewer.session, name)
        .await
        .map_err(|refusal| refused(viewer, refusal))
}

/// The viewer's membership of the organization named in the path (any role: enough for
/// their own tokens); otherwise the page that says why not.
async fn member_of(state: &AppState, viewer: &Viewer, name: &str) -> Result<MemberOf, Response> {
    state
        .service
        .authorize_member(&viewer.session, name)
        .await
        .map_err(|refusal| refused(viewer, refusal))
}

/// The fields of a form posted to an organization's page, once its CSRF token matched and
/// the service let the viewer read (and so administer) the organization; otherwise the page
/// that says why not.
async fn admin_form(
    state: &AppState,
    viewer: &Viewer,
    org_name: &str,
    body: &[u8],
) -> Result<(Fields, ReadableOrg), Response> {
    let fields = form(body);
    viewer.check_csrf(first(&fields, "csrf")).map_err(|r| *r)?;
    let org = readable_org(state, viewer, org_name).await?;
    Ok((fields, org))
}

/// Like [`admin_form`], for the pages any member may use (their own tokens).
async fn member_form(
    state: &AppState,
    viewer: &Viewer,
    org_name: &str,
    body: &[u8],
) -> Result<(Fields, MemberOf), Response> {
    let fields = form(body);
    viewer.check_csrf(first(&fields, "csrf")).map_err(|r| *r)?;
    let member = member_of(state, viewer, org_name).await?;
    Ok((fields, member))
}

/// Whether a label (a service account's or token's name) is usable: 1 to 128 characters,
/// none of them control characters.
pub fn valid_label(label: &str) -> bool {
    let n = label.chars().count();
    (1..=128).contains(&n) && !label.chars().any(char::is_control)
}
