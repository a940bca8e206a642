//! The conformance suite: behaviour every [`Store`](crate::Store) backend must show.
//!
//! Each case is a public async function that takes a fresh, empty store and panics with a
//! message naming what broke. A backend crate runs every case, one `#[tokio::test]` each,
//! with one line in an integration test:
//!
//! ```text
//! auditlog_store::conformance_tests!(async {
//!     let dir = tempfile::tempdir().unwrap();
//!     let store = MyStore::open(dir.path()).await.unwrap();
//!     (std::sync::Arc::new(store) as std::sync::Arc<dyn auditlog_store::Store>, dir)
//! });
//! ```
//!
//! The hand-written cases pin down the documented semantics on small corpora whose expected
//! answers are spelled out. The property cases compare the store with an in-memory reference
//! ([`reference_matches`]) on random corpora from a seeded generator ([`random_body`]), so a
//! failure names its round and replays identically.
//!
//! What the suite deliberately leaves open, because the contract does: how a backend orders
//! facet entries with equal counts, whether `AnyOf` compares case-insensitively (every value
//! the suite asks for is spelled as stored), and what `Text` does with a search that has no
//! words.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::{Debug, Display};
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, OnceLock};

use auditlog_core::chain::{self, ChainVerifier, Checkpoint, SignedCheckpoint, GENESIS};
use auditlog_core::query::{Column, Combine, Condition, Filter, Order, Position, Query, Start};
use auditlog_core::text::{event_words, matches, query_words};
use auditlog_core::timestamp::MS_PER_DAY;
use auditlog_core::{ActorType, Catalog, Event, EventBody, Timestamp};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::{
    Append, AppendOutcome, ChainHead, Count, Credential, CredentialKind, ExportJob, Facets,
    IdempotencyKey, JobStatus, NewOrg, Org, Role, ServiceAccount, Store, StoreError, User,
};

/// Expands to one `#[tokio::test]` per conformance case. `$make` is an async expression
/// (evaluated once per test) yielding `Arc<dyn Store>` for a fresh empty store; it may also
/// yield a guard kept alive for the test: make it `(Arc<dyn Store>, impl Sized)`.
///
/// The calling crate needs `tokio` with the `macros` and `rt-multi-thread` features.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@cases $make;
            orgs_create_find_list_enable,
            append_assigns_seq_and_chains,
            append_is_atomic,
            get_event_round_trips_and_is_scoped,
            reads_are_scoped_to_the_org,
            filters_match_columns_text_and_time,
            order_and_paging,
            property_paging_matches_reference,
            facets_match_reference,
            daily_counts_match_reference,
            checkpoints_round_trip,
            events_by_seq_pages,
            concurrent_appends_keep_chains,
            disk_bytes_after_appends,
            restore_keeps_ids_and_chain,
            users_create_find_password,
            roles_set_list_and_isolate,
            service_accounts_lifecycle,
            credentials_round_trip_and_filter,
            credentials_revoke_liveness_purge,
            idempotent_append_replays_and_conflicts,
            idempotent_append_concurrent_same_key,
            export_jobs_round_trip_and_update,
            export_jobs_claim_and_expire,
        );
    };
    (@cases $make:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                // The guard (a temporary directory, a database) lives until the case ends.
                let (store, _guard) = $crate::conformance::Fixture::into_parts($make.await);
                $crate::conformance::$case(store).await;
            }
        )+
    };
}

/// What a backend's fixture expression may yield: a store, or a store with a guard that must
/// outlive the test (a temporary directory, a database handle).
pub trait Fixture {
    /// What is kept alive for the test.
    type Guard;
    /// The store under test and its guard.
    fn into_parts(self) -> (Arc<dyn Store>, Self::Guard);
}

impl Fixture for Arc<dyn Store> {
    type Guard = ();
    fn into_parts(self) -> (Arc<dyn Store>, ()) {
        (self, ())
    }
}

impl<G> Fixture for (Arc<dyn Store>, G) {
    type Guard = G;
    fn into_parts(self) -> (Arc<dyn Store>, G) {
        self
    }
}

// ---------------------------------------------------------------------------------------
// Building events.
// ---------------------------------------------------------------------------------------

/// A realistic, valid event body: `actor` is the actor's email (its local part gives the
/// actor id and name), the verb and target type come from the built-in catalog when it knows
/// `action`, and the request came from a browser on a documentation address.
pub fn body(action: &str, actor: &str, occurred_at_ms: i64) -> EventBody {
    let catalog_action = catalog().get(action);
    let local = actor.split('@').next().unwrap_or(actor);
    let verb = match catalog_action {
        Some(known) => known.verb.clone(),
        None => action.rsplit('_').next().unwrap_or(action).to_string(),
    };
    EventBody {
        action_key: action.to_string(),
        action_verb: Some(verb),
        actor_id: Some(format!("user-{local}")),
        actor_email: Some(actor.to_string()),
        actor_name: Some(capitalized(local)),
        actor_type: ActorType::User,
        target_id: None,
        target_email: None,
        target_name: None,
        target_type: catalog_action.map(|known| known.target_type.clone()),
        service_name: Some("console".to_string()),
        ip_address: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10))),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0".to_string()),
        request_id: None,
        meta: Map::new(),
        occurred_at: ts(occurred_at_ms),
    }
}

/// A random but realistic event body, drawn from fixed pools of actions, actors, targets,
/// services, addresses and `meta` words, at one of `times`. Actors and targets are fixed
/// profiles (an id always comes with the same email and name), so that every way of grouping
/// actors gives the same facets. Deterministic for a seeded `rng`.
pub fn random_body(rng: &mut StdRng, times: &[Timestamp]) -> EventBody {
    let action = *pick(rng, ACTIONS);
    let catalog_action = catalog().get(action);
    let (actor_id, actor_email, actor_name, actor_type) = *pick(rng, ACTORS);
    let target = rng.gen_bool(0.85).then(|| *pick(rng, TARGETS));
    let ip_address = match rng.gen_range(0..4) {
        0 | 1 => None,
        2 => Some(IpAddr::V4(*pick(rng, IPV4))),
        _ => Some(IpAddr::V6(
            pick(rng, IPV6).parse().expect("valid IPv6 literal"),
        )),
    };
    EventBody {
        action_key: action.to_string(),
        action_verb: catalog_action.map(|known| known.verb.clone()),
        actor_id: actor_id.map(str::to_string),
        actor_email: actor_email.map(str::to_string),
        actor_name: actor_name.map(str::to_string),
        actor_type,
        target_id: target.and_then(|t| t.0).map(str::to_string),
        target_email: target.and_then(|t| t.1).map(str::to_string),
        target_name: target.and_then(|t| t.2).map(str::to_string),
        target_type: target.map(|t| t.3.to_string()),
        service_name: pick(rng, SERVICES).map(str::to_string),
        ip_address,
        user_agent: rng
            .gen_bool(0.5)
            .then(|| pick(rng, USER_AGENTS).to_string()),
        request_id: rng
            .gen_bool(0.5)
            .then(|| format!("req-{:08x}", rng.gen::<u32>())),
        meta: random_meta(rng),
        occurred_at: *pick(rng, times),
    }
}

const ACTIONS: &[&str] = &[
    "channel_created",
    "channel_deleted",
    "group_assigned_to_channel",
    "invitation_created",
    "organization_updated",
    "organization_user_added",
    "authentication_success",
    "policy_created",
    "service_account_created",
    "token_revoked",
];

/// `(actor_id, actor_email, actor_name, actor_type)`.
type ActorProfile = (
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    ActorType,
);

const ACTORS: &[ActorProfile] = &[
    (
        Some("u-alice"),
        Some("alice@example.com"),
        Some("Alice Smith"),
        ActorType::User,
    ),
    (
        Some("u-bob"),
        Some("bob@example.org"),
        Some("Bob Jones"),
        ActorType::User,
    ),
    (
        None,
        Some("carol@example.com"),
        Some("Carol Été"),
        ActorType::User,
    ),
    (
        Some("u-zoe"),
        Some("zoë@例え.jp"),
        Some("Zoë Ünal"),
        ActorType::User,
    ),
    (None, Some("dave@example.net"), None, ActorType::User),
    (
        Some("sa-ci-bot"),
        None,
        Some("CI Bot"),
        ActorType::ServiceAccount,
    ),
    (Some("sa-mirror"), None, None, ActorType::ServiceAccount),
    (Some("system"), None, None, ActorType::System),
];

/// `(target_id, target_email, target_name, target_type)`.
type TargetProfile = (
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    &'static str,
);

const TARGETS: &[TargetProfile] = &[
    (Some("ch-ml-prod"), None, Some("ml-prod"), "channel"),
    (Some("ch-ml-staging"), None, Some("ml-staging"), "channel"),
    (Some("ch-2"), None, Some("Production Data"), "channel"),
    // Shares its id with an actor: `actor` and `target` filters must not mix them up.
    (
        Some("u-bob"),
        Some("bob@example.org"),
        Some("Bob Jones"),
        "user",
    ),
    (None, Some("erin@example.com"), None, "invitation"),
    (Some("pol-7"), None, Some("Strict Policy"), "policy"),
    (Some("tok-1"), None, None, "token"),
    (Some("grp-ds"), None, Some("Data Science"), "group"),
];

const SERVICES: &[Option<&str>] = &[Some("api"), Some("iam"), Some("repo-sync"), None];

const IPV4: &[Ipv4Addr] = &[
    Ipv4Addr::new(10, 0, 0, 7),
    Ipv4Addr::new(192, 168, 1, 20),
    Ipv4Addr::new(203, 0, 113, 5),
];

const IPV6: &[&str] = &["2001:db8::42", "::1", "fe80::1ff:fe23:4567:890a"];

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Macintosh) Safari/605.1",
    "conda/24.1.2 requests/2.31",
    "zebrafish-cli/0.9",
];

const META_KEYS: &[&str] = &["reason", "note", "details", "tags", "count", "dry_run"];

const META_WORDS: &[&str] = &[
    "quarterly",
    "cleanup",
    "prod",
    "production",
    "staging",
    "Straße",
    "ÉTÉ",
    "naïve",
    "東京",
    "alpha",
    "beta",
    "x1",
    "ml-ops",
];

fn random_meta(rng: &mut StdRng) -> Map<String, Value> {
    let mut meta = Map::new();
    for _ in 0..rng.gen_range(0..=3) {
        let key = *pick(rng, META_KEYS);
        let value = match rng.gen_range(0..7) {
            0 | 1 => Value::String(random_phrase(rng)),
            2 => json!(rng.gen_range(-5..500)),
            3 => json!(rng.gen_bool(0.5)),
            4 => json!([*pick(rng, META_WORDS), rng.gen_range(0..10)]),
            5 => json!({"name": random_phrase(rng), "inner": {"level": rng.gen_range(0..3)}}),
            _ => Value::Null,
        };
        meta.insert(key.to_string(), value);
    }
    meta
}

fn random_phrase(rng: &mut StdRng) -> String {
    let n_words = rng.gen_range(1..=3);
    let words: Vec<&str> = (0..n_words).map(|_| *pick(rng, META_WORDS)).collect();
    words.join(" ")
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    items.choose(rng).expect("pools are not empty")
}

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(Catalog::builtin)
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms).expect("test timestamps are between 1970 and 9999")
}

/// 2026-03-02T00:00:00Z, the first day of the suite's corpora.
fn base_time() -> Timestamp {
    Timestamp::parse("2026-03-02T00:00:00Z").expect("valid timestamp")
}

// ---------------------------------------------------------------------------------------
// The reference semantics.
// ---------------------------------------------------------------------------------------

/// Whether `event` matches `filter`, evaluated in memory from the documentation of
/// `auditlog_core::query`: `AnyOf` is "the column equals one of the values" (`actor` tests
/// `actor_id` and `actor_email`, `target` tests `target_id` and `target_email`,
/// `actor_type` its wire name), `Text` is [`auditlog_core::text::matches`] over the event's
/// words, conditions combine by `combine` (no conditions select everything), and `from` and
/// `to` are inclusive bounds on `occurred_at`, always ANDed.
pub fn reference_matches(filter: &Filter, event: &Event) -> bool {
    let body = &event.body;
    // `Option::is_none_or` would read better but is newer than the workspace's MSRV.
    let in_range = filter.from.into_iter().all(|from| body.occurred_at >= from)
        && filter.to.into_iter().all(|to| body.occurred_at <= to);
    if !in_range {
        return false;
    }
    if filter.conditions.is_empty() {
        return true;
    }
    let mut results = filter.conditions.iter().map(|condition| match condition {
        Condition::AnyOf { column, values } => column_values(*column, body)
            .into_iter()
            .any(|value| values.iter().any(|wanted| wanted == value)),
        Condition::Text(text) => matches(&event_words(body), &query_words(text)),
    });
    match filter.combine {
        Combine::And => results.all(|matched| matched),
        Combine::Or => results.any(|matched| matched),
    }
}

/// The values a column has for an event: none, one, or (for `actor` and `target`) two.
fn column_values(column: Column, body: &EventBody) -> Vec<&str> {
    let fields: [Option<&str>; 2] = match column {
        Column::ActionKey => [Some(body.action_key.as_str()), None],
        Column::ActionVerb => [body.action_verb.as_deref(), None],
        Column::ActorId => [body.actor_id.as_deref(), None],
        Column::ActorEmail => [body.actor_email.as_deref(), None],
        Column::ActorType => [Some(body.actor_type.as_str()), None],
        Column::Actor => [body.actor_id.as_deref(), body.actor_email.as_deref()],
        Column::TargetId => [body.target_id.as_deref(), None],
        Column::TargetEmail => [body.target_email.as_deref(), None],
        Column::TargetType => [body.target_type.as_deref(), None],
        Column::Target => [body.target_id.as_deref(), body.target_email.as_deref()],
        Column::ServiceName => [body.service_name.as_deref(), None],
    };
    fields.into_iter().flatten().collect()
}

/// The events of `events` that match `filter`, in `order`.
fn reference_query(events: &[Event], filter: &Filter, order: Order) -> Vec<Event> {
    let mut selected: Vec<Event> = events
        .iter()
        .filter(|event| reference_matches(filter, event))
        .cloned()
        .collect();
    selected.sort_by_key(sort_key);
    if order == Order::NewestFirst {
        selected.reverse();
    }
    selected
}

fn sort_key(event: &Event) -> (Timestamp, u64) {
    (event.body.occurred_at, event.seq)
}

fn position(event: &Event) -> Position {
    Position {
        occurred_at: event.body.occurred_at,
        seq: event.seq,
    }
}

// ---------------------------------------------------------------------------------------
// Random filters and text.
// ---------------------------------------------------------------------------------------

/// A random filter whose values are mostly drawn from `corpus`, with time bounds near
/// `times` (exactly on them, or one millisecond either side).
fn random_filter(rng: &mut StdRng, corpus: &[Event], times: &[Timestamp]) -> Filter {
    let n_conditions = *pick(rng, &[0, 1, 1, 2, 2, 3]);
    let conditions = (0..n_conditions)
        .map(|_| random_condition(rng, corpus))
        .collect();
    let combine = if rng.gen_bool(0.5) {
        Combine::And
    } else {
        Combine::Or
    };
    let from = rng.gen_bool(0.3).then(|| near(rng, times));
    let to = rng.gen_bool(0.3).then(|| near(rng, times));
    Filter {
        conditions,
        combine,
        from,
        to,
    }
}

fn near(rng: &mut StdRng, times: &[Timestamp]) -> Timestamp {
    let at = *pick(rng, times);
    at.plus_millis(*pick(rng, &[0, 0, -1, 1]))
}

fn random_condition(rng: &mut StdRng, corpus: &[Event]) -> Condition {
    if rng.gen_bool(0.25) {
        return Condition::Text(random_text(rng, corpus));
    }
    let column = *pick(rng, &Column::ALL);
    let n_values = rng.gen_range(1..=3);
    let values = (0..n_values)
        .map(|_| {
            let event = pick(rng, corpus);
            let present = column_values(column, &event.body);
            if present.is_empty() || rng.gen_bool(0.08) {
                "no-such-value@example.com".to_string()
            } else {
                pick(rng, &present).to_string()
            }
        })
        .collect();
    Condition::AnyOf { column, values }
}

/// A search string made of prefixes of one event's words (sometimes upper-cased, sometimes
/// with a word no event has, sometimes from the fields that are not searchable), joined by
/// punctuation or spaces.
fn random_text(rng: &mut StdRng, corpus: &[Event]) -> String {
    let event = pick(rng, corpus);
    if rng.gen_bool(0.08) {
        // user_agent and request_id are not among an event's searchable words.
        let unsearchable = [&event.body.user_agent, &event.body.request_id];
        if let Some(text) = pick(rng, &unsearchable) {
            return text.clone();
        }
    }
    let words = event_words(&event.body);
    let n_words = rng.gen_range(1..=3);
    let parts: Vec<String> = (0..n_words)
        .map(|_| {
            if rng.gen_bool(0.07) {
                return "zqxj".to_string();
            }
            let chars: Vec<char> = pick(rng, &words).chars().collect();
            let len = rng.gen_range(1..=chars.len());
            let prefix: String = chars[..len].iter().collect();
            if rng.gen_bool(0.3) {
                prefix.to_uppercase()
            } else {
                prefix
            }
        })
        .collect();
    parts.join(*pick(rng, &[" ", "-", ".", "  ", "/", ", "]))
}

// ---------------------------------------------------------------------------------------
// Store helpers.
// ---------------------------------------------------------------------------------------

fn ok<T>(result: Result<T, StoreError>, what: impl Display) -> T {
    result.unwrap_or_else(|e| panic!("{what} failed: {e} ({e:?})"))
}

async fn make_org(store: &dyn Store, name: &str) -> Org {
    let new = NewOrg {
        name: name.to_string(),
        display_name: format!("{name} Inc."),
        audit_logs_enabled: true,
    };
    ok(store.create_org(new).await, format!("create_org({name:?})"))
}

fn to(org: &Org, body: EventBody) -> Append {
    Append {
        org_id: org.id,
        body,
    }
}

/// Appends a batch that must succeed and checks the answer's shape: one event per appended
/// one, in batch order, with the appended organization and body.
async fn append_ok(store: &dyn Store, batch: Vec<Append>) -> Vec<Event> {
    let events = ok(store.append(batch.clone()).await, "append");
    assert_appended(&batch, &events, "append");
    events
}

/// What an append returned has one event per appended one, in batch order, with the
/// appended organization and body.
fn assert_appended(batch: &[Append], events: &[Event], context: &str) {
    assert_eq!(
        events.len(),
        batch.len(),
        "{context} of {} events returned {} events",
        batch.len(),
        events.len()
    );
    for (event_idx, (appended, event)) in batch.iter().zip(events).enumerate() {
        assert_eq!(
            event.org_id, appended.org_id,
            "{context} returned event {event_idx} of the batch with another organization"
        );
        assert_body_eq(
            &appended.body,
            &event.body,
            &format!("{context} returned event {event_idx} of the batch (batch order)"),
        );
    }
}

/// Appends `bodies` to one organization in batches of `batch_size`.
async fn append_all(
    store: &dyn Store,
    org: &Org,
    bodies: Vec<EventBody>,
    batch_size: usize,
) -> Vec<Event> {
    let mut events = Vec::with_capacity(bodies.len());
    for chunk in bodies.chunks(batch_size) {
        let batch = chunk.iter().map(|b| to(org, b.clone())).collect();
        events.extend(append_ok(store, batch).await);
    }
    events
}

/// Every event of an organization through `events_by_seq`, checked against the chain with
/// [`ChainVerifier`]; also checks that `chain_head` agrees with the verified head.
async fn verified_chain(store: &dyn Store, org_id: Uuid) -> Vec<Event> {
    const PAGE: u32 = 100;
    let mut verifier = ChainVerifier::new(org_id);
    let mut events: Vec<Event> = Vec::new();
    loop {
        let after = events.last().map_or(0, |e| e.seq);
        let page = ok(
            store.events_by_seq(org_id, after, PAGE).await,
            format!("events_by_seq({org_id}, {after}, {PAGE})"),
        );
        assert!(
            page.len() <= PAGE as usize,
            "events_by_seq returned {} events for limit {PAGE}",
            page.len()
        );
        for event in &page {
            verifier.push(event).unwrap_or_else(|e| {
                panic!("the chain of organization {org_id} does not verify: {e}")
            });
        }
        let done = page.len() < PAGE as usize;
        events.extend(page);
        if done {
            break;
        }
    }
    let head = ok(store.chain_head(org_id).await, "chain_head");
    assert_eq!(
        (head.seq, head.hash),
        verifier.head(),
        "chain_head of organization {org_id} is not the head of its verified chain"
    );
    events
}

async fn count_all(store: &dyn Store, org_id: Uuid, filter: &Filter) -> Count {
    ok(
        store.count(org_id, filter, u64::MAX).await,
        format!("count({filter:?})"),
    )
}

/// One query with `limit` 1000 from the start: every event of small corpora.
async fn query_all(store: &dyn Store, org_id: Uuid, filter: &Filter, order: Order) -> Vec<Event> {
    let query = Query {
        filter: filter.clone(),
        order,
        limit: 1000,
        start: Start::Offset(0),
    };
    ok(
        store.query(org_id, &query).await,
        format!("query({query:?})"),
    )
}

/// Walks every page by keyset: each page continues after the last event of the one before,
/// until a page is shorter than `limit`. `max_events` bounds the walk so that a backend
/// that repeats pages fails instead of looping.
async fn walk_keyset(
    store: &dyn Store,
    org_id: Uuid,
    filter: &Filter,
    order: Order,
    limit: u32,
    max_events: usize,
) -> Vec<Event> {
    let mut events: Vec<Event> = Vec::new();
    let mut start = Start::Offset(0);
    loop {
        let query = Query {
            filter: filter.clone(),
            order,
            limit,
            start,
        };
        let page = ok(
            store.query(org_id, &query).await,
            format!("query({query:?})"),
        );
        assert!(
            page.len() <= limit as usize,
            "query returned {} events for limit {limit}: {query:?}",
            page.len()
        );
        let full = page.len() == limit as usize;
        if let Some(last) = page.last() {
            start = Start::After(position(last));
        }
        events.extend(page);
        assert!(
            events.len() <= max_events,
            "a keyset walk returned more events ({}) than the organization has ({max_events}): pages repeat; {query:?}",
            events.len()
        );
        if !full {
            return events;
        }
    }
}

/// Walks every page by offset, until a page is shorter than `limit`.
async fn walk_offset(
    store: &dyn Store,
    org_id: Uuid,
    filter: &Filter,
    order: Order,
    limit: u32,
    max_events: usize,
) -> Vec<Event> {
    let mut events: Vec<Event> = Vec::new();
    loop {
        let query = Query {
            filter: filter.clone(),
            order,
            limit,
            start: Start::Offset(events.len() as u64),
        };
        let page = ok(
            store.query(org_id, &query).await,
            format!("query({query:?})"),
        );
        assert!(
            page.len() <= limit as usize,
            "query returned {} events for limit {limit}: {query:?}",
            page.len()
        );
        let full = page.len() == limit as usize;
        events.extend(page);
        assert!(
            events.len() <= max_events,
            "an offset walk returned more events ({}) than the organization has ({max_events}): pages repeat; {query:?}",
            events.len()
        );
        if !full {
            return events;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Assertions with messages that name what differs.
// ---------------------------------------------------------------------------------------

fn assert_body_eq(expected: &EventBody, actual: &EventBody, context: &str) {
    macro_rules! fields {
        ($($field:ident),+) => {$(
            assert_eq!(
                actual.$field, expected.$field,
                "{context}: field `{}` differs (left: stored, right: appended)",
                stringify!($field)
            );
        )+};
    }
    fields!(
        action_key,
        action_verb,
        actor_id,
        actor_email,
        actor_name,
        actor_type,
        target_id,
        target_email,
        target_name,
        target_type,
        service_name,
        ip_address,
        user_agent,
        request_id,
        meta,
        occurred_at
    );
    assert_eq!(actual, expected, "{context}: bodies differ");
}

fn assert_event_eq(expected: &Event, actual: &Event, context: &str) {
    assert_eq!(actual.id, expected.id, "{context}: field `id` differs");
    assert_eq!(
        actual.org_id, expected.org_id,
        "{context}: field `org_id` differs"
    );
    assert_eq!(actual.seq, expected.seq, "{context}: field `seq` differs");
    assert_eq!(
        actual.created_at, expected.created_at,
        "{context}: field `created_at` differs"
    );
    assert_eq!(
        actual.hash, expected.hash,
        "{context}: field `hash` differs"
    );
    assert_body_eq(&expected.body, &actual.body, context);
}

/// Same events, same order; on a difference, prints both as `seq@occurred_at` lists.
fn assert_same_events(expected: &[Event], actual: &[Event], context: &str) {
    let describe = |events: &[Event]| -> Vec<String> {
        events
            .iter()
            .map(|e| format!("{}@{}", e.seq, e.body.occurred_at.as_millis()))
            .collect()
    };
    let expected_keys: Vec<(Uuid, u64)> = expected.iter().map(|e| (e.org_id, e.seq)).collect();
    let actual_keys: Vec<(Uuid, u64)> = actual.iter().map(|e| (e.org_id, e.seq)).collect();
    if expected_keys != actual_keys {
        let first_difference = expected_keys
            .iter()
            .zip(&actual_keys)
            .position(|(e, a)| e != a)
            .unwrap_or(expected_keys.len().min(actual_keys.len()));
        panic!(
            "{context}: expected {} events, got {}; first difference at index {first_difference}\n  expected (seq@ms): {:?}\n  got      (seq@ms): {:?}",
            expected.len(),
            actual.len(),
            describe(expected),
            describe(actual),
        );
    }
    for (expected, actual) in expected.iter().zip(actual) {
        assert_event_eq(
            expected,
            actual,
            &format!("{context}: event seq {}", expected.seq),
        );
    }
}

/// A count of a filter with `cap` is exact, or (when at least `cap` events match) says it
/// stopped at the cap.
fn assert_capped_count(count: Count, n_expected: usize, cap: u64, context: &str) {
    let n_expected = n_expected as u64;
    let acceptable = (count.exact && count.n == n_expected)
        || (!count.exact && count.n == cap && n_expected >= cap);
    assert!(
        acceptable,
        "{context}: count with cap {cap} returned {count:?}, but {n_expected} events match \
         (expected the exact count, or n = cap and exact = false when at least cap match)"
    );
}

/// Checks a facet list against reference counts: the right entries, exact counts, most
/// frequent first, at most `max_each`, and no entry left out that is more frequent than one
/// kept (ties at the cut may go either way).
fn assert_top_counts<K: Eq + Hash + Debug>(
    got: &[(K, u64)],
    expected: &HashMap<K, u64>,
    max_each: usize,
    context: &str,
) {
    assert_eq!(
        got.len(),
        expected.len().min(max_each),
        "{context}: {} entries returned; {} distinct values match and max_each is {max_each}; got {got:?}",
        got.len(),
        expected.len()
    );
    let mut seen = HashSet::new();
    for (key, count) in got {
        assert!(
            seen.insert(key),
            "{context}: {key:?} is listed twice: {got:?}"
        );
        match expected.get(key) {
            Some(want) => assert_eq!(
                count, want,
                "{context}: {key:?} counted {count}, but {want} matching events have it"
            ),
            None => panic!("{context}: {key:?} is listed but no matching event has it"),
        }
    }
    for pair in got.windows(2) {
        assert!(
            pair[0].1 >= pair[1].1,
            "{context}: not sorted by count, most frequent first: {got:?}"
        );
    }
    if let Some(&(_, lowest_kept)) = got.last() {
        for (key, count) in expected {
            assert!(
                seen.contains(key) || *count <= lowest_kept,
                "{context}: {key:?} ({count} events) was left out while an entry with {lowest_kept} was kept"
            );
        }
    }
}

type ActorKey = (Option<String>, Option<String>);

fn assert_facets(
    facets: &Facets,
    events: &[Event],
    filter: &Filter,
    max_each: usize,
    context: &str,
) {
    let mut actions: HashMap<String, u64> = HashMap::new();
    let mut actors: HashMap<ActorKey, u64> = HashMap::new();
    let mut names: HashMap<ActorKey, HashSet<Option<String>>> = HashMap::new();
    for event in events.iter().filter(|e| reference_matches(filter, e)) {
        let body = &event.body;
        *actions.entry(body.action_key.clone()).or_default() += 1;
        let key = (body.actor_id.clone(), body.actor_email.clone());
        *actors.entry(key.clone()).or_default() += 1;
        names
            .entry(key)
            .or_default()
            .insert(body.actor_name.clone());
    }
    assert_top_counts(
        &facets.actions,
        &actions,
        max_each,
        &format!("{context}: facets.actions"),
    );
    let got_actors: Vec<(ActorKey, u64)> = facets
        .actors
        .iter()
        .map(|a| ((a.actor_id.clone(), a.actor_email.clone()), a.count))
        .collect();
    assert_top_counts(
        &got_actors,
        &actors,
        max_each,
        &format!("{context}: facets.actors (actor_id, actor_email)"),
    );
    for actor in &facets.actors {
        let key = (actor.actor_id.clone(), actor.actor_email.clone());
        let seen = &names[&key];
        assert!(
            seen.contains(&actor.actor_name),
            "{context}: facets.actors gives {key:?} the name {:?}, but its events carry {seen:?}",
            actor.actor_name
        );
    }
}

fn reference_daily_counts(events: &[Event], filter: &Filter) -> Vec<(i64, u64)> {
    let mut days: BTreeMap<i64, u64> = BTreeMap::new();
    for event in events.iter().filter(|e| reference_matches(filter, e)) {
        *days.entry(event.body.occurred_at.day()).or_default() += 1;
    }
    days.into_iter().collect()
}

/// A random corpus over two new organizations, appended in batches that mix them.
struct RandomCorpus {
    orgs: [Org; 2],
    /// Each organization's stored events, in `seq` order.
    events: [Vec<Event>; 2],
}

impl RandomCorpus {
    async fn build(
        store: &dyn Store,
        rng: &mut StdRng,
        prefix: &str,
        n_events: usize,
        times: &[Timestamp],
    ) -> RandomCorpus {
        let orgs = [
            make_org(store, &format!("{prefix}-a")).await,
            make_org(store, &format!("{prefix}-b")).await,
        ];
        let mut events: [Vec<Event>; 2] = [Vec::new(), Vec::new()];
        let mut remaining = n_events;
        while remaining > 0 {
            let batch_size = rng.gen_range(1..=60).min(remaining);
            remaining -= batch_size;
            let batch: Vec<Append> = (0..batch_size)
                .map(|_| {
                    let org = &orgs[usize::from(rng.gen_bool(0.4))];
                    to(org, random_body(rng, times))
                })
                .collect();
            for event in append_ok(store, batch).await {
                let org_idx = usize::from(event.org_id == orgs[1].id);
                events[org_idx].push(event);
            }
        }
        RandomCorpus { orgs, events }
    }

    /// Both organizations' events: filter values come from here, so a filter often names
    /// values that only the other organization has.
    fn all_events(&self) -> Vec<Event> {
        self.events.concat()
    }
}

/// Few distinct instants (so ties in `occurred_at` are common) over three UTC days, some on
/// a day's first and last millisecond.
fn tie_heavy_times() -> Vec<Timestamp> {
    let base = base_time();
    [
        0,
        1,
        999,
        3_600_000,
        MS_PER_DAY - 1,
        MS_PER_DAY,
        2 * MS_PER_DAY + 5,
    ]
    .into_iter()
    .map(|offset| base.plus_millis(offset))
    .collect()
}

// ---------------------------------------------------------------------------------------
// The cases.
// ---------------------------------------------------------------------------------------

/// Organizations: create, find by name and by id, list by name, a taken name is a conflict,
/// enrolment can be switched, unknown names and ids are `None`.
pub async fn orgs_create_find_list_enable(store: Arc<dyn Store>) {
    let store = &*store;
    assert_eq!(
        ok(store.list_orgs().await, "list_orgs"),
        Vec::<Org>::new(),
        "a fresh store lists no organizations"
    );
    let before = Timestamp::now().plus_millis(-300_000);
    let specs = [
        ("zeta", "Zeta Corp", true),
        ("alpha", "Alpha — Ålesund ✓", false),
        ("mid-org", "Mid Org", true),
    ];
    let mut created = Vec::new();
    for (name, display_name, enabled) in specs {
        let new = NewOrg {
            name: name.to_string(),
            display_name: display_name.to_string(),
            audit_logs_enabled: enabled,
        };
        let org = ok(store.create_org(new).await, format!("create_org({name})"));
        assert_eq!(org.name, name, "create_org returned another name");
        assert_eq!(
            org.display_name, display_name,
            "create_org returned another display name"
        );
        assert_eq!(
            org.audit_logs_enabled, enabled,
            "create_org returned another enrolment"
        );
        assert!(!org.id.is_nil(), "create_org returned the nil id");
        let after = Timestamp::now().plus_millis(300_000);
        assert!(
            before <= org.created_at && org.created_at <= after,
            "org created_at {} is not the time of creation",
            org.created_at
        );
        created.push(org);
    }
    let ids: HashSet<Uuid> = created.iter().map(|o| o.id).collect();
    assert_eq!(
        ids.len(),
        created.len(),
        "organizations got the same id: {created:?}"
    );

    for org in &created {
        let by_name = ok(store.find_org(&org.name).await, "find_org(name)");
        assert_eq!(
            by_name.as_ref(),
            Some(org),
            "find_org by name {:?}",
            org.name
        );
        let by_id = ok(store.find_org(&org.id.to_string()).await, "find_org(id)");
        assert_eq!(by_id.as_ref(), Some(org), "find_org by id {}", org.id);
    }

    let mut by_name = created.clone();
    by_name.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(
        ok(store.list_orgs().await, "list_orgs"),
        by_name,
        "list_orgs lists every organization, by name"
    );

    let duplicate = NewOrg {
        name: "alpha".to_string(),
        display_name: "Another Alpha".to_string(),
        audit_logs_enabled: true,
    };
    match store.create_org(duplicate).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("creating a second organization named \"alpha\" gave {other:?}, expected Err(StoreError::Conflict)"),
    }
    assert_eq!(
        ok(store.list_orgs().await, "list_orgs"),
        by_name,
        "a refused duplicate changed the organizations"
    );

    let alpha = &created[1];
    let enabled = ok(
        store.set_org_enabled(alpha.id, true).await,
        "set_org_enabled",
    );
    let expected = Org {
        audit_logs_enabled: true,
        ..alpha.clone()
    };
    assert_eq!(
        enabled.as_ref(),
        Some(&expected),
        "set_org_enabled(true) returns the updated organization"
    );
    assert_eq!(
        ok(store.find_org("alpha").await, "find_org").as_ref(),
        Some(&expected),
        "set_org_enabled(true) is kept"
    );
    let disabled = ok(
        store.set_org_enabled(alpha.id, false).await,
        "set_org_enabled",
    );
    assert_eq!(
        disabled.as_ref(),
        Some(alpha),
        "set_org_enabled(false) returns the updated organization"
    );
    assert_eq!(
        ok(store.find_org(&alpha.id.to_string()).await, "find_org").as_ref(),
        Some(alpha),
        "set_org_enabled(false) is kept"
    );
    assert_eq!(
        ok(store.find_org("zeta").await, "find_org").as_ref(),
        Some(&created[0]),
        "set_org_enabled changed another organization"
    );

    let unknown = Uuid::from_u128(0x0123_4567_89ab_4def_8123_4567_89ab_cdef);
    assert_eq!(
        ok(
            store.set_org_enabled(unknown, true).await,
            "set_org_enabled(unknown)"
        ),
        None,
        "set_org_enabled of an unknown organization is None"
    );
    for missing in ["nope", "alph", "", &unknown.to_string()] {
        assert_eq!(
            ok(
                store.find_org(missing).await,
                format!("find_org({missing:?})")
            ),
            None,
            "find_org({missing:?}) finds nothing"
        );
    }
}

/// Appends number each organization's events 1, 2, 3, … in batch order, assign increasing
/// ids and a creation time, and chain the hashes; two organizations in one batch each get
/// their own numbering.
pub async fn append_assigns_seq_and_chains(store: Arc<dyn Store>) {
    let store = &*store;
    let a = make_org(store, "seq-a").await;
    let b = make_org(store, "seq-b").await;
    for org in [&a, &b] {
        let head = ok(store.chain_head(org.id).await, "chain_head");
        assert_eq!(
            (head.seq, head.hash),
            (0, GENESIS),
            "chain_head of an organization without events"
        );
    }
    let t0 = base_time().as_millis();
    let before = Timestamp::now().plus_millis(-300_000);

    let first: Vec<Append> = (0..5)
        .map(|i| {
            to(
                &a,
                body("channel_created", "alice@example.com", t0 + 10 - i),
            )
        })
        .collect();
    let first = append_ok(store, first).await;
    let seqs: Vec<u64> = first.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        [1, 2, 3, 4, 5],
        "the first batch of an organization is numbered 1..=5 in batch order"
    );

    let interleaved = vec![
        to(&a, body("channel_deleted", "alice@example.com", t0)),
        to(&b, body("policy_created", "bob@example.org", t0)),
        to(&a, body("policy_created", "carol@example.com", t0 + 1)),
        to(&b, body("policy_updated", "bob@example.org", t0 - 1)),
        to(&b, body("token_created", "dave@example.net", t0 + 2)),
        to(&a, body("token_revoked", "alice@example.com", t0)),
    ];
    let interleaved = append_ok(store, interleaved).await;
    let got: Vec<(bool, u64)> = interleaved
        .iter()
        .map(|e| (e.org_id == a.id, e.seq))
        .collect();
    assert_eq!(
        got,
        [(true, 6), (false, 1), (true, 7), (false, 2), (false, 3), (true, 8)],
        "a batch mixing two organizations numbers each organization's events on in batch order (true = org A)"
    );
    let last = append_ok(
        store,
        vec![to(&b, body("token_revoked", "bob@example.org", t0 + 3))],
    )
    .await;
    assert_eq!(last[0].seq, 4, "the next append to B continues at 4");
    let after = Timestamp::now().plus_millis(300_000);

    let appended: Vec<Event> = [first, interleaved, last].concat();
    for event in &appended {
        assert!(
            before <= event.created_at && event.created_at <= after,
            "event seq {} got created_at {}, not the time of the append",
            event.seq,
            event.created_at
        );
    }
    let ids: HashSet<Uuid> = appended.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), appended.len(), "appended events got the same id");

    for org in [&a, &b] {
        let mine: Vec<&Event> = appended.iter().filter(|e| e.org_id == org.id).collect();
        for pair in mine.windows(2) {
            assert!(
                pair[0].id < pair[1].id,
                "ids of organization {} do not increase with seq: seq {} has {} and seq {} has {}",
                org.name,
                pair[0].seq,
                pair[0].id,
                pair[1].seq,
                pair[1].id
            );
        }
        let stored = verified_chain(store, org.id).await;
        assert_eq!(
            stored.len(),
            mine.len(),
            "events_by_seq of {} returns every event",
            org.name
        );
        for (expected, actual) in mine.iter().zip(&stored) {
            assert_event_eq(
                expected,
                actual,
                &format!("events_by_seq of {} vs what append returned", org.name),
            );
        }
        let head = ok(store.chain_head(org.id).await, "chain_head");
        let newest = mine.last().expect("events");
        assert_eq!(
            (head.seq, head.hash),
            (newest.seq, newest.hash),
            "chain_head of {} is its last event",
            org.name
        );
    }
}

/// A batch that names an unknown organization fails with `UnknownOrg` and stores nothing:
/// not even the events of known organizations in the same batch.
pub async fn append_is_atomic(store: Arc<dyn Store>) {
    let store = &*store;
    let a = make_org(store, "atomic-a").await;
    let b = make_org(store, "atomic-b").await;
    let t0 = base_time().as_millis();
    let stored = append_all(
        store,
        &a,
        (0..3)
            .map(|i| body("channel_created", "alice@example.com", t0 + i))
            .collect(),
        3,
    )
    .await;
    let head_a = ok(store.chain_head(a.id).await, "chain_head");
    let unknown = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0bad);

    let bad_batches = [
        vec![
            to(&a, body("channel_deleted", "alice@example.com", t0 + 10)),
            Append {
                org_id: unknown,
                body: body("channel_deleted", "mallory@example.com", t0 + 11),
            },
            to(&b, body("channel_deleted", "bob@example.org", t0 + 12)),
        ],
        vec![Append {
            org_id: unknown,
            body: body("channel_deleted", "mallory@example.com", t0 + 11),
        }],
        vec![
            to(&b, body("policy_created", "bob@example.org", t0 + 13)),
            to(&a, body("policy_created", "alice@example.com", t0 + 14)),
            Append {
                org_id: unknown,
                body: body("policy_created", "mallory@example.com", t0 + 15),
            },
        ],
    ];
    for (batch_idx, batch) in bad_batches.into_iter().enumerate() {
        match store.append(batch).await {
            Err(StoreError::UnknownOrg(id)) => assert_eq!(
                id, unknown,
                "bad batch {batch_idx}: UnknownOrg names another organization"
            ),
            other => panic!(
                "bad batch {batch_idx}: appending to an unknown organization gave {other:?}, expected Err(StoreError::UnknownOrg({unknown}))"
            ),
        }
        let context = format!("after refused batch {batch_idx}");
        assert_eq!(
            ok(store.chain_head(a.id).await, "chain_head"),
            head_a,
            "{context}: A's chain head moved"
        );
        assert_eq!(
            ok(store.chain_head(b.id).await, "chain_head").seq,
            0,
            "{context}: B has events"
        );
        let all = Filter::default();
        assert_eq!(
            count_all(store, a.id, &all).await,
            Count { n: 3, exact: true },
            "{context}: count of A"
        );
        assert_eq!(
            count_all(store, b.id, &all).await,
            Count { n: 0, exact: true },
            "{context}: count of B"
        );
        assert_same_events(
            &stored,
            &ok(store.events_by_seq(a.id, 0, 100).await, "events_by_seq"),
            &format!("{context}: events_by_seq of A"),
        );
        let mut newest_first = stored.clone();
        newest_first.reverse();
        assert_same_events(
            &newest_first,
            &query_all(store, a.id, &all, Order::NewestFirst).await,
            &format!("{context}: query of A"),
        );
        assert!(
            query_all(store, b.id, &all, Order::NewestFirst)
                .await
                .is_empty(),
            "{context}: query of B returns events"
        );
    }

    let next = append_ok(
        store,
        vec![
            to(&b, body("token_created", "bob@example.org", t0 + 20)),
            to(&a, body("token_created", "alice@example.com", t0 + 21)),
        ],
    )
    .await;
    assert_eq!(
        (next[0].seq, next[1].seq),
        (1, 4),
        "after refused batches, B starts at seq 1 and A continues at seq 4"
    );
    assert_eq!(
        verified_chain(store, a.id).await.len(),
        4,
        "A has its 4 events"
    );
    assert_eq!(
        verified_chain(store, b.id).await.len(),
        1,
        "B has its 1 event"
    );
}

/// `get_event` returns what was appended, field by field (unicode, nested `meta`, IPv6,
/// every optional field absent and present), and nothing for another organization's id.
pub async fn get_event_round_trips_and_is_scoped(store: Arc<dyn Store>) {
    let store = &*store;
    let a = make_org(store, "get-a").await;
    let b = make_org(store, "get-b").await;
    let meta = json!({
        "reason": "rotate keys",
        "group": {
            "name": "Data Science",
            "members": [1, 2, {"id": "u-1", "active": true, "nothing": null}],
            "owner": null,
            "deep": {"a": {"b": {"c": ["d"]}}}
        },
        "ratio": 2.5,
        "small": -0.125,
        "negative": -17,
        "big": 4_000_000_000i64,
        "empty_object": {},
        "empty_array": [],
        "emoji": "🎉 done",
        "quote": "she said \"hi\" \\ bye",
        "lines": "line one\nline two\ttabbed",
        "ключ": "значение",
        "東京": "タワー"
    });
    let Value::Object(meta) = meta else {
        unreachable!("a JSON object literal")
    };
    let full = EventBody {
        action_key: "group_assigned_to_channel".to_string(),
        action_verb: Some("assigned".to_string()),
        actor_id: Some("u-8f3a".to_string()),
        actor_email: Some("zoë.müller@例え.jp".to_string()),
        actor_name: Some("Zoë Müller 🚀".to_string()),
        actor_type: ActorType::ServiceAccount,
        target_id: Some("ch-ml-prod".to_string()),
        target_email: Some("ops+alerts@example.com".to_string()),
        target_name: Some("ml-prod ‘quoted’ \"name\" O'Brien".to_string()),
        target_type: Some("channel".to_string()),
        service_name: Some("repo-sync".to_string()),
        ip_address: Some(IpAddr::V6("2001:db8::8a2e:370:7334".parse().expect("IPv6"))),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) conda/24.1".to_string()),
        request_id: Some("req-01HZX3".to_string()),
        meta,
        occurred_at: Timestamp::parse("2026-02-28T23:59:59.999Z").expect("timestamp"),
    };
    let minimal = EventBody {
        action_key: "custom_action_ran".to_string(),
        action_verb: None,
        actor_id: None,
        actor_email: None,
        actor_name: None,
        actor_type: ActorType::User,
        target_id: None,
        target_email: None,
        target_name: None,
        target_type: None,
        service_name: None,
        ip_address: None,
        user_agent: None,
        request_id: None,
        meta: Map::new(),
        occurred_at: ts(0),
    };
    let system = EventBody {
        actor_type: ActorType::System,
        actor_id: Some("system".to_string()),
        actor_email: None,
        actor_name: None,
        ip_address: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7))),
        meta: Map::from_iter([("count".to_string(), json!(3))]),
        ..body(
            "organization_updated",
            "ignored@example.com",
            1_772_000_000_123,
        )
    };
    let mapped = EventBody {
        ip_address: Some(IpAddr::V6(Ipv6Addr::new(
            0, 0, 0, 0, 0, 0xffff, 0x0a01, 0x0203,
        ))),
        ..body("token_created", "carol@example.com", 1_772_000_000_124)
    };
    let bodies = [full, minimal, system, mapped];
    let appended = append_ok(store, bodies.iter().map(|b| to(&a, b.clone())).collect()).await;
    let other = append_ok(store, vec![to(&b, bodies[0].clone())]).await;

    for (event_idx, event) in appended.iter().enumerate() {
        let got = ok(store.get_event(a.id, event.id).await, "get_event");
        let got =
            got.unwrap_or_else(|| panic!("get_event does not find appended event {event_idx}"));
        assert_event_eq(
            event,
            &got,
            &format!("get_event of appended event {event_idx}"),
        );
        assert_eq!(
            ok(store.get_event(b.id, event.id).await, "get_event"),
            None,
            "get_event with organization B returns organization A's event {event_idx}"
        );
    }
    assert_eq!(
        ok(store.get_event(a.id, other[0].id).await, "get_event"),
        None,
        "get_event with organization A returns organization B's event"
    );
    let got = ok(store.get_event(b.id, other[0].id).await, "get_event");
    assert_event_eq(
        &other[0],
        &got.expect("B's event is found in B"),
        "get_event of B's event",
    );
    for missing in [
        Uuid::nil(),
        Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001),
    ] {
        assert_eq!(
            ok(store.get_event(a.id, missing).await, "get_event"),
            None,
            "get_event of an id never assigned"
        );
    }
    verified_chain(store, a.id).await;
}

/// No read of organization B shows organization A's events, whatever the filter, and reads
/// of an organization without events are empty.
pub async fn reads_are_scoped_to_the_org(store: Arc<dyn Store>) {
    let store = &*store;
    let mut rng = StdRng::seed_from_u64(0x0005_C09E);
    let times = tie_heavy_times();
    let corpus = RandomCorpus::build(store, &mut rng, "scoped", 120, &times).await;
    let empty = make_org(store, "scoped-empty").await;
    let all_events = corpus.all_events();

    for (org_idx, org) in corpus.orgs.iter().enumerate() {
        let mine = &corpus.events[org_idx];
        let theirs = &corpus.events[1 - org_idx];
        let mut filters = vec![Filter::default()];
        // Filters naming the other organization's values exactly.
        for event in theirs.iter().take(5) {
            filters.push(Filter {
                conditions: vec![
                    Condition::AnyOf {
                        column: Column::Actor,
                        values: column_values(Column::Actor, &event.body)
                            .into_iter()
                            .map(str::to_string)
                            .collect(),
                    },
                    Condition::AnyOf {
                        column: Column::ActionKey,
                        values: vec![event.body.action_key.clone()],
                    },
                ],
                combine: Combine::Or,
                from: None,
                to: None,
            });
            filters.push(Filter {
                conditions: vec![Condition::Text(event_words(&event.body).join(" "))],
                ..Filter::default()
            });
        }
        for _ in 0..20 {
            filters.push(random_filter(&mut rng, &all_events, &times));
        }
        for filter in &filters {
            let context = format!("organization {} with filter {filter:?}", org.name);
            for order in [Order::NewestFirst, Order::OldestFirst] {
                let got = query_all(store, org.id, filter, order).await;
                assert!(
                    got.iter().all(|e| e.org_id == org.id),
                    "{context}: query returned another organization's event"
                );
                assert_same_events(
                    &reference_query(mine, filter, order),
                    &got,
                    &format!("{context}: query {order:?}"),
                );
            }
            let n = mine.iter().filter(|e| reference_matches(filter, e)).count();
            assert_eq!(
                count_all(store, org.id, filter).await,
                Count {
                    n: n as u64,
                    exact: true
                },
                "{context}: count"
            );
            let facets = ok(store.facets(org.id, filter, 1000).await, "facets");
            assert_facets(&facets, mine, filter, 1000, &format!("{context}: facets"));
            assert_eq!(
                ok(store.daily_counts(org.id, filter).await, "daily_counts"),
                reference_daily_counts(mine, filter),
                "{context}: daily_counts"
            );
        }
        // Keyset positions taken from the other organization's events.
        for event in theirs.iter().take(10) {
            for order in [Order::NewestFirst, Order::OldestFirst] {
                let query = Query {
                    filter: Filter::default(),
                    order,
                    limit: 1000,
                    start: Start::After(position(event)),
                };
                let got = ok(store.query(org.id, &query).await, "query");
                let expected: Vec<Event> = reference_query(mine, &Filter::default(), order)
                    .into_iter()
                    .filter(|e| match order {
                        Order::OldestFirst => sort_key(e) > sort_key(event),
                        Order::NewestFirst => sort_key(e) < sort_key(event),
                    })
                    .collect();
                assert_same_events(
                    &expected,
                    &got,
                    &format!(
                        "organization {} after a position of the other organization, {order:?}",
                        org.name
                    ),
                );
            }
        }
        let chain = verified_chain(store, org.id).await;
        assert_same_events(mine, &chain, &format!("events_by_seq of {}", org.name));
    }

    let all = Filter::default();
    assert!(
        query_all(store, empty.id, &all, Order::NewestFirst)
            .await
            .is_empty(),
        "query of an organization without events"
    );
    assert_eq!(
        count_all(store, empty.id, &all).await,
        Count { n: 0, exact: true },
        "count of an organization without events"
    );
    assert_eq!(
        ok(store.facets(empty.id, &all, 10).await, "facets"),
        Facets::default(),
        "facets of an organization without events"
    );
    assert!(
        ok(store.daily_counts(empty.id, &all).await, "daily_counts").is_empty(),
        "daily_counts of an organization without events"
    );
    assert!(
        ok(store.events_by_seq(empty.id, 0, 100).await, "events_by_seq").is_empty(),
        "events_by_seq of an organization without events"
    );
    let head = ok(store.chain_head(empty.id).await, "chain_head");
    assert_eq!(
        (head.seq, head.hash),
        (0, GENESIS),
        "chain_head of an organization without events"
    );
    assert_eq!(
        ok(store.latest_checkpoint(empty.id).await, "latest_checkpoint"),
        None,
        "latest_checkpoint of an organization without checkpoints"
    );
}

/// Every column filter with one and several values, `And` against `Or`, inclusive time
/// bounds, and free text (word prefixes, any case, `meta` values but not keys), on a small
/// corpus whose answers are spelled out; then free text against
/// [`auditlog_core::text::matches`] on a random corpus.
pub async fn filters_match_columns_text_and_time(store: Arc<dyn Store>) {
    let store = &*store;
    let org = make_org(store, "filters").await;
    let twin = make_org(store, "filters-twin").await;
    let t = |i: i64| base_time().plus_millis(i * 1000);
    let blank = |action: &str, at: Timestamp| EventBody {
        action_key: action.to_string(),
        action_verb: catalog().get(action).map(|a| a.verb.clone()),
        actor_id: None,
        actor_email: None,
        actor_name: None,
        actor_type: ActorType::User,
        target_id: None,
        target_email: None,
        target_name: None,
        target_type: None,
        service_name: None,
        ip_address: None,
        user_agent: None,
        request_id: None,
        meta: Map::new(),
        occurred_at: at,
    };
    let s = |text: &str| Some(text.to_string());
    let object = |value: Value| match value {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    };
    let corpus: Vec<(&str, EventBody)> = vec![
        (
            "f1",
            EventBody {
                actor_id: s("u-alice"),
                actor_email: s("alice@example.com"),
                actor_name: s("Alice Smith"),
                target_id: s("ch-1"),
                target_name: s("ml-prod"),
                target_type: s("channel"),
                service_name: s("repo"),
                ip_address: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7))),
                meta: object(json!({"reason": "Quarterly cleanup"})),
                ..blank("channel_created", t(0))
            },
        ),
        (
            "f2",
            EventBody {
                actor_id: s("u-bob"),
                actor_email: s("bob@example.org"),
                actor_name: s("Bob Jones"),
                target_id: s("ch-2"),
                target_name: s("ml-staging"),
                target_type: s("channel"),
                service_name: s("repo"),
                user_agent: s("Firefox/128.0"),
                request_id: s("req-zebra"),
                ..blank("channel_deleted", t(1))
            },
        ),
        (
            "f3",
            EventBody {
                actor_id: s("sa-ci"),
                actor_name: s("CI Bot"),
                actor_type: ActorType::ServiceAccount,
                target_id: s("ch-1"),
                target_name: s("ml-prod"),
                target_type: s("channel"),
                service_name: s("iam"),
                meta: object(json!({"group": {"name": "Data Science", "size": 12}})),
                ..blank("group_assigned_to_channel", t(2))
            },
        ),
        (
            "f4",
            EventBody {
                actor_email: s("carol@example.com"),
                target_id: s("inv-9"),
                target_email: s("dave@example.net"),
                target_type: s("invitation"),
                service_name: s("iam"),
                ..blank("invitation_created", t(3))
            },
        ),
        (
            "f5",
            EventBody {
                actor_id: s("system"),
                actor_type: ActorType::System,
                meta: object(json!({"changed": ["display_name"], "count": 3, "public": true})),
                ..blank("organization_updated", t(4))
            },
        ),
        (
            "f6",
            EventBody {
                actor_id: s("u-dave"),
                actor_email: s("dave@example.net"),
                actor_name: s("Dave Été"),
                target_id: s("u-erin"),
                target_email: s("erin@example.com"),
                target_name: s("Erin"),
                target_type: s("user"),
                service_name: s("iam"),
                ip_address: Some(IpAddr::V6("2001:db8::42".parse().expect("IPv6"))),
                meta: object(json!({"role": "admin"})),
                ..blank("organization_user_added", t(4))
            },
        ),
    ];
    let events = append_ok(
        store,
        corpus.iter().map(|(_, b)| to(&org, b.clone())).collect(),
    )
    .await;
    // The same events in another organization: none of them may leak into the answers.
    append_ok(
        store,
        corpus.iter().map(|(_, b)| to(&twin, b.clone())).collect(),
    )
    .await;
    let label_of: HashMap<u64, &str> = events
        .iter()
        .zip(&corpus)
        .map(|(e, (label, _))| (e.seq, *label))
        .collect();

    let any = |column: Column, values: &[&str]| Condition::AnyOf {
        column,
        values: values.iter().map(|v| v.to_string()).collect(),
    };
    let text = |words: &str| Condition::Text(words.to_string());
    let filter = |conditions: Vec<Condition>, combine: Combine| Filter {
        conditions,
        combine,
        from: None,
        to: None,
    };
    let one = |condition: Condition| filter(vec![condition], Combine::Or);
    let range = |from: Option<Timestamp>,
                 to: Option<Timestamp>,
                 conditions: Vec<Condition>,
                 combine: Combine| Filter {
        conditions,
        combine,
        from,
        to,
    };
    use Column as C;
    use Combine::{And, Or};
    let case = |filter: Filter, expected: &[&'static str]| (filter, expected.to_vec());
    let cases: Vec<(Filter, Vec<&str>)> = vec![
        case(one(any(C::ActionKey, &["channel_created"])), &["f1"]),
        case(
            one(any(
                C::ActionKey,
                &["channel_created", "invitation_created"],
            )),
            &["f1", "f4"],
        ),
        case(one(any(C::ActionKey, &["no_such_action"])), &[]),
        case(one(any(C::ActionVerb, &["created"])), &["f1", "f4"]),
        case(
            one(any(C::ActionVerb, &["deleted", "assigned"])),
            &["f2", "f3"],
        ),
        case(one(any(C::ActorId, &["u-alice"])), &["f1"]),
        case(one(any(C::ActorId, &["u-alice", "system"])), &["f1", "f5"]),
        case(one(any(C::ActorEmail, &["alice@example.com"])), &["f1"]),
        case(
            one(any(
                C::ActorEmail,
                &["carol@example.com", "bob@example.org"],
            )),
            &["f2", "f4"],
        ),
        case(one(any(C::ActorType, &["service_account"])), &["f3"]),
        case(
            one(any(C::ActorType, &["system", "service_account"])),
            &["f3", "f5"],
        ),
        case(one(any(C::ActorType, &["user"])), &["f1", "f2", "f4", "f6"]),
        case(one(any(C::Actor, &["u-bob"])), &["f2"]),
        case(
            one(any(C::Actor, &["u-bob", "carol@example.com"])),
            &["f2", "f4"],
        ),
        // f4's target has this email; only f6's actor does.
        case(one(any(C::Actor, &["dave@example.net"])), &["f6"]),
        case(one(any(C::TargetId, &["ch-1"])), &["f1", "f3"]),
        case(one(any(C::TargetId, &["ch-2", "inv-9"])), &["f2", "f4"]),
        case(one(any(C::TargetEmail, &["dave@example.net"])), &["f4"]),
        case(
            one(any(
                C::TargetEmail,
                &["dave@example.net", "erin@example.com"],
            )),
            &["f4", "f6"],
        ),
        case(one(any(C::TargetType, &["channel"])), &["f1", "f2", "f3"]),
        case(
            one(any(C::TargetType, &["invitation", "user"])),
            &["f4", "f6"],
        ),
        case(one(any(C::Target, &["dave@example.net"])), &["f4"]),
        case(one(any(C::Target, &["u-erin", "ch-2"])), &["f2", "f6"]),
        case(one(any(C::ServiceName, &["repo"])), &["f1", "f2"]),
        case(
            one(any(C::ServiceName, &["iam", "repo"])),
            &["f1", "f2", "f3", "f4", "f6"],
        ),
        // Combining conditions.
        case(
            filter(
                vec![any(C::ActorId, &["u-alice"]), any(C::TargetId, &["ch-1"])],
                And,
            ),
            &["f1"],
        ),
        case(
            filter(
                vec![any(C::ActorId, &["u-alice"]), any(C::TargetId, &["ch-1"])],
                Or,
            ),
            &["f1", "f3"],
        ),
        case(
            filter(
                vec![any(C::ServiceName, &["iam"]), any(C::ActorType, &["user"])],
                And,
            ),
            &["f4", "f6"],
        ),
        case(
            filter(
                vec![any(C::ServiceName, &["iam"]), any(C::ActorType, &["user"])],
                Or,
            ),
            &["f1", "f2", "f3", "f4", "f6"],
        ),
        case(
            filter(vec![any(C::TargetId, &["ch-1"])], And),
            &["f1", "f3"],
        ),
        case(filter(vec![], And), &["f1", "f2", "f3", "f4", "f5", "f6"]),
        case(filter(vec![], Or), &["f1", "f2", "f3", "f4", "f5", "f6"]),
        // Time bounds are inclusive and always ANDed.
        case(range(Some(t(2)), Some(t(2)), vec![], Or), &["f3"]),
        case(range(Some(t(4)), Some(t(4)), vec![], Or), &["f5", "f6"]),
        case(
            range(Some(t(1)), Some(t(3)), vec![], Or),
            &["f2", "f3", "f4"],
        ),
        case(
            range(Some(t(2).plus_millis(1)), None, vec![], Or),
            &["f4", "f5", "f6"],
        ),
        case(
            range(None, Some(t(2).plus_millis(-1)), vec![], Or),
            &["f1", "f2"],
        ),
        case(range(Some(t(3)), Some(t(1)), vec![], Or), &[]),
        case(
            range(
                Some(t(2)),
                None,
                vec![any(C::ActorId, &["u-alice"]), any(C::ServiceName, &["iam"])],
                Or,
            ),
            &["f3", "f4", "f6"],
        ),
        case(
            range(
                None,
                Some(t(1)),
                vec![
                    any(C::ActorId, &["u-alice"]),
                    any(C::ServiceName, &["repo"]),
                ],
                And,
            ),
            &["f1"],
        ),
        // Free text: every word a prefix of some event word, any case.
        case(one(text("ml-pr")), &["f1", "f3"]),
        case(one(text("ML")), &["f1", "f2", "f3"]),
        case(one(text("quarterly")), &["f1"]),
        case(one(text("QUART")), &["f1"]),
        case(one(text("data sci")), &["f3"]),
        case(one(text("12")), &["f3"]),
        case(one(text("display")), &["f5"]),
        case(one(text("true")), &["f5"]),
        case(one(text("admin")), &["f6"]),
        // meta keys, user agents and request ids are not searchable.
        case(one(text("role")), &[]),
        case(one(text("reason")), &[]),
        case(one(text("zebra")), &[]),
        case(one(text("firefox")), &[]),
        case(one(text("alice ml")), &["f1"]),
        case(one(text("prod alice")), &["f1"]),
        case(one(text("rod")), &[]),
        case(one(text("été")), &["f6"]),
        case(one(text("ÉT")), &["f6"]),
        case(one(text("10.0")), &["f1"]),
        case(one(text("2001:db8")), &["f6"]),
        case(one(text("invit")), &["f4"]),
        case(one(text("example.com")), &["f1", "f4", "f6"]),
        case(one(text("bob")), &["f2"]),
        case(one(text("ci bot")), &["f3"]),
        case(one(text("zqxj")), &[]),
        // Text with column conditions.
        case(
            filter(vec![text("ml"), any(C::ActorId, &["u-alice"])], And),
            &["f1"],
        ),
        case(
            filter(vec![text("ml"), any(C::ActorId, &["u-alice"])], Or),
            &["f1", "f2", "f3"],
        ),
        case(
            filter(vec![text("example"), any(C::ServiceName, &["iam"])], And),
            &["f4", "f6"],
        ),
        case(
            filter(vec![text("data"), any(C::ActorType, &["system"])], Or),
            &["f3", "f5"],
        ),
        case(filter(vec![text("ml"), text("staging")], And), &["f2"]),
        case(
            filter(vec![text("ml"), text("admin")], Or),
            &["f1", "f2", "f3", "f6"],
        ),
    ];
    for (filter, expected) in &cases {
        let reference: Vec<&str> = events
            .iter()
            .filter(|e| reference_matches(filter, e))
            .map(|e| label_of[&e.seq])
            .collect();
        assert_eq!(
            &reference, expected,
            "the suite's own reference disagrees with the spelled-out answer for {filter:?}"
        );
        let got = query_all(store, org.id, filter, Order::OldestFirst).await;
        let got_labels: Vec<&str> = got
            .iter()
            .map(|e| {
                assert_eq!(
                    e.org_id, org.id,
                    "{filter:?} returned another organization's event"
                );
                label_of.get(&e.seq).copied().unwrap_or("?")
            })
            .collect();
        assert_eq!(&got_labels, expected, "query with {filter:?}");
        assert_eq!(
            count_all(store, org.id, filter).await,
            Count {
                n: expected.len() as u64,
                exact: true
            },
            "count with {filter:?}"
        );
    }

    // Free text against the reference predicate on a random corpus.
    let mut rng = StdRng::seed_from_u64(0x7E_47);
    let times = tie_heavy_times();
    let random_org = make_org(store, "filters-text").await;
    let bodies = (0..150).map(|_| random_body(&mut rng, &times)).collect();
    let random_events = append_all(store, &random_org, bodies, 50).await;
    for _ in 0..80 {
        let search = random_text(&mut rng, &random_events);
        let words = query_words(&search);
        let mut expected: Vec<Event> = random_events
            .iter()
            .filter(|e| matches(&event_words(&e.body), &words))
            .cloned()
            .collect();
        expected.sort_by_key(sort_key);
        let filter = one(text(&search));
        let got = query_all(store, random_org.id, &filter, Order::OldestFirst).await;
        assert_same_events(
            &expected,
            &got,
            &format!(
                "text search {search:?} (words {words:?}) against auditlog_core::text::matches"
            ),
        );
    }
}

/// Pages are ordered by `(occurred_at, seq)` both ways, also among many events at one
/// instant; offsets skip, keyset positions continue strictly after, limits hold.
pub async fn order_and_paging(store: Arc<dyn Store>) {
    let store = &*store;
    let org = make_org(store, "paging").await;
    let base = base_time();
    // 15 events share one instant; the others surround it. Appended out of time order.
    let mut offsets: Vec<i64> = vec![0; 15];
    offsets.extend([
        -86_400_000,
        -1,
        -1,
        1,
        1,
        2,
        1000,
        1000,
        5,
        -5,
        7,
        3_600_000,
        -3_600_000,
        9,
        3,
    ]);
    let mut rng = StdRng::seed_from_u64(0x0D_E5);
    offsets.shuffle(&mut rng);
    let bodies: Vec<EventBody> = offsets
        .iter()
        .enumerate()
        .map(|(i, offset)| {
            body(
                "channel_created",
                &format!("user{i}@example.com"),
                base.as_millis() + offset,
            )
        })
        .collect();
    let events = append_all(store, &org, bodies, 7).await;
    let all = Filter::default();
    let oldest_first = reference_query(&events, &all, Order::OldestFirst);
    let newest_first = reference_query(&events, &all, Order::NewestFirst);
    for (order, expected) in [
        (Order::OldestFirst, &oldest_first),
        (Order::NewestFirst, &newest_first),
    ] {
        let got = query_all(store, org.id, &all, order).await;
        assert_same_events(
            expected,
            &got,
            &format!("{order:?}, ordered by (occurred_at, seq)"),
        );
        for limit in [1u32, 3, 7, 29, 30, 31] {
            let query = Query {
                filter: all.clone(),
                order,
                limit,
                start: Start::Offset(0),
            };
            let page = ok(store.query(org.id, &query).await, "query");
            let n = (limit as usize).min(expected.len());
            assert_same_events(
                &expected[..n],
                &page,
                &format!("{order:?} first page with limit {limit}"),
            );
        }
        for offset in [0u64, 1, 7, 14, 29, 30, 31, 1000] {
            let query = Query {
                filter: all.clone(),
                order,
                limit: 7,
                start: Start::Offset(offset),
            };
            let page = ok(store.query(org.id, &query).await, "query");
            let from = (offset as usize).min(expected.len());
            let until = (from + 7).min(expected.len());
            assert_same_events(
                &expected[from..until],
                &page,
                &format!("{order:?} offset {offset} limit 7"),
            );
        }
        for (idx, event) in expected.iter().enumerate() {
            let query = Query {
                filter: all.clone(),
                order,
                limit: 1000,
                start: Start::After(position(event)),
            };
            let page = ok(store.query(org.id, &query).await, "query");
            assert_same_events(
                &expected[idx + 1..],
                &page,
                &format!(
                    "{order:?} after the position of event seq {} (index {idx})",
                    event.seq
                ),
            );
            let query = Query { limit: 4, ..query };
            let page = ok(store.query(org.id, &query).await, "query");
            let until = (idx + 5).min(expected.len());
            assert_same_events(
                &expected[idx + 1..until],
                &page,
                &format!(
                    "{order:?} after the position of event seq {} (index {idx}), limit 4",
                    event.seq
                ),
            );
        }
        for limit in [1, 2, 5, 30] {
            let keyset = walk_keyset(store, org.id, &all, order, limit, events.len()).await;
            assert_same_events(
                expected,
                &keyset,
                &format!("{order:?} keyset walk with limit {limit}"),
            );
        }
    }
    // Positions that are no event's: the order compares (occurred_at, seq) as a pair.
    for seq in [0u64, 1_000_000] {
        for (order, expected) in [
            (Order::OldestFirst, &oldest_first),
            (Order::NewestFirst, &newest_first),
        ] {
            let at = Position {
                occurred_at: base,
                seq,
            };
            let query = Query {
                filter: all.clone(),
                order,
                limit: 1000,
                start: Start::After(at),
            };
            let page = ok(store.query(org.id, &query).await, "query");
            let want: Vec<Event> = expected
                .iter()
                .filter(|e| match order {
                    Order::OldestFirst => sort_key(e) > (base, seq),
                    Order::NewestFirst => sort_key(e) < (base, seq),
                })
                .cloned()
                .collect();
            assert_same_events(
                &want,
                &page,
                &format!("{order:?} after the position ({base}, seq {seq}), which is no event's"),
            );
        }
    }
}

/// Property: on random corpora with frequent ties, walking random filters page by page (by
/// keyset and by offset) returns exactly the reference answer in order, and counts agree.
pub async fn property_paging_matches_reference(store: Arc<dyn Store>) {
    const ROUNDS: usize = 20;
    const FILTERS_PER_ORG: usize = 4;
    let store = &*store;
    let mut rng = StdRng::seed_from_u64(0x5EED_0008);
    let times = tie_heavy_times();
    for round in 0..ROUNDS {
        let corpus =
            RandomCorpus::build(store, &mut rng, &format!("property-{round}"), 300, &times).await;
        let all_events = corpus.all_events();
        for (org, events) in corpus.orgs.iter().zip(&corpus.events) {
            for filter_idx in 0..FILTERS_PER_ORG {
                let filter = random_filter(&mut rng, &all_events, &times);
                let order = if rng.gen_bool(0.5) {
                    Order::NewestFirst
                } else {
                    Order::OldestFirst
                };
                let limit = rng.gen_range(1..=40);
                let cap = rng.gen_range(1..=30);
                let context = format!(
                    "round {round}, filter {filter_idx}, organization {} ({} events): {filter:?}, {order:?}, limit {limit}",
                    org.name,
                    events.len()
                );
                let expected = reference_query(events, &filter, order);
                let by_keyset =
                    walk_keyset(store, org.id, &filter, order, limit, events.len()).await;
                assert_same_events(&expected, &by_keyset, &format!("keyset walk, {context}"));
                let by_offset =
                    walk_offset(store, org.id, &filter, order, limit, events.len()).await;
                assert_same_events(&expected, &by_offset, &format!("offset walk, {context}"));
                assert_eq!(
                    count_all(store, org.id, &filter).await,
                    Count {
                        n: expected.len() as u64,
                        exact: true
                    },
                    "count with cap u64::MAX, {context}"
                );
                let capped = ok(store.count(org.id, &filter, cap).await, "count");
                assert_capped_count(capped, expected.len(), cap, &context);
            }
        }
    }
}

/// Property: facets count actions and actors exactly as the reference does, most frequent
/// first, at most `max_each` of each.
pub async fn facets_match_reference(store: Arc<dyn Store>) {
    let store = &*store;
    let mut rng = StdRng::seed_from_u64(0xFACE_7500);
    let times = tie_heavy_times();
    for round in 0..5 {
        let corpus =
            RandomCorpus::build(store, &mut rng, &format!("facets-{round}"), 200, &times).await;
        let all_events = corpus.all_events();
        for (org, events) in corpus.orgs.iter().zip(&corpus.events) {
            for filter_idx in 0..8 {
                let filter = if filter_idx == 0 {
                    Filter::default()
                } else {
                    random_filter(&mut rng, &all_events, &times)
                };
                let max_each = *pick(&mut rng, &[1usize, 2, 3, 5, 1000]);
                let facets = ok(store.facets(org.id, &filter, max_each).await, "facets");
                let context = format!(
                    "round {round}, organization {}, {filter:?}, max_each {max_each}",
                    org.name
                );
                assert_facets(&facets, events, &filter, max_each, &context);
            }
        }
    }
}

/// Property: daily counts are per UTC day, ascending, only days with matching events, and
/// equal the reference, with events on a day's first and last millisecond.
pub async fn daily_counts_match_reference(store: Arc<dyn Store>) {
    let store = &*store;
    let mut rng = StdRng::seed_from_u64(0xDA1_1E5);
    let first_day = base_time().day();
    let times: Vec<Timestamp> = [0, 1, 2, 4, 6]
        .into_iter()
        .flat_map(|day| {
            let start = Timestamp::start_of_day(first_day + day);
            [0, 1, 43_200_000, MS_PER_DAY - 1].map(|ms| start.plus_millis(ms))
        })
        .collect();
    for round in 0..5 {
        let corpus =
            RandomCorpus::build(store, &mut rng, &format!("daily-{round}"), 200, &times).await;
        let all_events = corpus.all_events();
        for (org, events) in corpus.orgs.iter().zip(&corpus.events) {
            for filter_idx in 0..8 {
                let filter = if filter_idx == 0 {
                    Filter::default()
                } else {
                    random_filter(&mut rng, &all_events, &times)
                };
                let got = ok(store.daily_counts(org.id, &filter).await, "daily_counts");
                assert_eq!(
                    got,
                    reference_daily_counts(events, &filter),
                    "daily_counts (day since epoch, count), round {round}, organization {}, {filter:?}",
                    org.name
                );
            }
        }
    }
}

/// Signed checkpoints round-trip, per organization; the latest is the newest (highest
/// `seq`, latest `signed_at`), whatever order they were saved in.
pub async fn checkpoints_round_trip(store: Arc<dyn Store>) {
    let store = &*store;
    let a = make_org(store, "checkpoint-a").await;
    let b = make_org(store, "checkpoint-b").await;
    let t0 = base_time().as_millis();
    let events_a = append_all(
        store,
        &a,
        (0..6)
            .map(|i| body("channel_created", "alice@example.com", t0 + i))
            .collect(),
        2,
    )
    .await;
    let events_b = append_all(
        store,
        &b,
        vec![body("policy_created", "bob@example.org", t0)],
        1,
    )
    .await;
    for org in [&a, &b] {
        assert_eq!(
            ok(store.latest_checkpoint(org.id).await, "latest_checkpoint"),
            None,
            "no checkpoint saved yet"
        );
    }
    // Fixed bytes stand in for Ed25519 signatures: the store keeps them, it does not check them.
    let checkpoint = |event: &Event, signed_at_ms: i64, fill: u8| SignedCheckpoint {
        checkpoint: Checkpoint {
            org_id: event.org_id,
            seq: event.seq,
            hash: event.hash,
            signed_at: ts(signed_at_ms),
        },
        key_id: "0a1b2c3d4e5f6071".to_string(),
        signature: std::array::from_fn(|i| fill ^ (i as u8)),
    };
    let a2 = checkpoint(&events_a[1], t0 + 1000, 0x11);
    let a6 = checkpoint(&events_a[5], t0 + 3000, 0x33);
    let a4 = checkpoint(&events_a[3], t0 + 2000, 0x22);
    let b1 = checkpoint(&events_b[0], t0 + 2500, 0x44);

    ok(store.save_checkpoint(&a2).await, "save_checkpoint");
    assert_eq!(
        ok(store.latest_checkpoint(a.id).await, "latest_checkpoint"),
        Some(a2.clone()),
        "the only checkpoint of A"
    );
    assert_eq!(
        ok(store.latest_checkpoint(b.id).await, "latest_checkpoint"),
        None,
        "A's checkpoint shows for B"
    );
    ok(store.save_checkpoint(&a6).await, "save_checkpoint");
    assert_eq!(
        ok(store.latest_checkpoint(a.id).await, "latest_checkpoint"),
        Some(a6.clone()),
        "the newer checkpoint of A"
    );
    ok(store.save_checkpoint(&b1).await, "save_checkpoint");
    ok(store.save_checkpoint(&a4).await, "save_checkpoint");
    assert_eq!(
        ok(store.latest_checkpoint(a.id).await, "latest_checkpoint"),
        Some(a6),
        "the latest checkpoint of A is the one with the highest seq and newest signed_at, not the last saved"
    );
    assert_eq!(
        ok(store.latest_checkpoint(b.id).await, "latest_checkpoint"),
        Some(b1),
        "B's own checkpoint"
    );
}

/// `events_by_seq` pages by `after_seq` and `limit`, in `seq` order, one organization only.
pub async fn events_by_seq_pages(store: Arc<dyn Store>) {
    let store = &*store;
    let a = make_org(store, "by-seq-a").await;
    let b = make_org(store, "by-seq-b").await;
    let t0 = base_time().as_millis();
    let mut events_a = Vec::new();
    for round in 0..5 {
        let mut batch: Vec<Append> = (0..5)
            .map(|i| {
                to(
                    &a,
                    body("token_created", "alice@example.com", t0 - round * 10 - i),
                )
            })
            .collect();
        batch.insert(2, to(&b, body("token_created", "bob@example.org", t0)));
        let appended = append_ok(store, batch).await;
        events_a.extend(appended.into_iter().filter(|e| e.org_id == a.id));
    }
    let cases: [(u64, u32, std::ops::Range<usize>); 9] = [
        (0, 10, 0..10),
        (10, 10, 10..20),
        (20, 10, 20..25),
        (25, 10, 25..25),
        (5, 1, 5..6),
        (0, 1000, 0..25),
        (24, 1, 24..25),
        (24, 5, 24..25),
        (1000, 10, 25..25),
    ];
    let all_a = verified_chain(store, a.id).await;
    assert_same_events(
        &events_a,
        &all_a,
        "events_by_seq of A vs what append returned",
    );
    for (after_seq, limit, range) in cases {
        let got = ok(
            store.events_by_seq(a.id, after_seq, limit).await,
            "events_by_seq",
        );
        assert_same_events(
            &all_a[range],
            &got,
            &format!("events_by_seq(A, after_seq {after_seq}, limit {limit})"),
        );
    }
    let got_b = ok(store.events_by_seq(b.id, 2, 10).await, "events_by_seq");
    let seqs: Vec<u64> = got_b.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [3, 4, 5], "events_by_seq(B, 2, 10)");
    assert!(
        got_b.iter().all(|e| e.org_id == b.id),
        "events_by_seq of B returned A's events"
    );
}

/// Eight tasks appending concurrently to the same two organizations leave each with
/// `seq` 1..=n, no gap, a chain that verifies, and every task's events in its order.
pub async fn concurrent_appends_keep_chains(store: Arc<dyn Store>) {
    const TASKS: u64 = 8;
    const APPENDS: u64 = 25;
    let a = make_org(&*store, "concurrent-a").await;
    let b = make_org(&*store, "concurrent-b").await;
    let t0 = base_time().as_millis();
    let mut handles = Vec::new();
    for task in 0..TASKS {
        let store = Arc::clone(&store);
        let (a, b) = (a.clone(), b.clone());
        handles.push(tokio::spawn(async move {
            let mut returned = Vec::new();
            for round in 0..APPENDS {
                let batch: Vec<Append> = (0..4u64)
                    .map(|slot| {
                        let org = if slot % 2 == 0 { &a } else { &b };
                        let mut event =
                            body("channel_created", "alice@example.com", t0 + (round as i64));
                        event.meta.insert("task".to_string(), json!(task));
                        event
                            .meta
                            .insert("step".to_string(), json!(round * 4 + slot));
                        to(org, event)
                    })
                    .collect();
                returned.extend(append_ok(&*store, batch).await);
            }
            returned
        }));
    }
    let mut returned = Vec::new();
    for handle in handles {
        returned.extend(handle.await.expect("an appending task panicked"));
    }
    let returned: HashMap<Uuid, Event> = returned.into_iter().map(|e| (e.id, e)).collect();
    assert_eq!(
        returned.len() as u64,
        TASKS * APPENDS * 4,
        "every appended event got its own id"
    );
    for org in [&a, &b] {
        let chain = verified_chain(&*store, org.id).await;
        let n = TASKS * APPENDS * 2;
        assert_eq!(
            chain.len() as u64,
            n,
            "organization {} has every event",
            org.name
        );
        assert_eq!(
            chain.last().map(|e| e.seq),
            Some(n),
            "organization {} ends at seq {n}",
            org.name
        );
        let mut last_step: HashMap<u64, u64> = HashMap::new();
        for event in &chain {
            let appended = returned.get(&event.id).unwrap_or_else(|| {
                panic!(
                    "stored event seq {} was not returned by any append",
                    event.seq
                )
            });
            assert_event_eq(appended, event, "a stored event vs what append returned");
            let task = event.body.meta["task"].as_u64().expect("task");
            let step = event.body.meta["step"].as_u64().expect("step");
            if let Some(previous) = last_step.insert(task, step) {
                assert!(
                    previous < step,
                    "task {task}'s events are out of order in {}: step {step} after step {previous}",
                    org.name
                );
            }
        }
    }
}

/// A store with events occupies some bytes on disk.
pub async fn disk_bytes_after_appends(store: Arc<dyn Store>) {
    let store = &*store;
    let org = make_org(store, "disk").await;
    let mut rng = StdRng::seed_from_u64(0xD15C);
    let times = tie_heavy_times();
    let bodies = (0..200).map(|_| random_body(&mut rng, &times)).collect();
    append_all(store, &org, bodies, 50).await;
    let bytes = ok(store.disk_bytes().await, "disk_bytes");
    assert!(bytes > 0, "disk_bytes is 0 after appending 200 events");
}

/// A UUIDv7 of millisecond `ms` whose random bits are `n`.
fn v7_id(ms: i64, n: u64) -> Uuid {
    Uuid::from_u128(
        ((ms as u128) << 80) | (0x7 << 76) | (0b10 << 62) | (u128::from(n) & 0x3fff_ffff_ffff_ffff),
    )
}

/// Events of `org_id` chained after `head` as another store would have stored them: seqs
/// continuing the head, UUIDv7 ids minted at `minted_ms` onwards, one millisecond apart, and
/// `created_at` the moment of each id.
fn chained_events(
    org_id: Uuid,
    head: (u64, [u8; 32]),
    bodies: Vec<EventBody>,
    minted_ms: i64,
) -> Vec<Event> {
    let events = bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let seq = head.0 + i as u64 + 1;
            Event {
                id: v7_id(
                    minted_ms + i as i64,
                    seq.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                ),
                org_id,
                seq,
                created_at: ts(minted_ms + i as i64),
                hash: [0; 32],
                body,
            }
        })
        .collect();
    rechained(events, head.1)
}

/// `events` with every hash recomputed, in order, after `previous`: seqs, ids and content
/// stay as they are.
fn rechained(mut events: Vec<Event>, mut previous: [u8; 32]) -> Vec<Event> {
    for event in &mut events {
        event.hash = chain::expected_hash(&previous, event);
        previous = event.hash;
    }
    events
}

/// Whether `message` names `seq` as `seq N` (not as a prefix of a longer number).
fn names_seq(message: &str, seq: u64) -> bool {
    let wanted = seq.to_string();
    message.match_indices("seq ").any(|(at, _)| {
        let digits: String = message[at + 4..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits == wanted
    })
}

/// A restore that must be refused as a `Conflict` naming `offending_seq`.
async fn expect_restore_conflict(
    store: &dyn Store,
    org_id: Uuid,
    events: Vec<Event>,
    offending_seq: u64,
    what: &str,
) {
    match store.restore_events(org_id, events).await {
        Err(StoreError::Conflict(message)) => assert!(
            names_seq(&message, offending_seq),
            "{what}: the conflict must name the first offending seq {offending_seq}: {message:?}"
        ),
        other => panic!(
            "{what}: restore_events gave {other:?}, expected Err(StoreError::Conflict) naming seq {offending_seq}"
        ),
    }
}

/// What an organization holds is exactly `expected` (its chain, head and count), and none of
/// `refused` (events of refused restores) can be found.
async fn assert_holds(
    store: &dyn Store,
    org_id: Uuid,
    expected: &[Event],
    refused: &[Event],
    context: &str,
) {
    assert_same_events(
        expected,
        &verified_chain(store, org_id).await,
        &format!("{context}: events_by_seq"),
    );
    let head = ok(store.chain_head(org_id).await, "chain_head");
    let want = expected
        .last()
        .map_or((0, GENESIS), |last| (last.seq, last.hash));
    assert_eq!((head.seq, head.hash), want, "{context}: chain_head");
    assert_eq!(
        count_all(store, org_id, &Filter::default()).await,
        Count {
            n: expected.len() as u64,
            exact: true
        },
        "{context}: count"
    );
    for event in refused {
        if expected.iter().any(|e| e.id == event.id) {
            continue;
        }
        assert_eq!(
            ok(store.get_event(org_id, event.id).await, "get_event"),
            None,
            "{context}: get_event finds seq {} of a refused restore",
            event.seq
        );
    }
}

/// `restore_org` and `restore_events` store a migration's organization and events exactly as
/// given: ids, seqs, `created_at` and hashes are kept, and every read (`get_event`,
/// `events_by_seq`, `chain_head`, queries, counts, facets, daily counts, free text) sees them
/// as if they had been appended; later appends continue the restored chain. A batch that does
/// not continue the head (a seq that does not follow it, a gap, a wrong hash, another
/// organization's event, an id the organization has) is a `Conflict` naming the first
/// offending seq and stores nothing, not even its valid first events. A taken organization id
/// or name is a `Conflict`.
pub async fn restore_keeps_ids_and_chain(store: Arc<dyn Store>) {
    let store = &*store;
    let t0 = base_time().as_millis();
    let other = make_org(store, "restore-other").await;
    let other_events = append_all(
        store,
        &other,
        (0..3)
            .map(|i| body("channel_created", "bob@example.org", t0 + i))
            .collect(),
        3,
    )
    .await;

    // Organizations: kept exactly, and unique by id and by name like created ones.
    let org = Org {
        id: Uuid::from_u128(0x0185_1c2a_3b00_7000_8000_0000_0000_0a01),
        name: "restored".to_string(),
        display_name: "Restored Ltd.".to_string(),
        audit_logs_enabled: false,
        created_at: ts(1_600_000_000_123),
    };
    assert_eq!(
        ok(store.restore_org(org.clone()).await, "restore_org"),
        org,
        "restore_org returns the organization as given"
    );
    for key in [org.name.clone(), org.id.to_string()] {
        assert_eq!(
            ok(store.find_org(&key).await, "find_org"),
            Some(org.clone()),
            "find_org({key:?}) of a restored organization: its id and created_at are kept"
        );
    }
    let unused_id = Uuid::from_u128(0x0185_1c2a_3b00_7000_8000_0000_0000_0a02);
    let taken = [
        (
            "the id of a restored organization",
            Org {
                name: "restored-again".to_string(),
                ..org.clone()
            },
        ),
        (
            "the name of a restored organization",
            Org {
                id: unused_id,
                ..org.clone()
            },
        ),
        (
            "the id of a created organization",
            Org {
                id: other.id,
                name: "restored-again".to_string(),
                ..org.clone()
            },
        ),
        (
            "the name of a created organization",
            Org {
                id: unused_id,
                name: other.name.clone(),
                ..org.clone()
            },
        ),
    ];
    for (what, clash) in taken {
        expect_conflict(
            store.restore_org(clash).await,
            &format!("restore_org with {what}"),
        );
    }
    expect_conflict(
        store
            .create_org(NewOrg {
                name: org.name.clone(),
                display_name: "Another".to_string(),
                audit_logs_enabled: true,
            })
            .await,
        "create_org with the name of a restored organization",
    );
    let listed: Vec<Org> = ok(store.list_orgs().await, "list_orgs");
    assert_eq!(
        listed,
        [other.clone(), org.clone()],
        "list_orgs after refused restore_org calls"
    );
    assert_eq!(
        ok(store.find_org(&unused_id.to_string()).await, "find_org"),
        None,
        "a refused restore_org left an organization behind"
    );

    // Events chained as another store stored them, some in a month long before the others.
    let mut rng = StdRng::seed_from_u64(0x2E57_02E0);
    let mut times = tie_heavy_times();
    times.push(base_time().plus_millis(-2_000 * MS_PER_DAY));
    let bodies: Vec<EventBody> = (0..40).map(|_| random_body(&mut rng, &times)).collect();
    let events = chained_events(org.id, (0, GENESIS), bodies, 1_700_000_000_000);
    let (first, second) = events.split_at(25);

    ok(
        store.restore_events(org.id, Vec::new()).await,
        "restore_events of nothing",
    );
    assert_holds(store, org.id, &[], &[], "after restoring nothing").await;
    let unknown = Uuid::from_u128(0x0185_1c2a_3b00_7000_8000_0000_0000_0bad);
    match store.restore_events(unknown, first[..3].to_vec()).await {
        Err(StoreError::UnknownOrg(id)) => assert_eq!(id, unknown, "UnknownOrg names another"),
        other => {
            panic!("restoring into an unknown organization gave {other:?}, expected UnknownOrg")
        }
    }

    // Refused against the empty chain.
    let mut bad_hash = first[..3].to_vec();
    bad_hash[1].hash[0] ^= 1;
    let mut changed = first[..3].to_vec();
    changed[1].body.action_key = "policy_deleted".to_string();
    let mut gap = first[..2].to_vec();
    gap.push(first[3].clone());
    let mut foreign = first[..3].to_vec();
    foreign[0].org_id = other.id;
    let foreign = rechained(foreign, GENESIS);
    let mut repeated_id = first[..3].to_vec();
    repeated_id[2].id = repeated_id[0].id;
    let repeated_id = rechained(repeated_id, GENESIS);
    let refused_empty: [(&str, Vec<Event>, u64); 6] = [
        (
            "a first seq of 2 on an empty chain",
            first[1..5].to_vec(),
            2,
        ),
        ("a gap (seq 1, 2, 4)", gap, 4),
        ("a wrong hash at seq 2", bad_hash, 2),
        ("content changed at seq 2 (its hash kept)", changed, 2),
        ("another organization's event at seq 1", foreign, 1),
        ("the id of seq 1 again at seq 3", repeated_id, 3),
    ];
    let mut refused: Vec<Event> = Vec::new();
    for (what, batch, offending) in refused_empty {
        refused.extend(batch.iter().cloned());
        expect_restore_conflict(store, org.id, batch, offending, what).await;
        assert_holds(
            store,
            org.id,
            &[],
            &refused,
            &format!("after refusing {what}"),
        )
        .await;
    }

    ok(
        store.restore_events(org.id, first.to_vec()).await,
        "restore_events of seq 1..=25",
    );
    assert_holds(store, org.id, first, &refused, "after restoring seq 1..=25").await;

    // Refused against a chain at seq 25.
    let mut broken_tail = second[..5].to_vec();
    broken_tail[4].hash[31] ^= 0x80;
    let mut taken_id = second[..2].to_vec();
    taken_id[0].id = first[0].id;
    let taken_id = rechained(taken_id, first[24].hash);
    let refused_after: [(&str, Vec<Event>, u64); 5] = [
        ("seq 25 again after head 25", events[24..30].to_vec(), 25),
        ("seq 27 after head 25", second[1..].to_vec(), 27),
        (
            "seq 26 chained to another seq 25",
            chained_events(
                org.id,
                (25, GENESIS),
                vec![second[0].body.clone()],
                1_700_000_500_000,
            ),
            26,
        ),
        (
            "a wrong hash at seq 30 after four good events",
            broken_tail,
            30,
        ),
        ("an id seq 1 has, at seq 26", taken_id, 26),
    ];
    for (what, batch, offending) in refused_after {
        refused.extend(batch.iter().cloned());
        expect_restore_conflict(store, org.id, batch, offending, what).await;
        assert_holds(
            store,
            org.id,
            first,
            &refused,
            &format!("after refusing {what}"),
        )
        .await;
    }

    ok(
        store.restore_events(org.id, second.to_vec()).await,
        "restore_events of seq 26..=40",
    );
    assert_holds(store, org.id, &events, &[], "after restoring seq 1..=40").await;

    // Every read sees the events exactly as given.
    for event in &events {
        let got = ok(store.get_event(org.id, event.id).await, "get_event")
            .unwrap_or_else(|| panic!("get_event of restored seq {} found nothing", event.seq));
        assert_event_eq(
            event,
            &got,
            &format!("get_event of restored seq {}", event.seq),
        );
        assert_eq!(
            ok(store.get_event(other.id, event.id).await, "get_event"),
            None,
            "a restored event shows in another organization"
        );
    }
    for order in [Order::NewestFirst, Order::OldestFirst] {
        assert_same_events(
            &reference_query(&events, &Filter::default(), order),
            &query_all(store, org.id, &Filter::default(), order).await,
            &format!("query of the restored organization, {order:?}"),
        );
    }
    let word = event_words(&events[7].body)
        .into_iter()
        .next()
        .expect("an event has words");
    let mut filters = vec![
        Filter::default(),
        Filter {
            conditions: vec![Condition::Text(word)],
            ..Filter::default()
        },
    ];
    filters.extend((0..30).map(|_| random_filter(&mut rng, &events, &times)));
    for (filter_idx, filter) in filters.iter().enumerate() {
        let context = format!("restored events, filter {filter_idx}: {filter:?}");
        let expected = reference_query(&events, filter, Order::NewestFirst);
        assert_same_events(
            &expected,
            &query_all(store, org.id, filter, Order::NewestFirst).await,
            &format!("query, {context}"),
        );
        assert_eq!(
            count_all(store, org.id, filter).await,
            Count {
                n: expected.len() as u64,
                exact: true
            },
            "count, {context}"
        );
        let facets = ok(store.facets(org.id, filter, 1000).await, "facets");
        assert_facets(
            &facets,
            &events,
            filter,
            1000,
            &format!("facets, {context}"),
        );
        assert_eq!(
            ok(store.daily_counts(org.id, filter).await, "daily_counts"),
            reference_daily_counts(&events, filter),
            "daily_counts, {context}"
        );
    }

    // Appends continue the restored chain, with a newer id.
    let appended = append_ok(
        store,
        vec![to(&org, body("token_created", "alice@example.com", t0))],
    )
    .await;
    assert_eq!(
        appended[0].seq, 41,
        "an append after a restore continues at seq 41"
    );
    assert!(
        appended[0].id > events[39].id,
        "an append after a restore got id {}, not greater than the restored {}",
        appended[0].id,
        events[39].id
    );
    let mut all = events.clone();
    all.extend(appended);
    assert_holds(
        store,
        org.id,
        &all,
        &[],
        "after an append to the restored chain",
    )
    .await;

    // A restore continues a chain made by appends, too, and appends continue it in turn.
    assert_holds(
        store,
        other.id,
        &other_events,
        &[],
        "the other organization",
    )
    .await;
    let head = other_events.last().expect("events");
    let continued = chained_events(
        other.id,
        (head.seq, head.hash),
        (0..4)
            .map(|i| body("policy_created", "carol@example.com", t0 + 100 + i))
            .collect(),
        1_700_000_900_000,
    );
    ok(
        store.restore_events(other.id, continued.clone()).await,
        "restore_events after appended events",
    );
    let after = append_ok(
        store,
        vec![to(
            &other,
            body("policy_updated", "carol@example.com", t0 + 200),
        )],
    )
    .await;
    assert_eq!(
        after[0].seq, 8,
        "an append after restored seq 4..=7 continues at seq 8"
    );
    let other_all: Vec<Event> = [other_events, continued, after].concat();
    assert_holds(
        store,
        other.id,
        &other_all,
        &[],
        "the other organization after a restore",
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// Users, roles, service accounts, credentials, idempotent appends and export jobs.
// ---------------------------------------------------------------------------------------

/// Namespaces of [`fixed_id`], so that users, service accounts, credentials and jobs never
/// share an id by accident.
const USER_IDS: u32 = 0x05e2_0000;
const ACCOUNT_IDS: u32 = 0x5a00_0000;
const CREDENTIAL_IDS: u32 = 0xc2ed_0000;
const JOB_IDS: u32 = 0x10b0_0000;

/// A fixed id, shaped like a UUIDv4: `namespace` in the first 32 bits, `n` in the last.
fn fixed_id(namespace: u32, n: u32) -> Uuid {
    Uuid::from_u128(
        (u128::from(namespace) << 96) | (0x4000u128 << 64) | (0x8000u128 << 48) | u128::from(n),
    )
}

/// 32 bytes standing in for a SHA-256: distinct seeds give distinct hashes.
fn fake_hash(seed: u8) -> [u8; 32] {
    std::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
}

/// Argon2id PHC strings standing in for password hashes: the store keeps them, it does not
/// check them.
const PASSWORD_HASHES: [&str; 3] = [
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
    "$argon2id$v=19$m=19456,t=2,p=1$b3RoZXJzYWx0$b3RoZXJoYXNob3RoZXJoYXNo",
    "$argon2id$v=19$m=65536,t=3,p=4$dGhpcmRzYWx0$dGhpcmRoYXNodGhpcmRoYXNo",
];

fn expect_conflict<T: Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("{what} gave {other:?}, expected Err(StoreError::Conflict)"),
    }
}

async fn create_user_ok(store: &dyn Store, user: User) -> User {
    let what = format!("create_user({:?})", user.email);
    let created = ok(store.create_user(user.clone()).await, &what);
    let expected = User {
        email: user.email.to_lowercase(),
        ..user
    };
    assert_eq!(
        created, expected,
        "{what} returns the user as given, with the email lowercased"
    );
    created
}

async fn find_user_ok(store: &dyn Store, key: &str) -> Option<User> {
    ok(store.find_user(key).await, format!("find_user({key:?})"))
}

/// Users: the email is stored lowercase and is unique in any case; `find_user` finds by
/// email in any case and by id; `set_password` sets, changes and clears one user's hash.
pub async fn users_create_find_password(store: Arc<dyn Store>) {
    let store = &*store;
    let t0 = base_time().as_millis();
    let specs = [
        User {
            id: fixed_id(USER_IDS, 1),
            email: "Alice.Smith@Example.COM".to_string(),
            display_name: "Alice Smith".to_string(),
            password_hash: None,
            created_at: ts(t0),
        },
        User {
            id: fixed_id(USER_IDS, 2),
            email: "bob@example.org".to_string(),
            display_name: "Bob Jones — Ops".to_string(),
            password_hash: Some(PASSWORD_HASHES[0].to_string()),
            created_at: ts(t0 + 1),
        },
        User {
            id: fixed_id(USER_IDS, 3),
            email: "ÉLODIE@Example.fr".to_string(),
            display_name: "Élodie Été".to_string(),
            password_hash: None,
            created_at: ts(t0 + MS_PER_DAY + 999),
        },
    ];
    let mut users = Vec::new();
    for spec in specs {
        users.push(create_user_ok(store, spec).await);
    }
    assert_eq!(
        users[0].email, "alice.smith@example.com",
        "the email is stored lowercase"
    );
    assert_eq!(
        users[2].email, "élodie@example.fr",
        "a non-ASCII email is stored lowercase"
    );

    let check_all = |users: Vec<User>, context: &'static str| async move {
        for user in &users {
            let keys = [
                user.email.clone(),
                user.email.to_uppercase(),
                capitalized(&user.email),
                user.id.to_string(),
            ];
            for key in keys {
                assert_eq!(
                    find_user_ok(store, &key).await.as_ref(),
                    Some(user),
                    "{context}: find_user({key:?})"
                );
            }
        }
    };
    check_all(users.clone(), "after create_user").await;

    let duplicates = [
        (10, "alice.smith@example.com"),
        (11, "ALICE.SMITH@EXAMPLE.COM"),
        (12, "Bob@Example.org"),
        (13, "élodie@example.FR"),
        (14, "Élodie@example.fr"),
    ];
    for (n, email) in duplicates {
        let duplicate = User {
            id: fixed_id(USER_IDS, n),
            email: email.to_string(),
            display_name: "Impostor".to_string(),
            password_hash: Some(PASSWORD_HASHES[2].to_string()),
            created_at: ts(t0 + 100),
        };
        expect_conflict(
            store.create_user(duplicate).await,
            &format!("create_user with the taken email {email:?}"),
        );
        assert_eq!(
            find_user_ok(store, &fixed_id(USER_IDS, n).to_string()).await,
            None,
            "the refused duplicate {email:?} was stored anyway"
        );
    }
    check_all(users.clone(), "after refused duplicates").await;

    let unknown_id = fixed_id(USER_IDS, 99).to_string();
    for missing in [
        "carol@example.com",
        "alice.smith@example",
        "alice",
        "",
        unknown_id.as_str(),
    ] {
        assert_eq!(
            find_user_ok(store, missing).await,
            None,
            "find_user({missing:?}) finds nothing"
        );
    }

    // Set a password where there was none, change one, clear one.
    let steps: [(usize, Option<&str>); 4] = [
        (0, Some(PASSWORD_HASHES[1])),
        (0, Some(PASSWORD_HASHES[2])),
        (1, None),
        (0, None),
    ];
    for (step, (user_idx, hash)) in steps.into_iter().enumerate() {
        let user_id = users[user_idx].id;
        ok(
            store.set_password(user_id, hash.map(str::to_string)).await,
            format!("set_password step {step}"),
        );
        users[user_idx].password_hash = hash.map(str::to_string);
        assert_eq!(
            find_user_ok(store, &user_id.to_string()).await.as_ref(),
            Some(&users[user_idx]),
            "set_password step {step} ({hash:?}) is kept"
        );
        check_all(users.clone(), "after set_password (other users unchanged)").await;
    }
}

/// Roles: `set_role` adds, changes and removes a membership and returns the role before;
/// `role_of`, `memberships` (by organization name) and `members` (by email) agree with it;
/// an unknown organization is `UnknownOrg`; a role in one organization says nothing about
/// another.
pub async fn roles_set_list_and_isolate(store: Arc<dyn Store>) {
    let store = &*store;
    let t0 = base_time().as_millis();
    // Created out of name order, so that `memberships` has to sort.
    let zulu = make_org(store, "zulu-roles").await;
    let alpha = make_org(store, "alpha-roles").await;
    let mike = make_org(store, "mike-roles").await;
    // Ids, emails and display names sort three different ways: `members` goes by email.
    let mut users = Vec::new();
    for (n, email, display_name) in [
        (1, "carol@example.com", "Aaron Carol"),
        (2, "Alice@Example.com", "Zed Alice"),
        (3, "bob@example.org", "Mid Bob"),
    ] {
        let user = User {
            id: fixed_id(USER_IDS, n),
            email: email.to_string(),
            display_name: display_name.to_string(),
            password_hash: None,
            created_at: ts(t0 + i64::from(n)),
        };
        users.push(create_user_ok(store, user).await);
    }
    let [carol, alice, bob] = [&users[0], &users[1], &users[2]];

    let set = |org: &Org, user: &User, role: Option<Role>| {
        let what = format!("set_role({}, {}, {role:?})", org.name, user.email);
        let (org_id, user_id) = (org.id, user.id);
        async move { ok(store.set_role(org_id, user_id, role).await, what) }
    };
    let role_of = |org: &Org, user: &User| {
        let what = format!("role_of({}, {})", org.name, user.email);
        let (org_id, user_id) = (org.id, user.id);
        async move { ok(store.role_of(org_id, user_id).await, what) }
    };
    let memberships = |user: &User| {
        let what = format!("memberships({})", user.email);
        let user_id = user.id;
        async move { ok(store.memberships(user_id).await, what) }
    };
    let members = |org: &Org| {
        let what = format!("members({})", org.name);
        let org_id = org.id;
        async move { ok(store.members(org_id).await, what) }
    };

    for org in [&zulu, &alpha, &mike] {
        assert!(
            members(org).await.is_empty(),
            "a new organization has members"
        );
        for user in &users {
            assert_eq!(role_of(org, user).await, None, "a new user has a role");
        }
    }
    for user in &users {
        assert!(
            memberships(user).await.is_empty(),
            "a new user has memberships"
        );
    }

    // Add.
    assert_eq!(
        set(&zulu, alice, Some(Role::Admin)).await,
        None,
        "adding a member returns no previous role"
    );
    assert_eq!(set(&mike, alice, Some(Role::Member)).await, None);
    assert_eq!(set(&alpha, alice, Some(Role::Member)).await, None);
    assert_eq!(set(&zulu, carol, Some(Role::Admin)).await, None);
    assert_eq!(set(&zulu, bob, Some(Role::Member)).await, None);
    assert_eq!(set(&alpha, carol, Some(Role::Member)).await, None);
    assert_eq!(role_of(&zulu, alice).await, Some(Role::Admin));
    assert_eq!(role_of(&alpha, alice).await, Some(Role::Member));

    // Change, and set the same role again.
    assert_eq!(
        set(&zulu, alice, Some(Role::Member)).await,
        Some(Role::Admin),
        "changing a role returns the one before"
    );
    assert_eq!(role_of(&zulu, alice).await, Some(Role::Member));
    assert_eq!(
        set(&zulu, alice, Some(Role::Member)).await,
        Some(Role::Member),
        "setting the same role again returns it"
    );
    assert_eq!(
        set(&alpha, alice, Some(Role::Admin)).await,
        Some(Role::Member),
        "changing a role returns the one before"
    );

    assert_eq!(
        memberships(alice).await,
        vec![
            (alpha.clone(), Role::Admin),
            (mike.clone(), Role::Member),
            (zulu.clone(), Role::Member),
        ],
        "memberships lists every organization of the user, by name, with its role"
    );
    assert_eq!(
        members(&zulu).await,
        vec![
            (alice.clone(), Role::Member),
            (bob.clone(), Role::Member),
            (carol.clone(), Role::Admin),
        ],
        "members lists every member of the organization, by email, with its role"
    );

    // Tenant isolation: a role in one organization says nothing about another.
    assert_eq!(
        role_of(&alpha, bob).await,
        None,
        "bob is a member of zulu only, yet has a role in alpha"
    );
    assert_eq!(role_of(&mike, bob).await, None);
    assert_eq!(
        memberships(bob).await,
        vec![(zulu.clone(), Role::Member)],
        "memberships of bob"
    );
    assert_eq!(
        role_of(&zulu, carol).await,
        Some(Role::Admin),
        "carol is admin of zulu and member of alpha"
    );
    assert_eq!(role_of(&alpha, carol).await, Some(Role::Member));
    assert_eq!(role_of(&mike, carol).await, None);
    assert_eq!(
        members(&alpha).await,
        vec![(alice.clone(), Role::Admin), (carol.clone(), Role::Member)],
        "members of alpha"
    );

    // Remove.
    assert_eq!(
        set(&mike, alice, None).await,
        Some(Role::Member),
        "removing a member returns the role before"
    );
    assert_eq!(
        role_of(&mike, alice).await,
        None,
        "a removed member keeps a role"
    );
    assert_eq!(
        set(&mike, alice, None).await,
        None,
        "removing a non-member returns no previous role"
    );
    assert!(members(&mike).await.is_empty(), "mike has no members left");
    assert_eq!(
        set(&alpha, carol, None).await,
        Some(Role::Member),
        "removing carol from alpha"
    );
    assert_eq!(
        role_of(&zulu, carol).await,
        Some(Role::Admin),
        "removing carol from alpha changed her role in zulu"
    );
    assert_eq!(
        memberships(carol).await,
        vec![(zulu.clone(), Role::Admin)],
        "memberships of carol after leaving alpha"
    );
    assert_eq!(
        memberships(alice).await,
        vec![(alpha.clone(), Role::Admin), (zulu.clone(), Role::Member)],
        "memberships of alice after leaving mike"
    );

    // An unknown organization.
    let unknown = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0bad);
    for role in [Some(Role::Admin), None] {
        match store.set_role(unknown, alice.id, role).await {
            Err(StoreError::UnknownOrg(id)) => assert_eq!(
                id, unknown,
                "set_role: UnknownOrg names another organization"
            ),
            other => panic!(
                "set_role({unknown}, alice, {role:?}) for an unknown organization gave {other:?}, expected Err(StoreError::UnknownOrg)"
            ),
        }
    }
    assert_eq!(
        ok(store.role_of(unknown, alice.id).await, "role_of(unknown)"),
        None,
        "role_of in an unknown organization"
    );
    assert!(
        ok(store.members(unknown).await, "members(unknown)").is_empty(),
        "members of an unknown organization"
    );
    assert_eq!(
        memberships(alice).await,
        vec![(alpha.clone(), Role::Admin), (zulu.clone(), Role::Member)],
        "a refused set_role changed alice's memberships"
    );
}

/// Service accounts: create (a taken client id is a conflict), find by client id, list per
/// organization by name, rename and delete only within their organization; deleting revokes
/// the account's credentials at the given time.
pub async fn service_accounts_lifecycle(store: Arc<dyn Store>) {
    let store = &*store;
    let t0 = base_time().as_millis();
    let a = make_org(store, "accounts-a").await;
    let b = make_org(store, "accounts-b").await;
    let account = |n: u32, org: &Org, name: &str, client_id: &str| ServiceAccount {
        id: fixed_id(ACCOUNT_IDS, n),
        org_id: org.id,
        name: name.to_string(),
        client_id: client_id.to_string(),
        secret_hash: fake_hash(n as u8),
        created_at: ts(t0 + i64::from(n) * 1000),
    };
    // Created out of name order.
    let specs = [
        account(1, &a, "deploy-bot", "sa_01HZX3DEPLOY"),
        account(2, &a, "audit-exporter", "sa_01HZX3EXPORT"),
        account(3, &b, "ci", "sa_01HZX3CI"),
        account(4, &a, "backup", "sa_01HZX3BACKUP"),
    ];
    let mut accounts = Vec::new();
    for spec in specs {
        let created = ok(
            store.create_service_account(spec.clone()).await,
            format!("create_service_account({})", spec.name),
        );
        assert_eq!(created, spec, "create_service_account returns the account");
        accounts.push(created);
    }
    let [deploy, exporter, ci, backup] = [
        accounts[0].clone(),
        accounts[1].clone(),
        accounts[2].clone(),
        accounts[3].clone(),
    ];

    let by_client_id = |client_id: String| async move {
        ok(
            store.service_account_by_client_id(&client_id).await,
            format!("service_account_by_client_id({client_id:?})"),
        )
    };
    let list = |org: &Org| {
        let what = format!("service_accounts({})", org.name);
        let org_id = org.id;
        async move { ok(store.service_accounts(org_id).await, what) }
    };

    for account in &accounts {
        assert_eq!(
            by_client_id(account.client_id.clone()).await.as_ref(),
            Some(account),
            "service_account_by_client_id finds {}",
            account.name
        );
    }
    for missing in ["sa_nope", "", "SA_01HZX3CI", "sa_01HZX3C"] {
        assert_eq!(
            by_client_id(missing.to_string()).await,
            None,
            "service_account_by_client_id({missing:?}) finds nothing"
        );
    }
    assert_eq!(
        list(&a).await,
        vec![exporter.clone(), backup.clone(), deploy.clone()],
        "service_accounts of A, by name"
    );
    assert_eq!(list(&b).await, vec![ci.clone()], "service_accounts of B");
    let unknown_org = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0bad);
    assert!(
        ok(
            store.service_accounts(unknown_org).await,
            "service_accounts(unknown)"
        )
        .is_empty(),
        "service_accounts of an unknown organization"
    );

    // A taken client id, in the same or another organization.
    for (n, org) in [(5, &b), (6, &a)] {
        let duplicate = account(n, org, "impostor", &deploy.client_id);
        expect_conflict(
            store.create_service_account(duplicate).await,
            &format!(
                "create_service_account with the taken client id {:?} in {}",
                deploy.client_id, org.name
            ),
        );
    }
    assert_eq!(
        by_client_id(deploy.client_id.clone()).await.as_ref(),
        Some(&deploy),
        "a refused duplicate replaced the account with that client id"
    );
    assert_eq!(
        list(&b).await,
        vec![ci.clone()],
        "a refused duplicate was listed"
    );

    // Rename: within its organization only.
    let renamed = ok(
        store
            .rename_service_account(a.id, deploy.id, "aaa-release-bot")
            .await,
        "rename_service_account",
    );
    let deploy = ServiceAccount {
        name: "aaa-release-bot".to_string(),
        ..deploy
    };
    assert_eq!(
        renamed.as_ref(),
        Some(&deploy),
        "rename_service_account returns the renamed account"
    );
    assert_eq!(
        by_client_id(deploy.client_id.clone()).await.as_ref(),
        Some(&deploy),
        "the new name is kept"
    );
    assert_eq!(
        list(&a).await,
        vec![deploy.clone(), exporter.clone(), backup.clone()],
        "service_accounts of A, by their new names"
    );
    assert_eq!(
        ok(
            store
                .rename_service_account(b.id, backup.id, "stolen")
                .await,
            "rename_service_account(other org)"
        ),
        None,
        "renaming A's account with B's id returns None"
    );
    assert_eq!(
        ok(
            store
                .rename_service_account(a.id, fixed_id(ACCOUNT_IDS, 99), "ghost")
                .await,
            "rename_service_account(unknown)"
        ),
        None,
        "renaming an unknown account returns None"
    );
    assert_eq!(
        by_client_id(backup.client_id.clone()).await.as_ref(),
        Some(&backup),
        "renaming with another organization's id changed the account"
    );
    assert_eq!(list(&b).await, vec![ci.clone()], "B's accounts");

    // Credentials of the accounts, to see which ones deleting revokes.
    let credential = |n: u32, account: &ServiceAccount, revoked_at: Option<Timestamp>| Credential {
        id: fixed_id(CREDENTIAL_IDS, n),
        kind: CredentialKind::AccessToken,
        token_hash: fake_hash(100 + n as u8),
        org_id: Some(account.org_id),
        user_id: None,
        service_account_id: Some(account.id),
        name: format!("{} token {n}", account.name),
        created_at: ts(t0 + 10_000 + i64::from(n)),
        expires_at: Some(ts(t0 + 10_000 + 3_600_000)),
        revoked_at,
    };
    let earlier = ts(t0 + 20_000);
    let backup_live = credential(1, &backup, None);
    let backup_live_2 = credential(2, &backup, None);
    let backup_revoked = credential(3, &backup, Some(earlier));
    let deploy_live = credential(4, &deploy, None);
    let ci_live = credential(5, &ci, None);
    let all_credentials = [
        &backup_live,
        &backup_live_2,
        &backup_revoked,
        &deploy_live,
        &ci_live,
    ];
    for credential in all_credentials {
        ok(
            store.create_credential(credential.clone()).await,
            format!("create_credential({})", credential.name),
        );
    }
    let stored_credential = |credential: &Credential| {
        let hash = credential.token_hash;
        let what = format!("credential_by_hash({})", credential.name);
        async move { ok(store.credential_by_hash(hash).await, what) }
    };

    // Delete with another organization's id: nothing happens.
    let at = ts(t0 + 30_000);
    assert_eq!(
        ok(
            store.delete_service_account(b.id, backup.id, at).await,
            "delete_service_account(other org)"
        ),
        None,
        "deleting A's account with B's id returns None"
    );
    assert_eq!(
        by_client_id(backup.client_id.clone()).await.as_ref(),
        Some(&backup),
        "deleting with another organization's id removed the account"
    );
    assert_eq!(
        list(&a).await,
        vec![deploy.clone(), exporter.clone(), backup.clone()],
        "A's accounts after a refused delete"
    );
    for credential in all_credentials {
        assert_eq!(
            stored_credential(credential).await.as_ref(),
            Some(credential),
            "deleting with another organization's id changed a credential"
        );
    }
    assert_eq!(
        ok(
            store
                .delete_service_account(a.id, fixed_id(ACCOUNT_IDS, 99), at)
                .await,
            "delete_service_account(unknown)"
        ),
        None,
        "deleting an unknown account returns None"
    );

    // Delete for real.
    assert_eq!(
        ok(
            store.delete_service_account(a.id, backup.id, at).await,
            "delete_service_account"
        )
        .as_ref(),
        Some(&backup),
        "delete_service_account returns the deleted account"
    );
    assert_eq!(
        by_client_id(backup.client_id.clone()).await,
        None,
        "a deleted account is still found by client id"
    );
    assert_eq!(
        list(&a).await,
        vec![deploy.clone(), exporter.clone()],
        "a deleted account is still listed"
    );
    assert_eq!(
        ok(
            store.delete_service_account(a.id, backup.id, at).await,
            "delete_service_account(again)"
        ),
        None,
        "deleting an account twice returns None the second time"
    );
    assert_eq!(
        ok(
            store
                .rename_service_account(a.id, backup.id, "zombie")
                .await,
            "rename_service_account(deleted)"
        ),
        None,
        "renaming a deleted account returns None"
    );
    for credential in [&backup_live, &backup_live_2] {
        let expected = Credential {
            revoked_at: Some(at),
            ..credential.clone()
        };
        assert_eq!(
            stored_credential(credential).await,
            Some(expected),
            "deleting an account revokes its credential {} at the time given",
            credential.name
        );
    }
    assert_eq!(
        stored_credential(&backup_revoked).await.as_ref(),
        Some(&backup_revoked),
        "deleting an account changed the revocation time of a credential revoked before"
    );
    for credential in [&deploy_live, &ci_live] {
        assert_eq!(
            stored_credential(credential).await.as_ref(),
            Some(credential),
            "deleting an account changed another account's credential {}",
            credential.name
        );
    }
    assert_eq!(list(&b).await, vec![ci], "B's accounts after A's delete");
}

/// Credentials round-trip field by field (every optional field absent and present), and
/// `credentials` filters by kind, user and organization, newest first, revoked ones too.
pub async fn credentials_round_trip_and_filter(store: Arc<dyn Store>) {
    let store = &*store;
    let t0 = base_time().as_millis();
    let a = make_org(store, "credentials-a").await;
    let b = make_org(store, "credentials-b").await;
    let mut users = Vec::new();
    for (n, email) in [(1, "alice@example.com"), (2, "bob@example.org")] {
        let user = User {
            id: fixed_id(USER_IDS, n),
            email: email.to_string(),
            display_name: email.to_string(),
            password_hash: None,
            created_at: ts(t0),
        };
        users.push(create_user_ok(store, user).await);
    }
    let (u1, u2) = (users[0].id, users[1].id);
    let account = ServiceAccount {
        id: fixed_id(ACCOUNT_IDS, 1),
        org_id: a.id,
        name: "exporter".to_string(),
        client_id: "sa_credentials_exporter".to_string(),
        secret_hash: fake_hash(1),
        created_at: ts(t0),
    };
    ok(
        store.create_service_account(account.clone()).await,
        "create_service_account",
    );

    let credential = |n: u32,
                      kind: CredentialKind,
                      org_id: Option<Uuid>,
                      user_id: Option<Uuid>,
                      created_ms: i64,
                      expires_at: Option<Timestamp>,
                      revoked_at: Option<Timestamp>| Credential {
        id: fixed_id(CREDENTIAL_IDS, n),
        kind,
        token_hash: fake_hash(n as u8),
        org_id,
        user_id,
        service_account_id: None,
        name: format!("credential {n} — “{}”", kind.as_str()),
        created_at: ts(created_ms),
        expires_at,
        revoked_at,
    };
    use CredentialKind::{AccessToken, ApiToken, Ingest, Session};
    let ingest_a = credential(1, Ingest, Some(a.id), None, t0, None, None);
    let ingest_platform = credential(
        2,
        Ingest,
        None,
        None,
        t0 + 10,
        Some(ts(t0 + 365 * MS_PER_DAY)),
        None,
    );
    let api_u1_a = credential(
        3,
        ApiToken,
        Some(a.id),
        Some(u1),
        t0 + 20,
        Some(ts(t0 + MS_PER_DAY)),
        None,
    );
    let api_u1_b = credential(4, ApiToken, Some(b.id), Some(u1), t0 + 30, None, None);
    let api_u2_a = credential(
        5,
        ApiToken,
        Some(a.id),
        Some(u2),
        t0 + 40,
        Some(ts(t0 + 2 * MS_PER_DAY)),
        Some(ts(t0 + 50)),
    );
    let access = Credential {
        service_account_id: Some(account.id),
        ..credential(
            6,
            AccessToken,
            Some(a.id),
            None,
            t0 + 5,
            Some(ts(t0 + 5 + 3_600_000)),
            None,
        )
    };
    let session_u1 = credential(
        7,
        Session,
        None,
        Some(u1),
        t0 + 15,
        Some(ts(t0 + 15 + 12 * 3_600_000)),
        None,
    );
    let api_u1_a_newer = credential(
        8,
        ApiToken,
        Some(a.id),
        Some(u1),
        t0 + 25,
        None,
        Some(ts(t0 + 26)),
    );
    let all = [
        &ingest_a,
        &ingest_platform,
        &api_u1_a,
        &api_u1_b,
        &api_u2_a,
        &access,
        &session_u1,
        &api_u1_a_newer,
    ];
    for credential in all {
        let created = ok(
            store.create_credential(credential.clone()).await,
            format!("create_credential({})", credential.name),
        );
        assert_eq!(
            &created, credential,
            "create_credential returns the credential"
        );
    }
    for credential in all {
        assert_eq!(
            ok(
                store.credential_by_hash(credential.token_hash).await,
                "credential_by_hash"
            )
            .as_ref(),
            Some(credential),
            "credential_by_hash round-trips {}",
            credential.name
        );
    }
    assert_eq!(
        ok(
            store.credential_by_hash(fake_hash(200)).await,
            "credential_by_hash(unknown)"
        ),
        None,
        "credential_by_hash of a hash never stored"
    );

    // (kind, user, organization, expected newest first)
    type ListCase<'a> = (
        CredentialKind,
        Option<Uuid>,
        Option<Uuid>,
        Vec<&'a Credential>,
    );
    let cases: [ListCase; 13] = [
        (
            ApiToken,
            None,
            None,
            vec![&api_u2_a, &api_u1_b, &api_u1_a_newer, &api_u1_a],
        ),
        (
            ApiToken,
            Some(u1),
            None,
            vec![&api_u1_b, &api_u1_a_newer, &api_u1_a],
        ),
        (
            ApiToken,
            Some(u1),
            Some(a.id),
            vec![&api_u1_a_newer, &api_u1_a],
        ),
        (ApiToken, Some(u1), Some(b.id), vec![&api_u1_b]),
        (
            ApiToken,
            None,
            Some(a.id),
            vec![&api_u2_a, &api_u1_a_newer, &api_u1_a],
        ),
        (ApiToken, Some(u2), Some(b.id), vec![]),
        (Ingest, None, None, vec![&ingest_platform, &ingest_a]),
        (Ingest, None, Some(a.id), vec![&ingest_a]),
        (Ingest, None, Some(b.id), vec![]),
        (Session, Some(u1), None, vec![&session_u1]),
        (Session, Some(u2), None, vec![]),
        (AccessToken, None, Some(a.id), vec![&access]),
        (AccessToken, Some(u1), None, vec![]),
    ];
    for (kind, user_id, org_id, expected) in cases {
        let got = ok(
            store.credentials(kind, user_id, org_id).await,
            "credentials",
        );
        let expected: Vec<Credential> = expected.into_iter().cloned().collect();
        let names =
            |list: &[Credential]| -> Vec<String> { list.iter().map(|c| c.name.clone()).collect() };
        assert_eq!(
            names(&got),
            names(&expected),
            "credentials({kind:?}, user {user_id:?}, org {org_id:?}): the credentials of that kind, user and organization, newest first"
        );
        assert_eq!(
            got, expected,
            "credentials({kind:?}, user {user_id:?}, org {org_id:?}) returns the stored fields"
        );
    }
}

/// `revoke_credential` returns the credential as it was and keeps the first revocation
/// time; `is_live` is "not revoked and not yet expired"; `purge_expired_credentials` deletes
/// exactly the credentials that expired before the given time and says how many.
pub async fn credentials_revoke_liveness_purge(store: Arc<dyn Store>) {
    let store = &*store;
    let t0 = base_time().as_millis();
    let org = make_org(store, "revoke").await;
    let credential =
        |n: u32, expires_at: Option<Timestamp>, revoked_at: Option<Timestamp>| Credential {
            id: fixed_id(CREDENTIAL_IDS, n),
            kind: CredentialKind::Ingest,
            token_hash: fake_hash(n as u8),
            org_id: Some(org.id),
            user_id: None,
            service_account_id: None,
            name: format!("ingest key {n}"),
            created_at: ts(t0 + i64::from(n)),
            expires_at,
            revoked_at,
        };

    // `is_live`, on values alone.
    let at = ts(t0 + 1000);
    let forever = credential(1, None, None);
    let expiring = credential(2, Some(at), None);
    let revoked = credential(3, Some(at), Some(ts(t0 + 500)));
    let revoked_forever = credential(4, None, Some(ts(t0 + 500)));
    let liveness = [
        (&forever, ts(t0), true),
        (&forever, ts(t0 + 100 * MS_PER_DAY), true),
        (&expiring, at.plus_millis(-1), true),
        (&expiring, at, false),
        (&expiring, at.plus_millis(1), false),
        (&revoked, ts(t0), false),
        (&revoked, at.plus_millis(-1), false),
        (&revoked_forever, ts(t0), false),
    ];
    for (credential, now, live) in liveness {
        assert_eq!(
            credential.is_live(now),
            live,
            "is_live at {now} of {credential:?}"
        );
    }

    // Revocation.
    // Expires after the purge bound below, so that it survives the purge.
    let first = credential(10, Some(ts(t0 + 20 * MS_PER_DAY)), None);
    let second = credential(11, None, None);
    for credential in [&first, &second] {
        ok(
            store.create_credential(credential.clone()).await,
            "create_credential",
        );
    }
    let stored = |credential: &Credential| {
        let hash = credential.token_hash;
        async move { ok(store.credential_by_hash(hash).await, "credential_by_hash") }
    };
    let revoked_at = ts(t0 + 2000);
    assert_eq!(
        ok(
            store.revoke_credential(first.id, revoked_at).await,
            "revoke_credential"
        )
        .as_ref(),
        Some(&first),
        "revoke_credential returns the credential as it was before (not revoked)"
    );
    let first_revoked = Credential {
        revoked_at: Some(revoked_at),
        ..first.clone()
    };
    assert_eq!(
        stored(&first).await.as_ref(),
        Some(&first_revoked),
        "a revoked credential has revoked_at set to the time given"
    );
    assert!(
        !first_revoked.is_live(ts(t0 + 3000)),
        "a revoked credential is live"
    );
    assert_eq!(
        stored(&second).await.as_ref(),
        Some(&second),
        "revoking one credential changed another"
    );
    assert_eq!(
        ok(
            store.revoke_credential(first.id, ts(t0 + 9000)).await,
            "revoke_credential(again)"
        )
        .as_ref(),
        Some(&first_revoked),
        "revoking again returns the credential with its first revocation time"
    );
    assert_eq!(
        stored(&first).await.as_ref(),
        Some(&first_revoked),
        "revoking again changed the first revocation time"
    );
    assert_eq!(
        ok(
            store
                .revoke_credential(fixed_id(CREDENTIAL_IDS, 99), revoked_at)
                .await,
            "revoke_credential(unknown)"
        ),
        None,
        "revoking an unknown credential returns None"
    );

    // Purging.
    let before = ts(t0 + 10 * MS_PER_DAY);
    let purge_specs: [(u32, Option<Timestamp>, Option<Timestamp>, bool); 8] = [
        (20, Some(before.plus_millis(-MS_PER_DAY)), None, true),
        (21, Some(before.plus_millis(-1)), None, true),
        (22, Some(before), None, false),
        (23, Some(before.plus_millis(1)), None, false),
        (24, None, None, false),
        (25, None, Some(ts(t0)), false),
        (26, Some(before.plus_millis(-5)), Some(ts(t0)), true),
        (
            27,
            Some(before.plus_millis(MS_PER_DAY)),
            Some(ts(t0)),
            false,
        ),
    ];
    let mut kept = vec![first_revoked.clone(), second.clone()];
    let mut purged = Vec::new();
    for (n, expires_at, revoked_at, expect_purged) in purge_specs {
        let credential = credential(n, expires_at, revoked_at);
        ok(
            store.create_credential(credential.clone()).await,
            "create_credential",
        );
        if expect_purged {
            purged.push(credential);
        } else {
            kept.push(credential);
        }
    }
    assert_eq!(
        ok(
            store.purge_expired_credentials(before).await,
            "purge_expired_credentials"
        ),
        purged.len() as u64,
        "purge_expired_credentials({before}) returns how many credentials expired before then"
    );
    for credential in &purged {
        assert_eq!(
            stored(credential).await,
            None,
            "{} (expires {:?}) expired before {before} but was not purged",
            credential.name,
            credential.expires_at
        );
    }
    for credential in &kept {
        assert_eq!(
            stored(credential).await.as_ref(),
            Some(credential),
            "{} (expires {:?}, revoked {:?}) was purged or changed by purge_expired_credentials({before})",
            credential.name,
            credential.expires_at,
            credential.revoked_at
        );
    }
    assert_eq!(
        ok(
            store.purge_expired_credentials(before).await,
            "purge_expired_credentials(again)"
        ),
        0,
        "purging twice deletes nothing the second time"
    );
    let mut listed = ok(
        store
            .credentials(CredentialKind::Ingest, None, Some(org.id))
            .await,
        "credentials",
    );
    listed.sort_by_key(|c| c.id);
    kept.sort_by_key(|c| c.id);
    assert_eq!(listed, kept, "the credentials left after purging");
}

/// An idempotent append that must store its batch.
async fn append_idempotent_stored(
    store: &dyn Store,
    batch: Vec<Append>,
    key: &IdempotencyKey,
    context: &str,
) -> Vec<Event> {
    match store.append_idempotent(batch.clone(), key.clone()).await {
        Ok(AppendOutcome::Stored(events)) => {
            assert_appended(&batch, &events, context);
            events
        }
        other => panic!(
            "{context}: append_idempotent gave {other:?}, expected Ok(AppendOutcome::Stored)"
        ),
    }
}

/// The chain heads and counts of some organizations, to see that nothing was stored.
async fn snapshot(store: &dyn Store, orgs: &[&Org]) -> Vec<(ChainHead, Count)> {
    let mut state = Vec::new();
    for org in orgs {
        let head = ok(store.chain_head(org.id).await, "chain_head");
        state.push((head, count_all(store, org.id, &Filter::default()).await));
    }
    state
}

/// An idempotent append stores its batch once: the same key with the same request hash
/// replays the ids stored the first time and stores nothing; with another hash it is a
/// conflict; another scope stores anew; a batch that fails stores neither its events nor
/// its key, so a retry with the same key is stored.
pub async fn idempotent_append_replays_and_conflicts(store: Arc<dyn Store>) {
    let store = &*store;
    let a = make_org(store, "idempotent-a").await;
    let b = make_org(store, "idempotent-b").await;
    let orgs = [&a, &b];
    let t0 = base_time().as_millis();
    let plain = append_ok(
        store,
        vec![to(&a, body("channel_created", "alice@example.com", t0))],
    )
    .await;

    let batch = vec![
        to(&a, body("token_created", "alice@example.com", t0 + 1)),
        to(&b, body("token_created", "bob@example.org", t0 + 2)),
        to(&a, body("token_revoked", "alice@example.com", t0 + 3)),
    ];
    let key = IdempotencyKey {
        scope: format!("{}:import-2026-03-02", fixed_id(CREDENTIAL_IDS, 1)),
        request_hash: fake_hash(1),
    };
    let first =
        append_idempotent_stored(store, batch.clone(), &key, "the first use of a key").await;
    let seqs: Vec<(bool, u64)> = first.iter().map(|e| (e.org_id == a.id, e.seq)).collect();
    assert_eq!(
        seqs,
        [(true, 2), (false, 1), (true, 3)],
        "an idempotent append numbers like append (true = org A)"
    );
    let first_ids: Vec<Uuid> = first.iter().map(|e| e.id).collect();
    let state = snapshot(store, &orgs).await;

    let replay = |batch: Vec<Append>, key: IdempotencyKey, expected: Vec<Uuid>, context: String| async move {
        match store.append_idempotent(batch, key).await {
            Ok(AppendOutcome::Replayed(ids)) => assert_eq!(
                ids, expected,
                "{context}: Replayed returns the ids stored the first time, in batch order"
            ),
            other => panic!(
                "{context}: append_idempotent gave {other:?}, expected Ok(AppendOutcome::Replayed)"
            ),
        }
    };
    // The same request again, then another body under the same hash: the store goes by the
    // hash, and stores nothing either time.
    let other_body = vec![to(
        &a,
        body("policy_created", "mallory@example.com", t0 + 9),
    )];
    for (attempt, replayed_batch) in [batch.clone(), batch.clone(), other_body]
        .into_iter()
        .enumerate()
    {
        let context = format!("replay {attempt} of the same key and request hash");
        replay(
            replayed_batch,
            key.clone(),
            first_ids.clone(),
            context.clone(),
        )
        .await;
        assert_eq!(
            snapshot(store, &orgs).await,
            state,
            "{context}: events were stored (chain head or count moved)"
        );
    }

    // The same scope with another request.
    let conflicting = IdempotencyKey {
        scope: key.scope.clone(),
        request_hash: fake_hash(2),
    };
    for conflicting_batch in [
        batch.clone(),
        vec![to(&b, body("policy_created", "bob@example.org", t0 + 4))],
    ] {
        expect_conflict(
            store
                .append_idempotent(conflicting_batch, conflicting.clone())
                .await,
            "append_idempotent with a used scope and another request hash",
        );
        assert_eq!(
            snapshot(store, &orgs).await,
            state,
            "a conflicting idempotent append stored events"
        );
    }
    replay(
        batch.clone(),
        key.clone(),
        first_ids.clone(),
        "the original request after a conflict".to_string(),
    )
    .await;

    // Another scope (another credential with the same client key) stores anew.
    let other_scope = IdempotencyKey {
        scope: format!("{}:import-2026-03-02", fixed_id(CREDENTIAL_IDS, 2)),
        request_hash: fake_hash(1),
    };
    let second =
        append_idempotent_stored(store, batch.clone(), &other_scope, "another scope").await;
    let seqs: Vec<(bool, u64)> = second.iter().map(|e| (e.org_id == a.id, e.seq)).collect();
    assert_eq!(
        seqs,
        [(true, 4), (false, 2), (true, 5)],
        "another scope with the same hash stores the batch again (true = org A)"
    );
    assert!(
        second.iter().all(|e| !first_ids.contains(&e.id)),
        "another scope's events reuse the first scope's ids"
    );
    let state = snapshot(store, &orgs).await;
    replay(
        batch.clone(),
        key.clone(),
        first_ids.clone(),
        "the first scope after another was used".to_string(),
    )
    .await;

    // A batch that fails stores neither its events nor its key.
    let unknown = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0bad);
    let failing_key = IdempotencyKey {
        scope: format!("{}:import-2026-03-03", fixed_id(CREDENTIAL_IDS, 1)),
        request_hash: fake_hash(3),
    };
    let failing = vec![
        to(&a, body("channel_deleted", "alice@example.com", t0 + 10)),
        Append {
            org_id: unknown,
            body: body("channel_deleted", "mallory@example.com", t0 + 11),
        },
    ];
    match store.append_idempotent(failing, failing_key.clone()).await {
        Err(StoreError::UnknownOrg(id)) => assert_eq!(
            id, unknown,
            "a failing idempotent append: UnknownOrg names another organization"
        ),
        other => panic!(
            "an idempotent append naming an unknown organization gave {other:?}, expected Err(StoreError::UnknownOrg({unknown}))"
        ),
    }
    assert_eq!(
        snapshot(store, &orgs).await,
        state,
        "a failing idempotent append stored events"
    );
    let retry = vec![
        to(&a, body("channel_deleted", "alice@example.com", t0 + 10)),
        to(&b, body("channel_deleted", "bob@example.org", t0 + 11)),
    ];
    let retried = append_idempotent_stored(
        store,
        retry.clone(),
        &failing_key,
        "retrying a key whose batch failed (the failure must not have kept the key)",
    )
    .await;
    let retried_ids: Vec<Uuid> = retried.iter().map(|e| e.id).collect();
    replay(
        retry,
        failing_key,
        retried_ids,
        "the retried key".to_string(),
    )
    .await;

    // Everything was stored exactly once, as returned.
    let chain_a = verified_chain(store, a.id).await;
    let chain_b = verified_chain(store, b.id).await;
    let mut expected_a: Vec<Event> = Vec::new();
    let mut expected_b: Vec<Event> = Vec::new();
    for event in plain.into_iter().chain(first).chain(second).chain(retried) {
        if event.org_id == a.id {
            expected_a.push(event);
        } else {
            expected_b.push(event);
        }
    }
    assert_same_events(&expected_a, &chain_a, "A's events after idempotent appends");
    assert_same_events(&expected_b, &chain_b, "B's events after idempotent appends");
}

/// Eight tasks sending the same key and request at once: exactly one stores the batch, the
/// others replay its ids, and the events are stored once.
pub async fn idempotent_append_concurrent_same_key(store: Arc<dyn Store>) {
    const TASKS: usize = 8;
    let org = make_org(&*store, "idempotent-race").await;
    let t0 = base_time().as_millis();
    let batch = vec![
        to(&org, body("channel_created", "alice@example.com", t0)),
        to(&org, body("channel_deleted", "alice@example.com", t0 + 1)),
    ];
    let key = IdempotencyKey {
        scope: format!("{}:race", fixed_id(CREDENTIAL_IDS, 1)),
        request_hash: fake_hash(7),
    };
    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
    let mut handles = Vec::new();
    for _ in 0..TASKS {
        let (store, batch, key, barrier) = (
            Arc::clone(&store),
            batch.clone(),
            key.clone(),
            Arc::clone(&barrier),
        );
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            store.append_idempotent(batch, key).await
        }));
    }
    let mut stored: Vec<Vec<Event>> = Vec::new();
    let mut replayed: Vec<Vec<Uuid>> = Vec::new();
    for handle in handles {
        match handle.await.expect("an appending task panicked") {
            Ok(AppendOutcome::Stored(events)) => stored.push(events),
            Ok(AppendOutcome::Replayed(ids)) => replayed.push(ids),
            Err(e) => panic!("a concurrent idempotent append failed: {e} ({e:?})"),
        }
    }
    assert_eq!(
        stored.len(),
        1,
        "{} of {TASKS} concurrent appends with the same key stored the batch; expected exactly one",
        stored.len()
    );
    let events = stored.remove(0);
    assert_appended(
        &batch,
        &events,
        "the concurrent idempotent append that stored",
    );
    let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    for got in &replayed {
        assert_eq!(
            got, &ids,
            "a concurrent replay returned other ids than the append that stored"
        );
    }
    let chain = verified_chain(&*store, org.id).await;
    assert_same_events(
        &events,
        &chain,
        "the events of concurrent idempotent appends",
    );
    assert_eq!(
        count_all(&*store, org.id, &Filter::default()).await,
        Count { n: 2, exact: true },
        "the batch is stored once"
    );
}

/// A pending export job of `org`, created at `created_ms`.
fn pending_job(n: u32, org: &Org, created_ms: i64) -> ExportJob {
    ExportJob {
        id: fixed_id(JOB_IDS, n),
        org_id: org.id,
        status: JobStatus::Pending,
        request: format!(
            r#"{{"filter":{{"action":["channel_created"],"q":"prod"}},"format":"jsonl","compression":"gzip","n":{n}}}"#
        ),
        requested_by: "alice@example.com".to_string(),
        created_at: ts(created_ms),
        completed_at: None,
        progress: 0,
        total_records: None,
        error_message: None,
        file_name: None,
        expires_at: None,
        claimed_by: None,
        heartbeat_at: None,
    }
}

async fn get_job_ok(store: &dyn Store, org_id: Uuid, id: Uuid) -> Option<ExportJob> {
    ok(
        store.get_job(org_id, id).await,
        format!("get_job({org_id}, {id})"),
    )
}

/// Export jobs round-trip field by field (every optional field absent and present), are
/// scoped to their organization, and `update_job` writes every field back, clearing ones
/// set to `None`.
pub async fn export_jobs_round_trip_and_update(store: Arc<dyn Store>) {
    let store = &*store;
    let t0 = base_time().as_millis();
    let a = make_org(store, "jobs-a").await;
    let b = make_org(store, "jobs-b").await;
    let minimal = pending_job(1, &a, t0);
    let full = ExportJob {
        id: fixed_id(JOB_IDS, 2),
        org_id: a.id,
        status: JobStatus::Completed,
        request: r#"{"filter":{"actor":["zoë@例え.jp"]},"format":"csv","compression":"none"}"#
            .to_string(),
        requested_by: "CI Bot — “exporter”".to_string(),
        created_at: ts(t0 + 1),
        completed_at: Some(ts(t0 + 60_000)),
        progress: 100,
        total_records: Some(5_000_000_000),
        error_message: Some("partial: 3 events skipped\nsee log".to_string()),
        file_name: Some("jobs-a/0190-export.csv.gz".to_string()),
        expires_at: Some(ts(t0 + 7 * MS_PER_DAY)),
        claimed_by: Some("runner-a:4242".to_string()),
        heartbeat_at: Some(ts(t0 + 59_999)),
    };
    let other = pending_job(3, &b, t0 + 2);
    for job in [&minimal, &full, &other] {
        let created = ok(store.create_job(job.clone()).await, "create_job");
        assert_eq!(&created, job, "create_job returns the job");
    }
    for job in [&minimal, &full, &other] {
        assert_eq!(
            get_job_ok(store, job.org_id, job.id).await.as_ref(),
            Some(job),
            "get_job round-trips job {}",
            job.id
        );
    }
    for job in [&minimal, &full] {
        assert_eq!(
            get_job_ok(store, b.id, job.id).await,
            None,
            "get_job with organization B returns organization A's job"
        );
    }
    assert_eq!(
        get_job_ok(store, a.id, other.id).await,
        None,
        "get_job with organization A returns organization B's job"
    );
    assert_eq!(
        get_job_ok(store, a.id, fixed_id(JOB_IDS, 99)).await,
        None,
        "get_job of an unknown job"
    );

    // A job's life, written back step by step.
    let running = ExportJob {
        status: JobStatus::Running,
        progress: 40,
        total_records: Some(1200),
        claimed_by: Some("runner-1".to_string()),
        heartbeat_at: Some(ts(t0 + 5000)),
        ..minimal.clone()
    };
    let completed = ExportJob {
        status: JobStatus::Completed,
        completed_at: Some(ts(t0 + 9000)),
        progress: 100,
        total_records: Some(3000),
        file_name: Some("jobs-a/minimal.jsonl.gz".to_string()),
        expires_at: Some(ts(t0 + MS_PER_DAY)),
        claimed_by: None,
        heartbeat_at: None,
        ..running.clone()
    };
    let expired = ExportJob {
        status: JobStatus::Expired,
        file_name: None,
        ..completed.clone()
    };
    let failed = ExportJob {
        status: JobStatus::Failed,
        completed_at: Some(ts(t0 + 70_000)),
        error_message: Some("disk full".to_string()),
        file_name: None,
        total_records: None,
        expires_at: None,
        ..full.clone()
    };
    for (step, job) in [&running, &completed, &expired, &failed]
        .into_iter()
        .enumerate()
    {
        ok(
            store.update_job(job).await,
            format!("update_job step {step}"),
        );
        assert_eq!(
            get_job_ok(store, job.org_id, job.id).await.as_ref(),
            Some(job),
            "update_job step {step} ({:?}) is kept",
            job.status
        );
    }
    assert_eq!(
        get_job_ok(store, a.id, minimal.id).await.as_ref(),
        Some(&expired),
        "updating another job changed this one"
    );
    assert_eq!(
        get_job_ok(store, b.id, other.id).await.as_ref(),
        Some(&other),
        "updating A's jobs changed B's"
    );
}

/// Checks a claimed job: the job as it was, now running for `runner` with a heartbeat at
/// `now` (a taken-over job may restart its progress), and stored so.
async fn assert_claimed(
    store: &dyn Store,
    claimed: Option<ExportJob>,
    before: &ExportJob,
    runner: &str,
    now: Timestamp,
    context: &str,
) {
    let claimed = claimed.unwrap_or_else(|| {
        panic!(
            "{context}: claim_job returned None; expected job {} ({:?}, created {})",
            before.id, before.status, before.created_at
        )
    });
    assert_eq!(
        claimed.id, before.id,
        "{context}: claim_job claimed another job"
    );
    let progress = if before.status == JobStatus::Running {
        claimed.progress
    } else {
        before.progress
    };
    let expected = ExportJob {
        status: JobStatus::Running,
        claimed_by: Some(runner.to_string()),
        heartbeat_at: Some(now),
        progress,
        ..before.clone()
    };
    assert_eq!(
        claimed, expected,
        "{context}: the claimed job is running for {runner:?} since now, and otherwise as it was"
    );
    assert!(claimed.progress <= 100, "{context}: progress above 100");
    assert_eq!(
        get_job_ok(store, claimed.org_id, claimed.id).await.as_ref(),
        Some(&claimed),
        "{context}: the claim is stored"
    );
}

/// `claim_job` takes the oldest pending job, then running jobs whose heartbeat is older than
/// `stale_before`, never a fresh running job or a finished one, and never the same job
/// twice; `expired_jobs` lists completed jobs whose files expire before `now`.
pub async fn export_jobs_claim_and_expire(store: Arc<dyn Store>) {
    let t0 = base_time().as_millis();
    let a = make_org(&*store, "claim-a").await;
    let b = make_org(&*store, "claim-b").await;
    let now = ts(t0 + 3_600_000);
    let stale_before = now.plus_millis(-60_000);
    let claim = |runner: &'static str, now: Timestamp, stale_before: Timestamp| {
        let store = Arc::clone(&store);
        async move {
            ok(
                store.claim_job(runner, now, stale_before).await,
                format!("claim_job({runner:?}, {now}, {stale_before})"),
            )
        }
    };
    assert_eq!(
        claim("runner-0", now, stale_before).await,
        None,
        "claim_job on a store without jobs"
    );

    // Newer pending job first, with the smaller id: the claim must go by created_at.
    let pending_new = pending_job(1, &a, t0 + 200);
    let pending_old = pending_job(2, &b, t0 + 100);
    let finished = |n: u32, status: JobStatus, created_ms: i64| ExportJob {
        id: fixed_id(JOB_IDS, n),
        org_id: a.id,
        status,
        request: r#"{"format":"jsonl"}"#.to_string(),
        requested_by: "bob@example.org".to_string(),
        created_at: ts(created_ms),
        completed_at: Some(ts(t0 + 1000)),
        progress: if status == JobStatus::Completed {
            100
        } else {
            30
        },
        total_records: Some(10),
        error_message: (status == JobStatus::Failed).then(|| "boom".to_string()),
        file_name: (status == JobStatus::Completed).then(|| format!("claim-a/{n}.jsonl")),
        expires_at: Some(ts(t0 + 2 * MS_PER_DAY)),
        claimed_by: Some("runner-gone".to_string()),
        heartbeat_at: Some(ts(t0)),
    };
    let completed = finished(3, JobStatus::Completed, t0);
    let failed = finished(4, JobStatus::Failed, t0 + 1);
    let expired = finished(5, JobStatus::Expired, t0 + 2);
    let running = |n: u32, created_ms: i64, heartbeat_at: Timestamp| ExportJob {
        id: fixed_id(JOB_IDS, n),
        org_id: a.id,
        status: JobStatus::Running,
        request: r#"{"format":"csv"}"#.to_string(),
        requested_by: "carol@example.com".to_string(),
        created_at: ts(created_ms),
        completed_at: None,
        progress: 35,
        total_records: Some(800),
        error_message: None,
        file_name: None,
        expires_at: None,
        claimed_by: Some("runner-busy".to_string()),
        heartbeat_at: Some(heartbeat_at),
    };
    let fresh = running(6, t0 + 3, now.plus_millis(-10_000));
    // Exactly on the bound is not older than it.
    let on_the_bound = running(7, t0 + 4, stale_before);
    for job in [
        &pending_new,
        &pending_old,
        &completed,
        &failed,
        &expired,
        &fresh,
        &on_the_bound,
    ] {
        ok(store.create_job(job.clone()).await, "create_job");
    }

    assert_claimed(
        &*store,
        claim("runner-1", now, stale_before).await,
        &pending_old,
        "runner-1",
        now,
        "the first claim takes the oldest pending job",
    )
    .await;
    assert_claimed(
        &*store,
        claim("runner-2", now, stale_before).await,
        &pending_new,
        "runner-2",
        now,
        "the second claim takes the other pending job",
    )
    .await;
    assert_eq!(
        claim("runner-3", now, stale_before).await,
        None,
        "nothing is claimable: the running jobs are fresh (heartbeat at or after stale_before) and the others finished"
    );

    // The runner of `fresh` dies: its heartbeat falls behind.
    let dead = ExportJob {
        heartbeat_at: Some(stale_before.plus_millis(-1)),
        ..fresh.clone()
    };
    ok(store.update_job(&dead).await, "update_job");
    assert_claimed(
        &*store,
        claim("runner-3", now, stale_before).await,
        &dead,
        "runner-3",
        now,
        "a running job whose heartbeat is older than stale_before is taken over",
    )
    .await;
    assert_eq!(
        claim("runner-4", now, stale_before).await,
        None,
        "a job just taken over is claimed again"
    );

    // Later, every running job has gone quiet: each is taken over once, finished ones never.
    let later = now.plus_millis(MS_PER_DAY);
    let later_stale = later.plus_millis(-60_000);
    let mut taken: Vec<ExportJob> = Vec::new();
    for runner in ["runner-5", "runner-6", "runner-7", "runner-8"] {
        let before: HashMap<Uuid, ExportJob> = {
            let mut jobs = HashMap::new();
            for job in [&pending_old, &pending_new, &fresh, &on_the_bound] {
                let stored = get_job_ok(&*store, job.org_id, job.id)
                    .await
                    .expect("job exists");
                jobs.insert(job.id, stored);
            }
            jobs
        };
        let claimed = claim(runner, later, later_stale).await.unwrap_or_else(|| {
            panic!("{runner}: a running job with an old heartbeat was not claimed")
        });
        let was = before.get(&claimed.id).unwrap_or_else(|| {
            panic!(
                "{runner}: claim_job claimed job {} ({:?}), which is not a stale running job",
                claimed.id, claimed.status
            )
        });
        assert_eq!(
            was.status,
            JobStatus::Running,
            "{runner}: claimed a job that was not running"
        );
        assert_claimed(
            &*store,
            Some(claimed.clone()),
            was,
            runner,
            later,
            &format!("{runner} takes over a stale job"),
        )
        .await;
        assert!(
            taken.iter().all(|t| t.id != claimed.id),
            "{runner}: job {} was taken over twice",
            claimed.id
        );
        taken.push(claimed);
    }
    assert_eq!(
        claim("runner-9", later, later_stale).await,
        None,
        "after every stale job is taken over, nothing is claimable"
    );
    // Their runners finish them; finished jobs stay put, however old their heartbeat.
    for (idx, job) in taken.iter().enumerate() {
        let status = if idx % 2 == 0 {
            JobStatus::Completed
        } else {
            JobStatus::Failed
        };
        let done = ExportJob {
            status,
            completed_at: Some(later),
            progress: 100,
            ..job.clone()
        };
        ok(store.update_job(&done).await, "update_job(finish)");
    }
    assert_eq!(
        claim(
            "runner-9",
            ts(t0 + 400 * MS_PER_DAY),
            ts(t0 + 399 * MS_PER_DAY)
        )
        .await,
        None,
        "completed, failed and expired jobs are never claimed, however old their heartbeat"
    );
    for job in [&completed, &failed, &expired] {
        assert_eq!(
            get_job_ok(&*store, job.org_id, job.id).await.as_ref(),
            Some(job),
            "claiming changed a finished job"
        );
    }

    // Concurrent claims never hand out the same job twice.
    let c = make_org(&*store, "claim-c").await;
    let racing: Vec<ExportJob> = (0..4)
        .map(|i| pending_job(20 + i, &c, t0 + 10_000 + i64::from(i)))
        .collect();
    for job in &racing {
        ok(store.create_job(job.clone()).await, "create_job");
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let mut handles = Vec::new();
    for task in 0..8 {
        let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            let runner = format!("racer-{task}");
            let claimed = store.claim_job(&runner, later, later_stale).await;
            (runner, claimed)
        }));
    }
    let mut won: Vec<ExportJob> = Vec::new();
    for handle in handles {
        let (runner, claimed) = handle.await.expect("a claiming task panicked");
        let claimed = claimed.unwrap_or_else(|e| panic!("{runner}: claim_job failed: {e} ({e:?})"));
        if let Some(job) = claimed {
            assert_eq!(
                job.claimed_by.as_deref(),
                Some(runner.as_str()),
                "a concurrent claim returned a job claimed by another runner"
            );
            won.push(job);
        }
    }
    let mut won_ids: Vec<Uuid> = won.iter().map(|j| j.id).collect();
    won_ids.sort();
    let racing_ids: Vec<Uuid> = racing.iter().map(|j| j.id).collect();
    assert_eq!(
        won_ids, racing_ids,
        "8 concurrent claims of 4 pending jobs: each job claimed exactly once, the other claims None"
    );
    for job in &won {
        assert_eq!(
            get_job_ok(&*store, job.org_id, job.id).await.as_ref(),
            Some(job),
            "a concurrent claim is stored as returned"
        );
    }

    // Expiry: completed jobs whose files expire strictly before `now`.
    let expiry_now = ts(t0 + 30 * MS_PER_DAY);
    let with_expiry =
        |job: &ExportJob, n: u32, org: &Org, expires_at: Option<Timestamp>| ExportJob {
            id: fixed_id(JOB_IDS, n),
            org_id: org.id,
            expires_at,
            ..job.clone()
        };
    let due_a = with_expiry(&completed, 40, &a, Some(expiry_now.plus_millis(-1)));
    let due_b = with_expiry(
        &completed,
        41,
        &b,
        Some(expiry_now.plus_millis(-MS_PER_DAY)),
    );
    let not_due = [
        with_expiry(&completed, 42, &a, Some(expiry_now)),
        with_expiry(&completed, 43, &a, Some(expiry_now.plus_millis(1))),
        with_expiry(&completed, 44, &a, None),
        with_expiry(&failed, 45, &a, Some(expiry_now.plus_millis(-1))),
        with_expiry(&expired, 46, &a, Some(expiry_now.plus_millis(-1))),
        with_expiry(&fresh, 47, &b, Some(expiry_now.plus_millis(-1))),
        with_expiry(&pending_new, 48, &b, Some(expiry_now.plus_millis(-1))),
    ];
    for job in [&due_a, &due_b].into_iter().chain(&not_due) {
        ok(store.create_job(job.clone()).await, "create_job");
    }
    // `completed` itself expires at t0 + 2 days: due as well.
    let mut expected = vec![completed.clone(), due_a, due_b];
    expected.sort_by_key(|j| j.id);
    let mut got = ok(store.expired_jobs(expiry_now).await, "expired_jobs");
    got.sort_by_key(|j| j.id);
    let ids = |jobs: &[ExportJob]| -> Vec<Uuid> { jobs.iter().map(|j| j.id).collect() };
    assert_eq!(
        ids(&got),
        ids(&expected),
        "expired_jobs({expiry_now}) lists the completed jobs (of every organization) whose files expire before then"
    );
    assert_eq!(got, expected, "expired_jobs returns the stored fields");
    assert!(
        ok(store.expired_jobs(ts(t0)).await, "expired_jobs(early)").is_empty(),
        "expired_jobs before any file expires"
    );
}
