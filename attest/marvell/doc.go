// Package marvell verifies Marvell LiquidSecurity key attestations offline: the
// format Google Cloud HSM returns as CAVIUM_V1_COMPRESSED in a
// CryptoKeyVersion's attestation, and Azure Managed HSM also uses.
//
// # Format
//
// The attestation is gzip-compressed (Decompress). Decompressed, all integers
// big-endian, it is:
//
//   - a response header: response code, request flags, total size (the length
//     of the whole attestation), buffer size (u32 each);
//   - the handles of the attested objects, up to the info header;
//   - at length - buffer size - 256, an info header: object version, flags, and
//     the offsets of the first and second key objects from the info header (u16
//     each; the second is 0 when there is only one object);
//   - the key objects, one after the other: handle, attribute count, size of
//     the records (u32 each), then the records, each a type (a PKCS #11
//     attribute number, or a vendor one), a length (u32) and the value;
//   - the last 256 bytes: an RSA PKCS #1 v1.5 SHA-256 signature over every
//     byte before them, by the HSM partition's key.
//
// For a key pair the public object (CKA_CLASS 2) comes first, then the private
// object (CKA_CLASS 3). Attribute 0x120 holds the RSA modulus, or the EC point
// (uncompressed); 0x1003 (EKCV) is the SHA-256 of the key's DER
// SubjectPublicKeyInfo, and 0x173 (KCV) the first 3 bytes of its SHA-1.
//
// # Certificates
//
// The partition key is certified twice. The manufacturer chain: partition
// certificate <- card certificate <- Marvell root ("localca.liquidsecurity.
// cavium.com"); the card certificate is X.509 v1, which x509.Verify refuses as
// a CA, so each link is checked explicitly and the deviation is recorded. The
// owner chain: the cloud operator's root (Google's "Hawksbill Root v1 prod")
// certifies the same partition key and the same card key. The HSM's identifier
// and partition are in the common names, "HSM:<id>:PARTN:<n>, for FIPS mode"
// and "HSM:<id>, for FIPS mode"; its model in the organisational unit.
//
// # Verification
//
// Verifier.Verify runs these checks, in order: attestation.decode,
// manufacturer.chain, owner.chain, chains.same-keys, attestation.signature
// (before anything signed is decoded), attestation.format, key.objects,
// key.check-values, key.binding, key.non-export, hsm.identity. Certificates are
// judged at Evidence.LoggedAt.
package marvell
