//! The `auditlog` binary on PostgreSQL, end to end: three `serve` replicas on one database
//! take concurrent ingest while one of them is SIGKILLed, and `migrate` moves an embedded
//! store into PostgreSQL with its chains intact (same ids, seqs and hashes, same signed
//! checkpoints), re-verified.
//!
//! The server comes from `AUDITLOG_TEST_DATABASE_URL`
//! (`postgres://auditlog:auditlog@127.0.0.1:5432/auditlog_test`); each test creates a
//! database of its own (`auditlog_replicas_<random>`, or a schema when the role may not
//! create databases) and drops it when it ends. Without the variable each test says it was
//! skipped and passes, except under `CI=true`, where PostgreSQL is required.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use auditlog_testkit::available;
use auditlog_testkit::http::{percent_encode, send_blocking, Request, Response};
use auditlog_testkit::postgres::{Isolation, TestDatabase};
use auditlog_testkit::process::Run;
use serde_json::{json, Value};
use tokio_postgres::NoTls;
use uuid::Uuid;

/// Settings the environment could inject into the binary; the tests pass what they mean.
const AMBIENT: [&str; 10] = [
    "AUDITLOG_DATA_DIR",
    "AUDITLOG_DATABASE_URL",
    "AUDITLOG_CATALOG",
    "AUDITLOG_PRESET",
    "AUDITLOG_ACCEPT_UNKNOWN_ACTIONS",
    "AUDITLOG_LISTEN",
    "AUDITLOG_PUBLIC_URL",
    "AUDITLOG_RATE_LIMIT",
    "AUDITLOG_BODY_LIMIT",
    "AUDITLOG_EXPORT_TTL_HOURS",
];

// ---------------------------------------------------------------------------------------
// A database per test

/// A database of the test's own (`auditlog_replicas_<random>`, or a schema when the role may
/// not create databases), dropped when the test ends; `None` after saying the test is
/// skipped when no server is configured (under `CI=true` that fails the test instead).
fn test_database() -> Option<TestDatabase> {
    available(TestDatabase::create_blocking(
        "auditlog_replicas",
        Isolation::Database,
    ))
}

// ---------------------------------------------------------------------------------------
// Running the binary

/// The binary with the ambient settings removed and quiet logs.
fn auditlog() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_auditlog"));
    for name in AMBIENT {
        command.env_remove(name);
    }
    command.env("AUDITLOG_LOG", "warn");
    command
}

/// Runs `auditlog --data-dir DIR [--database-url URL] ARGS…` to completion.
fn run(data_dir: &Path, database_url: Option<&str>, args: &[&str]) -> Run {
    let mut command = auditlog();
    command.arg("--data-dir").arg(data_dir);
    if let Some(url) = database_url {
        command.args(["--database-url", url]);
    }
    Run::of(&format!("auditlog {args:?}"), command.args(args))
}

/// The secret printed on the line after the line starting with `header`
/// (`ingest key …`, `token …`).
#[track_caller]
fn secret_after(stdout: &str, header: &str) -> String {
    let mut lines = stdout.lines();
    lines
        .by_ref()
        .find(|line| line.starts_with(header))
        .unwrap_or_else(|| panic!("no {header:?} line in {stdout:?}"));
    lines
        .next()
        .unwrap_or_else(|| panic!("no secret after {header:?} in {stdout:?}"))
        .trim()
        .to_string()
}

/// `events --org ORG --format jsonl` of every event, parsed.
fn events_jsonl(data_dir: &Path, database_url: Option<&str>, org: &str) -> Vec<Value> {
    let run = run(
        data_dir,
        database_url,
        &[
            "events", "--org", org, "--format", "jsonl", "--limit", "100000",
        ],
    );
    run.expect_code(0);
    run.stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
        .collect()
}

/// A running `auditlog serve`, killed when dropped.
struct Server {
    child: Child,
    address: SocketAddr,
    /// Everything it wrote to stderr, for failure messages.
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `serve` on a port the system picks and waits until it answers `/healthz`.
    fn start(data_dir: &Path, database_url: &str) -> Server {
        let mut child = auditlog()
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--database-url", database_url])
            .args(["serve", "--listen", "127.0.0.1:0", "--rate-limit", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start auditlog serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (found, address) = mpsc::channel();
        let sink = log.clone();
        // Drains stderr for the server's whole life, so that it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("auditlog listening on http://") {
                    let address = rest.split_whitespace().next().unwrap_or_default();
                    let _ = found.send(address.parse::<SocketAddr>());
                }
                let mut log = sink.lock().expect("log lock");
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut server = Server {
            child,
            // Replaced below; the guard must exist first so that a failed start is killed.
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
        };
        match address.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(address)) => server.address = address,
            other => panic!(
                "auditlog serve did not start ({other:?}):\n{}",
                server.log.lock().expect("log lock")
            ),
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match http(server.address, "GET", "/healthz", &[], b"") {
                Ok(response) if response.status == 200 => break,
                _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                other => panic!("{} is not healthy: {other:?}", server.address),
            }
        }
        server
    }

    /// SIGKILLs it (`Child::kill` sends SIGKILL on Unix) and reaps it.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------------------
// Requests, through the test kit's HTTP/1.1 client

/// One request on a fresh connection (`Connection: close`); the tests run on plain threads,
/// so it blocks.
fn http(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let request = Request::new(method, path)
        .headers(headers)
        .raw_body(body)
        .timeout(Duration::from_secs(20));
    send_blocking(address, &request)
}

// ---------------------------------------------------------------------------------------
// Replicas under concurrent ingest, one SIGKILLed

const REPLICAS: usize = 3;
const CLIENTS: usize = 6;
const REQUESTS_PER_CLIENT: usize = 150;

/// Sends one request's events with an idempotency key, trying the replicas from `first` on
/// (skipping those known dead) until one acknowledges; returns the acknowledged ids and how
/// many attempts failed. A retry carries the same key and body, so an append that committed
/// on a replica killed before it answered is replayed, not stored twice.
fn send(
    addresses: &[SocketAddr],
    dead: &[AtomicBool],
    first: usize,
    key: &str,
    idempotency_key: &str,
    body: &[u8],
) -> (Vec<Uuid>, usize) {
    let authorization = format!("Bearer {key}");
    let headers = [
        ("Authorization", authorization.as_str()),
        ("X-Org-Name", "acme"),
        ("Content-Type", "application/json"),
        ("Idempotency-Key", idempotency_key),
    ];
    let mut failures = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    for attempt in 0.. {
        let replica = (first + attempt) % addresses.len();
        if dead[replica].load(Ordering::SeqCst) {
            continue;
        }
        match http(
            addresses[replica],
            "POST",
            "/api/audit-logs/events",
            &headers,
            body,
        ) {
            Ok(response) if response.status == 201 => {
                let ids = response.json()["ids"]
                    .as_array()
                    .expect("ids")
                    .iter()
                    .map(|id| Uuid::parse_str(id.as_str().expect("an id")).expect("a UUID"))
                    .collect();
                return (ids, failures);
            }
            // 4xx other than a conflict is the test's own mistake: retrying cannot help.
            Ok(response) if (400..500).contains(&response.status) && response.status != 409 => {
                panic!(
                    "replica {replica} refused the request: {} {}",
                    response.status,
                    String::from_utf8_lossy(&response.body)
                )
            }
            _ => {
                failures += 1;
                assert!(
                    Instant::now() < deadline,
                    "no replica acknowledged {idempotency_key} within 30 s"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    unreachable!("the loop only ends by returning")
}

#[test]
fn replicas_share_one_chain_through_a_sigkill() {
    let Some(database) = test_database() else {
        return;
    };
    let url = database.url();
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temporary directory");
    let data_dir = dir.path().join("data");

    // Bootstrap through the CLI against the same database. It also creates the signing key
    // in the shared data directory, before the replicas start and look for it.
    run(
        &data_dir,
        Some(&url),
        &["org", "create", "acme", "--enroll"],
    )
    .expect_code(0);
    let created = run(
        &data_dir,
        Some(&url),
        &["ingest-key", "create", "--org", "acme"],
    );
    created.expect_code(0);
    let ingest_key = secret_after(&created.stdout, "ingest key ");
    run(
        &data_dir,
        Some(&url),
        &[
            "user",
            "add",
            "reader@example.com",
            "--org",
            "acme",
            "--role",
            "admin",
        ],
    )
    .expect_code(0);
    let created = run(
        &data_dir,
        Some(&url),
        &[
            "token",
            "create",
            "--user",
            "reader@example.com",
            "--org",
            "acme",
        ],
    );
    created.expect_code(0);
    let api_token = secret_after(&created.stdout, "token ");
    // `user add` records itself in the organization's log: those events are in the chain too.
    let bootstrap_events = events_jsonl(&data_dir, Some(&url), "acme").len();

    let mut servers: Vec<Server> = (0..REPLICAS)
        .map(|_| Server::start(&data_dir, &url))
        .collect();
    let addresses: Arc<Vec<SocketAddr>> = Arc::new(servers.iter().map(|s| s.address).collect());
    let dead: Arc<Vec<AtomicBool>> =
        Arc::new((0..REPLICAS).map(|_| AtomicBool::new(false)).collect());
    let acknowledged = Arc::new(AtomicUsize::new(0));

    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (addresses, dead, acknowledged) =
                (addresses.clone(), dead.clone(), acknowledged.clone());
            let key = ingest_key.clone();
            std::thread::spawn(move || {
                let mut ids = Vec::new();
                let mut failures = 0;
                for request in 0..REQUESTS_PER_CLIENT {
                    // One to three events per request: single events and small batches.
                    let events: Vec<Value> = (0..1 + (client + request) % 3)
                        .map(|k| {
                            json!({
                                "action_key": "channel_created",
                                "actor_email": format!("client{client}@example.com"),
                                "target_name": format!("channel-{client}-{request}-{k}"),
                                "meta": {"client": client, "request": request, "k": k},
                            })
                        })
                        .collect();
                    let body = serde_json::to_vec(&events).expect("JSON");
                    let (stored, failed) = send(
                        &addresses,
                        &dead,
                        client + request,
                        &key,
                        &format!("client{client}-request{request}"),
                        &body,
                    );
                    assert_eq!(stored.len(), events.len(), "one id per event");
                    ids.extend(stored);
                    failures += failed;
                    acknowledged.fetch_add(1, Ordering::SeqCst);
                }
                (ids, failures)
            })
        })
        .collect();

    // Half-way through, replica 0 dies without a chance to finish anything.
    let total_requests = CLIENTS * REQUESTS_PER_CLIENT;
    let deadline = Instant::now() + Duration::from_secs(40);
    while acknowledged.load(Ordering::SeqCst) < total_requests / 2 {
        assert!(Instant::now() < deadline, "ingest is too slow");
        std::thread::sleep(Duration::from_millis(5));
    }
    servers[0].kill();
    dead[0].store(true, Ordering::SeqCst);
    let killed_at = acknowledged.load(Ordering::SeqCst);

    let mut acknowledged_ids = Vec::new();
    let mut failed_attempts = 0;
    for client in clients {
        let (ids, failures) = client.join().expect("a client thread");
        acknowledged_ids.extend(ids);
        failed_attempts += failures;
    }
    let acknowledged_set: HashSet<Uuid> = acknowledged_ids.iter().copied().collect();
    assert_eq!(
        acknowledged_set.len(),
        acknowledged_ids.len(),
        "two requests were acknowledged with the same id"
    );

    // Every event, read back through a surviving replica, page by page.
    let survivor = addresses[1];
    let authorization = format!("Bearer {api_token}");
    let headers = [
        ("Authorization", authorization.as_str()),
        ("X-Org-Name", "acme"),
    ];
    let mut stored: Vec<(Uuid, u64, String)> = Vec::new();
    let mut path = "/api/audit-logs?limit=1000".to_string();
    loop {
        let response = http(survivor, "GET", &path, &headers, b"").expect("list events");
        assert_eq!(
            response.status,
            200,
            "{}",
            String::from_utf8_lossy(&response.body)
        );
        let page = response.json();
        for item in page["items"].as_array().expect("items") {
            stored.push((
                Uuid::parse_str(item["id"].as_str().expect("id")).expect("a UUID"),
                item["seq"].as_u64().expect("seq"),
                item["action_key"].as_str().expect("action_key").to_string(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!(
                    "/api/audit-logs?limit=1000&cursor={}",
                    percent_encode(cursor)
                )
            }
            None => break,
        }
    }

    // Exactly the acknowledged events (plus the bootstrap's own), each once.
    let mut seen = HashMap::new();
    for (id, seq, _) in &stored {
        if let Some(other) = seen.insert(*id, *seq) {
            panic!("event {id} is stored twice (seq {other} and {seq})");
        }
    }
    for id in &acknowledged_ids {
        assert!(
            seen.contains_key(id),
            "acknowledged event {id} is not stored"
        );
    }
    let unacknowledged: Vec<_> = stored
        .iter()
        .filter(|(id, _, _)| !acknowledged_set.contains(id))
        .collect();
    assert_eq!(
        unacknowledged.len(),
        bootstrap_events,
        "only the bootstrap's own events may be stored without an acknowledgement: {unacknowledged:?}"
    );
    assert!(unacknowledged
        .iter()
        .all(|(_, _, action)| action != "channel_created"));

    // One linear chain: seq 1..=n, no gap, no duplicate, whichever replica appended.
    let mut seqs: Vec<u64> = stored.iter().map(|(_, seq, _)| *seq).collect();
    seqs.sort_unstable();
    let n = stored.len() as u64;
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "seq must be 1..={n}");

    let verify = run(&data_dir, Some(&url), &["verify"]);
    verify.expect_code(0);
    assert!(
        verify
            .stdout
            .contains(&format!("acme: {n} events, chain intact")),
        "{}",
        verify.stdout
    );

    let killed = servers[0]
        .child
        .try_wait()
        .expect("status of the killed replica");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            killed.and_then(|status| status.signal()),
            Some(9),
            "replica 0 must have died of SIGKILL"
        );
    }
    drop(servers);
    println!(
        "{n} events from {total_requests} requests over {REPLICAS} replicas; replica 0 \
         SIGKILLed after {killed_at} acknowledgements; {failed_attempts} attempts failed over; \
         {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------
// Migrating an embedded store

/// An event in the ingest format, `n` minutes after 2025-03-01T00:00:00Z.
fn import_event(n: usize) -> Value {
    const ACTIONS: [&str; 4] = [
        "channel_created",
        "channel_deleted",
        "token_revoked",
        "policy_created",
    ];
    let at = 1_740_787_200_000_i64 + n as i64 * 60_000;
    json!({
        "action_key": ACTIONS[n % ACTIONS.len()],
        "actor_id": format!("user-{}", n % 7),
        "actor_email": format!("user{}@example.com", n % 7),
        "target_name": format!("channel-{n}"),
        "ip_address": "192.0.2.10",
        "request_id": format!("req-{n}"),
        "meta": {"n": n, "nested": {"b": 2, "a": [1.5, "x"]}},
        "occurred_at": auditlog_core::Timestamp::from_millis(at).expect("in range").to_string(),
    })
}

/// Writes `count` events to a JSON Lines file and imports them into `org`.
fn import(data_dir: &Path, file: PathBuf, org: &str, start: usize, count: usize) {
    let text: String = (start..start + count)
        .map(|n| format!("{}\n", import_event(n)))
        .collect();
    std::fs::write(&file, text).expect("write the import file");
    let file = file.to_str().expect("a UTF-8 path");
    run(data_dir, None, &["import", file, "--org", org]).expect_code(0);
}

/// The newest signed checkpoint of an organization in the database at `url`, as
/// `(seq, hash, signed_at in ms, key_id, signature)` with the hashes in hex.
fn latest_checkpoint_in(url: &str, org_id: Uuid) -> Option<(u64, String, i64, String, String)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .expect("connect to the target");
        let driver = tokio::spawn(connection);
        let row = client
            .query_opt(
                "SELECT seq, hash, (extract(epoch FROM signed_at) * 1000)::bigint, key_id, signature
                 FROM checkpoints WHERE org_id = $1 ORDER BY seq DESC, signed_at DESC LIMIT 1",
                &[&org_id],
            )
            .await
            .expect("read the target's checkpoints");
        drop(client);
        let _ = driver.await;
        row.map(|row| {
            (
                row.get::<_, i64>(0) as u64,
                hex::encode(row.get::<_, Vec<u8>>(1)),
                row.get(2),
                row.get(3),
                hex::encode(row.get::<_, Vec<u8>>(4)),
            )
        })
    })
}

/// The first column (an id) of each row of a listing, header excluded.
fn listed_ids(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn migrate_moves_an_embedded_store_with_intact_chains() {
    let Some(database) = test_database() else {
        return;
    };
    let url = database.url();
    let dir = tempfile::tempdir().expect("temporary directory");
    let source = dir.path().join("source");

    // A small embedded store: two organizations, more than one batch of events, and every
    // kind of account record.
    run(&source, None, &["org", "create", "acme", "--enroll"]).expect_code(0);
    run(
        &source,
        None,
        &["org", "create", "beta", "--display-name", "Beta Inc."],
    )
    .expect_code(0);
    import(&source, dir.path().join("acme.jsonl"), "acme", 0, 2_345);
    import(&source, dir.path().join("beta.jsonl"), "beta", 10_000, 3);
    run(
        &source,
        None,
        &[
            "user",
            "add",
            "admin@example.com",
            "--org",
            "acme",
            "--role",
            "admin",
        ],
    )
    .expect_code(0);
    let created = run(
        &source,
        None,
        &[
            "token",
            "create",
            "--user",
            "admin@example.com",
            "--org",
            "acme",
        ],
    );
    created.expect_code(0);
    let api_token = secret_after(&created.stdout, "token ");
    run(
        &source,
        None,
        &[
            "service-account",
            "create",
            "--org",
            "acme",
            "--name",
            "exporter",
        ],
    )
    .expect_code(0);
    // Recorded in beta's log after the checkpoint its import signed: the migration keeps
    // that checkpoint and signs beta's new head.
    run(
        &source,
        None,
        &["service-account", "create", "--org", "beta", "--name", "ci"],
    )
    .expect_code(0);
    run(&source, None, &["ingest-key", "create", "--org", "acme"]).expect_code(0);
    run(
        &source,
        None,
        &["ingest-key", "create", "--name", "platform"],
    )
    .expect_code(0);

    // Before the move: the source verifies, and an export of acme ends with a checkpoint
    // signed at its head (exporting records an event first, so acme has one more).
    run(&source, None, &["verify"]).expect_code(0);
    let export = dir.path().join("acme-before-migration.jsonl");
    let export_path = export.to_str().expect("UTF-8");
    run(
        &source,
        None,
        &["export", "--org", "acme", "-o", export_path],
    )
    .expect_code(0);
    let exported: Vec<Value> = std::fs::read_to_string(&export)
        .expect("read the export")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let (tree_checkpoint, exported) = exported.split_last().expect("a tree checkpoint");
    assert_eq!(tree_checkpoint["type"], "tree_checkpoint");
    let (exported_checkpoint, exported_events) = exported.split_last().expect("a checkpoint");
    assert_eq!(exported_checkpoint["type"], "checkpoint");
    // The imported events, and those the account commands and the export recorded.
    let acme_events = exported_checkpoint["seq"].as_u64().expect("seq") as usize;
    assert!(acme_events > 2_345, "{acme_events}");
    assert_eq!(exported_events.len(), acme_events, "an unfiltered export");
    let before: HashMap<&str, Vec<Value>> = ["acme", "beta"]
        .into_iter()
        .map(|org| (org, events_jsonl(&source, None, org)))
        .collect();

    let migrated = run(
        &source,
        None,
        &[
            "migrate",
            "--from",
            source.to_str().expect("UTF-8"),
            "--to",
            &url,
        ],
    );
    migrated.expect_code(0);
    assert!(
        migrated.stdout.contains("migrated 2 organization(s)"),
        "{}",
        migrated.stdout
    );
    assert!(
        migrated.stdout.contains("chain hashes are kept") && !migrated.stdout.contains("re-issued"),
        "the migration must say that ids and hashes are kept: {}",
        migrated.stdout
    );
    assert!(
        migrated.stdout.contains(&format!(
            "acme: {acme_events} events, seq 1..={acme_events}, ids and hashes kept, the source's signed checkpoint at seq {acme_events} matches\n"
        )),
        "{}",
        migrated.stdout
    );
    assert!(
        migrated.stdout.contains(
            "beta: 4 events, seq 1..=4, ids and hashes kept, the source's signed checkpoint at seq 3 matches, new signed checkpoint at seq 4\n"
        ),
        "{}",
        migrated.stdout
    );

    // The same events: same organization and event ids, seqs, stored-at times, hashes and
    // content, in the same order.
    for org in ["acme", "beta"] {
        let before = &before[org];
        let after = events_jsonl(&source, Some(&url), org);
        assert!(before.len() >= 3);
        assert_eq!(before.len(), after.len(), "{org}: event count");
        for (old, new) in before.iter().zip(&after) {
            assert_eq!(old, new, "{org}: an event changed in the move");
        }
    }

    // The export made before the move still verifies, and it is the target's history: its
    // events are the target's, and its checkpoint is the one the target verifies against.
    let verified_file = run(&source, Some(&url), &["verify", export_path]);
    verified_file.expect_code(0);
    assert!(
        verified_file.stdout.starts_with("ok "),
        "{}",
        verified_file.stdout
    );
    let mut target_acme = events_jsonl(&source, Some(&url), "acme");
    target_acme.sort_by_key(|event| event["seq"].as_u64());
    assert_eq!(target_acme.len(), exported_events.len());
    for (exported, stored) in exported_events.iter().zip(&target_acme) {
        for field in ["id", "org_id", "seq", "hash", "created_at"] {
            assert_eq!(
                exported[field], stored[field],
                "exported seq {}: {field} differs in the target",
                exported["seq"]
            );
        }
    }
    let acme_id: Uuid = exported_checkpoint["org_id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("the checkpoint's org_id");
    let signed_at = auditlog_core::Timestamp::parse(
        exported_checkpoint["signed_at"]
            .as_str()
            .expect("signed_at"),
    )
    .expect("a timestamp");
    assert_eq!(
        latest_checkpoint_in(&url, acme_id),
        Some((
            acme_events as u64,
            exported_checkpoint["hash"]
                .as_str()
                .expect("hash")
                .to_string(),
            signed_at.as_millis(),
            exported_checkpoint["key_id"]
                .as_str()
                .expect("key_id")
                .to_string(),
            exported_checkpoint["signature"]
                .as_str()
                .expect("signature")
                .to_string(),
        )),
        "the target's newest checkpoint of acme is the source's, signature and all"
    );

    let verify = run(&source, Some(&url), &["verify"]);
    verify.expect_code(0);
    assert!(
        verify.stdout.contains(&format!(
            "acme: {acme_events} events, chain intact, signed checkpoint at seq {acme_events} matches"
        )) && verify.stdout.contains("beta: 4 events, chain intact, signed checkpoint at seq 4 matches")
            && verify.stdout.contains("intact\n"),
        "{}",
        verify.stdout
    );

    // Accounts kept their ids.
    for listing in [
        &["user", "list", "--org", "acme"][..],
        &["token", "list", "--org", "acme"],
        &["service-account", "list", "--org", "acme"],
        &["ingest-key", "list"],
    ] {
        let before = run(&source, None, listing);
        let after = run(&source, Some(&url), listing);
        before.expect_code(0);
        after.expect_code(0);
        assert_eq!(
            listed_ids(&before.stdout),
            listed_ids(&after.stdout),
            "{listing:?}"
        );
        assert!(!listed_ids(&after.stdout).is_empty(), "{listing:?}");
    }

    // The source's API token reads the migrated log through a replica on the target.
    let server = Server::start(&source, &url);
    let authorization = format!("Bearer {api_token}");
    let response = http(
        server.address,
        "GET",
        "/api/audit-logs?limit=5",
        &[
            ("Authorization", authorization.as_str()),
            ("X-Org-Name", "acme"),
        ],
        b"",
    )
    .expect("list events");
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(response.json()["items"].as_array().map(Vec::len), Some(5));
    drop(server);

    // A second run finds the events there and refuses.
    let again = run(
        &source,
        None,
        &[
            "migrate",
            "--from",
            source.to_str().expect("UTF-8"),
            "--to",
            &url,
        ],
    );
    again.expect_code(1);
    assert!(
        again.stdout.contains("already holds events"),
        "{}",
        again.stdout
    );

    // A tampered source is refused before the target is looked at.
    {
        let db = rusqlite::Connection::open(source.join("auditlog.db")).expect("open auditlog.db");
        let org_key: i64 = db
            .query_row("SELECT org_key FROM orgs WHERE name = 'beta'", [], |row| {
                row.get(0)
            })
            .expect("org_key");
        let changed = db
            .execute(
                r#"UPDATE log SET meta = '{"x":1}' WHERE (org_key << 40 | seq) = ?1"#,
                [(org_key << 40) | 2],
            )
            .expect("tamper");
        assert_eq!(changed, 1);
    }
    let tampered = run(
        &source,
        None,
        &[
            "migrate",
            "--from",
            source.to_str().expect("UTF-8"),
            "--to",
            &url,
        ],
    );
    tampered.expect_code(1);
    assert!(
        tampered.stdout.contains("TAMPERED  beta")
            && tampered.stdout.contains("nothing was migrated"),
        "{}",
        tampered.stdout
    );

    // A directory without a store is an error, not an empty migration.
    let empty = dir.path().join("empty");
    let missing = run(
        &source,
        None,
        &[
            "migrate",
            "--from",
            empty.to_str().expect("UTF-8"),
            "--to",
            &url,
        ],
    );
    missing.expect_code(2);
    assert!(
        missing.stderr.contains("holds no embedded store"),
        "{}",
        missing.stderr
    );
}
