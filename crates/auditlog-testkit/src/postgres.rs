//! PostgreSQL for tests: the test server comes from `AUDITLOG_TEST_DATABASE_URL`
//! (`postgres://auditlog:auditlog@127.0.0.1:5432/auditlog_test`), and each test gets a
//! [`TestDatabase`] of its own there (a schema, or a whole database), dropped when the test
//! ends, whether it passed or not. Without the variable there is no database:
//! [`database_url`] answers [`Unavailable`], which skips the test (fails it under `CI=true`).
//!
//! This module knows no auditlog backend: it hands out URLs, which the test passes to
//! `PostgresStore::connect` or to the binary.

use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;
use uuid::Uuid;

use crate::Unavailable;

/// The environment variable naming the test server.
pub const URL_VARIABLE: &str = "AUDITLOG_TEST_DATABASE_URL";

/// What [`URL_VARIABLE`] usually holds (what `.ci/run` sets up).
pub const EXAMPLE_URL: &str = "postgres://auditlog:auditlog@127.0.0.1:5432/auditlog_test";

/// The test server's URL, or why there is none.
pub fn database_url() -> Result<String, Unavailable> {
    match std::env::var(URL_VARIABLE) {
        Ok(url) if !url.trim().is_empty() => Ok(url),
        _ => Err(Unavailable::new(format!(
            "{URL_VARIABLE} is not set (PostgreSQL tests need it, e.g. {EXAMPLE_URL})"
        ))),
    }
}

/// Where a test's tables live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// A schema of its own in the configured database, alone on the search path.
    Schema,
    /// A database of its own on the configured server; for tests that run the binary,
    /// which may leave sessions behind when it is killed.
    Database,
}

/// A schema or database of one test, dropped when this value is.
#[derive(Debug)]
pub struct TestDatabase {
    /// The configured URL, used for creating and dropping.
    admin_url: String,
    /// `<prefix>_<random>`.
    name: String,
    isolation: Isolation,
}

impl TestDatabase {
    /// Creates `<prefix>_<random>` on the test server. [`Isolation::Database`] falls back to
    /// a schema when the role may not create databases, so such a role still gets a clean
    /// slate. Panics when the server is configured but refuses.
    pub async fn create(prefix: &str, isolation: Isolation) -> Result<TestDatabase, Unavailable> {
        let admin_url = database_url()?;
        let name = format!("{prefix}_{}", Uuid::new_v4().simple());
        let client = connect(&admin_url).await;
        let isolation = match isolation {
            Isolation::Schema => {
                client
                    .batch_execute(&format!("CREATE SCHEMA {name}"))
                    .await
                    .unwrap_or_else(|e| panic!("cannot create the test schema {name}: {e}"));
                Isolation::Schema
            }
            Isolation::Database => {
                match client
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .await
                {
                    Ok(()) => Isolation::Database,
                    Err(e) if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => {
                        client
                            .batch_execute(&format!("CREATE SCHEMA {name}"))
                            .await
                            .unwrap_or_else(|e| {
                                panic!("cannot create a test database or schema: {e}")
                            });
                        Isolation::Schema
                    }
                    Err(e) => panic!("cannot create the test database {name}: {e}"),
                }
            }
        };
        Ok(TestDatabase {
            admin_url,
            name,
            isolation,
        })
    }

    /// [`TestDatabase::create`] for tests without a runtime (those that drive processes).
    pub fn create_blocking(
        prefix: &str,
        isolation: Isolation,
    ) -> Result<TestDatabase, Unavailable> {
        let prefix = prefix.to_string();
        on_own_runtime(move || async move { TestDatabase::create(&prefix, isolation).await })
    }

    /// `<prefix>_<random>`: the schema's or database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What was created (a schema when a database was asked for but not allowed).
    pub fn isolation(&self) -> Isolation {
        self.isolation
    }

    /// The URL that reaches this test's tables: the configured one with this schema alone on
    /// the search path, or naming this database.
    pub fn url(&self) -> String {
        let (url, name) = (&self.admin_url, &self.name);
        let keyword_form = !(url.starts_with("postgres://") || url.starts_with("postgresql://"));
        match (self.isolation, keyword_form) {
            (Isolation::Schema, false) => {
                let separator = if url.contains('?') { '&' } else { '?' };
                format!("{url}{separator}options=-c%20search_path%3D{name}")
            }
            (Isolation::Schema, true) => format!("{url} options='-c search_path={name}'"),
            (Isolation::Database, false) => {
                let (base, query) = match url.split_once('?') {
                    Some((base, query)) => (base, Some(query)),
                    None => (url.as_str(), None),
                };
                let authority = base.find("://").map_or(0, |at| at + 3);
                let root = match base[authority..].find('/') {
                    Some(slash) => &base[..authority + slash],
                    None => base,
                };
                match query {
                    Some(query) => format!("{root}/{name}?{query}"),
                    None => format!("{root}/{name}"),
                }
            }
            // In the keyword form a later key wins.
            (Isolation::Database, true) => format!("{url} dbname={name}"),
        }
    }

    /// A plain connection to this test's tables, to look behind a store's back.
    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.url()).await
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let statement = match self.isolation {
            Isolation::Schema => format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name),
            // FORCE ends the sessions a killed process may have left behind.
            Isolation::Database => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        };
        let url = self.admin_url.clone();
        let outcome = on_own_runtime(move || async move {
            let (client, connection) = tokio_postgres::connect(&url, NoTls).await?;
            let driver = tokio::spawn(connection);
            let result = client.batch_execute(&statement).await;
            drop(client);
            let _ = driver.await;
            result
        });
        if let Err(e) = outcome {
            eprintln!("could not drop the test database {}: {e}", self.name);
        }
    }
}

/// A connection to `url`, its driver spawned on the current runtime. Panics, naming
/// [`URL_VARIABLE`], when the server does not answer: a configured server is required.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {URL_VARIABLE}: {e}"));
    tokio::spawn(connection);
    client
}

/// Runs a future to completion on a thread and runtime of its own. `Drop` and synchronous
/// tests need this: a runtime cannot be blocked on from inside another one.
fn on_own_runtime<F, Fut, T>(make: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
    T: Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the test database")
            .block_on(make())
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}
