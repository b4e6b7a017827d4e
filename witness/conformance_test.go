package witness_test

import (
	"testing"

	"github.com/keytrail/keytrail/witness/witnesstest"
)

// TestConformance runs the tlog-witness expectations on keytrail's witness
// and on torchwood's litewitness: the same checks, two implementations.
func TestConformance(t *testing.T) {
	for _, tg := range witnesstest.Targets {
		t.Run(tg.Name, func(t *testing.T) {
			witnesstest.Run(t, tg.Start)
		})
	}
}
