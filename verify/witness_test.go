package verify_test

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/internal/scenario"
	"github.com/keytrail/keytrail/internal/strictjson"
	"github.com/keytrail/keytrail/verify"
)

type witness struct {
	name   string
	signer note.Signer
	vkey   string // cosignature/v1 verifier key
}

func newWitness(t *testing.T, name string) witness {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	cv, err := fnote.VKeyToCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return witness{name, s, cv}
}

// witnessed builds a rotation whose checkpoint is cosigned by signers, and a
// trust file requiring quorum of trusted.
func witnessed(t *testing.T, signers []note.Signer, trusted []witness, quorum int) (*scenario.Built, *verify.Result, error) {
	t.Helper()
	return cosignedBundle(t, signers, func(tf *verify.TrustFile) {
		for _, w := range trusted {
			tf.Logs[0].Witnesses = append(tf.Logs[0].Witnesses, verify.TrustedWitness{Key: w.vkey})
		}
		tf.Logs[0].WitnessQuorum = quorum
	})
}

// cosignedBundle builds a rotation whose checkpoint is cosigned by signers and
// verifies it under the trust file as edit changes it.
func cosignedBundle(t *testing.T, signers []note.Signer, edit func(*verify.TrustFile)) (*scenario.Built, *verify.Result, error) {
	t.Helper()
	ctx := context.Background()
	b := build(t, nil)
	b.Log.Witnesses = signers
	cp, err := b.Log.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b.Bundle.Checkpoint = string(cp)
	raw, err := b.Resign(ctx, b.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	tf := b.TrustFile()
	edit(tf)
	tj, _ := strictjson.Marshal(tf)
	trust, err := verify.ParseTrust(tj)
	if err != nil {
		return b, nil, err
	}
	v, _ := verify.New(trust, b.Policy)
	res, err := v.VerifyBundle(raw, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return b, res, nil
}

func TestWitnessQuorum(t *testing.T) {
	w1, w2, w3 := newWitness(t, "witness.example/one"), newWitness(t, "witness.example/two"), newWitness(t, "witness.example/three")
	stranger := newWitness(t, "witness.example/one") // same name as w1, another key
	tests := []struct {
		name    string
		signers []note.Signer
		quorum  int
		ok      bool
	}{
		{"two of three cosign", []note.Signer{w1.signer, w3.signer}, 2, true},
		{"no witness required", nil, 0, true},
		{"one of two required", []note.Signer{w2.signer}, 2, false},
		// ATTACKS.md 7: one witness signing twice counts once.
		{"one witness twice", []note.Signer{w1.signer, w1.signer}, 2, false},
		// ATTACKS.md 8: an unknown signer sharing a witness's name is ignored, not counted.
		{"stranger with a witness's name", []note.Signer{w1.signer, stranger.signer}, 2, false},
		{"stranger ignored when quorum met", []note.Signer{stranger.signer, w1.signer, w2.signer}, 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, res, err := witnessed(t, tt.signers, []witness{w1, w2, w3}, tt.quorum)
			if err != nil {
				t.Fatal(err)
			}
			c := res.Check(verify.CheckCheckpointSignature)
			if tt.ok != res.Verified || tt.ok != (c.Status == verify.Pass) {
				t.Fatalf("verified=%v, %s %s", res.Verified, c.Status, c.Reason)
			}
			if !tt.ok && !errors.Is(c.Err(), checkpoint.ErrWitnessQuorum) {
				t.Errorf("err = %v, want ErrWitnessQuorum", c.Err())
			}
		})
	}
}

// ATTACKS.md 7: one key listed as two witnesses, or a witness that is the log
// key, would count twice; the trust file is refused.
func TestWitnessKeyListedTwice(t *testing.T) {
	w1 := newWitness(t, "witness.example/one")
	b := build(t, nil)
	// The same key under another name.
	alias := strings.Replace(w1.vkey, "witness.example/one+", "witness.example/alias+", 1)
	tf := b.TrustFile()
	tf.Logs[0].Witnesses = []verify.TrustedWitness{{Key: w1.vkey}, {Key: alias}}
	tf.Logs[0].WitnessQuorum = 2
	tj, _ := strictjson.Marshal(tf)
	if _, err := verify.ParseTrust(tj); err == nil || !strings.Contains(err.Error(), "already listed") {
		t.Errorf("same witness key twice: err = %v", err)
	}
	// The log's own key as a witness.
	logAsWitness, err := fnote.VKeyToCosignatureV1(b.LogVerifier)
	if err != nil {
		t.Fatal(err)
	}
	tf.Logs[0].Witnesses = []verify.TrustedWitness{{Key: w1.vkey}, {Key: logAsWitness}}
	tj, _ = strictjson.Marshal(tf)
	if _, err := verify.ParseTrust(tj); err == nil || !strings.Contains(err.Error(), "already listed as the log key") {
		t.Errorf("log key as witness: err = %v", err)
	}
	tf.Logs[0].Witnesses = []verify.TrustedWitness{{Key: w1.vkey}}
	tf.Logs[0].WitnessQuorum = 2
	tj, _ = strictjson.Marshal(tf)
	if _, err := verify.ParseTrust(tj); err == nil {
		t.Error("quorum larger than the witnesses listed accepted")
	}
}

// Witness groups with jurisdictions (issue 13): "2 of the EU witnesses and 1
// of the regulator's". Every group must meet its threshold, and the result
// names who cosigned.
func TestWitnessGroups(t *testing.T) {
	eu1, eu2, eu3 := newWitness(t, "eu.example/w1"), newWitness(t, "eu.example/w2"), newWitness(t, "eu.example/w3")
	reg := newWitness(t, "regulator.example/w")
	verifyWith := func(t *testing.T, signers []note.Signer, groups []verify.WitnessGroup) (*verify.Result, error) {
		_, res, err := cosignedBundle(t, signers, func(tf *verify.TrustFile) {
			for _, w := range []witness{eu1, eu2, eu3} {
				tf.Logs[0].Witnesses = append(tf.Logs[0].Witnesses, verify.TrustedWitness{Key: w.vkey, Jurisdiction: "EU"})
			}
			tf.Logs[0].Witnesses = append(tf.Logs[0].Witnesses, verify.TrustedWitness{Key: reg.vkey, Jurisdiction: "EU-regulator"})
			tf.Logs[0].WitnessGroups = groups
		})
		return res, err
	}
	policy := []verify.WitnessGroup{{Name: "eu", Threshold: 2, Jurisdiction: "EU"}, {Name: "regulator", Threshold: 1, Members: []string{"regulator.example/w"}}}
	for _, tc := range []struct {
		name    string
		signers []note.Signer
		want    string // in the reason: the cosigners, or the group not met
		ok      bool
	}{
		{"two EU and the regulator", []note.Signer{eu1.signer, eu3.signer, reg.signer}, "cosigned by eu.example/w1 (EU), eu.example/w3 (EU), regulator.example/w (EU-regulator)", true},
		{"one EU and the regulator", []note.Signer{eu1.signer, reg.signer}, "witness group eu: 1 of the 2 required", false},
		{"three EU, no regulator", []note.Signer{eu1.signer, eu2.signer, eu3.signer}, "witness group regulator: 0 of the 1 required", false},
		{"one EU witness twice and the regulator", []note.Signer{eu1.signer, eu1.signer, reg.signer}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := verifyWith(t, tc.signers, policy)
			if err != nil {
				t.Fatal(err)
			}
			c := res.Check(verify.CheckCheckpointSignature)
			if (c.Status == verify.Pass) != tc.ok || res.Verified != tc.ok || !strings.Contains(c.Reason, tc.want) {
				t.Fatalf("%s %s (verified %v), want ok=%v and %q", c.Status, c.Reason, res.Verified, tc.ok, tc.want)
			}
			if !tc.ok && !errors.Is(c.Err(), checkpoint.ErrWitnessQuorum) && !errors.Is(c.Err(), checkpoint.ErrSignature) {
				t.Errorf("error %v", c.Err())
			}
		})
	}
	for _, tc := range []struct {
		name   string
		groups []verify.WitnessGroup
		want   string
	}{
		{"unknown member", []verify.WitnessGroup{{Name: "x", Threshold: 1, Members: []string{"nobody.example/w"}}}, "is not a witness of the log"},
		{"threshold above the members", []verify.WitnessGroup{{Name: "eu", Threshold: 4, Jurisdiction: "EU"}}, "threshold 4, want 1 to 3"},
		{"threshold zero", []verify.WitnessGroup{{Name: "eu", Threshold: 0, Jurisdiction: "EU"}}, "threshold 0"},
		{"a jurisdiction with no witness", []verify.WitnessGroup{{Name: "us", Threshold: 1, Jurisdiction: "US"}}, "want 1 to 0"},
		{"two groups of one name", []verify.WitnessGroup{{Name: "eu", Threshold: 1, Jurisdiction: "EU"}, {Name: "eu", Threshold: 1, Jurisdiction: "EU"}}, "listed twice"},
	} {
		t.Run("trust file: "+tc.name, func(t *testing.T) {
			if _, err := verifyWith(t, nil, tc.groups); err == nil || !errors.Is(err, verify.ErrTrust) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseTrust: %v, want %q", err, tc.want)
			}
		})
	}
}
