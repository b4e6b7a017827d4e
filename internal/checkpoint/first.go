package checkpoint

import (
	"bytes"
	"fmt"
)

// FirstSignature returns the signed note signed with only its first
// signature line. A checkpoint keytrail's ledger publishes carries the log's
// signature first and any witnesses' cosignatures after it, so this is the
// checkpoint as the log signed it. It checks the syntax, not the signature.
func FirstSignature(signed []byte) ([]byte, error) {
	if _, err := ParseUnverified(signed); err != nil {
		return nil, err
	}
	i := bytes.Index(signed, []byte("\n\n"))
	end := bytes.IndexByte(signed[i+2:], '\n')
	if end < 0 {
		return nil, fmt.Errorf("%w: no signature line", ErrSyntax)
	}
	return bytes.Clone(signed[:i+2+end+1]), nil
}
