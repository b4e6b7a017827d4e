package verify

import (
	"strings"
	"testing"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/strictjson"
)

const prefilterKey = "kms:eu-central-1/custody/hot-1/v2"

// prefilterStatement is a real statement about prefilterKey, as JSON.
func prefilterStatement(t testing.TB) string {
	t.Helper()
	st, err := evidence.NewStatement(&evidence.LifecycleEvent{At: evidence.At{Time: "2026-03-01T00:00:00Z"}, Event: evidence.EventCreate, Actor: evidence.Actor{ID: "svc"}},
		evidence.KeyRef{ID: prefilterKey, SPKISHA256: strings.Repeat("ab", 32)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := strictjson.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ATTACKS.md 39: the freshness gate's pre-filter never skips a statement the
// parser says names the key, however its JSON writes the name.
func TestFreshnessPrefilter(t *testing.T) {
	plain := prefilterStatement(t)
	quoted := `"` + prefilterKey + `"`
	for _, tc := range []struct {
		name    string
		payload string
		named   bool // whether ParseStatement names the key
		may     bool
	}{
		{"plain", plain, true, true},
		{"\\u escapes", strings.Replace(plain, quoted, `"kms\u003aeu-central-1\/custody/hot-1/v2"`, 1), true, true},
		{"whitespace", strings.Replace(strings.Replace(plain, `"name":`, " \n\t\"name\" : ", 1), `{"_type"`, `{ "_type"`, 1), true, true},
		{"another key", strings.Replace(plain, quoted, `"kms:eu-central-1/custody/hot-1/v3"`, 1), false, false},
		{"a prefix of the key", strings.Replace(plain, quoted, `"kms:eu-central-1/custody/hot-1/v"`, 1), false, false},
		// Any backslash goes to the parser, even one that names nothing.
		{"another key, escaped", strings.Replace(plain, quoted, `"kms\u003aeu-central-1/custody/hot-1/v3"`, 1), false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, _, err := evidence.ParseStatement([]byte(tc.payload))
			if err != nil {
				t.Fatalf("ParseStatement: %v", err)
			}
			named := st.Subject[0].Name == prefilterKey
			if named != tc.named {
				t.Fatalf("the parser names %q, want named=%v", st.Subject[0].Name, tc.named)
			}
			if got := mayName([]byte(tc.payload), []string{"kms:other/k", prefilterKey}); got != tc.may {
				t.Errorf("mayName = %v, want %v", got, tc.may)
			}
		})
	}
}

// FuzzFreshnessPrefilter: whenever evidence.ParseStatement names a key,
// mayName does not skip the payload for it (the soundness mayName's doc
// comment proves).
func FuzzFreshnessPrefilter(f *testing.F) {
	plain := prefilterStatement(f)
	quoted := `"` + prefilterKey + `"`
	f.Add([]byte(plain))
	f.Add([]byte(strings.Replace(plain, quoted, `"kms\u003aeu-central-1\/custody/hot-1/v2"`, 1)))
	f.Add([]byte(strings.Replace(plain, quoted, `"\u006bms:eu-central-1/custody/hot-1/v2"`, 1)))
	f.Add([]byte(strings.Replace(plain, `"name":`, ` "name" :`, 1)))
	f.Fuzz(func(t *testing.T, payload []byte) {
		st, _, err := evidence.ParseStatement(payload)
		if err != nil {
			return
		}
		for _, k := range st.Keys() {
			if !mayName(payload, []string{k.ID}) {
				t.Fatalf("the parser names %q but the pre-filter skips %q", k.ID, payload)
			}
		}
	})
}
