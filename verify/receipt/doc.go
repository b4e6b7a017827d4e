// Package receipt verifies signing receipts offline: that the signature a
// wallet signer reports (evidence.SigningReceipt) is a signature over the
// receipt's digest by a given, trusted key.
//
// It is pure: no network, no cgo, no context, no clock. The key and its scheme
// come from the caller's trust material, never from the receipt: a receipt
// carries no scheme, and nothing in it is trusted before its signature verifies.
//
// # Schemes
//
// A Key has exactly one Scheme, which fixes how its receipts are read:
//
//   - SchemeSecp256k1DER ("ecdsa-secp256k1-der"): ECDSA on secp256k1 (SEC 2),
//     the signature strict ASN.1 DER (X.690 §10; ECDSA-Sig-Value of SEC 1 §C.5),
//     over a 32-byte digest, as Bitcoin signers and KMS ECC_SECG_P256K1 keys
//     return it.
//   - SchemeSecp256k1RSV ("ecdsa-secp256k1-rsv"): ECDSA on secp256k1 in
//     Ethereum's recoverable form, 65 bytes r‖s‖v with r and s 32-byte
//     big-endian and v one of 0, 1, 27, 28 (y parity, or 27 + y parity as in
//     Yellow Paper Appendix F and eth_sign), or an EIP-155 value
//     chainId·2 + 35 + y parity. The public key is recovered (SEC 1 §4.1.6) and
//     its Ethereum address (the last 20 bytes of the Keccak-256 of the 64-byte
//     uncompressed point) must be the key's. An EIP-155 v must agree with the
//     receipt's chain, which must then be "eip155:<chainId>" (CAIP-2). One
//     byte of v holds chain IDs 1 to 109 (and 110 with an even y), so signers
//     of other chains report the y parity, as typed transactions (EIP-2718)
//     always do.
//   - SchemeEd25519 ("ed25519"): pure Ed25519 (RFC 8032), a 64-byte signature.
//   - SchemeP256DER ("ecdsa-p256-der"): ECDSA on NIST P-256 (FIPS 186-5), the
//     signature strict DER, over a 32-byte SHA-256 digest.
//
// # What the digest is
//
// A receipt's digest is lowercase hex, without a 0x prefix, of the exact bytes
// the signature covers, which depend on the scheme:
//
//   - For the ECDSA schemes it is the 32-byte message hash that was signed: a
//     Bitcoin sighash, an Ethereum transaction's signing hash (Keccak-256 of its
//     signing payload, or the EIP-191 hash for personal_sign), the SHA-256 of a
//     message for P-256. This package does not recompute it from a transaction.
//   - For Ed25519, which hashes internally and signs messages, not digests, it
//     is the signed message itself (at most MaxMessageBytes): for Solana, the
//     serialized transaction message. A signer that signs a hash with Ed25519
//     reports that hash, as the message it signed.
//
// # Malleability and low S
//
// An ECDSA signature (r, s) has a twin (r, n−s) that verifies as well. Bitcoin
// (BIP 62, BIP 146) and Ethereum (EIP-2) accept only the low form s ≤ n/2, so
// a high-S secp256k1 signature is one no honest signer of those chains makes.
// Verify reports it in Result.HighS and, unless Options.AllowHighS is set,
// fails it with ErrHighS, after the signature has otherwise verified, so the
// error says exactly that. P-256 has no such rule: HighS is reported only.
//
// # Naming secp256k1 keys
//
// keytrail names a key by the SHA-256 of its DER SubjectPublicKeyInfo
// (evidence.KeyDigest). Go's crypto/x509 does not know secp256k1, so this
// package defines its SPKI (MarshalSecp256k1SPKI): algorithm id-ecPublicKey
// (1.2.840.10045.2.1) with the named curve secp256k1 (1.3.132.0.10, RFC 5480
// §2.1.1), and the uncompressed point. That is the DER that OpenSSL writes and
// that AWS KMS GetPublicKey returns for such keys, so their digests agree. The
// compressed form would give one key a second name and is rejected.
package receipt
