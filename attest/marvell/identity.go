package marvell

import (
	"crypto/x509"
	"fmt"
	"strings"

	"github.com/keytrail/keytrail/attest"
	"github.com/keytrail/keytrail/evidence"
)

// Identity is what a partition or card certificate's subject says about the HSM.
type Identity struct {
	// ID is the HSM identifier (its serial), e.g. "5.3G1953-ICM001225".
	ID string
	// Partition is the partition number; empty for a card certificate.
	Partition string
	// Mode is the text after the comma, e.g. "for FIPS mode".
	Mode string
	// Manufacturer and Model are the subject's organisation and organisational
	// unit, e.g. "Cavium" and "N3FIPS".
	Manufacturer, Model string
}

// ParseIdentity reads a LiquidSecurity certificate's subject: common name
// "HSM:<id>:PARTN:<n>[, <mode>]" for a partition, "HSM:<id>[, <mode>]" for a
// card.
func ParseIdentity(c *x509.Certificate) (Identity, error) {
	cn := c.Subject.CommonName
	core, mode, _ := strings.Cut(cn, ",")
	parts := strings.Split(core, ":")
	id := Identity{Mode: strings.TrimSpace(mode)}
	switch {
	case len(parts) == 2 && parts[0] == "HSM":
	case len(parts) == 4 && parts[0] == "HSM" && parts[2] == "PARTN" && parts[3] != "":
		id.Partition = parts[3]
	default:
		return Identity{}, fmt.Errorf("%w: common name %q is not HSM:<id>[:PARTN:<n>]", attest.ErrIdentity, cn)
	}
	id.ID = parts[1]
	if id.ID == "" {
		return Identity{}, fmt.Errorf("%w: common name %q has an empty HSM identifier", attest.ErrIdentity, cn)
	}
	if len(c.Subject.Organization) > 0 {
		id.Manufacturer = c.Subject.Organization[0]
	}
	if len(c.Subject.OrganizationalUnit) > 0 {
		id.Model = c.Subject.OrganizationalUnit[0]
	}
	return id, nil
}

// isPartition and isCard classify certificates by their common names.
func isPartition(c *x509.Certificate) bool {
	id, err := ParseIdentity(c)
	return err == nil && id.Partition != ""
}

func isCard(c *x509.Certificate) bool {
	id, err := ParseIdentity(c)
	return err == nil && id.Partition == ""
}

// checkIdentity reads the HSM's identity from the verified certificates: the
// partition and card certificates must name the same HSM, and the owner's
// certificates (if any) must have the same subjects as the manufacturer's.
func checkIdentity(mfr, owner *chains, res *attest.Result) (string, error) {
	part, err := ParseIdentity(mfr.partition)
	if err != nil {
		return "", err
	}
	card, err := ParseIdentity(mfr.card)
	if err != nil {
		return "", err
	}
	if part.ID != card.ID {
		return "", fmt.Errorf("%w: partition certificate names HSM %q, card certificate %q", attest.ErrIdentity, part.ID, card.ID)
	}
	if owner != nil {
		if owner.partition.Subject.String() != mfr.partition.Subject.String() {
			return "", fmt.Errorf("%w: owner partition certificate %q and manufacturer partition certificate %q differ",
				attest.ErrIdentity, owner.partition.Subject, mfr.partition.Subject)
		}
		if owner.card.Subject.String() != mfr.card.Subject.String() {
			return "", fmt.Errorf("%w: owner card certificate %q and manufacturer card certificate %q differ",
				attest.ErrIdentity, owner.card.Subject, mfr.card.Subject)
		}
	}
	res.Facts.Token = evidence.TokenInfo{Manufacturer: part.Manufacturer, Model: part.Model, Serial: part.ID}
	res.Facts.Partition = part.Partition
	reason := fmt.Sprintf("HSM %s, partition %s, model %q, manufacturer %q", part.ID, part.Partition, part.Model, part.Manufacturer)
	if part.Mode != "" {
		reason += ", " + part.Mode
	}
	return reason, nil
}
