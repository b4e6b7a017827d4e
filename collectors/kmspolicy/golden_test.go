package kmspolicy

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/strictjson"
)

// The golden files in testdata/kmspolicy/golden are produced by this test:
//
//	go test ./collectors/kmspolicy -run TestGolden -update
//
// They are deterministic: fixed inputs, fixed times, an Ed25519 collector key
// derived from a fixed seed (Ed25519 signatures are deterministic).
var update = flag.Bool("update", false, "rewrite the golden files")

const testdataDir = "../../testdata/kmspolicy"

func readFile(t testing.TB, rel string) File {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdataDir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return File{Name: rel, Data: b}
}

func goldenSigner(t testing.TB) *evidence.Signer {
	t.Helper()
	seed := sha256.Sum256([]byte("keytrail kmspolicy golden collector"))
	s, err := evidence.NewSigner(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type oneKey struct{ k *evidence.PublicKey }

func (s oneKey) Key(d string) *evidence.PublicKey {
	if d == s.k.Digest {
		return s.k
	}
	return nil
}
func (s oneKey) Keys() []*evidence.PublicKey { return []*evidence.PublicKey{s.k} }

func awsExport(t testing.TB, dir, policyFile string) AWSExport {
	return AWSExport{
		DescribeKey: readFile(t, dir+"/describe-key.json"),
		KeyPolicy:   readFile(t, dir+"/"+policyFile),
		Grants:      readFile(t, dir+"/list-grants.json"),
	}
}

func gcpExport(t testing.TB) GCPExport {
	return GCPExport{
		Describe:  readFile(t, "gcp/hot-signer/describe.json"),
		IAMPolicy: readFile(t, "gcp/hot-signer/get-iam-policy.json"),
	}
}

var (
	february = time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC)
	march    = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
)

const gcpVersion = "projects/custody-prod-eu/locations/europe-west3/keyRings/custody/cryptoKeys/hot-signer/cryptoKeyVersions/1"

// goldenSnapshots builds every sample's snapshot, the way an operator's
// collector run would: the February snapshot of hot-1 is signed, then
// authenticated again as the previous snapshot of the March one.
func goldenSnapshots(t testing.TB) (names []string, snaps map[string]*Snapshot, envelopes map[string][]byte) {
	t.Helper()
	ctx := context.Background()
	signer := goldenSigner(t)
	snaps, envelopes = map[string]*Snapshot{}, map[string][]byte{}
	add := func(name string, s *Snapshot, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		env, err := s.Sign(ctx, signer)
		if err != nil {
			t.Fatalf("%s: sign: %v", name, err)
		}
		names = append(names, name)
		snaps[name], envelopes[name] = s, env
	}

	hot1, err := KeyRefFromAWSPublicKey(readFile(t, "aws/hot-1-eusc/get-public-key.json"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := CollectAWS(awsExport(t, "aws/hot-1-eusc/previous", "get-key-policy.json"), Request{Key: hot1, Time: february})
	add("aws-hot-1-eusc-2026-02", s, err)
	prev, err := VerifyPrevious(envelopes["aws-hot-1-eusc-2026-02"], oneKey{signer.PublicKey()}, hot1)
	if err != nil {
		t.Fatal(err)
	}
	s, err = CollectAWS(awsExport(t, "aws/hot-1-eusc", "get-key-policy.json"), Request{Key: hot1, Time: march, Previous: prev})
	add("aws-hot-1-eusc-2026-03", s, err)

	treasury, err := KeyRefFromAWSPublicKey(readFile(t, "aws/treasury-mrk/get-public-key.json"))
	if err != nil {
		t.Fatal(err)
	}
	s, err = CollectAWS(awsExport(t, "aws/treasury-mrk", "key-policy.json"), Request{Key: treasury, Time: march})
	add("aws-treasury-mrk-2026-03", s, err)

	gcpKey, err := KeyRefFromPEM(gcpVersion, readFile(t, "gcp/hot-signer/public-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	s, err = CollectGCP(gcpExport(t), Request{Key: gcpKey, Time: march})
	add("gcp-hot-signer-2026-03", s, err)
	return names, snaps, envelopes
}

func TestGolden(t *testing.T) {
	names, snaps, envelopes := goldenSnapshots(t)
	for _, name := range names {
		s := snaps[name]
		snapJSON, err := strictjson.MarshalIndent(s)
		if err != nil {
			t.Fatal(err)
		}
		duties, err := AdminSigners(s.Predicate.Provider, s.Predicate.Bindings, s.Predicate.Denies)
		if err != nil {
			t.Fatal(err)
		}
		dutiesJSON, err := strictjson.MarshalIndent(duties)
		if err != nil {
			t.Fatal(err)
		}
		files := map[string][]byte{
			name + ".snapshot.json": append(snapJSON, '\n'),
			name + ".envelope.json": append(envelopes[name], '\n'),
			name + ".duties.json":   append(dutiesJSON, '\n'),
		}
		for file, want := range files {
			path := filepath.Join(testdataDir, "golden", file)
			if *update {
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from what the collector produces now; if the change is intended, run go test -run TestGolden -update and review the diff", path)
			}
		}
	}
}
