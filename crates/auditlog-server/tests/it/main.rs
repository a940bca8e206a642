//! End-to-end tests of the HTTP service: each test starts a real server on a port-0 listener
//! over its own store and talks to it through the test kit's HTTP/1.1 client, so what is tested is
//! what a client on the network sees (status, headers, bytes), and what the store holds
//! afterwards.
//!
//! Every test runs on both backends, as `<test>_sqlite` and `<test>_postgres` (see
//! [`on_each_backend`]): SQLite in a temporary directory, PostgreSQL in a fresh schema of the
//! database `AUDITLOG_TEST_DATABASE_URL` names (`postgres`). Without that variable the
//! PostgreSQL variants say they were skipped and pass, except under `CI=true`, where they fail.
//!
//! - `flow`: ingest, every list filter, paging, one event, facets, the catalog, the public
//!   key, checkpoints, service-account tokens and exports in every format.
//! - `authz`: the authorization matrix of every endpoint against every kind of credential,
//!   and tenancy across organizations.
//! - `bad_input`: every kind of bad request is refused with a named field and changes nothing.
//! - `compliance`: legal holds and erasure: who may, bad requests, a hold blocking an
//!   erasure, and an erased person leaving no trace in the files while every proof verifies.
//! - `client_address`: the client address recorded and rate-limited, behind trusted proxies
//!   and without.
//! - `idempotency`: `Idempotency-Key` replays, conflicts and concurrent retries.
//! - `log`: the transparency log's endpoints as a tlog client uses them, and who may.
//! - `interop`: the log's endpoints checked by Go's `sumdb/note` and `sumdb/tlog` (SQLite only).
//! - `page`: the web page over HTTP: who may open what, filters and exports, own tokens.
//! - `rate_limit`: the per-credential token bucket answers 429 with `Retry-After`.
//! - `retention`: retention settings, and a purge under concurrent ingest that keeps every
//!   proof, stopped by a legal hold.
//! - `rejections`: events refused by validation, counted per organization and action.
//! - `concurrency`: many concurrent ingest clients on one chain.
//! - `extensions`: impersonators, changes, outcomes and backfills, and the refused and failed
//!   attempts the service records.
//! - `redaction`: values the deployment's rules redact reach no answer, export or database
//!   file, and the chain with them verifies.
//! - `faults`: a full disk under the store or the exports, PostgreSQL restarting mid-ingest.
//! - `shutdown`: graceful shutdown loses no acknowledged event.
//! - `soak`: every kind of request at once for a while: no errors, no leaks, bounded WAL.
//! - `ops`: metrics (ingest, size, index lag) and readiness.
//! - `postgres`: the test database and its per-server schemas.
//! - `viewer_links`: one-time sign-in links minted with an ingest key.
//!
//! The helpers below are the only code that starts servers or sends requests (through
//! `auditlog_testkit::http`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use auditlog_core::Timestamp;
use auditlog_server::{AppState, ServerConfig};
use auditlog_service::access::Actor;
use auditlog_service::grant::{Operator, ReadableOrg};
use auditlog_service::{IngestError, Service};
use auditlog_sqlite::{SqliteOptions, SqliteStore};
use auditlog_store::{Credential, NewOrg, Org, Role, Store};
use auditlog_testkit::http::{self, Request};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Runs each test function (an `async fn(Backend)`) on SQLite as the first name given and
/// on PostgreSQL as the second; the PostgreSQL one skips (or, under `CI=true`, fails) when
/// no test database is configured.
macro_rules! on_each_backend {
    ($($test:ident => $sqlite:ident, $postgres:ident;)+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $sqlite() {
                $test($crate::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $postgres() {
                if !$crate::postgres::available() {
                    return;
                }
                $test($crate::Backend::Postgres).await;
            }
        )+
    };
}

mod authz;
mod bad_input;
mod client_address;
mod compliance;
mod concurrency;
mod extensions;
mod faults;
mod flow;
mod idempotency;
mod interop;
mod log;
mod ops;
mod page;
mod postgres;
mod rate_limit;
mod redaction;
mod rejections;
mod retention;
mod shutdown;
mod soak;
mod viewer_links;

/// How long any single request may take before the test fails instead of hanging.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The store backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite store in the server's data directory.
    Sqlite,
    /// A PostgreSQL store in a fresh schema of the test database.
    Postgres,
}

/// Where a server's events live, kept to reopen them.
enum Storage {
    Sqlite(Arc<SqliteStore>),
    /// Dropping it drops the schema.
    Postgres(postgres::TestSchema),
    /// A store the test made and owns (on a server of its own).
    Given,
}

/// The server's service, and the store under it, which the service keeps to itself: tests
/// reach it directly to set up what no endpoint does (enrolling an organization) and to look
/// at what was stored.
#[derive(Clone)]
pub struct TestService {
    service: Service,
    store: Arc<dyn Store>,
}

impl TestService {
    /// The store the server's service runs on.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// `org` as the operator holds it: what the service's administrative calls take.
    pub async fn granted(&self, org: &Org) -> ReadableOrg {
        self.service
            .operator_org(&Operator::at_the_command_line(), &org.id.to_string())
            .await
            .expect("look the organization up")
            .expect("the organization exists")
    }

    /// Revokes a token of `org` as the operator's `token revoke` does.
    pub async fn revoke_api_token(
        &self,
        org: &Org,
        token_id: uuid::Uuid,
        actor: &Actor,
    ) -> Result<Option<Credential>, IngestError> {
        self.service
            .revoke_api_token(&self.granted(org).await, token_id, actor)
            .await
    }
}

impl std::ops::Deref for TestService {
    type Target = Service;

    fn deref(&self) -> &Service {
        &self.service
    }
}

/// A running server over its own data directory and store. Dropping it shuts the server down
/// (the shutdown future resolves when its sender is dropped), then drops its PostgreSQL schema.
pub struct Server {
    /// The data directory: the signing key, the export files, and the SQLite file.
    pub dir: tempfile::TempDir,
    /// The same service the server uses, and the store under it.
    pub service: TestService,
    /// Where the server listens.
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    // Last, so that the server is told to stop before its schema goes.
    storage: Storage,
}

impl Server {
    /// A server with the default configuration.
    pub async fn start(backend: Backend) -> Server {
        Server::start_with(backend, |_| {}).await
    }

    /// A server whose configuration `configure` adjusts first.
    pub async fn start_with(backend: Backend, configure: impl FnOnce(&mut ServerConfig)) -> Server {
        let dir = tempfile::tempdir().expect("temporary directory");
        Server::start_in(backend, dir, configure).await
    }

    /// A server whose service `compose` adjusts first (redaction rules, say).
    pub async fn start_composed(
        backend: Backend,
        compose: impl FnOnce(Service) -> Service,
    ) -> Server {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (storage, store) = Server::open_storage(backend, &dir).await;
        Server::serve_composed(dir, storage, store, compose, |_| {}).await
    }

    /// A server over a store the test made, with a data directory of its own.
    pub async fn start_on(
        store: Arc<dyn Store>,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> Server {
        let dir = tempfile::tempdir().expect("temporary directory");
        Server::serve(dir, Storage::Given, store, configure).await
    }

    /// A server over a SQLite store opened with `options`.
    pub async fn start_sqlite_with(
        options: SqliteOptions,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> Server {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Arc::new(SqliteStore::open_with(dir.path(), options).expect("open the store"));
        Server::serve(dir, Storage::Sqlite(store.clone()), store, configure).await
    }

    /// A server whose data directory (the SQLite store, the key, the exports) is `dir`.
    pub async fn start_in(
        backend: Backend,
        dir: tempfile::TempDir,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> Server {
        let (storage, store) = Server::open_storage(backend, &dir).await;
        Server::serve(dir, storage, store, configure).await
    }

    /// A fresh store of `backend`: SQLite in `dir`, PostgreSQL in a new schema.
    async fn open_storage(backend: Backend, dir: &tempfile::TempDir) -> (Storage, Arc<dyn Store>) {
        match backend {
            Backend::Sqlite => {
                let store = Arc::new(SqliteStore::open(dir.path()).expect("open the store"));
                (Storage::Sqlite(store.clone()), store)
            }
            Backend::Postgres => {
                let schema = postgres::create_schema().await;
                let store = Arc::new(postgres::connect(&schema).await);
                (Storage::Postgres(schema), store)
            }
        }
    }

    async fn serve(
        dir: tempfile::TempDir,
        storage: Storage,
        store: Arc<dyn Store>,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> Server {
        Server::serve_composed(dir, storage, store, |service| service, configure).await
    }

    async fn serve_composed(
        dir: tempfile::TempDir,
        storage: Storage,
        store: Arc<dyn Store>,
        compose: impl FnOnce(Service) -> Service,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> Server {
        let key = auditlog_service::keys::load_or_create(dir.path()).expect("signing key");
        let service = TestService {
            service: compose(Service::new(
                store.clone(),
                auditlog_core::Catalog::builtin(),
                key,
            )),
            store,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let mut config = ServerConfig::new(dir.path().join("exports"), format!("http://{addr}"));
        configure(&mut config);
        let state = AppState::new(service.service.clone(), config);
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(auditlog_server::serve(state, listener, async move {
            let _ = stop.await;
        }));
        Server {
            dir,
            service,
            addr,
            shutdown: Some(shutdown),
            task: Some(task),
            storage,
        }
    }

    /// Opens the server's store again, as the next start would after a stop: SQLite closes
    /// the store first and reopens the file; PostgreSQL connects anew to the same schema.
    pub async fn reopen_store(&self) -> Arc<dyn Store> {
        match &self.storage {
            Storage::Sqlite(store) => {
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.close())
                    .await
                    .expect("close the store");
                Arc::new(SqliteStore::open(self.dir.path()).expect("reopen the store"))
            }
            Storage::Postgres(schema) => Arc::new(postgres::connect(schema).await),
            Storage::Given => panic!("a test that gives the store reopens it itself"),
        }
    }

    /// Asks for a graceful shutdown without waiting for it.
    pub fn trigger_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Waits for `serve` to return after [`Server::trigger_shutdown`], and returns its result.
    pub async fn wait_stopped(&mut self) -> std::io::Result<()> {
        let task = self.task.take().expect("the server was already stopped");
        tokio::time::timeout(REQUEST_TIMEOUT, task)
            .await
            .expect("the server did not stop within the timeout")
            .expect("the server task panicked")
    }

    /// Creates an organization, enrolled or not.
    pub async fn org(&self, name: &str, enabled: bool) -> Org {
        self.service
            .store()
            .create_org(NewOrg {
                name: name.to_string(),
                display_name: format!("{name} Inc."),
                audit_logs_enabled: enabled,
            })
            .await
            .expect("create organization")
    }

    /// Adds a user with `role` to `org` and returns a personal API token of theirs.
    pub async fn user_token(&self, org: &Org, email: &str, role: Role) -> String {
        self.user_token_expiring(org, email, role, None).await
    }

    /// Like [`Server::user_token`], with an expiry.
    pub async fn user_token_expiring(
        &self,
        org: &Org,
        email: &str,
        role: Role,
        expires_at: Option<Timestamp>,
    ) -> String {
        let user = self
            .service
            .add_user(org, email, None, role, &Actor::operator())
            .await
            .expect("add user");
        let (_, token) = self
            .service
            .create_api_token(org, &user, "t", expires_at, &Actor::operator())
            .await
            .expect("create API token");
        token
    }

    /// A token of a new administrator of `org`.
    pub async fn admin(&self, org: &Org, email: &str) -> String {
        self.user_token(org, email, Role::Admin).await
    }

    /// An ingest key: for one organization, or platform-wide.
    pub async fn ingest_key(&self, org: Option<&Org>) -> String {
        let (_, token) = self
            .service
            .create_ingest_key(org, "i")
            .await
            .expect("create ingest key");
        token
    }

    /// A new service account of `org`: its client id and secret.
    pub async fn service_account(&self, org: &Org, name: &str) -> (String, String) {
        let (account, secret) = self
            .service
            .create_service_account(&self.service.granted(org).await, name, &Actor::operator())
            .await
            .expect("create service account");
        (account.client_id, secret)
    }

    /// An access token of a new service account of `org` (traded in the service layer; the
    /// HTTP exchange is tested in `flow`).
    pub async fn service_account_token(&self, org: &Org, name: &str) -> String {
        let (client_id, secret) = self.service_account(org, name).await;
        let (token, _) = self
            .service
            .exchange_client_credentials(&client_id, &secret, Actor::operator())
            .await
            .expect("exchange client credentials");
        token
    }

    /// The organization's chain head seq: how many events it holds.
    pub async fn head(&self, org: &Org) -> u64 {
        self.service
            .store()
            .chain_head(org.id)
            .await
            .expect("chain head")
            .seq
    }

    /// A request to this server.
    pub fn call(&self, method: &'static str, path: &str) -> Call {
        Call::new(self.addr, method, path)
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Call {
        self.call("GET", path)
    }

    /// `POST path`.
    pub fn post(&self, path: &str) -> Call {
        self.call("POST", path)
    }
}

/// A query string from pairs, percent-encoded.
pub fn query(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// A response, as the test kit's client reads it (status, lowercased headers, body).
pub use auditlog_testkit::http::Response as Reply;

/// One request to a test server, sent on its own connection by the test kit's client.
#[derive(Debug, Clone)]
pub struct Call {
    addr: SocketAddr,
    request: Request,
}

impl Call {
    fn new(addr: SocketAddr, method: &'static str, path: &str) -> Call {
        let request = Request::new(method, path)
            .header("User-Agent", "auditlog-it")
            .timeout(REQUEST_TIMEOUT);
        Call { addr, request }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Call {
        self.request = self.request.header(name, value);
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Call {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    /// `X-Org-Name`.
    pub fn org(self, name: &str) -> Call {
        self.header("X-Org-Name", name)
    }

    /// A JSON body.
    pub fn json(mut self, value: &Value) -> Call {
        self.request = self.request.json(value);
        self
    }

    /// A body of any type.
    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Call {
        self.request = self.request.body(content_type, body);
        self
    }

    /// Sends the body with `Transfer-Encoding: chunked` instead of a `Content-Length`.
    pub fn chunked(mut self) -> Call {
        self.request = self.request.chunked();
        self
    }

    /// Sends the request; panics (naming it) when the exchange fails at the transport level.
    pub async fn send(self) -> Reply {
        let what = format!("{} {}", self.request.method(), self.request.path());
        self.try_send()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    /// Sends the request; transport failures (connection refused, reset, timeout) are errors.
    pub async fn try_send(self) -> std::io::Result<Reply> {
        http::send(self.addr, &self.request).await
    }
}

/// Requests an export of `org` (the API's request body `request`) and waits for it to
/// complete: answers the job's id.
pub async fn export_completed(server: &Server, token: &str, org: &str, request: Value) -> String {
    let created = server
        .post("/api/audit-logs/export")
        .bearer(token)
        .org(org)
        .json(&request)
        .send()
        .await
        .expect(200)
        .json();
    let job = created["id"].as_str().expect("job id").to_string();
    wait_for_export(server, token, org, &job).await;
    job
}

/// Polls an export job until it is completed (or failed, which panics), and returns its
/// last status.
pub async fn wait_for_export(server: &Server, token: &str, org: &str, job_id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let status = server
            .get(&format!("/api/audit-logs/export/{job_id}"))
            .bearer(token)
            .org(org)
            .send()
            .await
            .expect(200)
            .json();
        let progress = status["progress"].as_u64().expect("progress is a number");
        assert!(progress <= 100, "progress out of range: {status}");
        match status["status"].as_str() {
            Some("completed") => return status,
            Some("pending" | "running") => {
                assert!(
                    status["download_url"].is_null(),
                    "an unfinished job has a download URL: {status}"
                );
            }
            _ => panic!("the export did not complete: {status}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the export did not complete in time: {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
