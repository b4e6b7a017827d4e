// Package evidence is keytrail's record model and bundle format.
//
// # Records
//
// Every record is an in-toto Statement v1
// (https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md) in a
// DSSE envelope (https://github.com/secure-systems-lab/dsse) of payloadType
// application/vnd.in-toto+json. Subjects name keys by a stable key ID and the
// SHA-256 of the key's DER SubjectPublicKeyInfo (KeyRef). Predicates are typed
// and versioned (PredicateTypes); each carries the time its fact happened.
// Envelopes are signed and verified through sigstore's signature and DSSE
// packages (ECDSA P-256 and P-384, Ed25519, RSA); ECDSA signatures must be DER.
//
// # Decoding
//
// Nothing untrusted is decoded leniently: duplicate, case-variant and unknown
// JSON members are errors (internal/strictjson), times have one spelling
// (ParseTime), and every size and count is bounded (MaxRecordBytes,
// MaxSignatures, MaxSubjects, MaxBundleEntries, MaxProofHashes, and
// MaxManifestBytes for what a bundle file may hold before its manifest is
// authenticated). Verify an envelope (Envelope.Verify) before parsing its
// statement (ParseStatement).
//
// # Bundles
//
// A Bundle is the evidence of one key rotation. BuildBundle collects it from a
// ledger; SignBundle writes the bundle file, whose manifest the operator signs
// (docs/bundle-format.md); ReadBundleFrom streams it back, authenticating the
// manifest before it decodes it and handing out each entry to be checked
// against the manifest's leaf hash.
package evidence
