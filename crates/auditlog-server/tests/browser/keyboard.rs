//! Keyboard use and labels: the Filters summary is reached with Tab and toggled with Enter
//! and Space; every input and select of every page has a label.

use anyhow::{ensure, Result};
use serde_json::json;

use crate::fixture::{ADMIN_EMAIL, ORG};
use crate::webdriver::{keys, Browser};
use crate::Harness;

/// Whether the focused element is the Filters summary.
async fn summary_focused(browser: &Browser) -> Result<bool> {
    Ok(browser
        .execute(
            "return document.activeElement === document.querySelector('details.filters > summary')",
            vec![],
        )
        .await?
        == json!(true))
}

async fn filters_open(browser: &Browser) -> Result<bool> {
    Ok(browser.find("details.filters").await?.prop("open").await? == json!(true))
}

/// Every visible form control without a label (`label[for=id]` or a wrapping label), as
/// short descriptions.
async fn unlabelled(browser: &Browser) -> Result<Vec<String>> {
    let found = browser
        .execute(
            r#"return Array.from(document.querySelectorAll("input:not([type=hidden]), select, textarea")).filter(function (el) {
                var byFor = el.id && document.querySelector('label[for="' + CSS.escape(el.id) + '"]');
                return !byFor && !el.closest("label");
            }).map(function (el) { return el.outerHTML.slice(0, 120); });"#,
            vec![],
        )
        .await?;
    Ok(crate::strings(&found))
}

/// Tab reaches the Filters summary; Enter opens the pane, Space closes it, Enter opens it
/// again, and Tab then moves into the pane's first checkbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_by_keyboard_and_labels() -> Result<()> {
    let Some(h) = Harness::start().await? else {
        return Ok(());
    };
    let browser = h.browser().await?;
    let mut pages_checked = Vec::new();

    browser.goto(&h.app.url("/sign-in")).await?;
    ensure!(
        unlabelled(&browser).await?.is_empty(),
        "sign-in: {:?}",
        unlabelled(&browser).await?
    );
    pages_checked.push("/sign-in".to_string());

    h.sign_in_as(&browser, ADMIN_EMAIL).await?;
    let log = h.app.url(&format!("/orgs/{ORG}/audit-logs"));
    browser.goto(&log).await?;
    ensure!(!filters_open(&browser).await?, "the pane starts closed");

    let mut tabs = 0;
    while !summary_focused(&browser).await? {
        ensure!(
            tabs < 40,
            "40 presses of Tab did not reach the Filters summary"
        );
        browser.press(keys::TAB).await?;
        tabs += 1;
    }
    browser.press(keys::ENTER).await?;
    ensure!(filters_open(&browser).await?, "Enter opens the pane");
    browser.press(keys::SPACE).await?;
    ensure!(!filters_open(&browser).await?, "Space closes the pane");
    browser.press(keys::ENTER).await?;
    ensure!(filters_open(&browser).await?, "Enter opens it again");
    browser.press(keys::TAB).await?;
    let focused = browser
        .execute(
            "var el = document.activeElement; return [el.tagName, el.type, el.name]",
            vec![],
        )
        .await?;
    ensure!(
        focused == json!(["INPUT", "checkbox", "action"]),
        "after the summary, Tab goes to {focused}"
    );
    // Space ticks the focused checkbox, as in any form.
    browser.press(keys::SPACE).await?;
    let ticked = browser
        .execute("return document.activeElement.checked", vec![])
        .await?;
    ensure!(ticked == json!(true), "Space ticks the checkbox");

    // Labels, with the pane open, and on every other page.
    for path in [
        format!("/orgs/{ORG}/audit-logs"),
        format!("/orgs/{ORG}/audit-logs/{}", h.app.events[0].id),
        format!("/orgs/{ORG}/service-accounts"),
        format!("/orgs/{ORG}/tokens"),
        "/account/password".to_string(),
        "/orgs".to_string(),
    ] {
        if !path.ends_with("/audit-logs") {
            browser.goto(&h.app.url(&path)).await?;
        }
        let missing = unlabelled(&browser).await?;
        ensure!(
            missing.is_empty(),
            "{path}: inputs without a label: {missing:?}"
        );
        pages_checked.push(path);
    }
    // The audit-log page really has inputs to check.
    browser.goto(&log).await?;
    let inputs = browser
        .find_all("input:not([type=hidden]), select")
        .await?
        .len();
    ensure!(inputs > 20, "only {inputs} inputs on the audit log");
    println!("labels checked on {pages_checked:?}");
    browser.close().await
}
