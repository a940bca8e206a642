//! What the cases share: store calls that panic naming what failed, walks over pages,
//! assertions whose messages name what differs, random corpora, and fixed ids.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::{Debug, Display};
use std::hash::Hash;

use auditlog_core::chain::ChainVerifier;
use auditlog_core::query::{Filter, Order, Query, Start};
use auditlog_core::timestamp::MS_PER_DAY;
use auditlog_core::{Event, EventBody, Timestamp};
use auditlog_store::{Append, Count, Facets, NewOrg, Org, Store, StoreError, User};
use rand::rngs::StdRng;
use rand::Rng;
use uuid::Uuid;

use crate::events::*;
use crate::reference::*;

// ---------------------------------------------------------------------------------------
// Store helpers.
// ---------------------------------------------------------------------------------------

pub(crate) fn ok<T>(result: Result<T, StoreError>, what: impl Display) -> T {
    result.unwrap_or_else(|e| panic!("{what} failed: {e} ({e:?})"))
}

pub(crate) async fn make_org(store: &dyn Store, name: &str) -> Org {
    let new = NewOrg {
        name: name.to_string(),
        display_name: format!("{name} Inc."),
        audit_logs_enabled: true,
    };
    ok(store.create_org(new).await, format!("create_org({name:?})"))
}

pub(crate) fn to(org: &Org, body: EventBody) -> Append {
    Append {
        org_id: org.id,
        body,
    }
}

/// Appends a batch that must succeed and checks the answer's shape: one event per appended
/// one, in batch order, with the appended organization and body.
pub(crate) async fn append_ok(store: &dyn Store, batch: Vec<Append>) -> Vec<Event> {
    let events = ok(store.append(batch.clone()).await, "append");
    assert_appended(&batch, &events, "append");
    events
}

/// What an append returned has one event per appended one, in batch order, with the
/// appended organization and body.
pub(crate) fn assert_appended(batch: &[Append], events: &[Event], context: &str) {
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
pub(crate) async fn append_all(
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
pub(crate) async fn verified_chain(store: &dyn Store, org_id: Uuid) -> Vec<Event> {
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

pub(crate) async fn count_all(store: &dyn Store, org_id: Uuid, filter: &Filter) -> Count {
    ok(
        store.count(org_id, filter, u64::MAX).await,
        format!("count({filter:?})"),
    )
}

/// One query with `limit` 1000 from the start: every event of small corpora.
pub(crate) async fn query_all(
    store: &dyn Store,
    org_id: Uuid,
    filter: &Filter,
    order: Order,
) -> Vec<Event> {
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
pub(crate) async fn walk_keyset(
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
pub(crate) async fn walk_offset(
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

pub(crate) fn assert_body_eq(expected: &EventBody, actual: &EventBody, context: &str) {
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

pub(crate) fn assert_event_eq(expected: &Event, actual: &Event, context: &str) {
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
pub(crate) fn assert_same_events(expected: &[Event], actual: &[Event], context: &str) {
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
pub(crate) fn assert_capped_count(count: Count, n_expected: usize, cap: u64, context: &str) {
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
pub(crate) fn assert_top_counts<K: Eq + Hash + Debug>(
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

pub(crate) type ActorKey = (Option<String>, Option<String>);

pub(crate) fn assert_facets(
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

pub(crate) fn reference_daily_counts(events: &[Event], filter: &Filter) -> Vec<(i64, u64)> {
    let mut days: BTreeMap<i64, u64> = BTreeMap::new();
    for event in events.iter().filter(|e| reference_matches(filter, e)) {
        *days.entry(event.body.occurred_at.day()).or_default() += 1;
    }
    days.into_iter().collect()
}

/// A random corpus over two new organizations, appended in batches that mix them.
pub(crate) struct RandomCorpus {
    pub(crate) orgs: [Org; 2],
    /// Each organization's stored events, in `seq` order.
    pub(crate) events: [Vec<Event>; 2],
}

impl RandomCorpus {
    pub(crate) async fn build(
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
    pub(crate) fn all_events(&self) -> Vec<Event> {
        self.events.concat()
    }
}

/// Few distinct instants (so ties in `occurred_at` are common) over three UTC days, some on
/// a day's first and last millisecond.
pub(crate) fn tie_heavy_times() -> Vec<Timestamp> {
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
// Users, service accounts, credentials and jobs.
// ---------------------------------------------------------------------------------------

/// Namespaces of [`fixed_id`], so that users, service accounts, credentials and jobs never
/// share an id by accident.
pub(crate) const USER_IDS: u32 = 0x05e2_0000;
pub(crate) const ACCOUNT_IDS: u32 = 0x5a00_0000;
pub(crate) const CREDENTIAL_IDS: u32 = 0xc2ed_0000;
pub(crate) const JOB_IDS: u32 = 0x10b0_0000;

/// A fixed id, shaped like a UUIDv4: `namespace` in the first 32 bits, `n` in the last.
pub(crate) fn fixed_id(namespace: u32, n: u32) -> Uuid {
    Uuid::from_u128(
        (u128::from(namespace) << 96) | (0x4000u128 << 64) | (0x8000u128 << 48) | u128::from(n),
    )
}

/// 32 bytes standing in for a SHA-256: distinct seeds give distinct hashes.
pub(crate) fn fake_hash(seed: u8) -> [u8; 32] {
    std::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
}

/// Argon2id PHC strings standing in for password hashes: the store keeps them, it does not
/// check them.
pub(crate) const PASSWORD_HASHES: [&str; 3] = [
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
    "$argon2id$v=19$m=19456,t=2,p=1$b3RoZXJzYWx0$b3RoZXJoYXNob3RoZXJoYXNo",
    "$argon2id$v=19$m=65536,t=3,p=4$dGhpcmRzYWx0$dGhpcmRoYXNodGhpcmRoYXNo",
];

pub(crate) fn expect_conflict<T: Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("{what} gave {other:?}, expected Err(StoreError::Conflict)"),
    }
}

pub(crate) async fn create_user_ok(store: &dyn Store, user: User) -> User {
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

pub(crate) async fn find_user_ok(store: &dyn Store, key: &str) -> Option<User> {
    ok(store.find_user(key).await, format!("find_user({key:?})"))
}
