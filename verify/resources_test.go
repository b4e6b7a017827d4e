package verify_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/scenario"
	"github.com/keytrail/keytrail/verify"
)

// allocated runs f and returns the bytes it allocated.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// ATTACKS.md 29: endless data (sigstore-go CVE-2024-45395). Counts of
// signatures, subjects, entries and proof hashes are bounded, and input is
// rejected with bounded memory: a small multiple of its own size.
func TestAttack29_EndlessData(t *testing.T) {
	ctx := context.Background()
	b := build(t, nil)

	t.Run("100k signatures on an envelope", func(t *testing.T) {
		var sb strings.Builder
		sb.WriteString(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[`)
		for i := range 100_000 {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(`{"sig":"AAAA"}`)
		}
		sb.WriteString(`]}`)
		in := []byte(sb.String())
		var err error
		if n := allocated(func() { _, err = evidence.ParseEnvelope(in, len(in)) }); n > uint64(20*len(in)) {
			t.Errorf("allocated %d bytes for %d bytes of input", n, len(in))
		}
		if !errors.Is(err, evidence.ErrTooManySigners) {
			t.Fatalf("err = %v, want ErrTooManySigners", err)
		}
		// Through the verifier, as a bundle file: unreadable input, not a crash.
		if _, err := mustVerifier(t, b).VerifyBundle(in, verify.Options{}); !errors.Is(err, verify.ErrInput) {
			t.Fatalf("VerifyBundle: %v", err)
		}
	})

	t.Run("100k subjects in a statement", func(t *testing.T) {
		var sb strings.Builder
		sb.WriteString(`{"_type":"https://in-toto.io/Statement/v1","subject":[`)
		for i := range 100_000 {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"name":"k%d","digest":{"sha256":"%064x"}}`, i, i)
		}
		sb.WriteString(`],"predicateType":"https://keytrail.dev/predicates/lifecycle-event/v1","predicate":{}}`)
		_, _, err := evidence.ParseStatement([]byte(sb.String()))
		if err == nil {
			t.Fatal("100k subjects accepted")
		}
	})

	t.Run("100k entries in a signed bundle", func(t *testing.T) {
		huge := *b.Bundle
		huge.Entries = nil
		tiny := []byte(`{"payloadType":"x","payload":"","signatures":[{"sig":"AA=="}]}`)
		for i := range 100_000 {
			huge.Entries = append(huge.Entries, evidence.Entry{Index: uint64(i), Envelope: tiny})
		}
		raw, err := b.Resign(ctx, &huge)
		if err != nil {
			t.Fatal(err)
		}
		// Decoding is linear in the input; with entries this small the per-entry
		// bookkeeping dominates, hence 8x rather than the ~2x of real entries.
		var res *verify.Result
		if n := allocated(func() { res = run(t, b, raw, verify.Options{}) }); n > uint64(8*len(raw)) {
			t.Errorf("allocated %d bytes for a %d-byte bundle", n, len(raw))
		}
		c := res.Check(verify.CheckBundleFormat)
		if res.Verified || c.Status != verify.Fail || !strings.Contains(c.Reason, "limit 65536") {
			t.Fatalf("bundle.format: %s %s", c.Status, c.Reason)
		}
	})

	t.Run("proof of 100k hashes", func(t *testing.T) {
		long := *b.Bundle
		long.Entries = append([]evidence.Entry{}, b.Bundle.Entries...)
		h := bytes.Repeat([]byte{7}, 32)
		long.Entries[0].InclusionProof = nil
		for range 100_000 {
			long.Entries[0].InclusionProof = append(long.Entries[0].InclusionProof, h)
		}
		raw, err := b.Resign(ctx, &long)
		if err != nil {
			t.Fatal(err)
		}
		res := run(t, b, raw, verify.Options{})
		// Refused by the bound on one entry (ATTACKS.md 44) before the proof's.
		if c := res.Check(verify.CheckBundleFormat); res.Verified || c.Status != verify.Fail || !strings.Contains(c.Reason, "entries[0] is larger than") {
			t.Fatalf("bundle.format: %s %s", c.Status, c.Reason)
		}
	})

	t.Run("bundle over the size limit", func(t *testing.T) {
		in := []byte(`{"mediaType":"application/vnd.keytrail.bundle.v1+json","entries":[{"envelope":"` + strings.Repeat("A", evidence.MaxBundleBytes) + `"}]}`)
		if _, err := mustVerifier(t, b).VerifyBundle(in, verify.Options{}); !errors.Is(err, verify.ErrInput) || !strings.Contains(err.Error(), "too large") {
			t.Fatalf("VerifyBundle: %v", err)
		}
		// Streamed, a limit holds too, whatever the reader: here the bound on
		// the bytes up to the manifest's end (the entries must come after it).
		in = []byte(`{"mediaType":"application/vnd.keytrail.bundle.v1+json","manifest":{"payload":"` + strings.Repeat("A", evidence.MaxBundleBytes) + `"}}`)
		if _, err := mustVerifier(t, b).VerifyBundleFrom(bytes.NewReader(in), verify.Options{}); !errors.Is(err, verify.ErrInput) || !strings.Contains(err.Error(), "too large") {
			t.Fatalf("VerifyBundleFrom: %v", err)
		}
	})

	t.Run("envelope inside a bundle over 64 KiB", func(t *testing.T) {
		big := *b.Bundle
		big.Entries = append([]evidence.Entry{}, b.Bundle.Entries...)
		big.Entries[0].Envelope = []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"` + base64.StdEncoding.EncodeToString(make([]byte, 70<<10)) + `","signatures":[{"sig":"AAAA"}]}`)
		raw, _ := b.Resign(ctx, &big)
		res := run(t, b, raw, verify.Options{})
		if c := res.Check(verify.CheckBundleFormat); res.Verified || c.Status != verify.Fail {
			t.Fatalf("bundle.format: %s %s", c.Status, c.Reason)
		}
	})
}

// ATTACKS.md 30: a panic anywhere in verification is a failed result, never a
// crash and never a pass.
func TestAttack30_PanicIsFailure(t *testing.T) {
	b := build(t, nil)
	v := verify.BrokenVerifier(mustVerifier(t, b))
	res, err := v.VerifyBundle(b.BundleBytes, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Verified {
		t.Fatal("a verifier that panicked reported Verified")
	}
	c := res.Check("verifier")
	if c == nil || c.Status != verify.Fail || !errors.Is(c.Err(), verify.ErrPanic) {
		t.Fatalf("no failed verifier check: %+v", res.Checks)
	}
}

func mustVerifier(t *testing.T, b *scenario.Built) *verify.Verifier {
	t.Helper()
	v, err := verify.New(b.Trust, b.Policy)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
