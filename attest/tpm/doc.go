// Package tpm verifies TPM 2.0 attestation evidence: a TPM2_Certify of a key
// (the TPM states the key's Name, and so its public area and attributes) and a
// TPM2_Quote over a PCR selection, each a TPMS_ATTEST signed by an attestation
// key (AK). Structures are those of TPM 2.0 Library Part 2 (10.12 TPMS_ATTEST,
// 12.2.4 TPMT_PUBLIC, 11.3.4 TPMT_SIGNATURE).
//
// Verification is pure and offline. It checks, as attest/marvell and
// attest/luna do, and returns an *attest.Result:
//
//   - tpm.format: the TPMS_ATTEST, TPMT_SIGNATURE and public areas parse, have
//     exactly one encoding (re-marshalling gives the input bytes, no trailing
//     data), and the TPMS_ATTEST magic is TPM_GENERATED_VALUE 0xff544347 —
//     go-tpm's Unmarshal does not check it (ATTACKS.md 21, CVE-2024-29038).
//   - tpm.attest-type: the attestation is of the type the evidence claims
//     (TPM_ST_ATTEST_CERTIFY or TPM_ST_ATTEST_QUOTE), never another.
//   - tpm.ak-trust: the AK's public area is one pinned by the caller (enrolled in
//     the trust file) with a window containing the time the evidence was logged,
//     and it is a restricted signing key that is fixedTPM, fixedParent and
//     sensitiveDataOrigin (ATTACKS.md 24). An AK carried only in the evidence
//     is never trusted.
//   - tpm.signature: the TPMT_SIGNATURE verifies over the TPMS_ATTEST bytes with
//     the AK (ECDSA, RSASSA or RSAPSS, with the hash the signature names; SHA-1
//     is refused).
//   - tpm.nonce: extraData equals the verifier-chosen nonce, which is at least
//     MinNonce bytes (ATTACKS.md 23); ExpectedNonce, if the caller gives one,
//     must be that nonce. A quote always needs one; a certification's facts
//     are immutable, so its nonce may be short, fixed or empty (tpm2_certify
//     before tpm2-tools 5.5 always uses 00ff55aa), but it must be its extraData.
//   - Certify: tpm.name: the certified Name is the Name (nameAlg || H(TPMT_PUBLIC))
//     of the key's public area, so the attributes read from it are the key's;
//     key.non-export: fixedTPM, fixedParent and sensitiveDataOrigin are set
//     (mapped to NEVER_EXTRACTABLE, !EXTRACTABLE and LOCAL).
//   - Quote: tpm.pcrs: the quoted selection is exactly the selection the caller
//     requires (a subset or superset fails, ATTACKS.md 22), and the PCR digest
//     recomputed from the reported PCR values, in selection order, equals the
//     quoted one.
//
// # Trust in the attestation key
//
// An AK is trusted by enrolment: its TPMT_PUBLIC is pinned in the trust file
// ("hardware.tpmAttestationKeys", docs/trust-file.md) after the operator has
// established, at enrolment, that it lives in the TPM (for example by
// TPM2_ActivateCredential against the TPM's endorsement key). Verification
// never accepts an AK because of anything inside the evidence.
package tpm
