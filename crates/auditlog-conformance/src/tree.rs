//! Cases: every organization's Merkle tree, kept as tiles, covers exactly its events, however
//! they arrived (appends of any size, several organizations in one batch, restores), and
//! signed tree checkpoints round-trip.

use std::collections::BTreeMap;
use std::sync::Arc;

use auditlog_core::chain::{self, GENESIS};
use auditlog_core::merkle::{Frontier, Hash};
use auditlog_core::tiles::{tiles_for_size, Tile};
use auditlog_core::tree;
use auditlog_store::{Append, Store};
use uuid::Uuid;

use crate::events::*;
use crate::restore::chained_events;
use crate::support::*;

/// The tiles a tree of `leaves` has, computed in memory from nothing: what the store must hold.
fn expected_tiles(leaves: &[Hash]) -> BTreeMap<(u8, u64), Vec<u8>> {
    let mut tiles = BTreeMap::new();
    for (tile, bytes) in tree::append(0, &[], leaves).expect("a tree from nothing") {
        tiles.insert((tile.level(), tile.index()), bytes);
    }
    tiles
}

/// Checks the stored tiles of `org_id` against its events: every tile a tree of its size has
/// is stored with exactly the expected hashes (a stored tile may not be wider: nothing beyond
/// the events), and the root read through the stored tiles is the frontier's.
async fn assert_tree_matches_events(store: &dyn Store, org_id: Uuid, context: &str) {
    let events = verified_chain(store, org_id).await;
    let leaves: Vec<Hash> = events.iter().map(|e| Hash(chain::leaf_hash(e))).collect();
    let size = leaves.len() as u64;
    let expected = expected_tiles(&leaves);
    let tiles: Vec<Tile> = tiles_for_size(size);
    let keys: Vec<(u8, u64)> = tiles.iter().map(|t| (t.level(), t.index())).collect();
    let stored = ok(store.read_tiles(org_id, &keys).await, "read_tiles");
    assert_eq!(
        stored.len(),
        keys.len(),
        "{context}: read_tiles answers one per tile"
    );
    for (tile, bytes) in tiles.iter().zip(&stored) {
        let bytes = bytes
            .as_ref()
            .unwrap_or_else(|| panic!("{context}: tile {} is not stored", tile.path()));
        assert_eq!(
            Some(bytes),
            expected.get(&(tile.level(), tile.index())),
            "{context}: tile {} of a tree of {size} differs from its events' hashes",
            tile.path()
        );
    }
    let mut frontier = Frontier::new();
    for leaf in &leaves {
        frontier.append(*leaf);
    }
    let reader = tree::reader_for(size, &tiles, &stored).expect("a reader over the tiles");
    let root = if size == 0 {
        auditlog_core::merkle::empty_root()
    } else {
        auditlog_core::merkle::tree_root(&reader, size).expect("a root from the tiles")
    };
    assert_eq!(root, frontier.root(), "{context}: root of {size} leaves");
}

/// Appends of 1, 255, 2 and 600 events, a batch that mixes two organizations, and a restore
/// each leave tiles that match the events exactly; a tile nobody stored reads as `None`.
pub async fn tree_tiles_cover_exactly_the_events(store: Arc<dyn Store>) {
    let store = &*store;
    let a = make_org(store, "tree-a").await;
    let b = make_org(store, "tree-b").await;
    let t0 = base_time().as_millis();
    let bodies = |n: usize, from: i64| -> Vec<_> {
        (0..n)
            .map(|i| body("channel_created", "alice@example.com", from + i as i64))
            .collect()
    };
    assert_tree_matches_events(store, a.id, "before any event").await;
    for (round, n) in [1usize, 255, 2, 600].into_iter().enumerate() {
        append_all(store, &a, bodies(n, t0 + 10_000 * round as i64), n).await;
        assert_tree_matches_events(store, a.id, &format!("after appending {n}")).await;
    }
    // One batch for both organizations, interleaved.
    let batch: Vec<Append> = (0..300)
        .map(|i| {
            let org = if i % 3 == 0 { &a } else { &b };
            to(
                org,
                body("policy_created", "bob@example.org", t0 + 50_000 + i),
            )
        })
        .collect();
    append_ok(store, batch).await;
    assert_tree_matches_events(store, a.id, "after a mixed batch").await;
    assert_tree_matches_events(store, b.id, "after a mixed batch").await;

    // A restore grows the tree like an append.
    let c = make_org(store, "tree-c").await;
    let restored = chained_events(c.id, (0, GENESIS), bodies(260, t0 + 90_000), t0 + 90_000);
    ok(
        store.restore_events(c.id, restored).await,
        "restore_events of 260 events",
    );
    assert_tree_matches_events(store, c.id, "after a restore").await;

    // Organizations do not share tiles, and a tile beyond the tree is absent.
    let far = ok(
        store.read_tiles(b.id, &[(0, 1_000), (3, 0)]).await,
        "read_tiles",
    );
    assert_eq!(far, vec![None, None], "tiles beyond the tree");
    let empty = make_org(store, "tree-empty").await;
    let none = ok(store.read_tiles(empty.id, &[(0, 0)]).await, "read_tiles");
    assert_eq!(
        none,
        vec![None],
        "an organization without events has no tiles"
    );
}

/// Signed tree checkpoints round-trip per organization: the latest is the largest size, and a
/// second note for a size already kept is ignored.
pub async fn tree_checkpoints_round_trip(store: Arc<dyn Store>) {
    let store = &*store;
    let a = make_org(store, "tree-checkpoint-a").await;
    let b = make_org(store, "tree-checkpoint-b").await;
    assert_eq!(
        ok(store.latest_tree_checkpoint(a.id).await, "latest"),
        None,
        "no checkpoint yet"
    );
    for (size, note) in [(4u64, "note four\n"), (9, "note nine\n"), (6, "note six\n")] {
        ok(
            store.save_tree_checkpoint(a.id, size, note).await,
            "save_tree_checkpoint",
        );
    }
    ok(
        store.save_tree_checkpoint(a.id, 9, "another nine\n").await,
        "save_tree_checkpoint again",
    );
    ok(
        store.save_tree_checkpoint(b.id, 1, "note one\n").await,
        "save_tree_checkpoint",
    );
    assert_eq!(
        ok(store.latest_tree_checkpoint(a.id).await, "latest"),
        Some((9, "note nine\n".to_string()))
    );
    assert_eq!(
        ok(store.latest_tree_checkpoint(b.id).await, "latest"),
        Some((1, "note one\n".to_string()))
    );
}
