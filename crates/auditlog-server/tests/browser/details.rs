//! One event's details page, reached from the table through the search box.

use std::collections::HashMap;

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

use crate::fixture::{ADMIN_EMAIL, ORG};
use crate::{query_values, rows, screenshot, Harness};

/// Searching finds the event with every field set; its details show all of them, its
/// metadata, and that its hash matches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_details() -> Result<()> {
    let Some(h) = Harness::start().await? else {
        return Ok(());
    };
    let event = h
        .app
        .events
        .iter()
        .find(|e| e.body.request_id.as_deref() == Some("req-rich-0001"))
        .context("the rich event was seeded")?
        .clone();
    let browser = h.signed_in(ADMIN_EMAIL).await?;
    browser
        .goto(&h.app.url(&format!("/orgs/{ORG}/audit-logs")))
        .await?;

    browser
        .find("details.filters > summary")
        .await?
        .click()
        .await?;
    browser
        .find("input#text")
        .await?
        .send_keys("prod-readers")
        .await?;
    browser
        .find("details.filters button.primary[type=submit]")
        .await?
        .click()
        .await?;
    let path = browser
        .wait_for_path("a search URL", |p| p.contains("q="))
        .await?;
    ensure!(query_values(&path, "q") == ["prod-readers"], "{path}");
    let shown = rows(&browser).await?;
    ensure!(shown.len() == 1, "the search finds {} rows", shown.len());
    let row = &shown[0];
    ensure!(
        row.action == "Policy Assigned"
            && row.user == "erin@acme.example"
            && row.target == "prod-readers"
            && row.ip == "203.0.113.42",
        "the row: {row:?}"
    );

    browser
        .find("table.events td.time a")
        .await?
        .click()
        .await?;
    let details_path = format!("/orgs/{ORG}/audit-logs/{}", event.id);
    browser
        .wait_for_path("the details page", |p| p == details_path)
        .await?;
    ensure!(browser.heading().await? == "Policy Assigned");

    let pairs = browser
        .execute(
            r#"var out = {};
               document.querySelectorAll("dl.details dt").forEach(function (dt) {
                   var dd = dt.nextElementSibling;
                   out[dt.textContent.trim()] = {
                       text: dd.textContent.trim(),
                       datetime: (dd.querySelector("time") || { getAttribute: function () { return null; } }).getAttribute("datetime")
                   };
               });
               return out;"#,
            vec![],
        )
        .await?;
    let pairs: HashMap<String, Value> = serde_json::from_value(pairs)?;
    let text = |key: &str| -> String {
        pairs
            .get(key)
            .and_then(|v| v["text"].as_str())
            .unwrap_or("(missing)")
            .to_string()
    };
    let expect = [
        ("Action key", "policy_assigned".to_string()),
        (
            "Actor",
            "Erin Eriksen · erin@acme.example · usr_7f3a9c · user".to_string(),
        ),
        (
            "Target",
            "prod-readers · readers@acme.example · pol_prod_readers · policy".to_string(),
        ),
        ("Service", "iam-gateway".to_string()),
        ("IP address", "203.0.113.42".to_string()),
        (
            "User agent",
            "Mozilla/5.0 (X11; Linux x86_64) AuditTest/1.0".to_string(),
        ),
        ("Request id", "req-rich-0001".to_string()),
        ("Event id", event.id.to_string()),
        ("Sequence", event.seq.to_string()),
        ("Hash", hex::encode(event.hash)),
        ("Verb", event.body.action_verb.clone().unwrap_or_default()),
    ];
    for (key, want) in expect {
        ensure!(
            text(key) == want,
            "{key}: {:?}, expected {want:?}",
            text(key)
        );
    }
    let occurred = pairs.get("Occurred").map(|v| v["datetime"].clone());
    ensure!(
        occurred == Some(json!(event.body.occurred_at.to_string())),
        "Occurred: {occurred:?}"
    );
    ensure!(
        pairs.get("Recorded").map(|v| v["datetime"].clone())
            == Some(json!(event.created_at.to_string())),
        "Recorded"
    );
    let integrity = text("Integrity");
    ensure!(
        integrity.contains("✓ the hash matches"),
        "Integrity: {integrity:?}"
    );
    let ok = browser.find("dl.details span.ok").await?.text().await?;
    ensure!(ok.starts_with('✓'), "integrity mark {ok:?}");

    let meta: Value = serde_json::from_str(&browser.find("pre.meta").await?.content().await?)
        .context("the metadata is shown as JSON")?;
    ensure!(
        meta == json!({
            "policy": { "name": "prod-readers", "version": 3 },
            "channels": ["ml-prod", "ml-staging"],
            "reason": "quarterly access review",
        }),
        "metadata {meta}"
    );
    // The action's description from the catalog, and the way back.
    let description = &h
        .app
        .service
        .catalog()
        .get("policy_assigned")
        .context("policy_assigned is in the catalog")?
        .description;
    crate::expect_text(&browser, description).await?;
    screenshot(&browser, "event-details").await?;
    browser
        .find("div.crumbs a[href$='/audit-logs']")
        .await?
        .click()
        .await?;
    browser
        .wait_for_path("the audit log", |p| p == format!("/orgs/{ORG}/audit-logs"))
        .await?;
    browser.close().await
}
