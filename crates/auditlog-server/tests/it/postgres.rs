//! The PostgreSQL side of the tests: the database comes from `AUDITLOG_TEST_DATABASE_URL`
//! (`postgres://auditlog:auditlog@127.0.0.1:5432/auditlog_test`), and each server gets a
//! schema of its own there, dropped when the server is (`auditlog_testkit::postgres`).

use auditlog_postgres::PostgresStore;
use auditlog_testkit::postgres::{Isolation, TestDatabase};

/// A schema of one server's own.
pub type TestSchema = TestDatabase;

/// Whether the PostgreSQL variant can run; false after saying it is skipped. Under
/// `CI=true` PostgreSQL is required: no database panics.
pub fn available() -> bool {
    auditlog_testkit::available(auditlog_testkit::postgres::database_url()).is_some()
}

/// Creates a fresh schema for one server.
pub async fn create_schema() -> TestSchema {
    TestDatabase::create("auditlog_it", Isolation::Schema)
        .await
        .expect("the PostgreSQL tests need a database")
}

/// A store on the schema; connecting again reopens the same data.
pub async fn connect(schema: &TestSchema) -> PostgresStore {
    PostgresStore::connect(&schema.url())
        .await
        .expect("connect to the test schema")
}
