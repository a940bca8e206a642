//! The end-to-end HTTP benchmark: the server runs in this process on a port-0 listener over
//! the given store, and clients speak HTTP/1.1 to it over loopback TCP on keep-alive
//! connections (`Content-Length` requests, exactly one response read per request), so every
//! figure includes the socket, routing, authentication, JSON and the store.
//!
//! [`run`] does, in order:
//! 1. creates the history's organizations, a platform-wide ingest key and an API token of an
//!    administrator of the largest organization, and starts the server with the rate limit
//!    off;
//! 2. ingests the generated history through `POST /api/audit-logs/events` as JSON arrays of
//!    1,000 events from 4 concurrent clients; each 201 comes after the commit. The batches
//!    are generated (and encoded as complete requests) before each timed stretch of 100
//!    batches, so generation does not compete with the server for the CPU;
//! 3. sends single-event requests from 64 concurrent clients for a fixed time;
//! 4. measures list latency (the newest page, and an action + actor filter combined with
//!    `and`, 50 per page, in the largest organization) idle, and again while the load of 3
//!    runs;
//! 5. exports the whole largest organization as JSON Lines and as gzip (request, poll until
//!    completed, download): job and download throughput;
//! 6. reads the process's peak resident memory (`VmHWM` of `/proc/self/status`) before the
//!    exports and after them; the peak is reset when the exports start (`/proc/self/clear_refs`)
//!    where the kernel allows, so the second figure is the peak of the exports alone.
//!
//! The [`HttpReport`] prints as a Markdown table (`metric | value | unit`).

use crate::report::{millis, thousands, write_table};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auditlog_core::Catalog;
use auditlog_server::{AppState, ServerConfig};
use auditlog_service::access::Actor;
use auditlog_service::Service;
use auditlog_store::{NewOrg, Org, Role, Store, StoreError};
use auditlog_testkit::http::{percent_encode, Connection, Request};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::generate::{History, HistorySpec};
use crate::harness::Throughput;

/// How long one request may take before the benchmark fails instead of hanging.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// How often an export job's status is polled.
const POLL_EVERY: Duration = Duration::from_millis(20);
/// Events a single-event load may draw beyond the loaded history (far more than it can use).
const LIVE_EVENTS: u64 = 1_000_000_000;
/// Distinct action + actor pairs of the largest organization kept for the filtered list.
const FILTER_PAIRS: usize = 256;

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpBenchConfig {
    /// Events of generated history ingested through HTTP before the other measurements
    /// ([`HttpBenchConfig::STANDARD`] by default).
    pub n_events: u64,
    /// Seed of the generated history and of the query parameters.
    pub seed: u64,
    /// Organizations of the history (200); 1 puts every event in one organization, so the
    /// export covers the whole history.
    pub n_orgs: usize,
    /// Events per ingest request of the bulk ingest (1,000, the most a request may hold).
    pub batch_size: usize,
    /// Concurrent keep-alive clients of the bulk ingest (4).
    pub batch_clients: usize,
    /// Batches generated before each timed stretch of the bulk ingest (100).
    pub chunk_batches: usize,
    /// Concurrent keep-alive clients of the single-event load (64).
    pub single_clients: usize,
    /// How long the single-event load runs on its own (10 s).
    pub single_duration: Duration,
    /// Timed runs per list query (200), after [`HttpBenchConfig::warmup_runs`] untimed ones.
    pub list_runs: usize,
    /// Untimed runs per list query before timing (5).
    pub warmup_runs: usize,
    /// Stop timing a list query after this long, once it has at least 20 runs (15 s).
    pub list_budget: Duration,
    /// A name for the store in the report, e.g. `SQLite`.
    pub backend: String,
    /// Where to keep the one-table SQLite [`Baseline`](crate::baseline::Baseline) measured
    /// in the same run (its own file), or `None` for none.
    pub baseline_dir: Option<PathBuf>,
}

impl HttpBenchConfig {
    /// The events of the standard run.
    pub const STANDARD: u64 = 200_000;

    /// The standard settings with the given size and seed.
    pub fn new(n_events: u64, seed: u64) -> HttpBenchConfig {
        HttpBenchConfig {
            n_events,
            seed,
            n_orgs: 200,
            batch_size: 1_000,
            batch_clients: 4,
            chunk_batches: 100,
            single_clients: 64,
            single_duration: Duration::from_secs(10),
            list_runs: 200,
            warmup_runs: 5,
            list_budget: Duration::from_secs(15),
            backend: "SQLite".to_string(),
            baseline_dir: None,
        }
    }

    /// A few seconds' worth of everything, for smoke tests: `n_events` events, one second
    /// of single-event load, 10 runs per list query.
    pub fn smoke(n_events: u64, seed: u64) -> HttpBenchConfig {
        HttpBenchConfig {
            single_duration: Duration::from_secs(1),
            list_runs: 10,
            warmup_runs: 1,
            list_budget: Duration::from_secs(2),
            ..HttpBenchConfig::new(n_events, seed)
        }
    }

    /// The spec of the history this config ingests.
    pub fn history_spec(&self) -> HistorySpec {
        HistorySpec {
            n_orgs: self.n_orgs.max(1),
            ..HistorySpec::new(self.n_events, self.seed)
        }
    }
}

impl Default for HttpBenchConfig {
    /// 200,000 events, seed 42.
    fn default() -> HttpBenchConfig {
        HttpBenchConfig::new(HttpBenchConfig::STANDARD, 42)
    }
}

/// Why the benchmark stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchError(String);

impl BenchError {
    fn new(message: impl Into<String>) -> BenchError {
        BenchError(message.into())
    }

    /// An unexpected status: names the request and shows the start of the body.
    fn status(what: &str, reply: &Reply) -> BenchError {
        let body = String::from_utf8_lossy(&reply.body);
        BenchError(format!(
            "{what}: unexpected status {}: {}",
            reply.status,
            body.chars().take(500).collect::<String>()
        ))
    }
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}

impl From<auditlog_service::access::AccessError> for BenchError {
    fn from(e: auditlog_service::access::AccessError) -> BenchError {
        BenchError(format!("access: {e}"))
    }
}

impl From<StoreError> for BenchError {
    fn from(e: StoreError) -> BenchError {
        BenchError(format!("store: {e}"))
    }
}

impl From<std::io::Error> for BenchError {
    fn from(e: std::io::Error) -> BenchError {
        BenchError(format!("I/O: {e}"))
    }
}

impl From<auditlog_service::keys::KeyError> for BenchError {
    fn from(e: auditlog_service::keys::KeyError) -> BenchError {
        BenchError(format!("signing key: {e}"))
    }
}

impl From<auditlog_service::IngestError> for BenchError {
    fn from(e: auditlog_service::IngestError) -> BenchError {
        BenchError(format!("service: {e}"))
    }
}

impl From<tokio::task::JoinError> for BenchError {
    fn from(e: tokio::task::JoinError) -> BenchError {
        BenchError(format!("a benchmark task failed: {e}"))
    }
}

/// Latency percentiles of repeated requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Percentiles {
    /// Timed requests.
    pub runs: usize,
    /// Median.
    pub p50: Duration,
    /// 99th percentile (nearest rank).
    pub p99: Duration,
    /// Slowest request.
    pub max: Duration,
}

impl Percentiles {
    /// The percentiles of `samples` (all zero when there are none).
    pub fn of(mut samples: Vec<Duration>) -> Percentiles {
        if samples.is_empty() {
            return Percentiles::default();
        }
        samples.sort_unstable();
        let n = samples.len();
        let rank = |p: f64| samples[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
        Percentiles {
            runs: n,
            p50: rank(0.50),
            p99: rank(0.99),
            max: samples[n - 1],
        }
    }
}

/// Requests made by concurrent clients over a stretch of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Load {
    /// Concurrent clients.
    pub clients: usize,
    /// Requests answered.
    pub requests: u64,
    /// Events those requests carried.
    pub events: u64,
    /// Request body bytes sent.
    pub body_bytes: u64,
    /// Wall-clock time the requests took (for the bulk ingest, the timed stretches only).
    pub elapsed: Duration,
    /// Latency of one request.
    pub latency: Percentiles,
}

impl Load {
    /// Requests per second.
    pub fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Events per second.
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// One list query, idle and under load.
#[derive(Debug, Clone, PartialEq)]
pub struct ListResult {
    /// What was measured, e.g. `newest page (limit 50)`.
    pub name: String,
    /// Latency with nothing else running.
    pub idle: Percentiles,
    /// Mean items per page, idle.
    pub idle_items: f64,
    /// Latency while the single-event load runs.
    pub loaded: Percentiles,
}

/// One export of the whole largest organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportResult {
    /// Gzip-compressed JSON Lines rather than plain.
    pub gzip: bool,
    /// Events exported (the job's `total_records`).
    pub events: u64,
    /// Size of the downloaded file.
    pub file_bytes: u64,
    /// From the request to the first status poll that says `completed` (polled every 20 ms).
    pub job: Duration,
    /// From the download request to its last byte.
    pub download: Duration,
}

impl ExportResult {
    /// Events per second of the job.
    pub fn job_events_per_second(&self) -> f64 {
        self.events as f64 / self.job.as_secs_f64().max(1e-9)
    }

    /// File megabytes (10⁶ bytes) per second of the job.
    pub fn job_mb_per_second(&self) -> f64 {
        self.file_bytes as f64 / 1e6 / self.job.as_secs_f64().max(1e-9)
    }

    /// Events per second of the download.
    pub fn download_events_per_second(&self) -> f64 {
        self.events as f64 / self.download.as_secs_f64().max(1e-9)
    }

    /// Megabytes (10⁶ bytes) per second of the download.
    pub fn download_mb_per_second(&self) -> f64 {
        self.file_bytes as f64 / 1e6 / self.download.as_secs_f64().max(1e-9)
    }
}

/// Resident memory of the process around the exports, in bytes (`None` where
/// `/proc/self/status` is not readable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Memory {
    /// `VmHWM` just before the exports: the peak since the process started (the bulk ingest
    /// keeps a stretch of pre-encoded requests in memory).
    pub peak_before: Option<u64>,
    /// `VmRSS` just before the exports.
    pub rss_before: Option<u64>,
    /// Whether the peak was reset to the current resident size when the exports started.
    pub peak_reset: bool,
    /// `VmHWM` just after the exports: their own peak when [`Memory::peak_reset`], else the
    /// peak since the process started.
    pub peak_after: Option<u64>,
}

/// The figures of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpReport {
    /// The store's name, from the config.
    pub backend: String,
    /// Events ingested before the other measurements.
    pub n_events: u64,
    /// Organizations.
    pub n_orgs: usize,
    /// Events per request of the bulk ingest.
    pub batch_size: usize,
    /// Generating the history and encoding it as requests, on one thread, untimed otherwise.
    pub generation: Throughput,
    /// The bulk ingest.
    pub ingest: Load,
    /// The single-event load on its own.
    pub single: Load,
    /// List latencies.
    pub lists: Vec<ListResult>,
    /// The single-event load that ran while the lists were measured under load.
    pub background: Load,
    /// The exports of the largest organization: JSON Lines, then gzip.
    pub exports: Vec<ExportResult>,
    /// Resident memory around the exports.
    pub memory: Memory,
    /// The whole run, wall clock.
    pub elapsed: Duration,
    /// The same work done the obvious way in-process, when measured.
    pub baseline: Option<HttpBaseline>,
}

/// What the one-table SQLite baseline measured, in process (no HTTP), on the same events:
/// the floor an HTTP service on that storage could not go below.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpBaseline {
    /// The same history, in durable transactions of `batch_size` events.
    pub ingest: Throughput,
    /// Single-event durable transactions, one after the other.
    pub single: Throughput,
    /// The newest page of the largest organization.
    pub newest: Percentiles,
    /// The action + actor filter, with the same pairs.
    pub filtered: Percentiles,
    /// Reading and writing the largest organization's events as JSON lines.
    pub export: Throughput,
}

impl HttpBaseline {
    /// The baseline's figure for a row of the report, and whether more is better.
    fn figure(&self, metric: &str, unit: &str) -> Option<(f64, bool)> {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let list = |p: &Percentiles| {
            if metric.ends_with("idle, p50") {
                Some((ms(p.p50), false))
            } else if metric.ends_with("idle, p99") {
                Some((ms(p.p99), false))
            } else {
                None
            }
        };
        if metric.starts_with("HTTP ingest, batches") && unit == "events/s" {
            Some((self.ingest.per_second(), true))
        } else if metric.starts_with("single-event ingest,") && unit == "requests/s" {
            Some((self.single.per_second(), true))
        } else if metric.starts_with("list newest page") {
            list(&self.newest)
        } else if metric.starts_with("list action_key") {
            list(&self.filtered)
        } else if metric == "export job (JSON Lines), request → completed" && unit == "events/s" {
            Some((self.export.per_second(), true))
        } else {
            None
        }
    }
}

impl HttpReport {
    /// The table's rows: `(metric, value, unit)`.
    pub fn rows(&self) -> Vec<(String, String, &'static str)> {
        let mut rows = vec![
            ("store".to_string(), self.backend.clone(), ""),
            (
                "events pre-loaded through HTTP ingest".to_string(),
                thousands(self.n_events),
                "events",
            ),
            (
                "organizations".to_string(),
                thousands(self.n_orgs as u64),
                "orgs",
            ),
            (
                "history generation + request encoding (one thread, outside the timings)"
                    .to_string(),
                thousands(self.generation.per_second() as u64),
                "events/s",
            ),
        ];
        let batch = thousands(self.batch_size as u64);
        let ingest = format!(
            "HTTP ingest, batches of {batch}, {} keep-alive clients (201 after commit)",
            self.ingest.clients
        );
        rows.push((
            ingest.clone(),
            thousands(self.ingest.events_per_second() as u64),
            "events/s",
        ));
        rows.push((
            format!("{ingest}, request p50"),
            millis(self.ingest.latency.p50),
            "ms",
        ));
        rows.push((
            format!("{ingest}, request p99"),
            millis(self.ingest.latency.p99),
            "ms",
        ));
        rows.push((
            "HTTP ingest request body per event".to_string(),
            format!(
                "{:.0}",
                self.ingest.body_bytes as f64 / self.ingest.events.max(1) as f64
            ),
            "bytes",
        ));
        let single = format!(
            "single-event ingest, {} keep-alive clients, {:.0} s",
            self.single.clients,
            self.single.elapsed.as_secs_f64()
        );
        rows.push((
            single.clone(),
            thousands(self.single.requests_per_second() as u64),
            "requests/s",
        ));
        rows.push((
            format!("{single}, p50"),
            millis(self.single.latency.p50),
            "ms",
        ));
        rows.push((
            format!("{single}, p99"),
            millis(self.single.latency.p99),
            "ms",
        ));
        for list in &self.lists {
            rows.push((
                format!("list {}, idle, p50", list.name),
                millis(list.idle.p50),
                "ms",
            ));
            rows.push((
                format!("list {}, idle, p99", list.name),
                millis(list.idle.p99),
                "ms",
            ));
        }
        for list in &self.lists {
            let load = format!(
                "during single-event ingest ({} clients)",
                self.background.clients
            );
            rows.push((
                format!("list {}, {load}, p50", list.name),
                millis(list.loaded.p50),
                "ms",
            ));
            rows.push((
                format!("list {}, {load}, p99", list.name),
                millis(list.loaded.p99),
                "ms",
            ));
        }
        rows.push((
            format!(
                "single-event ingest while the lists ran ({} clients)",
                self.background.clients
            ),
            thousands(self.background.requests_per_second() as u64),
            "requests/s",
        ));
        for export in &self.exports {
            let kind = if export.gzip {
                "JSON Lines, gzip"
            } else {
                "JSON Lines"
            };
            rows.push((
                format!("export of the largest org ({kind}): events"),
                thousands(export.events),
                "events",
            ));
            rows.push((
                format!("export of the largest org ({kind}): file size"),
                format!("{:.1}", export.file_bytes as f64 / 1e6),
                "MB",
            ));
            rows.push((
                format!("export job ({kind}), request → completed"),
                thousands(export.job_events_per_second() as u64),
                "events/s",
            ));
            rows.push((
                format!("export job ({kind}), request → completed"),
                format!("{:.1}", export.job_mb_per_second()),
                "MB/s",
            ));
            rows.push((
                format!("export download ({kind})"),
                thousands(export.download_events_per_second() as u64),
                "events/s",
            ));
            rows.push((
                format!("export download ({kind})"),
                format!("{:.1}", export.download_mb_per_second()),
                "MB/s",
            ));
        }
        let mib = |bytes: Option<u64>| {
            bytes.map_or_else(
                || "n/a".to_string(),
                |b| format!("{:.1}", b as f64 / 1_048_576.0),
            )
        };
        let memory = &self.memory;
        rows.push((
            "peak RSS before the exports (VmHWM since start)".to_string(),
            mib(memory.peak_before),
            "MiB",
        ));
        rows.push((
            "RSS when the exports start (VmRSS)".to_string(),
            mib(memory.rss_before),
            "MiB",
        ));
        if memory.peak_reset {
            rows.push((
                "peak RSS after the exports (VmHWM, reset when they started)".to_string(),
                mib(memory.peak_after),
                "MiB",
            ));
            rows.push((
                "peak RSS growth during the exports (over RSS at their start)".to_string(),
                mib(memory
                    .peak_after
                    .zip(memory.rss_before)
                    .map(|(after, before)| after.saturating_sub(before))),
                "MiB",
            ));
        } else {
            rows.push((
                "peak RSS after the exports (VmHWM since start)".to_string(),
                mib(memory.peak_after),
                "MiB",
            ));
        }
        rows.push((
            "whole run, wall clock".to_string(),
            format!("{:.0}", self.elapsed.as_secs_f64()),
            "s",
        ));
        rows
    }
}

impl fmt::Display for HttpReport {
    /// A Markdown table; with a baseline, `metric | auditlog | baseline | × | unit`, where
    /// `×` is how many times better than the baseline auditlog is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(baseline) = &self.baseline else {
            return write_table(f, &self.rows());
        };
        writeln!(f, "| metric | auditlog | baseline | × | unit |")?;
        writeln!(f, "|---|---:|---:|---:|---|")?;
        for (metric, value, unit) in self.rows() {
            let (base, ratio) = match baseline.figure(&metric, unit) {
                Some((base, more_is_better)) => {
                    let ours: f64 = value.replace(',', "").parse().unwrap_or(f64::NAN);
                    let ratio = if more_is_better {
                        ours / base.max(1e-9)
                    } else {
                        base / ours.max(1e-9)
                    };
                    let shown = if unit == "ms" {
                        millis(Duration::from_secs_f64(base / 1000.0))
                    } else {
                        thousands(base as u64)
                    };
                    (shown, format!("{ratio:.2}"))
                }
                None => (String::new(), String::new()),
            };
            writeln!(f, "| {metric} | {value} | {base} | {ratio} | {unit} |")?;
        }
        Ok(())
    }
}

/// Measures the [`Baseline`](crate::baseline::Baseline) in `dir` on the same history: the
/// bulk load in batches of `batch_size`, `n_single` single-event transactions, the newest
/// page and the action + actor filter of the largest organization (organization 0), and its
/// export.
fn measure_baseline(
    dir: &Path,
    config: &HttpBenchConfig,
    pairs: &[(String, String)],
    progress: &impl Fn(&str, u64, u64),
) -> Result<HttpBaseline, BenchError> {
    use crate::baseline::Baseline;
    let fail = |e: rusqlite::Error| BenchError::new(format!("baseline: {e}"));
    let catalog = Catalog::builtin();
    let mut baseline = Baseline::open(dir).map_err(fail)?;
    let spec = config.history_spec();
    let mut history = History::new(spec.clone());
    let now = {
        let mut probe = history.clone();
        probe.extend(LIVE_EVENTS);
        probe.safe_now()
    };
    let (loaded, elapsed) = baseline
        .load(
            &mut history,
            config.n_events,
            config.batch_size,
            (&catalog, now),
            |done| progress("baseline: ingest", done, config.n_events),
        )
        .map_err(fail)?;
    let ingest = Throughput {
        events: loaded,
        elapsed,
    };
    history.extend(LIVE_EVENTS);
    let (singles, elapsed) = baseline
        .load(&mut history, 2_000, 1, (&catalog, now), |_| {})
        .map_err(fail)?;
    let single = Throughput {
        events: singles,
        elapsed,
    };
    progress("baseline: single events", 1, 1);
    let time =
        |op: &mut dyn FnMut(usize) -> rusqlite::Result<u64>| -> Result<Percentiles, BenchError> {
            for i in 0..config.warmup_runs {
                op(i).map_err(fail)?;
            }
            let mut samples = Vec::with_capacity(config.list_runs);
            for i in 0..config.list_runs.max(1) {
                let started = Instant::now();
                op(i).map_err(fail)?;
                samples.push(started.elapsed());
            }
            Ok(Percentiles::of(samples))
        };
    let newest = time(&mut |_| Ok(baseline.page(0, None, 50)?.0))?;
    let filtered = if pairs.is_empty() {
        Percentiles::default()
    } else {
        time(&mut |i| {
            let (action, email) = &pairs[i % pairs.len()];
            baseline.action_user(0, std::slice::from_ref(action), email, i64::MIN, 50)
        })?
    };
    progress("baseline: lists", 1, 1);
    let mut line = Vec::with_capacity(2048);
    let started = Instant::now();
    let exported = baseline.export(0, &mut line).map_err(fail)?;
    let export = Throughput {
        events: exported,
        elapsed: started.elapsed(),
    };
    progress("baseline: export", 1, 1);
    Ok(HttpBaseline {
        ingest,
        single,
        newest,
        filtered,
        export,
    })
}

/// A field of `/proc/self/status` in bytes (`VmHWM`, `VmRSS`, …); `None` off Linux.
pub fn proc_status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        let kib: u64 = rest.trim().strip_suffix("kB")?.trim().parse().ok()?;
        Some(kib * 1024)
    })
}

/// Resets the process's peak resident size (`VmHWM`) to its current size; false where the
/// kernel does not allow it.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Runs the benchmark against `store`, which should be empty; `data_dir` receives the
/// signing key and the export files. `progress(phase, done, total)` is called as work
/// advances (often: throttle before printing).
pub async fn run(
    store: Arc<dyn Store>,
    data_dir: &Path,
    config: &HttpBenchConfig,
    progress: impl Fn(&str, u64, u64),
) -> Result<HttpReport, BenchError> {
    run_replicated(vec![store], data_dir, config, progress).await
}

/// [`run`] with one in-process server (replica) per store, all sharing `data_dir`: the
/// stores should be separate connections to one database (PostgreSQL). The bulk ingest's
/// and the single-event loads' clients are spread over the replicas in turn; the lists and
/// exports go to the first one.
pub async fn run_replicated(
    stores: Vec<Arc<dyn Store>>,
    data_dir: &Path,
    config: &HttpBenchConfig,
    progress: impl Fn(&str, u64, u64),
) -> Result<HttpReport, BenchError> {
    let run_started = Instant::now();
    let store = stores
        .first()
        .cloned()
        .ok_or_else(|| BenchError::new("no store to run on"))?;
    let history = History::new(config.history_spec());
    let setup = Setup::create(&store, data_dir, &history, &progress).await?;
    let servers = Servers::start(&stores, data_dir).await?;

    let result = measure(
        MeasureContext {
            store: &store,
            config,
            addr: servers.addrs[0],
            addrs: &servers.addrs,
            orgs: &setup.orgs,
            names: Arc::clone(&setup.names),
            ingest_token: Arc::clone(&setup.ingest_token),
            admin_token: &setup.admin_token,
            progress: &progress,
        },
        history,
    )
    .await;

    servers.stop().await?;
    let mut report = result?;
    report.elapsed = run_started.elapsed();
    Ok(report)
}

/// The organizations and credentials of a run.
struct Setup {
    orgs: Vec<Org>,
    names: Arc<Vec<String>>,
    admin_token: String,
    ingest_token: Arc<str>,
}

impl Setup {
    /// Creates the history's organizations, an administrator of the largest one with an API
    /// token, and a platform-wide ingest key.
    async fn create(
        store: &Arc<dyn Store>,
        data_dir: &Path,
        history: &History,
        progress: &impl Fn(&str, u64, u64),
    ) -> Result<Setup, BenchError> {
        let names: Arc<Vec<String>> =
            Arc::new(history.orgs().iter().map(|o| o.name.clone()).collect());
        let key = auditlog_service::keys::load_or_create(data_dir)?;
        let service = Service::new(store.clone(), Catalog::builtin(), key);
        let mut orgs: Vec<Org> = Vec::with_capacity(history.orgs().len());
        for (i, profile) in history.orgs().iter().enumerate() {
            orgs.push(
                store
                    .create_org(NewOrg {
                        name: profile.name.clone(),
                        display_name: profile.display_name.clone(),
                        audit_logs_enabled: true,
                    })
                    .await?,
            );
            progress(
                "create organizations",
                i as u64 + 1,
                history.orgs().len() as u64,
            );
        }
        let admin = service
            .add_user(
                &orgs[0],
                "bench-admin@auditlog.invalid",
                Some("Benchmark Admin"),
                Role::Admin,
                &Actor::operator(),
            )
            .await?;
        let (_, admin_token) = service
            .create_api_token(&orgs[0], &admin, "http-bench", None, &Actor::operator())
            .await?;
        let (_, ingest_token) = service.create_ingest_key(None, "http-bench").await?;
        Ok(Setup {
            orgs,
            names,
            admin_token,
            ingest_token: Arc::from(ingest_token.as_str()),
        })
    }
}

/// In-process servers, one per store, each with its own `Service` and `AppState` (its own
/// caches and job runner), sharing the data directory (signing key, exports) as replicas
/// share a volume; the rate limit is off.
struct Servers {
    addrs: Vec<SocketAddr>,
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
}

impl Servers {
    async fn start(stores: &[Arc<dyn Store>], data_dir: &Path) -> Result<Servers, BenchError> {
        let mut servers = Servers {
            addrs: Vec::with_capacity(stores.len()),
            stops: Vec::with_capacity(stores.len()),
            tasks: Vec::with_capacity(stores.len()),
        };
        for store in stores {
            let key = auditlog_service::keys::load_or_create(data_dir)?;
            let service = Service::new(store.clone(), Catalog::builtin(), key);
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let mut server_config =
                ServerConfig::new(data_dir.join("exports"), format!("http://{addr}"));
            server_config.rate_limit_per_second = 0;
            let state = AppState::new(service, server_config);
            let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
            servers.addrs.push(addr);
            servers.stops.push(shutdown);
            servers.tasks.push(tokio::spawn(auditlog_server::serve(
                state,
                listener,
                async move {
                    let _ = stopped.await;
                },
            )));
        }
        Ok(servers)
    }

    /// Shuts every server down and waits for it; the first failure wins.
    async fn stop(self) -> Result<(), BenchError> {
        for stop in self.stops {
            let _ = stop.send(());
        }
        let mut first_error = None;
        for task in self.tasks {
            if let Err(e) = task.await? {
                first_error.get_or_insert(BenchError::new(format!("the server failed: {e}")));
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// The replica sweep: events each step ingests in batches, by default.
pub const SWEEP_STEP_EVENTS: u64 = 50_000;

/// One step of the replica sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaStep {
    /// Servers the clients were spread over.
    pub replicas: usize,
    /// Ingest in batches of [`HttpBenchConfig::batch_size`].
    pub ingest: Load,
    /// Single-event requests for [`HttpBenchConfig::single_duration`].
    pub single: Load,
}

/// The figures of a replica sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaReport {
    /// The store's name, from the config.
    pub backend: String,
    /// Events ingested through the first replica before the steps.
    pub preload: u64,
    /// Organizations.
    pub n_orgs: usize,
    /// Events per request of the batch ingest.
    pub batch_size: usize,
    /// One per replica count, in order.
    pub steps: Vec<ReplicaStep>,
    /// The whole run, wall clock.
    pub elapsed: Duration,
}

impl fmt::Display for ReplicaReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} store, {} events pre-loaded, {} organizations",
            self.backend,
            thousands(self.preload),
            self.n_orgs
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "| replicas | ingest, batches of {}: events/s | batch p50 / p99 (ms) | \
             single-event: requests/s | single p50 / p99 (ms) |",
            thousands(self.batch_size as u64)
        )?;
        writeln!(f, "|---:|---:|---:|---:|---:|")?;
        for step in &self.steps {
            writeln!(
                f,
                "| {} | {} ({} clients) | {} / {} | {} ({} clients) | {} / {} |",
                step.replicas,
                thousands(step.ingest.events_per_second() as u64),
                step.ingest.clients,
                millis(step.ingest.latency.p50),
                millis(step.ingest.latency.p99),
                thousands(step.single.requests_per_second() as u64),
                step.single.clients,
                millis(step.single.latency.p50),
                millis(step.single.latency.p99),
            )?;
        }
        writeln!(f)?;
        write!(
            f,
            "whole run, wall clock: {:.0} s",
            self.elapsed.as_secs_f64()
        )
    }
}

/// The replica sweep: one in-process server per store (separate connections to one
/// database, sharing `data_dir`); pre-loads `config.n_events` through the first, then for
/// N = 1 … `stores.len()` spreads the same clients over the first N servers and measures
/// the ingest of `step_events` events in batches, then single-event requests for
/// `config.single_duration`. The client counts stay fixed, so the steps differ only in the
/// servers (and their connection pools) the load goes through.
pub async fn run_replica_sweep(
    stores: Vec<Arc<dyn Store>>,
    data_dir: &Path,
    config: &HttpBenchConfig,
    step_events: u64,
    progress: impl Fn(&str, u64, u64),
) -> Result<ReplicaReport, BenchError> {
    let run_started = Instant::now();
    let store = stores
        .first()
        .cloned()
        .ok_or_else(|| BenchError::new("no store to run on"))?;
    let history = History::new(config.history_spec());
    let setup = Setup::create(&store, data_dir, &history, &progress).await?;
    let servers = Servers::start(&stores, data_dir).await?;
    let result = sweep(
        MeasureContext {
            store: &store,
            config,
            addr: servers.addrs[0],
            addrs: &servers.addrs,
            orgs: &setup.orgs,
            names: Arc::clone(&setup.names),
            ingest_token: Arc::clone(&setup.ingest_token),
            admin_token: &setup.admin_token,
            progress: &progress,
        },
        history,
        step_events,
    )
    .await;
    servers.stop().await?;
    let mut report = result?;
    report.elapsed = run_started.elapsed();
    Ok(report)
}

/// The steps of [`run_replica_sweep`], the servers up.
async fn sweep<P: Fn(&str, u64, u64)>(
    cx: MeasureContext<'_, P>,
    history: History,
    step_events: u64,
) -> Result<ReplicaReport, BenchError> {
    let config = cx.config;
    let (mut history, _, _, _) = bulk_ingest(&cx, history, &cx.addrs[..1], config.n_events).await?;
    // The steps draw on past the pre-loaded history.
    history.extend(LIVE_EVENTS);
    let mut steps = Vec::with_capacity(cx.addrs.len());
    for n in 1..=cx.addrs.len() {
        let addrs = &cx.addrs[..n];
        let (back, ingest, _, _) = bulk_ingest(&cx, history, addrs, step_events).await?;
        history = back;
        let feed = Arc::new(Feed {
            history: Mutex::new(history),
            names: Arc::clone(&cx.names),
        });
        let phase = format!(
            "single-event ingest, {} clients, {n} replica(s)",
            config.single_clients
        );
        let load = SingleLoad::start(
            addrs,
            Arc::clone(&cx.ingest_token),
            Arc::clone(&feed),
            config.single_clients,
        )
        .await?;
        let total = config.single_duration.as_secs().max(1);
        while load.started.elapsed() < config.single_duration {
            let left = config
                .single_duration
                .saturating_sub(load.started.elapsed());
            tokio::time::sleep(left.min(Duration::from_secs(1))).await;
            (cx.progress)(&phase, load.started.elapsed().as_secs().min(total), total);
        }
        let single = load.finish().await?;
        history = Arc::try_unwrap(feed)
            .map_err(|_| BenchError::new("the single-event clients still hold the history"))?
            .history
            .into_inner()
            .expect("the history lock is not poisoned");
        steps.push(ReplicaStep {
            replicas: n,
            ingest,
            single,
        });
    }
    Ok(ReplicaReport {
        backend: config.backend.clone(),
        preload: config.n_events,
        n_orgs: cx.orgs.len(),
        batch_size: config.batch_size,
        steps,
        elapsed: Duration::ZERO,
    })
}

/// What the measurements share.
struct MeasureContext<'a, P: Fn(&str, u64, u64)> {
    store: &'a Arc<dyn Store>,
    config: &'a HttpBenchConfig,
    /// The first replica: lists and exports.
    addr: SocketAddr,
    /// Every replica: the ingest clients are spread over them.
    addrs: &'a [SocketAddr],
    orgs: &'a [Org],
    names: Arc<Vec<String>>,
    ingest_token: Arc<str>,
    admin_token: &'a str,
    progress: &'a P,
}

/// Everything after the server is up.
async fn measure<P: Fn(&str, u64, u64)>(
    cx: MeasureContext<'_, P>,
    history: History,
) -> Result<HttpReport, BenchError> {
    let config = cx.config;
    let progress = cx.progress;
    let largest = &cx.orgs[0];

    // 1. Bulk ingest through HTTP.
    let stored_before = stored_events(cx.store, cx.orgs).await?;
    let (mut history, ingest, generation, pairs) =
        bulk_ingest(&cx, history, cx.addrs, config.n_events).await?;
    let stored = stored_events(cx.store, cx.orgs).await? - stored_before;
    if stored != config.n_events {
        return Err(BenchError::new(format!(
            "the bulk ingest stored {stored} events, not {}",
            config.n_events
        )));
    }

    // 2. Single-event requests.
    history.extend(LIVE_EVENTS);
    let feed = Arc::new(Feed {
        history: Mutex::new(history),
        names: Arc::clone(&cx.names),
    });
    let phase = format!("single-event ingest, {} clients", config.single_clients);
    let load = SingleLoad::start(
        cx.addrs,
        Arc::clone(&cx.ingest_token),
        Arc::clone(&feed),
        config.single_clients,
    )
    .await?;
    let total = config.single_duration.as_secs().max(1);
    while load.started.elapsed() < config.single_duration {
        let left = config
            .single_duration
            .saturating_sub(load.started.elapsed());
        tokio::time::sleep(left.min(Duration::from_secs(1))).await;
        progress(&phase, load.started.elapsed().as_secs().min(total), total);
    }
    let single = load.finish().await?;

    // 3. List latency, idle and under load.
    let org_header = largest.name.clone();
    let auth = format!("Bearer {}", cx.admin_token);
    let headers = [
        ("Authorization", auth.as_str()),
        ("X-Org-Name", org_header.as_str()),
    ];
    let newest: Vec<Vec<u8>> = vec![request(
        cx.addr,
        "GET",
        "/api/audit-logs?limit=50",
        &headers,
        b"",
    )];
    let filtered: Vec<Vec<u8>> = pairs
        .iter()
        .map(|(action, email)| {
            let path = format!(
                "/api/audit-logs?limit=50&q={}&q={}&search_operator=and",
                percent_encode(&format!("action_key:{action}")),
                percent_encode(&format!("actor_email:{email}"))
            );
            request(cx.addr, "GET", &path, &headers, b"")
        })
        .collect();
    let mut queries = vec![("newest page (limit 50), largest org", newest)];
    if !filtered.is_empty() {
        queries.push((
            "action_key + actor_email filter (and, limit 50), largest org",
            filtered,
        ));
    }
    let mut reader = Conn::open(cx.addr).await?;
    let mut lists = Vec::new();
    for (name, requests) in &queries {
        let (idle, items) = time_list(&mut reader, name, requests, config, progress).await?;
        lists.push(ListResult {
            name: (*name).to_string(),
            idle,
            idle_items: items,
            loaded: Percentiles::default(),
        });
    }
    let load = SingleLoad::start(
        cx.addrs,
        Arc::clone(&cx.ingest_token),
        Arc::clone(&feed),
        config.single_clients,
    )
    .await?;
    // Let the load reach its pace before timing.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut loaded_result = Ok(());
    for ((name, requests), list) in queries.iter().zip(&mut lists) {
        let phase = format!("{name}, under load");
        match time_list(&mut reader, &phase, requests, config, progress).await {
            Ok((latency, _)) => list.loaded = latency,
            Err(e) => {
                loaded_result = Err(e);
                break;
            }
        }
    }
    let background = load.finish().await?;
    loaded_result?;

    // 4. and 5. Exports of the whole largest organization, and memory.
    let memory_before = (proc_status_bytes("VmHWM"), proc_status_bytes("VmRSS"));
    let peak_reset = reset_peak_rss();
    let mut exports = Vec::new();
    for gzip in [false, true] {
        let phase = if gzip {
            "export (JSON Lines, gzip)"
        } else {
            "export (JSON Lines)"
        };
        progress(phase, 0, 1);
        exports.push(export(&mut reader, cx.addr, &headers, gzip).await?);
        progress(phase, 1, 1);
    }
    let memory = Memory {
        peak_before: memory_before.0,
        rss_before: memory_before.1,
        peak_reset,
        peak_after: proc_status_bytes("VmHWM"),
    };

    // 6. The baseline, on the same history, once the service is idle.
    let baseline = match &config.baseline_dir {
        Some(dir) => Some(measure_baseline(dir, config, &pairs, progress)?),
        None => None,
    };

    Ok(HttpReport {
        backend: config.backend.clone(),
        n_events: config.n_events,
        n_orgs: cx.orgs.len(),
        batch_size: config.batch_size,
        generation,
        ingest,
        single,
        lists,
        background,
        exports,
        memory,
        elapsed: Duration::ZERO,
        baseline,
    })
}

/// Events in the store over all organizations (the sum of their chain heads).
async fn stored_events(store: &Arc<dyn Store>, orgs: &[Org]) -> Result<u64, BenchError> {
    let mut total = 0;
    for org in orgs {
        total += store.chain_head(org.id).await?.seq;
    }
    Ok(total)
}

/// Ingests `n_events` of the history in batches from concurrent clients, spread over the
/// servers at `addrs` in turn; answers the load, the generation rate and a sample of the
/// largest organization's action + actor pairs.
async fn bulk_ingest<P: Fn(&str, u64, u64)>(
    cx: &MeasureContext<'_, P>,
    mut history: History,
    addrs: &[SocketAddr],
    n_events: u64,
) -> Result<(History, Load, Throughput, Vec<(String, String)>), BenchError> {
    let config = cx.config;
    let batch_size = config.batch_size.clamp(1, auditlog_service::MAX_BATCH);
    let chunk_events = (batch_size * config.chunk_batches.max(1)) as u64;
    let phase = format!(
        "HTTP ingest, batches of {batch_size}, {} clients, {} replica(s)",
        config.batch_clients,
        addrs.len()
    );
    let mut sampler = PairSampler::new(config.seed);
    let mut conns = Vec::with_capacity(config.batch_clients.max(1));
    for i in 0..config.batch_clients.max(1) {
        conns.push(Conn::open(addrs[i % addrs.len()]).await?);
    }
    let mut load = Load {
        clients: conns.len(),
        ..Load::default()
    };
    let mut samples = Vec::new();
    let mut generation = Throughput {
        events: 0,
        elapsed: Duration::ZERO,
    };
    let mut done = 0u64;
    (cx.progress)(&phase, 0, n_events);
    while done < n_events {
        let take = (n_events - done).min(chunk_events);
        let (names, token, addr) = (Arc::clone(&cx.names), Arc::clone(&cx.ingest_token), cx.addr);
        let (history_back, sampler_back, chunk, took) = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let chunk = encode_batches(
                &mut history,
                &names,
                take,
                batch_size,
                &mut sampler,
                addr,
                &token,
            );
            (history, sampler, chunk, started.elapsed())
        })
        .await?;
        history = history_back;
        sampler = sampler_back;
        generation.events += take;
        generation.elapsed += took;
        load.body_bytes += chunk.body_bytes;
        load.requests += chunk.requests.len() as u64;

        let started = Instant::now();
        let (back, chunk_samples) = send_all(conns, Arc::new(chunk.requests)).await?;
        load.elapsed += started.elapsed();
        conns = back;
        samples.extend(chunk_samples);
        done += take;
        load.events = done;
        (cx.progress)(&phase, done, n_events);
    }
    load.latency = Percentiles::of(samples);
    Ok((history, load, generation, sampler.pairs))
}

/// Complete ingest requests, ready to write.
struct EncodedChunk {
    requests: Vec<Vec<u8>>,
    body_bytes: u64,
}

/// Generates `n` events and encodes them as ingest requests of `batch_size` events each
/// (JSON arrays, every event naming its organization), offering the largest organization's
/// action + actor pairs to `sampler`.
fn encode_batches(
    history: &mut History,
    names: &[String],
    n: u64,
    batch_size: usize,
    sampler: &mut PairSampler,
    addr: SocketAddr,
    token: &str,
) -> EncodedChunk {
    let auth = format!("Bearer {token}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let mut requests = Vec::new();
    let mut body_bytes = 0;
    let mut left = n;
    while left > 0 {
        let size = left.min(batch_size as u64);
        let mut body = Vec::with_capacity(size as usize * 700);
        body.push(b'[');
        for (i, (org, mut event)) in history.by_ref().take(size as usize).enumerate() {
            if org == 0 {
                if let Some(email) = &event.actor_email {
                    sampler.offer(&event.action_key, email);
                }
            }
            event.org = Some(names[org].clone());
            if i > 0 {
                body.push(b',');
            }
            serde_json::to_writer(&mut body, &event).expect("events encode as JSON");
        }
        body.push(b']');
        body_bytes += body.len() as u64;
        requests.push(request(
            addr,
            "POST",
            "/api/audit-logs/events",
            &headers,
            &body,
        ));
        left -= size;
    }
    EncodedChunk {
        requests,
        body_bytes,
    }
}

/// Sends every request, each client taking the next one when its previous one is answered;
/// every answer must be a 201. Gives the connections back with the latencies.
async fn send_all(
    conns: Vec<Conn>,
    requests: Arc<Vec<Vec<u8>>>,
) -> Result<(Vec<Conn>, Vec<Duration>), BenchError> {
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut conn| {
            let (requests, next) = (Arc::clone(&requests), Arc::clone(&next));
            tokio::spawn(async move {
                let mut samples = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(request) = requests.get(i) else {
                        break;
                    };
                    let started = Instant::now();
                    let reply = conn.call(request).await?;
                    samples.push(started.elapsed());
                    if reply.status != 201 {
                        return Err(BenchError::status("POST /api/audit-logs/events", &reply));
                    }
                }
                Ok((conn, samples))
            })
        })
        .collect();
    let mut conns = Vec::with_capacity(tasks.len());
    let mut samples = Vec::new();
    let mut first_error = None;
    for task in tasks {
        match task.await? {
            Ok((conn, more)) => {
                conns.push(conn);
                samples.extend(more);
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok((conns, samples)),
    }
}

/// A deterministic sample (reservoir) of distinct action + actor email pairs.
struct PairSampler {
    rng: SmallRng,
    seen: u64,
    pairs: Vec<(String, String)>,
}

impl PairSampler {
    fn new(seed: u64) -> PairSampler {
        PairSampler {
            rng: SmallRng::seed_from_u64(seed ^ 0x6669_6c74_6572),
            seen: 0,
            pairs: Vec::new(),
        }
    }

    fn offer(&mut self, action: &str, email: &str) {
        if self.pairs.iter().any(|(a, e)| a == action && e == email) {
            return;
        }
        self.seen += 1;
        let pair = (action.to_string(), email.to_string());
        if self.pairs.len() < FILTER_PAIRS {
            self.pairs.push(pair);
        } else {
            let slot = self.rng.gen_range(0..self.seen);
            if let Some(kept) = self.pairs.get_mut(slot as usize) {
                *kept = pair;
            }
        }
    }
}

/// More events of the same history, one at a time, for concurrent single-event clients.
struct Feed {
    history: Mutex<History>,
    names: Arc<Vec<String>>,
}

impl Feed {
    /// The next event as a JSON object naming its organization.
    fn next_body(&self) -> Vec<u8> {
        let (org, mut event) = self
            .history
            .lock()
            .expect("the history lock is not poisoned")
            .next()
            .expect("the history was extended far enough");
        event.org = Some(self.names[org].clone());
        serde_json::to_vec(&event).expect("events encode as JSON")
    }
}

/// Concurrent clients sending one event per request until told to stop.
struct SingleLoad {
    clients: usize,
    stop: Arc<AtomicBool>,
    events: Arc<AtomicU64>,
    started: Instant,
    tasks: Vec<JoinHandle<Result<Vec<Duration>, BenchError>>>,
}

impl SingleLoad {
    /// Connects the clients, spread over the servers at `addrs` in turn, then starts them.
    async fn start(
        addrs: &[SocketAddr],
        token: Arc<str>,
        feed: Arc<Feed>,
        clients: usize,
    ) -> Result<SingleLoad, BenchError> {
        let mut conns = Vec::with_capacity(clients.max(1));
        for i in 0..clients.max(1) {
            let addr = addrs[i % addrs.len()];
            conns.push((addr, Conn::open(addr).await?));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let events = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let tasks = conns
            .into_iter()
            .map(|(addr, mut conn)| {
                let (stop, events, feed, token) = (
                    Arc::clone(&stop),
                    Arc::clone(&events),
                    Arc::clone(&feed),
                    Arc::clone(&token),
                );
                tokio::spawn(async move {
                    let auth = format!("Bearer {token}");
                    let headers = [
                        ("Authorization", auth.as_str()),
                        ("Content-Type", "application/json"),
                    ];
                    let mut samples = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let body = feed.next_body();
                        let req = request(addr, "POST", "/api/audit-logs/events", &headers, &body);
                        let started = Instant::now();
                        let reply = conn.call(&req).await?;
                        samples.push(started.elapsed());
                        if reply.status != 201 {
                            return Err(BenchError::status(
                                "POST /api/audit-logs/events (one event)",
                                &reply,
                            ));
                        }
                        events.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(samples)
                })
            })
            .collect();
        Ok(SingleLoad {
            clients: clients.max(1),
            stop,
            events,
            started,
            tasks,
        })
    }

    /// Stops the clients, lets their requests in flight finish, and sums up.
    async fn finish(mut self) -> Result<Load, BenchError> {
        self.stop.store(true, Ordering::Relaxed);
        let mut samples = Vec::new();
        let mut first_error = None;
        for task in std::mem::take(&mut self.tasks) {
            match task.await? {
                Ok(more) => samples.extend(more),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let elapsed = self.started.elapsed();
        if let Some(e) = first_error {
            return Err(e);
        }
        let events = self.events.load(Ordering::Relaxed);
        Ok(Load {
            clients: self.clients,
            requests: events,
            events,
            body_bytes: 0,
            elapsed,
            latency: Percentiles::of(samples),
        })
    }
}

impl Drop for SingleLoad {
    /// Stops the clients when the load is abandoned (an error elsewhere), so they do not keep
    /// the server busy and its connections open.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Times a list request (cycling through `requests`), as the store harness times queries:
/// warm-up runs, then up to `list_runs` timed ones, stopping after the budget once 20 are
/// done. Answers the latency and the mean number of items per page.
async fn time_list(
    conn: &mut Conn,
    name: &str,
    requests: &[Vec<u8>],
    config: &HttpBenchConfig,
    progress: &impl Fn(&str, u64, u64),
) -> Result<(Percentiles, f64), BenchError> {
    let runs = config.list_runs.max(1);
    let what = format!("GET /api/audit-logs ({name})");
    for i in 0..config.warmup_runs {
        let reply = conn.call(&requests[(runs + i) % requests.len()]).await?;
        if reply.status != 200 {
            return Err(BenchError::status(&what, &reply));
        }
    }
    let mut samples = Vec::with_capacity(runs);
    let mut items = 0usize;
    let started = Instant::now();
    for i in 0..runs {
        let call = Instant::now();
        let reply = conn.call(&requests[i % requests.len()]).await?;
        samples.push(call.elapsed());
        if reply.status != 200 {
            return Err(BenchError::status(&what, &reply));
        }
        let page: Value = serde_json::from_slice(&reply.body)
            .map_err(|e| BenchError::new(format!("{what}: the answer is not JSON: {e}")))?;
        items += page["items"].as_array().map_or(0, Vec::len);
        progress(name, i as u64 + 1, runs as u64);
        if i + 1 >= 20 && started.elapsed() > config.list_budget {
            break;
        }
    }
    let mean_items = items as f64 / samples.len().max(1) as f64;
    Ok((Percentiles::of(samples), mean_items))
}

/// Exports the whole organization named in `headers` (JSON Lines, gzipped or not): request,
/// poll until completed, download (counted, not kept).
async fn export(
    conn: &mut Conn,
    addr: SocketAddr,
    headers: &[(&str, &str)],
    gzip: bool,
) -> Result<ExportResult, BenchError> {
    let mut with_type = headers.to_vec();
    with_type.push(("Content-Type", "application/json"));
    let body: &[u8] = if gzip { br#"{"gzip":true}"# } else { b"{}" };
    let started = Instant::now();
    let reply = conn
        .call(&request(
            addr,
            "POST",
            "/api/audit-logs/export",
            &with_type,
            body,
        ))
        .await?;
    if reply.status != 200 {
        return Err(BenchError::status("POST /api/audit-logs/export", &reply));
    }
    let created: Value = serde_json::from_slice(&reply.body)
        .map_err(|e| BenchError::new(format!("the export answer is not JSON: {e}")))?;
    let id = created["id"]
        .as_str()
        .ok_or_else(|| BenchError::new(format!("the export answer has no id: {created}")))?
        .to_string();
    let status_path = format!("/api/audit-logs/export/{id}");
    let status_request = request(addr, "GET", &status_path, headers, b"");
    let events = loop {
        let reply = conn.call(&status_request).await?;
        if reply.status != 200 {
            return Err(BenchError::status(&format!("GET {status_path}"), &reply));
        }
        let status: Value = serde_json::from_slice(&reply.body)
            .map_err(|e| BenchError::new(format!("the job status is not JSON: {e}")))?;
        match status["status"].as_str() {
            Some("completed") => {
                break status["total_records"].as_u64().ok_or_else(|| {
                    BenchError::new(format!("the job has no total_records: {status}"))
                })?
            }
            Some("pending" | "running") => {}
            _ => {
                return Err(BenchError::new(format!(
                    "export {id} did not complete: {status}"
                )))
            }
        }
        tokio::time::sleep(POLL_EVERY).await;
    };
    let job = started.elapsed();

    let download_path = format!("/api/audit-logs/export/{id}/download");
    let download_request = request(addr, "GET", &download_path, headers, b"");
    let mut file_bytes = 0u64;
    let mut lines = 0u64;
    let mut error_body = Vec::new();
    let started = Instant::now();
    let status = conn
        .call_streaming(&download_request, &mut |chunk: &[u8]| {
            file_bytes += chunk.len() as u64;
            if !gzip {
                lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
            }
            if error_body.len() < 500 {
                error_body.extend_from_slice(&chunk[..chunk.len().min(500)]);
            }
        })
        .await?;
    let download = started.elapsed();
    if status != 200 {
        return Err(BenchError::status(
            &format!("GET {download_path}"),
            &Reply {
                status,
                body: error_body,
            },
        ));
    }
    // The file holds one line per event and the checkpoint's line.
    if !gzip && lines != events + 1 {
        return Err(BenchError::new(format!(
            "export {id}: {lines} lines for {events} events (expected one more: the checkpoint)"
        )));
    }
    Ok(ExportResult {
        gzip,
        events,
        file_bytes,
        job,
        download,
    })
}

/// A complete HTTP/1.1 request with a `Content-Length`, for a keep-alive [`Conn`].
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    Request::new(method, path)
        .header("User-Agent", "auditlog-bench")
        .headers(headers)
        .raw_body(body)
        .encode(&addr.to_string())
}

/// A response: its status and body.
struct Reply {
    status: u16,
    body: Vec<u8>,
}

/// A keep-alive connection of the test kit's client (one request at a time, exactly one
/// response read for each, reconnecting when the server closed), with the benchmark's
/// timeout and errors.
struct Conn(Connection);

impl Conn {
    /// Connects to `addr`.
    async fn open(addr: SocketAddr) -> Result<Conn, BenchError> {
        Ok(Conn(Connection::open(addr).await?))
    }

    /// Sends a complete request and reads its response whole.
    async fn call(&mut self, request: &[u8]) -> Result<Reply, BenchError> {
        let mut body = Vec::new();
        let status = self
            .call_streaming(request, &mut |chunk: &[u8]| body.extend_from_slice(chunk))
            .await?;
        Ok(Reply { status, body })
    }

    /// Sends a complete request and hands the response body to `sink` piece by piece;
    /// answers the status.
    async fn call_streaming(
        &mut self,
        request: &[u8],
        sink: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<u16, BenchError> {
        match tokio::time::timeout(REQUEST_TIMEOUT, self.0.send_streaming(request, sink)).await {
            Ok(Ok(response)) => Ok(response.status),
            Ok(Err(e)) => Err(BenchError::new(format!("{}: {e}", request_line(request)))),
            Err(_) => Err(BenchError::new(format!(
                "{}: no answer within {} s",
                request_line(request),
                REQUEST_TIMEOUT.as_secs()
            ))),
        }
    }
}

/// The first line of a request, for error messages.
fn request_line(request: &[u8]) -> String {
    let end = request
        .iter()
        .position(|&b| b == b'\r')
        .unwrap_or(request.len());
    String::from_utf8_lossy(&request[..end.min(200)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_formatting() {
        let samples: Vec<Duration> = (1..=200).rev().map(Duration::from_millis).collect();
        let latency = Percentiles::of(samples);
        assert_eq!(latency.runs, 200);
        assert_eq!(latency.p50, Duration::from_millis(100));
        assert_eq!(latency.p99, Duration::from_millis(198));
        assert_eq!(latency.max, Duration::from_millis(200));
        assert_eq!(Percentiles::of(Vec::new()), Percentiles::default());
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(millis(Duration::from_micros(2_500)), "2.50");
    }

    #[test]
    fn percent_encodes_query_values() {
        assert_eq!(
            percent_encode("actor_email:ana.lópez@acme-analytics.com"),
            "actor_email%3Aana.l%C3%B3pez%40acme-analytics.com"
        );
    }

    #[test]
    fn samples_distinct_pairs_deterministically() {
        let run = || {
            let mut sampler = PairSampler::new(7);
            for i in 0..2_000 {
                sampler.offer(&format!("a{}", i % 30), &format!("u{}@x", i % 97));
                sampler.offer("a0", "u0@x");
            }
            sampler.pairs
        };
        let pairs = run();
        assert_eq!(pairs.len(), FILTER_PAIRS);
        assert_eq!(pairs, run());
    }

    /// On Linux the figures are read; elsewhere (no `/proc`) they are absent, so the report
    /// prints "n/a" instead of a made-up number.
    #[test]
    fn reads_peak_memory() {
        let peak = proc_status_bytes("VmHWM");
        let resident = proc_status_bytes("VmRSS");
        if cfg!(target_os = "linux") {
            assert!(peak.is_some_and(|b| b > 0), "VmHWM: {peak:?}");
            assert!(resident.is_some_and(|b| b > 0), "VmRSS: {resident:?}");
        } else {
            assert_eq!((peak, resident), (None, None));
        }
        assert_eq!(proc_status_bytes("NoSuchField"), None);
    }
}
