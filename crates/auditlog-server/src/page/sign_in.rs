//! Signing in and out: the password form (rate-limited per client address), the one-time
//! links platforms mint, and sign-out. The service checks the secrets; this file sets the
//! cookies.

use auditlog_service::access::{AccessError, Actor};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use uuid::Uuid;

use super::session::{self, cookie, set_cookie, Viewer, LOGIN_CSRF_COOKIE, SESSION_COOKIE};
use super::{first, form, views};
use crate::auth::{Body, Client};
use crate::AppState;

/// Only local paths are followed after sign-in, so a crafted link cannot send a user away.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path.to_string()
        }
        _ => "/orgs".to_string(),
    }
}

pub async fn sign_in_form(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
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

pub async fn sign_in(
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

pub async fn sign_in_link(
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

pub async fn sign_out(State(state): State<AppState>, viewer: Viewer, Body(body): Body) -> Response {
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
