package tpm_test

import "testing"

// BenchmarkVerify is the whole verification of a TPM2_Certify and of a
// TPM2_Quote (ECDSA P-256 AK, SHA-256).
func BenchmarkVerify(b *testing.B) {
	f := newFake(b)
	v := f.verifier(b)
	_, pub := key(b, residentAttrs)
	for name, ev := range map[string]func() any{
		"certify": func() any { return f.certify(b, pub, testNonce) },
		"quote":   func() any { return f.quote(b, []int{0, 1, 7}, pcrValues(), testNonce) },
	} {
		e := ev()
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if res := v.Verify(asEvidence(e)); !res.Verified {
					b.Fatal(res.Err())
				}
			}
		})
	}
}
