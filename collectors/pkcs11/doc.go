// Package pkcs11 collects PKCS #11 key evidence from a token: it addresses
// tokens and keys by RFC 7512 URI, records CK_INFO, CK_TOKEN_INFO and the
// attributes of a private key that decide whether it can leave the token
// (PKCS #11 v3.0 §4.8–4.9), and proves the token holds the key by signing a
// fresh nonce with it, verified against the recorded public key before the
// record is returned. The result is an evidence.HSMAttestation of format
// "pkcs11-attributes": self-reported by the token (attest/pkcs11 verifies it).
//
// It also generates keys in a token (P-256, P-384, secp256k1, Ed25519, RSA)
// with the attributes of a key that never leaves it.
//
// Tokens are looked up by their URI attributes (label, serial, model,
// manufacturer), never by slot number: slot IDs change (SoftHSM2 renumbers
// them). Everything but URI parsing needs cgo (github.com/miekg/pkcs11 loads the
// module with dlopen); verification does not need it.
package pkcs11
