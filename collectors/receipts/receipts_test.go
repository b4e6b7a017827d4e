package receipts_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keytrail/keytrail/collectors/receipts"
	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/strictjson"
	"github.com/keytrail/keytrail/verify/receipt"
)

// Every sample file is collected whole, and each record is a statement that
// the collector signed, about the key that signed the receipt, which an
// auditor verifies again from the envelope alone and the trusted key.
func TestSampleFiles(t *testing.T) {
	entries, keys := sampleKeys(t)
	c := newCollector(t, keys, receipt.Options{})
	signer := collectorSigner(t)
	digests := map[string]string{}
	for _, e := range entries {
		digests[e.KeyID] = e.SPKISHA256
	}
	for file, want := range map[string]int{"ethereum.jsonl": 6, "bitcoin.jsonl": 4, "solana.jsonl": 3, "p256.jsonl": 3} {
		t.Run(file, func(t *testing.T) {
			in := sample(t, file)
			recs, err := collectAll(c, in)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != want || len(recs) != bytes.Count(in, []byte("\n")) {
				t.Fatalf("%d records, want %d", len(recs), want)
			}
			for i, r := range recs {
				if r.Line != i+1 || r.Key.SPKISHA256 != digests[r.Key.ID] {
					t.Errorf("record %d: line %d key %+v", i, r.Line, r.Key)
				}
				st, p := openRecord(t, signer, r.Envelope)
				if st.PredicateType != evidence.PredicateSigningReceipt || st.Subject[0].Name != r.Key.ID {
					t.Errorf("line %d: statement %s about %v", r.Line, st.PredicateType, st.Subject)
				}
				res, err := receipt.VerifyStatement(keys[r.Key.ID], st, p, receipt.Options{})
				if err != nil {
					t.Errorf("line %d: the auditor's check fails: %v", r.Line, err)
					continue
				}
				if p.(*evidence.SigningReceipt).RequestID != r.Receipt.RequestID || res.HighS != r.Result.HighS {
					t.Errorf("line %d: statement and record disagree", r.Line)
				}
			}
			if file == "p256.jsonl" && !recs[1].Result.HighS {
				t.Error("the high-S P-256 receipt is not reported")
			}
		})
	}
}

// ATTACKS.md case 28: high-S secp256k1 receipts fail by default, naming the
// line, and are collected, reported, only when the policy allows them.
func TestHighSFile(t *testing.T) {
	_, keys := sampleKeys(t)
	in := sample(t, "high-s.jsonl")
	_, err := collectAll(newCollector(t, keys, receipt.Options{}), in)
	var le *receipts.LineError
	if !errors.Is(err, receipt.ErrHighS) || !errors.As(err, &le) || le.Line != 1 || le.Field != "signature" {
		t.Fatalf("Collect = %v, want ErrHighS on line 1, signature", err)
	}
	if !strings.Contains(err.Error(), "-high-s") {
		t.Errorf("error %q does not name the request", err)
	}
	t.Log(err)
	recs, err := collectAll(newCollector(t, keys, receipt.Options{AllowHighS: true}), in)
	if err != nil || len(recs) != 2 {
		t.Fatalf("with AllowHighS: %d records, %v", len(recs), err)
	}
	for _, r := range recs {
		if !r.Result.HighS {
			t.Errorf("line %d: high S not reported", r.Line)
		}
	}
}

// A key known only by its address names the subject by the recovered key.
func TestAddressOnlyKey(t *testing.T) {
	entries, _ := sampleKeys(t)
	e := entries[0]
	addr, err := receipt.NewAddressKey(e.Address)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := collectAll(newCollector(t, map[string]*receipt.Key{e.KeyID: addr}, receipt.Options{}), sample(t, "ethereum.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Key.SPKISHA256 != e.SPKISHA256 || r.Result.Address != e.Address {
			t.Errorf("line %d: subject %+v address %s", r.Line, r.Key, r.Result.Address)
		}
	}
}

// line is a valid Ethereum receipt line, edited by f.
func line(t testing.TB, f func(*receipts.Line)) string {
	t.Helper()
	first, _, _ := bytes.Cut(sample(t, "ethereum.jsonl"), []byte("\n"))
	var l receipts.Line
	if err := strictjson.Unmarshal(first, &l, 1<<20); err != nil {
		t.Fatal(err)
	}
	if f != nil {
		f(&l)
	}
	b, err := strictjson.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReaderErrors(t *testing.T) {
	good := line(t, nil)
	other := line(t, func(l *receipts.Line) { l.RequestID = "other" })
	edit := func(f func(*receipts.Line)) string { return line(t, f) }
	replace := func(old, new string) string {
		if !strings.Contains(good, old) {
			t.Fatalf("%q not in %s", old, good)
		}
		return strings.Replace(good, old, new, 1)
	}
	for _, c := range []struct {
		name  string
		in    string
		lim   receipts.Limits
		line  int
		field string
		err   error
	}{
		{"not JSON", "{", receipts.Limits{}, 1, "", receipts.ErrSyntax},
		{"array", "[]", receipts.Limits{}, 1, "", receipts.ErrSyntax},
		{"unknown member", replace(`{"keyId"`, `{"note":"x","keyId"`), receipts.Limits{}, 1, "note", receipts.ErrSyntax},
		{"case-variant member", replace(`"keyId"`, `"KeyId"`), receipts.Limits{}, 1, "KeyId", receipts.ErrSyntax},
		{"duplicate member", replace(`"scheme"`, `"digest":"00","scheme"`), receipts.Limits{}, 1, "digest", receipts.ErrSyntax},
		{"number for a string", replace(`"operator":"treasury-rebalancer"`, `"operator":5`), receipts.Limits{}, 1, "operator", receipts.ErrSyntax},
		{"trailing data", good + " {}", receipts.Limits{}, 1, "", receipts.ErrSyntax},
		{"missing requestId", edit(func(l *receipts.Line) { l.RequestID = "" }), receipts.Limits{}, 1, "requestId", receipts.ErrSyntax},
		{"missing time", edit(func(l *receipts.Line) { l.Time = "" }), receipts.Limits{}, 1, "time", receipts.ErrSyntax},
		{"bad keyId", edit(func(l *receipts.Line) { l.KeyID = "kms key" }), receipts.Limits{}, 1, "keyId", receipts.ErrSyntax},
		{"unknown scheme", edit(func(l *receipts.Line) { l.Scheme = "secp256k1" }), receipts.Limits{}, 1, "scheme", receipts.ErrSyntax},
		{"digest uppercase", edit(func(l *receipts.Line) { l.Digest = strings.ToUpper(l.Digest) }), receipts.Limits{}, 1, "digest", receipts.ErrSyntax},
		{"digest 0x", edit(func(l *receipts.Line) { l.Digest = "0x" + l.Digest[2:] }), receipts.Limits{}, 1, "digest", receipts.ErrSyntax},
		{"digest short", edit(func(l *receipts.Line) { l.Digest = l.Digest[:62] }), receipts.Limits{}, 1, "digest", receipts.ErrSyntax},
		{"signature 0x", edit(func(l *receipts.Line) { l.Signature = "0x" + l.Signature }), receipts.Limits{}, 1, "signature", receipts.ErrSyntax},
		{"signature base64", edit(func(l *receipts.Line) { l.Signature = "cBNN1GBjO3R6+Ig9MN/dcTJr2ulCRkWQH8NJGaAKgqM=" }), receipts.Limits{}, 1, "signature", receipts.ErrSyntax},
		{"signature odd", edit(func(l *receipts.Line) { l.Signature = l.Signature[1:] }), receipts.Limits{}, 1, "signature", receipts.ErrSyntax},
		{"signature oversized", edit(func(l *receipts.Line) { l.Signature = strings.Repeat("00", 73) }), receipts.Limits{}, 1, "signature", receipts.ErrSyntax},
		{"operator control", edit(func(l *receipts.Line) { l.Operator = "a\x1b[31mb" }), receipts.Limits{}, 1, "operator", receipts.ErrSyntax},
		{"requestId space", edit(func(l *receipts.Line) { l.RequestID = "req 1" }), receipts.Limits{}, 1, "requestId", receipts.ErrSyntax},
		{"requestId long", edit(func(l *receipts.Line) { l.RequestID = strings.Repeat("r", 257) }), receipts.Limits{}, 1, "requestId", receipts.ErrSyntax},
		{"chain not CAIP-2", edit(func(l *receipts.Line) { l.Chain = "ethereum" }), receipts.Limits{}, 1, "chain", receipts.ErrSyntax},
		{"txHash", edit(func(l *receipts.Line) { l.TxHash = "0x12 34" }), receipts.Limits{}, 1, "txHash", receipts.ErrSyntax},
		{"time offset", edit(func(l *receipts.Line) { l.Time = "2026-03-02T10:17:00.137+01:00" }), receipts.Limits{}, 1, "time", receipts.ErrSyntax},
		{"time not canonical", edit(func(l *receipts.Line) { l.Time = "2026-03-02T09:17:00.130Z" }), receipts.Limits{}, 1, "time", receipts.ErrSyntax},
		{"blank line", good + "\n\n" + other + "\n", receipts.Limits{}, 2, "", receipts.ErrSyntax},
		{"duplicate request", good + "\n" + other + "\n" + good + "\n", receipts.Limits{}, 3, "requestId", receipts.ErrDuplicate},
		{"line too long", good + "\n" + other + strings.Repeat(" ", 1000) + "\n", receipts.Limits{MaxLineBytes: 1000}, 2, "", receipts.ErrLimit},
		{"too many lines", good + "\n" + other + "\n", receipts.Limits{MaxLines: 1}, 2, "", receipts.ErrLimit},
	} {
		t.Run(c.name, func(t *testing.T) {
			rd := receipts.NewReader(strings.NewReader(c.in), c.lim)
			var err error
			for err == nil {
				_, err = rd.Next()
			}
			var le *receipts.LineError
			if !errors.Is(err, c.err) || !errors.As(err, &le) {
				t.Fatalf("err = %v, want a *LineError wrapping %v", err, c.err)
			}
			if le.Line != c.line || le.Field != c.field {
				t.Errorf("line %d field %q, want %d %q: %v", le.Line, le.Field, c.line, c.field, err)
			}
			if _, again := rd.Next(); again != err {
				t.Errorf("Next after an error = %v, want the same error", again)
			}
			t.Log(err)
		})
	}
}

func TestReaderLineEnds(t *testing.T) {
	a, b := line(t, nil), line(t, func(l *receipts.Line) { l.RequestID = "b" })
	for name, in := range map[string]string{
		"LF":                   a + "\n" + b + "\n",
		"CRLF":                 a + "\r\n" + b + "\r\n",
		"no final line end":    a + "\n" + b,
		"longest line allowed": a + "\n" + b + strings.Repeat(" ", 1000-len(b)) + "\n",
	} {
		rd := receipts.NewReader(strings.NewReader(in), receipts.Limits{MaxLineBytes: 1000, MaxLines: 2})
		n := 0
		for {
			r, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			n++
			if r.Line != n {
				t.Errorf("%s: line %d, want %d", name, r.Line, n)
			}
		}
		if n != 2 {
			t.Errorf("%s: %d receipts", name, n)
		}
	}
}

// endless is an input without end or line end.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	e.n += int64(len(p))
	return len(p), nil
}

// ATTACKS.md case 29: an endless line is refused after the limit, not read.
func TestReaderEndlessLine(t *testing.T) {
	src := &endless{}
	_, err := receipts.NewReader(src, receipts.Limits{}).Next()
	if !errors.Is(err, receipts.ErrLimit) {
		t.Fatalf("err = %v", err)
	}
	if src.n > 2*receipts.DefaultMaxLineBytes {
		t.Errorf("read %d bytes of an endless line", src.n)
	}
}

func TestCollectErrors(t *testing.T) {
	_, keys := sampleKeys(t)
	good := line(t, nil)
	edit := func(f func(*receipts.Line)) string { return line(t, f) }
	second := func(f func(*receipts.Line)) string {
		return good + "\n" + edit(func(l *receipts.Line) { l.RequestID += "-2"; f(l) }) + "\n" + edit(func(l *receipts.Line) { l.RequestID += "-3" }) + "\n"
	}
	flipLast := func(hex string) string {
		c := "0"
		if hex[len(hex)-1] == '0' {
			c = "1"
		}
		return hex[:len(hex)-1] + c
	}
	for _, c := range []struct {
		name  string
		in    string
		field string
		err   error
	}{
		{"unknown key", second(func(l *receipts.Line) { l.KeyID = "kms:eu-central-1/custody/eth-hot-2/v1" }), "keyId", receipts.ErrUnknownKey},
		{"scheme not the key's", second(func(l *receipts.Line) { l.Scheme = string(receipt.SchemeSecp256k1DER) }), "scheme", receipts.ErrScheme},
		{"other digest", second(func(l *receipts.Line) { l.Digest = flipLast(l.Digest) }), "signature", receipt.ErrAddressMismatch},
		{"malleated v", second(func(l *receipts.Line) { l.Signature = l.Signature[:128] + "00" }), "signature", receipt.ErrAddressMismatch},
		{"v out of range", second(func(l *receipts.Line) { l.Signature = l.Signature[:128] + "1d" }), "signature", receipt.ErrMalformedSignature},
		{"truncated signature", second(func(l *receipts.Line) { l.Signature = l.Signature[:128] }), "signature", receipt.ErrMalformedSignature},
		{"another key's receipt", second(func(l *receipts.Line) {
			l.KeyID = "hsm:luna-eu-1/custody/btc-treasury-1"
			l.Scheme = string(receipt.SchemeSecp256k1DER)
		}), "signature", receipt.ErrMalformedSignature},
	} {
		t.Run(c.name, func(t *testing.T) {
			col := newCollector(t, keys, receipt.Options{})
			var got []int
			n, err := col.Collect(context.Background(), strings.NewReader(c.in), func(r receipts.Record) error {
				got = append(got, r.Line)
				return nil
			})
			var le *receipts.LineError
			if !errors.Is(err, c.err) || !errors.As(err, &le) || le.Line != 2 || le.Field != c.field {
				t.Fatalf("Collect = %v; want %v on line 2, %s", err, c.err, c.field)
			}
			if n != 1 || len(got) != 1 || got[0] != 1 {
				t.Errorf("emitted %v (n = %d), want line 1 only", got, n)
			}
			t.Log(err)
		})
	}

	col := newCollector(t, keys, receipt.Options{})
	in := sample(t, "ethereum.jsonl")
	stop := errors.New("ledger full")
	n, err := col.Collect(context.Background(), bytes.NewReader(in), func(r receipts.Record) error {
		if r.Line == 3 {
			return stop
		}
		return nil
	})
	if n != 2 || !errors.Is(err, stop) || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("emit error: n = %d, %v", n, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n, err = col.Collect(ctx, bytes.NewReader(in), func(receipts.Record) error { cancel(); return nil })
	if n != 1 || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: n = %d, %v", n, err)
	}
}

func TestNewRejects(t *testing.T) {
	_, keys := sampleKeys(t)
	signer := collectorSigner(t)
	for name, cfg := range map[string]receipts.Config{
		"no keys":   {Signer: signer},
		"no signer": {Keys: keys},
		"nil key":   {Keys: map[string]*receipt.Key{"a": nil}, Signer: signer},
		"bad id":    {Keys: map[string]*receipt.Key{"a b": keys["kms:eu-central-1/custody/sol-hot-1/v1"]}, Signer: signer},
	} {
		if _, err := receipts.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// The committed sample files are what the generator writes.
func TestGeneratorReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the generator with go run")
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "run", "./testdata/receipts/gen.go", "-out", dir)
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(cmd.Environ(), "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run gen.go: %v\n%s", err, out)
	}
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 6 {
		t.Errorf("the generator wrote %d files, want 6", len(files))
	}
	for _, f := range files {
		want, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if got := sample(t, f.Name()); !bytes.Equal(got, want) {
			t.Errorf("testdata/receipts/%s differs from the generator's output: run go run ./testdata/receipts/gen.go", f.Name())
		}
	}
}

func ExampleCollector_Collect() {
	// The collector's configuration: the wallet keys it collects receipts for
	// (from its own trust material) and its signing key.
	keyPEM, _ := os.ReadFile("../../testdata/receipts/keys.json")
	var entries []struct {
		KeyID      string `json:"keyId"`
		Scheme     string `json:"scheme"`
		PublicKey  string `json:"publicKey"`
		SPKISHA256 string `json:"spkiSha256"`
		Address    string `json:"address,omitempty"`
	}
	if err := strictjson.Unmarshal(keyPEM, &entries, 1<<20); err != nil {
		panic(err)
	}
	keys := map[string]*receipt.Key{}
	for _, e := range entries {
		k, err := receipt.ParseKeyPEM(receipt.Scheme(e.Scheme), []byte(e.PublicKey))
		if err != nil {
			panic(err)
		}
		keys[e.KeyID] = k
	}
	signer, err := evidence.NewSigner(collectorKey())
	if err != nil {
		panic(err)
	}
	c, err := receipts.New(receipts.Config{Keys: keys, Signer: signer})
	if err != nil {
		panic(err)
	}

	log, _ := os.Open("../../testdata/receipts/ethereum.jsonl")
	defer log.Close()
	n, err := c.Collect(context.Background(), log, func(r receipts.Record) error {
		// A real collector appends r.Envelope to the ledger here.
		fmt.Printf("line %d: %s by %s, v=%d chain=%d\n", r.Line, r.Receipt.RequestID, r.Result.Address, *r.Result.V, r.Result.ChainID)
		return nil
	})
	fmt.Println(n, err)
	// Output:
	// line 1: eth-hot-1/2026-03-02/004101 by 0xe92084a3295497cE9a48d7357beb3d30c29E1012, v=1 chain=0
	// line 2: eth-hot-1/2026-03-02/004102 by 0xe92084a3295497cE9a48d7357beb3d30c29E1012, v=27 chain=0
	// line 3: eth-hot-1/2026-03-02/004103 by 0xe92084a3295497cE9a48d7357beb3d30c29E1012, v=37 chain=1
	// line 4: eth-hot-1/2026-03-02/004104 by 0xe92084a3295497cE9a48d7357beb3d30c29E1012, v=28 chain=0
	// line 5: eth-hot-1/2026-03-02/004105 by 0xe92084a3295497cE9a48d7357beb3d30c29E1012, v=0 chain=0
	// line 6: eth-hot-1/2026-03-02/004106 by 0xe92084a3295497cE9a48d7357beb3d30c29E1012, v=148 chain=56
	// 6 <nil>
}
