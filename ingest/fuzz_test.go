package ingest_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/keytrail/keytrail/ingest"
)

// FuzzParseSubmission: any body either fails or yields 1 to MaxBatchEntries
// envelopes; a batch's envelopes are exactly its elements (re-encoding them
// as a batch and parsing again gives the same JSON values).
func FuzzParseSubmission(f *testing.F) {
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"sig":"AA=="}]}`))
	f.Add([]byte(`{"envelopes":[{"payloadType":"x","payload":"","signatures":[{"sig":"AA=="}]},{"a":1}]}`))
	f.Add([]byte(`{"envelopes":[]}`))
	f.Add([]byte(`{"envelopes":[1],"envelopes":[2]}`))
	f.Add([]byte(` [ ] `))
	f.Fuzz(func(t *testing.T, body []byte) {
		envs, err := ingest.ParseSubmission(body, 1<<20)
		if err != nil {
			return
		}
		if len(envs) == 0 || len(envs) > ingest.MaxBatchEntries {
			t.Fatalf("%d envelopes", len(envs))
		}
		if len(envs) == 1 && bytes.Equal(envs[0], body) {
			return // a single envelope: passed through untouched
		}
		again, err := ingest.MarshalBatch(envs)
		if err != nil {
			t.Fatalf("re-encoding a parsed batch: %v", err)
		}
		envs2, err := ingest.ParseSubmission(again, 1<<20)
		if err != nil || len(envs2) != len(envs) {
			t.Fatalf("re-parsing a batch: %v", err)
		}
		for i := range envs {
			var a, b bytes.Buffer
			if json.Compact(&a, envs[i]) != nil || json.Compact(&b, envs2[i]) != nil || !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Fatalf("envelope %d changed on re-encoding", i)
			}
		}
	})
}

// FuzzCanonical: canonical bytes are a fixed point.
func FuzzCanonical(f *testing.F) {
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"keyid":"k","sig":"AA=="}]}`))
	f.Add([]byte(`{ "signatures":[{"sig":"AA=="}], "payload":"", "payloadType":"t" }`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := ingest.Canonical(raw)
		if err != nil {
			return
		}
		c2, err := ingest.Canonical(c)
		if err != nil || !bytes.Equal(c, c2) {
			t.Fatalf("canonical form is not stable: %v", err)
		}
	})
}

// FuzzParseSpoolName: only the canonical name of a number parses, and it
// round-trips.
func FuzzParseSpoolName(f *testing.F) {
	f.Add("00000000000000000001.dsse")
	f.Add("18446744073709551615.dsse")
	f.Add("99999999999999999999.dsse")
	f.Add("+0000000000000000001.dsse")
	f.Fuzz(func(t *testing.T, name string) {
		n, ok := ingest.ParseSpoolName(name)
		if !ok {
			return
		}
		if want := fmtSpool(n); want != name {
			t.Fatalf("%q parsed as %d, whose name is %q", name, n, want)
		}
	})
}
