//! Crash consistency of the SQLite store (docs/design.md, "Nothing acknowledged is lost"): a
//! writer process killed with SIGKILL in the middle of ingest, then reopened, still holds
//! every event it acknowledged, never half a batch, and chains that verify.
//!
//! The test binary is its own victim: `sigkill_loses_nothing_acknowledged` re-executes
//! itself (only itself) with `AUDITLOG_CRASH_CHILD=<dir>`, and in that child process it is
//! the appender instead: it appends batches from several tasks and prints
//! `ack <org_id> <first_seq> <last_seq> <batch>` once each is acknowledged, until the parent
//! kills it at a random moment; the parent then reopens the store and checks. The child's
//! part is not a test of its own, so an ordinary run never reports it as one that passed.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use auditlog_conformance::body;
use auditlog_core::chain::ChainVerifier;
use auditlog_core::Timestamp;
use auditlog_sqlite::SqliteStore;
use auditlog_store::{Append, NewOrg, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use uuid::Uuid;

/// Set (to the data directory) only in the child process.
const CHILD_ENV: &str = "AUDITLOG_CRASH_CHILD";
/// The organizations every batch spreads over.
const ORG_NAMES: [&str; 3] = ["crash-a", "crash-b", "crash-c"];
/// Children killed, one after the other, on the same directory.
const N_ROUNDS: usize = 8;
/// Concurrent appending tasks in a child.
const N_TASKS: usize = 4;
const ACTIONS: [&str; 4] = [
    "channel_created",
    "channel_deleted",
    "token_revoked",
    "policy_created",
];

/// The child: appends to the store in `dir` until killed; never returns.
fn run_child(dir: &Path) -> ! {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(N_TASKS)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(append_until_killed(dir));
    unreachable!("the appending tasks never end")
}

async fn append_until_killed(dir: &Path) {
    let store = Arc::new(SqliteStore::open(dir).expect("child: open the store"));
    let mut org_ids = Vec::new();
    for name in ORG_NAMES {
        let org = match store.find_org(name).await.expect("child: find org") {
            Some(org) => org,
            None => store
                .create_org(NewOrg {
                    name: name.to_string(),
                    display_name: name.to_string(),
                    audit_logs_enabled: true,
                })
                .await
                .expect("child: create org"),
        };
        org_ids.push(org.id);
    }
    // libtest may have left "test sigkill_loses_nothing_acknowledged ... " without a newline.
    emit("\n");
    let tasks: Vec<_> = (0..N_TASKS)
        .map(|task| {
            let store = store.clone();
            let org_ids = org_ids.clone();
            tokio::spawn(async move { append_batches(store, &org_ids, task).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("child: appending task");
    }
}

/// Appends batches of 1..=200 events spread over `org_ids` forever. Each event's `meta`
/// names its batch and the batch's size, so that the parent can find half-stored batches.
async fn append_batches(store: Arc<SqliteStore>, org_ids: &[Uuid], task: usize) {
    let mut rng = StdRng::from_entropy();
    for n_batch in 0u64.. {
        let size: usize = rng.gen_range(1..=200);
        let tag = format!("{}-{task}-{n_batch}", std::process::id());
        let now = Timestamp::now().as_millis();
        let batch: Vec<Append> = (0..size)
            .map(|_| {
                let mut event = body(
                    ACTIONS[rng.gen_range(0..ACTIONS.len())],
                    "alice@example.com",
                    now - rng.gen_range(0..60_000),
                );
                event.meta.insert("batch".into(), json!(tag));
                event.meta.insert("size".into(), json!(size));
                Append {
                    org_id: org_ids[rng.gen_range(0..org_ids.len())],
                    body: event,
                }
            })
            .collect();
        let stored = store.append(batch.clone()).await.expect("child: append");
        assert_eq!(stored.len(), size, "child: every event is returned");
        let mut acks = String::new();
        for org_id in org_ids {
            let seqs: Vec<u64> = stored
                .iter()
                .filter(|event| event.org_id == *org_id)
                .map(|event| event.seq)
                .collect();
            let (Some(first), Some(last)) = (seqs.first(), seqs.last()) else {
                continue;
            };
            // One batch's events of one organization take consecutive seqs, in batch order.
            assert_eq!(
                seqs,
                (*first..=*last).collect::<Vec<_>>(),
                "child: seqs of one organization in one batch"
            );
            acks.push_str(&format!("ack {org_id} {first} {last} {tag}\n"));
        }
        emit(&acks);
    }
}

/// Writes to stdout at once and flushes, so an acknowledged batch is reported before the
/// next is appended (one write of less than a pipe buffer is never torn by a kill).
fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).expect("child: stdout");
    out.flush().expect("child: flush");
}

/// One acknowledged part of a batch: seqs `first..=last` of `org_id`, tagged `batch`.
#[derive(Debug, Clone)]
struct Ack {
    org_id: Uuid,
    first: u64,
    last: u64,
    batch: String,
}

fn parse_acks(stdout: &str) -> Vec<Ack> {
    // A line cut short by the kill has no newline: only complete lines count.
    let complete = match stdout.rfind('\n') {
        Some(end) => &stdout[..end],
        None => "",
    };
    complete
        .lines()
        .filter_map(|line| line.strip_prefix("ack "))
        .map(|fields| {
            let fields: Vec<&str> = fields.split(' ').collect();
            assert_eq!(fields.len(), 4, "malformed ack {fields:?}");
            Ack {
                org_id: fields[0].parse().expect("org id"),
                first: fields[1].parse().expect("first seq"),
                last: fields[2].parse().expect("last seq"),
                batch: fields[3].to_string(),
            }
        })
        .collect()
}

#[test]
fn sigkill_loses_nothing_acknowledged() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        run_child(Path::new(&dir));
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let seed: u64 = rand::random();
    let mut rng = StdRng::seed_from_u64(seed);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut acked: Vec<Ack> = Vec::new();
    let mut n_stored = 0;
    for round in 0..N_ROUNDS {
        let context = format!("round {round} (kill timing seed {seed})");
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "sigkill_loses_nothing_acknowledged",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the child");
        let stdout = drain(child.stdout.take().expect("piped stdout"));
        let stderr = drain(child.stderr.take().expect("piped stderr"));
        std::thread::sleep(Duration::from_millis(rng.gen_range(50..=800)));
        let early = child.try_wait().expect("poll the child");
        child.kill().expect("SIGKILL the child");
        child.wait().expect("reap the child");
        let stdout = stdout.join().expect("stdout reader");
        let stderr = stderr.join().expect("stderr reader");
        assert!(
            early.is_none(),
            "{context}: the child exited by itself ({early:?}):\n{stdout}\n{stderr}"
        );
        acked.extend(parse_acks(&stdout));
        n_stored = runtime.block_on(check_store(dir.path(), &acked, &context));
    }
    let n_acked: u64 = acked.iter().map(|ack| ack.last - ack.first + 1).sum();
    assert!(
        n_acked > 0,
        "no child acknowledged anything in {N_ROUNDS} rounds"
    );
    assert!(n_stored >= n_acked);
}

/// Reads a pipe to its end on a thread of its own.
fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Reopens the store after a kill and checks it; returns how many events it holds.
async fn check_store(dir: &Path, acked: &[Ack], context: &str) -> u64 {
    let store = SqliteStore::open(dir).unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
    // Per organization, the batch tag of each seq (index seq - 1).
    let mut tags: HashMap<Uuid, Vec<String>> = HashMap::new();
    // Per batch tag, its declared size and how many of its events are stored.
    let mut batches: HashMap<String, (u64, u64)> = HashMap::new();
    for org in store.list_orgs().await.expect("list orgs") {
        let mut verifier = ChainVerifier::new(org.id);
        let org_tags = tags.entry(org.id).or_default();
        loop {
            let (after, _) = verifier.head();
            let chunk = store
                .events_by_seq(org.id, after, 5_000)
                .await
                .unwrap_or_else(|e| panic!("{context}: read {}: {e}", org.name));
            if chunk.is_empty() {
                break;
            }
            for event in &chunk {
                verifier
                    .push(event)
                    .unwrap_or_else(|e| panic!("{context}: {} does not verify: {e}", org.name));
                let tag = event.body.meta["batch"].as_str().expect("batch tag");
                let size = event.body.meta["size"].as_u64().expect("batch size");
                batches.entry(tag.to_string()).or_insert((size, 0)).1 += 1;
                org_tags.push(tag.to_string());
            }
        }
        // The verifier accepted seqs 1, 2, …, head with no gap; the recorded head is there.
        let head = store.chain_head(org.id).await.expect("chain head");
        assert_eq!(
            (head.seq, head.hash),
            verifier.head(),
            "{context}: {}'s recorded head is not its last event",
            org.name
        );
        assert_eq!(head.seq, org_tags.len() as u64);
    }
    // The index was killed too, possibly mid-batch: every read still counts every stored
    // event, before the indexer has caught up (from the log's tail) and after.
    for round in ["before indexing", "after indexing"] {
        if round == "after indexing" {
            store.wait_indexed().await.expect("index catches up");
        }
        for org in store.list_orgs().await.expect("list orgs") {
            let stored = tags.get(&org.id).map_or(0, Vec::len) as u64;
            let all = auditlog_core::query::Filter::default();
            let count = store.count(org.id, &all, u64::MAX).await.expect("count");
            assert_eq!(
                (count.n, count.exact),
                (stored, true),
                "{context}, {round}: {} counts {} of its {stored} events",
                org.name,
                count.n
            );
            let per_day: u64 = store
                .daily_counts(org.id, &all)
                .await
                .expect("daily counts")
                .iter()
                .map(|(_, n)| n)
                .sum();
            assert_eq!(per_day, stored, "{context}, {round}: {} per day", org.name);
        }
    }
    for ack in acked {
        let org_tags = tags
            .get(&ack.org_id)
            .unwrap_or_else(|| panic!("{context}: acknowledged org {} is gone", ack.org_id));
        for seq in ack.first..=ack.last {
            assert_eq!(
                org_tags.get(seq as usize - 1),
                Some(&ack.batch),
                "{context}: acknowledged seq {seq} of {} is missing or not from batch {}",
                ack.org_id,
                ack.batch
            );
        }
    }
    for (tag, (size, found)) in &batches {
        assert_eq!(
            found, size,
            "{context}: batch {tag} is half stored ({found} of {size} events)"
        );
    }
    store.close();
    tags.values().map(|org_tags| org_tags.len() as u64).sum()
}
