//! `auditlog bench`: runs the benchmark harness of `auditlog-bench` on a fresh embedded
//! store and prints the report as a Markdown table for BENCHMARKS.md.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use auditlog_bench::harness::{self, BenchConfig};
use auditlog_sqlite::SqliteStore;
use auditlog_store::Store;
use clap::Args;

use super::Context;

/// Arguments of `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Events of generated history to load before measuring.
    #[arg(long, default_value_t = BenchConfig::STANDARD)]
    pub events: u64,
    /// Load 10,000,000 events instead (overrides --events).
    #[arg(long)]
    pub large: bool,
    /// Seed of the generated history.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where to put the benchmark's store (must be empty or absent); a temporary directory
    /// that is removed afterwards when not given. Never the real data directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Runs `bench`.
pub async fn run(_context: &Context, args: BenchArgs) -> anyhow::Result<ExitCode> {
    let n_events = if args.large {
        BenchConfig::LARGE
    } else {
        args.events
    };
    let config = BenchConfig::new(n_events, args.seed);
    let temp;
    let dir = match &args.dir {
        Some(dir) => {
            if dir.join(auditlog_sqlite::DB_FILE).exists() {
                anyhow::bail!(
                    "{} already holds a store; give an empty directory",
                    dir.display()
                );
            }
            dir.clone()
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir)?);
    let last = std::sync::Mutex::new(std::time::Instant::now());
    let report = harness::run(store, &config, |phase, done, total| {
        let mut last = last.lock().expect("lock");
        if last.elapsed().as_millis() >= 1000 || done == total {
            eprintln!("{phase}: {done}/{total}");
            *last = std::time::Instant::now();
        }
    })
    .await?;
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}
