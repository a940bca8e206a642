//! The transparency log of an organization against a real SQLite store: every event's
//! inclusion proof verifies against the signed checkpoint (opened with the published verifier
//! key) and fails with any hash changed; consistency proofs link checkpoints; tiles read back
//! give the signed root; a tree rewritten under the store is never signed; bad tile paths and
//! sizes are refused by name.

mod support;

use std::sync::Arc;

use auditlog_core::chain::leaf_hash;
use auditlog_core::merkle::{tree_root, verify_consistency, verify_inclusion, Hash};
use auditlog_core::note::{Checkpoint, NoteVerifier};
use auditlog_core::tiles::{tiles_for_size, TileHashReader};
use auditlog_core::{Catalog, Event, NewEvent};
use auditlog_service::grant::ReadableOrg;
use auditlog_service::log::LogError;
use auditlog_service::Service;
use auditlog_sqlite::SqliteStore;
use auditlog_store::Store;
use ed25519_dalek::SigningKey;
use support::create_org;
use tempfile::TempDir;

struct Env {
    dir: TempDir,
    service: Service,
    store: Arc<dyn Store>,
    org: ReadableOrg,
}

impl Env {
    async fn new() -> Env {
        Env::with_service(|service| service).await
    }

    /// An environment whose service `configure` composes further.
    async fn with_service(configure: impl FnOnce(Service) -> Service) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("data")).unwrap());
        let service = configure(
            Service::new(
                store.clone(),
                Catalog::builtin(),
                SigningKey::from_bytes(&[9; 32]),
            )
            .with_log_name("audit.example.com")
            .unwrap(),
        );
        let org = create_org(&service, "acme").await;
        // A neighbour whose events interleave with acme's but never enter its tree.
        let other = create_org(&service, "other").await;
        service.ingest(Some(&other), events(7)).await.unwrap();
        Env {
            dir,
            service,
            store,
            org,
        }
    }

    async fn ingest(&self, n: u64) {
        self.service
            .ingest(Some(&self.org), events(n))
            .await
            .unwrap();
    }

    /// Every event of the organization, as stored.
    async fn events(&self) -> Vec<Event> {
        let mut all: Vec<Event> = Vec::new();
        loop {
            let after = all.last().map_or(0, |e| e.seq);
            let page = self
                .store
                .events_by_seq(self.org.id, after, 500)
                .await
                .unwrap();
            if page.is_empty() {
                return all;
            }
            all.extend(page);
        }
    }

    /// The verifier as a client gets it: from its published vkey text.
    fn verifier(&self) -> NoteVerifier {
        NoteVerifier::parse(&self.service.note_verifier().to_vkey()).unwrap()
    }

    /// The current checkpoint, opened and checked as a client would.
    async fn checkpoint(&self) -> Checkpoint {
        let signed = self.service.tree_checkpoint(&self.org).await.unwrap();
        let (checkpoint, _) = Checkpoint::open(signed.note.as_bytes(), &[self.verifier()]).unwrap();
        assert_eq!(
            checkpoint.origin(),
            format!("audit.example.com/{}", self.org.id)
        );
        checkpoint
    }
}

fn events(n: u64) -> Vec<NewEvent> {
    (0..n)
        .map(|idx| NewEvent {
            action_key: ["channel_created", "token_revoked"][idx as usize % 2].into(),
            actor_email: Some(format!("user{}@example.com", idx % 4)),
            target_name: Some(format!("ch-{idx}")),
            ..NewEvent::default()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_s_proof_verifies_against_the_signed_checkpoint() {
    let env = Env::new().await;
    for n in [1, 299, 400] {
        env.ingest(n).await;
    }
    let checkpoint = env.checkpoint().await;
    assert_eq!(checkpoint.size(), 700);
    for event in env.events().await {
        let proof = env
            .service
            .inclusion_proof(&env.org, event.id)
            .await
            .unwrap();
        let leaf = Hash(leaf_hash(&event));
        assert_eq!(proof.leaf, leaf);
        assert_eq!(proof.index, event.seq - 1);
        assert_eq!(proof.checkpoint.size, 700);
        verify_inclusion(&leaf, proof.index, 700, &proof.hashes, &checkpoint.root())
            .unwrap_or_else(|e| panic!("seq {}: {e}", event.seq));
        // Any changed hash of the path fails it.
        for changed in 0..proof.hashes.len() {
            let mut hashes = proof.hashes.clone();
            hashes[changed].0[7] ^= 1;
            assert!(
                verify_inclusion(&leaf, proof.index, 700, &hashes, &checkpoint.root()).is_err(),
                "seq {}: a path with hash {changed} changed verified",
                event.seq
            );
        }
        if event.seq % 97 == 0 {
            // The text form carries the same path and the same signed checkpoint.
            let text = proof.to_tlog_proof();
            assert!(text.starts_with(&format!(
                "c2sp.org/tlog-proof@v1\nindex {}\n",
                event.seq - 1
            )));
            assert!(text.ends_with(&proof.checkpoint.note));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiles_read_back_give_the_signed_root() {
    let env = Env::new().await;
    env.ingest(600).await;
    let checkpoint = env.checkpoint().await;
    let mut reader = TileHashReader::new();
    for tile in tiles_for_size(checkpoint.size()) {
        let bytes = env.service.tile(&env.org, &tile.path()).await.unwrap();
        reader.insert(tile, &bytes).unwrap();
    }
    assert_eq!(
        tree_root(&reader, checkpoint.size()).unwrap(),
        checkpoint.root()
    );
    // A tile of a smaller tree is a prefix of the bigger one's.
    let small = env.service.tile(&env.org, "tile/0/002.p/3").await.unwrap();
    let big = env.service.tile(&env.org, "tile/0/002.p/88").await.unwrap();
    assert_eq!(small[..], big[..3 * 32]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_are_linked_by_consistency_proofs() {
    let env = Env::new().await;
    env.ingest(300).await;
    let first = env.checkpoint().await;
    // Asked again without new events, the same note.
    let again = env.service.tree_checkpoint(&env.org).await.unwrap();
    assert_eq!(again.size, 300);
    env.ingest(123).await;
    let second = env.checkpoint().await;
    assert_eq!(second.size(), 423);
    let (proof, signed) = env
        .service
        .consistency_proof(&env.org, 300, None)
        .await
        .unwrap();
    assert_eq!(signed.size, 423);
    verify_consistency(300, 423, &first.root(), &second.root(), &proof).unwrap();
    let mut wrong = proof.clone();
    wrong[0].0[0] ^= 1;
    assert!(verify_consistency(300, 423, &first.root(), &second.root(), &wrong).is_err());
    // Between any two sizes the log has had.
    for old in (1..=423).step_by(37) {
        let (proof, _) = env
            .service
            .consistency_proof(&env.org, old, Some(423))
            .await
            .unwrap();
        let old_root = tree_root_of(&env, old).await;
        verify_consistency(old, 423, &old_root, &second.root(), &proof)
            .unwrap_or_else(|e| panic!("{old} → 423: {e}"));
    }
    // Sizes the log never had, or out of order, are refused.
    assert!(matches!(
        env.service.consistency_proof(&env.org, 10, Some(424)).await,
        Err(LogError::NotFound(_))
    ));
    assert!(matches!(
        env.service.consistency_proof(&env.org, 20, Some(10)).await,
        Err(LogError::Invalid(_))
    ));
}

/// The root of the organization's tree at `size`, from its leaves (independently of tiles).
async fn tree_root_of(env: &Env, size: u64) -> Hash {
    let mut frontier = auditlog_core::merkle::Frontier::new();
    for event in env.events().await.iter().take(size as usize) {
        frontier.append(Hash(leaf_hash(event)));
    }
    frontier.root()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_rewritten_under_the_store_is_never_signed() {
    let env = Env::new().await;
    env.ingest(300).await;
    let signed = env.checkpoint().await;
    // Rewrite level-0 tiles behind the service's back, as someone with the file could.
    let db = rusqlite::Connection::open(env.dir.path().join("data").join("auditlog.db")).unwrap();
    let zero_tile = |idx: i64| {
        db.execute(
            "UPDATE tiles SET hashes = zeroblob(length(hashes)) WHERE level = 0 AND idx = ?1
             AND org_key = (SELECT org_key FROM orgs WHERE name = 'acme')",
            [idx],
        )
        .unwrap()
    };
    // The first tile's leaves: the root does not read them (the level-1 tile holds their
    // subtree's hash), but an inclusion proof of one of its events no longer verifies, so it
    // is refused rather than served.
    assert_eq!(zero_tile(0), 1);
    let first = env.events().await[0].id;
    assert!(matches!(
        env.service.inclusion_proof(&env.org, first).await,
        Err(LogError::Inconsistent(_))
    ));
    // The partial tile at the right edge: the next appends build on the rewritten hashes, and
    // the tree they make does not extend the signed one.
    // (The partial level-0 tile is its events' `leaf` column.)
    let zeroed = db
        .execute(
            "UPDATE log SET leaf = zeroblob(32) WHERE seq > 256
             AND org_key = (SELECT org_key FROM orgs WHERE name = 'acme')",
            [],
        )
        .unwrap();
    assert_eq!(zeroed, 44);
    drop(db);
    appends_to_the_rewritten_tree_are_not_signed(&env, &signed).await;
}

/// Five more events on a tree rewritten under the store: signing refuses (their tree does
/// not extend the signed one), and no checkpoint beyond `signed` is kept.
async fn appends_to_the_rewritten_tree_are_not_signed(env: &Env, signed: &Checkpoint) {
    env.ingest(5).await;
    match env.service.tree_checkpoint(&env.org).await {
        Err(LogError::Inconsistent(message)) => {
            assert!(message.contains("does not extend"), "{message}")
        }
        other => panic!("a rewritten tree was signed: {other:?}"),
    }
    let (size, _) = env
        .store
        .latest_tree_checkpoint(env.org.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        size,
        signed.size(),
        "no checkpoint was kept for the rewritten tree"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewritten_upper_tile_is_caught_though_proofs_keep_it_hashed() {
    // Proofs keep the tiles above level 0 hashed in the service; what is signed must still be
    // what the store holds.
    let env = Env::new().await;
    env.ingest(600).await;
    let signed = env.checkpoint().await;
    let events = env.events().await;
    for event in events.iter().step_by(97) {
        env.service
            .inclusion_proof(&env.org, event.id)
            .await
            .expect("a proof, keeping the level-1 tile hashed");
    }
    let db = rusqlite::Connection::open(env.dir.path().join("data").join("auditlog.db")).unwrap();
    let zeroed = db
        .execute(
            "UPDATE tiles SET hashes = zeroblob(length(hashes)) WHERE level = 1 AND idx = 0
             AND org_key = (SELECT org_key FROM orgs WHERE name = 'acme')",
            [],
        )
        .unwrap();
    assert_eq!(zeroed, 1, "the level-1 tile of a 600-event tree");
    drop(db);
    // Five more events leave the level-1 tile at the width the proofs kept.
    appends_to_the_rewritten_tree_are_not_signed(&env, &signed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tile_paths_are_checked() {
    let env = Env::new().await;
    env.ingest(10).await;
    for bad in [
        "tile/0/1",
        "tile/0/x001",
        "tile/0/000.p/0",
        "tile/0/000.p/256",
        "../etc",
    ] {
        assert!(
            matches!(
                env.service.tile(&env.org, bad).await,
                Err(LogError::Invalid(_))
            ),
            "{bad}"
        );
    }
    for absent in [
        "tile/0/000",
        "tile/0/000.p/11",
        "tile/1/000.p/1",
        "tile/0/001.p/1",
    ] {
        assert!(
            matches!(
                env.service.tile(&env.org, absent).await,
                Err(LogError::NotFound(_))
            ),
            "{absent}"
        );
    }
    assert!(matches!(
        env.service.tile(&env.org, "tile/entries/000.p/10").await,
        Err(LogError::NotFound(_))
    ));
    assert_eq!(
        env.service
            .tile(&env.org, "tile/0/000.p/10")
            .await
            .unwrap()
            .len(),
        320
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_enters_the_log_only_as_commitments_and_erasing_it_keeps_every_proof() {
    let env = Env::with_service(|service| service.with_personal_meta(&["phone".to_string()])).await;
    let (service, store, org) = (&env.service, &env.store, &env.org);
    let event = NewEvent {
        action_key: "organization_user_added".into(),
        actor_email: Some("alice@example.com".into()),
        target_email: Some("carol@example.com".into()),
        target_name: Some("Carol".into()),
        ip_address: Some("203.0.113.9".into()),
        meta: Some(serde_json::json!({"phone": "+1 555 0100", "role": "admin"})),
        ..NewEvent::default()
    };
    service.ingest(Some(org), vec![event]).await.unwrap();
    let stored = store.events_by_seq(org.id, 0, 10).await.unwrap();
    let stored = stored.last().unwrap().clone();
    assert_eq!(stored.body.personal_meta, ["phone"]);
    assert!(matches!(stored.entry, auditlog_core::Entry::V2(_)));
    // The leaf holds none of the values.
    let auditlog_core::Entry::V2(salts) = &stored.entry else {
        unreachable!()
    };
    let commitments = auditlog_core::entry::commitments(&stored.body, salts).unwrap();
    let mut canonical = Vec::new();
    auditlog_core::entry::encode_canonical_v2(&stored, &commitments, &mut canonical);
    let canonical = String::from_utf8(canonical).unwrap();
    for value in ["alice@", "carol@", "Carol", "203.0.113.9", "555"] {
        assert!(!canonical.contains(value), "{value} in {canonical}");
    }
    // Erased, the event still has its leaf: the proof the service gives verifies for it.
    let mut erased = stored.clone();
    auditlog_core::entry::erase(&mut erased, &["target_email", "target_name", "meta.phone"])
        .unwrap();
    assert!(erased.body.target_email.is_none() && !erased.body.meta.contains_key("phone"));
    let proof = service.inclusion_proof(org, stored.id).await.unwrap();
    verify_inclusion(
        &Hash(leaf_hash(&erased)),
        proof.index,
        proof.checkpoint.size,
        &proof.hashes,
        &proof.checkpoint.root,
    )
    .expect("the erased event's proof");
}
