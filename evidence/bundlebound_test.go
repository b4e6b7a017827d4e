package evidence_test

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/internal/strictjson"
)

// endless is a bundle file that never ends: prefix, then unit again and
// again. It counts what is read and stops with errReadTooMuch once more than
// stop bytes are read, so that a reader without a bound fails the test
// instead of reading for ever.
type endless struct {
	prefix, unit []byte
	read, stop   int64
	off          int // in unit, once prefix is out
}

var errReadTooMuch = errors.New("test: the reader read past the bound")

func (e *endless) Read(p []byte) (int, error) {
	if e.read > e.stop {
		return 0, errReadTooMuch
	}
	n := 0
	for n < len(p) {
		if len(e.prefix) > 0 {
			k := copy(p[n:], e.prefix)
			e.prefix = e.prefix[k:]
			n += k
			continue
		}
		k := copy(p[n:], e.unit[e.off:])
		e.off = (e.off + k) % len(e.unit)
		n += k
	}
	e.read += int64(n)
	return n, nil
}

// TestReadBundleBoundedBeforeAuthentication (ATTACKS.md 44): whatever the
// member order and however large a value, ReadBundleFrom refuses an endless
// bundle file having read at most MaxManifestBytes (and a little read-ahead)
// before the manifest is authenticated, and at most one value's bound past
// the end of the value before it after; the memory it allocates meanwhile is
// bounded too. Without these bounds a file with its entries before its
// manifest was held whole, unauthenticated (about 440 MB for 160 MiB).
func TestReadBundleBoundedBeforeAuthentication(t *testing.T) {
	b, keys := genuine(t)
	s := string(b.BundleBytes)
	mt := `{"mediaType":"` + evidence.BundleMediaType + `",`
	entriesAt := strings.Index(s, `"entries":[`) + len(`"entries":[`)
	firstEntry := s[entriesAt:]
	firstEntry = firstEntry[:strings.Index(firstEntry, `},{`)+1]
	const slack = 1 << 20 // what the decoder may read ahead
	for _, c := range []struct {
		name         string
		prefix, unit string
		bound        int64 // bytes the reader may read
		want         error
	}{
		{"entries before the manifest", mt + `"entries":[`, firstEntry + ",", slack, evidence.ErrNotBundle},
		{"an endless manifest payload", mt + `"manifest":{"payloadType":"` + evidence.ManifestMediaType + `","payload":"`, "AAAA", evidence.MaxManifestBytes + slack, evidence.ErrNotBundle},
		{"an endless mediaType", `{"mediaType":"`, "a", evidence.MaxManifestBytes + slack, evidence.ErrNotBundle},
		{"an endless member name", `{"`, "a", evidence.MaxManifestBytes + slack, evidence.ErrNotBundle},
		{"endless whitespace before the manifest", mt, " ", evidence.MaxManifestBytes + slack, evidence.ErrNotBundle},
		{"an endless entry after the manifest", s[:entriesAt] + `{"envelope":"`, "AAAA", int64(entriesAt) + 2*slack, evidence.ErrBundleFormat},
		{"endless whitespace between entries", s[:entriesAt] + firstEntry + ",", " ", int64(entriesAt) + 2*slack, evidence.ErrBundleFormat},
		{"an endless mediaType after the entries", `{"manifest":` + manifestOf(t, b.BundleBytes) + s[strings.Index(s, `,"entries":`):len(s)-1] + `,"mediaType":"`, "a", int64(len(s)) + 2*slack, evidence.ErrBundleFormat},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := &endless{prefix: []byte(c.prefix), unit: []byte(c.unit), stop: c.bound + 8<<20}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			authenticated := false
			var m *evidence.Manifest
			err := evidence.ReadBundleFrom(in, evidence.BundleReader{
				Authenticate: func(env *evidence.Envelope) error {
					_, err := env.Verify(evidence.ManifestMediaType, keys)
					authenticated = err == nil
					return err
				},
				Manifest: func(mm *evidence.Manifest) error { m = mm; return nil },
				Entry:    func(i int, e evidence.Entry) error { return m.CheckLeaf(i, &e) },
			})
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("read %d bytes, allocated %d, authenticated %v: %v", in.read, alloc, authenticated, err)
			if errors.Is(err, errReadTooMuch) || in.read > c.bound {
				t.Fatalf("read %d bytes, bound %d: %v", in.read, c.bound, err)
			}
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), "larger than") && !strings.Contains(err.Error(), "manifest comes first") {
				t.Errorf("err = %v, want %v saying what is too large", err, c.want)
			}
			if limit := 4*uint64(c.bound) + 16<<20; alloc > limit {
				t.Errorf("allocated %d bytes, want at most %d", alloc, limit)
			}
		})
	}
}

// TestMaxManifestFits: the largest manifest a bundle can have, as its
// envelope, fits in MaxManifestBytes, so the bound refuses no valid bundle.
func TestMaxManifestFits(t *testing.T) {
	b, _ := genuine(t)
	// A checkpoint as large as a checkpoint can be, lines of printable text.
	line := strings.Repeat("x", 79) + "\n"
	cp := strings.Repeat(line, checkpoint.MaxBytes/len(line))
	long := strings.Repeat("k", 255)
	m := evidence.Manifest{
		Rotation:    b.Bundle.Rotation,
		Checkpoint:  cp,
		Entries:     make([]evidence.ManifestEntry, evidence.MaxBundleEntries),
		Consistency: &evidence.Consistency{Checkpoint: cp, Proof: make([][]byte, evidence.MaxProofHashes)},
	}
	m.Rotation.ID, m.Rotation.OldKey.ID, m.Rotation.NewKey.ID = long, long, long[:254]+"2"
	for i := range m.Entries {
		m.Entries[i] = evidence.ManifestEntry{Index: math.MaxUint64 - uint64(len(m.Entries)-i), LeafHash: make([]byte, 32)}
	}
	for i := range m.Consistency.Proof {
		m.Consistency.Proof[i] = make([]byte, 32)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	payload, err := strictjson.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	env := evidence.Envelope{PayloadType: evidence.ManifestMediaType, Payload: payload}
	for range evidence.MaxSignatures {
		// Larger than any signature keytrail verifies (RSA: at most 1 KiB).
		env.Signatures = append(env.Signatures, evidence.Signature{KeyID: strings.Repeat("a", 64), Sig: make([]byte, 8<<10)})
	}
	raw, err := strictjson.Marshal(&env)
	if err != nil {
		t.Fatal(err)
	}
	head := fmt.Sprintf(`{"mediaType":%q,"manifest":`, evidence.BundleMediaType)
	n := len(head) + len(raw)
	t.Logf("largest manifest: %d bytes of payload, %d up to the end of the manifest member; limit %d", len(payload), n, evidence.MaxManifestBytes)
	if n > evidence.MaxManifestBytes {
		t.Errorf("the largest manifest takes %d bytes, over MaxManifestBytes (%d)", n, evidence.MaxManifestBytes)
	}
	if n < evidence.MaxManifestBytes/4 {
		t.Errorf("the largest manifest takes %d bytes: MaxManifestBytes (%d) could be tighter", n, evidence.MaxManifestBytes)
	}
}
