package evidence_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/scenario"
	"github.com/keytrail/keytrail/internal/strictjson"
)

// seeds returns the envelopes, statements and bundle payloads of a real
// rotation, with a consistency proof, as seed corpora.
func seeds(f *testing.F) (envelopes, statements, bundles [][]byte) {
	f.Helper()
	b, err := scenario.Build(context.Background(), "fuzz", nil)
	if err != nil {
		f.Fatal(err)
	}
	envelopes = append([][]byte{b.BundleBytes}, b.Records...)
	for _, r := range b.Records {
		env, err := evidence.ParseEnvelope(r, evidence.MaxRecordBytes)
		if err != nil {
			f.Fatal(err)
		}
		statements = append(statements, env.Payload)
	}
	payload, err := strictjson.Marshal(b.Bundle)
	if err != nil {
		f.Fatal(err)
	}
	cons := *b.Bundle
	cons.Consistency = &evidence.Consistency{Checkpoint: b.Bundle.Checkpoint, Proof: [][]byte{make([]byte, 32)}}
	withCons, err := strictjson.Marshal(&cons)
	if err != nil {
		f.Fatal(err)
	}
	return envelopes, statements, [][]byte{payload, withCons}
}

// FuzzParseEnvelope: ParseEnvelope never panics, fails only with its
// sentinels, and what it accepts re-encodes to an envelope that parses to the
// same value, and re-encodes to the same bytes again.
func FuzzParseEnvelope(f *testing.F) {
	envelopes, _, _ := seeds(f)
	for _, e := range envelopes {
		f.Add(e)
	}
	f.Add([]byte(`{"payloadType":"t","payload":"","signatures":[{"keyid":"","sig":"AA=="}]}`))
	f.Add([]byte(`{"payloadType":"t","payload":"AR==","signatures":[{"sig":"AA=="},{"sig":"AA=="}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := evidence.ParseEnvelope(data, evidence.MaxRecordBytes)
		if err != nil {
			if !errors.Is(err, evidence.ErrMalformed) && !errors.Is(err, evidence.ErrNoSignature) && !errors.Is(err, evidence.ErrTooManySigners) {
				t.Fatalf("ParseEnvelope error wraps no sentinel: %v", err)
			}
			return
		}
		out, err := strictjson.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		again, err := evidence.ParseEnvelope(out, len(out))
		if err != nil {
			t.Fatalf("re-encoded envelope %q does not parse: %v", out, err)
		}
		if d := cmp.Diff(env, again, cmpopts.EquateEmpty()); d != "" {
			t.Fatalf("round trip changed the envelope (-first +second):\n%s", d)
		}
		if out2, _ := strictjson.Marshal(again); !bytes.Equal(out, out2) {
			t.Fatalf("encoding is not stable: %q then %q", out, out2)
		}
	})
}

// FuzzParseStatement: ParseStatement never panics, and a statement it accepts
// re-encodes to one that parses to the same statement and predicate.
func FuzzParseStatement(f *testing.F) {
	_, statements, _ := seeds(f)
	for _, s := range statements {
		f.Add(s)
	}
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"","predicate":{}}`))
	// Every predicate type of the policy rotation: receipts, snapshots,
	// attestations, provider-sourced events and residency claims.
	pb, err := scenario.BuildPolicy(context.Background(), "fuzz seeds", nil)
	if err != nil {
		f.Fatal(err)
	}
	for _, env := range append(pb.Records, pb.Residency...) {
		e, err := evidence.ParseEnvelope(env, evidence.MaxRecordBytes)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(e.Payload)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, p, err := evidence.ParseStatement(data)
		if err != nil {
			return
		}
		out, err := strictjson.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		st2, p2, err := evidence.ParseStatement(out)
		if err != nil {
			t.Fatalf("re-encoded statement %q does not parse: %v", out, err)
		}
		if d := cmp.Diff(st, st2, cmpopts.EquateEmpty()); d != "" {
			t.Fatalf("round trip changed the statement (-first +second):\n%s", d)
		}
		if d := cmp.Diff(p, p2, cmpopts.EquateEmpty(), cmp.AllowUnexported(evidence.At{})); d != "" {
			t.Fatalf("round trip changed the predicate (-first +second):\n%s", d)
		}
	})
}

// FuzzParseBundle: ParseBundle never panics, and a bundle it accepts
// re-encodes to one that parses to the same bundle.
func FuzzParseBundle(f *testing.F) {
	_, _, bundles := seeds(f)
	for _, b := range bundles {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := evidence.ParseBundle(data)
		if err != nil {
			if !errors.Is(err, evidence.ErrMalformed) {
				t.Fatalf("ParseBundle error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		out, err := strictjson.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		b2, err := evidence.ParseBundle(out)
		if err != nil {
			t.Fatalf("re-encoded bundle does not parse: %v", err)
		}
		if d := cmp.Diff(b, b2, cmpopts.EquateEmpty()); d != "" {
			t.Fatalf("round trip changed the bundle (-first +second):\n%s", d)
		}
	})
}
