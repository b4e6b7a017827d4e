package luna_test

import (
	"bytes"
	"testing"

	"github.com/keytrail/keytrail/attest"
	"github.com/keytrail/keytrail/attest/luna"
)

// FuzzParsePKC: ParsePKC never panics, and what it accepts has exactly one
// encoding: MarshalPKC of its certificates is the input (non-malleability).
func FuzzParsePKC(f *testing.F) {
	f.Add(read(f, "ecc-pkc.p7b"))
	f.Add(read(f, "rsa-pkc.p7b"))
	f.Add(luna.MarshalPKC(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := luna.ParsePKC(b)
		if err != nil {
			return
		}
		var ders [][]byte
		for _, c := range p.Certificates {
			ders = append(ders, c.Raw)
		}
		if got := luna.MarshalPKC(ders); !bytes.Equal(got, b) {
			t.Fatalf("MarshalPKC(ParsePKC(b)) != b")
		}
	})
}

// FuzzVerify: the whole verifier on arbitrary PKCs. It never panics, its
// Verified agrees with Err, and it verifies only the genuine certificates (in
// any order, with or without the root's copy).
func FuzzVerify(f *testing.F) {
	v := verifier(f)
	genuine := map[string][]byte{}
	for _, name := range []string{"ecc-pkc.p7b", "rsa-pkc.p7b"} {
		b := read(f, name)
		f.Add(b)
		p, err := luna.ParsePKC(b)
		if err != nil {
			f.Fatal(err)
		}
		for _, c := range p.Certificates {
			genuine[string(c.Raw)] = c.Raw
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		res := v.Verify(luna.Evidence{PKC: b, LoggedAt: loggedAt})
		if c := res.Check(attest.CheckVerifier); c != nil {
			t.Fatalf("panic: %s", c.Reason)
		}
		if res.Verified != (res.Err() == nil) {
			t.Fatalf("Verified=%v, Err=%v", res.Verified, res.Err())
		}
		if !res.Verified {
			return
		}
		p, err := luna.ParsePKC(b)
		if err != nil {
			t.Fatalf("verified an unparsable PKC: %v", err)
		}
		for _, c := range p.Certificates {
			if _, ok := genuine[string(c.Raw)]; !ok {
				t.Fatalf("verified a PKC with a certificate not in the samples: %q", c.Subject)
			}
		}
	})
}
