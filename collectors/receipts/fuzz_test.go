package receipts_test

import (
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keytrail/keytrail/collectors/receipts"
	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/strictjson"
)

// FuzzReader feeds arbitrary input to the JSONL reader. It never panics or
// reads past its limits, every error is a *LineError with a line number, and
// every receipt it accepts reads back the same from its canonical line: the
// values a statement is built from have one meaning.
func FuzzReader(f *testing.F) {
	names, _ := filepath.Glob(filepath.Join(sampleDir, "*.jsonl"))
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		first, _, _ := strings.Cut(string(b), "\n")
		f.Add([]byte(first))
		f.Add([]byte(first + "\r\n\n" + first))
		f.Add([]byte(strings.Replace(first, `"keyId"`, `"keyId":"x","keyId"`, 1)))
	}
	f.Add([]byte("{}\n"))
	f.Add([]byte("\n"))
	lim := receipts.Limits{MaxLineBytes: 4096, MaxLines: 32}
	f.Fuzz(func(t *testing.T, in []byte) {
		rd := receipts.NewReader(strings.NewReader(string(in)), lim)
		for n := 0; ; n++ {
			r, err := rd.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				var le *receipts.LineError
				if !errors.As(err, &le) || le.Line < 1 {
					t.Fatalf("error %v is not a *LineError with a line", err)
				}
				return
			}
			if n >= lim.MaxLines || r.Line < n+1 {
				t.Fatalf("receipt %d on line %d (limit %d)", n+1, r.Line, lim.MaxLines)
			}
			p := r.Predicate
			canon, err := strictjson.Marshal(receipts.Line{
				KeyID: r.KeyID, Digest: p.Digest, Signature: hex.EncodeToString(p.Signature), Scheme: string(r.Scheme),
				Operator: p.Operator, RequestID: p.RequestID, Chain: p.Chain, TxHash: p.TxHash, Time: evidence.FormatTime(p.RecordTime()),
			})
			if err != nil {
				t.Fatal(err)
			}
			back, err := receipts.NewReader(strings.NewReader(string(canon)), lim).Next()
			if err != nil {
				t.Fatalf("the canonical form %s of an accepted line fails: %v", canon, err)
			}
			back.Line = r.Line
			if diff := cmp.Diff(r, back, cmpopts.IgnoreUnexported(evidence.At{})); diff != "" || !p.RecordTime().Equal(back.Predicate.RecordTime()) {
				t.Fatalf("read back differently (-first +again):\n%s", diff)
			}
		}
	})
}
