//! Exporting from the page: the button, the progress page that refreshes itself, and a
//! download that verifies against the server's key.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use auditlog_service::export::ExportFormat;

use crate::fixture::{ADMIN_EMAIL, ORG};
use crate::{screenshot, Harness};

/// CSV export of the whole log: the progress page turns into a Download link, and the file,
/// fetched with the browser's session cookie, verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_csv() -> Result<()> {
    let Some(h) = Harness::start().await? else {
        return Ok(());
    };
    let browser = h.signed_in(ADMIN_EMAIL).await?;
    browser
        .goto(&h.app.url(&format!("/orgs/{ORG}/audit-logs")))
        .await?;
    let before = h.app.total().await?;

    browser
        .find("select#format option[value=csv]")
        .await?
        .click()
        .await?;
    browser
        .find("//div[contains(@class,'toolbar')]//button[normalize-space()='Export']")
        .await?
        .click()
        .await?;
    let status_path = browser
        .wait_for_path("the export's page", |p| {
            p.starts_with(&format!("/orgs/{ORG}/exports/"))
        })
        .await?;
    ensure!(browser.heading().await? == "Export");

    // The page reloads itself (meta refresh) until the file is ready.
    let download = browser
        .wait_for_within("//a[normalize-space()='Download']", Duration::from_secs(30))
        .await
        .context("the export did not become ready")?;
    let href = download
        .attr("href")
        .await?
        .context("Download has no href")?;
    ensure!(
        href == format!("{status_path}/download"),
        "Download links to {href}"
    );
    let ready = browser.find("p.notice[role=status]").await?.text().await?;
    ensure!(ready.starts_with("Ready:"), "status says {ready:?}");
    screenshot(&browser, "export-ready").await?;

    // The download, with the session cookie the browser holds.
    let response = h.fetch_as(&browser, &href).await?;
    ensure!(response.status == 200, "download: {}", response.status);
    ensure!(
        response
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/csv")),
        "content type {:?}",
        response.header("content-type")
    );
    ensure!(
        response
            .header("content-disposition")
            .is_some_and(|d| d.starts_with("attachment") && d.contains(".csv")),
        "content disposition {:?}",
        response.header("content-disposition")
    );
    let key = auditlog_service::keys::parse_public_key(&h.app.public_key)
        .context("the server's public key")?;
    let report = auditlog_core::export::verify_export(response.body.as_slice(), &key)
        .map_err(|e| anyhow::anyhow!("the export does not verify: {e}"))?;
    ensure!(
        report.format == ExportFormat::Csv,
        "format {:?}",
        report.format
    );
    ensure!(!report.gzip);
    ensure!(
        report.records >= before,
        "{} records exported, {before} events before the export",
        report.records
    );
    report
        .ensure_complete()
        .map_err(|e| anyhow::anyhow!("the full export is incomplete: {e}"))?;

    // Without the cookie, no file.
    let anonymous = crate::http::request(&h.app.host(), "GET", &href, &[], b"").await?;
    ensure!(
        anonymous.status == 303 || anonymous.status == 302 || anonymous.status == 307,
        "without a session: {}",
        anonymous.status
    );
    browser.close().await
}
