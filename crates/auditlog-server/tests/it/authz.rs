//! Who may do what (docs/design.md, "Tenancy and access"): every endpoint against every
//! kind of credential, as one table, then tenancy across organizations: enrollment,
//! credentials bound to one organization naming another, and ingest keys writing where they
//! may not.

use auditlog_core::Timestamp;
use auditlog_service::access::Actor;
use auditlog_store::Role;
use serde_json::{json, Value};

use crate::{wait_for_export, Backend, Reply, Server};

/// How many events `org` holds past seq `from` that are not records of refused reads
/// (`audit_log_access_denied`): what the requests tested wrote.
async fn writes_besides_refusals(server: &Server, org: &auditlog_store::Org, from: u64) -> u64 {
    let events = server
        .service
        .store()
        .events_by_seq(org.id, from, 100_000)
        .await
        .expect("events by seq");
    events
        .iter()
        .filter(|e| e.body.action_key != "audit_log_access_denied")
        .count() as u64
}

on_each_backend! {
    authorization_matrix => authorization_matrix_sqlite, authorization_matrix_postgres;
    an_unenrolled_org_is_refused_as_early_access =>
        an_unenrolled_org_is_refused_as_early_access_sqlite,
        an_unenrolled_org_is_refused_as_early_access_postgres;
    a_credential_bound_to_one_org_never_reads_another =>
        a_credential_bound_to_one_org_never_reads_another_sqlite,
        a_credential_bound_to_one_org_never_reads_another_postgres;
    an_org_ingest_key_writes_nowhere_else =>
        an_org_ingest_key_writes_nowhere_else_sqlite,
        an_org_ingest_key_writes_nowhere_else_postgres;
    a_platform_ingest_key_writes_to_several_orgs_in_one_batch =>
        a_platform_ingest_key_writes_to_several_orgs_in_one_batch_sqlite,
        a_platform_ingest_key_writes_to_several_orgs_in_one_batch_postgres;
    an_unsupported_api_version_is_400 =>
        an_unsupported_api_version_is_400_sqlite,
        an_unsupported_api_version_is_400_postgres;
    the_public_key_and_health_need_no_token =>
        the_public_key_and_health_need_no_token_sqlite,
        the_public_key_and_health_need_no_token_postgres;
}

/// What an endpoint is, for the expectations.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// Reads or exports the organization's log: admins and its service accounts only.
    Read,
    /// The deployment's catalog: any valid credential (ingest clients are pointed to it by
    /// the unknown-action error).
    Catalog,
    /// Writes events: ingest keys only.
    Ingest,
}

/// What a credential is, for the expectations.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    /// Missing, malformed, unknown, expired or revoked: 401.
    Nobody,
    /// Valid, but without any right on the organization's log.
    Outsider,
    /// An ingest key that may write to the organization.
    Ingester,
    /// An administrator or one of the organization's service accounts.
    Reader,
}

fn expected(kind: Kind, who: Who) -> u16 {
    match (who, kind) {
        (Who::Nobody, _) => 401,
        (_, Kind::Catalog) => 200,
        (Who::Reader, Kind::Read) => 200,
        (Who::Ingester, Kind::Ingest) => 201,
        _ => 403,
    }
}

struct Endpoint {
    name: &'static str,
    method: &'static str,
    path: String,
    body: Option<Value>,
    kind: Kind,
}

struct Credential {
    name: &'static str,
    authorization: Option<String>,
    who: Who,
}

/// Two enrolled organizations, `acme` (the one under test) and `beta`.
struct World {
    server: Server,
    acme: auditlog_store::Org,
    beta: auditlog_store::Org,
}

impl World {
    async fn new(backend: Backend) -> World {
        let server = Server::start(backend).await;
        let acme = server.org("acme", true).await;
        let beta = server.org("beta", true).await;
        World { server, acme, beta }
    }
}

fn event(marker: &str) -> Value {
    json!({
        "action_key": "channel_created",
        "actor_email": "alice@example.com",
        "target_name": marker,
    })
}

async fn authorization_matrix(backend: Backend) {
    let World { server, acme, beta } = World::new(backend).await;
    let admin = server.admin(&acme, "admin@acme.test").await;
    let member = server
        .user_token(&acme, "member@acme.test", Role::Member)
        .await;
    let other_admin = server.admin(&beta, "admin@beta.test").await;
    let own_account = server.service_account_token(&acme, "reader").await;
    let other_account = server.service_account_token(&beta, "reader").await;
    let ingest = server.ingest_key(Some(&acme)).await;
    let platform_ingest = server.ingest_key(None).await;
    let expired = server
        .user_token_expiring(
            &acme,
            "late@acme.test",
            Role::Admin,
            Some(Timestamp::now().plus_millis(-60_000)),
        )
        .await;
    let revoked = {
        let user = server
            .service
            .add_user(
                &acme,
                "gone@acme.test",
                None,
                Role::Admin,
                &Actor::operator(),
            )
            .await
            .unwrap();
        let (credential, token) = server
            .service
            .create_api_token(&acme, &user, "t", None, &Actor::operator())
            .await
            .unwrap();
        server
            .service
            .revoke_api_token(&acme, credential.id, &Actor::operator())
            .await
            .unwrap()
            .expect("the token exists");
        token
    };

    // Something to read: an event and a finished export.
    let stored = server
        .post("/api/audit-logs/events")
        .bearer(&ingest)
        .json(&event("matrix"))
        .send()
        .await
        .expect(201)
        .json();
    let event_id = stored["ids"][0].as_str().unwrap().to_string();
    let job = server
        .post("/api/audit-logs/export")
        .bearer(&admin)
        .org("acme")
        .json(&json!({}))
        .send()
        .await
        .expect(200)
        .json();
    let job_id = job["id"].as_str().unwrap().to_string();
    wait_for_export(&server, &admin, "acme", &job_id).await;

    let endpoints = [
        (
            "list",
            "GET",
            "/api/audit-logs".to_string(),
            None,
            Kind::Read,
        ),
        (
            "get",
            "GET",
            format!("/api/audit-logs/{event_id}"),
            None,
            Kind::Read,
        ),
        (
            "facets",
            "GET",
            "/api/audit-logs/facets".to_string(),
            None,
            Kind::Read,
        ),
        (
            "actions",
            "GET",
            "/api/audit-logs/actions".to_string(),
            None,
            Kind::Catalog,
        ),
        (
            "rejections",
            "GET",
            "/api/audit-logs/rejections".to_string(),
            None,
            Kind::Read,
        ),
        (
            "checkpoint",
            "GET",
            "/api/audit-logs/checkpoint".to_string(),
            None,
            Kind::Read,
        ),
        (
            "export create",
            "POST",
            "/api/audit-logs/export".to_string(),
            Some(json!({})),
            Kind::Read,
        ),
        (
            "export status",
            "GET",
            format!("/api/audit-logs/export/{job_id}"),
            None,
            Kind::Read,
        ),
        (
            "export download",
            "GET",
            format!("/api/audit-logs/export/{job_id}/download"),
            None,
            Kind::Read,
        ),
        (
            "ingest",
            "POST",
            "/api/audit-logs/events".to_string(),
            Some(event("matrix")),
            Kind::Ingest,
        ),
    ]
    .map(|(name, method, path, body, kind)| Endpoint {
        name,
        method,
        path,
        body,
        kind,
    });
    let bearer = |token: &str| Some(format!("Bearer {token}"));
    let credentials = [
        ("no token", None, Who::Nobody),
        (
            "malformed (Basic)",
            Some("Basic dXNlcjpwYXNz".to_string()),
            Who::Nobody,
        ),
        ("malformed (no scheme)", Some(admin.clone()), Who::Nobody),
        (
            "malformed (Bearer alone)",
            Some("Bearer".to_string()),
            Who::Nobody,
        ),
        ("unknown token", bearer("al_token_nosuchtoken"), Who::Nobody),
        ("expired token", bearer(&expired), Who::Nobody),
        ("revoked token", bearer(&revoked), Who::Nobody),
        ("member of the org", bearer(&member), Who::Outsider),
        ("admin of another org", bearer(&other_admin), Who::Outsider),
        (
            "service account of another org",
            bearer(&other_account),
            Who::Outsider,
        ),
        ("ingest key of the org", bearer(&ingest), Who::Ingester),
        (
            "platform ingest key",
            bearer(&platform_ingest),
            Who::Ingester,
        ),
        ("admin", bearer(&admin), Who::Reader),
        ("own service account", bearer(&own_account), Who::Reader),
    ]
    .map(|(name, authorization, who)| Credential {
        name,
        authorization,
        who,
    });

    let acme_before = server.head(&acme).await;
    let beta_before = server.head(&beta).await;
    let mut writes = 0;
    let mut failures = Vec::new();
    for endpoint in &endpoints {
        for credential in &credentials {
            let mut call = server
                .call(endpoint.method, &endpoint.path)
                .org("acme")
                .header("X-API-Version", "v1");
            if let Some(authorization) = &credential.authorization {
                call = call.header("Authorization", authorization);
            }
            if let Some(body) = &endpoint.body {
                call = call.json(body);
            }
            let reply = call.send().await;
            let want = expected(endpoint.kind, credential.who);
            let mut problems = Vec::new();
            if reply.status != want {
                problems.push(format!("expected {want}, got {}", reply.status));
            }
            if reply.status == 401 && reply.header("www-authenticate") != Some("Bearer") {
                problems.push("a 401 without WWW-Authenticate: Bearer".to_string());
            }
            if reply.status >= 400 {
                let text = reply.text();
                if text.contains(&event_id) || text.contains(&job_id) {
                    problems.push("a refusal shows the organization's data".to_string());
                }
                let detail_is_text = serde_json::from_slice::<Value>(&reply.body)
                    .is_ok_and(|body| body["detail"].is_string());
                if !detail_is_text {
                    problems.push("the refusal has no JSON detail".to_string());
                }
            }
            if (200..300).contains(&reply.status)
                && matches!(endpoint.name, "ingest" | "export create")
            {
                writes += 1;
            }
            if !problems.is_empty() {
                failures.push(format!(
                    "{} × {}: {} — body {}",
                    endpoint.name,
                    credential.name,
                    problems.join("; "),
                    reply.text().chars().take(160).collect::<String>()
                ));
            }
        }
    }
    for failure in &failures {
        eprintln!("FAILED {failure}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        endpoints.len() * credentials.len(),
        failures.join("\n")
    );
    // Only the accepted writes (ingest, and the export requests it records) reached the log,
    // besides the records of refused reads (docs/events.md), which there are.
    assert_eq!(
        writes_besides_refusals(&server, &acme, acme_before).await,
        writes
    );
    assert_eq!(
        writes_besides_refusals(&server, &beta, beta_before).await,
        0
    );
    assert!(
        server.head(&acme).await > acme_before + writes,
        "refusals are recorded"
    );
}

async fn an_unenrolled_org_is_refused_as_early_access(backend: Backend) {
    let server = Server::start(backend).await;
    let dormant = server.org("dormant", false).await;
    let admin = server.admin(&dormant, "admin@dormant.test").await;
    let account = server.service_account_token(&dormant, "reader").await;
    for token in [&admin, &account] {
        for (method, path) in [
            ("GET", "/api/audit-logs"),
            ("GET", "/api/audit-logs/facets"),
            ("GET", "/api/audit-logs/rejections"),
            ("GET", "/api/audit-logs/checkpoint"),
            ("POST", "/api/audit-logs/export"),
        ] {
            let reply = server
                .call(method, path)
                .bearer(token)
                .org("dormant")
                .send()
                .await
                .expect(403);
            let detail = reply.json()["detail"].as_str().unwrap_or("").to_lowercase();
            assert!(
                detail.contains("early access"),
                "{method} {path}: the 403 does not say why: {detail}"
            );
        }
    }
    // Enrolling the organization opens it.
    server
        .service
        .store()
        .set_org_enabled(dormant.id, true)
        .await
        .unwrap();
    server
        .get("/api/audit-logs")
        .bearer(&admin)
        .org("dormant")
        .send()
        .await
        .expect(200);
}

/// Reads every read endpoint as `token` naming `org_header`; each reply must be a refusal
/// that shows nothing of `secrets`.
async fn assert_refused_everywhere(
    server: &Server,
    token: &str,
    org_header: &str,
    paths: &[(&'static str, String)],
    secrets: &[&str],
) -> Vec<u16> {
    let mut statuses = Vec::new();
    for (method, path) in paths {
        let mut call = server.call(method, path).bearer(token).org(org_header);
        if *method == "POST" {
            call = call.json(&json!({}));
        }
        let reply: Reply = call.send().await;
        assert!(
            matches!(reply.status, 403 | 404),
            "{method} {path} as X-Org-Name {org_header}: got {} {}",
            reply.status,
            reply.text()
        );
        for secret in secrets {
            assert!(
                !reply.text().contains(secret),
                "{method} {path} as X-Org-Name {org_header} shows {secret}: {}",
                reply.text()
            );
        }
        statuses.push(reply.status);
    }
    statuses
}

async fn a_credential_bound_to_one_org_never_reads_another(backend: Backend) {
    let World { server, acme, beta } = World::new(backend).await;
    let acme_admin = server.admin(&acme, "admin@acme.test").await;
    let acme_account = server.service_account_token(&acme, "reader").await;
    let beta_admin = server.admin(&beta, "admin@beta.test").await;
    let beta_ingest = server.ingest_key(Some(&beta)).await;
    let marker = "beta-secret-marker";
    let stored = server
        .post("/api/audit-logs/events")
        .bearer(&beta_ingest)
        .json(&event(marker))
        .send()
        .await
        .expect(201)
        .json();
    let beta_event = stored["ids"][0].as_str().unwrap().to_string();
    let job = server
        .post("/api/audit-logs/export")
        .bearer(&beta_admin)
        .org("beta")
        .json(&json!({}))
        .send()
        .await
        .expect(200)
        .json();
    let beta_job = job["id"].as_str().unwrap().to_string();
    wait_for_export(&server, &beta_admin, "beta", &beta_job).await;
    // And a refused event, which beta's rejection counts name by its action key.
    server
        .post("/api/audit-logs/events")
        .bearer(&beta_ingest)
        .json(&json!({"action_key": marker}))
        .send()
        .await
        .expect(422);
    let beta_rejections = server
        .get("/api/audit-logs/rejections")
        .bearer(&beta_admin)
        .org("beta")
        .send()
        .await
        .expect(200)
        .text();
    assert!(beta_rejections.contains(marker), "{beta_rejections}");
    let beta_head = server.head(&beta).await;

    let paths = vec![
        ("GET", "/api/audit-logs".to_string()),
        ("GET", format!("/api/audit-logs?q=text:{marker}")),
        ("GET", format!("/api/audit-logs/{beta_event}")),
        ("GET", "/api/audit-logs/facets".to_string()),
        ("GET", "/api/audit-logs/rejections".to_string()),
        ("GET", "/api/audit-logs/checkpoint".to_string()),
        ("POST", "/api/audit-logs/export".to_string()),
        ("GET", format!("/api/audit-logs/export/{beta_job}")),
        ("GET", format!("/api/audit-logs/export/{beta_job}/download")),
    ];
    let secrets = [marker, beta_event.as_str(), beta_job.as_str()];
    let beta_id = beta.id.to_string();
    let nobody = uuid::Uuid::new_v4().to_string();
    for token in [&acme_admin, &acme_account] {
        // Naming beta by name or id, or an organization that does not exist, looks the
        // same: a 403 that does not say whether it exists.
        let mut seen = Vec::new();
        for header in ["beta", beta_id.as_str(), "no-such-org", nobody.as_str()] {
            let statuses =
                assert_refused_everywhere(&server, token, header, &paths, &secrets).await;
            assert!(statuses.iter().all(|s| *s == 403), "{header}: {statuses:?}");
            seen.push(statuses);
        }
        // Naming its own organization, beta's event and job are simply not there.
        for (method, path) in &paths[2..3] {
            server
                .call(method, path)
                .bearer(token)
                .org("acme")
                .send()
                .await
                .expect(404);
        }
        for path in [
            format!("/api/audit-logs/export/{beta_job}"),
            format!("/api/audit-logs/export/{beta_job}/download"),
        ] {
            let reply = server
                .get(&path)
                .bearer(token)
                .org("acme")
                .send()
                .await
                .expect(404);
            assert!(!reply.text().contains(marker));
        }
        for path in [
            format!("/api/audit-logs?q=text:{marker}"),
            "/api/audit-logs?limit=1000".to_string(),
            "/api/audit-logs/facets".to_string(),
            "/api/audit-logs/rejections".to_string(),
        ] {
            let reply = server
                .get(&path)
                .bearer(token)
                .org("acme")
                .send()
                .await
                .expect(200);
            assert!(
                !reply.text().contains(marker) && !reply.text().contains(&beta_event),
                "{path} as acme shows beta's data: {}",
                reply.text()
            );
        }
    }
    // No export request was recorded in beta's log by the refused attempts: only that they
    // were refused.
    assert_eq!(writes_besides_refusals(&server, &beta, beta_head).await, 0);
}

async fn an_org_ingest_key_writes_nowhere_else(backend: Backend) {
    let World { server, acme, beta } = World::new(backend).await;
    let acme_ingest = server.ingest_key(Some(&acme)).await;
    let beta_id = beta.id.to_string();
    let foreign = |org: &str| {
        let mut e = event("foreign");
        e["org"] = json!(org);
        e
    };
    let cases: Vec<(&str, Option<&str>, Value)> = vec![
        ("header names beta", Some("beta"), event("foreign")),
        (
            "header names beta by id",
            Some(beta_id.as_str()),
            event("foreign"),
        ),
        ("header names no org", Some("no-such-org"), event("foreign")),
        ("event names beta", None, foreign("beta")),
        ("event names beta by id", None, foreign(&beta_id)),
        ("event names no org", None, foreign("no-such-org")),
        (
            "batch of acme and beta",
            None,
            json!([event("mine"), foreign("beta")]),
        ),
        (
            "acme header, beta event",
            Some("acme"),
            json!([event("mine"), foreign("beta")]),
        ),
    ];
    for (name, header, body) in cases {
        let (acme_head, beta_head) = (server.head(&acme).await, server.head(&beta).await);
        let mut call = server
            .post("/api/audit-logs/events")
            .bearer(&acme_ingest)
            .json(&body);
        if let Some(header) = header {
            call = call.org(header);
        }
        let reply = call.send().await;
        assert_eq!(reply.status, 403, "{name}: {}", reply.text());
        assert_eq!(server.head(&acme).await, acme_head, "{name}: acme changed");
        assert_eq!(server.head(&beta).await, beta_head, "{name}: beta changed");
    }
    // Its own organization, named or not, is fine.
    server
        .post("/api/audit-logs/events")
        .bearer(&acme_ingest)
        .json(&json!([event("mine"), foreign("acme")]))
        .send()
        .await
        .expect(201);
}

async fn a_platform_ingest_key_writes_to_several_orgs_in_one_batch(backend: Backend) {
    let World { server, acme, beta } = World::new(backend).await;
    let platform = server.ingest_key(None).await;
    let acme_admin = server.admin(&acme, "admin@acme.test").await;
    let beta_admin = server.admin(&beta, "admin@beta.test").await;
    let (acme_head, beta_head) = (server.head(&acme).await, server.head(&beta).await);
    let batch = json!([
        {"org": "acme", "action_key": "channel_created", "target_name": "to-acme-1"},
        {"org": beta.id.to_string(), "action_key": "channel_deleted", "target_name": "to-beta"},
        {"org": "acme", "action_key": "policy_created", "target_name": "to-acme-2"},
    ]);
    let stored = server
        .post("/api/audit-logs/events")
        .bearer(&platform)
        .json(&batch)
        .send()
        .await
        .expect(201)
        .json();
    assert_eq!(stored["count"], 3);
    assert_eq!(server.head(&acme).await, acme_head + 2);
    assert_eq!(server.head(&beta).await, beta_head + 1);
    let ids: Vec<&str> = stored["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for (token, org, mine, theirs) in [
        (&acme_admin, "acme", vec![ids[0], ids[2]], vec![ids[1]]),
        (&beta_admin, "beta", vec![ids[1]], vec![ids[0], ids[2]]),
    ] {
        let listed = server
            .get("/api/audit-logs?limit=1000")
            .bearer(token)
            .org(org)
            .send()
            .await
            .expect(200)
            .text();
        for id in mine {
            assert!(listed.contains(id), "{org} misses {id}");
        }
        for id in theirs {
            assert!(!listed.contains(id), "{org} shows {id}");
        }
    }

    // Without an organization anywhere, or naming one that does not exist, nothing is
    // stored in either organization.
    let (acme_head, beta_head) = (server.head(&acme).await, server.head(&beta).await);
    let orphan = server
        .post("/api/audit-logs/events")
        .bearer(&platform)
        .json(&json!([{"org": "acme", "action_key": "channel_created"}, {"action_key": "channel_created"}]))
        .send()
        .await
        .expect(422);
    assert_eq!(
        orphan.locs(),
        vec![vec![json!("body"), json!(1), json!("org")]]
    );
    let unknown = server
        .post("/api/audit-logs/events")
        .bearer(&platform)
        .json(&json!([{"org": "beta", "action_key": "channel_created"}, {"org": "no-such-org", "action_key": "channel_created"}]))
        .send()
        .await
        .expect(422);
    assert_eq!(
        unknown.locs(),
        vec![vec![json!("body"), json!(1), json!("org")]]
    );
    assert_eq!(server.head(&acme).await, acme_head);
    assert_eq!(server.head(&beta).await, beta_head);
}

async fn an_unsupported_api_version_is_400(backend: Backend) {
    let server = Server::start(backend).await;
    let acme = server.org("acme", true).await;
    let admin = server.admin(&acme, "admin@acme.test").await;
    let ingest = server.ingest_key(Some(&acme)).await;
    let head = server.head(&acme).await;
    for (method, path, token, body) in [
        ("GET", "/api/audit-logs", &admin, None),
        ("GET", "/api/audit-logs/facets", &admin, None),
        ("GET", "/api/audit-logs/rejections", &admin, None),
        ("GET", "/api/audit-logs/checkpoint", &admin, None),
        ("POST", "/api/audit-logs/export", &admin, Some(json!({}))),
        (
            "POST",
            "/api/audit-logs/events",
            &ingest,
            Some(event("versioned")),
        ),
    ] {
        for (version, want) in [("v2", 400), ("v0", 400), ("v1", 0)] {
            let mut call = server
                .call(method, path)
                .bearer(token)
                .org("acme")
                .header("X-API-Version", version);
            if let Some(body) = &body {
                call = call.json(body);
            }
            let reply = call.send().await;
            if want == 0 {
                assert!(
                    (200..300).contains(&reply.status),
                    "{method} {path} v1: {} {}",
                    reply.status,
                    reply.text()
                );
            } else {
                assert_eq!(
                    reply.status,
                    want,
                    "{method} {path} X-API-Version {version:?}: {}",
                    reply.text()
                );
                assert!(reply.json()["detail"].as_str().unwrap().contains("v1"));
            }
        }
    }
    // Only the v1 export request and the v1 event were stored.
    assert_eq!(server.head(&acme).await, head + 2);
}

async fn the_public_key_and_health_need_no_token(backend: Backend) {
    let server = Server::start(backend).await;
    let key = server
        .get("/api/audit-logs/public-key")
        .send()
        .await
        .expect(200)
        .json();
    assert_eq!(
        key["public_key"].as_str(),
        Some(
            auditlog_service::keys::public_key_hex(&server.service.signing_key().verifying_key())
                .as_str()
        )
    );
    for path in ["/healthz", "/readyz", "/api/openapi.json"] {
        server.get(path).send().await.expect(200);
    }
}
