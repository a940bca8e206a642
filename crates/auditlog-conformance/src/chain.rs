//! Cases: signed checkpoints and the chain walk by `seq`.

use std::sync::Arc;

use auditlog_core::chain::{Checkpoint, SignedCheckpoint};
use auditlog_core::Event;
use auditlog_store::{Append, Store};

use crate::events::*;
use crate::support::*;

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
