//! Graceful shutdown (docs/design.md, "Nothing acknowledged is lost"): with ingest requests
//! in flight, the server stops accepting, finishes what it started, and every event it
//! acknowledged with a 201 is in the store when it is opened again, on a chain that verifies.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use auditlog_service::Service;
use serde_json::json;
use uuid::Uuid;

use crate::{Backend, Server};

on_each_backend! {
    every_acknowledged_event_survives_a_graceful_shutdown =>
        every_acknowledged_event_survives_a_graceful_shutdown_sqlite,
        every_acknowledged_event_survives_a_graceful_shutdown_postgres;
}

const CLIENTS: usize = 8;

async fn every_acknowledged_event_survives_a_graceful_shutdown(backend: Backend) {
    let mut server = Server::start_with(backend, |config| config.rate_limit_per_second = 0).await;
    let org = server.org("acme", true).await;
    let ingest = server.ingest_key(Some(&org)).await;

    let acknowledged = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let call = server.post("/api/audit-logs/events").bearer(&ingest).json(
            &json!({"action_key": "channel_created", "actor_id": format!("client-{client}")}),
        );
        let acknowledged = acknowledged.clone();
        clients.push(tokio::spawn(async move {
            // Send until the server stops answering; keep the ids it acknowledged.
            let mut ids = Vec::new();
            let mut refusals = Vec::new();
            for _ in 0..100_000 {
                match call.clone().try_send().await {
                    Ok(reply) if reply.status == 201 => {
                        let id = reply.json()["ids"][0].as_str().expect("id").to_string();
                        ids.push(id);
                        acknowledged.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(reply) => refusals.push(reply.status),
                    Err(_) => break,
                }
            }
            (ids, refusals)
        }));
    }

    // Shut down while the clients are busy.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while acknowledged.load(Ordering::Relaxed) < 100 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the clients got no answers"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.trigger_shutdown();
    server.wait_stopped().await.expect("serve returns cleanly");

    let mut ids = Vec::new();
    for client in clients {
        let (client_ids, refusals) = client.await.expect("client task");
        // In-flight requests finish; none is turned away half-done.
        assert!(refusals.is_empty(), "refused during shutdown: {refusals:?}");
        ids.extend(client_ids);
    }
    assert!(ids.len() >= 100);
    // Nothing answers any more.
    assert!(server.get("/healthz").try_send().await.is_err());

    // Reopen the store, as the next start would (PostgreSQL: a new pool on the same schema).
    let reopened = server.reopen_store().await;
    let key = auditlog_service::keys::load(server.dir.path()).expect("the signing key");
    let service = Service::new(reopened.clone(), auditlog_core::Catalog::builtin(), key);
    for id in &ids {
        let id: Uuid = id.parse().expect("uuid");
        let event = reopened.get_event(org.id, id).await.expect("read");
        assert!(event.is_some(), "acknowledged event {id} was lost");
    }
    let head = reopened.chain_head(org.id).await.unwrap().seq;
    assert!(
        head >= ids.len() as u64,
        "head {head} < {} acknowledged",
        ids.len()
    );
    let verified = service
        .verify_org(org.id, &|_| {})
        .await
        .expect("the chain verifies after the restart");
    assert_eq!(verified.events, head);
}
