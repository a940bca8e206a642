//! Legal holds and erasure over HTTP: who may place, lift and erase (only an administrator of
//! the organization), every bad request refused by name and changing nothing, a hold that
//! blocks an erasure, the records of each step (which never repeat what was erased), and an
//! erased person who leaves no trace in any file of the data directory while every proof and
//! the whole chain still verify.

use crate::log::{assert_extends_and_includes, signed_tree};
use auditlog_store::Role;
use serde_json::{json, Value};

use crate::{query, Backend, Server};

on_each_backend! {
    holds_and_erasures_are_for_administrators_and_refuse_bad_requests =>
        holds_and_erasures_are_for_administrators_and_refuse_bad_requests_sqlite,
        holds_and_erasures_are_for_administrators_and_refuse_bad_requests_postgres;
    a_hold_blocks_an_erasure_until_it_is_lifted =>
        a_hold_blocks_an_erasure_until_it_is_lifted_sqlite,
        a_hold_blocks_an_erasure_until_it_is_lifted_postgres;
}

const HOLDS: &str = "/api/audit-logs/legal-holds";
const ERASURES: &str = "/api/audit-logs/erasures";

/// The organization's holds, as `token` lists them.
async fn holds(server: &Server, token: &str) -> Value {
    server
        .get(HOLDS)
        .bearer(token)
        .org("acme")
        .send()
        .await
        .expect(200)
        .json()
}

/// Ingests `events` in batches of 1,000.
async fn ingest(server: &Server, key: &str, events: Vec<Value>) {
    for batch in events.chunks(1000) {
        server
            .post("/api/audit-logs/events")
            .bearer(key)
            .json(&json!(batch))
            .send()
            .await
            .expect(201);
    }
}

/// The items of acme's list for `q`.
pub async fn list(server: &Server, token: &str, q: &str) -> Vec<Value> {
    server
        .get(&format!(
            "/api/audit-logs?{}",
            query(&[("q", q), ("limit", "1000")])
        ))
        .bearer(token)
        .org("acme")
        .send()
        .await
        .expect(200)
        .json()["items"]
        .as_array()
        .expect("items")
        .clone()
}

/// No hold is placed, no event of zoe's erased, and none of the three actions recorded.
async fn assert_unchanged(server: &Server, admin: &str) {
    let holds = holds(server, admin).await;
    assert_eq!(holds["total_count"], 0, "{holds}");
    assert_eq!(list(server, admin, "actor:zoe@acme.test").await.len(), 1);
    for action in [
        "legal_hold_placed",
        "legal_hold_lifted",
        "data_subject_erased",
    ] {
        let q = format!("action_key:{action}");
        assert!(
            list(server, admin, &q).await.is_empty(),
            "{action} recorded"
        );
    }
}

async fn holds_and_erasures_are_for_administrators_and_refuse_bad_requests(backend: Backend) {
    let server = Server::start(backend).await;
    let acme = server.org("acme", true).await;
    let beta = server.org("beta", true).await;
    let admin = server.admin(&acme, "admin@acme.test").await;
    let member = server
        .user_token(&acme, "member@acme.test", Role::Member)
        .await;
    let beta_admin = server.admin(&beta, "admin@beta.test").await;
    let reader = server.service_account_token(&acme, "siem").await;
    let ingest_key = server.ingest_key(Some(&acme)).await;
    ingest(
        &server,
        &ingest_key,
        vec![json!({"action_key": "channel_created", "actor_email": "zoe@acme.test"})],
    )
    .await;

    let hold = json!({"reason": "case 7"});
    let erase = json!({"email": "zoe@acme.test"});
    let lift = format!("{HOLDS}/{}", uuid::Uuid::now_v7());
    let requests = [
        ("GET", HOLDS, None),
        ("POST", HOLDS, Some(&hold)),
        ("DELETE", lift.as_str(), None),
        ("POST", ERASURES, Some(&erase)),
    ];
    for (method, path, body) in requests {
        let call = |token: Option<&str>| {
            let mut call = server.call(method, path).org("acme");
            if let Some(token) = token {
                call = call.bearer(token);
            }
            if let Some(body) = body {
                call = call.json(body);
            }
            call
        };
        call(None).send().await.expect(401);
        for (who, token) in [
            ("a member", &member),
            ("another organization's admin", &beta_admin),
            ("a service account", &reader),
            ("an ingest key", &ingest_key),
        ] {
            let reply = call(Some(token)).send().await;
            assert!(
                reply.status == 403 || reply.status == 401,
                "{method} {path} by {who}: {} {}",
                reply.status,
                reply.text()
            );
        }
    }
    // Nothing was placed, lifted or erased (the refusals themselves are recorded, as
    // `audit_log_access_denied`).
    assert_unchanged(&server, &admin).await;

    // Bad requests name what is wrong and change nothing.
    let head = server.head(&acme).await;
    let bad: [(&str, &str, Value, &str); 9] = [
        ("POST", HOLDS, json!({}), "reason"),
        ("POST", HOLDS, json!({"reason": ""}), "reason"),
        ("POST", HOLDS, json!({"reason": "x".repeat(513)}), "reason"),
        ("POST", HOLDS, json!({"reason": "a\u{0}b"}), "reason"),
        (
            "POST",
            HOLDS,
            json!({"reason": "ok", "scope": "all"}),
            "scope",
        ),
        ("POST", ERASURES, json!({}), "email"),
        ("POST", ERASURES, json!({"email": "not an email"}), "email"),
        ("POST", ERASURES, json!({"actor_id": ""}), "actor_id"),
        (
            "POST",
            ERASURES,
            json!({"email": "zoe@acme.test", "name": "Zoe"}),
            "name",
        ),
    ];
    for (method, path, body, field) in bad {
        let reply = server
            .call(method, path)
            .bearer(&admin)
            .org("acme")
            .json(&body)
            .send()
            .await;
        assert_eq!(reply.status, 422, "{body}: {}", reply.text());
        assert!(
            reply.text().contains(field),
            "{body}: the error names {field}: {}",
            reply.text()
        );
    }
    let reply = server
        .call("DELETE", &format!("{HOLDS}/not-a-uuid"))
        .bearer(&admin)
        .org("acme")
        .send()
        .await;
    assert_eq!(reply.status, 422, "{}", reply.text());
    server
        .call("DELETE", &lift)
        .bearer(&admin)
        .org("acme")
        .send()
        .await
        .expect(404);
    assert_eq!(
        server.head(&acme).await,
        head,
        "bad requests record nothing"
    );

    // Another organization's hold cannot be lifted from this one.
    let theirs = server
        .post(HOLDS)
        .bearer(&beta_admin)
        .org("beta")
        .json(&hold)
        .send()
        .await
        .expect(201)
        .json();
    server
        .call(
            "DELETE",
            &format!("{HOLDS}/{}", theirs["id"].as_str().unwrap()),
        )
        .bearer(&admin)
        .org("acme")
        .send()
        .await
        .expect(404);
    let listed = holds(&server, &admin).await;
    assert_eq!(listed["total_count"], 0, "{listed}");
}

async fn a_hold_blocks_an_erasure_until_it_is_lifted(backend: Backend) {
    let server = Server::start(backend).await;
    let acme = server.org("acme", true).await;
    let admin = server.admin(&acme, "admin@acme.test").await;
    let ingest_key = server.ingest_key(Some(&acme)).await;
    let zoe = |i: usize| {
        json!({
            "action_key": "channel_created",
            "actor_id": "user-zoe",
            "actor_email": "zoe@acme.test",
            "actor_name": "Zoe Quartermaine",
            "target_name": format!("ch-{i}"),
        })
    };
    ingest(&server, &ingest_key, (0..5).map(zoe).collect()).await;

    for (n, hold) in [
        json!({"reason": "case 7"}),
        json!({"reason": "case 8", "subject": "user-zoe"}),
    ]
    .into_iter()
    .enumerate()
    {
        let placed = server
            .post(HOLDS)
            .bearer(&admin)
            .org("acme")
            .json(&hold)
            .send()
            .await
            .expect(201)
            .json();
        assert_eq!(placed["live"], true);
        assert_eq!(placed["placed_by"], "admin@acme.test");
        let head = server.head(&acme).await;
        let refused = server
            .post(ERASURES)
            .bearer(&admin)
            .org("acme")
            .json(&json!({"email": "zoe@acme.test"}))
            .send()
            .await;
        assert_eq!(refused.status, 409, "hold {n}: {}", refused.text());
        assert!(refused.text().contains("legal hold"), "{}", refused.text());
        assert_eq!(
            server.head(&acme).await,
            head,
            "a refused erasure records nothing"
        );
        assert_eq!(
            list(&server, &admin, "actor:zoe@acme.test").await.len(),
            5,
            "a refused erasure erases nothing"
        );
        let lifted = server
            .call(
                "DELETE",
                &format!("{HOLDS}/{}", placed["id"].as_str().unwrap()),
            )
            .bearer(&admin)
            .org("acme")
            .send()
            .await
            .expect(200)
            .json();
        assert_eq!(lifted["live"], false);
        assert_eq!(lifted["lifted_by"], "admin@acme.test");
    }

    let erased = server
        .post(ERASURES)
        .bearer(&admin)
        .org("acme")
        .json(&json!({"actor_id": "user-zoe"}))
        .send()
        .await
        .expect(200)
        .json();
    assert_eq!(erased["events_erased"], 5, "{erased}");
    assert_eq!(erased["events_unerasable"], 0, "{erased}");
    assert!(list(&server, &admin, "actor:zoe@acme.test")
        .await
        .is_empty());
    let hers = list(&server, &admin, "actor:user-zoe").await;
    assert_eq!(hers.len(), 5, "her events stay, by id");
    for event in &hers {
        assert!(event["actor_email"].is_null() && event["actor_name"].is_null());
    }
    // Each step is recorded; the erasure's record says how much, not whom.
    for action in ["legal_hold_placed", "legal_hold_lifted"] {
        assert_eq!(
            list(&server, &admin, &format!("action_key:{action}"))
                .await
                .len(),
            2
        );
    }
    let records = list(&server, &admin, "action_key:data_subject_erased").await;
    assert_eq!(records.len(), 1);
    let record = records[0].to_string();
    assert!(record.contains("\"events_erased\":5"), "{record}");
    for trace in ["zoe", "Quartermaine"] {
        assert!(
            !record.contains(trace),
            "the record repeats {trace}: {record}"
        );
    }
    let listed = holds(&server, &admin).await;
    assert_eq!(listed["total_count"], 2, "{listed}");
}

/// Every file under `dir`, recursively.
fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read the data directory") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// The files under `dir` whose bytes contain `needle`.
fn files_holding(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    files(dir)
        .into_iter()
        .filter(|file| {
            let bytes = std::fs::read(file).expect("read a file");
            bytes.windows(needle.len()).any(|w| w == needle)
        })
        .collect()
}

/// A person who appears in 10,000 events (as actor in half, as target in the other half) is
/// erased: afterwards none of their email, name, address or user agent is in any file of the
/// data directory (the log, the index, both WAL files), while the chain verifies, the signed
/// checkpoint after the erasure is consistent with the one before it, and the erased events'
/// inclusion proofs verify against it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_person_leaves_no_trace_in_the_files_and_every_proof_verifies() {
    let server = Server::start(Backend::Sqlite).await;
    let acme = server.org("acme", true).await;
    let admin = server.admin(&acme, "admin@acme.test").await;
    let ingest_key = server.ingest_key(Some(&acme)).await;
    let email = "zbigniewa.erase-me@example.test";
    let name = "Zbigniewa Quartermaine";
    let ip = "2001:db8:e7a5:e000::77";
    let agent = "QuartermaineBrowser/7.1";
    let events: Vec<Value> = (0..10_000)
        .map(|i| {
            if i % 2 == 0 {
                json!({
                    "action_key": "channel_created",
                    "actor_id": "user-zq",
                    "actor_email": email,
                    "actor_name": name,
                    "ip_address": ip,
                    "user_agent": agent,
                    "target_name": format!("ch-{i}"),
                })
            } else {
                json!({
                    "action_key": "organization_user_updated",
                    "actor_email": "admin@acme.test",
                    "actor_name": "Ada Admin",
                    "target_id": "user-zq",
                    "target_email": email,
                    "target_name": name,
                })
            }
        })
        .chain((0..500).map(|i| json!({"action_key": "channel_deleted", "actor_email": "bob@acme.test", "target_name": format!("old-{i}")})))
        .collect();
    ingest(&server, &ingest_key, events).await;
    let needles: Vec<(String, Vec<u8>)> = vec![
        ("email".into(), email.as_bytes().to_vec()),
        ("name".into(), name.as_bytes().to_vec()),
        (
            "name, lowercased".into(),
            "quartermaine".as_bytes().to_vec(),
        ),
        (
            "address as stored".into(),
            ip.parse::<std::net::Ipv6Addr>().unwrap().octets().to_vec(),
        ),
        ("user agent".into(), agent.as_bytes().to_vec()),
    ];
    // Every value is in the files before the erasure (so the search below can find one).
    server
        .service
        .store()
        .wait_indexed()
        .await
        .expect("indexed");
    for (what, needle) in &needles {
        assert!(
            !files_holding(server.dir.path(), needle).is_empty(),
            "before the erasure no file holds the {what}: the check would prove nothing"
        );
    }
    let (old_size, old_root) = signed_tree(&server, &admin, "acme").await;

    let erased = server
        .post(ERASURES)
        .bearer(&admin)
        .org("acme")
        .json(&json!({"email": email}))
        .send()
        .await
        .expect(200)
        .json();
    assert_eq!(erased["events_erased"], 10_000, "{erased}");
    server
        .service
        .store()
        .wait_indexed()
        .await
        .expect("indexed");

    // No trace in any file.
    assert!(
        files(server.dir.path())
            .iter()
            .any(|f| f.ends_with("auditlog.db")),
        "the data directory holds the log"
    );
    for (what, needle) in &needles {
        let holding = files_holding(server.dir.path(), needle);
        assert!(
            holding.is_empty(),
            "{holding:?} still hold the erased {what}"
        );
    }

    // Search finds nothing of them; their events stay, by id.
    assert!(list(&server, &admin, "text:quartermaine").await.is_empty());
    let count = server
        .get(&format!(
            "/api/audit-logs/facets?{}",
            query(&[("q", "actor:user-zq")])
        ))
        .bearer(&admin)
        .org("acme")
        .send()
        .await
        .expect(200)
        .json();
    assert!(count.to_string().contains("5000"), "{count}");

    // The chain verifies; the new checkpoint extends the old one; proofs verify.
    server
        .service
        .verify_org(acme.id, &|_| {})
        .await
        .expect("the chain verifies after the erasure");
    let page = list(&server, &admin, "actor:user-zq").await;
    for item in &page {
        assert!(item["actor_email"].is_null(), "{item}");
        assert!(
            item["entry"]["salts"]["actor_email"]["erased"].is_string(),
            "the API shows the field erased: {item}"
        );
    }
    let ids: Vec<String> = page
        .iter()
        .step_by(97)
        .map(|item| item["id"].as_str().unwrap().to_string())
        .collect();
    let (size, _) =
        assert_extends_and_includes(&server, &admin, "acme", (old_size, old_root), &ids).await;
    assert!(size > old_size);
}
