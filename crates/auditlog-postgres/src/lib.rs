//! The PostgreSQL backend of auditlog: several `auditlog serve` replicas share one database
//! (or a Citus cluster distributing by `org_id`), with the same semantics as the SQLite
//! backend, checked by the same conformance suite.
//!
//! - Appends run one transaction each. They lock the organizations' chain heads in a fixed
//!   order, so replicas appending to one organization keep its chain linear, and appends to
//!   different organizations proceed in parallel. `synchronous_commit` stays on: an append
//!   returns only when its commit is durable.
//! - Events are partitioned by month of `occurred_at`, and every key and index leads with
//!   `org_id`.
//!
//! Map of the crate (`docs/scaling.md` explains the layout and how to run it):
//! - [`schema`]: the tables and indexes, the embedded migrations, the schema version.
//! - `partitions`: monthly partitions of `events`, created on demand before the appends.
//! - `append`: the append transaction (heads, ids, rows, rollups, tree tiles, idempotency
//!   keys), and the restore transaction that stores a migration's already-chained events
//!   through it.
//! - `tree`: each organization's Merkle tree as tiles, grown inside that transaction, and its
//!   signed tree checkpoints.
//! - `read`: filters compiled to SQL; pages, counts, facets, daily counts and chain walks.
//! - `accounts`: organizations, users, roles, service accounts, credentials, checkpoints and
//!   export jobs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use auditlog_core::chain::{SignedCheckpoint, GENESIS};
use auditlog_core::query::{Filter, Query};
use auditlog_core::{Event, Timestamp};
use auditlog_store::{
    Append, AppendOutcome, Applied, ChainHead, Change, Count, Credential, CredentialKind,
    ExportJob, Facets, IdempotencyKey, LegalHold, NewOrg, Org, PurgeBatch, Recorder, Retention,
    Role, ServiceAccount, Store, StoreError, User,
};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use time::OffsetDateTime;
use tokio_postgres::NoTls;
use uuid::Uuid;

mod accounts;
mod append;
mod erasure;
mod partitions;
mod read;
mod retention;
pub mod schema;
mod tree;

use partitions::{Month, Partitions};

/// Connections each store keeps to the database. Size `max_connections` for the number of
/// replicas times this (`docs/scaling.md`).
pub const POOL_SIZE: usize = 16;

/// The PostgreSQL store: a connection pool and what this process has learnt that never goes
/// stale.
pub struct PostgresStore {
    pool: Pool,
    /// Each organization's `org_key` (it tags the organization's search words), learnt on
    /// first use: a key never changes, so entries never go stale.
    org_keys: Mutex<HashMap<Uuid, i64>>,
    partitions: Partitions,
}

impl std::fmt::Debug for PostgresStore {
    // The URL (and its password) stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("pool", &self.pool.status())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`,
    /// or libpq's `key=value` form; no TLS), migrates it to the current schema, and makes
    /// sure this month's and next month's partitions exist. A database migrated by a newer
    /// auditlog is [`StoreError::SchemaTooNew`].
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Backend(format!("invalid PostgreSQL URL: {e}")))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| StoreError::Backend(format!("cannot build the connection pool: {e}")))?;
        let store = PostgresStore {
            pool,
            org_keys: Mutex::new(HashMap::new()),
            partitions: Partitions::default(),
        };
        let mut client = store.client().await?;
        schema::migrate(&mut client).await?;
        store.partitions.load(&client).await?;
        let this_month = Month::of(Timestamp::now());
        store
            .partitions
            .ensure(&mut client, [this_month, this_month.next()])
            .await;
        drop(client);
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(|e| {
            tracing::warn!(error = %e, "no PostgreSQL connection");
            StoreError::Unavailable(UNREACHABLE.into())
        })
    }

    /// The organization's `org_key`, `None` when it does not exist.
    async fn org_key(
        &self,
        client: &tokio_postgres::Client,
        org_id: Uuid,
    ) -> Result<Option<i64>, StoreError> {
        if let Some(key) = self.org_keys.lock().expect("org keys lock").get(&org_id) {
            return Ok(Some(*key));
        }
        let key: Option<i64> = client
            .query_opt("SELECT org_key FROM orgs WHERE id = $1", &[&org_id])
            .await
            .map_err(backend)?
            .map(|row| row.get(0));
        if let Some(key) = key {
            self.org_keys
                .lock()
                .expect("org keys lock")
                .insert(org_id, key);
        }
        Ok(key)
    }

    /// Creates the partitions of the instants a write will store, and next month's ahead of
    /// time.
    async fn prepare_partitions(
        &self,
        client: &mut tokio_postgres::Client,
        occurred_at: impl Iterator<Item = Timestamp>,
    ) {
        let next_month = Month::of(Timestamp::now()).next();
        let months = occurred_at.map(Month::of).chain([next_month]);
        self.partitions.ensure(client, months).await;
    }

    /// Runs the append transaction, idempotently when a key is given.
    async fn append_batch(
        &self,
        batch: Vec<Append>,
        key: Option<IdempotencyKey>,
    ) -> Result<AppendOutcome, StoreError> {
        let mut client = self.client().await?;
        self.prepare_partitions(&mut client, batch.iter().map(|item| item.body.occurred_at))
            .await;
        append::append(&mut client, &batch, key.as_ref(), Timestamp::now()).await
    }
}

/// What a client is told when PostgreSQL cannot be reached or is restarting.
const UNREACHABLE: &str = "the database is unreachable or restarting; nothing was stored";

/// A driver error, for the log. A lost connection, a server shutting down or starting up, and
/// a full disk are [`StoreError::Unavailable`]: the transaction did not commit, and the same
/// request may succeed once the database is back (the pool then makes new connections).
pub(crate) fn backend(error: tokio_postgres::Error) -> StoreError {
    use tokio_postgres::error::SqlState;
    let code = error.code();
    let transient = error.is_closed()
        || std::error::Error::source(&error).is_some_and(|s| s.is::<std::io::Error>())
        || code.is_some_and(|c| {
            c.code().starts_with("08")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                    SqlState::DISK_FULL,
                    SqlState::INSUFFICIENT_RESOURCES,
                    SqlState::READ_ONLY_SQL_TRANSACTION,
                ]
                .contains(c)
        });
    if transient {
        tracing::warn!(error = %error, "PostgreSQL unavailable");
        return StoreError::Unavailable(if code == Some(&SqlState::DISK_FULL) {
            "the database's disk is full; nothing was stored".into()
        } else {
            UNREACHABLE.into()
        });
    }
    match error.as_db_error() {
        Some(db) => StoreError::Backend(format!(
            "{} ({}){}",
            db.message(),
            db.code().code(),
            db.detail().map(|d| format!(": {d}")).unwrap_or_default()
        )),
        None => StoreError::Backend(error.to_string()),
    }
}

/// What a client is told when the connection broke while `COMMIT` was under way.
const COMMIT_UNKNOWN: &str = "the database went away while committing, so the request may or \
     may not have been stored; send it again with the same Idempotency-Key to store it once";

/// A failed `COMMIT`. When the connection broke on the way, PostgreSQL may have committed
/// before it went, and nobody can say here which: the client is told so, instead of being
/// told that nothing was stored.
pub(crate) fn commit_failed(error: tokio_postgres::Error) -> StoreError {
    if error.as_db_error().is_none()
        && (error.is_closed() || std::error::Error::source(&error).is_some())
    {
        tracing::warn!(error = %error, "PostgreSQL connection lost during COMMIT");
        return StoreError::Unavailable(COMMIT_UNKNOWN.into());
    }
    backend(error)
}

/// True when the error is a violated unique constraint.
pub(crate) fn is_unique_violation(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

/// A timestamp as PostgreSQL's `timestamptz` (microseconds, so milliseconds fit exactly).
pub(crate) fn sql_time(at: Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(at.as_millis()) * 1_000_000)
        .expect("a Timestamp is within OffsetDateTime's range")
}

/// A stored `timestamptz` back as a timestamp; anything out of range is corruption.
pub(crate) fn from_sql_time(at: OffsetDateTime) -> Result<Timestamp, StoreError> {
    let ms = at.unix_timestamp_nanos().div_euclid(1_000_000);
    i64::try_from(ms)
        .ok()
        .and_then(Timestamp::from_millis)
        .ok_or_else(|| StoreError::Corrupt(format!("stored time {at} is out of range")))
}

/// An optional stored `timestamptz`.
pub(crate) fn from_opt_sql_time(
    at: Option<OffsetDateTime>,
) -> Result<Option<Timestamp>, StoreError> {
    at.map(from_sql_time).transpose()
}

/// A stored 32-byte hash.
pub(crate) fn hash32(bytes: Vec<u8>, what: &str) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("{what} is not 32 bytes")))
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_org(&self, org: NewOrg) -> Result<Org, StoreError> {
        let mut client = self.client().await?;
        accounts::create_org(&mut client, &org).await
    }

    async fn set_org_enabled(
        &self,
        org_id: Uuid,
        enabled: bool,
    ) -> Result<Option<Org>, StoreError> {
        let client = self.client().await?;
        accounts::set_org_enabled(&client, org_id, enabled).await
    }

    async fn find_org(&self, name_or_id: &str) -> Result<Option<Org>, StoreError> {
        let client = self.client().await?;
        accounts::find_org(&client, name_or_id).await
    }

    async fn list_orgs(&self) -> Result<Vec<Org>, StoreError> {
        let client = self.client().await?;
        accounts::list_orgs(&client).await
    }

    async fn append(&self, batch: Vec<Append>) -> Result<Vec<Event>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        match self.append_batch(batch, None).await? {
            AppendOutcome::Stored(events) => Ok(events),
            AppendOutcome::Replayed(_) => Err(StoreError::Backend(
                "an append without a key was replayed".into(),
            )),
        }
    }

    async fn restore_org(&self, org: Org) -> Result<Org, StoreError> {
        let mut client = self.client().await?;
        accounts::restore_org(&mut client, org).await
    }

    async fn restore_events(&self, org_id: Uuid, events: Vec<Event>) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut client = self.client().await?;
        self.prepare_partitions(&mut client, events.iter().map(|e| e.body.occurred_at))
            .await;
        append::restore(&mut client, org_id, &events).await
    }

    async fn get_event(&self, org_id: Uuid, id: Uuid) -> Result<Option<Event>, StoreError> {
        let client = self.client().await?;
        read::get_event(&client, org_id, id).await
    }

    async fn query(&self, org_id: Uuid, query: &Query) -> Result<Vec<Event>, StoreError> {
        let client = self.client().await?;
        let tag = self.org_key(&client, org_id).await?;
        read::query(&client, org_id, tag, query).await
    }

    async fn count(&self, org_id: Uuid, filter: &Filter, cap: u64) -> Result<Count, StoreError> {
        let client = self.client().await?;
        let tag = self.org_key(&client, org_id).await?;
        read::count(&client, org_id, tag, filter, cap).await
    }

    async fn facets(
        &self,
        org_id: Uuid,
        filter: &Filter,
        max_each: usize,
    ) -> Result<Facets, StoreError> {
        let client = self.client().await?;
        let tag = self.org_key(&client, org_id).await?;
        read::facets(&client, org_id, tag, filter, max_each).await
    }

    async fn daily_counts(
        &self,
        org_id: Uuid,
        filter: &Filter,
    ) -> Result<Vec<(i64, u64)>, StoreError> {
        let client = self.client().await?;
        let tag = self.org_key(&client, org_id).await?;
        read::daily_counts(&client, org_id, tag, filter).await
    }

    async fn events_by_seq(
        &self,
        org_id: Uuid,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        let client = self.client().await?;
        read::events_by_seq(&client, org_id, after_seq, limit).await
    }

    async fn chain_head(&self, org_id: Uuid) -> Result<ChainHead, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT seq, hash FROM org_heads WHERE org_id = $1",
                &[&org_id],
            )
            .await
            .map_err(backend)?;
        match row {
            None => Ok(ChainHead {
                seq: 0,
                hash: GENESIS,
            }),
            Some(row) => Ok(ChainHead {
                seq: row.get::<_, i64>(0) as u64,
                hash: hash32(row.get(1), "a chain head's hash")?,
            }),
        }
    }

    async fn apply(
        &self,
        changes: Vec<Change>,
        record: Option<Recorder>,
    ) -> Result<Applied, StoreError> {
        let mut client = self.client().await?;
        let now = Timestamp::now();
        if record.is_some() {
            // The records are stamped now; their month's partition must exist.
            self.prepare_partitions(&mut client, std::iter::once(now))
                .await;
        }
        append::apply(&mut client, changes, record, now).await
    }

    async fn save_checkpoint(&self, checkpoint: &SignedCheckpoint) -> Result<(), StoreError> {
        let client = self.client().await?;
        accounts::save_checkpoint(&client, checkpoint).await
    }

    async fn latest_checkpoint(
        &self,
        org_id: Uuid,
    ) -> Result<Option<SignedCheckpoint>, StoreError> {
        let client = self.client().await?;
        accounts::latest_checkpoint(&client, org_id).await
    }

    async fn read_tiles(
        &self,
        org_id: Uuid,
        tiles: &[(u8, u64)],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let client = self.client().await?;
        tree::read_tiles(&client, org_id, tiles).await
    }

    async fn save_tree_checkpoint(
        &self,
        org_id: Uuid,
        size: u64,
        note: &str,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        tree::save_tree_checkpoint(&client, org_id, size, note).await
    }

    async fn latest_tree_checkpoint(
        &self,
        org_id: Uuid,
    ) -> Result<Option<(u64, String)>, StoreError> {
        let client = self.client().await?;
        tree::latest_tree_checkpoint(&client, org_id).await
    }

    async fn disk_bytes(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        // Every table of this store's schema with its indexes and TOAST; partitioned parents
        // have no storage of their own, their partitions are counted instead.
        let bytes: i64 = client
            .query_one(
                "SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0)::bigint
                 FROM pg_class c
                 WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'm')",
                &[],
            )
            .await
            .map_err(backend)?
            .get(0);
        Ok(bytes.max(0) as u64)
    }

    async fn find_user(&self, email_or_id: &str) -> Result<Option<User>, StoreError> {
        let client = self.client().await?;
        accounts::find_user(&client, email_or_id).await
    }

    async fn set_password(
        &self,
        user_id: Uuid,
        password_hash: Option<String>,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        accounts::set_password(&client, user_id, password_hash).await
    }

    async fn role_of(&self, org_id: Uuid, user_id: Uuid) -> Result<Option<Role>, StoreError> {
        let client = self.client().await?;
        accounts::role_of(&client, org_id, user_id).await
    }

    async fn memberships(&self, user_id: Uuid) -> Result<Vec<(Org, Role)>, StoreError> {
        let client = self.client().await?;
        accounts::memberships(&client, user_id).await
    }

    async fn members(&self, org_id: Uuid) -> Result<Vec<(User, Role)>, StoreError> {
        let client = self.client().await?;
        accounts::members(&client, org_id).await
    }

    async fn service_account_by_client_id(
        &self,
        client_id: &str,
    ) -> Result<Option<ServiceAccount>, StoreError> {
        let client = self.client().await?;
        accounts::service_account_by_client_id(&client, client_id).await
    }

    async fn service_accounts(&self, org_id: Uuid) -> Result<Vec<ServiceAccount>, StoreError> {
        let client = self.client().await?;
        accounts::service_accounts(&client, org_id).await
    }

    async fn credential_by_hash(
        &self,
        token_hash: [u8; 32],
    ) -> Result<Option<Credential>, StoreError> {
        let client = self.client().await?;
        accounts::credential_by_hash(&client, token_hash).await
    }

    async fn credentials(
        &self,
        kind: CredentialKind,
        user_id: Option<Uuid>,
        org_id: Option<Uuid>,
    ) -> Result<Vec<Credential>, StoreError> {
        let client = self.client().await?;
        accounts::credentials(&client, kind, user_id, org_id).await
    }

    async fn purge_expired_credentials(&self, before: Timestamp) -> Result<u64, StoreError> {
        let client = self.client().await?;
        accounts::purge_expired_credentials(&client, before).await
    }

    async fn append_idempotent(
        &self,
        batch: Vec<Append>,
        key: IdempotencyKey,
    ) -> Result<AppendOutcome, StoreError> {
        self.append_batch(batch, Some(key)).await
    }

    async fn get_job(&self, org_id: Uuid, id: Uuid) -> Result<Option<ExportJob>, StoreError> {
        let client = self.client().await?;
        accounts::get_job(&client, org_id, id).await
    }

    async fn update_job(&self, job: &ExportJob) -> Result<(), StoreError> {
        let client = self.client().await?;
        accounts::put_job(&client, job).await
    }

    async fn claim_job(
        &self,
        runner: &str,
        now: Timestamp,
        stale_before: Timestamp,
    ) -> Result<Option<ExportJob>, StoreError> {
        let client = self.client().await?;
        accounts::claim_job(&client, runner, now, stale_before).await
    }

    async fn expired_jobs(&self, now: Timestamp) -> Result<Vec<ExportJob>, StoreError> {
        let client = self.client().await?;
        accounts::expired_jobs(&client, now).await
    }

    async fn legal_holds(&self, org_id: Uuid) -> Result<Vec<LegalHold>, StoreError> {
        let client = self.client().await?;
        erasure::legal_holds(&client, org_id).await
    }

    async fn retention(&self, org_id: Uuid) -> Result<Retention, StoreError> {
        let client = self.client().await?;
        retention::retention(&**client, org_id)
            .await?
            .ok_or(StoreError::UnknownOrg(org_id))
    }

    async fn purge(
        &self,
        org_id: Uuid,
        before: Timestamp,
        max_events: u32,
    ) -> Result<PurgeBatch, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let batch = retention::purge(&tx, org_id, before, max_events).await?;
        tx.commit().await.map_err(backend)?;
        if batch.events > 0 {
            for month in retention::drop_emptied_partitions(&mut client, before).await? {
                self.partitions.forget(month);
            }
        }
        Ok(batch)
    }
}
