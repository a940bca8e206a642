//! C2SP tlog-tiles (<https://c2sp.org/tlog-tiles>): the Merkle tree served as static "tiles" of
//! 256 consecutive hashes, and the log's entries as "entry bundles" — their paths, which tiles a
//! tree of a given size has, a tile's bytes from the stored hashes, the bundle encoding, and a
//! [`HashReader`] over fetched tiles for verifiers.
//!
//! Tile `(L, N)` holds the hashes of tree level `8·L` numbered `256·N ..`; a tile of width `W`
//! below 256 is the partial right edge of its level. Paths come from URLs, so
//! [`parse_path`] accepts only the one canonical spelling of each tile, and only tiles that
//! can exist in a tree of at most `u64::MAX` leaves, so that arithmetic on a parsed tile never
//! overflows.

use std::collections::BTreeMap;

use crate::merkle::{node_hash, read_exact, Hash, HashIndex, HashReader, TreeError, HASH_SIZE};

/// Tree levels per tile: a tile spans a subtree of height 8.
pub const TILE_HEIGHT: u8 = 8;

/// Hashes in a full tile (entries in a full bundle).
pub const TILE_WIDTH: u16 = 1 << TILE_HEIGHT;

/// Longest path [`parse_path`] looks at. The longest valid one,
/// `tile/entries/x072/x057/x594/x037/x927/935.p/255`, is 47 bytes; refusing longer input
/// first keeps hostile URLs from costing anything.
pub const MAX_PATH_LEN: usize = 64;

/// One tile of Merkle tree hashes: `tile/<L>/<N>[.p/<W>]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    level: u8,
    index: u64,
    width: u16,
}

/// One bundle of log entries: `tile/entries/<N>[.p/<W>]`, the entries whose leaf hashes make
/// level-0 tile `N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryBundle {
    index: u64,
    width: u16,
}

/// What a `tile/…` path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TilePath {
    /// A tile of hashes.
    Hashes(Tile),
    /// A bundle of entries.
    Entries(EntryBundle),
}

/// Why a path is not a tile's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a tile path: {0}")]
pub struct PathError(&'static str);

/// Why bundle bytes could not be made or read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// An entry is longer than the 65,535 bytes a uint16 length prefix can say.
    #[error("entry {0} is longer than 65535 bytes")]
    EntryTooLong(usize),
    /// A bundle holds more than 256 entries.
    #[error("a bundle holds at most 256 entries")]
    TooManyEntries,
    /// The bytes end inside a length prefix or an entry.
    #[error("the bundle ends in the middle of an entry")]
    Truncated,
}

/// Why fetched tile bytes were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("tile {tile} must be {expected} bytes, not {found}")]
pub struct TileDataError {
    /// The tile the bytes were given for.
    pub tile: Tile,
    /// `32 · width`.
    pub expected: usize,
    /// The length given.
    pub found: usize,
}

impl Tile {
    /// Tile `index` of level `level`, `width` hashes wide (1..=256). `None` when no tree of at
    /// most `u64::MAX` leaves has it (which rules out every level above 7).
    pub fn new(level: u8, index: u64, width: u16) -> Option<Tile> {
        let tile = Tile {
            level,
            index,
            width,
        };
        ((1..=TILE_WIDTH).contains(&width)
            && fits(u32::from(level) * u32::from(TILE_HEIGHT), index, width))
        .then_some(tile)
    }

    /// The tile level `L`: its hashes are tree level `8·L`.
    pub fn level(&self) -> u8 {
        self.level
    }

    /// The tile's number `N` within its level.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// How many hashes it holds, 1..=256.
    pub fn width(&self) -> u16 {
        self.width
    }

    /// Whether it holds all 256 hashes (and so will never change).
    pub fn is_full(&self) -> bool {
        self.width == TILE_WIDTH
    }

    /// Its path, `tile/<L>/<N>[.p/<W>]`.
    pub fn path(&self) -> String {
        format!(
            "tile/{}/{}",
            self.level,
            index_and_width(self.index, self.width)
        )
    }

    /// Where its hashes are stored, left to right.
    pub fn hash_indexes(&self) -> Vec<HashIndex> {
        let level = self.level * TILE_HEIGHT;
        let first = self.index << TILE_HEIGHT;
        (0..u64::from(self.width))
            .map(|i| HashIndex::new(level, first + i))
            .collect()
    }

    /// The tile's bytes: its hashes concatenated, 32 bytes each, read in one batch.
    pub fn read<R: HashReader>(&self, reader: &R) -> Result<Vec<u8>, TreeError<R::Error>> {
        let hashes = read_exact(reader, &self.hash_indexes())?;
        Ok(hashes.iter().flat_map(|h| h.0).collect())
    }

    /// The tile of a tree of `tree_size` leaves that holds — or, for a hash between tile
    /// levels, lets a reader compute — the stored hash at `hash`. `None` when that tree has no
    /// such complete subtree.
    pub fn containing(hash: HashIndex, tree_size: u64) -> Option<Tile> {
        let level = hash.level / TILE_HEIGHT;
        let below = hash.level % TILE_HEIGHT;
        let tile_level_hashes = shr(tree_size, u32::from(level) * u32::from(TILE_HEIGHT));
        // The subtree's first and last hashes at the tile's level.
        let first = hash.index.checked_mul(1 << below)?;
        let end = first.checked_add(1 << below)?;
        if end > tile_level_hashes {
            return None;
        }
        let index = first >> TILE_HEIGHT;
        let width = (tile_level_hashes - (index << TILE_HEIGHT)).min(u64::from(TILE_WIDTH));
        Tile::new(level, index, width as u16)
    }
}

impl std::fmt::Display for Tile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.path())
    }
}

impl EntryBundle {
    /// Bundle `index`, `width` entries wide (1..=256); `None` when its entries lie beyond
    /// `u64::MAX`.
    pub fn new(index: u64, width: u16) -> Option<EntryBundle> {
        ((1..=TILE_WIDTH).contains(&width) && fits(0, index, width))
            .then_some(EntryBundle { index, width })
    }

    /// The bundle's number `N`.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// How many entries it holds, 1..=256.
    pub fn width(&self) -> u16 {
        self.width
    }

    /// The index of its first entry in the log, `256·N`.
    pub fn first_entry(&self) -> u64 {
        self.index << TILE_HEIGHT
    }

    /// Its path, `tile/entries/<N>[.p/<W>]`.
    pub fn path(&self) -> String {
        format!("tile/entries/{}", index_and_width(self.index, self.width))
    }

    /// The level-0 tile of the leaf hashes of these entries.
    pub fn tile(&self) -> Tile {
        Tile {
            level: 0,
            index: self.index,
            width: self.width,
        }
    }
}

impl std::fmt::Display for EntryBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.path())
    }
}

/// Parses `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`, accepting only the canonical
/// spelling: no leading zeros in `L` or `W`, `N` in three-digit groups with `x` before all but
/// the last and no leading `x000` group, `W` in 1..=255 (a full tile has no `.p/`), and a tile
/// that can exist in a tree of at most `u64::MAX` leaves.
pub fn parse_path(path: &str) -> Result<TilePath, PathError> {
    if path.len() > MAX_PATH_LEN {
        return Err(PathError("too long"));
    }
    let rest = path
        .strip_prefix("tile/")
        .ok_or(PathError("does not start with tile/"))?;
    let (kind, rest) = rest.split_once('/').ok_or(PathError("no tile index"))?;
    let (index, width) = parse_index_and_width(rest)?;
    if kind == "entries" {
        return EntryBundle::new(index, width)
            .map(TilePath::Entries)
            .ok_or(PathError("the bundle lies beyond the largest tree"));
    }
    let level = parse_decimal(kind, 2).ok_or(PathError("bad level"))?;
    if level > 63 {
        return Err(PathError("level above 63"));
    }
    Tile::new(level as u8, index, width)
        .map(TilePath::Hashes)
        .ok_or(PathError("the tile lies beyond the largest tree"))
}

/// Every tile of a tree of `size` leaves: at each level, the full tiles and then the partial
/// one if any, from level 0 up to the first level with fewer than 256 hashes. (A tree of 256
/// leaves has a full level-0 tile and a level-1 tile of width 1.)
pub fn tiles_for_size(size: u64) -> Vec<Tile> {
    new_tiles(0, size)
}

/// The tiles a tree of `new_size` leaves has and one of `old_size` does not: the tiles
/// completed since, and each level's new partial tile. What a log publishes when it grows.
pub fn new_tiles(old_size: u64, new_size: u64) -> Vec<Tile> {
    let mut tiles = Vec::new();
    for level in 0..=(64 / TILE_HEIGHT) {
        let shift = u32::from(level) * u32::from(TILE_HEIGHT);
        let (old_count, new_count) = (shr(old_size, shift), shr(new_size, shift));
        if new_count == 0 {
            break;
        }
        if new_count <= old_count {
            continue;
        }
        for index in (old_count >> TILE_HEIGHT)..(new_count >> TILE_HEIGHT) {
            tiles.push(Tile {
                level,
                index,
                width: TILE_WIDTH,
            });
        }
        let partial = (new_count % u64::from(TILE_WIDTH)) as u16;
        if partial > 0 {
            tiles.push(Tile {
                level,
                index: new_count >> TILE_HEIGHT,
                width: partial,
            });
        }
    }
    tiles
}

/// The entry bundles a tree of `new_size` leaves has and one of `old_size` does not.
pub fn new_bundles(old_size: u64, new_size: u64) -> Vec<EntryBundle> {
    new_tiles(old_size, new_size)
        .into_iter()
        .filter(|tile| tile.level == 0)
        .map(|tile| EntryBundle {
            index: tile.index,
            width: tile.width,
        })
        .collect()
}

/// An entry bundle's bytes: each entry prefixed with its length as a big-endian uint16.
pub fn encode_bundle<E: AsRef<[u8]>>(entries: &[E]) -> Result<Vec<u8>, BundleError> {
    if entries.len() > usize::from(TILE_WIDTH) {
        return Err(BundleError::TooManyEntries);
    }
    let total: usize = entries.iter().map(|e| 2 + e.as_ref().len()).sum();
    let mut out = Vec::with_capacity(total);
    for (i, entry) in entries.iter().enumerate() {
        let entry = entry.as_ref();
        let len = u16::try_from(entry.len()).map_err(|_| BundleError::EntryTooLong(i))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(entry);
    }
    Ok(out)
}

/// The entries of a bundle's bytes, borrowed from them. The caller checks their number
/// against the bundle's width and their leaf hashes against the level-0 tile.
pub fn decode_bundle(bytes: &[u8]) -> Result<Vec<&[u8]>, BundleError> {
    let mut entries = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        if entries.len() == usize::from(TILE_WIDTH) {
            return Err(BundleError::TooManyEntries);
        }
        let (len, after) = rest
            .split_first_chunk::<2>()
            .ok_or(BundleError::Truncated)?;
        let len = usize::from(u16::from_be_bytes(*len));
        if after.len() < len {
            return Err(BundleError::Truncated);
        }
        let (entry, after) = after.split_at(len);
        entries.push(entry);
        rest = after;
    }
    Ok(entries)
}

/// A [`HashReader`] over tiles (fetched by a verifier, or read by a store): it answers any
/// stored hash of the tree those tiles cover. Each tile's complete subtrees are hashed once,
/// when it is added, so that every hash a root or proof asks for is then a lookup (an export
/// proves thousands of events against the same few tiles).
///
/// It checks only the tiles' lengths, not their content: a root or proof computed through it
/// means something once it is compared with a signed checkpoint's root (a proof verified
/// against that root authenticates the hashes that went into it).
#[derive(Clone, Debug, Default)]
pub struct TileHashReader {
    // Per (level, index), the widest copy given (a full tile supersedes its partial
    // versions), hashed.
    tiles: BTreeMap<(u8, u64), HashedTile>,
}

/// A tile's hashes with every level of complete subtrees above them in the tile, computed
/// once: what a [`TileHashReader`] reads proofs from. A tile of a given width never changes
/// (a log only grows), so one computed for a tree serves every later tree that holds the tile
/// at that width; cloning one shares it.
#[derive(Clone, Debug)]
pub struct HashedTile {
    tile: Tile,
    rows: std::sync::Arc<Vec<Vec<Hash>>>,
}

impl HashedTile {
    /// Hashes a tile's bytes, which must be exactly `32 · width` long.
    pub fn new(tile: Tile, bytes: &[u8]) -> Result<HashedTile, TileDataError> {
        check_tile_length(tile, bytes)?;
        let mut rows: Vec<Vec<Hash>> = vec![bytes
            .chunks_exact(HASH_SIZE)
            .map(|c| Hash::from_slice(c).expect("chunks of 32 bytes"))
            .collect()];
        while let Some(row) = rows.last().filter(|row| row.len() > 1) {
            let up = row
                .chunks_exact(2)
                .map(|pair| node_hash(&pair[0], &pair[1]))
                .collect();
            rows.push(up);
        }
        Ok(HashedTile {
            tile,
            rows: std::sync::Arc::new(rows),
        })
    }

    /// The tile.
    pub fn tile(&self) -> Tile {
        self.tile
    }
}

/// Why a [`TileHashReader`] could not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TileReadError {
    /// None of the tiles given holds this hash, or the one it needs is too narrow.
    #[error("no tile given holds the hash at level {}, index {}", .0.level, .0.index)]
    Missing(HashIndex),
}

impl TileHashReader {
    /// A reader with no tiles.
    pub fn new() -> TileHashReader {
        TileHashReader::default()
    }

    /// Adds a tile's bytes, which must be exactly `32 · width` long.
    pub fn insert(&mut self, tile: Tile, bytes: &[u8]) -> Result<(), TileDataError> {
        check_tile_length(tile, bytes)?;
        if !self.has(tile) {
            self.insert_hashed(HashedTile::new(tile, bytes)?);
        }
        Ok(())
    }

    /// Adds a tile hashed before (for another reader, say).
    pub fn insert_hashed(&mut self, hashed: HashedTile) {
        let tile = hashed.tile;
        if !self.has(tile) {
            self.tiles.insert((tile.level, tile.index), hashed);
        }
    }

    /// Whether the reader holds this tile at this width or wider.
    fn has(&self, tile: Tile) -> bool {
        self.tiles
            .get(&(tile.level, tile.index))
            .is_some_and(|held| held.tile.width >= tile.width)
    }

    /// The hashed tile held for `tile`'s place, at any width.
    pub fn hashed(&self, tile: Tile) -> Option<&HashedTile> {
        self.tiles.get(&(tile.level, tile.index))
    }

    fn hash(&self, at: HashIndex) -> Option<Hash> {
        let level = at.level / TILE_HEIGHT;
        let above = u32::from(at.level % TILE_HEIGHT);
        // Hashes of tree level `at.level` per tile: 256 >> above.
        let per_tile = u64::from(TILE_WIDTH) >> above;
        let rows = &self.tiles.get(&(level, at.index / per_tile))?.rows;
        rows.get(above as usize)?
            .get((at.index % per_tile) as usize)
            .copied()
    }
}

impl HashReader for TileHashReader {
    type Error = TileReadError;

    fn read_hashes(&self, indexes: &[HashIndex]) -> Result<Vec<Hash>, TileReadError> {
        indexes
            .iter()
            .map(|&at| self.hash(at).ok_or(TileReadError::Missing(at)))
            .collect()
    }
}

/// A tile's bytes must be exactly `32 · width` long.
fn check_tile_length(tile: Tile, bytes: &[u8]) -> Result<(), TileDataError> {
    let expected = usize::from(tile.width) * HASH_SIZE;
    if bytes.len() != expected {
        return Err(TileDataError {
            tile,
            expected,
            found: bytes.len(),
        });
    }
    Ok(())
}

/// `n >> shift`, 0 once the shift reaches 64.
fn shr(n: u64, shift: u32) -> u64 {
    n.checked_shr(shift).unwrap_or(0)
}

/// Whether a tile whose hashes are tree level `tree_level` (numbered `256·index ..
/// 256·index + width`) fits in a tree of `u64::MAX` leaves, which has `u64::MAX >> tree_level`
/// hashes at that level.
fn fits(tree_level: u32, index: u64, width: u16) -> bool {
    let available = shr(u64::MAX, tree_level);
    index
        .checked_mul(u64::from(TILE_WIDTH))
        .and_then(|first| first.checked_add(u64::from(width)))
        .is_some_and(|end| end <= available)
}

/// `<N>[.p/<W>]`: `N` in zero-padded groups of three digits, `x` before all but the last.
fn index_and_width(index: u64, width: u16) -> String {
    let mut groups = vec![index % 1000];
    let mut rest = index / 1000;
    while rest > 0 {
        groups.push(rest % 1000);
        rest /= 1000;
    }
    let mut out = String::new();
    for (i, group) in groups.iter().enumerate().rev() {
        if i > 0 {
            out.push_str(&format!("x{group:03}/"));
        } else {
            out.push_str(&format!("{group:03}"));
        }
    }
    if width != TILE_WIDTH {
        out.push_str(&format!(".p/{width}"));
    }
    out
}

/// The inverse of [`index_and_width`], canonical spellings only.
fn parse_index_and_width(text: &str) -> Result<(u64, u16), PathError> {
    let (digits, width) = match text.split_once(".p/") {
        Some((digits, width)) => {
            let width = parse_decimal(width, 3).ok_or(PathError("bad partial width"))?;
            if width == 0 || width >= u64::from(TILE_WIDTH) {
                return Err(PathError("partial width outside 1..=255"));
            }
            (digits, width as u16)
        }
        None => (text, TILE_WIDTH),
    };
    let mut groups = digits.split('/').peekable();
    let mut index: u64 = 0;
    let mut first = true;
    while let Some(group) = groups.next() {
        let last = groups.peek().is_none();
        let group = if last {
            group
        } else {
            group
                .strip_prefix('x')
                .ok_or(PathError("an index group other than the last lacks its x"))?
        };
        if group.len() != 3 || !group.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PathError("an index group is not three digits"));
        }
        let value = u64::from(group.parse::<u16>().expect("three ASCII digits"));
        if first && !last && value == 0 {
            return Err(PathError("the index has a leading zero group"));
        }
        first = false;
        index = index
            .checked_mul(1000)
            .and_then(|i| i.checked_add(value))
            .ok_or(PathError("the index does not fit in 64 bits"))?;
    }
    Ok((index, width))
}

/// A decimal of at most `max_digits` ASCII digits with no leading zero (except `0` itself).
fn parse_decimal(text: &str, max_digits: usize) -> Option<u64> {
    let ok = !text.is_empty()
        && text.len() <= max_digits
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    ok.then(|| text.parse().expect("a few ASCII digits"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{leaf_hash, tree_root, Frontier};
    use std::collections::HashMap;

    fn tile(level: u8, index: u64, width: u16) -> Tile {
        Tile::new(level, index, width).unwrap()
    }

    #[test]
    fn paths_print_and_parse_back() {
        for (t, path) in [
            (tile(0, 0, 256), "tile/0/000"),
            (tile(0, 1234067, 256), "tile/0/x001/x234/067"),
            (tile(1, 5, 17), "tile/1/005.p/17"),
            (tile(2, 1000, 1), "tile/2/x001/000.p/1"),
            (tile(0, 999, 255), "tile/0/999.p/255"),
        ] {
            assert_eq!(t.path(), path);
            assert_eq!(parse_path(path), Ok(TilePath::Hashes(t)));
        }
        let bundle = EntryBundle::new(273, 112).unwrap();
        assert_eq!(bundle.path(), "tile/entries/273.p/112");
        assert_eq!(
            parse_path("tile/entries/273.p/112"),
            Ok(TilePath::Entries(bundle))
        );
        let largest = EntryBundle::new((u64::MAX >> 8) - 1, 256).unwrap();
        assert_eq!(largest.path(), "tile/entries/x072/x057/x594/x037/x927/934");
        let widest = "tile/entries/x072/x057/x594/x037/x927/935.p/255";
        assert_eq!(
            parse_path(widest),
            Ok(TilePath::Entries(
                EntryBundle::new(u64::MAX >> 8, 255).unwrap()
            ))
        );
        assert_eq!(widest.len(), 47);
    }

    #[test]
    fn hostile_paths_are_refused() {
        for path in [
            "",
            "tile",
            "tile/",
            "tile/0",
            "tile/0/",
            "/tile/0/000",
            "tile/0/000/",
            "tile//000",
            "tiles/0/000",
            "TILE/0/000",
            "tile/00/000",
            "tile/01/000",
            "tile/-1/000",
            "tile/+1/000",
            "tile/64/000",
            "tile/100/000",
            "tile/8/000.p/1", // level 64 of the tree: no tree of u64 leaves has it
            "tile/7/001",
            "tile/a/000",
            "tile/0/0",
            "tile/0/00",
            "tile/0/0000",
            "tile/0/1",
            "tile/0/x1/000",
            "tile/0/x000/001",
            "tile/0/x001/x000",
            "tile/0/001/002",
            "tile/0/xx01/002",
            "tile/0/x001x/002",
            "tile/0/X001/002",
            "tile/0/x001//002",
            "tile/0/ 01",
            "tile/0/+01",
            "tile/0/-01",
            "tile/0/０００",
            "tile/0/000.p",
            "tile/0/000.p/",
            "tile/0/000.p/0",
            "tile/0/000.p/00",
            "tile/0/000.p/01",
            "tile/0/000.p/256",
            "tile/0/000.p/1000",
            "tile/0/000.p/-1",
            "tile/0/000.p/ 1",
            "tile/0/000.p/1/",
            "tile/0/000.p/1.p/1",
            "tile/0/000.P/1",
            "tile/0/000.p/1?x=1",
            "tile/0/000%2F",
            "tile/0/../000",
            "tile/entries",
            "tile/entries/",
            "tile/entries/0001",
            "tile/entries/x000/001",
            "tile/entries/000.p/256",
            "tile/data/000",
            // 2^64 and beyond.
            "tile/entries/x018/x446/x744/x073/x709/x551/616",
            "tile/0/x999/x999/x999/x999/x999/x999/x999/999",
            "tile/entries/x072/x057/x594/x037/x927/936",
            "tile/0/x001/x001/x001/x001/x001/x001/x001/x001/x001/x001/x001/x001/001",
        ] {
            assert!(parse_path(path).is_err(), "{path:?} was accepted");
        }
        assert!(parse_path(&"tile/0/".repeat(100)).is_err());
        assert_eq!(Tile::new(0, 0, 0), None);
        assert_eq!(Tile::new(0, 0, 257), None);
        assert_eq!(Tile::new(8, 0, 1), None);
    }

    #[test]
    fn a_tree_has_the_tiles_the_spec_lists() {
        // The example of c2sp.org/tlog-tiles: 273 full level-0 tiles, one of width 112, one
        // full level-1 tile, one of width 17, and a level-2 tile of width 1.
        let tiles = tiles_for_size(70_000);
        assert_eq!(tiles.len(), 273 + 1 + 1 + 1 + 1);
        assert_eq!(
            tiles[273..].iter().map(Tile::path).collect::<Vec<_>>(),
            [
                "tile/0/273.p/112",
                "tile/1/000",
                "tile/1/001.p/17",
                "tile/2/000.p/1"
            ]
        );
        assert_eq!(tiles_for_size(256), [tile(0, 0, 256), tile(1, 0, 1)]);
        assert!(tiles_for_size(0).is_empty());
        assert_eq!(new_tiles(256, 256), []);
        assert_eq!(new_tiles(300, 256), []);
        assert_eq!(
            new_tiles(255, 257),
            [tile(0, 0, 256), tile(0, 1, 1), tile(1, 0, 1)]
        );
        // The largest tree: nothing overflows, and its top tile is at level 7.
        assert_eq!(
            new_tiles(u64::MAX - 1, u64::MAX),
            [tile(0, u64::MAX >> 8, 255)]
        );
        assert_eq!(
            Tile::containing(HashIndex::new(56, 254), u64::MAX),
            Some(tile(7, 0, 255))
        );
        assert_eq!(Tile::containing(HashIndex::new(56, 255), u64::MAX), None);
        assert_eq!(Tile::containing(HashIndex::new(63, 1), u64::MAX), None);
        assert_eq!(
            new_bundles(0, 300),
            [
                EntryBundle::new(0, 256).unwrap(),
                EntryBundle::new(1, 44).unwrap()
            ]
        );
    }

    struct Store(HashMap<HashIndex, Hash>);

    impl HashReader for Store {
        type Error = HashIndex;
        fn read_hashes(&self, indexes: &[HashIndex]) -> Result<Vec<Hash>, HashIndex> {
            indexes
                .iter()
                .map(|i| self.0.get(i).copied().ok_or(*i))
                .collect()
        }
    }

    #[test]
    fn tiles_read_from_a_store_answer_every_proof_the_store_does() {
        let mut frontier = Frontier::new();
        let mut store = Store(HashMap::new());
        let size = 256 * 3 + 17;
        for i in 0..size {
            store
                .0
                .extend(frontier.append(leaf_hash(&u64::to_be_bytes(i))));
        }
        let mut reader = TileHashReader::new();
        for t in tiles_for_size(size) {
            let bytes = t.read(&store).unwrap();
            assert_eq!(bytes.len(), usize::from(t.width()) * HASH_SIZE);
            reader.insert(t, &bytes).unwrap();
        }
        for n in [1, 2, 255, 256, 257, 300, 512, 700, size] {
            assert_eq!(
                tree_root(&reader, n).ok(),
                tree_root(&store, n).ok(),
                "size {n}"
            );
            for m in [0, n / 3, n - 1] {
                assert_eq!(
                    crate::merkle::inclusion_proof(&reader, n, m).ok(),
                    crate::merkle::inclusion_proof(&store, n, m).ok()
                );
            }
        }
        // Every stored hash of the tree is either in a tile or computable from one.
        for (&at, &hash) in &store.0 {
            assert_eq!(reader.read_hashes(&[at]), Ok(vec![hash]), "{at:?}");
            let t = Tile::containing(at, size).unwrap();
            assert!(tiles_for_size(size).contains(&t), "{at:?} in {t}");
        }
        assert_eq!(Tile::containing(HashIndex::new(0, size), size), None);
        assert!(reader.read_hashes(&[HashIndex::new(0, size)]).is_err());
        assert!(reader.insert(tile(0, 0, 2), &[0; 63]).is_err());
    }

    #[test]
    fn bundles_encode_and_decode() {
        let entries: Vec<Vec<u8>> = vec![b"".to_vec(), b"a".to_vec(), vec![7; 65535]];
        let bytes = encode_bundle(&entries).unwrap();
        assert_eq!(&bytes[..5], &[0, 0, 0, 1, b'a']);
        let decoded = decode_bundle(&bytes).unwrap();
        assert_eq!(
            decoded,
            entries.iter().map(Vec::as_slice).collect::<Vec<_>>()
        );
        assert_eq!(
            encode_bundle(&[vec![0u8; 65536]]),
            Err(BundleError::EntryTooLong(0))
        );
        assert_eq!(
            encode_bundle(&vec![b"x"; 257]),
            Err(BundleError::TooManyEntries)
        );
        assert_eq!(decode_bundle(&[0]), Err(BundleError::Truncated));
        assert_eq!(decode_bundle(&[0, 2, 1]), Err(BundleError::Truncated));
        assert_eq!(
            decode_bundle(&[0u8; 2 * 257]),
            Err(BundleError::TooManyEntries)
        );
        assert_eq!(decode_bundle(&[]), Ok(vec![]));
    }
}
