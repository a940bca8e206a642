//! `POST /api/iam/token`: a service account trades its client id and secret for a
//! 15-minute bearer token (OAuth 2.0 client credentials grant, form or JSON body).

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use auditlog_service::access::Actor;

use crate::auth::{Body, Client};
use crate::error::ApiError;
use crate::AppState;

/// The token endpoint.
pub async fn token(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // Failed guesses are limited per client address, like everything else per credential.
    let address = client.ip.map(|ip| ip.to_string()).unwrap_or_default();
    let digest = Sha256::digest(format!("iam:{address}").as_bytes());
    state
        .limiter
        .check(uuid::Uuid::from_slice(&digest[..16]).unwrap_or_default())?;

    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let field = |name: &str| -> Option<String> {
        if is_json {
            let value: Value = serde_json::from_slice(&body).ok()?;
            value.get(name)?.as_str().map(str::to_string)
        } else {
            form_urlencoded::parse(&body)
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        }
    };
    match field("grant_type").as_deref() {
        Some("client_credentials") => {}
        Some(_) => {
            return Err(ApiError::BadRequest(
                "unsupported_grant_type: only client_credentials is supported".into(),
            ))
        }
        None => {
            return Err(ApiError::BadRequest(
                "invalid_request: grant_type is required (client_credentials)".into(),
            ))
        }
    }
    let (Some(client_id), Some(client_secret)) = (field("client_id"), field("client_secret"))
    else {
        return Err(ApiError::BadRequest(
            "invalid_request: client_id and client_secret are required".into(),
        ));
    };
    let context = client.actor(Actor::operator());
    let (access_token, expires_in) = state
        .service
        .exchange_client_credentials(&client_id, &client_secret, context)
        .await?;
    Ok((
        StatusCode::OK,
        Json(
            json!({ "access_token": access_token, "token_type": "bearer", "expires_in": expires_in }),
        ),
    ))
}
