//! Each organization's Merkle tree (`docs/log-format.md`): C2SP tiles in `tree_tiles`, grown
//! by `auditlog_core::tree::append` in the transaction that stores the events, under the
//! organization's head lock; and its signed tree checkpoints in `tree_checkpoints`.
//!
//! - No tree size is kept beside the tiles: the last tile of level 0 says how many leaves the
//!   tree has, so there is no second record to disagree with them. An append reads the last
//!   stored tile of each level ([`READ_EDGE`]), which includes every tile
//!   `tree::right_edge` names, in a statement sent right behind the head's `FOR UPDATE`. It
//!   runs only once the lock is granted and, as a statement of its own, with a new snapshot
//!   (READ COMMITTED), so it sees the tiles the lock's previous holder committed; sent back to
//!   back, the two cost one round trip.
//! - The changed tiles of every organization of a batch are upserted by one statement
//!   ([`UPSERT_TILES`]), pipelined with the event rows.
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

/// The last stored tile of each level of one organization's tree (`$1`), lowest level first.
/// One index probe per level: no tree of `u64` leaves has a level above 7.
pub(crate) const READ_EDGE: &str = "
SELECT t.level, t.index, t.hashes
FROM generate_series(0, 7) AS l(level)
CROSS JOIN LATERAL (
    SELECT level, index, hashes FROM tree_tiles
    WHERE org_id = $1 AND level = l.level
    ORDER BY index DESC LIMIT 1
) AS t
ORDER BY t.level";

/// Writes changed tiles with their complete new bytes ([`TileColumns`]).
pub(crate) const UPSERT_TILES: &str = "
INSERT INTO tree_tiles (org_id, level, index, hashes)
SELECT * FROM unnest($1::uuid[], $2::smallint[], $3::bigint[], $4::bytea[])
ON CONFLICT (org_id, level, index) DO UPDATE SET hashes = excluded.hashes";

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
}

impl StoredTree {
    /// The tree from [`READ_EDGE`]'s rows. Rows a tree cannot have are corruption.
    pub(crate) fn from_edge(org_id: Uuid, rows: &[Row]) -> Result<StoredTree, StoreError> {
        let corrupt = |what: String| {
            StoreError::Corrupt(format!("the Merkle tree of organization {org_id}: {what}"))
        };
        let mut last = Vec::with_capacity(rows.len());
        for row in rows {
            let (level, index): (i16, i64) = (row.get(0), row.get(1));
            let bytes: Vec<u8> = row.get(2);
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
        Ok(StoredTree { size, last })
    }

    /// Appends `leaves`: answers every tile that changed, with its new bytes, and becomes the
    /// grown tree.
    pub(crate) fn grow(
        &mut self,
        org_id: Uuid,
        leaves: &[Hash],
    ) -> Result<Vec<(Tile, Vec<u8>)>, StoreError> {
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
        self.size += leaves.len() as u64;
        Ok(changed)
    }
}

/// Changed tiles as one array per column, for [`UPSERT_TILES`].
#[derive(Debug, Default)]
pub(crate) struct TileColumns {
    org_id: Vec<Uuid>,
    level: Vec<i16>,
    index: Vec<i64>,
    hashes: Vec<Vec<u8>>,
}

impl TileColumns {
    /// Adds an organization's changed tiles (each at most once per organization, as
    /// `tree::append` answers them: one upsert may not touch a row twice).
    pub(crate) fn push(&mut self, org_id: Uuid, tiles: Vec<(Tile, Vec<u8>)>) {
        for (tile, bytes) in tiles {
            self.org_id.push(org_id);
            self.level.push(i16::from(tile.level()));
            // A tile's index is below 2^56 (a tree has at most u64 leaves).
            self.index.push(tile.index() as i64);
            self.hashes.push(bytes);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.org_id.is_empty()
    }

    pub(crate) fn params(&self) -> [&(dyn ToSql + Sync); 4] {
        [&self.org_id, &self.level, &self.index, &self.hashes]
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
        let mut columns = TileColumns::default();
        columns.push(org_id, tree.grow(org_id, &leaves)?);
        tx.execute(UPSERT_TILES, &columns.params())
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
    let rows = client
        .query(
            "SELECT t.hashes
             FROM unnest($2::smallint[], $3::bigint[]) WITH ORDINALITY AS k(level, index, n)
             LEFT JOIN tree_tiles t
               ON t.org_id = $1 AND t.level = k.level AND t.index = k.index
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

    /// Growing a tree in steps, keeping only what [`StoredTree`] keeps, gives the tiles of
    /// the same tree built at once.
    #[test]
    fn a_tree_grown_in_steps_keeps_its_edge() {
        let leaves: Vec<Hash> = (0..70_000u32)
            .map(|i| leaf_hash(&i.to_be_bytes()))
            .collect();
        let mut tree = StoredTree::default();
        let mut stored = std::collections::BTreeMap::new();
        let mut at = 0;
        for step in [1usize, 255, 1, 300, 65_279, 3_000, 164] {
            let changed = tree.grow(Uuid::nil(), &leaves[at..at + step]).unwrap();
            for (tile, bytes) in changed {
                stored.insert((tile.level(), tile.index()), bytes);
            }
            at += step;
            assert_eq!(tree.size, at as u64);
            // The kept edge is the last stored tile of each level.
            for (tile, bytes) in &tree.last {
                let last = stored
                    .range((tile.level(), 0)..(tile.level() + 1, 0))
                    .last();
                assert_eq!(last, Some((&(tile.level(), tile.index()), bytes)));
            }
        }
        let expected: std::collections::BTreeMap<_, _> = tree::append(0, &[], &leaves[..at])
            .unwrap()
            .into_iter()
            .map(|(tile, bytes)| ((tile.level(), tile.index()), bytes))
            .collect();
        assert_eq!(stored, expected);
    }
}
