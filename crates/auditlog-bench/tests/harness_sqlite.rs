//! The harness end to end on a small history, against the SQLite store.

use std::sync::{Arc, Mutex};

use auditlog_bench::harness::{run, BenchConfig};
use auditlog_core::query::Filter;
use auditlog_sqlite::SqliteStore;
use auditlog_store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_end_to_end_and_reports_every_figure() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let baseline_dir = tempfile::tempdir().unwrap();
    let config = BenchConfig {
        deep_page_depth: 300,
        baseline_dir: Some(baseline_dir.path().to_path_buf()),
        ..BenchConfig::smoke(5_000, 3)
    };
    let phases = Mutex::new(Vec::<String>::new());
    let report = run(Arc::clone(&store), &config, |phase, done, total| {
        assert!(done <= total, "{phase}: {done} > {total}");
        let mut phases = phases.lock().unwrap();
        if phases.last().map(String::as_str) != Some(phase) {
            phases.push(phase.to_string());
        }
    })
    .await
    .unwrap();

    let appended = 20 + 5 * 100 + 2 * 1_000;
    assert_eq!(report.n_events, 5_000);
    assert_eq!(report.total_events, 5_000 + appended);
    let orgs = store.list_orgs().await.unwrap();
    assert_eq!(orgs.len(), 200);
    let mut stored = 0;
    for org in &orgs {
        let count = store
            .count(org.id, &Filter::default(), u64::MAX)
            .await
            .unwrap();
        assert!(count.exact);
        stored += count.n;
    }
    assert_eq!(stored, report.total_events);

    let sizes: Vec<usize> = report.appends.iter().map(|r| r.batch_size).collect();
    assert_eq!(sizes, [1, 100, 1_000]);
    // Six queries with a baseline, then the inclusion proof, which has none.
    assert_eq!(report.queries.len(), 7);
    let proof = report.queries.last().unwrap();
    assert!(proof.name.starts_with("inclusion proof"), "{}", proof.name);
    assert!(proof.baseline.is_none());
    assert_eq!(report.export_with_proofs.events, report.largest_org_events);
    // 32 bytes a leaf, and a few more for the levels above.
    let tile_bytes_per_event = report.tile_bytes as f64 / report.n_events as f64;
    assert!(
        (32.0..33.0).contains(&tile_bytes_per_event),
        "{tile_bytes_per_event}"
    );
    for (i, query) in report.queries.iter().enumerate() {
        assert_eq!(query.latency.runs, 10, "{}", query.name);
        assert!(query.latency.p50 <= query.latency.p99);
        // One user's actions over 90 days may well be none in so small a history.
        assert!(
            i == 1 || query.latency.mean_rows > 0.0,
            "{} found nothing",
            query.name
        );
    }
    assert!(
        report.queries[2].name.contains("300 events deep"),
        "{}",
        report.queries[2].name
    );
    assert!(report.largest_org_events > 500);
    assert!(report.disk_bytes > 0);

    // The baseline answered every question the store did, on the same events.
    let baseline = report.baseline.as_ref().expect("a baseline was measured");
    assert_eq!(baseline.load.events, 5_000);
    assert_eq!(baseline.export.events, report.export.events);
    assert_eq!(report.export.events, report.largest_org_events);
    assert!(baseline.disk_bytes > 0);
    for query in &report.queries[..6] {
        let latency = query.baseline.as_ref().expect("every query has a baseline");
        assert_eq!(latency.runs, 10, "{}", query.name);
    }
    assert!(report.appends.iter().all(|round| round.baseline.is_some()));

    let table = report.to_string();
    assert!(table
        .starts_with("| metric | auditlog | baseline | × | unit |\n|---|---:|---:|---:|---|\n"));
    assert_eq!(table.lines().count(), 2 + report.rows().len());
    assert!(table.contains("| durable append, batch of 1,000 | "));
    assert!(table.contains("| bytes per event on disk (7,520 events) | "));
    let phases = phases.into_inner().unwrap();
    assert_eq!(
        phases[..5],
        [
            "generate",
            "create organizations",
            "load",
            "baseline load",
            "newest page of the largest org (limit 50)"
        ]
    );
}
