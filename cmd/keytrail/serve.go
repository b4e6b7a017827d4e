package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/keytrail/keytrail/cmd/internal/cli"
	"github.com/keytrail/keytrail/ingest"
	"github.com/keytrail/keytrail/internal/durable"
	"github.com/keytrail/keytrail/internal/server"
	"github.com/keytrail/keytrail/verify"
)

func serveCommand() *cobra.Command {
	var lf ledgerFlags
	var trustPath, listen, addrFile, tlsCert, tlsKey, clientCA, rotations, bundleSigner, vkeyPath string
	var cpuProfile string
	var maxBody, minBodyRate int64
	var maxClientConns int
	var drain, bodyGrace time.Duration
	c := &cobra.Command{
		Use:   "serve --trust FILE --log-key FILE [--ledger DIR] [--listen ADDR]",
		Short: "Run the ingestion server collectors push records to",
		Long: `Run keytrail's HTTP API (docs/api.md) on the ledger:

  POST /v1/entries                 a DSSE envelope, or {"envelopes": [...]}; answers with each
                                   index and a checkpoint once the entries are durably logged
  GET  /checkpoint, /tile/...      the log as C2SP tlog-tiles (embedded ledger)
  GET  /v1/entries/{index}         one logged envelope
  GET  /v1/proofs/inclusion?index=I[&size=N], /v1/proofs/consistency?from=M[&to=N]
  GET  /v1/bundles/{rotation-id}   a signed rotation bundle (with --rotations and --bundle-signer)
  GET  /healthz, /metrics          health, Prometheus metrics

A submission is logged only if its one DSSE signature is by a collector (or
principal) of the trust file allowed to sign its predicate type: malformed 400,
bad signature 401, unknown or not-allowed signer 403, body over --max-body 413,
overload 503 with Retry-After. The same envelope submitted again gets its first
index. With --client-ca, clients must present a certificate that names the
envelope's signer (its CN, a DNS or URI SAN, or an e-mail address).

Clients without keys cannot starve it (docs/api.md, Limits): a body takes
memory budget only as its bytes arrive, a body slower than --min-body-rate
after --body-grace gets 408, and each client address (an IPv6 /64) may hold at
most --max-client-conns connections; more are closed as soon as accepted.

SIGINT or SIGTERM stops accepting, lets in-flight requests finish (--drain) and
closes the ledger; every acknowledged entry is durable.`,
		Example: `  keytrail log init --origin example.com/custody-log --log-key log.key --ledger ./keytrail-log
  keytrail serve --ledger ./keytrail-log --log-key log.key --trust trust.json --listen 127.0.0.1:8080
  keytrail serve --ledger ./keytrail-log --log-key log.key --trust trust.json --listen :8443 \
      --tls-cert server.pem --tls-key server.key --client-ca collectors-ca.pem \
      --rotations ./rotations --bundle-signer operator.pem`,
		Args: cli.ExactArgs(0, "none"),
		RunE: func(c *cobra.Command, _ []string) error {
			if trustPath == "" {
				return cli.Usage("--trust is required")
			}
			if (tlsCert == "") != (tlsKey == "") {
				return cli.Usage("--tls-cert and --tls-key go together")
			}
			if clientCA != "" && tlsCert == "" {
				return cli.Usage("--client-ca needs --tls-cert and --tls-key")
			}
			if (rotations == "") != (bundleSigner == "") {
				return cli.Usage("--rotations and --bundle-signer go together")
			}
			if maxBody <= 0 {
				return cli.Usage("--max-body must be positive")
			}
			if minBodyRate <= 0 || bodyGrace <= 0 {
				return cli.Usage("--min-body-rate and --body-grace must be positive")
			}
			if maxClientConns < 0 {
				return cli.Usage("--max-client-conns must be 0 (no limit) or more")
			}
			if maxClientConns == 0 {
				maxClientConns = -1 // server.Config: negative is no limit
			}
			tb, err := cli.ReadFile(trustPath, verify.MaxTrustBytes, "trust file")
			if err != nil {
				return err
			}
			trust, err := verify.ParseTrust(tb)
			if err != nil {
				return cli.Input(trustPath, err, "")
			}
			cfg := server.Config{
				Trust:             trust,
				MaxBodyBytes:      maxBody,
				MinBodyRate:       minBodyRate,
				BodyGrace:         bodyGrace,
				MaxConnsPerClient: maxClientConns,
				DrainTimeout:      drain,
				Logger:            slog.New(slog.NewTextHandler(c.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo})),
			}
			if tlsCert != "" {
				certPEM, err := cli.ReadFile(tlsCert, 1<<20, "TLS certificate")
				if err != nil {
					return err
				}
				keyPEM, err := cli.ReadFile(tlsKey, 64<<10, "TLS key")
				if err != nil {
					return err
				}
				cert, err := tls.X509KeyPair(certPEM, keyPEM)
				if err != nil {
					return cli.Input(tlsCert, err, "")
				}
				cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
				if clientCA != "" {
					pem, err := cli.ReadFile(clientCA, 1<<20, "client CA")
					if err != nil {
						return err
					}
					pool := x509.NewCertPool()
					if !pool.AppendCertsFromPEM(pem) {
						return cli.Input(clientCA, errors.New("no PEM certificate"), "")
					}
					cfg.TLS.ClientCAs = pool
					cfg.TLS.ClientAuth = tls.RequireAndVerifyClientCert
				}
			}
			if rotations != "" {
				signer, err := readSigner(bundleSigner)
				if err != nil {
					return err
				}
				if vkeyPath == "" {
					vkeyPath = lf.logKey + ".pub"
				}
				v, err := readNoteVerifier(vkeyPath)
				if err != nil {
					return err
				}
				cfg.Bundles = &server.BundleConfig{RotationsDir: rotations, Signer: signer, LogVerifier: v}
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return cli.Usage("--cpuprofile: %v", err)
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			l, err := lf.open(ctx, true)
			if err != nil {
				return err
			}
			defer func() {
				cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := l.Close(cctx); err != nil {
					fmt.Fprintf(c.ErrOrStderr(), "error: closing the ledger: %v\n", err)
				}
			}()
			cfg.Log = l
			cfg.TilesDir = lf.tilesDir()
			srv, err := server.New(cfg)
			if err != nil {
				return cli.Usage("%v", err)
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return cli.Usage("--listen %s: %v", listen, err)
			}
			scheme := "http"
			if cfg.TLS != nil {
				scheme = "https"
			}
			addr := ln.Addr().String()
			if addrFile != "" {
				if err := durable.WriteFile(addrFile, []byte(addr+"\n"), 0o644); err != nil {
					ln.Close()
					return err
				}
			}
			fmt.Fprintf(c.ErrOrStderr(), "keytrail: serving %s://%s (ledger %s)\n", scheme, addr, lf.ledger)
			if err := srv.Serve(ctx, ln); err != nil {
				return err
			}
			return nil
		},
	}
	lf.register(c, true)
	f := c.Flags()
	f.StringVar(&trustPath, "trust", "", "trust file: the collectors (and principals) that may submit (required)")
	f.StringVar(&listen, "listen", "127.0.0.1:8080", "address to listen on (port 0 picks a free one)")
	f.StringVar(&addrFile, "addr-file", "", "write the address listened on to this file once listening")
	f.Int64Var(&maxBody, "max-body", ingest.DefaultMaxBodyBytes, "largest request body accepted, in bytes (413 beyond)")
	f.Int64Var(&minBodyRate, "min-body-rate", server.DefaultMinBodyRate, "bytes a second a request body must keep up after --body-grace (408 below)")
	f.DurationVar(&bodyGrace, "body-grace", server.DefaultBodyGrace, "time a request body has before --min-body-rate applies")
	f.IntVar(&maxClientConns, "max-client-conns", server.DefaultMaxConnsPerClient, "connections one client address (IPv6: /64) may hold open at once; 0: no limit")
	f.DurationVar(&drain, "drain", server.DefaultDrainTimeout, "on shutdown, how long in-flight requests may take to finish")
	f.StringVar(&tlsCert, "tls-cert", "", "serve HTTPS with this certificate (PEM)")
	f.StringVar(&tlsKey, "tls-key", "", "private key of --tls-cert (PEM)")
	f.StringVar(&clientCA, "client-ca", "", "require client certificates issued by these CAs (PEM); a certificate must name the envelope's signer")
	f.StringVar(&rotations, "rotations", "", "directory of rotation descriptors (JSON) for GET /v1/bundles/{id}")
	f.StringVar(&bundleSigner, "bundle-signer", "", "operator's private key (PKCS #8 PEM) that signs served bundles")
	f.StringVar(&vkeyPath, "log-vkey", "", "the log's verifier key (default: --log-key with .pub appended)")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the server to this file (for benchmarks)")
	f.MarkHidden("cpuprofile")
	return c
}
