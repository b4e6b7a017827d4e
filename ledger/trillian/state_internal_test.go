package trillian

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"testing"
)

func testState(t testing.TB, n int) state {
	rng := rangeFactory.NewEmptyRange(0)
	for i := range n {
		h := sha256.Sum256([]byte{byte(i)})
		if err := rng.Append(h[:], nil); err != nil {
			t.Fatal(err)
		}
	}
	return state{raw: []byte("example.com/log\n5\nAAAA\n\n— example.com/log sig\n"), rng: rng}
}

func TestStateRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 5, 256, 1000} {
		s := testState(t, n)
		raw, hashes, err := decodeState(encodeState(s))
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if !bytes.Equal(raw, s.raw) || len(hashes) != len(s.rng.Hashes()) {
			t.Fatalf("n=%d: round trip differs", n)
		}
		for i := range hashes {
			if !bytes.Equal(hashes[i], s.rng.Hashes()[i]) {
				t.Fatalf("n=%d: hash %d differs", n, i)
			}
		}
	}
}

func TestDecodeStateRejects(t *testing.T) {
	good := encodeState(testState(t, 5))
	for name, b := range map[string][]byte{
		"empty":     nil,
		"magic":     append([]byte("x"), good[1:]...),
		"truncated": good[:len(good)-1],
		"checksum":  append(bytes.Clone(good[:len(good)-1]), good[len(good)-1]^1),
		"too large": make([]byte, maxStateSize+1),
	} {
		if _, _, err := decodeState(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

// FuzzDecodeState: decodeState never panics, and what it accepts re-encodes
// to the same bytes (the encoding is canonical).
func FuzzDecodeState(f *testing.F) {
	for _, n := range []int{0, 1, 7} {
		f.Add(encodeState(testState(f, n)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		raw, hashes, err := decodeState(b)
		if err != nil {
			return
		}
		body := []byte(stateMagic)
		body = binary.AppendUvarint(body, uint64(len(raw)))
		body = append(body, raw...)
		body = binary.AppendUvarint(body, uint64(len(hashes)))
		for _, h := range hashes {
			body = append(body, h...)
		}
		sum := sha256.Sum256(body)
		if !bytes.Equal(append(body, sum[:]...), b) {
			t.Fatalf("accepted a non-canonical encoding")
		}
	})
}
