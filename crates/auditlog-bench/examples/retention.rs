//! Purge and erasure on one large organization, each beside the one-table SQLite baseline
//! doing the same with plain `DELETE` and `UPDATE`, and the ingest latency of appends that run
//! while they do (against the same appends with nothing else running).
//!
//! - Load: `N` events (1,000,000 by default) of the demo's year of history, all in one
//!   organization; one person is the actor of every 200th and the target of every 200th
//!   offset by 100 (10,000 events at 1M).
//! - Idle ingest: batches of 100 every 10 ms for 10 s: p50 and p99 of an append.
//! - Erasure: that person erased (`Service::erase_subject`) while the same ingest runs; then
//!   the time until the index is rebuilt. Baseline: `UPDATE … SET` their columns to NULL.
//! - Purge: everything recorded before it began (the loaded year and the appends of the
//!   phases before) purged (`Service::purge_expired` with a one-day retention, as if a day had
//!   passed) while the same ingest runs; every event appended meanwhile must survive.
//!   Baseline: `DELETE` of the same rows in batches of 2,000.
//!
//! ```text
//! cargo run --release -p auditlog-bench --example retention -- [N]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use auditlog_core::entry::Subject;
use auditlog_core::validate::validate;
use auditlog_core::{Catalog, EventBody, Timestamp};
use auditlog_demo::{History, HistorySpec};
use auditlog_service::access::Actor;
use auditlog_service::grant::Operator;
use auditlog_service::Service;
use auditlog_sqlite::SqliteStore;
use auditlog_store::{Append, NewOrg, Store};
use rusqlite::{params, Connection};
use tokio::sync::watch;

const SUBJECT_EMAIL: &str = "erase.me@example.test";
const SUBJECT_ID: &str = "user-erase-me";
const BASELINE_SCHEMA: &str = "
CREATE TABLE events (
    id INTEGER PRIMARY KEY, org INTEGER NOT NULL, occurred_at INTEGER NOT NULL,
    action TEXT NOT NULL, actor_id TEXT, actor_email TEXT, actor_name TEXT,
    target_id TEXT, target_email TEXT, target_name TEXT, ip TEXT, user_agent TEXT, meta TEXT);
CREATE INDEX events_by_time ON events(org, occurred_at, id);
CREATE INDEX events_by_action ON events(org, action, occurred_at);
CREATE INDEX events_by_actor ON events(org, actor_email, occurred_at);
CREATE INDEX events_by_target ON events(org, target_id, occurred_at);";

/// Event `i` of the loaded history, with the person put in where the doc says.
fn body(i: u64, event: EventBody) -> EventBody {
    let mut body = event;
    if i.is_multiple_of(200) {
        body.actor_id = Some(SUBJECT_ID.into());
        body.actor_email = Some(SUBJECT_EMAIL.into());
        body.actor_name = Some("Erase Me".into());
    } else if i % 200 == 100 {
        body.target_id = Some(SUBJECT_ID.into());
        body.target_email = Some(SUBJECT_EMAIL.into());
        body.target_name = Some("Erase Me".into());
    }
    body
}

/// p50 and p99 of `samples`, in milliseconds.
fn percentiles(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i].as_secs_f64() * 1e3
    };
    (at(0.50), at(0.99))
}

/// Appends a batch of 100 every 10 ms until `stop` says so; answers each append's latency and
/// how many events were acknowledged.
async fn ingest_while(
    mut append: impl FnMut(u64) -> Duration,
    mut stop: watch::Receiver<bool>,
) -> (Vec<Duration>, u64) {
    let mut samples = Vec::new();
    let mut n = 0u64;
    loop {
        samples.push(append(n));
        n += 100;
        tokio::select! {
            _ = stop.changed() => return (samples, n),
            () = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
    }
}

/// Fresh events for the concurrent ingest (after the loaded year).
fn fresh(history: &mut History, catalog: &Catalog, now: Timestamp, n: usize) -> Vec<EventBody> {
    history.extend(n as u64);
    history
        .by_ref()
        .take(n)
        .map(|(_, event)| validate(event, catalog, now).expect("valid"))
        .collect()
}

#[tokio::main]
async fn main() {
    // The service's own account of where an erasure's time went (`AUDITLOG_LOG=debug` for
    // the store's too).
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AUDITLOG_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(1_000_000, |n| n.parse().expect("N is a number"));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let catalog = Catalog::builtin();
    let mut history = History::new(HistorySpec::new(n, 42));
    let now = history.safe_now().plus_millis(400 * 86_400_000);
    println!("retention benchmark: {n} events in one organization");

    // --- Load both.
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).expect("open the store"));
    let org = store
        .create_org(NewOrg {
            name: "big".into(),
            display_name: "Big".into(),
            audit_logs_enabled: true,
        })
        .await
        .expect("an organization");
    let baseline = Connection::open(dir.path().join("baseline.db")).expect("baseline");
    baseline
        .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
        .expect("pragmas");
    baseline.execute_batch(BASELINE_SCHEMA).expect("schema");
    let mut baseline = baseline;
    let mut loaded = 0u64;
    while loaded < n {
        let bodies: Vec<EventBody> = history
            .by_ref()
            .take(10_000)
            .enumerate()
            .map(|(k, (_, event))| {
                body(
                    loaded + k as u64,
                    validate(event, &catalog, now).expect("valid"),
                )
            })
            .collect();
        let tx = baseline.transaction().expect("tx");
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO events (org, occurred_at, action, actor_id, actor_email,
                     actor_name, target_id, target_email, target_name, ip, user_agent, meta)
                     VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )
                .expect("insert");
            for b in &bodies {
                insert
                    .execute(params![
                        b.occurred_at.as_millis(),
                        b.action_key,
                        b.actor_id,
                        b.actor_email,
                        b.actor_name,
                        b.target_id,
                        b.target_email,
                        b.target_name,
                        b.ip_address.map(|ip| ip.to_string()),
                        b.user_agent,
                        serde_json::to_string(&b.meta).ok(),
                    ])
                    .expect("a row");
            }
        }
        tx.commit().expect("commit");
        loaded += bodies.len() as u64;
        let batch = bodies
            .into_iter()
            .map(|body| Append {
                org_id: org.id,
                body,
            })
            .collect();
        store.append(batch).await.expect("append");
    }
    store.wait_indexed().await.expect("indexed");
    println!("loaded {loaded} events into each");
    let service = Service::new(
        store.clone(),
        catalog.clone(),
        ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
    );
    let operator = Operator::at_the_command_line();
    let granted = service
        .operator_org(&operator, "big")
        .await
        .expect("lookup")
        .expect("the organization");

    // The same ingest for every phase: auditlog appends through the store, the baseline
    // inserts through a second connection.
    let extra = Arc::new(std::sync::Mutex::new(fresh(
        &mut history,
        &catalog,
        now,
        200_000,
    )));
    let appender = |store: Arc<dyn Store>, org_id, extra: Arc<std::sync::Mutex<Vec<EventBody>>>| {
        move |k: u64| {
            let bodies: Vec<EventBody> = {
                let extra = extra.lock().unwrap();
                extra[(k as usize) % (extra.len() - 100)..][..100].to_vec()
            };
            let batch = bodies
                .into_iter()
                .map(|body| Append { org_id, body })
                .collect();
            let started = Instant::now();
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current()
                    .block_on(store.append(batch))
                    .expect("append")
            });
            started.elapsed()
        }
    };
    let baseline_appender = |path: std::path::PathBuf| {
        let conn = Connection::open(path).expect("a second connection");
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA busy_timeout = 60000;")
            .expect("pragmas");
        move |k: u64| {
            let started = Instant::now();
            let tx = conn.unchecked_transaction().expect("tx");
            for i in 0..100 {
                tx.execute(
                    "INSERT INTO events (org, occurred_at, action, actor_email) VALUES (1, ?1, 'channel_created', 'live@example.test')",
                    params![(k + i) as i64],
                )
                .expect("insert");
            }
            tx.commit().expect("commit");
            started.elapsed()
        }
    };
    let run = |label: &str, samples: &mut Vec<Duration>, appended: u64| {
        let (p50, p99) = percentiles(samples);
        println!("  {label}: {appended} events appended beside it, append p50 {p50:.2} ms, p99 {p99:.2} ms");
    };

    // --- Idle ingest.
    for (label, is_baseline) in [("auditlog idle", false), ("baseline idle", true)] {
        let (tx, rx) = watch::channel(false);
        let task = if is_baseline {
            tokio::spawn(ingest_while(
                baseline_appender(dir.path().join("baseline.db")),
                rx,
            ))
        } else {
            tokio::spawn(ingest_while(
                appender(store.clone(), org.id, extra.clone()),
                rx,
            ))
        };
        tokio::time::sleep(Duration::from_secs(10)).await;
        tx.send(true).unwrap();
        let (mut samples, appended) = task.await.unwrap();
        run(label, &mut samples, appended);
    }

    // --- Erasure.
    println!("erasure of one person ({} events):", n / 100);
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(ingest_while(
        appender(store.clone(), org.id, extra.clone()),
        rx,
    ));
    let started = Instant::now();
    let subject = Subject {
        email: Some(SUBJECT_EMAIL.into()),
        id: None,
    };
    let erasure = service
        .erase_subject(&granted, &Actor::operator(), subject)
        .await
        .expect("erase");
    let erased_in = started.elapsed();
    store.wait_indexed().await.expect("indexed");
    let reindexed_in = started.elapsed();
    tx.send(true).unwrap();
    let (mut samples, appended) = task.await.unwrap();
    println!(
        "  auditlog: {} events, {} fields in {:.2} s ({:.0} events/s); index rebuilt after {:.1} s",
        erasure.events,
        erasure.fields,
        erased_in.as_secs_f64(),
        erasure.events as f64 / erased_in.as_secs_f64(),
        reindexed_in.as_secs_f64()
    );
    run("auditlog during the erasure", &mut samples, appended);
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(ingest_while(
        baseline_appender(dir.path().join("baseline.db")),
        rx,
    ));
    let started = Instant::now();
    let updated = tokio::task::block_in_place(|| {
        let a = baseline
            .execute(
                "UPDATE events SET actor_email = NULL, actor_name = NULL, ip = NULL, user_agent = NULL
                 WHERE org = 1 AND actor_email = ?1",
                [SUBJECT_EMAIL],
            )
            .expect("update");
        let t = baseline
            .execute(
                "UPDATE events SET target_email = NULL, target_name = NULL
                 WHERE org = 1 AND target_id = ?1",
                [SUBJECT_ID],
            )
            .expect("update");
        a + t
    });
    let baseline_erased = started.elapsed();
    tx.send(true).unwrap();
    let (mut samples, appended) = task.await.unwrap();
    println!(
        "  baseline: {updated} rows updated in {:.2} s ({:.0} events/s)",
        baseline_erased.as_secs_f64(),
        updated as f64 / baseline_erased.as_secs_f64()
    );
    run("baseline during the erasure", &mut samples, appended);

    // --- Purge of the loaded year.
    println!(
        "purge of everything recorded before it began (the loaded year and the appends since):"
    );
    service
        .set_retention(&granted, &Actor::operator(), Some(1))
        .await
        .expect("retention");
    let cutoff = Timestamp::now();
    let head_before = store.chain_head(org.id).await.expect("head").seq;
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(ingest_while(
        appender(store.clone(), org.id, extra.clone()),
        rx,
    ));
    let started = Instant::now();
    let report = service
        .purge_expired(&operator, cutoff.plus_millis(86_400_000))
        .await
        .expect("purge");
    let purged_in = started.elapsed();
    tx.send(true).unwrap();
    let (mut samples, appended) = task.await.unwrap();
    let purged: u64 = report.purged.iter().map(|(_, n)| n).sum();
    let head_after = store.chain_head(org.id).await.expect("head").seq;
    let remaining = store
        .count(org.id, &Default::default(), u64::MAX)
        .await
        .expect("count")
        .n;
    assert_eq!(
        remaining,
        head_after - purged,
        "every event past the purge is there"
    );
    assert!(
        purged <= head_before,
        "nothing appended during the purge went"
    );
    println!(
        "  auditlog: {purged} events in {:.2} s ({:.0} events/s, batches of 2,000 with 20 ms pauses)",
        purged_in.as_secs_f64(),
        purged as f64 / purged_in.as_secs_f64()
    );
    run("auditlog during the purge", &mut samples, appended);
    let verified = service
        .verify_org(org.id, &|_| {})
        .await
        .expect("the remaining chain verifies");
    println!(
        "  auditlog: the remaining {} events verify from the purged hash",
        verified.events
    );

    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(ingest_while(
        baseline_appender(dir.path().join("baseline.db")),
        rx,
    ));
    let started = Instant::now();
    let last_id: i64 = baseline
        .query_row("SELECT max(id) FROM events", [], |row| row.get(0))
        .expect("the last row");
    let deleted = tokio::task::block_in_place(|| {
        let mut deleted = 0;
        loop {
            let n = baseline
                .execute(
                    "DELETE FROM events WHERE id IN
                     (SELECT id FROM events WHERE org = 1 AND id <= ?1 ORDER BY id LIMIT 2000)",
                    [last_id],
                )
                .expect("delete");
            if n == 0 {
                return deleted;
            }
            deleted += n;
        }
    });
    let baseline_purged = started.elapsed();
    tx.send(true).unwrap();
    let (mut samples, appended) = task.await.unwrap();
    println!(
        "  baseline: {deleted} rows in {:.2} s ({:.0} events/s, batches of 2,000)",
        baseline_purged.as_secs_f64(),
        deleted as f64 / baseline_purged.as_secs_f64()
    );
    run("baseline during the purge", &mut samples, appended);
    store.close();
}
