package witness_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/keytrail/keytrail/witness"
)

const testHash = "KgEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

func TestParseRequest(t *testing.T) {
	cp := "example.com/log\n3\n" + testHash + "\n\n\u2014 example.com/log AAAA\n"
	for _, tc := range []struct {
		name, body string
		ok         bool
		old        uint64
		proof      int
	}{
		{"no proof", "old 0\n\n" + cp, true, 0, 0},
		{"two proof lines", "old 2\n" + testHash + "\n" + testHash + "\n\n" + cp, true, 2, 2},
		{"leading zero", "old 02\n\n" + cp, false, 0, 0},
		{"sign", "old +2\n\n" + cp, false, 0, 0},
		{"no old line", "\n" + cp, false, 0, 0},
		{"wrong keyword", "new 2\n\n" + cp, false, 0, 0},
		{"31-byte hash", "old 2\nKgEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n\n" + cp, false, 0, 0},
		{"non-canonical base64", "old 2\nKgEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=\n\n" + cp, false, 0, 0},
		{"no checkpoint", "old 2\n\n", false, 0, 0},
		{"no empty line", "old 2\n" + testHash, false, 0, 0},
		{"64 proof lines", "old 2\n" + strings.Repeat(testHash+"\n", 64) + "\n" + cp, false, 0, 0},
		{"63 proof lines", "old 2\n" + strings.Repeat(testHash+"\n", 63) + "\n" + cp, true, 2, 63},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := witness.ParseRequest([]byte(tc.body))
			if !tc.ok {
				if !errors.Is(err, witness.ErrMalformed) {
					t.Fatalf("ParseRequest = %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.OldSize != tc.old || len(r.Proof) != tc.proof || string(r.Checkpoint) != cp {
				t.Fatalf("ParseRequest = %+v", r)
			}
		})
	}
}

// FuzzParseRequest: whatever parses re-encodes to the same bytes (one
// request has one encoding), and nothing panics.
func FuzzParseRequest(f *testing.F) {
	cp := "example.com/log\n3\n" + testHash + "\n\n\u2014 example.com/log AAAA\n"
	f.Add([]byte("old 0\n\n" + cp))
	f.Add([]byte("old 2\n" + testHash + "\n\n" + cp))
	f.Add([]byte("old 18446744073709551615\n\nx"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := witness.ParseRequest(b)
		if err != nil {
			return
		}
		if got := r.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("re-encoded %q as %q", b, got)
		}
	})
}
