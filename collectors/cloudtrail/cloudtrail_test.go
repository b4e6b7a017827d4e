package cloudtrail

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/keytrail/keytrail/evidence"
)

const (
	sample = "../../testdata/cloudtrail/210987654321_CloudTrail_eusc-de-east-1_20260302T1000Z_hot1.json"
	hotARN = "arn:aws-eusc:kms:eusc-de-east-1:210987654321:key/7f3c2a10-5b8e-4d1a-9c6f-2e4b8a1d0c93"
)

func testConfig(t testing.TB) (Config, *evidence.Signer) {
	s, err := evidence.NewSigner(ed25519.NewKeyFromSeed(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	key := evidence.KeyRef{ID: hotARN, SPKISHA256: strings.Repeat("ab", 32)}
	return Config{Keys: map[string]evidence.KeyRef{hotARN: key}, Signer: s}, s
}

func TestImportSample(t *testing.T) {
	data, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	cfg, s := testConfig(t)
	out, sum, err := Import(context.Background(), recs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// 12 records: 9 imported, a Sign of another key, a failed Sign, a ListAliases.
	if len(recs) != 12 || sum.Imported != 9 || sum.OtherKey != 1 || sum.FailedCall != 1 || sum.OtherEvent != 1 {
		t.Fatalf("%d records, summary %+v", len(recs), sum)
	}
	want := []string{"create", "policy-change", "grant", "receipt", "enable", "rotate-material", "disable", "schedule-deletion", "cancel-deletion"}
	for i, im := range out {
		env, err := evidence.ParseEnvelope(im.Envelope, evidence.MaxRecordBytes)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := env.Verify(evidence.PayloadType, oneKey{s.PublicKey()}); err != nil {
			t.Fatal(err)
		}
		st, p, err := evidence.ParseStatement(env.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if st.Subject[0].Name != hotARN {
			t.Errorf("%d: subject %s", i, st.Subject[0].Name)
		}
		got := "receipt"
		var src *evidence.ProviderSource
		switch p := p.(type) {
		case *evidence.LifecycleEvent:
			got, src = p.Event, p.Source
			if p.Event == evidence.EventScheduleDeletion && p.Retention != "720h" {
				t.Errorf("retention %q", p.Retention)
			}
			if p.Event == evidence.EventRotateMaterial && p.Actor.ID != "kms.amazonaws.com" {
				t.Errorf("service actor %q", p.Actor.ID)
			}
		case *evidence.SigningReceipt:
			src = p.Source
			if len(p.Signature) != 0 || !strings.Contains(p.Operator, "assumed-role/wallet-signer") {
				t.Errorf("receipt %+v", p)
			}
		}
		if got != want[i] || src == nil || src.Provider != Provider || src.EventID != im.EventID || src.Region != "eusc-de-east-1" {
			t.Errorf("%d: %s %+v, want %s", i, got, src, want[i])
		}
	}

	// The same file gzip-compressed, as CloudTrail delivers it.
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(data)
	w.Close()
	recs2, err := Parse(gz.Bytes())
	if err != nil || len(recs2) != len(recs) {
		t.Fatalf("gzip: %d records, %v", len(recs2), err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"not json", "hello"},
		{"no Records", `{"records": []}`},
		{"duplicate member", `{"Records": [{"eventName": "Sign", "eventName": "DisableKey"}]}`},
		{"Records not an array", `{"Records": {}}`},
		{"bad gzip", "\x1f\x8bnot gzip"},
	} {
		if _, err := Parse([]byte(tc.in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// TestGzipBomb: a small file that inflates past MaxDecompressedBytes is
// refused after reading at most one byte more than the limit (ATTACKS.md 29).
func TestGzipBomb(t *testing.T) {
	var gz bytes.Buffer
	w, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for range MaxDecompressedBytes>>20 + 1 {
		w.Write(zeros)
	}
	w.Close()
	if gz.Len() > 1<<20 {
		t.Fatalf("bomb is %d bytes", gz.Len())
	}
	if _, err := Parse(gz.Bytes()); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("gzip bomb: %v", err)
	}
}

func TestImportErrors(t *testing.T) {
	cfg, _ := testConfig(t)
	const base = `{"Records": [{"eventSource": "kms.amazonaws.com", "eventName": "DisableKey", "eventTime": "2026-03-02T19:00:00Z",
		"eventID": "e1", "requestID": "r1", "awsRegion": "eusc-de-east-1", "userIdentity": {"arn": "arn:aws-eusc:iam::210987654321:role/ops"},
		"resources": [{"type": "AWS::KMS::Key", "ARN": "` + hotARN + `"}]}]}`
	rec := func(old, new string) []Record {
		in := strings.Replace(base, old, new, 1)
		if in == base && old != "" {
			t.Fatalf("%q not in the base record", old)
		}
		recs, err := Parse([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		return recs
	}
	if out, _, err := Import(context.Background(), rec("", ""), cfg); err != nil || len(out) != 1 {
		t.Fatalf("good record: %v", err)
	}
	for name, r := range map[string][]Record{
		"bad time":        rec(`"2026-03-02T19:00:00Z"`, `"yesterday"`),
		"no actor":        rec(`{"arn": "arn:aws-eusc:iam::210987654321:role/ops"}`, `{}`),
		"no event id":     rec(`"eventID": "e1"`, `"eventID": ""`),
		"two keys":        rec(`[{"type": "AWS::KMS::Key", "ARN": "`+hotARN+`"}]`, `[{"type": "AWS::KMS::Key", "ARN": "arn:a"}, {"type": "AWS::KMS::Key", "ARN": "arn:b"}]`),
		"no key resource": rec(`[{"type": "AWS::KMS::Key", "ARN": "`+hotARN+`"}]`, `[]`),
	} {
		if _, _, err := Import(context.Background(), r, cfg); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The duplicate-member case: rejected when parsed.
	if _, err := Parse([]byte(`{"Records": [{"eventTime": "2026-03-02T19:00:00Z", "eventTime": "2026-01-01T00:00:00Z"}]}`)); !errors.Is(err, ErrMalformed) {
		t.Errorf("duplicate eventTime: %v", err)
	}
	// A schedule-deletion window outside AWS's 7 to 30 days.
	recs, _ := Parse([]byte(`{"Records": [{"eventSource": "kms.amazonaws.com", "eventName": "ScheduleKeyDeletion", "eventTime": "2026-03-02T19:00:00Z",
		"eventID": "e1", "userIdentity": {"arn": "a"}, "requestParameters": {"pendingWindowInDays": 3},
		"resources": [{"type": "AWS::KMS::Key", "ARN": "` + hotARN + `"}]}]}`))
	if _, _, err := Import(context.Background(), recs, cfg); !errors.Is(err, ErrMalformed) {
		t.Errorf("3-day window: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	data, err := os.ReadFile(sample)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(`{"Records": []}`))
	f.Add([]byte(`{"Records": [{"eventSource": "kms.amazonaws.com", "eventName": "Sign"}]}`))
	cfg, _ := testConfig(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := Parse(b)
		if err != nil {
			return
		}
		out, _, err := Import(context.Background(), recs, cfg)
		if err != nil {
			return
		}
		for _, im := range out {
			env, err := evidence.ParseEnvelope(im.Envelope, evidence.MaxRecordBytes)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := evidence.ParseStatement(env.Payload); err != nil {
				t.Fatalf("imported record does not parse: %v", err)
			}
		}
	})
}

type oneKey struct{ k *evidence.PublicKey }

func (o oneKey) Key(d string) *evidence.PublicKey {
	if d == o.k.Digest {
		return o.k
	}
	return nil
}
func (o oneKey) Keys() []*evidence.PublicKey { return []*evidence.PublicKey{o.k} }
