package marvell_test

import (
	"bytes"
	"testing"

	"github.com/keytrail/keytrail/attest"
	"github.com/keytrail/keytrail/attest/marvell"
)

// FuzzParse: Parse never panics, and what it accepts has exactly one encoding:
// Marshal(Parse(b)) == b (non-malleability).
func FuzzParse(f *testing.F) {
	f.Add(gunzip(f, "ec-key-attestation.dat.gz"))
	f.Add(gunzip(f, "rsa-key-attestation-other-hsm.dat.gz"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := marvell.Parse(b)
		if err != nil {
			return
		}
		if got := marvell.Marshal(a); !bytes.Equal(got, b) {
			t.Fatalf("Marshal(Parse(b)) != b\n got %x\nwant %x", got, b)
		}
		if !bytes.Equal(append(bytes.Clone(a.Signed), a.Signature...), b) {
			t.Fatal("Signed || Signature != b")
		}
	})
}

// FuzzDecompress: bounded output, no panic.
func FuzzDecompress(f *testing.F) {
	f.Add(read(f, "ec-key-attestation.dat.gz"))
	f.Add(read(f, "rsa-key-attestation-other-hsm.dat.gz"))
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := marvell.Decompress(b)
		if err == nil && len(out) > marvell.MaxBytes {
			t.Fatalf("%d bytes out", len(out))
		}
	})
}

// FuzzVerify: the whole verifier, on arbitrary attestations. It never panics,
// its Verified agrees with Err, and with the genuine chains it verifies only
// the genuine attestation's content. Each input is verified first without
// certificates (the content checks still run, and fast), then, if its content
// parses, with the chains.
func FuzzVerify(f *testing.F) {
	v := verifier(f)
	genuine := gunzip(f, "ec-key-attestation.dat.gz")
	f.Add(read(f, "ec-key-attestation.dat.gz"))
	f.Add(genuine)
	f.Add(read(f, "rsa-key-attestation-other-hsm.dat.gz"))
	certs := chains(f)
	check := func(t *testing.T, res *attest.Result) {
		if c := res.Check(attest.CheckVerifier); c != nil {
			t.Fatalf("panic: %s", c.Reason)
		}
		if res.Verified != (res.Err() == nil) {
			t.Fatalf("Verified=%v, Err=%v", res.Verified, res.Err())
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		res := v.Verify(marvell.Evidence{Attestation: b, LoggedAt: loggedAt})
		check(t, res)
		if res.Verified {
			t.Fatal("verified without certificates")
		}
		if c := res.Check(marvell.CheckKeyObjects); c == nil || c.Status != attest.Pass {
			return
		}
		res = v.Verify(marvell.Evidence{Attestation: b, Certificates: certs, LoggedAt: loggedAt})
		check(t, res)
		if res.Verified {
			if out, err := marvell.Decompress(b); err != nil || !bytes.Equal(out, genuine) {
				t.Fatalf("verified other content: %x", b)
			}
		}
	})
}
