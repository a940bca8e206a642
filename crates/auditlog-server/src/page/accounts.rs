//! The organization pages besides the log: the viewer's organizations, an organization's
//! service accounts (administrators), the viewer's own API tokens (any member), and the
//! password form.

use auditlog_core::timestamp::MS_PER_DAY;
use auditlog_core::Timestamp;
use auditlog_service::access::{Actor, PasswordError};
use auditlog_service::grant::MemberOf;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use uuid::Uuid;

use super::session::{self, Viewer};
use super::{
    admin_form, first, form, internal, member_form, member_of, readable_org, valid_label, views,
    Fields,
};
use crate::auth::{Body, Client};
use crate::AppState;

pub async fn orgs(State(state): State<AppState>, viewer: Viewer) -> Response {
    match state.service.memberships(&viewer.session).await {
        Ok(memberships) => views::page(StatusCode::OK, views::orgs(&viewer, &memberships)),
        Err(e) => internal(&viewer, e),
    }
}

pub async fn service_accounts(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(org_name): Path<String>,
) -> Response {
    let org = match readable_org(&state, &viewer, &org_name).await {
        Ok(org) => org,
        Err(refused) => return refused,
    };
    match state.service.service_accounts(&org).await {
        Ok(accounts) => views::page(
            StatusCode::OK,
            views::service_accounts(&viewer, &org, &accounts, None),
        ),
        Err(e) => internal(&viewer, e),
    }
}

/// The form's `name`, trimmed, or the page that explains why it cannot be used.
fn label_field(viewer: &Viewer, fields: &Fields) -> Result<String, Box<Response>> {
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

pub async fn create_service_account(
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
    let name = match label_field(&viewer, &fields) {
        Ok(name) => name,
        Err(refused) => return *refused,
    };
    let actor = client.actor(Actor::user(viewer.user()));
    let created = match state
        .service
        .create_service_account(&org, &name, &actor)
        .await
    {
        Ok(created) => created,
        Err(e) => return internal(&viewer, e),
    };
    match state.service.service_accounts(&org).await {
        Ok(accounts) => views::page(
            StatusCode::CREATED,
            views::service_accounts(&viewer, &org, &accounts, Some((&created.0, &created.1))),
        ),
        Err(e) => internal(&viewer, e),
    }
}

pub async fn delete_service_account(
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
            "No such service account.",
        );
    };
    let actor = client.actor(Actor::user(viewer.user()));
    match state.service.delete_service_account(&org, id, &actor).await {
        Ok(_) => session::secure(
            Redirect::to(&format!("/orgs/{}/service-accounts", org.name)).into_response(),
        ),
        Err(e) => internal(&viewer, e),
    }
}

async fn render_tokens(
    state: &AppState,
    viewer: &Viewer,
    member: &MemberOf,
    created: Option<&str>,
    status: StatusCode,
) -> Response {
    match state.service.own_tokens(member).await {
        Ok(tokens) => views::page(
            status,
            views::tokens(viewer, member.org(), &tokens, created),
        ),
        Err(e) => internal(viewer, e),
    }
}

pub async fn tokens(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(org_name): Path<String>,
) -> Response {
    match member_of(&state, &viewer, &org_name).await {
        Ok(member) => render_tokens(&state, &viewer, &member, None, StatusCode::OK).await,
        Err(refused) => refused,
    }
}

pub async fn create_token(
    State(state): State<AppState>,
    viewer: Viewer,
    client: Client,
    Path(org_name): Path<String>,
    Body(body): Body,
) -> Response {
    let (fields, member) = match member_form(&state, &viewer, &org_name, &body).await {
        Ok(found) => found,
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
    let actor = client.actor(Actor::user(viewer.user()));
    match state
        .service
        .create_own_token(&member, &name, expires, &actor)
        .await
    {
        Ok((_, token)) => {
            render_tokens(&state, &viewer, &member, Some(&token), StatusCode::CREATED).await
        }
        Err(e) => internal(&viewer, e),
    }
}

pub async fn revoke_token(
    State(state): State<AppState>,
    viewer: Viewer,
    client: Client,
    Path((org_name, id)): Path<(String, String)>,
    Body(body): Body,
) -> Response {
    let (_, member) = match member_form(&state, &viewer, &org_name, &body).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return render_tokens(&state, &viewer, &member, None, StatusCode::NOT_FOUND).await;
    };
    let actor = client.actor(Actor::user(viewer.user()));
    match state.service.revoke_own_token(&member, id, &actor).await {
        Ok(Some(_)) => session::secure(
            Redirect::to(&format!("/orgs/{}/tokens", member.org().name)).into_response(),
        ),
        Ok(None) => render_tokens(&state, &viewer, &member, None, StatusCode::NOT_FOUND).await,
        Err(e) => internal(&viewer, e),
    }
}

pub async fn password_form(viewer: Viewer) -> Response {
    views::page(StatusCode::OK, views::password(&viewer, None))
}

pub async fn change_password(
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
    match state
        .service
        .change_password(&viewer.session, current, new)
        .await
    {
        Ok(()) => views::page(
            StatusCode::OK,
            views::password(&viewer, Some((true, "Your password was changed."))),
        ),
        Err(PasswordError::WrongCurrent) => views::page(
            StatusCode::FORBIDDEN,
            views::password(&viewer, Some((false, "The current password is wrong."))),
        ),
        Err(PasswordError::Unacceptable(message)) => views::page(
            StatusCode::UNPROCESSABLE_ENTITY,
            views::password(&viewer, Some((false, &message))),
        ),
        Err(e) => internal(&viewer, e),
    }
}
