// Package strictjson decodes untrusted JSON the one way keytrail accepts it.
//
// Every record, bundle and trust file keytrail reads is decoded here, so that two
// parsers can never disagree about what a signed document says (in-toto
// specification#74, golang/go#48298). Decoding fails on:
//   - duplicate object member names;
//   - member names that match a field only case-insensitively ("Subject" for "subject");
//   - members the target type does not declare;
//   - invalid UTF-8, trailing data, and input over the caller's byte limit.
//
// Nesting is bounded by the target types (the decoder's own limit is 10000).
//
// It is a thin layer over github.com/go-json-experiment/json (the prototype of
// encoding/json/v2), whose defaults already reject duplicates and match names
// case-sensitively.
package strictjson

import (
	"errors"
	"fmt"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// ErrTooLarge reports input over the caller's byte limit.
var ErrTooLarge = errors.New("strictjson: input too large")

// Unmarshal decodes data into v, which must be a pointer. maxBytes bounds the
// input; it is checked before any decoding.
func Unmarshal(data []byte, v any, maxBytes int) error {
	if len(data) > maxBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), maxBytes)
	}
	return json.Unmarshal(data, v,
		json.RejectUnknownMembers(true),
		json.MatchCaseInsensitiveNames(false),
		jsontext.AllowDuplicateNames(false),
		jsontext.AllowInvalidUTF8(false),
	)
}

// Marshal encodes v compactly with fields in declaration order. Output is
// deterministic for the types keytrail defines (no maps with unordered keys
// are left unsorted).
func Marshal(v any) ([]byte, error) {
	return json.Marshal(v, json.Deterministic(true))
}

// MarshalIndent encodes v for people to read.
func MarshalIndent(v any) ([]byte, error) {
	return json.Marshal(v, json.Deterministic(true), jsontext.WithIndent("  "))
}
