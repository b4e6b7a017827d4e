//go:build ignore

// gen writes the golden rotation bundle and its trust material into this
// directory. Everything is derived from scenario.GoldenSeed, so the output is the
// same byte for byte on every run; verify's TestGoldenFiles fails if the
// committed files drift from it.
//
//	go run ./testdata/golden/gen.go
package main

import (
	"context"
	"log"
	"os"
	"path/filepath"

	"github.com/keytrail/keytrail/internal/scenario"
)

func main() {
	files, err := scenario.Golden(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join("testdata", "golden", name), data, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}
