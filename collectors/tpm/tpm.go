// Package tpm collects TPM 2.0 evidence about keys with go-tpm's tpm2
// package: it creates an attestation key (AK) and signing keys inside a TPM,
// certifies a key with TPM2_Certify and quotes PCRs with TPM2_Quote, each with
// a fresh verifier-chosen nonce, and returns evidence.TPMAttestation records
// that attest/tpm verifies. It talks to any TPM: the go-tpm-tools simulator in
// process (simulator.go, cgo), swtpm or another TPM over a TCP socket (Dial),
// or a device such as /dev/tpmrm0 (OpenDevice).
//
// It also imports what tpm2-tools writes (Import): tpm2_certify -o/-s,
// tpm2_quote -m/-s, the -u public areas and tpm2_pcrread -o values.
package tpm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"

	attesttpm "github.com/keytrail/keytrail/attest/tpm"
	"github.com/keytrail/keytrail/evidence"
)

// TPM is a connection to a TPM. Its methods are safe for concurrent use (they
// take turns).
type TPM struct {
	mu  sync.Mutex
	t   transport.TPM
	c   io.Closer
	log *slog.Logger
}

// New wraps a transport; closer, if not nil, is closed by Close.
func New(t transport.TPM, closer io.Closer, log *slog.Logger) *TPM {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &TPM{t: t, c: closer, log: log}
}

// Close closes the connection.
func (t *TPM) Close() error {
	if t.c == nil {
		return nil
	}
	return t.c.Close()
}

// OpenDevice opens a TPM character device such as /dev/tpmrm0.
func OpenDevice(path string, log *slog.Logger) (*TPM, error) {
	d, err := linuxtpm.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tpm: open %s: %w", path, err)
	}
	return New(d, d, log), nil
}

// Dial connects to a TPM that speaks raw TPM 2.0 commands over TCP, such as
// swtpm socket --server type=tcp,port=N.
func Dial(ctx context.Context, addr string, log *slog.Logger) (*TPM, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tpm: dial %s: %w", addr, err)
	}
	return New(&stream{c: c}, c, log), nil
}

// stream frames TPM commands on a byte stream: a response is read whole, by
// the size in its header.
type stream struct{ c net.Conn }

// MaxResponse bounds a TPM response.
const MaxResponse = 64 << 10

func (s *stream) Send(cmd []byte) ([]byte, error) {
	s.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := s.c.Write(cmd); err != nil {
		return nil, err
	}
	hdr := make([]byte, 6)
	if _, err := io.ReadFull(s.c, hdr); err != nil {
		return nil, fmt.Errorf("tpm: read response header: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[2:])
	if n < 10 || n > MaxResponse {
		return nil, fmt.Errorf("tpm: response size %d", n)
	}
	rsp := make([]byte, n)
	copy(rsp, hdr)
	if _, err := io.ReadFull(s.c, rsp[6:]); err != nil {
		return nil, fmt.Errorf("tpm: read response: %w", err)
	}
	return rsp, nil
}

// Key is a key loaded in the TPM.
type Key struct {
	Handle tpm2.TPMHandle
	Name   tpm2.TPM2BName
	// Public is the key's TPMT_PUBLIC.
	Public []byte
	pub    crypto.PublicKey
}

// PublicKey is the Go public key.
func (k *Key) PublicKey() crypto.PublicKey { return k.pub }

// Ref names the key as keytrail does, with id.
func (k *Key) Ref(id string) (evidence.KeyRef, error) {
	d, err := evidence.KeyDigest(k.pub)
	return evidence.KeyRef{ID: id, SPKISHA256: d}, err
}

// AKTemplate is an ECDSA P-256 restricted signing key resident in the TPM.
var AKTemplate = tpm2.TPMTPublic{
	Type: tpm2.TPMAlgECC, NameAlg: tpm2.TPMAlgSHA256,
	ObjectAttributes: tpm2.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true,
		Restricted: true, SignEncrypt: true, NoDA: true},
	Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
		Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
		Scheme: tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgECDSA, Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA,
			&tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256})},
		CurveID: tpm2.TPMECCNistP256,
		KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
	}),
	Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{}),
}

// KeyTemplate is an ECDSA P-256 signing key generated in the TPM that can
// never leave it (fixedTPM, fixedParent, sensitiveDataOrigin).
var KeyTemplate = tpm2.TPMTPublic{
	Type: tpm2.TPMAlgECC, NameAlg: tpm2.TPMAlgSHA256,
	ObjectAttributes: tpm2.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true,
		SignEncrypt: true, NoDA: true},
	Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
		Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
		Scheme: tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgECDSA, Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA,
			&tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256})},
		CurveID: tpm2.TPMECCNistP256,
		KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
	}),
	Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{}),
}

func keyOf(pub tpm2.TPM2BPublic, h tpm2.TPMHandle, name tpm2.TPM2BName) (*Key, error) {
	p, err := pub.Contents()
	if err != nil {
		return nil, fmt.Errorf("tpm: public area: %w", err)
	}
	k, err := attesttpm.PublicKey(p)
	if err != nil {
		return nil, err
	}
	return &Key{Handle: h, Name: name, Public: tpm2.Marshal(*p), pub: k}, nil
}

// CreateAK creates the attestation key, a primary key in the endorsement
// hierarchy from AKTemplate.
func (t *TPM) CreateAK(ctx context.Context) (*Key, error) {
	return t.primary(ctx, tpm2.TPMRHEndorsement, AKTemplate, "AK")
}

func (t *TPM) primary(ctx context.Context, h tpm2.TPMHandle, tmpl tpm2.TPMTPublic, what string) (*Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	rsp, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.AuthHandle{Handle: h, Auth: tpm2.PasswordAuth(nil)},
		InPublic: tpm2.New2B(tmpl)}.Execute(t.t)
	if err != nil {
		return nil, fmt.Errorf("tpm: create %s: %w", what, err)
	}
	return keyOf(rsp.OutPublic, rsp.ObjectHandle, rsp.Name)
}

// CreateKey creates a signing key from KeyTemplate under a storage root key
// (itself made in the owner hierarchy) and loads it.
func (t *TPM) CreateKey(ctx context.Context) (*Key, error) {
	srk, err := t.primary(ctx, tpm2.TPMRHOwner, tpm2.ECCSRKTemplate, "storage root key")
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	defer tpm2.FlushContext{FlushHandle: srk.Handle}.Execute(t.t)
	parent := tpm2.AuthHandle{Handle: srk.Handle, Name: srk.Name, Auth: tpm2.PasswordAuth(nil)}
	c, err := tpm2.Create{ParentHandle: parent, InPublic: tpm2.New2B(KeyTemplate)}.Execute(t.t)
	if err != nil {
		return nil, fmt.Errorf("tpm: create key: %w", err)
	}
	l, err := tpm2.Load{ParentHandle: parent, InPrivate: c.OutPrivate, InPublic: c.OutPublic}.Execute(t.t)
	if err != nil {
		return nil, fmt.Errorf("tpm: load key: %w", err)
	}
	t.log.Info("created key in the TPM", "handle", fmt.Sprintf("0x%08x", uint32(l.ObjectHandle)))
	return keyOf(c.OutPublic, l.ObjectHandle, l.Name)
}

// LoadPersistent reads the public area of a persistent key (e.g. 0x81000001).
func (t *TPM) LoadPersistent(ctx context.Context, h uint32) (*Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	rsp, err := tpm2.ReadPublic{ObjectHandle: tpm2.TPMHandle(h)}.Execute(t.t)
	if err != nil {
		return nil, fmt.Errorf("tpm: read public 0x%08x: %w", h, err)
	}
	return keyOf(rsp.OutPublic, tpm2.TPMHandle(h), rsp.Name)
}

// Persist makes the transient key k persistent at handle h (0x81000000 to
// 0x817fffff, owner hierarchy) and returns it there.
func (t *TPM) Persist(ctx context.Context, k *Key, h uint32) (*Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if h < 0x81000000 || h > 0x817fffff {
		return nil, fmt.Errorf("tpm: persistent handle 0x%08x is outside the owner range 0x81000000-0x817fffff", h)
	}
	t.mu.Lock()
	_, err := tpm2.EvictControl{Auth: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
		ObjectHandle: tpm2.NamedHandle{Handle: k.Handle, Name: k.Name}, PersistentHandle: tpm2.TPMHandle(h)}.Execute(t.t)
	t.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("tpm: persist key at 0x%08x: %w", h, err)
	}
	t.Flush(k)
	return t.LoadPersistent(ctx, h)
}

// Flush unloads a transient key.
func (t *TPM) Flush(k *Key) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tpm2.FlushContext{FlushHandle: k.Handle}.Execute(t.t)
}

// Nonce returns 32 fresh random bytes.
func Nonce() []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

// Certify has ak certify key with TPM2_Certify over nonce, and returns the record.
func (t *TPM) Certify(ctx context.Context, ak, key *Key, nonce []byte, now time.Time) (*evidence.TPMAttestation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	rsp, err := tpm2.Certify{
		ObjectHandle:   tpm2.AuthHandle{Handle: key.Handle, Name: key.Name, Auth: tpm2.PasswordAuth(nil)},
		SignHandle:     tpm2.AuthHandle{Handle: ak.Handle, Name: ak.Name, Auth: tpm2.PasswordAuth(nil)},
		QualifyingData: tpm2.TPM2BData{Buffer: nonce},
		InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
	}.Execute(t.t)
	if err != nil {
		return nil, fmt.Errorf("tpm: certify: %w", err)
	}
	return &evidence.TPMAttestation{At: evidence.AtTime(now), Kind: evidence.TPMKindCertify, Attest: rsp.CertifyInfo.Bytes(),
		Signature: tpm2.Marshal(rsp.Signature), AKPublic: ak.Public, KeyPublic: key.Public, Nonce: nonce}, nil
}

// Quote has ak quote the sha256 PCRs pcrs over nonce, and returns the record
// with the PCR values read alongside. A PCR changing between the read and the
// quote makes the record fail verification, never pass wrongly.
func (t *TPM) Quote(ctx context.Context, ak *Key, pcrs []int, nonce []byte, now time.Time) (*evidence.TPMAttestation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	bits := make([]byte, 3)
	for _, p := range pcrs {
		if p < 0 || p > 23 {
			return nil, fmt.Errorf("tpm: PCR %d out of range", p)
		}
		bits[p/8] |= 1 << (p % 8)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var values [][]byte
	for i := range 24 { // in selection order: ascending
		if bits[i/8]&(1<<(i%8)) == 0 {
			continue
		}
		one := make([]byte, 3)
		one[i/8] = 1 << (i % 8)
		r, err := tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgSHA256, PCRSelect: one}}}}.Execute(t.t)
		if err != nil {
			return nil, fmt.Errorf("tpm: read PCR %d: %w", i, err)
		}
		if len(r.PCRValues.Digests) != 1 {
			return nil, fmt.Errorf("tpm: PCR %d: %d values", i, len(r.PCRValues.Digests))
		}
		values = append(values, r.PCRValues.Digests[0].Buffer)
	}
	rsp, err := tpm2.Quote{
		SignHandle:     tpm2.AuthHandle{Handle: ak.Handle, Name: ak.Name, Auth: tpm2.PasswordAuth(nil)},
		QualifyingData: tpm2.TPM2BData{Buffer: nonce},
		InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
		PCRSelect:      tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgSHA256, PCRSelect: bits}}},
	}.Execute(t.t)
	if err != nil {
		return nil, fmt.Errorf("tpm: quote: %w", err)
	}
	return &evidence.TPMAttestation{At: evidence.AtTime(now), Kind: evidence.TPMKindQuote, Attest: rsp.Quoted.Bytes(),
		Signature: tpm2.Marshal(rsp.Signature), AKPublic: ak.Public, PCRValues: values, Nonce: nonce}, nil
}

// Signer is a TPM key as a crypto.Signer (ECDSA P-256; ASN.1 DER signatures
// over a SHA-256 digest).
type Signer struct {
	t   *TPM
	key *Key
}

// Signer returns key as a crypto.Signer.
func (t *TPM) Signer(key *Key) *Signer { return &Signer{t: t, key: key} }

// Public is the key.
func (s *Signer) Public() crypto.PublicKey { return s.key.pub }

// Sign signs a SHA-256 digest in the TPM.
func (s *Signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if _, ok := s.key.pub.(*ecdsa.PublicKey); !ok || opts.HashFunc() != crypto.SHA256 {
		return nil, errors.New("tpm: only ECDSA with SHA-256 is supported")
	}
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	rsp, err := tpm2.Sign{
		KeyHandle:  tpm2.AuthHandle{Handle: s.key.Handle, Name: s.key.Name, Auth: tpm2.PasswordAuth(nil)},
		Digest:     tpm2.TPM2BDigest{Buffer: digest},
		InScheme:   tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgECDSA, Details: tpm2.NewTPMUSigScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSchemeHash{HashAlg: tpm2.TPMAlgSHA256})},
		Validation: tpm2.TPMTTKHashCheck{Tag: tpm2.TPMSTHashCheck, Hierarchy: tpm2.TPMRHNull},
	}.Execute(s.t.t)
	if err != nil {
		return nil, fmt.Errorf("tpm: sign: %w", err)
	}
	e, err := rsp.Signature.Signature.ECDSA()
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(e.SignatureR.Buffer), new(big.Int).SetBytes(e.SignatureS.Buffer)})
}
