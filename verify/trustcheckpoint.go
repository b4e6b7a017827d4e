package verify

import (
	"errors"
	"fmt"

	"github.com/keytrail/keytrail/internal/checkpoint"
)

// OpenCheckpoint verifies a signed checkpoint as the check
// checkpoint.signature does: signed by a trusted log's key for its origin,
// with that log's witness quorum of trusted cosignatures. Tools use it to
// choose a checkpoint a bundle may carry (keytrail bundle build --trust).
func (t *Trust) OpenCheckpoint(signed []byte) (checkpoint.Checkpoint, error) {
	var errs []error
	for _, l := range t.logs {
		cp, err := l.open(signed)
		if err == nil {
			return cp, nil
		}
		errs = append(errs, fmt.Errorf("log %s: %w", l.origin, err))
	}
	return checkpoint.Checkpoint{}, errors.Join(errs...)
}
