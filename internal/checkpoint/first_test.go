package checkpoint

import (
	"errors"
	"testing"
)

func TestFirstSignature(t *testing.T) {
	body := "example.com/log\n3\nKgEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
	for _, tc := range []struct {
		name, in, want string
		err            error
	}{
		{"one", body + "\n\u2014 log AAAA\n", body + "\n\u2014 log AAAA\n", nil},
		{"cosigned", body + "\n\u2014 log AAAA\n\u2014 w1 BBBB\n\u2014 w2 CCCC\n", body + "\n\u2014 log AAAA\n", nil},
		{"no signature line", body + "\n", "", ErrSyntax},
		{"no body", "\n\u2014 log AAAA\n", "", ErrSyntax},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FirstSignature([]byte(tc.in))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("FirstSignature = %q, %v; want %v", got, err, tc.err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("FirstSignature = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
