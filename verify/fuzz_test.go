package verify_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/scenario"
	"github.com/keytrail/keytrail/verify"
)

// FuzzVerifyBundle feeds arbitrary bytes to VerifyBundle twice: as the bundle
// file, and as a bundle manifest that the (dishonest) operator signed, paired
// with the genuine entries. It never panics (a recovered panic is a failure
// too), and it is never Verified except for the genuine bundle: as a file, only
// one whose manifest is the genuine manifest verifies; as a manifest, only the
// genuine one, with the window edits TestAnySingleEdit allows.
func FuzzVerifyBundle(f *testing.F) {
	b := build(f, nil)
	v, err := verify.New(b.Trust, b.Policy)
	if err != nil {
		f.Fatal(err)
	}
	genuine := manifestEnvelope(f, b.BundleBytes)
	f.Add(b.BundleBytes)
	f.Add(genuine.Payload)
	for _, r := range b.Records[:2] {
		f.Add(r)
	}
	bundle := cloneBundle(f, b.Bundle)
	bundle.Entries = bundle.Entries[:1]
	f.Add(marshal(f, evidence.ManifestOf(bundle)))
	bundle.Consistency = &evidence.Consistency{Checkpoint: b.Bundle.Checkpoint, Proof: [][]byte{make([]byte, 32)}}
	f.Add(marshal(f, evidence.ManifestOf(bundle)))
	f.Add([]byte(`{"mediaType":"application/vnd.keytrail.bundle.v1+json","manifest":{"payloadType":"x","payload":"e30=","signatures":[{"sig":"AA=="}]},"entries":[]}`))
	f.Add([]byte("{}"))

	check := func(t *testing.T, raw []byte) *verify.Result {
		res, err := v.VerifyBundle(raw, verify.Options{})
		if err != nil {
			if !errors.Is(err, verify.ErrInput) || res != nil {
				t.Fatalf("VerifyBundle = %v, %v; want a result, or ErrInput alone", res, err)
			}
			return nil
		}
		if c := res.Check("verifier"); c != nil {
			t.Fatalf("verification panicked: %s", c.Reason)
		}
		if res.Verified != (res.Err() == nil) {
			t.Fatalf("Verified = %v but Err() = %v", res.Verified, res.Err())
		}
		for _, c := range res.Checks {
			if res.Verified && c.Status == verify.Fail {
				t.Fatalf("Verified with check %s failed", c.Name)
			}
		}
		return res
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if res := check(t, data); res != nil && res.Verified {
			got, _, err := evidence.OpenBundle(data, opKeys{b.Operator.Signer.PublicKey()})
			if err != nil || !bytes.Equal(marshal(t, evidence.ManifestOf(got)), genuine.Payload) {
				t.Fatalf("verified a bundle file that is not the genuine bundle: %q", data)
			}
		}
		raw, err := evidence.Sign(ctx, evidence.ManifestMediaType, data, b.Operator.Signer)
		if err != nil {
			t.Fatal(err)
		}
		if res := check(t, bundleFile(t, b, raw)); res != nil && res.Verified {
			got, err := evidence.ParseManifest(data)
			if err != nil {
				t.Fatalf("verified a manifest ParseManifest rejects: %v", err)
			}
			if d := cmp.Diff(evidence.ManifestOf(b.Bundle), got, cmpopts.EquateEmpty(), cmpopts.IgnoreFields(evidence.Rotation{}, "Window")); d != "" {
				t.Fatalf("verified a manifest that is not the genuine one (-genuine +got):\n%s", d)
			}
		}
	})
}

// opKeys is a one-key evidence.KeySet.
type opKeys struct{ k *evidence.PublicKey }

func (s opKeys) Key(d string) *evidence.PublicKey {
	if d == s.k.Digest {
		return s.k
	}
	return nil
}
func (s opKeys) Keys() []*evidence.PublicKey { return []*evidence.PublicKey{s.k} }

// FuzzParseTrust: ParseTrust never panics, and a trust file it accepts has a
// log and a bundle signer.
func FuzzParseTrust(f *testing.F) {
	b := build(f, nil)
	f.Add(b.TrustJSON)
	f.Add(marshal(f, b.TrustFile()))
	f.Add([]byte(`{"version":1,"logs":[{"origin":"o","key":"o+12345678+AQ=="}],"bundleSigners":[{"id":"x","publicKey":""}]}`))
	f.Add([]byte("{}"))
	pb, err := scenario.BuildPolicy(context.Background(), "fuzz seeds", nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pb.TrustJSON) // with a residency block
	f.Fuzz(func(t *testing.T, data []byte) {
		trust, err := verify.ParseTrust(data)
		if err != nil {
			if !errors.Is(err, verify.ErrTrust) {
				t.Fatalf("ParseTrust error does not wrap ErrTrust: %v", err)
			}
			return
		}
		if _, err := verify.New(trust, b.Policy); err != nil {
			t.Fatalf("New refused an accepted trust file: %v", err)
		}
	})
}

// FuzzParsePolicy: ParsePolicy never panics, and a policy it accepts is complete.
func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte(scenario.PolicyYAML))
	f.Add([]byte(scenario.PolicyYAMLFull))
	f.Add([]byte("version: 1\nrotation:\n  approverRoles: [a]\n"))
	f.Add([]byte("version: 1\nrotation: {minApprovals: 3, approverRoles: [a, b], requireSmokeTest: false}\n"))
	f.Add([]byte("version: 1\n---\nversion: 1\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := verify.ParsePolicy(data)
		if err != nil {
			if !errors.Is(err, verify.ErrPolicy) {
				t.Fatalf("ParsePolicy error does not wrap ErrPolicy: %v", err)
			}
			return
		}
		r := p.Rotation
		if p.Version != 1 || r.MinApprovals < 1 || r.MinApprovals > 16 || len(r.ApproverRoles) == 0 || r.RequireSmokeTest == nil {
			t.Fatalf("ParsePolicy accepted an incomplete policy: %+v", p)
		}
	})
}

// FuzzResidencyClaims: any bytes logged in place of one of the authority's
// residency claims never panic and never make the residency check pass: only
// the authority's genuine, logged claims count.
func FuzzResidencyClaims(f *testing.F) {
	ctx := context.Background()
	b, err := scenario.BuildPolicy(ctx, "fuzz seeds", nil)
	if err != nil {
		f.Fatal(err)
	}
	v, err := verify.New(b.Trust, b.Policy)
	if err != nil {
		f.Fatal(err)
	}
	lv, err := note.NewVerifier(b.LogVerifier)
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range b.Residency {
		f.Add(c)
	}
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"","signatures":[]}`))
	genuine := map[string]bool{}
	for _, c := range b.Residency[2:] {
		genuine[string(c)] = true
	}
	f.Fuzz(func(t *testing.T, claim []byte) {
		// The log holds the rotation, two of the three claims, and the
		// fuzzed bytes in place of the third.
		l := scenario.NewMemLog(b.Origin, b.LogSigner)
		for _, env := range append(append(slices.Clone(b.Records), b.Residency[:2]...), claim) {
			if _, err := l.Append(ctx, env); err != nil {
				t.Fatal(err)
			}
		}
		bun, err := evidence.BuildBundle(ctx, l, b.Rotation, evidence.BuildOptions{Origin: b.Origin, LogVerifier: lv})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := evidence.SignBundle(ctx, bun, b.Operator.Signer)
		if err != nil {
			t.Fatal(err)
		}
		res, err := v.VerifyBundle(raw, verify.Options{})
		if err != nil {
			t.Fatal(err)
		}
		c := res.Check(verify.CheckResidency)
		if c == nil {
			t.Fatal("residency did not run")
		}
		if c.Status == verify.Pass && !genuine[string(claim)] {
			t.Fatalf("residency passed with a claim the authority did not sign: %q", claim)
		}
	})
}
