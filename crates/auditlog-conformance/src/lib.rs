//! The conformance suite: behaviour every [`Store`] backend must show. It is the Store
//! contract: a backend is done when [`conformance_tests!`] passes on it.
//!
//! Each case is a public async function that takes a fresh, empty store and panics with a
//! message naming what broke. A backend crate runs every case, one `#[tokio::test]` each,
//! with one macro call in an integration test; the fixture expression yields the store and
//! whatever must live as long as the test (a [`Fixture`]), or says that the backend is not
//! available here, which skips each case with a message (and fails it under `CI=true`):
//!
//! ```text
//! auditlog_conformance::conformance_tests!(async {
//!     let dir = tempfile::tempdir().unwrap();
//!     let store = MyStore::open(dir.path()).await.unwrap();
//!     (std::sync::Arc::new(store) as std::sync::Arc<dyn auditlog_store::Store>, dir)
//! });
//! ```
//!
//! The hand-written cases pin down the documented semantics on small corpora whose expected
//! answers are spelled out. The property cases compare the store with an in-memory reference
//! ([`reference_matches`]) on random corpora from a seeded generator ([`random_body`]), so a
//! failure names its round and replays identically.
//!
//! What the suite deliberately leaves open, because the contract does: how a backend orders
//! facet entries with equal counts, whether `AnyOf` compares case-insensitively (every value
//! the suite asks for is spelled as stored), and what `Text` does with a search that has no
//! words.
//!
//! The files: `events` and `reference` build inputs and expected answers, `support` holds
//! the shared store calls and assertions; the cases are grouped by what they cover (`orgs`,
//! `append`, `reads`, `properties`, `chain`, `restore`, `accounts`, `credentials`,
//! `idempotency`, `jobs`, `recorded`, `erasure`, `retention`).

use std::sync::Arc;

use auditlog_store::Store;
pub use auditlog_testkit::Unavailable;

mod events;
mod reference;
mod support;

mod accounts;
mod append;
mod chain;
mod credentials;
mod erasure;
mod idempotency;
mod jobs;
mod orgs;
mod properties;
mod reads;
mod recorded;
mod restore;
mod retention;
mod tree;

pub use accounts::{
    roles_set_list_and_isolate, service_accounts_lifecycle, users_create_find_password,
};
pub use append::{
    append_assigns_seq_and_chains, append_is_atomic, concurrent_appends_keep_chains,
    disk_bytes_after_appends,
};
pub use chain::{checkpoints_round_trip, events_by_seq_pages};
pub use credentials::{credentials_revoke_liveness_purge, credentials_round_trip_and_filter};
pub use erasure::holds_protect_and_erasure_keeps_the_chain;
pub use events::{body, random_body};
pub use idempotency::{
    idempotent_append_concurrent_same_key, idempotent_append_replays_and_conflicts,
};
pub use jobs::{export_jobs_claim_and_expire, export_jobs_round_trip_and_update};
pub use orgs::orgs_create_find_list_enable;
pub use properties::{
    daily_counts_match_reference, facets_match_reference, property_paging_matches_reference,
};
pub use reads::{
    filters_match_columns_text_and_time, get_event_round_trips_and_is_scoped, order_and_paging,
    reads_are_scoped_to_the_org,
};
pub use recorded::changes_commit_with_their_record;
pub use reference::reference_matches;
pub use restore::restore_keeps_ids_and_chain;
pub use retention::purges_remove_a_prefix_and_keep_the_tree;
pub use tree::{tree_checkpoints_round_trip, tree_tiles_cover_exactly_the_events};

/// Expands to one `#[tokio::test]` per conformance case. `$make` is an async expression
/// (evaluated once per test) yielding a [`Fixture`]: `Arc<dyn Store>` for a fresh empty
/// store, `(Arc<dyn Store>, guard)` to keep a guard alive for the test, or either inside a
/// `Result<_, Unavailable>` when the backend may be missing on this machine.
///
/// The calling crate needs `tokio` with the `macros` and `rt-multi-thread` features.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@cases $make;
            orgs_create_find_list_enable,
            append_assigns_seq_and_chains,
            append_is_atomic,
            get_event_round_trips_and_is_scoped,
            reads_are_scoped_to_the_org,
            filters_match_columns_text_and_time,
            order_and_paging,
            property_paging_matches_reference,
            facets_match_reference,
            daily_counts_match_reference,
            checkpoints_round_trip,
            events_by_seq_pages,
            concurrent_appends_keep_chains,
            disk_bytes_after_appends,
            restore_keeps_ids_and_chain,
            users_create_find_password,
            roles_set_list_and_isolate,
            service_accounts_lifecycle,
            credentials_round_trip_and_filter,
            credentials_revoke_liveness_purge,
            idempotent_append_replays_and_conflicts,
            idempotent_append_concurrent_same_key,
            export_jobs_round_trip_and_update,
            export_jobs_claim_and_expire,
            changes_commit_with_their_record,
            tree_tiles_cover_exactly_the_events,
            tree_checkpoints_round_trip,
            holds_protect_and_erasure_keeps_the_chain,
            purges_remove_a_prefix_and_keep_the_tree,
        );
    };
    (@cases $make:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                // The guard (a temporary directory, a database) lives until the case ends.
                let Some((store, _guard)) = $crate::ready($make.await) else {
                    return;
                };
                $crate::$case(store).await;
            }
        )+
    };
}

/// What a backend's fixture expression may yield: a store, a store with a guard that must
/// outlive the test (a temporary directory, a database), or that the backend is not
/// available here.
pub trait Fixture {
    /// What is kept alive for the test.
    type Guard;
    /// The store under test and its guard, or why there is none.
    fn into_parts(self) -> Result<(Arc<dyn Store>, Self::Guard), Unavailable>;
}

impl Fixture for Arc<dyn Store> {
    type Guard = ();
    fn into_parts(self) -> Result<(Arc<dyn Store>, ()), Unavailable> {
        Ok((self, ()))
    }
}

impl<G> Fixture for (Arc<dyn Store>, G) {
    type Guard = G;
    fn into_parts(self) -> Result<(Arc<dyn Store>, G), Unavailable> {
        Ok(self)
    }
}

impl<F: Fixture> Fixture for Result<F, Unavailable> {
    type Guard = F::Guard;
    fn into_parts(self) -> Result<(Arc<dyn Store>, F::Guard), Unavailable> {
        self?.into_parts()
    }
}

/// The fixture's store and guard; `None` after saying the case is skipped when the backend
/// is not available (under `CI=true` that panics instead: CI must run every case).
#[track_caller]
pub fn ready<F: Fixture>(fixture: F) -> Option<(Arc<dyn Store>, F::Guard)> {
    auditlog_testkit::available(fixture.into_parts())
}
