//! Operations endpoints: `/metrics` exposes the ingest counter, the store's size and how far
//! derived state trails the stored events; `/readyz` answers while the store does.

use serde_json::json;

use crate::{Backend, Server};

on_each_backend! {
    metrics_expose_ingest_size_and_index_lag =>
        metrics_expose_ingest_size_and_index_lag_sqlite,
        metrics_expose_ingest_size_and_index_lag_postgres;
}

/// The value of a metric line `name value`.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number in\n{text}"))
}

async fn metrics_expose_ingest_size_and_index_lag(backend: Backend) {
    let server = Server::start(backend).await;
    let org = server.org("acme", true).await;
    let ingest = server.ingest_key(Some(&org)).await;
    let batch: Vec<_> = (0..20)
        .map(|i| json!({"action_key": "channel_created", "actor_id": format!("u-{i}")}))
        .collect();
    server
        .post("/api/audit-logs/events")
        .bearer(&ingest)
        .json(&json!(batch))
        .send()
        .await
        .expect(201);

    let text = server.get("/metrics").send().await.expect(200).text();
    assert!(
        metric(&text, "auditlog_events_ingested_total") >= 20.0,
        "{text}"
    );
    assert!(metric(&text, "auditlog_store_disk_bytes") > 0.0, "{text}");
    // However far the index is, the lag is a count and an age, never negative, and never
    // more than what was stored.
    let lag = metric(&text, "auditlog_index_lag_events");
    assert!((0.0..=20.0).contains(&lag), "{text}");
    assert!(metric(&text, "auditlog_index_lag_seconds") >= 0.0, "{text}");
    assert!(server
        .get("/readyz")
        .send()
        .await
        .expect(200)
        .text()
        .starts_with("ready"));
}
