package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keytrail/keytrail/cmd/internal/cli"
	"github.com/keytrail/keytrail/collectors/cloudtrail"
	"github.com/keytrail/keytrail/collectors/kmspolicy"
	"github.com/keytrail/keytrail/collectors/receipts"
	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/strictjson"
	"github.com/keytrail/keytrail/verify/receipt"
)

func collectCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "collect",
		Short: "Collect evidence about keys and sign it as records",
		Long: `Collect what a PKCS #11 token, a TPM 2.0 or a cloud HSM says about a key, and
turn files exported from a KMS, a wallet signer or CloudTrail into records: each
is signed by a collector key as an in-toto statement in a DSSE envelope
(docs/records.md) and written to a file (-o) or appended to the ledger
(--ledger DIR --log-key FILE). Collectors read local files and devices only:
nothing is fetched. 'collect push' sends signed records to a keytrail server
(keytrail serve) with retries; with --spool they wait in a local directory
while the server is unreachable and are sent later, in order, exactly once. The verifier checks hardware records against the trust
file's hardware section (docs/hardware.md).`,
		Example: `  keytrail collect pkcs11 --module /usr/lib/softhsm/libsofthsm2.so --uri 'pkcs11:token=custody;object=hot-1' --pin-env PIN --signer collector.pem -o rec.json
  keytrail collect tpm --tcp 127.0.0.1:2321 --signer collector.pem --ledger ./keytrail-log --log-key log.key
  keytrail collect import --format luna --pkc key.p7b --csr key.csr --root luna-root.pem --key-id luna:hot-1 --signer collector.pem -o rec.json
  keytrail collect push --server http://127.0.0.1:8080 --spool ./spool rec.json
  keytrail collect kms-policy aws --describe-key describe-key.json --key-policy get-key-policy.json --grants list-grants.json --public-key get-public-key.json --signer collector.pem -o snap.json`,
	}
	c.AddCommand(collectPKCS11Command(), collectTPMCommand(), collectImportCommand(),
		collectKMSPolicyCommand(), collectReceiptsCommand(), collectCloudTrailCommand(),
		collectPushCommand(), collectDrainCommand())
	return groupCommand(c)
}

func collectKMSPolicyCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "kms-policy",
		Short: "Snapshot a KMS key's access policy (AWS KMS or Cloud KMS)",
		Long: `Snapshot who may do what with a KMS key: the provider's exported policy,
normalised into principal → permissions bindings, hashed in RFC 8785 canonical
form, with the change from the previous snapshot of the same key
(collectors/kmspolicy documents the rules).`,
	}
	c.AddCommand(collectAWSCommand(), collectGCPCommand())
	return groupCommand(c)
}

// snapshotFlags are what both providers' snapshot commands share.
type snapshotFlags struct {
	signerPath, at, previous, previousKey string
	out                                   recordOut
}

func (s *snapshotFlags) register(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&s.signerPath, "signer", "", "the collector's PEM private key (required)")
	f.StringVar(&s.at, "time", "", "when the files were exported, RFC 3339 UTC (default now)")
	f.StringVar(&s.previous, "previous", "", "the previous snapshot's envelope of the same key: the new one records the difference")
	f.StringVar(&s.previousKey, "previous-signer", "", "PEM public key that signed --previous (default: --signer's)")
	s.out.register(c, "write the signed snapshot to this file")
}

func (s *snapshotFlags) request(key evidence.KeyRef, signer *evidence.Signer) (kmspolicy.Request, error) {
	req := kmspolicy.Request{Key: key, Time: time.Now().UTC().Truncate(time.Second)}
	if s.at != "" {
		t, err := evidence.ParseTime(s.at)
		if err != nil {
			return req, cli.Usage("--time: %v", err)
		}
		req.Time = t
	}
	if s.previous == "" {
		return req, nil
	}
	env, err := cli.ReadFile(s.previous, evidence.MaxRecordBytes, "previous snapshot")
	if err != nil {
		return req, err
	}
	pub := signer.PublicKey()
	if s.previousKey != "" {
		b, err := cli.ReadFile(s.previousKey, 64<<10, "public key")
		if err != nil {
			return req, err
		}
		if pub, err = evidence.ParsePublicKeyPEM(b); err != nil {
			return req, cli.Input(s.previousKey, err, "")
		}
	}
	prev, err := kmspolicy.VerifyPrevious(env, oneKeySet{pub}, key)
	if err != nil {
		return req, cli.Input(s.previous, err, "")
	}
	req.Previous = prev
	return req, nil
}

type oneKeySet struct{ k *evidence.PublicKey }

func (s oneKeySet) Key(d string) *evidence.PublicKey {
	if s.k.Digest == d {
		return s.k
	}
	return nil
}
func (s oneKeySet) Keys() []*evidence.PublicKey { return []*evidence.PublicKey{s.k} }

func (s *snapshotFlags) run(c *cobra.Command, key func() (evidence.KeyRef, error), collect func(kmspolicy.Request) (*kmspolicy.Snapshot, error)) error {
	if err := s.out.check(); err != nil {
		return err
	}
	if s.signerPath == "" {
		return cli.Usage("%v", errNoSigner)
	}
	k, err := key()
	if err != nil {
		return err
	}
	signer, err := readSigner(s.signerPath)
	if err != nil {
		return err
	}
	req, err := s.request(k, signer)
	if err != nil {
		return err
	}
	snap, err := collect(req)
	if err != nil {
		return inputErr(err)
	}
	env, err := snap.Sign(c.Context(), signer)
	if err != nil {
		return cli.Usage("%v", err)
	}
	p := snap.Predicate
	fmt.Fprintf(c.ErrOrStderr(), "%s %s: %d principals, %d denies, policy sha256 %s\n", p.Provider, p.Resource.Name, len(p.Bindings), len(p.Denies), p.CanonicalSHA256)
	if d := p.Diff; d != nil {
		fmt.Fprintf(c.ErrOrStderr(), "since %s: policy changed %v, principals added %v, removed %v\n", d.PreviousTime, d.PolicyChanged, d.AddedPrincipals, d.RemovedPrincipals)
	}
	duties, err := kmspolicy.AdminSigners(p.Provider, p.Bindings, p.Denies)
	if err == nil {
		for _, x := range duties.Conflicts {
			fmt.Fprintf(c.ErrOrStderr(), "warning: %s both administers and signs with the key: policy.separation-of-duties will fail\n", x.Principal)
		}
	}
	return s.out.emit(c.Context(), c.OutOrStdout(), [][]byte{env}, []string{"key-policy-snapshot " + k.ID})
}

// inputErr makes a collector's error about a named file an input error.
func inputErr(err error) error {
	var ie *kmspolicy.InputError
	if errors.As(err, &ie) {
		return cli.Input(ie.File, err, "")
	}
	return cli.Usage("%v", err)
}

func readNamed(path string) (kmspolicy.File, error) {
	b, err := cli.ReadFile(path, kmspolicy.MaxGrantsFileBytes, "export")
	return kmspolicy.File{Name: path, Data: b}, err
}

func collectAWSCommand() *cobra.Command {
	var describe, policy, grants, pubKey, keyID, digest string
	var s snapshotFlags
	c := &cobra.Command{
		Use:   "aws --describe-key FILE --key-policy FILE --grants FILE --public-key FILE --signer FILE (-o FILE | --log-key FILE)",
		Short: "Snapshot an AWS KMS key's policy and grants",
		Long: `Snapshot an AWS KMS key's key policy and grants from the JSON the AWS CLI prints
(--output json):

  aws kms describe-key   --key-id KEY                        > describe-key.json
  aws kms get-key-policy --key-id KEY --policy-name default  > get-key-policy.json
  aws kms list-grants    --key-id KEY                        > list-grants.json
  aws kms get-public-key --key-id KEY                        > get-public-key.json

The subject is the key's ARN and the SHA-256 of its public key (--public-key,
get-public-key's output), or give --key-id and --key-digest. The ARN's
partition and region (e.g. aws-eusc, the European Sovereign Cloud) go into the
snapshot for the residency check.`,
		Example: `  keytrail collect push --server http://127.0.0.1:8080 --spool ./spool rec.json
  keytrail collect kms-policy aws --describe-key describe-key.json --key-policy get-key-policy.json \
    --grants list-grants.json --public-key get-public-key.json --signer keys/collector.pem -o snapshot.json
  keytrail collect kms-policy aws ... --previous last-snapshot.json --ledger ./keytrail-log --log-key log.key`,
		Args: cli.ExactArgs(0, "none"),
		RunE: func(c *cobra.Command, _ []string) error {
			if describe == "" || policy == "" || grants == "" {
				return cli.Usage("--describe-key, --key-policy and --grants are required")
			}
			var x kmspolicy.AWSExport
			var err error
			if x.DescribeKey, err = readNamed(describe); err != nil {
				return err
			}
			if x.KeyPolicy, err = readNamed(policy); err != nil {
				return err
			}
			if x.Grants, err = readNamed(grants); err != nil {
				return err
			}
			return s.run(c, func() (evidence.KeyRef, error) {
				if pubKey != "" {
					f, err := readNamed(pubKey)
					if err != nil {
						return evidence.KeyRef{}, err
					}
					k, err := kmspolicy.KeyRefFromAWSPublicKey(f)
					if err != nil {
						return k, inputErr(err)
					}
					return k, nil
				}
				return (&subjectFlags{id: keyID, digest: digest}).ref()
			}, func(req kmspolicy.Request) (*kmspolicy.Snapshot, error) { return kmspolicy.CollectAWS(x, req) })
		},
	}
	f := c.Flags()
	f.StringVar(&describe, "describe-key", "", "aws kms describe-key output (required)")
	f.StringVar(&policy, "key-policy", "", "aws kms get-key-policy output (required)")
	f.StringVar(&grants, "grants", "", "aws kms list-grants output (required)")
	f.StringVar(&pubKey, "public-key", "", "aws kms get-public-key output: names the subject")
	f.StringVar(&keyID, "key-id", "", "subject key ID (instead of --public-key)")
	f.StringVar(&digest, "key-digest", "", "subject key digest (with --key-id)")
	s.register(c)
	return c
}

func collectGCPCommand() *cobra.Command {
	var describe, iam, pubKey, keyID string
	var s snapshotFlags
	c := &cobra.Command{
		Use:   "gcp --describe FILE --iam-policy FILE --public-key PEM --key-id ID --signer FILE (-o FILE | --log-key FILE)",
		Short: "Snapshot a Cloud KMS key's IAM policy",
		Long: `Snapshot a Cloud KMS key's IAM policy from what gcloud prints (--format json):

  gcloud kms keys describe       KEY --keyring RING --location LOC --format json > describe.json
  gcloud kms keys get-iam-policy KEY --keyring RING --location LOC --format json > get-iam-policy.json
  gcloud kms keys versions get-public-key N --key KEY ... --output-file public-key.pem

The subject is --key-id (the CryptoKey or CryptoKeyVersion name) and the
SHA-256 of --public-key.`,
		Example: `  keytrail collect kms-policy gcp --describe describe.json --iam-policy get-iam-policy.json \
    --public-key public-key.pem --key-id projects/p/locations/europe-west3/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1 \
    --signer keys/collector.pem -o snapshot.json`,
		Args: cli.ExactArgs(0, "none"),
		RunE: func(c *cobra.Command, _ []string) error {
			if describe == "" || iam == "" || pubKey == "" || keyID == "" {
				return cli.Usage("--describe, --iam-policy, --public-key and --key-id are required")
			}
			var x kmspolicy.GCPExport
			var err error
			if x.Describe, err = readNamed(describe); err != nil {
				return err
			}
			if x.IAMPolicy, err = readNamed(iam); err != nil {
				return err
			}
			return s.run(c, func() (evidence.KeyRef, error) {
				f, err := readNamed(pubKey)
				if err != nil {
					return evidence.KeyRef{}, err
				}
				k, err := kmspolicy.KeyRefFromPEM(keyID, f)
				if err != nil {
					return k, inputErr(err)
				}
				return k, nil
			}, func(req kmspolicy.Request) (*kmspolicy.Snapshot, error) { return kmspolicy.CollectGCP(x, req) })
		},
	}
	f := c.Flags()
	f.StringVar(&describe, "describe", "", "gcloud kms keys describe output (required)")
	f.StringVar(&iam, "iam-policy", "", "gcloud kms keys get-iam-policy output (required)")
	f.StringVar(&pubKey, "public-key", "", "the key version's PEM public key (required)")
	f.StringVar(&keyID, "key-id", "", "the CryptoKey or CryptoKeyVersion name: the subject (required)")
	s.register(c)
	return c
}

// receiptKey is one entry of a receipt key file (testdata/receipts/keys.json).
type receiptKey struct {
	KeyID      string `json:"keyId"`
	Scheme     string `json:"scheme"`
	PublicKey  string `json:"publicKey,omitempty"`
	SPKISHA256 string `json:"spkiSha256,omitempty"`
	Address    string `json:"address,omitempty"`
}

func collectReceiptsCommand() *cobra.Command {
	var keysPath, signerPath string
	var allowHighS bool
	var out recordOut
	c := &cobra.Command{
		Use:   "receipts --keys FILE --signer FILE (-o DIR | --log-key FILE) RECEIPTS.jsonl...",
		Short: "Verify a wallet signer's receipts and sign each as a record",
		Long: `Read a wallet signer's receipts (JSON Lines: keyId, scheme, digest, signature,
operator, requestId, chain, txHash, time; collectors/receipts documents each),
verify every signature under the key its keyId names in --keys (secp256k1 DER,
Ethereum r‖s‖v with address recovery and low S, Ed25519, P-256), and sign one
signing-receipt record per line. The first line that does not verify stops
the run (exit 2, the line and field named); nothing is written or appended
unless every line of every file verifies.

--keys is a JSON array of {keyId, scheme, publicKey (PEM) | address}, as
testdata/receipts/keys.json.`,
		Example: `  keytrail collect receipts --keys keys.json --signer keys/collector.pem -o receipts/ ethereum.jsonl solana.jsonl
  keytrail collect receipts --keys keys.json --signer keys/collector.pem --ledger ./keytrail-log --log-key log.key ethereum.jsonl`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cli.Usage("receipts takes one or more JSON Lines files")
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			if keysPath == "" || signerPath == "" {
				return cli.Usage("--keys and --signer are required")
			}
			kb, err := cli.ReadFile(keysPath, 4<<20, "key file")
			if err != nil {
				return err
			}
			var entries []receiptKey
			if err := strictjson.Unmarshal(kb, &entries, 4<<20); err != nil {
				return cli.Input(keysPath, err, "a JSON array of {keyId, scheme, publicKey | address}")
			}
			keys := map[string]*receipt.Key{}
			for i, e := range entries {
				scheme, err := receipt.ParseScheme(e.Scheme)
				if err != nil {
					return cli.Input(keysPath, fmt.Errorf("[%d] (%s): %w", i, e.KeyID, err), "")
				}
				var k *receipt.Key
				switch {
				case e.PublicKey != "":
					k, err = receipt.ParseKeyPEM(scheme, []byte(e.PublicKey))
					if err == nil && e.SPKISHA256 != "" && k.Digest() != e.SPKISHA256 {
						err = fmt.Errorf("spkiSha256 %s is not the key's %s", e.SPKISHA256, k.Digest())
					}
				case e.Address != "" && scheme == receipt.SchemeSecp256k1RSV:
					k, err = receipt.NewAddressKey(e.Address)
				default:
					err = errors.New("give publicKey (or, for ecdsa-secp256k1-rsv, address)")
				}
				if err != nil {
					return cli.Input(keysPath, fmt.Errorf("[%d] (%s): %w", i, e.KeyID, err), "")
				}
				if _, dup := keys[e.KeyID]; dup {
					return cli.Input(keysPath, fmt.Errorf("[%d]: key %q listed twice", i, e.KeyID), "")
				}
				keys[e.KeyID] = k
			}
			signer, err := readSigner(signerPath)
			if err != nil {
				return err
			}
			col, err := receipts.New(receipts.Config{Keys: keys, Signer: signer, Verify: receipt.Options{AllowHighS: allowHighS}})
			if err != nil {
				return cli.Usage("%v", err)
			}
			var envs [][]byte
			var names []string
			for _, path := range args {
				f, err := cli.OpenFile(path, "receipts")
				if err != nil {
					return err
				}
				_, err = col.Collect(c.Context(), f, func(r receipts.Record) error {
					envs = append(envs, r.Envelope)
					names = append(names, fmt.Sprintf("receipt-%s.json", safeName(r.Receipt.RequestID)))
					return nil
				})
				f.Close()
				if err != nil {
					return cli.Input(path, err, "")
				}
			}
			if len(envs) == 0 {
				return cli.Usage("no receipts in %s", strings.Join(args, ", "))
			}
			if out.out != "" && len(envs) == 1 {
				names[0] = "" // -o is then the file
			}
			if out.out != "" && len(envs) > 1 {
				if err := os.MkdirAll(out.out, 0o755); err != nil {
					return cli.Input(out.out, err, "")
				}
			}
			return out.emit(c.Context(), c.OutOrStdout(), envs, names)
		},
	}
	f := c.Flags()
	f.StringVar(&keysPath, "keys", "", "the wallet keys whose receipts are collected (required)")
	f.StringVar(&signerPath, "signer", "", "the collector's PEM private key (required)")
	f.BoolVar(&allowHighS, "allow-high-s", false, "accept high-S secp256k1 signatures (reported), which Bitcoin and Ethereum signers never make")
	out.register(c, "write the signed receipts here: a file for one, a directory for several")
	return c
}

// safeName keeps a request ID usable as part of a file name.
func safeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	if len(b) > 100 {
		b = b[:100]
	}
	return string(b)
}

func collectCloudTrailCommand() *cobra.Command {
	var pubKeys []string
	var signerPath string
	var out recordOut
	c := &cobra.Command{
		Use:   "cloudtrail --public-key FILE... --signer FILE (-o DIR | --log-key FILE) LOGFILE...",
		Short: "Import KMS events from AWS CloudTrail log files as provider-sourced records",
		Long: `Import AWS KMS events from CloudTrail log files (as delivered to S3, .json or
.json.gz): CreateKey, EnableKey, DisableKey, ScheduleKeyDeletion,
CancelKeyDeletion, PutKeyPolicy, CreateGrant and RotateKey become lifecycle
events, Sign becomes a signing receipt without a signature (CloudTrail logs
none), each marked as provider-sourced with CloudTrail's event ID
(collectors/cloudtrail documents the rules).

Only events about the keys given with --public-key (aws kms get-public-key
output, which names the key's ARN and its public key) are imported; failed
calls and other events are counted and skipped. Validate the files first with
'aws cloudtrail validate-logs': this command does not check CloudTrail's
digest files. The verifier accepts the lifecycle events only if the trust
file gives the signing collector the provider-log role (docs/policy.md).`,
		Example: `  keytrail collect cloudtrail --public-key get-public-key.json --signer keys/collector.pem -o ct/ 210987654321_CloudTrail_eusc-de-east-1_20260302T1000Z_hot1.json.gz
  keytrail collect cloudtrail --public-key k1.json --public-key k2.json --signer keys/collector.pem --ledger ./keytrail-log --log-key log.key logs/*.json.gz`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cli.Usage("cloudtrail takes one or more CloudTrail log files")
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			if len(pubKeys) == 0 || signerPath == "" {
				return cli.Usage("--public-key (at least one) and --signer are required")
			}
			keys := map[string]evidence.KeyRef{}
			for _, p := range pubKeys {
				f, err := readNamed(p)
				if err != nil {
					return err
				}
				k, err := kmspolicy.KeyRefFromAWSPublicKey(f)
				if err != nil {
					return inputErr(err)
				}
				keys[k.ID] = k
			}
			signer, err := readSigner(signerPath)
			if err != nil {
				return err
			}
			var envs [][]byte
			var names []string
			for _, path := range args {
				data, err := cli.ReadFile(path, cloudtrail.MaxFileBytes, "CloudTrail log file")
				if err != nil {
					return err
				}
				recs, err := cloudtrail.Parse(data)
				if err != nil {
					return cli.Input(path, err, "a CloudTrail log file as delivered to S3: {\"Records\": [...]}")
				}
				imported, sum, err := cloudtrail.Import(c.Context(), recs, cloudtrail.Config{Keys: keys, Signer: signer})
				if err != nil {
					return cli.Input(path, err, "")
				}
				fmt.Fprintf(c.ErrOrStderr(), "%s: %d records, %d imported %v; skipped: %d other keys, %d failed calls, %d other KMS events, %d other services\n",
					path, len(recs), sum.Imported, sum.ByEventNames, sum.OtherKey, sum.FailedCall, sum.OtherEvent, sum.OtherSource)
				for _, im := range imported {
					envs = append(envs, im.Envelope)
					names = append(names, fmt.Sprintf("cloudtrail-%s-%s.json", safeName(im.EventName), safeName(im.EventID)))
				}
			}
			if len(envs) == 0 {
				return cli.Failed("no KMS events about the given keys in %s", strings.Join(args, ", "))
			}
			if out.out != "" {
				if len(envs) == 1 {
					names[0] = ""
				} else if err := os.MkdirAll(out.out, 0o755); err != nil {
					return cli.Input(out.out, err, "")
				}
			}
			return out.emit(c.Context(), c.OutOrStdout(), envs, names)
		},
	}
	f := c.Flags()
	f.StringArrayVar(&pubKeys, "public-key", nil, "aws kms get-public-key output of a key whose events to import; repeatable (required)")
	f.StringVar(&signerPath, "signer", "", "the collector's PEM private key (required)")
	out.register(c, "write the signed records here: a file for one, a directory for several")
	return c
}
