//! Cases: idempotent appends replay, conflict, and stay single under concurrent retries.

use std::sync::Arc;

use auditlog_core::query::Filter;
use auditlog_core::Event;
use auditlog_store::{
    Append, AppendOutcome, ChainHead, Count, IdempotencyKey, Org, Store, StoreError,
};
use uuid::Uuid;

use crate::events::*;
use crate::support::*;

/// An idempotent append that must store its batch.
pub(crate) async fn append_idempotent_stored(
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
pub(crate) async fn snapshot(store: &dyn Store, orgs: &[&Org]) -> Vec<(ChainHead, Count)> {
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
        )}
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
