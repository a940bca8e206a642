//! The RFC 9162 (§2.1) Merkle tree over SHA-256: leaf and node hashes, the roots, inclusion and
//! consistency proofs a store serves from its stored hashes, their verifiers, and the
//! [`Frontier`] an appender keeps so that it never has to read the tree to grow it.
//!
//! A tree of `n` leaves is stored as the hashes of its *complete* subtrees: the hash at
//! [`HashIndex`] `(level, index)` is the Merkle tree hash of leaves
//! `index·2^level .. (index+1)·2^level`, and exists once all of those leaves do. Once written
//! it never changes, which is what lets a store keep it forever and serve tiles from it
//! (`docs/log-format.md`). Every other hash (the root of a tree whose size is not a power of
//! two, the right-hand siblings in a proof) is computed from at most `log2(n)+1` of them, read
//! in one batch through a [`HashReader`].

use sha2::{Digest, Sha256};

/// Size of a hash in bytes.
pub const HASH_SIZE: usize = 32;

/// A SHA-256 hash in the Merkle tree: a leaf hash, a node hash or a root.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; HASH_SIZE]);

impl Hash {
    /// The hash in 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits; `None` for anything else.
    pub fn from_hex(text: &str) -> Option<Hash> {
        let mut out = [0u8; HASH_SIZE];
        hex::decode_to_slice(text, &mut out).ok()?;
        Some(Hash(out))
    }

    /// The hash from a slice of exactly 32 bytes; `None` for any other length.
    pub fn from_slice(bytes: &[u8]) -> Option<Hash> {
        Some(Hash(bytes.try_into().ok()?))
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; HASH_SIZE] {
        &self.0
    }
}

// Hex, because a hash printed as a list of 32 numbers helps nobody reading a test failure.
impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl std::fmt::Display for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// `SHA-256(0x00 ‖ entry)`: the hash of one log entry (RFC 9162 §2.1.1). The prefix keeps a
/// leaf from ever being taken for an interior node.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(entry);
    Hash(hasher.finalize().into())
}

/// `SHA-256(0x01 ‖ left ‖ right)`: the hash of an interior node (RFC 9162 §2.1.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left.0);
    hasher.update(right.0);
    Hash(hasher.finalize().into())
}

/// The root of the empty tree, `SHA-256()` (RFC 9162 §2.1.1). (Go's `sumdb/tlog` answers 32
/// zero bytes for size 0 instead; nothing else differs.)
pub fn empty_root() -> Hash {
    Hash(Sha256::digest([]).into())
}

/// Where a stored hash lives: the root of the complete subtree at `level` (0 = leaf hashes)
/// numbered `index` from the left, covering leaves `index·2^level .. (index+1)·2^level`.
///
/// A store keys its hash table on this pair. The pair is simpler to reason about than Go's
/// single-integer numbering, which [`HashIndex::sequential`] still gives for a store that wants
/// one integer column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HashIndex {
    /// Height of the subtree: 0 for a leaf hash, up to 63.
    pub level: u8,
    /// Position of the subtree among those of its level, from the left.
    pub index: u64,
}

impl HashIndex {
    /// The hash at `level`, `index`.
    pub fn new(level: u8, index: u64) -> HashIndex {
        HashIndex { level, index }
    }

    /// The position of this hash in the order an appender writes them (leaf 0; leaf 1 and
    /// node (1, 0); leaf 2; …), which is Go's `tlog.StoredHashIndex`. `None` when that number
    /// does not fit in 64 bits.
    pub fn sequential(self) -> Option<u64> {
        // The hash (level, index) is written right after leaf (index+1)·2^level − 1, whose
        // hashes are preceded by those of all earlier leaves: leaf k writes 1 + (trailing
        // ones of k) hashes, so leaves 0..m write Σ_{j≥0} ⌊m/2^j⌋ hashes in all.
        let mut last_leaf = self.index;
        for _ in 0..self.level {
            last_leaf = last_leaf.checked_mul(2)?.checked_add(1)?;
        }
        let mut before = 0u64;
        let mut m = last_leaf;
        while m > 0 {
            before = before.checked_add(m)?;
            m >>= 1;
        }
        before.checked_add(u64::from(self.level))
    }
}

/// Reads stored hashes, as a store (or a verifier holding tiles) keeps them.
///
/// Proofs and roots ask for all the hashes they need in one call, so that a database answers
/// them with one query of O(log n) keys.
pub trait HashReader {
    /// Why a read failed (the store's own error).
    type Error;

    /// The hashes at `indexes`, in the same order. Every index asked for names a complete
    /// subtree of the tree being read; a reader that cannot answer one returns an error rather
    /// than a made-up hash.
    fn read_hashes(&self, indexes: &[HashIndex]) -> Result<Vec<Hash>, Self::Error>;
}

/// Why a root, proof or tile could not be computed from stored hashes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError<E> {
    /// The arguments name a leaf or tree the request cannot cover (`index` ≥ size, an old size
    /// of 0 or beyond the new one).
    #[error("{0}")]
    OutOfRange(&'static str),
    /// The reader failed.
    #[error("reading stored hashes failed")]
    Read(#[source] E),
    /// The reader answered a different number of hashes than it was asked for.
    #[error("the hash reader returned {returned} hashes for {asked} indexes")]
    WrongCount {
        /// How many hashes were asked for.
        asked: usize,
        /// How many came back.
        returned: usize,
    },
}

/// Why a proof was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The sizes or index cannot form a proof (`index` ≥ size, old size 0 or above the new).
    #[error("{0}")]
    OutOfRange(&'static str),
    /// The proof has the wrong number of hashes for these sizes.
    #[error("the proof has the wrong length for this tree")]
    WrongLength,
    /// The proof does not lead to the expected root(s).
    #[error("the proof does not match the root hash")]
    Mismatch,
}

/// The root of the tree of the first `size` leaves, from at most `log2(size)+1` stored hashes.
pub fn tree_root<R: HashReader>(reader: &R, size: u64) -> Result<Hash, TreeError<R::Error>> {
    Ok(Frontier::read(reader, size)?.root())
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves (RFC 9162 §2.1.3.1): the
/// sibling hashes from the leaf up to the root, lowest first.
pub fn inclusion_proof<R: HashReader>(
    reader: &R,
    size: u64,
    index: u64,
) -> Result<Vec<Hash>, TreeError<R::Error>> {
    if index >= size {
        return Err(TreeError::OutOfRange(
            "the leaf index is not below the tree size",
        ));
    }
    // PATH(m, D[lo:hi]) walks down from the whole tree: at each step the leaf lies in one half,
    // and the other half's hash is a proof element. Collected top-down, emitted bottom-up.
    let mut ranges = Vec::new();
    let (mut lo, mut hi) = (0u64, size);
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index < lo + k {
            ranges.push((lo + k, hi));
            hi = lo + k;
        } else {
            ranges.push((lo, lo + k));
            lo += k;
        }
    }
    ranges.reverse();
    range_hashes(reader, &ranges)
}

/// The consistency proof from the tree of `old_size` leaves to the tree of `new_size` leaves
/// (RFC 9162 §2.1.4.1). Empty when the sizes are equal; `old_size` must be at least 1.
pub fn consistency_proof<R: HashReader>(
    reader: &R,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, TreeError<R::Error>> {
    if old_size == 0 || old_size > new_size {
        return Err(TreeError::OutOfRange(
            "a consistency proof needs 0 < old size <= new size",
        ));
    }
    // SUBPROOF(m, D[lo:hi], b), unrolled: `whole_old` is b, true while D[lo:hi] still starts
    // where the old tree starts, so that the old tree's root is known to the verifier.
    let mut ranges = Vec::new();
    let (mut lo, mut hi, mut m) = (0u64, new_size, old_size);
    let mut whole_old = true;
    loop {
        if m == hi - lo {
            if !whole_old {
                ranges.push((lo, hi));
            }
            break;
        }
        let k = split_point(hi - lo);
        if m <= k {
            ranges.push((lo + k, hi));
            hi = lo + k;
        } else {
            ranges.push((lo, lo + k));
            lo += k;
            m -= k;
            whole_old = false;
        }
    }
    ranges.reverse();
    range_hashes(reader, &ranges)
}

/// Checks that `leaf` is leaf `index` of the tree of `size` leaves whose root is `root`, with
/// the algorithm of RFC 9162 §2.1.3.2, step by step.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if root_from_inclusion(leaf, index, size, proof)? != *root {
        return Err(ProofError::Mismatch);
    }
    Ok(())
}

/// The root that an inclusion proof leads to from `leaf` at `index` in a tree of `size`
/// leaves (RFC 9162 §2.1.3.2 without the final comparison): a verifier that meets many
/// proofs before the signed root can compare the roots they give as it goes.
pub fn root_from_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::OutOfRange(
            "the leaf index is not below the tree size",
        ));
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
                // The node is the last of its level and has no right sibling: climb until it
                // is a right child again (or the root of the left edge).
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    Ok(r)
}

/// Checks that the tree of `old_size` leaves with root `old_root` is a prefix of the tree of
/// `new_size` leaves with root `new_root`, with the algorithm of RFC 9162 §2.1.4.2, step by
/// step. Equal sizes need an empty proof and equal roots (the RFC's algorithm covers only
/// `old_size < new_size`).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size == 0 || old_size > new_size {
        return Err(ProofError::OutOfRange(
            "a consistency proof needs 0 < old size <= new size",
        ));
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::Mismatch)
        };
    }
    // Step 1.
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    // Step 2: when the old tree is a complete subtree the proof omits its root, which the
    // verifier already has.
    let prepended = old_size.is_power_of_two().then_some(old_root);
    let mut path = prepended.into_iter().chain(proof);
    // Step 3.
    let (mut f, mut s) = (old_size - 1, new_size - 1);
    // Step 4.
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    // Step 5.
    let first = *path.next().expect("the path holds at least one hash");
    let (mut fr, mut sr) = (first, first);
    // Step 6.
    for c in path {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    // Step 7.
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr != *old_root || sr != *new_root {
        return Err(ProofError::Mismatch);
    }
    Ok(())
}

/// The right edge of a tree: the roots of the complete subtrees its leaves split into, largest
/// (leftmost) first — one per bit set in the size, so at most 64 and usually `log2(n)+1`.
///
/// An appender keeps one in memory: [`Frontier::append`] gives the hashes to store for each new
/// leaf without reading anything, and [`Frontier::root`] the root to sign.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Frontier {
    size: u64,
    hashes: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// The frontier of a tree of `size` leaves from its subtree roots, largest first (as
    /// [`Frontier::hashes`] gives them). `None` when there are not exactly as many hashes as
    /// bits set in `size`.
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Option<Frontier> {
        (hashes.len() == size.count_ones() as usize).then_some(Frontier { size, hashes })
    }

    /// Where the subtree roots of a tree of `size` leaves are stored, largest first.
    pub fn indexes(size: u64) -> Vec<HashIndex> {
        complete_subtrees(0, size)
    }

    /// The frontier of the tree of the first `size` leaves, read in one batch.
    pub fn read<R: HashReader>(reader: &R, size: u64) -> Result<Frontier, TreeError<R::Error>> {
        let indexes = Frontier::indexes(size);
        let hashes = read_exact(reader, &indexes)?;
        Ok(Frontier { size, hashes })
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The subtree roots, largest (leftmost) first.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Adds a leaf (its [`leaf_hash`]) and returns every hash the tree gained: the leaf's own at
    /// level 0, then each subtree it completed, lowest level first. A store persists exactly
    /// these to keep every complete subtree's hash (in [`HashIndex::sequential`] order).
    ///
    /// # Panics
    /// When the tree already holds `u64::MAX` leaves.
    pub fn append(&mut self, leaf: Hash) -> Vec<(HashIndex, Hash)> {
        let position = self.size;
        self.size = position
            .checked_add(1)
            .expect("a tree holds at most u64::MAX leaves");
        let mut created = vec![(HashIndex::new(0, position), leaf)];
        self.hashes.push(leaf);
        // Each trailing one bit of the old size is a subtree of that height waiting for a right
        // neighbour of the same height, which the new leaf has just completed.
        for level in 1..=position.trailing_ones() {
            let right = self.hashes.pop().expect("one subtree per set bit");
            let left = self.hashes.pop().expect("one subtree per set bit");
            let parent = node_hash(&left, &right);
            created.push((HashIndex::new(level as u8, position >> level), parent));
            self.hashes.push(parent);
        }
        created
    }

    /// The root of the tree (RFC 9162 §2.1.1): the subtree roots folded from the right.
    pub fn root(&self) -> Hash {
        fold_right(&self.hashes).unwrap_or_else(empty_root)
    }
}

/// The largest power of two strictly below `n` (RFC 9162's `k`), for `n` ≥ 2.
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// The complete subtrees that make up leaves `lo..hi`, largest first. `lo` must be a multiple
/// of the power of two at or above `hi - lo`, which every range RFC 9162's recursion produces
/// is: then each subtree is aligned and stored.
fn complete_subtrees(lo: u64, hi: u64) -> Vec<HashIndex> {
    let mut out = Vec::new();
    let mut position = lo;
    let count = hi - lo;
    for level in (0..64u8).rev() {
        if count & (1 << level) != 0 {
            debug_assert_eq!(position % (1 << level), 0, "the range is aligned");
            out.push(HashIndex::new(level, position >> level));
            position += 1 << level;
        }
    }
    out
}

/// The Merkle tree hash of a sequence of subtree roots, largest first: `None` when empty.
fn fold_right(hashes: &[Hash]) -> Option<Hash> {
    let (last, rest) = hashes.split_last()?;
    Some(
        rest.iter()
            .rev()
            .fold(*last, |acc, left| node_hash(left, &acc)),
    )
}

/// The Merkle tree hash of each range of leaves, read in one batch.
fn range_hashes<R: HashReader>(
    reader: &R,
    ranges: &[(u64, u64)],
) -> Result<Vec<Hash>, TreeError<R::Error>> {
    let plans: Vec<Vec<HashIndex>> = ranges
        .iter()
        .map(|&(lo, hi)| complete_subtrees(lo, hi))
        .collect();
    let all: Vec<HashIndex> = plans.iter().flatten().copied().collect();
    let hashes = read_exact(reader, &all)?;
    let mut rest = hashes.as_slice();
    let mut out = Vec::with_capacity(plans.len());
    for plan in &plans {
        let (these, after) = rest.split_at(plan.len());
        out.push(fold_right(these).expect("every range is non-empty"));
        rest = after;
    }
    Ok(out)
}

/// Reads `indexes`, insisting on one hash for each.
pub(crate) fn read_exact<R: HashReader>(
    reader: &R,
    indexes: &[HashIndex],
) -> Result<Vec<Hash>, TreeError<R::Error>> {
    if indexes.is_empty() {
        return Ok(Vec::new());
    }
    let hashes = reader.read_hashes(indexes).map_err(TreeError::Read)?;
    if hashes.len() != indexes.len() {
        return Err(TreeError::WrongCount {
            asked: indexes.len(),
            returned: hashes.len(),
        });
    }
    Ok(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A tree in memory, grown through a frontier as a store would grow it.
    struct MemoryTree {
        stored: HashMap<HashIndex, Hash>,
        frontier: Frontier,
    }

    impl MemoryTree {
        fn with_leaves(n: u64) -> MemoryTree {
            let mut tree = MemoryTree {
                stored: HashMap::new(),
                frontier: Frontier::new(),
            };
            for i in 0..n {
                let created = tree.frontier.append(leaf_hash(&i.to_be_bytes()));
                tree.stored.extend(created);
            }
            tree
        }
    }

    impl HashReader for MemoryTree {
        type Error = HashIndex;
        fn read_hashes(&self, indexes: &[HashIndex]) -> Result<Vec<Hash>, HashIndex> {
            indexes
                .iter()
                .map(|i| self.stored.get(i).copied().ok_or(*i))
                .collect()
        }
    }

    /// MTH straight from RFC 9162's recursive definition, to check everything else against.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    fn flip(hash: &Hash, byte: usize) -> Hash {
        let mut out = *hash;
        out.0[byte % HASH_SIZE] ^= 0x01;
        out
    }

    #[test]
    fn roots_match_the_recursive_definition() {
        let tree = MemoryTree::with_leaves(300);
        let leaves: Vec<Hash> = (0..300u64).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        assert_eq!(tree_root(&tree, 0).unwrap(), empty_root());
        for n in 1..=300u64 {
            let expected = reference_root(&leaves[..n as usize]);
            assert_eq!(tree_root(&tree, n).unwrap(), expected, "size {n}");
        }
        assert_eq!(tree.frontier.root(), reference_root(&leaves));
        assert_eq!(
            empty_root().to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn a_frontier_stores_every_complete_subtree_once() {
        let tree = MemoryTree::with_leaves(300);
        // Leaves plus one node per completed pair at every level: n - popcount(n) nodes.
        assert_eq!(
            tree.stored.len() as u64,
            300 + 300 - 300u64.count_ones() as u64
        );
        let read = Frontier::read(&tree, 300).unwrap();
        assert_eq!(read, tree.frontier);
        assert_eq!(
            Frontier::from_parts(300, read.hashes().to_vec()),
            Some(read)
        );
        assert_eq!(Frontier::from_parts(300, vec![]), None);
    }

    #[test]
    fn sequential_indexes_follow_the_append_order() {
        let mut frontier = Frontier::new();
        let mut next = 0u64;
        for i in 0..1000u64 {
            for (index, _) in frontier.append(leaf_hash(&i.to_be_bytes())) {
                assert_eq!(index.sequential(), Some(next), "{index:?}");
                next += 1;
            }
        }
        assert_eq!(HashIndex::new(63, u64::MAX).sequential(), None);
    }

    #[test]
    fn every_inclusion_proof_up_to_200_verifies_and_no_tampered_one_does() {
        let tree = MemoryTree::with_leaves(200);
        for n in 1..=200u64 {
            let root = tree_root(&tree, n).unwrap();
            for m in 0..n {
                let leaf = leaf_hash(&m.to_be_bytes());
                let proof = inclusion_proof(&tree, n, m).unwrap();
                assert!(proof.len() <= 64 - (n - 1).leading_zeros() as usize);
                assert_eq!(
                    verify_inclusion(&leaf, m, n, &proof, &root),
                    Ok(()),
                    "{m} in {n}"
                );

                assert!(verify_inclusion(&flip(&leaf, m as usize), m, n, &proof, &root).is_err());
                assert!(verify_inclusion(&leaf, m, n, &proof, &flip(&root, 3)).is_err());
                for i in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[i] = flip(&bad[i], i + m as usize);
                    assert!(verify_inclusion(&leaf, m, n, &bad, &root).is_err());
                }
                let mut longer = proof.clone();
                longer.push(root);
                assert!(verify_inclusion(&leaf, m, n, &longer, &root).is_err());
                if !proof.is_empty() {
                    let shorter = &proof[..proof.len() - 1];
                    assert!(verify_inclusion(&leaf, m, n, shorter, &root).is_err());
                }
                if n > 1 {
                    // The same proof does not place the leaf elsewhere.
                    let other = (m + 1) % n;
                    assert!(verify_inclusion(&leaf, other, n, &proof, &root).is_err());
                }
            }
            assert!(inclusion_proof(&tree, n, n).is_err());
            assert!(verify_inclusion(&root, n, n, &[], &root).is_err());
        }
    }

    #[test]
    fn every_consistency_proof_up_to_200_verifies_and_no_tampered_one_does() {
        let tree = MemoryTree::with_leaves(200);
        let roots: Vec<Hash> = (0..=200u64).map(|n| tree_root(&tree, n).unwrap()).collect();
        for n in 1..=200u64 {
            for m in 1..=n {
                let (old, new) = (&roots[m as usize], &roots[n as usize]);
                let proof = consistency_proof(&tree, m, n).unwrap();
                assert_eq!(
                    verify_consistency(m, n, old, new, &proof),
                    Ok(()),
                    "{m} to {n}"
                );
                if m == n {
                    assert!(proof.is_empty());
                }

                assert!(verify_consistency(m, n, &flip(old, 1), new, &proof).is_err());
                assert!(verify_consistency(m, n, old, &flip(new, 2), &proof).is_err());
                for i in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[i] = flip(&bad[i], i);
                    assert!(verify_consistency(m, n, old, new, &bad).is_err());
                }
                let mut longer = proof.clone();
                longer.push(*new);
                assert!(verify_consistency(m, n, old, new, &longer).is_err());
                if !proof.is_empty() {
                    let shorter = &proof[..proof.len() - 1];
                    assert!(verify_consistency(m, n, old, new, shorter).is_err());
                }
                if m < n {
                    // Another old tree is not consistent with the new one under this proof.
                    let other = &roots[(m % n + 1) as usize];
                    if other != old {
                        assert!(verify_consistency(m, n, other, new, &proof).is_err());
                    }
                }
            }
            assert!(consistency_proof(&tree, 0, n).is_err());
            assert!(consistency_proof(&tree, n + 1, n).is_err());
            assert!(verify_consistency(0, n, &roots[0], &roots[n as usize], &[]).is_err());
        }
    }

    #[test]
    fn a_reader_that_fails_or_answers_short_is_an_error() {
        struct Short;
        impl HashReader for Short {
            type Error = ();
            fn read_hashes(&self, _: &[HashIndex]) -> Result<Vec<Hash>, ()> {
                Ok(vec![Hash::default()])
            }
        }
        assert_eq!(
            tree_root(&Short, 3),
            Err(TreeError::WrongCount {
                asked: 2,
                returned: 1
            })
        );
        let empty = MemoryTree::with_leaves(0);
        assert_eq!(
            tree_root(&empty, 1),
            Err(TreeError::Read(HashIndex::new(0, 0)))
        );
    }

    #[test]
    fn hashes_parse_and_print_as_hex() {
        let hash = leaf_hash(b"");
        assert_eq!(Hash::from_hex(&hash.to_hex()), Some(hash));
        assert_eq!(Hash::from_hex("00"), None);
        assert_eq!(Hash::from_slice(&[0; 31]), None);
        assert_eq!(format!("{hash}"), hash.to_hex());
    }
}
