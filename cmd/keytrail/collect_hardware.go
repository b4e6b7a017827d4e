package main

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keytrail/keytrail/attest"
	"github.com/keytrail/keytrail/attest/luna"
	"github.com/keytrail/keytrail/attest/marvell"
	attesttpm "github.com/keytrail/keytrail/attest/tpm"
	"github.com/keytrail/keytrail/cmd/internal/cli"
	"github.com/keytrail/keytrail/collectors/tpm"
	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/durable"
	"github.com/keytrail/keytrail/internal/strictjson"
	"github.com/keytrail/keytrail/ledger"
	"github.com/keytrail/keytrail/verify"
)

// recordFlags are how every collect command signs and stores its records.
type recordFlags struct {
	signer string
	out    string
	lf     ledgerFlags
	at     string
}

func (f *recordFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.signer, "signer", "", "the collector's private key, PEM PKCS #8 (required); the trust file must enrol it for the record's predicate type")
	c.Flags().StringVarP(&f.out, "output", "o", "", "write the signed envelope(s) here (default: stdout, one JSON per line), unless --log-key appends them")
	c.Flags().StringVar(&f.at, "time", "", "the record's time, RFC 3339 UTC (default: now)")
	f.lf.register(c, true)
}

func (f *recordFlags) time() (time.Time, error) {
	if f.at == "" {
		return time.Now().UTC().Truncate(time.Second), nil
	}
	t, err := evidence.ParseTime(f.at)
	if err != nil {
		return t, cli.Usage("--time: %v", err)
	}
	return t, nil
}

// emit signs each record and appends it to the ledger or writes it out.
func (f *recordFlags) emit(c *cobra.Command, recs []record) error {
	if f.signer == "" {
		return cli.Usage("--signer is required: the collector key that signs the record")
	}
	s, err := readSigner(f.signer)
	if err != nil {
		return err
	}
	var envs [][]byte
	for _, r := range recs {
		st, err := evidence.NewStatement(r.pred, r.key)
		if err != nil {
			return err
		}
		env, err := evidence.SignStatement(c.Context(), st, s)
		if err != nil {
			return err
		}
		envs = append(envs, env)
	}
	if f.lf.logKey != "" {
		l, err := f.lf.open(c.Context(), true)
		if err != nil {
			return err
		}
		defer l.Close(context.WithoutCancel(c.Context()))
		idx, err := ledger.AppendAll(c.Context(), l, envs)
		if err != nil {
			return fmt.Errorf("append: %w", err)
		}
		for i := range envs {
			fmt.Fprintf(c.OutOrStdout(), "%d\t%s\t%s\n", idx[i], recs[i].what, recs[i].key.ID)
		}
		return closeLedger(c.Context(), l)
	}
	var out []byte
	for _, env := range envs {
		out = append(append(out, env...), '\n')
	}
	if f.out == "" {
		_, err := c.OutOrStdout().Write(out)
		return err
	}
	return durable.WriteFile(f.out, out, 0o644)
}

type record struct {
	what string
	key  evidence.KeyRef
	pred evidence.Predicate
}

func collectTPMCommand() *cobra.Command {
	var rf recordFlags
	var sim bool
	var tcp, device, keyID, pcrs, akOut, ekRoots, ekInter, keyHandle, persist string
	c := &cobra.Command{
		Use:   "tpm (--simulator | --tcp HOST:PORT | --device PATH) --signer FILE [flags]",
		Short: "Create a key in a TPM 2.0, certify it with an attestation key, quote PCRs",
		Long: `Create an attestation key (AK, a restricted ECDSA P-256 key in the endorsement
hierarchy) and a signing key (ECDSA P-256, fixedTPM, fixedParent,
sensitiveDataOrigin) inside a TPM, certify the key with TPM2_Certify and quote
the PCRs with TPM2_Quote, each over a fresh nonce, and record both as
tpm-attestation records about the key.

Before anything is recorded, the AK is shown to be resident in the TPM by
credential activation: a credential made in software for the AK's Name under
the TPM's endorsement key (TCG EK template) must be activated by the TPM.
The AK must then be enrolled in the trust file (hardware.tpmAttestationKeys)
for the records to verify: --ak-out writes the trust file entry. The AK is a
primary key, the same on every run until the TPM is cleared. The key is made
anew and is transient unless --persist gives it a persistent handle;
--key-handle certifies an existing persistent key instead (e.g. one made with
tpm2-tools; 'keytrail collect import --format tpm2-certify' records tpm2-tools'
own certifications). With --ek-roots, the TPM's EK
certificate (NV 0x01c00002 RSA or 0x01c0000a ECC) must chain to one of those
roots and certify the EK that activated the credential (exit 1 otherwise).`,
		Example: `  swtpm socket --tpm2 --tpmstate dir=/tmp/tpm --server type=tcp,port=2321 --ctrl type=tcp,port=2322 --flags not-need-init,startup-clear &
  keytrail collect tpm --tcp 127.0.0.1:2321 --signer collector.pem --ak-out ak.b64 -o records.jsonl
  keytrail collect tpm --device /dev/tpmrm0 --persist 0x81000010 --signer collector.pem --ledger ./keytrail-log --log-key log.key
  keytrail collect tpm --device /dev/tpmrm0 --key-handle 0x81000010 --signer collector.pem -o recertified.jsonl`,
		Args: cli.ExactArgs(0, "none"),
		RunE: func(c *cobra.Command, _ []string) error {
			n := 0
			for _, set := range []bool{sim, tcp != "", device != ""} {
				if set {
					n++
				}
			}
			if n != 1 {
				return cli.Usage("give exactly one of --simulator, --tcp, --device")
			}
			sel, err := parsePCRs(pcrs)
			if err != nil {
				return err
			}
			at, err := rf.time()
			if err != nil {
				return err
			}
			var dev *tpm.TPM
			switch {
			case sim:
				dev, err = tpm.OpenSimulator(nil)
			case tcp != "":
				dev, err = tpm.Dial(c.Context(), tcp, nil)
			default:
				dev, err = tpm.OpenDevice(device, nil)
			}
			if err != nil {
				return &cli.Error{Code: cli.ExitUsage, Err: err, Hint: "is the TPM running? (swtpm socket ... --server type=tcp,port=N)"}
			}
			defer dev.Close()
			var eo tpm.EnrolOptions
			if eo.Roots, err = readCertsFlag("ek-roots", ekRoots); err != nil {
				return err
			}
			if eo.Intermediates, err = readCertsFlag("ek-intermediates", ekInter); err != nil {
				return err
			}
			var handles tpmHandles
			if handles.key, err = parseHandle("key-handle", keyHandle); err != nil {
				return err
			}
			if handles.persist, err = parseHandle("persist", persist); err != nil {
				return err
			}
			if handles.key != 0 && handles.persist != 0 {
				return cli.Usage("--key-handle and --persist exclude each other")
			}
			recs, ak, err := collectTPM(c.Context(), dev, keyID, sel, at, eo, handles)
			if err != nil {
				return err
			}
			if akOut != "" {
				entry, err := strictjson.MarshalIndent(verify.TrustedTPMKey{ID: "tpm AK " + shortDigest(ak), PublicArea: ak})
				if err != nil {
					return err
				}
				if err := durable.WriteFile(akOut, append(entry, '\n'), 0o644); err != nil {
					return err
				}
			}
			fmt.Fprintf(c.ErrOrStderr(), "key %s (%s) certified by AK %s\n", recs[0].key.ID, recs[0].key.SPKISHA256, shortDigest(ak))
			return rf.emit(c, recs)
		},
	}
	c.Flags().BoolVar(&sim, "simulator", false, "use the in-process TPM simulator (for trying keytrail out; its keys vanish with the process)")
	c.Flags().StringVar(&tcp, "tcp", "", "a TPM speaking raw TPM 2.0 commands on HOST:PORT (swtpm --server type=tcp)")
	c.Flags().StringVar(&device, "device", "", "a TPM device, e.g. /dev/tpmrm0")
	c.Flags().StringVar(&keyID, "key-id", "", "the key's ID in records (default tpm:<first 16 hex digits of its key digest>)")
	c.Flags().StringVar(&pcrs, "quote-pcrs", "sha256:0,1,2,3,7", "the PCRs to quote, BANK:N,N,...; empty for no quote")
	c.Flags().StringVar(&keyHandle, "key-handle", "", "certify the existing persistent key at this handle (e.g. 0x81000010) instead of making one")
	c.Flags().StringVar(&persist, "persist", "", "make the new key persistent at this handle (e.g. 0x81000010)")
	c.Flags().StringVar(&ekRoots, "ek-roots", "", "PEM file of TPM vendor EK roots: the TPM's EK certificate must chain to one")
	c.Flags().StringVar(&ekInter, "ek-intermediates", "", "PEM file of intermediate CA certificates for --ek-roots")
	c.Flags().StringVar(&akOut, "ak-out", "", "write the AK's trust file entry (hardware.tpmAttestationKeys[]) here")
	rf.register(c)
	return c
}

// collectTPM makes an AK and a key in dev, certifies and quotes. It returns the
// records and the AK's public area.
// tpmHandles are persistent handles: the key to certify instead of creating
// one, or where to persist the key created. Zero means none.
type tpmHandles struct{ key, persist uint32 }

func parseHandle(flag, s string) (uint32, error) {
	if s == "" {
		return 0, nil
	}
	h, err := strconv.ParseUint(s, 0, 32)
	if err != nil || h < 0x81000000 || h > 0x817fffff {
		return 0, cli.Usage("--%s %q: want a persistent handle 0x81000000-0x817fffff", flag, s)
	}
	return uint32(h), nil
}

func collectTPM(ctx context.Context, dev *tpm.TPM, keyID string, pcrs []int, at time.Time, eo tpm.EnrolOptions, hs tpmHandles) ([]record, []byte, error) {
	ak, err := dev.CreateAK(ctx)
	if err != nil {
		return nil, nil, err
	}
	// The AK must be resident in this TPM before anyone enrols it.
	if _, err := dev.EnrolAK(ctx, ak, eo); err != nil {
		if errors.Is(err, tpm.ErrEKCertificate) {
			return nil, nil, cli.Failed("%v", err)
		}
		return nil, nil, err
	}
	var key *tpm.Key
	if hs.key != 0 {
		key, err = dev.LoadPersistent(ctx, hs.key)
	} else if key, err = dev.CreateKey(ctx); err == nil && hs.persist != 0 {
		key, err = dev.Persist(ctx, key, hs.persist)
	}
	if err != nil {
		return nil, nil, err
	}
	ref, err := key.Ref(keyID)
	if err != nil {
		return nil, nil, err
	}
	if keyID == "" {
		ref.ID = "tpm:" + ref.SPKISHA256[:16]
	}
	cert, err := dev.Certify(ctx, ak, key, tpm.Nonce(), at)
	if err != nil {
		return nil, nil, err
	}
	recs := []record{{"tpm-certify", ref, cert}}
	if len(pcrs) > 0 {
		q, err := dev.Quote(ctx, ak, pcrs, tpm.Nonce(), at)
		if err != nil {
			return nil, nil, err
		}
		recs = append(recs, record{"tpm-quote", ref, q})
	}
	return recs, ak.Public, nil
}

// parsePCRs parses "sha256:0,1,7" (only the sha256 bank is collected).
func parsePCRs(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	bank, list, ok := strings.Cut(s, ":")
	if !ok || bank != "sha256" {
		return nil, cli.Usage("--quote-pcrs %q: want sha256:N,N,...", s)
	}
	var out []int
	for _, p := range strings.Split(list, ",") {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 23 {
			return nil, cli.Usage("--quote-pcrs %q: %q is not a PCR index 0-23", s, p)
		}
		out = append(out, n)
	}
	return out, nil
}

func collectImportCommand() *cobra.Command {
	var rf recordFlags
	var format, attestation, certs, pkc, csr, keyID, serial string
	var roots []string
	var tf tpm.Files
	var akPub, keyPub, sigFile, attestFile, pcrFile, nonce, keyDigest string
	c := &cobra.Command{
		Use:   "import --format marvell|luna|tpm2-certify|tpm2-quote --signer FILE [flags]",
		Short: "Record a cloud HSM key attestation or tpm2-tools output",
		Long: `Record evidence another tool produced:

  marvell       a Marvell LiquidSecurity key attestation (Google Cloud HSM:
                gcloud kms keys versions describe --attestation-file; Azure
                Managed HSM) with its certificate chains (PEM);
  luna          a Thales Luna Public Key Confirmation (DER PKCS #7), with the
                CSR made with the key if you have it;
  tpm2-certify  tpm2_certify -o/-s with the -u public areas of the AK and key;
  tpm2-quote    tpm2_quote -m/-s with the AK's public area and tpm2_pcrread -o.

marvell and luna evidence is verified against the roots given with --root
before it is recorded (the facts in the record come from it), at the record's
time (--time): evidence that does not verify is not recorded (exit 1). The
verifier checks it again against its own trust file.`,
		Example: `  keytrail collect import --format marvell --attestation attestation.dat.gz --certs chains.pem --root marvell-root.pem --root google-root.pem --key-id gcp:projects/p/.../cryptoKeyVersions/1 --signer collector.pem -o rec.json
  keytrail collect import --format luna --pkc key.p7b --csr key.csr --root luna-root.pem --key-id luna:custody/hot-1 --signer collector.pem -o rec.json
  keytrail collect import --format tpm2-certify --attest certify.attest --signature certify.sig --ak-public ak.pub --key-public key.pub --nonce 00ff55aa --signer collector.pem -o rec.json`,
		Args: cli.ExactArgs(0, "none"),
		RunE: func(c *cobra.Command, _ []string) error {
			at, err := rf.time()
			if err != nil {
				return err
			}
			read := func(flag, path string, limit int64) ([]byte, error) {
				if path == "" {
					return nil, cli.Usage("--%s is required for --format %s", flag, format)
				}
				return cli.ReadFile(path, limit, flag)
			}
			var rec record
			switch format {
			case "marvell", "luna":
				if keyID == "" {
					return cli.Usage("--key-id is required: the key's ID in records (e.g. the KMS key version name)")
				}
				if len(roots) == 0 {
					return cli.Usage("--root is required: the vendor root(s) to check the evidence against")
				}
				var rs []attest.Root
				for _, p := range roots {
					b, err := cli.ReadFile(p, 64<<10, "root")
					if err != nil {
						return err
					}
					r, err := attest.ParseRootPEM(b)
					if err != nil {
						return cli.Input(p, err, "")
					}
					rs = append(rs, r)
				}
				var res *attest.Result
				pred := &evidence.HSMAttestation{At: evidence.AtTime(at)}
				if format == "marvell" {
					blob, err := read("attestation", attestation, 1<<20)
					if err != nil {
						return err
					}
					pemCerts, err := read("certs", certs, 1<<20)
					if err != nil {
						return err
					}
					ders, err := attest.CertificatesPEM(pemCerts)
					if err != nil {
						return cli.Input(certs, err, "")
					}
					cfg := marvell.Config{Manufacturer: rs[0]}
					if len(rs) > 1 {
						cfg.Owner = &rs[1]
					}
					v, err := marvell.NewVerifier(cfg)
					if err != nil {
						return cli.Usage("--root: %v", err)
					}
					res = v.Verify(marvell.Evidence{Attestation: blob, Certificates: ders, LoggedAt: at})
					pred.Format, pred.Attestation, pred.Certificates = evidence.HSMFormatMarvell, blob, ders
				} else {
					p, err := read("pkc", pkc, 1<<20)
					if err != nil {
						return err
					}
					var cs []byte
					if csr != "" {
						if cs, err = cli.ReadFile(csr, luna.MaxCSRBytes, "csr"); err != nil {
							return err
						}
					}
					v, err := luna.NewVerifier(luna.Config{Roots: rs})
					if err != nil {
						return cli.Usage("--root: %v", err)
					}
					res = v.Verify(luna.Evidence{PKC: p, CSR: cs, LoggedAt: at})
					pred.Format, pred.Attestation, pred.CSR = evidence.HSMFormatLuna, p, cs
				}
				if res.Strength != attest.VendorAttested {
					return errors.Join(cli.Failed("the %s evidence does not verify against the given roots at %s; not recorded", format, evidence.FormatTime(at)), res.Err())
				}
				if !res.Verified {
					fmt.Fprintf(c.ErrOrStderr(), "warning: authentic, but the key fails a policy check and will not verify: %v\n", res.Err())
				}
				pred.Token = res.Facts.Token
				if pred.Token.Serial == "" {
					pred.Token.Serial = serial
				}
				if res.Facts.Attributes != nil {
					pred.Attributes = *res.Facts.Attributes
				}
				rec = record{format, evidence.KeyRef{ID: keyID, SPKISHA256: res.Facts.KeyDigest}, pred}
			case "tpm2-certify", "tpm2-quote":
				tf.Kind = strings.TrimPrefix(format, "tpm2-")
				var err error
				if tf.Attest, err = read("attest", attestFile, 64<<10); err != nil {
					return err
				}
				if tf.Signature, err = read("signature", sigFile, 64<<10); err != nil {
					return err
				}
				if tf.AKPublic, err = read("ak-public", akPub, 64<<10); err != nil {
					return err
				}
				if tf.Kind == evidence.TPMKindCertify {
					if tf.KeyPublic, err = read("key-public", keyPub, 64<<10); err != nil {
						return err
					}
				} else if tf.PCRValues, err = read("pcr-values", pcrFile, 64<<10); err != nil {
					return err
				}
				if tf.Nonce, err = hex.DecodeString(nonce); err != nil {
					return cli.Usage("--nonce %q is not hex", nonce)
				}
				pred, err := tpm.Import(tf, at)
				if err != nil {
					return cli.Usage("%v", err)
				}
				ref := evidence.KeyRef{ID: keyID}
				if tf.Kind == evidence.TPMKindCertify {
					k, err := tpmKeyOf(pred.KeyPublic)
					if err != nil {
						return cli.Input(keyPub, err, "")
					}
					if ref.SPKISHA256, err = evidence.KeyDigest(k); err != nil {
						return cli.Input(keyPub, err, "")
					}
				} else if ref.SPKISHA256, err = keyDigestFlag(keyDigest); err != nil {
					return err
				}
				if ref.ID == "" {
					ref.ID = "tpm:" + ref.SPKISHA256[:16]
				}
				rec = record{format, ref, pred}
			default:
				return cli.Usage("--format %q: want marvell, luna, tpm2-certify or tpm2-quote", format)
			}
			return rf.emit(c, []record{rec})
		},
	}
	c.Flags().StringVar(&format, "format", "", "marvell, luna, tpm2-certify or tpm2-quote (required)")
	c.Flags().StringVar(&keyID, "key-id", "", "the key's ID in records (required for marvell and luna)")
	c.Flags().StringVar(&attestation, "attestation", "", "marvell: the attestation (gzip or raw)")
	c.Flags().StringVar(&certs, "certs", "", "marvell: the certificate chains, PEM")
	c.Flags().StringVar(&pkc, "pkc", "", "luna: the Public Key Confirmation, DER PKCS #7")
	c.Flags().StringVar(&csr, "csr", "", "luna: the CSR made with the key, PEM or DER (optional)")
	c.Flags().StringArrayVar(&roots, "root", nil, "marvell: the manufacturer root, then the owner root; luna: a Luna root (PEM; repeatable)")
	c.Flags().StringVar(&serial, "serial", "", "the HSM serial, if the evidence does not state it")
	c.Flags().StringVar(&attestFile, "attest", "", "tpm2: the TPMS_ATTEST (tpm2_certify -o, tpm2_quote -m)")
	c.Flags().StringVar(&sigFile, "signature", "", "tpm2: the TPMT_SIGNATURE (-s, tss format)")
	c.Flags().StringVar(&akPub, "ak-public", "", "tpm2: the AK's public area (-u of tpm2_createak)")
	c.Flags().StringVar(&keyPub, "key-public", "", "tpm2-certify: the key's public area (-u of tpm2_create)")
	c.Flags().StringVar(&pcrFile, "pcr-values", "", "tpm2-quote: tpm2_pcrread -o of the quoted PCRs")
	c.Flags().StringVar(&nonce, "nonce", "", "tpm2: the qualifying data, hex (tpm2_quote -q; tpm2_certify 5.4 uses 00ff55aa)")
	c.Flags().StringVar(&keyDigest, "key-digest", "", "tpm2-quote: the key digest (hex SHA-256 of its SPKI) the quote is recorded about")
	rf.register(c)
	return c
}

func keyDigestFlag(s string) (string, error) {
	if len(s) != 64 || strings.ToLower(s) != s {
		return "", cli.Usage("--key-digest %q: want 64 lowercase hex digits (the key the quote is recorded about)", s)
	}
	if _, err := hex.DecodeString(s); err != nil {
		return "", cli.Usage("--key-digest %q is not hex", s)
	}
	return s, nil
}

func readCertsFlag(flag, path string) ([]*x509.Certificate, error) {
	if path == "" {
		return nil, nil
	}
	b, err := cli.ReadFile(path, 1<<20, flag)
	if err != nil {
		return nil, err
	}
	ders, err := attest.CertificatesPEM(b)
	if err != nil {
		return nil, cli.Input(path, err, "")
	}
	var out []*x509.Certificate
	for _, d := range ders {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, cli.Input(path, err, "")
		}
		out = append(out, c)
	}
	return out, nil
}

func shortDigest(b []byte) string {
	d := sha256.Sum256(b)
	return hex.EncodeToString(d[:8])
}

func tpmKeyOf(public []byte) (crypto.PublicKey, error) {
	p, _, err := attesttpm.ParsePublic(public)
	if err != nil {
		return nil, err
	}
	return attesttpm.PublicKey(p)
}
