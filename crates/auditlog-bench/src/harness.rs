//! The benchmark harness: loads a generated history into a [`Store`] and measures it.
//!
//! [`run`] does, in order:
//! 1. creates the history's organizations;
//! 2. bulk loads `n_events` generated events in batches of 1,000 (generation and validation
//!    run on a separate thread, so the figure is the store's unless the generator is slower);
//! 3. measures query latency (p50/p99 over up to 200 warm runs with varied parameters) on
//!    exactly the loaded history: the newest page of the largest organization, an action +
//!    user filter over the last 90 days, a page deep in the largest organization by keyset
//!    cursor, facet counts over the last 30 days, a free-text search and a capped count over
//!    a time range;
//! 4. measures durable append throughput and latency with batches of 1, 100 and 1,000 (more
//!    events of the same population, occurring just after the loaded year, appended one call
//!    after the other);
//! 5. measures the transparency log: inclusion proofs of random events, an export carrying a
//!    proof for every event, and the bytes of the Merkle tiles;
//! 6. reads the bytes the store occupies on disk, per event stored.
//!
//! The [`Report`] prints as a Markdown table (`metric | value | unit`).

use crate::report::{millis, thousands};
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auditlog_core::query::{Column, Combine, Condition, Filter, Order, Position, Query, Start};
use auditlog_core::tiles::tiles_for_size;
use auditlog_core::timestamp::MS_PER_DAY;
use auditlog_core::validate::validate;
use auditlog_core::wire::EventRecord;
use auditlog_core::{Catalog, Timestamp};
use auditlog_service::export::{write_export, ExportRequest};
use auditlog_service::grant::Operator;
use auditlog_service::Service;
use auditlog_store::{Append, NewOrg, Store, StoreError};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::baseline::{Baseline, BaselinePosition};
use crate::generate::{History, HistorySpec, CHANNELS};

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchConfig {
    /// Events to bulk load before measuring (1,000,000; [`BenchConfig::LARGE`] for the large
    /// run).
    pub n_events: u64,
    /// Seed of the generated history and of the query parameters.
    pub seed: u64,
    /// Events per `append` call during the bulk load (1,000).
    pub load_batch: usize,
    /// Durable append rounds: `(events per append call, number of calls)`; by default
    /// 2,000 × 1, 200 × 100 and 50 × 1,000.
    pub append_rounds: Vec<(usize, usize)>,
    /// Timed runs per query (200), after [`BenchConfig::warmup_runs`] untimed ones.
    pub query_runs: usize,
    /// Untimed runs per query before timing (5).
    pub warmup_runs: usize,
    /// Stop timing a query after this long, once it has at least 20 runs (30 s), so a slow
    /// backend still finishes.
    pub query_budget: Duration,
    /// How deep the keyset-cursor page is (500,000); capped at half of the largest
    /// organization when that is smaller.
    pub deep_page_depth: u64,
    /// Where to keep the [`Baseline`] measured beside the store (its own file), or `None` to
    /// measure the store alone.
    pub baseline_dir: Option<PathBuf>,
    /// Where to write the largest organization's export with proofs (JSON Lines) instead of
    /// discarding it, with the verifier key beside it (`FILE.vkey`), for checking it with
    /// another verifier; the timed export then includes writing the file.
    pub proven_export: Option<PathBuf>,
}

impl BenchConfig {
    /// The events of the standard run.
    pub const STANDARD: u64 = 1_000_000;
    /// The events of the large run.
    pub const LARGE: u64 = 10_000_000;

    /// The standard settings with the given size and seed.
    pub fn new(n_events: u64, seed: u64) -> BenchConfig {
        BenchConfig {
            n_events,
            seed,
            load_batch: 1_000,
            append_rounds: vec![(1, 2_000), (100, 200), (1_000, 50)],
            query_runs: 200,
            warmup_runs: 5,
            query_budget: Duration::from_secs(30),
            deep_page_depth: 500_000,
            baseline_dir: None,
            proven_export: None,
        }
    }

    /// A few seconds' worth of everything, for smoke tests: `n_events` events, short append
    /// rounds, 10 runs per query.
    pub fn smoke(n_events: u64, seed: u64) -> BenchConfig {
        BenchConfig {
            append_rounds: vec![(1, 20), (100, 5), (1_000, 2)],
            query_runs: 10,
            warmup_runs: 1,
            ..BenchConfig::new(n_events, seed)
        }
    }

    /// The spec of the history this config loads.
    pub fn history_spec(&self) -> HistorySpec {
        HistorySpec::new(self.n_events, self.seed)
    }
}

impl Default for BenchConfig {
    /// 1,000,000 events, seed 42.
    fn default() -> BenchConfig {
        BenchConfig::new(BenchConfig::STANDARD, 42)
    }
}

/// Events per second of a timed piece of work.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throughput {
    /// Events processed.
    pub events: u64,
    /// Time taken.
    pub elapsed: Duration,
}

impl Throughput {
    /// Events per second.
    pub fn per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// One durable append round.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendRound {
    /// Events per `append` call.
    pub batch_size: usize,
    /// Throughput over the round (calls made one after the other).
    pub throughput: Throughput,
    /// Latency of one call.
    pub latency: Latency,
    /// The same batches into the baseline, one durable transaction each.
    pub baseline: Option<(Throughput, Latency)>,
}

/// Latency percentiles of repeated runs of one operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Latency {
    /// Timed runs.
    pub runs: usize,
    /// Median.
    pub p50: Duration,
    /// 99th percentile (nearest rank).
    pub p99: Duration,
    /// Slowest run.
    pub max: Duration,
    /// Mean number of rows (events, facet entries or the count) a run returned.
    pub mean_rows: f64,
}

impl Latency {
    /// Percentiles of the samples; `rows` is the total rows of all runs.
    fn from_samples(mut samples: Vec<Duration>, rows: u64) -> Latency {
        samples.sort_unstable();
        let n = samples.len();
        let rank = |p: f64| samples[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
        Latency {
            runs: n,
            p50: rank(0.50),
            p99: rank(0.99),
            max: samples[n - 1],
            mean_rows: rows as f64 / n as f64,
        }
    }
}

/// One measured query.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// What was measured, e.g. `newest page of the largest org (limit 50)`.
    pub name: String,
    /// Its latency.
    pub latency: Latency,
    /// The baseline's latency for the same question.
    pub baseline: Option<Latency>,
}

/// The figures of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Events bulk loaded.
    pub n_events: u64,
    /// The seed.
    pub seed: u64,
    /// Organizations.
    pub n_orgs: usize,
    /// Events of the largest organization at query time.
    pub largest_org_events: u64,
    /// Events in the store at the end (loaded and appended).
    pub total_events: u64,
    /// Generating and validating events on one thread, without a store.
    pub generation: Throughput,
    /// Events per `append` call of the bulk load.
    pub load_batch: usize,
    /// The bulk load, wall clock (generation runs alongside on another thread).
    pub load: Throughput,
    /// The bulk load, time spent in `append` only.
    pub load_append_only: Throughput,
    /// Durable append rounds.
    pub appends: Vec<AppendRound>,
    /// Query latencies.
    pub queries: Vec<QueryResult>,
    /// Reading the largest organization's whole history in `seq` order and writing it as
    /// JSON lines, as an export does.
    pub export: Throughput,
    /// The same organization exported as the service writes it: every event with its
    /// inclusion proof, both checkpoints signed (to a sink).
    pub export_with_proofs: Throughput,
    /// Bytes of the Merkle tiles of every organization, after the bulk load.
    pub tile_bytes: u64,
    /// Bytes the store occupies on disk at the end.
    pub disk_bytes: u64,
    /// The baseline's bulk load, export and bytes on disk, when it was measured.
    pub baseline: Option<BaselineFigures>,
}

/// What the baseline measured besides its query latencies and append rounds.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineFigures {
    /// The bulk load, in the same batches.
    pub load: Throughput,
    /// The export of the same organization.
    pub export: Throughput,
    /// Bytes on disk at the end.
    pub disk_bytes: u64,
}

/// One line of the report: a figure of the store and, when measured, the baseline's.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// What is measured.
    pub metric: String,
    /// The store's figure.
    pub value: f64,
    /// The baseline's figure.
    pub baseline: Option<f64>,
    /// Its unit.
    pub unit: Unit,
}

/// Units of the report, which also say which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A plain count.
    Count,
    /// Throughput: more is better.
    EventsPerSecond,
    /// Latency: less is better.
    Millis,
    /// Size: less is better.
    Bytes,
    /// Size: less is better.
    MiB,
}

impl Row {
    fn new(metric: impl Into<String>, value: f64, baseline: Option<f64>, unit: Unit) -> Row {
        Row {
            metric: metric.into(),
            value,
            baseline,
            unit,
        }
    }

    /// How many times better than the baseline the store is (above 1: better), for units
    /// that have a direction.
    pub fn advantage(&self) -> Option<f64> {
        let baseline = self.baseline?;
        match self.unit {
            Unit::Count => None,
            Unit::EventsPerSecond => Some(self.value / baseline.max(1e-9)),
            Unit::Millis | Unit::Bytes | Unit::MiB => Some(baseline / self.value.max(1e-9)),
        }
    }

    fn shown(&self, value: f64) -> String {
        match self.unit {
            Unit::Count | Unit::EventsPerSecond => thousands(value as u64),
            Unit::Millis => millis(Duration::from_secs_f64(value / 1000.0)),
            Unit::Bytes => format!("{value:.0}"),
            Unit::MiB => format!("{value:.1}"),
        }
    }

    fn unit_name(&self) -> &'static str {
        match self.unit {
            Unit::Count => "",
            Unit::EventsPerSecond => "events/s",
            Unit::Millis => "ms",
            Unit::Bytes => "bytes/event",
            Unit::MiB => "MiB",
        }
    }
}

impl Report {
    /// Bytes on disk per stored event.
    pub fn bytes_per_event(&self) -> f64 {
        self.disk_bytes as f64 / self.total_events.max(1) as f64
    }

    /// The table's rows.
    pub fn rows(&self) -> Vec<Row> {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let base = self.baseline.as_ref();
        let mut rows = vec![
            Row::new(
                "events bulk loaded",
                self.n_events as f64,
                None,
                Unit::Count,
            ),
            Row::new("organizations", self.n_orgs as f64, None, Unit::Count),
            Row::new(
                "events of the largest organization",
                self.largest_org_events as f64,
                None,
                Unit::Count,
            ),
            Row::new(
                "history generation + validation (one thread, no store)",
                self.generation.per_second(),
                None,
                Unit::EventsPerSecond,
            ),
            Row::new(
                format!(
                    "bulk load, batches of {}, wall clock",
                    thousands(self.load_batch as u64)
                ),
                self.load.per_second(),
                base.map(|b| b.load.per_second()),
                Unit::EventsPerSecond,
            ),
            Row::new(
                "bulk load, time inside append only",
                self.load_append_only.per_second(),
                None,
                Unit::EventsPerSecond,
            ),
        ];
        for round in &self.appends {
            let size = thousands(round.batch_size as u64);
            let baseline = round.baseline.as_ref();
            rows.push(Row::new(
                format!("durable append, batch of {size}"),
                round.throughput.per_second(),
                baseline.map(|(t, _)| t.per_second()),
                Unit::EventsPerSecond,
            ));
            rows.push(Row::new(
                format!("durable append, batch of {size}, p50"),
                ms(round.latency.p50),
                baseline.map(|(_, l)| ms(l.p50)),
                Unit::Millis,
            ));
            rows.push(Row::new(
                format!("durable append, batch of {size}, p99"),
                ms(round.latency.p99),
                baseline.map(|(_, l)| ms(l.p99)),
                Unit::Millis,
            ));
        }
        for query in &self.queries {
            let baseline = query.baseline.as_ref();
            rows.push(Row::new(
                format!("{} p50", query.name),
                ms(query.latency.p50),
                baseline.map(|l| ms(l.p50)),
                Unit::Millis,
            ));
            rows.push(Row::new(
                format!("{} p99", query.name),
                ms(query.latency.p99),
                baseline.map(|l| ms(l.p99)),
                Unit::Millis,
            ));
        }
        rows.push(Row::new(
            "export of the largest org (seq order, JSON lines)",
            self.export.per_second(),
            base.map(|b| b.export.per_second()),
            Unit::EventsPerSecond,
        ));
        rows.push(Row::new(
            "export with inclusion proofs (the service's writer, largest org)",
            self.export_with_proofs.per_second(),
            None,
            Unit::EventsPerSecond,
        ));
        rows.push(Row::new(
            "Merkle tiles, bytes per event loaded",
            self.tile_bytes as f64 / self.n_events.max(1) as f64,
            None,
            Unit::Bytes,
        ));
        rows.push(Row::new(
            "disk size",
            self.disk_bytes as f64 / 1_048_576.0,
            base.map(|b| b.disk_bytes as f64 / 1_048_576.0),
            Unit::MiB,
        ));
        rows.push(Row::new(
            format!(
                "bytes per event on disk ({} events)",
                thousands(self.total_events)
            ),
            self.bytes_per_event(),
            base.map(|b| b.disk_bytes as f64 / self.total_events.max(1) as f64),
            Unit::Bytes,
        ));
        rows
    }
}

impl fmt::Display for Report {
    /// A Markdown table: `metric | auditlog | baseline | × | unit`, where `×` is how many
    /// times better than the baseline the store is (throughput over throughput, latency and
    /// size the other way round).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "| metric | auditlog | baseline | × | unit |")?;
        writeln!(f, "|---|---:|---:|---:|---|")?;
        for row in self.rows() {
            let baseline = row.baseline.map(|b| row.shown(b)).unwrap_or_default();
            let advantage = row
                .advantage()
                .map(|x| format!("{x:.2}"))
                .unwrap_or_default();
            writeln!(
                f,
                "| {} | {} | {baseline} | {advantage} | {} |",
                row.metric,
                row.shown(row.value),
                row.unit_name()
            )?;
        }
        Ok(())
    }
}

/// Runs the benchmark against `store`, which should be empty. `progress(phase, done, total)`
/// is called as work advances (often: throttle before printing).
pub async fn run(
    store: Arc<dyn Store>,
    config: &BenchConfig,
    progress: impl Fn(&str, u64, u64),
) -> Result<Report, StoreError> {
    let spec = config.history_spec();
    let history = History::new(spec.clone());
    let catalog = Catalog::builtin();
    let extra: u64 = config
        .append_rounds
        .iter()
        .map(|&(size, calls)| (size * calls) as u64)
        .sum();
    let now = {
        let mut probe = history.clone();
        probe.extend(extra);
        probe.safe_now()
    };

    // Generation alone, for reference: a slice of the same history, generated and validated.
    let sample = config.n_events.clamp(1, 200_000);
    let started = Instant::now();
    let mut validated = 0u64;
    for (_, event) in History::new(HistorySpec {
        n_events: sample,
        ..spec.clone()
    }) {
        let body = validate(event, &catalog, now).expect("generated events are valid");
        std::hint::black_box(body);
        validated += 1;
    }
    let generation = Throughput {
        events: validated,
        elapsed: started.elapsed(),
    };
    progress("generate", sample, sample);

    // Organizations.
    let mut org_ids = Vec::with_capacity(history.orgs().len());
    for (i, org) in history.orgs().iter().enumerate() {
        let created = store
            .create_org(NewOrg {
                name: org.name.clone(),
                display_name: org.display_name.clone(),
                audit_logs_enabled: true,
            })
            .await?;
        org_ids.push(created.id);
        progress(
            "create organizations",
            i as u64 + 1,
            history.orgs().len() as u64,
        );
    }
    let org_ids = Arc::new(org_ids);

    // Bulk load: a thread generates and validates batches while this task appends them.
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<(Vec<Append>, Vec<usize>)>(8);
    let producer = {
        let org_ids = Arc::clone(&org_ids);
        let catalog = catalog.clone();
        let batch = config.load_batch.max(1);
        let mut history = history;
        std::thread::spawn(move || {
            loop {
                let mut appends = Vec::with_capacity(batch);
                let mut orgs = Vec::with_capacity(batch);
                for (org, event) in history.by_ref().take(batch) {
                    let body = validate(event, &catalog, now).expect("generated events are valid");
                    appends.push(Append {
                        org_id: org_ids[org],
                        body,
                    });
                    orgs.push(org);
                }
                if appends.is_empty() || sender.blocking_send((appends, orgs)).is_err() {
                    break;
                }
            }
            history
        })
    };
    let mut per_org = vec![0u64; org_ids.len()];
    let mut loaded = 0u64;
    let mut inside_append = Duration::ZERO;
    let started = Instant::now();
    while let Some((appends, orgs)) = receiver.recv().await {
        let n = appends.len() as u64;
        let call = Instant::now();
        store.append(appends).await?;
        inside_append += call.elapsed();
        for org in orgs {
            per_org[org] += 1;
        }
        loaded += n;
        progress("load", loaded, config.n_events);
    }
    let load = Throughput {
        events: loaded,
        elapsed: started.elapsed(),
    };
    let load_append_only = Throughput {
        events: loaded,
        elapsed: inside_append,
    };
    let mut history = producer
        .join()
        .expect("the generator thread does not panic");

    // The baseline loads the same events in the same batches; only its inserts and commits
    // are timed (generation and validation happen between the timed calls).
    let baseline = match &config.baseline_dir {
        Some(dir) => Some(Arc::new(Mutex::new(
            Baseline::open(dir).map_err(baseline_error)?,
        ))),
        None => None,
    };
    let mut baseline_load = None;
    if let Some(baseline) = &baseline {
        let mut baseline = baseline.lock().expect("lock");
        let mut replay = History::new(spec.clone());
        let (done, elapsed) = baseline
            .load(
                &mut replay,
                config.n_events,
                config.load_batch,
                (&catalog, now),
                |done| progress("baseline load", done, config.n_events),
            )
            .map_err(baseline_error)?;
        baseline_load = Some(Throughput {
            events: done,
            elapsed,
        });
    }

    // Queries, all on the largest organization.
    let (largest, &largest_events) = per_org
        .iter()
        .enumerate()
        .max_by_key(|&(_, n)| *n)
        .expect("at least one org");
    let org = org_ids[largest];
    let base_org = largest as i64;
    let people = &history.orgs()[largest].users;
    let end = spec.end();
    let mut rng = SmallRng::seed_from_u64(config.seed ^ 0x7175_6572_7931);
    let runs = config.query_runs.max(1);
    let mut queries = Vec::new();
    let timing = Timing {
        runs,
        warmup: config.warmup_runs,
        budget: config.query_budget,
    };

    // (a) The newest page.
    let name = "newest page of the largest org (limit 50)";
    let latency = timing
        .measure(name, &progress, |_| {
            let store = Arc::clone(&store);
            async move {
                Ok(store
                    .query(org, &page(Filter::default(), Start::Offset(0)))
                    .await?
                    .len() as u64)
            }
        })
        .await?;
    let baseline_latency = timing.measure_baseline(&baseline, name, &progress, |b, _| {
        Ok(b.page(base_org, None, 50)?.0)
    })?;
    queries.push(QueryResult {
        name: name.to_string(),
        latency,
        baseline: baseline_latency,
    });

    // (b) Actions of one user over the last 90 days.
    let action_sets: [&[&str]; 5] = [
        &["authentication_success"],
        &["token_created", "token_revoked"],
        &[
            "product_assigned",
            "product_revoked",
            "organization_user_added",
        ],
        &[
            "channel_created",
            "channel_deleted",
            "group_assigned_to_channel",
        ],
        &["policy_updated", "policy_assigned"],
    ];
    let filters: Vec<Filter> = (0..runs)
        .map(|i| {
            let u: f64 = rng.gen();
            let person = &people[((u * u * people.len() as f64) as usize).min(people.len() - 1)];
            Filter {
                conditions: vec![
                    Condition::AnyOf {
                        column: Column::ActionKey,
                        values: action_sets[i % action_sets.len()]
                            .iter()
                            .map(|s| s.to_string())
                            .collect(),
                    },
                    Condition::AnyOf {
                        column: Column::Actor,
                        values: vec![person.email.clone()],
                    },
                ],
                combine: Combine::And,
                from: Some(end.plus_millis(-90 * MS_PER_DAY)),
                to: None,
            }
        })
        .collect();
    let filters = Arc::new(filters);
    let name = "action + user filter, last 90 days, largest org (limit 50)";
    let latency = timing
        .measure(name, &progress, |i| {
            let (store, filters) = (Arc::clone(&store), Arc::clone(&filters));
            async move {
                let query = page(filters[i % filters.len()].clone(), Start::Offset(0));
                Ok(store.query(org, &query).await?.len() as u64)
            }
        })
        .await?;
    let baseline_latency = timing.measure_baseline(&baseline, name, &progress, |b, i| {
        let filter = &filters[i % filters.len()];
        let mut actions: &[String] = &[];
        let mut email = "";
        for condition in &filter.conditions {
            match condition {
                Condition::AnyOf {
                    column: Column::ActionKey,
                    values,
                } => actions = values,
                Condition::AnyOf { values, .. } => email = &values[0],
                Condition::Text(_) => {}
            }
        }
        let from = filter.from.map_or(i64::MIN, |t| t.as_millis());
        b.action_user(base_org, actions, email, from, 50)
    })?;
    queries.push(QueryResult {
        name: name.to_string(),
        latency,
        baseline: baseline_latency,
    });

    // (c) A page deep in the history by keyset cursor. One offset query finds positions
    // around the depth (untimed); the timed pages continue after them.
    let depth = config.deep_page_depth.min(largest_events / 2);
    let around = depth.saturating_sub(500);
    progress("find the deep page by offset", 0, 1);
    let positions: Vec<Position> = store
        .query(
            org,
            &Query {
                filter: Filter::default(),
                order: Order::NewestFirst,
                limit: 1000,
                start: Start::Offset(around),
            },
        )
        .await?
        .iter()
        .map(|e| Position {
            occurred_at: e.body.occurred_at,
            seq: e.seq,
        })
        .collect();
    progress("find the deep page by offset", 1, 1);
    if !positions.is_empty() {
        let positions = Arc::new(positions);
        let name = format!(
            "page {} events deep by cursor, largest org (limit 50)",
            thousands(depth)
        );
        let latency = timing
            .measure(&name, &progress, |i| {
                let (store, positions) = (Arc::clone(&store), Arc::clone(&positions));
                async move {
                    let position = positions[(i * 37) % positions.len()];
                    Ok(store
                        .query(org, &page(Filter::default(), Start::After(position)))
                        .await?
                        .len() as u64)
                }
            })
            .await?;
        let mut baseline_latency = None;
        if let Some(b) = &baseline {
            let positions = b
                .lock()
                .expect("lock")
                .positions(base_org, around, 1000)
                .map_err(baseline_error)?;
            if !positions.is_empty() {
                baseline_latency =
                    timing.measure_baseline(&baseline, &name, &progress, |b, i| {
                        let position: BaselinePosition = positions[(i * 37) % positions.len()];
                        Ok(b.page(base_org, Some(position), 50)?.0)
                    })?;
            }
        }
        queries.push(QueryResult {
            name,
            latency,
            baseline: baseline_latency,
        });
    }

    // (d) Facets over the last 30 days.
    let name = "facet counts, last 30 days, largest org (20 each)";
    let latency = timing
        .measure(name, &progress, |i| {
            let store = Arc::clone(&store);
            async move {
                let from = end.plus_millis(-30 * MS_PER_DAY - (i % 24) as i64 * 3_600_000);
                let filter = Filter {
                    from: Some(from),
                    ..Filter::default()
                };
                let facets = store.facets(org, &filter, 20).await?;
                Ok((facets.actions.len() + facets.actors.len()) as u64)
            }
        })
        .await?;
    let baseline_latency = timing.measure_baseline(&baseline, name, &progress, |b, i| {
        let from = end.plus_millis(-30 * MS_PER_DAY - (i % 24) as i64 * 3_600_000);
        b.facets(base_org, from.as_millis(), 20)
    })?;
    queries.push(QueryResult {
        name: name.to_string(),
        latency,
        baseline: baseline_latency,
    });

    // (e) Free-text search: a user's last name or a channel name.
    let terms: Arc<Vec<String>> = Arc::new(
        (0..runs)
            .map(|i| {
                if i % 2 == 0 {
                    people[rng.gen_range(0..people.len())].last_name.to_string()
                } else {
                    CHANNELS[rng.gen_range(0..CHANNELS.len())].to_string()
                }
            })
            .collect(),
    );
    let name = "free-text search (last name or channel), largest org (limit 50)";
    let latency = timing
        .measure(name, &progress, |i| {
            let (store, terms) = (Arc::clone(&store), Arc::clone(&terms));
            async move {
                let filter = Filter {
                    conditions: vec![Condition::Text(terms[i % terms.len()].clone())],
                    ..Filter::default()
                };
                Ok(store
                    .query(org, &page(filter, Start::Offset(0)))
                    .await?
                    .len() as u64)
            }
        })
        .await?;
    let baseline_latency = timing.measure_baseline(&baseline, name, &progress, |b, i| {
        b.search(base_org, &terms[i % terms.len()], 50)
    })?;
    queries.push(QueryResult {
        name: name.to_string(),
        latency,
        baseline: baseline_latency,
    });

    // (f) A capped count over a time range of 1 to 60 days.
    let ranges: Arc<Vec<(Timestamp, Timestamp)>> = Arc::new(
        (0..runs)
            .map(|_| {
                let days = rng.gen_range(1..=60i64);
                let span = i64::from(spec.days).max(days) - days;
                let from = spec.start.plus_millis(rng.gen_range(0..=span) * MS_PER_DAY);
                (from, from.plus_millis(days * MS_PER_DAY - 1))
            })
            .collect(),
    );
    let name = "count over 1–60 days, largest org (cap 10,000)";
    let latency = timing
        .measure(name, &progress, |i| {
            let (store, ranges) = (Arc::clone(&store), Arc::clone(&ranges));
            async move {
                let (from, to) = ranges[i % ranges.len()];
                let filter = Filter {
                    from: Some(from),
                    to: Some(to),
                    ..Filter::default()
                };
                Ok(store.count(org, &filter, 10_000).await?.n)
            }
        })
        .await?;
    let baseline_latency = timing.measure_baseline(&baseline, name, &progress, |b, i| {
        let (from, to) = ranges[i % ranges.len()];
        b.count(base_org, from.as_millis(), to.as_millis(), 10_000)
    })?;
    queries.push(QueryResult {
        name: name.to_string(),
        latency,
        baseline: baseline_latency,
    });

    // Export: the largest organization's history in `seq` order, each event written as the
    // JSON line an export holds.
    progress("export", 0, largest_events);
    let org_name = history.orgs()[largest].name.clone();
    let mut line = Vec::with_capacity(2048);
    let started = Instant::now();
    let mut exported = 0u64;
    loop {
        let page = store.events_by_seq(org, exported, 1_000).await?;
        let Some(last) = page.last() else { break };
        let last_seq = last.seq;
        for event in page {
            line.clear();
            let record = EventRecord::from_event(event, Some(&org_name), &catalog);
            serde_json::to_writer(&mut line, &record).expect("records serialize");
            line.push(b'\n');
            std::hint::black_box(&line);
        }
        exported = last_seq;
        progress("export", exported.min(largest_events), largest_events);
    }
    let export = Throughput {
        events: exported,
        elapsed: started.elapsed(),
    };
    let mut baseline_export = None;
    if let Some(b) = &baseline {
        progress("baseline export", 0, 1);
        let started = Instant::now();
        let n = b
            .lock()
            .expect("lock")
            .export(base_org, &mut line)
            .map_err(baseline_error)?;
        baseline_export = Some(Throughput {
            events: n,
            elapsed: started.elapsed(),
        });
        progress("baseline export", 1, 1);
    }

    // The transparency log (docs/log-format.md): an event's inclusion proof in the largest
    // organization's tree, from the store's tiles (one read of the tiles it needs, then the
    // path computed from them), at random events; and an export that carries a proof for every
    // event and ends with both signed checkpoints, as the service writes it.
    let service = Service::new(
        Arc::clone(&store),
        catalog.clone(),
        ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
    );
    let leaves: Vec<u64> = (0..runs + config.warmup_runs)
        .map(|_| rng.gen_range(0..largest_events.max(1)))
        .collect();
    let leaves = Arc::new(leaves);
    let name = "inclusion proof, random event of the largest org";
    let latency = timing
        .measure(name, &progress, |i| {
            let (service, leaves) = (service.clone(), Arc::clone(&leaves));
            async move {
                let proof = service
                    .inclusion_proofs(org, largest_events, &[leaves[i % leaves.len()]])
                    .await
                    .map_err(|e| StoreError::Backend(e.to_string()))?;
                Ok(proof.len() as u64)
            }
        })
        .await?;
    queries.push(QueryResult {
        name: name.to_string(),
        latency,
        baseline: None,
    });
    progress("export with proofs", 0, largest_events);
    let operator = Operator::at_the_command_line();
    let readable = service
        .operator_org(&operator, &org.to_string())
        .await?
        .ok_or(StoreError::UnknownOrg(org))?;
    let started = Instant::now();
    // The writer's progress callback must be Send; the report's is not, so it is told once
    // the export is done.
    let out: Box<dyn std::io::Write + Send> = match &config.proven_export {
        Some(path) => {
            let failed = |e: std::io::Error| {
                StoreError::Backend(format!("--proven-export {}: {e}", path.display()))
            };
            let mut vkey = path.clone().into_os_string();
            vkey.push(".vkey");
            std::fs::write(&vkey, format!("{}\n", service.note_verifier().to_vkey()))
                .map_err(failed)?;
            Box::new(std::io::BufWriter::new(
                std::fs::File::create(path).map_err(failed)?,
            ))
        }
        None => Box::new(std::io::sink()),
    };
    let summary = write_export(
        &service,
        &readable,
        &ExportRequest::default(),
        out,
        |_, _, _| {},
    )
    .await
    .map_err(|e| StoreError::Backend(e.to_string()))?;
    progress("export with proofs", largest_events, largest_events);
    let export_with_proofs = Throughput {
        events: summary.records,
        elapsed: started.elapsed(),
    };
    // The tiles' bytes: every hash of every organization's tiles (what the tree adds to the
    // store, before row overhead).
    let tile_bytes: u64 = per_org
        .iter()
        .map(|&n| {
            tiles_for_size(n)
                .iter()
                .map(|t| u64::from(t.width()) * 32)
                .sum::<u64>()
        })
        .sum();

    // Durable appends: more of the same population, one call after the other.
    history.extend(extra);
    let org_index: std::collections::HashMap<uuid::Uuid, i64> = org_ids
        .iter()
        .enumerate()
        .map(|(idx, id)| (*id, idx as i64))
        .collect();
    let mut appends = Vec::new();
    for &(size, calls) in &config.append_rounds {
        let phase = format!("append, batch of {size}");
        let mut batches = Vec::with_capacity(calls);
        for _ in 0..calls {
            let mut batch = Vec::with_capacity(size);
            for (org, event) in history.by_ref().take(size) {
                let body = validate(event, &catalog, now).expect("generated events are valid");
                per_org[org] += 1;
                batch.push(Append {
                    org_id: org_ids[org],
                    body,
                });
            }
            batches.push(batch);
        }
        let mut baseline_round = None;
        if let Some(b) = &baseline {
            let mut b = b.lock().expect("lock");
            let mut samples = Vec::with_capacity(calls);
            let started = Instant::now();
            for batch in &batches {
                let rows: Vec<(i64, &auditlog_core::EventBody)> = batch
                    .iter()
                    .map(|item| (org_index[&item.org_id], &item.body))
                    .collect();
                let call = Instant::now();
                b.append(&rows).map_err(baseline_error)?;
                samples.push(call.elapsed());
            }
            if calls > 0 {
                baseline_round = Some((
                    Throughput {
                        events: (size * calls) as u64,
                        elapsed: started.elapsed(),
                    },
                    Latency::from_samples(samples, (size * calls) as u64),
                ));
            }
        }
        let mut samples = Vec::with_capacity(calls);
        let started = Instant::now();
        for (i, batch) in batches.into_iter().enumerate() {
            let call = Instant::now();
            store.append(batch).await?;
            samples.push(call.elapsed());
            progress(&phase, i as u64 + 1, calls as u64);
        }
        if calls > 0 {
            appends.push(AppendRound {
                batch_size: size,
                throughput: Throughput {
                    events: (size * calls) as u64,
                    elapsed: started.elapsed(),
                },
                latency: Latency::from_samples(samples, (size * calls) as u64),
                baseline: baseline_round,
            });
        }
    }
    let total_events: u64 = per_org.iter().sum();

    progress("disk size", 0, 1);
    let disk_bytes = store.disk_bytes().await?;
    progress("disk size", 1, 1);

    Ok(Report {
        n_events: loaded,
        seed: config.seed,
        n_orgs: org_ids.len(),
        largest_org_events: largest_events,
        total_events,
        generation,
        load_batch: config.load_batch.max(1),
        load,
        load_append_only,
        appends,
        queries,
        export,
        export_with_proofs,
        tile_bytes,
        disk_bytes,
        baseline: match (baseline_load, baseline_export, &config.baseline_dir) {
            (Some(load), Some(export), Some(dir)) => Some(BaselineFigures {
                load,
                export,
                disk_bytes: Baseline::disk_bytes(dir),
            }),
            _ => None,
        },
    })
}

fn baseline_error(error: rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("baseline: {error}"))
}

/// The first page of 50, newest first.
fn page(filter: Filter, start: Start) -> Query {
    Query {
        filter,
        order: Order::NewestFirst,
        limit: 50,
        start,
    }
}

/// How queries are timed.
struct Timing {
    runs: usize,
    warmup: usize,
    budget: Duration,
}

impl Timing {
    /// Runs `op(i)` `warmup` times untimed, then up to `runs` times timed (stopping after the
    /// budget once 20 runs are done). `op` answers the number of rows it got.
    async fn measure<F, Fut>(
        &self,
        name: &str,
        progress: &impl Fn(&str, u64, u64),
        mut op: F,
    ) -> Result<Latency, StoreError>
    where
        F: FnMut(usize) -> Fut,
        Fut: Future<Output = Result<u64, StoreError>>,
    {
        for i in 0..self.warmup {
            op(self.runs + i).await?;
        }
        let mut samples = Vec::with_capacity(self.runs);
        let mut rows = 0;
        let started = Instant::now();
        for i in 0..self.runs {
            let call = Instant::now();
            rows += op(i).await?;
            samples.push(call.elapsed());
            progress(name, i as u64 + 1, self.runs as u64);
            if i + 1 >= 20 && started.elapsed() > self.budget {
                break;
            }
        }
        Ok(Latency::from_samples(samples, rows))
    }
}

impl Timing {
    /// Times `op(baseline, i)` like [`Timing::measure`] times the store; `None` without a
    /// baseline.
    fn measure_baseline(
        &self,
        baseline: &Option<Arc<Mutex<Baseline>>>,
        name: &str,
        progress: &impl Fn(&str, u64, u64),
        mut op: impl FnMut(&Baseline, usize) -> rusqlite::Result<u64>,
    ) -> Result<Option<Latency>, StoreError> {
        let Some(baseline) = baseline else {
            return Ok(None);
        };
        let baseline = baseline.lock().expect("lock");
        let phase = format!("baseline: {name}");
        for i in 0..self.warmup {
            op(&baseline, self.runs + i).map_err(baseline_error)?;
        }
        let mut samples = Vec::with_capacity(self.runs);
        let mut rows = 0;
        let started = Instant::now();
        for i in 0..self.runs {
            let call = Instant::now();
            rows += op(&baseline, i).map_err(baseline_error)?;
            samples.push(call.elapsed());
            progress(&phase, i as u64 + 1, self.runs as u64);
            if i + 1 >= 20 && started.elapsed() > self.budget {
                break;
            }
        }
        Ok(Some(Latency::from_samples(samples, rows)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers_and_percentiles() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(12_345_678), "12,345,678");
        assert_eq!(millis(Duration::from_micros(250)), "0.250");
        assert_eq!(millis(Duration::from_micros(2_500)), "2.50");
        assert_eq!(millis(Duration::from_micros(25_000)), "25.0");
        assert_eq!(millis(Duration::from_millis(250)), "250");
        let samples: Vec<Duration> = (1..=200).rev().map(Duration::from_millis).collect();
        let latency = Latency::from_samples(samples, 400);
        assert_eq!(latency.p50, Duration::from_millis(100));
        assert_eq!(latency.p99, Duration::from_millis(198));
        assert_eq!(latency.max, Duration::from_millis(200));
        assert_eq!(latency.mean_rows, 2.0);
    }
}
