package marvell

import "encoding/binary"

// Marshal encodes a as Parse reads it: the inverse of Parse, for tests that
// mint attestations and for the round trip of FuzzParse. The signature is
// a.Signature (SignatureSize bytes); Signed is ignored.
func Marshal(a *Attestation) []byte {
	be := binary.BigEndian
	var objs []byte
	var offsets [2]uint16
	for i, o := range a.Objects {
		if i < 2 {
			offsets[i] = uint16(infoHeaderSize + len(objs))
		}
		var recs []byte
		for _, at := range o.Attributes {
			recs = be.AppendUint32(recs, at.Type)
			recs = be.AppendUint32(recs, uint32(len(at.Value)))
			recs = append(recs, at.Value...)
		}
		objs = be.AppendUint32(objs, o.Handle)
		objs = be.AppendUint32(objs, uint32(len(o.Attributes)))
		objs = be.AppendUint32(objs, uint32(len(recs)))
		objs = append(objs, recs...)
	}
	buffer := infoHeaderSize + len(objs)
	total := responseHeaderSize + len(a.Handles) + buffer + len(a.Signature)
	var b []byte
	b = be.AppendUint32(b, a.ResponseCode)
	b = be.AppendUint32(b, a.Flags)
	b = be.AppendUint32(b, uint32(total))
	b = be.AppendUint32(b, uint32(buffer))
	b = append(b, a.Handles...)
	b = be.AppendUint16(b, a.Version)
	b = be.AppendUint16(b, a.InfoFlags)
	b = be.AppendUint16(b, offsets[0])
	b = be.AppendUint16(b, offsets[1])
	b = append(b, objs...)
	return append(b, a.Signature...)
}
