//! Cases: retention settings and purges (`Change::SetRetention`, `Store::retention`,
//! `Store::purge`).

use std::sync::Arc;

use auditlog_core::chain::{self, ChainVerifier};
use auditlog_core::merkle::{tree_root, Frontier, Hash};
use auditlog_core::query::{Column, Condition, Filter, Order};
use auditlog_core::tiles::tiles_for_size;
use auditlog_core::{tree, Event, Timestamp};
use auditlog_store::{purgeable_through, Change, Changed, LegalHold, Store};
use uuid::Uuid;

use crate::events::*;
use crate::support::*;

const HOLD_IDS: u32 = 0x4e7e_0000;

/// Purges in batches of `max` until a call purges nothing; answers how many in all.
async fn purge_all(store: &dyn Store, org_id: Uuid, before: Timestamp, max: u32) -> u64 {
    let mut total = 0;
    loop {
        let batch = ok(store.purge(org_id, before, max).await, "purge");
        assert!(
            batch.events <= u64::from(max),
            "a batch purged more than asked"
        );
        if batch.events == 0 {
            return total;
        }
        total += batch.events;
    }
}

/// The stored tiles of a tree of `size` leaves, and the root they give.
async fn tiles_and_root(
    store: &dyn Store,
    org_id: Uuid,
    size: u64,
) -> (Vec<Option<Vec<u8>>>, Hash) {
    let tiles = tiles_for_size(size);
    let keys: Vec<(u8, u64)> = tiles.iter().map(|t| (t.level(), t.index())).collect();
    let stored = ok(store.read_tiles(org_id, &keys).await, "read_tiles");
    let reader = tree::reader_for(size, &tiles, &stored).expect("a reader over the tiles");
    let root = tree_root(&reader, size).expect("a root from the tiles");
    (stored, root)
}

/// Every event of the organization by `seq`, checked as a chain that starts after the purged
/// prefix (from the purged hash).
async fn remaining_chain(store: &dyn Store, org_id: Uuid) -> Vec<Event> {
    let purged = ok(store.retention(org_id).await, "retention").purged;
    let (after, hash) = purged.map_or((0, chain::GENESIS), |p| (p.through_seq, p.hash));
    let mut verifier = ChainVerifier::resume(org_id, after, hash);
    let events = ok(
        store.events_by_seq(org_id, 0, 100_000).await,
        "events_by_seq",
    );
    for event in &events {
        verifier
            .push(event)
            .unwrap_or_else(|e| panic!("the remaining chain does not verify: {e}"));
    }
    events
}

/// A retention setting round-trips; a purge removes the oldest events in `seq` order, no
/// further than the end of the tree's last full tile, never past an event a live hold
/// protects, and only events recorded before the cutoff; what remains is exactly what every
/// read shows (events by seq, lists, counts, facets, search, one event), still chains from
/// the purged hash, and the tree's tiles are untouched, so the tree keeps its root and grows
/// on; another organization loses nothing.
pub async fn purges_remove_a_prefix_and_keep_the_tree(store: Arc<dyn Store>) {
    let store = &*store;
    let org = make_org(store, "acme").await;
    let other = make_org(store, "globex").await;

    // Settings.
    for (days, before) in [(Some(30), None), (Some(365), Some(30)), (None, Some(365))] {
        let change = Change::SetRetention {
            org_id: org.id,
            days,
        };
        let applied = ok(store.apply(vec![change], None).await, "set retention");
        assert!(
            matches!(applied.changed.as_slice(), [Changed::Retention(b)] if *b == before),
            "set {days:?}: {:?}",
            applied.changed
        );
        assert_eq!(ok(store.retention(org.id).await, "retention").days, days);
    }
    assert!(ok(store.retention(org.id).await, "retention")
        .purged
        .is_none());

    let t0 = base_time().as_millis();
    let bodies: Vec<_> = (0..700)
        .map(|i| {
            let actor = if i == 299 {
                "held@acme.test"
            } else {
                "alice@acme.test"
            };
            let action = if i % 2 == 0 {
                "channel_created"
            } else {
                "channel_deleted"
            };
            body(action, actor, t0 + i * 60_000)
        })
        .collect();
    let before_purge = append_all(store, &org, bodies, 100).await;
    let theirs = append_all(
        store,
        &other,
        (0..300)
            .map(|i| body("channel_created", "bob@globex.test", t0 + i))
            .collect(),
        100,
    )
    .await;
    ok(store.wait_indexed().await, "wait_indexed");
    let (tiles_before, root_before) = tiles_and_root(store, org.id, 700).await;
    let now = ok(store.chain_head(org.id).await, "chain_head");
    assert_eq!(now.seq, 700);

    // Nothing was recorded before a cutoff in the past.
    assert_eq!(purge_all(store, org.id, base_time(), 1000).await, 0);
    let cutoff = Timestamp::from_millis(Timestamp::now().as_millis() + 60_000).unwrap();

    // A hold of the organization stops everything; a hold of a person stops at their first
    // event (seq 300).
    let hold = |n: u32, subject: Option<&str>| LegalHold {
        id: fixed_id(HOLD_IDS, n),
        org_id: org.id,
        subject: subject.map(String::from),
        reason: "case".into(),
        placed_by: "counsel@acme.test".into(),
        placed_at: base_time(),
        lifted_at: None,
        lifted_by: None,
    };
    let lift = |n: u32| Change::LiftHold {
        org_id: org.id,
        id: fixed_id(HOLD_IDS, n),
        at: base_time(),
        by: "counsel@acme.test".into(),
    };
    ok(
        store
            .apply(vec![Change::PlaceHold(hold(1, None))], None)
            .await,
        "hold",
    );
    assert_eq!(
        purge_all(store, org.id, cutoff, 1000).await,
        0,
        "held organization"
    );
    ok(store.apply(vec![lift(1)], None).await, "lift");
    ok(
        store
            .apply(
                vec![Change::PlaceHold(hold(2, Some("held@acme.test")))],
                None,
            )
            .await,
        "hold",
    );
    assert_eq!(
        purge_all(store, org.id, cutoff, 64).await,
        299,
        "up to the held event"
    );
    let purged = ok(store.retention(org.id).await, "retention")
        .purged
        .expect("purged");
    assert_eq!(purged.through_seq, 299);
    assert_eq!(purged.hash, before_purge[298].hash);
    ok(store.apply(vec![lift(2)], None).await, "lift");

    // Then as far as the last full tile.
    let through = purgeable_through(700);
    assert_eq!(through, 512);
    assert_eq!(purge_all(store, org.id, cutoff, 100).await, through - 299);
    let remaining = remaining_chain(store, org.id).await;
    assert_eq!(remaining.len(), 700 - through as usize);
    assert_eq!(remaining[0].seq, through + 1);
    let purged = ok(store.retention(org.id).await, "retention")
        .purged
        .expect("purged");
    assert_eq!((purged.through_seq, purged.before), (through, cutoff));
    assert!(
        ok(
            store.get_event(org.id, before_purge[0].id).await,
            "get_event"
        )
        .is_none(),
        "a purged event is gone"
    );
    assert!(ok(store.get_event(org.id, remaining[0].id).await, "get_event").is_some());

    // Every read shows exactly what remains.
    let n_remaining = remaining.len() as u64;
    assert_eq!(
        count_all(store, org.id, &Filter::default()).await.n,
        n_remaining
    );
    let created = Filter {
        conditions: vec![Condition::AnyOf {
            column: Column::ActionKey,
            values: vec!["channel_created".into()],
        }],
        ..Filter::default()
    };
    let n_created = remaining
        .iter()
        .filter(|e| e.body.action_key == "channel_created")
        .count() as u64;
    assert_eq!(count_all(store, org.id, &created).await.n, n_created);
    let whole_range = Filter {
        from: Some(base_time()),
        to: Some(Timestamp::from_millis(t0 + 700 * 60_000).unwrap()),
        ..Filter::default()
    };
    assert_eq!(count_all(store, org.id, &whole_range).await.n, n_remaining);
    let listed = query_all(store, org.id, &Filter::default(), Order::OldestFirst).await;
    assert_same_events(&remaining, &listed, "the list after a purge");
    let words = Filter {
        conditions: vec![Condition::Text("alice".into())],
        ..Filter::default()
    };
    assert_eq!(
        count_all(store, org.id, &words).await.n,
        n_remaining,
        "search"
    );
    let facets = ok(store.facets(org.id, &Filter::default(), 10).await, "facets");
    let by_action: u64 = facets.actions.iter().map(|(_, n)| n).sum();
    let by_actor: u64 = facets.actors.iter().map(|a| a.count).sum();
    assert_eq!(
        (by_action, by_actor),
        (n_remaining, n_remaining),
        "{facets:?}"
    );
    let facets = ok(
        store.facets(org.id, &whole_range, 10).await,
        "facets of a range",
    );
    let by_action: u64 = facets.actions.iter().map(|(_, n)| n).sum();
    assert_eq!(by_action, n_remaining, "{facets:?}");

    // The tiles, and so the root, are what they were; the tree grows on from them.
    let (tiles_after, root_after) = tiles_and_root(store, org.id, 700).await;
    assert!(tiles_before == tiles_after, "a purge changed the tiles");
    assert_eq!(root_after, root_before);
    let more = append_all(
        store,
        &org,
        (0..300)
            .map(|i| body("channel_created", "alice@acme.test", t0 + 10_000_000 + i))
            .collect(),
        100,
    )
    .await;
    let mut frontier = Frontier::new();
    for event in before_purge.iter().chain(&more) {
        frontier.append(Hash(chain::leaf_hash(event)));
    }
    let (_, root) = tiles_and_root(store, org.id, 1000).await;
    assert_eq!(root, frontier.root(), "the tree grew on after the purge");
    remaining_chain(store, org.id).await;

    // Another organization lost nothing.
    let others = remaining_chain(store, other.id).await;
    assert_same_events(&theirs, &others, "another organization's events");
}
