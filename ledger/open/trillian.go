package open

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/keytrail/keytrail/ledger"
	"github.com/keytrail/keytrail/ledger/trillian"
)

func openTrillian(ctx context.Context, s Spec, opts Options) (ledger.Log, error) {
	dial, err := DialOptions(s)
	if err != nil {
		return nil, err
	}
	return trillian.Open(ctx, trillian.Config{
		Addr:        s.Addr,
		DialOptions: dial,
		TreeID:      s.TreeID,
		StateDir:    s.State,
		Signer:      opts.Signer,
		Verifier:    opts.Verifier,
		KeyIDs:      opts.KeyIDs,
		Logger:      opts.Logger,

		Witnesses:       opts.Witnesses,
		WitnessInterval: opts.WitnessInterval,
	})
}

// DialOptions returns the gRPC dial options for a Trillian ledger: TLS if the
// spec asks for it, nil (plaintext) otherwise.
func DialOptions(s Spec) ([]grpc.DialOption, error) {
	if !s.TLS {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ledger ca=%s: %w", s.CAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ledger ca=%s: %w", s.CAFile, errors.New("no PEM certificate in it"))
		}
		cfg.RootCAs = pool
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(cfg))}, nil
}
