package verify_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"runtime"
	"sync"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/internal/scenario"
	"github.com/keytrail/keytrail/verify"
)

// The benchmark of docs/benchmarks.md: a 10,000-entry bundle proven against a
// 1,000,000-entry log, next to the floor, measured in the same run:
//
//	go test -run '^$' -bench 'VerifyBundle|Floor' -benchtime 10x ./verify/
const (
	benchEntries = 10_000
	benchLog     = 1_000_000
)

var (
	largeOnce sync.Once
	large     *scenario.Built
	largeErr  error
)

func largeBundle(b *testing.B) *scenario.Built {
	largeOnce.Do(func() { large, largeErr = scenario.Large(context.Background(), benchEntries, benchLog) })
	if largeErr != nil {
		b.Fatal(largeErr)
	}
	return large
}

func BenchmarkVerifyBundle(b *testing.B) {
	l := largeBundle(b)
	v, err := verify.New(l.Trust, l.Policy)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(l.BundleBytes)))
	b.ResetTimer()
	for b.Loop() {
		res, err := v.VerifyBundle(l.BundleBytes, verify.Options{})
		if err != nil || !res.Verified {
			b.Fatalf("not verified: %v %v", err, res.Err())
		}
	}
	b.ReportMetric(float64(benchEntries*b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkFloor is the least work any verifier of the same bundle must do:
// for each entry one DSSE P-256 verification over the PAE, one RFC 6962 leaf
// hash and one inclusion proof, on all cores like VerifyBundle.
func BenchmarkFloor(b *testing.B) {
	l := largeBundle(b)
	cp, err := checkpoint.ParseUnverified([]byte(l.Bundle.Checkpoint))
	if err != nil {
		b.Fatal(err)
	}
	keys := rawKeys(l)
	type item struct {
		pae, sig []byte
		pub      crypto.PublicKey
		e        *evidence.Entry
	}
	items := make([]item, len(l.Bundle.Entries))
	for i := range l.Bundle.Entries {
		e := &l.Bundle.Entries[i]
		env, err := evidence.ParseEnvelope(e.Envelope, evidence.MaxRecordBytes)
		if err != nil {
			b.Fatal(err)
		}
		items[i] = item{evidence.PAE(env.PayloadType, env.Payload), env.Signatures[0].Sig, keys[env.Signatures[0].KeyID], e}
	}
	b.SetBytes(int64(len(l.BundleBytes)))
	b.ResetTimer()
	for b.Loop() {
		var wg sync.WaitGroup
		w := runtime.GOMAXPROCS(0)
		for k := range w {
			wg.Go(func() {
				for i := k; i < len(items); i += w {
					it := items[i]
					if !rawVerify(it.pub, it.pae, it.sig) {
						panic("floor: bad signature")
					}
					leaf := rfc6962.DefaultHasher.HashLeaf(it.e.Envelope)
					if err := proof.VerifyInclusion(rfc6962.DefaultHasher, it.e.Index, cp.Size, leaf, it.e.InclusionProof, cp.Root); err != nil {
						panic(err)
					}
				}
			})
		}
		wg.Wait()
	}
	b.ReportMetric(float64(benchEntries*b.N)/b.Elapsed().Seconds(), "entries/s")
}

// rawKeys maps each record signer's key digest to its public key.
func rawKeys(b *scenario.Built) map[string]crypto.PublicKey {
	m := map[string]crypto.PublicKey{}
	for _, q := range append([]scenario.Party{b.Collector, b.Requester}, b.Approvers...) {
		m[q.Signer.Digest] = q.Key.Public()
	}
	return m
}

// rawVerify is a bare DSSE signature check with the standard library: ECDSA
// with SHA-256 for the P-256 collector (all but 3 of the records), Ed25519 for
// the people.
func rawVerify(pub crypto.PublicKey, pae, sig []byte) bool {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		d := sha256.Sum256(pae)
		return ecdsa.VerifyASN1(k, d[:], sig)
	case ed25519.PublicKey:
		return ed25519.Verify(k, pae, sig)
	}
	return false
}
