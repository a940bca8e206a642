//! Many ingest clients at once on one organization: every request is acknowledged, every
//! event is stored once, and the chain has no gap.

use std::collections::HashSet;

use serde_json::json;

use crate::{Backend, Server};

on_each_backend! {
    concurrent_single_event_ingest_keeps_one_gapless_chain =>
        concurrent_single_event_ingest_keeps_one_gapless_chain_sqlite,
        concurrent_single_event_ingest_keeps_one_gapless_chain_postgres;
}

const CLIENTS: usize = 32;
const REQUESTS_EACH: usize = 20;

async fn concurrent_single_event_ingest_keeps_one_gapless_chain(backend: Backend) {
    // The test is about concurrency, not the rate limit.
    let server = Server::start_with(backend, |config| config.rate_limit_per_second = 0).await;
    let org = server.org("acme", true).await;
    let ingest = server.ingest_key(Some(&org)).await;

    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let calls: Vec<_> = (0..REQUESTS_EACH)
            .map(|request| {
                server
                    .post("/api/audit-logs/events")
                    .bearer(&ingest)
                    .json(&json!({
                        "action_key": "channel_created",
                        "actor_id": format!("client-{client}"),
                        "request_id": format!("c{client}-r{request}"),
                    }))
            })
            .collect();
        clients.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for call in calls {
                let reply = call.send().await.expect(201);
                let body = reply.json();
                assert_eq!(body["count"], 1);
                ids.push(body["ids"][0].as_str().expect("id").to_string());
            }
            ids
        }));
    }
    let mut ids = HashSet::new();
    for client in clients {
        for id in client.await.expect("client task") {
            assert!(ids.insert(id), "an id was handed out twice");
        }
    }
    let total = (CLIENTS * REQUESTS_EACH) as u64;
    assert_eq!(ids.len() as u64, total);
    assert_eq!(server.head(&org).await, total);
    let verified = server
        .service
        .verify_org(org.id, &|_| {})
        .await
        .expect("the chain verifies");
    assert_eq!(verified.events, total);

    // Each client's events are all there, in the order it sent them.
    let admin = server.admin(&org, "admin@acme.test").await;
    let listed = server
        .get("/api/audit-logs?q=actor_id:client-7&sort=occurred_at&limit=1000")
        .bearer(&admin)
        .org("acme")
        .send()
        .await
        .expect(200)
        .json();
    assert_eq!(listed["total_count"], REQUESTS_EACH);
    let request_ids: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["request_id"].as_str().unwrap())
        .collect();
    let sent: Vec<String> = (0..REQUESTS_EACH).map(|r| format!("c7-r{r}")).collect();
    assert_eq!(request_ids, sent);
}
