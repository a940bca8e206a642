//! Events refused by validation are counted per organization and action, with the last
//! problem and when (`GET /api/audit-logs/rejections`, and
//! `auditlog_ingest_rejected_events_total` on `/metrics`), while a refused batch still stores
//! nothing; each organization sees only its own counts, and the counts stay bounded.

use serde_json::{json, Value};

use crate::{Backend, Server};

on_each_backend! {
    refused_events_are_counted_per_organization_and_action =>
        refused_events_are_counted_per_organization_and_action_sqlite,
        refused_events_are_counted_per_organization_and_action_postgres;
    an_organization_s_counts_are_bounded =>
        an_organization_s_counts_are_bounded_sqlite,
        an_organization_s_counts_are_bounded_postgres;
}

/// The rejection counts `token` reads for `org`.
async fn rejections(server: &Server, token: &str, org: &str) -> Value {
    server
        .get("/api/audit-logs/rejections")
        .bearer(token)
        .org(org)
        .send()
        .await
        .expect(200)
        .json()
}

/// The item of `action_key` (`null`: the other bucket) in a rejections answer.
fn item(answer: &Value, action_key: Value) -> &Value {
    answer["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|item| item["action_key"] == action_key)
        .unwrap_or_else(|| panic!("no item for {action_key} in {answer}"))
}

/// The value of the metric line that starts with `series` (name and labels).
fn metric(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.parse().expect("a count"))
}

async fn refused_events_are_counted_per_organization_and_action(backend: Backend) {
    let server = Server::start(backend).await;
    let acme = server.org("acme", true).await;
    let beta = server.org("beta", true).await;
    let acme_admin = server.admin(&acme, "admin@acme.test").await;
    let beta_admin = server.admin(&beta, "admin@beta.test").await;
    let acme_ingest = server.ingest_key(Some(&acme)).await;
    let platform = server.ingest_key(None).await;
    let ingest = |token: &str, body: Value| {
        server
            .post("/api/audit-logs/events")
            .bearer(token)
            .json(&body)
    };

    // Nothing refused yet.
    let none = rejections(&server, &acme_admin, "acme").await;
    assert_eq!(none, json!({"items": [], "total_count": 0}));

    // A batch with events the server cannot read (an unknown field) and events that break a
    // rule: refused whole, as before, and each bad event counted under its action.
    let head = server.head(&acme).await;
    ingest(
        &acme_ingest,
        json!([
            {"action_key": "channel_created", "target_name": "fine"},
            {"action_key": "channel_created", "actor_typo": "x"},
            {"action_key": "token_created", "actor_email": "not an email"},
        ]),
    )
    .send()
    .await
    .expect(422);
    assert_eq!(
        server.head(&acme).await,
        head,
        "a refused batch stored events"
    );
    let counts = rejections(&server, &acme_admin, "acme").await;
    assert_eq!(counts["total_count"], 2, "{counts}");
    let channel = item(&counts, json!("channel_created"));
    assert_eq!(channel["count"], 1);
    assert_eq!(channel["last_error"]["code"], "invalid");
    assert_eq!(channel["last_error"]["loc"], json!(["body", "actor_typo"]));
    assert!(
        channel["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field"),
        "{channel}"
    );
    assert!(channel["last_rejected_at"].as_str().unwrap().ends_with('Z'));
    let token = item(&counts, json!("token_created"));
    assert_eq!(token["count"], 1);
    assert_eq!(token["last_error"]["loc"], json!(["body", "actor_email"]));

    // Rules the service checks (an unknown action, a bad date) and an ambiguous number the
    // server refuses before parsing: counted the same way.
    ingest(&acme_ingest, json!({"action_key": "made_up_action"}))
        .send()
        .await
        .expect(422);
    ingest(
        &acme_ingest,
        json!({"action_key": "channel_created", "occurred_at": "yesterday"}),
    )
    .send()
    .await
    .expect(422);
    server
        .post("/api/audit-logs/events")
        .bearer(&acme_ingest)
        .body(
            "application/json",
            r#"[{"action_key": "channel_created", "meta": {"n": 9007199254740993}}]"#,
        )
        .send()
        .await
        .expect(422);
    assert_eq!(server.head(&acme).await, head);
    let counts = rejections(&server, &acme_admin, "acme").await;
    assert_eq!(counts["total_count"], 3, "{counts}");
    // Most refused first.
    assert_eq!(counts["items"][0]["action_key"], "channel_created");
    let channel = item(&counts, json!("channel_created"));
    assert_eq!(channel["count"], 3);
    assert_eq!(channel["last_error"]["code"], "inexact_number");
    assert_eq!(channel["last_error"]["loc"], json!(["body", "meta.n"]));
    let made_up = item(&counts, json!("made_up_action"));
    assert_eq!(made_up["count"], 1);
    assert_eq!(made_up["last_error"]["code"], "unknown_action");
    assert_eq!(made_up["last_error"]["loc"], json!(["body", "action_key"]));

    // The platform key writes for any organization: a refused event of beta's is beta's, and
    // one for an organization that does not exist is nobody's.
    ingest(
        &platform,
        json!([
            {"org": "beta", "action_key": "policy_created", "actor_email": "bad"},
            {"org": "no-such-org", "action_key": "channel_created"},
        ]),
    )
    .send()
    .await
    .expect(422);
    // An ingest key may not write for another organization: refused before validation, and
    // counted nowhere, whatever else is wrong.
    ingest(
        &acme_ingest,
        json!({"org": "beta", "action_key": "policy_deleted", "actor_email": "bad"}),
    )
    .send()
    .await
    .expect(403);
    ingest(
        &acme_ingest,
        json!({"org": "beta", "action_key": "policy_deleted", "actor_typo": "x"}),
    )
    .send()
    .await
    .expect(422);

    let beta_counts = rejections(&server, &beta_admin, "beta").await;
    assert_eq!(beta_counts["total_count"], 1, "{beta_counts}");
    assert_eq!(item(&beta_counts, json!("policy_created"))["count"], 1);
    let beta_text = beta_counts.to_string();
    for acme_only in ["channel_created", "made_up_action", "token_created"] {
        assert!(!beta_text.contains(acme_only), "beta sees {acme_only}");
    }
    let counts = rejections(&server, &acme_admin, "acme").await;
    assert_eq!(counts["total_count"], 3, "{counts}");
    assert_eq!(item(&counts, json!("channel_created"))["count"], 3);

    let text = server.get("/metrics").send().await.expect(200).text();
    let series = |org: &str, action: &str| {
        metric(
            &text,
            &format!("auditlog_ingest_rejected_events_total{{org=\"{org}\",action=\"{action}\"}}"),
        )
    };
    assert_eq!(series("acme", "channel_created"), Some(3), "{text}");
    assert_eq!(series("acme", "token_created"), Some(1), "{text}");
    assert_eq!(series("acme", "made_up_action"), Some(1), "{text}");
    assert_eq!(series("beta", "policy_created"), Some(1), "{text}");
    assert_eq!(series("", "channel_created"), Some(1), "{text}");
    assert_eq!(series("beta", "policy_deleted"), None, "{text}");
    assert_eq!(series("acme", "policy_deleted"), None, "{text}");
}

async fn an_organization_s_counts_are_bounded(backend: Backend) {
    let server = Server::start(backend).await;
    let acme = server.org("acme", true).await;
    let admin = server.admin(&acme, "admin@acme.test").await;
    let ingest = server.ingest_key(Some(&acme)).await;
    let max = auditlog_service::rejections::MAX_ACTIONS_PER_ORG;
    let send = |events: Vec<Value>| {
        server
            .post("/api/audit-logs/events")
            .bearer(&ingest)
            .json(&Value::Array(events))
            .send()
    };
    // A key far beyond any valid one is kept cut.
    let long_key = "x".repeat(5_000);
    send(vec![json!({"action_key": long_key})])
        .await
        .expect(422);
    // Then as many other distinct unknown actions as an organization's counts keep, and more.
    send(
        (1..max)
            .map(|n| json!({"action_key": format!("drifted_{n}")}))
            .collect(),
    )
    .await
    .expect(422);
    send(
        (0..5)
            .map(|n| json!({"action_key": format!("late_{n}")}))
            .collect(),
    )
    .await
    .expect(422);

    let counts = rejections(&server, &admin, "acme").await;
    assert_eq!(counts["total_count"], json!(max + 1));
    let cut = format!(
        "{}…",
        "x".repeat(auditlog_service::rejections::MAX_ACTION_KEY_KEPT)
    );
    let long = item(&counts, json!(cut));
    assert_eq!(long["count"], 1);
    assert_eq!(long["last_error"]["code"], "too_long");
    assert!(!counts.to_string().contains(&"x".repeat(200)));
    assert_eq!(item(&counts, json!("drifted_1"))["count"], 1);
    let other = item(&counts, Value::Null);
    assert_eq!(other["count"], 5);
    assert_eq!(other["last_error"]["code"], "unknown_action");

    let text = server.get("/metrics").send().await.expect(200).text();
    let acme_series = text
        .lines()
        .filter(|line| line.starts_with("auditlog_ingest_rejected_events_total{org=\"acme\""))
        .count();
    assert_eq!(acme_series, max + 1, "one series per count kept");
    assert_eq!(
        metric(
            &text,
            "auditlog_ingest_rejected_events_total{org=\"acme\",action=\"(malformed)\"}"
        ),
        Some(1)
    );
    assert_eq!(
        metric(
            &text,
            "auditlog_ingest_rejected_events_total{org=\"acme\",action=\"(other)\"}"
        ),
        Some(5)
    );
}
