//! Markup in event data and in URLs is shown as text, never run: an event carrying script in
//! every string field, viewed in the table, the filters pane and its details, and a search and
//! a sign-in `next` carrying script.
//!
//! The page's Content-Security-Policy would block inline script even if it were injected, so
//! besides `window.__xss` staying undefined the tests check that no element or attribute was
//! injected into the DOM and that the payloads appear literally as text.

use anyhow::{ensure, Context, Result};
use auditlog_core::{NewEvent, Timestamp};
use serde_json::{json, Value};

use crate::fixture::{ADMIN_EMAIL, ORG};
use crate::webdriver::Browser;
use crate::{screenshot, Harness};

const SCRIPT: &str = "<script>window.__xss=1</script>";
const ATTRIBUTE: &str = "\"onmouseover=\"window.__xss=2";
const IMAGE: &str = "<img src=x onerror=window.__xss=3>";

/// All three payloads in one string (96 characters: within every field's limit).
fn payload() -> String {
    format!("{SCRIPT} {ATTRIBUTE} {IMAGE}")
}

/// An email address that is still well-formed (no spaces, one `@`) yet full of markup.
fn payload_email() -> String {
    format!("{SCRIPT}{ATTRIBUTE}<img/src=x/onerror=window.__xss=3>@e.com")
}

fn payload_meta() -> Value {
    json!({
        SCRIPT: payload(),
        ATTRIBUTE: [payload(), { IMAGE: payload() }],
        IMAGE: { "nested": payload() },
    })
}

fn hostile_event() -> NewEvent {
    NewEvent {
        action_key: "channel_created".into(),
        actor_id: Some(payload()),
        actor_email: Some(payload_email()),
        actor_name: Some(payload()),
        target_id: Some(payload()),
        target_email: Some(payload_email()),
        target_name: Some(payload()),
        target_type: Some(payload()),
        service_name: Some(payload()),
        ip_address: Some("192.0.2.66".into()),
        user_agent: Some(payload()),
        request_id: Some(payload()),
        meta: Some(payload_meta()),
        occurred_at: Some(Timestamp::now().plus_millis(-600_000).to_string()),
        ..NewEvent::default()
    }
}

/// Fails if any script ran or any element or handler was injected.
async fn assert_inert(browser: &Browser, what: &str) -> Result<()> {
    let found = browser
        .execute(
            r#"return {
                xss: typeof window.__xss,
                injected: document.querySelectorAll("img, script:not([src]), [onmouseover], [onerror], [onload]").length
            };"#,
            vec![],
        )
        .await?;
    ensure!(
        found == json!({ "xss": "undefined", "injected": 0 }),
        "{what}: {found}"
    );
    Ok(())
}

/// Fails unless every payload appears literally in the text of `selector`.
async fn assert_literal(browser: &Browser, selector: &str, what: &str) -> Result<()> {
    let text = browser.find(selector).await?.content().await?;
    for needle in [SCRIPT, ATTRIBUTE, IMAGE] {
        ensure!(
            text.contains(needle),
            "{what}: {needle:?} is not shown as text in {text:?}"
        );
    }
    Ok(())
}

/// An event with markup in every string field: the table, the filters pane, the rows under the
/// mouse and the details page all show it as text and run nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_fields_stay_text() -> Result<()> {
    let Some(h) = Harness::start().await? else {
        return Ok(());
    };
    let stored = h
        .app
        .service
        .ingest(Some(&h.app.org), vec![hostile_event()])
        .await?
        .pop()
        .context("ingested")?;
    let browser = h.signed_in(ADMIN_EMAIL).await?;
    browser
        .goto(&h.app.url(&format!("/orgs/{ORG}/audit-logs")))
        .await?;
    browser
        .find("details.filters > summary")
        .await?
        .click()
        .await?;

    let row = browser
        .find(&format!(
            "//table[contains(@class,'events')]//tr[.//a[contains(@href,'{}')]]",
            stored.id
        ))
        .await
        .context("the hostile event is listed")?;
    for cell in row.find_all("td").await? {
        cell.hover().await?;
    }
    for other in browser.find_all("table.events tbody tr").await? {
        other.hover().await?;
    }
    assert_inert(&browser, "the table").await?;
    let cells: Vec<String> = {
        let mut out = Vec::new();
        for cell in row.find_all("td").await? {
            out.push(cell.content().await?);
        }
        out
    };
    ensure!(
        cells[2].trim() == payload_email(),
        "User cell {:?}",
        cells[2]
    );
    ensure!(cells[3].trim() == payload(), "Target cell {:?}", cells[3]);
    assert_literal(&browser, "table.events", "the table").await?;
    // The filters pane lists the actor by its (hostile) email.
    let facet = browser
        .execute(
            "return Array.from(document.querySelectorAll('input[name=user]')).map(function (i) { return i.value; })",
            vec![],
        )
        .await?;
    ensure!(
        crate::strings(&facet).contains(&payload_email()),
        "the user facet holds {facet}"
    );
    browser
        .execute(
            "arguments[0].scrollIntoView({ block: 'center' })",
            vec![row.arg()],
        )
        .await?;
    screenshot(&browser, "xss-table").await?;
    // Long values do not widen the page: only the table scrolls sideways.
    let wide = browser
        .execute(
            r#"var width = document.documentElement.clientWidth;
               return Array.from(document.querySelectorAll("body *")).filter(function (el) {
                   return el.getBoundingClientRect().right > width + 1 && !el.closest(".table-wrap");
               }).map(function (el) { return el.tagName + "." + el.className; });"#,
            vec![],
        )
        .await?;
    ensure!(wide == json!([]), "wider than the window: {wide}");

    browser
        .goto(&h.app.url(&format!("/orgs/{ORG}/audit-logs/{}", stored.id)))
        .await?;
    for dd in browser.find_all("dl.details dd").await? {
        dd.hover().await?;
    }
    assert_inert(&browser, "the details page").await?;
    assert_literal(&browser, "dl.details", "the details").await?;
    let details = browser.find("dl.details").await?.content().await?;
    ensure!(details.contains(&payload_email()), "the emails are shown");
    let meta: Value = serde_json::from_str(&browser.find("pre.meta").await?.content().await?)
        .context("the metadata is shown as JSON")?;
    ensure!(meta == payload_meta(), "metadata {meta}");
    browser.close().await
}

/// Markup in the search box, the dates and sign-in's `next` is echoed only as values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_parameters_stay_text() -> Result<()> {
    let Some(h) = Harness::start().await? else {
        return Ok(());
    };
    let encode =
        |text: &str| -> String { form_urlencoded::byte_serialize(text.as_bytes()).collect() };
    let hostile = payload();

    let browser = h.browser().await?;
    let next = format!("/{ATTRIBUTE}>{SCRIPT}");
    browser
        .goto(&h.app.url(&format!("/sign-in?next={}", encode(&next))))
        .await?;
    assert_inert(&browser, "the sign-in form").await?;
    let kept = browser
        .find("input[name=next]")
        .await?
        .prop("value")
        .await?;
    ensure!(kept == json!(next), "next is kept as {kept}");

    h.sign_in_as(&browser, ADMIN_EMAIL).await?;
    browser
        .goto(&h.app.url(&format!(
            "/orgs/{ORG}/audit-logs?q={q}&from={q}&to={q}&action={q}&user={q}",
            q = encode(&hostile)
        )))
        .await?;
    for row in browser
        .find_all("table.events tbody tr, nav.pager a")
        .await?
    {
        row.hover().await?;
    }
    assert_inert(&browser, "a hostile query").await?;
    let echoed = browser.find("input#text").await?.prop("value").await?;
    ensure!(echoed == json!(hostile), "the search box holds {echoed}");
    browser.close().await
}
