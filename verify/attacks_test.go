package verify_test

// Tests for the bad input of /work/shared/ATTACKS.md, cases 1 to 17: one test per
// case, named after it. Every bundle here is really signed: a tampered bundle is
// re-signed by the (dishonest) operator, so the check that catches it is the
// deeper one the case is about, and the same bundle under the genuine signature
// is shown to fail bundle.signature.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/internal/scenario"
	"github.com/keytrail/keytrail/internal/strictjson"
	"github.com/keytrail/keytrail/verify"
)

var ctx = context.Background()

// Positions of the rotation's records in scenario.Built.Records and in the
// entries of the genuine bundle (scenario.Parties.Steps).
const (
	recRequest = iota
	recCreate
	recSmoke
	recApproveAlice
	recApproveBob
	recPromote
	recDisable
)

func dump(res *verify.Result) string {
	j, _ := strictjson.MarshalIndent(res)
	return string(j)
}

func wantVerified(t testing.TB, res *verify.Result) {
	t.Helper()
	if !res.Verified {
		t.Fatalf("not verified, want verified:\n%s", dump(res))
	}
}

// wantFail asserts that res is not verified and that check name FAILed with an
// error wrapping every one of sentinels.
func wantFail(t testing.TB, res *verify.Result, name string, sentinels ...error) *verify.Check {
	t.Helper()
	if res.Verified {
		t.Errorf("verified, want not verified")
	}
	c := res.Check(name)
	if c == nil || c.Status != verify.Fail {
		t.Fatalf("check %s did not fail:\n%s", name, dump(res))
	}
	for _, s := range sentinels {
		if !errors.Is(c.Err(), s) {
			t.Errorf("check %s: error %q does not wrap %q", name, c.Err(), s)
		}
	}
	return c
}

func cloneBundle(t testing.TB, in *evidence.Bundle) *evidence.Bundle {
	t.Helper()
	raw, err := strictjson.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out evidence.Bundle
	if err := strictjson.Unmarshal(raw, &out, evidence.MaxBundleBytes); err != nil {
		t.Fatal(err)
	}
	return &out
}

func resign(t testing.TB, b *scenario.Built, bundle *evidence.Bundle) []byte {
	t.Helper()
	raw, err := b.Resign(ctx, bundle)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// signPayload signs payload verbatim as a bundle manifest, as the operator, and
// pairs it with the genuine bundle's entries.
func signPayload(t testing.TB, b *scenario.Built, payload []byte) []byte {
	t.Helper()
	raw, err := evidence.Sign(ctx, evidence.ManifestMediaType, payload, b.Operator.Signer)
	if err != nil {
		t.Fatal(err)
	}
	return bundleFile(t, b, raw)
}

// bundleFile pairs a manifest envelope with the genuine bundle's entries.
func bundleFile(t testing.TB, b *scenario.Built, manifestEnvelope []byte) []byte {
	t.Helper()
	return bundleFileOf(t, manifestEnvelope, b.Bundle)
}

func bundleFileOf(t testing.TB, manifestEnvelope []byte, bundle *evidence.Bundle) []byte {
	t.Helper()
	raw, err := evidence.AssembleBundle(manifestEnvelope, bundle)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// manifestEnvelope returns the manifest envelope of a bundle file.
func manifestEnvelope(t testing.TB, raw []byte) *evidence.Envelope {
	t.Helper()
	var f struct {
		Manifest json.RawMessage `json:"manifest"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	return parseEnvelope(t, f.Manifest)
}

// manifestJSON is the genuine bundle's manifest payload.
func manifestJSON(t testing.TB, b *scenario.Built) []byte {
	t.Helper()
	return manifestEnvelope(t, b.BundleBytes).Payload
}

func parseEnvelope(t testing.TB, raw []byte) *evidence.Envelope {
	t.Helper()
	env, err := evidence.ParseEnvelope(raw, evidence.MaxBundleBytes)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func marshal(t testing.TB, v any) []byte {
	t.Helper()
	raw, err := strictjson.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// underOldSignature returns bundle as a file whose manifest carries the genuine
// bundle's signature.
func underOldSignature(t testing.TB, b *scenario.Built, bundle *evidence.Bundle) []byte {
	t.Helper()
	env := manifestEnvelope(t, b.BundleBytes)
	env.Payload = marshal(t, evidence.ManifestOf(bundle))
	return bundleFileOf(t, marshal(t, env), bundle)
}

// wantFailUnderOldSignature: a tampered bundle under the genuine signature
// fails the signature if the tampering reached the signed manifest, and the
// inclusion check if it only changed a proof (proofs are covered by the signed
// root, not by the signature).
func wantFailUnderOldSignature(t testing.TB, res *verify.Result) {
	t.Helper()
	if res.Verified {
		t.Fatalf("verified under the old signature")
	}
	sig, inc := res.Check(verify.CheckBundleSignature), res.Check(verify.CheckEntriesInclusion)
	if !(sig.Status == verify.Fail && errors.Is(sig.Err(), evidence.ErrBadSignature)) && !(inc.Status == verify.Fail && errors.Is(inc.Err(), verify.ErrInclusion)) {
		t.Fatalf("under the old signature neither the signature nor an inclusion proof failed:\n%s", dump(res))
	}
}

// tampered checks a tampered bundle twice. Under the genuine bundle's signature
// it must fail bundle.signature. Re-signed by the operator, it must fail check
// name with an error wrapping every one of sentinels; that check is returned.
func tampered(t testing.TB, b *scenario.Built, bundle *evidence.Bundle, opts verify.Options, name string, sentinels ...error) *verify.Check {
	t.Helper()
	wantFailUnderOldSignature(t, run(t, b, underOldSignature(t, b, bundle), opts))
	return wantFail(t, run(t, b, resign(t, b, bundle), opts), name, sentinels...)
}

func logVerifier(t testing.TB, b *scenario.Built) note.Verifier {
	t.Helper()
	v, err := note.NewVerifier(b.LogVerifier)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// cpAt is the log's signed checkpoint at size n.
func cpAt(t testing.TB, b *scenario.Built, n uint64) []byte {
	t.Helper()
	cp, err := b.Log.CheckpointAt(n)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func openCP(t testing.TB, b *scenario.Built, signed []byte) checkpoint.Checkpoint {
	t.Helper()
	c, _, err := checkpoint.Open(signed, b.Origin, logVerifier(t, b))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// body is the text of a signed note, without its signatures.
func body(signed []byte) string {
	return string(signed[:bytes.LastIndex(signed, []byte("\n\n"))+1])
}

// sigLines are the signature lines of a signed note.
func sigLines(signed []byte) string {
	return string(signed[bytes.LastIndex(signed, []byte("\n\n"))+2:])
}

// noteSigner is a fresh signed-note key named name.
func noteSigner(t testing.TB, name string) (note.Signer, string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s, vkey
}

func signNote(t testing.TB, text string, signers ...note.Signer) string {
	t.Helper()
	signed, err := note.Sign(&note.Note{Text: text}, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

// badLogSigLine is a signature line that claims the log's key name and key hash
// but does not verify.
func badLogSigLine(t testing.TB, b *scenario.Built) string {
	t.Helper()
	v := logVerifier(t, b)
	sig := binary.BigEndian.AppendUint32(nil, v.KeyHash())
	sig = append(sig, bytes.Repeat([]byte{7}, ed25519.SignatureSize)...)
	return "\u2014 " + v.Name() + " " + base64.StdEncoding.EncodeToString(sig) + "\n"
}

// proveAt returns a copy of in against b's log checkpoint at size n, with every
// inclusion proof recomputed.
func proveAt(t testing.TB, b *scenario.Built, in *evidence.Bundle, n uint64) *evidence.Bundle {
	t.Helper()
	out := cloneBundle(t, in)
	out.Checkpoint = string(cpAt(t, b, n))
	for i := range out.Entries {
		p, err := b.Log.InclusionProof(ctx, out.Entries[i].Index, n)
		if err != nil {
			t.Fatal(err)
		}
		out.Entries[i].InclusionProof = p
	}
	return out
}

// withRecords logs envs and returns the genuine bundle without the entries at
// positions drop, with the new records added, against the log's new checkpoint.
func withRecords(t testing.TB, b *scenario.Built, drop []int, envs ...[]byte) *evidence.Bundle {
	t.Helper()
	out := cloneBundle(t, b.Bundle)
	var kept []evidence.Entry
	for i, e := range out.Entries {
		if !slices.Contains(drop, i) {
			kept = append(kept, e)
		}
	}
	for _, env := range envs {
		i, err := b.Log.Append(ctx, env)
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, evidence.Entry{Index: i, Envelope: env})
	}
	out.Entries = kept
	return proveAt(t, b, out, b.Log.Size())
}

// payloadOf is the payload of a record envelope.
func payloadOf(t testing.TB, raw []byte) []byte {
	t.Helper()
	return parseEnvelope(t, raw).Payload
}

func statementOf(t testing.TB, raw []byte) (*evidence.Statement, evidence.Predicate) {
	t.Helper()
	st, p, err := evidence.ParseStatement(payloadOf(t, raw))
	if err != nil {
		t.Fatal(err)
	}
	return st, p
}

// signRecord signs payload, unchecked, as an in-toto record by signer.
func signRecord(t testing.TB, payload []byte, signers ...*evidence.Signer) []byte {
	t.Helper()
	raw, err := evidence.Sign(ctx, evidence.PayloadType, payload, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// replace returns s with old replaced once by new, failing if old is absent.
func replace(t testing.TB, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("test setup: %q not in %q", old, s)
	}
	return strings.Replace(s, old, new, 1)
}

func edSigner(t testing.TB) *evidence.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := evidence.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// withoutSteps drops the steps at positions drop.
func withoutSteps(drop ...int) func([]scenario.Step) []scenario.Step {
	return func(steps []scenario.Step) []scenario.Step {
		var out []scenario.Step
		for i, s := range steps {
			if !slices.Contains(drop, i) {
				out = append(out, s)
			}
		}
		return out
	}
}

// again adds a copy of step i, moved by d, as a separate record.
func again(i int, d time.Duration) func([]scenario.Step) []scenario.Step {
	return func(steps []scenario.Step) []scenario.Step {
		s := steps[i]
		ev := *s.Event
		ev.At = evidence.AtTime(s.Event.RecordTime().Add(d))
		s.Event = &ev
		return append(steps, s)
	}
}

// TestAttackHarness shows that the helpers above leave a genuine bundle
// verifiable, so that each failure below is caused by the tampering alone.
func TestAttackHarness(t *testing.T) {
	b := build(t, nil)
	wantVerified(t, run(t, b, underOldSignature(t, b, b.Bundle), verify.Options{}))
	wantVerified(t, run(t, b, resign(t, b, cloneBundle(t, b.Bundle)), verify.Options{}))
	wantVerified(t, run(t, b, resign(t, b, withRecords(t, b, []int{recCreate}, b.Records[recCreate])), verify.Options{}))
	b.Log.AppendFiller(100)
	grown := proveAt(t, b, b.Bundle, b.Log.Size())
	wantVerified(t, run(t, b, resign(t, b, grown), verify.Options{Since: cpAt(t, b, b.Log.Size())}))
	wantVerified(t, run(t, b, resign(t, b, grown), verify.Options{}))
}

// ATTACKS.md case 1: an inclusion proof at an index at or past the tree size.
func TestAttack01_LeafIndexEqualsTreeSize(t *testing.T) {
	for _, tt := range []struct {
		name  string
		index func(size uint64) uint64
	}{
		{"index equals tree size", func(size uint64) uint64 { return size }},
		{"index is tree size plus one", func(size uint64) uint64 { return size + 1 }},
		{"index is 2^64-1", func(uint64) uint64 { return math.MaxUint64 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := build(t, nil)
			bundle := cloneBundle(t, b.Bundle)
			last := &bundle.Entries[len(bundle.Entries)-1]
			last.Index = tt.index(openCP(t, b, []byte(b.Bundle.Checkpoint)).Size)
			c := tampered(t, b, bundle, verify.Options{}, verify.CheckEntriesInclusion, verify.ErrInclusion)
			if !strings.Contains(c.Reason, "is not below tree size") {
				t.Errorf("reason %q does not say the index is out of the tree", c.Reason)
			}
		})
	}
	// The last leaf of a tree, presented against the checkpoint one smaller with
	// the proof of the larger tree: its index then equals the tree size.
	t.Run("last leaf against the previous checkpoint", func(t *testing.T) {
		b := build(t, nil)
		size := b.Log.Size()
		bundle := cloneBundle(t, b.Bundle)
		last := bundle.Entries[len(bundle.Entries)-1]
		if last.Index != size-1 {
			t.Fatalf("test setup: last entry %d is not the log's last leaf (size %d)", last.Index, size)
		}
		bundle = proveAt(t, b, &evidence.Bundle{Rotation: bundle.Rotation, Entries: bundle.Entries[:len(bundle.Entries)-1]}, size-1)
		bundle.Entries = append(bundle.Entries, last)
		tampered(t, b, bundle, verify.Options{}, verify.CheckEntriesInclusion, verify.ErrInclusion)
	})
}

// Sizes of the consistency fixtures: the bundle's checkpoint is at s2 and it
// carries a consistency proof from the checkpoint at s1.
const s1, s2 = 6, 20

// grown builds a rotation whose log grew to 64 leaves and a bundle against the
// checkpoint at s2 carrying a consistency proof from s1. With --since at s1 it
// verifies.
func grown(t testing.TB) (*scenario.Built, *evidence.Bundle) {
	t.Helper()
	b := build(t, nil)
	b.Log.AppendFiller(64 - int(b.Log.Size()))
	bundle := proveAt(t, b, b.Bundle, s2)
	p, err := b.Log.ConsistencyProof(ctx, s1, s2)
	if err != nil {
		t.Fatal(err)
	}
	bundle.Consistency = &evidence.Consistency{Checkpoint: string(cpAt(t, b, s1)), Proof: p}
	res := run(t, b, resign(t, b, bundle), verify.Options{Since: cpAt(t, b, s1)})
	wantVerified(t, res)
	if c := res.Check(verify.CheckConsistency); c.Status != verify.Pass {
		t.Fatalf("test setup: consistency %s: %s", c.Status, c.Reason)
	}
	return b, bundle
}

// ATTACKS.md case 2: a valid consistency proof for (s1, s2) is not valid for
// other sizes, whether the sizes come from --since, the bundle's earlier
// checkpoint or the bundle's checkpoint.
func TestAttack02_ConsistencyProofNotBoundToSizes(t *testing.T) {
	for _, since := range []uint64{s1 - 1, s1 + 1} {
		t.Run(fmt.Sprintf("--since at size %d", since), func(t *testing.T) {
			b, bundle := grown(t)
			res := run(t, b, resign(t, b, bundle), verify.Options{Since: cpAt(t, b, since)})
			wantFail(t, res, verify.CheckConsistency, verify.ErrConsistency)
		})
		t.Run(fmt.Sprintf("bundle's earlier checkpoint at size %d", since), func(t *testing.T) {
			b, bundle := grown(t)
			bundle.Consistency.Checkpoint = string(cpAt(t, b, since))
			for _, opts := range []verify.Options{{}, {Since: cpAt(t, b, since)}, {Since: cpAt(t, b, s1)}} {
				tampered(t, b, bundle, opts, verify.CheckConsistency, verify.ErrConsistency)
			}
		})
	}
	for _, size := range []uint64{s2 * 2, s2 / 2, s2 - 1, s2 + 1} {
		t.Run(fmt.Sprintf("bundle checkpoint at size %d", size), func(t *testing.T) {
			b, bundle := grown(t)
			// Inclusion proofs are recomputed for the new size: only the
			// consistency proof, still the one for (s1, s2), is wrong.
			bundle = proveAt(t, b, bundle, size)
			for _, opts := range []verify.Options{{}, {Since: cpAt(t, b, s1)}} {
				c := tampered(t, b, bundle, opts, verify.CheckConsistency, verify.ErrConsistency)
				if res := run(t, b, resign(t, b, bundle), opts); res.Check(verify.CheckEntriesInclusion).Status != verify.Pass {
					t.Errorf("inclusion did not pass, so the test does not isolate consistency: %s", c.Reason)
				}
			}
		})
	}
}

// TestVerifyConsistencyBoundToSizes checks the consistency check directly, for
// every pair of sizes up to 40: the proof for (m, n) verifies, and fails for
// m±1, n±1, 2n, n/2, the sizes swapped, and when truncated or padded (cases 2, 4).
func TestVerifyConsistencyBoundToSizes(t *testing.T) {
	b := build(t, nil)
	b.Log.AppendFiller(81 - int(b.Log.Size()))
	cps := map[uint64]checkpoint.Checkpoint{}
	cp := func(n uint64) checkpoint.Checkpoint {
		if _, ok := cps[n]; !ok {
			cps[n] = openCP(t, b, cpAt(t, b, n))
		}
		return cps[n]
	}
	for n := uint64(2); n <= 40; n++ {
		for m := uint64(1); m < n; m++ {
			p, err := b.Log.ConsistencyProof(ctx, m, n)
			if err != nil {
				t.Fatal(err)
			}
			if err := verify.VerifyConsistency(cp(m), cp(n), p); err != nil {
				t.Fatalf("valid proof %d→%d: %v", m, n, err)
			}
			type variant struct {
				name string
				m, n uint64
				p    [][]byte
			}
			vs := []variant{
				{"size1-1", m - 1, n, p}, {"size1+1", m + 1, n, p},
				{"size2-1", m, n - 1, p}, {"size2+1", m, n + 1, p},
				{"size2*2", m, 2 * n, p}, {"size2/2", m, n / 2, p},
				{"swapped", n, m, p},
				{"empty", m, n, nil},
				{"truncated", m, n, p[:len(p)-1]},
				{"padded with a copy", m, n, append(slices.Clip(p), p[len(p)-1])},
				{"padded with zeros", m, n, append(slices.Clip(p), make([]byte, 32))},
				{"first hash altered", m, n, append([][]byte{bytes.Repeat([]byte{1}, 32)}, p[1:]...)},
			}
			for _, v := range vs {
				if v.m == m && v.n == n && slices.EqualFunc(v.p, p, bytes.Equal) {
					continue // the variant is the valid proof itself
				}
				if err := verify.VerifyConsistency(cp(v.m), cp(v.n), v.p); !errors.Is(err, verify.ErrConsistency) {
					t.Errorf("proof %d→%d presented as %s (%d→%d, %d hashes): %v, want ErrConsistency", m, n, v.name, v.m, v.n, len(v.p), err)
				}
			}
		}
	}
}

// ATTACKS.md case 3: nothing is proven from a checkpoint of size 0.
func TestAttack03_ConsistencyFromSizeZero(t *testing.T) {
	t.Run("direct", func(t *testing.T) {
		b := build(t, nil)
		zero, cur := openCP(t, b, cpAt(t, b, 0)), openCP(t, b, []byte(b.Bundle.Checkpoint))
		for _, p := range [][][]byte{nil, {}, {cur.Root}, {zero.Root}, {make([]byte, 32)}} {
			if err := verify.VerifyConsistency(zero, cur, p); !errors.Is(err, verify.ErrConsistency) {
				t.Errorf("size 0 → %d with %d hashes: %v, want ErrConsistency", cur.Size, len(p), err)
			}
		}
	})
	t.Run("--since of size 0", func(t *testing.T) {
		b := build(t, nil)
		res := run(t, b, b.BundleBytes, verify.Options{Since: cpAt(t, b, 0)})
		failuresContain(t, wantFail(t, res, verify.CheckConsistency, verify.ErrConsistency), "size 0")
	})
	b := build(t, nil)
	size := b.Log.Size()
	for _, tt := range []struct {
		name  string
		proof [][]byte
	}{
		{"empty proof", nil},
		{"the root as proof", [][]byte{openCP(t, b, cpAt(t, b, size)).Root}},
		{"a zero hash as proof", [][]byte{make([]byte, 32)}},
	} {
		t.Run("bundle's earlier checkpoint of size 0, "+tt.name, func(t *testing.T) {
			b := build(t, nil)
			bundle := cloneBundle(t, b.Bundle)
			bundle.Consistency = &evidence.Consistency{Checkpoint: string(cpAt(t, b, 0)), Proof: tt.proof}
			for _, opts := range []verify.Options{{}, {Since: cpAt(t, b, 0)}} {
				c := tampered(t, b, bundle, opts, verify.CheckConsistency, verify.ErrConsistency)
				if !strings.Contains(c.Reason, "size 0") {
					t.Errorf("reason %q does not name size 0", c.Reason)
				}
			}
		})
	}
}

// ATTACKS.md case 4: empty, truncated and padded proofs.
func TestAttack04_MalformedProofs(t *testing.T) {
	pad := func(p [][]byte, h []byte) [][]byte { return append(slices.Clip(p), h) }
	zero := make([]byte, 32)
	for _, tt := range []struct {
		name  string
		edit  func(*evidence.Bundle)
		check string
		err   error
	}{
		{"empty consistency proof with size1 < size2", func(b *evidence.Bundle) { b.Consistency.Proof = nil }, verify.CheckConsistency, verify.ErrConsistency},
		{"truncated consistency proof", func(b *evidence.Bundle) { b.Consistency.Proof = b.Consistency.Proof[:len(b.Consistency.Proof)-1] }, verify.CheckConsistency, verify.ErrConsistency},
		{"consistency proof padded with a copy", func(b *evidence.Bundle) {
			b.Consistency.Proof = pad(b.Consistency.Proof, b.Consistency.Proof[0])
		}, verify.CheckConsistency, verify.ErrConsistency},
		{"consistency proof padded with zeros", func(b *evidence.Bundle) { b.Consistency.Proof = pad(b.Consistency.Proof, zero) }, verify.CheckConsistency, verify.ErrConsistency},
		{"consistency proof of 65 hashes", func(b *evidence.Bundle) {
			for len(b.Consistency.Proof) <= evidence.MaxProofHashes {
				b.Consistency.Proof = pad(b.Consistency.Proof, zero)
			}
		}, verify.CheckBundleFormat, evidence.ErrMalformed},
		{"consistency hash of 31 bytes", func(b *evidence.Bundle) { b.Consistency.Proof[0] = b.Consistency.Proof[0][:31] }, verify.CheckBundleFormat, evidence.ErrMalformed},
		{"empty inclusion proof", func(b *evidence.Bundle) { b.Entries[0].InclusionProof = nil }, verify.CheckEntriesInclusion, verify.ErrInclusion},
		{"truncated inclusion proof", func(b *evidence.Bundle) {
			b.Entries[0].InclusionProof = b.Entries[0].InclusionProof[:len(b.Entries[0].InclusionProof)-1]
		}, verify.CheckEntriesInclusion, verify.ErrInclusion},
		{"inclusion proof padded with a copy", func(b *evidence.Bundle) {
			b.Entries[0].InclusionProof = pad(b.Entries[0].InclusionProof, b.Entries[0].InclusionProof[0])
		}, verify.CheckEntriesInclusion, verify.ErrInclusion},
		{"inclusion proof padded with zeros", func(b *evidence.Bundle) { b.Entries[2].InclusionProof = pad(b.Entries[2].InclusionProof, zero) }, verify.CheckEntriesInclusion, verify.ErrInclusion},
		{"inclusion proof of 65 hashes", func(b *evidence.Bundle) {
			for len(b.Entries[0].InclusionProof) <= evidence.MaxProofHashes {
				b.Entries[0].InclusionProof = pad(b.Entries[0].InclusionProof, zero)
			}
		}, verify.CheckBundleFormat, evidence.ErrMalformed},
		{"inclusion hash of 33 bytes", func(b *evidence.Bundle) {
			b.Entries[0].InclusionProof[0] = append(slices.Clip(b.Entries[0].InclusionProof[0]), 0)
		}, verify.CheckBundleFormat, evidence.ErrMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, bundle := grown(t)
			tt.edit(bundle)
			for _, opts := range []verify.Options{{}, {Since: cpAt(t, b, s1)}} {
				tampered(t, b, bundle, opts, tt.check, tt.err)
			}
		})
	}
}

// ATTACKS.md case 5: the proofs are valid, but the checkpoint they are against is
// unsigned or signed by a key other than the log's.
func TestAttack05_CheckpointSignatureNotVerified(t *testing.T) {
	b := build(t, nil)
	genuine := []byte(b.Bundle.Checkpoint)
	sameName, _ := noteSigner(t, logVerifier(t, b).Name())
	other, _ := noteSigner(t, "keytrail.example/other-log")
	altered := []byte(sigLines(genuine))
	altered[len(altered)/2] ^= 1 // inside the signature's base64
	variants := []struct{ name, signed string }{
		{"unsigned body", body(genuine)},
		{"body and an empty signature block", body(genuine) + "\n"},
		{"signed by another key under the log's name", signNote(t, body(genuine), sameName)},
		{"signed by another key under another name", signNote(t, body(genuine), other)},
		{"log's signature altered", body(genuine) + "\n" + string(altered)},
		{"log's signature of the previous checkpoint", body(genuine) + "\n" + sigLines(cpAt(t, b, b.Log.Size()-1))},
	}
	for _, v := range variants {
		t.Run("bundle checkpoint "+v.name, func(t *testing.T) {
			b := build(t, nil)
			bundle := cloneBundle(t, b.Bundle)
			bundle.Checkpoint = v.signed
			tampered(t, b, bundle, verify.Options{}, verify.CheckCheckpointSignature, checkpoint.ErrSignature)
		})
		t.Run("--since checkpoint "+v.name, func(t *testing.T) {
			b := build(t, nil)
			res := run(t, b, b.BundleBytes, verify.Options{Since: []byte(v.signed)})
			wantFail(t, res, verify.CheckConsistency, verify.ErrConsistency, checkpoint.ErrSignature)
		})
		t.Run("bundle's earlier checkpoint "+v.name, func(t *testing.T) {
			b := build(t, nil)
			bundle := cloneBundle(t, b.Bundle)
			bundle.Consistency = &evidence.Consistency{Checkpoint: v.signed}
			tampered(t, b, bundle, verify.Options{}, verify.CheckConsistency, verify.ErrConsistency, checkpoint.ErrSignature)
		})
	}
}

// ATTACKS.md case 6: a checkpoint signed only by a witness, not by the log.
func TestAttack06_CheckpointSignedOnlyByWitness(t *testing.T) {
	t.Run("unknown witness", func(t *testing.T) {
		b := build(t, nil)
		witness, _ := noteSigner(t, "witness.example/w1")
		bundle := cloneBundle(t, b.Bundle)
		bundle.Checkpoint = signNote(t, body([]byte(b.Bundle.Checkpoint)), witness)
		tampered(t, b, bundle, verify.Options{}, verify.CheckCheckpointSignature, checkpoint.ErrSignature)
	})
	t.Run("witness whose key the trust file holds for another log", func(t *testing.T) {
		b := build(t, nil)
		witness, vkey := noteSigner(t, "witness.example/w1")
		tf := b.TrustFile()
		tf.Logs = append(tf.Logs, verify.TrustedLog{Origin: "witness.example/w1", Key: vkey})
		var err error
		if b.Trust, err = verify.NewTrust(tf); err != nil {
			t.Fatal(err)
		}
		wantVerified(t, run(t, b, b.BundleBytes, verify.Options{}))
		bundle := cloneBundle(t, b.Bundle)
		bundle.Checkpoint = signNote(t, body([]byte(b.Bundle.Checkpoint)), witness)
		tampered(t, b, bundle, verify.Options{}, verify.CheckCheckpointSignature, checkpoint.ErrSignature, checkpoint.ErrOrigin)
	})
	t.Run("cosigned by the log and a witness verifies", func(t *testing.T) {
		b := build(t, nil)
		witness, _ := noteSigner(t, "witness.example/w1")
		bundle := cloneBundle(t, b.Bundle)
		bundle.Checkpoint = signNote(t, body([]byte(b.Bundle.Checkpoint)), witness, b.LogSigner)
		wantVerified(t, run(t, b, resign(t, b, bundle), verify.Options{}))
	})
}

// failuresContain asserts that one of c's failures (or its reason) contains
// every one of subs.
func failuresContain(t testing.TB, c *verify.Check, subs ...string) {
	t.Helper()
	for _, f := range append([]string{c.Reason}, c.Failures...) {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(f, s)
		}
		if all {
			return
		}
	}
	t.Errorf("check %s: no failure contains all of %q:\n%s\n%s", c.Name, subs, c.Reason, strings.Join(c.Failures, "\n"))
}

// ATTACKS.md case 7: one key or person counted twice towards a quorum: here the
// rotation's approvals; TestAttack07_WitnessQuorumDoubleCounting does witnesses.
func TestAttack07_QuorumDoubleCounting(t *testing.T) {
	t.Run("one approver approves twice", func(t *testing.T) {
		b := build(t, func(steps []scenario.Step) []scenario.Step {
			s := steps[recApproveAlice]
			ev := *s.Event
			ev.At = steps[recApproveBob].Event.At
			steps[recApproveBob] = scenario.Step{By: s.By, Key: s.Key, Event: &ev}
			return steps
		})
		c := wantFail(t, run(t, b, b.BundleBytes, verify.Options{}), verify.CheckRotationStructure, verify.ErrStructure)
		failuresContain(t, c, "alice@custody.example already approved")
		failuresContain(t, c, "1 valid approvals before promotion, policy requires 2")
	})
	t.Run("one approver approves under each of two roles", func(t *testing.T) {
		b := build(t, func(steps []scenario.Step) []scenario.Step {
			s := steps[recApproveAlice]
			ev := *s.Event
			ev.At = steps[recApproveBob].Event.At
			ev.Actor.Role = "security-officer"
			steps[recApproveBob] = scenario.Step{By: s.By, Key: s.Key, Event: &ev}
			return steps
		})
		tf := b.TrustFile()
		if tf.Principals[1].ID != "alice@custody.example" {
			t.Fatalf("test setup: principals[1] is %s", tf.Principals[1].ID)
		}
		tf.Principals[1].Roles = []string{"custody-officer", "security-officer"}
		var err error
		if b.Trust, err = verify.NewTrust(tf); err != nil {
			t.Fatal(err)
		}
		c := wantFail(t, run(t, b, b.BundleBytes, verify.Options{}), verify.CheckRotationStructure, verify.ErrStructure)
		failuresContain(t, c, "1 valid approvals before promotion, policy requires 2")
	})
	// A collector may sign lifecycle events, but an approval counts for its
	// actor: one collector key must not stand for two approvers.
	t.Run("approvals of two approvers signed by one collector", func(t *testing.T) {
		b := build(t, func(steps []scenario.Step) []scenario.Step {
			steps[recApproveAlice].By = steps[recCreate].By
			steps[recApproveBob].By = steps[recCreate].By
			return steps
		})
		c := wantFail(t, run(t, b, b.BundleBytes, verify.Options{}), verify.CheckEntriesSignature, verify.ErrNotAllowed)
		failuresContain(t, c, "kms-rotation-service", "approve")
	})
	t.Run("approval signed by another principal", func(t *testing.T) {
		b := build(t, func(steps []scenario.Step) []scenario.Step {
			steps[recApproveBob].By = steps[recApproveAlice].By
			return steps
		})
		wantFail(t, run(t, b, b.BundleBytes, verify.Options{}), verify.CheckEntriesSignature, verify.ErrNotAllowed)
	})
	for _, keyid := range []bool{true, false} {
		t.Run(fmt.Sprintf("approval envelope signed twice by the approver, keyid %v", keyid), func(t *testing.T) {
			b := build(t, nil)
			env := parseEnvelope(t, b.Records[recApproveAlice])
			dup := env.Signatures[0]
			if !keyid {
				dup.KeyID = ""
			}
			env.Signatures = append(env.Signatures, dup)
			bundle := withRecords(t, b, []int{recApproveAlice}, marshal(t, env))
			c := tampered(t, b, bundle, verify.Options{}, verify.CheckEntriesSignature)
			failuresContain(t, c, "signed twice")
		})
	}
	t.Run("one approval envelope signed by both approvers", func(t *testing.T) {
		b := build(t, nil)
		both := signRecord(t, payloadOf(t, b.Records[recApproveAlice]), b.Approvers[0].Signer, b.Approvers[1].Signer)
		bundle := withRecords(t, b, []int{recApproveAlice, recApproveBob}, both)
		tampered(t, b, bundle, verify.Options{}, verify.CheckEntriesSignature, verify.ErrNotAllowed)
	})

	// The trust file may list a key only once, and an identity only once.
	other := evidence.MarshalPublicKeyPEM(edSigner(t).Public())
	for _, tt := range []struct {
		name string
		edit func(*verify.TrustFile)
	}{
		{"principal's key under a second identity", func(f *verify.TrustFile) {
			f.Principals = append(f.Principals, verify.TrustedPrincipal{ID: "alice.second@custody.example", PublicKey: f.Principals[1].PublicKey, Roles: []string{"security-officer"}})
		}},
		{"principal's key as a collector", func(f *verify.TrustFile) {
			f.Collectors = append(f.Collectors, verify.TrustedCollector{ID: "svc-2", PublicKey: f.Principals[1].PublicKey, PredicateTypes: []string{evidence.PredicateLifecycleEvent}})
		}},
		{"collector's key as a bundle signer", func(f *verify.TrustFile) {
			f.BundleSigners = append(f.BundleSigners, verify.TrustedSigner{ID: "operator-2", PublicKey: f.Collectors[0].PublicKey})
		}},
		{"bundle signer listed twice", func(f *verify.TrustFile) {
			f.BundleSigners = append(f.BundleSigners, verify.TrustedSigner{ID: "operator-2", PublicKey: f.BundleSigners[0].PublicKey})
		}},
		{"one identity with two keys", func(f *verify.TrustFile) {
			f.Principals = append(f.Principals, verify.TrustedPrincipal{ID: f.Principals[1].ID, PublicKey: other, Roles: []string{"security-officer"}})
		}},
		{"one identity as collector and principal", func(f *verify.TrustFile) {
			f.Principals = append(f.Principals, verify.TrustedPrincipal{ID: f.Collectors[0].ID, PublicKey: other, Roles: []string{"security-officer"}})
		}},
	} {
		t.Run("trust file: "+tt.name, func(t *testing.T) {
			b := build(t, nil)
			tf := b.TrustFile()
			if _, err := verify.ParseTrust(marshal(t, tf)); err != nil {
				t.Fatalf("test setup: genuine trust file: %v", err)
			}
			tt.edit(tf)
			if _, err := verify.ParseTrust(marshal(t, tf)); !errors.Is(err, verify.ErrTrust) {
				t.Errorf("ParseTrust = %v, want ErrTrust", err)
			}
		})
	}
}

// garbageSigLine is a well-formed signature line by name with key hash hash
// whose signature is garbage.
func garbageSigLine(name string, hash uint32) string {
	sig := binary.BigEndian.AppendUint32(nil, hash)
	sig = append(sig, bytes.Repeat([]byte{9}, ed25519.SignatureSize)...)
	return "\u2014 " + name + " " + base64.StdEncoding.EncodeToString(sig) + "\n"
}

// ATTACKS.md case 8: signatures by unknown keys, even under the log's name or
// with the log's key hash, are ignored: not errors, and not counted. A bad
// signature that claims the log's name and key hash is an error wherever it is.
func TestAttack08_UnknownCheckpointSigners(t *testing.T) {
	b := build(t, nil)
	v := logVerifier(t, b)
	genuine := []byte(b.Bundle.Checkpoint)
	sameName, _ := noteSigner(t, v.Name())
	witness, _ := noteSigner(t, "witness.example/w1")
	ignored := []struct{ name, line string }{
		{"another key under the log's name", sigLines([]byte(signNote(t, body(genuine), sameName)))},
		{"a witness", sigLines([]byte(signNote(t, body(genuine), witness)))},
		{"garbage with the log's key hash under another name", garbageSigLine("witness.example/w1", v.KeyHash())},
		{"garbage under the log's name with another key hash", garbageSigLine(v.Name(), v.KeyHash()^1)},
	}
	for _, ig := range ignored {
		for _, first := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s, first %v: verifies", ig.name, first), func(t *testing.T) {
				b := build(t, nil)
				bundle := cloneBundle(t, b.Bundle)
				if first {
					bundle.Checkpoint = body(genuine) + "\n" + ig.line + sigLines(genuine)
				} else {
					bundle.Checkpoint = string(genuine) + ig.line
				}
				wantVerified(t, run(t, b, resign(t, b, bundle), verify.Options{}))
			})
		}
	}
	bad := badLogSigLine(t, b)
	for _, tt := range []struct{ name, signed string }{
		{"alone", body(genuine) + "\n" + bad},
		{"before the log's signature", body(genuine) + "\n" + bad + sigLines(genuine)},
		{"after the log's signature", string(genuine) + bad},
	} {
		t.Run("bad signature claiming the log's name and key hash "+tt.name, func(t *testing.T) {
			b := build(t, nil)
			bundle := cloneBundle(t, b.Bundle)
			bundle.Checkpoint = tt.signed
			tampered(t, b, bundle, verify.Options{}, verify.CheckCheckpointSignature, checkpoint.ErrSignature)
		})
	}
}

// ATTACKS.md case 10: a checkpoint inconsistent with one already trusted, or
// smaller than it, is a hard failure whose reason shows both checkpoints.
func TestAttack10_SplitViewAndRollback(t *testing.T) {
	// fork is a log with the same key and origin as b's but other contents.
	fork := func(b *scenario.Built, n uint64) *scenario.MemLog {
		f := scenario.NewMemLog(b.Origin, b.LogSigner)
		f.AppendFiller(int(n))
		return f
	}
	forkAt := func(t *testing.T, b *scenario.Built, n uint64) []byte {
		cp, err := fork(b, n).CheckpointAt(n)
		if err != nil {
			t.Fatal(err)
		}
		return cp
	}
	showsBoth := func(t *testing.T, b *scenario.Built, c *verify.Check, cps ...[]byte) {
		t.Helper()
		for _, cp := range cps {
			if s := openCP(t, b, cp).String(); !strings.Contains(c.Reason, s) {
				t.Errorf("reason %q does not show checkpoint %s", c.Reason, s)
			}
		}
	}
	t.Run("fork at the bundle's size", func(t *testing.T) {
		b := build(t, nil)
		since := forkAt(t, b, b.Log.Size())
		c := wantFail(t, run(t, b, b.BundleBytes, verify.Options{Since: since}), verify.CheckConsistency, verify.ErrConsistency)
		failuresContain(t, c, "split view")
		showsBoth(t, b, c, since, []byte(b.Bundle.Checkpoint))
	})
	t.Run("rollback: --since is a later checkpoint of the same log", func(t *testing.T) {
		b := build(t, nil)
		b.Log.AppendFiller(5)
		since := cpAt(t, b, b.Log.Size())
		c := wantFail(t, run(t, b, b.BundleBytes, verify.Options{Since: since}), verify.CheckConsistency, verify.ErrConsistency)
		failuresContain(t, c, "rollback")
		showsBoth(t, b, c, since, []byte(b.Bundle.Checkpoint))
	})
	t.Run("rollback: --since is a larger checkpoint of a fork", func(t *testing.T) {
		b := build(t, nil)
		since := forkAt(t, b, b.Log.Size()+3)
		c := wantFail(t, run(t, b, b.BundleBytes, verify.Options{Since: since}), verify.CheckConsistency, verify.ErrConsistency)
		showsBoth(t, b, c, since, []byte(b.Bundle.Checkpoint))
	})
	const earlier = 5
	withEarlier := func(t *testing.T, b *scenario.Built, cp []byte) *evidence.Bundle {
		p, err := b.Log.ConsistencyProof(ctx, earlier, b.Log.Size())
		if err != nil {
			t.Fatal(err)
		}
		bundle := cloneBundle(t, b.Bundle)
		bundle.Consistency = &evidence.Consistency{Checkpoint: string(cp), Proof: p}
		return bundle
	}
	t.Run("--since is a smaller checkpoint of a fork", func(t *testing.T) {
		b := build(t, nil)
		raw := resign(t, b, withEarlier(t, b, cpAt(t, b, earlier)))
		wantVerified(t, run(t, b, raw, verify.Options{Since: cpAt(t, b, earlier)}))
		since := forkAt(t, b, earlier)
		c := wantFail(t, run(t, b, raw, verify.Options{Since: since}), verify.CheckConsistency, verify.ErrConsistency)
		failuresContain(t, c, "split view")
		showsBoth(t, b, c, since, cpAt(t, b, earlier))
	})
	t.Run("the bundle carries a fork's earlier checkpoint", func(t *testing.T) {
		b := build(t, nil)
		forked := forkAt(t, b, earlier)
		bundle := withEarlier(t, b, forked)
		for _, opts := range []verify.Options{{}, {Since: forked}} {
			c := tampered(t, b, bundle, opts, verify.CheckConsistency, verify.ErrConsistency)
			failuresContain(t, c, "split view")
			showsBoth(t, b, c, forked, []byte(b.Bundle.Checkpoint))
		}
	})
}

func newKeyRef(t testing.TB, id string) evidence.KeyRef {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	d, err := evidence.KeyDigest(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return evidence.KeyRef{ID: id, SPKISHA256: d}
}

// logSteps signs and logs steps, and returns the logged envelopes by index.
func logSteps(t testing.TB, log *scenario.MemLog, steps []scenario.Step) (indices []uint64, envs [][]byte) {
	t.Helper()
	for _, s := range steps {
		env, err := s.Sign(ctx)
		if err != nil {
			t.Fatal(err)
		}
		i, err := log.Append(ctx, env)
		if err != nil {
			t.Fatal(err)
		}
		indices, envs = append(indices, i), append(envs, env)
	}
	return indices, envs
}

// ATTACKS.md case 11: a valid log entry, with its valid inclusion proof against
// the same checkpoint, taken from another rotation's bundle.
func TestAttack11_TransplantedEntry(t *testing.T) {
	setup := func(t *testing.T) (b *scenario.Built, otherKeys, sameKeys []uint64) {
		b = build(t, nil)
		// Another rotation, of other keys, in the same log and window.
		r2 := evidence.Rotation{
			ID: "rot-2026-03-hot-2", KeyClass: "hot-signing", Window: b.Rotation.Window,
			OldKey: newKeyRef(t, "kms:eu-central-1/custody/hot-2/v1"), NewKey: newKeyRef(t, "kms:eu-central-1/custody/hot-2/v2"),
		}
		otherKeys, _ = logSteps(t, b.Log, b.Steps(r2))
		// Another rotation of the same keys, in the same window, with another ID.
		r3 := b.Parties.Rotation("rot-2026-03-hot-1-retry", scenario.Start)
		sameKeys, _ = logSteps(t, b.Log, b.Steps(r3))
		// The genuine bundle, proven against the grown log, still verifies.
		wantVerified(t, run(t, b, resign(t, b, proveAt(t, b, b.Bundle, b.Log.Size())), verify.Options{}))
		return b, otherKeys, sameKeys
	}
	// transplant replaces the entry at position pos with the log's entry at index i.
	transplant := func(t *testing.T, b *scenario.Built, pos int, i uint64) *evidence.Bundle {
		env, err := b.Log.Entry(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		bundle := cloneBundle(t, b.Bundle)
		bundle.Entries[pos] = evidence.Entry{Index: i, Envelope: env}
		slices.SortFunc(bundle.Entries, func(a, b evidence.Entry) int { return int(a.Index) - int(b.Index) })
		return proveAt(t, b, bundle, b.Log.Size())
	}
	for _, tt := range []struct {
		name, reason string
		pos          int
		pick         func(otherKeys, sameKeys []uint64) uint64
	}{
		{"promote of another rotation of other keys", "names neither", recPromote, func(o, _ []uint64) uint64 { return o[recPromote] }},
		{"approval of another rotation of other keys", "names neither", recApproveBob, func(o, _ []uint64) uint64 { return o[recApproveBob] }},
		{"approval of another rotation of the same keys", `belongs to rotation "rot-2026-03-hot-1-retry"`, recApproveBob, func(_, s []uint64) uint64 { return s[recApproveBob] }},
		{"promote of another rotation of the same keys", `belongs to rotation "rot-2026-03-hot-1-retry"`, recPromote, func(_, s []uint64) uint64 { return s[recPromote] }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, o, s := setup(t)
			c := tampered(t, b, transplant(t, b, tt.pos, tt.pick(o, s)), verify.Options{}, verify.CheckEntriesBinding, verify.ErrBinding)
			failuresContain(t, c, tt.reason)
		})
	}
	t.Run("record of this rotation with its proof from another log", func(t *testing.T) {
		b := build(t, nil)
		e := b.Bundle.Entries[recPromote]
		other := scenario.NewMemLog(b.Origin, b.LogSigner)
		other.AppendFiller(int(e.Index))
		if i, _ := other.Append(ctx, e.Envelope); i != e.Index {
			t.Fatalf("test setup: index %d, want %d", i, e.Index)
		}
		other.AppendFiller(int(b.Log.Size() - other.Size()))
		p, err := other.InclusionProof(ctx, e.Index, b.Log.Size())
		if err != nil {
			t.Fatal(err)
		}
		bundle := cloneBundle(t, b.Bundle)
		bundle.Entries[recPromote].InclusionProof = p
		tampered(t, b, bundle, verify.Options{}, verify.CheckEntriesInclusion, verify.ErrInclusion)
	})
}

// eventIndices returns the log indices of the bundle's lifecycle events of type typ.
func eventIndices(t testing.TB, bundle *evidence.Bundle, typ string) []uint64 {
	t.Helper()
	var out []uint64
	for _, e := range bundle.Entries {
		if _, p := statementOf(t, e.Envelope); p.(*evidence.LifecycleEvent).Event == typ {
			out = append(out, e.Index)
		}
	}
	return out
}

// ATTACKS.md case 12: several candidate records for one step of the rotation are
// never silently chosen between: the rotation fails, listing each.
func TestAttack12_SeveralCandidateEntries(t *testing.T) {
	for _, tt := range []struct {
		name   string
		mutate func([]scenario.Step) []scenario.Step
		event  string
	}{
		{"two create events", again(recCreate, 30*time.Minute), evidence.EventCreate},
		{"two promote events", again(recPromote, 30*time.Minute), evidence.EventPromote},
		{"two request events", again(recRequest, 30*time.Minute), evidence.EventRequest},
		{"two disable events", again(recDisable, time.Hour), evidence.EventDisable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := build(t, tt.mutate)
			idx := eventIndices(t, b.Bundle, tt.event)
			if len(idx) != 2 {
				t.Fatalf("test setup: %d %s events in the bundle, want 2", len(idx), tt.event)
			}
			c := wantFail(t, run(t, b, b.BundleBytes, verify.Options{}), verify.CheckRotationStructure, verify.ErrStructure)
			failuresContain(t, c, fmt.Sprintf("2 %s events", tt.event), fmt.Sprintf("(entry %d)", idx[0]), fmt.Sprintf("(entry %d)", idx[1]))
		})
	}
	t.Run("a second promote naming the old key", func(t *testing.T) {
		b := build(t, func(steps []scenario.Step) []scenario.Step {
			steps = again(recPromote, 30*time.Minute)(steps)
			steps[len(steps)-1].Key = steps[recDisable].Key
			return steps
		})
		c := wantFail(t, run(t, b, b.BundleBytes, verify.Options{}), verify.CheckRotationStructure, verify.ErrStructure)
		failuresContain(t, c, "a promote event must name "+b.Rotation.NewKey.ID+", not "+b.Rotation.OldKey.ID)
	})
	t.Run("a failed smoke test besides the passing one is not chosen", func(t *testing.T) {
		b := build(t, func(steps []scenario.Step) []scenario.Step {
			steps = again(recSmoke, -30*time.Minute)(steps)
			failed := *steps[len(steps)-1].Event
			failed.SmokeTest = &evidence.SmokeTest{Passed: false, Detail: "signature did not verify"}
			steps[len(steps)-1].Event = &failed
			return steps
		})
		wantVerified(t, run(t, b, b.BundleBytes, verify.Options{}))
	})
	t.Run("only a failed smoke test", func(t *testing.T) {
		b := build(t, func(steps []scenario.Step) []scenario.Step {
			failed := *steps[recSmoke].Event
			failed.SmokeTest = &evidence.SmokeTest{Passed: false, Detail: "signature did not verify"}
			steps[recSmoke].Event = &failed
			return steps
		})
		c := wantFail(t, run(t, b, b.BundleBytes, verify.Options{}), verify.CheckRotationStructure, verify.ErrStructure)
		failuresContain(t, c, "no passing smoke-test")
	})
}

// ATTACKS.md case 13: only keys of the trust file are trusted, each for its
// purpose, whatever a bundle or record claims; missing trust material fails closed.
func TestAttack13_UntrustedKeys(t *testing.T) {
	b := build(t, nil)
	payload := manifestJSON(t, b)
	attacker := edSigner(t)
	claim := func(t *testing.T, raw []byte, keyid string) []byte {
		env := parseEnvelope(t, raw)
		for i := range env.Signatures {
			env.Signatures[i].KeyID = keyid
		}
		return marshal(t, env)
	}
	for _, tt := range []struct {
		name string
		raw  func(t *testing.T) []byte
		err  error
	}{
		{"bundle signed by an untrusted key", func(t *testing.T) []byte {
			return bundleFile(t, b, signRecordAs(t, evidence.ManifestMediaType, payload, attacker))
		}, evidence.ErrUnknownSigner},
		{"bundle signed by an untrusted key claiming the operator's keyid", func(t *testing.T) []byte {
			return bundleFile(t, b, claim(t, signRecordAs(t, evidence.ManifestMediaType, payload, attacker), b.Operator.Signer.Digest))
		}, evidence.ErrBadSignature},
		{"bundle signed by an untrusted key without keyid", func(t *testing.T) []byte {
			return bundleFile(t, b, claim(t, signRecordAs(t, evidence.ManifestMediaType, payload, attacker), ""))
		}, evidence.ErrUnknownSigner},
		{"bundle signed by a trusted record signer", func(t *testing.T) []byte {
			return bundleFile(t, b, signRecordAs(t, evidence.ManifestMediaType, payload, b.Collector.Signer))
		}, evidence.ErrUnknownSigner},
		{"bundle signed by the operator and an untrusted key", func(t *testing.T) []byte {
			return bundleFile(t, b, signRecordAs(t, evidence.ManifestMediaType, payload, b.Operator.Signer, attacker))
		}, evidence.ErrUnknownSigner},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantFail(t, run(t, b, tt.raw(t), verify.Options{}), verify.CheckBundleSignature, tt.err)
		})
	}

	create := payloadOf(t, b.Records[recCreate])
	for _, tt := range []struct {
		name string
		env  func(t *testing.T, b *scenario.Built) []byte
		err  error
	}{
		{"record signed by an untrusted key claiming the collector's keyid", func(t *testing.T, b *scenario.Built) []byte {
			return claim(t, signRecord(t, create, attacker), b.Collector.Signer.Digest)
		}, evidence.ErrBadSignature},
		{"record signed by an untrusted key", func(t *testing.T, b *scenario.Built) []byte { return signRecord(t, create, attacker) }, evidence.ErrUnknownSigner},
		{"record signed by an untrusted key without keyid", func(t *testing.T, b *scenario.Built) []byte {
			return claim(t, signRecord(t, create, attacker), "")
		}, evidence.ErrUnknownSigner},
		{"record signed by the operator, a bundle signer", func(t *testing.T, b *scenario.Built) []byte {
			return signRecord(t, create, b.Operator.Signer)
		}, evidence.ErrUnknownSigner},
		{"record of a type the collector is not enrolled for", func(t *testing.T, b *scenario.Built) []byte {
			att := &evidence.HSMAttestation{At: evidence.AtTime(scenario.Start.Add(2 * time.Hour)), Format: "pkcs11-attributes",
				Token: evidence.TokenInfo{Serial: "1234"}, Attributes: evidence.KeyAttributes{KeyType: "EC"}}
			st, err := evidence.NewStatement(att, b.Rotation.NewKey)
			if err != nil {
				t.Fatal(err)
			}
			return signRecord(t, marshal(t, st), b.Collector.Signer)
		}, verify.ErrNotAllowed},
		{"non-lifecycle record signed by a principal", func(t *testing.T, b *scenario.Built) []byte {
			r := &evidence.ResidencyClaim{At: evidence.AtTime(scenario.Start.Add(2 * time.Hour)), Region: "eu-central-1", Jurisdiction: "EU",
				Subject: evidence.ResidencySubject{Kind: evidence.ResidencyHSM, Serial: "1234"}}
			st, err := evidence.NewStatement(r, r.Subject.Ref())
			if err != nil {
				t.Fatal(err)
			}
			return signRecord(t, marshal(t, st), b.Approvers[0].Signer)
		}, verify.ErrNotAllowed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := build(t, nil)
			bundle := withRecords(t, b, []int{recCreate}, tt.env(t, b))
			tampered(t, b, bundle, verify.Options{}, verify.CheckEntriesSignature, tt.err)
		})
	}

	for _, tt := range []struct {
		name string
		edit func(*verify.TrustFile)
	}{
		{"no bundle signers", func(f *verify.TrustFile) { f.BundleSigners = nil }},
		{"no logs", func(f *verify.TrustFile) { f.Logs = nil }},
		{"version 0", func(f *verify.TrustFile) { f.Version = 0 }},
		{"version 2", func(f *verify.TrustFile) { f.Version = 2 }},
		{"log without origin", func(f *verify.TrustFile) { f.Logs[0].Origin = "" }},
		{"log with a bad key", func(f *verify.TrustFile) { f.Logs[0].Key = "keytrail.example/custody-log+00000000+AAAA" }},
		{"log listed twice", func(f *verify.TrustFile) { f.Logs = append(f.Logs, f.Logs[0]) }},
		{"collector without predicate types", func(f *verify.TrustFile) { f.Collectors[0].PredicateTypes = nil }},
		{"collector with an unknown predicate type", func(f *verify.TrustFile) {
			f.Collectors[0].PredicateTypes = append(f.Collectors[0].PredicateTypes, "https://keytrail.dev/predicates/anything/v1")
		}},
		{"principal without roles", func(f *verify.TrustFile) { f.Principals[0].Roles = nil }},
		{"principal without id", func(f *verify.TrustFile) { f.Principals[0].ID = "" }},
		{"bundle signer without key", func(f *verify.TrustFile) { f.BundleSigners[0].PublicKey = "" }},
		{"bundle signer key with trailing data", func(f *verify.TrustFile) { f.BundleSigners[0].PublicKey += "junk" }},
	} {
		t.Run("trust file with "+tt.name, func(t *testing.T) {
			tf := b.TrustFile()
			tt.edit(tf)
			if _, err := verify.ParseTrust(marshal(t, tf)); !errors.Is(err, verify.ErrTrust) {
				t.Errorf("ParseTrust = %v, want ErrTrust", err)
			}
		})
	}
	for _, raw := range []string{"", "null", "{}", "[]", `{"version":1}`} {
		if _, err := verify.ParseTrust([]byte(raw)); !errors.Is(err, verify.ErrTrust) {
			t.Errorf("ParseTrust(%q) = %v, want ErrTrust", raw, err)
		}
	}
	t.Run("no trust or policy", func(t *testing.T) {
		if _, err := verify.New(nil, b.Policy); err == nil {
			t.Error("New(nil, policy) succeeded")
		}
		if _, err := verify.New(b.Trust, nil); err == nil {
			t.Error("New(trust, nil) succeeded")
		}
	})
	t.Run("zero Trust", func(t *testing.T) {
		v, err := verify.New(&verify.Trust{}, b.Policy)
		if err != nil {
			return // refusing it is fine too
		}
		res, err := v.VerifyBundle(b.BundleBytes, verify.Options{})
		if err != nil {
			t.Fatal(err)
		}
		wantFail(t, res, verify.CheckBundleSignature, evidence.ErrUnknownSigner)
	})
}

// signRecordAs signs payload as a DSSE envelope of payloadType.
func signRecordAs(t testing.TB, payloadType string, payload []byte, signers ...*evidence.Signer) []byte {
	t.Helper()
	raw, err := evidence.Sign(ctx, payloadType, payload, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// ATTACKS.md case 14: no evidence of a required kind, or evidence that does not
// parse, is a failure.
func TestAttack14_ZeroMatches(t *testing.T) {
	t.Run("bundle with zero entries", func(t *testing.T) {
		b := build(t, nil)
		bundle := cloneBundle(t, b.Bundle)
		bundle.Entries = nil
		tampered(t, b, bundle, verify.Options{}, verify.CheckEntriesInclusion, verify.ErrBinding)
		res := run(t, b, resign(t, b, bundle), verify.Options{})
		wantFail(t, res, verify.CheckEntriesSignature, verify.ErrBinding)
		wantFail(t, res, verify.CheckEntriesBinding, verify.ErrBinding)
		if c := res.Check(verify.CheckRotationStructure); c == nil || c.Status == verify.Pass {
			t.Errorf("rotation.structure = %+v, want SKIP or FAIL", c)
		}
	})
	for _, tt := range []struct {
		name   string
		drop   []int
		reason string
	}{
		{"no approve events", []int{recApproveAlice, recApproveBob}, "0 valid approvals before promotion, policy requires 2"},
		{"one approve event", []int{recApproveBob}, "1 valid approvals before promotion, policy requires 2"},
		{"no disable", []int{recDisable}, "no disable event for kms:eu-central-1/custody/hot-1/v1"},
		{"no promote", []int{recPromote}, "no promote event for kms:eu-central-1/custody/hot-1/v2"},
		{"no create", []int{recCreate}, "no create event for kms:eu-central-1/custody/hot-1/v2"},
		{"no request", []int{recRequest}, "no request event for kms:eu-central-1/custody/hot-1/v1"},
		{"no smoke test", []int{recSmoke}, "no passing smoke-test"},
	} {
		t.Run("rotation with "+tt.name, func(t *testing.T) {
			b := build(t, withoutSteps(tt.drop...))
			c := wantFail(t, run(t, b, b.BundleBytes, verify.Options{}), verify.CheckRotationStructure, verify.ErrStructure)
			failuresContain(t, c, tt.reason)
		})
		t.Run("bundle that omits "+tt.name[3:], func(t *testing.T) {
			b := build(t, nil)
			bundle := withRecords(t, b, tt.drop)
			c := tampered(t, b, bundle, verify.Options{}, verify.CheckRotationStructure, verify.ErrStructure)
			failuresContain(t, c, tt.reason)
		})
	}
	for _, payload := range []string{"", "null", "{}", "[]", `{"rotation":{}}`, "not json"} {
		t.Run(fmt.Sprintf("payload %q", payload), func(t *testing.T) {
			b := build(t, nil)
			res := run(t, b, signPayload(t, b, []byte(payload)), verify.Options{})
			wantFail(t, res, verify.CheckBundleFormat, evidence.ErrMalformed)
			for _, c := range res.Checks {
				if c.Status == verify.Pass && c.Name != verify.CheckBundleSignature {
					t.Errorf("check %s passed on an unparsable bundle", c.Name)
				}
			}
		})
	}
	// A Policy built in Go gets the defaults ParsePolicy fills: an unset
	// minApprovals means 2, not 0.
	t.Run("policy literal without minApprovals", func(t *testing.T) {
		b := build(t, withoutSteps(recApproveAlice, recApproveBob))
		yes := true
		p := &verify.Policy{Version: 1, Rotation: verify.RotationPolicy{ApproverRoles: []string{"custody-officer"}, RequireSmokeTest: &yes}}
		b.Policy = p
		c := wantFail(t, run(t, b, b.BundleBytes, verify.Options{}), verify.CheckRotationStructure, verify.ErrStructure)
		failuresContain(t, c, "0 valid approvals before promotion, policy requires 2")
		if p.Rotation.MinApprovals != 0 {
			t.Errorf("verify.New changed its policy argument: minApprovals %d", p.Rotation.MinApprovals)
		}
	})
	t.Run("policy literal without requireSmokeTest", func(t *testing.T) {
		b := build(t, withoutSteps(recSmoke))
		b.Policy = &verify.Policy{Version: 1, Rotation: verify.RotationPolicy{MinApprovals: 2, ApproverRoles: []string{"custody-officer", "security-officer"}}}
		c := wantFail(t, run(t, b, b.BundleBytes, verify.Options{}), verify.CheckRotationStructure, verify.ErrStructure)
		failuresContain(t, c, "no passing smoke-test")
	})
	for _, p := range []*verify.Policy{
		{},
		{Version: 1},
		{Version: 1, Rotation: verify.RotationPolicy{MinApprovals: -1, ApproverRoles: []string{"custody-officer"}}},
		{Version: 2, Rotation: verify.RotationPolicy{ApproverRoles: []string{"custody-officer"}}},
	} {
		if _, err := verify.New(build(t, nil).Trust, p); !errors.Is(err, verify.ErrPolicy) {
			t.Errorf("New(%+v) = %v, want ErrPolicy", p, err)
		}
	}
}

// ATTACKS.md case 15: a payload or payloadType changed under the old signature.
func TestAttack15_PayloadChangedUnderOldSignature(t *testing.T) {
	t.Run("bundle payload changed", func(t *testing.T) {
		b := build(t, nil)
		bundle := cloneBundle(t, b.Bundle)
		bundle.Rotation.KeyClass = "cold-storage"
		wantFail(t, run(t, b, underOldSignature(t, b, bundle), verify.Options{}), verify.CheckBundleSignature, evidence.ErrBadSignature)
	})
	for _, typ := range []string{evidence.PayloadType, evidence.BundleMediaType, "application/vnd.keytrail.bundle-manifest.v2+json", evidence.ManifestMediaType + " ", "Application/vnd.keytrail.bundle-manifest.v1+json"} {
		t.Run(fmt.Sprintf("manifest payloadType %q under the old signature", typ), func(t *testing.T) {
			b := build(t, nil)
			env := manifestEnvelope(t, b.BundleBytes)
			env.PayloadType = typ
			wantFail(t, run(t, b, bundleFile(t, b, marshal(t, env)), verify.Options{}), verify.CheckBundleSignature, evidence.ErrPayloadType)
		})
		t.Run(fmt.Sprintf("manifest payloadType %q re-signed", typ), func(t *testing.T) {
			b := build(t, nil)
			raw := bundleFile(t, b, signRecordAs(t, typ, manifestJSON(t, b), b.Operator.Signer))
			wantFail(t, run(t, b, raw, verify.Options{}), verify.CheckBundleSignature, evidence.ErrPayloadType)
		})
	}
	t.Run("a record as a bundle's manifest", func(t *testing.T) {
		b := build(t, nil)
		wantFail(t, run(t, b, bundleFile(t, b, b.Records[recCreate]), verify.Options{}), verify.CheckBundleSignature, evidence.ErrPayloadType)
	})
	t.Run("record payload changed", func(t *testing.T) {
		b := build(t, nil)
		env := parseEnvelope(t, b.Records[recDisable])
		// Still a valid, compliant record: only its signature can tell.
		env.Payload = []byte(replace(t, string(env.Payload), "T20:00:00Z", "T21:00:00Z"))
		if _, _, err := evidence.ParseStatement(env.Payload); err != nil {
			t.Fatal(err)
		}
		bundle := withRecords(t, b, []int{recDisable}, marshal(t, env))
		tampered(t, b, bundle, verify.Options{}, verify.CheckEntriesSignature, evidence.ErrBadSignature)
	})
	for _, typ := range []string{"application/json", evidence.BundleMediaType, evidence.PayloadType + "; charset=utf-8"} {
		t.Run(fmt.Sprintf("record payloadType %q under the old signature", typ), func(t *testing.T) {
			b := build(t, nil)
			env := parseEnvelope(t, b.Records[recDisable])
			env.PayloadType = typ
			bundle := withRecords(t, b, []int{recDisable}, marshal(t, env))
			tampered(t, b, bundle, verify.Options{}, verify.CheckEntriesSignature, evidence.ErrPayloadType)
		})
		t.Run(fmt.Sprintf("record payloadType %q re-signed", typ), func(t *testing.T) {
			b := build(t, nil)
			raw := signRecordAs(t, typ, payloadOf(t, b.Records[recDisable]), b.Collector.Signer)
			bundle := withRecords(t, b, []int{recDisable}, raw)
			tampered(t, b, bundle, verify.Options{}, verify.CheckEntriesSignature, evidence.ErrPayloadType)
		})
	}
	t.Run("input that is not a bundle file", func(t *testing.T) {
		b := build(t, nil)
		v, err := verify.New(b.Trust, b.Policy)
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range [][]byte{nil, []byte("{}"), manifestJSON(t, b), b.Records[recCreate],
			[]byte(replace(t, string(b.BundleBytes), `"signatures":`, `"payloadHash":"","signatures":`))} {
			if res, err := v.VerifyBundle(raw, verify.Options{}); !errors.Is(err, verify.ErrInput) || res != nil {
				t.Errorf("VerifyBundle(%.40q) = %v, %v; want ErrInput", raw, res, err)
			}
		}
	})
}

// ATTACKS.md case 16: duplicate keys, case variants and unknown fields are
// rejected, in the bundle, in records, in DSSE envelopes and in the trust and
// policy files.
func TestAttack16_JSONConfusion(t *testing.T) {
	b := build(t, nil)
	payload := string(manifestJSON(t, b))
	t.Run("control: the genuine payload re-signed verifies", func(t *testing.T) {
		wantVerified(t, run(t, b, signPayload(t, b, []byte(payload)), verify.Options{}))
	})
	for _, tt := range []struct{ name, payload string }{
		{"duplicate key", replace(t, payload, `{"rotation":`, `{"checkpoint":"x","rotation":`)},
		{"duplicate key, same value", replace(t, payload, `"keyClass":"hot-signing"`, `"keyClass":"hot-signing","keyClass":"hot-signing"`)},
		{"duplicate key in rotation", replace(t, payload, `"keyClass":"hot-signing"`, `"keyClass":"hot-signing","keyClass":"cold"`)},
		{"duplicate key in an entry", replace(t, payload, `"index":1,`, `"index":1,"index":2,`)},
		{"case-variant key", replace(t, payload, `"rotation":`, `"Rotation":`)},
		{"case-variant key beside the right one", replace(t, payload, `"checkpoint":`, `"Checkpoint":"x","checkpoint":`)},
		{"case-variant nested key", replace(t, payload, `"keyClass":`, `"keyclass":`)},
		{"unknown field", replace(t, payload, `{"rotation":`, `{"witnesses":[],"rotation":`)},
		{"unknown field in an entry", replace(t, payload, `"leafHash":`, `"envelope":"AA==","leafHash":`)},
		{"trailing data", payload + `{}`},
		{"invalid UTF-8", replace(t, payload, `hot-signing`, "hot-signing\xff")},
	} {
		t.Run("bundle manifest: "+tt.name, func(t *testing.T) {
			wantFail(t, run(t, b, signPayload(t, b, []byte(tt.payload)), verify.Options{}), verify.CheckBundleFormat, evidence.ErrMalformed)
		})
	}

	create := string(payloadOf(t, b.Records[recCreate]))
	digest := b.Rotation.NewKey.SPKISHA256
	t.Run("control: the genuine record re-signed verifies", func(t *testing.T) {
		b := build(t, nil)
		bundle := withRecords(t, b, []int{recCreate}, signRecord(t, []byte(create), b.Collector.Signer))
		wantVerified(t, run(t, b, resign(t, b, bundle), verify.Options{}))
	})
	// rec signs the create record with old replaced by new, as its collector.
	rec := func(old, new string) string {
		return string(signRecord(t, []byte(replace(t, create, old, new)), b.Collector.Signer))
	}
	envelope := func(old, new string) string { return replace(t, string(b.Records[recCreate]), old, new) }
	for _, tt := range []struct {
		name, envelope string
		err            error
	}{
		{"record: duplicate predicateType", rec(`"predicateType":`, `"predicateType":"`+evidence.PredicateHSMAttestation+`","predicateType":`), evidence.ErrMalformed},
		{"record: duplicate _type", rec(`{"_type":`, `{"_type":"https://in-toto.io/Statement/v0.1","_type":`), evidence.ErrMalformed},
		{"record: duplicate key in the predicate", rec(`"event":"create"`, `"event":"create","event":"promote"`), evidence.ErrMalformed},
		{"record: duplicate digest algorithm", rec(`"sha256":"`+digest+`"`, `"sha256":"`+digest+`","sha256":"`+strings.Repeat("0", 64)+`"`), evidence.ErrMalformed},
		{"record: case-variant key", rec(`"subject":`, `"Subject":`), evidence.ErrMalformed},
		{"record: case-variant key in the predicate", rec(`"rotationId":`, `"rotationID":`), evidence.ErrPredicate},
		{"record: unknown field", rec(`{"_type":`, `{"extra":1,"_type":`), evidence.ErrMalformed},
		{"record: unknown field in a subject", rec(`"digest":`, `"uri":"x","digest":`), evidence.ErrMalformed},
		{"record: unknown field in the predicate", rec(`"event":"create"`, `"event":"create","approvedBy":"alice@custody.example"`), evidence.ErrPredicate},
		{"record: trailing data", rec(`}}}`, `}}} {}`), evidence.ErrMalformed},
		{"DSSE envelope: duplicate payload", envelope(`"payload":"`, `"payload":"`+base64.StdEncoding.EncodeToString([]byte(create))+`","payload":"`), evidence.ErrMalformed},
		{"DSSE envelope: case-variant key", envelope(`"payloadType":`, `"PayloadType":`), evidence.ErrMalformed},
		{"DSSE envelope: unknown field", envelope(`"signatures":`, `"payloadHash":"","signatures":`), evidence.ErrMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := build(t, nil)
			bundle := withRecords(t, b, []int{recCreate}, []byte(tt.envelope))
			tampered(t, b, bundle, verify.Options{}, verify.CheckEntriesSignature, tt.err)
		})
	}

	trust := string(marshal(t, b.TrustFile()))
	for _, tt := range []struct{ name, trust string }{
		{"duplicate key", replace(t, trust, `{"version":1,`, `{"version":1,"version":1,`)},
		{"duplicate bundleSigners", replace(t, trust, `"bundleSigners":`, `"bundleSigners":[],"bundleSigners":`)},
		{"case-variant key", replace(t, trust, `"logs":`, `"Logs":`)},
		{"unknown field", replace(t, trust, `"logs":`, `"witnesses":[],"logs":`)},
	} {
		t.Run("trust file: "+tt.name, func(t *testing.T) {
			if _, err := verify.ParseTrust([]byte(tt.trust)); !errors.Is(err, verify.ErrTrust) {
				t.Errorf("ParseTrust = %v, want ErrTrust", err)
			}
		})
	}
	for _, tt := range []struct{ name, policy string }{
		{"duplicate key", replace(t, scenario.PolicyYAML, "  minApprovals: 2\n", "  minApprovals: 2\n  minApprovals: 1\n")},
		{"case-variant key", replace(t, scenario.PolicyYAML, "minApprovals:", "MinApprovals:")},
		{"unknown field", replace(t, scenario.PolicyYAML, "  minApprovals: 2\n", "  minApprovals: 2\n  maxApprovals: 1\n")},
		{"two documents", scenario.PolicyYAML + "---\nversion: 1\n"},
	} {
		t.Run("policy file: "+tt.name, func(t *testing.T) {
			if _, err := verify.ParsePolicy([]byte(tt.policy)); !errors.Is(err, verify.ErrPolicy) {
				t.Errorf("ParsePolicy = %v, want ErrPolicy", err)
			}
		})
	}
}

// ATTACKS.md case 17: subjects that name the rotation's keys wrongly.
func TestAttack17_SubjectMismatch(t *testing.T) {
	b := build(t, nil)
	oldKey, newKey := b.Rotation.OldKey, b.Rotation.NewKey
	other := strings.Repeat("ab", 32)
	sha1 := strings.Repeat("cd", 20)
	sub := func(name string, digest ...string) evidence.Subject {
		d := map[string]string{}
		for i := 0; i < len(digest); i += 2 {
			d[digest[i]] = digest[i+1]
		}
		return evidence.Subject{Name: name, Digest: d}
	}
	for _, tt := range []struct {
		name     string
		subjects []evidence.Subject
		check    string
		err      error
		reason   string
	}{
		{"the rotation key's ID with another digest", []evidence.Subject{sub(newKey.ID, "sha256", other)},
			verify.CheckEntriesBinding, verify.ErrBinding, "has digest " + other},
		{"the rotation key's digest under another name", []evidence.Subject{sub("kms:eu-central-1/custody/evil/v1", "sha256", newKey.SPKISHA256)},
			verify.CheckEntriesBinding, verify.ErrBinding, "under another name"},
		{"the old key's ID with the new key's digest", []evidence.Subject{sub(oldKey.ID, "sha256", newKey.SPKISHA256)},
			verify.CheckEntriesBinding, verify.ErrBinding, ""},
		{"only a weak digest", []evidence.Subject{sub(newKey.ID, "sha1", sha1)}, verify.CheckEntriesSignature, evidence.ErrSubject, ""},
		{"a weak digest beside sha256", []evidence.Subject{sub(newKey.ID, "sha1", sha1, "sha256", newKey.SPKISHA256)}, verify.CheckEntriesSignature, evidence.ErrSubject, ""},
		{"only sha512", []evidence.Subject{sub(newKey.ID, "sha512", strings.Repeat("ef", 64))}, verify.CheckEntriesSignature, evidence.ErrSubject, ""},
		{"uppercase sha256", []evidence.Subject{sub(newKey.ID, "sha256", strings.ToUpper(newKey.SPKISHA256))}, verify.CheckEntriesSignature, evidence.ErrSubject, ""},
		{"no digest", []evidence.Subject{sub(newKey.ID)}, verify.CheckEntriesSignature, evidence.ErrSubject, ""},
		{"duplicate subjects with conflicting digests", []evidence.Subject{sub(newKey.ID, "sha256", newKey.SPKISHA256), sub(newKey.ID, "sha256", other)},
			verify.CheckEntriesSignature, evidence.ErrSubject, "appears twice"},
		{"duplicate subjects with conflicting digests, wrong one first", []evidence.Subject{sub(newKey.ID, "sha256", other), sub(newKey.ID, "sha256", newKey.SPKISHA256)},
			verify.CheckEntriesSignature, evidence.ErrSubject, "appears twice"},
		{"duplicate identical subjects", []evidence.Subject{sub(newKey.ID, "sha256", newKey.SPKISHA256), sub(newKey.ID, "sha256", newKey.SPKISHA256)},
			verify.CheckEntriesSignature, evidence.ErrSubject, "appears twice"},
		{"both keys as subjects of one event", []evidence.Subject{sub(newKey.ID, "sha256", newKey.SPKISHA256), sub(oldKey.ID, "sha256", oldKey.SPKISHA256)},
			verify.CheckEntriesSignature, evidence.ErrPredicate, "exactly one subject"},
		{"no subject", nil, verify.CheckEntriesSignature, evidence.ErrSubject, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := build(t, nil)
			st, _ := statementOf(t, b.Records[recCreate])
			st.Subject = tt.subjects
			bundle := withRecords(t, b, []int{recCreate}, signRecord(t, marshal(t, st), b.Collector.Signer))
			c := tampered(t, b, bundle, verify.Options{}, tt.check, tt.err)
			failuresContain(t, c, tt.reason)
		})
	}
}

// jsonPath is a path into a generic JSON tree: member names and array indices.
type jsonPath []any

func (p jsonPath) String() string {
	var b strings.Builder
	for _, e := range p {
		switch e := e.(type) {
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(e)
		case int:
			fmt.Fprintf(&b, "[%d]", e)
		}
	}
	return b.String()
}

// editAt returns a copy of root with the node at path replaced by f(node).
// Only the containers on the path are copied; f must not change its argument.
func editAt(root any, path jsonPath, f func(any) any) any {
	if len(path) == 0 {
		return f(root)
	}
	switch n := root.(type) {
	case map[string]any:
		out := maps.Clone(n)
		out[path[0].(string)] = editAt(n[path[0].(string)], path[1:], f)
		return out
	case []any:
		out := slices.Clone(n)
		out[path[0].(int)] = editAt(n[path[0].(int)], path[1:], f)
		return out
	}
	panic(fmt.Sprintf("no container at %v", path))
}

// singleEdit changes one value of a JSON tree: the node at path becomes apply(node).
type singleEdit struct {
	name  string
	path  jsonPath
	apply func(any) any
}

// rotateChar changes c to the next character of its class (digits, lowercase
// hex when hex is set, lowercase, uppercase).
func rotateChar(c byte, hex bool) byte {
	switch {
	case hex && c == '9':
		return 'a'
	case hex && c == 'f':
		return '0'
	case '0' <= c && c <= '9':
		return '0' + (c-'0'+1)%10
	case 'a' <= c && c <= 'z':
		return 'a' + (c-'a'+1)%26
	case 'A' <= c && c <= 'Z':
		return 'A' + (c-'A'+1)%26
	}
	return c
}

// alterMiddle changes the alphanumeric character nearest the middle of s.
func alterMiddle(s string, hex bool) (string, bool) {
	isAlnum := func(c byte) bool { return rotateChar(c, false) != c }
	for d := 0; d <= len(s)/2+1; d++ {
		for _, i := range []int{len(s)/2 + d, len(s)/2 - d} {
			if 0 <= i && i < len(s) && isAlnum(s[i]) {
				return s[:i] + string(rotateChar(s[i], hex)) + s[i+1:], true
			}
		}
	}
	return s, false
}

// stringEdits are the ways a string is altered: times move by ±1 s and ±7 days
// or are spelt non-canonically; base64 has one bit of its decoded bytes flipped;
// hex has a digit changed; text has one character changed (in each line, for a
// signed note); every string is also emptied.
func stringEdits(s string) map[string]string {
	out := map[string]string{"emptied": ""}
	isHex := len(s) == 64 && strings.Trim(s, "0123456789abcdef") == ""
	raw, b64err := base64.StdEncoding.Strict().DecodeString(s)
	t, timeErr := evidence.ParseTime(s)
	switch {
	case timeErr == nil:
		day := 24 * time.Hour
		for label, d := range map[string]time.Duration{"-1s": -time.Second, "+1s": time.Second, "-7d": -7 * day, "+7d": 7 * day} {
			out[label] = evidence.FormatTime(t.Add(d))
		}
		out["spelt with +00:00"] = strings.TrimSuffix(s, "Z") + "+00:00"
	case isHex:
		out["a hex digit changed"], _ = alterMiddle(s, true)
	case b64err == nil && len(raw) > 0:
		raw[len(raw)/2] ^= 1
		out["a bit of the decoded bytes flipped"] = base64.StdEncoding.EncodeToString(raw)
	case strings.Contains(s, "\n"):
		lines := strings.Split(s, "\n")
		for i, l := range lines {
			if alt, ok := alterMiddle(l, false); ok {
				out[fmt.Sprintf("line %d altered", i+1)] = strings.Join(slices.Concat(lines[:i], []string{alt}, lines[i+1:]), "\n")
			}
		}
	default:
		out["a character changed"], _ = alterMiddle(s, false)
	}
	return out
}

// singleEdits lists every single edit of the tree: each string altered (see
// stringEdits), each number ±1, each bool flipped, each array element removed
// and duplicated, each object member deleted.
func singleEdits(v any, path jsonPath) []singleEdit {
	var out []singleEdit
	set := func(name string, to any) {
		out = append(out, singleEdit{name: path.String() + ": " + name, path: path, apply: func(any) any { return to }})
	}
	sub := func(k any) jsonPath { return append(slices.Clip(path), k) }
	switch n := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(n)) {
			out = append(out, singleEdit{name: sub(k).String() + ": deleted", path: path, apply: func(v any) any {
				m := maps.Clone(v.(map[string]any))
				delete(m, k)
				return m
			}})
			out = append(out, singleEdits(n[k], sub(k))...)
		}
	case []any:
		for i := range n {
			out = append(out,
				singleEdit{name: sub(i).String() + ": removed", path: path, apply: func(v any) any { return slices.Delete(slices.Clone(v.([]any)), i, i+1) }},
				singleEdit{name: sub(i).String() + ": duplicated", path: path, apply: func(v any) any { return slices.Insert(slices.Clone(v.([]any)), i, v.([]any)[i]) }},
			)
			out = append(out, singleEdits(n[i], sub(i))...)
		}
	case string:
		for _, label := range slices.Sorted(maps.Keys(stringEdits(n))) {
			set(label, stringEdits(n)[label])
		}
	case json.Number:
		i, err := n.Int64()
		if err != nil {
			panic(err)
		}
		set("+1", json.Number(fmt.Sprint(i+1)))
		if i > 0 {
			set("-1", json.Number(fmt.Sprint(i-1)))
		}
	case bool:
		set("flipped", !n)
	}
	return out
}

func encodeJSON(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// TestAnySingleEdit changes every value of a bundle payload, one at a time
// (numbers, bools, strings, array elements, object members), and checks that
// (a) under the operator's old signature every edit fails bundle.signature, and
// (b) re-signed by a dishonest operator every edit still fails verification,
// except the edits listed below, which a dishonest operator can make undetected.
func TestAnySingleEdit(t *testing.T) {
	// Edits a dishonest operator can make undetected: the rotation window may be
	// widened (start earlier, end later) or narrowed as long as it still
	// contains every record (the records are at start+1h to start+11h, the window
	// is 7 days). The window is the operator's claim: it selects records, and a
	// bundle's completeness against the log (--log) is judged for the window the
	// bundle states.
	window := []string{
		"rotation.window.end: +1s",
		"rotation.window.end: +7d",
		"rotation.window.end: -1s",
		"rotation.window.start: +1s",
		"rotation.window.start: -1s",
		"rotation.window.start: -7d",
	}
	for _, tt := range []struct {
		name       string
		opts       func(b *scenario.Built) verify.Options
		undetected []string
	}{
		// Without --since, the earlier checkpoint a bundle carries is optional: an
		// operator can drop it.
		{"without --since", func(*scenario.Built) verify.Options { return verify.Options{} }, append([]string{"consistency: deleted"}, window...)},
		{"with --since", func(b *scenario.Built) verify.Options { return verify.Options{Since: cpAt(t, b, s1)} }, window},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, bundle := grown(t)
			opts := tt.opts(b)
			signManifest := func(p []byte) []byte {
				return bundleFileOf(t, signRecordAs(t, evidence.ManifestMediaType, p, b.Operator.Signer), bundle)
			}
			// The signed part: the manifest. Control: the re-encoded manifest
			// (members in another order), signed by the operator, verifies.
			tree := decodeTree(t, marshal(t, evidence.ManifestOf(bundle)))
			payload := encodeJSON(t, tree)
			genuine := signManifest(payload)
			wantVerified(t, run(t, b, genuine, opts))

			var undetected []string
			edits := singleEdits(tree, nil)
			if len(edits) < 100 {
				t.Fatalf("only %d edits", len(edits))
			}
			for _, e := range edits {
				t.Run("manifest/"+e.name, func(t *testing.T) {
					edited := encodeJSON(t, editAt(tree, e.path, e.apply))
					if bytes.Equal(edited, payload) {
						t.Fatalf("edit changed nothing")
					}
					env := manifestEnvelope(t, genuine)
					env.Payload = edited
					wantFail(t, run(t, b, bundleFileOf(t, marshal(t, env), bundle), opts), verify.CheckBundleSignature, evidence.ErrBadSignature)
					if res := run(t, b, signManifest(edited), opts); res.Verified {
						undetected = append(undetected, e.name)
					}
				})
			}
			slices.Sort(undetected)
			if d := cmp.Diff(tt.undetected, undetected); d != "" {
				t.Errorf("edits a dishonest operator can make undetected (-want +got):\n%s", d)
			}

			// The rest of the file (entries' envelopes and proofs, the media type,
			// the manifest's envelope) is covered by the manifest's signature and
			// leaf hashes, and by the signed root: every edit fails, no re-signing
			// can help.
			v, err := verify.New(b.Trust, b.Policy)
			if err != nil {
				t.Fatal(err)
			}
			file := decodeTree(t, genuine)
			fileEdits := singleEdits(file, nil)
			if len(fileEdits) < 150 {
				t.Fatalf("only %d file edits", len(fileEdits))
			}
			for _, e := range fileEdits {
				t.Run("file/"+e.name, func(t *testing.T) {
					edited := encodeJSON(t, editAt(file, e.path, e.apply))
					res, err := v.VerifyBundle(edited, opts)
					if err == nil && res.Verified {
						t.Fatalf("edit verified")
					}
				})
			}
		})
	}
}

// decodeTree decodes JSON into a generic tree, numbers kept exact.
func decodeTree(t testing.TB, raw []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		t.Fatal(err)
	}
	return tree
}

// cosigner is a C2SP tlog-cosignature (cosignature/v1) witness with a fixed
// timestamp, so that one witness can make two distinct cosignatures of one
// checkpoint, and one key can cosign under two names.
type cosigner struct {
	name string
	hash uint32
	key  ed25519.PrivateKey
	time uint64
	vkey string // cosignature/v1 verifier key
}

// newCosigner makes a witness named name whose key derives from seed.
func newCosigner(t testing.TB, name string, seed byte, time uint64) cosigner {
	t.Helper()
	s := bytes.Repeat([]byte{seed}, ed25519.SeedSize)
	_, vkey, err := note.GenerateKey(bytes.NewReader(s), name)
	if err != nil {
		t.Fatal(err)
	}
	if vkey, err = fnote.VKeyToCosignatureV1(vkey); err != nil {
		t.Fatal(err)
	}
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return cosigner{name: name, hash: v.KeyHash(), key: ed25519.NewKeyFromSeed(s), time: time, vkey: vkey}
}

func (c cosigner) Name() string    { return c.name }
func (c cosigner) KeyHash() uint32 { return c.hash }
func (c cosigner) Sign(msg []byte) ([]byte, error) {
	m := fmt.Appendf(nil, "cosignature/v1\ntime %d\n%s", c.time, msg)
	return append(binary.BigEndian.AppendUint64(nil, c.time), ed25519.Sign(c.key, m)...), nil
}

// witnessedTrust makes b's trust file require quorum cosignatures of witnesses.
func witnessedTrust(t testing.TB, b *scenario.Built, quorum int, witnesses ...cosigner) {
	t.Helper()
	tf := b.TrustFile()
	for _, w := range witnesses {
		tf.Logs[0].Witnesses = append(tf.Logs[0].Witnesses, verify.TrustedWitness{Key: w.vkey})
	}
	tf.Logs[0].WitnessQuorum = quorum
	var err error
	if b.Trust, err = verify.ParseTrust(marshal(t, tf)); err != nil {
		t.Fatal(err)
	}
}

// cosigned returns b's bundle with its checkpoint signed by signers.
func cosigned(t testing.TB, b *scenario.Built, signers ...note.Signer) *evidence.Bundle {
	t.Helper()
	bundle := cloneBundle(t, b.Bundle)
	bundle.Checkpoint = signNote(t, body([]byte(b.Bundle.Checkpoint)), signers...)
	return bundle
}

// ATTACKS.md cases 6, 7 and 8 for witnesses (C2SP tlog-cosignature): a trust
// file requires 2 of the witnesses w1, w2 and w3.
func TestAttack07_WitnessQuorumDoubleCounting(t *testing.T) {
	w1, w2, w3 := newCosigner(t, "witness.example/one", 1, 1700000000), newCosigner(t, "witness.example/two", 2, 1700000000), newCosigner(t, "witness.example/three", 3, 1700000000)
	w1Later := w1
	w1Later.time++
	w1Alias := newCosigner(t, "witness.example/alias", 1, 1700000000) // w1's key under another name
	stranger := newCosigner(t, "witness.example/one", 9, 1700000000)  // w1's name, another key
	for _, tt := range []struct {
		name    string
		signers func(b *scenario.Built) []note.Signer
		err     error // nil: verifies
	}{
		{"control: the log, w1 and w2", func(b *scenario.Built) []note.Signer { return []note.Signer{b.LogSigner, w1, w2} }, nil},
		{"control: the log, a stranger with w1's name, w2 and w3", func(b *scenario.Built) []note.Signer { return []note.Signer{b.LogSigner, stranger, w2, w3} }, nil},
		{"case 7: w1 twice, two distinct cosignatures", func(b *scenario.Built) []note.Signer { return []note.Signer{b.LogSigner, w1, w1Later} }, checkpoint.ErrWitnessQuorum},
		{"case 7: w1's key under its name and another", func(b *scenario.Built) []note.Signer { return []note.Signer{b.LogSigner, w1, w1Alias} }, checkpoint.ErrWitnessQuorum},
		{"case 8: w1 and a stranger with w1's name", func(b *scenario.Built) []note.Signer { return []note.Signer{b.LogSigner, w1, stranger} }, checkpoint.ErrWitnessQuorum},
		{"case 6: w1 and w2 without the log", func(*scenario.Built) []note.Signer { return []note.Signer{w1, w2} }, checkpoint.ErrSignature},
		{"case 6: w1, w2 and w3 without the log", func(*scenario.Built) []note.Signer { return []note.Signer{w1, w2, w3} }, checkpoint.ErrSignature},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := build(t, nil)
			witnessedTrust(t, b, 2, w1, w2, w3)
			bundle := cosigned(t, b, tt.signers(b)...)
			if tt.err == nil {
				wantVerified(t, run(t, b, resign(t, b, bundle), verify.Options{}))
				return
			}
			tampered(t, b, bundle, verify.Options{}, verify.CheckCheckpointSignature, tt.err)
		})
	}
	// A bad cosignature claiming a trusted witness's name and key hash is an
	// error, as for the log's own key, wherever it is in the note.
	bad := garbageSigLine(w2.name, w2.hash)
	for _, tt := range []struct{ name, lines string }{
		{"before w2's good one", bad + "%s"},
		{"after w2's good one", "%s" + bad},
	} {
		t.Run("case 8: bad cosignature claiming w2 "+tt.name, func(t *testing.T) {
			b := build(t, nil)
			witnessedTrust(t, b, 2, w1, w2, w3)
			good := []byte(cosigned(t, b, b.LogSigner, w1, w2).Checkpoint)
			bundle := cloneBundle(t, b.Bundle)
			bundle.Checkpoint = body(good) + "\n" + fmt.Sprintf(tt.lines, sigLines(good))
			tampered(t, b, bundle, verify.Options{}, verify.CheckCheckpointSignature, checkpoint.ErrSignature)
		})
	}
	// The same witness quorum applies to --since and to the bundle's earlier
	// checkpoint.
	t.Run("--since cosigned by one witness twice", func(t *testing.T) {
		b := build(t, nil)
		witnessedTrust(t, b, 2, w1, w2, w3)
		raw := resign(t, b, cosigned(t, b, b.LogSigner, w1, w2))
		since := signNote(t, body(cpAt(t, b, 5)), b.LogSigner, w1, w1Later)
		wantFail(t, run(t, b, raw, verify.Options{Since: []byte(since)}), verify.CheckConsistency, verify.ErrConsistency, checkpoint.ErrWitnessQuorum)
		since = signNote(t, body(cpAt(t, b, 5)), b.LogSigner, w1, w3)
		wantFail(t, run(t, b, raw, verify.Options{Since: []byte(since)}), verify.CheckConsistency, verify.ErrConsistency) // no proof from 5, but the checkpoint opened
		if c := run(t, b, raw, verify.Options{Since: []byte(since)}).Check(verify.CheckConsistency); errors.Is(c.Err(), checkpoint.ErrWitnessQuorum) {
			t.Errorf("a --since checkpoint meeting the quorum failed it: %v", c.Err())
		}
	})
}
