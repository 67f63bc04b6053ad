// Command interop checks writroot's logs and SPIFFE bundles with implementations nobody
// here wrote: golang.org/x/mod/sumdb/{tlog,note}, filippo.io/torchwood and Go's crypto/mldsa,
// and github.com/spiffe/go-spiffe/v2. Built in GOPATH mode from Debian's packages:
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go run interop.go [demo] MANIFEST.json
//
// The manifest names each log directory (tiles and checkpoint), its ML-DSA-44 log key, its
// witnesses and quorum, older checkpoints, tlog-proof files with their entries, and SPIFFE
// bundles with the trust domain and sequence each must carry. One JSON report goes to stdout:
// what each library says about each item, so the Python test can compare.
//
// The demo mode reads the set `writroot demo` publishes: there a tlog-proof carries the
// checkpoint only the log key signed (witnesses cosign after the ceremony), so a proof is
// checked under the log key alone and is "witnessed" when its checkpoint is one that met the
// witness quorum (the newest, or an older one returned cosigned); the report also lists every
// entry of the log.
package main

import (
	"bytes"
	"context"
	"crypto/mldsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"filippo.io/torchwood"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// ---------------------------------------------------------------- C2SP ML-DSA-44 cosignatures

const sigTypeMLDSA44 = 0x06

type key struct {
	Name string `json:"name"`
	Key  string `json:"key"` // base64 of the raw 1,312-byte ML-DSA-44 public key
}

// mldsaVerifier is a note.Verifier for c2sp.org/tlog-cosignature's ML-DSA-44 type, written
// from the specification: the signature is timestamp (u64) || ML-DSA-44 signature over
// cosigned_message with start 0 and end the tree size.
type mldsaVerifier struct {
	name  string
	hash  uint32
	pk    *mldsa.PublicKey
	times map[string]uint64 // what each verified signature said about time, by checkpoint
}

func newVerifier(k key) (*mldsaVerifier, error) {
	raw, err := base64.StdEncoding.DecodeString(k.Key)
	if err != nil {
		return nil, err
	}
	pk, err := mldsa.NewPublicKey(mldsa.MLDSA44(), raw)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(append(append([]byte(k.Name+"\n"), sigTypeMLDSA44), raw...))
	return &mldsaVerifier{k.Name, binary.BigEndian.Uint32(h[:4]), pk, map[string]uint64{}}, nil
}

func (v *mldsaVerifier) Name() string    { return v.name }
func (v *mldsaVerifier) KeyHash() uint32 { return v.hash }

func (v *mldsaVerifier) vkey() string {
	return fmt.Sprintf("%s+%08x+%s", v.name, v.hash, base64.StdEncoding.EncodeToString(
		append([]byte{sigTypeMLDSA44}, v.pk.Bytes()...)))
}

func opaque8(b []byte) []byte { return append([]byte{byte(len(b))}, b...) }

func (v *mldsaVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != 8+mldsa.MLDSA44().SignatureSize() {
		return false
	}
	c, err := torchwood.ParseCheckpoint(string(msg))
	if err != nil {
		return false
	}
	t := binary.BigEndian.Uint64(sig[:8])
	var m bytes.Buffer
	m.WriteString("subtree/v1\n\x00")
	m.Write(opaque8([]byte(v.name)))
	m.Write(binary.BigEndian.AppendUint64(nil, t))
	m.Write(opaque8([]byte(c.Origin)))
	m.Write(binary.BigEndian.AppendUint64(nil, 0))
	m.Write(binary.BigEndian.AppendUint64(nil, uint64(c.N)))
	m.Write(c.Hash[:])
	if mldsa.Verify(v.pk, m.Bytes(), sig[8:], nil) != nil {
		return false
	}
	v.times[string(msg)] = t
	return true
}

// ---------------------------------------------------------------- tiles from a directory

// dirTiles reads tiles from a directory; tlog.TileHashReader checks them on every use.
type dirTiles struct {
	root  string
	cache map[string][]byte
}

func (d dirTiles) ReadTiles(_ context.Context, tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		path := filepath.Join(d.root, torchwood.TilePath(t))
		data, ok := d.cache[path]
		if !ok {
			var err error
			if data, err = os.ReadFile(path); err != nil {
				return nil, err
			}
			d.cache[path] = data
		}
		out[i] = data
	}
	return out, nil
}
func (d dirTiles) SaveTiles([]tlog.Tile, [][]byte) {}
func (d dirTiles) ReadEndpoint(_ context.Context, path string) ([]byte, error) {
	return os.ReadFile(filepath.Join(d.root, path))
}

// ---------------------------------------------------------------- manifest and report

type proofItem struct {
	Path  string `json:"path"`
	Entry string `json:"entry"` // hex of the 32-byte log entry
}

type logItem struct {
	Dir         string   `json:"dir"`
	LogKey      key      `json:"log_key"`
	Witnesses   []key    `json:"witnesses"`
	Quorum      int      `json:"quorum"`
	Checkpoints []string `json:"checkpoints"` // older signed checkpoints
	// writroot's own consistency proofs from each older checkpoint (path -> base64 hashes)
	Consistency map[string][]string `json:"consistency"`
	Proofs      []proofItem         `json:"proofs"`
}

type bundleItem struct {
	Path        string `json:"path"`
	TrustDomain string `json:"trust_domain"`
	Sequence    uint64 `json:"sequence"`
}

type manifest struct {
	Logs    []logItem    `json:"logs"`
	Bundles []bundleItem `json:"bundles"`
}

type checkpointResult struct {
	Path       string `json:"path"`
	Size       int64  `json:"size"`
	Root       string `json:"root"`
	Consistent bool   `json:"consistent"`     // tlog.ProveTree from the tiles, then CheckTree
	Theirs     bool   `json:"writroot_proof"` // tlog.CheckTree on writroot's own proof
	// note.Open's verified cosignatures (witness name -> timestamp) and torchwood's quorum
	Cosigned map[string]uint64 `json:"cosigned"`
	Quorum   bool              `json:"quorum"`
	Error    string            `json:"error,omitempty"`
	text     string            // the checkpoint's text, when it met the quorum
}

type proofResult struct {
	Path     string `json:"path"`
	Verified bool   `json:"verified"`
	Size     int64  `json:"size,omitempty"`      // demo mode: the proof's checkpoint size
	Witness  bool   `json:"witnessed,omitempty"` // demo mode: that checkpoint met the quorum
	Error    string `json:"error,omitempty"`
}

type logResult struct {
	Origin       string             `json:"origin"`
	Size         int64              `json:"size"`
	Root         string             `json:"root"`
	LogSigned    bool               `json:"log_signed"`
	LogVkey      string             `json:"log_vkey"`
	Cosigned     map[string]uint64  `json:"cosigned"` // witness name -> timestamp
	Quorum       bool               `json:"quorum"`
	TreeHash     string             `json:"tree_hash"` // x/mod's tlog.TreeHash over the tiles
	Entries      int64              `json:"entries"`   // entries whose record hash matched
	Checkpoints  []checkpointResult `json:"checkpoints"`
	Proofs       []proofResult      `json:"proofs"`
	Error        string             `json:"error,omitempty"`
	ExtraSigners []string           `json:"unverified_signers"`
	EntryList    []string           `json:"entry_list,omitempty"` // demo mode: hex, in order
}

type bundleResult struct {
	Path        string `json:"path"`
	TrustDomain string `json:"trust_domain"`
	Sequence    uint64 `json:"sequence"`
	HasSequence bool   `json:"has_sequence"`
	X509        int    `json:"x509_authorities"`
	JWT         int    `json:"jwt_authorities"`
	Error       string `json:"error,omitempty"`
}

type report struct {
	Logs    []logResult    `json:"logs"`
	Bundles []bundleResult `json:"bundles"`
}

func policyFor(origin string, logV *mldsaVerifier, ws []*mldsaVerifier, quorum int) torchwood.Policy {
	parts := []torchwood.Policy{torchwood.OriginPolicy(origin), torchwood.SingleVerifierPolicy(logV)}
	if quorum > 0 {
		wp := make([]torchwood.Policy, len(ws))
		for i, w := range ws {
			wp[i] = torchwood.SingleVerifierPolicy(w)
		}
		parts = append(parts, torchwood.ThresholdPolicy(quorum, wp...))
	}
	return torchwood.ThresholdPolicy(len(parts), parts...)
}

// cosigners opens a signed checkpoint with note.Open and says which witnesses cosigned it, when.
func cosigners(signed []byte, logV *mldsaVerifier, ws []*mldsaVerifier) (map[string]uint64, error) {
	verifiers := []note.Verifier{logV}
	for _, w := range ws {
		verifiers = append(verifiers, w)
	}
	n, err := note.Open(signed, note.VerifierList(verifiers...))
	if err != nil {
		return nil, fmt.Errorf("note.Open: %w", err)
	}
	out := map[string]uint64{}
	for _, s := range n.Sigs {
		for _, w := range ws {
			if s.Name == w.name && s.Hash == w.hash {
				out[w.name] = w.times[n.Text]
			}
		}
	}
	return out, nil
}

// proofCheckpoint is the checkpoint text inside a tlog-proof: the note after the first blank line.
func proofCheckpoint(proof []byte) string {
	_, signed, _ := bytes.Cut(proof, []byte("\n\n"))
	text, _, _ := bytes.Cut(signed, []byte("\n\n"))
	return string(text) + "\n"
}

func checkLog(item logItem, demo bool) (res logResult) {
	res.Cosigned = map[string]uint64{}
	fail := func(err error) logResult { res.Error = err.Error(); return res }
	logV, err := newVerifier(item.LogKey)
	if err != nil {
		return fail(fmt.Errorf("log key: %w", err))
	}
	res.LogVkey = logV.vkey()
	verifiers := []note.Verifier{logV}
	var ws []*mldsaVerifier
	for _, w := range item.Witnesses {
		v, err := newVerifier(w)
		if err != nil {
			return fail(fmt.Errorf("witness key: %w", err))
		}
		ws = append(ws, v)
		verifiers = append(verifiers, v)
	}
	signed, err := os.ReadFile(filepath.Join(item.Dir, "checkpoint"))
	if err != nil {
		return fail(err)
	}
	n, err := note.Open(signed, note.VerifierList(verifiers...))
	if err != nil {
		return fail(fmt.Errorf("note.Open: %w", err))
	}
	c, err := torchwood.ParseCheckpoint(n.Text)
	if err != nil {
		return fail(fmt.Errorf("torchwood.ParseCheckpoint: %w", err))
	}
	res.Origin, res.Size, res.Root = c.Origin, c.N, base64.StdEncoding.EncodeToString(c.Hash[:])
	for _, s := range n.Sigs {
		if s.Name == logV.name && s.Hash == logV.hash {
			res.LogSigned = true
		}
		for _, w := range ws {
			if s.Name == w.name && s.Hash == w.hash {
				res.Cosigned[w.name] = w.times[n.Text]
			}
		}
	}
	for _, s := range n.UnverifiedSigs {
		res.ExtraSigners = append(res.ExtraSigners, s.Name)
	}
	policy := policyFor(c.Origin, logV, ws, item.Quorum)
	if _, _, err := torchwood.VerifyCheckpoint(signed, policy); err == nil {
		res.Quorum = true
	}
	tiles := dirTiles{item.Dir, map[string][]byte{}}
	hr := torchwood.TileHashReaderWithContext(context.Background(), c.Tree, tiles)
	th, err := tlog.TreeHash(c.N, hr)
	if err != nil {
		return fail(fmt.Errorf("tlog.TreeHash: %w", err))
	}
	res.TreeHash = base64.StdEncoding.EncodeToString(th[:])
	for i := int64(0); i < c.N; i += torchwood.TileWidth {
		t := tlog.Tile{H: torchwood.TileHeight, L: -1, N: i / torchwood.TileWidth,
			W: int(min(torchwood.TileWidth, c.N-i))}
		bundle, err := tiles.ReadEndpoint(context.Background(), torchwood.TilePath(t))
		if err != nil {
			return fail(err)
		}
		for j := i; len(bundle) > 0; j++ {
			entry, rest, err := torchwood.ReadTileEntry(bundle)
			if err != nil {
				return fail(err)
			}
			bundle = rest
			if demo {
				res.EntryList = append(res.EntryList, hex.EncodeToString(entry))
			}
			p, err := tlog.ProveRecord(c.N, j, hr)
			if err != nil {
				return fail(fmt.Errorf("tlog.ProveRecord(%d): %w", j, err))
			}
			if tlog.CheckRecord(p, c.N, c.Hash, j, tlog.RecordHash(entry)) == nil {
				res.Entries++
			}
		}
	}
	witnessed := map[string]bool{}
	if res.Quorum {
		witnessed[n.Text] = true
	}
	for _, path := range item.Checkpoints {
		r := checkOlder(path, item.Consistency[path], logV, ws, policy, c, hr)
		if r.Quorum {
			witnessed[r.text] = true
		}
		res.Checkpoints = append(res.Checkpoints, r)
	}
	proofPolicy := policy
	if demo { // the proof's checkpoint carries the log's signature only
		proofPolicy = torchwood.ThresholdPolicy(2, torchwood.OriginPolicy(c.Origin),
			torchwood.SingleVerifierPolicy(logV))
	}
	for _, pi := range item.Proofs {
		r := checkProof(pi, proofPolicy)
		if demo && r.Verified {
			data, _ := os.ReadFile(pi.Path)
			text := proofCheckpoint(data)
			if pc, err := torchwood.ParseCheckpoint(text); err == nil {
				r.Size, r.Witness = pc.N, witnessed[text]
			}
		}
		res.Proofs = append(res.Proofs, r)
	}
	return res
}

func checkOlder(path string, theirs []string, logV *mldsaVerifier, ws []*mldsaVerifier,
	policy torchwood.Policy, c torchwood.Checkpoint, hr tlog.HashReader) (r checkpointResult) {
	r.Path = path
	data, err := os.ReadFile(path)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	if r.Cosigned, err = cosigners(data, logV, ws); err != nil {
		r.Error = err.Error()
		return r
	}
	_, _, err = torchwood.VerifyCheckpoint(data, policy)
	r.Quorum = err == nil
	if r.Quorum {
		text, _, _ := bytes.Cut(data, []byte("\n\n"))
		r.text = string(text) + "\n"
	}
	old, _, err := torchwood.VerifyCheckpoint(data, torchwood.ThresholdPolicy(2,
		torchwood.OriginPolicy(c.Origin), torchwood.SingleVerifierPolicy(logV)))
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Size, r.Root = old.N, base64.StdEncoding.EncodeToString(old.Hash[:])
	var tp tlog.TreeProof
	for _, h64 := range theirs {
		h, err := base64.StdEncoding.DecodeString(h64)
		if err != nil || len(h) != tlog.HashSize {
			r.Error = "malformed writroot consistency proof"
			return r
		}
		tp = append(tp, tlog.Hash(h))
	}
	r.Theirs = theirs != nil && tlog.CheckTree(tp, c.N, c.Hash, old.N, old.Hash) == nil
	if old.N > c.N {
		r.Error = "older checkpoint is larger"
		return r
	}
	p, err := tlog.ProveTree(c.N, old.N, hr)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	if err := tlog.CheckTree(p, c.N, c.Hash, old.N, old.Hash); err != nil {
		r.Error = err.Error()
		return r
	}
	r.Consistent = true
	return r
}

func checkProof(pi proofItem, policy torchwood.Policy) (r proofResult) {
	r.Path = pi.Path
	data, err := os.ReadFile(pi.Path)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	entry, err := hex.DecodeString(pi.Entry)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	if err := torchwood.VerifyProof(policy, tlog.RecordHash(entry), data); err != nil {
		r.Error = err.Error()
		return r
	}
	r.Verified = true
	return r
}

func checkBundle(item bundleItem) (r bundleResult) {
	r.Path = item.Path
	td, err := spiffeid.TrustDomainFromString(item.TrustDomain)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	b, err := spiffebundle.Load(td, item.Path)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.TrustDomain = b.TrustDomain().Name()
	r.Sequence, r.HasSequence = b.SequenceNumber()
	r.X509, r.JWT = len(b.X509Authorities()), len(b.JWTAuthorities())
	if !r.HasSequence || r.Sequence != item.Sequence {
		r.Error = fmt.Sprintf("spiffe_sequence %d, want %d", r.Sequence, item.Sequence)
	}
	return r
}

func main() {
	args := os.Args[1:]
	demo := len(args) == 2 && args[0] == "demo"
	if demo {
		args = args[1:]
	}
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: interop [demo] MANIFEST.json")
		os.Exit(2)
	}
	data, err := os.ReadFile(args[0])
	if err == nil {
		var m manifest
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err = dec.Decode(&m); err == nil {
			var out report
			for _, l := range m.Logs {
				out.Logs = append(out.Logs, checkLog(l, demo))
			}
			for _, b := range m.Bundles {
				out.Bundles = append(out.Bundles, checkBundle(b))
			}
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			err = enc.Encode(out)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", errors.Unwrap(err), err)
		os.Exit(2)
	}
}
