//! Each organization's audit log as a transparency log (docs/log-format.md): signed tree
//! checkpoints in C2SP signed-note form, its tiles, and inclusion and consistency proofs, all
//! computed from the store's tiles in O(log n) small reads.
//!
//! A checkpoint is signed only after the store's tree has been shown to extend the previous
//! signed one (a consistency proof from the stored tiles, checked against the old root): if
//! the stored history was rewritten, the service refuses to sign instead of vouching for two
//! inconsistent trees under one origin.

use std::cell::RefCell;

use auditlog_core::merkle::{
    self, consistency_proof, inclusion_proof, tree_root, verify_consistency, Hash, HashIndex,
    HashReader, TreeError,
};
use auditlog_core::note::{Checkpoint, NoteSigner, NoteVerifier};
use auditlog_core::tiles::{parse_path, HashedTile, Tile, TileHashReader, TilePath, TILE_WIDTH};
use auditlog_core::tree;
use auditlog_store::StoreError;
use base64::Engine;
use uuid::Uuid;

use crate::grant::ReadableOrg;
use crate::Service;

/// The key name and origin prefix when a deployment names none: checkpoints' origins are
/// `<log name>/<organization id>`.
pub const DEFAULT_LOG_NAME: &str = "auditlog";

/// Why a transparency-log request could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Nothing there: an unknown event, a tile or size beyond the tree.
    #[error("{0}")]
    NotFound(String),
    /// The request itself is wrong (a malformed tile path, sizes out of order).
    #[error("{0}")]
    Invalid(String),
    /// The stored tree does not match what was signed before, or lacks tiles it must have:
    /// the store was changed behind the service's back.
    #[error("the stored log is inconsistent: {0}")]
    Inconsistent(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A signed checkpoint of an organization's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeCheckpoint {
    /// Leaves in the tree: the organization's events up to `seq` = `size`.
    pub size: u64,
    /// The tree's root.
    pub root: Hash,
    /// The C2SP signed note (checkpoint text, blank line, signature line).
    pub note: String,
}

/// An event's inclusion proof against a signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// The event's leaf index (its `seq` − 1).
    pub index: u64,
    /// The event's leaf hash.
    pub leaf: Hash,
    /// The audit path, bottom up (RFC 9162 §2.1.3).
    pub hashes: Vec<Hash>,
    /// The checkpoint the path leads to.
    pub checkpoint: TreeCheckpoint,
}

impl InclusionProof {
    /// The proof as `c2sp.org/tlog-proof@v1` text: the header, the index, each hash in
    /// base64, a blank line and the signed checkpoint.
    pub fn to_tlog_proof(&self) -> String {
        let mut text = format!("c2sp.org/tlog-proof@v1\nindex {}\n", self.index);
        for hash in &self.hashes {
            text.push_str(&base64_hash(hash));
            text.push('\n');
        }
        text.push('\n');
        text.push_str(&self.checkpoint.note);
        text
    }
}

/// A hash in standard base64, as C2SP formats write them.
pub fn base64_hash(hash: &Hash) -> String {
    base64::engine::general_purpose::STANDARD.encode(hash.as_bytes())
}

/// A [`HashReader`] that only notes which hashes a computation asks for (answering zeros), so
/// that the tiles holding them can be fetched in one store call before computing for real.
#[derive(Default)]
struct Wanted(RefCell<Vec<HashIndex>>);

impl HashReader for Wanted {
    type Error = std::convert::Infallible;

    fn read_hashes(&self, indexes: &[HashIndex]) -> Result<Vec<Hash>, Self::Error> {
        self.0.borrow_mut().extend_from_slice(indexes);
        Ok(vec![Hash([0; 32]); indexes.len()])
    }
}

/// Whether a tree computation may use [`UpperTiles`].
#[derive(Clone, Copy)]
enum Kept {
    /// For proofs.
    Use,
    /// For a root about to be signed: every tile from the store (and kept afresh).
    Bypass,
}

/// How many hashed tiles [`UpperTiles`] keeps: about 16 KiB each, 16 MiB in all.
const MAX_UPPER_TILES: usize = 1024;

/// Hashed tiles above level 0, by organization and tile (width included), shared by every
/// clone of the service. Every proof in a tree needs one tile per level; above level 0 there
/// are 256 times fewer tiles than below, so the same few serve nearly every proof, and a
/// tile of a given width never changes. Keeping them hashed saves a proof two of its three
/// tile reads (at up to 16M events) and two thirds of its hashing. Level-0 tiles are not
/// kept: a random proof rarely needs one twice. Full, the cache starts over.
#[derive(Default)]
pub(crate) struct UpperTiles {
    tiles: std::sync::Mutex<std::collections::HashMap<(Uuid, Tile), HashedTile>>,
}

impl UpperTiles {
    fn get(&self, org_id: Uuid, tile: Tile) -> Option<HashedTile> {
        if tile.level() == 0 {
            return None;
        }
        self.tiles
            .lock()
            .expect("lock")
            .get(&(org_id, tile))
            .cloned()
    }

    fn put(&self, org_id: Uuid, hashed: &HashedTile) {
        let tile = hashed.tile();
        if tile.level() == 0 {
            return;
        }
        let mut tiles = self.tiles.lock().expect("lock");
        if tiles.len() >= MAX_UPPER_TILES {
            tiles.clear();
        }
        tiles.insert((org_id, tile), hashed.clone());
    }
}

impl Service {
    /// The origin line of an organization's checkpoints.
    pub fn log_origin(&self, org_id: Uuid) -> String {
        format!("{}/{org_id}", self.log_name)
    }

    /// The signer of checkpoints: the signing key under the deployment's log name.
    fn note_signer(&self) -> NoteSigner {
        NoteSigner::new(&self.log_name, (*self.signing_key).clone())
            .expect("the log name is checked when the service is composed")
    }

    /// The verifier key of checkpoints, as a C2SP `vkey` (`<name>+<key id>+<base64 key>`).
    pub fn note_verifier(&self) -> NoteVerifier {
        self.note_signer().verifier()
    }

    /// Runs a tree computation (a root or a proof) over the stored tiles of a tree of `size`
    /// leaves: a first pass learns which hashes it needs, one store call fetches their tiles,
    /// and the second pass computes. With `kept`, tiles above level 0 may come hashed from
    /// [`UpperTiles`] instead: for proofs, which a verifier checks against a signed root
    /// anyway, but not for what is about to be signed, which must be what the store holds.
    async fn over_tiles<T, E: std::fmt::Debug>(
        &self,
        org_id: Uuid,
        size: u64,
        kept: Kept,
        compute: impl Fn(&dyn HashReaderDyn) -> Result<T, E>,
    ) -> Result<T, LogError> {
        let wanted = Wanted::default();
        // The first pass reads zeros: only what it asks for matters.
        let _ = compute(&wanted);
        let indexes = wanted.0.into_inner();
        let mut reader = TileHashReader::new();
        let mut missing = Vec::new();
        for tile in tree::tiles_for(&indexes, size) {
            let hashed = match kept {
                Kept::Use => self.upper_tiles.get(org_id, tile),
                Kept::Bypass => None,
            };
            match hashed {
                Some(hashed) => reader.insert_hashed(hashed),
                None => missing.push(tile),
            }
        }
        if !missing.is_empty() {
            let keys: Vec<(u8, u64)> = missing.iter().map(|t| (t.level(), t.index())).collect();
            let stored = self.store.read_tiles(org_id, &keys).await?;
            let read = tree::reader_for(size, &missing, &stored)
                .map_err(|e| LogError::Inconsistent(e.to_string()))?;
            for tile in missing {
                let hashed = read
                    .hashed(tile)
                    .expect("reader_for holds every tile")
                    .clone();
                self.upper_tiles.put(org_id, &hashed);
                reader.insert_hashed(hashed);
            }
        }
        compute(&reader).map_err(|e| LogError::Inconsistent(format!("{e:?}")))
    }

    /// The root of the organization's tree of `size` leaves, from the stored tiles.
    async fn root_of(&self, org_id: Uuid, size: u64) -> Result<Hash, LogError> {
        if size == 0 {
            return Ok(merkle::empty_root());
        }
        self.over_tiles(org_id, size, Kept::Bypass, |reader| {
            tree_root(&Dyn(reader), size)
        })
        .await
    }

    /// The organization's newest signed tree checkpoint, signing one for the current tree
    /// first when the newest does not cover it. Before signing, the stored tree must extend
    /// the previous checkpoint (a consistency proof from the stored tiles verifies against
    /// the signed root); otherwise nothing is signed and the answer is
    /// [`LogError::Inconsistent`].
    pub async fn tree_checkpoint(&self, org: &ReadableOrg) -> Result<TreeCheckpoint, LogError> {
        let org_id = org.id;
        let size = self.store.chain_head(org_id).await?.seq;
        let verifier = self.note_verifier();
        let latest = match self.store.latest_tree_checkpoint(org_id).await? {
            Some((_, note)) => Some(self.open_own(&note, &verifier, org_id)?),
            None => None,
        };
        if let Some(latest) = &latest {
            if latest.size == size {
                return Ok(latest.clone());
            }
            if latest.size > size {
                return Err(LogError::Inconsistent(format!(
                    "a checkpoint of {} events was signed, and the store now holds {size}",
                    latest.size
                )));
            }
        }
        let root = self.root_of(org_id, size).await?;
        if let Some(latest) = latest.as_ref().filter(|latest| latest.size > 0) {
            let proof = self
                .over_tiles(org_id, size, Kept::Bypass, |reader| {
                    consistency_proof(&Dyn(reader), latest.size, size)
                })
                .await?;
            verify_consistency(latest.size, size, &latest.root, &root, &proof).map_err(|e| {
                LogError::Inconsistent(format!(
                    "the tree of {size} events does not extend the signed one of {}: {e}",
                    latest.size
                ))
            })?;
        }
        let note = Checkpoint::new(&self.log_origin(org_id), size, root, &[])
            .and_then(|checkpoint| checkpoint.sign(&[&self.note_signer()]))
            .map_err(|e| LogError::Inconsistent(e.to_string()))?;
        self.store.save_tree_checkpoint(org_id, size, &note).await?;
        // Another replica may have signed this size first; the stored note is the one kept,
        // and for the same key and tree both are the same bytes anyway.
        Ok(TreeCheckpoint { size, root, note })
    }

    /// Opens a checkpoint this service signed, for the organization.
    fn open_own(
        &self,
        note: &str,
        verifier: &NoteVerifier,
        org_id: Uuid,
    ) -> Result<TreeCheckpoint, LogError> {
        let (checkpoint, _) = Checkpoint::open(note.as_bytes(), std::slice::from_ref(verifier))
            .map_err(|e| {
                LogError::Inconsistent(format!("a stored checkpoint does not verify: {e}"))
            })?;
        if checkpoint.origin() != self.log_origin(org_id) {
            return Err(LogError::Inconsistent(format!(
                "a stored checkpoint names the origin {}",
                checkpoint.origin()
            )));
        }
        Ok(TreeCheckpoint {
            size: checkpoint.size(),
            root: checkpoint.root(),
            note: note.to_string(),
        })
    }

    /// One tile of the organization's tree, by its C2SP path (`tile/<L>/<N>[.p/<W>]`): the
    /// bytes of that tile as of any tree that has it. A tile the tree does not have (yet) is
    /// [`LogError::NotFound`]; entry bundles are not served.
    pub async fn tile(&self, org: &ReadableOrg, path: &str) -> Result<Vec<u8>, LogError> {
        let tile = match parse_path(path) {
            Ok(TilePath::Hashes(tile)) => tile,
            Ok(TilePath::Entries(_)) => {
                return Err(LogError::NotFound(
                    "entry bundles are not served: read events through the API".into(),
                ))
            }
            Err(e) => return Err(LogError::Invalid(format!("{path}: {e}"))),
        };
        let size = self.store.chain_head(org.id).await?.seq;
        let shift = u32::from(tile.level()) * 8;
        let hashes_at_level = size.checked_shr(shift).unwrap_or(0);
        let end = tile.index() * u64::from(TILE_WIDTH) + u64::from(tile.width());
        if end > hashes_at_level {
            return Err(LogError::NotFound(format!(
                "the tree of {size} events has no tile {path}"
            )));
        }
        let stored = self
            .store
            .read_tiles(org.id, &[(tile.level(), tile.index())])
            .await?
            .pop()
            .flatten()
            .ok_or_else(|| LogError::Inconsistent(format!("tile {path} is not stored")))?;
        let needed = usize::from(tile.width()) * merkle::HASH_SIZE;
        stored
            .get(..needed)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| LogError::Inconsistent(format!("tile {path} is too short")))
    }

    /// The inclusion proof of one event against the organization's current signed
    /// checkpoint.
    pub async fn inclusion_proof(
        &self,
        org: &ReadableOrg,
        event_id: Uuid,
    ) -> Result<InclusionProof, LogError> {
        let event = self
            .store
            .get_event(org.id, event_id)
            .await?
            .ok_or_else(|| LogError::NotFound(format!("no event {event_id}")))?;
        let checkpoint = self.tree_checkpoint(org).await?;
        let index = event.seq - 1;
        let size = checkpoint.size;
        let hashes = self
            .over_tiles(org.id, size, Kept::Use, |reader| {
                inclusion_proof(&Dyn(reader), size, index)
            })
            .await?;
        let leaf = Hash(auditlog_core::chain::leaf_hash(&event));
        merkle::verify_inclusion(&leaf, index, size, &hashes, &checkpoint.root).map_err(|e| {
            LogError::Inconsistent(format!(
                "event {event_id} is not in the signed tree of {size}: {e}"
            ))
        })?;
        Ok(InclusionProof {
            index,
            leaf,
            hashes,
            checkpoint,
        })
    }

    /// Inclusion proofs of the leaves at `indexes` in the organization's tree of `size`
    /// leaves, in order, from one store call (an export proves a page of events at a time):
    /// each leaf's hash as the tree holds it, and its audit path. The leaf comes from the
    /// level-0 tile the path is read from anyway, so an export need not hash its events
    /// again to give it.
    pub async fn inclusion_proofs(
        &self,
        org_id: Uuid,
        size: u64,
        indexes: &[u64],
    ) -> Result<Vec<(Hash, Vec<Hash>)>, LogError> {
        if indexes.is_empty() {
            return Ok(Vec::new());
        }
        self.over_tiles(org_id, size, Kept::Use, |reader| {
            let reader = Dyn(reader);
            indexes
                .iter()
                .map(|&index| {
                    let path = inclusion_proof(&reader, size, index)?;
                    let leaf = reader
                        .read_hashes(&[HashIndex::new(0, index)])
                        .map_err(TreeError::Read)?;
                    Ok((leaf[0], path))
                })
                .collect::<Result<Vec<_>, TreeError<String>>>()
        })
        .await
    }

    /// The consistency proof from the organization's tree of `old_size` events to that of
    /// `new_size` (`None`: the current signed checkpoint's size), with the checkpoint.
    pub async fn consistency_proof(
        &self,
        org: &ReadableOrg,
        old_size: u64,
        new_size: Option<u64>,
    ) -> Result<(Vec<Hash>, TreeCheckpoint), LogError> {
        let checkpoint = self.tree_checkpoint(org).await?;
        let new_size = new_size.unwrap_or(checkpoint.size);
        if new_size > checkpoint.size {
            return Err(LogError::NotFound(format!(
                "the log holds {} events, fewer than {new_size}",
                checkpoint.size
            )));
        }
        if old_size > new_size {
            return Err(LogError::Invalid(format!(
                "the old size {old_size} is larger than the new size {new_size}"
            )));
        }
        if old_size == 0 {
            return Ok((Vec::new(), checkpoint));
        }
        let hashes = self
            .over_tiles(org.id, new_size, Kept::Use, |reader| {
                consistency_proof(&Dyn(reader), old_size, new_size)
            })
            .await?;
        Ok((hashes, checkpoint))
    }
}

/// [`HashReader`] made object-safe for [`Service::over_tiles`]: both passes hand the same
/// computation a reader, of different types.
trait HashReaderDyn {
    fn read(&self, indexes: &[HashIndex]) -> Result<Vec<Hash>, String>;
}

impl<R: HashReader> HashReaderDyn for R
where
    R::Error: std::fmt::Debug,
{
    fn read(&self, indexes: &[HashIndex]) -> Result<Vec<Hash>, String> {
        self.read_hashes(indexes).map_err(|e| format!("{e:?}"))
    }
}

/// A `&dyn HashReaderDyn` as a [`HashReader`] again.
struct Dyn<'a>(&'a dyn HashReaderDyn);

impl HashReader for Dyn<'_> {
    type Error = String;

    fn read_hashes(&self, indexes: &[HashIndex]) -> Result<Vec<Hash>, String> {
        self.0.read(indexes)
    }
}
