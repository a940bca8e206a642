//! Each organization's Merkle tree in `auditlog.db`: its tiles, grown by the writer in the
//! transaction that stores the events, and its signed checkpoints (`tree_checkpoints`). The
//! tree logic itself is `auditlog_core::tree`'s; this module only reads and writes rows.
//!
//! Each tile is one row of `tiles`, except an organization's partial level-0 tile, which is
//! not stored as such: its hashes are the leaf hashes every `log` row keeps (`leaf`),
//! written with the event, and read back from there. Writing that tile at every commit, even
//! 1 KiB of it, dirtied a page of its own per organization per commit beside the log's
//! appended pages: batches spread over a hundred organizations wrote several times more WAL
//! than their events and took half as long again to commit. The partial tiles of the levels
//! above change once per 256 events of the level below, so rewriting them whole costs little.

use auditlog_core::merkle::Hash;
use auditlog_core::tiles::Tile;
use auditlog_core::tree::RightEdge;
use auditlog_core::{chain, tree};
use auditlog_store::StoreError;
use rusqlite::{params, Connection, OptionalExtension};

use crate::{backend, log_row};

/// Appends `leaves` (in `seq` order) to the tree of the organization `org_key`, which holds
/// `size` leaves, and writes every tile that changed but the partial level-0 one (whose
/// hashes are its events' `leaf`). `kept` is the tree's right edge as the
/// writer keeps it: used when it is of `size` leaves (else the edge is read from the tiles),
/// and left at the grown tree.
pub fn grow(
    conn: &Connection,
    org_key: i64,
    size: u64,
    leaves: &[Hash],
    kept: &mut Option<Box<RightEdge>>,
) -> Result<(), StoreError> {
    if leaves.is_empty() {
        return Ok(());
    }
    let mut right = match kept.take() {
        Some(right) if right.size() == size => right,
        _ => {
            let edge = tree::right_edge(size);
            let keys: Vec<(u8, u64)> = edge.iter().map(|t| (t.level(), t.index())).collect();
            let stored: Vec<(Tile, Vec<u8>)> = edge
                .iter()
                .copied()
                .zip(read_tiles(conn, org_key, &keys)?)
                .filter_map(|(tile, bytes)| bytes.map(|bytes| (tile, bytes)))
                .collect();
            Box::new(
                RightEdge::from_tiles(size, &stored)
                    .map_err(|e| StoreError::Corrupt(format!("organization key {org_key}: {e}")))?,
            )
        }
    };
    let changed = right.grow(leaves);
    *kept = Some(right);
    let mut put = conn
        .prepare_cached(
            "INSERT INTO tiles (org_key, level, idx, hashes) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (org_key, level, idx) DO UPDATE SET hashes = excluded.hashes",
        )
        .map_err(backend)?;
    for (tile, bytes) in changed {
        if tile.level() == 0 && !tile.is_full() {
            continue;
        }
        put.execute(params![org_key, tile.level(), tile.index() as i64, bytes])
            .map_err(backend)?;
    }
    Ok(())
}

/// The stored bytes of each tile asked for, in order (`None` when not stored): its row, or
/// for the partial level-0 tile its events' leaves.
pub fn read_tiles(
    conn: &Connection,
    org_key: i64,
    tiles: &[(u8, u64)],
) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
    let mut stored = conn
        .prepare_cached("SELECT hashes FROM tiles WHERE org_key = ?1 AND level = ?2 AND idx = ?3")
        .map_err(backend)?;
    let mut leaves = conn
        .prepare_cached(
            "SELECT leaf FROM log WHERE org_key = ?1 AND seq > ?2 AND seq <= ?2 + 256
             ORDER BY seq",
        )
        .map_err(backend)?;
    tiles
        .iter()
        .map(|&(level, index)| {
            // An index beyond i64 cannot be stored, so it is simply absent.
            let Ok(index) = i64::try_from(index) else {
                return Ok(None);
            };
            if let Some(bytes) = stored
                .query_row(params![org_key, level, index], |row| {
                    row.get::<_, Vec<u8>>(0)
                })
                .optional()
                .map_err(backend)?
            {
                return Ok(Some(bytes));
            }
            if level != 0 {
                return Ok(None);
            }
            let mut joined: Vec<u8> = Vec::new();
            let mut rows = leaves
                .query(params![org_key, index.saturating_mul(256)])
                .map_err(backend)?;
            while let Some(row) = rows.next().map_err(backend)? {
                let part = row.get_ref(0).map_err(backend)?;
                // A leaf the log lacks (an event stored before the tree) ends the tile there:
                // the reader then finds it too short and says the stored tree is incomplete.
                let Ok(part) = part.as_blob() else {
                    break;
                };
                joined.extend_from_slice(part);
            }
            Ok((!joined.is_empty()).then_some(joined))
        })
        .collect()
}

/// Keeps a signed tree checkpoint; the first note for a size stands.
pub fn save_checkpoint(
    conn: &Connection,
    org_key: i64,
    size: u64,
    note: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT OR IGNORE INTO tree_checkpoints (org_key, size, note) VALUES (?1, ?2, ?3)",
        params![org_key, size as i64, note],
    )
    .map_err(backend)?;
    Ok(())
}

/// The signed tree checkpoint of the largest size kept.
pub fn latest_checkpoint(
    conn: &Connection,
    org_key: i64,
) -> Result<Option<(u64, String)>, StoreError> {
    conn.prepare_cached(
        "SELECT size, note FROM tree_checkpoints WHERE org_key = ?1 ORDER BY size DESC LIMIT 1",
    )
    .and_then(|mut stmt| {
        stmt.query_row([org_key], |row| {
            Ok((row.get::<_, i64>(0)? as u64, row.get(1)?))
        })
        .optional()
    })
    .map_err(backend)
}

/// Events read at a time when a migration builds the trees of events stored before them.
const BACKFILL_CHUNK: i64 = 4096;

/// Builds the tree of every organization from its stored events, for a file whose events
/// were stored before trees were kept (the schema migration that adds `tiles` calls this in
/// its transaction).
pub fn backfill(conn: &Connection) -> Result<(), StoreError> {
    let orgs: Vec<(i64, Vec<u8>)> = conn
        .prepare("SELECT org_key, id FROM orgs ORDER BY org_key")
        .and_then(|mut stmt| {
            stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<Result<_, _>>()
        })
        .map_err(backend)?;
    let mut select = conn
        .prepare(&format!(
            "SELECT {} FROM log l WHERE l.org_key = ?1 AND l.seq > ?2 ORDER BY l.seq LIMIT ?3",
            log_row::COLUMNS
        ))
        .map_err(backend)?;
    for (org_key, id) in orgs {
        let org_id = uuid::Uuid::from_slice(&id)
            .map_err(|_| StoreError::Corrupt(format!("organization key {org_key}: bad id")))?;
        let mut size = 0u64;
        let mut kept = None;
        loop {
            let mut rows = select
                .query(params![org_key, size as i64, BACKFILL_CHUNK])
                .map_err(backend)?;
            let mut leaves = Vec::new();
            while let Some(row) = rows.next().map_err(backend)? {
                let event = log_row::decode(row, org_id)?;
                if event.seq != size + leaves.len() as u64 + 1 {
                    return Err(StoreError::Corrupt(format!(
                        "organization {org_id}: seq {} follows {}",
                        event.seq,
                        size + leaves.len() as u64
                    )));
                }
                leaves.push(Hash(chain::leaf_hash(&event)));
            }
            drop(rows);
            if leaves.is_empty() {
                break;
            }
            grow(conn, org_key, size, &leaves, &mut kept)?;
            // The partial level-0 tile is read from its events' rows: give them their leaves
            // (every chunk's, as the last chunk of an organization is not known before).
            let mut set_leaf = conn
                .prepare_cached("UPDATE log SET leaf = ?3 WHERE org_key = ?1 AND seq = ?2")
                .map_err(backend)?;
            let end = size + leaves.len() as u64;
            let tile_start = end - end % 256;
            for (offset, leaf) in leaves.iter().enumerate() {
                let seq = size + offset as u64 + 1;
                if seq > tile_start {
                    set_leaf
                        .execute(params![org_key, seq as i64, leaf.as_bytes().as_slice()])
                        .map_err(backend)?;
                }
            }
            size = end;
        }
    }
    Ok(())
}
