// verify.go checks what auditlog's transparency-log endpoints served with an independent
// implementation: Go's reference golang.org/x/mod/sumdb/note (signed notes) and
// golang.org/x/mod/sumdb/tlog (RFC 9162 trees, proofs and tiles). It is test code of ours, not
// part of the service. The Rust integration test crates/auditlog-server/tests/it/interop.rs
// starts a server, fetches what a tlog client would, writes it into a directory exactly as it
// was served, and runs, offline, against Debian's packages golang-go and
// golang-golang-x-mod-dev (GOPATH mode finds the package under /usr/share/gocode/src):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=<a temporary directory> go run verify.go <dir>
//
// The directory holds:
//
//	vkey                          GET /api/log/vkey
//	a/checkpoint, b/checkpoint    GET /api/log/{org}/checkpoint, at tree sizes A < B
//	a/tile/..., b/tile/...        every tile of that tree, under the path it was served at
//	a/proof/<id>.json             GET /api/log/{org}/proof/<id> while the tree was that size
//	a/proof/<id>.tlog-proof       the same with ?format=tlog-proof
//	(and the same under b/)
//	consistency.json              GET /api/log/{org}/consistency?old=A, answered at size B
//
// For each tree it checks: the checkpoint opens with note.Open and the verifier key, and its
// text is a C2SP checkpoint (origin, size, root); the served tile set is the one tlog.NewTiles
// gives; tlog.TreeHash over tlog.TileHashReader gives the signed root; the leaf hashes read
// through it alone rebuild that root (Debian's tlog.TileHashReader does not authenticate every
// tile it reads: see authenticatedLeaves), and every served tile is byte for byte what
// tlog.ReadTileData computes from them; each inclusion proof passes tlog.CheckRecord, its leaf
// hash is the tiles', its hashes are the ones tlog.ProveRecord gives, and its tlog-proof text
// says the same. Between the trees: tlog.CheckTree accepts the consistency proof and its hashes
// are tlog.ProveTree's. Then it checks that tampered copies fail: one byte flipped in each
// tile, in each proof's hash and leaf hash, in each checkpoint's signature and text, in the
// consistency proof and the old root.
//
// It prints what it checked, ending with one summary line:
//
//	checked: checkpoints=2 tiles=T leaves=L inclusion=I tlog_proofs=I consistency=1 tampered=X
//
// and exits 1 on any failure, each named on a "FAIL:" line.
//
// A second mode checks a JSON Lines export (GET …/export/{id}/download, or `auditlog export`)
// as someone holding only the file and the verifier key would, with the same packages:
//
//	go run verify.go export <file.jsonl> <vkey file>
//
// The file's tree checkpoint (its last line) must open with note.Open, and every event's
// inclusion proof must pass tlog.CheckRecord against it with the leaf hash and index the
// event carries, its index being seq − 1 and its tree the checkpoint's. The file is read
// twice, a line at a time, so an export of millions of events is checked in bounded memory.
// Tampered copies of the first, middle and last event's proof (a proof hash, the leaf hash,
// the leaf index) and of the checkpoint must fail. It ends with:
//
//	checked: export events=E tampered=X
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// tileHeight is C2SP tlog-tiles' fixed tile height: 256 hashes.
const tileHeight = 8

var failures int

func fail(format string, args ...interface{}) {
	failures++
	fmt.Printf("FAIL: "+format+"\n", args...)
}

func main() {
	if len(os.Args) == 4 && os.Args[1] == "export" {
		checkExport(os.Args[2], os.Args[3])
		finish()
	}
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run verify.go <dir>\n       go run verify.go export <file.jsonl> <vkey file>")
		os.Exit(2)
	}
	dir := os.Args[1]
	var counts struct{ checkpoints, tiles, leaves, inclusion, tlogProofs, consistency, tampered int }

	vkey := strings.TrimSuffix(string(mustRead(filepath.Join(dir, "vkey"))), "\n")
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		fail("vkey %q: %v", vkey, err)
		finish()
	}
	fmt.Printf("vkey: key %s+%08x\n", verifier.Name(), verifier.KeyHash())

	trees := map[string]checkpoint{}
	memories := map[string]memoryHashes{}
	for _, name := range []string{"a", "b"} {
		treeDir := filepath.Join(dir, name)
		cp, err := openCheckpoint(mustRead(filepath.Join(treeDir, "checkpoint")), verifier)
		if err != nil {
			fail("%s/checkpoint: %v", name, err)
			continue
		}
		counts.checkpoints++
		trees[name] = cp
		fmt.Printf("%s: origin %s, size %d, root %s\n", name, cp.origin, cp.tree.N, cp.tree.Hash)
		counts.tampered += tamperNote(name, cp.raw, verifier)

		memory, nTiles, nTampered := checkTiles(name, treeDir, cp)
		memories[name] = memory
		counts.tiles += nTiles
		if memory != nil {
			counts.leaves += int(cp.tree.N)
		}
		counts.tampered += nTampered
		if memory == nil {
			continue
		}
		nProofs, nTampered := checkInclusionProofs(name, treeDir, cp, memory, verifier)
		counts.inclusion += nProofs
		counts.tlogProofs += nProofs
		counts.tampered += nTampered
	}
	if a, b := trees["a"], trees["b"]; a.raw != nil && b.raw != nil {
		if a.origin != b.origin {
			fail("the checkpoints' origins differ: %q and %q", a.origin, b.origin)
		}
		nTampered, ok := checkConsistency(filepath.Join(dir, "consistency.json"), a, b, memories["b"], verifier)
		if ok {
			counts.consistency++
		}
		counts.tampered += nTampered
	}

	fmt.Printf("checked: checkpoints=%d tiles=%d leaves=%d inclusion=%d tlog_proofs=%d consistency=%d tampered=%d\n",
		counts.checkpoints, counts.tiles, counts.leaves, counts.inclusion, counts.tlogProofs, counts.consistency, counts.tampered)
	finish()
}

func finish() {
	if failures > 0 {
		fmt.Printf("%d checks failed\n", failures)
		os.Exit(1)
	}
	fmt.Println("all checks passed")
	os.Exit(0)
}

func mustRead(path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
		finish()
	}
	return data
}

// A checkpoint is a signed note that opened, and what its text says.
type checkpoint struct {
	raw    []byte
	origin string
	tree   tlog.Tree
}

// openCheckpoint opens a C2SP checkpoint note with the one verifier. Its text is
// "<origin>\n<size>\n<root>\n"; sumdb's tree note has the same last two lines after a fixed
// first line, so tlog.ParseTree parses those once the origin line is swapped for sumdb's.
func openCheckpoint(raw []byte, verifier note.Verifier) (checkpoint, error) {
	n, err := note.Open(raw, note.VerifierList(verifier))
	if err != nil {
		return checkpoint{}, fmt.Errorf("note.Open: %w", err)
	}
	if len(n.Sigs) != 1 || len(n.UnverifiedSigs) != 0 {
		return checkpoint{}, fmt.Errorf("want one verified signature, got %d (and %d unverified)", len(n.Sigs), len(n.UnverifiedSigs))
	}
	origin, rest, ok := strings.Cut(n.Text, "\n")
	if !ok || origin == "" {
		return checkpoint{}, fmt.Errorf("no origin line in %q", n.Text)
	}
	tree, err := tlog.ParseTree([]byte("go.sum database tree\n" + rest))
	if err != nil {
		return checkpoint{}, fmt.Errorf("tlog.ParseTree(%q): %w", rest, err)
	}
	// ParseTree ignores extension lines and accepts any base64 Go decodes; ours has none, and
	// the root must be spelled canonically.
	if want := fmt.Sprintf("%s\n%d\n%s\n", origin, tree.N, tree.Hash); n.Text != want {
		return checkpoint{}, fmt.Errorf("text %q is not the canonical %q", n.Text, want)
	}
	return checkpoint{raw: raw, origin: origin, tree: tree}, nil
}

// tamperNote checks that a flipped bit in the Ed25519 signature, and a changed tree size in
// the text, make note.Open refuse the checkpoint.
func tamperNote(name string, raw []byte, verifier note.Verifier) int {
	tampered := 0
	// The signature line: "— <name> <base64(key hash ‖ signature)>".
	split := bytes.LastIndex(raw, []byte("\n\n"))
	line := strings.TrimSuffix(string(raw[split+2:]), "\n")
	space := strings.LastIndex(line, " ")
	sig, err := base64.StdEncoding.DecodeString(line[space+1:])
	if err != nil || len(sig) != 4+64 {
		fail("%s/checkpoint: signature %q is not base64 of a key hash and an Ed25519 signature", name, line)
		return 0
	}
	sig[4+10] ^= 0x01
	forged := string(raw[:split+2]) + line[:space+1] + base64.StdEncoding.EncodeToString(sig) + "\n"
	var invalid *note.InvalidSignatureError
	if _, err := note.Open([]byte(forged), note.VerifierList(verifier)); !errors.As(err, &invalid) {
		fail("%s/checkpoint: a flipped signature bit opened (err %v)", name, err)
	} else {
		tampered++
	}
	lines := strings.SplitN(string(raw), "\n", 3)
	size, _ := strconv.ParseInt(lines[1], 10, 64)
	changed := lines[0] + "\n" + strconv.FormatInt(size+1, 10) + "\n" + lines[2]
	if _, err := note.Open([]byte(changed), note.VerifierList(verifier)); !errors.As(err, &invalid) {
		fail("%s/checkpoint: a changed tree size opened (err %v)", name, err)
	} else {
		tampered++
	}
	return tampered
}

// servedTiles is a tlog.TileReader over the tiles as served, read from a directory, with some
// replaced to tamper with them. Go's tile paths carry the height ("tile/8/L/N"); C2SP
// tlog-tiles fixes it at 8 and leaves it out ("tile/L/N").
type servedTiles struct {
	dir      string
	replaced map[string][]byte
}

func servedPath(t tlog.Tile) string {
	return "tile/" + strings.TrimPrefix(t.Path(), fmt.Sprintf("tile/%d/", tileHeight))
}

func (r servedTiles) Height() int { return tileHeight }

func (r servedTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	data := make([][]byte, len(tiles))
	for i, t := range tiles {
		if replaced, ok := r.replaced[servedPath(t)]; ok {
			data[i] = replaced
			continue
		}
		served, err := os.ReadFile(filepath.Join(r.dir, filepath.FromSlash(servedPath(t))))
		if err != nil {
			return nil, err
		}
		data[i] = served
	}
	return data, nil
}

func (r servedTiles) SaveTiles([]tlog.Tile, [][]byte) {}

// memoryHashes is every stored hash of a tree, in tlog.StoredHashIndex order.
type memoryHashes []tlog.Hash

func (m memoryHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(m)) {
			return nil, fmt.Errorf("hash %d is not stored", x)
		}
		out[i] = m[x]
	}
	return out, nil
}

// fromLeaves stores a tree grown leaf by leaf, as tlog's own appender does.
func fromLeaves(leaves []tlog.Hash) (memoryHashes, error) {
	var memory memoryHashes
	for i, leaf := range leaves {
		hashes, err := tlog.StoredHashesForRecordHash(int64(i), leaf, memory)
		if err != nil {
			return nil, err
		}
		memory = append(memory, hashes...)
	}
	return memory, nil
}

// authenticatedLeaves reads every leaf hash of the tree through tlog.TileHashReader, which is
// meant to authenticate each tile it reads against the signed root (the top tiles directly,
// the full tiles below them through their parents), and recomputes the root with
// tlog.TreeHash.
//
// In Debian's x/mod 0.7.0 it does not check every child tile against its parent: the loop
// that does starts at len(stx), the number of root subtree hashes, not the number of tiles
// they come from, so a wrong full level-0 tile under a partial level-1 tile gets through.
// (x/mod v0.40.0 is reported to fix a tile verification bypass, go.dev/issue/80744.) So
// readTree does not rely on it alone.
func authenticatedLeaves(cp checkpoint, tiles tlog.TileReader) ([]tlog.Hash, error) {
	reader := tlog.TileHashReader(cp.tree, tiles)
	root, err := tlog.TreeHash(cp.tree.N, reader)
	if err != nil {
		return nil, fmt.Errorf("tlog.TreeHash over the tiles: %w", err)
	}
	if root != cp.tree.Hash {
		return nil, fmt.Errorf("tlog.TreeHash over the tiles is %s, the checkpoint says %s", root, cp.tree.Hash)
	}
	indexes := make([]int64, cp.tree.N)
	for i := range indexes {
		indexes[i] = tlog.StoredHashIndex(0, int64(i))
	}
	leaves, err := reader.ReadHashes(indexes)
	if err != nil {
		return nil, fmt.Errorf("reading the leaf hashes from the tiles: %w", err)
	}
	return leaves, nil
}

// readTree reads the tree from its tiles and checks every one: the leaf hashes read through
// tlog.TileHashReader, the tree rebuilt from them alone leaf by leaf gives the signed root, and
// each tile is byte for byte what tlog.ReadTileData computes from the rebuilt tree. It returns
// the rebuilt tree's stored hashes.
func readTree(cp checkpoint, tiles servedTiles, want []tlog.Tile) (memoryHashes, error) {
	leaves, err := authenticatedLeaves(cp, tiles)
	if err != nil {
		return nil, err
	}
	memory, err := fromLeaves(leaves)
	if err != nil {
		return nil, err
	}
	if root, err := tlog.TreeHash(cp.tree.N, memory); err != nil || root != cp.tree.Hash {
		return nil, fmt.Errorf("the root rebuilt from the leaf hashes is %s (%v), the checkpoint says %s", root, err, cp.tree.Hash)
	}
	for _, t := range want {
		served, err := tiles.ReadTiles([]tlog.Tile{t})
		if err != nil {
			return nil, err
		}
		computed, err := tlog.ReadTileData(t, memory)
		if err != nil || !bytes.Equal(served[0], computed) {
			return nil, fmt.Errorf("tile %s differs from tlog.ReadTileData over the leaves (%v)", servedPath(t), err)
		}
	}
	return memory, nil
}

// checkTiles checks the tree's tiles and returns its stored hashes rebuilt from the leaves
// (nil when they failed), the number of tiles, and the tampered copies refused.
func checkTiles(name, treeDir string, cp checkpoint) (memoryHashes, int, int) {
	// The tiles a tree has: tlog.NewTiles(8, 0, N) lists every width a growing partial tile
	// had (sumdb published each, up to x/mod v0.8.0); a C2SP log serves a level's partial tile
	// at its current width only, so keep the widest.
	var want []tlog.Tile
	widest := map[[2]int64]int{}
	for _, t := range tlog.NewTiles(tileHeight, 0, cp.tree.N) {
		if t.W == 1<<tileHeight {
			want = append(want, t)
			continue
		}
		key := [2]int64{int64(t.L), t.N}
		if i, ok := widest[key]; ok {
			want[i] = t
		} else {
			widest[key] = len(want)
			want = append(want, t)
		}
	}
	var wantPaths, gotPaths []string
	for _, t := range want {
		wantPaths = append(wantPaths, servedPath(t))
	}
	root := filepath.Join(treeDir, "tile")
	err := filepath.WalkDir(root, func(path string, entry fs.DirEntry, err error) error {
		if err == nil && !entry.IsDir() {
			rel, _ := filepath.Rel(treeDir, path)
			gotPaths = append(gotPaths, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		fail("%s: %v", name, err)
		return nil, 0, 0
	}
	sort.Strings(wantPaths)
	sort.Strings(gotPaths)
	if strings.Join(wantPaths, " ") != strings.Join(gotPaths, " ") {
		fail("%s: served tiles %v, tlog.NewTiles says %v", name, gotPaths, wantPaths)
		return nil, 0, 0
	}
	for _, t := range want {
		if back, err := tlog.ParseTilePath(t.Path()); err != nil || back != t {
			fail("%s: tlog.ParseTilePath(%s) = %v, %v", name, t.Path(), back, err)
		}
	}

	tiles := servedTiles{dir: treeDir}
	memory, err := readTree(cp, tiles, want)
	if err != nil {
		fail("%s: %v", name, err)
		return nil, 0, 0
	}
	fmt.Printf("%s: %d tiles %v give the signed root through tlog.TileHashReader and tlog.TreeHash; "+
		"the %d leaf hashes alone give the root and every tile\n", name, len(want), wantPaths, cp.tree.N)

	// One byte flipped in any tile, and the tree no longer reads. Say when
	// tlog.TileHashReader alone missed it (see authenticatedLeaves).
	tampered := 0
	for _, t := range want {
		served, _ := tiles.ReadTiles([]tlog.Tile{t})
		bad := append([]byte(nil), served[0]...)
		bad[len(bad)/2] ^= 0x01
		copied := servedTiles{dir: treeDir, replaced: map[string][]byte{servedPath(t): bad}}
		if _, err := readTree(cp, copied, want); err == nil {
			fail("%s: tile %s with a flipped byte was accepted", name, servedPath(t))
			continue
		}
		tampered++
		if _, err := authenticatedLeaves(cp, copied); err == nil {
			fmt.Printf("%s: note: tlog.TileHashReader alone accepted tile %s with a flipped byte "+
				"(see authenticatedLeaves); the rebuilt root refused it\n", name, servedPath(t))
		}
	}
	return memory, len(want), tampered
}

// inclusionProof is the JSON of GET /api/log/{org}/proof/{id}; tlog.Hash decodes the
// base64 hashes itself.
type inclusionProof struct {
	AuditLogID string      `json:"audit_log_id"`
	LeafIndex  int64       `json:"leaf_index"`
	LeafHash   tlog.Hash   `json:"leaf_hash"`
	TreeSize   int64       `json:"tree_size"`
	RootHash   tlog.Hash   `json:"root_hash"`
	Hashes     []tlog.Hash `json:"hashes"`
	Checkpoint string      `json:"checkpoint"`
}

// checkInclusionProofs checks each proof under <tree>/proof/ against the tree's checkpoint.
func checkInclusionProofs(name, treeDir string, cp checkpoint, memory memoryHashes, verifier note.Verifier) (int, int) {
	paths, _ := filepath.Glob(filepath.Join(treeDir, "proof", "*.json"))
	sort.Strings(paths)
	checked, tampered := 0, 0
	for _, path := range paths {
		what := name + "/proof/" + filepath.Base(path)
		var proof inclusionProof
		if err := json.Unmarshal(mustRead(path), &proof); err != nil {
			fail("%s: %v", what, err)
			continue
		}
		proofCp, err := openCheckpoint([]byte(proof.Checkpoint), verifier)
		if err != nil {
			fail("%s: checkpoint: %v", what, err)
			continue
		}
		if proofCp.tree != cp.tree || proof.TreeSize != cp.tree.N || proof.RootHash != cp.tree.Hash {
			fail("%s: for tree %d %s (checkpoint %d %s), not the tree's %d %s", what,
				proof.TreeSize, proof.RootHash, proofCp.tree.N, proofCp.tree.Hash, cp.tree.N, cp.tree.Hash)
			continue
		}
		ok := true
		if err := tlog.CheckRecord(proof.Hashes, proof.TreeSize, proof.RootHash, proof.LeafIndex, proof.LeafHash); err != nil {
			fail("%s: tlog.CheckRecord: %v", what, err)
			ok = false
		}
		if leaf, err := memory.ReadHashes([]int64{tlog.StoredHashIndex(0, proof.LeafIndex)}); err != nil || leaf[0] != proof.LeafHash {
			fail("%s: leaf hash %s is not the tiles' %v (%v)", what, proof.LeafHash, leaf, err)
			ok = false
		}
		if want, err := tlog.ProveRecord(cp.tree.N, proof.LeafIndex, memory); err != nil || !sameHashes(want, proof.Hashes) {
			fail("%s: hashes %v, tlog.ProveRecord gives %v (%v)", what, proof.Hashes, want, err)
			ok = false
		}
		if err := checkTlogProofText(strings.TrimSuffix(path, ".json")+".tlog-proof", proof); err != nil {
			fail("%s: %v", what, err)
			ok = false
		}
		if ok {
			checked++
		}

		// A flipped byte in a proof hash, or in the leaf hash, fails.
		if len(proof.Hashes) > 0 {
			bad := append(tlog.RecordProof(nil), proof.Hashes...)
			bad[len(bad)/2][7] ^= 0x01
			if tlog.CheckRecord(bad, proof.TreeSize, proof.RootHash, proof.LeafIndex, proof.LeafHash) == nil {
				fail("%s: passed with a flipped byte in a proof hash", what)
			} else {
				tampered++
			}
		}
		badLeaf := proof.LeafHash
		badLeaf[0] ^= 0x01
		if tlog.CheckRecord(proof.Hashes, proof.TreeSize, proof.RootHash, proof.LeafIndex, badLeaf) == nil {
			fail("%s: passed with a flipped byte in the leaf hash", what)
		} else {
			tampered++
		}
	}
	fmt.Printf("%s: %d inclusion proofs pass tlog.CheckRecord, match tlog.ProveRecord and their tlog-proof text\n", name, checked)
	return checked, tampered
}

// checkTlogProofText checks that the c2sp.org/tlog-proof@v1 text of a proof says what its
// JSON says: "c2sp.org/tlog-proof@v1\nindex N\n<hash>\n...\n\n<checkpoint note>".
func checkTlogProofText(path string, proof inclusionProof) error {
	text, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	head, signed, ok := strings.Cut(string(text), "\n\n")
	if !ok {
		return fmt.Errorf("tlog-proof text has no blank line: %q", text)
	}
	lines := strings.Split(head, "\n")
	if len(lines) < 2 || lines[0] != "c2sp.org/tlog-proof@v1" || lines[1] != "index "+strconv.FormatInt(proof.LeafIndex, 10) {
		return fmt.Errorf("tlog-proof text does not open with the header and index %d: %q", proof.LeafIndex, head)
	}
	var hashes []tlog.Hash
	for _, line := range lines[2:] {
		h, err := tlog.ParseHash(line)
		if err != nil {
			return fmt.Errorf("tlog-proof hash %q: %v", line, err)
		}
		hashes = append(hashes, h)
	}
	if !sameHashes(hashes, proof.Hashes) || signed != proof.Checkpoint {
		return fmt.Errorf("tlog-proof text %q differs from the JSON", text)
	}
	return nil
}

// consistencyProof is the JSON of GET /api/log/{org}/consistency.
type consistencyProof struct {
	OldSize    int64       `json:"old_size"`
	NewSize    int64       `json:"new_size"`
	Hashes     []tlog.Hash `json:"hashes"`
	Checkpoint string      `json:"checkpoint"`
}

// checkConsistency checks the proof that tree b extends tree a.
func checkConsistency(path string, a, b checkpoint, memoryB memoryHashes, verifier note.Verifier) (int, bool) {
	var proof consistencyProof
	if err := json.Unmarshal(mustRead(path), &proof); err != nil {
		fail("consistency.json: %v", err)
		return 0, false
	}
	proofCp, err := openCheckpoint([]byte(proof.Checkpoint), verifier)
	if err != nil {
		fail("consistency.json: checkpoint: %v", err)
		return 0, false
	}
	if proof.OldSize != a.tree.N || proof.NewSize != b.tree.N || proofCp.tree != b.tree {
		fail("consistency.json: from %d to %d (checkpoint %d), not from a's %d to b's %d",
			proof.OldSize, proof.NewSize, proofCp.tree.N, a.tree.N, b.tree.N)
		return 0, false
	}
	ok := true
	if err := tlog.CheckTree(proof.Hashes, b.tree.N, b.tree.Hash, a.tree.N, a.tree.Hash); err != nil {
		fail("consistency.json: tlog.CheckTree: %v", err)
		ok = false
	}
	if memoryB != nil {
		if want, err := tlog.ProveTree(b.tree.N, a.tree.N, memoryB); err != nil || !sameHashes(want, proof.Hashes) {
			fail("consistency.json: hashes %v, tlog.ProveTree gives %v (%v)", proof.Hashes, want, err)
			ok = false
		}
	}
	if ok {
		fmt.Printf("consistency: %d -> %d passes tlog.CheckTree and matches tlog.ProveTree (%d hashes)\n",
			a.tree.N, b.tree.N, len(proof.Hashes))
	}

	// A flipped byte in a proof hash, or in the old root, fails.
	tampered := 0
	if len(proof.Hashes) > 0 {
		bad := append(tlog.TreeProof(nil), proof.Hashes...)
		bad[0][31] ^= 0x01
		if tlog.CheckTree(bad, b.tree.N, b.tree.Hash, a.tree.N, a.tree.Hash) == nil {
			fail("consistency.json: passed with a flipped byte in a proof hash")
		} else {
			tampered++
		}
	}
	badRoot := a.tree.Hash
	badRoot[0] ^= 0x01
	if tlog.CheckTree(proof.Hashes, b.tree.N, b.tree.Hash, a.tree.N, badRoot) == nil {
		fail("consistency.json: passed with a flipped byte in the old root")
	} else {
		tampered++
	}
	return tampered, ok
}

func sameHashes(x, y []tlog.Hash) bool {
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

// exportRecord is what the export mode reads of a JSON Lines line: an event's seq and
// inclusion proof, or, for the file's closing lines, their type and note.
type exportRecord struct {
	Type           string `json:"type"`
	Note           string `json:"note"`
	Seq            int64  `json:"seq"`
	InclusionProof *struct {
		LeafIndex int64       `json:"leaf_index"`
		TreeSize  int64       `json:"tree_size"`
		LeafHash  *tlog.Hash  `json:"leaf_hash"`
		Hashes    []tlog.Hash `json:"hashes"`
	} `json:"inclusion_proof"`
}

// eachExportLine calls visit with every line of the export, numbered from 1.
func eachExportLine(path string, visit func(line int, record exportRecord)) {
	file, err := os.Open(path)
	if err != nil {
		fail("%v", err)
		finish()
	}
	defer file.Close()
	scanner := bufio.NewScanner(file)
	scanner.Buffer(make([]byte, 0, 1<<16), 1<<20)
	line := 0
	for scanner.Scan() {
		line++
		var record exportRecord
		if err := json.Unmarshal(scanner.Bytes(), &record); err != nil {
			fail("%s:%d: %v", path, line, err)
			finish()
		}
		visit(line, record)
	}
	if err := scanner.Err(); err != nil {
		fail("%s: %v", path, err)
		finish()
	}
}

// checkExport is the export mode (see the top of the file).
func checkExport(path, vkeyPath string) {
	vkey := strings.TrimSuffix(string(mustRead(vkeyPath)), "\n")
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		fail("vkey %q: %v", vkey, err)
		finish()
	}
	// First pass: the tree checkpoint, which closes the file, and how many events there are.
	var notes []string
	total := 0
	eachExportLine(path, func(line int, record exportRecord) {
		switch record.Type {
		case "tree_checkpoint":
			notes = append(notes, record.Note)
		case "":
			total++
		}
	})
	if len(notes) != 1 || total == 0 {
		fail("%s: %d tree checkpoints and %d events, not one and some", path, len(notes), total)
		finish()
	}
	cp, err := openCheckpoint([]byte(notes[0]), verifier)
	if err != nil {
		fail("%s: tree checkpoint: %v", path, err)
		finish()
	}
	fmt.Printf("export: origin %s, size %d, root %s\n", cp.origin, cp.tree.N, cp.tree.Hash)
	tampered := tamperNote("export", cp.raw, verifier)

	// Second pass: every event's proof; the first, middle and last are also tampered with.
	sampled := map[int]bool{1: true, (total + 1) / 2: true, total: true}
	events, checked := 0, 0
	eachExportLine(path, func(line int, record exportRecord) {
		if record.Type != "" {
			return
		}
		events++
		proof := record.InclusionProof
		switch {
		case proof == nil:
			fail("%s:%d: seq %d carries no inclusion proof", path, line, record.Seq)
			return
		case proof.LeafHash == nil:
			fail("%s:%d: seq %d's proof carries no leaf hash", path, line, record.Seq)
			return
		case proof.LeafIndex != record.Seq-1:
			fail("%s:%d: leaf index %d is not seq %d − 1", path, line, proof.LeafIndex, record.Seq)
			return
		case proof.TreeSize != cp.tree.N:
			fail("%s:%d: proven in a tree of %d, not the checkpoint's %d", path, line, proof.TreeSize, cp.tree.N)
			return
		}
		leaf, index := *proof.LeafHash, proof.LeafIndex
		if err := tlog.CheckRecord(proof.Hashes, cp.tree.N, cp.tree.Hash, index, leaf); err != nil {
			fail("%s:%d: seq %d: tlog.CheckRecord: %v", path, line, record.Seq, err)
			return
		}
		checked++
		if !sampled[events] {
			return
		}
		if len(proof.Hashes) > 0 {
			bad := append(tlog.RecordProof(nil), proof.Hashes...)
			bad[len(bad)/2][7] ^= 0x01
			if tlog.CheckRecord(bad, cp.tree.N, cp.tree.Hash, index, leaf) == nil {
				fail("%s:%d: passed with a flipped byte in a proof hash", path, line)
			} else {
				tampered++
			}
		}
		badLeaf := leaf
		badLeaf[31] ^= 0x80
		if tlog.CheckRecord(proof.Hashes, cp.tree.N, cp.tree.Hash, index, badLeaf) == nil {
			fail("%s:%d: passed with a flipped byte in the leaf hash", path, line)
		} else {
			tampered++
		}
		if cp.tree.N > 1 {
			other := (index + 1) % cp.tree.N
			if tlog.CheckRecord(proof.Hashes, cp.tree.N, cp.tree.Hash, other, leaf) == nil {
				fail("%s:%d: passed as leaf %d, not %d", path, line, other, index)
			} else {
				tampered++
			}
		}
	})
	fmt.Printf("export: %d of %d events' inclusion proofs pass tlog.CheckRecord\n", checked, events)
	fmt.Printf("checked: export events=%d tampered=%d\n", checked, tampered)
}
