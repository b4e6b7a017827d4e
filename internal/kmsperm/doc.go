// Package kmsperm holds the pure parts of key-policy reasoning that both the
// collector (collectors/kmspolicy) and the offline verifier (verify/) need:
// the grammar of a normalised permission and principal, the
// separation-of-duties question (AdminSigners), and AWS KMS key ARNs with
// their partitions. It depends only on the standard library and evidence, so
// verify/ may import it without importing a collector.
package kmsperm

import "errors"

// Providers, as evidence.KeyPolicySnapshot.Provider names them.
const (
	ProviderAWS = "aws-kms"
	ProviderGCP = "gcp-kms"
)

// GCP permissions AdminSigners looks for.
const (
	GCPSetIAMPolicy = "cloudkms.cryptoKeys.setIamPolicy"
	GCPUseToSign    = "cloudkms.cryptoKeyVersions.useToSign"
)

// RolePrefix marks a GCP role whose permissions are unknown ("role:NAME").
const RolePrefix = "role:"

// Sentinel errors, shared with collectors/kmspolicy.
var (
	ErrMalformed   = errors.New("malformed")
	ErrUnsupported = errors.New("unsupported")
	ErrMismatch    = errors.New("mismatch")
)
