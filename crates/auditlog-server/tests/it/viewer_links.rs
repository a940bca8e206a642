//! `POST /api/viewer-links`: who may mint a one-time sign-in link for which organization,
//! what a bad request is told, and that a minted link signs its user in once.

use serde_json::json;

use auditlog_service::access::{AccessError, Actor};
use auditlog_service::IngestError;
use auditlog_store::Role;

use crate::{Backend, Server};

/// Emails that must never become a user: header injection, a NUL, a space, no domain.
const HOSTILE_EMAILS: [&str; 5] = [
    "mallory@acme.test\r\nX-Forged: 1",
    "mallory@acme.test\u{0}",
    "mallory @acme.test",
    "mallory@",
    "mallory@acme.test@evil.test",
];

on_each_backend! {
    only_an_ingest_key_of_the_organization_mints_links =>
        only_an_ingest_key_of_the_organization_mints_links_sqlite,
        only_an_ingest_key_of_the_organization_mints_links_postgres;
    a_minted_link_signs_in_once =>
        a_minted_link_signs_in_once_sqlite,
        a_minted_link_signs_in_once_postgres;
    a_hostile_email_or_name_changes_nothing_and_records_nothing =>
        a_hostile_email_or_name_changes_nothing_and_records_nothing_sqlite,
        a_hostile_email_or_name_changes_nothing_and_records_nothing_postgres;
}

async fn only_an_ingest_key_of_the_organization_mints_links(backend: Backend) {
    let server = Server::start(backend).await;
    let acme = server.org("acme", true).await;
    let beta = server.org("beta", true).await;
    let admin = server.admin(&acme, "admin@acme.test").await;
    let acme_key = server.ingest_key(Some(&acme)).await;
    let beta_key = server.ingest_key(Some(&beta)).await;
    let platform_key = server.ingest_key(None).await;
    let mint = |token: &str, org: &str, body: serde_json::Value| {
        server
            .post("/api/viewer-links")
            .bearer(token)
            .org(org)
            .json(&body)
    };
    let new_admin = json!({"email": "new@acme.test", "role": "admin"});

    for key in [&acme_key, &platform_key] {
        let link = mint(key, "acme", new_admin.clone())
            .send()
            .await
            .expect(200)
            .json();
        let url = link["url"].as_str().expect("a url");
        assert!(url.contains("/sign-in/link?token="), "{url}");
        assert!(link["expires_at"].is_string(), "{link}");
    }
    // Not an ingest key; a key of another organization, whether the named one exists or not.
    mint(&admin, "acme", new_admin.clone())
        .send()
        .await
        .expect(403);
    mint(&beta_key, "acme", new_admin.clone())
        .send()
        .await
        .expect(403);
    mint(&beta_key, "nowhere", new_admin.clone())
        .send()
        .await
        .expect(403);
    // A platform-wide key may learn that an organization does not exist.
    mint(&platform_key, "nowhere", new_admin.clone())
        .send()
        .await
        .expect(404);
    // Without a role, only a member gets a link.
    mint(&acme_key, "acme", json!({"email": "stranger@acme.test"}))
        .send()
        .await
        .expect(403);
    mint(&acme_key, "acme", json!({"email": "admin@acme.test"}))
        .send()
        .await
        .expect(200);
    // Bad requests name the field.
    for (body, field) in [
        (json!({}), "email"),
        (json!({"email": "not-an-address"}), "email"),
        (json!({"email": "a@acme.test", "role": "owner"}), "role"),
    ] {
        let reply = mint(&acme_key, "acme", body.clone())
            .send()
            .await
            .expect(422);
        assert_eq!(
            reply.json()["detail"][0]["loc"],
            json!(["body", field]),
            "{body}"
        );
    }
    let reply = mint(&acme_key, "acme", json!({"email": 5}))
        .send()
        .await
        .expect(422);
    assert_eq!(reply.json()["detail"][0]["loc"], json!(["body"]));
}

async fn a_minted_link_signs_in_once(backend: Backend) {
    let server = Server::start(backend).await;
    let acme = server.org("acme", true).await;
    let key = server.ingest_key(Some(&acme)).await;
    let link = server
        .post("/api/viewer-links")
        .bearer(&key)
        .json(&json!({"email": "viewer@acme.test", "role": "admin", "org": "acme"}))
        .send()
        .await
        .expect(200)
        .json();
    let url = link["url"].as_str().expect("a url");
    let path = &url[url.find("/sign-in/link").expect("the link's path")..];
    let first = server.get(path).send().await.expect(200);
    assert!(
        first
            .header("set-cookie")
            .is_some_and(|c| c.starts_with("auditlog_session=")),
        "the link sets a session cookie"
    );
    server.get(path).send().await.expect(401);
}

/// A hostile email or name is refused with 422 naming the field, on every way a user, service
/// account or token comes to exist, and nothing is stored: no user, no membership, no
/// account, no token, and no event.
async fn a_hostile_email_or_name_changes_nothing_and_records_nothing(backend: Backend) {
    let server = Server::start(backend).await;
    let acme = server.org("acme", true).await;
    let key = server.ingest_key(Some(&acme)).await;
    let head = server.head(&acme).await;
    for email in HOSTILE_EMAILS {
        for role in [Some("admin"), None] {
            let mut body = json!({ "email": email });
            if let Some(role) = role {
                body["role"] = json!(role);
            }
            let reply = server
                .post("/api/viewer-links")
                .bearer(&key)
                .org("acme")
                .json(&body)
                .send()
                .await
                .expect(422);
            assert_eq!(
                reply.json()["detail"][0]["loc"],
                json!(["body", "email"]),
                "{email:?}"
            );
        }
        let found = server.service.store().find_user(email).await.unwrap();
        assert!(found.is_none(), "{email:?} became a user: {found:?}");
        // The service call behind the page and the command line refuses it alike.
        let refused = server
            .service
            .add_user(&acme, email, None, Role::Admin, &Actor::operator())
            .await;
        assert!(
            matches!(&refused, Err(IngestError::Refused(AccessError::Invalid(e))) if e.field == "email"),
            "{email:?}: {refused:?}"
        );
    }
    let members = server.service.store().members(acme.id).await.unwrap();
    assert!(members.is_empty(), "no membership was stored: {members:?}");

    let granted = server.service.granted(&acme).await;
    let operator = Actor::operator();
    for name in ["evil\r\nname", "", &"n".repeat(257)] {
        let account = server
            .service
            .create_service_account(&granted, name, &operator)
            .await;
        assert!(
            matches!(&account, Err(IngestError::Refused(AccessError::Invalid(e))) if e.field == "name"),
            "service account {name:?}: {account:?}"
        );
        let admin = server
            .service
            .add_user(&acme, "admin@acme.test", None, Role::Admin, &operator)
            .await
            .unwrap();
        let token = server
            .service
            .create_api_token(&acme, &admin, name, None, &operator)
            .await;
        assert!(
            matches!(&token, Err(IngestError::Refused(AccessError::Invalid(e))) if e.field == "name"),
            "token {name:?}: {token:?}"
        );
    }
    let accounts = server
        .service
        .store()
        .service_accounts(acme.id)
        .await
        .unwrap();
    assert!(
        accounts.is_empty(),
        "no service account was stored: {accounts:?}"
    );
    // Only the one valid change above happened, with its one record.
    assert_eq!(
        server.head(&acme).await,
        head + 1,
        "only admin@acme.test's addition is in the log"
    );
}
