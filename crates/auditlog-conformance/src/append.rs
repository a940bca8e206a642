//! Cases: appends number, chain and store atomically, also concurrently; a store with
//! events takes room on disk.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use auditlog_core::chain::GENESIS;
use auditlog_core::query::{Filter, Order};
use auditlog_core::{Event, Timestamp};
use auditlog_store::{Append, Count, Store, StoreError};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::json;
use uuid::Uuid;

use crate::events::*;
use crate::support::*;

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
    // The last event carries values redacted at ingest and their paths, which the store
    // keeps and hashes like every other extension.
    let mut redacted = body("token_revoked", "bob@example.org", t0 + 3);
    redacted.meta.insert(
        "auth".into(),
        json!({"api_token": auditlog_core::redact::REDACTED}),
    );
    redacted.extensions.redacted = vec!["meta.auth.api_token".to_string()];
    let last = append_ok(store, vec![to(&b, redacted)]).await;
    assert_eq!(
        last[0].body.extensions.redacted,
        ["meta.auth.api_token"],
        "append returns the redacted paths"
    );
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
            )}
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
