//! The `auditlog` command: reads configuration, opens the store, and runs one subcommand.
//! Everything it does goes through `auditlog-service`; this file only composes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;
mod progress;

/// A self-hostable audit-log service: every administrative action of every organization,
/// with a history nobody can quietly rewrite.
#[derive(Debug, Parser)]
#[command(name = "auditlog", version, propagate_version = true)]
pub struct Cli {
    /// Directory holding the embedded database and the signing key.
    #[arg(
        long,
        global = true,
        env = "AUDITLOG_DATA_DIR",
        default_value = "./auditlog-data"
    )]
    pub data_dir: PathBuf,

    /// Keep everything in PostgreSQL (`postgres://user:password@host/db`) instead of the
    /// embedded SQLite file; several `auditlog serve` replicas may share one database.
    #[arg(
        long,
        global = true,
        env = "AUDITLOG_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// A TOML file of extra actions to accept besides the preset's (see docs/catalog.md).
    #[arg(long, global = true, env = "AUDITLOG_CATALOG")]
    pub catalog: Option<PathBuf>,

    /// Which built-in catalog to start from: `cloud` (the 27 Anaconda Platform actions) or
    /// `self-hosted` (the Anaconda self-hosted platform's 19).
    #[arg(long, global = true, env = "AUDITLOG_PRESET", default_value = "cloud")]
    pub preset: String,

    /// Accept events whose action is in no catalog instead of rejecting them.
    #[arg(long, global = true, env = "AUDITLOG_ACCEPT_UNKNOWN_ACTIONS")]
    pub accept_unknown_actions: bool,

    /// Make a new signing key even though the store already holds history whose checkpoints
    /// another key signed (they then verify only with that old public key). Without it, a
    /// missing key file for such a store is an error.
    #[arg(long, global = true)]
    pub new_signing_key: bool,

    /// The name of this deployment's transparency logs: the key name of their signed
    /// checkpoints and the prefix of each organization's origin (`<name>/<organization id>`),
    /// such as the host name clients reach it by. No spaces and no `+`. Checkpoints already
    /// signed keep the name they were signed under, so choose it before going live.
    #[arg(
        long,
        global = true,
        env = "AUDITLOG_LOG_NAME",
        default_value = auditlog_service::log::DEFAULT_LOG_NAME
    )]
    pub log_name: String,

    /// A `meta` key whose values are personal data (an email, a phone number), repeatable or
    /// comma-separated: like the personal fields, its values enter each event's leaf only as a
    /// salted commitment, so that they can be erased without breaking a proof
    /// (docs/log-format.md §2).
    #[arg(
        long = "personal-meta-key",
        global = true,
        env = "AUDITLOG_PERSONAL_META_KEYS",
        value_delimiter = ',',
        value_name = "KEY"
    )]
    pub personal_meta_keys: Vec<String>,

    /// A redaction rule, repeatable or comma-separated: `KEY_PATTERN` or
    /// `ACTION_PATTERN:KEY_PATTERN`, globs with `*` that ignore case (`*token*`, `password`,
    /// `token_created:value`). Every event stored has the values of the `meta` keys (at any
    /// depth) and of the changed fields they match replaced by `[REDACTED]` first, and lists
    /// their paths in `redacted` (docs/events.md). None by default.
    #[arg(
        long = "redact",
        global = true,
        env = "AUDITLOG_REDACT",
        value_delimiter = ',',
        value_name = "RULE"
    )]
    pub redact: Vec<String>,

    /// How many hours before its arrival an event may have happened without being flagged
    /// `backfilled` (docs/events.md): an older `occurred_at` is kept as sent, and flagged.
    #[arg(
        long,
        global = true,
        env = "AUDITLOG_BACKFILL_WINDOW_HOURS",
        default_value_t = 24,
        value_parser = clap::value_parser!(u64).range(1..=87_600)
    )]
    pub backfill_window_hours: u64,

    /// Days an organization's events are kept unless its administrators choose otherwise;
    /// older ones are purged (docs/retention.md). Without it events are kept forever.
    #[arg(
        long,
        global = true,
        env = "AUDITLOG_RETENTION_DAYS",
        value_name = "DAYS",
        value_parser = clap::value_parser!(u32).range(1..=36_500)
    )]
    pub retention_days: Option<u32>,

    /// The longest retention an organization may choose, in days.
    #[arg(
        long,
        global = true,
        env = "AUDITLOG_MAX_RETENTION_DAYS",
        value_name = "DAYS",
        default_value_t = 3_650,
        value_parser = clap::value_parser!(u32).range(1..=36_500)
    )]
    pub max_retention_days: u32,

    /// The most memory, in MiB, the embedded store's page caches hold together (213 by
    /// default; docs/operations.md, "Memory"). Smaller trades reads from the operating
    /// system's file cache for a smaller process.
    #[arg(
        long,
        global = true,
        env = "AUDITLOG_SQLITE_CACHE_MIB",
        value_name = "MIB",
        value_parser = clap::value_parser!(u64).range(1..=1 << 20)
    )]
    pub sqlite_cache_mib: Option<u64>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service.
    Serve(cli::serve::ServeArgs),
    /// Create and list organizations.
    #[command(subcommand)]
    Org(cli::org::OrgCommand),
    /// Add, remove and list users of an organization.
    #[command(subcommand)]
    User(cli::accounts::UserCommand),
    /// Create, list and delete service accounts.
    #[command(subcommand)]
    ServiceAccount(cli::accounts::ServiceAccountCommand),
    /// Create, list and revoke ingest keys.
    #[command(subcommand)]
    IngestKey(cli::accounts::IngestKeyCommand),
    /// Create, list and revoke personal API tokens.
    #[command(subcommand)]
    Token(cli::accounts::TokenCommand),
    /// Import events from a JSON Lines file (one event per line, in the ingest format).
    Import(cli::import::ImportArgs),
    /// Move an embedded store into PostgreSQL, verifying it before and after.
    Migrate(cli::migrate::MigrateArgs),
    /// List an organization's events, newest first.
    Events(cli::events::EventsArgs),
    /// Export an organization's events to a signed JSON Lines or CSV file.
    Export(cli::export::ExportArgs),
    /// Verify every organization's hash chain against its signed checkpoint (exit code 0
    /// when intact, 1 when tampered).
    Verify(cli::verify::VerifyArgs),
    /// Rebuild the store's indexes, rollups and search postings from the stored events.
    Reindex(cli::reindex::ReindexArgs),
    /// Purge now the events older than each organization's retention (`serve` does it every
    /// hour).
    Purge(cli::retention::PurgeArgs),
    /// Print the public key that verifies this store's checkpoints.
    PublicKey(cli::verify::PublicKeyArgs),
    /// Print an organization's signed tree checkpoint (a C2SP signed note), signing one for
    /// its current log first if needed; keep it, and `verify --since` it later.
    Checkpoint(cli::verify::CheckpointArgs),
    /// Fill a demo organization with generated history and show its newest events.
    Demo(cli::demo::DemoArgs),
    /// Measure ingest, query latency and disk use on generated history.
    #[cfg(feature = "bench")]
    Bench(cli::bench::BenchArgs),
}

fn main() -> ExitCode {
    // Before any thread exists, so that every thread shares the limited arenas.
    auditlog_service::allocator::limit_arenas();
    let cli = Cli::parse();
    // The server logs each request (with its request id) at info; other commands stay quiet
    // unless asked. AUDITLOG_LOG takes the usual filter syntax (`debug`, `auditlog_server=debug`).
    let default_level = if matches!(cli.command, Command::Serve(_)) {
        "info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AUDITLOG_LOG")
                .unwrap_or_else(|_| default_level.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
