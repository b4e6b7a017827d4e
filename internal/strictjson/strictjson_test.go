package strictjson

import (
	"errors"
	"strings"
	"testing"
)

type doc struct {
	Name  string            `json:"name"`
	Items []string          `json:"items"`
	Tags  map[string]string `json:"tags,omitempty"`
}

func TestUnmarshalRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"duplicate key", `{"name":"a","name":"b","items":[]}`},
		{"case variant key", `{"Name":"a","items":[]}`},
		{"case variant duplicate", `{"name":"a","NAME":"b","items":[]}`},
		{"unknown field", `{"name":"a","items":[],"extra":1}`},
		{"duplicate map key", `{"name":"a","items":[],"tags":{"k":"1","k":"2"}}`},
		{"trailing data", `{"name":"a","items":[]} {}`},
		{"invalid utf8", "{\"name\":\"\xff\",\"items\":[]}"},
		{"too deep", strings.Repeat(`{"tags":`, 40) + `{}` + strings.Repeat(`}`, 40)},
		{"wrong type", `{"name":1,"items":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d doc
			if err := Unmarshal([]byte(tt.in), &d, 1<<20); err == nil {
				t.Fatalf("Unmarshal(%s) = nil error, want rejection", tt.in)
			}
		})
	}
}

func TestUnmarshalSizeLimit(t *testing.T) {
	var d doc
	err := Unmarshal([]byte(`{"name":"abcdefgh","items":[]}`), &d, 10)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func TestRoundTrip(t *testing.T) {
	in := doc{Name: "x", Items: []string{"a", "b"}, Tags: map[string]string{"z": "1", "a": "2"}}
	b, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"name":"x","items":["a","b"],"tags":{"a":"2","z":"1"}}`; got != want {
		t.Fatalf("Marshal = %s, want %s", got, want)
	}
	var out doc
	if err := Unmarshal(b, &out, 1<<20); err != nil {
		t.Fatal(err)
	}
	if out.Name != in.Name || len(out.Items) != 2 || out.Tags["a"] != "2" {
		t.Fatalf("round trip = %+v", out)
	}
}
