//! What an event says beyond the reference API (docs/events.md, "Beyond the reference"): an
//! impersonator, before-and-after changes, an outcome with a reason and the backfill flag,
//! through ingest, the list and its filters, search and exports; and the attempts the
//! service records itself: refused reads, failed sign-ins, role changes.

use auditlog_core::Timestamp;
use auditlog_service::access::Actor;
use auditlog_store::Role;
use serde_json::{json, Value};

use crate::{export_completed, query, Backend, Server};

on_each_backend! {
    extensions_are_stored_returned_filtered_searched_and_exported
        => extensions_are_stored_returned_filtered_searched_and_exported_sqlite,
           extensions_are_stored_returned_filtered_searched_and_exported_postgres;
    refused_and_failed_attempts_are_recorded_at_most_once_a_window
        => refused_and_failed_attempts_are_recorded_at_most_once_a_window_sqlite,
           refused_and_failed_attempts_are_recorded_at_most_once_a_window_postgres;
}

/// The events of `org` that `q` selects, as the admin lists them.
async fn listed(server: &Server, admin: &str, q: &str) -> Vec<Value> {
    let path = match q {
        "" => "/api/audit-logs?limit=100".to_string(),
        q => format!("/api/audit-logs?{}", query(&[("q", q), ("limit", "100")])),
    };
    let page = server
        .get(&path)
        .bearer(admin)
        .org("acme")
        .send()
        .await
        .expect(200)
        .json();
    page["items"].as_array().expect("items").clone()
}

async fn extensions_are_stored_returned_filtered_searched_and_exported(backend: Backend) {
    let server = Server::start(backend).await;
    let acme = server.org("acme", true).await;
    let key = server.ingest_key(Some(&acme)).await;
    let admin = server.admin(&acme, "admin@acme.test").await;
    let three_days_ago = Timestamp::from_millis(Timestamp::now().as_millis() - 3 * 86_400_000)
        .expect("a time")
        .to_string();
    let batch = json!([
        {
            "action_key": "organization_user_updated",
            "actor_email": "alice@acme.test",
            "target_email": "bob@acme.test",
            "impersonator": {"id": "staff-7", "email": "support@example.net"},
            "changes": [
                {"field": "role", "before": "member", "after": "admin"},
                {"field": "nickname", "before": null}
            ],
            "outcome": "denied",
            "reason": "bob is the last owner"
        },
        {
            "action_key": "channel_created",
            "actor_email": "carol@acme.test",
            "target_name": "ml-prod",
            "occurred_at": three_days_ago
        }
    ]);
    server
        .post("/api/audit-logs/events")
        .bearer(&key)
        .json(&batch)
        .send()
        .await
        .expect(201);

    let all = listed(&server, &admin, "").await;
    let updated = all
        .iter()
        .find(|e| e["action_key"] == "organization_user_updated")
        .expect("the impersonated event");
    assert_eq!(updated["impersonator"]["email"], "support@example.net");
    assert_eq!(updated["impersonator"]["type"], "user");
    assert_eq!(updated["changes"][0]["before"], "member");
    assert_eq!(updated["changes"][1]["before"], Value::Null);
    assert!(updated["changes"][1].get("after").is_none(), "{updated}");
    assert_eq!(updated["outcome"], "denied");
    assert_eq!(updated["reason"], "bob is the last owner");
    assert!(updated.get("backfilled").is_none(), "{updated}");
    let message = updated["message"].as_str().expect("message");
    assert!(
        message.starts_with("support@example.net as alice@acme.test ")
            && message.ends_with(" — denied: bob is the last owner"),
        "{message}"
    );
    let created = all
        .iter()
        .find(|e| e["action_key"] == "channel_created")
        .expect("the backlog event");
    assert_eq!(created["backfilled"], true, "{created}");
    assert_eq!(created["outcome"], "success");
    assert_eq!(created["occurred_at"], three_days_ago, "never restamped");

    let ids = |events: Vec<Value>| -> Vec<String> {
        events
            .iter()
            .map(|e| e["action_key"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    for q in [
        "impersonator:support@example.net",
        "impersonator:staff-7",
        "outcome:denied",
        "text:nickname",
    ] {
        assert_eq!(
            ids(listed(&server, &admin, q).await),
            ["organization_user_updated"],
            "{q}"
        );
    }
    assert!(ids(listed(&server, &admin, "outcome:success").await)
        .contains(&"channel_created".to_string()));
    assert!(listed(&server, &admin, "impersonator:nobody@example.net")
        .await
        .is_empty());
    // A refused value names its path.
    let refused = server
        .post("/api/audit-logs/events")
        .bearer(&key)
        .json(&json!([{"action_key": "channel_created", "changes": [{"before": 1}]}]))
        .send()
        .await
        .expect(422);
    assert!(
        refused.text().contains("changes[0].field"),
        "{}",
        refused.text()
    );

    let job = export_completed(
        &server,
        &admin,
        "acme",
        json!({"format": "jsonl", "q": ["impersonator:staff-7"]}),
    )
    .await;
    let file = server
        .get(&format!("/api/audit-logs/export/{job}/download"))
        .bearer(&admin)
        .org("acme")
        .send()
        .await
        .expect(200)
        .text();
    let line: Value =
        serde_json::from_str(file.lines().next().expect("an event line")).expect("a JSON line");
    assert_eq!(line["impersonator"]["id"], "staff-7");
    assert_eq!(line["changes"][0]["after"], "admin");
    let report = auditlog_core::export::verify_export(
        file.as_bytes(),
        &server.service.signing_key().verifying_key(),
    )
    .expect("the export verifies");
    assert_eq!(report.records, 1);
}

async fn refused_and_failed_attempts_are_recorded_at_most_once_a_window(backend: Backend) {
    let server = Server::start(backend).await;
    let acme = server.org("acme", true).await;
    let beta = server.org("beta", true).await;
    let admin = server.admin(&acme, "admin@acme.test").await;
    let member = server
        .user_token(&acme, "member@acme.test", Role::Member)
        .await;
    let outsider = server.service_account_token(&beta, "beta-bot").await;

    for _ in 0..3 {
        server
            .get("/api/audit-logs")
            .bearer(&member)
            .org("acme")
            .send()
            .await
            .expect(403);
    }
    server
        .get("/api/audit-logs")
        .bearer(&outsider)
        .org("acme")
        .send()
        .await
        .expect(403);
    let denied = listed(&server, &admin, "action_key:audit_log_access_denied").await;
    assert_eq!(denied.len(), 2, "once per source a window: {denied:#?}");
    let by_member = denied
        .iter()
        .find(|e| e["actor_email"] == "member@acme.test")
        .expect("the member's refusal");
    assert_eq!(by_member["outcome"], "denied");
    assert_eq!(
        by_member["reason"],
        "only administrators may read the audit log"
    );
    let by_outsider = denied
        .iter()
        .find(|e| e["actor_type"] == "service_account")
        .expect("the other organization's refusal");
    // Someone from another organization is named by id only.
    assert!(by_outsider["actor_name"].is_null(), "{by_outsider}");
    assert!(by_outsider["actor_id"].is_string());
    assert!(
        listed(&server, &admin, "outcome:denied").await.len() == 2,
        "the outcome filter finds the same"
    );

    // A wrong client secret is a failed sign-in of the account's organization.
    let (client_id, _secret) = server.service_account(&acme, "acme-bot").await;
    server
        .post("/api/iam/token")
        .json(&json!({
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": "not-the-secret",
        }))
        .send()
        .await
        .expect(401);
    let failed = listed(&server, &admin, "outcome:failure").await;
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(failed[0]["action_key"], "authentication_success");
    assert_eq!(failed[0]["reason"], "wrong client secret");
    assert_eq!(failed[0]["actor_name"], "acme-bot");

    // A role change says what it changed.
    server
        .service
        .add_user(
            &acme,
            "member@acme.test",
            None,
            Role::Admin,
            &Actor::operator(),
        )
        .await
        .expect("promote the member");
    let updated = listed(&server, &admin, "action_key:organization_user_updated").await;
    assert_eq!(
        updated[0]["changes"],
        json!([{"field": "role", "before": "member", "after": "admin"}])
    );
}
