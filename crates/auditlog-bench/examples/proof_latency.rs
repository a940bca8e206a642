//! Inclusion-proof latency on a store kept by the store benchmark (`--data-dir`): the
//! largest organization's proofs of random events, as the benchmark measures them, in three
//! passes of `RUNS` each, so a change to the proof path is measured on a 10M-event store
//! without loading one again.
//!
//! ```text
//! cargo bench -p auditlog-bench --bench store -- --large --data-dir /tmp/store-10m
//! cargo run --release -p auditlog-bench --example proof_latency -- /tmp/store-10m [RUNS]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use auditlog_core::Catalog;
use auditlog_service::Service;
use auditlog_sqlite::SqliteStore;
use auditlog_store::Store;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: proof_latency DATA_DIR [RUNS]");
        std::process::exit(2);
    };
    let runs: usize = args
        .next()
        .map_or(2_000, |n| n.parse().expect("RUNS is a number"));
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(std::path::Path::new(&dir)).expect("open the store"));
    let mut largest = (uuid::Uuid::nil(), 0u64);
    for org in store.list_orgs().await.expect("organizations") {
        let seq = store.chain_head(org.id).await.expect("chain head").seq;
        if seq > largest.1 {
            largest = (org.id, seq);
        }
    }
    let (org, size) = largest;
    println!("organization {org}: {size} events");
    let service = Service::new(
        store,
        Catalog::builtin(),
        ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
    );
    let mut rng = SmallRng::seed_from_u64(42);
    for pass in 1..=3 {
        let mut samples: Vec<Duration> = Vec::with_capacity(runs);
        for _ in 0..runs {
            let leaf = rng.gen_range(0..size);
            let started = Instant::now();
            let proofs = service
                .inclusion_proofs(org, size, &[leaf])
                .await
                .expect("a proof");
            samples.push(started.elapsed());
            assert_eq!(proofs.len(), 1);
        }
        samples.sort();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
        println!(
            "pass {pass}: {runs} proofs, p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            at(0.5),
            at(0.9),
            at(0.99),
            at(1.0)
        );
    }
}
