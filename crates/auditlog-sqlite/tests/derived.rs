//! Derived state (the index) against the log it is built from: reads merge the unindexed
//! tail exactly, at every split between indexed and unindexed events, and an index that is
//! deleted or reset is rebuilt to the same answers.

use std::sync::Arc;

use auditlog_core::query::{Column, Combine, Condition, Filter, Order, Position, Query, Start};
use auditlog_core::{ActorType, Event, EventBody, Timestamp};
use auditlog_sqlite::{SqliteOptions, SqliteStore};
use auditlog_store::{Append, NewOrg, Store};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const ACTIONS: [&str; 4] = [
    "channel_created",
    "token_created",
    "authentication_success",
    "policy_updated",
];
const PEOPLE: [&str; 5] = ["ada", "grace", "linus", "barbara", "edsger"];

/// A body with a random action, actor and time within a few days; many share a time.
fn body(rng: &mut SmallRng) -> EventBody {
    let person = PEOPLE[rng.gen_range(0..PEOPLE.len())];
    let mut meta = serde_json::Map::new();
    meta.insert(
        "channel".into(),
        format!("chan-{}", rng.gen_range(0..6)).into(),
    );
    EventBody {
        action_key: ACTIONS[rng.gen_range(0..ACTIONS.len())].into(),
        action_verb: None,
        actor_id: Some(format!("u-{person}")),
        actor_email: Some(format!("{person}@example.com")),
        actor_name: Some(person.to_uppercase()),
        actor_type: ActorType::User,
        target_id: Some(format!("t-{}", rng.gen_range(0..20))),
        target_email: None,
        target_name: Some(format!("target {}", rng.gen_range(0..20))),
        target_type: Some("channel".into()),
        service_name: Some("repo".into()),
        ip_address: None,
        user_agent: Some("agent/1".into()),
        request_id: None,
        meta,
        // Three days, in steps of 20 minutes: plenty of equal timestamps, several days.
        occurred_at: Timestamp::from_millis(1_760_000_000_000 + rng.gen_range(0..216) * 1_200_000)
            .unwrap(),
        personal_meta: Vec::new(),
        extensions: Default::default(),
    }
}

fn filters() -> Vec<Filter> {
    let from = Timestamp::from_millis(1_760_000_000_000 + 50 * 1_200_000).unwrap();
    let to = Timestamp::from_millis(1_760_000_000_000 + 170 * 1_200_000).unwrap();
    let actions = Condition::AnyOf {
        column: Column::ActionKey,
        values: vec!["token_created".into(), "policy_updated".into()],
    };
    let actor = Condition::AnyOf {
        column: Column::Actor,
        values: vec!["grace@example.com".into(), "u-linus".into()],
    };
    vec![
        Filter::default(),
        Filter {
            from: Some(from),
            to: Some(to),
            ..Filter::default()
        },
        Filter {
            conditions: vec![actions.clone()],
            ..Filter::default()
        },
        Filter {
            conditions: vec![actions.clone(), actor.clone()],
            combine: Combine::And,
            from: Some(from),
            to: None,
        },
        Filter {
            conditions: vec![actions, actor],
            combine: Combine::Or,
            ..Filter::default()
        },
        Filter {
            conditions: vec![Condition::Text("chan-3".into())],
            ..Filter::default()
        },
        Filter {
            conditions: vec![
                Condition::Text("grace".into()),
                Condition::AnyOf {
                    column: Column::ActionKey,
                    values: vec!["authentication_success".into()],
                },
            ],
            combine: Combine::Or,
            ..Filter::default()
        },
    ]
}

/// What the store must answer: the model's events that match, in order.
fn expected(all: &[Event], filter: &Filter, order: Order) -> Vec<(Timestamp, u64)> {
    let mut matching: Vec<(Timestamp, u64)> = all
        .iter()
        .filter(|e| filter.matches(e))
        .map(|e| (e.body.occurred_at, e.seq))
        .collect();
    matching.sort_unstable();
    if order == Order::NewestFirst {
        matching.reverse();
    }
    matching
}

fn keys(events: &[Event]) -> Vec<(Timestamp, u64)> {
    events.iter().map(|e| (e.body.occurred_at, e.seq)).collect()
}

/// Every page of `limit` by keyset cursor, from the first to the last.
async fn walk(
    store: &SqliteStore,
    org: uuid::Uuid,
    filter: &Filter,
    order: Order,
    limit: u32,
) -> Vec<(Timestamp, u64)> {
    let mut walked = Vec::new();
    let mut start = Start::Offset(0);
    loop {
        let query = Query {
            filter: filter.clone(),
            order,
            limit,
            start,
        };
        let page = store.query(org, &query).await.unwrap();
        let Some(last) = page.last() else { break };
        start = Start::After(Position::of(last));
        walked.extend(keys(&page));
    }
    walked
}

/// Checks pages by offset and by cursor, counts, daily counts and facets against the model.
async fn check_reads(store: &SqliteStore, org: uuid::Uuid, all: &[Event], when: &str) {
    for (f, filter) in filters().iter().enumerate() {
        for order in [Order::NewestFirst, Order::OldestFirst] {
            let want = expected(all, filter, order);
            for offset in [0u64, 1, 7, 59, 60, 61, 119, 120, 121, 239, 240, 400] {
                for limit in [1u32, 9, 50] {
                    let query = Query {
                        filter: filter.clone(),
                        order,
                        limit,
                        start: Start::Offset(offset),
                    };
                    let got = keys(&store.query(org, &query).await.unwrap());
                    let end = (offset as usize + limit as usize).min(want.len());
                    let slice = want.get(offset as usize..end).unwrap_or(&[]);
                    assert_eq!(
                        got, slice,
                        "{when}: filter {f}, {order:?}, offset {offset}, limit {limit}"
                    );
                }
            }
            // Keyset pages walk the whole answer without skipping or repeating.
            let walked = walk(store, org, filter, order, 7).await;
            assert_eq!(walked, want, "{when}: filter {f}, {order:?}, keyset walk");
        }
        let n = expected(all, filter, Order::OldestFirst).len() as u64;
        let count = store.count(org, filter, u64::MAX).await.unwrap();
        assert_eq!(
            (count.n, count.exact),
            (n, true),
            "{when}: filter {f}, count"
        );
        let days = store.daily_counts(org, filter).await.unwrap();
        assert_eq!(
            days.iter().map(|(_, n)| n).sum::<u64>(),
            n,
            "{when}: filter {f}, days"
        );
        let facets = store.facets(org, filter, 100).await.unwrap();
        let mut by_action = std::collections::BTreeMap::<String, u64>::new();
        for event in all.iter().filter(|e| filter.matches(e)) {
            *by_action.entry(event.body.action_key.clone()).or_default() += 1;
        }
        let got: std::collections::BTreeMap<String, u64> = facets.actions.into_iter().collect();
        assert_eq!(got, by_action, "{when}: filter {f}, facets");
        assert_eq!(
            facets.actors.iter().map(|a| a.count).sum::<u64>(),
            n,
            "{when}: filter {f}, actor facets"
        );
    }
}

async fn create_org(store: &SqliteStore, name: &str) -> uuid::Uuid {
    store
        .create_org(NewOrg {
            name: name.into(),
            display_name: name.into(),
            audit_logs_enabled: true,
        })
        .await
        .unwrap()
        .id
}

async fn append_batches(
    store: &SqliteStore,
    org: uuid::Uuid,
    rng: &mut SmallRng,
    n: usize,
) -> Vec<Event> {
    let mut stored = Vec::new();
    while stored.len() < n {
        let size = rng.gen_range(1..40).min(n - stored.len());
        let batch = (0..size)
            .map(|_| Append {
                org_id: org,
                body: body(rng),
            })
            .collect();
        stored.extend(store.append(batch).await.unwrap());
    }
    stored
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_merge_the_unindexed_tail_at_every_split() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        background_indexing: false,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(dir.path(), options).unwrap();
    let org = create_org(&store, "acme").await;
    // Another organization's events interleave in the log and must never show.
    let other = create_org(&store, "globex").await;
    let mut rng = SmallRng::seed_from_u64(7);
    let mut all = append_batches(&store, org, &mut rng, 120).await;
    append_batches(&store, other, &mut rng, 50).await;

    check_reads(&store, org, &all, "nothing indexed").await;
    assert_eq!(store.index_lag().await.unwrap().events, 170);
    assert_eq!(store.index_now().await.unwrap(), 170);
    assert_eq!(store.index_lag().await.unwrap().events, 0);
    check_reads(&store, org, &all, "all indexed").await;

    // Half indexed, half in the tail.
    all.extend(append_batches(&store, org, &mut rng, 120).await);
    check_reads(&store, org, &all, "half indexed").await;
    store.index_now().await.unwrap();
    check_reads(&store, org, &all, "all indexed again").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_or_reset_index_is_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = SmallRng::seed_from_u64(11);
    let (org, all) = {
        let store = SqliteStore::open(dir.path()).unwrap();
        let org = create_org(&store, "acme").await;
        let all = append_batches(&store, org, &mut rng, 240).await;
        store.wait_indexed().await.unwrap();
        check_reads(&store, org, &all, "indexed").await;
        store.close();
        (org, all)
    };
    for suffix in ["", "-wal", "-shm"] {
        let path = dir
            .path()
            .join(format!("{}{suffix}", auditlog_sqlite::INDEX_FILE));
        if path.exists() {
            std::fs::remove_file(path).unwrap();
        }
    }
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    check_reads(&store, org, &all, "index deleted").await;
    store.wait_indexed().await.unwrap();
    check_reads(&store, org, &all, "rebuilt after deletion").await;

    store.rebuild_derived().await.unwrap();
    check_reads(&store, org, &all, "reset online").await;
    store.wait_indexed().await.unwrap();
    assert_eq!(store.index_lag().await.unwrap().events, 0);
    check_reads(&store, org, &all, "rebuilt online").await;
}

/// A search matching more events than it first probes for walks the organization's blocks
/// of positions by time, and still answers exactly: every offset and keyset page equals the
/// model's, for events mostly in time order with stragglers far out of it, in both orders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_common_word_is_searched_block_by_block_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        background_indexing: false,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(dir.path(), options).unwrap();
    let org = create_org(&store, "acme").await;
    let mut rng = SmallRng::seed_from_u64(5);
    let mut all = Vec::new();
    let base = 1_760_000_000_000i64;
    for chunk in 0..10 {
        let batch: Vec<Append> = (0..1_000)
            .map(|i| {
                let n = chunk * 1_000 + i;
                let mut event = body(&mut rng);
                // Mostly in time order (many equal instants); one in 50 from long before, and
                // one in 7 from anywhere in the history, so that blocks overlap in time.
                let at = if n % 50 == 7 {
                    base - rng.gen_range(0..1_000_000_000)
                } else if n % 7 == 3 {
                    base + rng.gen_range(0..3_400) * 1_000
                } else {
                    base + (n / 3) * 1_000
                };
                event.occurred_at = Timestamp::from_millis(at).unwrap();
                if n % 5 == 0 {
                    event.target_name = Some("quiet corner".into());
                }
                Append {
                    org_id: org,
                    body: event,
                }
            })
            .collect();
        all.extend(store.append(batch).await.unwrap());
    }
    store.index_now().await.unwrap();
    for text in ["target", "quiet"] {
        let filter = Filter {
            conditions: vec![Condition::Text(text.into())],
            ..Filter::default()
        };
        for order in [Order::NewestFirst, Order::OldestFirst] {
            let want = expected(&all, &filter, order);
            assert!(want.len() > 1_000, "{text} must be common");
            for offset in [0u64, 1, 999, want.len() as u64 / 2, want.len() as u64 - 3] {
                let query = Query {
                    filter: filter.clone(),
                    order,
                    limit: 50,
                    start: Start::Offset(offset),
                };
                let got = keys(&store.query(org, &query).await.unwrap());
                let end = (offset as usize + 50).min(want.len());
                assert_eq!(
                    got,
                    want[offset as usize..end],
                    "{text}, {order:?}, offset {offset}"
                );
            }
            let walked = walk(&store, org, &filter, order, 500).await;
            assert_eq!(walked, want, "{text}, {order:?}, keyset walk");
            let count = store.count(org, &filter, 100).await.unwrap();
            assert_eq!((count.n, count.exact), (100, false), "a capped count");
        }
    }
}

/// Pages walk an organization's days a few at a time: over a history of many days, with
/// days of no events between, keyset and offset pages in both orders equal the model's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_walk_many_days_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        background_indexing: false,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(dir.path(), options).unwrap();
    let org = create_org(&store, "acme").await;
    let mut rng = SmallRng::seed_from_u64(17);
    let day_ms = 86_400_000i64;
    let batch: Vec<Append> = (0..600)
        .map(|_| {
            let mut event = body(&mut rng);
            // One of 80 days, every third day empty, any time of the day.
            let day = rng.gen_range(0..80) / 3 * 3;
            let at = 1_760_000_000_000 + day * day_ms + rng.gen_range(0..day_ms);
            event.occurred_at = Timestamp::from_millis(at).unwrap();
            Append {
                org_id: org,
                body: event,
            }
        })
        .collect();
    let all = store.append(batch).await.unwrap();
    store.index_now().await.unwrap();
    let filter = Filter::default();
    for order in [Order::NewestFirst, Order::OldestFirst] {
        let want = expected(&all, &filter, order);
        let walked = walk(&store, org, &filter, order, 7).await;
        assert_eq!(walked, want, "{order:?}, keyset walk");
        for offset in [0u64, 13, 299, 590] {
            let query = Query {
                filter: filter.clone(),
                order,
                limit: 20,
                start: Start::Offset(offset),
            };
            let got = keys(&store.query(org, &query).await.unwrap());
            let end = (offset as usize + 20).min(want.len());
            assert_eq!(
                got,
                want[offset as usize..end],
                "{order:?}, offset {offset}"
            );
        }
    }
}
