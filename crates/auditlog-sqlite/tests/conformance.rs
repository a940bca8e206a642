//! Runs the store conformance suite against the SQLite backend.

use std::sync::Arc;

use auditlog_sqlite::SqliteStore;
use auditlog_store::Store;

auditlog_conformance::conformance_tests!(async {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(dir.path()).expect("open store");
    (Arc::new(store) as Arc<dyn Store>, dir)
});
