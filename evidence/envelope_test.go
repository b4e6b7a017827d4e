package evidence

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"
)

func TestPAEReaderMatchesDSSE(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 100, 1 << 20, 1<<20 + 7} {
		payload := make([]byte, n)
		for i := range payload {
			payload[i] = byte(r.Uint32())
		}
		for _, typ := range []string{"", BundleMediaType, PayloadType} {
			got, err := io.ReadAll(paeReader(typ, payload))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, ssldsse.PAE(typ, payload)) {
				t.Errorf("paeReader(%q, %d bytes) differs from the DSSE PAE", typ, n)
			}
		}
	}
}
