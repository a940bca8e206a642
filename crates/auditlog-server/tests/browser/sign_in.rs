//! Signing in with a password, the way to the table, signing out, and one-time sign-in links.

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

use crate::fixture::{ADMIN_EMAIL, ORG, PASSWORD};
use crate::{expect_text, fill_sign_in, pager_text, rows, screenshot, Harness};

/// A wrong password keeps the form with an error; the right one leads to Organizations, the
/// organization, and its table: newest first, with the six columns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_see_the_table() -> Result<()> {
    let Some(h) = Harness::start().await? else {
        return Ok(());
    };
    let browser = h.browser().await?;

    // Any page asks for a sign-in first.
    browser.goto(&h.app.url("/")).await?;
    browser
        .wait_for_path("the sign-in form", |p| p.starts_with("/sign-in"))
        .await?;
    ensure!(browser.heading().await? == "Sign in");

    fill_sign_in(&browser, ADMIN_EMAIL, "not the password").await?;
    let alert = browser.wait_for("p.notice.error[role=alert]").await?;
    ensure!(
        alert.text().await?.contains("Wrong email or password"),
        "the error says {:?}",
        alert.text().await?
    );
    ensure!(browser.path().await?.starts_with("/sign-in"));
    // The address typed stays in the form.
    let email = browser.find("input#email").await?.prop("value").await?;
    ensure!(email == json!(ADMIN_EMAIL), "email field holds {email}");

    fill_sign_in(&browser, ADMIN_EMAIL, PASSWORD).await?;
    browser.wait_for_path("/orgs", |p| p == "/orgs").await?;
    ensure!(browser.heading().await? == "Organizations");
    expect_text(&browser, ADMIN_EMAIL).await?;

    browser
        .find("//table//a[normalize-space()='Acme']")
        .await?
        .click()
        .await?;
    browser
        .wait_for_path("the audit log", |p| p == format!("/orgs/{ORG}/audit-logs"))
        .await?;
    ensure!(browser.heading().await? == "Audit Logs");
    let current = browser.find("aside.side a[aria-current=page]").await?;
    ensure!(current.text().await? == "Audit Logs");

    let headers: Vec<String> = {
        let mut out = Vec::new();
        for th in browser.find_all("table.events thead th").await? {
            out.push(th.content().await?);
        }
        out
    };
    ensure!(
        headers == ["Time", "Action", "User", "Target", "Message", "IP"],
        "columns: {headers:?}"
    );

    let shown = rows(&browser).await?;
    let total = h.app.total().await?;
    ensure!(
        shown.len() == 50,
        "{} rows on the first page (default 50)",
        shown.len()
    );
    ensure!(
        shown[0].at() >= shown[1].at(),
        "newest first: {} then {}",
        shown[0].time,
        shown[1].time
    );
    ensure!(
        shown.windows(2).all(|w| w[0].at() >= w[1].at()),
        "every row is at or before the one above it"
    );
    // The newest event is this sign-in itself.
    ensure!(
        shown[0].action == "Authentication Success" && shown[0].user == ADMIN_EMAIL,
        "the newest row is {:?}",
        shown[0]
    );
    let pager = pager_text(&browser).await?;
    ensure!(pager == format!("1–50 of {total}"), "pager says {pager:?}");
    // The newest seeded event shows its user, target, message and IP.
    let seeded = shown
        .iter()
        .find(|r| r.target.starts_with("ml-channel-"))
        .context("no seeded row on the first page")?;
    ensure!(
        seeded.target == "ml-channel-000"
            && seeded.user == "alice@acme.example"
            && seeded.action == "Channel Created"
            && seeded.ip == "198.51.100.1"
            && seeded.message.contains("ml-channel-000"),
        "the newest seeded row: {seeded:?}"
    );
    // The chart of events per day is drawn with bars.
    let bars = browser.find_all("figure.chart svg rect").await?;
    ensure!(bars.len() >= 20, "{} chart bars", bars.len());

    screenshot(&browser, "audit-log-table").await?;
    browser.close().await
}

/// Signing out returns to the sign-in form, and the audit log then asks for a sign-in again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out() -> Result<()> {
    let Some(h) = Harness::start().await? else {
        return Ok(());
    };
    let browser = h.signed_in(ADMIN_EMAIL).await?;
    let log = h.app.url(&format!("/orgs/{ORG}/audit-logs"));
    browser.goto(&log).await?;
    ensure!(browser.heading().await? == "Audit Logs");

    browser
        .find("form[action='/sign-out'] button[type=submit]")
        .await?
        .click()
        .await?;
    browser
        .wait_for_path("/sign-in", |p| p == "/sign-in")
        .await?;
    ensure!(browser.heading().await? == "Sign in");
    let session_cookie = browser
        .cookies()
        .await?
        .into_iter()
        .find(|(name, value)| name == "auditlog_session" && !value.is_empty());
    ensure!(session_cookie.is_none(), "the session cookie is still set");

    browser.goto(&log).await?;
    let path = browser
        .wait_for_path("the sign-in form", |p| p.starts_with("/sign-in"))
        .await?;
    ensure!(
        crate::query_values(&path, "next") == [format!("/orgs/{ORG}/audit-logs")],
        "sign-in returns to the audit log afterwards: {path}"
    );
    ensure!(browser.heading().await? == "Sign in");
    browser.close().await
}

/// A platform mints a one-time link with its ingest key; the link signs its user in and lands
/// on the audit log, once: the second opening says the link expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_time_sign_in_link() -> Result<()> {
    let Some(h) = Harness::start().await? else {
        return Ok(());
    };
    let (_, ingest_key) = h
        .app
        .service
        .create_ingest_key(Some(&h.app.org), "p")
        .await?;
    let authorization = format!("Bearer {ingest_key}");
    let body = json!({ "email": ADMIN_EMAIL }).to_string();
    let response = crate::http::request(
        &h.app.host(),
        "POST",
        "/api/viewer-links",
        &[
            ("Authorization", &authorization),
            ("X-Org-Name", ORG),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
    .await?;
    ensure!(
        response.status == 200,
        "minting a link: {} {}",
        response.status,
        response.text()
    );
    let minted: Value = serde_json::from_slice(&response.body)?;
    let url = minted["url"].as_str().context("no url")?.to_string();
    ensure!(
        url.starts_with(&h.app.url("/sign-in/link?token=")),
        "link {url}"
    );

    let first = h.browser().await?;
    first.goto(&url).await?;
    first
        .wait_for_path("the audit log", |p| p == format!("/orgs/{ORG}/audit-logs"))
        .await?;
    first.wait_for("table.events").await?;
    ensure!(first.heading().await? == "Audit Logs");
    crate::expect_text(&first, ADMIN_EMAIL).await?;
    first.close().await?;

    let second = h.browser().await?;
    second.goto(&url).await?;
    ensure!(
        second.heading().await? == "Link expired",
        "the second opening shows {:?}",
        second.heading().await?
    );
    // And it signed nobody in.
    second
        .goto(&h.app.url(&format!("/orgs/{ORG}/audit-logs")))
        .await?;
    second
        .wait_for_path("the sign-in form", |p| p.starts_with("/sign-in"))
        .await?;
    second.close().await
}
