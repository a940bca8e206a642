//! The table's filters pane and its pager.

use std::collections::HashSet;

use anyhow::{ensure, Context, Result};
use auditlog_core::query::{Filter, Order, Start};
use auditlog_core::Timestamp;
use auditlog_service::grant::Operator;
use serde_json::json;

use crate::fixture::{ADMIN_EMAIL, ORG};
use crate::webdriver::Browser;
use crate::{pager_text, query_values, rows, screenshot, Harness, Row};

/// `YYYY-MM-DD` of a day since the epoch.
fn date(day: i64) -> String {
    Timestamp::start_of_day(day).to_string()[..10].to_string()
}

/// Types a date into an `<input type=date>` the way a person does (month, day, year in
/// Chromium's en-US field), and checks the field took it.
async fn type_date(browser: &Browser, selector: &str, iso: &str) -> Result<()> {
    let input = browser.find(selector).await?;
    input.click().await?;
    let (year, rest) = iso.split_at(4);
    let (month, day) = (&rest[1..3], &rest[4..6]);
    input.send_keys(&format!("{month}{day}{year}")).await?;
    let value = input.prop("value").await?;
    ensure!(
        value == json!(iso),
        "{selector} holds {value} after typing {iso}"
    );
    Ok(())
}

/// Ticks two actions, one user and a date range; every row then matches, the URL holds the
/// filter and gives the same rows when loaded afresh; Clear resets everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters() -> Result<()> {
    let Some(h) = Harness::start().await? else {
        return Ok(());
    };
    let browser = h.signed_in(ADMIN_EMAIL).await?;
    browser
        .goto(&h.app.url(&format!("/orgs/{ORG}/audit-logs")))
        .await?;
    let details = browser.find("details.filters").await?;
    ensure!(
        details.prop("open").await? == json!(false),
        "the pane starts closed"
    );
    browser
        .find("details.filters > summary")
        .await?
        .click()
        .await?;
    ensure!(details.prop("open").await? == json!(true), "the pane opens");

    let actions = ["channel_created", "policy_created"];
    let user = "bob@acme.example";
    let today = Timestamp::now().day();
    let (from_day, to_day) = (today - 15, today - 3);
    for action in actions {
        browser
            .find(&format!("input[name=action][value={action}]"))
            .await?
            .click()
            .await?;
    }
    browser
        .find(&format!("input[name=user][value='{user}']"))
        .await?
        .click()
        .await?;
    type_date(&browser, "input#from", &date(from_day)).await?;
    type_date(&browser, "input#to", &date(to_day)).await?;
    screenshot(&browser, "filters-open").await?;
    browser
        .find("details.filters button.primary[type=submit]")
        .await?
        .click()
        .await?;
    let path = browser
        .wait_for_path("a filtered URL", |p| p.contains("action="))
        .await?;

    // The URL carries the whole filter.
    let mut in_url = query_values(&path, "action");
    in_url.sort();
    ensure!(in_url == actions, "actions in the URL: {in_url:?}");
    ensure!(query_values(&path, "user") == [user], "user in {path}");
    ensure!(
        query_values(&path, "from") == [date(from_day)],
        "from in {path}"
    );
    ensure!(query_values(&path, "to") == [date(to_day)], "to in {path}");

    // Exactly the seeded events that match, newest first.
    let expected: Vec<String> = {
        let mut matching: Vec<_> = h
            .app
            .events
            .iter()
            .filter(|e| {
                actions.contains(&e.body.action_key.as_str())
                    && e.body.actor_email.as_deref() == Some(user)
                    && (from_day..=to_day).contains(&e.body.occurred_at.day())
            })
            .collect();
        matching.sort_by_key(|e| std::cmp::Reverse(e.body.occurred_at));
        matching
            .iter()
            .map(|e| format!("/orgs/{ORG}/audit-logs/{}", e.id))
            .collect()
    };
    ensure!(
        expected.len() >= 3,
        "the seed gives this filter {} events",
        expected.len()
    );
    let shown = rows(&browser).await?;
    for row in &shown {
        ensure!(
            ["Channel Created", "Policy Created"].contains(&row.action.as_str()),
            "a row of another action: {row:?}"
        );
        ensure!(row.user == user, "a row of another user: {row:?}");
        let day = row.at().day();
        ensure!(
            (from_day..=to_day).contains(&day),
            "a row outside the dates: {row:?}"
        );
    }
    let hrefs: Vec<String> = shown.iter().map(|r| r.href.clone()).collect();
    ensure!(hrefs == expected, "rows {hrefs:?}, expected {expected:?}");
    let n = expected.len();
    ensure!(pager_text(&browser).await? == format!("1–{n} of {n}"));
    // The pane stays open, showing what is chosen.
    ensure!(browser.find("details.filters").await?.prop("open").await? == json!(true));
    let summary = browser
        .find("details.filters > summary")
        .await?
        .text()
        .await?;
    ensure!(summary.contains("4 active"), "summary says {summary:?}");
    for action in actions {
        let checkbox = browser
            .find(&format!("input[name=action][value={action}]"))
            .await?;
        ensure!(
            checkbox.prop("checked").await? == json!(true),
            "{action} stays ticked"
        );
    }

    // Bookmarkable: the same URL loaded afresh gives the same rows.
    let url = browser.url().await?;
    let fresh = h.browser().await?;
    crate::sign_in_with_form(&fresh, &h.app, ADMIN_EMAIL, crate::fixture::PASSWORD).await?;
    fresh.wait_for_path("/orgs", |p| p == "/orgs").await?;
    fresh.goto(&url).await?;
    ensure!(
        rows(&fresh).await? == shown,
        "the bookmarked URL shows other rows"
    );
    fresh.close().await?;

    // Clear: no filter in the URL, nothing ticked, every event listed again.
    browser
        .find("//details[contains(@class,'filters')]//a[normalize-space()='Clear']")
        .await?
        .click()
        .await?;
    let path = browser
        .wait_for_path("an unfiltered URL", |p| !p.contains("action="))
        .await?;
    ensure!(
        ["user", "from", "to", "q"]
            .iter()
            .all(|k| query_values(&path, k).is_empty()),
        "still filtered: {path}"
    );
    ensure!(browser.find("details.filters").await?.prop("open").await? == json!(false));
    let ticked = browser
        .execute(
            "return document.querySelectorAll('details.filters input:checked').length",
            vec![],
        )
        .await?;
    ensure!(ticked == json!(0), "{ticked} boxes still ticked");
    let total = h.app.total().await?;
    ensure!(rows(&browser).await?.len() == 50);
    ensure!(pager_text(&browser).await? == format!("1–50 of {total}"));
    browser.close().await
}

/// The ids, as details links, of all the organization's events, newest first.
async fn all_hrefs(h: &Harness) -> Result<Vec<String>> {
    // The test reads as the operator would: the service grants reads only to someone.
    let org = h
        .app
        .service
        .operator_org(&Operator::at_the_command_line(), ORG)
        .await?
        .context("the organization exists")?;
    let page = h
        .app
        .service
        .page(
            &org,
            Filter::default(),
            Order::NewestFirst,
            1000,
            Start::Offset(0),
        )
        .await?;
    Ok(page
        .events
        .iter()
        .map(|e| format!("/orgs/{ORG}/audit-logs/{}", e.id))
        .collect())
}

fn hrefs(rows: &[Row]) -> Vec<String> {
    rows.iter().map(|r| r.href.clone()).collect()
}

async fn pager_click(browser: &Browser, label: &str) -> Result<()> {
    let before = browser.url().await?;
    browser
        .find(&format!(
            "//nav[contains(@class,'pager')]//a[contains(normalize-space(), '{label}')]"
        ))
        .await?
        .click()
        .await?;
    browser
        .wait_for_path("another page", |p| !before.ends_with(p))
        .await
        .with_context(|| format!("after {label}"))?;
    Ok(())
}

/// Whether a pager control is shown disabled.
async fn disabled(browser: &Browser, label: &str) -> Result<bool> {
    Ok(!browser
        .find_all(&format!(
            "//nav[contains(@class,'pager')]//span[@aria-disabled='true'][contains(normalize-space(), '{label}')]"
        ))
        .await?
        .is_empty())
}

/// Ten per page: Next, Next, Previous, First, Last show the right rows and counts, and no
/// row repeats; then 25 per page through the select.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging() -> Result<()> {
    let Some(h) = Harness::start().await? else {
        return Ok(());
    };
    let browser = h.signed_in(ADMIN_EMAIL).await?;
    browser
        .goto(&h.app.url(&format!("/orgs/{ORG}/audit-logs")))
        .await?;
    let all = all_hrefs(&h).await?;
    let n = all.len();
    ensure!(
        n as u64 == h.app.total().await?,
        "{n} events listed by the service"
    );
    ensure!(n > 40);

    browser
        .find("select#per_page option[value='10']")
        .await?
        .click()
        .await?;
    browser
        .find("//nav[contains(@class,'pager')]//button[normalize-space()='Show']")
        .await?
        .click()
        .await?;
    browser
        .wait_for_path("10 per page", |p| query_values(p, "per_page") == ["10"])
        .await?;

    let mut seen: HashSet<String> = HashSet::new();
    let mut check = |page: Vec<Row>, start: usize, pager: String, fresh: bool| -> Result<()> {
        let end = (start + 10).min(n);
        ensure!(
            pager == format!("{}–{} of {n}", start + 1, end),
            "pager says {pager:?} for rows {}–{end}",
            start + 1
        );
        ensure!(
            hrefs(&page) == all[start..end],
            "rows {}–{end} are not the expected ones",
            start + 1
        );
        ensure!(page.windows(2).all(|w| w[0].at() >= w[1].at()));
        if fresh {
            for row in &page {
                ensure!(seen.insert(row.href.clone()), "row repeats: {row:?}");
            }
        }
        Ok(())
    };

    let first = rows(&browser).await?;
    check(first.clone(), 0, pager_text(&browser).await?, true)?;
    ensure!(disabled(&browser, "First").await? && disabled(&browser, "Previous").await?);

    pager_click(&browser, "Next").await?;
    let second = rows(&browser).await?;
    check(second.clone(), 10, pager_text(&browser).await?, true)?;
    ensure!(second != first);

    pager_click(&browser, "Next").await?;
    let third = rows(&browser).await?;
    check(third.clone(), 20, pager_text(&browser).await?, true)?;
    ensure!(third != second);
    screenshot(&browser, "paging-third-page").await?;

    pager_click(&browser, "Previous").await?;
    ensure!(
        rows(&browser).await? == second,
        "Previous shows the second page again"
    );
    check(second.clone(), 10, pager_text(&browser).await?, false)?;

    pager_click(&browser, "First").await?;
    ensure!(
        rows(&browser).await? == first,
        "First shows the first page again"
    );
    check(first.clone(), 0, pager_text(&browser).await?, false)?;

    pager_click(&browser, "Last").await?;
    let last = rows(&browser).await?;
    check(last, n - 10, pager_text(&browser).await?, true)?;
    ensure!(disabled(&browser, "Next").await? && disabled(&browser, "Last").await?);
    let path = browser.path().await?;
    ensure!(
        query_values(&path, "per_page") == ["10"],
        "Last keeps 10 per page: {path}"
    );

    // 25 per page, through the select and Show.
    browser
        .find("select#per_page option[value='25']")
        .await?
        .click()
        .await?;
    browser
        .find("//nav[contains(@class,'pager')]//button[normalize-space()='Show']")
        .await?
        .click()
        .await?;
    browser
        .wait_for_path("25 per page", |p| query_values(p, "per_page") == ["25"])
        .await?;
    let page = rows(&browser).await?;
    ensure!(
        hrefs(&page) == all[..25],
        "25 per page starts at the newest"
    );
    ensure!(pager_text(&browser).await? == format!("1–25 of {n}"));
    let selected = browser.find("select#per_page").await?.prop("value").await?;
    ensure!(selected == json!("25"), "the select shows {selected}");
    // The last of 25 per page holds the remainder.
    pager_click(&browser, "Last").await?;
    let last = rows(&browser).await?;
    ensure!(hrefs(&last) == all[n - 25..], "the last page of 25");
    browser.close().await
}
