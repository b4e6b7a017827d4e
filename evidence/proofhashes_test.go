package evidence

import (
	"bytes"
	"testing"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

var proofSeeds = []string{
	`null`, `[]`, `[null]`, `["AAAA"]`, `["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]`,
	`["AAAA","BBBB"]`, `["AAAA",null,"BBBB"]`, `["AA=="]`, `["AA"]`, `["A"]`, `["AA\nAA"]`, `["AA\u003dA"]`,
	`["-_-_"]`, `["+/+/"]`, `[1]`, `[[]]`, `[{}]`, `{}`, `"AAAA"`, `1`, `true`, `["AAAA",]`, `["AAAA"`,
	`[ "AAAA" , "BBBB" ]`, `["\u0041AAA"]`, "[\"\xff\"]",
}

// TestProofHashesDecodeAsSlice: proofHashes accepts and rejects exactly what
// [][]byte does under readBundle's options, with the same result.
func TestProofHashesDecodeAsSlice(t *testing.T) {
	for _, s := range proofSeeds {
		checkProofHashes(t, []byte(s))
	}
}

func FuzzProofHashes(f *testing.F) {
	for _, s := range proofSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(checkProofHashes)
}

func checkProofHashes(t *testing.T, in []byte) {
	type viaDefault struct {
		P [][]byte `json:"p"`
	}
	type viaMethod struct {
		P proofHashes `json:"p"`
	}
	doc := append(append([]byte(`{"p":`), in...), '}')
	decode := func(v any) error {
		dec := jsontext.NewDecoder(bytes.NewReader(doc), jsontext.AllowDuplicateNames(false), jsontext.AllowInvalidUTF8(false))
		return json.UnmarshalDecode(dec, v, json.RejectUnknownMembers(true), json.MatchCaseInsensitiveNames(false))
	}
	var a viaDefault
	var b viaMethod
	errA, errB := decode(&a), decode(&b)
	if (errA == nil) != (errB == nil) {
		t.Fatalf("%q: [][]byte err %v, proofHashes err %v", in, errA, errB)
	}
	if errA != nil {
		return
	}
	if (a.P == nil) != (b.P == nil) || len(a.P) != len(b.P) {
		t.Fatalf("%q: [][]byte %q, proofHashes %q", in, a.P, b.P)
	}
	for i := range a.P {
		if !bytes.Equal(a.P[i], b.P[i]) || (a.P[i] == nil) != (b.P[i] == nil) {
			t.Fatalf("%q: element %d: [][]byte %q, proofHashes %q", in, i, a.P[i], b.P[i])
		}
	}
}
