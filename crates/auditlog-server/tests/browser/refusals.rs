//! Who may not see an audit log, and what the page tells them.

use anyhow::{ensure, Result};
use auditlog_store::Role;

use crate::fixture::ORG;
use crate::{expect_text, Harness};

/// A member of `acme` is told the log is for administrators; an administrator of another
/// organization is told `acme` does not exist; an organization not enrolled shows the
/// early-access notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals() -> Result<()> {
    let Some(h) = Harness::start().await? else {
        return Ok(());
    };
    let app = &h.app;
    app.user(&app.org, "mel@acme.example", Role::Member).await?;
    let globex = app.other_org("globex", "Globex", true).await?;
    app.user(&globex, "gina@globex.example", Role::Admin)
        .await?;
    let initech = app.other_org("initech", "Initech", false).await?;
    app.user(&initech, "ian@initech.example", Role::Admin)
        .await?;
    let acme_log = format!("/orgs/{ORG}/audit-logs");
    let acme_event = format!("{acme_log}/{}", app.events[0].id);

    let browser = h.browser().await?;

    // A member.
    h.sign_in_as(&browser, "mel@acme.example").await?;
    browser.goto(&app.url(&acme_log)).await?;
    ensure!(
        browser.heading().await? == "Administrators only",
        "a member sees {:?}",
        browser.heading().await?
    );
    expect_text(&browser, "Only administrators of Acme").await?;
    ensure!(browser.find_all("table.events").await?.is_empty());
    ensure!(h.fetch_as(&browser, &acme_log).await?.status == 403);
    browser.goto(&app.url(&acme_event)).await?;
    ensure!(browser.heading().await? == "Administrators only");

    // Someone of another organization.
    h.sign_in_as(&browser, "gina@globex.example").await?;
    expect_text(&browser, "Globex").await?;
    browser.goto(&app.url(&acme_log)).await?;
    ensure!(
        browser.heading().await? == "Organization not found",
        "another organization's user sees {:?}",
        browser.heading().await?
    );
    ensure!(h.fetch_as(&browser, &acme_log).await?.status == 404);
    browser.goto(&app.url(&acme_event)).await?;
    ensure!(browser.heading().await? == "Organization not found");
    // Their own log works.
    browser.goto(&app.url("/orgs/globex/audit-logs")).await?;
    ensure!(browser.heading().await? == "Audit Logs");

    // An organization not enrolled in the early access program.
    h.sign_in_as(&browser, "ian@initech.example").await?;
    expect_text(&browser, "early access: not enrolled").await?;
    browser.goto(&app.url("/orgs/initech/audit-logs")).await?;
    let heading = browser.heading().await?;
    ensure!(
        heading.contains("early access"),
        "a non-enrolled organization shows {heading:?}"
    );
    expect_text(
        &browser,
        "not enrolled in the audit logs early access program",
    )
    .await?;
    ensure!(
        h.fetch_as(&browser, "/orgs/initech/audit-logs")
            .await?
            .status
            == 403
    );
    browser.close().await
}
