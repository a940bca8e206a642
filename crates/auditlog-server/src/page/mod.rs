//! The web page: sign in, Organizations → an organization → User Management → Audit Logs,
//! with filters, paging, details, export, a chart, service accounts and API tokens.
//! Server-rendered HTML that works with JavaScript off; every state-changing form carries a
//! CSRF token; every page goes through the same `Service` as the API.

use std::collections::HashMap;

use auditlog_core::query::{Column, Combine, Condition, Cursor, Filter, Order, Position, Start};
use auditlog_core::timestamp::MS_PER_DAY;
use auditlog_core::wire::EventRecord;
use auditlog_core::Timestamp;
use auditlog_service::access::{AccessError, Actor};
use auditlog_service::export::{ExportFormat, ExportRequest};
use auditlog_store::{CredentialKind, Org, Role};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;
use uuid::Uuid;

use crate::auth::{Body, Client};
use crate::AppState;

mod chart;
mod session;
mod views;

use session::{cookie, set_cookie, Viewer, LOGIN_CSRF_COOKIE, SESSION_COOKIE};

/// The page's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/static/app.css", get(stylesheet))
        .route("/static/app.js", get(script))
        .route("/sign-in", get(sign_in_form).post(sign_in))
        .route("/sign-in/link", get(sign_in_link))
        .route("/sign-out", post(sign_out))
        .route("/orgs", get(orgs))
        .route("/orgs/{org}/audit-logs", get(audit_log))
        .route("/orgs/{org}/audit-logs/{id}", get(event_details))
        .route("/orgs/{org}/exports", post(create_export))
        .route("/orgs/{org}/exports/{job}", get(export_status))
        .route("/orgs/{org}/exports/{job}/download", get(export_download))
        .route(
            "/orgs/{org}/service-accounts",
            get(service_accounts).post(create_service_account),
        )
        .route(
            "/orgs/{org}/service-accounts/{id}/delete",
            post(delete_service_account),
        )
        .route("/orgs/{org}/tokens", get(tokens).post(create_token))
        .route("/orgs/{org}/tokens/{id}/revoke", post(revoke_token))
        .route(
            "/account/password",
            get(password_form).post(change_password),
        )
}

/// The form fields of a URL-encoded body; repeated keys keep every value.
fn form(body: &[u8]) -> HashMap<String, Vec<String>> {
    let mut fields: HashMap<String, Vec<String>> = HashMap::new();
    for (key, value) in form_urlencoded::parse(body) {
        fields
            .entry(key.into_owned())
            .or_default()
            .push(value.into_owned());
    }
    fields
}

fn first<'a>(fields: &'a HashMap<String, Vec<String>>, key: &str) -> Option<&'a str> {
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

/// Only local paths are followed after sign-in, so a crafted link cannot send a user away.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path.to_string()
        }
        _ => "/orgs".to_string(),
    }
}

async fn sign_in_form(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let query = form(raw.unwrap_or_default().as_bytes());
    let next = safe_next(first(&query, "next"));
    let csrf = auditlog_service::access::new_secret("csrf");
    let mut response = views::page(StatusCode::OK, views::sign_in(&csrf, &next, None, ""));
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, LOGIN_CSRF_COOKIE, &csrf, 3600),
    );
    response
}

async fn sign_in(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    Body(body): Body,
) -> Response {
    let fields = form(&body);
    let next = safe_next(first(&fields, "next"));
    let email = first(&fields, "email").unwrap_or("").trim().to_string();
    let retry = |status: StatusCode, message: &str| {
        let csrf = auditlog_service::access::new_secret("csrf");
        let mut response = views::page(status, views::sign_in(&csrf, &next, Some(message), &email));
        response.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(&state, LOGIN_CSRF_COOKIE, &csrf, 3600),
        );
        response
    };
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or("");
    if expected.is_empty() || !session::same_token(expected, first(&fields, "csrf").unwrap_or("")) {
        return retry(
            StatusCode::FORBIDDEN,
            "The sign-in form expired. Please try again.",
        );
    }
    // Guessing is limited per address: a few attempts a minute.
    let address = client.ip.map(|ip| ip.to_string()).unwrap_or_default();
    let key = Uuid::from_slice(
        &auditlog_service::access::secret_hash(&format!("sign-in:{address}"))[..16],
    )
    .unwrap_or_default();
    if state.sign_in_limiter.check(key).is_err() {
        return retry(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts. Wait a minute and try again.",
        );
    }
    let actor = client.actor(Actor::operator());
    match state
        .service
        .sign_in(&email, first(&fields, "password").unwrap_or(""), &actor)
        .await
    {
        Ok((_, token)) => {
            let mut response = Redirect::to(&next).into_response();
            let headers = response.headers_mut();
            headers.append(
                header::SET_COOKIE,
                set_cookie(
                    &state,
                    SESSION_COOKIE,
                    &token,
                    auditlog_service::access::SESSION_SECONDS,
                ),
            );
            headers.append(
                header::SET_COOKIE,
                set_cookie(&state, LOGIN_CSRF_COOKIE, "", 0),
            );
            session::secure(response)
        }
        Err(AccessError::Unauthenticated(_)) => {
            retry(StatusCode::UNAUTHORIZED, "Wrong email or password.")
        }
        Err(e) => {
            tracing::error!(error = %e, "sign-in failed");
            retry(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Signing in failed; please try again.",
            )
        }
    }
}

async fn sign_in_link(
    State(state): State<AppState>,
    client: Client,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = form(raw.unwrap_or_default().as_bytes());
    let token = first(&query, "token").unwrap_or("");
    match state
        .service
        .redeem_sign_in_link(token, &client.actor(Actor::operator()))
        .await
    {
        Ok((_, org, session_token)) => {
            let target = format!("/orgs/{}/audit-logs", org.name);
            let mut response = views::page(StatusCode::OK, views::continue_to(&target));
            response.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(
                    &state,
                    SESSION_COOKIE,
                    &session_token,
                    auditlog_service::access::SESSION_SECONDS,
                ),
            );
            response
        }
        Err(_) => views::error_page(
            None,
            StatusCode::UNAUTHORIZED,
            "Link expired",
            "This sign-in link is invalid, already used or expired. Ask for a new one.",
        ),
    }
}

async fn sign_out(State(state): State<AppState>, viewer: Viewer, Body(body): Body) -> Response {
    if let Err(refused) = viewer.check_csrf(first(&form(&body), "csrf")) {
        return *refused;
    }
    if let Err(e) = state.service.sign_out(&viewer.token).await {
        tracing::warn!(error = %e, "sign-out failed");
    }
    let mut response = Redirect::to("/sign-in").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", 0),
    );
    session::secure(response)
}

async fn orgs(State(state): State<AppState>, viewer: Viewer) -> Response {
    match state.service.store().memberships(viewer.user.id).await {
        Ok(memberships) => views::page(StatusCode::OK, views::orgs(&viewer, &memberships)),
        Err(e) => internal(&viewer, e),
    }
}

fn internal(viewer: &Viewer, error: impl std::fmt::Display) -> Response {
    tracing::error!(error = %error, "page failed");
    views::error_page(
        Some(viewer),
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The server log has the details.",
    )
}

/// The organization named in the path, if the viewer may see its audit log.
async fn admin_org(state: &AppState, viewer: &Viewer, name: &str) -> Result<Org, Response> {
    let not_member = || {
        views::error_page(
            Some(viewer),
            StatusCode::NOT_FOUND,
            "Organization not found",
            "You are not a member of an organization by that name.",
        )
    };
    let org = match state.service.store().find_org(name).await {
        Ok(Some(org)) => org,
        Ok(None) => return Err(not_member()),
        Err(e) => return Err(internal(viewer, e)),
    };
    match state.service.store().role_of(org.id, viewer.user.id).await {
        Ok(Some(Role::Admin)) => {}
        Ok(Some(Role::Member)) => {
            return Err(views::error_page(
                Some(viewer),
                StatusCode::FORBIDDEN,
                "Administrators only",
                &format!("Only administrators of {} can view its audit log. Ask an administrator for access.", org.display_name),
            ))
        }
        Ok(None) => return Err(not_member()),
        Err(e) => return Err(internal(viewer, e)),
    }
    if !org.audit_logs_enabled {
        return Err(views::error_page(
            Some(viewer),
            StatusCode::FORBIDDEN,
            "Audit logs are in early access",
            &format!("{} is not enrolled in the audit logs early access program yet. Contact your account team to enable it.", org.display_name),
        ));
    }
    Ok(org)
}

/// The filter the page's query string describes.
struct PageFilter {
    actions: Vec<String>,
    users: Vec<String>,
    from: String,
    to: String,
    text: String,
    per_page: u32,
}

impl PageFilter {
    fn parse(query: &HashMap<String, Vec<String>>) -> PageFilter {
        let clean = |values: Option<&Vec<String>>| -> Vec<String> {
            let mut out: Vec<String> = values
                .into_iter()
                .flatten()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty() && v.len() <= 320)
                .collect();
            out.dedup();
            out.truncate(100);
            out
        };
        let per_page = first(query, "per_page")
            .and_then(|v| v.parse().ok())
            .filter(|n| [10, 25, 50, 100].contains(n))
            .unwrap_or(50);
        PageFilter {
            actions: clean(query.get("action")),
            users: clean(query.get("user")),
            from: first(query, "from")
                .unwrap_or("")
                .trim()
                .chars()
                .take(40)
                .collect(),
            to: first(query, "to")
                .unwrap_or("")
                .trim()
                .chars()
                .take(40)
                .collect(),
            text: first(query, "q")
                .unwrap_or("")
                .trim()
                .chars()
                .take(200)
                .collect(),
            per_page,
        }
    }

    /// A date from the form: `YYYY-MM-DD` or RFC 3339; the end of a `to` date is its last
    /// millisecond, so the range includes that day.
    fn bound(text: &str, end: bool) -> Option<Timestamp> {
        let at = Timestamp::parse_lenient(text).ok()?;
        Some(if end && text.len() == 10 {
            at.plus_millis(MS_PER_DAY - 1)
        } else {
            at
        })
    }

    fn filter(&self) -> Filter {
        let mut conditions = Vec::new();
        if !self.actions.is_empty() {
            conditions.push(Condition::AnyOf {
                column: Column::ActionKey,
                values: self.actions.clone(),
            });
        }
        if !self.users.is_empty() {
            conditions.push(Condition::AnyOf {
                column: Column::Actor,
                values: self.users.clone(),
            });
        }
        if !self.text.is_empty() {
            conditions.push(Condition::Text(self.text.clone()));
        }
        Filter {
            conditions,
            combine: Combine::And,
            from: Self::bound(&self.from, false),
            to: Self::bound(&self.to, true),
        }
    }

    /// The filter as query-string pairs, for links and hidden form fields.
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        pairs.extend(self.actions.iter().map(|a| ("action", a.clone())));
        pairs.extend(self.users.iter().map(|u| ("user", u.clone())));
        for (key, value) in [("from", &self.from), ("to", &self.to), ("q", &self.text)] {
            if !value.is_empty() {
                pairs.push((key, value.clone()));
            }
        }
        pairs
    }

    fn link(&self, base: &str, extra: &[(&str, String)]) -> String {
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        for (key, value) in self.pairs() {
            serializer.append_pair(key, &value);
        }
        serializer.append_pair("per_page", &self.per_page.to_string());
        for (key, value) in extra {
            serializer.append_pair(key, value);
        }
        format!("{base}?{}", serializer.finish())
    }
}

async fn audit_log(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(org_name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let org = match admin_org(&state, &viewer, &org_name).await {
        Ok(org) => org,
        Err(refused) => return refused,
    };
    let query = form(raw.unwrap_or_default().as_bytes());
    let page_filter = PageFilter::parse(&query);
    let filter = page_filter.filter();
    let per_page = page_filter.per_page;
    let at: u64 = first(&query, "at")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let cursor = |key: &str| first(&query, key).and_then(|text| Cursor::decode(text).ok());
    let service = &state.service;
    let store = service.store();

    // Where this page starts: the first page, after a cursor (next), before one (previous),
    // or the end (last). Previous and last read the other way round and flip the rows.
    let (result, first_index) = if let Some(after) = cursor("after") {
        (
            service
                .page(
                    &org,
                    filter.clone(),
                    Order::NewestFirst,
                    per_page,
                    Start::After(after.position),
                )
                .await
                .map(|p| p.events),
            at,
        )
    } else if let Some(before) = cursor("before") {
        let rows = service
            .page(
                &org,
                filter.clone(),
                Order::OldestFirst,
                per_page,
                Start::After(before.position),
            )
            .await
            .map(|p| {
                let mut rows = p.events;
                rows.reverse();
                rows
            });
        (rows, at)
    } else if first(&query, "last").is_some() {
        let rows = service
            .page(
                &org,
                filter.clone(),
                Order::OldestFirst,
                per_page,
                Start::Offset(0),
            )
            .await
            .map(|p| {
                let mut rows = p.events;
                rows.reverse();
                rows
            });
        (rows, at)
    } else {
        (
            service
                .page(
                    &org,
                    filter.clone(),
                    Order::NewestFirst,
                    per_page,
                    Start::Offset(0),
                )
                .await
                .map(|p| p.events),
            0,
        )
    };
    let rows = match result {
        Ok(rows) => rows,
        Err(e) => return internal(&viewer, e),
    };
    // The panes list what is available within the other filters: users for the chosen
    // actions and dates, actions for the chosen users and dates.
    let without = |column: Column| Filter {
        conditions: filter
            .conditions
            .iter()
            .filter(|c| !matches!(c, Condition::AnyOf { column: found, .. } if *found == column))
            .cloned()
            .collect(),
        ..filter.clone()
    };
    let (user_filter, action_filter) = (without(Column::Actor), without(Column::ActionKey));
    let (count, facets, days) = tokio::join!(
        store.count(org.id, &filter, 10_000),
        store.facets(org.id, &user_filter, 50),
        store.daily_counts(org.id, &filter),
    );
    let (count, facets, days) = match (count, facets, days) {
        (Ok(c), Ok(f), Ok(d)) => (c, f, d),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return internal(&viewer, e),
    };
    let action_facets = store
        .facets(org.id, &action_filter, 200)
        .await
        .map(|f| f.actions.into_iter().collect::<HashMap<_, _>>())
        .unwrap_or_default();

    let total = count.n;
    let base = format!("/orgs/{}/audit-logs", org.name);
    let first_index = if first(&query, "last").is_some() && count.exact {
        total.saturating_sub(rows.len() as u64)
    } else {
        first_index
    };
    let is_first_page = first_index == 0;
    let last_shown = first_index + rows.len() as u64;
    let has_more = rows.len() as u32 == per_page && !(count.exact && last_shown >= total);
    let position = |event: &auditlog_core::Event, order| {
        Cursor {
            order,
            position: Position::of(event),
        }
        .encode()
    };
    let links = [
        (!is_first_page).then(|| page_filter.link(&base, &[])),
        rows.first().filter(|_| !is_first_page).map(|e| {
            page_filter.link(
                &base,
                &[
                    ("before", position(e, Order::OldestFirst)),
                    (
                        "at",
                        first_index.saturating_sub(per_page as u64).to_string(),
                    ),
                ],
            )
        }),
        rows.last().filter(|_| has_more).map(|e| {
            page_filter.link(
                &base,
                &[
                    ("after", position(e, Order::NewestFirst)),
                    ("at", last_shown.to_string()),
                ],
            )
        }),
        has_more.then(|| page_filter.link(&base, &[("last", "1".into())])),
    ];

    let today = Timestamp::now().day();
    let last_day = filter
        .to
        .map_or(today, |t| t.day())
        .min(today.max(days.last().map_or(today, |d| d.0)));
    let first_day = filter
        .from
        .map_or(last_day - 59, |t| t.day())
        .max(last_day - 364);
    let chart = chart::daily_chart(&days, first_day, last_day);
    let catalog = service.catalog();
    let records: Vec<EventRecord> = rows
        .iter()
        .map(|e| EventRecord::new(e, Some(&org.name), catalog))
        .collect();
    let view = views::AuditLogView {
        org: &org,
        catalog,
        rows: records,
        actions: &page_filter.actions,
        users: &page_filter.users,
        from: &page_filter.from,
        to: &page_filter.to,
        text: &page_filter.text,
        per_page,
        first_index,
        total: (total, count.exact),
        user_facets: facets.actors,
        action_counts: action_facets,
        links,
        chart,
        filter_pairs: page_filter.pairs(),
    };
    views::page(StatusCode::OK, views::audit_log(&viewer, view))
}

async fn event_details(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((org_name, id)): Path<(String, String)>,
) -> Response {
    let org = match admin_org(&state, &viewer, &org_name).await {
        Ok(org) => org,
        Err(refused) => return refused,
    };
    let not_found = || {
        views::error_page(
            Some(&viewer),
            StatusCode::NOT_FOUND,
            "Event not found",
            "No event of this organization has that id.",
        )
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return not_found();
    };
    let store = state.service.store();
    let event = match store.get_event(org.id, id).await {
        Ok(Some(event)) => event,
        Ok(None) => return not_found(),
        Err(e) => return internal(&viewer, e),
    };
    let previous = match event.seq {
        1 => Ok(Some(auditlog_core::chain::GENESIS)),
        seq => store
            .events_by_seq(org.id, seq - 2, 1)
            .await
            .map(|events| events.first().filter(|e| e.seq == seq - 1).map(|e| e.hash)),
    };
    let checkpoint = store.latest_checkpoint(org.id).await;
    let (previous, checkpoint) = match (previous, checkpoint) {
        (Ok(p), Ok(c)) => (p, c),
        (Err(e), _) | (_, Err(e)) => return internal(&viewer, e),
    };
    let integrity = views::Integrity {
        hash_ok: previous
            .is_some_and(|prev| auditlog_core::chain::expected_hash(&prev, &event) == event.hash),
        checkpoint_seq: checkpoint
            .map(|c| c.checkpoint.seq)
            .filter(|seq| *seq >= event.seq),
    };
    let record = EventRecord::new(&event, Some(&org.name), state.service.catalog());
    views::page(
        StatusCode::OK,
        views::event_details(
            &viewer,
            &org,
            state.service.catalog(),
            &event,
            &record,
            &integrity,
        ),
    )
}

async fn create_export(
    State(state): State<AppState>,
    viewer: Viewer,
    client: Client,
    Path(org_name): Path<String>,
    Body(body): Body,
) -> Response {
    let fields = form(&body);
    if let Err(refused) = viewer.check_csrf(first(&fields, "csrf")) {
        return *refused;
    }
    let org = match admin_org(&state, &viewer, &org_name).await {
        Ok(org) => org,
        Err(refused) => return refused,
    };
    let page_filter = PageFilter::parse(&fields);
    let filter = page_filter.filter();
    let mut q = Vec::new();
    if !page_filter.actions.is_empty() {
        q.push(format!("action_key:{}", page_filter.actions.join(",")));
    }
    if !page_filter.users.is_empty() {
        q.push(format!("actor:{}", page_filter.users.join(",")));
    }
    if !page_filter.text.is_empty() {
        q.push(format!("text:{}", page_filter.text));
    }
    let request = ExportRequest {
        filter_q: q,
        search_operator: "and".into(),
        from_date: filter.from,
        to_date: filter.to,
        format: if first(&fields, "format") == Some("csv") {
            ExportFormat::Csv
        } else {
            ExportFormat::Jsonl
        },
        gzip: first(&fields, "gzip") == Some("true"),
    };
    let actor = client.actor(Actor::user(&viewer.user));
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
) -> Result<(Org, auditlog_store::ExportJob), Response> {
    let org = admin_org(state, viewer, org_name).await?;
    let not_found = || {
        views::error_page(
            Some(viewer),
            StatusCode::NOT_FOUND,
            "Export not found",
            "No export of this organization has that id.",
        )
    };
    let job_id = Uuid::parse_str(job).map_err(|_| not_found())?;
    match state.jobs.status(org.id, job_id).await {
        Ok(Some(job)) => Ok((org, job)),
        Ok(None) => Err(not_found()),
        Err(e) => Err(internal(viewer, e)),
    }
}

async fn export_status(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((org_name, job)): Path<(String, String)>,
) -> Response {
    match export_job(&state, &viewer, &org_name, &job).await {
        Ok((org, job)) => views::page(StatusCode::OK, views::export_status(&viewer, &org, &job)),
        Err(refused) => refused,
    }
}

async fn export_download(
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
    let Some(path) = state.jobs.file_path(&job) else {
        return gone();
    };
    match crate::api::exports::file_response(&org.name, &path).await {
        Some(response) => response,
        None => gone(),
    }
}

async fn service_accounts(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(org_name): Path<String>,
) -> Response {
    let org = match admin_org(&state, &viewer, &org_name).await {
        Ok(org) => org,
        Err(refused) => return refused,
    };
    match state.service.store().service_accounts(org.id).await {
        Ok(accounts) => views::page(
            StatusCode::OK,
            views::service_accounts(&viewer, &org, &accounts, None),
        ),
        Err(e) => internal(&viewer, e),
    }
}

/// The form's `name`, trimmed, or the page that explains why it cannot be used.
fn label_field(
    viewer: &Viewer,
    fields: &HashMap<String, Vec<String>>,
) -> Result<String, Box<Response>> {
    let name = first(fields, "name").unwrap_or("").trim().to_string();
    if valid_label(&name) {
        return Ok(name);
    }
    Err(Box::new(views::error_page(
        Some(viewer),
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid name",
        "A name has 1 to 128 characters.",
    )))
}

fn valid_label(label: &str) -> bool {
    let n = label.chars().count();
    (1..=128).contains(&n) && !label.chars().any(char::is_control)
}

async fn create_service_account(
    State(state): State<AppState>,
    viewer: Viewer,
    client: Client,
    Path(org_name): Path<String>,
    Body(body): Body,
) -> Response {
    let fields = form(&body);
    if let Err(refused) = viewer.check_csrf(first(&fields, "csrf")) {
        return *refused;
    }
    let org = match admin_org(&state, &viewer, &org_name).await {
        Ok(org) => org,
        Err(refused) => return refused,
    };
    let name = match label_field(&viewer, &fields) {
        Ok(name) => name,
        Err(refused) => return *refused,
    };
    let actor = client.actor(Actor::user(&viewer.user));
    let created = match state
        .service
        .create_service_account(&org, &name, &actor)
        .await
    {
        Ok(created) => created,
        Err(e) => return internal(&viewer, e),
    };
    match state.service.store().service_accounts(org.id).await {
        Ok(accounts) => views::page(
            StatusCode::CREATED,
            views::service_accounts(&viewer, &org, &accounts, Some((&created.0, &created.1))),
        ),
        Err(e) => internal(&viewer, e),
    }
}

async fn delete_service_account(
    State(state): State<AppState>,
    viewer: Viewer,
    client: Client,
    Path((org_name, id)): Path<(String, String)>,
    Body(body): Body,
) -> Response {
    if let Err(refused) = viewer.check_csrf(first(&form(&body), "csrf")) {
        return *refused;
    }
    let org = match admin_org(&state, &viewer, &org_name).await {
        Ok(org) => org,
        Err(refused) => return refused,
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return views::error_page(
            Some(&viewer),
            StatusCode::NOT_FOUND,
            "Not found",
            "No such service account.",
        );
    };
    let actor = client.actor(Actor::user(&viewer.user));
    match state.service.delete_service_account(&org, id, &actor).await {
        Ok(_) => session::secure(
            Redirect::to(&format!("/orgs/{}/service-accounts", org.name)).into_response(),
        ),
        Err(e) => internal(&viewer, e),
    }
}

/// The organization of a token page: any member may manage their own tokens.
async fn member_org(state: &AppState, viewer: &Viewer, name: &str) -> Result<Org, Response> {
    let not_member = || {
        views::error_page(
            Some(viewer),
            StatusCode::NOT_FOUND,
            "Organization not found",
            "You are not a member of an organization by that name.",
        )
    };
    let org = match state.service.store().find_org(name).await {
        Ok(Some(org)) => org,
        Ok(None) => return Err(not_member()),
        Err(e) => return Err(internal(viewer, e)),
    };
    match state.service.store().role_of(org.id, viewer.user.id).await {
        Ok(Some(_)) => Ok(org),
        Ok(None) => Err(not_member()),
        Err(e) => Err(internal(viewer, e)),
    }
}

async fn render_tokens(
    state: &AppState,
    viewer: &Viewer,
    org: &Org,
    created: Option<&str>,
    status: StatusCode,
) -> Response {
    match state
        .service
        .store()
        .credentials(CredentialKind::ApiToken, Some(viewer.user.id), Some(org.id))
        .await
    {
        Ok(tokens) => views::page(status, views::tokens(viewer, org, &tokens, created)),
        Err(e) => internal(viewer, e),
    }
}

async fn tokens(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(org_name): Path<String>,
) -> Response {
    match member_org(&state, &viewer, &org_name).await {
        Ok(org) => render_tokens(&state, &viewer, &org, None, StatusCode::OK).await,
        Err(refused) => refused,
    }
}

async fn create_token(
    State(state): State<AppState>,
    viewer: Viewer,
    client: Client,
    Path(org_name): Path<String>,
    Body(body): Body,
) -> Response {
    let fields = form(&body);
    if let Err(refused) = viewer.check_csrf(first(&fields, "csrf")) {
        return *refused;
    }
    let org = match member_org(&state, &viewer, &org_name).await {
        Ok(org) => org,
        Err(refused) => return refused,
    };
    let name = match label_field(&viewer, &fields) {
        Ok(name) => name,
        Err(refused) => return *refused,
    };
    let expires = first(&fields, "days")
        .and_then(|d| d.parse::<i64>().ok())
        .filter(|d| (1..=3650).contains(d))
        .map(|d| Timestamp::now().plus_millis(d * MS_PER_DAY));
    let actor = client.actor(Actor::user(&viewer.user));
    match state
        .service
        .create_api_token(&org, &viewer.user, &name, expires, &actor)
        .await
    {
        Ok((_, token)) => {
            render_tokens(&state, &viewer, &org, Some(&token), StatusCode::CREATED).await
        }
        Err(e) => internal(&viewer, e),
    }
}

async fn revoke_token(
    State(state): State<AppState>,
    viewer: Viewer,
    client: Client,
    Path((org_name, id)): Path<(String, String)>,
    Body(body): Body,
) -> Response {
    if let Err(refused) = viewer.check_csrf(first(&form(&body), "csrf")) {
        return *refused;
    }
    let org = match member_org(&state, &viewer, &org_name).await {
        Ok(org) => org,
        Err(refused) => return refused,
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return render_tokens(&state, &viewer, &org, None, StatusCode::NOT_FOUND).await;
    };
    // Only the viewer's own tokens.
    let own = state
        .service
        .store()
        .credentials(CredentialKind::ApiToken, Some(viewer.user.id), Some(org.id))
        .await;
    if !own.is_ok_and(|tokens| tokens.iter().any(|t| t.id == id)) {
        return render_tokens(&state, &viewer, &org, None, StatusCode::NOT_FOUND).await;
    }
    let actor = client.actor(Actor::user(&viewer.user));
    match state.service.revoke_api_token(&org, id, &actor).await {
        Ok(_) => {
            session::secure(Redirect::to(&format!("/orgs/{}/tokens", org.name)).into_response())
        }
        Err(e) => internal(&viewer, e),
    }
}

async fn password_form(viewer: Viewer) -> Response {
    views::page(StatusCode::OK, views::password(&viewer, None))
}

async fn change_password(
    State(state): State<AppState>,
    viewer: Viewer,
    Body(body): Body,
) -> Response {
    let fields = form(&body);
    if let Err(refused) = viewer.check_csrf(first(&fields, "csrf")) {
        return *refused;
    }
    let current = first(&fields, "current").unwrap_or("");
    let new = first(&fields, "new").unwrap_or("");
    let current_ok = match &viewer.user.password_hash {
        Some(hash) => auditlog_service::access::verify_password(hash, current),
        None => true,
    };
    if !current_ok {
        return views::page(
            StatusCode::FORBIDDEN,
            views::password(&viewer, Some((false, "The current password is wrong."))),
        );
    }
    match state.service.set_password(&viewer.user, new).await {
        Ok(()) => views::page(
            StatusCode::OK,
            views::password(&viewer, Some((true, "Your password was changed."))),
        ),
        Err(AccessError::Forbidden(message)) => views::page(
            StatusCode::UNPROCESSABLE_ENTITY,
            views::password(&viewer, Some((false, &message))),
        ),
        Err(e) => internal(&viewer, e),
    }
}

/// `POST /api/viewer-links`: a platform, with its ingest key, mints a five-minute one-time
/// sign-in link for one user of one organization — the way platforms embed the viewer.
pub async fn create_viewer_link(
    State(state): State<AppState>,
    crate::auth::Authed(principal): crate::auth::Authed,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<axum::Json<serde_json::Value>, crate::error::ApiError> {
    use crate::error::{ApiError, Detail};
    let auditlog_service::access::Principal::Ingest { credential } = &principal else {
        return Err(ApiError::Forbidden(
            "only ingest keys may mint sign-in links".into(),
        ));
    };
    let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::invalid(Detail::new(
            vec!["body".into()],
            format!("not valid JSON: {e}"),
            "json_invalid",
        ))
    })?;
    let email = value
        .get("email")
        .and_then(|v| v.as_str())
        .filter(|e| e.contains('@') && e.len() <= 320)
        .ok_or_else(|| {
            ApiError::invalid(Detail::new(
                vec!["body".into(), "email".into()],
                "an email address is required",
                "missing",
            ))
        })?;
    let role = match value.get("role").and_then(|v| v.as_str()) {
        None => None,
        Some(text) => Some(Role::parse(text).ok_or_else(|| {
            ApiError::invalid(Detail::new(
                vec!["body".into(), "role".into()],
                "must be admin or member",
                "enum",
            ))
        })?),
    };
    let display_name = value
        .get("display_name")
        .and_then(|v| v.as_str())
        .filter(|n| valid_label(n));
    let org_name = crate::api::headers::org_name(&headers)?
        .or_else(|| {
            value
                .get("org")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .ok_or_else(|| {
            ApiError::invalid(Detail::new(
                vec!["header".into(), "x-org-name".into()],
                "name the organization",
                "missing",
            ))
        })?;
    let org = state
        .service
        .store()
        .find_org(&org_name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no organization is named {org_name:?}")))?;
    let (token, expires_at) = state
        .service
        .create_sign_in_link(credential, &org, email, display_name, role)
        .await?;
    Ok(axum::Json(json!({
        "url": format!("{}/sign-in/link?token={token}", state.config.public_url),
        "expires_at": expires_at,
    })))
}
