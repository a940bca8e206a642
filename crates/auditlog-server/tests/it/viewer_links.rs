//! `POST /api/viewer-links`: who may mint a one-time sign-in link for which organization,
//! what a bad request is told, and that a minted link signs its user in once.

use serde_json::json;

use crate::{Backend, Server};

on_each_backend! {
    only_an_ingest_key_of_the_organization_mints_links =>
        only_an_ingest_key_of_the_organization_mints_links_sqlite,
        only_an_ingest_key_of_the_organization_mints_links_postgres;
    a_minted_link_signs_in_once =>
        a_minted_link_signs_in_once_sqlite,
        a_minted_link_signs_in_once_postgres;
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
