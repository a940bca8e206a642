//! Soak: ingest, list, cursor pages, facets, search, exports with downloads and sign-ins
//! (client-credential exchanges) all at once, for `AUDITLOG_SOAK_SECONDS` (15 s by default;
//! CI runs 180). Nothing may fail or answer 5xx; open file descriptors stay flat after
//! warm-up; anonymous memory stays within the store's page-cache budget plus a fixed allowance
//! and stops growing; the SQLite WAL stays bounded; export files are deleted once they expire.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use auditlog_testkit::http::{Connection, Request};
use serde_json::json;

use auditlog_sqlite::SqliteOptions;

use crate::{query, Server};

/// The actions the ingest clients send, in turn.
const ACTIONS: [&str; 3] = ["channel_created", "token_revoked", "policy_created"];

/// What each of the two ingest clients waits between its batches of 20: a steady load of
/// at most 400 events a second, so that the log, and with it each export (which reads the
/// whole log), grows by a bounded amount per minute. Unpaced, the debug build's ingest grew
/// the log so fast that an export of its last minute outran its deadline; how fast ingest
/// can go is the benchmarks' question, not the soak's.
const INGEST_PAUSE: Duration = Duration::from_millis(100);

/// How long exports stay downloadable in the soak: short, so expiry happens during it.
const EXPORT_TTL: Duration = Duration::from_secs(6);

/// The store's page-cache budget in the soak: small, so that the caches are full within the
/// warm-up and what grows after it is something else.
const PAGE_CACHES: u64 = 16 << 20;

/// Anonymous memory allowed to grow beyond the page caches: the indexer's dictionary caches
/// (about 50 MB at most), the runtime, requests and export pages in flight, the allocator's
/// free lists, this test's own clients, and the other tests of this binary running beside the
/// soak, in a debug build. Alone, a 180 s run ends at about 75 MB.
const MEMORY_ALLOWANCE: u64 = 128 << 20;

/// How much more the last third of the samples may reach than the middle third: with the
/// caches full and the allocator's arenas limited as `auditlog serve` limits them, the thirds
/// are about 10 MB apart in a 180 s run alone and 17 MB apart in a 600 s run.
const FLAT_SLACK: u64 = 32 << 20;

/// The soak's length.
fn soak_duration() -> Duration {
    let seconds = std::env::var("AUDITLOG_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    Duration::from_secs(seconds)
}

/// This process's anonymous resident memory (the heap: what a leak grows; file pages that
/// SQLite maps grow with the data and are the kernel's to drop) and open file descriptors,
/// from /proc.
fn sample() -> (u64, usize) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let rss_kb: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("RssAnon");
    let fds = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count();
    (rss_kb * 1024, fds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_load_runs_without_errors_leaks_or_growth() {
    // The allocator as `auditlog serve` sets it up (this test binary's other threads have
    // their arenas already; the server's new ones share the limited set).
    auditlog_service::allocator::limit_arenas();
    let options = SqliteOptions {
        page_cache_budget: PAGE_CACHES,
        ..SqliteOptions::default()
    };
    let server = Server::start_sqlite_with(options, |config| {
        config.rate_limit_per_second = 0;
        config.export_ttl = EXPORT_TTL;
    })
    .await;
    let org = server.org("acme", true).await;
    let ingest = server.ingest_key(Some(&org)).await;
    let admin = server.admin(&org, "admin@acme.test").await;
    let (client_id, secret) = server.service_account(&org, "siem").await;
    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();

    // Two ingest clients.
    for client in 0..2 {
        let call = server.post("/api/audit-logs/events").bearer(&ingest);
        let (stop, requests) = (stop.clone(), requests.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<_> = (0..20)
                    .map(|i| {
                        json!({
                            "action_key": ACTIONS[i % 3],
                            "actor_id": format!("user-{}", (n + i as u64) % 50),
                            "target_name": format!("ml-prod-{client}-{n}-{i}"),
                        })
                    })
                    .collect();
                call.clone().json(&json!(batch)).send().await.expect(201);
                requests.fetch_add(1, Ordering::Relaxed);
                n += 1;
                tokio::time::sleep(INGEST_PAUSE).await;
            }
        }));
    }
    // A reader: newest page and the next by cursor, facets, a search.
    {
        let calls = [
            "/api/audit-logs?limit=50".to_string(),
            format!(
                "/api/audit-logs/facets?{}",
                query(&[("q", "action_key:token_revoked")])
            ),
            format!(
                "/api/audit-logs?{}",
                query(&[("q", "search:ml-prod-1"), ("limit", "20")])
            ),
        ];
        let addr = server.addr;
        let (stop, requests) = (stop.clone(), requests.clone());
        let admin = admin.clone();
        let server_get = move |path: &str| {
            crate::Call::new(addr, "GET", path)
                .bearer(&admin)
                .org("acme")
        };
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                for path in &calls {
                    let body = server_get(path).send().await.expect(200).json();
                    requests.fetch_add(1, Ordering::Relaxed);
                    if let Some(cursor) = body["next_cursor"].as_str() {
                        let next = format!(
                            "/api/audit-logs?{}",
                            query(&[("cursor", cursor), ("limit", "50")])
                        );
                        server_get(&next).send().await.expect(200);
                        requests.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    // Sign-ins: a service account trades its credentials for a token, again and again.
    {
        let call = server.post("/api/iam/token").json(&json!({
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
        }));
        let (stop, requests) = (stop.clone(), requests.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                call.clone().send().await.expect(200);
                requests.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }

    let exports = server.dir.path().join("exports");
    let wal = server.dir.path().join("auditlog.db-wal");
    let started = Instant::now();
    let duration = soak_duration();
    let mut samples = Vec::new();
    let mut exported = 0;
    let mut wal_max = 0;
    let mut downloads = Connection::open(server.addr).await.expect("connect");
    // Other tests of this binary may run beside the soak, so growth is measured from here.
    let (before, _) = sample();
    while started.elapsed() < duration {
        // An export every round, downloaded once complete.
        let request = json!({"q": ["action_key:policy_created"]});
        let job = crate::export_completed(&server, &admin, "acme", request).await;
        // Streamed and counted, not kept: the files grow with the log, and this process's
        // memory is what the soak measures.
        let download = Request::get(&format!("/api/audit-logs/export/{job}/download"))
            .bearer(&admin)
            .header("X-Org-Name", "acme")
            .encode(&server.addr.to_string());
        let mut downloaded = 0u64;
        let response = downloads
            .send_streaming(&download, &mut |chunk| downloaded += chunk.len() as u64)
            .await
            .expect("download");
        assert_eq!(response.status, 200, "download of {job}");
        assert!(downloaded > 0, "the export {job} downloaded empty");
        exported += 1;
        wal_max = wal_max.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        samples.push(sample());
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("a client failed");
    }

    // One sample per export round (a few seconds each): 15 s gives about five.
    let third = samples.len() / 3;
    assert!(
        third >= 1,
        "too short a soak to judge: {} samples",
        samples.len()
    );
    let warm = &samples[third..2 * third];
    let late = &samples[2 * third..];
    let peak = |s: &[(u64, usize)]| s.iter().map(|x| x.0).max().unwrap();
    let fds = |s: &[(u64, usize)]| s.iter().map(|x| x.1).max().unwrap();
    println!(
        "soak: anonymous RSS {} MB after warm-up, {} MB at the end; samples (MB): {:?}",
        peak(warm) >> 20,
        peak(late) >> 20,
        samples.iter().map(|s| s.0 >> 20).collect::<Vec<_>>()
    );
    // The store's page caches fill as the log grows and then stay at their budget; everything
    // else (the runtime, buffers in flight, this test's own clients) is a fixed allowance.
    // A leak grows past both, and keeps growing after the warm-up.
    let bound = before + PAGE_CACHES + MEMORY_ALLOWANCE;
    assert!(
        peak(late) <= bound,
        "anonymous memory grew from {} MB to {} MB, beyond the page-cache budget ({} MB) and \
         the allowance ({} MB); samples (MB): {:?}",
        before >> 20,
        peak(late) >> 20,
        PAGE_CACHES >> 20,
        MEMORY_ALLOWANCE >> 20,
        samples.iter().map(|s| s.0 >> 20).collect::<Vec<_>>()
    );
    assert!(
        peak(late) <= peak(warm) + FLAT_SLACK,
        "anonymous memory kept growing after warm-up: {} MB, then {} MB; samples (MB): {:?}",
        peak(warm) >> 20,
        peak(late) >> 20,
        samples.iter().map(|s| s.0 >> 20).collect::<Vec<_>>()
    );
    assert!(
        fds(late) <= fds(warm) + 16,
        "open file descriptors grew: {} after warm-up, {} at the end",
        fds(warm),
        fds(late)
    );
    assert!(wal_max < 256 << 20, "the WAL reached {wal_max} bytes");
    // Files expire after EXPORT_TTL and are swept within half of it more: only the exports
    // of the last TTL and a half (one a second at most) may still be there.
    let left = std::fs::read_dir(&exports).expect("exports").count();
    let recent = (EXPORT_TTL.as_secs() * 3 / 2 + 2) as usize;
    assert!(
        left <= recent.min(exported),
        "{left} export files remain of {exported}; expired ones were not deleted"
    );
    println!(
        "soak: {} s, {} requests, {exported} exports, anonymous RSS {} MB, {} fds, WAL max {} KB",
        duration.as_secs(),
        requests.load(Ordering::Relaxed),
        peak(late) >> 20,
        fds(late),
        wal_max >> 10
    );
}
