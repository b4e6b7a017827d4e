package marvell_test

import (
	"testing"

	"github.com/keytrail/keytrail/attest/marvell"
)

// BenchmarkVerify is the whole verification of the Google Cloud HSM sample:
// gunzip, both chains, the signature, the key objects and the policy.
func BenchmarkVerify(b *testing.B) {
	v := verifier(b)
	ev := ecEvidence(b)
	b.ReportAllocs()
	for b.Loop() {
		if res := v.Verify(ev); !res.Verified {
			b.Fatal(res.Err())
		}
	}
}

// BenchmarkParse is the parser alone, on the decompressed sample.
func BenchmarkParse(b *testing.B) {
	raw := gunzip(b, "ec-key-attestation.dat.gz")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := marvell.Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}
