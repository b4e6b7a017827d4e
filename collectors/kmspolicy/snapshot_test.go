package kmspolicy

import (
	"context"
	"crypto/ed25519"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keytrail/keytrail/evidence"
)

var testKey = evidence.KeyRef{ID: testARN, SPKISHA256: strings.Repeat("1", 64)}

func policyOf(t *testing.T, doc string) *Policy {
	t.Helper()
	p, err := ParseAWS(export(doc, noGrants))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSnapshotSignAndParse(t *testing.T) {
	ctx := context.Background()
	signer := goldenSigner(t)
	s, err := NewSnapshot(policyOf(t, stmt(
		`{"Effect":"Allow","Principal":{"AWS":"arn:aws-eusc:iam::210987654321:role/s"},"Action":"kms:Sign","Resource":"*"}`,
		`{"Effect":"Deny","Principal":"*","Action":"kms:PutKeyPolicy","Resource":"*"}`)), Request{Key: testKey, Time: march})
	if err != nil {
		t.Fatal(err)
	}
	env, err := s.Sign(ctx, signer)
	if err != nil {
		t.Fatal(err)
	}
	e, err := evidence.ParseEnvelope(env, evidence.MaxRecordBytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Verify(evidence.PayloadType, oneKey{signer.PublicKey()}); err != nil {
		t.Fatal(err)
	}
	st, pred, err := evidence.ParseStatement(e.Payload)
	if err != nil {
		t.Fatal(err)
	}
	got := pred.(*evidence.KeyPolicySnapshot)
	if st.Subject[0].Name != testARN || got.Provider != ProviderAWS || !got.RecordTime().Equal(march) {
		t.Errorf("statement %+v, predicate %+v", st, got)
	}
	// Deny is not a permission: the signed bindings hold only the allow.
	want := []evidence.Binding{{Principal: "AWS:arn:aws-eusc:iam::210987654321:role/s", Permissions: []string{"kms:Sign"}}}
	if diff := cmp.Diff(want, got.Bindings); diff != "" {
		t.Errorf("signed bindings (-want +got):\n%s", diff)
	}
	if len(s.Predicate.Denies) != 1 || s.Predicate.Denies[0].Principal != "*" {
		t.Errorf("denies %v", s.Predicate.Denies)
	}
}

func TestNewSnapshotRejects(t *testing.T) {
	p := policyOf(t, stmt())
	prev := &Previous{Snapshot: &evidence.KeyPolicySnapshot{At: evidence.AtTime(february), Provider: ProviderAWS, CanonicalSHA256: strings.Repeat("0", 64)}}
	tests := []struct {
		name string
		req  Request
		want error
	}{
		{"subject ARN of another key", Request{Key: evidence.KeyRef{ID: "arn:aws:kms:eu-central-1:111122223333:key/mrk-4c1e8b2f9a3d47e6b05f1c2d3e4a5b6c", SPKISHA256: testKey.SPKISHA256}, Time: march}, ErrMismatch},
		{"subject names a GCP key", Request{Key: evidence.KeyRef{ID: gcpVersion, SPKISHA256: testKey.SPKISHA256}, Time: march}, ErrMismatch},
		{"previous of another provider", Request{Key: testKey, Time: march, Previous: &Previous{Snapshot: &evidence.KeyPolicySnapshot{At: evidence.AtTime(february), Provider: ProviderGCP}}}, ErrMismatch},
		{"previous not older", Request{Key: testKey, Time: february, Previous: prev}, ErrMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewSnapshot(p, tt.req); !errors.Is(err, tt.want) {
				t.Fatalf("NewSnapshot: %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := NewSnapshot(p, Request{Key: testKey}); err == nil {
		t.Error("no time: accepted")
	}
	if _, err := NewSnapshot(p, Request{Key: evidence.KeyRef{ID: testARN, SPKISHA256: "00"}, Time: march}); err == nil {
		t.Error("bad SPKI digest: accepted")
	}
	// A deployment's own key naming is taken as given.
	if _, err := NewSnapshot(p, Request{Key: evidence.KeyRef{ID: "kms:eusc/custody/hot-1", SPKISHA256: testKey.SPKISHA256}, Time: march}); err != nil {
		t.Error(err)
	}
}

func TestNewSnapshotGCPSubject(t *testing.T) {
	p, err := ParseGCP(gcpExport(t))
	if err != nil {
		t.Fatal(err)
	}
	for id, ok := range map[string]bool{
		gcpKeyName: true, gcpKeyName + "/cryptoKeyVersions/3": true,
		gcpKeyName + "/cryptoKeyVersions/0": false, gcpKeyName + "2": false, gcpKeyName + "/cryptoKeyVersions/1/x": false,
	} {
		_, err := NewSnapshot(p, Request{Key: evidence.KeyRef{ID: id, SPKISHA256: testKey.SPKISHA256}, Time: march})
		if (err == nil) != ok {
			t.Errorf("subject %s: %v, want ok=%v", id, err, ok)
		}
	}
}

func TestDiffBindings(t *testing.T) {
	at := func(tm time.Time, bs ...evidence.Binding) *evidence.KeyPolicySnapshot {
		return &evidence.KeyPolicySnapshot{At: evidence.AtTime(tm), Provider: ProviderAWS, Bindings: bs, CanonicalSHA256: strconv.Itoa(len(bs))}
	}
	prev := at(february,
		evidence.Binding{Principal: "AWS:a", Permissions: []string{"kms:Sign", "kms:Verify"}},
		evidence.Binding{Principal: "AWS:gone", Permissions: []string{"kms:Sign"}})
	cur := at(march,
		evidence.Binding{Principal: "AWS:a", Permissions: []string{"kms:PutKeyPolicy", "kms:Sign"}},
		evidence.Binding{Principal: "AWS:new", Permissions: []string{"kms:Verify"}})
	got := DiffBindings(prev, cur)
	want := &Diff{
		PreviousTime: "2026-02-01T09:00:00Z", PreviousCanonicalSHA256: "2", PolicyChanged: false,
		AddedPrincipals: []string{"AWS:new"}, RemovedPrincipals: []string{"AWS:gone"},
		Added: []evidence.Binding{
			{Principal: "AWS:a", Permissions: []string{"kms:PutKeyPolicy"}},
			{Principal: "AWS:new", Permissions: []string{"kms:Verify"}},
		},
		Removed: []evidence.Binding{
			{Principal: "AWS:a", Permissions: []string{"kms:Verify"}},
			{Principal: "AWS:gone", Permissions: []string{"kms:Sign"}},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diff (-want +got):\n%s", diff)
	}
	if same := DiffBindings(cur, cur); !same.Empty() || same.PolicyChanged {
		t.Errorf("diff of a snapshot with itself: %+v", same)
	}
}

func TestVerifyPrevious(t *testing.T) {
	ctx := context.Background()
	signer := goldenSigner(t)
	keys := oneKey{signer.PublicKey()}
	s, err := NewSnapshot(policyOf(t, stmt()), Request{Key: testKey, Time: february})
	if err != nil {
		t.Fatal(err)
	}
	env, err := s.Sign(ctx, signer)
	if err != nil {
		t.Fatal(err)
	}
	prev, err := VerifyPrevious(env, keys, testKey)
	if err != nil {
		t.Fatalf("VerifyPrevious: %v", err)
	}
	if prev.EnvelopeSHA256 != sha256Hex(env) || prev.Snapshot.Time != "2026-02-01T09:00:00Z" {
		t.Errorf("previous %+v", prev)
	}

	// Signed by a key the caller does not trust.
	other, err := evidence.NewSigner(ed25519.NewKeyFromSeed(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyPrevious(env, oneKey{other.PublicKey()}, testKey); !errors.Is(err, evidence.ErrUnknownSigner) {
		t.Errorf("untrusted signer: %v", err)
	}
	// Another key's snapshot, or the same ID with another public key.
	for _, k := range []evidence.KeyRef{
		{ID: "arn:aws:kms:eu-central-1:111122223333:key/mrk-4c1e8b2f9a3d47e6b05f1c2d3e4a5b6c", SPKISHA256: testKey.SPKISHA256},
		{ID: testARN, SPKISHA256: strings.Repeat("2", 64)},
	} {
		if _, err := VerifyPrevious(env, keys, k); !errors.Is(err, ErrMismatch) {
			t.Errorf("previous of another key %v: %v, want ErrMismatch", k, err)
		}
	}
	// A modified payload.
	tampered := []byte(strings.Replace(string(env), `"payload":"`, `"payload":"AA`, 1))
	if _, err := VerifyPrevious(tampered, keys, testKey); err == nil {
		t.Error("tampered envelope verified")
	}
	// Another predicate type.
	ev := &evidence.LifecycleEvent{At: evidence.AtTime(february), Event: evidence.EventPromote, Actor: evidence.Actor{ID: "x"}}
	st, err := evidence.NewStatement(ev, testKey)
	if err != nil {
		t.Fatal(err)
	}
	lc, err := evidence.SignStatement(ctx, st, signer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyPrevious(lc, keys, testKey); !errors.Is(err, ErrMismatch) {
		t.Errorf("lifecycle event as previous: %v", err)
	}
}

// A snapshot too large for one record is refused with a clear error, not cut.
func TestSnapshotTooLarge(t *testing.T) {
	var grants []string
	for i := range 2000 {
		grants = append(grants, `{"KeyId":"`+testARN+`","GrantId":"g`+strconv.Itoa(i)+`","GranteePrincipal":"arn:aws-eusc:iam::210987654321:role/r`+strconv.Itoa(i)+`","Operations":["Sign"]}`)
	}
	p, err := ParseAWS(export(stmt(), `{"Grants":[`+strings.Join(grants, ",")+`]}`))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSnapshot(p, Request{Key: testKey, Time: march})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sign(context.Background(), goldenSigner(t)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Sign: %v, want ErrTooLarge", err)
	}
}
