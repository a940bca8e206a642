//! Each organization's Merkle tree (`docs/log-format.md`): C2SP tiles in `tree_tiles`, except
//! the partial level-0 tile, which is its leaves' rows in `tree_leaves` (an append writes 32
//! bytes per event rather than the whole tile again), grown by `auditlog_core::tree::append`
//! in the transaction that stores the events, under the organization's head lock; and its
//! signed tree checkpoints in `tree_checkpoints`.
//!
//! - No tree size is kept beside the tiles: the last tile of level 0 says how many leaves the
//!   tree has, so there is no second record to disagree with them. An append reads the last
//!   tile of each level ([`READ_EDGE`]), which includes every tile
//!   `tree::right_edge` names, in a statement sent right behind the head's `FOR UPDATE`. It
//!   runs only once the lock is granted and, as a statement of its own, with a new snapshot
//!   (READ COMMITTED), so it sees the tiles the lock's previous holder committed; sent back to
//!   back, the two cost one round trip.
//! - The changed tiles and new leaf rows of every organization of a batch are written by one
//!   statement ([`WRITE_TREE`]), pipelined with the event rows.
//! - A tree with fewer leaves than its chain has events is grown from the stored events
//!   first ([`grow_from_events`]): the migration that adds the tiles backfills every
//!   organization that way, and during a rolling upgrade a replica still on the build before
//!   stores events without tiles, which the next append of this build then covers.

use auditlog_core::chain;
use auditlog_core::merkle::{Hash, HASH_SIZE};
use auditlog_core::tiles::{Tile, TILE_WIDTH};
use auditlog_core::tree;
use auditlog_store::StoreError;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Transaction};
use uuid::Uuid;

use crate::{backend, read};

/// The last tile of each level of one organization's tree (`$1`), lowest level first, and
/// whether it was put together from `tree_leaves`. One index probe per level: no tree of
/// `u64` leaves has a level above 7. At level 0 the partial tile is its leaves' rows, and
/// the last full tile in `tree_tiles` counts only when it reaches further (a tree without a
/// partial tile, or a partial tile that a build before schema version 3 wrote whole).
pub(crate) const READ_EDGE: &str = "
SELECT t.level, t.index, t.hashes, t.from_leaves
FROM generate_series(0, 7) AS l(level)
CROSS JOIN LATERAL (
    SELECT * FROM (
        SELECT 0::smallint AS level, ((min(seq) - 1) / 256)::bigint AS index,
               string_agg(leaf, ''::bytea ORDER BY seq) AS hashes, true AS from_leaves
        FROM tree_leaves
        WHERE org_id = $1 AND l.level = 0
        HAVING count(*) > 0
        UNION ALL
        (SELECT level, index, hashes, false FROM tree_tiles
         WHERE org_id = $1 AND level = l.level
         ORDER BY index DESC LIMIT 1)
    ) AS candidate
    ORDER BY index * 256 + octet_length(hashes) / 32 DESC, from_leaves DESC
    LIMIT 1
) AS t
ORDER BY t.level";

/// Writes a grown tree ([`TreeWrites`]) in one statement: changed tiles with their complete
/// new bytes, except a partial level-0 tile, whose new leaves go into `tree_leaves` instead;
/// and the leaves of level-0 tiles that filled up are deleted. (The CTEs see one snapshot:
/// no leaf inserted here is also deleted here, since only leaves past the last full tile are
/// inserted.)
pub(crate) const WRITE_TREE: &str = "
WITH tiles AS (
    INSERT INTO tree_tiles (org_id, level, index, hashes)
    SELECT * FROM unnest($1::uuid[], $2::smallint[], $3::bigint[], $4::bytea[])
    ON CONFLICT (org_id, level, index) DO UPDATE SET hashes = excluded.hashes
), leaves AS (
    INSERT INTO tree_leaves (org_id, seq, leaf)
    SELECT * FROM unnest($5::uuid[], $6::bigint[], $7::bytea[])
    ON CONFLICT (org_id, seq) DO NOTHING
)
DELETE FROM tree_leaves l
USING unnest($8::uuid[], $9::bigint[]) AS filled(org_id, up_to)
WHERE l.org_id = filled.org_id AND l.seq <= filled.up_to";

/// How many stored events [`grow_from_events`] reads at a time.
const CHUNK_EVENTS: u32 = 5_000;

/// One organization's stored tree, as much of it as growing it needs.
#[derive(Debug, Default)]
pub(crate) struct StoredTree {
    /// How many leaves the stored tiles hold.
    pub(crate) size: u64,
    /// The last stored tile of each level, lowest level first: every tile
    /// `tree::right_edge(size)` names is among them.
    last: Vec<(Tile, Vec<u8>)>,
    /// Whether the partial level-0 tile, if any, is in `tree_leaves` (else a build before
    /// schema version 3 wrote it whole, and the next write puts all its leaves there).
    leaves_stored: bool,
}

impl StoredTree {
    /// The tree from [`READ_EDGE`]'s rows. Rows a tree cannot have are corruption.
    pub(crate) fn from_edge(org_id: Uuid, rows: &[Row]) -> Result<StoredTree, StoreError> {
        let corrupt = |what: String| {
            StoreError::Corrupt(format!("the Merkle tree of organization {org_id}: {what}"))
        };
        let mut last = Vec::with_capacity(rows.len());
        let mut leaves_stored = true;
        for row in rows {
            let (level, index): (i16, i64) = (row.get(0), row.get(1));
            let bytes: Vec<u8> = row.get(2);
            if level == 0 {
                leaves_stored = row.get(3);
            }
            let width = u16::try_from(bytes.len() / HASH_SIZE).unwrap_or(0);
            let tile = u8::try_from(level)
                .ok()
                .zip(u64::try_from(index).ok())
                .filter(|_| bytes.len().is_multiple_of(HASH_SIZE))
                .and_then(|(level, index)| Tile::new(level, index, width))
                .ok_or_else(|| {
                    corrupt(format!(
                        "stored tile {level}/{index} of {} bytes",
                        bytes.len()
                    ))
                })?;
            last.push((tile, bytes));
        }
        // Level 0 holds one hash per leaf.
        let size = match last.first() {
            None => 0,
            Some((tile, _)) if tile.level() == 0 => tile
                .index()
                .checked_mul(u64::from(TILE_WIDTH))
                .and_then(|full| full.checked_add(u64::from(tile.width())))
                .ok_or_else(|| corrupt("a tree beyond u64 leaves".into()))?,
            Some(_) => return Err(corrupt("tiles above level 0 but none at it".into())),
        };
        Ok(StoredTree {
            size,
            last,
            leaves_stored,
        })
    }

    /// Appends `leaves`, adding what to write to `writes`, and becomes the grown tree.
    pub(crate) fn grow(
        &mut self,
        org_id: Uuid,
        leaves: &[Hash],
        writes: &mut TreeWrites,
    ) -> Result<(), StoreError> {
        let changed = tree::append(self.size, &self.last, leaves).map_err(|e| {
            StoreError::Corrupt(format!("the Merkle tree of organization {org_id}: {e}"))
        })?;
        // Per level, tiles come out in index order: the last one of a level is its new edge.
        for (tile, bytes) in &changed {
            match self
                .last
                .iter_mut()
                .find(|(t, _)| t.level() == tile.level())
            {
                Some(slot) => *slot = (*tile, bytes.clone()),
                None => self.last.push((*tile, bytes.clone())),
            }
        }
        let old_size = self.size;
        self.size += leaves.len() as u64;
        let width = u64::from(TILE_WIDTH);
        let full = self.size / width * width;
        for (tile, bytes) in changed {
            if tile.level() == 0 && tile.width() < TILE_WIDTH {
                // The partial level-0 tile: its leaves' rows (all of them when a build
                // before wrote it whole, else those this append adds).
                let first = if self.leaves_stored {
                    old_size.max(full)
                } else {
                    full
                };
                for seq in first + 1..=self.size {
                    let at = ((seq - 1 - full) as usize) * HASH_SIZE;
                    writes.leaf_org.push(org_id);
                    writes.leaf_seq.push(seq as i64);
                    writes.leaf.push(bytes[at..at + HASH_SIZE].to_vec());
                }
                self.leaves_stored = true;
            } else {
                writes.tile_org.push(org_id);
                writes.level.push(i16::from(tile.level()));
                // A tile's index is below 2^56 (a tree has at most u64 leaves).
                writes.index.push(tile.index() as i64);
                writes.hashes.push(bytes);
            }
        }
        if full > old_size / width * width {
            writes.filled_org.push(org_id);
            writes.filled_up_to.push(full as i64);
        }
        Ok(())
    }
}

/// What grown trees write ([`WRITE_TREE`]), one array per column.
#[derive(Debug, Default)]
pub(crate) struct TreeWrites {
    tile_org: Vec<Uuid>,
    level: Vec<i16>,
    index: Vec<i64>,
    hashes: Vec<Vec<u8>>,
    leaf_org: Vec<Uuid>,
    leaf_seq: Vec<i64>,
    leaf: Vec<Vec<u8>>,
    filled_org: Vec<Uuid>,
    filled_up_to: Vec<i64>,
}

impl TreeWrites {
    pub(crate) fn is_empty(&self) -> bool {
        self.tile_org.is_empty() && self.leaf_org.is_empty() && self.filled_org.is_empty()
    }

    pub(crate) fn params(&self) -> [&(dyn ToSql + Sync); 9] {
        [
            &self.tile_org,
            &self.level,
            &self.index,
            &self.hashes,
            &self.leaf_org,
            &self.leaf_seq,
            &self.leaf,
            &self.filled_org,
            &self.filled_up_to,
        ]
    }
}

/// Grows `tree` by the stored events of `org_id` after its size, up to `up_to_seq`, in
/// chunks of [`CHUNK_EVENTS`], writing each chunk's changed tiles. The caller holds the
/// organization's head lock (or is the migration, which reads up to the head it saw).
pub(crate) async fn grow_from_events(
    tx: &Transaction<'_>,
    org_id: Uuid,
    tree: &mut StoredTree,
    up_to_seq: u64,
) -> Result<(), StoreError> {
    while tree.size < up_to_seq {
        let events =
            read::events_in_seq_range(tx, org_id, tree.size, up_to_seq, CHUNK_EVENTS).await?;
        // Leaf i of the tree is the event of seq i + 1: a missing seq would shift every leaf
        // after it.
        if events.is_empty()
            || events
                .iter()
                .zip(tree.size + 1..)
                .any(|(event, seq)| event.seq != seq)
        {
            return Err(StoreError::Corrupt(format!(
                "organization {org_id} has no event of seq {} up to its head {up_to_seq}",
                tree.size + 1
            )));
        }
        let leaves: Vec<Hash> = events.iter().map(|e| Hash(chain::leaf_hash(e))).collect();
        let mut writes = TreeWrites::default();
        tree.grow(org_id, &leaves, &mut writes)?;
        tx.execute(WRITE_TREE, &writes.params())
            .await
            .map_err(backend)?;
    }
    Ok(())
}

/// Builds every organization's tiles from its stored events (schema version 2, in the
/// migration's transaction). Each tree is read first, so a tree already partly there (none
/// is today) is grown, not rebuilt.
pub(crate) async fn backfill(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let heads = tx
        .query(
            "SELECT org_id, seq FROM org_heads WHERE seq > 0 ORDER BY org_id",
            &[],
        )
        .await
        .map_err(backend)?;
    for head in heads {
        let (org_id, seq): (Uuid, i64) = (head.get(0), head.get(1));
        let edge = tx.query(READ_EDGE, &[&org_id]).await.map_err(backend)?;
        let mut tree = StoredTree::from_edge(org_id, &edge)?;
        grow_from_events(tx, org_id, &mut tree, seq as u64).await?;
        tracing::info!(%org_id, leaves = tree.size, "built the Merkle tree of stored events");
    }
    Ok(())
}

/// Stored tiles of an organization in the order asked, `None` where there is none.
pub(crate) async fn read_tiles(
    client: &Client,
    org_id: Uuid,
    tiles: &[(u8, u64)],
) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
    if tiles.is_empty() {
        return Ok(Vec::new());
    }
    let levels: Vec<i16> = tiles.iter().map(|(level, _)| i16::from(*level)).collect();
    // An index beyond i64 names no stored tile; -1 never matches either.
    let indexes: Vec<i64> = tiles
        .iter()
        .map(|(_, index)| i64::try_from(*index).unwrap_or(-1))
        .collect();
    // A level-0 tile is its leaves' rows until it fills (or the stored tile, when a build
    // before schema version 3 wrote it whole): the wider of the two.
    let rows = client
        .query(
            "SELECT CASE WHEN octet_length(p.hashes) > coalesce(octet_length(t.hashes), 0)
                         THEN p.hashes ELSE t.hashes END
             FROM unnest($2::smallint[], $3::bigint[]) WITH ORDINALITY AS k(level, index, n)
             LEFT JOIN tree_tiles t
               ON t.org_id = $1 AND t.level = k.level AND t.index = k.index
             LEFT JOIN LATERAL (
                 SELECT string_agg(leaf, ''::bytea ORDER BY seq) AS hashes FROM tree_leaves
                 WHERE org_id = $1 AND k.level = 0
                   AND seq > k.index * 256 AND seq <= k.index * 256 + 256
             ) AS p ON true
             ORDER BY k.n",
            &[&org_id, &levels, &indexes],
        )
        .await
        .map_err(backend)?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// Keeps a signed tree checkpoint; the first note kept for a size stands.
pub(crate) async fn save_tree_checkpoint(
    client: &Client,
    org_id: Uuid,
    size: u64,
    note: &str,
) -> Result<(), StoreError> {
    let size = i64::try_from(size)
        .map_err(|_| StoreError::Backend(format!("a tree of {size} leaves is beyond bigint")))?;
    client
        .execute(
            "INSERT INTO tree_checkpoints (org_id, size, note) VALUES ($1, $2, $3)
             ON CONFLICT (org_id, size) DO NOTHING",
            &[&org_id, &size, &note],
        )
        .await
        .map_err(backend)?;
    Ok(())
}

/// The signed tree checkpoint of the largest size kept for an organization.
pub(crate) async fn latest_tree_checkpoint(
    client: &Client,
    org_id: Uuid,
) -> Result<Option<(u64, String)>, StoreError> {
    let row = client
        .query_opt(
            "SELECT size, note FROM tree_checkpoints WHERE org_id = $1
             ORDER BY size DESC LIMIT 1",
            &[&org_id],
        )
        .await
        .map_err(backend)?;
    Ok(row.map(|row| (row.get::<_, i64>(0) as u64, row.get(1))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_core::merkle::leaf_hash;

    /// Growing a tree in steps, keeping only what [`StoredTree`] keeps and writing what
    /// [`TreeWrites`] says (tiles, leaf rows, filled tiles' leaves deleted), stores the tiles
    /// of the same tree built at once: each full tile and each partial one above level 0 as
    /// a tile, the partial level-0 tile as its leaves.
    #[test]
    fn a_tree_grown_in_steps_keeps_its_edge() {
        use std::collections::BTreeMap;
        let leaves: Vec<Hash> = (0..70_000u32)
            .map(|i| leaf_hash(&i.to_be_bytes()))
            .collect();
        let mut tree = StoredTree::default();
        let mut stored: BTreeMap<(u8, u64), Vec<u8>> = BTreeMap::new();
        let mut leaf_rows: BTreeMap<i64, Vec<u8>> = BTreeMap::new();
        let mut at = 0;
        for step in [1usize, 255, 1, 300, 65_279, 3_000, 164] {
            let mut writes = TreeWrites::default();
            tree.grow(Uuid::nil(), &leaves[at..at + step], &mut writes)
                .unwrap();
            for i in 0..writes.tile_org.len() {
                let key = (writes.level[i] as u8, writes.index[i] as u64);
                stored.insert(key, writes.hashes[i].clone());
            }
            for i in 0..writes.leaf_org.len() {
                leaf_rows.insert(writes.leaf_seq[i], writes.leaf[i].clone());
            }
            for up_to in &writes.filled_up_to {
                leaf_rows.retain(|seq, _| seq > up_to);
            }
            at += step;
            assert_eq!(tree.size, at as u64);
            assert_eq!(leaf_rows.len(), at % 256, "leaf rows after {at} leaves");
            // The kept edge is what READ_EDGE would read: the last stored tile of each
            // level, at level 0 the leaf rows when there are any.
            for (tile, bytes) in &tree.last {
                if tile.level() == 0 && !leaf_rows.is_empty() {
                    assert_eq!(
                        bytes,
                        &leaf_rows.values().flatten().copied().collect::<Vec<_>>()
                    );
                    continue;
                }
                let last = stored
                    .range((tile.level(), 0)..(tile.level() + 1, 0))
                    .last();
                assert_eq!(last, Some((&(tile.level(), tile.index()), bytes)));
            }
        }
        let mut expected: BTreeMap<_, _> = tree::append(0, &[], &leaves[..at])
            .unwrap()
            .into_iter()
            .map(|(tile, bytes)| ((tile.level(), tile.index()), bytes))
            .collect();
        let partial = expected
            .remove(&(0, at as u64 / 256))
            .expect("a partial level-0 tile");
        assert_eq!(stored, expected);
        assert_eq!(
            partial,
            leaf_rows.values().flatten().copied().collect::<Vec<_>>()
        );
    }
}
