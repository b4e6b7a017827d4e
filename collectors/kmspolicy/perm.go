package kmspolicy

import (
	"regexp"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/kmsperm"
)

// The grammar of permissions and principals, the separation-of-duties
// question and KMS key ARNs live in internal/kmsperm, so that the offline
// verifier uses the same code without importing a collector. These names are
// this package's API for them.

// Permission is one string of a binding's permissions, parsed (see
// kmsperm.Permission for the grammar).
type Permission = kmsperm.Permission

// Principal is a binding's principal string, parsed.
type Principal = kmsperm.Principal

// Duties answers "does any principal both administer the key's access and
// sign with the key?".
type Duties = kmsperm.Duties

// Conflict is one principal that both administers and signs.
type Conflict = kmsperm.Conflict

// KeyARN is an AWS KMS key ARN split into its parts.
type KeyARN = kmsperm.KeyARN

// ErrPermissionSyntax reports a permission or principal string outside the
// grammar of Permission.
var ErrPermissionSyntax = kmsperm.ErrPermissionSyntax

// ParsePermission parses a permission string; it accepts exactly the strings
// Permission.String produces.
func ParsePermission(s string) (Permission, error) { return kmsperm.ParsePermission(s) }

// ParsePrincipal parses a principal string.
func ParsePrincipal(s string) (Principal, error) { return kmsperm.ParsePrincipal(s) }

// ParseKeyARN parses a KMS key ARN (see kmsperm.ParseKeyARN).
func ParseKeyARN(s string) (KeyARN, error) { return kmsperm.ParseKeyARN(s) }

// AdminSigners answers the separation-of-duties question for a snapshot of
// provider: which principals both administer the key's access and sign with
// it. See kmsperm.AdminSigners for exactly what counts.
func AdminSigners(provider string, allow, deny []evidence.Binding) (Duties, error) {
	return kmsperm.AdminSigners(provider, allow, deny)
}

const (
	keysSetIAM = kmsperm.GCPSetIAMPolicy
	useToSign  = kmsperm.GCPUseToSign
	rolePrefix = kmsperm.RolePrefix
)

var accountPattern = regexp.MustCompile(`^[0-9]{12}$`)
