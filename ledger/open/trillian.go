package open

import (
	"context"
	"errors"

	"github.com/keytrail/keytrail/ledger"
)

func openTrillian(ctx context.Context, s Spec, opts Options) (ledger.Log, error) {
	return nil, errors.New(s.String() + ": the Trillian backend is not built yet")
}
