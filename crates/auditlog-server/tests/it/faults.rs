//! Faults from outside the service (docs/operations.md, "When the disk fills or the database
//! goes away"): the data directory's disk fills up, the export directory's disk fills up,
//! PostgreSQL restarts in the middle of ingest. In each, a request the store could not serve
//! is a 503 with `Retry-After` that stored nothing, every acknowledged event is kept, and the
//! service recovers by itself once the fault is gone.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use auditlog_store::Store;
use auditlog_testkit::faults::{OwnCluster, SmallDisk, StopMode};
use serde_json::{json, Value};

use crate::{Backend, Reply, Server};

/// What a batch of ingest came to, as its client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// 201: every event of the batch must be stored.
    Acknowledged,
    /// 503: none of it may be stored.
    Refused,
    /// The connection failed: either is allowed, but not half of the batch.
    Unknown,
}

/// `n` events of batch `batch`, each naming its batch and place in `request_id`.
fn batch_body(batch: usize, n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| {
                json!({
                    "action_key": "channel_created",
                    "actor_id": format!("client-{}", batch % 7),
                    "target_name": format!("channel-{batch}-{i}"),
                    "request_id": format!("b{batch}-{i}"),
                    "meta": {"padding": "x".repeat(200)},
                })
            })
            .collect(),
    )
}

/// Checks a refusal: 503, `Retry-After`, and a detail a client can act on.
fn assert_clean_refusal(reply: &Reply, says: &str) {
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert!(reply.header("retry-after").is_some(), "no Retry-After");
    let detail = reply.json()["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(detail.contains(says), "{detail:?} does not say {says:?}");
}

/// Reads every stored event of `org` and checks it against what the clients were told:
/// every acknowledged batch whole, no refused batch at all, no batch in part.
async fn assert_matches_outcomes(
    store: &dyn Store,
    org: uuid::Uuid,
    outcomes: &BTreeMap<usize, (Outcome, usize)>,
) -> u64 {
    let mut stored: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    let mut after = 0;
    loop {
        let events = store.events_by_seq(org, after, 1000).await.expect("read");
        let Some(last) = events.last() else { break };
        after = last.seq;
        for event in &events {
            let Some(id) = event.body.request_id.as_deref() else {
                continue; // the service's own records
            };
            let (batch, place) = id[1..].split_once('-').expect("b<batch>-<i>");
            stored
                .entry(batch.parse().unwrap())
                .or_default()
                .insert(place.parse().unwrap());
        }
    }
    for (batch, (outcome, size)) in outcomes {
        let places = stored.get(batch).map_or(0, BTreeSet::len);
        match outcome {
            Outcome::Acknowledged => {
                assert_eq!(places, *size, "acknowledged batch {batch} lost events")
            }
            Outcome::Refused => assert_eq!(places, 0, "refused batch {batch} was stored"),
            Outcome::Unknown => assert!(
                places == 0 || places == *size,
                "batch {batch} is half-stored ({places} of {size})"
            ),
        }
    }
    after
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_ingest_with_503_keeps_reads_and_recovers_by_itself() {
    let Some(disk) = auditlog_testkit::available(SmallDisk::mount(64 << 20)) else {
        return;
    };
    let dir = tempfile::tempdir_in(disk.path()).expect("data directory on the small disk");
    let server = Server::start_in(Backend::Sqlite, dir, |config| {
        config.rate_limit_per_second = 0
    })
    .await;
    let org = server.org("acme", true).await;
    let ingest = server.ingest_key(Some(&org)).await;
    let reader = server.admin(&org, "admin@acme.test").await;
    let send = |batch: usize, n: usize| {
        server
            .post("/api/audit-logs/events")
            .bearer(&ingest)
            .json(&batch_body(batch, n))
            .send()
    };

    let mut outcomes = BTreeMap::new();
    for batch in 0..20 {
        send(batch, 50).await.expect(201);
        outcomes.insert(batch, (Outcome::Acknowledged, 50));
    }
    let filled = disk.fill();
    assert!(filled > 0);

    // Keep sending until the store runs out of room (SQLite may first reuse the WAL's pages).
    let mut batch = 20;
    let mut refused = 0;
    while refused < 5 {
        assert!(batch < 2000, "the store never ran out of room");
        let reply = send(batch, 50).await;
        if reply.status == 201 {
            outcomes.insert(batch, (Outcome::Acknowledged, 50));
        } else {
            assert_clean_refusal(&reply, "disk holding the store is full");
            outcomes.insert(batch, (Outcome::Refused, 50));
            refused += 1;
        }
        batch += 1;
    }

    // Reads keep working, and show exactly what was acknowledged.
    let acknowledged: usize = outcomes
        .values()
        .filter(|(o, _)| *o == Outcome::Acknowledged)
        .map(|(_, n)| n)
        .sum();
    let listed = server
        .get("/api/audit-logs?limit=1&q=action_key:channel_created")
        .bearer(&reader)
        .org("acme")
        .send()
        .await
        .expect(200)
        .json();
    assert_eq!(
        listed["total_count"].as_u64(),
        Some(acknowledged as u64),
        "{listed}"
    );
    assert_matches_outcomes(server.service.store().as_ref(), org.id, &outcomes).await;

    // Space returns: the next requests succeed without a restart.
    disk.free();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let reply = send(batch, 50).await;
        if reply.status == 201 {
            outcomes.insert(batch, (Outcome::Acknowledged, 50));
            break;
        }
        assert_clean_refusal(&reply, "full");
        outcomes.insert(batch, (Outcome::Refused, 50));
        assert!(
            tokio::time::Instant::now() < deadline,
            "no recovery after space returned"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        batch += 1;
    }
    for extra in 1..=5 {
        send(batch + extra, 50).await.expect(201);
        outcomes.insert(batch + extra, (Outcome::Acknowledged, 50));
    }
    let head = assert_matches_outcomes(server.service.store().as_ref(), org.id, &outcomes).await;
    let verified = server
        .service
        .verify_org(org.id, &|_| {})
        .await
        .expect("chain intact");
    assert_eq!(verified.events, head);
    drop(server);
    drop(disk);
}

on_each_backend! {
    an_export_that_runs_out_of_space_fails_its_job_and_leaves_no_file =>
        an_export_that_runs_out_of_space_fails_its_job_and_leaves_no_file_sqlite,
        an_export_that_runs_out_of_space_fails_its_job_and_leaves_no_file_postgres;
}

async fn an_export_that_runs_out_of_space_fails_its_job_and_leaves_no_file(backend: Backend) {
    let Some(disk) = auditlog_testkit::available(SmallDisk::mount(256 << 10)) else {
        return;
    };
    let exports = disk.path().join("exports");
    let server = Server::start_with(backend, |config| {
        config.rate_limit_per_second = 0;
        config.export_dir = exports.clone();
    })
    .await;
    let org = server.org("acme", true).await;
    let ingest = server.ingest_key(Some(&org)).await;
    let admin = server.admin(&org, "admin@acme.test").await;
    // About 2,000 events of ~400 bytes each: several times the disk.
    for batch in 0..10 {
        server
            .post("/api/audit-logs/events")
            .bearer(&ingest)
            .json(&batch_body(batch, 200))
            .send()
            .await
            .expect(201);
    }
    let created = server
        .post("/api/audit-logs/export")
        .bearer(&admin)
        .org("acme")
        .json(&json!({}))
        .send()
        .await
        .expect(200)
        .json();
    let job = created["id"].as_str().expect("job id").to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        let status = server
            .get(&format!("/api/audit-logs/export/{job}"))
            .bearer(&admin)
            .org("acme")
            .send()
            .await
            .expect(200)
            .json();
        if !matches!(status["status"].as_str(), Some("pending" | "running")) {
            break status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the job never ended: {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status["status"], "failed", "{status}");
    assert!(
        status["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("disk holding export files is full")),
        "{status}"
    );
    assert!(status["download_url"].is_null(), "{status}");
    let left: Vec<_> = std::fs::read_dir(&exports)
        .expect("the export directory")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "the failed export left files: {left:?}");
    drop(server);
    drop(disk);
}

/// Each batch a client sent: what became of it, its size, and the status (0: no answer).
type ClientLog = BTreeMap<usize, (Outcome, usize, u16)>;

/// Ingest clients that run until told to stop, each recording what became of every batch.
struct Clients {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<ClientLog>>,
}

impl Clients {
    /// `n` clients; their batches are numbered from `first_batch` on.
    fn start(server: &Server, ingest: &str, n: usize, first_batch: usize) -> Clients {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..n)
            .map(|client| {
                let stop = stop.clone();
                let server_call = server.post("/api/audit-logs/events").bearer(ingest);
                tokio::spawn(async move {
                    let mut outcomes = BTreeMap::new();
                    let mut batch = first_batch + client;
                    while !stop.load(Ordering::Relaxed) {
                        let call = server_call.clone().json(&batch_body(batch, 10));
                        let outcome = match call.try_send().await {
                            Ok(reply) if reply.status == 201 => (Outcome::Acknowledged, 10, 201),
                            // A connection lost during COMMIT: either outcome is allowed.
                            Ok(reply)
                                if reply.status == 503
                                    && reply.text().contains("may or may not have been stored") =>
                            {
                                (Outcome::Unknown, 10, reply.status)
                            }
                            Ok(reply) => {
                                if reply.status == 503 {
                                    assert!(reply.header("retry-after").is_some());
                                    tokio::time::sleep(Duration::from_millis(50)).await;
                                }
                                (Outcome::Refused, 10, reply.status)
                            }
                            Err(_) => (Outcome::Unknown, 10, 0),
                        };
                        outcomes.insert(batch, outcome);
                        batch += n;
                    }
                    outcomes
                })
            })
            .collect();
        Clients { stop, tasks }
    }

    async fn finish(self) -> ClientLog {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = BTreeMap::new();
        for task in self.tasks {
            all.extend(task.await.expect("client task"));
        }
        all
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_mid_ingest_fails_requests_cleanly_and_loses_nothing() {
    let Some(cluster) = auditlog_testkit::available(OwnCluster::start()) else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(
        auditlog_postgres::PostgresStore::connect(&cluster.url())
            .await
            .expect("connect to the test's own cluster"),
    );
    let server = Server::start_on(store.clone(), |config| config.rate_limit_per_second = 0).await;
    let org = server.org("acme", true).await;
    let ingest = server.ingest_key(Some(&org)).await;

    let mut outcomes = BTreeMap::new();
    for (round, mode) in [StopMode::Fast, StopMode::Immediate]
        .into_iter()
        .enumerate()
    {
        let clients = Clients::start(&server, &ingest, 4, round * 1_000_000);
        tokio::time::sleep(Duration::from_millis(500)).await;
        tokio::task::block_in_place(|| cluster.stop(mode));
        // While the database is down, /readyz says so and ingest is refused cleanly.
        let ready = server.get("/readyz").send().await;
        assert_eq!(ready.status, 503, "{mode:?}: {}", ready.text());
        let refused = server
            .post("/api/audit-logs/events")
            .bearer(&ingest)
            .json(&batch_body(10_000_000 + round, 1))
            .send()
            .await;
        assert_clean_refusal(&refused, "database is unreachable");
        tokio::time::sleep(Duration::from_millis(500)).await;
        tokio::task::block_in_place(|| cluster.start_again());
        // The pool reconnects by itself: ingest works again without a restart of auditlog.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let reply = server
                .post("/api/audit-logs/events")
                .bearer(&ingest)
                .json(&json!({"action_key": "channel_created", "actor_id": "probe"}))
                .send()
                .await;
            if reply.status == 201 {
                break;
            }
            assert_clean_refusal(&reply, "database");
            assert!(
                tokio::time::Instant::now() < deadline,
                "{mode:?}: no reconnection"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server.get("/readyz").send().await.expect(200);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let round_outcomes = clients.finish().await;
        let statuses: BTreeSet<u16> = round_outcomes.values().map(|(_, _, s)| *s).collect();
        assert!(
            statuses.iter().all(|s| [0, 201, 503].contains(s)),
            "{mode:?}: statuses other than 201 and 503: {statuses:?}"
        );
        let acknowledged = round_outcomes
            .values()
            .filter(|(o, _, _)| *o == Outcome::Acknowledged)
            .count();
        assert!(acknowledged > 0, "{mode:?}: nothing was acknowledged");
        outcomes.extend(round_outcomes.iter().map(|(b, (o, n, _))| (*b, (*o, *n))));
        outcomes.insert(10_000_000 + round, (Outcome::Refused, 1));
        // Read back over a fresh pool: what the server acknowledged is on disk, not cached.
        let fresh = auditlog_postgres::PostgresStore::connect(&cluster.url())
            .await
            .expect("connect again");
        let head = assert_matches_outcomes(&fresh, org.id, &outcomes).await;
        let verified = server
            .service
            .verify_org(org.id, &|_| {})
            .await
            .expect("chain intact");
        assert_eq!(verified.events, head, "{mode:?}");
    }
    drop(server);
    drop(cluster);
}
