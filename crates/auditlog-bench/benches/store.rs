//! The end-to-end benchmark of the SQLite store: loads a generated history and prints the
//! figures as a Markdown table.
//!
//! ```text
//! cargo bench -p auditlog-bench --bench store -- --events 1000000 [--seed 42] [--data-dir PATH]
//! cargo bench -p auditlog-bench --bench store -- --large        # 10,000,000 events
//! ```
//!
//! Progress goes to stderr, the report to stdout. Without `--data-dir` the store lives in a
//! temporary directory that is removed at the end; with it, the files are kept there (the
//! directory must not hold a store already). Run without cargo's `--bench` flag (as
//! `cargo test --all-targets` does) it makes a quick smoke run on a few thousand events.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use auditlog_bench::harness::{self, BenchConfig};
use auditlog_bench::report::Progress;
use auditlog_sqlite::SqliteStore;
use auditlog_store::Store;

const USAGE: &str = "usage: cargo bench -p auditlog-bench --bench store -- \
[--events N | --large] [--seed N] [--data-dir PATH]

  --events N       events to load before measuring (default 1,000,000)
  --large          10,000,000 events
  --seed N         seed of the generated history (default 42)
  --data-dir PATH  keep the store in PATH instead of a temporary directory
  --query-runs N   timed runs per query (default 200; more for profiling)
  --proven-export FILE  write the largest organization's export with proofs to FILE (and
                   its verifier key to FILE.vkey) for checking with another verifier
  --database-url URL  measure PostgreSQL (an empty database) instead of SQLite";

struct Args {
    config: BenchConfig,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut events = None;
    let mut seed = 42;
    let mut data_dir = None;
    let mut database_url = None;
    let mut query_runs = None;
    let mut proven_export = None;
    let mut bench_mode = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_string(), Some(value.to_string()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--bench" => bench_mode = true,
            "--events" => {
                let text = value("--events")?.replace(['_', ','], "");
                events = Some(
                    text.parse::<u64>()
                        .map_err(|_| format!("--events: {text:?} is not a number"))?,
                );
            }
            "--large" => events = Some(BenchConfig::LARGE),
            "--seed" => {
                let text = value("--seed")?;
                seed = text
                    .parse()
                    .map_err(|_| format!("--seed: {text:?} is not a number"))?;
            }
            "--data-dir" => data_dir = Some(PathBuf::from(value("--data-dir")?)),
            "--database-url" => database_url = Some(value("--database-url")?),
            "--proven-export" => proven_export = Some(PathBuf::from(value("--proven-export")?)),
            "--query-runs" => {
                let text = value("--query-runs")?;
                query_runs = Some(
                    text.parse::<usize>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| {
                            format!("--query-runs: {text:?} is not a positive number")
                        })?,
                );
            }
            "-h" | "--help" => return Err(String::new()),
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            // A positional argument is a benchmark name filter from cargo: there is one benchmark.
            _ => {}
        }
    }
    let mut config = match (bench_mode, events) {
        (_, Some(n)) => BenchConfig::new(n, seed),
        (true, None) => BenchConfig::new(BenchConfig::STANDARD, seed),
        (false, None) => BenchConfig::smoke(3_000, seed),
    };
    if let Some(runs) = query_runs {
        config.query_runs = runs;
    }
    config.proven_export = proven_export;
    if config.n_events == 0 {
        return Err("--events must be at least 1".to_string());
    }
    Ok(Args {
        config,
        data_dir,
        database_url,
    })
}

/// Bytes of the files directly in `dir`.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| entry.metadata().ok())
                .filter(|meta| meta.is_file())
                .map(|meta| meta.len())
                .sum()
        })
        .unwrap_or(0)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    let temp;
    let dir = match &args.data_dir {
        Some(dir) => {
            if let Err(e) = std::fs::create_dir_all(dir) {
                eprintln!("error: cannot create {}: {e}", dir.display());
                return ExitCode::FAILURE;
            }
            dir.clone()
        }
        None => {
            temp = match tempfile::tempdir() {
                Ok(temp) => temp,
                Err(e) => {
                    eprintln!("error: cannot create a temporary directory: {e}");
                    return ExitCode::FAILURE;
                }
            };
            temp.path().to_path_buf()
        }
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    eprintln!(
        "auditlog store benchmark: {} events, seed {}, {}",
        args.config.n_events,
        args.config.seed,
        match &args.database_url {
            Some(_) => "PostgreSQL store".to_string(),
            None => format!("SQLite store in {}", dir.display()),
        }
    );
    // The baseline (one SQLite table with four indexes) is measured in the same run, in its
    // own file beside the store, so that every figure is also a ratio.
    let mut config = args.config.clone();
    config.baseline_dir = Some(dir.clone());
    let progress = Progress::new();
    let result = runtime.block_on(async {
        let store: Arc<dyn Store> = match &args.database_url {
            Some(url) => Arc::new(auditlog_postgres::PostgresStore::connect(url).await?),
            None => Arc::new(SqliteStore::open(&dir)?),
        };
        harness::run(store, &config, |phase, done, total| {
            progress.report(phase, done, total)
        })
        .await
    });
    // The store is closed by now; what stays on disk may differ from what it reported while
    // open (a write-ahead log folded back in, for example).
    drop(runtime);
    let closed_bytes =
        dir_bytes(&dir).saturating_sub(auditlog_bench::baseline::Baseline::disk_bytes(&dir));
    match result {
        Ok(report) => {
            eprintln!(
                "files in {} after the store closed: {:.1} MiB, {:.0} bytes/event",
                dir.display(),
                closed_bytes as f64 / 1_048_576.0,
                closed_bytes as f64 / report.total_events.max(1) as f64
            );
            for query in &report.queries {
                eprintln!(
                    "{}: {} runs, mean {:.1} rows, max {:.2} ms",
                    query.name,
                    query.latency.runs,
                    query.latency.mean_rows,
                    query.latency.max.as_secs_f64() * 1000.0
                );
            }
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
