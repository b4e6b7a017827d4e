package scenario

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/keytrail/keytrail/evidence"
)

// Large logs a compliant rotation whose bundle holds entries records (the
// rotation's lifecycle events plus signing receipts by the new key), spread
// evenly through a log of logSize leaves, the rest unrelated filler. Collectors
// sign with ECDSA P-256, as the benchmark floor assumes. Receipts are padded so
// each envelope is about 1 KiB.
func Large(ctx context.Context, entries, logSize int) (*Built, error) {
	return LargeOf(ctx, entries, logSize, LargeReceipts)
}

// What a large bundle holds beside the rotation's lifecycle events.
const (
	// LargeReceipts: signing receipts by the new key, each with its own
	// signature the verifier checks (receipts.signature).
	LargeReceipts = "receipts"
	// LargeSnapshots: key-policy snapshots of the new key, records with no
	// signature of their own beyond the envelope's.
	LargeSnapshots = "snapshots"
)

// LargeOf is Large with the bulk of the bundle of the given kind.
func LargeOf(ctx context.Context, entries, logSize int, kind string) (*Built, error) {
	p, err := NewParties("", "keytrail.example/bench-log")
	if err != nil {
		return nil, err
	}
	b := &Built{Parties: p, Log: NewMemLog(p.Origin, p.LogSigner), Rotation: p.Rotation("rot-bench", Start)}
	steps := p.Steps(b.Rotation)
	if entries < len(steps) || logSize < entries {
		return nil, fmt.Errorf("scenario: need len(steps) <= entries <= logSize")
	}
	var envs [][]byte
	for _, s := range steps {
		e, err := s.Sign(ctx)
		if err != nil {
			return nil, err
		}
		envs = append(envs, e)
	}
	promoted := Start.Add(10 * time.Hour)
	newSPKI, err := x509.MarshalPKIXPublicKey(p.NewKey.Public())
	if err != nil {
		return nil, err
	}
	for i := 0; len(envs) < entries; i++ {
		at := promoted.Add(time.Duration(i+1) * time.Second)
		if kind == LargeSnapshots {
			snap := Snapshot(at, fmt.Sprintf("arn:aws-eusc:kms:eusc-de-east-1:210987654321:key/%08d-4f7d-4e8a-9b3c-5d2f1a0e9c71", i), false)
			st, err := evidence.NewStatement(snap, b.Rotation.NewKey)
			if err != nil {
				return nil, err
			}
			e, err := evidence.SignStatement(ctx, st, p.Collector.Signer)
			if err != nil {
				return nil, err
			}
			envs = append(envs, e)
			continue
		} else if kind != LargeReceipts {
			return nil, fmt.Errorf("scenario: unknown large bundle kind %q", kind)
		}
		digest := sha256.Sum256([]byte(fmt.Sprintf("tx %d", i)))
		sig, err := ecdsa.SignASN1(rand.Reader, p.NewKey.(*ecdsa.PrivateKey), digest[:])
		if err != nil {
			return nil, err
		}
		r := &evidence.SigningReceipt{
			At:     evidence.AtTime(at),
			Scheme: evidence.SchemeP256DER, PublicKey: newSPKI,
			Digest: hex.EncodeToString(digest[:]), Signature: sig,
			Operator: "wallet-signer-eu-1", RequestID: fmt.Sprintf("req-%08d-%0400d", i, 0),
			Chain: "eip155:1", TxHash: "0x" + hex.EncodeToString(digest[:]),
		}
		st, err := evidence.NewStatement(r, b.Rotation.NewKey)
		if err != nil {
			return nil, err
		}
		e, err := evidence.SignStatement(ctx, st, p.Collector.Signer)
		if err != nil {
			return nil, err
		}
		envs = append(envs, e)
	}
	gap := logSize / entries
	for _, e := range envs {
		b.Log.AppendFiller(gap - 1)
		if _, err := b.Log.Append(ctx, e); err != nil {
			return nil, err
		}
	}
	b.Log.AppendFiller(logSize - int(b.Log.Size()))
	b.Records = envs
	return b, b.finish(ctx)
}
