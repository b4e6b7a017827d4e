package cli

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/internal/strictjson"
	"github.com/keytrail/keytrail/verify"
)

// VerifyFreshnessCommand is `verify freshness`, shared by keytrail and
// keytrail-verify: the CI gate on the age of each key's evidence.
func VerifyFreshnessCommand(prog string) *cobra.Command {
	var (
		trustPath, policyPath, logDir, cpPath, format, nowFlag string
		keys, kinds                                            []string
		maxAge                                                 string
	)
	c := &cobra.Command{
		Use:   "freshness --trust FILE --log DIR --key ID[@sha256:HEX] [--max-age 24h] [--format text|json|junit]",
		Short: "Fail when a key's latest attestation or policy snapshot is too old (CI gate)",
		Long: `Check, offline, that for each --key the latest hardware attestation (HSM or
TPM) and the latest key-policy snapshot in the log are younger than the limit,
and are in a checkpoint younger than the limit.

The log is a tlog-tiles directory (--log); every entry is checked against its
checkpoint, which must be signed by a log of the trust file.

Only records about the exact key count: its ID and the SHA-256 of its DER
SubjectPublicKeyInfo. Give the digest with the ID (--key ID@sha256:HEX), or the
ID alone: then the key is the one public key that verified hardware records
about the ID name. A hardware record counts only if a collector allowed its
type signed it and its evidence verifies for the key, as check keys.hardware
verifies it; a policy snapshot, only if a collector allowed its type signed it.
Such a record about the ID with another public key fails the key (a key ID
names one key). Under a stale key, the records not counted are listed with why.

A C2SP checkpoint carries no time: its age
is the time of the latest cosignature (C2SP tlog-cosignature/v1) by a witness
the trust file lists for the log. Give a cosigned checkpoint with --checkpoint
if the directory's own has none; without one, the gate fails.

Limits: the policy's freshness section (per type: hsmAttestation,
tpmAttestation, keyPolicySnapshot; then maxAge), else --max-age.

Every age is printed. --format junit writes JUnit XML for CI systems: one test
case per key and record kind.

Exit status: 0 fresh, 1 stale or missing, 2 usage error or unreadable input.`,
		Example: fmt.Sprintf(`  %[1]s freshness --trust trust.json --log demo/log --checkpoint demo/checkpoint.cosigned --key tpm:simulator/custody/hot-1/v2 --max-age 24h
  %[1]s freshness --trust trust.json --policy policy.yaml --log log/ --kind policy \
      --key kms:eu-central-1/custody/hot-1/v2@sha256:$(openssl pkey -pubin -in v2.pub.pem -outform DER | sha256sum | cut -c1-64)
  %[1]s freshness --trust trust.json --policy policy.yaml --log log/ --key K1 --key K2 --format junit > freshness.xml
  %[1]s freshness --trust trust.json --log log/ --key K1 --kind policy --max-age 168h --format json`, prog),
		Args: ExactArgs(0, "none"),
		RunE: func(c *cobra.Command, _ []string) error {
			if format != "text" && format != "json" && format != "junit" {
				return Usage("--format must be text, json or junit, not %q", format)
			}
			if trustPath == "" || logDir == "" || len(keys) == 0 {
				return &Error{Code: ExitUsage, Err: errors.New("--trust, --log and at least one --key are required"), Hint: "see '" + c.CommandPath() + " --help'"}
			}
			var maxAgeD time.Duration
			if maxAge != "" {
				d, err := verify.ParseDuration(maxAge)
				if err != nil {
					return Usage("--max-age: %v", err)
				}
				maxAgeD = d
			}
			now := time.Now()
			if nowFlag != "" {
				t, err := evidence.ParseTime(nowFlag)
				if err != nil {
					return Usage("--now: %v", err)
				}
				now = t
			}
			refs := make([]evidence.KeyRef, 0, len(keys))
			for _, k := range keys {
				ref, err := verify.ParseFreshKey(k)
				if err != nil {
					return Usage("--key %q: %v", k, err)
				}
				refs = append(refs, ref)
			}
			tb, err := ReadFile(trustPath, verify.MaxTrustBytes, "trust file")
			if err != nil {
				return err
			}
			trust, err := verify.ParseTrust(tb)
			if err != nil {
				return Input(trustPath, err, "")
			}
			// The gate needs the policy file's freshness section only; the
			// file is still validated whole, as the bundle verifier reads it.
			var limits *verify.FreshnessPolicy
			if policyPath != "" {
				pb, err := ReadFile(policyPath, verify.MaxPolicyBytes, "policy file")
				if err != nil {
					return err
				}
				policy, err := verify.ParsePolicy(pb)
				if err != nil {
					return Input(policyPath, err, "")
				}
				limits = policy.Freshness
			}
			if maxAgeD == 0 && limits == nil {
				return Usage("no age limit: give --max-age, or a policy with a freshness section")
			}
			fsys, err := OpenLogDir(logDir, false)
			if err != nil {
				return err
			}
			defer fsys.Close()
			opts := verify.FreshnessOptions{Log: fsys, Keys: refs, Kinds: kinds, MaxAge: maxAgeD, Now: now}
			if cpPath != "" {
				if opts.Checkpoint, err = ReadFile(cpPath, checkpoint.MaxBytes, "checkpoint"); err != nil {
					return err
				}
			}
			gate, err := verify.NewFreshnessGate(trust, limits)
			if err != nil {
				return Usage("%v", err)
			}
			res, err := gate.Check(opts)
			if err != nil {
				name := logDir
				if cpPath != "" {
					name = cpPath
				}
				return Input(name, err, "")
			}
			if err := printFreshness(c.OutOrStdout(), res, format); err != nil {
				return err
			}
			if !res.Fresh {
				return Silent(ExitFailed)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&trustPath, "trust", "", "trust file (JSON): the log's key and witnesses, the collectors (required)")
	f.StringVar(&policyPath, "policy", "", "policy file (YAML) whose freshness section gives the limits")
	f.StringVar(&logDir, "log", "", "tlog-tiles directory of the log (required)")
	f.StringVar(&cpPath, "checkpoint", "", "signed checkpoint to use instead of the directory's, e.g. one a witness cosigned")
	f.StringArrayVar(&keys, "key", nil, "key to check: its ID, or ID@sha256:HEX with its SPKI SHA-256; repeatable (required)")
	f.StringArrayVar(&kinds, "kind", nil, "record kind required per key: hardware, policy; repeatable (default both)")
	f.StringVar(&maxAge, "max-age", "", "age limit for kinds the policy sets none for: 24h, 7d, ...")
	f.StringVar(&format, "format", "text", "output format: text, json or junit")
	f.StringVar(&nowFlag, "now", "", "measure ages at this RFC 3339 UTC time instead of the clock (for tests and replays)")
	return c
}

func printFreshness(w io.Writer, res *verify.Freshness, format string) error {
	switch format {
	case "json":
		b, err := strictjson.MarshalIndent(res)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case "junit":
		return writeJUnit(w, res)
	}
	cp := res.Checkpoint
	if cp.Time != "" {
		fmt.Fprintf(w, "checkpoint %s@%d cosigned by %s at %s (%ds old)\n", cp.Origin, cp.Size, cp.Witness, cp.Time, cp.AgeSeconds)
	} else {
		fmt.Fprintf(w, "checkpoint %s@%d: no trusted witness cosignature, age unknown\n", cp.Origin, cp.Size)
	}
	for _, r := range res.Records {
		status := "FRESH"
		if !r.Fresh {
			status = "STALE"
		}
		fmt.Fprintf(w, "%-5s  %-8s  %s  %s\n", status, r.Kind, r.Key, r.Reason)
		for _, line := range notCounted(r) {
			fmt.Fprintf(w, "       %s\n", line)
		}
	}
	if res.Fresh {
		fmt.Fprintln(w, "FRESH")
	} else {
		fmt.Fprintln(w, "STALE")
	}
	return nil
}

// JUnit XML as Jenkins, GitLab and GitHub test reporters read it.
type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Timestamp string      `xml:"timestamp,attr"`
	Props     []junitProp `xml:"properties>property"`
	Cases     []junitCase `xml:"testcase"`
}

type junitProp struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

func writeJUnit(w io.Writer, res *verify.Freshness) error {
	s := junitSuite{Name: "keytrail.freshness", Timestamp: res.Now, Props: []junitProp{
		{"checkpoint.origin", res.Checkpoint.Origin}, {"checkpoint.size", fmt.Sprint(res.Checkpoint.Size)},
		{"checkpoint.time", res.Checkpoint.Time}, {"checkpoint.witness", res.Checkpoint.Witness},
		{"checkpoint.ageSeconds", fmt.Sprint(res.Checkpoint.AgeSeconds)},
	}}
	for _, r := range res.Records {
		tc := junitCase{Name: r.Kind + " " + r.Key, ClassName: "keytrail.freshness." + r.Kind}
		detail := fmt.Sprintf("record age %ds, checkpoint age %ds, limit %ds: %s", r.AgeSeconds, r.CheckpointAgeSeconds, r.LimitSeconds, r.Reason)
		for _, line := range notCounted(r) {
			detail += "\n" + line
		}
		if r.Fresh {
			tc.SystemOut = detail
		} else {
			tc.Failure = &junitFailure{Message: r.Reason, Type: "stale", Text: detail}
			s.Failures++
		}
		s.Tests++
		s.Cases = append(s.Cases, tc)
	}
	b, err := xml.MarshalIndent(junitSuites{Suites: []junitSuite{s}}, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s%s\n", xml.Header, b)
	return err
}

// notCounted writes the records a stale row did not count, one a line.
func notCounted(r verify.FreshRecord) []string {
	var out []string
	for _, n := range r.NotCounted {
		out = append(out, fmt.Sprintf("not counted: entry %d at %s (spki sha256 %s): %s", n.Entry, n.Time, n.SPKISHA256, n.Reason))
	}
	if r.NotCountedMore > 0 {
		out = append(out, fmt.Sprintf("not counted: %d more", r.NotCountedMore))
	}
	return out
}
