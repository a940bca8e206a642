//! An organization's Merkle tree as a store keeps it: C2SP tiles, grown by appends inside the
//! store's serialized append path, and read back to answer roots and proofs.
//!
//! A store holds, per organization, one row per tile `(level, index)` with the tile's hashes
//! (`32 · width` bytes). Only the rightmost tile of each level is ever partial, and tiles only
//! grow: a tile of a smaller tree is a prefix of the stored one. To append, a store reads the
//! tiles [`right_edge`] names, calls [`append`] with them and the new leaves, and writes back
//! every tile it returns (an upsert by `(level, index)`), in the transaction that stores the
//! events. The frontier (the right edge's subtree roots) is recomputed from those tiles, or
//! an appender that serializes every append of an organization keeps it between appends in a
//! [`RightEdge`], which it drops whenever a commit fails, so that the tiles stay the one
//! record.

use crate::merkle::{Frontier, Hash, HashIndex, HASH_SIZE};
use crate::tiles::{Tile, TileDataError, TileHashReader, TILE_HEIGHT, TILE_WIDTH};

/// The partial tiles of a tree of `size` leaves, lowest level first: the rightmost tile of
/// each level whose hash count is not a multiple of 256. Together they hold every hash of the
/// tree's frontier, and they are the only stored tiles an append changes.
pub fn right_edge(size: u64) -> Vec<Tile> {
    let mut tiles = Vec::new();
    for level in 0u8.. {
        let shift = u32::from(level) * u32::from(TILE_HEIGHT);
        let count = size.checked_shr(shift).unwrap_or(0);
        if count == 0 {
            break;
        }
        let width = (count % u64::from(TILE_WIDTH)) as u16;
        if width != 0 {
            tiles.push(Tile::new(level, count >> TILE_HEIGHT, width).expect("a tile of the tree"));
        }
    }
    tiles
}

/// Why stored tiles could not be grown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeUpdateError {
    /// A tile [`right_edge`] names was not given, or was shorter than the tree needs: the
    /// stored tree does not match the stored events.
    #[error("the stored tree lacks tile {0} of a tree of {1} leaves")]
    MissingTile(String, u64),
    /// A given tile's bytes are not whole hashes.
    #[error(transparent)]
    Data(#[from] TileDataError),
}

/// What an appender holds of a tree to grow it without reading or hashing anything first:
/// its frontier and the bytes of its right edge ([`right_edge`]). A store's writer may keep
/// one per organization between commits ([`RightEdge::grow`] keeps it current) and fall back
/// to reading the tiles ([`RightEdge::from_tiles`]) when it has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RightEdge {
    frontier: Frontier,
    /// The partial tiles of the tree, each cut to its width.
    tiles: Vec<(Tile, Vec<u8>)>,
}

impl RightEdge {
    /// The right edge of a tree of `size` leaves from stored tiles holding (at least) the
    /// tiles [`right_edge`]`(size)` names; a stored tile may be wider (only its prefix is
    /// used). Rebuilding the frontier hashes up to every hash of those tiles.
    pub fn from_tiles(size: u64, stored: &[(Tile, Vec<u8>)]) -> Result<RightEdge, TreeUpdateError> {
        let edge = right_edge(size);
        let mut reader = TileHashReader::new();
        let mut tiles = Vec::with_capacity(edge.len());
        for tile in &edge {
            let bytes = stored
                .iter()
                .find(|(t, _)| t.level() == tile.level() && t.index() == tile.index())
                .map(|(_, bytes)| bytes)
                .filter(|bytes| bytes.len() >= usize::from(tile.width()) * HASH_SIZE)
                .ok_or_else(|| TreeUpdateError::MissingTile(tile.path(), size))?;
            let prefix = &bytes[..usize::from(tile.width()) * HASH_SIZE];
            reader.insert(*tile, prefix)?;
            tiles.push((*tile, prefix.to_vec()));
        }
        let frontier = Frontier::read(&reader, size)
            .map_err(|_| TreeUpdateError::MissingTile(format!("frontier of {size}"), size))?;
        Ok(RightEdge { frontier, tiles })
    }

    /// Leaves in the tree.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// Appends `leaves` and answers every tile that changed, with its complete new bytes;
    /// the right edge moves to the grown tree.
    pub fn grow(&mut self, leaves: &[Hash]) -> Vec<(Tile, Vec<u8>)> {
        let size = self.frontier.size();
        // Per tile level: the hashes appended at that tree level (8 · level), in index order.
        let mut added: Vec<Vec<Hash>> = Vec::new();
        for leaf in leaves {
            for (at, hash) in self.frontier.append(*leaf) {
                if at.level % TILE_HEIGHT == 0 {
                    let level = usize::from(at.level / TILE_HEIGHT);
                    if added.len() <= level {
                        added.resize(level + 1, Vec::new());
                    }
                    added[level].push(hash);
                }
            }
        }
        let mut written = Vec::new();
        for (level, hashes) in added.iter().enumerate() {
            if hashes.is_empty() {
                continue;
            }
            let level = level as u8;
            let shift = u32::from(level) * u32::from(TILE_HEIGHT);
            let before = size.checked_shr(shift).unwrap_or(0);
            // Start from the partial tile of this level, if there is one.
            let mut index = before >> TILE_HEIGHT;
            let mut bytes = self
                .tiles
                .iter()
                .find(|(t, _)| t.level() == level)
                .map(|(_, bytes)| bytes.clone())
                .unwrap_or_default();
            for hash in hashes {
                bytes.extend_from_slice(hash.as_bytes());
                if bytes.len() == usize::from(TILE_WIDTH) * HASH_SIZE {
                    let tile = Tile::new(level, index, TILE_WIDTH).expect("a tile of the tree");
                    written.push((tile, std::mem::take(&mut bytes)));
                    index += 1;
                }
            }
            if !bytes.is_empty() {
                let width = (bytes.len() / HASH_SIZE) as u16;
                let tile = Tile::new(level, index, width).expect("a tile of the tree");
                written.push((tile, bytes));
            }
        }
        // The new right edge: each level's partial tile, changed or as it was.
        let new_size = self.frontier.size();
        self.tiles = right_edge(new_size)
            .into_iter()
            .map(|tile| {
                let bytes = written
                    .iter()
                    .chain(self.tiles.iter())
                    .find(|(t, _)| t.level() == tile.level() && t.index() == tile.index())
                    .map(|(_, bytes)| bytes[..usize::from(tile.width()) * HASH_SIZE].to_vec())
                    .expect("a partial tile of the grown tree was written or was there");
                (tile, bytes)
            })
            .collect();
        written
    }
}

/// Appends `leaves` to a tree of `size` leaves and answers every tile that changed, with its
/// complete new bytes. `stored` holds the stored bytes of (at least) the tiles
/// [`right_edge`]`(size)` names; a stored tile may be wider than that tree needs (only its
/// prefix is used).
pub fn append(
    size: u64,
    stored: &[(Tile, Vec<u8>)],
    leaves: &[Hash],
) -> Result<Vec<(Tile, Vec<u8>)>, TreeUpdateError> {
    Ok(RightEdge::from_tiles(size, stored)?.grow(leaves))
}

/// The tiles a reader needs to compute the hashes at `indexes` in a tree of `size` leaves,
/// each once, with the width that tree gives it.
pub fn tiles_for(indexes: &[HashIndex], size: u64) -> Vec<Tile> {
    let mut tiles: Vec<Tile> = Vec::new();
    for &at in indexes {
        if let Some(tile) = Tile::containing(at, size) {
            if !tiles
                .iter()
                .any(|t| t.level() == tile.level() && t.index() == tile.index())
            {
                tiles.push(tile);
            }
        }
    }
    tiles
}

/// A reader over stored tiles for a tree of `size` leaves: each stored tile is cut to the
/// width that tree gives it (stored tiles may have grown since).
pub fn reader_for(
    size: u64,
    tiles: &[Tile],
    stored: &[Option<Vec<u8>>],
) -> Result<TileHashReader, TreeUpdateError> {
    let mut reader = TileHashReader::new();
    for (tile, bytes) in tiles.iter().zip(stored) {
        let needed = usize::from(tile.width()) * HASH_SIZE;
        let bytes = bytes
            .as_deref()
            .filter(|bytes| bytes.len() >= needed)
            .ok_or_else(|| TreeUpdateError::MissingTile(tile.path(), size))?;
        reader.insert(*tile, &bytes[..needed])?;
    }
    Ok(reader)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{inclusion_proof, leaf_hash, tree_root, verify_inclusion};
    use std::collections::BTreeMap;

    /// Grows a tree through [`append`] in batches of the given sizes, as a store would, and
    /// checks the root after each against a frontier built leaf by leaf.
    fn grow(batches: &[usize]) {
        let mut stored: BTreeMap<(u8, u64), (Tile, Vec<u8>)> = BTreeMap::new();
        let mut reference = Frontier::new();
        // An appender that keeps its right edge between batches, as a store's writer does.
        let mut kept = RightEdge::from_tiles(0, &[]).unwrap();
        let mut size = 0u64;
        for (b, &n) in batches.iter().enumerate() {
            let leaves: Vec<Hash> = (0..n)
                .map(|i| leaf_hash(format!("{b}/{i}").as_bytes()))
                .collect();
            let edge: Vec<(Tile, Vec<u8>)> = right_edge(size)
                .iter()
                .map(|t| stored[&(t.level(), t.index())].clone())
                .collect();
            assert_eq!(
                kept,
                RightEdge::from_tiles(size, &edge).unwrap(),
                "size {size}"
            );
            let written = append(size, &edge, &leaves).unwrap();
            assert_eq!(
                kept.grow(&leaves),
                written,
                "the kept edge writes the same tiles"
            );
            for (tile, bytes) in written {
                stored.insert((tile.level(), tile.index()), (tile, bytes));
            }
            for leaf in &leaves {
                reference.append(*leaf);
            }
            size += n as u64;
            let indexes = Frontier::indexes(size);
            let tiles = tiles_for(&indexes, size);
            let bytes: Vec<Option<Vec<u8>>> = tiles
                .iter()
                .map(|t| stored.get(&(t.level(), t.index())).map(|s| s.1.clone()))
                .collect();
            let reader = reader_for(size, &tiles, &bytes).unwrap();
            assert_eq!(
                tree_root(&reader, size).unwrap(),
                reference.root(),
                "size {size}"
            );
        }
        // Every tile is as wide as the tree says, and an inclusion proof of the last leaf
        // verifies through them.
        let all: Vec<Tile> = stored.values().map(|s| s.0).collect();
        let bytes: Vec<Option<Vec<u8>>> = stored.values().map(|s| Some(s.1.clone())).collect();
        let reader = reader_for(size, &all, &bytes).unwrap();
        let proof = inclusion_proof(&reader, size, size - 1).unwrap();
        let last = reference.hashes().last().copied().unwrap();
        if size % 2 == 1 {
            verify_inclusion(&last, size - 1, size, &proof, &reference.root()).unwrap();
        }
    }

    #[test]
    fn tiles_grown_in_batches_give_the_roots_of_leaf_by_leaf_trees() {
        grow(&[1]);
        grow(&[1, 1, 1, 1, 1]);
        grow(&[255, 1, 1]);
        grow(&[300, 7, 256, 1000]);
        grow(&[65_535, 2]);
        grow(&[1; 600]);
    }

    #[test]
    fn a_missing_right_edge_tile_is_an_error() {
        let leaves = [leaf_hash(b"a")];
        let error = append(3, &[], &leaves).unwrap_err();
        assert!(
            matches!(error, TreeUpdateError::MissingTile(_, 3)),
            "{error}"
        );
    }

    #[test]
    fn the_right_edge_is_the_partial_tile_of_each_level() {
        assert!(right_edge(0).is_empty());
        assert!(right_edge(256).iter().all(|t| t.level() == 1));
        let edge = right_edge(256 * 256 + 256 + 3);
        let shape: Vec<(u8, u64, u16)> = edge
            .iter()
            .map(|t| (t.level(), t.index(), t.width()))
            .collect();
        assert_eq!(shape, vec![(0, 257, 3), (1, 1, 1), (2, 0, 1)]);
    }
}
