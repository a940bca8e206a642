//! The audit log on the page: the table of events with its filter panes, counts, chart and
//! First/Previous/Next/Last paging, and one event's details with its integrity check and its
//! inclusion proof in the organization's signed transparency log (to download).

use std::collections::HashMap;

use auditlog_core::query::{Column, Condition, Cursor, Filter, Order, Position, Start};
use auditlog_core::wire::EventRecord;
use auditlog_core::{Outcome, Timestamp};
use auditlog_service::log::{base64_hash, LogError};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use super::filter::PageFilter;
use super::session::Viewer;
use super::{chart, first, form, internal, readable_org, views};
use crate::AppState;

pub async fn audit_log(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(org_name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let org = match readable_org(&state, &viewer, &org_name).await {
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

    // Where this page starts: the first page, after a cursor (next), before one (previous),
    // or the end (last). Previous and last read the other way round and flip the rows.
    let (order, start, flipped, first_index) = if let Some(after) = cursor("after") {
        (Order::NewestFirst, Start::After(after.position), false, at)
    } else if let Some(before) = cursor("before") {
        (Order::OldestFirst, Start::After(before.position), true, at)
    } else if first(&query, "last").is_some() {
        (Order::OldestFirst, Start::Offset(0), true, at)
    } else {
        (Order::NewestFirst, Start::Offset(0), false, 0)
    };
    let result = service
        .page(&org, filter.clone(), order, per_page, start)
        .await
        .map(|page| {
            let mut rows = page.events;
            if flipped {
                rows.reverse();
            }
            rows
        });
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
    // The failed and refused attempts among the events shown (outcome other than success).
    let mut not_done_filter = filter.clone();
    not_done_filter.conditions.push(Condition::AnyOf {
        column: Column::Outcome,
        values: vec![
            Outcome::Failure.as_str().to_string(),
            Outcome::Denied.as_str().to_string(),
        ],
    });
    let (count, facets, days, not_done) = tokio::join!(
        service.count(&org, &filter, 10_000),
        service.facets(&org, &user_filter, 50),
        service.daily_counts(&org, &filter),
        service.count(&org, &not_done_filter, 10_000),
    );
    let (count, facets, days, not_done) = match (count, facets, days, not_done) {
        (Ok(c), Ok(f), Ok(d), Ok(n)) => (c, f, d, n),
        (Err(e), _, _, _) | (_, Err(e), _, _) | (_, _, Err(e), _) | (_, _, _, Err(e)) => {
            return internal(&viewer, e)
        }
    };
    let action_facets = service
        .facets(&org, &action_filter, 200)
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
    let retention = match service.retention(&org).await {
        Ok(retention) => retention,
        Err(e) => return internal(&viewer, e),
    };
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
        not_done: (not_done.n, not_done.exact),
        user_facets: facets.actors,
        action_counts: action_facets,
        links,
        chart,
        filter_pairs: page_filter.pairs(),
        retention,
    };
    views::page(StatusCode::OK, views::audit_log(&viewer, view))
}

pub async fn event_details(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((org_name, id)): Path<(String, String)>,
) -> Response {
    let org = match readable_org(&state, &viewer, &org_name).await {
        Ok(org) => org,
        Err(refused) => return refused,
    };
    let not_found = || event_not_found(&viewer);
    let Ok(id) = Uuid::parse_str(&id) else {
        return not_found();
    };
    let event = match state.service.get_event(&org, id).await {
        Ok(Some(event)) => event,
        Ok(None) => return not_found(),
        Err(e) => return internal(&viewer, e),
    };
    let integrity = match state.service.event_integrity(&org, &event).await {
        Ok(integrity) => integrity,
        Err(e) => return internal(&viewer, e),
    };
    // A proof the service could not make is shown as such (and logged), not a broken page.
    let proof = match state.service.inclusion_proof(&org, id).await {
        Ok(proof) => views::Proof::Proven {
            size: proof.checkpoint.size,
            root: base64_hash(&proof.checkpoint.root),
        },
        Err(LogError::Store(e)) => return internal(&viewer, e),
        Err(e) => {
            tracing::error!(error = %e, event = %id, "no inclusion proof for an event");
            views::Proof::Failed
        }
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
            &proof,
        ),
    )
}

/// The event's inclusion proof as a `c2sp.org/tlog-proof@v1` file to keep: any RFC 9162
/// verifier checks it with the deployment's verifier key.
pub async fn event_proof(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((org_name, id)): Path<(String, String)>,
) -> Response {
    let org = match readable_org(&state, &viewer, &org_name).await {
        Ok(org) => org,
        Err(refused) => return refused,
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return event_not_found(&viewer);
    };
    match state.service.inclusion_proof(&org, id).await {
        Ok(proof) => (
            [
                (
                    header::CONTENT_TYPE,
                    "text/plain; charset=utf-8".to_string(),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    format!(
                        "attachment; filename=\"audit-log-{}-{id}.tlog-proof\"",
                        org.name
                    ),
                ),
            ],
            proof.to_tlog_proof(),
        )
            .into_response(),
        Err(LogError::NotFound(_)) => event_not_found(&viewer),
        Err(e) => internal(&viewer, e),
    }
}

/// The page for an event id the organization does not have (or that is no id).
fn event_not_found(viewer: &Viewer) -> Response {
    views::error_page(
        Some(viewer),
        StatusCode::NOT_FOUND,
        "Event not found",
        "No event of this organization has that id.",
    )
}
