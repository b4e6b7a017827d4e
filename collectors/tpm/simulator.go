//go:build cgo

package tpm

import (
	"log/slog"

	"github.com/google/go-tpm-tools/simulator"
	"github.com/google/go-tpm/tpm2/transport"
)

// SimulatorAvailable reports whether this build has the in-process simulator.
const SimulatorAvailable = true

// OpenSimulator starts the go-tpm-tools simulator (the Microsoft reference
// TPM 2.0, in process, with a random seed). Close stops it.
func OpenSimulator(log *slog.Logger) (*TPM, error) {
	s, err := simulator.Get()
	if err != nil {
		return nil, err
	}
	return New(transport.FromReadWriter(s), s, log), nil
}
