package kmspolicy

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
)

func TestKeyRefFromAWSPublicKey(t *testing.T) {
	f := readFile(t, "aws/hot-1-eusc/get-public-key.json")
	k, err := KeyRefFromAWSPublicKey(f)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := base64.StdEncoding.DecodeString("MFYwEAYHKoZIzj0CAQYFK4EEAAoDQgAEEC9CLlfF48kvONIPEg6ms10wNtszH9ZW+VzWKsdYQiUlXI/v2xrSv8Uvhlj+G8EnlmOD4pVo3dyvsD5O0wOlHw==")
	sum := sha256.Sum256(der)
	if k.ID != testARN || k.SPKISHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("KeyRef %+v", k)
	}

	bad := map[string]error{
		`{"KeyId":"` + testARN + `","PublicKey":"not base64!"}`:                                               ErrMalformed,
		`{"KeyId":"` + testARN + `","PublicKey":"` + base64.StdEncoding.EncodeToString([]byte("x")) + `"}`:    ErrMalformed,
		`{"KeyId":"alias/hot-1","PublicKey":"` + base64.StdEncoding.EncodeToString(der) + `"}`:                ErrMalformed,
		`{"KeyId":"` + testARN + `","PublicKey":"` + base64.StdEncoding.EncodeToString(append(der, 0)) + `"}`: ErrMalformed,
		`{"KeyId":"` + testARN + `","KeyId":"` + testARN + `"}`:                                               ErrMalformed,
	}
	for in, want := range bad {
		if _, err := KeyRefFromAWSPublicKey(File{Name: "pk.json", Data: []byte(in)}); !errors.Is(err, want) {
			t.Errorf("KeyRefFromAWSPublicKey(%.60s): %v, want %v", in, err, want)
		}
	}
}

func TestKeyRefFromPEM(t *testing.T) {
	f := readFile(t, "gcp/hot-signer/public-key.pem")
	k, err := KeyRefFromPEM(gcpVersion, f)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(f.Data)
	sum := sha256.Sum256(block.Bytes)
	if k.ID != gcpVersion || k.SPKISHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("KeyRef %+v", k)
	}
	bad := []string{
		"",
		string(f.Data) + "trailing",
		strings.Replace(string(f.Data), "PUBLIC KEY", "EC PRIVATE KEY", 2),
		string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{0x30, 0x00}})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: map[string]string{"a": "b"}, Bytes: block.Bytes})),
	}
	for _, in := range bad {
		if _, err := KeyRefFromPEM(gcpVersion, File{Name: "k.pem", Data: []byte(in)}); !errors.Is(err, ErrMalformed) {
			t.Errorf("KeyRefFromPEM(%.40q): %v, want ErrMalformed", in, err)
		}
	}
	if _, err := KeyRefFromPEM("bad id with spaces", f); err == nil {
		t.Error("invalid key id accepted")
	}
}
