//! Retention over HTTP and the purge: who may read and change an organization's retention,
//! every bad value refused by name and changing nothing, the change recorded once with its
//! before and after; a purge under concurrent ingest that removes exactly the expired events
//! (no acknowledged event of the ingest running beside it, no other organization's event),
//! leaves a chain that verifies, a signed checkpoint consistent with the one before and
//! proofs that verify, and is stopped by a legal hold.

use std::sync::Arc;
use std::time::Duration;

use auditlog_core::Timestamp;
use auditlog_service::grant::Operator;
use auditlog_store::Role;
use serde_json::{json, Value};

use crate::compliance::list;
use crate::log::{assert_extends_and_includes, signed_tree};
use crate::{query, Backend, Server};

on_each_backend! {
    retention_is_read_by_readers_and_set_by_administrators_within_bounds =>
        retention_is_read_by_readers_and_set_by_administrators_within_bounds_sqlite,
        retention_is_read_by_readers_and_set_by_administrators_within_bounds_postgres;
    a_purge_under_concurrent_ingest_removes_only_expired_events =>
        a_purge_under_concurrent_ingest_removes_only_expired_events_sqlite,
        a_purge_under_concurrent_ingest_removes_only_expired_events_postgres;
}

const RETENTION: &str = "/api/audit-logs/retention";

async fn retention(server: &Server, token: &str) -> Value {
    server
        .get(RETENTION)
        .bearer(token)
        .org("acme")
        .send()
        .await
        .expect(200)
        .json()
}

/// The number of events of `action` in acme's log.
async fn recorded(server: &Server, token: &str, action: &str) -> usize {
    list(server, token, &format!("action_key:{action}"))
        .await
        .len()
}

async fn retention_is_read_by_readers_and_set_by_administrators_within_bounds(backend: Backend) {
    let server = Server::start(backend).await;
    let acme = server.org("acme", true).await;
    let beta = server.org("beta", true).await;
    let admin = server.admin(&acme, "admin@acme.test").await;
    let reader = server.service_account_token(&acme, "siem").await;
    let member = server
        .user_token(&acme, "member@acme.test", Role::Member)
        .await;
    let beta_admin = server.admin(&beta, "admin@beta.test").await;

    let initial = retention(&server, &reader).await;
    assert_eq!(
        initial,
        json!({
            "retention_period_in_days": null,
            "organization_retention_days": null,
            "default_retention_days": null,
            "maximum_retention_days": 3650,
            "history_starts_at": null,
            "purged_through_seq": null,
        })
    );
    for token in [&member, &beta_admin] {
        let reply = server.get(RETENTION).bearer(token).org("acme").send().await;
        assert_eq!(reply.status, 403, "{}", reply.text());
    }
    for token in [&reader, &member, &beta_admin] {
        let reply = server
            .call("PUT", RETENTION)
            .bearer(token)
            .org("acme")
            .json(&json!({"retention_period_in_days": 30}))
            .send()
            .await;
        assert_eq!(reply.status, 403, "{}", reply.text());
    }
    for (body, field) in [
        (json!({}), "retention_period_in_days"),
        (
            json!({"retention_period_in_days": 0}),
            "retention_period_in_days",
        ),
        (
            json!({"retention_period_in_days": 3651}),
            "retention_period_in_days",
        ),
        (
            json!({"retention_period_in_days": -1}),
            "retention_period_in_days",
        ),
        (
            json!({"retention_period_in_days": 1.5}),
            "retention_period_in_days",
        ),
        (
            json!({"retention_period_in_days": "30"}),
            "retention_period_in_days",
        ),
        (
            json!({"retention_period_in_days": 4294967296u64}),
            "retention_period_in_days",
        ),
        (
            json!({"retention_period_in_days": 30, "retention_period": "1_YEAR"}),
            "retention_period",
        ),
        (json!([30]), "body"),
    ] {
        let reply = server
            .call("PUT", RETENTION)
            .bearer(&admin)
            .org("acme")
            .json(&body)
            .send()
            .await;
        assert_eq!(reply.status, 422, "{body}: {}", reply.text());
        assert!(reply.text().contains(field), "{body}: {}", reply.text());
    }
    assert_eq!(
        retention(&server, &admin).await,
        initial,
        "refusals change nothing"
    );
    assert_eq!(
        recorded(&server, &admin, "audit_log_retention_changed").await,
        0
    );

    for _ in 0..2 {
        let set = server
            .call("PUT", RETENTION)
            .bearer(&admin)
            .org("acme")
            .json(&json!({"retention_period_in_days": 30}))
            .send()
            .await
            .expect(200)
            .json();
        assert_eq!(set["retention_period_in_days"], 30);
        assert_eq!(set["organization_retention_days"], 30);
    }
    assert_eq!(
        recorded(&server, &admin, "audit_log_retention_changed").await,
        1,
        "setting what is set records nothing"
    );
    let page = server
        .get(&format!(
            "/api/audit-logs?{}",
            query(&[("q", "action_key:audit_log_retention_changed")])
        ))
        .bearer(&admin)
        .org("acme")
        .send()
        .await
        .expect(200)
        .json();
    let record = &page["items"][0];
    assert_eq!(record["actor_email"], "admin@acme.test");
    assert_eq!(
        record["changes"],
        json!([{"field": "retention_period_in_days", "before": null, "after": 30}]),
        "{record}"
    );
    // Back to the deployment's default; another organization is untouched.
    let reset = server
        .call("PUT", RETENTION)
        .bearer(&admin)
        .org("acme")
        .json(&json!({"retention_period_in_days": null}))
        .send()
        .await
        .expect(200)
        .json();
    assert_eq!(reset["retention_period_in_days"], Value::Null);
    let theirs = server
        .get(RETENTION)
        .bearer(&beta_admin)
        .org("beta")
        .send()
        .await
        .expect(200)
        .json();
    assert_eq!(theirs["organization_retention_days"], Value::Null);
}

/// Ingests `n` channel creations into acme in batches of up to 500; answers their ids.
async fn ingest(server: &Server, key: &str, n: usize, tag: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for start in (0..n).step_by(500) {
        let batch: Vec<Value> = (start..n.min(start + 500))
            .map(|i| json!({"action_key": "channel_created", "target_name": format!("{tag}-{i}")}))
            .collect();
        let reply = server
            .post("/api/audit-logs/events")
            .bearer(key)
            .json(&json!(batch))
            .send()
            .await
            .expect(201)
            .json();
        ids.extend(
            reply["ids"]
                .as_array()
                .expect("ids")
                .iter()
                .map(|id| id.as_str().unwrap().to_string()),
        );
    }
    ids
}

async fn a_purge_under_concurrent_ingest_removes_only_expired_events(backend: Backend) {
    let server =
        Arc::new(Server::start_with(backend, |config| config.rate_limit_per_second = 0).await);
    let acme = server.org("acme", true).await;
    let beta = server.org("beta", true).await;
    let admin = server.admin(&acme, "admin@acme.test").await;
    let key = server.ingest_key(Some(&acme)).await;
    let beta_key = server.ingest_key(Some(&beta)).await;
    let old = ingest(&server, &key, 3_000, "old").await;
    let theirs = ingest(&server, &beta_key, 600, "beta").await;
    server
        .call("PUT", RETENTION)
        .bearer(&admin)
        .org("acme")
        .json(&json!({"retention_period_in_days": 1}))
        .send()
        .await
        .expect(200);
    server
        .service
        .store()
        .wait_indexed()
        .await
        .expect("indexed");
    let (old_size, old_root) = signed_tree(&server, &admin, "acme").await;
    // Everything recorded so far is "old": the purge runs as if a day and a bit had passed.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let cutoff = Timestamp::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let later = Timestamp::from_millis(cutoff.as_millis() + 86_400_000).unwrap();

    // A hold of the organization stops the purge.
    let hold = server
        .post("/api/audit-logs/legal-holds")
        .bearer(&admin)
        .org("acme")
        .json(&json!({"reason": "litigation"}))
        .send()
        .await
        .expect(201)
        .json();
    let report = server
        .service
        .purge_expired(&Operator::at_the_command_line(), later)
        .await
        .expect("purge");
    assert!(
        report.purged.is_empty(),
        "a held organization was purged: {report:?}"
    );
    server
        .call(
            "DELETE",
            &format!(
                "/api/audit-logs/legal-holds/{}",
                hold["id"].as_str().unwrap()
            ),
        )
        .bearer(&admin)
        .org("acme")
        .send()
        .await
        .expect(200);

    // Ingest keeps going while the purge runs.
    let writer = {
        let server = server.clone();
        let key = key.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for round in 0..20 {
                ids.extend(ingest(&server, &key, 50, &format!("new-{round}")).await);
            }
            ids
        })
    };
    let report = server
        .service
        .purge_expired(&Operator::at_the_command_line(), later)
        .await
        .expect("purge");
    let new = writer.await.expect("the writer");
    let purged: u64 = report.purged.iter().map(|(_, n)| n).sum();
    assert_eq!(
        report.purged.len(),
        1,
        "only acme has a retention: {report:?}"
    );
    let view = retention(&server, &admin).await;
    let through = view["purged_through_seq"].as_u64().expect("purged");
    assert_eq!(purged, through, "a prefix from seq 1");
    assert!(
        through >= 2_816,
        "nearly all old events went (through {through})"
    );
    assert!(
        through <= 3_000 + 8,
        "no event recorded after the cutoff went"
    );
    assert_eq!(
        view["history_starts_at"].as_str().map(|t| t.to_string()),
        Some(
            serde_json::to_value(cutoff)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        )
    );

    // Every acknowledged event of the concurrent ingest is there; the purged ones are not.
    for id in new.iter().step_by(37).chain(new.last()) {
        server
            .get(&format!("/api/audit-logs/{id}"))
            .bearer(&admin)
            .org("acme")
            .send()
            .await
            .expect(200);
    }
    // The old events are a purged prefix and a kept rest: walking them newest first, once
    // one is gone every older one is gone too, and the kept ones come after `through`.
    let mut kept_old = Vec::new();
    let mut gone = false;
    for id in old
        .iter()
        .rev()
        .take(300)
        .chain(old.iter().rev().skip(300).step_by(53))
    {
        let reply = server
            .get(&format!("/api/audit-logs/{id}"))
            .bearer(&admin)
            .org("acme")
            .send()
            .await;
        match reply.status {
            200 => {
                assert!(!gone, "{id} is kept but a later event was purged");
                assert!(reply.json()["seq"].as_u64().unwrap() > through);
                kept_old.push(id.clone());
            }
            404 => gone = true,
            status => panic!("{id}: {status} {}", reply.text()),
        }
    }
    assert!(gone, "old events were purged");
    let head = server.head(&acme).await;
    let listed = server
        .get("/api/audit-logs?limit=1")
        .bearer(&admin)
        .org("acme")
        .send()
        .await
        .expect(200)
        .json();
    assert_eq!(
        listed["total_count"].as_u64(),
        Some(head - through),
        "{}",
        listed["total_count"]
    );
    assert_eq!(recorded(&server, &admin, "audit_log_purged").await, 1);
    // Another organization lost nothing.
    assert_eq!(server.head(&beta).await, theirs.len() as u64);
    server
        .get(&format!("/api/audit-logs/{}", theirs[0]))
        .bearer(&server.admin(&beta, "admin@beta.test").await)
        .org("beta")
        .send()
        .await
        .expect(200);

    // The chain verifies from the purged hash; the tree extends the one before the purge;
    // the remaining events' proofs verify.
    server
        .service
        .verify_org(acme.id, &|_| {})
        .await
        .expect("the remaining chain verifies");
    let kept: Vec<&String> = kept_old.iter().chain(new.iter().step_by(97)).collect();
    assert_extends_and_includes(&server, &admin, "acme", (old_size, old_root), kept).await;
}
