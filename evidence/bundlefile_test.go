package evidence_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/scenario"
)

func genuine(t testing.TB) (*scenario.Built, evidence.KeySet) {
	t.Helper()
	b, err := scenario.Build(context.Background(), "bundlefile", nil)
	if err != nil {
		t.Fatal(err)
	}
	return b, oneKey{b.Operator.Signer.PublicKey()}
}

func TestOpenBundleRoundTrip(t *testing.T) {
	b, keys := genuine(t)
	got, signers, err := evidence.OpenBundle(b.BundleBytes, keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(signers) != 1 || signers[0].Digest != b.Operator.Signer.Digest {
		t.Errorf("signers %v", signers)
	}
	want, _ := evidence.MarshalBundle(b.Bundle)
	have, _ := evidence.MarshalBundle(got)
	if string(want) != string(have) {
		t.Errorf("round trip differs:\n%s\n%s", want, have)
	}
}

// TestReadBundleRefusesEntriesFirst (ATTACKS.md 44): a genuine bundle whose
// entries come before its manifest is refused as not a bundle file: the
// entries would have to be held, unauthenticated, until the manifest came.
func TestReadBundleRefusesEntriesFirst(t *testing.T) {
	b, keys := genuine(t)
	s := string(b.BundleBytes)
	i, j := strings.Index(s, `"manifest":`), strings.Index(s, `,"entries":`)
	reordered := `{"mediaType":"` + evidence.BundleMediaType + `",` + s[j+1:len(s)-1] + `,` + s[i:j] + `}`
	_, _, err := evidence.OpenBundle([]byte(reordered), keys)
	if !errors.Is(err, evidence.ErrNotBundle) || !strings.Contains(err.Error(), "manifest comes first") {
		t.Fatalf("entries first: %v, want ErrNotBundle saying the manifest comes first", err)
	}
}

func TestReadBundleRejects(t *testing.T) {
	b, keys := genuine(t)
	s := string(b.BundleBytes)
	firstEntry := s[strings.Index(s, `"entries":[`)+len(`"entries":[`):]
	firstEntry = firstEntry[:strings.Index(firstEntry, `},{`)+1]
	other := *b.Bundle
	other.Entries = append([]evidence.Entry{}, b.Bundle.Entries...)
	other.Entries[0].Envelope = b.Bundle.Entries[1].Envelope
	swapped, _ := evidence.SignBundle(context.Background(), b.Bundle, b.Operator.Signer)
	swappedEntries, _ := evidence.AssembleBundle([]byte(manifestOf(t, swapped)), &other)
	for _, tt := range []struct {
		name, in string
		err      error
	}{
		{"not JSON", "nope", evidence.ErrNotBundle},
		{"an array", "[]", evidence.ErrNotBundle},
		{"no manifest", `{"mediaType":"` + evidence.BundleMediaType + `","entries":[]}`, evidence.ErrNotBundle},
		{"wrong media type", strings.Replace(s, "bundle.v1", "bundle.v2", 1), evidence.ErrNotBundle},
		{"duplicate member", strings.TrimSuffix(s, "}") + `,"entries":[]}`, evidence.ErrBundleFormat},
		{"case-variant member", strings.Replace(s, `"manifest":`, `"Manifest":`, 1), evidence.ErrNotBundle},
		{"unknown member", strings.Replace(s, `{"mediaType"`, `{"note":"x","mediaType"`, 1), evidence.ErrNotBundle},
		{"trailing data", s + "{}", evidence.ErrNotBundle},
		{"an entry too many", strings.TrimSuffix(s, "]}") + "," + firstEntry + "]}", evidence.ErrBundleFormat},
		{"an entry too few", s[:strings.LastIndex(s, `,{"envelope"`)] + "]}", evidence.ErrBundleFormat},
		{"an entry inserted", strings.Replace(s, `"entries":[`, `"entries":[`+firstEntry+`,`, 1), evidence.ErrLeafHash},
		{"unknown member in an entry", strings.Replace(s, `"inclusionProof":`, `"leafHash":"","inclusionProof":`, 1), evidence.ErrBundleFormat},
		{"envelope not under its leaf hash", string(swappedEntries), evidence.ErrLeafHash},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := evidence.OpenBundle([]byte(tt.in), keys)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
		})
	}
}

func manifestOf(t testing.TB, raw []byte) string {
	t.Helper()
	s := string(raw)
	i, j := strings.Index(s, `"manifest":`), strings.Index(s, `,"entries":`)
	return s[i+len(`"manifest":`) : j]
}

// FuzzReadBundle: ReadBundle never panics, authenticates before it hands out
// the manifest, and never hands out more entries than the manifest lists.
func FuzzReadBundle(f *testing.F) {
	b, _ := genuine(f)
	f.Add(b.BundleBytes)
	f.Add([]byte(`{"mediaType":"application/vnd.keytrail.bundle.v1+json","manifest":{"payloadType":"x","payload":"e30=","signatures":[{"sig":"AA=="}]},"entries":[]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		authenticated := false
		var m *evidence.Manifest
		n := 0
		err := evidence.ReadBundle(data, evidence.BundleReader{
			Authenticate: func(*evidence.Envelope) error { authenticated = true; return nil },
			Manifest: func(mm *evidence.Manifest) error {
				if !authenticated {
					t.Fatal("manifest before authentication")
				}
				m = mm
				return nil
			},
			Entry: func(i int, e evidence.Entry) error {
				if m == nil || i != n || i >= len(m.Entries) || e.Index != m.Entries[i].Index {
					t.Fatalf("entry %d out of order or beyond the manifest", i)
				}
				n++
				return nil
			},
		})
		if err == nil && (m == nil || n != len(m.Entries)) {
			t.Fatalf("accepted with %d of the manifest's entries", n)
		}
	})
}
