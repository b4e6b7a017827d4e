package marvell

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/keytrail/keytrail/attest"
)

// Bounds on untrusted input. A real attestation is about 2 KiB.
const (
	// MaxBytes bounds an attestation, compressed or not.
	MaxBytes = 64 << 10
	// MaxAttributes bounds the attribute records of one key object.
	MaxAttributes = 256
	// SignatureSize is the size of the attestation signature (RSA-2048).
	SignatureSize = 256
)

// Layout constants.
const (
	responseHeaderSize = 16
	infoHeaderSize     = 8
	objectHeaderSize   = 12
	recordHeaderSize   = 8
	// Request flags: attributes (1) and attestation (2); exclude-header (4),
	// which would leave the response header unsigned, is not accepted.
	flagsAttributesAndAttestation = 3
)

// PKCS #11 attribute types (and Marvell's own) that keytrail reads.
const (
	AttrClass            uint32 = 0x0000 // CKA_CLASS
	AttrToken            uint32 = 0x0001 // CKA_TOKEN
	AttrPrivate          uint32 = 0x0002 // CKA_PRIVATE
	AttrLabel            uint32 = 0x0003 // CKA_LABEL
	AttrKeyType          uint32 = 0x0100 // CKA_KEY_TYPE
	AttrID               uint32 = 0x0102 // CKA_ID
	AttrSensitive        uint32 = 0x0103 // CKA_SENSITIVE
	AttrModulus          uint32 = 0x0120 // CKA_MODULUS; the EC point for EC keys
	AttrModulusBits      uint32 = 0x0121 // CKA_MODULUS_BITS
	AttrPublicExponent   uint32 = 0x0122 // CKA_PUBLIC_EXPONENT
	AttrValueLen         uint32 = 0x0161 // CKA_VALUE_LEN
	AttrExtractable      uint32 = 0x0162 // CKA_EXTRACTABLE
	AttrLocal            uint32 = 0x0163 // CKA_LOCAL
	AttrNeverExtractable uint32 = 0x0164 // CKA_NEVER_EXTRACTABLE
	AttrAlwaysSensitive  uint32 = 0x0165 // CKA_ALWAYS_SENSITIVE
	AttrKCV              uint32 = 0x0173 // Marvell KCV: SHA-1(SPKI)[:3]
	AttrEKCV             uint32 = 0x1003 // Marvell EKCV: SHA-256(SPKI)
)

// Object classes and key types (CKO_*, CKK_*).
const (
	ClassPublicKey  = 2
	ClassPrivateKey = 3
	KeyTypeRSA      = 0
	KeyTypeEC       = 3
)

// Attestation is a parsed, decompressed attestation. Parse does not
// authenticate it: see Verifier.
type Attestation struct {
	// ResponseCode is 0 (success) in any attestation Parse accepts.
	ResponseCode uint32
	// Flags are the request flags: 3 (attributes and attestation).
	Flags uint32
	// Handles are the bytes between the response header and the info header
	// (the handles of the attested objects, 8 bytes each).
	Handles []byte
	// Version and InfoFlags are the info header's object version and flags.
	Version, InfoFlags uint16
	// Objects are the key objects, one or two.
	Objects []Object
	// Signed is every byte before the signature: what the signature covers.
	Signed []byte
	// Signature is the last SignatureSize bytes.
	Signature []byte
}

// Object is one key object.
type Object struct {
	Handle     uint32
	Attributes []Attribute
}

// Attribute is one attribute record.
type Attribute struct {
	Type  uint32
	Value []byte
}

// Get returns the value of attribute t.
func (o *Object) Get(t uint32) ([]byte, bool) {
	for _, a := range o.Attributes {
		if a.Type == t {
			return a.Value, true
		}
	}
	return nil, false
}

// Decompress returns the attestation's bytes: gunzipped if b is gzip (one
// member, nothing after it), b itself otherwise. Either way the result is at
// most MaxBytes.
func Decompress(b []byte) ([]byte, error) {
	if len(b) > MaxBytes {
		return nil, fmt.Errorf("%w: attestation is %d bytes, at most %d allowed", attest.ErrFormat, len(b), MaxBytes)
	}
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		return b, nil
	}
	br := bytes.NewReader(b)
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("%w: gzip: %w", attest.ErrFormat, err)
	}
	zr.Multistream(false)
	out, err := io.ReadAll(io.LimitReader(zr, MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: gzip: %w", attest.ErrFormat, err)
	}
	if len(out) > MaxBytes {
		return nil, fmt.Errorf("%w: attestation decompresses to more than %d bytes", attest.ErrFormat, MaxBytes)
	}
	// Read to the end of the member so its CRC and size are checked.
	if n, err := zr.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: gzip: member does not end after %d bytes", attest.ErrFormat, len(out))
	}
	if br.Len() != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the gzip member", attest.ErrFormat, br.Len())
	}
	return out, nil
}

// Parse parses a decompressed attestation, strictly: the sizes in the headers
// must match the data, the key objects must follow one another from the info
// header to the signature, each object's records must fill its size exactly,
// and no attribute may appear twice in an object. It authenticates nothing.
func Parse(b []byte) (*Attestation, error) {
	a, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", attest.ErrFormat, err)
	}
	return a, nil
}

func parse(b []byte) (*Attestation, error) {
	if len(b) > MaxBytes {
		return nil, fmt.Errorf("%d bytes, at most %d allowed", len(b), MaxBytes)
	}
	if len(b) < responseHeaderSize+infoHeaderSize+SignatureSize {
		return nil, fmt.Errorf("%d bytes is too short for an attestation", len(b))
	}
	be := binary.BigEndian
	a := &Attestation{ResponseCode: be.Uint32(b[0:]), Flags: be.Uint32(b[4:])}
	total, buffer := be.Uint32(b[8:]), be.Uint32(b[12:])
	if a.ResponseCode != 0 {
		return nil, fmt.Errorf("response code %#x, want 0 (success)", a.ResponseCode)
	}
	if a.Flags != flagsAttributesAndAttestation {
		return nil, fmt.Errorf("request flags %#x, want %#x (attributes and attestation)", a.Flags, flagsAttributesAndAttestation)
	}
	if uint64(total) != uint64(len(b)) {
		return nil, fmt.Errorf("total size %d, but the attestation is %d bytes", total, len(b))
	}
	end := len(b) - SignatureSize // the signed bytes end here
	if uint64(buffer) > uint64(end-responseHeaderSize) || buffer < infoHeaderSize {
		return nil, fmt.Errorf("buffer size %d does not fit in %d bytes", buffer, len(b))
	}
	info := end - int(buffer)
	a.Handles = b[responseHeaderSize:info]
	a.Version, a.InfoFlags = be.Uint16(b[info:]), be.Uint16(b[info+2:])
	offsets := []int{int(be.Uint16(b[info+4:])), int(be.Uint16(b[info+6:]))}
	if offsets[1] == 0 {
		offsets = offsets[:1]
	}
	pos := info + infoHeaderSize
	for i, off := range offsets {
		if info+off != pos {
			return nil, fmt.Errorf("key object %d is at offset %d, want %d (right after what precedes it)", i+1, off, pos-info)
		}
		o, next, err := parseObject(b[:end], pos)
		if err != nil {
			return nil, fmt.Errorf("key object %d: %w", i+1, err)
		}
		a.Objects = append(a.Objects, o)
		pos = next
	}
	if pos != end {
		return nil, fmt.Errorf("%d bytes between the last key object and the signature", end-pos)
	}
	a.Signed, a.Signature = b[:end], b[end:]
	return a, nil
}

// parseObject parses the key object at b[pos:] and returns where it ends.
func parseObject(b []byte, pos int) (Object, int, error) {
	be := binary.BigEndian
	if len(b)-pos < objectHeaderSize {
		return Object{}, 0, errors.New("truncated header")
	}
	o := Object{Handle: be.Uint32(b[pos:])}
	count, size := be.Uint32(b[pos+4:]), be.Uint32(b[pos+8:])
	pos += objectHeaderSize
	if count > MaxAttributes {
		return Object{}, 0, fmt.Errorf("%d attributes, at most %d allowed", count, MaxAttributes)
	}
	if uint64(size) > uint64(len(b)-pos) {
		return Object{}, 0, fmt.Errorf("size %d runs past the signed data", size)
	}
	rec := b[pos : pos+int(size)]
	seen := make(map[uint32]bool, count)
	for i := range count {
		if len(rec) < recordHeaderSize {
			return Object{}, 0, fmt.Errorf("attribute %d of %d: truncated header", i+1, count)
		}
		t, n := be.Uint32(rec), be.Uint32(rec[4:])
		rec = rec[recordHeaderSize:]
		if uint64(n) > uint64(len(rec)) {
			return Object{}, 0, fmt.Errorf("attribute %#x: length %d runs past the object", t, n)
		}
		if seen[t] {
			return Object{}, 0, fmt.Errorf("attribute %#x appears twice", t)
		}
		seen[t] = true
		o.Attributes = append(o.Attributes, Attribute{Type: t, Value: rec[:n:n]})
		rec = rec[n:]
	}
	if len(rec) != 0 {
		return Object{}, 0, fmt.Errorf("%d bytes after its %d attributes", len(rec), count)
	}
	return o, pos + int(size), nil
}
