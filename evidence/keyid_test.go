package evidence

import (
	"regexp"
	"strings"
	"testing"
)

// keyIDRegexp is the key ID syntax keyIDPattern matches by hand.
var keyIDRegexp = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/@=+%-]{0,254}$`)

var keyIDSeeds = []string{
	"", "a", "Z", "0", "-", ".a", "a.", "a b", "a\n", "\na", "a\x00", "é", "aé",
	"projects/p/locations/eu/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1",
	"arn:aws-eusc:kms:eusc-de-east-1:210987654321:key/1234abcd-4f7d-4e8a-9b3c-5d2f1a0e9c71",
	"pkcs11:token=hsm1;object=k%201", "pkcs11:token=hsm1/object=k%201+x@y_z",
	strings.Repeat("a", 254), strings.Repeat("a", 255), strings.Repeat("a", 256),
	"a" + strings.Repeat("-", 254), "a" + strings.Repeat("-", 255),
	"a!", "a#", "a$", "a&", "a'", "a(", "a*", "a,", "a;", "a<", "a>", "a?", "a[", "a\\", "a^", "a`", "a{", "a|", "a~",
}

func TestKeyIDPatternIsTheRegexp(t *testing.T) {
	for _, s := range keyIDSeeds {
		if got, want := keyIDPattern.MatchString(s), keyIDRegexp.MatchString(s); got != want {
			t.Errorf("keyIDPattern.MatchString(%q) = %v, the regexp says %v", s, got, want)
		}
	}
	// Every byte in every position of a short ID.
	for c := 0; c < 256; c++ {
		for _, s := range []string{string([]byte{byte(c)}), "a" + string([]byte{byte(c)}), string([]byte{byte(c)}) + "a", "a" + string([]byte{byte(c)}) + "a"} {
			if got, want := keyIDPattern.MatchString(s), keyIDRegexp.MatchString(s); got != want {
				t.Errorf("keyIDPattern.MatchString(%q) = %v, the regexp says %v", s, got, want)
			}
		}
	}
}

func FuzzKeyIDPattern(f *testing.F) {
	for _, s := range keyIDSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := keyIDPattern.MatchString(s), keyIDRegexp.MatchString(s); got != want {
			t.Fatalf("keyIDPattern.MatchString(%q) = %v, the regexp says %v", s, got, want)
		}
	})
}
