//! Bearer credentials on requests, the request's client context, and per-credential rate
//! limits (token buckets, per process).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Instant;

use auditlog_service::access::{Actor, Principal};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use uuid::Uuid;

use crate::error::ApiError;
use crate::forwarded;
use crate::metrics::RequestId;
use crate::AppState;

/// Who is asking, from where.
#[derive(Debug, Clone)]
pub struct Client {
    /// The client's address: the TCP peer's, or what a trusted proxy says the client's is
    /// (`forwarded::client_address`). Every record of the request and every limit per client
    /// address uses it.
    pub ip: Option<IpAddr>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
    /// The request id.
    pub request_id: Option<String>,
}

impl Client {
    /// An actor seen through this request.
    pub fn actor(&self, actor: Actor) -> Actor {
        actor.with_request(self.ip, self.user_agent.clone(), self.request_id.clone())
    }
}

impl FromRequestParts<AppState> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Client, ApiError> {
        Ok(Client {
            ip: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|peer| {
                    forwarded::client_address(
                        peer.0.ip(),
                        &parts.headers,
                        &state.config.trusted_proxies,
                    )
                }),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .map(str::to_string),
            request_id: parts.extensions.get::<RequestId>().map(|r| r.0.clone()),
        })
    }
}

/// An authenticated, rate-limited request.
pub struct Authed(pub Principal);

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Authed, ApiError> {
        let token = bearer(&parts.headers)?;
        let principal = state.service.authenticate(token).await?;
        state.limiter.check(principal.credential().id)?;
        Ok(Authed(principal))
    }
}

/// The token of an `Authorization: Bearer …` header.
fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::Unauthorized("missing Authorization: Bearer <token> header".into())
        })?
        .to_str()
        .map_err(|_| ApiError::Unauthorized("the Authorization header is not text".into()))?;
    let (scheme, token) = value.split_once(' ').ok_or_else(|| {
        ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::Unauthorized(
            "the Authorization header must be `Bearer <token>`".into(),
        ));
    }
    Ok(token.trim())
}

/// Token buckets keyed by credential id.
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<Uuid, (f64, Instant)>>,
}

impl RateLimiter {
    /// A limiter allowing `per_second` requests with bursts of `burst`; 0 disables it.
    pub fn new(per_second: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            per_second: per_second as f64,
            burst: burst.max(1) as f64,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// A limiter with a fractional rate (per second) and burst.
    pub fn with_rate(per_second: f64, burst: f64) -> RateLimiter {
        RateLimiter {
            per_second,
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`, or says how long to wait.
    pub fn check(&self, key: Uuid) -> Result<(), ApiError> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("lock");
        if buckets.len() > 100_000 {
            // Forget idle credentials rather than grow without bound.
            buckets.retain(|_, (_, at)| now.duration_since(*at).as_secs() < 60);
        }
        let (tokens, at) = buckets.entry(key).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - *tokens) / self.per_second).ceil().max(1.0) as u64;
            Err(ApiError::TooManyRequests(wait))
        }
    }
}

/// A request body, with the size limit's rejection turned into our 413 JSON answer.
pub struct Body(pub axum::body::Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Body, ApiError> {
        match axum::body::Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(Body(bytes)),
            Err(rejection) if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::TooLarge(
                    "the request body is larger than this server accepts (see --body-limit)".into(),
                ))
            }
            Err(rejection) => Err(ApiError::BadRequest(format!(
                "cannot read the request body: {rejection}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_refuses_with_a_wait() {
        let limiter = RateLimiter::new(1, 3);
        let key = Uuid::nil();
        for _ in 0..3 {
            limiter.check(key).unwrap();
        }
        assert!(matches!(
            limiter.check(key),
            Err(ApiError::TooManyRequests(1))
        ));
        // Another credential has its own bucket.
        limiter.check(Uuid::max()).unwrap();
        // Zero disables the limit.
        let open = RateLimiter::new(0, 0);
        for _ in 0..1000 {
            open.check(key).unwrap();
        }
    }
}
