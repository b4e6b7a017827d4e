// Package attest holds what the verifiers of cloud HSM key attestations share:
// the result they return, the pinned vendor roots they take, and the
// non-export policy.
//
// The verifiers themselves are its subpackages, one per vendor format:
//
//   - attest/marvell: Marvell LiquidSecurity key attestations, format
//     CAVIUM_V1_COMPRESSED (Google Cloud HSM, Azure Managed HSM), chained to the
//     Marvell manufacturer root and to the cloud operator's (owner) root.
//   - attest/luna: Thales Luna Public Key Confirmations (PKC), a DER PKCS #7
//     certificates-only SignedData (RFC 2315) chained to a Luna root.
//
// Verification is pure and offline: no network, no cgo, no clock. Every
// certificate is judged at the time the evidence was logged, a trusted time
// the caller passes in (ATTACKS.md 19), never at time.Now: an expired vendor root
// still verifies evidence logged while it was valid, and evidence logged after
// its end does not.
//
// # Trust
//
// Vendor roots are inputs (Root), pinned by the caller together with the
// window in which they are trusted. A root that arrives inside the evidence is
// never trusted; a certificate in the evidence equal to a pinned root is
// ignored, and the pinned copy is used.
//
// Some vendor chains break rules Go's crypto/x509 enforces (an X.509 v1 CA
// certificate, a v3 root without basicConstraints, an ECDSA signature whose s is
// DER-encoded as a negative INTEGER). Each format package accepts exactly the
// deviations its vendor is known to produce, verifies those links explicitly,
// and records every deviation it accepted in the check that accepted it
// (Check.Deviations); no check is disabled wholesale.
//
// # Results
//
// A Result is about one key. It lists the checks that ran, each PASS, FAIL or
// SKIP with a reason; the facts the evidence states (Facts: key digest,
// attributes, HSM model and serial); and the Strength of the evidence: how
// well those facts are bound to hardware. Facts are extracted even when a check
// fails, so that an auditor sees what the evidence claims, but they are
// authenticated only when Strength is not Unverified. Verified means more:
// every required check passed, the non-export policy and (when asked) the
// binding to an expected key included, so authentic evidence of an imported
// key is VendorAttested but not Verified. Verification never panics: a panic
// is recovered into a failed "verifier" check.
//
// # Policy
//
// NonExport is the residency rule of ATTACKS.md 26: a key that was imported
// (LOCAL=0), was ever extractable (NEVER_EXTRACTABLE=0, EXTRACTABLE=1) or was
// ever not sensitive (ALWAYS_SENSITIVE=0, SENSITIVE=0) fails it.
package attest
