package scenario

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"runtime"
	"sync"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/checkpoint"
)

// Floor is the benchmark floor of docs/benchmarks.md: the least any verifier
// of a bundle must do. Per entry: one raw DSSE signature check with the
// standard library (ECDSA P-256 with SHA-256 over the PAE, or Ed25519 for the
// records people sign), one RFC 6962 leaf hash and one inclusion proof; per
// signing receipt also the receipt's own signature (ECDSA P-256 over its
// digest), since a receipt counts only if it verifies (receipts.signature).
// Envelopes are decoded by NewFloor, before any clock starts.
type Floor struct {
	cp    checkpoint.Checkpoint
	items []floorItem
}

type floorItem struct {
	pae, sig []byte
	pub      crypto.PublicKey
	e        *evidence.Entry
	// receipt, for a signing receipt: the signature it reports, over its
	// digest, by the rotation's key (receipts.signature).
	receipt *floorReceipt
}

type floorReceipt struct {
	digest, sig []byte
	pub         *ecdsa.PublicKey
}

// NewFloor prepares the floor's work for b's bundle.
func NewFloor(b *Built) (*Floor, error) {
	cp, err := checkpoint.ParseUnverified([]byte(b.Bundle.Checkpoint))
	if err != nil {
		return nil, err
	}
	keys := map[string]crypto.PublicKey{}
	for _, q := range append([]Party{b.Collector, b.Requester}, b.Approvers...) {
		keys[q.Signer.Digest] = q.Key.Public()
	}
	f := &Floor{cp: cp, items: make([]floorItem, len(b.Bundle.Entries))}
	for i := range b.Bundle.Entries {
		e := &b.Bundle.Entries[i]
		env, err := evidence.ParseEnvelope(e.Envelope, evidence.MaxRecordBytes)
		if err != nil {
			return nil, err
		}
		f.items[i] = floorItem{pae: evidence.PAE(env.PayloadType, env.Payload), sig: env.Signatures[0].Sig, pub: keys[env.Signatures[0].KeyID], e: e}
		if _, p, err := evidence.ParseStatement(env.Payload); err == nil {
			if r, ok := p.(*evidence.SigningReceipt); ok && r.Scheme == evidence.SchemeP256DER {
				d, err := hex.DecodeString(r.Digest)
				if err != nil {
					return nil, err
				}
				pub, err := x509.ParsePKIXPublicKey(r.PublicKey)
				if err != nil {
					return nil, err
				}
				f.items[i].receipt = &floorReceipt{d, r.Signature, pub.(*ecdsa.PublicKey)}
			}
		}
	}
	return f, nil
}

// Run does the floor's work on all cores and fails if any entry does not verify.
func (f *Floor) Run() error {
	var wg sync.WaitGroup
	w := runtime.GOMAXPROCS(0)
	errs := make([]error, w)
	for k := range w {
		wg.Go(func() {
			for i := k; i < len(f.items); i += w {
				it := f.items[i]
				if !rawVerify(it.pub, it.pae, it.sig) {
					errs[k] = fmt.Errorf("floor: entry %d: bad signature", i)
					return
				}
				if r := it.receipt; r != nil && !ecdsa.VerifyASN1(r.pub, r.digest, r.sig) {
					errs[k] = fmt.Errorf("floor: entry %d: bad receipt signature", i)
					return
				}
				leaf := rfc6962.DefaultHasher.HashLeaf(it.e.Envelope)
				if err := proof.VerifyInclusion(rfc6962.DefaultHasher, it.e.Index, f.cp.Size, leaf, it.e.InclusionProof, f.cp.Root); err != nil {
					errs[k] = fmt.Errorf("floor: entry %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

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
