//! The HTML of every page (maud: checked at compile time, every value escaped).

use auditlog_core::wire::EventRecord;
use auditlog_core::{Catalog, Event, Timestamp};
use auditlog_service::read::Integrity;
use auditlog_service::retention::RetentionView;
use auditlog_store::{
    ActorCount, Credential, ExportJob, JobStatus, LegalHold, Org, Role, ServiceAccount,
};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use super::session::{secure, Viewer};

/// The frame of every page.
pub fn layout(viewer: Option<&Viewer>, title: &str, body: Markup) -> Markup {
    layout_with_head(viewer, title, html! {}, body)
}

/// The frame, with extra elements in `<head>` (a refresh).
pub fn layout_with_head(
    viewer: Option<&Viewer>,
    title: &str,
    head: Markup,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · auditlog" }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
                (head)
            }
            body {
                header.top {
                    a.brand href="/orgs" { "auditlog" }
                    @if let Some(viewer) = viewer {
                        nav aria-label="Account" {
                            a href="/orgs" { "Organizations" }
                            a href="/account/password" { "Password" }
                            span { (viewer.user().email) }
                            form method="post" action="/sign-out" {
                                input type="hidden" name="csrf" value=(viewer.csrf);
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A page as a response with the security headers.
pub fn page(status: StatusCode, markup: Markup) -> Response {
    secure((status, Html(markup.into_string())).into_response())
}

/// A page that explains a refusal or a failure.
pub fn error_page(
    viewer: Option<&Viewer>,
    status: StatusCode,
    title: &str,
    message: &str,
) -> Response {
    page(
        status,
        layout(
            viewer,
            title,
            html! {
                div.card role="alert" {
                    h1 { (title) }
                    p { (message) }
                    p { a href="/orgs" { "Back to your organizations" } }
                }
            },
        ),
    )
}

/// The sign-in form.
pub fn sign_in(csrf: &str, next: &str, error: Option<&str>, email: &str) -> Markup {
    layout(
        None,
        "Sign in",
        html! {
            div.card {
                h1 { "Sign in" }
                p.sub { "to view your organization's audit log" }
                @if let Some(error) = error {
                    p.notice.error role="alert" { (error) }
                }
                form method="post" action="/sign-in" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="next" value=(next);
                    div.field {
                        label for="email" { "Email" }
                        input #email type="email" name="email" value=(email) required autocomplete="username" autofocus;
                    }
                    div.field {
                        label for="password" { "Password" }
                        input #password type="password" name="password" required autocomplete="current-password";
                    }
                    button.primary type="submit" { "Sign in" }
                }
            }
        },
    )
}

/// The organizations the user belongs to.
pub fn orgs(viewer: &Viewer, memberships: &[(Org, Role)]) -> Markup {
    layout(
        Some(viewer),
        "Organizations",
        html! {
            h1 { "Organizations" }
            p.sub { "Select the organization whose audit log you want to view." }
            @if memberships.is_empty() {
                p.empty { "You are not a member of any organization yet." }
            } @else {
                table.list {
                    thead { tr { th { "Organization" } th { "Your role" } th { "Audit logs" } } }
                    tbody {
                        @for (org, role) in memberships {
                            tr {
                                td { a href={ "/orgs/" (org.name) "/audit-logs" } { (org.display_name) } " " span.tag { (org.name) } }
                                td { (role.as_str()) }
                                td { @if org.audit_logs_enabled { "enabled" } @else { "early access: not enrolled" } }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// The left-hand navigation of an organization: User Management → Audit Logs, etc.
pub fn org_nav(org: &Org, current: &str) -> Markup {
    let item = |href: String, label: &str, key: &str| {
        html! { a href=(href) class=[(current == key).then_some("current")] aria-current=[(current == key).then_some("page")] { (label) } }
    };
    html! {
        aside.side aria-label="Organization" {
            div.crumbs { a href="/orgs" { "Organizations" } " / " (org.display_name) }
            h2 { "User Management" }
            (item(format!("/orgs/{}/audit-logs", org.name), "Audit Logs", "audit-logs"))
            (item(format!("/orgs/{}/service-accounts", org.name), "Service Accounts", "service-accounts"))
            (item(format!("/orgs/{}/tokens", org.name), "API Tokens", "tokens"))
            (item(format!("/orgs/{}/retention", org.name), "Retention", "retention"))
        }
    }
}

/// What the audit-log page shows.
pub struct AuditLogView<'a> {
    /// How long events are kept, and from when the history is complete.
    pub retention: RetentionView,
    /// The organization.
    pub org: &'a Org,
    /// The catalog, for display names and groups.
    pub catalog: &'a Catalog,
    /// The rows.
    pub rows: Vec<EventRecord>,
    /// Selected actions.
    pub actions: &'a [String],
    /// Selected users.
    pub users: &'a [String],
    /// The date range as typed.
    pub from: &'a str,
    /// The date range as typed.
    pub to: &'a str,
    /// The search text.
    pub text: &'a str,
    /// Items per page.
    pub per_page: u32,
    /// Index of the first row within the filtered result.
    pub first_index: u64,
    /// Total matches, and whether exact.
    pub total: (u64, bool),
    /// How many of them are failed or refused attempts, and whether exact.
    pub not_done: (u64, bool),
    /// Users with counts for the filter pane.
    pub user_facets: Vec<ActorCount>,
    /// Action counts for the filter pane.
    pub action_counts: std::collections::HashMap<String, u64>,
    /// Links: first, previous, next, last (None when not applicable).
    pub links: [Option<String>; 4],
    /// The chart.
    pub chart: Markup,
    /// The current filter as query-string pairs (for the export form and page links).
    pub filter_pairs: Vec<(&'static str, String)>,
}

/// A time element showing UTC, upgraded to the viewer's timezone by the optional script.
fn time(at: Timestamp) -> Markup {
    let text = at.to_string();
    html! { time datetime=(text) data-local { (text[..19].replace('T', " ")) " UTC" } }
}

/// How long the log keeps events, and from when its history is complete.
fn retention_line(org: &Org, retention: &RetentionView) -> Markup {
    html! {
        p.sub.retention {
            @match retention.days {
                Some(days) => { "Events are kept for " (thousands(u64::from(days))) " days" }
                None => { "Events are kept until you choose a retention period" }
            }
            @if let Some(start) = retention.history_starts_at() {
                "; older ones were purged, so the history is complete from " (time(start))
            }
            ". " a href={ "/orgs/" (org.name) "/retention" } { "Retention and legal holds" }
        }
    }
}

/// The page of an organization's retention, legal holds and erasures (administrators).
pub fn retention_page(
    viewer: &Viewer,
    org: &Org,
    retention: &RetentionView,
    holds: &[LegalHold],
    notice: Option<&str>,
) -> Markup {
    let base = format!("/orgs/{}", org.name);
    layout(
        Some(viewer),
        "Retention and legal holds",
        html! {
            div.layout {
                (org_nav(org, "retention"))
                section {
                    h1 { "Retention and legal holds" }
                    @if let Some(notice) = notice { div.notice role="status" { p { (notice) } } }
                    h2 { "Retention" }
                    (retention_line(org, retention))
                    form.toolbar method="post" action={ (base) "/retention" } {
                        input type="hidden" name="csrf" value=(viewer.csrf);
                        label for="days" { "Keep events for (days)" }
                        input #days type="number" name="days" min="1" max=(retention.max_days)
                            value=[retention.organization_days]
                            placeholder=(retention.default_days.map_or("forever".to_string(), |d| format!("default: {d}")));
                        button.primary type="submit" { "Save" }
                    }
                    p.sub { "Up to " (thousands(u64::from(retention.max_days))) " days. Leave empty for this deployment's default ("
                        (retention.default_days.map_or("keep forever".to_string(), |d| format!("{d} days"))) "). Older events are purged every hour, except what a legal hold protects; every proof of the events that remain still verifies." }
                    h2 { "Legal holds" }
                    p.sub { "While a hold is live, nothing it covers is purged or erased." }
                    form.toolbar method="post" action={ (base) "/legal-holds" } {
                        input type="hidden" name="csrf" value=(viewer.csrf);
                        label for="reason" { "Reason" }
                        input #reason type="text" name="reason" required maxlength="512";
                        label for="subject" { "Person (actor id or email; empty: the whole organization)" }
                        input #subject type="text" name="subject" maxlength="256";
                        button.primary type="submit" { "Place hold" }
                    }
                    @if holds.is_empty() { p.empty { "No legal holds." } } @else {
                        table.list {
                            thead { tr { th { "Scope" } th { "Reason" } th { "Placed" } th { "Lifted" } th { span.visually-hidden { "Actions" } } } }
                            tbody {
                                @for hold in holds {
                                    tr {
                                        td { (hold.subject.as_deref().unwrap_or("Whole organization")) }
                                        td { (hold.reason) }
                                        td { (time(hold.placed_at)) " by " (hold.placed_by) }
                                        td {
                                            @if let Some(at) = hold.lifted_at { (time(at)) " by " (hold.lifted_by.as_deref().unwrap_or("")) } @else { span.tag { "live" } }
                                        }
                                        td {
                                            @if hold.lifted_at.is_none() {
                                                form method="post" action={ (base) "/legal-holds/" (hold.id) "/lift" } {
                                                    input type="hidden" name="csrf" value=(viewer.csrf);
                                                    button.danger type="submit" aria-label={ "Lift the hold: " (hold.reason) } { "Lift" }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    h2 { "Erase a person" }
                    p.sub { "Deletes a person's email, name, address and user agent from every event that names them (GDPR Art. 17). The events stay and every proof still verifies; the erasure is recorded without naming them. It cannot be undone." }
                    form.toolbar method="post" action={ (base) "/erasures" } {
                        input type="hidden" name="csrf" value=(viewer.csrf);
                        label for="erase-email" { "Email" }
                        input #erase-email type="email" name="email" maxlength="320";
                        label for="erase-id" { "Actor id" }
                        input #erase-id type="text" name="actor_id" maxlength="256";
                        button.danger type="submit" { "Erase" }
                    }
                }
            }
        },
    )
}

/// The audit-log page.
pub fn audit_log(viewer: &Viewer, view: AuditLogView<'_>) -> Markup {
    let org = view.org;
    let base = format!("/orgs/{}/audit-logs", org.name);
    let n_filters = view.actions.len()
        + view.users.len()
        + usize::from(!view.from.is_empty() || !view.to.is_empty())
        + usize::from(!view.text.is_empty());
    let shown_to = view.first_index + view.rows.len() as u64;
    let counted = |(n, exact): (u64, bool)| match exact {
        true => thousands(n),
        false => format!("more than {}", thousands(n)),
    };
    let (total, not_done) = (counted(view.total), counted(view.not_done));
    layout(
        Some(viewer),
        &format!("Audit Logs · {}", org.display_name),
        html! {
            div.layout {
                (org_nav(org, "audit-logs"))
                section {
                    h1 { "Audit Logs" }
                    p.sub { "Every administrative action in " (org.display_name) ", newest first. Times are shown in "
                        span data-timezone { "UTC" } "." }
                    (retention_line(org, &view.retention))
                    (view.chart)
                    details.filters open[n_filters > 0] {
                        summary { "Filters" @if n_filters > 0 { " (" (n_filters) " active)" } }
                        form.pane method="get" action=(base) {
                            fieldset {
                                legend { "Actions" }
                                @for (group, actions) in view.catalog.groups() {
                                    h3 { (group) }
                                    @for action in actions {
                                        label.check {
                                            input type="checkbox" name="action" value=(action.key) checked[view.actions.contains(&action.key)];
                                            span { (action.display_name) }
                                            @if let Some(n) = view.action_counts.get(&action.key) { span.count { (thousands(*n)) } }
                                        }
                                    }
                                }
                            }
                            fieldset {
                                legend { "Users" }
                                @if view.user_facets.is_empty() && view.users.is_empty() { p.sub { "No users in this range." } }
                                @for user in &view.users.iter().filter(|u| !view.user_facets.iter().any(|f| f.actor_email.as_deref() == Some(u.as_str()) || f.actor_id.as_deref() == Some(u.as_str()))).collect::<Vec<_>>() {
                                    label.check { input type="checkbox" name="user" value=(user) checked; span { (user) } }
                                }
                                @for user in &view.user_facets {
                                    @let key = user.actor_email.clone().or(user.actor_id.clone()).unwrap_or_default();
                                    @if !key.is_empty() {
                                        label.check {
                                            input type="checkbox" name="user" value=(key) checked[view.users.contains(&key)];
                                            span { (user.actor_email.as_deref().or(user.actor_name.as_deref()).unwrap_or(&key)) }
                                            span.count { (thousands(user.count)) }
                                        }
                                    }
                                }
                            }
                            div {
                                div.field {
                                    label for="from" { "Created from (UTC)" }
                                    input #from type="date" name="from" value=(view.from);
                                }
                                div.field {
                                    label for="to" { "Created to (UTC, inclusive)" }
                                    input #to type="date" name="to" value=(view.to);
                                }
                                div.field {
                                    label for="text" { "Search" }
                                    input #text type="search" name="q" value=(view.text) placeholder="names, emails, channels…";
                                }
                                input type="hidden" name="per_page" value=(view.per_page);
                            }
                            div.actions {
                                button.primary type="submit" { "Apply" }
                                a.button href={ (base) "?per_page=" (view.per_page) } { "Clear" }
                            }
                        }
                    }
                    div.toolbar {
                        form method="post" action={ "/orgs/" (org.name) "/exports" } {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            @for (key, value) in &view.filter_pairs { input type="hidden" name=(key) value=(value); }
                            label for="format" { "Export" }
                            select #format name="format" {
                                option value="jsonl" { "JSON Lines" }
                                option value="csv" { "CSV" }
                            }
                            label.check { input type="checkbox" name="gzip" value="true"; " gzip" }
                            button type="submit" { "Export" }
                        }
                    }
                    @if view.not_done.0 > 0 {
                        p.sub.not-done { (not_done) " failed or refused among these events (" code { "outcome" } " other than success)" }
                    }
                    @if view.rows.is_empty() {
                        p.empty { "No events match these filters." }
                    } @else {
                        div.table-wrap { table.events {
                            caption.visually-hidden { "Audit log events" }
                            thead { tr { th scope="col" { "Time" } th scope="col" { "Action" } th scope="col" { "User" } th scope="col" { "Target" } th scope="col" { "Message" } th scope="col" { "IP" } } }
                            tbody {
                                @for row in &view.rows {
                                    tr {
                                        td.time { @if let Some(at) = row.occurred_at { a href={ (base) "/" (row.id) } { (time(at)) } } }
                                        td {
                                            span.tag { (view.catalog.get(&row.action_key).map_or(row.action_key.as_str(), |a| a.display_name.as_str())) }
                                            @if !row.outcome.is_success() { " " span.tag.outcome { (row.outcome.as_str()) } }
                                        }
                                        td {
                                            @if let Some(real) = &row.impersonator {
                                                span.impersonator { "by " (real.email.as_deref().or(real.id.as_deref()).unwrap_or("someone")) " as " }
                                            }
                                            (row.actor_email.as_deref().or(row.actor_name.as_deref()).or(row.actor_id.as_deref()).unwrap_or("—"))
                                        }
                                        td { (row.target_name.as_deref().or(row.target_email.as_deref()).or(row.target_id.as_deref()).unwrap_or("—")) }
                                        td.msg { (row.message) }
                                        td.ip { (row.ip_address.as_deref().unwrap_or("—")) }
                                    }
                                }
                            }
                        } }
                    }
                    nav.pager aria-label="Pages" {
                        span {
                            @if view.rows.is_empty() { "0 of " (total) } @else { (thousands(view.first_index + 1)) "–" (thousands(shown_to)) " of " (total) }
                        }
                        span {
                            (pager_link(&view.links[0], "« First"))
                            " " (pager_link(&view.links[1], "‹ Previous"))
                            " " (pager_link(&view.links[2], "Next ›"))
                            " " (pager_link(&view.links[3], "Last »"))
                        }
                        form method="get" action=(base) {
                            @for (key, value) in &view.filter_pairs { input type="hidden" name=(key) value=(value); }
                            label for="per_page" { "Items per page" }
                            select #per_page name="per_page" {
                                @for n in [10u32, 25, 50, 100] { option value=(n) selected[n == view.per_page] { (n) } }
                            }
                            button type="submit" { "Show" }
                        }
                    }
                }
            }
        },
    )
}

fn pager_link(link: &Option<String>, label: &str) -> Markup {
    match link {
        Some(href) => html! { a.button href=(href) { (label) } },
        None => html! { span.button aria-disabled="true" { (label) } },
    }
}

/// `12345` → `12,345`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (idx, ch) in digits.chars().enumerate() {
        if idx > 0 && (digits.len() - idx).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Whether an event is proven in the organization's signed transparency log.
pub enum Proof {
    /// In the signed checkpoint of `size` events, whose root is `root` (base64).
    Proven {
        /// The checkpoint's tree size.
        size: u64,
        /// Its root hash.
        root: String,
    },
    /// The service could not prove it (the server's log says why).
    Failed,
}

/// One event's details.
pub fn event_details(
    viewer: &Viewer,
    org: &Org,
    catalog: &Catalog,
    event: &Event,
    record: &EventRecord,
    integrity: &Integrity,
    proof: &Proof,
) -> Markup {
    let action = catalog.get(&record.action_key);
    let meta = serde_json::to_string_pretty(&record.meta).unwrap_or_default();
    let optional = |value: &Option<String>| value.clone().unwrap_or_else(|| "—".to_string());
    html! {
        (layout(Some(viewer), "Event", html! {
            div.layout {
                (org_nav(org, "audit-logs"))
                section {
                    div.crumbs { a href={ "/orgs/" (org.name) "/audit-logs" } { "Audit Logs" } " / " (record.id) }
                    h1 { (action.map_or(record.action_key.as_str(), |a| a.display_name.as_str())) }
                    p.sub { (record.message) }
                    @if let Some(action) = action { p { (action.description) } }
                    dl.details {
                        dt { "Occurred" } dd {
                            @if let Some(at) = record.occurred_at { (time(at)) }
                            @if record.backfilled { " " span.tag { "backfilled" } " (sent well after it happened; the time is the sender's)" }
                        }
                        dt { "Recorded" } dd { (time(record.created_at)) }
                        dt { "Outcome" } dd {
                            (record.outcome.as_str())
                            @if let Some(reason) = &record.reason { " — " (reason) }
                        }
                        @if !record.redacted.is_empty() {
                            dt { "Redacted" } dd { "Redacted at ingest: " (record.redacted.join(", ")) }
                        }
                        dt { "Action key" } dd { code { (record.action_key) } }
                        dt { "Verb" } dd { (optional(&record.action_verb)) }
                        dt { "Actor" } dd { (optional(&record.actor_name)) " · " (optional(&record.actor_email)) " · " (optional(&record.actor_id)) " · " (optional(&record.actor_type)) }
                        @if let Some(real) = &record.impersonator {
                            dt { "Impersonated by" } dd { (optional(&real.email)) " · " (optional(&real.id)) " · " (real.kind.as_str()) }
                        }
                        dt { "Target" } dd { (optional(&record.target_name)) " · " (optional(&record.target_email)) " · " (optional(&record.target_id)) " · " (optional(&record.target_type)) }
                        dt { "Service" } dd { (optional(&record.service_name)) }
                        dt { "IP address" } dd { (optional(&record.ip_address)) }
                        dt { "User agent" } dd { (optional(&record.user_agent)) }
                        dt { "Request id" } dd { (optional(&record.request_id)) }
                        @let erased = auditlog_core::entry::erased_fields(&event.entry);
                        @if !erased.is_empty() {
                            dt { "Erased" } dd {
                                span.tag { "erased" } " "
                                (erased.join(", "))
                                " (deleted on request; the event's proof still verifies)"
                            }
                        }
                        dt { "Event id" } dd { code { (record.id) } }
                        dt { "Sequence" } dd { (event.seq) }
                        dt { "Hash" } dd { code { (record.hash) } }
                        dt { "Integrity" } dd {
                            @if integrity.hash_ok { span.ok { "✓ the hash matches this event and the one before it" } }
                            @else { span.bad { "✗ the hash does not match: this event or an earlier one was altered" } }
                            br;
                            @match integrity.checkpoint_seq {
                                Some(seq) => { "Covered by the signed checkpoint at seq " (seq) "." }
                                None => { "Not yet covered by a signed checkpoint (checkpoints are signed every minute)." }
                            }
                        }
                        dt { "Proof" } dd {
                            @match proof {
                                Proof::Proven { size, root } => {
                                    span.ok { "✓ proven in checkpoint " (size) }
                                    " (the organization's signed log of " (size) " events, root " code { (root) } "). "
                                    a href={ "/orgs/" (org.name) "/audit-logs/" (record.id) "/proof" } { "Download the proof" }
                                }
                                Proof::Failed => { span.bad { "✗ this event could not be proven in the signed log: the stored log is inconsistent" } }
                            }
                        }
                    }
                    @if !record.changes.is_empty() {
                        h2 { "Changes" }
                        div.table-wrap { table.changes {
                            thead { tr { th scope="col" { "Field" } th scope="col" { "Before" } th scope="col" { "After" } } }
                            tbody {
                                @for change in &record.changes {
                                    tr {
                                        td { code { (change.field) } }
                                        td.before { (change_value(&change.before)) }
                                        td.after { (change_value(&change.after)) }
                                    }
                                }
                            }
                        } }
                    }
                    h2 { "Metadata" }
                    pre.meta { (meta) }
                }
            }
        }))
    }
}

/// One side of a change as the details show it: JSON, or a dash when absent (not sent, or
/// erased).
fn change_value(value: &Option<serde_json::Value>) -> Markup {
    match value {
        Some(value) => html! { code { (value.to_string()) } },
        None => html! { "—" },
    }
}

/// An export job's progress and, when ready, its download.
pub fn export_status(viewer: &Viewer, org: &Org, job: &ExportJob) -> Markup {
    let running = matches!(job.status, JobStatus::Pending | JobStatus::Running);
    // Reloads itself until the job is done; no script needed.
    let head = html! { @if running { meta http-equiv="refresh" content="2"; } };
    html! {
        (layout_with_head(Some(viewer), "Export", head, html! {
            div.layout {
                (org_nav(org, "audit-logs"))
                section {
                    div.crumbs { a href={ "/orgs/" (org.name) "/audit-logs" } { "Audit Logs" } " / Export" }
                    h1 { "Export" }
                    @match job.status {
                        JobStatus::Pending | JobStatus::Running => {
                            p role="status" { "Preparing the export… " (job.progress) "%" }
                            progress max="100" value=(job.progress) aria-label="Export progress" { (job.progress) "%" }
                            p.sub { "This page refreshes by itself." }
                        }
                        JobStatus::Completed => {
                            p.notice role="status" { "Ready: " (thousands(job.total_records.unwrap_or(0))) " events." }
                            p { a.button.primary href={ "/orgs/" (org.name) "/exports/" (job.id) "/download" } { "Download" } }
                            @if let Some(expires) = job.expires_at { p.sub { "Available until " (time(expires)) "." } }
                            p.sub { "The file ends with a signed checkpoint: " code { "auditlog verify FILE" } " checks it offline." }
                        }
                        JobStatus::Failed => { p.notice.error role="alert" { "The export failed: " (job.error_message.as_deref().unwrap_or("unknown error")) } }
                        JobStatus::Expired => { p.notice { "This export has expired and its file was deleted." } }
                    }
                }
            }
        }))
    }
}

/// The organization's service accounts, with a just-created secret shown once.
pub fn service_accounts(
    viewer: &Viewer,
    org: &Org,
    accounts: &[ServiceAccount],
    created: Option<(&ServiceAccount, &str)>,
) -> Markup {
    layout(
        Some(viewer),
        "Service Accounts",
        html! {
            div.layout {
                (org_nav(org, "service-accounts"))
                section {
                    h1 { "Service Accounts" }
                    p.sub { "Machine credentials that can read and export this organization's audit log through the API." }
                    @if let Some((account, secret)) = created {
                        div.notice role="status" {
                            p { "Created " strong { (account.name) } ". Copy the secret now: it is not shown again." }
                            p { "Client id" } div.secret { (account.client_id) }
                            p { "Client secret" } div.secret { (secret) }
                        }
                    }
                    form.toolbar method="post" action={ "/orgs/" (org.name) "/service-accounts" } {
                        input type="hidden" name="csrf" value=(viewer.csrf);
                        label for="name" { "Name" }
                        input #name type="text" name="name" required maxlength="128";
                        button.primary type="submit" { "Create service account" }
                    }
                    @if accounts.is_empty() { p.empty { "No service accounts yet." } } @else {
                        table.list {
                            thead { tr { th { "Name" } th { "Client id" } th { "Created" } th { span.visually-hidden { "Actions" } } } }
                            tbody {
                                @for account in accounts {
                                    tr {
                                        td { (account.name) }
                                        td { code { (account.client_id) } }
                                        td { (time(account.created_at)) }
                                        td {
                                            form method="post" action={ "/orgs/" (org.name) "/service-accounts/" (account.id) "/delete" } {
                                                input type="hidden" name="csrf" value=(viewer.csrf);
                                                button.danger type="submit" aria-label={ "Delete " (account.name) } { "Delete" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// The viewer's own API tokens for an organization.
pub fn tokens(viewer: &Viewer, org: &Org, tokens: &[Credential], created: Option<&str>) -> Markup {
    let now = Timestamp::now();
    layout(
        Some(viewer),
        "API Tokens",
        html! {
            div.layout {
                (org_nav(org, "tokens"))
                section {
                    h1 { "API Tokens" }
                    p.sub { "Your personal tokens for this organization's API. Send one as " code { "Authorization: Bearer …" } "." }
                    @if let Some(token) = created {
                        div.notice role="status" { p { "Copy the token now: it is not shown again." } div.secret { (token) } }
                    }
                    form.toolbar method="post" action={ "/orgs/" (org.name) "/tokens" } {
                        input type="hidden" name="csrf" value=(viewer.csrf);
                        label for="token-name" { "Name" }
                        input #token-name type="text" name="name" required maxlength="128";
                        label for="days" { "Expires in" }
                        select #days name="days" {
                            option value="30" { "30 days" } option value="90" selected { "90 days" } option value="365" { "1 year" } option value="" { "never" }
                        }
                        button.primary type="submit" { "Create token" }
                    }
                    @if tokens.is_empty() { p.empty { "You have no tokens for this organization." } } @else {
                        table.list {
                            thead { tr { th { "Name" } th { "Created" } th { "Expires" } th { "State" } th { span.visually-hidden { "Actions" } } } }
                            tbody {
                                @for token in tokens {
                                    tr {
                                        td { (token.name) }
                                        td { (time(token.created_at)) }
                                        td { @match token.expires_at { Some(at) => (time(at)), None => "never" } }
                                        td { @if token.revoked_at.is_some() { "revoked" } @else if token.is_live(now) { "active" } @else { "expired" } }
                                        td {
                                            @if token.revoked_at.is_none() {
                                                form method="post" action={ "/orgs/" (org.name) "/tokens/" (token.id) "/revoke" } {
                                                    input type="hidden" name="csrf" value=(viewer.csrf);
                                                    button.danger type="submit" aria-label={ "Revoke " (token.name) } { "Revoke" }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// The change-password form.
pub fn password(viewer: &Viewer, message: Option<(bool, &str)>) -> Markup {
    layout(
        Some(viewer),
        "Password",
        html! {
            div.card {
                h1 { "Change password" }
                @if let Some((ok, text)) = message {
                    p class={ "notice" @if !ok { " error" } } role="status" { (text) }
                }
                form method="post" action="/account/password" {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    div.field { label for="current" { "Current password" } input #current type="password" name="current" autocomplete="current-password"; }
                    div.field { label for="new" { "New password (at least 10 characters)" } input #new type="password" name="new" required minlength="10" autocomplete="new-password"; }
                    button.primary type="submit" { "Change password" }
                }
            }
        },
    )
}

/// The page a sign-in link lands on: it continues with a same-site navigation, so the
/// SameSite=Strict session cookie set here is sent on the next request.
pub fn continue_to(target: &str) -> Markup {
    let head = html! { meta http-equiv="refresh" content={ "0; url=" (target) }; };
    html! {
        (layout_with_head(None, "Signed in", head, html! {
            div.card { h1 { "Signed in" } p { a href=(target) { "Continue to the audit log" } } }
        }))
    }
}
