package verify

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"sync"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/keytrail/keytrail/verify/receipt"
)

// TestReceiptKeysCache: a key parsed through the cache is the key
// receipt.ParseKey gives for the same bytes, errors included, for any number
// of distinct keys (past the bound they are parsed each time), concurrently.
func TestReceiptKeysCache(t *testing.T) {
	var spkis [][]byte
	for range maxReceiptKeys + 4 {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKIXPublicKey(k.Public())
		if err != nil {
			t.Fatal(err)
		}
		spkis = append(spkis, der)
	}
	bad := append([]byte{}, spkis[0]...)
	bad[len(bad)-1] ^= 1 // off the curve
	var c receiptKeys
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 3 {
				for _, der := range spkis {
					for _, scheme := range []receipt.Scheme{receipt.SchemeP256DER, receipt.SchemeEd25519} {
						got, gotErr := c.parse(scheme, der)
						want, wantErr := receipt.ParseKey(scheme, der)
						if (gotErr == nil) != (wantErr == nil) {
							t.Errorf("%s: cached err %v, ParseKey err %v", scheme, gotErr, wantErr)
							continue
						}
						if gotErr != nil {
							if !errors.Is(gotErr, receipt.ErrKey) || gotErr.Error() != wantErr.Error() {
								t.Errorf("%s: cached err %v, ParseKey err %v", scheme, gotErr, wantErr)
							}
							continue
						}
						if got.Digest() != want.Digest() || got.Scheme() != want.Scheme() {
							t.Errorf("%s: cached key %s, ParseKey %s", scheme, got.Digest(), want.Digest())
						}
					}
				}
				if _, err := c.parse(receipt.SchemeP256DER, bad); !errors.Is(err, receipt.ErrKey) {
					t.Errorf("off-curve key: err = %v, want ErrKey", err)
				}
			}
		})
	}
	wg.Wait()
	if len(c.m) > maxReceiptKeys {
		t.Errorf("the cache holds %d keys, bound %d", len(c.m), maxReceiptKeys)
	}
	// Changing the bytes a key was parsed from does not change the cached key.
	der := append([]byte{}, spkis[1]...)
	k1, _ := c.parse(receipt.SchemeP256DER, der)
	der[len(der)-1] ^= 1
	if k2, err := c.parse(receipt.SchemeP256DER, der); err == nil || k2 == k1 {
		t.Errorf("changed bytes gave the cached key (err %v)", err)
	}
}

// TestProofHasherIsRFC6962: proofHasher hashes exactly as
// rfc6962.DefaultHasher, for hashes of the usual size and any other.
func TestProofHasherIsRFC6962(t *testing.T) {
	h := proofHasher{rfc6962.DefaultHasher}
	for _, n := range [][2]int{{32, 32}, {0, 0}, {31, 32}, {32, 33}, {64, 32}, {1, 1}} {
		l, r := make([]byte, n[0]), make([]byte, n[1])
		for i := range l {
			l[i] = byte(i*7 + 1)
		}
		for i := range r {
			r[i] = byte(i*13 + 5)
		}
		if got, want := h.HashChildren(l, r), rfc6962.DefaultHasher.HashChildren(l, r); !bytes.Equal(got, want) {
			t.Errorf("HashChildren(%d, %d bytes) = %x, want %x", n[0], n[1], got, want)
		}
	}
	if !bytes.Equal(h.HashLeaf([]byte("x")), rfc6962.DefaultHasher.HashLeaf([]byte("x"))) || !bytes.Equal(h.EmptyRoot(), rfc6962.DefaultHasher.EmptyRoot()) || h.Size() != 32 {
		t.Error("proofHasher differs from rfc6962.DefaultHasher")
	}
}
