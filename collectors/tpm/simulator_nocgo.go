//go:build !cgo

package tpm

import (
	"errors"
	"log/slog"
)

// SimulatorAvailable reports whether this build has the in-process simulator.
const SimulatorAvailable = false

// OpenSimulator fails: the simulator needs cgo.
func OpenSimulator(log *slog.Logger) (*TPM, error) {
	return nil, errors.New("tpm: this keytrail was built without cgo; the in-process TPM simulator needs it")
}
