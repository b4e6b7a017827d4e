// Package kmspolicy turns the exported access policy of a cloud KMS key into
// a signed keytrail key-policy snapshot (evidence.KeyPolicySnapshot): who may
// do what with the key, in a normalised form a verifier can reason about, tied
// by digest to the raw documents.
//
// It reads files the operator exported with the providers' own CLIs. It never
// calls a cloud API, opens a network connection or follows a URL found in its
// input: the collector is as offline as the auditor who later checks its
// output.
//
// # Inputs
//
// AWS KMS (AWSExport), each with --output json:
//
//	aws kms describe-key   --key-id KEY
//	aws kms get-key-policy --key-id KEY --policy-name default
//	aws kms list-grants    --key-id KEY
//	aws kms get-public-key --key-id KEY         (for the subject, KeyRefFromAWSPublicKey)
//
// Google Cloud KMS (GCPExport), each with --format json:
//
//	gcloud kms keys describe       KEY --keyring RING --location LOC
//	gcloud kms keys get-iam-policy KEY --keyring RING --location LOC
//	gcloud kms keys versions get-public-key N --key KEY ... --output-file key.pem   (KeyRefFromPEM)
//
// # Decoding
//
// All input is untrusted. Every file is bounded in bytes (MaxFileBytes,
// MaxGrantsFileBytes), nesting (MaxDepth) and counts (MaxStatements,
// MaxListItems, MaxGrants, MaxBindings). Duplicate member names, and names
// that differ only in case ("Effect" beside "effect"), are rejected anywhere in
// any file, including inside the policy document that get-key-policy returns
// as a JSON string (ATTACKS.md 16). Documents that grant access (IAM policy
// documents, grant entries, GCP IAM policies and bindings) are closed: an
// unknown member is an error, since it could change who holds what.
// Describe-key style metadata is open (providers extend it often, and none of
// it grants access); the fields used are checked against each other. A
// truncated list-grants page is ErrIncomplete. Every error is an *InputError
// naming the file and the field (a JSON Pointer), wrapping one of
// ErrMalformed, ErrTooLarge, ErrUnsupported, ErrMismatch, ErrIncomplete.
//
// # Normalisation
//
// The result is a list of entries (Policy.Entries): effect, principal,
// permission, and the statement, grant or binding each came from. Principals
// and permissions are strings in a small grammar (Principal, Permission) so
// that they fit evidence.Binding.
//
// AWS key policies are expanded statement by statement (IAM JSON policy
// reference):
//   - Principal "*" and {"AWS": "*"} become "*". Other principals are typed:
//     "AWS:" and the ARN, "Service:", "Federated:", "CanonicalUser:". A bare
//     12-digit account becomes its root ARN, "AWS:arn:PARTITION:iam::ID:root",
//     which IAM treats as the same principal; such a root principal means IAM
//     identity policies in that account may pass the permission on, and those
//     are not part of this snapshot.
//   - Action patterns are kept as written, wildcards included ("kms:*",
//     "kms:Get*", "*"), so they still cover actions AWS adds later; only the
//     spelling is normalised (service prefix in lower case, a known KMS action
//     in its API spelling: IAM matches actions case-insensitively).
//   - NotAction [A, B] becomes the one permission "* except A B": every action
//     but those. NotPrincipal [P, Q] becomes the principal "* except P Q".
//     Neither is dropped, expanded against a catalogue, or approximated.
//   - A Condition block makes every permission of its statement conditional:
//     "kms:PutKeyPolicy if sha256:…", the digest of the block's RFC 8785 form,
//     with the block itself in Policy.Conditions. An empty block is no
//     condition.
//   - Effect "Deny" produces deny entries. They are never reported as
//     permissions: Snapshot.Predicate.Bindings holds allow entries only, and
//     denies go to Snapshot.Predicate.Denies. Allows are not reduced by denies (a
//     conditional or partial deny cannot be subtracted honestly); AdminSigners
//     applies the denies that certainly apply.
//   - A statement whose Resource (or NotResource) does not cover the key's ARN
//     is listed in Policy.Skipped with the reason, not silently dropped.
//
// AWS grants add, for the grantee, "kms:" and each operation; grant
// constraints (EncryptionContextSubset, EncryptionContextEquals) are a
// condition like a policy's. The retiring principal gets "kms:RetireGrant if"
// a scope naming the grant ({"GrantId": ...}). Grantees are named like policy
// principals ("Service:" for a service principal).
//
// GCP IAM bindings give each member the permissions of the role, from the
// table RolePermissions documents (the predefined Cloud KMS roles, and the
// basic roles mapped conservatively). A role outside the table, custom or another
// service's, becomes the opaque permission "role:NAME": visible, never
// guessed. A binding's IAM condition (expression, title, description) is a
// condition like AWS's. Members are kept as IAM writes them. A policy read as
// version 1 whose conditional bindings appear as "ROLE_withcond_…" is
// ErrIncomplete. Only the key's own policy is read; roles granted on the key
// ring, project, folder or organization, and IAM deny policies, are not.
//
// # Canonical form
//
// Policy.CanonicalSHA256 (and the predicate's canonicalSha256) is the SHA-256
// of the RFC 8785 (JSON Canonicalization Scheme) form of the raw policy
// document: for AWS the key policy document itself (the string inside
// get-key-policy's "Policy"), for GCP the whole get-iam-policy output. Anyone
// can recompute it from the export with any JCS implementation. AWS grants are
// covered by Policy.GrantsSHA256 over {"Grants": [...]} sorted by GrantId.
// The JCS implementation is go-json-experiment's (the prototype of Go's
// encoding/json/v2), already a dependency of keytrail.
//
// # Output
//
// NewSnapshot (or CollectAWS, CollectGCP) builds a Snapshot for one key: the
// evidence.KeyPolicySnapshot predicate, whose subject is the key's
// evidence.KeyRef (see KeyRefFromAWSPublicKey), with the allow bindings, the
// denies, the conditions, the key's resource and location (ARN partition,
// region and replica regions; or Cloud KMS location), the grants digest and
// the diff from the previous snapshot (Request.Previous, authenticated with
// VerifyPrevious); beside it the full Policy (account, project, the source of
// each permission). Snapshot.Sign signs the statement as a DSSE envelope.
//
// AdminSigners answers the verifier's separation-of-duties question: which
// principals both administer the key's access and sign with it. It and the
// permission grammar live in internal/kmsperm, which the verifier shares.
package kmspolicy
