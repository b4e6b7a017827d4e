package kmsperm

import (
	"fmt"
	"regexp"
	"strings"
)

// KeyARN is an AWS KMS key ARN, arn:PARTITION:kms:REGION:ACCOUNT:key/KEY-ID,
// split into the parts residency checks need.
type KeyARN struct {
	// Partition is "aws", "aws-cn", "aws-us-gov", "aws-eusc" (the AWS
	// European Sovereign Cloud) or one of the isolated partitions "aws-iso",
	// "aws-iso-b", "aws-iso-e", "aws-iso-f".
	Partition string
	// Region is the key's region, e.g. "eu-central-1" or "eusc-de-east-1".
	Region string
	// Account is the 12-digit account that owns the key.
	Account string
	// KeyID is the key's UUID, or "mrk-" and 32 hex digits for a multi-region key.
	KeyID string
}

// String returns the ARN.
func (a KeyARN) String() string {
	return "arn:" + a.Partition + ":kms:" + a.Region + ":" + a.Account + ":key/" + a.KeyID
}

// partitions maps each AWS partition this package knows to the prefix every
// region of that partition has ("" for the commercial partition, whose regions
// have none of the others' prefixes). An ARN in another partition is
// ErrUnsupported: a residency check must not guess where it is.
var partitions = map[string]string{
	"aws":        "",
	"aws-cn":     "cn-",
	"aws-us-gov": "us-gov-",
	"aws-iso":    "us-iso-",
	"aws-iso-b":  "us-isob-",
	"aws-iso-e":  "eu-isoe-",
	"aws-iso-f":  "us-isof-",
	"aws-eusc":   "eusc-",
}

var (
	regionPattern  = regexp.MustCompile(`^[a-z]{2,}(-[a-z]+)+-[0-9]{1,2}$`)
	accountPattern = regexp.MustCompile(`^[0-9]{12}$`)
	keyIDPattern   = regexp.MustCompile(`^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$`)
)

// ParseKeyARN parses a KMS key ARN. It checks each part's syntax, that the
// partition is one KeyARN.Partition lists (another is ErrUnsupported: a
// residency check must not guess where it is), and that the region belongs to
// the partition by its prefix (cn-, us-gov-, us-iso-, us-isob-, eu-isoe-,
// us-isof-, eusc-; none for "aws"): an "aws-eusc" ARN in "eu-central-1" is
// ErrMismatch. Alias ARNs are rejected: describe-key always reports the key
// ARN.
func ParseKeyARN(s string) (KeyARN, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "kms" {
		return KeyARN{}, fmt.Errorf("%w: %q is not a KMS ARN (arn:PARTITION:kms:REGION:ACCOUNT:key/ID)", ErrMalformed, s)
	}
	id, ok := strings.CutPrefix(parts[5], "key/")
	if !ok {
		return KeyARN{}, fmt.Errorf("%w: %q is not a key ARN (resource %q, want key/ID)", ErrMalformed, s, parts[5])
	}
	a := KeyARN{Partition: parts[1], Region: parts[3], Account: parts[4], KeyID: id}
	_, known := partitions[a.Partition]
	switch {
	case !known:
		return KeyARN{}, fmt.Errorf("%w: partition %q of %q is not one of the known AWS partitions", ErrUnsupported, a.Partition, s)
	case !regionPattern.MatchString(a.Region):
		return KeyARN{}, fmt.Errorf("%w: region %q of %q", ErrMalformed, a.Region, s)
	case !accountPattern.MatchString(a.Account):
		return KeyARN{}, fmt.Errorf("%w: account %q of %q is not 12 digits", ErrMalformed, a.Account, s)
	case !keyIDPattern.MatchString(a.KeyID):
		return KeyARN{}, fmt.Errorf("%w: key id %q of %q is neither a lowercase UUID nor mrk- and 32 hex digits", ErrMalformed, a.KeyID, s)
	}
	if got := regionPartition(a.Region); got != a.Partition {
		return KeyARN{}, fmt.Errorf("%w: region %q is in partition %q, but the ARN says %q", ErrMismatch, a.Region, got, a.Partition)
	}
	return a, nil
}

// regionPartition returns the partition whose region prefix region has
// (the longest match), or "aws" when it has none.
func regionPartition(region string) string {
	best, bestLen := "aws", 0
	for p, prefix := range partitions {
		if prefix != "" && strings.HasPrefix(region, prefix) && len(prefix) > bestLen {
			best, bestLen = p, len(prefix)
		}
	}
	return best
}
