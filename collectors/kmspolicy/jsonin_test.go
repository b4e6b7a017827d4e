package kmspolicy

import (
	"errors"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// RFC 8785 test vectors: section 3.2.2 (values) and 3.2.3 (sorting by UTF-16
// code units), as published in the RFC.
func TestCanonicalRFC8785(t *testing.T) {
	tests := []struct{ in, want string }{
		{
			in:   `{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/", "literals": [null, true, false]}`,
			want: `{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`,
		},
		{
			in:   `{"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh", "1": "One", "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control", "\u00f6": "Latin Small Letter O With Diaeresis"}`,
			want: "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"\u00f6\":\"Latin Small Letter O With Diaeresis\",\"\u20ac\":\"Euro Sign\",\"\U0001F600\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}",
		},
	}
	for _, tt := range tests {
		got, err := canonical("f", "", jsontext.Value(tt.in))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tt.want {
			t.Errorf("canonical(%s)\n got %s\nwant %s", tt.in, got, tt.want)
		}
	}
	if _, err := canonical("f", "", jsontext.Value(`{"a":1,"a":2}`)); !errors.Is(err, ErrMalformed) {
		t.Errorf("duplicate names canonicalised: %v", err)
	}
}

func TestScan(t *testing.T) {
	ok := []string{`{}`, `[]`, `"x"`, ` {"a":{"a":1}} `, `{"a":1,"b":[{"a":1},{"a":2}]}`, `{"K":1,"k2":1}`}
	for _, s := range ok {
		if err := scan("f", []byte(s), 1<<10); err != nil {
			t.Errorf("scan(%s): %v", s, err)
		}
	}
	bad := map[string]error{
		``:                                    ErrMalformed,
		`{"a":1,"a":1}`:                       ErrMalformed,
		`{"a":1,"A":1}`:                       ErrMalformed,
		`{"K":1,"\u212a":1}`:                  ErrMalformed, // KELVIN SIGN folds to k
		`{"ß":1,"ẞ":1}`:                       ErrMalformed,
		`{} {}`:                               ErrMalformed,
		`{}x`:                                 ErrMalformed,
		`[1,]`:                                ErrMalformed,
		strings.Repeat("[", MaxDepth+1):       ErrTooLarge,
		`"` + strings.Repeat("a", 2000) + `"`: ErrTooLarge,
	}
	for s, want := range bad {
		if err := scan("f", []byte(s), 1<<10); !errors.Is(err, want) {
			t.Errorf("scan(%.40q) = %v, want %v", s, err, want)
		}
	}
}
