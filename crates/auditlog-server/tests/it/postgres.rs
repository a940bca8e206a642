//! The PostgreSQL side of the tests: the database comes from `AUDITLOG_TEST_DATABASE_URL`
//! (`postgres://auditlog:auditlog@127.0.0.1:5432/auditlog_test`), and each server gets a
//! schema of its own there, dropped when the server is, as in `auditlog-postgres`'s
//! conformance tests (this is a copy of their helper).

use auditlog_postgres::PostgresStore;
use tokio_postgres::NoTls;
use uuid::Uuid;

const URL_VARIABLE: &str = "AUDITLOG_TEST_DATABASE_URL";

/// The test database's URL; `None`, after saying the test is skipped, when none is
/// configured outside CI. Under `CI=true` PostgreSQL is required: no URL panics.
pub fn database_url() -> Option<String> {
    match std::env::var(URL_VARIABLE) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if std::env::var("CI").is_ok_and(|ci| ci == "true") {
                panic!(
                    "CI requires PostgreSQL: set {URL_VARIABLE}, e.g. \
                     postgres://auditlog:auditlog@127.0.0.1:5432/auditlog_test"
                );
            }
            println!("skipped: {URL_VARIABLE} is not set (PostgreSQL tests need it)");
            None
        }
    }
}

/// A schema of its own for one server, dropped with it, whether the test passed or not.
#[derive(Debug)]
pub struct TestSchema {
    url: String,
    name: String,
}

impl TestSchema {
    /// Creates a fresh schema in the database at `url`.
    pub async fn create(url: String) -> TestSchema {
        let name = format!("auditlog_it_{}", Uuid::new_v4().simple());
        admin(&url)
            .await
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .expect("create the test schema");
        TestSchema { url, name }
    }

    /// The database URL with this schema alone on the search path.
    fn url(&self) -> String {
        let (url, name) = (&self.url, &self.name);
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let separator = if url.contains('?') { '&' } else { '?' };
            format!("{url}{separator}options=-c%20search_path%3D{name}")
        } else {
            format!("{url} options='-c search_path={name}'")
        }
    }

    /// A store on this schema; connecting again reopens the same data.
    pub async fn connect(&self) -> PostgresStore {
        PostgresStore::connect(&self.url())
            .await
            .expect("connect to the test schema")
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Drop runs on the test's runtime, which cannot be blocked on from inside: the schema
        // is dropped from a thread with a runtime of its own.
        let outcome = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                admin(&url)
                    .await
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .await
            })
        })
        .join();
        if !matches!(outcome, Ok(Ok(()))) {
            eprintln!("could not drop the test schema {}: {outcome:?}", self.name);
        }
    }
}

async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {URL_VARIABLE}: {e}"));
    tokio::spawn(connection);
    client
}
