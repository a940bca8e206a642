//! End-to-end tests of the web page in a real headless Chromium, driven through chromedriver.
//!
//! Each test starts its own server in-process (a port-0 listener over its own SQLite store,
//! seeded by [`fixture`]) and its own chromedriver on a free port, and opens fresh browser
//! sessions against it. Dropping the [`Harness`] kills chromedriver with every Chromium it
//! started, also when the test fails.
//!
//! Without Chromium and chromedriver (Debian's `chromium` and `chromium-driver`) the tests
//! print that they were skipped and pass, except under `CI=true`, where they fail.
//! `AUDITLOG_CHROMEDRIVER` and `AUDITLOG_CHROMIUM` name other programs.
//!
//! Screenshots of the main states go to `target/browser-screenshots/`.
//!
//! - `sign_in`: the password form (wrong, then right), the organizations list, the table,
//!   signing out, and one-time sign-in links.
//! - `table`: filters (bookmarkable, cleared) and paging.
//! - `details`: one event's fields, metadata and integrity.
//! - `export`: an export from the button to a download that verifies.
//! - `refusals`: members, other organizations, organizations not enrolled.
//! - `xss`: script in every field of an event stays text.
//! - `keyboard`: the filters pane works from the keyboard; every input has a label.

use std::path::PathBuf;

use anyhow::{ensure, Context, Result};
use auditlog_core::Timestamp;
use serde::Deserialize;
use serde_json::Value;

mod fixture;
mod http;
mod webdriver;

mod details;
mod export;
mod keyboard;
mod refusals;
mod sign_in;
mod table;
mod xss;

use fixture::App;
use webdriver::{Browser, Driver, Programs};

/// What every test runs on: a seeded server and a chromedriver.
pub struct Harness {
    /// The seeded server.
    pub app: App,
    /// The chromedriver.
    pub driver: Driver,
}

impl Harness {
    /// Starts both, or returns `None` (the test passes, skipped) when Chromium or
    /// chromedriver is not installed, unless `CI=true`.
    pub async fn start() -> Result<Option<Harness>> {
        let Some(programs) = Programs::find() else {
            auditlog_testkit::Unavailable::new(
                "Chromium/chromedriver not installed (browser tests need Debian's chromium \
                 and chromium-driver)",
            )
            .skip();
            return Ok(None);
        };
        let (app, driver) = tokio::join!(App::start(), Driver::start(&programs));
        Ok(Some(Harness {
            app: app.context("start the server")?,
            driver: driver.context("start chromedriver")?,
        }))
    }

    /// A fresh browser session (its own profile: no cookies).
    pub async fn browser(&self) -> Result<Browser> {
        self.driver
            .browser()
            .await
            .context("start a browser session")
    }

    /// A fresh browser session signed in as `email` through the sign-in form.
    pub async fn signed_in(&self, email: &str) -> Result<Browser> {
        let browser = self.browser().await?;
        self.sign_in_as(&browser, email).await?;
        Ok(browser)
    }

    /// Signs `browser` in as `email` through the sign-in form, after forgetting any session.
    pub async fn sign_in_as(&self, browser: &Browser, email: &str) -> Result<()> {
        browser.goto(&self.app.url("/sign-in")).await?;
        browser.clear_cookies().await?;
        sign_in_with_form(browser, &self.app, email, fixture::PASSWORD).await?;
        browser
            .wait_for_path("/orgs", |p| p == "/orgs")
            .await
            .with_context(|| format!("sign in as {email}"))?;
        Ok(())
    }

    /// `GET path` outside the browser, with the browser's session cookie.
    pub async fn fetch_as(&self, browser: &Browser, path: &str) -> Result<http::Response> {
        let cookie = format!("auditlog_session={}", session_cookie(browser).await?);
        http::request(&self.app.host(), "GET", path, &[("Cookie", &cookie)], b"").await
    }
}

/// The browser's session cookie (HttpOnly: read through WebDriver, not the page).
pub async fn session_cookie(browser: &Browser) -> Result<String> {
    browser
        .cookies()
        .await?
        .into_iter()
        .find(|(name, value)| name == "auditlog_session" && !value.is_empty())
        .map(|(_, value)| value)
        .context("no session cookie")
}

/// Loads the sign-in page and submits the form.
pub async fn sign_in_with_form(
    browser: &Browser,
    app: &App,
    email: &str,
    password: &str,
) -> Result<()> {
    browser.goto(&app.url("/sign-in")).await?;
    fill_sign_in(browser, email, password).await
}

/// Fills and submits the sign-in form of the current page.
pub async fn fill_sign_in(browser: &Browser, email: &str, password: &str) -> Result<()> {
    let email_input = browser.wait_for("input#email").await?;
    email_input.clear().await?;
    email_input.send_keys(email).await?;
    let password_input = browser.find("input#password").await?;
    password_input.clear().await?;
    password_input.send_keys(password).await?;
    browser
        .find("form[action='/sign-in'] button[type=submit]")
        .await?
        .click()
        .await
}

/// One row of the events table, as shown.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Row {
    /// The details link.
    pub href: String,
    /// The `datetime` of its time.
    pub time: String,
    /// The action's display name.
    pub action: String,
    /// The User column.
    pub user: String,
    /// The Target column.
    pub target: String,
    /// The Message column.
    pub message: String,
    /// The IP column.
    pub ip: String,
}

impl Row {
    /// When it happened.
    pub fn at(&self) -> Timestamp {
        Timestamp::parse(&self.time).expect("a row's datetime is RFC 3339")
    }
}

/// The rows of the events table on the current page (in one round trip).
pub async fn rows(browser: &Browser) -> Result<Vec<Row>> {
    let value = browser
        .execute(
            r#"return Array.from(document.querySelectorAll("table.events tbody tr")).map(function (tr) {
                var td = tr.querySelectorAll("td");
                var link = td[0].querySelector("a");
                var time = td[0].querySelector("time");
                return {
                    href: link ? link.getAttribute("href") : "",
                    time: time ? time.getAttribute("datetime") : "",
                    action: td[1].textContent.trim(),
                    user: td[2].textContent.trim(),
                    target: td[3].textContent.trim(),
                    message: td[4].textContent.trim(),
                    ip: td[5].textContent.trim()
                };
            });"#,
            vec![],
        )
        .await?;
    serde_json::from_value(value).context("table rows")
}

/// The pager's "11–20 of 131".
pub async fn pager_text(browser: &Browser) -> Result<String> {
    browser
        .find("nav.pager > span:first-child")
        .await?
        .text()
        .await
}

/// The value of every `name` field in the current URL's query.
pub fn query_values(path: &str, name: &str) -> Vec<String> {
    let query = path.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(query.as_bytes())
        .filter(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .collect()
}

/// Where screenshots go: `target/browser-screenshots/` (or under `CARGO_TARGET_DIR`).
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("browser-screenshots");
    std::fs::create_dir_all(&dir).expect("create the screenshot directory");
    dir
}

/// Saves a screenshot of the current page as `name.png`.
pub async fn screenshot(browser: &Browser, name: &str) -> Result<()> {
    browser
        .screenshot(&screenshot_dir().join(format!("{name}.png")))
        .await
}

/// Fails unless the page's text contains `needle`.
pub async fn expect_text(browser: &Browser, needle: &str) -> Result<()> {
    let text = browser.body_text().await?;
    ensure!(
        text.contains(needle),
        "{:?} is not on {}; the page says:\n{text}",
        needle,
        browser.url().await?
    );
    Ok(())
}

/// A JSON string array as strings.
pub fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
