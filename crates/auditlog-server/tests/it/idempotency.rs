//! `Idempotency-Key` on ingest: a retry of the same request stores nothing and answers with
//! the ids of the first; the same key with another request is a conflict; concurrent retries
//! store the events once.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::{Backend, Reply, Server};

on_each_backend! {
    a_retry_is_replayed_and_a_changed_request_conflicts =>
        a_retry_is_replayed_and_a_changed_request_conflicts_sqlite,
        a_retry_is_replayed_and_a_changed_request_conflicts_postgres;
    concurrent_retries_store_once =>
        concurrent_retries_store_once_sqlite,
        concurrent_retries_store_once_postgres;
}

fn batch(marker: &str, n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|idx| {
                json!({
                    "action_key": "channel_created",
                    "actor_email": "alice@example.com",
                    "target_name": format!("{marker}-{idx}"),
                })
            })
            .collect(),
    )
}

async fn send(server: &Server, token: &str, key: &str, body: &Value) -> Reply {
    server
        .post("/api/audit-logs/events")
        .bearer(token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
}

fn ids(reply: &Reply) -> Vec<String> {
    reply.json()["ids"]
        .as_array()
        .unwrap_or_else(|| panic!("no ids in {}", reply.text()))
        .iter()
        .map(|v| v.as_str().expect("id").to_string())
        .collect()
}

fn replayed(reply: &Reply) -> bool {
    reply.header("idempotent-replayed") == Some("true")
}

async fn a_retry_is_replayed_and_a_changed_request_conflicts(backend: Backend) {
    let server = Server::start(backend).await;
    let org = server.org("acme", true).await;
    let ingest = server.ingest_key(Some(&org)).await;
    let head = server.head(&org).await;

    let body = batch("first", 3);
    let first = send(&server, &ingest, "key-1", &body).await.expect(201);
    assert!(!replayed(&first), "the first request is not a replay");
    let first_ids = ids(&first);
    assert_eq!(first_ids.len(), 3);
    assert_eq!(server.head(&org).await, head + 3);

    for _ in 0..2 {
        let retry = send(&server, &ingest, "key-1", &body).await.expect(201);
        assert!(replayed(&retry), "a retry says it is a replay");
        assert_eq!(ids(&retry), first_ids);
        assert_eq!(retry.json()["count"], 3);
    }
    assert_eq!(server.head(&org).await, head + 3, "stored once");

    let changed = send(&server, &ingest, "key-1", &batch("other", 3))
        .await
        .expect(409);
    assert!(changed.json()["detail"].is_string());
    assert_eq!(
        server.head(&org).await,
        head + 3,
        "a conflict stores nothing"
    );

    // Another key, or the same key of another credential, is another request.
    let other_key = send(&server, &ingest, "key-2", &body).await.expect(201);
    assert!(!replayed(&other_key));
    let other_credential = server.ingest_key(Some(&org)).await;
    let elsewhere = send(&server, &other_credential, "key-1", &body)
        .await
        .expect(201);
    assert!(!replayed(&elsewhere));
    assert_eq!(server.head(&org).await, head + 9);
    let all: HashSet<String> = first_ids
        .into_iter()
        .chain(ids(&other_key))
        .chain(ids(&elsewhere))
        .collect();
    assert_eq!(all.len(), 9);

    // The stored events are the ones the first request named.
    server
        .service
        .verify_org(org.id, &|_| {})
        .await
        .expect("the chain verifies");
}

async fn concurrent_retries_store_once(backend: Backend) {
    let server = Server::start(backend).await;
    let org = server.org("acme", true).await;
    let ingest = server.ingest_key(Some(&org)).await;
    let head = server.head(&org).await;
    let body = batch("concurrent", 4);

    let calls: Vec<_> = (0..10)
        .map(|_| {
            server
                .post("/api/audit-logs/events")
                .bearer(&ingest)
                .header("Idempotency-Key", "same-key")
                .json(&body)
        })
        .map(|call| tokio::spawn(call.send()))
        .collect();
    let mut replies = Vec::new();
    for call in calls {
        replies.push(call.await.expect("request task"));
    }
    for reply in &replies {
        assert_eq!(reply.status, 201, "{}", reply.text());
    }
    let first_ids = ids(&replies[0]);
    assert_eq!(first_ids.len(), 4);
    for reply in &replies {
        assert_eq!(ids(reply), first_ids, "every retry names the same events");
    }
    let fresh = replies.iter().filter(|r| !replayed(r)).count();
    assert_eq!(fresh, 1, "exactly one request stored the events");
    assert_eq!(server.head(&org).await, head + 4, "stored once");
    for id in &first_ids {
        let stored = server
            .service
            .store()
            .get_event(org.id, id.parse().unwrap())
            .await
            .unwrap();
        assert!(stored.is_some(), "{id} is not stored");
    }
}
