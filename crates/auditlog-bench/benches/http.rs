//! The end-to-end HTTP benchmark: starts the server in this process on a port-0 listener,
//! ingests a generated history through `POST /api/audit-logs/events` from keep-alive
//! clients, then measures single-event ingest, list latency (idle and under ingest load),
//! exports of the largest organization and the process's peak memory around them, and prints
//! the figures as a Markdown table (see `auditlog_bench::http`).
//!
//! ```text
//! cargo bench -p auditlog-bench --bench http -- --events 200000 [--seed 42] [--orgs 200]
//!     [--backend sqlite|postgres] [--database-url URL] [--data-dir PATH]
//!     [--replicas N] [--replicas-sweep]
//! ```
//!
//! Progress goes to stderr, the report to stdout. The SQLite store, the signing key and the
//! export files live in a temporary directory that is removed at the end unless `--data-dir`
//! is given (it must not hold a store already). With `--backend postgres` (implied by
//! `--database-url`, or taken from `AUDITLOG_DATABASE_URL`) the events go to that database,
//! which should be empty: create a fresh one per run. Run without cargo's `--bench` flag (as
//! `cargo test --all-targets` does) it makes a quick smoke run on a couple of thousand events.
//!
//! `--replicas N` (PostgreSQL only) starts N servers in this process, each with its own
//! `PostgresStore::connect` pool and `AppState`, on the one database and data directory, and
//! spreads the ingest clients over them. `--replicas-sweep` instead pre-loads 50,000 events
//! (or `--events`), then measures batch ingest (50,000 events in batches of 1,000, 6 clients)
//! and single-event requests (64 clients, 10 s) through 1, 2, … N replicas (N = 3 unless
//! given), and prints one table row per N.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use auditlog_bench::http::{self, HttpBenchConfig};
use auditlog_bench::report::Progress;
use auditlog_postgres::PostgresStore;
use auditlog_sqlite::SqliteStore;
use auditlog_store::{Store, StoreError};

const USAGE: &str = "usage: cargo bench -p auditlog-bench --bench http -- \
[--events N] [--seed N] [--orgs N] [--backend sqlite|postgres] [--database-url URL] \
[--data-dir PATH]

  --events N           events to ingest through HTTP before measuring (default 200,000)
  --seed N             seed of the generated history (default 42)
  --orgs N             organizations of the history (default 200; 1 puts every event in the
                       exported organization)
  --backend NAME       sqlite (default) or postgres
  --database-url URL   the PostgreSQL database (implies --backend postgres; default
                       $AUDITLOG_DATABASE_URL); it should be empty
  --data-dir PATH      keep the SQLite store, signing key and exports in PATH instead of a
                       temporary directory
  --replicas N         PostgreSQL only: N in-process servers, each with its own connection
                       pool, sharing the database and data directory; the ingest clients are
                       spread over them (default 1)
  --replicas-sweep     PostgreSQL only: pre-load 50,000 events (or --events), then measure
                       batch and single-event ingest through 1, 2, … N replicas (N defaults
                       to 3)";

/// Which store the server runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres(String),
}

struct Args {
    config: HttpBenchConfig,
    backend: Backend,
    data_dir: Option<PathBuf>,
    /// Servers (replicas) to start; PostgreSQL only above 1.
    replicas: usize,
    /// Measure 1 … `replicas` replicas in turn instead of the standard run.
    sweep: bool,
}

/// Batch clients of the replica sweep: divides evenly over 1, 2 and 3 replicas.
const SWEEP_BATCH_CLIENTS: usize = 6;
/// Events the replica sweep pre-loads unless `--events` says otherwise.
const SWEEP_PRELOAD: u64 = 50_000;

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut events = None;
    let mut seed = 42;
    let mut orgs = None;
    let mut backend_name: Option<String> = None;
    let mut database_url = None;
    let mut data_dir = None;
    let mut replicas = None;
    let mut sweep = false;
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
        let number = |name: &str, text: String| {
            let text = text.replace(['_', ','], "");
            text.parse::<u64>()
                .map_err(|_| format!("{name}: {text:?} is not a number"))
        };
        match flag.as_str() {
            "--bench" => bench_mode = true,
            "--events" => events = Some(number("--events", value("--events")?)?),
            "--seed" => seed = number("--seed", value("--seed")?)?,
            "--orgs" => orgs = Some(number("--orgs", value("--orgs")?)?),
            "--backend" => backend_name = Some(value("--backend")?.to_ascii_lowercase()),
            "--database-url" => database_url = Some(value("--database-url")?),
            "--data-dir" => data_dir = Some(PathBuf::from(value("--data-dir")?)),
            "--replicas" => replicas = Some(number("--replicas", value("--replicas")?)?),
            "--replicas-sweep" => sweep = true,
            "-h" | "--help" => return Err(String::new()),
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            // A positional argument is a benchmark name filter from cargo: there is one benchmark.
            _ => {}
        }
    }
    let mut config = match (bench_mode, events) {
        (_, Some(n)) => HttpBenchConfig::new(n, seed),
        (true, None) if sweep => HttpBenchConfig::new(SWEEP_PRELOAD, seed),
        (true, None) => HttpBenchConfig::new(HttpBenchConfig::STANDARD, seed),
        (false, None) => HttpBenchConfig::smoke(2_000, seed),
    };
    if config.n_events == 0 {
        return Err("--events must be at least 1".to_string());
    }
    if let Some(orgs) = orgs {
        if orgs == 0 {
            return Err("--orgs must be at least 1".to_string());
        }
        config.n_orgs = usize::try_from(orgs).map_err(|_| "--orgs is too large".to_string())?;
    }
    if backend_name.as_deref() == Some("sqlite") && database_url.is_some() {
        return Err("--database-url goes with --backend postgres".to_string());
    }
    let backend = match backend_name.as_deref() {
        None if database_url.is_some() => Backend::Postgres(database_url.unwrap_or_default()),
        None | Some("sqlite") => Backend::Sqlite,
        Some("postgres" | "postgresql") => Backend::Postgres(
            database_url
                .or_else(|| std::env::var("AUDITLOG_DATABASE_URL").ok())
                .ok_or("--backend postgres needs --database-url (or AUDITLOG_DATABASE_URL)")?,
        ),
        Some(other) => return Err(format!("--backend: {other:?} is not sqlite or postgres")),
    };
    let replicas = match replicas {
        Some(0) => return Err("--replicas must be at least 1".to_string()),
        Some(n) => usize::try_from(n).map_err(|_| "--replicas is too large".to_string())?,
        None if sweep => 3,
        None => 1,
    };
    if (replicas > 1 || sweep) && backend == Backend::Sqlite {
        return Err("--replicas and --replicas-sweep need --backend postgres".to_string());
    }
    if sweep {
        config.batch_clients = SWEEP_BATCH_CLIENTS;
    }
    config.backend = match backend {
        Backend::Sqlite => "SQLite".to_string(),
        Backend::Postgres(_) => "PostgreSQL".to_string(),
    };
    Ok(Args {
        config,
        backend,
        data_dir,
        replicas,
        sweep,
    })
}

/// Opens the store of the chosen backend.
async fn open_store(
    backend: &Backend,
    dir: &std::path::Path,
) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match backend {
        Backend::Sqlite => Arc::new(SqliteStore::open(dir)?),
        Backend::Postgres(url) => Arc::new(PostgresStore::connect(url).await?),
    })
}

/// Opens `replicas` stores of the chosen backend: separate pools on one database.
async fn open_stores(
    backend: &Backend,
    dir: &std::path::Path,
    replicas: usize,
) -> Result<Vec<Arc<dyn Store>>, StoreError> {
    let mut stores = Vec::with_capacity(replicas);
    for _ in 0..replicas.max(1) {
        stores.push(open_store(backend, dir).await?);
    }
    Ok(stores)
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
            if dir.join(auditlog_sqlite::DB_FILE).exists() {
                eprintln!(
                    "error: {} already holds a store; give an empty directory",
                    dir.display()
                );
                return ExitCode::FAILURE;
            }
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
        "auditlog HTTP benchmark: {} events, {} organizations, seed {}, {} store, {} replica(s){}, files in {}",
        args.config.n_events,
        args.config.n_orgs,
        args.config.seed,
        args.config.backend,
        args.replicas,
        if args.sweep { " (sweep)" } else { "" },
        dir.display()
    );
    let progress = Progress::new();
    let report = |phase: &str, done, total| progress.report(phase, done, total);
    if args.sweep {
        let result = runtime.block_on(async {
            let stores = open_stores(&args.backend, &dir, args.replicas)
                .await
                .map_err(|e| format!("cannot open the store: {e}"))?;
            let report = http::run_replica_sweep(
                stores.clone(),
                &dir,
                &args.config,
                http::SWEEP_STEP_EVENTS,
                report,
            )
            .await
            .map_err(|e| e.to_string());
            stores.iter().for_each(|store| store.close());
            report
        });
        drop(runtime);
        return match result {
            Ok(report) => {
                println!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let result = runtime.block_on(async {
        let stores = open_stores(&args.backend, &dir, args.replicas)
            .await
            .map_err(|e| format!("cannot open the store: {e}"))?;
        // The one-table SQLite baseline runs in the same process and run, in its own file,
        // so that every figure is also a ratio.
        let config = HttpBenchConfig {
            baseline_dir: Some(dir.clone()),
            ..args.config.clone()
        };
        let report = http::run_replicated(stores.clone(), &dir, &config, report)
            .await
            .map_err(|e| e.to_string());
        stores.iter().for_each(|store| store.close());
        report
    });
    drop(runtime);
    match result {
        Ok(report) => {
            for list in &report.lists {
                eprintln!(
                    "list {}: idle {} runs (mean {:.1} items, max {:.2} ms); under load {} runs (max {:.2} ms)",
                    list.name,
                    list.idle.runs,
                    list.idle_items,
                    list.idle.max.as_secs_f64() * 1000.0,
                    list.loaded.runs,
                    list.loaded.max.as_secs_f64() * 1000.0
                );
            }
            for export in &report.exports {
                eprintln!(
                    "export{}: {} events, {} bytes, job {:.2} s, download {:.2} s",
                    if export.gzip { " (gzip)" } else { "" },
                    export.events,
                    export.file_bytes,
                    export.job.as_secs_f64(),
                    export.download.as_secs_f64()
                );
            }
            eprintln!(
                "single-event load: {} requests in {:.1} s; during the loaded lists: {} in {:.1} s",
                report.single.requests,
                report.single.elapsed.as_secs_f64(),
                report.background.requests,
                report.background.elapsed.as_secs_f64()
            );
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
