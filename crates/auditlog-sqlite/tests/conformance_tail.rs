//! Runs the store conformance suite against the SQLite backend with no indexer running, so
//! that every read is answered from the unindexed tail of the log: the tail must keep the
//! whole Store contract on its own, exactly as the index does.

use std::sync::Arc;

use auditlog_sqlite::{SqliteOptions, SqliteStore};
use auditlog_store::Store;

auditlog_conformance::conformance_tests!(async {
    let dir = tempfile::tempdir().expect("temporary directory");
    let options = SqliteOptions {
        background_indexing: false,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(dir.path(), options).expect("open store");
    (Arc::new(store) as Arc<dyn Store>, dir)
});
