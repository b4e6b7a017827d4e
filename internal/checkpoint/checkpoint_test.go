package checkpoint_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/internal/checkpoint"
)

const origin = "keytrail.example/custody-log"

var (
	root32   = sha256.Sum256([]byte("root"))
	rootB64  = base64.StdEncoding.EncodeToString(root32[:])
	goodBody = origin + "\n7\n" + rootB64 + "\n"
)

// noteKey makes a signed-note key pair named name from a fixed seed byte, so
// signatures (Ed25519) are deterministic.
func noteKey(t testing.TB, name string, seed byte) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)), name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

func sign(t testing.TB, body string, signers ...note.Signer) []byte {
	t.Helper()
	b, err := note.Sign(&note.Note{Text: body}, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sigLine returns a raw signed-note signature line claiming name and hash.
func sigLine(name string, hash uint32, sig []byte) string {
	b := binary.BigEndian.AppendUint32(nil, hash)
	return "\u2014 " + name + " " + base64.StdEncoding.EncodeToString(append(b, sig...)) + "\n"
}

func TestParseAccepts(t *testing.T) {
	for _, body := range []string{
		goodBody,
		origin + "\n0\n" + rootB64 + "\n",
		origin + "\n18446744073709551615\n" + rootB64 + "\n",
		origin + "\n7\n" + rootB64 + "\nextension one\nextension two\n",
	} {
		c, err := checkpoint.Parse([]byte(body))
		if err != nil {
			t.Errorf("Parse(%q): %v", body, err)
			continue
		}
		if got := string(c.Marshal()); got != body {
			t.Errorf("Marshal(Parse(%q)) = %q", body, got)
		}
		again, err := checkpoint.Parse(c.Marshal())
		if err != nil {
			t.Fatalf("Parse(Marshal(%v)): %v", c, err)
		}
		if d := cmp.Diff(c, again); d != "" {
			t.Errorf("Parse(Marshal(c)) differs (-want +got):\n%s", d)
		}
	}
}

// TestAttack09_LaxCheckpointSyntax: ATTACKS.md case 9. Every body here is
// rejected by Parse, and by Open even when the log really signed it.
func TestAttack09_LaxCheckpointSyntax(t *testing.T) {
	short := base64.StdEncoding.EncodeToString(root32[:31])
	long := base64.StdEncoding.EncodeToString(append(root32[:], 0))
	// The last character before "=" carries 2 unused bits; setting one keeps
	// the decoded bytes of a lax decoder the same.
	nonCanonical := rootB64[:42] + string(rune(rootB64[42]+1)) + "="
	if b, err := base64.StdEncoding.DecodeString(nonCanonical); err != nil || !bytes.Equal(b, root32[:]) {
		t.Fatalf("test setup: %q is not a lax spelling of the root (%v)", nonCanonical, err)
	}
	tests := []struct {
		name, body string
	}{
		{"size with leading zeros", origin + "\n007\n" + rootB64 + "\n"},
		{"size 00", origin + "\n00\n" + rootB64 + "\n"},
		{"size with plus sign", origin + "\n+7\n" + rootB64 + "\n"},
		{"negative size", origin + "\n-1\n" + rootB64 + "\n"},
		{"empty size", origin + "\n\n" + rootB64 + "\n"},
		{"size with space", origin + "\n 7\n" + rootB64 + "\n"},
		{"hex size", origin + "\n0x7\n" + rootB64 + "\n"},
		{"size overflows uint64", origin + "\n18446744073709551616\n" + rootB64 + "\n"},
		{"root of 31 bytes", origin + "\n7\n" + short + "\n"},
		{"root of 33 bytes", origin + "\n7\n" + long + "\n"},
		{"empty root", origin + "\n7\n\n"},
		{"non-canonical base64 root", origin + "\n7\n" + nonCanonical + "\n"},
		{"unpadded root", origin + "\n7\n" + strings.TrimRight(rootB64, "=") + "\n"},
		{"URL-safe base64 root", origin + "\n7\n" + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 32)) + "\n"},
		{"root with carriage return", origin + "\n7\n" + rootB64[:10] + "\r" + rootB64[10:] + "\n"},
		{"root with trailing carriage return", origin + "\n7\n" + rootB64 + "\r\n"},
		{"empty extension line", origin + "\n7\n" + rootB64 + "\n\n"},
		{"empty extension line between two", origin + "\n7\n" + rootB64 + "\none\n\ntwo\n"},
		{"missing trailing newline", origin + "\n7\n" + rootB64},
		{"empty origin", "\n7\n" + rootB64 + "\n"},
		{"no root line", origin + "\n7\n"},
		{"empty body", ""},
	}
	signer, verifier := noteKey(t, "log.example", 1)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := checkpoint.Parse([]byte(tt.body)); !errors.Is(err, checkpoint.ErrSyntax) {
				t.Errorf("Parse(%q) = %v, %v; want an error wrapping ErrSyntax", tt.body, c, err)
			}
			signed, err := note.Sign(&note.Note{Text: tt.body}, signer)
			if err != nil {
				return // note.Sign refuses it already (no trailing newline, control characters)
			}
			if c, _, err := checkpoint.Open(signed, origin, verifier); err == nil {
				t.Errorf("Open accepted a signed lax body %q as %v", tt.body, c)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	logS, logV := noteKey(t, "log.example", 1)
	sameNameS, _ := noteKey(t, "log.example", 2) // another key, the log's name
	witnessS, _ := noteKey(t, "witness.example", 3)

	good := sign(t, goodBody, logS)
	// A signature line claiming the log's name and key hash that does not verify.
	bad := sigLine(logV.Name(), logV.KeyHash(), make([]byte, 64))
	// Insert extra signature lines before or after the log's.
	before := func(extra string) []byte {
		return []byte(goodBody + "\n" + extra + string(good[len(goodBody)+1:]))
	}
	after := func(extra string) []byte { return append(bytes.Clone(good), extra...) }

	tests := []struct {
		name    string
		signed  []byte
		origin  string
		wantErr error // nil: accepted
	}{
		{"signed by the log", good, origin, nil},
		{"wrong origin", good, "keytrail.example/other-log", checkpoint.ErrOrigin},
		{"unsigned body", []byte(goodBody), origin, checkpoint.ErrSignature},
		{"signed by another key with the log's name", sign(t, goodBody, sameNameS), origin, checkpoint.ErrSignature},
		{"signed only by a witness", sign(t, goodBody, witnessS), origin, checkpoint.ErrSignature},
		// ATTACKS.md case 8: unknown signers are ignored, not errors and not counted.
		{"log and another key with the log's name", sign(t, goodBody, logS, sameNameS), origin, nil},
		{"log and a witness", sign(t, goodBody, witnessS, logS), origin, nil},
		{"log and an unknown line with the log's key hash under another name", after(sigLine("witness.example", logV.KeyHash(), make([]byte, 64))), origin, nil},
		{"log and an unknown line with the log's name and another key hash", after(sigLine(logV.Name(), logV.KeyHash()+1, make([]byte, 64))), origin, nil},
		{"log's signature twice", after(string(good[len(goodBody)+1:])), origin, nil},
		// A line claiming the log's name and key hash must verify, wherever it is.
		{"only a bad signature claiming the log's key", []byte(goodBody + "\n" + bad), origin, checkpoint.ErrSignature},
		{"bad signature claiming the log's key before the good one", before(bad), origin, checkpoint.ErrSignature},
		{"bad signature claiming the log's key after the good one", after(bad), origin, checkpoint.ErrSignature},
		{"lax body signed by the log", sign(t, origin+"\n007\n"+rootB64+"\n", logS), origin, checkpoint.ErrSyntax},
		{"too large", sign(t, goodBody+strings.Repeat("x\n", checkpoint.MaxBytes/2), logS), origin, checkpoint.ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, n, err := checkpoint.Open(tt.signed, tt.origin, logV)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if c.Size != 7 || !bytes.Equal(c.Root, root32[:]) || n == nil {
					t.Errorf("Open = %v, %v", c, n)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Open = %v, %v; want an error wrapping %v", c, err, tt.wantErr)
			}
		})
	}
}

func ExampleParse() {
	body := "example.com/log\n42\nqUnWzT2kyFe9Mi9oNa5C+HnHtC8wFWTSNXdTGuQQ6u0=\n"
	c, err := checkpoint.Parse([]byte(body))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Origin, c.Size, len(c.Root))
	fmt.Println(string(c.Marshal()) == body)

	_, err = checkpoint.Parse([]byte("example.com/log\n042\nqUnWzT2kyFe9Mi9oNa5C+HnHtC8wFWTSNXdTGuQQ6u0=\n"))
	fmt.Println(err)
	// Output:
	// example.com/log 42 32
	// true
	// checkpoint syntax: size "042" is not a decimal number without leading zeros
}

func ExampleOpen() {
	// The log's signed-note key; a real log publishes only the verifier key.
	skey, vkey, _ := note.GenerateKey(rand.Reader, "example.com/log")
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)

	body := checkpoint.Checkpoint{Origin: "example.com/log", Size: 3, Root: make([]byte, 32)}.Marshal()
	signed, _ := note.Sign(&note.Note{Text: string(body)}, signer)

	c, _, err := checkpoint.Open(signed, "example.com/log", verifier)
	fmt.Println(c, err)

	_, _, err = checkpoint.Open(body, "example.com/log", verifier)
	fmt.Println(errors.Is(err, checkpoint.ErrSignature))
	// Output:
	// example.com/log@3 root=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= <nil>
	// true
}

// FuzzParse: Parse never panics, and every body it accepts round-trips exactly
// (one checkpoint, one spelling).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		goodBody,
		origin + "\n0\n" + rootB64 + "\n",
		origin + "\n7\n" + rootB64 + "\next\n",
		origin + "\n007\n" + rootB64 + "\n",
		origin + "\n7\n" + rootB64 + "\r\n",
		origin + "\n7\n" + rootB64,
		"\n\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := checkpoint.Parse(body)
		if err != nil {
			if !errors.Is(err, checkpoint.ErrSyntax) {
				t.Fatalf("Parse error does not wrap ErrSyntax: %v", err)
			}
			return
		}
		if got := c.Marshal(); !bytes.Equal(got, body) {
			t.Fatalf("Marshal(Parse(%q)) = %q", body, got)
		}
		if len(c.Root) != 32 || c.Origin == "" {
			t.Fatalf("Parse accepted %q as %v", body, c)
		}
	})
}

// A cosignature that claims a trusted witness's key name and key hash but does
// not verify is an error wherever it is, as for the log's own key; a stranger
// under a witness's name is ignored and not counted.
func TestOpenWitnessedBadCosignature(t *testing.T) {
	logS, logV := noteKey(t, "log.example", 1)
	skey, vkey, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{4}, 32)), "witness.example")
	if err != nil {
		t.Fatal(err)
	}
	wS, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	cv, err := fnote.VKeyToCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	wV, err := fnote.NewVerifierForCosignatureV1(cv)
	if err != nil {
		t.Fatal(err)
	}
	strangerS, _ := noteKey(t, "witness.example", 5)
	good := sign(t, goodBody, logS, wS)
	bad := sigLine(wV.Name(), wV.KeyHash(), make([]byte, 72))
	for _, tt := range []struct {
		name    string
		signed  []byte
		wantErr error
	}{
		{"log and witness", good, nil},
		{"log, witness and a stranger with the witness's name", sign(t, goodBody, logS, strangerS, wS), nil},
		{"log and a stranger with the witness's name", sign(t, goodBody, logS, strangerS), checkpoint.ErrWitnessQuorum},
		{"witness only", sign(t, goodBody, wS), checkpoint.ErrSignature},
		{"bad cosignature after the good one", append(bytes.Clone(good), bad...), checkpoint.ErrSignature},
		{"bad cosignature before the good one", []byte(goodBody + "\n" + bad + string(good[len(goodBody)+1:])), checkpoint.ErrSignature},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := checkpoint.OpenWitnessed(tt.signed, origin, logV, []note.Verifier{wV}, 1)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("OpenWitnessed = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
