package open

import (
	"context"

	"github.com/keytrail/keytrail/ledger"
	"github.com/keytrail/keytrail/ledger/trillian"
)

func openTrillian(ctx context.Context, s Spec, opts Options) (ledger.Log, error) {
	return trillian.Open(ctx, trillian.Config{
		Addr:     s.Addr,
		TreeID:   s.TreeID,
		StateDir: s.State,
		Signer:   opts.Signer,
		Verifier: opts.Verifier,
		KeyIDs:   opts.KeyIDs,
		Logger:   opts.Logger,
	})
}
