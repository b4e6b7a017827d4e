package pkcs11

import (
	"errors"
	"testing"
)

func TestParseURI(t *testing.T) {
	u, err := ParseURI("pkcs11:token=custody;object=hot%201;type=private;id=%01%02?pin-value=1234&module-path=/usr/lib/softhsm/libsofthsm2.so")
	if err != nil {
		t.Fatal(err)
	}
	if u.Path["token"] != "custody" || u.Path["object"] != "hot 1" || u.Path["id"] != "\x01\x02" || u.Query["pin-value"] != "1234" ||
		u.Query["module-path"] != "/usr/lib/softhsm/libsofthsm2.so" {
		t.Fatalf("%+v", u)
	}
	if got := u.Redacted(); got != "pkcs11:token=custody;object=hot%201;type=private;id=%01%02?module-path=/usr/lib/softhsm/libsofthsm2.so" {
		t.Fatalf("Redacted = %s", got)
	}
	for _, bad := range []string{
		"", "pkcs11", "http://x", "pkcs11:tokne=x", "pkcs11:token=a;token=b", "pkcs11:token=a%2", "pkcs11:token=a%zz",
		"pkcs11:token", "pkcs11:=x", "pkcs11:type=secret", "pkcs11:token=a b", "pkcs11:?pin-value=1&pin-source=f",
		"pkcs11:token=a?object=b", "pkcs11:token=a;", "pkcs11:token=ä",
	} {
		if _, err := ParseURI(bad); !errors.Is(err, ErrURI) {
			t.Errorf("ParseURI(%q) = %v, want ErrURI", bad, err)
		}
	}
}

// FuzzParseURI: never panics; String of a parsed URI parses to the same URI,
// and is a fixed point.
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{"pkcs11:token=custody;object=hot-1;type=private", "pkcs11:id=%01%ff?pin-source=file:/x&module-name=softhsm2",
		"pkcs11:", "pkcs11:serial=0a1b;model=SoftHSM%20v2;manufacturer=SoftHSM%20project;slot-id=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURI(s)
		if err != nil {
			return
		}
		c := u.String()
		u2, err := ParseURI(c)
		if err != nil {
			t.Fatalf("String() %q does not parse: %v", c, err)
		}
		if u2.String() != c || len(u2.Path) != len(u.Path) || len(u2.Query) != len(u.Query) {
			t.Fatalf("round trip %q -> %q -> %q", s, c, u2.String())
		}
		for k, v := range u.Path {
			if u2.Path[k] != v {
				t.Fatalf("path %s: %q != %q", k, v, u2.Path[k])
			}
		}
	})
}
