//! Runs the store conformance suite against PostgreSQL, one fresh schema per test, and the
//! behaviour only this backend has: replicas starting and appending at once, the refusal of
//! a newer schema, monthly partitions, the migration that builds the Merkle trees of events
//! already stored.
//!
//! The database comes from `AUDITLOG_TEST_DATABASE_URL`
//! (`postgres://auditlog:auditlog@127.0.0.1:5432/auditlog_test`); each test creates a schema
//! there and drops it when it ends. Without the variable every test says it was skipped and
//! passes, except under `CI=true`, where PostgreSQL is required and the tests fail.

use std::collections::HashSet;
use std::sync::Arc;

use auditlog_core::chain::{self, ChainVerifier};
use auditlog_core::merkle::Hash;
use auditlog_core::query::Filter;
use auditlog_core::tree;
use auditlog_core::{ActorType, EventBody, Timestamp};
use auditlog_postgres::schema::SCHEMA_VERSION;
use auditlog_postgres::PostgresStore;
use auditlog_store::{Append, Count, NewOrg, Org, Store, StoreError};
use auditlog_testkit::postgres::{Isolation, TestDatabase};
use auditlog_testkit::{available, Unavailable};
use uuid::Uuid;

/// A fresh schema of its own for one test, or why there is none.
async fn schema() -> Result<TestDatabase, Unavailable> {
    TestDatabase::create("auditlog_test", Isolation::Schema).await
}

/// A store on the schema; connecting again opens the same data, as another replica would.
async fn connect(schema: &TestDatabase) -> PostgresStore {
    PostgresStore::connect(&schema.url())
        .await
        .expect("connect to the test schema")
}

// Without a database every case says it was skipped (and fails under `CI=true`).
auditlog_conformance::conformance_tests!(async {
    match schema().await {
        Ok(schema) => Ok((Arc::new(connect(&schema).await) as Arc<dyn Store>, schema)),
        Err(unavailable) => Err(unavailable),
    }
});

// ---------------------------------------------------------------------------------------
// What only this backend does.
// ---------------------------------------------------------------------------------------

fn event(action: &str, occurred_at: &str, step: u64) -> EventBody {
    let mut meta = serde_json::Map::new();
    meta.insert("step".to_string(), serde_json::json!(step));
    EventBody {
        action_key: action.to_string(),
        action_verb: None,
        actor_id: Some("u-alice".to_string()),
        actor_email: Some("alice@example.com".to_string()),
        actor_name: Some("Alice".to_string()),
        actor_type: ActorType::User,
        target_id: None,
        target_email: None,
        target_name: None,
        target_type: None,
        service_name: Some("console".to_string()),
        ip_address: None,
        user_agent: None,
        request_id: None,
        meta,
        occurred_at: Timestamp::parse(occurred_at).expect("a test timestamp"),
        personal_meta: Vec::new(),
        extensions: Default::default(),
    }
}

async fn make_org(store: &dyn Store, name: &str) -> Org {
    store
        .create_org(NewOrg {
            name: name.to_string(),
            display_name: name.to_string(),
            audit_logs_enabled: true,
        })
        .await
        .expect("create_org")
}

/// Walks the organization's chain and checks it verifies; returns how many events it has.
async fn verify_chain(store: &dyn Store, org_id: Uuid) -> u64 {
    let mut verifier = ChainVerifier::new(org_id);
    let mut after = 0;
    loop {
        let page = store
            .events_by_seq(org_id, after, 500)
            .await
            .expect("events_by_seq");
        for event in &page {
            verifier
                .push(event)
                .unwrap_or_else(|e| panic!("the chain does not verify: {e}"));
        }
        match page.last() {
            Some(last) => after = last.seq,
            None => break,
        }
    }
    let head = store.chain_head(org_id).await.expect("chain_head");
    assert_eq!((head.seq, head.hash), verifier.head(), "chain_head");
    head.seq
}

/// A store whose database was migrated by a newer auditlog refuses to open it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_newer_schema() {
    let Some(schema) = available(schema().await) else {
        return;
    };
    drop(connect(&schema).await);
    schema
        .client()
        .await
        .execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&(SCHEMA_VERSION + 1)],
        )
        .await
        .expect("record a newer version");
    match PostgresStore::connect(&schema.url()).await {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION))
        }
        other => panic!("connecting to a newer schema gave {other:?}, expected SchemaTooNew"),
    }
}

/// Replicas starting at once migrate one after another, and replicas appending to the same
/// organizations at once keep each chain linear, with ids increasing with `seq`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_start_and_append_at_once() {
    const REPLICAS: usize = 4;
    const BATCHES: u64 = 20;
    let Some(schema) = available(schema().await) else {
        return;
    };
    let url = schema.url();
    let starting: Vec<_> = (0..REPLICAS)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PostgresStore::connect(&url).await })
        })
        .collect();
    let mut replicas: Vec<Arc<PostgresStore>> = Vec::new();
    for start in starting {
        let store = start
            .await
            .expect("a starting replica panicked")
            .unwrap_or_else(|e| panic!("a replica starting beside others failed: {e}"));
        replicas.push(Arc::new(store));
    }
    let a = make_org(&*replicas[0], "replicas-a").await;
    let b = make_org(&*replicas[1], "replicas-b").await;
    let appending: Vec<_> = replicas
        .iter()
        .enumerate()
        .map(|(replica, store)| {
            let (store, a, b) = (Arc::clone(store), a.id, b.id);
            tokio::spawn(async move {
                for batch_idx in 0..BATCHES {
                    let step = replica as u64 * 1000 + batch_idx;
                    let batch = vec![
                        Append {
                            org_id: a,
                            body: event("channel_created", "2026-03-02T10:00:00Z", step),
                        },
                        Append {
                            org_id: b,
                            body: event("channel_deleted", "2026-04-02T10:00:00Z", step),
                        },
                        Append {
                            org_id: a,
                            body: event("token_created", "2026-03-03T10:00:00Z", step),
                        },
                    ];
                    store.append(batch).await.expect("append");
                }
            })
        })
        .collect();
    for task in appending {
        task.await.expect("an appending replica panicked");
    }
    let expected = REPLICAS as u64 * BATCHES;
    assert_eq!(verify_chain(&*replicas[2], a.id).await, 2 * expected);
    assert_eq!(verify_chain(&*replicas[3], b.id).await, expected);
    let events = replicas[0]
        .events_by_seq(a.id, 0, 1000)
        .await
        .expect("events_by_seq");
    for pair in events.windows(2) {
        assert!(
            pair[0].id < pair[1].id,
            "ids do not increase with seq across replicas: seq {} has {}, seq {} has {}",
            pair[0].seq,
            pair[0].id,
            pair[1].seq,
            pair[1].id
        );
    }
}

async fn partitions(client: &tokio_postgres::Client) -> HashSet<String> {
    client
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'events'::regclass",
            &[],
        )
        .await
        .expect("list partitions")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

async fn rows_in_default(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM events_default", &[])
        .await
        .expect("count events_default")
        .get(0)
}

/// Appends create the months they touch; events that landed in the default partition (a
/// month whose partition could not be made in time) move to the month's partition once it
/// is made, and nothing is lost or reordered on the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_go_to_monthly_partitions() {
    let Some(schema) = available(schema().await) else {
        return;
    };
    let store = connect(&schema).await;
    let org = make_org(&store, "partitions").await;
    let times = [
        "1970-01-01T00:00:00Z",
        "2025-12-31T23:59:59.999Z",
        "2026-01-01T00:00:00Z",
        "2026-03-15T12:00:00Z",
    ];
    let batch = times
        .iter()
        .enumerate()
        .map(|(step, at)| Append {
            org_id: org.id,
            body: event("channel_created", at, step as u64),
        })
        .collect();
    store.append(batch).await.expect("append");
    let admin = schema.client().await;
    let made = partitions(&admin).await;
    for table in [
        "events_default",
        "events_1970_01",
        "events_2025_12",
        "events_2026_01",
        "events_2026_03",
    ] {
        assert!(made.contains(table), "{table} is not a partition: {made:?}");
    }
    assert_eq!(rows_in_default(&admin).await, 0, "events in events_default");

    // March's partition "could not be made": its events sit in the default partition.
    admin
        .batch_execute(
            "ALTER TABLE events DETACH PARTITION events_2026_03;
             INSERT INTO events SELECT * FROM events_2026_03;
             DROP TABLE events_2026_03;",
        )
        .await
        .expect("move March into the default partition");
    assert_eq!(rows_in_default(&admin).await, 1);

    // Another replica (which has not seen March yet) appends to March.
    let replica = connect(&schema).await;
    replica
        .append(vec![Append {
            org_id: org.id,
            body: event("channel_deleted", "2026-03-20T08:00:00Z", 9),
        }])
        .await
        .expect("append to March");
    assert!(partitions(&admin).await.contains("events_2026_03"));
    assert_eq!(
        rows_in_default(&admin).await,
        0,
        "March's events stayed in events_default"
    );
    assert_eq!(verify_chain(&replica, org.id).await, 5);
    let march = Filter {
        from: Some(Timestamp::parse("2026-03-01T00:00:00Z").unwrap()),
        to: Some(Timestamp::parse("2026-03-31T23:59:59.999Z").unwrap()),
        ..Filter::default()
    };
    assert_eq!(
        replica
            .count(org.id, &march, u64::MAX)
            .await
            .expect("count"),
        Count { n: 2, exact: true }
    );
}

/// A purge that empties a month's partition of every row (any organization's) detaches and
/// drops it, months with rows left keep theirs, and an event of the dropped month appended
/// afterwards still finds a home.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_drops_the_partitions_it_empties() {
    let Some(schema) = available(schema().await) else {
        return;
    };
    let store = connect(&schema).await;
    let org = make_org(&store, "purged").await;
    // 512 events in January 2020 (two full tiles), then 10 in March 2020 (kept: the tree's
    // partial tile and head).
    let old = (0..522)
        .map(|i| Append {
            org_id: org.id,
            body: event(
                "channel_created",
                if i < 512 {
                    "2020-01-15T10:00:00Z"
                } else {
                    "2020-03-15T10:00:00Z"
                },
                i,
            ),
        })
        .collect();
    store.append(old).await.expect("append");
    let admin = schema.client().await;
    assert!(partitions(&admin).await.contains("events_2020_01"));
    let cutoff = Timestamp::from_millis(Timestamp::now().as_millis() + 60_000).unwrap();
    let mut purged = 0;
    loop {
        let batch = store.purge(org.id, cutoff, 200).await.expect("purge");
        if batch.events == 0 {
            break;
        }
        purged += batch.events;
    }
    assert_eq!(purged, 512);
    let left = partitions(&admin).await;
    assert!(
        !left.contains("events_2020_01"),
        "January was emptied: {left:?}"
    );
    assert!(
        left.contains("events_2020_03"),
        "March keeps its events: {left:?}"
    );
    assert_eq!(
        store
            .count(org.id, &Filter::default(), u64::MAX)
            .await
            .expect("count"),
        Count { n: 10, exact: true }
    );
    // A late event of January: the month's partition is made again.
    store
        .append(vec![Append {
            org_id: org.id,
            body: event("channel_deleted", "2020-01-20T10:00:00Z", 999),
        }])
        .await
        .expect("append to a dropped month");
    assert!(partitions(&admin).await.contains("events_2020_01"));
    assert_eq!(rows_in_default(&admin).await, 0);
}

/// Appends `n` events to the organization in batches of at most 1,000.
async fn append_n(store: &dyn Store, org_id: Uuid, n: u64) {
    let mut step = 0;
    while step < n {
        let batch = (step..n.min(step + 1000))
            .map(|i| Append {
                org_id,
                body: event("channel_created", "2026-03-02T10:00:00Z", i),
            })
            .collect::<Vec<_>>();
        step += batch.len() as u64;
        store.append(batch).await.expect("append");
    }
}

/// Checks that the stored tiles of the organization are exactly those of a tree built at
/// once from all its events' leaves (`tree::append(0, &[], …)`): every expected tile with the
/// expected bytes, and no other row.
async fn assert_tiles_match_events(store: &dyn Store, schema: &TestDatabase, org_id: Uuid) {
    let mut leaves = Vec::new();
    let mut after = 0;
    loop {
        let page = store
            .events_by_seq(org_id, after, 1000)
            .await
            .expect("events_by_seq");
        leaves.extend(page.iter().map(|e| Hash(chain::leaf_hash(e))));
        match page.last() {
            Some(last) => after = last.seq,
            None => break,
        }
    }
    let expected = tree::append(0, &[], &leaves).expect("a tree from nothing");
    let keys: Vec<(u8, u64)> = expected
        .iter()
        .map(|(tile, _)| (tile.level(), tile.index()))
        .collect();
    let stored = store.read_tiles(org_id, &keys).await.expect("read_tiles");
    for ((tile, bytes), stored) in expected.iter().zip(&stored) {
        assert_eq!(
            stored.as_ref(),
            Some(bytes),
            "tile {} of a tree of {} leaves",
            tile.path(),
            leaves.len()
        );
    }
    let rows: i64 = schema
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM tree_tiles WHERE org_id = $1",
            &[&org_id],
        )
        .await
        .expect("count tiles")
        .get(0);
    assert_eq!(
        rows as usize,
        expected.len(),
        "stored tiles beyond the tree"
    );
}

/// A database whose events were stored before the tree existed (schema version 1) gets every
/// organization's tiles from its events when it is migrated, across more than one chunk of
/// the walk, and appends then grow those tiles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrating_builds_the_tree_of_stored_events() {
    let Some(schema) = available(schema().await) else {
        return;
    };
    let store = connect(&schema).await;
    let big = make_org(&store, "backfill-big").await;
    let small = make_org(&store, "backfill-small").await;
    let empty = make_org(&store, "backfill-empty").await;
    append_n(&store, big.id, 5_300).await;
    append_n(&store, small.id, 3).await;
    drop(store);
    // Back to version 1 with the events kept: what versions 2 to 4 add, and their records,
    // go.
    schema
        .client()
        .await
        .batch_execute(
            "DROP TABLE tree_tiles, tree_checkpoints, legal_holds, org_retention;
             ALTER TABLE events DROP COLUMN salts, DROP COLUMN extensions,
                 DROP COLUMN impersonator_id, DROP COLUMN impersonator_email,
                 DROP COLUMN outcome;
             DELETE FROM schema_migrations WHERE version >= 2;",
        )
        .await
        .expect("undo version 2");

    let store = connect(&schema).await;
    assert_tiles_match_events(&store, &schema, big.id).await;
    assert_tiles_match_events(&store, &schema, small.id).await;
    assert_tiles_match_events(&store, &schema, empty.id).await;
    append_n(&store, big.id, 7).await;
    append_n(&store, empty.id, 257).await;
    assert_tiles_match_events(&store, &schema, big.id).await;
    assert_tiles_match_events(&store, &schema, empty.id).await;
}

/// Events stored without tiles after the migration (by a replica still running the build
/// before, during a rolling upgrade) are covered by the next append's transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_behind_its_chain_catches_up() {
    let Some(schema) = available(schema().await) else {
        return;
    };
    let store = connect(&schema).await;
    let org = make_org(&store, "catch-up").await;
    append_n(&store, org.id, 300).await;
    let admin = schema.client().await;
    admin
        .batch_execute("CREATE TABLE saved_tiles AS SELECT * FROM tree_tiles")
        .await
        .expect("save the tiles of 300 events");
    append_n(&store, org.id, 500).await;
    // The tiles as if those 500 events had been stored by the build without tiles.
    admin
        .batch_execute(
            "DELETE FROM tree_tiles;
             INSERT INTO tree_tiles SELECT * FROM saved_tiles;",
        )
        .await
        .expect("put back the tiles of 300 events");
    append_n(&store, org.id, 1).await;
    assert_tiles_match_events(&store, &schema, org.id).await;
}
