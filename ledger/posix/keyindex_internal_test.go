package posix

import (
	"bytes"
	"crypto/sha256"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/transparency-dev/merkle/rfc6962"
)

func testKeyIndexState(t testing.TB, size uint64, keys map[string][]uint64) keyIndexState {
	t.Helper()
	r := rangeFactory.NewEmptyRange(0)
	for i := range size {
		if err := r.Append(rfc6962.DefaultHasher.HashLeaf([]byte{byte(i)}), nil); err != nil {
			t.Fatal(err)
		}
	}
	return keyIndexState{size: size, rng: r, keys: keys}
}

func TestKeyIndexRoundTrip(t *testing.T) {
	for _, s := range []keyIndexState{
		testKeyIndexState(t, 0, map[string][]uint64{}),
		testKeyIndexState(t, 1, map[string][]uint64{"a": {0}}),
		testKeyIndexState(t, 300, map[string][]uint64{"a": {0, 1, 299}, "b": {7}, "ключ": {128, 256}}),
	} {
		enc := encodeKeyIndex(s)
		got, err := decodeKeyIndex(enc)
		if err != nil {
			t.Fatalf("decode(encode(size %d)): %v", s.size, err)
		}
		if got.size != s.size || !got.rng.Equal(s.rng) {
			t.Errorf("size/range %d mismatch after round trip", s.size)
		}
		if diff := cmp.Diff(s.keys, got.keys); diff != "" {
			t.Errorf("keys mismatch (-want +got):\n%s", diff)
		}
	}
}

func TestDecodeKeyIndexRejects(t *testing.T) {
	valid := encodeKeyIndex(testKeyIndexState(t, 4, map[string][]uint64{"a": {1, 2}}))
	// reseal recomputes the checksum so each case reaches the structural checks.
	reseal := func(body []byte) []byte {
		sum := sha256.Sum256(body)
		return append(body, sum[:]...)
	}
	body := valid[:len(valid)-sha256.Size]
	for name, b := range map[string][]byte{
		"bad checksum":    append(bytes.Clone(body), make([]byte, sha256.Size)...),
		"trailing bytes":  reseal(append(bytes.Clone(body), 0)),
		"wrong magic":     reseal(append([]byte("keytrail keyindex v2\n"), body[len(keyIndexMagic):]...)),
		"too few hashes":  reseal(append([]byte(keyIndexMagic), 4, 0, 0)),
		"index past size": reseal(encodeBody(t, 4, map[string][]uint64{"a": {4}})),
		"repeated index":  reseal(encodeBody(t, 4, map[string][]uint64{"a": {1, 1}})),
		"padded varint":   reseal(append([]byte(keyIndexMagic), 0x80, 0x00, 0, 0)),
	} {
		if _, err := decodeKeyIndex(b); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

// encodeBody encodes a possibly invalid index, without its checksum.
func encodeBody(t testing.TB, size uint64, keys map[string][]uint64) []byte {
	b := encodeKeyIndex(testKeyIndexState(t, size, keys))
	return b[:len(b)-sha256.Size]
}

// FuzzDecodeKeyIndex checks that decoding never panics and that whatever
// decodes is canonical: it encodes back to the same bytes.
func FuzzDecodeKeyIndex(f *testing.F) {
	f.Add(encodeBody(f, 0, map[string][]uint64{}))
	f.Add(encodeBody(f, 300, map[string][]uint64{"a": {0, 1, 299}, "b": {7}}))
	f.Fuzz(func(t *testing.T, body []byte) {
		sum := sha256.Sum256(body)
		in := append(bytes.Clone(body), sum[:]...)
		s, err := decodeKeyIndex(in)
		if err != nil {
			return
		}
		if out := encodeKeyIndex(s); !bytes.Equal(out, in) {
			t.Errorf("decode then encode changed the bytes:\n in %x\nout %x", in, out)
		}
	})
}
