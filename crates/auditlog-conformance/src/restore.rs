//! Cases: restoring organizations and events for migrations keeps ids and chains, and
//! refuses events that do not continue the chain.

use std::sync::Arc;

use auditlog_core::chain::{self, GENESIS};
use auditlog_core::query::{Condition, Filter, Order};
use auditlog_core::text::event_words;
use auditlog_core::timestamp::MS_PER_DAY;
use auditlog_core::{Entry, Event, EventBody, Salts};
use auditlog_store::{Count, NewOrg, Org, Store, StoreError};
use rand::rngs::StdRng;
use rand::SeedableRng;
use uuid::Uuid;

use crate::events::*;
use crate::reference::*;
use crate::support::*;

/// A UUIDv7 of millisecond `ms` whose random bits are `n`.
pub(crate) fn v7_id(ms: i64, n: u64) -> Uuid {
    Uuid::from_u128(
        ((ms as u128) << 80) | (0x7 << 76) | (0b10 << 62) | (u128::from(n) & 0x3fff_ffff_ffff_ffff),
    )
}

/// Events of `org_id` chained after `head` as another store would have stored them: seqs
/// continuing the head, UUIDv7 ids minted at `minted_ms` onwards, one millisecond apart, and
/// `created_at` the moment of each id.
pub(crate) fn chained_events(
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
                // Another store's history mixes entries written before version 2 and after.
                entry: if seq.is_multiple_of(2) {
                    Entry::V2(Salts::Seed(std::array::from_fn(|i| seq as u8 ^ i as u8)))
                } else {
                    Entry::V1
                },
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
pub(crate) fn rechained(mut events: Vec<Event>, mut previous: [u8; 32]) -> Vec<Event> {
    for event in &mut events {
        event.hash = chain::expected_hash(&previous, event);
        previous = event.hash;
    }
    events
}

/// Whether `message` names `seq` as `seq N` (not as a prefix of a longer number).
pub(crate) fn names_seq(message: &str, seq: u64) -> bool {
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
pub(crate) async fn expect_restore_conflict(
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
        )}
}

/// What an organization holds is exactly `expected` (its chain, head and count), and none of
/// `refused` (events of refused restores) can be found.
pub(crate) async fn assert_holds(
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
