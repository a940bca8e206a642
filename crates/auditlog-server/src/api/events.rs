//! The audit-log endpoints of the reference API (list, get one) and our extensions (facets,
//! the catalog, the public key and checkpoint, ingest).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use auditlog_core::strict_json::{Rule, Step};
use auditlog_core::wire::EventRecord;
use auditlog_core::NewEvent;
use auditlog_service::access::Principal;
use auditlog_service::grant::ReadableOrg;
use auditlog_service::rejections::{Problem, RefusedEvent};
use auditlog_store::{AppendOutcome, IdempotencyKey, Org};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::headers;
use crate::auth::{Authed, Body};
use crate::error::{ApiError, Detail};
use crate::params::ListParams;
use crate::AppState;

/// Counting stops here for filters that the rollups cannot answer; the response says so.
const COUNT_CAP: u64 = 10_000;
/// Facet entries returned per kind.
const MAX_FACETS: usize = 100;

/// Resolves and authorizes the organization of a read request.
pub async fn readable_org(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
) -> Result<ReadableOrg, ApiError> {
    headers::api_version(headers)?;
    let name = headers::org_name(headers)?;
    Ok(state
        .service
        .authorize_read(principal, name.as_deref())
        .await?)
}

fn record(state: &AppState, org: &Org, event: &auditlog_core::Event) -> EventRecord {
    EventRecord::new(event, Some(&org.name), state.service.catalog())
}

/// The answer of `GET /api/audit-logs`, serialized straight from the records (no
/// intermediate JSON tree).
#[derive(serde::Serialize)]
pub struct ListResponse {
    items: Vec<EventRecord>,
    total_count: u64,
    total_count_exact: bool,
    next_cursor: Option<String>,
}

/// `GET /api/audit-logs`.
pub async fn list(
    State(state): State<AppState>,
    Authed(principal): Authed,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<ListResponse>, ApiError> {
    let org = readable_org(&state, &principal, &headers).await?;
    let params = ListParams::parse(raw.as_deref())?;
    let (page, count) = tokio::join!(
        state.service.page(
            &org,
            params.filter.clone(),
            params.order,
            params.limit,
            params.start
        ),
        state.service.count(&org, &params.filter, COUNT_CAP),
    );
    let (page, count) = (page?, count?);
    let catalog = state.service.catalog();
    let items: Vec<EventRecord> = page
        .events
        .into_iter()
        .map(|e| EventRecord::from_event(e, Some(&org.name), catalog))
        .collect();
    Ok(Json(ListResponse {
        items,
        total_count: count.n,
        total_count_exact: count.exact,
        next_cursor: page.next_cursor,
    }))
}

/// `GET /api/audit-logs/{audit_log_id}`.
pub async fn get_one(
    State(state): State<AppState>,
    Authed(principal): Authed,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<EventRecord>, ApiError> {
    let org = readable_org(&state, &principal, &headers).await?;
    let id = Uuid::parse_str(&id).map_err(|_| {
        ApiError::invalid(Detail::new(
            vec!["path".into(), "audit_log_id".into()],
            "must be a UUID",
            "uuid_parsing",
        ))
    })?;
    match state.service.get_event(&org, id).await? {
        Some(event) => Ok(Json(record(&state, &org, &event))),
        None => Err(ApiError::NotFound(format!(
            "no audit log entry {id} in organization {:?}",
            org.name
        ))),
    }
}

/// `GET /api/audit-logs/facets`: which actions and users occur, with counts, for the filter.
pub async fn facets(
    State(state): State<AppState>,
    Authed(principal): Authed,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let org = readable_org(&state, &principal, &headers).await?;
    let params = ListParams::parse(raw.as_deref())?;
    let facets = state
        .service
        .facets(&org, &params.filter, MAX_FACETS)
        .await?;
    let catalog = state.service.catalog();
    let actions: Vec<Value> = facets
        .actions
        .iter()
        .map(|(key, count)| {
            let action = catalog.get(key);
            json!({
                "action_key": key,
                "display_name": action.map(|a| a.display_name.as_str()),
                "group": action.map(|a| a.group.as_str()),
                "count": count,
            })
        })
        .collect();
    let users: Vec<Value> = facets
        .actors
        .iter()
        .map(|a| json!({"actor_id": a.actor_id, "actor_email": a.actor_email, "actor_name": a.actor_name, "count": a.count}))
        .collect();
    Ok(Json(json!({ "actions": actions, "users": users })))
}

/// `GET /api/audit-logs/actions`: the catalog, grouped.
pub async fn actions(State(state): State<AppState>, Authed(_principal): Authed) -> Json<Value> {
    let groups: Vec<Value> = state
        .service
        .catalog()
        .groups()
        .into_iter()
        .map(|(group, actions)| json!({ "group": group, "actions": actions }))
        .collect();
    Json(json!({ "groups": groups, "accept_unknown": state.service.catalog().accept_unknown }))
}

/// `GET /api/audit-logs/public-key`: the key that verifies checkpoints (public).
pub async fn public_key(State(state): State<AppState>) -> Json<Value> {
    let key = state.service.signing_key().verifying_key();
    Json(json!({
        "algorithm": "ed25519",
        "public_key": auditlog_service::keys::public_key_hex(&key),
        "key_id": auditlog_core::chain::key_id(&key),
    }))
}

/// `GET /api/audit-logs/checkpoint`: the organization's head, signed now if it moved.
pub async fn checkpoint(
    State(state): State<AppState>,
    Authed(principal): Authed,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let org = readable_org(&state, &principal, &headers).await?;
    let signed = state.service.checkpoint(&org).await?;
    Ok(Json(
        serde_json::to_value(signed.to_wire()).map_err(|e| ApiError::Internal(e.to_string()))?,
    ))
}

/// Longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// `POST /api/audit-logs/events`: one event or an array of up to 1,000, stored atomically and
/// durably before the 201.
pub async fn ingest(
    State(state): State<AppState>,
    Authed(principal): Authed,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    headers::api_version(&headers)?;
    // Only an ingest key's requests are worth reading further; the service decides again.
    let Principal::Ingest { credential, .. } = &principal else {
        return Err(ApiError::Forbidden(
            "only ingest keys may write events".into(),
        ));
    };
    let org_header = headers::org_name(&headers)?;
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(value) => {
            let text = value.to_str().ok().filter(|t| {
                !t.is_empty()
                    && t.len() <= MAX_IDEMPOTENCY_KEY
                    && t.chars().all(|c| c.is_ascii_graphic())
            });
            let Some(text) = text else {
                return Err(ApiError::invalid(Detail::new(
                    vec!["header".into(), "idempotency-key".into()],
                    format!("must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
                    "value_error",
                )));
            };
            let mut hasher = Sha256::new();
            hasher.update(org_header.as_deref().unwrap_or("").as_bytes());
            hasher.update(b"\n");
            hasher.update(&body);
            Some(IdempotencyKey {
                scope: format!("{}:{text}", credential.id),
                request_hash: hasher.finalize().into(),
            })
        }
    };

    let strict = auditlog_core::strict_json::check(&body).map_err(|problem| {
        let mut loc = vec![json!("body")];
        // A single event is event 0 of its batch, as its other errors say.
        if !matches!(problem.path.first(), Some(Step::Index(_))) {
            loc.push(json!(0));
        }
        loc.extend(problem.path.iter().map(|step| match step {
            Step::Key(key) => json!(key),
            Step::Index(index) => json!(index),
        }));
        let kind = match problem.rule {
            Rule::DuplicateKey => "duplicate_key",
            Rule::InexactNumber => "inexact_number",
        };
        Detail::new(loc, problem.message, kind)
    });
    if let Err(detail) = strict {
        let details = vec![detail];
        count_refused(&state, &principal, org_header.as_deref(), &body, &details).await;
        return Err(ApiError::Validation(details));
    }
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::invalid(Detail::new(
            vec!["body".into()],
            format!("not valid JSON: {e}"),
            "json_invalid",
        ))
    })?;
    let items = match value {
        Value::Array(items) => items,
        single @ Value::Object(_) => vec![single],
        _ => {
            return Err(ApiError::invalid(Detail::new(
                vec!["body".into()],
                "must be an event object or an array of events",
                "type_error",
            )));
        }
    };
    if items.is_empty() {
        return Err(ApiError::invalid(Detail::new(
            vec!["body".into()],
            "the batch holds no events",
            "too_short",
        )));
    }
    let mut events = Vec::with_capacity(items.len());
    let mut parsed_index = Vec::with_capacity(items.len());
    let mut details = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        match NewEvent::from_json(item) {
            Ok(event) => {
                events.push(event);
                parsed_index.push(index);
            }
            Err(e) => {
                let mut loc = vec![json!("body"), json!(index)];
                if !e.field.is_empty() {
                    loc.push(json!(e.field));
                }
                details.push(Detail::new(loc, e.message, e.kind.as_str()));
            }
        }
    }
    if !details.is_empty() {
        // Report the rule problems of the events that did parse too, so one round trip
        // shows everything wrong with the batch.
        let now = auditlog_core::Timestamp::now();
        for (index, event) in events.into_iter().enumerate() {
            if let Err(errors) =
                auditlog_core::validate::validate(event, state.service.catalog(), now)
            {
                for e in errors {
                    details.push(Detail::new(
                        vec![json!("body"), json!(parsed_index[index]), json!(e.field)],
                        e.message,
                        e.kind.as_str(),
                    ));
                }
            }
        }
        details.sort_by_key(|d| d.loc.get(1).and_then(Value::as_u64).unwrap_or(0));
        count_refused(&state, &principal, org_header.as_deref(), &body, &details).await;
        return Err(ApiError::Validation(details));
    }
    let (ids, replayed) = match state
        .service
        .ingest_request(&principal, org_header.as_deref(), events, key)
        .await?
    {
        AppendOutcome::Stored(events) => (events.iter().map(|e| e.id).collect::<Vec<_>>(), false),
        AppendOutcome::Replayed(ids) => (ids, true),
    };
    if !replayed {
        state
            .metrics
            .events_ingested
            .fetch_add(ids.len() as u64, Ordering::Relaxed);
    }
    let mut response = (
        StatusCode::CREATED,
        Json(json!({ "ids": ids, "count": ids.len() })),
    )
        .into_response();
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Counts the events of a refused ingest request that the service never saw (it counts the
/// ones it refuses itself): the first problem of each event `details` name, with the
/// organization and action the event's own JSON names. A body-level problem names no event.
async fn count_refused(
    state: &AppState,
    principal: &Principal,
    org_header: Option<&str>,
    body: &[u8],
    details: &[Detail],
) {
    let refused = refused_events(body, details);
    if refused.is_empty() {
        return;
    }
    if let Err(error) = state
        .service
        .count_refused_events(principal, org_header, refused)
        .await
    {
        // The answer is the 422 either way; only the count is lost.
        tracing::warn!(%error, "cannot count refused events");
    }
}

/// Each event of `body` that `details` (`loc: ["body", index, …]`) names, once, with its
/// first problem. The body is read again only here, leniently (a duplicate key or an
/// inexact number is what may have refused it), so that accepted batches pay nothing.
fn refused_events(body: &[u8], details: &[Detail]) -> Vec<RefusedEvent> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let items = match value {
        Value::Array(items) => items,
        single => vec![single],
    };
    // A batch too large to be taken is refused as a whole, whatever its events hold.
    if items.len() > auditlog_service::MAX_BATCH {
        return Vec::new();
    }
    let mut first_problems: BTreeMap<usize, &Detail> = BTreeMap::new();
    for detail in details {
        if let Some(index) = detail.loc.get(1).and_then(Value::as_u64) {
            first_problems.entry(index as usize).or_insert(detail);
        }
    }
    first_problems
        .into_iter()
        .filter_map(|(index, detail)| {
            let item = items.get(index)?;
            let text = |name: &str| item.get(name).and_then(Value::as_str).map(str::to_string);
            Some(RefusedEvent {
                org: text("org"),
                action_key: text("action_key"),
                problem: Problem::new(&detail.kind, &field_path(&detail.loc[2..]), &detail.msg),
            })
        })
        .collect()
}

/// A `loc` inside an event written the way field errors name fields: `meta.amounts[2]`.
fn field_path(loc: &[Value]) -> String {
    let mut path = String::new();
    for step in loc {
        match step {
            Value::Number(index) => path.push_str(&format!("[{index}]")),
            Value::String(key) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            other => path.push_str(&other.to_string()),
        }
    }
    path
}
