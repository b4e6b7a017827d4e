package tpm_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keytrail/keytrail/attest"
	attesttpm "github.com/keytrail/keytrail/attest/tpm"
	"github.com/keytrail/keytrail/collectors/tpm"
	"github.com/keytrail/keytrail/evidence"
)

var quotePCRs = []int{0, 1, 2, 3, 7}

func verifier(t *testing.T, ak []byte) *attesttpm.Verifier {
	t.Helper()
	v, err := attesttpm.NewVerifier(attesttpm.Config{AttestationKeys: []attesttpm.AK{{Name: "test AK", Public: ak}},
		QuotePCRs: &attesttpm.PCRSelection{Bank: "sha256", PCRs: quotePCRs}})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func evidenceOf(r *evidence.TPMAttestation, key string) attesttpm.Evidence {
	return attesttpm.Evidence{Kind: r.Kind, Attest: r.Attest, Signature: r.Signature, AKPublic: r.AKPublic, KeyPublic: r.KeyPublic,
		PCRValues: r.PCRValues, Nonce: r.Nonce, LoggedAt: r.RecordTime(), ExpectedKey: key}
}

// exercise creates an AK and a key in t, certifies the key, quotes PCRs, and
// verifies both records with attest/tpm.
func exercise(t *testing.T, dev *tpm.TPM) {
	ctx := context.Background()
	ak, err := dev.CreateAK(ctx)
	if err != nil {
		t.Fatal(err)
	}
	key, err := dev.CreateKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := key.Ref("tpm:test/hot-1")
	if err != nil {
		t.Fatal(err)
	}
	// The AK is resident in the TPM that holds the EK: it activates a
	// credential made for its Name; a credential for another Name fails.
	if _, err := dev.EnrolAK(ctx, ak, tpm.EnrolOptions{}); err != nil {
		t.Fatalf("enrol AK: %v", err)
	}
	wrong := *ak
	wrong.Name = key.Name
	if _, err := dev.EnrolAK(ctx, &wrong, tpm.EnrolOptions{}); !errors.Is(err, tpm.ErrActivation) {
		t.Fatalf("a credential for another Name activated: %v", err)
	}
	v := verifier(t, ak.Public)
	cert, err := dev.Certify(ctx, ak, key, tpm.Nonce(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	res := v.Verify(evidenceOf(cert, ref.SPKISHA256))
	if !res.Verified || res.Strength != attest.TPMCertified {
		t.Fatalf("certify: verified=%v strength=%s: %v", res.Verified, res.Strength, res.Err())
	}
	q, err := dev.Quote(ctx, ak, quotePCRs, tpm.Nonce(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res := v.Verify(evidenceOf(q, "")); !res.Verified {
		t.Fatalf("quote: %v", res.Err())
	}
	// A quote over fewer PCRs than the policy's fails (ATTACKS.md 22), on a
	// real TPM's output too.
	q2, err := dev.Quote(ctx, ak, quotePCRs[:2], tpm.Nonce(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res := v.Verify(evidenceOf(q2, "")); res.Verified || res.Check(attesttpm.CheckPCRs).Status != attest.Fail {
		t.Fatalf("a quote over a subset verified: %+v", res.Checks)
	}
	// The key signs in the TPM.
	d := sha256.Sum256([]byte("smoke test"))
	sig, err := dev.Signer(key).Sign(nil, d[:], cryptoSHA256{})
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(key.PublicKey().(*ecdsa.PublicKey), d[:], sig) {
		t.Fatal("the TPM's signature does not verify")
	}
	dev.Flush(key)
	dev.Flush(ak)
}

func TestSimulator(t *testing.T) {
	if !tpm.SimulatorAvailable {
		if os.Getenv("CI") == "true" {
			t.Fatal("built without cgo (CI=true): the TPM simulator needs cgo, gcc and libssl-dev")
		}
		t.Skip("built without cgo: the simulator needs it")
	}
	dev, err := tpm.OpenSimulator(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	exercise(t, dev)
}

// need returns the path of a program, skipping without it (failing under CI=true).
func need(t *testing.T, prog, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (CI=true): apt-get install %s", prog, pkg)
		}
		t.Skipf("%s is not installed: apt-get install %s to run this test", prog, pkg)
	}
	return p
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startSwtpm starts swtpm with a fresh state directory on two free ports and
// stops it when the test ends. It returns the server port.
func startSwtpm(t *testing.T) int {
	t.Helper()
	return startSwtpmIn(t, t.TempDir())
}

func startSwtpmIn(t *testing.T, dir string) int {
	t.Helper()
	bin := need(t, "swtpm", "swtpm swtpm-tools")
	var port int
	for range 5 {
		port = freePort(t)
		if port < 65535 {
			if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1)); err == nil {
				l.Close()
				break
			}
		}
	}
	cmd := exec.Command(bin, "socket", "--tpm2", "--tpmstate", "dir="+dir,
		"--server", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port),
		"--ctrl", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port+1),
		"--flags", "not-need-init,startup-clear")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	for range 100 {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return port
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("swtpm did not start")
	return 0
}

func TestSwtpm(t *testing.T) {
	port := startSwtpm(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	dev, err := tpm.Dial(context.Background(), addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	exercise(t, dev)

	// A key made persistent is certified again from its handle over a new
	// connection, and its Name and public area are unchanged.
	ctx := context.Background()
	key, err := dev.CreateKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := dev.Persist(ctx, key, 0x81000010)
	if err != nil {
		t.Fatal(err)
	}
	dev.Close()
	dev2, err := tpm.Dial(ctx, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dev2.Close()
	again, err := dev2.LoadPersistent(ctx, 0x81000010)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Public, pk.Public) || !bytes.Equal(again.Name.Buffer, key.Name.Buffer) {
		t.Fatal("the persistent key is not the key made")
	}
	ak, err := dev2.CreateAK(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := again.Ref("tpm:test/persistent")
	cert, err := dev2.Certify(ctx, ak, again, tpm.Nonce(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res := verifier(t, ak.Public).Verify(evidenceOf(cert, ref.SPKISHA256)); !res.Verified {
		t.Fatalf("certify of the persistent key: %v", res.Err())
	}
	if _, err := dev2.Persist(ctx, again, 0x01000000); err == nil {
		t.Fatal("persisted outside the owner range")
	}
}

type cryptoSHA256 struct{}

func (cryptoSHA256) HashFunc() cryptoHash { return sha256Hash }

// TestTPM2Tools: tpm2-tools, a producer keytrail did not write, makes an AK and
// a key in swtpm, certifies and quotes; keytrail imports the files and
// verifies them.
func TestTPM2Tools(t *testing.T) {
	need(t, "tpm2_createak", "tpm2-tools")
	port := startSwtpm(t)
	dir := t.TempDir()
	env := append(os.Environ(), fmt.Sprintf("TPM2TOOLS_TCTI=swtpm:host=127.0.0.1,port=%d", port))
	// swtpm has no resource manager: flush transient objects and sessions
	// after each command, as tpm2-abrmd would.
	tool := func(args ...string) {
		t.Helper()
		for _, a := range [][]string{args, {"tpm2_flushcontext", "-t"}, {"tpm2_flushcontext", "-s"}} {
			cmd := exec.Command(a[0], a[1:]...)
			cmd.Dir, cmd.Env = dir, env
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", strings.Join(a, " "), err, out)
			}
		}
	}
	nonce := strings.Repeat("ab", 32)
	tool("tpm2_createek", "-c", "ek.ctx", "-G", "ecc")
	tool("tpm2_createak", "-C", "ek.ctx", "-c", "ak.ctx", "-G", "ecc", "-g", "sha256", "-s", "ecdsa", "-u", "ak.pub")
	tool("tpm2_createprimary", "-C", "o", "-g", "sha256", "-G", "ecc", "-c", "srk.ctx")
	tool("tpm2_create", "-C", "srk.ctx", "-G", "ecc256:ecdsa", "-u", "key.pub", "-r", "key.priv",
		"-a", "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign")
	tool("tpm2_load", "-C", "srk.ctx", "-u", "key.pub", "-r", "key.priv", "-c", "key.ctx")
	tool("tpm2_certify", "-c", "key.ctx", "-C", "ak.ctx", "-g", "sha256", "-o", "certify.attest", "-s", "certify.sig")
	tool("tpm2_quote", "-c", "ak.ctx", "-l", "sha256:0,1,2,3,7", "-q", nonce+"01", "-m", "quote.msg", "-s", "quote.sig", "-g", "sha256")
	tool("tpm2_pcrread", "sha256:0,1,2,3,7", "-o", "pcrs.bin")

	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	nb := func(s string) []byte { var b []byte; fmt.Sscanf(s, "%x", &b); return b }
	cert, err := tpm.Import(tpm.Files{Kind: evidence.TPMKindCertify, Attest: read("certify.attest"), Signature: read("certify.sig"),
		AKPublic: read("ak.pub"), KeyPublic: read("key.pub"), Nonce: []byte{0, 0xff, 0x55, 0xaa}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	v := verifier(t, read("ak.pub"))
	res := v.Verify(evidenceOf(cert, ""))
	if !res.Verified || res.Strength != attest.TPMCertified || res.Facts.KeyDigest == "" {
		t.Fatalf("tpm2_certify: verified=%v %s: %v", res.Verified, res.Strength, res.Err())
	}
	q, err := tpm.Import(tpm.Files{Kind: evidence.TPMKindQuote, Attest: read("quote.msg"), Signature: read("quote.sig"),
		AKPublic: read("ak.pub"), PCRValues: read("pcrs.bin"), Nonce: nb(nonce + "01")}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res := v.Verify(evidenceOf(q, "")); !res.Verified {
		t.Fatalf("tpm2_quote: %v", res.Err())
	}
	// The quote with the certification's nonce is a replay.
	q.Nonce = nb(nonce)
	if res := v.Verify(evidenceOf(q, "")); res.Verified {
		t.Fatal("a quote verified with another nonce")
	}
}

// manufacture has swtpm_setup make a TPM state with an RSA EK and its
// certificate, issued by a local CA in a temporary directory. It returns the
// state directory and the CA's root and issuer certificates.
func manufacture(t *testing.T) (state string, root, issuer *x509.Certificate) {
	t.Helper()
	need(t, "swtpm_setup", "swtpm-tools")
	need(t, "swtpm_localca", "swtpm-tools")
	dir := t.TempDir()
	state, ca := filepath.Join(dir, "state"), filepath.Join(dir, "ca")
	for _, d := range []string{state, ca} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"localca.conf":    fmt.Sprintf("statedir = %[1]s\nsigningkey = %[1]s/signkey.pem\nissuercert = %[1]s/issuercert.pem\ncertserial = %[1]s/certserial\n", ca),
		"localca.options": "--platform-manufacturer keytrail\n--platform-version 2.1\n--platform-model test\n",
		"setup.conf":      fmt.Sprintf("create_certs_tool = swtpm_localca\ncreate_certs_tool_config = %[1]s/localca.conf\ncreate_certs_tool_options = %[1]s/localca.options\n", dir),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("swtpm_setup", "--tpm2", "--tpmstate", state, "--create-ek-cert", "--config", filepath.Join(dir, "setup.conf"), "--overwrite").CombinedOutput()
	if err != nil {
		t.Fatalf("swtpm_setup: %v\n%s", err, out)
	}
	cert := func(name string) *x509.Certificate {
		b, err := os.ReadFile(filepath.Join(ca, name))
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			t.Fatalf("%s: no PEM", name)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	return state, cert("swtpm-localca-rootca-cert.pem"), cert("issuercert.pem")
}

// TestSwtpmEKCertificate: a TPM manufactured with an EK certificate (by
// swtpm_setup) enrols its AK only if the certificate chains to the given root
// and certifies the EK that activates the credential.
func TestSwtpmEKCertificate(t *testing.T) {
	state, root, issuer := manufacture(t)
	port := startSwtpmIn(t, state)
	dev, err := tpm.Dial(context.Background(), fmt.Sprintf("127.0.0.1:%d", port), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	ctx := context.Background()
	ak, err := dev.CreateAK(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e, err := dev.EnrolAK(ctx, ak, tpm.EnrolOptions{Roots: []*x509.Certificate{root}, Intermediates: []*x509.Certificate{issuer}})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.EKCertificate) == 0 || len(e.EKChain) != 3 || !e.EKChain[2].Equal(root) {
		t.Fatalf("enrolment %d-byte certificate, chain of %d", len(e.EKCertificate), len(e.EKChain))
	}
	// Judged before the certificates were issued, or under another root: not enrolled.
	if _, err := dev.EnrolAK(ctx, ak, tpm.EnrolOptions{Roots: []*x509.Certificate{root}, Intermediates: []*x509.Certificate{issuer},
		At: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)}); !errors.Is(err, tpm.ErrEKCertificate) {
		t.Fatalf("enrolled against a chain not yet valid: %v", err)
	}
	other, _, _ := manufactureRoot(t)
	if _, err := dev.EnrolAK(ctx, ak, tpm.EnrolOptions{Roots: []*x509.Certificate{other}, Intermediates: []*x509.Certificate{issuer}}); !errors.Is(err, tpm.ErrEKCertificate) {
		t.Fatalf("enrolled against another root: %v", err)
	}
}

// manufactureRoot is a self-signed CA unrelated to any TPM.
func manufactureRoot(t *testing.T) (*x509.Certificate, crypto.Signer, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "not a TPM vendor"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	return c, k, err
}
