package open_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/ledger/open"
)

func TestParse(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/state")
	for _, tc := range []struct {
		in   string
		want open.Spec
	}{
		{"./keytrail-log", open.Spec{Backend: open.Embedded, Dir: "./keytrail-log"}},
		{"/var/lib/log", open.Spec{Backend: open.Embedded, Dir: "/var/lib/log"}},
		{"file:///var/lib/log", open.Spec{Backend: open.Embedded, Dir: "/var/lib/log"}},
		{"trillian://127.0.0.1:8090/42", open.Spec{Backend: open.Trillian, Addr: "127.0.0.1:8090", TreeID: 42, State: "/state/keytrail/trillian/127.0.0.1_8090/42"}},
		{"trillian://log.example:443/7?state=%2Ftmp%2Fs", open.Spec{Backend: open.Trillian, Addr: "log.example:443", TreeID: 7, State: "/tmp/s"}},
		{"trillian://[::1]:8090/9", open.Spec{Backend: open.Trillian, Addr: "[::1]:8090", TreeID: 9, State: "/state/keytrail/trillian/__1_8090/9"}},
		{"trillian://h:1/2?tls=1", open.Spec{Backend: open.Trillian, Addr: "h:1", TreeID: 2, State: "/state/keytrail/trillian/h_1/2", TLS: true}},
		{"trillian://h:1/2?ca=/etc/ca.pem&state=s", open.Spec{Backend: open.Trillian, Addr: "h:1", TreeID: 2, State: "s", TLS: true, CAFile: "/etc/ca.pem"}},
	} {
		got, err := open.Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		again, err := open.Parse(got.String())
		if err != nil || again != got {
			t.Errorf("Parse(%q.String() = %q) = %+v, %v", tc.in, got.String(), again, err)
		}
	}
	for _, bad := range []string{
		"", "http://x:1/2", "file://", "trillian://host/1", "trillian://host:0/1", "trillian://host:99999/1",
		"trillian://:8090/1", "trillian://h:1/", "trillian://h:1/0", "trillian://h:1/-3", "trillian://h:1/01",
		"trillian://h:1/1/2", "trillian://u@h:1/1", "trillian://h:1/1?x=y", "trillian://h:1/1?state=", "trillian://h:1/1?state=a&state=b",
		"trillian://h:1/1#frag", "trillian://h:1/99999999999999999999",
		"trillian://h:1/1?tls=0", "trillian://h:1/1?tls=", "trillian://h:1/1?ca=", "trillian://h:1/1?tls=1&ca=x", "trillian://h:1/1?ca=a&ca=b",
	} {
		if s, err := open.Parse(bad); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", bad, s)
		}
	}
}

func TestOpenMissingEmbedded(t *testing.T) {
	_, err := open.Open(t.Context(), filepath.Join(t.TempDir(), "none"), open.Options{KeyIDs: evidence.SubjectKeyIDs})
	if !errors.Is(err, open.ErrNoLedger) {
		t.Fatalf("Open(missing dir) = %v, want ErrNoLedger", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"dir", "file:///x", "trillian://127.0.0.1:8090/42", "trillian://h:1/7?state=%2Fs", "trillian://[::1]:1/2", "trillian://h:1/2?ca=c.pem&state=s", "trillian://h:1/2?tls=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := open.Parse(in)
		if err != nil {
			return
		}
		if s.Backend == open.Trillian {
			again, err := open.Parse(s.String())
			if err != nil || again != s {
				t.Fatalf("Parse(%q) = %+v; Parse(String()=%q) = %+v, %v", in, s, s.String(), again, err)
			}
			if s.TreeID <= 0 || strings.Contains(s.Addr, "/") {
				t.Fatalf("Parse(%q) = %+v", in, s)
			}
		}
	})
}
