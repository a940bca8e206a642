//! The transparency log over HTTP, as a tlog client sees it: the verifier key, a signed
//! checkpoint that opens with it, tiles under the organization's prefix that give the signed
//! root, inclusion proofs (JSON and tlog-proof text) and consistency proofs that verify, bad
//! paths and sizes refused by name, and every log endpoint closed to the wrong credential and
//! to other organizations.

use auditlog_core::merkle::{tree_root, verify_consistency, verify_inclusion, Hash};
use auditlog_core::note::{Checkpoint, NoteVerifier};
use auditlog_core::tiles::{tiles_for_size, TileHashReader};
use base64::Engine;
use serde_json::{json, Value};

use crate::{query, Backend, Server};

on_each_backend! {
    a_client_verifies_the_log_through_its_endpoints =>
        a_client_verifies_the_log_through_its_endpoints_sqlite,
        a_client_verifies_the_log_through_its_endpoints_postgres;
    the_log_is_closed_to_other_organizations_and_credentials =>
        the_log_is_closed_to_other_organizations_and_credentials_sqlite,
        the_log_is_closed_to_other_organizations_and_credentials_postgres;
}

/// A hash the API gives in base64.
pub fn hash(text: &Value) -> Hash {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.as_str().expect("a base64 string"))
        .expect("base64");
    Hash::from_slice(&bytes).expect("32 bytes")
}

/// The size and root of the signed tree checkpoint of `org`, as `token` reads it.
pub async fn signed_tree(server: &Server, token: &str, org: &str) -> (u64, Hash) {
    let text = server
        .get(&format!("/api/log/{org}/checkpoint"))
        .bearer(token)
        .send()
        .await
        .expect(200)
        .text();
    let mut lines = text.lines().skip(1);
    let size = lines.next().unwrap().parse().expect("a size");
    (size, hash(&json!(lines.next().expect("a root"))))
}

/// Checks, as a tlog client would, that the signed tree of `org` now extends `old` (its size
/// and root, signed earlier: the consistency proof verifies) and includes each of `ids` (its
/// inclusion proof verifies against the new root); answers the new size and root. What a
/// log that removed events (a purge) or rewrote values (an erasure) must still pass.
pub async fn assert_extends_and_includes(
    server: &Server,
    token: &str,
    org: &str,
    old: (u64, Hash),
    ids: impl IntoIterator<Item = &String>,
) -> (u64, Hash) {
    let (old_size, old_root) = old;
    let (size, root) = signed_tree(server, token, org).await;
    let consistency = server
        .get(&format!("/api/log/{org}/consistency?old={old_size}"))
        .bearer(token)
        .send()
        .await
        .expect(200)
        .json();
    assert_eq!(consistency["new_size"].as_u64(), Some(size));
    verify_consistency(old_size, size, &old_root, &root, &hashes(&consistency))
        .expect("the new signed tree extends the old one");
    for id in ids {
        let proof = server
            .get(&format!("/api/log/{org}/proof/{id}"))
            .bearer(token)
            .send()
            .await
            .expect(200)
            .json();
        assert_eq!(proof["tree_size"].as_u64(), Some(size));
        let index = proof["leaf_index"].as_u64().expect("a leaf index");
        verify_inclusion(
            &hash(&proof["leaf_hash"]),
            index,
            size,
            &hashes(&proof),
            &root,
        )
        .unwrap_or_else(|e| panic!("{id}: {e}"));
    }
    (size, root)
}

/// A proof's `hashes`, decoded.
pub fn hashes(proof: &Value) -> Vec<Hash> {
    proof["hashes"]
        .as_array()
        .expect("the proof's hashes")
        .iter()
        .map(hash)
        .collect()
}

/// Ingests `n` channel creations in one batch and returns their ids, in order.
pub async fn ingest(server: &Server, key: &str, n: usize) -> Vec<String> {
    let events: Vec<Value> = (0..n)
        .map(|i| json!({"action_key": "channel_created", "target_name": format!("ch-{i}")}))
        .collect();
    let reply = server
        .post("/api/audit-logs/events")
        .bearer(key)
        .json(&json!(events))
        .send()
        .await
        .expect(201)
        .json();
    let ids = reply["ids"].as_array().expect("the ids of the events");
    assert_eq!(ids.len(), n);
    ids.iter()
        .map(|id| id.as_str().expect("an id").to_string())
        .collect()
}

async fn a_client_verifies_the_log_through_its_endpoints(backend: Backend) {
    let server = Server::start(backend).await;
    let org = server.org("acme", true).await;
    let key = server.ingest_key(Some(&org)).await;
    let admin = server.admin(&org, "admin@acme.test").await;
    ingest(&server, &key, 300).await;

    let vkey = server.get("/api/log/vkey").send().await.expect(200).text();
    let verifier = NoteVerifier::parse(vkey.trim()).expect("a vkey");
    let prefix = format!("/api/log/{}", org.id);
    let get = |path: String| server.get(&path).bearer(&admin);

    // The checkpoint, by id or by name alike. The admin's own actions are in the log too, so
    // its size is what the chain head says.
    let note = get(format!("{prefix}/checkpoint"))
        .send()
        .await
        .expect(200)
        .text();
    let (checkpoint, _) =
        Checkpoint::open(note.as_bytes(), std::slice::from_ref(&verifier)).expect("opens");
    assert_eq!(checkpoint.origin(), format!("auditlog/{}", org.id));
    let size = checkpoint.size();
    assert_eq!(size, server.head(&org).await);
    let by_name = get("/api/log/acme/checkpoint".into())
        .send()
        .await
        .expect(200)
        .text();
    assert_eq!(by_name, note);

    // Tiles give the signed root.
    let mut reader = TileHashReader::new();
    for tile in tiles_for_size(size) {
        let reply = get(format!("{prefix}/{}", tile.path()))
            .send()
            .await
            .expect(200);
        assert_eq!(
            reply.media_type().as_deref(),
            Some("application/octet-stream")
        );
        reader.insert(tile, &reply.body).expect("a whole tile");
    }
    assert_eq!(tree_root(&reader, size).unwrap(), checkpoint.root());

    // Inclusion proofs of events throughout the log.
    let page = get(format!("/api/audit-logs?{}", query(&[("limit", "100")])))
        .org("acme")
        .send()
        .await
        .expect(200)
        .json();
    for item in page["items"].as_array().unwrap().iter().step_by(9) {
        let id = item["id"].as_str().unwrap();
        let proof = get(format!("{prefix}/proof/{id}"))
            .send()
            .await
            .expect(200)
            .json();
        let path = hashes(&proof);
        let index = proof["leaf_index"].as_u64().unwrap();
        assert_eq!(proof["tree_size"].as_u64(), Some(size));
        verify_inclusion(
            &hash(&proof["leaf_hash"]),
            index,
            size,
            &path,
            &checkpoint.root(),
        )
        .unwrap_or_else(|e| panic!("{id}: {e}"));
        // The leaf is the one the level-0 tile holds at that index.
        let tile = &reader;
        let at = auditlog_core::merkle::HashIndex::new(0, index);
        use auditlog_core::merkle::HashReader;
        assert_eq!(
            tile.read_hashes(&[at]).unwrap()[0],
            hash(&proof["leaf_hash"])
        );
        let text = get(format!("{prefix}/proof/{id}?format=tlog-proof"))
            .send()
            .await
            .expect(200)
            .text();
        assert!(text.starts_with(&format!("c2sp.org/tlog-proof@v1\nindex {index}\n")));
        assert!(
            text.ends_with(&note),
            "the text proof ends with the checkpoint"
        );
    }

    // The log grows; the new checkpoint extends the old one.
    ingest(&server, &key, 40).await;
    let newer = get(format!("{prefix}/checkpoint"))
        .send()
        .await
        .expect(200)
        .text();
    let (newer, _) = Checkpoint::open(newer.as_bytes(), &[verifier]).expect("opens");
    assert_eq!(newer.size(), size + 40);
    let proof = get(format!(
        "{prefix}/consistency?{}",
        query(&[("old", &size.to_string())])
    ))
    .send()
    .await
    .expect(200)
    .json();
    assert_eq!(proof["new_size"].as_u64(), Some(newer.size()));
    let path = hashes(&proof);
    verify_consistency(size, newer.size(), &checkpoint.root(), &newer.root(), &path)
        .expect("the log was only appended to");

    // Bad requests are refused by name; what the log does not have is a 404.
    for (path, status) in [
        (format!("{prefix}/tile/0/1"), 422),
        (format!("{prefix}/tile/0/000.p/0"), 422),
        (format!("{prefix}/tile/9/000"), 422),
        (format!("{prefix}/tile/3/000.p/1"), 404),
        (format!("{prefix}/tile/entries/000"), 404),
        (format!("{prefix}/proof/not-a-uuid"), 422),
        (format!("{prefix}/proof/{}", uuid::Uuid::new_v4()), 404),
        (
            format!("{prefix}/proof/{}?format=xml", uuid::Uuid::new_v4()),
            422,
        ),
        (format!("{prefix}/consistency"), 422),
        (format!("{prefix}/consistency?old=-1"), 422),
        (format!("{prefix}/consistency?old=1&old=2"), 422),
        (format!("{prefix}/consistency?old=5&new=4"), 422),
        (format!("{prefix}/consistency?old=1&new=99999999"), 404),
        (format!("{prefix}/consistency?old=1&sneaky=1"), 422),
    ] {
        let reply = get(path.clone()).send().await;
        assert_eq!(reply.status, status, "{path}: {}", reply.text());
    }
}

async fn the_log_is_closed_to_other_organizations_and_credentials(backend: Backend) {
    let server = Server::start(backend).await;
    let acme = server.org("acme", true).await;
    let other = server.org("other", true).await;
    let acme_key = server.ingest_key(Some(&acme)).await;
    let ids = ingest(&server, &acme_key, 3).await;
    let other_admin = server.admin(&other, "admin@other.test").await;
    let acme_admin = server.admin(&acme, "admin@acme.test").await;
    let paths = |org: &str| {
        [
            format!("/api/log/{org}/checkpoint"),
            format!("/api/log/{org}/tile/0/000.p/1"),
            format!("/api/log/{org}/proof/{}", ids[0]),
            format!("/api/log/{org}/consistency?old=1"),
        ]
    };
    for path in paths(&acme.id.to_string()).iter().chain(&paths("acme")) {
        // No credential, a bad one, an ingest key, another organization's admin.
        let anonymous = server.get(path).send().await;
        assert_eq!(anonymous.status, 401, "{path} without a credential");
        let forged = server.get(path).bearer("not-a-token").send().await;
        assert_eq!(forged.status, 401, "{path} with a forged token");
        let ingest_key = server.get(path).bearer(&acme_key).send().await;
        assert_eq!(ingest_key.status, 403, "{path} with an ingest key");
        let foreign = server.get(path).bearer(&other_admin).send().await;
        assert!(
            foreign.status == 403 || foreign.status == 404,
            "{path} by another organization's admin: {}",
            foreign.status
        );
        assert!(!foreign.text().contains(&acme.id.to_string()) || foreign.status == 403);
        server
            .get(path)
            .bearer(&acme_admin)
            .send()
            .await
            .expect(200);
    }
    // An event of one organization has no proof in another's log.
    let other_key = server.ingest_key(Some(&other)).await;
    ingest(&server, &other_key, 1).await;
    let reply = server
        .get(&format!("/api/log/other/proof/{}", ids[0]))
        .bearer(&other_admin)
        .send()
        .await;
    assert_eq!(reply.status, 404);
}
