//! Browser sessions: the session cookie, the signed-in viewer extractor, CSRF tokens, and the
//! security headers every page carries.

use auditlog_service::access::secret_hash;
use auditlog_service::grant::SignedIn;
use auditlog_store::User;
use axum::extract::FromRequestParts;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};

use crate::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "auditlog_session";
/// The pre-session CSRF cookie of the sign-in form.
pub const LOGIN_CSRF_COOKIE: &str = "auditlog_login_csrf";

/// The value of a cookie in a request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, and Secure when served over TLS.
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age_seconds: i64) -> HeaderValue {
    let secure = if state.config.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_seconds}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The CSRF token of a session: derived from the secret session token, so only a page
/// served to that session can know it.
pub fn csrf_for(session_token: &str) -> String {
    hex::encode(&secret_hash(&format!("csrf:{session_token}"))[..16])
}

/// Compares two CSRF tokens without an early exit.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A signed-in person.
pub struct Viewer {
    /// The session, as the service vouches for it: what the page's authorization takes.
    pub session: SignedIn,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    /// The raw session token (to sign out).
    pub token: String,
}

impl Viewer {
    /// The signed-in user.
    pub fn user(&self) -> &User {
        self.session.user()
    }

    /// Whether a submitted form carries this session's CSRF token.
    pub fn check_csrf(&self, submitted: Option<&str>) -> Result<(), Box<Response>> {
        match submitted {
            Some(token) if same_token(token, &self.csrf) => Ok(()),
            _ => Err(Box::new(super::views::error_page(
                Some(self),
                axum::http::StatusCode::FORBIDDEN,
                "This form has expired",
                "The page was open too long or came from elsewhere. Go back, reload it and try again.",
            ))),
        }
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Viewer, Response> {
        let to_sign_in = || {
            let next = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let encoded: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
            Redirect::to(&format!("/sign-in?next={encoded}")).into_response()
        };
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE).map(str::to_string) else {
            return Err(to_sign_in());
        };
        match state.service.session_user(&token).await {
            Ok(session) => Ok(Viewer {
                csrf: csrf_for(&token),
                session,
                token,
            }),
            Err(_) => Err(to_sign_in()),
        }
    }
}

/// Adds the headers every page carries: a strict Content-Security-Policy (no inline script
/// or style, nothing from elsewhere), no framing, no referrer (sign-in links carry secrets),
/// and no caching of pages that show audit data.
pub fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
