//go:build cgo

package pkcs11_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keytrail/keytrail/attest"
	attestp11 "github.com/keytrail/keytrail/attest/pkcs11"
	"github.com/keytrail/keytrail/collectors/pkcs11"
	"github.com/keytrail/keytrail/evidence"
)

// softHSM makes a fresh SoftHSM2 token "custody" (PIN 1234) in a temporary
// directory and returns the module path. Outside CI it skips without SoftHSM2;
// under CI=true it fails.
func softHSM(t *testing.T) string {
	t.Helper()
	var module string
	for _, m := range []string{"/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so", "/usr/local/lib/softhsm/libsofthsm2.so"} {
		if _, err := os.Stat(m); err == nil {
			module = m
			break
		}
	}
	_, utilErr := exec.LookPath("softhsm2-util")
	if module == "" || utilErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("SoftHSM2 is not installed (CI=true): apt-get install softhsm2")
		}
		t.Skip("SoftHSM2 is not installed: apt-get install softhsm2 (or brew install softhsm) to run this test")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.Mkdir(filepath.Join(dir, "tokens"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	run(t, "softhsm2-util", "--init-token", "--free", "--label", "custody", "--pin", "1234", "--so-pin", "5678")
	return module
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// pkcs11Tool runs OpenSC's pkcs11-tool against the token, a producer keytrail
// did not write. Without it the test skips (fails under CI=true).
func pkcs11Tool(t *testing.T, module string, args ...string) {
	t.Helper()
	if _, err := exec.LookPath("pkcs11-tool"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("pkcs11-tool is not installed (CI=true): apt-get install opensc")
		}
		t.Skip("pkcs11-tool is not installed: apt-get install opensc")
	}
	run(t, "pkcs11-tool", append([]string{"--module", module, "--login", "--pin", "1234", "--token-label", "custody"}, args...)...)
}

func open(t *testing.T, module string) *pkcs11.Token {
	t.Helper()
	u, err := pkcs11.ParseURI("pkcs11:token=custody?pin-value=1234")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := pkcs11.Open(context.Background(), u, pkcs11.Options{Module: module})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tok.Close() })
	return tok
}

func collect(t *testing.T, tok *pkcs11.Token, uri string) *pkcs11.Collected {
	t.Helper()
	u, err := pkcs11.ParseURI(uri)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tok.Collect(context.Background(), u, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func verifyCollected(c *pkcs11.Collected) *attest.Result {
	return attestp11.Verify(attestp11.Evidence{Record: c.Record, LoggedAt: c.Record.RecordTime(), ExpectedKey: c.Key.SPKISHA256})
}

// Keys keytrail generates in SoftHSM2, of every kind, are collected with a
// proof of possession and verify as self-reported, non-exportable keys.
func TestSoftHSMKeytrailKeys(t *testing.T) {
	module := softHSM(t)
	tok := open(t, module)
	if info := tok.Info(); info.Label != "custody" || info.Model != "SoftHSM v2" || info.Serial == "" || info.Manufacturer == "" || info.FirmwareVersion == "" || info.LibraryVersion == "" {
		t.Fatalf("token info %+v", info)
	}
	for i, kind := range pkcs11.Kinds {
		t.Run(kind, func(t *testing.T) {
			label := "hot-" + strings.ToLower(kind)
			u, err := tok.GenerateKey(context.Background(), kind, label, []byte{byte(i + 1)})
			if err != nil {
				t.Fatal(err)
			}
			c := collect(t, tok, u.String())
			a := c.Record.Attributes
			if !a.Local || !a.NeverExtractable || !a.AlwaysSensitive || !a.Sensitive || a.Extractable || !a.Token || !a.Private || a.Label != label || a.Class != "PRIVATE_KEY" {
				t.Errorf("attributes %+v", a)
			}
			if a.KeyGenMechanism == "" || a.KeyGenMechanism == "CK_UNAVAILABLE_INFORMATION" {
				t.Errorf("keyGenMechanism %q", a.KeyGenMechanism)
			}
			if kind != pkcs11.KindRSA && a.Curve != kind {
				t.Errorf("curve %q, want %q", a.Curve, kind)
			}
			res := verifyCollected(c)
			if !res.Verified || res.Strength != attest.SelfReported {
				t.Fatalf("verified=%v strength=%s: %v", res.Verified, res.Strength, res.Err())
			}
			if !strings.Contains(c.Record.KeyURI, "object="+label) || c.Record.Token.Serial == "" || c.Key.ID != pkcs11.KeyID(c.Record.Token.Serial, label) {
				t.Errorf("record %s / %+v", c.Record.KeyURI, c.Record.Token)
			}
		})
	}
}

// Keys made by OpenSC's pkcs11-tool: generated ones verify; an imported key
// (LOCAL=0) and a once-extractable key (NEVER_EXTRACTABLE=0) are collected
// faithfully and fail the non-export policy (ATTACKS.md 26).
func TestSoftHSMPkcs11ToolKeys(t *testing.T) {
	module := softHSM(t)
	for i, kt := range []string{"EC:prime256v1", "EC:secp384r1", "EC:secp256k1", "EC:edwards25519", "rsa:2048"} {
		pkcs11Tool(t, module, "--keypairgen", "--key-type", kt, "--label", "tool-"+kt, "--id", "a"+string(rune('0'+i)), "--sensitive")
	}
	pkcs11Tool(t, module, "--keypairgen", "--key-type", "EC:prime256v1", "--label", "once-extractable", "--id", "b0", "--extractable")
	// An imported key: made outside, written in.
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	dir := t.TempDir()
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	pub, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, "pub.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600)
	pkcs11Tool(t, module, "--write-object", filepath.Join(dir, "key.pem"), "--type", "privkey", "--label", "imported", "--id", "c0", "--usage-sign", "--sensitive")
	pkcs11Tool(t, module, "--write-object", filepath.Join(dir, "pub.pem"), "--type", "pubkey", "--label", "imported", "--id", "c0")

	tok := open(t, module)
	for _, kt := range []string{"EC:prime256v1", "EC:secp384r1", "EC:secp256k1", "EC:edwards25519", "rsa:2048"} {
		t.Run(kt, func(t *testing.T) {
			u := &pkcs11.URI{Path: map[string]string{"token": "custody", "object": "tool-" + kt, "type": "private"}}
			c := collect(t, tok, u.String())
			res := verifyCollected(c)
			if res.Strength != attest.SelfReported || res.Check(attestp11.CheckPossession).Status != attest.Pass {
				t.Fatalf("strength %s: %v", res.Strength, res.Err())
			}
			if !c.Record.Attributes.Local {
				t.Errorf("a generated key with LOCAL=0: %+v", c.Record.Attributes)
			}
			t.Logf("%s: verified=%v %+v", kt, res.Verified, c.Record.Attributes)
		})
	}
	for _, tc := range []struct{ label, want string }{{"imported", "LOCAL=0"}, {"once-extractable", "NEVER_EXTRACTABLE=0"}} {
		c := collect(t, tok, "pkcs11:token=custody;object="+tc.label)
		res := verifyCollected(c)
		ch := res.Check(attest.CheckNonExport)
		if res.Verified || ch == nil || !errors.Is(ch.Err(), attest.ErrPolicy) || !strings.Contains(ch.Reason, tc.want) {
			t.Errorf("%s: verified=%v %+v", tc.label, res.Verified, ch)
		}
		if res.Strength != attest.SelfReported || res.Check(attestp11.CheckPossession).Status != attest.Pass {
			t.Errorf("%s: strength %s", tc.label, res.Strength)
		}
	}
	// Looking up a key that is not there, or is ambiguous, fails.
	u, _ := pkcs11.ParseURI("pkcs11:token=custody;object=nope")
	if _, err := tok.Collect(context.Background(), u, time.Now()); err == nil {
		t.Error("collected a missing key")
	}
	u, _ = pkcs11.ParseURI("pkcs11:token=elsewhere?pin-value=1234")
	if _, err := pkcs11.Open(context.Background(), u, pkcs11.Options{Module: module}); err == nil || !strings.Contains(err.Error(), "no token matches") {
		t.Errorf("opened a missing token: %v", err)
	}
}

// A P-256 key in SoftHSM2 signs as a crypto.Signer: DER signatures that
// crypto/ecdsa verifies; non-EC keys are refused.
func TestSoftHSMSigner(t *testing.T) {
	module := softHSM(t)
	tok := open(t, module)
	ctx := context.Background()
	u, err := tok.GenerateKey(ctx, pkcs11.KindP256, "signer-1", []byte("signer-1"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := tok.Signer(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	c := collect(t, tok, u.String())
	if d, err := evidence.KeyDigest(s.Public()); err != nil || d != c.Key.SPKISHA256 {
		t.Fatalf("signer key %s (%v), collected %s", d, err, c.Key.SPKISHA256)
	}
	digest := sha256.Sum256([]byte("settlement instruction"))
	sig, err := s.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(s.Public().(*ecdsa.PublicKey), digest[:], sig) {
		t.Fatal("signature does not verify")
	}
	if _, err := s.Sign(rand.Reader, digest[:5], crypto.SHA256); err == nil {
		t.Fatal("a short digest was signed")
	}
	ru, err := tok.GenerateKey(ctx, pkcs11.KindRSA, "signer-rsa", []byte("signer-rsa"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tok.Signer(ctx, ru); err == nil || !strings.Contains(err.Error(), "not an EC key") {
		t.Fatalf("RSA key: %v", err)
	}
}
