//! Redaction at ingest (docs/events.md, "Redaction at ingest"): under `--redact '*token*'` an
//! event's token is replaced before it is stored, so it is in no answer, no search word, no
//! export and (SQLite) no byte of any file in the data directory; the event lists what was
//! replaced, the chain with it verifies, and a client cannot send `redacted` itself.

use auditlog_core::redact::RedactionRules;
use serde_json::json;

use crate::{export_completed, query, Backend, Server};

on_each_backend! {
    a_redacted_secret_reaches_no_answer_export_or_file
        => a_redacted_secret_reaches_no_answer_export_or_file_sqlite,
           a_redacted_secret_reaches_no_answer_export_or_file_postgres;
}

/// The secret a platform sends by mistake.
const SECRET: &str = "tok-5b2f9e71aa04secret";
/// A value sent beside it that is kept: the files are searched for it too, to show that the
/// search would find a stored value.
const KEPT: &str = "visibility-marker-7f3e";

/// A server whose service redacts `*token*`.
async fn redacting_server(backend: Backend) -> Server {
    let rules = RedactionRules::parse(&["*token*"]).expect("valid rules");
    Server::start_composed(backend, |service| service.with_redaction(rules)).await
}

async fn a_redacted_secret_reaches_no_answer_export_or_file(backend: Backend) {
    let server = redacting_server(backend).await;
    let acme = server.org("acme", true).await;
    let key = server.ingest_key(Some(&acme)).await;
    let admin = server.admin(&acme, "admin@acme.test").await;
    server
        .post("/api/audit-logs/events")
        .bearer(&key)
        .header("Idempotency-Key", "redaction-1")
        .json(&json!([
            {
                "action_key": "token_created",
                "actor_email": "alice@acme.test",
                "meta": {"api_token": SECRET, "note": KEPT, "scopes": [{"refresh_token": SECRET}]},
            },
            {
                "action_key": "organization_user_updated",
                "actor_email": "alice@acme.test",
                "changes": [
                    {"field": "role", "before": "member", "after": "admin"},
                    {"field": "token", "before": SECRET, "after": SECRET},
                ],
            },
        ]))
        .send()
        .await
        .expect(201);
    // `redacted` is the service's to set.
    let refused = server
        .post("/api/audit-logs/events")
        .bearer(&key)
        .json(&json!([{"action_key": "channel_created", "redacted": ["meta.x"]}]))
        .send()
        .await
        .expect(422);
    assert!(refused.text().contains("redacted"), "{}", refused.text());

    let page = server
        .get("/api/audit-logs?limit=100")
        .bearer(&admin)
        .org("acme")
        .send()
        .await
        .expect(200);
    assert!(!page.text().contains(SECRET), "{}", page.text());
    let items = page.json()["items"].as_array().expect("items").clone();
    let created = items
        .iter()
        .find(|e| e["action_key"] == "token_created")
        .expect("the token event");
    assert_eq!(created["meta"]["api_token"], "[REDACTED]");
    assert_eq!(created["meta"]["scopes"][0]["refresh_token"], "[REDACTED]");
    assert_eq!(created["meta"]["note"], KEPT);
    assert_eq!(
        created["redacted"],
        json!(["meta.api_token", "meta.scopes[0].refresh_token"])
    );
    let updated = items
        .iter()
        .find(|e| e["action_key"] == "organization_user_updated")
        .expect("the change");
    assert_eq!(updated["changes"][0]["after"], "admin");
    assert_eq!(updated["changes"][1]["before"], "[REDACTED]");
    assert_eq!(
        updated["redacted"],
        json!(["changes[1].after", "changes[1].before"])
    );
    // Events without a match, the service's own records among them, carry no `redacted`.
    let own = items
        .iter()
        .find(|e| e["action_key"] == "organization_user_added")
        .expect("the service's record of adding the admin");
    assert!(own.get("redacted").is_none(), "{own}");

    let id = created["id"].as_str().expect("an id");
    let one = server
        .get(&format!("/api/audit-logs/{id}"))
        .bearer(&admin)
        .org("acme")
        .send()
        .await
        .expect(200)
        .json();
    assert_eq!(one["redacted"], created["redacted"]);

    // The secret gives no search word; the value kept beside it does.
    for (words, expected) in [(SECRET, 0), ("5b2f9e71aa04secret", 0), (KEPT, 1)] {
        let q = format!("text:{words}");
        let found = server
            .get(&format!("/api/audit-logs?{}", query(&[("q", &q)])))
            .bearer(&admin)
            .org("acme")
            .send()
            .await
            .expect(200)
            .json();
        assert_eq!(
            found["items"].as_array().map(Vec::len),
            Some(expected),
            "{q}"
        );
    }

    for format in ["jsonl", "csv"] {
        let job = export_completed(&server, &admin, "acme", json!({"format": format})).await;
        let file = server
            .get(&format!("/api/audit-logs/export/{job}/download"))
            .bearer(&admin)
            .org("acme")
            .send()
            .await
            .expect(200)
            .text();
        assert!(!file.contains(SECRET), "{format}: {file}");
        assert!(
            file.contains("meta.scopes[0].refresh_token"),
            "{format}: {file}"
        );
        let report = auditlog_core::export::verify_export(
            file.as_bytes(),
            &server.service.signing_key().verifying_key(),
        )
        .unwrap_or_else(|e| panic!("the {format} export does not verify: {e}"));
        assert!(report.complete, "{report:?}");
    }

    let verified = server
        .service
        .verify_org(acme.id, &|_| {})
        .await
        .expect("the chain with redacted events verifies");
    assert!(verified.events >= 3, "{verified:?}");

    // What the store holds, read back through it.
    let stored = server
        .service
        .store()
        .events_by_seq(acme.id, 0, 100)
        .await
        .expect("read the events");
    let redacted: Vec<&Vec<String>> = stored
        .iter()
        .map(|event| &event.body.extensions.redacted)
        .filter(|paths| !paths.is_empty())
        .collect();
    assert_eq!(redacted.len(), 2, "{redacted:?}");
    if backend == Backend::Sqlite {
        // Every byte of every file the server wrote (the log, the derived index, their
        // write-ahead logs, the export files): the secret is in none, the kept value is.
        let files = files_under(server.dir.path());
        let holding = |needle: &str| -> Vec<String> {
            files
                .iter()
                .filter(|(_, bytes)| contains(bytes, needle.as_bytes()))
                .map(|(path, _)| path.clone())
                .collect()
        };
        assert!(
            files.iter().any(|(path, _)| path.ends_with("auditlog.db")),
            "{:?}",
            files.iter().map(|f| &f.0).collect::<Vec<_>>()
        );
        assert_eq!(holding(SECRET), Vec::<String>::new());
        assert!(!holding(KEPT).is_empty(), "the search finds a stored value");
    }
}

/// Every file under `dir`, recursively: its path and its bytes.
fn files_under(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read the directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read the file");
                files.push((path.display().to_string(), bytes));
            }
        }
    }
    files
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}
