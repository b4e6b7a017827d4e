package evidence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/keytrail/keytrail/internal/strictjson"
)

// A bundle file (docs/bundle-format.md) is a JSON object of three members:
//
//	{"mediaType": "application/vnd.keytrail.bundle.v1+json",
//	 "manifest":  <DSSE envelope of ManifestMediaType, signed by the operator>,
//	 "entries":   [{"envelope": <base64 leaf bytes>, "inclusionProof": [<base64 hash>, ...]}, ...]}
//
// The signed manifest holds the rotation, the checkpoint, the optional
// consistency proof, and each entry's leaf index and RFC 6962 leaf hash, so every
// envelope is covered by the operator's signature (through its leaf hash) and by
// its inclusion proof, and every proof by the signed checkpoint's root. The
// envelopes are not wrapped in a second layer of base64, and a verifier can
// check each entry as soon as it is decoded.

// ManifestMediaType is the DSSE payloadType of a bundle's manifest.
const ManifestMediaType = "application/vnd.keytrail.bundle-manifest.v1+json"

// Manifest is the signed part of a bundle.
type Manifest struct {
	Rotation    Rotation        `json:"rotation"`
	Checkpoint  string          `json:"checkpoint"`
	Entries     []ManifestEntry `json:"entries"`
	Consistency *Consistency    `json:"consistency,omitempty"`
}

// ManifestEntry names one entry: its leaf index and the RFC 6962 leaf hash of
// its envelope.
type ManifestEntry struct {
	Index    uint64 `json:"index"`
	LeafHash []byte `json:"leafHash"`
}

// FileEntry is an entry as a bundle file carries it, beside the manifest.
type FileEntry struct {
	Envelope       []byte   `json:"envelope"`
	InclusionProof [][]byte `json:"inclusionProof"`
}

// ErrLeafHash reports an entry whose envelope does not hash to the leaf hash the
// signed manifest gives it.
var ErrLeafHash = errors.New("envelope does not match the manifest's leaf hash")

// LeafHash is the RFC 6962 leaf hash of an entry.
func LeafHash(entry []byte) []byte { return rfc6962.DefaultHasher.HashLeaf(entry) }

// ManifestOf returns b's manifest.
func ManifestOf(b *Bundle) *Manifest {
	m := &Manifest{Rotation: b.Rotation, Checkpoint: b.Checkpoint, Consistency: b.Consistency, Entries: make([]ManifestEntry, len(b.Entries))}
	for i, e := range b.Entries {
		m.Entries[i] = ManifestEntry{Index: e.Index, LeafHash: LeafHash(e.Envelope)}
	}
	return m
}

// Validate checks a manifest's syntax and limits.
func (m *Manifest) Validate() error {
	if err := m.Rotation.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if m.Checkpoint == "" {
		return fmt.Errorf("%w: manifest: checkpoint is empty", ErrMalformed)
	}
	if len(m.Entries) > MaxBundleEntries {
		return fmt.Errorf("%w: manifest: %d entries, limit %d", ErrMalformed, len(m.Entries), MaxBundleEntries)
	}
	for i, e := range m.Entries {
		if i > 0 && e.Index <= m.Entries[i-1].Index {
			return fmt.Errorf("%w: manifest: entries[%d].index %d does not follow %d (want strictly ascending)", ErrMalformed, i, e.Index, m.Entries[i-1].Index)
		}
		if len(e.LeafHash) != 32 {
			return fmt.Errorf("%w: manifest: entries[%d].leafHash is %d bytes, want 32", ErrMalformed, i, len(e.LeafHash))
		}
	}
	if c := m.Consistency; c != nil {
		if c.Checkpoint == "" {
			return fmt.Errorf("%w: manifest: consistency.checkpoint is empty", ErrMalformed)
		}
		if err := checkProof(c.Proof); err != nil {
			return fmt.Errorf("%w: manifest: consistency.proof: %w", ErrMalformed, err)
		}
	}
	return nil
}

// ParseManifest decodes and validates a manifest strictly. Callers pass only
// payload bytes whose DSSE signature they have verified.
func ParseManifest(payload []byte) (*Manifest, error) {
	var m Manifest
	if err := strictjson.Unmarshal(payload, &m, MaxBundleBytes); err != nil {
		return nil, fmt.Errorf("%w: manifest: %w", ErrMalformed, err)
	}
	return &m, m.Validate()
}

// SignBundle signs b's manifest as a DSSE envelope of ManifestMediaType and
// returns the bundle file.
func SignBundle(ctx context.Context, b *Bundle, signers ...*Signer) ([]byte, error) {
	m := ManifestOf(b)
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("evidence: refusing to sign an invalid bundle: %w", err)
	}
	payload, err := strictjson.Marshal(m)
	if err != nil {
		return nil, err
	}
	env, err := Sign(ctx, ManifestMediaType, payload, signers...)
	if err != nil {
		return nil, err
	}
	return AssembleBundle(env, b)
}

// AssembleBundle writes a bundle file from a signed manifest envelope and b's
// entries. SignBundle uses it; tests use it to pair a manifest with other entries.
func AssembleBundle(manifestEnvelope []byte, b *Bundle) ([]byte, error) {
	f := struct {
		MediaType string         `json:"mediaType"`
		Manifest  jsontext.Value `json:"manifest"`
		Entries   []FileEntry    `json:"entries"`
	}{BundleMediaType, manifestEnvelope, make([]FileEntry, len(b.Entries))}
	for i, e := range b.Entries {
		f.Entries[i] = FileEntry{Envelope: e.Envelope, InclusionProof: e.InclusionProof}
	}
	return strictjson.Marshal(&f)
}

// fileEntry is FileEntry as readBundle decodes it: the same members, the
// proof decoded by proofHashes.
type fileEntry struct {
	Envelope       []byte      `json:"envelope"`
	InclusionProof proofHashes `json:"inclusionProof"`
}

// proofHashes decodes a JSON array of hashes exactly as [][]byte decodes
// (each element by the decoder's own []byte rules: base64, or null), into a
// slice sized for a proof up front instead of one grown through reflection
// element by element, which cost a quarter of reading a bundle.
type proofHashes [][]byte

func (p *proofHashes) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	switch dec.PeekKind() {
	case 'n':
		if _, err := dec.ReadToken(); err != nil {
			return err
		}
		*p = nil
		return nil
	case '[':
	default:
		// Not an array: the default rules report it.
		var v [][]byte
		return json.UnmarshalDecode(dec, &v)
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	out := make([][]byte, 0, proofCap)
	for dec.PeekKind() != ']' {
		var h []byte
		if err := json.UnmarshalDecode(dec, &h); err != nil {
			return err
		}
		out = append(out, h)
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	*p = out
	return nil
}

// proofCap is the capacity proofHashes starts with: a proof in a tree of up
// to 2^24 leaves.
const proofCap = 24

// BundleReader receives a bundle file as ReadBundle decodes it.
type BundleReader struct {
	// Authenticate verifies the manifest's envelope. Nothing in the manifest is
	// decoded unless it returns nil; its error is returned as is.
	Authenticate func(env *Envelope) error
	// Manifest receives the authenticated, validated manifest. Required.
	Manifest func(m *Manifest) error
	// Entry receives entry i (0-based, in manifest order) as soon as it is
	// decoded, with Index from the manifest. It must check the entry against the
	// manifest's leaf hash (CheckLeaf) before it trusts anything in it.
	Entry func(i int, e Entry) error
}

// CheckLeaf reports whether e's envelope hashes to the manifest's leaf hash for entry i.
func (m *Manifest) CheckLeaf(i int, e *Entry) error {
	if !bytes.Equal(LeafHash(e.Envelope), m.Entries[i].LeafHash) {
		return fmt.Errorf("entry %d: %w", m.Entries[i].Index, ErrLeafHash)
	}
	return nil
}

// Stage errors of ReadBundle, to tell input that is not a bundle file at all
// from a bundle that fails.
var (
	// ErrNotBundle: the input is not a bundle file (before authentication).
	ErrNotBundle = errors.New("not a keytrail bundle file")
	// ErrBundleFormat: the authenticated bundle is malformed. It wraps ErrMalformed.
	ErrBundleFormat = fmt.Errorf("bundle format: %w", ErrMalformed)
)

// Bounds on what a bundle file makes ReadBundle hold before it is
// authenticated (ATTACKS.md 44). A reader that buffered whatever came first
// could be made to hold a whole file of unauthenticated bytes by anyone who
// can hand it a file.
const (
	// MaxManifestBytes bounds the bytes of a bundle file up to the end of its
	// manifest member: the mediaType, the manifest envelope and whitespace.
	// The largest manifest (MaxBundleEntries entries of the largest index, two
	// checkpoints of checkpoint.MaxBytes, MaxSignatures signatures) is about
	// 9 MiB as an envelope; TestMaxManifestFits checks it fits.
	MaxManifestBytes = 16 << 20
	// maxValueBytes bounds each value after the manifest (an entry, a member
	// name, the mediaType), whitespace before it included, counted from the
	// end of the value before it. The largest entry, a 64 KiB envelope and a
	// proof of MaxProofHashes hashes, is about 90 KiB in the file.
	maxValueBytes = 1 << 20
)

// ReadBundle decodes a bundle file in one pass, strictly: the three members
// once each, the manifest before the entries, nothing else, no trailing data.
// The manifest is authenticated and decoded before any entry is read, so that
// nothing unauthenticated is held but the entry being checked: a file whose
// entries come before its manifest is refused (ErrNotBundle), as is one with
// more than MaxManifestBytes up to the end of the manifest, or a value after
// it larger than an entry can be.
func ReadBundle(raw []byte, r BundleReader) error {
	if len(raw) > MaxBundleBytes {
		return fmt.Errorf("%w: too large: %d bytes, limit %d", ErrNotBundle, len(raw), MaxBundleBytes)
	}
	return ReadBundleFrom(bytes.NewReader(raw), r)
}

// ReadBundleFrom is ReadBundle on a stream: the file is never held in memory
// whole, and at most about MaxManifestBytes of it before the manifest is
// authenticated. More than MaxBundleBytes is an error.
func ReadBundleFrom(in io.Reader, r BundleReader) error {
	lr := &limitReader{r: in, limit: MaxManifestBytes, what: "the bundle up to the end of its manifest", index: -1, max: MaxManifestBytes}
	err := readBundle(lr, r)
	if lr.over {
		if lr.authenticated {
			return fmt.Errorf("%w: too large: %s is larger than %d bytes", ErrBundleFormat, lr.name(), lr.max)
		}
		return fmt.Errorf("%w: too large: %s is larger than %d bytes (the manifest must come first)", ErrNotBundle, lr.name(), lr.max)
	}
	return err
}

// limitReader returns at most limit bytes in all, and records whether the
// reader wanted more while there was more. The limit moves as the file is
// decoded: see bound.
type limitReader struct {
	r     io.Reader
	read  int64 // bytes returned so far
	limit int64
	over  bool
	// what the limit bounds (entries[index] if index >= 0) and how large
	// it may be, for the error.
	what          string
	index         int
	max           int64
	authenticated bool // the manifest was authenticated
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.read >= l.limit {
		var one [1]byte
		if k, _ := l.r.Read(one[:]); k > 0 {
			l.over = true
			return 0, errors.New("bundle too large")
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.limit-l.read {
		p = p[:l.limit-l.read]
	}
	k, err := l.r.Read(p)
	l.read += int64(k)
	return k, err
}

// bound lets the decoder, whose next value starts at offset, read at most n
// bytes more for it (and never past MaxBundleBytes): what it buffers is then
// at most the one value and what it read ahead. what (with index, if it is
// not negative) names the value.
func (l *limitReader) bound(offset int64, what string, index int, n int64) {
	l.limit = min(offset+n, MaxBundleBytes)
	l.what, l.index, l.max = what, index, n
}

func (l *limitReader) name() string {
	if l.index >= 0 {
		return fmt.Sprintf("%s[%d]", l.what, l.index)
	}
	return l.what
}

func readBundle(lr *limitReader, r BundleReader) error {
	dec := jsontext.NewDecoder(lr, jsontext.AllowDuplicateNames(false), jsontext.AllowInvalidUTF8(false))
	opts := []json.Options{json.RejectUnknownMembers(true), json.MatchCaseInsensitiveNames(false)}
	notBundle := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrNotBundle, fmt.Sprintf(format, args...))
	}
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return notBundle("want a JSON object")
	}
	var (
		m     *Manifest
		count int
		seen  = map[string]bool{}
	)
	// After the manifest every value is bounded on its own.
	next := func(what string, index int) {
		if m != nil {
			lr.bound(dec.InputOffset(), what, index, maxValueBytes)
		}
	}
	deliver := func(i int, fe FileEntry) error {
		if i >= len(m.Entries) {
			return fmt.Errorf("%w: more entries than the manifest's %d", ErrBundleFormat, len(m.Entries))
		}
		if err := checkProof(fe.InclusionProof); err != nil {
			return fmt.Errorf("%w: entries[%d].inclusionProof: %w", ErrBundleFormat, i, err)
		}
		if len(fe.Envelope) == 0 || len(fe.Envelope) > MaxRecordBytes {
			return fmt.Errorf("%w: entries[%d].envelope is %d bytes (want 1 to %d)", ErrBundleFormat, i, len(fe.Envelope), MaxRecordBytes)
		}
		return r.Entry(i, Entry{Index: m.Entries[i].Index, Envelope: fe.Envelope, InclusionProof: fe.InclusionProof})
	}
	for {
		next("a member name", -1)
		if dec.PeekKind() == '}' {
			break
		}
		tok, err := dec.ReadToken()
		if err != nil {
			if m == nil {
				return notBundle("%v", err)
			}
			return fmt.Errorf("%w: %w", ErrBundleFormat, err)
		}
		name := tok.String()
		if seen[name] {
			return notBundle("member %q twice", name)
		}
		seen[name] = true
		next("member "+name, -1)
		switch name {
		case "mediaType":
			var mt string
			if err := json.UnmarshalDecode(dec, &mt, opts...); err != nil || mt != BundleMediaType {
				return notBundle("mediaType is not %q", BundleMediaType)
			}
		case "manifest":
			var env Envelope
			if err := json.UnmarshalDecode(dec, &env, opts...); err != nil {
				return notBundle("manifest: %v", err)
			}
			if len(env.Signatures) == 0 {
				return notBundle("manifest: %v", ErrNoSignature)
			}
			if len(env.Signatures) > MaxSignatures {
				return notBundle("manifest: %v", ErrTooManySigners)
			}
			if err := r.Authenticate(&env); err != nil {
				return err
			}
			lr.authenticated = true
			if m, err = ParseManifest(env.Payload); err != nil {
				return fmt.Errorf("%w: %w", ErrBundleFormat, err)
			}
			if err := r.Manifest(m); err != nil {
				return err
			}
		case "entries":
			if m == nil {
				// Entries before the manifest would have to be held,
				// unauthenticated, until it comes: refused.
				return notBundle("entries before the manifest: a bundle file's manifest comes first (docs/bundle-format.md)")
			}
			if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '[' {
				return notBundle("entries is not an array")
			}
			for {
				next("entries", count)
				if dec.PeekKind() == ']' {
					break
				}
				var de fileEntry
				err := json.UnmarshalDecode(dec, &de, opts...)
				fe := FileEntry{Envelope: de.Envelope, InclusionProof: de.InclusionProof}
				if err != nil {
					return fmt.Errorf("%w: entries[%d]: %w", ErrBundleFormat, count, err)
				}
				if count >= MaxBundleEntries {
					return fmt.Errorf("%w: more than %d entries", ErrBundleFormat, MaxBundleEntries)
				}
				if err := deliver(count, fe); err != nil {
					return err
				}
				count++
			}
			if _, err := dec.ReadToken(); err != nil {
				return fmt.Errorf("%w: %w", ErrBundleFormat, err)
			}
		default:
			return notBundle("unknown member %q", name)
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return fmt.Errorf("%w: %w", ErrBundleFormat, err)
	}
	next("data after the bundle object", -1)
	if _, err := dec.ReadToken(); err != io.EOF {
		return notBundle("data after the bundle object")
	}
	for _, name := range []string{"mediaType", "manifest", "entries"} {
		if !seen[name] {
			return notBundle("no %s member", name)
		}
	}
	if count != len(m.Entries) {
		return fmt.Errorf("%w: %d entries, the manifest lists %d", ErrBundleFormat, count, len(m.Entries))
	}
	return nil
}

// OpenBundle decodes a whole bundle file, authenticating its manifest with
// keys, and checks every entry against the manifest's leaf hashes. It returns
// the bundle and the keys that signed it. Tools use it; the verifier streams
// with ReadBundle instead.
func OpenBundle(raw []byte, keys KeySet) (*Bundle, []*PublicKey, error) {
	var b Bundle
	var signers []*PublicKey
	var m *Manifest
	err := ReadBundle(raw, BundleReader{
		Authenticate: func(env *Envelope) (err error) {
			signers, err = env.Verify(ManifestMediaType, keys)
			return err
		},
		Manifest: func(mm *Manifest) error {
			m = mm
			b = Bundle{Rotation: m.Rotation, Checkpoint: m.Checkpoint, Consistency: m.Consistency, Entries: make([]Entry, 0, len(m.Entries))}
			return nil
		},
		Entry: func(i int, e Entry) error {
			if err := m.CheckLeaf(i, &e); err != nil {
				return err
			}
			b.Entries = append(b.Entries, e)
			return nil
		},
	})
	if err != nil {
		return nil, nil, err
	}
	return &b, signers, nil
}
