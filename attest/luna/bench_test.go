package luna_test

import (
	"testing"

	"github.com/keytrail/keytrail/attest/luna"
)

// BenchmarkVerify is the whole verification of each sample PKC with its CSR.
func BenchmarkVerify(b *testing.B) {
	v := verifier(b)
	for _, name := range []string{"ecc", "rsa"} {
		b.Run(name, func(b *testing.B) {
			ev := luna.Evidence{PKC: read(b, name+"-pkc.p7b"), CSR: read(b, name+"-test.csr"), LoggedAt: loggedAt}
			b.ReportAllocs()
			for b.Loop() {
				if res := v.Verify(ev); !res.Verified {
					b.Fatal(res.Err())
				}
			}
		})
	}
}

// BenchmarkParsePKC is the PKCS #7 parser and the certificate parsing alone.
func BenchmarkParsePKC(b *testing.B) {
	pkc := read(b, "rsa-pkc.p7b")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := luna.ParsePKC(pkc); err != nil {
			b.Fatal(err)
		}
	}
}
