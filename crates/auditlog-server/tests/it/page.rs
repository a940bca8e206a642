//! The web page over HTTP, without a browser: signing in, who may open which organization,
//! a filtered table and its export agreeing on a value with a comma, a member's own tokens,
//! the password form, an event's inclusion proof, an event's impersonator, changes and
//! outcome, the values redacted from it at ingest, and the retention, legal holds and
//! erasures an administrator manages. (`tests/browser` drives the same pages in Chromium.)

use auditlog_service::access::Actor;
use auditlog_store::{Org, Role};
use serde_json::json;

use crate::{wait_for_export, Backend, Reply, Server};

on_each_backend! {
    the_page_asks_the_service_who_may_see_what =>
        the_page_asks_the_service_who_may_see_what_sqlite,
        the_page_asks_the_service_who_may_see_what_postgres;
    a_filtered_table_and_its_export_select_the_same_events =>
        a_filtered_table_and_its_export_select_the_same_events_sqlite,
        a_filtered_table_and_its_export_select_the_same_events_postgres;
    an_event_s_details_link_its_proof =>
        an_event_s_details_link_its_proof_sqlite,
        an_event_s_details_link_its_proof_postgres;
    the_page_shows_the_real_actor_the_changes_and_the_refusals =>
        the_page_shows_the_real_actor_the_changes_and_the_refusals_sqlite,
        the_page_shows_the_real_actor_the_changes_and_the_refusals_postgres;
    an_event_s_details_say_what_was_redacted_at_ingest =>
        an_event_s_details_say_what_was_redacted_at_ingest_sqlite,
        an_event_s_details_say_what_was_redacted_at_ingest_postgres;
    administrators_set_retention_hold_and_erase_on_the_page =>
        administrators_set_retention_hold_and_erase_on_the_page_sqlite,
        administrators_set_retention_hold_and_erase_on_the_page_postgres;
}

const PASSWORD: &str = "correct horse battery";

/// The value a response sets for a cookie.
fn set_cookie(reply: &Reply, name: &str) -> Option<String> {
    reply
        .headers
        .iter()
        .filter(|(header, _)| header == "set-cookie")
        .filter_map(|(_, value)| value.split(';').next())
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
}

/// The CSRF token a page's forms carry.
fn csrf_of(page: &Reply) -> String {
    let text = page.text();
    let start = text
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + "name=\"csrf\" value=\"".len();
    text[start..start + text[start..].find('"').expect("the end of the token")].to_string()
}

/// A signed-in browser: its session cookie and its forms' CSRF token.
struct Browser<'a> {
    server: &'a Server,
    cookie: String,
    csrf: String,
}

impl<'a> Browser<'a> {
    /// Adds `email` to `org` with `role` and a password, and signs in through the form.
    async fn sign_in(server: &'a Server, org: &Org, email: &str, role: Role) -> Browser<'a> {
        let user = server
            .service
            .add_user(org, email, None, role, &Actor::operator())
            .await
            .expect("add the user");
        server
            .service
            .set_password(&user, PASSWORD)
            .await
            .expect("set the password");
        let form = server.get("/sign-in").send().await.expect(200);
        let login_csrf = set_cookie(&form, "auditlog_login_csrf").expect("a login CSRF cookie");
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("email", email),
                ("password", PASSWORD),
                ("csrf", &login_csrf),
                ("next", "/orgs"),
            ])
            .finish();
        let signed_in = server
            .post("/sign-in")
            .header("Cookie", &format!("auditlog_login_csrf={login_csrf}"))
            .body("application/x-www-form-urlencoded", body)
            .send()
            .await;
        assert_eq!(signed_in.status, 303, "{}", signed_in.text());
        let session = set_cookie(&signed_in, "auditlog_session").expect("a session cookie");
        let cookie = format!("auditlog_session={session}");
        let orgs = server
            .get("/orgs")
            .header("Cookie", &cookie)
            .send()
            .await
            .expect(200);
        let csrf = csrf_of(&orgs);
        Browser {
            server,
            cookie,
            csrf,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.server
            .get(path)
            .header("Cookie", &self.cookie)
            .send()
            .await
    }

    /// Posts a form with this session's CSRF token.
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields.iter().copied())
            .append_pair("csrf", &self.csrf)
            .finish();
        self.server
            .post(path)
            .header("Cookie", &self.cookie)
            .body("application/x-www-form-urlencoded", body)
            .send()
            .await
    }
}

async fn the_page_asks_the_service_who_may_see_what(backend: Backend) {
    let server = Server::start(backend).await;
    let acme = server.org("acme", true).await;
    let _beta = server.org("beta", true).await;
    let dormant = server.org("dormant", false).await;
    let admin = Browser::sign_in(&server, &acme, "admin@acme.test", Role::Admin).await;
    server
        .service
        .add_user(
            &dormant,
            "admin@acme.test",
            None,
            Role::Admin,
            &Actor::operator(),
        )
        .await
        .expect("add to dormant");
    let member = Browser::sign_in(&server, &acme, "member@acme.test", Role::Member).await;
    let _other_admin = server.admin(&acme, "other-admin@acme.test").await;

    let orgs = admin.get("/orgs").await.expect(200);
    assert!(orgs.text().contains("/orgs/acme/audit-logs"));
    assert!(!orgs.text().contains("/orgs/beta/"));
    admin.get("/orgs/acme/audit-logs").await.expect(200);
    admin.get("/orgs/acme/service-accounts").await.expect(200);
    let not_enrolled = admin.get("/orgs/dormant/audit-logs").await.expect(403);
    assert!(not_enrolled.text().contains("early access"));
    // Another organization, or one that does not exist, looks the same: not a member.
    for path in ["/orgs/beta/audit-logs", "/orgs/nowhere/audit-logs"] {
        let reply = admin.get(path).await.expect(404);
        assert!(reply.text().contains("Organization not found"), "{path}");
    }
    // A member may not read the log nor manage service accounts, but has their own tokens.
    let refused = member.get("/orgs/acme/audit-logs").await.expect(403);
    assert!(refused.text().contains("Administrators only"));
    member.get("/orgs/acme/service-accounts").await.expect(403);
    member
        .post("/orgs/acme/service-accounts", &[("name", "sneaky")])
        .await
        .expect(403);
    let created = member
        .post("/orgs/acme/tokens", &[("name", "laptop")])
        .await
        .expect(201);
    assert!(
        created.text().contains("al_token_"),
        "the new token is shown once"
    );
    // Another admin's token is not the member's to revoke.
    let tokens = server
        .service
        .api_tokens(&server.service.granted(&acme).await)
        .await
        .expect("tokens");
    let (mine, theirs): (Vec<_>, Vec<_>) = tokens.into_iter().partition(|t| t.name == "laptop");
    assert_eq!((mine.len(), theirs.len()), (1, 1));
    for token in &theirs {
        member
            .post(&format!("/orgs/acme/tokens/{}/revoke", token.id), &[])
            .await
            .expect(404);
    }
    member
        .post(&format!("/orgs/acme/tokens/{}/revoke", mine[0].id), &[])
        .await
        .expect(303);
    // A form without the session's CSRF token changes nothing.
    let forged = server
        .post("/orgs/acme/tokens")
        .header("Cookie", &member.cookie)
        .body("application/x-www-form-urlencoded", "name=forged&csrf=nope")
        .send()
        .await
        .expect(403);
    assert!(forged.text().contains("expired"));
    // The password form checks the current password in the service.
    member
        .post(
            "/account/password",
            &[
                ("current", "wrong password"),
                ("new", "a new long password"),
            ],
        )
        .await
        .expect(403);
    member
        .post(
            "/account/password",
            &[("current", PASSWORD), ("new", "short")],
        )
        .await
        .expect(422);
    member
        .post(
            "/account/password",
            &[("current", PASSWORD), ("new", "a new long password")],
        )
        .await
        .expect(200);
}

async fn a_filtered_table_and_its_export_select_the_same_events(backend: Backend) {
    let server = Server::start(backend).await;
    let acme = server.org("acme", true).await;
    let ingest = server.ingest_key(Some(&acme)).await;
    let api_admin = server.admin(&acme, "api@acme.test").await;
    // Three actors whose ids a comma would confuse, each with a marker of its own.
    let events: Vec<_> = [
        ("Doe, Jane", "alpha"),
        ("Doe", "bravo"),
        ("Jane", "charlie"),
    ]
    .iter()
    .flat_map(|(actor, marker)| {
        (0..2).map(move |n| {
            json!({
                "action_key": "channel_created",
                "actor_id": actor,
                "target_name": format!("{marker}-{n}"),
            })
        })
    })
    .collect();
    server
        .post("/api/audit-logs/events")
        .bearer(&ingest)
        .json(&json!(events))
        .send()
        .await
        .expect(201);
    let admin = Browser::sign_in(&server, &acme, "admin@acme.test", Role::Admin).await;

    let table = admin
        .get("/orgs/acme/audit-logs?user=Doe%2C+Jane")
        .await
        .expect(200);
    let text = table.text();
    assert!(
        text.contains("alpha-0") && text.contains("alpha-1"),
        "{text}"
    );
    assert!(
        !text.contains("bravo-") && !text.contains("charlie-"),
        "{text}"
    );

    let started = admin
        .post(
            "/orgs/acme/exports",
            &[("user", "Doe, Jane"), ("format", "jsonl")],
        )
        .await
        .expect(303);
    let location = started
        .header("location")
        .expect("the job's page")
        .to_string();
    let job_id = location.rsplit('/').next().expect("a job id").to_string();
    wait_for_export(&server, &api_admin, "acme", &job_id).await;
    admin.get(&location).await.expect(200);
    let download = admin.get(&format!("{location}/download")).await.expect(200);
    assert_eq!(
        download.header("content-type"),
        Some("application/x-ndjson")
    );
    let lines: Vec<serde_json::Value> = download
        .text()
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    // The two events of "Doe, Jane", then the checkpoint and the tree checkpoint.
    let actors: Vec<&str> = lines
        .iter()
        .filter_map(|line| line["actor_id"].as_str())
        .collect();
    assert_eq!(actors, ["Doe, Jane", "Doe, Jane"], "{lines:?}");
    assert_eq!(lines.len(), 4);
}

/// An event's details say in which signed checkpoint it is proven, and the proof downloads as
/// a tlog-proof file whose path leads from the event's leaf to that checkpoint's root; only
/// for an admin of the organization.
async fn an_event_s_details_link_its_proof(backend: Backend) {
    use auditlog_core::merkle::{verify_inclusion, Hash};
    use auditlog_core::note::Checkpoint;
    use base64::Engine;

    let server = Server::start(backend).await;
    let acme = server.org("acme", true).await;
    let key = server.ingest_key(Some(&acme)).await;
    let ids = crate::log::ingest(&server, &key, 300).await;
    let id = ids[123].clone();
    let admin = Browser::sign_in(&server, &acme, "admin@acme.test", Role::Admin).await;
    let details = admin
        .get(&format!("/orgs/acme/audit-logs/{id}"))
        .await
        .expect(200);
    let size = server.head(&acme).await;
    assert!(
        details
            .text()
            .contains(&format!("✓ proven in checkpoint {size}")),
        "{}",
        details.text()
    );
    let link = format!("/orgs/acme/audit-logs/{id}/proof");
    assert!(details.text().contains(&link));
    let file = admin.get(&link).await.expect(200);
    assert!(file
        .header("content-disposition")
        .is_some_and(|d| d.contains(".tlog-proof")));
    let text = file.text();
    let (head, note) = text
        .split_once("\n\n")
        .expect("a path, then the checkpoint");
    let mut lines = head.lines();
    assert_eq!(lines.next(), Some("c2sp.org/tlog-proof@v1"));
    let index: u64 = lines
        .next()
        .and_then(|l| l.strip_prefix("index "))
        .and_then(|n| n.parse().ok())
        .expect("the index line");
    let path: Vec<Hash> = lines
        .map(|l| {
            Hash::from_slice(&base64::engine::general_purpose::STANDARD.decode(l).unwrap()).unwrap()
        })
        .collect();
    let vkey = server.get("/api/log/vkey").send().await.expect(200).text();
    let verifier = auditlog_core::note::NoteVerifier::parse(vkey.trim()).unwrap();
    let (checkpoint, _) = Checkpoint::open(note.as_bytes(), &[verifier]).unwrap();
    assert_eq!(checkpoint.size(), size);
    let event = server
        .service
        .store()
        .get_event(acme.id, id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(index, event.seq - 1);
    let leaf = Hash(auditlog_core::chain::leaf_hash(&event));
    verify_inclusion(&leaf, index, size, &path, &checkpoint.root()).expect("the proof verifies");
    // A member, or another organization's admin, gets no proof.
    let member = Browser::sign_in(&server, &acme, "member@acme.test", Role::Member).await;
    member.get(&link).await.expect(403);
    let beta = server.org("beta", true).await;
    let stranger = Browser::sign_in(&server, &beta, "admin@beta.test", Role::Admin).await;
    stranger.get(&link).await.expect(404);
}

async fn the_page_shows_the_real_actor_the_changes_and_the_refusals(backend: Backend) {
    let server = Server::start(backend).await;
    let acme = server.org("acme", true).await;
    let key = server.ingest_key(Some(&acme)).await;
    server
        .post("/api/audit-logs/events")
        .bearer(&key)
        .json(&json!([{
            "action_key": "organization_user_updated",
            "actor_email": "alice@acme.test",
            "target_email": "bob@acme.test",
            "impersonator": {"email": "support@example.net"},
            "changes": [{"field": "role", "before": "member", "after": "<b>admin</b>"}],
            "outcome": "failure",
            "reason": "the last owner cannot be demoted"
        }]))
        .send()
        .await
        .expect(201);
    // A member opening the log is refused, and that is recorded.
    let member = Browser::sign_in(&server, &acme, "member@acme.test", Role::Member).await;
    member.get("/orgs/acme/audit-logs").await.expect(403);
    let admin = Browser::sign_in(&server, &acme, "admin@acme.test", Role::Admin).await;
    let list = admin.get("/orgs/acme/audit-logs").await.expect(200).text();
    assert!(list.contains("by support@example.net as "), "{list}");
    assert!(list.contains("2 failed or refused"), "{list}");
    assert!(
        list.contains("member@acme.test tried to read the audit log — denied"),
        "{list}"
    );
    // The row of the impersonated event links its details.
    let row = list.find("by support@example.net as ").expect("the row");
    let link = list[..row]
        .rfind("/orgs/acme/audit-logs/")
        .expect("a link to the event")
        + "/orgs/acme/audit-logs/".len();
    let id = &list[link..link + 36];
    let details = admin
        .get(&format!("/orgs/acme/audit-logs/{id}"))
        .await
        .expect(200)
        .text();
    assert!(details.contains("Impersonated by"), "{details}");
    assert!(
        details.contains("the last owner cannot be demoted"),
        "{details}"
    );
    assert!(details.contains("<code>role</code>"), "{details}");
    // Values are escaped like every other field.
    assert!(details.contains("&lt;b&gt;admin&lt;/b&gt;"), "{details}");
    assert!(!details.contains("<b>admin</b>"), "{details}");
}

async fn an_event_s_details_say_what_was_redacted_at_ingest(backend: Backend) {
    let rules = auditlog_core::redact::RedactionRules::parse(&["*token*", "password"])
        .expect("valid rules");
    let server = Server::start_composed(backend, |service| service.with_redaction(rules)).await;
    let acme = server.org("acme", true).await;
    let key = server.ingest_key(Some(&acme)).await;
    let secret = "tok-0d4c7e-secret";
    let ids = server
        .post("/api/audit-logs/events")
        .bearer(&key)
        .json(&json!([
            {"action_key": "token_created", "meta": {"api_token": secret, "name": "ci"}},
            {"action_key": "organization_user_updated",
             "changes": [{"field": "password", "before": secret, "after": secret}]},
            {"action_key": "channel_created", "meta": {"name": "ml-prod"}},
        ]))
        .send()
        .await
        .expect(201)
        .json();
    let admin = Browser::sign_in(&server, &acme, "admin@acme.test", Role::Admin).await;
    let details = |index: usize| {
        let id = ids["ids"][index].as_str().expect("an id").to_string();
        let admin = &admin;
        async move {
            admin
                .get(&format!("/orgs/acme/audit-logs/{id}"))
                .await
                .expect(200)
                .text()
        }
    };
    let token = details(0).await;
    assert!(
        token.contains("Redacted at ingest: meta.api_token<"),
        "{token}"
    );
    assert!(!token.contains(secret), "{token}");
    let change = details(1).await;
    assert!(
        change.contains("Redacted at ingest: changes[0].after, changes[0].before<"),
        "{change}"
    );
    let plain = details(2).await;
    assert!(!plain.contains("Redacted at ingest"), "{plain}");
}

async fn administrators_set_retention_hold_and_erase_on_the_page(backend: Backend) {
    let server = Server::start(backend).await;
    let acme = server.org("acme", true).await;
    let key = server.ingest_key(Some(&acme)).await;
    server
        .post("/api/audit-logs/events")
        .bearer(&key)
        .json(
            &json!([{"action_key": "channel_created", "actor_email": "zoe@acme.test",
                       "actor_name": "Zoe Quartermaine"}]),
        )
        .send()
        .await
        .expect(201);
    let admin = Browser::sign_in(&server, &acme, "admin@acme.test", Role::Admin).await;
    let member = Browser::sign_in(&server, &acme, "member@acme.test", Role::Member).await;

    let page = admin.get("/orgs/acme/retention").await.expect(200).text();
    assert!(
        page.contains("Events are kept until you choose a retention period"),
        "{page}"
    );
    assert_eq!(member.get("/orgs/acme/retention").await.status, 403);
    assert_eq!(
        member
            .post("/orgs/acme/retention", &[("days", "30")])
            .await
            .status,
        403
    );
    // A form without the session's CSRF token changes nothing.
    let forged = server
        .post("/orgs/acme/retention")
        .header("Cookie", &admin.cookie)
        .body("application/x-www-form-urlencoded", "days=1&csrf=forged")
        .send()
        .await;
    assert_eq!(forged.status, 403);
    for bad in ["0", "abc", "99999"] {
        let reply = admin.post("/orgs/acme/retention", &[("days", bad)]).await;
        assert_eq!(reply.status, 422, "days={bad}: {}", reply.text());
    }
    let saved = admin
        .post("/orgs/acme/retention", &[("days", "30")])
        .await
        .expect(200);
    assert!(saved.text().contains("Retention saved."));
    let log = admin.get("/orgs/acme/audit-logs").await.expect(200).text();
    assert!(
        log.contains("Events are kept for 30 days"),
        "the log page says it"
    );

    // A hold, its reason escaped, blocks an erasure until lifted.
    let placed = admin
        .post(
            "/orgs/acme/legal-holds",
            &[("reason", "<b>case 7</b>"), ("subject", "")],
        )
        .await
        .expect(201)
        .text();
    assert!(placed.contains("&lt;b&gt;case 7&lt;/b&gt;") && !placed.contains("<b>case 7"));
    let held = admin
        .post("/orgs/acme/erasures", &[("email", "zoe@acme.test")])
        .await;
    assert_eq!(held.status, 409, "{}", held.text());
    let start = placed.find("/legal-holds/").expect("a lift form") + "/legal-holds/".len();
    let id = &placed[start..start + 36];
    admin
        .post(&format!("/orgs/acme/legal-holds/{id}/lift"), &[])
        .await
        .expect(200);
    let erased = admin
        .post("/orgs/acme/erasures", &[("email", "zoe@acme.test")])
        .await
        .expect(200)
        .text();
    assert!(erased.contains("Erased 2 fields from 1 events"), "{erased}");
    let refused = admin.post("/orgs/acme/erasures", &[("email", "")]).await;
    assert_eq!(refused.status, 422);
    let log = admin.get("/orgs/acme/audit-logs").await.expect(200).text();
    assert!(
        !log.contains("Quartermaine"),
        "the erased name is gone from the page"
    );
}
