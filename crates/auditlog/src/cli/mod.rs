//! The subcommands, one module each, and what they share: opening the store and the service.
//! The operator's commands act through the service with `Operator::at_the_command_line()`,
//! the capability only this binary mints; none of them touches the store directly.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use auditlog_core::redact::RedactionRules;
use auditlog_core::{Catalog, Preset};
use auditlog_service::grant::{Operator, ReadableOrg};
use auditlog_service::retention::RetentionPolicy;
use auditlog_service::{keys, Service};
use auditlog_sqlite::{SqliteOptions, SqliteStore};
use auditlog_store::Store;

use crate::{Cli, Command};

pub mod accounts;
#[cfg(feature = "bench")]
pub mod bench;
pub mod demo;
pub mod events;
pub mod export;
pub mod import;
pub mod migrate;
pub mod org;
pub mod reindex;
pub mod retention;
pub mod serve;
pub mod verify;

/// What every subcommand may need, built from the global flags.
#[derive(Clone)]
pub struct Context {
    /// The data directory.
    pub data_dir: std::path::PathBuf,
    /// The catalog in force.
    pub catalog: Catalog,
    /// A PostgreSQL URL, when the store is not the embedded one.
    pub database_url: Option<String>,
    /// Whether a missing signing key may be replaced for a store that holds history.
    pub when_key_missing: keys::WhenMissing,
    /// The transparency logs' name (`--log-name`).
    pub log_name: String,
    /// The `meta` keys holding personal data (`--personal-meta-key`).
    pub personal_meta_keys: Vec<String>,
    /// The redaction rules (`--redact`).
    pub redaction: RedactionRules,
    /// The embedded store's page-cache budget in bytes (`--sqlite-cache-mib`).
    pub sqlite_cache_budget: u64,
    /// The backfill window (`--backfill-window-hours`).
    pub backfill_window: std::time::Duration,
    /// How long events are kept (`--retention-days`, `--max-retention-days`).
    pub retention: RetentionPolicy,
}

impl Context {
    fn from_cli(cli: &Cli) -> anyhow::Result<Context> {
        let preset = Preset::parse(&cli.preset).with_context(|| {
            format!("--preset {:?} is not one of cloud, self-hosted", cli.preset)
        })?;
        let mut catalog = Catalog::preset(preset);
        if let Some(path) = &cli.catalog {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read catalog {}", path.display()))?;
            catalog
                .extend_from_toml(&text)
                .with_context(|| format!("catalog {}", path.display()))?;
        }
        if cli.accept_unknown_actions {
            catalog.accept_unknown = true;
        }
        let rules: Vec<&str> = cli.redact.iter().map(|rule| rule.trim()).collect();
        let redaction = RedactionRules::parse(&rules).context("--redact")?;
        let retention = RetentionPolicy::new(cli.retention_days, cli.max_retention_days)
            .map_err(|e| anyhow::anyhow!("--retention-days: {e}"))?;
        Ok(Context {
            data_dir: cli.data_dir.clone(),
            database_url: cli.database_url.clone(),
            log_name: cli.log_name.clone(),
            personal_meta_keys: cli.personal_meta_keys.clone(),
            redaction,
            retention,
            backfill_window: std::time::Duration::from_secs(cli.backfill_window_hours * 3600),
            sqlite_cache_budget: cli
                .sqlite_cache_mib
                .map_or(auditlog_sqlite::PAGE_CACHE_BUDGET, |mib| mib << 20),
            catalog,
            when_key_missing: if cli.new_signing_key {
                keys::WhenMissing::CreateNew
            } else {
                keys::WhenMissing::Refuse
            },
        })
    }

    /// Opens the store: PostgreSQL when `--database-url` names one, else the embedded SQLite
    /// file in the data directory. This is the only place that knows both backends.
    pub async fn open_store(&self) -> anyhow::Result<Arc<dyn Store>> {
        match &self.database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let store = auditlog_postgres::PostgresStore::connect(url)
                    .await
                    .context("cannot connect to PostgreSQL")?;
                Ok(Arc::new(store))
            }
            Some(url) => bail!("--database-url must start with postgres:// (got {:?}); leave it out for the embedded store", url.split(':').next().unwrap_or("")),
            None => {
                let options = SqliteOptions {
                    page_cache_budget: self.sqlite_cache_budget,
                    ..SqliteOptions::default()
                };
                let store = SqliteStore::open_with(&self.data_dir, options)
                    .with_context(|| format!("cannot open the store in {}", self.data_dir.display()))?;
                Ok(Arc::new(store))
            }
        }
    }

    /// The service over the store, with the data directory's signing key.
    pub async fn service(&self) -> anyhow::Result<Service> {
        let store = self.open_store().await?;
        let key = self.signing_key(store.as_ref()).await?;
        self.compose(store, key)
    }

    /// The service over `store` signing with `key`, under the deployment's log name.
    pub fn compose(
        &self,
        store: Arc<dyn Store>,
        key: ed25519_dalek::SigningKey,
    ) -> anyhow::Result<Service> {
        Ok(Service::new(store, self.catalog.clone(), key)
            .with_log_name(&self.log_name)
            .map_err(|e| anyhow::anyhow!("--log-name: {e}"))?
            .with_personal_meta(&self.personal_meta_keys)
            .with_redaction(self.redaction.clone())
            .with_backfill_window(self.backfill_window)
            .with_retention_policy(self.retention))
    }

    /// The service for `verify`: the data directory's key as it is, unchecked, because
    /// checking the stored checkpoints against it is what `verify` reports on, organization by
    /// organization. It never creates a key.
    pub async fn service_to_verify(&self) -> anyhow::Result<Service> {
        let key = keys::load(&self.data_dir).context(
            "verify checks the checkpoints with the key that signed them; run where the data \
             directory holding it is (or restore it there)",
        )?;
        let store = self.open_store().await?;
        self.compose(store, key)
    }

    /// The data directory's signing key, checked against `store`'s signed history
    /// ([`keys::load_for_store`]).
    pub async fn signing_key(
        &self,
        store: &dyn Store,
    ) -> anyhow::Result<ed25519_dalek::SigningKey> {
        let key = keys::load_for_store(&self.data_dir, store, self.when_key_missing).await;
        if key.is_err() {
            store.close();
        }
        Ok(key?)
    }
}

/// Finds an organization by name or id for the operator, or explains that it does not
/// exist.
pub async fn find_org(
    service: &Service,
    operator: &Operator,
    name: &str,
) -> anyhow::Result<ReadableOrg> {
    match service.operator_org(operator, name).await? {
        Some(org) => Ok(org),
        None => {
            bail!("no organization is named {name:?} (create it with `auditlog org create {name}`)")
        }
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let context = Context::from_cli(&cli)?;
    match cli.command {
        Command::Org(command) => org::run(&context, command).await,
        Command::Serve(args) => serve::run(&context, args).await,
        Command::User(command) => accounts::user(&context, command).await,
        Command::ServiceAccount(command) => accounts::service_account(&context, command).await,
        Command::IngestKey(command) => accounts::ingest_key(&context, command).await,
        Command::Token(command) => accounts::token(&context, command).await,
        Command::Import(args) => import::run(&context, args).await,
        Command::Migrate(args) => migrate::run(&context, args).await,
        Command::Events(args) => events::run(&context, args).await,
        Command::Export(args) => export::run(&context, args).await,
        Command::Verify(args) => verify::run(&context, args).await,
        Command::Reindex(args) => reindex::run(&context, args).await,
        Command::Purge(args) => retention::purge(&context, args).await,
        Command::PublicKey(args) => verify::public_key(&context, args).await,
        Command::Checkpoint(args) => verify::checkpoint(&context, args).await,
        Command::Demo(args) => demo::run(&context, args).await,
        #[cfg(feature = "bench")]
        Command::Bench(args) => bench::run(&context, args).await,
    }
}
