//! The embedded SQLite backend of auditlog: the log in one file under the data directory
//! (WAL with `synchronous=FULL`, one writer thread doing group commit), everything derived
//! from it in a second file built by an indexer thread, a pool of readers that merge the two,
//! and a checkpointer thread that keeps the log's WAL small without stalling commits.
//!
//! - [`schema`]: the tables, indexes and migrations of both files.
//! - `log_row`: the stored form of an event.
//! - `writer`: the group-commit writer (the only code that writes `auditlog.db`).
//! - `indexer`: builds `index.db` from the log, off the commit path.
//! - `read`: the query plans, and the merge of the unindexed tail.
//! - `tree`: each organization's Merkle tree: tiles and signed tree checkpoints.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use auditlog_core::chain::SignedCheckpoint;
use auditlog_core::query::{Filter, Query};
use auditlog_core::{Event, Timestamp};
use auditlog_store::{
    Append, AppendOutcome, Applied, ChainHead, Change, Changed, Count, Credential, CredentialKind,
    ExportJob, Facets, IdempotencyKey, IndexLag, LegalHold, NewOrg, Org, PurgeBatch, Recorder,
    Retention, Role, ServiceAccount, Store, StoreError, User,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row};
use tokio::sync::oneshot;
use uuid::Uuid;

mod accounts;
mod erasure;
mod indexer;
mod log_row;
mod read;
mod retention;
pub mod schema;
mod tree;
mod writer;

use read::OrgScope;
use writer::Command;

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "auditlog.db";
/// The derived-state file's name inside the data directory (it can be deleted while no
/// process has the store open, and is then rebuilt from the log).
pub const INDEX_FILE: &str = "index.db";

/// How many queued write requests make a sender wait (backpressure).
const WRITE_QUEUE: usize = 4096;
/// Readers open at once; a query beyond them waits for one to come free. Each reader keeps
/// its own page caches, so this bounds the store's memory as well as its threads.
const MAX_READERS: usize = 8;

/// Page-cache sizes in KiB (SQLite's `cache_size` takes a negative number as KiB), per kind
/// of connection. A cache only saves a copy from the operating system's page cache, which
/// holds the files anyway, so only the indexer, whose B-tree inserts land all over its
/// indexes, gets a large one. [`CacheSizes::DEFAULT`] adds up to [`PAGE_CACHE_BUDGET`];
/// [`SqliteOptions::page_cache_budget`] scales them all to another total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CacheSizes {
    /// The writer appends at the right edge of its B-trees: a few pages each commit.
    writer: i64,
    /// The indexer's connection to `index.db`.
    indexer: i64,
    /// The indexer's read-only connection to the log: it reads new rows once, in order.
    indexer_log: i64,
    /// Each reader's cache of the log (`main`).
    reader_log: i64,
    /// Each reader's cache of `index.db` (`idx`).
    reader_index: i64,
    /// The checkpointer copies WAL frames back; it needs no cache of its own.
    checkpointer: i64,
}

impl CacheSizes {
    const DEFAULT: CacheSizes = CacheSizes {
        writer: 16 * 1024,
        indexer: 64 * 1024,
        indexer_log: 4 * 1024,
        reader_log: 8 * 1024,
        reader_index: 8 * 1024,
        checkpointer: 512,
    };

    /// No cache is made smaller than this (SQLite keeps at least ten pages anyway).
    const MIN_KIB: i64 = 64;

    /// The most all caches hold together, in bytes, with every reader open.
    const fn total_bytes(&self) -> u64 {
        1024 * (self.writer
            + self.indexer
            + self.indexer_log
            + MAX_READERS as i64 * (self.reader_log + self.reader_index)
            + 2 * self.checkpointer) as u64
    }

    /// The default sizes scaled so that they add up to `budget` bytes, each rounded down
    /// and none below [`CacheSizes::MIN_KIB`].
    fn within(budget: u64) -> CacheSizes {
        let default = CacheSizes::DEFAULT;
        let total = default.total_bytes() as u128;
        let scale = |kib: i64| {
            let scaled = kib as u128 * budget as u128 / total;
            i64::try_from(scaled)
                .unwrap_or(i64::MAX)
                .max(CacheSizes::MIN_KIB)
        };
        CacheSizes {
            writer: scale(default.writer),
            indexer: scale(default.indexer),
            indexer_log: scale(default.indexer_log),
            reader_log: scale(default.reader_log),
            reader_index: scale(default.reader_index),
            checkpointer: scale(default.checkpointer),
        }
    }
}

/// The most memory the store's SQLite page caches hold together by default, in bytes: what
/// an operator plans for beside the rest of the process (docs/operations.md), unless
/// [`SqliteOptions::page_cache_budget`] sets another.
pub const PAGE_CACHE_BUDGET: u64 = CacheSizes::DEFAULT.total_bytes();

/// The SQLite store.
pub struct SqliteStore {
    path: PathBuf,
    index_path: PathBuf,
    commands: Mutex<Option<mpsc::SyncSender<Command>>>,
    readers: Arc<Readers>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    stop_checkpointer: Arc<std::sync::atomic::AtomicBool>,
    indexer: Arc<indexer::Signal>,
    caches: CacheSizes,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

/// A SQLite error as the store reports it: a full disk is [`StoreError::Unavailable`] (the
/// statement or transaction was rolled back, and a retry succeeds once space returns);
/// anything else is a backend failure.
pub(crate) fn backend(error: rusqlite::Error) -> StoreError {
    if is_disk_full(&error) {
        StoreError::Unavailable(DISK_FULL.into())
    } else {
        StoreError::Backend(error.to_string())
    }
}

/// What a client is told when a write finds the disk full.
pub(crate) const DISK_FULL: &str = "the disk holding the store is full; nothing was stored";

/// True when SQLite could not write for want of space (`SQLITE_FULL`, which SQLite reports
/// for `ENOSPC`).
pub(crate) fn is_disk_full(error: &rusqlite::Error) -> bool {
    error.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
}

pub(crate) const ORG_COLUMNS: &str = "id, name, display_name, audit_logs_enabled, created_at";

pub(crate) fn org_from_row(row: &Row<'_>) -> rusqlite::Result<Org> {
    let id: Vec<u8> = row.get(0)?;
    let created_at: i64 = row.get(4)?;
    Ok(Org {
        id: Uuid::from_slice(&id).unwrap_or_default(),
        name: row.get(1)?,
        display_name: row.get(2)?,
        audit_logs_enabled: row.get(3)?,
        created_at: Timestamp::from_millis(created_at)
            .unwrap_or(Timestamp::from_millis(0).expect("epoch")),
    })
}

/// Prepared statements each connection keeps: a read plan uses a dozen or more distinct
/// statements, and rusqlite's default of 16 made readers parse SQL again on most requests.
const STATEMENT_CACHE: usize = 256;

/// Settings of a connection to `auditlog.db` with a page cache of `cache_kib`. WAL lets
/// readers run beside the writer; `synchronous=FULL` makes each commit durable before anyone
/// is answered.
fn configure(conn: &Connection, cache_kib: i64) -> Result<(), StoreError> {
    configure_with(conn, "FULL", cache_kib)
}

/// Settings of a connection to `index.db`: WAL so readers never block the indexer, and
/// `synchronous=NORMAL` because what it holds can be rebuilt from the log (a crash loses at
/// most its last batches, which the indexer redoes; it never leaves the file inconsistent).
fn configure_index(conn: &Connection, cache_kib: i64) -> Result<(), StoreError> {
    configure_with(conn, "NORMAL", cache_kib)
}

fn configure_with(conn: &Connection, synchronous: &str, cache_kib: i64) -> Result<(), StoreError> {
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(backend)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = {synchronous};
         PRAGMA temp_store = MEMORY;
         PRAGMA secure_delete = ON;
         PRAGMA cache_size = -{cache_kib};
         PRAGMA journal_size_limit = 67108864;"
    ))
    .map_err(backend)
}

/// How a store is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Run the indexer thread (the default). Without it derived state is built only by
    /// [`SqliteStore::index_now`], which tests use to decide exactly what is indexed; reads
    /// stay correct either way.
    pub background_indexing: bool,
    /// The most memory, in bytes, all the store's page caches hold together
    /// ([`PAGE_CACHE_BUDGET`] by default). Each connection's share is scaled from the
    /// default, so a smaller budget trades reads from the operating system's file cache for
    /// a smaller process.
    pub page_cache_budget: u64,
}

impl Default for SqliteOptions {
    fn default() -> SqliteOptions {
        SqliteOptions {
            background_indexing: true,
            page_cache_budget: PAGE_CACHE_BUDGET,
        }
    }
}

impl SqliteStore {
    /// Opens (creating when absent) the store in `dir`, migrating it to the current schema.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(dir, SqliteOptions::default())
    }

    /// [`SqliteStore::open`] with options.
    pub fn open_with(dir: &Path, options: SqliteOptions) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Backend(format!("cannot create {}: {e}", dir.display())))?;
        let caches = CacheSizes::within(options.page_cache_budget);
        let path = dir.join(DB_FILE);
        let mut conn = Connection::open(&path).map_err(backend)?;
        configure(&conn, caches.writer)?;
        schema::migrate(&mut conn)?;
        // The checkpointer, not the committing writer, copies the WAL back into the database.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")
            .map_err(backend)?;

        let index_path = dir.join(INDEX_FILE);
        let mut index = Connection::open(&index_path).map_err(backend)?;
        configure_index(&index, caches.indexer)?;
        schema::migrate_index(&mut index)?;
        // As for the log, the checkpointer thread (below) copies the WAL back, not the
        // indexer in the middle of a batch.
        index
            .execute_batch("PRAGMA wal_autocheckpoint = 0;")
            .map_err(backend)?;
        let signal = Arc::new(indexer::Signal::new(options.background_indexing));
        let (sender, receiver) = mpsc::sync_channel(WRITE_QUEUE);
        let writer = writer::Writer::new(conn, Arc::clone(&signal));
        let mut threads = vec![std::thread::Builder::new()
            .name("auditlog-sqlite-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|e| StoreError::Backend(e.to_string()))?];
        if options.background_indexing {
            let indexer = indexer::Indexer::new(index, open_log_reader(&path, caches.indexer_log)?);
            let indexer_signal = Arc::clone(&signal);
            threads.push(
                std::thread::Builder::new()
                    .name("auditlog-sqlite-indexer".into())
                    .spawn(move || indexer.run(&indexer_signal))
                    .map_err(|e| StoreError::Backend(e.to_string()))?,
            );
        }

        // One checkpointer serves both files, so neither the writer nor the indexer ever
        // stalls on copying its WAL back.
        let mut files = Vec::new();
        for (file, configure_file) in [
            (
                &path,
                configure as fn(&Connection, i64) -> Result<(), StoreError>,
            ),
            (&index_path, configure_index),
        ] {
            let conn = Connection::open(file).map_err(backend)?;
            configure_file(&conn, caches.checkpointer)?;
            let mut wal = file.clone().into_os_string();
            wal.push("-wal");
            files.push((conn, PathBuf::from(wal)));
        }
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop_flag = stop.clone();
        threads.push(
            std::thread::Builder::new()
                .name("auditlog-sqlite-checkpointer".into())
                .spawn(move || run_checkpointer(&files, &stop_flag))
                .map_err(|e| StoreError::Backend(e.to_string()))?,
        );

        Ok(SqliteStore {
            readers: Arc::new(Readers {
                path: path.clone(),
                index_path: index_path.clone(),
                idle: Mutex::new(Vec::new()),
                slots: Arc::new(tokio::sync::Semaphore::new(MAX_READERS)),
                caches,
            }),
            caches,
            path,
            index_path,
            commands: Mutex::new(Some(sender)),
            threads: Mutex::new(threads),
            stop_checkpointer: stop,
            indexer: signal,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Indexes everything stored so far on the calling task's behalf (beside the indexer
    /// thread, if it runs; the two never index the same rows); answers how many events it
    /// indexed.
    pub async fn index_now(&self) -> Result<u64, StoreError> {
        let (path, index_path) = (self.path.clone(), self.index_path.clone());
        let caches = self.caches;
        tokio::task::spawn_blocking(move || {
            let index = Connection::open(&index_path).map_err(backend)?;
            configure_index(&index, caches.indexer)?;
            let mut indexer =
                indexer::Indexer::new(index, open_log_reader(&path, caches.indexer_log)?);
            let mut total = 0u64;
            loop {
                let (n, _) = indexer.index_batch(indexer::MAX_BATCH)?;
                total += n as u64;
                if n < indexer::MAX_BATCH {
                    return Ok(total);
                }
            }
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
    }

    /// Stops the writer after it has committed everything queued, and the indexer after
    /// its current batch, and waits for both.
    pub fn close(&self) {
        self.commands.lock().expect("lock").take();
        self.indexer.stop();
        self.stop_checkpointer
            .store(true, std::sync::atomic::Ordering::Relaxed);
        for thread in self.threads.lock().expect("lock").drain(..) {
            let _ = thread.join();
        }
    }

    async fn write<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Command,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let sender = self
            .commands
            .lock()
            .expect("lock")
            .clone()
            .ok_or(StoreError::Closed)?;
        // A full queue blocks; do that off the async workers.
        let command = make(reply);
        let sent = tokio::task::spawn_blocking(move || sender.send(command).is_ok())
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        if !sent {
            return Err(StoreError::Closed);
        }
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs a write on the writer thread, inside a group commit, and returns its result once
    /// it is durable.
    async fn exec<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let work: writer::Exec = Box::new(move |conn| {
            work(conn).map(|value| Box::new(value) as Box<dyn std::any::Any + Send>)
        });
        let value = self.write(|reply| Command::Exec(work, reply)).await?;
        value
            .downcast::<T>()
            .map(|boxed| *boxed)
            .map_err(|_| StoreError::Backend("writer returned a result of another type".into()))
    }

    /// Runs a read on a pooled reader, in one read transaction.
    async fn read<T: Send + 'static>(
        &self,
        org_id: Uuid,
        empty: T,
        work: impl FnOnce(&Connection, &OrgScope) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.with_reader(move |conn| {
            // The snapshot of index.db must be taken before the log's (see `read`): this
            // statement is the transaction's first.
            conn.prepare_cached("SELECT indexed_upto FROM idx.index_state")
                .and_then(|mut stmt| stmt.query_row([], |row| row.get::<_, i64>(0)))
                .map_err(backend)?;
            match OrgScope::resolve(conn, org_id)? {
                Some(scope) => work(conn, &scope),
                None => Ok(empty),
            }
        })
        .await
    }

    async fn with_reader<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let readers = self.readers.clone();
        // Taken before a thread is: a burst of queries waits here, not as blocking threads
        // each opening a connection (and a page cache) of its own.
        let slot = readers
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let mut conn = readers.take()?;
            // One read transaction: a multi-statement plan sees one consistent snapshot.
            let result = (|| {
                let tx = conn.transaction().map_err(backend)?;
                let result = work(&tx);
                tx.finish().map_err(backend)?;
                result
            })();
            readers.put(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

/// A read-only connection to the log with a page cache of `cache_kib`, for an indexer.
fn open_log_reader(path: &Path, cache_kib: i64) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(backend)?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(backend)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.execute_batch(&format!("PRAGMA cache_size = -{cache_kib};"))
        .map_err(backend)?;
    Ok(conn)
}

/// WAL size beyond which the checkpointer makes the log start over.
const WAL_RESTART_BYTES: u64 = 64 * 1024 * 1024;

fn run_checkpointer(files: &[(Connection, PathBuf)], stop: &std::sync::atomic::AtomicBool) {
    // PASSIVE copies committed frames into the database without blocking anyone. Under
    // constant writes it never catches up completely, so the log would only grow: past
    // WAL_RESTART_BYTES a RESTART checkpoint briefly holds new commits back, copies the last
    // frames, and lets the next commit write the log from its beginning again (and
    // `journal_size_limit` then truncates the file).
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
        for (conn, wal) in files {
            let size = std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0);
            let mode = if size > WAL_RESTART_BYTES {
                "RESTART"
            } else {
                "PASSIVE"
            };
            if let Err(e) =
                conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(()))
            {
                tracing::warn!(error = %e, file = %wal.display(), "WAL checkpoint failed");
            }
        }
    }
    for (conn, _) in files {
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }
}

/// The pool of read connections: at most [`MAX_READERS`] exist, each used by one query at a
/// time (a query holds one of `slots` for as long as it has a connection).
struct Readers {
    path: PathBuf,
    index_path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    slots: Arc<tokio::sync::Semaphore>,
    caches: CacheSizes,
}

impl Readers {
    fn take(&self) -> Result<Connection, StoreError> {
        if let Some(conn) = self.idle.lock().expect("lock").pop() {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(backend)?;
        configure(&conn, self.caches.reader_log)?;
        conn.execute(
            "ATTACH DATABASE ?1 AS idx",
            [self.index_path.to_string_lossy()],
        )
        .map_err(backend)?;
        // `cache_size` is per attached file; without this `idx` would get SQLite's default.
        conn.execute_batch(&format!(
            "PRAGMA idx.cache_size = -{}; PRAGMA query_only = 1;",
            self.caches.reader_index
        ))
        .map_err(backend)?;
        Ok(conn)
    }

    fn put(&self, conn: Connection) {
        // Every connection in use holds a slot, so the idle ones never exceed MAX_READERS.
        self.idle.lock().expect("lock").push(conn);
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_org(&self, org: NewOrg) -> Result<Org, StoreError> {
        self.exec(move |conn| writer::create_org(conn, &org)).await
    }

    async fn set_org_enabled(
        &self,
        org_id: Uuid,
        enabled: bool,
    ) -> Result<Option<Org>, StoreError> {
        self.exec(move |conn| accounts::set_org_enabled(conn, org_id, enabled))
            .await
    }

    async fn find_org(&self, name_or_id: &str) -> Result<Option<Org>, StoreError> {
        let key = name_or_id.to_string();
        self.with_reader(move |conn| {
            let by_id = Uuid::parse_str(&key).ok();
            let sql = format!("SELECT {ORG_COLUMNS} FROM orgs WHERE name = ?1 OR id = ?2");
            conn.query_row(
                &sql,
                rusqlite::params![key, by_id.map(|id| id.as_bytes().to_vec())],
                org_from_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn list_orgs(&self) -> Result<Vec<Org>, StoreError> {
        self.with_reader(|conn| {
            let mut stmt = conn
                .prepare(&format!("SELECT {ORG_COLUMNS} FROM orgs ORDER BY name"))
                .map_err(backend)?;
            let rows = stmt.query_map([], org_from_row).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn append(&self, batch: Vec<Append>) -> Result<Vec<Event>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        match self
            .write(|reply| Command::Append(batch, None, reply))
            .await?
        {
            AppendOutcome::Stored(events) => Ok(events),
            AppendOutcome::Replayed(_) => Err(StoreError::Backend(
                "an append without a key was replayed".into(),
            )),
        }
    }

    async fn restore_org(&self, org: Org) -> Result<Org, StoreError> {
        self.exec(move |conn| writer::restore_org(conn, org)).await
    }

    async fn restore_events(&self, org_id: Uuid, events: Vec<Event>) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        // Through the writer like an append, so that its cached head follows the restore.
        self.write(|reply| Command::Restore(org_id, events, reply))
            .await
    }

    async fn get_event(&self, org_id: Uuid, id: Uuid) -> Result<Option<Event>, StoreError> {
        self.read(org_id, None, move |conn, scope| {
            read::get_event(conn, scope, id)
        })
        .await
    }

    async fn query(&self, org_id: Uuid, query: &Query) -> Result<Vec<Event>, StoreError> {
        let query = query.clone();
        self.read(org_id, Vec::new(), move |conn, scope| {
            read::query(conn, scope, &query)
        })
        .await
    }

    async fn count(&self, org_id: Uuid, filter: &Filter, cap: u64) -> Result<Count, StoreError> {
        let filter = filter.clone();
        self.read(org_id, Count { n: 0, exact: true }, move |conn, scope| {
            read::count(conn, scope, &filter, cap)
        })
        .await
    }

    async fn facets(
        &self,
        org_id: Uuid,
        filter: &Filter,
        max_each: usize,
    ) -> Result<Facets, StoreError> {
        let filter = filter.clone();
        self.read(org_id, Facets::default(), move |conn, scope| {
            read::facets(conn, scope, &filter, max_each)
        })
        .await
    }

    async fn daily_counts(
        &self,
        org_id: Uuid,
        filter: &Filter,
    ) -> Result<Vec<(i64, u64)>, StoreError> {
        let filter = filter.clone();
        self.read(org_id, Vec::new(), move |conn, scope| {
            read::daily_counts(conn, scope, &filter)
        })
        .await
    }

    async fn events_by_seq(
        &self,
        org_id: Uuid,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        self.read(org_id, Vec::new(), move |conn, scope| {
            read::events_by_seq(conn, scope, after_seq, limit)
        })
        .await
    }

    async fn chain_head(&self, org_id: Uuid) -> Result<ChainHead, StoreError> {
        let empty = ChainHead {
            seq: 0,
            hash: auditlog_core::chain::GENESIS,
        };
        self.read(org_id, empty, read::chain_head).await
    }

    async fn save_checkpoint(&self, checkpoint: &SignedCheckpoint) -> Result<(), StoreError> {
        let checkpoint = checkpoint.clone();
        self.exec(move |conn| accounts::save_checkpoint(conn, &checkpoint))
            .await
    }

    async fn latest_checkpoint(
        &self,
        org_id: Uuid,
    ) -> Result<Option<SignedCheckpoint>, StoreError> {
        self.read(org_id, None, read::latest_checkpoint).await
    }

    async fn read_tiles(
        &self,
        org_id: Uuid,
        tiles: &[(u8, u64)],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let tiles = tiles.to_vec();
        let empty = vec![None; tiles.len()];
        self.read(org_id, empty, move |conn, scope| {
            tree::read_tiles(conn, scope.org_key(), &tiles)
        })
        .await
    }

    async fn save_tree_checkpoint(
        &self,
        org_id: Uuid,
        size: u64,
        note: &str,
    ) -> Result<(), StoreError> {
        let note = note.to_string();
        self.exec(move |conn| {
            let org_key = writer::org_key(conn, org_id)?.ok_or(StoreError::UnknownOrg(org_id))?;
            tree::save_checkpoint(conn, org_key, size, &note)
        })
        .await
    }

    async fn latest_tree_checkpoint(
        &self,
        org_id: Uuid,
    ) -> Result<Option<(u64, String)>, StoreError> {
        self.read(org_id, None, |conn, scope| {
            tree::latest_checkpoint(conn, scope.org_key())
        })
        .await
    }

    async fn disk_bytes(&self) -> Result<u64, StoreError> {
        let size = |path: &Path, suffix: &str| {
            let mut name = path.to_path_buf().into_os_string();
            name.push(suffix);
            std::fs::metadata(name).map(|m| m.len()).unwrap_or(0)
        };
        Ok([&self.path, &self.index_path]
            .iter()
            .map(|path| size(path, "") + size(path, "-wal"))
            .sum())
    }

    async fn index_lag(&self) -> Result<IndexLag, StoreError> {
        self.with_reader(|conn| {
            let upto: i64 = conn
                .query_row("SELECT indexed_upto FROM idx.index_state", [], |row| {
                    row.get(0)
                })
                .map_err(backend)?;
            let last: Option<i64> = conn
                .query_row("SELECT max(lsn) FROM log", [], |row| row.get(0))
                .map_err(backend)?;
            let oldest: Option<i64> = conn
                .query_row(
                    "SELECT created_at FROM log WHERE lsn > ?1 ORDER BY lsn LIMIT 1",
                    [upto],
                    |row| row.get(0),
                )
                .optional()
                .map_err(backend)?;
            Ok(IndexLag {
                events: last.map_or(0, |last| (last - upto).max(0) as u64),
                oldest: oldest.and_then(Timestamp::from_millis),
            })
        })
        .await
    }

    async fn rebuild_derived(&self) -> Result<(), StoreError> {
        let index_path = self.index_path.clone();
        let cache_kib = self.caches.checkpointer;
        tokio::task::spawn_blocking(move || {
            let mut index = Connection::open(&index_path).map_err(backend)?;
            configure_index(&index, cache_kib)?;
            let tx = index
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(backend)?;
            tx.execute_batch(schema::INDEX_RESET).map_err(backend)?;
            tx.commit().map_err(backend)
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))??;
        // Wake the indexer: it sees the reset and starts over from the beginning of the log.
        // Ingest goes on meanwhile: what the indexer redoes does not hold the writer back.
        self.indexer.rebuilding();
        self.indexer.committed(0);
        Ok(())
    }

    async fn wait_indexed(&self) -> Result<(), StoreError> {
        let target: i64 = self
            .with_reader(|conn| {
                conn.query_row("SELECT coalesce(max(lsn), 0) FROM log", [], |row| {
                    row.get(0)
                })
                .map_err(backend)
            })
            .await?;
        if !self.indexer.background() {
            self.index_now().await?;
        }
        loop {
            let upto: i64 = self
                .with_reader(|conn| {
                    conn.query_row("SELECT indexed_upto FROM idx.index_state", [], |row| {
                        row.get(0)
                    })
                    .map_err(backend)
                })
                .await?;
            if upto >= target {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn close(&self) {
        SqliteStore::close(self);
    }

    async fn apply(
        &self,
        changes: Vec<Change>,
        record: Option<Recorder>,
    ) -> Result<Applied, StoreError> {
        let applied = self
            .write(|reply| Command::Apply(changes, record, reply))
            .await?;
        let erased = applied
            .changed
            .iter()
            .any(|changed| matches!(changed, Changed::Erased(e) if e.events > 0));
        if erased {
            self.forget_erased().await?;
        }
        Ok(applied)
    }

    async fn find_user(&self, email_or_id: &str) -> Result<Option<User>, StoreError> {
        let key = email_or_id.to_string();
        self.with_reader(move |conn| accounts::find_user(conn, &key))
            .await
    }

    async fn set_password(
        &self,
        user_id: Uuid,
        password_hash: Option<String>,
    ) -> Result<(), StoreError> {
        self.exec(move |conn| accounts::set_password(conn, user_id, password_hash))
            .await
    }

    async fn role_of(&self, org_id: Uuid, user_id: Uuid) -> Result<Option<Role>, StoreError> {
        self.with_reader(move |conn| accounts::role_of(conn, org_id, user_id))
            .await
    }

    async fn memberships(&self, user_id: Uuid) -> Result<Vec<(Org, Role)>, StoreError> {
        self.with_reader(move |conn| accounts::memberships(conn, user_id))
            .await
    }

    async fn members(&self, org_id: Uuid) -> Result<Vec<(User, Role)>, StoreError> {
        self.with_reader(move |conn| accounts::members(conn, org_id))
            .await
    }

    async fn service_account_by_client_id(
        &self,
        client_id: &str,
    ) -> Result<Option<ServiceAccount>, StoreError> {
        let client_id = client_id.to_string();
        self.with_reader(move |conn| accounts::service_account_by_client_id(conn, &client_id))
            .await
    }

    async fn service_accounts(&self, org_id: Uuid) -> Result<Vec<ServiceAccount>, StoreError> {
        self.with_reader(move |conn| accounts::service_accounts(conn, org_id))
            .await
    }

    async fn credential_by_hash(
        &self,
        token_hash: [u8; 32],
    ) -> Result<Option<Credential>, StoreError> {
        self.with_reader(move |conn| accounts::credential_by_hash(conn, token_hash))
            .await
    }

    async fn credentials(
        &self,
        kind: CredentialKind,
        user_id: Option<Uuid>,
        org_id: Option<Uuid>,
    ) -> Result<Vec<Credential>, StoreError> {
        self.with_reader(move |conn| accounts::credentials(conn, kind, user_id, org_id))
            .await
    }

    async fn purge_expired_credentials(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.exec(move |conn| accounts::purge_expired_credentials(conn, before))
            .await
    }

    async fn append_idempotent(
        &self,
        batch: Vec<Append>,
        key: IdempotencyKey,
    ) -> Result<AppendOutcome, StoreError> {
        self.write(|reply| Command::Append(batch, Some(key), reply))
            .await
    }

    async fn get_job(&self, org_id: Uuid, id: Uuid) -> Result<Option<ExportJob>, StoreError> {
        self.with_reader(move |conn| accounts::get_job(conn, org_id, id))
            .await
    }

    async fn update_job(&self, job: &ExportJob) -> Result<(), StoreError> {
        let job = job.clone();
        self.exec(move |conn| accounts::put_job(conn, &job)).await
    }

    async fn claim_job(
        &self,
        runner: &str,
        now: Timestamp,
        stale_before: Timestamp,
    ) -> Result<Option<ExportJob>, StoreError> {
        let runner = runner.to_string();
        self.exec(move |conn| accounts::claim_job(conn, &runner, now, stale_before))
            .await
    }

    async fn expired_jobs(&self, now: Timestamp) -> Result<Vec<ExportJob>, StoreError> {
        self.with_reader(move |conn| accounts::expired_jobs(conn, now))
            .await
    }

    async fn legal_holds(&self, org_id: Uuid) -> Result<Vec<LegalHold>, StoreError> {
        self.with_reader(move |conn| accounts::legal_holds(conn, org_id))
            .await
    }

    async fn retention(&self, org_id: Uuid) -> Result<Retention, StoreError> {
        self.with_reader(move |conn| {
            retention::retention(conn, org_id)?.ok_or(StoreError::UnknownOrg(org_id))
        })
        .await
    }

    async fn purge(
        &self,
        org_id: Uuid,
        before: Timestamp,
        max_events: u32,
    ) -> Result<PurgeBatch, StoreError> {
        let holds = self.legal_holds(org_id).await?;
        // With the indexer running, only what it covered: an event it indexed after its
        // range left the index would stay in it.
        let indexed_only = self.indexer.background();
        let candidates = self
            .with_reader(move |conn| {
                retention::candidates(conn, org_id, before, max_events, &holds, indexed_only)
            })
            .await?
            .ok_or(StoreError::UnknownOrg(org_id))?;
        if candidates.events.is_empty() {
            let purged = self.retention(org_id).await?.purged;
            return Ok(PurgeBatch { events: 0, purged });
        }
        let candidates = Arc::new(candidates);
        let (index_path, cache_kib) = (self.index_path.clone(), self.caches.checkpointer);
        let forgotten = candidates.clone();
        tokio::task::spawn_blocking(move || {
            let mut index = Connection::open(&index_path).map_err(backend)?;
            configure_index(&index, cache_kib)?;
            retention::forget_derived(&mut index, &forgotten)
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))??;
        let deleted = candidates.clone();
        match self
            .exec(move |conn| retention::delete_purged(conn, org_id, &deleted, before))
            .await
        {
            Ok(batch) => Ok(batch),
            Err(error) => {
                // The index no longer holds events the log still does: build it again.
                self.rebuild_derived().await?;
                Err(error)
            }
        }
    }
}

/// How long an erasure keeps trying to truncate a WAL that readers hold.
const ERASURE_CHECKPOINT_DEADLINE: Duration = Duration::from_secs(30);

impl SqliteStore {
    /// After an erasure: rebuilds the derived state, whose dictionaries and search postings
    /// held the erased values, and truncates both WAL files, whose old page images held them
    /// (`secure_delete` already zeroed what the erasure and the reset freed in the files).
    /// Reads stay correct while the indexer rebuilds (docs/storage.md).
    async fn forget_erased(&self) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        self.rebuild_derived().await?;
        tracing::debug!(
            reset_ms = started.elapsed().as_millis() as u64,
            "derived state reset after an erasure"
        );
        let paths = [self.path.clone(), self.index_path.clone()];
        tokio::task::spawn_blocking(move || {
            for path in paths {
                let conn = Connection::open(&path).map_err(backend)?;
                conn.busy_timeout(Duration::from_secs(1)).map_err(backend)?;
                // Readers on older snapshots hold the WAL; TRUNCATE waits for them (the busy
                // timeout) and reports whether it got through. Past the deadline the old
                // frames stay until the WAL is next reset, which the log says.
                let deadline = std::time::Instant::now() + ERASURE_CHECKPOINT_DEADLINE;
                loop {
                    let busy: i64 = conn
                        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))
                        .map_err(backend)?;
                    if busy == 0 {
                        break;
                    }
                    if std::time::Instant::now() > deadline {
                        tracing::warn!(file = %path.display(), "after an erasure the WAL could not be truncated: readers kept it busy; erased values stay in its old frames until it is reset");
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_caches_scale_to_the_budget_they_are_given() {
        assert_eq!(CacheSizes::within(PAGE_CACHE_BUDGET), CacheSizes::DEFAULT);
        for mib in [16u64, 64, 100, 1024] {
            let budget = mib << 20;
            let total = CacheSizes::within(budget).total_bytes();
            // Each share is rounded down, and raised to its minimum where smaller (the two
            // checkpointer caches, at 16 MiB): the total stays close to the budget.
            let slack = (2 * CacheSizes::MIN_KIB as u64) << 10;
            assert!(
                total <= budget + slack && total + slack > budget,
                "{mib} MiB: {total}"
            );
        }
        // Below every cache's minimum, the minimums.
        let tiny = CacheSizes::within(1);
        assert_eq!(tiny.writer, CacheSizes::MIN_KIB);
        assert_eq!(tiny.checkpointer, CacheSizes::MIN_KIB);
    }
}
