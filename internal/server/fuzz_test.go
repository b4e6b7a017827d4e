package server_test

import (
	"path"
	"strings"
	"testing"

	"github.com/keytrail/keytrail/internal/server"
)

// FuzzTilePath: an accepted path is canonical, stays under tile/, and has no
// "." or ".." element, so it cannot leave the log directory.
func FuzzTilePath(f *testing.F) {
	for _, s := range []string{"/tile/0/000", "/tile/entries/x001/234.p/7", "/tile/../x", "/tile/0/000.p/1/../../a", "/tile/63/x999/999", "/tile/0/.p/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		rel, ok := server.TilePath(p)
		if !ok {
			return
		}
		if "/"+rel != p || path.Clean(p) != p || !strings.HasPrefix(rel, "tile/") {
			t.Fatalf("TilePath(%q) = %q", p, rel)
		}
		for _, el := range strings.Split(rel, "/") {
			if el == "" || el == "." || el == ".." {
				t.Fatalf("TilePath(%q) = %q has element %q", p, rel, el)
			}
		}
	})
}
